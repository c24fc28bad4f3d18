/* Mapping files: delimiters, columns, quoting, errors with line numbers,
 * duplicates, and a large file read as a stream. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapping.h"
#include "tap.h"

/* Reads text as a mapping file and writes what came out, one line per row:
 * "LINE FILE=IDENTIFIER" or "LINE error: MESSAGE"; "header error: ..." if
 * the header was refused. */
static char *run(const char *text, const char *target_name,
		 const struct catalog_format *fmt)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	struct mapping_reader *r = NULL;
	struct mapping_row row;
	cs_error err;
	char *out = NULL;
	size_t size = 0;
	FILE *log = open_memstream(&out, &size);
	int rc;

	rc = mapping_reader_new(&r, in, "map.csv", match_target_find(target_name),
				fmt, &err);
	if (rc < 0)
		fprintf(log, "header error: %s\n", err.msg);
	while (rc == 0 || rc == CS_E_INVALID) {
		if (r == NULL)
			break;
		rc = mapping_reader_next(r, &row, &err);
		if (rc == CS_E_INVALID)
			fprintf(log, "%lu error: %s\n", row.line, err.msg);
		else if (rc < 0)
			fprintf(log, "fatal: %s\n", err.msg);
		else if (!row.file_name)
			break;
		else
			fprintf(log, "%lu %s=%s\n", row.line, row.file_name, row.identifier);
	}
	mapping_reader_free(r);
	fclose(log);
	fclose(in);
	return out;
}

static void check(const char *what, const char *text, const char *target,
		  const struct catalog_format *fmt, const char *want)
{
	char *got = run(text, target, fmt);

	tap_is_str(got, want, what);
	free(got);
}

/* Like check, but only wants want to occur in the output. */
static void check_has(const char *what, const char *text, const char *target,
		      const struct catalog_format *fmt, const char *want)
{
	char *got = run(text, target, fmt);

	if (!tap_ok(strstr(got, want) != NULL, "%s", what))
		tap_diag("got: %s", got);
	free(got);
}

static void test_layouts(const struct catalog_format *cnn)
{
	check("comma, CNN padding", "Catalog Number,File Name\n123,a.jpg\n000000124,b.jpg\n",
	      NULL, cnn, "2 a.jpg=000000123\n3 b.jpg=000000124\n");
	check("tab, columns swapped, extra column",
	      "filename\tnotes\tcatalogNumber\nx.jpg\tsome, text\t5\n",
	      NULL, cnn, "2 x.jpg=000000005\n");
	check("pipe, BOM, CRLF", "\xEF\xBB\xBF" "Attachment Name|Catalog Number\r\nv1.tif|7\r\nv2.tif|8\r\n",
	      NULL, cnn, "2 v1.tif=000000007\n3 v2.tif=000000008\n");
	check("CR only line ends", "file,catalognumber\rp.jpg,9\rq.jpg,10",
	      NULL, cnn, "2 p.jpg=000000009\n3 q.jpg=000000010\n");
	check("blank lines and white space", "\n  \nCatalog Number , File Name \n\n 11 ,  r.jpg  \n,\n\t\n12,s.jpg",
	      NULL, cnn, "5 r.jpg=000000011\n8 s.jpg=000000012\n");
	check("quoted fields", "\"Catalog Number\",\"File Name\"\n"
	      "\"13\",\"photo, \"\"best\"\".jpg\"\n"
	      "  \"14\"  ,\"t.jpg\"\n", NULL, cnn,
	      "2 photo, \"best\".jpg=000000013\n3 t.jpg=000000014\n");
	check("quoted line break counts as a line", "Catalog Number,File Name\n"
	      "15,\"two\nlines.jpg\"\n16,u.jpg\n", NULL, cnn,
	      "2 error: map.csv line 2: the file name contains the control character 0x0A at byte 4; identifiers are plain text\n"
	      "4 u.jpg=000000016\n");
	check("no format: identifiers as written", "Catalog Number,File Name\n 0012 ,a.jpg\n",
	      NULL, NULL, "2 a.jpg=0012\n");
	check("the delimiter used most wins", "Catalog Number|File Name|Notes, more\n1|a.jpg|x, y\n",
	      NULL, cnn, "2 a.jpg=000000001\n");
	check("alt catalog number by caption", "Alt Cat Number,file\nESCR-0004,ESCR-0004_detail.jpg\n",
	      "alt-catalog-number", NULL, "2 ESCR-0004_detail.jpg=ESCR-0004\n");
	check("our target name as header", "preparation-barcode,file name\nB123,b.jpg\n",
	      "preparation-barcode", NULL, "2 b.jpg=B123\n");
	check("any target's field, as Specify", "barCode,File Name\nB9,b.jpg\n",
	      NULL, NULL, "2 b.jpg=B9\n");
	check("chosen target before others", "barCode,altCatalogNumber,File Name\nB9,A1,b.jpg\n",
	      "alt-catalog-number", NULL, "2 b.jpg=A1\n");
}

