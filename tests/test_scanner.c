/* hardware/scanner over pseudo-terminals: a pty stands in for a serial
 * scanner (line endings, scans in pieces and in bunches, noise, over-long
 * lines, the device pulled), and for the terminal a keyboard-wedge
 * scanner types into (in a child whose controlling terminal it is).
 * Input devices need /dev/uinput; without it those cases are skipped.
 *
 * scanner.c is included, not linked, so the key table (static there) is
 * tested without a word of it in scanner.h. */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/uinput.h>

#include "scanner.c"

#include "harness.h"
#include "tap.h"

/* A pty: the master is the scanner's end, path the device copystand opens. */
struct pty {
	int master;
	char path[64];
};

static bool pty_new(struct pty *p)
{
	int slave;

	if (openpty(&p->master, &slave, NULL, NULL, NULL) < 0)
		return false;
	if (ttyname_r(slave, p->path, sizeof p->path) != 0) {
		close(slave);
		close(p->master);
		return false;
	}
	/* The scanner opens its own; the master keeps the pty alive. */
	close(slave);
	return true;
}

static void put(int fd, const char *bytes, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, bytes, n);

		if (w < 0) {
			tap_diag("write to the pty: %s", strerror(errno));
			return;
		}
		bytes += w;
		n -= (size_t)w;
	}
}

#define PUT(fd, str) put((fd), (str), sizeof(str) - 1)

static bool readable(const scanner *s, int timeout_ms)
{
	struct pollfd pfd = { .fd = scanner_fd(s), .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) == 1;
}

/* What scanner_read_line() gives once bytes written to the master had up to
 * 2 s to come through: a line or an error, or 0 if none came. */
static int next(scanner *s, char *buf, size_t size, cs_error *err)
{
	double until = harness_now() + 2;
	int ret;

	buf[0] = '\0';
	do {
		ret = scanner_read_line(s, buf, size, err);
		if (ret != 0)
			return ret;
	} while (readable(s, 100) || harness_now() < until);
	return 0;
}

/* What scanner_read_line() gives once the bytes written are surely in:
 * for checking that no line is there. */
static int settled(scanner *s, char *buf, size_t size, cs_error *err)
{
	(void)readable(s, 100);
	return scanner_read_line(s, buf, size, err);
}

static void check_line(scanner *s, const char *want, const char *what)
{
	char buf[SCANNER_LINE_MAX];
	cs_error err = { 0 };
	int ret = next(s, buf, sizeof buf, &err);

	if (!tap_is_int(ret, 1, what))
		tap_diag("%s", err.msg);
	tap_is_str(buf, want, what);
}

static void check_none(scanner *s, const char *what)
{
	char buf[SCANNER_LINE_MAX];
	cs_error err = { 0 };

	tap_is_int(settled(s, buf, sizeof buf, &err), 0, what);
}

/* --- a serial scanner ---------------------------------------------------- */

static void test_serial_lines(scanner *s, int master)
{
	struct termios t;
	struct pollfd pfd = { .fd = scanner_fd(s), .events = POLLIN };

	tap_ok(tcgetattr(scanner_fd(s), &t) == 0 &&
	       !(t.c_lflag & (ICANON | ECHO)) && !(t.c_iflag & (ICRNL | IGNCR | INLCR)),
	       "serial: set raw (no echo, no line editing, CR and LF untouched)");
	tap_is_int(poll(&pfd, 1, 0), 0, "poll: nothing to read before a scan");
	check_none(s, "no line before a scan");

	PUT(master, "A-1\r\n");
	check_line(s, "A-1", "CRLF ends a scan");
	check_none(s, "the LF of a CRLF is no empty line");
	PUT(master, "B2\n");
	check_line(s, "B2", "LF ends a scan");
	PUT(master, "C3\r");
	check_line(s, "C3", "CR ends a scan");

	PUT(master, "X1\rX2\nX3\r\nX4\n");
	check_line(s, "X1", "several scans in one write: first");
	check_line(s, "X2", "several scans in one write: second");
	check_line(s, "X3", "several scans in one write: third");
	check_line(s, "X4", "several scans in one write: fourth");
	check_none(s, "several scans in one write: no more");
	tap_is_int(poll(&pfd, 1, 0), 0, "poll: nothing to read once all is read");

	PUT(master, "V000");
	tap_ok(readable(s, 2000), "poll: readable when part of a scan came");
	check_none(s, "part of a scan: no line yet");
	PUT(master, "123\r");
	check_line(s, "V000123", "the rest of the scan: the whole line");
	check_none(s, "CRLF split across writes: nothing after the CR's line");
	PUT(master, "\nT2\n");
	check_line(s, "T2", "CRLF split across writes: its LF is dropped");

	PUT(master, "\n");
	check_line(s, "", "an empty line is delivered as such");
}

