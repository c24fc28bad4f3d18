#include "report.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>

#include "metadata.h"
#include "targets.h"

/* The longer side of a thumbnail made here (EXIF ones are shown as they
 * are, usually 160 px). */
#define THUMB_PX 320
/* A JPEG whose 1/8 scale is larger still is not decoded (a panorama of a
 * billion pixels would need that much memory): it gets a placeholder. */
#define MAX_SCALED_PIXELS (16u << 20)

/* --- what a person sees of a state ----------------------------------------- */

/* Most urgent first: a card with several states shows them in this order
 * and takes the colour of the first.  Colour and word both, so a report
 * printed in greyscale still says it. */
enum look { L_FAILED, L_HELD, L_AMBIGUOUS, L_UNMATCHED, L_QUEUED, L_ROLLED_BACK,
	    L_LOCAL, L_ATTACHED, L_COUNT };

static const struct {
	const char *cls, *word, *colour;
} looks[L_COUNT] = {
	[L_FAILED] = { "failed", "✗ failed", "#c62828" },
	[L_HELD] = { "held", "held", "#8a6100" },
	[L_AMBIGUOUS] = { "ambiguous", "ambiguous", "#6f42c1" },
	[L_UNMATCHED] = { "unmatched", "unmatched", "#d9480f" },
	[L_QUEUED] = { "queued", "queued", "#0b5cd5" },
	[L_ROLLED_BACK] = { "rolled_back", "rolled back", "#44546a" },
	[L_LOCAL] = { "local", "kept local", "#0a7b83" },
	[L_ATTACHED] = { "attached", "✓ attached", "#1a7f37" },
};

static enum look look_of(enum journal_state s)
{
	switch (s) {
	case JS_ATTACHED: return L_ATTACHED;
	case JS_UNMATCHED: return L_UNMATCHED;
	case JS_AMBIGUOUS: return L_AMBIGUOUS;
	case JS_HELD: return L_HELD;
	case JS_FAILED: return L_FAILED;
	case JS_ROLLED_BACK: return L_ROLLED_BACK;
	case JS_LOCAL: return L_LOCAL;
	default: return L_QUEUED;
	}
}

/* --- the report's data -------------------------------------------------------- */

struct card {
	size_t first, n;             /* its files: items[first .. first + n) */
	const journal_item *lead;    /* the file whose record the card shows */
	const journal_batch *batch;  /* lead's */
	bool ask;                    /* a collection object of the session's Specify */
	bool found;                  /* Specify returned it */
	char *catalog;               /* its catalog number, from Specify */
	long long taxon_id;
	char *taxon;                 /* the current determination's full name */
	const char *taxon_note;      /* why there is none, or NULL */
};

struct report {
	long long batch;
	char *folder;                /* absolute, without a trailing slash */
	journal_item *items;
	size_t n, cap;
	struct card *cards;
	size_t ncards;
	journal_batch *batches;      /* of the items, by id */
	size_t nbatches;
	char *taxa_from;             /* the collection taxa came from */
	char *taxa_why;              /* why taxa are unknown */
};

static const char TAXON_UNREACHABLE[] = "taxon unknown (Specify unreachable)";
static const char TAXON_REFUSED[] = "taxon unknown";
static const char TAXON_NOT_ASKED[] = "taxon unknown (not looked up)";
static const char TAXON_ELSEWHERE[] = "taxon not looked up (a batch of another "
				      "server or collection)";

static bool in_folder(const char *folder, const char *path)
{
	size_t n = strlen(folder);
	return strncmp(path, folder, n) == 0 && path[n] == '/';
}

/* The path as stored, or where it resolves from here (a relative path,
 * a symlinked folder). */
static bool item_in_folder(const char *folder, const char *path)
{
	char *dir, *slash, real[PATH_MAX];
	bool in;

	if (in_folder(folder, path))
		return true;
	if (!(dir = strdup(path)))
		return false;
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	in = realpath(slash ? (*dir ? dir : "/") : ".", real) &&
	     (strcmp(real, folder) == 0 || in_folder(folder, real));
	free(dir);
	return in;
}

static int collect(void *ud, const journal_item *it)
{
	report *r = ud;
	journal_item *c;

	if (r->folder && !item_in_folder(r->folder, it->path))
		return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		journal_item *v = realloc(r->items, cap * sizeof *v);
		if (!v)
			return CS_E_NOMEM;
		r->items = v;
		r->cap = cap;
	}
	c = &r->items[r->n++];
	*c = (journal_item){
		.id = it->id, .batch_id = it->batch_id, .record_id = it->record_id,
		.state = it->state,
		.path = strdup(it->path),
		.name = it->name ? strdup(it->name) : NULL,
		.target = it->target ? strdup(it->target) : NULL,
		.identifier = it->identifier ? strdup(it->identifier) : NULL,
		.record_table = it->record_table ? strdup(it->record_table) : NULL,
		.reason = it->reason ? strdup(it->reason) : NULL,
	};
	if (!c->path || (it->name && !c->name) || (it->target && !c->target) ||
	    (it->identifier && !c->identifier) ||
	    (it->record_table && !c->record_table) || (it->reason && !c->reason))
		return CS_E_NOMEM;
	return 0;
}

