/* The whole round trip against Specify (the stand-in, or a real server):
 * login → batched lookup → reserve → upload → attach → read back →
 * find by location → delete → gone → logout. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lookup.h"
#include "tap.h"

struct found {
	char values[4][64];
	long long ids[4];
	int n;
};

static int collect(void *ud, const char *value, const cJSON *record)
{
	struct found *f = ud;
	if (f->n < 4) {
		snprintf(f->values[f->n], sizeof f->values[0], "%s", value);
		f->ids[f->n] = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(record, "id"));
	}
	f->n++;
	return 0;
}

/* Two catalog numbers that exist in the collection, plus one that does not. */
static int pick_numbers(specify_session *s, struct found *f, cs_error *err)
{
	memset(f, 0, sizeof *f);
	return specify_records_query(s, "collectionobject", "catalognumber__isnull=false",
				     2, "catalognumber", collect, f, err);
}

static int count_requests(harness_server *hs, const char *key)
{
	cJSON *state = standin_state(hs->standin);
	int n = standin_requests(state, key);
	cJSON_Delete(state);
	return n;
}

static void test_round_trip(harness_server *hs)
{
	specify_session *s = NULL;
	cs_error err = { 0 };
	struct found known, got;
	specify_reservation res[2];
	specify_attached att, found;
	const char *names[] = { "round-trip.jpg", "second.JPG" };
	char *file = harness_make_file("round-trip.jpg", 300 * 1024 + 17, 7);
	char *back = NULL;
	int ordinal = -1;

	if (!tap_ok(harness_login(hs, &s, &err) == 0, "login: %s", err.msg))
		goto out;
	const specify_info *info = specify_session_info(s);
	tap_ok(info->agent_id > 0 && info->agent && *info->agent, "the user has an agent");
	tap_ok(info->collection_id > 0, "collection resolved to an id");
	if (hs->standin) {
		tap_is_str(info->collection, "Fish", "collection name");
		tap_is_int(info->collection_id, 4, "collection id");
		tap_is_str(info->catalog_format, "CatalogNumberNumeric", "catalog number format");
		tap_is_str(info->agent, "Test Admin", "agent name");
	}

	tap_ok(pick_numbers(s, &known, &err) == 0 && known.n == 2,
	       "two existing catalog numbers found (%s)", err.msg);
	if (known.n < 2)
		goto out;
	const char *values[] = { known.values[0], "no-such-catalog-number", known.values[1] };
	memset(&got, 0, sizeof got);
	tap_ok(specify_records_lookup(s, "collectionobject", "catalognumber", values, 3,
				      collect, &got, &err) == 0, "batched lookup: %s", err.msg);
	tap_is_int(got.n, 2, "the two existing records, not the missing one");
	if (hs->standin)
		tap_is_int(count_requests(hs, "GET /api/specify/collectionobject/"), 2,
			   "one request for the query, one for the batched lookup");

	tap_ok(specify_locations_reserve(s, names, 2, res, &err) == 0, "reserve: %s", err.msg);
	tap_ok(strlen(res[0].location) > 36 && strcmp(res[0].location + 36, ".jpg") == 0,
	       "location keeps the extension (%s)", res[0].location);
	tap_ok(strcmp(res[1].location + 36, ".JPG") == 0, "extension case kept");
	tap_ok(strcmp(res[0].location, res[1].location) != 0, "locations are unique");

	tap_ok(specify_asset_upload(s, file, "round-trip.jpg", "image/jpeg",
				    res[0].location, NULL, &err) == 0, "upload: %s", err.msg);
	if (hs->standin)
		tap_is_int(count_requests(hs, "GET /attachment_gw/get_token/"), 0,
			   "the upload used the token its reservation came with");
	int ret = specify_attachment_next_ordinal(s, "collectionobject", known.ids[0],
						  &ordinal, &err);
	tap_ok(ret == 0 && ordinal >= 0, "next ordinal %d: %s", ordinal, err.msg);
	specify_attachment a = {
		.table = "collectionobject", .record_id = known.ids[0], .ordinal = ordinal,
		.location = res[0].location, .mimetype = "image/jpeg",
		.origfilename = "round-trip.jpg", .title = "round-trip.jpg",
	};
	tap_ok(specify_attachment_create(s, &a, &att, &err) == 0 && att.join_id > 0,
	       "attach: %s", err.msg);

	long long size = -1;
	tap_ok(specify_asset_size(s, res[0].location, &size, &err) == 0, "size: %s", err.msg);
	tap_is_int(size, 300 * 1024 + 17, "stored size equals the local size");
	if (asprintf(&back, "%s/back.jpg", harness_home()) > 0) {
		FILE *f = fopen(back, "wb");
		tap_ok(f && specify_asset_download(s, res[0].location, f, &err) == 0,
		       "download: %s", err.msg);
		if (f)
			fclose(f);
		tap_ok(harness_same_file(file, back), "bytes read back are identical");
	}

	tap_ok(specify_attachment_find(s, "collectionobject", res[0].location, &found, &err) == 0,
	       "find by location: %s", err.msg);
	tap_is_int(found.join_id, att.join_id, "found the same join row");
	tap_is_int(found.record_id, known.ids[0], "attached to the right record");
	if (hs->standin) {
		cJSON *state = standin_state(hs->standin);
		cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(state, "attachments"), 0);
		tap_is_str(cJSON_GetStringValue(cJSON_GetObjectItem(first, "attachmentlocation")),
			   res[0].location, "the stand-in holds the attachment");
		cJSON_Delete(state);
	}

	tap_ok(specify_attachment_delete(s, "collectionobject", att.join_id, &err) == 0,
	       "delete: %s", err.msg);
	tap_is_int(specify_attachment_find(s, "collectionobject", res[0].location, &found, &err),
		   CS_E_NOT_FOUND, "the attachment is gone");
	FILE *f = fopen(back, "wb");
	tap_is_int(specify_asset_download(s, res[0].location, f, &err), CS_E_NOT_FOUND,
		   "the file is gone from the asset server");
	if (f)
		fclose(f);
	tap_is_int(specify_attachment_delete(s, "collectionobject", att.join_id, &err),
		   CS_E_NOT_FOUND, "deleting twice says not found");

	/* PUT of a whole record: version rules. */
	cJSON *rec = NULL, *saved = NULL;
	if (tap_ok(specify_record_get(s, "collectionobject", known.ids[1], &rec, &err) == 0,
		   "read a record: %s", err.msg)) {
		double v = cJSON_GetNumberValue(cJSON_GetObjectItem(rec, "version"));
		tap_ok(specify_record_put(s, "collectionobject", known.ids[1], rec, &saved, &err) == 0 &&
		       cJSON_GetNumberValue(cJSON_GetObjectItem(saved, "version")) == v + 1,
		       "PUT it back: version + 1 (%s)", err.msg);
		cJSON_Delete(saved);
		tap_is_int(specify_record_put(s, "collectionobject", known.ids[1], rec, &saved, &err),
			   CS_E_CONFLICT, "PUT of the old version: conflict");
		tap_ok(strstr(err.msg, "changed the record meanwhile") != NULL, "message: %s", err.msg);
	}
	cJSON_Delete(rec);
	cJSON_Delete(saved);

	/* The unused reservation leaves nothing behind: nothing was uploaded. */
	tap_ok(specify_assets_check(s, &err) == 0, "testkey: %s", err.msg);
	tap_ok(specify_session_logout(s, &err) == 0, "logout: %s", err.msg);
