#include "press.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rounds of propagation: a decision narrows the neighbours, which may
 * decide them in turn; a chain of held shots settles in a few. */
#define ROUNDS 16

/* One reading of the offset, from the clock or from a shot, and the
 * stretch of readings it agrees with (a new one starts where the camera's
 * clock was set). */
struct reading {
	double at, lo, hi;
	int segment;
	long shot;              /* its shot, or -1 */
};

static double widen(double bound, double by)
{
	return isinf(bound) ? bound : bound + by;
}

/* The reading a shot's own bounds and time give: the press lay within
 * [lo, hi], the camera read [cam, cam + res) then. */
static bool shot_reading(const press_shot *s, struct reading *r)
{
	if (s->res <= 0 || (isinf(s->lo) && isinf(s->hi)))
		return false;
	r->at = isinf(s->hi) ? s->lo : s->hi;
	r->lo = s->cam - s->hi;
	r->hi = s->cam + s->res - s->lo;
	return true;
}

static bool is_trigger(const press_shot *s)
{
	return s->fixed && !s->by_time;
}

static int by_time(const void *a, const void *b)
{
	const struct reading *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at ? 1 : (x->shot > y->shot) - (x->shot < y->shot);
}

/* All readings in time order, each with its stretch: a reading that
 * contradicts the ones before it (aged by the drift allowed) begins a
 * new stretch.  *n gets their number; NULL when out of memory. */
static struct reading *readings(const press_clock *clocks, size_t nclocks,
				const press_shot *shots, size_t nshots, size_t *n)
{
	struct reading *r = malloc((nclocks + nshots + 1) * sizeof *r);
	double lo = -INFINITY, hi = INFINITY, at = 0;
	int segment = 0;

	*n = 0;
	if (!r)
		return NULL;
	for (size_t i = 0; i < nclocks; i++)
		if (!(clocks[i].lo > clocks[i].hi))
			r[(*n)++] = (struct reading){ clocks[i].at, clocks[i].lo, clocks[i].hi, 0, -1 };
	for (size_t i = 0; shots && i < nshots; i++)
		if (shot_reading(&shots[i], &r[*n]))
			r[(*n)++].shot = (long)i;
	qsort(r, *n, sizeof *r, by_time);
	for (size_t i = 0; i < *n; i++) {
		double aged = PRESS_DRIFT * (r[i].at - at);
		lo = widen(lo, -aged);
		hi = widen(hi, aged);
		/* A software trigger's shot bounds the clock from above only if
		 * the press announced after it was the one it fired: not so if
		 * that contradicts the readings before (the camera's own button
		 * was pressed just before).  Before its announcement it was
		 * pressed in any case. */
		if (r[i].shot >= 0 && is_trigger(&shots[r[i].shot]) && r[i].hi < lo)
			r[i].hi = INFINITY;
		if (r[i].lo > hi || r[i].hi < lo) {
			segment++;
			lo = -INFINITY;
			hi = INFINITY;
		}
		lo = fmax(lo, r[i].lo);
		hi = fmin(hi, r[i].hi);
		at = r[i].at;
		r[i].segment = segment;
	}
	return r;
}

/* The offset at time t from the readings of one stretch. */
static void stretch_offset(const struct reading *r, size_t n, int segment, double t,
			   double *lo, double *hi)
{
	*lo = -INFINITY;
	*hi = INFINITY;
	for (size_t i = 0; i < n; i++) {
		if (r[i].segment != segment)
			continue;
		double aged = PRESS_DRIFT * fabs(t - r[i].at);
		*lo = fmax(*lo, widen(r[i].lo, -aged));
		*hi = fmin(*hi, widen(r[i].hi, aged));
	}
}

bool press_clock_offset(const press_clock *clocks, size_t nclocks,
			const press_shot *shots, size_t nshots, double t,
			double *lo, double *hi)
{
	size_t n;
	struct reading *r = readings(clocks, nclocks, shots, nshots, &n);
	int segment = 0;

	*lo = -INFINITY;
	*hi = INFINITY;
	if (!r)
		return false;
	for (size_t i = 0; i < n && r[i].at <= t; i++)
		segment = r[i].segment;
	stretch_offset(r, n, segment, t, lo, hi);
	free(r);
	return !isinf(*lo) || !isinf(*hi);
}

double press_clock_next_read(double lo, double hi, double at, double after)
{
	if (!(hi - lo < 1))
		return after;
	/* Not before the drift has made the window wide enough again. */
	double due = at + (PRESS_CLOCK_GOOD - (hi - lo)) / (2 * PRESS_DRIFT);
	double t = due > after ? due : after, middle = (lo + hi) / 2;
	return ceil(t + middle) - middle;
}

/* Each shot's press within its own bounds and what the camera's clock
 * says of it. */
