#include "http.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_BODY (64u << 20)
#define ERROR_BODY_KEEP (64u << 10)

struct handle {
	CURL *easy;
	struct handle *next;
};

/* A transfer handed to the I/O thread, and its waiting caller. */
struct pending {
	CURL *easy;
	CURLcode rc;
	bool done;
	struct pending *next;
};

struct http_client {
	/* One libcurl multi handle, driven by one I/O thread, runs every
	 * transfer: its connection cache keeps connections alive across all
	 * callers, and many transfers are in flight at once. */
	CURLM *multi;
	pthread_t io;
	bool io_running, stopping;
	pthread_mutex_t io_lock;
	pthread_cond_t io_done;
	struct pending *incoming;
	volatile sig_atomic_t cancelled;  /* http_client_cancel() was called */

	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	struct handle *pool;    /* idle easy handles: each keeps its connections */
	char *ca_file;
	bool insecure;
	long connect_timeout_ms;
	long stall_timeout_s;
};

/* State of one transfer, seen by the callbacks. */
struct transfer {
	http_client *client;
	CURL *easy;
	const http_request *req;
	http_response *resp;
	size_t cap;             /* for a 2xx body kept in memory */
	size_t error_cap;       /* for any other body */
	size_t alloc;
	size_t sent;            /* of an in-memory body sent by on_read */
	bool over_cap;
	bool cut;               /* an error page was cut short: the answer stands */
	bool sink_failed;
	bool head_done;         /* the blank line that ends the headers came */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *ud)
{
	http_client *c = ud;
	(void)h;
	(void)a;
	pthread_mutex_lock(&c->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud)
{
	http_client *c = ud;
	(void)h;
	pthread_mutex_unlock(&c->locks[data]);
}

static void io_finish(http_client *c, CURLMsg *msg)
{
	struct pending *p = NULL;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&p);
	curl_multi_remove_handle(c->multi, msg->easy_handle);
	pthread_mutex_lock(&c->io_lock);
	p->rc = msg->data.result;
	p->done = true;
	pthread_cond_broadcast(&c->io_done);
	pthread_mutex_unlock(&c->io_lock);
}

static void *io_main(void *arg)
{
	http_client *c = arg;
	int running = 0, left;
	CURLMsg *msg;

	for (;;) {
		pthread_mutex_lock(&c->io_lock);
		bool stop = c->stopping && running == 0 && !c->incoming;
		while (c->incoming) {
			struct pending *p = c->incoming;
			c->incoming = p->next;
			curl_easy_setopt(p->easy, CURLOPT_PRIVATE, (char *)p);
			if (curl_multi_add_handle(c->multi, p->easy) != CURLM_OK) {
				p->rc = CURLE_OUT_OF_MEMORY;
				p->done = true;
				pthread_cond_broadcast(&c->io_done);
			}
		}
		pthread_mutex_unlock(&c->io_lock);
		if (stop)
			break;
		curl_multi_perform(c->multi, &running);
		while ((msg = curl_multi_info_read(c->multi, &left)))
			if (msg->msg == CURLMSG_DONE)
				io_finish(c, msg);
		curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
	}
	return NULL;
}

/* Runs one prepared easy handle on the I/O thread and waits for it. */
static CURLcode io_run(http_client *c, CURL *easy)
{
	struct pending p = { .easy = easy };

	pthread_mutex_lock(&c->io_lock);
	p.next = c->incoming;
	c->incoming = &p;
	pthread_mutex_unlock(&c->io_lock);
	curl_multi_wakeup(c->multi);
	pthread_mutex_lock(&c->io_lock);
	while (!p.done)
		pthread_cond_wait(&c->io_done, &c->io_lock);
	pthread_mutex_unlock(&c->io_lock);
	return p.rc;
}

