/* core/metadata: the JPEG segment walker; EXIF read, and the stamp written
 * into real JPEGs (from mkjpeg, argv[1]) and read back with libexif,
 * metadata_read and exiftool as an independent reader; the image data and
 * every other segment kept byte for byte; failures that leave the file as
 * it was; the XMP sidecar; the attachment fields for Specify. */
#include <expat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libexif/exif-data.h>

#include "harness.h"
#include "metadata.h"
#include "sha256.h"
#include "tap.h"

#define STAMP_TEXT "copystand: catalog number 000000123; collection Fish; " \
		   "station copystand-1; 2026-11-25T16:00:00Z"

static const metadata_stamp stamp = { "000000123", "Fish", "copystand-1", 1795622400 };
static const char *mkjpeg;
static char dir[512];
static int have_exiftool;

/* --- files and programs --------------------------------------------------- */

static const char *in_dir(char *buf, const char *name)
{
	snprintf(buf, 600, "%s/%s", dir, name);
	return buf;
}

static unsigned char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *b = NULL;
	long len;

	*n = 0;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (b = malloc((size_t)len + 1)))
		*n = fread(b, 1, (size_t)len, f);
	fclose(f);
	return b;
}

static void spit(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

static int run(const char *const argv[], char **out)
{
	int status = harness_run_program(argv, out);

	if (status < 0)
		abort();
	return status;
}

static void make_jpeg(const char *path, int w, int h, unsigned seed)
{
	char ws[16], hs[16], ss[16];
	const char *argv[] = { mkjpeg, ws, hs, ss, path, NULL };

	snprintf(ws, sizeof ws, "%d", w);
	snprintf(hs, sizeof hs, "%d", h);
	snprintf(ss, sizeof ss, "%u", seed);
	if (run(argv, NULL) != 0)
		abort();
}

/* One tag as exiftool prints it (-s3: the value alone); NULL without
 * exiftool.  opt is an extra option or NULL. */
static char *exiftool(const char *opt, const char *tag, const char *path)
{
	char arg[128];
	const char *argv[] = { "exiftool", "-s3", opt ? opt : "-s3", "-charset", "exif=utf8",
			       arg, path, NULL };
	char *out;

	if (!have_exiftool)
		return NULL;
	snprintf(arg, sizeof arg, "-%s", tag);
	run(argv, &out);
	return out;
}

/* Checks what exiftool reads, or says that it is not installed. */
static void exiftool_is(const char *opt, const char *tag, const char *path,
			const char *want, const char *what)
{
	char *got = exiftool(opt, tag, path);

	if (!got)
		printf("ok %d # SKIP no exiftool (scripts/deps.sh test installs it): %s\n",
		       ++tap_count, what);
	else
		tap_is_str(got, want, what);
	free(got);
}

/* Puts a segment into a JPEG from mkjpeg right after its JFIF APP0. */
static void insert_segment(const char *path, int marker, const unsigned char *p, size_t n)
{
	size_t len, at;
	unsigned char *b = slurp(path, &len);
	unsigned char head[4] = { 0xff, (unsigned char)marker, (unsigned char)((n + 2) >> 8),
				  (unsigned char)(n + 2) };
	FILE *f;

	if (!b || len < 6 || b[3] != 0xe0)
		abort();
	at = 4 + ((size_t)b[4] << 8 | b[5]);
	if (!(f = fopen(path, "wb")))
		abort();
	fwrite(b, 1, at, f);
	fwrite(head, 1, 4, f);
	fwrite(p, 1, n, f);
	fwrite(b + at, 1, len - at, f);
	fclose(f);
	free(b);
}

/* --- what a JPEG holds ----------------------------------------------------- */

/* A JPEG's segments as the walker sees them. */
struct layout {
	const unsigned char *base;
	char order[1024];       /* the markers: "D8 E0 E1 DB ..." */
	char kept[8192];        /* all but EXIF: marker, size, FNV-1a of the payload */
	int exif;               /* EXIF APP1 segments */
	size_t image_at;        /* where the image data starts */
};

static int layout_segment(void *ud, int marker, size_t at, const unsigned char *p, size_t n)
{
	struct layout *l = ud;
	unsigned h = 2166136261u;
	size_t o = strlen(l->order), k = strlen(l->kept);

	(void)at;
	snprintf(l->order + o, sizeof l->order - o, "%s%02X", o ? " " : "", marker);
	if (marker == 0xe1 && n >= 6 && !memcmp(p, "Exif\0\0", 6)) {
		l->exif++;
	} else {
		for (size_t i = 0; i < n; i++)
			h = (h ^ p[i]) * 16777619u;
		snprintf(l->kept + k, sizeof l->kept - k, "%02X/%zu/%08x ", marker, n, h);
	}
	if (marker == 0xda)
		l->image_at = (size_t)(p - l->base) + n;
	return 0;
}

/* The file's bytes (malloc'd) and layout. */
static unsigned char *layout_of(const char *path, struct layout *l, size_t *len)
{
	unsigned char *b = slurp(path, len);

	memset(l, 0, sizeof *l);
	l->base = b;
	if (!b || metadata_jpeg_walk(b, *len, layout_segment, l, NULL) != 0)
		tap_diag("%s: no JPEG layout", path);
	return b;
}

/* Adds an entry of n bytes (copied) and format to an IFD. */
static void add_entry(ExifData *ed, ExifIfd ifd, ExifTag tag, ExifFormat format,
		      const void *data, size_t n)
{
	ExifEntry *e = exif_entry_new();

	e->tag = tag;
	e->format = format;
	e->size = (unsigned)n;
	e->components = n / exif_format_get_size(format);
	e->data = malloc(n);
	memcpy(e->data, data, n);
	exif_content_add_entry(ed->ifd[ifd], e);
	exif_entry_unref(e);
}

/* An EXIF APP1 payload as a camera writes it (libexif): make, model, the
 * capture date, firmware, blanks for a description, a private tag, a maker
 * note of maker_note bytes and thumb as thumbnail (with its IFD1), in the
 * byte order given. */
static unsigned char *camera_exif(ExifByteOrder order, const unsigned char *thumb,
				  size_t thumb_n, size_t maker_note, unsigned *n)
{
	static const struct { ExifIfd ifd; ExifTag tag; const char *text; } texts[] = {
		{ EXIF_IFD_0, EXIF_TAG_MAKE, "Canon" },
		{ EXIF_IFD_0, EXIF_TAG_MODEL, "Canon EOS 5D Mark IV" },
		{ EXIF_IFD_0, EXIF_TAG_SOFTWARE, "Firmware Version 1.0.2" },
		{ EXIF_IFD_0, EXIF_TAG_IMAGE_DESCRIPTION, "          " },
		{ EXIF_IFD_0, (ExifTag)0x9999, "private" },
		{ EXIF_IFD_EXIF, EXIF_TAG_DATE_TIME_ORIGINAL, "2024:05:06 07:08:09" },
	};
	ExifData *ed = exif_data_new();
	unsigned char *out = NULL, compression[2];

	exif_data_set_byte_order(ed, order);
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		add_entry(ed, texts[i].ifd, texts[i].tag, EXIF_FORMAT_ASCII, texts[i].text,
			  strlen(texts[i].text) + 1);
	if (maker_note) {
		/* No entries libexif could read, and bytes it could drop. */
		unsigned char *note = malloc(maker_note);
		memset(note, 0xab, maker_note);
		memset(note, 0, 2);
		add_entry(ed, EXIF_IFD_EXIF, EXIF_TAG_MAKER_NOTE, EXIF_FORMAT_UNDEFINED, note,
			  maker_note);
		free(note);
	}
	if (thumb_n) {
		exif_set_short(compression, order, 6); /* JPEG */
		add_entry(ed, EXIF_IFD_1, EXIF_TAG_COMPRESSION, EXIF_FORMAT_SHORT, compression, 2);
		ed->data = malloc(thumb_n);
		memcpy(ed->data, thumb, thumb_n);
		ed->size = (unsigned)thumb_n;
	}
	exif_data_save_data(ed, &out, n);
	exif_data_unref(ed);
	return out;
}

/* A JPEG from mkjpeg with camera_exif in it.  The thumbnail (thumb_n 0:
 * none) is a small JPEG, padded to thumb_n bytes if that is more; it goes
 * to *thumb (malloc'd).  Returns the size of the EXIF. */
static unsigned camera_jpeg(const char *path, ExifByteOrder order, size_t thumb_n,
			    size_t maker_note, unsigned char **thumb, size_t *thumb_len)
{
	char tp[600];
	unsigned char *exif, *small;
	unsigned n;

	*thumb = NULL;
	*thumb_len = 0;
	if (thumb_n) {
		make_jpeg(in_dir(tp, "thumb.tmp"), 16, 16, 9);
		small = slurp(tp, thumb_len);
		unlink(tp);
		if (thumb_n < *thumb_len)
			thumb_n = *thumb_len;
		*thumb = calloc(1, thumb_n);
		memcpy(*thumb, small, *thumb_len);
		*thumb_len = thumb_n;
		free(small);
	}
	make_jpeg(path, 320, 240, 2);
	exif = camera_exif(order, *thumb, *thumb_len, maker_note, &n);
	if (n > 65533)
		abort();
	insert_segment(path, 0xe1, exif, n);
	free(exif);
	return n;
}

/* The entry's bytes, as libexif reads the file by itself. */
static char *libexif_entry(const char *path, ExifIfd ifd, ExifTag tag, size_t *n)
{
	ExifData *ed = exif_data_new_from_file(path);
	ExifEntry *e = ed ? exif_content_get_entry(ed->ifd[ifd], tag) : NULL;
	char *copy = NULL;

	*n = 0;
	if (e && (copy = malloc(e->size + 1))) {
		memcpy(copy, e->data, e->size);
		copy[e->size] = '\0';
		*n = e->size;
	}
	exif_data_unref(ed);
	return copy;
}

static bool same_inode(const char *path, const struct stat *before)
{
	struct stat now;

	return stat(path, &now) == 0 && now.st_ino == before->st_ino &&
	       now.st_mtim.tv_sec == before->st_mtim.tv_sec &&
	       now.st_mtim.tv_nsec == before->st_mtim.tv_nsec;
}

/* The image data and every segment but the EXIF are the original's. */
static void check_kept(const char *path, const unsigned char *orig, size_t orig_len,
		       const struct layout *ol, const char *what)
{
	struct layout nl;
	size_t len;
	unsigned char *b = layout_of(path, &nl, &len);

	tap_is_str(nl.kept, ol->kept, "every other segment kept, in order");
	tap_is_int(nl.exif, 1, "one EXIF segment");
	tap_ok(b && len - nl.image_at == orig_len - ol->image_at &&
	       memcmp(b + nl.image_at, orig + ol->image_at, orig_len - ol->image_at) == 0,
	       "%s: the image data is the original's, byte for byte", what);
	free(b);
}

/* --- the walker ------------------------------------------------------------- */

struct trace {
	const unsigned char *base;
	char text[512];
	int stop_at;
};

static int trace_segment(void *ud, int marker, size_t at, const unsigned char *p, size_t n)
{
	struct trace *t = ud;
	size_t o = strlen(t->text);
	bool standalone = marker == 0xd8 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7);

	snprintf(t->text + o, sizeof t->text - o, "%02X@%zu+%zu%s ", marker, at, n,
		 p == t->base + at + (standalone ? 2 : 4) ? "" : "(payload elsewhere)");
	return marker == t->stop_at ? 7 : 0;
}

