/* copystand upload, batches and rollback as a collections manager runs
 * them against the stand-in: every report state, dry runs, JSON, mapping
 * files, RAW+JPEG pairs, resume after SIGKILL, rollback. */
#include <glob.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "journal.h"
#include "tap.h"

static harness_server hs;
static char *pw_env, *dir;

static char *in_dir(const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

/* A file of size seeded bytes named name in folder (NULL: the captures). */
static void put(const char *folder, const char *name, size_t size, unsigned seed)
{
	char *tmp = harness_make_file("tmp.bin", size, seed), *dst;

	if (asprintf(&dst, "%s/%s", folder ? folder : dir, name) < 0)
		abort();
	rename(tmp, dst);
	free(tmp);
	free(dst);
}

static int run(char **out, const char *a1, const char *a2, const char *a3, const char *a4,
	       const char *a5)
{
	const char *argv[16] = { "upload", "--server", hs.url, "--user", hs.user,
				 "--collection", hs.collection, a1, a2, a3, a4, a5, NULL };
	const char *env[] = { pw_env, NULL };
	return harness_run(argv, env, out);
}

static cJSON *state(void)
{
	return standin_state(hs.standin);
}

static int attachments(void)
{
	cJSON *st = state();
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(st, "attachments"));
	cJSON_Delete(st);
	return n;
}

/* Requests that look records up: the query builder's and the REST API's. */
static int lookups(const cJSON *st)
{
	return standin_requests(st, "POST /stored_query/ephemeral/") +
	       standin_requests(st, "GET /api/specify/collectionobject/");
}

static bool has(const char *out, const char *what)
{
	return out && strstr(out, what);
}

static void test_report_and_upload(void)
{
	char *out = NULL;
	int rc;

	put(NULL, "000000001.jpg", 30000, 1);
	put(NULL, "000000001_2.jpg", 31000, 2);
	put(NULL, "000000002.CR2", 50000, 3);      /* a RAW+JPEG pair */
	put(NULL, "000000002.jpg", 32000, 4);
	put(NULL, "000000002_copy.jpg", 32000, 4); /* the same bytes again */
	put(NULL, "000099999.jpg", 10000, 5);
	put(NULL, "not-a-number.jpg", 10000, 6);
	/* A station's sidecar and a report: copystand's own, not captures. */
	put(NULL, "000000002.xmp", 2000, 7);
	put(NULL, "report.html", 2000, 8);

	cJSON *dry0 = state();
	rc = run(&out, "--dry-run", dir, NULL, NULL, NULL);
	cJSON *dry1 = state();
	static const char *const writes[] = {
		"POST /attachment_gw/get_upload_params/", "GET /context/attachment_settings.json",
		"POST /bulk_copy/bulk/collectionobjectattachment/",
	};
	int asked = 0;
	for (size_t k = 0; k < sizeof writes / sizeof *writes; k++)
		asked += standin_requests(dry1, writes[k]) - standin_requests(dry0, writes[k]);
	tap_is_int(asked, 0, "a dry run reserves nothing and asks nothing for the upload");
	cJSON_Delete(dry0);
	cJSON_Delete(dry1);
	tap_is_int(rc, 1, "a dry run with unmatched files exits 1");
	tap_ok(has(out, "matched           ") && has(out, "000000001_2.jpg -> 000000001") &&
	       has(out, "not-found") && has(out, "bad-name") && has(out, "duplicate"),
	       "the report names every state");
	tap_ok(has(out, "7 files: 4 matched, 1 not-found, 1 bad-name, 1 duplicate"),
	       "and counts them, without the sidecar and the report");
	tap_is_int(attachments(), 0, "a dry run uploads nothing");
	free(out);

	cJSON *before = state();
	rc = run(&out, dir, NULL, NULL, NULL, NULL);
	tap_is_int(rc, 1, "the upload exits 1 while some files did not match");
	tap_ok(has(out, "batch 1: 4 attached"), "the four matched files are attached");
	cJSON *after = state();
	tap_is_int(standin_requests(after, "GET /context/user.json") -
		   standin_requests(before, "GET /context/user.json"), 1,
		   "planning and sending share one login");
	cJSON_Delete(before);
	cJSON_Delete(after);
	tap_is_int(attachments(), 4, "the stand-in holds four");
	cJSON *st = state();
	int pair = 0;
	const cJSON *a;
	cJSON_ArrayForEach(a, cJSON_GetObjectItem(st, "attachments"))
		if ((int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "record_id")) == 2)
			pair++;
	cJSON_Delete(st);
	tap_is_int(pair, 2, "RAW and JPEG of one shot both on record 2");
	if (rc != 1)
		tap_diag("%s", out);
	free(out);

	rc = run(&out, "--json", dir, NULL, NULL, NULL);
	cJSON *j = out ? cJSON_Parse(out) : NULL;
	tap_ok(j != NULL, "--json prints one JSON document");
	const cJSON *counts = cJSON_GetObjectItem(j, "counts");
	tap_ok(cJSON_GetNumberValue(cJSON_GetObjectItem(counts, "already-attached")) == 4 &&
	       cJSON_GetNumberValue(cJSON_GetObjectItem(counts, "duplicate")) == 1,
	       "a second run finds the four already attached, and the copy still a duplicate");
	tap_is_int(rc, 1, "so it exits 1 again, as the first run did");
	tap_ok(cJSON_IsNull(cJSON_GetObjectItem(j, "batch")) &&
	       cJSON_IsFalse(cJSON_GetObjectItem(j, "dry_run")) &&
	       cJSON_GetArraySize(cJSON_GetObjectItem(j, "files")) == 7,
	       "JSON shape: batch, dry_run, counts, files");
	const cJSON *f0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "files"), 0);
	tap_ok(cJSON_GetStringValue(cJSON_GetObjectItem(f0, "path")) &&
	       cJSON_GetStringValue(cJSON_GetObjectItem(f0, "status")) &&
	       cJSON_GetStringValue(cJSON_GetObjectItem(f0, "sha256")),
	       "each file has path, status and sha256");
	tap_is_int(attachments(), 4, "and nothing is attached twice");
	cJSON_Delete(j);
	free(out);
}

