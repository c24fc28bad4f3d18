/* copystand report: the contact sheet of a batch or a session folder.
 *
 *   copystand report [--output FILE] [options] BATCH|FOLDER
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "report.h"

static const char report_usage[] =
	"usage: copystand report [--output FILE] [options] BATCH|FOLDER\n"
	"Writes an HTML contact sheet of a batch (copystand batches lists them)\n"
	"or of a session folder (its files, of every batch): for each capture a\n"
	"thumbnail, the catalog number, the taxon, the state and a link to the\n"
	"record in Specify.  One self-contained file, to mail or archive.\n"
	"  -o, --output FILE   where to write it (default report-BATCH.html here,\n"
	"                      or FOLDER/report.html)\n"
	"Taxa come from Specify, whose server and collection default to the\n"
	"batch's; without Specify the report is written all the same.\n"
	CLI_COMMON_HELP;

/* Taxa are a bonus: the report goes out without them, saying why. */
static void add_taxa(cli *c, report *r)
{
	const journal_batch *b = report_batch(r);
	specify_session *s = NULL;
	cs_error err = { 0 };
	int ret = cli_load(c, &err);

	/* A report needs no settings but the user: the batch knows its Specify. */
	if (ret == 0 && !config_get(c->cfg, "server") && b->server)
		ret = config_set(c->opts, "server", b->server, &err);
	if (ret == 0 && !config_get(c->cfg, "collection") && b->collection)
		ret = config_set(c->opts, "collection", b->collection, &err);
	if (ret == 0 && (ret = cli_load(c, &err)) == 0 &&
	    (ret = cli_session_open(c, &s, &err)) == 0)
		ret = report_lookup_taxa(r, s, &err);
	else
		report_taxa_unknown(r, &err);
	if (ret)
		fprintf(stderr, "copystand report: taxa not looked up (the report says "
			"\"taxon unknown\"): %s\n", err.msg);
	if (s) {
		cs_error ignored;
		specify_session_logout(s, &ignored);
		specify_session_free(s);
	}
}

/* Written beside its place and renamed into it: a failed run leaves no
 * half report, and an unwritable place fails before Specify is asked. */
static FILE *open_temp(const char *output, char **tmp, cs_error *err)
{
	mode_t mask = umask(0);
	FILE *f = NULL;
	int fd;

	umask(mask);
	if (asprintf(tmp, "%s.XXXXXX", output) < 0) {
		*tmp = NULL;
		cs_error_set(err, CS_E_NOMEM, "out of memory");
		return NULL;
	}
	if ((fd = mkstemp(*tmp)) < 0 || fchmod(fd, 0666 & ~mask) != 0 ||
	    !(f = fdopen(fd, "w"))) {
		cs_error_set(err, CS_E_IO, "cannot write the report to %s: %s: choose "
			     "another place with --output", output, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(*tmp);
		}
		free(*tmp);
		*tmp = NULL;
	}
	return f;
}

static void print_done(const report *r, long long batch, const char *what,
		       const char *output)
{
	long long counts[JS_COUNT], files = 0;
	char where[PATH_MAX];
	size_t cards = report_counts(r, counts);

	for (int s = 0; s < JS_COUNT; s++)
		files += counts[s];
	if (batch)
		printf("report of batch %lld:", batch);
	else
		printf("report of %s:", what);
	printf(" %zu capture%s, %lld file%s (", cards, cards == 1 ? "" : "s", files,
	       files == 1 ? "" : "s");
	const char *sep = "";
	for (int s = 0; s < JS_COUNT; s++)
		if (counts[s]) {
			printf("%s%lld %s", sep, counts[s], journal_state_name((enum journal_state)s));
			sep = ", ";
		}
	printf(")\nwritten to %s\n", realpath(output, where) ? where : output);
}

int cmd_report(int argc, char **argv)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	report_options ro = { 0 };
	const char *output = NULL;
	char *jpath = NULL, *made = NULL, *tmp = NULL;
	journal *j = NULL;
	report *r = NULL;
	FILE *out = NULL;
	cs_error err = { 0 };
	int opt, status = 1;
	cli c;

	cli_init(&c);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:h", options, NULL)) != -1) {
		int known = opt == 'o' ? 1 : opt == 'h' ? 0 :
			    cli_common_option(&c, opt, optarg, &err);
		if (opt == 'o')
			output = optarg;
		if (known <= 0) {
			if (known < 0)
				fprintf(stderr, "copystand report: %s\n", err.msg);
			fputs(report_usage, opt == 'h' ? stdout : stderr);
			status = opt == 'h' ? 0 : 2;
			goto out;
		}
	}
	if (optind + 1 != argc) {
		fputs("usage: copystand report [options] BATCH|FOLDER  "
		      "(copystand report --help)\n", stderr);
		status = 2;
		goto out;
	}
	/* Digits name a batch; a folder called so is ./2026. */
	const char *what = argv[optind];
	if (*what && strspn(what, "0123456789") == strlen(what))
		ro.batch = strtoll(what, NULL, 10);
	else
		ro.folder = what;
	if (!output && (ro.batch ? asprintf(&made, "report-%lld.html", ro.batch) :
			asprintf(&made, "%s/report.html", what)) < 0) {
		made = NULL;
		cs_error_set(&err, CS_E_NOMEM, "out of memory");
		status = cli_fail(&err);
		goto out;
	}
	output = output ? output : made;
	if (!(jpath = journal_default_path(&err)) || journal_open(jpath, &j, &err) ||
	    report_open(j, &ro, &r, &err) || !(out = open_temp(output, &tmp, &err))) {
		status = cli_fail(&err);
		goto out;
	}
	add_taxa(&c, r);
	int ret = report_write(r, out, &err);
	int closed = fclose(out);
	out = NULL;
	if (ret == 0 && closed != 0)
		ret = cs_error_set(&err, CS_E_IO, "writing the report: %s: check the "
				   "disk and the folder", strerror(errno));
	if (ret == 0 && rename(tmp, output) != 0)
		ret = cs_error_set(&err, CS_E_IO, "cannot write the report to %s: %s: "
				   "choose another place with --output", output,
				   strerror(errno));
	if (ret) {
		status = cli_fail(&err);
		goto out;
	}
	free(tmp);
	tmp = NULL;
	print_done(r, ro.batch, what, output);
	status = 0;
out:
	if (out)
		fclose(out);
	if (tmp)
		unlink(tmp);
	free(tmp);
	report_free(r);
	journal_close(j);
	free(jpath);
	free(made);
	cli_free(&c);
	return status;
}
