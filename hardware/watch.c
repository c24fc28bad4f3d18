/* A folder as a capture device.  What shapes this file:
 *  - a file is judged only by what stat and reading it say: inotify
 *    events (or a listing, when polling) just make the watch look at a
 *    name sooner, so both ways behave alike and a lost event costs time,
 *    never a file;
 *  - "stable" is measured on this computer's monotonic clock from the
 *    moment a change was seen, never by comparing the file's mtime with
 *    our clock: a file server's clock and a camera's times (gphoto2 sets
 *    mtime to the shot's time) are not ours;
 *  - a file is read through one descriptor between two fstat calls that
 *    must agree with the version that settled, so what is delivered is
 *    what was read whole;
 *  - the names are kept sorted for bsearch: a long session's folder holds
 *    thousands of files and is listed every poll interval. */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "metadata.h"

#define DEFAULT_POLL_MS 500
#define DEFAULT_SETTLE_MS 2000
#define DEFAULT_GIVE_UP_MS 120000
/* A file its writer closed (or renamed in) is looked at at once when its
 * structure can prove it whole: the settle time is for files that cannot
 * tell, and for writers nobody hears close.  What a writer does to a
 * closed file's attributes alone (gphoto2 sets its time right after the
 * close) starts no new version (entry_saw). */
#define CLOSED_SETTLE_S 0.0
/* The longest a file whole waits for the other file of its stem (a RAW
 * that only settles after its JPEG was whole); then it goes alone. */
#define PAIR_WAIT_S 30.0
/* The longest a kernel's file times lag its clock: one tick (10 ms at
 * HZ=100), with room for a late one. */
#define WRITE_TICK_S 0.05

/* --- which names are shots -------------------------------------------- */

enum kind { K_IGNORE, K_JPEG, K_TIFF, K_OTHER };

static enum kind kind_of(const char *name)
{
	static const struct { const char *ext; enum kind kind; } images[] = {
		{ "jpg", K_JPEG }, { "jpeg", K_JPEG },
		{ "tif", K_TIFF }, { "tiff", K_TIFF }, { "dng", K_TIFF }, { "cr2", K_TIFF },
		{ "nef", K_TIFF }, { "nrw", K_TIFF }, { "arw", K_TIFF }, { "pef", K_TIFF },
		{ "srw", K_TIFF }, { "3fr", K_TIFF }, { "erf", K_TIFF },
		{ "cr3", K_OTHER }, { "crw", K_OTHER }, { "raf", K_OTHER }, { "orf", K_OTHER },
		{ "rw2", K_OTHER }, { "rwl", K_OTHER }, { "iiq", K_OTHER }, { "mos", K_OTHER },
		{ "mef", K_OTHER }, { "mrw", K_OTHER }, { "kdc", K_OTHER }, { "dcr", K_OTHER },
		{ "srf", K_OTHER }, { "sr2", K_OTHER }, { "x3f", K_OTHER }, { "fff", K_OTHER },
		{ "heic", K_OTHER }, { "heif", K_OTHER }, { "hif", K_OTHER },
	};
	const char *dot = strrchr(name, '.');

	/* Hidden names are AppleDouble files, .DS_Store and the temporary
	 * names programs write under before renaming; ~ starts Office's and
	 * some capture programs' temporaries.  Temporary suffixes (.tmp,
	 * .part, .crdownload) are no image extension, so they fall out. */
	if (name[0] == '.' || name[0] == '~' || !dot)
		return K_IGNORE;
	for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
		if (strcasecmp(dot + 1, images[i].ext) == 0)
			return images[i].kind;
	return K_IGNORE;
}

/* --- reading files ---------------------------------------------------- */

/* Reads len bytes at off: 0, or -1 (errno set; EIO for a file that ended
 * sooner). */
static int read_at(int fd, long long off, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + (long long)got));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* The JPEG header is read this far at first; further (for large ICC
 * profiles before the image data) up to JPEG_HEADER_MAX. */
#define JPEG_HEADER_FIRST (256 * 1024)
#define JPEG_HEADER_MAX (16 * 1024 * 1024)
/* The end of a JPEG is looked for in its last JPEG_TAIL bytes: the zero
 * padding some writers add after FF D9 must fit in it. */
#define JPEG_TAIL (64 * 1024)

static int after_sos(void *ud, int marker, size_t at, const unsigned char *p, size_t n)
{
	(void)p;
	if (marker == 0xda)
		*(long long *)ud = (long long)(at + 4 + n);
	return 0;
}

/* Where the image data starts (after the SOS header), or -1 with why. */
static long long jpeg_image_start(int fd, long long size, char *why, size_t n)
{
	size_t len = size < JPEG_HEADER_FIRST ? (size_t)size : JPEG_HEADER_FIRST;
	long long image_at = -1;
	cs_error e;

	for (;;) {
		unsigned char *buf = malloc(len ? len : 1);
		int rc;

		if (!buf || read_at(fd, 0, buf, len) < 0) {
			snprintf(why, n, "it could not be read: %s", buf ? strerror(errno) :
				 "out of memory");
			free(buf);
			return -1;
		}
		rc = metadata_jpeg_walk(buf, len, after_sos, &image_at, &e);
		free(buf);
		if (rc == 0 && image_at >= 0)
			return image_at;
		if (len == (size_t)size || len >= JPEG_HEADER_MAX) {
			snprintf(why, n, "%s", rc < 0 ? e.msg : "it has no image data");
			return -1;
		}
		len = size < JPEG_HEADER_MAX ? (size_t)size : JPEG_HEADER_MAX;
	}
}