static void test_ambiguous_and_pick(void)
{
	char *out = NULL;
	char *sub = in_dir("alt");

	mkdir(sub, 0700);
	put(sub, "ALT-1.jpg", 9000, 11);
	run(&out, "--match", "alt-catalog-number", "--dry-run", sub, NULL);
	tap_ok(has(out, "ambiguous") && has(out, "--pick"), "two records share ALT-1: ambiguous");
	free(out);
	int rc = run(&out, "--match", "alt-catalog-number", "--pick", "newest", sub);
	tap_is_int(rc, 0, "--pick newest settles it");
	tap_ok(has(out, "(record 3)"), "on the newest record (highest id)");
	free(out);

	/* At a terminal, without --pick, the technician chooses. */
	char *sub2 = in_dir("alt2");
	mkdir(sub2, 0700);
	put(sub2, "ALT-1_b.jpg", 9100, 12);
	const char *argv[] = { "upload", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, "--match", "alt-catalog-number",
			       sub2, NULL };
	const char *env[] = { pw_env, NULL };
	int prc = harness_run_pty(argv, env, "1\n", &out);
	tap_ok(has(out, "choose 1-2") && has(out, "-> record 2"),
	       "on a terminal an ambiguous match is offered, and the choice taken");
	tap_is_int(prc, 0, "so everything matched and was attached");
	tap_ok(has(out, "1/1 files") && has(out, "MB/s") && has(out, "ETA"),
	       "a terminal gets the progress line (files, bytes, rate, ETA)");
	free(out);
	prc = run(&out, "--match", "alt-catalog-number", sub2, NULL, NULL);
	tap_ok(prc == 0 && has(out, "nothing to do"),
	       "run again without a terminal, the choice holds: already attached");
	free(out);

	/* The record chosen has an attachment of the file's name (--pick
	 * newest put ALT-1.jpg on record 3): taken, as without a choice. */
	char *sub3 = in_dir("alt-named");
	mkdir(sub3, 0700);
	put(sub3, "ALT-1.jpg", 9200, 13);
	int before = attachments();
	argv[9] = sub3;
	prc = harness_run_pty(argv, env, "2\n", &out);
	tap_ok(has(out, "not attached: collectionobject 3, the record chosen, already has an "
		       "attachment named ALT-1.jpg"), "a choice whose record has the name is refused");
	tap_ok(prc == 1 && attachments() == before, "nothing attached (exit %d)", prc);
	free(out);
	free(sub3);
	free(sub2);
	free(sub);
}

