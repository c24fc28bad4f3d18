#include "finish.h"

#include <errno.h>
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

#include "press.h"

/* Captures taken up per pass; a pass runs on every kick and every
 * second: for steps that failed (a full disk) to be tried again, and for
 * files a host process journaled for this station (a gphoto2 hook). */
#define BATCH 64
#define SWEEP_S 1.0
/* How long a lone RAW from a host waits for its JPEG. */
#define PAIR_WAIT_S 3.0
/* Captures named lately, remembered for a pair's late half. */
#define NAMED_RECENT 8

/* A capture that left its provisional name: the other half of its
 * pair, journaled under that name after it was named (a program that
 * saves the JPEG first, the RAW after it), takes the same name. */
struct named {
	long long batch;
	char from[256];             /* the provisional name, without extension */
	finish_name to;
	char identifier[128];
	bool jpeg;                  /* it has a JPEG: the half is its RAW */
};

struct finisher {
	finish_options o;
	char *journal_path, *server, *collection, *station_name;
	journal *j;                 /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool started, kicked, stopping;
	struct named named[NAMED_RECENT];   /* newest first */
};

/* One capture being finished: its files, and what was decided. */
#define MISMATCH_READS "LABEL MISMATCH: the label reads "
#define MISMATCH_BUT " but "

/* Files of one capture this finisher takes at most. */
#define CAPTURE_FILES_MAX 16

struct capture {
	journal_item *items;
	size_t n;
	int jpeg;                   /* index of its JPEG, -1 when none */
	bool pair_raw;              /* the RAW of a capture named before it */
	char label[256];            /* the label's catalog number, "" */
	char reason[512];           /* why it is held or unmatched, "" */
};

static bool is_jpeg(const journal_item *it)
{
	return metadata_is_jpeg(it->mimetype, it->name);
}

