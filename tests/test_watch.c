/* hardware/watch against real writers: threads write real JPEGs (from
 * libjpeg) and small TIFFs (built here byte by byte) into throw-away
 * folders the way capture programs do: slowly, in chunks, under temporary
 * names then renamed, RAW and JPEG apart, in bursts, never finished.
 * Settle times are short so the whole program runs in well under a
 * minute; every case is run in both modes where the mode matters. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "sha256.h"
#include "tap.h"
#include "tools/testjpeg.h"
#include "watch.h"

#include <linux/magic.h>

#define SETTLE_MS 700
#define POLL_MS 100
/* Long enough after the last result for a second one to show. */
#define QUIET_S (SETTLE_MS / 1000.0 + 0.5)

/* tap_is_int with a formatted description. */
__attribute__((format(printf, 3, 4)))
static void is_count(long long got, long long want, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	tap_is_int(got, want, what);
}

/* --- image bytes --------------------------------------------------------- */

static unsigned char *jpeg_bytes;
static size_t jpeg_len;

/* Noise compresses badly: a JPEG of some size from a small image. */
static void noise_row(int y, unsigned char *rgb, void *ud)
{
	unsigned *seed = ud;

	for (int x = 0; x < 256 * 3; x++) {
		*seed = *seed * 1103515245u + 12345u + (unsigned)y;
		rgb[x] = (unsigned char)(*seed >> 16);
	}
}

static unsigned char *read_whole(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	else {
		free(buf);
		buf = NULL;
	}
	if (f)
		fclose(f);
	return buf;
}

static bool make_jpeg(void)
{
	char path[512];
	unsigned seed = 7;

	snprintf(path, sizeof path, "%s/source.jpg", harness_home());
	if (testjpeg_write(path, 256, 192, noise_row, &seed) < 0)
		return false;
	jpeg_bytes = read_whole(path, &jpeg_len);
	unlink(path);
	return jpeg_bytes != NULL;
}

/* A small, valid, little-endian TIFF as cameras' RAWs are built: 64x64
 * grey, two strips, the second strip last in the file, so any shorter
 * copy lacks image data its directory points to. */
#define TIFF_LEN (138 + 2 * 2048)
static unsigned char tiff_bytes[TIFF_LEN];

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, unsigned v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

static void make_tiff(void)
{
	static const unsigned entries[][4] = {  /* tag, type, count, value */
		{ 256, 3, 1, 64 }, { 257, 3, 1, 64 }, { 258, 3, 1, 8 }, { 259, 3, 1, 1 },
		{ 262, 3, 1, 1 }, { 273, 4, 2, 122 }, { 277, 3, 1, 1 }, { 278, 3, 1, 32 },
		{ 279, 4, 2, 130 },
	};
	unsigned char *p = tiff_bytes;

	memcpy(p, "II*\0", 4);
	put32(p + 4, 8);
	put16(p + 8, 9);
	for (int i = 0; i < 9; i++) {
		put16(p + 10 + 12 * i, entries[i][0]);
		put16(p + 12 + 12 * i, entries[i][1]);
		put32(p + 14 + 12 * i, entries[i][2]);
		put32(p + 18 + 12 * i, entries[i][3]);
	}
	put32(p + 118, 0);
	put32(p + 122, 138);
	put32(p + 126, 138 + 2048);
	put32(p + 130, 2048);
	put32(p + 134, 2048);
	for (int i = 138; i < TIFF_LEN; i++)
		p[i] = (unsigned char)(i * 7);
}

/* --- folders and writers ------------------------------------------------- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A fresh folder under the throw-away HOME. */
static const char *folder(const char *name)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];

	snprintf(p, 512, "%s/%s", harness_home(), name);
	mkdir(p, 0755);
	return p;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (!(f = fopen(path, "wb")) || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		tap_diag("cannot write %s: %s", path, strerror(errno));
}

/* One capture program writing one file. */
struct job {
	const char *dir;
	const char *name;       /* written under this name */
	const char *final;      /* then renamed to this (NULL: stays) */
	const unsigned char *data;
	size_t len;             /* bytes written in all */
	int chunks, gap_ms, delay_ms;
	double done_at;         /* monotonic: the last byte or the rename */
	pthread_t thread;
};

