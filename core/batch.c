#include "batch.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lookup.h"
#include "mapping.h"
#include "sha256.h"

/* Locations reserved ahead: what the first uploads take, few enough that
 * their tokens are still fresh when those go out. */
#define RESERVE_AHEAD 32

struct entry {
	batch_file f;
	char *cands[8];            /* identifiers to try, longest first */
	int ncands;
	bool named;                /* its record has an attachment of its name */
	bool cand_named[4];        /* so has each candidate (ambiguous) */
	bool adopted;              /* journaled in the resumed batch */
	char location[129];        /* reserved ahead, or "" */
	bool sent;                 /* uploaded there ahead of validation */
	char *read_error;          /* why hashing failed, or NULL */
};

struct batch_plan {
	batch_options o;
	const struct catalog_format *format;
	struct entry *v;
	size_t n, cap;
	pthread_t reader;          /* hashes the files from the start */
	bool reading;
	atomic_bool stop;          /* freed before validation: stop reading */
	atomic_size_t nhashed;     /* files the reader is done with */
	/* Reserving and sending the first files (ahead_main). */
	pthread_t ahead;
	bool ahead_running, ahead_upload;
	struct entry *which[RESERVE_AHEAD]; /* the files reserved for */
	size_t nahead;
	atomic_bool ahead_stop;
	specify_session *s;
	const struct catalog_format *guess;
};

static const char *const status_names[BATCH_STATUS_COUNT] = {
	"matched", "not-found", "ambiguous", "bad-name", "not-in-mapping",
	"already-attached", "name-taken", "duplicate", "unreadable",
};

const char *batch_status_name(enum batch_status s)
{
	return (unsigned)s < BATCH_STATUS_COUNT ? status_names[s] : "?";
}

static int set_status(struct entry *e, enum batch_status s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_status(struct entry *e, enum batch_status s, const char *fmt, ...)
{
	va_list ap;

	e->f.status = s;
	free(e->f.reason);
	e->f.reason = NULL;
	if (!fmt)
		return 0;
	va_start(ap, fmt);
	int r = vasprintf(&e->f.reason, fmt, ap);
	va_end(ap);
	if (r < 0)
		e->f.reason = NULL;
	return 0;
}

/* --- walking the input ----------------------------------------------------- */

static int add_path(batch_plan *p, const char *path, cs_error *err)
{
	struct entry *e;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct entry *v = realloc(p->v, cap * sizeof *v);
		if (!v)
			return cs_error_set(err, CS_E_NOMEM, "out of memory");
		p->v = v;
		p->cap = cap;
	}
	e = &p->v[p->n];
	memset(e, 0, sizeof *e);
	if (!(e->f.path = strdup(path)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	const char *slash = strrchr(e->f.path, '/');
	e->f.name = slash ? slash + 1 : e->f.path;
	p->n++;
	return 0;
}

bool batch_is_own_file(const char *name)
{
	const char *dot = strrchr(name, '.');

	return (dot && strcasecmp(dot, ".xmp") == 0) ||
	       (strncmp(name, "report", 6) == 0 && dot && strcasecmp(dot, ".html") == 0);
}

static int walk(batch_plan *p, const char *path, bool top, cs_error *err)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (stat(path, &st) != 0) {
		if ((ret = add_path(p, path, err)) == 0)
			set_status(&p->v[p->n - 1], BATCH_UNREADABLE, "cannot read it: %s",
				   strerror(errno));
		return ret;
	}
	if (S_ISREG(st.st_mode))
		return add_path(p, path, err);
	if (!S_ISDIR(st.st_mode) || (!top && !p->o.recursive))
		return 0;
	if (!(d = opendir(path))) {
		if ((ret = add_path(p, path, err)) == 0)
			set_status(&p->v[p->n - 1], BATCH_UNREADABLE, "cannot read the "
				   "folder: %s", strerror(errno));
		return ret;
	}
	while (ret == 0 && (de = readdir(d))) {
		char *child;
		/* Hidden files are the system's (.DS_Store, ._IMG), XMP sidecars
		 * and report.html copystand's own: none is a capture. */
		if (de->d_name[0] == '.' || batch_is_own_file(de->d_name))
			continue;
		if (asprintf(&child, "%s/%s", path, de->d_name) < 0)
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
		else
			ret = walk(p, child, false, err);
		free(child);
	}
	closedir(d);
	return ret;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->f.path, ((const struct entry *)b)->f.path);
}

