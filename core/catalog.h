/* copystand — catalog numbers and the file names that carry them.
 *
 * Turns what people type, scan or name files into identifiers exactly as
 * Specify stores them (CatalogNumberNumeric "123" is stored "000000123"),
 * and builds the file names copystand writes.
 *
 * A catalog_format is one entry of Specify's UIFormatters resource: either
 * one of the two catalog-number formatters Specify implements in code
 * (CatalogNumberNumeric, CatalogNumberString), a plain field with no
 * formatter, or a sequence of parts built with catalog_format_add_part()
 * (uiformat.h reads them from the XML).  Identifiers are UTF-8 text; input
 * with control characters or invalid UTF-8 is refused everywhere.
 */
#ifndef COPYSTAND_CATALOG_H
#define COPYSTAND_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct catalog_format;

/* The part types of a UIFormatters <field type="...">. */
enum catalog_part_type {
	CATALOG_PART_CONSTANT,     /* exactly its value */
	CATALOG_PART_SEPARATOR,    /* exactly its value, e.g. "-" */
	CATALOG_PART_ALPHA,        /* size letters a-z A-Z */
	CATALOG_PART_NUMERIC,      /* size digits */
	CATALOG_PART_YEAR,         /* size digits (4 unless said otherwise) */
	CATALOG_PART_ALPHANUMERIC, /* size letters or digits */
	CATALOG_PART_ANYCHAR,      /* size characters of any kind */
	CATALOG_PART_REGEX,        /* its value is a regular expression */
};

/* The formats Specify knows without a UIFormatters entry:
 * "CatalogNumberNumeric" (0-9 digits, stored zero-padded to 9),
 * "CatalogNumberString" (1-32 characters, stored as typed) and
 * "CatalogNumber" (year-number, 2024-000123).  CS_E_NOT_FOUND otherwise. */
int catalog_format_new_builtin(struct catalog_format **out, const char *name,
			       cs_error *err);

/* A field without a formatter (altCatalogNumber, Taxon fullName, ...):
 * any text of 1 to max_length characters; 0 means no limit. */
int catalog_format_new_plain(struct catalog_format **out, const char *name,
			     unsigned max_length, cs_error *err);

/* The same as the built-in numeric or string catalog-number format, under
 * another name (a UIFormatters entry whose <external> is Specify's
 * CatalogNumberUIFieldFormatter or CatalogNumberStringUIFieldFormatter). */
int catalog_format_new_numeric(struct catalog_format **out, const char *name,
			       cs_error *err);
int catalog_format_new_string(struct catalog_format **out, const char *name,
			      cs_error *err);

/* An empty format to be filled with parts, in order.  size is ignored for
 * constant, separator and regex parts; value is the constant text or the
 * regular expression (JavaScript/Python syntax; "/.../", "^" and "$"
 * around it are dropped as Specify does) and ignored for the others. */
int catalog_format_new(struct catalog_format **out, const char *name,
		       cs_error *err);
int catalog_format_add_part(struct catalog_format *fmt,
			    enum catalog_part_type type, unsigned size,
			    const char *value, cs_error *err);

void catalog_format_free(struct catalog_format *fmt);

const char *catalog_format_name(const struct catalog_format *fmt);

/* What the format expects, for messages: "#########", "YYYY-######",
 * "text of up to 32 characters", or the regular expression. */
const char *catalog_format_pattern(const struct catalog_format *fmt);

/* Text (typed, looked up, read from a mapping file or returned by a Specify
 * query) to the identifier as stored: "123" -> "000000123".  Surrounding
 * white space is ignored.  Autonumber placeholders ("#########", "YEAR")
 * are refused: they are not numbers. */
int catalog_format_parse(const struct catalog_format *fmt, const char *text,
			 char **identifier, cs_error *err);

/* A stored identifier as Specify shows it: "000000123" -> "123". */
int catalog_format_display(const struct catalog_format *fmt,
			   const char *identifier, char **display,
			   cs_error *err);

/* 0 if text is valid UTF-8 without control characters; otherwise
 * CS_E_INVALID with a message that calls it what ("the file name"). */
int catalog_text_check(const char *text, const char *what, cs_error *err);

/* The format to use for catalog numbers, from the body of
 * GET /context/domain.json: the collection object type's format if it has
 * one, else the collection's.  object_type is that type's resource URI
 * ("/api/specify/collectionobjecttype/1/"); NULL means the collection's
 * default type. */
int catalog_format_name_from_domain(const char *domain_json,
				    const char *object_type, char **name,
				    cs_error *err);

/* --- File names -------------------------------------------------------
 *
 * What a file name can stand for.  Formats of fixed shape (numeric, year-
 * number, ...) give one identifier, as Specify's importer does; a suffix
 * after the full-width identifier ("_2", " (2)", "-dorsal", the "a" of
 * "V000001a") is ignored, a short number is padded only when it is the
 * whole name.  Variable formats (regular expressions, CatalogNumberString,
 * plain fields) give every prefix that ends where a suffix could start and
 * fits the format, longest first ("ESCR-0004_detail", "ESCR-0004", "ESCR");
 * the first that exists in Specify is the match, so look them all up in one
 * batch.  Directories in filename are ignored. */
struct catalog_candidates;

/* CS_E_INVALID, saying why, if the name gives no identifier. */
int catalog_resolve_filename(const struct catalog_format *fmt,
			     const char *filename,
			     struct catalog_candidates **out, cs_error *err);
size_t catalog_candidates_count(const struct catalog_candidates *c);
/* Longest first; index < count. */
const char *catalog_candidates_identifier(const struct catalog_candidates *c,
					  size_t index);
/* What follows the identifier in the name without its extension: "" when
 * the whole name is the identifier, "_2", " (2)", "a", ... */
const char *catalog_candidates_suffix(const struct catalog_candidates *c,
				      size_t index);
void catalog_candidates_free(struct catalog_candidates *c);

/* The file name copystand gives the index-th image (1, 2, ...) of a record:
 * "000000123.jpg", "000000123_2.jpg".  extension is without the dot and may
 * be NULL or "".  Bytes a file name must not hold (path separators, control
 * characters, a leading dot) become '_' and *changed (if not NULL) says so:
 * such a name no longer resolves to the identifier, so record the mapping.
 * CS_E_INVALID if the name would exceed 255 bytes. */
int catalog_name_build(const char *identifier, unsigned index,
		       const char *extension, char **name, bool *changed,
		       cs_error *err);

/* --- Scanners --------------------------------------------------------- */

struct catalog_scan_options {
	const char *prefix; /* configured on the scanner, stripped if present */
	const char *suffix;
};

/* One scan (or typed line) to an identifier: drops CR/LF and white space
 * around it, an AIM symbology identifier ("]C0", "]d2", ...) and the
 * configured prefix and suffix, then parses it with fmt.  opts may be NULL.
 * A scan that does not fit says why, for the technician. */
int catalog_scan_parse(const struct catalog_format *fmt, const char *raw,
		       const struct catalog_scan_options *opts,
		       char **identifier, cs_error *err);

#endif
