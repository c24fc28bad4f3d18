/* copystand's benchmarks: one program, run on demand (scripts/bench), that
 * prints figures against the stand-in on loopback.  Goals (DESIGN.md §5):
 * throughput >= 0.9x raw libcurl POSTs of the same files to the same asset
 * server; <= 3 requests per file after planning; peak RSS < 32 MB for a
 * 1 GB file and for 10,000 small files; >= 5x the speed of Specify's own
 * importer's request pattern on small JPEGs.  Issue 6: at the copy stand,
 * shutter to attached < 100 ms more than the pure transfer of a 20 MB
 * file, and capture cadence unchanged when the server takes 2 s a request.
 *
 * Issue 15: on a real Specify 7.12's timing (the stand-in's --profile),
 * copystand against Specify's own uploader and against the bytes alone.
 *
 * Sections (all by default, or those named on the command line):
 * throughput, importer, memory, station, label, race, real. */
#include <curl/curl.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "barcode.h"
#include "camera.h"
#include "catalog.h"
#include "harness.h"
#include "http.h"
#include "journal.h"
#include "pipeline.h"
#include "press.h"
#include "ptpip-client.h"
#include "station.h"
#include "watch.h"

#ifndef PTPIP_CAMERA_EXE
#error "PTPIP_CAMERA_EXE must name the built ptpip-camera program"
#endif
#ifndef MKBARCODE_EXE
#error "MKBARCODE_EXE must name the built mkbarcode program"
#endif

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

/* --inflight N: max_inflight of the pipelines this program drains itself
 * (throughput, importer, memory); `copystand upload` and the station, run
 * as commands, keep their own (4), which no option sets. */
static int inflight;

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
	int n = standin_requests(st, key);
	cJSON_Delete(st);
	return n;
}

static int pipeline_requests(harness_server *hs)
{
	return requests(hs, "POST /fileupload") + requests(hs, "HEAD /fileget") +
	       requests(hs, "POST /api/specify/collectionobjectattachment/") +
	       requests(hs, "POST /bulk_copy/bulk/collectionobjectattachment/") +
	       requests(hs, "POST /attachment_gw/get_upload_params/") +
	       requests(hs, "GET /attachment_gw/get_token/");
}

