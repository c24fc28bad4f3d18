/* Which specimen a press belongs to (core/press.c): the rule on cases a
 * technician makes, then long simulated sessions of a fast technician
 * with a real camera's delays and clock: no shot may ever be decided for
 * the wrong number. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "press.h"
#include "tap.h"

#define INF INFINITY

static press_shot button(double announced, double cam, double res)
{
	return (press_shot){ .lo = -INF, .hi = announced, .cam = cam, .res = res };
}

static const char *fate(const press_shot *s)
{
	static char buf[256];

	if (s->identifier)
		return s->identifier;
	snprintf(buf, sizeof buf, "held:");
	for (size_t i = 0; i < s->ncand; i++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? "," : "",
			 s->cand[i][0] ? s->cand[i] : "-");
	return buf;
}

static void test_rule(void)
{
	const press_scan ab[] = { { 10.0, "A" }, { 20.05, "B" } };
	/* The camera is 37 s ahead, known to 10 ms. */
	const press_clock known[] = { { 0.0, 37.0, 37.01 } };
	press_shot s[3];

	s[0] = button(5, 0, 0);
	press_decide(NULL, 0, NULL, 0, s, 1);
	tap_is_str(fate(&s[0]), "", "no scan at all: the shot has no number");

	s[0] = button(25, 0, 0);
	press_decide(ab, 1, NULL, 0, s, 1);
	tap_is_str(fate(&s[0]), "held:-,A", "no time, a scan since nothing: held between "
		   "no number and A");

	s[0] = button(15, 0, 0);
	s[0].fixed = "A";
	s[0].by_time = true;
	s[1] = button(18, 0, 0);
	press_decide(ab, 2, NULL, 0, s, 2);
	tap_is_str(fate(&s[1]), "A", "no time, no scan since the shot before (decided A): A");

	s[1] = button(21, 0, 0);
	press_decide(ab, 2, NULL, 0, s, 2);
	tap_is_str(fate(&s[1]), "held:A,B", "no time, a scan since the shot before: held");

	s[0] = (press_shot){ .lo = 20.1, .hi = 22.0, .fixed = "A" };
	press_decide(ab, 2, NULL, 0, s, 1);
	tap_is_str(fate(&s[0]), "A", "a software trigger keeps the number of its request");

	/* Pressed at 20.00 (camera 57.00), B scanned at 20.05, announced 2 s later. */
	s[0] = button(22.0, 57.0, 0.01);
	press_decide(ab, 2, known, 1, s, 1);
	tap_is_str(fate(&s[0]), "A", "the press 50 ms before the scan of B is A's");
	tap_ok(s[0].plo >= 19.98 && s[0].phi <= 20.02, "its press lies within 20 ms");

	/* The same scans, the camera's time of the press varied. */
	static const struct { double cam, res; const char *want, *what; } timed[] = {
		{ 57.04, 0.01, "held:A,B", "within the clock's uncertainty of the scan: held" },
		{ 57.2, 0.01, "B", "after the scan by more than the uncertainty: B" },
		{ 57.0, 1, "held:A,B", "a camera without sub-seconds: a second is too coarse" },
	};
	for (size_t i = 0; i < sizeof timed / sizeof *timed; i++) {
		s[0] = button(22.0, timed[i].cam, timed[i].res);
		press_decide(ab, 2, known, 1, s, 1);
		tap_is_str(fate(&s[0]), timed[i].want, timed[i].what);
	}

	/* A later shot decided A by its time bounds the one before it. */
	s[0] = button(15, 0, 0);
	s[0].fixed = "A";
	s[0].by_time = true;
	s[1] = button(21.0, 0, 0);
	s[2] = button(22.0, 57.0, 0.01);
	press_decide(ab, 2, known, 1, s, 3);
	tap_is_str(fate(&s[1]), "A", "the shot before one pressed before B's scan is A's too");

	/* The camera's clock was set back an hour between two readings. */
	const press_clock moved[] = { { 0.0, 37.0, 37.01 }, { 21.0, -3563.0, -3562.99 } };
	s[0] = button(22.0, 57.0, 0.01);
	press_decide(ab, 2, moved, 2, s, 1);
	tap_ok(s[0].identifier == NULL || !strcmp(s[0].identifier, "A"),
	       "readings that disagree never decide a wrong number (%s)", fate(&s[0]));
	s[0] = button(30.0, -3563.0 + 29.0, 0.01);
	press_decide(ab, 2, moved, 2, s, 1);
	tap_is_str(fate(&s[0]), "B", "after the clock was set, the newer readings count");

	const press_scan noise[] = { { 10.0, "A" }, { 20.0, "" }, { 20.2, "B" } };
	s[0] = button(22.0, 57.1, 0.01);
	press_decide(noise, 3, known, 1, s, 1);
	tap_is_str(fate(&s[0]), "", "pressed after a line that was no number: no number");

	double lo, hi;
	s[0] = button(22.0, 57.0, 0.01);
	tap_ok(press_clock_offset(NULL, 0, s, 1, 22.0, &lo, &hi) && lo > 34.99 && lo < 35.01 &&
	       isinf(hi), "a button shot bounds the offset from below only");
}

