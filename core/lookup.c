#include "lookup.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lookup {
	lookup_record *v;
	size_t n, cap;
	const char *attachments_key;
};

static void record_clear(lookup_record *r)
{
	for (int k = 0; k < r->nattachments; k++)
		free((char *)r->attachment_names[k]);
	free((void *)r->attachment_names);
	free((char *)r->value);
}

static int on_record(void *ud, const char *value, const cJSON *record)
{
	lookup *l = ud;
	const cJSON *joins = cJSON_GetObjectItem(record, l->attachments_key), *jr;
	const char **names;
	double id = cJSON_GetNumberValue(cJSON_GetObjectItem(record, "id"));
	lookup_record *r;

	/* A record without a usable id cannot be attached to: skip it. */
	if (!(id >= 1 && id <= 9007199254740992.0))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		lookup_record *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return CS_E_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	r = &l->v[l->n];
	memset(r, 0, sizeof *r);
	names = calloc((size_t)cJSON_GetArraySize(joins) + 1, sizeof *names);
	r->value = strdup(value);
	r->id = (long long)id;
	r->attachment_names = names;
	if (!r->value || !names) {
		record_clear(r);
		return CS_E_NOMEM;
	}
	cJSON_ArrayForEach(jr, joins) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(
			cJSON_GetObjectItem(jr, "attachment"), "origfilename"));
		names[r->nattachments] = strdup(name ? name : "");
		if (names[r->nattachments])
			r->nattachments++;
	}
	l->n++;
	return 0;
}

int lookup_run(specify_session *s, const struct match_target *t,
	       const char *const *values, size_t n, lookup **out, cs_error *err)
{
	lookup *l = calloc(1, sizeof *l);
	int ret;

	*out = NULL;
	if (!l)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	l->attachments_key = t->attachments_key;
	ret = specify_records_lookup(s, t->table, t->field, values, n, on_record, l, err);
	if (ret == CS_E_NOMEM)
		cs_error_set(err, ret, "out of memory");
	if (ret) {
		lookup_free(l);
		return ret;
	}
	*out = l;
	return 0;
}

int lookup_find(const lookup *l, const char *identifier,
		const lookup_record **hits, int max)
{
	int n = 0;

	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].value, identifier) == 0) {
			if (n < max)
				hits[n] = &l->v[i];
			n++;
		}
	return n;
}

void lookup_free(lookup *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		record_clear(&l->v[i]);
	free(l->v);
	free(l);
}