static void test_serial_noise(scanner *s, int master)
{
	char big[3000 + 1], buf[SCANNER_LINE_MAX], small[4];
	cs_error err = { 0 };
	int ret;

	PUT(master, "\x02]C0123\x1b\x03\r");
	check_line(s, "\x02]C0123\x1b\x03", "control bytes and AIM id passed through");

	PUT(master, "12\0" "34\rOK1\r");
	ret = next(s, buf, sizeof buf, &err);
	tap_is_int(ret, CS_E_INVALID, "a NUL byte: the line is refused");
	tap_ok(strstr(err.msg, "scan again") != NULL, "a NUL byte: says to scan again (%s)", err.msg);
	check_line(s, "OK1", "after a NUL byte: the next scan comes");

	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\r';
	put(master, big, sizeof big);
	PUT(master, "OK2\r");
	ret = next(s, buf, sizeof buf, &err);
	tap_is_int(ret, CS_E_INVALID, "an over-long line is refused");
	tap_ok(strlen(buf) == SCANNER_LINE_MAX - 1 && strspn(buf, "x") == strlen(buf),
	       "an over-long line: its start is given (%zu bytes)", strlen(buf));
	tap_ok(strstr(err.msg, "longer than") != NULL, "an over-long line: says so (%s)", err.msg);
	check_line(s, "OK2", "after an over-long line: the next scan whole");

	PUT(master, "ABCDEFG\rOK3\r");
	ret = next(s, small, sizeof small, &err);
	tap_is_int(ret, CS_E_INVALID, "a line longer than the caller's buffer is refused");
	tap_is_str(small, "ABC", "a line longer than the caller's buffer: cut");
	check_line(s, "OK3", "after a line too long for the buffer: the next whole");
}

static void test_serial(void)
{
	struct pty p;
	scanner *s = NULL;
	cs_error err = { 0 };
	struct termios t;
	int watch;
	double t0;
	char buf[SCANNER_LINE_MAX];
	int ret;

	if (!tap_ok(pty_new(&p), "a pty stands in for a serial scanner"))
		return;
	if (!tap_is_int(scanner_open(p.path, &s, &err), 0, "serial: opened")) {
		tap_diag("%s", err.msg);
		close(p.master);
		return;
	}
	test_serial_lines(s, p.master);
	test_serial_noise(s, p.master);

	/* Another look at the device, to see its settings put back. */
	watch = open(p.path, O_RDWR | O_NOCTTY);
	scanner_free(s);
	tap_ok(watch >= 0 && tcgetattr(watch, &t) == 0 && (t.c_lflag & ICANON),
	       "serial: its settings are put back when freed");
	if (watch >= 0)
		close(watch);

	/* Pulled out mid-scan: an error at once, and again, never 0. */
	tap_is_int(scanner_open(p.path, &s, &err), 0, "serial: opened again");
	PUT(p.master, "PART");
	(void)readable(s, 2000);
	close(p.master);
	t0 = harness_now();
	tap_ok(readable(s, 5000), "gone: poll wakes up");
	ret = next(s, buf, sizeof buf, &err);
	tap_is_int(ret, CS_E_UNREACHABLE, "gone: reported as unreachable");
	tap_ok(strstr(err.msg, "plug it in again") != NULL, "gone: says what to do (%s)", err.msg);
	tap_is_int(scanner_read_line(s, buf, sizeof buf, &err), CS_E_UNREACHABLE,
		   "gone: still an error when read again, not 0");
	tap_ok(harness_now() - t0 < 2, "gone: no waiting (%.2f s)", harness_now() - t0);
	scanner_free(s);
}

/* --- what is not a scanner -------------------------------------------- */

static void test_open_errors(const char *home)
{
	char path[512];
	scanner *s = NULL;
	cs_error err = { 0 };
	struct pty p;
	int fd;

	snprintf(path, sizeof path, "%s/no-such-scanner", home);
	tap_is_int(scanner_open(path, &s, &err), CS_E_UNREACHABLE, "no such device: unreachable");
	tap_ok(s == NULL && strstr(err.msg, "plugged in") != NULL,
	       "no such device: asks if it is plugged in (%s)", err.msg);

	snprintf(path, sizeof path, "%s/a-file", home);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
	tap_is_int(scanner_open(path, &s, &err), CS_E_INVALID, "a plain file: not a scanner");
	tap_is_int(scanner_open("/dev/null", &s, &err), CS_E_INVALID, "/dev/null: not a scanner");
	tap_ok(strstr(err.msg, "not a scanner") != NULL, "not a scanner: says so (%s)", err.msg);
	tap_is_int(scanner_open(NULL, NULL, &err), CS_E_INVALID, "scanner_open: no out");

	if (geteuid() == 0) {
		printf("ok %d # SKIP running as root: a device is never refused\n", ++tap_count);
		return;
	}
	if (!pty_new(&p))
		return;
	chmod(p.path, 0);
	tap_is_int(scanner_open(p.path, &s, &err), CS_E_ACCESS, "no permission: access");
	tap_ok(strstr(err.msg, "dialout") != NULL, "no permission: names the group (%s)", err.msg);
	close(p.master);
}