/* Which of the capture's files is its JPEG (c->jpeg, -1 for none). */
static void find_jpeg(struct capture *c)
{
	c->jpeg = -1;
	for (size_t i = 0; i < c->n && c->jpeg < 0; i++)
		if (is_jpeg(&c->items[i]))
			c->jpeg = (int)i;
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

/* Reads the catalog numbers on the capture's label (its JPEG's
 * barcodes): one that is among want (compared without case) goes to
 * c->label and true is returned; else the first one read, and false.
 * A label that cannot be read leaves c->label empty. */
static bool read_label(finisher *f, struct capture *c, const char *const *want,
		       size_t nwant, cs_error *err)
{
	char codes[FINISH_CODES_MAX][256];
	size_t n = 0;
	bool agrees = false;

	if (f->o.label == FINISH_LABEL_OFF || !f->o.read_label || c->jpeg < 0)
		return false;
	if (f->o.read_label(f->o.ud, c->items[c->jpeg].path, codes, FINISH_CODES_MAX,
			    &n, err) != 0)
		n = 0;
	for (size_t i = 0; i < n && !agrees; i++) {
		char *id = NULL;
		if (catalog_scan_parse(f->o.format, codes[i], &f->o.scan, &id, NULL) == 0) {
			for (size_t k = 0; k < nwant && !agrees; k++)
				agrees = !strcasecmp(id, want[k]);
			if (!c->label[0] || agrees)
				snprintf(c->label, sizeof c->label, "%s", id);
		}
		free(id);
	}
	return agrees;
}

/* The label check: its catalog number goes to c->label, with a reason
 * when it holds the capture.  A label that cannot be read checks
 * nothing: the scan stands. */
static void check_label(finisher *f, struct capture *c)
{
	const char *scanned = c->items[0].identifier;
	cs_error err = { 0 };

	if (read_label(f, c, &scanned, scanned ? 1 : 0, &err) || !c->label[0] || !scanned) {
		if (!scanned && !c->label[0] && f->o.label == FINISH_LABEL_NAME)
			snprintf(c->reason, sizeof c->reason, "no catalog number found on the "
				 "label%s%s: rename the file to its catalog number and run "
				 "copystand upload", err.msg[0] ? ": " : "", err.msg);
		return;
	}
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

/* Links every file of the capture to the name stem gives it: a hard
 * link under the new name first, so the file always has a name the
 * journal knows; the old name goes once the journal has the new one.
 * CS_E_CONFLICT (nothing done) when one of the names is taken. */
static int link_capture(struct capture *c, const char *stem, const char *identifier,
			char **old_paths, cs_error *err)
{
	char *paths[FINISH_CODES_MAX * 2] = { 0 }, *names[FINISH_CODES_MAX * 2] = { 0 };
	size_t done = 0;
	int ret = 0;

	for (; done < c->n && ret == 0; done++) {
		journal_item *it = &c->items[done];
		const char *dot = strrchr(it->name, '.'), *slash = strrchr(it->path, '/');
		int dir = slash ? (int)(slash - it->path + 1) : 0;
		struct stat a, b;

		if (asprintf(&names[done], "%s%s", stem, dot ? dot : "") < 0 ||
		    asprintf(&paths[done], "%.*s%s", dir, it->path, names[done]) < 0) {
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
			break;
		}
		if (link(it->path, paths[done]) == 0 ||
		    (errno == EEXIST && stat(it->path, &a) == 0 && stat(paths[done], &b) == 0 &&
		     a.st_ino == b.st_ino && a.st_dev == b.st_dev))
			continue;
		ret = cs_error_set(err, errno == EEXIST ? CS_E_CONFLICT : CS_E_IO,
				   "cannot name %s %s: %s", it->name, names[done], strerror(errno));
		unlink(paths[done]);
		break;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (ret) {
			if (i < done)
				unlink(paths[i]);
			free(paths[i]);
			free(names[i]);
			continue;
		}
		journal_item *it = &c->items[i];
		old_paths[i] = it->path;
		it->path = paths[i];
		free(it->name);
		it->name = names[i];
		set_str(&it->identifier, identifier);
	}
	return ret;
}

/* The capture named lately whose provisional name c has (its pair's
 * first half), on the same number; NULL when none. */
static const struct named *named_half(const finisher *f, const struct capture *c,
				      const char *from, const char *identifier)
{
	for (size_t i = 0; i < NAMED_RECENT && f->named[i].from[0]; i++)
		if (f->named[i].batch == c->items[0].batch_id && !strcmp(f->named[i].from, from) &&
		    !strcmp(f->named[i].identifier, identifier))
			return &f->named[i];
	return NULL;
}

static void named_note(finisher *f, const struct capture *c, const char *from,
		       const finish_name *to, const char *identifier)
{
	struct named *n = f->named;

	memmove(n + 1, n, (NAMED_RECENT - 1) * sizeof *n);
	*n = (struct named){ .batch = c->items[0].batch_id, .to = *to, .jpeg = c->jpeg >= 0 };
	snprintf(n->from, sizeof n->from, "%s", from);
	snprintf(n->identifier, sizeof n->identifier, "%s", identifier);
}

/* Gives every file of the capture identifier's next name (a name taken
 * meanwhile, by a shot still downloading, is passed over), or, the late
 * half of a pair, its first half's; and its record, when the station
 * knows it already. */
static int rename_capture(finisher *f, struct capture *c, const char *identifier,
			  char **old_paths, cs_error *err)
{
	const char *slash = strrchr(c->items[0].path, '/');
	const char *base = slash ? slash + 1 : c->items[0].path;
	char dir[4096], from[256];
	finish_name name = { 0 };
	int ret = CS_E_CONFLICT;

	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - c->items[0].path) : 1,
		 slash ? c->items[0].path : ".");
	snprintf(from, sizeof from, "%.*s", (int)stem_len(base), base);
	const struct named *half = named_half(f, c, from, identifier);
	if (half && (ret = link_capture(c, half->to.stem, identifier, old_paths, err)) == 0) {
		name = half->to;
		c->pair_raw = half->jpeg && c->jpeg < 0;
	}
	for (int tries = 0; ret == CS_E_CONFLICT && tries < 100; tries++) {
		if (f->o.name(f->o.ud, identifier, dir, &name))
			return cs_error_set(err, CS_E_INVALID, "no name for %s", identifier);
		if ((ret = link_capture(c, name.stem, identifier, old_paths, err)) == 0)
			named_note(f, c, from, &name, identifier);
	}
	if (ret || !name.record_id)
		return ret;
	long long known = 0;
	journal_record_count(f->j, "collectionobject", name.record_id, &known, NULL);
	for (size_t i = 0; i < c->n; i++) {
		set_str(&c->items[i].record_table, "collectionobject");
		c->items[i].record_id = name.record_id;
		c->items[i].ordinal = name.ordinal_base + (int)known + (int)i;
	}
	return 0;
}

/* A capture still under the name it got before its number was known
 * (its press was placed in time after the download). */
