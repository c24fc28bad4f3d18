/* One test per failure a technician can meet, each asserting the code the
 * program acts on and that the message says what to do. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "harness.h"
#include "tap.h"

static int try_login(const harness_server *hs, const char *user, const char *password,
		     const char *collection, cs_error *err)
{
	specify_session *s = NULL;
	specify_login login = {
		.server = hs->url, .user = user, .password = password,
		.collection = collection,
	};
	int ret = specify_session_login(&login, &s, err);
	specify_session_free(s);
	return ret;
}

/* A login with the collection's id and name of an earlier run; *got (may
 * be NULL) the id it ends with. */
static int login_known(const harness_server *hs, const char *password, long long id,
		       const char *name, long long *got, cs_error *err)
{
	specify_session *s = NULL;
	specify_login login = {
		.server = hs->url, .user = hs->user, .password = password,
		.collection = hs->collection, .collection_id = id, .collection_name = name,
	};
	int ret = specify_session_login(&login, &s, err);

	if (got)
		*got = ret ? 0 : specify_session_info(s)->collection_id;
	specify_session_free(s);
	return ret;
}

static int requests_of(harness_server *hs, const char *key)
{
	cJSON *state = standin_state(hs->standin);
	int n = standin_requests(state, key);

	cJSON_Delete(state);
	return n;
}

static bool says(const cs_error *err, const char *what)
{
	return strstr(err->msg, what) != NULL;
}

static void test_wrong_password(harness_server *hs)
{
	cs_error err = { 0 };
	tap_is_int(try_login(hs, hs->user, "not-the-password", hs->collection, &err),
		   CS_E_AUTH, "wrong password is CS_E_AUTH");
	tap_ok(says(&err, "user name") && says(&err, hs->user), "message: %s", err.msg);
	tap_ok(!says(&err, "not-the-password"), "the password is not in the message");
}

static void test_unknown_collection(harness_server *hs)
{
	cs_error err = { 0 };
	tap_is_int(try_login(hs, hs->user, hs->password, "No Such Collection", &err),
		   CS_E_CONFIG, "unknown collection is a settings error");
	tap_ok(says(&err, "No Such Collection") && says(&err, "Fish"),
	       "message names the collections: %s", err.msg);
}

static void test_no_access(harness_server *hs)
{
	cs_error err = { 0 };
	tap_is_int(try_login(hs, "limited", "testpass", "Insects", &err), CS_E_ACCESS,
		   "no access to the collection is CS_E_ACCESS");
	tap_ok(says(&err, "Insects") && says(&err, "administrator"), "message: %s", err.msg);
	tap_is_int(try_login(hs, "limited", "testpass", "Fish", &err), 0,
		   "the same user may use Fish");
}

static void test_no_agent(harness_server *hs)
{
	cs_error err = { 0 };
	tap_is_int(try_login(hs, "noagent", "testpass", "Fish", &err), CS_E_NO_AGENT,
		   "a user without an Agent is CS_E_NO_AGENT, not a 500");
	tap_ok(says(&err, "Agent") && says(&err, "Security and Accounts"), "message: %s", err.msg);
}

static void test_unreachable(void)
{
	harness_server dead = { .user = "u", .password = "p" };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];
	cs_error err = { 0 };

	/* A port that was free a moment ago and has no listener. */
	bind(fd, (struct sockaddr *)&a, sizeof a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
	dead.url = url;
	tap_is_int(try_login(&dead, "u", "p", NULL, &err), CS_E_UNREACHABLE,
		   "nothing listening is CS_E_UNREACHABLE");
	tap_ok(says(&err, "cannot connect") && says(&err, url), "message: %s", err.msg);
}

static void test_not_specify(harness_server *hs)
{
	harness_server other = *hs;
	cs_error err = { 0 };

	other.url = standin_asset_url(hs->standin);
	tap_is_int(try_login(&other, hs->user, hs->password, NULL, &err), CS_E_PROTOCOL,
		   "a server that is not Specify is CS_E_PROTOCOL");
	tap_ok(says(&err, "does not answer like Specify"), "message: %s", err.msg);
}