out:
	specify_session_free(s);
	free(file);
	free(back);
}

static int lookup_count(harness_server *hs, specify_session *s, const char *const *values,
			size_t n, struct found *got, int *used)
{
	cs_error err = { 0 };
	int before = count_requests(hs, "GET /api/specify/collectionobject/");
	int ret = specify_records_lookup(s, "collectionobject", "catalognumber", values, n,
					 collect, got, &err);
	if (ret)
		tap_diag("lookup: %s", err.msg);
	*used = count_requests(hs, "GET /api/specify/collectionobject/") - before;
	return ret;
}

/* Many names, scoped to the collection (Fish Tissues shares catalog
 * numbers with Fish): sequential ones in one range request, scattered
 * ones chunked so each request line stays under gunicorn's 4 KB (which the
 * stand-in enforces), and never a record nobody asked for. */
static void test_lookup_chunks(harness_server *hs)
{
	specify_session *s = NULL;
	cs_error err = { 0 };
	struct found got;
	enum { N = 2000 };
	static char buf[N][10];
	const char *values[N];
	int used;

	if (!hs->standin)
		return;
	if (!tap_ok(harness_login(hs, &s, &err) == 0, "login: %s", err.msg))
		return;
	for (int i = 0; i < N; i++) {
		snprintf(buf[i], sizeof buf[i], "%09d", i + 1);
		values[i] = buf[i];
	}
	memset(&got, 0, sizeof got);
	int ret = lookup_count(hs, s, values, N, &got, &used);
	tap_ok(ret == 0 && used == 1, "%d consecutive numbers in %d request", N, used);
	tap_is_int(got.n, 13, "Fish's 000000001..000000012 and 000000123 match, not Fish Tissues' copies");

	for (int i = 0; i < N; i++)
		snprintf(buf[i], sizeof buf[i], "%09d", 1 + i * 7);
	memset(&got, 0, sizeof got);
	ret = lookup_count(hs, s, values, N, &got, &used);
	tap_ok(ret == 0 && used >= 5 && used <= 6, "%d scattered numbers in %d requests", N, used);
	tap_is_int(got.n, 2, "000000001 and 000000008 match");

	/* 1..40 without 2: one range, and 000000002 is not reported. */
	for (int i = 0, k = 0; i < 40; i++)
		if (i + 1 != 2)
			snprintf(buf[k++], sizeof buf[0], "%09d", i + 1);
	memset(&got, 0, sizeof got);
	ret = lookup_count(hs, s, values, 39, &got, &used);
	tap_ok(ret == 0 && used == 1, "39 numbers, one range (%d request)", used);
	bool two = false;
	for (int i = 0; i < 4 && i < got.n; i++)
		two |= strcmp(got.values[i], "000000002") == 0;
	tap_ok(got.n == 11 && !two, "11 records, not the one in the range nobody asked for (%d)", got.n);
	specify_session_free(s);
}

