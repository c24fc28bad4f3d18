/* The public API for capture hosts (copystand.h) against the stand-in: a
 * host's own station (numbers checked, files copied in, named, attached,
 * events), files without a number, and a one-file host handing its files
 * to the station that runs. */
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <copystand.h>

#include "harness.h"
#include "tap.h"

static harness_server hs;

/* Waits for an event of kind about file (NULL: any), up to timeout_s;
 * the others are skipped. */
static bool wait_event(copystand *c, enum copystand_event_kind kind, const char *file,
		       double timeout_s, copystand_event *out)
{
	double until = harness_now() + timeout_s;
	copystand_event ev;

	while (harness_now() < until) {
		struct pollfd p = { .fd = copystand_event_fd(c), .events = POLLIN };
		poll(&p, 1, 200);
		while (copystand_next_event(c, &ev) == 1)
			if (ev.kind == kind && (!file || !strcmp(ev.file, file))) {
				if (out)
					*out = ev;
				return true;
			}
	}
	return false;
}

static int attached_to(const char *name, long long record)
{
	int n = 0;

	cJSON_Delete(harness_attachment_of(&hs, name, record, &n));
	return n;
}

static bool exists(const char *dir, const char *name)
{
	char path[700];
	struct stat sb;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

int main(int argc, char **argv)
{
	char err[512] = "", dir[600], *name = NULL;
	copystand *c = NULL;
	copystand_event ev;

	if (argc < 2)
		return tap_skip_all("usage: test-api MKJPEG");
	const char *why = harness_standin_start(&hs);
	if (why)
		return tap_skip_all(why);
	snprintf(dir, sizeof dir, "%s/host-session", harness_home());
	tap_ok(strcmp(copystand_version(), "") != 0, "copystand_version: %s", copystand_version());

	copystand_options o = { .server = hs.url, .user = hs.user, .collection = hs.collection,
				.password = "wrong", .dir = dir };
	int rc = copystand_open(&o, &c, err, sizeof err);
	tap_ok(rc == COPYSTAND_E_AUTH && !c, "a wrong password is COPYSTAND_E_AUTH: %s", err);
	/* A journal of the host's choosing. */
	char own[700];
	snprintf(own, sizeof own, "%s/own-journal.sqlite", harness_home());
	o.password = hs.password;
	o.journal = own;
	rc = copystand_open(&o, &c, err, sizeof err);
	tap_ok(rc == 0 && c && exists(harness_home(), "own-journal.sqlite"),
	       "options.journal opens the station on that journal");
	copystand_close(c);
	c = NULL;
	o.journal = NULL;
	o.password = hs.password;
	err[0] = '\0';
	rc = copystand_open(&o, &c, err, sizeof err);
	if (!tap_ok(rc == 0 && c, "open%s%s", err[0] ? ": " : "", err))
		goto out;

	tap_is_int(copystand_set_catalog_number(c, "not a number!", err, sizeof err),
		   COPYSTAND_E_INVALID, "text that is no catalog number is refused");
	tap_ok(copystand_set_catalog_number(c, "5", err, sizeof err) == 0, "scan 5");
	tap_ok(wait_event(c, COPYSTAND_EVENT_CHECKED, NULL, 20, &ev) &&
	       !strcmp(ev.identifier, "000000005") && strstr(ev.message, "000000005"),
	       "CHECKED: %s", ev.message);

	/* A host's RAW+JPEG press: its files stay where they are. */
	char *jpeg = NULL, *raw = harness_make_file("IMG_0001.CR2", 40000, 1);
	char cmd[800];
	if (asprintf(&jpeg, "%s/IMG_0001.JPG", harness_home()) < 0)
		abort();
	snprintf(cmd, sizeof cmd, "%s 320 240 7 %s", argv[1], jpeg);
	tap_ok(system(cmd) == 0, "a real JPEG from mkjpeg");
	const char *press[] = { raw, jpeg };
	rc = copystand_submit_files(c, press, 2, &name, err, sizeof err);
	tap_ok(rc == 0 && name, "submit a RAW+JPEG press: %s", name ? name : err);
	tap_ok(name && !strcmp(name, "000000005.cr2"),
	       "named from the number (the first file's name comes back): %s",
	       name ? name : "");
	copystand_free(name);
	name = NULL;
	tap_ok(exists(harness_home(), "IMG_0001.JPG") && exists(harness_home(), "IMG_0001.CR2"),
	       "the host's own files are left where they were");
	tap_ok(wait_event(c, COPYSTAND_EVENT_ATTACHED, "000000005.jpg", 60, NULL),
	       "ATTACHED 000000005.jpg");
	tap_ok(wait_event(c, COPYSTAND_EVENT_ATTACHED, "000000005.cr2", 60, NULL),
	       "ATTACHED 000000005.cr2");
	tap_is_int(attached_to("000000005.jpg", 5) + attached_to("000000005.cr2", 5), 2,
		   "both on record 5 in Specify");
	tap_ok(exists(dir, "000000005.jpg") && exists(dir, "000000005.cr2") &&
	       exists(dir, "000000005.xmp"), "the session folder holds the pair and its sidecar");

	/* A one-file host (a gphoto2 hook) hands its file to the running
	 * station: this process's, published in the journal. */
	rc = copystand_submit_to_running(jpeg, &name, err, sizeof err);
	tap_ok(rc == 0 && name && !strcmp(name, "000000005_2.jpg"),
	       "submit_to_running names it %s", name ? name : err);
	copystand_free(name);
	name = NULL;
	tap_ok(wait_event(c, COPYSTAND_EVENT_ATTACHED, "000000005_2.jpg", 60, NULL),
	       "the running station attaches it");
	tap_ok(copystand_submit_to_running("/nonexistent/x.jpg", NULL, err, sizeof err) ==
	       COPYSTAND_E_IO && strstr(err, "/nonexistent/x.jpg"),
	       "a missing file is COPYSTAND_E_IO: %s", err);

	/* No valid number: kept unmatched, said so. */
	copystand_set_catalog_number(c, "!!", err, sizeof err);
	const char *lone[] = { jpeg };
	rc = copystand_submit_files(c, lone, 1, &name, err, sizeof err);
	tap_ok(rc == 0 && name && !strncmp(name, "unnamed_", 8), "without a number: %s",
	       name ? name : err);
	tap_ok(name && wait_event(c, COPYSTAND_EVENT_PROBLEM, name, 20, &ev),
	       "PROBLEM: %s", ev.message);
	copystand_free(name);
	name = NULL;

	/* A one-file host hands in a RAW, then its JPEG, in two calls; with
	 * raw = local the pair is finished as one capture: the JPEG sent, the
	 * RAW kept here. */
	copystand_close(c);
	c = NULL;
	char conf[700];
	snprintf(conf, sizeof conf, "%s/raw-local.conf", harness_home());
	FILE *f = fopen(conf, "w");
	if (f) {
		fputs("raw = local\n", f);
		fclose(f);
	}
	o.config = conf;
	rc = copystand_open(&o, &c, err, sizeof err);
	if (!tap_ok(rc == 0 && c, "reopened with raw = local%s%s", rc ? ": " : "", rc ? err : ""))
		goto out;
	copystand_set_catalog_number(c, "6", err, sizeof err);
	tap_ok(wait_event(c, COPYSTAND_EVENT_CHECKED, NULL, 20, NULL), "6 is checked");
	char *raw_name = NULL;
	rc = copystand_submit_to_running(raw, &raw_name, err, sizeof err);
	/* The JPEG comes after a finisher sweep or two (a large download). */
	nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 600000000 }, NULL);
	rc = rc ? rc : copystand_submit_to_running(jpeg, &name, err, sizeof err);
	tap_ok(rc == 0 && raw_name && name && !strcmp(raw_name, "000000006.cr2") &&
	       !strcmp(name, "000000006.jpg"), "two calls, one stem: %s, %s",
	       raw_name ? raw_name : err, name ? name : "");
	tap_ok(wait_event(c, COPYSTAND_EVENT_ATTACHED, "000000006.jpg", 60, NULL),
	       "the JPEG is attached");
	tap_is_int(attached_to("000000006.cr2", 6), 0, "the RAW is not sent (raw = local)");
	copystand_free(raw_name);
	copystand_free(name);
	name = NULL;

	/* With no station running, its last number (6) names nothing more:
	 * the file is kept, unnamed, in that station's folder. */
	copystand_close(c);
	c = NULL;
	rc = copystand_submit_to_running(jpeg, &name, err, sizeof err);
	tap_ok(rc == 0 && name && !strncmp(name, "unnamed_", 8),
	       "no station running: taken, but unnamed: %s", name ? name : err);
	tap_ok(name && exists(dir, name), "in the last station's folder");
	copystand_free(name);
	name = NULL;
	free(jpeg);
	free(raw);
out:
	copystand_close(c);
	harness_server_stop(&hs);
	harness_cleanup();
	return tap_done();
}