static void test_no_asset_server(void)
{
	harness_server hs;
	const char *args[] = { "--no-asset-server", NULL };
	specify_session *s = NULL;
	const specify_assets *a;
	specify_reservation r;
	const char *name = "x.jpg";
	cs_error err = { 0 };

	if (harness_server_start(&hs, args) || harness_login(&hs, &s, &err)) {
		tap_ok(0, "start and log in: %s", err.msg);
		harness_server_stop(&hs);
		return;
	}
	tap_is_int(specify_assets_get(s, &a, &err), CS_E_NO_ASSETS,
		   "no asset server configured is CS_E_NO_ASSETS");
	tap_ok(says(&err, "no asset server configured"), "message: %s", err.msg);
	tap_is_int(specify_locations_reserve(s, &name, 1, &r, &err), CS_E_NO_ASSETS,
		   "reserving says so too, instead of Specify's 500");
	specify_session_free(s);
	harness_server_stop(&hs);
}

/* With the id an earlier run learned, the login is one request, with a
 * CSRF secret of copystand's own (Django keeps no copy); an id that went
 * stale is found out, never used for another collection. */
static void test_known_collection(harness_server *hs)
{
	specify_session *s = NULL;
	cs_error err = { 0 };
	long long id = 0, got = 0, other = 0;
	char *name = NULL;

	if (harness_login(hs, &s, &err) == 0) {
		id = specify_session_info(s)->collection_id;
		name = strdup(specify_session_info(s)->collection);
	}
	specify_session_free(s);
	if (!tap_ok(id > 0 && name, "an earlier run learned the collection's id: %s", err.msg))
		return;
	int asks = requests_of(hs, "GET /context/login/"), puts = requests_of(hs, "PUT /context/login/");
	tap_ok(login_known(hs, hs->password, id, name, &got, &err) == 0,
	       "a login with the id of an earlier run: %s", err.msg);
	tap_ok(got == id && requests_of(hs, "GET /context/login/") == asks &&
	       requests_of(hs, "PUT /context/login/") == puts + 1,
	       "is one PUT, nothing asked first (%d GET)", requests_of(hs, "GET /context/login/") - asks);
	tap_ok(login_known(hs, "not-the-password", id, name, NULL, &err) == CS_E_AUTH,
	       "a wrong password is still CS_E_AUTH: %s", err.msg);

	asks = requests_of(hs, "GET /context/login/");
	tap_ok(login_known(hs, hs->password, 999999, name, &got, &err) == 0,
	       "an id that is no collection now: %s", err.msg);
	tap_ok(got == id && requests_of(hs, "GET /context/login/") == asks + 1,
	       "the login asks Specify for the id and logs in to %s (%lld)", name, got);

	specify_login plants = { .server = hs->url, .user = hs->user, .password = hs->password,
				 .collection = "Plants" };
	if (specify_session_login(&plants, &s, &err) == 0)
		other = specify_session_info(s)->collection_id;
	specify_session_free(s);
	tap_ok(other > 0 && other != id &&
	       login_known(hs, hs->password, other, name, NULL, &err) == CS_E_CONFIG,
	       "the id of another collection (%lld) under this name is refused", other);
	tap_ok(says(&err, "is not") && says(&err, name) && says(&err, "run the command again"),
	       "message: %s", err.msg);

	standin_faults(hs->standin, "{\"csrf_issued_only\": true}", &err);
	asks = requests_of(hs, "GET /context/login/");
	tap_ok(login_known(hs, hs->password, id, name, &got, &err) == 0,
	       "a server that takes only CSRF secrets it issued: %s", err.msg);
	tap_ok(got == id && requests_of(hs, "GET /context/login/") == asks + 1,
	       "is asked for one, and the login goes on");
	standin_faults(hs->standin, "{\"csrf_issued_only\": false}", &err);

	/* CSRF_COOKIE_DOMAIN: the rotated cookie is the domain's, and ours
	 * (this host's) must not stay beside it, or Django may read ours. */
	char url[128];
	const char *port = strrchr(hs->url, ':');
	snprintf(url, sizeof url, "http://localhost%s", port ? port : "");
	standin_faults(hs->standin, "{\"csrf_cookie_domain\": \"localhost\"}", &err);
	specify_login l = { .server = url, .user = hs->user, .password = hs->password,
			    .collection = hs->collection, .collection_id = id,
			    .collection_name = name };
	const char *file = "domain.jpg";
	specify_reservation res;
	int ret = specify_session_login(&l, &s, &err);
	tap_ok(ret == 0 && specify_locations_reserve(s, &file, 1, &res, &err) == 0,
	       "with a CSRF cookie of the domain, the session's POSTs pass: %s", err.msg);
	specify_session_free(s);
	standin_faults(hs->standin, "{\"csrf_cookie_domain\": null}", &err);
	free(name);
}

