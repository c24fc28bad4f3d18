/* copystand station end to end, as a technician at the copy stand uses it:
 * the binary on a pseudo-terminal (lines typed one at a time, its output
 * read as it comes), the stand-in as Specify and ptpip-camera as the
 * tethered camera.  Every case checks what happened from the stand-in's
 * state, the session folder and the journal, not only from what the
 * station printed.  Each case has its own session folder and camera; the
 * stand-in and the journal are shared, so a case leaves nothing pending
 * (but the last, which is about exactly that). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "barcode.h"
#include "harness.h"
#include "journal.h"
#include "ptpip-client.h"
#include "sha256.h"
#include "tap.h"

#include <linux/magic.h>

#ifndef PTPIP_CAMERA_EXE
#error "PTPIP_CAMERA_EXE must name the built ptpip-camera program"
#endif
#ifndef COPYSTAND_BINARY
#error "COPYSTAND_BINARY must name the built copystand program"
#endif
#ifndef MKBARCODE_EXE
#error "MKBARCODE_EXE must name the built mkbarcode program"
#endif

/* How long the station gets for things that take a moment. */
#define T_SHORT 20.0
/* For things that wait on retries with backoff. */
#define T_LONG 60.0

static harness_server hs;

/* --- the station on a pseudo-terminal ----------------------------------- */

struct station_run {
	pid_t pid;
	int master;
	char *out;            /* all it printed, NUL-terminated */
	size_t len, cap;
	size_t mark;          /* expect() looks from here on */
	bool eof;
	int status;           /* exit status once reaped, -1: killed or signal */
	bool reaped;
	ptpip_cam *cam;
	char dir[512];
	char name[64];
};

/* Reads what the station printed, waiting at most timeout_ms for the
 * first bytes.  False once the terminal is closed. */
static bool pump(struct station_run *r, int timeout_ms)
{
	struct pollfd p = { .fd = r->master, .events = POLLIN };

	if (r->eof)
		return false;
	while (poll(&p, 1, timeout_ms) > 0) {
		char buf[4096];
		ssize_t n = read(r->master, buf, sizeof buf);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {           /* EIO: the child side is closed */
			r->eof = true;
			return false;
		}
		if (r->len + (size_t)n + 1 > r->cap) {
			r->cap = (r->len + (size_t)n + 1) * 2;
			if (!(r->out = realloc(r->out, r->cap)))
				abort();
		}
		for (ssize_t i = 0; i < n; i++)
			r->out[r->len++] = buf[i] ? buf[i] : ' ';
		r->out[r->len] = '\0';
		timeout_ms = 0;
	}
	return true;
}

/* The tail of what it printed since the mark, readable, for diagnostics. */
static void show_tail(struct station_run *r, const char *why)
{
	size_t from = r->len > 1500 && r->len - 1500 > r->mark ? r->len - 1500 : r->mark;
	char *line = malloc(r->len - from + 1), *p = line;

	tap_diag("%s: station %s printed since the last match:", why, r->name);
	for (size_t i = from; i < r->len; i++) {
		char c = r->out[i];
		if (c == '\r' || c == '\a')
			continue;
		if (c == '\033') {      /* \033[K */
			i += 2;
			continue;
		}
		if (c == '\n') {
			*p = '\0';
			if (*line)
				tap_diag("  | %s", line);
			p = line;
			continue;
		}
		*p++ = c;
	}
	*p = '\0';
	if (*line)
		tap_diag("  | %s", line);
	free(line);
}

/* Waits for want in the output after the mark; moves the mark past it. */
static bool expect(struct station_run *r, const char *want, double timeout_s)
{
	double end = harness_now() + timeout_s;

	for (;;) {
		char *at = r->out ? strstr(r->out + r->mark, want) : NULL;
		if (at) {
			r->mark = (size_t)(at - r->out) + strlen(want);
			return true;
		}
		double left = end - harness_now();
		if (left <= 0 || (!pump(r, left > 0.2 ? 200 : (int)(left * 1000) + 1) && r->eof)) {
			if (r->out && (at = strstr(r->out + r->mark, want))) {
				r->mark = (size_t)(at - r->out) + strlen(want);
				return true;
			}
			tap_diag("no \"%s\" within %.0f s", want, timeout_s);
			show_tail(r, "expect");
			return false;
		}
	}
}

/* Waits for "captured NAME…" after the mark, or for "attached ✓ NAME…":
 * the screen shows the latest line at each redraw, and a capture attached
 * before the next one may never show as captured. */
static bool expect_captured(struct station_run *r, const char *name, double timeout_s)
{
	char captured[160], attached[160];
	double end = harness_now() + timeout_s;

	snprintf(captured, sizeof captured, "captured %s", name);
	snprintf(attached, sizeof attached, "attached ✓ %s", name);
	for (;;) {
		char *a = r->out ? strstr(r->out + r->mark, captured) : NULL;
		char *b = r->out ? strstr(r->out + r->mark, attached) : NULL;
		char *at = a && (!b || a < b) ? a : b;
		if (at) {
			r->mark = (size_t)(at - r->out) + strlen(at == a ? captured : attached);
			return true;
		}
		if (harness_now() >= end || (!pump(r, 200) && r->eof)) {
			tap_diag("no \"%s\" nor \"%s\" within %.0f s", captured, attached,
				 timeout_s);
			show_tail(r, "expect");
			return false;
		}
	}
}

/* Whether want was printed since the mark (without waiting). */
static bool printed(struct station_run *r, const char *want)
{
	pump(r, 0);
	return r->out && strstr(r->out + r->mark, want) != NULL;
}

/* Whether want was printed at or after offset from. */
static bool since(struct station_run *r, size_t from, const char *want)
{
	pump(r, 0);
	return r->out && from <= r->len && strstr(r->out + from, want) != NULL;
}

/* Types a line at the terminal (the pty turns \n into Enter). */
static void send_line(struct station_run *r, const char *line)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "%s\n", line);

	if (write(r->master, buf, (size_t)n) != n)
		tap_diag("cannot type \"%s\": %s", line, strerror(errno));
}

/* Pumps the terminal while cond(ud) is false, up to timeout_s. */
static bool wait_until(struct station_run *r, bool (*cond)(void *), void *ud,
		       double timeout_s)
{
	double end = harness_now() + timeout_s;

	while (!cond(ud)) {
		if (harness_now() >= end)
			return false;
		if (r)
			pump(r, 150);
		else
			nanosleep(&(struct timespec){ .tv_nsec = 150000000 }, NULL);
	}
	return true;
}

/* A camera and a station on a pty, in the session folder HOME/name.
 * extra: more station options, NULL-terminated (may be NULL).  with_camera
 * false: no emulator, no --port (the station looks for a camera and finds
 * none, which it only reports). */
/* Starts a station on the emulated camera cam (NULL: none), which it then
 * owns. */
static bool station_start_on(struct station_run *r, const char *name, ptpip_cam *cam,
			     const char *const *extra)
{
	const char *args[40];
	size_t n = 0;

	memset(r, 0, sizeof *r);
	r->master = -1;
	r->pid = -1;
	r->cam = cam;
	snprintf(r->name, sizeof r->name, "%s", name);
	snprintf(r->dir, sizeof r->dir, "%s/%s", harness_home(), name);
	args[n++] = COPYSTAND_BINARY;
	args[n++] = "station";
	args[n++] = "--server";
	args[n++] = hs.url;
	args[n++] = "--user";
	args[n++] = hs.user;
	args[n++] = "--collection";
	args[n++] = hs.collection;
	args[n++] = "--dir";
	args[n++] = r->dir;
	if (r->cam) {
		args[n++] = "--port";
		args[n++] = ptpip_cam_port_path(r->cam);
	}
	for (; extra && *extra && n < 39; extra++)
		args[n++] = *extra;
	args[n] = NULL;

	fflush(stdout);
	r->pid = forkpty(&r->master, NULL, NULL,
			 &(struct winsize){ .ws_row = 40, .ws_col = 200 });
	if (r->pid == 0) {
		/* The disk-full case stands a file size limit in for a full
		 * disk: a write past it must fail, not kill the station. */
		signal(SIGXFSZ, SIG_IGN);
		execv(COPYSTAND_BINARY, (char **)args);
		_exit(127);
	}
	if (r->pid < 0) {
		tap_ok(0, "%s: forkpty: %s", name, strerror(errno));
		return false;
	}
	fcntl(r->master, F_SETFD, FD_CLOEXEC);
	if (!tap_ok(expect(r, "ready — scan a specimen", T_SHORT), "%s: the station starts", name))
		return false;
	if (r->cam && !tap_ok(expect(r, "camera: PTP/IP Camera ready", T_SHORT),
			      "%s: it finds the camera", name))
		return false;
	return true;
}

static bool station_start(struct station_run *r, const char *name, bool with_camera,
			  const char *const *extra)
{
	ptpip_cam *cam = NULL;

	if (with_camera && !(cam = ptpip_cam_start(PTPIP_CAMERA_EXE, NULL))) {
		memset(r, 0, sizeof *r);
		r->master = -1;
		tap_ok(0, "%s: the camera emulator starts", name);
		return false;
	}
	return station_start_on(r, name, cam, extra);
}

/* Reaps the station if it has exited, waiting up to timeout_s. */
static bool reap(struct station_run *r, double timeout_s)
{
	double end = harness_now() + timeout_s;
	int status;

	if (r->reaped)
		return true;
	for (;;) {
		pid_t p = waitpid(r->pid, &status, WNOHANG);
		if (p == r->pid) {
			r->reaped = true;
			r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			if (!WIFEXITED(status))
				tap_diag("station %s died of signal %d", r->name,
					 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			pump(r, 0);
			return true;
		}
		if (harness_now() >= end)
			return false;
		if (!pump(r, 100))
			nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	}
}

/* q, and its exit status (under ASan: no leaks) once it is gone; kills it
 * if it does not go. */
static int station_quit(struct station_run *r, double timeout_s)
{
	if (r->pid > 0 && !r->reaped) {
		send_line(r, "q");
		if (!reap(r, timeout_s)) {
			show_tail(r, "quit");
			tap_diag("station %s did not quit: killing it", r->name);
			kill(r->pid, SIGKILL);
			reap(r, 10);
			r->status = -1;
		}
	}
	return r->reaped ? r->status : -1;
}

/* Quits (if still running), checks the clean exits, frees everything. */
static void station_end(struct station_run *r)
{
	if (r->pid > 0) {
		int rc = station_quit(r, T_SHORT);
		tap_is_int(rc, 0, "station exits 0 (no leaks)");
	}
	if (r->master >= 0)
		close(r->master);
	if (r->cam)
		tap_is_int(ptpip_cam_stop(r->cam), 0, "the camera emulator exits cleanly");
	free(r->out);
	memset(r, 0, sizeof *r);
	r->master = -1;
}

static char *cam(struct station_run *r, const char *cmd)
{
	return ptpip_cam_control(r->cam, "%s", cmd);
}

static bool cam_ok(struct station_run *r, const char *cmd)
{
	char *reply = cam(r, cmd);
	bool ok = reply && strncmp(reply, "OK", 2) == 0;

	if (!ok)
		tap_diag("camera %s: %s", cmd, reply ? reply : "(gone)");
	free(reply);
	return ok;
}

/* Scans a number at the terminal and waits until Specify has found it
 * (the found line is "NUMBER  TAXON  (N images)", two spaces). */
static bool scan_found(struct station_run *r, const char *number)
{
	char want[64];

	send_line(r, number);
	snprintf(want, sizeof want, "%s  ", number);
	return expect(r, want, T_SHORT) && expect(r, " image", T_SHORT);
}

static char *local(const struct station_run *r, const char *name)
{
	static char path[4][700];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof path[0], "%s/%s", r->dir, name);
	return p;
}

static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* --- the stand-in's view -------------------------------------------------- */

struct att_count {
	int joined;          /* attachments of name on collection object record */
	int on_other;        /* of name, on another record */
	int orphans;         /* of name, with no join row */
	bool bytes_same;     /* the stored file of the (one) joined one is the local file */
};

/* What the stand-in holds of a file named name (and, with path, whether
 * its stored bytes are those of path). */
static struct att_count attached(const char *name, long long record, const char *path)
{
	struct att_count c = { 0 };
	cJSON *st = standin_state(hs.standin), *a;
	const char *location = NULL;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(st, "attachments")) {
		const char *orig = cJSON_GetStringValue(cJSON_GetObjectItem(a, "origfilename"));
		const char *table = cJSON_GetStringValue(cJSON_GetObjectItem(a, "join_table"));
		long long rec = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "record_id"));

		if (!orig || strcmp(orig, name) != 0)
			continue;
		if (!table)
			c.orphans++;
		else if (!strcmp(table, "collectionobjectattachment") && rec == record) {
			c.joined++;
			location = cJSON_GetStringValue(cJSON_GetObjectItem(a, "attachmentlocation"));
		} else
			c.on_other++;
	}
	if (path && c.joined == 1 && location) {
		const char *stored = cJSON_GetStringValue(cJSON_GetObjectItem(
			cJSON_GetObjectItem(cJSON_GetObjectItem(st, "files"), location), "sha256"));
		char sha[65] = "";
		cs_error err = { 0 };

		if (sha256_file(path, sha, NULL, &err))
			tap_diag("cannot hash %s: %s", path, err.msg);
		c.bytes_same = stored && !strcmp(stored, sha);
		if (!c.bytes_same)
			tap_diag("%s: stored sha256 %s, local %s", name, stored ? stored : "(none)", sha);
	}
	cJSON_Delete(st);
	return c;
}

