/* copystand — the session report: one HTML contact sheet of a batch or of
 * a session folder, for a collections manager to check, mail or archive.
 *
 * One card per capture (files sharing a stem, RAW+JPEG, are one card), in
 * capture order: a thumbnail (the EXIF one as it is, else one made with
 * libjpeg's DCT scaling), the catalog number, the current determination's
 * taxon, the state with its reason, the file names and a link to the
 * record in Specify 7.  The file is self-contained (inline CSS, images as
 * data: URIs, no script) and every string from the journal or Specify is
 * escaped.  Specify is asked for taxa only, and a report is written
 * without it.
 */
#ifndef COPYSTAND_REPORT_H
#define COPYSTAND_REPORT_H

#include <stdio.h>

#include "error.h"
#include "journal.h"
#include "specify.h"

typedef struct report report;

typedef struct report_options {
	long long batch;      /* a batch of the journal, or 0: */
	const char *folder;   /* the items of any batch whose file lies in this
			       * folder or below (the newest item of a file) */
} report_options;

/* Reads the items and their batches.  CS_E_NOT_FOUND when the batch does
 * not exist or no item lies in the folder. */
int report_open(journal *j, const report_options *o, report **out, cs_error *err);

/* The newest batch of the report: its server and collection are the ones
 * to ask for taxa. */
const journal_batch *report_batch(const report *r);

/* The files by state, and the cards (captures) they make. */
size_t report_counts(const report *r, long long counts[JS_COUNT]);

/* Asks s for the current determination of every collection object of the
 * report that belongs to s's server and collection: two batched lookups
 * (the objects, then their taxa).  A failure is returned, and the cards
 * say their taxon is unknown and why; the report can still be written. */
int report_lookup_taxa(report *r, specify_session *s, cs_error *err);

/* Taxa cannot be looked up (no session): why, for the cards ("Specify
 * unreachable" for a transient failure) and the header (the message). */
void report_taxa_unknown(report *r, const cs_error *why);

/* Writes the HTML to out (CS_E_IO when out fails). */
int report_write(const report *r, FILE *out, cs_error *err);

void report_free(report *r);

#endif
