/* copystand upload / batches / rollback: a folder of captures attached to
 * their records, listed, and taken back.
 *
 *   copystand upload [--match T] [--mapping FILE] [--recursive] [--dry-run]
 *                    [--json] [--pick first|newest] DIR|FILE...
 *   copystand batches
 *   copystand rollback BATCH
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "pipeline.h"

struct upload {
	cli cli;
	batch_options bo;
	metadata_defaults defaults;
	bool dry_run, json;
	char **inputs;
	int ninputs;
	specify_session *s;
	journal *j;
	char *jpath;
	struct catalog_format *fmt;
	struct catalog_format *guess;  /* the format saved at an earlier start */
	char *label;
	char server[512];
};

/* --- progress -------------------------------------------------------------- */

struct progress {
	pthread_mutex_t lock;
	bool tty, quiet;
	long long total_files, total_bytes;
	long long done_files, done_bytes, failed;
	double start;
};

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* A terminal gets one line rewritten in place; a log gets a line a file. */
static void on_event(void *ud, const pipeline_event *ev)
{
	struct progress *pr = ud;

	if (ev->retry || (ev->state != JS_ATTACHED && ev->state != JS_FAILED))
		return;
	pthread_mutex_lock(&pr->lock);
	if (ev->state == JS_ATTACHED) {
		pr->done_files++;
		pr->done_bytes += ev->size;
	} else {
		pr->failed++;
	}
	if (pr->quiet) {
		pthread_mutex_unlock(&pr->lock);
		return;
	}
	if (pr->tty) {
		double t = now_s() - pr->start, rate = t > 0 ? pr->done_bytes / t : 0;
		double eta = rate > 0 ? (pr->total_bytes - pr->done_bytes) / rate : 0;
		printf("\r\033[K%lld/%lld files  %.1f/%.1f MB  %.1f MB/s  ETA %02d:%02d%s%s",
		       pr->done_files, pr->total_files, pr->done_bytes / 1e6,
		       pr->total_bytes / 1e6, rate / 1e6, (int)eta / 60, (int)eta % 60,
		       pr->failed ? "  failed: " : "", pr->failed ? "see below" : "");
		if (ev->state == JS_FAILED)
			printf("\n%s: failed: %s\n", ev->name, ev->reason ? ev->reason : "");
	} else {
		printf("%s\t%s\t%s\n", ev->name, journal_state_name(ev->state),
		       ev->state == JS_FAILED && ev->reason ? ev->reason : ev->identifier);
	}
	fflush(stdout);
	pthread_mutex_unlock(&pr->lock);
}

/* Ctrl-C stops the wait; the journal keeps the batch for the next run. */
static void *watch_signals(void *arg)
{
	pipeline *p = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigwait(&set, &sig) == 0)
		pipeline_interrupt(p);
	return NULL;
}

/* --- the report -------------------------------------------------------------- */

static void print_report(const batch_plan *plan)
{
	size_t counts[BATCH_STATUS_COUNT];

	for (size_t i = 0; i < batch_plan_count(plan); i++) {
		const batch_file *f = batch_plan_file(plan, i);
		if (f->status == BATCH_MATCHED)
			printf("%-17s %s -> %s (record %lld)\n", batch_status_name(f->status),
			       f->path, f->identifier, f->record_id);
		else
			printf("%-17s %s: %s\n", batch_status_name(f->status), f->path,
			       f->reason ? f->reason : "");
	}
	batch_plan_counts(plan, counts);
	printf("\n%zu files:", batch_plan_count(plan));
	const char *sep = " ";
	for (int s = 0; s < BATCH_STATUS_COUNT; s++)
		if (counts[s]) {
			printf("%s%zu %s", sep, counts[s], batch_status_name((enum batch_status)s));
			sep = ", ";
		}
	printf("%s\n", counts[BATCH_ALREADY] == batch_plan_count(plan) ?
	       (counts[BATCH_ALREADY] ? ", nothing to do" : " nothing to do") : "");
}

/* Every file is attached, or about to be: any other status needs a person. */
static bool plan_succeeds(const batch_plan *plan)
{
	size_t counts[BATCH_STATUS_COUNT];

	batch_plan_counts(plan, counts);
	return counts[BATCH_MATCHED] + counts[BATCH_ALREADY] == batch_plan_count(plan);
}

