/* Hostile server replies never crash the client.
 *
 * A small HTTP/1.1 server in this process plays Specify and its asset
 * server from canned replies, trimmed from the recorded exchanges
 * (specify-samples).  A seeded mutation engine derives hostile replies from
 * them, one route at a time: wrong types, missing keys, huge numbers, deep
 * nesting, control bytes, unsafe locations, wrong statuses and content
 * types, bodies far over the client's caps, truncated or dripped answers,
 * things that are not HTTP.  For each, the real client walks the whole flow
 * and stops at the first error; every call must return 0 or a negative
 * CS_E_* with a message, must not crash (ASan and UBSan watch), and must
 * not build a success on garbage.
 *
 * HOSTILE_SEED=n in the environment explores other random mutations. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lookup.h"
#include "tap.h"

/* --- the canned conversation ------------------------------------------ */

enum route {
	R_LOGIN_GET, R_LOGIN_PUT, R_USER, R_DOMAIN, R_LOOKUP, R_SETTINGS,
	R_TOKEN, R_TESTKEY, R_RESERVE, R_UPLOAD, R_ORDINAL, R_ATTACH,
	R_FIND_ATT, R_FIND_JOIN, R_SIZE, R_DOWNLOAD, R_DELETE, R_LOGOUT,
	R_QUERY,
	R_COUNT,
	R_UNKNOWN = R_COUNT,
};

static const char *const route_names[R_COUNT + 1] = {
	"login-get", "login-put", "user", "domain", "lookup", "settings",
	"token", "testkey", "reserve", "upload", "ordinal", "attach",
	"find-attachment", "find-join", "size", "download", "delete", "logout",
	"query", "unknown",
};

enum fault {
	F_NONE,
	F_SHORT,        /* Content-Length larger than the body, then close */
	F_HUGE,         /* the body, then HUGE_BYTES of filler */
	F_ENDLESS,      /* filler until the client hangs up (bounded) */
	F_DRIP,         /* the first DRIP_BYTES a byte at a time */
	F_SILENT,       /* close without answering */
	F_RESET,        /* reset without answering */
	F_RAW,          /* the body is the whole answer, no HTTP framing */
	F_CHUNKED,      /* chunked; the body carries its own framing */
};

#define HUGE_BYTES (16u << 20)
#define ENDLESS_MAX (64u << 20)
#define DRIP_BYTES 48

struct reply {
	int status;
	const char *type;       /* Content-Type, or NULL for none */
	char *headers;          /* more header lines, each ending in CRLF */
	char *body;
	size_t body_len;
	long long length;       /* Content-Length to announce; -1: the body's */
	enum fault fault;
	bool json;              /* the body is JSON (tree mutations apply) */
};

#define TOKEN "0f93fbf5d9b8b7d0f9aa4dc141851569:1795521346"
#define LOCATION "c04ed3bb-07ec-4223-b923-f1df5056dfe3.jpg"
#define ATTACHMENT_534 \
	"{\"id\": 534, \"attachmentlocation\": \"" LOCATION "\", " \
	"\"mimetype\": \"image/jpeg\", \"origfilename\": \"000000003.jpg\", " \
	"\"title\": \"000000003.jpg\", \"ispublic\": false, \"tableid\": 1, " \
	"\"version\": 0, \"resource_uri\": \"/api/specify/attachment/534/\"}"
#define AGENT \
	"{\"id\": 1, \"agenttype\": 1, \"firstname\": \"Test\", \"lastname\": \"Admin\", " \
	"\"division\": \"/api/specify/division/1/\", \"specifyuser\": " \
	"\"/api/specify/specifyuser/1/\", \"resource_uri\": \"/api/specify/agent/1/\"}"

/* Sample 09: the asset server is this server too (%1$d: its port). */
#define SETTINGS \
	"{\"collection\": \"Fish Test\", \"token_required_for_get\": false, " \
	"\"read\": \"http://127.0.0.1:%1$d/fileget\", \"write\": \"http://127.0.0.1:%1$d/fileupload\", " \
	"\"delete\": \"http://127.0.0.1:%1$d/filedelete\", \"getmetadata\": " \
	"\"http://127.0.0.1:%1$d/getmetadata\", \"testkey\": \"http://127.0.0.1:%1$d/testkey\"}"

/* Bodies from specify-samples 02, 04, 06, 07, 10, 14, 15, 16, 19, 20, 25,
 * 27, trimmed to the fields a client could read. */