/* A whole JPEG: a header up to the image data and FF D9 as its last
 * bytes but for zero padding.  FF D9 cannot occur inside entropy-coded
 * data (an FF there is always followed by 00 or a restart marker), and
 * the one ending an EXIF thumbnail lies before the image data. */
static bool jpeg_whole(int fd, long long size, char *why, size_t n)
{
	unsigned char tail[JPEG_TAIL];
	long long image_at = jpeg_image_start(fd, size, why, n);
	size_t len = size < JPEG_TAIL ? (size_t)size : JPEG_TAIL, end = len;

	if (image_at < 0)
		return false;
	if (read_at(fd, size - (long long)len, tail, len) < 0) {
		snprintf(why, n, "it could not be read: %s", strerror(errno));
		return false;
	}
	while (end > 0 && tail[end - 1] == 0)
		end--;
	if (end < 2 || tail[end - 2] != 0xff || tail[end - 1] != 0xd9 ||
	    size - (long long)len + (long long)end - 2 < image_at) {
		snprintf(why, n, "it does not end with the JPEG end-of-image marker "
			 "FF D9 (cut short, or still being written)");
		return false;
	}
	return true;
}

/* A TIFF's structure: every directory, out-of-line value, strip and tile
 * within the file.  Bounded work for hostile files: at most TIFF_IFDS
 * directories, SubIFDs TIFF_DEPTH deep, TIFF_ELEMENTS offsets in all. */
#define TIFF_IFDS 64
#define TIFF_DEPTH 4
#define TIFF_ELEMENTS (1 << 20)
#define TIFF_BATCH 256

struct tiff {
	int fd;
	long long size;
	bool be;                /* "MM": big-endian */
	long long seen[TIFF_IFDS]; /* directories read, against loops */
	int nseen;
	long long elements;
	char *why;
	size_t n;
};

static uint32_t tiff_u16(const struct tiff *t, const unsigned char *p)
{
	return t->be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}

static uint32_t tiff_u32(const struct tiff *t, const unsigned char *p)
{
	return t->be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
		     : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Bytes of one value of a TIFF field type; 0 for types TIFF 6 does not
 * define (readers skip those). */
static unsigned tiff_type_size(uint32_t type)
{
	static const unsigned sizes[] = { 0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4 };

	return type < sizeof sizes / sizeof sizes[0] ? sizes[type] : 0;
}

__attribute__((format(printf, 2, 3)))
static bool tiff_bad(struct tiff *t, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(t->why, t->n, "%s (cut short, or still being written)", what);
	return false;
}

/* Reads values first..first+count-1 of a SHORT/LONG/IFD field entry e
 * into v: false with why when they lie outside the file. */
static bool tiff_values(struct tiff *t, const unsigned char *e, uint32_t first,
			uint32_t count, uint32_t *v)
{
	uint32_t type = tiff_u16(t, e + 2), total = tiff_u32(t, e + 4);
	unsigned size = tiff_type_size(type);
	unsigned char buf[TIFF_BATCH * 4];
	const unsigned char *p = e + 8;

	if (type != 3 && type != 4 && type != 13)
		return tiff_bad(t, "a list of offsets has the field type %u", (unsigned)type);
	if ((unsigned long long)total * size > 4) {
		if (read_at(t->fd, (long long)tiff_u32(t, e + 8) + (long long)first * size,
			    buf, (size_t)count * size) < 0)
			return tiff_bad(t, "a list of offsets at byte %u lies past its end",
					(unsigned)tiff_u32(t, e + 8));
		p = buf;
	} else {
		p += (size_t)first * size;
	}
	for (uint32_t i = 0; i < count; i++)
		v[i] = size == 2 ? tiff_u16(t, p + 2 * i) : tiff_u32(t, p + 4 * i);
	return true;
}

/* Each (offset, byte count) of the paired fields offs and counts (strips,
 * tiles, the embedded JPEG) within the file. */
static bool tiff_pieces(struct tiff *t, const unsigned char *offs, const unsigned char *counts)
{
	uint32_t n = tiff_u32(t, offs + 4), o[TIFF_BATCH], c[TIFF_BATCH];

	if (tiff_u32(t, counts + 4) != n)
		return tiff_bad(t, "%u image pieces have no size each", (unsigned)n);
	t->elements += n;
	if (t->elements > TIFF_ELEMENTS)
		return tiff_bad(t, "more than %d image pieces", TIFF_ELEMENTS);
	for (uint32_t first = 0; first < n; first += TIFF_BATCH) {
		uint32_t k = n - first < TIFF_BATCH ? n - first : TIFF_BATCH;

		if (!tiff_values(t, offs, first, k, o) || !tiff_values(t, counts, first, k, c))
			return false;
		for (uint32_t i = 0; i < k; i++)
			if ((long long)o[i] + c[i] > t->size)
				return tiff_bad(t, "image data at byte %u lies past its end",
						(unsigned)o[i]);
	}
	return true;
}

static bool tiff_ifd(struct tiff *t, long long at, int depth);

/* The directories a SubIFDs, EXIF or GPS entry points to. */
static bool tiff_children(struct tiff *t, const unsigned char *e, int depth)
{
	uint32_t n = tiff_u32(t, e + 4), v[TIFF_BATCH];

	if (depth >= TIFF_DEPTH || n > TIFF_IFDS)
		return tiff_bad(t, "directories nested or listed past %d", TIFF_IFDS);
	if (!tiff_values(t, e, 0, n, v))
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!tiff_ifd(t, v[i], depth + 1))
			return false;
	return true;
}