static void *job_run(void *arg)
{
	struct job *j = arg;
	char path[1024], final[1024];
	int fd;

	sleep_ms(j->delay_ms);
	snprintf(path, sizeof path, "%s/%s", j->dir, j->name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return NULL;
	for (int c = 0; c < j->chunks; c++) {
		size_t from = j->len * (size_t)c / (size_t)j->chunks;
		size_t to = j->len * (size_t)(c + 1) / (size_t)j->chunks;

		if (c > 0)
			sleep_ms(j->gap_ms);
		if (write(fd, j->data + from, to - from) != (ssize_t)(to - from))
			tap_diag("write %s: %s", path, strerror(errno));
	}
	close(fd);
	if (j->final) {
		snprintf(final, sizeof final, "%s/%s", j->dir, j->final);
		rename(path, final);
	}
	j->done_at = now();
	return NULL;
}

static void jobs_start(struct job *jobs, int n)
{
	for (int i = 0; i < n; i++)
		pthread_create(&jobs[i].thread, NULL, job_run, &jobs[i]);
}

static void jobs_join(struct job *jobs, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(jobs[i].thread, NULL);
}

/* --- what the watch gives ------------------------------------------------- */

struct got {
	char name[256];
	bool complete;
	char why[512];
	char sha[65];           /* the bytes at the moment it was given */
	long long size;         /* the same */
	double at;
	bool more;              /* another file of its stem comes next */
};

#define GOT_MAX 128

/* What the watch gives within seconds (it stops early once want results
 * came, if want > 0): the number of results, each hashed at once. */
static int collect(watch *w, double seconds, int want, struct got *g)
{
	double end = now() + seconds;
	int n = 0;

	while (n < GOT_MAX && (want <= 0 || n < want)) {
		double left = end - now();
		watch_file f;
		cs_error err;
		int rc;

		if (left <= 0)
			break;
		rc = watch_wait_file(w, (int)(left * 1000) + 1, &f, &err);
		if (rc == CS_E_TIMEOUT)
			continue;
		if (rc < 0) {
			tap_diag("watch_wait_file: %s", err.msg);
			break;
		}
		g[n].at = now();
		g[n].complete = f.complete;
		g[n].more = f.more;
		snprintf(g[n].why, sizeof g[n].why, "%s", f.why);
		snprintf(g[n].name, sizeof g[n].name, "%s", strrchr(f.path, '/') + 1);
		if (sha256_file(f.path, g[n].sha, &g[n].size, NULL) < 0)
			g[n].sha[0] = '\0';
		n++;
	}
	return n;
}

/* How many of g name name (complete or not). */
static int count_of(const struct got *g, int n, const char *name, bool complete)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		k += strcmp(g[i].name, name) == 0 && g[i].complete == complete;
	return k;
}

static watch *open_watch(const char *dir, watch_mode mode, int give_up_ms)
{
	watch_options o = { .dir = dir, .mode = mode, .poll_ms = POLL_MS,
			    .settle_ms = SETTLE_MS, .give_up_ms = give_up_ms };
	watch *w = NULL;
	cs_error err;

	if (watch_open(&o, &w, &err) < 0)
		tap_diag("watch_open %s: %s", dir, err.msg);
	return w;
}

static const char *mode_name(watch_mode m)
{
	return m == WATCH_POLL ? "polling" : "inotify";
}

static void file_sha(const char *dir, const char *name, char sha[65])
{
	char path[1024];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (sha256_file(path, sha, NULL, NULL) < 0)
		sha[0] = '\0';
}

/* --- the cases ------------------------------------------------------------- */

/* 10 chunks 200 ms apart: one delivery, after the last byte, of exactly
 * the bytes the file ends with. */
static void test_slow_chunks(watch_mode mode)
{
	const char *dir = folder(mode == WATCH_POLL ? "slow-poll" : "slow-inotify");
	watch *w = open_watch(dir, mode, 0);
	struct job j = { .dir = dir, .name = "IMG_0001.JPG", .data = jpeg_bytes,
			 .len = jpeg_len, .chunks = 10, .gap_ms = 200 };
	struct got g[GOT_MAX];
	char final[65];
	int n;

	if (!w)
		return;
	if (mode == WATCH_POLL)
		tap_is_int(watch_method(w, NULL), WATCH_POLL, "polling asked for: polling");
	else
		tap_diag("auto chose %s", mode_name(watch_method(w, NULL)));
	jobs_start(&j, 1);
	n = collect(w, 2.0 + 10 * 0.2 + 2.5, 1, g);
	n += collect(w, QUIET_S, 0, g + n);
	jobs_join(&j, 1);
	file_sha(dir, "IMG_0001.JPG", final);
	is_count(n, 1, "slow chunks (%s): one file given", mode_name(mode));
	if (n >= 1) {
		tap_ok(g[0].complete, "slow chunks (%s): complete (%s)", mode_name(mode), g[0].why);
		tap_is_str(g[0].name, "IMG_0001.JPG", "slow chunks: under its name");
		tap_ok(g[0].at >= j.done_at, "slow chunks (%s): given %.2f s after the last byte",
		       mode_name(mode), g[0].at - j.done_at);
		tap_is_int(g[0].size, (long long)jpeg_len, "slow chunks: every byte was there");
		tap_is_str(g[0].sha, final, "slow chunks: the bytes given are the final file's");
	}
	watch_free(w);
}

/* Temporary names, hidden or with a suffix, renamed when done: the final
 * names given once each, the temporary ones never. */