/* --- names and mapping files ------------------------------------------------ */

static void resolve_name(batch_plan *p, struct entry *e)
{
	struct catalog_candidates *c = NULL;
	cs_error err;

	if (catalog_resolve_filename(p->format, e->f.name, &c, &err) < 0) {
		set_status(e, BATCH_BAD_NAME, "%s", err.msg);
		return;
	}
	for (size_t i = 0; i < catalog_candidates_count(c) && e->ncands < 8; i++)
		e->cands[e->ncands++] = strdup(catalog_candidates_identifier(c, i));
	catalog_candidates_free(c);
}

static int read_mapping(batch_plan *p, struct mapping_table **t, cs_error *err)
{
	FILE *in = fopen(p->o.mapping, "r");
	int ret;

	if (!in)
		return cs_error_set(err, CS_E_IO, "cannot open the mapping file %s: %s",
				    p->o.mapping, strerror(errno));
	ret = mapping_table_load(t, in, p->o.mapping, p->o.target, p->format,
				 NULL, NULL, err);
	fclose(in);
	return ret;
}

static void resolve_mapped(struct entry *e, const struct mapping_table *t,
			   const char *source)
{
	const char *identifier, *problem;
	int rc = mapping_table_find(t, e->f.name, &identifier, &problem);

	if (rc == CS_E_NOT_FOUND)
		set_status(e, BATCH_NOT_IN_MAPPING, "not listed in %s", source);
	else if (rc)
		set_status(e, BATCH_BAD_NAME, "%s", problem);
	else
		e->cands[e->ncands++] = strdup(identifier);
}

static void *hash_all(void *arg);

int batch_plan_new(const batch_options *o, char *const *inputs, size_t n,
		   batch_plan **out, cs_error *err)
{
	batch_plan *p = calloc(1, sizeof *p);
	int ret = 0;

	*out = NULL;
	if (!p)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	p->o = *o;
	atomic_init(&p->stop, false);
	atomic_init(&p->nhashed, 0);
	atomic_init(&p->ahead_stop, false);
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = walk(p, inputs[i], true, err);
	if (ret) {
		batch_plan_free(p);
		return ret;
	}
	qsort(p->v, p->n, sizeof *p->v, by_path);
	/* Read while the caller logs in: that waits on the network. */
	p->reading = pthread_create(&p->reader, NULL, hash_all, p) == 0;
	if (!p->reading)
		hash_all(p);
	*out = p;
	return 0;
}

/* Each file's identifier from its name, or from the mapping file. */
static int resolve_all(batch_plan *p, cs_error *err)
{
	struct mapping_table *table = NULL;
	int ret = p->o.mapping ? read_mapping(p, &table, err) : 0;

	for (size_t i = 0; ret == 0 && i < p->n; i++) {
		struct entry *e = &p->v[i];
		if (e->f.status == BATCH_UNREADABLE)
			continue;
		if (p->o.mapping)
			resolve_mapped(e, table, p->o.mapping);
		else
			resolve_name(p, e);
	}
	mapping_table_free(table);
	return ret;
}

static void stop_reading(batch_plan *p)
{
	if (p->reading) {
		pthread_join(p->reader, NULL);
		p->reading = false;
	}
}

static void stop_ahead(batch_plan *p);

void batch_plan_free(batch_plan *p)
{
	if (!p)
		return;
	stop_ahead(p);
	atomic_store(&p->stop, true);
	stop_reading(p);
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].f.path);
		free(p->v[i].f.identifier);
		free(p->v[i].f.reason);
		free(p->v[i].read_error);
		for (int k = 0; k < p->v[i].ncands; k++)
			free(p->v[i].cands[k]);
	}
	free(p->v);
	free(p);
}

