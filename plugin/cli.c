#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "catalog.h"
#include "sha256.h"
#include "uiformat.h"

void cli_init(cli *c)
{
	memset(c, 0, sizeof *c);
	c->opts = config_new();
}

void cli_free(cli *c)
{
	config_free(c->opts);
	config_free(c->cfg);
	if (c->asked) {
		memset(c->asked, 0, strlen(c->asked));
		free(c->asked);
	}
}

int cli_common_option(cli *c, int opt, const char *arg, cs_error *err)
{
	static const struct { int opt; const char *key; } map[] = {
		{ CLI_OPT_SERVER, "server" },
		{ CLI_OPT_USER, "user" },
		{ CLI_OPT_COLLECTION, "collection" },
		{ CLI_OPT_CA_FILE, "ca-file" },
		{ CLI_OPT_INSECURE, "insecure" },
	};

	if (!c->opts)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	if (opt == CLI_OPT_CONFIG) {
		c->config_path = arg;
		return 1;
	}
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (map[i].opt != opt)
			continue;
		int ret = config_set(c->opts, map[i].key, arg ? arg : "true", err);
		return ret ? ret : 1;
	}
	return 0;
}

int cli_load(cli *c, cs_error *err)
{
	int ret;

	config_free(c->cfg);
	if (!(c->cfg = config_new()) || !c->opts)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	if ((ret = config_load_file(c->cfg, c->config_path, err)) ||
	    (ret = config_load_env(c->cfg, err)) ||
	    (ret = config_merge(c->cfg, c->opts, err)))
		return ret;
	return 0;
}

