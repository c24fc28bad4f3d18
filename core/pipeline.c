#include "pipeline.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lookup.h"
#include "metadata.h"
#include "targets.h"

#define MAX_WORKERS 8
#define LEASE_S 300.0
/* Files this large are sent one or two at a time: on two cores parallel
 * uploads of 50 MB files were slower than sequential ones. */
#define LARGE_FILE (32ll << 20)
#define MATCH_CHUNK 500
/* Locations reserved per get_upload_params call: enough that reserving
 * costs little per file, few enough that their tokens are still fresh
 * when the files go out. */
#define RESERVE_CHUNK 32
/* Locations reserved beyond those the items due need, for the next ones:
 * a station's shots come one or two at a time, and each would otherwise
 * wait for a get_upload_params of its own.  A reservation creates nothing
 * on the server; a spare is used while its token (kept by the session for
 * 90 s) has time left for the upload. */
#define SPARES 8
#define SPARE_FRESH_S 60.0
#define MAX_UNDO 64
/* Join rows per bulk request, and such requests out at once (Specify
 * serves two at a time on two cores): small enough that one failing row
 * sends few back to be attached one by one. */
#define BULK_MAX 25
#define BULK_LEADERS 2
#define MAX_ATTACHING (BULK_MAX * 4)

struct job {
	journal_item item;
	struct job *next;
};

struct pipeline {
	char *journal_path;
	pipeline_options o;        /* o.login: a copy that owns its strings */

	pthread_mutex_t lock;
	pthread_cond_t wake;       /* coordinator: kicked, a job done, stop */
	pthread_cond_t work;       /* workers: a job queued, stop */
	pthread_cond_t changed;    /* waiters: some item moved */
	pthread_t coordinator;
	pthread_t workers[MAX_WORKERS];
	int nworkers;
	bool stopping, kicked, interrupted;

	specify_session *session;  /* set once online; lives until stop */
	long long collection_id;
	journal *j;                /* the coordinator's connection */

	struct job *queue, *queue_tail;
	long long inflight_items[MAX_WORKERS * 2];
	int inflight;
	int window;
	/* Uploaded items parked to be attached together (attach_parked),
	 * and the ids of those and of the ones being attached. */
	struct job *group, *group_tail;
	long long attaching[MAX_ATTACHING];
	int nattaching, leaders;
	bool no_bulk;              /* Specify has no bulk create */
	/* Spare reservations (coordinator only). */
	struct { char location[129]; double minted; } spares[SPARES];
	int nspares;
	char last_error[256];
	bool online;

	/* Items to take back (pipeline_undo), under lock. */
	struct { long long id; bool remove_file; } undo[MAX_UNDO];
	int nundo;
};

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* Due items of this pipeline's batches. */
static int items_due(pipeline *p, enum journal_state state, size_t max,
		     journal_item **out, size_t *n, cs_error *err)
{
	return journal_items_due(p->j, p->o.login.server, p->o.login.collection,
				 p->collection_id, state, now_s(), max, out, n, err);
}

/* Exponential backoff with ±25 % jitter, so that many stations that lost
 * the same server do not come back in step. */
static double backoff(const pipeline *p, int attempts)
{
	double d = p->o.retry_base_s * pow(2.0, attempts > 1 ? attempts - 1 : 0);
	if (d > p->o.retry_cap_s)
		d = p->o.retry_cap_s;
	return d * (0.75 + 0.5 * ((double)rand() / RAND_MAX));
}

