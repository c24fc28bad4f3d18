/* The gphoto2 hook end to end, as a copy stand with gphoto2 runs: the real
 * gphoto2 program tethered to the PTP/IP camera emulator with
 * --hook-script=copystand-gphoto2-hook, the camera's own shutter button
 * pressed through the emulator, labels scanned into `copystand station`
 * (no camera of its own) on a pseudo-terminal.  What reached Specify is
 * read from the stand-in's state, the names from the session folder and
 * what the hook said from gphoto2's stderr. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "ptpip-client.h"
#include "sha256.h"
#include "tap.h"

/* Set by tests/meson.build. */
#if !defined(PTPIP_CAMERA_EXE) || !defined(COPYSTAND_BINARY) || \
	!defined(GPHOTO2_HOOK_EXE) || !defined(COPYSTAND_SAMPLES)
#error "build with meson: the programs' and the samples' paths are missing"
#endif

/* For a step that takes a moment; for one that waits on Specify. */
#define T_SHORT 20.0
#define T_LONG 60.0

static harness_server hs;

/* Prints text a line at a time as TAP diagnostics, terminal codes left
 * out. */
static void diag_lines(const char *who, const char *text)
{
	char line[512];
	size_t n = 0;

	for (const char *p = text ? text : ""; ; p++) {
		if (*p == '\033' && p[1] == '[' && p[2]) {
			p += 2;
			continue;
		}
		if (*p && *p != '\n' && *p != '\r' && *p != '\a') {
			if (n + 1 < sizeof line)
				line[n++] = *p;
			continue;
		}
		if (n) {
			line[n] = '\0';
			tap_diag("%s | %s", who, line);
		}
		n = 0;
		if (!*p)
			break;
	}
}

/* A text file's content (malloc'd; NULL when it cannot be read). */
static char *text_of(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t cap = 0;

	if (f && getdelim(&text, &cap, '\0', f) < 0) {
		free(text);
		text = strdup("");
	}
	if (f)
		fclose(f);
	return text;
}

static void nap_ms(long ms)
{
	nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000 },
		  NULL);
}

/* --- copystand station on a pseudo-terminal ------------------------------- */

static struct {
	pid_t pid;
	int pty;             /* -1 once it has closed its terminal */
	char *out;           /* all it printed */
	size_t len, seen;    /* station_says() looks after seen */
} st = { .pid = -1, .pty = -1 };

/* Takes in what the station printed, waiting up to timeout_ms for the
 * first bytes; read all the time, or it blocks on a full terminal. */
static void station_read(int timeout_ms)
{
	struct pollfd p = { .fd = st.pty, .events = POLLIN };
	char buf[4096];

	if (st.pty < 0) {
		nap_ms(timeout_ms);
		return;
	}
	while (poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = read(st.pty, buf, sizeof buf);
		char *grown;

		if (n <= 0) {               /* EIO: its side is closed */
			close(st.pty);
			st.pty = -1;
			return;
		}
		if (!(grown = realloc(st.out, st.len + (size_t)n + 1)))
			abort();
		st.out = grown;
		memcpy(st.out + st.len, buf, (size_t)n);
		st.len += (size_t)n;
		st.out[st.len] = '\0';
		timeout_ms = 0;
	}
}

/* Waits until the station prints want (after what was matched before). */
static bool station_says(const char *want, double timeout_s)
{
	double until = harness_now() + timeout_s;
	char *at;

	while (!(at = st.out ? strstr(st.out + st.seen, want) : NULL)) {
		if (harness_now() > until || st.pty < 0) {
			tap_diag("the station did not say \"%s\" in %.0f s; it said:", want,
				 timeout_s);
			diag_lines("station", st.out ? st.out + st.seen : "");
			return false;
		}
		station_read(100);
	}
	st.seen = (size_t)(at - st.out) + strlen(want);
	return true;
}

/* A person's answer to a held capture: after reading it (the station
 * refuses one the moment a capture is held). */
static bool answer(const char *key);

static bool station_type(const char *line)
{
	char buf[128];
	int n = snprintf(buf, sizeof buf, "%s\n", line);

	return st.pty >= 0 && write(st.pty, buf, (size_t)n) == n;
}

static bool answer(const char *key)
{
	nap_ms(1200);
	return station_type(key);
}

/* A station without a camera: fed by the hook, or watching the folder
 * watched (NULL: none) that gphoto2 saves into. */
static bool station_start_watching(const char *dir, const char *watched)
{
	const char *argv[] = { COPYSTAND_BINARY, "station", "--server", hs.url, "--user", hs.user,
			       "--collection", hs.collection, "--dir", dir,
			       watched ? "--watch" : "--no-camera", watched, NULL };

	fflush(stdout);
	st.pid = forkpty(&st.pty, NULL, NULL, &(struct winsize){ .ws_row = 40, .ws_col = 200 });
	if (st.pid == 0) {
		execv(COPYSTAND_BINARY, (char **)argv);
		_exit(127);
	}
	if (st.pid < 0) {
		tap_diag("forkpty: %s", strerror(errno));
		return false;
	}
	/* Not gphoto2's nor the hook's to keep open. */
	fcntl(st.pty, F_SETFD, FD_CLOEXEC);
	return station_says("camera: none here", T_SHORT) &&
	       station_says("ready — scan a specimen", T_SHORT);
}

static bool station_start(const char *dir)
{
	return station_start_watching(dir, NULL);
}

/* A label scanned: on once Specify found the record ("NUMBER  TAXON
 * (N images)"; the terminal's echo has no two spaces). */