static void test_mapping(void)
{
	char *sub = in_dir("mapped"), *csv = in_dir("map.csv"), *out = NULL;
	FILE *m;

	mkdir(sub, 0700);
	for (int i = 0; i < 3; i++) {
		char name[32];
		snprintf(name, sizeof name, "IMG_%04d.JPG", i + 1);
		put(sub, name, 8000, 100u + (unsigned)i);
	}
	m = fopen(csv, "w");
	fputs("File Name,Catalog Number\nIMG_0001.JPG,5\nIMG_0002.JPG,000000006\n", m);
	fclose(m);
	/* A link to a file that is gone (a card pulled too early). */
	char *dangling;
	if (asprintf(&dangling, "%s/IMG_0009.JPG", sub) < 0 ||
	    symlink("/nonexistent/IMG_0009.JPG", dangling) != 0)
		abort();
	free(dangling);
	int rc = run(&out, "--mapping", csv, sub, NULL, NULL);
	tap_is_int(rc, 1, "a file the mapping does not list makes the status 1");
	tap_ok(has(out, "IMG_0001.JPG -> 000000005") && has(out, "IMG_0002.JPG -> 000000006"),
	       "mapped names, padded through the format");
	tap_ok(has(out, "not-in-mapping") && has(out, "IMG_0003.JPG"), "the unlisted file is reported");
	tap_ok(has(out, "unreadable") && has(out, "IMG_0009.JPG: cannot read it"),
	       "a file that cannot be read is reported, not fatal");
	free(out);
	free(sub);
	free(csv);
}

/* Starts uploading sub and kills the upload (SIGKILL) once a few files
 * are attached; the number attached by then. */
static int upload_killed(const char *sub)
{
	cs_error err;
	int before = attachments(), status;

	standin_faults(hs.standin, "{\"latency_ms\": 60}", &err);
	const char *argv[] = { "upload", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, sub, NULL };
	const char *env[] = { pw_env, NULL };
	pid_t pid = harness_spawn(argv, env);
	for (int waited = 0; waited < 200 && attachments() - before < 3; waited++)
		usleep(50000);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	standin_control(hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
	return attachments() - before;
}

/* n files of records 7 to 11 in a new folder name (and one that matches
 * nothing, when stray). */
static char *folder_of(const char *name, int n, unsigned seed, bool stray)
{
	char *sub = in_dir(name);

	mkdir(sub, 0700);
	for (int i = 0; i < n; i++) {
		char file[32];
		snprintf(file, sizeof file, "%09d_%s%d.jpg", 7 + i % 5, name, i);
		put(sub, file, 40000, seed + (unsigned)i);
	}
	if (stray)
		put(sub, "000099998.jpg", 1000, seed + 99);
	return sub;
}

/* Kill an upload mid-batch; the same command finishes it, and ends the
 * way the run would have ended uninterrupted. */
static void test_resume(void)
{
	char *sub = folder_of("big", 24, 500, true), *out = NULL;
	int before = attachments();
	int partial = upload_killed(sub);

	tap_ok(partial > 0 && partial < 24, "killed mid-batch with %d of 24 attached", partial);
	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_is_int(rc, 1, "the same command finishes the batch, exit 1 for the stray file");
	tap_ok(has(out, "resuming batch"), "saying it resumes");
	tap_ok(has(out, "25 files: 24 matched, 1 not-found") && has(out, ": 24 attached\n"),
	       "with the report and outcome of an uninterrupted run");
	tap_is_int(attachments() - before, 24, "every file attached exactly once");
	if (rc != 1)
		tap_diag("%s", out);
	free(out);
	free(sub);

	sub = folder_of("bigjson", 12, 600, false);
	before = attachments();
	partial = upload_killed(sub);
	rc = run(&out, "--json", sub, NULL, NULL, NULL);
	cJSON *j = out ? cJSON_Parse(out) : NULL;
	const cJSON *counts = cJSON_GetObjectItem(j, "counts"), *f;
	int attached = 0;
	cJSON_ArrayForEach(f, cJSON_GetObjectItem(j, "files"))
		attached += has(cJSON_GetStringValue(cJSON_GetObjectItem(f, "state")), "attached");
	tap_ok(rc == 0 && j && partial < 12, "a resumed --json run exits 0 and prints its JSON");
	tap_ok(cJSON_GetNumberValue(cJSON_GetObjectItem(counts, "matched")) == 12 &&
	       cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"),
							"attached")) == 12 &&
	       cJSON_IsNumber(cJSON_GetObjectItem(j, "batch")) && attached == 12,
	       "the same JSON as an uninterrupted run: 12 matched, 12 attached");
	tap_is_int(attachments() - before, 12, "each attached once");
	cJSON_Delete(j);
	free(out);
	free(sub);
}

/* Running the same command again is how people resume and how cron and
 * watch folders use it: files attached before are not a failure. */
