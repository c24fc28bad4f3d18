#include "mapping.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELD 4096    /* bytes; a file name or identifier is far less */
#define MAX_FIELDS 1024   /* columns */
#define MAX_HEADER 65536  /* bytes of the header row */
#define NO_CHAR (-2)

struct field {
	char *buf;
	size_t len, cap;
};

/* A file name seen, to catch it listed twice. */
struct entry {
	char *file;
	char *identifier;
	unsigned long line;
};

struct mapping_reader {
	FILE *in;
	char *source;
	const struct catalog_format *fmt;
	char delim;
	size_t file_col, value_col;

	/* The header row is read twice: once to find the delimiter, once
	 * as a record. */
	char *pending;
	size_t pending_len, pending_pos;
	int back;
	unsigned long line;

	struct field *fields;
	size_t n_fields, cap_fields;
	unsigned long record_line;
	char problem[160]; /* what is wrong with the record read, or "" */

	struct entry *seen;
	size_t seen_size, seen_used;
	char *identifier; /* of the row returned */
};

/* --- Characters and records ------------------------------------------- */

static int get(struct mapping_reader *r)
{
	int c = r->back;

	if (c != NO_CHAR) {
		r->back = NO_CHAR;
		return c;
	}
	if (r->pending_pos < r->pending_len)
		return (unsigned char)r->pending[r->pending_pos++];
	return getc(r->in);
}

/* Takes a line break that starts with c (LF, CRLF or CR alone). */
static bool take_newline(struct mapping_reader *r, int c)
{
	if (c == '\r') {
		int next = get(r);
		if (next != '\n')
			r->back = next;
	} else if (c != '\n') {
		return false;
	}
	r->line++;
	return true;
}

static bool is_blank(int c, char delim)
{
	return (c == ' ' || c == '\t') && c != delim;
}

__attribute__((format(printf, 2, 3)))
static void record_problem(struct mapping_reader *r, const char *fmt, ...)
{
	va_list ap;

	if (r->problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->problem, sizeof r->problem, fmt, ap);
	va_end(ap);
}

static int append(struct mapping_reader *r, struct field *f, int c)
{
	if (f->len + 1 >= MAX_FIELD) {
		record_problem(r, "a field is longer than %d bytes", MAX_FIELD);
		return 0;
	}
	if (f->len + 2 > f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		char *buf = realloc(f->buf, cap);
		if (!buf)
			return CS_E_NOMEM;
		f->buf = buf;
		f->cap = cap;
	}
	f->buf[f->len++] = (char)c;
	f->buf[f->len] = '\0';
	return 0;
}

/* Reads a quoted field after its opening quote; returns the character
 * after the closing quote. */
static int read_quoted(struct mapping_reader *r, struct field *f, int *next)
{
	unsigned long opened = r->line;
	int c, rc = 0;

	while (rc == 0) {
		c = get(r);
		if (c == EOF) {
			record_problem(r, "the quote opened on line %lu is never closed",
				       opened);
			break;
		}
		if (c == '"') {
			c = get(r);
			if (c != '"')
				break;
		} else if (c == '\n' || (c == '\r' && (r->back = get(r)) != '\n')) {
			/* A line break inside quotes is data, but still a line. */
			r->line++;
		}
		rc = append(r, f, c);
	}
	*next = c;
	return rc;
}

/* Reads one field; *end is the delimiter, '\n' or EOF that ended it. */
static int read_field(struct mapping_reader *r, struct field *f, int *end)
{
	int c, rc = 0;

	f->len = 0;
	if (f->buf)
		f->buf[0] = '\0';
	do
		c = get(r);
	while (is_blank(c, r->delim));
	if (c == '"') {
		rc = read_quoted(r, f, &c);
		while (rc == 0 && is_blank(c, r->delim))
			c = get(r);
		if (c != r->delim && c != '\n' && c != '\r' && c != EOF)
			record_problem(r, "there is text after a closing quote; "
				       "write a quote inside quotes as \"\"");
	}
	while (rc == 0 && c != r->delim && c != '\n' && c != '\r' && c != EOF) {
		rc = append(r, f, c);
		c = get(r);
	}
	if (take_newline(r, c))
		c = '\n';
	*end = c;
	return rc;
}

