/* The tethered camera through libgphoto2 (2.5.30 on Debian 12).  What it
 * does there that shapes this file, found with tests/ptpip (see its
 * README.md):
 *  - gp_camera_capture() can wait for ever: we fire with
 *    gp_camera_trigger_capture() and collect the files as events;
 *  - gp_camera_wait_for_event() may return at once whatever the timeout
 *    (generic PTP/IP): the waiting loop keeps its own clock and pace;
 *  - after a timeout or a cut connection the session is out of step:
 *    it is closed and a new one opened by the next call;
 *  - gp_camera_file_delete() says OK when the camera refused: we look;
 *  - gp_camera_exit() closes fd 0: stdin is kept aside meanwhile;
 *  - a signal during its select() breaks the session, and it writes to
 *    sockets whose peer may be gone: signals are held while it runs. */
#include "camera.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libintl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <gphoto2/gphoto2.h>

#include "metadata.h"
#include "sha256.h"

/* An idle camera is asked for events this often: a shot is seen within
 * that, and a camera that answers at once costs little CPU. */
#define POLL_MS 20
/* Files of one press arrive together; a camera that does not send
 * CaptureComplete gets this long after its last file for the next one. */
#define PRESS_WINDOW_MS 1000
/* A busy camera is finishing something (writing to its card): worth
 * asking again, every PAUSE_MIN_MS at first, for this long. */
#define BUSY_PATIENCE_MS 3000
#define PAUSE_MIN_MS 50
#define PAUSE_MAX_MS 500
/* A camera that is away is looked for after 1 s, then less often, as
 * each failed open of a PTP/IP camera costs ~66 KB libgphoto2 never frees. */
#define RECONNECT_FIRST_MS 1000
#define RECONNECT_MAX_MS 8000
/* libgphoto2's gettext domain: its messages are compared translated. */
#define GPHOTO_DOMAIN "libgphoto2-6"
/* The text libgphoto2 gives a PTP StoreFull event (0x400a). */
#define STORE_FULL_EVENT "PTP Event 400a"

/* Asynchronous signals held back while libgphoto2 runs. */
struct signal_hold {
	sigset_t saved;
	bool pipe_pending;      /* a SIGPIPE that was pending before: not ours */
};

/* A file the camera announced and that is not yet delivered. */
struct shot {
	CameraFilePath path;
	double seen;            /* when, in seconds (monotonic) */
	bool press_ended;       /* CaptureComplete came after it */
	char stem[256];         /* from name_press when it came, or "" */
};

struct camera {
	GPContext *ctx;
	CameraAbilitiesList *abilities;   /* shared, only read: see drivers() */
	GPPortInfoList *ports;
	Camera *gp;             /* NULL while there is no session */
	bool broken;            /* out of step or gone: reopen before use */
	bool downloading;       /* in fetch(): a GP_ERROR is a lost connection */
	char *want_model;       /* as asked, then as found: reconnects find it again */
	char *want_port;        /* as asked; NULL: looked for at each connect */
	void (*name_press)(void *ud, const char *taken, char *stem, size_t size);
	void *name_press_ud;
	void (*on_card)(void *ud, const char *path, const char *stem, bool lost);
	void *on_card_ud;
	char model[CAMERA_NAME_MAX], port[CAMERA_NAME_MAX];
	double clock_read_at;   /* the last read of its clock (monotonic) */
	double retry_at;        /* next reconnect attempt */
	int backoff_ms;
	cs_error away;          /* why the last reconnect failed */
	unsigned sessions;      /* opened so far: callers see reconnects */
	struct shot *shots;
	size_t nshots, shots_cap;
	char said[256];         /* libgphoto2's last error message */
	struct signal_hold hold;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- signals and stdin ---------------------------------------------- */

static void signals_hold(struct signal_hold *h)
{
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT };
	sigset_t all, pending;

	sigfillset(&all);
	for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
		sigdelset(&all, faults[i]);
	pthread_sigmask(SIG_BLOCK, &all, &h->saved);
	sigpending(&pending);
	h->pipe_pending = sigismember(&pending, SIGPIPE) == 1;
}

/* A SIGPIPE that came while held was libgphoto2 writing to a camera that
 * hung up, reported to it as EPIPE already: delivering it would kill us. */
static void signals_release(struct signal_hold *h)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pending, pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (!h->pipe_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1)
		sigtimedwait(&pipe, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &h->saved, NULL);
}

/* Sleeps until t with the signals let through meanwhile. */
static void pause_until(camera *c, double t)
{
	struct timespec ts = { (time_t)t, (long)((t - (double)(time_t)t) * 1e9) };

	signals_release(&c->hold);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	signals_hold(&c->hold);
}

/* libgphoto2 2.5.30 closes fd 0 when it lets a PTP/IP camera go (its
 * Fuji-only socket is never opened and stays 0).  Whatever the process
 * has there — a barcode scanner on stdin — is parked and put back. */
static void gp_release(Camera *gp, GPContext *ctx)
{
	int parked = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);

	gp_camera_exit(gp, ctx);
	gp_camera_free(gp);
	if (parked >= 0) {
		dup2(parked, STDIN_FILENO);
		close(parked);
	}
}

/* --- what went wrong ------------------------------------------------ */

static void on_gp_error(GPContext *ctx, const char *text, void *data)
{
	camera *c = data;

	(void)ctx;
	snprintf(c->said, sizeof c->said, "%s", text);
}

/* Over PTP/IP libgphoto2 answers GeneralError for a connection that
 * ended as for the camera's own error response; only its error log
 * tells the first apart.  Per thread: a camera belongs to one. */
static _Thread_local bool stream_ended;

static void on_gp_log(GPLogLevel level, const char *domain, const char *str, void *data)
{
	(void)level;
	(void)domain;
	(void)data;
	if (strstr(str, "End of stream") || strstr(str, "read PTPIP data"))
		stream_ended = true;
}