static void test_renames(watch_mode mode)
{
	const char *dir = folder(mode == WATCH_POLL ? "rename-poll" : "rename-inotify");
	watch *w = open_watch(dir, mode, 0);
	static const char *names[][2] = {
		{ "IMG_0002.JPG.tmp", "IMG_0002.JPG" }, { ".IMG_0003.JPG", "IMG_0003.JPG" },
		{ "~IMG_0004.JPG", "IMG_0004.JPG" }, { "IMG_0005.JPG.part", "IMG_0005.JPG" },
		{ "IMG_0006.JPG.crdownload", "IMG_0006.JPG" }, { "IMG_0007.tif.tmp", "IMG_0007.tif" },
	};
	struct job j[6];
	struct got g[GOT_MAX];
	int n, right = 0;

	if (!w)
		return;
	for (int i = 0; i < 6; i++) {
		bool tiff = i == 5;

		j[i] = (struct job){ .dir = dir, .name = names[i][0], .final = names[i][1],
				     .data = tiff ? tiff_bytes : jpeg_bytes,
				     .len = tiff ? TIFF_LEN : jpeg_len, .chunks = 4,
				     .gap_ms = 150, .delay_ms = 100 * i };
	}
	jobs_start(j, 6);
	n = collect(w, 0.5 + 0.45 + SETTLE_MS / 1000.0 + 2.5, 6, g);
	n += collect(w, QUIET_S, 0, g + n);
	jobs_join(j, 6);
	for (int i = 0; i < 6; i++)
		right += count_of(g, n, names[i][1], true) == 1;
	is_count(n, 6, "renames (%s): six files given, no temporary one", mode_name(mode));
	is_count(right, 6, "renames (%s): each final name once, complete", mode_name(mode));
	for (int i = 0; i < n; i++)
		if (!g[i].complete)
			tap_diag("given incomplete: %s: %s", g[i].name, g[i].why);
	watch_free(w);
}

/* RAW then JPEG, and JPEG then RAW, a second and a half apart. */
static void test_raw_jpeg(void)
{
	const char *dir = folder("raw-jpeg");
	watch *w = open_watch(dir, WATCH_AUTO, 0);
	struct job j[4] = {
		{ .dir = dir, .name = "A.CR2", .data = tiff_bytes, .len = TIFF_LEN, .chunks = 3, .gap_ms = 100 },
		{ .dir = dir, .name = "A.JPG", .data = jpeg_bytes, .len = jpeg_len, .chunks = 3,
		  .gap_ms = 100, .delay_ms = 1500 },
		{ .dir = dir, .name = "B.JPG", .data = jpeg_bytes, .len = jpeg_len, .chunks = 3, .gap_ms = 100 },
		{ .dir = dir, .name = "B.NEF", .data = tiff_bytes, .len = TIFF_LEN, .chunks = 3,
		  .gap_ms = 100, .delay_ms = 1500 },
	};
	struct got g[GOT_MAX];
	int n;

	if (!w)
		return;
	jobs_start(j, 4);
	n = collect(w, 1.8 + SETTLE_MS / 1000.0 + 2.0, 4, g);
	n += collect(w, QUIET_S, 0, g + n);
	jobs_join(j, 4);
	tap_is_int(n, 4, "RAW + JPEG: four files given");
	tap_ok(count_of(g, n, "A.CR2", true) == 1 && count_of(g, n, "A.JPG", true) == 1,
	       "RAW then JPEG: both taken, once each");
	tap_ok(count_of(g, n, "B.JPG", true) == 1 && count_of(g, n, "B.NEF", true) == 1,
	       "JPEG then RAW: both taken, once each");
	watch_free(w);
}

/* A press's JPEG whole at once, its CR3 (nothing proves one whole) only
 * once it has settled: the JPEG waits for it, and the two come one
 * right after the other, the first saying the second follows.  Another
 * stem's file comes alone. */
static void test_pair_waits(void)
{
	const char *dir = folder("pair-waits");
	watch *w = open_watch(dir, WATCH_INOTIFY, 0);
	struct got g[GOT_MAX];
	int n;

	if (!w)
		return;
	double start = now();
	write_file(dir, "C.CR3", jpeg_bytes, jpeg_len);
	write_file(dir, "C.JPG", jpeg_bytes, jpeg_len);
	write_file(dir, "D.JPG", jpeg_bytes, jpeg_len);
	n = collect(w, SETTLE_MS / 1000.0 + 2.0, 3, g);
	n += collect(w, QUIET_S, 0, g + n);
	tap_is_int(n, 3, "pair: three files given");
	int c = -1, d = -1;
	for (int i = 0; i < n; i++) {
		c = c < 0 && !strcmp(g[i].name, "C.CR3") ? i : c;
		d = !strcmp(g[i].name, "D.JPG") ? i : d;
	}
	tap_ok(d >= 0 && g[d].complete && !g[d].more, "another stem's JPEG, alone");
	tap_ok(c >= 0 && c + 1 < n && !strcmp(g[c + 1].name, "C.JPG") && g[c].complete &&
	       g[c + 1].complete, "the CR3 (seen first), then its JPEG right after it");
	tap_ok(c >= 0 && c + 1 < n && g[c].more && !g[c + 1].more,
	       "the first of the two says the other follows");
	tap_ok(c >= 0 && g[c].at - start >= SETTLE_MS / 1000.0,
	       "the JPEG waited for the CR3 to settle (%.2f s)", c >= 0 ? g[c].at - start : 0);
	watch_free(w);
}

