/* copystand report as a collections manager uses it: a real upload of a
 * folder (JPEGs with and without EXIF thumbnails, a RAW+JPEG pair, a RAW
 * alone, a broken JPEG, hostile file names, an unknown number) against
 * the stand-in, a batch rolled back, a station session with every other
 * state; then the report of the batch and of the folder, read as HTML and
 * rendered by a headless chromium whose screenshot is probed
 * (tests/png_probe.py; skipped without chromium). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jpeglib.h>
#include <libexif/exif-data.h>

#include "harness.h"
#include "journal.h"
#include "tap.h"

#ifndef COPYSTAND_PNG_PROBE
#error "COPYSTAND_PNG_PROBE must name tests/png_probe.py"
#endif

static harness_server hs;
static char *pw_env, *dir;

/* Badge colours of core/report.c, by state. */
static const char *const colours[][2] = {
	{ "attached", "#1a7f37" }, { "queued", "#0b5cd5" }, { "unmatched", "#d9480f" },
	{ "ambiguous", "#6f42c1" }, { "held", "#8a6100" }, { "failed", "#c62828" },
	{ "kept local", "#0a7b83" }, { "rolled back", "#44546a" },
};
#define NCOLOURS (sizeof colours / sizeof colours[0])

/* --- programs and files ------------------------------------------------------------ */

static char *mkjpeg;             /* tests/tools/mkjpeg, from the command line */

/* Runs a program, its output dropped; its exit status, -1 when it could
 * not run to its end. */
static int run_quiet(const char *const *argv)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], (char **)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The bytes of a file (NUL-terminated, malloc'd), or NULL. */
static char *slurp_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	if (n >= 0 && (buf = malloc((size_t)n + 1)))
		buf[*len = fread(buf, 1, (size_t)n, f)] = '\0';
	fclose(f);
	return buf;
}

static char *html_of(const char *path)
{
	size_t n;
	return slurp_file(path, &n);
}

static void write_file(const char *folder, const char *name, const void *p, size_t n)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", folder, name) < 0 || !(f = fopen(path, "wb")))
		abort();
	fwrite(p, 1, n, f);
	fclose(f);
	free(path);
}

/* A real JPEG of w x h in folder: mkjpeg's seeded gradient. */
static void put_jpeg(const char *folder, const char *name, int w, int h, unsigned seed)
{
	char *path, ws[16], hs_[16], ss[16];

	snprintf(ws, sizeof ws, "%d", w);
	snprintf(hs_, sizeof hs_, "%d", h);
	snprintf(ss, sizeof ss, "%u", seed);
	if (asprintf(&path, "%s/%s", folder, name) < 0)
		abort();
	const char *argv[] = { mkjpeg, ws, hs_, ss, path, NULL };
	if (run_quiet(argv) != 0) {
		fprintf(stderr, "# %s could not write %s\n", mkjpeg, path);
		abort();
	}
	free(path);
}

/* A JPEG with an EXIF APP1 (written by libexif) that holds a thumbnail of
 * its own (160x120, another pattern); the thumbnail's bytes in *thumb. */
static void put_exif_jpeg(const char *name, int w, int h, unsigned seed,
			  unsigned char **thumb, size_t *tlen)
{
	char *main_path, *thumb_path;
	unsigned char *jpeg, *app1 = NULL, *out;
	unsigned int n = 0;
	size_t len;
	ExifData *ed = exif_data_new();

	put_jpeg(harness_home(), "main.jpg", w, h, seed);
	put_jpeg(harness_home(), "thumb.jpg", 160, 120, seed + 1000);
	if (asprintf(&main_path, "%s/main.jpg", harness_home()) < 0 ||
	    asprintf(&thumb_path, "%s/thumb.jpg", harness_home()) < 0 ||
	    !(jpeg = (unsigned char *)slurp_file(main_path, &len)) ||
	    !(*thumb = (unsigned char *)slurp_file(thumb_path, tlen)))
		abort();
	ed->data = malloc(*tlen);
	memcpy(ed->data, *thumb, *tlen);
	ed->size = (unsigned int)*tlen;
	exif_data_save_data(ed, &app1, &n);
	exif_data_unref(ed);
	out = malloc(len + 4 + n);
	memcpy(out, jpeg, 2);                         /* SOI */
	out[2] = 0xff;
	out[3] = 0xe1;
	out[4] = (unsigned char)((n + 2) >> 8);
	out[5] = (unsigned char)((n + 2) & 0xff);
	memcpy(out + 6, app1, n);
	memcpy(out + 6 + n, jpeg + 2, len - 2);
	write_file(dir, name, out, len + 4 + n);
	unlink(main_path);
	unlink(thumb_path);
	free(app1);
	free(out);
	free(jpeg);
	free(main_path);
	free(thumb_path);
}

