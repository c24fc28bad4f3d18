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
/* Presses begun and not yet handed in; the oldest is forgotten. */
#define PRESSES_MAX 16

struct copystand {
	cs_config *cfg;
	struct catalog_format *fmt;
	char *dir, *jpath;
	station *st;
	pthread_mutex_t lock;
	copystand_event events[EVENTS_MAX];
	size_t first, count;
	int wake[2];                /* readable while events wait */
	struct {
		unsigned long id;
		station_shot shot;
	} presses[PRESSES_MAX];
	unsigned long next_press;
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
		[STATION_NEWS_EARLIER] = COPYSTAND_EVENT_EARLIER,
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

int copystand_set_catalog_number_at(copystand *c, const char *text, double scanned_at,
				    char *err, size_t errlen)
{
	cs_error e = { 0 };
	int ret = c && text ? station_scan_at(c->st, text, scanned_at, &e) :
		cs_error_set(&e, CS_E_INVALID, "no station or no text");

	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_set_catalog_number(copystand *c, const char *text, char *err,
				 size_t errlen)
{
	return copystand_set_catalog_number_at(c, text, 0, err, errlen);
}

int copystand_press_begin(copystand *c, double asked_at, unsigned long *press, char *err,
			  size_t errlen)
{
	if (!c || !press)
		return fail(COPYSTAND_E_INVALID, &(cs_error){ CS_E_INVALID, "no station" },
			    err, errlen);
	pthread_mutex_lock(&c->lock);
	*press = ++c->next_press;
	c->presses[*press % PRESSES_MAX].id = *press;
	pthread_mutex_unlock(&c->lock);
	station_shot *shot = &c->presses[*press % PRESSES_MAX].shot;
	station_shot_prepare(c->st, shot);
	snprintf(shot->source, sizeof shot->source, "%s", STATION_HOST_CAMERA);
	if (asked_at > 0 && asked_at < shot->lo)
		shot->lo = asked_at;
	return 0;
}

int copystand_submit_press(copystand *c, unsigned long press, const char *const *paths,
			   size_t n, char **name, char *err, size_t errlen)
{
	station_shot shot;
	cs_error e = { 0 };
	int ret = 0;

	if (!c || !paths)
		ret = cs_error_set(&e, CS_E_INVALID, "no station or no files");
	if (ret == 0) {
		pthread_mutex_lock(&c->lock);
		if (c->presses[press % PRESSES_MAX].id != press || !press)
			ret = cs_error_set(&e, CS_E_INVALID, "press %lu was not begun, or is "
					   "forgotten (16 more began since): hand its files "
					   "in with copystand_submit_files", press);
		shot = c->presses[press % PRESSES_MAX].shot;
		c->presses[press % PRESSES_MAX].id = 0;
		pthread_mutex_unlock(&c->lock);
	}
	if (ret == 0)
		ret = station_submit_copies(c->st, &shot, paths, n, name, &e);
	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_submit_files(copystand *c, const char *const *paths, size_t n,
			   char **name, char *err, size_t errlen)
{
	cs_error e = { 0 };
	int ret = c && paths ? station_submit_copies(c->st, NULL, paths, n, name, &e) :
		cs_error_set(&e, CS_E_INVALID, "no station or no files");

	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_camera_clock(copystand *c, double before, double after,
			   double camera_time, double res, char *err, size_t errlen)
{
	cs_error e = { 0 };
	int ret = !c || !(before <= after) || !(res > 0) || !(camera_time > 0) ?
		cs_error_set(&e, CS_E_INVALID, "a clock reading needs before <= after, a "
			     "camera time and a resolution") :
		station_clock_read(c->st, STATION_HOST_CAMERA, before, after, camera_time, res,
				   NULL, &e);

	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_resolve_held(copystand *c, enum copystand_choice choice,
			   char *err, size_t errlen)
{
	static const enum station_choice choices[] = {
		[COPYSTAND_KEEP_SCAN] = STATION_KEEP_SCAN,
		[COPYSTAND_TAKE_LABEL] = STATION_TAKE_LABEL,
		[COPYSTAND_NUMBER_BEFORE] = STATION_BEFORE,
		[COPYSTAND_NUMBER_AFTER] = STATION_AFTER,
	};
	cs_error e = { 0 };
	int ret = !c || (unsigned)choice > COPYSTAND_NUMBER_AFTER ?
		cs_error_set(&e, CS_E_INVALID, "no station, or no such choice") :
		station_resolve_held(c->st, choices[choice], &e);

	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_resolve_held_number(copystand *c, const char *number, char *err,
				  size_t errlen)
{
	cs_error e = { 0 };
	int ret = c && number ? station_resolve_held_number(c->st, number, &e) :
		cs_error_set(&e, CS_E_INVALID, "no station or no number");

	return ret ? fail(ret, &e, err, errlen) : 0;
}

int copystand_held(copystand *c, copystand_held_info *out)
{
	station_status st;

	if (!c || !out)
		return 0;
	station_get_status(c->st, &st);
	memset(out, 0, sizeof *out);
	if (!st.held_name[0])
		return 0;
	snprintf(out->file, sizeof out->file, "%s", st.held_name);
	out->press = st.held_press;
	snprintf(out->before, sizeof out->before, "%s", st.held_before);
	snprintf(out->after, sizeof out->after, "%s", st.held_after);
	snprintf(out->label, sizeof out->label, "%s", st.held_label);
	return 1;
}

int copystand_earlier(copystand *c, copystand_earlier_info *out, char *err, size_t errlen)
{
	station_earlier e;
	cs_error ce = { 0 };
	int ret = c && out ? station_earlier_files(c->st, &e, &ce) :
		cs_error_set(&ce, CS_E_INVALID, "no station or nowhere to put the answer");

	if (ret)
		return fail(ret, &ce, err, errlen);
	memset(out, 0, sizeof *out);
	out->count = e.count;
	out->ndirs = e.ndirs;
	_Static_assert(sizeof out->dirs == sizeof e.dirs, "the folders' sizes agree");
	memcpy(out->dirs, e.dirs, sizeof out->dirs);
	out->more_dirs = e.more_dirs;
	station_earlier_say(&e, out->message, sizeof out->message);
	return 0;
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