static bool station_scan(const char *number)
{
	char found[64];

	snprintf(found, sizeof found, "%s  ", number);
	return station_type(number) && station_says(found, T_SHORT) &&
	       station_says(" image", T_SHORT);
}

/* q; its exit status (under ASan, 0 means no leaks too), or -1 when it
 * had to be killed. */
static int station_quit(void)
{
	double until = harness_now() + T_LONG;
	int status = 0;
	pid_t got;

	if (st.pid <= 0)
		return -1;
	station_type("q");
	while ((got = waitpid(st.pid, &status, WNOHANG)) == 0 && harness_now() < until)
		station_read(100);
	if (got == 0) {
		tap_diag("the station did not quit: killed");
		diag_lines("station", st.out ? st.out + st.seen : "");
		kill(st.pid, SIGKILL);
		waitpid(st.pid, &status, 0);
	}
	if (st.pty >= 0)
		close(st.pty);
	free(st.out);
	st.pid = st.pty = -1;
	st.out = NULL;
	st.len = st.seen = 0;
	return got == 0 || !WIFEXITED(status) ? -1 : WEXITSTATUS(status);
}

/* --- gphoto2 and the hook ---------------------------------------------------- */

/* Runs prog (argv[0], looked up in PATH) in dir with stdin and stdout on
 * /dev/null (gphoto2 prints events there) and stderr to log (NULL:
 * /dev/null), HOME (and the XDG folders) in home when not NULL, and extra
 * "NAME=value" settings; its pid. */
static pid_t run(const char *const *argv, const char *dir, const char *log,
		 const char *home, const char *const *env)
{
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) != 0)
		return pid;
	int null = open("/dev/null", O_RDWR);
	int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);
	char xdg[3][600];

	if (null < 0 || fd < 0 || chdir(dir) != 0)
		_exit(126);
	dup2(null, 0);
	dup2(null, 1);
	dup2(fd, 2);
	if (home) {
		snprintf(xdg[0], sizeof xdg[0], "%s/.local/share", home);
		snprintf(xdg[1], sizeof xdg[1], "%s/.config", home);
		snprintf(xdg[2], sizeof xdg[2], "%s/.cache", home);
		setenv("HOME", home, 1);
		setenv("XDG_DATA_HOME", xdg[0], 1);
		setenv("XDG_CONFIG_HOME", xdg[1], 1);
		setenv("XDG_CACHE_HOME", xdg[2], 1);
	}
	for (; env && *env; env++)
		putenv((char *)*env);
	execvp(argv[0], (char **)argv);
	_exit(127);
}

/* Waits for pid, reading the station meanwhile; its exit status, or -1
 * when it had to be killed after timeout_s. */
