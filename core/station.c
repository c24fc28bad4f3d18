#include "station.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "durable.h"
#include "journal.h"
#include "metadata.h"
#include "pipeline.h"
#include "press.h"
#include "sha256.h"

/* Captures remembered for undo, newest last. */
#define UNDO_DEPTH 32
#define FILES_PER_CAPTURE 8
/* A decision is for the capture held this long at least: one that came
 * just before the key was meant for the one shown before it. */
#define HELD_SETTLE_S 1.0
/* How often an idle station asks whether Specify is still there. */
#define PROBE_S 10.0
/* How soon a check that found Specify away is tried again. */
#define RECHECK_S 5.0
/* The second file of a pair comes within this many seconds of the first. */
#define PAIR_S 60.0
/* Readings of the camera's clock kept (the journal has them all). */
#define CLOCK_READINGS 64

struct capture {
	long long items[FILES_PER_CAPTURE];
	size_t n;
	char identifier[STATION_ID_MAX];
	unsigned index;
	bool received;               /* from another program (a hook) */
};

struct station {
	station_options o;
	char *dir;                   /* o.login: a copy that owns its strings */
	pipeline *pipe;
	finisher *fin;
	journal *j;                  /* under lock */
	long long batch;
	long long lost;              /* shots erased on the camera before they came */
	/* The last file station_submit_received() took: its source stem,
	 * the name it got, when. */
	char host_source[256], host_stem[256], host_press[64];
	double host_at;
	double host_seen;            /* the latest seen handed in so far */
	unsigned host_seq;

	pthread_mutex_t lock;
	pthread_cond_t wake;         /* the checker: a new number, stop */
	pthread_t checker;
	bool checker_started, stopping;

	/* The current number and what is known of it (under lock). */
	station_status st;
	unsigned generation;         /* bumped by every scan */
	unsigned next_index;         /* of the current number */
	unsigned unnamed;            /* shots without a number so far */
	double recheck_at;
	/* Items of the current number attached this session (undo takes
	 * them off the count again). */
	long long attached_here[UNDO_DEPTH * 2];
	int nattached_here;
	int ordinal_base;            /* of the record found: see station_shot */

	struct capture undo[UNDO_DEPTH];
	int nundo;
	long long held_item;         /* the first file of the capture held last */
	double held_since;           /* when it became the one a decision is for */

	specify_session *session;    /* the checker's own */

	/* The camera's clock, as read (under lock). */
	char clock_source[64];
	press_clock clock[CLOCK_READINGS];
	size_t nclock;
};

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void changed(station *s)
{
	if (s->o.on_change)
		s->o.on_change(s->o.ud);
}

static void news(station *s, enum station_news_kind kind, const char *identifier,
		 const char *file, const char *message)
{
	station_news n = { kind, identifier ? identifier : "", file ? file : "",
			   message ? message : "" };

	if (s->o.on_news)
		s->o.on_news(s->o.ud, &n);
}

/* Tells the journal what is current, for hosts that hand files to this
 * station (lock held; best effort: shooting never waits for it). */
static void publish(station *s)
{
	journal_station js = {
		.batch_id = s->batch, .dir = s->dir, .identifier = s->st.identifier,
		.record_id = s->st.check == STATION_FOUND ? s->st.record_id : 0,
		.ordinal_base = s->ordinal_base,
	};

	journal_station_publish(s->j, &js, NULL);
}

/* Says when Specify comes or goes (lock held). */
static void set_online(station *s, bool online)
{
	if (online != s->st.online)
		news(s, online ? STATION_NEWS_ONLINE : STATION_NEWS_OFFLINE, NULL, NULL,
		     online ? "Specify is reachable again" :
		     "Specify cannot be reached: captures wait in the journal");
	s->st.online = online;
}

/* The index a file name gives stem: 1 for "STEM.ext", N for "STEM_N.ext",
 * 0 for another name. */
static unsigned index_of(const char *name, const char *stem)
{
	size_t len = strlen(stem);
	char *end;

	if (strncasecmp(name, stem, len) != 0)
		return 0;
	name += len;
	if (*name == '.')
		return 1;
	if (*name != '_' || name[1] < '1' || name[1] > '9')
		return 0;
	unsigned long n = strtoul(name + 1, &end, 10);
	return *end == '.' && n < 100000 ? (unsigned)n : 0;
}

/* The first index after those of identifier in the session folder. */
static unsigned next_index_in_dir(const char *dir, const char *identifier)
{
	unsigned next = 1;
	char *stem = NULL;
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d || catalog_name_build(identifier, 1, NULL, &stem, NULL, NULL)) {
		if (d)
			closedir(d);
		return next;
	}
	while ((e = readdir(d))) {
		unsigned i = index_of(e->d_name, stem);
		if (i >= next)
			next = i + 1;
	}
	closedir(d);
	free(stem);
	return next;
}

/* --- checking numbers against Specify, on the checker thread ------------- */

/* What the record callback gathers. */
struct found {
	station_record *r;
	const char *stem;            /* the identifier's file-name stem */
	long long taxon_id;
};

static double ordinal_of(const cJSON *join)
{
	const cJSON *o = cJSON_GetObjectItem(join, "ordinal");

	return cJSON_IsNumber(o) ? o->valuedouble : INFINITY;
}

/* The record's file names in the order Specify shows them (by ordinal;
 * the join rows come in the order they were made). */
static void list_names(station_record *r, const cJSON *joins)
{
	double last = -INFINITY;

	for (;;) {
		const cJSON *next = NULL, *x;
		cJSON_ArrayForEach(x, joins)
			if (ordinal_of(x) > last && (!next || ordinal_of(x) < ordinal_of(next)))
				next = x;
		if (!next)
			return;
		last = ordinal_of(next);
		cJSON_ArrayForEach(x, joins) {
			const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(
				cJSON_GetObjectItem(x, "attachment"), "origfilename"));
			size_t len = strlen(r->names);
			if (ordinal_of(x) == last && name)
				snprintf(r->names + len, sizeof r->names - len, "%s%s",
					 len ? ", " : "", name);
		}
		if (isinf(last))
			return;
	}
}

static int on_record(void *ud, const char *value, const cJSON *record)
{
	struct found *f = ud;
	station_record *r = f->r;
	const cJSON *x, *joins = cJSON_GetObjectItem(record, "collectionobjectattachments");

	(void)value;
	if (++r->count > 1)
		return 0;
	r->id = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(record, "id"));
	cJSON_ArrayForEach(x, joins) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(
			cJSON_GetObjectItem(x, "attachment"), "origfilename"));
		unsigned i = name && f->stem ? index_of(name, f->stem) : 0;
		r->attachments++;
		if (i >= r->next_index)
			r->next_index = i + 1;
	}
	list_names(r, joins);
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(record, "determinations")) {
		const char *uri = cJSON_GetStringValue(cJSON_GetObjectItem(x, "taxon"));
		const char *id = uri ? strstr(uri, "/taxon/") : NULL;
		if (cJSON_IsTrue(cJSON_GetObjectItem(x, "iscurrent")) && id)
			f->taxon_id = atoll(id + 7);
	}
	return 0;
}

int station_record_describe(specify_session *s, const char *identifier,
			    station_record *out, cs_error *err)
{
	const char *values[] = { identifier };
	char *stem = NULL;
	struct found f = { .r = out };
	cJSON *t = NULL;
	int ret;

	*out = (station_record){ .next_index = 1 };
	catalog_name_build(identifier, 1, NULL, &stem, NULL, NULL);
	f.stem = stem;
	ret = specify_records_lookup(s, "collectionobject", "catalognumber", values, 1,
				     on_record, &f, err);
	free(stem);
	if (ret || out->count != 1 || !f.taxon_id)
		return ret;
	if ((ret = specify_record_get(s, "taxon", f.taxon_id, &t, err)) == 0) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(t, "fullname"));
		snprintf(out->taxon, sizeof out->taxon, "%s", name ? name : "");
	}
	cJSON_Delete(t);
	return ret == CS_E_NOT_FOUND ? 0 : ret;
}

