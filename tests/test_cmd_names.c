/* copystand names, run in-process with its output captured, on the paths
 * that need no server (the format from the server is tested against the
 * stand-in in test_cli.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "tap.h"

/* Runs "names ARGS..." (NULL-terminated); returns its stdout, *status its
 * exit status.  stderr goes to the test log. */
static char *run(int *status, ...)
{
	char *argv[32] = { "names" };
	int argc = 1, saved, fd;
	char path[] = "/tmp/test_cmd_names.XXXXXX", *out;
	va_list ap;
	FILE *fp;
	long size;

	va_start(ap, status);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)))
		argc++;
	va_end(ap);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = mkstemp(path);
	dup2(fd, STDOUT_FILENO);
	*status = cmd_names(argc, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	fp = fdopen(fd, "r");
	fseek(fp, 0, SEEK_END);
	size = ftell(fp);
	rewind(fp);
	out = calloc(1, size + 1);
	if (fread(out, 1, size, fp) != (size_t)size)
		tap_diag("short read of the output");
	fclose(fp);
	unlink(path);
	return out;
}

static void check(const char *what, int want_status, const char *want, char *got,
		  int status)
{
	tap_is_int(status, want_status, what);
	if (want)
		tap_is_str(got, want, what);
	free(got);
}

static char *write_temp(const char *text)
{
	char *path = strdup("/tmp/test_cmd_names_map.XXXXXX");
	int fd = mkstemp(path);

	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		tap_diag("short write");
	close(fd);
	return path;
}

int main(int argc, char **argv)
{
	const char *xml = argc > 1 ? argv[1] : NULL;
	char *map, *out;
	int st;

	if (!xml)
		return tap_skip_all("usage: test_cmd_names UIFormatters.xml");

	out = run(&st, "--format", "CatalogNumberNumeric", "000000001.jpg", "00002.jpg",
		  "dir/000000003(2).jpg", "someRandomValue.jpg", NULL);
	check("numeric names", 1,
	      "000000001.jpg\t000000001\n00002.jpg\t000000002\n"
	      "dir/000000003(2).jpg\t000000003\n"
	      "someRandomValue.jpg\terror: 'someRandomValue' does not fit the format "
	      "CatalogNumberNumeric (#########): character 1 is 's' where a digit belongs\n",
	      out, st);

	out = run(&st, "--match", "taxon-full-name", "Quercus alba_2.jpg", NULL);
	check("other targets need no server", 0,
	      "Quercus alba_2.jpg\tQuercus alba_2\tQuercus alba\tQuercus\n", out, st);

	out = run(&st, "--match", "alt-catalog-number", "ESCR-0004_detail.jpg", NULL);
	check("starts-with candidates", 0,
	      "ESCR-0004_detail.jpg\tESCR-0004_detail\tESCR-0004\tESCR\n", out, st);

	out = run(&st, "-f", "CatalogNumber", "--formatters", xml, "2024-000001_3.jpg",
		  "2024-1.jpg", NULL);
	check("format from a UIFormatters file", 1,
	      "2024-000001_3.jpg\t2024-000001\n2024-1.jpg\terror: '2024-1' does not fit "
	      "the format CatalogNumber (YYYY-######): it ends after 6 characters where a "
	      "digit belongs; did you mean '2024-000001'?\n", out, st);

	out = run(&st, "-f", "NoSuch", "--formatters", xml, "x.jpg", NULL);
	check("unknown format", 2, "", out, st);
	out = run(&st, "--formatters", xml, "x.jpg", NULL);
	check("--formatters alone", 2, "", out, st);
	out = run(&st, "--match", "nothing", "x.jpg", NULL);
	check("unknown target", 2, "", out, st);
	out = run(&st, NULL);
	check("no files", 2, "", out, st);
	out = run(&st, "--help", NULL);
	tap_ok(st == 0 && strstr(out, "preparation-barcode") != NULL, "help lists targets");
	free(out);

	map = write_temp("File Name,Catalog Number\n"
			 "a.jpg,1\nb.jpg,2\nb.jpg,3\nc.jpg,x\n,4\n");
	out = run(&st, "-f", "CatalogNumberNumeric", "--mapping", map, "a.jpg", "photos/b.jpg", "c.jpg", "d.jpg", NULL);
	check("resolve through a mapping file", 1, NULL, out, st);
	tap_ok(strstr(out = run(&st, "-f", "CatalogNumberNumeric", "--mapping", map, "a.jpg", NULL), "a.jpg\t000000001\n") &&
	       st == 0, "padded through the format");
	free(out);
	out = run(&st, "-f", "CatalogNumberNumeric", "--mapping", map, "photos/b.jpg", "d.jpg", NULL);
	tap_ok(strstr(out, "photos/b.jpg\terror: ") && strstr(out, "listed again") &&
	       strstr(out, "d.jpg\terror: not in ") && st == 1,
	       "duplicates and missing files reported");
	free(out);
	out = run(&st, "-f", "CatalogNumberNumeric", "--mapping", map, NULL);
	tap_ok(strstr(out, "a.jpg\t000000001\nb.jpg\t000000002\nb.jpg\terror: ") &&
	       strstr(out, "c.jpg\terror: ") && strstr(out, "line 6: the row has no file name") &&
	       st == 1, "listing a mapping file");
	free(out);
	unlink(map);
	free(map);

	map = write_temp("Photo;Number\n");
	out = run(&st, "-f", "CatalogNumberNumeric", "--mapping", map, "a.jpg", NULL);
	check("mapping header refused", 2, "", out, st);
	unlink(map);
	free(map);
	out = run(&st, "-f", "CatalogNumberNumeric", "--mapping", "/nonexistent.csv", "a.jpg", NULL);
	check("mapping file missing", 2, "", out, st);
	return tap_done();
}
