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
#include "collformat.h"

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

/* cli_login, with a warning on the terminal when TLS is not checked. */
static int login_warned(cli *c, specify_login *login, cs_error *err)
{
	int ret = cli_login(c, login, err);

	if (ret == 0 && login->insecure)
		fprintf(stderr, "copystand: warning: --insecure: TLS certificates "
			"are not checked, so anyone on the network path could "
			"read your password and images\n");
	return ret;
}

int cli_session_start(cli *c, specify_session **out, cs_error *err)
{
	specify_login login;
	char *name = NULL;
	int ret = login_warned(c, &login, err);

	if (ret)
		return ret;
	login.collection_id = collformat_saved_id(login.server, login.collection, &name);
	login.collection_name = name;
	if ((ret = specify_session_open(&login, out, err)) && name)
		collformat_forget_id(login.server, login.collection);
	free(name);
	return ret;
}

int cli_session_load(cli *c, specify_session *s, cs_error *err)
{
	int ret = specify_session_load(s, err);

	if (ret)
		collformat_forget_id(config_get(c->cfg, "server"),
				     config_get(c->cfg, "collection"));
	return ret;
}

int cli_session_open(cli *c, specify_session **out, cs_error *err)
{
	specify_login login;
	int ret = login_warned(c, &login, err);

	return ret ? ret : specify_session_login(&login, out, err);
}

int cli_fail(const cs_error *err)
{
	fprintf(stderr, "copystand: %s\n", err->msg[0] ? err->msg : "failed");
	return 1;
}

int cli_catalog_format(cli *c, specify_session *s, struct catalog_format **out,
		       cs_error *err)
{
	const char *server = config_get(c->cfg, "server");
	const char *collection = config_get(c->cfg, "collection");

	return s ? collformat_fetch(s, server, collection, out, err) :
		collformat_saved(server, collection, out, &c->format_saved, err);
}
