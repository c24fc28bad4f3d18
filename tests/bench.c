/* copystand's benchmarks: one program, run on demand (scripts/bench), that
 * prints figures against the stand-in on loopback.  Goals (DESIGN.md §5):
 * throughput >= 0.9x raw libcurl POSTs of the same files to the same asset
 * server; <= 3 requests per file after planning; peak RSS < 32 MB for a
 * 1 GB file and for 10,000 small files; >= 5x the speed of Specify's own
 * importer's request pattern on small JPEGs. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "journal.h"
#include "pipeline.h"

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

struct set {
	const char *label;
	int n;
	size_t size;
	char **paths;
};

static void make_set(struct set *s, const char *tag)
{
	s->paths = calloc((size_t)s->n, sizeof *s->paths);
	for (int i = 0; i < s->n; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s-%05d.jpg", tag, i);
		s->paths[i] = harness_make_file(name, s->size, (unsigned)i + 1);
	}
}

static void free_set(struct set *s)
{
	for (int i = 0; i < s->n; i++) {
		unlink(s->paths[i]);
		free(s->paths[i]);
	}
	free(s->paths);
}

static size_t discard(char *d, size_t sz, size_t n, void *ud)
{
	(void)d;
	(void)ud;
	return sz * n;
}

/* The baseline: the same files POSTed with libcurl on one kept-alive
 * connection, tokens fetched beforehand (not timed). */
static double raw_curl(harness_server *hs, specify_session *s, const struct set *set)
{
	const specify_assets *a;
	specify_reservation *res = calloc((size_t)set->n, sizeof *res);
	const char **names = calloc((size_t)set->n, sizeof *names);
	cs_error err;
	CURL *e = curl_easy_init();
	double t0;

	(void)hs;
	specify_assets_get(s, &a, &err);
	for (int i = 0; i < set->n; i++)
		names[i] = strrchr(set->paths[i], '/') + 1;
	specify_locations_reserve(s, names, (size_t)set->n, res, &err);
	t0 = now_s();
	for (int i = 0; i < set->n; i++) {
		curl_mime *m = curl_mime_init(e);
		curl_mimepart *p = curl_mime_addpart(m);
		curl_mime_name(p, "file");
		curl_mime_filedata(p, set->paths[i]);
		const char *kv[] = { "token", res[i].token, "store", res[i].location,
				     "type", "O", "coll", a->collection };
		for (int k = 0; k < 8; k += 2) {
			p = curl_mime_addpart(m);
			curl_mime_name(p, kv[k]);
			curl_mime_data(p, kv[k + 1], CURL_ZERO_TERMINATED);
		}
		curl_easy_setopt(e, CURLOPT_URL, a->write_url);
		curl_easy_setopt(e, CURLOPT_MIMEPOST, m);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		if (curl_easy_perform(e) != CURLE_OK)
			fprintf(stderr, "raw upload %d failed\n", i);
		curl_mime_free(m);
	}
	double t = now_s() - t0;
	curl_easy_cleanup(e);
	free(res);
	free(names);
	return t;
}

/* Specify's own importer, request for request (specify-api.md 3.4, 4.3):
 * locations for all files in one call, then strictly one file at a time:
 * get_token, upload, GET the record, PUT it back whole with one more
 * element in its attachments array. */
static double importer(specify_session *s, const struct set *set)
{
	specify_reservation *res = calloc((size_t)set->n, sizeof *res);
	const char **names = calloc((size_t)set->n, sizeof *names);
	double t0 = now_s();
	cs_error err;

	for (int i = 0; i < set->n; i++)
		names[i] = strrchr(set->paths[i], '/') + 1;
	specify_locations_reserve(s, names, (size_t)set->n, res, &err);
	for (int i = 0; i < set->n; i++) {
		long long id = 1 + i % 12;
		char token[160];
		cJSON *rec = NULL, *saved = NULL, *att, *join;

		if (specify_asset_token(s, res[i].location, token, sizeof token, &err) ||
		    specify_asset_upload(s, set->paths[i], names[i], "image/jpeg",
					 res[i].location, token, &err) ||
		    specify_record_get(s, "collectionobject", id, &rec, &err)) {
			fprintf(stderr, "importer replay: %s\n", err.msg);
			cJSON_Delete(rec);
			continue;
		}
		cJSON *list = cJSON_GetObjectItem(rec, "collectionobjectattachments");
		join = cJSON_CreateObject();
		cJSON_AddNumberToObject(join, "ordinal", cJSON_GetArraySize(list));
		att = cJSON_AddObjectToObject(join, "attachment");
		cJSON_AddStringToObject(att, "attachmentlocation", res[i].location);
		cJSON_AddStringToObject(att, "mimetype", "image/jpeg");
		cJSON_AddStringToObject(att, "origfilename", names[i]);
		cJSON_AddStringToObject(att, "title", names[i]);
		cJSON_AddBoolToObject(att, "ispublic", false);
		cJSON_AddNumberToObject(att, "tableid", 1);
		cJSON_AddItemToArray(list, join);
		if (specify_record_put(s, "collectionobject", id, rec, &saved, &err))
			fprintf(stderr, "importer replay: %s\n", err.msg);
		cJSON_Delete(rec);
		cJSON_Delete(saved);
	}
	free(res);
	free(names);
	return now_s() - t0;
}