struct want_attached {
	const char *name;
	long long record;
};

static bool is_attached(void *ud)
{
	struct want_attached *w = ud;
	return attached(w->name, w->record, NULL).joined > 0;
}

/* Waits until name is attached to record, then checks it is so exactly
 * once, nowhere else, with the bytes of the local file. */
static bool attached_once(struct station_run *r, const char *name, long long record,
			  double timeout_s)
{
	struct want_attached w = { name, record };

	if (!wait_until(r, is_attached, &w, timeout_s)) {
		tap_diag("%s is not attached to collection object %lld after %.0f s", name,
			 record, timeout_s);
		if (r)
			show_tail(r, "attach");
		return false;
	}
	struct att_count c = attached(name, record, local(r, name));
	if (c.joined != 1 || c.on_other || c.orphans)
		tap_diag("%s: %d on collection object %lld, %d on others, %d orphans",
			 name, c.joined, record, c.on_other, c.orphans);
	return c.joined == 1 && !c.on_other && !c.orphans && c.bytes_same;
}

/* Scans number, shoots, waits for want, then quits the station. */
static void shoot_then_quit(struct station_run *r, const char *number, const char *want,
			    const char *what)
{
	bool found = scan_found(r, number);

	send_line(r, "");
	bool shot = expect(r, want, T_SHORT);
	send_line(r, "q");
	bool left = reap(r, T_LONG);
	/* Which step failed, when one did: a flake here has been seen once. */
	if (!(found && shot && left))
		tap_diag("%s: scan %s found %d, \"%s\" seen %d, left in %.0f s %d", what,
			 number, found, want, shot, T_LONG, left);
	tap_ok(found && shot && left, "%s", what);
}

/* The join row's ordinal of the attachment name on record, or -1. */
static int ordinal_of(const char *name, long long record)
{
	cJSON *a = harness_attachment_of(&hs, name, record, NULL);
	const cJSON *o = cJSON_GetObjectItem(a, "ordinal");
	int ord = cJSON_IsNumber(o) ? o->valueint : -1;

	cJSON_Delete(a);
	return ord;
}

static bool nothing_of(const char *name)
{
	struct att_count c = attached(name, 0, NULL);
	if (c.joined || c.on_other || c.orphans)
		tap_diag("the stand-in has %s: %d/%d/%d", name, c.joined, c.on_other, c.orphans);
	return !c.joined && !c.on_other && !c.orphans;
}

static bool faults(const char *json)
{
	cs_error err = { 0 };
	int ret = standin_faults(hs.standin, json, &err);

	if (ret)
		tap_diag("faults %s: %s", json, err.msg);
	return ret == 0;
}

static bool faults_reset(void)
{
	cs_error err = { 0 };
	cJSON *reply = NULL;
	int ret = standin_control(hs.standin, "POST", "faults/reset", "{}",
				  &reply, &err);

	cJSON_Delete(reply);
	if (ret)
		tap_diag("faults reset: %s", err.msg);
	return ret == 0;
}

#define SPECIFY_DOWN "{\"error_rate\": 1.0, \"error_status\": 503}"

/* --- the journal ------------------------------------------------------------- */

struct find_item {
	const char *path;
	int state;          /* -1: not found */
	int count;
};

static int on_item(void *ud, const journal_item *it)
{
	struct find_item *f = ud;

	if (it->path && !strcmp(it->path, f->path)) {
		f->state = (int)it->state;
		f->count++;
	}
	return 0;
}

/* The journal state of the (one) item for path; -1 when there is none,
 * -2 when there are several. */
static int journal_state_of(const char *path)
{
	struct find_item f = { path, -1, 0 };
	cs_error err = { 0 };
	char *jpath = journal_default_path(&err);
	journal *j = NULL;

	if (!jpath || journal_open(jpath, &j, &err)) {
		tap_diag("journal: %s", err.msg);
		free(jpath);
		return -1;
	}
	if (journal_items_each(j, 0, -1, on_item, &f, &err))
		tap_diag("journal: %s", err.msg);
	journal_close(j);
	free(jpath);
	return f.count > 1 ? -2 : f.state;
}

/* The item's state once it is want, or after 10 s: Specify shows a join
 * row a moment before the pipeline has journaled it. */
static int journal_state_soon(const char *path, int want)
{
	double end = harness_now() + 10;
	int state;

	while ((state = journal_state_of(path)) != want && harness_now() < end)
		nanosleep(&(struct timespec){ .tv_nsec = 50000000 }, NULL);
	return state;
}

/* The states the item for path went through, space-separated (malloc'd),
 * read from the journal's event log. */
static char *history_of(const char *path)
{
	cs_error err = { 0 };
	char *jpath = journal_default_path(&err), *out = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	if (jpath && sqlite3_open_v2(jpath, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT group_concat(to_state, ' ') FROM (SELECT "
			       "to_state FROM events WHERE item_id = (SELECT id FROM "
			       "items WHERE path = ?) ORDER BY id)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
			out = strdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(jpath);
	return out;
}

/* --- which specimen a shot belongs to (issue 13) ---------------------------- */

/* Images the stand-in holds on collection object record. */
static int record_images(long long record)
{
	int n = 0;

	cJSON_Delete(harness_attachment_of(&hs, NULL, record, &n));
	return n;
}

static void nap(double s)
{
	nanosleep(&(struct timespec){ (time_t)s, (long)((s - (double)(time_t)s) * 1e9) }, NULL);
}

/* The next shot's outcome after the mark: the number it was captured
 * under, or (offer not NULL) "HELD" with the numbers offered ("p A, n B")
 * in *offer. */
static const char *outcome(struct station_run *r, char offer[2][16])
{
	static char number[16];
	double end = harness_now() + T_SHORT;

	for (;;) {
		char *cap = r->out ? strstr(r->out + r->mark, "captured 0") : NULL;
		char *held = r->out && offer ? strstr(r->out + r->mark, "HELD pending_") : NULL;
		char *keys = held ? strstr(held, ": p ") : NULL;
		if (cap && (!held || cap < held)) {
			snprintf(number, sizeof number, "%.9s", cap + 9);
			r->mark = (size_t)(cap - r->out) + 18;
			return number;
		}
		if (keys && strstr(keys, "m · ")) {
			sscanf(keys, ": p %15[^,], n %15[^,\033]", offer[0], offer[1]);
			r->mark = (size_t)(keys - r->out) + 4;
			return "HELD";
		}
		if (harness_now() >= end || (!pump(r, 200) && r->eof)) {
			show_tail(r, "outcome");
			return "(nothing)";
		}
	}
}

/* A press of the camera's button well after number was scanned: captured
 * under it, or, while the station has not read the camera's clock well
 * yet, held offering it, and then captured under it once answered. */
static bool button_shot(struct station_run *r, const char *number)
{
	char offer[2][16] = { "", "" };
	const char *got;

	nap(0.5);
	if (!cam_ok(r, "press jpeg"))
		return false;
	got = outcome(r, offer);
	if (!strcmp(got, "HELD") && (!strcmp(offer[0], number) || !strcmp(offer[1], number))) {
		nap(1.2);
		send_line(r, strcmp(offer[0], number) ? "n" : "p");
		got = outcome(r, NULL);
	}
	return !strcmp(got, number);
}

/* --- the cases ------------------------------------------------------------- */

/* 1. Scan, Enter: the shot is 000000001.jpg, attached to its record with
 * the very bytes that came from the camera. */
static void test_enter_shoots(void)
{
	struct station_run r;

	tap_diag("scan, Enter: shot, named, attached");
	if (station_start(&r, "enter", true, NULL)) {
		tap_ok(scan_found(&r, "000000001"), "the scan is found in Specify");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000001.jpg", T_SHORT), "Enter shoots: captured");
		tap_ok(harness_dir_is(r.dir, "000000001.jpg"), "the session folder holds 000000001.jpg");
		tap_ok(attached_once(&r, "000000001.jpg", 1, T_LONG),
		       "attached once to collection object 1, same bytes");
		tap_ok(expect(&r, "attached ✓ 000000001.jpg (1 image)", T_SHORT),
		       "the station says so, with the record's image count");
		tap_is_int(journal_state_of(local(&r, "000000001.jpg")), JS_ATTACHED,
			   "the journal has it attached");
		/* The check had found the record: no second lookup. */
		char *h = history_of(local(&r, "000000001.jpg"));
		tap_is_str(h, "captured matched reserved uploaded attached",
			   "journaled with its record, as the check found it: no "
			   "second lookup");
		free(h);
	}
	station_end(&r);
}

/* 2. The camera's own button: the shot comes in and is attached. */
static void test_camera_button(void)
{
	struct station_run r;

	tap_diag("the camera's own shutter button");
	if (station_start(&r, "button", true, NULL)) {
		tap_ok(scan_found(&r, "000000008"), "the scan is found");
		tap_ok(button_shot(&r, "000000008"), "the button is pressed: captured as 000000008");
		tap_ok(attached_once(&r, "000000008.jpg", 8, T_LONG),
		       "attached once to collection object 8, same bytes");
		tap_ok(harness_dir_is(r.dir, "000000008.jpg"), "the session folder holds 000000008.jpg");
	}
	station_end(&r);
}

/* 3. RAW+JPEG: one press, two files, both on the record. */
static void test_raw_jpeg(void)
{
	struct station_run r;

	tap_diag("RAW+JPEG pair");
	if (station_start(&r, "pair", true, NULL)) {
		tap_ok(cam_ok(&r, "payload raw+jpeg 300000"), "the camera shoots RAW+JPEG");
		tap_ok(scan_found(&r, "000000002"), "the scan is found");
		send_line(&r, "");
		/* "captured … (+ pair)" may be drawn over by its attached line;
		 * the folder below shows the pair under one name. */
		tap_ok(expect_captured(&r, "000000002.", T_SHORT), "captured under the number");
		tap_ok(attached_once(&r, "000000002.cr2", 2, T_LONG), "the RAW is attached to 2");
		tap_ok(attached_once(&r, "000000002.jpg", 2, T_LONG), "the JPEG is attached to 2");
		tap_ok(ordinal_of("000000002.jpg", 2) < ordinal_of("000000002.cr2", 2),
		       "the JPEG first among the record's images");
		tap_ok(harness_dir_is(r.dir, "000000002.cr2 000000002.jpg 000000002.xmp"),
		       "the session folder holds both, named from the number, and "
		       "the RAW's XMP sidecar");
	}
	station_end(&r);
}

/* 4. Several views of one specimen: _2 for the second. */
static void test_views(void)
{
	struct station_run r;

	tap_diag("several views per record");
	if (station_start(&r, "views", true, NULL)) {
		tap_ok(scan_found(&r, "000000003"), "the scan is found");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000003.jpg", T_SHORT), "first view captured");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000003_2.jpg", T_SHORT), "second view is _2");
		tap_ok(attached_once(&r, "000000003.jpg", 3, T_LONG), "the first is attached to 3");
		tap_ok(attached_once(&r, "000000003_2.jpg", 3, T_LONG), "the second is attached to 3");
		tap_ok(expect(&r, "(2 images)", T_SHORT), "the count says 2 images");
		tap_ok(ordinal_of("000000003.jpg", 3) == 0 && ordinal_of("000000003_2.jpg", 3) == 1,
		       "in the order shot (ordinals %d, %d)", ordinal_of("000000003.jpg", 3),
		       ordinal_of("000000003_2.jpg", 3));
		tap_ok(harness_dir_is(r.dir, "000000003.jpg 000000003_2.jpg"), "both in the folder");
	}
	station_end(&r);
}

/* 5. A number Specify does not know: refused by default, kept unmatched
 * with --unknown keep. */
static void test_unknown(void)
{
	struct station_run r;
	char *reply;

	tap_diag("unknown number, --unknown refuse (default)");
	if (station_start(&r, "unknown-refuse", true, NULL)) {
		send_line(&r, "000000999");
		tap_ok(expect(&r, "NOT FOUND", T_SHORT), "NOT FOUND");
		send_line(&r, "");
		tap_ok(expect(&r, "NOT SHOOTING", T_SHORT), "Enter: NOT SHOOTING");
		/* Anything fired would be on the card; give it a moment. */
		pump(&r, 1500);
		reply = cam(&r, "list");
		tap_is_str(reply, "OK", "the shutter never fired (the card is empty)");
		free(reply);
		tap_ok(harness_dir_is(r.dir, ""), "no file in the session folder");
		tap_ok(!printed(&r, "captured"), "nothing captured");
	}
	station_end(&r);

	tap_diag("unknown number, --unknown keep");
	const char *keep[] = { "--unknown", "keep", NULL };
	if (station_start(&r, "unknown-keep", true, keep)) {
		send_line(&r, "000000999");
		tap_ok(expect(&r, "NOT FOUND", T_SHORT) && expect(&r, "shots stay unmatched", 1),
		       "NOT FOUND, shots stay unmatched");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000999.jpg", T_SHORT), "the shot is kept, named "
		       "from the number");
		tap_ok(expect(&r, "NOT ATTACHED 000000999.jpg", T_LONG), "and reported not attached");
		tap_is_int(journal_state_of(local(&r, "000000999.jpg")), JS_UNMATCHED,
			   "the journal has it unmatched");
		tap_ok(exists(local(&r, "000000999.jpg")), "the file stays in the folder");
		tap_ok(nothing_of("000000999.jpg"), "nothing attached in Specify");
	}
	station_end(&r);
}

