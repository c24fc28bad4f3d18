/* copystand — a folder as a capture device.
 *
 * Watches the folder a capture program (Capture One, EOS Utility,
 * Entangle, darktable, gphoto2) writes its shots into and delivers each
 * new image file once, when it is complete: its size and modification
 * time have not changed for the settle time AND it parses as a whole
 * image:
 *   - JPEG (.jpg .jpeg): a valid header up to the image data, and the
 *     end-of-image marker FF D9 as the file's last bytes (zero bytes
 *     after it, which some writers pad with, are allowed);
 *   - TIFF-structured (.tif .tiff .dng .cr2 .nef .nrw .arw .pef .srw .3fr
 *     .erf): every IFD, value, strip and tile (and embedded preview) lies
 *     within the file;
 *   - the other RAWs (.cr3 .crw .raf .orf .rw2 .rwl .iiq .mos .mef .mrw
 *     .kdc .dcr .srf .sr2 .x3f .fff .heic .heif .hif): stability alone,
 *     their structure is not read.
 * Where inotify hears the writer close the file (or rename it in), a JPEG
 * or TIFF-structured file is read at once instead of after the settle
 * time: its structure proves it whole; one that is not whole yet then
 * waits out the settle time as usual.
 * Every other name is ignored: sidecars and catalogues (.xmp .cos .cof
 * .cot .pp3 .dop), Thumbs.db, desktop.ini; hidden names (.DS_Store,
 * AppleDouble ._IMG_1.JPG, .IMG_1.JPG being written) and names starting
 * with ~; temporary names (.tmp .part .crdownload ...), whose final name
 * is taken once the program renames the file.  Only the folder's own
 * regular files count: subfolders (Capture One's CaptureOne/, a
 * session's Selects/) and symbolic links are never looked into; point the
 * watch at the folder the shots land in (Capture One: the session's
 * Capture/ folder).
 *
 * Nothing is ever written into the folder: files are only read.
 *
 * Changes are seen through inotify on Linux, or by listing the folder
 * every poll interval where inotify cannot be used (no inotify left, or a
 * network filesystem: NFS, SMB/CIFS, FUSE, 9P, Ceph, AFS, where inotify
 * misses what other computers write).  Either way a file is judged by
 * stat and by reading it; inotify only wakes the watch sooner.
 *
 * The rules:
 *   - a file is one version of a name: its inode, size and mtime.  A
 *     version is delivered once; a name written again later (rewritten,
 *     or deleted or renamed away and written anew) is a new version and
 *     is delivered again.  Capture programs do not normally rewrite.
 *     With inotify, a change of attributes alone (its time set, as gphoto2
 *     does right after it closes a file, or its mode) of a file whose
 *     writer closed it, same inode and size, is no new version.
 *   - a file that keeps changing for longer than the give-up time is
 *     reported once as never complete, and that inode is never delivered;
 *     a file that stops changing but is not a whole image is reported once
 *     as well, and is watched again if it changes after that (a writer
 *     that paused longer than the settle time); so is one this user may
 *     not read.
 *   - a file deleted or renamed away before it completes is forgotten.
 *   - the files present when the watch opens are not delivered: they are
 *     listed by watch_existing_count() and watch_existing_file() for a
 *     person to decide on.  One that changes after the watch opened (a
 *     shot still being written then) is a new version and is delivered.
 *   - on filesystems whose times are coarse (FAT: 2 s), a rewrite that
 *     keeps the size within one tick is not seen; choose a settle time
 *     longer than the tick.
 *
 * The codes:
 *   CS_E_TIMEOUT      watch_wait_file: nothing completed in time (normal)
 *   CS_E_NOT_FOUND    the folder does not exist; an existing file is gone
 *   CS_E_ACCESS       the folder cannot be read
 *   CS_E_UNREACHABLE  the folder was removed, unmounted or went stale
 *   CS_E_CONFIG       inotify asked for and it cannot be used
 *   CS_E_INVALID      bad arguments; not a folder
 *   CS_E_IO           anything else the system refused; a file that could
 *                     not be read is tried again after the settle time
 *
 * A watch belongs to one thread.
 */
#ifndef COPYSTAND_WATCH_H
#define COPYSTAND_WATCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct watch watch;

typedef enum watch_mode {
	WATCH_AUTO,     /* inotify where it works, else polling */
	WATCH_INOTIFY,  /* inotify, or CS_E_CONFIG */
	WATCH_POLL,     /* list the folder every poll interval */
} watch_mode;

typedef struct watch_options {
	const char *dir;
	watch_mode mode;
	int poll_ms;    /* listing interval when polling; 0: 500 */
	int settle_ms;  /* unchanged this long before it is read; 0: 2000 */
	int give_up_ms; /* changing longer than this: never complete; 0: 120000 */
} watch_options;

typedef struct watch_file {
	char path[PATH_MAX];    /* DIR/NAME */
	long long size;
	double mtime;           /* unix seconds, as the filesystem says */
	/* Unix seconds: the file was last written before this, on this
	 * computer's clock: its mtime (and a kernel tick) where this
	 * computer's kernel set it: a local filesystem (ext4, XFS, Btrfs,
	 * F2FS, tmpfs) and a change time equal to it, so that no time was set
	 * and no rename came since.  INFINITY where that is not known: a
	 * network share's times are another computer's clock. */
	double written;
	double first_seen;      /* unix seconds: when this version was first seen */
	/* The earlier of the two: the file existed by then (begun, or
	 * written whole), so whatever made it came before. */
	double before;
	/* false: never complete, with why saying what and what to do; such a
	 * file must not be taken. */
	bool complete;
	char why[512];          /* "" when complete */
	/* Another file of its stem (a RAW+JPEG pair's other half) is due:
	 * the next call judges it first; take the two as one press. */
	bool more;
} watch_file;

/* Opens a watch on o->dir: lists what is there (the existing files) and
 * starts watching.  Reads nothing yet. */
int watch_open(const watch_options *o, watch **out, cs_error *err);

/* How changes are seen (WATCH_INOTIFY or WATCH_POLL) and, in *why (may be
 * NULL), a sentence for the technician when polling was chosen by itself
 * ("" otherwise). */
watch_mode watch_method(const watch *w, const char **why);

/* Waits up to timeout_ms (0: just look) for the next file that completed,
 * or that never will: 0 with out filled (look at out->complete).
 * CS_E_TIMEOUT when none did.  Files that completed together come one per
 * call, the one that existed first (out->before) first.  The files of one
 * stem (IMG_0041.CR3 and IMG_0041.JPG: one press) come one right after
 * the other: a whole file waits for another of its stem still on its way
 * (30 s at most), and out->more says the next call has it. */
int watch_wait_file(watch *w, int timeout_ms, watch_file *out, cs_error *err);

/* How many image files were in the folder when the watch opened. */
size_t watch_existing_count(const watch *w);

/* The i-th of them (by name) as it is now, read as watch_wait_file reads
 * a file (without waiting for it to settle): complete or why not.
 * CS_E_NOT_FOUND when it is gone, CS_E_TIMEOUT when it changed while it
 * was read (being written: ask again later). */
int watch_existing_file(const watch *w, size_t i, watch_file *out, cs_error *err);

/* Stops watching and frees w (NULL is fine). */
void watch_free(watch *w);

#endif