static cJSON *report_json(const batch_plan *plan, long long batch, bool dry_run)
{
	cJSON *root = cJSON_CreateObject(), *files, *counts;
	size_t c[BATCH_STATUS_COUNT];

	if (batch)
		cJSON_AddNumberToObject(root, "batch", (double)batch);
	else
		cJSON_AddNullToObject(root, "batch");
	cJSON_AddBoolToObject(root, "dry_run", dry_run);
	batch_plan_counts(plan, c);
	counts = cJSON_AddObjectToObject(root, "counts");
	for (int s = 0; s < BATCH_STATUS_COUNT; s++)
		cJSON_AddNumberToObject(counts, batch_status_name((enum batch_status)s), (double)c[s]);
	files = cJSON_AddArrayToObject(root, "files");
	for (size_t i = 0; i < batch_plan_count(plan); i++) {
		const batch_file *f = batch_plan_file(plan, i);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "path", f->path);
		cJSON_AddStringToObject(o, "status", batch_status_name(f->status));
		if (f->identifier)
			cJSON_AddStringToObject(o, "identifier", f->identifier);
		if (f->record_id)
			cJSON_AddNumberToObject(o, "record_id", (double)f->record_id);
		if (f->sha256[0])
			cJSON_AddStringToObject(o, "sha256", f->sha256);
		if (f->reason)
			cJSON_AddStringToObject(o, "reason", f->reason);
		if (f->ncandidates) {
			cJSON *cands = cJSON_AddArrayToObject(o, "candidates");
			for (int k = 0; k < f->ncandidates; k++)
				cJSON_AddItemToArray(cands, cJSON_CreateNumber((double)f->candidates[k]));
		}
		cJSON_AddItemToArray(files, o);
	}
	return root;
}

/* Adds the journal's outcome of each uploaded file to the JSON report. */
static int add_outcome(void *ud, const journal_item *it)
{
	cJSON *files = ud, *o;

	cJSON_ArrayForEach(o, files) {
		const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(o, "path"));
		if (path && strcmp(path, it->path) == 0) {
			cJSON_AddStringToObject(o, "state", journal_state_name(it->state));
			if (it->join_id)
				cJSON_AddNumberToObject(o, "attachment_join_id", (double)it->join_id);
			if (it->state == JS_FAILED && it->reason)
				cJSON_AddStringToObject(o, "failure", it->reason);
		}
	}
	return 0;
}

/* On a terminal, a person settles each ambiguous match (Enter skips it). */
static void choose_ambiguous(batch_plan *plan)
{
	char line[64];

	for (size_t i = 0; i < batch_plan_count(plan); i++) {
		const batch_file *f = batch_plan_file(plan, i);
		cs_error err;

		if (f->status != BATCH_AMBIGUOUS)
			continue;
		printf("\a%s: %s\n", f->path, f->reason);
		for (int k = 0; k < f->ncandidates; k++)
			printf("  [%d] record %lld (%d attachments)\n", k + 1, f->candidates[k],
			       f->candidate_attachments[k]);
		printf("choose 1-%d, or Enter to skip: ", f->ncandidates);
		fflush(stdout);
		if (!fgets(line, sizeof line, stdin))
			return;
		int k = atoi(line);
		if (k < 1 || k > f->ncandidates ||
		    batch_plan_choose(plan, i, f->candidates[k - 1], &err) != 0)
			continue;
		if (f->status == BATCH_MATCHED)
			printf("  -> record %lld\n", f->candidates[k - 1]);
		else
			printf("  not attached: %s\n", f->reason);
	}
}

/* --- upload ------------------------------------------------------------------ */

