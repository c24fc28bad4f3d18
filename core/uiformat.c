#include "uiformat.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

/* Specify's own resource is a few kB; this bounds a hostile one. */
#define MAX_XML (8u << 20)
#define MAX_FORMATS 4096
#define MAX_PARTS 64
#define MAX_TEXT 1024

struct spec_part {
	enum catalog_part_type type;
	unsigned size;
	char *value;
};

/* One <format>, as written; turned into a catalog_format when asked for. */
struct spec {
	char *name;
	char *external;
	size_t external_len;
	struct spec_part *parts;
	size_t n_parts;
	char *problem; /* why it cannot be used, or NULL */
};

struct uiformat_set {
	struct spec *v;
	size_t n;
};

struct reader {
	struct uiformat_set *set;
	XML_Parser parser;
	int depth;
	struct spec *current; /* inside a <format> */
	bool in_external;
	bool nomem;
};

static void spec_clear(struct spec *s)
{
	for (size_t i = 0; i < s->n_parts; i++)
		free(s->parts[i].value);
	free(s->parts);
	free(s->name);
	free(s->external);
	free(s->problem);
}

void uiformat_set_free(struct uiformat_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		spec_clear(&set->v[i]);
	free(set->v);
	free(set);
}

static const char *attr(const XML_Char **atts, const char *name)
{
	for (size_t i = 0; atts[i]; i += 2)
		if (strcmp(atts[i], name) == 0)
			return atts[i + 1];
	return NULL;
}

static void out_of_memory(struct reader *r)
{
	r->nomem = true;
	XML_StopParser(r->parser, XML_FALSE);
}

/* Keeps the first problem of a format; later ones add nothing a person
 * needs to fix the first. */
__attribute__((format(printf, 2, 3)))
static void spec_problem(struct reader *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (r->current->problem)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->current->problem = strdup(msg);
	if (!r->current->problem)
		out_of_memory(r);
}

static bool part_type(const char *name, enum catalog_part_type *type)
{
	static const struct { const char *name; enum catalog_part_type type; } types[] = {
		{ "constant", CATALOG_PART_CONSTANT },
		{ "separator", CATALOG_PART_SEPARATOR },
		{ "alpha", CATALOG_PART_ALPHA },
		{ "numeric", CATALOG_PART_NUMERIC },
		{ "year", CATALOG_PART_YEAR },
		{ "alphanumeric", CATALOG_PART_ALPHANUMERIC },
		{ "anychar", CATALOG_PART_ANYCHAR },
		{ "regex", CATALOG_PART_REGEX },
	};

	/* Specify's editor takes a part without a type as alphanumeric. */
	if (!name) {
		*type = CATALOG_PART_ALPHANUMERIC;
		return true;
	}
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		if (strcmp(name, types[i].name) == 0) {
			*type = types[i].type;
			return true;
		}
	}
	return false;
}

/* size="": a year is four digits and any other part one character unless
 * said otherwise, as in Specify's editor. */
static bool part_size(const char *text, enum catalog_part_type type,
		      unsigned *size)
{
	char *end;
	unsigned long v;

	if (!text) {
		*size = type == CATALOG_PART_YEAR ? 4 : 1;
		return true;
	}
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v > UINT_MAX)
		return false;
	*size = (unsigned)v;
	return true;
}

static void start_field(struct reader *r, const XML_Char **atts)
{
	struct spec *s = r->current;
	struct spec_part *parts;
	const char *type_name = attr(atts, "type");
	const char *value = attr(atts, "value");
	enum catalog_part_type type;
	unsigned size;

	if (!part_type(type_name, &type))
		return spec_problem(r, "it has a part of unknown type '%.64s'", type_name);
	if (!part_size(attr(atts, "size"), type, &size))
		return spec_problem(r, "it has a part whose size is not a number "
				    "('%.32s')", attr(atts, "size"));
	if (s->n_parts >= MAX_PARTS)
		return spec_problem(r, "it has more than %d parts", MAX_PARTS);
	parts = realloc(s->parts, (s->n_parts + 1) * sizeof *parts);
	if (!parts)
		return out_of_memory(r);
	s->parts = parts;
	parts[s->n_parts].type = type;
	parts[s->n_parts].size = size;
	parts[s->n_parts].value = value ? strndup(value, MAX_TEXT) : NULL;
	if (value && !parts[s->n_parts].value)
		return out_of_memory(r);
	s->n_parts++;
}