static int ensure_session(station *s, cs_error *err)
{
	specify_session *session;
	int ret;

	if (s->session)
		return 0;
	if ((ret = specify_session_login(&s->o.login, &session, err)))
		return ret;
	pthread_mutex_lock(&s->lock);
	s->session = session;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void decide_check(station *s, int ret, const station_record *f,
			 const cs_error *err);

/* Puts what the check found into the status, unless another number was
 * scanned meanwhile (lock held). */
static void settle_check(station *s, unsigned generation, int ret,
			 const station_record *f, const cs_error *err)
{
	station_status *st = &s->st;

	set_online(s, ret == 0 || !cs_error_is_transient(ret));
	if (generation != s->generation)
		return;
	decide_check(s, ret, f, err);
	publish(s);
	news(s, STATION_NEWS_CHECKED, st->identifier, NULL, st->message);
}

/* The check's outcome in the status (lock held). */
static void decide_check(station *s, int ret, const station_record *f,
			 const cs_error *err)
{
	station_status *st = &s->st;

	if (ret && cs_error_is_transient(ret)) {
		st->check = STATION_OFFLINE;
		snprintf(st->message, sizeof st->message, "%s: not checked, Specify "
			 "cannot be reached (%s); shoot on, it is checked and attached "
			 "when Specify is back", st->identifier, err->msg);
		s->recheck_at = now_s() + RECHECK_S;
		return;
	}
	if (ret) {
		st->check = STATION_OFFLINE;
		snprintf(st->message, sizeof st->message, "%s: not checked: %s",
			 st->identifier, err->msg);
		s->recheck_at = now_s() + RECHECK_S * 6;
		s->st.alerts++;
		return;
	}
	if (f->count == 0) {
		st->check = STATION_NOT_FOUND;
		snprintf(st->message, sizeof st->message, "NOT FOUND: no collection "
			 "object has catalog number %s in %s%s", st->identifier,
			 s->o.login.collection, s->o.keep_unknown ? " (shots stay unmatched)" :
			 ": check the label, scan again");
		st->alerts++;
	} else if (f->count > 1) {
		st->check = STATION_AMBIGUOUS;
		snprintf(st->message, sizeof st->message, "AMBIGUOUS: %d records have "
			 "catalog number %s: fix them in Specify", f->count, st->identifier);
		st->alerts++;
	} else {
		long long journaled = 0;
		journal_record_count(s->j, "collectionobject", f->id, &journaled, NULL);
		st->check = STATION_FOUND;
		st->record_id = f->id;
		st->attachments = f->attachments + s->nattached_here;
		s->ordinal_base = f->attachments - (int)journaled;
		snprintf(st->taxon, sizeof st->taxon, "%s", f->taxon);
		snprintf(st->message, sizeof st->message, "%s  %s  (%d image%s)",
			 st->identifier, f->taxon[0] ? f->taxon : "no determination",
			 st->attachments, st->attachments == 1 ? "" : "s");
		if (f->next_index > s->next_index)
			s->next_index = f->next_index;
	}
}

/* Anything at all, to learn whether Specify answers (lock not held). */
static int probe(station *s, cs_error *err)
{
	cJSON *c = NULL;
	int ret = ensure_session(s, err);

	if (ret == 0)
		ret = specify_record_get(s->session, "collection",
					 specify_session_info(s->session)->collection_id,
					 &c, err);
	cJSON_Delete(c);
	return ret;
}

static void *checker_main(void *arg)
{
	station *s = arg;
	double probe_at = 0;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		double now = now_s();
		bool check = s->st.check == STATION_CHECKING ||
			(s->st.check == STATION_OFFLINE && now >= s->recheck_at);

		if (check) {
			char identifier[STATION_ID_MAX];
			unsigned generation = s->generation;
			station_record f;
			cs_error err = { 0 };

			snprintf(identifier, sizeof identifier, "%s", s->st.identifier);
			pthread_mutex_unlock(&s->lock);
			int ret = ensure_session(s, &err);
			if (ret == 0)
				ret = station_record_describe(s->session, identifier, &f, &err);
			pthread_mutex_lock(&s->lock);
			settle_check(s, generation, ret, &f, &err);
			probe_at = now_s() + PROBE_S;
			pthread_mutex_unlock(&s->lock);
			changed(s);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		if (now >= probe_at) {
			cs_error err = { 0 };
			pthread_mutex_unlock(&s->lock);
			int ret = probe(s, &err);
			pthread_mutex_lock(&s->lock);
			bool was = s->st.online;
			set_online(s, ret == 0 || !cs_error_is_transient(ret));
			probe_at = now_s() + PROBE_S;
			if (was != s->st.online) {
				pthread_mutex_unlock(&s->lock);
				changed(s);
				pthread_mutex_lock(&s->lock);
			}
			continue;
		}
		double until = probe_at;
		if (s->st.check == STATION_OFFLINE && s->recheck_at < until)
			until = s->recheck_at;
		struct timespec ts = { .tv_sec = (time_t)until,
			.tv_nsec = (long)((until - floor(until)) * 1e9) };
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- what earlier sessions left ---------------------------------------------- */

static int on_left_over(void *ud, const journal_item *it)
{
	station_earlier *e = ud;
	const char *slash = strrchr(it->path, '/');
	char dir[sizeof e->dirs[0]];
	struct stat sb;

	/* Moved, renamed or deleted: a person dealt with it. */
	if (stat(it->path, &sb) != 0)
		return 0;
	e->count++;
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - it->path) + (slash == it->path) : 1,
		 slash ? it->path : ".");
	for (size_t i = 0; i < e->ndirs; i++)
		if (!strcmp(e->dirs[i], dir))
			return 0;
	if (e->ndirs < STATION_EARLIER_DIRS)
		snprintf(e->dirs[e->ndirs++], sizeof e->dirs[0], "%s", dir);
	else
		e->more_dirs = true;
	return 0;
}

/* (lock held) */
static int earlier_locked(station *s, station_earlier *out, cs_error *err)
{
	memset(out, 0, sizeof *out);
	return journal_left_over(s->j, s->o.login.server, s->o.login.collection, s->batch,
				 on_left_over, out, err);
}

int station_earlier_files(station *s, station_earlier *out, cs_error *err)
{
	pthread_mutex_lock(&s->lock);
	int ret = earlier_locked(s, out, err);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void station_earlier_say(const station_earlier *e, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	if (!e->count)
		return;
	len += (size_t)snprintf(out, size, "%zu earlier file%s need%s a decision: "
				"copystand upload", e->count, e->count == 1 ? "" : "s",
				e->count == 1 ? "s" : "");
	for (size_t i = 0; i < e->ndirs && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, " %s", e->dirs[i]);
	if (e->more_dirs && len < size)
		snprintf(out + len, size - len, " …");
}

/* A file an earlier session left ended without being attached: it goes
 * into the count of those waiting for a person, not into this session's
 * news one by one (lock held). */
static void tell_earlier(station *s)
{
	station_earlier e;
	cs_error err = { 0 };

	if (earlier_locked(s, &e, &err) != 0 || !e.count)
		return;
	station_earlier_say(&e, s->st.last, sizeof s->st.last);
	news(s, STATION_NEWS_EARLIER, "", "", s->st.last);
}

/* --- what the pipeline reports ------------------------------------------------ */

static void on_event(void *ud, const pipeline_event *ev)
{
	station *s = ud;
	station_status *st = &s->st;

	pthread_mutex_lock(&s->lock);
	switch (ev->state) {
	case JS_ATTACHED:
		st->online = true;
		if (ev->identifier && strcmp(ev->identifier, st->identifier) == 0) {
			int n = (int)(sizeof s->attached_here / sizeof s->attached_here[0]);
			if (s->nattached_here < n)
				s->attached_here[s->nattached_here++] = ev->item_id;
			if (st->check == STATION_FOUND)
				st->attachments++;
			snprintf(st->last, sizeof st->last, "attached ✓ %s (%d image%s)",
				 ev->name, st->attachments, st->attachments == 1 ? "" : "s");
		} else {
			snprintf(st->last, sizeof st->last, "attached ✓ %s", ev->name);
		}
		news(s, STATION_NEWS_ATTACHED, ev->identifier, ev->name, st->last);
		break;
	case JS_UNMATCHED:
	case JS_AMBIGUOUS:
	case JS_FAILED:
	case JS_HELD:
		if (ev->batch_id != s->batch) {
			tell_earlier(s);
			break;
		}
		snprintf(st->last, sizeof st->last, "NOT ATTACHED %s: %s", ev->name,
			 ev->reason ? ev->reason : journal_state_name(ev->state));
		st->alerts++;
		news(s, STATION_NEWS_PROBLEM, ev->identifier, ev->name, st->last);
		break;
	case JS_ROLLED_BACK:
		for (int i = 0; i < s->nattached_here; i++)
			if (s->attached_here[i] == ev->item_id) {
				s->attached_here[i] = s->attached_here[--s->nattached_here];
				if (st->check == STATION_FOUND && st->attachments > 0)
					st->attachments--;
				break;
			}
		snprintf(st->last, sizeof st->last, "taken back: %s", ev->name);
		break;
	default:
		if (ev->retry) {
			st->online = false;
			snprintf(st->last, sizeof st->last, "waiting to send %s: %s",
				 ev->name, ev->reason ? ev->reason : "");
		}
		break;
	}
	pthread_mutex_unlock(&s->lock);
	changed(s);
}

/* --- what the finisher reports ------------------------------------------------ */

/* The capture on the undo stack whose first file item is (lock held). */
static const struct capture *undo_entry(const station *s, long long item)
{
	for (int i = 0; i < s->nundo; i++)
		if (s->undo[i].items[0] == item)
			return &s->undo[i];
	return NULL;
}

/* The index of identifier's name that name is (0: none of its). */
static unsigned index_in_name(const char *identifier, const char *name)
{
	char *stem = NULL;
	unsigned index = 0;

	if (identifier[0] && catalog_name_build(identifier, 1, NULL, &stem, NULL, NULL) == 0)
		index = index_of(name, stem);
	free(stem);
	return index;
}

/* The numbers a capture held at its press may be (lock held). */
static void note_held_press(station_status *st, const char *candidates)
{
	const char *last = strrchr(candidates, '\n');

	st->held_press = true;
	st->held_numbers = 1;
	for (const char *p = candidates; (p = strchr(p, '\n')); p++)
		st->held_numbers++;
	snprintf(st->held_before, sizeof st->held_before, "%.*s",
		 (int)strcspn(candidates, "\n"), candidates);
	snprintf(st->held_after, sizeof st->held_after, "%s", last ? last + 1 : candidates);
}

static void clear_held(station *s)
{
	s->held_item = 0;
	s->st.held_name[0] = s->st.held_label[0] = '\0';
	s->st.held_before[0] = s->st.held_after[0] = '\0';
	s->st.held_press = false;
	s->st.held_numbers = 0;
}

static void remember(station *s, const char *identifier, unsigned index, bool received,
		     const long long *ids, size_t n);

static void on_finished(void *ud, const finish_event *ev)
{
	station *s = ud;
	station_status *st = &s->st;

	pthread_mutex_lock(&s->lock);
	/* Another program's capture (a gphoto2 hook's), seen first now:
	 * undone like one of the station's own. */
	const struct capture *known = undo_entry(s, ev->first_item);
	bool received = known ? known->received : ev->batch_id == s->batch;
	if (!known && received)
		remember(s, ev->identifier, index_in_name(ev->identifier, ev->name), true,
			 ev->items, ev->nitems);
	/* An earlier session's capture, unless a person here decided it. */
	bool earlier = ev->batch_id != s->batch && ev->first_item != s->held_item;
	if (ev->state != JS_HELD && ev->first_item == s->held_item)
		clear_held(s);
	if (ev->state == JS_HELD) {
		if (s->held_item != ev->first_item)
			s->held_since = now_s();
		clear_held(s);
		s->held_item = ev->first_item;
		snprintf(st->held_name, sizeof st->held_name, "%s", ev->name);
		snprintf(st->held_label, sizeof st->held_label, "%s", ev->label ? ev->label : "");
		if (ev->candidates)
			note_held_press(st, ev->candidates);
		snprintf(st->last, sizeof st->last, "HELD %s: %s", ev->name, ev->reason);
		st->alerts++;
		news(s, STATION_NEWS_PROBLEM, ev->identifier, ev->name, st->last);
	} else if (ev->state == JS_UNMATCHED && earlier) {
		tell_earlier(s);
	} else if (ev->state == JS_UNMATCHED) {
		snprintf(st->last, sizeof st->last, "NOT ATTACHED %s: %s", ev->name,
			 ev->reason ? ev->reason : "no catalog number");
		st->alerts++;
		news(s, STATION_NEWS_PROBLEM, ev->identifier, ev->name, st->last);
	} else if (ev->label && ev->identifier[0]) {
		snprintf(st->last, sizeof st->last, "named from the label: %s", ev->name);
	} else if (received) {
		snprintf(st->last, sizeof st->last, "received %s from another program",
			 ev->name);
	} else if (ev->bind == JB_TIME || ev->bind == JB_PERSON) {
		snprintf(st->last, sizeof st->last, "captured %s", ev->name);
	}
	pthread_mutex_unlock(&s->lock);
	pipeline_kick(s->pipe);
	changed(s);
}

static int read_label(void *ud, const char *jpeg, char (*codes)[256], size_t max,
		      size_t *n, cs_error *err)
{
	station *s = ud;

	return s->o.read_label(s->o.label_ud, jpeg, codes, max, n, err);
}

struct journal_names {
	const char *stem;
	unsigned next;
};

static int after_journal_name(void *ud, const journal_item *it)
{
	struct journal_names *w = ud;
	unsigned i = it->state == JS_ROLLED_BACK ? 0 : index_of(it->name, w->stem);

	if (i >= w->next)
		w->next = i + 1;
	return 0;
}

/* The next index of identifier after the folder's files and the names
 * the journal gave it (Specify is not asked: this works offline too). */
static unsigned next_index_for(journal *j, const char *dir, const char *identifier)
{
	struct journal_names w = { NULL, next_index_in_dir(dir, identifier) };
	char *first = NULL;

	if (catalog_name_build(identifier, 1, NULL, &first, NULL, NULL) == 0) {
		w.stem = first;
		journal_items_of_identifier(j, identifier, after_journal_name, &w, NULL);
	}
	free(first);
	return w.next;
}

/* The next name of identifier in dir, for a capture named after the fact
 * (from its label or the time of its press), with its record when the
 * check found it. */
static int name_after(void *ud, const char *identifier, const char *dir,
		      finish_name *out)
{
	station *s = ud;
	char *built = NULL;
	unsigned index;

	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&s->lock);
	if (strcmp(identifier, s->st.identifier) == 0 && strcmp(dir, s->dir) == 0) {
		index = s->next_index++;
		if (s->st.check == STATION_FOUND) {
			out->record_id = s->st.record_id;
			out->ordinal_base = s->ordinal_base;
		}
	} else {
		index = next_index_for(s->j, dir, identifier);
	}
	pthread_mutex_unlock(&s->lock);
	int ret = catalog_name_build(identifier, index, NULL, &built, NULL, NULL);
	if (ret == 0)
		snprintf(out->stem, sizeof out->stem, "%s", built);
	free(built);
	return ret;
}

static int start_finisher(station *s, cs_error *err)
{
	finish_options fo = {
		.journal_path = s->o.journal_path, .server = s->o.login.server,
		.collection = s->o.login.collection, .format = s->o.format,
		.scan = s->o.scan, .station_name = s->o.station_name, .stamp = s->o.stamp,
		.raw = s->o.raw, .defaults = s->o.defaults, .label = s->o.label,
		.read_label = s->o.read_label ? read_label : NULL,
		.name = name_after, .on_done = on_finished, .ud = s,
	};

	return finish_start(&fo, &s->fin, err);
}

/* --- the public face ------------------------------------------------------- */

int station_options_from_config(const cs_config *cfg, station_options *o,
				enum finish_label *label, cs_error *err)
{
	static const char *const unknowns[] = { "refuse", "keep", NULL };
	static const char *const raws[] = { "upload", "local", "later", NULL };
	static const char *const labels[] = { "off", "check", "name", NULL };
	int keep, raw, lab = 0, ret;

	if ((ret = config_get_choice(cfg, "unknown", unknowns, &keep, err)) ||
	    (ret = config_get_choice(cfg, "raw", raws, &raw, err)) ||
	    (label && (ret = config_get_choice(cfg, "label", labels, &lab, err))) ||
	    (ret = config_attachment_defaults(cfg, &o->defaults, err)))
		return ret;
	o->keep_unknown = keep;
	o->stamp = !config_get(cfg, "stamp") || config_get_bool(cfg, "stamp");
	o->station_name = config_get(cfg, "station-name");
	o->scan.prefix = config_get(cfg, "scan-prefix");
	o->scan.suffix = config_get(cfg, "scan-suffix");
	o->raw = (enum finish_raw)raw;
	if (label)
		*label = (enum finish_label)lab;
	return 0;
}

static int copy_options(station *s, const station_options *o, cs_error *err)
{
	s->o = *o;
	s->o.login = (specify_login){ 0 };
	if (!o->dir || !o->journal_path || !o->format)
		return cs_error_set(err, CS_E_CONFIG, "a station needs a session "
				    "folder, a journal and a catalog-number format");
	if (!(s->dir = strdup(o->dir)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	return specify_login_copy(&s->o.login, &o->login, err);
}

static void station_free(station *s)
{
	specify_session_free(s->session);
	journal_close(s->j);
	free(s->dir);
	specify_login_clear(&s->o.login);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}

static int start_batch(station *s, cs_error *err)
{
	char label[600];
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	snprintf(label, sizeof label, "station %04d-%02d-%02d %02d:%02d %s",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, s->dir);
	return journal_batch_new(s->j, "station", s->o.login.server,
				 s->o.login.collection, 0,
				 label, &s->batch, err);
}

int station_open(const station_options *o, station **out, cs_error *err)
{
	station *s = calloc(1, sizeof *s);
	int ret;

	*out = NULL;
	if (!s)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	if ((ret = copy_options(s, o, err)) ||
	    (ret = journal_open(o->journal_path, &s->j, err)) ||
	    (ret = start_batch(s, err))) {
		station_free(s);
		return ret;
	}
	s->st.batch = s->batch;
	s->st.online = true;
	publish(s);
	pipeline_options po = {
		.journal_path = o->journal_path, .login = s->o.login,
		.max_inflight = o->max_inflight, .retry_base_s = o->retry_base_s,
		.retry_cap_s = o->retry_cap_s, .on_event = on_event, .ud = s,
	};
	if ((ret = pipeline_start(&po, &s->pipe, err))) {
		station_free(s);
		return ret;
	}
	if ((ret = start_finisher(s, err))) {
		pipeline_stop(s->pipe);
		station_free(s);
		return ret;
	}
	if (pthread_create(&s->checker, NULL, checker_main, s) != 0) {
		station_close(s);
		return cs_error_set(err, CS_E_NOMEM, "cannot start the station's thread");
	}
	s->checker_started = true;
	pthread_mutex_lock(&s->lock);
	tell_earlier(s);
	pthread_mutex_unlock(&s->lock);
	*out = s;
	return 0;
}

int station_scan(station *s, const char *line, cs_error *err)
{
	return station_scan_at(s, line, 0, err);
}

int station_scan_at(station *s, const char *line, double at, cs_error *err)
{
	char *identifier = NULL;
	int ret = catalog_scan_parse(s->o.format, line, &s->o.scan, &identifier, err);
	cs_error jerr;

	/* Never later than now: a scan cannot come after it is handed on. */
	if (!(at > 0) || at > now_s())
		at = now_s();
	pthread_mutex_lock(&s->lock);
	s->generation++;
	s->nattached_here = 0;
	s->st.record_id = 0;
	s->st.taxon[0] = '\0';
	s->st.attachments = 0;
	if (ret == 0 && strlen(identifier) >= sizeof s->st.identifier)
		ret = cs_error_set(err, CS_E_INVALID, "the catalog number is too long");
	if (ret) {
		s->st.check = STATION_NONE;
		s->st.identifier[0] = '\0';
		snprintf(s->st.message, sizeof s->st.message, "NOT A CATALOG NUMBER: %s; "
			 "scan the label again", err->msg);
		s->st.alerts++;
	} else {
		s->st.check = STATION_CHECKING;
		snprintf(s->st.identifier, sizeof s->st.identifier, "%s", identifier);
		snprintf(s->st.message, sizeof s->st.message, "%s: checking…", identifier);
		s->next_index = next_index_in_dir(s->dir, identifier);
		pthread_cond_signal(&s->wake);
	}
	/* Every press is placed against the scans' times (core/press.h). */
	if (journal_scan_add(s->j, s->batch, at, s->st.identifier, &jerr)) {
		snprintf(s->st.message, sizeof s->st.message, "SCAN NOT NOTED: %s: shots of "
			 "the camera's button are held until a person names them", jerr.msg);
		s->st.alerts++;
	}
	publish(s);
	pthread_mutex_unlock(&s->lock);
	free(identifier);
	changed(s);
	return ret;
}

int station_may_shoot(station *s, cs_error *err)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->st.check == STATION_NONE && s->o.label != FINISH_LABEL_NAME)
		ret = cs_error_set(err, CS_E_INVALID, "scan a specimen first");
	else if (!s->o.keep_unknown && s->st.check == STATION_NOT_FOUND)
		ret = cs_error_set(err, CS_E_INVALID, "%s is not in %s: not shooting "
				   "(scan another label, or run the station with "
				   "--unknown keep)", s->st.identifier, s->o.login.collection);
	else if (s->st.check == STATION_AMBIGUOUS)
		ret = cs_error_set(err, CS_E_INVALID, "%s belongs to several records: "
				   "fix them in Specify first", s->st.identifier);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* The stem of a shot without a number (yet): found again by date and
 * time. */
static void unnamed_stem(char *stem, size_t len, const char *what, unsigned n)
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	snprintf(stem, len, "%s_%04d%02d%02d-%02d%02d%02d_%u", what, tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, n);
}

void station_shot_prepare(station *s, station_shot *out)
{
	char *stem = NULL;

	memset(out, 0, sizeof *out);
	out->bind = JB_TRIGGER;
	out->lo = now_s();
	out->hi = INFINITY;
	pthread_mutex_lock(&s->lock);
	if (s->st.check != STATION_NONE &&
	    catalog_name_build(s->st.identifier, s->next_index, NULL, &stem, NULL, NULL) == 0) {
		snprintf(out->identifier, sizeof out->identifier, "%s", s->st.identifier);
		snprintf(out->stem, sizeof out->stem, "%s", stem);
		out->index = s->next_index++;
		if (s->st.check == STATION_FOUND) {
			out->record_id = s->st.record_id;
			out->ordinal_base = s->ordinal_base;
		}
	} else {
		unnamed_stem(out->stem, sizeof out->stem, "unnamed", ++s->unnamed);
	}
	pthread_mutex_unlock(&s->lock);
	free(stem);
}

void station_shot_pending(station *s, double announced, station_shot *out)
{
	memset(out, 0, sizeof *out);
	out->bind = JB_PENDING;
	out->lo = -INFINITY;
	out->hi = announced;
	pthread_mutex_lock(&s->lock);
	unnamed_stem(out->stem, sizeof out->stem, "pending", ++s->unnamed);
	pthread_mutex_unlock(&s->lock);
}

void station_shot_rename(station *s, station_shot *shot)
{
	finish_name name;

	if (!shot->identifier[0] || name_after(s, shot->identifier, s->dir, &name)) {
		pthread_mutex_lock(&s->lock);
		unnamed_stem(shot->stem, sizeof shot->stem,
			     shot->bind == JB_PENDING ? "pending" : "unnamed", ++s->unnamed);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	snprintf(shot->stem, sizeof shot->stem, "%s", name.stem);
}

/* A name of identifier is free again for the next shot of that number,
 * if no later one took the next (lock held). */
static void give_back_index(station *s, const char *identifier, unsigned index)
{
	if (index && index + 1 == s->next_index && strcmp(identifier, s->st.identifier) == 0)
		s->next_index = index;
}

void station_shot_cancel(station *s, const station_shot *shot)
{
	pthread_mutex_lock(&s->lock);
	give_back_index(s, shot->identifier, shot->index);
	pthread_mutex_unlock(&s->lock);
}

int station_clock_read(station *s, const char *source, double before, double after,
		       double camera_time, double res, station_clock *out, cs_error *err)
{
	press_clock r = { after, camera_time - after, camera_time + res - before };
	double lo, hi;
	bool changed;

	pthread_mutex_lock(&s->lock);
	if (strcmp(source, s->clock_source) != 0) {
		snprintf(s->clock_source, sizeof s->clock_source, "%s", source);
		s->nclock = 0;
	}
	/* One that contradicts those before: the clock was set on the camera
	 * (press_decide sees the same in the journal's readings). */
	press_clock_offset(s->clock, s->nclock, NULL, 0, after, &lo, &hi);
	changed = s->nclock && (r.lo > hi || r.hi < lo);
	if (changed)
		s->nclock = 0;
	if (s->nclock == CLOCK_READINGS) {
		memmove(s->clock, s->clock + 1, (CLOCK_READINGS - 1) * sizeof *s->clock);
		s->nclock--;
	}
	s->clock[s->nclock++] = r;
	journal_clock c = { r.at, r.lo, r.hi };
	int ret = journal_clock_add(s->j, s->batch, source, &c, err);
	if (out) {
		out->changed = changed;
		press_clock_offset(s->clock, s->nclock, NULL, 0, after, &out->lo, &out->hi);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Puts a capture on the undo stack (lock held), in the order the journal
 * took them: another program's come in when they are finished, which may
 * be after a later capture of the station's own. */
static void remember(station *s, const char *identifier, unsigned index, bool received,
		     const long long *ids, size_t n)
{
	int at = s->nundo;

	if (n > FILES_PER_CAPTURE)
		n = FILES_PER_CAPTURE;
	while (at > 0 && s->undo[at - 1].items[0] > ids[0])
		at--;
	if (s->nundo == UNDO_DEPTH) {
		if (at == 0)
			return;         /* older than all it keeps */
		memmove(s->undo, s->undo + 1, (size_t)--at * sizeof *s->undo);
		s->nundo--;
	}
	memmove(s->undo + at + 1, s->undo + at, (size_t)(s->nundo - at) * sizeof *s->undo);
	s->nundo++;
	struct capture *c = &s->undo[at];
	memcpy(c->items, ids, n * sizeof *ids);
	c->n = n;
	snprintf(c->identifier, sizeof c->identifier, "%s", identifier);
	c->index = index;
	c->received = received;
}

/* One file of a capture as the journal takes it: named, or matched when
 * the check found the record already (ordinal: its place among the
 * record's images). */
static int fill_item(journal_item *it, const station_shot *shot,
		     const station_file *f, long long batch, int ordinal)
{
	const char *base = strrchr(f->path, '/');

	*it = (journal_item){
		.batch_id = batch, .size = f->size,
		.path = strdup(f->path), .name = strdup(base ? base + 1 : f->path),
		.sha256 = f->sha256 ? strdup(f->sha256) : NULL,
		.mimetype = strdup(f->mimetype ? f->mimetype : "application/octet-stream"),
		.target = strdup("catalog-number"),
		.state = JS_CAPTURED,   /* the finisher takes it from here */
	};
	if (shot->identifier[0] && shot->record_id) {
		it->record_table = strdup("collectionobject");
		it->record_id = shot->record_id;
		it->ordinal = ordinal < 0 ? 0 : ordinal;
	}
	if (f->card && !(it->card = strdup(f->card)))
		return CS_E_NOMEM;
	if (shot->identifier[0])
		it->identifier = strdup(shot->identifier);
	else if (shot->bind != JB_PENDING)
		it->reason = strdup("shot with no catalog number scanned: rename the "
				    "file to its catalog number and run copystand upload");
	it->press = (journal_press){ .source = strdup(shot->source[0] ? shot->source : "camera"),
				     .lo = shot->lo, .hi = shot->hi, .bind = shot->bind };
	return it->path && it->name && it->mimetype && it->target && it->press.source &&
		(it->identifier || it->reason || shot->bind == JB_PENDING) &&
		(it->sha256 || !f->sha256) &&
		(it->record_table || !it->record_id) ? 0 : CS_E_NOMEM;
}

/* Journals the files of one capture (the JPEG of a pair first: the
 * pipeline sends in journal order, and the JPEG is what people look at in
 * Specify), in one transaction. */
static int journal_capture(journal *j, long long batch, const station_shot *shot,
			   const station_file *files, size_t n, long long *ids,
			   cs_error *err)
{
	journal_item items[FILES_PER_CAPTURE] = { 0 };
	long long journaled = 0;
	int ret = 0;

	if (n == 0 || n > FILES_PER_CAPTURE)
		return cs_error_set(err, CS_E_INVALID, "a capture has 1 to %d files",
				    FILES_PER_CAPTURE);
	if (shot->record_id)
		journal_record_count(j, "collectionobject", shot->record_id, &journaled, NULL);
	for (size_t i = 0, k = 0, pass = 0; pass < 2 && ret == 0; pass++)
		for (i = 0; i < n && ret == 0; i++) {
			bool jpeg = metadata_is_jpeg(files[i].mimetype, files[i].path);
			if (jpeg != (pass == 0))
				continue;
			if (fill_item(&items[k], shot, &files[i], batch,
				      shot->ordinal_base + (int)journaled + (int)k))
				ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
			k++;
		}
	if (ret == 0)
		ret = journal_items_add(j, items, n, ids, err);
	for (size_t i = 0; i < n; i++)
		journal_item_clear(&items[i]);
	return ret;
}

/* How each file of a capture came into the session folder. */
enum taken { TAKEN_NOT, TAKEN_COPIED, TAKEN_MOVED };

/* One capture's files on their way into the session folder. */
struct intake {
	station_file files[FILES_PER_CAPTURE];
	char *dsts[FILES_PER_CAPTURE], shas[FILES_PER_CAPTURE][65];
	enum taken how[FILES_PER_CAPTURE];
	struct stat orig[FILES_PER_CAPTURE];   /* a copied file's original */
};

/* A capture program that writes a shot again with the same bytes (a
 * re-save, a copy back into its folder) hands in no new shot: a file with
 * the content of one this session already took, or an earlier one took
 * and did not give up, is refused, so that one image is never attached
 * twice, nor to the specimen on the stand now. */
static int taken_before(journal *j, long long batch, const struct intake *in,
			const char *const *paths, size_t n, cs_error *err)
{
	for (size_t i = 0; i < n; i++) {
		char *name = NULL;
		long long found = 0;
		int ret = journal_find_content(j, batch, in->shas[i], &name, &found, err);

		if (ret == CS_E_NOT_FOUND)
			continue;
		if (ret == 0)
			ret = cs_error_set(err, CS_E_INVALID, "%s has the same bytes as %s, "
					   "taken before in %s: it is not attached twice",
					   paths[i], name, found == batch ? "this session" :
					   "an earlier session");
		free(name);
		return ret;
	}
	return 0;
}

/* Journals a capture under s->lock; refused (in, a host's, not NULL)
 * when one of its files has the bytes of one taken before. */
static int submit(station *s, const station_shot *shot, const station_file *files,
		  size_t n, const struct intake *in, const char *const *paths, cs_error *err)
{
	long long ids[FILES_PER_CAPTURE];
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (in)
		ret = taken_before(s->j, s->batch, in, paths, n, err);
	if (ret == 0)
		ret = journal_capture(s->j, s->batch, shot, files, n, ids, err);
	if (ret == 0) {
		const char *base = strrchr(files[0].path, '/');
		remember(s, shot->identifier, shot->index, false, ids, n);
		/* A press still to be placed in time says its name once it has
		 * one (on_finished). */
		if (shot->bind != JB_PENDING)
			snprintf(s->st.last, sizeof s->st.last, "captured %s%s",
				 base ? base + 1 : files[0].path, n > 1 ? " (+ pair)" : "");
		if (!shot->identifier[0] && shot->bind != JB_PENDING)
			s->st.alerts++;
	}
	pthread_mutex_unlock(&s->lock);
	if (ret == 0) {
		finish_kick(s->fin);
		changed(s);
	}
	return ret;
}

int station_submit(station *s, const station_shot *shot,
		   const station_file *files, size_t n, cs_error *err)
{
	return submit(s, shot, files, n, NULL, NULL, err);
}

/* --- files from capture hosts ------------------------------------------------ */

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* Was what fd holds (*orig before the copy of it, whose hash is sha) the
 * same while it was copied?  Its writer may have set its times meanwhile
 * (gphoto2 sets them after closing), which changes no byte: then it is
 * read again and compared, and *orig becomes the version copied. */
static int copied_whole(int fd, const char *src, struct stat *orig, const char *sha,
			cs_error *err)
{
	struct stat now;
	char again[65];
	long long size;

	if (fstat(fd, &now) == 0 && now.st_size == orig->st_size) {
		if (same_time(now.st_mtim, orig->st_mtim) && same_time(now.st_ctim, orig->st_ctim))
			return 0;
		if (sha256_fd(fd, src, again, &size, err) == 0 && size == now.st_size &&
		    strcmp(again, sha) == 0) {
			*orig = now;
			return 0;
		}
	}
	return cs_error_set(err, CS_E_IO, "%s changed while it was being copied: it is "
			    "taken again once it is still", src);
}

/* Copies src to dst, which must not exist yet (never over another
 * file), durably and hashed as it goes; *orig gets what src was.  A file
 * that changed meanwhile is not taken: its writer was not done. */
static int copy_in(const char *src, const char *dst, station_file *f, char sha[65],
		   struct stat *orig, cs_error *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), ret;
	durable_file out;

	if (in < 0)
		return cs_error_set(err, CS_E_IO, "cannot read %s: %s", src, strerror(errno));
	if (fstat(in, orig) < 0)
		memset(orig, 0, sizeof *orig);
	if ((ret = durable_open(&out, dst, 0644, false, err)) == 0) {
		if ((ret = durable_copy_fd(&out, in, 0, src, err)) == 0)
			ret = durable_commit(&out, &f->size, sha, err);
		else
			durable_abort(&out);
		if (ret == 0 && (ret = copied_whole(in, src, orig, sha, err)))
			unlink(dst);
	}
	close(in);
	return ret;
}

/* Takes the i-th file of a capture from src into dst: renamed in when
 * move and the filesystem allows it (nothing copied), else copied. */
static int take_in(struct intake *in, size_t i, const char *src, bool move, cs_error *err)
{
	station_file *f = &in->files[i];
	int ret = move ? durable_move(src, in->dsts[i], &f->size, in->shas[i], err) : 1;

	if (ret == 1 && (ret = copy_in(src, in->dsts[i], f, in->shas[i], &in->orig[i], err)) == 0)
		in->how[i] = TAKEN_COPIED;
	else if (ret == 0)
		in->how[i] = TAKEN_MOVED;
	f->path = in->dsts[i];
	f->sha256 = in->shas[i];
	f->mimetype = metadata_mimetype(in->dsts[i]);
	return ret;
}

/* Takes the files of one capture into dir under shot's stem (the
 * extension in lower case, as the camera module writes it): moved when
 * move allows, else copied. */
static int copy_capture(const char *dir, const station_shot *shot,
			const char *const *paths, size_t n, bool move, struct intake *in,
			cs_error *err)
{
	int ret = 0;

	if (n == 0 || n > FILES_PER_CAPTURE)
		return cs_error_set(err, CS_E_INVALID, "a capture has 1 to %d files",
				    FILES_PER_CAPTURE);
	for (size_t i = 0; i < n && ret == 0; i++) {
		const char *base = strrchr(paths[i], '/'), *dot;
		base = base ? base + 1 : paths[i];
		dot = strrchr(base, '.');
		if (asprintf(&in->dsts[i], "%s/%s%s", dir, shot->stem, dot ? dot : "") < 0) {
			in->dsts[i] = NULL;
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
			break;
		}
		for (char *c = strrchr(in->dsts[i], '.'); dot && c && *c; c++)
			*c = (char)tolower((unsigned char)*c);
		ret = take_in(in, i, paths[i], move, err);
	}
	return ret;
}

/* Frees what a capture's intake holds; failed: its copies are removed.
 * Files moved in go back where their owner left them when they were
 * refused (the same bytes as a file taken before: no shot, as in the
 * watched folder of --watch-keep copy), never over a file written there
 * since.  Else err says where they are: they stay in the session folder
 * (a station says so at its start), never moved back, which would hand
 * them to the watch again and again while the journal fails. */
static void drop_copies(struct intake *in, const char *const *paths, size_t n, bool failed,
			bool refused, cs_error *err)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(err->msg);
		cs_error back = { 0 };
		if (failed && in->how[i] == TAKEN_COPIED)
			unlink(in->dsts[i]);
		else if (failed && in->how[i] == TAKEN_MOVED &&
			 (!refused || durable_move(in->dsts[i], paths[i], NULL, NULL, &back) != 0) &&
			 len < sizeof err->msg)
			snprintf(err->msg + len, sizeof err->msg - len, "; %s is in the session "
				 "folder as %s, not journaled", paths[i], in->dsts[i]);
		free(in->dsts[i]);
	}
}

/* Given up by their owner and copied (another filesystem): the originals
 * go, now that their copies are journaled, unless they changed meanwhile
 * (a new file under the same name is not this one).  What cannot go is
 * said. */
static void drop_originals(station *s, const struct intake *in, const char *const *paths,
			   size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct stat *o = &in->orig[i];
		struct stat now;
		const char *why = "it changed after it was copied";
		if (in->how[i] != TAKEN_COPIED)
			continue;
		if (lstat(paths[i], &now) < 0)
			why = strerror(errno);
		else if (durable_same_version(&now, o)) {
			if (unlink(paths[i]) == 0)
				continue;
			why = strerror(errno);
		}
		pthread_mutex_lock(&s->lock);
		snprintf(s->st.last, sizeof s->st.last, "took %s but did not remove it: %s; "
			 "remove it by hand", paths[i], why);
		s->st.alerts++;
		news(s, STATION_NEWS_PROBLEM, NULL, paths[i], s->st.last);
		pthread_mutex_unlock(&s->lock);
	}
}