struct decode_fail {
	struct jpeg_error_mgr mgr;
	jmp_buf jump;
};

static void decode_fail(j_common_ptr c)
{
	longjmp(((struct decode_fail *)c->err)->jump, 1);
}

/* The size of a JPEG in memory; false when it is none. */
static bool jpeg_size(const unsigned char *p, size_t n, unsigned *w, unsigned *h)
{
	struct jpeg_decompress_struct d;
	struct decode_fail f;

	d.err = jpeg_std_error(&f.mgr);
	f.mgr.error_exit = decode_fail;
	jpeg_create_decompress(&d);
	if (setjmp(f.jump)) {
		jpeg_destroy_decompress(&d);
		return false;
	}
	jpeg_mem_src(&d, p, (unsigned long)n);
	jpeg_read_header(&d, TRUE);
	*w = d.image_width;
	*h = d.image_height;
	jpeg_destroy_decompress(&d);
	return true;
}

/* --- the report's HTML ------------------------------------------------------------ */

static int count_of(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; p && (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* The card (<article>...</article>) that holds needle, malloc'd; NULL if
 * none or if several do. */
static char *card_with(const char *html, const char *needle)
{
	const char *at = html ? strstr(html, needle) : NULL, *start, *end;

	if (!at || strstr(at + 1, needle))
		return NULL;
	for (start = at; start > html && strncmp(start, "<article", 8) != 0; start--)
		;
	end = strstr(at, "</article>");
	if (strncmp(start, "<article", 8) != 0 || !end)
		return NULL;
	return strndup(start, (size_t)(end - start));
}

static int b64_value(char c)
{
	const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *at = c ? strchr(digits, c) : NULL;
	return at ? (int)(at - digits) : -1;
}

/* The bytes of the card's data: URI (malloc'd), or NULL. */
static unsigned char *card_image(const char *card, size_t *n)
{
	static const char prefix[] = "src=\"data:image/jpeg;base64,";
	const char *p = card ? strstr(card, prefix) : NULL;
	unsigned char *out;
	unsigned long acc = 0;
	int bits = 0;

	*n = 0;
	if (!p)
		return NULL;
	p += sizeof prefix - 1;
	out = malloc(strcspn(p, "\"") + 1);
	for (; *p && *p != '"' && *p != '='; p++) {
		int v = b64_value(*p);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (unsigned)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[(*n)++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	return out;
}

enum thumb_kind { EXIF, DECODED, PLACEHOLDER };

struct want {
	const char *key;          /* a file of the card, as the HTML shows it */
	const char *number;
	const char *taxon;        /* NULL: no taxon line */
	const char *badge;
	long long record;         /* 0: no link */
	enum thumb_kind thumb;
	unsigned char *const *exif; /* the EXIF thumbnail it must show */
	const size_t *exif_len;
	const char *text[2];      /* more it must say (a placeholder, a reason) */
};

static void check_card(const char *html, const struct want *w)
{
	char *card = card_with(html, w->key), expect[512];
	size_t n;
	unsigned char *img = card_image(card, &n);
	unsigned iw = 0, ih = 0;

	if (!tap_ok(card != NULL, "%s: one card", w->key))
		return;
	snprintf(expect, sizeof expect, "<div class=\"num\">%s</div>", w->number);
	tap_ok(strstr(card, expect) != NULL, "%s: catalog number %s", w->key, w->number);
	snprintf(expect, sizeof expect, "<div class=\"taxon\">%s</div>", w->taxon ? w->taxon : "");
	tap_ok(w->taxon ? strstr(card, expect) != NULL : strstr(card, "class=\"taxon") == NULL,
	       "%s: taxon %s", w->key, w->taxon ? w->taxon : "(none)");
	tap_ok(strstr(card, w->badge) != NULL, "%s: state %s", w->key, w->badge);
	snprintf(expect, sizeof expect, "href=\"%s/specify/view/collectionobject/%lld/\"",
		 hs.url, w->record);
	tap_ok(w->record ? strstr(card, expect) != NULL : strstr(card, "href=") == NULL,
	       "%s: %s", w->key, w->record ? expect : "no link");
	switch (w->thumb) {
	case EXIF:
		tap_ok(img && n == *w->exif_len && memcmp(img, *w->exif, n) == 0,
		       "%s: the EXIF thumbnail, byte for byte (%zu bytes)", w->key, n);
		break;
	case DECODED:
		tap_ok(img && n > 4 && img[n - 2] == 0xff && img[n - 1] == 0xd9 &&
		       jpeg_size(img, n, &iw, &ih) && iw == 320 && ih == 240,
		       "%s: a 320x240 JPEG made from the image (%ux%u)", w->key, iw, ih);
		break;
	case PLACEHOLDER:
		tap_ok(!img && strstr(card, "class=\"ph\""), "%s: a placeholder", w->key);
		break;
	}
	for (int i = 0; i < 2 && w->text[i]; i++)
		tap_ok(strstr(card, w->text[i]) != NULL, "%s: says %s", w->key, w->text[i]);
	free(img);
	free(card);
}

/* Each key's card comes after the one before. */
static bool in_order(const char *html, const struct want *w, size_t n)
{
	const char *last = html;

	for (size_t i = 0; html && i < n; i++) {
		const char *at = strstr(html, w[i].key);
		if (!at || at < last) {
			tap_diag("%s is out of order", w[i].key);
			return false;
		}
		last = at;
	}
	return html != NULL;
}

/* The sheet has cards cards, and those of wants in this order. */
static void check_sheet(const char *html, const struct want *wants, size_t n, int cards,
			const char *what)
{
	tap_is_int(count_of(html, "<article"), cards, what);
	tap_ok(in_order(html, wants, n), "cards in capture order");
	for (size_t i = 0; i < n; i++)
		check_card(html, &wants[i]);
}

/* --- running copystand -------------------------------------------------------------- */

static int run_report(char **out, const char *a1, const char *a2, const char *a3,
		      const char *a4, const char *a5)
{
	const char *argv[] = { "report", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, a1, a2, a3, a4, a5, NULL };
	const char *env[] = { pw_env, NULL };
	return harness_run(argv, env, out);
}

static bool has(const char *out, const char *what)
{
	return out && strstr(out, what);
}

/* Requests the stand-in has had (a number of a JSON object, 0 if none). */
static int number_in(const cJSON *o, const char *key)
{
	const cJSON *n = cJSON_GetObjectItem(o, key);
	return cJSON_IsNumber(n) ? n->valueint : 0;
}

static int requests_of(const char *key)
{
	cJSON *st = standin_state(hs.standin);
	int n = standin_requests(st, key);
	cJSON_Delete(st);
	return n;
}

/* Runs a report that must succeed: its summary, where it went, and the
 * records and their taxa asked for in one lookup each; its HTML. */
static char *report_ok(const char *const *argv, const char *summary, const char *path,
		       const char *what)
{
	const char *env[] = { pw_env, NULL };
	int objects = requests_of("GET /api/specify/collectionobject/");
	int taxa = requests_of("GET /api/specify/taxon/");
	char *out = NULL;
	int rc = harness_run(argv, env, &out);

	tap_is_int(rc, 0, what);
	tap_ok(has(out, summary) && has(out, path), "it says: %s, written to %s", summary, path);
	if (rc)
		tap_diag("%s", out);
	tap_is_int(requests_of("GET /api/specify/collectionobject/") - objects, 1,
		   "the records of every card in one lookup");
	tap_is_int(requests_of("GET /api/specify/taxon/") - taxa, 1, "their taxa in one more");
	free(out);
	return html_of(path);
}

/* --- the cases ----------------------------------------------------------------------- */

static unsigned char *thumb1, *thumb2;
static size_t thumb1_len, thumb2_len;
static char *batch_html;

static const struct want batch_cards[] = {
	{ "<li>000000001.jpg", "000000001", "Esox lucius", "✓ attached", 1, EXIF,
	  &thumb1, &thumb1_len },
	{ "<li>000000001_2.jpg", "000000001", "Esox lucius", "✓ attached", 1, DECODED },
	{ "<li>000000002.cr2", "000000002", "Perca fluviatilis", "✓ attached", 2, EXIF,
	  &thumb2, &thumb2_len, .text = { "<li>000000002.jpg</li>" } },
	{ "<li>000000003.cr2", "000000003", "Salmo salar", "✓ attached", 3, PLACEHOLDER,
	  .text = { "RAW file: no preview" } },
	{ "<li>000000005_&lt;script&gt;.jpg", "000000005", "Esox lucius", "✓ attached", 5,
	  DECODED },
	{ "<li>000000006 a&amp;b&quot;&#39;.jpg", "000000006", "Perca fluviatilis",
	  "✓ attached", 6, DECODED },
	{ "<li>000000007.jpg", "000000007", "Salmo salar", "✓ attached", 7, PLACEHOLDER,
	  .text = { "the JPEG cannot be read" } },
};
#define NBATCH (sizeof batch_cards / sizeof batch_cards[0])

static void make_captures(void)
{
	char *raw = harness_make_file("raw.bin", 40000, 7), *broken;
	unsigned char junk[3000];
	FILE *f;

	put_exif_jpeg("000000001.jpg", 1600, 1200, 1, &thumb1, &thumb1_len);
	put_jpeg(dir, "000000001_2.jpg", 1200, 900, 2);
	put_exif_jpeg("000000002.jpg", 800, 600, 3, &thumb2, &thumb2_len);
	/* RAW files: bytes that are no JPEG. */
	f = fopen(raw, "rb");
	if (!f || fread(junk, 1, sizeof junk, f) != sizeof junk)
		abort();
	fclose(f);
	write_file(dir, "000000002.cr2", junk, sizeof junk);
	write_file(dir, "000000003.cr2", junk + 1, sizeof junk - 1);
	put_jpeg(dir, "000000005_<script>.jpg", 640, 480, 5);
	put_jpeg(dir, "000000006 a&b\"'.jpg", 1280, 960, 6);
	/* Starts like a JPEG, then garbage: libjpeg gives up on it. */
	junk[0] = 0xff, junk[1] = 0xd8, junk[2] = 0xff, junk[3] = 0x01;
	write_file(dir, "000000007.jpg", junk, sizeof junk);
	put_jpeg(dir, "000099999.jpg", 800, 600, 9);
	if (asprintf(&broken, "%s/later", dir) < 0)
		abort();
	mkdir(broken, 0700);
	put_jpeg(broken, "000000004.jpg", 1024, 768, 4);
	free(broken);
	unlink(raw);
	free(raw);
}

static void test_batch_report(void)
{
	const char *up[] = { "upload", "--server", hs.url, "--user", hs.user,
			     "--collection", hs.collection, dir, NULL };
	const char *env[] = { pw_env, NULL };
	char *out = NULL, *path = NULL;
	int rc;

	rc = harness_run(up, env, &out);
	tap_ok(rc == 1 && has(out, "batch 1: 8 attached"),
	       "upload attaches the 8 files with a number Specify knows (batch 1)");
	if (!has(out, "batch 1: 8 attached"))
		tap_diag("%s", out);
	free(out);

	/* Only the user: server and collection are the batch's. */
	const char *argv[] = { "report", "--user", hs.user, "1", NULL };
	if (asprintf(&path, "%s/report-1.html", harness_home()) < 0)
		abort();
	batch_html = report_ok(argv, "7 captures, 8 files (8 attached)", path,
			       "copystand report 1 writes report-1.html here");
	free(path);
	tap_ok(batch_html && has(batch_html, "<!DOCTYPE html>") && has(batch_html, "</html>"),
	       "the report is one HTML document");
	check_sheet(batch_html, batch_cards, NBATCH, NBATCH,
		    "one card per capture: the RAW+JPEG pair is one");
	tap_ok(!has(batch_html, "<script") && !has(batch_html, "a&b\""),
	       "hostile file names are escaped");
	tap_ok(has(batch_html, "Batch 1 (upload)") && has(batch_html, "<dd>Fish</dd>") &&
	       has(batch_html, hs.url) && has(batch_html, "8 ✓ attached"),
	       "the header: batch, collection, server, counts");
	tap_ok(!has(batch_html, "http-equiv") && !has(batch_html, "src=\"http") &&
	       !has(batch_html, "url(") && !has(batch_html, "<link"),
	       "self-contained: nothing loaded from elsewhere");
	tap_ok(!has(batch_html, "000099999"), "the unknown number was not uploaded: not in the batch");
}

static void test_offline(void)
{
	char *out = NULL, *html;
	int rc = run_report(&out, "--server", "http://127.0.0.1:1", "--output", "offline.html",
			    "1");
	const char *argv[] = { "report", "--output", "nouser.html", "1", NULL };

	tap_is_int(rc, 0, "without Specify the report is written all the same");
	tap_ok(has(out, "taxa not looked up") && has(out, "offline.html"),
	       "and the command says the taxa are missing");
	free(out);
	html = html_of("offline.html");
	tap_is_int(count_of(html, "taxon unknown (Specify unreachable)"), NBATCH,
		   "each card says: taxon unknown (Specify unreachable)");
	tap_is_int(count_of(html, "data:image/jpeg;base64,"), 5, "thumbnails need no Specify");
	free(html);

	/* No user anywhere: nothing to log in with, the report still comes. */
	rc = harness_run(argv, NULL, &out);
	tap_ok(rc == 0 && has(out, "taxa not looked up"), "no user: written, saying why no taxa");
	free(out);
}

/* A station session with the states an upload never leaves, journaled as
 * the station does, in the same folder. */
static void add_station_session(void)
{
	char *jpath = journal_default_path(NULL), *paths[7];
	static const char *const names[] = { "000099999.jpg", "000000008.jpg", "000000009.jpg",
					     "ALT-1.jpg", "000000010.jpg", "000000010.cr2",
					     "000000011.jpg" };
	journal *j = NULL;
	cs_error err;
	long long batch = 0;

	put_jpeg(dir, "000000009.jpg", 800, 600, 19);
	put_jpeg(dir, "000000010.jpg", 800, 600, 20);
	put_jpeg(dir, "ALT-1.jpg", 800, 600, 21);
	write_file(dir, "000000010.cr2", "not a JPEG", 10);
	for (int i = 0; i < 7; i++)
		if (asprintf(&paths[i], "%s/%s", dir, names[i]) < 0)
			abort();
	journal_item items[] = {
		{ .path = paths[0], .name = (char *)names[0], .target = "catalog-number",
		  .identifier = "000099999", .state = JS_UNMATCHED,
		  .reason = "no collection object has catalog number 000099999 in Fish" },
		{ .path = paths[1], .name = (char *)names[1], .target = "catalog-number",
		  .identifier = "000000008", .record_table = "collectionobject", .record_id = 8,
		  .state = JS_FAILED,
		  .reason = "<img src=x onerror=alert(1)> & \"too large\" for the asset server" },
		{ .path = paths[2], .name = (char *)names[2], .target = "catalog-number",
		  .identifier = "000000009", .record_table = "collectionobject", .record_id = 9,
		  .state = JS_HELD, .reason = "label mismatch: the label says 000000019" },
		{ .path = paths[3], .name = (char *)names[3], .target = "alt-catalog-number",
		  .identifier = "ALT-1", .state = JS_AMBIGUOUS,
		  .reason = "2 records have Alt Cat Number ALT-1" },
		{ .path = paths[4], .name = (char *)names[4], .target = "catalog-number",
		  .identifier = "000000010", .record_table = "collectionobject", .record_id = 10,
		  .state = JS_MATCHED },
		/* Its RAW, kept here only: one card, two states. */
		{ .path = paths[5], .name = (char *)names[5], .target = "catalog-number",
		  .identifier = "000000010", .record_table = "collectionobject", .record_id = 10,
		  .state = JS_LOCAL },
		/* Elsewhere: not in the folder. */
		{ .path = "/elsewhere/000000011.jpg", .name = (char *)names[6],
		  .target = "catalog-number", .identifier = "000000011",
		  .record_table = "collectionobject", .record_id = 11, .state = JS_MATCHED },
	};
	if (journal_open(jpath, &j, &err) ||
	    journal_batch_new(j, "station", hs.url, "Fish", 4, NULL, &batch, &err))
		tap_diag("journal: %s", err.msg);
	for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
		items[i].batch_id = batch;
	tap_ok(batch == 4 && journal_items_add(j, items, 7, NULL, &err) == 0,
	       "a station session (batch 4) journaled in the same folder");
	journal_close(j);
	for (int i = 0; i < 7; i++)
		free(paths[i]);
	free(jpath);
}

static const struct want folder_cards[] = {
	{ "<li>000000001.jpg", "000000001", "Esox lucius", "✓ attached", 1, EXIF,
	  &thumb1, &thumb1_len },
	{ "<li>000000007.jpg", "000000007", "Salmo salar", "✓ attached", 7, PLACEHOLDER },
	/* Rolled back in batch 2, attached again in batch 3: as it is now. */
	{ "<li>000000004.jpg", "000000004", "Salmo trutta", "✓ attached", 4, DECODED },
	{ "<li>000099999.jpg", "000099999", NULL, "unmatched", 0, DECODED,
	  .text = { "no collection object has catalog number 000099999 in Fish" } },
	{ "<li>000000008.jpg", "000000008", "Salmo trutta", "✗ failed", 8, PLACEHOLDER,
	  .text = { "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;too large&quot;",
		    "file not on disk" } },
	{ "<li>000000009.jpg", "000000009", "Esox lucius", "held", 9, DECODED,
	  .text = { "label mismatch: the label says 000000019" } },
	{ "<li>ALT-1.jpg", "ALT-1", NULL, "ambiguous", 0, DECODED,
	  .text = { "Alt Cat Number ALT-1" } },
	{ "<li>000000010.jpg", "000000010", "Perca fluviatilis", "queued", 10, DECODED,
	  .text = { "000000010.jpg <span class=\"st\">matched</span>" } },
	{ "<li>000000010.cr2", "000000010", "Perca fluviatilis", "kept local", 10, DECODED,
	  .text = { "000000010.cr2 <span class=\"st\">local</span>" } },
};
#define NFOLDER (sizeof folder_cards / sizeof folder_cards[0])

static char *folder_html;

static void test_folder_report(void)
{
	const char *env[] = { pw_env, NULL };
	char *later, *out = NULL, *path, *html;
	int rc;

	if (asprintf(&later, "%s/later", dir) < 0 || asprintf(&path, "%s/report.html", dir) < 0)
		abort();
	const char *up[] = { "upload", "--server", hs.url, "--user", hs.user,
			     "--collection", hs.collection, later, NULL };
	const char *rb[] = { "rollback", "--server", hs.url, "--user", hs.user,
			     "--collection", hs.collection, "2", NULL };
	rc = harness_run(up, env, &out);
	free(out);
	int rc2 = harness_run(rb, env, &out);
	tap_ok(rc == 0 && rc2 == 0 && has(out, "batch 2: 1 removed"),
	       "a subfolder uploaded (batch 2) and rolled back");
	free(out);
	rc = harness_run(up, env, &out);
	tap_ok(rc == 0 && has(out, "batch 3: 1 attached"), "and uploaded again (batch 3)");
	free(out);
	rc = run_report(&out, "--output", "rolled.html", "2", NULL, NULL);
	html = html_of("rolled.html");
	struct want rolled = { "<li>000000004.jpg", "000000004", "Salmo trutta", "rolled back",
			       4, DECODED };
	tap_is_int(rc, 0, "copystand report 2");
	check_card(html, &rolled);
	free(html);
	free(out);
	add_station_session();

	const char *argv[] = { "report", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, dir, NULL };
	folder_html = report_ok(argv, "13 captures, 15 files", path,
				"copystand report FOLDER writes FOLDER/report.html, counting "
				"every batch's files in it");
	check_sheet(folder_html, folder_cards, NFOLDER, 13,
		    "7 captures of batch 1, 1 of batches 2 and 3, 5 of the session, none from "
		    "elsewhere");
	tap_ok(!has(folder_html, "<img src=x") && !has(folder_html, "<script"),
	       "a hostile reason is escaped");
	tap_ok(has(folder_html, "Session folder") &&
	       has(folder_html, "1 ✗ failed") && has(folder_html, "9 ✓ attached") &&
	       has(folder_html, "1 queued") && has(folder_html, "1 kept local") &&
	       has(folder_html, "1 held") && has(folder_html, "1 ambiguous") &&
	       has(folder_html, "1 unmatched") && !has(folder_html, "rolled back"),
	       "the header counts files per state");
	free(later);
	free(path);
}

static void test_errors(void)
{
	char *out = NULL, *empty, *bad;
	int rc;

	rc = run_report(&out, "999", NULL, NULL, NULL, NULL);
	tap_ok(rc == 1 && has(out, "there is no batch 999") && has(out, "copystand batches"),
	       "an unknown batch: says so and what lists them, exit 1");
	tap_ok(access("report-999.html", F_OK) != 0, "and writes nothing");
	free(out);

	if (asprintf(&empty, "%s/empty", harness_home()) < 0 ||
	    asprintf(&bad, "%s/000000001.jpg/report.html", dir) < 0)
		abort();
	mkdir(empty, 0700);
	rc = run_report(&out, empty, NULL, NULL, NULL, NULL);
	tap_ok(rc == 1 && has(out, "no file of the journal lies in") &&
	       has(out, "copystand upload"), "a folder with nothing journaled: says so, exit 1");
	tap_ok(harness_dir_is(empty, ""), "and leaves the folder empty");
	free(out);

	char *file = strndup(bad, strlen(bad) - strlen("/report.html"));
	rc = run_report(&out, file, NULL, NULL, NULL, NULL);
	tap_ok(rc == 1 && has(out, "000000001.jpg is not a folder"), "a file is no folder: exit 1");
	free(out);
	free(file);

	rc = run_report(&out, "--output", bad, "1", NULL, NULL);
	tap_ok(rc == 1 && has(out, "cannot write the report to") && has(out, "--output"),
	       "an output that cannot be written: says where and what to do, exit 1");
	free(out);

	const char *none[] = { "report", NULL };
	rc = harness_run(none, NULL, &out);
	tap_ok(rc == 2 && has(out, "usage: copystand report"), "no argument: usage, exit 2");
	free(out);
	free(empty);
	free(bad);
}

/* --- the rendered report ------------------------------------------------------------- */

static cJSON *screenshot(const char *html, const char *png)
{
	char *url, *profile, *shot, *cmd, *text = NULL;
	size_t len = 0;
	cJSON *probe = NULL;

	if (asprintf(&url, "file://%s/%s", harness_home(), html) < 0 ||
	    asprintf(&profile, "--user-data-dir=%s/chromium", harness_home()) < 0 ||
	    asprintf(&shot, "--screenshot=%s/%s", harness_home(), png) < 0)
		abort();
	const char *argv[] = { "timeout", "120", "chromium", "--headless", "--no-sandbox",
			       "--disable-gpu", "--disable-quic", "--no-first-run",
			       "--disable-background-networking", "--disable-component-update",
			       "--disable-sync", profile, "--window-size=1200,900", shot, url, NULL };
	int rc = run_quiet(argv);
	if (rc != 0)
		tap_diag("chromium exited %d", rc);
	if (asprintf(&cmd, "python3 '%s' '%s/%s'", COPYSTAND_PNG_PROBE, harness_home(), png) < 0)
		abort();
	for (size_t i = 0; i < NCOLOURS; i++) {
		char *more;
		if (asprintf(&more, "%s '%s'", cmd, colours[i][1]) < 0)
			abort();
		free(cmd);
		cmd = more;
	}
	FILE *p = popen(cmd, "r");
	if (p && getline(&text, &len, p) > 0)
		probe = cJSON_Parse(text);
	if (p)
		pclose(p);
	free(text);
	free(cmd);
	free(url);
	free(profile);
	free(shot);
	return probe;
}

static int colour_pixels(const cJSON *probe, const char *colour)
{
	return number_in(cJSON_GetObjectItem(probe, "colours"), colour);
}

static double box(const cJSON *b, int i)
{
	return cJSON_GetNumberValue(cJSON_GetArrayItem(b, i));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The batch's first row: pictures for the two EXIF thumbnails and the
 * decoded one in the first three columns, side by side and centred on one
 * line, none for the RAW alone in the fourth; only green badges. */
static void check_batch_shot(const cJSON *probe)
{
	const cJSON *pics = cJSON_GetObjectItem(probe, "pictures"), *first = cJSON_GetArrayItem(pics, 0);
	double cy = box(first, 1) + box(first, 3) / 2, cx[8];
	int row = 0;
	const cJSON *b;

	cJSON_ArrayForEach(b, pics) {
		double y = box(b, 1) + box(b, 3) / 2;
		/* Tiles are 8 px: centres agree to a tile. */
		if (y > cy - 10 && y < cy + 10 && row < 8)
			cx[row++] = box(b, 0) + box(b, 2) / 2;
	}
	qsort(cx, (size_t)row, sizeof *cx, cmp_double);
	tap_is_int(row, 3, "the first row shows 3 pictures (the RAW alone has none)");
	tap_ok(row == 3 && cx[0] < cx[1] && cx[1] < cx[2] &&
	       (cx[1] - cx[0]) - (cx[2] - cx[1]) < 6 && (cx[1] - cx[0]) - (cx[2] - cx[1]) > -6 &&
	       cx[1] - cx[0] > 200 && box(first, 1) > 150,
	       "side by side in three grid columns, below the header");
	tap_ok(cJSON_GetArraySize(pics) == 5,
	       "5 pictures in all: the first row and the second row's two (%d)",
	       cJSON_GetArraySize(pics));
	tap_ok(colour_pixels(probe, colours[0][1]) > 200, "green badges are drawn");
	for (size_t i = 1; i < NCOLOURS; i++)
		tap_is_int(colour_pixels(probe, colours[i][1]), 0, colours[i][0]);
}

static void test_screenshots(void)
{
	cJSON *probe;

	if (run_quiet((const char *const[]){ "chromium", "--version", NULL }) != 0) {
		printf("ok %d # SKIP chromium is not installed (scripts/deps.sh test installs it)\n",
		       ++tap_count);
		return;
	}
	probe = screenshot("report-1.html", "batch.png");
	tap_ok(probe && cJSON_GetNumberValue(cJSON_GetObjectItem(probe, "width")) == 1200,
	       "chromium renders the batch report to a 1200 px screenshot");
	if (probe)
		check_batch_shot(probe);
	cJSON_Delete(probe);

	probe = screenshot("captures/report.html", "folder.png");
	tap_ok(probe != NULL, "and the folder's");
	/* Every state but rolled back (that file was attached again). */
	for (size_t i = 0; i + 1 < NCOLOURS; i++)
		tap_ok(colour_pixels(probe, colours[i][1]) > 50, "its %s badges are drawn in %s",
		       colours[i][0], colours[i][1]);
	tap_is_int(colour_pixels(probe, colours[NCOLOURS - 1][1]), 0, "and no rolled back one");
	cJSON_Delete(probe);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fputs("usage: test-report MKJPEG\n", stderr);
		return 2;
	}
	/* Absolute: the test works in its HOME. */
	if (!(mkjpeg = realpath(argv[1], NULL))) {
		perror(argv[1]);
		return 2;
	}
	if (harness_server_start(&hs, NULL) || !hs.standin)
		return hs.standin ? (tap_ok(0, "start the stand-in"), tap_done())
				  : tap_skip_all("needs the stand-in's fixture");
	if (asprintf(&pw_env, "COPYSTAND_PASSWORD=%s", hs.password) < 0 ||
	    asprintf(&dir, "%s/captures", harness_home()) < 0 || chdir(harness_home()) != 0)
		abort();
	mkdir(dir, 0700);
	make_captures();
	test_batch_report();
	test_offline();
	test_folder_report();
	test_errors();
	test_screenshots();
	harness_server_stop(&hs);
	free(batch_html);
	free(folder_html);
	free(thumb1);
	free(thumb2);
	free(pw_env);
	free(dir);
	free(mkjpeg);
	harness_cleanup();
	return tap_done();
}