static int finish(pid_t pid, double timeout_s)
{
	double until = harness_now() + timeout_s;
	int status = 0;
	pid_t got;

	if (pid < 0)
		return -1;
	while ((got = waitpid(pid, &status, WNOHANG)) == 0 && harness_now() < until)
		station_read(50);
	if (got < 0)
		return -1;
	if (got == 0) {
		tap_diag("pid %d still runs after %.0f s: killed", (int)pid, timeout_s);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The hook as gphoto2 runs it (no arguments, ACTION and ARGUMENT in the
 * environment; no ACTION: a person trying it), in dir; *err gets its
 * stderr (malloc'd); its exit status. */
static int hook(const char *dir, const char *home, const char *action,
		const char *argument, char **err)
{
	const char *argv[] = { GPHOTO2_HOOK_EXE, NULL };
	char a[64], b[600], log[600];
	const char *env[3] = { NULL };
	int rc;

	snprintf(a, sizeof a, "ACTION=%s", action ? action : "");
	snprintf(b, sizeof b, "ARGUMENT=%s", argument ? argument : "");
	env[0] = action ? a : argument ? b : NULL;
	env[1] = action && argument ? b : NULL;
	snprintf(log, sizeof log, "%s/hook.err", harness_home());
	unlink(log);
	rc = finish(run(argv, dir, log, home, env), T_SHORT);
	*err = text_of(log);
	return rc;
}

#define CASE_PATH 600

/* The paths of a case called name, in HOME: the station's session folder
 * dir, the folder gphoto2 saves into dl (made here), gphoto2's stderr
 * log. */
static void case_paths(const char *name, char *dir, char *dl, char *log)
{
	snprintf(dir, CASE_PATH, "%s/%s", harness_home(), name);
	snprintf(dl, CASE_PATH, "%s/%s-dl", harness_home(), name);
	snprintf(log, CASE_PATH, "%s/%s.log", harness_home(), name);
	mkdir(dl, 0700);
}

/* How many times the camera emulator has served op ("OpenSession"). */
static long camera_stat(ptpip_cam *cam, const char *op)
{
	char *reply = ptpip_cam_control(cam, "stats"), key[64];
	const char *at;
	long n = -1;

	snprintf(key, sizeof key, " %s=", op);
	if (reply && (at = strstr(reply, key)))
		n = strtol(at + strlen(key), NULL, 10);
	free(reply);
	return n;
}

/* gphoto2 tethered to cam in dir, the hook on each download, until it has
 * downloaded frames files (gphoto2's own stop: a signal would end its
 * PTP/IP session in an I/O error), its stderr to log.  Returns once it
 * has opened the camera's session, so that a press is its; -1 if it
 * does not. */
static pid_t gphoto2_start_hook(ptpip_cam *cam, const char *dir, const char *home, int frames,
				const char *log, bool hook)
{
	char tethered[40];
	const char *argv[] = { "gphoto2", "--port", ptpip_cam_port_path(cam),
			       "--camera", "PTP/IP Camera", tethered, "--filename", "%f.%C",
			       "--quiet", hook ? "--hook-script=" GPHOTO2_HOOK_EXE : NULL, NULL };
	double until = harness_now() + T_SHORT;
	pid_t pid;

	snprintf(tethered, sizeof tethered, "--capture-tethered=%df", frames);
	pid = run(argv, dir, log, home, NULL);
	while (pid > 0 && camera_stat(cam, "OpenSession") < 1) {
		if (harness_now() > until || waitpid(pid, NULL, WNOHANG) != 0) {
			char *said = text_of(log);
			tap_diag("gphoto2 did not open the camera's session");
			diag_lines("gphoto2", said);
			free(said);
			finish(pid, 0);
			return -1;
		}
		station_read(100);
	}
	return pid;
}

static pid_t gphoto2_start(ptpip_cam *cam, const char *dir, const char *home, int frames,
			   const char *log)
{
	return gphoto2_start_hook(cam, dir, home, frames, log, true);
}

/* Waits until log holds line (the hook's stderr comes through gphoto2's). */
static bool logged(const char *log, const char *line)
{
	double until = harness_now() + T_SHORT;
	char *text = NULL;
	bool found = false;

	while (!found && harness_now() < until) {
		station_read(100);
		free(text);
		text = text_of(log);
		found = text && strstr(text, line);
	}
	if (!found) {
		tap_diag("no \"%s\" from the hook; gphoto2's output:", line);
		diag_lines("gphoto2", text);
	}
	free(text);
	return found;
}

__attribute__((format(printf, 2, 3)))
static bool camera_set(ptpip_cam *cam, const char *fmt, ...)
{
	char cmd[128], *reply;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	reply = ptpip_cam_control(cam, "%s", cmd);
	bool ok = reply && !strncmp(reply, "OK", 2);
	free(reply);
	return ok;
}

static bool press(ptpip_cam *cam, const char *what)
{
	char *reply = ptpip_cam_control(cam, "press %s", what);
	bool ok = reply && !strncmp(reply, "OK", 2);

	if (!ok)
		tap_diag("press %s: %s", what, reply ? reply : "(the camera is gone)");
	free(reply);
	return ok;
}

/* The lines of gphoto2's stderr that the hook printed ("copystand: "),
 * and the others (malloc'd). */
static void split_log(const char *log, char **hook_lines, char **others)
{
	char *text = text_of(log), *save = NULL;
	size_t size = text ? strlen(text) + 2 : 2;

	*hook_lines = calloc(1, size);
	*others = calloc(1, size);
	if (!*hook_lines || !*others)
		abort();
	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save))
		strcat(strcat(strncmp(l, "copystand: ", 11) ? *others : *hook_lines, l), "\n");
	free(text);
}

/* --- what Specify holds ---------------------------------------------------- */

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sha256 of the file the stand-in stores for attachment a, out of its
 * state ("" when it has none). */
static const char *stored_sha(const cJSON *state, const cJSON *a)
{
	const char *where = cJSON_GetStringValue(cJSON_GetObjectItem(a, "attachmentlocation"));
	cJSON *file = cJSON_GetObjectItem(cJSON_GetObjectItem(state, "files"), where ? where : "");
	const char *sha = cJSON_GetStringValue(cJSON_GetObjectItem(file, "sha256"));

	return sha ? sha : "";
}

/* Every attachment in the stand-in, sorted: "NAME@RECORD" on a collection
 * object, "NAME@TABLE:ID" on another table, "NAME@-" with no join row;
 * "!bytes" after one whose stored file is not dir/NAME (malloc'd). */
static char *attachments(const char *dir)
{
	cJSON *state = standin_state(hs.standin), *a;
	char *items[64], *all;
	size_t n = 0, len = 1;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(state, "attachments")) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(a, "origfilename"));
		const char *bytes;
		const char *table = cJSON_GetStringValue(cJSON_GetObjectItem(a, "join_table"));
		cJSON *record = cJSON_GetObjectItem(a, "record_id");
		char path[700], sha[65] = "";
		cs_error err = { 0 };
		int r;

		if (n == sizeof items / sizeof *items)
			break;
		if (!name)
			name = "(no name)";
		snprintf(path, sizeof path, "%s/%s", dir, name);
		sha256_file(path, sha, NULL, &err);
		bytes = *sha && !strcmp(stored_sha(state, a), sha) ? "" : "!bytes";
		if (!table)
			r = asprintf(&items[n], "%s@-%s", name, bytes);
		else if (!strcmp(table, "collectionobjectattachment"))
			r = asprintf(&items[n], "%s@%.0f%s", name, cJSON_GetNumberValue(record), bytes);
		else
			r = asprintf(&items[n], "%s@%s:%.0f%s", name, table,
				     cJSON_GetNumberValue(record), bytes);
		if (r < 0)
			abort();
		len += strlen(items[n++]) + 1;
	}
	cJSON_Delete(state);
	qsort(items, n, sizeof *items, by_text);
	if (!(all = calloc(1, len)))
		abort();
	for (size_t i = 0; i < n; i++) {
		strcat(strcat(all, i ? " " : ""), items[i]);
		free(items[i]);
	}
	return all;
}