/* Reads a line from the terminal with echo off. */
static int prompt_password(const char *user, const char *server, char **out,
			   cs_error *err)
{
	struct termios old, quiet;
	char buf[512];
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	FILE *tty;
	bool ok;

	if (fd < 0)
		return cs_error_set(err, CS_E_CONFIG, "no password: set "
			"COPYSTAND_PASSWORD, or put 'password =' in the config "
			"file (chmod 600), or run on a terminal to be asked");
	tty = fdopen(fd, "r+");
	if (!tty) {
		close(fd);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	fprintf(tty, "Specify password for %s at %s: ", user, server);
	fflush(tty);
	bool restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	ok = fgets(buf, sizeof buf, tty) != NULL;
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	if (!ok)
		return cs_error_set(err, CS_E_CONFIG, "no password entered");
	buf[strcspn(buf, "\r\n")] = '\0';
	*out = strdup(buf);
	memset(buf, 0, sizeof buf);
	return *out ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

int cli_login(cli *c, specify_login *out, cs_error *err)
{
	int ret;

	if (!c->cfg && (ret = cli_load(c, err)))
		return ret;
	*out = (specify_login){
		.server = config_get(c->cfg, "server"),
		.user = config_get(c->cfg, "user"),
		.collection = config_get(c->cfg, "collection"),
		.ca_file = config_get(c->cfg, "ca-file"),
		.insecure = config_get_bool(c->cfg, "insecure"),
		.password = config_get(c->cfg, "password"),
	};
	if (!out->password && out->server && out->user) {
		if (!c->asked &&
		    (ret = prompt_password(out->user, out->server, &c->asked, err)))
			return ret;
		out->password = c->asked;
	}
	return 0;
}

int cli_session_open(cli *c, specify_session **out, cs_error *err)
{
	specify_login login;
	int ret = cli_login(c, &login, err);

	if (ret)
		return ret;
	if (login.insecure)
		fprintf(stderr, "copystand: warning: --insecure: TLS certificates "
			"are not checked, so anyone on the network path could "
			"read your password and images\n");
	return specify_session_login(&login, out, err);
}

int cli_make_dirs(char *path, cs_error *err)
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

int cli_choice(const cli *c, const char *key, const char *const *choices,
	       int *out, cs_error *err)
{
	const char *v = config_get(c->cfg, key);
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
	return cs_error_set(err, CS_E_CONFIG, "--%s takes %s, not '%s'", key, list, v);
}

int cli_attachment_defaults(const cli *c, metadata_defaults *out, cs_error *err)
{
	static const char *const yes_no[] = { "false", "true", NULL };
	int pub = 0, ret = config_get(c->cfg, "ispublic") ?
		cli_choice(c, "ispublic", yes_no, &pub, err) : 0;

	*out = (metadata_defaults){
		.title = config_get(c->cfg, "title"),
		.ispublic = config_get(c->cfg, "ispublic") ? pub : -1,
		.license = config_get(c->cfg, "license"),
		.copyright_holder = config_get(c->cfg, "copyright-holder"),
		.credit = config_get(c->cfg, "credit"),
		.remarks = config_get(c->cfg, "remarks"),
	};
	return ret;
}

int cli_fail(const cs_error *err)
{
	fprintf(stderr, "copystand: %s\n", err->msg[0] ? err->msg : "failed");
	return 1;
}

/* The format of the last online start, per server and collection, so a
 * station can start while Specify is unreachable:
 * $XDG_CACHE_HOME/copystand/format-<sha256(server, collection)>, holding
 * the format's name on the first line and the UIFormatters XML after it
 * (none when the collection has no such resource). */
static char *format_cache_path(const cli *c)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	const char *server = config_get(c->cfg, "server");
	const char *coll = config_get(c->cfg, "collection");
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
	if (cli_make_dirs(dir, NULL) == 0 && asprintf(&path, "%s/format-%.32s", dir, hex) < 0)
		path = NULL;
	free(dir);
	return path;
}

/* Best effort: without a cache the station only needs Specify to start. */
static void format_cache_save(const cli *c, const char *name, const char *xml)
{
	char *path = format_cache_path(c), *tmp = NULL;
	FILE *f;
	bool ok;

	if (!path || asprintf(&tmp, "%s.tmp%ld", path, (long)getpid()) < 0) {
		free(path);
		return;
	}
	if ((f = fopen(tmp, "w"))) {
		ok = fprintf(f, "%s\n%s", name, xml ? xml : "") >= 0;
		ok = fflush(f) == 0 && ok && fsync(fileno(f)) == 0;
		ok = fclose(f) == 0 && ok && rename(tmp, path) == 0;
		if (!ok)
			unlink(tmp);
	}
	free(tmp);
	free(path);
}

static int format_cache_load(const cli *c, char **name, char **xml,
			     double *saved, cs_error *err)
{
	char *path = format_cache_path(c), *text = NULL, *nl;
	FILE *f = path ? fopen(path, "r") : NULL;
	struct stat st;
	size_t n = 0;

	free(path);
	if (!f)
		return cs_error_set(err, CS_E_NOT_FOUND, "no catalog-number format saved "
				    "from an earlier start");
	/* UIFormatters is tens of kilobytes; a cache larger than this is
	 * not ours. */
	if (fstat(fileno(f), &st) == 0 && st.st_size < (1 << 24) &&
	    (text = malloc((size_t)st.st_size + 1)))
		n = fread(text, 1, (size_t)st.st_size, f);
	*saved = (double)st.st_mtime;
	fclose(f);
	if (text)
		text[n] = '\0';
	if (!text || !(nl = memchr(text, '\n', n)) || nl == text) {
		free(text);
		return cs_error_set(err, CS_E_NOT_FOUND, "the saved catalog-number format is damaged");
	}
	*nl = '\0';
	*xml = nl[1] ? strdup(nl + 1) : NULL;
	*name = text;
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

int cli_catalog_format(cli *c, specify_session *s, struct catalog_format **out,
		       cs_error *err)
{
	char *xml = NULL, *name = NULL;
	double saved = 0;
	int ret;

	*out = NULL;
	if (!s) {
		if ((ret = format_cache_load(c, &name, &xml, &saved, err)) == 0 &&
		    (ret = format_from(name, xml, out, err)) == 0)
			c->format_saved = saved;
		free(name);
		free(xml);
		return ret;
	}
	const specify_info *info = specify_session_info(s);
	if (!info->catalog_format)
		return cs_error_set(err, CS_E_CONFIG, "Specify names no catalog "
				    "number format for collection '%s'", info->collection);
	/* Without the resource, Specify's built-in formats still apply. */
	ret = specify_app_resource(s, "UIFormatters", &xml, err);
	if (ret == CS_E_NOT_FOUND)
		ret = 0;
	if (ret == 0 && (ret = format_from(info->catalog_format, xml, out, err)) == 0)
		format_cache_save(c, info->catalog_format, xml);
	free(xml);
	return ret;
}