static void test_rerun(void)
{
	char *sub = in_dir("again"), *out = NULL;

	mkdir(sub, 0700);
	put(sub, "000000012_a.jpg", 7000, 700);
	put(sub, "000000012_b.jpg", 7100, 701);
	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_is_int(rc, 0, "a folder whose files all match: exit 0");
	free(out);
	int before = attachments();
	rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_is_int(rc, 0, "the same command again: exit 0");
	tap_ok(has(out, "2 files: 2 already-attached, nothing to do"), "saying there is nothing to do");
	tap_is_int(attachments(), before, "and uploading nothing");
	if (rc != 0)
		tap_diag("%s", out);
	free(out);
	rc = run(&out, "--dry-run", sub, NULL, NULL, NULL);
	tap_ok(rc == 0 && has(out, "nothing to do"), "a dry run of it too: exit 0, nothing to do");
	free(out);

	put(sub, "000000012_c.jpg", 7200, 702);
	rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_is_int(rc, 0, "a new file among attached ones: exit 0");
	tap_ok(has(out, "3 files: 1 matched, 2 already-attached") && has(out, ": 1 attached\n"),
	       "the new one is attached, the others left alone");
	tap_is_int(attachments(), before + 1, "one more attachment");
	free(out);
	rc = run(&out, "--json", sub, NULL, NULL, NULL);
	cJSON *j = out ? cJSON_Parse(out) : NULL;
	tap_ok(rc == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"),
								    "already-attached")) == 3,
	       "--json: exit 0, 3 already-attached");
	cJSON_Delete(j);
	free(out);

	/* Other bytes under a name already attached: not the same image. */
	put(sub, "000000012_a.jpg", 7000, 799);
	rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_is_int(rc, 1, "changed bytes under an attached name: exit 1");
	tap_ok(has(out, "name-taken") && has(out, "000000012_a.jpg: ") && has(out, "rename"),
	       "reported as name-taken, saying what to do");
	tap_ok(has(out, "3 files: 2 already-attached, 1 name-taken"), "and counted");
	tap_is_int(attachments(), before + 1, "it is not uploaded");
	free(out);

	/* Files that match nothing still make the run fail. */
	put(sub, "000099997.jpg", 1000, 703);
	rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_ok(rc == 1 && has(out, "not-found"), "a file that matches nothing: exit 1");
	free(out);
	free(sub);
}

/* A name on the record that this journal did not put there (Specify's
 * own importer, another computer): the bytes cannot be known equal. */
static void test_name_of_another(void)
{
	char *sub = in_dir("other"), *out = NULL;
	cJSON *reply = NULL;
	cs_error err;

	mkdir(sub, 0700);
	put(sub, "000000123.jpg", 5000, 710);
	standin_control(hs.standin, "POST", "records", "{\"table\": \"attachment\", \"fields\": "
			"{\"origfilename\": \"000000123.jpg\", \"attachmentlocation\": \"x.jpg\", "
			"\"mimetype\": \"image/jpeg\"}}", &reply, &err);
	char body[160];
	snprintf(body, sizeof body, "{\"table\": \"collectionobjectattachment\", \"fields\": "
		 "{\"attachment\": %d, \"collectionobject\": 13, \"ordinal\": 0}}",
		 (int)cJSON_GetNumberValue(cJSON_GetObjectItem(reply, "id")));
	cJSON_Delete(reply);
	standin_control(hs.standin, "POST", "records", body, NULL, &err);
	int before = attachments();
	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_is_int(rc, 1, "a name attached outside this journal: exit 1");
	tap_ok(has(out, "name-taken") && has(out, "1 files: 1 name-taken"),
	       "name-taken: the bytes cannot be known to be the same");
	tap_is_int(attachments(), before, "nothing uploaded");
	free(out);
	free(sub);
}