struct two_names {
	const char *a, *b;
	long long ra, rb;
};

static bool both_attached(void *ud)
{
	struct two_names *t = ud;
	return attached(t->a, t->ra, NULL).joined > 0 && attached(t->b, t->rb, NULL).joined > 0;
}

/* 6. Specify goes away while shooting: the shots are still taken and
 * named; when it is back they are attached, each once. */
static void test_specify_down(void)
{
	struct station_run r;

	tap_diag("Specify down while shooting, then back");
	if (!hs.standin) {
		tap_ok(1, "# SKIP needs the stand-in's fault switches");
		return;
	}
	if (station_start(&r, "down", true, NULL)) {
		size_t down_from = r.len;
		tap_ok(faults(SPECIFY_DOWN), "Specify goes down");
		send_line(&r, "000000005");
		tap_ok(expect(&r, "000000005: not checked, Specify cannot be reached", T_SHORT),
		       "the check says Specify cannot be reached");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000005.jpg", T_SHORT), "the shot is taken anyway");
		send_line(&r, "000000006");
		tap_ok(expect(&r, "000000006: not checked", T_SHORT), "the next number");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000006.jpg", T_SHORT), "and its shot");
		tap_ok(harness_dir_is(r.dir, "000000005.jpg 000000006.jpg"), "both named locally");
		tap_ok(since(&r, down_from, "Specify cannot be reached: keep shooting") ||
		       expect(&r, "Specify cannot be reached: keep shooting", T_SHORT),
		       "the station says Specify cannot be reached");
		tap_ok(nothing_of("000000005.jpg") && nothing_of("000000006.jpg"),
		       "nothing reached Specify meanwhile");
		tap_ok(faults_reset(), "Specify is back");
		struct two_names t = { "000000005.jpg", "000000006.jpg", 5, 6 };
		tap_ok(wait_until(&r, both_attached, &t, T_LONG), "both end attached");
		tap_ok(attached_once(&r, "000000005.jpg", 5, 1), "000000005.jpg once, on 5, same bytes");
		tap_ok(attached_once(&r, "000000006.jpg", 6, 1), "000000006.jpg once, on 6, same bytes");
		tap_ok(expect(&r, "Specify is reachable again", T_SHORT),
		       "the station says Specify is back");
	}
	faults_reset();
	station_end(&r);
}

/* 7. The cable goes mid-transfer: the shot still arrives, once. */
static void test_disconnect(void)
{
	struct station_run r;

	tap_diag("camera disconnect mid-transfer");
	/* The camera's bytes as they came: no stamp grows the file. */
	const char *const unstamped[] = { "--no-stamp", NULL };
	if (station_start(&r, "disconnect", true, unstamped)) {
		tap_ok(cam_ok(&r, "payload jpeg 300000"), "shots of 300000 bytes");
		tap_ok(scan_found(&r, "000000007"), "the scan is found");
		tap_ok(cam_ok(&r, "fault disconnect-after 100000"),
		       "the camera will hang up after 100000 bytes");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000007.jpg", T_LONG), "the shot arrives after "
		       "the reconnect");
		tap_ok(attached_once(&r, "000000007.jpg", 7, T_LONG), "attached once, same bytes");
		tap_ok(harness_dir_is(r.dir, "000000007.jpg"), "one file, no leftovers");
		struct stat sb;
		tap_ok(stat(local(&r, "000000007.jpg"), &sb) == 0 && sb.st_size == 300000,
		       "all 300000 bytes");
		tap_ok(!printed(&r, "captured 000000007_2"), "no second copy");
	}
	station_end(&r);
}

/* 7b. The cable goes between shots: the station reopens the camera and
 * says so at once (camera ✓), not only at the next capture. */
static void test_reconnect(void)
{
	struct station_run r;

	tap_diag("camera reconnect between shots");
	if (station_start(&r, "reconnect", true, NULL)) {
		tap_ok(cam_ok(&r, "fault off 3"), "the camera is off for 3 s, nothing in flight");
		tap_ok(expect(&r, "camera disconnected", T_SHORT), "the station says it is gone");
		tap_ok(expect(&r, "camera ✗", T_SHORT), "the status line shows camera ✗");
		tap_ok(expect(&r, "camera: PTP/IP Camera ready", T_SHORT),
		       "the reopen says camera … ready");
		tap_ok(expect(&r, "camera ✓", T_SHORT), "and the status line camera ✓");
		tap_ok(scan_found(&r, "000000012"), "the scan is found");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000012", T_SHORT), "Enter shoots again");
	}
	station_end(&r);
}

/* 7d. A shot the camera announced and never delivered (the cable went
 * mid-download and stayed out): q says it is on the card, with its name
 * and number; the next start says so first and brings it in under the
 * card's name for a person, never guessed onto a record; then it is
 * settled and no later start mentions it. */
static void test_card_left(void)
{
	struct station_run r, again;
	const char *const unstamped[] = { "--no-stamp", NULL };

	tap_diag("a shot left on the camera's card");
	if (!station_start(&r, "card-left", true, unstamped)) {
		station_end(&r);
		return;
	}
	tap_ok(cam_ok(&r, "payload jpeg 300000"), "shots of 300000 bytes");
	tap_ok(scan_found(&r, "000000009"), "the scan is found");
	tap_ok(cam_ok(&r, "fault disconnect-after 100000 off 600"),
	       "the camera will go away mid-download, for 10 minutes");
	send_line(&r, "");
	tap_ok(expect(&r, "camera disconnected", T_SHORT), "the station says it is gone");
	size_t from = r.mark;
	int rc = station_quit(&r, T_LONG);
	tap_ok(since(&r, from, "1 shot of this session never downloaded and is still on the "
		     "card of the camera (PTP/IP Camera): IMG_0001.JPG (fired for 000000009)"),
	       "q says the shot stays on the card: its name and its number");
	tap_is_int(rc, 0, "the station exits 0 (no leaks)");
	tap_ok(harness_dir_is(r.dir, ""), "nothing of it in the session folder");
	ptpip_cam *cam = r.cam;
	char *reply = ptpip_cam_control(cam, "fault clear");
	tap_ok(reply && !strncmp(reply, "OK", 2), "the camera is back");
	free(reply);
	close(r.master);
	free(r.out);

	if (station_start_on(&again, "card-left", cam, unstamped)) {
		tap_ok(since(&again, 0, "NOTE: 1 shot of an earlier session never downloaded") &&
		       since(&again, 0, "IMG_0001.JPG (fired for 000000009)"),
		       "the next start says so first");
		tap_ok(expect(&again, "bringing in 1 shot an earlier session left on the card: "
			      "IMG_0001.JPG", T_SHORT), "and brings it in");
		tap_ok(expect(&again, "NOT ATTACHED IMG_0001.JPG", T_LONG),
		       "under the card's name, a problem for a person to check");
		struct stat sb;
		tap_ok(stat(local(&again, "IMG_0001.JPG"), &sb) == 0 && sb.st_size == 300000,
		       "all 300000 bytes are here");
		tap_is_int(journal_state_of(local(&again, "IMG_0001.JPG")), JS_UNMATCHED,
			   "journaled, unmatched");
		tap_ok(nothing_of("IMG_0001.JPG") && !printed(&again, "captured 000000009"),
		       "nothing guessed onto a record");
	}
	station_end(&again);

	if (station_start(&r, "card-left", false, NULL))
		tap_ok(!since(&r, 0, "never downloaded"), "settled: the next start is quiet");
	station_end(&r);
}

/* 7e. A shot erased on the camera before it came: a problem that says so,
 * at once. */
static void test_card_erased(void)
{
	struct station_run r;
	unsigned handle = 0;

	tap_diag("a shot erased on the camera before it came");
	if (station_start(&r, "card-erased", true, NULL)) {
		tap_ok(cam_ok(&r, "payload jpeg 300000"), "shots of 300000 bytes");
		tap_ok(scan_found(&r, "000000010"), "the scan is found");
		tap_ok(cam_ok(&r, "fault disconnect-after 100000 off 3"),
		       "the camera will go away mid-download, for 3 s");
		send_line(&r, "");
		tap_ok(expect(&r, "camera disconnected", T_SHORT), "the station says it is gone");
		char *list = cam(&r, "list"), cmd[64];
		tap_ok(list && sscanf(list, "OK %u:", &handle) == 1, "the card lists the shot");
		free(list);
		snprintf(cmd, sizeof cmd, "erase %u", handle);
		tap_ok(cam_ok(&r, cmd), "someone erases it on the camera meanwhile");
		tap_ok(expect(&r, "LOST IMG_0001.JPG (fired for 000000010): it is no longer on "
			      "the camera's card", T_LONG), "the station says it is lost, and which");
		tap_ok(expect(&r, "problems 1", T_SHORT), "it counts as a problem");
		size_t from = r.mark;
		station_quit(&r, T_LONG);
		tap_ok(!since(&r, from, "never downloaded"), "and is not said to be on the card");
	}
	station_end(&r);
}

/* 7c. The camera refuses a shot (PTP GeneralError): it is not called a
 * lost connection; the camera stays ✓ and the next Enter shoots. */
static void test_camera_refuses(void)
{
	struct station_run r;

	tap_diag("camera answers GeneralError");
	if (station_start(&r, "refuses", true, NULL)) {
		tap_ok(scan_found(&r, "000000011"), "the scan is found");
		tap_ok(cam_ok(&r, "fault general-error"), "the next capture is refused");
		size_t from = r.mark;
		send_line(&r, "");
		tap_ok(expect(&r, "SHUTTER FAILED", T_SHORT), "the shutter failed");
		tap_ok(expect(&r, "General Error", T_SHORT), "says what the camera answered");
		tap_ok(!since(&r, from, "disconnected") && !since(&r, from, "check the cable"),
		       "not called a lost connection");
		tap_ok(expect(&r, "camera ✓", T_SHORT), "the camera stays ✓");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000011", T_SHORT), "the next Enter shoots");
	}
	station_end(&r);
}

/* 8. A serial scanner on a second pty: its scan is the current number;
 * the terminal still takes keys. */
static void test_serial_scanner(void)
{
	struct station_run r;
	int m = -1, s = -1;
	char slave[256];

	tap_diag("scanner over a pty");
	if (openpty(&m, &s, slave, NULL, NULL)) {
		tap_ok(0, "openpty: %s", strerror(errno));
		return;
	}
	fcntl(m, F_SETFD, FD_CLOEXEC);
	fcntl(s, F_SETFD, FD_CLOEXEC);
	const char *extra[] = { "--scanner", slave, NULL };
	if (station_start(&r, "scanner", true, extra)) {
		tap_ok(write(m, "000000004\r\n", 11) == 11, "the scanner sends 000000004 CR LF");
		tap_ok(expect(&r, "000000004  ", T_SHORT) && expect(&r, " image", T_SHORT),
		       "the scan is the current number, found");
		send_line(&r, "");
		bool keys = expect_captured(&r, "000000004.jpg", 5);
		tap_ok(keys, "Enter at the terminal shoots while a scanner is in use");
		if (!keys) {
			/* The terminal is not read: go on with the camera's
			 * button to check the naming at least. */
			tap_ok(cam_ok(&r, "press jpeg"), "(the camera's button instead)");
			tap_ok(expect_captured(&r, "000000004.jpg", T_SHORT), "captured");
		}
		tap_ok(attached_once(&r, "000000004.jpg", 4, T_LONG),
		       "named from the scanned number and attached to 4");
		/* q at the terminal; if the terminal is not read, from the scanner. */
		send_line(&r, "q");
		if (!reap(&r, 5)) {
			tap_ok(0, "q at the terminal quits");
			if (write(m, "q\r\n", 3) != 3)
				tap_diag("cannot write to the scanner");
		} else {
			tap_ok(1, "q at the terminal quits");
		}
	}
	station_end(&r);
	close(m);
	close(s);
}