static void report(pipeline *p, const journal_item *it, bool retry)
{
	pipeline_event ev = {
		.item_id = it->id, .batch_id = it->batch_id, .state = it->state,
		.name = it->name, .identifier = it->identifier, .reason = it->reason,
		.size = it->size, .retry = retry,
	};

	if (p->o.on_event)
		p->o.on_event(p->o.ud, &ev);
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static void note_error(pipeline *p, const cs_error *err)
{
	pthread_mutex_lock(&p->lock);
	snprintf(p->last_error, sizeof p->last_error, "%s", err->msg);
	pthread_mutex_unlock(&p->lock);
}

static int set_reason(journal_item *it, const char *reason)
{
	char *r = reason ? strdup(reason) : NULL;

	if (reason && !r)
		return CS_E_NOMEM;
	free(it->reason);
	it->reason = r;
	return 0;
}

/* Moves it from `from` to its new state in the journal and tells the
 * caller's callback. */
static int commit(pipeline *p, journal *j, journal_item *it,
		  enum journal_state from, bool retry, cs_error *err)
{
	int ret = journal_item_update(j, it, from, err);
	if (ret == 0)
		report(p, it, retry);
	return ret;
}

/* A transient failure: the item keeps its state and waits. */
static int defer(pipeline *p, journal *j, journal_item *it, const cs_error *why)
{
	cs_error err;
	enum journal_state from = it->state;

	note_error(p, why);
	set_reason(it, why->msg);
	it->next_try = now_s() + backoff(p, it->attempts);
	return commit(p, j, it, from, true, &err);
}

static int fail(pipeline *p, journal *j, journal_item *it, const char *why)
{
	cs_error err;
	enum journal_state from = it->state;

	set_reason(it, why);
	it->state = JS_FAILED;
	return commit(p, j, it, from, false, &err);
}

/* --- one item, on a worker thread ----------------------------------------- */

/* Uploaded but never attached, for good: the file would be an orphan. */
static void drop_orphan(pipeline *p, const journal_item *it)
{
	cs_error err;
	if (it->location)
		specify_asset_delete(p->session, it->location, &err);
}

static void set_attached(journal_item *it, const specify_attached *done)
{
	it->join_id = done->join_id;
	it->attachment_id = done->attachment_id;
	it->state = JS_ATTACHED;
	set_reason(it, NULL);
}

/* After a crash or a failed attempt the last request may have reached
 * Specify even though we never heard back: look before doing it again. */
static int reconcile(pipeline *p, journal *j, journal_item *it, bool *done,
		     cs_error *err)
{
	specify_attached found;
	enum journal_state from = it->state;
	int ret = specify_attachment_find(p->session, it->record_table,
					  it->location, &found, err);

	*done = false;
	if (ret == CS_E_NOT_FOUND)
		return 0;
	if (ret)
		return ret;
	set_attached(it, &found);
	*done = true;
	return commit(p, j, it, from, false, err);
}

static int step_upload(pipeline *p, journal *j, struct job *job, cs_error *err)
{
	journal_item *it = &job->item;
	struct stat st;
	int ret;

	if (stat(it->path, &st) != 0)
		return cs_error_set(err, CS_E_IO, "the file %s is gone from this "
				    "computer (%s): it cannot be uploaded", it->path,
				    strerror(errno));
	if ((long long)st.st_size != it->size)
		return cs_error_set(err, CS_E_IO, "the file %s changed size since it "
				    "was journaled (%lld, now %lld bytes): check it and "
				    "add it again", it->path, it->size, (long long)st.st_size);
	ret = specify_asset_upload(p->session, it->path, it->name, it->mimetype,
				   it->location, NULL, err);
	if (ret)
		return ret;
	it->state = JS_UPLOADED;
	set_reason(it, NULL);
	return commit(p, j, it, JS_RESERVED, false, err);
}

/* The asset server said Ok.; make sure it has every byte before the file
 * is attached.  A short file goes back to be sent again, and so does one
 * it does not have (it lost it, or a kill came before the bytes): its
 * 404 is about the file, not the record. */
static int check_stored(pipeline *p, journal *j, journal_item *it, cs_error *err)
{
	long long stored = -1;
	cs_error cerr;
	int ret = specify_asset_size(p->session, it->location, &stored, err);

	if (ret == CS_E_NOT_FOUND)
		ret = 0, stored = 0;
	if (ret || stored == it->size)
		return ret;
	it->state = JS_RESERVED;
	ret = cs_error_set(err, CS_E_NETWORK, "the asset server holds %lld of the "
			   "%lld bytes of %s: sending it again", stored, it->size,
			   it->name);
	commit(p, j, it, JS_UPLOADED, true, &cerr);
	return ret;
}

/* The join row and attachment to create for an uploaded item; *extra is
 * the caller's to free. */
static specify_attachment attachment_of(const journal_item *it, cJSON **extra)
{
	*extra = it->extra ? cJSON_Parse(it->extra) : NULL;
	return (specify_attachment){
		.table = it->record_table, .record_id = it->record_id,
		.ordinal = it->ordinal, .location = it->location,
		.mimetype = it->mimetype, .origfilename = it->name, .title = it->name,
		.extra = *extra,
	};
}

static int step_attach(pipeline *p, journal *j, journal_item *it, cs_error *err)
{
	specify_attached done;
	cJSON *extra;
	specify_attachment a = attachment_of(it, &extra);
	int ret = specify_attachment_create(p->session, &a, &done, err);

	cJSON_Delete(extra);
	if (ret)
		return ret;
	set_attached(it, &done);
	return commit(p, j, it, JS_UPLOADED, false, err);
}

/* After a step: a transient failure (or, with unknown, any failure of a
 * request about several items) waits; a permanent one fails the item.
 * True when the item met a transient failure. */
static bool settle(pipeline *p, journal *j, journal_item *it, int ret,
		   cs_error *err, bool unknown)
{
	pthread_mutex_lock(&p->lock);
	bool stopping = p->stopping;
	pthread_mutex_unlock(&p->lock);
	if (ret && stopping) {
		/* Stopped on purpose: the item stays as it is for the next run. */
	} else if (ret && (unknown || cs_error_is_transient(ret))) {
		defer(p, j, it, err);
	} else if (ret == CS_E_NOT_FOUND && it->state == JS_UPLOADED) {
		char why[900];
		snprintf(why, sizeof why, "%s %lld (%s) no longer exists in Specify: "
			 "%s", it->record_table, it->record_id,
			 it->identifier ? it->identifier : "?", err->msg);
		drop_orphan(p, it);
		fail(p, j, it, why);
	} else if (ret && ret != CS_E_CONFLICT) {
		if (it->state == JS_UPLOADED)
			drop_orphan(p, it);
		fail(p, j, it, err->msg);
	}
	/* A final item needs no lease; one that waits is free for others. */
	if (!journal_state_is_final(it->state))
		journal_item_release(j, it->id, err);
	pthread_mutex_lock(&p->lock);
	if (ret == 0 || cs_error_is_transient(ret))
		p->online = ret == 0 || !(ret == CS_E_UNREACHABLE ||
			ret == CS_E_TIMEOUT || ret == CS_E_NETWORK);
	pthread_mutex_unlock(&p->lock);
	return ret && (unknown || cs_error_is_transient(ret));
}

/* Attaches one uploaded item with a join row of its own. */
static void attach_alone(pipeline *p, journal *j, journal_item *it)
{
	cs_error err = { 0 };
	int ret = step_attach(p, j, it, &err);

	settle(p, j, it, ret, &err, false);
}

enum outcome { DONE, STRUGGLED, PARKED };

/* Leaves an uploaded item to be attached with others (lock not held):
 * where Specify takes many join rows in one request, those that finish
 * uploading while one such request is out go together in the next. */
static bool park(pipeline *p, struct job *job)
{
	bool parked = false;

	pthread_mutex_lock(&p->lock);
	if (!p->no_bulk && p->nattaching < MAX_ATTACHING) {
		p->attaching[p->nattaching++] = job->item.id;
		job->next = NULL;
		if (p->group_tail)
			p->group_tail->next = job;
		else
			p->group = job;
		p->group_tail = job;
		parked = true;
	}
	pthread_mutex_unlock(&p->lock);
	return parked;
}

/* Takes one item as far as it goes. */
static enum outcome process(pipeline *p, journal *j, struct job *job)
{
	journal_item *it = &job->item;
	cs_error err = { 0 };
	int attempts_before, ret;
	bool done = false;

	if (journal_item_claim(j, it->id, now_s() + LEASE_S, &attempts_before, &err))
		return DONE;
	it->attempts = attempts_before + 1;
	ret = attempts_before > 0 ? reconcile(p, j, it, &done, &err) : 0;
	if (ret == 0 && !done && it->state == JS_RESERVED)
		ret = step_upload(p, j, job, &err);
	if (ret == 0 && !done && it->state == JS_UPLOADED)
		ret = check_stored(p, j, it, &err);
	if (ret == 0 && !done && it->state == JS_UPLOADED) {
		/* One that failed before goes alone, after its reconcile. */
		if (attempts_before == 0 && park(p, job))
			return PARKED;
		ret = step_attach(p, j, it, &err);
	}
	return settle(p, j, it, ret, &err, false) ? STRUGGLED : DONE;
}

/* Attaches parked items in one request.  A failure says nothing of which
 * rows Specify created, so each waits and is then looked for by its
 * location before it is attached on its own. */
static void attach_together(pipeline *p, journal *j, struct job **jobs, size_t n)
{
	specify_attachment *a = calloc(n, sizeof *a);
	specify_attached *out = calloc(n, sizeof *out);
	cJSON **extra = calloc(n, sizeof *extra);
	journal_item *items = calloc(n, sizeof *items);
	cs_error err = { 0 };
	int ret = a && out && extra && items ? 0 :
		cs_error_set(&err, CS_E_NOMEM, "out of memory");

	for (size_t i = 0; ret == 0 && i < n; i++)
		a[i] = attachment_of(&jobs[i]->item, &extra[i]);
	if (ret == 0)
		ret = specify_attachments_create(p->session, a, n, out, &err);
	if (ret == CS_E_UNSUPPORTED) {
		pthread_mutex_lock(&p->lock);
		p->no_bulk = true;
		pthread_mutex_unlock(&p->lock);
		for (size_t i = 0; i < n; i++)
			attach_alone(p, j, &jobs[i]->item);
	} else if (ret == 0) {
		/* One transaction; the items stay the jobs'. */
		for (size_t i = 0; i < n; i++) {
			set_attached(&jobs[i]->item, &out[i]);
			items[i] = jobs[i]->item;
		}
		if ((ret = journal_items_update(j, items, n, JS_UPLOADED, &err)) == 0)
			for (size_t i = 0; i < n; i++)
				report(p, &items[i], false);
		for (size_t i = 0; ret && i < n; i++)
			settle(p, j, &jobs[i]->item, ret, &err, true);
	} else {
		cs_error_prefix(&err, "attaching %zu files in one request", n);
		for (size_t i = 0; i < n; i++)
			settle(p, j, &jobs[i]->item, ret, &err, true);
	}
	for (size_t i = 0; extra && i < n; i++)
		cJSON_Delete(extra[i]);
	free(a);
	free(out);
	free(extra);
	free(items);
}

static void job_free(struct job *job)
{
	journal_item_clear(&job->item);
	free(job);
}

/* Attaches what is parked, a request at a time, BULK_LEADERS requests at
 * once at most; a worker that finds them all busy leaves its item to
 * them. */
static void attach_parked(pipeline *p, journal *j)
{
	struct job *jobs[BULK_MAX];

	for (;;) {
		size_t n = 0;

		pthread_mutex_lock(&p->lock);
		if (p->stopping || p->leaders >= BULK_LEADERS || !p->group) {
			pthread_mutex_unlock(&p->lock);
			return;
		}
		while (p->group && n < BULK_MAX) {
			jobs[n++] = p->group;
			p->group = p->group->next;
		}
		if (!p->group)
			p->group_tail = NULL;
		p->leaders++;
		pthread_mutex_unlock(&p->lock);

		if (n == 1)
			attach_alone(p, j, &jobs[0]->item);
		else
			attach_together(p, j, jobs, n);

		pthread_mutex_lock(&p->lock);
		p->leaders--;
		for (size_t i = 0; i < n; i++)
			for (int k = 0; k < p->nattaching; k++)
				if (p->attaching[k] == jobs[i]->item.id) {
					p->attaching[k] = p->attaching[--p->nattaching];
					break;
				}
		p->kicked = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		for (size_t i = 0; i < n; i++)
			job_free(jobs[i]);
	}
}

static struct job *next_job(pipeline *p)
{
	struct job *job = NULL;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping && !p->queue)
		pthread_cond_wait(&p->work, &p->lock);
	if (!p->stopping) {
		job = p->queue;
		p->queue = job->next;
		if (!p->queue)
			p->queue_tail = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	return job;
}

/* Additive increase, multiplicative decrease: fewer uploads in flight
 * when the server struggles, more when it keeps up. */
static void finish_job(pipeline *p, long long id, bool struggled)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->inflight; i++) {
		if (p->inflight_items[i] != id)
			continue;
		p->inflight--;
		p->inflight_items[i] = p->inflight_items[p->inflight];
		break;
	}
	if (struggled)
		p->window = p->window > 1 ? p->window / 2 : 1;
	else if (p->window < p->o.max_inflight)
		p->window++;
	p->kicked = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *arg)
{
	pipeline *p = arg;
	journal *j = NULL;
	cs_error err;
	struct job *job;

	if (journal_open(p->journal_path, &j, &err)) {
		note_error(p, &err);
		return NULL;
	}
	while ((job = next_job(p))) {
		long long id = job->item.id;
		enum outcome o = process(p, j, job);

		/* A parked job is the group's now: only its id is ours. */
		finish_job(p, id, o == STRUGGLED);
		if (o == PARKED)
			attach_parked(p, j);
		else
			job_free(job);
	}
	journal_close(j);
	return NULL;
}

