/* hardware/barcode on synthetic specimen photos that mkbarcode (its path
 * is argv[1]) writes into a temporary folder: Code 128 labels of several
 * sizes and places, small ones in 24 MP frames, two codes in one photo,
 * DataMatrix (built with libdmtx), photos without codes, and files that
 * are no good JPEG.  zbarimg, where installed, first reads the generator's
 * photos on its own, so that a fault of mkbarcode is not taken for one of
 * the reader.  Built without zbar, only the CS_E_CONFIG answer is checked. */
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "barcode.h"
#include "tap.h"

static const char *mkbarcode;
static char dir[PATH_MAX];
static char made[64][PATH_MAX];
static int nmade;

static void skip(const char *what, const char *why)
{
	printf("ok %d - %s # SKIP %s\n", ++tap_count, what, why);
}

/* A new file name in the temporary folder, removed at the end. */
static const char *scratch(const char *name)
{
	if (nmade == (int)(sizeof made / sizeof made[0]))
		abort();
	snprintf(made[nmade], sizeof made[0], "%s/%s", dir, name);
	return made[nmade++];
}

/* Runs mkbarcode with args (NULL-terminated) and name as its output;
 * the photo's path, or NULL (said as a diagnostic) when it failed. */
static const char *photo(const char *name, const char *const *args)
{
	const char *argv[32] = { mkbarcode };
	const char *path = scratch(name);
	int n = 1, status;
	pid_t pid;

	while (*args)
		argv[n++] = *args++;
	argv[n++] = path;
	if (posix_spawn(&pid, mkbarcode, NULL, NULL, (char **)argv, environ) != 0 ||
	    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		tap_diag("mkbarcode could not write %s", name);
		return NULL;
	}
	return path;
}

#define PHOTO(name, ...) photo((name), (const char *const[]){ __VA_ARGS__, NULL })

/* What zbarimg reads in path, one text a line, or NULL (malloc'd). */
static char *zbarimg(const char *path)
{
	char cmd[PATH_MAX + 64], *out = calloc(1, 4096);
	size_t len = 0, got;
	FILE *p;

	snprintf(cmd, sizeof cmd, "zbarimg --quiet --raw '%s' 2>/dev/null", path);
	if (!out || !(p = popen(cmd, "r"))) {
		free(out);
		return NULL;
	}
	while (len < 4095 && (got = fread(out + len, 1, 4095 - len, p)) > 0)
		len += got;
	pclose(p);
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	return out;
}

static void check_zbarimg(const char *path, const char *want, const char *what)
{
	char *got = path ? zbarimg(path) : NULL;

	tap_is_str(got, want, what);
	free(got);
}

static bool has(const barcode_result *res, size_t n, const char *text, const char *symbology)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(res[i].text, text) == 0 && strcmp(res[i].symbology, symbology) == 0)
			return true;
	return false;
}

/* Reads path and checks that it holds exactly the one code want. */
static void check_one(barcode_reader *r, const char *path, const char *want,
		      const char *symbology, const char *what)
{
	barcode_result res[4];
	cs_error err = { 0 };
	size_t n = 99;
	int ret = path ? barcode_read_file(r, path, res, 4, &n, &err) : -1;

	if (!tap_ok(ret == 0 && n == 1 && has(res, n, want, symbology), "%s", what)) {
		tap_diag("ret %d (%s), %zu codes", ret, err.msg, n);
		for (size_t i = 0; i < n && i < 4; i++)
			tap_diag("  %s \"%s\"", res[i].symbology, res[i].text);
	}
}

static void check_none(barcode_reader *r, const char *path, const char *what)
{
	barcode_result res[4];
	cs_error err = { 0 };
	size_t n = 99;
	int ret = path ? barcode_read_file(r, path, res, 4, &n, &err) : -1;

	if (!tap_ok(ret == 0 && n == 0, "%s", what))
		tap_diag("ret %d (%s), %zu codes, the first \"%s\"", ret, err.msg, n,
			 n > 0 ? res[0].text : "");
}

/* Reading path fails with code and a message that holds word. */
static void check_fails(barcode_reader *r, const char *path, int code, const char *word,
			const char *what)
{
	barcode_result res[4];
	cs_error err = { 0 };
	size_t n = 99;
	int ret = barcode_read_file(r, path, res, 4, &n, &err);

	if (!tap_ok(ret == code && n == 0 && strstr(err.msg, word), "%s", what))
		tap_diag("ret %d, n %zu, \"%s\"", ret, n, err.msg);
}

