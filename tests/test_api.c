/* The public API for capture hosts (copystand.h) against the stand-in: a
 * host's own station (numbers checked, files copied in, named from the
 * number current at their press, attached, events, held ones decided),
 * files without a number, and a one-file host handing its files to the
 * station that runs. */
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

/* An ATTACHED event for a file of identifier. */
static bool wait_attached(copystand *c, const char *identifier, double timeout_s,
			  copystand_event *out)
{
	double until = harness_now() + timeout_s;
	copystand_event ev;

	while (wait_event(c, COPYSTAND_EVENT_ATTACHED, NULL, until - harness_now(), &ev))
		if (!strcmp(ev.identifier, identifier)) {
			if (out)
				*out = ev;
			return true;
		}
	return false;
}

/* ATTACHED events for files a and b, in either order: the files of one
 * press go up at once. */
static bool wait_both_attached(copystand *c, const char *a, const char *b,
			       double timeout_s)
{
	double until = harness_now() + timeout_s;
	copystand_event ev;
	bool seen_a = false, seen_b = false;

	while (!(seen_a && seen_b) &&
	       wait_event(c, COPYSTAND_EVENT_ATTACHED, NULL, until - harness_now(), &ev)) {
		seen_a = seen_a || !strcmp(ev.file, a);
		seen_b = seen_b || !strcmp(ev.file, b);
	}
	return seen_a && seen_b;
}

/* The camera's clock is this far ahead of ours. */
#define CAMERA_AHEAD 37.0

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A real JPEG from mkjpeg, with the camera's EXIF time of its press
 * (0: none). */
static bool make_jpeg(const char *mkjpeg, const char *path, double camera_time)
{
	char cmd[1024];

	snprintf(cmd, sizeof cmd, "%s 320 240 7 %s", mkjpeg, path);
	if (camera_time > 0)
		snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %.3f", camera_time);
	return system(cmd) == 0;
}

/* A press of the camera's own button at time pressed (our clock), its JPEG
 * handed in now: the name it ends with, "HELD" or "PROBLEM" (what they
 * said into said, if not NULL). */
static const char *button(copystand *c, const char *mkjpeg, const char *file,
			  double pressed, char *said)
{
	static char out[256];
	char path[700], err[512], *name = NULL;
	const char *paths[] = { path };
	copystand_event ev;

	snprintf(path, sizeof path, "%s/%s", harness_home(), file);
	snprintf(out, sizeof out, "(failed)");
	if (!make_jpeg(mkjpeg, path, pressed + CAMERA_AHEAD) ||
	    copystand_submit_files(c, paths, 1, &name, err, sizeof err) != 0)
		return out;
	double until = harness_now() + 60;
	for (bool done = false; !done && harness_now() < until;) {
		struct pollfd p = { .fd = copystand_event_fd(c), .events = POLLIN };
		poll(&p, 1, 200);
		while (!done && copystand_next_event(c, &ev) == 1) {
			bool held = ev.kind == COPYSTAND_EVENT_PROBLEM && !strcmp(ev.file, name);
			if (held || (ev.kind == COPYSTAND_EVENT_ATTACHED && ev.identifier[0] &&
				     strstr(ev.file, ".jpg") && strcmp(ev.file, name))) {
				snprintf(out, sizeof out, "%s", held ? strncmp(ev.message, "HELD", 4) ?
					 "PROBLEM" : "HELD" : ev.file);
				if (said)
					snprintf(said, 256, "%s", ev.message);
				done = true;
			}
		}
	}
	copystand_free(name);
	return out;
}

/* A fast technician at a body that takes delay seconds from press to
 * file: the next label is scanned from 1 s before to 2 s after each press
 * of the camera's button (the camera's clock as read above).  Each shot
 * must end on the number current when it was pressed: named so, or held
 * offering it, and named so once a person answers. */
