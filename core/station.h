/* copystand — a copy-stand session: the catalog number scanned last, what
 * Specify says of it, and every capture handed to the journal and the
 * pipeline, which attaches it in the background.
 *
 * Knows nothing of cameras or terminals: the station command (and host
 * plugins) feed it scans and captured files and show its status.  A scan
 * is parsed at once and becomes the current number before Specify has
 * answered, so a slow or unreachable server never holds up shooting; the
 * check runs on a thread of its own and fills in the record, its taxon
 * and its attachment count when it comes.
 */
#ifndef COPYSTAND_STATION_H
#define COPYSTAND_STATION_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "config.h"
#include "error.h"
#include "finish.h"
#include "specify.h"

typedef struct station station;

/* One thing that happened, for hosts that keep their own log. */
enum station_news_kind {
	STATION_NEWS_CHECKED,    /* what Specify says of the current number */
	STATION_NEWS_ATTACHED,
	STATION_NEWS_PROBLEM,    /* a file is not attached (held, unmatched, failed) */
	STATION_NEWS_ONLINE,
	STATION_NEWS_OFFLINE,
	STATION_NEWS_EARLIER,    /* how many files of earlier sessions wait for a
				  * person (station_earlier), and where */
};

typedef struct station_news {
	enum station_news_kind kind;
	const char *identifier;  /* or "" */
	const char *file;        /* or "" */
	const char *message;
} station_news;

/* What Specify said of the current number. */
enum station_check {
	STATION_NONE,       /* nothing scanned yet, or the last scan was refused */
	STATION_CHECKING,   /* asked, no answer yet */
	STATION_FOUND,
	STATION_NOT_FOUND,
	STATION_AMBIGUOUS,
	STATION_OFFLINE,    /* Specify unreachable: asked again when it is back */
};

typedef struct station_options {
	const char *journal_path;
	specify_login login;        /* copied; the password is wiped at close */
	const struct catalog_format *format; /* borrowed: outlives the station */
	const char *dir;            /* the session folder, which must exist */
	/* What the scanner (or the barcode itself, "UAM:Ento:000123") puts
	 * around the number: stripped from scans and labels when present. */
	struct catalog_scan_options scan;
	/* Shoot numbers Specify does not know (they stay unmatched, for a
	 * later `copystand upload`); false: refuse the shutter for them. */
	bool keep_unknown;
	/* What happens to each capture before it is sent (core/finish.h):
	 * the identity written into the files, the RAW policy, attachment
	 * fields, and the label check with its barcode reader. */
	bool stamp;
	const char *station_name;   /* NULL: the host name */
	enum finish_raw raw;
	metadata_defaults defaults;
	enum finish_label label;
	int (*read_label)(void *ud, const char *jpeg, char (*codes)[256],
			  size_t max, size_t *n, cs_error *err);
	void *label_ud;
	/* Pipeline tuning; 0: its defaults. */
	int max_inflight;
	double retry_base_s, retry_cap_s;
	/* Something changed that a person should see; called from any
	 * thread, must be quick. */
	void (*on_change)(void *ud);
	/* The same, as one piece of news each (may be NULL); from any
	 * thread, possibly with the station's lock held: must be quick and
	 * must not call back into the station. */
	void (*on_news)(void *ud, const struct station_news *n);
	void *ud;
} station_options;

#define STATION_ID_MAX 128
/* The camera of the files hosts hand in, as press sources go. */
#define STATION_HOST_CAMERA "host"

typedef struct station_status {
	/* The current specimen. */
	enum station_check check;
	char identifier[STATION_ID_MAX]; /* as stored, "" when none */
	long long record_id;
	char taxon[256];                 /* the current determination's */
	int attachments;                 /* it has in Specify, this session's included */
	char message[512];               /* the scan or the check, for a person */
	/* The session. */
	long long batch;
	long long queued;                /* captured files not yet attached */
	long long attached;
	long long problems;              /* unmatched, ambiguous, failed, held, lost */
	bool online;                     /* Specify answered the last request */
	char last[512];                  /* the last thing that happened to a file */
	/* Grows by one with every event that deserves the bell. */
	unsigned alerts;
	/* The capture held last ("" when none waits): station_resolve_held()
	 * decides it.  Held because its label disagrees with the scan:
	 * held_label; because its press came as the number changed
	 * (held_press): the number before and the number after ("" for no
	 * number), and how many numbers it may be in all. */
	char held_name[256];
	char held_label[STATION_ID_MAX];
	bool held_press;
	char held_before[STATION_ID_MAX], held_after[STATION_ID_MAX];
	int held_numbers;
} station_status;

/* A shutter press and the name its files get.  A press fired from the
 * program takes the number current when it was asked for
 * (station_shot_prepare); one from the camera's own button, or handed
 * in by a host, gets a provisional name and its number once the time of
 * the press is known (station_shot_pending; core/press.h). */