/* --- files that are no good JPEG ------------------------------------------ */

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)size)) && fread(buf, 1, (size_t)size, f) == (size_t)size)
		*len = (size_t)size;
	else
		*len = 0;
	if (f)
		fclose(f);
	return buf;
}

static const char *spill(const char *name, const char *bytes, size_t len)
{
	const char *path = scratch(name);
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(bytes, 1, len, f) != len || fclose(f) != 0)
		tap_diag("cannot write %s: %s", path, strerror(errno));
	return path;
}

static void test_bad_files(barcode_reader *r, const char *good)
{
	size_t len, sof;
	char *jpeg = good ? slurp(good, &len) : NULL;

	if (!jpeg || len < 1000) {
		tap_ok(0, "bad files: a good JPEG to spoil");
		free(jpeg);
		return;
	}
	check_fails(r, spill("half.jpg", jpeg, len / 2), CS_E_INVALID, "cut short",
		    "a JPEG cut in half: CS_E_INVALID, cut short");
	check_fails(r, spill("no-eoi.jpg", jpeg, len - 2), CS_E_INVALID, "cut short",
		    "a JPEG without its last two bytes (EOI): CS_E_INVALID, cut short");
	check_fails(r, spill("header.jpg", jpeg, 300), CS_E_INVALID, "label check",
		    "a JPEG cut within its header: CS_E_INVALID");

	/* A run of bytes in the middle of the picture data overwritten: a
	 * marker where data should be. */
	memset(jpeg + len / 2, 0xff, 64);
	jpeg[len / 2 + 64] = (char)0xd3;
	check_fails(r, spill("spoilt.jpg", jpeg, len), CS_E_INVALID, "damaged",
		    "a JPEG with bytes overwritten mid-picture: CS_E_INVALID, damaged");

	check_fails(r, spill("text.jpg", "V000123\n", 8), CS_E_INVALID, "no JPEG",
		    "a text file: CS_E_INVALID, no JPEG");
	check_fails(r, spill("empty.jpg", "", 0), CS_E_INVALID, "no JPEG",
		    "an empty file: CS_E_INVALID, no JPEG");
	check_fails(r, "/nonexistent/V000123.jpg", CS_E_IO, "cannot open",
		    "a missing file: CS_E_IO, cannot open");

	/* The frame size in the header (SOF0: FF C0, length, precision,
	 * height, width) made 60000 x 60000. */
	free(jpeg);
	jpeg = slurp(good, &len);
	for (sof = 2; sof + 9 < len; sof++)
		if ((unsigned char)jpeg[sof] == 0xff && (unsigned char)jpeg[sof + 1] == 0xc0)
			break;
	if (!tap_ok(sof + 9 < len, "bad files: the good JPEG has a baseline frame header")) {
		free(jpeg);
		return;
	}
	memcpy(jpeg + sof + 5, "\xea\x60\xea\x60", 4);
	check_fails(r, spill("huge.jpg", jpeg, len), CS_E_INVALID, "pixels",
		    "a header of 60000 x 60000 pixels: CS_E_INVALID before any memory is taken");
	free(jpeg);
}

/* --- the reader ------------------------------------------------------------ */

static void test_arguments(barcode_reader *r, const char *good)
{
	barcode_result res[2];
	cs_error err = { 0 };
	size_t n = 99;

	tap_is_int(barcode_read_file(NULL, good, res, 2, &n, &err), CS_E_INVALID,
		   "no reader: CS_E_INVALID");
	tap_is_int(n, 0, "no reader: no codes");
	tap_is_int(barcode_read_file(r, good, res, 0, &n, &err), CS_E_INVALID,
		   "no room for results: CS_E_INVALID");
	tap_is_int(barcode_read_file(r, NULL, res, 2, &n, &err), CS_E_INVALID,
		   "no file: CS_E_INVALID");
}