http_client *http_client_new(const http_options *opts, cs_error *err)
{
	http_client *c;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		cs_error_set(err, CS_E_NOMEM, "could not initialise libcurl: %s",
			     curl_easy_strerror(global_rc));
		return NULL;
	}
	if (opts && opts->ca_file && access(opts->ca_file, R_OK) != 0) {
		cs_error_set(err, CS_E_CONFIG,
			     "cannot read the CA file %s: check the path given "
			     "with --ca-file", opts->ca_file);
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		goto nomem;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->locks[i], NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_mutex_init(&c->io_lock, NULL);
	pthread_cond_init(&c->io_done, NULL);
	c->share = curl_share_init();
	c->multi = curl_multi_init();
	if (!c->share || !c->multi)
		goto nomem;
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (opts) {
		c->insecure = opts->insecure;
		c->connect_timeout_ms = opts->connect_timeout_ms;
		c->stall_timeout_s = opts->stall_timeout_s;
		if (opts->ca_file && !(c->ca_file = strdup(opts->ca_file)))
			goto nomem;
	}
	if (c->connect_timeout_ms <= 0)
		c->connect_timeout_ms = 10000;
	if (c->stall_timeout_s <= 0)
		c->stall_timeout_s = 60;
	if (pthread_create(&c->io, NULL, io_main, c) != 0)
		goto nomem;
	c->io_running = true;
	return c;
nomem:
	http_client_free(c);
	cs_error_set(err, CS_E_NOMEM, "out of memory");
	return NULL;
}

void http_client_free(http_client *c)
{
	if (!c)
		return;
	if (c->io_running) {
		pthread_mutex_lock(&c->io_lock);
		c->stopping = true;
		pthread_mutex_unlock(&c->io_lock);
		curl_multi_wakeup(c->multi);
		pthread_join(c->io, NULL);
	}
	while (c->pool) {
		struct handle *h = c->pool;
		c->pool = h->next;
		curl_easy_cleanup(h->easy);
		free(h);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	if (c->share)
		curl_share_cleanup(c->share);
	pthread_mutex_destroy(&c->io_lock);
	pthread_cond_destroy(&c->io_done);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	free(c->ca_file);
	free(c);
}

/* A new easy handle with the options every transfer has.  Handles are
 * reused, never reset, so they keep their live connections and their
 * cookie engine (curl_easy_reset would turn the engine off). */
static struct handle *handle_new(http_client *c)
{
	struct handle *h = calloc(1, sizeof *h);
	CURL *e;

	if (!h || !(h->easy = curl_easy_init())) {
		free(h);
		return NULL;
	}
	e = h->easy;
	curl_easy_setopt(e, CURLOPT_SHARE, c->share);
	curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");  /* the jar is the share's */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "copystand/" "0.1");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->stall_timeout_s);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return h;
}

static struct handle *handle_take(http_client *c)
{
	struct handle *h;

	pthread_mutex_lock(&c->pool_lock);
	h = c->pool;
	if (h)
		c->pool = h->next;
	pthread_mutex_unlock(&c->pool_lock);
	return h ? h : handle_new(c);
}

static void handle_give(http_client *c, struct handle *h)
{
	pthread_mutex_lock(&c->pool_lock);
	h->next = c->pool;
	c->pool = h;
	pthread_mutex_unlock(&c->pool_lock);
}

static bool status_is_2xx(CURL *e)
{
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	return status >= 200 && status < 300;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;
	http_response *r = t->resp;
	size_t len = size * n;
	bool payload = status_is_2xx(t->easy);
	size_t cap = payload ? t->cap : t->error_cap;

	if (t->req->sink && payload) {
		if (fwrite(data, 1, len, t->req->sink) != len) {
			t->sink_failed = true;
			return 0;
		}
		return len;
	}
	if (r->body_len + len > cap) {
		/* A data reply that large is hostile.  An error page is only
		 * read for a message: keep its start and hang up, since one
		 * that never ends would hold us forever. */
		if (payload) {
			t->over_cap = true;
			return 0;
		}
		len = cap - r->body_len;
		t->cut = true;
	}
	if (r->body_len + len + 1 > t->alloc) {
		size_t want = t->alloc ? t->alloc : 4096;
		char *p;
		while (want < r->body_len + len + 1)
			want *= 2;
		p = realloc(r->body, want);
		if (!p)
			return 0;
		r->body = p;
		t->alloc = want;
	}
	memcpy(r->body + r->body_len, data, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return t->cut ? 0 : size * n;
}

/* Copies a header value without surrounding white space. */
static void header_value(const char *v, size_t len, char *out, size_t outsz)
{
	while (len && isspace((unsigned char)*v))
		v++, len--;
	while (len && isspace((unsigned char)v[len - 1]))
		len--;
	if (len >= outsz)
		len = outsz - 1;
	memcpy(out, v, len);
	out[len] = '\0';
}

/* A Content-Length we can use: digits only, in range; else -1. */
static long long parse_length(const char *v)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(v, &end, 10);
	return end == v || *end || n < 0 || errno ? -1 : n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;
	http_response *r = t->resp;
	size_t len = size * n;
	const char *colon = memchr(data, ':', len);
	char val[128];

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue): forget earlier headers. */
		r->content_type[0] = '\0';
		r->content_length = -1;
		r->x_timestamp = 0;
		t->head_done = false;
		return len;
	}
	if (data[0] == '\r' || data[0] == '\n') {
		t->head_done = true;
		return len;
	}
	if (!colon)
		return len;
	header_value(colon + 1, len - (size_t)(colon + 1 - data), val, sizeof val);
	if ((size_t)(colon - data) == 12 && strncasecmp(data, "Content-Type", 12) == 0)
		snprintf(r->content_type, sizeof r->content_type, "%s", val);
	else if ((size_t)(colon - data) == 14 && strncasecmp(data, "Content-Length", 14) == 0)
		r->content_length = parse_length(val);
	else if ((size_t)(colon - data) == 11 && strncasecmp(data, "X-Timestamp", 11) == 0)
		r->x_timestamp = strtoll(val, NULL, 10);
	return len;
}

