/* copystand — the journal: every capture or file to upload and every
 * change of its state, in SQLite (WAL mode, synchronous=FULL), so that a
 * transition is on disk before the next step starts.
 *
 * The journal is the only state shared between a station, host plugins
 * that submit files, `copystand upload` and the pipeline; several
 * processes may use one journal at once.  It never holds a password, a
 * session cookie or an asset-server token.
 */
#ifndef COPYSTAND_JOURNAL_H
#define COPYSTAND_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct journal journal;

/* captured → named → matched → reserved → uploaded → attached, with the
 * side states; JS_COUNT last. */
enum journal_state {
	JS_CAPTURED,    /* bytes fsynced locally, not yet named */
	JS_NAMED,       /* identifier known, record not yet looked up */
	JS_MATCHED,     /* record id known */
	JS_RESERVED,    /* attachment location reserved (the idempotency key) */
	JS_UPLOADED,    /* the asset server said Ok. */
	JS_ATTACHED,    /* join row created: done */
	JS_UNMATCHED,   /* no record has the identifier */
	JS_AMBIGUOUS,   /* several records have it */
	JS_HELD,        /* waits for a person (e.g. label mismatch) */
	JS_FAILED,      /* permanent failure; reason says what to do */
	JS_ROLLED_BACK, /* attached, then removed again */
	JS_LOCAL,       /* kept on local disk only, by choice (--raw local) */
	JS_DEFERRED,    /* sent once nothing else waits (--raw later) */
	JS_COUNT
};

const char *journal_state_name(enum journal_state s);
/* -1 for an unknown name. */
int journal_state_parse(const char *name);
/* attached, unmatched, ambiguous, held, failed, rolled_back, local:
 * nothing more happens without a person. */
bool journal_state_is_final(enum journal_state s);

/* How a capture got its number: the one current when its shutter was
 * pressed (core/press.h). */
enum journal_bind {
	JB_NONE,        /* no shutter press (a folder's file), or from before */
	JB_TRIGGER,     /* fixed when the program asked the camera to fire */
	JB_PENDING,     /* to be decided from the time of the press */
	JB_TIME,        /* decided from the time of the press */
	JB_PERSON,      /* held, then decided by a person */
	JB_LABEL,       /* held, then decided by the label in the image */
};

/* What is known of the press that made a capture. */
typedef struct journal_press {
	char *source;        /* the camera: its presses come in order */
	double lo, hi;       /* the press came within (computer clock; -INFINITY,
			      * INFINITY when not known) */
	double cam, res;     /* the camera's clock at the press, its resolution
			      * (res 0: not looked for yet, < 0: the files
			      * carry none) */
	enum journal_bind bind;
	/* Held: the numbers it may be, one a line, oldest first (an empty
	 * line: no number); else NULL. */
	char *candidates;
} journal_press;

/* One row.  Strings are owned by the struct (journal_item_clear). */
typedef struct journal_item {
	long long id;
	long long batch_id;
	char *path;          /* the local file */
	char *name;          /* file name given to Specify (origfilename) */
	long long size;
	char *sha256;        /* hex, or NULL */
	char *mimetype;
	char *target;        /* match target name, e.g. "catalog-number" */
	char *identifier;    /* as Specify stores it */
	char *record_table;  /* e.g. "collectionobject" */
	long long record_id;
	int ordinal;
	char *location;      /* attachmentLocation */
	long long join_id;
	long long attachment_id;
	char *extra;         /* JSON object of more attachment fields, or NULL */
	enum journal_state state;
	char *reason;        /* why failed/unmatched/held, for a person */
	int attempts;        /* times a worker took it up */
	double next_try;     /* unix time before which it waits */
	journal_press press; /* bind JB_NONE: the rest is unused */
	char *card;          /* the camera's file it is ("/DCIM/100CANON/IMG_0001.JPG"),
			      * or NULL; adding it settles that file's card entry */
} journal_item;

void journal_item_clear(journal_item *it);

typedef struct journal_batch {
	long long id;
	char *kind;          /* "upload", "station", ... */
	char *server;
	char *collection;    /* as configured: a name or an id */
	long long collection_id; /* 0 until known (a batch started offline) */
	char *label;
	double created;
	char *state;         /* "open", "rolling_back", "rolled_back" */
} journal_batch;

void journal_batch_clear(journal_batch *b);

/* The default journal: $XDG_DATA_HOME/copystand/journal.sqlite (malloc'd);
 * its folder is created. */
char *journal_default_path(cs_error *err);

int journal_open(const char *path, journal **out, cs_error *err);
void journal_close(journal *j);

int journal_batch_new(journal *j, const char *kind, const char *server,
		      const char *collection, long long collection_id,
		      const char *label, long long *id, cs_error *err);