size_t batch_plan_count(const batch_plan *p)
{
	return p->n;
}

const batch_file *batch_plan_file(const batch_plan *p, size_t i)
{
	return &p->v[i].f;
}

void batch_plan_counts(const batch_plan *p, size_t counts[BATCH_STATUS_COUNT])
{
	memset(counts, 0, sizeof(size_t) * BATCH_STATUS_COUNT);
	for (size_t i = 0; i < p->n; i++)
		counts[p->v[i].f.status]++;
}

/* --- reading and reserving, while Specify looks the names up ---------------- */

/* Larger files are not sent ahead: validation waits for the one being
 * sent when it ends. */
#define SEND_AHEAD_MAX (32LL << 20)

/* Whether e is among the files to reserve for: its name reads as an
 * identifier under the guessed format, or (validation's start) it has
 * candidates. */
static bool worth_ahead(const batch_plan *p, const struct entry *e)
{
	struct catalog_candidates *c = NULL;
	bool yes;

	if (!p->guess)
		return e->ncands > 0;
	yes = catalog_resolve_filename(p->guess, e->f.name, &c, NULL) == 0 &&
	      catalog_candidates_count(c) > 0;
	catalog_candidates_free(c);
	return yes;
}

/* Until the reader is done with file i (false: stopped first).  Reading
 * runs ahead of the network, so this rarely waits. */
static bool wait_read(batch_plan *p, size_t i)
{
	while (atomic_load_explicit(&p->nhashed, memory_order_acquire) <= i)
		if (atomic_load(&p->ahead_stop) || atomic_load(&p->stop))
			return false;
		else
			usleep(1000);
	return true;
}

/* Sends the reserved files while validation goes on, one at a time (the
 * asset server takes one upload at a time): not one whose content the
 * journal has (it is attached or being attached), each noted before it
 * is sent.  Whatever fails is left to the pipeline. */
static void send_reserved(batch_plan *p)
{
	const char *server = specify_session_info(p->s)->server;
	journal *j;
	cs_error err;

	if (journal_open(p->o.journal_path, &j, &err))
		return;
	for (size_t k = 0; k < p->nahead && !atomic_load(&p->ahead_stop); k++) {
		struct entry *e = p->which[k];
		if (!wait_read(p, (size_t)(e - p->v)))
			break;
		if (e->read_error || e->f.size >= SEND_AHEAD_MAX ||
		    journal_knows_content(j, e->f.sha256))
			continue;
		if (journal_ahead_add(j, server, e->location, &err) ||
		    specify_asset_upload(p->s, e->f.path, e->f.name,
					 metadata_mimetype(e->f.name), e->location,
					 NULL, &err))
			break;
		e->sent = true;
	}
	journal_close(j);
}

/* Reserves locations for the first files that may match (a reservation
 * creates nothing: one a file does not use costs nothing). */
static void reserve_ahead(batch_plan *p)
{
	specify_reservation res[RESERVE_AHEAD];
	const char *names[RESERVE_AHEAD];
	size_t n = 0;
	cs_error err;

	for (size_t i = 0; i < p->n && n < RESERVE_AHEAD; i++)
		if (worth_ahead(p, &p->v[i])) {
			p->which[n] = &p->v[i];
			names[n++] = p->v[i].f.name;
		}
	if (!n || specify_locations_reserve(p->s, names, n, res, &err))
		return;
	for (size_t k = 0; k < n; k++)
		memcpy(p->which[k]->location, res[k].location, sizeof res[k].location);
	p->nahead = n;
}

/* Validation's start reserves beside the lookup; then the files are sent
 * when asked to.  The thread touches only location and sent, which
 * nothing else looks at before stop_ahead(), and reads what the reader
 * published (nhashed). */
static void *ahead_main(void *arg)
{
	batch_plan *p = arg;

	if (!p->nahead)
		reserve_ahead(p);
	if (p->ahead_upload)
		send_reserved(p);
	return NULL;
}