typedef struct station_shot {
	char identifier[STATION_ID_MAX]; /* "" when no number (yet) */
	char stem[256];                  /* "000000123", "000000123_2", "unnamed_...",
					  * "pending_..." */
	unsigned index;                  /* 1, 2, ... (0 for unnamed) */
	/* The record the check had found when the shutter fired (0: not
	 * known yet), so the capture skips the pipeline's lookup; and its
	 * attachments then less those the journal held for it. */
	long long record_id;
	int ordinal_base;
	/* The press: how its number is bound, which camera's it is (presses
	 * of one come in order), and the times (computer clock) after and
	 * before which it came: the trigger sent, the file announced. */
	enum journal_bind bind;
	char source[64];
	double lo, hi;
} station_shot;

/* One file of a capture, fsynced in the session folder. */
typedef struct station_file {
	const char *path;
	long long size;
	const char *sha256;              /* hex */
	const char *mimetype;
	const char *card;                /* the camera's file it is, or NULL */
} station_file;

/* What Specify holds for a catalog number of the session's collection. */
typedef struct station_record {
	int count;                       /* collection objects with it */
	long long id;                    /* the first one's */
	char taxon[256];                 /* its current determination's, or "" */
	int attachments;
	char names[1024];                /* their original file names, ", "-joined */
	unsigned next_index;             /* after the names copystand would give */
} station_record;

/* The settings a station takes from the configuration: unknown, stamp,
 * station-name, raw and the attachment fields (strings borrowed from
 * cfg).  With label non-NULL, also the label check, for a caller that
 * then supplies read_label. */
int station_options_from_config(const cs_config *cfg, station_options *o,
				enum finish_label *label, cs_error *err);

/* One lookup (and one more for the taxon when there is one record). */
int station_record_describe(specify_session *s, const char *identifier,
			    station_record *out, cs_error *err);

/* Opens the journal, starts a batch of kind "station" and the pipeline
 * (which also resumes what earlier sessions left), and logs in on the
 * checking thread; Specify may be unreachable. */
int station_open(const station_options *o, station **out, cs_error *err);

/* A scan or a typed number: the current number from now on, checked in
 * the background.  A line that is no catalog number is CS_E_INVALID with
 * the reason, and clears the current number: no shot goes to the specimen
 * before by mistake. */
int station_scan(station *s, const char *line, cs_error *err);

/* The same for a scan read at time at (unix seconds; 0: now), before the
 * call: presses are placed against it. */
int station_scan_at(station *s, const char *line, double at, cs_error *err);

/* Whether the shutter may fire from the program now: CS_E_INVALID with
 * the reason when no number is current (unless captures are named from
 * their labels), or Specify said it has none (and keep_unknown is off).  The camera's own button cannot be refused: such
 * shots are always kept. */
int station_may_shoot(station *s, cs_error *err);

/* A press fired from the program, asked for now: it takes the number
 * current now, and its next name (the index is taken: the next call
 * gives the next one). */
void station_shot_prepare(station *s, station_shot *out);

/* A press of the camera's own button, or one a host hands in, announced
 * at time `announced`: a provisional name; the finisher gives it the
 * number current at its press, or holds it. */
void station_shot_pending(station *s, double announced, station_shot *out);

/* Another name for shot, whose name was found taken: the same number's
 * next one. */
void station_shot_rename(station *s, station_shot *shot);

/* A shot asked for that never came (the camera refused): its name is free
 * again for the next one, if no later one took the next. */
void station_shot_cancel(station *s, const station_shot *shot);

/* What a station knows of a camera's clock after a reading. */
typedef struct station_clock {
	double lo, hi;      /* its offset (camera − computer) now, as known */
	bool changed;       /* the reading contradicted those before: the
			     * clock was set on the camera, and is learnt anew */
} station_clock;

/* A reading of source's clock: at a moment between before and after (the
 * computer's clock, unix seconds) it said camera_time (its date and time
 * counted as if UTC), to resolution res.  Journaled for placing presses;
 * *out (may be NULL) says what is known now (press_clock_next_read()
 * tells when to read again).  A station keeps one camera's readings: one
 * of another source starts afresh. */
int station_clock_read(station *s, const char *source, double before, double after,
		       double camera_time, double res, station_clock *out, cs_error *err);

/* Journals the files of one capture under shot's number (one
 * transaction) and wakes the pipeline.  Without a number they are kept as
 * unmatched, for a person to name. */
int station_submit(station *s, const station_shot *shot,
		   const station_file *files, size_t n, cs_error *err);

/* What a person says of the capture held last. */
enum station_choice {
	STATION_KEEP_SCAN,    /* label mismatch: the scanned number (c) */
	STATION_TAKE_LABEL,   /* label mismatch: the label's number (l) */
	STATION_BEFORE,       /* press as the number changed: the one before (p) */
	STATION_AFTER,        /* press as the number changed: the one after (n) */
};

