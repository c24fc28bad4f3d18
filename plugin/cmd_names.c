/* copystand names — what identifier each file name stands for.
 *
 *   copystand names [--match TARGET] [--format NAME [--formatters FILE]]
 *                   [--mapping FILE] [common options] FILE...
 *
 * Prints "FILE<TAB>IDENTIFIER" (more candidates in further columns, longest
 * first, when the format cannot tell where the identifier ends) or
 * "FILE<TAB>error: why" for each FILE; exit status 0 only if every FILE
 * resolved, 1 if some did not, 2 for a usage or set-up error.  Without
 * --format, catalog numbers take the collection's format from the server.
 */
#include "commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cli.h"
#include "mapping.h"
#include "targets.h"
#include "uiformat.h"

enum { EXIT_RESOLVED = 0, EXIT_UNRESOLVED = 1, EXIT_USAGE = 2 };

struct options {
	cli cli;
	const struct match_target *target;
	const char *format_name;
	const char *formatters;
	const char *mapping;
};

static void usage(FILE *out)
{
	fputs("usage: copystand names [--match TARGET] [--format NAME [--formatters FILE]]\n"
	      "                       [--mapping FILE] FILE...\n"
	      "Prints the identifier each FILE name resolves to, or why it does not.\n"
	      "  -m, --match TARGET     what names identify (default catalog-number):\n", out);
	for (size_t i = 0; i < match_target_count(); i++)
		fprintf(out, "%s%s", i % 3 ? ", " : i ? ",\n\t\t\t " : "\t\t\t ",
			match_target_at(i)->name);
	fputs("\n  -f, --format NAME      the field's format: CatalogNumberNumeric,\n"
	      "                         CatalogNumberString, CatalogNumber, or one in FILE\n"
	      "                         (default: the collection's, from the server)\n"
	      "      --formatters FILE  the collection's UIFormatters XML\n"
	      "      --mapping FILE     take identifiers from a CSV/TSV mapping file;\n"
	      "                         without FILE arguments, check and list it\n"
	      CLI_COMMON_HELP, out);
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "match", required_argument, NULL, 'm' },
		{ "format", required_argument, NULL, 'f' },
		{ "formatters", required_argument, NULL, 'F' },
		{ "mapping", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		CLI_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	cs_error err;
	const char *match = "catalog-number";
	int c;

	/* The CLI may have run getopt already: start afresh. */
	optind = 0;
	while ((c = getopt_long(argc, argv, "m:f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': match = optarg; break;
		case 'f': o->format_name = optarg; break;
		case 'F': o->formatters = optarg; break;
		case 'M': o->mapping = optarg; break;
		case 'h': usage(stdout); return EXIT_RESOLVED;
		default:
			switch (cli_common_option(&o->cli, c, optarg, &err)) {
			case 1:
				break;
			case 0:
				usage(stderr);
				return EXIT_USAGE;
			default:
				fprintf(stderr, "copystand names: %s\n", err.msg);
				return EXIT_USAGE;
			}
		}
	}
	o->target = match_target_find(match);
	if (!o->target) {
		fprintf(stderr, "copystand names: no match target called '%s'; see --help\n",
			match);
		return EXIT_USAGE;
	}
	if (o->formatters && !o->format_name) {
		fputs("copystand names: --formatters needs --format NAME\n", stderr);
		return EXIT_USAGE;
	}
	if (optind == argc && !o->mapping) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}

/* The collection's catalog-number format, from the server. */
static int format_from_server(struct options *o, struct catalog_format **fmt,
			      cs_error *err)
{
	specify_session *s = NULL;
	int rc = cli_session_open(&o->cli, &s, err);

	if (rc == 0)
		rc = cli_catalog_format(&o->cli, s, fmt, err);
	if (rc == 0)
		rc = specify_session_logout(s, err);
	specify_session_free(s);
	if (rc < 0)
		cs_error_prefix(err, "the collection's catalog number format (give "
				"--format to work without a server)");
	return rc;
}

static int load_format(const struct options *o, struct catalog_format **fmt,
		       cs_error *err)
{
	struct uiformat_set *set = NULL;
	int rc;

	if (!o->format_name && o->target->catalog_format)
		return format_from_server((struct options *)o, fmt, err);
	if (!o->format_name)
		/* Specify's importer applies no format to these fields. */
		return catalog_format_new_plain(fmt, o->target->field_camel,
						o->target->max_length, err);
	if (o->formatters) {
		rc = uiformat_set_new_from_file(&set, o->formatters, err);
		if (rc < 0)
			return rc;
	}
	rc = uiformat_set_get_format(set, o->format_name, fmt, err);
	uiformat_set_free(set);
	return rc;
}

static bool print_resolved(const struct catalog_format *fmt, const char *file)
{
	struct catalog_candidates *c;
	cs_error err;

	if (catalog_resolve_filename(fmt, file, &c, &err) < 0) {
		printf("%s\terror: %s\n", file, err.msg);
		return false;
	}
	fputs(file, stdout);
	for (size_t i = 0; i < catalog_candidates_count(c); i++)
		printf("\t%s", catalog_candidates_identifier(c, i));
	putchar('\n');
	catalog_candidates_free(c);
	return true;
}

/* --- Mapping files ----------------------------------------------------- */

/* Listing a mapping file: every row as read. */
static void list_row(void *ud, const struct mapping_row *row, const cs_error *refused)
{
	bool *bad = ud;

	if (refused) {
		printf("%s\terror: %s\n", row->file_name ? row->file_name : "-", refused->msg);
		*bad = true;
	} else {
		printf("%s\t%s\n", row->file_name, row->identifier);
	}
}

/* Looking files up: a refused row that names no file can only be told. */
static void report_row(void *ud, const struct mapping_row *row, const cs_error *refused)
{
	(void)ud;
	if (refused && !row->file_name)
		fprintf(stderr, "copystand names: %s\n", refused->msg);
}

/* Reads the mapping file into *t, or prints it if list is set.  Returns
 * the exit status so far, or -1 while all is well. */
static int read_mapping(const struct options *o, const struct catalog_format *fmt,
			bool list, struct mapping_table **t)
{
	FILE *in = fopen(o->mapping, "r");
	bool bad = false;
	cs_error err;

	if (!in) {
		fprintf(stderr, "copystand names: cannot open %s: %s\n", o->mapping,
			strerror(errno));
		return EXIT_USAGE;
	}
	int rc = mapping_table_load(t, in, o->mapping, o->target, fmt,
				    list ? list_row : report_row, &bad, &err);
	fclose(in);
	if (rc < 0) {
		fprintf(stderr, "copystand names: %s\n", err.msg);
		return EXIT_USAGE;
	}
	return bad ? EXIT_UNRESOLVED : -1;
}

static bool print_mapped(const struct mapping_table *t, const char *source,
			 const char *file)
{
	const char *identifier, *problem;
	int rc = mapping_table_find(t, file, &identifier, &problem);

	if (rc == CS_E_NOT_FOUND)
		printf("%s\terror: not in %s\n", file, source);
	else if (rc)
		printf("%s\terror: %s\n", file, problem);
	else
		printf("%s\t%s\n", file, identifier);
	return rc == 0;
}

static int run(const struct options *o, int nfiles, char **files)
{
	struct catalog_format *fmt = NULL;
	struct mapping_table *m = NULL;
	cs_error err;
	int status = EXIT_RESOLVED;

	if (load_format(o, &fmt, &err) < 0) {
		fprintf(stderr, "copystand names: %s\n", err.msg);
		return EXIT_USAGE;
	}
	if (o->mapping) {
		int rc = read_mapping(o, fmt, nfiles == 0, &m);
		if (rc >= 0)
			status = rc;
	}
	for (int i = 0; i < nfiles && status != EXIT_USAGE; i++) {
		bool ok = o->mapping ? print_mapped(m, o->mapping, files[i]) :
				       print_resolved(fmt, files[i]);
		if (!ok)
			status = EXIT_UNRESOLVED;
	}
	mapping_table_free(m);
	catalog_format_free(fmt);
	return status;
}

int cmd_names(int argc, char **argv)
{
	struct options o = { 0 };
	int status;

	cli_init(&o.cli);
	status = parse_options(argc, argv, &o);
	if (status < 0)
		status = run(&o, argc - optind, argv + optind);
	fflush(stdout);
	cli_free(&o.cli);
	return status;
}
