/* The barcode scanner: the terminal, a serial device or a grabbed input
 * device, each turned into the same stream of bytes and cut into lines
 * here.  What shapes this file:
 *  - libgphoto2 closes fd 0 at each camera session end, and a shared
 *    O_NONBLOCK would break the station's reads of stdin: the terminal is
 *    opened again as /dev/tty, a file description of our own;
 *  - a CRLF may be split across reads: the LF after a CR that ended a
 *    line is dropped whenever it comes;
 *  - a line is only delivered whole, so a scan that arrives in pieces
 *    waits in pending until its terminator is in. */
#include "scanner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <linux/input.h>

enum kind { KIND_TERMINAL, KIND_SERIAL, KIND_EVDEV };

struct scanner {
	int fd;
	enum kind kind;
	char *name;             /* the path, or "the terminal": for messages */
	struct termios saved;   /* a serial device's settings, put back at the end */
	bool restore;
	unsigned shift;         /* input device: shift keys held, one bit each */
	bool after_cr;          /* the last line ended in CR: drop a LF next */
	bool skipping;          /* dropping the rest of an over-long line */
	size_t len;             /* bytes in pending */
	size_t cut_len;         /* bytes in cut */
	char pending[SCANNER_LINE_MAX]; /* a line and its terminator fit */
	char cut[SCANNER_LINE_MAX];     /* the start of an over-long line */
};

/* Input events read at once: each gives at most one byte. */
#define EVENTS_MAX 64

/* --- input devices: keys to text -------------------------------------- */

/* What each key types on a US keyboard, without and with shift (two
 * bytes, no NUL).  Enough for barcodes; a key not here types nothing. */
static const char keymap[KEY_KPDOT + 1][2] = {
	[KEY_1] = "1!", [KEY_2] = "2@", [KEY_3] = "3#", [KEY_4] = "4$",
	[KEY_5] = "5%", [KEY_6] = "6^", [KEY_7] = "7&", [KEY_8] = "8*",
	[KEY_9] = "9(", [KEY_0] = "0)", [KEY_MINUS] = "-_", [KEY_EQUAL] = "=+",
	[KEY_TAB] = "\t\t",
	[KEY_Q] = "qQ", [KEY_W] = "wW", [KEY_E] = "eE", [KEY_R] = "rR",
	[KEY_T] = "tT", [KEY_Y] = "yY", [KEY_U] = "uU", [KEY_I] = "iI",
	[KEY_O] = "oO", [KEY_P] = "pP",
	[KEY_A] = "aA", [KEY_S] = "sS", [KEY_D] = "dD", [KEY_F] = "fF",
	[KEY_G] = "gG", [KEY_H] = "hH", [KEY_J] = "jJ", [KEY_K] = "kK",
	[KEY_L] = "lL", [KEY_SEMICOLON] = ";:",
	[KEY_Z] = "zZ", [KEY_X] = "xX", [KEY_C] = "cC", [KEY_V] = "vV",
	[KEY_B] = "bB", [KEY_N] = "nN", [KEY_M] = "mM", [KEY_COMMA] = ",<",
	[KEY_DOT] = ".>", [KEY_SLASH] = "/?", [KEY_SPACE] = "  ",
	[KEY_ENTER] = "\n\n",
	[KEY_KP7] = "77", [KEY_KP8] = "88", [KEY_KP9] = "99", [KEY_KPMINUS] = "--",
	[KEY_KP4] = "44", [KEY_KP5] = "55", [KEY_KP6] = "66", [KEY_KPPLUS] = "++",
	[KEY_KP1] = "11", [KEY_KP2] = "22", [KEY_KP3] = "33", [KEY_KP0] = "00",
	[KEY_KPDOT] = "..",
};

/* The byte a key press types, -1 for none. */
static int key_char(unsigned code, bool shift)
{
	/* Keypad keys beyond the table's end. */
	if (code == KEY_KPENTER)
		return '\n';
	if (code == KEY_KPSLASH)
		return '/';
	if (code >= sizeof keymap / sizeof keymap[0] || !keymap[code][shift])
		return -1;
	return keymap[code][shift];
}

static void evdev_apply(scanner *s, const struct input_event *ev)
{
	int c;

	if (ev->type != EV_KEY)
		return;
	if (ev->code == KEY_LEFTSHIFT || ev->code == KEY_RIGHTSHIFT) {
		unsigned bit = ev->code == KEY_LEFTSHIFT ? 1 : 2;

		s->shift = ev->value ? s->shift | bit : s->shift & ~bit;
		return;
	}
	/* Presses only: releases type nothing, and a scanner's keys do not
	 * auto-repeat unless the scan is stuck. */
	if (ev->value != 1)
		return;
	c = key_char(ev->code, s->shift != 0);
	if (c >= 0)
		s->pending[s->len++] = (char)c;
}

/* --- errors ------------------------------------------------------------ */

static bool is_input_path(const char *path)
{
	return strncmp(path, "/dev/input/", strlen("/dev/input/")) == 0;
}