static int give_name(char **name, const char *path, cs_error *err)
{
	const char *base = strrchr(path, '/');

	if (name && !(*name = strdup(base ? base + 1 : path)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	return 0;
}

int station_submit_copies(station *s, station_shot *shot, const char *const *paths,
			  size_t n, char **name, cs_error *err)
{
	struct intake in = { 0 };
	station_shot button;
	cs_error e = { 0 };
	int ret;

	err = err ? err : &e;

	/* Handed in now: pressed before. */
	if (!shot) {
		station_shot_pending(s, now_s(), &button);
		snprintf(button.source, sizeof button.source, "%s", STATION_HOST_CAMERA);
		shot = &button;
	} else if (isinf(shot->hi)) {
		shot->hi = now_s();
	}
	ret = copy_capture(s->dir, shot, paths, n, false, &in, err);
	if (ret == 0)
		ret = submit(s, shot, in.files, n, &in, paths, err);
	bool journaled = ret == 0;
	if (ret == 0)
		ret = give_name(name, in.dsts[0], err);
	drop_copies(&in, paths, n, !journaled, false, err);
	return ret;
}

/* Whether dir already holds stem with the extension of file (as
 * copy_capture would name it). */
static bool taken(const char *dir, const char *stem, const char *file)
{
	const char *dot = strrchr(file, '.');
	char *path = NULL;
	bool there;

	if (asprintf(&path, "%s/%s%s", dir, stem, dot ? dot : "") < 0)
		return true;
	for (char *c = strrchr(path, '.'); dot && c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	there = access(path, F_OK) == 0;
	free(path);
	return there;
}

/* The stem for a host's file of source (its name without the extension):
 * the name its other half got a moment ago (IMG_0004.CR2, then
 * IMG_0004.JPG, each handed in alone), else a provisional one that the
 * finisher places in time; the same stem again with that name taken is
 * another shot. */
static void host_stem(const journal_station *cur, const char *source, const char *base,
		      unsigned seq, char *stem, size_t size)
{
	size_t len;

	if (cur->last_source && cur->last_stem && !strcmp(cur->last_source, source) &&
	    now_s() - cur->last_at < PAIR_S && !taken(cur->dir, cur->last_stem, base)) {
		snprintf(stem, size, "%s", cur->last_stem);
		return;
	}
	unnamed_stem(stem, size, "pending", (unsigned)getpid());
	/* One process handing in several files within a second. */
	if (seq && (len = strlen(stem)) < size)
		snprintf(stem + len, size - len, "-%u", seq);
}

/* Takes a host's files (one press, handed in at or after seen) into the
 * session of cur (moved when move allows, else copied: in) and journals
 * them there under a stem (into stem, 256 bytes), named from the time of
 * their press; lock (may be NULL) guards j.  A failure undoes in. */
/* The file name a host gave a capture (its first file's), and into source
 * (256 bytes) that name up to its first dot. */
static const char *host_source_of(const char *const *paths, size_t n, char *source)
{
	const char *base = n ? strrchr(paths[0], '/') : NULL;

	base = base ? base + 1 : n ? paths[0] : "";
	snprintf(source, 256, "%.*s", (int)strcspn(base, "."), base);
	return base;
}

static int host_capture(journal *j, pthread_mutex_t *lock, const journal_station *cur,
			double seen, unsigned seq, const char *press_source,
			const char *const *paths, size_t n, bool move, struct intake *in,
			char **name, char *stem, cs_error *err)
{
	station_shot shot = { .bind = JB_PENDING, .lo = -INFINITY, .hi = seen };
	char source[256];
	const char *base = host_source_of(paths, n, source);
	int ret;

	snprintf(shot.source, sizeof shot.source, "%s", press_source);
	host_stem(cur, source, base, seq, shot.stem, sizeof shot.stem);
	bool journaled = false, refused = false;
	if ((ret = copy_capture(cur->dir, &shot, paths, n, move, in, err)) == 0) {
		if (lock)
			pthread_mutex_lock(lock);
		if ((ret = taken_before(j, cur->batch_id, in, paths, n, err)) != 0)
			refused = ret == CS_E_INVALID;
		else if ((ret = journal_capture(j, cur->batch_id, &shot, in->files, n, NULL,
						 err)) == 0) {
			journaled = true;
			journal_station_note(j, cur->batch_id, source, shot.stem, NULL);
		}
		if (lock)
			pthread_mutex_unlock(lock);
	}
	if (ret == 0)
		ret = give_name(name, in->dsts[0], err);
	/* Journaled files stay, whatever comes after. */
	drop_copies(in, paths, n, !journaled, refused, err);
	snprintf(stem, sizeof shot.stem, "%s", shot.stem);
	return ret;
}

int station_submit_to_running(const char *journal_path, const char *const *paths,
			      size_t n, char **name, cs_error *err)
{
	journal_station cur = { 0 };
	journal *j = NULL;
	struct intake in = { 0 };
	cs_error e = { 0 };
	char stem[256];
	int ret;

	err = err ? err : &e;
	/* Named from the time of its press by the station, which knows its
	 * scans (a station that ended has cleared its number). */
	if ((ret = journal_open(journal_path, &j, err)) == 0 &&
	    (ret = journal_station_current(j, &cur, err)) == 0)
		ret = host_capture(j, NULL, &cur, now_s(), 0, STATION_HOST_CAMERA, paths, n,
				   false, &in, name, stem, err);
	journal_station_clear(&cur);
	journal_close(j);
	return ret;
}

/* The number ending a capture program's file name (IMG_0041: 41, after a
 * prefix of 4), or -1. */
static long name_counter(const char *source, size_t *prefix)
{
	size_t len = strlen(source), i = len;

	while (i > 0 && isdigit((unsigned char)source[i - 1]))
		i--;
	if (i == len || len - i > 9)
		return -1;
	*prefix = i;
	return strtol(source + i, NULL, 10);
}

/* Which presses a received file is placed among (into out, 64 bytes).
 * Capture programs number their files in the order of the presses and
 * write one file after the other, and the rule places a press after the
 * ones that came in before it.  A file that comes in after one numbered
 * after it (a share delivered it late), or after one that was begun (or
 * written) after it was seen (written whole while it was still being
 * written), may have been pressed before that one: it is placed alone,
 * and held when a scan may have come before its press.  A counter that
 * wraps (IMG_9999, then IMG_0001) asks once. */
static void received_press_source(station *s, const char *source, double seen, char *out)
{
	size_t pa = 0, pb = 0;
	long a = name_counter(source, &pa), b = name_counter(s->host_source, &pb);

	if (s->host_press[0] && strcmp(source, s->host_source) == 0)
		snprintf(out, sizeof s->host_press, "%s", s->host_press);  /* a pair's other half */
	else if (seen < s->host_seen ||
		 (a >= 0 && b >= 0 && pa == pb && strncmp(source, s->host_source, pa) == 0 && a < b))
		snprintf(out, sizeof s->host_press, "%s%d-%u", PRESS_UNORDERED, (int)getpid(),
			 s->host_seq);
	else
		snprintf(out, sizeof s->host_press, "%s", STATION_HOST_CAMERA);
}

int station_submit_received(station *s, const char *const *paths, size_t n, double seen,
			    bool move, char **name, cs_error *err)
{
	journal_station cur = {
		.batch_id = s->batch, .dir = s->dir,
		.last_source = s->host_source, .last_stem = s->host_stem,
		.last_at = s->host_at,
	};
	struct intake in = { 0 };
	cs_error e = { 0 };
	char stem[sizeof s->host_stem], press[sizeof s->host_press], source[sizeof s->host_source];

	host_source_of(paths, n, source);
	++s->host_seq;
	received_press_source(s, source, seen, press);
	int ret = host_capture(s->j, &s->lock, &cur, seen, s->host_seq, press, paths, n, move,
			       &in, name, stem, err ? err : &e);

	if (ret == 0 && move)
		drop_originals(s, &in, paths, n);
	if (ret == 0) {
		/* Only this thread hands files in this way: the other half of
		 * a pair is known here. */
		snprintf(s->host_source, sizeof s->host_source, "%s", source);
		snprintf(s->host_press, sizeof s->host_press, "%s", press);
		snprintf(s->host_stem, sizeof s->host_stem, "%s", stem);
		s->host_at = now_s();
		s->host_seen = fmax(s->host_seen, seen);
		finish_kick(s->fin);
		changed(s);
	}
	return ret;
}

/* Sends the held capture item on under identifier, unless another was
 * held instead a moment ago. */
static int release_held(station *s, long long item, const char *identifier, cs_error *err)
{
	char name[sizeof s->st.held_name];

	pthread_mutex_lock(&s->lock);
	double held_for = now_s() - s->held_since;
	snprintf(name, sizeof name, "%s", s->st.held_name);
	pthread_mutex_unlock(&s->lock);
	if (held_for < HELD_SETTLE_S)
		return cs_error_set(err, CS_E_CONFLICT, "%s was held a moment ago: check that "
				    "it is the one you decide, then decide again", name);
	int ret = finish_release(s->fin, item, identifier, err);

	if (ret)
		return ret;
	pthread_mutex_lock(&s->lock);
	if (s->held_item == item)
		clear_held(s);
	pthread_mutex_unlock(&s->lock);
	changed(s);
	return 0;
}

int station_resolve_held(station *s, enum station_choice choice, cs_error *err)
{
	char identifier[STATION_ID_MAX] = "";
	bool press, label = choice == STATION_KEEP_SCAN || choice == STATION_TAKE_LABEL;
	long long item;
	journal_item it = { 0 };
	int ret;

	pthread_mutex_lock(&s->lock);
	item = s->held_item;
	press = s->st.held_press;
	snprintf(identifier, sizeof identifier, "%s", choice == STATION_TAKE_LABEL ?
		 s->st.held_label : choice == STATION_BEFORE ? s->st.held_before :
		 choice == STATION_AFTER ? s->st.held_after : "");
	pthread_mutex_unlock(&s->lock);
	if (!item)
		return cs_error_set(err, CS_E_NOT_FOUND, "no capture is held");
	if (press && label)
		return cs_error_set(err, CS_E_INVALID, "the held capture was shot as the "
				    "number changed: give it the number before (p at the "
				    "station) or the number after (n)");
	if (!press && !label)
		return cs_error_set(err, CS_E_INVALID, "the held capture's label disagrees "
				    "with the scan: keep the scanned number (c at the station) "
				    "or take the label's (l)");
	if (choice == STATION_TAKE_LABEL && !identifier[0])
		return cs_error_set(err, CS_E_INVALID, "the held capture's label number is "
				    "not known: keep the scan (c), or rename the files and "
				    "run copystand upload");
	if (choice == STATION_KEEP_SCAN) {
		pthread_mutex_lock(&s->lock);
		ret = journal_item_get(s->j, item, &it, err);
		pthread_mutex_unlock(&s->lock);
		if (ret)
			return ret;
		snprintf(identifier, sizeof identifier, "%s", it.identifier ? it.identifier : "");
		journal_item_clear(&it);
	}
	return release_held(s, item, identifier, err);
}

/* Whether identifier is one of the held capture's numbers (lock held). */
static bool held_may_be(station *s, const char *identifier, cs_error *err)
{
	journal_item it = { 0 };
	bool may = false;

	if (journal_item_get(s->j, s->held_item, &it, err) == 0) {
		const char *c = it.press.candidates;
		size_t len = strlen(identifier);
		if (c)
			for (const char *p = c; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
				may |= !strncmp(p, identifier, len) && (p[len] == '\n' || !p[len]);
		else
			may = (it.identifier && !strcasecmp(it.identifier, identifier)) ||
			      !strcasecmp(s->st.held_label, identifier);
	}
	journal_item_clear(&it);
	return may;
}

int station_resolve_held_number(station *s, const char *text, cs_error *err)
{
	char *identifier = NULL;
	long long item;
	int ret = catalog_scan_parse(s->o.format, text, &s->o.scan, &identifier, err);

	pthread_mutex_lock(&s->lock);
	item = s->held_item;
	if (ret == 0 && !item)
		ret = cs_error_set(err, CS_E_NOT_FOUND, "no capture is held");
	else if (ret == 0 && !held_may_be(s, identifier, err))
		ret = cs_error_set(err, CS_E_INVALID, "%s is not one of the numbers the held "
				   "capture may be", identifier);
	pthread_mutex_unlock(&s->lock);
	if (ret == 0)
		ret = release_held(s, item, identifier, err);
	free(identifier);
	return ret;
}

/* --- shots the camera announced ------------------------------------------- */

int station_card_announced(station *s, const char *camera, const char *path,
			   const char *identifier, cs_error *err)
{
	journal_card c = { .batch_id = s->batch, .source = (char *)camera,
			   .path = (char *)path, .identifier = (char *)identifier,
			   .announced = now_s() };

	pthread_mutex_lock(&s->lock);
	int ret = journal_card_add(s->j, &c, err);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static const char *card_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

void station_card_lost(station *s, const char *path, const char *identifier)
{
	station_status *st = &s->st;
	cs_error err = { 0 };
	int len;

	pthread_mutex_lock(&s->lock);
	len = snprintf(st->last, sizeof st->last, "LOST %s%s%s%s: it is no longer on the "
		       "camera's card (erased there before it was downloaded): shoot %s again",
		       card_name(path), identifier[0] ? " (fired for " : "", identifier,
		       identifier[0] ? ")" : "", identifier[0] ? "it" : "that specimen");
	if (journal_card_drop(s->j, path, &err) && len > 0 && (size_t)len < sizeof st->last)
		snprintf(st->last + len, sizeof st->last - (size_t)len, " (%s)", err.msg);
	st->alerts++;
	s->lost++;
	news(s, STATION_NEWS_PROBLEM, identifier, card_name(path), st->last);
	pthread_mutex_unlock(&s->lock);
	changed(s);
}

int station_cards(station *s, bool mine, journal_card **out, size_t *n, cs_error *err)
{
	size_t kept = 0;

	pthread_mutex_lock(&s->lock);
	int ret = journal_cards_get(s->j, out, n, err);
	pthread_mutex_unlock(&s->lock);
	if (ret)
		return ret;
	for (size_t i = 0; i < *n; i++) {
		journal_card *c = &(*out)[i];
		if ((c->batch_id == s->batch) == mine) {
			(*out)[kept++] = *c;
			continue;
		}
		free(c->source);
		free(c->path);
		free(c->identifier);
	}
	*n = kept;
	return 0;
}

void station_cards_say(const journal_card *c, size_t n, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s%s%s%s", i ? ", " : "",
					card_name(c[i].path),
					c[i].identifier ? " (fired for " : "",
					c[i].identifier ? c[i].identifier : "",
					c[i].identifier ? ")" : "");
}

int station_unjournaled(station *s, size_t *count, char *first, size_t size,
			cs_error *err)
{
	char **known = NULL, *path = NULL;
	size_t nknown = 0;
	struct dirent *de;
	DIR *d;
	int ret;

	*count = 0;
	if (first && size)
		first[0] = '\0';
	pthread_mutex_lock(&s->lock);
	ret = journal_paths_in(s->j, s->dir, &known, &nknown, err);
	pthread_mutex_unlock(&s->lock);
	if (ret)
		return ret;
	if (!(d = opendir(s->dir))) {
		journal_paths_free(known, nknown);
		return cs_error_set(err, CS_E_IO, "%s: %s", s->dir, strerror(errno));
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || batch_is_own_file(de->d_name) ||
		    asprintf(&path, "%s/%s", s->dir, de->d_name) < 0)
			continue;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    !journal_paths_have(known, nknown, path)) {
			if (!(*count)++ && first)
				snprintf(first, size, "%s", de->d_name);
		}
		free(path);
	}
	closedir(d);
	journal_paths_free(known, nknown);
	return 0;
}

int station_undo(station *s, cs_error *err)
{
	struct capture c;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->nundo == 0) {
		pthread_mutex_unlock(&s->lock);
		return cs_error_set(err, CS_E_NOT_FOUND, "nothing to undo");
	}
	c = s->undo[--s->nundo];
	give_back_index(s, c.identifier, c.index);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < c.n && ret == 0; i++)
		ret = pipeline_undo(s->pipe, c.items[i], true, err);
	return ret;
}