/* libgphoto2 2.5.30 (fixed upstream in 833aa08b0) hex-dumps the first MB
 * of every PTP/IP read whenever any log function is registered, whatever
 * its level: 165 of the 260 ms a 20 MB file took to come down.  So
 * on_gp_log is taken out while files come down, where no answer needs
 * telling apart: any GeneralError there means the download is done again
 * on a new connection.  libgphoto2's list of log functions has no lock:
 * each process drives its cameras from one thread. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_id;              /* on_gp_log's, 0 while it is out */
static int log_quiet;           /* downloads under way */

/* quiet: +1 as a download starts, -1 as it ends, 0 to make sure
 * on_gp_log listens when none is under way. */
static void log_quiet_add(int quiet)
{
	pthread_mutex_lock(&log_lock);
	log_quiet += quiet;
	if (log_quiet > 0 && log_id > 0) {
		gp_log_remove_func(log_id);
		log_id = 0;
	} else if (log_quiet == 0 && log_id <= 0) {
		log_id = gp_log_add_func(GP_LOG_ERROR, on_gp_log, NULL);
	}
	pthread_mutex_unlock(&log_lock);
}

static int card_full(cs_error *err, const char *what)
{
	return cs_error_set(err, CS_E_IO,
			    "%s: the camera's card is full: download and delete old shots "
			    "or put in an empty card", what);
}

/* PTP answers that libgphoto2 passes on only as GP_ERROR and a message
 * (in the translation it gave it). */
static int refine(int gp, const char *said)
{
	if (gp != GP_ERROR)
		return gp;
	if (!strcmp(said, dgettext(GPHOTO_DOMAIN, "PTP Store Full")))
		return GP_ERROR_NO_SPACE;
	if (!strcmp(said, dgettext(GPHOTO_DOMAIN, "PTP Invalid Object Handle")))
		return GP_ERROR_FILE_NOT_FOUND;
	return gp;
}

static int session_open(camera *c, cs_error *err);
static void session_close(camera *c);

/* Whether the camera takes a new session at once. */
static bool still_there(camera *c)
{
	cs_error ignored = { 0 };

	session_close(c);
	return session_open(c, &ignored) == 0;
}

/* A failed libgphoto2 call (gp, its result) as the technician needs it.
 * Anything that may have left the session out of step closes it: the next
 * call opens a new one. */
__attribute__((format(printf, 4, 5)))
static int fail(camera *c, int gp, cs_error *err, const char *fmt, ...)
{
	char what[512], said[sizeof c->said];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	snprintf(said, sizeof said, "%s", c->said[0] ? c->said : gp_result_as_string(gp));
	c->said[0] = '\0';
	switch (refine(gp, said)) {
	case GP_ERROR_IO_USB_CLAIM:
	case GP_ERROR_IO_LOCK:
		return cs_error_set(err, CS_E_ACCESS,
				    "%s: another program holds the camera (usually the desktop's "
				    "gvfs-gphoto2-volume-monitor): run `pkill -f gvfs-gphoto2-volume-"
				    "monitor` or unmount the camera in the file manager, and close "
				    "gphoto2, Entangle or darktable if they are running", what);
	case GP_ERROR_CAMERA_BUSY:
		return cs_error_set(err, CS_E_NETWORK,
				    "%s: the camera stayed busy for %d s (a menu or playback open? "
				    "still writing to its card?): let it finish and try again",
				    what, BUSY_PATIENCE_MS / 1000);
	case GP_ERROR_TIMEOUT:
		c->broken = true;
		return cs_error_set(err, CS_E_NETWORK,
				    "%s: the camera stopped answering (frozen after many shots?): "
				    "copystand reopens the connection; if this repeats, switch the "
				    "camera off and on", what);
	case GP_ERROR_NO_SPACE:
		return card_full(err, what);
	case GP_ERROR_FILE_NOT_FOUND:
	case GP_ERROR_DIRECTORY_NOT_FOUND:
		return cs_error_set(err, CS_E_NOT_FOUND,
				    "%s: not on the camera's card (erased on the camera?): %s",
				    what, said);
	case GP_ERROR_NOT_SUPPORTED:
		return cs_error_set(err, CS_E_INVALID,
				    "%s: this camera cannot do that from the computer (%s)", what, said);
	case GP_ERROR:
		/* A PTP error response, or over PTP/IP a connection that
		 * ended (libgphoto2 says GeneralError for both): a new session
		 * tells them apart, and clears whatever the camera was in. */
		if (stream_ended || c->downloading || !c->gp || !still_there(c))
			break;
		return cs_error_set(err, CS_E_PROTOCOL,
				    "%s: the camera answered \"%s\": check it can shoot now "
				    "(autofocus on something it can see, or focus set to manual; "
				    "no menu or playback open; mode dial on a photo mode; a card in) "
				    "and try again; if it repeats, switch the camera off and on",
				    what, said);
	}
	c->broken = true;
	return cs_error_set(err, CS_E_UNREACHABLE,
			    "%s: camera disconnected (%s): check the cable, that the camera is on "
			    "and that no other program uses it; copystand reconnects when it is back",
			    what, said);
}

/* --- the session ----------------------------------------------------- */

int camera_list(camera_info *list, size_t max, size_t *count, cs_error *err)
{
	struct signal_hold hold;
	GPContext *ctx;
	CameraList *found = NULL;
	int ret, n = 0;

	if (!count || (max && !list))
		return cs_error_set(err, CS_E_INVALID, "camera_list: no place for the cameras");
	if (!(ctx = gp_context_new()) || gp_list_new(&found) < GP_OK) {
		ret = cs_error_set(err, CS_E_NOMEM, "looking for cameras: out of memory");
		goto out;
	}
	signals_hold(&hold);
	ret = gp_camera_autodetect(found, ctx);
	signals_release(&hold);
	if (ret < GP_OK) {
		ret = cs_error_set(err, CS_E_IO, "looking for cameras: %s", gp_result_as_string(ret));
		goto out;
	}
	n = gp_list_count(found);
	for (int i = 0; i < n && (size_t)i < max; i++) {
		const char *model = "", *port = "";
		gp_list_get_name(found, i, &model);
		gp_list_get_value(found, i, &port);
		snprintf(list[i].model, sizeof list[i].model, "%s", model);
		snprintf(list[i].port, sizeof list[i].port, "%s", port);
	}
	ret = 0;
out:
	*count = n > 0 ? (size_t)n : 0;
	if (found)
		gp_list_free(found);
	if (ctx)
		gp_context_unref(ctx);
	return ret;
}