/* Journals the set as matched items of a new batch. */
static long long journal_set(const char *jpath, harness_server *hs, const struct set *set)
{
	journal *j;
	cs_error err;
	long long batch;

	journal_open(jpath, &j, &err);
	journal_batch_new(j, "bench", hs->url, hs->collection, 0, set->label, &batch, &err);
	for (int i = 0; i < set->n; i++) {
		long long id;
		journal_item it = {
			.batch_id = batch, .path = set->paths[i],
			.name = strrchr(set->paths[i], '/') + 1, .size = (long long)set->size,
			.mimetype = (char *)"image/jpeg", .identifier = (char *)"000000001",
			.record_table = (char *)"collectionobject", .record_id = 1 + i % 12,
			.state = JS_MATCHED,
		};
		journal_item_add(j, &it, &id, &err);
	}
	journal_close(j);
	return batch;
}

static int inflight;  /* --inflight N: the pipeline's max_inflight */

/* Drains a batch in a child process; returns seconds, *rss_kb its peak. */
static double drain(const char *jpath, harness_server *hs, long long batch, long *rss_kb)
{
	double t0 = now_s();
	struct rusage ru;
	int status;
	pipeline_options tuning = { .max_inflight = inflight };
	pid_t pid = harness_fork_drain(hs, jpath, batch, &tuning);

	wait4(pid, &status, 0, &ru);
	*rss_kb = ru.ru_maxrss;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "the drain of batch %lld failed\n", batch);
	return now_s() - t0;
}

static int requests(harness_server *hs, const char *key)
{
	cJSON *st = standin_state(hs->standin);
	int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "requests"), key));
	cJSON_Delete(st);
	return n;
}

static int pipeline_requests(harness_server *hs)
{
	return requests(hs, "POST /fileupload") + requests(hs, "HEAD /fileget") +
	       requests(hs, "POST /api/specify/collectionobjectattachment/") +
	       requests(hs, "POST /attachment_gw/get_upload_params/") +
	       requests(hs, "GET /attachment_gw/get_token/");
}

static void throughput(harness_server *hs, specify_session *s, const char *jpath,
		       struct set *set)
{
	long rss;
	double mb = (double)set->n * (double)set->size / 1e6;

	make_set(set, set->label);
	double raw = raw_curl(hs, s, set);
	int before = pipeline_requests(hs);
	long long batch = journal_set(jpath, hs, set);
	double ours = drain(jpath, hs, batch, &rss);
	int used = pipeline_requests(hs) - before;
	printf("%-22s raw libcurl %7.1f MB/s   copystand %7.1f MB/s   ratio %.2f   "
	       "%.2f requests/file   peak RSS %.1f MB\n", set->label, mb / raw, mb / ours,
	       raw / ours, (double)used / set->n, rss / 1024.0);
	free_set(set);
}

/* The same files the importer's way and copystand's, one after the other. */
static void versus_importer(harness_server *hs, specify_session *s, const char *jpath,
			    struct set *set)
{
	long rss;

	make_set(set, set->label);
	double theirs = importer(s, set);
	long long batch = journal_set(jpath, hs, set);
	double ours = drain(jpath, hs, batch, &rss);
	printf("%-22s importer pattern %7.2f s   copystand %7.2f s   speed-up %.1fx\n",
	       set->label, theirs, ours, theirs / ours);
	free_set(set);
}

static void memory(harness_server *hs, const char *jpath, struct set *set)
{
	long rss;

	make_set(set, set->label);
	long long batch = journal_set(jpath, hs, set);
	double t = drain(jpath, hs, batch, &rss);
	printf("%-22s %.1f s, %.1f files/s, peak RSS %.1f MB\n", set->label, t,
	       set->n / t, rss / 1024.0);
	free_set(set);
}

int main(int argc, char **argv)
{
	bool quick = false;
	harness_server hs;
	specify_session *s;
	cs_error err;
	char *jpath;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc)
			inflight = atoi(argv[++i]);
		else {
			fputs("usage: bench [--quick] [--inflight N]\n", stderr);
			return 2;
		}
	}
	if (harness_server_start(&hs, NULL) || harness_login(&hs, &s, &err)) {
		fprintf(stderr, "bench: cannot start: %s\n", err.msg);
		return 1;
	}
	if (asprintf(&jpath, "%s/bench.sqlite", harness_home()) < 0)
		return 1;
	printf("copystand benchmark (stand-in on loopback, %s)\n", quick ? "quick" : "full");
	struct set small = { quick ? "50 x 1 MiB" : "200 x 1 MiB", quick ? 50 : 200, 1u << 20 };
	struct set large = { quick ? "3 x 50 MiB" : "10 x 50 MiB", quick ? 3 : 10, 50u << 20 };
	struct set huge = { quick ? "1 x 200 MiB" : "1 x 1 GiB", 1, quick ? 200u << 20 : 1u << 30 };
	struct set many = { quick ? "500 x 4 KiB" : "10000 x 4 KiB", quick ? 500 : 10000, 4096 };
	struct set jpegs = { quick ? "200 x 30 KiB" : "1000 x 30 KiB", quick ? 200 : 1000, 30u << 10 };
	struct set twenty = { quick ? "5 x 20 MiB" : "20 x 20 MiB", quick ? 5 : 20, 20u << 20 };
	throughput(&hs, s, jpath, &small);
	throughput(&hs, s, jpath, &large);
	versus_importer(&hs, s, jpath, &jpegs);
	versus_importer(&hs, s, jpath, &twenty);
	memory(&hs, jpath, &huge);
	memory(&hs, jpath, &many);
	specify_session_free(s);
	harness_server_stop(&hs);
	free(jpath);
	harness_cleanup();
	return 0;
}