/* --- the coordinator -------------------------------------------------------- */

/* Makes s the pipeline's session for good. */
static void adopt_session(pipeline *p, specify_session *s)
{
	pthread_mutex_lock(&p->lock);
	p->session = s;
	p->collection_id = specify_session_info(s)->collection_id;
	p->online = true;
	pthread_mutex_unlock(&p->lock);
}

static int ensure_session(pipeline *p, cs_error *err)
{
	specify_session *s;
	int ret;

	if (p->session)
		return 0;
	if ((ret = specify_session_login(&p->o.login, &s, err)))
		return ret;
	adopt_session(p, s);
	return 0;
}

/* Decides one named item from the lookup: matched, unmatched or ambiguous.
 * The database compares without case, and so do we: a scanner that sends
 * lower case still finds the record. */
static void decide(pipeline *p, journal_item *it, const struct match_target *t,
		   const lookup *l, const journal_item *done, size_t ndone)
{
	const lookup_record *hit = NULL;
	long long counted = 0;
	int hits = lookup_find(l, it->identifier, &hit, 1);
	char why[512];

	if (hits == 0) {
		const char *slash = strrchr(it->path, '/');
		snprintf(why, sizeof why, "no %s has %s '%s' in collection '%s': check the "
			 "number; if it is right, catalogue the specimen in Specify, then run "
			 "copystand upload %.*s", t->table, t->caption, it->identifier,
			 p->o.login.collection, slash ? (int)(slash - it->path) : 1,
			 slash ? it->path : ".");
		it->state = JS_UNMATCHED;
		set_reason(it, why);
		return;
	}
	if (hits > 1) {
		snprintf(why, sizeof why, "%d records of %s have %s '%s': choose one",
			 hits, t->table, t->caption, it->identifier);
		it->state = JS_AMBIGUOUS;
		set_reason(it, why);
		return;
	}
	/* Further images of a record follow the ones it already has. */
	journal_record_count(p->j, t->table, hit->id, &counted, NULL);
	for (size_t i = 0; i < ndone; i++)
		if (done[i].state == JS_MATCHED && done[i].record_id == hit->id)
			counted++;
	free(it->record_table);
	it->record_table = strdup(t->table);
	it->record_id = hit->id;
	it->ordinal = hit->nattachments + (int)counted;
	it->state = JS_MATCHED;
	set_reason(it, NULL);
}