static void place_shots(const struct reading *r, size_t n, press_shot *shots,
			size_t nshots)
{
	for (size_t i = 0; i < nshots; i++) {
		shots[i].plo = shots[i].lo;
		shots[i].phi = shots[i].hi;
		shots[i].clock_broken = false;
	}
	for (size_t i = 0; i < n; i++) {
		if (r[i].shot < 0)
			continue;
		press_shot *s = &shots[r[i].shot];
		bool first = i == 0 || r[i - 1].segment != r[i].segment;
		double olo, ohi;
		/* The reading that found the clock changed cannot tell on which
		 * side of the change its shot lies. */
		if (first && r[i].segment > 0) {
			s->clock_broken = true;
			continue;
		}
		stretch_offset(r, n, r[i].segment, r[i].at, &olo, &ohi);
		s->plo = fmax(s->plo, s->cam - ohi);
		s->phi = fmin(s->phi, s->cam + s->res - olo);
	}
}

/* The first scan after t. */
static size_t scan_after(const press_scan *scans, size_t n, double t)
{
	size_t a = 0, b = n;

	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (scans[m].at <= t)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

/* The number current at t: a scan at t counts. */
static const char *number_at(const press_scan *scans, size_t n, double t)
{
	size_t i = scan_after(scans, n, t);

	return i ? scans[i - 1].identifier : "";
}

/* Narrows a shot whose number was decided from its time to where that
 * number was current. */
static void narrow_to_number(const press_scan *scans, size_t n, press_shot *s)
{
	double first = INFINITY, last = -INFINITY;
	const char *current = number_at(scans, n, s->plo);
	double since = s->plo;

	/* Current from its scan on, until the next one. */
	for (size_t i = scan_after(scans, n, s->plo); ; i++) {
		bool end = i >= n || scans[i].at >= s->phi;
		double until = end ? s->phi : scans[i].at;
		if (!strcmp(current, s->identifier)) {
			first = fmin(first, since);
			last = fmax(last, until);
		}
		if (end)
			break;
		current = scans[i].identifier;
		since = scans[i].at;
	}
	/* A number never current there (the clock was set?): nothing learnt. */
	if (first <= last) {
		s->plo = first;
		s->phi = last;
	}
}

static void add_candidate(press_shot *s, const char *id)
{
	for (size_t i = 0; i < s->ncand; i++)
		if (!strcmp(s->cand[i], id))
			return;
	/* Too many: the newest takes the last place. */
	if (s->ncand == PRESS_CANDIDATES_MAX)
		s->ncand--;
	s->cand[s->ncand++] = id;
}

/* The numbers current at some time within the press's bounds: the
 * press came at or after plo, before phi. */
static void candidates(const press_scan *scans, size_t n, press_shot *s)
{
	double lo = fmin(s->plo, s->phi), hi = fmax(s->plo, s->phi);

	s->ncand = 0;
	add_candidate(s, number_at(scans, n, lo));
	for (size_t i = scan_after(scans, n, lo); i < n && scans[i].at < hi; i++)
		add_candidate(s, scans[i].identifier);
}

/* Each press comes after the one before and before the one after. */
static void chain(press_shot *shots, size_t n)
{
	for (size_t i = 1; i < n; i++)
		shots[i].plo = fmax(shots[i].plo, shots[i - 1].plo);
	for (size_t i = n - 1; i-- > 0;)
		shots[i].phi = fmin(shots[i].phi, shots[i + 1].phi);
}

void press_decide(const press_scan *scans, size_t nscans,
		  const press_clock *clocks, size_t nclocks,
		  press_shot *shots, size_t nshots)
{
	size_t nr = 0;
	struct reading *r = readings(clocks, nclocks, shots, nshots, &nr);
	bool changed = true;

	/* Out of memory: no clock, so more shots are held; never a guess. */
	place_shots(r, r ? nr : 0, shots, nshots);
	free(r);
	for (size_t i = 0; i < nshots; i++) {
		shots[i].identifier = shots[i].fixed;
		shots[i].ncand = 0;
	}
	for (int round = 0; changed && round < ROUNDS; round++) {
		changed = false;
		for (size_t i = 0; i < nshots; i++)
			if (shots[i].identifier && (shots[i].by_time || !shots[i].fixed))
				narrow_to_number(scans, nscans, &shots[i]);
		if (nshots)
			chain(shots, nshots);
		for (size_t i = 0; i < nshots; i++) {
			press_shot *s = &shots[i];
			if (s->identifier)
				continue;
			candidates(scans, nscans, s);
			if (s->ncand == 1) {
				s->identifier = s->cand[0];
				s->ncand = 0;
				changed = true;
			}
		}
	}
}

bool press_exif_time(const char *datetime, const char *subsec, double *t,
		     double *res)
{
	struct tm tm = { 0 };
	char tail;
	double fraction = 0, unit = 1;

	if (!datetime || sscanf(datetime, "%4d:%2d:%2d %2d:%2d:%2d%c", &tm.tm_year,
				&tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
				&tm.tm_sec, &tail) != 6)
		return false;
	if (tm.tm_year < 1970 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 ||
	    tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	/* Digits of a fraction; spaces pad it in some cameras' files. */
	for (const char *p = subsec; p && *p && *p != ' '; p++) {
		if (*p < '0' || *p > '9' || unit < 1e-6)
			return false;
		unit /= 10;
		fraction += (*p - '0') * unit;
	}
	*t = (double)timegm(&tm) + fraction;
	*res = unit;
	return true;
}