void station_get_status(station *s, station_status *out)
{
	long long counts[JS_COUNT] = { 0 };
	pipeline_status ps;
	cs_error err;

	pipeline_get_status(s->pipe, &ps);
	pthread_mutex_lock(&s->lock);
	journal_batch_counts(s->j, s->batch, counts, &err);
	*out = s->st;
	/* The pipeline is offline until its first login: not news. */
	out->online = s->st.online && (ps.online || !ps.last_error[0]);
	out->queued = 0;
	for (int i = 0; i < JS_COUNT; i++)
		if (!journal_state_is_final((enum journal_state)i))
			out->queued += counts[i];
	out->attached = counts[JS_ATTACHED];
	out->problems = counts[JS_UNMATCHED] + counts[JS_AMBIGUOUS] + counts[JS_FAILED] +
		counts[JS_HELD] + s->lost;
	pthread_mutex_unlock(&s->lock);
}

int station_wait_idle(station *s, double timeout_s, cs_error *err)
{
	double deadline = timeout_s < 0 ? INFINITY : now_s() + timeout_s;
	pipeline_status ps;
	int ret;

	do {
		double left = deadline - now_s();
		if ((ret = pipeline_wait_idle(s->pipe, s->batch, left < 0 ? 0 : left, err)))
			return ret;
		pipeline_get_status(s->pipe, &ps);
		if (ps.undoing && now_s() >= deadline)
			return cs_error_set(err, CS_E_TIMEOUT, "captures are still being "
					    "taken back");
		if (ps.undoing)
			nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	} while (ps.undoing);
	return 0;
}

void station_interrupt(station *s)
{
	pipeline_interrupt(s->pipe);
}

void station_close(station *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_signal(&s->wake);
	if (s->session)
		specify_session_cancel(s->session);
	pthread_mutex_unlock(&s->lock);
	if (s->checker_started)
		pthread_join(s->checker, NULL);
	finish_stop(s->fin);
	pipeline_stop(s->pipe);
	/* No number is current once the station has gone: a host's shot
	 * taken after this has none. */
	journal_scan_add(s->j, s->batch, now_s(), NULL, NULL);
	journal_station_ended(s->j, s->batch, NULL);
	station_free(s);
}
