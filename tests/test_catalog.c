/* Catalog numbers: formats, file names, scans and the names we write. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "tap.h"

static struct catalog_format *builtin(const char *name)
{
	struct catalog_format *fmt = NULL;
	cs_error err;

	if (catalog_format_new_builtin(&fmt, name, &err) < 0) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	return fmt;
}

struct part_def {
	enum catalog_part_type type;
	unsigned size;
	const char *value;
};

static struct catalog_format *custom(const char *name, const struct part_def *parts)
{
	struct catalog_format *fmt = NULL;
	cs_error err;
	int rc = catalog_format_new(&fmt, name, &err);

	for (; rc == 0 && (parts->value || parts->size); parts++)
		rc = catalog_format_add_part(fmt, parts->type, parts->size,
					     parts->value, &err);
	if (rc < 0) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	return fmt;
}

/* Candidates joined with '|', or "error: <message>". */
static char *resolve(const struct catalog_format *fmt, const char *filename)
{
	struct catalog_candidates *c;
	cs_error err;
	char buf[1024] = "";

	if (catalog_resolve_filename(fmt, filename, &c, &err) < 0) {
		snprintf(buf, sizeof buf, "error: %s", err.msg);
		return strdup(buf);
	}
	for (size_t i = 0; i < catalog_candidates_count(c); i++) {
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof buf - len, "%s%s", i ? "|" : "",
			 catalog_candidates_identifier(c, i));
	}
	catalog_candidates_free(c);
	return strdup(buf);
}

/* s with control and non-ASCII bytes escaped, for a one-line test
 * description that stays valid text whatever the input. */
