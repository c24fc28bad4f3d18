/* copystand — mapping files: which file belongs to which record.
 *
 * A CSV, TSV or pipe-separated file with a header row, as Specify's batch
 * importer takes it (matchingMode "mappingFile"): one column names the
 * file ("File Name", "filename", "Attachment Name", "attachment", "file"),
 * another holds the identifier (a header equal, ignoring case, to the
 * field's name or caption: "catalogNumber", "Catalog Number", ...).  The
 * delimiter is the one of , TAB | that the header row uses most.  Quoted
 * fields may hold delimiters, doubled quotes and line breaks; a UTF-8 BOM
 * and CRLF line ends are fine.  The file is read row by row, so its size
 * does not matter.
 *
 * Unlike Specify, identifiers go through the field's format when one is
 * given, so "123" in a CatalogNumberNumeric collection finds 000000123.
 */
#ifndef COPYSTAND_MAPPING_H
#define COPYSTAND_MAPPING_H

#include <stdio.h>

#include "catalog.h"
#include "error.h"
#include "targets.h"

struct mapping_reader;

struct mapping_row {
	const char *file_name;    /* NULL at the end of the file */
	const char *identifier;   /* as stored in Specify */
	unsigned long line;       /* where the row starts */
	unsigned long first_line; /* file_name was listed before, there; or 0 */
};

/* Reads the header row of in (which the caller keeps and closes) and finds
 * the columns for target (NULL: catalog-number).  source names the file in
 * messages.  fmt (may be NULL: identifiers as written) must outlive the
 * reader.  CS_E_INVALID says which column is missing. */
int mapping_reader_new(struct mapping_reader **out, FILE *in,
		       const char *source, const struct match_target *target,
		       const struct catalog_format *fmt, cs_error *err);

/* The next row.  0 with row->file_name NULL at the end.  CS_E_INVALID is
 * about that row only: the message has its line, row->line is set, and so
 * is file_name if the row names a usable one (for a file listed twice,
 * identifier and first_line too); carry on with the next call.  Any other
 * error ends the reading.  The strings in row stay valid until the next
 * call. */
int mapping_reader_next(struct mapping_reader *r, struct mapping_row *row,
			cs_error *err);

/* The delimiter found: ',', '\t' or '|'. */
char mapping_reader_delimiter(const struct mapping_reader *r);

void mapping_reader_free(struct mapping_reader *r);

/* A whole mapping file, looked up by file name. */
struct mapping_table;

/* Called for each row as it is read; refused is NULL for a good row, else
 * why it was refused (row->file_name may then be NULL). */
typedef void (*mapping_row_fn)(void *ud, const struct mapping_row *row,
			       const cs_error *refused);

/* Reads every row of in (as mapping_reader_new) into a table; fn may be
 * NULL.  Refused rows are kept when they name a file, so that looking the
 * file up gives the reason.  Errors other than a bad row end the reading. */
int mapping_table_load(struct mapping_table **out, FILE *in, const char *source,
		       const struct match_target *target,
		       const struct catalog_format *fmt, mapping_row_fn fn,
		       void *ud, cs_error *err);

/* The identifier for file (its directories ignored): 0 and *identifier;
 * CS_E_INVALID and *problem when its row was refused (a refusal wins over
 * a good row of the same file); CS_E_NOT_FOUND when it is not listed. */
int mapping_table_find(const struct mapping_table *t, const char *file,
		       const char **identifier, const char **problem);

void mapping_table_free(struct mapping_table *t);

#endif