static void start_ahead(batch_plan *p, specify_session *s,
			const struct catalog_format *guess, bool upload)
{
	if (p->ahead_running || !p->o.reserve)
		return;
	p->s = s;
	p->guess = guess;
	p->ahead_upload = upload && p->o.journal_path;
	p->ahead_running = pthread_create(&p->ahead, NULL, ahead_main, p) == 0;
}

/* Lets the file being sent finish; nothing more is sent. */
static void stop_ahead(batch_plan *p)
{
	if (!p->ahead_running)
		return;
	atomic_store(&p->ahead_stop, true);
	pthread_join(p->ahead, NULL);
	p->ahead_running = false;
}

void batch_plan_send_ahead(batch_plan *p, specify_session *s,
			   const struct catalog_format *guess)
{
	if (!guess || !p->o.reserve || p->ahead_running)
		return;
	/* Here, not on the thread: the reservation goes out before the
	 * caller asks for the format. */
	p->s = s;
	p->guess = guess;
	reserve_ahead(p);
	if (p->nahead)
		start_ahead(p, s, guess, true);
}

/* The reader touches only sha256, size and read_error, which nothing
 * else looks at before stop_reading(). */
static void *hash_all(void *arg)
{
	batch_plan *p = arg;

	for (size_t i = 0; i < p->n && !atomic_load(&p->stop); i++) {
		struct entry *e = &p->v[i];
		cs_error ferr;
		if (sha256_file(e->f.path, e->f.sha256, &e->f.size, &ferr))
			e->read_error = strdup(ferr.msg);
		atomic_store_explicit(&p->nhashed, i + 1, memory_order_release);
	}
	return NULL;
}

/* A file that could not be read is unreadable, whatever its name says
 * (a walk that could not reach it has said so already). */
static void mark_unreadable(batch_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct entry *e = &p->v[i];
		if (e->read_error && e->f.status != BATCH_UNREADABLE)
			set_status(e, BATCH_UNREADABLE, "%s", e->read_error);
	}
}

/* --- validation -------------------------------------------------------------- */

static int lookup_all(batch_plan *p, specify_session *s, lookup **l,
		      cs_error *err)
{
	const char **values;
	size_t n = 0;
	int ret;

	values = calloc(p->n * 8 + 1, sizeof *values);
	if (!values)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++)
		for (int k = 0; k < p->v[i].ncands; k++)
			values[n++] = p->v[i].cands[k];
	ret = lookup_run(s, p->o.target, values, n, l, err);
	free(values);
	return ret;
}

static const lookup_record *pick(const batch_plan *p, const lookup_record **hits, int n)
{
	const lookup_record *best = hits[0];

	if (p->o.pick == BATCH_PICK_NONE)
		return NULL;
	/* "newest": the record created last has the highest id. */
	for (int i = 1; p->o.pick == BATCH_PICK_NEWEST && i < n && i < 4; i++)
		if (hits[i]->id > best->id)
			best = hits[i];
	return best;
}

static bool has_name(const lookup_record *rec, const char *name)
{
	for (int k = 0; k < rec->nattachments; k++)
		if (strcmp(rec->attachment_names[k], name) == 0)
			return true;
	return false;
}

static void decide(batch_plan *p, struct entry *e, const lookup *l)
{
	const struct match_target *t = p->o.target;
	const lookup_record *hits[4], *rec = NULL;
	int n = 0;

	for (int k = 0; k < e->ncands && n == 0; k++) {
		n = lookup_find(l, e->cands[k], hits, 4);
		if (n)
			e->f.identifier = strdup(e->cands[k]);
	}
	if (n == 0) {
		set_status(e, BATCH_NOT_FOUND, "no %s has %s '%s' in this collection",
			   t->table, t->caption, e->ncands ? e->cands[e->ncands - 1] : "");
		return;
	}
	if (n > 1 && !(rec = pick(p, hits, n))) {
		e->f.ncandidates = n < 4 ? n : 4;
		for (int i = 0; i < e->f.ncandidates; i++) {
			e->f.candidates[i] = hits[i]->id;
			e->f.candidate_attachments[i] = hits[i]->nattachments;
			e->cand_named[i] = has_name(hits[i], e->f.name);
		}
		set_status(e, BATCH_AMBIGUOUS, "%d records have %s '%s': choose with "
			   "--pick first|newest, or fix the records", n, t->caption,
			   e->f.identifier);
		return;
	}
	rec = rec ? rec : hits[0];
	e->f.record_id = rec->id;
	e->f.ordinal = rec->nattachments;
	e->named = has_name(rec, e->f.name);
	set_status(e, BATCH_MATCHED, NULL);
}