static const char *printable(const char *s)
{
	static char buf[256];
	size_t o = 0;

	for (; *s && o + 5 < sizeof buf; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			o += snprintf(buf + o, sizeof buf - o, "\\x%02X", (unsigned char)*s);
		else
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

struct name_case {
	const char *file;
	const char *want; /* candidates joined with '|'; NULL: no identifier */
};

static void check_names(const char *what, const struct catalog_format *fmt,
			const struct name_case *cases)
{
	for (; cases->file; cases++) {
		char *got = resolve(fmt, cases->file);
		bool failed = strncmp(got, "error: ", 7) == 0;

		if (cases->want)
			tap_is_str(got, cases->want, what);
		else if (!tap_ok(failed, "%s: %s gives no identifier", what,
				 printable(cases->file)))
			tap_diag("got %s", got);
		free(got);
	}
}

/* specify-api.md §2.4, from Specify's AttachmentsBulkImport tests. */
static void test_specify_examples(void)
{
	static const struct name_case cnn[] = {
		{ "000000001.jpg", "000000001" },
		{ "00002.jpg", "000000002" },
		{ "00001(1).jpg", NULL },
		{ "000000003(2).jpg", "000000003" },
		{ "000012345_1.jpg", "000012345" },
		{ "someRandomValue.jpg", NULL },
		{ "\t\t\t0000 \n\n.jpg", "000000000" },
		{ "      .jpg", NULL },
		{ "\n\n\n\n\t\t", NULL },
		{ "\t\t     \n\n.jpg", NULL },
		/* Specify gives 000000000 and calls it a bug: we refuse. */
		{ "0000000000002.jpg", NULL },
		{ NULL, NULL },
	};
	static const struct name_case numeric3[] = {
		{ "000.jpg", "000" },
		{ "001.jpg", "001" },
		{ "23.jpg", "023" },
		{ "DEF001.jpg", NULL },
		{ "000(1).jpg", "000" },
		{ "23(1).jpg", NULL },
		{ "\t\t\t02 \n\n.jpg", "002" },
		{ "      .jpg", NULL },
		{ NULL, NULL },
	};
	static const struct name_case regex[] = {
		{ "45265.jpg", "45265" },
		{ "45622AB.jpg", "45622AB" },
		{ "45622AB", "45622AB" },
		{ "45622787ABCDEF.jpg", NULL },
		{ "      .jpg", NULL },
		{ NULL, NULL },
	};
	struct catalog_format *fmt = builtin("CatalogNumberNumeric");

	check_names("CNN file name", fmt, cnn);
	catalog_format_free(fmt);
	fmt = custom("testNumeric", (struct part_def[]){
		{ CATALOG_PART_NUMERIC, 3, NULL }, { 0 } });
	check_names("numeric(3) file name", fmt, numeric3);
	catalog_format_free(fmt);
	fmt = custom("testRegex", (struct part_def[]){
		{ CATALOG_PART_REGEX, 3, "^\\d{1,6}(?:[a-zA-Z]{1,2})?$" }, { 0 } });
	check_names("regex file name", fmt, regex);
	catalog_format_free(fmt);
}

/* Specify issues #8097, #7476, #8407 and our suffix conventions. */
static void test_fixed_bugs(void)
{
	static const struct name_case regex_suffix[] = { /* #8097 */
		{ "45265_2.jpg", "45265" },
		{ "45265 (2).jpg", "45265" },
		{ "45265-dorsal.jpg", "45265" },
		{ "45622AB_3.tif", "45622AB" },
		{ "45622787ABCDEF_2.jpg", NULL },
		{ NULL, NULL },
	};
	static const struct name_case grouped_regex[] = {
		{ "1234-A.jpg", "1234-A|1234" },
		{ "1234-A_2.jpg", "1234-A|1234" },
		{ "1234_2.jpg", "1234" },
		{ "12345.jpg", NULL },
		{ NULL, NULL },
	};
	static const struct name_case plain[] = { /* #7476 */
		{ "ESCR-0004_detail.jpg", "ESCR-0004_detail|ESCR-0004|ESCR" },
		{ "ESCR-0004.jpg", "ESCR-0004|ESCR" },
		{ "ESCR-0004 (2).jpg", "ESCR-0004 (2)|ESCR-0004|ESCR" },
		{ "photos/ESCR-0004_.jpg", "ESCR-0004_|ESCR-0004|ESCR" },
		{ NULL, NULL },
	};
	static const struct name_case string[] = { /* #8407 */
		{ "ABC123.jpg", "ABC123" },
		{ "V000001a.jpg", "V000001a|V000001" },
		{ "UMMZI-90175_1.jpg", "UMMZI-90175_1|UMMZI-90175|UMMZI" },
		{ "abcdefghijklmnopqrstuvwxyz0123456789.jpg", NULL },
		{ "abcdefghijklmnopqrstuvwxyz012345_2.jpg",
		  "abcdefghijklmnopqrstuvwxyz012345" },
		{ "ÅÄÖ-1.jpg", "ÅÄÖ-1|ÅÄÖ" },
		{ NULL, NULL },
	};
	static const struct name_case cnn_suffix[] = {
		{ "000000123_2.jpg", "000000123" },
		{ "000000123 (2).jpg", "000000123" },
		{ "000000123-dorsal.JPG", "000000123" },
		{ "000000123a.jpg", "000000123" },
		{ "000000123.CR3", "000000123" },
		{ "000000123", "000000123" },
		{ "/media/card/DCIM/000000123_2.jpg", "000000123" },
		{ "0000001234.jpg", NULL },
		{ "12_2.jpg", NULL },
		{ "12.jpg", "000000012" },
		{ ".jpg", NULL },
		{ "00000\x01" "0123.jpg", NULL },
		{ "000000123\xff.jpg", NULL },
		{ NULL, NULL },
	};
	static const struct name_case year_number[] = {
		{ "2024-000123.jpg", "2024-000123" },
		{ "2024-000123_2.jpg", "2024-000123" },
		{ "2024-000123 (2).jpg", "2024-000123" },
		{ "2024-000123b.jpg", "2024-000123" },
		{ "2024-0001234.jpg", NULL },
		{ "2024-123.jpg", NULL },
		{ "YEAR-######.jpg", NULL },
		{ NULL, NULL },
	};
	static const struct name_case prefixed[] = {
		{ "V000001a.jpg", "V000001" },
		{ "V000001.jpg", "V000001" },
		{ "V000001-lateral.jpg", "V000001" },
		{ "V0000012.jpg", NULL },
		{ "v000001.jpg", NULL },
		{ NULL, NULL },
	};
	struct catalog_format *fmt;

	fmt = custom("testRegex", (struct part_def[]){
		{ CATALOG_PART_REGEX, 0, "/^\\d{1,6}(?:[a-zA-Z]{1,2})?$/" }, { 0 } });
	check_names("regex with suffix (#8097)", fmt, regex_suffix);
	catalog_format_free(fmt);
	fmt = custom("CatalogNumberNumericRegex", (struct part_def[]){
		{ CATALOG_PART_REGEX, 0, "[0-9]{4}(-[A-Z])?" }, { 0 } });
	check_names("regex with a group", fmt, grouped_regex);
	catalog_format_free(fmt);
	catalog_format_new_plain(&fmt, "altCatalogNumber", 64, NULL);
	check_names("plain field starts-with (#7476)", fmt, plain);
	catalog_format_free(fmt);
	fmt = builtin("CatalogNumberString");
	check_names("CatalogNumberString (#8407)", fmt, string);
	catalog_format_free(fmt);
	fmt = builtin("CatalogNumberNumeric");
	check_names("CNN suffixes", fmt, cnn_suffix);
	catalog_format_free(fmt);
	fmt = builtin("CatalogNumber");
	check_names("year-number", fmt, year_number);
	catalog_format_free(fmt);
	fmt = custom("VNumber", (struct part_def[]){
		{ CATALOG_PART_CONSTANT, 1, "V" },
		{ CATALOG_PART_NUMERIC, 6, NULL }, { 0 } });
	check_names("constant + number", fmt, prefixed);
	catalog_format_free(fmt);
}

static void test_suffix_reported(void)
{
	struct catalog_format *fmt = builtin("CatalogNumberNumeric");
	struct catalog_candidates *c;

	catalog_resolve_filename(fmt, "000000123 (2).jpg", &c, NULL);
	tap_is_str(catalog_candidates_suffix(c, 0), " (2)", "suffix kept for reports");
	tap_ok(catalog_candidates_identifier(c, 1) == NULL, "index past the end is NULL");
	catalog_candidates_free(c);
	catalog_resolve_filename(fmt, "000000123.jpg", &c, NULL);
	tap_is_str(catalog_candidates_suffix(c, 0), "", "no suffix");
	catalog_candidates_free(c);
	catalog_format_free(fmt);
}

static void test_messages(void)
{
	struct catalog_format *cnn = builtin("CatalogNumberNumeric");
	struct catalog_format *yn = builtin("CatalogNumber");
	struct catalog_candidates *c = NULL;
	cs_error err;
	char *id = NULL;

	catalog_resolve_filename(cnn, "00001(1).jpg", &c, &err);
	tap_ok(strstr(err.msg, "write it as 000000001(1)") != NULL,
	       "a short number with a suffix says how to name it: %s", err.msg);
	catalog_format_parse(yn, "2024-123", &id, &err);
	tap_ok(strstr(err.msg, "did you mean '2024-000123'") != NULL,
	       "a short number part gets a suggestion: %s", err.msg);
	catalog_format_parse(cnn, "#########", &id, &err);
	tap_ok(strstr(err.msg, "placeholder") || strstr(err.msg, "fills in"),
	       "the autonumber placeholder is explained: %s", err.msg);
	catalog_format_parse(cnn, "1234567890", &id, &err);
	tap_ok(strstr(err.msg, "10 digits") != NULL, "too many digits: %s", err.msg);
	tap_is_int(err.code, CS_E_INVALID, "code is CS_E_INVALID");
	tap_ok(id == NULL && c == NULL, "nothing returned on failure");
	catalog_format_free(cnn);
	catalog_format_free(yn);
}

struct parse_case {
	const char *text;
	const char *want; /* NULL: refused */
};

static void check_parse(const char *what, const struct catalog_format *fmt,
			const struct parse_case *cases)
{
	for (; cases->text; cases++) {
		char *id = NULL;
		cs_error err = { 0 };
		int rc = catalog_format_parse(fmt, cases->text, &id, &err);

		if (cases->want)
			tap_is_str(id, cases->want, what);
		else if (!tap_ok(rc == CS_E_INVALID && err.msg[0],
				 "%s: refuses '%s'", what, printable(cases->text)))
			tap_diag("got %s", id);
		free(id);
	}
}

static void test_parse(void)
{
	static const struct parse_case cnn[] = {
		{ "123", "000000123" }, { " 000000123 ", "000000123" },
		{ "0", "000000000" }, { "999999999", "999999999" },
		{ "", NULL }, { "   ", NULL }, { "12a", NULL }, { "-12", NULL },
		{ "1234567890", NULL }, { "#########", NULL }, { "１２３", NULL },
		{ NULL, NULL },
	};
	static const struct parse_case string[] = {
		{ "ABC 123", "ABC 123" }, { "  x ", "x" },
		{ "12345678901234567890123456789012", "12345678901234567890123456789012" },
		{ "123456789012345678901234567890123", NULL },
		{ "ÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅ", "ÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅÅ" },
		{ "tab\there", NULL }, { "\xc3", NULL }, { "\xc0\xaf", NULL },
		{ "\xed\xa0\x80", NULL }, { "a\xc2\x85" "b", NULL },
		{ NULL, NULL },
	};
	static const struct parse_case year_number[] = {
		{ "2024-000123", "2024-000123" }, { "2024-123", NULL },
		{ "24-000123", NULL }, { "2024_000123", NULL }, { "2024-000123x", NULL },
		{ "YEAR-######", NULL },
		{ NULL, NULL },
	};
	static const struct parse_case accession[] = {
		{ "2024-AB-001", "2024-AB-001" }, { "2024-a1-999", "2024-a1-999" },
		{ "2024-AB-1", NULL }, { "2024-A!-001", NULL },
		{ NULL, NULL },
	};
	static const struct parse_case mixed[] = {
		{ "CANB-2024-001", "CANB-2024-001" }, { "CNS-2026-503", "CNS-2026-503" },
		{ "XYZ-2024-001", NULL }, { "CANB-2024-01", NULL },
		{ NULL, NULL },
	};
	struct catalog_format *fmt = builtin("CatalogNumberNumeric");

	check_parse("CNN parse", fmt, cnn);
	catalog_format_free(fmt);
	fmt = builtin("CatalogNumberString");
	check_parse("string parse", fmt, string);
	catalog_format_free(fmt);
	fmt = builtin("CatalogNumber");
	check_parse("year-number parse", fmt, year_number);
	catalog_format_free(fmt);
	fmt = custom("AccessionNumber", (struct part_def[]){
		{ CATALOG_PART_YEAR, 4, NULL }, { CATALOG_PART_SEPARATOR, 1, "-" },
		{ CATALOG_PART_ALPHANUMERIC, 2, NULL }, { CATALOG_PART_SEPARATOR, 1, "-" },
		{ CATALOG_PART_NUMERIC, 3, NULL }, { 0 } });
	check_parse("accession parse", fmt, accession);
	tap_is_str(catalog_format_pattern(fmt), "YYYY-XX-###", "accession pattern");
	catalog_format_free(fmt);
	fmt = custom("Grouped", (struct part_def[]){
		{ CATALOG_PART_REGEX, 0, "(CANB|CBG|CNS|JCT|QRS)" },
		{ CATALOG_PART_SEPARATOR, 1, "-" },
		{ CATALOG_PART_REGEX, 0, "[0-9]{4}-[0-9]{3}" }, { 0 } });
	check_parse("regex parts mixed with others", fmt, mixed);
	catalog_format_free(fmt);
}

static void test_display(void)
{
	static const struct { const char *fmt, *id, *want; } cases[] = {
		{ "CatalogNumberNumeric", "000000123", "123" },
		{ "CatalogNumberNumeric", "000000000", "0" },
		{ "CatalogNumberNumeric", "100000000", "100000000" },
		{ "CatalogNumber", "2024-000123", "2024-000123" },
		{ "CatalogNumberString", "00012", "00012" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct catalog_format *fmt = builtin(cases[i].fmt);
		char *shown = NULL;
		catalog_format_display(fmt, cases[i].id, &shown, NULL);
		tap_is_str(shown, cases[i].want, "display form");
		free(shown);
		catalog_format_free(fmt);
	}
}

static void test_bad_formats(void)
{
	struct catalog_format *fmt = NULL;
	cs_error err;

	tap_is_int(catalog_format_new_builtin(&fmt, "NoSuch", &err), CS_E_NOT_FOUND,
		   "unknown built-in");
	tap_ok(fmt == NULL, "no format on failure");
	catalog_format_new(&fmt, "Broken", NULL);
	tap_is_int(catalog_format_add_part(fmt, CATALOG_PART_REGEX, 0, "([0-9]", &err),
		   CS_E_CONFIG, "a regex that does not compile");
	tap_ok(strstr(err.msg, "Broken") != NULL, "names the format: %s", err.msg);
	catalog_format_free(fmt);
	catalog_format_new(&fmt, "Empty", NULL);
	tap_is_int(catalog_format_add_part(fmt, CATALOG_PART_CONSTANT, 1, "", &err),
		   CS_E_CONFIG, "a constant without a value");
	tap_is_int(catalog_format_parse(fmt, "x", &(char *){ NULL }, &err), CS_E_CONFIG,
		   "a format with no parts cannot check anything");
	catalog_format_free(fmt);
	fmt = builtin("CatalogNumberNumeric");
	tap_is_int(catalog_format_add_part(fmt, CATALOG_PART_NUMERIC, 3, NULL, &err),
		   CS_E_INVALID, "built-in formats take no parts");
	catalog_format_free(fmt);
	catalog_format_new(&fmt, "Slow", NULL);
	catalog_format_add_part(fmt, CATALOG_PART_REGEX, 0, "(a+)+b", NULL);
	tap_is_int(catalog_format_parse(fmt, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac",
					&(char *){ NULL }, &err),
		   CS_E_INVALID, "a catastrophic regex is cut short, not hung");
	catalog_format_free(fmt);
}

static void test_scan(void)
{
	static const struct {
		const char *raw, *prefix, *suffix, *want;
	} cases[] = {
		{ "123\r\n", NULL, NULL, "000000123" },
		{ "  000000123\n", NULL, NULL, "000000123" },
		{ "]C0123", NULL, NULL, "000000123" },
		{ "]d2000000456\r", NULL, NULL, "000000456" },
		{ "]Q1789", NULL, NULL, "000000789" },
		{ "MUS:123#", "MUS:", "#", "000000123" },
		{ "]C0MUS:123", "MUS:", NULL, "000000123" },
		{ "MUS:]C0123", "MUS:", NULL, "000000123" },
		{ "123", "MUS:", "#", "000000123" },
		{ "12\x1d" "34", NULL, NULL, NULL },
		{ "\x1b[A", NULL, NULL, NULL },
		{ "]C0", NULL, NULL, NULL },
		{ "\r\n", NULL, NULL, NULL },
		{ "V123", NULL, NULL, NULL },
		{ "1234567890", NULL, NULL, NULL },
	};
	struct catalog_format *fmt = builtin("CatalogNumberNumeric");

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct catalog_scan_options opts = { cases[i].prefix, cases[i].suffix };
		char *id = NULL;
		cs_error err = { 0 };
		int rc = catalog_scan_parse(fmt, cases[i].raw, &opts, &id, &err);

		if (cases[i].want)
			tap_is_str(id, cases[i].want, "scan");
		else
			tap_ok(rc == CS_E_INVALID && strncmp(err.msg, "scan not used: ", 15) == 0,
			       "scan refused with a reason: %s", printable(err.msg));
		free(id);
	}
	catalog_format_free(fmt);
}

static void test_name_build(void)
{
	static const struct {
		const char *id;
		unsigned index;
		const char *ext, *want;
		bool changed;
	} cases[] = {
		{ "000000123", 1, "jpg", "000000123.jpg", false },
		{ "000000123", 2, "jpg", "000000123_2.jpg", false },
		{ "000000123", 10, "CR3", "000000123_10.CR3", false },
		{ "2024-000123", 3, "", "2024-000123_3", false },
		{ "2024-000123", 1, NULL, "2024-000123", false },
		{ "A/B 12", 1, "jpg", "A_B 12.jpg", true },
		{ "..\\x", 1, "jpg", "_._x.jpg", true },
		{ "tab\tnl\n", 1, "tif", "tab_nl_.tif", true },
		{ "ÅÄÖ-1", 2, "png", "ÅÄÖ-1_2.png", false },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *name = NULL;
		bool changed = !cases[i].changed;
		catalog_name_build(cases[i].id, cases[i].index, cases[i].ext, &name,
				   &changed, NULL);
		tap_is_str(name, cases[i].want, "name built");
		tap_is_int(changed, cases[i].changed, "changed flag");
		free(name);
	}

	char long_id[300], *name = NULL;
	memset(long_id, '7', 250);
	long_id[250] = '\0';
	tap_is_int(catalog_name_build(long_id, 1, "jpg", &name, NULL, NULL), 0,
		   "250 bytes + .jpg fits 255");
	tap_is_int((long long)strlen(name), 254, "length");
	free(name);
	tap_is_int(catalog_name_build(long_id, 2, "jpeg", &name, NULL, NULL),
		   CS_E_INVALID, "over 255 bytes refused");
	tap_is_int(catalog_name_build("", 1, "jpg", &name, NULL, NULL),
		   CS_E_INVALID, "empty identifier refused");
	tap_is_int(catalog_name_build("1", 0, "jpg", &name, NULL, NULL),
		   CS_E_INVALID, "image 0 refused");
	tap_is_int(catalog_name_build("1", 1, "j/g", &name, NULL, NULL),
		   CS_E_INVALID, "odd extension refused");
	tap_ok(name == NULL, "no name on failure");
}

static void test_domain(void)
{
	static const struct { const char *json, *type, *want; } cases[] = {
		{ "{\"catalogNumFormatName\": \"CatalogNumberNumeric\", "
		  "\"defaultCollectionObjectType\": \"/api/specify/collectionobjecttype/1/\", "
		  "\"collectionObjectTypeCatalogNumberFormats\": "
		  "{\"/api/specify/collectionobjecttype/1/\": null}}", NULL,
		  "CatalogNumberNumeric" },
		{ "{\"catalogNumFormatName\": \"CatalogNumberNumeric\", "
		  "\"defaultCollectionObjectType\": \"/api/specify/collectionobjecttype/1/\", "
		  "\"collectionObjectTypeCatalogNumberFormats\": "
		  "{\"/api/specify/collectionobjecttype/1/\": \"CatalogNumber\", "
		  "\"/api/specify/collectionobjecttype/2/\": \"Fish\"}}", NULL,
		  "CatalogNumber" },
		{ "{\"catalogNumFormatName\": \"CatalogNumberNumeric\", "
		  "\"collectionObjectTypeCatalogNumberFormats\": "
		  "{\"/api/specify/collectionobjecttype/2/\": \"Fish\"}}",
		  "/api/specify/collectionobjecttype/2/", "Fish" },
		{ "{\"catalogNumFormatName\": \"CatalogNumberString\"}", NULL,
		  "CatalogNumberString" },
		{ "{\"catalogNumFormatName\": null}", NULL, NULL },
		{ "[1]", NULL, NULL },
		{ "not json", NULL, NULL },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *name = NULL;
		cs_error err = { 0 };
		int rc = catalog_format_name_from_domain(cases[i].json, cases[i].type,
							 &name, &err);
		if (cases[i].want)
			tap_is_str(name, cases[i].want, "format from domain.json");
		else
			tap_ok(rc < 0 && name == NULL && err.msg[0],
			       "domain.json without a format: %s", err.msg);
		free(name);
	}
}

/* --- Round trips over generated identifiers ---------------------------- */

#define NUMERIC_DIGITS 9

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

static void random_from(char *out, size_t len, const char *alphabet)
{
	size_t n = strlen(alphabet);

	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[rnd((unsigned)n)];
	out[len] = '\0';
}

/* An identifier in the stored form of fmt_name. */
static void generate(const char *fmt_name, char *out)
{
	static const char *digits = "0123456789";
	static const char *text =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		"-_ .()#";

	if (strcmp(fmt_name, "CatalogNumberNumeric") == 0) {
		random_from(out, NUMERIC_DIGITS, digits);
	} else if (strcmp(fmt_name, "CatalogNumber") == 0) {
		random_from(out, 4, digits);
		out[4] = '-';
		random_from(out + 5, 6, digits);
	} else if (strcmp(fmt_name, "Accession") == 0) {
		random_from(out, 4, digits);
		out[4] = '-';
		random_from(out + 5, 2, "ABCXYZabc019");
		out[7] = '-';
		random_from(out + 8, 3, digits);
	} else {
		/* Text that starts and ends with a letter or digit, as the
		 * file-name rules trim white space and separators. */
		size_t len = 1 + rnd(30);
		random_from(out, len, text);
		out[0] = 'A' + rnd(26);
		out[len - 1] = '0' + rnd(10);
	}
}

static bool has_candidate(const struct catalog_candidates *c, const char *id,
			  const char *suffix)
{
	for (size_t i = 0; i < catalog_candidates_count(c); i++)
		if (strcmp(catalog_candidates_identifier(c, i), id) == 0)
			return strcmp(catalog_candidates_suffix(c, i), suffix) == 0;
	return false;
}

/* parse(x) == x, parse(display(x)) == x, and the n-th name we build for x
 * resolves to x with suffix "_n" (first for fixed formats). */
static bool round_trip(const struct catalog_format *fmt, const char *id,
		       bool fixed, char *why, size_t size)
{
	char *parsed = NULL, *shown = NULL, *again = NULL, *name = NULL;
	struct catalog_candidates *c = NULL;
	unsigned index = 1 + rnd(12);
	char suffix[16] = "";
	bool ok = false;

	if (index > 1)
		snprintf(suffix, sizeof suffix, "_%u", index);
	if (catalog_format_parse(fmt, id, &parsed, NULL) < 0 || strcmp(parsed, id))
		snprintf(why, size, "parse changed %s", id);
	else if (catalog_format_display(fmt, id, &shown, NULL) < 0 ||
		 catalog_format_parse(fmt, shown, &again, NULL) < 0 || strcmp(again, id))
		snprintf(why, size, "display did not parse back: %s", id);
	else if (catalog_name_build(id, index, "jpg", &name, NULL, NULL) < 0 ||
		 catalog_resolve_filename(fmt, name, &c, NULL) < 0)
		snprintf(why, size, "name for %s did not resolve", id);
	else if (!has_candidate(c, id, suffix) ||
		 (fixed && strcmp(catalog_candidates_identifier(c, 0), id)))
		snprintf(why, size, "%s resolved to %s", name,
			 catalog_candidates_identifier(c, 0));
	else
		ok = true;
	free(parsed);
	free(shown);
	free(again);
	free(name);
	catalog_candidates_free(c);
	return ok;
}

static void test_round_trips(void)
{
	static const struct { const char *name; bool fixed; } formats[] = {
		{ "CatalogNumberNumeric", true }, { "CatalogNumber", true },
		{ "Accession", true }, { "CatalogNumberString", false },
	};

	for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
		struct catalog_format *fmt = strcmp(formats[f].name, "Accession") ?
			builtin(formats[f].name) :
			custom("Accession", (struct part_def[]){
				{ CATALOG_PART_YEAR, 4, NULL },
				{ CATALOG_PART_SEPARATOR, 1, "-" },
				{ CATALOG_PART_ALPHANUMERIC, 2, NULL },
				{ CATALOG_PART_SEPARATOR, 1, "-" },
				{ CATALOG_PART_NUMERIC, 3, NULL }, { 0 } });
		char id[64], why[256] = "";
		int failures = 0;

		for (int i = 0; i < 2000 && failures < 3; i++) {
			generate(formats[f].name, id);
			if (!round_trip(fmt, id, formats[f].fixed, why, sizeof why)) {
				tap_diag("%s", why);
				failures++;
			}
		}
		tap_ok(failures == 0, "round trips for %s", formats[f].name);
		catalog_format_free(fmt);
	}

	/* Every number typed without zeros is stored padded to 9. */
	struct catalog_format *cnn = builtin("CatalogNumberNumeric");
	int failures = 0;
	for (int i = 0; i < 5000; i++) {
		unsigned long n = ((unsigned long)rnd(1000000) * 1000 + rnd(1000)) %
				  1000000000ul;
		char typed[16], want[16], *id = NULL;
		snprintf(typed, sizeof typed, "%lu", n);
		snprintf(want, sizeof want, "%09lu", n);
		catalog_format_parse(cnn, typed, &id, NULL);
		failures += !id || strcmp(id, want) != 0;
		free(id);
	}
	tap_ok(failures == 0, "typed numbers pad to 9 digits");
	catalog_format_free(cnn);
}

int main(void)
{
	test_specify_examples();
	test_fixed_bugs();
	test_suffix_reported();
	test_messages();
	test_parse();
	test_display();
	test_bad_formats();
	test_scan();
	test_name_build();
	test_domain();
	test_round_trips();
	return tap_done();
}