/* 50 files at once. */
static void test_burst(void)
{
	const char *dir = folder("burst");
	watch *w = open_watch(dir, WATCH_AUTO, 0);
	struct got g[GOT_MAX];
	char name[64];
	int n, once = 0;

	if (!w)
		return;
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof name, "BURST_%02d.JPG", i);
		write_file(dir, name, jpeg_bytes, jpeg_len);
	}
	n = collect(w, SETTLE_MS / 1000.0 + 4.0, 50, g);
	n += collect(w, QUIET_S, 0, g + n);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof name, "BURST_%02d.JPG", i);
		once += count_of(g, n, name, true) == 1;
	}
	tap_is_int(n, 50, "burst: 50 files given, no more");
	tap_is_int(once, 50, "burst: each of the 50 once, complete");
	watch_free(w);
}

/* One that grows past the give-up time, one cut short that stops: each
 * reported once as never complete, neither ever taken. */
static void test_never_complete(void)
{
	const char *dir = folder("never");
	watch *w = open_watch(dir, WATCH_AUTO, 2000);
	/* 40 chunks 100 ms apart: changing for 4 s, past the 2 s given. */
	struct job grow = { .dir = dir, .name = "GROW.JPG", .data = jpeg_bytes,
			    .len = jpeg_len, .chunks = 40, .gap_ms = 100 };
	struct got g[GOT_MAX];
	int n;

	if (!w)
		return;
	write_file(dir, "CUT.JPG", jpeg_bytes, jpeg_len - 100);
	write_file(dir, "CUT.CR2", tiff_bytes, TIFF_LEN - 1);
	jobs_start(&grow, 1);
	n = collect(w, 4.0 + SETTLE_MS / 1000.0 + 1.5, 0, g);
	jobs_join(&grow, 1);
	tap_is_int(count_of(g, n, "GROW.JPG", false), 1, "growing past the give-up time: reported once");
	tap_is_int(count_of(g, n, "GROW.JPG", true), 0, "growing past the give-up time: never taken, "
		   "even once it stopped whole");
	tap_is_int(count_of(g, n, "CUT.JPG", false), 1, "a JPEG without its end: reported once");
	tap_is_int(count_of(g, n, "CUT.CR2", false), 1, "a RAW cut short: reported once");
	tap_is_int(n, 3, "never complete: nothing else given");
	for (int i = 0; i < n; i++)
		if (strcmp(g[i].name, "CUT.JPG") == 0)
			tap_ok(strstr(g[i].why, "FF D9") != NULL, "the report says why: %s", g[i].why);
	watch_free(w);
}

/* Sidecars, junk and a capture program's own folder: never given. */
static void test_junk(watch_mode mode)
{
	const char *dir = folder(mode == WATCH_POLL ? "junk-poll" : "junk-inotify");
	watch *w = open_watch(dir, mode, 0);
	static const char *junk[] = {
		"IMG_0009.xmp", "IMG_0009.cos", "IMG_0009.JPG.dop", "IMG_0009.pp3", ".DS_Store",
		"._IMG_0009.JPG", "Thumbs.db", "desktop.ini", "IMG_0009.cof", "IMG_0009.cot",
	};
	char sub[1024];
	struct got g[GOT_MAX];
	int n;

	if (!w)
		return;
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
		write_file(dir, junk[i], jpeg_bytes, jpeg_len);
	snprintf(sub, sizeof sub, "%s/CaptureOne", dir);
	mkdir(sub, 0755);
	snprintf(sub, sizeof sub, "%s/CaptureOne/Cache", dir);
	mkdir(sub, 0755);
	write_file(sub, "IMG_0009.JPG", jpeg_bytes, jpeg_len);
	write_file(dir, "IMG_0009.JPG", jpeg_bytes, jpeg_len);
	n = collect(w, SETTLE_MS / 1000.0 + 1.5, 1, g);
	n += collect(w, QUIET_S, 0, g + n);
	is_count(n, 1, "junk (%s): only the image given", mode_name(mode));
	is_count(count_of(g, n, "IMG_0009.JPG", true), 1, "junk (%s): the image, complete",
		 mode_name(mode));
	watch_free(w);
}

/* Files there at the start are listed, not given; one rewritten after
 * the start, and one written again after it was taken, are given. */