/* named → matched / unmatched / ambiguous, one batched lookup per target. */
static int match_named(pipeline *p, cs_error *err)
{
	journal_item *items;
	size_t n;
	int ret = items_due(p, JS_NAMED, MATCH_CHUNK, &items, &n, err);

	for (size_t first = 0; ret == 0 && first < n; ) {
		const struct match_target *t = match_target_find(items[first].target);
		const char **values = calloc(n, sizeof *values);
		lookup *l = NULL;
		size_t k = 0, end = first;

		while (end < n && strcmp(items[end].target, items[first].target) == 0) {
			values[k++] = items[end].identifier;
			end++;
		}
		if (!t || !values)
			ret = cs_error_set(err, t ? CS_E_NOMEM : CS_E_INVALID,
					   "unknown match target '%s'", items[first].target);
		else
			ret = lookup_run(p->session, t, values, k, &l, err);
		for (size_t i = first; ret == 0 && i < end; i++)
			decide(p, &items[i], t, l, items + first, i - first);
		if (ret == 0 && (ret = journal_items_update(p->j, items + first, end - first,
							   JS_NAMED, err)) == 0)
			for (size_t i = first; i < end; i++)
				report(p, &items[i], false);
		lookup_free(l);
		free(values);
		first = end;
	}
	journal_items_free(items, n);
	return ret;
}