/* The record as the lookup found it (NULL: not among those found). */
static const lookup_record *record_of(const lookup *l, const char *identifier,
				      long long id)
{
	const lookup_record *hits[4];
	int n = identifier ? lookup_find(l, identifier, hits, 4) : 0;

	for (int i = 0; i < n && i < 4; i++)
		if (hits[i]->id == id)
			return hits[i];
	return NULL;
}

/* Has the record (a lookup_record) lost that join row?  Someone may have
 * deleted it in Specify since.  An id the lookup did not learn leaves the
 * journal's word standing. */
static bool gone_from(void *rec_, long long join_id)
{
	const lookup_record *rec = rec_;

	if (!rec || !join_id)
		return false;
	for (int k = 0; k < rec->nattachments; k++)
		if (!rec->attachment_ids[k] || rec->attachment_ids[k] == join_id)
			return false;
	return true;
}

/* Settles a file that may go to record_id by what this journal attached
 * there (outside the resumed batch): the same content is already
 * attached, unless that attachment is gone from the record; a name the
 * record has, with content not known to be the same, is taken. */
static int check_journal(batch_plan *p, struct entry *e, long long record_id,
			 const lookup *l, journal *j, long long resumed, cs_error *err)
{
	const char *table = p->o.target->table;
	long long batch;
	bool same;
	/* What was deleted in Specify since counts as never attached. */
	int ret = journal_find_attached(j, table, record_id, e->f.sha256, e->f.name, resumed,
					gone_from, (void *)record_of(l, e->f.identifier, record_id),
					&batch, &same, err);

	if (ret || (!same && !e->named))
		return ret;
	if (same) {
		e->f.record_id = record_id;
		e->f.ncandidates = 0;
		set_status(e, BATCH_ALREADY, "the same content was attached to %s %lld "
			   "in batch %lld", table, record_id, batch);
	} else if (batch) {
		set_status(e, BATCH_NAME_TAKEN, "%s %lld has an attachment named %s "
			   "with other content (batch %lld): rename the file to attach it "
			   "as a further image, or delete that attachment in Specify and "
			   "run again", table, record_id, e->f.name, batch);
	} else {
		set_status(e, BATCH_NAME_TAKEN, "%s %lld has an attachment named %s "
			   "that this journal did not attach, so its content cannot be "
			   "compared: rename the file to attach it as a further image, or "
			   "leave the file out if it is that image", table, record_id,
			   e->f.name);
	}
	return 0;
}

static void check_duplicate(batch_plan *p, size_t i)
{
	struct entry *e = &p->v[i];

	for (size_t k = 0; k < i; k++) {
		const batch_file *o = &p->v[k].f;
		if ((o->status == BATCH_MATCHED || o->status == BATCH_ALREADY) &&
		    strcmp(o->sha256, e->f.sha256) == 0) {
			set_status(e, BATCH_DUPLICATE, "same content as %s", o->path);
			return;
		}
	}
}

/* Settles file i: its record, then what the journal says of it. */
static int settle(batch_plan *p, size_t i, const lookup *l, journal *j,
		  long long resumed, cs_error *err)
{
	struct entry *e = &p->v[i];
	int ret = 0;

	if (e->adopted || e->f.status == BATCH_UNREADABLE ||
	    e->f.status == BATCH_BAD_NAME || e->f.status == BATCH_NOT_IN_MAPPING)
		return 0;
	decide(p, e, l);
	if (e->f.status == BATCH_MATCHED)
		ret = check_journal(p, e, e->f.record_id, l, j, resumed, err);
	/* A person chose its record in an earlier run. */
	for (int k = 0; ret == 0 && e->f.status == BATCH_AMBIGUOUS && k < e->f.ncandidates; k++)
		ret = check_journal(p, e, e->f.candidates[k], l, j, resumed, err);
	if (ret == 0 && (e->f.status == BATCH_MATCHED || e->f.status == BATCH_ALREADY))
		check_duplicate(p, i);
	return ret;
}