static void start_format(struct reader *r, const XML_Char **atts)
{
	struct uiformat_set *set = r->set;
	struct spec *v;
	const char *name = attr(atts, "name");

	if (set->n >= MAX_FORMATS)
		return;
	v = realloc(set->v, (set->n + 1) * sizeof *v);
	if (!v)
		return out_of_memory(r);
	set->v = v;
	r->current = memset(&v[set->n++], 0, sizeof *v);
	r->current->name = strndup(name ? name : "", MAX_TEXT);
	if (!r->current->name)
		out_of_memory(r);
}

static void XMLCALL on_start(void *data, const XML_Char *el, const XML_Char **atts)
{
	struct reader *r = data;

	r->depth++;
	if (r->depth == 2 && strcmp(el, "format") == 0)
		start_format(r, atts);
	else if (r->depth == 3 && r->current && strcmp(el, "field") == 0)
		start_field(r, atts);
	else if (r->depth == 3 && r->current && strcmp(el, "external") == 0)
		r->in_external = true;
}

static void XMLCALL on_end(void *data, const XML_Char *el)
{
	struct reader *r = data;

	(void)el;
	if (r->depth == 2)
		r->current = NULL;
	r->in_external = false;
	r->depth--;
}

static void XMLCALL on_text(void *data, const XML_Char *text, int len)
{
	struct reader *r = data;
	struct spec *s = r->current;
	char *grown;

	if (!r->in_external || s->external_len + (size_t)len > MAX_TEXT)
		return;
	grown = realloc(s->external, s->external_len + len + 1);
	if (!grown)
		return out_of_memory(r);
	memcpy(grown + s->external_len, text, len);
	s->external_len += len;
	grown[s->external_len] = '\0';
	s->external = grown;
}

int uiformat_set_new_from_xml(struct uiformat_set **out, const char *xml,
			      size_t len, cs_error *err)
{
	struct reader r = { 0 };
	int rc = 0;

	*out = NULL;
	if (len > MAX_XML)
		return cs_error_set(err, CS_E_INVALID,
			"the UIFormatters resource is over %u MiB; that is not "
			"Specify's", MAX_XML >> 20);
	r.set = calloc(1, sizeof *r.set);
	r.parser = XML_ParserCreate("UTF-8");
	if (!r.set || !r.parser) {
		rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
		goto out;
	}
	XML_SetUserData(r.parser, &r);
	XML_SetElementHandler(r.parser, on_start, on_end);
	XML_SetCharacterDataHandler(r.parser, on_text);
	if (XML_Parse(r.parser, xml, (int)len, XML_TRUE) != XML_STATUS_OK) {
		if (r.nomem)
			rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
		else
			rc = cs_error_set(err, CS_E_INVALID,
				"the UIFormatters resource is not valid XML "
				"(line %lu: %s)",
				(unsigned long)XML_GetCurrentLineNumber(r.parser),
				XML_ErrorString(XML_GetErrorCode(r.parser)));
	}
out:
	if (r.parser)
		XML_ParserFree(r.parser);
	if (rc < 0)
		uiformat_set_free(r.set);
	else
		*out = r.set;
	return rc;
}

static int read_all(const char *path, char **text, size_t *len, cs_error *err)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	int rc = 0;

	if (!fp)
		return cs_error_set(err, CS_E_IO, "cannot open %s: %s", path,
				    strerror(errno));
	buf = malloc(MAX_XML + 1);
	if (!buf) {
		rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
		goto out;
	}
	n = fread(buf, 1, MAX_XML + 1, fp);
	if (ferror(fp))
		rc = cs_error_set(err, CS_E_IO, "cannot read %s: %s", path,
				  strerror(errno));
	else if (n > MAX_XML)
		rc = cs_error_set(err, CS_E_INVALID,
			"%s is over %u MiB; is it really a UIFormatters file?",
			path, MAX_XML >> 20);