static bool is_undoing(const pipeline *p, long long id)
{
	for (int i = 0; i < p->nundo; i++)
		if (p->undo[i].id == id)
			return true;
	return false;
}

/* Is the item being sent or attached?  Other items of its record may be:
 * each has its ordinal from the moment it was matched, so their join rows
 * may go in any order. */
static bool is_inflight(const pipeline *p, long long id)
{
	for (int i = 0; i < p->inflight; i++)
		if (p->inflight_items[i] == id)
			return true;
	for (int i = 0; i < p->nattaching; i++)
		if (p->attaching[i] == id)
			return true;
	return false;
}

/* Queues an item for the workers (called with the lock held). */
static void enqueue(pipeline *p, journal_item *it)
{
	struct job *job = calloc(1, sizeof *job);

	if (!job)
		return;
	job->item = *it;
	memset(it, 0, sizeof *it);
	p->inflight_items[p->inflight] = job->item.id;
	p->inflight++;
	if (p->queue_tail)
		p->queue_tail->next = job;
	else
		p->queue = job;
	p->queue_tail = job;
	pthread_cond_signal(&p->work);
}

/* Room for one more upload of this size? (lock held) */
static bool has_room(const pipeline *p, const journal_item *it)
{
	int limit = p->window;
	if (it->size >= LARGE_FILE && limit > 2)
		limit = 2;
	return p->inflight < limit && !is_inflight(p, it->id) &&
	       !is_undoing(p, it->id);
}

/* Hands due reserved/uploaded items to the workers, JPEGs first: a RAW
 * handed in before its JPEG must not hold the JPEG back on a slow line. */
static int dispatch_state(pipeline *p, enum journal_state st, cs_error *err)
{
	journal_item *items;
	size_t n;
	int ret = items_due(p, st, MAX_WORKERS * 4, &items, &n, err);

	pthread_mutex_lock(&p->lock);
	/* enqueue() takes the item, leaving its id 0. */
	for (int jpegs = 1; jpegs >= 0; jpegs--)
		for (size_t i = 0; ret == 0 && i < n; i++)
			if (items[i].id && metadata_is_jpeg(items[i].mimetype, items[i].name) == jpegs &&
			    has_room(p, &items[i]))
				enqueue(p, &items[i]);
	pthread_mutex_unlock(&p->lock);
	journal_items_free(items, n);
	return ret;
}

/* Reserved items not yet sent, of this pipeline's batches. */
static int count_reserved(pipeline *p, size_t *n, cs_error *err)
{
	journal_item *items;
	int ret = items_due(p, JS_RESERVED, RESERVE_CHUNK, &items, n, err);
	journal_items_free(items, *n);
	return ret;
}

/* The extension a location gets from a file name ("" for none). */
static const char *ext_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot ? dot : "";
}

/* A fresh spare for a file named name (same extension), moved into
 * *location; false when there is none.  Stale ones are dropped. */
