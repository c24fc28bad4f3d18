#include "card.h"

#include "buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>

/* Handles of the two folders every card starts with. */
#define HANDLE_DCIM    1u
#define HANDLE_FOLDER  2u

/* The picture: modest, smooth (so it compresses far below JPEG_MIN_SIZE)
 * with the shot number drawn as a row of black and white squares. */
#define JPEG_WIDTH   640
#define JPEG_HEIGHT  480
#define BIT_SIZE     40
#define BITS_TOP     400

/* Bytes of every JPEG reserved for the comment naming the shot; the
 * Exif segment and the encoded image get the rest of JPEG_MIN_SIZE. */
#define COMMENT_MIN  64u
/* A COM segment: marker, 16-bit length (counting itself), up to 65533
 * bytes of text. */
#define SEGMENT_MAX  (2u + 65535u)

/* A RAW shot is a CR2 as Canon starts one: the TIFF header with Canon's
 * "CR" v2.0 after it, then IFD0 and its values; the image data, one strip
 * running to the end of the file, starts at RAW_HEADER.  RAW shots are as
 * big as their JPEG. */
#define RAW_HEADER   256u
#define RAW_IFD0     16u
#define RAW_ENTRIES  11u
#define RAW_DESC     (RAW_IFD0 + 2u + 12u * RAW_ENTRIES + 4u)
#define RAW_DESC_MAX 64u
#define RAW_MAKE     (RAW_DESC + RAW_DESC_MAX)
#define RAW_MAKE_TEXT "copystand-emu"
_Static_assert(RAW_MAKE + sizeof RAW_MAKE_TEXT <= RAW_HEADER, "the CR2's texts fit its header");

struct card {
	struct object **objects;
	size_t n, cap;
	uint32_t next_handle;
	unsigned next_shot;     /* the nnnn of the next IMG_nnnn */
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static void object_free(struct object *o)
{
	if (!o)
		return;
	free(o->jpeg);
	free(o->path);
	free(o);
}

static struct object *object_new(struct card *card, uint32_t parent, uint16_t format,
				 const char *name, uint64_t size, time_t mtime)
{
	struct object *o = calloc(1, sizeof *o);

	if (!o)
		return NULL;
	o->handle = card->next_handle++;
	o->parent = parent;
	o->format = format;
	snprintf(o->name, sizeof o->name, "%s", name);
	o->size = size;
	o->mtime = mtime;
	return o;
}

/* Makes room for more objects first, so that adding a shot's files
 * cannot fail half-way. */
static int reserve(struct card *card, size_t more)
{
	struct object **grown;
	size_t cap = card->cap ? card->cap : 16;

	while (cap < card->n + more)
		cap *= 2;
	if (cap == card->cap)
		return 0;
	if (!(grown = realloc(card->objects, cap * sizeof *grown)))
		return -1;
	card->objects = grown;
	card->cap = cap;
	return 0;
}

static int add(struct card *card, struct object *o)
{
	if (!o || reserve(card, 1)) {
		object_free(o);
		return -1;
	}
	card->objects[card->n++] = o;
	return 0;
}

struct card *card_new(time_t now)
{
	struct card *card = calloc(1, sizeof *card);

