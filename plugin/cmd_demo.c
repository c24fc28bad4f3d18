/* copystand demo: the main job on embedded defaults.  Starts the bundled
 * Specify stand-in on loopback and attaches the bundled sample folder to
 * its records the way `copystand upload` does — plan, validate, journal,
 * the background pipeline — then prints what got attached, with each
 * record's current taxon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "pipeline.h"
#include "specify.h"
#include "standin.h"

#ifndef COPYSTAND_SAMPLES
#error "COPYSTAND_SAMPLES must name the bundled sample folder"
#endif

struct demo {
	standin *st;
	specify_session *s;
	struct catalog_format *fmt;
	batch_plan *plan;
	journal *j;
	char dir[512];            /* a throw-away journal: each demo starts afresh */
	char *jpath;
	long long batch;
	char (*taxa)[128];        /* per plan file */
	char (*results)[160];
};

/* The taxon of a record's current determination (its id, as text). */
static void current_taxon(const cJSON *record, char *out, size_t outsz)
{
	const cJSON *det;

	out[0] = '\0';
	cJSON_ArrayForEach(det, cJSON_GetObjectItem(record, "determinations")) {
		const char *uri = cJSON_GetStringValue(cJSON_GetObjectItem(det, "taxon"));
		const char *id = uri ? strstr(uri, "/taxon/") : NULL;
		if (cJSON_IsTrue(cJSON_GetObjectItem(det, "iscurrent")) && id)
			snprintf(out, outsz, "%lld", atoll(id + 7));
	}
}

static int on_record(void *ud, const char *value, const cJSON *record)
{
	struct demo *d = ud;
	long long id = atoll(value);

	for (size_t i = 0; i < batch_plan_count(d->plan); i++)
		if (batch_plan_file(d->plan, i)->record_id == id)
			current_taxon(record, d->taxa[i], sizeof d->taxa[i]);
	return 0;
}

static int on_taxon(void *ud, const char *value, const cJSON *record)
{
	struct demo *d = ud;
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(record, "fullname"));

	for (size_t i = 0; i < batch_plan_count(d->plan); i++)
		if (strcmp(d->taxa[i], value) == 0)
			snprintf(d->taxa[i], sizeof d->taxa[i], "%s", name ? name : "?");
	return 0;
}