/* --- the terminal ----------------------------------------------------- */

/* The station's side, in a child whose controlling terminal the pty is:
 * says what it saw, one line each, to report. */
static void terminal_child(const char *tty, int report)
{
	scanner *s = NULL;
	cs_error err = { 0 };
	char buf[SCANNER_LINE_MAX];
	struct termios t;
	int fd, ret;

	setsid();
	dprintf(report, "notty:%d\n", scanner_open(NULL, &s, &err));
	fd = open(tty, O_RDWR);                 /* now the controlling terminal */
	if (fd < 0 || dup2(fd, 0) < 0)
		exit(2);
	close(fd);
	ret = scanner_open(NULL, &s, &err);
	dprintf(report, "open:%d\n", ret);
	if (ret < 0)
		exit(3);
	close(0);                               /* as libgphoto2 does */
	dprintf(report, "cooked:%d\n", tcgetattr(scanner_fd(s), &t) == 0 &&
		(t.c_lflag & ICANON) && (t.c_lflag & ECHO));
	for (;;) {
		struct pollfd pfd = { .fd = scanner_fd(s), .events = POLLIN };

		if (poll(&pfd, 1, 5000) != 1)
			break;
		while ((ret = scanner_read_line(s, buf, sizeof buf, &err)) == 1)
			dprintf(report, "line:%s\n", buf);
		if (ret < 0) {
			dprintf(report, "end:%d\n", ret);
			break;
		}
	}
	scanner_free(s);
	close(report);
	/* Not exit(): LeakSanitizer's check at exit, in a session leader whose
	 * terminal has hung up, deadlocks now and then under load (its
	 * tracer and the stopped process wait for each other).  The terminal
	 * scanner's leaks are checked where the station uses it
	 * (test_station). */
	_exit(0);
}

