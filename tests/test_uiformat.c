/* Reading Specify's UIFormatters resource.  argv[1] is Specify's default
 * resource (a copy of specify-samples/UIFormatters.xml). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "uiformat.h"

static struct uiformat_set *read_xml(const char *xml)
{
	struct uiformat_set *set = NULL;
	cs_error err;

	if (uiformat_set_new_from_xml(&set, xml, strlen(xml), &err) < 0)
		tap_diag("%s", err.msg);
	return set;
}

/* Parses text with the format called name; returns the identifier or
 * "error <code>: <message>". */
static char *parse_with(const struct uiformat_set *set, const char *name,
			const char *text)
{
	struct catalog_format *fmt;
	cs_error err;
	char *id = NULL, buf[900];
	int rc = uiformat_set_get_format(set, name, &fmt, &err);

	if (rc == 0) {
		rc = catalog_format_parse(fmt, text, &id, &err);
		catalog_format_free(fmt);
	}
	if (rc == 0)
		return id;
	snprintf(buf, sizeof buf, "error %s: %s", cs_error_name(rc), err.msg);
	return strdup(buf);
}

static void check(const struct uiformat_set *set, const char *name,
		  const char *text, const char *want)
{
	char *got = parse_with(set, name, text);
	char what[128];

	snprintf(what, sizeof what, "%s parses '%s'", name, text);
	if (strncmp(want, "error ", 6) == 0) {
		if (!tap_ok(strncmp(got, want, strlen(want)) == 0, "%s: %s", what, want))
			tap_diag("got %s", got);
	} else {
		tap_is_str(got, want, what);
	}
	free(got);
}

static void test_specify_defaults(const char *path)
{
	struct uiformat_set *set = NULL;
	struct catalog_format *fmt = NULL;
	cs_error err;

	tap_is_int(uiformat_set_new_from_file(&set, path, &err), 0,
		   "Specify's default UIFormatters reads");
	check(set, "CatalogNumberNumeric", "123", "000000123");
	check(set, "CatalogNumberNumeric", "1234567890", "error invalid");
	check(set, "CatalogNumberString", "ABC-12", "ABC-12");
	check(set, "CatalogNumber", "2024-000123", "2024-000123");
	check(set, "CatalogNumber", "2024-123", "error invalid");
	check(set, "CatalogNumberAlphaNumByYear", "2024-000001", "2024-000001");
	check(set, "AccessionNumber", "2024-AB-001", "2024-AB-001");
	check(set, "AccessionStringFormatter", "ABCDE12345", "ABCDE12345");
	check(set, "AccessionStringFormatter", "ABCDE1234", "error invalid");
	check(set, "GiftNumber", "2024-001", "2024-001");
	check(set, "SearchDate", "2024-01-31", "2024-01-31");
	check(set, "NumericInteger", "12", "error config: format NumericInteger has no parts");
	check(set, "PartialDate", "2024", "error config: format PartialDate is implemented by");
	check(set, "NoSuchFormat", "1", "error not-found: there is no format called NoSuchFormat");

	uiformat_set_get_format(set, "AccessionNumber", &fmt, NULL);
	tap_is_str(catalog_format_pattern(fmt), "YYYY-XX-###", "pattern of AccessionNumber");
	catalog_format_free(fmt);
	uiformat_set_get_format(set, "NoSuchFormat", &fmt, &err);
	tap_ok(strstr(err.msg, "CatalogNumberAlphaNumByYear") != NULL,
	       "not found lists the formats there are");
	tap_ok(fmt == NULL, "no format when not found");
	uiformat_set_free(set);
}

static void test_variants(void)
{
	static const char xml[] =
		"<?xml version=\"1.0\"?>\n"
		"<formats>\n"
		"  <format system=\"true\" name=\"KUITeach\" class=\"x\" fieldname=\"catalogNumber\">\n"
		"    <external>\n      edu.ku.brc.specify.ui.CatalogNumberUIFieldFormatter\n    </external>\n"
		"  </format>\n"
		"  <format name=\"Str\"><external>CatalogNumberStringUIFieldFormatter</external></format>\n"
		"  <format name=\"Rx\"><field type=\"regex\" value=\"/^[0-9]{4}(-[A-Z])?$/\" pattern=\"####[-A]\"/></format>\n"
		"  <format name=\"Fish\">\n"
		"    <field type=\"constant\" size=\"3\" value=\"FSH\"/>\n"
		"    <field type=\"separator\" size=\"1\" value=\"-\"/>\n"
		"    <field type=\"numeric\" size=\"5\" inc=\"true\"/>\n"
		"  </format>\n"
		"  <format name=\"Untyped\"><field size=\"3\"/></format>\n"
		"  <format name=\"Odd\"><field type=\"roman\" size=\"3\"/></format>\n"
		"  <format name=\"BadSize\"><field type=\"numeric\" size=\"three\"/></format>\n"
		"  <format name=\"BadRegex\"><field type=\"regex\" value=\"([0-9]\"/></format>\n"
		"  <format name=\"Year\"><field type=\"year\"/></format>\n"
		"  <format name=\"Fish\"><field type=\"alpha\" size=\"2\"/></format>\n"
		"</formats>\n";
	struct uiformat_set *set = read_xml(xml);

	tap_ok(set != NULL, "variants read");
	check(set, "KUITeach", "42", "000000042");
	check(set, "Str", " x y ", "x y");
	check(set, "Rx", "1234-A", "1234-A");
	check(set, "Rx", "1234-a", "error invalid");
	check(set, "Fish", "FSH-00042", "FSH-00042");
	check(set, "Fish", "fsh-00042", "error invalid");
	check(set, "Untyped", "a1B", "a1B");
	check(set, "Odd", "XII", "error config: format Odd cannot be used: it has a part of unknown type 'roman'");
	check(set, "BadSize", "1", "error config: format BadSize cannot be used: it has a part whose size");
	check(set, "BadRegex", "1", "error config: the regular expression of format BadRegex");
	check(set, "Year", "2024", "2024");
	check(set, "Year", "24", "error invalid");
	check(set, "CatalogNumberNumeric", "7", "000000007");
	uiformat_set_free(set);

	check(NULL, "CatalogNumber", "2024-000001", "2024-000001");
}

static void test_bad_input(void)
{
	static const char *bad[] = {
		"", "<formats>", "<formats><format name='a'></formats>",
		"not xml at all", "<a/><b/>",
		"<!DOCTYPE f [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
		"<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">"
		"<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\"><!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">"
		"<!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\"><!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\">]>"
		"<formats><format name=\"&h;\"/></formats>",
	};
	struct uiformat_set *set = NULL;
	cs_error err;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = uiformat_set_new_from_xml(&set, bad[i], strlen(bad[i]), &err);
		tap_ok(rc == CS_E_INVALID && set == NULL, "refused: %s", err.msg);
	}
	tap_is_int(uiformat_set_new_from_file(&set, "/nonexistent/UIFormatters.xml", &err),
		   CS_E_IO, "missing file");
	tap_ok(strstr(err.msg, "/nonexistent/UIFormatters.xml") != NULL,
	       "names the file: %s", err.msg);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return tap_skip_all("usage: test_uiformat UIFormatters.xml");
	test_specify_defaults(argv[1]);
	test_variants();
	test_bad_input();
	return tap_done();
}
