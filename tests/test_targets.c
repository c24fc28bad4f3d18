/* The match targets: Specify's importer paths as data. */
#include <string.h>
#include <strings.h>

#include "tap.h"
#include "targets.h"

static bool unique(const char *(*get)(const struct match_target *))
{
	size_t n = match_target_count();

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcasecmp(get(match_target_at(i)), get(match_target_at(j))) == 0)
				return false;
	return true;
}

static const char *name_of(const struct match_target *t) { return t->name; }
static const char *key_of(const struct match_target *t) { return t->path_key; }

int main(void)
{
	const struct match_target *t;
	size_t n = match_target_count(), formatted = 0, well_formed = 0;

	/* importPaths.ts at Specify 7.12 has 27 entries. */
	tap_is_int((long long)n, 27, "all of Specify's import paths");
	tap_ok(unique(name_of), "our names are unique");
	tap_ok(unique(key_of), "staticPathKeys are unique");
	for (size_t i = 0; i < n; i++) {
		char join[64];
		t = match_target_at(i);
		snprintf(join, sizeof join, "%sattachment", t->table);
		formatted += t->catalog_format;
		well_formed += strcmp(t->join_table, join) == 0 &&
			       strcasecmp(t->field, t->field_camel) == 0 &&
			       t->table_id > 0 && t->join_table_id > 0 && t->max_length > 0;
	}
	tap_is_int((long long)well_formed, (long long)n, "every row is consistent");
	tap_is_int((long long)formatted, 1, "only the catalog number takes the catalog format");
	tap_ok(match_target_at(n) == NULL, "past the end");

	t = match_target_find("catalog-number");
	tap_ok(t && t->catalog_format && t->table_id == 1 && t->join_table_id == 111,
	       "catalog-number");
	tap_is_str(t ? t->attachments_key : NULL, "collectionobjectattachments",
		   "its attachments key");
	t = match_target_find("PREPARATIONBARCODE");
	tap_is_str(t ? t->name : NULL, "preparation-barcode", "found by staticPathKey");
	tap_is_str(t ? t->field : NULL, "barcode", "REST field name");
	t = match_target_find("field-notebook-page-description");
	tap_is_str(t ? t->attachments_key : NULL, "attachments",
		   "field notebook pages keep their join rows in 'attachments'");
	tap_ok(match_target_find("nope") == NULL, "unknown name");
	tap_ok(match_target_find(NULL) == NULL, "NULL name");
	return tap_done();
}
