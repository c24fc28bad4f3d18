/* Fuzz target: file names (and the same bytes as scans) against the
 * formats copystand meets.  The first byte picks the format ('0'-'8' in
 * the seeds); the rest is the name.  Beyond "no crash", it checks that
 * every candidate is a fixed point of the format and that the name we
 * build for it resolves back to it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_FORMATS 9

static struct catalog_format *make(int i)
{
	static const struct { enum catalog_part_type type; unsigned size; const char *value; }
	accession[] = {
		{ CATALOG_PART_YEAR, 4, NULL }, { CATALOG_PART_SEPARATOR, 1, "-" },
		{ CATALOG_PART_ALPHANUMERIC, 2, NULL }, { CATALOG_PART_SEPARATOR, 1, "-" },
		{ CATALOG_PART_NUMERIC, 3, NULL },
	};
	struct catalog_format *fmt = NULL;

	switch (i) {
	case 0: catalog_format_new_builtin(&fmt, "CatalogNumberNumeric", NULL); break;
	case 1: catalog_format_new_builtin(&fmt, "CatalogNumberString", NULL); break;
	case 2: catalog_format_new_builtin(&fmt, "CatalogNumber", NULL); break;
	case 3: catalog_format_new_plain(&fmt, "altCatalogNumber", 64, NULL); break;
	case 4:
		catalog_format_new(&fmt, "Regex", NULL);
		catalog_format_add_part(fmt, CATALOG_PART_REGEX, 0,
					"^\\d{1,6}(?:[a-zA-Z]{1,2})?$", NULL);
		break;
	case 5:
		catalog_format_new(&fmt, "Mixed", NULL);
		catalog_format_add_part(fmt, CATALOG_PART_REGEX, 0, "(CANB|CBG|CNS)", NULL);
		catalog_format_add_part(fmt, CATALOG_PART_SEPARATOR, 1, "-", NULL);
		catalog_format_add_part(fmt, CATALOG_PART_NUMERIC, 4, NULL, NULL);
		break;
	case 6:
		catalog_format_new(&fmt, "Accession", NULL);
		for (size_t k = 0; k < sizeof accession / sizeof accession[0]; k++)
			catalog_format_add_part(fmt, accession[k].type, accession[k].size,
						accession[k].value, NULL);
		break;
	case 7:
		catalog_format_new(&fmt, "VNumber", NULL);
		catalog_format_add_part(fmt, CATALOG_PART_CONSTANT, 1, "V", NULL);
		catalog_format_add_part(fmt, CATALOG_PART_NUMERIC, 6, NULL, NULL);
		break;
	default:
		catalog_format_new(&fmt, "AnyTail", NULL);
		catalog_format_add_part(fmt, CATALOG_PART_ALPHA, 2, NULL, NULL);
		catalog_format_add_part(fmt, CATALOG_PART_ANYCHAR, 3, NULL, NULL);
		break;
	}
	return fmt;
}

static void fail(const char *what, const char *name, const char *id)
{
	fprintf(stderr, "property broken: %s (name '%s', identifier '%s')\n", what, name, id);
	abort();
}

static bool has(const struct catalog_candidates *c, const char *id, const char *suffix)
{
	for (size_t i = 0; i < catalog_candidates_count(c); i++)
		if (strcmp(catalog_candidates_identifier(c, i), id) == 0 &&
		    strcmp(catalog_candidates_suffix(c, i), suffix) == 0)
			return true;
	return false;
}

/* The second image's name for id resolves to id with suffix "_2". */
static void check_name(const struct catalog_format *fmt, const char *id)
{
	struct catalog_candidates *c;
	char *name = NULL;
	bool changed;

	if (catalog_name_build(id, 2, "jpg", &name, &changed, NULL) < 0)
		return;
	if (strlen(name) > 255 || strchr(name, '/') || name[0] == '.')
		fail("bad name built", name, id);
	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		if (*s < 0x20 || *s == 0x7f)
			fail("control character in a name", name, id);
	if (!changed) {
		if (catalog_resolve_filename(fmt, name, &c, NULL) < 0)
			fail("our name does not resolve", name, id);
		if (!has(c, id, "_2"))
			fail("our name resolves elsewhere", name, id);
		catalog_candidates_free(c);
	}
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct catalog_format *formats[N_FORMATS];
	struct catalog_candidates *c;
	char *name, *id = NULL;
	int which;

	if (size < 1)
		return 0;
	which = (uint8_t)(data[0] - '0') % N_FORMATS;
	if (!formats[which])
		formats[which] = make(which);
	/* Not strndup: the input has no NUL, and strict ASan checks say so. */
	name = malloc(size);
	if (!name)
		return 0;
	memcpy(name, data + 1, size - 1);
	name[size - 1] = '\0';
	if (catalog_resolve_filename(formats[which], name, &c, NULL) == 0) {
		size_t n = catalog_candidates_count(c);
		if (n == 0 || n > 16)
			fail("candidate count", name, "");
		for (size_t i = 0; i < n; i++) {
			const char *cand = catalog_candidates_identifier(c, i);
			if (catalog_format_parse(formats[which], cand, &id, NULL) < 0 ||
			    strcmp(id, cand) != 0)
				fail("candidate is not in stored form", name, cand);
			free(id);
			check_name(formats[which], cand);
		}
		catalog_candidates_free(c);
	}
	if (catalog_scan_parse(formats[which], name, NULL, &id, NULL) == 0) {
		char *again = NULL;
		if (catalog_format_parse(formats[which], id, &again, NULL) < 0 ||
		    strcmp(again, id) != 0)
			fail("scan is not in stored form", name, id);
		free(again);
		free(id);
	}
	free(name);
	return 0;
}