static void test_exif_time(void)
{
	double t, res;

	tap_ok(press_exif_time("2026:12:04 15:30:00", "07", &t, &res) &&
	       fabs(t - 1796398200.07) < 1e-6 && res == 0.01, "EXIF time with hundredths");
	tap_ok(press_exif_time("2026:12:04 15:30:00", NULL, &t, &res) && res == 1,
	       "no SubSecTimeOriginal: whole seconds");
	tap_ok(press_exif_time("2026:12:04 15:30:00", "5  ", &t, &res) && res == 0.1,
	       "padded sub-seconds");
	tap_ok(!press_exif_time("0000:00:00 00:00:00", NULL, &t, &res), "a zero date is no time");
	tap_ok(!press_exif_time("2026:12:04 15:30", NULL, &t, &res), "a cut date is no time");
	tap_ok(!press_exif_time("2026:12:04 15:30:00x", NULL, &t, &res), "junk after it");
	tap_ok(!press_exif_time("2026:12:04 15:30:00", "1a", &t, &res), "junk sub-seconds");
	tap_ok(!press_exif_time(NULL, NULL, &t, &res), "none at all");
}

/* --- simulated sessions -------------------------------------------------- */

struct rng { uint64_t s; };

static double uniform(struct rng *r, double a, double b)
{
	r->s = r->s * 6364136223846793005u + 1442695040888963407u;
	return a + (b - a) * (double)(r->s >> 11) / 9007199254740992.0;
}

struct camera_model {
	double offset, drift_ppm;  /* the camera's clock against ours */
	double delay;              /* press → announced */
	double res;                /* 0.01, 1, or 0: no time in the file */
	bool datetime;             /* the PTP DateTime property can be read */
	double triggered;          /* the share of shots fired from the program */
};

struct outcome {
	int shots, wrong, held, asked;
	double window;             /* summed width of the held shots' windows */
};

#define SIM_SHOTS 500
#define NAMES 260

/* The camera's clock at time t (its offset drifts from t0 on). */
static double cam_at(const struct camera_model *m, double t0, double t)
{
	return t + m->offset + m->drift_ppm * 1e-6 * (t - t0);
}

/* One reading of the DateTime property (whole seconds), 4 ms there and
 * back. */
static void read_clock(const struct camera_model *m, double t0, double t,
		       press_clock *clocks, size_t *n)
{
	double cam = floor(cam_at(m, t0, t + 0.002));
	clocks[(*n)++] = (press_clock){ t, cam - (t + 0.004), cam + 1 - t };
}

struct sim_event {
	double at;
	int kind;                  /* 0 scan, 1 press announced, 2 a person decides */
	int index;
};