/* The path without its extension: RAW and JPEG of one shot share it. */
static size_t stem_len(const char *path)
{
	const char *base = strrchr(path, '/'), *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	return dot && dot > base ? (size_t)(dot - path) : strlen(path);
}

static int cmp_path_id(const void *a, const void *b)
{
	const journal_item *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

static bool same_stem(const char *a, const char *b)
{
	size_t n = stem_len(a);
	return n == stem_len(b) && memcmp(a, b, n) == 0;
}

static int cmp_stem_id(const void *a, const void *b)
{
	const journal_item *x = a, *y = b;
	size_t lx = stem_len(x->path), ly = stem_len(y->path);
	int c = memcmp(x->path, y->path, lx < ly ? lx : ly);

	if (c == 0)
		c = (lx > ly) - (lx < ly);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int cmp_card_order(const void *a, const void *b, void *items)
{
	const journal_item *v = items;
	long long x = v[((const struct card *)a)->first].id;
	long long y = v[((const struct card *)b)->first].id;
	return (x > y) - (x < y);
}

static int cmp_batch(const void *a, const void *b)
{
	long long x = ((const journal_batch *)a)->id, y = ((const journal_batch *)b)->id;
	return (x > y) - (x < y);
}

static const journal_batch *batch_of(const report *r, long long id)
{
	journal_batch key = { .id = id };
	return bsearch(&key, r->batches, r->nbatches, sizeof key, cmp_batch);
}

/* A file journaled again (uploaded anew after a rollback) shows as it is
 * now: its newest item. */
static void keep_newest(report *r)
{
	size_t k = 0;

	qsort(r->items, r->n, sizeof *r->items, cmp_path_id);
	for (size_t i = 0; i < r->n; i++) {
		if (i + 1 < r->n && strcmp(r->items[i].path, r->items[i + 1].path) == 0)
			journal_item_clear(&r->items[i]);
		else
			r->items[k++] = r->items[i];
	}
	r->n = k;
}

static int load_batches(report *r, journal *j, cs_error *err)
{
	int ret = 0;

	if (!(r->batches = calloc(r->n, sizeof *r->batches)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	for (size_t i = 0; i < r->n && ret == 0; i++) {
		if (batch_of(r, r->items[i].batch_id))
			continue;
		ret = journal_batch_get(j, r->items[i].batch_id, &r->batches[r->nbatches], err);
		if (ret == 0)
			r->nbatches++;
		qsort(r->batches, r->nbatches, sizeof *r->batches, cmp_batch);
	}
	return ret;
}

/* Files sharing a stem become one card; cards in capture order. */
static int make_cards(report *r, cs_error *err)
{
	qsort(r->items, r->n, sizeof *r->items, cmp_stem_id);
	if (!(r->cards = calloc(r->n, sizeof *r->cards)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	for (size_t i = 0; i < r->n; i++) {
		const journal_item *it = &r->items[i];
		if (i == 0 || !same_stem(r->items[i - 1].path, it->path))
			r->cards[r->ncards++] = (struct card){ .first = i, .lead = it };
		struct card *c = &r->cards[r->ncards - 1];
		c->n++;
		/* The card shows the record of its first file that has one. */
		if (it->record_id > 0 && c->lead->record_id <= 0)
			c->lead = it;
	}
	for (size_t i = 0; i < r->ncards; i++) {
		r->cards[i].batch = batch_of(r, r->cards[i].lead->batch_id);
		if (r->cards[i].lead->record_id > 0 && r->cards[i].lead->record_table &&
		    strcmp(r->cards[i].lead->record_table, "collectionobject") == 0)
			r->cards[i].taxon_note = TAXON_NOT_ASKED;
	}
	qsort_r(r->cards, r->ncards, sizeof *r->cards, cmp_card_order, r->items);
	return 0;
}

/* The folder as the journal would name it: resolved when it exists. */
static char *absolute_folder(const char *folder)
{
	char real[PATH_MAX], cwd[PATH_MAX], *out = NULL;
	size_t n;

	if (realpath(folder, real))
		out = strdup(real);
	else if (folder[0] == '/')
		out = strdup(folder);
	else if (getcwd(cwd, sizeof cwd) && asprintf(&out, "%s/%s", cwd, folder) < 0)
		out = NULL;
	for (n = out ? strlen(out) : 0; n > 0 && out[n - 1] == '/'; n--)
		out[n - 1] = '\0';
	return out;
}

int report_open(journal *j, const report_options *o, report **out, cs_error *err)
{
	report *r = calloc(1, sizeof *r);
	journal_batch b = { 0 };
	struct stat st;
	int ret = 0;

	*out = NULL;
	if (!r)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	r->batch = o->batch;
	if (o->batch)
		ret = journal_batch_get(j, o->batch, &b, err);
	else if (!o->folder || !(r->folder = absolute_folder(o->folder)))
		ret = cs_error_set(err, o->folder ? CS_E_NOMEM : CS_E_INVALID,
				   o->folder ? "out of memory" : "name a batch or a folder");
	else if (stat(o->folder, &st) == 0 && !S_ISDIR(st.st_mode))
		ret = cs_error_set(err, CS_E_INVALID, "%s is not a folder: name a "
				   "session folder, or a batch (copystand batches lists them)",
				   o->folder);
	journal_batch_clear(&b);
	if (ret == 0) {
		ret = journal_items_each(j, o->batch, -1, collect, r, err);
		if (ret == CS_E_NOMEM)
			cs_error_set(err, ret, "out of memory");
	}
	if (ret == 0 && r->n == 0) {
		if (o->batch)
			ret = cs_error_set(err, CS_E_NOT_FOUND, "batch %lld holds no "
					   "files: nothing to report", o->batch);
		else
			ret = cs_error_set(err, CS_E_NOT_FOUND, "no file of the journal "
					   "lies in %s: upload it first (copystand upload %s)",
					   r->folder, o->folder);
	}
	if (ret == 0) {
		keep_newest(r);
		ret = load_batches(r, j, err);
	}
	if (ret == 0)
		ret = make_cards(r, err);
	if (ret) {
		report_free(r);
		return ret;
	}
	*out = r;
	return 0;
}

const journal_batch *report_batch(const report *r)
{
	return &r->batches[r->nbatches - 1];
}

size_t report_counts(const report *r, long long counts[JS_COUNT])
{
	memset(counts, 0, JS_COUNT * sizeof *counts);
	for (size_t i = 0; i < r->n; i++)
		counts[r->items[i].state]++;
	return r->ncards;
}

void report_free(report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		journal_item_clear(&r->items[i]);
	for (size_t i = 0; i < r->nbatches; i++)
		journal_batch_clear(&r->batches[i]);
	for (size_t i = 0; i < r->ncards; i++) {
		free(r->cards[i].catalog);
		free(r->cards[i].taxon);
	}
	free(r->items);
	free(r->batches);
	free(r->cards);
	free(r->folder);
	free(r->taxa_from);
	free(r->taxa_why);
	free(r);
}

/* --- taxa ------------------------------------------------------------------------ */

/* The cards by a key (a record or a taxon id), for the lookups' callbacks,
 * and each key once as text, to ask for. */
struct refs {
	struct ref { long long key; struct card *card; } *v;
	size_t n;
	char (*text)[24];
	const char **values;
	size_t nvalues;
};

static int cmp_ref(const void *a, const void *b)
{
	long long x = ((const struct ref *)a)->key, y = ((const struct ref *)b)->key;
	return (x > y) - (x < y);
}

static void refs_free(struct refs *rs)
{
	free(rs->v);
	free(rs->text);
	free(rs->values);
}

static int refs_make(report *r, bool by_taxon, struct refs *rs)
{
	*rs = (struct refs){ 0 };
	rs->v = calloc(r->ncards + 1, sizeof *rs->v);
	rs->text = calloc(r->ncards + 1, sizeof *rs->text);
	rs->values = calloc(r->ncards + 1, sizeof *rs->values);
	if (!rs->v || !rs->text || !rs->values)
		return CS_E_NOMEM;
	for (size_t i = 0; i < r->ncards; i++) {
		struct card *c = &r->cards[i];
		long long key = !c->ask ? 0 : by_taxon ? c->taxon_id : c->lead->record_id;
		if (key > 0)
			rs->v[rs->n++] = (struct ref){ key, c };
	}
	qsort(rs->v, rs->n, sizeof *rs->v, cmp_ref);
	for (size_t i = 0; i < rs->n; i++) {
		if (i && rs->v[i].key == rs->v[i - 1].key)
			continue;
		snprintf(rs->text[rs->nvalues], sizeof rs->text[0], "%lld", rs->v[i].key);
		rs->values[rs->nvalues] = rs->text[rs->nvalues];
		rs->nvalues++;
	}
	return 0;
}

/* The refs with the key value names: [*first, *end). */
static void refs_find(const struct refs *rs, const char *value, struct ref **first,
		      struct ref **end)
{
	struct ref key = { .key = atoll(value) };
	struct ref *at = bsearch(&key, rs->v, rs->n, sizeof key, cmp_ref);

	*first = *end = at;
	while (at && *first > rs->v && (*first)[-1].key == key.key)
		(*first)--;
	while (at && *end < rs->v + rs->n && (*end)->key == key.key)
		(*end)++;
}

static int on_object(void *ud, const char *value, const cJSON *rec)
{
	const char *number = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "catalognumber"));
	struct ref *at, *end;
	long long taxon = 0;
	const cJSON *d;

	cJSON_ArrayForEach(d, cJSON_GetObjectItem(rec, "determinations")) {
		const char *uri = cJSON_GetStringValue(cJSON_GetObjectItem(d, "taxon"));
		const char *id = uri ? strstr(uri, "/taxon/") : NULL;
		if (cJSON_IsTrue(cJSON_GetObjectItem(d, "iscurrent")) && id)
			taxon = atoll(id + 7);
	}
	for (refs_find(ud, value, &at, &end); at != end; at++) {
		at->card->found = true;
		at->card->taxon_id = taxon;
		if (number && !at->card->catalog && !(at->card->catalog = strdup(number)))
			return CS_E_NOMEM;
	}
	return 0;
}

static int on_taxon(void *ud, const char *value, const cJSON *rec)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "fullname"));
	struct ref *at, *end;

	for (refs_find(ud, value, &at, &end); name && at != end; at++)
		if (!at->card->taxon && !(at->card->taxon = strdup(name)))
			return CS_E_NOMEM;
	return 0;
}

/* One batched lookup of table's records by id. */
static int lookup_ids(report *r, specify_session *s, const char *table, bool by_taxon,
		      specify_record_fn fn, cs_error *err)
{
	struct refs rs;
	int ret = refs_make(r, by_taxon, &rs);

	if (ret == 0 && rs.nvalues)
		ret = specify_records_lookup(s, table, "id", rs.values, rs.nvalues, fn, &rs, err);
	if (ret == CS_E_NOMEM)
		cs_error_set(err, ret, "out of memory");
	refs_free(&rs);
	return ret;
}

static bool same_specify(const journal_batch *b, const specify_info *in)
{
	if (!b || !b->server || strcmp(b->server, in->server) != 0)
		return false;
	if (b->collection_id)
		return b->collection_id == in->collection_id;
	return b->collection && (strcasecmp(b->collection, in->collection) == 0 ||
				 atoll(b->collection) == in->collection_id);
}

void report_taxa_unknown(report *r, const cs_error *why)
{
	const char *note = cs_error_is_transient(why->code) ? TAXON_UNREACHABLE : TAXON_REFUSED;

	free(r->taxa_why);
	r->taxa_why = strdup(why->msg);
	for (size_t i = 0; i < r->ncards; i++)
		if (r->cards[i].taxon_note == TAXON_NOT_ASKED || r->cards[i].ask)
			r->cards[i].taxon_note = note;
}

int report_lookup_taxa(report *r, specify_session *s, cs_error *err)
{
	const specify_info *in = specify_session_info(s);
	int ret;

	for (size_t i = 0; i < r->ncards; i++) {
		struct card *c = &r->cards[i];
		if (c->taxon_note != TAXON_NOT_ASKED)
			continue;
		c->ask = same_specify(c->batch, in);
		if (!c->ask)
			c->taxon_note = TAXON_ELSEWHERE;
	}
	if ((ret = lookup_ids(r, s, "collectionobject", false, on_object, err)) ||
	    (ret = lookup_ids(r, s, "taxon", true, on_taxon, err))) {
		report_taxa_unknown(r, err);
		return ret;
	}
	for (size_t i = 0; i < r->ncards; i++) {
		struct card *c = &r->cards[i];
		if (!c->ask)
			continue;
		c->taxon_note = !c->found ? "record not found in Specify (deleted?)" :
				!c->taxon_id ? "no current determination" :
				!c->taxon ? "taxon not found in Specify" : NULL;
	}
	free(r->taxa_from);
	r->taxa_from = strdup(in->collection);
	return 0;
}

/* --- thumbnails ------------------------------------------------------------------- */

struct jpeg_fail {
	struct jpeg_error_mgr mgr;
	jmp_buf jump;
};

/* libjpeg's default ends the process; a broken file only loses its preview. */
static void jpeg_error_exit(j_common_ptr c)
{
	longjmp(((struct jpeg_fail *)c->err)->jump, 1);
}

/* Library code does not print: warnings about a damaged file are dropped. */
static void jpeg_output_message(j_common_ptr c)
{
	(void)c;
}

/* The thumbnail of a card, and libjpeg's state while one is made: kept
 * outside the frames that call setjmp, so a longjmp leaves it valid for
 * thumb_clear. */
struct thumb {
	unsigned char *jpeg;         /* the JPEG to show, or NULL */
	size_t size;
	const char *missing;         /* why there is none */
	struct jpeg_fail fail;
	struct jpeg_decompress_struct d;
	struct jpeg_compress_struct c;
	bool d_made, c_made;
	FILE *in;
	unsigned char *pixels, *small;
	unsigned char *out;          /* jpeg_mem_dest's buffer */
	unsigned long out_size;
};

static void thumb_clear(struct thumb *t)
{
	if (t->d_made)
		jpeg_destroy_decompress(&t->d);
	if (t->c_made)
		jpeg_destroy_compress(&t->c);
	if (t->in)
		fclose(t->in);
	free(t->pixels);
	free(t->small);
	free(t->out);
	free(t->jpeg);
	memset(t, 0, sizeof *t);
}

static void fail_init(struct thumb *t)
{
	jpeg_std_error(&t->fail.mgr);
	t->fail.mgr.error_exit = jpeg_error_exit;
	t->fail.mgr.output_message = jpeg_output_message;
}

/* Decodes path at the smallest DCT scale that keeps THUMB_PX on the longer
 * side (1/8 for a camera's image) into t->pixels, RGB. */
static bool decode_scaled(struct thumb *t, const char *path, unsigned *w, unsigned *h)
{
	if (!(t->in = fopen(path, "rb")))
		return false;
	fail_init(t);
	t->d.err = &t->fail.mgr;
	if (setjmp(t->fail.jump))
		return false;
	jpeg_create_decompress(&t->d);
	t->d_made = true;
	jpeg_stdio_src(&t->d, t->in);
	jpeg_read_header(&t->d, TRUE);
	t->d.scale_num = 1;
	t->d.scale_denom = 8;
	while (t->d.scale_denom > 1 &&
	       (t->d.image_width > t->d.image_height ? t->d.image_width : t->d.image_height) /
	       t->d.scale_denom < THUMB_PX)
		t->d.scale_denom /= 2;
	t->d.out_color_space = JCS_RGB;
	jpeg_start_decompress(&t->d);
	*w = t->d.output_width;
	*h = t->d.output_height;
	if ((size_t)*w * *h > MAX_SCALED_PIXELS || !(t->pixels = malloc((size_t)*w * *h * 3)))
		return false;
	while (t->d.output_scanline < *h) {
		JSAMPROW row = t->pixels + (size_t)t->d.output_scanline * *w * 3;
		jpeg_read_scanlines(&t->d, &row, 1);
	}
	jpeg_finish_decompress(&t->d);
	return true;
}

/* Box filter: every source pixel counts once. */
static void shrink(const unsigned char *src, unsigned w, unsigned h,
		   unsigned char *dst, unsigned tw, unsigned th)
{
	for (unsigned y = 0; y < th; y++) {
		unsigned y0 = (unsigned)((unsigned long long)y * h / th);
		unsigned y1 = (unsigned)((unsigned long long)(y + 1) * h / th);
		for (unsigned x = 0; x < tw; x++) {
			unsigned x0 = (unsigned)((unsigned long long)x * w / tw);
			unsigned x1 = (unsigned)((unsigned long long)(x + 1) * w / tw);
			unsigned long sum[3] = { 0 }, n = (unsigned long)(x1 - x0) * (y1 - y0);
			for (unsigned yy = y0; yy < y1; yy++)
				for (unsigned xx = x0; xx < x1; xx++)
					for (int k = 0; k < 3; k++)
						sum[k] += src[((size_t)yy * w + xx) * 3 + k];
			for (int k = 0; k < 3; k++)
				dst[((size_t)y * tw + x) * 3 + k] = (unsigned char)(sum[k] / n);
		}
	}
}

static bool encode(struct thumb *t, const unsigned char *rgb, unsigned w, unsigned h)
{
	fail_init(t);
	t->c.err = &t->fail.mgr;
	if (setjmp(t->fail.jump))
		return false;
	jpeg_create_compress(&t->c);
	t->c_made = true;
	jpeg_mem_dest(&t->c, &t->out, &t->out_size);
	t->c.image_width = w;
	t->c.image_height = h;
	t->c.input_components = 3;
	t->c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&t->c);
	jpeg_set_quality(&t->c, 80, TRUE);
	jpeg_start_compress(&t->c, TRUE);
	while (t->c.next_scanline < h) {
		JSAMPROW row = (JSAMPROW)rgb + (size_t)t->c.next_scanline * w * 3;
		jpeg_write_scanlines(&t->c, &row, 1);
	}
	jpeg_finish_compress(&t->c);
	return true;
}

