/* copystand.h — copystand for the capture software people already use.
 *
 * A host program (Entangle, a gphoto2 hook, darktable, a museum's own
 * capture tool) hands copystand the files it captured; copystand names
 * each from the catalog number scanned last, writes it into the file's
 * metadata, and attaches it to the record in Specify 7 in the background.
 *
 * Two ways in:
 *  - A host that runs for a whole session opens a station of its own
 *    (copystand_open): it sets the current catalog number as labels are
 *    scanned, submits each captured file, and reads events (the number
 *    checked, a file attached, a problem) when copystand_event_fd()
 *    becomes readable.
 *  - A host that lives for one file only (gphoto2 runs its hook once per
 *    download) gives the file to the station that is running
 *    (copystand_submit_to_running), which attaches it.
 *
 * Either way the file is copied into the session folder and fsynced, and
 * journaled, before the call returns: nothing is lost when the host
 * exits, crashes or loses the network; the next station resumes it.
 *
 * Build with `pkg-config --cflags --libs copystand`.  Every function
 * returns 0 or a negative error code and, given a buffer (err may be
 * NULL), a message a person can act on.  Objects belong to the thread
 * that opened them, except where said.
 */
#ifndef COPYSTAND_H
#define COPYSTAND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COPYSTAND_API_VERSION 1

/* Error codes (negative). */
enum {
	COPYSTAND_OK = 0,
	COPYSTAND_E_INVALID = -1,     /* bad argument, or no catalog number */
	COPYSTAND_E_NOMEM = -2,
	COPYSTAND_E_IO = -3,          /* local file or disk */
	COPYSTAND_E_CONFIG = -4,      /* settings missing or unsafe */
	COPYSTAND_E_UNREACHABLE = -10, /* Specify cannot be reached */
	COPYSTAND_E_AUTH = -20,       /* wrong user name or password */
	COPYSTAND_E_NOT_FOUND = -27,  /* e.g. no station is running */
	COPYSTAND_E_CONFLICT = -28,   /* e.g. the held capture changed just now */
	/* Other negative codes are failures too; the message says which. */
};

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *copystand_version(void);

typedef struct copystand copystand;

/* Where and as whom; NULL fields come from the configuration file and the
 * environment as for the copystand command (docs/configuration.md). */
typedef struct copystand_options {
	const char *config;       /* NULL: ~/.config/copystand/config */
	const char *server;
	const char *user;
	const char *collection;
	const char *password;     /* NULL: COPYSTAND_PASSWORD or the file */
	const char *dir;          /* session folder; NULL: the configured or
				   * ~/Pictures/copystand/YYYY-MM-DD */
	const char *ca_file;      /* more CA certificates (a private CA) */
	const char *journal;      /* NULL: ~/.local/share/copystand/journal.sqlite,
				   * the one copystand station and
				   * copystand_submit_to_running use */
	void *reserved[8];        /* zero: room to grow without a new soname */
} copystand_options;

/* Logs in (or, with Specify unreachable, starts from the catalog-number
 * format saved at an earlier start), opens the journal and starts the
 * background work: checking numbers, finishing and attaching captures.
 * o may be NULL (everything from the configuration).  The settings of
 * the configuration (stamp, raw, attachment fields) apply; reading
 * labels is the copy-stand station's alone, so `label` is ignored. */
int copystand_open(const copystand_options *o, copystand **out,
		   char *err, size_t errlen);

/* A scanned or typed catalog number: current from now on, checked
 * against Specify in the background (COPYSTAND_EVENT_CHECKED).  Text that
 * is no catalog number is COPYSTAND_E_INVALID and clears the current
 * number, so no file goes to the specimen before by mistake. */
int copystand_set_catalog_number(copystand *c, const char *text,
				 char *err, size_t errlen);

/* The same for a scan that came at scanned_at (unix seconds), before the
 * call: shots are placed against the times of scans, so a host that
 * hands a scan on later (from another thread) gives its time. */
int copystand_set_catalog_number_at(copystand *c, const char *text, double scanned_at,
				    char *err, size_t errlen);

/* A shot belongs to the number that was current when its shutter was
 * pressed, not when its files came.
 *
 * A shot the host fires itself (its capture button, a timer): call
 * copystand_press_begin() when it asks the camera to fire, before the
 * camera is asked; the shot takes the number current then (numbers set
 * before this call count, later ones do not), whatever is scanned before
 * its files come.  asked_at: when the host asked (unix seconds; 0: now),
 * if earlier than the call.  *press identifies the shot for
 * copystand_submit_press(); 16 may wait at once (the oldest is
 * forgotten). */
int copystand_press_begin(copystand *c, double asked_at, unsigned long *press,
			  char *err, size_t errlen);

/* Copies the files of that press into the session folder under its
 * number's next name (000000123.jpg, 000000123_2.jpg, ...), fsyncs and
 * journals them, and returns; they are attached in the background.  The
 * host's files are left where they are.  Files of one shutter press
 * (RAW+JPEG) go in one call.  *name (may be NULL) receives the first
 * file's new name (malloc'd).  Without a number current at the press the
 * files are kept as unmatched, for a person to name.  A file with the
 * bytes of one this or an earlier session took (a re-save, a retry) is
 * refused, COPYSTAND_E_INVALID, and nothing of the call is taken. */
int copystand_submit_press(copystand *c, unsigned long press, const char *const *paths,
			   size_t n, char **name, char *err, size_t errlen);