static int error_from_curl(CURLcode rc, const char *url, const char *detail,
			   cs_error *err)
{
	char where[512];
	const char *why = detail[0] ? detail : curl_easy_strerror(rc);

	http_url_redact(url, where, sizeof where);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return cs_error_set(err, CS_E_UNREACHABLE,
			"cannot resolve the host of %s (%s): check the server "
			"address and this computer's network", where, why);
	case CURLE_COULDNT_CONNECT:
		return cs_error_set(err, CS_E_UNREACHABLE,
			"cannot connect to %s (%s): is the server running and "
			"reachable from this computer?", where, why);
	case CURLE_OPERATION_TIMEDOUT:
		return cs_error_set(err, CS_E_TIMEOUT,
			"%s did not answer in time (%s): the server or the "
			"network is slow or down", where, why);
	case CURLE_SSL_CACERT_BADFILE:
		/* Not the server's fault: the CA bundle could not be loaded. */
		return cs_error_set(err, CS_E_CONFIG,
			"cannot use the CA certificates to check %s (%s): the "
			"file given with --ca-file must hold PEM certificates; "
			"without --ca-file, install the ca-certificates package",
			where, why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return cs_error_set(err, CS_E_TLS,
			"TLS failure talking to %s (%s): if the server uses a "
			"private certificate authority, pass its certificate "
			"with --ca-file", where, why);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_USE_SSL_FAILED:
		/* Most often https:// given for a port that speaks plain HTTP. */
		return cs_error_set(err, CS_E_TLS,
			"TLS handshake with %s failed (%s): check that the server "
			"speaks HTTPS on that port, or give its http:// address",
			where, why);
	case CURLE_READ_ERROR:
		return cs_error_set(err, CS_E_IO,
			"could not read the file being sent to %s (%s)", where, why);
	case CURLE_UNSUPPORTED_PROTOCOL:
		/* Also an answer that is not HTTP (libcurl calls it HTTP/0.9). */
		return cs_error_set(err, CS_E_CONFIG,
			"cannot talk HTTP with %s (%s): check the server address, "
			"its port, and http:// versus https://", where, why);
	case CURLE_URL_MALFORMAT:
		return cs_error_set(err, CS_E_CONFIG,
			"bad URL %s (%s): use http:// or https:// addresses",
			where, why);
	case CURLE_ABORTED_BY_CALLBACK:
		return cs_error_set(err, CS_E_NETWORK,
			"the transfer to %s was stopped", where);
	case CURLE_OUT_OF_MEMORY:
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	default:
		return cs_error_set(err, CS_E_NETWORK,
			"the connection to %s failed (%s): the network or the "
			"server dropped it", where, why);
	}
}

static struct curl_slist *build_headers(const http_request *req)
{
	struct curl_slist *list = NULL, *next;
	char ct[160];

	if (req->content_type) {
		snprintf(ct, sizeof ct, "Content-Type: %s", req->content_type);
		if (!(list = curl_slist_append(list, ct)))
			return NULL;
	}
	for (const char *const *h = req->headers; h && *h; h++) {
		if (!(next = curl_slist_append(list, *h))) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = next;
	}
	return list;
}