/* 9. Undo: the attachment goes from Specify, the file from the folder. */
static void test_undo(void)
{
	struct station_run r;

	tap_diag("undo");
	if (station_start(&r, "undo", true, NULL)) {
		tap_ok(scan_found(&r, "000000009"), "the scan is found");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000009.jpg", T_SHORT), "captured");
		tap_ok(attached_once(&r, "000000009.jpg", 9, T_LONG), "attached");
		tap_ok(expect(&r, "attached ✓ 000000009.jpg", T_SHORT), "the station says so");
		send_line(&r, "u");
		tap_ok(expect(&r, "taken back: 000000009.jpg", T_LONG), "u: taken back");
		tap_ok(nothing_of("000000009.jpg"), "the attachment is gone from Specify");
		tap_ok(!exists(local(&r, "000000009.jpg")), "the local file is deleted");
		tap_is_int(journal_state_of(local(&r, "000000009.jpg")), JS_ROLLED_BACK,
			   "the journal has it rolled back");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000009.jpg", T_SHORT),
		       "the next shot takes the name back");
		tap_ok(attached_once(&r, "000000009.jpg", 9, T_LONG), "and is attached");
	}
	station_end(&r);
}

/* 10. Quit while Specify is away: the capture waits in the journal and the
 * next start attaches it. */
static void test_quit_offline(void)
{
	struct station_run r, again;
	int rc;

	tap_diag("quit while Specify is down; the next start attaches");
	if (!hs.standin) {
		tap_ok(1, "# SKIP needs the stand-in's fault switches");
		return;
	}
	if (station_start(&r, "offline", true, NULL)) {
		tap_ok(scan_found(&r, "000000010"), "the scan is found");
		tap_ok(faults(SPECIFY_DOWN), "Specify goes down");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000010.jpg", T_SHORT), "captured");
		send_line(&r, "q");
		/* Offline already: it leaves at once; else a second q leaves. */
		if (!expect(&r, "wait in the journal", 5)) {
			send_line(&r, "q");
			expect(&r, "wait in the journal", T_SHORT);
		}
		rc = reap(&r, T_SHORT) ? r.status : -1;
		tap_is_int(rc, 0, "the station quits, exit 0");
		tap_ok(r.out && strstr(r.out, "1 capture(s) wait in the journal"),
		       "and says 1 capture waits in the journal");
		int js = journal_state_of(local(&r, "000000010.jpg"));
		tap_ok(js >= 0 && !journal_state_is_final((enum journal_state)js),
		       "the journal holds it, not final (%s)",
		       js >= 0 ? journal_state_name((enum journal_state)js) : "missing");
		tap_ok(nothing_of("000000010.jpg"), "not in Specify");
	}
	faults_reset();
	station_end(&r);

	if (station_start(&again, "offline-again", true, NULL)) {
		struct want_attached w = { "000000010.jpg", 10 };
		tap_ok(wait_until(&again, is_attached, &w, T_LONG),
		       "the next start attaches the capture of the last");
		struct att_count c = attached("000000010.jpg", 10, NULL);
		tap_ok(c.joined == 1 && !c.on_other && !c.orphans, "once, on 10");
		char path[700];
		snprintf(path, sizeof path, "%s/offline/000000010.jpg", harness_home());
		tap_ok(attached("000000010.jpg", 10, path).bytes_same, "with the file's bytes");
		tap_is_int(journal_state_soon(path, JS_ATTACHED), JS_ATTACHED,
			   "the journal has it attached");
	}
	station_end(&again);
}

/* 11. A start while Specify is away: with the catalog-number format saved
 * at an earlier start it shoots and names, and attaches once Specify is
 * back; without one it says what is needed. */
static void test_start_offline(void)
{
	struct station_run r;
	char cache[600];

	tap_diag("start while Specify is down");
	if (!hs.standin) {
		tap_ok(1, "# SKIP needs the stand-in's fault switches");
		return;
	}
	snprintf(cache, sizeof cache, "%s/cache-offline", harness_home());
	setenv("XDG_CACHE_HOME", cache, 1);
	tap_ok(faults(SPECIFY_DOWN), "Specify goes down");
	memset(&r, 0, sizeof r);
	const char *args[] = { "station", "--server", hs.url,
			       "--user", hs.user, "--collection", hs.collection,
			       "--dir", cache, NULL };
	char *out = NULL;
	int rc = harness_run(args, NULL, &out);
	tap_ok(rc != 0 && out && strstr(out, "only after one start with it"),
	       "without a saved format it does not start, and says why (exit %d)", rc);
	if (rc == 0 || !out || !strstr(out, "only after one start"))
		tap_diag("output: %s", out ? out : "(none)");
	free(out);
	faults_reset();

	if (station_start(&r, "saved-format", false, NULL))
		tap_ok(1, "a start with Specify saves the format");
	station_end(&r);

	tap_ok(faults(SPECIFY_DOWN), "Specify goes down again");
	if (station_start(&r, "start-offline", true, NULL)) {
		tap_ok(since(&r, 0, "OFFLINE") && since(&r, 0, "catalog numbers"),
		       "it starts offline and says so, with the saved format");
		send_line(&r, "000000011");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000011.jpg", T_SHORT),
		       "a scanned number is shot and named offline");
		send_line(&r, "V11");
		tap_ok(expect(&r, "NOT A CATALOG NUMBER", T_SHORT),
		       "the saved format still refuses what is no catalog number");
		tap_ok(faults_reset(), "Specify is back");
		struct want_attached w = { "000000011.jpg", 11 };
		tap_ok(wait_until(&r, is_attached, &w, T_LONG), "the capture is attached");
		struct att_count c = attached("000000011.jpg", 11, NULL);
		tap_ok(c.joined == 1 && !c.on_other && !c.orphans, "once, on 11");
	}
	faults_reset();
	station_end(&r);
	unsetenv("XDG_CACHE_HOME");
}

/* --- identity, RAW policy and the label (issue 7) ----------------------- */

/* Runs a program and returns its trimmed stdout (malloc'd), or NULL when
 * it fails. */