/* Ambiguous names and failed uploads among attached files: exit 1. */
static void test_rerun_failures(void)
{
	char *sub = in_dir("alt3"), *out = NULL;
	cs_error err;

	mkdir(sub, 0700);
	put(sub, "ALT-2_x.jpg", 6000, 720);
	int rc = run(&out, "--match", "alt-catalog-number", sub, NULL, NULL);
	free(out);
	rc = run(&out, "--match", "alt-catalog-number", sub, NULL, NULL);
	tap_ok(rc == 0 && has(out, "nothing to do"), "attached by alternative number: again exit 0");
	free(out);
	put(sub, "ALT-1_z.jpg", 6100, 721);
	rc = run(&out, "--match", "alt-catalog-number", sub, NULL, NULL);
	tap_ok(rc == 1 && has(out, "1 ambiguous"), "an ambiguous file among them: exit 1");
	free(out);
	free(sub);

	sub = in_dir("toobig");
	mkdir(sub, 0700);
	put(sub, "000000005_s.jpg", 2000, 730);
	run(&out, sub, NULL, NULL, NULL, NULL);
	free(out);
	put(sub, "000000005_t.jpg", 90000, 731);
	standin_faults(hs.standin, "{\"max_upload_bytes\": 50000}", &err);
	rc = run(&out, sub, NULL, NULL, NULL, NULL);
	standin_control(hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
	tap_ok(rc == 1 && has(out, "1 failed"), "a file that fails for good among attached ones: exit 1");
	free(out);
	free(sub);
}

/* Validation is batched: 10,000 scattered names (every seventh number,
 * as after a sort by taxon) cost at most 10 lookups, not one per file. */
static void test_many_names(void)
{
	char *sub = in_dir("drawer"), *out = NULL;
	cJSON *st;

	mkdir(sub, 0700);
	for (int i = 0; i < 10000; i++) {
		char *p;
		if (asprintf(&p, "%s/%09d.jpg", sub, 100000 + 7 * i) < 0)
			abort();
		FILE *f = fopen(p, "wb");
		fprintf(f, "%d", i);
		fclose(f);
		free(p);
	}
	st = state();
	int before = lookups(st);
	cJSON_Delete(st);
	run(&out, "--dry-run", sub, NULL, NULL, NULL);
	st = state();
	int used = lookups(st) - before;
	cJSON_Delete(st);
	tap_ok(has(out, "10000 files: 10000 not-found"), "10,000 names validated");
	tap_ok(used >= 1 && used <= 10, "in %d lookups (at most 10)", used);
	free(out);
	free(sub);
}

static void test_batches_and_rollback(void)
{
	const char *env[] = { pw_env, NULL };
	const char *list[] = { "batches", NULL };
	char *out = NULL;

	harness_run(list, env, &out);
	tap_ok(has(out, "batch") && has(out, "4 attached"), "batches lists them with counts");
	free(out);
	int before = attachments();
	const char *rb[] = { "rollback", "--server", hs.url, "--user", hs.user,
			     "--collection", hs.collection, "1", NULL };
	int rc = harness_run(rb, env, &out);
	tap_is_int(rc, 0, "rollback of batch 1");
	tap_ok(has(out, "batch 1: 4 removed"), "removes its four attachments");
	tap_is_int(attachments(), before - 4, "they are gone from Specify");
	free(out);
	rc = harness_run(rb, env, &out);
	tap_ok(rc == 0 && has(out, "batch 1: 0 removed"), "a second rollback has nothing left to do");
	free(out);
	harness_run(list, env, &out);
	tap_ok(has(out, "rolled_back") && has(out, "4 rolled_back"), "the batch shows as rolled back");
	free(out);
}

/* A new folder what-number holding one file of 20000 bytes for number,
 * number_what.jpg (seeded by number + seed): its path, malloc'd. */
static char *folder_of_one(const char *what, const char *number, unsigned seed)
{
	char name[64], *sub;

	snprintf(name, sizeof name, "%s-%s", what, number);
	sub = in_dir(name);
	mkdir(sub, 0700);
	snprintf(name, sizeof name, "%s_%s.jpg", number, what);
	put(sub, name, 20000, (unsigned)atoi(number) + seed);
	return sub;
}

/* One file for record number in a folder of its own, uploaded while the
 * stand-in holds back the two kinds of request until both have come. */
static void upload_meeting(const char *number, const char *kind1, const char *kind2)
{
	char *sub = folder_of_one("side", number, 700), *out = NULL, faults[256];
	cs_error err;

	snprintf(faults, sizeof faults, "{\"meet\": [\"%s\", \"%s\"], \"meet_s\": 5}",
		 kind1, kind2);
	standin_faults(hs.standin, faults, &err);
	cJSON *before = state();
	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	cJSON *after = state();
	standin_control(hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
	tap_ok(rc == 0 && has(out, "1 attached"), "%s and %s go side by side (exit %d)",
	       kind1, kind2, rc);
	if (rc != 0)
		tap_diag("%s", out ? out : "");
	tap_is_int(standin_requests(after, "GET /attachment_gw/get_token/") -
		   standin_requests(before, "GET /attachment_gw/get_token/"), 0,
		   "the upload uses its reservation's token");
	cJSON_Delete(before);
	cJSON_Delete(after);
	free(out);
	free(sub);
}

/* Planning asks what it can at once: the catalog-number format beside the
 * asset settings, the lookup beside the first reservations. */
static void test_side_by_side(void)
{
	upload_meeting("000000003", "GET /context/app.resource",
		       "GET /context/attachment_settings.json");
	upload_meeting("000000004", "POST /stored_query/ephemeral/",
		       "POST /attachment_gw/get_upload_params/");
}

/* The join row of the attachment named name, 0 when there is none. */
static long long join_of(const char *name)
{
	cJSON *st = state();
	const cJSON *a;
	long long id = 0;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(st, "attachments")) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItem(a, "origfilename"));
		if (n && !strcmp(n, name))
			id = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "join_id"));
	}
	cJSON_Delete(st);
	return id;
}

