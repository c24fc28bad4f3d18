/* copystand — what happens to a capture between the camera and the
 * pipeline: the catalog number written into the JPEG (an XMP sidecar
 * beside RAW files, which are never modified), the label read back and
 * compared with the scanned number, the attachment's fields from EXIF and
 * the configuration, and the RAW policy.
 *
 * Captures wait in the journal as `captured` until this is done, on a
 * thread of its own, off the capture path: a slow label decode never holds
 * up the shutter.  Every step can run twice (a stamp already written is
 * not written again), so a crash anywhere just redoes it at the next
 * start.
 */
#ifndef COPYSTAND_FINISH_H
#define COPYSTAND_FINISH_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "error.h"
#include "journal.h"
#include "metadata.h"

typedef struct finisher finisher;

/* What becomes of the RAW file of a RAW+JPEG pair (the JPEG always goes
 * first): sent too, kept on local disk only, or sent once nothing else
 * waits (slow uplinks keep up with shooting). */
enum finish_raw { FINISH_RAW_UPLOAD, FINISH_RAW_LOCAL, FINISH_RAW_LATER };

/* The label check: off; compare the label's number with the scanned one
 * (a mismatch holds the capture); or name captures from their label. */
enum finish_label { FINISH_LABEL_OFF, FINISH_LABEL_CHECK, FINISH_LABEL_NAME };

#define FINISH_CODES_MAX 8

/* The stem a shot has until its number is decided from its press. */
#define FINISH_PENDING "pending_"

/* One capture done, or held. */
typedef struct finish_event {
	long long first_item;      /* the journal id of its first file */
	const long long *items;    /* of all its files, first_item first */
	size_t nitems;
	long long batch_id;
	const char *name;          /* its first file's name */
	const char *identifier;    /* "" when it has none */
	enum journal_state state;  /* of its first file */
	const char *reason;        /* why held/unmatched, or NULL */
	const char *label;         /* the label's catalog number, or NULL */
	enum journal_bind bind;    /* how it got its number */
	/* Held because its press came as the number changed: the numbers
	 * it may be, one a line, oldest first ("" line: none); else NULL. */
	const char *candidates;
} finish_event;

/* A name for a capture, from whoever keeps the numbering. */
typedef struct finish_name {
	char stem[256];            /* "000000123_2" */
	long long record_id;       /* its record when known already, else 0 */
	int ordinal_base;          /* see station_shot */
} finish_name;

typedef struct finish_options {
	const char *journal_path;
	/* Whose captures: the batches of this server and collection. */
	const char *server, *collection;
	const struct catalog_format *format; /* borrowed: reads labels */
	struct catalog_scan_options scan;    /* a prefix labels may carry too */
	const char *station_name;   /* in the stamp; NULL: the host name */
	bool stamp;                 /* write the identity into the files */
	enum finish_raw raw;
	metadata_defaults defaults; /* strings borrowed */
	enum finish_label label;
	/* Reads the barcodes of a JPEG (hardware/barcode); NULL: no label
	 * check whatever `label` says. */
	int (*read_label)(void *ud, const char *jpeg,
			  char (*codes)[256], size_t max, size_t *n,
			  cs_error *err);
	/* The name for a capture named after the fact (from its label, or
	 * from the time of its press) in folder dir: takes that number's
	 * next index. */
	int (*name)(void *ud, const char *identifier, const char *dir, finish_name *out);
	/* From the finisher's thread; must be quick. */
	void (*on_done)(void *ud, const finish_event *ev);
	void *ud;
} finish_options;

int finish_start(const finish_options *o, finisher **out, cs_error *err);

/* New captures are in the journal. */
void finish_kick(finisher *f);

/* A held capture (the one whose first file is item): sent on under
 * identifier, which is its own (the technician confirms the scan), the
 * label's, or for a press that came as the number changed one of its
 * candidates ("": none); the files are renamed as needed. */
int finish_release(finisher *f, long long item, const char *identifier,
		   cs_error *err);

/* Stops the thread; what is not finished stays captured in the journal. */
void finish_stop(finisher *f);

#endif