/* The entries of the directory at `at` (count, 12 bytes each, the next
 * directory's offset) are in ents; checks their values and image data. */
static bool tiff_entries(struct tiff *t, const unsigned char *ents, uint32_t count, int depth)
{
	/* strip offsets, strip sizes, tile offsets, tile sizes, JPEG, its size */
	static const uint32_t piece_tags[6] = { 0x111, 0x117, 0x144, 0x145, 0x201, 0x202 };
	const unsigned char *piece[6] = { NULL };

	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *e = ents + 12 * i;
		uint32_t tag = tiff_u16(t, e);
		unsigned long long bytes = (unsigned long long)tiff_u32(t, e + 4) *
					   tiff_type_size(tiff_u16(t, e + 2));

		if (bytes > 4 && tiff_u32(t, e + 8) + bytes > (unsigned long long)t->size)
			return tiff_bad(t, "a value at byte %u lies past its end",
					(unsigned)tiff_u32(t, e + 8));
		for (int k = 0; k < 6; k++)
			if (tag == piece_tags[k])
				piece[k] = e;
		if ((tag == 0x14a || tag == 0x8769 || tag == 0x8825) &&
		    !tiff_children(t, e, depth))
			return false;
	}
	for (int k = 0; k < 6; k += 2)
		if (piece[k] && piece[k + 1] && !tiff_pieces(t, piece[k], piece[k + 1]))
			return false;
	return true;
}

static bool tiff_ifd(struct tiff *t, long long at, int depth)
{
	unsigned char head[2], *ents;
	uint32_t count;
	bool ok;

	for (int i = 0; i < t->nseen; i++)
		if (t->seen[i] == at)
			return true;
	if (t->nseen == TIFF_IFDS)
		return tiff_bad(t, "more than %d image directories", TIFF_IFDS);
	t->seen[t->nseen++] = at;
	if (at == 0 || read_at(t->fd, at, head, 2) < 0)
		return tiff_bad(t, "its image directory at byte %lld lies past its end", at);
	count = tiff_u16(t, head);
	if (!(ents = malloc((size_t)count * 12 + 4)))
		return tiff_bad(t, "out of memory reading a directory of %u entries",
				(unsigned)count);
	ok = read_at(t->fd, at + 2, ents, (size_t)count * 12 + 4) == 0;
	if (!ok)
		tiff_bad(t, "its image directory at byte %lld lies past its end", at);
	ok = ok && tiff_entries(t, ents, count, depth);
	at = ok ? tiff_u32(t, ents + 12 * count) : 0;
	free(ents);
	/* The chain: IFD0, then the thumbnail's or (CR2) the RAW's IFDs. */
	return ok && (at == 0 || tiff_ifd(t, at, depth));
}

static bool tiff_whole(int fd, long long size, char *why, size_t n)
{
	struct tiff t = { .fd = fd, .size = size, .why = why, .n = n };
	unsigned char head[8];

	if (size < 8 || read_at(fd, 0, head, 8) < 0)
		return tiff_bad(&t, "it is shorter than a TIFF header (%lld bytes)", size);
	if (memcmp(head, "II", 2) != 0 && memcmp(head, "MM", 2) != 0) {
		snprintf(why, n, "it does not start as a TIFF-based file does (II or MM)");
		return false;
	}
	t.be = head[0] == 'M';
	/* BigTIFF (43): not what cameras write; judged by stability alone. */
	if (tiff_u16(&t, head + 2) == 43)
		return true;
	if (tiff_u16(&t, head + 2) != 42) {
		snprintf(why, n, "it is not a TIFF-based file: its header's number is %u, not 42",
			 (unsigned)tiff_u16(&t, head + 2));
		return false;
	}
	if (tiff_u32(&t, head + 4) == 0)
		return tiff_bad(&t, "its header points to no image directory yet");
	return tiff_ifd(&t, tiff_u32(&t, head + 4), 0);
}

/* --- versions and entries ---------------------------------------------- */

/* One version of a name: a rewrite, or a new file under the name, differs. */
struct version {
	ino_t ino;
	long long size;
	struct timespec mtime;
	struct timespec ctime;  /* not part of the version: see written_by() */
};

static struct version version_of(const struct stat *st)
{
	return (struct version){ st->st_ino, (long long)st->st_size, st->st_mtim, st->st_ctim };
}