static void test_errors(const struct catalog_format *cnn)
{
	check("empty file", "", NULL, cnn,
	      "header error: map.csv is empty; a mapping file starts with a header row such as \"Catalog Number,File Name\"\n");
	check_has("one column", "Catalog Number\n1\n", NULL, cnn,
		  "header error: map.csv line 1: the header row has a single column");
	check_has("no file column", "Catalog Number,Photo\n1,a.jpg\n", NULL, cnn,
		  "header error: map.csv line 1: no column for the file name");
	check_has("no value column", "Number,File Name\n1,a.jpg\n", NULL, cnn,
		  "header error: map.csv line 1: no column for the Catalog Number; head it \"Catalog Number\" or \"catalogNumber\"");
	check_has("header line after blank lines", "\n\nNumber,File Name\n", NULL, cnn,
		  "map.csv line 3: no column for the Catalog Number");
	check("row errors carry on", "Catalog Number,File Name\n"
	      "12a,a.jpg\n"
	      "13\n"
	      ",c.jpg\n"
	      "14,d.jpg\n", NULL, cnn,
	      "2 error: map.csv line 2: '12a' does not fit the format CatalogNumberNumeric (#########): character 3 is 'a' where a digit belongs\n"
	      "3 error: map.csv line 3: the row has no file name\n"
	      "4 error: map.csv line 4: the row has no identifier\n"
	      "5 d.jpg=000000014\n");
	check("duplicates", "Catalog Number,File Name\n"
	      "1,a.jpg\n2,b.jpg\n1,a.jpg\n3,b.jpg\n2,c.jpg\n", NULL, cnn,
	      "2 a.jpg=000000001\n3 b.jpg=000000002\n"
	      "4 error: map.csv line 4: this row repeats line 2; delete one of them\n"
	      "5 error: map.csv line 5: b.jpg is listed again, first on line 3 for 000000002; a file belongs to one record\n"
	      "6 c.jpg=000000002\n");
	check("text after a closing quote", "Catalog Number,File Name\n"
	      "\"1\"x,a.jpg\n2,b.jpg\n", NULL, cnn,
	      "2 error: map.csv line 2: there is text after a closing quote; write a quote inside quotes as \"\"\n"
	      "3 b.jpg=000000002\n");
	check("quote never closed", "Catalog Number,File Name\n"
	      "1,a.jpg\n2,\"b.jpg\n3,c.jpg\n", NULL, cnn,
	      "2 a.jpg=000000001\n"
	      "3 error: map.csv line 3: the quote opened on line 3 is never closed\n");
	check("control character in a value", "Catalog Number,File Name\n1\x1b,a.jpg\n", NULL, NULL,
	      "2 error: map.csv line 2: the identifier contains the control character 0x1B at byte 2; identifiers are plain text\n");
}