static curl_mime *build_form(CURL *e, const http_request *req)
{
	curl_mime *mime = curl_mime_init(e);
	curl_mimepart *part;
	const http_form_file *f = req->form_file;

	if (!mime)
		return NULL;
	if (f) {
		part = curl_mime_addpart(mime);
		if (!part || curl_mime_name(part, f->field) ||
		    curl_mime_filedata(part, f->path) ||
		    curl_mime_filename(part, f->filename) ||
		    (f->mimetype && curl_mime_type(part, f->mimetype)))
			goto fail;
	}
	for (const char *const *kv = req->form; kv && kv[0] && kv[1]; kv += 2) {
		part = curl_mime_addpart(mime);
		if (!part || curl_mime_name(part, kv[0]) ||
		    curl_mime_data(part, kv[1], CURL_ZERO_TERMINATED))
			goto fail;
	}
	return mime;
fail:
	curl_mime_free(mime);
	return NULL;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct transfer *t = ud;
	size_t left = t->req->body_len - t->sent;
	size_t len = size * n < left ? size * n : left;

	memcpy(buf, t->req->body + t->sent, len);
	t->sent += len;
	return len;
}

/* libcurl rewinds a body only to send the request again: refuse that for
 * a request that must go once. */
static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct transfer *t = ud;
	return offset == 0 && origin == SEEK_SET && t->sent == 0 ?
	       CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
}

/* Lets http_client_cancel() stop a transfer under way (a large upload
 * would otherwise hold up a stop for as long as it takes). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct transfer *t = ud;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return t->client->cancelled ? 1 : 0;
}

/* Sets the method and in-memory body.  A reused handle starts from a plain
 * GET; a multipart body (set after this) makes the request a POST. */
static void apply_method(CURL *e, const http_request *req, struct transfer *t)
{
	const char *m = req->method ? req->method : "GET";

	/* Setting POSTFIELDS (even to NULL) makes a POST: HTTPGET comes after. */
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, NULL);
	curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, NULL);
	curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
	if (req->head) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		return;
	}
	if (req->form || req->form_file)
		return;
	if (req->body && req->once) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, t);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, t);
	} else if (req->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
	} else if (strcmp(m, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
	}
	if (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
}

int http_client_perform(http_client *c, const http_request *req,
			http_response *resp, cs_error *err)
{
	struct transfer t = { .client = c, .req = req, .resp = resp };
	struct curl_slist *headers = NULL;
	curl_mime *mime = NULL;
	char detail[CURL_ERROR_SIZE] = "";
	struct handle *h;
	CURLcode rc;
	int ret = 0;

	memset(resp, 0, sizeof *resp);
	resp->content_length = -1;
	t.cap = req->max_body ? req->max_body : DEFAULT_MAX_BODY;
	t.error_cap = t.cap < ERROR_BODY_KEEP ? t.cap : ERROR_BODY_KEEP;
	if (!(h = handle_take(c)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	t.easy = h->easy;
	curl_easy_setopt(h->easy, CURLOPT_URL, req->url);
	curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, detail);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(h->easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h->easy, CURLOPT_XFERINFODATA, &t);
	if (c->cancelled) {
		ret = error_from_curl(CURLE_ABORTED_BY_CALLBACK, req->url, "", err);
		goto out;
	}
	if ((req->content_type || req->headers) && !(headers = build_headers(req))) {
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
		goto out;
	}
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, headers);
	apply_method(h->easy, req, &t);
	if (req->form || req->form_file) {
		if (!(mime = build_form(h->easy, req))) {
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
			goto out;
		}
		curl_easy_setopt(h->easy, CURLOPT_MIMEPOST, mime);
	}

	rc = io_run(c, h->easy);
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &resp->status);
	if (t.over_cap)
		ret = cs_error_set(err, CS_E_PROTOCOL,
			"the reply from %s is larger than %zu bytes: refusing it",
			req->url, t.cap);
	else if (t.sink_failed)
		ret = cs_error_set(err, CS_E_IO, "could not write the downloaded "
				   "file: the disk may be full");
	else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && t.cut))
		ret = error_from_curl(rc, req->url, detail, err);
	else if (!t.head_done)  /* libcurl takes a close there for the end */
		ret = error_from_curl(CURLE_PARTIAL_FILE, req->url,
				      "the answer ended inside its headers", err);
out:
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h->easy, CURLOPT_MIMEPOST, NULL);
	curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(headers);
	curl_mime_free(mime);
	handle_give(c, h);
	return ret;
}

void http_client_cancel(http_client *c)
{
	c->cancelled = 1;
	curl_multi_wakeup(c->multi);
}

void http_response_clear(http_response *resp)
{
	free(resp->body);
	memset(resp, 0, sizeof *resp);
	resp->content_length = -1;
}

bool http_response_is_blank(const http_response *resp)
{
	for (size_t i = 0; i < resp->body_len; i++)
		if (!isspace((unsigned char)resp->body[i]))
			return false;
	return true;
}

