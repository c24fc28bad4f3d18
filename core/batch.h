/* copystand — a batch of files to attach: plan, validate, journal.
 *
 * Planning walks the input (files and folders) and hashes the files in
 * the background.  Validation finds each file's identifier from its name
 * (or a mapping file), groups same-stem files (RAW+JPEG pairs), looks
 * every identifier up in batched requests and decides, per file:
 * matched, not found, ambiguous, badly formatted, not in the mapping
 * file, already attached (this journal attached the same content to that
 * record before, and the record still has it), name taken (the record has
 * an attachment of that name whose bytes are not known to be the same),
 * or a duplicate of another file in the batch.  Nothing is uploaded here:
 * the matched files are journaled as one batch for the pipeline.
 */
#ifndef COPYSTAND_BATCH_H
#define COPYSTAND_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "journal.h"
#include "metadata.h"
#include "specify.h"
#include "targets.h"

enum batch_status {
	BATCH_MATCHED,
	BATCH_NOT_FOUND,
	BATCH_AMBIGUOUS,
	BATCH_BAD_NAME,        /* the name gives no identifier */
	BATCH_NOT_IN_MAPPING,
	BATCH_ALREADY,         /* already attached to that record */
	BATCH_NAME_TAKEN,      /* its name is on that record, its bytes not known to be */
	BATCH_DUPLICATE,       /* same content as another file of the batch */
	BATCH_UNREADABLE,      /* cannot be read */
	BATCH_STATUS_COUNT
};

/* A short stable name ("matched", "not-found", ...), for reports and JSON. */
const char *batch_status_name(enum batch_status s);

/* What copystand writes beside captures (XMP sidecars, reports): never a
 * capture itself. */
bool batch_is_own_file(const char *name);

typedef struct batch_file {
	char *path;
	const char *name;          /* within path */
	long long size;
	char sha256[65];
	char *identifier;          /* as stored, once known */
	long long record_id;       /* when matched (or picked) */
	int ordinal;
	enum batch_status status;
	char *reason;              /* for every status but matched */
	long long candidates[4];   /* record ids when ambiguous */
	int candidate_attachments[4];
	int ncandidates;
} batch_file;

typedef struct batch_options {
	const struct match_target *target;
	const char *mapping;       /* mapping file, or NULL: names say it */
	bool recursive;
	enum { BATCH_PICK_NONE, BATCH_PICK_FIRST, BATCH_PICK_NEWEST } pick;
	/* Attachment fields from the configuration (NULL: none); each
	 * JPEG's EXIF adds its date and camera. */
	const metadata_defaults *defaults;
	/* Validation also reserves locations for the first files, so that
	 * they are journaled reserved and go out at once (not for a dry run). */
	bool reserve;
	/* With reserve: the journal those first files are noted in as they
	 * are sent to the asset server while their names are looked up (NULL:
	 * they are only reserved). */
	const char *journal_path;
} batch_options;

typedef struct batch_plan batch_plan;

/* Walks inputs (files or folders; subfolders with recursive) and starts
 * reading (hashing) the files in the background, so that the reading goes
 * on while the caller logs in.  Inputs that cannot be reached become
 * entries with BATCH_UNREADABLE, not errors. */
int batch_plan_new(const batch_options *o, char *const *inputs, size_t n,
		   batch_plan **out, cs_error *err);
void batch_plan_free(batch_plan *plan);

/* Finds each file's identifier from its name with format (NULL: the
 * field is plain text) or from the mapping file (one that cannot be read
 * is an error), looks them up (batched), waits for the reading, checks
 * what the records and the journal already hold, and settles every
 * file's status (a file that cannot be read: unreadable).  resumed (0:
 * none) is an unfinished batch of the same files: its files keep the
 * record they were journaled with and count as matched, as when the batch
 * began. */
int batch_plan_validate(batch_plan *plan, const struct catalog_format *format,
			specify_session *s, journal *j, long long resumed,
			cs_error *err);

/* Starts sending the first files whose names guess (the catalog-number
 * format saved from an earlier start) reads to the asset server now,
 * before the format is fetched and the names are looked up: each is
 * noted in the journal (batch_options.journal_path) before it is sent,
 * and is only ever attached once validation matched it.  Not for a
 * resumed batch.  Validation starts the same with the fetched format when
 * nothing has started it. */
void batch_plan_send_ahead(batch_plan *plan, specify_session *s,
			   const struct catalog_format *guess);

size_t batch_plan_count(const batch_plan *plan);
const batch_file *batch_plan_file(const batch_plan *plan, size_t i);
/* counts[status] */
void batch_plan_counts(const batch_plan *plan, size_t counts[BATCH_STATUS_COUNT]);

/* Settles an ambiguous file on one of its candidates (a person chose). */
int batch_plan_choose(batch_plan *plan, size_t i, long long record_id,
		      cs_error *err);

/* Journals the matched files (one transaction): as a new batch when
 * *batch_id is 0, else into batch *batch_id, leaving out the files that
 * batch holds already (the resumed batch of batch_plan_validate). */
int batch_plan_journal(const batch_plan *plan, journal *j, const char *server,
		       const char *collection, long long collection_id,
		       const char *label, long long *batch_id, cs_error *err);

/* Deletes from the asset server what was sent ahead and no item took (its
 * name matched nothing, it was left out, or the run ended first), by this
 * process or by one of this computer that is gone; what an item took is
 * only forgotten.  A deletion that fails is tried at the next run. */
int batch_sweep_ahead(journal *j, specify_session *s, cs_error *err);

#endif