static const struct {
	int status;
	const char *type;
	const char *headers;
	const char *body;
	bool json;
} canned[R_COUNT] = {
	[R_LOGIN_GET] = { 200, "application/json",
		"Set-Cookie: csrftoken=ubgv7Dle8YiKI7Nrg4A0g5GM6zs6N63J; Max-Age=31449600; Path=/; SameSite=Lax\r\n",
		"{\"collections\": {\"Fish Test\": 1}, \"username\": null, \"password\": null, "
		"\"collection\": null}", true },
	[R_LOGIN_PUT] = { 204, "text/html; charset=utf-8",
		"Set-Cookie: collection=1; Max-Age=31536000; Path=/\r\n"
		"Set-Cookie: csrftoken=kOBqb8MRyUfuTnQMkPFCFQrUH7wYd4Lj; Max-Age=31449600; Path=/; SameSite=Lax\r\n"
		"Set-Cookie: sessionid=2qvylro3z29uuwxx58rlckhhz6kyqdel; HttpOnly; Path=/; SameSite=Lax\r\n",
		"", false },
	[R_USER] = { 200, "application/json", "",
		"{\"id\": 1, \"name\": \"spadmin\", \"usertype\": \"Manager\", \"isadmin\": true, "
		"\"isauthenticated\": true, \"available_collections\": [{\"id\": 1, "
		"\"catalognumformatname\": \"CatalogNumberNumeric\", \"code\": \"FISH\", "
		"\"collectionname\": \"Fish Test\", \"discipline\": \"/api/specify/discipline/1/\", "
		"\"resource_uri\": \"/api/specify/collection/1/\"}], \"agent\": " AGENT ", "
		"\"current_agent\": " AGENT ", \"resource_uri\": \"/api/specify/specifyuser/1/\"}", true },
	[R_DOMAIN] = { 200, "application/json", "",
		"{\"collection\": 1, \"discipline\": 1, \"division\": 1, \"institution\": 1, "
		"\"embeddedCollectingEvent\": false, \"embeddedPaleoContext\": false, "
		"\"paleoContextChildTable\": null, \"catalogNumFormatName\": \"CatalogNumberNumeric\", "
		"\"defaultCollectionObjectType\": \"/api/specify/collectionobjecttype/1/\", "
		"\"collectionObjectTypeCatalogNumberFormats\": "
		"{\"/api/specify/collectionobjecttype/1/\": null}}", true },
	[R_LOOKUP] = { 200, "application/json", "",
		"{\"objects\": [{\"id\": 1, \"catalognumber\": \"000000001\", \"collectionmemberid\": 1, "
		"\"text1\": \"test object 000000001\", \"version\": 1, \"collection\": "
		"\"/api/specify/collection/1/\", \"collectionobjectattachments\": [], "
		"\"resource_uri\": \"/api/specify/collectionobject/1/\"}, {\"id\": 3, "
		"\"catalognumber\": \"000000003\", \"collectionmemberid\": 1, \"remarks\": "
		"\"edited via API\", \"version\": 2, \"collection\": \"/api/specify/collection/1/\", "
		"\"collectionobjectattachments\": [], \"resource_uri\": "
		"\"/api/specify/collectionobject/3/\"}], \"meta\": {\"limit\": 0, \"offset\": 0, "
		"\"total_count\": 2}}", true },
	/* Appendix C: display values (zeros stripped), a row per attachment. */
	[R_QUERY] = { 200, "application/json", "",
		"{\"results\": [[1, \"1\", null, null], [3, \"3\", 77, \"000000003.jpg\"], "
		"[3, \"3\", 78, \"000000003_2.jpg\"]]}", true },
	[R_SETTINGS] = { 200, "application/json", "", NULL /* SETTINGS */, true },
	[R_TOKEN] = { 200, "text/plain", "", TOKEN, false },
	[R_TESTKEY] = { 200, "text/plain; charset=utf-8", "X-Timestamp: 1795521346\r\n", "Ok.", false },
	[R_RESERVE] = { 200, "application/json", "",
		"[{\"attachmentLocation\": \"" LOCATION "\", \"token\": \"" TOKEN "\"}]", true },
	[R_UPLOAD] = { 200, "text/plain; charset=utf-8", "X-Timestamp: 1795521346\r\n", "Ok.", false },
	[R_ORDINAL] = { 200, "application/json", "",
		"{\"objects\": [{\"id\": 533, \"ordinal\": 0, \"attachment\": " ATTACHMENT_534 ", "
		"\"collectionobject\": \"/api/specify/collectionobject/3/\", \"resource_uri\": "
		"\"/api/specify/collectionobjectattachment/533/\"}], \"meta\": {\"limit\": 0, "
		"\"offset\": 0, \"total_count\": 1}}", true },
	[R_ATTACH] = { 201, "application/json", "",
		"{\"id\": 534, \"collectionmemberid\": 1, \"ordinal\": 1, \"remarks\": null, "
		"\"version\": 0, \"attachment\": " ATTACHMENT_534 ", \"collectionobject\": "
		"\"/api/specify/collectionobject/3/\", \"createdbyagent\": \"/api/specify/agent/1/\", "
		"\"resource_uri\": \"/api/specify/collectionobjectattachment/534/\"}", true },
	[R_FIND_ATT] = { 200, "application/json", "",
		"{\"objects\": [" ATTACHMENT_534 "], \"meta\": {\"limit\": 0, \"offset\": 0, "
		"\"total_count\": 1}}", true },
	[R_FIND_JOIN] = { 200, "application/json", "",
		"{\"objects\": [{\"id\": 534, \"ordinal\": 1, \"attachment\": " ATTACHMENT_534 ", "
		"\"collectionobject\": \"/api/specify/collectionobject/3/\", \"resource_uri\": "
		"\"/api/specify/collectionobjectattachment/534/\"}], \"meta\": {\"limit\": 0, "
		"\"offset\": 0, \"total_count\": 1}}", true },
	[R_SIZE] = { 200, "image/jpeg", "", "", false },
	[R_DOWNLOAD] = { 200, "image/jpeg", "", "\xff\xd8\xff\xe0 not much of a JPEG \xff\xd9", false },
	[R_DELETE] = { 204, "text/html; charset=utf-8", "", "", false },
	[R_LOGOUT] = { 204, "text/html; charset=utf-8",
		"Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/\r\n",
		"", false },
};

/* What the size route announces for its HEAD answer. */
#define SIZE_LENGTH 2048

/* --- replies ------------------------------------------------------------ */

static void reply_free(struct reply *r)
{
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof *r);
}

static void reply_set_body(struct reply *r, const char *body, size_t len)
{
	free(r->body);
	r->body = malloc(len + 1);
	if (!r->body)
		abort();
	memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->body_len = len;
}

static void reply_set_headers(struct reply *r, const char *headers)
{
	free(r->headers);
	if (!(r->headers = strdup(headers)))
		abort();
}

static void reply_copy(struct reply *to, const struct reply *from)
{
	*to = *from;
	to->headers = NULL;
	to->body = NULL;
	reply_set_headers(to, from->headers);
	reply_set_body(to, from->body, from->body_len);
}

static void canned_reply(struct reply *r, enum route route, int port)
{
	char *body = NULL;
	int len;

	memset(r, 0, sizeof *r);
	if (route == R_SETTINGS)
		len = asprintf(&body, SETTINGS, port);
	else
		len = asprintf(&body, "%s", canned[route].body);
	if (len < 0)
		abort();
	r->status = canned[route].status;
	r->type = canned[route].type;
	r->json = canned[route].json;
	r->length = route == R_SIZE ? SIZE_LENGTH : -1;
	reply_set_headers(r, canned[route].headers);
	reply_set_body(r, body, (size_t)len);
	free(body);
}

/* --- the server ----------------------------------------------------------- */

struct server {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;     /* held while a connection is served */
	struct reply base[R_COUNT];
	const struct reply *mutant;
	enum route target;
	unsigned hits[R_COUNT + 1];
	size_t target_sent;       /* bytes of the mutated answers written */
};

struct request {
	char method[16];
	char path[2048];
	char query[2048];
	char body[1024];          /* the beginning of it */
};

static char filler[1 << 16];

static size_t send_all(int fd, const char *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	return done;
}

/* The body length a request head announces (-1: none), and whether it
 * waits for 100 Continue. */
static long long header_length(const char *head, bool *expect)
{
	long long length = -1;

	*expect = false;
	for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (strncasecmp(h, "Content-Length:", 15) == 0)
			length = strtoll(h + 15, NULL, 10);
		else if (strncasecmp(h, "Expect: 100-continue", 20) == 0)
			*expect = true;
	}
	return length;
}

/* Reads one request: the head, and the body (only its start is kept). */
static bool read_request(int fd, struct request *rq)
{
	char head[16384], target[4096];
	size_t len = 0;
	long long left;
	bool expect;
	char *end = NULL;

	memset(rq, 0, sizeof *rq);
	while (!end && len + 1 < sizeof head) {
		ssize_t n = recv(fd, head + len, sizeof head - 1 - len, 0);
		if (n <= 0)
			return false;
		len += (size_t)n;
		head[len] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	if (!end || sscanf(head, "%15s %4095s", rq->method, target) != 2)
		return false;
	end[2] = '\0';
	left = header_length(head, &expect);
	if (expect)
		send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	char *q = strchr(target, '?');
	if (q) {
		*q++ = '\0';
		snprintf(rq->query, sizeof rq->query, "%s", q);
	}
	snprintf(rq->path, sizeof rq->path, "%s", target);

	/* Keep the body's start (it tells logout from login), drain the
	 * rest; what came with the head is where it begins. */
	size_t have = len - (size_t)(end + 4 - head), kept = 0;
	const char *chunk = end + 4;
	char buf[65536];
	while (left > 0) {
		size_t take = have < (size_t)left ? have : (size_t)left;
		size_t keep = take < sizeof rq->body - 1 - kept ? take : sizeof rq->body - 1 - kept;

		memcpy(rq->body + kept, chunk, keep);
		kept += keep;
		left -= (long long)take;
		if (left > 0) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);
			if (n <= 0)
				return false;
			chunk = buf;
			have = (size_t)n;
		}
	}
	return true;
}