/* Session expiry mid-work: renewed once, transparently. */
static void test_session_expiry(harness_server *hs, specify_session *s)
{
	cs_error err = { 0 };
	cJSON *rec = NULL;
	cJSON *state = standin_state(hs->standin);
	int logins = standin_requests(state, "PUT /context/login/");
	int asks = standin_requests(state, "GET /context/login/");
	cJSON_Delete(state);

	tap_ok(standin_faults(hs->standin, "{\"expire_sessions\": true}", &err) == 0,
	       "expire sessions: %s", err.msg);
	tap_ok(specify_record_get(s, "collectionobject", 1, &rec, &err) == 0,
	       "a request after expiry succeeds: %s", err.msg);
	cJSON_Delete(rec);
	state = standin_state(hs->standin);
	tap_is_int(standin_requests(state, "PUT /context/login/"), logins + 1,
		   "by logging in once more");
	tap_is_int(standin_requests(state, "GET /context/login/"), asks,
		   "at once: the collection's id is known, the CSRF secret its own");
	cJSON_Delete(state);
	/* Unsafe requests need the CSRF token of the new session. */
	const char *name = "after-renewal.jpg";
	specify_reservation r;
	tap_ok(specify_locations_reserve(s, &name, 1, &r, &err) == 0,
	       "a POST after renewal carries the new CSRF token: %s", err.msg);
}

static void test_server_errors(harness_server *hs, specify_session *s)
{
	cs_error err = { 0 };
	cJSON *rec = NULL;
	int ret;

	standin_faults(hs->standin, "{\"error_rate\": 1.0, \"error_status\": 503}", &err);
	ret = specify_record_get(s, "collectionobject", 1, &rec, &err);
	tap_is_int(ret, CS_E_SERVER, "503 is CS_E_SERVER");
	tap_ok(cs_error_is_transient(ret), "and transient: %s", err.msg);
	/* At login too: Specify behind its proxy is down, not "not Specify". */
	ret = try_login(hs, hs->user, hs->password, NULL, &err);
	tap_is_int(ret, CS_E_SERVER, "a login answered 503 is CS_E_SERVER");
	tap_ok(says(&err, "unavailable"), "message: %s", err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);
	cJSON_Delete(rec);
}