static const char upload_usage[] =
	"usage: copystand upload [--match TARGET] [--mapping FILE] [--recursive]\n"
	"                        [--dry-run] [--json] [--pick first|newest] DIR|FILE...\n"
	"Matches each file to a record by its name (or a mapping file), shows a\n"
	"validation report, then uploads and attaches the matched files.  Running\n"
	"the same command again resumes an interrupted batch; it exits 0 when\n"
	"every file is attached, now or before (\"nothing to do\").\n"
	"  --match TARGET    what names identify (default catalog-number; see\n"
	"                    copystand names --help for the list)\n"
	"  --mapping FILE    CSV/TSV file of file names and identifiers\n"
	"  --recursive       descend into subfolders\n"
	"  --dry-run         stop after the validation report\n"
	"  --json            print the report (and the outcome) as JSON\n"
	"  --pick first|newest  settle ambiguous matches instead of skipping them\n"
	"                    (on a terminal, without --pick, you are asked)\n"
	CLI_COMMON_HELP;

static int parse_upload(struct upload *u, int argc, char **argv, cs_error *err)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{ "match", required_argument, NULL, 'm' },
		{ "mapping", required_argument, NULL, 'M' },
		{ "recursive", no_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "pick", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *match = "catalog-number";
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "m:rnjh", options, NULL)) != -1) {
		switch (opt) {
		case 'm': match = optarg; break;
		case 'M': u->bo.mapping = optarg; break;
		case 'r': u->bo.recursive = true; break;
		case 'n': u->dry_run = true; break;
		case 'j': u->json = true; break;
		case 'p':
			if (strcmp(optarg, "first") == 0)
				u->bo.pick = BATCH_PICK_FIRST;
			else if (strcmp(optarg, "newest") == 0)
				u->bo.pick = BATCH_PICK_NEWEST;
			else
				return cs_error_set(err, CS_E_INVALID, "--pick takes first or newest");
			break;
		case 'h': fputs(upload_usage, stdout); return 1;
		default: {
			int r = cli_common_option(&u->cli, opt, optarg, err);
			if (r < 0)
				return r;
			if (r == 0)
				return cs_error_set(err, CS_E_INVALID, "see copystand upload --help");
		}
		}
	}
	if (!(u->bo.target = match_target_find(match)))
		return cs_error_set(err, CS_E_INVALID, "no match target called '%s' "
				    "(copystand names --help lists them)", match);
	if (optind >= argc)
		return cs_error_set(err, CS_E_INVALID, "name a folder or files to upload");
	u->inputs = argv + optind;
	u->ninputs = argc - optind;
	return 0;
}

/* The batch's identity: what was asked, with absolute paths, so that the
 * same command later finds it to resume. */
static int make_label(struct upload *u, cs_error *err)
{
	size_t len = 0, cap = 256;
	char *l = malloc(cap), abs[PATH_MAX];

	if (!l)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	len = (size_t)snprintf(l, cap, "--match %s%s", u->bo.target->name,
			       u->bo.recursive ? " --recursive" : "");
	for (int i = -1; i < u->ninputs; i++) {
		const char *in = i < 0 ? u->bo.mapping : u->inputs[i];
		if (!in)
			continue;
		const char *a = realpath(in, abs) ? abs : in;
		size_t need = len + strlen(a) + 16;
		if (need > cap) {
			char *m = realloc(l, cap = need * 2);
			if (!m) {
				free(l);
				return cs_error_set(err, CS_E_NOMEM, "out of memory");
			}
			l = m;
		}
		len += (size_t)snprintf(l + len, cap - len, "%s%s", i < 0 ? " --mapping " : " ", a);
	}
	u->label = l;
	return 0;
}

struct resume {
	const struct upload *u;
	journal *j;
	long long found;
};

static bool batch_unfinished(journal *j, long long id)
{
	long long counts[JS_COUNT];
	cs_error err;

	if (journal_batch_counts(j, id, counts, &err))
		return false;
	for (int s = 0; s < JS_COUNT; s++)
		if (counts[s] && !journal_state_is_final((enum journal_state)s))
			return true;
	return false;
}

static int find_resumable(void *ud, const journal_batch *b)
{
	struct resume *r = ud;

	if (strcmp(b->kind, "upload") == 0 && b->label && strcmp(b->label, r->u->label) == 0 &&
	    strcmp(b->server, r->u->server) == 0 && strcmp(b->state, "open") == 0 &&
	    batch_unfinished(r->j, b->id)) {
		r->found = b->id;
		return 1;
	}
	return 0;
}