static char *tool(const char *const *argv)
{
	char *out = NULL;

	if (harness_run_program(argv, &out) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* One tag as exiftool (an independent reader) prints it, or NULL. */
static char *exif_tag(const char *path, const char *tag)
{
	char arg[64];
	snprintf(arg, sizeof arg, "-%s", tag);
	return tool((const char *const[]){ "exiftool", "-s3", arg, path, NULL });
}

/* A photo of a specimen whose label carries number as Code 128, with the
 * camera's EXIF (Make, Model, DateTimeOriginal) as exiftool writes it. */
static bool label_photo(const char *path, const char *number)
{
	char *out = tool((const char *const[]){ MKBARCODE_EXE, "--size", "1600x1200",
						"--module", "4", number, path, NULL });
	bool ok = out != NULL;

	free(out);
	out = ok ? tool((const char *const[]){ "exiftool", "-q", "-overwrite_original",
					       "-Make=Canon", "-Model=Canon EOS R5",
					       "-DateTimeOriginal=2026:11:25 10:30:00",
					       path, NULL }) : NULL;
	ok = out != NULL;
	free(out);
	return ok;
}

static bool field_is(const cJSON *a, const char *key, const char *want)
{
	const char *got = cJSON_GetStringValue(cJSON_GetObjectItem(a, key));
	bool same = got && !strcmp(got, want);

	if (!same)
		tap_diag("attachment %s: got '%s', want '%s'", key, got ? got : "(null)", want);
	return same;
}

/* 12. The identity goes into the files: the catalog number into the JPEG's
 * EXIF, an XMP sidecar beside the RAW (which stays as the camera made
 * it), the attachment's fields from EXIF and the configuration; the JPEG
 * reaches Specify first. */
static void test_identity(void)
{
	struct station_run r;
	char photo[600], config[600];

	tap_diag("identity: EXIF stamp, XMP sidecar, attachment fields, JPEG first");
	snprintf(photo, sizeof photo, "%s/identity-photo.jpg", harness_home());
	snprintf(config, sizeof config, "%s/identity.conf", harness_home());
	FILE *f = fopen(config, "w");
	if (f) {
		fputs("license = CC BY 4.0\ncredit = Natural History Museum\n"
		      "title = {identifier} shot {date}\nstation-name = stand-3\n", f);
		fclose(f);
	}
	if (!tap_ok(label_photo(photo, "000000012"), "a labelled photo with camera EXIF"))
		return;
	const char *const extra[] = { "--config", config, NULL };
	if (station_start(&r, "identity", true, extra)) {
		char cmd[700];
		snprintf(cmd, sizeof cmd, "payload raw+jpeg 300000 file %s", photo);
		tap_ok(cam_ok(&r, cmd), "the camera shoots RAW + the labelled JPEG");
		tap_ok(scan_found(&r, "000000012"), "the scan is found");
		send_line(&r, "");
		tap_ok(attached_once(&r, "000000012.jpg", 12, T_LONG), "the JPEG is attached");
		tap_ok(attached_once(&r, "000000012.cr2", 12, T_LONG), "the RAW is attached");

		const char *jpeg = local(&r, "000000012.jpg");
		char *desc = exif_tag(jpeg, "ImageDescription");
		char *comment = exif_tag(jpeg, "UserComment");
		char *model = exif_tag(jpeg, "Model");
		tap_is_str(desc, "000000012", "exiftool reads the catalog number in ImageDescription");
		tap_ok(comment && strstr(comment, "000000012") && strstr(comment, hs.collection) &&
		       strstr(comment, "stand-3"),
		       "UserComment names number, collection and station: %s",
		       comment ? comment : "(none)");
		tap_is_str(model, "Canon EOS R5", "the camera's own EXIF is kept");
		free(desc);
		free(comment);
		free(model);

		char *xmp_id = exif_tag(local(&r, "000000012.xmp"), "Identifier");
		tap_is_str(xmp_id, "000000012", "exiftool reads the identifier in the RAW's sidecar");
		free(xmp_id);
		char *raw_desc = exif_tag(local(&r, "000000012.cr2"), "ImageDescription");
		tap_ok(raw_desc && !strncmp(raw_desc, "ptpip-camera IMG_", 17) &&
		       strstr(raw_desc, ".CR2 shot "),
		       "the RAW file is the camera's, untouched: its own description (%s)",
		       raw_desc ? raw_desc : "(none)");
		free(raw_desc);

		cJSON *a = harness_attachment_of(&hs, "000000012.jpg", 12, NULL);
		tap_ok(a && field_is(a, "license", "CC BY 4.0") &&
		       field_is(a, "credit", "Natural History Museum"),
		       "license and credit come from the configuration");
		tap_ok(a && field_is(a, "capturedevice", "Canon EOS R5") &&
		       field_is(a, "dateimaged", "2026-11-25 10:30:00") &&
		       field_is(a, "filecreateddate", "2026-11-25T00:00:00"),
		       "capture device, date imaged and file date come from EXIF");
		tap_ok(a && field_is(a, "title", "000000012 shot 2026-11-25"),
		       "the title follows the configured pattern");
		cJSON_Delete(a);
		a = harness_attachment_of(&hs, "000000012.cr2", 12, NULL);
		tap_ok(a && field_is(a, "capturedevice", "Canon EOS R5"),
		       "the RAW takes its JPEG's EXIF");
		cJSON_Delete(a);

		/* The two go up side by side (the JPEG handed out first); its
		 * ordinal is what puts it first in Specify. */
		int oj = ordinal_of("000000012.jpg", 12), orw = ordinal_of("000000012.cr2", 12);
		tap_ok(oj >= 0 && orw > oj, "the JPEG takes the pair's first place (ordinals %d, %d)",
		       oj, orw);
	}
	station_end(&r);
}

/* 13. --raw local keeps the RAW here; --raw later sends it after. */
static void test_raw_policy(void)
{
	struct station_run r;

	tap_diag("RAW policy: local, later");
	const char *const keep[] = { "--raw", "local", NULL };
	if (station_start(&r, "raw-local", true, keep)) {
		tap_ok(cam_ok(&r, "payload raw+jpeg 300000"), "RAW+JPEG");
		tap_ok(scan_found(&r, "000000123"), "the scan is found");
		send_line(&r, "");
		tap_ok(attached_once(&r, "000000123.jpg", 13, T_LONG), "the JPEG is attached");
		tap_is_int(journal_state_of(local(&r, "000000123.cr2")), JS_LOCAL,
			   "the RAW is journaled as kept local");
		tap_ok(exists(local(&r, "000000123.cr2")), "and stays in the session folder");
		tap_is_int(attached("000000123.cr2", 13, NULL).joined +
			   attached("000000123.cr2", 13, NULL).orphans, 0, "not sent to Specify");
	}
	station_end(&r);

	const char *const later[] = { "--raw", "later", NULL };
	if (station_start(&r, "raw-later", true, later)) {
		tap_ok(cam_ok(&r, "payload raw+jpeg 300000"), "RAW+JPEG");
		tap_ok(scan_found(&r, "000000123"), "the scan is found");
		send_line(&r, "");
		tap_ok(expect_captured(&r, "000000123_2.", T_SHORT), "named after the record's image");
		tap_ok(attached_once(&r, "000000123_2.jpg", 13, T_LONG), "the JPEG is attached");
		tap_ok(attached_once(&r, "000000123_2.cr2", 13, T_LONG),
		       "the RAW follows once nothing else waits");
		char *h = history_of(local(&r, "000000123_2.cr2"));
		tap_ok(h && !strncmp(h, "captured deferred ", 18), "it was deferred first: %s",
		       h ? h : "(none)");
		free(h);
	}
	station_end(&r);
}

/* 14. --label check: a label that says another number holds the capture
 * until the technician keeps the scan (c) or takes the label's (l). */
static void test_label_check(void)
{
	struct station_run r;
	char photo[600], cmd[700];

	tap_diag("label check: held on a mismatch, then decided");
	snprintf(photo, sizeof photo, "%s/label-12345.jpg", harness_home());
	if (!tap_ok(label_photo(photo, "000012345"), "a photo whose label says 000012345"))
		return;
	const char *const args[] = { "--label", "check", NULL };
	if (!barcode_available()) {
		char *out = NULL;
		const char *const argv[] = { "station", "--server", hs.url, "--user", hs.user,
					     "--collection", hs.collection, "--label", "check",
					     NULL };
		int rc = harness_run(argv, NULL, &out);
		tap_ok(rc != 0 && out && strstr(out, "zbar"),
		       "without zbar, --label says what the build lacks");
		free(out);
		tap_ok(1, "# SKIP built without zbar");
		return;
	}
	if (station_start(&r, "label", true, args)) {
		snprintf(cmd, sizeof cmd, "payload jpeg file %s", photo);
		tap_ok(cam_ok(&r, cmd), "the camera shoots the labelled photo");

		tap_ok(scan_found(&r, "000012345"), "scan the number on the label");
		send_line(&r, "");
		tap_ok(attached_once(&r, "000012345.jpg", 14, T_LONG),
		       "label and scan agree: attached as usual");

		tap_ok(scan_found(&r, "000000011"), "scan another number");
		send_line(&r, "");
		tap_ok(expect(&r, "HELD 000000011_2.jpg: LABEL MISMATCH: the label reads "
			      "000012345 but 000000011 was scanned", T_SHORT),
		       "the capture is held, loudly");
		tap_is_int(journal_state_of(local(&r, "000000011_2.jpg")), JS_HELD,
			   "the journal holds it");
		send_line(&r, "l");
		tap_ok(expect(&r, "was held a moment ago: check that it is the one you decide",
			      T_SHORT), "a key the moment a capture is held is not taken: it may "
		       "have been meant for another");
		nap(1.2);
		send_line(&r, "l");
		tap_ok(attached_once(&r, "000012345_2.jpg", 14, T_LONG),
		       "l: renamed to the label's number and attached to its record");
		tap_ok(!exists(local(&r, "000000011_2.jpg")), "the old name is gone");
		tap_ok(nothing_of("000000011_2.jpg"), "nothing went to 11");

		tap_ok(scan_found(&r, "000000011"), "scan 11 again");
		send_line(&r, "");
		tap_ok(expect(&r, "LABEL MISMATCH", T_SHORT), "held again");
		nap(1.2);
		send_line(&r, "c");
		tap_ok(attached_once(&r, "000000011_2.jpg", 11, T_LONG),
		       "c: the scanned number stands, attached to 11");
		char *desc = exif_tag(local(&r, "000000011_2.jpg"), "ImageDescription");
		tap_is_str(desc, "000000011", "and its EXIF says so");
		free(desc);
		send_line(&r, "c");
		tap_ok(expect(&r, "no capture is held", T_SHORT), "c with nothing held says so");

		/* Held when the station quits: the next start shows it, and
		 * l still takes the label's number. */
		shoot_then_quit(&r, "000000011", "LABEL MISMATCH", "held once more, then quit");
	}
	station_end(&r);
	if (station_start(&r, "label", true, args)) {
		char name[64] = "";
		double end = harness_now() + T_SHORT;
		while (!since(&r, 0, "HELD 000000011_") && harness_now() < end)
			pump(&r, 200);
		const char *held = r.out ? strstr(r.out, "HELD 000000011_") : NULL;
		if (held)
			sscanf(held + 5, "%63[^:]", name);
		tap_ok(!strncmp(name, "000000011_", 10) && since(&r, 0, "the label reads 000012345"),
		       "the next start shows the capture held before: %s", name);
		nap(1.2);
		send_line(&r, "l");
		tap_ok(expect(&r, "held capture renamed to its label's number", T_SHORT),
		       "l decides it");
		tap_ok(name[0] && nothing_of(name), "nothing went to 11");
		tap_ok(expect(&r, "attached ✓ 000012345_", T_LONG),
		       "attached under the label's number");
	}
	station_end(&r);
}

/* 15. --label name: no scanner; each capture is named from its label. */
static void test_name_from_label(void)
{
	struct station_run r;
	char photo[600], blank[600], cmd[700];

	tap_diag("name from the label");
	if (!barcode_available()) {
		tap_ok(1, "# SKIP built without zbar");
		return;
	}
	snprintf(photo, sizeof photo, "%s/label-12345.jpg", harness_home());
	snprintf(blank, sizeof blank, "%s/no-label.jpg", harness_home());
	char *made = tool((const char *const[]){ MKBARCODE_EXE, blank, NULL });
	tap_ok(made != NULL && label_photo(photo, "000012345"), "photos with and without a label");
	free(made);
	const char *const args[] = { "--label", "name", NULL };
	if (station_start(&r, "by-label", true, args)) {
		snprintf(cmd, sizeof cmd, "payload jpeg file %s", photo);
		tap_ok(cam_ok(&r, cmd), "the camera shoots the labelled photo");
		send_line(&r, "");
		tap_ok(expect(&r, "named from the label: 000012345_", T_SHORT),
		       "Enter shoots with nothing scanned; named from the label");
		char *names = harness_dir_names(r.dir);
		tap_ok(names && strstr(names, "000012345_") && !strstr(names, "unnamed"),
		       "the session folder has the label's name only: %s", names ? names : "");
		free(names);
		snprintf(cmd, sizeof cmd, "payload jpeg file %s", blank);
		tap_ok(cam_ok(&r, cmd), "a photo without a label");
		send_line(&r, "");
		tap_ok(expect(&r, "no catalog number found on the label", T_SHORT),
		       "no label: kept unmatched, and said so");
	}
	station_end(&r);
}

/* 17. The disk fills up as a shot comes: the station says so, the shot
 * stays on the camera, and once there is room it comes and is attached.
 * A file size limit on the station stands in for the full disk. */
static void test_disk_full(void)
{
	struct station_run r;
	struct rlimit small = { 150000, RLIM_INFINITY }, room = { RLIM_INFINITY, RLIM_INFINITY };

	tap_diag("disk full");
	if (station_start(&r, "diskfull", true, NULL)) {
		tap_ok(cam_ok(&r, "payload jpeg 1000000"), "1 MB shots");
		tap_ok(scan_found(&r, "000000011"), "the scan is found");
		tap_ok(prlimit(r.pid, RLIMIT_FSIZE, &small, NULL) == 0, "the disk is full");
		send_line(&r, "");
		tap_ok(expect(&r, "free space on the disk", T_SHORT),
		       "the station says to free space");
		tap_ok(prlimit(r.pid, RLIMIT_FSIZE, &room, NULL) == 0, "room again");
		/* Its name follows the record's images from earlier cases. */
		char name[64] = "";
		if (expect_captured(&r, "000000011", T_SHORT))
			sscanf(r.out + r.mark - strlen("000000011"), "%63[^ \r\n]", name);
		tap_ok(name[0], "the shot comes from the camera: %s", name);
		tap_ok(attached_once(&r, name, 11, T_LONG), "and is attached, whole");
	}
	station_end(&r);
}

/* The names in dir that start with prefix: how many, the first into
 * first (size bytes). */
static int names_like(const char *dir, const char *prefix, char *first, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)) && !n++)
			snprintf(first, size, "%s", de->d_name);
	if (d)
		closedir(d);
	return n;
}

/* 18. A file that reached the session folder but not the journal (a
 * crash or a full disk in between) is pointed out at the start, with the
 * command that checks and attaches it; the station's own files are not. */
static void test_unjournaled(void)
{
	struct station_run r;
	char dir[600], stray[700];

	tap_diag("a file the journal does not know");
	snprintf(dir, sizeof dir, "%s/strays", harness_home());
	snprintf(stray, sizeof stray, "%s/000000010_7.jpg", dir);
	mkdir(dir, 0755);
	FILE *f = fopen(stray, "w");
	if (f) {
		fputs("not journaled", f);
		fclose(f);
	}
	if (station_start(&r, "strays", true, NULL)) {
		tap_ok(since(&r, 0, "NOTE: 1 file in the session folder is not in the journal "
			     "(000000010_7.jpg)") && since(&r, 0, "copystand upload"),
		       "the start points it out, with copystand upload");
		shoot_then_quit(&r, "000000010", "captured 000000010", "a shot, then quit");
	}
	station_end(&r);
	if (unlink(stray) == 0 && station_start(&r, "strays", true, NULL)) {
		char shot[96] = "";
		tap_ok(!since(&r, 0, "not in the journal"),
		       "the station's own shots are in the journal: nothing to point out");
		/* Attached before the first start left, or now if its quit
		 * left it waiting: not during a later test that counts record
		 * 10's images. */
		tap_ok(names_like(dir, "000000010", shot, sizeof shot) == 1 &&
		       attached_once(&r, shot, 10, T_LONG),
		       "the first start's shot is attached (%s)", shot);
	}
	station_end(&r);
}

/* 16. Labels whose barcode carries more than the number ("UAM:Ento:",
 * a scanner's own suffix): the configured prefix and suffix go. */
static void test_scan_prefix(void)
{
	struct station_run r;
	char config[600];

	tap_diag("scan prefix and suffix from the configuration");
	snprintf(config, sizeof config, "%s/prefix.conf", harness_home());
	FILE *f = fopen(config, "w");
	if (f) {
		fputs("scan-prefix = UAM:Ento:\nscan-suffix = /\n", f);
		fclose(f);
	}
	const char *const extra[] = { "--config", config, NULL };
	if (station_start(&r, "prefix", false, extra)) {
		send_line(&r, "UAM:Ento:000000005/");
		tap_ok(expect(&r, "000000005  ", T_SHORT) && expect(&r, " image", T_SHORT),
		       "UAM:Ento:000000005/ is 000000005, found");
		tap_ok(scan_found(&r, "000000006"), "a scan without them still counts");
		send_line(&r, "UAM:Herp:000000007");
		tap_ok(expect(&r, "scan not used", T_SHORT),
		       "another collection's prefix is not a catalog number");
	}
	station_end(&r);
}

/* A fast technician at a body that takes delay seconds from press to
 * file, its clock 37 s ahead: the next label is scanned from 1 s before
 * to 2 s after each press (Enter, or the camera's button).  Each shot
 * must end on the number current when it was pressed (Enter: when it
 * was asked for): captured under it, or held offering it, and then
 * attached to it once the technician answers. */
static void race(bool enter, double delay)
{
	static const double offsets[] = { -1.0, -0.3, -0.05, 0.05, 0.1, 0.3, 1.0, 2.0 };
	static const char *const numbers[] = { "000000010", "000000011", "000000012" };
	int images[3] = { record_images(10), record_images(11), record_images(12) };
	int wrong = 0, held = 0, cur = 0;
	struct station_run r;
	char name[64], cmd[32];

	snprintf(name, sizeof name, "race-%s-%g", enter ? "enter" : "button", delay);
	tap_diag("%s: scans from -1 s to +2 s around presses, %g s to the file", name, delay);
	if (!station_start(&r, name, true, NULL))
		goto out;
	snprintf(cmd, sizeof cmd, "delay %g", delay);
	if (!tap_ok(cam_ok(&r, cmd) && cam_ok(&r, "clock 37"), "%s: the body: %s, clock 37 s "
		    "ahead", name, cmd) || !tap_ok(scan_found(&r, numbers[0]), "%s: first scan", name))
		goto out;
	/* The station reads the camera's clock a few times over its first
	 * seconds; shots before that are held more often, never misnamed. */
	if (!tap_ok(expect(&r, "camera: its clock is 3", T_LONG), "%s: the station learns "
		    "the camera's clock", name))
		for (char *l = strstr(r.out, "camera: "); l; l = strstr(l + 1, "camera: "))
			tap_diag("  | %.*s", (int)strcspn(l, "\r\n"), l);
	for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
		int next = (cur + 1) % 3, truth = offsets[i] < 0 ? next : cur;
		char offer[2][16] = { "", "" };

		if (offsets[i] < 0) {
			send_line(&r, numbers[next]);
			nap(-offsets[i]);
		}
		if (enter)
			send_line(&r, "");
		else
			cam_ok(&r, "press jpeg");
		if (offsets[i] > 0) {
			nap(offsets[i]);
			send_line(&r, numbers[next]);
		}
		cur = next;
		const char *got = outcome(&r, offer);
		if (!strcmp(got, "HELD")) {
			held++;
			bool before = !strcmp(offer[0], numbers[truth]);
			if (!before && strcmp(offer[1], numbers[truth])) {
				wrong++;
				tap_diag("%s: a shot of %s held as %s or %s", name, numbers[truth],
					 offer[0], offer[1]);
				continue;
			}
			nap(1.2);
			send_line(&r, before ? "p" : "n");
			got = outcome(&r, NULL);
		}
		if (strcmp(got, numbers[truth])) {
			wrong++;
			tap_diag("%s: a shot pressed %+.2f s from the scan of %s went to %s", name,
				 offsets[i], numbers[next], got);
		}
		images[truth]++;
	}
	tap_is_int(wrong, 0, "no shot for the wrong number");
	tap_diag("%s: %d of %zu shots held, each answered", name, held,
		 sizeof offsets / sizeof *offsets);
	if (enter)
		tap_is_int(held, 0, "a shot fired with Enter is never held: its number is that of "
			   "the moment Enter was pressed");
	for (int k = 0; k < 3; k++) {
		double end = harness_now() + T_LONG;
		while (record_images(10 + k) < images[k] && harness_now() < end)
			pump(&r, 200);
		int got = record_images(10 + k);
		tap_ok(got == images[k], "Specify holds each shot of record %d once, on it (%d, "
		       "want %d)", 10 + k, got, images[k]);
	}