static int trace(const unsigned char *data, size_t len, struct trace *t, cs_error *err)
{
	/* An exact copy, so that ASan sees a read past the end. */
	unsigned char *copy = malloc(len ? len : 1);
	int ret;

	memcpy(copy, data, len);
	t->base = copy;
	t->text[0] = '\0';
	ret = metadata_jpeg_walk(copy, len, trace_segment, t, err);
	free(copy);
	return ret;
}

static void walk_refuses(const char *what, const unsigned char *data, size_t len,
			 const char *message)
{
	struct trace t = { .stop_at = -1 };
	cs_error err = { 0 };

	tap_is_int(trace(data, len, &t, &err), CS_E_INVALID, what);
	if (!tap_ok(strstr(err.msg, message) != NULL, "%s: says so", what))
		tap_diag("message: %s", err.msg);
}

static void test_walk(void)
{
	static const unsigned char good[] = {
		0xff, 0xd8,                             /* SOI */
		0xff, 0xe0, 0x00, 0x04, 'J', 'F',       /* APP0 */
		0xff, 0xff, 0xff, 0xfe, 0x00, 0x02,     /* fill bytes, an empty COM */
		0xff, 0xd0, 0xff, 0x01,                 /* RST0, TEM */
		0xff, 0xda, 0x00, 0x03, 0x01,           /* SOS */
		0x12, 0xff, 0x00, 0xff, 0xd9,           /* image data, EOI */
	};
	struct trace t = { .stop_at = -1 };
	int refused = 0;

	tap_is_int(trace(good, sizeof good, &t, NULL), 0, "walk a JPEG header");
	tap_is_str(t.text, "D8@0+0 E0@2+2 FE@10+0 D0@14+0 01@16+0 DA@18+1 ",
		   "every segment to SOS, fill bytes skipped");
	t.stop_at = 0xe0;
	tap_is_int(trace(good, sizeof good, &t, NULL), 7, "the function's value stops the walk");
	tap_is_str(t.text, "D8@0+0 E0@2+2 ", "nothing after the stop");
	t.stop_at = -1;
	for (size_t len = 0; len < 23; len++)
		refused += trace(good, len, &t, NULL) == CS_E_INVALID;
	tap_is_int(refused, 23, "every cut before the image data is refused");

	walk_refuses("not a JPEG", (const unsigned char *)"GIF89a", 6, "not a JPEG");
	walk_refuses("a byte where a marker belongs",
		     (const unsigned char[]){ 0xff, 0xd8, 0x00, 0xe0, 0x00, 0x02 }, 6,
		     "byte 2 is 0x00");
	walk_refuses("FF 00 in the header",
		     (const unsigned char[]){ 0xff, 0xd8, 0xff, 0x00, 0x00, 0x02 }, 6, "FF 00");
	walk_refuses("a length below 2",
		     (const unsigned char[]){ 0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01, 0xff, 0xda }, 8,
		     "has the length 1");
	walk_refuses("a length past the end",
		     (const unsigned char[]){ 0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 0x00, 0x00 }, 8,
		     "cut short");
	walk_refuses("EOI before the image data",
		     (const unsigned char[]){ 0xff, 0xd8, 0xff, 0xd9 }, 4, "FF D9 at byte 2");
	walk_refuses("a second SOI",
		     (const unsigned char[]){ 0xff, 0xd8, 0xff, 0xd8 }, 4, "FF D8 at byte 2");
}