static bool same_version(const struct version *a, const struct version *b)
{
	return a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

enum state {
	S_PENDING,      /* changing, or waiting to settle */
	S_DONE,         /* delivered, reported or there at the start: as seen */
	S_GAVE_UP,      /* reported as never settling: this inode is not taken */
};

struct entry {
	char *name;
	enum kind kind;
	enum state state;
	struct version seen;    /* at the last look */
	double first_seen;      /* monotonic, this version's first sight */
	double first_seen_real; /* the same on the wall clock, for callers */
	double stable_since;    /* monotonic: when seen last changed */
	double due;             /* monotonic: the next look, when pending */
	unsigned listing;       /* the last listing that had it (polling) */
	bool closed;            /* inotify: closed after writing, or renamed in,
				 * since it last changed */
	double waits_since;     /* monotonic: due, waiting for a file of its
				 * stem (0: not waiting) */
};

struct watch {
	char *dir;
	DIR *d;                 /* the folder, for listings and openat */
	int ifd;                /* inotify, or -1 when polling */
	double poll_s, settle_s, give_up_s;
	double next_listing;    /* monotonic: the next listing, or look at
				 * the folder (inotify) */
	unsigned listing;
	char why_poll[256];     /* why polling was chosen by itself */
	bool own_times;         /* the kernel here times writes: see own_times() */
	double opened_real;
	struct entry *e;        /* sorted by name */
	size_t n, cap;
	char **existing;        /* names there at the start, sorted */
	size_t nexisting;
	char *follow;           /* the name that comes next: the other file of
				 * the stem delivered last, or NULL */
};

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The index of name, or where it would go as ~index (negative). */
static long entry_find(const watch *w, const char *name)
{
	size_t lo = 0, hi = w->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, w->e[mid].name);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return ~(long)lo;
}

static void entry_remove(watch *w, size_t i)
{
	free(w->e[i].name);
	memmove(&w->e[i], &w->e[i + 1], (w->n - i - 1) * sizeof w->e[0]);
	w->n--;
}

static int entry_insert(watch *w, size_t at, const char *name, enum kind kind, cs_error *err)
{
	char *copy;

	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct entry *e = realloc(w->e, cap * sizeof *e);

		if (!e)
			return cs_error_set(err, CS_E_NOMEM, "watching %s: out of memory", w->dir);
		w->e = e;
		w->cap = cap;
	}
	if (!(copy = strdup(name)))
		return cs_error_set(err, CS_E_NOMEM, "watching %s: out of memory", w->dir);
	memmove(&w->e[at + 1], &w->e[at], (w->n - at) * sizeof w->e[0]);
	w->e[at] = (struct entry){ .name = copy, .kind = kind };
	w->n++;
	return 0;
}

/* Starts a new version of e, first seen now. */
static void entry_begin(const watch *w, struct entry *e, const struct version *v, double now)
{
	e->state = S_PENDING;
	e->seen = *v;
	e->first_seen = e->stable_since = now;
	e->first_seen_real = now_real();
	e->closed = false;
	e->waits_since = 0;
	e->due = now + (w->settle_s < w->give_up_s ? w->settle_s : w->give_up_s);
}

/* What a look at e found: v as it is now; attrib_only when inotify told
 * of a change of attributes alone (IN_ATTRIB: a time set, a mode changed),
 * no write.  Such a change of a file its writer had closed, same inode and
 * size, is no new version: the bytes are those that were, or will be,
 * read.  A write in place ends with a close, which is looked at as usual. */
static void entry_saw(const watch *w, struct entry *e, const struct version *v, double now,
		      bool attrib_only)
{
	if (same_version(&e->seen, v))
		return;
	if (attrib_only && e->seen.ino == v->ino && e->seen.size == v->size &&
	    (e->state == S_DONE || (e->state == S_PENDING && e->closed))) {
		e->seen = *v;
		return;
	}
	if (e->state == S_GAVE_UP && e->seen.ino == v->ino) {
		e->seen = *v;
		return;
	}
	if (e->state != S_PENDING) {
		entry_begin(w, e, v, now);
		return;
	}
	e->seen = *v;
	e->stable_since = now;
	e->closed = false;
	e->due = now + w->settle_s;
	if (e->due > e->first_seen + w->give_up_s)
		e->due = e->first_seen + w->give_up_s;
}

/* How long e must stay unchanged before it is read. */
static double settle_of(const watch *w, const struct entry *e)
{
	return e->closed && e->kind != K_OTHER ? CLOSED_SETTLE_S : w->settle_s;
}

/* inotify: name's writer closed it, or it was renamed in, as it is now. */
static void note_closed(watch *w, const char *name)
{
	long i = entry_find(w, name);

	if (i >= 0 && w->e[i].state == S_PENDING) {
		struct entry *e = &w->e[i];
		e->closed = true;
		if (e->due > e->stable_since + settle_of(w, e))
			e->due = e->stable_since + settle_of(w, e);
	}
}

/* Looks at name in the folder: remembers it (pending, or as it is when
 * the watch is opening), or forgets it when it is gone or no longer a
 * regular file; attrib_only as for entry_saw. */