/* Waits until the stand-in holds exactly want (see attachments()). */
static bool specify_holds(const char *dir, const char *want, double timeout_s)
{
	double until = harness_now() + timeout_s;
	char *got = attachments(dir);

	while (strcmp(got, want) && harness_now() < until) {
		station_read(250);
		free(got);
		got = attachments(dir);
	}
	bool same = !strcmp(got, want);
	if (!same)
		tap_diag("the stand-in holds \"%s\", want \"%s\"", got, want);
	free(got);
	return same;
}

/* Whether the stand-in holds name on collection object record, with the
 * bytes of file. */
static bool attached_as(const char *name, long long record, const char *file)
{
	cJSON *a = harness_attachment_of(&hs, name, record, NULL);
	cJSON *state = a ? standin_state(hs.standin) : NULL;
	char sha[65] = "";
	cs_error err = { 0 };
	bool same = a && sha256_file(file, sha, NULL, &err) == 0 &&
		    !strcmp(stored_sha(state, a), sha);

	if (!same)
		tap_diag("%s on record %lld: %s, not the bytes of %s", name, record,
			 a ? "stored" : "not attached", file);
	cJSON_Delete(state);
	cJSON_Delete(a);
	return same;
}

/* Whether the file at path holds text, binary files too. */
static bool file_holds(const char *path, const char *text)
{
	FILE *f = fopen(path, "rb");
	char *bytes = NULL;
	long size = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	bool found = size > 0 && fseek(f, 0, SEEK_SET) == 0 && (bytes = malloc((size_t)size)) &&
		     fread(bytes, 1, (size_t)size, f) == (size_t)size &&
		     memmem(bytes, (size_t)size, text, strlen(text));

	free(bytes);
	if (f)
		fclose(f);
	return found;
}

/* Whether shot k of the camera (gphoto2 saved IMG_000k.CR2 and .JPG in dl)
 * is on collection object record as stem.cr2 and stem.jpg: the RAW with
 * gphoto2's bytes; the JPEG with those of the session folder's copy in dir
 * (copystand stamps its Exif), still the camera's shot k. */
static bool pair_attached(const char *dir, const char *dl, int k, const char *stem,
			  long long record)
{
	char raw[700], jpeg[700], saved[700], comment[64];
	bool ok;

	snprintf(raw, sizeof raw, "%s.cr2", stem);
	snprintf(jpeg, sizeof jpeg, "%s.jpg", stem);
	snprintf(saved, sizeof saved, "%s/IMG_%04d.CR2", dl, k);
	ok = attached_as(raw, record, saved);
	snprintf(saved, sizeof saved, "%s/%s", dir, jpeg);
	snprintf(comment, sizeof comment, "ptpip-camera IMG_%04d.JPG shot %d", k, k);
	ok = attached_as(jpeg, record, saved) && ok;
	if (!file_holds(saved, comment)) {
		tap_diag("%s is not the camera's shot %d", saved, k);
		ok = false;
	}
	return ok;
}

static bool specify_latency(int ms)
{
	char json[64];
	cs_error err = { 0 };

	snprintf(json, sizeof json, "{\"latency_ms\": %d}", ms);
	if (standin_faults(hs.standin, json, &err)) {
		tap_diag("stand-in faults %s: %s", json, err.msg);
		return false;
	}
	return true;
}

/* --- the cases ------------------------------------------------------------- */

/* 1. No station has ever run for this user: the hook says what to do and
 * stays out of gphoto2's way (only a failing init would stop it). */
static void test_no_station(void)
{
	const char *const quiet[] = { "init", "start", "stop", "some-later-action" };
	char home[600], dl[700], log[700], *out = NULL, *hook_lines, *others;
	ptpip_cam *cam;
	pid_t gp;
	int rc;

	tap_diag("no station has run");
	snprintf(home, sizeof home, "%s/alone", harness_home());
	snprintf(dl, sizeof dl, "%s/gphoto2", home);
	snprintf(log, sizeof log, "%s/gphoto2.log", home);
	mkdir(home, 0700);
	mkdir(dl, 0700);

	rc = hook(dl, home, NULL, NULL, &out);
	tap_ok(rc == 2 && out && strstr(out, "--hook-script=\"$(command -v copystand-gphoto2-hook)\""),
	       "run by hand (no ACTION): how to use it, status 2 (got %d)", rc);
	free(out);
	for (size_t i = 0; i < sizeof quiet / sizeof *quiet; i++) {
		rc = hook(dl, home, quiet[i], NULL, &out);
		tap_ok(rc == 0 && out && !*out, "ACTION=%s: status 0, silent (got %d: %s)", quiet[i],
		       rc, out ? out : "?");
		free(out);
	}
	rc = hook(dl, home, "download", NULL, &out);
	tap_is_int(rc, 1, "ACTION=download without ARGUMENT: status 1");
	tap_is_str(out, "copystand: gphoto2 named no file (ARGUMENT is empty); nothing handed on\n",
		   "and says so");
	free(out);

	if (!(cam = ptpip_cam_start(PTPIP_CAMERA_EXE, NULL))) {
		tap_ok(0, "the camera emulator starts");
		return;
	}
	gp = gphoto2_start(cam, dl, home, 1, log);
	tap_ok(gp > 0, "gphoto2 with the hook starts (init did not abort it)");
	if (gp > 0) {
		tap_ok(press(cam, "jpeg"), "the camera's button is pressed");
		tap_is_int(finish(gp, T_SHORT), 0, "gphoto2 downloads the shot and ends, status 0");
	}
	split_log(log, &hook_lines, &others);
	char *want = NULL;
	if (asprintf(&want, "copystand: %s/IMG_0001.JPG: not taken, left where gphoto2 saved "
		     "it: no copystand station has run for this user: start one (copystand "
		     "station) and scan a label\n", dl) < 0)
		abort();
	tap_is_str(hook_lines, want, "the hook says why, with the file's full path (gphoto2 "
		   "gave it relative)");
	tap_is_str(others, "Hook script returned error code 1 (0x1)\n",
		   "gphoto2 adds that the hook failed, nothing else");
	tap_ok(harness_dir_is(dl, "IMG_0001.JPG"), "the shot stays in gphoto2's folder");
	free(want);
	free(hook_lines);
	free(others);
	tap_ok(specify_holds(dl, "", 0), "nothing reached Specify");
	tap_is_int(ptpip_cam_stop(cam), 0, "the camera emulator exits cleanly");
}