/* --- stamping ------------------------------------------------------------- */

static void test_plain_jpeg(void)
{
	char path[600], sha[65] = "", want_sha[65], other_sha[65];
	long long size = 0, want_size = 0;
	metadata_info info;
	cs_error err = { 0 };
	struct layout ol, nl;
	struct stat before;
	size_t orig_len, n;
	unsigned char *orig;
	char *s;

	make_jpeg(in_dir(path, "000000123.jpg"), 64, 48, 1);
	orig = layout_of(path, &ol, &orig_len);
	tap_is_int(metadata_read(path, &info, &err), 0, "a JPEG without EXIF reads");
	tap_ok(!info.date_original[0] && !info.make[0] && !info.model[0] && !info.description[0] &&
	       !info.identifier[0] && !info.thumbnail, "and says nothing");
	metadata_info_clear(&info);

	if (!tap_is_int(metadata_jpeg_stamp(path, &stamp, &size, sha, &err), 0, "stamp it"))
		tap_diag("%s", err.msg);
	sha256_file(path, want_sha, &want_size, NULL);
	tap_is_str(sha, want_sha, "the digest of the new file");
	tap_is_int(size, want_size, "its size");
	tap_ok(harness_dir_is(dir, "000000123.jpg"), "no temporary file is left");
	check_kept(path, orig, orig_len, &ol, "stamped");
	free(layout_of(path, &nl, &n));
	tap_is_str(nl.order, "D8 E0 E1 DB DB C0 C4 C4 C4 C4 DA", "EXIF right after JFIF");

	tap_is_int(metadata_read(path, &info, &err), 0, "the stamped file reads");
	tap_is_str(info.identifier, "000000123", "the catalog number comes back");
	tap_is_str(info.description, "000000123", "as the ImageDescription");
	metadata_info_clear(&info);

	s = libexif_entry(path, EXIF_IFD_0, EXIF_TAG_IMAGE_DESCRIPTION, &n);
	tap_is_str(s, "000000123", "libexif: ImageDescription");
	free(s);
	s = libexif_entry(path, EXIF_IFD_EXIF, EXIF_TAG_USER_COMMENT, &n);
	tap_ok(s && n == 8 + strlen(STAMP_TEXT) && !memcmp(s, "ASCII\0\0\0" STAMP_TEXT, n),
	       "libexif: UserComment with its ASCII character code");
	free(s);
	s = libexif_entry(path, EXIF_IFD_0, EXIF_TAG_SOFTWARE, &n);
	tap_is_str(s, "copystand", "libexif: Software");
	free(s);
	exiftool_is(NULL, "ImageDescription", path, "000000123", "exiftool: ImageDescription");
	exiftool_is(NULL, "UserComment", path, STAMP_TEXT, "exiftool: UserComment");
	exiftool_is(NULL, "Software", path, "copystand", "exiftool: Software");
	exiftool_is(NULL, "ExifVersion", path, "0232", "exiftool: ExifVersion of a new EXIF");

	stat(path, &before);
	tap_is_int(metadata_jpeg_stamp(path, &stamp, &size, other_sha, &err), 0, "stamp it again");
	tap_is_str(other_sha, sha, "same digest");
	tap_ok(same_inode(path, &before), "the file was not rewritten");

	metadata_stamp moved = stamp;
	moved.station = "copystand-2";
	chmod(path, 0640);
	tap_is_int(metadata_jpeg_stamp(path, &moved, NULL, other_sha, &err), 0, "another stamp");
	tap_ok(strcmp(other_sha, sha) != 0, "changes the file");
	stat(path, &before);
	tap_is_int(before.st_mode & 0777, 0640, "which keeps its permissions");
	exiftool_is(NULL, "UserComment", path,
		    "copystand: catalog number 000000123; collection Fish; station copystand-2; "
		    "2026-11-25T16:00:00Z", "exiftool: the new UserComment");
	check_kept(path, orig, orig_len, &ol, "stamped twice");
	free(orig);
	unlink(path);
}