static void race(copystand *c, const char *mkjpeg, double delay)
{
	static const double offsets[] = { -1.0, -0.3, -0.05, 0.05, 0.3, 1.0, 2.0 };
	static const char *const numbers[] = { "000000007", "000000008" };
	char err[512], said[256], file[32];
	int wrong = 0, held = 0, cur = 0;
	double last;

	copystand_set_catalog_number(c, numbers[cur], err, sizeof err);
	last = wall();
	for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
		int next = 1 - cur, truth = offsets[i] < 0 ? next : cur;
		/* The press offsets[i] before the scan, after the last scan and
		 * press (a camera's presses come in order); its file comes delay
		 * after the press, or after the scan if that is later. */
		double earliest = last + (offsets[i] > 0 ? offsets[i] : 0) + 0.3;
		while (wall() < earliest)
			nanosleep(&(struct timespec){ .tv_nsec = 20000000 }, NULL);
		double scanned = wall();
		copystand_set_catalog_number(c, numbers[next], err, sizeof err);
		double pressed = scanned - offsets[i], ready = pressed + delay;
		if (ready > wall())
			nanosleep(&(struct timespec){ (time_t)(ready - wall()),
				(long)((ready - wall() - (double)(time_t)(ready - wall())) * 1e9) },
				NULL);
		snprintf(file, sizeof file, "RACE_%zu_%g.JPG", i, delay);
		const char *got = button(c, mkjpeg, file, pressed, said);
		if (!strcmp(got, "HELD")) {
			copystand_held_info hi = { 0 };
			held++;
			copystand_held(c, &hi);
			bool before = !strcmp(hi.before, numbers[truth]);
			nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 200000000 }, NULL);
			if ((before || !strcmp(hi.after, numbers[truth])) &&
			    copystand_resolve_held(c, before ? COPYSTAND_NUMBER_BEFORE :
						   COPYSTAND_NUMBER_AFTER, err, sizeof err) == 0) {
				copystand_event ev;
				got = wait_attached(c, numbers[truth], 60, &ev) ? numbers[truth] :
					"(not attached)";
			}
		}
		if (strncmp(got, numbers[truth], 9)) {
			wrong++;
			tap_diag("pressed %+.2f s from the scan of %s, %.1f s to the file: went to %s",
				 -offsets[i], numbers[next], delay, got);
		}
		cur = next;
		last = scanned > pressed ? scanned : pressed;
	}
	tap_ok(wrong == 0, "%.1f s to the file, scans from -1 s to +2 s around presses: no "
	       "shot for the wrong number (%d of %zu held, answered)", delay, held,
	       sizeof offsets / sizeof *offsets);
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

	/* A press the host fires: its number is fixed when the host asks the
	 * camera, and a label scanned before the files come names nothing
	 * of it.  The files stay where they are. */
	char *jpeg = NULL, *raw = harness_make_file("IMG_0001.CR2", 40000, 1);
	unsigned long press = 0;
	if (asprintf(&jpeg, "%s/IMG_0001.JPG", harness_home()) < 0)
		abort();
	tap_ok(make_jpeg(argv[1], jpeg, 0), "a real JPEG from mkjpeg");
	tap_ok(copystand_press_begin(c, 0, &press, err, sizeof err) == 0 && press,
	       "the host asks its camera to fire");
	nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
	double scanned6 = wall();
	copystand_set_catalog_number(c, "6", err, sizeof err);
	const char *pair[] = { raw, jpeg };
	rc = copystand_submit_press(c, press, pair, 2, &name, err, sizeof err);
	tap_ok(rc == 0 && name && !strcmp(name, "000000005.cr2"),
	       "its RAW+JPEG, handed in after 6 was scanned, are 5's (the first file's name "
	       "comes back): %s", name ? name : err);
	copystand_free(name);
	name = NULL;
	tap_is_int(copystand_submit_press(c, press, pair, 2, NULL, err, sizeof err),
		   COPYSTAND_E_INVALID, "a press is handed in once");
	tap_ok(exists(harness_home(), "IMG_0001.JPG") && exists(harness_home(), "IMG_0001.CR2"),
	       "the host's own files are left where they were");
	tap_ok(wait_both_attached(c, "000000005.jpg", "000000005.cr2", 60),
	       "ATTACHED 000000005.jpg and 000000005.cr2");
	tap_is_int(attached_to("000000005.jpg", 5) + attached_to("000000005.cr2", 5), 2,
		   "both on record 5 in Specify");
	tap_ok(exists(dir, "000000005.jpg") && exists(dir, "000000005.cr2") &&
	       exists(dir, "000000005.xmp"), "the session folder holds the pair and its sidecar");
	/* A host that hands the same files in again (a re-save, a retry
	 * after it lost our answer) makes no second shot. */
	int on5 = attached_to(NULL, 5);
	tap_is_int(copystand_submit_files(c, pair, 2, NULL, err, sizeof err), COPYSTAND_E_INVALID,
		   "the same bytes handed in again are refused");
	tap_ok(strstr(err, "IMG_0001.CR2 has the same bytes as 000000005.cr2") != NULL,
	       "and the error names the file taken before: %s", err);
	nanosleep(&(struct timespec){ .tv_sec = 2 }, NULL);
	tap_is_int(attached_to(NULL, 5), on5, "nothing more is attached to 5");

	/* The camera's own button: its files come with the time of the press
	 * on the camera's clock, 37 s ahead of ours, read to 10 ms. */
	double t = wall();
	tap_ok(copystand_camera_clock(c, t, t + 0.001, t + CAMERA_AHEAD, 0.01, err,
				      sizeof err) == 0, "the host tells the camera's clock");
	tap_is_int(copystand_camera_clock(c, t, t - 1, t, 1, err, sizeof err),
		   COPYSTAND_E_INVALID, "a reading that ends before it began is refused");
	tap_is_str(button(c, argv[1], "IMG_0002.JPG", scanned6 - 0.4, NULL), "000000005_2.jpg",
		   "pressed 0.4 s before 6 was scanned, handed in after: 5's");
	char held[256];
	tap_is_str(button(c, argv[1], "IMG_0003.JPG", scanned6 + 0.002, held), "HELD",
		   "pressed 2 ms after the scan, within what the clock can tell: held");
	tap_ok(strstr(held, "000000005 or 000000006") != NULL, "the message names both numbers: %s",
	       held);
	copystand_held_info hi;
	tap_ok(copystand_held(c, &hi) == 1 && hi.press && !strcmp(hi.before, "000000005") &&
	       !strcmp(hi.after, "000000006") && !strncmp(hi.file, "pending_", 8),
	       "copystand_held: %s, the number before or after", hi.file);
	tap_ok(copystand_resolve_held(c, COPYSTAND_KEEP_SCAN, err, sizeof err) ==
	       COPYSTAND_E_INVALID, "keeping the scan is no answer to a press at a change: %s",
	       err);
	tap_is_int(copystand_resolve_held(c, COPYSTAND_NUMBER_AFTER, err, sizeof err),
		   COPYSTAND_E_CONFLICT, "the moment it is held, no decision is taken (it "
		   "may be meant for the one held before)");
	nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 200000000 }, NULL);
	tap_is_int(copystand_resolve_held(c, COPYSTAND_NUMBER_AFTER, err, sizeof err), 0,
		   "a person says, a moment later: the number after");
	tap_ok(wait_attached(c, "000000006", 60, NULL), "it is attached to 6");
	tap_is_int(copystand_resolve_held(c, COPYSTAND_NUMBER_AFTER, err, sizeof err),
		   COPYSTAND_E_NOT_FOUND, "nothing more is held");
	tap_is_int(copystand_held(c, &hi), 0, "copystand_held says so too");
	tap_is_str(button(c, argv[1], "IMG_0004.JPG", wall() - 0.1, NULL), "000000006_2.jpg",
		   "pressed well after the scan: 6's");
	race(c, argv[1], 0.1);
	race(c, argv[1], 2.0);
	/* Three labels scanned within 10 ms, the press between the second and
	 * the third: held with all of them; the number itself answers. */
	double first = wall();
	copystand_set_catalog_number_at(c, "5", first, err, sizeof err);
	copystand_set_catalog_number_at(c, "6", first + 0.004, err, sizeof err);
	copystand_set_catalog_number_at(c, "7", first + 0.008, err, sizeof err);
	nanosleep(&(struct timespec){ .tv_nsec = 200000000 }, NULL);
	tap_is_str(button(c, argv[1], "IMG_0007.JPG", first + 0.006, held), "HELD",
		   "pressed among three scans: held");
	tap_ok(strstr(held, "000000005, 000000006 or 000000007") != NULL, "with the three: %s",
	       held);
	tap_is_int(copystand_resolve_held_number(c, "9", err, sizeof err), COPYSTAND_E_INVALID,
		   "a number it cannot be is refused");
	nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 200000000 }, NULL);
	tap_ok(copystand_resolve_held_number(c, "6", err, sizeof err) == 0 &&
	       wait_attached(c, "000000006", 60, NULL), "the middle one, by its number: attached "
	       "to 6");
	copystand_set_catalog_number(c, "6", err, sizeof err);
	nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);

	/* A one-file host (a gphoto2 hook) hands its file to the running
	 * station, this process's, published in the journal: it is placed by
	 * the same clock. */
	char *hooked = NULL;
	if (asprintf(&hooked, "%s/IMG_0005.JPG", harness_home()) < 0)
		abort();
	make_jpeg(argv[1], hooked, wall() - 0.1 + CAMERA_AHEAD);
	rc = copystand_submit_to_running(hooked, &name, err, sizeof err);
	tap_ok(rc == 0 && name && !strncmp(name, "pending_", 8),
	       "submit_to_running keeps it under a provisional name: %s", name ? name : err);
	copystand_free(name);
	name = NULL;
	tap_ok(wait_attached(c, "000000006", 60, &ev) && !strncmp(ev.file, "000000006_", 10),
	       "the running station names it from its press and attaches it: %s", ev.file);
	tap_ok(copystand_submit_to_running("/nonexistent/x.jpg", NULL, err, sizeof err) ==
	       COPYSTAND_E_IO && strstr(err, "/nonexistent/x.jpg"),
	       "a missing file is COPYSTAND_E_IO: %s", err);

	/* No valid number at the press: kept unmatched, said so. */
	copystand_set_catalog_number(c, "!!", err, sizeof err);
	nanosleep(&(struct timespec){ .tv_nsec = 300000000 }, NULL);
	char lone[256];
	tap_is_str(button(c, argv[1], "IMG_0006.JPG", wall(), lone), "PROBLEM",
		   "pressed after a line that was no number");
	tap_ok(strstr(lone, "no catalog number") != NULL, "PROBLEM: %s", lone);

	/* A number Specify does not know: kept, and the reason says what to do. */
	char todo[700];
	snprintf(todo, sizeof todo, "catalogue the specimen in Specify, then run copystand "
		 "upload %s", dir);
	copystand_set_catalog_number(c, "99999", err, sizeof err);
	rc = copystand_press_begin(c, 0, &press, err, sizeof err);
	make_jpeg(argv[1], jpeg, wall() + CAMERA_AHEAD);
	const char *one[] = { jpeg };
	rc = rc ? rc : copystand_submit_press(c, press, one, 1, &name, err, sizeof err);
	tap_ok(rc == 0 && name && wait_event(c, COPYSTAND_EVENT_PROBLEM, name, 60, &ev) &&
	       strstr(ev.message, "NOT ATTACHED 000099999.jpg: no collectionobject has") &&
	       strstr(ev.message, todo), "no such record: the message says what to do: %s",
	       ev.message);
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
	/* What the last session left not attached: the shot with no number
	 * and 99999's, in the session folder. */
	copystand_earlier_info left;
	char said_left[1100];
	snprintf(said_left, sizeof said_left, "2 earlier files need a decision: copystand "
		 "upload %s", dir);
	rc = copystand_earlier(c, &left, err, sizeof err);
	tap_ok(rc == 0 && left.count == 2 &&
	       left.ndirs == 1 && !strcmp(left.dirs[0], dir) && !left.more_dirs &&
	       !strcmp(left.message, said_left), "copystand_earlier: %s", left.message);
	tap_ok(wait_event(c, COPYSTAND_EVENT_EARLIER, NULL, 20, &ev) &&
	       !strcmp(ev.message, said_left), "and it is said at the start: EARLIER %s",
	       ev.message);
	copystand_set_catalog_number(c, "6", err, sizeof err);
	tap_ok(wait_event(c, COPYSTAND_EVENT_CHECKED, NULL, 20, NULL), "6 is checked");
	t = wall();
	copystand_camera_clock(c, t, t + 0.001, t + CAMERA_AHEAD, 0.01, err, sizeof err);
	char *raw_name = NULL;
	nanosleep(&(struct timespec){ .tv_nsec = 300000000 }, NULL);
	make_jpeg(argv[1], jpeg, wall() - 0.1 + CAMERA_AHEAD);
	/* A new shot's RAW (the first press's is taken already), under the
	 * camera name of its JPEG. */
	free(raw);
	raw = harness_make_file("IMG_0001.CR2", 40000, 9);
	rc = copystand_submit_to_running(raw, &raw_name, err, sizeof err);
	/* The JPEG comes after a finisher sweep or two (a large download). */
	nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 600000000 }, NULL);
	rc = rc ? rc : copystand_submit_to_running(jpeg, &name, err, sizeof err);
	tap_ok(rc == 0 && raw_name && name && !strncmp(raw_name, name, strlen(name) - 4),
	       "two calls, one stem: %s, %s", raw_name ? raw_name : err, name ? name : "");
	char pair_raw[64] = "";
	tap_ok(wait_attached(c, "000000006", 60, &ev) && strstr(ev.file, ".jpg"),
	       "the JPEG is attached, named from its press: %s", ev.file);
	snprintf(pair_raw, sizeof pair_raw, "%.*s.cr2", (int)strcspn(ev.file, "."), ev.file);
	tap_is_int(attached_to(pair_raw, 6), 0, "the RAW is not sent (raw = local)");
	tap_ok(exists(dir, pair_raw), "the RAW is kept here, under the pair's name: %s", pair_raw);
	copystand_free(raw_name);
	copystand_free(name);
	name = NULL;

	/* With no station running its last number (6) names nothing more: a
	 * file handed in now is kept in that station's folder, and the next
	 * station finds it has no number. */
	copystand_close(c);
	c = NULL;
	nanosleep(&(struct timespec){ .tv_nsec = 300000000 }, NULL);
	make_jpeg(argv[1], jpeg, wall() + CAMERA_AHEAD);
	rc = copystand_submit_to_running(jpeg, &name, err, sizeof err);
	tap_ok(rc == 0 && name && !strncmp(name, "pending_", 8) && exists(dir, name),
	       "no station running: taken into the last station's folder: %s",
	       name ? name : err);
	rc = copystand_open(&o, &c, err, sizeof err);
	/* It is left over: counted with the others, not news of this session. */
	snprintf(said_left, sizeof said_left, "3 earlier files need a decision: copystand "
		 "upload %s", dir);
	bool counted = false, told = false;
	for (double until = harness_now() + 30; rc == 0 && !counted && harness_now() < until;) {
		struct pollfd p = { .fd = copystand_event_fd(c), .events = POLLIN };
		poll(&p, 1, 200);
		while (copystand_next_event(c, &ev) == 1) {
			told |= ev.kind == COPYSTAND_EVENT_PROBLEM;
			counted |= ev.kind == COPYSTAND_EVENT_EARLIER &&
				!strcmp(ev.message, said_left);
		}
	}
	tap_ok(counted, "the next station counts it with the earlier ones: %s", said_left);
	tap_ok(!told && !wait_event(c, COPYSTAND_EVENT_PROBLEM, NULL, 3, &ev),
	       "and tells no PROBLEM of this session for it");
	rc = copystand_earlier(c, &left, err, sizeof err);
	tap_ok(rc == 0 && left.count == 3, "copystand_earlier: %zu", left.count);
	tap_ok(copystand_earlier(NULL, &left, err, sizeof err) == COPYSTAND_E_INVALID,
	       "copystand_earlier without a station is COPYSTAND_E_INVALID: %s", err);
	copystand_free(name);
	name = NULL;
	free(hooked);
	free(jpeg);
	free(raw);
out:
	copystand_close(c);
	harness_server_stop(&hs);
	harness_cleanup();
	return tap_done();
}