/* libgphoto2 2.5.30 leaks about 150 KB each time it looks for USB
 * cameras (gp_abilities_list_detect): a station waiting all day for a
 * camera that is off would grow by hundreds of megabytes.  A look that
 * found nothing is therefore not repeated until a USB device comes or goes
 * (a new node in /dev/bus/usb: a camera switched on gets a new device
 * number) or a minute has passed. */
#define USB_DEVICES "/dev/bus/usb"
#define RELOOK_S 60.0

static pthread_mutex_t look_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t look_usb;       /* the USB devices when nothing was found */
static double look_at = -1e9;   /* and when */

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/* A fingerprint of the USB devices present: their bus/device names. */
static uint64_t usb_fingerprint(void)
{
	uint64_t h = 1469598103934665603u;
	DIR *buses = opendir(USB_DEVICES);
	struct dirent *b, *d;

	while (buses && (b = readdir(buses))) {
		char path[300];
		DIR *devs;

		if (b->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, USB_DEVICES "/%s", b->d_name);
		for (devs = opendir(path); devs && (d = readdir(devs));)
			h = fnv1a(fnv1a(fnv1a(h, b->d_name), "/"), d->d_name);
		if (devs)
			closedir(devs);
	}
	if (buses)
		closedir(buses);
	return h;
}

/* Seconds since a look found nothing on these USB devices, or -1. */
static double looked_in_vain(uint64_t usb)
{
	pthread_mutex_lock(&look_lock);
	double ago = usb == look_usb && now() - look_at < RELOOK_S ? now() - look_at : -1;
	pthread_mutex_unlock(&look_lock);
	return ago;
}

static void note_look(uint64_t usb, bool found)
{
	pthread_mutex_lock(&look_lock);
	look_usb = usb;
	look_at = found ? -1e9 : now();
	pthread_mutex_unlock(&look_lock);
}

/* The model and port to connect to when not both were asked for: the
 * only camera found of the model, or at the port, asked for. */
static int find_camera(const camera *c, camera_info *pick, cs_error *err)
{
	camera_info found[8];
	char names[512] = "";
	size_t n = 0, matching = 0;
	uint64_t usb = usb_fingerprint();
	double ago = looked_in_vain(usb);
	int ret;

	if (ago < 0) {
		if ((ret = camera_list(found, sizeof found / sizeof found[0], &n, err)) < 0)
			return ret;
	}
	for (size_t i = 0; i < n && i < sizeof found / sizeof found[0]; i++) {
		if ((c->want_model && strcmp(found[i].model, c->want_model)) ||
		    (c->want_port && strcmp(found[i].port, c->want_port)))
			continue;
		if (!matching++)
			*pick = found[i];
		snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s at %s",
			 matching > 1 ? ", " : "", found[i].model, found[i].port);
	}
	if (ago < 0)
		note_look(usb, matching > 0);
	if (matching == 1)
		return 0;
	if (matching > 1)
		return cs_error_set(err, CS_E_CONFIG,
				    "%zu cameras found (%s): choose one by model or port "
				    "(--camera, --port)", matching, names);
	char again[128] = "";
	if (ago >= 0)
		snprintf(again, sizeof again, " (no USB device came since the look %.0f s "
			 "ago: looking again when one does)", ago);
	if (c->want_port)
		return cs_error_set(err, CS_E_UNREACHABLE,
				    "no camera found at %s%s: check the cable and that it is "
				    "switched on; a network camera needs its model too "
				    "(\"PTP/IP Camera\" for most)", c->want_port, again);
	return cs_error_set(err, CS_E_UNREACHABLE,
			    "no %s found%s: check that it is switched on, connected, and set "
			    "to PTP or remote control rather than mass storage; a network "
			    "camera is opened by its port (ptpip:ADDRESS:PORT:PORT)",
			    c->want_model ? c->want_model : "camera", again);
}

/* Tells gp which model (if known) and which port it is. */
static int aim(camera *c, Camera *gp, const char *model, const char *port, cs_error *err)
{
	CameraAbilities a;
	GPPortInfo info;
	int i;

	if (model && ((i = gp_abilities_list_lookup_model(c->abilities, model)) < GP_OK ||
		      gp_abilities_list_get_abilities(c->abilities, i, &a) < GP_OK ||
		      gp_camera_set_abilities(gp, a) < GP_OK))
		return cs_error_set(err, CS_E_NOT_FOUND,
				    "libgphoto2 knows no camera called \"%s\": `gphoto2 "
				    "--list-cameras` shows the names, `gphoto2 --auto-detect` the "
				    "cameras connected", model);
	if ((i = gp_port_info_list_lookup_path(c->ports, port)) < GP_OK ||
	    gp_port_info_list_get_info(c->ports, i, &info) < GP_OK ||
	    gp_camera_set_port_info(gp, info) < GP_OK)
		return cs_error_set(err, CS_E_UNREACHABLE,
				    "no camera port %s: check the cable and that the camera is on "
				    "(`gphoto2 --auto-detect` lists the ports of cameras connected)",
				    port);
	return 0;
}