/* Hands the shared jar a cookie command (CURLOPT_COOKIELIST: a cookie
 * line, or "ALL"); false when no handle could be had. */
static bool jar_apply(http_client *c, const char *command)
{
	struct handle *h = handle_take(c);

	if (!h)
		return false;
	curl_easy_setopt(h->easy, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h->easy, CURLOPT_COOKIELIST, command);
	handle_give(c, h);
	return true;
}

/* Cookie lines are Netscape format: domain, tailmatch, path, secure,
 * expires, name, value, separated by tabs.  Calls each(line, value, ud)
 * for the lines of cookies named name that have not expired. */
static void each_cookie(http_client *c, const char *name,
			void (*each)(const char *line, const char *value, void *ud), void *ud)
{
	struct curl_slist *list = NULL;
	struct handle *h = handle_take(c);
	time_t now = time(NULL);

	if (!h)
		return;
	curl_easy_setopt(h->easy, CURLOPT_SHARE, c->share);
	if (curl_easy_getinfo(h->easy, CURLINFO_COOKIELIST, &list) == CURLE_OK) {
		for (struct curl_slist *l = list; l; l = l->next) {
			const char *f = l->data;
			long long expires = -1;
			for (int field = 0; field < 5 && f; field++) {
				if (field == 4)
					expires = strtoll(f, NULL, 10);
				f = strchr(f, '\t');
				if (f)
					f++;
			}
			if (!f || (expires > 0 && expires <= (long long)now))
				continue;
			size_t nlen = strcspn(f, "\t");
			if (nlen == strlen(name) && strncmp(f, name, nlen) == 0 &&
			    f[nlen] == '\t')
				each(l->data, f + nlen + 1, ud);
		}
	}
	curl_slist_free_all(list);
	handle_give(c, h);
}

static void keep_value(const char *line, const char *value, void *ud)
{
	char **out = ud;

	(void)line;
	free(*out);
	*out = strdup(value);
}

char *http_client_cookie(http_client *c, const char *name)
{
	char *value = NULL;

	each_cookie(c, name, keep_value, &value);
	return value;
}

struct drop {
	http_client *c;
	const char *value;
	int others;             /* cookies of the name with another value */
};

/* The line again, expired: curl replaces the cookie with it. */
static void expire_line(const char *line, const char *value, void *ud)
{
	const struct drop *d = ud;
	const char *f = line;
	char *expired = NULL;

	if (strcmp(value, d->value))
		return;
	for (int field = 0; field < 4 && f; field++)
		if ((f = strchr(f, '\t')))
			f++;
	if (!f || asprintf(&expired, "%.*s1%s", (int)(f - line), line, strchr(f, '\t')) < 0)
		return;
	jar_apply(d->c, expired);
	free(expired);
}

static void count_others(const char *line, const char *value, void *ud)
{
	struct drop *d = ud;

	(void)line;
	d->others += strcmp(value, d->value) != 0;
}

void http_client_drop_cookie(http_client *c, const char *name, const char *value)
{
	struct drop d = { c, value, 0 };

	each_cookie(c, name, count_others, &d);
	if (d.others)
		each_cookie(c, name, expire_line, &d);
}

int http_client_set_cookie(http_client *c, const char *url, const char *name,
			   const char *value, cs_error *err)
{
	CURLU *u = curl_url();
	char *host = NULL, *line = NULL;
	int ret = 0;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		ret = cs_error_set(err, CS_E_CONFIG, "%s is no URL", url);
	else if (asprintf(&line, "%s\tFALSE\t/\tFALSE\t0\t%s\t%s", host, name, value) < 0)
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory"), line = NULL;
	else if (!jar_apply(c, line))
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	free(line);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

void http_client_clear_cookies(http_client *c)
{
	jar_apply(c, "ALL");
}

char *http_escape(const char *s)
{
	char *tmp = curl_easy_escape(NULL, s, 0);
	char *out = tmp ? strdup(tmp) : NULL;
	curl_free(tmp);
	return out;
}

void http_url_redact(const char *url, char *out, size_t outsz)
{
	const char *scheme = strstr(url, "://");
	const char *host = scheme ? scheme + 3 : url;
	const char *at = strchr(host, '@');
	const char *slash = strchr(host, '/');

	if (at && (!slash || at < slash))
		snprintf(out, outsz, "%.*s%s", (int)(host - url), url, at + 1);
	else
		snprintf(out, outsz, "%s", url);
}