static int open_everything(struct upload *u, cs_error *err)
{
	int ret;

	if ((ret = journal_open(u->jpath, &u->j, err)) ||
	    (ret = cli_session_start(&u->cli, &u->s, err)))
		return ret;
	snprintf(u->server, sizeof u->server, "%s", specify_session_info(u->s)->server);
	return make_label(u, err);
}

/* Walks the inputs; the files are read while the command logs in. */
static int start_plan(struct upload *u, batch_plan **out, cs_error *err)
{
	if (!(u->jpath = journal_default_path(err)))
		return err->code;
	u->bo.reserve = !u->dry_run;
	u->bo.journal_path = u->jpath;
	u->bo.defaults = &u->defaults;
	return batch_plan_new(&u->bo, u->inputs, (size_t)u->ninputs, out, err);
}

/* The first files go to the asset server while the format is fetched and
 * the names are looked up, chosen by the format saved at an earlier start
 * (a guess: only validation's match attaches a file).  Not for a resumed
 * batch, whose files mostly have their locations. */
static void send_ahead(struct upload *u, batch_plan *plan, bool resuming)
{
	cs_error err;

	if (u->dry_run || resuming || u->bo.mapping || !u->bo.target->catalog_format ||
	    cli_catalog_format(&u->cli, NULL, &u->guess, &err))
		return;
	/* The settings and the reservation first: the uploads need both,
	 * validation neither. */
	specify_session_warm(u->s, u->bo.target->table);
	batch_plan_send_ahead(plan, u->s, u->guess);
}

/* What an earlier run (or this one) sent ahead and no item took. */
static void sweep_ahead(struct upload *u)
{
	cs_error err;

	if (u->s && u->j && !u->dry_run)
		batch_sweep_ahead(u->j, u->s, &err);
}

static int make_plan(struct upload *u, long long resumed, batch_plan *plan,
		     cs_error *err)
{
	int ret = 0;

	/* The asset settings and the bulk answer come while the format is
	 * read; locations are reserved while the names are looked up. */
	if (!u->dry_run)
		specify_session_warm(u->s, u->bo.target->table);
	if (u->bo.target->catalog_format)
		ret = cli_catalog_format(&u->cli, u->s, &u->fmt, err);
	else
		ret = catalog_format_new_plain(&u->fmt, u->bo.target->field_camel,
					       u->bo.target->max_length, err);
	if (ret == 0)
		ret = config_attachment_defaults(u->cli.cfg, &u->defaults, err);
	if (ret == 0)
		ret = batch_plan_validate(plan, u->fmt, u->s, u->j, resumed, err);
	return ret;
}

/* Runs the pipeline until the batch is done (or Ctrl-C), on the session
 * that planned it: one login for the whole command. */
static int drain(struct upload *u, long long batch, struct progress *pr, cs_error *err)
{
	specify_login login;
	pipeline *p = NULL;
	pthread_t watcher;
	sigset_t set;
	int ret;

	if ((ret = cli_login(&u->cli, &login, err)))
		return ret;
	pipeline_options o = {
		.journal_path = u->jpath, .login = login, .session = u->s,
		.on_event = on_event, .ud = pr,
	};
	u->s = NULL;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((ret = pipeline_start(&o, &p, err)))
		return ret;
	bool watching = pthread_create(&watcher, NULL, watch_signals, p) == 0;
	ret = pipeline_wait_idle(p, batch, -1, err);
	if (watching) {
		pthread_cancel(watcher);
		pthread_join(watcher, NULL);
	}
	pipeline_stop(p);
	if (pr->tty && !pr->quiet)
		putchar('\n');
	if (ret == CS_E_INVALID)
		cs_error_set(err, ret, "stopped: run the same command again to continue "
			     "batch %lld", batch);
	return ret;
}

