/* TLS as a technician meets it: a Specify behind a certificate from the
 * museum's own CA.  A throw-away CA and a certificate for 127.0.0.1 are
 * made with openssl(1), the stand-in speaks HTTPS with them, and the real
 * client must refuse the server until given --ca-file, then work over HTTPS
 * (login, CSRF-checked POST with its Referer, logout); --insecure works but
 * warns. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "tap.h"

extern char **environ;

/* Extensions of the CA and of the server certificate: what strict
 * verifiers want (CA flag, key usages, key identifiers, the IP in SAN). */
static const char openssl_cnf[] =
	"[req]\n"
	"distinguished_name = dn\n"
	"[dn]\n"
	"[ca]\n"
	"basicConstraints = critical, CA:TRUE\n"
	"keyUsage = critical, keyCertSign, cRLSign\n"
	"subjectKeyIdentifier = hash\n"
	"[server]\n"
	"basicConstraints = critical, CA:FALSE\n"
	"keyUsage = critical, digitalSignature\n"
	"extendedKeyUsage = serverAuth\n"
	"subjectAltName = IP:127.0.0.1\n"
	"subjectKeyIdentifier = hash\n"
	"authorityKeyIdentifier = keyid\n";

struct pki {
	char cnf[512], ca[512], ca_key[512], cert[512], key[512], csr[512], log[512];
};

/* Runs openssl with args, its chatter into p->log.  Returns its exit
 * status, or 127 when there is no openssl to run. */