static int note_name(watch *w, const char *name, double now, bool opening, bool attrib_only,
		     cs_error *err)
{
	enum kind kind = kind_of(name);
	struct stat st;
	struct version v;
	long i;
	int rc;

	if (kind == K_IGNORE)
		return 0;
	i = entry_find(w, name);
	if (fstatat(dirfd(w->d), name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		if (i >= 0)
			entry_remove(w, (size_t)i);
		return 0;
	}
	v = version_of(&st);
	if (i < 0) {
		if ((rc = entry_insert(w, (size_t)~i, name, kind, err)) < 0)
			return rc;
		i = ~i;
		entry_begin(w, &w->e[i], &v, now);
		if (opening)
			w->e[i].state = S_DONE;
	} else {
		entry_saw(w, &w->e[i], &v, now, attrib_only);
	}
	w->e[i].listing = w->listing;
	return 0;
}

/* --- judging a file ---------------------------------------------------- */

/* Reads name: 1 whole, 0 not (why says why), -ENOENT gone or not a
 * regular file, -EAGAIN when it is not the version expect (NULL: any) or
 * changed while read; *v gets its version. */
static int judge(const watch *w, const char *name, enum kind kind,
		 const struct version *expect, struct version *v, char *why, size_t n)
{
	/* Non-blocking: a FIFO named like a JPEG must not hang the watch. */
	int fd = openat(dirfd(w->d), name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	struct version before;
	bool whole = true;

	if (fd < 0)
		return errno == ENOENT || errno == ELOOP ? -ENOENT : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*v = before = version_of(&st);
	if (expect && !same_version(expect, &before)) {
		close(fd);
		return -EAGAIN;
	}
	why[0] = '\0';
	if (kind == K_JPEG)
		whole = jpeg_whole(fd, before.size, why, n);
	else if (kind == K_TIFF)
		whole = tiff_whole(fd, before.size, why, n);
	if (fstat(fd, &st) == 0)
		*v = version_of(&st);
	close(fd);
	return same_version(&before, v) ? whole : -EAGAIN;
}

/* When the version v was last written at the latest, on this computer's
 * clock, or INFINITY when its times do not say.  A write sets the
 * modification and the change time to one reading of the clock; setting
 * the time afterwards (gphoto2 sets the camera's), a rename or a change
 * of mode move the change time on, and say nothing of the write.  The
 * kernel reads its clock at the last tick: the write itself may come up
 * to a tick later.  Times in whole seconds (an ext4 of small inodes) may
 * be a second early. */
static double written_by(const watch *w, const struct version *v)
{
	if (!w->own_times || v->mtime.tv_sec != v->ctime.tv_sec ||
	    v->mtime.tv_nsec != v->ctime.tv_nsec)
		return INFINITY;
	return (double)v->mtime.tv_sec + (double)v->mtime.tv_nsec / 1e9 +
	       (v->mtime.tv_nsec ? WRITE_TICK_S : 1.0);
}

static void fill_file(const watch *w, const char *name, const struct version *v,
		      double first_seen, bool complete, const char *why, watch_file *out)
{
	snprintf(out->path, sizeof out->path, "%s/%s", w->dir, name);
	out->size = v->size;
	out->mtime = (double)v->mtime.tv_sec + (double)v->mtime.tv_nsec / 1e9;
	out->written = written_by(w, v);
	out->first_seen = first_seen;
	out->before = fmin(first_seen, out->written);
	out->complete = complete;
	snprintf(out->why, sizeof out->why, "%s", why);
}

/* A pending entry that kept changing past the give-up time: reported,
 * and this inode never taken. */
static void entry_give_up(watch *w, struct entry *e, double now, watch_file *out)
{
	fill_file(w, e->name, &e->seen, e->first_seen_real, false, "", out);
	snprintf(out->why, sizeof out->why, "%s kept changing for %.0f s and never "
		 "settled: it is not taken.  If the capture program is still writing "
		 "it, allow it longer (the give-up time); otherwise shoot again",
		 out->path, now - e->first_seen);
	e->state = S_GAVE_UP;
}

/* Looks at a pending entry that is due: 1 with out filled when it is
 * done (taken or reported), 0 when it is not yet (or was forgotten). */
static int entry_judge(watch *w, size_t i, double now, watch_file *out, cs_error *err)
{
	struct entry *e = &w->e[i];
	struct version v;
	char why[400];
	int rc;

	if (now - e->stable_since < settle_of(w, e)) {
		if (now - e->first_seen < w->give_up_s) {
			e->due = e->stable_since + settle_of(w, e);
			return 0;
		}
		entry_give_up(w, e, now, out);
		return 1;
	}
	rc = judge(w, e->name, e->kind, &e->seen, &v, why, sizeof why);
	if (rc == -ENOENT) {
		entry_remove(w, i);
		return 0;
	}
	if (rc == -EAGAIN) {
		entry_saw(w, e, &v, now, false);
		return 0;
	}
	/* Closed but not whole: a writer that comes back (one open per
	 * chunk) gets the whole settle time before it is called broken. */
	if (rc == 0 && e->closed && now - e->stable_since < w->settle_s) {
		e->closed = false;
		e->due = e->stable_since + w->settle_s;
		return 0;
	}
	/* A file this user may not read is reported like a broken one;
	 * anything else (out of descriptors) is tried again after a while. */
	if (rc < 0 && rc != -EACCES && rc != -EPERM) {
		e->due = now + w->settle_s;
		return cs_error_set(err, CS_E_IO, "watching %s: cannot read %s: %s", w->dir,
				    e->name, strerror(-rc));
	}
	fill_file(w, e->name, rc < 0 ? &e->seen : &v, e->first_seen_real, rc == 1, "", out);
	if (rc < 0)
		snprintf(out->why, sizeof out->why, "%s cannot be read by this user: it is "
			 "not taken.  Give this user read access to what the capture program "
			 "writes, then write it again", out->path);
	else if (rc == 0)
		snprintf(out->why, sizeof out->why, "%s stopped changing but is not a whole "
			 "image: %s.  It is not taken: shoot again, or put the whole file "
			 "there again", out->path, why);
	e->state = S_DONE;
	return 1;
}

/* Whether a and b are files of one stem (IMG_0041.CR3, IMG_0041.JPG). */
static bool same_stem(const char *a, const char *b)
{
	size_t n = strcspn(a, ".");

	return a[n] == '.' && strncmp(a, b, n + 1) == 0;
}

/* A pending entry of e's stem other than e, or -1.  Entries are sorted
 * by name: those of one stem are neighbours. */
static long entry_sibling(const watch *w, size_t i)
{
	for (size_t j = i; j-- > 0 && same_stem(w->e[i].name, w->e[j].name);)
		if (w->e[j].state == S_PENDING)
			return (long)j;
	for (size_t j = i + 1; j < w->n && same_stem(w->e[i].name, w->e[j].name); j++)
		if (w->e[j].state == S_PENDING)
			return (long)j;
	return -1;
}

/* A due entry whose stem has a file still on its way (a RAW settling
 * after its JPEG was whole) waits for it, PAIR_WAIT_S at most: the two
 * are one press, taken together.  True: e waits (its due moved). */
static bool entry_waits(watch *w, size_t i, double now)
{
	struct entry *e = &w->e[i];
	long j = entry_sibling(w, i);

	if (j < 0 || w->e[j].due <= now) {
		e->waits_since = 0;
		return false;
	}
	if (!e->waits_since)
		e->waits_since = now;
	if (now - e->waits_since >= PAIR_WAIT_S)
		return false;
	e->due = fmin(w->e[j].due, e->waits_since + PAIR_WAIT_S);
	return true;
}

/* When e existed by, as watch_file.before: the order files were made in,
 * also of two one listing found. */
static double entry_before(const watch *w, const struct entry *e)
{
	return fmin(e->first_seen_real, written_by(w, &e->seen));
}

/* The next due entry: the other file of the stem delivered last, else
 * the due pending entry that existed first; -1 when none is. */
static long entry_next_due(watch *w, double now)
{
	long first = -1, f = w->follow ? entry_find(w, w->follow) : -1;

	free(w->follow);
	w->follow = NULL;
	if (f >= 0 && w->e[f].state == S_PENDING && w->e[f].due <= now)
		return f;
	for (size_t i = 0; i < w->n; i++)
		if (w->e[i].state == S_PENDING && w->e[i].due <= now &&
		    (first < 0 || entry_before(w, &w->e[i]) < entry_before(w, &w->e[first])) &&
		    !entry_waits(w, i, now))
			first = (long)i;
	return first;
}

/* The due pending entry that existed first, judged: 1 with out filled, 0
 * when none is done.  A file delivered whole whose stem has another file due
 * says so (out->more), and that one is judged next. */
static int judge_due(watch *w, double now, watch_file *out, cs_error *err)
{
	for (;;) {
		long first = entry_next_due(w, now), j;
		int rc;

		if (first < 0)
			return 0;
		if ((rc = entry_judge(w, (size_t)first, now, out, err)) == 0)
			continue;
		out->more = false;
		if (rc == 1 && out->complete && (j = entry_sibling(w, (size_t)first)) >= 0 &&
		    w->e[j].due <= now) {
			out->more = true;
			w->follow = strdup(w->e[j].name);
		}
		return rc;
	}
}

/* --- seeing changes ---------------------------------------------------- */

static int gone(const watch *w, cs_error *err)
{
	return cs_error_set(err, CS_E_UNREACHABLE, "the watched folder %s was removed, moved "
			    "or unmounted: make it available again and watch it again", w->dir);
}

/* The folder removed: inotify says so (IN_DELETE_SELF) only once the
 * last reference to it goes, and the watch holds one. */
static bool folder_removed(const watch *w)
{
	struct stat st;

	return fstat(dirfd(w->d), &st) < 0 || st.st_nlink == 0;
}

/* Lists the folder: every name is looked at, names no longer there are
 * forgotten. */
static int list_folder(watch *w, double now, bool opening, cs_error *err)
{
	struct dirent *de;
	int rc;

	if (folder_removed(w))
		return gone(w, err);
	w->listing++;
	rewinddir(w->d);
	errno = 0;
	while ((de = readdir(w->d))) {
		if ((rc = note_name(w, de->d_name, now, opening, false, err)) < 0)
			return rc;
		errno = 0;
	}
	if (errno == ESTALE || errno == ENOENT)
		return gone(w, err);
	if (errno)
		return cs_error_set(err, CS_E_IO, "watching %s: cannot list it: %s", w->dir,
				    strerror(errno));
	for (size_t i = w->n; i-- > 0;)
		if (w->e[i].listing != w->listing)
			entry_remove(w, i);
	return 0;
}

/* Reads what inotify has (never waits): each name it tells of is looked
 * at; a lost queue means listing the whole folder. */
static int read_events(watch *w, double now, cs_error *err)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t len = read(w->ifd, buf, sizeof buf);
		int rc;

		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && errno == EAGAIN)
			return 0;
		if (len <= 0)
			return cs_error_set(err, CS_E_IO, "watching %s: inotify failed: %s",
					    w->dir, len < 0 ? strerror(errno) : "no data");
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof *ev + ev->len;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED))
				return gone(w, err);
			if (ev->mask & IN_Q_OVERFLOW)
				rc = list_folder(w, now, false, err);
			else
				rc = ev->len ? note_name(w, ev->name, now, false,
							 (ev->mask & IN_ALL_EVENTS) == IN_ATTRIB,
							 err) : 0;
			if (rc < 0)
				return rc;
			if (ev->len && ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
				note_closed(w, ev->name);
		}
	}
}

