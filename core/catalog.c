#include "catalog.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* CatalogNumberNumeric: up to 9 digits, stored left-padded with zeros. */
#define NUMERIC_WIDTH 9
#define STRING_MAX 32
/* Specify's attachment title is varchar(255) and takes the file name. */
#define NAME_MAX_BYTES 255
/* Bounds a batched lookup; real names give a handful. */
#define MAX_CANDIDATES 16
#define MAX_PARTS 64
#define MAX_PART_SIZE 1024
#define MAX_REGEX 2048
/* How long a message may quote the text it is about. */
#define QUOTE 64

enum fmt_kind {
	KIND_PARTS,   /* a sequence of UIFormatters parts */
	KIND_NUMERIC, /* CatalogNumberNumeric and its aliases */
	KIND_STRING,  /* CatalogNumberString, or a field with no formatter */
};

struct part {
	enum catalog_part_type type;
	unsigned size;
	char *value;
};

struct catalog_format {
	char *name;
	enum fmt_kind kind;
	unsigned max_length; /* KIND_STRING, in characters; 0: none */
	struct part *parts;
	size_t n_parts;
	char *pattern;
	/* Formats with a regex part are matched as one expression, as Specify
	 * does, since a regex of unknown length decides where the next part
	 * starts.  The others are walked part by part, which lets a message
	 * say which character is wrong. */
	pcre2_code *re;
	pcre2_match_context *match_ctx;
};

struct candidate {
	char *identifier;
	char *suffix;
};

struct catalog_candidates {
	struct candidate v[MAX_CANDIDATES];
	size_t n;
};

/* --- Text ------------------------------------------------------------- */