/* Remembers what the session is, and what to reconnect to. */
static int note_session(camera *c)
{
	CameraAbilities a;
	GPPortInfo info;
	char *path = NULL;

	if (gp_camera_get_abilities(c->gp, &a) == GP_OK)
		snprintf(c->model, sizeof c->model, "%s", a.model);
	if (gp_camera_get_port_info(c->gp, &info) == GP_OK &&
	    gp_port_info_get_path(info, &path) == GP_OK)
		snprintf(c->port, sizeof c->port, "%s", path);
	if (!c->want_model && !(c->want_model = strdup(c->model)))
		return CS_E_NOMEM;
	return 0;
}

static int session_open(camera *c, cs_error *err)
{
	camera_info pick = { "", "" };
	const char *model = c->want_model, *port = c->want_port;
	Camera *gp;
	int ret;

	if (!model || !port) {
		if ((ret = find_camera(c, &pick, err)) < 0)
			return ret;
		model = pick.model;
		port = pick.port;
	}
	if (gp_camera_new(&gp) < GP_OK)
		return cs_error_set(err, CS_E_NOMEM, "opening the camera: out of memory");
	c->said[0] = '\0';
	if ((ret = aim(c, gp, model, port, err)) == 0 && (ret = gp_camera_init(gp, c->ctx)) < GP_OK)
		ret = fail(c, ret, err, "connect to the camera at %s", port);
	if (ret < 0) {
		gp_release(gp, c->ctx);
		return ret;
	}
	c->gp = gp;
	c->broken = false;
	c->backoff_ms = 0;
	c->retry_at = 0;
	/* Opening may have read the properties: libgphoto2 keeps them 2 s. */
	c->clock_read_at = now();
	if (note_session(c) < 0)
		return cs_error_set(err, CS_E_NOMEM, "opening the camera: out of memory");
	return 0;
}

static void session_close(camera *c)
{
	if (c->gp)
		gp_release(c->gp, c->ctx);
	c->gp = NULL;
}

/* A working session, the broken one replaced.  A camera that is away is
 * tried again when its pause is over; until deadline, then the last
 * attempt's error, so a caller looping on this never spins. */
static int session_ready(camera *c, double deadline, cs_error *err)
{
	if (c->broken)
		session_close(c);
	while (!c->gp) {
		if (now() >= c->retry_at) {
			if (session_open(c, &c->away) == 0) {
				c->sessions++;
				return 0;
			}
			c->backoff_ms = c->backoff_ms ? 2 * c->backoff_ms : RECONNECT_FIRST_MS;
			if (c->backoff_ms > RECONNECT_MAX_MS)
				c->backoff_ms = RECONNECT_MAX_MS;
			c->retry_at = now() + c->backoff_ms / 1e3;
		}
		if (c->retry_at > deadline) {
			pause_until(c, deadline);
			if (err)
				*err = c->away;
			return c->away.code;
		}
		pause_until(c, c->retry_at);
	}
	return 0;
}

/* Every public call that talks to the camera goes between these. */
static int enter(camera *c, double deadline, cs_error *err)
{
	c->said[0] = '\0';
	stream_ended = false;
	signals_hold(&c->hold);
	return session_ready(c, deadline, err);
}

static int leave(camera *c, int ret)
{
	signals_release(&c->hold);
	return ret;
}

/* libgphoto2's camera drivers, loaded once for the process: loading them
 * takes about 20 ms and leaks a few KB each time (2.5.30), and a station
 * opens the camera again at every reconnect.  Only read afterwards, which
 * is safe from any thread. */
static CameraAbilitiesList *drivers(GPContext *ctx)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static CameraAbilitiesList *loaded;
	CameraAbilitiesList *list = NULL;

	pthread_mutex_lock(&lock);
	if (!loaded && gp_abilities_list_new(&list) >= GP_OK) {
		if (gp_abilities_list_load(list, ctx) >= GP_OK)
			loaded = list;
		else
			gp_abilities_list_free(list);
	}
	pthread_mutex_unlock(&lock);
	return loaded;
}

int camera_open(const camera_options *o, camera **out, cs_error *err)
{
	camera *c;
	int ret;

	if (!out)
		return cs_error_set(err, CS_E_INVALID, "camera_open: nowhere to put the camera");
	*out = NULL;
	/* Network cameras are never found by a search, so their model is
	 * needed; nearly all of them are libgphoto2's generic one. */
	const char *model = o && o->model ? o->model :
		o && o->port && strncmp(o->port, "ptpip:", 6) == 0 ? "PTP/IP Camera" : NULL;
	if (!(c = calloc(1, sizeof *c)) ||
	    (model && !(c->want_model = strdup(model))) ||
	    (o && o->port && !(c->want_port = strdup(o->port))) ||
	    !(c->ctx = gp_context_new())) {
		camera_free(c);
		return cs_error_set(err, CS_E_NOMEM, "opening the camera: out of memory");
	}
	gp_context_set_error_func(c->ctx, on_gp_error, c);
	log_quiet_add(0);
	if (o) {
		c->name_press = o->name_press;
		c->name_press_ud = o->name_press_ud;
		c->on_card = o->on_card;
		c->on_card_ud = o->on_card_ud;
	}
	/* libgphoto2 calls perror() between a timeout and reading errno.  On a
	 * stream with no orientation yet glibc's perror() dup()s and fdopen()s
	 * stderr, which can change errno (EINVAL when stderr is write-only):
	 * a frozen camera would be reported as unplugged.  Giving stderr the
	 * orientation any printf() to it would give avoids that. */
	fwide(stderr, -1);
	if (!(c->abilities = drivers(c->ctx)) ||
	    gp_port_info_list_new(&c->ports) < GP_OK || gp_port_info_list_load(c->ports) < GP_OK) {
		camera_free(c);
		return cs_error_set(err, CS_E_CONFIG,
				    "libgphoto2 cannot load its camera drivers: reinstall the "
				    "libgphoto2 packages");
	}
	signals_hold(&c->hold);
	ret = session_open(c, err);
	signals_release(&c->hold);
	if (ret < 0) {
		camera_free(c);
		return ret;
	}
	c->sessions = 1;
	*out = c;
	return 0;
}

