/* copystand demo: the main job on embedded defaults.  Starts the bundled
 * Specify stand-in and the emulated PTP/IP camera on loopback, runs the
 * real `copystand station` on a pseudo-terminal and plays a technician:
 * scans, Enter, the camera's own button, a RAW+JPEG pair, a second view,
 * a label scanned right after the shutter (the shot held, then decided),
 * an unknown number, an undo.  With --watch the station owns no camera and
 * watches a folder instead; the demo plays the capture program too, which
 * downloads each press into that folder.  Then prints a table of the records and
 * what Specify holds for them.  Everything lives in a throw-away folder
 * (HOME, journal, session folder), so the demo never touches the user's
 * own journal or config. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "camera.h"
#include "cli.h"
#include "commands.h"
#include "ptpip-client.h"
#include "specify.h"
#include "standin.h"
#include "station.h"

#if !defined(COPYSTAND_PTPIP_CAMERA) || !defined(COPYSTAND_INSTALLED_CAMERA) || \
	!defined(COPYSTAND_INSTALLED_STANDIN)
#error "plugin/meson.build names the emulated camera and the stand-in"
#endif

#define EXPECT_TIMEOUT_S 60

/* What the demo runs: beside an installed copystand (installed is
 * relative to its folder), else in the build tree it was built in. */
static void helper(char out[PATH_MAX], const char *installed, const char *built)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		char joined[2 * PATH_MAX];
		if ((slash = strrchr(self, '/')) &&
		    snprintf(joined, sizeof joined, "%.*s/%s", (int)(slash - self), self,
			     installed) > 0 && realpath(joined, out))
			return;
	}
	snprintf(out, PATH_MAX, "%s", built);
}

struct demo {
	char dir[512];            /* throw-away HOME */
	standin *st;
	ptpip_cam *cam;
	pid_t child;
	int pty;
	char seen[65536];         /* the station's output since the last step */
	size_t nseen;
	char line[4096];          /* the output line being assembled */
	size_t nline;
	char typed[64];           /* the terminal echoes it: not shown twice */
	bool clock_read;          /* the station has read the camera's clock */
	bool watch;               /* --watch: the station watches a folder */
	char watched[600];        /* which the demo's capture program fills */
	camera *program;          /* that program's hold on the camera */
};

/* Shows a line of the station's screen, without its status-line redraws. */
static void show_line(struct demo *d)
{
	d->line[d->nline] = '\0';
	d->nline = 0;
	char *p = d->line;
	while (!strncmp(p, "\033[K", 3))
		p += 3;
	if (!*p || strstr(p, "] queue ") || strstr(p, "finishing ") ||
	    strcmp(p, d->typed) == 0)
		return;
	d->clock_read |= strstr(p, "camera: its clock is") != NULL;
	printf("  station │ %s\n", p);
}