/* One line from the child, within 5 s. */
static void expect_report(int fd, const char *want, const char *what)
{
	char line[256];
	size_t n = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (n + 1 < sizeof line && poll(&pfd, 1, 5000) == 1 &&
	       read(fd, &line[n], 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	tap_is_str(line, want, what);
}

static void test_terminal(void)
{
	struct pty p;
	int report[2], status = -1;
	pid_t pid;

	if (!pty_new(&p) || pipe(report) < 0) {
		tap_ok(0, "terminal: a pty and a pipe");
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(report[0]);
		close(p.master);
		terminal_child(p.path, report[1]);
	}
	close(report[1]);
	expect_report(report[0], "notty:-10", "terminal: none is unreachable");
	expect_report(report[0], "open:0", "terminal: opened as /dev/tty");
	expect_report(report[0], "cooked:1", "terminal: its mode is left alone");
	PUT(p.master, "V000123\r");
	expect_report(report[0], "line:V000123", "terminal: a scan, after fd 0 closed");
	PUT(p.master, "\r");
	expect_report(report[0], "line:", "terminal: Enter alone is an empty line");
	PUT(p.master, "u\n");
	expect_report(report[0], "line:u", "terminal: a key and Enter is a line");
	PUT(p.master, "12x\x7f" "3\r");
	expect_report(report[0], "line:123", "terminal: Backspace corrects a typed number");
	close(p.master);
	expect_report(report[0], "end:-10", "terminal: closed is unreachable");
	close(report[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "terminal: the child ended cleanly (status %d)", status);
}

/* --- input devices -------------------------------------------------------- */

static void test_keymap(void)
{
	tap_is_int(key_char(KEY_7, false), '7', "keys: a digit");
	tap_is_int(key_char(KEY_KP4, false), '4', "keys: a keypad digit");
	tap_is_int(key_char(KEY_V, false), 'v', "keys: a letter");
	tap_is_int(key_char(KEY_V, true), 'V', "keys: a letter with shift");
	tap_is_int(key_char(KEY_MINUS, false), '-', "keys: -");
	tap_is_int(key_char(KEY_MINUS, true), '_', "keys: _ (shift -)");
	tap_is_int(key_char(KEY_DOT, false), '.', "keys: .");
	tap_is_int(key_char(KEY_SLASH, false), '/', "keys: /");
	tap_is_int(key_char(KEY_KPSLASH, false), '/', "keys: keypad /");
	tap_is_int(key_char(KEY_SPACE, false), ' ', "keys: space");
	tap_is_int(key_char(KEY_ENTER, false), '\n', "keys: Enter ends a line");
	tap_is_int(key_char(KEY_KPENTER, false), '\n', "keys: keypad Enter ends a line");
	tap_is_int(key_char(KEY_LEFTCTRL, false), -1, "keys: Ctrl types nothing");
	tap_is_int(key_char(KEY_F1, false), -1, "keys: F1 types nothing");
	tap_is_int(key_char(KEY_MAX, true), -1, "keys: beyond the table types nothing");
}

static void emit(int fd, unsigned type, unsigned code, int value)
{
	struct input_event ev = { .type = type, .code = code, .value = value };

	if (write(fd, &ev, sizeof ev) != sizeof ev)
		tap_diag("uinput write: %s", strerror(errno));
}

static void press(int fd, unsigned code)
{
	emit(fd, EV_KEY, code, 1);
	emit(fd, EV_SYN, SYN_REPORT, 0);
	emit(fd, EV_KEY, code, 0);
	emit(fd, EV_SYN, SYN_REPORT, 0);
}

/* The /dev/input/eventN of a uinput device, from sysfs. */
static bool uinput_node(int fd, char *path, size_t size)
{
	char sysname[64], dir[128];
	struct dirent *e;
	DIR *d;
	bool found = false;

	if (ioctl(fd, UI_GET_SYSNAME(sizeof sysname), sysname) < 0)
		return false;
	snprintf(dir, sizeof dir, "/sys/devices/virtual/input/%s", sysname);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (e = readdir(d)))
		if (strncmp(e->d_name, "event", 5) == 0) {
			snprintf(path, size, "/dev/input/%s", e->d_name);
			found = true;
		}
	closedir(d);
	return found;
}

static int uinput_keyboard(char *path, size_t size)
{
	static const unsigned keys[] = { KEY_LEFTSHIFT, KEY_V, KEY_0, KEY_1, KEY_MINUS,
					 KEY_A, KEY_ENTER };
	struct uinput_setup setup = { .id = { .bustype = BUS_USB, .vendor = 0x1234, .product = 0x5678 } };
	int fd = open("/dev/uinput", O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(setup.name, sizeof setup.name, "copystand test scanner");
	ioctl(fd, UI_SET_EVBIT, EV_KEY);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		ioctl(fd, UI_SET_KEYBIT, keys[i]);
	if (ioctl(fd, UI_DEV_SETUP, &setup) < 0 || ioctl(fd, UI_DEV_CREATE) < 0 ||
	    !uinput_node(fd, path, size)) {
		close(fd);
		return -1;
	}
	usleep(200 * 1000);                     /* udev makes the node */
	return fd;
}

#define EVDEV_CASES 6

static void test_evdev(void)
{
	char path[128];
	scanner *s = NULL;
	cs_error err = { 0 };
	int kbd, other;

	kbd = access("/dev/uinput", W_OK) == 0 ? uinput_keyboard(path, sizeof path) : -1;
	if (kbd < 0) {
		for (int i = 0; i < EVDEV_CASES; i++)
			printf("ok %d # SKIP no /dev/uinput: no virtual keyboard to scan with\n",
			       ++tap_count);
		return;
	}
	if (!tap_is_int(scanner_open(path, &s, &err), 0, "evdev: opened")) {
		tap_diag("%s", err.msg);
		close(kbd);
		return;
	}
	other = open(path, O_RDONLY | O_CLOEXEC);
	tap_ok(other >= 0 && ioctl(other, EVIOCGRAB, 1) < 0 && errno == EBUSY,
	       "evdev: grabbed, no other program gets the keys");
	if (other >= 0)
		close(other);
	emit(kbd, EV_KEY, KEY_LEFTSHIFT, 1);
	press(kbd, KEY_V);
	emit(kbd, EV_KEY, KEY_LEFTSHIFT, 0);
	press(kbd, KEY_0);
	press(kbd, KEY_1);
	press(kbd, KEY_MINUS);
	press(kbd, KEY_A);
	check_none(s, "evdev: no line before Enter");
	press(kbd, KEY_ENTER);
	check_line(s, "V01-a", "evdev: keys typed as text, Enter ends the scan");
	ioctl(kbd, UI_DEV_DESTROY);
	close(kbd);
	tap_is_int(next(s, path, sizeof path, &err), CS_E_UNREACHABLE, "evdev: unplugged is unreachable");
	scanner_free(s);
}

int main(void)
{
	const char *home = harness_home();

	if (!home)
		return tap_skip_all("no temporary HOME");
	/* A pty whose master is gone must not kill the test with SIGHUP. */
	signal(SIGHUP, SIG_IGN);
	test_serial();
	test_open_errors(home);
	test_terminal();
	test_keymap();
	test_evdev();
	harness_cleanup();
	return tap_done();
}
