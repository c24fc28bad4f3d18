/* The pipeline against the stand-in: every good file attached exactly once
 * to the right record with identical bytes, under each fault switch, and
 * the bad ones failed with a reason a person can act on. */
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "journal.h"
#include "pipeline.h"
#include "sha256.h"
#include "tap.h"

struct run {
	harness_server hs;
	char *jpath;
	journal *j;
	long long batch;
	pipeline *p;
	int files;
};

static int setup(struct run *r, const char *const *args)
{
	static int n;
	cs_error err = { 0 };

	memset(r, 0, sizeof *r);
	if (harness_server_start(&r->hs, args))
		return -1;
	if (asprintf(&r->jpath, "%s/journal-%d.sqlite", harness_home(), ++n) < 0 ||
	    journal_open(r->jpath, &r->j, &err) ||
	    journal_batch_new(r->j, "test", r->hs.url, r->hs.collection, 0, NULL,
			      &r->batch, &err)) {
		tap_diag("setup: %s", err.msg);
		return -1;
	}
	return 0;
}

static void teardown(struct run *r)
{
	pipeline_stop(r->p);
	journal_close(r->j);
	harness_server_stop(&r->hs);
	free(r->jpath);
}

/* A file of size bytes (a JPEG, or of type mimetype with extension ext)
 * to be attached to the record with this identifier. */
static long long add_typed(struct run *r, const char *identifier, const char *target,
			   size_t size, const char *ext, const char *mimetype)
{
	char name[64], hex[65], *path;
	long long id = 0;
	cs_error err;

	snprintf(name, sizeof name, "f%03d-%s.%s", ++r->files, identifier, ext);
	path = harness_make_file(name, size, (unsigned)r->files * 7919u);
	sha256_file(path, hex, NULL, &err);
	journal_item it = {
		.batch_id = r->batch, .path = path, .name = name, .size = (long long)size,
		.sha256 = hex, .mimetype = (char *)mimetype, .target = (char *)target,
		.identifier = (char *)identifier, .state = JS_NAMED,
	};
	if (journal_item_add(r->j, &it, &id, &err))
		tap_diag("add: %s", err.msg);
	free(path);
	return id;
}

static long long add(struct run *r, const char *identifier, const char *target, size_t size)
{
	return add_typed(r, identifier, target, size, "jpg", "image/jpeg");
}

static int start(struct run *r, int inflight)
{
	cs_error err = { 0 };
	pipeline_options o = {
		.journal_path = r->jpath,
		.login = { .server = r->hs.url, .user = r->hs.user,
			   .password = r->hs.password, .collection = r->hs.collection },
		.max_inflight = inflight,
		.retry_base_s = 0.05,
		.retry_cap_s = 0.4,
	};
	int ret = pipeline_start(&o, &r->p, &err);
	if (ret)
		tap_diag("start: %s", err.msg);
	return ret;
}

static int wait_done(struct run *r, double seconds)
{
	cs_error err = { 0 };
	int ret = pipeline_wait_idle(r->p, r->batch, seconds, &err);
	if (ret)
		tap_diag("wait: %s", err.msg);
	return ret;
}

struct verify {
	cJSON *state;
	int attached, wrong;
};

static const cJSON *attachment_at(const cJSON *state, const char *location, int *copies)
{
	const cJSON *a, *found = NULL;

	*copies = 0;
	cJSON_ArrayForEach(a, cJSON_GetObjectItem(state, "attachments")) {
		const char *loc = cJSON_GetStringValue(cJSON_GetObjectItem(a, "attachmentlocation"));
		if (loc && strcmp(loc, location) == 0) {
			found = a;
			(*copies)++;
		}
	}
	return found;
}

/* Every attached item is in the stand-in once, on its record, with the
 * same bytes; nothing else is. */
static int verify_one(void *ud, const journal_item *it)
{
	struct verify *v = ud;
	const cJSON *a, *file;
	int copies;

	if (it->state != JS_ATTACHED)
		return 0;
	v->attached++;
	a = attachment_at(v->state, it->location, &copies);
	file = cJSON_GetObjectItem(cJSON_GetObjectItem(v->state, "files"), it->location);
	if (copies != 1 || !a ||
	    (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "record_id")) != it->record_id ||
	    (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "join_id")) != it->join_id ||
	    !it->sha256 || strcmp(it->sha256, cJSON_GetStringValue(cJSON_GetObjectItem(file, "sha256")) ?: "") != 0) {
		tap_diag("item %lld (%s): %d copies in the stand-in, or wrong record or bytes",
			 it->id, it->name, copies);
		v->wrong++;
	}
	return 0;
}

