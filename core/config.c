#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* Every setting copystand knows; a typo in the file is an error, not a
 * silently ignored line. */
static const struct {
	const char *key;
	const char *env;
} known[] = {
	{ "server", "COPYSTAND_SERVER" },
	{ "user", "COPYSTAND_USER" },
	{ "collection", "COPYSTAND_COLLECTION" },
	{ "password", "COPYSTAND_PASSWORD" },
	{ "ca-file", "COPYSTAND_CA_FILE" },
	{ "insecure", NULL },
	/* The copy stand (copystand station). */
	{ "camera", NULL },
	{ "port", NULL },
	{ "scanner", NULL },
	{ "scan-prefix", NULL },
	{ "scan-suffix", NULL },
	{ "dir", NULL },
	{ "unknown", NULL },
	{ "delete-from-card", NULL },
	{ "raw", NULL },
	{ "label", NULL },
	{ "stamp", NULL },
	{ "station-name", NULL },
	{ "watch", NULL },
	{ "watch-keep", NULL },
	{ "watch-mode", NULL },
	/* Attachment fields (station and upload). */
	{ "title", NULL },
	{ "ispublic", NULL },
	{ "license", NULL },
	{ "copyright-holder", NULL },
	{ "credit", NULL },
	{ "remarks", NULL },
};
#define N_KNOWN (sizeof known / sizeof known[0])

struct cs_config {
	char *values[N_KNOWN];
};

static int key_index(const char *key)
{
	for (size_t i = 0; i < N_KNOWN; i++)
		if (strcmp(known[i].key, key) == 0)
			return (int)i;
	return -1;
}

static void wipe_free(char *s)
{
	if (s) {
		volatile char *p = s;
		while (*p)
			*p++ = '\0';
		free(s);
	}
}

cs_config *config_new(void)
{
	return calloc(1, sizeof(cs_config));
}

void config_free(cs_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < N_KNOWN; i++)
		wipe_free(cfg->values[i]);
	free(cfg);
}

static int store(cs_config *cfg, int idx, const char *value, cs_error *err)
{
	char *copy = strdup(value);

	if (!copy)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	wipe_free(cfg->values[idx]);
	cfg->values[idx] = copy;
	return 0;
}

int config_set(cs_config *cfg, const char *key, const char *value, cs_error *err)
{
	int idx = key_index(key);

	if (idx < 0)
		return cs_error_set(err, CS_E_CONFIG, "unknown setting '%s'", key);
	return store(cfg, idx, value, err);
}

int config_merge(cs_config *dst, const cs_config *src, cs_error *err)
{
	for (size_t i = 0; i < N_KNOWN; i++) {
		int ret = src->values[i] ? store(dst, (int)i, src->values[i], err) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

const char *config_get(const cs_config *cfg, const char *key)
{
	int idx = key_index(key);
	return idx < 0 ? NULL : cfg->values[idx];
}

bool config_get_bool(const cs_config *cfg, const char *key)
{
	const char *v = config_get(cfg, key);
	return v && (strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
		     strcmp(v, "1") == 0);
}

char *config_default_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *path = NULL;

	if (xdg && xdg[0] == '/') {
		if (asprintf(&path, "%s/copystand/config", xdg) < 0)
			path = NULL;
	} else if (home) {
		if (asprintf(&path, "%s/.config/copystand/config", home) < 0)
			path = NULL;
	}
	return path;
}

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
			   end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	if (end - s >= 2 && s[0] == '"' && end[-1] == '"') {
		end[-1] = '\0';
		s++;
	}
	return s;
}

static int parse_line(cs_config *cfg, char *line, const char *path, int lineno,
		      bool *has_password, cs_error *err)
{
	char *eq, *key, *value;
	int idx;

	key = trim(line);
	if (!*key || *key == '#' || *key == ';')
		return 0;
	eq = strchr(key, '=');
	if (!eq)
		return cs_error_set(err, CS_E_CONFIG,
			"%s line %d: expected 'key = value'", path, lineno);
	*eq = '\0';
	key = trim(key);
	value = trim(eq + 1);
	idx = key_index(key);
	if (idx < 0)
		return cs_error_set(err, CS_E_CONFIG,
			"%s line %d: unknown setting '%s'", path, lineno, key);
	if (strcmp(key, "password") == 0)
		*has_password = true;
	return store(cfg, idx, value, err);
}