static void test_code128(barcode_reader *r, const char *label)
{
	static const char ascii1[] = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNO";
	static const char ascii2[] = "PQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
	const char *a1 = PHOTO("ascii1.jpg", "--size", "2400x600", "--module", "2", ascii1);
	const char *a2 = PHOTO("ascii2.jpg", "--size", "2400x600", "--module", "2", ascii2);

	if (system("command -v zbarimg >/dev/null 2>&1") == 0) {
		check_zbarimg(label, "000000123", "mkbarcode: zbarimg reads its Code 128");
		check_zbarimg(a1, ascii1, "mkbarcode: zbarimg reads printable ASCII, first half");
		check_zbarimg(a2, ascii2, "mkbarcode: zbarimg reads printable ASCII, second half");
	} else {
		for (int i = 0; i < 3; i++)
			skip("mkbarcode checked by zbarimg", "zbarimg not installed (zbar-tools)");
	}
	check_one(r, label, "000000123", "CODE-128", "Code 128 in the middle of a small photo");
	check_one(r, a1, ascii1, "CODE-128", "Code 128: printable ASCII, first half");
	check_one(r, a2, ascii2, "CODE-128", "Code 128: printable ASCII, second half");
	check_one(r, PHOTO("corner.jpg", "--size", "1600x1200", "--module", "2", "--at", "0,0",
			   "V000123"),
		  "V000123", "CODE-128", "Code 128, 2 px a module, in the top left corner");
	check_one(r, PHOTO("4000.jpg", "--size", "4000x3000", "--module", "4", "--at", "3076,2800",
			   "NHMD-ENT-0001234"),
		  "NHMD-ENT-0001234", "CODE-128", "Code 128 in the bottom right corner of 12 MP");
	check_one(r, PHOTO("6000.jpg", "--size", "6000x4000", "--module", "4", "000000123"),
		  "000000123", "CODE-128", "Code 128, 4 px a module, in 24 MP");
	check_one(r, PHOTO("small.jpg", "--size", "6000x4000", "--module", "1", "--at", "4800,3600",
			   "V000123"),
		  "V000123", "CODE-128", "a small label (1 px a module) in 24 MP: read at full size");
	check_one(r, PHOTO("grainy.jpg", "--size", "6000x4000", "--noise", "24", "--module", "2",
			   "--at", "500,3000", "V000123"),
		  "V000123", "CODE-128", "Code 128, 2 px a module, in a grainy 24 MP photo");
	check_one(r, label, "000000123", "CODE-128", "the same reader again: the same code");
}

static void test_several(barcode_reader *r)
{
	const char *two = PHOTO("two.jpg", "--size", "1600x1200", "--at", "100,100", "V000123",
				"--at", "100,400", "NHMD-ENT-0001234");
	barcode_result res[3];
	cs_error err = { 0 };
	size_t n = 99;
	int ret;

	ret = two ? barcode_read_file(r, two, res, 3, &n, &err) : -1;
	if (!tap_ok(ret == 0 && n == 2 && has(res, n, "V000123", "CODE-128") &&
		    has(res, n, "NHMD-ENT-0001234", "CODE-128"), "two labels: both codes"))
		tap_diag("ret %d (%s), %zu codes", ret, err.msg, n);

	memset(res, 0, sizeof res);
	strcpy(res[1].text, "untouched");
	ret = two ? barcode_read_file(r, two, res, 1, &n, &err) : -1;
	tap_ok(ret == 0 && n == 1 && (has(res, 1, "V000123", "CODE-128") ||
				      has(res, 1, "NHMD-ENT-0001234", "CODE-128")),
	       "two labels, room for one: one of them, no error");
	tap_is_str(res[1].text, "untouched", "two labels, room for one: nothing written past it");
}

static void test_none(barcode_reader *r)
{
	check_none(r, PHOTO("none.jpg", "--seed", "7"), "a photo without barcodes: none, no error");
	check_none(r, PHOTO("none-6000.jpg", "--size", "6000x4000"),
		   "a 24 MP photo without barcodes: none, no error");
	check_none(r, PHOTO("none-grainy.jpg", "--size", "6000x4000", "--noise", "24", "--seed", "3"),
		   "a grainy 24 MP photo without barcodes: none (noise makes no codes)");
}