static void verify(struct run *r, const char *what, int want_attached)
{
	struct verify v = { .state = standin_state(r->hs.standin) };
	cs_error err;

	journal_items_each(r->j, r->batch, -1, verify_one, &v, &err);
	tap_is_int(v.attached, want_attached, what);
	tap_ok(v.wrong == 0, "%s: each once, on its record, bytes identical", what);
	tap_is_int(cJSON_GetArraySize(cJSON_GetObjectItem(v.state, "attachments")),
		   want_attached, "the stand-in has no other attachments");
	cJSON_Delete(v.state);
}

static long long counts_of(struct run *r, enum journal_state s)
{
	long long counts[JS_COUNT];
	cs_error err;
	journal_batch_counts(r->j, r->batch, counts, &err);
	return counts[s];
}

static void test_basic(void)
{
	struct run r;
	journal_item it;
	cs_error err;
	char num[16];

	if (setup(&r, NULL))
		return;
	for (int rec = 1; rec <= 12; rec++)
		for (int view = 0; view < 2; view++) {
			snprintf(num, sizeof num, "%09d", rec);
			add(&r, num, "catalog-number", 20000 + (size_t)rec * 1000);
		}
	long long missing = add(&r, "000099999", "catalog-number", 5000);
	long long ambiguous = add(&r, "ALT-1", "alt-catalog-number", 5000);
	long long alt = add(&r, "ALT-2", "alt-catalog-number", 5000);
	if (start(&r, 4) == 0 && wait_done(&r, 60) == 0) {
		verify(&r, "25 files attached", 25);
		journal_item_get(r.j, missing, &it, &err);
		tap_ok(it.state == JS_UNMATCHED && strstr(it.reason, "000099999"),
		       "an unknown number is unmatched: %s", it.reason);
		journal_item_clear(&it);
		journal_item_get(r.j, ambiguous, &it, &err);
		tap_ok(it.state == JS_AMBIGUOUS && strstr(it.reason, "2 records"),
		       "a number two records share is ambiguous: %s", it.reason);
		journal_item_clear(&it);
		journal_item_get(r.j, alt, &it, &err);
		tap_ok(it.state == JS_ATTACHED && it.record_id == 4, "alt catalog number matched");
		journal_item_clear(&it);

		cJSON *st = standin_state(r.hs.standin);
		int per_file = standin_requests(st, "POST /fileupload") +
			       standin_requests(st, "POST /api/specify/collectionobjectattachment/") +
			       standin_requests(st, "HEAD /fileget") +
			       standin_requests(st, "GET /attachment_gw/get_token/");
		tap_is_int(standin_requests(st, "POST /fileupload"), 25, "each file uploaded once");
		tap_ok(per_file <= 3 * 25, "%d requests for 25 files after planning (<= 3 each)", per_file);
		int lookups = standin_requests(st, "GET /api/specify/collectionobject/") +
			      standin_requests(st, "POST /stored_query/ephemeral/");
		tap_ok(lookups >= 1 && lookups <= 2, "validation in batched lookups (%d)", lookups);
		/* Two views of one record get two ordinals. */
		const cJSON *a;
		int ord[16] = { 0 }, dup = 0;
		cJSON_ArrayForEach(a, cJSON_GetObjectItem(st, "attachments")) {
			int rec = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "record_id"));
			int o = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "ordinal"));
			if (rec >= 1 && rec <= 12 && (ord[rec] & (1 << o)))
				dup++;
			if (rec >= 1 && rec <= 12 && o < 16)
				ord[rec] |= 1 << o;
		}
		tap_is_int(dup, 0, "views of one record have distinct ordinals");
		cJSON_Delete(st);
	}
	teardown(&r);
}