static struct field *new_field(struct mapping_reader *r)
{
	if (r->n_fields == r->cap_fields) {
		size_t cap = r->cap_fields ? r->cap_fields * 2 : 8;
		struct field *v = realloc(r->fields, cap * sizeof *v);
		if (!v)
			return NULL;
		memset(v + r->cap_fields, 0, (cap - r->cap_fields) * sizeof *v);
		r->fields = v;
		r->cap_fields = cap;
	}
	return &r->fields[r->n_fields++];
}

/* Reads one record; n_fields is 0 at the end of the input.  A malformed
 * record is read to its end and described in r->problem. */
static int read_record(struct mapping_reader *r, cs_error *err)
{
	int c = get(r), rc = 0;

	r->n_fields = 0;
	r->problem[0] = '\0';
	r->record_line = r->line;
	if (c == EOF)
		return ferror(r->in) ? cs_error_set(err, CS_E_IO,
			"%s: reading failed after line %lu", r->source, r->line) : 0;
	r->back = c;
	do {
		struct field *f = r->n_fields < MAX_FIELDS ? new_field(r) :
				  &r->fields[r->n_fields - 1];
		if (!f)
			return cs_error_set(err, CS_E_NOMEM, "out of memory");
		if (r->n_fields == MAX_FIELDS)
			record_problem(r, "the row has more than %d columns", MAX_FIELDS);
		rc = read_field(r, f, &c);
	} while (rc == 0 && c == r->delim);
	return rc < 0 ? cs_error_set(err, rc, "out of memory") : 0;
}

/* The field's text without white space around it ("" if missing). */
static const char *cell(struct mapping_reader *r, size_t col)
{
	char *s, *end;

	if (col >= r->n_fields || !r->fields[col].buf)
		return "";
	s = r->fields[col].buf;
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

static bool record_is_blank(struct mapping_reader *r)
{
	for (size_t i = 0; i < r->n_fields; i++)
		if (*cell(r, i))
			return false;
	return true;
}

/* --- Header ----------------------------------------------------------- */

/* Reads the first non-blank line into r->pending, without a BOM. */
static int read_header_line(struct mapping_reader *r, cs_error *err)
{
	for (;;) {
		bool quoted = false, blank = true;
		int c;

		r->pending_len = 0;
		while ((c = getc(r->in)) != EOF && r->pending_len < MAX_HEADER) {
			r->pending[r->pending_len++] = (char)c;
			quoted ^= c == '"';
			if (!quoted && (c == '\n' || c == '\r'))
				break;
		}
		if (r->line == 1 && r->pending_len >= 3 &&
		    memcmp(r->pending, "\xEF\xBB\xBF", 3) == 0)
			memmove(r->pending, r->pending + 3, r->pending_len -= 3);
		for (size_t i = 0; i < r->pending_len; i++)
			blank &= r->pending[i] == ' ' || r->pending[i] == '\t' ||
				 r->pending[i] == '\n' || r->pending[i] == '\r';
		if (!blank)
			return 0;
		if (c == EOF)
			return cs_error_set(err, CS_E_INVALID,
				"%s is empty; a mapping file starts with a header row "
				"such as \"Catalog Number,File Name\"", r->source);
		/* A CRLF's LF may still be in the input: it ends the blank
		 * line, not the next one. */
		if (c == '\r' && (c = getc(r->in)) != '\n' && c != EOF)
			ungetc(c, r->in);
		r->line++;
	}
}

/* The delimiter the header row uses most, outside quotes. */
static char pick_delimiter(const char *line, size_t len)
{
	static const char delims[] = { ',', '\t', '|' };
	size_t count[3] = { 0 }, best = 0;
	bool quoted = false;

	for (size_t i = 0; i < len; i++) {
		quoted ^= line[i] == '"';
		for (size_t d = 0; d < 3 && !quoted; d++)
			count[d] += line[i] == delims[d];
	}
	for (size_t d = 1; d < 3; d++)
		if (count[d] > count[best])
			best = d;
	return count[best] ? delims[best] : '\0';
}

/* "File Name", "filename", "Attachment Name", "attachment", "file", as
 * Specify's importer accepts them (white space inside does not count). */
static bool is_file_header(const char *h)
{
	static const char *names[] = { "attachmentname", "filename",
				       "attachment", "file" };
	char flat[64];
	size_t n = 0;

	for (; *h && n + 1 < sizeof flat; h++)
		if (*h != ' ' && *h != '\t')
			flat[n++] = *h;
	flat[n] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(flat, names[i]) == 0)
			return true;
	return false;
}