/* A thumbnail made from the image itself, for JPEGs without an EXIF one. */
static bool thumb_decode(struct thumb *t, const char *path)
{
	unsigned w, h, tw, th;
	const unsigned char *rgb;

	if (!decode_scaled(t, path, &w, &h))
		return false;
	tw = w;
	th = h;
	if (w > THUMB_PX || h > THUMB_PX) {
		tw = w >= h ? THUMB_PX : (unsigned)((unsigned long long)w * THUMB_PX / h);
		th = w >= h ? (unsigned)((unsigned long long)h * THUMB_PX / w) : THUMB_PX;
		tw += !tw;
		th += !th;
		if (!(t->small = malloc((size_t)tw * th * 3)))
			return false;
		shrink(t->pixels, w, h, t->small, tw, th);
	}
	rgb = t->small ? t->small : t->pixels;
	if (!encode(t, rgb, tw, th))
		return false;
	t->jpeg = t->out;
	t->size = t->out_size;
	t->out = NULL;
	return true;
}

static bool is_jpeg(const unsigned char *p, size_t n)
{
	return n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff;
}

static bool file_is_jpeg(const char *path)
{
	unsigned char head[3];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(head, 1, sizeof head, f) : 0;

	if (f)
		fclose(f);
	return is_jpeg(head, n);
}