/* Every request the stand-in has answered so far, of any kind. */
static int all_requests(harness_server *hs)
{
	cJSON *st = standin_state(hs->standin), *r;
	double n = 0;

	cJSON_ArrayForEach(r, cJSON_GetObjectItem(st, "requests"))
		n += cJSON_GetNumberValue(r);
	cJSON_Delete(st);
	return (int)n;
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

/* --- the copy stand: shutter to attached (issue 6) ---------------------------- */

#define SHOT_SIZE 20000000   /* bytes of each JPEG the camera makes */
#define SHOTS_MAX 64         /* captures one stand keeps the times of */
#define NAMED_SHOTS 16       /* presses announced, not yet downloaded */

/* A station as `copystand station` runs it (plugin/cmd_station.c): the
 * camera on a thread of its own that names each press as the camera
 * announces it, waits 100 ms at a time for shots and hands them to the
 * station; the bench's thread presses the camera's own shutter button and
 * watches the station's status.  In bare mode the same thread, with the
 * same calls, downloads into bare_dir and hands nothing on: the camera
 * alone, timed on the very path the station's shots take. */
struct stand {
	station *st;                 /* NULL: the camera keeps its own names */
	camera *cam;
	char dir[512];
	char bare_dir[512];
	station_shot named[NAMED_SHOTS];  /* camera thread only */
	unsigned nnamed;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;        /* the fields below */
	pthread_cond_t cond;         /* a capture came, or the station changed */
	bool stop;
	unsigned changes;            /* on_change calls so far */
	int captured;                /* captures journaled */
	double downloaded_at[SHOTS_MAX];  /* camera_wait_capture returned */
	double captured_at[SHOTS_MAX];    /* station_submit returned */
	bool want_bare;              /* asked of the camera thread */
	bool bare;                   /* the camera thread's mode, from its next wait */
	int nbare;                   /* bare downloads so far */
	double bare_at[SHOTS_MAX];   /* camera_wait_capture returned, bare */
	char bare_sample[PATH_MAX];  /* the first bare download */
	double clock_next;           /* camera thread only: when to read its clock */
	double clock_lo, clock_hi;   /* what it knows of the offset (under lock) */
	ptpip_cam *pc;
	struct catalog_format *fmt;
	char *jpath;
};

static void stand_changed(void *ud)
{
	struct stand *x = ud;

	pthread_mutex_lock(&x->lock);
	x->changes++;
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

/* camera_options.name_press: a press of the camera's button, named from
 * the time of its press once it is in (as the station does). */
static void stand_name_press(void *ud, const char *taken, char *stem, size_t size)
{
	struct stand *x = ud;
	station_shot *shot = &x->named[x->nnamed++ % NAMED_SHOTS];
	struct timeval tv;

	if (!x->st) {
		stem[0] = '\0';
		return;
	}
	(void)taken;
	gettimeofday(&tv, NULL);
	station_shot_pending(x->st, (double)tv.tv_sec + tv.tv_usec / 1e6, shot);
	snprintf(stem, size, "%s", shot->stem);
}

/* Reads the camera's clock when due, as the station's camera thread
 * does: shots of the camera's button are placed by it. */
static void stand_read_clock(struct stand *x)
{
	double before, after, wall;
	station_clock known;
	cs_error err = { 0 };

	if (now_s() < x->clock_next)
		return;
	if (camera_read_clock(x->cam, &before, &after, &wall, &err) ||
	    station_clock_read(x->st, "camera", before, after, wall, 1, &known, &err)) {
		x->clock_next = now_s() + CAMERA_CLOCK_SPACING_S;
		return;
	}
	x->clock_next = press_clock_next_read(known.lo, known.hi, after,
					      after + CAMERA_CLOCK_SPACING_S);
	pthread_mutex_lock(&x->lock);
	x->clock_lo = known.lo;
	x->clock_hi = known.hi;
	pthread_mutex_unlock(&x->lock);
}

static void *stand_camera(void *arg)
{
	struct stand *x = arg;

	for (;;) {
		station_shot shot = { 0 };
		camera_capture cap;
		station_file files[CAMERA_CAPTURE_MAX_FILES];
		cs_error err = { 0 };

		pthread_mutex_lock(&x->lock);
		bool stop = x->stop, bare = x->want_bare;
		if (bare != x->bare) {
			x->bare = bare;
			pthread_cond_broadcast(&x->cond);
		}
		pthread_mutex_unlock(&x->lock);
		if (stop)
			return NULL;
		stand_read_clock(x);
		int ret = camera_wait_capture(x->cam, 100, bare ? x->bare_dir : x->dir, NULL,
					      &cap, &err);
		double downloaded = now_s();
		if (ret == CS_E_CONFLICT || ret == CS_E_TIMEOUT)
			continue;   /* a conflict: named anew for the next try */
		if (ret) {
			fprintf(stderr, "bench: camera: %s\n", err.msg);
			nanosleep(&(struct timespec){ .tv_nsec = 500000000 }, NULL);
			continue;
		}
		if (bare) {
			pthread_mutex_lock(&x->lock);
			if (x->nbare < SHOTS_MAX)
				x->bare_at[x->nbare] = downloaded;
			if (!x->bare_sample[0])
				snprintf(x->bare_sample, sizeof x->bare_sample, "%s",
					 cap.files[0].path);
			x->nbare++;
			pthread_cond_broadcast(&x->cond);
			pthread_mutex_unlock(&x->lock);
			continue;
		}
		for (unsigned i = 0; i < NAMED_SHOTS && i < x->nnamed; i++)
			if (strcmp(x->named[i].stem, cap.stem) == 0)
				shot = x->named[i];
		for (size_t i = 0; i < cap.nfiles; i++)
			files[i] = (station_file){
				.path = cap.files[i].path, .size = cap.files[i].size,
				.sha256 = cap.files[i].sha256, .mimetype = cap.files[i].mimetype,
			};
		if (station_submit(x->st, &shot, files, cap.nfiles, &err))
			fprintf(stderr, "bench: capture not journaled: %s\n", err.msg);
		double captured = now_s();
		pthread_mutex_lock(&x->lock);
		if (x->captured < SHOTS_MAX) {
			x->downloaded_at[x->captured] = downloaded;
			x->captured_at[x->captured] = captured;
		}
		x->captured++;
		pthread_cond_broadcast(&x->cond);
		pthread_mutex_unlock(&x->lock);
	}
}

/* Waits on the stand's condition until the absolute time until (lock held). */
static void stand_sleep(struct stand *x, double until)
{
	struct timespec ts = { .tv_sec = (time_t)until,
			       .tv_nsec = (long)((until - floor(until)) * 1e9) };
	pthread_cond_timedwait(&x->cond, &x->lock, &ts);
}

/* Until the count (x->captured: captures journaled; x->nbare: bare
 * downloads) reaches n; false after timeout_s. */
static bool stand_wait_count(struct stand *x, const int *count, int n, double timeout_s)
{
	double until = now_s() + timeout_s;

	pthread_mutex_lock(&x->lock);
	while (*count < n && now_s() < until)
		stand_sleep(x, until);
	bool ok = *count >= n;
	pthread_mutex_unlock(&x->lock);
	return ok;
}

/* Puts the camera thread in bare mode (or back) and waits until its next
 * wait for a shot is in that mode. */
static void stand_bare(struct stand *x, bool bare)
{
	double until = now_s() + 10;

	pthread_mutex_lock(&x->lock);
	x->want_bare = bare;
	while (x->bare != bare && now_s() < until)
		stand_sleep(x, until);
	pthread_mutex_unlock(&x->lock);
}

/* Until the station counts n captures attached: when it saw that, or -1
 * after timeout_s or on a problem.  The station's lock and the pipeline's
 * are never taken with the stand's held (on_change may come with theirs). */
static double stand_wait_attached(struct stand *x, long long n, double timeout_s)
{
	double until = now_s() + timeout_s;

	for (;;) {
		station_status s;
		pthread_mutex_lock(&x->lock);
		unsigned seen = x->changes;
		pthread_mutex_unlock(&x->lock);
		station_get_status(x->st, &s);
		double t = now_s();
		if (s.attached >= n)
			return t;
		if (s.problems || t >= until) {
			fprintf(stderr, "bench: %lld of %lld attached (%s)\n", s.attached, n,
				s.problems ? s.last : "timed out");
			return -1;
		}
		pthread_mutex_lock(&x->lock);
		if (x->changes == seen)
			stand_sleep(x, fmin(until, t + 1.0));
		pthread_mutex_unlock(&x->lock);
	}
}

/* Starts the stand's camera thread and waits until it knows the camera's
 * clock as the station says it does (to 0.1 s): a press before that, soon
 * after a scan, is held. */
static bool stand_start(struct stand *x)
{
	if (pthread_create(&x->thread, NULL, stand_camera, x) != 0)
		return false;
	x->thread_started = true;
	double until = now_s() + 60;
	pthread_mutex_lock(&x->lock);
	while (!(x->clock_hi - x->clock_lo < 0.1) && now_s() < until)
		stand_sleep(x, fmin(until, now_s() + 0.2));
	pthread_mutex_unlock(&x->lock);
	return true;
}

/* The camera's own shutter button; returns when it was pressed. */
static double press(ptpip_cam *pc)
{
	double t = now_s();
	char *reply = ptpip_cam_control(pc, "press");

	if (!reply || strncmp(reply, "OK", 2) != 0)
		fprintf(stderr, "bench: press: %s\n", reply ? reply : "the camera is gone");
	free(reply);
	return t;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Nearest rank; sorts v. */
static double percentile(double *v, int n, double p)
{
	int i = (int)ceil(p * n) - 1;

	qsort(v, (size_t)n, sizeof *v, by_value);
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* The asset server alone: the same file streamed to n reserved locations,
 * tokens fetched beforehand (not timed), like the raw libcurl baseline. */
static double pure_upload(specify_session *s, const char *path, int n)
{
	specify_reservation res[SHOTS_MAX];
	const char *names[SHOTS_MAX], *name = strrchr(path, '/') + 1;
	double t[SHOTS_MAX];
	cs_error err = { 0 };

	for (int i = 0; i < n; i++)
		names[i] = name;
	if (specify_locations_reserve(s, names, (size_t)n, res, &err)) {
		fprintf(stderr, "bench: reserve: %s\n", err.msg);
		return NAN;
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_s();
		if (specify_asset_upload(s, path, name, "image/jpeg", res[i].location,
					 res[i].token, &err))
			fprintf(stderr, "bench: upload: %s\n", err.msg);
		t[i] = now_s() - t0;
	}
	return percentile(t, n, 0.5);
}

/* Shots every `every` seconds with the stand-in answering each request
 * after latency_ms: how evenly captures are journaled, and how long until
 * every one is attached. */
static void cadence(struct stand *x, ptpip_cam *pc, harness_server *hs, int latency_ms,
		    int n, double every)
{
	double pressed[SHOTS_MAX], gap[SHOTS_MAX], lag[SHOTS_MAX];
	double gap_sum = 0, gap_max = 0, lag_sum = 0, lag_max = 0;
	char faults[64];
	station_status s0;
	cs_error err = { 0 };

	snprintf(faults, sizeof faults, "{\"latency_ms\": %d}", latency_ms);
	if (standin_faults(hs->standin, faults, &err)) {
		fprintf(stderr, "bench: faults: %s\n", err.msg);
		return;
	}
	station_get_status(x->st, &s0);
	int before = all_requests(hs);
	pthread_mutex_lock(&x->lock);
	int base = x->captured;
	pthread_mutex_unlock(&x->lock);
	double start = now_s() + 0.2;
	for (int i = 0; i < n; i++) {
		double wait = start + i * every - now_s();
		if (wait > 0)
			nanosleep(&(struct timespec){ .tv_sec = (time_t)wait,
				  .tv_nsec = (long)((wait - floor(wait)) * 1e9) }, NULL);
		pressed[i] = press(pc);
	}
	bool all = stand_wait_count(x, &x->captured, base + n, 60);
	double done = stand_wait_attached(x, s0.attached + n, 600);
	int used = all_requests(hs) - before;
	standin_faults(hs->standin, "{\"latency_ms\": 0}", &err);
	if (!all || base + n > SHOTS_MAX) {
		pthread_mutex_lock(&x->lock);
		int came = x->captured - base;
		pthread_mutex_unlock(&x->lock);
		printf("  server %4d ms/request  captures missing: %d of %d came\n", latency_ms,
		       came, n);
		return;
	}
	for (int i = 0; i < n; i++) {
		lag[i] = x->captured_at[base + i] - pressed[i];
		lag_sum += lag[i];
		lag_max = fmax(lag_max, lag[i]);
		if (i == 0)
			continue;
		gap[i - 1] = x->captured_at[base + i] - x->captured_at[base + i - 1];
		gap_sum += gap[i - 1];
		gap_max = fmax(gap_max, gap[i - 1]);
	}
	printf("  server %4d ms/request  captured every %.3f s (min %.3f, max %.3f)   "
	       "shutter->captured mean %4.0f ms, max %4.0f ms   ", latency_ms,
	       gap_sum / (n - 1), percentile(gap, n - 1, 0), gap_max, lag_sum / n * 1e3,
	       lag_max * 1e3);
	if (done < 0)
		printf("not all attached\n");
	else
		printf("all attached %.1f s after the last shot (%.1f requests/shot)\n",
		       done - pressed[n - 1], (double)used / n);
}

/* A stand in HOME/name on a camera emulator started with cam_args: the
 * camera opened (with the station's naming), a station on the journal
 * HOME/name.sqlite; its thread not yet started.  False (said) on failure;
 * stand_close() either way. */
static bool stand_open(struct stand *x, harness_server *hs, const char *fmtname,
		       const char *name, const char *const *cam_args)
{
	cs_error err = { 0 };

	memset(x, 0, sizeof *x);
	x->clock_lo = -INFINITY;
	x->clock_hi = INFINITY;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	snprintf(x->dir, sizeof x->dir, "%s/%s", harness_home(), name);
	mkdir(x->dir, 0700);
	if (!(x->pc = ptpip_cam_start(PTPIP_CAMERA_EXE, cam_args))) {
		fprintf(stderr, "bench: %s: no camera emulator (%s)\n", name, PTPIP_CAMERA_EXE);
		return false;
	}
	camera_options co = { .port = ptpip_cam_port_path(x->pc),
			      .name_press = stand_name_press, .name_press_ud = x };
	if (camera_open(&co, &x->cam, &err) ||
	    catalog_format_new_builtin(&x->fmt, fmtname ? fmtname : "CatalogNumberNumeric",
				       &err) ||
	    asprintf(&x->jpath, "%s/%s.sqlite", harness_home(), name) < 0) {
		fprintf(stderr, "bench: %s: %s\n", name, err.msg);
		return false;
	}
	station_options so = {
		.journal_path = x->jpath, .format = x->fmt, .dir = x->dir,
		.login = { .server = hs->url, .user = hs->user, .password = hs->password,
			   .collection = hs->collection },
		/* As `copystand station` shoots by default: the catalog number
		 * written into each JPEG before it is sent. */
		.stamp = true,
		.on_change = stand_changed, .ud = x,
	};
	if (station_open(&so, &x->st, &err)) {
		fprintf(stderr, "bench: %s: %s\n", name, err.msg);
		return false;
	}
	return true;
}

static void stand_close(struct stand *x)
{
	if (x->thread_started) {
		pthread_mutex_lock(&x->lock);
		x->stop = true;
		pthread_mutex_unlock(&x->lock);
		pthread_join(x->thread, NULL);
	}
	station_close(x->st);
	camera_free(x->cam);
	ptpip_cam_stop(x->pc);
	catalog_format_free(x->fmt);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	free(x->jpath);
}

/* Scans number and waits for Specify's answer. */
static bool stand_scan(struct stand *x, const char *number)
{
	cs_error err = { 0 };

	if (station_scan(x->st, number, &err)) {
		fprintf(stderr, "bench: scan %s: %s\n", number, err.msg);
		return false;
	}
	for (int i = 0; i < 500; i++) {
		station_status st;
		station_get_status(x->st, &st);
		if (st.check != STATION_CHECKING)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	return true;
}

/* After journaled, step by step: for the items first..first+n-1 of the
 * journal jpath (one shot each, in order), the p50/p95 of the time from
 * each event to the next (the states the first item went through), and
 * from its last event to when the bench saw it (seen[k]). */
static void journal_steps(const char *jpath, long long first, int n, const double *seen)
{
	enum { STEPS = 12 };
	char names[STEPS][32];
	double d[STEPS + 1][SHOTS_MAX];
	int nsteps = -1, got = 0;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;

	if (sqlite3_open_v2(jpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT to_state, at FROM events WHERE item_id = ? "
			       "ORDER BY at, id", -1, &q, NULL) != SQLITE_OK) {
		fprintf(stderr, "bench: journal %s: %s\n", jpath, sqlite3_errmsg(db));
		goto out;
	}
	for (int k = 0; k < n && k < SHOTS_MAX; k++) {
		double at[STEPS + 1];
		int m = 0;
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, first + k);
		while (sqlite3_step(q) == SQLITE_ROW && m <= STEPS) {
			const char *state = (const char *)sqlite3_column_text(q, 0);
			if (nsteps < 0 && m < STEPS)
				snprintf(names[m], sizeof names[m], "%s", state ? state : "?");
			at[m++] = sqlite3_column_double(q, 1);
		}
		if (nsteps < 0)
			nsteps = m;
		if (m != nsteps || m < 1)
			continue;   /* another way through: left out */
		for (int i = 1; i < m; i++)
			d[i - 1][got] = at[i] - at[i - 1];
		d[m - 1][got] = seen[k] - at[m - 1];
		got++;
	}
	if (got == 0)
		goto out;
	printf("  after journaled (p50/p95 of %d, from the journal's events):", got);
	for (int i = 1; i < nsteps; i++)
		printf(" ->%s %.0f/%.0f", names[i], percentile(d[i - 1], got, 0.5) * 1e3,
		       percentile(d[i - 1], got, 0.95) * 1e3);
	printf(" ->seen by the station %.0f/%.0f ms\n", percentile(d[nsteps - 1], got, 0.5) * 1e3,
	       percentile(d[nsteps - 1], got, 0.95) * 1e3);
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
}

static void station_bench(harness_server *hs, specify_session *s, bool quick)
{
	int nlat = quick ? 5 : 20, ncad = quick ? 5 : 10, nup = quick ? 3 : 10;
	struct stand x;
	char *reply;
	double lat[SHOTS_MAX], dl[SHOTS_MAX], jr[SHOTS_MAX], at[SHOTS_MAX], bare[SHOTS_MAX];
	double seen[SHOTS_MAX];

	if (!stand_open(&x, hs, specify_session_info(s)->catalog_format, "station", NULL))
		goto out;
	snprintf(x.bare_dir, sizeof x.bare_dir, "%s/station-bare", harness_home());
	mkdir(x.bare_dir, 0700);
	reply = ptpip_cam_control(x.pc, "payload jpeg %d", SHOT_SIZE);
	free(reply);
	if (!stand_scan(&x, "000000001") || !stand_start(&x))
		goto out;

	/* One at a time, each once the last is in: the camera alone (bare:
	 * shutter to the file fsynced in a folder, the station's camera
	 * thread without the station), then the station (to attached), in
	 * turn, so both see the same process and machine.  The first pair
	 * (the pipeline's first upload) is not counted. */
	int got = 0, nbare = 0;
	for (int i = -1; i < nlat; i++) {
		stand_bare(&x, true);
		double t0 = press(x.pc);
		if (!stand_wait_count(&x, &x.nbare, i + 2, 30))
			break;
		if (i >= 0)
			bare[nbare++] = x.bare_at[i + 1] - t0;
		stand_bare(&x, false);
		t0 = press(x.pc);
		if (!stand_wait_count(&x, &x.captured, i + 2, 30))
			break;
		double t = stand_wait_attached(&x, i + 2, 60);
		if (t < 0)
			break;
		if (i < 0)
			continue;
		lat[got] = t - t0;
		dl[got] = x.downloaded_at[i + 1] - t0;
		jr[got] = x.captured_at[i + 1] - x.downloaded_at[i + 1];
		at[got] = t - x.captured_at[i + 1];
		seen[got] = t;
		got++;
	}
	/* What the upload alone takes, of a file the camera made. */
	double up = x.bare_sample[0] ? pure_upload(s, x.bare_sample, nup) : NAN;
	printf("station, %d x %d MB JPEG one at a time (camera and asset server on loopback):\n",
	       got, SHOT_SIZE / 1000000);
	if (got > 0 && nbare > 0) {
		double p50 = percentile(lat, got, 0.5), p95 = percentile(lat, got, 0.95);
		double down = percentile(bare, nbare, 0.5);
		printf("  shutter->attached      p50 %4.0f ms   p95 %4.0f ms   (p50/p95s: shutter->downloaded "
		       "%.0f/%.0f ms, ->journaled %.0f/%.0f ms, ->attached %.0f/%.0f ms)\n",
		       p50 * 1e3, p95 * 1e3,
		       percentile(dl, got, 0.5) * 1e3, percentile(dl, got, 0.95) * 1e3,
		       percentile(jr, got, 0.5) * 1e3, percentile(jr, got, 0.95) * 1e3,
		       percentile(at, got, 0.5) * 1e3, percentile(at, got, 0.95) * 1e3);
		journal_steps(x.jpath, 2, got, seen);
		printf("  pure transfer          %4.0f ms = camera alone (shutter->file, the station's camera "
		       "thread handing nothing on, shots taken in turn with the station's) %.0f ms "
		       "(p95 %.0f, %d shots) + upload alone %.0f ms (median of %d)\n",
		       (down + up) * 1e3, down * 1e3, percentile(bare, nbare, 0.95) * 1e3, nbare,
		       up * 1e3, nup);
		printf("  overhead               p50 %+4.0f ms, p95 %+4.0f ms over pure transfer "
		       "(goal: < 100 ms)\n", (p50 - down - up) * 1e3, (p95 - down - up) * 1e3);
	}
	if (!hs->standin) {
		printf("  cadence: needs the stand-in (its latency switch)\n");
	} else {
		printf("station cadence, %d shots 1 s apart with the camera's button:\n", ncad);
		cadence(&x, x.pc, hs, 0, ncad, 1.0);
		cadence(&x, x.pc, hs, 2000, ncad, 1.0);
	}
out:
	stand_close(&x);
}

/* --- a watched folder (issue 16) ------------------------------------------------ */

/* Makes a copy of one sample a shot of its own: the station refuses a
 * file with the bytes of one it took.  One byte of the image data, in
 * the middle, becomes a count of the copies made (never a marker: not
 * after or as an FF). */
static bool vary_bytes(const char *path)
{
	static int copies;
	int fd = open(path, O_RDWR);
	struct stat st;
	unsigned char b[2];
	bool ok = fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 4;
	off_t at = ok ? st.st_size / 2 : 0;

	while (ok && (ok = pread(fd, b, 2, at - 1) == 2) && b[0] == 0xFF)
		at++;
	b[1] = (unsigned char)(++copies % 0xFE);
	ok = ok && pwrite(fd, b + 1, 1, at) == 1;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* Copies src into dir as a capture program saves: under a temporary name,
 * renamed when whole.  When it appeared under its name, or NAN. */
static double save_into(const char *src, const char *dir, int k)
{
	char tmp[700], dst[700], cmd[1600];

	snprintf(tmp, sizeof tmp, "%s/IMG_%04d.JPG.tmp", dir, k);
	snprintf(dst, sizeof dst, "%s/IMG_%04d.JPG", dir, k);
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", src, tmp);
	if (system(cmd) != 0 || !vary_bytes(tmp) || rename(tmp, dst) < 0)
		return NAN;
	return now_s();
}

/* Until n are attached, deciding a held one as the number after the scan
 * (the first file after a scan: the folder has no clock to read); *done
 * gets when the finisher was done with it (named and stamped: the status
 * says "received NAME"), or stays NAN. */
static double watch_wait_attached(struct stand *x, long long n, double timeout_s,
				  double *done)
{
	double until = now_s() + timeout_s;
	cs_error err = { 0 };
	char before[sizeof ((station_status *)0)->last];
	station_status s;

	station_get_status(x->st, &s);
	snprintf(before, sizeof before, "%s", s.last);
	*done = NAN;
	for (;;) {
		station_get_status(x->st, &s);
		if (isnan(*done) && !strncmp(s.last, "received ", 9) && strcmp(s.last, before))
			*done = now_s();
		if (s.attached >= n)
			return now_s();
		if (now_s() >= until)
			return -1;
		if (s.held_name[0])
			station_resolve_held(x->st, STATION_AFTER, &err);
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

/* n files of 20 MB saved into a watched folder one at a time, each the
 * moment the last is attached: from appearing under its name to attached,
 * against the upload alone; settle_ms is the watch's quiet time; move as
 * --watch-keep move (the folder and the session on one filesystem). */
static void watch_latency(struct stand *x, const char *sample, int n, int settle_ms,
			  bool move, double up)
{
	char dir[600];
	watch *w = NULL;
	watch_file f;
	cs_error err = { 0 };
	double lat[SHOTS_MAX], seen[SHOTS_MAX], taken[SHOTS_MAX], done[SHOTS_MAX];
	int got = 0;
	static long long attached;

	snprintf(dir, sizeof dir, "%s/watched-%d-%s", harness_home(), settle_ms,
		 move ? "move" : "copy");
	mkdir(dir, 0700);
	watch_options wo = { .dir = dir, .settle_ms = settle_ms };
	if (watch_open(&wo, &w, &err)) {
		fprintf(stderr, "bench: watch: %s\n", err.msg);
		return;
	}
	for (int i = -1; i < n; i++) {
		double t0 = save_into(sample, dir, i + 2), t1, t2 = NAN, t, t3;
		int ret;
		while ((ret = watch_wait_file(w, 100, &f, &err)) == CS_E_TIMEOUT)
			;
		t1 = now_s();
		const char *paths[] = { f.path };
		if (ret || !f.complete ||
		    station_submit_received(x->st, paths, 1, f.before, move, NULL, &err) ||
		    (t2 = now_s(), t = watch_wait_attached(x, ++attached, 60, &t3)) < 0) {
			fprintf(stderr, "bench: watch: %s\n", ret || f.complete ? err.msg : f.why);
			break;
		}
		if (i < 0)
			continue;       /* the first: held, and the pipeline's first */
		lat[got] = t - t0;
		seen[got] = t1 - t0;
		taken[got] = t2 - t1;
		done[got] = t3 - t2;
		got++;
	}
	watch_free(w);
	if (got)
		printf("  settle %4d ms, %s: appeared->attached p50 %5.0f ms, p95 %5.0f ms "
		       "(->complete %.0f ms, ->journaled +%.0f ms, ->named and stamped +%.0f ms, "
		       "->attached +%.0f ms); over the upload alone (%.0f ms): %+.0f ms\n",
		       settle_ms, move ? "move" : "copy", percentile(lat, got, 0.5) * 1e3,
		       percentile(lat, got, 0.95) * 1e3, percentile(seen, got, 0.5) * 1e3,
		       percentile(taken, got, 0.5) * 1e3, percentile(done, got, 0.5) * 1e3,
		       (percentile(lat, got, 0.5) - percentile(seen, got, 0.5) -
			percentile(taken, got, 0.5) - percentile(done, got, 0.5)) * 1e3,
		       up * 1e3, (percentile(lat, got, 0.5) - up) * 1e3);
}

static void watch_bench(harness_server *hs, specify_session *s, bool quick)
{
	int n = quick ? 3 : 10;
	struct stand x;
	char cmd[1400], *sample = NULL;

	/* A camera's 20 MB JPEG: a small header, then the image data (the
	 * emulated camera pads its header instead, which no camera does). */
	if (asprintf(&sample, "%s/watch-sample.jpg", harness_home()) < 0 ||
	    snprintf(cmd, sizeof cmd, "'%s' 10000 8000 7 '%s'", MKJPEG_EXE, sample) < 0 ||
	    system(cmd) != 0) {
		fprintf(stderr, "bench: watch: cannot make a sample with %s\n", MKJPEG_EXE);
		free(sample);
		return;
	}
	if (!stand_open(&x, hs, specify_session_info(s)->catalog_format, "watch", NULL))
		goto out;
	double up = pure_upload(s, sample, quick ? 3 : 10);
	if (!stand_scan(&x, "000000001"))
		goto out;
	printf("watched folder, %d x 20 MB JPEG one at a time (saved under a temporary name, "
	       "renamed; goal: transfer + < 150 ms; the middle figures are medians of each "
	       "step, which need not add up to the p50):\n", n);
	watch_latency(&x, sample, n, 2000, false, up);
	watch_latency(&x, sample, n, 2000, true, up);
out:
	stand_close(&x);
	free(sample);
}

/* --- which specimen a shot belongs to: a long run (issue 13) ---------------- */

#define RACE_NUMBERS 10

struct race_press {
	double at, cam;              /* on the computer's clock, on the camera's */
	int truth;                   /* the number current then, or -1 */
	int got;                     /* the number it ended with, -1 none, -2 not final */
};

struct race {
	struct race_press *p;
	int n;
	double scans[1024];
	int nscans;
	int held;
};

static const char *race_number(int k)
{
	static char numbers[RACE_NUMBERS][16];

	snprintf(numbers[k], sizeof numbers[k], "%09d", k + 1);
	return numbers[k];
}

/* The press whose camera time is cam (to the EXIF's hundredth). */
static struct race_press *race_find(struct race *r, double cam)
{
	for (int i = 0; i < r->n; i++)
		if (fabs(r->p[i].cam - cam) < 0.011)
			return &r->p[i];
	return NULL;
}

struct race_item {
	struct race *r;
	const char *name;            /* the held file, or NULL: every final one */
	double cam;
};

static int race_item(void *ud, const journal_item *it)
{
	struct race_item *w = ud;
	struct race_press *p = it->press.res > 0 ? race_find(w->r, it->press.cam) : NULL;

	if (w->name) {
		if (!strcmp(it->name, w->name))
			w->cam = it->press.res > 0 ? it->press.cam : 0;
		return 0;
	}
	if (!p)
		return 0;
	if (!journal_state_is_final(it->state) || it->press.bind == JB_PENDING) {
		p->got = -2;
		if (getenv("BENCH_DEBUG"))
			fprintf(stderr, "bench: %s %s bind %d: %s [%s]\n", it->name,
				journal_state_name(it->state), it->press.bind,
				it->reason ? it->reason : "", it->press.candidates ?
				it->press.candidates : "");
	}
	else
		p->got = it->identifier ? atoi(it->identifier) - 1 : -1;
	return 0;
}

/* Answers the capture held, if any, with the number its press had. */
static void race_answer(struct race *r, struct stand *x)
{
	station_status st;
	journal *j = NULL;
	cs_error err = { 0 };

	station_get_status(x->st, &st);
	if (!st.held_press || journal_open(x->jpath, &j, &err))
		return;
	struct race_item w = { r, st.held_name, 0 };
	journal_items_each(j, st.batch, JS_HELD, race_item, &w, &err);
	journal_close(j);
	struct race_press *p = race_find(r, w.cam);
	if (p && station_resolve_held_number(x->st, race_number(p->truth), &err) == 0)
		r->held++;
}

static double race_rand(unsigned *seed, double a, double b)
{
	*seed = *seed * 1103515245u + 12345u;
	return a + (b - a) * (double)(*seed >> 8 & 0xffffff) / 16777216.0;
}

/* n presses of the camera's button, 0.5 to 1.5 s apart, by a body that
 * takes delay seconds from press to file, its clock 37 s ahead; after
 * half of them the next label is scanned anywhere from 1 s before to 2 s
 * after the press.  Held captures are answered with the truth (as the
 * technician would, looking at the shot).  Every press must end on the
 * number current at it. */
static void race_run(harness_server *hs, const char *fmtname, int n, double delay)
{
	char d[32];
	const char *cam_args[] = { "--clock-offset", "37", "--delay", d, NULL };
	struct race r = { .p = calloc((size_t)n, sizeof *r.p), .n = n };
	struct stand x;
	unsigned seed = 13;
	int cur = 0, wrong = 0, open = 0, near = 0;
	cs_error err = { 0 };

	snprintf(d, sizeof d, "%g", delay);
	if (!r.p || !stand_open(&x, hs, fmtname, delay < 1 ? "race-fast" : "race-slow", cam_args) ||
	    !stand_scan(&x, race_number(cur)) || !stand_start(&x))
		goto out;
	double t = now_s(), answered = 0;
	for (int i = 0; i < n; i++) {
		/* A plan fallen behind (a held shot answered) starts afresh. */
		t = fmax(t + race_rand(&seed, 0.5, 1.5), now_s() + 0.2);
		bool scan = race_rand(&seed, 0, 1) < 0.5 && r.nscans < 1024;
		double offset = race_rand(&seed, -1, 2);
		double scan_at = scan ? fmax(t + offset, i ? r.p[i - 1].at + 0.05 : t) : INFINITY;
		for (int step = 0; step < 2; step++) {
			bool scan_first = scan_at < t;
			double when = (step == 0) == scan_first ? scan_at : t;
			if (isinf(when))
				continue;
			while (now_s() < when) {
				if (now_s() - answered > 0.3 && when - now_s() > 0.15) {
					race_answer(&r, &x);
					answered = now_s();
				}
				nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
			}
			if (when == scan_at) {
				cur = (cur + 1) % RACE_NUMBERS;
				r.scans[r.nscans++] = now_s();
				station_scan_at(x.st, race_number(cur), r.scans[r.nscans - 1], &err);
			} else {
				char *reply = ptpip_cam_control(x.pc, "press jpeg"), *at = NULL;
				int handle = reply && !strncmp(reply, "OK ", 3) ? atoi(reply + 3) : 0;
				free(reply);
				if (handle && (at = ptpip_cam_control(x.pc, "pressed %d", handle)))
					sscanf(at, "OK %lf %lf", &r.p[i].cam, &r.p[i].at);
				free(at);
				r.p[i].truth = cur;
				r.p[i].cam = floor(r.p[i].cam * 100) / 100;
			}
		}
	}
	/* Every capture final: answered when held. */
	double until = now_s() + 120;
	journal *j = NULL;
	do {
		race_answer(&r, &x);
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
		station_status st;
		station_get_status(x.st, &st);
		struct race_item w = { &r, NULL, 0 };
		for (int i = 0; i < n; i++)
			r.p[i].got = -2;
		if (journal_open(x.jpath, &j, &err) == 0) {
			journal_items_each(j, st.batch, -1, race_item, &w, &err);
			journal_close(j);
		}
		open = 0;
		for (int i = 0; i < n; i++)
			open += r.p[i].got == -2;
	} while (open && now_s() < until);
	double window = (x.clock_hi - x.clock_lo) / 2 + 0.01;
	for (int i = 0; i < n; i++) {
		bool close = false;
		if (r.p[i].got == -2)
			fprintf(stderr, "bench: press %d (camera %.2f, %s) is not final\n", i,
				r.p[i].cam, race_number(r.p[i].truth));
		wrong += r.p[i].got != -2 && r.p[i].got != r.p[i].truth;
		double nearest = INFINITY;
		for (int k = 0; k < r.nscans; k++)
			nearest = fmin(nearest, fabs(r.scans[k] - r.p[i].at));
		close = nearest < window;
		near += close;
		if (getenv("BENCH_DEBUG"))
			fprintf(stderr, "bench: press %d at %.3f: nearest scan %.3f s\n", i,
				r.p[i].at, nearest);
	}
	printf("  %3d presses, %.1f s to the file: %d for a wrong number, %d held and "
	       "answered (%.1f %%), %d not final; %d presses (%.1f %%) had a scan within the "
	       "clock's uncertainty (±%.3f s) + 10 ms of EXIF\n", n, delay, wrong, r.held,
	       100.0 * r.held / n, open, near, 100.0 * near / n, (x.clock_hi - x.clock_lo) / 2);
out:
	stand_close(&x);
	free(r.p);
}

static void race_bench(harness_server *hs, specify_session *s, bool quick)
{
	const char *fmtname = specify_session_info(s)->catalog_format;

	printf("which specimen: the camera's button, scans from -1 s to +2 s around presses:\n");
	race_run(hs, fmtname, quick ? 40 : 500, 0.1);
	race_run(hs, fmtname, quick ? 20 : 100, 2.0);
}

static double thread_cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* The label check: barcode_read_file on camera-size photos that mkbarcode
 * writes, with a label and without (the worst case: every pass to its
 * end).  Medians of several runs of each, of the time it took and of the
 * processor time it used (the same on a busy machine). */
static void label_bench(bool quick)
{
	static const struct {
		const char *what;
		const char *args[10];
	} photos[] = {
		{ "6000x4000, Code 128, 4 px a module", { "--size", "6000x4000", "--module", "4",
							  "--at", "4200,3000", "000000123" } },
		{ "6000x4000, Code 128, 1 px a module", { "--size", "6000x4000", "--module", "1",
							  "--at", "4800,3600", "V000123" } },
		{ "4000x3000, Code 128, 3 px a module", { "--size", "4000x3000", "--module", "3",
							  "NHMD-ENT-0001234" } },
		{ "6000x4000, DataMatrix, 8 px a module", { "--size", "6000x4000", "--datamatrix",
							    "--module", "8", "--at", "1000,800",
							    "V000123" } },
		{ "6000x4000, no barcode", { "--size", "6000x4000" } },
		{ "4000x3000, no barcode", { "--size", "4000x3000" } },
		{ "6000x4000, no barcode, grainy (noise 24)", { "--size", "6000x4000", "--noise", "24" } },
	};
	int runs = quick ? 3 : 7;
	barcode_reader *r = NULL;
	cs_error err = { 0 };

	if (barcode_reader_new(&r, &err) < 0) {
		printf("label check: %s\n", err.msg);
		return;
	}
	printf("label check, barcode_read_file (median of %d):\n", runs);
	for (size_t i = 0; i < sizeof photos / sizeof photos[0]; i++) {
		const char *argv[16] = { MKBARCODE_EXE };
		char path[512];
		barcode_result res[4];
		double t[7], cpu[7];
		size_t n = 0;
		int k = 1, status;
		pid_t pid;

		snprintf(path, sizeof path, "%s/label-%zu.jpg", harness_home(), i);
		for (const char *const *a = photos[i].args; *a; a++)
			argv[k++] = *a;
		argv[k] = path;
		if (posix_spawn(&pid, MKBARCODE_EXE, NULL, NULL, (char **)argv, environ) != 0 ||
		    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			printf("  %-42s  mkbarcode failed (DataMatrix needs libdmtx)\n", photos[i].what);
			continue;
		}
		for (int j = 0; j < runs; j++) {
			double t0 = harness_now(), c0 = thread_cpu_s();

			if (barcode_read_file(r, path, res, 4, &n, &err) < 0)
				printf("  %s\n", err.msg);
			t[j] = harness_now() - t0;
			cpu[j] = thread_cpu_s() - c0;
		}
		printf("  %-42s %6.0f ms (processor %5.0f ms)   %zu code%s%s%s\n", photos[i].what,
		       percentile(t, runs, 0.5) * 1e3, percentile(cpu, runs, 0.5) * 1e3, n,
		       n == 1 ? " " : "s", n > 0 ? " " : "", n > 0 ? res[0].text : "");
		unlink(path);
	}
	barcode_reader_free(r);
}

/* --- on a real Specify's timing (issue 15) ----------------------------------- */

/* The stand-in's --profile specify-7.12 (specify-api.md, appendix D): each
 * Specify request takes what it took on a real Specify 7.12 (Django's own
 * server, MariaDB, 2 cores), two at most served at once; the asset server
 * one request at a time, uploads at 150 MB/s.  On it, the same files three
 * ways: Specify's own Batch Attachment Uploader as its browser client
 * sends it, `copystand upload` of the folder (the whole command), and the
 * bytes alone.  The figures measured against the real servers, to compare
 * the profile with: */
struct real_figures {
	double uploader, copystand, bytes;   /* seconds */
};

/* A browser's view of Specify and its asset server, the Batch Attachment
 * Uploader's requests one at a time (Upload.tsx, PerformAttachmentTask.ts),
 * on kept-alive connections: copystand's own transport (core/http.h), so
 * that both sides of the comparison speak HTTP alike. */
struct browser {
	http_client *http;
	const char *base;            /* Specify's URL */
	char *csrf;                  /* the csrftoken cookie (rotated at login) */
	http_response r;             /* the last answer */
	int requests;
};

/* One request to Specify (path under its URL), JSON body or none, as the
 * frontend's ajax() sends it; the status, 0 when none came. */
static long br_api(struct browser *b, const char *method, const char *path, const char *json)
{
	char url[1024], csrf[200];
	const char *headers[] = { "Accept: application/json", csrf, NULL };
	cs_error err = { 0 };

	snprintf(url, sizeof url, "%s%s", b->base, path);
	snprintf(csrf, sizeof csrf, "X-CSRFToken: %s", b->csrf ? b->csrf : "");
	if (strcmp(method, "GET") == 0)
		headers[1] = NULL;
	http_response_clear(&b->r);
	b->requests++;
	if (http_client_perform(b->http, &(http_request){
			.method = method, .url = url, .headers = headers,
			.content_type = json ? "application/json" : NULL, .body = json,
			.body_len = json ? strlen(json) : 0 }, &b->r, &err))
		return 0;
	return b->r.status;
}

static void br_csrf(struct browser *b)
{
	free(b->csrf);
	b->csrf = http_client_cookie(b->http, "csrftoken");
}

static bool br_open(struct browser *b, const harness_server *hs, long long collection)
{
	char login[512];
	cs_error err = { 0 };

	memset(b, 0, sizeof *b);
	b->base = hs->url;
	if (!(b->http = http_client_new(&(http_options){ 0 }, &err)))
		return false;
	snprintf(login, sizeof login, "{\"username\": \"%s\", \"password\": \"%s\", \"collection\": %lld}",
		 hs->user, hs->password, collection);
	if (br_api(b, "GET", "/context/login/", NULL) != 200)
		return false;
	br_csrf(b);
	if (br_api(b, "PUT", "/context/login/", login) != 204)
		return false;
	br_csrf(b);
	return true;
}

static void br_close(struct browser *b)
{
	http_response_clear(&b->r);
	http_client_free(b->http);
	free(b->csrf);
}

/* The files of a set named by catalog number: first, first + 1, ... */
static void make_numbered(struct set *s, const char *dir, long first)
{
	char sub[512];

	snprintf(sub, sizeof sub, "%s/%s", harness_home(), dir);
	mkdir(sub, 0700);
	s->paths = calloc((size_t)s->n, sizeof *s->paths);
	for (int i = 0; i < s->n; i++) {
		char name[64];
		snprintf(name, sizeof name, "%s/%09ld.jpg", dir, first + i);
		s->paths[i] = harness_make_file(name, s->size, (unsigned)(first + i));
	}
}

/* Adds the collection objects first .. first + n - 1 to the stand-in. */
static bool seed_records(harness_server *hs, long long collection, long first, int n)
{
	for (int i = 0; i < n; i++) {
		char json[160];
		cJSON *reply = NULL;
		cs_error err = { 0 };
		snprintf(json, sizeof json, "{\"table\": \"collectionobject\", \"fields\": "
			 "{\"catalognumber\": \"%09ld\", \"collection\": %lld}}", first + i, collection);
		if (standin_control(hs->standin, "POST", "records", json, &reply, &err)) {
			fprintf(stderr, "bench: cannot add record %09ld: %s\n", first + i, err.msg);
			return false;
		}
		cJSON_Delete(reply);
	}
	return true;
}

/* Specify's Batch Attachment Uploader on the set (files named by catalog
 * number), from the upload click to the last file (specify-api.md 2.5, 3.4,
 * 4.3, 5.4): validation with one ephemeral query for every name; one
 * get_upload_params for all; then strictly one file at a time: get_token,
 * the upload, GET the record, PUT it back whole with one more element in
 * its attachments array.  (The dataset saves before and after the loop are
 * left out: the stand-in has no attachment datasets.)  Seconds; *failed
 * counts the files that did not end attached. */
static double uploader(struct browser *b, const specify_assets *a, const struct set *set,
		       long first, int *failed)
{
	size_t cap = (size_t)set->n * 16 + 64;
	char *numbers = calloc(1, cap), *names = calloc(1, cap + (size_t)set->n * 8), *q;
	long long *ids = calloc((size_t)set->n, sizeof *ids);
	cJSON *locs = NULL, *res, *row;
	double t0 = now_s();

	*failed = set->n;
	for (int i = 0; i < set->n; i++) {
		size_t l = strlen(numbers), m = strlen(names);
		snprintf(numbers + l, cap - l, "%s%09ld", i ? "," : "", first + i);
		snprintf(names + m, cap + (size_t)set->n * 8 - m, "%s\"%09ld.jpg\"", i ? "," : "", first + i);
	}
	if (asprintf(&q, "{\"name\": \"Batch Attachment Upload\", \"contextname\": \"CollectionObject\", "
		     "\"contexttableid\": 1, \"selectdistinct\": false, \"countonly\": false, "
		     "\"limit\": 0, \"fields\": [{\"position\": 0, \"stringid\": "
		     "\"1.collectionobject.catalogNumber\", \"isrelfld\": false, \"isdisplay\": true, "
		     "\"isnot\": false, \"operstart\": 10, \"startvalue\": \"%s\", \"sorttype\": 0}]}",
		     numbers) < 0 || br_api(b, "POST", "/stored_query/ephemeral/", q) != 200)
		goto out;
	res = cJSON_Parse(b->r.body);
	cJSON_ArrayForEach(row, cJSON_GetObjectItem(res, "results")) {
		/* displayed without the zeros: formatted again to compare */
		long n = atol(cJSON_GetStringValue(cJSON_GetArrayItem(row, 1)) ?: "0");
		if (n >= first && n < first + set->n)
			ids[n - first] = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(row, 0));
	}
	cJSON_Delete(res);
	free(q);
	if (asprintf(&q, "{\"filenames\": [%s]}", names) < 0 ||
	    br_api(b, "POST", "/attachment_gw/get_upload_params/", q) != 200 ||
	    !(locs = cJSON_Parse(b->r.body)))
		goto out;
	for (int i = 0; i < set->n; i++) {
		const char *loc = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(locs, i),
									     "attachmentLocation"));
		const char *name = strrchr(set->paths[i], '/') + 1;
		char path[256], token[160];
		cs_error err = { 0 };
		long status;

		if (!loc || !ids[i])
			continue;
		snprintf(path, sizeof path, "/attachment_gw/get_token/?filename=%s", loc);
		if (br_api(b, "GET", path, NULL) != 200)
			continue;
		snprintf(token, sizeof token, "%s", b->r.body ? b->r.body : "");

		/* The browser's FormData: the file first, then the fields. */
		const char *form[] = { "token", token, "store", loc, "type", "O",
				       "coll", a->collection, NULL };
		http_response_clear(&b->r);
		b->requests++;
		if (http_client_perform(b->http, &(http_request){
				.method = "POST", .url = a->write_url, .form = form,
				.form_file = &(http_form_file){ "file", set->paths[i], name,
								"image/jpeg" } }, &b->r, &err) ||
		    b->r.status != 200)
			continue;

		snprintf(path, sizeof path, "/api/specify/collectionobject/%lld/", ids[i]);
		if (br_api(b, "GET", path, NULL) != 200)
			continue;
		cJSON *rec = cJSON_Parse(b->r.body);
		cJSON *list = cJSON_GetObjectItem(rec, "collectionobjectattachments");
		cJSON *join = cJSON_CreateObject(), *att;
		int ordinal = cJSON_GetArraySize(list);
		cJSON_AddNumberToObject(join, "ordinal", ordinal);
		att = cJSON_AddObjectToObject(join, "attachment");
		cJSON_AddStringToObject(att, "attachmentlocation", loc);
		cJSON_AddStringToObject(att, "mimetype", "image/jpeg");
		cJSON_AddStringToObject(att, "origfilename", name);
		cJSON_AddStringToObject(att, "title", name);
		cJSON_AddBoolToObject(att, "ispublic", false);
		cJSON_AddNumberToObject(att, "tableid", 1);
		cJSON_AddItemToArray(list, join);
		char *put = cJSON_PrintUnformatted(rec);
		cJSON_Delete(rec);
		status = put ? br_api(b, "PUT", path, put) : 0;
		free(put);
		if (status != 200)
			continue;
		/* The new join row: by location and ordinal (its id goes to the dataset). */
		rec = cJSON_Parse(b->r.body);
		cJSON_ArrayForEach(join, cJSON_GetObjectItem(rec, "collectionobjectattachments")) {
			const char *l = cJSON_GetStringValue(cJSON_GetObjectItem(
				cJSON_GetObjectItem(join, "attachment"), "attachmentlocation"));
			if (l && strcmp(l, loc) == 0 &&
			    cJSON_GetNumberValue(cJSON_GetObjectItem(join, "ordinal")) == ordinal) {
				(*failed)--;
				break;
			}
		}
		cJSON_Delete(rec);
	}
out:
	cJSON_Delete(locs);
	free(q);
	free(numbers);
	free(names);
	free(ids);
	return now_s() - t0;
}

/* `copystand upload [--dry-run] DIR`, the whole command: seconds;
 * *attached from its summary. */
static double copystand_upload(harness_server *hs, const char *dir, bool dry, int *attached)
{
	char *pw, *out = NULL, path[512];
	const char *argv[] = { "upload", "--server", hs->url, "--user", hs->user,
			       "--collection", hs->collection, dry ? "--dry-run" : path,
			       dry ? path : NULL, NULL };

	snprintf(path, sizeof path, "%s/%s", harness_home(), dir);
	if (asprintf(&pw, "COPYSTAND_PASSWORD=%s", hs->password) < 0)
		return NAN;
	const char *env[] = { pw, NULL };
	double t0 = now_s();
	int rc = harness_run(argv, env, &out);
	double t = now_s() - t0;
	const char *at = out ? strstr(out, " attached") : NULL;
	*attached = 0;
	if (at) {
		while (at > out && at[-1] >= '0' && at[-1] <= '9')
			at--;
		*attached = atoi(at);
	}
	if (rc != 0 && !dry)
		fprintf(stderr, "bench: copystand upload exited %d:\n%s\n", rc, out ? out : "");
	free(out);
	free(pw);
	return t;
}

static void real_set(harness_server *hs, specify_session *s, struct set *set, long base,
		     const struct real_figures *real, double target_importer, double target_floor)
{
	const specify_info *info = specify_session_info(s);
	const specify_assets *a;
	struct set mine = *set, floor_set = *set;
	struct browser b;
	char dir_theirs[64], dir_ours[64], dir_floor[64];
	int failed = set->n, attached = 0;
	cs_error err = { 0 };
	double theirs = NAN, ours, bytes;

	snprintf(dir_theirs, sizeof dir_theirs, "real-%ld-uploader", base);
	snprintf(dir_ours, sizeof dir_ours, "real-%ld-copystand", base);
	snprintf(dir_floor, sizeof dir_floor, "real-%ld-bytes", base);
	/* Records of their own for each way, so that none finds another's
	 * attachments; files of the same size, not the same bytes. */
	if (!seed_records(hs, info->collection_id, base, set->n) ||
	    !seed_records(hs, info->collection_id, base + 50000, set->n) ||
	    specify_assets_get(s, &a, &err))
		return;
	make_numbered(set, dir_theirs, base);
	make_numbered(&mine, dir_ours, base + 50000);
	make_numbered(&floor_set, dir_floor, base + 90000);

	/* The browser logged in and read the settings before the click. */
	if (br_open(&b, hs, info->collection_id)) {
		int before = b.requests;
		theirs = uploader(&b, a, set, base, &failed);
		b.requests -= before;
	} else {
		fprintf(stderr, "bench: the browser model cannot log in\n");
	}
	int req0 = all_requests(hs);
	cJSON *st0 = standin_state(hs->standin);
	ours = copystand_upload(hs, dir_ours, false, &attached);
	int req_ours = all_requests(hs) - req0;
	if (getenv("BENCH_DEBUG")) {   /* what copystand asked, by kind */
		cJSON *st1 = standin_state(hs->standin), *r;
		cJSON_ArrayForEach(r, cJSON_GetObjectItem(st1, "requests")) {
			int n = (int)cJSON_GetNumberValue(r) - standin_requests(st0, r->string);
			if (n)
				fprintf(stderr, "bench: copystand upload: %4d %s\n", n, r->string);
		}
		cJSON_Delete(st1);
	}
	cJSON_Delete(st0);
	/* Its planning alone (log in, look up, hash): the same again, dry. */
	int again;
	double plan = copystand_upload(hs, dir_ours, true, &again);
	bytes = raw_curl(hs, s, &floor_set);

	printf("%-22s uploader pattern %6.2f s (%d requests, %d not attached)   copystand upload %5.2f s "
	       "(%d requests, %d of %d attached; a dry run after it %.2f s)   bytes alone %5.2f s\n",
	       set->label, theirs, b.requests, failed, ours, req_ours, attached, mine.n, plan, bytes);
	printf("%-22s copystand %.1fx the uploader pattern (target >= %.0fx: %s)   %.2fx the bytes "
	       "alone%s   uploader %.1fx the bytes alone\n", "", theirs / ours, target_importer,
	       theirs / ours >= target_importer ? "met" : "NOT met", ours / bytes,
	       target_floor > 0 ? (ours / bytes <= target_floor ? " (target <= 1.6x: met)" :
				   " (target <= 1.6x: NOT met)") : "", theirs / bytes);
	if (real)
		printf("%-22s real Specify 7.12:  uploader %.2f s   copystand %.2f s   bytes alone %.2f s "
		       "(profile / real: %.2f, %.2f, %.2f)\n", "", real->uploader, real->copystand,
		       real->bytes, theirs / real->uploader, ours / real->copystand, bytes / real->bytes);
	br_close(&b);
	free_set(set);
	free_set(&mine);
	free_set(&floor_set);
}

static void real_bench(harness_server *hs, specify_session *s, bool quick)
{
	/* specify-api.md appendix D and issue 15: 100 JPEGs 640x480 (4.3 MB),
	 * 20 JPEGs 4000x3000 (97 MB), on the real servers. */
	static const struct real_figures small_real = { 28.7, 3.7, 0.17 }, large_real = { 6.45, 2.6, 0.66 };
	struct set small = { quick ? "30 x 43 KB" : "100 x 43 KB", quick ? 30 : 100, 43000 };
	struct set large = { quick ? "6 x 4.85 MB" : "20 x 4.85 MB", quick ? 6 : 20, 4850000 };
	double load[3] = { 0 }, after[3] = { 0 };
	cs_error err = { 0 };

	if (!hs->standin) {
		printf("real Specify's timing: needs the stand-in (its --profile)\n");
		return;
	}
	getloadavg(load, 3);
	if (standin_faults(hs->standin, "{\"profile\": \"specify-7.12\"}", &err)) {
		fprintf(stderr, "bench: no profile: %s\n", err.msg);
		return;
	}
	printf("on a real Specify 7.12's timing (stand-in --profile specify-7.12), load average %.2f:\n",
	       load[0]);
	real_set(hs, s, &small, 100001, quick ? NULL : &small_real, 10, 0);
	real_set(hs, s, &large, 200001, quick ? NULL : &large_real, 4, 1.6);
	getloadavg(after, 3);
	printf("  load average after: %.2f\n", after[0]);
	standin_faults(hs->standin, "{\"profile\": \"none\"}", &err);
}

/* --- parallel uploads against one asset-server thread (issue 15) ------------ */

/* The same files drained with 1, 2 and 4 uploads in flight at most, on the
 * 7.12 profile (the asset server takes one request at a time): whether
 * parallel streams make large files slower than one. */
static void parallel_bench(harness_server *hs, const char *jpath, bool quick)
{
	struct set sets[] = {
		{ quick ? "6 x 5 MB" : "20 x 5 MB", quick ? 6 : 20, 5000000 },
		{ quick ? "2 x 50 MB" : "4 x 50 MB", quick ? 2 : 4, 50000000 },
	};
	static const int widths[] = { 1, 2, 4 };
	int saved = inflight;
	double load[3] = { 0 };
	cs_error err;

	if (!hs->standin || standin_faults(hs->standin, "{\"profile\": \"specify-7.12\"}", &err)) {
		printf("parallel uploads: needs the stand-in (its --profile)\n");
		return;
	}
	getloadavg(load, 3);
	printf("parallel uploads on a real Specify 7.12's timing (one asset-server thread), "
	       "load average %.2f:\n", load[0]);
	for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
		double mb = (double)sets[k].n * (double)sets[k].size / 1e6;

		make_set(&sets[k], sets[k].label);
		for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
			long rss;

			inflight = widths[w];
			long long batch = journal_set(jpath, hs, &sets[k]);
			double t = drain(jpath, hs, batch, &rss);
			printf("%-22s at most %d in flight: %5.2f s, %6.1f MB/s\n", sets[k].label,
			       widths[w], t, mb / t);
		}
		free_set(&sets[k]);
	}
	inflight = saved;
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, &err);
}

int main(int argc, char **argv)
{
	static const char *const sections[] = { "throughput", "importer", "memory", "station",
						 "label", "race", "real", "watch", "parallel" };
	enum { NSECTIONS = sizeof sections / sizeof sections[0] };
	bool quick = false, run[NSECTIONS] = { false }, some = false;
	harness_server hs;
	specify_session *s;
	cs_error err;
	char *jpath;

	for (int i = 1; i < argc; i++) {
		int k = 0;
		while (k < NSECTIONS && strcmp(argv[i], sections[k]) != 0)
			k++;
		if (k < NSECTIONS)
			run[k] = some = true;
		else if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc)
			inflight = atoi(argv[++i]);
		else {
			fputs("usage: bench [--quick] [--inflight N] "
			      "[throughput] [importer] [memory] [station] [label] [race] [real] [watch] "
			      "[parallel]\n", stderr);
			return 2;
		}
	}
	for (int k = 0; k < NSECTIONS && !some; k++)
		run[k] = true;
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
	if (run[0]) {
		throughput(&hs, s, jpath, &small);
		throughput(&hs, s, jpath, &large);
	}
	if (run[1]) {
		versus_importer(&hs, s, jpath, &jpegs);
		versus_importer(&hs, s, jpath, &twenty);
	}
	if (run[2]) {
		memory(&hs, jpath, &huge);
		memory(&hs, jpath, &many);
	}
	if (run[3])
		station_bench(&hs, s, quick);
	if (run[4])
		label_bench(quick);
	if (run[5])
		race_bench(&hs, s, quick);
	if (run[6])
		real_bench(&hs, s, quick);
	if (run[7])
		watch_bench(&hs, s, quick);
	if (run[8])
		parallel_bench(&hs, jpath, quick);
	specify_session_free(s);
	harness_server_stop(&hs);
	free(jpath);
	harness_cleanup();
	return 0;
}