/* 2. A station runs: each press of the camera's button reaches gphoto2,
 * the hook hands it to the station, which names it from the number
 * current when it was shot and attaches it; the two files of a RAW+JPEG
 * press share a name.  The station cannot read the camera's clock
 * (gphoto2 holds the camera), so the first press after each scan may have
 * come before it: held, until the technician says (n: the number after
 * the scan); the presses after it follow. */
static void test_tethered(void)
{
	char dir[CASE_PATH], dl[CASE_PATH], log[CASE_PATH], *out = NULL, *hook_lines, *others;
	ptpip_cam *cam = NULL;
	size_t shots_from;
	pid_t gp = -1;

	tap_diag("gphoto2 --capture-tethered with the hook, a station running");
	case_paths("tethered", dir, dl, log);
	if (!tap_ok(station_start(dir), "copystand station starts, without a camera") ||
	    !tap_ok(station_scan("000000123"), "000000123 is scanned and found"))
		goto out;
	if (!tap_ok((cam = ptpip_cam_start(PTPIP_CAMERA_EXE, NULL)) != NULL,
		    "the camera emulator starts") ||
	    !tap_ok((gp = gphoto2_start(cam, dl, NULL, 4, log)) > 0,
		    "gphoto2 is tethered to it, with the hook"))
		goto out;
	shots_from = st.seen;
	tap_ok(press(cam, "jpeg") && logged(log, "copystand: IMG_0001.JPG → the station (as "
					    "pending_"),
	       "a press: the hook hands IMG_0001.JPG to the station");
	tap_ok(station_says("HELD pending_", T_SHORT) &&
	       station_says("it is no number or 000000123; say which", T_SHORT),
	       "the first press after the scan: held, no number or 000000123");
	tap_ok(answer("n") && station_says("received 000000123.jpg", T_SHORT),
	       "n: it is 000000123's");
	tap_ok(press(cam, "raw+jpeg") && logged(log, "copystand: IMG_0002.JPG → "),
	       "a RAW+JPEG press: two downloads, two hook calls");
	tap_ok(station_says("received 000000123_2.", T_SHORT),
	       "no scan since the press before: 000000123's without asking");
	tap_ok(station_scan("000012345"), "the next label, 000012345, is scanned");
	station_type("");
	tap_ok(station_says("NOT SHOOTING: this station has no camera", T_SHORT),
	       "Enter does not shoot a camera the station leaves alone");
	tap_ok(press(cam, "jpeg") && logged(log, "copystand: IMG_0003.JPG → "),
	       "and a press after it");
	tap_ok(station_says("it is 000000123 or 000012345; say which", T_SHORT) &&
	       answer("n") && station_says("received 000012345.jpg", T_SHORT),
	       "held between the two numbers; n: 000012345's");
	tap_is_int(finish(gp, T_SHORT), 0, "gphoto2 ends after its 4 files, status 0");
	gp = -1;
	split_log(log, &hook_lines, &others);
	tap_ok(hook_lines && strstr(hook_lines, "copystand: IMG_0002.CR2 → the station (as pending_") &&
	       strstr(hook_lines, "copystand: IMG_0003.JPG → the station (as pending_"),
	       "the hook says where each file went");
	tap_is_str(others, "", "gphoto2 says nothing else (no failed hook)");
	free(hook_lines);
	free(others);
	tap_ok(harness_dir_is(dl, "IMG_0001.JPG IMG_0002.CR2 IMG_0002.JPG IMG_0003.JPG"),
	       "gphoto2's own copies stay where it saved them");

	/* No network on gphoto2's time: with every answer of Specify 5 s
	 * late, a download is handed on at once all the same. */
	if (specify_latency(5000)) {
		double t0 = harness_now();
		int rc = hook(dl, NULL, "download", COPYSTAND_SAMPLES "/not-a-number.jpg", &out);
		double took = harness_now() - t0;

		tap_is_int(rc, 0, "the hook by hand, Specify slow: status 0");
		tap_ok(out && !strncmp(out, "copystand: not-a-number.jpg → the station (as pending_",
				       54), "handed on whatever its own name: %s", out ? out : "");
		tap_ok(took < 4.0, "in %.2f s, without waiting on Specify", took);
		tap_ok(station_says("received 000012345_2.jpg", T_SHORT),
		       "no scan since the press before: the current number's");
		free(out);
		specify_latency(0);
	}

	tap_ok(specify_holds(dir, "000000123.jpg@13 000000123_2.cr2@13 000000123_2.jpg@13 "
			     "000012345.jpg@14 000012345_2.jpg@14", T_LONG),
	       "Specify has each file once, on its record (000000123: 13, 000012345: "
	       "14), with the bytes of the session folder's file");
	/* gphoto2 hands in the RAW first; its JPEG still comes first on the
	 * record, as Specify's image of it. */
	cJSON *raw = harness_attachment_of(&hs, "000000123_2.cr2", 13, NULL);
	cJSON *jpeg = harness_attachment_of(&hs, "000000123_2.jpg", 13, NULL);
	double raw_ord = cJSON_GetNumberValue(cJSON_GetObjectItem(raw, "ordinal"));
	double jpeg_ord = cJSON_GetNumberValue(cJSON_GetObjectItem(jpeg, "ordinal"));
	tap_ok(jpeg_ord == 1 && raw_ord == 2,
	       "the pair's JPEG takes the place before its RAW (ordinals %g and %g)",
	       jpeg_ord, raw_ord);
	cJSON_Delete(raw);
	cJSON_Delete(jpeg);
	/* The station takes them as its own: its screen says each is
	 * attached, in whatever order (and whenever) the pipeline finished
	 * them. */
	const char *const names[] = { "000000123.jpg", "000000123_2.cr2", "000000123_2.jpg",
				      "000012345.jpg", "000012345_2.jpg" };
	bool all = true;
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char line[64];
		snprintf(line, sizeof line, "attached ✓ %s", names[i]);
		st.seen = shots_from;
		all = station_says(line, T_SHORT) && all;
	}
	tap_ok(all, "the station's screen says each is attached");
	st.seen = shots_from;
	tap_ok(station_says("received 000000123.jpg from another program", T_SHORT),
	       "and said when the first came in from gphoto2");
	tap_ok(harness_dir_is(dir, "000000123.jpg 000000123_2.cr2 000000123_2.jpg "
			      "000000123_2.xmp 000012345.jpg 000012345_2.jpg"),
	       "the session folder holds them (and the RAW's XMP sidecar)");
	/* u takes back the last capture, whatever brought it in. */
	tap_ok(station_type("u") && station_says("taken back: 000012345_2.jpg", T_LONG),
	       "u takes back the hook's last file");
	tap_ok(station_type("u") && station_says("taken back: 000012345.jpg", T_LONG),
	       "u again: the one before");
	tap_ok(specify_holds(dir, "000000123.jpg@13 000000123_2.cr2@13 000000123_2.jpg@13",
			     T_LONG), "Specify holds neither any more");
	tap_ok(harness_dir_is(dir, "000000123.jpg 000000123_2.cr2 000000123_2.jpg "
			      "000000123_2.xmp"), "nor does the session folder");