/* The EXIF thumbnail of one of the card's JPEGs as it is; else one made
 * from the first JPEG; else a placeholder's reason. */
static void card_thumb(const report *r, const struct card *c, struct thumb *t)
{
	const char *decode = NULL;
	bool any = false;
	struct stat st;

	for (size_t i = c->first; i < c->first + c->n && !t->jpeg; i++) {
		const char *path = r->items[i].path;
		metadata_info info = { 0 };
		cs_error err;

		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		any = true;
		if (!file_is_jpeg(path))
			continue;
		if (!decode)
			decode = path;
		if (metadata_read(path, &info, &err) == 0 &&
		    is_jpeg(info.thumbnail, info.thumbnail_size)) {
			t->jpeg = info.thumbnail;
			t->size = info.thumbnail_size;
			info.thumbnail = NULL;
		}
		metadata_info_clear(&info);
	}
	if (t->jpeg)
		return;
	if (decode && !thumb_decode(t, decode))
		t->missing = "no preview: the JPEG cannot be read";
	else if (!decode)
		t->missing = !any ? "file not on disk" : "RAW file: no preview";
}

/* --- HTML ------------------------------------------------------------------------- */

/* Text from the journal or Specify (file names, reasons) is hostile:
 * markup characters become entities, control characters U+FFFD. */