static void test_asset_failures(harness_server *hs, specify_session *s)
{
	cs_error err = { 0 };
	specify_reservation r;
	const char *name = "big.jpg";
	char *file = harness_make_file("big.jpg", 200000, 3);
	int ret;

	tap_ok(specify_locations_reserve(s, &name, 1, &r, &err) == 0, "reserve: %s", err.msg);

	standin_faults(hs->standin, "{\"max_upload_bytes\": 100000}", &err);
	ret = specify_asset_upload(s, file, name, "image/jpeg", r.location, NULL, &err);
	tap_is_int(ret, CS_E_TOO_LARGE, "413 is CS_E_TOO_LARGE");
	tap_ok(!cs_error_is_transient(ret) && says(&err, "client_max_body_size"),
	       "permanent, and says what to raise: %s", err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);

	standin_faults(hs->standin, "{\"asset_clock_skew_s\": 400}", &err);
	ret = specify_asset_upload(s, file, name, "image/jpeg", r.location, NULL, &err);
	tap_is_int(ret, CS_E_TOKEN, "a refused token is CS_E_TOKEN");
	tap_ok(cs_error_is_transient(ret) && says(&err, "clock"), "transient, mentions the clock: %s", err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);

	standin_faults(hs->standin, "{\"asset_down\": true}", &err);
	ret = specify_asset_upload(s, file, name, "image/jpeg", r.location, NULL, &err);
	tap_ok(ret == CS_E_NETWORK || ret == CS_E_UNREACHABLE,
	       "asset server down is a network failure (%s)", cs_error_name(ret));
	tap_ok(cs_error_is_transient(ret) && says(&err, "fileupload"), "message: %s", err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);

	/* A proxy before the asset server that does not know its upload path. */
	standin_faults(hs->standin, "{\"error_rate\": 1.0, \"error_status\": 404, "
		       "\"error_paths\": [\"/fileupload\"]}", &err);
	ret = specify_asset_upload(s, file, name, "image/jpeg", r.location, NULL, &err);
	tap_is_int(ret, CS_E_CONFIG, "an upload answered 404 is a settings error");
	tap_ok(says(&err, "upload address") && !says(&err, "no such file"),
	       "about the address, not the file: %s", err.msg);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);

	tap_ok(specify_asset_upload(s, file, name, "image/jpeg", r.location, NULL, &err) == 0,
	       "with the faults gone the upload works: %s", err.msg);
	tap_ok(specify_asset_delete(s, r.location, &err) == 0, "orphan removed: %s", err.msg);
	tap_is_int(specify_asset_delete(s, r.location, &err), CS_E_NOT_FOUND,
		   "removing it again says not found");
	free(file);
}

struct slow_call {
	specify_session *s;
	int ret;
	cs_error err;
};

static void *slow_get(void *arg)
{
	struct slow_call *c = arg;
	cJSON *rec = NULL;

	c->ret = specify_record_get(c->s, "collectionobject", 1, &rec, &c->err);
	cJSON_Delete(rec);
	return NULL;
}

/* A stop does not wait for a slow server: requests under way end now. */
static void test_cancel(harness_server *hs, specify_session *s)
{
	struct slow_call c = { .s = s };
	struct timespec t0, t1;
	pthread_t th;
	cs_error err;

	standin_faults(hs->standin, "{\"latency_ms\": 4000}", &err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&th, NULL, slow_get, &c);
	usleep(200000);
	specify_session_cancel(s);
	pthread_join(th, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double took = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	tap_ok(c.ret == CS_E_NETWORK && strstr(c.err.msg, "stopped"),
	       "a cancelled request says it was stopped: %s", c.err.msg);
	tap_ok(took < 2.0, "after %.2f s, not the server's 4 s", took);
	cJSON *rec = NULL;
	tap_is_int(specify_record_get(s, "collectionobject", 1, &rec, &err), CS_E_NETWORK,
		   "and later requests of the session fail at once");
	cJSON_Delete(rec);
	standin_control(hs->standin, "POST", "faults/reset", "{}", NULL, NULL);
}

int main(void)
{
	harness_server hs;
	specify_session *s = NULL;
	cs_error err = { 0 };

	if (harness_server_start(&hs, NULL)) {
		tap_ok(0, "start the server");
		return tap_done();
	}
	test_wrong_password(&hs);
	test_unreachable();
	if (!hs.standin) {
		tap_diag("real server: skipping the cases that need the stand-in's fixture and faults");
		goto out;
	}
	test_unknown_collection(&hs);
	test_no_access(&hs);
	test_no_agent(&hs);
	test_not_specify(&hs);
	test_no_asset_server();
	test_known_collection(&hs);
	if (tap_ok(harness_login(&hs, &s, &err) == 0, "login: %s", err.msg)) {
		test_session_expiry(&hs, s);
		test_server_errors(&hs, s);
		test_asset_failures(&hs, s);
		test_cancel(&hs, s);
	}
	specify_session_free(s);
out:
	harness_server_stop(&hs);
	harness_cleanup();
	return tap_done();
}