static int by_at(const void *a, const void *b)
{
	const struct sim_event *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at;
}

static const char *truth_at(const press_scan *scans, size_t n, double t)
{
	const char *cur = "";
	for (size_t i = 0; i < n && scans[i].at < t; i++)
		cur = scans[i].identifier;
	return cur;
}

/* Whether a held shot offers its true number to the person deciding. */
static bool offered(const press_shot *s, const char *truth)
{
	for (size_t c = 0; c < s->ncand; c++)
		if (!strcmp(s->cand[c], truth))
			return true;
	return false;
}

/* Puts e into the time-ordered events after position i. */
static void insert_event(struct sim_event *ev, size_t *n, size_t i, struct sim_event e)
{
	size_t at = i + 1;

	while (at < *n && ev[at].at <= e.at)
		at++;
	memmove(ev + at + 1, ev + at, (*n - at) * sizeof *ev);
	ev[at] = e;
	(*n)++;
}

static void simulate(const struct camera_model *m, unsigned seed, struct outcome *out)
{
	static char names[NAMES][16];
	static press_scan scans[NAMES];
	static press_shot shots[SIM_SHOTS];
	static double press_at[SIM_SHOTS], request_at[SIM_SHOTS];
	static bool trig[SIM_SHOTS];
	static press_clock clocks[256];
	static struct sim_event ev[2 * SIM_SHOTS + NAMES];
	struct rng r = { seed * 2654435761u + 1 };
#define truth_of(k) truth_at(scans, nscans, trig[k] ? request_at[k] : press_at[k])
	double t0 = 1.8e9, t = t0 + 5;
	size_t nscans = 0, nev = 0, nclocks = 0, known_scans = 0, nshots = 0;

	/* The technician: a scan, a few shots, the next scan anywhere from
	 * a second before the last shot to two seconds after it. */
	for (int k = 0; k < SIM_SHOTS; k++) {
		if (k == 0 || (uniform(&r, 0, 1) < 0.45 && nscans < NAMES)) {
			double at = k == 0 ? t - 3 : press_at[k - 1] + uniform(&r, -1, 2);
			if (nscans && at <= scans[nscans - 1].at)
				at = scans[nscans - 1].at + 0.01;
			snprintf(names[nscans], sizeof names[nscans], "N%zu", nscans);
			scans[nscans] = (press_scan){ at, names[nscans] };
			ev[nev++] = (struct sim_event){ at, 0, (int)nscans++ };
		}
		t += uniform(&r, 0.25, 2.5);
		if (nscans && t <= scans[nscans - 1].at - 1)
			t = scans[nscans - 1].at - 1;
		press_at[k] = t;
		trig[k] = uniform(&r, 0, 1) < m->triggered;
		request_at[k] = t - uniform(&r, 0.001, 0.12);
		double fired = t - uniform(&r, 0.0, 0.02);
		double cam = cam_at(m, t0, t);
		shots[k] = (press_shot){
			.lo = trig[k] ? fired : -INF,
			.hi = t + m->delay + uniform(&r, 0, 0.05),
			.cam = m->res > 0 ? floor(cam / m->res) * m->res : 0, .res = m->res,
		};
		ev[nev++] = (struct sim_event){ shots[k].hi, 1, k };
	}
	qsort(ev, nev, sizeof *ev, by_at);
	/* Announced shots are decided at once, as the finisher does; the
	 * clock is read at the start, then at the moments that halve the
	 * window, 2.1 s apart at least (libgphoto2 caches the property 2 s). */
	memset(out, 0, sizeof *out);
	double next_read = m->datetime ? t0 + 1 : INF;
	for (size_t e = 0; e < nev; e++) {
		while (next_read <= ev[e].at && nclocks < sizeof clocks / sizeof *clocks) {
			double lo, hi;
			read_clock(m, t0, next_read, clocks, &nclocks);
			press_clock_offset(clocks, nclocks, NULL, 0, next_read, &lo, &hi);
			next_read = press_clock_next_read(lo, hi, next_read, next_read + 2.1);
		}
		size_t k = (size_t)ev[e].index;
		if (ev[e].kind == 0) {
			known_scans++;
			continue;
		}
		if (ev[e].kind == 2) {
			/* The technician, asked, answers from the candidates. */
			if (shots[k].fixed)
				continue;
			out->asked++;
			shots[k].fixed = offered(&shots[k], truth_of(k)) ? truth_of(k) : "?";
			shots[k].by_time = true;
		} else {
			if (trig[k])
				shots[k].fixed = truth_at(scans, known_scans, request_at[k]);
			nshots = k + 1;
		}
		/* As the finisher: the undecided shots, and the history before. */
		size_t from = nshots;
		while (from > 0 && (nshots - from < PRESS_HISTORY || !shots[from - 1].fixed))
			from--;
		press_decide(scans, known_scans, clocks, nclocks, shots + from, nshots - from);
		for (size_t i = from; i < nshots; i++) {
			if (!shots[i].fixed && !shots[i].identifier && i == k && ev[e].kind == 1) {
				out->held++;
				out->window += shots[i].phi - shots[i].plo;
				insert_event(ev, &nev, e, (struct sim_event){ ev[e].at + 3, 2, (int)i });
			}
			if (shots[i].fixed || !shots[i].identifier)
				continue;
			shots[i].fixed = shots[i].identifier;
			shots[i].by_time = true;
		}
	}
	for (size_t k = 0; k < nshots; k++) {
		out->shots++;
		if (!shots[k].fixed || strcmp(shots[k].fixed, truth_of(k))) {
			out->wrong++;
			tap_diag("shot %zu (%s, pressed %.3f) went to %s, not %s", k,
				 trig[k] ? "trigger" : "button", press_at[k] - t0,
				 shots[k].fixed ? shots[k].fixed : "nobody", truth_of(k));
		}
	}
#undef truth_of
}

