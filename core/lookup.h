/* copystand — the records that identifiers stand for: one batched lookup
 * of a match target's field, kept for deciding file by file. */
#ifndef COPYSTAND_LOOKUP_H
#define COPYSTAND_LOOKUP_H

#include <stddef.h>

#include "error.h"
#include "specify.h"
#include "targets.h"

typedef struct lookup lookup;

typedef struct lookup_record {
	const char *value;               /* the field as stored */
	long long id;
	int nattachments;
	const char *const *attachment_names; /* their original file names */
	const long long *attachment_ids;     /* their join rows' ids */
} lookup_record;

/* Looks up values (duplicates and NULLs allowed) in as few requests as
 * the server allows. */
int lookup_run(specify_session *s, const struct match_target *t,
	       const char *const *values, size_t n, lookup **out, cs_error *err);

/* The records whose value is identifier, ignoring case as the database
 * does: the count, and up to max of them in hits. */
int lookup_find(const lookup *l, const char *identifier,
		const lookup_record **hits, int max);

void lookup_free(lookup *l);

#endif