int journal_batch_get(journal *j, long long id, journal_batch *out,
		      cs_error *err);
int journal_batch_set_state(journal *j, long long id, const char *state,
			    cs_error *err);
/* Calls fn for every batch, newest first; fn returning non-zero stops. */
int journal_batches_each(journal *j, int (*fn)(void *ud, const journal_batch *b),
			 void *ud, cs_error *err);
/* counts[state] for the items of a batch. */
int journal_batch_counts(journal *j, long long batch,
			 long long counts[JS_COUNT], cs_error *err);

/* Inserts it (id ignored, state as given) and records the event. */
int journal_item_add(journal *j, const journal_item *it, long long *id,
		     cs_error *err);
/* Many at once, in one transaction; ids (may be NULL) gets their ids. */
int journal_items_add(journal *j, const journal_item *items, size_t n,
		      long long *ids, cs_error *err);
int journal_item_get(journal *j, long long id, journal_item *out,
		     cs_error *err);
/* What this journal attached to this record: an item with this content
 * (*same_content true), else one with this file name and other content,
 * the newest first; *batch is its batch, 0 when there is neither.  Items
 * of batch `except` (0: none) are left out, and those whose join row gone
 * (may be NULL) says the record no longer has. */
int journal_find_attached(journal *j, const char *table, long long record_id,
			  const char *sha256, const char *name, long long except,
			  bool (*gone)(void *ud, long long join_id), void *ud,
			  long long *batch, bool *same_content, cs_error *err);
/* The name of the first item whose content is or was (before the station
 * stamped it) sha256 (malloc'd in *name), of batch if it has one, else of
 * another batch where it has not failed or been rolled back; *found gets
 * its batch.  CS_E_NOT_FOUND when there is none. */
int journal_find_content(journal *j, long long batch, const char *sha256,
			 char **name, long long *found, cs_error *err);
/* Whether an item of any batch that has not failed or been rolled back
 * has this content (false also when the journal cannot say). */
bool journal_knows_content(journal *j, const char *sha256);

/* A file sent to the asset server at location before any item held that
 * location (copystand upload sends the first files while Specify looks
 * their names up), noted before it is sent. */
int journal_ahead_add(journal *j, const char *server, const char *location,
		      cs_error *err);
/* Calls fn, oldest first, for the locations of server that no item holds,
 * noted by this process or by a process of this computer that is gone.
 * fn returning non-zero stops the walk and is returned. */
int journal_ahead_each(journal *j, const char *server,
		       int (*fn)(void *ud, const char *location), void *ud,
		       cs_error *err);
int journal_ahead_remove(journal *j, const char *location, cs_error *err);
/* Forgets, in one transaction, every location an item holds: its upload
 * is the item's now. */
int journal_ahead_forget_taken(journal *j, cs_error *err);
/* Writes every mutable field of it, but only if the row is still in
 * state `from` (CS_E_CONFLICT otherwise: someone else moved it).  A state
 * change is recorded as an event. */
int journal_item_update(journal *j, const journal_item *it,
			enum journal_state from, cs_error *err);
/* Several updates in one transaction (one fsync): all or none. */
int journal_items_update(journal *j, const journal_item *items, size_t n,
			 enum journal_state from, cs_error *err);

/* Calls fn for items of a batch in id order (batch 0: of every batch),
 * optionally only in one state (state < 0: any).  fn returning non-zero
 * stops the walk and is returned. */
int journal_items_each(journal *j, long long batch, int state,
		       int (*fn)(void *ud, const journal_item *it), void *ud,
		       cs_error *err);

/* Calls fn, in id order, for the files of batches of this server and
 * collection other than `except` that wait for a person (unmatched,
 * ambiguous, failed) and that no later item took up again from the same
 * path (copystand upload of their folder); fn returning non-zero stops the
 * walk and is returned. */
int journal_left_over(journal *j, const char *server, const char *collection,
		      long long except, int (*fn)(void *ud, const journal_item *it),
		      void *ud, cs_error *err);

/* Calls fn for the items of identifier (of any batch and state) in id
 * order; fn returning non-zero stops the walk and is returned. */
int journal_items_of_identifier(journal *j, const char *identifier,
				int (*fn)(void *ud, const journal_item *it),
				void *ud, cs_error *err);

/* Up to max items in `state` whose next_try has come, of batches of this
 * server and collection (by the configured text or by id), not leased by
 * a live worker, oldest first. */
int journal_items_due(journal *j, const char *server, const char *collection,
		      long long collection_id, enum journal_state state,
		      double now, size_t max,
		      journal_item **out, size_t *n, cs_error *err);
void journal_items_free(journal_item *items, size_t n);

/* Takes the item for this process until lease_until, and counts one more
 * attempt.  CS_E_CONFLICT when another live process holds it. */