out:
	finish(gp, 0);
	tap_is_int(station_quit(), 0, "the station quits, status 0 (no leaks)");
	/* The station is gone: its last number (000012345) names nothing
	 * more; the file waits in its folder for the next station.  Another
	 * shot: other bytes than the one handed in by hand above. */
	char late[600];
	snprintf(late, sizeof late, "%s/late-shot.jpg", harness_home());
	const char *cp[] = { "sh", "-c", "cat \"$0\" > \"$1\" && printf '\\001' >> \"$1\"",
			     COPYSTAND_SAMPLES "/not-a-number.jpg", late, NULL };
	out = NULL;
	int rc = harness_run_program(cp, NULL) == 0 ? hook(dl, NULL, "download", late, &out) : -1;
	bool kept = rc == 0 && out && strstr(out, "(as pending_");
	if (!kept)
		diag_lines("hook", out ? out : "");
	tap_ok(kept, "with no station running the hook still keeps the file");
	free(out);
	if (cam)
		tap_is_int(ptpip_cam_stop(cam), 0, "the camera emulator exits cleanly");
}

/* darktable's Lua script (plugin/darktable/copystand.lua) in a stand-in
 * for darktable's Lua API: a capture the tethering view imports goes to
 * the running station, named from the number current when it was shot
 * and attached; an
 * ordinary import does not; a file name with a quote and a space gets
 * through the shell whole. */