/* Attaches a small file named name to the record with catalog number. */
static long long attach_named(specify_session *s, long long record_id, int ordinal,
			      const char *name)
{
	specify_reservation res;
	specify_attached att = { 0 };
	cs_error err = { 0 };
	char *file = harness_make_file(name, 2048, (unsigned)ordinal + 40);
	specify_attachment a = {
		.table = "collectionobject", .record_id = record_id, .ordinal = ordinal,
		.location = res.location, .mimetype = "image/jpeg",
		.origfilename = name, .title = name,
	};

	if (!file || specify_locations_reserve(s, &name, 1, &res, &err) ||
	    specify_asset_upload(s, file, name, "image/jpeg", res.location, NULL, &err) ||
	    specify_attachment_create(s, &a, &att, &err))
		tap_diag("attaching %s: %s", name, err.msg);
	free(file);
	return att.join_id;
}

static int all_requests(harness_server *hs)
{
	return count_requests(hs, "POST /stored_query/ephemeral/") +
	       count_requests(hs, "GET /api/specify/collectionobject/");
}

/* The records of 10,002 scattered names, as the lookup module hands them
 * to the batch and the pipeline: each record once, by its stored value,
 * with the original names of its attachments. */
static void lookup_scattered(harness_server *hs, specify_session *s, const char *who,
			     int *requests, long long ids[4])
{
	enum { N = 10002 };
	static char buf[N][10];
	static const char *values[N];
	static const char *const want[4] = { "000000001", "000000006", "000000008", "000000123" };
	const lookup_record *hit;
	lookup *l = NULL;
	cs_error err = { 0 };

	for (int i = 0; i < N - 2; i++) {
		snprintf(buf[i], sizeof buf[i], "%09d", 1 + i * 7);
		values[i] = buf[i];
	}
	values[N - 2] = "000000006";
	values[N - 1] = "000000123";
	int before = all_requests(hs);
	int ret = lookup_run(s, match_target_find("catalog-number"), values, N, &l, &err);
	*requests = all_requests(hs) - before;
	tap_ok(ret == 0, "%s: lookup of %d names: %s", who, N, err.msg);
	for (int i = 0; i < 4; i++) {
		hit = NULL;
		/* Once: Fish Tissues' 000000001 is another collection's. */
		tap_ok(lookup_find(l, want[i], &hit, 1) == 1 && strcmp(hit->value, want[i]) == 0,
		       "%s: %s found once, as stored", who, want[i]);
		ids[i] = hit ? hit->id : 0;
	}
	hit = NULL;
	lookup_find(l, "000000006", &hit, 1);
	bool names = hit && hit->nattachments == 2 &&
		((strcmp(hit->attachment_names[0], "six-a.jpg") == 0 &&
		  strcmp(hit->attachment_names[1], "six-b.jpg") == 0) ||
		 (strcmp(hit->attachment_names[1], "six-a.jpg") == 0 &&
		  strcmp(hit->attachment_names[0], "six-b.jpg") == 0));
	tap_ok(names, "%s: 000000006 comes with its two attachments' names", who);
	lookup_find(l, "000000008", &hit, 1);
	tap_ok(hit && hit->nattachments == 0, "%s: 000000008 has none", who);
	tap_ok(lookup_find(l, "000000022", &hit, 1) == 0, "%s: 000000022 is not found", who);
	lookup_free(l);
}

