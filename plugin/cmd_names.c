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

/* A mapping-file row kept for look-ups by file name. */
struct mapped {
	char *file;
	char *identifier; /* NULL if the row was refused */
	char *problem;    /* why, then */
};

struct mapping {
	struct mapped *v;
	size_t n, cap;
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
		rc = cli_catalog_format(s, fmt, err);
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

static void mapping_clear(struct mapping *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].file);
		free(m->v[i].identifier);
		free(m->v[i].problem);
	}
	free(m->v);
}

static int mapping_add(struct mapping *m, const struct mapping_row *row,
		       const char *problem)
{
	struct mapped *e;

	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		struct mapped *v = realloc(m->v, cap * sizeof *v);
		if (!v)
			return CS_E_NOMEM;
		m->v = v;
		m->cap = cap;
	}
	e = &m->v[m->n];
	e->file = strdup(row->file_name);
	e->identifier = problem ? NULL : strdup(row->identifier);
	e->problem = problem ? strdup(problem) : NULL;
	if (!e->file || !(e->identifier || e->problem)) {
		free(e->file);
		free(e->identifier);
		free(e->problem);
		return CS_E_NOMEM;
	}
	m->n++;
	return 0;
}

/* Refused rows first among those of one file, so a look-up sees them. */
static int mapped_order(const void *a, const void *b)
{
	const struct mapped *x = a, *y = b;
	int c = strcmp(x->file, y->file);

	return c ? c : (y->problem != NULL) - (x->problem != NULL);
}

/* A row read: printed when listing the mapping file, else kept for look-ups
 * (a refused row that names no file can only be reported). */
static int take_row(struct mapping *m, const struct mapping_row *row,
		    const cs_error *err, bool refused, bool list)
{
	if (list && refused)
		printf("%s\terror: %s\n", row->file_name ? row->file_name : "-",
		       err->msg);
	else if (list)
		printf("%s\t%s\n", row->file_name, row->identifier);
	else if (refused && !row->file_name)
		fprintf(stderr, "copystand names: %s\n", err->msg);
	else
		return mapping_add(m, row, refused ? err->msg : NULL);
	return 0;
}

/* Reads the mapping file into m, or prints it if list is set.  Returns the
 * exit status so far, or -1 while all is well. */
static int read_mapping(const struct options *o, const struct catalog_format *fmt,
			bool list, struct mapping *m)
{
	FILE *in = fopen(o->mapping, "r");
	struct mapping_reader *r = NULL;
	struct mapping_row row;
	cs_error err;
	int rc, status = -1;

	if (!in) {
		fprintf(stderr, "copystand names: cannot open %s: %s\n", o->mapping,
			strerror(errno));
		return EXIT_USAGE;
	}
	rc = mapping_reader_new(&r, in, o->mapping, o->target, fmt, &err);
	while (rc == 0) {
		rc = mapping_reader_next(r, &row, &err);
		if (rc == 0 && !row.file_name)
			break;
		if (rc == CS_E_INVALID && list)
			status = EXIT_UNRESOLVED;
		if (rc == 0 || rc == CS_E_INVALID)
			rc = take_row(m, &row, &err, rc < 0, list) < 0 ?
			     cs_error_set(&err, CS_E_NOMEM, "out of memory") : 0;
	}
	if (rc < 0) {
		fprintf(stderr, "copystand names: %s\n", err.msg);
		status = EXIT_USAGE;
	}
	mapping_reader_free(r);
	fclose(in);
	if (m->n)
		qsort(m->v, m->n, sizeof *m->v, mapped_order);
	return status;
}

static const struct mapped *mapping_find(const struct mapping *m, const char *file)
{
	struct mapped key = { .file = (char *)file };
	const struct mapped *e = m->n ? bsearch(&key, m->v, m->n, sizeof *m->v,
						mapped_order) : NULL;

	while (e && e > m->v && strcmp(e[-1].file, file) == 0)
		e--;
	return e;
}

static bool print_mapped(const struct mapping *m, const char *source,
			 const char *file)
{
	const char *base = strrchr(file, '/');
	const struct mapped *e = mapping_find(m, base ? base + 1 : file);

	if (!e)
		printf("%s\terror: not in %s\n", file, source);
	else if (e->problem)
		printf("%s\terror: %s\n", file, e->problem);
	else
		printf("%s\t%s\n", file, e->identifier);
	return e && !e->problem;
}

static int run(const struct options *o, int nfiles, char **files)
{
	struct catalog_format *fmt = NULL;
	struct mapping m = { 0 };
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
		bool ok = o->mapping ? print_mapped(&m, o->mapping, files[i]) :
				       print_resolved(fmt, files[i]);
		if (!ok)
			status = EXIT_UNRESOLVED;
	}
	mapping_clear(&m);
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