static bool spare_take(pipeline *p, const char *name, char **location)
{
	double now = now_s();

	for (int i = 0; i < p->nspares; ) {
		if (now - p->spares[i].minted >= SPARE_FRESH_S) {
			p->spares[i] = p->spares[--p->nspares];
		} else if (strcmp(ext_of(p->spares[i].location), ext_of(name)) == 0) {
			if (!(*location = strdup(p->spares[i].location)))
				return false;
			p->spares[i] = p->spares[--p->nspares];
			return true;
		} else {
			i++;
		}
	}
	return false;
}

static void spare_keep(pipeline *p, const specify_reservation *r)
{
	if (p->nspares == SPARES)
		return;
	snprintf(p->spares[p->nspares].location, sizeof p->spares[0].location, "%s", r->location);
	p->spares[p->nspares++].minted = (double)r->minted;
}

/* matched → reserved, a chunk at a time, journaled in one transaction
 * before any of them is uploaded; the session keeps their tokens for the
 * uploads.  Spares serve first; a request tops them up. */
static int reserve(pipeline *p, cs_error *err)
{
	journal_item *items = NULL;
	specify_reservation *res = NULL;
	const char **names = NULL;
	char spare_names[SPARES][16];
	size_t n = 0, need = 0, ask, waiting, *which = NULL;
	int ret = count_reserved(p, &waiting, err);

	/* Enough are waiting to keep the uploads busy. */
	if (ret || waiting >= (size_t)p->o.max_inflight)
		return ret;
	ret = items_due(p, JS_MATCHED, RESERVE_CHUNK, &items, &n, err);
	if (ret || n == 0)
		goto out;
	names = calloc(n + SPARES, sizeof *names);
	res = calloc(n + SPARES, sizeof *res);
	which = calloc(n, sizeof *which);
	if (!names || !res || !which) {
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char *spare = NULL;
		if (spare_take(p, items[i].name, &spare)) {
			free(items[i].location);
			items[i].location = spare;
		} else {
			which[need] = i;
			names[need++] = items[i].name;
		}
	}
	/* The spares asked with them take their extensions in turn. */
	ask = need;
	for (int k = 0; need && k < SPARES - p->nspares; k++) {
		snprintf(spare_names[k], sizeof spare_names[k], "spare%s",
			 ext_of(names[(size_t)k % need]));
		names[ask++] = spare_names[k];
	}
	if (need && (ret = specify_locations_reserve(p->session, names, ask, res, err)))
		goto out;
	for (size_t k = 0; k < need && ret == 0; k++) {
		journal_item *it = &items[which[k]];
		free(it->location);
		if (!(it->location = strdup(res[k].location)))
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	for (size_t k = need; k < ask; k++)
		spare_keep(p, &res[k]);
	for (size_t i = 0; i < n; i++)
		items[i].state = JS_RESERVED;
	if (ret || (ret = journal_items_update(p->j, items, n, JS_MATCHED, err)))
		goto out;
	for (size_t i = 0; i < n; i++)
		report(p, &items[i], false);
out:
	journal_items_free(items, n);
	free(names);
	free(res);
	free(which);
	return ret;
}

/* --- taking items back ------------------------------------------------------ */

/* Removes from Specify whatever of it got there: the join row (Specify
 * deletes the attachment and its file with it) or an orphan upload.  An
 * item never taken up by a worker never reached the asset server. */
static int undo_remote(pipeline *p, journal_item *it, cs_error *err)
{
	specify_attached found;
	int ret;

	if (it->state != JS_ATTACHED && it->state != JS_UPLOADED &&
	    !(it->state == JS_RESERVED && it->attempts > 0))
		return 0;
	if ((ret = ensure_session(p, err)))
		return ret;
	if (it->state != JS_ATTACHED) {
		ret = specify_attachment_find(p->session, it->record_table,
					      it->location, &found, err);
		if (ret == CS_E_NOT_FOUND)
			ret = specify_asset_delete(p->session, it->location, err);
		else if (ret == 0)
			it->join_id = found.join_id;
		if (ret)
			return ret == CS_E_NOT_FOUND ? 0 : ret;
	}
	ret = specify_attachment_delete(p->session, it->record_table, it->join_id, err);
	return ret == CS_E_NOT_FOUND ? 0 : ret;
}

/* One undo request: 0 when settled (done or impossible), else it waits. */
static int undo_one(pipeline *p, long long id, bool remove_file, cs_error *err)
{
	journal_item it = { 0 };
	enum journal_state from;
	bool now_back = false;
	int ret;

	pthread_mutex_lock(&p->lock);
	bool busy = is_inflight(p, id);
	pthread_mutex_unlock(&p->lock);
	if (busy)
		return CS_E_TIMEOUT;
	if ((ret = journal_item_get(p->j, id, &it, err)))
		return ret == CS_E_NOT_FOUND ? 0 : ret;
	from = it.state;
	if (from != JS_ROLLED_BACK && (ret = undo_remote(p, &it, err)) == 0) {
		it.state = JS_ROLLED_BACK;
		set_reason(&it, "taken back (undo)");
		ret = journal_item_update(p->j, &it, from, err);
		now_back = ret == 0;
	}
	if (ret == 0 && remove_file && it.path && unlink(it.path) != 0 && errno != ENOENT)
		ret = cs_error_set(err, CS_E_IO, "cannot delete %s: %s", it.path,
				   strerror(errno));
	/* Told only now, so "taken back" means the file is gone too. */
	if (now_back)
		report(p, &it, false);
	journal_item_clear(&it);
	/* Moved on meanwhile (the finisher, say): look again next time. */
	if (ret == CS_E_CONFLICT)
		return CS_E_TIMEOUT;
	return ret && !cs_error_is_transient(ret) && ret != CS_E_TIMEOUT ? 0 : ret;
}

/* Carries out the undo requests that can be; the others wait. */
static void run_undos(pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	for (int i = 0; i < p->nundo; ) {
		long long id = p->undo[i].id;
		bool remove_file = p->undo[i].remove_file;
		cs_error err = { 0 };

		pthread_mutex_unlock(&p->lock);
		int ret = undo_one(p, id, remove_file, &err);
		if (ret && ret != CS_E_TIMEOUT)
			note_error(p, &err);
		pthread_mutex_lock(&p->lock);
		if (ret == 0)
			p->undo[i] = p->undo[--p->nundo];
		else
			i++;
	}
	pthread_mutex_unlock(&p->lock);
}

int pipeline_undo(pipeline *p, long long item_id, bool remove_file,
		  cs_error *err)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (is_undoing(p, item_id)) {
		/* Asked twice: once is enough. */
	} else if (p->nundo == MAX_UNDO) {
		ret = cs_error_set(err, CS_E_INVALID, "too many captures are being "
				   "taken back at once: wait a moment");
	} else {
		p->undo[p->nundo].id = item_id;
		p->undo[p->nundo].remove_file = remove_file;
		p->nundo++;
		p->kicked = true;
		pthread_cond_signal(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* Sleeps until kicked, a job finishes, stop, or `seconds` pass. */
static void coordinator_wait(pipeline *p, double seconds)
{
	struct timespec until;
	double t = now_s() + seconds;

	until.tv_sec = (time_t)t;
	until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
	pthread_mutex_lock(&p->lock);
	while (!p->stopping && !p->kicked &&
	       pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
		;
	p->kicked = false;
	pthread_mutex_unlock(&p->lock);
}

/* deferred → named/matched, a few at a time and only while the pipeline
 * has nothing else to do: RAW files shot with --raw later go up in the
 * pauses, never ahead of the JPEGs a technician waits for. */
static int release_deferred(pipeline *p, cs_error *err)
{
	journal_item *items = NULL;
	size_t n = 0;
	int ret;

	pthread_mutex_lock(&p->lock);
	bool idle = !p->queue && p->inflight == 0 && p->nattaching == 0;
	pthread_mutex_unlock(&p->lock);
	if (!idle)
		return 0;
	for (int st = JS_NAMED; st <= JS_UPLOADED; st++) {
		if ((ret = items_due(p, (enum journal_state)st, 1, &items, &n, err)))
			return ret;
		journal_items_free(items, n);
		if (n)
			return 0;
	}
	if ((ret = items_due(p, JS_DEFERRED, (size_t)p->o.max_inflight, &items, &n, err)))
		return ret;
	for (size_t i = 0; i < n; i++)
		items[i].state = items[i].record_id ? JS_MATCHED : JS_NAMED;
	if (n && (ret = journal_items_update(p->j, items, n, JS_DEFERRED, err)) == 0)
		pipeline_kick(p);
	journal_items_free(items, n);
	return ret == CS_E_CONFLICT ? 0 : ret;
}

static void *coordinator_main(void *arg)
{
	pipeline *p = arg;
	int failures = 0;

	for (;;) {
		cs_error err = { 0 };
		int ret;

		pthread_mutex_lock(&p->lock);
		bool stop = p->stopping;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			break;
		run_undos(p);
		ret = ensure_session(p, &err);
		if (ret == 0)
			ret = match_named(p, &err);
		if (ret == 0)
			ret = reserve(p, &err);
		/* Uploaded ones first: each is a size check and a join row from
		 * done, and Specify has nothing else to do meanwhile. */
		if (ret == 0)
			ret = dispatch_state(p, JS_UPLOADED, &err);
		if (ret == 0)
			ret = dispatch_state(p, JS_RESERVED, &err);
		if (ret == 0)
			ret = release_deferred(p, &err);
		if (ret) {
			note_error(p, &err);
			pthread_mutex_lock(&p->lock);
			p->online = p->session && !cs_error_is_transient(ret);
			pthread_mutex_unlock(&p->lock);
			coordinator_wait(p, backoff(p, ++failures));
			continue;
		}
		failures = 0;
		coordinator_wait(p, 1.0);
	}
	return NULL;
}

/* --- life cycle -------------------------------------------------------------- */

static int copy_options(pipeline *p, const pipeline_options *o, cs_error *err)
{
	p->o = *o;
	if (p->o.max_inflight <= 0)
		p->o.max_inflight = 4;
	if (p->o.max_inflight > MAX_WORKERS)
		p->o.max_inflight = MAX_WORKERS;
	if (p->o.retry_base_s <= 0)
		p->o.retry_base_s = 1.0;
	if (p->o.retry_cap_s <= 0)
		p->o.retry_cap_s = 60.0;
	p->o.login = (specify_login){ 0 };
	p->o.session = NULL;
	p->o.journal_path = NULL;
	if (!(p->journal_path = o->journal_path ? strdup(o->journal_path) : NULL))
		return cs_error_set(err, CS_E_CONFIG, "the pipeline needs a journal");
	return specify_login_copy(&p->o.login, &o->login, err);
}

static void pipeline_free(pipeline *p)
{
	struct job *job;

	while ((job = p->queue)) {
		p->queue = job->next;
		job_free(job);
	}
	while ((job = p->group)) {
		p->group = job->next;
		job_free(job);
	}
	if (p->session) {
		cs_error err;
		specify_session_logout(p->session, &err);
		specify_session_free(p->session);
	}
	journal_close(p->j);
	free(p->journal_path);
	specify_login_clear(&p->o.login);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->changed);
	free(p);
}

int pipeline_start(const pipeline_options *opts, pipeline **out, cs_error *err)
{
	pipeline *p = calloc(1, sizeof *p);
	int ret;

	*out = NULL;
	if (!p)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->changed, NULL);
	if (opts->session)
		adopt_session(p, opts->session);
	if ((ret = copy_options(p, opts, err)) ||
	    (ret = journal_open(p->journal_path, &p->j, err))) {
		pipeline_free(p);
		return ret;
	}
	p->window = p->o.max_inflight < 2 ? p->o.max_inflight : 2;
	for (int i = 0; i < p->o.max_inflight; i++) {
		if (pthread_create(&p->workers[i], NULL, worker_main, p) != 0)
			break;
		p->nworkers++;
	}
	if (p->nworkers == 0 ||
	    pthread_create(&p->coordinator, NULL, coordinator_main, p) != 0) {
		pipeline_stop(p);
		return cs_error_set(err, CS_E_NOMEM, "cannot start the pipeline's threads");
	}
	*out = p;
	return 0;
}

void pipeline_kick(pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	p->kicked = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

void pipeline_interrupt(pipeline *p)
{
	pthread_mutex_lock(&p->lock);
	p->interrupted = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static bool batch_is_final(journal *j, long long batch, cs_error *err, int *ret)
{
	long long counts[JS_COUNT];

	if ((*ret = journal_batch_counts(j, batch, counts, err)))
		return true;
	for (int s = 0; s < JS_COUNT; s++)
		if (counts[s] && !journal_state_is_final((enum journal_state)s))
			return false;
	return true;
}

int pipeline_wait_idle(pipeline *p, long long batch, double timeout_s,
		       cs_error *err)
{
	double deadline = timeout_s < 0 ? INFINITY : now_s() + timeout_s;
	journal *j;
	int ret = journal_open(p->journal_path, &j, err);

	while (ret == 0 && !batch_is_final(j, batch, err, &ret)) {
		struct timespec until;
		double t = now_s() + 0.2;

		if (t > deadline) {
			ret = cs_error_set(err, CS_E_TIMEOUT, "batch %lld is not done yet",
					   batch);
			break;
		}
		until.tv_sec = (time_t)t;
		until.tv_nsec = (long)((t - (double)until.tv_sec) * 1e9);
		pthread_mutex_lock(&p->lock);
		if (!p->interrupted)
			pthread_cond_timedwait(&p->changed, &p->lock, &until);
		bool stop = p->interrupted;
		p->interrupted = false;
		pthread_mutex_unlock(&p->lock);
		if (stop)
			ret = cs_error_set(err, CS_E_INVALID, "interrupted");
	}
	journal_close(j);
	return ret;
}

void pipeline_get_status(pipeline *p, pipeline_status *out)
{
	pthread_mutex_lock(&p->lock);
	out->online = p->online;
	out->inflight = p->inflight;
	out->window = p->window;
	out->undoing = p->nundo;
	snprintf(out->last_error, sizeof out->last_error, "%s", p->last_error);
	pthread_mutex_unlock(&p->lock);
}

void pipeline_stop(pipeline *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->wake);
	pthread_cond_broadcast(&p->work);
	/* Transfers under way stop now instead of running to their end. */
	if (p->session)
		specify_session_cancel(p->session);
	pthread_mutex_unlock(&p->lock);
	if (p->coordinator)
		pthread_join(p->coordinator, NULL);
	for (int i = 0; i < p->nworkers; i++)
		pthread_join(p->workers[i], NULL);
	pipeline_free(p);
}