static int by_content(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
	int c = strcmp(x->f.sha256, y->f.sha256);

	return c ? c : strcmp(x->f.name, y->f.name);
}

struct adoption {
	struct entry **by;         /* the files by content and name */
	size_t n;
};

/* The file of an item of the resumed batch keeps its journaled record. */
static int adopt(void *ud, const journal_item *it)
{
	struct adoption *a = ud;
	struct entry key = { .f.name = it->name }, *kp = &key, **hit;

	if (!it->sha256 || !it->name || strlen(it->sha256) >= sizeof key.f.sha256)
		return 0;
	strcpy(key.f.sha256, it->sha256);
	hit = bsearch(&kp, a->by, a->n, sizeof *a->by, by_content);
	if (!hit || (*hit)->adopted)
		return 0;
	free((*hit)->f.identifier);
	(*hit)->f.identifier = it->identifier ? strdup(it->identifier) : NULL;
	(*hit)->f.record_id = it->record_id;
	(*hit)->f.ordinal = it->ordinal;
	(*hit)->f.ncandidates = 0;
	(*hit)->adopted = true;
	set_status(*hit, BATCH_MATCHED, NULL);
	return 0;
}

static int adopt_resumed(batch_plan *p, journal *j, long long resumed, cs_error *err)
{
	struct adoption a = { .by = calloc(p->n + 1, sizeof *a.by) };
	int ret;

	if (!a.by)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].f.sha256[0])
			a.by[a.n++] = &p->v[i];
	qsort(a.by, a.n, sizeof *a.by, by_content);
	ret = journal_items_each(j, resumed, -1, adopt, &a, err);
	free(a.by);
	return ret;
}

int batch_plan_validate(batch_plan *p, const struct catalog_format *format,
			specify_session *s, journal *j, long long resumed,
			cs_error *err)
{
	lookup *l = NULL;
	int ret;

	p->format = format;
	if ((ret = resolve_all(p, err)))
		return ret;
	/* The lookup is one request: the first files are reserved (and
	 * sent) meanwhile, unless that began at the login already. */
	start_ahead(p, s, NULL, resumed == 0);
	ret = lookup_all(p, s, &l, err);
	stop_ahead(p);
	stop_reading(p);
	mark_unreadable(p);

	if (ret == 0 && resumed)
		ret = adopt_resumed(p, j, resumed, err);
	for (size_t i = 0; ret == 0 && i < p->n; i++)
		ret = settle(p, i, l, j, resumed, err);
	/* Further images of one record follow each other. */
	for (size_t i = 0; ret == 0 && i < p->n; i++)
		for (size_t k = 0; k < i && !p->v[i].adopted; k++)
			if (p->v[i].f.status == BATCH_MATCHED && p->v[k].f.status == BATCH_MATCHED &&
			    p->v[k].f.record_id == p->v[i].f.record_id)
				p->v[i].f.ordinal++;
	lookup_free(l);
	return ret;
}

int batch_plan_choose(batch_plan *p, size_t i, long long record_id, cs_error *err)
{
	struct entry *e = i < p->n ? &p->v[i] : NULL;

	for (int k = 0; e && e->f.status == BATCH_AMBIGUOUS && k < e->f.ncandidates; k++) {
		if (e->f.candidates[k] != record_id)
			continue;
		e->f.record_id = record_id;
		/* As a record found alone would be: its name there is taken. */
		if (e->cand_named[k])
			return set_status(e, BATCH_NAME_TAKEN, "%s %lld, the record chosen, "
				"already has an attachment named %s: rename the file to attach "
				"it as a further image, or leave the file out if it is that "
				"image", p->o.target->table, record_id, e->f.name);
		e->f.ordinal = e->f.candidate_attachments[k];
		for (size_t m = 0; m < p->n; m++)
			if (m != i && p->v[m].f.status == BATCH_MATCHED &&
			    p->v[m].f.record_id == record_id)
				e->f.ordinal++;
		set_status(e, BATCH_MATCHED, NULL);
		return 0;
	}
	return cs_error_set(err, CS_E_INVALID, "record %lld is not one of the "
			    "candidates of that file", record_id);
}