out:
	station_end(&r);
}

static void test_races(void)
{
	race(true, 0.1);
	race(true, 2.0);
	race(false, 0.1);
	race(false, 2.0);
}

/* --- a watched folder (issue 16) ------------------------------------------- */

/* Writes src to dst as a capture program does: in chunks, pause_s apart
 * (a child process, so the station sees a file grow); under tmp first and
 * renamed when tmp is given.  The child's pid, or -1. */
static pid_t write_slowly(const char *src, const char *dst, const char *tmp, int chunks,
			  double pause_s)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	FILE *in = fopen(src, "rb"), *out = fopen(tmp ? tmp : dst, "wb");
	if (!in || !out)
		_exit(1);
	fseek(in, 0, SEEK_END);
	long size = ftell(in), step = size / chunks + 1;
	rewind(in);
	char *buf = malloc((size_t)step);
	size_t n;
	while (buf && (n = fread(buf, 1, (size_t)step, in)) > 0) {
		fwrite(buf, 1, n, out);
		fflush(out);
		nanosleep(&(struct timespec){ .tv_sec = (time_t)pause_s,
					      .tv_nsec = (long)((pause_s - (time_t)pause_s) * 1e9) },
			  NULL);
	}
	free(buf);
	fclose(in);
	_exit(fclose(out) == 0 && (!tmp || rename(tmp, dst) == 0) ? 0 : 1);
}

static bool child_ok(pid_t pid)
{
	int status;

	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	       WEXITSTATUS(status) == 0;
}

/* Waits until the station attached a file to number, answering n (the
 * number after the scan) for a capture it holds: the watched folder, like
 * a hook, has no camera clock the station could read. */
static bool watched_attached(struct station_run *r, const char *number, char *name,
			     size_t size)
{
	double end = harness_now() + T_LONG;
	char want[64];

	snprintf(want, sizeof want, "attached ✓ %s", number);
	while (harness_now() < end) {
		pump(r, 200);
		const char *at = r->out ? strstr(r->out + r->mark, want) : NULL;
		if (at) {
			snprintf(name, size, "%.*s", (int)strcspn(at + strlen("attached ✓ "), " \r\n"),
				 at + strlen("attached ✓ "));
			r->mark = (size_t)(at - r->out) + strlen(want);
			return true;
		}
		if (r->out && strstr(r->out + r->mark, "HELD pending_")) {
			r->mark = (size_t)(strstr(r->out + r->mark, "HELD pending_") - r->out) + 5;
			nap(0.6);       /* a decision is refused the moment one is held */
			send_line(r, "n");
		}
	}
	show_tail(r, "watched");
	return false;
}

/* photo with COM segments of 'x' put after its SOI until it is at least
 * size bytes, as dst: a JPEG as whole as photo, as large as wanted.  The
 * offset of the last segment's payload into *last. */
static bool pad_jpeg(const char *photo, const char *dst, long size, long *last)
{
	FILE *in = fopen(photo, "rb"), *out = fopen(dst, "wb");
	static unsigned char seg[4 + 65533];
	bool ok = in && out && fgetc(in) == 0xFF && fgetc(in) == 0xD8 &&
		  fputc(0xFF, out) != EOF && fputc(0xD8, out) != EOF;
	int c;

	memset(seg, 'x', sizeof seg);
	seg[0] = 0xFF, seg[1] = 0xFE, seg[2] = 0xFF, seg[3] = 0xFF;  /* length 65535 */
	for (long at = 2; ok && at < size; at += (long)sizeof seg) {
		*last = at + 4;
		ok = fwrite(seg, 1, sizeof seg, out) == sizeof seg;
	}
	while (ok && (c = fgetc(in)) != EOF)
		ok = fputc(c, out) != EOF;
	if (in)
		fclose(in);
	return out && fclose(out) == 0 && ok;
}

/* photo as another shot, into dst: k segments of padding after its SOI.
 * No two shots have the same bytes, and a station refuses an image that
 * it or an earlier session took. */
static bool new_shot(const char *photo, const char *dst, int k)
{
	long last;

	return pad_jpeg(photo, dst, 2 + (long)k * 65537, &last);
}

/* --watch-keep move from a folder on another filesystem (/dev/shm, a
 * tmpfs, where the session's is elsewhere): copied, the copy journaled,
 * then the program's file removed. */
static void test_watch_move_elsewhere(const char *photo)
{
	struct station_run r;
	char dir[] = "/dev/shm/copystand-watch-XXXXXX", a[200], name[96] = "", shot[700];
	struct stat shm, home, was, now;

	snprintf(shot, sizeof shot, "%s/shot-elsewhere.jpg", harness_home());
	if (stat("/dev/shm", &shm) < 0 || stat(harness_home(), &home) < 0 ||
	    shm.st_dev == home.st_dev || !new_shot(photo, shot, 3) || !mkdtemp(dir)) {
		tap_ok(1, "move across filesystems # SKIP no /dev/shm on a filesystem of its own");
		return;
	}
	snprintf(a, sizeof a, "%s/IMG_0001.JPG", dir);
	const char *const moving[] = { "--watch", dir, "--no-stamp", "--watch-keep", "move", NULL };
	if (station_start(&r, "watch-elsewhere", false, moving)) {
		tap_ok(scan_found(&r, "000000006"), "the scan is found");
		tap_ok(child_ok(write_slowly(shot, a, NULL, 1, 0)) && stat(a, &was) == 0,
		       "a file is written into a folder on another filesystem");
		tap_ok(watched_attached(&r, "000000006", name, sizeof name), "it is attached (%s)",
		       name);
		tap_ok(!exists(a) && stat(local(&r, name), &now) == 0 && now.st_ino != was.st_ino &&
		       harness_same_file(local(&r, name), shot),
		       "copied into the session whole, then removed from the folder");
	}
	station_end(&r);
	unlink(a);
	rmdir(dir);
}

/* --watch-keep move, and the station killed (kill -9) after it renamed a
 * file into the session but before that was journaled (the journal kept
 * busy by this process meanwhile): nothing is lost; the file is in the
 * session folder, whole, and the next start points it out. */
static void test_watch_move_killed(const char *photo)
{
	struct station_run r;
	char dir[600], a[700], shot[700], pending[256] = "";
	sqlite3 *db = NULL;
	bool renamed = false;

	snprintf(shot, sizeof shot, "%s/shot-killed.jpg", harness_home());
	if (!tap_ok(new_shot(photo, shot, 4), "a photo of its own (one taken before is "
		    "refused, not journaled in any case)"))
		return;
	photo = shot;
	char *jpath = journal_default_path(NULL);
	snprintf(dir, sizeof dir, "%s/watched-killed", harness_home());
	snprintf(a, sizeof a, "%s/IMG_0001.JPG", dir);
	mkdir(dir, 0755);
	const char *const moving[] = { "--watch", dir, "--no-stamp", "--watch-keep", "move", NULL };
	if (station_start(&r, "watch-killed", false, moving)) {
		tap_ok(scan_found(&r, "000000006"), "the scan is found");
		tap_ok(jpath && sqlite3_open(jpath, &db) == SQLITE_OK &&
		       sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
		       "the journal is kept busy");
		tap_ok(child_ok(write_slowly(photo, a, NULL, 1, 0)), "a file is written");
		for (double end = harness_now() + T_SHORT; harness_now() < end && !renamed;
		     nap(0.01))
			renamed = !exists(a) && names_like(r.dir, "pending_", pending,
							    sizeof pending) == 1;
		tap_ok(renamed, "it leaves the watched folder for the session folder (%s) "
		       "before it is journaled", pending);
		kill(r.pid, SIGKILL);
		tap_ok(reap(&r, T_SHORT), "the station is killed");
		r.pid = -1;
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(db);
		tap_ok(pending[0] && harness_same_file(local(&r, pending), photo),
		       "the file is whole in the session folder");
		tap_is_int(journal_state_of(local(&r, pending)), -1, "and not in the journal");
	}
	station_end(&r);
	if (pending[0] && station_start(&r, "watch-killed", false, NULL)) {
		char note[400];
		snprintf(note, sizeof note, "NOTE: 1 file in the session folder is not in the "
			 "journal (%s)", pending);
		tap_ok(since(&r, 0, note), "the next start points it out: nothing lost");
	}
	station_end(&r);
	free(jpath);
}

/* Waits for the station to start copying a file into dir (a hidden
 * temporary name appears) and for the copy to pass 1 MB; its path. */
static bool copy_under_way(int ino, const char *dir, char *tmp, size_t size)
{
	char buf[4096] __attribute__((aligned(8)));
	struct pollfd pfd = { .fd = ino, .events = POLLIN };
	struct stat st;

	tmp[0] = '\0';
	for (double end = harness_now() + T_LONG; !tmp[0] && harness_now() < end; ) {
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		ssize_t n = read(ino, buf, sizeof buf);
		for (char *p = buf; n > 0 && p < buf + n; ) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && ev->name[0] == '.')
				snprintf(tmp, size, "%s/%s", dir, ev->name);
			p += sizeof *ev + ev->len;
		}
	}
	for (double end = harness_now() + T_SHORT; tmp[0] && harness_now() < end; )
		if (stat(tmp, &st) == 0 && st.st_size > (1 << 20))
			return true;
	return false;
}

/* A capture program writes a file again while the station copies it
 * (bytes at its start, which the copy has read, and at its end, which it
 * has not): the mixed copy is not taken; the file's last version is,
 * once. */
static void test_watch_rewritten(const char *photo)
{
	struct station_run r;
	char dir[600], big[600], a[700], tmp[800], name[96] = "";
	long last = 0;
	int ino = -1;

	snprintf(dir, sizeof dir, "%s/watched-rewritten", harness_home());
	snprintf(big, sizeof big, "%s/big-photo.jpg", harness_home());
	snprintf(a, sizeof a, "%s/IMG_0003.JPG", dir);
	mkdir(dir, 0755);
	/* Its header within the 16 MB the watch reads for one. */
	if (!tap_ok(pad_jpeg(photo, big, 15L << 20, &last), "a 15 MB JPEG"))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", NULL };
	if (station_start(&r, "watch-rewritten", false, extra)) {
		tap_ok(scan_found(&r, "000000006"), "the scan is found");
		ino = inotify_init1(IN_CLOEXEC);
		tap_ok(ino >= 0 && inotify_add_watch(ino, r.dir, IN_CREATE) >= 0,
		       "the session folder is watched");
		size_t from = r.mark;
		tap_ok(child_ok(write_slowly(big, a, NULL, 1, 0)), "the program writes it");
		bool during = copy_under_way(ino, r.dir, tmp, sizeof tmp);
		int fd = open(a, O_WRONLY);
		char mark[4096];
		memset(mark, 'y', sizeof mark);
		tap_ok(during && fd >= 0 && pwrite(fd, mark, sizeof mark, 6) == sizeof mark &&
		       pwrite(fd, mark, sizeof mark, last) == sizeof mark && close(fd) == 0,
		       "and writes it again at its start and end while it is copied");
		/* The copy is checked after it is complete: still under its
		 * temporary name, it has not been checked yet. */
		bool raced = exists(tmp);
		tap_ok(watched_attached(&r, "000000006", name, sizeof name),
		       "a version of it is attached (%s)", name);
		if (raced)
			tap_ok(since(&r, from, "changed while it was being copied"),
			       "the copy made while it changed is not taken, and that is said");
		else
			tap_ok(1, "the copy made while it changed is not taken # SKIP the copy "
			       "was complete before the writes came");
		tap_ok(name[0] && (!raced || harness_same_file(local(&r, name), a)),
		       "the bytes attached are the file's last version");
		const char *took = strstr(r.out + from, "took IMG_0003.JPG");
		tap_ok(!raced || (took && !strstr(took + 1, "took IMG_0003.JPG")), "taken once");
	}
	station_end(&r);
	if (ino >= 0)
		close(ino);
	unlink(a);
	unlink(big);
}