static void test_sessions(void)
{
	static const struct { const char *what; struct camera_model m; } cams[] = {
		{ "0.1 s to announce, sub-seconds, DateTime", { 37, 40, 0.1, 0.01, true, 0 } },
		{ "2 s to announce, sub-seconds, DateTime", { 37, -40, 2.0, 0.01, true, 0 } },
		{ "2 s, sub-seconds, no DateTime, Enter half the time", { 37, 40, 2.0, 0.01, false, 0.5 } },
		{ "2 s, whole seconds, DateTime", { -3600.4, 40, 2.0, 1, true, 0 } },
		{ "2 s, no time in the files", { 37, 0, 2.0, 0, true, 0.2 } },
		{ "0.1 s, sub-seconds, clock never read (a host)", { 37, 40, 0.1, 0.01, false, 0 } },
		{ "Enter only", { 37, 40, 2.0, 0.01, true, 1 } },
	};

	for (size_t c = 0; c < sizeof cams / sizeof *cams; c++) {
		struct outcome all = { 0 }, one;
		for (unsigned seed = 1; seed <= 8; seed++) {
			simulate(&cams[c].m, seed + 100 * (unsigned)c, &one);
			all.shots += one.shots;
			all.wrong += one.wrong;
			all.held += one.held;
			all.asked += one.asked;
			all.window += one.window;
		}
		tap_ok(all.wrong == 0, "%s: %d shots, none for the wrong number (%d), each held "
		       "one decided right from its candidates", cams[c].what, all.shots, all.wrong);
		tap_diag("%s: %.1f %% held at once, %.1f %% asked, mean window %.3f s",
			 cams[c].what, 100.0 * all.held / all.shots, 100.0 * all.asked / all.shots,
			 all.held ? all.window / all.held : 0);
	}
}

int main(void)
{
	test_rule();
	test_exif_time();
	test_sessions();
	return tap_done();
}