static bool is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_control(unsigned long cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Decodes one UTF-8 sequence; 0 if s does not start with a valid one. */
static size_t utf8_decode(const unsigned char *s, unsigned long *cp)
{
	static const unsigned long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, *cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, *cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, *cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < min[len] || *cp > 0x10ffff ||
	    (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/* Refuses what no identifier or file name of ours may hold. */
int catalog_text_check(const char *text, const char *what, cs_error *err)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t at = 0;

	while (s[at]) {
		unsigned long cp;
		size_t len = utf8_decode(s + at, &cp);

		if (len == 0)
			return cs_error_set(err, CS_E_INVALID,
				"%s is not valid UTF-8 text (byte %zu): save it as UTF-8",
				what, at + 1);
		if (is_control(cp))
			return cs_error_set(err, CS_E_INVALID,
				"%s contains the control character 0x%02lX at byte %zu; "
				"identifiers are plain text", what, cp, at + 1);
		at += len;
	}
	return 0;
}

static size_t utf8_count(const char *s, size_t bytes)
{
	size_t n = 0;

	for (size_t i = 0; i < bytes; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

/* Bytes taken by the first n characters of valid UTF-8 s (fewer if s is
 * shorter); *got says how many characters there were. */
static size_t utf8_advance(const char *s, size_t n, size_t *got)
{
	size_t i = 0, k = 0;

	while (s[i] && k < n) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
		k++;
	}
	*got = k;
	return i;
}

/* A copy of s without white space around it; NULL if out of memory. */
static char *dup_trimmed(const char *s, size_t len)
{
	while (len && is_space((unsigned char)*s))
		s++, len--;
	while (len && is_space((unsigned char)s[len - 1]))
		len--;
	return strndup(s, len);
}

/* --- Formats ---------------------------------------------------------- */

static int format_alloc(struct catalog_format **out, const char *name,
			enum fmt_kind kind, const char *pattern, cs_error *err)
{
	struct catalog_format *fmt = calloc(1, sizeof *fmt);

	*out = NULL;
	if (!fmt)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	fmt->kind = kind;
	fmt->name = strdup(name ? name : "");
	fmt->pattern = strdup(pattern);
	if (!fmt->name || !fmt->pattern) {
		catalog_format_free(fmt);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	*out = fmt;
	return 0;
}

int catalog_format_new(struct catalog_format **out, const char *name,
		       cs_error *err)
{
	return format_alloc(out, name, KIND_PARTS, "", err);
}

int catalog_format_new_numeric(struct catalog_format **out, const char *name,
			       cs_error *err)
{
	return format_alloc(out, name, KIND_NUMERIC, "#########", err);
}

int catalog_format_new_plain(struct catalog_format **out, const char *name,
			     unsigned max_length, cs_error *err)
{
	char pattern[64];

	if (max_length)
		snprintf(pattern, sizeof pattern,
			 "text of up to %u characters", max_length);
	else
		snprintf(pattern, sizeof pattern, "any text");
	int rc = format_alloc(out, name, KIND_STRING, pattern, err);
	if (rc == 0)
		(*out)->max_length = max_length;
	return rc;
}

int catalog_format_new_string(struct catalog_format **out, const char *name,
			      cs_error *err)
{
	return catalog_format_new_plain(out, name, STRING_MAX, err);
}

/* Specify's default "CatalogNumber": year, "-", six digits. */
static int new_year_number(struct catalog_format **out, const char *name,
			   cs_error *err)
{
	int rc = catalog_format_new(out, name, err);

	if (rc == 0)
		rc = catalog_format_add_part(*out, CATALOG_PART_YEAR, 4, NULL, err);
	if (rc == 0)
		rc = catalog_format_add_part(*out, CATALOG_PART_SEPARATOR, 1, "-", err);
	if (rc == 0)
		rc = catalog_format_add_part(*out, CATALOG_PART_NUMERIC, 6, NULL, err);
	if (rc < 0) {
		catalog_format_free(*out);
		*out = NULL;
	}
	return rc;
}

int catalog_format_new_builtin(struct catalog_format **out, const char *name,
			       cs_error *err)
{
	*out = NULL;
	if (name && strcmp(name, "CatalogNumberNumeric") == 0)
		return catalog_format_new_numeric(out, name, err);
	if (name && strcmp(name, "CatalogNumberString") == 0)
		return catalog_format_new_string(out, name, err);
	if (name && strcmp(name, "CatalogNumber") == 0)
		return new_year_number(out, name, err);
	return cs_error_set(err, CS_E_NOT_FOUND,
		"%s is not a format copystand knows by itself (CatalogNumberNumeric, "
		"CatalogNumberString, CatalogNumber); give the collection's "
		"UIFormatters file to use it", name ? name : "(none)");
}

void catalog_format_free(struct catalog_format *fmt)
{
	if (!fmt)
		return;
	for (size_t i = 0; i < fmt->n_parts; i++)
		free(fmt->parts[i].value);
	free(fmt->parts);
	free(fmt->name);
	free(fmt->pattern);
	pcre2_code_free(fmt->re);
	pcre2_match_context_free(fmt->match_ctx);
	free(fmt);
}

const char *catalog_format_name(const struct catalog_format *fmt)
{
	return fmt->name;
}

const char *catalog_format_pattern(const struct catalog_format *fmt)
{
	return fmt->pattern;
}

static bool has_regex(const struct catalog_format *fmt)
{
	return fmt->re != NULL;
}

/* Specify drops "/.../" around a pattern, then a leading "^" and a
 * trailing "$", so that parts can be joined (FieldFormatters/spec.ts). */
static char *regex_trim(const char *pattern)
{
	size_t len = strlen(pattern);

	if (len >= 2 && pattern[0] == '/' && pattern[len - 1] == '/')
		pattern++, len -= 2;
	if (len && pattern[0] == '^')
		pattern++, len--;
	if (len && pattern[len - 1] == '$')
		len--;
	return strndup(pattern, len);
}

/* Appends the expression matching one part to buf (size MAX_REGEX * 2). */
static void part_regex(const struct part *p, char *buf, size_t size)
{
	static const char *cls[] = {
		[CATALOG_PART_ALPHA] = "[a-zA-Z]",
		[CATALOG_PART_NUMERIC] = "[0-9]",
		[CATALOG_PART_YEAR] = "[0-9]",
		[CATALOG_PART_ALPHANUMERIC] = "[a-zA-Z0-9]",
		[CATALOG_PART_ANYCHAR] = ".",
	};
	size_t len = strlen(buf);

	switch (p->type) {
	case CATALOG_PART_REGEX:
		snprintf(buf + len, size - len, "(?:%s)", p->value);
		break;
	case CATALOG_PART_CONSTANT:
	case CATALOG_PART_SEPARATOR:
		for (const char *c = p->value; *c && len + 3 < size; c++) {
			/* Only ASCII punctuation needs escaping; UTF-8
			 * sequences go through whole. */
			if (ispunct((unsigned char)*c))
				buf[len++] = '\\';
			buf[len++] = *c;
		}
		buf[len] = '\0';
		break;
	default:
		snprintf(buf + len, size - len, "%s{%u}", cls[p->type], p->size);
		break;
	}
}

static int compile_regex(struct catalog_format *fmt, cs_error *err)
{
	char expr[MAX_REGEX * 2] = "";
	int code;
	PCRE2_SIZE offset;

	for (size_t i = 0; i < fmt->n_parts; i++)
		part_regex(&fmt->parts[i], expr, sizeof expr);
	if (strlen(expr) + 1 >= sizeof expr)
		return cs_error_set(err, CS_E_CONFIG,
			"format %s is too long to check", fmt->name);
	pcre2_code_free(fmt->re);
	fmt->re = pcre2_compile((PCRE2_SPTR)expr, PCRE2_ZERO_TERMINATED,
				PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
				PCRE2_DOLLAR_ENDONLY,
				&code, &offset, NULL);
	if (!fmt->re) {
		PCRE2_UCHAR msg[128];
		pcre2_get_error_message(code, msg, sizeof msg);
		return cs_error_set(err, CS_E_CONFIG,
			"the regular expression of format %s does not work (%s, at "
			"character %zu): fix it in Specify's field formats",
			fmt->name, (const char *)msg, (size_t)offset);
	}
	if (!fmt->match_ctx) {
		fmt->match_ctx = pcre2_match_context_create(NULL);
		if (!fmt->match_ctx)
			return cs_error_set(err, CS_E_NOMEM, "out of memory");
		/* An expression from a resource must not stall a scan. */
		pcre2_set_match_limit(fmt->match_ctx, 100000);
		pcre2_set_depth_limit(fmt->match_ctx, 10000);
	}
	return 0;
}

/* How a part reads in a pattern: # digit, A letter, X letter or digit,
 * * any character, YYYY year. */
static int pattern_append(struct catalog_format *fmt, const struct part *p,
			  cs_error *err)
{
	static const char sym[] = {
		[CATALOG_PART_ALPHA] = 'A', [CATALOG_PART_NUMERIC] = '#',
		[CATALOG_PART_YEAR] = 'Y', [CATALOG_PART_ALPHANUMERIC] = 'X',
		[CATALOG_PART_ANYCHAR] = '*',
	};
	size_t old = strlen(fmt->pattern);
	size_t add = p->value ? strlen(p->value) + 2 : p->size;
	char *s = realloc(fmt->pattern, old + add + 1);

	if (!s)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	fmt->pattern = s;
	if (p->type == CATALOG_PART_REGEX)
		sprintf(s + old, "/%s/", p->value);
	else if (p->value)
		strcpy(s + old, p->value);
	else {
		memset(s + old, sym[p->type], p->size);
		s[old + p->size] = '\0';
	}
	return 0;
}

/* Constants, separators and regexes are their value; the rest a size. */
static bool part_has_value(enum catalog_part_type type)
{
	return type == CATALOG_PART_CONSTANT || type == CATALOG_PART_SEPARATOR ||
	       type == CATALOG_PART_REGEX;
}

static int check_part(const struct catalog_format *fmt,
		      enum catalog_part_type type, unsigned size,
		      const char *value, cs_error *err)
{
	bool needs_value = part_has_value(type);

	if (fmt->kind != KIND_PARTS)
		return cs_error_set(err, CS_E_INVALID,
			"format %s is built in and takes no parts", fmt->name);
	if ((unsigned)type > CATALOG_PART_REGEX)
		return cs_error_set(err, CS_E_INVALID, "unknown part type %d",
				    (int)type);
	if (fmt->n_parts >= MAX_PARTS)
		return cs_error_set(err, CS_E_CONFIG,
			"format %s has more than %d parts", fmt->name, MAX_PARTS);
	if (needs_value && (!value || !*value || strlen(value) > MAX_REGEX / 2))
		return cs_error_set(err, CS_E_CONFIG,
			"format %s has a %s part without a usable value",
			fmt->name, type == CATALOG_PART_REGEX ? "regex" : "constant");
	if (needs_value)
		return catalog_text_check(value, "a constant or regex part", err);
	if (size > MAX_PART_SIZE)
		return cs_error_set(err, CS_E_CONFIG,
			"format %s has a part of size %u; at most %d is allowed",
			fmt->name, size, MAX_PART_SIZE);
	return 0;
}

int catalog_format_add_part(struct catalog_format *fmt,
			    enum catalog_part_type type, unsigned size,
			    const char *value, cs_error *err)
{
	struct part *parts, *p;
	int rc = check_part(fmt, type, size, value, err);
	bool needs_value = part_has_value(type);

	if (rc < 0)
		return rc;
	parts = realloc(fmt->parts, (fmt->n_parts + 1) * sizeof *parts);
	if (!parts)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	fmt->parts = parts;
	p = &parts[fmt->n_parts];
	p->type = type;
	p->size = size;
	p->value = !needs_value ? NULL :
		   type == CATALOG_PART_REGEX ? regex_trim(value) : strdup(value);
	if (needs_value && !p->value)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	fmt->n_parts++;
	rc = pattern_append(fmt, p, err);
	if (rc == 0 && (type == CATALOG_PART_REGEX || has_regex(fmt)))
		rc = compile_regex(fmt, err);
	return rc;
}

/* --- Matching --------------------------------------------------------- */

static bool in_class(enum catalog_part_type type, unsigned char c)
{
	switch (type) {
	case CATALOG_PART_ALPHA:
		return is_alpha(c);
	case CATALOG_PART_NUMERIC:
	case CATALOG_PART_YEAR:
		return is_digit(c);
	case CATALOG_PART_ALPHANUMERIC:
		return is_alpha(c) || is_digit(c);
	default:
		return c != '\0';
	}
}

static const char *class_name(enum catalog_part_type type)
{
	switch (type) {
	case CATALOG_PART_ALPHA:
		return "a letter";
	case CATALOG_PART_ALPHANUMERIC:
		return "a letter or digit";
	case CATALOG_PART_ANYCHAR:
		return "a character";
	default:
		return "a digit";
	}
}

/* Says what is wrong at byte at of text: it ended, or holds something
 * else than what belongs there. */
static void explain_at(const char *text, size_t at, const char *wanted,
		       char *why, size_t size)
{
	size_t shown;
	unsigned long cp;
	size_t len;

	if (!text[at]) {
		snprintf(why, size, "it ends after %zu characters where %s belongs",
			 utf8_count(text, at), wanted);
		return;
	}
	len = utf8_decode((const unsigned char *)text + at, &cp);
	shown = len ? len : 1;
	snprintf(why, size, "character %zu is '%.*s' where %s belongs%s",
		 utf8_count(text, at) + 1, (int)shown, text + at, wanted,
		 text[at] == '#' ? " ('#' marks where Specify fills in the next "
				   "number; use the real one)" :
		 strncmp(text + at, "YEAR", 4) == 0 ? " ('YEAR' marks where "
				   "Specify fills in the year; use the real one)" : "");
}

/* Matches the parts of a walkable format at the start of text; returns the
 * bytes they take, or -1 with why filled. */
static long walk_parts(const struct catalog_format *fmt, const char *text,
		       char *why, size_t size)
{
	size_t at = 0;

	for (size_t i = 0; i < fmt->n_parts; i++) {
		const struct part *p = &fmt->parts[i];

		if (p->value) {
			size_t len = strlen(p->value);
			if (strncmp(text + at, p->value, len) != 0) {
				char wanted[QUOTE + 4];
				snprintf(wanted, sizeof wanted, "'%.*s'", QUOTE, p->value);
				explain_at(text, at, wanted, why, size);
				return -1;
			}
			at += len;
		} else if (p->type == CATALOG_PART_ANYCHAR) {
			size_t got;
			at += utf8_advance(text + at, p->size, &got);
			if (got < p->size) {
				explain_at(text, at, class_name(p->type), why, size);
				return -1;
			}
		} else {
			for (unsigned k = 0; k < p->size; k++, at++) {
				if (!in_class(p->type, (unsigned char)text[at])) {
					explain_at(text, at, class_name(p->type), why, size);
					return -1;
				}
			}
		}
	}
	return (long)at;
}

static long walk_numeric(const char *text)
{
	long n = 0;

	while (n < NUMERIC_WIDTH && is_digit((unsigned char)text[n]))
		n++;
	return n;
}

static bool regex_matches(const struct catalog_format *fmt, const char *text,
			  size_t len, char *why, size_t size)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(fmt->re, NULL);
	int rc;

	if (!md) {
		snprintf(why, size, "out of memory");
		return false;
	}
	rc = pcre2_match(fmt->re, (PCRE2_SPTR)text, len, 0, 0, md, fmt->match_ctx);
	pcre2_match_data_free(md);
	if (rc >= 0)
		return true;
	if (rc == PCRE2_ERROR_NOMATCH)
		snprintf(why, size, "it does not match the regular expression");
	else
		snprintf(why, size, "the regular expression is too costly "
			 "to check on it; simplify the format");
	return false;
}

/* The format's one numeric part, if that is all it has: Specify pads such
 * a number when it is shorter (AttachmentsBulkImport/utils.ts). */
static const struct part *lone_numeric(const struct catalog_format *fmt)
{
	if (fmt->kind == KIND_PARTS && fmt->n_parts == 1 &&
	    fmt->parts[0].type == CATALOG_PART_NUMERIC)
		return &fmt->parts[0];
	return NULL;
}

static bool all_digits(const char *s)
{
	for (; *s; s++)
		if (!is_digit((unsigned char)*s))
			return false;
	return true;
}

static char *zero_pad(const char *digits, size_t width)
{
	size_t len = strlen(digits);
	char *out;

	if (len >= width)
		return strdup(digits);
	out = malloc(width + 1);
	if (out) {
		memset(out, '0', width - len);
		memcpy(out + width - len, digits, len + 1);
	}
	return out;
}

/* hint, if not NULL, is what the person probably meant. */
static int mismatch(const struct catalog_format *fmt, const char *text,
		    const char *why, const char *hint, cs_error *err)
{
	return cs_error_set(err, CS_E_INVALID,
		"'%.*s%s' does not fit the format %s (%.*s): %s%s%s%s",
		QUOTE, text, strlen(text) > QUOTE ? "..." : "", fmt->name,
		QUOTE, fmt->pattern, why, hint ? "; did you mean '" : "",
		hint ? hint : "", hint ? "'?" : "");
}

static int parse_numeric(const struct catalog_format *fmt, const char *text,
			 size_t width, char **out, cs_error *err)
{
	char why[160];
	size_t len = strlen(text);

	for (size_t i = 0; i < len; i++) {
		if (!is_digit((unsigned char)text[i])) {
			explain_at(text, i, "a digit", why, sizeof why);
			return mismatch(fmt, text, why, NULL, err);
		}
	}
	if (len > width) {
		snprintf(why, sizeof why, "it has %zu digits; at most %zu fit",
			 len, width);
		return mismatch(fmt, text, why, NULL, err);
	}
	*out = zero_pad(text, width);
	return *out ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

static int parse_string(const struct catalog_format *fmt, const char *text,
			char **out, cs_error *err)
{
	size_t chars = utf8_count(text, strlen(text));

	if (fmt->max_length && chars > fmt->max_length) {
		char why[96];
		snprintf(why, sizeof why, "it has %zu characters; at most %u fit",
			 chars, fmt->max_length);
		return mismatch(fmt, text, why, NULL, err);
	}
	*out = strdup(text);
	return *out ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

/* The text with each short run of digits where a numeric part belongs
 * padded with zeros ("2024-123" -> "2024-000123"), if that fits. */
static bool suggest_padding(const struct catalog_format *fmt, const char *text,
			    char *out, size_t size)
{
	const char *s = text;
	size_t o = 0;
	char why[8];

	for (size_t i = 0; i < fmt->n_parts; i++) {
		const struct part *p = &fmt->parts[i];
		size_t run = 0, pad = 0, got;

		if (p->type == CATALOG_PART_NUMERIC) {
			while (run < p->size && is_digit((unsigned char)s[run]))
				run++;
			pad = p->size - run;
		} else if (p->value) {
			run = strnlen(s, strlen(p->value));
		} else {
			run = utf8_advance(s, p->size, &got);
		}
		if (o + pad + run >= size)
			return false;
		memset(out + o, '0', pad);
		memcpy(out + o + pad, s, run);
		o += pad + run;
		s += run;
	}
	out[o] = '\0';
	return !*s && strcmp(out, text) != 0 &&
	       walk_parts(fmt, out, why, sizeof why) == (long)o;
}

static int parse_parts(const struct catalog_format *fmt, const char *text,
		       char **out, cs_error *err)
{
	const struct part *num = lone_numeric(fmt);
	char why[256];
	size_t len = strlen(text);

	if (num && all_digits(text) && len < num->size)
		return parse_numeric(fmt, text, num->size, out, err);
	if (fmt->n_parts == 0)
		return cs_error_set(err, CS_E_CONFIG,
			"format %s has no parts to check a value against", fmt->name);
	if (has_regex(fmt)) {
		if (!regex_matches(fmt, text, len, why, sizeof why))
			return mismatch(fmt, text, why, NULL, err);
	} else {
		long used = walk_parts(fmt, text, why, sizeof why);
		char fixed[QUOTE * 2];

		if (used >= 0 && (size_t)used < len)
			snprintf(why, sizeof why, "it goes on after '%.*s'",
				 (int)used, text);
		if (used < 0 || (size_t)used < len)
			return mismatch(fmt, text, why,
				suggest_padding(fmt, text, fixed, sizeof fixed) ?
				fixed : NULL, err);
	}
	*out = strdup(text);
	return *out ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

/* Parses text that is already trimmed and checked. */
static int parse_clean(const struct catalog_format *fmt, const char *text,
		       char **out, cs_error *err)
{
	*out = NULL;
	if (!*text)
		return cs_error_set(err, CS_E_INVALID,
			"the value is empty; a %s identifier needs at least one "
			"character", fmt->name);
	switch (fmt->kind) {
	case KIND_NUMERIC:
		return parse_numeric(fmt, text, NUMERIC_WIDTH, out, err);
	case KIND_STRING:
		return parse_string(fmt, text, out, err);
	default:
		return parse_parts(fmt, text, out, err);
	}
}

int catalog_format_parse(const struct catalog_format *fmt, const char *text,
			 char **identifier, cs_error *err)
{
	char *clean = dup_trimmed(text, strlen(text));
	int rc;

	*identifier = NULL;
	if (!clean)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	rc = catalog_text_check(clean, "the value", err);
	if (rc == 0)
		rc = parse_clean(fmt, clean, identifier, err);
	free(clean);
	return rc;
}

int catalog_format_display(const struct catalog_format *fmt,
			   const char *identifier, char **display,
			   cs_error *err)
{
	int rc = catalog_format_parse(fmt, identifier, display, err);
	char *s = *display;

	if (rc < 0 || fmt->kind != KIND_NUMERIC)
		return rc;
	/* Specify shows numeric catalog numbers without their zeros. */
	size_t zeros = strspn(s, "0");
	if (s[zeros] == '\0')
		zeros--;
	memmove(s, s + zeros, strlen(s + zeros) + 1);
	return 0;
}

/* --- domain.json ------------------------------------------------------ */

static const char *json_string(const cJSON *obj, const char *key)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(item) && item->valuestring[0] ?
	       item->valuestring : NULL;
}

int catalog_format_name_from_domain(const char *domain_json,
				    const char *object_type, char **name,
				    cs_error *err)
{
	cJSON *root = cJSON_Parse(domain_json);
	const char *found = NULL;

	*name = NULL;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return cs_error_set(err, CS_E_PROTOCOL,
			"Specify's /context/domain.json is not a JSON object");
	}
	if (!object_type)
		object_type = json_string(root, "defaultCollectionObjectType");
	if (object_type) {
		const cJSON *by_type = cJSON_GetObjectItemCaseSensitive(root,
			"collectionObjectTypeCatalogNumberFormats");
		found = json_string(by_type, object_type);
	}
	if (!found)
		found = json_string(root, "catalogNumFormatName");
	if (found)
		*name = strdup(found);
	cJSON_Delete(root);
	if (!found)
		return cs_error_set(err, CS_E_CONFIG,
			"Specify names no catalog-number format for this collection; "
			"give one with --format");
	return *name ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

/* --- File names ------------------------------------------------------- */

static int add_candidate(struct catalog_candidates *c, char *identifier,
			 const char *suffix, cs_error *err)
{
	struct candidate *cand = &c->v[c->n];

	cand->identifier = identifier;
	cand->suffix = strdup(suffix);
	if (!cand->suffix) {
		free(identifier);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	c->n++;
	return 0;
}

/* A suffix may follow an identifier only where the identifier cannot go
 * on: "0000000000002" is not 000000000 with a suffix "0002". */
static bool continues_identifier(const struct catalog_format *fmt,
				 unsigned char next)
{
	if (fmt->kind == KIND_NUMERIC)
		return is_digit(next);
	switch (fmt->parts[fmt->n_parts - 1].type) {
	case CATALOG_PART_ALPHA:
	case CATALOG_PART_NUMERIC:
	case CATALOG_PART_YEAR:
	case CATALOG_PART_ALPHANUMERIC:
		return in_class(fmt->parts[fmt->n_parts - 1].type, next);
	default:
		return false;
	}
}

/* "12_2" in a format that is one number: Specify pads a short number only
 * when it is the whole name, so say how to name the file instead. */
static int short_number_suffix(const struct catalog_format *fmt,
			       const char *base, int rc, cs_error *err)
{
	const struct part *num = lone_numeric(fmt);
	size_t width = num ? num->size : fmt->kind == KIND_NUMERIC ? NUMERIC_WIDTH : 0;
	size_t run = strspn(base, "0123456789");

	if (run == 0 || run >= width || !base[run])
		return rc;
	return cs_error_set(err, CS_E_INVALID,
		"'%.*s' starts with a number of %zu digits: a suffix is taken as "
		"one only after all %zu digits; write it as %0*d%.*s",
		QUOTE, base, run, width, (int)(width - run), 0, QUOTE, base);
}

/* Formats of fixed shape: the identifier is at the start of the name at
 * full width, or the name is a number padded as Specify pads it. */
static int resolve_fixed(const struct catalog_format *fmt, const char *base,
			 struct catalog_candidates *c, cs_error *err)
{
	char why[256];
	char *id;
	long used = fmt->kind == KIND_NUMERIC ?
		    (walk_numeric(base) == NUMERIC_WIDTH ? NUMERIC_WIDTH : -1) :
		    fmt->n_parts ? walk_parts(fmt, base, why, sizeof why) : -1;

	/* An identifier never ends in white space: typed, it would be
	 * trimmed, so no record can be found by it. */
	if (used > 0 && base[used] && !is_space((unsigned char)base[used - 1]) &&
	    !continues_identifier(fmt, base[used])) {
		id = strndup(base, used);
		return id ? add_candidate(c, id, base + used, err) :
			    cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	int rc = parse_clean(fmt, base, &id, err);
	if (rc < 0)
		return short_number_suffix(fmt, base, rc, err);
	return add_candidate(c, id, "", err);
}

static bool is_suffix_start(unsigned char c)
{
	return c == '_' || c == ' ' || c == '-' || c == '(';
}

/* Tries base[0..cut), without trailing white space, as a candidate. */
static int try_prefix(const struct catalog_format *fmt, const char *base,
		      size_t cut, struct catalog_candidates *c, cs_error *err)
{
	char *prefix, *id;
	size_t len = cut;

	while (len && is_space((unsigned char)base[len - 1]))
		len--;
	if (len == 0 || c->n == MAX_CANDIDATES)
		return 0;
	for (size_t i = 0; i < c->n; i++)
		if (strlen(c->v[i].identifier) == len &&
		    strncmp(c->v[i].identifier, base, len) == 0)
			return 0;
	prefix = strndup(base, len);
	if (!prefix)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	int rc = parse_clean(fmt, prefix, &id, NULL);
	free(prefix);
	if (rc == CS_E_NOMEM)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	return rc < 0 ? 0 : add_candidate(c, id, base + len, err);
}

/* Formats of variable length: the whole name, then every shorter prefix
 * that ends where a suffix begins ("_", " ", "-", "(", or a lone letter
 * after a digit at the end), longest first. */
static int resolve_variable(const struct catalog_format *fmt, const char *base,
			    struct catalog_candidates *c, cs_error *err)
{
	size_t len = strlen(base);
	int rc = try_prefix(fmt, base, len, c, err);

	if (rc == 0 && len >= 2 && is_alpha((unsigned char)base[len - 1]) &&
	    is_digit((unsigned char)base[len - 2]))
		rc = try_prefix(fmt, base, len - 1, c, err);
	for (size_t cut = len - 1; rc == 0 && cut > 0; cut--)
		if (is_suffix_start((unsigned char)base[cut]))
			rc = try_prefix(fmt, base, cut, c, err);
	if (rc == 0 && c->n == 0) {
		char *id;
		/* Nothing fits, so the whole name did not: say why. */
		rc = parse_clean(fmt, base, &id, err);
		free(id);
	}
	return rc;
}

static bool is_variable(const struct catalog_format *fmt)
{
	return fmt->kind == KIND_STRING || has_regex(fmt);
}

/* The name without directories and its last extension, trimmed. */
static char *file_base(const char *filename)
{
	const char *name = strrchr(filename, '/');
	const char *dot;

	name = name ? name + 1 : filename;
	dot = strrchr(name, '.');
	return dup_trimmed(name, dot ? (size_t)(dot - name) : strlen(name));
}

int catalog_resolve_filename(const struct catalog_format *fmt,
			     const char *filename,
			     struct catalog_candidates **out, cs_error *err)
{
	struct catalog_candidates *c = calloc(1, sizeof *c);
	char *base = file_base(filename);
	int rc;

	*out = NULL;
	if (!c || !base) {
		rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
		goto out;
	}
	rc = catalog_text_check(base, "the file name", err);
	if (rc == 0 && !*base)
		rc = cs_error_set(err, CS_E_INVALID,
			"the file name has nothing before its extension");
	if (rc == 0)
		rc = is_variable(fmt) ? resolve_variable(fmt, base, c, err) :
					resolve_fixed(fmt, base, c, err);
out:
	free(base);
	if (rc < 0)
		catalog_candidates_free(c);
	else
		*out = c;
	return rc;
}

size_t catalog_candidates_count(const struct catalog_candidates *c)
{
	return c->n;
}

const char *catalog_candidates_identifier(const struct catalog_candidates *c,
					  size_t index)
{
	return index < c->n ? c->v[index].identifier : NULL;
}

const char *catalog_candidates_suffix(const struct catalog_candidates *c,
				      size_t index)
{
	return index < c->n ? c->v[index].suffix : NULL;
}

void catalog_candidates_free(struct catalog_candidates *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].identifier);
		free(c->v[i].suffix);
	}
	free(c);
}

/* --- Names we create -------------------------------------------------- */

/* Copies s into out, each byte a file name must not hold made '_';
 * returns whether anything changed. */
static bool sanitise(const char *s, char *out)
{
	const unsigned char *u = (const unsigned char *)s;
	bool changed = false;
	size_t o = 0;

	for (size_t i = 0; u[i];) {
		unsigned long cp;
		size_t len = utf8_decode(u + i, &cp);
		bool bad = len == 0 || is_control(cp) || cp == '/' || cp == '\\' ||
			   (i == 0 && cp == '.');

		if (bad) {
			out[o++] = '_';
			i += len ? len : 1;
			changed = true;
		} else {
			memcpy(out + o, u + i, len);
			o += len, i += len;
		}
	}
	out[o] = '\0';
	return changed;
}

static bool extension_ok(const char *ext)
{
	size_t len = strlen(ext);

	if (len > 16)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alpha((unsigned char)ext[i]) && !is_digit((unsigned char)ext[i]))
			return false;
	return true;
}

int catalog_name_build(const char *identifier, unsigned index,
		       const char *extension, char **name, bool *changed,
		       cs_error *err)
{
	char stem[NAME_MAX_BYTES + 1], out[NAME_MAX_BYTES + 1];
	size_t id_len = strlen(identifier);
	bool fixed;
	int len;

	*name = NULL;
	if (!extension)
		extension = "";
	if (id_len == 0 || index == 0 || !extension_ok(extension))
		return cs_error_set(err, CS_E_INVALID,
			"cannot name a file for identifier '%.*s', image %u, "
			"extension '%.*s'", QUOTE, identifier, index, QUOTE, extension);
	if (id_len > NAME_MAX_BYTES)
		goto too_long;
	fixed = sanitise(identifier, stem);
	len = snprintf(out, sizeof out, "%s", stem);
	if (index > 1)
		len += snprintf(out + len, sizeof out - len, "_%u", index);
	if (len <= NAME_MAX_BYTES && *extension)
		len += snprintf(out + len, sizeof out - len, ".%s", extension);
	if (len > NAME_MAX_BYTES)
		goto too_long;
	if (changed)
		*changed = fixed;
	*name = strdup(out);
	return *name ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
too_long:
	return cs_error_set(err, CS_E_INVALID,
		"a file name for '%.*s...' would be longer than %d bytes",
		QUOTE, identifier, NAME_MAX_BYTES);
}

/* --- Scanners --------------------------------------------------------- */

/* AIM symbology identifier: ']', a letter for the symbology, a modifier
 * character (ISO/IEC 15424), sent by scanners set up to report it. */
static bool strip_aim(const char **s)
{
	const unsigned char *u = (const unsigned char *)*s;

	if (u[0] == ']' && is_alpha(u[1]) && (is_alpha(u[2]) || is_digit(u[2]))) {
		*s += 3;
		return true;
	}
	return false;
}

static bool strip_prefix(const char **s, const char *prefix)
{
	size_t len = prefix ? strlen(prefix) : 0;

	if (len && strncmp(*s, prefix, len) == 0) {
		*s += len;
		return true;
	}
	return false;
}

/* Returns the length of s without the suffix, if it ends with it. */
static size_t strip_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = suffix ? strlen(suffix) : 0;

	if (n && n <= len && memcmp(s + len - n, suffix, n) == 0)
		return len - n;
	return len;
}

int catalog_scan_parse(const struct catalog_format *fmt, const char *raw,
		       const struct catalog_scan_options *opts,
		       char **identifier, cs_error *err)
{
	const char *prefix = opts ? opts->prefix : NULL;
	const char *suffix = opts ? opts->suffix : NULL;
	char *outer = dup_trimmed(raw, strlen(raw)), *inner = NULL;
	const char *s = outer;
	int rc;

	*identifier = NULL;
	if (!outer)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	/* Scanners put the symbology identifier before or after their
	 * own prefix, depending on make and set-up. */
	bool aim = strip_aim(&s);
	if (strip_prefix(&s, prefix) && !aim)
		strip_aim(&s);
	inner = dup_trimmed(s, strip_suffix(s, strlen(s), suffix));
	if (!inner) {
		rc = cs_error_set(err, CS_E_NOMEM, "out of memory");
		goto out;
	}
	rc = catalog_text_check(inner, "the scan", err);
	if (rc == 0 && !*inner)
		rc = cs_error_set(err, CS_E_INVALID,
			"the scan is empty: scan the label again");
	if (rc == 0)
		rc = parse_clean(fmt, inner, identifier, err);
	if (rc < 0)
		cs_error_prefix(err, "scan not used");
out:
	free(outer);
	free(inner);
	return rc;
}