/* The type of the folder's filesystem (statfs's f_type), 0 when unknown. */
static uint32_t fs_type(DIR *d)
{
	struct statfs sf;

	return fstatfs(dirfd(d), &sf) < 0 ? 0 : (uint32_t)sf.f_type;
}

/* Why inotify would miss changes in a folder on a filesystem of type
 * (statfs's f_type): a network filesystem's name, or NULL. */
static const char *network_fs(uint32_t type)
{
	static const struct { uint32_t magic; const char *name; } fs[] = {
		{ NFS_SUPER_MAGIC, "NFS" }, { SMB_SUPER_MAGIC, "SMB" },
		{ CIFS_SUPER_MAGIC, "SMB/CIFS" }, { SMB2_SUPER_MAGIC, "SMB2" },
		{ FUSE_SUPER_MAGIC, "FUSE (sshfs, a mounted share)" }, { V9FS_MAGIC, "9P" },
		{ CEPH_SUPER_MAGIC, "Ceph" }, { AFS_SUPER_MAGIC, "AFS" }, { AFS_FS_MAGIC, "AFS" },
	};

	for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
		if (type == fs[i].magic)
			return fs[i].name;
	return NULL;
}

/* Whether a filesystem of type is this computer's own and keeps its
 * times to the nanosecond: local disks and memory.  A network
 * filesystem's times are its server's clock, or whatever the writing
 * client set; FUSE's its daemon's; FAT and exFAT keep two seconds. */