/* Someone deletes in Specify an attachment copystand made: the next run
 * attaches the file again instead of calling it already attached. */
static void test_deleted_in_specify(void)
{
	char *sub = in_dir("deleted"), *out = NULL, path[96];

	mkdir(sub, 0700);
	put(sub, "000000009_gone.jpg", 15000, 901);
	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	tap_ok(rc == 0 && has(out, "1 attached"), "a file is attached (exit %d)", rc);
	free(out);
	long long join = join_of("000000009_gone.jpg");
	snprintf(path, sizeof path, "records/collectionobjectattachment/%lld", join);
	tap_ok(join > 0 && standin_control(hs.standin, "DELETE", path, NULL, NULL, NULL) == 0 &&
	       join_of("000000009_gone.jpg") == 0, "its attachment is deleted in Specify");
	rc = run(&out, "--json", sub, NULL, NULL, NULL);
	cJSON *j = out ? cJSON_Parse(out) : NULL;
	const cJSON *res = cJSON_GetObjectItem(j, "result");
	tap_ok(rc == 0 && cJSON_GetNumberValue(cJSON_GetObjectItem(res, "attached")) == 1 &&
	       join_of("000000009_gone.jpg") > 0,
	       "the next run attaches it again (exit %d)", rc);
	cJSON_Delete(j);
	free(out);
	rc = run(&out, "--json", sub, NULL, NULL, NULL);
	j = out ? cJSON_Parse(out) : NULL;
	tap_ok(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"),
							 "already-attached")) == 1,
	       "and the run after that finds it attached");
	cJSON_Delete(j);
	free(out);
	free(sub);
}

/* The first files go to the asset server while Specify looks their names
 * up and, with the format saved at an earlier run, while it is asked for
 * the format and the user: the stand-in holds each of a pair until the
 * other comes. */
static void test_sent_ahead(void)
{
	upload_meeting("000000005", "POST /fileupload", "POST /stored_query/ephemeral/");
	upload_meeting("000000006", "POST /fileupload", "GET /context/app.resource");
	upload_meeting("000000007", "POST /fileupload", "GET /context/user.json");
}

static int files_held(const cJSON *st)
{
	return cJSON_GetArraySize(cJSON_GetObjectItem(st, "files"));
}

static int count_ahead(void *ud, const char *location)
{
	(void)location;
	++*(int *)ud;
	return 0;
}

/* Rows of sent-ahead files left in the journal (the runs are over). */
static int ahead_left(void)
{
	char *path = NULL;
	journal *j = NULL;
	cs_error err;
	int n = 0;

	if (asprintf(&path, "%s/.local/share/copystand/journal.sqlite", harness_home()) < 0 ||
	    journal_open(path, &j, &err) ||
	    journal_ahead_each(j, hs.url, count_ahead, &n, &err))
		n = -1;
	journal_close(j);
	free(path);
	return n;
}

/* How a case ends: the asset server holds files more files than before
 * (what says so), the journal nothing left to delete; the output shown
 * when rc was not want; what the case held freed. */
static void ahead_settled(cJSON *before, cJSON *after, int files, const char *what,
			  int rc, int want, char *out, char *sub)
{
	tap_is_int(files_held(after) - files_held(before), files, what);
	tap_is_int(ahead_left(), 0, "and the journal has nothing left to delete");
	if (rc != want)
		tap_diag("%s", out ? out : "");
	cJSON_Delete(before);
	cJSON_Delete(after);
	free(out);
	free(sub);
}

/* A file sent ahead whose name matches no record is deleted from the
 * asset server again: only what was attached stays there. */