static bool names_target(const char *h, const struct match_target *t,
			 bool ours_too)
{
	return strcasecmp(h, t->field_camel) == 0 || strcasecmp(h, t->caption) == 0 ||
	       (ours_too && (strcasecmp(h, t->name) == 0 ||
			     strcasecmp(h, t->path_key) == 0));
}

/* The identifier column: one named for the chosen target, else, as Specify
 * does, one named for any target's field. */
static bool find_value_column(struct mapping_reader *r,
			      const struct match_target *target)
{
	for (size_t i = 0; i < r->n_fields; i++) {
		if (i != r->file_col && names_target(cell(r, i), target, true)) {
			r->value_col = i;
			return true;
		}
	}
	for (size_t i = 0; i < r->n_fields; i++) {
		for (size_t t = 0; t < match_target_count(); t++) {
			if (i != r->file_col &&
			    names_target(cell(r, i), match_target_at(t), false)) {
				r->value_col = i;
				return true;
			}
		}
	}
	return false;
}

static bool find_file_column(struct mapping_reader *r)
{
	for (size_t i = 0; i < r->n_fields; i++) {
		if (is_file_header(cell(r, i))) {
			r->file_col = i;
			return true;
		}
	}
	return false;
}

static int read_header(struct mapping_reader *r,
		       const struct match_target *target, cs_error *err)
{
	int rc = read_header_line(r, err);

	if (rc < 0)
		return rc;
	r->delim = pick_delimiter(r->pending, r->pending_len);
	if (!r->delim)
		return cs_error_set(err, CS_E_INVALID,
			"%s line %lu: the header row has a single column; a mapping "
			"file needs a file-name column and a \"%s\" column, separated "
			"by commas, tabs or |", r->source, r->line, target->caption);
	rc = read_record(r, err);
	if (rc < 0)
		return rc;
	if (!find_file_column(r))
		return cs_error_set(err, CS_E_INVALID,
			"%s line %lu: no column for the file name; head it \"File "
			"Name\" (or filename, Attachment Name, attachment, file)",
			r->source, r->record_line);
	if (!find_value_column(r, target))
		return cs_error_set(err, CS_E_INVALID,
			"%s line %lu: no column for the %s; head it \"%s\" or "
			"\"%s\"", r->source, r->record_line, target->caption,
			target->caption, target->field_camel);
	return 0;
}

int mapping_reader_new(struct mapping_reader **out, FILE *in,
		       const char *source, const struct match_target *target,
		       const struct catalog_format *fmt, cs_error *err)
{
	struct mapping_reader *r = calloc(1, sizeof *r);
	int rc;

	*out = NULL;
	if (!target)
		target = match_target_find("catalog-number");
	if (!r)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	r->in = in;
	r->fmt = fmt;
	r->back = NO_CHAR;
	r->line = 1;
	r->source = strdup(source ? source : "the mapping file");
	r->pending = malloc(MAX_HEADER);
	if (!r->source || !r->pending)
		rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
	else
		rc = read_header(r, target, err);
	if (rc < 0)
		mapping_reader_free(r);
	else
		*out = r;
	return rc;
}

/* --- Rows ------------------------------------------------------------- */