static int openssl(const struct pki *p, const char *const *args)
{
	posix_spawn_file_actions_t fa;
	const char *argv[32] = { "openssl" };
	size_t n = 1;
	pid_t pid;
	int rc, status;

	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	rc = posix_spawnp(&pid, "openssl", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return rc == ENOENT ? 127 : -1;
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* CA, then a key and request for 127.0.0.1, then the CA signs it.
 * Returns openssl's first nonzero status (127: not installed). */
static int make_pki(struct pki *p)
{
	const char *home = harness_home();
	FILE *f;
	int rc;

	snprintf(p->cnf, sizeof p->cnf, "%s/openssl.cnf", home);
	snprintf(p->ca, sizeof p->ca, "%s/ca.pem", home);
	snprintf(p->ca_key, sizeof p->ca_key, "%s/ca.key", home);
	snprintf(p->cert, sizeof p->cert, "%s/server.pem", home);
	snprintf(p->key, sizeof p->key, "%s/server.key", home);
	snprintf(p->csr, sizeof p->csr, "%s/server.csr", home);
	snprintf(p->log, sizeof p->log, "%s/openssl.log", home);
	if (!(f = fopen(p->cnf, "w")))
		return -1;
	fputs(openssl_cnf, f);
	if (fclose(f))
		return -1;

#define NEW_KEY "req", "-config", p->cnf, "-newkey", "ec", "-pkeyopt", \
	"ec_paramgen_curve:prime256v1", "-nodes"
	const char *ca[] = { NEW_KEY, "-x509", "-extensions", "ca", "-days", "2",
		"-subj", "/CN=copystand test CA", "-keyout", p->ca_key, "-out", p->ca, NULL };
	const char *req[] = { NEW_KEY, "-new", "-subj", "/CN=127.0.0.1",
		"-keyout", p->key, "-out", p->csr, NULL };
#undef NEW_KEY
	const char *sign[] = { "x509", "-req", "-in", p->csr, "-CA", p->ca,
		"-CAkey", p->ca_key, "-set_serial", "2", "-days", "2",
		"-extfile", p->cnf, "-extensions", "server", "-out", p->cert, NULL };
	if ((rc = openssl(p, ca)) || (rc = openssl(p, req)) || (rc = openssl(p, sign)))
		return rc;
	return 0;
}

static bool says(const cs_error *err, const char *what)
{
	return strstr(err->msg, what) != NULL;
}

static int login(const char *url, const char *ca_file, bool insecure,
		 specify_session **s, cs_error *err)
{
	specify_login l = {
		.server = url, .user = "spadmin", .password = "testpass",
		.collection = "Fish", .ca_file = ca_file, .insecure = insecure,
	};
	return specify_session_login(&l, s, err);
}

/* Login, a POST that Django checks for CSRF and (on HTTPS) Referer, and
 * the logout PUT, all over HTTPS. */
static void test_works(const char *url, const char *ca_file, bool insecure,
		       const char *how)
{
	specify_session *s = NULL;
	specify_reservation r = { 0 };
	const char *name = "tls.jpg";
	cs_error err = { 0 };

	if (!tap_ok(login(url, ca_file, insecure, &s, &err) == 0,
		    "%s: login over HTTPS: %s", how, err.msg))
		return;
	tap_ok(specify_locations_reserve(s, &name, 1, &r, &err) == 0 && r.location[0],
	       "%s: a POST passes Django's CSRF and Referer checks: %s", how, err.msg);
	tap_ok(specify_session_logout(s, &err) == 0, "%s: logout: %s", how, err.msg);
	specify_session_free(s);
}

static void test_library(const char *url, const char *plain, const struct pki *p)
{
	specify_session *s = NULL;
	char missing[600];
	cs_error err = { 0 };

	tap_is_int(login(url, NULL, false, &s, &err), CS_E_TLS,
		   "a certificate from an unknown CA is CS_E_TLS");
	tap_ok(says(&err, "--ca-file") && says(&err, url), "message: %s", err.msg);
	tap_ok(s == NULL, "and no session");

	test_works(url, p->ca, false, "with --ca-file");
	test_works(url, NULL, true, "with --insecure");

	tap_is_int(login(plain, p->ca, false, &s, &err), CS_E_TLS,
		   "https:// for a port that speaks plain HTTP is CS_E_TLS");
	tap_ok(says(&err, "speaks HTTPS on that port") && !says(&err, "--ca-file"),
	       "message: %s", err.msg);

	snprintf(missing, sizeof missing, "%s/no-such-ca.pem", harness_home());
	tap_is_int(login(url, missing, false, &s, &err), CS_E_CONFIG,
		   "a CA file that does not exist is a settings error");
	tap_ok(says(&err, missing) && says(&err, "--ca-file"), "message: %s", err.msg);

	tap_is_int(login(url, p->cnf, false, &s, &err), CS_E_CONFIG,
		   "a CA file that holds no certificate is a settings error too");
	tap_ok(says(&err, "--ca-file must hold PEM"), "message: %s", err.msg);
}

static void test_binary(const char *url, const struct pki *p)
{
	char *out = NULL;
	const char *env[] = { "COPYSTAND_PASSWORD=testpass", NULL };
	const char *with_ca[] = { "check", "--server", url, "--user", "spadmin",
		"--collection", "Fish", "--ca-file", p->ca, NULL };
	const char *insecure[] = { "check", "--server", url, "--user", "spadmin",
		"--collection", "Fish", "--insecure", NULL };
	const char *plain[] = { "check", "--server", url, "--user", "spadmin",
		"--collection", "Fish", NULL };
	int rc;

	rc = harness_run(with_ca, env, &out);
	tap_is_int(rc, 0, "copystand check --ca-file: all is well");
	tap_ok(out && strstr(out, "key and clock agree") && !strstr(out, "warning"),
	       "it reaches the asset server, without warnings");
	if (rc)
		tap_diag("%s", out ? out : "");
	free(out);

	rc = harness_run(insecure, env, &out);
	tap_is_int(rc, 0, "copystand check --insecure works");
	tap_ok(out && strstr(out, "warning: --insecure: TLS certificates are not checked"),
	       "and warns that certificates are not checked");
	free(out);

	rc = harness_run(plain, env, &out);
	tap_is_int(rc, 1, "copystand check without the CA fails");
	tap_ok(out && strstr(out, "TLS failure") && strstr(out, "--ca-file"),
	       "and tells the technician about --ca-file");
	free(out);
}

int main(void)
{
	const char *args[] = { "--tls-cert", NULL, "--tls-key", NULL, NULL };
	harness_server hs;
	struct pki p;
	char url[80], plain[80];
	int rc;

	if (getenv("COPYSTAND_TEST_SERVER"))
		return tap_skip_all("needs the stand-in's HTTPS mode");
	rc = make_pki(&p);
	if (rc == 127) {
		harness_cleanup();
		return tap_skip_all("no openssl program to make certificates");
	}
	if (!tap_ok(rc == 0, "openssl made a CA and a server certificate (see %s)", p.log))
		goto out;
	args[1] = p.cert;
	args[3] = p.key;
	if (!tap_ok(harness_server_start(&hs, args) == 0, "start the stand-in with TLS"))
		goto out;
	/* The stand-in's Specify port now speaks only HTTPS. */
	snprintf(url, sizeof url, "https://%s", standin_url(hs.standin) + strlen("http://"));
	/* The asset server's port speaks plain HTTP. */
	snprintf(plain, sizeof plain, "https://%s", standin_asset_url(hs.standin) + strlen("http://"));
	test_library(url, plain, &p);
	test_binary(url, &p);
	harness_server_stop(&hs);
out:
	harness_cleanup();
	return tap_done();
}
