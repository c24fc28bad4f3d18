/* Minimal TAP producer for copystand's tests: each check is one "ok N" or
 * "not ok N" line; meson reads the stream (protocol: 'tap').  Header-only so
 * every test program stays one file. */
#ifndef COPYSTAND_TAP_H
#define COPYSTAND_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_count, tap_failed;

/* Prints text within one TAP line: a line break inside (a screen's two
 * lines, say) would start a line meson cannot read, so it becomes " | ". */
__attribute__((unused))
static void tap_put(const char *text)
{
	for (const char *c = text; *c; c++) {
		if (*c == '\n' || *c == '\r')
			fputs(" | ", stdout);
		else
			putchar(*c);
	}
}

__attribute__((format(printf, 2, 3), unused))
static int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_count);
	tap_put(text ? text : fmt);
	putchar('\n');
	free(text);
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

__attribute__((unused))
static int tap_is_str_(const char *got, const char *want, const char *what,
		       const char *file, int line)
{
	int same = (got == NULL && want == NULL) ||
		   (got && want && strcmp(got, want) == 0);
	tap_ok(same, "%s", what);
	if (!same) {
		printf("#   %s:%d: got \"", file, line);
		tap_put(got ? got : "(null)");
		printf("\", want \"");
		tap_put(want ? want : "(null)");
		printf("\"\n");
	}
	return same;
}

__attribute__((unused))
static int tap_is_int_(long long got, long long want, const char *what,
		       const char *file, int line)
{
	tap_ok(got == want, "%s", what);
	if (got != want)
		printf("#   %s:%d: got %lld, want %lld\n", file, line, got, want);
	return got == want;
}

#define tap_is_str(got, want, what) tap_is_str_((got), (want), (what), __FILE__, __LINE__)
#define tap_is_int(got, want, what) tap_is_int_((got), (want), (what), __FILE__, __LINE__)

__attribute__((format(printf, 1, 2), unused))
static void tap_diag(const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	fputs("# ", stdout);
	tap_put(text ? text : fmt);
	putchar('\n');
	fflush(stdout);
	/* meson shows a failed test's stderr, not its TAP comments: a CI log
	 * then says what went wrong. */
	fprintf(stderr, "%s\n", text ? text : fmt);
	free(text);
}

/* Ends the plan; a whole program skipped says why (meson counts it skipped). */
__attribute__((unused))
static int tap_skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	return 0;
}

__attribute__((unused))
static int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