/* A record as the REST API has it: its id and how many join rows. */
struct rest_record {
	char value[64];
	long long id;
	int attachments;
};

static int collect_rest(void *ud, const char *value, const cJSON *record)
{
	struct rest_record *r = ud;
	int i = 0;

	while (i < 8 && r[i].id)
		i++;
	if (i < 8) {
		snprintf(r[i].value, sizeof r[i].value, "%s", value);
		r[i].id = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(record, "id"));
		r[i].attachments = cJSON_GetArraySize(cJSON_GetObjectItem(record,
			"collectionobjectattachments"));
	}
	return 0;
}

/* The lookup module (the query builder, where the user may run it) and
 * the REST API agree on records and their attachments.  Against a real
 * Specify (COPYSTAND_TEST_SERVER) this checks the query's row shape: one
 * row per attachment, values shown formatted. */
static void test_lookup_agrees(harness_server *hs)
{
	specify_session *s = NULL;
	cs_error err = { 0 };
	struct found known;
	struct rest_record rest[8];
	lookup *l = NULL;

	if (!tap_ok(harness_login(hs, &s, &err) == 0, "login: %s", err.msg))
		return;
	if (!tap_ok(pick_numbers(s, &known, &err) == 0 && known.n == 2,
		    "two catalog numbers of the collection (%s)", err.msg))
		goto out;
	const char *values[] = { known.values[0], known.values[1], "no-such-number" };
	int ordinal = 0;
	specify_attachment_next_ordinal(s, "collectionobject", known.ids[0], &ordinal, &err);
	long long join = attach_named(s, known.ids[0], ordinal, "agrees.jpg");
	tap_ok(join > 0, "an attachment on the first");
	memset(rest, 0, sizeof rest);
	tap_ok(specify_records_lookup(s, "collectionobject", "catalognumber", values, 3,
				      collect_rest, rest, &err) == 0, "REST lookup: %s", err.msg);
	tap_ok(lookup_run(s, match_target_find("catalog-number"), values, 3, &l, &err) == 0,
	       "lookup_run: %s", err.msg);
	for (int i = 0; l && i < 2; i++) {
		const lookup_record *hit = NULL;
		const struct rest_record *r = rest;
		int n = lookup_find(l, values[i], &hit, 1);
		while (r < rest + 7 && r->id && strcmp(r->value, values[i]))
			r++;
		tap_ok(n == 1 && hit && hit->id == r->id && !strcmp(hit->value, r->value) &&
		       hit->nattachments == r->attachments && (i || hit->nattachments > 0),
		       "%s: record %lld with %d attachments either way", values[i],
		       hit ? hit->id : 0, hit ? hit->nattachments : -1);
	}
	tap_ok(l && lookup_find(l, "no-such-number", NULL, 0) == 0, "and no record for a "
	       "number nobody has");
	if (join > 0)
		specify_attachment_delete(s, "collectionobject", join, &err);
out:
	lookup_free(l);
	specify_session_free(s);
}

/* The query builder validates what a batch names in one request, as
 * Specify's importer does; a user without query permission gets the same
 * answer through the REST API's chunks. */