static void test_ahead_unmatched(void)
{
	char *sub = in_dir("ahead"), *out = NULL;
	cs_error err;

	mkdir(sub, 0700);
	/* First in order, so the first sent, while the lookup waits for it. */
	put(sub, "000000000.jpg", 30000, 801);
	put(sub, "000000008_ahead.jpg", 30000, 802);
	standin_faults(hs.standin, "{\"meet\": [\"POST /fileupload\", "
		       "\"POST /stored_query/ephemeral/\"], \"meet_s\": 5}", &err);
	cJSON *before = state();
	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	cJSON *after = state();
	standin_control(hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
	tap_ok(rc == 1 && has(out, "000000000.jpg") && has(out, "not-found") &&
	       has(out, "1 attached"), "one file attached, the other matches nothing "
	       "(exit %d)", rc);
	tap_is_int(standin_requests(after, "POST /fileupload") -
		   standin_requests(before, "POST /fileupload"), 2, "both were sent");
	ahead_settled(before, after, 1, "the asset server keeps only the attached one's",
		      rc, 1, out, sub);
}

/* Killed while its first files are out ahead of a lookup Specify is slow
 * to answer: the next run deletes what no item took and attaches each
 * file once. */
static void test_ahead_killed(void)
{
	char *sub = in_dir("killed"), *out = NULL;
	const char *argv[] = { "upload", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, sub, NULL };
	const char *env[] = { pw_env, NULL };
	cs_error err;
	int sent = 0, status;

	mkdir(sub, 0700);
	put(sub, "000000010_killed.jpg", 200000, 803);
	put(sub, "000000011_killed.jpg", 200000, 804);
	standin_faults(hs.standin, "{\"meet\": [\"POST /stored_query/ephemeral/\", "
		       "\"GET /never\"], \"meet_s\": 30}", &err);
	cJSON *before = state();
	pid_t pid = harness_spawn(argv, env);
	for (int w = 0; pid > 0 && w < 1000 && sent < 2; w++) {
		cJSON *now = state();
		sent = files_held(now) - files_held(before);
		cJSON_Delete(now);
		usleep(20000);
	}
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	standin_control(hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
	tap_is_int(sent, 2, "both files went to the asset server while the lookup waited");
	tap_ok(ahead_left() == 2, "the journal noted them before they were sent");

	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	cJSON *after = state();
	tap_ok(rc == 0 && has(out, "2 attached"), "the next run attaches both (exit %d)", rc);
	ahead_settled(before, after, 2, "the asset server holds one file per file: the "
		      "killed run's were deleted", rc, 0, out, sub);
}

/* Attachments named name in the stand-in's state. */
static int named(const cJSON *st, const char *name)
{
	const cJSON *a;
	int n = 0;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(st, "attachments")) {
		const char *o = cJSON_GetStringValue(cJSON_GetObjectItem(a, "origfilename"));
		n += o && !strcmp(o, name);
	}
	return n;
}

/* kill -9 at random moments of the first half second, timed like Specify
 * 7.12 (the login, files going ahead, the lookup, the journaling), again
 * and again, then a run to the end: each file attached once, and the asset
 * server holds nothing else of them. */
static void test_ahead_kills(void)
{
	char *sub = in_dir("kills"), *out = NULL, name[64];
	const char *argv[] = { "upload", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, sub, NULL };
	const char *env[] = { pw_env, NULL };
	cs_error err;
	int status, kills = 0;

	mkdir(sub, 0700);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof name, "0000000%02d_kill.jpg", i + 1);
		put(sub, name, 300000, 900u + (unsigned)i);
	}
	put(sub, "000000099_kill.jpg", 300000, 899);   /* no such record */
	standin_faults(hs.standin, "{\"profile\": \"specify-7.12\"}", &err);
	cJSON *before = state();
	srand(17);
	for (; kills < 15; kills++) {
		pid_t pid = harness_spawn(argv, env);
		if (pid < 0)
			break;
		usleep((useconds_t)(rand() % 500000));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	int rc = run(&out, sub, NULL, NULL, NULL, NULL);
	cJSON *after = state();
	standin_control(hs.standin, "POST", "faults/reset", "{}", NULL, NULL);
	tap_ok(kills == 15 && rc == 1 && has(out, "8 attached"),
	       "after %d kills a last run attaches the 8 that match (exit %d)", kills, rc);
	bool once = true;
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof name, "0000000%02d_kill.jpg", i + 1);
		once = once && named(after, name) == 1;
	}
	tap_ok(once, "each of them once");
	tap_diag("files sent %d times, %d deleted again",
		 standin_requests(after, "POST /fileupload") - standin_requests(before, "POST /fileupload"),
		 standin_requests(after, "POST /filedelete") - standin_requests(before, "POST /filedelete"));
	ahead_settled(before, after, 8, "the asset server holds one file for each and "
		      "nothing more", rc, 1, out, sub);
}

