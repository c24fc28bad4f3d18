#include "lookup.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lookup {
	lookup_record *v;
	size_t n, cap;
	size_t nsorted;         /* the first nsorted records are by id */
	const char *attachments_key;
};

/* A record of the query builder's reply: one row per attachment. */
struct row {
	long long id, join_id;
	const char *value;      /* borrowed: a wanted value or the reply's */
	char *own_value;
	char *name;
};

/* What lookup_run is asked for and what the query brought back. */
struct ask {
	lookup *l;
	const char **v;         /* unique values, sorted without case */
	size_t n;
	const char **digits;    /* the all-digit ones, by number */
	size_t ndigits;
	struct row *rows;
	size_t nrows, caprows;
	bool unmapped;          /* a reply value matched none of v */
};

/* "000123" and "123" are one number: compare without leading zeros. */
static const char *unpadded(const char *v)
{
	while (v[0] == '0' && v[1])
		v++;
	return v;
}

static bool all_digits(const char *v)
{
	return *v && strspn(v, "0123456789") == strlen(v);
}

static int cmp_number(const void *a, const void *b)
{
	const char *x = unpadded(*(const char *const *)a);
	const char *y = unpadded(*(const char *const *)b);
	size_t lx = strlen(x), ly = strlen(y);

	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

static int cmp_row(const void *a, const void *b)
{
	const struct row *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->join_id < y->join_id ? -1 : x->join_id > y->join_id;
}

static void record_clear(lookup_record *r)
{
	for (int k = 0; k < r->nattachments; k++)
		free((char *)r->attachment_names[k]);
	free((void *)r->attachment_names);
	free((void *)r->attachment_ids);
	free((char *)r->value);
}

static int cmp_record_id(const void *key, const void *rec)
{
	long long id = *(const long long *)key, other = ((const lookup_record *)rec)->id;

	return id < other ? -1 : id > other;
}

/* Only the query's records can meet the REST API's again. */
static bool has_record(const lookup *l, long long id)
{
	return l->nsorted && bsearch(&id, l->v, l->nsorted, sizeof *l->v, cmp_record_id);
}

/* A new record with room for nnames attachments. */
static lookup_record *record_add(lookup *l, const char *value, long long id,
				 size_t nnames)
{
	lookup_record *r;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		lookup_record *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	r = &l->v[l->n];
	memset(r, 0, sizeof *r);
	r->value = strdup(value);
	r->id = id;
	r->attachment_names = calloc(nnames + 1, sizeof *r->attachment_names);
	r->attachment_ids = calloc(nnames + 1, sizeof *r->attachment_ids);
	if (!r->value || !r->attachment_names || !r->attachment_ids) {
		record_clear(r);
		return NULL;
	}
	l->n++;
	return r;
}

static int add_attachment(lookup_record *r, long long join_id, const char *name)
{
	const char *copy = strdup(name ? name : "");

	if (!copy)
		return CS_E_NOMEM;
	((long long *)r->attachment_ids)[r->nattachments] = join_id;
	((const char **)r->attachment_names)[r->nattachments++] = copy;
	return 0;
}

/* The "id" of a REST object: 1 to 2^53 (what a double holds exactly), else
 * 0, never a cast of NaN or of a huge value. */
static long long row_id(const cJSON *object)
{
	double id = cJSON_GetNumberValue(cJSON_GetObjectItem(object, "id"));

	return id >= 1 && id <= 9007199254740992.0 ? (long long)id : 0;
}

/* A whole record from the REST API, its join rows inside. */
static int on_record(void *ud, const char *value, const cJSON *record)
{
	lookup *l = ud;
	const cJSON *joins = cJSON_GetObjectItem(record, l->attachments_key), *jr;
	long long id = row_id(record);
	lookup_record *r;

	/* A record without a usable id cannot be attached to: skip it. */
	if (!id || has_record(l, id))
		return 0;
	if (!(r = record_add(l, value, id, (size_t)cJSON_GetArraySize(joins))))
		return CS_E_NOMEM;
	cJSON_ArrayForEach(jr, joins) {
		const cJSON *att = cJSON_GetObjectItem(jr, "attachment");
		if (add_attachment(r, row_id(jr),
				   cJSON_GetStringValue(cJSON_GetObjectItem(att, "origfilename"))))
			return CS_E_NOMEM;
	}
	return 0;
}

/* The value asked for that a displayed one stands for: itself (the
 * database compares without case), else the one number it is without
 * its zeros ("123" for 000000123 under CatalogNumberNumeric). */
static const char *asked_for(const struct ask *a, const char *shown)
{
	const char **hit = bsearch(&shown, a->v, a->n, sizeof *a->v, specify_value_cmp);

	if (hit)
		return *hit;
	if (!all_digits(shown))
		return NULL;
	hit = bsearch(&shown, a->digits, a->ndigits, sizeof *a->digits, cmp_number);
	if (!hit)
		return NULL;
	/* Two values asked for with this number: no telling which. */
	if ((hit > a->digits && cmp_number(hit - 1, hit) == 0) ||
	    (hit + 1 < a->digits + a->ndigits && cmp_number(hit + 1, hit) == 0))
		return NULL;
	return *hit;
}

static int on_row(void *ud, const specify_match_row *row)
{
	struct ask *a = ud;
	const char *value = asked_for(a, row->value);
	struct row *r;

	if (!value) {
		a->unmapped = true;
		return 0;
	}
	if (a->nrows == a->caprows) {
		size_t cap = a->caprows ? a->caprows * 2 : 256;
		struct row *v = realloc(a->rows, cap * sizeof *v);
		if (!v)
			return CS_E_NOMEM;
		a->rows = v;
		a->caprows = cap;
	}
	r = &a->rows[a->nrows];
	*r = (struct row){ .id = row->id, .join_id = row->join_id, .value = value };
	/* Matched without case: keep the value as stored. */
	if (strcmp(value, row->value) != 0 && strcasecmp(value, row->value) == 0 &&
	    !(r->value = r->own_value = strdup(row->value)))
		return CS_E_NOMEM;
	if (row->join_id && !(r->name = strdup(row->origfilename))) {
		free(r->own_value);
		return CS_E_NOMEM;
	}
	a->nrows++;
	return 0;
}

/* Rows by record, each record's attachments once. */
static int records_from_rows(struct ask *a)
{
	if (a->nrows)
		qsort(a->rows, a->nrows, sizeof *a->rows, cmp_row);
	for (size_t i = 0, j; i < a->nrows; i = j) {
		lookup_record *r;

		for (j = i; j < a->nrows && a->rows[j].id == a->rows[i].id; j++)
			;
		if (!(r = record_add(a->l, a->rows[i].value, a->rows[i].id, j - i)))
			return CS_E_NOMEM;
		for (size_t k = i; k < j; k++)
			if (a->rows[k].join_id && (k == i || a->rows[k].join_id != a->rows[k - 1].join_id) &&
			    add_attachment(r, a->rows[k].join_id, a->rows[k].name))
				return CS_E_NOMEM;
	}
	a->l->nsorted = a->l->n;
	return 0;
}

static void ask_clear(struct ask *a)
{
	for (size_t i = 0; i < a->nrows; i++) {
		free(a->rows[i].own_value);
		free(a->rows[i].name);
	}
	free(a->rows);
	free(a->v);
	free(a->digits);
}

/* The values the records found have, sorted without case. */
static const char **found_values(const lookup *l)
{
	const char **v = calloc(l->n + 1, sizeof *v);

	for (size_t i = 0; v && i < l->n; i++)
		v[i] = l->v[i].value;
	if (v)
		qsort(v, l->n, sizeof *v, specify_value_cmp);
	return v;
}

/* Values the query builder cannot take: "in" splits on commas, and reads
 * "a-b" as a range under catalog-number formats. */
static bool queryable(const struct match_target *t, const char *v)
{
	return !strchr(v, ',') && !(t->catalog_format && strchr(v, '-'));
}

/* One query-builder request per few thousand values, as Specify's own
 * importer does; the REST API for what a query cannot ask, for users who
 * may not run queries, and for what a reply shows in a form not asked
 * (checked the slower way rather than guessed). */
static int run(specify_session *s, const struct match_target *t, struct ask *a,
	       cs_error *err)
{
	const char **q = calloc(a->n + 1, sizeof *q), **rest = calloc(a->n + 1, sizeof *rest);
	size_t nq = 0, nrest = 0;
	int ret = 0;

	if (!q || !rest) {
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < a->n; i++)
		if (queryable(t, a->v[i]))
			q[nq++] = a->v[i];
		else
			rest[nrest++] = a->v[i];
	if (nq)
		ret = specify_match_query(s, t, q, nq, on_row, a, err);
	if (ret == CS_E_ACCESS) {
		ret = 0;
		a->unmapped = true;
	}
	if (ret == CS_E_NOMEM)
		cs_error_set(err, ret, "out of memory");
	if (ret == 0 && (ret = records_from_rows(a)))
		cs_error_set(err, ret, "out of memory");
	if (ret == 0 && a->unmapped) {
		const char **got = found_values(a->l);
		if (!got) {
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < nq; i++)
			if (!bsearch(&q[i], got, a->l->n, sizeof *got, specify_value_cmp))
				rest[nrest++] = q[i];
		free(got);
	}
	if (ret == 0 && nrest) {
		ret = specify_records_lookup(s, t->table, t->field, rest, nrest,
					     on_record, a->l, err);
		if (ret == CS_E_NOMEM)
			cs_error_set(err, ret, "out of memory");
	}
out:
	free(q);
	free(rest);
	return ret;
}

int lookup_run(specify_session *s, const struct match_target *t,
	       const char *const *values, size_t n, lookup **out, cs_error *err)
{
	struct ask a = { .l = calloc(1, sizeof *a.l) };
	int ret;

	*out = NULL;
	a.v = calloc(n + 1, sizeof *a.v);
	a.digits = calloc(n + 1, sizeof *a.digits);
	if (!a.l || !a.v || !a.digits) {
		free(a.l);
		ask_clear(&a);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	a.l->attachments_key = t->attachments_key;
	a.n = specify_values_unique(values, n, a.v);
	for (size_t i = 0; i < a.n; i++)
		if (all_digits(a.v[i]))
			a.digits[a.ndigits++] = a.v[i];
	qsort(a.digits, a.ndigits, sizeof *a.digits, cmp_number);
	ret = run(s, t, &a, err);
	ask_clear(&a);
	if (ret) {
		lookup_free(a.l);
		return ret;
	}
	*out = a.l;
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
