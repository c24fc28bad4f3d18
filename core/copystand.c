/* The public face for capture hosts (copystand.h): a station without a
 * camera or a terminal, driven by the host, over the same core as
 * `copystand station`. */
#include "copystand.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collformat.h"
#include "config.h"
#include "journal.h"
#include "station.h"

#ifndef COPYSTAND_VERSION
#error "COPYSTAND_VERSION must be the project's version"
#endif

/* Events kept for a host that does not read them; the oldest go first. */
#define EVENTS_MAX 256

struct copystand {
	cs_config *cfg;
	struct catalog_format *fmt;
	char *dir, *jpath;
	station *st;
	pthread_mutex_t lock;
	copystand_event events[EVENTS_MAX];
	size_t first, count;
	int wake[2];                /* readable while events wait */
};

const char *copystand_version(void)
{
	return COPYSTAND_VERSION;
}

void copystand_free(void *p)
{
	free(p);
}

static int fail(int ret, const cs_error *e, char *err, size_t errlen)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", e->msg[0] ? e->msg : "failed");
	return ret;
}

static void on_news(void *ud, const station_news *n)
{
	static const enum copystand_event_kind kinds[] = {
		[STATION_NEWS_CHECKED] = COPYSTAND_EVENT_CHECKED,
		[STATION_NEWS_ATTACHED] = COPYSTAND_EVENT_ATTACHED,
		[STATION_NEWS_PROBLEM] = COPYSTAND_EVENT_PROBLEM,
		[STATION_NEWS_ONLINE] = COPYSTAND_EVENT_ONLINE,
		[STATION_NEWS_OFFLINE] = COPYSTAND_EVENT_OFFLINE,
	};
	copystand *c = ud;

	pthread_mutex_lock(&c->lock);
	if (c->count == EVENTS_MAX) {
		c->first = (c->first + 1) % EVENTS_MAX;
		c->count--;
	}
	copystand_event *ev = &c->events[(c->first + c->count++) % EVENTS_MAX];
	ev->kind = kinds[n->kind];
	snprintf(ev->identifier, sizeof ev->identifier, "%s", n->identifier);
	snprintf(ev->file, sizeof ev->file, "%s", n->file);
	snprintf(ev->message, sizeof ev->message, "%s", n->message);
	pthread_mutex_unlock(&c->lock);
	/* A full pipe means the host has wake-ups enough already. */
	ssize_t w = write(c->wake[1], "", 1);
	(void)w;
}

static int load_settings(copystand *c, const copystand_options *o, cs_error *err)
{
	const char *const keys[] = { "server", "user", "collection", "password", "dir",
				     "ca-file" };
	const char *values[] = { o->server, o->user, o->collection, o->password, o->dir,
				 o->ca_file };
	int ret;

	if (!(c->cfg = config_new()))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	if ((ret = config_load_file(c->cfg, o->config, err)) ||
	    (ret = config_load_env(c->cfg, err)))
		return ret;
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		if (values[i] && (ret = config_set(c->cfg, keys[i], values[i], err)))
			return ret;
	if (!config_get(c->cfg, "password"))
		return cs_error_set(err, CS_E_CONFIG, "no password: set COPYSTAND_PASSWORD, "
				    "or put 'password =' in the config file (chmod 600)");
	return 0;
}

/* The collection's catalog-number format: from Specify, or as saved at an
 * earlier start when Specify cannot be reached. */
static int load_format(copystand *c, const specify_login *login, cs_error *err)
{
	specify_session *s = NULL;
	int ret = specify_session_login(login, &s, err);

	if (ret == 0)
		ret = collformat_fetch(s, login->server, login->collection, &c->fmt, err);
	if (s) {
		cs_error ignored;
		specify_session_logout(s, &ignored);
		specify_session_free(s);
	}
	if (ret && cs_error_is_transient(ret)) {
		cs_error why = *err;
		if (collformat_saved(login->server, login->collection, &c->fmt, NULL, err))
			return cs_error_set(err, why.code, "%s; and no catalog-number format "
					    "was saved by an earlier start with Specify",
					    why.msg);
		ret = 0;
	}
	return ret;
}