/* One fault switch for the whole run; every file still attached once. */
static void test_fault(const char *faults, const char *what, double heal_after)
{
	struct run r;
	char num[16];
	cs_error err = { 0 };

	if (setup(&r, NULL))
		return;
	for (int rec = 1; rec <= 12; rec++) {
		snprintf(num, sizeof num, "%09d", rec);
		add(&r, num, "catalog-number", 30000 + (size_t)rec * 777);
	}
	if (standin_faults(r.hs.standin, faults, &err)) {
		tap_ok(0, "set %s: %s", faults, err.msg);
		teardown(&r);
		return;
	}
	if (start(&r, 4) == 0) {
		if (heal_after > 0) {
			usleep((useconds_t)(heal_after * 1e6));
			tap_is_int(counts_of(&r, JS_ATTACHED), 0, "nothing attached while it lasts");
			standin_control(r.hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
		}
		if (wait_done(&r, 90) == 0)
			verify(&r, what, 12);
		else
			tap_ok(0, "%s: the batch finished", what);
	}
	teardown(&r);
}

static void test_too_large_and_deleted(void)
{
	struct run r;
	journal_item it;
	cs_error err = { 0 };

	if (setup(&r, NULL))
		return;
	add(&r, "000000001", "catalog-number", 20000);
	long long big = add(&r, "000000002", "catalog-number", 400000);
	add(&r, "000000003", "catalog-number", 20000);
	standin_faults(r.hs.standin, "{\"max_upload_bytes\": 200000}", &err);
	if (start(&r, 2) == 0 && wait_done(&r, 60) == 0) {
		verify(&r, "the files under the limit", 2);
		journal_item_get(r.j, big, &it, &err);
		tap_ok(it.state == JS_FAILED && it.reason && strstr(it.reason, "(413)"),
		       "the one over it failed, saying why: %s", it.reason);
		journal_item_clear(&it);
	}
	pipeline_stop(r.p);
	r.p = NULL;

	/* A record deleted after it was matched. */
	long long gone = add(&r, "000000007", "catalog-number", 20000);
	journal_item_get(r.j, gone, &it, &err);
	free(it.record_table);
	it.record_table = strdup("collectionobject");
	it.record_id = 7;
	it.state = JS_MATCHED;
	journal_item_update(r.j, &it, JS_NAMED, &err);
	journal_item_clear(&it);
	standin_control(r.hs.standin, "DELETE", "records/collectionobject/7", NULL, NULL, &err);
	if (start(&r, 2) == 0 && wait_done(&r, 60) == 0) {
		journal_item_get(r.j, gone, &it, &err);
		tap_ok(it.state == JS_FAILED && it.reason && strstr(it.reason, "no longer exists"),
		       "a record deleted meanwhile fails the item: %s", it.reason);
		journal_item_clear(&it);
		cJSON *st = standin_state(r.hs.standin);
		int files = cJSON_GetArraySize(cJSON_GetObjectItem(st, "files"));
		tap_is_int(files, 2, "and its uploaded file is not left behind");
		cJSON_Delete(st);
	}
	teardown(&r);
}

/* pipeline_stop ends requests under way instead of waiting for a slow
 * server, and leaves the items as they were for the next run. */
static void test_prompt_stop(void)
{
	struct run r;
	pipeline_status st;
	struct timespec t0, t1;
	cs_error err;

	if (setup(&r, NULL) || start(&r, 2))
		return;
	for (int i = 0; i < 100; i++) {
		pipeline_get_status(r.p, &st);
		if (st.online)
			break;
		usleep(20000);
	}
	standin_faults(r.hs.standin, "{\"latency_ms\": 4000}", &err);
	long long id = add(&r, "000000004", "catalog-number", 10000);
	pipeline_kick(r.p);
	usleep(300000);  /* the coordinator is in the lookup now */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pipeline_stop(r.p);
	r.p = NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	tap_ok(took < 2.0, "pipeline_stop took %.2f s, not the server's 4 s", took);
	journal_item it;
	journal_item_get(r.j, id, &it, &err);
	tap_ok(it.state == JS_NAMED && it.next_try == 0, "the item waits, untouched, for the next run");
	journal_item_clear(&it);
	standin_control(r.hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
	if (start(&r, 2) == 0 && wait_done(&r, 30) == 0)
		verify(&r, "and the next run attaches it", 1);
	teardown(&r);
}

/* A RAW journaled before its JPEG (gphoto2's hook hands them in that
 * order) does not hold the JPEG back: with room for one file at a time
 * (a slow line), the JPEG goes first. */
static void test_jpeg_first(void)
{
	struct run r;

	if (setup(&r, NULL))
		return;
	long long raw = add_typed(&r, "000000005", "catalog-number", 300000, "cr2",
				  "image/x-canon-cr2");
	long long jpeg = add(&r, "000000005", "catalog-number", 3000);
	if (start(&r, 1) == 0 && wait_done(&r, 30) == 0) {
		journal_item a = { 0 }, b = { 0 };
		cs_error err;
		journal_item_get(r.j, raw, &a, &err);
		journal_item_get(r.j, jpeg, &b, &err);
		tap_ok(a.state == JS_ATTACHED && b.state == JS_ATTACHED, "both attached");
		/* The asset server keeps its files in the order they came. */
		cJSON *st = standin_state(r.hs.standin);
		const cJSON *first = cJSON_GetObjectItem(st, "files");
		first = first ? first->child : NULL;
		tap_ok(first && b.location && strcmp(first->string, b.location) == 0,
		       "the JPEG was uploaded first (%s)", first ? first->string : "none");
		tap_ok(b.join_id > 0 && b.join_id < a.join_id,
		       "and its join row made first (%lld, RAW %lld)", b.join_id, a.join_id);
		cJSON_Delete(st);
		journal_item_clear(&a);
		journal_item_clear(&b);
	}
	teardown(&r);
}

struct ordinals {
	cJSON *state;
	int last, out_of_order;
};

/* The stand-in's ordinal of each attached item, taken in journal order. */
static int ordinal_in_order(void *ud, const journal_item *it)
{
	struct ordinals *o = ud;
	int copies;
	const cJSON *a = attachment_at(o->state, it->location ? it->location : "", &copies);
	int ord = a ? (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "ordinal")) : -1;

	if (ord <= o->last)
		o->out_of_order++;
	o->last = ord;
	return 0;
}

/* The views of one specimen go up together, not one after the other (every
 * request answers 300 ms late), and their ordinals follow the files. */
static void test_views_at_once(void)
{
	struct run r;
	cs_error err = { 0 };

	if (setup(&r, NULL))
		return;
	for (int view = 0; view < 4; view++)
		add(&r, "000000008", "catalog-number", 20000 + (size_t)view * 1000);
	standin_faults(r.hs.standin, "{\"latency_ms\": 300}", &err);
	if (start(&r, 4) == 0 && wait_done(&r, 60) == 0) {
		verify(&r, "four views of one record", 4);
		struct ordinals o = { .state = standin_state(r.hs.standin), .last = -1 };
		int busiest = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(
			cJSON_GetObjectItem(o.state, "busiest"), "POST /fileupload"));
		tap_ok(busiest >= 2, "views of one record uploaded at once (%d at the most)",
		       busiest);
		journal_items_each(r.j, r.batch, JS_ATTACHED, ordinal_in_order, &o, &err);
		tap_is_int(o.out_of_order, 0, "their ordinals in the order of the files");
		cJSON_Delete(o.state);
	}
	teardown(&r);
}