static bool unnamed_yet(const struct capture *c)
{
	return !strncmp(c->items[0].name, FINISH_PENDING, strlen(FINISH_PENDING));
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
		bool raw = c->pair_raw || (c->jpeg >= 0 && (int)i != c->jpeg);

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
	long long ids[CAPTURE_FILES_MAX];
	size_t n = c->n < CAPTURE_FILES_MAX ? c->n : CAPTURE_FILES_MAX;

	for (size_t i = 0; i < n; i++)
		ids[i] = c->items[i].id;
	finish_event ev = {
		.first_item = it->id, .items = ids, .nitems = n,
		.batch_id = it->batch_id, .name = it->name,
		.identifier = it->identifier ? it->identifier : "",
		.state = it->state, .reason = it->reason,
		.label = c->label[0] ? c->label : NULL,
		.bind = it->press.bind, .candidates = it->press.candidates,
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

/* Finishes one capture whose files are in state `from` (lock held).
 * label: read its label and hold it if it disagrees (a capture
 * just in, or named from its press time); rename_to: a number it takes
 * that is not its own yet (the label's, or its press's). */
static int finish_capture(finisher *f, struct capture *c, enum journal_state from,
			  const char *rename_to, bool label, cs_error *err)
{
	char *old_paths[CAPTURE_FILES_MAX] = { 0 };
	int ret = 0;

	if (c->n > sizeof old_paths / sizeof *old_paths)
		return cs_error_set(err, CS_E_INVALID, "too many files in one capture");
	find_jpeg(c);
	for (size_t i = 0; rename_to && i < c->n; i++)
		set_str(&c->items[i].identifier, rename_to);
	if (label)
		check_label(f, c);
	if (label && !c->items[0].identifier && c->label[0] &&
	    f->o.label == FINISH_LABEL_NAME && f->o.name)
		rename_to = c->label;
	/* Held or not, a capture with a number leaves its provisional name. */
	if (!rename_to && c->items[0].identifier && unnamed_yet(c))
		rename_to = c->items[0].identifier;
	if (rename_to && (!c->reason[0] || unnamed_yet(c)))
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

/* --- which number a press takes (core/press.h) ---------------------------- */

/* Whether batch is of this finisher's server and collection (cached). */
struct batch_cache {
	long long in, out;          /* a batch known to be ours, or not */
};

static bool batch_ours(finisher *f, struct batch_cache *k, long long batch)
{
	journal_batch b = { 0 };
	bool yes;

	if (batch == k->in || batch == k->out)
		return batch == k->in;
	yes = journal_batch_get(f->j, batch, &b, NULL) == 0 && b.server && b.collection &&
	      !strcmp(b.server, f->server) && !strcmp(b.collection, f->collection);
	journal_batch_clear(&b);
	*(yes ? &k->in : &k->out) = batch;
	return yes;
}

/* The camera's clock at the press, from the capture's JPEG: looked for
 * once (a capture with no time is noted so). */
static void read_press_time(struct capture *c)
{
	metadata_info info = { 0 };
	double t = 0, res = 0;
	bool ok = false;

	if (c->items[0].press.res != 0)
		return;
	for (size_t i = 0; i < c->n && !ok; i++)
		ok = is_jpeg(&c->items[i]) && metadata_read(c->items[i].path, &info, NULL) == 0 &&
		     press_exif_time(info.date_original, info.subsec_original, &t, &res);
	metadata_info_clear(&info);
	for (size_t i = 0; i < c->n; i++) {
		c->items[i].press.cam = ok ? t : 0;
		c->items[i].press.res = ok ? res : -1;
	}
}

static bool undecided(const struct capture *c)
{
	const journal_item *it = &c->items[0];

	return it->press.bind == JB_PENDING && (it->state == JS_CAPTURED || it->state == JS_HELD);
}

/* What the rule knows of a capture's press. */
static press_shot shot_of(const struct capture *c)
{
	const journal_item *it = &c->items[0];
	press_shot s = { .lo = it->press.lo, .hi = it->press.hi, .cam = it->press.cam,
			 .res = it->press.res > 0 ? it->press.res : 0 };

	if (it->press.bind != JB_PENDING) {
		s.fixed = it->identifier ? it->identifier : "";
		s.by_time = it->press.bind != JB_TRIGGER;
	}
	return s;
}

/* A moment for people: local time to the hundredth. */
static void clock_text(double t, char *buf, size_t size)
{
	time_t whole = (time_t)floor(t);
	struct tm tm;

	localtime_r(&whole, &tm);
	snprintf(buf, size, "%02d:%02d:%02d.%02d", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)((t - floor(t)) * 100));
}

/* Why a press could not be placed, for the technician. */
static void press_reason(const struct capture *c, const press_shot *s, char *out,
			 size_t size)
{
	char lo[32], hi[32], numbers[256] = "";
	const char *src = c->items[0].press.source;
	const char *why = src && !strncmp(src, PRESS_UNORDERED, strlen(PRESS_UNORDERED)) ?
		"; it came in after a file named or begun after it, so it may have been shot "
		"before that one" :
		c->items[0].press.res < 0 ? "; the image carries no capture time" :
		s->clock_broken ? "; the camera's clock was set meanwhile" :
		c->items[0].press.res >= 1 ? "; the camera gives whole seconds only" : "";

	for (size_t i = 0; i < s->ncand; i++) {
		size_t len = strlen(numbers);
		snprintf(numbers + len, sizeof numbers - len, "%s%s",
			 i == 0 ? "" : i + 1 == s->ncand ? " or " : ", ",
			 s->cand[i][0] ? s->cand[i] : "no number");
	}
	clock_text(s->plo, lo, sizeof lo);
	clock_text(s->phi, hi, sizeof hi);
	if (isinf(s->plo) && isinf(s->phi))
		snprintf(out, size, "PRESSED AS THE NUMBER CHANGED: copystand cannot tell "
			 "when this shot was taken%s: it is %s; say which", why, numbers);
	else if (isinf(s->plo))
		snprintf(out, size, "PRESSED AS THE NUMBER CHANGED: the shot was taken "
			 "before %s%s: it is %s; say which", hi, why, numbers);
	else
		snprintf(out, size, "PRESSED AS THE NUMBER CHANGED: the shot was taken "
			 "between %s and %s%s: it is %s; say which", lo, hi, why, numbers);
}

/* Holds a capture whose press the rule cannot place on one side of a
 * scan, unless its label names one of the numbers it may be. */
static void hold_press(finisher *f, struct capture *c, const press_shot *s)
{
	char reason[768], cands[PRESS_CANDIDATES_MAX * 130] = "";
	cs_error err = { 0 };

	find_jpeg(c);
	if (read_label(f, c, s->cand, s->ncand, &err)) {
		for (size_t i = 0; i < c->n; i++)
			c->items[i].press.bind = JB_LABEL;
		finish_capture(f, c, JS_CAPTURED, c->label, false, &err);
		return;
	}
	press_reason(c, s, reason, sizeof reason);
	if (c->label[0])
		snprintf(reason + strlen(reason), sizeof reason - strlen(reason),
			 " (its label reads %s)", c->label);
	for (size_t i = 0; i < s->ncand; i++)
		snprintf(cands + strlen(cands), sizeof cands - strlen(cands), "%s%s",
			 i ? "\n" : "", s->cand[i]);
	for (size_t i = 0; i < c->n; i++) {
		c->items[i].state = JS_HELD;
		set_str(&c->items[i].reason, reason);
		set_str(&c->items[i].press.candidates, cands);
	}
	if (journal_items_update(f->j, c->items, c->n, JS_CAPTURED, &err) == 0)
		tell(f, c);
}

/* Gives a capture the number the rule decided ("": none), or holds it. */
static void settle_press(finisher *f, struct capture *c, const press_shot *s)
{
	enum journal_state from = c->items[0].state;
	cs_error err = { 0 };

	if (!s->identifier) {
		if (from == JS_CAPTURED)
			hold_press(f, c, s);
		return;
	}
	for (size_t i = 0; i < c->n; i++) {
		c->items[i].press.bind = JB_TIME;
		set_str(&c->items[i].press.candidates, NULL);
		set_str(&c->items[i].reason, NULL);
		if (!s->identifier[0])
			set_str(&c->items[i].reason, "shot with no catalog number scanned: rename "
				"the file to its catalog number and run copystand upload");
	}
	finish_capture(f, c, from, s->identifier[0] ? s->identifier : NULL, true, &err);
}

/* Everything the rule needs of one camera's presses in a batch, and its
 * decisions for those still open. */
static void bind_group(finisher *f, long long batch, const char *source,
		       const journal_station *host, double now)
{
	journal_item *items = NULL;
	journal_scan *js = NULL;
	journal_clock *jc = NULL;
	size_t n = 0, nc = 0, nscans = 0, nclocks = 0;
	struct capture *caps = NULL;
	press_shot *shots = NULL;
	press_scan *scans = NULL;
	press_clock *clocks = NULL;

	if (journal_presses_get(f->j, batch, source, PRESS_HISTORY * 2, &items, &n, NULL) ||
	    journal_scans_get(f->j, batch, &js, &nscans, NULL) ||
	    journal_clocks_get(f->j, batch, source, PRESS_HISTORY, &jc, &nclocks, NULL) ||
	    !(caps = calloc(n + 1, sizeof *caps)) || !(shots = calloc(n + 1, sizeof *shots)) ||
	    !(scans = calloc(nscans + 1, sizeof *scans)) ||
	    !(clocks = calloc(nclocks + 1, sizeof *clocks)))
		goto out;
	for (size_t i = 0; i < nscans; i++)
		scans[i] = (press_scan){ js[i].at, js[i].identifier ? js[i].identifier : "" };
	for (size_t i = 0; i < nclocks; i++)
		clocks[i] = (press_clock){ jc[i].at, jc[i].lo, jc[i].hi };
	for (size_t first = 0, end; first < n; first = end) {
		for (end = first + 1; end < n && same_capture(&items[first], &items[end]); end++)
			;
		caps[nc] = (struct capture){ .items = items + first, .n = end - first };
		if (undecided(&caps[nc]) && caps[nc].items[0].state == JS_CAPTURED &&
		    !awaits_jpeg(&caps[nc], host, now))
			read_press_time(&caps[nc]);
		shots[nc] = shot_of(&caps[nc]);
		nc++;
	}
	press_decide(scans, nscans, clocks, nclocks, shots, nc);
	for (size_t i = 0; i < nc; i++)
		if (undecided(&caps[i]) && !awaits_jpeg(&caps[i], host, now))
			settle_press(f, &caps[i], &shots[i]);
out:
	free(caps);
	free(shots);
	free(scans);
	free(clocks);
	free(jc);
	journal_scans_free(js, nscans);
	journal_items_free(items, n);
}

struct press_groups {
	struct { long long batch; char *source; } *v;
	size_t n, cap;
};

static int add_group(void *ud, long long batch, const char *source)
{
	struct press_groups *g = ud;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 8;
		void *v = realloc(g->v, cap * sizeof *g->v);
		if (!v)
			return 1;
		g->v = v;
		g->cap = cap;
	}
	if (!(g->v[g->n].source = strdup(source ? source : "")))
		return 1;
	g->v[g->n++].batch = batch;
	return 0;
}

/* Decides the presses still open of this server and collection (lock held). */
static void bind_presses(finisher *f, const journal_station *host, double now)
{
	struct press_groups g = { 0 };
	struct batch_cache k = { 0 };

	journal_presses_pending(f->j, add_group, &g, NULL);
	for (size_t i = 0; i < g.n; i++) {
		if (batch_ours(f, &k, g.v[i].batch))
			bind_group(f, g.v[i].batch, g.v[i].source, host, now);
		free(g.v[i].source);
	}
	free(g.v);
}

/* One pass over the captured files of this server and collection. */
static void finish_due(finisher *f)
{
	journal_item *items = NULL;
	size_t n = 0;
	struct timeval tv;
	journal_station host = { 0 };

	gettimeofday(&tv, NULL);
	double now = (double)tv.tv_sec + tv.tv_usec / 1e6;
	pthread_mutex_lock(&f->lock);
	journal_station_current(f->j, &host, NULL);
	bind_presses(f, &host, now);
	if (journal_items_due(f->j, f->server, f->collection, 0, JS_CAPTURED,
			      (double)tv.tv_sec + 1, BATCH, &items, &n, NULL) == 0) {
		for (size_t first = 0, end; first < n; first = end) {
			for (end = first + 1; end < n && same_capture(&items[first], &items[end]); end++)
				;
			struct capture c = { .items = items + first, .n = end - first };
			cs_error err = { 0 };
			/* Presses still to be placed in time are bind_presses'. */
			if (c.items[0].press.bind == JB_PENDING || awaits_jpeg(&c, &host, now))
				continue;
			/* A failed step (disk full, file gone) waits for the next
			 * pass; the capture stays captured and safe. */
			finish_capture(f, &c, JS_CAPTURED, NULL, true, &err);
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
	struct batch_cache ours;
};

static int on_held_newest(void *ud, const journal_item *it)
{
	struct newest_held *w = ud;
	char *path;

	if (!batch_ours(w->f, &w->ours, it->batch_id))
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
		bool press = items[0].press.candidates != NULL;
		bool other = !items[0].identifier || strcasecmp(items[0].identifier, identifier);
		for (size_t i = 0; i < n; i++) {
			if (other)
				items[i].record_id = 0;   /* looked up again */
			if (press) {
				/* A person placed the press: its neighbours may follow. */
				items[i].press.bind = JB_PERSON;
				set_str(&items[i].press.candidates, NULL);
				set_str(&items[i].reason, NULL);
			}
		}
		ret = finish_capture(f, &c, JS_HELD, other && identifier[0] ? identifier : NULL,
				     false, err);
		f->kicked = true;
		pthread_cond_signal(&f->wake);
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