static void test_existing(void)
{
	const char *dir = folder("existing");
	unsigned char *padded = malloc(jpeg_len + 1000);
	watch *w;
	watch_file f;
	cs_error err;
	struct got g[GOT_MAX];
	char names[256] = "", path[1024];
	bool flags_right = true;
	int n;

	if (!padded)
		return;
	write_file(dir, "OLD_1.JPG", jpeg_bytes, jpeg_len);
	write_file(dir, "OLD_2.CR2", tiff_bytes, TIFF_LEN);
	write_file(dir, "OLD_3.JPG", jpeg_bytes, jpeg_len / 2);
	/* Zero padding after FF D9, as some writers leave: whole. */
	memcpy(padded, jpeg_bytes, jpeg_len);
	memset(padded + jpeg_len, 0, 1000);
	write_file(dir, "OLD_4.JPG", padded, jpeg_len + 1000);
	write_file(dir, "OLD_1.xmp", "<x/>", 4);
	free(padded);
	if (!(w = open_watch(dir, WATCH_AUTO, 0)))
		return;
	tap_is_int((long long)watch_existing_count(w), 4, "existing: the four images listed");
	for (size_t i = 0; i < watch_existing_count(w); i++) {
		bool want = i != 2;

		if (watch_existing_file(w, i, &f, &err) < 0) {
			tap_diag("watch_existing_file: %s", err.msg);
			flags_right = false;
			continue;
		}
		strcat(names, strrchr(f.path, '/') + 1);
		strcat(names, " ");
		if (f.complete != want)
			tap_diag("%s: complete %d (%s)", f.path, f.complete, f.why);
		flags_right = flags_right && f.complete == want && (f.complete || f.why[0]);
	}
	tap_is_str(names, "OLD_1.JPG OLD_2.CR2 OLD_3.JPG OLD_4.JPG ", "existing: by name");
	tap_ok(flags_right, "existing: whole ones complete, the one cut short not, and why");
	n = collect(w, QUIET_S, 0, g);
	tap_is_int(n, 0, "existing: none given as new");
	/* OLD_3 was still being written when the watch opened. */
	write_file(dir, "OLD_3.JPG", jpeg_bytes, jpeg_len);
	n = collect(w, SETTLE_MS / 1000.0 + 2.0, 1, g);
	tap_ok(n == 1 && count_of(g, n, "OLD_3.JPG", true) == 1,
	       "existing: one finished after the start is given");
	/* Written again after it was taken: a new version, given again. */
	write_file(dir, "OLD_3.JPG", jpeg_bytes, jpeg_len);
	n = collect(w, SETTLE_MS / 1000.0 + 2.0, 1, g);
	n += collect(w, QUIET_S, 0, g + n);
	tap_ok(n == 1 && count_of(g, n, "OLD_3.JPG", true) == 1,
	       "existing: written again after it was taken, given again");
	snprintf(path, sizeof path, "%s/OLD_1.JPG", dir);
	unlink(path);
	tap_is_int(watch_existing_file(w, 0, &f, &err), CS_E_NOT_FOUND,
		   "existing: one deleted since is not found");
	watch_free(w);
}

/* Deleted before it completed: forgotten.  Untouched after it was taken:
 * never given again. */
static void test_deleted(void)
{
	const char *dir = folder("deleted");
	watch *w = open_watch(dir, WATCH_AUTO, 0);
	struct got g[GOT_MAX];
	char path[1024];
	int n;

	if (!w)
		return;
	write_file(dir, "GONE.JPG", jpeg_bytes, jpeg_len / 2);
	sleep_ms(SETTLE_MS / 3);
	n = collect(w, 0.05, 0, g);
	snprintf(path, sizeof path, "%s/GONE.JPG", dir);
	unlink(path);
	n += collect(w, QUIET_S, 0, g + n);
	tap_is_int(n, 0, "deleted before it completed: never given");
	watch_free(w);
}

/* Random bytes and cut copies named as images: read without harm, never
 * complete; mutated headers: read without harm.  Listed as existing
 * (fast), and a few given live. */
