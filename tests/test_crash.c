/* kill -9 at random moments: an uploader is started and SIGKILLed again
 * and again while it drains 200 files into the stand-in, then allowed to
 * finish; once with join rows made one by one, once timed like Specify
 * 7.12 so that they go in bulk requests.  From the stand-in's own data:
 * every file attached exactly once, to the right record, with identical
 * bytes, and no stray file left. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "journal.h"
#include "pipeline.h"
#include "sha256.h"
#include "tap.h"

#define FILES 200
#define KILLS 55

static harness_server hs;
static char *jpath;
static long long batch;

static void fill_journal(void)
{
	journal *j;
	cs_error err;
	char name[64], num[16], hex[65];

	if (asprintf(&jpath, "%s/journal.sqlite", harness_home()) < 0 ||
	    journal_open(jpath, &j, &err) ||
	    journal_batch_new(j, "crash", hs.url, hs.collection, 0, NULL, &batch, &err))
		abort();
	for (int i = 0; i < FILES; i++) {
		long long id;
		snprintf(num, sizeof num, "%09d", i % 12 + 1);
		snprintf(name, sizeof name, "%s_%d.jpg", num, i / 12 + 1);
		char *path = harness_make_file(name, 20000 + (size_t)(i * 1637 % 100000), (unsigned)i + 1);
		sha256_file(path, hex, NULL, &err);
		journal_item it = {
			.batch_id = batch, .path = path, .name = name,
			.size = 20000 + (i * 1637 % 100000), .sha256 = hex,
			.mimetype = (char *)"image/jpeg", .identifier = num,
			.target = (char *)"catalog-number", .state = JS_NAMED,
		};
		if (journal_item_add(j, &it, &id, &err))
			abort();
		free(path);
	}
	journal_close(j);
}

static int attached(void)
{
	cJSON *st = standin_state(hs.standin);
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(st, "attachments"));
	cJSON_Delete(st);
	return n;
}

/* The uploader: a child process that drains the batch. */
static pid_t spawn_uploader(void)
{
	pipeline_options fast = { .max_inflight = 4, .retry_base_s = 0.02,
				  .retry_cap_s = 0.2 };
	return harness_fork_drain(&hs, jpath, batch, &fast);
}

static int verify_item(void *ud, const journal_item *it)
{
	const cJSON *state = ud, *a, *hit = NULL;
	int copies = 0;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(state, "attachments")) {
		const char *loc = cJSON_GetStringValue(cJSON_GetObjectItem(a, "attachmentlocation"));
		if (it->location && loc && strcmp(loc, it->location) == 0) {
			hit = a;
			copies++;
		}
	}
	const cJSON *file = cJSON_GetObjectItem(cJSON_GetObjectItem(state, "files"),
						it->location ? it->location : "");
	const char *sha = cJSON_GetStringValue(cJSON_GetObjectItem(file, "sha256"));
	if (it->state != JS_ATTACHED || copies != 1 || !sha || strcmp(sha, it->sha256) != 0 ||
	    (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(hit, "record_id")) !=
	    atoll(it->identifier)) {
		tap_diag("%s: state %s, %d copies, bytes %s", it->name,
			 journal_state_name(it->state), copies,
			 sha && strcmp(sha, it->sha256) == 0 ? "same" : "differ");
		return 1;
	}
	return 0;
}

/* Kills uploaders again and again on a stand-in with these faults, then
 * lets one finish; window_us: how long after an attachment a kill comes. */
static void kill_run(const char *faults, int window_us, const char *what)
{
	journal *j;
	cs_error err;
	int kills = 0, status;
	struct timespec t0, t1;

	tap_diag("%s", what);
	if (harness_server_start(&hs, NULL)) {
		tap_ok(0, "start the stand-in");
		return;
	}
	standin_faults(hs.standin, faults, &err);
	fill_journal();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; kills < KILLS; kills++) {
		int before = attached();
		pid_t pid = spawn_uploader();
		/* Now and then while it logs in and plans; mostly once it is
		 * attaching, so that kills land in uploads and join-row POSTs. */
		if (rand() % 4 == 0) {
			usleep((useconds_t)(rand() % 100000));
		} else {
			for (int w = 0; w < 600 && attached() == before; w++)
				usleep(3000);
			usleep((useconds_t)(rand() % window_us));
		}
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			break;  /* it finished before the kill */
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	tap_ok(kills >= 50, "%d SIGKILLs in %.1f s", kills,
	       (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);

	/* The kills landed on work under way, and some was left. */
	int done = attached();
	tap_ok(done > 0 && done < FILES, "after the kills %d of %d are attached", done, FILES);

	pid_t last = spawn_uploader();
	waitpid(last, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a last run finishes the batch");

	cJSON *state = standin_state(hs.standin);
	journal_open(jpath, &j, &err);
	tap_is_int(journal_items_each(j, batch, -1, verify_item, state, &err), 0,
		   "every file attached once, to its record, with identical bytes");
	tap_is_int(cJSON_GetArraySize(cJSON_GetObjectItem(state, "attachments")), FILES,
		   "the stand-in holds exactly one attachment per file");
	tap_is_int(cJSON_GetArraySize(cJSON_GetObjectItem(state, "files")), FILES,
		   "and exactly one file per file: no half-uploaded stray");
	if (strstr(faults, "profile"))
		tap_ok(standin_requests(state, "POST /bulk_copy/bulk/collectionobjectattachment/") > 10,
		       "join rows went in bulk requests (%d) while it was being killed",
		       standin_requests(state, "POST /bulk_copy/bulk/collectionobjectattachment/"));
	journal_close(j);
	cJSON_Delete(state);
	harness_server_stop(&hs);
	free(jpath);
}

int main(void)
{
	const char *why = getenv("COPYSTAND_TEST_SERVER") ?
		"needs the stand-in's fault switches" : NULL;

	if (why)
		return tap_skip_all(why);
	srand(4242);
	/* Slow requests, so that kills land in the middle of them. */
	kill_run("{\"latency_ms\": 10}", 25000, "join rows one by one");
	/* Timed like Specify 7.12: small uploads outrun the join rows, which
	 * then go in bulk requests of 52 ms + 28 ms a row. */
	kill_run("{\"profile\": \"specify-7.12\"}", 200000, "join rows in bulk");
	harness_cleanup();
	return tap_done();
}