/* A camera's EXIF is kept whole; a stamp with non-ASCII text in it is
 * UNICODE in the file's (Intel) byte order. */
static void test_camera_jpeg(void)
{
	metadata_stamp st = { "A;B 7", "Süßwasserfische", "copystand-1", 1795622400 };
	char path[600], want[32], *s;
	unsigned char *thumb, *orig;
	size_t thumb_n, orig_len, n;
	metadata_info info;
	cs_error err = { 0 };
	struct layout ol;

	camera_jpeg(in_dir(path, "cam.jpg"), EXIF_BYTE_ORDER_INTEL, 1, 40, &thumb, &thumb_n);
	orig = layout_of(path, &ol, &orig_len);
	tap_is_int(metadata_read(path, &info, &err), 0, "a camera's JPEG reads");
	tap_is_str(info.make, "Canon", "Make");
	tap_is_str(info.model, "Canon EOS 5D Mark IV", "Model");
	tap_is_str(info.date_original, "2024:05:06 07:08:09", "DateTimeOriginal");
	tap_is_str(info.description, "", "a blank ImageDescription is empty");
	tap_is_str(info.identifier, "", "no stamp yet");
	tap_ok(info.thumbnail && info.thumbnail_size == thumb_n &&
	       !memcmp(info.thumbnail, thumb, thumb_n), "the thumbnail");
	metadata_info_clear(&info);

	if (!tap_is_int(metadata_jpeg_stamp(path, &st, NULL, NULL, &err), 0, "stamp it"))
		tap_diag("%s", err.msg);
	check_kept(path, orig, orig_len, &ol, "camera JPEG");
	tap_is_int(metadata_read(path, &info, &err), 0, "it reads");
	tap_is_str(info.make, "Canon", "Make kept");
	tap_is_str(info.model, "Canon EOS 5D Mark IV", "Model kept");
	tap_is_str(info.date_original, "2024:05:06 07:08:09", "DateTimeOriginal kept");
	exiftool_is(NULL, "IFD1:Compression", path, "JPEG (old-style)",
		    "exiftool: the thumbnail's IFD1 kept");
	tap_is_str(info.identifier, "A;B 7", "a catalog number with ';' comes back whole");
	tap_ok(info.thumbnail && info.thumbnail_size == thumb_n &&
	       !memcmp(info.thumbnail, thumb, thumb_n), "thumbnail kept");
	metadata_info_clear(&info);
	s = libexif_entry(path, EXIF_IFD_EXIF, EXIF_TAG_USER_COMMENT, &n);
	tap_ok(s && n > 10 && !memcmp(s, "UNICODE\0c\0o\0", 12),
	       "UserComment in UTF-16, little-endian like the file");
	free(s);
	s = libexif_entry(path, EXIF_IFD_EXIF, EXIF_TAG_MAKER_NOTE, &n);
	tap_ok(s && n == 40 && s[0] == 0 && s[1] == 0 && s[2] == (char)0xab && s[39] == (char)0xab,
	       "the maker note kept byte for byte");
	free(s);
	exiftool_is(NULL, "Make", path, "Canon", "exiftool: Make");
	exiftool_is(NULL, "Software", path, "Firmware Version 1.0.2", "exiftool: firmware kept");
	exiftool_is(NULL, "DateTimeOriginal", path, "2024:05:06 07:08:09",
		    "exiftool: DateTimeOriginal");
	exiftool_is("-u", "Exif_0x9999", path, "private", "exiftool: a private tag kept");
	/* What libexif's "fixes" would add: a DateTime of now, resolutions. */
	exiftool_is(NULL, "IFD0:ModifyDate", path, "", "exiftool: no DateTime added");
	exiftool_is(NULL, "IFD0:XResolution", path, "", "exiftool: no XResolution added");
	exiftool_is(NULL, "ImageDescription", path, "A;B 7", "exiftool: ImageDescription");
	exiftool_is(NULL, "UserComment", path, "copystand: catalog number A;B 7; collection "
		    "Süßwasserfische; station copystand-1; 2026-11-25T16:00:00Z",
		    "exiftool: a UNICODE UserComment");
	snprintf(want, sizeof want, "%zu", thumb_n);
	exiftool_is(NULL, "ThumbnailLength", path, want, "exiftool: the thumbnail");
	tap_ok(harness_dir_is(dir, "cam.jpg"), "no temporary file is left");
	free(thumb);
	free(orig);
	unlink(path);
}

/* A Canon maker note points to its values by offsets from the start of
 * the TIFF header: after the stamp they must still point to them. */