static bool own_times(uint32_t type)
{
	static const uint32_t fs[] = {
		EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC, BTRFS_SUPER_MAGIC, F2FS_SUPER_MAGIC,
		TMPFS_MAGIC,
	};

	for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++)
		if (type == fs[i])
			return true;
	return false;
}

/* Sets up inotify (mode permitting) for a folder on a filesystem of type
 * (0 when unknown): 0, also when polling was chosen (why_poll says why);
 * CS_E_CONFIG when inotify was asked for and fails. */
static int choose_method(watch *w, watch_mode mode, uint32_t type, cs_error *err)
{
	const char *net = network_fs(type);
	uint32_t mask = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
			IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
	int failed;

	w->ifd = -1;
	if (mode == WATCH_POLL)
		return 0;
	if (mode == WATCH_AUTO && net) {
		snprintf(w->why_poll, sizeof w->why_poll, "%s is on a network filesystem (%s), "
			 "whose changes from other computers inotify does not see: it is "
			 "listed every %.1f s", w->dir, net, w->poll_s);
		return 0;
	}
	if ((w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) >= 0 &&
	    inotify_add_watch(w->ifd, w->dir, mask) >= 0)
		return 0;
	failed = errno;
	if (mode == WATCH_INOTIFY)
		return cs_error_set(err, CS_E_CONFIG, "watching %s: inotify cannot be used: %s "
				    "(raise fs.inotify.max_user_watches or max_user_instances), "
				    "or watch by polling", w->dir, strerror(failed));
	snprintf(w->why_poll, sizeof w->why_poll, "inotify cannot be used (%s): %s is "
		 "listed every %.1f s", strerror(failed), w->dir, w->poll_s);
	if (w->ifd >= 0)
		close(w->ifd);
	w->ifd = -1;
	return 0;
}

/* --- the interface ----------------------------------------------------- */

static int open_failed(const char *dir, int errnum, cs_error *err)
{
	switch (errnum) {
	case ENOENT:
		return cs_error_set(err, CS_E_NOT_FOUND, "the folder %s does not exist: give "
				    "the folder the capture program saves its shots into", dir);
	case EACCES:
	case EPERM:
		return cs_error_set(err, CS_E_ACCESS, "the folder %s cannot be read: give "
				    "this user read access to it", dir);
	case ENOTDIR:
		return cs_error_set(err, CS_E_INVALID, "%s is not a folder: give the folder "
				    "the capture program saves its shots into", dir);
	}
	return cs_error_set(err, CS_E_IO, "cannot open the folder %s: %s", dir,
			    strerror(errnum));
}

static int ms_or(int ms, int fallback)
{
	return ms > 0 ? ms : fallback;
}

static int options_check(const watch_options *o, cs_error *err)
{
	if (!o || !o->dir || !o->dir[0])
		return cs_error_set(err, CS_E_INVALID, "watch_open: a folder is needed");
	if (o->mode != WATCH_AUTO && o->mode != WATCH_INOTIFY && o->mode != WATCH_POLL)
		return cs_error_set(err, CS_E_INVALID, "watch_open: unknown mode %d", (int)o->mode);
	if (o->poll_ms < 0 || o->settle_ms < 0 || o->give_up_ms < 0)
		return cs_error_set(err, CS_E_INVALID, "watch_open: negative times");
	/* DIR/NAME must fit watch_file.path with the longest name. */
	if (strlen(o->dir) + 1 + NAME_MAX >= PATH_MAX)
		return cs_error_set(err, CS_E_INVALID, "watch_open: the folder's path is too long");
	return 0;
}

static int existing_remember(watch *w, cs_error *err)
{
	if (w->n && !(w->existing = calloc(w->n, sizeof *w->existing)))
		return cs_error_set(err, CS_E_NOMEM, "watching %s: out of memory", w->dir);
	for (size_t i = 0; i < w->n; i++, w->nexisting++)
		if (!(w->existing[i] = strdup(w->e[i].name)))
			return cs_error_set(err, CS_E_NOMEM, "watching %s: out of memory", w->dir);
	return 0;
}