/* Reads what the station printed; false when it ended. */
static bool pump(struct demo *d, int timeout_ms)
{
	struct pollfd p = { .fd = d->pty, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return true;
	if ((n = read(d->pty, buf, sizeof buf)) <= 0)
		return false;
	for (ssize_t i = 0; i < n; i++) {
		if (d->nseen + 1 < sizeof d->seen)
			d->seen[d->nseen++] = buf[i] == '\0' ? ' ' : buf[i];
		if (buf[i] == '\r' || buf[i] == '\n' || d->nline + 1 == sizeof d->line)
			show_line(d);
		else if (buf[i] != '\a')
			d->line[d->nline++] = buf[i];
	}
	d->seen[d->nseen] = '\0';
	fflush(stdout);
	return true;
}

/* Waits until the station has printed text (since the last step).  What
 * came after it stays for the next step: two lines can arrive in one read
 * (a RAW+JPEG pair's two attaches). */
static int expect(struct demo *d, const char *text, cs_error *err)
{
	time_t until = time(NULL) + EXPECT_TIMEOUT_S;
	char *at;

	while (!(at = strstr(d->seen, text))) {
		if (time(NULL) > until || !pump(d, 200))
			return cs_error_set(err, CS_E_TIMEOUT, "the station never said "
					    "\"%s\"", text);
	}
	at += strlen(text);
	d->nseen -= (size_t)(at - d->seen);
	memmove(d->seen, at, d->nseen + 1);
	return 0;
}

static int type(struct demo *d, const char *text, cs_error *err)
{
	printf("  you     │ %s\n", *text ? text : "(Enter)");
	snprintf(d->typed, sizeof d->typed, "%s", text);
	if (dprintf(d->pty, "%s\n", text) < 0)
		return cs_error_set(err, CS_E_IO, "cannot type into the station");
	return 0;
}

/* The camera's own settings, for a step of the story. */
static int camera_set(struct demo *d, const char *setting, cs_error *err)
{
	char *reply = ptpip_cam_control(d->cam, "%s", setting);
	bool ok = reply && !strncmp(reply, "OK", 2);

	free(reply);
	return ok ? 0 : cs_error_set(err, CS_E_IO, "the emulated camera refused %s", setting);
}

static void note(const char *text)
{
	printf("  note    │ %s\n", text);
}

/* Waits until the station has read the camera's clock: presses of its
 * button are placed by it. */
static int clock_known(struct demo *d, cs_error *err)
{
	time_t until = time(NULL) + EXPECT_TIMEOUT_S;

	while (!d->clock_read)
		if (time(NULL) > until || !pump(d, 200))
			return cs_error_set(err, CS_E_TIMEOUT, "the station never read the "
					    "camera's clock");
	return 0;
}

static int press(struct demo *d, const char *what, cs_error *err)
{
	char *reply = ptpip_cam_control(d->cam, "press %s", what);
	bool ok = reply && !strncmp(reply, "OK", 2);

	printf("  camera  │ (shutter button pressed: %s)\n", what);
	free(reply);
	return ok ? 0 : cs_error_set(err, CS_E_IO, "the emulated camera failed");
}

/* With --watch: the capture program's shot, pressed on the camera and
 * downloaded by it into the watched folder (as .NAME.part, then renamed,
 * as such programs write). */
static int program_shoots(struct demo *d, const char *what, cs_error *err)
{
	camera_options o = { .port = ptpip_cam_port_path(d->cam) };
	camera_capture cap;
	int ret;

	if (!d->program && (ret = camera_open(&o, &d->program, err)))
		return ret;
	if ((ret = press(d, what, err)) ||
	    (ret = camera_wait_capture(d->program, EXPECT_TIMEOUT_S * 1000, d->watched, NULL,
				       &cap, err)))
		return ret;
	for (size_t i = 0; i < cap.nfiles; i++)
		printf("  program │ (saved %s in the watched folder)\n",
		       strrchr(cap.files[i].path, '/') + 1);
	return 0;
}

/* The station, as the technician would start it, on a pseudo-terminal. */
static int start_station(struct demo *d, cs_error *err)
{
	char *shots = NULL;
	struct winsize ws = { .ws_row = 40, .ws_col = 200 };

	if (asprintf(&shots, "%s/Pictures/session", d->dir) < 0)
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	d->child = forkpty(&d->pty, NULL, NULL, &ws);
	if (d->child == 0) {
		char *data, *config;
		if (asprintf(&data, "%s/data", d->dir) < 0 ||
		    asprintf(&config, "%s/config", d->dir) < 0)
			_exit(127);
		setenv("HOME", d->dir, 1);
		setenv("XDG_DATA_HOME", data, 1);
		setenv("XDG_CONFIG_HOME", config, 1);
		setenv("COPYSTAND_PASSWORD", "testpass", 1);
		unsetenv("COPYSTAND_SERVER");
		unsetenv("COPYSTAND_USER");
		unsetenv("COPYSTAND_COLLECTION");
		execl("/proc/self/exe", "copystand", "station", "--server", standin_url(d->st),
		      "--user", "spadmin", "--collection", "Fish",
		      d->watch ? "--watch" : "--port",
		      d->watch ? d->watched : ptpip_cam_port_path(d->cam),
		      "--dir", shots, (char *)NULL);
		_exit(127);
	}
	free(shots);
	if (d->child < 0)
		return cs_error_set(err, CS_E_IO, "cannot start the station: %s", strerror(errno));
	return 0;
}

/* The technician's session. */
static int play(struct demo *d, cs_error *err)
{
	int ret;

#define STEP(x) do { if ((ret = (x))) return ret; } while (0)
	STEP(expect(d, "ready — scan a specimen", err));
	STEP(expect(d, "camera: PTP/IP Camera ready", err));
	STEP(type(d, "000000001", err));
	STEP(expect(d, "Esox lucius", err));
	STEP(type(d, "", err));
	STEP(expect(d, "attached ✓ 000000001.jpg", err));
	STEP(type(d, "", err));
	STEP(expect(d, "attached ✓ 000000001_2.jpg", err));
	STEP(clock_known(d, err));
	STEP(type(d, "2", err));
	STEP(expect(d, "(0 images)", err));
	/* The specimen goes on the stand. */
	nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
	STEP(press(d, "raw+jpeg", err));
	STEP(expect(d, "attached ✓ 000000002.", err));
	STEP(expect(d, "attached ✓ 000000002.", err));
	note("the camera now takes a second from the shutter to the file and writes no "
	     "capture time; the next label is scanned 0.2 s after the shutter");
	STEP(camera_set(d, "exif none", err));
	STEP(camera_set(d, "delay 1", err));
	STEP(press(d, "jpeg", err));
	nanosleep(&(struct timespec){ .tv_nsec = 200000000 }, NULL);
	STEP(type(d, "000000123", err));
	STEP(expect(d, "HELD", err));
	note("copystand cannot tell which specimen the shot shows: it holds it and asks; "
	     "it was 000000002's (the number before the scan): p");
	/* A person reads the line first; a key at once is refused. */
	nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 500000000 }, NULL);
	STEP(type(d, "p", err));
	STEP(expect(d, "attached ✓ 000000002_2.jpg", err));
	STEP(camera_set(d, "exif subsec", err));
	STEP(camera_set(d, "delay 0", err));
	STEP(type(d, "", err));
	STEP(expect(d, "attached ✓ 000000123.jpg", err));
	STEP(type(d, "u", err));
	STEP(expect(d, "taken back: 000000123.jpg", err));
	STEP(type(d, "", err));
	STEP(expect(d, "attached ✓ 000000123.jpg", err));
	STEP(type(d, "99999", err));
	STEP(expect(d, "NOT FOUND", err));
	STEP(type(d, "", err));
	STEP(expect(d, "NOT SHOOTING", err));
	STEP(type(d, "q", err));
	STEP(expect(d, "bye", err));