static void test_maker_note_offsets(void)
{
	static const char body[] = "Canon EOS TESTBODY";
	enum { NOTE = 2 + 12 + 4 + sizeof body };
	unsigned char note[NOTE] = { 0 }, *exif, *tiff;
	char path[600], *warn;
	size_t at;
	unsigned n;

	make_jpeg(in_dir(path, "canon.jpg"), 64, 48, 4);
	ExifData *ed = exif_data_new();
	exif_data_set_byte_order(ed, EXIF_BYTE_ORDER_INTEL);
	add_entry(ed, EXIF_IFD_0, EXIF_TAG_MAKE, EXIF_FORMAT_ASCII, "Canon", 6);
	add_entry(ed, EXIF_IFD_0, EXIF_TAG_MODEL, EXIF_FORMAT_ASCII, "Canon EOS R5", 13);
	/* One entry, CanonImageType (0x0006), its text right after the IFD;
	 * the offset is filled in once the note's place is known. */
	exif_set_short(note, EXIF_BYTE_ORDER_INTEL, 1);
	exif_set_short(note + 2, EXIF_BYTE_ORDER_INTEL, 6);
	exif_set_short(note + 4, EXIF_BYTE_ORDER_INTEL, EXIF_FORMAT_ASCII);
	exif_set_long(note + 6, EXIF_BYTE_ORDER_INTEL, sizeof body);
	memcpy(note + 18, body, sizeof body);
	add_entry(ed, EXIF_IFD_EXIF, EXIF_TAG_MAKER_NOTE, EXIF_FORMAT_UNDEFINED, note, NOTE);
	exif_data_save_data(ed, &exif, &n);
	exif_data_unref(ed);
	tiff = exif + 6;
	for (at = 0; at + NOTE <= n - 6 && memcmp(tiff + at, note, NOTE); at++)
		;
	if (!tap_ok(at + NOTE <= n - 6, "a test EXIF with a Canon maker note")) {
		free(exif);
		return;
	}
	exif_set_long(tiff + at + 10, EXIF_BYTE_ORDER_INTEL, (ExifLong)(at + 18));
	insert_segment(path, 0xe1, exif, n);
	free(exif);
	exiftool_is(NULL, "CanonImageType", path, body, "exiftool reads the maker note");

	cs_error err = { 0 };
	tap_is_int(metadata_jpeg_stamp(path, &stamp, NULL, NULL, &err), 0, "stamp it");
	exiftool_is(NULL, "ImageDescription", path, stamp.identifier, "the stamp is there");
	exiftool_is(NULL, "CanonImageType", path, body,
		    "the maker note's value is still where its offset says");
	warn = exiftool(NULL, "Warning", path);
	tap_ok(!have_exiftool || (warn && !*warn), "exiftool has no warning (%s)",
	       warn ? warn : "");
	free(warn);
	unlink(path);
}

/* A thumbnail that leaves no room for the stamp in 64 KiB is dropped; an
 * EXIF too large without one is refused. */
static void test_full_exif(void)
{
	char path[600], sha[65], after[65], station[301];
	metadata_stamp big = stamp;
	unsigned char *thumb, *orig;
	size_t thumb_n, len;
	metadata_info info;
	cs_error err = { 0 };
	struct layout ol;
	unsigned n;

	/* A stamp of more than 300 bytes does not fit beside these. */
	memset(station, 's', 300);
	station[300] = '\0';
	big.station = station;
	n = camera_jpeg(in_dir(path, "full.jpg"), EXIF_BYTE_ORDER_MOTOROLA, 65200, 0, &thumb,
			&thumb_n);
	orig = layout_of(path, &ol, &len);
	tap_ok(n > 65533 - 300, "an EXIF of %u bytes with a thumbnail of %zu", n, thumb_n);
	if (!tap_is_int(metadata_jpeg_stamp(path, &big, NULL, NULL, &err), 0,
			"stamping drops the thumbnail"))
		tap_diag("%s", err.msg);
	tap_is_int(metadata_read(path, &info, &err), 0, "it reads");
	tap_ok(!info.thumbnail, "without a thumbnail");
	tap_is_str(info.make, "Canon", "Make kept");
	tap_is_str(info.identifier, "000000123", "stamped");
	metadata_info_clear(&info);
	exiftool_is(NULL, "ThumbnailLength", path, "", "exiftool: no thumbnail");
	exiftool_is(NULL, "IFD1:all", path, "", "exiftool: no IFD1 without it");
	exiftool_is(NULL, "Model", path, "Canon EOS 5D Mark IV", "exiftool: Model kept");
	check_kept(path, orig, len, &ol, "thumbnail dropped");
	free(thumb);
	free(orig);

	n = camera_jpeg(path, EXIF_BYTE_ORDER_MOTOROLA, 0, 65250, &thumb, &thumb_n);
	tap_ok(n > 65533 - 300, "an EXIF of %u bytes, most of it maker note", n);
	sha256_file(path, sha, NULL, NULL);
	tap_is_int(metadata_jpeg_stamp(path, &big, NULL, NULL, &err), CS_E_INVALID,
		   "an EXIF too large for the stamp is refused");
	tap_ok(strstr(err.msg, "64 KiB") != NULL, "and says why: %s", err.msg);
	sha256_file(path, after, NULL, NULL);
	tap_is_str(after, sha, "the file is unchanged");
	tap_ok(harness_dir_is(dir, "full.jpg"), "no temporary file is left");
	free(thumb);
	unlink(path);
}

/* EXIF behind 192 KiB of ICC profile: the header is read past its first
 * 128 KiB, and the stamp goes before the profile. */