static int summarise(struct upload *u, long long batch, cJSON *json)
{
	long long counts[JS_COUNT];
	cs_error err;

	journal_batch_counts(u->j, batch, counts, &err);
	if (json) {
		cJSON *res = cJSON_AddObjectToObject(json, "result");
		for (int s = 0; s < JS_COUNT; s++)
			if (counts[s])
				cJSON_AddNumberToObject(res, journal_state_name((enum journal_state)s),
							(double)counts[s]);
		journal_items_each(u->j, batch, -1, add_outcome,
				   cJSON_GetObjectItem(json, "files"), &err);
	} else {
		printf("batch %lld:", batch);
		for (int s = 0; s < JS_COUNT; s++)
			if (counts[s])
				printf(" %lld %s", counts[s], journal_state_name((enum journal_state)s));
		printf("\n");
	}
	return counts[JS_FAILED] ? 1 : 0;
}

static void upload_free(struct upload *u)
{
	specify_session_free(u->s);
	journal_close(u->j);
	catalog_format_free(u->fmt);
	catalog_format_free(u->guess);
	free(u->jpath);
	free(u->label);
	cli_free(&u->cli);
}

static int total_of(void *ud, const journal_item *it)
{
	struct progress *pr = ud;
	if (!journal_state_is_final(it->state)) {
		pr->total_files++;
		pr->total_bytes += it->size;
	}
	return 0;
}

int cmd_upload(int argc, char **argv)
{
	struct upload u = { 0 };
	struct progress pr = { .lock = PTHREAD_MUTEX_INITIALIZER, .start = now_s() };
	struct resume r = { .u = &u };
	batch_plan *plan = NULL;
	cJSON *json = NULL;
	cs_error err = { 0 };
	long long batch = 0;
	size_t counts[BATCH_STATUS_COUNT] = { 0 };
	int status = 1, ret;

	cli_init(&u.cli);
	if ((ret = parse_upload(&u, argc, argv, &err))) {
		status = ret > 0 ? 0 : 2;
		if (ret < 0)
			fprintf(stderr, "copystand upload: %s\n", err.msg);
		goto out;
	}
	if ((ret = start_plan(&u, &plan, &err)) || (ret = open_everything(&u, &err))) {
		status = cli_fail(&err);
		goto out;
	}
	r.j = u.j;
	journal_batches_each(u.j, find_resumable, &r, &err);
	if (r.found && !u.dry_run) {
		batch = r.found;
		if (!u.json)
			printf("resuming batch %lld\n", batch);
	}
	/* Before the user and the format are read: the first files need
	 * neither. */
	sweep_ahead(&u);
	send_ahead(&u, plan, batch != 0);
	if ((ret = cli_session_load(&u.cli, u.s, &err)) ||
	    (ret = make_plan(&u, batch, plan, &err))) {
		status = cli_fail(&err);
		goto out;
	}
	if (!u.json && !u.dry_run && u.bo.pick == BATCH_PICK_NONE &&
	    isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		choose_ambiguous(plan);
	batch_plan_counts(plan, counts);
	if (u.json)
		json = report_json(plan, batch, u.dry_run);
	else
		print_report(plan);
	if (u.dry_run || (counts[BATCH_MATCHED] == 0 && !batch)) {
		status = plan_succeeds(plan) ? 0 : 1;
		goto out;
	}
	if ((ret = batch_plan_journal(plan, u.j, u.server, specify_session_info(u.s)->collection,
				      specify_session_info(u.s)->collection_id,
				      u.label, &batch, &err))) {
		status = cli_fail(&err);
		goto out;
	}
	sweep_ahead(&u);
	if (json)
		cJSON_ReplaceItemInObject(json, "batch", cJSON_CreateNumber((double)batch));
	pr.tty = isatty(STDOUT_FILENO);
	pr.quiet = u.json;
	journal_items_each(u.j, batch, -1, total_of, &pr, &err);
	if ((ret = drain(&u, batch, &pr, &err))) {
		status = cli_fail(&err);
		goto out;
	}
	status = summarise(&u, batch, json) || !plan_succeeds(plan) ? 1 : 0;
out:
	if (json) {
		char *text = cJSON_Print(json);
		if (text)
			puts(text);
		free(text);
		cJSON_Delete(json);
	}
	batch_plan_free(plan);
	sweep_ahead(&u);
	upload_free(&u);
	return status;
}

/* --- batches ------------------------------------------------------------------ */

static int print_batch(void *ud, const journal_batch *b)
{
	journal *j = ud;
	long long counts[JS_COUNT];
	char when[32];
	time_t t = (time_t)b->created;
	cs_error err;

	journal_batch_counts(j, b->id, counts, &err);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&t));
	printf("%-6lld %-16s %-8s %-12s %-12s", b->id, when, b->kind, b->collection,
	       b->state);
	for (int s = 0; s < JS_COUNT; s++)
		if (counts[s])
			printf(" %lld %s", counts[s], journal_state_name((enum journal_state)s));
	printf("\n");
	return 0;
}