static void test_darktable(void)
{
	char dir[600], shots[600], plain[700], odd[700], *out = NULL, name[2][64] = { "", "" };
	const char *lua = "lua5.4";

	tap_diag("darktable's Lua script");
	if (finish(run((const char *[]){ lua, "-v", NULL }, "/", NULL, NULL, NULL), T_SHORT)) {
		tap_ok(1, "# SKIP no lua5.4 (scripts/deps.sh test installs it)");
		return;
	}
	snprintf(dir, sizeof dir, "%s/darktable-session", harness_home());
	snprintf(shots, sizeof shots, "%s/darktable-shots", harness_home());
	snprintf(plain, sizeof plain, "%s/IMG_0100.JPG", shots);
	snprintf(odd, sizeof odd, "%s/IMG 0101's.JPG", shots);
	mkdir(dir, 0755);
	mkdir(shots, 0755);
	const char *cp1[] = { "cp", COPYSTAND_SAMPLES "/not-a-number.jpg", plain, NULL };
	/* Two shots never have the same bytes: the second ends in a byte more. */
	const char *cp2[] = { "sh", "-c", "cat \"$0\" > \"$1\" && printf '\\000' >> \"$1\"",
			      COPYSTAND_SAMPLES "/not-a-number.jpg", odd, NULL };
	if (!tap_ok(harness_run_program(cp1, NULL) == 0 && harness_run_program(cp2, NULL) == 0,
		    "darktable's own copies of two shots") ||
	    !tap_ok(station_start(dir), "a station without a camera"))
		goto out;
	/* The file gphoto2's hook handed in after the last station had gone
	 * (test_tethered) carries no time: shot before that station ended,
	 * or after? Held, and shown at this start. */
	tap_ok(station_says("HELD pending_", T_SHORT) &&
	       station_says("p 000012345, n no number", T_SHORT) && answer("n") &&
	       station_says("no catalog number", T_SHORT),
	       "the last session's held file is shown at the start; n: it has no number");
	tap_ok(station_scan("000000123"), "000000123 is scanned");
	setenv("COPYSTAND_HOOK", GPHOTO2_HOOK_EXE, 1);
	const char *in_lighttable[] = { lua, DARKTABLE_HOST, DARKTABLE_SCRIPT, "lighttable",
					plain, NULL };
	tap_ok(harness_run_program(in_lighttable, &out) == 0 && out && !*out,
	       "an import in the lighttable is left alone");
	if (out && *out)
		diag_lines("lua", out);
	free(out);
	const char *tethered[] = { lua, DARKTABLE_HOST, DARKTABLE_SCRIPT, "tethering", plain, odd,
				   NULL };
	tap_ok(harness_run_program(tethered, &out) == 0 && out, "two tethered captures");
	const char *at[2] = {
		out ? strstr(out, "print: copystand: IMG_0100.JPG → the station (as ") : NULL,
		out ? strstr(out, "print: copystand: IMG 0101's.JPG → the station (as ") : NULL,
	};
	for (int i = 0; i < 2; i++)
		if (at[i])
			sscanf(strstr(at[i], "(as ") + 4, "%63s", name[i]);
	if (strncmp(name[0], "pending_", 8) || strncmp(name[1], "pending_", 8))
		diag_lines("lua", out ? out : "");
	tap_ok(!strncmp(name[0], "pending_", 8), "the first handed to the station: %s", name[0]);
	tap_ok(!strncmp(name[1], "pending_", 8),
	       "a name with a quote and a space gets through whole: %s", name[1]);
	free(out);
	unsetenv("COPYSTAND_HOOK");
	/* Files that carry no capture time, after a scan: held, each until
	 * the technician says; the newer first. */
	char held[2][96];
	for (int i = 0; i < 2; i++)
		snprintf(held[i], sizeof held[i], "HELD %s: p no number, n 000000123", name[1 - i]);
	tap_ok(station_says(held[0], T_LONG) && answer("n") &&
	       station_says(held[1], T_LONG) && answer("n"),
	       "both held: the station cannot tell when they were shot; n, n");
	tap_ok(station_says("attached ✓ 000000123", T_LONG) &&
	       station_says("attached ✓ 000000123", T_LONG), "and the station attaches them");
out:
	tap_is_int(station_quit(), 0, "the station quits, status 0 (no leaks)");
}

/* Images the stand-in holds on collection object record. */
static int record_images(long long record)
{
	int n = 0;

	cJSON_Delete(harness_attachment_of(&hs, NULL, record, &n));
	return n;
}

/* Answers the capture the station shows held now (the last one it
 * printed), if any, with the number its press had: the hook's log (or,
 * watching a folder, the station's "took" lines) tells which camera
 * file each provisional name is, truth[k] the number of IMG_000k+1.  One
 * answered is not answered again while the station has not taken the
 * answer (5 s).  True if it answered. */
static bool answer_held(const char *log, const char *const *truth, int n, bool watched)
{
	static char last[96];
	static double last_at;
	char *held = NULL, name[96], *text, line[160];

	for (char *p = st.out; p && (p = strstr(p, "HELD pending_")); p++)
		held = p;
	if (!held || sscanf(held + 5, "%95[^:]", name) != 1 ||
	    (!strcmp(name, last) && harness_now() - last_at < 5) ||
	    !(text = watched ? strdup(st.out) : text_of(log)))
		return false;
	for (int k = 0; k < n; k++) {
		if (watched)
			snprintf(line, sizeof line, "took IMG_%04d.JPG as %s", k + 1, name);
		else
			snprintf(line, sizeof line, "IMG_%04d.JPG → the station (as %s ", k + 1,
				 name);
		if (strstr(text, line)) {
			char number[32];
			snprintf(number, sizeof number, "= %s", truth[k]);
			snprintf(last, sizeof last, "%s", name);
			last_at = harness_now();
			answer(number);
			free(text);
			return true;
		}
	}
	free(text);
	return false;
}

/* gphoto2 and the hook, a body that takes delay seconds from press to
 * file, its clock 37 s ahead, the next label scanned from 1 s before to
 * 2 s after each press of its button.  The station cannot read the
 * camera's clock (gphoto2 holds it), so shots around scans are held; each
 * held one is answered with the number current at its press (= NUMBER),
 * which must be among those it offers, and every shot must end on its
 * record. */