/* One folder with one file for number, uploaded: the run's exit status,
 * its output into *out, the requests of kind it made into *made. */
static int upload_one(const char *number, const char *kind, char **out, int *made)
{
	char *sub = folder_of_one("once", number, 900);
	int rc;

	cJSON *before = state();
	rc = run(out, sub, NULL, NULL, NULL, NULL);
	cJSON *after = state();
	*made = standin_requests(after, kind) - standin_requests(before, kind);
	cJSON_Delete(before);
	cJSON_Delete(after);
	free(sub);
	return rc;
}

/* The file where a run keeps the collection's id (one server and
 * collection in this HOME), or NULL. */
static char *saved_id_file(void)
{
	char *pattern = NULL, *path = NULL;
	glob_t g;

	if (asprintf(&pattern, "%s/.cache/copystand/collection-*", harness_home()) < 0)
		abort();
	if (glob(pattern, 0, NULL, &g) == 0 && g.gl_pathc == 1)
		path = strdup(g.gl_pathv[0]);
	globfree(&g);
	free(pattern);
	return path;
}

/* The login of a run after the first is one request: the collection's id
 * is saved, the CSRF secret copystand's own.  An id that names another
 * collection now stops the run before anything is attached, and is
 * forgotten. */
static void test_login_once(void)
{
	char *out = NULL, *saved = NULL;
	int asks = -1, rc;
	FILE *f;

	rc = upload_one("000000008", "GET /context/login/", &out, &asks);
	saved = saved_id_file();
	tap_ok(rc == 0 && saved, "a run saves the collection's id (exit %d)", rc);
	free(out);
	rc = upload_one("000000009", "GET /context/login/", &out, &asks);
	tap_ok(rc == 0 && has(out, "1 attached") && asks == 0,
	       "the next run logs in without asking Specify first (%d GET /context/login/)", asks);
	free(out);

	/* A database rebuilt since: the id is another collection's. */
	specify_session *s = NULL;
	specify_login plants = { .server = hs.url, .user = hs.user, .password = hs.password,
				 .collection = "Plants" };
	cs_error err;
	long long other = specify_session_login(&plants, &s, &err) ? 0 :
		specify_session_info(s)->collection_id;
	specify_session_free(s);
	if (saved && (f = fopen(saved, "w"))) {
		fprintf(f, "%lld\t%s", other, hs.collection);
		fclose(f);
	}
	int before = attachments(), files;
	cJSON *held = state();
	rc = upload_one("000000010", "GET /context/login/", &out, &asks);
	cJSON *now = state();
	files = files_held(now) - files_held(held);
	tap_ok(other > 0 && rc != 0 && has(out, "run the command again") && asks == 0,
	       "an id that is another collection's now stops the run: %s", out ? out : "");
	tap_ok(attachments() == before && files == 0 && access(saved, F_OK) != 0,
	       "nothing attached, nothing left on the asset server (%d), the id forgotten", files);
	free(out);
	rc = upload_one("000000010", "GET /context/login/", &out, &asks);
	tap_ok(rc == 0 && has(out, "1 attached") && asks == 1,
	       "the next run asks for the id, and attaches (exit %d)", rc);
	cJSON_Delete(held);
	cJSON_Delete(now);
	free(out);
	free(saved);
}

int main(void)
{
	if (harness_server_start(&hs, NULL) || !hs.standin)
		return hs.standin ? (tap_ok(0, "start the stand-in"), tap_done())
				  : tap_skip_all("needs the stand-in's fixture");
	if (asprintf(&pw_env, "COPYSTAND_PASSWORD=%s", hs.password) < 0 ||
	    asprintf(&dir, "%s/captures", harness_home()) < 0)
		abort();
	mkdir(dir, 0700);
	test_report_and_upload();
	test_ambiguous_and_pick();
	test_mapping();
	test_resume();
	test_rerun();
	test_name_of_another();
	test_rerun_failures();
	test_many_names();
	test_batches_and_rollback();
	test_side_by_side();
	test_deleted_in_specify();
	test_sent_ahead();
	test_ahead_unmatched();
	test_ahead_killed();
	test_ahead_kills();
	test_login_once();
	harness_server_stop(&hs);
	free(pw_env);
	free(dir);
	harness_cleanup();
	return tap_done();
}