int cmd_batches(int argc, char **argv)
{
	journal *j = NULL;
	cs_error err = { 0 };
	char *path;

	if (argc > 1) {
		bool help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
		fputs("usage: copystand batches\nLists the batches in the journal with "
		      "their counts and states.\n", help ? stdout : stderr);
		return help ? 0 : 2;
	}
	if (!(path = journal_default_path(&err)) || journal_open(path, &j, &err)) {
		free(path);
		return cli_fail(&err);
	}
	printf("%-6s %-16s %-8s %-12s %-12s %s\n", "batch", "started", "kind",
	       "collection", "state", "files");
	journal_batches_each(j, print_batch, j, &err);
	journal_close(j);
	free(path);
	return 0;
}

/* --- rollback ----------------------------------------------------------------- */

struct rollback {
	specify_session *s;
	journal *j;
	long long removed, failed;
};

/* Deleting the join row makes Specify delete the attachment and its file;
 * a row already gone counts as removed, so a second run finishes the job. */
static int roll_back_one(void *ud, const journal_item *it)
{
	struct rollback *rb = ud;
	journal_item copy = *it;
	cs_error err;
	int ret = specify_attachment_delete(rb->s, it->record_table, it->join_id, &err);

	if (ret && ret != CS_E_NOT_FOUND) {
		fprintf(stderr, "copystand rollback: %s: %s\n", it->name, err.msg);
		rb->failed++;
		return 0;
	}
	copy.state = JS_ROLLED_BACK;
	if (journal_item_update(rb->j, &copy, JS_ATTACHED, &err) == 0) {
		printf("removed %s from %s %lld\n", it->name, it->record_table, it->record_id);
		rb->removed++;
	}
	return 0;
}

int cmd_rollback(int argc, char **argv)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct rollback rb = { 0 };
	journal_batch b = { 0 };
	cs_error err = { 0 };
	char *path = NULL, *end;
	int opt, status = 1;
	long long id;
	cli c;

	cli_init(&c);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		int r = cli_common_option(&c, opt, optarg, &err);
		if (r <= 0) {
			fputs("usage: copystand rollback [options] BATCH\nRemoves from "
			      "Specify what the batch attached (resumable).\n" CLI_COMMON_HELP,
			      opt == 'h' ? stdout : stderr);
			status = opt == 'h' ? 0 : 2;
			goto out;
		}
	}
	id = optind + 1 == argc ? strtoll(argv[optind], &end, 10) : 0;
	if (id <= 0 || *end) {
		fputs("usage: copystand rollback [options] BATCH  (copystand batches lists them)\n",
		      stderr);
		status = 2;
		goto out;
	}
	if (!(path = journal_default_path(&err)) || journal_open(path, &rb.j, &err) ||
	    journal_batch_get(rb.j, id, &b, &err) || cli_session_open(&c, &rb.s, &err)) {
		status = cli_fail(&err);
		goto out;
	}
	journal_batch_set_state(rb.j, id, "rolling_back", &err);
	journal_items_each(rb.j, id, JS_ATTACHED, roll_back_one, &rb, &err);
	if (rb.failed == 0)
		journal_batch_set_state(rb.j, id, "rolled_back", &err);
	printf("batch %lld: %lld removed%s\n", id, rb.removed,
	       rb.failed ? ", some could not be: run the same command again" : "");
	specify_session_logout(rb.s, &err);
	status = rb.failed ? 1 : 0;
out:
	journal_batch_clear(&b);
	specify_session_free(rb.s);
	journal_close(rb.j);
	free(path);
	cli_free(&c);
	return status;
}