#undef STEP
	while (pump(d, 1000))
		;
	return 0;
}

/* The session with a capture program that writes into a watched folder:
 * the station cannot read that camera's clock, so the first shot after a
 * scan is held for a word; the rest follow. */
static int play_watch(struct demo *d, cs_error *err)
{
	int ret;

#define STEP(x) do { if ((ret = (x))) return ret; } while (0)
	STEP(expect(d, "ready — scan a specimen", err));
	STEP(type(d, "000000001", err));
	STEP(expect(d, "Esox lucius", err));
	nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
	STEP(program_shoots(d, "jpeg", err));
	STEP(expect(d, "HELD", err));
	note("the first shot after a scan: copystand cannot read this camera's clock, so "
	     "it may have been pressed before the scan; it was 000000001's (the number "
	     "after the scan): n");
	nanosleep(&(struct timespec){ .tv_sec = 1, .tv_nsec = 500000000 }, NULL);
	STEP(type(d, "n", err));
	STEP(expect(d, "attached ✓ 000000001", err));
	STEP(program_shoots(d, "jpeg", err));
	STEP(expect(d, "attached ✓ 000000001_2.jpg", err));
	STEP(type(d, "u", err));
	STEP(expect(d, "taken back: 000000001_2.jpg", err));
	STEP(program_shoots(d, "jpeg", err));
	STEP(expect(d, "attached ✓ 000000001_2.jpg", err));
	STEP(type(d, "q", err));
	STEP(expect(d, "bye", err));
#undef STEP
	while (pump(d, 1000))
		;
	return 0;
}

/* For each number scanned: its record, taxon and the files Specify now
 * holds for it, asked of Specify itself. */