static int open_failed(const char *path, int errnum, cs_error *err)
{
	const char *group = is_input_path(path) ? "input" : "dialout";

	switch (errnum) {
	case EACCES:
	case EPERM:
		return cs_error_set(err, CS_E_ACCESS,
				    "scanner %s: not allowed to open it: add the user to the '%s' "
				    "group (sudo usermod -aG %s USER, then log in again) or give it "
				    "the device with a udev rule", path, group, group);
	case ENOENT:
	case ENXIO:
	case ENODEV:
		return cs_error_set(err, CS_E_UNREACHABLE,
				    "scanner %s: no such device: is the scanner plugged in? "
				    "(its name is under /dev/serial/by-id or /dev/input/by-id)", path);
	case EBUSY:
		return cs_error_set(err, CS_E_ACCESS,
				    "scanner %s: another program holds it: close that program "
				    "(another copystand?)", path);
	}
	return cs_error_set(err, CS_E_IO, "scanner %s: cannot open it: %s", path,
			    strerror(errnum));
}

static int gone(const scanner *s, cs_error *err)
{
	if (s->kind == KIND_TERMINAL)
		return cs_error_set(err, CS_E_UNREACHABLE,
				    "the terminal closed (or Ctrl-D was typed): no more scans "
				    "from it");
	return cs_error_set(err, CS_E_UNREACHABLE,
			    "scanner %s went away (unplugged?): plug it in again; a scan "
			    "under way is lost, scan it again", s->name);
}

static int read_failed(const scanner *s, int errnum, cs_error *err)
{
	if (errnum == EIO || errnum == ENODEV || errnum == ENXIO)
		return gone(s, err);
	return cs_error_set(err, CS_E_IO, "reading %s: %s", s->name, strerror(errnum));
}

/* --- opening ------------------------------------------------------------ */

static int terminal_open(scanner *s, cs_error *err)
{
	s->kind = KIND_TERMINAL;
	s->fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (s->fd >= 0)
		return 0;
	if (errno == ENXIO)
		return cs_error_set(err, CS_E_UNREACHABLE,
				    "no terminal to read scans from (copystand runs as a service "
				    "or in a pipe): connect the scanner as a serial or input "
				    "device and name it with --scanner DEVICE");
	return open_failed("/dev/tty", errno, err);
}

/* Raw: every byte as it comes, CR and LF untouched, no echo back to the
 * scanner.  The speed matters only to real serial lines. */
static int serial_setup(scanner *s, cs_error *err)
{
	struct termios t;

	s->kind = KIND_SERIAL;
	if (tcgetattr(s->fd, &s->saved) < 0)
		return cs_error_set(err, CS_E_IO, "scanner %s: cannot read its serial settings: %s",
				    s->name, strerror(errno));
	t = s->saved;
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B9600);
	cfsetospeed(&t, B9600);
	if (tcsetattr(s->fd, TCSANOW, &t) < 0)
		return cs_error_set(err, CS_E_IO, "scanner %s: cannot set it up as a serial scanner: %s",
				    s->name, strerror(errno));
	s->restore = true;
	return 0;
}

#define LONG_BITS (sizeof(unsigned long) * CHAR_BIT)

/* Grabbed, so scans reach copystand only and never type into whatever
 * window has the focus. */
static int evdev_setup(scanner *s, cs_error *err)
{
	unsigned long keys[KEY_MAX / LONG_BITS + 1] = { 0 };

	s->kind = KIND_EVDEV;
	if (ioctl(s->fd, EVIOCGBIT(EV_KEY, sizeof keys), keys) < 0 ||
	    !(keys[KEY_ENTER / LONG_BITS] & (1UL << (KEY_ENTER % LONG_BITS))))
		return cs_error_set(err, CS_E_INVALID,
				    "%s is not a scanner (an input device without an Enter key: a "
				    "mouse?): give the scanner's device, /dev/input/by-id/...-event-kbd",
				    s->name);
	if (ioctl(s->fd, EVIOCGRAB, 1) < 0)
		return errno == EBUSY ? open_failed(s->name, EBUSY, err)
				      : cs_error_set(err, CS_E_IO, "scanner %s: cannot take it for "
						     "copystand alone: %s", s->name, strerror(errno));
	return 0;
}

static int device_open(scanner *s, const char *path, cs_error *err)
{
	struct stat st;
	int version;

	s->fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0)
		return open_failed(path, errno, err);
	if (fstat(s->fd, &st) < 0)
		return cs_error_set(err, CS_E_IO, "scanner %s: %s", path, strerror(errno));
	if (S_ISCHR(st.st_mode) && ioctl(s->fd, EVIOCGVERSION, &version) == 0)
		return evdev_setup(s, err);
	if (S_ISCHR(st.st_mode) && isatty(s->fd))
		return serial_setup(s, err);
	return cs_error_set(err, CS_E_INVALID,
			    "%s is not a scanner (neither a serial nor an input device): give "
			    "the scanner's device, e.g. /dev/ttyACM0 or /dev/input/by-id/...-event-kbd",
			    path);
}