static enum route route_of(const struct request *rq)
{
	static const char join_rows[] = "/api/specify/collectionobjectattachment/";
	static const struct {
		const char *method, *path, *query;
		enum route route;
	} routes[] = {
		{ "GET", "/context/login/", NULL, R_LOGIN_GET },
		{ "PUT", "/context/login/", NULL, R_LOGIN_PUT },
		{ "GET", "/context/user.json", NULL, R_USER },
		{ "GET", "/context/domain.json", NULL, R_DOMAIN },
		{ "GET", "/api/specify/collectionobject/", NULL, R_LOOKUP },
		{ "GET", "/context/attachment_settings.json", NULL, R_SETTINGS },
		{ "GET", "/attachment_gw/get_token/", NULL, R_TOKEN },
		{ "GET", "/testkey", NULL, R_TESTKEY },
		{ "POST", "/attachment_gw/get_upload_params/", NULL, R_RESERVE },
		{ "POST", "/fileupload", NULL, R_UPLOAD },
		{ "GET", "/api/specify/collectionobjectattachment/", "collectionobject=", R_ORDINAL },
		{ "POST", "/api/specify/collectionobjectattachment/", NULL, R_ATTACH },
		{ "GET", "/api/specify/attachment/", NULL, R_FIND_ATT },
		{ "GET", "/api/specify/collectionobjectattachment/", "attachment=", R_FIND_JOIN },
		{ "HEAD", "/fileget", NULL, R_SIZE },
		{ "GET", "/fileget", NULL, R_DOWNLOAD },
		{ "POST", "/stored_query/ephemeral/", NULL, R_QUERY },
	};

	/* Logout is the login PUT with nulls; deleting names any join row. */
	if (strcmp(rq->method, "PUT") == 0 && strcmp(rq->path, "/context/login/") == 0 &&
	    strstr(rq->body, "\"username\": null"))
		return R_LOGOUT;
	if (strcmp(rq->method, "DELETE") == 0 &&
	    strncmp(rq->path, join_rows, sizeof join_rows - 1) == 0)
		return R_DELETE;
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (strcmp(rq->method, routes[i].method) == 0 &&
		    strcmp(rq->path, routes[i].path) == 0 &&
		    (!routes[i].query || strstr(rq->query, routes[i].query)))
			return routes[i].route;
	return R_UNKNOWN;
}

static size_t send_filler(int fd, size_t total)
{
	size_t sent = 0;

	while (sent < total) {
		size_t n = total - sent < sizeof filler ? total - sent : sizeof filler;
		size_t done = send_all(fd, filler, n);
		sent += done;
		if (done < n)
			break;
	}
	return sent;
}

/* Sends the first DRIP_BYTES of p a byte at a time, then the rest. */
static size_t send_drip(int fd, const char *p, size_t len)
{
	struct timespec pause = { 0, 1000000 };
	size_t sent = 0;

	while (sent < len && sent < DRIP_BYTES) {
		if (send_all(fd, p + sent, 1) != 1)
			return sent;
		sent++;
		nanosleep(&pause, NULL);
	}
	return sent + send_all(fd, p + sent, len - sent);
}

static size_t send_reply(int fd, const struct reply *r, bool head_only)
{
	char *head = NULL, length[64] = "";
	size_t sent;
	int len;

	switch (r->fault) {
	case F_SILENT:
		return 0;
	case F_RESET: {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		return 0;
	}
	case F_RAW:
		return send_all(fd, r->body, r->body_len);
	case F_SHORT:
		snprintf(length, sizeof length, "Content-Length: %zu\r\n", r->body_len + 1000);
		break;
	case F_HUGE:
		snprintf(length, sizeof length, "Content-Length: %zu\r\n", r->body_len + HUGE_BYTES);
		break;
	case F_ENDLESS:
		break;
	case F_CHUNKED:
		snprintf(length, sizeof length, "Transfer-Encoding: chunked\r\n");
		break;
	default:
		snprintf(length, sizeof length, "Content-Length: %lld\r\n",
			 r->length >= 0 ? r->length : (long long)r->body_len);
	}
	len = asprintf(&head, "HTTP/1.1 %d Hostile\r\n%s%s%s%sConnection: close\r\n%s\r\n",
		       r->status, r->type ? "Content-Type: " : "", r->type ? r->type : "",
		       r->type ? "\r\n" : "", length, r->headers);
	if (len < 0)
		abort();
	if (r->fault == F_DRIP) {
		sent = send_drip(fd, head, (size_t)len);
		if (sent == (size_t)len && !head_only)
			sent += send_drip(fd, r->body, r->body_len);
		free(head);
		return sent;
	}
	sent = send_all(fd, head, (size_t)len);
	free(head);
	if (sent < (size_t)len || head_only)
		return sent;
	sent += send_all(fd, r->body, r->body_len);
	if (r->fault == F_HUGE)
		sent += send_filler(fd, HUGE_BYTES);
	else if (r->fault == F_ENDLESS)
		sent += send_filler(fd, ENDLESS_MAX);
	return sent;
}

static void serve_one(struct server *sv, int fd)
{
	struct timeval tv = { .tv_sec = 5 };
	struct request rq;
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (!read_request(fd, &rq))
		return;
	enum route route = route_of(&rq);
	sv->hits[route]++;
	if (route == R_UNKNOWN) {
		static const struct reply not_found = {
			.status = 404, .type = "text/html", .headers = "",
			.body = "<h1>Not Found</h1>", .body_len = 18, .length = -1,
		};
		send_reply(fd, &not_found, false);
	} else if (route == sv->target && sv->mutant) {
		sv->target_sent += send_reply(fd, sv->mutant, !strcmp(rq.method, "HEAD"));
	} else {
		send_reply(fd, &sv->base[route], !strcmp(rq.method, "HEAD"));
	}
	shutdown(fd, SHUT_WR);
}

static void *serve(void *ud)
{
	struct server *sv = ud;

	for (;;) {
		int fd = accept(sv->fd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;   /* shut down */
		}
		pthread_mutex_lock(&sv->lock);
		serve_one(sv, fd);
		pthread_mutex_unlock(&sv->lock);
		close(fd);
	}
}