static void put_text(FILE *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default:
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				fputs("\xef\xbf\xbd", out);
			else
				fputc(*s, out);
		}
	}
}

static void put_base64(FILE *out, const unsigned char *p, size_t n)
{
	static const char digits[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		unsigned long v = (unsigned long)p[i] << 16 |
				  (i + 1 < n ? (unsigned long)p[i + 1] << 8 : 0) |
				  (i + 2 < n ? p[i + 2] : 0);
		char q[4] = { digits[v >> 18 & 63], digits[v >> 12 & 63],
			      i + 1 < n ? digits[v >> 6 & 63] : '=',
			      i + 2 < n ? digits[v & 63] : '=' };
		fwrite(q, 1, sizeof q, out);
	}
}

static void put_time(FILE *out, double t)
{
	time_t s = (time_t)t;
	struct tm tm;
	char buf[32];

	if (localtime_r(&s, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm))
		fputs(buf, out);
}

static const char style[] =
	"body{font:14px/1.4 \"DejaVu Sans\",\"Liberation Sans\",Arial,sans-serif;"
	"margin:24px;color:#1f2328;background:#fff}\n"
	"h1{font-size:22px;margin:0 0 8px}\n"
	"dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0 0 10px}\n"
	"dt{color:#57606a}dd{margin:0;overflow-wrap:anywhere}\n"
	".counts{margin:10px 0 18px}.counts .badge{margin-right:6px}\n"
	".badge{display:inline-block;padding:1px 9px;border-radius:10px;color:#fff;"
	"font-weight:700;font-size:12px;margin:0 4px 2px 0}\n"
	".sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:14px}\n"
	".card{border:1px solid #d0d7de;border-left:6px solid #d0d7de;border-radius:6px;"
	"padding:8px 10px;break-inside:avoid;overflow-wrap:anywhere}\n"
	".thumb{height:200px;display:flex;align-items:center;justify-content:center;"
	"background:#f6f8fa;margin-bottom:6px}\n"
	".thumb img{max-width:100%;max-height:200px}\n"
	".ph{color:#57606a;font-size:13px;text-align:center;padding:0 12px}\n"
	".num{font-size:18px;font-weight:700}\n"
	".via{color:#57606a;font-size:12px}\n"
	".taxon{font-style:italic;margin:2px 0 4px}\n"
	".taxon.unknown{font-style:normal;color:#57606a}\n"
	".files{margin:4px 0;padding-left:18px;font-size:12px}\n"
	".why{color:#1f2328;font-size:12px}\n"
	".st{color:#57606a}\n"
	"a.rec{font-size:13px}\n"
	/* On paper the link is its address. */
	"@media print{body{margin:8mm}.badge{border:1px solid #000}"
	"a.rec::after{content:\" \" attr(href);font-size:10px}}\n";