int scanner_open(const char *path, scanner **out, cs_error *err)
{
	scanner *s;
	int ret;

	if (!out)
		return cs_error_set(err, CS_E_INVALID, "scanner_open: nowhere to put the scanner");
	*out = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return cs_error_set(err, CS_E_NOMEM, "opening the scanner: out of memory");
	s->fd = -1;
	s->name = strdup(path ? path : "the terminal");
	if (!s->name) {
		scanner_free(s);
		return cs_error_set(err, CS_E_NOMEM, "opening the scanner: out of memory");
	}
	ret = path ? device_open(s, path, err) : terminal_open(s, err);
	if (ret < 0) {
		scanner_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int scanner_fd(const scanner *s)
{
	return s ? s->fd : -1;
}

void scanner_free(scanner *s)
{
	if (!s)
		return;
	/* A device that went away has nothing left to put back. */
	if (s->restore)
		(void)tcsetattr(s->fd, TCSANOW, &s->saved);
	/* Closing also ends an input device's grab. */
	if (s->fd >= 0)
		close(s->fd);
	free(s->name);
	free(s);
}

/* --- lines --------------------------------------------------------------- */

/* Reads what is there into pending: 1 if something came, 0 if nothing
 * (not yet), negative when the device is gone or failed. */
static int fill(scanner *s, cs_error *err)
{
	size_t room = sizeof s->pending - s->len;
	ssize_t n;

	if (s->kind == KIND_EVDEV) {
		struct input_event ev[EVENTS_MAX];
		size_t max = room < EVENTS_MAX ? room : EVENTS_MAX;

		n = read(s->fd, ev, max * sizeof ev[0]);
		for (ssize_t i = 0; i < n / (ssize_t)sizeof ev[0]; i++)
			evdev_apply(s, &ev[i]);
	} else {
		n = read(s->fd, s->pending + s->len, room);
		if (n > 0)
			s->len += (size_t)n;
	}
	if (n > 0)
		return 1;
	if (n == 0)
		return gone(s, err);
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return 0;
	if (errno == EINTR)
		return 1;
	return read_failed(s, errno, err);
}

static void consume(scanner *s, size_t n)
{
	memmove(s->pending, s->pending + n, s->len - n);
	s->len -= n;
}

/* Where the first line in pending ends (its CR or LF), or len. */
static size_t line_end(const scanner *s)
{
	size_t i = 0;

	while (i < s->len && s->pending[i] != '\r' && s->pending[i] != '\n')
		i++;
	return i;
}

/* Copies a line of n bytes into buf as the caller gets it. */
static int deliver(const scanner *s, const char *line, size_t n, bool was_cut,
		   char *buf, size_t size, cs_error *err)
{
	size_t fit = n < size - 1 ? n : size - 1;

	memcpy(buf, line, fit);
	buf[fit] = '\0';
	if (memchr(line, '\0', n)) {
		buf[0] = '\0';
		return cs_error_set(err, CS_E_INVALID,
				    "scanner %s sent a garbled scan (a NUL byte in it): scan again",
				    s->name);
	}
	if (was_cut || fit < n)
		return cs_error_set(err, CS_E_INVALID,
				    "scanner %s sent a line longer than %zu bytes (cut): no catalog "
				    "number is that long; check that the scanner ends each scan with "
				    "Enter (CR or LF), then scan again", s->name,
				    was_cut ? sizeof s->cut - 1 : size - 1);
	return 1;
}

/* The next line out of pending, if it is all there. */
static int line_take(scanner *s, char *buf, size_t size, cs_error *err)
{
	size_t end;
	int ret;

	if (s->after_cr && s->len > 0) {
		if (s->pending[0] == '\n')
			consume(s, 1);
		s->after_cr = false;
	}
	end = line_end(s);
	if (end == s->len) {
		if (s->skipping) {
			s->len = 0;
		} else if (s->len == sizeof s->pending) {
			/* Keep its start to show, drop the rest until its end. */
			s->cut_len = sizeof s->cut - 1;
			memcpy(s->cut, s->pending, s->cut_len);
			s->len = 0;
			s->skipping = true;
		}
		return 0;
	}
	s->after_cr = s->pending[end] == '\r';
	if (s->skipping) {
		s->skipping = false;
		ret = deliver(s, s->cut, s->cut_len, true, buf, size, err);
	} else {
		ret = deliver(s, s->pending, end, false, buf, size, err);
	}
	consume(s, end + 1);
	return ret;
}

int scanner_read_line(scanner *s, char *buf, size_t size, cs_error *err)
{
	int ret;

	if (!s || !buf || size == 0)
		return cs_error_set(err, CS_E_INVALID, "scanner_read_line: no scanner or no buffer");
	for (;;) {
		ret = line_take(s, buf, size, err);
		if (ret != 0)
			return ret;
		ret = fill(s, err);
		if (ret <= 0)
			return ret;
	}
}