/* The files of a press of the camera's own button, handed in as they
 * come: journaled at once under a provisional name ("pending_..."), then
 * named from the number current at the moment of the press, which the
 * camera's clock tells (their EXIF capture time, placed through
 * copystand_camera_clock()).  When that moment cannot be placed on one
 * side of a scan the capture is held (COPYSTAND_EVENT_PROBLEM) until a
 * person decides.  Otherwise as copystand_submit_press(). */
int copystand_submit_files(copystand *c, const char *const *paths, size_t n,
			   char **name, char *err, size_t errlen);

/* What the host read of the camera's clock: at some moment between
 * before and after (unix seconds on this computer's clock) the camera
 * said camera_time, its date and time counted as if they were UTC (as
 * timegm() counts them), with resolution res (1 for whole seconds).
 * Each reading narrows when the camera's own shots were taken; read it
 * when the camera is opened and every minute or so. */
int copystand_camera_clock(copystand *c, double before, double after,
			   double camera_time, double res, char *err, size_t errlen);

/* A capture is held (COPYSTAND_EVENT_PROBLEM, its message says why and
 * which numbers it may take) until a person decides it with
 * copystand_resolve_held(): the capture held last. */
enum copystand_choice {
	COPYSTAND_KEEP_SCAN,      /* its label disagrees: keep the scanned number */
	COPYSTAND_TAKE_LABEL,     /* its label disagrees: take the label's number */
	COPYSTAND_NUMBER_BEFORE,  /* pressed as the number changed: the one before */
	COPYSTAND_NUMBER_AFTER,   /* pressed as the number changed: the one after */
};

/* COPYSTAND_E_NOT_FOUND when nothing is held; COPYSTAND_E_INVALID when
 * the choice is not one of the held capture's; COPYSTAND_E_CONFLICT
 * within a second of another capture becoming the one held (the choice
 * may have been meant for the one shown before): show it, ask again. */
int copystand_resolve_held(copystand *c, enum copystand_choice choice,
			   char *err, size_t errlen);

/* The same with the number itself (a held shot may be one of more than
 * two numbers, when labels were scanned in quick succession). */
int copystand_resolve_held_number(copystand *c, const char *number, char *err,
				  size_t errlen);

/* The capture held last, for a host that offers the choices. */
typedef struct copystand_held_info {
	char file[256];            /* its first file's name */
	int press;                 /* 1: shot as the number changed; 0: its label
				    * disagrees with the scan */
	char before[128], after[128]; /* press: the numbers it may take ("": no number) */
	char label[128];           /* label: the label's number ("": unread) */
	void *reserved[4];
} copystand_held_info;

/* 1 and out filled when a capture is held, else 0; any thread. */
int copystand_held(copystand *c, copystand_held_info *out);

/* Something happened. */
enum copystand_event_kind {
	COPYSTAND_EVENT_CHECKED,   /* the current number: found, or not */
	COPYSTAND_EVENT_ATTACHED,  /* a file is attached to its record */
	COPYSTAND_EVENT_PROBLEM,   /* a file is not attached: message says why */
	COPYSTAND_EVENT_ONLINE,    /* Specify answers again */
	COPYSTAND_EVENT_OFFLINE,   /* Specify cannot be reached: work waits */
	COPYSTAND_EVENT_EARLIER,   /* files earlier sessions left wait for a person:
				    * message says how many and what to run
				    * (copystand_earlier) */
};

typedef struct copystand_event {
	enum copystand_event_kind kind;
	char identifier[128];      /* the catalog number concerned, or "" */
	char file[256];            /* the file's name, or "" */
	char message[512];         /* for a person */
} copystand_event;

/* A file descriptor that is readable while events wait (for poll() or a
 * GLib watch); any thread. */
int copystand_event_fd(copystand *c);

/* Takes the oldest waiting event: 1, or 0 when none waits.  The 256
 * newest are kept: a host that never reads loses the oldest. */
int copystand_next_event(copystand *c, copystand_event *ev);

/* Files that earlier sessions of this server and collection left not
 * attached (no catalog number, no such record, several, failed) and that
 * are still where they were left.  They are not this session's news: the
 * station does not tell them one by one as COPYSTAND_EVENT_PROBLEM, but
 * counts them (COPYSTAND_EVENT_EARLIER at open and whenever one more is
 * found), for a host to show beside its status, e.g. "2 earlier files
 * need a decision: copystand upload DIR". */
typedef struct copystand_earlier_info {
	size_t count;
	size_t ndirs;              /* their folders: the first four */
	char dirs[4][512];
	int more_dirs;             /* 1: they are in more folders than these */
	char message[1024];        /* the sentence above ("" when count is 0) */
	void *reserved[4];
} copystand_earlier_info;

/* Fills out; 0, or a negative code (the journal cannot be read). */
int copystand_earlier(copystand *c, copystand_earlier_info *out, char *err, size_t errlen);

/* Stops the background work and frees c; what is not attached yet stays
 * in the journal and is resumed by the next station. */
void copystand_close(copystand *c);

/* For hosts that live for one file: copies it into the session folder of
 * the station running on this computer, named from its current catalog
 * number, journals it for that station to finish and attach, and returns
 * at once.  When no station runs, the file goes to the folder of the one
 * that ran last, unnamed ("unnamed_..."): that station's last number is
 * no one's to give, and a person names the file later.  *name (may
 * be NULL) receives the new name (malloc'd).  COPYSTAND_E_NOT_FOUND when
 * no station has ever run for this user. */
int copystand_submit_to_running(const char *path, char **name,
				char *err, size_t errlen);

/* Frees a string the library returned. */
void copystand_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