/* Two batched lookups: the records, then their taxa. */
static int look_up_taxa(struct demo *d, cs_error *err)
{
	size_t n = batch_plan_count(d->plan), k = 0;
	char (*ids)[24] = calloc(n + 1, sizeof *ids);
	const char **values = calloc(n + 1, sizeof *values);
	int ret;

	if (!ids || !values) {
		free(ids);
		free(values);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		if (batch_plan_file(d->plan, i)->record_id) {
			snprintf(ids[k], sizeof ids[k], "%lld", batch_plan_file(d->plan, i)->record_id);
			values[k] = ids[k];
			k++;
		}
	ret = specify_records_lookup(d->s, "collectionobject", "id", values, k, on_record, d, err);
	k = 0;
	for (size_t i = 0; ret == 0 && i < n; i++)
		if (d->taxa[i][0]) {
			snprintf(ids[k], sizeof ids[k], "%s", d->taxa[i]);
			values[k] = ids[k];
			k++;
		}
	if (ret == 0)
		ret = specify_records_lookup(d->s, "taxon", "id", values, k, on_taxon, d, err);
	free(ids);
	free(values);
	return ret;
}

static int on_item(void *ud, const journal_item *it)
{
	struct demo *d = ud;

	for (size_t i = 0; i < batch_plan_count(d->plan); i++)
		if (strcmp(batch_plan_file(d->plan, i)->path, it->path) == 0) {
			if (it->state == JS_ATTACHED)
				snprintf(d->results[i], sizeof d->results[i],
					 "attached (join row %lld)", it->join_id);
			else
				snprintf(d->results[i], sizeof d->results[i], "%s: %s",
					 journal_state_name(it->state), it->reason ? it->reason : "");
		}
	return 0;
}

static void print_table(struct demo *d)
{
	printf("\n%-18s %-11s %-8s %-20s %s\n", "file", "catalog no.", "record", "taxon", "result");
	for (size_t i = 0; i < batch_plan_count(d->plan); i++) {
		const batch_file *f = batch_plan_file(d->plan, i);
		char rec[24] = "-", skipped[900];
		if (f->record_id)
			snprintf(rec, sizeof rec, "%lld", f->record_id);
		snprintf(skipped, sizeof skipped, "skipped: %s", f->reason ? f->reason : "");
		printf("%-18s %-11s %-8s %-20s %s\n", f->name, f->identifier ? f->identifier : "-",
		       rec, d->taxa[i][0] ? d->taxa[i] : "-",
		       f->status == BATCH_MATCHED ? d->results[i] : skipped);
	}
}

/* Plans, validates and journals the sample folder, then lets the pipeline
 * attach it. */
static int attach_samples(struct demo *d, const specify_login *login, cs_error *err)
{
	const specify_info *info = specify_session_info(d->s);
	char *inputs[] = { (char *)COPYSTAND_SAMPLES };
	pipeline *p = NULL;
	int ret;

	batch_options bo = { .target = match_target_find("catalog-number") };
	if ((ret = cli_catalog_format(d->s, &d->fmt, err)))
		return ret;
	bo.format = d->fmt;
	if ((ret = batch_plan_new(&bo, inputs, 1, &d->plan, err)) ||
	    (ret = batch_plan_validate(d->plan, d->s, d->j, err)) ||
	    (ret = batch_plan_journal(d->plan, d->j, info->server, info->collection,
				      info->collection_id, "demo", &d->batch, err)))
		return ret;
	size_t n = batch_plan_count(d->plan) + 1;
	if (!(d->taxa = calloc(n, sizeof *d->taxa)) || !(d->results = calloc(n, sizeof *d->results)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	printf("Attaching %zu sample images from %s\n", n - 1, COPYSTAND_SAMPLES);
	pipeline_options o = { .journal_path = d->jpath, .login = *login };
	if ((ret = pipeline_start(&o, &p, err)) == 0) {
		ret = pipeline_wait_idle(p, d->batch, 120, err);
		pipeline_stop(p);
	}
	if (ret == 0)
		ret = journal_items_each(d->j, d->batch, -1, on_item, d, err);
	return ret ? ret : look_up_taxa(d, err);
}

static int run(struct demo *d, cs_error *err)
{
	int ret;

	const char *tmp = getenv("TMPDIR");
	snprintf(d->dir, sizeof d->dir, "%s/copystand-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d->dir) || asprintf(&d->jpath, "%s/journal.sqlite", d->dir) < 0)
		return cs_error_set(err, CS_E_IO, "cannot make a temporary folder");
	if ((ret = journal_open(d->jpath, &d->j, err)) ||
	    (ret = standin_start(NULL, &d->st, err)))
		return ret;
	specify_login login = {
		.server = standin_url(d->st), .user = "spadmin", .password = "testpass",
		.collection = "Fish",
	};
	if ((ret = specify_session_login(&login, &d->s, err)))
		return ret;
	const specify_info *info = specify_session_info(d->s);
	printf("Specify stand-in at %s: user %s (agent %s), collection %s, "
	       "catalog numbers %s\n", info->server, info->user, info->agent,
	       info->collection, info->catalog_format);
	if ((ret = attach_samples(d, &login, err)))
		return ret;
	print_table(d);
	return specify_session_logout(d->s, err);
}

static void demo_free(struct demo *d)
{
	batch_plan_free(d->plan);
	catalog_format_free(d->fmt);
	specify_session_free(d->s);
	standin_stop(d->st);
	journal_close(d->j);
	if (d->jpath) {
		char *side;
		const char *ext[] = { "", "-wal", "-shm" };
		for (int i = 0; i < 3; i++)
			if (asprintf(&side, "%s%s", d->jpath, ext[i]) >= 0) {
				unlink(side);
				free(side);
			}
		rmdir(d->dir);
	}
	free(d->jpath);
	free(d->taxa);
	free(d->results);
}

int cmd_demo(int argc, char **argv)
{
	struct demo d = { 0 };
	cs_error err = { 0 };
	int ret;

	if (argc > 1) {
		bool help = strcmp(argv[1], "--help") == 0;
		fputs("usage: copystand demo\n"
		      "Attaches the bundled sample images to a bundled stand-in "
		      "Specify on loopback, as copystand upload would, and prints "
		      "what got attached.\n", help ? stdout : stderr);
		return help ? 0 : 2;
	}
	ret = run(&d, &err);
	demo_free(&d);
	if (ret) {
		fprintf(stderr, "copystand demo: %s\n", err.msg);
		return 1;
	}
	return 0;
}