static int server_start(struct server *sv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof a;

	memset(sv, 0, sizeof *sv);
	memset(filler, 'x', sizeof filler);
	pthread_mutex_init(&sv->lock, NULL);
	if ((sv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(sv->fd, (struct sockaddr *)&a, sizeof a) ||
	    getsockname(sv->fd, (struct sockaddr *)&a, &alen) || listen(sv->fd, 16))
		return -1;
	sv->port = ntohs(a.sin_port);
	for (int r = 0; r < R_COUNT; r++)
		canned_reply(&sv->base[r], (enum route)r, sv->port);
	return pthread_create(&sv->thread, NULL, serve, sv) ? -1 : 0;
}

static void server_stop(struct server *sv)
{
	shutdown(sv->fd, SHUT_RDWR);   /* wakes accept() */
	pthread_join(sv->thread, NULL);
	close(sv->fd);
	for (int r = 0; r < R_COUNT; r++)
		reply_free(&sv->base[r]);
	pthread_mutex_destroy(&sv->lock);
}

/* Serves mutant (NULL: none) for target from now on.  Both this and
 * server_disarm() wait for the connection being served: it may still be
 * writing an answer the client gave up on. */
static void server_arm(struct server *sv, enum route target, const struct reply *mutant)
{
	pthread_mutex_lock(&sv->lock);
	sv->target = target;
	sv->mutant = mutant;
	sv->target_sent = 0;
	memset(sv->hits, 0, sizeof sv->hits);
	pthread_mutex_unlock(&sv->lock);
}

/* Back to the canned replies; how often the target was asked since
 * server_arm() and how many bytes of the mutant went out. */
static void server_disarm(struct server *sv, unsigned *asked, size_t *sent)
{
	pthread_mutex_lock(&sv->lock);
	*asked = sv->hits[sv->target];
	*sent = sv->target_sent;
	sv->mutant = NULL;
	pthread_mutex_unlock(&sv->lock);
}

/* --- the flow ------------------------------------------------------------- */

struct flow {
	const char *url;
	const char *file;
	specify_session *s;
	long long record_id;
	specify_reservation res;
	char token[160];
	int ordinal;
	specify_attached att, found;
	char garbage[256];     /* what a step accepted that it should not have */
};

static bool plain_text(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* What the asset server will take as a file name: no path, no control. */
static bool location_ok(const char *loc)
{
	return plain_text(loc, 128) && loc[0] != '.' && !strstr(loc, "..") &&
	       !strpbrk(loc, "/\\");
}

/* hex digest ':' unix time, as both servers make them. */
static bool token_ok(const char *tok)
{
	return plain_text(tok, 159) && strchr(tok, ':') &&
	       strspn(tok, "0123456789abcdefABCDEF:-") == strlen(tok);
}

static int step_login(struct flow *f, cs_error *err)
{
	specify_login login = {
		.server = f->url, .user = "spadmin", .password = "testpass",
		.collection = "Fish Test",
	};
	const specify_info *i;
	int ret = specify_session_login(&login, &f->s, err);

	if (ret)
		return ret;
	i = specify_session_info(f->s);
	if (i->user_id <= 0 || i->agent_id <= 0 || i->collection_id <= 0 ||
	    !i->collection || !*i->collection || !i->agent)
		snprintf(f->garbage, sizeof f->garbage, "login: user %lld, agent %lld, "
			 "collection %lld", i->user_id, i->agent_id, i->collection_id);
	return 0;
}

/* Keeps the first record id that is a plain positive number. */
static int on_record(void *ud, const char *value, const cJSON *record)
{
	struct flow *f = ud;
	const cJSON *id = cJSON_GetObjectItem(record, "id");

	(void)value;
	if (!f->record_id && cJSON_IsNumber(id) && id->valuedouble >= 1 &&
	    id->valuedouble < 1e9)
		f->record_id = (long long)id->valuedouble;
	return 0;
}

static int step_lookup(struct flow *f, cs_error *err)
{
	const char *values[] = { "000000001", "000000003" };
	int ret = specify_records_lookup(f->s, "collectionobject", "catalognumber",
					 values, 2, on_record, f, err);

	if (!f->record_id)
		f->record_id = 3;   /* carry on: the record exists, whatever was said */
	return ret;
}

/* The batched lookup: the query builder, else the REST API. */
static int step_query(struct flow *f, cs_error *err)
{
	const char *values[] = { "000000001", "000000003", "000000004" };
	const lookup_record *hits[4];
	lookup *l = NULL;
	int ret = lookup_run(f->s, match_target_find("catalog-number"), values, 3, &l, err);

	for (size_t i = 0; ret == 0 && i < 3; i++) {
		int n = lookup_find(l, values[i], hits, 4);
		for (int k = 0; k < n && k < 4; k++)
			if (hits[k]->id < 1 || hits[k]->nattachments < 0 ||
			    strcasecmp(hits[k]->value, values[i]) != 0)
				snprintf(f->garbage, sizeof f->garbage, "query: record %lld "
					 "'%.40s' for %s", hits[k]->id, hits[k]->value, values[i]);
	}
	lookup_free(l);
	return ret;
}

static int step_assets(struct flow *f, cs_error *err)
{
	return specify_assets_check(f->s, err);
}

static int step_reserve(struct flow *f, cs_error *err)
{
	const char *name = "000000003.jpg";
	int ret = specify_locations_reserve(f->s, &name, 1, &f->res, err);

	if (ret == 0 && (!location_ok(f->res.location) || !token_ok(f->res.token)))
		snprintf(f->garbage, sizeof f->garbage, "reserve: location '%.60s', token '%.60s'",
			 f->res.location, f->res.token);
	return ret;
}

static int step_token(struct flow *f, cs_error *err)
{
	int ret = specify_asset_token(f->s, f->res.location, f->token, sizeof f->token, err);

	if (ret == 0 && !token_ok(f->token))
		snprintf(f->garbage, sizeof f->garbage, "token: '%.60s'", f->token);
	return ret;
}

static int step_upload(struct flow *f, cs_error *err)
{
	return specify_asset_upload(f->s, f->file, "000000003.jpg", "image/jpeg",
				    f->res.location, f->token, err);
}

static int step_ordinal(struct flow *f, cs_error *err)
{
	int ret = specify_attachment_next_ordinal(f->s, "collectionobject", f->record_id,
						  &f->ordinal, err);

	if (ret == 0 && f->ordinal < 0)
		snprintf(f->garbage, sizeof f->garbage, "ordinal %d", f->ordinal);
	return ret;
}

static int step_attach(struct flow *f, cs_error *err)
{
	specify_attachment a = {
		.table = "collectionobject", .record_id = f->record_id,
		.ordinal = f->ordinal, .location = f->res.location,
		.mimetype = "image/jpeg", .origfilename = "000000003.jpg",
	};
	int ret = specify_attachment_create(f->s, &a, &f->att, err);

	if (ret == 0 && (f->att.join_id <= 0 || f->att.attachment_id <= 0 ||
			 f->att.record_id != f->record_id))
		snprintf(f->garbage, sizeof f->garbage, "attach: join %lld, attachment %lld",
			 f->att.join_id, f->att.attachment_id);
	return ret;
}

static int step_find(struct flow *f, cs_error *err)
{
	int ret = specify_attachment_find(f->s, "collectionobject", f->res.location,
					  &f->found, err);

	if (ret == 0 && (f->found.join_id <= 0 || f->found.attachment_id <= 0 ||
			 f->found.record_id <= 0))
		snprintf(f->garbage, sizeof f->garbage, "find: join %lld, attachment %lld, "
			 "record %lld", f->found.join_id, f->found.attachment_id,
			 f->found.record_id);
	return ret;
}

static int step_size(struct flow *f, cs_error *err)
{
	long long size = -1;
	int ret = specify_asset_size(f->s, f->res.location, &size, err);

	if (ret == 0 && size < 0)
		snprintf(f->garbage, sizeof f->garbage, "size %lld", size);
	return ret;
}

static int step_download(struct flow *f, cs_error *err)
{
	FILE *sink = tmpfile();
	int ret;

	if (!sink)
		return cs_error_set(err, CS_E_IO, "tmpfile failed");
	ret = specify_asset_download(f->s, f->res.location, sink, err);
	fclose(sink);
	return ret;
}

static int step_delete(struct flow *f, cs_error *err)
{
	return specify_attachment_delete(f->s, "collectionobject", f->found.join_id, err);
}

static int step_logout(struct flow *f, cs_error *err)
{
	return specify_session_logout(f->s, err);
}

static const struct {
	const char *name;
	int (*run)(struct flow *f, cs_error *err);
} steps[] = {
	{ "login", step_login }, { "lookup", step_lookup }, { "query", step_query },
	{ "asset check", step_assets },
	{ "reserve", step_reserve }, { "token", step_token }, { "upload", step_upload },
	{ "ordinal", step_ordinal }, { "attach", step_attach }, { "find", step_find },
	{ "size", step_size }, { "download", step_download }, { "delete", step_delete },
	{ "logout", step_logout },
};
enum { N_STEPS = sizeof steps / sizeof steps[0] };

struct outcome {
	int ret;                 /* of the step that stopped the flow, or 0 */
	size_t stopped;          /* index of that step; N_STEPS when none did */
	cs_error err;
	char garbage[256];
};

static void run_flow(const char *url, const char *file, struct outcome *o)
{
	struct flow f = { .url = url, .file = file };

	memset(o, 0, sizeof *o);
	for (o->stopped = 0; o->stopped < N_STEPS; o->stopped++) {
		cs_error_clear(&o->err);
		o->ret = steps[o->stopped].run(&f, &o->err);
		if (o->ret || f.garbage[0])
			break;
	}
	snprintf(o->garbage, sizeof o->garbage, "%s", f.garbage);
	specify_session_free(f.s);
}

/* --- mutations ------------------------------------------------------------ */

static uint64_t rng_state;

/* splitmix64: small, seedable, the same everywhere. */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

/* Values that replace a JSON node; "" removes it.  Built once: some are
 * long. */
static char *hostile_values[40];
static size_t n_hostile;
static const char *long_location;    /* 10 KB, among them */

static void add_value(const char *v)
{
	if (!(hostile_values[n_hostile++] = strdup(v)))
		abort();
}

/* n times open, then n times close: nested deeper than parsers allow
 * when n > 1000 (cJSON's limit), or just deep. */
static void add_nested(size_t n, char open, char close)
{
	char *v = malloc(2 * n + 1);

	if (!v)
		abort();
	memset(v, open, n);
	memset(v + n, close, n);
	v[2 * n] = '\0';
	hostile_values[n_hostile++] = v;
}

static const char *add_long_string(size_t n, const char *tail)
{
	char *v = NULL;

	if (asprintf(&v, "\"%*s%s\"", (int)n, "", tail) < 0)
		abort();
	for (size_t i = 1; i <= n; i++)
		v[i] = 'a';
	return hostile_values[n_hostile++] = v;
}

static void make_hostile_values(void)
{
	static const char *const fixed[] = {
		"", "null", "true", "\"x\"", "\"\"", "0", "-1", "1.5", "1e308", "-1e308",
		"1e999", "9223372036854775807", "-9223372036854775808",
		"9007199254740993", "2147483647", "4294967296", "[]", "{}", "[1, 2, 3]",
		"{\"id\": 1}", "\"1\"", "\"../../etc/passwd\"", "\"/etc/passwd\"",
		"\"a\\u0000/../b\"", "\"\\u0001\\u001b[2J\\u007f\"", "\"\\ud800\"",
		"\"\xff\xfe\xc3\x28 \xed\xa0\x80\"", "\"line\\r\\nX-Injected: 1\"",
		"\"http://127.0.0.1:1/closed\"",
	};

	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		add_value(fixed[i]);
	add_nested(900, '[', ']');
	add_nested(3000, '[', ']');
	add_long_string(10240, "");
	long_location = add_long_string(10240, ".jpg");
}

struct mutation {
	enum route route;
	char what[96];           /* for the TAP line */
	struct reply reply;
};

static void describe(struct mutation *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Printable, short: values may hold anything. */
static void describe(struct mutation *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m->what, sizeof m->what, fmt, ap);
	va_end(ap);
	for (char *p = m->what; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

static void count_nodes(const cJSON *j, size_t *n)
{
	for (const cJSON *c = j->child; c; c = c->next) {
		(*n)++;
		count_nodes(c, n);
	}
}

/* The n-th node below j in pre-order, and its parent. */
static cJSON *nth_node(cJSON *j, size_t *n, cJSON **parent)
{
	for (cJSON *c = j->child; c; c = c->next) {
		cJSON *hit;
		if ((*n)-- == 0) {
			*parent = j;
			return c;
		}
		if ((hit = nth_node(c, n, parent)))
			return hit;
	}
	return NULL;
}

/* The node at "key/0/key" below root, and its parent. */
static cJSON *path_node(cJSON *root, const char *path, cJSON **parent)
{
	char buf[128], *save = NULL;
	cJSON *cur = root;

	snprintf(buf, sizeof buf, "%s", path);
	for (char *t = strtok_r(buf, "/", &save); t && cur; t = strtok_r(NULL, "/", &save)) {
		*parent = cur;
		cur = cJSON_IsArray(cur) ? cJSON_GetArrayItem(cur, atoi(t))
					 : cJSON_GetObjectItemCaseSensitive(cur, t);
	}
	return cur;
}

/* Replaces node by raw JSON text, or removes it ("" ). */
static void set_node(cJSON *parent, cJSON *node, const char *raw)
{
	if (!*raw) {
		cJSON_Delete(cJSON_DetachItemViaPointer(parent, node));
		return;
	}
	cJSON *with = cJSON_CreateRaw(raw);
	if (!with)
		abort();
	if (cJSON_IsObject(parent))
		cJSON_ReplaceItemInObjectCaseSensitive(parent, node->string, with);
	else
		cJSON_ReplaceItemViaPointer(parent, node, with);
}

/* A copy of the route's reply with one JSON node replaced or removed:
 * at path, or (path NULL) a node the PRNG picks. */
static bool mutate_json(struct mutation *m, const struct reply *base,
			const char *path, const char *raw)
{
	cJSON *root = cJSON_ParseWithLength(base->body, base->body_len), *node, *parent = NULL;
	char *text;

	if (!root)
		abort();
	if (path) {
		node = path_node(root, path, &parent);
	} else {
		size_t n = 0, pick;
		count_nodes(root, &n);
		pick = rnd_below(n);
		node = nth_node(root, &pick, &parent);
	}
	if (!node) {
		cJSON_Delete(root);
		return false;
	}
	describe(m, "%s %s: %.50s", *raw ? "set" : "remove",
		 path ? path : node->string ? node->string : "[item]", raw);
	set_node(parent, node, raw);
	if (!(text = cJSON_PrintUnformatted(root)))
		abort();
	reply_copy(&m->reply, base);
	reply_set_body(&m->reply, text, strlen(text));
	cJSON_free(text);
	cJSON_Delete(root);
	return true;
}

/* Byte-level damage: flip, insert, cut or repeat. */
static void mutate_bytes(struct mutation *m, const struct reply *base)
{
	size_t len = base->body_len, at = rnd_below(len + 1), n = 1 + rnd_below(16);
	char *b = malloc(2 * len + 32), *p;
	size_t out = 0;

	if (!b)
		abort();
	memcpy(b, base->body, len);
	out = len;
	switch (rnd_below(4)) {
	case 0:
		for (size_t i = 0; i < n && len; i++)
			b[rnd_below(len)] = (char)rnd();
		describe(m, "%zu random bytes", n);
		break;
	case 1:
		memmove(b + at + n, b + at, len - at);
		for (size_t i = 0; i < n; i++)
			b[at + i] = (char)rnd();
		out = len + n;
		describe(m, "%zu bytes inserted at %zu", n, at);
		break;
	case 2:
		n = at + n > len ? len - at : n;
		memmove(b + at, b + at + n, len - at - n);
		out = len - n;
		describe(m, "%zu bytes cut at %zu", n, at);
		break;
	default:
		n = at + n > len ? len - at : n;
		p = b + at;
		memmove(p + n, p, len - at);
		out = len + n;
		describe(m, "%zu bytes repeated at %zu", n, at);
	}
	reply_copy(&m->reply, base);
	reply_set_body(&m->reply, b, out);
	free(b);
}

/* The mutation list grows as it is made. */
struct mutations {
	struct mutation *v;
	size_t n, cap;
};

static struct mutation *add(struct mutations *ms, enum route route)
{
	if (ms->n == ms->cap) {
		ms->cap = ms->cap ? 2 * ms->cap : 256;
		if (!(ms->v = realloc(ms->v, ms->cap * sizeof *ms->v)))
			abort();
	}
	memset(&ms->v[ms->n], 0, sizeof ms->v[0]);
	ms->v[ms->n].route = route;
	return &ms->v[ms->n++];
}

static void add_status(struct mutations *ms, const struct reply *base, enum route r,
		       int status, const char *type, const char *body, const char *headers)
{
	struct mutation *m = add(ms, r);

	reply_copy(&m->reply, base);
	m->reply.status = status;
	m->reply.type = type;
	m->reply.length = -1;
	if (body)
		reply_set_body(&m->reply, body, strlen(body));
	if (headers)
		reply_set_headers(&m->reply, headers);
	describe(m, "HTTP %d %s%s", status, type ? type : "(no type)",
		 body ? (*body ? " with a body" : " empty") : "");
}

static const char nginx_502[] =
	"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
	"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
	"</body>\r\n</html>\r\n";

/* Statuses and content types that a confused server or proxy gives. */
static void add_statuses(struct mutations *ms, const struct reply *b, enum route r)
{
	add_status(ms, b, r, 200, b->type, NULL, NULL);
	add_status(ms, b, r, 201, "application/json", "", NULL);
	add_status(ms, b, r, 204, "text/html; charset=utf-8", "", NULL);
	add_status(ms, b, r, 302, "text/html; charset=utf-8", "",
		   "Location: http://elsewhere.example/accounts/login/\r\n");
	add_status(ms, b, r, 400, "text/plain", "bad request", NULL);
	add_status(ms, b, r, 403, "application/json",
		   "{\"NoMatchingRuleException\": [{\"collectionid\": 1, \"userid\": 1, "
		   "\"resource\": \"/system/sp7/collection\", \"action\": \"access\"}]}", NULL);
	add_status(ms, b, r, 403, "text/html; charset=utf-8",
		   "<html><p>CSRF verification failed. Request aborted.</p></html>", NULL);
	add_status(ms, b, r, 403, "text/html; charset=utf-8", "", NULL);
	add_status(ms, b, r, 404, "text/html", "<h1>Not Found</h1>", NULL);
	add_status(ms, b, r, 409, "text/plain", "Stale object", NULL);
	add_status(ms, b, r, 413, "text/html", "<html>413</html>", NULL);
	add_status(ms, b, r, 500, "text/html; charset=utf-8",
		   "{\"exception\": \"KeyError\", \"message\": \"\\u001b[31mcollection\", "
		   "\"data\": \"None\", \"traceback\": \"...\"}", NULL);
	add_status(ms, b, r, 502, "text/html", nginx_502, NULL);
	add_status(ms, b, r, 999, b->type, NULL, NULL);
	for (size_t i = 0; i < 3; i++) {
		static const char *const types[] = {
			"text/html; charset=utf-8", NULL, "application/json; charset=utf-16",
		};
		add_status(ms, b, r, b->status, types[i], NULL, NULL);
	}
}

static void add_fault(struct mutations *ms, const struct reply *base, enum route r,
		      enum fault fault, int status, const char *raw, const char *what)
{
	struct mutation *m = add(ms, r);

	reply_copy(&m->reply, base);
	m->reply.fault = fault;
	if (status)
		m->reply.status = status;
	if (raw)
		reply_set_body(&m->reply, raw, strlen(raw));
	describe(m, "%s", what);
}

/* What the wire can do wrong. */
static void add_faults(struct mutations *ms, const struct reply *b, enum route r)
{
	add_fault(ms, b, r, F_SHORT, 0, NULL, "Content-Length past the end, then close");
	add_fault(ms, b, r, F_HUGE, 0, NULL, "16 MiB more than the body");
	add_fault(ms, b, r, F_ENDLESS, 500, NULL, "an endless error page");
	add_fault(ms, b, r, F_DRIP, 0, NULL, "dripped a byte at a time");
	add_fault(ms, b, r, F_SILENT, 0, NULL, "no answer");
	add_fault(ms, b, r, F_RESET, 0, NULL, "reset");
	add_fault(ms, b, r, F_RAW, 0, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "not HTTP");
	add_fault(ms, b, r, F_RAW, 0, "HTTP/1.1 100 Continue\r\n\r\n", "100 Continue, then nothing");
	add_fault(ms, b, r, F_RAW, 0, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
		  "headers cut short");
	add_fault(ms, b, r, F_RAW, 0, "HTTP/1.1 2000000000000 OK\r\nContent-Length: 0\r\n\r\n",
		  "a status out of range");
	add_fault(ms, b, r, F_RAW, 0, "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nOk.",
		  "a negative Content-Length");
	add_fault(ms, b, r, F_RAW, 0, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
		  "Content-Length: 9\r\n\r\nOk.", "two Content-Lengths");
	add_fault(ms, b, r, F_CHUNKED, 0, "zz\r\nOk.\r\n0\r\n\r\n", "a bad chunk size");
	add_fault(ms, b, r, F_CHUNKED, 0, "fffffffffffffffff\r\nOk.", "an enormous chunk");

	struct mutation *m = add(ms, r);
	reply_copy(&m->reply, b);
	char *big = malloc(200000);
	if (!big)
		abort();
	memset(big, 'h', 200000 - 3);
	memcpy(big, "X-Big: ", 7);
	memcpy(big + 200000 - 3, "\r\n", 3);
	reply_set_headers(&m->reply, big);
	free(big);
	describe(m, "a 200 KB header line");
}

/* The cases the brief names, where a PRNG might not go. */
static const struct {
	enum route route;
	const char *path;
	const char *raw;         /* "" removes */
} targeted[] = {
	{ R_LOGIN_GET, "collections", "[]" },
	{ R_LOGIN_GET, "collections", "{}" },
	{ R_LOGIN_GET, "collections/Fish Test", "\"x\"" },
	{ R_LOGIN_GET, "collections/Fish Test", "0" },
	{ R_LOGIN_GET, "collections/Fish Test", "-1" },
	{ R_LOGIN_GET, "collections/Fish Test", "1.5" },
	{ R_LOGIN_GET, "collections/Fish Test", "1e308" },
	{ R_LOGIN_GET, "collections/Fish Test", "1e999" },
	{ R_USER, "id", "\"x\"" },
	{ R_USER, "id", "" },
	{ R_USER, "id", "-7" },
	{ R_USER, "id", "1e308" },
	{ R_USER, "agent", "null" },
	{ R_USER, "agent", "[]" },
	{ R_USER, "agent/id", "\"1\"" },
	{ R_USER, "agent/id", "" },
	{ R_USER, "agent/id", "1e999" },
	{ R_USER, "available_collections", "{}" },
	{ R_USER, "available_collections/0/id", "\"1\"" },
	{ R_USER, "available_collections/0/id", "1.0000000001" },
	{ R_DOMAIN, "catalogNumFormatName", "123" },
	{ R_DOMAIN, "collectionObjectTypeCatalogNumberFormats", "[]" },
	{ R_DOMAIN, "defaultCollectionObjectType", "{}" },
	{ R_LOOKUP, "objects", "{}" },
	{ R_LOOKUP, "objects", "null" },
	{ R_LOOKUP, "meta/total_count", "1e308" },
	{ R_LOOKUP, "meta/total_count", "-1" },
	{ R_LOOKUP, "meta/total_count", "\"2\"" },
	{ R_LOOKUP, "objects/0/catalognumber", "{}" },
	{ R_SETTINGS, "write", "null" },
	{ R_SETTINGS, "read", "\"ftp://127.0.0.1/\"" },
	{ R_SETTINGS, "testkey", "\"http://127.0.0.1:1/testkey\"" },
	{ R_SETTINGS, "collection", "7" },
	{ R_SETTINGS, "token_required_for_get", "true" },
	{ R_RESERVE, "0/attachmentLocation", "\"../x.jpg\"" },
	{ R_RESERVE, "0/attachmentLocation", "\"/etc/passwd\"" },
	{ R_RESERVE, "0/attachmentLocation", "\"a/b.jpg\"" },
	{ R_RESERVE, "0/attachmentLocation", "\"a\\\\b.jpg\"" },
	{ R_RESERVE, "0/attachmentLocation", "\".hidden.jpg\"" },
	{ R_RESERVE, "0/attachmentLocation", "\"\"" },
	{ R_RESERVE, "0/attachmentLocation", "\"a\\u0000/../b.jpg\"" },
	{ R_RESERVE, "0/attachmentLocation", "\"a\\u001b[2J.jpg\"" },
	{ R_RESERVE, "0/attachmentLocation", "7" },
	{ R_RESERVE, "0/attachmentLocation", "" },
	{ R_RESERVE, "0/token", "\"0f93fbf5d9b8b7d0:1\\nX-Injected: 1\"" },
	{ R_RESERVE, "0/token", "\"\"" },
	{ R_RESERVE, "0/token", "\"not a token\"" },
	{ R_RESERVE, "0/token", "null" },
	{ R_RESERVE, "0", "{}" },
	{ R_ATTACH, "id", "\"534\"" },
	{ R_ATTACH, "id", "-1" },
	{ R_ATTACH, "id", "0" },
	{ R_ATTACH, "id", "1e300" },
	{ R_ATTACH, "id", "1.5" },
	{ R_ATTACH, "attachment", "" },
	{ R_ATTACH, "attachment/id", "null" },
	{ R_ATTACH, "attachment", "[]" },
	{ R_ORDINAL, "objects/0/ordinal", "2147483647" },
	{ R_ORDINAL, "objects/0/ordinal", "4294967296" },
	{ R_ORDINAL, "objects/0/ordinal", "1e300" },
	{ R_ORDINAL, "objects/0/ordinal", "-5" },
	{ R_ORDINAL, "objects/0/ordinal", "\"3\"" },
	{ R_ORDINAL, "objects", "{}" },
	{ R_FIND_ATT, "objects", "[]" },
	{ R_FIND_ATT, "objects", "{}" },
	{ R_FIND_ATT, "objects/0/id", "\"534\"" },
	{ R_FIND_ATT, "objects/0/id", "-534" },
	{ R_FIND_ATT, "objects/0/id", "9007199254740993" },
	{ R_FIND_JOIN, "objects/0/collectionobject", "\"/api/specify/collectionobject/x3/\"" },
	{ R_FIND_JOIN, "objects/0/collectionobject",
	  "\"/api/specify/collectionobject/99999999999999999999999/\"" },
	{ R_FIND_JOIN, "objects/0/collectionobject", "null" },
	{ R_FIND_JOIN, "objects/0/collectionobject", "7" },
	{ R_FIND_JOIN, "objects/0/id", "0" },
	{ R_FIND_JOIN, "objects", "{}" },
	{ R_QUERY, "results", "{}" },
	{ R_QUERY, "results/0", "[1]" },
	{ R_QUERY, "results/0", "[1, \"1\", null, null, 5]" },
	{ R_QUERY, "results/0/0", "1e308" },
	{ R_QUERY, "results/0/0", "\"1\"" },
	{ R_QUERY, "results/1/1", "\"000000004\"" },
	{ R_QUERY, "results/1/1", "\"03\"" },
	{ R_QUERY, "results/1/2", "\"x\"" },
	{ R_QUERY, "results/1/2", "-4" },
	{ R_QUERY, "results/1/2", "1e999" },
	{ R_QUERY, "results/1/3", "{}" },
};

/* Whole bodies for text answers (length given: some hold a NUL). */
static const struct {
	enum route route;
	const char *body;
	size_t len;
} texts[] = {
	{ R_TOKEN, TOKEN "\nX-Injected: 1", sizeof TOKEN "\nX-Injected: 1" - 1 },
	{ R_TOKEN, "", 0 },
	{ R_TOKEN, "\r\n", 2 },
	{ R_TOKEN, "not a token", 11 },
	{ R_TOKEN, "0f93:17\0" "95521346", 16 },
	{ R_TOKEN, "<html>Server Error</html>", 25 },
	{ R_TESTKEY, "Ok", 2 },
	{ R_TESTKEY, "Bad key.", 8 },
	{ R_UPLOAD, "ok.", 3 },
	{ R_UPLOAD, "\0Ok.", 4 },
	{ R_DOWNLOAD, "", 0 },
};

/* HEAD answers with lengths a client must not trust blindly. */
static const char *const size_headers[] = {
	"Content-Length: -5\r\n", "Content-Length: 99999999999999999999\r\n",
	"Content-Length: abc\r\n",
};

/* Whole-body replacements for JSON answers. */
static const char *const bodies[] = {
	"", "{}", "[]", "null", "0", "\"x\"", "{", "<html><body>Server Error</body></html>",
};

static void add_json(struct mutations *ms, const struct reply *b, enum route r)
{
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		struct mutation *m = add(ms, r);
		reply_copy(&m->reply, b);
		reply_set_body(&m->reply, bodies[i], strlen(bodies[i]));
		describe(m, "body %s", *bodies[i] ? bodies[i] : "empty");
	}
	for (size_t i = 0; i < 4; i++) {
		struct mutation *m = add(ms, r);
		size_t at = rnd_below(b->body_len);
		reply_copy(&m->reply, b);
		m->reply.body_len = at;
		describe(m, "JSON cut at %zu", at);
	}
	for (size_t i = 0; i < 14; i++) {
		struct mutation *m = add(ms, r);
		if (!mutate_json(m, b, NULL, hostile_values[rnd_below(n_hostile)]))
			abort();
	}
}

/* Random byte damage, except where the body announces URLs: damage there
 * could name a host off this machine. */
static void add_bytes(struct mutations *ms, const struct reply *b, enum route r, size_t n)
{
	if (r == R_SETTINGS || b->body_len == 0)
		return;
	for (size_t i = 0; i < n; i++)
		mutate_bytes(add(ms, r), b);
}

static void make_mutations(struct mutations *ms, const struct server *sv)
{
	for (int r = 0; r < R_COUNT; r++) {
		const struct reply *b = &sv->base[r];
		add_statuses(ms, b, (enum route)r);
		add_faults(ms, b, (enum route)r);
		if (b->json)
			add_json(ms, b, (enum route)r);
		add_bytes(ms, b, (enum route)r, b->json ? 6 : 3);
	}
	for (size_t i = 0; i < sizeof targeted / sizeof targeted[0]; i++) {
		struct mutation *m = add(ms, targeted[i].route);
		if (!mutate_json(m, &sv->base[targeted[i].route], targeted[i].path, targeted[i].raw))
			abort();
	}
	if (!mutate_json(add(ms, R_RESERVE), &sv->base[R_RESERVE], "0/attachmentLocation",
			 long_location))
		abort();
	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		struct mutation *m = add(ms, texts[i].route);
		reply_copy(&m->reply, &sv->base[texts[i].route]);
		reply_set_body(&m->reply, texts[i].body, texts[i].len);
		describe(m, "body '%.*s'", (int)texts[i].len, texts[i].body);
	}
	for (size_t i = 0; i < sizeof size_headers / sizeof size_headers[0]; i++) {
		struct mutation *m = add(ms, R_SIZE);
		reply_copy(&m->reply, &sv->base[R_SIZE]);
		m->reply.fault = F_RAW;
		char *raw = NULL;
		if (asprintf(&raw, "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n%s\r\n",
			     size_headers[i]) < 0)
			abort();
		reply_set_body(&m->reply, raw, strlen(raw));
		free(raw);
		describe(m, "HEAD with %.*s", (int)strlen(size_headers[i]) - 2, size_headers[i]);
	}
	struct mutation *m = add(ms, R_LOGIN_GET);
	reply_copy(&m->reply, &sv->base[R_LOGIN_GET]);
	reply_set_headers(&m->reply, "");
	describe(m, "no csrftoken cookie");
	m = add(ms, R_LOGIN_GET);
	reply_copy(&m->reply, &sv->base[R_LOGIN_GET]);
	reply_set_headers(&m->reply, "Set-Cookie: csrftoken=evil; Domain=elsewhere.example; Path=/\r\n");
	describe(m, "a csrftoken cookie for another site");
	m = add(ms, R_LOGIN_PUT);
	reply_copy(&m->reply, &sv->base[R_LOGIN_PUT]);
	reply_set_headers(&m->reply, "Set-Cookie: csrftoken=\x01\x1b[2J; Path=/\r\n");
	describe(m, "a csrftoken cookie with control bytes");
}

/* --- checks --------------------------------------------------------------- */

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A code the program can act on: 0 or one of the named CS_E_*. */
static bool code_ok(int ret)
{
	return ret == 0 || (ret < 0 && strcmp(cs_error_name(ret), "error") != 0);
}

/* How much of an over-cap or endless answer a client may take before it
 * hangs up: its cap plus what the kernel buffers on both sides. */
static bool hung_up_early(const struct mutation *m, size_t sent)
{
	if (m->reply.fault == F_ENDLESS)
		return sent < ENDLESS_MAX;
	if (m->reply.fault == F_HUGE && m->reply.status / 100 == 2 &&
	    (m->route == R_TOKEN || m->route == R_TESTKEY || m->route == R_UPLOAD ||
	     m->route == R_DOMAIN))
		return sent < HUGE_BYTES;
	return true;
}

static void test_baseline(struct server *sv, const char *url, const char *file)
{
	struct outcome o;

	server_arm(sv, R_COUNT, NULL);
	run_flow(url, file, &o);
	tap_ok(o.stopped == N_STEPS && !o.garbage[0], "the canned replies take the client "
	       "through the whole flow (stopped at %s: %s)",
	       o.stopped < N_STEPS ? steps[o.stopped].name : "none", o.err.msg);
	pthread_mutex_lock(&sv->lock);
	bool all = sv->hits[R_UNKNOWN] == 0;
	for (int r = 0; r < R_COUNT; r++)
		all = all && sv->hits[r] > 0;
	pthread_mutex_unlock(&sv->lock);
	tap_ok(all, "every route was asked, nothing else");
}

struct tally {
	size_t stopped[N_STEPS + 1];  /* flows by the step that stopped them */
	size_t unruly;                /* messages with the server's control bytes */
};

static void test_mutation(struct server *sv, const char *url, const char *file,
			  const struct mutation *m, struct tally *t)
{
	struct outcome o;
	unsigned asked;
	size_t sent;

	server_arm(sv, m->route, &m->reply);
	run_flow(url, file, &o);
	server_disarm(sv, &asked, &sent);
	bool ok = code_ok(o.ret) && (o.ret == 0 || (o.err.msg[0] && o.err.code == o.ret)) &&
		  !o.garbage[0] && asked && hung_up_early(m, sent);
	tap_ok(ok, "%s, %s: %s%s%s", route_names[m->route], m->what,
	       o.stopped < N_STEPS ? steps[o.stopped].name : "all steps passed",
	       o.ret ? " → " : "", o.ret ? cs_error_name(o.ret) : "");
	if (!ok)
		tap_diag("code %d (err.code %d), message '%s', garbage '%s', route asked %u "
			 "times, %zu bytes sent", o.ret, o.err.code, o.err.msg, o.garbage,
			 asked, sent);
	t->stopped[o.stopped]++;
	if (o.ret && has_control(o.err.msg)) {
		tap_diag("the message holds control bytes from the server");
		t->unruly++;
	}
}

int main(void)
{
	const char *seed = getenv("HOSTILE_SEED");
	struct mutations ms = { 0 };
	struct tally tally = { 0 };
	struct server sv;
	char url[64], *file;
	time_t start = time(NULL);

	harness_home();
	rng_state = seed ? strtoull(seed, NULL, 0) : 0x5eedc0de;
	tap_diag("seed %#llx", (unsigned long long)rng_state);
	if (!tap_ok(server_start(&sv) == 0, "start the hostile server")) {
		harness_cleanup();
		return tap_done();
	}
	snprintf(url, sizeof url, "http://127.0.0.1:%d", sv.port);
	file = harness_make_file("000000003.jpg", 2048, 3);
	make_hostile_values();
	make_mutations(&ms, &sv);
	tap_diag("%zu mutations", ms.n);
	test_baseline(&sv, url, file);
	for (size_t i = 0; i < ms.n; i++) {
		test_mutation(&sv, url, file, &ms.v[i], &tally);
		reply_free(&ms.v[i].reply);
	}
	for (size_t i = 0; i <= N_STEPS; i++)
		if (tally.stopped[i])
			tap_diag("stopped at %s: %zu", i < N_STEPS ? steps[i].name : "(none)",
				 tally.stopped[i]);
	tap_is_int((long long)tally.unruly, 0, "no message carries the server's control bytes");
	tap_diag("%ld s", (long)(time(NULL) - start));

	free(ms.v);
	for (size_t i = 0; i < n_hostile; i++)
		free(hostile_values[i]);
	free(file);
	server_stop(&sv);
	harness_cleanup();
	return tap_done();
}