static void test_duplicate_row_fields(const struct catalog_format *cnn)
{
	const char *text = "Catalog Number,File Name\n1,a.jpg\n5,a.jpg\n";
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	struct mapping_reader *r;
	struct mapping_row row;

	mapping_reader_new(&r, in, "map.csv", NULL, cnn, NULL);
	tap_is_int(mapping_reader_delimiter(r), ',', "comma found");
	mapping_reader_next(r, &row, NULL);
	tap_is_int(mapping_reader_next(r, &row, NULL), CS_E_INVALID, "second a.jpg refused");
	tap_is_str(row.file_name, "a.jpg", "duplicate names the file");
	tap_is_str(row.identifier, "000000005", "and its identifier");
	tap_is_int((long long)row.first_line, 2, "and where it was first");
	tap_is_int(mapping_reader_next(r, &row, NULL), 0, "end");
	tap_ok(row.file_name == NULL, "end has no file");
	mapping_reader_free(r);
	fclose(in);
}

/* 100,000 rows go through without holding the file in memory. */
static void test_large(const struct catalog_format *cnn)
{
	FILE *in = tmpfile();
	struct mapping_reader *r;
	struct mapping_row row;
	unsigned long rows = 0, errors = 0, last = 0;
	int rc;

	fputs("File Name\tCatalog Number\tRemarks\n", in);
	for (int i = 1; i <= 100000; i++)
		fprintf(in, "IMG_%06d.JPG\t%d\t\"specimen %d, dorsal\"\n", i, i, i);
	rewind(in);
	rc = mapping_reader_new(&r, in, "big.tsv", NULL, cnn, NULL);
	while (rc == 0 || rc == CS_E_INVALID) {
		rc = mapping_reader_next(r, &row, NULL);
		if (rc == 0 && !row.file_name)
			break;
		rows += rc == 0;
		errors += rc != 0;
		last = row.line;
	}
	tap_is_int((long long)rows, 100000, "100k rows read");
	tap_is_int((long long)errors, 0, "no errors");
	tap_is_int((long long)last, 100001, "last line number");
	mapping_reader_free(r);
	fclose(in);
}

static void count_rows(void *ud, const struct mapping_row *row, const cs_error *refused)
{
	int *n = ud;
	(void)row;
	n[refused ? 1 : 0]++;
}

/* The whole-file table: look-ups by name, a refusal wins over a good row
 * of the same file, a file whose only row was refused gives that reason. */
static void test_table(const struct catalog_format *cnn)
{
	const char *text = "File Name,Catalog Number\n"
			   "a.jpg,1\n"
			   "bad.jpg,abc\n"
			   "twice.jpg,2\n"
			   "twice.jpg,3\n"
			   ",4\n";
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	struct mapping_table *t = NULL;
	const char *id, *why;
	int seen[2] = { 0, 0 };
	cs_error err;

	tap_ok(mapping_table_load(&t, in, "map.csv", NULL, cnn, count_rows, seen, &err) == 0,
	       "load a mapping table");
	tap_ok(seen[0] == 2 && seen[1] == 3, "every row seen once (%d good, %d refused)",
	       seen[0], seen[1]);
	tap_ok(mapping_table_find(t, "photos/a.jpg", &id, &why) == 0 && strcmp(id, "000000001") == 0,
	       "a file by name, its folder ignored, identifier formatted");
	tap_ok(mapping_table_find(t, "bad.jpg", &id, &why) == CS_E_INVALID && why && strstr(why, "abc"),
	       "a file whose only row was refused gives the reason: %s", why ? why : "(none)");
	tap_is_int(mapping_table_find(t, "twice.jpg", &id, &why), CS_E_INVALID,
		   "a file listed twice is refused, not taken from its first row");
	tap_is_int(mapping_table_find(t, "missing.jpg", &id, &why), CS_E_NOT_FOUND, "an unlisted file");
	mapping_table_free(t);
	fclose(in);
}

int main(void)
{
	struct catalog_format *cnn;

	catalog_format_new_builtin(&cnn, "CatalogNumberNumeric", NULL);
	test_layouts(cnn);
	test_errors(cnn);
	test_duplicate_row_fields(cnn);
	test_large(cnn);
	test_table(cnn);
	catalog_format_free(cnn);
	return tap_done();
}