const char *camera_model(const camera *c)
{
	return c ? c->model : "";
}

const char *camera_port(const camera *c)
{
	return c ? c->port : "";
}

unsigned camera_sessions(const camera *c)
{
	return c ? c->sessions : 0;
}

void camera_free(camera *c)
{
	if (!c)
		return;
	signals_hold(&c->hold);
	session_close(c);
	signals_release(&c->hold);
	if (c->ports)
		gp_port_info_list_free(c->ports);
	if (c->ctx)
		gp_context_unref(c->ctx);
	free(c->shots);
	free(c->want_model);
	free(c->want_port);
	free(c);
}

/* --- busy cameras ---------------------------------------------------- */

struct patience {
	double until;
	int pause_ms;
};

static struct patience patience_start(void)
{
	return (struct patience){ now() + BUSY_PATIENCE_MS / 1e3, PAUSE_MIN_MS };
}

/* Pauses and says true while there is patience left. */
static bool patience_pause(camera *c, struct patience *p)
{
	if (now() >= p->until)
		return false;
	pause_until(c, now() + p->pause_ms / 1e3);
	p->pause_ms = 2 * p->pause_ms < PAUSE_MAX_MS ? 2 * p->pause_ms : PAUSE_MAX_MS;
	return true;
}

static bool busy_again(camera *c, int gp, struct patience *p)
{
	return gp == GP_ERROR_CAMERA_BUSY && patience_pause(c, p);
}

int camera_trigger(camera *c, cs_error *err)
{
	struct patience p = patience_start();
	int ret;

	if (!c)
		return cs_error_set(err, CS_E_INVALID, "camera_trigger: no camera");
	if ((ret = enter(c, now(), err)) == 0) {
		do
			ret = gp_camera_trigger_capture(c->gp, c->ctx);
		while (busy_again(c, ret, &p));
		if (ret < GP_OK)
			ret = fail(c, ret, err, "fire the camera");
	}
	return leave(c, ret);
}

/* --- shots and presses ------------------------------------------------ */

static size_t stem_length(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot ? (size_t)(dot - name) : strlen(name);
}

static bool same_press(const CameraFilePath *a, const CameraFilePath *b)
{
	size_t n = stem_length(a->name);

	return !strcmp(a->folder, b->folder) && n == stem_length(b->name) &&
	       !strncmp(a->name, b->name, n);
}

/* Tells on_card of shot s: announced, or lost. */
static void card_news(const camera *c, const struct shot *s, bool lost)
{
	char path[sizeof s->path.folder + sizeof s->path.name + 1];

	if (!c->on_card)
		return;
	snprintf(path, sizeof path, "%s/%s", s->path.folder, s->path.name);
	c->on_card(c->on_card_ud, path, s->stem, lost);
}

/* Queues a file of the card; fetched: asked for by camera_fetch(), a press
 * of its own, not announced now. */
static int shot_add(camera *c, const CameraFilePath *path, bool fetched, cs_error *err)
{
	for (size_t i = 0; i < c->nshots; i++)
		if (!strcmp(c->shots[i].path.folder, path->folder) &&
		    !strcmp(c->shots[i].path.name, path->name))
			return 0;       /* announced twice */
	if (c->nshots == c->shots_cap) {
		size_t cap = c->shots_cap ? 2 * c->shots_cap : 8;
		struct shot *grown = realloc(c->shots, cap * sizeof *grown);
		if (!grown)
			return cs_error_set(err, CS_E_NOMEM, "noting a new shot: out of memory");
		c->shots = grown;
		c->shots_cap = cap;
	}
	struct shot *s = &c->shots[c->nshots];
	*s = (struct shot){ *path, now(), fetched, "" };
	c->nshots++;
	if (fetched)
		return 0;
	/* The number current at the shutter names the press, not the one
	 * current when it has downloaded. */
	if (c->nshots > 1 && !s[-1].press_ended && same_press(&s[-1].path, path))
		memcpy(s->stem, s[-1].stem, sizeof s->stem);
	else if (c->name_press)
		c->name_press(c->name_press_ud, NULL, s->stem, sizeof s->stem);
	card_news(c, s, false);
	return 0;
}

int camera_fetch(camera *c, const char *path, cs_error *err)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	CameraFilePath fp = { 0 };

	if (!c || !slash || slash == path || !slash[1] ||
	    (size_t)(slash - path) >= sizeof fp.folder || strlen(slash + 1) >= sizeof fp.name)
		return cs_error_set(err, CS_E_INVALID, "\"%s\" is no path of a file on the card",
				    path ? path : "");
	memcpy(fp.folder, path, (size_t)(slash - path));
	snprintf(fp.name, sizeof fp.name, "%s", slash + 1);
	return shot_add(c, &fp, true, err);
}

static void shots_remove(camera *c, size_t from, size_t n)
{
	memmove(c->shots + from, c->shots + from + n,
		(c->nshots - from - n) * sizeof *c->shots);
	c->nshots -= n;
}

/* How many of the shots waiting make the first press, once it is over;
 * 0 while more of it may come. */
static size_t press_ready(const camera *c, double t)
{
	const struct shot *s = c->shots;
	size_t n = 1;

	if (!c->nshots)
		return 0;
	while (n < c->nshots && n < CAMERA_CAPTURE_MAX_FILES && !s[n - 1].press_ended &&
	       same_press(&s[0].path, &s[n].path))
		n++;
	/* Over when the camera said so, the next press began, it is full, or
	 * nothing came for the window. */
	if (s[n - 1].press_ended || n < c->nshots || n == CAMERA_CAPTURE_MAX_FILES ||
	    t - s[n - 1].seen >= PRESS_WINDOW_MS / 1e3)
		return n;
	return 0;
}