static void test_fuzz(void)
{
	const char *dir = folder("fuzz"), *live = folder("fuzz-live");
	unsigned char *buf = malloc(jpeg_len);
	unsigned seed = 16;
	char name[64];
	watch *w;
	watch_file f;
	cs_error err;
	struct got g[GOT_MAX];
	int never = 0, wrong = 0, read_all = 1, n, nlive = 0;

	if (!buf)
		return;
	for (int i = 0; i < 40; i++) {
		size_t len = (size_t)(rand_r(&seed) % 5000);

		for (size_t k = 0; k < len; k++)
			buf[k] = (unsigned char)rand_r(&seed);
		snprintf(name, sizeof name, "random_%02d.%s", i, i % 2 ? "cr2" : "jpg");
		write_file(dir, name, buf, len);
	}
	/* Cut copies: the first bytes, every length class up to all but one. */
	for (size_t len = 0; len < jpeg_len; len += len < 700 ? 37 : jpeg_len / 40) {
		snprintf(name, sizeof name, "cut_%06zu.jpg", len);
		write_file(dir, name, jpeg_bytes, len);
	}
	write_file(dir, "cut_last.jpg", jpeg_bytes, jpeg_len - 1);
	for (size_t len = 0; len < TIFF_LEN; len += len < 200 ? 7 : 301) {
		snprintf(name, sizeof name, "cut_%06zu.cr2", len);
		write_file(dir, name, tiff_bytes, len);
	}
	write_file(dir, "cut_last.cr2", tiff_bytes, TIFF_LEN - 1);
	if (!(w = open_watch(dir, WATCH_AUTO, 0))) {
		free(buf);
		return;
	}
	for (size_t i = 0; i < watch_existing_count(w); i++) {
		if (watch_existing_file(w, i, &f, &err) < 0) {
			read_all = 0;
			continue;
		}
		never += !f.complete;
		if (f.complete)
			tap_diag("taken as whole: %s", f.path);
	}
	tap_ok(read_all && never == (int)watch_existing_count(w),
	       "fuzz: %d random or cut files, none complete", never);
	watch_free(w);
	/* Mutated headers: any verdict, but no crash (ASan watches). */
	for (int i = 0; i < 150; i++) {
		bool tiff = i % 2;
		size_t len = tiff ? TIFF_LEN : jpeg_len;

		memcpy(buf, tiff ? tiff_bytes : jpeg_bytes, len);
		for (int k = 0; k < 4; k++)
			buf[(size_t)rand_r(&seed) % (tiff ? 138 : 700)] = (unsigned char)rand_r(&seed);
		snprintf(name, sizeof name, "mutant_%03d.%s", i, tiff ? "dng" : "jpg");
		write_file(live, name, buf, len);
	}
	if ((w = open_watch(live, WATCH_AUTO, 0))) {
		for (size_t i = 0; i < watch_existing_count(w); i++)
			wrong += watch_existing_file(w, i, &f, &err) < 0;
		tap_is_int(wrong, 0, "fuzz: 150 mutated headers read without harm");
		/* Live: cut copies given as incomplete, never as complete. */
		for (int i = 1; i <= 20; i++, nlive++) {
			snprintf(name, sizeof name, "live_%02d.%s", i, i % 2 ? "jpg" : "tif");
			write_file(live, name, i % 2 ? jpeg_bytes : tiff_bytes,
				   i % 2 ? jpeg_len * (size_t)i / 21 : TIFF_LEN * (size_t)i / 21);
		}
		n = collect(w, SETTLE_MS / 1000.0 + 2.0, nlive, g);
		wrong = 0;
		for (int i = 0; i < n; i++)
			wrong += g[i].complete;
		tap_ok(n == nlive && wrong == 0, "fuzz: %d cut files written live, %d reported, "
		       "%d taken", nlive, n, wrong);
		watch_free(w);
	}
	free(buf);
}

static void test_errors(void)
{
	const char *dir = folder("errors");
	char path[1024];
	watch_options o = { .dir = path, .settle_ms = SETTLE_MS };
	watch *w = NULL;
	watch_file f;
	cs_error err;

	snprintf(path, sizeof path, "%s/missing", dir);
	tap_is_int(watch_open(&o, &w, &err), CS_E_NOT_FOUND, "a folder that does not exist");
	tap_ok(strstr(err.msg, path) != NULL, "the message names it: %s", err.msg);
	write_file(dir, "plain", "x", 1);
	snprintf(path, sizeof path, "%s/plain", dir);
	tap_is_int(watch_open(&o, &w, &err), CS_E_INVALID, "a file is no folder");
	for (int m = WATCH_INOTIFY; m <= WATCH_POLL; m++) {
		snprintf(path, sizeof path, "%s/vanishing-%d", dir, m);
		mkdir(path, 0755);
		o.mode = (watch_mode)m;
		if (watch_open(&o, &w, &err) < 0) {
			tap_diag("watch_open: %s", err.msg);
			continue;
		}
		tap_is_int(watch_wait_file(w, 0, &f, &err), CS_E_TIMEOUT, "an empty folder: timeout");
		rmdir(path);
		is_count(watch_wait_file(w, 1000, &f, &err), CS_E_UNREACHABLE,
			 "the folder removed (%s): unreachable", mode_name((watch_mode)m));
		watch_free(w);
	}
}

/* Appends len bytes of data to dir/name, in one open and close. */
static bool append_closed(const char *dir, const char *name, const unsigned char *data,
			  size_t len)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0)
		return false;
	bool ok = write(fd, data, len) == (ssize_t)len;
	return close(fd) == 0 && ok;
}

/* inotify hears a writer close a file: one whose structure proves it
 * whole is given without waiting out the settle time (here 30 s); one
 * closed half-written, or of a kind nothing proves whole, still waits. */
static void test_closed(void)
{
	const char *dir = folder("closed");
	watch_options o = { .dir = dir, .mode = WATCH_INOTIFY, .settle_ms = 30000 };
	struct job j = { .dir = dir, .name = "IMG_0001.JPG.tmp", .final = "IMG_0001.JPG",
			 .data = jpeg_bytes, .len = jpeg_len, .chunks = 3, .gap_ms = 100 };
	struct got g[GOT_MAX];
	watch *w = NULL;
	cs_error err;
	int n;

	if (watch_open(&o, &w, &err) < 0) {
		tap_ok(1, "closed files # SKIP no inotify here: %s", err.msg);
		return;
	}
	jobs_start(&j, 1);
	jobs_join(&j, 1);
	n = collect(w, 5.0, 1, g);
	tap_ok(n == 1 && g[0].complete && !strcmp(g[0].name, "IMG_0001.JPG"),
	       "a JPEG renamed in whole is given without the 30 s settle");

	size_t half = jpeg_len / 2;
	tap_ok(append_closed(dir, "IMG_0002.JPG", jpeg_bytes, half), "half a JPEG, closed");
	n = collect(w, 1.5, 0, g);
	tap_is_int(n, 0, "it is neither given nor called broken");
	tap_ok(append_closed(dir, "IMG_0002.JPG", jpeg_bytes + half, jpeg_len - half),
	       "the rest, opened and closed again");
	n = collect(w, 5.0, 1, g);
	tap_ok(n == 1 && g[0].complete && g[0].size == (long long)jpeg_len,
	       "then it is given whole, once");

	tap_ok(append_closed(dir, "IMG_0003.CR3", jpeg_bytes, jpeg_len), "a CR3, closed");
	n = collect(w, 1.5, 0, g);
	tap_is_int(n, 0, "nothing proves a CR3 whole: it waits out the settle time");
	watch_free(w);
}