static void put_style(FILE *out)
{
	fputs("<style>\n", out);
	fputs(style, out);
	for (int l = 0; l < L_COUNT; l++)
		fprintf(out, ".b-%s{background:%s}.k-%s{border-left-color:%s}\n",
			looks[l].cls, looks[l].colour, looks[l].cls, looks[l].colour);
	fputs("</style>\n", out);
}

static void put_badge(FILE *out, enum look l, long long count)
{
	fprintf(out, "<span class=\"badge b-%s\">", looks[l].cls);
	if (count >= 0)
		fprintf(out, "%lld ", count);
	fprintf(out, "%s</span>", looks[l].word);
}

static const char *server_of(const journal_batch *b)
{
	return b->server ? b->server : "";
}

static const char *collection_of(const journal_batch *b)
{
	return b->collection ? b->collection : "";
}

/* The distinct values of a batch field, ", "-joined. */
static void put_batches_field(FILE *out, const report *r,
			      const char *(*field)(const journal_batch *))
{
	const char *sep = "";

	for (size_t i = 0; i < r->nbatches; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(field(&r->batches[i]), field(&r->batches[k])) == 0;
		if (seen)
			continue;
		fputs(sep, out);
		put_text(out, field(&r->batches[i]));
		sep = ", ";
	}
}

