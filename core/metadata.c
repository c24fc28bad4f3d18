#include "metadata.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libexif/exif-data.h>
#include <libexif/exif-utils.h>

#include "durable.h"
#include "sha256.h"

enum {
	M_TEM = 0x01, M_RST0 = 0xd0, M_RST7 = 0xd7, M_SOI = 0xd8, M_EOI = 0xd9,
	M_SOS = 0xda, M_APP0 = 0xe0, M_APP1 = 0xe1,
};

/* The EXIF APP1 sits within the first 64 KiB or so; a header is read in
 * growing steps only when other segments come before it. */
#define HEAD_FIRST (128 * 1024)
#define HEAD_MAX (16 * 1024 * 1024)
/* A segment's length field counts itself: 65535 - 2 bytes of payload. */
#define APP1_MAX 65533

static const char stamp_prefix[] = "copystand: catalog number ";

typedef int (*walk_fn)(void *ud, int marker, size_t offset,
		       const unsigned char *payload, size_t n);

/* --- text ---------------------------------------------------------------- */

/* The length of the UTF-8 character at s (n bytes left) and its code
 * point; 0 for a byte that starts none (overlong, surrogate, cut short). */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
	static const unsigned least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 :
		     (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	unsigned c;

	if (!len || len > n)
		return 0;
	c = len == 1 ? s[0] : s[0] & (0x7fu >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < least[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static size_t utf8_put(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Copies src (n bytes, or up to a NUL) into dst (cap bytes with the NUL) as
 * valid UTF-8 of at most max_chars characters: a byte that is no UTF-8
 * becomes U+FFFD, and a character that does not fit is left out whole.
 * Returns the bytes written. */
static size_t text_copy(char *dst, size_t cap, const char *src, size_t n,
			size_t max_chars)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t len = 0, i = 0;
	unsigned cp;

	for (; i < n && s[i] && max_chars > 0; max_chars--) {
		size_t k = utf8_next(s + i, n - i, &cp);
		size_t m = k ? k : 3;

		if (len + m >= cap)
			break;
		memcpy(dst + len, k ? src + i : "\xef\xbf\xbd", m);
		len += m;
		i += k ? k : 1;
	}
	dst[len] = '\0';
	return len;
}

/* text_copy into a new string (NULL: out of memory). */
static char *text_dup(const char *s, size_t max_chars)
{
	size_t n = strlen(s);
	char *t = malloc(3 * n + 1); /* a stray byte grows to U+FFFD's three */

	if (t)
		text_copy(t, 3 * n + 1, s, n, max_chars);
	return t;
}

/* "YYYY:MM:DD HH:MM:SS" in digits; cameras without a set clock write
 * blanks or zeros instead. */
static bool date_ok(const char *s)
{
	static const char shape[] = "dddd:dd:dd dd:dd:dd";

	for (size_t i = 0; i < sizeof shape - 1; i++)
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i])
			return false;
	return s[sizeof shape - 1] == '\0' && strncmp(s, "0000", 4) != 0;
}

/* ISO 8601 in UTC, or false when the time is to be left out. */
static bool iso_time(double t, char out[32])
{
	struct tm tm;
	time_t s;

	/* Up to the year 9999; NaN fails the first test. */
	if (!(t > 0) || t >= 253402300800.0)
		return false;
	s = (time_t)t;
	return gmtime_r(&s, &tm) && strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0;
}

/* "copystand: catalog number 000000123; collection Fish; station s1;
 * 2026-11-25T16:00:00Z", with the parts the stamp has. */
static char *provenance(const metadata_stamp *st)
{
	char when[32];
	const char *parts[][2] = {
		{ "catalog number ", st->identifier },
		{ "collection ", st->collection },
		{ "station ", st->station },
		{ "", iso_time(st->time, when) ? when : NULL },
	};
	const char *sep = ": ";
	char *text = NULL;
	size_t size;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	fputs("copystand", f);
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		if (!parts[i][1] || !parts[i][1][0])
			continue;
		fprintf(f, "%s%s%s", sep, parts[i][0], parts[i][1]);
		sep = "; ";
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- the JPEG segment walker --------------------------------------------- */

/* The walk proper: *need gets the length a buffer that ended too soon
 * would need to go on (0 when the data is malformed rather than short). */
static int walk(const unsigned char *buf, size_t len, walk_fn fn, void *ud,
		size_t *need, cs_error *err)
{
	size_t pos = 2, at, seglen;
	int marker, ret;

	*need = 0;
	if (len < 2 || buf[0] != 0xff || buf[1] != M_SOI) {
		if (len < 2)
			*need = 2;
		return cs_error_set(err, CS_E_INVALID, "not a JPEG: it does not start "
				    "with the JPEG start-of-image marker FF D8");
	}
	if ((ret = fn(ud, M_SOI, 0, buf + 2, 0)))
		return ret;
	for (;;) {
		if (pos < len && buf[pos] != 0xff)
			return cs_error_set(err, CS_E_INVALID, "not a valid JPEG: byte %zu "
					    "is 0x%02X where a marker belongs", pos, buf[pos]);
		/* Any number of 0xFF may fill the space before a marker. */
		while (pos + 1 < len && buf[pos + 1] == 0xff)
			pos++;
		if (pos + 2 > len)
			break;
		at = pos;
		marker = buf[pos + 1];
		pos += 2;
		if (marker == M_TEM || (marker >= M_RST0 && marker <= M_RST7)) {
			if ((ret = fn(ud, marker, at, buf + pos, 0)))
				return ret;
			continue;
		}
		if (marker == 0x00 || marker == M_SOI || marker == M_EOI)
			return cs_error_set(err, CS_E_INVALID, "not a valid JPEG: marker "
					    "FF %02X at byte %zu before the image data",
					    marker, at);
		if (len - pos < 2)
			break;
		seglen = (size_t)buf[pos] << 8 | buf[pos + 1];
		if (seglen < 2)
			return cs_error_set(err, CS_E_INVALID, "not a valid JPEG: the "
					    "segment at byte %zu has the length %zu", at, seglen);
		if (len - pos < seglen) {
			*need = pos + seglen;
			break;
		}
		if ((ret = fn(ud, marker, at, buf + pos + 2, seglen - 2)))
			return ret;
		pos += seglen;
		if (marker == M_SOS)
			return 0;
	}
	if (*need <= len)
		*need = len + 1;
	return cs_error_set(err, CS_E_INVALID, "not a whole JPEG: its header is cut "
			    "short at byte %zu, before the image data", len);
}

int metadata_jpeg_walk(const unsigned char *buf, size_t len,
		       int (*fn)(void *ud, int marker, size_t offset,
				 const unsigned char *payload, size_t n),
		       void *ud, cs_error *err)
{
	size_t need;

	if ((!buf && len) || !fn)
		return cs_error_set(err, CS_E_INVALID,
				    "metadata_jpeg_walk: a buffer and a function are needed");
	return walk(buf, len, fn, ud, &need, err);
}

static bool is_exif(int marker, const unsigned char *p, size_t n)
{
	return marker == M_APP1 && n >= 6 && memcmp(p, "Exif\0\0", 6) == 0;
}

/* Where the first EXIF APP1 segment is: its payload's offset and size
 * (n 0: none), and the image data after the SOS header. */
struct scan {
	size_t exif_at, exif_n;
	size_t image_at;
};

/* For reading: stops at the EXIF segment. */
static int find_exif(void *ud, int marker, size_t at, const unsigned char *p, size_t n)
{
	struct scan *sc = ud;

	if (!is_exif(marker, p, n))
		return 0;
	sc->exif_at = at + 4;
	sc->exif_n = n;
	return 1;
}

/* For stamping: walks the whole header. */
static int scan_all(void *ud, int marker, size_t at, const unsigned char *p, size_t n)
{
	struct scan *sc = ud;

	if (!sc->exif_n && is_exif(marker, p, n)) {
		sc->exif_at = at + 4;
		sc->exif_n = n;
	}
	if (marker == M_SOS)
		sc->image_at = at + 4 + n;
	return 0;
}

/* Reads until n bytes or the end of the file: the bytes read, -1 on error. */
static ssize_t read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* The head of a JPEG file: read in growing steps until fn has walked as far
 * as it wants; h->buf (malloc'd) and h->len hold what was read. */
struct head {
	unsigned char *buf;
	size_t len;
};

static int head_read(int fd, const char *path, struct head *h, walk_fn fn,
		     void *ud, cs_error *err)
{
	size_t want = HEAD_FIRST, need;
	int ret;

	for (;;) {
		unsigned char *p = realloc(h->buf, want);
		ssize_t n;

		if (!p)
			return cs_error_set(err, CS_E_NOMEM, "out of memory reading %s", path);
		h->buf = p;
		if ((n = read_full(fd, h->buf + h->len, want - h->len)) < 0)
			return cs_error_set(err, CS_E_IO, "cannot read %s: %s", path,
					    strerror(errno));
		h->len += (size_t)n;
		ret = walk(h->buf, h->len, fn, ud, &need, err);
		/* Done, malformed, or the whole file is in and cut short. */
		if (ret != CS_E_INVALID || !need || h->len < want)
			break;
		if (need > HEAD_MAX)
			return cs_error_set(err, CS_E_INVALID, "%s: the JPEG header before "
					    "the image data is larger than %d MiB; copystand "
					    "does not read it", path, HEAD_MAX >> 20);
		want = need > 2 * h->len ? need : 2 * h->len;
		if (want > HEAD_MAX)
			want = HEAD_MAX;
	}
	if (ret < 0)
		cs_error_prefix(err, "%s", path);
	return ret;
}

/* --- reading EXIF -------------------------------------------------------- */

/* libexif on an APP1 payload ("Exif\0\0" and the TIFF structure), keeping
 * what it finds as it is: no tag dropped as unknown, none added or "fixed"
 * (its fixes would, among others, invent a DateTime of now), and the maker
 * note saved as it came, not rebuilt from the entries libexif understood. */
static ExifData *exif_load(ExifMem *mem, const unsigned char *p, size_t n)
{
	ExifData *ed = exif_data_new_mem(mem);

	if (!ed)
		return NULL;
	exif_data_unset_option(ed, EXIF_DATA_OPTION_IGNORE_UNKNOWN_TAGS);
	exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
	exif_data_set_option(ed, EXIF_DATA_OPTION_DONT_CHANGE_MAKER_NOTE);
	if (p)
		exif_data_load_data(ed, p, (unsigned)n);
	return ed;
}

/* libexif gives up without a word on a TIFF header it cannot read. */
static bool tiff_readable(const unsigned char *p, size_t n)
{
	ExifByteOrder order;

	if (n < 14)
		return false;
	if (memcmp(p + 6, "II", 2) == 0)
		order = EXIF_BYTE_ORDER_INTEL;
	else if (memcmp(p + 6, "MM", 2) == 0)
		order = EXIF_BYTE_ORDER_MOTOROLA;
	else
		return false;
	return exif_get_short(p + 8, order) == 42 &&
	       (size_t)exif_get_long(p + 10, order) + 8 <= n;
}

/* A text entry of one IFD, trailing blanks cut ("" when absent). */
static void entry_text(ExifContent *c, ExifTag tag, char *out, size_t size)
{
	ExifEntry *e = exif_content_get_entry(c, tag);
	size_t n = 0;

	out[0] = '\0';
	if (e && e->data && exif_format_get_size(e->format) == 1)
		n = text_copy(out, size, (const char *)e->data, e->size, SIZE_MAX);
	while (n && out[n - 1] == ' ')
		out[--n] = '\0';
}

/* A UserComment as UTF-8: ASCII, or UNICODE (UTF-16 in the EXIF's byte
 * order); "" for other character codes. */
static void comment_decode(const ExifEntry *e, ExifByteOrder order, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	if (!e || !e->data || e->size < 8)
		return;
	if (memcmp(e->data, "ASCII\0\0\0", 8) == 0) {
		text_copy(out, size, (const char *)e->data + 8, e->size - 8, SIZE_MAX);
		return;
	}
	if (memcmp(e->data, "UNICODE\0", 8) != 0)
		return;
	for (size_t i = 8; i + 1 < e->size && len + 4 < size; i += 2) {
		unsigned cp = exif_get_short(e->data + i, order), lo;

		if (!cp)
			break;
		if (cp >= 0xd800 && cp < 0xdc00 && i + 3 < e->size &&
		    (lo = exif_get_short(e->data + i + 2, order)) >= 0xdc00 && lo < 0xe000) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 2;
		} else if (cp >= 0xd800 && cp < 0xe000) {
			cp = 0xfffd;
		}
		len += utf8_put(out + len, cp);
	}
	out[len] = '\0';
}

/* The catalog number of a copystand stamp.  The UserComment names it up to
 * the next ';'; ImageDescription holds it whole, so a number with a ';' in
 * it comes back whole while the two agree. */
static void stamp_identifier(ExifData *ed, metadata_info *out)
{
	char text[1024];
	const char *id = text + sizeof stamp_prefix - 1;
	size_t n, d = strlen(out->description);

	comment_decode(exif_content_get_entry(ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_USER_COMMENT),
		       exif_data_get_byte_order(ed), text, sizeof text);
	if (strncmp(text, stamp_prefix, sizeof stamp_prefix - 1) != 0)
		return;
	n = strcspn(id, ";");
	if (d && strncmp(id, out->description, d) == 0 && (id[d] == ';' || !id[d]))
		n = d;
	text_copy(out->identifier, sizeof out->identifier, id, n, SIZE_MAX);
}

/* Fills out from an EXIF APP1 payload (NULL: a JPEG without EXIF). */
static int info_fill(metadata_info *out, const unsigned char *p, size_t n, cs_error *err)
{
	ExifMem *mem = p ? exif_mem_new_default() : NULL;
	ExifData *ed = mem ? exif_load(mem, p, n) : NULL;
	char date[64];
	int ret = 0;

	if (!p)
		return 0;
	if (!ed) {
		exif_mem_unref(mem);
		return cs_error_set(err, CS_E_NOMEM, "out of memory reading EXIF");
	}
	entry_text(ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_DATE_TIME_ORIGINAL, date, sizeof date);
	if (date_ok(date))
		memcpy(out->date_original, date, sizeof out->date_original);
	entry_text(ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_SUB_SEC_TIME_ORIGINAL, out->subsec_original,
		   sizeof out->subsec_original);
	entry_text(ed->ifd[EXIF_IFD_0], EXIF_TAG_MAKE, out->make, sizeof out->make);
	entry_text(ed->ifd[EXIF_IFD_0], EXIF_TAG_MODEL, out->model, sizeof out->model);
	entry_text(ed->ifd[EXIF_IFD_0], EXIF_TAG_IMAGE_DESCRIPTION, out->description,
		   sizeof out->description);
	stamp_identifier(ed, out);
	if (ed->data && ed->size) {
		if ((out->thumbnail = malloc(ed->size))) {
			memcpy(out->thumbnail, ed->data, ed->size);
			out->thumbnail_size = ed->size;
		} else {
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory reading EXIF");
		}
	}
	exif_data_unref(ed);
	exif_mem_unref(mem);
	return ret;
}

void metadata_info_clear(metadata_info *info)
{
	if (!info)
		return;
	free(info->thumbnail);
	memset(info, 0, sizeof *info);
}

/* What the walk found (ret 0: no EXIF before the image data; 1: EXIF). */
static int info_finish(const unsigned char *buf, int ret, const struct scan *sc,
		       metadata_info *out, cs_error *err)
{
	if (ret >= 0)
		ret = info_fill(out, sc->exif_n ? buf + sc->exif_at : NULL, sc->exif_n, err);
	if (ret < 0)
		metadata_info_clear(out);
	return ret;
}

int metadata_read_buffer(const unsigned char *buf, size_t len,
			 metadata_info *out, cs_error *err)
{
	struct scan sc = { 0 };
	size_t need;

	memset(out, 0, sizeof *out);
	if (!buf && len)
		return cs_error_set(err, CS_E_INVALID, "metadata_read_buffer: no buffer");
	return info_finish(buf, walk(buf, len, find_exif, &sc, &need, err), &sc, out, err);
}

int metadata_read(const char *path, metadata_info *out, cs_error *err)
{
	struct head h = { 0 };
	struct scan sc = { 0 };
	int fd, ret;

	memset(out, 0, sizeof *out);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return cs_error_set(err, CS_E_IO, "cannot read %s: %s", path, strerror(errno));
	ret = head_read(fd, path, &h, find_exif, &sc, err);
	close(fd);
	ret = info_finish(h.buf, ret, &sc, out, err);
	free(h.buf);
	return ret;
}

/* --- stamping a JPEG ----------------------------------------------------- */

/* A UserComment: "ASCII" when the text is, else "UNICODE" with UTF-16 in
 * the EXIF's byte order, as exiftool writes it (malloc'd). */
static unsigned char *comment_encode(const char *text, ExifByteOrder order, size_t *size)
{
	size_t len = strlen(text), n = 8;
	unsigned char *c = malloc(8 + 2 * len); /* UTF-16 takes at most 2 bytes a byte */
	bool ascii = true;

	for (size_t i = 0; i < len; i++)
		ascii = ascii && (unsigned char)text[i] < 0x80;
	if (!c)
		return NULL;
	if (ascii) {
		memcpy(c, "ASCII\0\0\0", 8);
		memcpy(c + 8, text, len);
		*size = 8 + len;
		return c;
	}
	memcpy(c, "UNICODE\0", 8);
	for (size_t i = 0, k; i < len; i += k) {
		unsigned cp;

		if (!(k = utf8_next((const unsigned char *)text + i, len - i, &cp))) {
			cp = 0xfffd;
			k = 1;
		}
		if (cp >= 0x10000) {
			exif_set_short(c + n, order, (ExifShort)(0xd800 | (cp - 0x10000) >> 10));
			n += 2;
			cp = 0xdc00 | (cp & 0x3ff);
		}
		exif_set_short(c + n, order, (ExifShort)cp);
		n += 2;
	}
	*size = n;
	return c;
}

static bool entry_is(ExifContent *c, ExifTag tag, ExifFormat format,
		     const void *data, size_t n)
{
	ExifEntry *e = exif_content_get_entry(c, tag);

	return e && e->format == format && e->data && e->size == n &&
	       e->components == n && memcmp(e->data, data, n) == 0;
}

/* Sets a byte-sized entry (ASCII, UNDEFINED), adding it if it is missing. */
static bool entry_set(ExifMem *mem, ExifContent *c, ExifTag tag, ExifFormat format,
		      const void *data, size_t n)
{
	ExifEntry *e = exif_content_get_entry(c, tag);
	unsigned char *copy = exif_mem_alloc(mem, (ExifLong)n);

	if (!copy)
		return false;
	memcpy(copy, data, n);
	if (!e) {
		if (!(e = exif_entry_new_mem(mem))) {
			exif_mem_free(mem, copy);
			return false;
		}
		e->tag = tag;
		exif_content_add_entry(c, e);
		exif_entry_unref(e);
		if (e->parent != c) { /* the IFD could not grow; e is gone */
			exif_mem_free(mem, copy);
			return false;
		}
	}
	exif_mem_free(mem, e->data);
	e->data = copy;
	e->size = (unsigned)n;
	e->components = n;
	e->format = format;
	return true;
}

/* The file's EXIF (p: its APP1 payload, or NULL for none) with the stamp
 * in it, in *out; 1 when it carries exactly this stamp already. */
static int exif_stamp(ExifMem *mem, const unsigned char *p, size_t n,
		      const metadata_stamp *st, const char *path, ExifData **out,
		      cs_error *err)
{
	const char *id = st->identifier && st->identifier[0] ? st->identifier : NULL;
	size_t id_n = id ? strlen(id) + 1 : 0, comment_n = 0;
	unsigned char *comment = NULL;
	char *text = NULL;
	ExifData *ed;
	bool ok;

	*out = NULL;
	if (p && !tiff_readable(p, n))
		return cs_error_set(err, CS_E_INVALID, "%s: its EXIF is damaged and cannot "
				    "be read; copystand leaves the file as it is (remove or "
				    "repair its EXIF to stamp it)", path);
	ed = exif_load(mem, p, n);
	if (ed && (text = provenance(st)))
		comment = comment_encode(text, exif_data_get_byte_order(ed), &comment_n);
	free(text);
	if (!comment) {
		exif_data_unref(ed);
		return cs_error_set(err, CS_E_NOMEM, "out of memory stamping %s", path);
	}
	*out = ed;
	if (entry_is(ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_USER_COMMENT, EXIF_FORMAT_UNDEFINED,
		     comment, comment_n) &&
	    (!id || entry_is(ed->ifd[EXIF_IFD_0], EXIF_TAG_IMAGE_DESCRIPTION,
			     EXIF_FORMAT_ASCII, id, id_n))) {
		free(comment);
		return 1;
	}
	/* A new EXIF IFD says which version of the standard it follows. */
	ok = ed->ifd[EXIF_IFD_EXIF]->count ||
	     entry_set(mem, ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_EXIF_VERSION,
		       EXIF_FORMAT_UNDEFINED, "0232", 4);
	/* The camera's firmware version, when it wrote one, is kept. */
	if (ok && !exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_SOFTWARE))
		ok = entry_set(mem, ed->ifd[EXIF_IFD_0], EXIF_TAG_SOFTWARE,
			       EXIF_FORMAT_ASCII, "copystand", sizeof "copystand");
	if (ok && id)
		ok = entry_set(mem, ed->ifd[EXIF_IFD_0], EXIF_TAG_IMAGE_DESCRIPTION,
			       EXIF_FORMAT_ASCII, id, id_n);
	if (ok)
		ok = entry_set(mem, ed->ifd[EXIF_IFD_EXIF], EXIF_TAG_USER_COMMENT,
			       EXIF_FORMAT_UNDEFINED, comment, comment_n);
	free(comment);
	return ok ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory stamping %s", path);
}

/* --- stamping in place ---------------------------------------------------
 *
 * Rebuilding the EXIF moves every value, and maker notes that point to
 * their data by offsets from the start of the TIFF header (Canon's, among
 * others) then point to the old places.  So the stamp is added the way a
 * careful editor does: the old TIFF structure stays byte for byte where it
 * was, and new copies of IFD0 and the EXIF IFD, holding the new entries,
 * are appended after it; the header then points to the new IFD0.  Every
 * old offset stays true.  Only when that does not fit in a JPEG segment,
 * or the structure cannot be followed, is the EXIF rebuilt by libexif. */

#define TAG_IMAGE_DESCRIPTION 0x010e
#define TAG_SOFTWARE 0x0131
#define TAG_EXIF_IFD 0x8769
#define TAG_EXIF_VERSION 0x9000
#define TAG_USER_COMMENT 0x9286
#define IFD_MAX_ENTRIES 1000

struct tiff_out {
	unsigned char *b;       /* the APP1 payload: "Exif\0\0", then the TIFF */
	size_t n, cap;
	ExifByteOrder order;
};

/* The IFD at off: its entry count, when the whole IFD and every value it
 * points to lie in the TIFF, each of a type TIFF knows.  Anything else is
 * left to libexif, whose reader stops at the first such entry. */
static bool ifd_at(const struct tiff_out *t, uint32_t off, unsigned *count)
{
	const unsigned char *tiff = t->b + 6;
	size_t tn = t->n - 6;

	if (off < 8 || off % 2 || (size_t)off + 2 > tn)
		return false;
	*count = exif_get_short(tiff + off, t->order);
	if (*count > IFD_MAX_ENTRIES || (size_t)off + 2 + 12u * *count + 4 > tn)
		return false;
	for (unsigned i = 0; i < *count; i++) {
		const unsigned char *e = tiff + off + 2 + 12 * i;
		unsigned format = exif_get_short(e + 2, t->order);
		uint64_t size = (uint64_t)exif_get_long(e + 4, t->order) *
			exif_format_get_size((ExifFormat)format);

		if (!exif_format_get_size((ExifFormat)format) ||
		    (size > 4 && (uint64_t)exif_get_long(e + 8, t->order) + size > tn))
			return false;
	}
	return true;
}

/* Appends len bytes at an even offset; their offset from the TIFF header,
 * or 0 when the segment would overflow. */
static uint32_t tiff_put(struct tiff_out *t, const void *data, size_t len)
{
	size_t at = t->n + ((t->n - 6) % 2);

	if (at + len > t->cap)
		return 0;
	memset(t->b + t->n, 0, at - t->n);
	memcpy(t->b + at, data, len);
	t->n = at + len;
	return (uint32_t)(at - 6);
}

/* One entry of a byte-sized type (ASCII, UNDEFINED): inline when it fits
 * in four bytes, else appended.  False when the segment would overflow. */
static bool entry_make(struct tiff_out *t, unsigned char e[12], unsigned tag,
		       ExifFormat format, const unsigned char *data, size_t len)
{
	memset(e, 0, 12);
	exif_set_short(e, t->order, (ExifShort)tag);
	exif_set_short(e + 2, t->order, (ExifShort)format);
	exif_set_long(e + 4, t->order, (ExifLong)len);
	if (len <= 4) {
		memcpy(e + 8, data, len);
		return true;
	}
	uint32_t off = tiff_put(t, data, len);
	exif_set_long(e + 8, t->order, off);
	return off != 0;
}

/* The entries of an IFD, kept in tag order as TIFF wants. */
struct ifd_list {
	unsigned char (*e)[12];
	unsigned n;
};

/* Puts e in the place of the entry with its tag, else before the first
 * entry with a greater one: the old entries keep their order. */
static void ifd_set(struct ifd_list *l, const struct tiff_out *t, const unsigned char e[12])
{
	unsigned tag = exif_get_short(e, t->order), i;

	for (i = 0; i < l->n; i++)
		if (exif_get_short(l->e[i], t->order) == tag) {
			memcpy(l->e[i], e, 12);
			return;
		}
	for (i = 0; i < l->n && exif_get_short(l->e[i], t->order) < tag; i++)
		;
	memmove(l->e + i + 1, l->e + i, (l->n - i) * 12);
	memcpy(l->e[i], e, 12);
	l->n++;
}

/* Copies the IFD at off into l (room for 3 more); *next: its link. */
static void ifd_load(struct ifd_list *l, const struct tiff_out *t, uint32_t off,
		     unsigned count, uint32_t *next)
{
	const unsigned char *p = t->b + 6 + off + 2;

	memcpy(l->e, p, 12u * count);
	l->n = count;
	*next = exif_get_long(p + 12 * count, t->order);
}

/* Appends the IFD; its offset, or 0 when the segment would overflow. */
static uint32_t ifd_put(struct tiff_out *t, const struct ifd_list *l, uint32_t next)
{
	unsigned char head[2], tail[4];
	uint32_t off;

	exif_set_short(head, t->order, (ExifShort)l->n);
	exif_set_long(tail, t->order, next);
	if (!(off = tiff_put(t, head, 2)) || t->n + 12u * l->n + 4 > t->cap)
		return 0;
	for (unsigned i = 0; i < l->n; i++)
		memcpy(t->b + t->n + 12 * i, l->e[i], 12);
	t->n += 12u * l->n;
	memcpy(t->b + t->n, tail, 4);
	t->n += 4;
	return off;
}

static const ExifEntry *entry_of(ExifData *ed, ExifIfd ifd, ExifTag tag)
{
	return exif_content_get_entry(ed->ifd[ifd], tag);
}

/* The stamp ed holds (exif_stamp put it there) added to the EXIF p, in
 * place: *out (exif_mem_free it), or 1 when it cannot be done so. */
static int stamp_in_place(ExifMem *mem, ExifData *ed, const unsigned char *p, size_t n,
			  unsigned char **out, unsigned *out_n)
{
	const ExifEntry *desc = entry_of(ed, EXIF_IFD_0, EXIF_TAG_IMAGE_DESCRIPTION);
	const ExifEntry *soft = entry_of(ed, EXIF_IFD_0, EXIF_TAG_SOFTWARE);
	const ExifEntry *comment = entry_of(ed, EXIF_IFD_EXIF, EXIF_TAG_USER_COMMENT);
	struct tiff_out t = { .n = n, .cap = APP1_MAX, .order = exif_data_get_byte_order(ed) };
	unsigned c0, c1 = 0, i;
	uint32_t exif_off = 0, next0, next1 = 0, off;
	unsigned char e[12];
	bool had_soft = false;
	int ret = 1;

	if (!comment || n < 14 || n > APP1_MAX || !(t.b = exif_mem_alloc(mem, APP1_MAX)))
		return comment && n >= 14 && n <= APP1_MAX ? CS_E_NOMEM : 1;
	memcpy(t.b, p, n);
	if (!ifd_at(&t, exif_get_long(t.b + 10, t.order), &c0))
		goto out;
	const unsigned char *ifd0 = t.b + 6 + exif_get_long(t.b + 10, t.order) + 2;
	for (i = 0; i < c0; i++) {
		unsigned tag = exif_get_short(ifd0 + 12 * i, t.order);
		if (tag == TAG_EXIF_IFD)
			exif_off = exif_get_long(ifd0 + 12 * i + 8, t.order);
		had_soft |= tag == TAG_SOFTWARE;
	}
	if (exif_off && !ifd_at(&t, exif_off, &c1))
		goto out;
	struct ifd_list l0 = { calloc(c0 + 3, 12), 0 }, l1 = { calloc(c1 + 3, 12), 0 };
	if (!l0.e || !l1.e) {
		ret = CS_E_NOMEM;
		goto lists;
	}
	ifd_load(&l0, &t, exif_get_long(t.b + 10, t.order), c0, &next0);
	if (exif_off)
		ifd_load(&l1, &t, exif_off, c1, &next1);
	else if (entry_make(&t, e, TAG_EXIF_VERSION, EXIF_FORMAT_UNDEFINED,
			    (const unsigned char *)"0232", 4))
		ifd_set(&l1, &t, e);
	if (!entry_make(&t, e, TAG_USER_COMMENT, EXIF_FORMAT_UNDEFINED, comment->data,
			comment->size))
		goto lists;
	ifd_set(&l1, &t, e);
	if (desc && !entry_make(&t, e, TAG_IMAGE_DESCRIPTION, EXIF_FORMAT_ASCII, desc->data,
				desc->size))
		goto lists;
	if (desc)
		ifd_set(&l0, &t, e);
	if (!had_soft && soft && !entry_make(&t, e, TAG_SOFTWARE, EXIF_FORMAT_ASCII,
					     soft->data, soft->size))
		goto lists;
	if (!had_soft && soft)
		ifd_set(&l0, &t, e);
	if (!(off = ifd_put(&t, &l1, next1)))
		goto lists;
	memset(e, 0, 12);
	exif_set_short(e, t.order, TAG_EXIF_IFD);
	exif_set_short(e + 2, t.order, EXIF_FORMAT_LONG);
	exif_set_long(e + 4, t.order, 1);
	exif_set_long(e + 8, t.order, off);
	ifd_set(&l0, &t, e);
	if (!(off = ifd_put(&t, &l0, next0)))
		goto lists;
	exif_set_long(t.b + 10, t.order, off);
	*out = t.b;
	*out_n = (unsigned)t.n;
	t.b = NULL;
	ret = 0;
lists:
	free(l0.e);
	free(l1.e);
out:
	exif_mem_free(mem, t.b);
	return ret;
}

/* The APP1 payload of ed (exif_mem_free it); a thumbnail that makes it too
 * large for a JPEG segment is dropped rather than the stamp. */
static int exif_save(ExifData *ed, ExifMem *mem, const char *path,
		     unsigned char **app1, unsigned *n, cs_error *err)
{
	ExifContent *ifd1 = ed->ifd[EXIF_IFD_1];

	for (;;) {
		exif_data_save_data(ed, app1, n);
		if (!*app1 || !*n)
			return cs_error_set(err, CS_E_NOMEM, "out of memory stamping %s", path);
		if (*n <= APP1_MAX)
			return 0;
		exif_mem_free(mem, *app1);
		*app1 = NULL;
		if (!ed->data)
			return cs_error_set(err, CS_E_INVALID, "%s: its EXIF would grow past the "
					    "64 KiB a JPEG segment holds; copystand leaves the "
					    "file as it is", path);
		exif_mem_free(mem, ed->data);
		ed->data = NULL;
		ed->size = 0;
		/* IFD1 describes the thumbnail only. */
		for (unsigned i = ifd1->count; i > 0; i--)
			exif_content_remove_entry(ifd1, ifd1->entries[0]);
	}
}

/* Writes the header again: SOI, the APP0 (JFIF) segments that follow it,
 * the new EXIF APP1, then every other segment but the old EXIF as it was. */
struct rewrite {
	durable_file *out;
	const unsigned char *buf;
	size_t old_exif;        /* its payload's offset; 0: none */
	const unsigned char *app1;
	size_t app1_n;
	bool app1_done;
	cs_error *err;
};

static int rewrite_segment(void *ud, int marker, size_t at, const unsigned char *p, size_t n)
{
	struct rewrite *s = ud;
	int ret;

	if (!s->app1_done && marker != M_SOI && marker != M_APP0) {
		unsigned char head[4] = { 0xff, M_APP1, (unsigned char)((s->app1_n + 2) >> 8),
					  (unsigned char)((s->app1_n + 2) & 0xff) };
		s->app1_done = true;
		if ((ret = durable_write(s->out, head, sizeof head, s->err)) ||
		    (ret = durable_write(s->out, s->app1, s->app1_n, s->err)))
			return ret;
	}
	if (s->old_exif && at + 4 == s->old_exif)
		return 0;
	return durable_write(s->out, s->buf + at, (size_t)(p - s->buf) + n - at, s->err);
}

static int stamp_write(int fd, const char *path, mode_t mode, const struct head *h,
		  const struct scan *sc, const unsigned char *app1, size_t app1_n,
		  long long *size, char *sha256, cs_error *err)
{
	durable_file a;
	struct rewrite rw = {
		.out = &a, .buf = h->buf, .old_exif = sc->exif_n ? sc->exif_at : 0,
		.app1 = app1, .app1_n = app1_n, .err = err,
	};
	size_t need;
	int ret = durable_open(&a, path, mode, true, err);

	if (ret == 0)
		ret = walk(h->buf, h->len, rewrite_segment, &rw, &need, err);
	if (ret == 0)
		ret = durable_copy_fd(&a, fd, (off_t)sc->image_at, path, err);
	if (ret == 0)
		return durable_commit(&a, size, sha256, err);
	durable_abort(&a);
	return ret;
}

int metadata_jpeg_stamp(const char *path, const metadata_stamp *st,
			long long *size, char *sha256, cs_error *err)
{
	struct head h = { 0 };
	struct scan sc = { 0 };
	struct stat sb;
	ExifMem *mem = NULL;
	ExifData *ed = NULL;
	unsigned char *app1 = NULL;
	unsigned app1_n = 0;
	int fd, ret = 0;

	if (!path || !st)
		return cs_error_set(err, CS_E_INVALID,
				    "metadata_jpeg_stamp: a file and a stamp are needed");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return cs_error_set(err, CS_E_IO, "cannot read %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0)
		ret = cs_error_set(err, CS_E_IO, "cannot read %s: %s", path, strerror(errno));
	else if (!S_ISREG(sb.st_mode))
		ret = cs_error_set(err, CS_E_INVALID, "%s is not a file", path);
	if (ret == 0)
		ret = head_read(fd, path, &h, scan_all, &sc, err);
	if (ret == 0 && !(mem = exif_mem_new_default()))
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory stamping %s", path);
	if (ret == 0)
		ret = exif_stamp(mem, sc.exif_n ? h.buf + sc.exif_at : NULL, sc.exif_n, st,
				 path, &ed, err);
	/* In place when it can be, else rebuilt (1: it cannot). */
	if (ret == 0 && sc.exif_n &&
	    (ret = stamp_in_place(mem, ed, h.buf + sc.exif_at, sc.exif_n, &app1, &app1_n)) == 1)
		ret = 0;
	if (ret == CS_E_NOMEM)
		cs_error_set(err, ret, "out of memory stamping %s", path);
	if (ret == 0 && !app1)
		ret = exif_save(ed, mem, path, &app1, &app1_n, err);
	if (ret == 0)
		ret = stamp_write(fd, path, sb.st_mode & 0777, &h, &sc, app1, app1_n, size,
			     sha256, err);
	else if (ret == 1 && sha256)
		ret = sha256_file(path, sha256, size, err);
	else if (ret == 1 && size)
		*size = (long long)sb.st_size;
	exif_mem_free(mem, app1);
	exif_data_unref(ed);
	exif_mem_unref(mem);
	free(h.buf);
	close(fd);
	return ret < 0 ? ret : 0;
}

/* --- the XMP sidecar ----------------------------------------------------- */

#define XMP_OURS "x:xmptk=\"copystand\""

/* Text for XML: escaped, and what XML 1.0 cannot hold (control characters,
 * bytes that are no UTF-8) as U+FFFD. */
static void xml_put(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), k;
	unsigned cp;

	for (size_t i = 0; i < n; i += k ? k : 1) {
		char buf[4];

		k = utf8_next(p + i, n - i, &cp);
		if (!k || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') ||
		    cp == 0xfffe || cp == 0xffff)
			cp = 0xfffd;
		if (cp == '&')
			fputs("&amp;", f);
		else if (cp == '<')
			fputs("&lt;", f);
		else if (cp == '>')
			fputs("&gt;", f);
		else if (cp == '"')
			fputs("&quot;", f);
		else if (cp < 0x20)
			fprintf(f, "&#%u;", cp);
		else
			fwrite(buf, 1, utf8_put(buf, cp), f);
	}
}

static void xmp_property(FILE *f, const char *name, const char *value)
{
	if (!value || !value[0])
		return;
	fprintf(f, "   <%s>", name);
	xml_put(f, value);
	fprintf(f, "</%s>\n", name);
}

/* The sidecar's packet (malloc'd; NULL: out of memory). */
static char *xmp_packet(const metadata_stamp *st, size_t *n)
{
	char when[32], *xml = NULL, *text = provenance(st);
	FILE *f = text ? open_memstream(&xml, n) : NULL;

	if (!f) {
		free(text);
		return NULL;
	}
	fputs("<?xpacket begin=\"\xef\xbb\xbf\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
	      "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\" " XMP_OURS ">\n"
	      " <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n"
	      "  <rdf:Description rdf:about=\"\"\n"
	      "    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n"
	      "    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"\n"
	      "    xmlns:dwc=\"http://rs.tdwg.org/dwc/terms/\"\n"
	      "    xmlns:copystand=\"urn:x-copystand:1.0/\">\n", f);
	xmp_property(f, "dc:identifier", st->identifier);
	fputs("   <dc:description>\n    <rdf:Alt>\n     <rdf:li xml:lang=\"x-default\">", f);
	xml_put(f, text);
	fputs("</rdf:li>\n    </rdf:Alt>\n   </dc:description>\n", f);
	if (iso_time(st->time, when))
		xmp_property(f, "xmp:CreateDate", when);
	xmp_property(f, "dwc:catalogNumber", st->identifier);
	xmp_property(f, "copystand:collection", st->collection);
	xmp_property(f, "copystand:station", st->station);
	fputs("  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>\n", f);
	free(text);
	if (fclose(f) != 0) {
		free(xml);
		return NULL;
	}
	return xml;
}

/* "<stem>.xmp" beside path (Adobe's convention: IMG_1.CR2 → IMG_1.xmp). */
static int sidecar_path(const char *path, char **out, cs_error *err)
{
	const char *base = strrchr(path, '/'), *dot;
	int stem;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	if (dot && strcasecmp(dot, ".xmp") == 0)
		return cs_error_set(err, CS_E_INVALID, "%s is itself an XMP sidecar", path);
	stem = (int)(dot && dot > base ? (size_t)(dot - path) : strlen(path));
	if (asprintf(out, "%.*s.xmp", stem, path) < 0) {
		*out = NULL;
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	return 0;
}

/* An existing sidecar: 1 when it holds exactly xml, 0 when copystand wrote
 * it (its mode goes to *mode) or there is none; another program's is never
 * overwritten. */
static int sidecar_check(const char *side, const char *xml, size_t n, mode_t *mode,
			 cs_error *err)
{
	unsigned char buf[65536];
	struct stat sb;
	ssize_t got;
	int fd = open(side, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &sb) < 0 || (got = read_full(fd, buf, sizeof buf)) < 0)
		ret = cs_error_set(err, CS_E_IO, "cannot read %s: %s", side, strerror(errno));
	else if ((size_t)got == n && memcmp(buf, xml, n) == 0)
		ret = 1;
	else if ((size_t)got == sizeof buf || !memmem(buf, (size_t)got, XMP_OURS, strlen(XMP_OURS)))
		ret = cs_error_set(err, CS_E_CONFLICT, "%s exists and was written by another "
				   "program; copystand does not overwrite it: move it away "
				   "to have copystand write its own", side);
	else
		*mode = sb.st_mode;
	if (fd >= 0)
		close(fd);
	return ret;
}

int metadata_xmp_write(const char *path, const metadata_stamp *st,
		       char **sidecar, cs_error *err)
{
	char *side = NULL, *xml = NULL;
	size_t xml_n = 0;
	struct stat sb;
	durable_file a;
	int ret;

	if (sidecar)
		*sidecar = NULL;
	if (!path || !st)
		return cs_error_set(err, CS_E_INVALID,
				    "metadata_xmp_write: a file and a stamp are needed");
	if ((ret = sidecar_path(path, &side, err)))
		return ret;
	if (stat(path, &sb) < 0)
		ret = cs_error_set(err, CS_E_IO, "cannot read %s: %s", path, strerror(errno));
	else if (!(xml = xmp_packet(st, &xml_n)))
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory writing %s", side);
	else
		ret = sidecar_check(side, xml, xml_n, &sb.st_mode, err);
	if (ret == 0 && (ret = durable_open(&a, side, sb.st_mode & 0666, true, err)) == 0) {
		if ((ret = durable_write(&a, xml, xml_n, err)) == 0)
			ret = durable_commit(&a, NULL, NULL, err);
		else
			durable_abort(&a);
	}
	if (ret >= 0 && sidecar) {
		*sidecar = side;
		side = NULL;
	}
	free(side);
	free(xml);
	return ret < 0 ? ret : 0;
}

/* --- attachment fields --------------------------------------------------- */

/* "Make Model", without the make again when the model starts with its first
 * word (Canon, Canon EOS R5; NIKON CORPORATION, NIKON D850). */
static void capture_device(const char *make, const char *model, char *out, size_t size)
{
	size_t word = strcspn(make, " ");

	if (!make[0] || (word && strncasecmp(model, make, word) == 0 &&
			 (model[word] == ' ' || model[word] == '\0')))
		snprintf(out, size, "%s", model);
	else if (!model[0])
		snprintf(out, size, "%s", make);
	else
		snprintf(out, size, "%s %s", make, model);
}

/* The title pattern with {name}, {identifier}, {date} and {collection}
 * replaced (malloc'd); other braces stay as written. */
static char *title_expand(const char *pattern, const char *const values[4])
{
	static const char *const keys[4] = { "{name}", "{identifier}", "{date}", "{collection}" };
	char *out = NULL;
	size_t size;
	FILE *f = open_memstream(&out, &size);

	if (!f)
		return NULL;
	while (*pattern) {
		size_t i = 0;

		while (i < 4 && strncmp(pattern, keys[i], strlen(keys[i])) != 0)
			i++;
		if (i < 4) {
			fputs(values[i] ? values[i] : "", f);
			pattern += strlen(keys[i]);
		} else {
			fputc(*pattern++, f);
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Adds s cut to max_chars characters; nothing for NULL or "".  False when
 * out of memory. */
static bool add_text(cJSON *o, const char *key, const char *s, size_t max_chars)
{
	char *t;
	bool ok;

	if (!s || !s[0])
		return true;
	if (!(t = text_dup(s, max_chars)))
		return false;
	ok = cJSON_AddStringToObject(o, key, t) != NULL;
	free(t);
	return ok;
}

int metadata_attachment_fields(const metadata_info *info,
			       const metadata_defaults *d,
			       const char *identifier, const char *collection,
			       const char *name, char **json, cs_error *err)
{
	static const metadata_defaults none = { .ispublic = -1 };
	char when[20] = "", day[11] = "", device[256] = "";
	const char *values[4] = { name, identifier, day, collection };
	cJSON *o = cJSON_CreateObject();
	char *title = NULL;
	bool ok;

	*json = NULL;
	if (!d)
		d = &none;
	if (info && date_ok(info->date_original)) {
		/* Specify shows dates as ISO: 2024-05-06 07:08:09. */
		memcpy(when, info->date_original, sizeof when);
		when[4] = when[7] = '-';
		memcpy(day, when, 10);
	}
	if (info)
		capture_device(info->make, info->model, device, sizeof device);
	title = title_expand(d->title ? d->title : "{name}", values);
	/* Lengths are the columns' in characters, as MySQL counts them. */
	ok = o && title && add_text(o, "dateimaged", when, 64) &&
	     add_text(o, "filecreateddate", day, 10) &&
	     add_text(o, "capturedevice", device, 128) && add_text(o, "title", title, 255) &&
	     (d->ispublic < 0 || cJSON_AddBoolToObject(o, "ispublic", d->ispublic > 0)) &&
	     add_text(o, "license", d->license, 64) &&
	     add_text(o, "copyrightholder", d->copyright_holder, 64) &&
	     add_text(o, "credit", d->credit, 64) && add_text(o, "remarks", d->remarks, SIZE_MAX);
	if (ok)
		*json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	free(title);
	return *json ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

bool metadata_is_jpeg(const char *mimetype, const char *name)
{
	return (mimetype && strcmp(mimetype, "image/jpeg") == 0) ||
	       (name && strcmp(metadata_mimetype(name), "image/jpeg") == 0);
}

const char *metadata_mimetype(const char *name)
{
	/* libgphoto2's names where it has one (GP_MIME_*), the usual x-
	 * names of the other cameras' RAWs (the watched folder's list). */
	static const struct { const char *ext, *type; } types[] = {
		{ ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" }, { ".tif", "image/tiff" },
		{ ".tiff", "image/tiff" }, { ".png", "image/png" }, { ".dng", "image/x-adobe-dng" },
		{ ".cr2", "image/x-canon-cr2" }, { ".cr3", "image/x-canon-cr3" },
		{ ".crw", "image/x-canon-raw" }, { ".nef", "image/x-nikon-nef" },
		{ ".nrw", "image/x-nikon-nrw" }, { ".arw", "image/x-sony-arw" },
		{ ".srf", "image/x-sony-srf" }, { ".sr2", "image/x-sony-sr2" },
		{ ".raf", "image/x-fuji-raf" }, { ".orf", "image/x-olympus-orf" },
		{ ".rw2", "image/x-panasonic-raw2" }, { ".rwl", "image/x-leica-rwl" },
		{ ".pef", "image/x-pentax-pef" }, { ".srw", "image/x-samsung-srw" },
		{ ".3fr", "image/x-hasselblad-3fr" }, { ".fff", "image/x-hasselblad-fff" },
		{ ".iiq", "image/x-phaseone-iiq" }, { ".erf", "image/x-epson-erf" },
		{ ".mos", "image/x-leaf-mos" }, { ".mef", "image/x-mamiya-mef" },
		{ ".mrw", "image/x-minolta-mrw" }, { ".kdc", "image/x-kodak-kdc" },
		{ ".dcr", "image/x-kodak-dcr" }, { ".x3f", "image/x-sigma-x3f" },
		{ ".heic", "image/heic" }, { ".heif", "image/heif" }, { ".hif", "image/heif" },
		{ ".pdf", "application/pdf" },
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
		if (strcasecmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}