static void test_datamatrix(barcode_reader *r)
{
#ifdef HAVE_DMTX
	char long_text[301], cut[256], utf8[258];

	check_one(r, PHOTO("dm.jpg", "--size", "800x600", "--datamatrix", "--module", "5",
			   "NHMD-ENT-0001234"),
		  "NHMD-ENT-0001234", "DataMatrix", "DataMatrix in a small photo");
	check_one(r, PHOTO("dm-6000.jpg", "--size", "6000x4000", "--datamatrix", "--module", "10",
			   "--at", "4000,2500", "V000123"),
		  "V000123", "DataMatrix", "DataMatrix in 24 MP");
	check_one(r, PHOTO("dm-ctl-control.jpg", "--size", "800x600", "--datamatrix", "V000124"),
		  "V000124", "DataMatrix", "DataMatrix, 3 px a module: read");
	check_none(r, PHOTO("dm-ctl.jpg", "--size", "800x600", "--datamatrix", "V000\x1d" "123"),
		   "the same with a control character (GS) in its text: left out");
	/* zbar merges a code it sees twice itself; libdmtx does not. */
	check_one(r, PHOTO("dm-twice.jpg", "--size", "800x600", "--datamatrix", "--at", "20,20",
			   "V000123", "--datamatrix", "--at", "400,300", "V000123"),
		  "V000123", "DataMatrix", "one code on two labels: reported once");

	memset(long_text, 'A', 300);
	long_text[300] = '\0';
	memcpy(cut, long_text, 255);
	cut[255] = '\0';
	check_one(r, PHOTO("dm-long.jpg", "--size", "800x600", "--datamatrix", long_text),
		  cut, "DataMatrix", "300 bytes: cut at 255");
	/* 254 bytes, then a two-byte UTF-8 character across the cut. */
	memset(utf8, 'A', 254);
	strcpy(utf8 + 254, "\xc3\xa9" "B");
	cut[254] = '\0';
	check_one(r, PHOTO("dm-utf8.jpg", "--size", "800x600", "--datamatrix", utf8),
		  cut, "DataMatrix", "a UTF-8 character across the cut: cut before it");
#else
	for (int i = 0; i < 7; i++)
		skip("DataMatrix", "built without libdmtx");
	(void)r;
#endif
}

static void test_unavailable(void)
{
	static char sentinel;
	barcode_reader *r = (barcode_reader *)&sentinel;
	barcode_result res[1];
	cs_error err = { 0 };
	size_t n = 99;

	tap_ok(!barcode_available(), "built without zbar: not available");
	tap_is_int(barcode_reader_new(&r, &err), CS_E_CONFIG, "no reader: CS_E_CONFIG");
	tap_ok(r == NULL, "no reader: none given");
	if (!tap_ok(strstr(err.msg, "libzbar-dev") != NULL, "the message says what to install"))
		tap_diag("%s", err.msg);
	tap_is_int(barcode_read_file(NULL, "x.jpg", res, 1, &n, &err), CS_E_CONFIG,
		   "reading: CS_E_CONFIG");
	tap_is_int(n, 0, "reading: no codes");
}

int main(int argc, char **argv)
{
	barcode_reader *r = NULL;
	cs_error err = { 0 };
	const char *tmp = getenv("TMPDIR"), *label;

	if (argc != 2) {
		fputs("usage: test-barcode MKBARCODE\n", stderr);
		return 2;
	}
	if (!barcode_available()) {
		test_unavailable();
		skip("reading barcodes", "built without zbar (-Dlabel, libzbar-dev)");
		return tap_done();
	}
	mkbarcode = argv[1];
	snprintf(dir, sizeof dir, "%s/copystand-barcode-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		printf("Bail out! cannot make a temporary folder: %s\n", strerror(errno));
		return 1;
	}
	tap_ok(barcode_available(), "built with zbar: available");
	if (!tap_is_int(barcode_reader_new(&r, &err), 0, "a reader")) {
		tap_diag("%s", err.msg);
		return tap_done();
	}
	label = PHOTO("label.jpg", "000000123");
	test_code128(r, label);
	test_several(r);
	test_none(r);
	test_datamatrix(r);
	test_bad_files(r, label);
	check_one(r, label, "000000123", "CODE-128", "after all those failures: still reads");
	test_arguments(r, label);
	barcode_reader_free(r);

	for (int i = 0; i < nmade; i++)
		unlink(made[i]);
	rmdir(dir);
	return tap_done();
}
