#include "standin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http.h"

#ifndef COPYSTAND_STANDIN_SCRIPT
#error "COPYSTAND_STANDIN_SCRIPT must name tests/standin/standin.py"
#endif

struct standin {
	pid_t pid;
	int keepalive;      /* write end of the child's stdin */
	char url[64];
	char asset_url[64];
	http_client *http;
};

static const char *script_path(void)
{
	const char *env = getenv("COPYSTAND_STANDIN");
	return env && *env ? env : COPYSTAND_STANDIN_SCRIPT;
}

/* Reads the "READY <specify-port> <asset-port>" line, with a deadline. */
static int read_ready(int fd, int *sport, int *aport, cs_error *err)
{
	char buf[128];
	size_t len = 0;

	while (len + 1 < sizeof buf) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, 30000);
		ssize_t n;
		if (r <= 0)
			return cs_error_set(err, CS_E_TIMEOUT, "the stand-in server "
					    "did not start within 30 s");
		n = read(fd, buf + len, sizeof buf - 1 - len);
		if (n <= 0)
			return cs_error_set(err, CS_E_IO, "the stand-in server exited "
					    "before it was ready (see its stderr)");
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '\n'))
			break;
	}
	if (sscanf(buf, "READY %d %d", sport, aport) != 2)
		return cs_error_set(err, CS_E_PROTOCOL, "the stand-in server said "
				    "'%.60s' instead of READY", buf);
	return 0;
}

int standin_start(const char *const *args, standin **out, cs_error *err)
{
	int in[2], outp[2], sport, aport, ret;
	const char *argv[32];
	size_t argc = 0;
	standin *st;

	*out = NULL;
	argv[argc++] = "python3";
	argv[argc++] = script_path();
	for (; args && *args && argc < 31; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;
	if (pipe2(in, O_CLOEXEC) || pipe2(outp, O_CLOEXEC))
		return cs_error_set(err, CS_E_IO, "pipe: %s", strerror(errno));
	if (!(st = calloc(1, sizeof *st)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	st->pid = fork();
	if (st->pid == 0) {
		dup2(in[0], 0);
		dup2(outp[1], 1);
		execvp("python3", (char **)argv);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	st->keepalive = in[1];
	if (st->pid < 0) {
		close(outp[0]);
		standin_stop(st);
		return cs_error_set(err, CS_E_IO, "fork: %s", strerror(errno));
	}
	ret = read_ready(outp[0], &sport, &aport, err);
	close(outp[0]);
	if (ret == 0 && !(st->http = http_client_new(NULL, err)))
		ret = err ? err->code : CS_E_NOMEM;
	if (ret) {
		standin_stop(st);
		return ret;
	}
	snprintf(st->url, sizeof st->url, "http://127.0.0.1:%d", sport);
	snprintf(st->asset_url, sizeof st->asset_url, "http://127.0.0.1:%d", aport);
	*out = st;
	return 0;
}

void standin_stop(standin *st)
{
	if (!st)
		return;
	if (st->keepalive >= 0)
		close(st->keepalive);
	if (st->pid > 0) {
		int status;
		kill(st->pid, SIGTERM);
		waitpid(st->pid, &status, 0);
	}
	http_client_free(st->http);
	free(st);
}

const char *standin_url(const standin *st)
{
	return st->url;
}

const char *standin_asset_url(const standin *st)
{
	return st->asset_url;
}

int standin_control(standin *st, const char *method, const char *path,
		    const char *json, cJSON **reply, cs_error *err)
{
	char url[256];
	http_response r;
	int ret;

	snprintf(url, sizeof url, "%s/__standin__/%s", st->url, path);
	http_request req = {
		.method = method, .url = url, .body = json,
		.body_len = json ? strlen(json) : 0,
		.content_type = json ? "application/json" : NULL,
	};
	if (reply)
		*reply = NULL;
	if ((ret = http_client_perform(st->http, &req, &r, err)) == 0) {
		if (r.status / 100 != 2)
			ret = cs_error_set(err, CS_E_PROTOCOL, "stand-in %s %s: HTTP %ld %s",
					   method, path, r.status, r.body ? r.body : "");
		else if (reply && r.body)
			*reply = cJSON_Parse(r.body);
	}
	http_response_clear(&r);
	return ret;
}

int standin_faults(standin *st, const char *json, cs_error *err)
{
	return standin_control(st, "POST", "faults", json, NULL, err);
}

cJSON *standin_state(standin *st)
{
	cJSON *state = NULL;
	standin_control(st, "GET", "state", NULL, &state, NULL);
	return state;
}

int standin_requests(const cJSON *state, const char *key)
{
	const cJSON *n = cJSON_GetObjectItem(cJSON_GetObjectItem(state, "requests"), key);

	/* A request never made has no key. */
	return cJSON_IsNumber(n) && n->valuedouble >= 0 && n->valuedouble < 1e9 ?
		(int)n->valuedouble : 0;
}