static int open_station(copystand *c, const copystand_options *o,
			const specify_login *login, cs_error *err)
{
	station_options so = { 0 };
	int ret;

	/* `label` is not read: labels are read by hardware/barcode, which is
	 * the station's and not in this library. */
	if ((ret = station_options_from_config(c->cfg, &so, NULL, err)) ||
	    (ret = config_session_dir(c->cfg, &c->dir, err)))
		return ret;
	if (!(c->jpath = o->journal ? strdup(o->journal) : journal_default_path(err)))
		return o->journal ? cs_error_set(err, CS_E_NOMEM, "out of memory") : err->code;
	so.journal_path = c->jpath;
	so.login = *login;
	so.format = c->fmt;
	so.dir = c->dir;
	so.on_news = on_news;
	so.ud = c;
	return station_open(&so, &c->st, err);
}

int copystand_open(const copystand_options *o, copystand **out, char *err,
		   size_t errlen)
{
	static const copystand_options none = { 0 };
	copystand *c = calloc(1, sizeof *c);
	cs_error e = { 0 };
	int ret;

	*out = NULL;
	if (!c)
		return fail(COPYSTAND_E_NOMEM, &(cs_error){ CS_E_NOMEM, "out of memory" },
			    err, errlen);
	pthread_mutex_init(&c->lock, NULL);
	c->wake[0] = c->wake[1] = -1;
	if (pipe2(c->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
		copystand_close(c);
		return fail(COPYSTAND_E_IO, &(cs_error){ CS_E_IO, "cannot make a pipe" },
			    err, errlen);
	}
	if ((ret = load_settings(c, o ? o : &none, &e)) == 0) {
		specify_login login = {
			.server = config_get(c->cfg, "server"),
			.user = config_get(c->cfg, "user"),
			.collection = config_get(c->cfg, "collection"),
			.password = config_get(c->cfg, "password"),
			.ca_file = config_get(c->cfg, "ca-file"),
			.insecure = config_get_bool(c->cfg, "insecure"),
		};
		if ((ret = load_format(c, &login, &e)) == 0)
			ret = open_station(c, o ? o : &none, &login, &e);
	}
	if (ret) {
		copystand_close(c);
		return fail(ret, &e, err, errlen);
	}
	*out = c;
	return 0;
}

int copystand_set_catalog_number(copystand *c, const char *text, char *err,
				 size_t errlen)
{
	cs_error e = { 0 };
	int ret = c && text ? station_scan(c->st, text, &e) :
		cs_error_set(&e, CS_E_INVALID, "no station or no text");

	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_submit_files(copystand *c, const char *const *paths, size_t n,
			   char **name, char *err, size_t errlen)
{
	cs_error e = { 0 };
	int ret = c && paths ? station_submit_copies(c->st, paths, n, name, &e) :
		cs_error_set(&e, CS_E_INVALID, "no station or no files");

	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_event_fd(copystand *c)
{
	return c ? c->wake[0] : -1;
}

int copystand_next_event(copystand *c, copystand_event *ev)
{
	char buf[64];
	int got = 0;

	if (!c || !ev)
		return 0;
	pthread_mutex_lock(&c->lock);
	if (c->count) {
		*ev = c->events[c->first];
		c->first = (c->first + 1) % EVENTS_MAX;
		c->count--;
		got = 1;
	}
	/* Drained only when empty, so a level-triggered watch stays quiet. */
	if (c->count == 0)
		while (read(c->wake[0], buf, sizeof buf) > 0)
			;
	pthread_mutex_unlock(&c->lock);
	return got;
}

void copystand_close(copystand *c)
{
	if (!c)
		return;
	station_close(c->st);
	catalog_format_free(c->fmt);
	config_free(c->cfg);
	free(c->dir);
	free(c->jpath);
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int copystand_submit_to_running(const char *path, char **name, char *err,
				size_t errlen)
{
	const char *paths[] = { path };
	cs_error e = { 0 };
	char *jpath = path ? journal_default_path(&e) : NULL;
	int ret = !path ? cs_error_set(&e, CS_E_INVALID, "no file given") :
		!jpath ? e.code : station_submit_to_running(jpath, paths, 1, name, &e);

	free(jpath);
	return ret ? fail(ret, &e, err, errlen) : 0;
}
