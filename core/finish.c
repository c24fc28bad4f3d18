#include "finish.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Captures taken up per pass; a pass runs on every kick and every
 * second: for steps that failed (a full disk) to be tried again, and for
 * files a host process journaled for this station (a gphoto2 hook). */
#define BATCH 64
#define SWEEP_S 1.0
/* How long a lone RAW from a host waits for its JPEG. */
#define PAIR_WAIT_S 3.0

struct finisher {
	finish_options o;
	char *journal_path, *server, *collection, *station_name;
	journal *j;                 /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool started, kicked, stopping;
};

/* One capture being finished: its files, and what was decided. */
#define MISMATCH_READS "LABEL MISMATCH: the label reads "
#define MISMATCH_BUT " but "

struct capture {
	journal_item *items;
	size_t n;
	int jpeg;                   /* index of its JPEG, -1 when none */
	char label[256];            /* the label's catalog number, "" */
	char reason[512];           /* why it is held or unmatched, "" */
};

static bool is_jpeg(const journal_item *it)
{
	return metadata_is_jpeg(it->mimetype, it->name);
}

/* The file name without its extension: the files of one shutter press
 * share it. */
static size_t stem_len(const char *path)
{
	const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');

	return dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
}

static bool same_capture(const journal_item *a, const journal_item *b)
{
	size_t n = stem_len(a->path);

	return a->batch_id == b->batch_id && n == stem_len(b->path) &&
	       strncmp(a->path, b->path, n) == 0;
}

static void set_str(char **dst, const char *src)
{
	char *copy = src ? strdup(src) : NULL;

	if (src && !copy)
		return;                 /* out of memory: keep the old value */
	free(*dst);
	*dst = copy;
}

/* --- the label ----------------------------------------------------------- */

/* Reads the label of the capture's JPEG: its catalog number goes to
 * c->label, with a reason when it holds the capture.  A label that
 * cannot be read checks nothing: the scan stands. */
static void read_label(finisher *f, struct capture *c)
{
	char codes[FINISH_CODES_MAX][256];
	const char *scanned = c->items[0].identifier;
	size_t n = 0;
	cs_error err = { 0 };
	bool agrees = false;

	if (f->o.label == FINISH_LABEL_OFF || !f->o.read_label || c->jpeg < 0)
		return;
	if (f->o.read_label(f->o.ud, c->items[c->jpeg].path, codes, FINISH_CODES_MAX,
			    &n, &err) != 0)
		n = 0;
	for (size_t i = 0; i < n && !agrees; i++) {
		char *id = NULL;
		if (catalog_scan_parse(f->o.format, codes[i], &f->o.scan, &id, NULL) == 0) {
			agrees = scanned && strcasecmp(id, scanned) == 0;
			if (!c->label[0] || agrees)
				snprintf(c->label, sizeof c->label, "%s", id);
		}
		free(id);
	}
	if (!scanned && !c->label[0] && f->o.label == FINISH_LABEL_NAME)
		snprintf(c->reason, sizeof c->reason, "no catalog number found on the "
			 "label%s%s: rename the file to its catalog number and run "
			 "copystand upload", err.msg[0] ? ": " : "", err.msg);
	if (agrees || !c->label[0] || !scanned)
		return;
	snprintf(c->reason, sizeof c->reason, MISMATCH_READS "%s" MISMATCH_BUT "%s was "
		 "scanned: keep the scan (c) or take the label's number (l)", c->label, scanned);
}

/* The label's number back from a held capture's reason (read_label wrote
 * it), for a capture held in an earlier session. */
static void label_from_reason(struct capture *c, const char *reason)
{
	const char *from = reason ? strstr(reason, MISMATCH_READS) : NULL;
	const char *to = from ? strstr(from += strlen(MISMATCH_READS), MISMATCH_BUT) : NULL;

	if (to && (size_t)(to - from) < sizeof c->label)
		snprintf(c->label, sizeof c->label, "%.*s", (int)(to - from), from);
}

/* Gives every file of the capture identifier's next name: a hard link
 * under the new name first, so the file always has a name the journal
 * knows; the old name goes once the journal has the new one. */