static int print_table(struct demo *d, cs_error *err)
{
	static const char *const numbers[] = { "000000001", "000000002", "000000123",
					       "000099999" };
	specify_login login = {
		.server = standin_url(d->st), .user = "spadmin", .password = "testpass",
		.collection = "Fish",
	};
	specify_session *s = NULL;
	int ret = specify_session_login(&login, &s, err);

	if (ret == 0)
		printf("\n%-12s %-7s %-20s %s\n", "catalog no.", "record", "taxon",
		       "attached in Specify");
	for (size_t i = 0; ret == 0 && i < sizeof numbers / sizeof numbers[0]; i++) {
		station_record r;
		char id[24] = "-";
		if ((ret = station_record_describe(s, numbers[i], &r, err)))
			break;
		if (r.count)
			snprintf(id, sizeof id, "%lld", r.id);
		printf("%-12s %-7s %-20s %s\n", numbers[i], id, r.count ? r.taxon : "-",
		       r.count ? r.names : "(no such record: not shot)");
	}
	if (s) {
		cs_error ignored;
		specify_session_logout(s, &ignored);
		specify_session_free(s);
	}
	return ret;
}

static void demo_free(struct demo *d)
{
	if (d->child > 0) {
		kill(d->child, SIGTERM);
		waitpid(d->child, NULL, 0);
	}
	if (d->pty > 0)
		close(d->pty);
	camera_free(d->program);
	if (d->cam)
		ptpip_cam_stop(d->cam);
	standin_stop(d->st);
	if (d->dir[0]) {
		char *rm;
		if (asprintf(&rm, "rm -rf '%s'", d->dir) >= 0) {
			if (system(rm) != 0)
				fprintf(stderr, "copystand demo: could not remove %s\n", d->dir);
			free(rm);
		}
	}
}

int cmd_demo(int argc, char **argv)
{
	struct demo d = { .pty = -1 };
	cs_error err = { 0 };
	int ret, status;

	d.watch = argc == 2 && strcmp(argv[1], "--watch") == 0;
	if (argc > 1 && !d.watch) {
		bool help = strcmp(argv[1], "--help") == 0;
		fputs("usage: copystand demo [--watch]\n"
		      "Runs copystand station against a bundled stand-in Specify and an "
		      "emulated camera on loopback, plays a technician's session and "
		      "prints what got attached.  --watch: the station watches the folder "
		      "a capture program writes into, and the demo plays that program.\n",
		      help ? stdout : stderr);
		return help ? 0 : 2;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(d.dir, sizeof d.dir, "%s/copystand-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d.dir)) {
		d.dir[0] = '\0';
		return cli_fail(&(cs_error){ .msg = "cannot make a temporary folder" });
	}
	const char *cam_args[] = { NULL };
	char emulator[PATH_MAX], script[PATH_MAX];
	helper(emulator, COPYSTAND_INSTALLED_CAMERA, COPYSTAND_PTPIP_CAMERA);
	helper(script, COPYSTAND_INSTALLED_STANDIN, COPYSTAND_STANDIN_SCRIPT);
	/* standin_start() runs the script this names. */
	if (!getenv("COPYSTAND_STANDIN"))
		setenv("COPYSTAND_STANDIN", script, 1);
	if ((ret = standin_start(NULL, &d.st, &err)) == 0 &&
	    !(d.cam = ptpip_cam_start(emulator, cam_args)))
		ret = cs_error_set(&err, CS_E_IO, "cannot start the emulated camera "
				   "(%s): install copystand whole, or build the whole "
				   "project", emulator);
	if (ret == 0) {
		printf("Specify stand-in at %s (%s),\nemulated camera at %s (%s)\n",
		       standin_url(d.st), getenv("COPYSTAND_STANDIN"),
		       ptpip_cam_port_path(d.cam), emulator);
		snprintf(d.watched, sizeof d.watched, "%s/capture", d.dir);
		if (d.watch && mkdir(d.watched, 0755) < 0)
			ret = cs_error_set(&err, CS_E_IO, "%s: %s", d.watched, strerror(errno));
		else
			ret = start_station(&d, &err);
	}
	if (ret == 0)
		ret = d.watch ? play_watch(&d, &err) : play(&d, &err);
	if (ret == 0 && waitpid(d.child, &status, 0) == d.child) {
		d.child = 0;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			ret = cs_error_set(&err, CS_E_IO, "the station ended badly");
	}
	if (ret == 0)
		ret = print_table(&d, &err);
	demo_free(&d);
	if (ret) {
		fprintf(stderr, "copystand demo: %s\n", err.msg);
		return 1;
	}
	return 0;
}