int journal_item_claim(journal *j, long long id, double lease_until,
		       int *attempts_before, cs_error *err);
/* Gives the lease back. */
int journal_item_release(journal *j, long long id, cs_error *err);

/* What a station has scanned, for hosts that hand a file to the station
 * running (a gphoto2 hook lives for one download). */
/* The paths of the items whose file is in dir, sorted: *paths and each
 * path malloc'd, freed with journal_paths_free. */
int journal_paths_in(journal *j, const char *dir, char ***paths, size_t *n,
		     cs_error *err);
/* Whether path is among the n paths journal_paths_in gave. */
bool journal_paths_have(char *const *paths, size_t n, const char *path);
void journal_paths_free(char **paths, size_t n);

typedef struct journal_station {
	long long batch_id;      /* the station's session */
	char *dir;               /* its session folder */
	char *identifier;        /* the current number, or NULL */
	long long record_id;     /* its record when the check found it, or 0 */
	int ordinal_base;        /* see station_shot */
	bool live;               /* its process runs on this computer */
	/* The last file a host handed in: its own stem (IMG_0004), the name
	 * it got (000000123_2) and when (unix time). */
	char *last_source, *last_stem;
	double last_at;
} journal_station;

void journal_station_clear(journal_station *st);

/* Records st (this process and host) as the station of st->batch_id. */
int journal_station_publish(journal *j, const journal_station *st, cs_error *err);

/* The station of batch has ended: it no longer names hosts' files. */
int journal_station_ended(journal *j, long long batch, cs_error *err);

/* Notes the last file a host handed to the station of batch. */
int journal_station_note(journal *j, long long batch, const char *source,
			 const char *stem, cs_error *err);

/* The newest station still running on this computer, else the newest of
 * all; CS_E_NOT_FOUND when no station ever ran. */
int journal_station_current(journal *j, journal_station *out, cs_error *err);

/* --- which press a capture comes from (core/press.h) ------------------- */

/* A scan at a station, at time at; identifier NULL when the line was no
 * catalog number (the current number was cleared). */
typedef struct journal_scan {
	double at;
	char *identifier;
} journal_scan;

int journal_scan_add(journal *j, long long batch, double at, const char *identifier,
		     cs_error *err);
/* The scans of a batch in time order (journal_scans_free). */
int journal_scans_get(journal *j, long long batch, journal_scan **out, size_t *n,
		      cs_error *err);
void journal_scans_free(journal_scan *scans, size_t n);

/* A reading of a camera's clock: its offset (camera − computer) lay
 * within [lo, hi] at time at. */
typedef struct journal_clock {
	double at, lo, hi;
} journal_clock;

int journal_clock_add(journal *j, long long batch, const char *source,
		      const journal_clock *c, cs_error *err);
/* The readings of source's clock in a batch, newest max (malloc'd). */
int journal_clocks_get(journal *j, long long batch, const char *source, size_t max,
		       journal_clock **out, size_t *n, cs_error *err);

/* The (batch, source) pairs with presses whose number is still to be
 * decided (pending, captured or held): fn for each. */
int journal_presses_pending(journal *j, int (*fn)(void *ud, long long batch,
						   const char *source),
			    void *ud, cs_error *err);
/* The items of source's presses in batch, in id order: from `history`
 * items before the first one whose number is still to be decided to the
 * last (journal_items_free). */
int journal_presses_get(journal *j, long long batch, const char *source,
			size_t history, journal_item **out, size_t *n, cs_error *err);

/* --- shots a camera announced and nobody has yet ----------------------- */

/* A file on a camera's card, listed from its announcement until an item
 * with that card path is journaled: what a download missed (the camera
 * went away, the station quit or crashed) is still known at the next
 * start. */
typedef struct journal_card {
	long long batch_id;  /* the session it was shot in */
	char *source;        /* the camera's model */
	char *path;          /* on its card */
	char *identifier;    /* the number it was fired for, or NULL */
	double announced;    /* unix time */
} journal_card;

/* Lists c (once: the same source and path again is no new entry). */
int journal_card_add(journal *j, const journal_card *c, cs_error *err);
/* Takes path off the list: it can no longer come (erased on the camera). */
int journal_card_drop(journal *j, const char *path, cs_error *err);
/* Every file listed, oldest first (journal_cards_free). */
int journal_cards_get(journal *j, journal_card **out, size_t *n, cs_error *err);
void journal_cards_free(journal_card *cards, size_t n);

/* Items of the journal that hold this record (attached, on the way, or
 * waiting: captured, held, deferred), for numbering further images of it. */
int journal_record_count(journal *j, const char *table, long long record_id,
			 long long *count, cs_error *err);

#endif