	if (!card)
		return NULL;
	card->next_handle = HANDLE_DCIM;
	card->next_shot = 1;
	if (add(card, object_new(card, 0, FORMAT_ASSOCIATION, "DCIM", 0, now)) ||
	    add(card, object_new(card, HANDLE_DCIM, FORMAT_ASSOCIATION, "100COPYS", 0, now))) {
		card_free(card);
		return NULL;
	}
	return card;
}

void card_free(struct card *card)
{
	if (!card)
		return;
	for (size_t i = 0; i < card->n; i++)
		object_free(card->objects[i]);
	free(card->objects);
	free(card);
}

size_t card_count(const struct card *card)
{
	return card->n;
}

const struct object *card_at(const struct card *card, size_t i)
{
	return card->objects[i];
}

static struct object *find(const struct card *card, uint32_t handle)
{
	for (size_t i = 0; i < card->n; i++)
		if (card->objects[i]->handle == handle)
			return card->objects[i];
	return NULL;
}

const struct object *card_find_any(const struct card *card, uint32_t handle)
{
	return find(card, handle);
}

const struct object *card_find(const struct card *card, uint32_t handle)
{
	const struct object *o = card_find_any(card, handle);

	return o && !o->unwritten ? o : NULL;
}

void card_reveal(struct card *card, uint32_t handle)
{
	struct object *o = find(card, handle);

	if (o)
		o->unwritten = false;
}

uint64_t card_used(const struct card *card)
{
	uint64_t used = 0;

	for (size_t i = 0; i < card->n; i++)
		used += card->objects[i]->size;
	return used;
}

bool card_remove(struct card *card, uint32_t handle)
{
	for (size_t i = 0; i < card->n; i++) {
		struct object *o = card->objects[i];
		if (o->handle != handle || o->format == FORMAT_ASSOCIATION)
			continue;
		object_free(o);
		memmove(&card->objects[i], &card->objects[i + 1],
			(card->n - i - 1) * sizeof *card->objects);
		card->n--;
		return true;
	}
	return false;
}

/* --- files pre-loaded from a folder --- */

/* Cards hold DCF names; a name the control protocol could not list
 * unambiguously is left out rather than mangled. */
static bool listable_name(const char *name)
{
	if (strlen(name) >= sizeof ((struct object *)0)->name)
		return false;
	for (const char *p = name; *p; p++)
		if (*p <= ' ' || *p == ':' || *p == 0x7f)
			return false;
	return true;
}

static bool is_jpeg_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

/* Keeps the camera's numbering going after the files already on the card. */
static void follow_numbering(struct card *card, const char *name)
{
	unsigned n;
	char dot;

	if (sscanf(name, "IMG_%4u%c", &n, &dot) == 2 && dot == '.' && n >= card->next_shot)
		card->next_shot = n % 9999 + 1;
}

static int load_file(struct card *card, const char *dir, const char *name)
{
	struct object *o;
	struct stat st;
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -1;
	if (stat(path, &st) || !S_ISREG(st.st_mode) || !listable_name(name) ||
	    (uint64_t)st.st_size > OBJECT_MAX_SIZE) {
		fprintf(stderr, "ptpip-camera: skipping %s (not a regular file with a "
			"card-like name under 4 GiB)\n", path);
		free(path);
		return 0;
	}
	o = object_new(card, HANDLE_FOLDER, is_jpeg_name(name) ? FORMAT_JPEG : FORMAT_RAW,
		       name, (uint64_t)st.st_size, st.st_mtime);
	if (!o) {
		free(path);
		return -1;
	}
	o->path = path;
	follow_numbering(card, name);
	return add(card, o);
}

int card_load_dir(struct card *card, const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), ret = 0;

	if (n < 0) {
		fprintf(stderr, "ptpip-camera: cannot read %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (ret == 0 && names[i]->d_name[0] != '.' &&
		    load_file(card, dir, names[i]->d_name)) {
			fprintf(stderr, "ptpip-camera: out of memory loading %s\n", dir);
			ret = -1;
		}
		free(names[i]);
	}
	free(names);
	return ret;
}

/* --- JPEG shots --- */

/* libjpeg reports errors by longjmp, so a failed encoding still frees
 * everything. */
struct jpeg_failure {
	struct jpeg_error_mgr mgr;
	jmp_buf env;
};

static void jpeg_fail(j_common_ptr c)
{
	longjmp(((struct jpeg_failure *)c->err)->env, 1);
}

/* Writes into a fixed buffer: an image that does not fit under
 * JPEG_MIN_SIZE is an error, not a reallocation. */
struct jpeg_sink {
	struct jpeg_destination_mgr mgr;
	unsigned char *buf;
	size_t cap;
};

static void sink_init(j_compress_ptr c)
{
	struct jpeg_sink *s = (struct jpeg_sink *)c->dest;
	s->mgr.next_output_byte = s->buf;
	s->mgr.free_in_buffer = s->cap;
}

static boolean sink_full(j_compress_ptr c)
{
	ERREXIT(c, JERR_BUFFER_SIZE);
	return FALSE;
}

static void sink_term(j_compress_ptr c)
{
	(void)c;
}

static void paint_row(unsigned char *row, int y, unsigned shot)
{
	for (int x = 0; x < JPEG_WIDTH; x++) {
		unsigned char *px = row + 3 * x;
		int bit = x / BIT_SIZE;
		if (y >= BITS_TOP && y < BITS_TOP + BIT_SIZE) {
			memset(px, (shot >> bit) & 1 ? 255 : 0, 3);
			continue;
		}
		px[0] = (unsigned char)(x * 255 / JPEG_WIDTH);
		px[1] = (unsigned char)(y * 255 / JPEG_HEIGHT);
		px[2] = (unsigned char)(shot * 37);
	}
}

