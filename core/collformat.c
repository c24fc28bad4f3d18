#include "collformat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "durable.h"
#include "sha256.h"
#include "uiformat.h"

/* What the last online start learned, per server and collection:
 * $XDG_CACHE_HOME/copystand/<kind>-<sha256(server, collection)>.  The
 * format, so a station can start while Specify is unreachable, is kind
 * "format": its name on the first line and the UIFormatters XML after it
 * (none when the collection has no such resource).  The collection's id
 * and Specify's name for it, so that a login need not ask for them, are
 * kind "collection": "id<TAB>name". */
static char *cache_path(const char *kind, const char *server, const char *coll)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *dir = NULL, *path = NULL, *key = NULL, hex[65];

	if (!server || !coll || asprintf(&key, "%s\n%s", server, coll) < 0)
		return NULL;
	sha256_ctx h;
	sha256_init(&h);
	sha256_update(&h, key, strlen(key));
	sha256_final_hex(&h, hex);
	free(key);
	if (xdg && xdg[0] == '/' ? asprintf(&dir, "%s/copystand", xdg) < 0 :
	    !home || asprintf(&dir, "%s/.cache/copystand", home) < 0)
		return NULL;
	/* ~/.cache itself may be missing on a fresh account. */
	*strrchr(dir, '/') = '\0';
	mkdir(dir, 0700);
	dir[strlen(dir)] = '/';
	if ((mkdir(dir, 0700) == 0 || errno == EEXIST) &&
	    asprintf(&path, "%s/%s-%.32s", dir, kind, hex) < 0)
		path = NULL;
	free(dir);
	return path;
}

/* Best effort: without a cache the station only needs Specify to start. */
static void cache_save(const char *kind, const char *server, const char *coll,
		       const char *head, const char *sep, const char *rest)
{
	char *path = cache_path(kind, server, coll);
	durable_file f;

	if (path && durable_open(&f, path, 0600, true, NULL) == 0) {
		if (durable_write(&f, head, strlen(head), NULL) == 0 &&
		    durable_write(&f, sep, 1, NULL) == 0 &&
		    durable_write(&f, rest ? rest : "", rest ? strlen(rest) : 0, NULL) == 0)
			durable_commit(&f, NULL, NULL, NULL);
		else
			durable_abort(&f);
	}
	free(path);
}

/* A saved file of kind: *head up to the first sep, *rest after it (NULL
 * when nothing follows); CS_E_NOT_FOUND when there is none, or it is not
 * what cache_save wrote. */
static int cache_load(const char *kind, const char *server, const char *coll, char sep,
		      char **head, char **rest, double *saved, cs_error *err)
{
	char *path = cache_path(kind, server, coll), *text = NULL, *end;
	FILE *f = path ? fopen(path, "r") : NULL;
	struct stat st;
	size_t n = 0;

	free(path);
	if (!f)
		return cs_error_set(err, CS_E_NOT_FOUND, "no %s saved from an earlier start",
				    kind);
	/* UIFormatters is tens of kilobytes; a cache larger than this is
	 * not ours. */
	if (fstat(fileno(f), &st) == 0 && st.st_size < (1 << 24) &&
	    (text = malloc((size_t)st.st_size + 1)))
		n = fread(text, 1, (size_t)st.st_size, f);
	*saved = (double)st.st_mtime;
	fclose(f);
	if (text)
		text[n] = '\0';
	if (!text || !(end = memchr(text, sep, n)) || end == text) {
		free(text);
		return cs_error_set(err, CS_E_NOT_FOUND, "the saved %s is damaged", kind);
	}
	*end = '\0';
	*rest = end[1] ? strdup(end + 1) : NULL;
	*head = text;
	return 0;
}

static int format_from(const char *name, const char *xml,
		       struct catalog_format **out, cs_error *err)
{
	struct uiformat_set *set = NULL;
	int ret = xml ? uiformat_set_new_from_xml(&set, xml, strlen(xml), err) : 0;

	if (ret == 0)
		ret = uiformat_set_get_format(set, name, out, err);
	uiformat_set_free(set);
	return ret;
}

int collformat_saved(const char *server, const char *collection,
		     struct catalog_format **out, double *saved, cs_error *err)
{
	char *xml = NULL, *name = NULL;
	double when = 0;
	int ret;

	*out = NULL;
	if ((ret = cache_load("format", server, collection, '\n', &name, &xml, &when, err)) == 0 &&
	    (ret = format_from(name, xml, out, err)) == 0 && saved)
		*saved = when;
	free(name);
	free(xml);
	return ret;
}

/* The collection's id and name, written only when they changed: every
 * start comes here, and a save is a sync. */
static void save_id(const char *server, const char *collection, const specify_info *info)
{
	char *name = NULL, id[24];

	if (collformat_saved_id(server, collection, &name) != info->collection_id ||
	    !name || strcmp(name, info->collection)) {
		snprintf(id, sizeof id, "%lld", info->collection_id);
		cache_save("collection", server, collection, id, "\t", info->collection);
	}
	free(name);
}

int collformat_fetch(specify_session *s, const char *server,
		     const char *collection, struct catalog_format **out,
		     cs_error *err)
{
	const specify_info *info = specify_session_info(s);
	char *xml = NULL;
	int ret;

	*out = NULL;
	if (!info->catalog_format)
		return cs_error_set(err, CS_E_CONFIG, "Specify names no catalog "
				    "number format for collection '%s'", info->collection);
	/* Without the resource, Specify's built-in formats still apply. */
	ret = specify_app_resource(s, "UIFormatters", &xml, err);
	if (ret == CS_E_NOT_FOUND)
		ret = 0;
	if (ret == 0 && (ret = format_from(info->catalog_format, xml, out, err)) == 0) {
		cache_save("format", server, collection, info->catalog_format, "\n", xml);
		save_id(server, collection, info);
	}
	free(xml);
	return ret;
}

long long collformat_saved_id(const char *server, const char *collection, char **name)
{
	char *id = NULL, *end;
	double when;
	long long n = 0;

	*name = NULL;
	if (cache_load("collection", server, collection, '\t', &id, name, &when, NULL) == 0) {
		n = strtoll(id, &end, 10);
		if (*end || n <= 0 || !*name) {
			free(*name);
			*name = NULL;
			n = 0;
		}
	}
	free(id);
	return n;
}

void collformat_forget_id(const char *server, const char *collection)
{
	char *path = cache_path("collection", server, collection);

	if (path)
		unlink(path);
	free(path);
}
