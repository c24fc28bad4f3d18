/* copystand — what a file can be matched to.
 *
 * Specify's batch importer can match a file name to one field of one table
 * (its "staticPathKey", AttachmentsBulkImport/importPaths.ts).  The same
 * paths are kept here as data, so adding one is a table row, not code.
 */
#ifndef COPYSTAND_TARGETS_H
#define COPYSTAND_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

struct match_target {
	const char *name;            /* ours, for --match: "catalog-number" */
	const char *path_key;        /* Specify's staticPathKey */
	const char *table;           /* base table, lower case: "collectionobject" */
	int table_id;                /* 1 */
	const char *field;           /* as the REST API spells it: "catalognumber" */
	const char *field_camel;     /* as the query builder does: "catalogNumber" */
	const char *caption;         /* default English schema caption */
	unsigned max_length;         /* column width, in characters */
	const char *join_table;      /* "collectionobjectattachment" */
	int join_table_id;           /* 111 */
	const char *attachments_key; /* the base record's array of join rows */
	bool catalog_format;         /* the collection's catalog-number format applies */
};

/* By our name or by Specify's staticPathKey, ignoring case; NULL if none. */
const struct match_target *match_target_find(const char *name);

/* All targets, in Specify's order (for listings and help). */
size_t match_target_count(void);
const struct match_target *match_target_at(size_t index);

#endif
