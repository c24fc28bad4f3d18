#include "specify.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "catalog.h"
#include "http.h"

/* Specify's docker image runs gunicorn, whose default limit_request_line
 * is 4094 bytes for "GET <path> HTTP/1.1" (nginx in front allows 8 KiB):
 * paths stay under this. */
#define MAX_PATH 4000
/* Bytes of values per query-builder request: 25,000 catalog numbers,
 * far below nginx's default 1 MiB body limit. */
#define QUERY_CHUNK (256u << 10)
/* Names per get_upload_params request (keeps the JSON body small). */
#define RESERVE_CHUNK 500
/* Tokens of reservations kept for their uploads; one is used while well
 * inside its 150 s window, later a fresh get_token replaces it. */
#define TOKEN_CACHE 64
#define TOKEN_FRESH_S 90
/* A reply from Specify larger than this is not something we asked for
 * (a lookup chunk of full records with their attachments stays far below). */
#define MAX_REPLY (64u << 20)

struct specify_session {
	http_client *http;
	char *server;           /* without trailing slash */
	char *referer;          /* server + "/" */
	char *user;
	char *password;
	long long collection_id;
	char *collection;
	bool unchecked;         /* collection_id and collection are an earlier
				 * login's, not yet checked against this one */
	char *agent;
	char *catalog_format;
	specify_info info;

	pthread_mutex_t lock;   /* guards csrf, generation, assets, no_query,
				 * bulk, tokens, uploading, closing */
	char *csrf;
	unsigned generation;    /* bumped by each successful (re)login */
	bool logged_in;
	bool no_query;          /* the user may not run queries */
	int bulk;               /* bulk create: 0 not asked yet, 1 yes, -1 no */
	/* One first load of the settings or the bulk answer at a time:
	 * whoever comes second finds it loaded instead of asking again. */
	pthread_mutex_t load_lock;
	pthread_t warm;         /* specify_session_warm's thread */
	bool warming;
	pthread_cond_t upload_began;   /* uploading or closing became true */
	bool uploading;         /* an upload has begun */
	bool closing;           /* specify_session_free has begun */

	bool assets_loaded;
	specify_assets assets;
	char *assets_strings[5];

	specify_reservation tokens[TOKEN_CACHE];
	int ntokens;
};

static void wipe_free(char *s)
{
	if (s) {
		volatile char *p = s;
		while (*p)
			*p++ = '\0';
		free(s);
	}
}

