/* copystand demo: the main job on embedded defaults.  Starts the bundled
 * Specify stand-in on loopback, attaches the bundled sample folder to its
 * records through the real client, and prints what got attached. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "cli.h"
#include "commands.h"
#include "specify.h"
#include "standin.h"

#ifndef COPYSTAND_SAMPLES
#error "COPYSTAND_SAMPLES must name the bundled sample folder"
#endif

#define MAX_FILES 64

struct item {
	char *name;
	char *path;
	char *number;          /* canonical catalog number, or NULL */
	long long record_id;
	int ordinal;           /* next free ordinal on that record */
	char taxon_id[24];     /* of the current determination */
	char taxon[128];
	char status[160];
};

struct demo {
	struct item items[MAX_FILES];
	size_t n;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->name, ((const struct item *)b)->name);
}

static int read_samples(struct demo *d, const char *dir, cs_error *err)
{
	DIR *dp = opendir(dir);
	struct dirent *e;

	if (!dp)
		return cs_error_set(err, CS_E_IO, "cannot open the sample folder %s", dir);
	while ((e = readdir(dp)) && d->n < MAX_FILES) {
		struct item *it = &d->items[d->n];
		if (e->d_name[0] == '.' || !strstr(e->d_name, ".jpg"))
			continue;
		it->name = strdup(e->d_name);
		if (!it->name || asprintf(&it->path, "%s/%s", dir, e->d_name) < 0) {
			closedir(dp);
			return cs_error_set(err, CS_E_NOMEM, "out of memory");
		}
		d->n++;
	}
	closedir(dp);
	qsort(d->items, d->n, sizeof d->items[0], by_name);
	return 0;
}

static void resolve_names(struct demo *d, const struct catalog_format *fmt)
{
	for (size_t i = 0; i < d->n; i++) {
		struct item *it = &d->items[i];
		struct catalog_candidates *c = NULL;
		cs_error err = { 0 };

		if (catalog_resolve_filename(fmt, it->name, &c, &err)) {
			snprintf(it->status, sizeof it->status, "skipped: %s", err.msg);
			continue;
		}
		it->number = strdup(catalog_candidates_identifier(c, 0));
		catalog_candidates_free(c);
	}
}

/* Current determination's taxon URI → record id, for the taxon lookup. */
static long long current_taxon(const cJSON *record)
{
	const cJSON *det;

	cJSON_ArrayForEach(det, cJSON_GetObjectItem(record, "determinations")) {
		const char *uri = cJSON_GetStringValue(cJSON_GetObjectItem(det, "taxon"));
		if (cJSON_IsTrue(cJSON_GetObjectItem(det, "iscurrent")) && uri) {
			const char *id = strstr(uri, "/taxon/");
			return id ? atoll(id + 7) : 0;
		}
	}
	return 0;
}

static int on_record(void *ud, const char *value, const cJSON *record)
{
	struct demo *d = ud;
	long long id = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(record, "id"));
	int ordinal = cJSON_GetArraySize(cJSON_GetObjectItem(record, "collectionobjectattachments"));

	for (size_t i = 0; i < d->n; i++) {
		struct item *it = &d->items[i];
		if (it->number && strcmp(it->number, value) == 0) {
			it->record_id = id;
			it->ordinal = ordinal;
			snprintf(it->taxon_id, sizeof it->taxon_id, "%lld", current_taxon(record));
		}
	}
	return 0;
}

static int on_taxon(void *ud, const char *value, const cJSON *record)
{
	struct demo *d = ud;
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(record, "fullname"));

	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->items[i].taxon_id, value) == 0)
			snprintf(d->items[i].taxon, sizeof d->items[i].taxon, "%s",
				 name ? name : "?");
	return 0;
}

static int look_up(specify_session *s, struct demo *d, cs_error *err)
{
	const char *values[MAX_FILES];
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].number)
			values[n++] = d->items[i].number;
	if ((ret = specify_records_lookup(s, "collectionobject", "catalognumber",
					  values, n, on_record, d, err)))
		return ret;
	n = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (d->items[i].number && !d->items[i].record_id)
			snprintf(d->items[i].status, sizeof d->items[i].status,
				 "skipped: no record %s in this collection",
				 d->items[i].number);
		if (d->items[i].record_id)
			values[n++] = d->items[i].taxon_id;
	}
	return specify_records_lookup(s, "taxon", "id", values, n, on_taxon, d, err);
}