/* Decides the capture held last; its files are renamed as needed.
 * CS_E_NOT_FOUND when none is held, CS_E_INVALID when the choice is not
 * one of its. */
int station_resolve_held(station *s, enum station_choice choice, cs_error *err);

/* The same with the number itself, as typed or scanned: for a shot held
 * as the number changed, any of the numbers it may be (there may be more
 * than two); for a label mismatch, the scanned or the label's. */
int station_resolve_held_number(station *s, const char *text, cs_error *err);

/* Copies files a host captured (one shutter press) into the session
 * folder, fsynced, and submits them: under shot's name (a press the host
 * fired: station_shot_prepare() when it asked), or NULL for one of the
 * camera's own button, named from the time of its press.  *name (may be
 * NULL) gets the first one's new name (malloc'd). */
int station_submit_copies(station *s, station_shot *shot, const char *const *paths,
			  size_t n, char **name, cs_error *err);

/* The same for a host that lives for one file, without a station of its
 * own: into the session of the station running on this computer (or of
 * the last one), named from the time of its press; that station
 * finishes and attaches them. */
int station_submit_to_running(const char *journal_path, const char *const *paths,
			      size_t n, char **name, cs_error *err);

/* --- shots the camera announced and that are not here yet --------------- */

/* A file camera (its model) announced at path on its card, for the number
 * identifier ("": none known yet): on record until a capture with that
 * card path is journaled (station_file.card), so a shot whose download
 * never happens (the camera went away, the station quit or crashed) is
 * known at the next start. */
int station_card_announced(station *s, const char *camera, const char *path,
			   const char *identifier, cs_error *err);

/* One that can no longer come (erased on the camera first): off the
 * record, and told as a problem. */
void station_card_lost(station *s, const char *path, const char *identifier);

/* The files still on a card: of this session (mine) or of earlier ones,
 * oldest first (journal_cards_free). */
int station_cards(station *s, bool mine, journal_card **out, size_t *n, cs_error *err);

/* "IMG_0001.JPG (fired for 000000009), IMG_0002.JPG" into out. */
void station_cards_say(const journal_card *c, size_t n, char *out, size_t size);

/* The same within this process, for a thread that watches a folder:
 * files pressed before seen (unix seconds: when they appeared, or were
 * written where the folder's times say so) are copied into this
 * station's session, their press placed after the files handed in before
 * them (alone, held when a scan may precede it, when seen before one of
 * those or numbered before the last); the other half of a pair (the same
 * stem within a minute) under its first half's name.  move: the files
 * are given up (--watch-keep move): each is renamed into the session
 * where it is on the session's filesystem (nothing copied; fsynced, both
 * folders synced, before it is journaled), else copied and, once
 * journaled, removed unless it changed meanwhile (one that cannot be
 * removed is said in the status).  On failure nothing is journaled and
 * the files are where they were (or err says where). */
int station_submit_received(station *s, const char *const *paths, size_t n, double seen,
			    bool move, char **name, cs_error *err);

/* Takes back the last capture not yet taken back: its files go no
 * further, are deleted locally, and from Specify if they got there.
 * CS_E_NOT_FOUND when there is nothing to take back. */
int station_undo(station *s, cs_error *err);

/* Files in the session folder that the journal does not know, as a
 * crash or a full disk between a download and its journaling leaves
 * them (sidecars, hidden and partial files, reports aside): how many,
 * and the first one's name (first may be NULL). */
int station_unjournaled(station *s, size_t *count, char *first, size_t size,
			cs_error *err);

/* The files earlier sessions of this server and collection left for a
 * person (not attached: no number, no such record, several, failed),
 * still where they were left and not handed on since (as `copystand
 * upload` of their folder does): they are counted, not told one by one
 * as news of this session. */
#define STATION_EARLIER_DIRS 4
typedef struct station_earlier {
	size_t count;
	size_t ndirs;                    /* their folders, the first ones */
	char dirs[STATION_EARLIER_DIRS][512];
	bool more_dirs;                  /* in more folders than these */
} station_earlier;

int station_earlier_files(station *s, station_earlier *out, cs_error *err);

/* "2 earlier files need a decision: copystand upload DIR" ("" for none). */
void station_earlier_say(const station_earlier *e, char *out, size_t size);

void station_get_status(station *s, station_status *out);

/* Waits until every capture of the session is final and every undo done,
 * or timeout_s passes (CS_E_TIMEOUT; < 0: forever), or
 * station_interrupt() (CS_E_INVALID). */
int station_wait_idle(station *s, double timeout_s, cs_error *err);
void station_interrupt(station *s);

/* Stops the threads and frees s; pending work stays in the journal. */
void station_close(station *s);

#endif