/* Kept apart from encode_jpeg() so that no local of the function calling
 * setjmp() changes before a longjmp(). */
static int compress(struct jpeg_compress_struct *c, struct jpeg_failure *fail, unsigned shot)
{
	unsigned char row[JPEG_WIDTH * 3];
	JSAMPROW rows[1] = { row };

	if (setjmp(fail->env))
		return -1;
	c->image_width = JPEG_WIDTH;
	c->image_height = JPEG_HEIGHT;
	c->input_components = 3;
	c->in_color_space = JCS_RGB;
	jpeg_set_defaults(c);
	jpeg_set_quality(c, 85, TRUE);
	jpeg_start_compress(c, TRUE);
	for (int y = 0; y < JPEG_HEIGHT; y++) {
		paint_row(row, y, shot);
		jpeg_write_scanlines(c, rows, 1);
	}
	jpeg_finish_compress(c);
	return 0;
}

/* The image is encoded exif_len bytes into the buffer, so that the Exif
 * segment then goes in between its SOI and the rest without a copy:
 * readers look for Exif right after SOI, and the JFIF APP0 follows it. */
static int encode_jpeg(struct object *o, const unsigned char *exif, size_t exif_len)
{
	struct jpeg_compress_struct c;
	struct jpeg_failure fail;
	struct jpeg_sink sink = {
		.mgr = { .init_destination = sink_init, .empty_output_buffer = sink_full,
			 .term_destination = sink_term },
	};
	unsigned char *app0;
	int ret;

	if (exif_len >= JPEG_MIN_SIZE - COMMENT_MIN ||
	    !(o->jpeg = malloc(JPEG_MIN_SIZE - COMMENT_MIN)))
		return -1;
	sink.buf = o->jpeg + exif_len;
	sink.cap = JPEG_MIN_SIZE - COMMENT_MIN - exif_len;
	c.err = jpeg_std_error(&fail.mgr);
	fail.mgr.error_exit = jpeg_fail;
	jpeg_create_compress(&c);
	c.dest = &sink.mgr;
	ret = compress(&c, &fail, o->shot);
	jpeg_destroy_compress(&c);
	if (ret)
		return -1;
	/* A segment (4 bytes at least) covers the encoder's SOI. */
	if (exif_len) {
		memcpy(o->jpeg, "\xff\xd8", 2);
		memcpy(o->jpeg + 2, exif, exif_len);
	}
	o->jpeg_len = exif_len + sink.cap - sink.mgr.free_in_buffer;
	/* The filler goes after the header segments. */
	app0 = o->jpeg + 2 + exif_len;
	o->jpeg_head = 2 + exif_len;
	if (app0[0] == 0xff && app0[1] == 0xe0)
		o->jpeg_head += 2u + (size_t)(app0[2] << 8 | app0[3]);
	o->width = JPEG_WIDTH;
	o->height = JPEG_HEIGHT;
	return 0;
}

/* One COM segment of the filler: its header, the comment naming the shot
 * (first segment only), then zeros. */
static void segment_read(const struct object *o, uint64_t seg, uint64_t seglen,
			 uint64_t from, unsigned char *buf, size_t len)
{
	unsigned char head[4] = { 0xff, 0xfe, (unsigned char)((seglen - 2) >> 8),
				  (unsigned char)(seglen - 2) };
	char text[COMMENT_MIN];
	size_t tl = 0, i = 0;

	if (seg == 0)
		tl = (size_t)snprintf(text, sizeof text, "ptpip-camera %.24s shot %u",
				      o->name, o->shot);
	tl = (size_t)min_u64(min_u64(tl, sizeof text - 1), seglen - 4);
	for (; i < len && from + i < 4; i++)
		buf[i] = head[from + i];
	for (; i < len && from + i < 4 + tl; i++)
		buf[i] = (unsigned char)text[from + i - 4];
	memset(buf + i, 0, len - i);
}

/* The filler is split into equal COM segments (the first few one byte
 * longer), so any position maps to its segment by division. */