static void test_lookup_query(harness_server *hs)
{
	specify_session *s = NULL, *limited = NULL;
	cs_error err = { 0 };
	long long ids[4], ids_limited[4], six_a, six_b;
	int used, used_limited, posts;

	if (!hs->standin)
		return;
	if (!tap_ok(harness_login(hs, &s, &err) == 0, "login: %s", err.msg))
		return;
	six_a = attach_named(s, 6, 0, "six-a.jpg");
	six_b = attach_named(s, 6, 1, "six-b.jpg");
	tap_ok(six_a > 0 && six_b > 0, "two attachments on 000000006");
	lookup_scattered(hs, s, "spadmin", &used, ids);
	tap_ok(used >= 1 && used <= 10, "10002 scattered names in %d request(s), at most 10", used);

	specify_login login = {
		.server = hs->url, .user = "limited", .password = "testpass", .collection = "Fish",
	};
	if (tap_ok(specify_session_login(&login, &limited, &err) == 0, "login as limited: %s",
		   err.msg)) {
		posts = count_requests(hs, "POST /stored_query/ephemeral/");
		lookup_scattered(hs, limited, "limited", &used_limited, ids_limited);
		tap_ok(memcmp(ids, ids_limited, sizeof ids) == 0, "the same records either way");
		tap_ok(used_limited > 10, "without query permission: the REST API, %d requests",
		       used_limited);
		lookup_scattered(hs, limited, "limited again", &used_limited, ids_limited);
		tap_is_int(count_requests(hs, "POST /stored_query/ephemeral/") - posts, 1,
			   "the refusal is remembered for the session");
	}
	specify_attachment_delete(s, "collectionobject", six_a, &err);
	specify_attachment_delete(s, "collectionobject", six_b, &err);
	specify_session_free(limited);
	specify_session_free(s);
}

/* The login reads the user and the collection's settings side by side;
 * warming asks the asset settings at once and the bulk answer once the
 * first upload begins (before it, Specify's cores serve the lookup), each
 * once, whoever else asks meanwhile. */
static void test_side_by_side(harness_server *hs)
{
	specify_session *s = NULL;
	const specify_assets *a;
	specify_reservation res;
	cs_error err = { 0 };
	const char *name = "warm.jpg";
	const char *bulk_kind = "POST /bulk_copy/bulk/collectionobjectattachment/";
	char *text = NULL, *file = harness_make_file(name, 4096, 77);

	if (!hs->standin || !file)
		goto out;   /* needs fault switches */
	standin_faults(hs->standin, "{\"meet\": [\"GET /context/user.json\", "
		       "\"GET /context/domain.json\"], \"meet_s\": 5}", &err);
	tap_ok(harness_login(hs, &s, &err) == 0, "user and domain read side by side: %s",
	       err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);
	if (!s)
		goto out;
	int settings = count_requests(hs, "GET /context/attachment_settings.json");
	int bulk = count_requests(hs, bulk_kind);
	standin_faults(hs->standin, "{\"meet\": [\"GET /context/attachment_settings.json\", "
		       "\"GET /context/app.resource\"], \"meet_s\": 5}", &err);
	specify_session_warm(s, "collectionobject");
	tap_ok(specify_app_resource(s, "UIFormatters", &text, &err) == 0,
	       "warming goes on beside the caller's requests: %s", err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);
	tap_ok(specify_assets_get(s, &a, &err) == 0, "asset settings: %s", err.msg);
	specify_session_free(s);
	s = NULL;
	tap_is_int(count_requests(hs, "GET /context/attachment_settings.json") - settings, 1,
		   "the settings were read once");
	tap_is_int(count_requests(hs, bulk_kind) - bulk, 0,
		   "a session that uploads nothing does not ask for the bulk create");

	/* The question goes out while the upload is on its way: the stand-in
	 * holds each until the other has come. */
	if (harness_login(hs, &s, &err)) {
		tap_ok(0, "log in again: %s", err.msg);
		goto out;
	}
	bulk = count_requests(hs, bulk_kind);
	specify_session_warm(s, "collectionobject");
	standin_faults(hs->standin, "{\"meet\": [\"POST /fileupload\", "
		       "\"POST /bulk_copy/bulk/collectionobjectattachment/\"], \"meet_s\": 5}", &err);
	tap_ok(specify_locations_reserve(s, &name, 1, &res, &err) == 0 &&
	       specify_asset_upload(s, file, name, "image/jpeg", res.location, NULL, &err) == 0,
	       "the bulk create asked about beside the first upload: %s", err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);
	specify_session_free(s);
	s = NULL;
	tap_is_int(count_requests(hs, bulk_kind) - bulk, 1, "and asked once");
out:
	specify_session_free(s);
	free(text);
	free(file);
}

int main(void)
{
	harness_server hs;

	if (harness_server_start(&hs, NULL)) {
		tap_ok(0, "start the server");
		return tap_done();
	}
	test_round_trip(&hs);
	test_lookup_chunks(&hs);
	test_lookup_query(&hs);
	test_lookup_agrees(&hs);
	test_side_by_side(&hs);
	harness_server_stop(&hs);
	harness_cleanup();
	return tap_done();
}