out:
	fclose(fp);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*text = buf;
	*len = n;
	return 0;
}

int uiformat_set_new_from_file(struct uiformat_set **out, const char *path,
			       cs_error *err)
{
	char *xml = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	rc = read_all(path, &xml, &len, err);
	if (rc < 0)
		return rc;
	rc = uiformat_set_new_from_xml(out, xml, len, err);
	free(xml);
	if (rc < 0)
		cs_error_prefix(err, "%s", path);
	return rc;
}

static const struct spec *find(const struct uiformat_set *set, const char *name)
{
	/* The first of a name wins, as in Specify's back end. */
	for (size_t i = 0; set && i < set->n; i++)
		if (strcmp(set->v[i].name, name) == 0)
			return &set->v[i];
	return NULL;
}

/* The class name without its package, white space around it dropped. */
static bool external_is(const char *external, const char *class_name)
{
	const char *dot = strrchr(external, '.');
	const char *s = dot ? dot + 1 : external;
	size_t len = strlen(class_name);

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (strncmp(s, class_name, len) != 0)
		return false;
	for (s += len; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

static int build_external(const struct spec *s, struct catalog_format **out,
			  cs_error *err)
{
	if (external_is(s->external, "CatalogNumberUIFieldFormatter"))
		return catalog_format_new_numeric(out, s->name, err);
	if (external_is(s->external, "CatalogNumberStringUIFieldFormatter"))
		return catalog_format_new_string(out, s->name, err);
	return cs_error_set(err, CS_E_CONFIG,
		"format %s is implemented by Specify 6 code (%.128s) that copystand "
		"does not know; choose another format", s->name, s->external);
}

static int build_parts(const struct spec *s, struct catalog_format **out,
		       cs_error *err)
{
	int rc;

	if (s->n_parts == 0)
		return cs_error_set(err, CS_E_CONFIG,
			"format %s has no parts to check a value against; "
			"choose another format", s->name);
	rc = catalog_format_new(out, s->name, err);
	for (size_t i = 0; rc == 0 && i < s->n_parts; i++)
		rc = catalog_format_add_part(*out, s->parts[i].type,
					     s->parts[i].size, s->parts[i].value, err);
	if (rc < 0) {
		catalog_format_free(*out);
		*out = NULL;
	}
	return rc;
}

static int not_found(const struct uiformat_set *set, const char *name,
		     cs_error *err)
{
	char names[512] = "";
	size_t len = 0;

	for (size_t i = 0; set && i < set->n && len + 4 < sizeof names; i++) {
		if (find(set, set->v[i].name) != &set->v[i])
			continue; /* listed already */
		int n = snprintf(names + len, sizeof names - len, "%s%s",
				 len ? ", " : "", set->v[i].name);
		len += n > 0 ? (size_t)n : 0;
	}
	if (len >= sizeof names)
		strcpy(names + sizeof names - 4, "...");
	return cs_error_set(err, CS_E_NOT_FOUND,
		"there is no format called %.64s; copystand knows "
		"CatalogNumberNumeric, CatalogNumberString and CatalogNumber%s%s",
		name, len ? ", and the field formats have: " : "", names);
}

int uiformat_set_get_format(const struct uiformat_set *set, const char *name,
			    struct catalog_format **out, cs_error *err)
{
	const struct spec *s = find(set, name);
	int rc;

	*out = NULL;
	if (!s) {
		rc = catalog_format_new_builtin(out, name, NULL);
		return rc == CS_E_NOT_FOUND ? not_found(set, name, err) :
		       rc < 0 ? cs_error_set(err, rc, "out of memory") : 0;
	}
	if (s->problem)
		return cs_error_set(err, CS_E_CONFIG,
			"format %s cannot be used: %s; fix it in Specify's field "
			"formats or choose another", s->name, s->problem);
	return s->external ? build_external(s, out, err) :
			     build_parts(s, out, err);
}