static void test_long_header(void)
{
	char path[600];
	unsigned char *thumb, *orig, *icc = calloc(1, 65533);
	size_t thumb_n, len, orig_len;
	metadata_info info;
	cs_error err = { 0 };
	struct layout ol, nl;

	camera_jpeg(in_dir(path, "icc.jpg"), EXIF_BYTE_ORDER_INTEL, 0, 0, &thumb, &thumb_n);
	memcpy(icc, "ICC_PROFILE", 12);
	for (int i = 0; i < 3; i++) {
		icc[12] = (unsigned char)(3 - i);
		insert_segment(path, 0xe2, icc, 65533);
	}
	orig = layout_of(path, &ol, &orig_len);
	tap_ok(!strncmp(ol.order, "D8 E0 E2 E2 E2 E1", 17), "EXIF after three ICC segments");
	tap_is_int(metadata_read(path, &info, &err), 0, "it reads");
	tap_is_str(info.make, "Canon", "the EXIF is found");
	metadata_info_clear(&info);
	tap_is_int(metadata_jpeg_stamp(path, &stamp, NULL, NULL, &err), 0, "stamp it");
	free(layout_of(path, &nl, &len));
	tap_ok(!strncmp(nl.order, "D8 E0 E1 E2 E2 E2 DB", 20), "EXIF before the profile");
	check_kept(path, orig, orig_len, &ol, "long header");
	exiftool_is(NULL, "ImageDescription", path, "000000123", "exiftool: ImageDescription");
	free(icc);
	free(thumb);
	free(orig);
	unlink(path);
}

/* Refused and failed stamps leave the file as it was and no temporary
 * file behind. */
static void refused(const char *path, int want, int want_read, rlim_t size_limit,
		    const char *what)
{
	char before[65] = "", after[65] = "";
	metadata_info info;
	cs_error err = { 0 };
	struct rlimit old, limit;
	int ret;

	sha256_file(path, before, NULL, NULL);
	getrlimit(RLIMIT_FSIZE, &old);
	limit = old;
	if (size_limit)
		limit.rlim_cur = size_limit;
	setrlimit(RLIMIT_FSIZE, &limit);
	ret = metadata_jpeg_stamp(path, &stamp, NULL, NULL, &err);
	setrlimit(RLIMIT_FSIZE, &old);
	if (!tap_is_int(ret, want, what))
		tap_diag("%s", err.msg);
	tap_ok(strstr(err.msg, path) != NULL, "%s: the message names the file: %s", what, err.msg);
	sha256_file(path, after, NULL, NULL);
	tap_is_str(after, before, "the file is unchanged");
	tap_ok(harness_dir_is(dir, strrchr(path, '/') + 1), "no temporary file is left");
	tap_is_int(metadata_read(path, &info, NULL), want_read, "reading it");
	metadata_info_clear(&info);
}

static void test_failures(void)
{
	static const unsigned char damaged[] = "Exif\0\0XX\0\x2a\0\0\0\x08";
	char path[600], cut[600];
	unsigned char *b;
	size_t len;
	struct layout l;
	metadata_info info;

	spit(in_dir(path, "notes.jpg"), "hello, world\n", 13);
	refused(path, CS_E_INVALID, CS_E_INVALID, 0, "a text file");
	unlink(path);

	make_jpeg(in_dir(path, "whole.jpg"), 32, 32, 3);
	b = layout_of(path, &l, &len);
	unlink(path);
	{
		const size_t cuts[] = { 1, 2, 3, 5, 30, l.image_at / 2, l.image_at - 1 };
		for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
			char what[64];
			snprintf(what, sizeof what, "a JPEG cut at byte %zu", cuts[i]);
			spit(in_dir(cut, "cut.jpg"), b, cuts[i]);
			refused(cut, CS_E_INVALID, CS_E_INVALID, 0, what);
			unlink(cut);
		}
	}

	spit(path, b, len);
	insert_segment(path, 0xe1, damaged, sizeof damaged - 1);
	refused(path, CS_E_INVALID, 0, 0, "a damaged EXIF");

	/* A write that fails half way: the file size limit stops the copy. */
	spit(path, b, len);
	signal(SIGXFSZ, SIG_IGN);
	refused(path, CS_E_IO, 0, len / 2, "a write that fails half way");
	tap_is_int(metadata_jpeg_stamp(path, &stamp, NULL, NULL, NULL), 0,
		   "stamped once it can be written");
	unlink(path);
	free(b);

	tap_is_int(metadata_jpeg_stamp(in_dir(path, "missing.jpg"), &stamp, NULL, NULL, NULL),
		   CS_E_IO, "a missing file");
	tap_is_int(metadata_read(path, &info, NULL), CS_E_IO, "cannot be read");
	tap_is_int(metadata_jpeg_stamp(dir, &stamp, NULL, NULL, NULL), CS_E_INVALID,
		   "a folder is no JPEG");
}

/* --- the XMP sidecar ------------------------------------------------------- */

static bool xml_well_formed(const char *path)
{
	size_t n;
	unsigned char *b = slurp(path, &n);
	XML_Parser p = XML_ParserCreateNS(NULL, ' ');
	bool ok = b && XML_Parse(p, (const char *)b, (int)n, 1) == XML_STATUS_OK;

	if (!ok)
		tap_diag("%s: %s", path, XML_ErrorString(XML_GetErrorCode(p)));
	XML_ParserFree(p);
	free(b);
	return ok;
}

static void sidecar_is(const char *raw, const char *want, const char *what)
{
	char *side = NULL;
	cs_error err = { 0 };

	if (!tap_is_int(metadata_xmp_write(raw, &stamp, &side, &err), 0, what))
		tap_diag("%s", err.msg);
	tap_is_str(side, want, "named after the stem");
	if (side)
		unlink(side);
	free(side);
}