/* photo written to path (through tmp, if not NULL) while r runs: not
 * taken, the terminal says why, and nothing is attached for it. */
static void not_taken_again(struct station_run *r, const char *photo, const char *path,
			    const char *tmp, const char *what)
{
	const char *base = strrchr(path, '/') + 1;
	char said[128], took[128];
	size_t from = r->mark;

	snprintf(said, sizeof said, "NOT TAKEN %s", base);
	snprintf(took, sizeof took, "took %s", base);
	tap_ok(child_ok(write_slowly(photo, path, tmp, 1, 0)), "%s", what);
	tap_ok(expect(r, said, T_LONG) && since(r, from, "the same bytes as"),
	       "%s is not taken, and the terminal says why", base);
	nap(2);
	tap_ok(!since(r, from, took) && !since(r, from, "attached ✓"), "nothing more is attached");
}

/* 16. A capture program that writes a shot again with the same bytes
 * (under a temporary name, then renamed over it: a new version of the
 * name) hands in no new shot: it is not attached a second time, also
 * once the station has stamped its copy (other bytes now), nor in the
 * next session to the specimen on the stand then. */
static void test_watch_same_bytes(const char *photo)
{
	struct station_run r;
	char dir[600], a[700], tmp[700], name[96] = "", shot[700];

	snprintf(shot, sizeof shot, "%s/shot-same.jpg", harness_home());
	if (!tap_ok(new_shot(photo, shot, 5), "a photo of its own"))
		return;
	photo = shot;
	snprintf(dir, sizeof dir, "%s/watched-same", harness_home());
	snprintf(a, sizeof a, "%s/IMG_0007.JPG", dir);
	snprintf(tmp, sizeof tmp, "%s/IMG_0007.JPG.tmp", dir);
	mkdir(dir, 0755);
	const char *const extra[] = { "--watch", dir, NULL };
	if (station_start(&r, "watch-same", false, extra)) {
		tap_ok(scan_found(&r, "000000006"), "the scan is found");
		tap_ok(child_ok(write_slowly(photo, a, NULL, 1, 0)), "the program writes IMG_0007.JPG");
		tap_ok(watched_attached(&r, "000000006", name, sizeof name),
		       "it is attached (%s)", name);
		not_taken_again(&r, photo, a, tmp, "and writes the same bytes again under a "
				"temporary name, renamed over it");
		tap_ok(attached_once(&r, name, 6, 1), "the first stays attached once");
	}
	station_end(&r);
	unlink(a);

	/* The next day's session: the same image copied into the folder is
	 * no new shot of the specimen now on the stand. */
	snprintf(a, sizeof a, "%s/IMG_0008.JPG", dir);
	if (station_start(&r, "watch-same-next", false, extra)) {
		tap_ok(scan_found(&r, "000000007"), "another session, another specimen");
		not_taken_again(&r, photo, a, NULL, "the bytes attached in the session before "
				"come in as IMG_0008.JPG: nothing goes to 000000007");
	}
	station_end(&r);
	unlink(a);

	/* Given up (--watch-keep move) and refused: the program's file goes
	 * back where it was, not into the session as a file nobody knows. */
	const char *const moving[] = { "--watch", dir, "--watch-keep", "move", NULL };
	snprintf(a, sizeof a, "%s/IMG_0009.JPG", dir);
	if (station_start(&r, "watch-same-move", false, moving)) {
		tap_ok(scan_found(&r, "000000007"), "a session that moves the files in");
		not_taken_again(&r, photo, a, NULL, "the same bytes come in as IMG_0009.JPG");
		tap_ok(exists(a) && harness_same_file(a, photo), "IMG_0009.JPG is back in the "
		       "watched folder, whole");
		tap_ok(harness_dir_is(r.dir, ""), "the session folder holds nothing of it");
	}
	station_end(&r);
	unlink(a);
}

/* 16. --watch DIR: the files a capture program writes are taken once
 * complete, named from the number current at their press, copied, and
 * attached; what was there before is offered, not taken; u takes the last
 * back; --watch-keep move and polling. */
static void test_watch(void)
{
	struct station_run r;
	char dir[600], photo[600], photo2[600], a[700], b[700], tmp[700], old[700];
	char name[96] = "";
	long last;

	tap_diag("a watched folder");
	snprintf(dir, sizeof dir, "%s/watched", harness_home());
	snprintf(photo, sizeof photo, "%s/watch-photo.jpg", harness_home());
	snprintf(a, sizeof a, "%s/IMG_0001.JPG", dir);
	snprintf(b, sizeof b, "%s/IMG_0002.JPG", dir);
	snprintf(tmp, sizeof tmp, "%s/IMG_0002.JPG.tmp", dir);
	snprintf(old, sizeof old, "%s/OLD.JPG", dir);
	mkdir(dir, 0755);
	snprintf(photo2, sizeof photo2, "%s/watch-photo-2.jpg", harness_home());
	/* Two shots never have the same bytes. */
	if (!tap_ok(label_photo(photo, "000000006") && pad_jpeg(photo, photo2, 3, &last) &&
		    child_ok(write_slowly(photo, old, NULL, 1, 0)),
		    "two photos, and one already in the folder"))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", NULL };
	if (station_start(&r, "watch-session", false, extra)) {
		tap_ok(since(&r, 0, "NOTE: 1 image was in the watched folder before the start "
			     "(OLD.JPG): not taken"), "what was there is offered, not taken");
		tap_ok(scan_found(&r, "000000006"), "the scan is found");
		tap_ok(child_ok(write_slowly(photo, a, NULL, 5, 0.3)),
		       "the capture program writes IMG_0001.JPG in 5 chunks, 0.3 s apart");
		tap_ok(watched_attached(&r, "000000006", name, sizeof name),
		       "it is attached to 000000006 (%s)", name);
		tap_ok(name[0] && harness_same_file(local(&r, name), a),
		       "the bytes attached are the whole file");
		const char *took = strstr(r.out, "took IMG_0001.JPG");
		tap_ok(took && !strstr(took + 1, "took IMG_0001.JPG"), "taken once");
		tap_ok(exists(a), "--watch-keep copy: the program's file stays");
		tap_ok(!since(&r, 0, "took OLD.JPG"), "the old file is not taken");

		tap_ok(child_ok(write_slowly(photo2, b, tmp, 2, 0.1)),
		       "IMG_0002.JPG is written under a temporary name, then renamed");
		char second[96] = "";
		tap_ok(watched_attached(&r, "000000006", second, sizeof second) &&
		       strcmp(second, name), "it is attached too, under the next name (%s)", second);
		tap_ok(!since(&r, 0, ".tmp"), "the temporary name is never taken");
		send_line(&r, "u");
		char back[128];
		snprintf(back, sizeof back, "taken back: %s", second);
		tap_ok(expect(&r, back, T_LONG), "u takes the last file from the folder back");
		tap_ok(nothing_of(second), "and Specify no longer has it");
		tap_ok(harness_dir_is(dir, "IMG_0001.JPG IMG_0002.JPG OLD.JPG"),
		       "nothing was written into the watched folder");
		unlink(a);
		nap(3);
		tap_ok(attached_once(&r, name, 6, 1),
		       "the program deletes its file: Specify keeps the attachment");
	}
	station_end(&r);

	const char *const moving[] = { "--watch", dir, "--no-stamp", "--watch-keep", "move",
				       "--watch-mode", "poll", NULL };
	unlink(a);
	unlink(b);
	char moved[700];
	snprintf(moved, sizeof moved, "%s/watch-photo-moved.jpg", harness_home());
	if (new_shot(photo, moved, 2) && station_start(&r, "watch-session", false, moving)) {
		struct stat was, now;
		tap_ok(since(&r, 0, "(polling") && since(&r, 0, "moving them"),
		       "--watch-mode poll, --watch-keep move: it says so");
		tap_ok(scan_found(&r, "000000006"), "the scan is found");
		tap_ok(child_ok(write_slowly(moved, a, NULL, 3, 0.3)) && stat(a, &was) == 0,
		       "a file is written");
		tap_ok(watched_attached(&r, "000000006", name, sizeof name), "polling sees it");
		tap_ok(!exists(a) && exists(local(&r, name)), "moved: out of the folder, in the session");
		tap_ok(stat(local(&r, name), &now) == 0 && now.st_ino == was.st_ino &&
		       now.st_dev == was.st_dev && harness_same_file(local(&r, name), moved),
		       "on one filesystem it is renamed in: the session's file is the program's "
		       "own (inode %lu), nothing copied", (unsigned long)was.st_ino);
	}
	station_end(&r);
	test_watch_move_elsewhere(photo);
	test_watch_move_killed(photo);
	test_watch_rewritten(photo);
	test_watch_same_bytes(photo);
}

/* 16. A file that comes in after one named after it (a share that
 * delivered IMG_0041 late) was pressed before it: never placed after it.
 * Plain JPEGs: no label, no capture time, only the order could place them. */
static void test_watch_out_of_order(void)
{
	struct station_run r;
	char dir[600], p41[600], p42[600], p43[600], d41[700], d42[700], name[96] = "";

	tap_diag("a watched folder: a file delivered out of order");
	snprintf(dir, sizeof dir, "%s/watched-order", harness_home());
	snprintf(p41, sizeof p41, "%s/plain41.jpg", harness_home());
	snprintf(p42, sizeof p42, "%s/plain42.jpg", harness_home());
	snprintf(p43, sizeof p43, "%s/plain43.jpg", harness_home());
	snprintf(d41, sizeof d41, "%s/IMG_0041.JPG", dir);
	snprintf(d42, sizeof d42, "%s/IMG_0042.JPG", dir);
	mkdir(dir, 0755);
	char *a = tool((const char *const[]){ MKJPEG_EXE, "640", "480", "41", p41, NULL });
	char *b = tool((const char *const[]){ MKJPEG_EXE, "640", "480", "42", p42, NULL });
	char *c = tool((const char *const[]){ MKJPEG_EXE, "640", "480", "43", p43, NULL });
	bool made = a && b && c;
	free(a);
	free(b);
	free(c);
	if (!tap_ok(made, "three plain JPEGs"))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", NULL };
	if (station_start(&r, "order-session", false, extra)) {
		tap_ok(scan_found(&r, "000000006"), "A is scanned (IMG_0041 is shot now)");
		tap_ok(scan_found(&r, "000000007"), "then B (IMG_0042 is shot now)");
		tap_ok(child_ok(write_slowly(p42, d42, NULL, 1, 0)), "IMG_0042.JPG comes in first");
		tap_ok(watched_attached(&r, "000000007", name, sizeof name),
		       "held, answered n: on B (%s)", name);
		size_t mark = r.mark;
		tap_ok(child_ok(write_slowly(p41, d41, NULL, 1, 0)), "then IMG_0041.JPG");
		bool held = expect(&r, "HELD pending_", T_LONG);
		tap_ok(held && !since(&r, mark, "attached ✓ 000000007"),
		       "it is held, not put on B after IMG_0042");
		tap_ok(since(&r, mark, "came in after a file named or begun after it"), "saying why");
		nap(1.2);   /* an answer right after a hold is refused */
		send_line(&r, "= 000000006");
		tap_ok(watched_attached(&r, "000000006", name, sizeof name),
		       "answered: on A (%s)", name);
		char d43[700];
		snprintf(d43, sizeof d43, "%s/IMG_0043.JPG", dir);
		mark = r.mark;
		tap_ok(child_ok(write_slowly(p43, d43, NULL, 1, 0)) &&
		       expect(&r, "attached ✓ 000000007", T_LONG) && !since(&r, mark, "HELD"),
		       "IMG_0043.JPG, in order again, follows IMG_0042 on B without asking");
	}
	station_end(&r);
}

/* n plain JPEGs (no label, no capture time) of seeds from seed on, into
 * plain: HOME/plainSEED.jpg. */
static bool plain_jpegs(int seed, int n, char (*plain)[600])
{
	bool made = true;

	for (int i = 0; i < n; i++) {
		char text[16];
		snprintf(text, sizeof text, "%d", seed + i);
		snprintf(plain[i], 600, "%s/plain%s.jpg", harness_home(), text);
		char *out = tool((const char *const[]){ MKJPEG_EXE, "640", "480", text, plain[i],
							NULL });
		made = made && out;
		free(out);
	}
	return made;
}

/* A is scanned and the first file after it written into the watched
 * folder as shot, from plain: held (the folder has no clock), answered
 * n, on A under name. */
static void first_on_a(struct station_run *r, const char *plain, const char *shot,
		       char *name, size_t size)
{
	tap_ok(scan_found(r, "000000006"), "A is scanned");
	tap_ok(child_ok(write_slowly(plain, shot, NULL, 1, 0)) &&
	       watched_attached(r, "000000006", name, size),
	       "%s is written, held, answered n: on A (%s)", strrchr(shot, '/') + 1, name);
}