static void upload_one(specify_session *s, struct item *it,
		       const specify_reservation *r)
{
	specify_attached done;
	cs_error err = { 0 };
	specify_attachment a = {
		.table = "collectionobject", .record_id = it->record_id,
		.ordinal = it->ordinal, .location = r->location,
		.mimetype = "image/jpeg", .origfilename = it->name, .title = it->name,
	};

	if (specify_asset_upload(s, it->path, it->name, "image/jpeg", r->location,
				 r->token, &err) ||
	    specify_attachment_create(s, &a, &done, &err)) {
		snprintf(it->status, sizeof it->status, "failed: %s", err.msg);
		return;
	}
	snprintf(it->status, sizeof it->status, "attached (join row %lld)", done.join_id);
}

static int upload_all(specify_session *s, struct demo *d, cs_error *err)
{
	specify_reservation res[MAX_FILES];
	const char *names[MAX_FILES];
	struct item *todo[MAX_FILES];
	size_t n = 0;
	int ret;

	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].record_id) {
			todo[n] = &d->items[i];
			names[n++] = d->items[i].name;
		}
	if ((ret = specify_locations_reserve(s, names, n, res, err)))
		return ret;
	for (size_t i = 0; i < n; i++) {
		/* Further views of one record follow its first. */
		for (size_t j = 0; j < i; j++)
			if (todo[j]->record_id == todo[i]->record_id)
				todo[i]->ordinal++;
		upload_one(s, todo[i], &res[i]);
	}
	return 0;
}

static void print_table(const struct demo *d)
{
	printf("\n%-18s %-11s %-8s %-20s %s\n", "file", "catalog no.", "record",
	       "taxon", "result");
	for (size_t i = 0; i < d->n; i++) {
		const struct item *it = &d->items[i];
		char rec[24] = "-";
		if (it->record_id)
			snprintf(rec, sizeof rec, "%lld", it->record_id);
		printf("%-18s %-11s %-8s %-20s %s\n", it->name,
		       it->number ? it->number : "-", rec,
		       it->record_id ? it->taxon : "-", it->status);
	}
}

static int run(struct demo *d, cs_error *err)
{
	struct catalog_format *fmt = NULL;
	specify_session *s = NULL;
	standin *st = NULL;
	int ret;

	if ((ret = standin_start(NULL, &st, err)))
		return ret;
	specify_login login = {
		.server = standin_url(st), .user = "spadmin", .password = "testpass",
		.collection = "Fish",
	};
	if ((ret = specify_session_login(&login, &s, err)))
		goto out;
	const specify_info *info = specify_session_info(s);
	printf("Specify stand-in at %s: user %s (agent %s), collection %s, "
	       "catalog numbers %s\n", info->server, info->user, info->agent,
	       info->collection, info->catalog_format);
	if ((ret = cli_catalog_format(s, &fmt, err)) ||
	    (ret = read_samples(d, COPYSTAND_SAMPLES, err)))
		goto out;
	printf("Attaching the %zu images of %s\n", d->n, COPYSTAND_SAMPLES);
	resolve_names(d, fmt);
	if ((ret = look_up(s, d, err)) || (ret = upload_all(s, d, err)))
		goto out;
	print_table(d);
	ret = specify_session_logout(s, err);
out:
	catalog_format_free(fmt);
	specify_session_free(s);
	standin_stop(st);
	return ret;
}

int cmd_demo(int argc, char **argv)
{
	struct demo d = { 0 };
	cs_error err = { 0 };
	int ret;

	if (argc > 1) {
		fputs("usage: copystand demo\n"
		      "Attaches the bundled sample images to a bundled stand-in "
		      "Specify on loopback and prints what got attached.\n",
		      strcmp(argv[1], "--help") == 0 ? stdout : stderr);
		return strcmp(argv[1], "--help") == 0 ? 0 : 2;
	}
	ret = run(&d, &err);
	for (size_t i = 0; i < d.n; i++) {
		free(d.items[i].name);
		free(d.items[i].path);
		free(d.items[i].number);
	}
	if (ret) {
		fprintf(stderr, "copystand demo: %s\n", err.msg);
		return 1;
	}
	return 0;
}