#define BULK "POST /bulk_copy/bulk/collectionobjectattachment/"
#define SINGLE "POST /api/specify/collectionobjectattachment/"

/* 12 files of 12 records on a server timed like Specify 7.12 (uploads of
 * small files take less than a join row, so that several finish uploading
 * while one is being made), with faults: the stand-in's
 * state after, its fault settings as "faults". */
static cJSON *bulk_run(const char *faults, const char *what)
{
	struct run r;
	char num[16];
	cs_error err = { 0 };
	cJSON *state = NULL;

	if (setup(&r, NULL))
		return NULL;
	for (int rec = 1; rec <= 12; rec++) {
		snprintf(num, sizeof num, "%09d", rec);
		add(&r, num, "catalog-number", 5000 + (size_t)rec * 100);
	}
	if (standin_faults(r.hs.standin, faults, &err) == 0 && start(&r, 4) == 0 &&
	    wait_done(&r, 90) == 0) {
		cJSON *now = NULL;
		verify(&r, what, 12);
		state = standin_state(r.hs.standin);
		standin_control(r.hs.standin, "GET", "faults", NULL, &now, &err);
		cJSON_AddItemToObject(state, "faults", now);
	} else {
		tap_ok(0, "%s: the batch finished (%s)", what, err.msg);
	}
	teardown(&r);
	return state;
}