int config_load_file(cs_config *cfg, const char *path, cs_error *err)
{
	char *def = NULL, *line = NULL;
	size_t cap = 0;
	bool has_password = false;
	struct stat st;
	int lineno = 0, ret = 0;
	FILE *f;

	if (!path) {
		if (!(def = config_default_path()))
			return 0;
		path = def;
	}
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && def) {
			free(def);
			return 0;
		}
		ret = cs_error_set(err, CS_E_CONFIG, "cannot open the config file "
				   "%s: %s", path, strerror(errno));
		free(def);
		return ret;
	}
	while (ret == 0 && getline(&line, &cap, f) >= 0)
		ret = parse_line(cfg, line, path, ++lineno, &has_password, err);
	if (ret == 0 && has_password && fstat(fileno(f), &st) == 0 &&
	    (st.st_mode & 077)) {
		wipe_free(cfg->values[key_index("password")]);
		cfg->values[key_index("password")] = NULL;
		ret = cs_error_set(err, CS_E_CONFIG,
			"%s holds a password but others may read it (mode %03o): "
			"run 'chmod 600 %s'", path, (unsigned)(st.st_mode & 0777), path);
	}
	if (line) {
		memset(line, 0, cap);
		free(line);
	}
	fclose(f);
	free(def);
	return ret;
}

int config_load_env(cs_config *cfg, cs_error *err)
{
	for (size_t i = 0; i < N_KNOWN; i++) {
		const char *v = known[i].env ? getenv(known[i].env) : NULL;
		if (v && *v) {
			int ret = store(cfg, (int)i, v, err);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int config_make_dirs(char *path, cs_error *err)
{
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
		*p = saved;
		if (bad)
			return cs_error_set(err, CS_E_IO, "cannot make the folder %s: %s",
					    path, strerror(errno));
		if (!saved)
			return 0;
	}
}

int config_get_choice(const cs_config *cfg, const char *key,
		      const char *const *choices, int *out, cs_error *err)
{
	const char *v = config_get(cfg, key);
	char list[256] = "";

	*out = 0;
	if (!v)
		return 0;
	for (int i = 0; choices[i]; i++) {
		if (strcmp(v, choices[i]) == 0) {
			*out = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
			 i ? (choices[i + 1] ? ", " : " or ") : "", choices[i]);
	}
	/* It may come from the file, the environment or an option. */
	return cs_error_set(err, CS_E_CONFIG, "the setting %s ('%s =' in the config "
			    "file, or --%s) takes %s, not '%s'", key, key, key, list, v);
}

int config_attachment_defaults(const cs_config *cfg, metadata_defaults *out,
			       cs_error *err)
{
	static const char *const yes_no[] = { "false", "true", NULL };
	int pub = 0, ret = config_get(cfg, "ispublic") ?
		config_get_choice(cfg, "ispublic", yes_no, &pub, err) : 0;

	*out = (metadata_defaults){
		.title = config_get(cfg, "title"),
		.ispublic = config_get(cfg, "ispublic") ? pub : -1,
		.license = config_get(cfg, "license"),
		.copyright_holder = config_get(cfg, "copyright-holder"),
		.credit = config_get(cfg, "credit"),
		.remarks = config_get(cfg, "remarks"),
	};
	return ret;
}

int config_session_dir(const cs_config *cfg, char **out, cs_error *err)
{
	const char *dir = config_get(cfg, "dir"), *home = getenv("HOME");
	time_t t = time(NULL);
	struct tm tm;
	int ret;

	localtime_r(&t, &tm);
	if (dir)
		*out = strdup(dir);
	else if (!home || asprintf(out, "%s/Pictures/copystand/%04d-%02d-%02d", home,
				   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) < 0)
		*out = NULL;
	if (!*out)
		return cs_error_set(err, CS_E_CONFIG, "no session folder: give --dir");
	if ((ret = config_make_dirs(*out, err)))
		return ret;
	return 0;
}