static uint64_t hash(const char *s)
{
	uint64_t h = 14695981039346656037u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static struct entry *slot(struct entry *table, size_t size, const char *file)
{
	size_t i = hash(file) & (size - 1);

	while (table[i].file && strcmp(table[i].file, file) != 0)
		i = (i + 1) & (size - 1);
	return &table[i];
}

static int grow_seen(struct mapping_reader *r)
{
	size_t size = r->seen_size ? r->seen_size * 2 : 1024;
	struct entry *table = calloc(size, sizeof *table);

	if (!table)
		return CS_E_NOMEM;
	for (size_t i = 0; i < r->seen_size; i++)
		if (r->seen[i].file)
			*slot(table, size, r->seen[i].file) = r->seen[i];
	free(r->seen);
	r->seen = table;
	r->seen_size = size;
	return 0;
}

/* Remembers the row's file; a file seen before gives *earlier. */
static int remember(struct mapping_reader *r, const char *file,
		    const struct entry **earlier)
{
	struct entry *e;

	if (2 * (r->seen_used + 1) > r->seen_size && grow_seen(r) < 0)
		return CS_E_NOMEM;
	e = slot(r->seen, r->seen_size, file);
	if (e->file) {
		*earlier = e;
		return 0;
	}
	*earlier = NULL;
	e->file = strdup(file);
	e->identifier = strdup(r->identifier);
	e->line = r->record_line;
	if (!e->file || !e->identifier) {
		free(e->file);
		free(e->identifier);
		e->file = NULL;
		return CS_E_NOMEM;
	}
	r->seen_used++;
	return 0;
}

static int take_identifier(struct mapping_reader *r, const char *value,
			   cs_error *err)
{
	free(r->identifier);
	r->identifier = NULL;
	if (!*value)
		return cs_error_set(err, CS_E_INVALID, "the row has no identifier");
	if (r->fmt)
		return catalog_format_parse(r->fmt, value, &r->identifier, err);
	int rc = catalog_text_check(value, "the identifier", err);
	if (rc == 0 && !(r->identifier = strdup(value)))
		rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
	return rc;
}

static int check_duplicate(struct mapping_reader *r, struct mapping_row *row,
			   cs_error *err)
{
	const struct entry *earlier;

	if (remember(r, row->file_name, &earlier) < 0)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	if (!earlier)
		return 0;
	row->first_line = earlier->line;
	if (strcmp(earlier->identifier, r->identifier) == 0)
		return cs_error_set(err, CS_E_INVALID,
			"this row repeats line %lu; delete one of them", earlier->line);
	return cs_error_set(err, CS_E_INVALID,
		"%.128s is listed again, first on line %lu for %.64s; a file "
		"belongs to one record", row->file_name, earlier->line,
		earlier->identifier);
}

static int take_row(struct mapping_reader *r, struct mapping_row *row,
		    cs_error *err)
{
	const char *file = cell(r, r->file_col);
	int rc;

	row->line = r->record_line;
	if (r->problem[0])
		return cs_error_set(err, CS_E_INVALID, "%s", r->problem);
	if (!*file)
		return cs_error_set(err, CS_E_INVALID, "the row has no file name");
	rc = catalog_text_check(file, "the file name", err);
	if (rc < 0)
		return rc;
	row->file_name = file;
	rc = take_identifier(r, cell(r, r->value_col), err);
	if (rc < 0)
		return rc;
	row->identifier = r->identifier;
	return check_duplicate(r, row, err);
}

int mapping_reader_next(struct mapping_reader *r, struct mapping_row *row,
			cs_error *err)
{
	int rc;

	memset(row, 0, sizeof *row);
	do {
		rc = read_record(r, err);
		if (rc < 0 || r->n_fields == 0)
			return rc;
	} while (record_is_blank(r));
	rc = take_row(r, row, err);
	if (rc == CS_E_INVALID)
		cs_error_prefix(err, "%s line %lu", r->source, row->line);
	return rc;
}

char mapping_reader_delimiter(const struct mapping_reader *r)
{
	return r->delim;
}

void mapping_reader_free(struct mapping_reader *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->cap_fields; i++)
		free(r->fields[i].buf);
	for (size_t i = 0; i < r->seen_size; i++) {
		free(r->seen[i].file);
		free(r->seen[i].identifier);
	}
	free(r->fields);
	free(r->seen);
	free(r->source);
	free(r->pending);
	free(r->identifier);
	free(r);
}