static int rename_capture(finisher *f, struct capture *c, const char *identifier,
			  char **old_paths, cs_error *err)
{
	char stem[256];
	int ret = f->o.name(f->o.ud, identifier, stem, sizeof stem);

	if (ret)
		return cs_error_set(err, ret, "no name for %s", identifier);
	for (size_t i = 0; i < c->n; i++) {
		journal_item *it = &c->items[i];
		const char *dot = strrchr(it->name, '.');
		size_t dir = (size_t)(strrchr(it->path, '/') ? strrchr(it->path, '/') - it->path + 1 : 0);
		char *path = NULL, *name = NULL;
		struct stat a, b;

		if (asprintf(&name, "%s%s", stem, dot ? dot : "") < 0)
			name = NULL;
		if (!name || asprintf(&path, "%.*s%s", (int)dir, it->path, name) < 0) {
			free(name);
			return cs_error_set(err, CS_E_NOMEM, "out of memory");
		}
		if (link(it->path, path) != 0 &&
		    !(errno == EEXIST && stat(it->path, &a) == 0 && stat(path, &b) == 0 &&
		      a.st_ino == b.st_ino && a.st_dev == b.st_dev)) {
			ret = cs_error_set(err, CS_E_IO, "cannot name %s %s: %s", it->name,
					   name, strerror(errno));
			free(path);
			free(name);
			return ret;
		}
		old_paths[i] = it->path;
		it->path = path;
		free(it->name);
		it->name = name;
		set_str(&it->identifier, identifier);
	}
	return 0;
}

/* --- the files ----------------------------------------------------------- */

/* The camera's clock at the shutter, from DateTimeOriginal; 0 when the
 * JPEG has none.  Stable, so a stamp written again is the same stamp. */