static void test_xmp(void)
{
	static const char foreign_xmp[] = "<x:xmpmeta xmlns:x='adobe:ns:meta/' "
					  "x:xmptk='Adobe XMP Core 5.6'/>\n";
	metadata_stamp odd = { "V<1>&2", "Fish & \"Reptiles\"", "st\x01\xff", 0 };
	char raw[600], path[600], want[600], foreign[600], *side = NULL, sha[65], after[65];
	cs_error err = { 0 };
	struct stat before;

	spit(in_dir(raw, "IMG_1.CR2"), "II*\0raw", 7);
	sha256_file(raw, sha, NULL, NULL);
	tap_is_int(metadata_xmp_write(raw, &stamp, &side, &err), 0, "write a sidecar");
	tap_is_str(side, in_dir(want, "IMG_1.xmp"), "IMG_1.CR2 → IMG_1.xmp");
	sha256_file(raw, after, NULL, NULL);
	tap_is_str(after, sha, "the RAW file is untouched");
	tap_ok(harness_dir_is(dir, "IMG_1.CR2 IMG_1.xmp"), "no temporary file is left");
	tap_ok(xml_well_formed(side), "well-formed XML");
	exiftool_is(NULL, "XMP-dc:Identifier", side, "000000123", "exiftool: dc:identifier");
	exiftool_is(NULL, "XMP-dc:Description", side, STAMP_TEXT, "exiftool: dc:description");
	exiftool_is(NULL, "XMP-xmp:CreateDate", side, "2026:11:25 16:00:00Z",
		    "exiftool: xmp:CreateDate");
	/* exiftool 12 knows Darwin Core by an older namespace URI. */
	exiftool_is(NULL, "XMP:CatalogNumber", side, "000000123",
		    "exiftool: dwc:catalogNumber");
	exiftool_is(NULL, "XMP-copystand:Collection", side, "Fish", "exiftool: the collection");
	exiftool_is(NULL, "XMP-copystand:Station", side, "copystand-1", "exiftool: the station");

	stat(side, &before);
	tap_is_int(metadata_xmp_write(raw, &stamp, NULL, &err), 0, "write it again");
	tap_ok(same_inode(side, &before), "the same sidecar is not rewritten");
	tap_is_int(metadata_xmp_write(raw, &odd, NULL, &err), 0, "text that needs escaping");
	tap_ok(xml_well_formed(side), "is well-formed XML");
	exiftool_is(NULL, "XMP-dc:Identifier", side, "V<1>&2", "exiftool: escaped identifier");
	exiftool_is(NULL, "XMP-copystand:Collection", side, "Fish & \"Reptiles\"",
		    "exiftool: escaped collection");
	exiftool_is(NULL, "XMP-copystand:Station", side, "st\xef\xbf\xbd\xef\xbf\xbd",
		    "exiftool: control characters and stray bytes as U+FFFD");
	exiftool_is(NULL, "XMP-xmp:CreateDate", side, "", "no time, no CreateDate");
	free(side);

	spit(in_dir(foreign, "IMG_2.xmp"), foreign_xmp, strlen(foreign_xmp));
	spit(in_dir(path, "IMG_2.NEF"), "MM\0*raw", 7);
	sha256_file(foreign, sha, NULL, NULL);
	tap_is_int(metadata_xmp_write(path, &stamp, NULL, &err), CS_E_CONFLICT,
		   "another program's sidecar is not overwritten");
	tap_ok(strstr(err.msg, "move it away") != NULL, "and says what to do: %s", err.msg);
	sha256_file(foreign, after, NULL, NULL);
	tap_is_str(after, sha, "it is unchanged");

	tap_is_int(metadata_xmp_write(in_dir(path, "IMG_3.XMP"), &stamp, NULL, NULL),
		   CS_E_INVALID, "a sidecar has none");
	tap_is_int(metadata_xmp_write(in_dir(path, "IMG_4.CR2"), &stamp, NULL, NULL), CS_E_IO,
		   "a missing file has none");
	tap_ok(harness_dir_is(dir, "IMG_1.CR2 IMG_1.xmp IMG_2.NEF IMG_2.xmp"),
	       "and nothing was written");
	unlink(raw);
	unlink(foreign);
	unlink(path);
	unlink(want);

	spit(in_dir(raw, "scan"), "x", 1);
	sidecar_is(raw, in_dir(want, "scan.xmp"), "a file without extension");
	unlink(raw);
	snprintf(path, sizeof path, "%s/dot.v2", dir);
	mkdir(path, 0755);
	spit(in_dir(raw, "dot.v2/IMG"), "x", 1);
	sidecar_is(raw, in_dir(want, "dot.v2/IMG.xmp"), "a dot in the folder's name");
	unlink(raw);
	rmdir(path);
}

/* --- attachment fields ------------------------------------------------------ */

static void fields_are(const metadata_info *info, const metadata_defaults *d,
		       const char *want, const char *what)
{
	char *json = NULL;

	tap_is_int(metadata_attachment_fields(info, d, "000000123", "Fish", "000000123.jpg",
					      &json, NULL), 0, what);
	tap_is_str(json, want, what);
	free(json);
}

static void device_is(const char *make, const char *model, const char *want)
{
	metadata_info info = { 0 };
	char *json = NULL;
	cJSON *o;

	snprintf(info.make, sizeof info.make, "%s", make);
	snprintf(info.model, sizeof info.model, "%s", model);
	metadata_attachment_fields(&info, NULL, NULL, NULL, NULL, &json, NULL);
	o = cJSON_Parse(json);
	tap_is_str(cJSON_GetStringValue(cJSON_GetObjectItem(o, "capturedevice")), want,
		   "capturedevice of Make and Model");
	cJSON_Delete(o);
	free(json);
}

/* Characters in valid UTF-8 s, or -1. */
static long utf8_chars(const char *s)
{
	long n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
		int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
			  (*p & 0xf8) == 0xf0 ? 4 : 0;
		if (!len)
			return -1;
		for (int i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80)
				return -1;
		p += len;
	}
	return n;
}