static void race(double delay, bool watched)
{
	static const double offsets[] = { -1.0, -0.3, -0.05, 0.05, 0.3, 2.0 };
	static const char *const numbers[] = { "000000010", "000000011", "000000012" };
	const char *truth[sizeof offsets / sizeof *offsets];
	char name[32], dir[CASE_PATH], dl[CASE_PATH], log[CASE_PATH];
	int want[3], answered = 0, cur = 0, n = (int)(sizeof offsets / sizeof *offsets);
	ptpip_cam *cam = NULL;
	pid_t gp = -1;

	tap_diag("gphoto2 race: %.1f s from press to file, %s", delay,
		 watched ? "the station watching gphoto2's folder" : "through the hook");
	snprintf(name, sizeof name, "race-%g%s", delay, watched ? "w" : "");
	case_paths(name, dir, dl, log);
	for (int k = 0; k < 3; k++)
		want[k] = record_images(10 + k);
	if (!station_start_watching(dir, watched ? dl : NULL) || !station_scan(numbers[0]) ||
	    !(cam = ptpip_cam_start(PTPIP_CAMERA_EXE, NULL)) ||
	    !camera_set(cam, "delay %g", delay) || !camera_set(cam, "clock %d", 37) ||
	    (gp = gphoto2_start_hook(cam, dl, NULL, n, log, !watched)) < 0) {
		tap_ok(0, "the station, the camera and gphoto2 start");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		int next = (cur + 1) % 3;
		if (offsets[i] < 0) {
			station_type(numbers[next]);
			nap_ms((long)(-offsets[i] * 1000));
		}
		press(cam, "jpeg");
		truth[i] = numbers[offsets[i] < 0 ? next : cur];
		want[offsets[i] < 0 ? next : cur]++;
		if (offsets[i] > 0) {
			nap_ms((long)(offsets[i] * 1000));
			station_type(numbers[next]);
		}
		cur = next;
		/* Its file in before the next press: a camera's come in order. */
		nap_ms((long)(delay * 1000) + 700);
	}
	tap_is_int(finish(gp, T_SHORT), 0, "gphoto2 ends after its files, status 0");
	gp = -1;
	double until = harness_now() + T_LONG;
	bool done = false;
	while (!done && harness_now() < until) {
		answered += answer_held(log, truth, n, watched);
		station_read(200);
		done = record_images(10) == want[0] && record_images(11) == want[1] &&
		       record_images(12) == want[2];
	}
	tap_ok(done, "%.1f s to the file, scans -1 s..+2 s around presses: every shot on the "
	       "record current at its press (%d held, answered with their number)", delay,
	       answered);
	if (!done)
		for (int k = 0; k < 3; k++)
			tap_diag("record %d: %d images, want %d", 10 + k, record_images(10 + k),
				 want[k]);
out:
	finish(gp, 0);
	tap_is_int(station_quit(), 0, "the station quits, status 0 (no leaks)");
	if (cam)
		ptpip_cam_stop(cam);
}

/* gphoto2 saving the camera's RAW+JPEG presses into the folder a station
 * watches: each file taken once whole (a CR2 too: TIFF-structured, its
 * strips within the file), and the two of a press attached under one name
 * (the second takes the first's), with the bytes gphoto2 saved.  The
 * station cannot tell whether the first press after the scan came before
 * it: held, until the technician says (n: the number after the scan); the
 * next press follows it. */
static void test_watched_pairs(void)
{
	char dir[CASE_PATH], dl[CASE_PATH], log[CASE_PATH];
	ptpip_cam *cam = NULL;
	pid_t gp = -1;

	tap_diag("gphoto2 saving RAW+JPEG presses into the folder a station watches");
	case_paths("pairs", dir, dl, log);
	if (!tap_ok(station_start_watching(dir, dl) && station_scan("000000009") &&
		    (cam = ptpip_cam_start(PTPIP_CAMERA_EXE, NULL)) &&
		    camera_set(cam, "payload raw+jpeg") &&
		    (gp = gphoto2_start_hook(cam, dl, NULL, 4, log, false)) > 0,
		    "a station watching gphoto2's folder, 000000009 scanned, the camera on RAW+JPEG"))
		goto out;
	tap_ok(press(cam, "") && station_says("HELD pending_", T_LONG) && answer("n"),
	       "the first press after the scan: held; n: 000000009's");
	tap_ok(station_says("attached ✓ 000000009.", T_LONG) &&
	       station_says("attached ✓ 000000009.", T_LONG), "both its files are attached");
	tap_ok(press(cam, "") && station_says("attached ✓ 000000009_2.", T_LONG) &&
	       station_says("attached ✓ 000000009_2.", T_LONG),
	       "the next press: both its files, 000000009's without asking");
	tap_is_int(finish(gp, T_SHORT), 0, "gphoto2 ends after its 4 files, status 0");
	gp = -1;
	tap_ok(st.out && !strstr(st.out, "NOT TAKEN"), "the station took every file");
	bool pairs = pair_attached(dir, dl, 1, "000000009", 9);
	pairs = pair_attached(dir, dl, 2, "000000009_2", 9) && pairs;
	tap_ok(pairs, "Specify has each press's CR2 and JPEG under one name, the CR2 with "
	       "gphoto2's bytes");
	tap_is_int(record_images(9), 4, "and nothing else on the record");
out:
	finish(gp, 0);
	tap_is_int(station_quit(), 0, "the station quits, status 0 (no leaks)");
	if (cam)
		tap_is_int(ptpip_cam_stop(cam), 0, "the camera emulator exits cleanly");
}

int main(void)
{
	char *password = NULL;

	/* The camera's control socket may close under a write. */
	signal(SIGPIPE, SIG_IGN);
	harness_home();
	if (finish(run((const char *[]){ "gphoto2", "--version", NULL }, "/", NULL, NULL, NULL),
		   T_SHORT) != 0) {
		harness_cleanup();
		return tap_skip_all("the gphoto2 program does not run (scripts/deps.sh test installs it)");
	}
	const char *why = harness_standin_start(&hs);
	if (why)
		return tap_skip_all(why);
	if (asprintf(&password, "COPYSTAND_PASSWORD=%s", hs.password) < 0)
		abort();
	putenv(password);

	test_no_station();
	test_tethered();
	test_darktable();
	race(0.1, false);
	race(2.0, false);
	race(0.1, true);
	race(2.0, true);
	test_watched_pairs();

	harness_server_stop(&hs);
	harness_cleanup();
	unsetenv("COPYSTAND_PASSWORD");
	free(password);
	return tap_done();
}