static int take_event(camera *c, CameraEventType type, void *data, cs_error *err)
{
	switch (type) {
	case GP_EVENT_FILE_ADDED:
		return data ? shot_add(c, data, false, err) : 0;
	case GP_EVENT_CAPTURE_COMPLETE:
		if (c->nshots)
			c->shots[c->nshots - 1].press_ended = true;
		return 0;
	case GP_EVENT_UNKNOWN:
		if (data && !strncmp(data, STORE_FULL_EVENT, strlen(STORE_FULL_EVENT)))
			return card_full(err, "shooting");
		return 0;
	default:
		return 0;
	}
}

/* One look for events.  Generic PTP/IP answers at once whatever the
 * timeout: the camera is not asked again before POLL_MS are over. */
static int poll_camera(camera *c, double deadline, cs_error *err)
{
	double until = now() + POLL_MS / 1e3;
	CameraEventType type;
	void *data = NULL;
	int ret;

	if (until > deadline)
		until = deadline;
	ret = gp_camera_wait_for_event(c->gp, until > now() ? (int)((until - now()) * 1e3) : 0,
				       &type, &data, c->ctx);
	if (ret < GP_OK)
		return fail(c, ret, err, "wait for the camera");
	ret = take_event(c, type, data, err);
	free(data);
	if (type == GP_EVENT_TIMEOUT)
		pause_until(c, until);
	return ret;
}

/* --- downloads --------------------------------------------------------- */

/* Where a download streams to.  A failed write is remembered and the rest
 * of the data dropped rather than refused: cutting the transfer short
 * would leave the session out of step. */
struct sink {
	int fd;
	sha256_ctx sha;
	uint64_t bytes;
	int error;
};

static int sink_write(void *priv, unsigned char *data, uint64_t *len)
{
	struct sink *s = priv;
	uint64_t done = 0;

	sha256_update(&s->sha, data, *len);
	s->bytes += *len;
	while (!s->error && done < *len) {
		ssize_t n = write(s->fd, data + done, *len - done);
		if (n > 0)
			done += (uint64_t)n;
		else if (n == 0 || errno != EINTR)
			s->error = n == 0 ? EIO : errno;
	}
	return GP_OK;
}

static void sink_restart(struct sink *s)
{
	sha256_init(&s->sha);
	s->bytes = 0;
	s->error = 0;
	if (ftruncate(s->fd, 0) < 0 || lseek(s->fd, 0, SEEK_SET) < 0)
		s->error = errno;
}

/* The file's details, then its bytes into s. */
static int fetch(camera *c, const CameraFilePath *p, struct sink *s, CameraFileInfo *info)
{
	static CameraFileHandler handler = { .write = sink_write };
	CameraFile *file;
	int ret;

	sink_restart(s);
	log_quiet_add(1);
	c->downloading = true;
	if ((ret = gp_camera_file_get_info(c->gp, p->folder, p->name, info, c->ctx)) >= GP_OK &&
	    (ret = gp_file_new_from_handler(&file, &handler, s)) >= GP_OK) {
		ret = gp_camera_file_get(c->gp, p->folder, p->name, GP_FILE_TYPE_NORMAL, file,
					 c->ctx);
		gp_file_unref(file);
	}
	log_quiet_add(-1);
	return ret;
}

/* Checks what fetch() brought and makes it durable in tmp: 0 or CS_E_*. */
static int settle(camera *c, const char *name, const struct sink *s,
		  const CameraFileInfo *info, cs_error *err)
{
	uint64_t want = info->file.fields & GP_FILE_INFO_SIZE ? info->file.size : s->bytes;

	if (s->error)
		return cs_error_set(err, CS_E_IO,
				    "saving %s: %s: free space on the disk or choose another folder; "
				    "the shot stays on the camera", name, strerror(s->error));
	if (s->bytes != want) {
		c->broken = true;
		return cs_error_set(err, CS_E_NETWORK,
				    "downloading %s: %llu of %llu bytes came: copystand reopens the "
				    "connection and downloads it again", name,
				    (unsigned long long)s->bytes, (unsigned long long)want);
	}
	if (fsync(s->fd) < 0)
		return cs_error_set(err, CS_E_IO, "saving %s: %s: the shot stays on the camera",
				    name, strerror(errno));
	return 0;
}

/* libgphoto2 names the types of formats PTP defines, not those of vendors'
 * RAW files from a camera it drives without their vendor extension. */
static const char *mimetype(const CameraFileInfo *info, const char *name)
{
	if (info->file.fields & GP_FILE_INFO_TYPE && strncmp(info->file.type, "application/", 12))
		return info->file.type;
	return metadata_mimetype(name);
}