int watch_open(const watch_options *o, watch **out, cs_error *err)
{
	watch *w;
	size_t len;
	int rc;

	if (!out)
		return cs_error_set(err, CS_E_INVALID, "watch_open: nowhere to put the watch");
	*out = NULL;
	if ((rc = options_check(o, err)) < 0)
		return rc;
	if (!(w = calloc(1, sizeof *w)) || !(w->dir = strdup(o->dir))) {
		free(w);
		return cs_error_set(err, CS_E_NOMEM, "watching %s: out of memory", o->dir);
	}
	w->ifd = -1;
	for (len = strlen(w->dir); len > 1 && w->dir[len - 1] == '/'; len--)
		w->dir[len - 1] = '\0';
	w->poll_s = ms_or(o->poll_ms, DEFAULT_POLL_MS) / 1000.0;
	w->settle_s = ms_or(o->settle_ms, DEFAULT_SETTLE_MS) / 1000.0;
	w->give_up_s = ms_or(o->give_up_ms, DEFAULT_GIVE_UP_MS) / 1000.0;
	w->opened_real = now_real();
	if (!(w->d = opendir(w->dir))) {
		rc = open_failed(w->dir, errno, err);
	} else {
		uint32_t type = fs_type(w->d);

		w->own_times = own_times(type);
		/* inotify first, then the listing: nothing written in between
		 * is missed (it is seen twice at worst, which changes nothing). */
		if ((rc = choose_method(w, o->mode, type, err)) == 0 &&
		    (rc = list_folder(w, now_mono(), true, err)) == 0)
			rc = existing_remember(w, err);
	}
	if (rc < 0) {
		watch_free(w);
		return rc;
	}
	w->next_listing = now_mono() + w->poll_s;
	*out = w;
	return 0;
}

watch_mode watch_method(const watch *w, const char **why)
{
	if (why)
		*why = w->why_poll;
	return w->ifd >= 0 ? WATCH_INOTIFY : WATCH_POLL;
}

/* When the wait must look again: the deadline, the next listing (with
 * inotify: the next look whether the folder is still there) or the first
 * pending entry due. */
static double next_wake(const watch *w, double deadline)
{
	double wake = deadline;

	if (w->next_listing < wake)
		wake = w->next_listing;
	for (size_t i = 0; i < w->n; i++)
		if (w->e[i].state == S_PENDING && w->e[i].due < wake)
			wake = w->e[i].due;
	return wake;
}

/* Sleeps until wake, or until inotify has something. */
static void sleep_until(const watch *w, double wake, double now)
{
	struct pollfd pfd = { .fd = w->ifd, .events = POLLIN };
	double ms = (wake - now) * 1000.0 + 1;

	poll(w->ifd >= 0 ? &pfd : NULL, w->ifd >= 0 ? 1 : 0, ms > INT_MAX ? INT_MAX : (int)ms);
}

int watch_wait_file(watch *w, int timeout_ms, watch_file *out, cs_error *err)
{
	double deadline = now_mono() + timeout_ms / 1000.0;

	if (!w || !out || timeout_ms < 0)
		return cs_error_set(err, CS_E_INVALID, "watch_wait_file: a watch, a file and "
				    "a timeout of 0 or more are needed");
	for (;;) {
		double now = now_mono();
		int rc = 0;

		if (w->ifd >= 0)
			rc = read_events(w, now, err);
		if (rc == 0 && now >= w->next_listing) {
			rc = w->ifd < 0 ? list_folder(w, now, false, err) :
			     folder_removed(w) ? gone(w, err) : 0;
			w->next_listing = now + w->poll_s;
		}
		if (rc < 0 || (rc = judge_due(w, now, out, err)) < 0)
			return rc;
		if (rc == 1)
			return 0;
		if (now >= deadline)
			return cs_error_set(err, CS_E_TIMEOUT, "no new file in %s within %d ms",
					    w->dir, timeout_ms);
		sleep_until(w, next_wake(w, deadline), now);
	}
}

size_t watch_existing_count(const watch *w)
{
	return w ? w->nexisting : 0;
}

int watch_existing_file(const watch *w, size_t i, watch_file *out, cs_error *err)
{
	struct version v;
	char why[400];
	int rc;

	if (!w || !out || i >= w->nexisting)
		return cs_error_set(err, CS_E_INVALID, "watch_existing_file: no such file");
	rc = judge(w, w->existing[i], kind_of(w->existing[i]), NULL, &v, why, sizeof why);
	if (rc == -ENOENT)
		return cs_error_set(err, CS_E_NOT_FOUND, "%s/%s is no longer there", w->dir,
				    w->existing[i]);
	if (rc == -EAGAIN)
		return cs_error_set(err, CS_E_TIMEOUT, "%s/%s is being written: ask again "
				    "later", w->dir, w->existing[i]);
	if (rc < 0)
		return cs_error_set(err, CS_E_IO, "cannot read %s/%s: %s", w->dir,
				    w->existing[i], strerror(-rc));
	fill_file(w, w->existing[i], &v, w->opened_real, rc == 1, "", out);
	if (rc == 0)
		snprintf(out->why, sizeof out->why, "%s is not a whole image: %s", out->path, why);
	return 0;
}

void watch_free(watch *w)
{
	if (!w)
		return;
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->d)
		closedir(w->d);
	for (size_t i = 0; i < w->n; i++)
		free(w->e[i].name);
	for (size_t i = 0; i < w->nexisting; i++)
		free(w->existing[i]);
	free(w->existing);
	free(w->e);
	free(w->follow);
	free(w->dir);
	free(w);
}