static void test_bulk(void)
{
	cJSON *st = bulk_run("{\"profile\": \"specify-7.12\"}", "join rows in bulk");

	/* The first bulk request is the probe with an empty list; a group of
	 * one goes alone, so a second means several rows in one request. */
	tap_ok(st && standin_requests(st, BULK) >= 2, "files that finished uploading "
	       "together were attached in one request (%d bulk, %d single)",
	       standin_requests(st, BULK), standin_requests(st, SINGLE));
	tap_ok(st && standin_requests(st, BULK) >= 2 &&
	       standin_requests(st, BULK) - 1 + standin_requests(st, SINGLE) < 12,
	       "fewer requests than join rows");
	cJSON_Delete(st);

	st = bulk_run("{\"profile\": \"specify-7.12\", \"bulk\": false}", "a Specify without bulk create");
	tap_is_int(st ? standin_requests(st, BULK) : -1, 1, "bulk asked for once (404)");
	tap_is_int(st ? standin_requests(st, SINGLE) : -1, 12, "then a join row per file");
	cJSON_Delete(st);

	/* Specify commits row by row: the row before the failing one exists,
	 * those after do not; each is then found or made, once. */
	st = bulk_run("{\"profile\": \"specify-7.12\", \"bulk_fail_at\": 1}", "a bulk request failing halfway");
	tap_ok(st && cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "faults"), "bulk_fail_at")),
	       "the failure happened");
	cJSON_Delete(st);
}

/* Shots that come one at a time, as at a station: the first reservation
 * also reserves spares, and the next shots use them instead of asking
 * Specify each time. */
static void test_spares(void)
{
	struct run r;
	int asked = -1;

	if (setup(&r, NULL))
		return;
	if (start(&r, 4) == 0) {
		bool done = true;
		for (int i = 0; i < 5 && done; i++) {
			add(&r, "000000007", "catalog-number", 20000);
			pipeline_kick(r.p);
			done = wait_done(&r, 30) == 0;
		}
		cJSON *st = standin_state(r.hs.standin);
		asked = standin_requests(st, "POST /attachment_gw/get_upload_params/");
		cJSON_Delete(st);
		tap_ok(done, "five shots one after another are attached");
		tap_is_int(asked, 1, "with one reservation request");
		verify(&r, "spares", 5);
	}
	teardown(&r);
}

/* An item journaled as uploaded whose file the asset server does not
 * have (it lost it, or a kill came between the reservation's journaling
 * and the bytes): the size check finds nothing, and the file is sent
 * again and attached, not failed as a record gone from Specify. */
static void test_lost_upload(void)
{
	struct run r;
	journal_item it;
	specify_session *s = NULL;
	specify_reservation res;
	cs_error err = { 0 };

	if (setup(&r, NULL))
		return;
	long long lost = add(&r, "000000001", "catalog-number", 30000);
	journal_item_get(r.j, lost, &it, &err);
	const char *name = it.name;
	if (harness_login(&r.hs, &s, &err) || specify_locations_reserve(s, &name, 1, &res, &err))
		tap_diag("reserve: %s", err.msg);
	specify_session_free(s);
	free(it.record_table);
	it.record_table = strdup("collectionobject");
	it.record_id = 1;
	free(it.location);
	it.location = strdup(res.location);
	it.state = JS_UPLOADED;
	journal_item_update(r.j, &it, JS_NAMED, &err);
	journal_item_clear(&it);
	if (start(&r, 2) == 0 && wait_done(&r, 60) == 0) {
		journal_item_get(r.j, lost, &it, &err);
		tap_ok(it.state == JS_ATTACHED, "a file the asset server lost is sent again and "
		       "attached (%s)", it.reason ? it.reason : "no reason");
		journal_item_clear(&it);
		verify(&r, "the lost one", 1);
	}
	teardown(&r);
}

int main(void)
{
	test_basic();
	test_prompt_stop();
	test_jpeg_first();
	test_views_at_once();
	test_bulk();
	test_spares();
	test_fault("{\"latency_ms\": 40}", "with 40 ms latency", 0);
	test_fault("{\"error_rate\": 0.3, \"error_status\": 503}", "with 30 % of 503", 0);
	test_fault("{\"drop_after_commit_rate\": 0.35}", "with connections dropped after commit", 0);
	test_fault("{\"session_ttl_s\": 1, \"latency_ms\": 60}", "with sessions expiring every second", 0);
	test_fault("{\"asset_clock_skew_s\": 400}", "after 1.5 s of asset clock skew", 1.5);
	test_fault("{\"error_rate\": 1.0, \"error_status\": 502}", "after 1.5 s with Specify down", 1.5);
	test_fault("{\"asset_down\": true}", "after 1.5 s with the asset server down", 1.5);
	test_too_large_and_deleted();
	test_lost_upload();
	harness_cleanup();
	return tap_done();
}