/* One file of the card into dirfd as name, by way of ".name.part". */
static int download(camera *c, int dirfd, const struct shot *shot, const char *name,
		    camera_file *out, cs_error *err)
{
	struct patience p = patience_start();
	struct sink s = { .fd = -1 };
	CameraFileInfo info;
	char tmp[NAME_MAX + 1];
	int ret;

	snprintf(tmp, sizeof tmp, ".%s.part", name);
	if ((s.fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return cs_error_set(err, CS_E_IO, "saving %s: %s: check the session folder",
				    name, strerror(errno));
	do
		ret = fetch(c, &shot->path, &s, &info);
	while (busy_again(c, ret, &p));
	if (ret < GP_OK)
		ret = fail(c, ret, err, "download %s", shot->path.name);
	c->downloading = false;
	if (ret >= GP_OK)
		ret = settle(c, name, &s, &info, err);
	if (close(s.fd) < 0 && ret == 0)
		ret = cs_error_set(err, CS_E_IO, "saving %s: %s", name, strerror(errno));
	if (ret == 0 && renameat2(dirfd, tmp, dirfd, name, RENAME_NOREPLACE) < 0)
		ret = cs_error_set(err, errno == EEXIST ? CS_E_CONFLICT : CS_E_IO,
				   "saving %s: %s; the shot stays on the camera", name,
				   strerror(errno));
	if (ret < 0) {
		unlinkat(dirfd, tmp, 0);
		return ret;
	}
	snprintf(out->camera_path, sizeof out->camera_path, "%s/%s", shot->path.folder,
		 shot->path.name);
	out->size = (long long)s.bytes;
	sha256_final_hex(&s.sha, out->sha256);
	snprintf(out->mimetype, sizeof out->mimetype, "%s", mimetype(&info, name));
	return 0;
}

static bool stem_ok(const char *stem)
{
	return !stem || (stem[0] && stem[0] != '.' && !strchr(stem, '/'));
}

/* The local name of a card file: stem and its extension in lower case,
 * or the card's name; refused if it is taken or too long. */
static int local_name(int dirfd, const char *dir, const char *stem, const char *card_name,
		      char name[NAME_MAX + 1], char path[PATH_MAX], cs_error *err)
{
	const char *dot = strrchr(card_name, '.');
	size_t len;
	struct stat st;

	if (stem)
		len = (size_t)snprintf(name, NAME_MAX + 1, "%s%s", stem, dot ? dot : "");
	else
		len = (size_t)snprintf(name, NAME_MAX + 1, "%s", card_name);
	/* Room for the ".NAME.part" it is downloaded to. */
	if (len + strlen("..part") > NAME_MAX)
		return cs_error_set(err, CS_E_INVALID, "%s/%s: the name is too long", dir, name);
	/* ASCII, whatever the locale says about upper and lower case. */
	for (char *e = stem && dot ? name + strlen(stem) : name + len; *e; e++)
		*e = (char)(*e >= 'A' && *e <= 'Z' ? *e - 'A' + 'a' : *e);
	if ((size_t)snprintf(path, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return cs_error_set(err, CS_E_INVALID, "%s/%s: the path is too long", dir, name);
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return cs_error_set(err, CS_E_CONFLICT,
				    "%s is already in %s and is never overwritten: choose another "
				    "name; the shot stays on the camera", name, dir);
	if (errno != ENOENT)
		return cs_error_set(err, CS_E_IO, "%s: %s", path, strerror(errno));
	return 0;
}

/* Brings home the first n shots, one press: all of them or none. */
static int fetch_press(camera *c, size_t n, const char *dir, const char *stem,
		       camera_capture *out, cs_error *err)
{
	char names[CAMERA_CAPTURE_MAX_FILES][NAME_MAX + 1];
	size_t done = 0;
	int dirfd, ret = 0;

	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return cs_error_set(err, CS_E_IO, "session folder %s: %s: the shot stays on the camera",
				    dir, strerror(errno));
	/* A stem from name_press that cannot start a file name is not used. */
	const char *use = stem ? stem : stem_ok(c->shots[0].stem) ? c->shots[0].stem : NULL;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = local_name(dirfd, dir, use, c->shots[i].path.name, names[i],
				 out->files[i].path, err);
	for (; done < n && ret == 0; done++)
		if ((ret = download(c, dirfd, &c->shots[done], names[done], &out->files[done],
				    err)) < 0)
			break;
	/* The renames are durable only once the folder is. */
	if (ret == 0 && fsync(dirfd) < 0)
		ret = cs_error_set(err, CS_E_IO, "saving in %s: %s: the shot stays on the camera",
				   dir, strerror(errno));
	if (ret < 0) {
		for (size_t i = 0; i < done; i++)
			unlinkat(dirfd, names[i], 0);
		fsync(dirfd);
		/* A name already taken: the press is named anew for the next
		 * try, all its files under one stem again. */
		if (ret == CS_E_CONFLICT && !stem && c->name_press) {
			char taken[sizeof c->shots[0].stem];
			memcpy(taken, c->shots[0].stem, sizeof taken);
			c->name_press(c->name_press_ud, taken, c->shots[0].stem,
				      sizeof c->shots[0].stem);
			for (size_t i = 1; i < n; i++)
				memcpy(c->shots[i].stem, c->shots[0].stem, sizeof c->shots[i].stem);
		}
		/* Erased on the camera before it came: the rest of the press
		 * comes with the next call. */
		if (ret == CS_E_NOT_FOUND) {
			card_news(c, &c->shots[done], true);
			shots_remove(c, done, 1);
		}
	} else {
		out->nfiles = n;
		snprintf(out->stem, sizeof out->stem, "%s", use ? use : "");
		shots_remove(c, 0, n);
	}
	close(dirfd);
	return ret;
}

int camera_wait_capture(camera *c, int timeout_ms, const char *dir, const char *stem,
			camera_capture *out, cs_error *err)
{
	double deadline = now() + timeout_ms / 1e3;
	bool looked = false;
	size_t n;
	int ret;

	if (!c || timeout_ms < 0 || !dir || !out)
		return cs_error_set(err, CS_E_INVALID,
				    "camera_wait_capture: a camera, a folder and a capture are needed");
	if (!stem_ok(stem))
		return cs_error_set(err, CS_E_INVALID,
				    "\"%s\" cannot start a file name (empty, hidden or with a slash)",
				    stem);
	memset(out, 0, sizeof *out);
	ret = enter(c, deadline, err);
	while (ret == 0) {
		if ((n = press_ready(c, now())) > 0) {
			ret = fetch_press(c, n, dir, stem, out, err);
			break;
		}
		if (looked && now() >= deadline) {
			ret = cs_error_set(err, CS_E_TIMEOUT, "no shot within %d ms", timeout_ms);
			break;
		}
		ret = poll_camera(c, deadline, err);
		looked = true;
	}
	return leave(c, ret);
}

/* --- the camera's clock -------------------------------------------------- */

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A time libgphoto2 made from the camera's date and time with mktime()
 * (so as local time): those fields again, counted as if UTC. */
static double camera_wall(time_t t)
{
	struct tm tm;

	return localtime_r(&t, &tm) ? (double)timegm(&tm) : 0;
}

int camera_read_clock(camera *c, double *before, double *after, double *camera_time,
		      cs_error *err)
{
	CameraWidget *w = NULL;
	CameraWidgetType type;
	int value = 0, ret;

	if (!c || !before || !after || !camera_time)
		return cs_error_set(err, CS_E_INVALID, "camera_read_clock: no camera");
	if ((ret = enter(c, now(), err)) == 0 && now() - c->clock_read_at < CAMERA_CLOCK_SPACING_S)
		ret = cs_error_set(err, CS_E_TIMEOUT, "the camera's clock was read %.1f s ago: "
				   "libgphoto2 still holds that value", now() - c->clock_read_at);
	if (ret == 0) {
		*before = wall_now();
		ret = gp_camera_get_single_config(c->gp, "datetime", &w, c->ctx);
		*after = wall_now();
		c->clock_read_at = now();
		/* No such property: an error, or (no properties at all) OK and
		 * no widget. */
		if (ret == GP_ERROR_BAD_PARAMETERS || ret == GP_ERROR_NOT_SUPPORTED ||
		    (ret >= GP_OK && !w))
			ret = cs_error_set(err, CS_E_INVALID, "the camera has no clock that "
					   "libgphoto2 can read");
		else if (ret < GP_OK)
			ret = fail(c, ret, err, "read the camera's clock");
		else if (gp_widget_get_type(w, &type) < GP_OK || type != GP_WIDGET_DATE ||
			 gp_widget_get_value(w, &value) < GP_OK || value <= 0)
			ret = cs_error_set(err, CS_E_INVALID, "the camera's clock reads as no date");
		else
			*camera_time = camera_wall((time_t)value);
	}
	if (w)
		gp_widget_free(w);
	return leave(c, ret);
}

/* --- deleting ----------------------------------------------------------- */

/* The card file of f as folder and name (split in place in buf). */
static bool split_card_path(const camera_file *f, char buf[CAMERA_PATH_MAX],
			    const char **folder, const char **name)
{
	char *slash;

	snprintf(buf, CAMERA_PATH_MAX, "%s", f->camera_path);
	if (!(slash = strrchr(buf, '/')) || !slash[1])
		return false;
	*slash = '\0';
	*folder = slash == buf ? "/" : buf;
	*name = slash + 1;
	return true;
}

/* The local copy is whole and on disk: its size, then fsync of it and its
 * folder, whoever wrote it. */
static int local_copy_safe(const camera_file *f, cs_error *err)
{
	char dir[PATH_MAX], *slash;
	struct stat st;
	int fd, ret = 0;

	if ((fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0)
		return cs_error_set(err, CS_E_IO, "%s: %s: not deleted from the camera",
				    f->path, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size != f->size || fsync(fd) < 0)
		ret = cs_error_set(err, CS_E_IO,
				   "%s is not the %lld bytes downloaded, or cannot be synced: not "
				   "deleted from the camera", f->path, f->size);
	close(fd);
	snprintf(dir, sizeof dir, "%s", f->path);
	if (ret == 0 && (slash = strrchr(dir, '/'))) {
		*slash = '\0';
		if ((fd = open(slash == dir ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    fsync(fd) < 0)
			ret = cs_error_set(err, CS_E_IO, "%s: %s: not deleted from the camera",
					   dir, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return ret;
}

/* 1 if the card still lists folder/name, 0 if not, or libgphoto2's
 * error.  libgphoto2 forgets a file only when the camera confirmed its
 * deletion; its listing cache forgets it regardless: emptied first. */
static int listed(camera *c, const char *folder, const char *name)
{
	CameraList *list;
	int ret;

	if ((ret = gp_list_new(&list)) < GP_OK)
		return ret;
	gp_filesystem_reset(c->gp->fs);
	if ((ret = gp_camera_folder_list_files(c->gp, folder, list, c->ctx)) >= GP_OK)
		ret = gp_list_find_by_name(list, NULL, name) >= GP_OK;
	gp_list_free(list);
	return ret;
}

/* Deletes one card file until the card no longer lists it. */
static int delete_one(camera *c, const camera_file *f, cs_error *err)
{
	struct patience p = patience_start();
	char buf[CAMERA_PATH_MAX];
	const char *folder, *name;
	int ret;

	if (!split_card_path(f, buf, &folder, &name))
		return cs_error_set(err, CS_E_INVALID, "\"%s\" is no file on the card",
				    f->camera_path);
	do {
		ret = gp_camera_file_delete(c->gp, folder, name, c->ctx);
		if (ret == GP_ERROR_FILE_NOT_FOUND)
			return 0;       /* deleted on the camera meanwhile */
		if (ret >= GP_OK || ret == GP_ERROR_CAMERA_BUSY)
			ret = listed(c, folder, name);
	} while ((ret == 1 || ret == GP_ERROR_CAMERA_BUSY) && patience_pause(c, &p));
	if (ret == 1)
		return cs_error_set(err, CS_E_ACCESS,
				    "the camera did not delete %s (busy? card locked? picture "
				    "protected?): try again, or delete it on the camera", name);
	return ret < GP_OK ? fail(c, ret, err, "delete %s from the card", name) : 0;
}

int camera_delete(camera *c, const camera_capture *cap, cs_error *err)
{
	int ret = 0;

	if (!c || !cap || cap->nfiles > CAMERA_CAPTURE_MAX_FILES)
		return cs_error_set(err, CS_E_INVALID, "camera_delete: no camera or capture");
	for (size_t i = 0; i < cap->nfiles && ret == 0; i++)
		ret = local_copy_safe(&cap->files[i], err);
	if (ret < 0)
		return ret;
	if ((ret = enter(c, now(), err)) == 0)
		for (size_t i = 0; i < cap->nfiles && ret == 0; i++)
			ret = delete_one(c, &cap->files[i], err);
	return leave(c, ret);
}