static double shot_time(const metadata_info *info)
{
	struct tm tm = { .tm_isdst = -1 };

	if (!info->date_original[0] ||
	    sscanf(info->date_original, "%d:%d:%d %d:%d:%d", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = mktime(&tm);
	return t == (time_t)-1 ? 0 : (double)t;
}

/* Writes the identity into the capture's files and the attachment fields
 * into the journal items. */
static int stamp_and_describe(finisher *f, struct capture *c, cs_error *err)
{
	const char *identifier = c->items[0].identifier;
	metadata_info info = { 0 };
	int ret = 0;

	/* The JPEG speaks for its RAW too: libexif reads no RAW files. */
	if (c->jpeg >= 0)
		metadata_read(c->items[c->jpeg].path, &info, NULL);
	metadata_stamp st = {
		.identifier = identifier, .collection = f->collection,
		.station = f->station_name, .time = shot_time(&info),
	};
	for (size_t i = 0; i < c->n && ret == 0 && f->o.stamp && identifier; i++) {
		journal_item *it = &c->items[i];
		char sha[65];
		if ((int)i == c->jpeg) {
			if ((ret = metadata_jpeg_stamp(it->path, &st, &it->size, sha, err)) == 0)
				set_str(&it->sha256, sha);
		} else {
			ret = metadata_xmp_write(it->path, &st, NULL, err);
		}
		/* A JPEG libexif cannot take, or another program's sidecar: the
		 * file goes as it is rather than never. */
		if (ret == CS_E_INVALID || ret == CS_E_CONFLICT)
			ret = 0;
	}
	for (size_t i = 0; i < c->n && ret == 0; i++) {
		char *json = NULL;
		ret = metadata_attachment_fields(c->jpeg >= 0 ? &info : NULL, &f->o.defaults,
						 identifier, f->collection, c->items[i].name,
						 &json, err);
		if (ret == 0) {
			free(c->items[i].extra);
			c->items[i].extra = json;
		}
	}
	metadata_info_clear(&info);
	return ret;
}

/* A host that hands in the RAW of a press first (gphoto2's hook) had it
 * journaled first; the JPEG still takes the capture's first place among
 * the record's attachments, since Specify shows that one as its image. */
static void jpeg_first(struct capture *c)
{
	if (c->jpeg <= 0 || !c->items[0].record_id)
		return;
	int first = c->items[0].ordinal;
	for (int i = 0; i < c->jpeg; i++)
		c->items[i].ordinal = c->items[i + 1].ordinal;
	c->items[c->jpeg].ordinal = first;
}

/* Where each file goes from here. */
static void decide(finisher *f, struct capture *c)
{
	jpeg_first(c);
	for (size_t i = 0; i < c->n; i++) {
		journal_item *it = &c->items[i];
		bool raw = c->jpeg >= 0 && (int)i != c->jpeg;

		if (c->reason[0]) {
			it->state = it->identifier ? JS_HELD : JS_UNMATCHED;
			set_str(&it->reason, c->reason);
		} else if (!it->identifier) {
			it->state = JS_UNMATCHED;
			if (!it->reason)
				set_str(&it->reason, "no catalog number: rename the file "
					"to its catalog number and run copystand upload");
		} else if (raw && f->o.raw == FINISH_RAW_LOCAL) {
			it->state = JS_LOCAL;
			set_str(&it->reason, "kept on this computer only (--raw local)");
		} else {
			it->state = raw && f->o.raw == FINISH_RAW_LATER ? JS_DEFERRED :
				it->record_id ? JS_MATCHED : JS_NAMED;
			set_str(&it->reason, NULL);
		}
	}
}

static void tell(finisher *f, const struct capture *c)
{
	const journal_item *it = &c->items[0];
	finish_event ev = {
		.first_item = it->id, .batch_id = it->batch_id, .name = it->name,
		.identifier = it->identifier ? it->identifier : "",
		.state = it->state, .reason = it->reason,
		.label = c->label[0] ? c->label : NULL,
	};

	if (f->o.on_done)
		f->o.on_done(f->o.ud, &ev);
}

/* A capture undone while it was being finished: a stamped copy renamed
 * into place after the undo deleted the file must go too. */
static void drop_taken_back(finisher *f, const struct capture *c)
{
	for (size_t i = 0; i < c->n; i++) {
		journal_item now = { 0 };
		if (journal_item_get(f->j, c->items[i].id, &now, NULL) == 0 &&
		    now.state == JS_ROLLED_BACK)
			unlink(now.path);
		journal_item_clear(&now);
	}
}

/* Finishes one capture whose files are in state `from` (lock held):
 * captured ones get the label check, held ones were decided by a person
 * (rename_to: the label's number, or NULL). */
static int finish_capture(finisher *f, struct capture *c, enum journal_state from,
			  const char *rename_to, cs_error *err)
{
	char *old_paths[FINISH_CODES_MAX * 2] = { 0 };
	int ret = 0;

	if (c->n > sizeof old_paths / sizeof *old_paths)
		return cs_error_set(err, CS_E_INVALID, "too many files in one capture");
	c->jpeg = -1;
	for (size_t i = 0; i < c->n && c->jpeg < 0; i++)
		if (is_jpeg(&c->items[i]))
			c->jpeg = (int)i;
	if (from == JS_CAPTURED)
		read_label(f, c);
	if (from == JS_CAPTURED && !c->items[0].identifier && c->label[0] &&
	    f->o.label == FINISH_LABEL_NAME && f->o.name)
		rename_to = c->label;
	if (rename_to && !c->reason[0])
		ret = rename_capture(f, c, rename_to, old_paths, err);
	if (ret == 0 && !c->reason[0])
		ret = stamp_and_describe(f, c, err);
	if (ret == 0) {
		decide(f, c);
		ret = journal_items_update(f->j, c->items, c->n, from, err);
	}
	if (ret == CS_E_CONFLICT)
		drop_taken_back(f, c);
	/* The journal decides which name lives on. */
	for (size_t i = 0; i < c->n; i++) {
		if (old_paths[i])
			unlink(ret == 0 ? old_paths[i] : c->items[i].path);
		free(old_paths[i]);
	}
	if (ret == 0)
		tell(f, c);
	return ret;
}

/* A RAW just handed in alone by a host that sends the files of a press
 * one call each (gphoto2's hook, noted in the journal's stations table):
 * its JPEG is probably on the way, and the two must be finished as one
 * capture for the RAW policy to apply. */
static bool awaits_jpeg(const struct capture *c, const journal_station *host,
			double now)
{
	const char *base = strrchr(c->items[0].path, '/');
	size_t len = stem_len(c->items[0].path) - (size_t)(base ? base + 1 - c->items[0].path : 0);

	for (size_t i = 0; i < c->n; i++)
		if (is_jpeg(&c->items[i]))
			return false;
	return host->last_stem && now - host->last_at < PAIR_WAIT_S &&
	       host->batch_id == c->items[0].batch_id && strlen(host->last_stem) == len &&
	       !strncmp(host->last_stem, base ? base + 1 : c->items[0].path, len);
}

/* One pass over the captured files of this server and collection. */
static void finish_due(finisher *f)
{
	journal_item *items = NULL;
	size_t n = 0;
	struct timeval tv;

	journal_station host = { 0 };

	gettimeofday(&tv, NULL);
	pthread_mutex_lock(&f->lock);
	journal_station_current(f->j, &host, NULL);
	if (journal_items_due(f->j, f->server, f->collection, 0, JS_CAPTURED,
			      (double)tv.tv_sec + 1, BATCH, &items, &n, NULL) == 0) {
		for (size_t first = 0, end; first < n; first = end) {
			for (end = first + 1; end < n && same_capture(&items[first], &items[end]); end++)
				;
			struct capture c = { .items = items + first, .n = end - first };
			cs_error err = { 0 };
			if (awaits_jpeg(&c, &host, (double)tv.tv_sec + tv.tv_usec / 1e6))
				continue;
			/* A failed step (disk full, file gone) waits for the next
			 * pass; the capture stays captured and safe. */
			finish_capture(f, &c, JS_CAPTURED, NULL, &err);
		}
	}
	pthread_mutex_unlock(&f->lock);
	journal_station_clear(&host);
	journal_items_free(items, n);
}

static void announce_held(finisher *f);

static void *finisher_main(void *arg)
{
	finisher *f = arg;

	pthread_mutex_lock(&f->lock);
	announce_held(f);
	while (!f->stopping) {
		f->kicked = false;
		pthread_mutex_unlock(&f->lock);
		finish_due(f);
		pthread_mutex_lock(&f->lock);
		struct timeval tv;
		gettimeofday(&tv, NULL);
		struct timespec until = { .tv_sec = tv.tv_sec + (time_t)SWEEP_S,
					  .tv_nsec = tv.tv_usec * 1000L };
		while (!f->stopping && !f->kicked &&
		       pthread_cond_timedwait(&f->wake, &f->lock, &until) == 0)
			;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* --- life cycle ------------------------------------------------------------ */

struct held_walk {
	long long first;
	long long ids[FINISH_CODES_MAX * 2];
	size_t n;
	journal_item head;          /* the first file's batch and path */
};

/* The held files of the capture whose first file is w->first. */
static int on_held(void *ud, const journal_item *it)
{
	struct held_walk *w = ud;

	if (!w->n && it->id != w->first)
		return 0;
	if (!w->n) {
		w->head.batch_id = it->batch_id;
		if (!(w->head.path = strdup(it->path)))
			return 1;
	} else if (!same_capture(&w->head, it) || w->n == sizeof w->ids / sizeof *w->ids) {
		return 1;
	}
	w->ids[w->n++] = it->id;
	return 0;
}

/* The files of the held capture whose first file is first (lock held). */
static int load_held(finisher *f, long long first, journal_item *items, size_t *n,
		     cs_error *err)
{
	struct held_walk w = { .first = first };
	int ret = journal_items_each(f->j, 0, JS_HELD, on_held, &w, err);

	*n = 0;
	if (ret >= 0 && w.n == 0)
		ret = cs_error_set(err, CS_E_NOT_FOUND, "no held capture starts "
				   "with item %lld", first);
	else if (ret >= 0)
		ret = 0;
	for (; ret == 0 && *n < w.n; (*n)++)
		ret = journal_item_get(f->j, w.ids[*n], &items[*n], err);
	free(w.head.path);
	return ret;
}

/* The newest held capture of this server and collection. */
struct newest_held {
	finisher *f;
	long long first;
	journal_item last;          /* its last file's batch and path */
	long long in, out;          /* a batch known to be ours, or not */
};

static bool ours(struct newest_held *w, long long batch)
{
	journal_batch b = { 0 };
	bool yes;

	if (batch == w->in || batch == w->out)
		return batch == w->in;
	yes = journal_batch_get(w->f->j, batch, &b, NULL) == 0 && b.server && b.collection &&
	      !strcmp(b.server, w->f->server) && !strcmp(b.collection, w->f->collection);
	journal_batch_clear(&b);
	*(yes ? &w->in : &w->out) = batch;
	return yes;
}

static int on_held_newest(void *ud, const journal_item *it)
{
	struct newest_held *w = ud;
	char *path;

	if (!ours(w, it->batch_id))
		return 0;
	if (!(path = strdup(it->path)))
		return 1;
	if (!w->first || !same_capture(&w->last, it))
		w->first = it->id;
	free(w->last.path);
	w->last.path = path;
	w->last.batch_id = it->batch_id;
	return 0;
}

/* Tells the station of the newest capture still held, so that c and l
 * apply to it: one held in an earlier session too (lock held). */
static void announce_held(finisher *f)
{
	journal_item items[FINISH_CODES_MAX * 2] = { 0 };
	struct newest_held w = { .f = f };
	size_t n = 0;

	if (journal_items_each(f->j, 0, JS_HELD, on_held_newest, &w, NULL) >= 0 && w.first &&
	    load_held(f, w.first, items, &n, NULL) == 0) {
		struct capture c = { .items = items, .n = n };
		label_from_reason(&c, items[0].reason);
		tell(f, &c);
	}
	for (size_t i = 0; i < n; i++)
		journal_item_clear(&items[i]);
	free(w.last.path);
}

int finish_release(finisher *f, long long item, const char *identifier,
		   cs_error *err)
{
	journal_item items[FINISH_CODES_MAX * 2] = { 0 };
	size_t n = 0;
	int ret;

	pthread_mutex_lock(&f->lock);
	ret = load_held(f, item, items, &n, err);
	if (ret == 0) {
		struct capture c = { .items = items, .n = n };
		bool other = !items[0].identifier || strcasecmp(items[0].identifier, identifier);
		if (other)
			for (size_t i = 0; i < n; i++)
				items[i].record_id = 0;   /* looked up again */
		ret = finish_capture(f, &c, JS_HELD, other ? identifier : NULL, err);
	}
	/* The next one still held, if any, is the one c and l decide now. */
	if (ret == 0)
		announce_held(f);
	pthread_mutex_unlock(&f->lock);
	for (size_t i = 0; i < n; i++)
		journal_item_clear(&items[i]);
	return ret;
}

void finish_kick(finisher *f)
{
	pthread_mutex_lock(&f->lock);
	f->kicked = true;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
}

static void finisher_free(finisher *f)
{
	journal_close(f->j);
	free(f->journal_path);
	free(f->server);
	free(f->collection);
	free(f->station_name);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->wake);
	free(f);
}

int finish_start(const finish_options *o, finisher **out, cs_error *err)
{
	finisher *f = calloc(1, sizeof *f);
	char host[256] = "copystand";
	int ret;

	*out = NULL;
	if (!f)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->wake, NULL);
	f->o = *o;
	if (!o->station_name)
		gethostname(host, sizeof host - 1);
	f->journal_path = o->journal_path ? strdup(o->journal_path) : NULL;
	f->server = o->server ? strdup(o->server) : NULL;
	f->collection = o->collection ? strdup(o->collection) : NULL;
	f->station_name = strdup(o->station_name ? o->station_name : host);
	if (!f->journal_path || !f->server || !f->collection || !f->station_name)
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	else
		ret = journal_open(f->journal_path, &f->j, err);
	if (ret == 0 && pthread_create(&f->thread, NULL, finisher_main, f) != 0)
		ret = cs_error_set(err, CS_E_NOMEM, "cannot start a thread");
	if (ret) {
		finisher_free(f);
		return ret;
	}
	f->started = true;
	*out = f;
	return 0;
}

void finish_stop(finisher *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
	if (f->started)
		pthread_join(f->thread, NULL);
	finisher_free(f);
}