/* A field's value cut to its column: its characters and where it ends. */
static void cut_is(const char *key, const char *value, long chars, const char *tail)
{
	metadata_defaults d = { .title = value, .ispublic = -1, .license = value,
				.copyright_holder = value, .credit = value, .remarks = value };
	char *json = NULL;
	const char *got;
	cJSON *o;

	metadata_attachment_fields(NULL, &d, NULL, NULL, NULL, &json, NULL);
	o = cJSON_Parse(json);
	got = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
	tap_is_int(got ? utf8_chars(got) : -2, chars, key);
	tap_ok(got && strlen(got) >= strlen(tail) &&
	       !strcmp(got + strlen(got) - strlen(tail), tail), "%s ends at a character", key);
	cJSON_Delete(o);
	free(json);
}

static void test_fields(void)
{
	metadata_info info = { .date_original = "2024:05:06 07:08:09", .make = "Canon",
			       .model = "Canon EOS 5D" };
	metadata_defaults d = { .title = "{identifier} ({collection}, {date}) {name} {other}",
				.ispublic = 1, .license = "CC BY 4.0", .copyright_holder = "",
				.credit = "Museum", .remarks = "bad \xff byte" };
	char long_text[2000] = "", *json = NULL;

	fields_are(&info, NULL, "{\"dateimaged\":\"2024-05-06 07:08:09\",\"filecreateddate\":"
		   "\"2024-05-06\",\"capturedevice\":\"Canon EOS 5D\",\"title\":\"000000123.jpg\"}",
		   "from EXIF, default title");
	fields_are(NULL, NULL, "{\"title\":\"000000123.jpg\"}", "no EXIF: the title only");
	fields_are(&info, &d, "{\"dateimaged\":\"2024-05-06 07:08:09\",\"filecreateddate\":"
		   "\"2024-05-06\",\"capturedevice\":\"Canon EOS 5D\",\"title\":\"000000123 "
		   "(Fish, 2024-05-06) 000000123.jpg "
		   "{other}\",\"ispublic\":true,\"license\":\"CC BY 4.0\",\"credit\":\"Museum\","
		   "\"remarks\":\"bad \xef\xbf\xbd byte\"}", "the title pattern and defaults");
	d.ispublic = 0;
	d.title = "";
	strcpy(info.date_original, "    :  :     :  :  ");
	fields_are(&info, &d, "{\"capturedevice\":\"Canon EOS 5D\",\"ispublic\":false,"
		   "\"license\":\"CC BY 4.0\",\"credit\":\"Museum\",\"remarks\":\"bad \xef\xbf\xbd "
		   "byte\"}", "no date, no title, not public");
	strcpy(info.date_original, "0000:00:00 00:00:00");
	d = (metadata_defaults){ .title = "{date}", .ispublic = -1 };
	fields_are(&info, &d, "{\"capturedevice\":\"Canon EOS 5D\"}", "a zero date is no date");

	device_is("NIKON CORPORATION", "NIKON D850", "NIKON D850");
	device_is("SONY", "ILCE-7M3", "SONY ILCE-7M3");
	device_is("Canon", "CanonScan 9000F", "Canon CanonScan 9000F");
	device_is("Leica Camera AG", "LEICA M10", "LEICA M10");
	device_is("Phase One", "", "Phase One");
	device_is("", "iPhone 12", "iPhone 12");

	for (int i = 0; i < 300; i++)
		strcat(long_text, "é");
	cut_is("title", long_text, 255, "é");
	cut_is("license", long_text, 64, "é");
	cut_is("remarks", long_text, 300, "é");
	memset(long_text, 'a', 254);
	strcpy(long_text + 254, "€€");
	cut_is("title", long_text, 255, "a€");
	cut_is("copyrightholder", long_text, 64, "a");
	memset(long_text, 'b', 63);
	strcpy(long_text + 63, "\xf0\x9f\x90\x9f tail");
	cut_is("credit", long_text, 64, "b\xf0\x9f\x90\x9f");

	tap_is_int(metadata_attachment_fields(NULL, NULL, NULL, NULL, NULL, &json, NULL), 0,
		   "nothing known");
	tap_is_str(json, "{}", "an empty object");
	free(json);
}

/* Every image type a watched folder or a camera brings has its own type in
 * Specify, not application/octet-stream. */
static void test_mimetypes(void)
{
	static const struct { const char *name, *type; } want[] = {
		{ "a.JPG", "image/jpeg" }, { "a.tiff", "image/tiff" },
		{ "a.CR2", "image/x-canon-cr2" }, { "a.cr3", "image/x-canon-cr3" },
		{ "a.crw", "image/x-canon-raw" }, { "a.nef", "image/x-nikon-nef" },
		{ "a.NRW", "image/x-nikon-nrw" }, { "a.arw", "image/x-sony-arw" },
		{ "a.raf", "image/x-fuji-raf" }, { "a.ORF", "image/x-olympus-orf" },
		{ "a.rw2", "image/x-panasonic-raw2" }, { "a.pef", "image/x-pentax-pef" },
		{ "a.srw", "image/x-samsung-srw" }, { "a.dng", "image/x-adobe-dng" },
		{ "a.3fr", "image/x-hasselblad-3fr" }, { "a.iiq", "image/x-phaseone-iiq" },
		{ "a.heic", "image/heic" }, { "a.xmp", "application/octet-stream" },
		{ "noext", "application/octet-stream" },
	};

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		tap_ok(!strcmp(metadata_mimetype(want[i].name), want[i].type), "%s is %s (%s)",
		       want[i].name, want[i].type, metadata_mimetype(want[i].name));
}

int main(int argc, char **argv)
{
	const char *ver[] = { "exiftool", "-ver", NULL };

	if (argc < 2)
		return tap_skip_all("usage: test-metadata MKJPEG");
	mkjpeg = argv[1];
	snprintf(dir, sizeof dir, "%s/shots", harness_home());
	mkdir(dir, 0755);
	have_exiftool = run(ver, NULL) == 0;
	test_walk();
	test_plain_jpeg();
	test_camera_jpeg();
	test_maker_note_offsets();
	test_full_exif();
	test_long_header();
	test_failures();
	test_xmp();
	test_fields();
	test_mimetypes();
	harness_cleanup();
	return tap_done();
}