static void filler_read(const struct object *o, uint64_t at, unsigned char *buf, size_t len)
{
	uint64_t total = o->size - o->jpeg_len;
	uint64_t n = (total + SEGMENT_MAX - 1) / SEGMENT_MAX;
	uint64_t base = total / n, longer = total % n, split = longer * (base + 1);

	while (len) {
		uint64_t seg, seglen, start;
		size_t k;
		if (at < split) {
			seglen = base + 1;
			seg = at / seglen;
			start = seg * seglen;
		} else {
			seglen = base;
			seg = longer + (at - split) / base;
			start = split + (seg - longer) * base;
		}
		k = (size_t)min_u64(len, start + seglen - at);
		segment_read(o, seg, seglen, at - start, buf, k);
		buf += k;
		at += k;
		len -= k;
	}
}

static void jpeg_read(const struct object *o, uint64_t off, unsigned char *buf, size_t len)
{
	uint64_t tail = o->size - (o->jpeg_len - o->jpeg_head);

	while (len) {
		size_t k;
		if (off < o->jpeg_head) {
			k = (size_t)min_u64(len, o->jpeg_head - off);
			memcpy(buf, o->jpeg + off, k);
		} else if (off < tail) {
			k = (size_t)min_u64(len, tail - off);
			filler_read(o, off - o->jpeg_head, buf, k);
		} else {
			k = len;
			memcpy(buf, o->jpeg + o->jpeg_head + (off - tail), k);
		}
		buf += k;
		off += k;
		len -= k;
	}
}

/* --- RAW shots: a minimal CR2, then a cheap pattern --- */

/* TIFF field types. */
enum { T_ASCII = 2, T_SHORT = 3, T_LONG = 4 };

/* Entry i of IFD0: a value that fits in 4 bytes, or the offset of one
 * that does not. */
static void raw_entry(struct buf *head, unsigned i, uint32_t tag, uint32_t type,
		      uint32_t count, uint32_t value)
{
	size_t e = RAW_IFD0 + 2 + 12 * i;

	patch_le(head, e, tag, 2);
	patch_le(head, e + 2, type, 2);
	patch_le(head, e + 4, count, 4);
	patch_le(head, e + 8, value, type == T_SHORT ? 2 : 4);
}

/* The first RAW_HEADER bytes: header, IFD0 describing one 8-bit grey row
 * that is the rest of the file (sizes stay below 4 GiB), its texts. */
static void raw_header(const struct object *o, unsigned char bytes[RAW_HEADER])
{
	/* Written in place: patch_le() never grows a buffer. */
	struct buf head = { .data = bytes, .len = RAW_HEADER, .cap = RAW_HEADER };
	uint32_t data = (uint32_t)(o->size - RAW_HEADER), desc_len;

	memset(bytes, 0, RAW_HEADER);
	memcpy(bytes, "II*\0", 4);
	patch_le(&head, 4, RAW_IFD0, 4);
	memcpy(bytes + 8, "CR\2\0", 4);
	patch_le(&head, 12, RAW_IFD0, 4);       /* the RAW IFD: here IFD0 itself */
	patch_le(&head, RAW_IFD0, RAW_ENTRIES, 2);
	desc_len = (uint32_t)snprintf((char *)bytes + RAW_DESC, RAW_DESC_MAX,
				      "ptpip-camera %.24s shot %u", o->name, o->shot) + 1;
	memcpy(bytes + RAW_MAKE, RAW_MAKE_TEXT, sizeof RAW_MAKE_TEXT);
	raw_entry(&head, 0, 0x100, T_LONG, 1, data);             /* ImageWidth */
	raw_entry(&head, 1, 0x101, T_LONG, 1, 1);                /* ImageLength */
	raw_entry(&head, 2, 0x102, T_SHORT, 1, 8);               /* BitsPerSample */
	raw_entry(&head, 3, 0x103, T_SHORT, 1, 1);               /* Compression: none */
	raw_entry(&head, 4, 0x106, T_SHORT, 1, 1);               /* BlackIsZero */
	raw_entry(&head, 5, 0x10e, T_ASCII, desc_len, RAW_DESC); /* ImageDescription */
	raw_entry(&head, 6, 0x10f, T_ASCII, sizeof RAW_MAKE_TEXT, RAW_MAKE); /* Make */
	raw_entry(&head, 7, 0x111, T_LONG, 1, RAW_HEADER);       /* StripOffsets */
	raw_entry(&head, 8, 0x115, T_SHORT, 1, 1);               /* SamplesPerPixel */
	raw_entry(&head, 9, 0x116, T_LONG, 1, 1);                /* RowsPerStrip */
	raw_entry(&head, 10, 0x117, T_LONG, 1, data);            /* StripByteCounts */
}

