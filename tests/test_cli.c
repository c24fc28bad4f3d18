/* The copystand command as a technician runs it against a server:
 * `check` with settings from options, the environment or the config file
 * (the password never on the command line and never printed), and
 * `names` taking the collection's catalog number format from the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "tap.h"

static char *env_entry(const char *name, const char *value)
{
	char *e = NULL;
	if (asprintf(&e, "%s=%s", name, value) < 0)
		abort();
	return e;
}

static void write_config(const char *text, mode_t mode)
{
	char dir[512], path[600];
	FILE *f;

	snprintf(dir, sizeof dir, "%s/.config/copystand", harness_home());
	mkdir(dir, 0700);
	snprintf(path, sizeof path, "%s/config", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

int main(void)
{
	harness_server hs;
	char *out = NULL, *pw, *cfg = NULL;
	int rc;

	if (harness_server_start(&hs, NULL)) {
		tap_ok(0, "start the server");
		return tap_done();
	}
	pw = env_entry("COPYSTAND_PASSWORD", hs.password);

	const char *args[] = { "check", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, NULL };
	const char *env[] = { pw, NULL };
	rc = harness_run(args, env, &out);
	tap_is_int(rc, 0, "check with options and COPYSTAND_PASSWORD succeeds");
	tap_ok(out && strstr(out, "agent") && strstr(out, "catalog format") &&
	       strstr(out, "key and clock agree") && strstr(out, "logged out"),
	       "it reports agent, format, asset server and logout");
	tap_ok(out && !strstr(out, hs.password), "the password is not printed");
	if (rc)
		tap_diag("%s", out ? out : "");
	free(out);

	char *srv = env_entry("COPYSTAND_SERVER", hs.url), *usr = env_entry("COPYSTAND_USER", hs.user);
	char *col = env_entry("COPYSTAND_COLLECTION", hs.collection);
	const char *only_env[] = { pw, srv, usr, col, NULL };
	const char *bare[] = { "check", NULL };
	tap_is_int(harness_run(bare, only_env, &out), 0, "settings from the environment");
	free(out);

	char *badpw = env_entry("COPYSTAND_PASSWORD", "Sekr1t-wrong");
	const char *bad_env[] = { badpw, NULL };
	rc = harness_run(args, bad_env, &out);
	tap_is_int(rc, 1, "a wrong password fails with status 1");
	tap_ok(out && strstr(out, "refused user name"), "and says so");
	tap_ok(out && !strstr(out, "Sekr1t-wrong"), "without printing the password");
	free(out);

	const char *with_pw[] = { "check", "--password", "x", NULL };
	tap_is_int(harness_run(with_pw, env, &out), 2, "there is no --password option");
	free(out);

	tap_is_int(harness_run(args, NULL, &out), 1, "no password and no terminal fails");
	tap_ok(out && strstr(out, "COPYSTAND_PASSWORD"), "and says where a password may come from");
	free(out);

	if (asprintf(&cfg, "# test\nserver = %s\nuser = %s\ncollection = \"%s\"\npassword = %s\n",
		     hs.url, hs.user, hs.collection, hs.password) < 0)
		abort();
	write_config(cfg, 0644);
	rc = harness_run(bare, NULL, &out);
	tap_is_int(rc, 1, "a config file with a password readable by others is refused");
	tap_ok(out && strstr(out, "chmod 600"), "and the message says how to fix it");
	free(out);
	write_config(cfg, 0600);
	tap_is_int(harness_run(bare, NULL, &out), 0, "the same file with mode 0600 works");
	free(out);

	/* A bad value names the setting as the file spells it too. */
	char *bad = NULL;
	if (asprintf(&bad, "%sraw = sometimes\n", cfg) < 0)
		abort();
	write_config(bad, 0600);
	free(bad);
	const char *station_args[] = { "station", "--no-camera", NULL };
	rc = harness_run(station_args, NULL, &out);
	tap_ok(rc != 0 && out && strstr(out, "'raw =' in the config file") &&
	       strstr(out, "takes upload, local or later, not 'sometimes'"),
	       "a bad value in the config file: %s", out ? out : "");
	free(out);

	write_config("sever = typo\n", 0600);
	rc = harness_run(bare, NULL, &out);
	tap_ok(rc == 1 && out && strstr(out, "unknown setting 'sever'") && strstr(out, "line 1"),
	       "a typo in the config file is reported with its line");
	free(out);

	write_config("", 0600);
	const char *names[] = { "names", "--server", hs.url, "--user", hs.user,
				"--collection", "Fish", "000000123_2.jpg", "12.jpg", NULL };
	rc = harness_run(names, env, &out);
	tap_is_int(rc, 0, "names with the format from the server");
	tap_ok(out && strstr(out, "000000123_2.jpg\t000000123\n") &&
	       strstr(out, "12.jpg\t000000012\n"), "resolves with Fish's numeric format");
	free(out);
	if (hs.standin) {
		const char *year[] = { "names", "--server", hs.url, "--user", hs.user,
				       "--collection", "Insects", "2024-000123_2.jpg",
				       "2024-123.jpg", NULL };
		rc = harness_run(year, env, &out);
		tap_is_int(rc, 1, "a name that does not fit makes the status 1");
		tap_ok(out && strstr(out, "2024-000123_2.jpg\t2024-000123\n") &&
		       strstr(out, "2024-123.jpg\terror: ") && strstr(out, "2024-000123'?"),
		       "Insects' year-number format comes from the server's UIFormatters");
		free(out);
	}
	const char *offline[] = { "names", "--server", "http://127.0.0.1:9", "--user", "u",
				  "000000123_2.jpg", NULL };
	rc = harness_run(offline, env, &out);
	tap_is_int(rc, 2, "names without a reachable server is a set-up error");
	tap_ok(out && strstr(out, "--format"), "and suggests --format");
	free(out);

	const char *demo[] = { "demo", NULL };
	rc = harness_run(demo, NULL, &out);
	tap_is_int(rc, 0, "the demo (README's main job) runs");
	if (rc != 0)
		tap_diag("the demo said:\n%s", out ? out : "(nothing)");
	tap_ok(out && strstr(out, "station │ attached ✓ 000000001_2.jpg (2 images)") &&
	       strstr(out, "station │ taken back: 000000123.jpg") &&
	       strstr(out, "station │ NOT SHOOTING: 000099999"),
	       "the real station ran the technician's session");
	const char *held = out ? strstr(out, "HELD pending_") : NULL;
	tap_ok(held && strstr(held, "it is 000000002 or 000000123; say which") &&
	       strstr(held, "you     │ p\n") && strstr(held, "station │ captured 000000002_2.jpg"),
	       "a shot with the next label scanned right after it is held, then decided");
	tap_ok(out && strstr(out, "000000001    1       Esox lucius          000000001.jpg, 000000001_2.jpg\n") &&
	       strstr(out, "000000002    2       Perca fluviatilis    000000002.jpg, 000000002.cr2, "
		      "000000002_2.jpg\n") &&
	       strstr(out, "000000123    13      Esox lucius          000000123.jpg\n") &&
	       strstr(out, "000099999    -       -                    (no such record"),
	       "and the table shows what Specify holds for each record");
	free(out);

	const char *watch_demo[] = { "demo", "--watch", NULL };
	rc = harness_run(watch_demo, NULL, &out);
	tap_is_int(rc, 0, "demo --watch runs");
	tap_ok(out && strstr(out, "program │ (saved IMG_0001.JPG in the watched folder)") &&
	       strstr(out, "station │ watch: took IMG_0001.JPG as pending_") &&
	       strstr(out, "station │ taken back: 000000001_2.jpg") &&
	       strstr(out, "000000001    1       Esox lucius          000000001.jpg, "
		      "000000001_2.jpg\n"),
	       "the station took the capture program's files from the folder and attached them");
	free(out);

	free(cfg);
	free(pw);
	free(srv);
	free(usr);
	free(col);
	free(badpw);
	harness_server_stop(&hs);
	harness_cleanup();
	return tap_done();
}