static void put_header(FILE *out, const report *r)
{
	long long counts[JS_COUNT], by_look[L_COUNT] = { 0 };
	const journal_batch *b = report_batch(r);

	report_counts(r, counts);
	for (int s = 0; s < JS_COUNT; s++)
		by_look[look_of((enum journal_state)s)] += counts[s];
	fputs("<header>\n<h1>", out);
	if (r->batch) {
		fprintf(out, "Batch %lld (", r->batch);
		put_text(out, b->kind);
		fputs(")</h1>\n<dl>\n<dt>Started</dt><dd>", out);
		put_time(out, b->created);
		if (b->label && *b->label) {
			fputs("</dd>\n<dt>Source</dt><dd>", out);
			put_text(out, b->label);
		}
	} else {
		fputs("Session folder ", out);
		put_text(out, r->folder);
		fputs("</h1>\n<dl>\n<dt>Batches</dt><dd>", out);
		for (size_t i = 0; i < r->nbatches; i++) {
			fprintf(out, "%s%lld (", i ? ", " : "", r->batches[i].id);
			put_text(out, r->batches[i].kind);
			fputs(", ", out);
			put_time(out, r->batches[i].created);
			fputs(")", out);
		}
	}
	fputs("</dd>\n<dt>Collection</dt><dd>", out);
	put_batches_field(out, r, collection_of);
	fputs("</dd>\n<dt>Server</dt><dd>", out);
	put_batches_field(out, r, server_of);
	fputs("</dd>\n<dt>Taxa</dt><dd>", out);
	if (r->taxa_why) {
		fputs("unknown: ", out);
		put_text(out, r->taxa_why);
	} else if (r->taxa_from) {
		fputs("current determinations, from Specify (", out);
		put_text(out, r->taxa_from);
		fputs(")", out);
	} else {
		fputs("not looked up", out);
	}
	fputs("</dd>\n<dt>Report written</dt><dd>", out);
	put_time(out, (double)time(NULL));
	fprintf(out, "</dd>\n</dl>\n<div class=\"counts\">%zu capture%s, %zu file%s: ",
		r->ncards, r->ncards == 1 ? "" : "s", r->n, r->n == 1 ? "" : "s");
	for (int l = 0; l < L_COUNT; l++)
		if (by_look[l])
			put_badge(out, (enum look)l, by_look[l]);
	fputs("</div>\n</header>\n", out);
}