/* Only plain lower-case table and field names reach a URL. */
static bool name_is_safe(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

static bool is_json(const http_response *r)
{
	return strncasecmp(r->content_type, "application/json", 16) == 0;
}

/* A row id from JSON: a whole number from 1 to 2^53 (what a double holds
 * exactly), else 0.  Never a cast of NaN (a missing key), an infinity or
 * a huge value: C leaves those undefined. */
static long long json_id(const cJSON *item)
{
	double v = cJSON_GetNumberValue(item);

	if (!(v >= 1 && v <= 9007199254740992.0) || v != (double)(long long)v)
		return 0;
	return (long long)v;
}

/* --- requests ------------------------------------------------------- */

struct call {
	const char *method;
	const char *path;        /* below the server URL, or a full URL */
	const char *body;        /* JSON */
	size_t max_body;
	bool no_renew;           /* login itself: never renew on 403 */
	bool once;               /* creates something: never resent by curl */
};

static bool is_unsafe(const char *method)
{
	return method && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static int session_renew(specify_session *s, unsigned seen, cs_error *err);

/* A 403 that means "no session" (empty body) or a stale CSRF token (HTML
 * page), as opposed to a permission denial (JSON). */
static bool lost_session(const http_response *r)
{
	return r->status == 403 && !is_json(r);
}

static int call_once(specify_session *s, const struct call *c,
		     http_response *resp, unsigned *generation, cs_error *err)
{
	char *url = NULL, csrf_header[256] = "", referer[600] = "";
	const char *headers[5];
	int nh = 0, ret;

	memset(resp, 0, sizeof *resp);   /* callers clear it, whatever happens */
	if (asprintf(&url, "%s%s", s->server, c->path) < 0)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	headers[nh++] = "Accept: application/json";
	pthread_mutex_lock(&s->lock);
	*generation = s->generation;
	if (is_unsafe(c->method) && s->csrf) {
		snprintf(csrf_header, sizeof csrf_header, "X-CSRFToken: %s", s->csrf);
		headers[nh++] = csrf_header;
	}
	pthread_mutex_unlock(&s->lock);
	if (is_unsafe(c->method)) {
		/* Django checks Referer on HTTPS when no Origin is sent. */
		snprintf(referer, sizeof referer, "Referer: %s", s->referer);
		headers[nh++] = referer;
	}
	headers[nh] = NULL;
	http_request req = {
		.method = c->method,
		.url = url,
		.headers = headers,
		.content_type = c->body ? "application/json" : NULL,
		.body = c->body,
		.body_len = c->body ? strlen(c->body) : 0,
		.max_body = c->max_body ? c->max_body : MAX_REPLY,
		.once = c->once,
	};
	ret = http_client_perform(s->http, &req, resp, err);
	free(url);
	return ret;
}

/* Performs a Specify request; a lost session is renewed once and the
 * request sent again (a 403 means Specify did nothing, so that is safe). */
static int call(specify_session *s, const struct call *c, http_response *resp,
		cs_error *err)
{
	unsigned seen;
	int ret = call_once(s, c, resp, &seen, err);

	if (ret || c->no_renew || !lost_session(resp))
		return ret;
	http_response_clear(resp);
	if ((ret = session_renew(s, seen, err)))
		return ret;
	ret = call_once(s, c, resp, &seen, err);
	if (ret == 0 && lost_session(resp)) {
		http_response_clear(resp);
		return cs_error_set(err, CS_E_SESSION,
			"Specify ended the session and refused a new one for "
			"user '%s': log in to Specify in a browser to check the "
			"account, then try again", s->user);
	}
	return ret;
}

/* Text of a short plain-text error body, for messages. */
static void body_excerpt(const http_response *r, char *out, size_t outsz)
{
	size_t n = 0;

	out[0] = '\0';
	if (!r->body || is_json(r) || memchr(r->body, '<', r->body_len))
		return;
	for (size_t i = 0; i < r->body_len && n + 1 < outsz && n < 200; i++) {
		unsigned char ch = (unsigned char)r->body[i];
		out[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	out[n] = '\0';
}

/* Turns a status Specify should not have given into a message. */
static int status_error(specify_session *s, const http_response *r,
			const char *what, cs_error *err)
{
	char text[256];

	body_excerpt(r, text, sizeof text);
	switch (r->status) {
	case 403:
		if (is_json(r))
			return cs_error_set(err, CS_E_ACCESS,
				"%s: Specify denied user '%s' permission (%s): ask "
				"a Specify administrator to grant it in Security "
				"and Accounts", what, s->user,
				text[0] ? text : "403");
		return cs_error_set(err, CS_E_SESSION,
			"%s: Specify refused the request (403): the session "
			"was lost", what);
	case 404:
		return cs_error_set(err, CS_E_NOT_FOUND, "%s: not found (%s)",
				    what, text[0] ? text : "404");
	case 409:
		return cs_error_set(err, CS_E_CONFLICT,
			"%s: someone changed the record meanwhile (%s)", what,
			text[0] ? text : "409");
	case 413:
		return cs_error_set(err, CS_E_TOO_LARGE,
			"%s: the request is larger than the server accepts "
			"(413): ask the administrator to raise the upload limit "
			"(client_max_body_size in nginx)", what);
	case 502: case 503: case 504:
		return cs_error_set(err, CS_E_SERVER,
			"%s: Specify is unavailable (HTTP %ld from the server "
			"or its proxy): it will be retried", what, r->status);
	default:
		break;
	}
	if (r->status >= 500) {
		cJSON *j = r->body ? cJSON_Parse(r->body) : NULL;
		const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(j, "message"));
		const char *exc = cJSON_GetStringValue(cJSON_GetObjectItem(j, "exception"));
		cs_error_set(err, CS_E_SERVER, "%s: Specify failed (HTTP %ld%s%s%s%s)",
			     what, r->status, exc ? ": " : "", exc ? exc : "",
			     msg ? " " : "", msg ? msg : "");
		cJSON_Delete(j);
		return err ? err->code : CS_E_SERVER;
	}
	return cs_error_set(err, CS_E_PROTOCOL, "%s: unexpected answer from "
			    "Specify (HTTP %ld%s%s)", what, r->status,
			    text[0] ? ": " : "", text);
}

/* Parses a 2xx JSON reply. */
static int reply_json(specify_session *s, const http_response *r, long want,
		      const char *what, cJSON **out, cs_error *err)
{
	if (r->status != want)
		return status_error(s, r, what, err);
	*out = r->body ? cJSON_ParseWithLength(r->body, r->body_len) : NULL;
	if (!*out)
		return cs_error_set(err, CS_E_PROTOCOL, "%s: Specify's reply is "
				    "not valid JSON", what);
	return 0;
}

static int get_json(specify_session *s, const char *path, const char *what,
		    cJSON **out, cs_error *err)
{
	http_response r;
	struct call c = { .method = "GET", .path = path };
	int ret = call(s, &c, &r, err);

	if (ret == 0)
		ret = reply_json(s, &r, 200, what, out, err);
	http_response_clear(&r);
	return ret;
}

/* The body of a 200 reply to a GET (malloc'd, NUL-terminated). */
static int get_text(specify_session *s, const char *path, const char *what,
		    size_t max, char **out, cs_error *err)
{
	http_response r;
	struct call c = { .method = "GET", .path = path, .max_body = max };
	int ret = call(s, &c, &r, err);

	*out = NULL;
	if (ret == 0 && r.status != 200)
		ret = status_error(s, &r, what, err);
	if (ret == 0) {
		*out = r.body ? r.body : strdup("");
		r.body = NULL;
		if (!*out)
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	http_response_clear(&r);
	return ret;
}

/* --- login ---------------------------------------------------------- */

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Finds the collection id from GET /context/login/'s list, which holds
 * every collection of the database. */
static int pick_collection(specify_session *s, const cJSON *list,
			   const char *want, cs_error *err)
{
	const cJSON *c, *match = NULL;
	char names[400] = "";
	size_t len = 0;
	int n = 0;

	cJSON_ArrayForEach(c, list) {
		if (!json_id(c) || !c->string)
			continue;
		n++;
		if (len + strlen(c->string) + 4 < sizeof names)
			len += (size_t)snprintf(names + len, sizeof names - len,
						"%s'%s'", len ? ", " : "", c->string);
		if (!want)
			match = c;
		else if (all_digits(want) && json_id(c) == atoll(want))
			match = c;
		else if (strcmp(c->string, want) == 0)
			match = c;
	}
	if (!want && n > 1)
		return cs_error_set(err, CS_E_CONFIG, "this Specify has several "
			"collections (%s): choose one with --collection", names);
	if (!match && want) {
		cJSON_ArrayForEach(c, list)
			if (json_id(c) && c->string && strcasecmp(c->string, want) == 0)
				match = c;
	}
	if (!match)
		return cs_error_set(err, CS_E_CONFIG, "Specify has no collection "
			"'%s'; it has %s", want ? want : "", n ? names : "none");
	pthread_mutex_lock(&s->lock);
	s->collection_id = json_id(match);
	s->unchecked = false;
	pthread_mutex_unlock(&s->lock);
	free(s->collection);
	s->collection = strdup(match->string);
	return s->collection ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

/* A login starts clean: no cookies, no CSRF token. */
static void login_forget(specify_session *s)
{
	http_client_clear_cookies(s->http);
	pthread_mutex_lock(&s->lock);
	free(s->csrf);
	s->csrf = NULL;
	s->logged_in = false;
	pthread_mutex_unlock(&s->lock);
}

/* GET /context/login/: Specify's first csrftoken and, when want names a
 * collection or none is known, the collection's id. */
static int login_ask(specify_session *s, const char *want, cs_error *err)
{
	struct call get = { .method = "GET", .path = "/context/login/", .no_renew = true };
	http_response r;
	cJSON *j = NULL;
	unsigned seen;
	int ret;

	if ((ret = call_once(s, &get, &r, &seen, err))) {
		ret = cs_error_prefix(err, "cannot reach Specify at %s", s->server);
		goto out;
	}
	/* A proxy's 502-504 or a failing Specify: down for now, not wrong. */
	if (r.status >= 500) {
		ret = status_error(s, &r, "logging in", err);
		goto out;
	}
	if (r.status != 200 || !is_json(&r) ||
	    !(j = cJSON_ParseWithLength(r.body ? r.body : "", r.body_len)) ||
	    !cJSON_IsObject(cJSON_GetObjectItem(j, "collections"))) {
		ret = cs_error_set(err, CS_E_PROTOCOL, "%s does not answer like "
			"Specify 7 (GET /context/login/ gave HTTP %ld): check "
			"the server address", s->server, r.status);
		goto out;
	}
	if (want || !s->collection_id)
		if ((ret = pick_collection(s, cJSON_GetObjectItem(j, "collections"),
					   want, err)))
			goto out;

	pthread_mutex_lock(&s->lock);
	s->csrf = http_client_cookie(s->http, "csrftoken");
	pthread_mutex_unlock(&s->lock);
	if (!s->csrf)
		ret = cs_error_set(err, CS_E_PROTOCOL, "Specify at %s set no CSRF "
			"cookie at /context/login/: check the server address "
			"(a proxy may strip cookies)", s->server);
out:
	http_response_clear(&r);
	cJSON_Delete(j);
	return ret;
}

/* A CSRF secret of our own as the csrftoken cookie.  Django compares the
 * X-CSRFToken header with that cookie and keeps no copy (Specify leaves
 * CSRF_USE_SESSIONS off), so a login needs no request before it. */
static int login_own_csrf(specify_session *s, cs_error *err)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char raw[64];
	char token[33];
	size_t n = 0;
	int ret;

	while (n < 32) {
		ssize_t got = getrandom(raw, sizeof raw, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return cs_error_set(err, CS_E_IO, "the system gave no random "
					    "numbers: %s", strerror(errno));
		/* 248 = 4 × 62: each letter or digit as likely as another. */
		for (ssize_t i = 0; i < got && n < 32; i++)
			if (raw[i] < 248)
				token[n++] = chars[raw[i] % 62];
	}
	token[32] = '\0';
	if ((ret = http_client_set_cookie(s->http, s->server, "csrftoken", token, err)))
		return ret;
	pthread_mutex_lock(&s->lock);
	s->csrf = strdup(token);
	pthread_mutex_unlock(&s->lock);
	return s->csrf ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
}

/* What login_put says when only asking Specify first can mend a login
 * made with our own CSRF secret and a known id. */
#define LOGIN_ASK 1

/* PUT the credentials.  Django rotates the CSRF token at login: the new
 * one replaces ours.  own: the CSRF secret is ours and the id known. */
static int login_put(specify_session *s, bool own, cs_error *err)
{
	struct call put = { .method = "PUT", .path = "/context/login/", .no_renew = true };
	http_response r = { 0 };
	cJSON *body = cJSON_CreateObject();
	char *text;
	unsigned seen;
	int ret;

	cJSON_AddStringToObject(body, "username", s->user);
	cJSON_AddStringToObject(body, "password", s->password);
	cJSON_AddNumberToObject(body, "collection", (double)s->collection_id);
	text = cJSON_PrintUnformatted(body);
	cJSON_Delete(body);  /* cJSON frees without wiping: keep it short-lived */
	if (!text)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	put.body = text;
	if ((ret = call_once(s, &put, &r, &seen, err)))
		goto out;
	pthread_mutex_lock(&s->lock);
	bool unchecked = s->unchecked;
	pthread_mutex_unlock(&s->lock);
	if (own && r.status == 403 && r.body_len) {
		/* A CSRF failure page (a wrong password is a bare 403): this
		 * server wants a secret of its own. */
		ret = LOGIN_ASK;
	} else if (r.status == 403) {
		ret = cs_error_set(err, CS_E_AUTH, "Specify refused user name '%s' "
			"with this password: check both (the password comes from "
			"COPYSTAND_PASSWORD, the config file or the prompt)", s->user);
	} else if (own && unchecked && r.status == 400) {
		/* An earlier run's id that is no collection now. */
		pthread_mutex_lock(&s->lock);
		s->collection_id = 0;
		pthread_mutex_unlock(&s->lock);
		ret = LOGIN_ASK;
	} else if (r.status == 400) {
		ret = cs_error_set(err, CS_E_CONFIG, "Specify says collection %lld "
			"does not exist: choose another with --collection",
			s->collection_id);
	} else if (r.status != 204 && r.status != 200) {
		ret = status_error(s, &r, "login", err);
	} else {
		/* A server with CSRF_COOKIE_DOMAIN rotates into a cookie of its
		 * domain: ours, of this host, must not stay beside it. */
		if (own) {
			pthread_mutex_lock(&s->lock);
			char *mine = s->csrf ? strdup(s->csrf) : NULL;
			pthread_mutex_unlock(&s->lock);
			if (mine)
				http_client_drop_cookie(s->http, "csrftoken", mine);
			free(mine);
		}
		char *fresh = http_client_cookie(s->http, "csrftoken");
		pthread_mutex_lock(&s->lock);
		if (fresh) {
			free(s->csrf);
			s->csrf = fresh;
		}
		s->logged_in = true;
		s->generation++;
		pthread_mutex_unlock(&s->lock);
	}
out:
	wipe_free(text);
	http_response_clear(&r);
	return ret;
}

/* Logs in: at once when the collection's id is known (a renewal, or an
 * earlier run's id), else after asking Specify for a CSRF token and the
 * ids of its collections; want is the collection asked for (NULL: the
 * one known, or the only one). */
static int session_authenticate(specify_session *s, const char *want, cs_error *err)
{
	int ret = LOGIN_ASK;

	login_forget(s);
	if (s->collection_id && (ret = login_own_csrf(s, err)) == 0)
		ret = login_put(s, true, err);
	if (ret != LOGIN_ASK)
		return ret;
	login_forget(s);
	if ((ret = login_ask(s, want, err)) == 0)
		ret = login_put(s, false, err);
	return ret;
}

/* Called when a request met a lost session; several threads may get
 * there at once, only the first one logs in again. */
static int session_renew(specify_session *s, unsigned seen, cs_error *err)
{
	int ret = 0;
	static pthread_mutex_t renew_lock = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&renew_lock);
	pthread_mutex_lock(&s->lock);
	bool stale = s->generation == seen;
	pthread_mutex_unlock(&s->lock);
	if (stale)
		ret = session_authenticate(s, NULL, err);
	pthread_mutex_unlock(&renew_lock);
	return ret;
}

static char *agent_name(const cJSON *agent)
{
	const char *first = cJSON_GetStringValue(cJSON_GetObjectItem(agent, "firstname"));
	const char *last = cJSON_GetStringValue(cJSON_GetObjectItem(agent, "lastname"));
	char *out = NULL;

	if (asprintf(&out, "%s%s%s", first ? first : "", first && last ? " " : "",
		     last ? last : "") < 0)
		return NULL;
	return out;
}

/* A user without an Agent in the collection's division gets HTTP 500 on
 * every API call: find out here and say so plainly. */
static int session_load_user(specify_session *s, cs_error *err)
{
	cJSON *j = NULL;
	const cJSON *agent, *avail, *c;
	const char *name = NULL;
	bool allowed = false;
	int ret = get_json(s, "/context/user.json", "reading the user", &j, err);

	if (ret == CS_E_ACCESS)
		return cs_error_set(err, ret, "user '%s' may not use collection "
			"'%s': ask a Specify administrator for access, or choose "
			"another collection with --collection", s->user, s->collection);
	if (ret)
		return ret;
	s->info.user_id = json_id(cJSON_GetObjectItem(j, "id"));
	avail = cJSON_GetObjectItem(j, "available_collections");
	cJSON_ArrayForEach(c, avail)
		if (json_id(cJSON_GetObjectItem(c, "id")) == s->collection_id) {
			allowed = true;
			name = cJSON_GetStringValue(cJSON_GetObjectItem(c, "collectionname"));
		}
	pthread_mutex_lock(&s->lock);
	bool unchecked = s->unchecked;
	s->unchecked = false;
	pthread_mutex_unlock(&s->lock);
	/* The id of an earlier run must still be the collection of that name:
	 * a database restored or rebuilt since may give it to another. */
	if (unchecked && (!name || strcmp(name, s->collection))) {
		ret = cs_error_set(err, CS_E_CONFIG, "Specify's collection %lld is not "
			"'%s' for user '%s' any more, as at an earlier run: run the "
			"command again", s->collection_id, s->collection, s->user);
		goto out;
	}
	if (!allowed) {
		ret = cs_error_set(err, CS_E_ACCESS, "user '%s' may not use "
			"collection '%s': ask a Specify administrator for access, "
			"or choose another collection with --collection",
			s->user, s->collection);
		goto out;
	}
	agent = cJSON_GetObjectItem(j, "agent");
	if (!cJSON_IsObject(agent)) {
		ret = cs_error_set(err, CS_E_NO_AGENT, "user '%s' has no Agent in "
			"the division of collection '%s', so Specify refuses every "
			"record request: in Specify, open Security and Accounts, "
			"select the user and set an Agent for this division",
			s->user, s->collection);
		goto out;
	}
	s->info.agent_id = json_id(cJSON_GetObjectItem(agent, "id"));
	if (!s->info.user_id || !s->info.agent_id)
		ret = cs_error_set(err, CS_E_PROTOCOL, "reading the user: Specify's "
				   "reply has no user or agent id");
	else if (!(s->agent = agent_name(agent)))
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
out:
	cJSON_Delete(j);
	return ret;
}

/* The catalog-number format (see catalog_format_name_from_domain); a
 * collection without one is fine until something needs to parse numbers. */
static int session_load_domain(specify_session *s, cs_error *err)
{
	char *body = NULL;
	cs_error why;
	int ret = get_text(s, "/context/domain.json", "reading the collection's "
			   "settings", 1u << 20, &body, err);

	if (ret)
		return ret;
	ret = catalog_format_name_from_domain(body, NULL, &s->catalog_format, &why);
	free(body);
	if (ret == CS_E_NOMEM || ret == CS_E_PROTOCOL)
		return cs_error_set(err, ret, "%s", why.msg);
	return 0;
}

struct domain_load {
	specify_session *s;
	cs_error err;
	int ret;
};

static void *domain_load_main(void *arg)
{
	struct domain_load *d = arg;

	d->ret = session_load_domain(d->s, &d->err);
	return NULL;
}

/* user.json and domain.json side by side: each is a round trip before
 * the first request that does any work.  The user's error comes first:
 * it says whether the account may use the collection at all. */
static int session_load(specify_session *s, cs_error *err)
{
	struct domain_load d = { .s = s };
	pthread_t t;
	bool threaded = pthread_create(&t, NULL, domain_load_main, &d) == 0;
	int ret = session_load_user(s, err);

	if (threaded)
		pthread_join(t, NULL);
	else
		domain_load_main(&d);
	if (ret == 0 && d.ret) {
		ret = d.ret;
		if (err)
			*err = d.err;
	}
	return ret;
}

static int session_init(specify_session *s, const specify_login *login,
			cs_error *err)
{
	http_options ho = { .ca_file = login->ca_file, .insecure = login->insecure };
	size_t len;

	if (!login->server || !*login->server)
		return cs_error_set(err, CS_E_CONFIG, "no Specify server given: use "
			"--server URL, COPYSTAND_SERVER or 'server =' in the config file");
	if (strncmp(login->server, "http://", 7) != 0 &&
	    strncmp(login->server, "https://", 8) != 0)
		return cs_error_set(err, CS_E_CONFIG, "the server address '%s' must "
			"start with https:// (or http://)", login->server);
	if (!login->user || !*login->user)
		return cs_error_set(err, CS_E_CONFIG, "no Specify user given: use "
			"--user NAME, COPYSTAND_USER or 'user =' in the config file");
	if (!login->password)
		return cs_error_set(err, CS_E_CONFIG, "no password given");
	if (!(s->http = http_client_new(&ho, err)))
		return err ? err->code : CS_E_NOMEM;
	s->server = strdup(login->server);
	s->user = strdup(login->user);
	s->password = strdup(login->password);
	if (!s->server || !s->user || !s->password)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	len = strlen(s->server);
	while (len && s->server[len - 1] == '/')
		s->server[--len] = '\0';
	if (asprintf(&s->referer, "%s/", s->server) < 0) {
		s->referer = NULL;
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	if (login->collection_id > 0 && login->collection_name) {
		s->collection_id = login->collection_id;
		s->unchecked = true;
		if (!(s->collection = strdup(login->collection_name)))
			return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	return 0;
}

int specify_session_open(const specify_login *login, specify_session **out,
			 cs_error *err)
{
	specify_session *s = calloc(1, sizeof *s);
	int ret;

	*out = NULL;
	if (!s)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->load_lock, NULL);
	pthread_cond_init(&s->upload_began, NULL);
	if ((ret = session_init(s, login, err)) ||
	    (ret = session_authenticate(s, login->collection, err))) {
		specify_session_free(s);
		return ret;
	}
	s->info = (specify_info){
		.server = s->server,
		.user = s->user,
		.collection = s->collection,
		.collection_id = s->collection_id,
	};
	*out = s;
	return 0;
}

/* Fills in only what the load learned: other threads may be reading the
 * rest of the info already. */
int specify_session_load(specify_session *s, cs_error *err)
{
	int ret = session_load(s, err);

	if (ret)
		return ret;
	s->info.agent = s->agent;
	s->info.catalog_format = s->catalog_format;
	return 0;
}

int specify_session_login(const specify_login *login, specify_session **out,
			  cs_error *err)
{
	int ret = specify_session_open(login, out, err);

	if (ret == 0 && (ret = specify_session_load(*out, err))) {
		specify_session_free(*out);
		*out = NULL;
	}
	return ret;
}

int specify_session_logout(specify_session *s, cs_error *err)
{
	struct call c = {
		.method = "PUT", .path = "/context/login/", .no_renew = true,
		.body = "{\"username\": null, \"password\": null, \"collection\": null}",
	};
	http_response r;
	int ret;

	if (!s->logged_in)
		return 0;
	if ((ret = call(s, &c, &r, err)) == 0 && r.status != 204 && r.status != 200)
		ret = status_error(s, &r, "logout", err);
	http_response_clear(&r);
	s->logged_in = false;
	return ret;
}

int specify_login_copy(specify_login *dst, const specify_login *src,
		       cs_error *err)
{
	const char *const *from[] = { &src->server, &src->user, &src->password,
				      &src->collection, &src->ca_file, &src->collection_name };
	const char **to[] = { &dst->server, &dst->user, &dst->password,
			      &dst->collection, &dst->ca_file, &dst->collection_name };
	char *server;

	*dst = (specify_login){ .insecure = src->insecure, .collection_id = src->collection_id };
	for (size_t i = 0; i < sizeof to / sizeof to[0]; i++)
		if (*from[i] && !(*to[i] = strdup(*from[i]))) {
			specify_login_clear(dst);
			return cs_error_set(err, CS_E_NOMEM, "out of memory");
		}
	if (!dst->server || !dst->user || !dst->password || !dst->collection) {
		specify_login_clear(dst);
		return cs_error_set(err, CS_E_CONFIG, "a server, a user, a password "
				    "and a collection are needed");
	}
	server = (char *)dst->server;
	for (size_t len = strlen(server); len && server[len - 1] == '/'; )
		server[--len] = '\0';
	return 0;
}

void specify_login_clear(specify_login *l)
{
	free((char *)l->server);
	free((char *)l->user);
	wipe_free((char *)l->password);
	free((char *)l->collection);
	free((char *)l->ca_file);
	free((char *)l->collection_name);
	*l = (specify_login){ 0 };
}

void specify_session_free(specify_session *s)
{
	if (!s)
		return;
	if (s->warming) {
		pthread_mutex_lock(&s->lock);
		s->closing = true;
		pthread_cond_broadcast(&s->upload_began);
		pthread_mutex_unlock(&s->lock);
		specify_session_cancel(s);
		pthread_join(s->warm, NULL);
	}
	http_client_free(s->http);
	free(s->server);
	free(s->referer);
	free(s->user);
	wipe_free(s->password);
	free(s->collection);
	free(s->agent);
	free(s->catalog_format);
	free(s->csrf);
	for (size_t i = 0; i < sizeof s->assets_strings / sizeof s->assets_strings[0]; i++)
		free(s->assets_strings[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->load_lock);
	pthread_cond_destroy(&s->upload_began);
	free(s);
}

void specify_session_cancel(specify_session *s)
{
	http_client_cancel(s->http);
}

const specify_info *specify_session_info(const specify_session *s)
{
	return &s->info;
}

/* --- asset server ----------------------------------------------------- */

int specify_assets_get(specify_session *s, const specify_assets **out,
		       cs_error *err)
{
	static const char *const keys[] = { "collection", "read", "write", "delete", "testkey" };
	cJSON *j = NULL;
	const char *v[5];
	int ret;

	pthread_mutex_lock(&s->lock);
	bool loaded = s->assets_loaded;
	pthread_mutex_unlock(&s->lock);
	if (loaded) {
		*out = &s->assets;
		return 0;
	}
	pthread_mutex_lock(&s->load_lock);
	pthread_mutex_lock(&s->lock);
	loaded = s->assets_loaded;
	pthread_mutex_unlock(&s->lock);
	if (loaded) {
		ret = 0;
		*out = &s->assets;
		goto out;
	}
	if ((ret = get_json(s, "/context/attachment_settings.json",
			    "reading the asset-server settings", &j, err)))
		goto out;
	for (size_t i = 0; i < 5; i++) {
		v[i] = cJSON_GetStringValue(cJSON_GetObjectItem(j, keys[i]));
		if (!v[i] || (i > 0 && strncmp(v[i], "http://", 7) != 0 &&
			      strncmp(v[i], "https://", 8) != 0)) {
			ret = cs_error_set(err, CS_E_NO_ASSETS, "this Specify has no "
				"asset server configured (or could not reach it "
				"when it started), so it cannot store images: ask "
				"the administrator to check the Web Asset Server and "
				"restart Specify");
			goto out;
		}
	}
	pthread_mutex_lock(&s->lock);
	if (!s->assets_loaded) {
		for (size_t i = 0; i < 5; i++)
			s->assets_strings[i] = strdup(v[i]);
		s->assets = (specify_assets){
			.collection = s->assets_strings[0],
			.read_url = s->assets_strings[1],
			.write_url = s->assets_strings[2],
			.delete_url = s->assets_strings[3],
			.testkey_url = s->assets_strings[4],
			.token_required_for_get = cJSON_IsTrue(cJSON_GetObjectItem(j, "token_required_for_get")),
		};
		s->assets_loaded = true;
		for (size_t i = 0; i < 5; i++)
			if (!s->assets_strings[i])
				s->assets_loaded = false;
	}
	loaded = s->assets_loaded;
	pthread_mutex_unlock(&s->lock);
	ret = loaded ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
	*out = &s->assets;
out:
	pthread_mutex_unlock(&s->load_lock);
	cJSON_Delete(j);
	return ret;
}

/* A token is hex digest ':' unix time: nothing that could end a header
 * or a form field. */
static bool token_is_sane(const char *tok, size_t n)
{
	return memchr(tok, ':', n) && strspn(tok, "0123456789abcdefABCDEF:-") >= n;
}

int specify_asset_token(specify_session *s, const char *location, char *out,
			size_t outsz, cs_error *err)
{
	char *esc = http_escape(location), *path = NULL;
	struct call c = { .method = "GET", .max_body = 4096 };
	http_response r;
	size_t n;
	int ret;

	if (!esc || asprintf(&path, "/attachment_gw/get_token/?filename=%s", esc) < 0) {
		free(esc);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	c.path = path;
	ret = call(s, &c, &r, err);
	free(esc);
	free(path);
	if (ret)
		goto out;
	if (r.status != 200) {
		ret = status_error(s, &r, "getting an asset-server token", err);
		goto out;
	}
	n = r.body ? strcspn(r.body, "\r\n") : 0;
	/* A token is hex digest ':' unix time; an empty one means Specify
	 * has no asset server. */
	if (n == 0) {
		ret = cs_error_set(err, CS_E_NO_ASSETS, "Specify gave an empty "
			"asset-server token: it has no asset server configured");
		goto out;
	}
	if (n >= outsz || !token_is_sane(r.body, n)) {
		ret = cs_error_set(err, CS_E_PROTOCOL, "Specify sent a malformed "
				   "asset-server token");
		goto out;
	}
	memcpy(out, r.body, n);
	out[n] = '\0';
out:
	http_response_clear(&r);
	return ret;
}

/* What the asset server said, as a cs_error (for non-200 replies). */
static int asset_error(const http_response *r, const char *what,
		       const char *location, cs_error *err)
{
	char text[256];

	body_excerpt(r, text, sizeof text);
	switch (r->status) {
	case 403:
		return cs_error_set(err, CS_E_TOKEN, "%s %s: the asset server "
			"refused the token (403): its clock and Specify's differ "
			"by more than 150 s, or they have different attachment "
			"keys; it will be retried with a fresh token", what, location);
	case 404:
		if (strstr(text, "Unknown collection"))
			return cs_error_set(err, CS_E_CONFIG, "%s %s: the asset "
				"server does not know Specify's collection name: "
				"check its COLLECTION_DIRS setting", what, location);
		/* An upload creates the file: its 404 is about the address. */
		if (!strcmp(what, "uploading"))
			return cs_error_set(err, CS_E_CONFIG, "%s %s: the asset server "
				"has no upload address there (404): the write URL in "
				"its web_asset_store.xml is wrong, or a proxy before it "
				"does not pass /fileupload on; ask its administrator",
				what, location);
		return cs_error_set(err, CS_E_NOT_FOUND, "%s %s: the asset server "
			"has no such file", what, location);
	case 413:
		return cs_error_set(err, CS_E_TOO_LARGE, "%s %s: the file is larger "
			"than the asset server (or a proxy in front of it) accepts "
			"(413): ask the administrator to raise the upload limit "
			"(client_max_body_size in nginx)", what, location);
	default:
		if (r->status >= 500)
			return cs_error_set(err, CS_E_SERVER, "%s %s: the asset server "
				"failed (HTTP %ld); it will be retried", what, location,
				r->status);
		return cs_error_set(err, CS_E_PROTOCOL, "%s %s: unexpected answer "
			"from the asset server (HTTP %ld%s%s)", what, location,
			r->status, text[0] ? ": " : "", text);
	}
}

static bool body_is_ok(const http_response *r)
{
	return r->body && strncmp(r->body, "Ok.", 3) == 0;
}

/* Mints a token for a random name and asks testkey about it: proves the
 * asset server is up and shares Specify's key and clock. */
int specify_assets_check(specify_session *s, cs_error *err)
{
	const specify_assets *a;
	char token[160], name[40], *url = NULL, *esc = NULL;
	http_response r = { 0 };
	int ret;

	if ((ret = specify_assets_get(s, &a, err)))
		return ret;
	snprintf(name, sizeof name, "copystand-check-%ld-%d", (long)time(NULL), rand() % 100000);
	if ((ret = specify_asset_token(s, name, token, sizeof token, err)))
		return ret;
	if (!(esc = http_escape(token)) ||
	    asprintf(&url, "%s?random=%s&token=%s", a->testkey_url, name, esc) < 0) {
		free(esc);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	http_request req = { .method = "GET", .url = url, .max_body = 4096 };
	ret = http_client_perform(s->http, &req, &r, err);
	if (ret)
		cs_error_prefix(err, "asset server");
	else if (r.status != 200 || !body_is_ok(&r))
		ret = asset_error(&r, "asset server key check with", name, err);
	http_response_clear(&r);
	free(esc);
	free(url);
	return ret;
}

/* Keeps a reservation's token for the upload of its location. */
static void token_keep(specify_session *s, const specify_reservation *r)
{
	pthread_mutex_lock(&s->lock);
	if (s->ntokens == TOKEN_CACHE)   /* the oldest goes */
		memmove(s->tokens, s->tokens + 1, (TOKEN_CACHE - 1) * sizeof *s->tokens);
	else
		s->ntokens++;
	s->tokens[s->ntokens - 1] = *r;
	pthread_mutex_unlock(&s->lock);
}

/* The kept token of location into out, if still fresh; it is used once
 * (an upload sent again gets a fresh one). */
static bool token_take(specify_session *s, const char *location, char *out,
		       size_t outsz)
{
	bool found = false;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->ntokens && !found; i++) {
		if (strcmp(s->tokens[i].location, location) != 0)
			continue;
		found = time(NULL) - s->tokens[i].minted < TOKEN_FRESH_S;
		if (found)
			snprintf(out, outsz, "%s", s->tokens[i].token);
		s->tokens[i] = s->tokens[--s->ntokens];
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

int specify_asset_upload(specify_session *s, const char *path,
			 const char *origname, const char *mimetype,
			 const char *location, const char *token, cs_error *err)
{
	const specify_assets *a;
	char fresh[160];
	http_response r;
	int ret;

	if ((ret = specify_assets_get(s, &a, err)))
		return ret;
	pthread_mutex_lock(&s->lock);
	if (!s->uploading) {
		s->uploading = true;
		pthread_cond_broadcast(&s->upload_began);
	}
	pthread_mutex_unlock(&s->lock);
	if (!token) {
		if (!token_take(s, location, fresh, sizeof fresh) &&
		    (ret = specify_asset_token(s, location, fresh, sizeof fresh, err)))
			return ret;
		token = fresh;
	}
	const char *form[] = {
		"token", token, "store", location, "type", "O", "coll", a->collection, NULL,
	};
	http_form_file file = {
		.field = "file", .path = path, .filename = origname, .mimetype = mimetype,
	};
	http_request req = {
		.method = "POST", .url = a->write_url, .form = form,
		.form_file = &file, .max_body = 65536,
	};
	if ((ret = http_client_perform(s->http, &req, &r, err)))
		cs_error_prefix(err, "uploading %s", origname);
	else if (r.status != 200)
		ret = asset_error(&r, "uploading", origname, err);
	else if (!body_is_ok(&r))
		ret = cs_error_set(err, CS_E_PROTOCOL, "uploading %s: the asset "
			"server answered 200 but not 'Ok.'", origname);
	http_response_clear(&r);
	return ret;
}

/* "filename=..&coll=..[&token=..]", escaped (malloc'd in *out), the
 * parameters fileget and filedelete take; a token is fetched when the
 * asset server wants one. */
static int asset_params(specify_session *s, const specify_assets *a,
			const char *location, bool with_token, char **out,
			cs_error *err)
{
	char token[160] = "", *el, *ec, *et;
	int ret = 0;

	*out = NULL;
	if (with_token &&
	    (ret = specify_asset_token(s, location, token, sizeof token, err)))
		return ret;
	el = http_escape(location);
	ec = http_escape(a->collection);
	et = http_escape(token);
	if (!el || !ec || !et ||
	    asprintf(out, "filename=%s&coll=%s%s%s", el, ec, token[0] ? "&token=" : "",
		     et) < 0) {
		*out = NULL;
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	free(el);
	free(ec);
	free(et);
	return ret;
}

/* The fileget URL of a location (malloc'd in *url). */
static int asset_read_url(specify_session *s, const char *location, char **url,
			  cs_error *err)
{
	const specify_assets *a;
	char *params;
	int ret;

	*url = NULL;
	if ((ret = specify_assets_get(s, &a, err)) ||
	    (ret = asset_params(s, a, location, a->token_required_for_get, &params, err)))
		return ret;
	if (asprintf(url, "%s?type=O&%s", a->read_url, params) < 0) {
		*url = NULL;
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	free(params);
	return ret;
}

/* GETs a stored file into sink, or (sink NULL) HEADs it for its size. */
static int asset_get(specify_session *s, const char *location, FILE *sink,
		     long long *size, cs_error *err)
{
	const char *what = sink ? "downloading" : "checking";
	char *url;
	http_response r;
	int ret = asset_read_url(s, location, &url, err);

	if (ret)
		return ret;
	http_request req = { .method = sink ? "GET" : "HEAD", .url = url,
			     .sink = sink, .head = !sink };
	if ((ret = http_client_perform(s->http, &req, &r, err)) == 0) {
		if (r.status != 200)
			ret = asset_error(&r, what, location, err);
		else if (size && r.content_length < 0)
			ret = cs_error_set(err, CS_E_PROTOCOL, "%s %s: the asset "
				"server gave no size", what, location);
		else if (size)
			*size = r.content_length;
	}
	http_response_clear(&r);
	free(url);
	return ret;
}

int specify_asset_download(specify_session *s, const char *location, FILE *out,
			   cs_error *err)
{
	return asset_get(s, location, out, NULL, err);
}

int specify_asset_size(specify_session *s, const char *location,
		       long long *size, cs_error *err)
{
	return asset_get(s, location, NULL, size, err);
}

int specify_asset_delete(specify_session *s, const char *location,
			 cs_error *err)
{
	const specify_assets *a;
	char *body = NULL;
	http_response r;
	int ret;

	if ((ret = specify_assets_get(s, &a, err)) ||
	    (ret = asset_params(s, a, location, true, &body, err)))
		return ret;
	http_request req = {
		.method = "POST", .url = a->delete_url, .body = body,
		.body_len = strlen(body), .max_body = 65536,
		.content_type = "application/x-www-form-urlencoded",
	};
	if ((ret = http_client_perform(s->http, &req, &r, err)) == 0 && r.status != 200)
		ret = asset_error(&r, "deleting", location, err);
	http_response_clear(&r);
	free(body);
	return ret;
}

/* --- records ---------------------------------------------------------- */

/* The value of field in a record as text ("" for null). */
static void record_value(const cJSON *rec, const char *field, char *out, size_t outsz)
{
	const cJSON *v = cJSON_GetObjectItem(rec, field);

	if (cJSON_IsString(v))
		snprintf(out, outsz, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(out, outsz, "%.15g", v->valuedouble);
	else
		out[0] = '\0';
}

/* Sends one list query; with expect_all (limit=0) the list must be whole. */
static int lookup_send(specify_session *s, const char *path, const char *field,
		       bool expect_all, specify_record_fn fn, void *ud, cs_error *err)
{
	cJSON *j = NULL;
	const cJSON *objects, *o;
	char value[1024];
	double total;
	int ret = get_json(s, path, "looking up records", &j, err);

	if (ret)
		return ret;
	objects = cJSON_GetObjectItem(j, "objects");
	total = cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "meta"),
							 "total_count"));
	if (!cJSON_IsArray(objects) ||
	    (expect_all && total == total && total != cJSON_GetArraySize(objects))) {
		ret = cs_error_set(err, CS_E_PROTOCOL, "looking up records: Specify "
			"returned an incomplete list (%d of %.0f)",
			cJSON_GetArraySize(objects), total);
		goto out;
	}
	cJSON_ArrayForEach(o, objects) {
		record_value(o, field, value, sizeof value);
		if ((ret = fn(ud, value, o)))
			break;
	}
out:
	cJSON_Delete(j);
	return ret;
}

/* The values asked for, sorted without case (the database compares that
 * way too): replies are filtered against them, since a range brings
 * records nobody asked for. */
struct wanted {
	const char **v;
	size_t n;
	specify_record_fn fn;
	void *ud;
};

int specify_value_cmp(const void *a, const void *b)
{
	return strcasecmp(*(const char *const *)a, *(const char *const *)b);
}

size_t specify_values_unique(const char *const *values, size_t n, const char **out)
{
	size_t k = 0, u = 0;

	for (size_t i = 0; i < n; i++)
		if (values[i] && *values[i])
			out[k++] = values[i];
	if (k)
		qsort(out, k, sizeof *out, specify_value_cmp);
	for (size_t i = 0; i < k; i++)
		if (u == 0 || strcasecmp(out[u - 1], out[i]) != 0)
			out[u++] = out[i];
	return u;
}

static int on_wanted(void *ud, const char *value, const cJSON *record)
{
	struct wanted *w = ud;
	const char *key = value;

	if (!bsearch(&key, w->v, w->n, sizeof *w->v, specify_value_cmp))
		return 0;
	return w->fn(w->ud, value, record);
}

/* Equal-width numbers (zero-padded catalog numbers) sort as text. */
static int cmp_width_then_text(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t lx = strlen(x), ly = strlen(y);

	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

static bool is_number(const char *v)
{
	size_t len = strlen(v);
	return len > 0 && len <= 18 && strspn(v, "0123456789") == len;
}

/* A folder shot in drawer order holds runs of consecutive numbers: each
 * dense run (at most twice as wide as it has numbers, so it returns at
 * most twice as many rows, catalog numbers being unique) is one __range
 * request instead of a dozen __in ones.  Marks what it asked for in done. */
#define MIN_RUN 32
static int lookup_runs(specify_session *s, const char *table, const char *field,
		       struct wanted *w, bool *done, cs_error *err)
{
	const char **num = calloc(w->n + 1, sizeof *num);
	size_t m = 0;
	int ret = 0;

	if (!num)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++)
		if (is_number(w->v[i]))
			num[m++] = w->v[i];
	qsort(num, m, sizeof *num, cmp_width_then_text);
	for (size_t i = 0; i < m && ret == 0; ) {
		size_t j = i, width = strlen(num[i]);
		long long first = atoll(num[i]);

		while (j + 1 < m && strlen(num[j + 1]) == width &&
		       atoll(num[j + 1]) - first + 1 <= 2 * (long long)(j + 2 - i))
			j++;
		if (j + 1 - i < MIN_RUN) {
			i++;
			continue;
		}
		char *path = NULL;
		if (asprintf(&path, "/api/specify/%s/?domainfilter=true&limit=0&%s__range=%s,%s",
			     table, field, num[i], num[j]) < 0)
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
		else
			ret = lookup_send(s, path, field, true, on_wanted, w, err);
		free(path);
		for (size_t k = i; k <= j; k++) {
			const char **at = bsearch(&num[k], w->v, w->n, sizeof *w->v, specify_value_cmp);
			if (at)
				done[at - w->v] = true;
		}
		i = j + 1;
	}
	free(num);
	return ret;
}

/* The rest, as many per __in request as the request line allows. */
static int lookup_in(specify_session *s, const char *table, const char *field,
		     struct wanted *w, const bool *done, cs_error *err)
{
	char *path;
	size_t base, len, cap = MAX_PATH + 1;
	bool pending = false;
	int ret = 0;

	if (!(path = malloc(cap)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	base = (size_t)snprintf(path, cap, "/api/specify/%s/?domainfilter=true&limit=0&%s__in=",
				table, field);
	len = base;
	for (size_t i = 0; i < w->n && ret == 0; i++) {
		char *esc;
		size_t elen;

		if (done[i])
			continue;
		if (!(esc = http_escape(w->v[i]))) {
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
			break;
		}
		elen = strlen(esc);
		if (strchr(w->v[i], ',')) {
			/* __in splits on commas: ask for this one alone. */
			char *one = NULL;
			if (asprintf(&one, "/api/specify/%s/?domainfilter=true&limit=0&%s=%s",
				     table, field, esc) < 0)
				ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
			else
				ret = lookup_send(s, one, field, true, on_wanted, w, err);
			free(one);
		} else if (base + elen > MAX_PATH) {
			ret = cs_error_set(err, CS_E_INVALID, "the value '%.40s...' is "
					   "too long to look up", w->v[i]);
		} else {
			if (pending && len + 1 + elen > MAX_PATH) {
				ret = lookup_send(s, path, field, true, on_wanted, w, err);
				len = base;
				pending = false;
			}
			if (ret == 0) {
				/* A bare comma is legal in a query and a third
				 * the size of %2C. */
				len += (size_t)snprintf(path + len, cap - len, "%s%s",
							pending ? "," : "", esc);
				pending = true;
			}
		}
		free(esc);
	}
	if (ret == 0 && pending)
		ret = lookup_send(s, path, field, true, on_wanted, w, err);
	free(path);
	return ret;
}

int specify_records_lookup(specify_session *s, const char *table,
			   const char *field, const char *const *values,
			   size_t n, specify_record_fn fn, void *ud,
			   cs_error *err)
{
	struct wanted w = { .fn = fn, .ud = ud };
	bool *done = NULL;
	int ret;

	if (!name_is_safe(table) || !name_is_safe(field))
		return cs_error_set(err, CS_E_INVALID, "bad table or field name");
	w.v = calloc(n + 1, sizeof *w.v);
	if (!w.v)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	/* Each value once (the database would return its records once). */
	w.n = specify_values_unique(values, n, w.v);
	if (!(done = calloc(w.n + 1, sizeof *done))) {
		free(w.v);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	ret = lookup_runs(s, table, field, &w, done, err);
	if (ret == 0)
		ret = lookup_in(s, table, field, &w, done, err);
	free(done);
	free(w.v);
	return ret;
}

/* --- the query builder ---------------------------------------------- */

static cJSON *query_field(int position, const char *stringid, const char *in)
{
	cJSON *f = cJSON_CreateObject();

	if (!f || !cJSON_AddNumberToObject(f, "position", position) ||
	    !cJSON_AddStringToObject(f, "stringid", stringid) ||
	    !cJSON_AddBoolToObject(f, "isrelfld", false) ||
	    !cJSON_AddBoolToObject(f, "isdisplay", true) ||
	    !cJSON_AddBoolToObject(f, "isnot", false) ||
	    !cJSON_AddNumberToObject(f, "operstart", in ? 10 : 8) ||
	    !cJSON_AddStringToObject(f, "startvalue", in ? in : "") ||
	    !cJSON_AddNumberToObject(f, "sorttype", 0)) {
		cJSON_Delete(f);
		return NULL;
	}
	return f;
}

/* The query: the field filtered with "in", then the join row's id and
 * its attachment's original name (left joins: one row per attachment). */
static char *query_body(const struct match_target *t, const char *in)
{
	char field[192], join_id[256], orig[256];
	cJSON *q = cJSON_CreateObject(), *fields;
	char *text = NULL;

	snprintf(field, sizeof field, "%d.%s.%s", t->table_id, t->table, t->field_camel);
	snprintf(join_id, sizeof join_id, "%d,%d-%s.%s.%sid", t->table_id,
		 t->join_table_id, t->attachments_key, t->join_table, t->join_table);
	snprintf(orig, sizeof orig, "%d,%d-%s,41.attachment.origfilename",
		 t->table_id, t->join_table_id, t->attachments_key);
	if (q && cJSON_AddStringToObject(q, "name", "copystand validation") &&
	    cJSON_AddNumberToObject(q, "contexttableid", t->table_id) &&
	    cJSON_AddBoolToObject(q, "selectdistinct", false) &&
	    cJSON_AddBoolToObject(q, "countonly", false) &&
	    cJSON_AddNumberToObject(q, "limit", 0) &&
	    (fields = cJSON_AddArrayToObject(q, "fields")) &&
	    cJSON_AddItemToArray(fields, query_field(0, field, in)) &&
	    cJSON_AddItemToArray(fields, query_field(1, join_id, NULL)) &&
	    cJSON_AddItemToArray(fields, query_field(2, orig, NULL)))
		text = cJSON_PrintUnformatted(q);
	cJSON_Delete(q);
	return text;
}

/* A display column as text: strings as they are, numbers written out. */
static bool query_text(const cJSON *v, char *out, size_t outsz)
{
	if (cJSON_IsString(v))
		return (size_t)snprintf(out, outsz, "%s", v->valuestring) < outsz;
	if (cJSON_IsNumber(v))
		return (size_t)snprintf(out, outsz, "%.15g", v->valuedouble) < outsz;
	out[0] = '\0';
	return cJSON_IsNull(v);
}

static int query_rows(const cJSON *j, specify_match_fn fn, void *ud, cs_error *err)
{
	const cJSON *results = cJSON_GetObjectItem(j, "results"), *row;
	char value[1024], join[32], orig[1024];
	int ret = 0;

	if (!cJSON_IsArray(results))
		return cs_error_set(err, CS_E_PROTOCOL, "looking up records: "
				    "Specify's query reply has no results");
	cJSON_ArrayForEach(row, results) {
		specify_match_row r = { .value = value, .origfilename = orig };
		char *end;

		r.id = json_id(cJSON_GetArrayItem(row, 0));
		if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 4 || !r.id ||
		    !query_text(cJSON_GetArrayItem(row, 1), value, sizeof value) ||
		    !query_text(cJSON_GetArrayItem(row, 2), join, sizeof join) ||
		    !query_text(cJSON_GetArrayItem(row, 3), orig, sizeof orig))
			return cs_error_set(err, CS_E_PROTOCOL, "looking up records: "
					    "Specify's query reply has a row that is not "
					    "[id, value, attachment, name]");
		/* No attachment: null, or "" where Specify blanks nulls. */
		if (join[0]) {
			errno = 0;
			r.join_id = strtoll(join, &end, 10);
			if (*end || errno || r.join_id < 1)
				return cs_error_set(err, CS_E_PROTOCOL, "looking up "
						    "records: Specify's query reply has "
						    "an attachment id '%.20s'", join);
		}
		if ((ret = fn(ud, &r)))
			break;
	}
	return ret;
}

static int query_send(specify_session *s, const struct match_target *t,
		      const char *in, specify_match_fn fn, void *ud, cs_error *err)
{
	struct call c = { .method = "POST", .path = "/stored_query/ephemeral/" };
	http_response r = { 0 };
	cJSON *j = NULL;
	int ret;

	if (!(c.body = query_body(t, in)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	if ((ret = call(s, &c, &r, err)) == 0)
		ret = reply_json(s, &r, 200, "looking up records", &j, err);
	if (ret == CS_E_ACCESS) {
		pthread_mutex_lock(&s->lock);
		s->no_query = true;
		pthread_mutex_unlock(&s->lock);
	}
	if (ret == 0)
		ret = query_rows(j, fn, ud, err);
	cJSON_Delete(j);
	http_response_clear(&r);
	free((char *)c.body);
	return ret;
}

int specify_match_query(specify_session *s, const struct match_target *t,
			const char *const *values, size_t n,
			specify_match_fn fn, void *ud, cs_error *err)
{
	size_t len = 0, cap = QUERY_CHUNK + 1;
	char *in;
	bool denied;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	denied = s->no_query;
	pthread_mutex_unlock(&s->lock);
	if (denied)
		return cs_error_set(err, CS_E_ACCESS, "user '%s' may not run "
				    "queries in Specify", s->user);
	if (!name_is_safe(t->table) || !name_is_safe(t->join_table) ||
	    !name_is_safe(t->attachments_key))
		return cs_error_set(err, CS_E_INVALID, "bad match target");
	if (!(in = malloc(cap)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	for (size_t i = 0; i <= n && ret == 0; i++) {
		size_t k = i < n && values[i] ? strlen(values[i]) : 0;

		if (i < n && (!k || strchr(values[i], ',') ||
			      (t->catalog_format && strchr(values[i], '-')))) {
			ret = cs_error_set(err, CS_E_INVALID, "'%.40s' cannot be "
					   "looked up with a query", values[i] ? values[i] : "");
			break;
		}
		if (k >= QUERY_CHUNK) {
			ret = cs_error_set(err, CS_E_INVALID, "the value '%.40s...' "
					   "is too long to look up", values[i]);
			break;
		}
		if (len && (i == n || len + 1 + k > QUERY_CHUNK)) {
			ret = query_send(s, t, in, fn, ud, err);
			len = 0;
		}
		if (i < n && ret == 0)
			len += (size_t)snprintf(in + len, cap - len, "%s%s",
						len ? "," : "", values[i]);
	}
	free(in);
	return ret;
}

int specify_records_query(specify_session *s, const char *table,
			  const char *filters, size_t limit, const char *field,
			  specify_record_fn fn, void *ud, cs_error *err)
{
	char *path = NULL;
	int ret;

	if (!name_is_safe(table) || !name_is_safe(field) || strpbrk(filters, "#?\r\n "))
		return cs_error_set(err, CS_E_INVALID, "bad record query");
	if (asprintf(&path, "/api/specify/%s/?domainfilter=true&limit=%zu%s%s",
		     table, limit, *filters ? "&" : "", filters) < 0)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	ret = lookup_send(s, path, field, limit == 0, fn, ud, err);
	free(path);
	return ret;
}

int specify_record_get(specify_session *s, const char *table, long long id,
		       cJSON **out, cs_error *err)
{
	char path[160];

	if (!name_is_safe(table))
		return cs_error_set(err, CS_E_INVALID, "bad table name");
	snprintf(path, sizeof path, "/api/specify/%s/%lld/", table, id);
	return get_json(s, path, "reading a record", out, err);
}

int specify_record_put(specify_session *s, const char *table, long long id,
		       const cJSON *record, cJSON **out, cs_error *err)
{
	struct call c = { .method = "PUT" };
	char path[160], *text;
	http_response r;
	int ret;

	*out = NULL;
	if (!name_is_safe(table))
		return cs_error_set(err, CS_E_INVALID, "bad table name");
	if (!(text = cJSON_PrintUnformatted(record)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	snprintf(path, sizeof path, "/api/specify/%s/%lld/", table, id);
	c.path = path;
	c.body = text;
	if ((ret = call(s, &c, &r, err)) == 0)
		ret = reply_json(s, &r, 200, "saving a record", out, err);
	http_response_clear(&r);
	free(text);
	return ret;
}

int specify_app_resource(specify_session *s, const char *name, char **out,
			 cs_error *err)
{
	char *esc = http_escape(name), *path = NULL;
	int ret;

	if (!esc || asprintf(&path, "/context/app.resource?name=%s", esc) < 0) {
		free(esc);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	ret = get_text(s, path, "reading an app resource", 16u << 20, out, err);
	free(esc);
	free(path);
	return ret;
}

/* --- reserving locations ---------------------------------------------- */

/* An attachmentLocation becomes a file name on the asset server: refuse
 * anything that is not a plain name. */
static bool location_is_safe(const char *loc, size_t len)
{
	if (len == 0 || len > 128 || loc[0] == '.' || strstr(loc, ".."))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)loc[i];
		if (ch < 0x20 || ch == 0x7f || ch == '/' || ch == '\\')
			return false;
	}
	return true;
}

static int reserve_chunk(specify_session *s, const char *const *filenames,
			 size_t n, specify_reservation *out, cs_error *err)
{
	struct call c = { .method = "POST", .path = "/attachment_gw/get_upload_params/" };
	cJSON *body = cJSON_CreateObject(), *names, *j = NULL;
	http_response r = { 0 };
	char *text = NULL;
	time_t now;
	int ret = 0;

	names = cJSON_AddArrayToObject(body, "filenames");
	for (size_t i = 0; i < n && names; i++)
		if (!cJSON_AddItemToArray(names, cJSON_CreateString(filenames[i])))
			names = NULL;
	if (!names || !(text = cJSON_PrintUnformatted(body))) {
		cJSON_Delete(body);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	cJSON_Delete(body);
	c.body = text;
	if ((ret = call(s, &c, &r, err)) == 0)
		ret = reply_json(s, &r, 200, "reserving attachment locations", &j, err);
	now = time(NULL);
	if (ret == 0 && (!cJSON_IsArray(j) || (size_t)cJSON_GetArraySize(j) != n))
		ret = cs_error_set(err, CS_E_PROTOCOL, "reserving attachment "
			"locations: Specify returned %d for %zu files",
			cJSON_GetArraySize(j), n);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		const cJSON *item = cJSON_GetArrayItem(j, (int)i);
		const char *loc = cJSON_GetStringValue(cJSON_GetObjectItem(item, "attachmentLocation"));
		const char *tok = cJSON_GetStringValue(cJSON_GetObjectItem(item, "token"));
		if (!loc || !location_is_safe(loc, strlen(loc)) || !tok ||
		    strlen(tok) >= sizeof out[i].token || !token_is_sane(tok, strlen(tok))) {
			ret = cs_error_set(err, CS_E_PROTOCOL, "reserving attachment "
				"locations: Specify returned an unusable location or token");
			break;
		}
		snprintf(out[i].location, sizeof out[i].location, "%s", loc);
		snprintf(out[i].token, sizeof out[i].token, "%s", tok);
		out[i].minted = now;
		token_keep(s, &out[i]);
	}
	cJSON_Delete(j);
	http_response_clear(&r);
	free(text);
	return ret;
}

int specify_locations_reserve(specify_session *s, const char *const *filenames,
			      size_t n, specify_reservation *out, cs_error *err)
{
	const specify_assets *a;
	int ret = 0;

	for (size_t done = 0; done < n && ret == 0; done += RESERVE_CHUNK) {
		size_t k = n - done < RESERVE_CHUNK ? n - done : RESERVE_CHUNK;
		ret = reserve_chunk(s, filenames + done, k, out + done, err);
	}
	/* get_upload_params ends in a 500 when there is no asset server: the
	 * settings say so plainly.  Asked after, not before: a reservation
	 * need not wait for them. */
	if (ret && ret != CS_E_NOMEM) {
		int why = specify_assets_get(s, &a, err);
		if (why)
			return why;
	}
	return ret;
}

/* --- attachments ---------------------------------------------------- */

/* The id ending a resource URI, "/api/specify/<table>/<id>/"; 0 when
 * there is none, or one too long to be a row id. */
static long long uri_id(const char *uri)
{
	const char *end, *p;

	if (!uri || !*uri)
		return 0;
	end = uri + strlen(uri);
	if (end[-1] == '/')
		end--;
	p = end;
	while (p > uri && isdigit((unsigned char)p[-1]))
		p--;
	if (p == end || p == uri || p[-1] != '/' || end - p > 15)
		return 0;
	return strtoll(p, NULL, 10);
}

static cJSON *attachment_body(const specify_attachment *a)
{
	cJSON *body = cJSON_CreateObject(), *att;
	char uri[160];

	snprintf(uri, sizeof uri, "/api/specify/%s/%lld/", a->table, a->record_id);
	cJSON_AddStringToObject(body, a->table, uri);
	cJSON_AddNumberToObject(body, "ordinal", a->ordinal);
	att = cJSON_AddObjectToObject(body, "attachment");
	cJSON_AddStringToObject(att, "attachmentlocation", a->location);
	cJSON_AddStringToObject(att, "mimetype", a->mimetype ? a->mimetype : "application/octet-stream");
	cJSON_AddStringToObject(att, "origfilename", a->origfilename ? a->origfilename : "");
	/* More fields (title and ispublic from the configuration among them)
	 * never replace what names the file. */
	for (const cJSON *x = a->extra ? a->extra->child : NULL; x; x = x->next)
		if (x->string && !cJSON_GetObjectItemCaseSensitive(att, x->string))
			cJSON_AddItemToObject(att, x->string, cJSON_Duplicate(x, true));
	if (!cJSON_GetObjectItemCaseSensitive(att, "title"))
		cJSON_AddStringToObject(att, "title", a->title ? a->title :
					a->origfilename ? a->origfilename : "");
	if (!cJSON_GetObjectItemCaseSensitive(att, "ispublic"))
		cJSON_AddBoolToObject(att, "ispublic", a->ispublic);
	return body;
}

/* The ids of a join row Specify created for a.  A reply that names
 * another file is not ours (with require_location, one that names none). */
static int created_ids(const cJSON *o, const specify_attachment *a,
		       bool require_location, specify_attached *out,
		       cs_error *err)
{
	const cJSON *att = cJSON_GetObjectItem(o, "attachment");
	const char *loc = cJSON_GetStringValue(cJSON_GetObjectItem(att, "attachmentlocation"));

	out->join_id = json_id(cJSON_GetObjectItem(o, "id"));
	out->attachment_id = json_id(cJSON_GetObjectItem(att, "id"));
	out->record_id = a->record_id;
	if (!out->join_id || !out->attachment_id)
		return cs_error_set(err, CS_E_PROTOCOL, "attaching: Specify's "
				    "reply has no join row id");
	if ((loc || require_location) && (!loc || strcmp(loc, a->location) != 0))
		return cs_error_set(err, CS_E_PROTOCOL, "attaching %s: Specify's "
				    "reply is about another file (%.140s)",
				    a->location, loc ? loc : "none named");
	return 0;
}

/* POSTs body (taken) once: a lost reply must be reconciled, not resent. */
static int post_json(specify_session *s, const char *path, cJSON *body,
		     const char *what, cJSON **out, cs_error *err)
{
	struct call c = { .method = "POST", .path = path, .once = true };
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	http_response r;
	int ret;

	*out = NULL;
	cJSON_Delete(body);
	if (!text)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	c.body = text;
	if ((ret = call(s, &c, &r, err)) == 0)
		ret = reply_json(s, &r, 201, what, out, err);
	http_response_clear(&r);
	free(text);
	return ret;
}

int specify_attachment_create(specify_session *s, const specify_attachment *a,
			      specify_attached *out, cs_error *err)
{
	char path[160];
	cJSON *j = NULL;
	int ret;

	memset(out, 0, sizeof *out);
	if (!name_is_safe(a->table) || !a->location)
		return cs_error_set(err, CS_E_INVALID, "bad attachment request");
	snprintf(path, sizeof path, "/api/specify/%sattachment/", a->table);
	ret = post_json(s, path, attachment_body(a), "attaching", &j, err);
	if (ret == 0 && (ret = created_ids(j, a, false, out, err)))
		memset(out, 0, sizeof *out);
	cJSON_Delete(j);
	return ret;
}

/* Has Specify the bulk view?  Asked with an empty list, which creates
 * nothing; a Specify without it (before 7.11.2) answers 404. */
static int bulk_known(specify_session *s)
{
	pthread_mutex_lock(&s->lock);
	int known = s->bulk;
	pthread_mutex_unlock(&s->lock);
	return known;
}

static int bulk_probe(specify_session *s, const char *path, cs_error *err)
{
	struct call c = { .method = "POST", .path = path, .body = "[]", .once = true };
	http_response r = { 0 };
	int known = bulk_known(s), ret = 0;

	if (known)
		return known > 0 ? 0 : CS_E_UNSUPPORTED;
	pthread_mutex_lock(&s->load_lock);
	if (!(known = bulk_known(s)) && (ret = call(s, &c, &r, err)) == 0) {
		known = r.status == 201 ? 1 : -1;
		if (r.status != 201 && r.status != 404)
			ret = status_error(s, &r, "asking Specify for its bulk create", err);
	}
	http_response_clear(&r);
	/* Only a passing failure leaves the question open. */
	bool open = ret && cs_error_is_transient(ret);
	if (!open) {
		pthread_mutex_lock(&s->lock);
		s->bulk = known ? known : -1;
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&s->load_lock);
	if (open)
		return ret;
	return known > 0 ? 0 : cs_error_set(err, CS_E_UNSUPPORTED, "Specify at %s "
		"has no bulk create (7.11.2 and later have it)", s->server);
}

struct warm {
	specify_session *s;
	char path[160];
};

/* The settings at once; the bulk question once the first upload begins:
 * before it, Specify's two cores serve the lookup and the reservation the
 * upload waits for; during it, Specify has nothing else to do. */
static void *warm_main(void *arg)
{
	struct warm *w = arg;
	specify_session *s = w->s;
	const specify_assets *a;
	/* Errors are left for the calls that need the answers to meet. */
	cs_error err;

	specify_assets_get(s, &a, &err);
	pthread_mutex_lock(&s->lock);
	while (!s->uploading && !s->closing)
		pthread_cond_wait(&s->upload_began, &s->lock);
	bool ask = !s->closing;
	pthread_mutex_unlock(&s->lock);
	if (ask)
		bulk_probe(s, w->path, &err);
	free(w);
	return NULL;
}

void specify_session_warm(specify_session *s, const char *table)
{
	struct warm *w;

	if (s->warming || !name_is_safe(table) || !(w = calloc(1, sizeof *w)))
		return;
	w->s = s;
	snprintf(w->path, sizeof w->path, "/bulk_copy/bulk/%sattachment/", table);
	s->warming = pthread_create(&s->warm, NULL, warm_main, w) == 0;
	if (!s->warming)
		free(w);
}

int specify_attachments_create(specify_session *s, const specify_attachment *a,
			       size_t n, specify_attached *out, cs_error *err)
{
	char path[160];
	cJSON *body = cJSON_CreateArray(), *j = NULL;
	int ret = 0;

	memset(out, 0, n * sizeof *out);
	for (size_t i = 0; i < n && ret == 0; i++) {
		cJSON *row = NULL;
		if (!name_is_safe(a[i].table) || !a[i].location ||
		    strcmp(a[i].table, a[0].table) != 0)
			ret = cs_error_set(err, CS_E_INVALID, "bad attachment request");
		else if (!body || !(row = attachment_body(&a[i])) ||
			 !cJSON_AddItemToArray(body, row)) {
			cJSON_Delete(row);
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
		}
	}
	if (ret == 0 && n == 0)
		ret = cs_error_set(err, CS_E_INVALID, "bad attachment request");
	if (ret) {
		cJSON_Delete(body);
		return ret;
	}
	snprintf(path, sizeof path, "/bulk_copy/bulk/%sattachment/", a[0].table);
	if ((ret = bulk_probe(s, path, err))) {
		cJSON_Delete(body);
		return ret;
	}
	ret = post_json(s, path, body, "attaching files in one request", &j, err);
	if (ret == 0 && (!cJSON_IsArray(j) || (size_t)cJSON_GetArraySize(j) != n))
		ret = cs_error_set(err, CS_E_PROTOCOL, "attaching %zu files in one "
				   "request: Specify's reply does not list them", n);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = created_ids(cJSON_GetArrayItem(j, (int)i), &a[i], true, &out[i], err);
	if (ret)
		memset(out, 0, n * sizeof *out);
	cJSON_Delete(j);
	return ret;
}

int specify_attachment_next_ordinal(specify_session *s, const char *table,
				    long long record_id, int *ordinal,
				    cs_error *err)
{
	char path[200];
	cJSON *j = NULL;
	const cJSON *objects, *o;
	int ret, next = 0;

	if (!name_is_safe(table))
		return cs_error_set(err, CS_E_INVALID, "bad table name");
	snprintf(path, sizeof path, "/api/specify/%sattachment/?%s=%lld&limit=0",
		 table, table, record_id);
	if ((ret = get_json(s, path, "listing attachments", &j, err)))
		return ret;
	objects = cJSON_GetObjectItem(j, "objects");
	if (!cJSON_IsArray(objects)) {
		cJSON_Delete(j);
		return cs_error_set(err, CS_E_PROTOCOL, "listing attachments: "
				    "Specify's reply holds no list");
	}
	cJSON_ArrayForEach(o, objects) {
		/* Compared as a double: a huge ordinal must not overflow. */
		double ord = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "ordinal"));
		if (ord >= next && ord < INT_MAX)
			next = (int)ord + 1;
	}
	cJSON_Delete(j);
	*ordinal = next;
	return 0;
}

/* The first row of a list: its id (0 when the list is empty) and, with
 * link, the id of the record it links to.  A row we cannot read is not
 * "no row": callers would attach the same file twice. */
static int first_row(specify_session *s, const char *path, const char *link,
		     long long *id, long long *linked, cs_error *err)
{
	const char *what = "looking for an attachment";
	cJSON *j = NULL;
	const cJSON *objects, *row;
	int ret = get_json(s, path, what, &j, err);

	*id = 0;
	if (ret)
		return ret;
	objects = cJSON_GetObjectItem(j, "objects");
	row = cJSON_GetArrayItem(objects, 0);
	if (!cJSON_IsArray(objects)) {
		ret = cs_error_set(err, CS_E_PROTOCOL, "%s: Specify's reply holds "
				   "no list", what);
	} else if (row) {
		*id = json_id(cJSON_GetObjectItem(row, "id"));
		if (link)
			*linked = uri_id(cJSON_GetStringValue(cJSON_GetObjectItem(row, link)));
		if (!*id || (link && !*linked))
			ret = cs_error_set(err, CS_E_PROTOCOL, "%s: Specify's reply "
					   "has a row without a usable id", what);
	}
	cJSON_Delete(j);
	return ret;
}

int specify_attachment_find(specify_session *s, const char *table,
			    const char *location, specify_attached *out,
			    cs_error *err)
{
	char *esc, *path = NULL;
	int ret;

	memset(out, 0, sizeof *out);
	if (!name_is_safe(table))
		return cs_error_set(err, CS_E_INVALID, "bad table name");
	if (!(esc = http_escape(location)) ||
	    asprintf(&path, "/api/specify/attachment/?attachmentlocation=%s&limit=0", esc) < 0) {
		free(esc);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	free(esc);
	ret = first_row(s, path, NULL, &out->attachment_id, NULL, err);
	free(path);
	if (ret == 0 && !out->attachment_id)
		ret = cs_error_set(err, CS_E_NOT_FOUND, "no attachment has "
				   "location %s", location);
	if (ret == 0) {
		char jpath[200];
		snprintf(jpath, sizeof jpath, "/api/specify/%sattachment/?attachment=%lld&limit=0",
			 table, out->attachment_id);
		ret = first_row(s, jpath, table, &out->join_id, &out->record_id, err);
		/* An attachment row without a join row: not attached to us. */
		if (ret == 0 && !out->join_id)
			ret = cs_error_set(err, CS_E_NOT_FOUND, "location %s is not "
					   "attached to any %s", location, table);
	}
	if (ret)
		memset(out, 0, sizeof *out);
	return ret;
}

int specify_attachment_delete(specify_session *s, const char *table,
			      long long join_id, cs_error *err)
{
	struct call c = { .method = "DELETE" };
	char path[160];
	http_response r;
	int ret;

	if (!name_is_safe(table))
		return cs_error_set(err, CS_E_INVALID, "bad table name");
	snprintf(path, sizeof path, "/api/specify/%sattachment/%lld/", table, join_id);
	c.path = path;
	if ((ret = call(s, &c, &r, err)) == 0 && r.status != 204)
		ret = status_error(s, &r, "removing an attachment", err);
	http_response_clear(&r);
	return ret;
}