/* --- the whole file, for look-ups ------------------------------------------ */

struct mapped {
	char *file;
	char *identifier;   /* NULL if the row was refused */
	char *problem;      /* why, then */
};

struct mapping_table {
	struct mapped *v;
	size_t n, cap;
};

static int table_add(struct mapping_table *t, const struct mapping_row *row,
		     const char *problem)
{
	struct mapped *e;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct mapped *v = realloc(t->v, cap * sizeof *v);
		if (!v)
			return CS_E_NOMEM;
		t->v = v;
		t->cap = cap;
	}
	e = &t->v[t->n];
	e->file = strdup(row->file_name);
	e->identifier = problem ? NULL : strdup(row->identifier);
	e->problem = problem ? strdup(problem) : NULL;
	if (!e->file || !(e->identifier || e->problem)) {
		free(e->file);
		free(e->identifier);
		free(e->problem);
		return CS_E_NOMEM;
	}
	t->n++;
	return 0;
}

/* Refused rows first among those of one file, so a look-up sees them. */
static int mapped_order(const void *a, const void *b)
{
	const struct mapped *x = a, *y = b;
	int c = strcmp(x->file, y->file);

	return c ? c : (y->problem != NULL) - (x->problem != NULL);
}

int mapping_table_load(struct mapping_table **out, FILE *in, const char *source,
		       const struct match_target *target,
		       const struct catalog_format *fmt, mapping_row_fn fn,
		       void *ud, cs_error *err)
{
	struct mapping_table *t = calloc(1, sizeof *t);
	struct mapping_reader *r = NULL;
	struct mapping_row row;
	cs_error why;
	int rc;

	*out = NULL;
	if (!t)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	rc = mapping_reader_new(&r, in, source, target, fmt, err);
	while (rc == 0) {
		rc = mapping_reader_next(r, &row, &why);
		if (rc == 0 && !row.file_name)
			break;
		if (rc && rc != CS_E_INVALID) {
			*err = why;
			break;
		}
		if (fn)
			fn(ud, &row, rc ? &why : NULL);
		if (row.file_name && table_add(t, &row, rc ? why.msg : NULL))
			rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
		else
			rc = 0;
	}
	mapping_reader_free(r);
	if (rc) {
		mapping_table_free(t);
		return rc;
	}
	if (t->n)
		qsort(t->v, t->n, sizeof *t->v, mapped_order);
	*out = t;
	return 0;
}

/* For bsearch: only the file name, whatever the rows' states. */
static int mapped_file(const void *a, const void *b)
{
	return strcmp(((const struct mapped *)a)->file, ((const struct mapped *)b)->file);
}

int mapping_table_find(const struct mapping_table *t, const char *file,
		       const char **identifier, const char **problem)
{
	const char *base = strrchr(file, '/');
	struct mapped key = { .file = (char *)(base ? base + 1 : file) };
	const struct mapped *e = t->n ? bsearch(&key, t->v, t->n, sizeof *t->v,
						mapped_file) : NULL;

	*identifier = *problem = NULL;
	while (e && e > t->v && strcmp(e[-1].file, key.file) == 0)
		e--;
	if (!e)
		return CS_E_NOT_FOUND;
	if (e->problem) {
		*problem = e->problem;
		return CS_E_INVALID;
	}
	*identifier = e->identifier;
	return 0;
}

void mapping_table_free(struct mapping_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].file);
		free(t->v[i].identifier);
		free(t->v[i].problem);
	}
	free(t->v);
	free(t);
}