static bool is_web_address(const char *s)
{
	return s && (strncasecmp(s, "https://", 8) == 0 || strncasecmp(s, "http://", 7) == 0);
}

static bool is_table_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Specify 7's own address of a record's form (getResourceViewUrl in its
 * frontend): <server>/specify/view/<table>/<id>/. */
static void put_record_link(FILE *out, const struct card *c)
{
	const journal_item *it = c->lead;

	if (it->record_id <= 0 || !c->batch || !is_web_address(c->batch->server) ||
	    !is_table_name(it->record_table))
		return;
	fputs("<a class=\"rec\" href=\"", out);
	put_text(out, c->batch->server);
	fprintf(out, "/specify/view/%s/%lld/\">open %s %lld in Specify</a>\n",
		it->record_table, it->record_id, it->record_table, it->record_id);
}

static void put_files(FILE *out, const report *r, const struct card *c)
{
	bool mixed = false;

	for (size_t i = c->first + 1; i < c->first + c->n; i++)
		mixed |= r->items[i].state != r->items[c->first].state;
	fputs("<ul class=\"files\">\n", out);
	for (size_t i = c->first; i < c->first + c->n; i++) {
		const journal_item *it = &r->items[i];
		const char *slash = strrchr(it->path, '/');
		fputs("<li>", out);
		put_text(out, it->name ? it->name : slash ? slash + 1 : it->path);
		if (mixed || look_of(it->state) == L_QUEUED)
			fprintf(out, " <span class=\"st\">%s</span>", journal_state_name(it->state));
		if (it->reason && *it->reason && look_of(it->state) != L_ATTACHED) {
			fputs("<div class=\"why\">", out);
			put_text(out, it->reason);
			fputs("</div>", out);
		}
		fputs("</li>\n", out);
	}
	fputs("</ul>\n", out);
}

static void put_card(FILE *out, const report *r, const struct card *c)
{
	const journal_item *lead = c->lead;
	const struct match_target *t = lead->target ? match_target_find(lead->target) : NULL;
	bool has[L_COUNT] = { false };
	int first = 0;
	struct thumb th = { 0 };

	for (size_t i = c->first; i < c->first + c->n; i++)
		has[look_of(r->items[i].state)] = true;
	while (!has[first])     /* a card has a file */
		first++;
	fprintf(out, "<article class=\"card k-%s\">\n<div class=\"thumb\">", looks[first].cls);
	card_thumb(r, c, &th);
	if (th.jpeg) {
		fputs("<img alt=\"preview\" src=\"data:image/jpeg;base64,", out);
		put_base64(out, th.jpeg, th.size);
		fputs("\">", out);
	} else {
		fprintf(out, "<span class=\"ph\">%s</span>", th.missing);
	}
	thumb_clear(&th);
	fputs("</div>\n<div class=\"num\">", out);
	put_text(out, c->catalog ? c->catalog : lead->identifier ? lead->identifier : "no number");
	fputs("</div>\n", out);
	if (t && !t->catalog_format && lead->identifier) {
		fputs("<div class=\"via\">", out);
		put_text(out, t->caption);
		fputs(" ", out);
		put_text(out, lead->identifier);
		fputs("</div>\n", out);
	}
	if (c->taxon || c->taxon_note) {
		fprintf(out, "<div class=\"taxon%s\">", c->taxon ? "" : " unknown");
		put_text(out, c->taxon ? c->taxon : c->taxon_note);
		fputs("</div>\n", out);
	}
	fputs("<div>", out);
	for (int l = 0; l < L_COUNT; l++)
		if (has[l])
			put_badge(out, (enum look)l, -1);
	fputs("</div>\n", out);
	put_files(out, r, c);
	put_record_link(out, c);
	fputs("</article>\n", out);
}

int report_write(const report *r, FILE *out, cs_error *err)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<title>", out);
	if (r->batch)
		fprintf(out, "copystand report: batch %lld", r->batch);
	else {
		fputs("copystand report: ", out);
		put_text(out, r->folder);
	}
	fputs("</title>\n", out);
	put_style(out);
	fputs("</head>\n<body>\n", out);
	put_header(out, r);
	fputs("<main class=\"sheet\">\n", out);
	for (size_t i = 0; i < r->ncards && !ferror(out); i++)
		put_card(out, r, &r->cards[i]);
	fputs("</main>\n</body>\n</html>\n", out);
	if (fflush(out) != 0 || ferror(out))
		return cs_error_set(err, CS_E_IO, "writing the report: %s: check the "
				    "disk and the folder", strerror(errno));
	return 0;
}