/* 16. A file without a capture time, written into a polled folder just
 * before the next scan and first seen after it: written on this computer,
 * its modification time says it was shot before that scan.  It is put on
 * the number before, not held.  (Seen before the scan, about one run in
 * three, it is put there anyway.)  A file before it, placed on that
 * number, bounds its press from below. */
static void test_watch_written(void)
{
	static const long own[] = { EXT4_SUPER_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC,
				    BTRFS_SUPER_MAGIC, F2FS_SUPER_MAGIC };
	struct station_run r;
	char dir[600], plain[2][600], shot[2][700], name[96] = "";
	struct statfs sf;
	bool own_fs = false;

	tap_diag("a watched folder, polled: a file written before the next scan");
	snprintf(dir, sizeof dir, "%s/watched-written", harness_home());
	mkdir(dir, 0755);
	for (size_t i = 0; statfs(dir, &sf) == 0 && i < sizeof own / sizeof own[0]; i++)
		own_fs = own_fs || (long)sf.f_type == own[i];
	if (!own_fs) {
		tap_ok(1, "written # SKIP %s is on no local filesystem copystand knows", dir);
		return;
	}
	for (int i = 0; i < 2; i++)
		snprintf(shot[i], sizeof shot[i], "%s/IMG_00%d.JPG", dir, 44 + i);
	if (!tap_ok(plain_jpegs(44, 2, plain), "two plain JPEGs"))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", "--watch-mode", "poll", NULL };
	if (station_start(&r, "written-session", false, extra)) {
		first_on_a(&r, plain[0], shot[0], name, sizeof name);
		size_t mark = r.mark;
		tap_ok(child_ok(write_slowly(plain[1], shot[1], NULL, 1, 0)), "IMG_0045.JPG is written");
		nap(0.15);
		tap_ok(scan_found(&r, "000000007"), "B is scanned 0.15 s later");
		tap_ok(expect(&r, "attached ✓ 000000006", T_LONG) && !since(&r, mark, "HELD"),
		       "IMG_0045.JPG is put on A without asking");
		tap_ok(!since(&r, mark, "attached ✓ 000000007"), "not on B");
	}
	station_end(&r);
}

/* A watched folder HOME/folder (into dir), three plain JPEGs from seed on
 * and the names a program without a counter gives them: shot_X.jpg for
 * each letter X. */
static bool three_shots(const char *folder, const char *letters, int seed, char dir[600],
			char (*plain)[600], char (*shot)[700])
{
	snprintf(dir, 600, "%s/%s", harness_home(), folder);
	mkdir(dir, 0755);
	for (int i = 0; i < 3; i++)
		snprintf(shot[i], 700, "%s/shot_%c.jpg", dir, letters[i]);
	return tap_ok(plain_jpegs(seed, 3, plain), "three plain JPEGs");
}

/* 16. Files taken in another order than they were begun: shot_a.jpg
 * created first and written last, shot_b.jpg written whole in between,
 * after a scan.  Names without a counter do not tell which was shot
 * first.  shot_a.jpg, begun before the scan, must not place shot_b.jpg's
 * press before it: shot_b.jpg stays held between A and B. */
static void test_watch_finished_first(void)
{
	struct station_run r;
	char dir[600], plain[3][600], shot[3][700], name[96] = "";

	tap_diag("a watched folder: a file finished before one begun earlier");
	if (!three_shots("watched-first", "0ab", 46, dir, plain, shot))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", "--watch-mode", "inotify",
				      NULL };
	if (station_start(&r, "first-session", false, extra)) {
		first_on_a(&r, plain[0], shot[0], name, sizeof name);
		size_t mark = r.mark;
		int fd = open(shot[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		tap_ok(fd >= 0 && close(fd) == 0, "shot_a.jpg is begun");
		nap(0.2);
		tap_ok(scan_found(&r, "000000007"), "B is scanned");
		nap(0.2);
		tap_ok(child_ok(write_slowly(plain[2], shot[2], NULL, 1, 0)) &&
		       expect(&r, "HELD pending_", T_LONG), "shot_b.jpg is written whole: held");
		tap_ok(child_ok(write_slowly(plain[1], shot[1], NULL, 1, 0)), "shot_a.jpg is finished");
		nap(4.0);
		tap_ok(!since(&r, mark, "attached ✓ 000000006"),
		       "neither is put on A: shot_b.jpg may have been shot after B was scanned");
	}
	station_end(&r);
}

/* 16. Files taken in another order than they were begun: shot_p.jpg
 * begun before B is scanned and written slowly, shot_q.jpg written whole
 * after the scan and put on B.  shot_p.jpg, finished last, was shot
 * before that scan (its file existed then): it must not follow
 * shot_q.jpg onto B. */
static void test_watch_begun_before(void)
{
	struct station_run r;
	char dir[600], plain[3][600], shot[3][700], name[96] = "";

	tap_diag("a watched folder: a file begun before a scan, finished after the next file");
	if (!three_shots("watched-begun", "0pq", 50, dir, plain, shot))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", "--watch-mode", "inotify",
				      NULL };
	if (station_start(&r, "begun-session", false, extra)) {
		first_on_a(&r, plain[0], shot[0], name, sizeof name);
		/* Slower than anything below, never pausing for the settle time. */
		pid_t slow = write_slowly(plain[1], shot[1], NULL, 16, 0.4);
		nap(0.3);
		tap_ok(scan_found(&r, "000000007"), "shot_p.jpg is being written; B is scanned");
		nap(0.3);
		tap_ok(child_ok(write_slowly(plain[2], shot[2], NULL, 1, 0)) &&
		       watched_attached(&r, "000000007", name, sizeof name),
		       "shot_q.jpg is written whole, held, answered n: on B (%s)", name);
		size_t mark = r.mark;
		tap_ok(child_ok(slow), "shot_p.jpg is finished");
		bool held = expect(&r, "HELD pending_", T_LONG);
		nap(2.0);
		tap_ok(held && !since(&r, mark, "attached ✓ 000000007"),
		       "it is held, not put on B after shot_q.jpg");
		nap(0.6);
		send_line(&r, "= 000000006");
		tap_ok(expect(&r, "attached ✓ 000000006", T_LONG), "answered: on A");
	}
	station_end(&r);
}

/* A RAW that only settles (.cr3: its structure is not read), of bytes
 * no other file has, as path. */
static bool raw_file(const char *path, int seed)
{
	char bytes[4096];
	FILE *f = fopen(path, "wb");

	for (size_t i = 0; i < sizeof bytes; i++)
		bytes[i] = (char)(i * 31 + (size_t)seed * 7);
	return f && fwrite(bytes, 1, sizeof bytes, f) == sizeof bytes && fclose(f) == 0;
}

/* 16. A RAW+JPEG press as EOS Utility saves it: the CR3, then the JPEG.
 * The JPEG is taken at once (whole), the CR3 only once it has settled
 * (its structure is not read), when the JPEG is long named and attached.
 * It joins it all the same: one name, one number, no question. */
static void test_watch_raw_late(void)
{
	struct station_run r;
	char dir[600], plain[2][600], jpg[2][700], raw[700], name[2][96] = { "", "" };

	tap_diag("a watched folder: a RAW that settles after its JPEG was attached");
	snprintf(dir, sizeof dir, "%s/watched-late", harness_home());
	mkdir(dir, 0755);
	for (int i = 0; i < 2; i++)
		snprintf(jpg[i], sizeof jpg[i], "%s/IMG_00%d.JPG", dir, 61 + i);
	snprintf(raw, sizeof raw, "%s/IMG_0062.CR3", dir);
	if (!tap_ok(plain_jpegs(61, 2, plain), "two plain JPEGs"))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", "--watch-mode", "inotify",
				      "--raw", "upload", NULL };
	if (station_start(&r, "late-session", false, extra)) {
		first_on_a(&r, plain[0], jpg[0], name[0], sizeof name[0]);
		size_t mark = r.mark;
		tap_ok(raw_file(raw, 62) && child_ok(write_slowly(plain[1], jpg[1], NULL, 1, 0)) &&
		       watched_attached(&r, "000000006", name[1], sizeof name[1]),
		       "IMG_0062.CR3, then IMG_0062.JPG: on A (%s)", name[1]);
		char want[2][128];
		for (int i = 0; i < 2; i++)
			snprintf(want[i], sizeof want[i], "attached ✓ %.*s.%s",
				 (int)strcspn(name[1], "."), name[1], i ? "cr3" : "jpg");
		double end = harness_now() + T_LONG;
		while ((!since(&r, mark, want[0]) || !since(&r, mark, want[1])) && harness_now() < end)
			pump(&r, 200);
		tap_ok(since(&r, mark, want[0]) && since(&r, mark, want[1]),
		       "the JPEG waited for the CR3 to settle: one name for the two (%s)",
		       want[1] + strlen("attached ✓ "));
		tap_ok(since(&r, mark, "took IMG_0062.CR3 and IMG_0062.JPG as ") ||
		       since(&r, mark, "took IMG_0062.JPG and IMG_0062.CR3 as "), "taken together");
		tap_ok(!since(&r, mark, "HELD"), "no question asked");
	}
	station_end(&r);
}

/* 16. A program that saves a press's JPEG first and its RAW after it
 * (the CR3 begun once the JPEG was whole): the JPEG is named and attached
 * before the RAW comes.  The RAW still takes the JPEG's name and, with
 * --raw local, stays on this computer as its pair's RAW. */
static void test_watch_jpeg_first(void)
{
	struct station_run r;
	char dir[600], plain[2][600], jpg[2][700], raw[700], name[2][96] = { "", "" };

	tap_diag("a watched folder: the JPEG of a press saved before its RAW");
	snprintf(dir, sizeof dir, "%s/watched-jpeg-first", harness_home());
	mkdir(dir, 0755);
	for (int i = 0; i < 2; i++)
		snprintf(jpg[i], sizeof jpg[i], "%s/IMG_00%d.JPG", dir, 71 + i);
	snprintf(raw, sizeof raw, "%s/IMG_0072.CR3", dir);
	if (!tap_ok(plain_jpegs(71, 2, plain), "two plain JPEGs"))
		return;
	const char *const extra[] = { "--watch", dir, "--no-stamp", "--watch-mode", "inotify",
				      "--raw", "local", NULL };
	if (station_start(&r, "jpeg-first-session", false, extra)) {
		first_on_a(&r, plain[0], jpg[0], name[0], sizeof name[0]);
		size_t mark = r.mark;
		tap_ok(child_ok(write_slowly(plain[1], jpg[1], NULL, 1, 0)) &&
		       watched_attached(&r, "000000006", name[1], sizeof name[1]),
		       "IMG_0072.JPG follows on A (%s)", name[1]);
		char cr3[128], want[160];
		snprintf(cr3, sizeof cr3, "%.*s.cr3", (int)strcspn(name[1], "."), name[1]);
		snprintf(want, sizeof want, "took IMG_0072.CR3 as ");
		tap_ok(raw_file(raw, 72) && expect(&r, want, T_LONG), "then IMG_0072.CR3 is saved");
		double end = harness_now() + T_LONG;
		while (journal_state_of(local(&r, cr3)) != JS_LOCAL && harness_now() < end)
			pump(&r, 200);
		tap_is_int(journal_state_of(local(&r, cr3)), JS_LOCAL,
			   "it takes its JPEG's name and is kept here as its RAW");
		nap(1.0);
		tap_ok(!since(&r, mark, ".cr3 (") && attached(cr3, 6, NULL).joined +
		       attached(cr3, 6, NULL).orphans == 0, "no RAW sent to Specify");
		tap_ok(!since(&r, mark, "HELD"), "no question asked");
	}
	station_end(&r);
}

int main(void)
{
	static char pw[] = "COPYSTAND_PASSWORD=";
	char *pwenv;

	signal(SIGPIPE, SIG_IGN);
	/* Every case reads what Specify holds from the stand-in's state. */
	const char *why = harness_standin_start(&hs);
	if (why)
		return tap_skip_all(why);
	if (asprintf(&pwenv, "%s%s", pw, hs.password ? hs.password : "") < 0)
		abort();
	putenv(pwenv);

	test_enter_shoots();
	test_camera_button();
	test_raw_jpeg();
	test_views();
	test_unknown();
	test_specify_down();
	test_disconnect();
	test_serial_scanner();
	test_undo();
	test_quit_offline();
	test_start_offline();
	test_identity();
	test_raw_policy();
	test_label_check();
	test_name_from_label();
	test_scan_prefix();
	test_disk_full();
	test_unjournaled();
	test_races();
	/* Last: their shots take names (000000012.jpg) the cases above expect free. */
	test_reconnect();
	test_camera_refuses();
	test_card_left();
	test_card_erased();
	test_watch();
	test_watch_out_of_order();
	test_watch_written();
	test_watch_begun_before();
	test_watch_raw_late();
	test_watch_jpeg_first();
	/* Last: it leaves two captures held, which a later session asks about. */
	test_watch_finished_first();

	harness_server_stop(&hs);
	harness_cleanup();
	unsetenv("COPYSTAND_PASSWORD");
	free(pwenv);
	return tap_done();
}