/* inotify hears a writer close a whole JPEG, or rename one in: it is
 * given at the very next look, not a moment later.  (A look with no
 * time to wait: the event is queued before close() and rename() return.) */
static void test_at_once(void)
{
	const char *dir = folder("at-once");
	watch_options o = { .dir = dir, .mode = WATCH_INOTIFY, .settle_ms = 30000 };
	struct job j = { .dir = dir, .name = "IMG_0002.JPG.tmp", .final = "IMG_0002.JPG",
			 .data = jpeg_bytes, .len = jpeg_len, .chunks = 2, .gap_ms = 50 };
	watch *w = NULL;
	watch_file f;
	cs_error err;
	int rc;

	if (watch_open(&o, &w, &err) < 0) {
		tap_ok(1, "read at once # SKIP no inotify here: %s", err.msg);
		return;
	}
	write_file(dir, "IMG_0001.JPG", jpeg_bytes, jpeg_len);
	rc = watch_wait_file(w, 0, &f, &err);
	tap_ok(rc == 0 && f.complete && !strcmp(strrchr(f.path, '/') + 1, "IMG_0001.JPG"),
	       "a whole JPEG its writer closed is given at the first look after the close "
	       "(%s)", rc ? err.msg : f.path);
	jobs_start(&j, 1);
	jobs_join(&j, 1);
	rc = watch_wait_file(w, 0, &f, &err);
	tap_ok(rc == 0 && f.complete && !strcmp(strrchr(f.path, '/') + 1, "IMG_0002.JPG"),
	       "a whole JPEG renamed in is given at the first look after the rename (%s)",
	       rc ? err.msg : f.path);
	watch_free(w);
}

/* Sets path's access and modification time to t (unix seconds). */
static bool set_time(const char *dir, const char *name, time_t t)
{
	char path[1024];
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return utimensat(AT_FDCWD, path, ts, 0) == 0;
}

/* What a writer does to a closed file's attributes alone is no new shot:
 * gphoto2 sets a file's time to the camera's right after closing it
 * (gp_file_save), whether before the watch read the file or after; a
 * mode changed later is nothing either.  A write in place is a new
 * version, as before. */