/* --- journaling -------------------------------------------------------------- */


/* The attachment's fields of a file about to be journaled: its EXIF (a
 * JPEG's) and the configured defaults. */
static int attachment_fields(const batch_plan *p, journal_item *it,
			     const char *collection, cs_error *err)
{
	metadata_info info = { 0 };
	bool jpeg = metadata_is_jpeg(it->mimetype, it->name) &&
		metadata_read(it->path, &info, NULL) == 0;
	int ret = metadata_attachment_fields(jpeg ? &info : NULL, p->o.defaults,
					     it->identifier, collection, it->name,
					     &it->extra, err);

	metadata_info_clear(&info);
	return ret;
}

int batch_plan_journal(const batch_plan *p, journal *j, const char *server,
		       const char *collection, long long collection_id,
		       const char *label, long long *batch_id, cs_error *err)
{
	journal_item *items = calloc(p->n + 1, sizeof *items);
	size_t n = 0;
	int ret;

	if (!items)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	ret = *batch_id ? 0 : journal_batch_new(j, "upload", server, collection,
						 collection_id, label, batch_id, err);
	for (size_t i = 0; ret == 0 && i < p->n; i++) {
		const batch_file *f = &p->v[i].f;
		const char *location = p->v[i].location;
		if (f->status != BATCH_MATCHED || p->v[i].adopted)
			continue;
		items[n] = (journal_item){
			.batch_id = *batch_id, .path = f->path, .name = (char *)f->name,
			.size = f->size, .sha256 = (char *)f->sha256,
			.mimetype = (char *)metadata_mimetype(f->name),
			.target = (char *)p->o.target->name, .identifier = f->identifier,
			.record_table = (char *)p->o.target->table, .record_id = f->record_id,
			.ordinal = f->ordinal, .location = location[0] ? (char *)location : NULL,
			.state = p->v[i].sent ? JS_UPLOADED : location[0] ? JS_RESERVED : JS_MATCHED,
		};
		ret = attachment_fields(p, &items[n++], collection, err);
	}
	if (ret == 0 && n)
		ret = journal_items_add(j, items, n, NULL, err);
	for (size_t i = 0; i < n; i++)
		free(items[i].extra);
	free(items);
	return ret;
}

/* --- what was sent ahead and not taken ---------------------------------------- */

struct sweep {
	char **locations;
	size_t n, cap;
};

static int sweep_note(void *ud, const char *location)
{
	struct sweep *w = ud;

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 32;
		char **l = realloc(w->locations, cap * sizeof *l);
		if (!l)
			return CS_E_NOMEM;
		w->locations = l;
		w->cap = cap;
	}
	if (!(w->locations[w->n] = strdup(location)))
		return CS_E_NOMEM;
	w->n++;
	return 0;
}

int batch_sweep_ahead(journal *j, specify_session *s, cs_error *err)
{
	struct sweep w = { 0 };
	int ret = journal_ahead_forget_taken(j, err);

	if (ret == 0)
		ret = journal_ahead_each(j, specify_session_info(s)->server, sweep_note,
					 &w, err);
	if (ret == CS_E_NOMEM)
		ret = cs_error_set(err, ret, "out of memory");
	/* The file first, then the row: a row outlives its file. */
	for (size_t i = 0; ret == 0 && i < w.n; i++) {
		cs_error why;
		int gone = specify_asset_delete(s, w.locations[i], &why);
		if (gone == 0 || gone == CS_E_NOT_FOUND)
			ret = journal_ahead_remove(j, w.locations[i], err);
	}
	for (size_t i = 0; i < w.n; i++)
		free(w.locations[i]);
	free(w.locations);
	return ret;
}