/* The strip is a pattern seeded by the shot number and the moment of its
 * press: no two presses give the same bytes, as on a real camera, also
 * when an emulator started again counts its shots from 1 again. */
static void raw_read(const struct object *o, uint64_t off, unsigned char *buf, size_t len)
{
	unsigned char head[RAW_HEADER];
	uint64_t seed = (uint64_t)o->pressed.camera_us * 1000003u + o->shot;

	if (off < RAW_HEADER)
		raw_header(o, head);
	for (size_t i = 0; i < len; i++, off++)
		buf[i] = off < RAW_HEADER ? head[off]
					  : (unsigned char)((((off + seed) * 2654435761u) >> 24) ^ o->shot);
}

static int file_read(const struct object *o, uint64_t off, unsigned char *buf, size_t len)
{
	int fd = open(o->path, O_RDONLY | O_CLOEXEC);
	size_t done = 0;

	if (fd < 0)
		return -1;
	while (done < len) {
		ssize_t r = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (r <= 0) {
			if (r == 0)
				errno = EIO;    /* the file shrank under us */
			break;
		}
		done += (size_t)r;
	}
	close(fd);
	return done == len ? 0 : -1;
}

int card_read(const struct object *o, uint64_t off, unsigned char *buf, size_t len)
{
	if (o->path)
		return file_read(o, off, buf, len);
	if (o->jpeg)
		jpeg_read(o, off, buf, len);
	else
		raw_read(o, off, buf, len);
	return 0;
}

#define STR_(x) #x
#define STR(x) STR_(x)

const char *card_check_size(uint64_t size)
{
	if (size > OBJECT_MAX_SIZE)
		return "SIZE must be below 4 GiB (libgphoto2 reads 32-bit sizes)";
	if (size < JPEG_MIN_SIZE)
		return "SIZE must be at least " STR(JPEG_MIN_SIZE) " (the smallest JPEG)";
	return NULL;
}

/* One file of shot number no, unwritten, dated on the camera's clock
 * (never before 1970: see clock_set() in ptpip-camera.c). */
static struct object *shot_object(struct card *card, unsigned no, const char *ext,
				  uint16_t format, uint64_t size, const struct shot *s)
{
	char name[16];
	struct object *o;

	snprintf(name, sizeof name, "IMG_%04u.%s", no, ext);
	if (!(o = object_new(card, HANDLE_FOLDER, format, name, size,
			     (time_t)(s->pressed.camera_us / 1000000))))
		return NULL;
	o->shot = no;
	o->pressed = s->pressed;
	o->unwritten = true;
	return o;
}

static struct object *shot_jpeg(struct card *card, unsigned no, const struct shot *s)
{
	struct object *o = shot_object(card, no, "JPG", FORMAT_JPEG, s->size, s);

	if (o && encode_jpeg(o, s->exif, s->exif_len)) {
		object_free(o);
		return NULL;
	}
	return o;
}

/* The JPEG of a shot whose image is a file's: the bytes of jpeg_path. */
static struct object *shot_from_file(struct card *card, unsigned no, const struct shot *s)
{
	struct stat st;
	struct object *o;

	if (stat(s->jpeg_path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > OBJECT_MAX_SIZE ||
	    !(o = shot_object(card, no, "JPG", FORMAT_JPEG, (uint64_t)st.st_size, s)))
		return NULL;
	if (!(o->path = strdup(s->jpeg_path))) {
		object_free(o);
		return NULL;
	}
	return o;
}

int card_shoot(struct card *card, const struct shot *s, uint32_t handles[2])
{
	struct object *files[2] = { NULL, NULL };
	unsigned no = card->next_shot;
	uint32_t first_handle = card->next_handle;
	int n = 0;

	if (card_check_size(s->size) || reserve(card, 2))
		return -1;
	if (s->kind == SHOT_RAW_JPEG &&
	    !(files[n++] = shot_object(card, no, "CR2", FORMAT_RAW, s->size, s)))
		goto fail;
	if (!(files[n++] = s->jpeg_path ? shot_from_file(card, no, s) : shot_jpeg(card, no, s)))
		goto fail;
	for (int i = 0; i < n; i++) {
		card->objects[card->n++] = files[i];
		handles[i] = files[i]->handle;
	}
	card->next_shot = no % 9999 + 1;
	return n;
fail:
	for (int i = 0; i < n; i++)
		object_free(files[i]);
	card->next_handle = first_handle;
	return -1;
}