static void test_attributes(void)
{
	const char *dir = folder("attributes");
	watch_options o = { .dir = dir, .mode = WATCH_INOTIFY, .settle_ms = 300 };
	struct got g[GOT_MAX];
	watch *w = NULL;
	cs_error err;
	char path[1024];
	int n, fd;

	if (watch_open(&o, &w, &err) < 0) {
		tap_ok(1, "attributes # SKIP no inotify here: %s", err.msg);
		return;
	}
	write_file(dir, "IMG_0001.JPG", jpeg_bytes, jpeg_len);
	n = collect(w, 2.0, 1, g);
	tap_ok(n == 1 && g[0].complete, "a JPEG is given");
	tap_ok(set_time(dir, "IMG_0001.JPG", 1600000000), "then its time is set");
	n = collect(w, 1.5, 0, g);
	tap_is_int(n, 0, "a time set after it was given is no new version");
	snprintf(path, sizeof path, "%s/IMG_0001.JPG", dir);
	tap_ok(chmod(path, 0600) == 0, "then its mode is changed");
	n = collect(w, 1.5, 0, g);
	tap_is_int(n, 0, "nor is a mode changed");

	write_file(dir, "IMG_0002.JPG", jpeg_bytes, jpeg_len);
	tap_ok(set_time(dir, "IMG_0002.JPG", 1600000001),
	       "a JPEG closed and its time set at once, before the watch looks");
	n = collect(w, 1.5, 0, g);
	tap_ok(n == 1 && g[0].complete && !strcmp(g[0].name, "IMG_0002.JPG"),
	       "it is given once (%d)", n);

	/* One byte of the image data, in place: same inode, same size. */
	unsigned char b = jpeg_bytes[jpeg_len / 2] == 0x11 ? 0x22 : 0x11;
	snprintf(path, sizeof path, "%s/IMG_0002.JPG", dir);
	fd = open(path, O_WRONLY);
	tap_ok(fd >= 0 && pwrite(fd, &b, 1, (off_t)(jpeg_len / 2)) == 1 && close(fd) == 0,
	       "a byte of it written in place");
	n = collect(w, 1.5, 0, g);
	tap_ok(n == 1 && g[0].complete && g[0].size == (long long)jpeg_len,
	       "a write in place is a new version: given again (%d)", n);
	watch_free(w);
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The one file a watch gives within two seconds, or false. */
static bool one_file(watch *w, watch_file *f)
{
	cs_error err;
	int rc;
	double end = now() + 2.0;

	while ((rc = watch_wait_file(w, 100, f, &err)) == CS_E_TIMEOUT && now() < end)
		;
	if (rc && rc != CS_E_TIMEOUT)
		tap_diag("watch_wait_file: %s", err.msg);
	return rc == 0 && f->complete;
}

/* When a file was last written, where this computer's kernel timed the
 * write (a tmpfs here): its modification time, unless a time was set
 * afterwards (gphoto2 sets the camera's) or it was renamed in since.
 * Polling, which sees a file up to a poll interval late, is where it
 * tells more than the moment the file was first seen. */
static void test_written(void)
{
	char dir[] = "/dev/shm/copystand-written-XXXXXX", path[600];
	watch_options o = { .dir = dir, .mode = WATCH_POLL, .poll_ms = 400, .settle_ms = 200 };
	struct statfs sf;
	watch *w = NULL;
	watch_file f;
	cs_error err;

	if (statfs("/dev/shm", &sf) < 0 || sf.f_type != TMPFS_MAGIC || !mkdtemp(dir)) {
		tap_ok(1, "written # SKIP no tmpfs at /dev/shm");
		return;
	}
	if (watch_open(&o, &w, &err) < 0) {
		tap_ok(0, "watch_open %s: %s", dir, err.msg);
		rmdir(dir);
		return;
	}
	double before = now_real();
	write_file(dir, "IMG_0001.JPG", jpeg_bytes, jpeg_len);
	double after = now_real();
	bool got = one_file(w, &f);
	tap_ok(got && isfinite(f.written) && f.written > f.mtime && f.written <= f.mtime + 0.1,
	       "a file written here: its modification time and a tick (%.3f after it)",
	       got ? f.written - f.mtime : NAN);
	tap_ok(got && f.written >= after - 0.001 && f.written <= before + 0.2,
	       "it bounds the write (%.3f s after it ended)", got ? f.written - after : NAN);

	write_file(dir, "IMG_0002.JPG", jpeg_bytes, jpeg_len);
	tap_ok(set_time(dir, "IMG_0002.JPG", (time_t)now_real() - 5), "another, its time set");
	got = one_file(w, &f);
	tap_ok(got && isinf(f.written) && !strcmp(strrchr(f.path, '/') + 1, "IMG_0002.JPG"),
	       "a time set afterwards says nothing of the write (%.3f)", got ? f.written : NAN);

	write_file(dir, "IMG_0003.JPG.tmp", jpeg_bytes, jpeg_len);
	snprintf(path, sizeof path, "%s/IMG_0003.JPG.tmp", dir);
	char final[600];
	snprintf(final, sizeof final, "%s/IMG_0003.JPG", dir);
	sleep_ms(20);
	tap_ok(rename(path, final) == 0, "a third, written under a temporary name, renamed in");
	got = one_file(w, &f);
	tap_ok(got && isinf(f.written) && !strcmp(strrchr(f.path, '/') + 1, "IMG_0003.JPG"),
	       "a rename since the write says nothing of the write (%.3f)",
	       got ? f.written : NAN);

	/* Two files the same listing finds: they come in the order they
	 * were written, not by name. */
	write_file(dir, "shot_b.jpg", jpeg_bytes, jpeg_len);
	sleep_ms(30);
	write_file(dir, "shot_a.jpg", jpeg_bytes, jpeg_len);
	watch_file second;
	got = one_file(w, &f) && one_file(w, &second);
	tap_ok(got && !strcmp(strrchr(f.path, '/') + 1, "shot_b.jpg") &&
	       !strcmp(strrchr(second.path, '/') + 1, "shot_a.jpg"),
	       "shot_b.jpg, written first, comes first");
	tap_ok(got && f.before == fmin(f.first_seen, f.written) && f.before < second.before,
	       "each existed before its before: the earlier of its first sight and its write");
	watch_free(w);
	const char *const names[] = { "IMG_0001.JPG", "IMG_0002.JPG", "IMG_0003.JPG",
				      "shot_a.jpg", "shot_b.jpg" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	harness_home();
	if (!make_jpeg()) {
		harness_cleanup();
		return tap_skip_all("cannot write a JPEG with libjpeg");
	}
	make_tiff();
	tap_diag("a JPEG of %zu bytes, a TIFF of %d", jpeg_len, TIFF_LEN);
	test_errors();
	test_slow_chunks(WATCH_AUTO);
	test_slow_chunks(WATCH_POLL);
	test_renames(WATCH_AUTO);
	test_renames(WATCH_POLL);
	test_raw_jpeg();
	test_pair_waits();
	test_burst();
	test_never_complete();
	test_junk(WATCH_AUTO);
	test_junk(WATCH_POLL);
	test_existing();
	test_deleted();
	test_fuzz();
	test_closed();
	test_at_once();
	test_attributes();
	test_written();
	free(jpeg_bytes);
	harness_cleanup();
	return tap_done();
}
