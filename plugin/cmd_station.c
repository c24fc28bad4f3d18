/* copystand station: the copy stand.  Scan (or type) a catalog number, see
 * what Specify says of it, shoot (camera button, or Enter here), and the
 * capture is named from the number, journaled and attached in the
 * background while the next specimen goes on the stand.
 *
 * Threads: the main one reads the scanner and draws; the camera has one
 * of its own (libgphoto2 calls block); the station core checks numbers
 * and the pipeline attaches on theirs.  Everything a person must see goes
 * through station_get_status(), redrawn when something wakes the main
 * loop through a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "barcode.h"
#include "camera.h"
#include "catalog.h"
#include "cli.h"
#include "commands.h"
#include "journal.h"
#include "press.h"
#include "scanner.h"
#include "station.h"
#include "watch.h"

/* How long the camera thread waits for a shot before it looks at new
 * numbers and shutter requests again. */
#define CAMERA_POLL_MS 100
/* Files of one press a watched folder gives together (RAW+JPEG, and
 * room for a third). */
#define WATCH_PRESS_MAX 3
/* After quitting, how long shots fired from here may take to come in. */
#define QUIT_SHOT_WAIT_S 15.0
/* A shot fired from here and not announced within this was lost: the
 * next press announced is not it. */
#define FIRED_LOST_S 60.0
/* Presses announced but not yet downloaded, at most; and presses asked
 * for but not yet announced. */
#define NAMED_SHOTS 16
#define ASKED_SHOTS 16
/* The camera's clock, as presses of its button are placed with it. */
#define CAMERA_SOURCE "camera"
/* Once the camera's clock is known to within this, the screen says so. */
#define CLOCK_SAID_S 0.1

struct ui {
	station *st;
	const char *dir;
	camera_options camopts;
	bool delete_from_card;
	bool tty;
	int wake[2];                 /* written by any thread: redraw */

	bool no_camera;              /* --no-camera: another program holds it */
	watch *watch;                /* --watch: the folder another program fills */
	const char *watch_dir;
	bool watch_move;             /* --watch-keep move */

	pthread_mutex_t lock;        /* the fields below */
	pthread_t camera_thread;
	bool camera_started;
	bool quitting;               /* no more shots: finish what was fired */
	/* Shots asked for (Enter), each with the number current then, oldest
	 * first: the first nfired sent to the camera and not yet announced,
	 * the rest not yet sent. */
	station_shot asked[ASKED_SHOTS];
	int nasked, nfired;
	int outstanding;             /* fired from here, not yet come in */
	bool camera_ok;
	unsigned camera_sessions;    /* seen (camera thread only) */
	char model[CAMERA_NAME_MAX]; /* the camera's (camera thread only) */
	char notice[512];            /* the latest news of the camera or the keys */
	unsigned notice_alerts;

	/* The main thread's view of what it already showed. */
	station_status shown;
	char shown_notice[512];
	unsigned shown_notice_alerts;

	/* Shots named as the camera announced them (camera thread only). */
	station_shot named[NAMED_SHOTS];
	unsigned nnamed;
	/* The camera's clock (camera thread only): when to read it next
	 * (INFINITY: it has none). */
	double clock_next;
	bool clock_said;             /* that it is known well enough */
};

static volatile sig_atomic_t signalled;
static int signal_pipe = -1;

static void on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	signalled++;
	if (signal_pipe >= 0 && write(signal_pipe, "s", 1) < 0) {
		/* The main loop sees `signalled` at its next wake anyway. */
	}
	errno = saved;
}

static void wake_ui(void *ud)
{
	struct ui *u = ud;
	if (write(u->wake[1], "w", 1) < 0) {
		/* A full pipe already holds a wake-up. */
	}
}

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* A notice for the screen; ok (if not NULL) says whether the camera works. */
static void vnotice(struct ui *u, const bool *ok, bool alert, const char *fmt, va_list ap)
{
	pthread_mutex_lock(&u->lock);
	if (ok)
		u->camera_ok = *ok;
	vsnprintf(u->notice, sizeof u->notice, fmt, ap);
	if (alert)
		u->notice_alerts++;
	pthread_mutex_unlock(&u->lock);
	wake_ui(u);
}

static void notice(struct ui *u, bool alert, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void notice(struct ui *u, bool alert, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnotice(u, NULL, alert, fmt, ap);
	va_end(ap);
}

static void camera_news(struct ui *u, bool ok, bool alert, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void camera_news(struct ui *u, bool ok, bool alert, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vnotice(u, &ok, alert, fmt, ap);
	va_end(ap);
}

/* --- the camera thread -------------------------------------------------------- */

/* Journals a capture under the name it was shot for; then, if asked, frees
 * the card (the local copies are fsynced and journaled by now). */
static void take_capture(struct ui *u, camera *cam, const station_shot *shot,
			 const camera_capture *cap)
{
	station_file files[CAMERA_CAPTURE_MAX_FILES];
	cs_error err = { 0 };

	for (size_t i = 0; i < cap->nfiles; i++)
		files[i] = (station_file){
			.path = cap->files[i].path, .size = cap->files[i].size,
			.sha256 = cap->files[i].sha256, .mimetype = cap->files[i].mimetype,
			.card = cap->files[i].camera_path,
		};
	if (station_submit(u->st, shot, files, cap->nfiles, &err)) {
		camera_news(u, true, true, "CAPTURE NOT JOURNALED: %s (the file is in %s; "
			    "add it with copystand upload)", err.msg, u->dir);
		return;
	}
	if (u->delete_from_card && camera_delete(cam, cap, &err))
		camera_news(u, true, true, "could not delete the shot from the card: %s",
			    err.msg);
}

/* Takes shot i out of the shots asked for (lock held). */
static void drop_asked(struct ui *u, int i, station_shot *shot)
{
	if (shot)
		*shot = u->asked[i];
	memmove(u->asked + i, u->asked + i + 1, (size_t)(u->nasked - i - 1) * sizeof *u->asked);
	u->nasked--;
	if (i < u->nfired)
		u->nfired--;
}

/* Takes the oldest shot sent to the camera and not yet announced (lock
 * held): false when none waits.  One sent long ago was lost. */
static bool take_fired(struct ui *u, station_shot *shot)
{
	while (u->nfired && now_s() - u->asked[0].lo > FIRED_LOST_S)
		drop_asked(u, 0, NULL);
	if (!u->nfired)
		return false;
	drop_asked(u, 0, shot);
	return true;
}

/* The shot a capture was named for. */
static station_shot *named_shot(struct ui *u, const char *stem)
{
	for (unsigned i = 0; i < NAMED_SHOTS && i < u->nnamed; i++)
		if (strcmp(u->named[i].stem, stem) == 0)
			return &u->named[i];
	return NULL;
}

/* Names a press when the camera announces it: a shot fired from here has
 * the number of its Enter; one of the camera's button a provisional name
 * until the time of its press places it.  A name found taken: the same
 * press's next one. */
static void name_press(void *ud, const char *taken, char *stem, size_t size)
{
	struct ui *u = ud;
	station_shot *shot = taken ? named_shot(u, taken) : NULL;

	if (shot) {
		station_shot_rename(u->st, shot);
	} else {
		double announced = now_s();
		shot = &u->named[u->nnamed++ % NAMED_SHOTS];
		pthread_mutex_lock(&u->lock);
		bool fired = take_fired(u, shot);
		pthread_mutex_unlock(&u->lock);
		if (fired)
			shot->hi = announced;
		else
			station_shot_pending(u->st, announced, shot);
		snprintf(shot->source, sizeof shot->source, CAMERA_SOURCE);
	}
	snprintf(stem, size, "%s", shot->stem);
}


/* Each file the camera announces is on record until it is journaled, and
 * one it lost is told: no press goes unaccounted for. */
static void on_card(void *ud, const char *path, const char *stem, bool lost)
{
	struct ui *u = ud;
	const station_shot *shot = stem[0] ? named_shot(u, stem) : NULL;
	const char *identifier = shot ? shot->identifier : "";
	cs_error err = { 0 };

	if (lost)
		station_card_lost(u->st, path, identifier);
	else if (station_card_announced(u->st, u->model, path, identifier, &err))
		camera_news(u, true, true, "the journal cannot note %s on the card: %s: if the "
			    "download fails, copy it off the card and run copystand upload",
			    path, err.msg);
}

/* Shots earlier sessions left on this camera's card: brought in under
 * the card's names, for a person to check (the numbers current then are
 * not this session's to give). */
static void bring_in_earlier(struct ui *u, camera *cam, char *said, size_t size)
{
	journal_card *cards = NULL;
	size_t n = 0, k = 0;
	cs_error err = { 0 };

	if (station_cards(u->st, false, &cards, &n, &err)) {
		camera_news(u, true, true, "shots left on the card: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cards[i].source, u->model))
			continue;       /* another camera's card */
		if (camera_fetch(cam, cards[i].path, &err)) {
			camera_news(u, true, true, "camera: %s", err.msg);
			continue;
		}
		journal_card fetched = cards[i];     /* the ones fetched first */
		cards[i] = cards[k];
		cards[k++] = fetched;
	}
	said[0] = '\0';
	if (k) {
		char names[400];
		station_cards_say(cards, k, names, sizeof names);
		snprintf(said, size, "; bringing in %zu shot%s an earlier session left on the "
			 "card: %s: kept under the card's name%s for you to check", k,
			 k > 1 ? "s" : "", names, k > 1 ? "s" : "");
	}
	journal_cards_free(cards, n);
}

/* Reads the camera's clock when it is due: at the moments that halve what
 * is known of its offset, then as drift widens it again. */
static void read_clock(struct ui *u, camera *cam)
{
	double before, after, wall;
	station_clock known;
	cs_error err = { 0 };
	int ret;

	if (now_s() < u->clock_next)
		return;
	ret = camera_read_clock(cam, &before, &after, &wall, &err);
	if (ret == CS_E_INVALID) {
		u->clock_next = INFINITY;
		camera_news(u, true, false, "camera: %s; shots of its own button are placed "
			    "by their capture time and the shots fired from here", err.msg);
		return;
	}
	if (ret) {
		u->clock_next = now_s() + (ret == CS_E_TIMEOUT ? CAMERA_CLOCK_SPACING_S : 10);
		return;
	}
	if (station_clock_read(u->st, CAMERA_SOURCE, before, after, wall, 1, &known, &err)) {
		camera_news(u, true, true, "the camera's clock was read but not noted: %s", err.msg);
		u->clock_next = after + CAMERA_CLOCK_SPACING_S;
		return;
	}
	if (known.changed) {
		u->clock_said = false;
		camera_news(u, true, true, "camera: its clock changed (set on the camera?): "
			    "reading it again; shots of its button meanwhile may be held");
	}
	u->clock_next = press_clock_next_read(known.lo, known.hi, after,
					      after + CAMERA_CLOCK_SPACING_S);
	if (!u->clock_said && known.hi - known.lo < CLOCK_SAID_S) {
		u->clock_said = true;
		camera_news(u, true, false, "camera: its clock is %.2f s %s this computer's "
			    "(±%.2f s): presses of its button are placed by it",
			    fabs(known.lo + known.hi) / 2,
			    known.lo + known.hi < 0 ? "behind" : "ahead of",
			    (known.hi - known.lo) / 2);
	}
}

/* One round: open the camera if need be, fire a requested shot, wait a
 * moment for the next one.  False once quitting and nothing is due. */
/* After the n-th look in a row that found no camera: wait 1, 2, 4, then
 * 8 s before the next (libgphoto2 leaks a little at every look, and a
 * station may stand without its camera all day), in steps short enough
 * that quitting or Enter does not wait. */
static void camera_pause(struct ui *u, int n)
{
	int steps = 10 << (n < 1 ? 0 : n > 4 ? 3 : n - 1);

	for (int i = 0; i < steps; i++) {
		pthread_mutex_lock(&u->lock);
		bool hurry = u->quitting || u->nasked > u->nfired;
		pthread_mutex_unlock(&u->lock);
		if (hurry)
			return;
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
	}
}

/* Whether the camera is still there after a call failed with ret. */
static bool camera_works(int ret)
{
	return ret != CS_E_UNREACHABLE && ret != CS_E_NETWORK && ret != CS_E_ACCESS;
}

/* Sends the oldest shot asked for to the camera; the press that comes
 * after it was sent is its own. */
static void fire_asked(struct ui *u, camera *cam)
{
	station_shot shot;
	cs_error err = { 0 };
	double sent = now_s();
	int ret = camera_trigger(cam, &err);

	pthread_mutex_lock(&u->lock);
	if (ret == 0) {
		u->asked[u->nfired++].lo = sent;
		u->outstanding++;
	} else {
		drop_asked(u, u->nfired, &shot);
	}
	pthread_mutex_unlock(&u->lock);
	if (ret) {
		station_shot_cancel(u->st, &shot);
		camera_news(u, camera_works(ret), true, "SHUTTER FAILED: %s", err.msg);
	}
}

/* Says the camera is ready whenever a session opened, the first one or a
 * reconnect a call made by itself. */
static void camera_say_ready(struct ui *u, camera *cam)
{
	if (camera_sessions(cam) == u->camera_sessions)
		return;
	u->camera_sessions = camera_sessions(cam);
	camera_news(u, true, false, "camera: %s ready", camera_model(cam));
}

static bool camera_round(struct ui *u, camera **cam, double *quiet_since, int *away)
{
	station_shot shot;
	camera_capture cap;
	cs_error err = { 0 };
	int ret;

	pthread_mutex_lock(&u->lock);
	bool quitting = u->quitting, fire = u->nasked > u->nfired;
	int outstanding = u->outstanding;
	pthread_mutex_unlock(&u->lock);
	if (quitting && !fire && (outstanding == 0 || now_s() - *quiet_since > QUIT_SHOT_WAIT_S))
		return false;
	if (!*cam) {
		if ((ret = camera_open(&u->camopts, cam, &err))) {
			camera_news(u, false, false, "camera: %s", err.msg);
			camera_pause(u, ++*away);
			return !quitting;
		}
		*away = 0;
		u->clock_next = now_s();
		char more[600];
		u->camera_sessions = camera_sessions(*cam);
		snprintf(u->model, sizeof u->model, "%s", camera_model(*cam));
		bring_in_earlier(u, *cam, more, sizeof more);
		camera_news(u, true, false, "camera: %s ready%s", u->model, more);
	}
	if (fire) {
		fire_asked(u, *cam);
		camera_say_ready(u, *cam);
	}
	read_clock(u, *cam);
	double wait_ms = (u->clock_next - now_s()) * 1e3;
	int poll_ms = wait_ms < 0 ? 0 : wait_ms < CAMERA_POLL_MS ? (int)wait_ms : CAMERA_POLL_MS;
	ret = camera_wait_capture(*cam, poll_ms, u->dir, NULL, &cap, &err);
	camera_say_ready(u, *cam);
	if (ret == 0) {
		const station_shot *named = cap.stem[0] ? named_shot(u, cap.stem) : NULL;
		/* Named by the camera itself (or an earlier session's, brought
		 * in): kept, unmatched, for a person. */
		shot = named ? *named : (station_shot){ .bind = JB_NONE };
		pthread_mutex_lock(&u->lock);
		if (named && u->outstanding > 0)
			u->outstanding--;
		pthread_mutex_unlock(&u->lock);
		*quiet_since = now_s();
		take_capture(u, *cam, &shot, &cap);
		camera_news(u, true, false, "%s", "");
	} else if (ret == CS_E_CONFLICT) {
		camera_news(u, true, false, "camera: %s (named anew)", err.msg);
	} else if (ret != CS_E_TIMEOUT) {
		camera_news(u, camera_works(ret), ret != CS_E_UNREACHABLE, "camera: %s", err.msg);
		/* A camera that is away: look again in a moment, not at once. */
		nanosleep(&(struct timespec){ .tv_nsec = 500000000 }, NULL);
	}
	return true;
}

static void *camera_main(void *arg)
{
	struct ui *u = arg;
	camera *cam = NULL;
	double quiet_since = now_s();
	int away = 0;

	u->camopts.name_press = name_press;
	u->camopts.name_press_ud = u;
	u->camopts.on_card = on_card;
	u->camopts.on_card_ud = u;
	while (camera_round(u, &cam, &quiet_since, &away))
		;
	camera_free(cam);
	return NULL;
}

/* --- the watched folder --------------------------------------------------------- */

/* The files of one press the capture program finished (one, or a
 * RAW+JPEG pair): into the session as one capture, named from the time
 * of its press, as a hook's file is; moved only when asked. */
static void take_press(struct ui *u, const watch_file *f, size_t n)
{
	const char *paths[WATCH_PRESS_MAX] = { NULL };
	const char *base = strrchr(f[0].path, '/') + 1;
	char *name = NULL;
	double seen = INFINITY;
	cs_error err = { 0 };

	for (size_t i = 0; i < n; i++) {
		paths[i] = f[i].path;
		seen = fmin(seen, f[i].before);
	}
	/* Moved: renamed into the session, or copied and then removed. */
	if (station_submit_received(u->st, paths, n, seen, u->watch_move, &name, &err)) {
		camera_news(u, true, true, "watch: NOT TAKEN %s%s: %s%s%s", base,
			    n > 1 ? " and its pair" : "", err.msg,
			    access(f[0].path, F_OK) == 0 ? "; it stays in " : "",
			    access(f[0].path, F_OK) == 0 ? u->watch_dir : "");
		return;
	}
	camera_news(u, true, false, "watch: took %s%s%s as %s", base, n > 1 ? " and " : "",
		    n > 1 ? strrchr(f[1].path, '/') + 1 : "", name);
	free(name);
}

/* Files the watch gave together: those never complete reported, the
 * complete ones taken a stem at a time. */
static void take_watched(struct ui *u, const watch_file *f, size_t n)
{
	watch_file press[WATCH_PRESS_MAX];
	size_t np = 0;

	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(f[i].path, '/') + 1;
		if (!f[i].complete) {
			camera_news(u, true, true, "watch: NOT TAKEN %s: %s", base, f[i].why);
			continue;
		}
		size_t stem = strcspn(base, ".");
		if (np && strncmp(strrchr(press[0].path, '/') + 1, base, stem + 1)) {
			take_press(u, press, np);
			np = 0;
		}
		press[np++] = f[i];
	}
	if (np)
		take_press(u, press, np);
}

static void *watch_main(void *arg)
{
	struct ui *u = arg;
	watch_file f[WATCH_PRESS_MAX];
	cs_error err = { 0 };

	for (;;) {
		pthread_mutex_lock(&u->lock);
		bool quitting = u->quitting;
		pthread_mutex_unlock(&u->lock);
		if (quitting)
			break;
		int ret = watch_wait_file(u->watch, CAMERA_POLL_MS, &f[0], &err);
		if (ret == 0) {
			size_t n = 1;
			while (n < WATCH_PRESS_MAX && f[n - 1].more &&
			       watch_wait_file(u->watch, 0, &f[n], &err) == 0)
				n++;
			take_watched(u, f, n);
		} else if (ret != CS_E_TIMEOUT) {
			camera_news(u, false, true, "watch: %s", err.msg);
			nanosleep(&(struct timespec){ .tv_sec = 1 }, NULL);
		}
	}
	return NULL;
}

/* --- the screen --------------------------------------------------------------- */

static const char *check_mark(const station_status *s)
{
	switch (s->check) {
	case STATION_FOUND: return "✓";
	case STATION_CHECKING: return "…";
	case STATION_OFFLINE: return "?";
	case STATION_NONE: return "-";
	default: return "✗";
	}
}

/* A line for the record: on a terminal above the status line, a held
 * capture's in red. */
static void say(struct ui *u, const char *line)
{
	bool loud = u->tty && !strncmp(line, "HELD ", 5);

	if (u->tty)
		printf("\r\033[K");
	printf("%s%s%s\n", loud ? "\033[1;31m" : "", line, loud ? "\033[0m" : "");
}

/* What the keys do to the capture held, for the status line. */
static void held_keys(const station_status *s, char *out, size_t size)
{
	if (!s->held_name[0])
		out[0] = '\0';
	else if (s->held_press)
		snprintf(out, size, "\033[1;31mHELD %s: p %s, n %s%s\033[0m · ", s->held_name,
			 s->held_before[0] ? s->held_before : "no number",
			 s->held_after[0] ? s->held_after : "no number",
			 s->held_numbers > 2 ? ", or = NUMBER" : "");
	else
		snprintf(out, size, "\033[1;31mHELD %s: c scan, l label %s\033[0m · ",
			 s->held_name, s->held_label);
}

static void draw_status(struct ui *u, const station_status *s)
{
	char problems[48] = "", held[640];

	pthread_mutex_lock(&u->lock);
	bool cam = u->camera_ok;
	pthread_mutex_unlock(&u->lock);
	if (!u->tty)
		return;
	if (s->problems)
		snprintf(problems, sizeof problems, " · problems %lld", s->problems);
	held_keys(s, held, sizeof held);
	/* The number the next press takes: the one current now. */
	printf("\r\033[K%s[next shot: %s %s] queue %lld · attached %lld%s · Specify %s · "
	       "camera %s — scan, Enter shoots, u undo, q quit: ", held,
	       s->identifier[0] ? s->identifier : "no specimen", check_mark(s),
	       s->queued, s->attached, problems, s->online ? "✓" : "OFFLINE",
	       u->watch ? "(folder)" : u->no_camera ? "none" : cam ? "✓" : "✗");
}

/* Shows what changed since the last redraw; rings for each new alert. */
static void redraw(struct ui *u)
{
	station_status s;
	char note[512];
	unsigned note_alerts;

	station_get_status(u->st, &s);
	pthread_mutex_lock(&u->lock);
	snprintf(note, sizeof note, "%s", u->notice);
	note_alerts = u->notice_alerts;
	pthread_mutex_unlock(&u->lock);

	if (strcmp(s.message, u->shown.message) != 0 && s.message[0])
		say(u, s.message);
	if (strcmp(s.last, u->shown.last) != 0 && s.last[0])
		say(u, s.last);
	if (s.online != u->shown.online)
		say(u, s.online ? "Specify is reachable again" :
		    "Specify cannot be reached: keep shooting, captures wait in the journal");
	if (strcmp(note, u->shown_notice) != 0 && note[0])
		say(u, note);
	if (s.alerts != u->shown.alerts || note_alerts != u->shown_notice_alerts)
		putchar('\a');
	u->shown = s;
	u->shown_notice_alerts = note_alerts;
	snprintf(u->shown_notice, sizeof u->shown_notice, "%s", note);
	draw_status(u, &s);
	fflush(stdout);
}

/* --- keys and scans ----------------------------------------------------------- */

static void shoot(struct ui *u)
{
	cs_error err = { 0 };

	if (u->no_camera) {
		notice(u, true, "NOT SHOOTING: this station has no camera (%s): shoot with "
		       "the program that holds it", u->watch ? "--watch" : "--no-camera");
		return;
	}
	if (station_may_shoot(u->st, &err)) {
		notice(u, true, "NOT SHOOTING: %s", err.msg);
		return;
	}
	pthread_mutex_lock(&u->lock);
	bool full = u->nasked == ASKED_SHOTS;
	/* The number is the one current now, whatever comes before the shot. */
	if (!full)
		station_shot_prepare(u->st, &u->asked[u->nasked++]);
	pthread_mutex_unlock(&u->lock);
	if (full)
		notice(u, true, "NOT SHOOTING: %d shots wait for the camera already",
		       ASKED_SHOTS);
}

/* A line from the scanner or the keyboard; false: quit. */
static bool handle_line(struct ui *u, char *line)
{
	cs_error err = { 0 };
	char *p = line, *end;

	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	if (*p == '\0') {
		shoot(u);
	} else if (strcmp(p, "q") == 0 || strcmp(p, "Q") == 0) {
		return false;
	} else if (strcmp(p, "u") == 0 || strcmp(p, "U") == 0) {
		if (station_undo(u->st, &err))
			notice(u, true, "undo: %s", err.msg);
		else
			notice(u, false, "undoing the last capture");
	} else if (strlen(p) == 1 && strchr("cClLpPnN", *p)) {
		static const struct { char key; enum station_choice choice; const char *done; } keys[] = {
			{ 'c', STATION_KEEP_SCAN, "held capture sent on under the scanned number" },
			{ 'l', STATION_TAKE_LABEL, "held capture renamed to its label's number" },
			{ 'p', STATION_BEFORE, "held capture given the number before the scan" },
			{ 'n', STATION_AFTER, "held capture given the number scanned after" },
		};
		for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
			if (keys[i].key != (*p | 0x20))
				continue;
			if (station_resolve_held(u->st, keys[i].choice, &err))
				notice(u, true, "%s", err.msg);
			else
				notice(u, false, "%s", keys[i].done);
		}
	} else if (*p == '=') {
		if (station_resolve_held_number(u->st, p + 1 + strspn(p + 1, " "), &err))
			notice(u, true, "%s", err.msg);
		else
			notice(u, false, "held capture given %s", p + 1 + strspn(p + 1, " "));
	} else if (strcmp(p, "?") == 0 || strcmp(p, "h") == 0) {
		say(u, "Scan a label (or type its number and Enter), then shoot with the "
		    "camera's button or Enter here: each shot takes the number current "
		    "when its shutter was pressed.  u Enter takes back the last capture; "
		    "a held capture is decided with c or l (its label disagrees) or p or n "
		    "(pressed as the number changed: the number before or after; = NUMBER "
		    "for any of them); q Enter "
		    "quits; work not yet attached resumes at the next start.");
	} else {
		station_scan(u->st, p, &err);
	}
	wake_ui(u);
	return true;
}

static void drain_pipe(int fd)
{
	char buf[64];
	while (read(fd, buf, sizeof buf) > 0)
		;
}

/* Scans come from the scanner device, or from the terminal; keys only
 * from the terminal, so no barcode can shoot or quit. */
struct inputs {
	scanner *in[2];
	bool keys[2];
	int n;
};

/* Reads what one input has; false: quit. */
static bool read_input(struct ui *u, struct inputs *ins, int i)
{
	char line[SCANNER_LINE_MAX];
	cs_error err = { 0 };
	int ret;

	while ((ret = scanner_read_line(ins->in[i], line, sizeof line, &err)) == 1) {
		if (!ins->keys[i] && !line[strspn(line, " \t\r")])
			continue;
		if (!ins->keys[i])
			station_scan(u->st, line, &err), wake_ui(u);
		else if (!handle_line(u, line))
			return false;
	}
	if (ret == CS_E_INVALID)
		notice(u, true, "scanner: %s", err.msg);
	else if (ret < 0) {
		say(u, err.msg);
		return false;
	}
	return true;
}

/* Reads scans and keys until q, Ctrl-C or an input that went away. */
static int run_input(struct ui *u, struct inputs *ins)
{
	struct pollfd fds[3];

	for (int i = 0; i < ins->n; i++)
		fds[i] = (struct pollfd){ .fd = scanner_fd(ins->in[i]), .events = POLLIN };
	fds[ins->n] = (struct pollfd){ .fd = u->wake[0], .events = POLLIN };
	redraw(u);
	while (!signalled) {
		if (poll(fds, (nfds_t)ins->n + 1, 1000) < 0 && errno != EINTR) {
			say(u, strerror(errno));
			return 1;
		}
		if (fds[ins->n].revents)
			drain_pipe(u->wake[0]);
		for (int i = 0; i < ins->n; i++)
			if (!read_input(u, ins, i))
				return 0;
		redraw(u);
	}
	return 0;
}

/* q typed at the terminal? (never waits long) */
static bool quit_typed(struct inputs *ins, int timeout_ms)
{
	char line[SCANNER_LINE_MAX];
	cs_error err;

	for (int i = 0; i < ins->n; i++) {
		struct pollfd fd = { .fd = scanner_fd(ins->in[i]), .events = POLLIN };
		if (!ins->keys[i] || poll(&fd, 1, timeout_ms) <= 0)
			continue;
		while (scanner_read_line(ins->in[i], line, sizeof line, &err) == 1)
			if (strcmp(line, "q") == 0 || strcmp(line, "Q") == 0)
				return true;
	}
	return false;
}

/* The shots still on the camera's card: this session's at the end, the
 * earlier sessions' at the start. */
static void say_cards(struct ui *u, bool mine)
{
	journal_card *cards = NULL;
	size_t n = 0;
	cs_error err = { 0 };
	char names[400], line[1024];

	if (station_cards(u->st, mine, &cards, &n, &err)) {
		snprintf(line, sizeof line, "cannot list the shots left on the camera's card: %s",
			 err.msg);
		say(u, line);
		return;
	}
	if (n) {
		station_cards_say(cards, n, names, sizeof names);
		snprintf(line, sizeof line, "%s%zu shot%s %s never downloaded and %s still on the "
			 "card of the camera (%s): %s: %s", mine ? "" : "NOTE: ", n,
			 n > 1 ? "s" : "", mine ? "of this session" : "of an earlier session",
			 n > 1 ? "are" : "is", cards[0].source, names,
			 mine ? "the next station start with this camera brings them in, or copy "
				"them off the card and run copystand upload"
			      : "the station brings them in when it opens that camera, under the "
				"card's names, for you to check");
		say(u, line);
	}
	journal_cards_free(cards, n);
}

/* Lets shots fired from here come in, then waits for the pipeline while
 * Specify answers; q (or Ctrl-C) again leaves the rest for the next start. */
static void finish(struct ui *u, struct inputs *ins)
{
	station_status s;
	cs_error err = { 0 };

	pthread_mutex_lock(&u->lock);
	u->quitting = true;
	pthread_mutex_unlock(&u->lock);
	if (u->camera_started)
		pthread_join(u->camera_thread, NULL);
	u->camera_started = false;
	say_cards(u, true);
	sig_atomic_t seen = signalled;
	for (;;) {
		station_get_status(u->st, &s);
		if (s.queued == 0 && station_wait_idle(u->st, 0, &err) == 0)
			break;
		if (!s.online || signalled != seen || quit_typed(ins, 250)) {
			say(u, "");
			printf("%lld capture(s) wait in the journal; they are attached at the "
			       "next start (copystand station, or copystand upload of any folder)\n",
			       s.queued);
			return;
		}
		redraw(u);
		if (u->tty)
			printf("\r\033[Kfinishing %lld upload(s) — q Enter to leave them for the "
			       "next start", s.queued);
		fflush(stdout);
	}
	redraw(u);
	say(u, "all captures of this session are final; bye");
}

/* --- setting up ----------------------------------------------------------------- */

static const char station_usage[] =
	"usage: copystand station [options]\n"
	"Tethered shooting at the copy stand: scan or type a catalog number, then\n"
	"shoot (camera button, or Enter); each capture is named from the number,\n"
	"checked and attached to its record in Specify in the background.\n"
	"  --camera MODEL      the camera to use, as libgphoto2 names it\n"
	"  --port PORT         where it is: usb:001,004 or ptpip:HOST:PORT:PORT\n"
	"  --scanner DEVICE    a serial (/dev/ttyACM0) or input\n"
	"                      (/dev/input/by-id/...-event-kbd) scanner;\n"
	"                      default: scans typed into this terminal\n"
	"  --dir DIR           the session folder (default\n"
	"                      ~/Pictures/copystand/YYYY-MM-DD)\n"
	"  --unknown refuse|keep  numbers Specify does not know: refuse to shoot\n"
	"                      (default), or shoot and keep them unmatched\n"
	"  --delete-from-card  delete each shot from the card once it is safe here\n"
	"  --raw upload|local|later  the RAW file of a RAW+JPEG pair: sent after\n"
	"                      its JPEG (default), kept here only, or sent once\n"
	"                      nothing else waits\n"
	"  --label off|check|name  read the label's barcode in each JPEG: hold a\n"
	"                      capture whose label disagrees with the scan\n"
	"                      (check), or name captures from it (name, no\n"
	"                      scanner needed); default off\n"
	"  --no-stamp          do not write the catalog number into the JPEGs\n"
	"                      (nor XMP sidecars beside RAW files)\n"
	"  --no-camera         leave the camera to another program (gphoto2 with\n"
	"                      copystand-gphoto2-hook); same as --port none\n"
	"  --watch DIR         no camera here: take each new image the capture\n"
	"                      program (Capture One, EOS Utility, darktable, ...)\n"
	"                      writes into DIR, once it is complete\n"
	"  --watch-keep copy|move  copy the files out of DIR (default: the\n"
	"                      program's catalogue stays whole) or move them\n"
	"  --watch-mode auto|inotify|poll  how DIR is watched; auto polls on\n"
	"                      network shares, where inotify sees nothing\n"
	CLI_COMMON_HELP
	"Each shot takes the number current when its shutter was pressed; a shot\n"
	"of the camera's own button that came as the number changed is held.\n"
	"Keys (each followed by Enter): Enter shoots, u undoes the last capture,\n"
	"c keeps the scanned number of a capture held for its label, l takes the\n"
	"label's; p gives a capture held at a change of number the number before,\n"
	"n the one after, = NUMBER any of its numbers; q quits (work not yet\n"
	"attached resumes at the next start).\n";

enum { OPT_CAMERA = 0x2000, OPT_PORT, OPT_SCANNER, OPT_DIR, OPT_UNKNOWN, OPT_DELETE,
       OPT_RAW, OPT_LABEL, OPT_NO_STAMP, OPT_NO_CAMERA, OPT_WATCH, OPT_WATCH_KEEP,
       OPT_WATCH_MODE };

static int parse_station(cli *c, int argc, char **argv, cs_error *err)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{ "camera", required_argument, NULL, OPT_CAMERA },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "scanner", required_argument, NULL, OPT_SCANNER },
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "unknown", required_argument, NULL, OPT_UNKNOWN },
		{ "delete-from-card", no_argument, NULL, OPT_DELETE },
		{ "raw", required_argument, NULL, OPT_RAW },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "no-stamp", no_argument, NULL, OPT_NO_STAMP },
		{ "no-camera", no_argument, NULL, OPT_NO_CAMERA },
		{ "watch", required_argument, NULL, OPT_WATCH },
		{ "watch-keep", required_argument, NULL, OPT_WATCH_KEEP },
		{ "watch-mode", required_argument, NULL, OPT_WATCH_MODE },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const char *const keys[] = {
		[OPT_CAMERA - OPT_CAMERA] = "camera", [OPT_PORT - OPT_CAMERA] = "port",
		[OPT_SCANNER - OPT_CAMERA] = "scanner", [OPT_DIR - OPT_CAMERA] = "dir",
		[OPT_UNKNOWN - OPT_CAMERA] = "unknown",
		[OPT_DELETE - OPT_CAMERA] = "delete-from-card",
		[OPT_RAW - OPT_CAMERA] = "raw", [OPT_LABEL - OPT_CAMERA] = "label",
		[OPT_NO_STAMP - OPT_CAMERA] = "stamp",
		[OPT_NO_CAMERA - OPT_CAMERA] = "port",
		[OPT_WATCH - OPT_CAMERA] = "watch",
		[OPT_WATCH_KEEP - OPT_CAMERA] = "watch-keep",
		[OPT_WATCH_MODE - OPT_CAMERA] = "watch-mode",
	};
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt >= OPT_CAMERA && opt <= OPT_WATCH_MODE) {
			const char *v = opt == OPT_NO_STAMP ? "false" :
				opt == OPT_NO_CAMERA ? "none" : optarg ? optarg : "true";
			if ((r = config_set(c->opts, keys[opt - OPT_CAMERA], v, err)))
				return r;
			continue;
		}
		if ((r = cli_common_option(c, opt, optarg, err)) < 0)
			return r;
		if (r == 0)
			return opt == 'h' ? 1 : 2;
	}
	return optind < argc ? 2 : 0;
}


/* The scanner device, if one is set, and the terminal for keys (and for
 * scans typed or wedged in) when there is one. */
static int open_inputs(struct inputs *ins, const char *device, cs_error *err)
{
	int ret;

	if (device) {
		if ((ret = scanner_open(device, &ins->in[ins->n], err)))
			return ret;
		ins->n++;
	}
	ret = scanner_open(NULL, &ins->in[ins->n], err);
	if (ret == 0)
		ins->keys[ins->n++] = true;
	/* A scanner device without a terminal: keys are Ctrl-C alone. */
	return device && ret == CS_E_UNREACHABLE ? 0 : ret;
}

/* The label's barcodes, for the station's label check. */
static int read_label(void *ud, const char *jpeg, char (*codes)[256], size_t max,
		      size_t *n, cs_error *err)
{
	barcode_result found[FINISH_CODES_MAX];
	int ret = barcode_read_file(ud, jpeg, found, max < FINISH_CODES_MAX ? max :
				    FINISH_CODES_MAX, n, err);

	for (size_t i = 0; ret == 0 && i < *n; i++)
		snprintf(codes[i], 256, "%s", found[i].text);
	return ret;
}

struct setup {
	cli c;
	barcode_reader *labels;
	specify_session *s;
	struct catalog_format *fmt;
	char *dir, *jpath;
	struct inputs ins;
	struct ui u;
};

/* Logs in and reads the catalog-number format; with Specify out of
 * reach, the format saved at the last start will do: shooting and naming
 * need nothing more, and the station checks and attaches once it is
 * back. */
static int open_specify(struct setup *x, cs_error *err)
{
	int ret = cli_session_open(&x->c, &x->s, err);

	if (ret == 0 && (ret = cli_catalog_format(&x->c, x->s, &x->fmt, err)) == 0) {
		const specify_info *info = specify_session_info(x->s);
		printf("copystand station: %s as %s (%s), collection %s, catalog numbers %s\n",
		       info->server, info->user, info->agent, info->collection,
		       catalog_format_pattern(x->fmt));
		return 0;
	}
	if (!cs_error_is_transient(ret))
		return ret;
	cs_error why = *err;
	if (cli_catalog_format(&x->c, NULL, &x->fmt, err)) {
		return cs_error_set(err, why.code, "%s\nThe station can start without "
				    "Specify only after one start with it (to learn the "
				    "catalog-number format).", why.msg);
	}
	time_t saved = (time_t)x->c.format_saved;
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&saved));
	printf("copystand station: OFFLINE: %s\n"
	       "Shooting and naming go on with the catalog numbers %s saved on %s;\n"
	       "numbers are checked and captures attached once Specify is back.\n",
	       why.msg, catalog_format_pattern(x->fmt), when);
	return 0;
}

/* Files a crash or a full disk left between download and journal: the
 * journal does not know them, so nothing would ever attach them. */
static void note_unjournaled(struct setup *x)
{
	char first[256];
	size_t n;
	cs_error err = { 0 };

	if (station_unjournaled(x->u.st, &n, first, sizeof first, &err))
		printf("could not compare the session folder with the journal: %s\n", err.msg);
	else if (n)
		printf("NOTE: %zu file%s in the session folder %s not in the journal (%s%s): "
		       "a crash or a full disk came between download and journal.  Check "
		       "and attach %s with: copystand upload %s\n", n, n > 1 ? "s" : "",
		       n > 1 ? "are" : "is", first, n > 1 ? ", …" : "", n > 1 ? "them" : "it",
		       x->dir);
}

/* The images that were in the watched folder already: offered, never
 * taken by themselves (which specimen each shows is not known). */
static void note_existing(struct setup *x)
{
	size_t n = watch_existing_count(x->u.watch);
	watch_file f;
	cs_error err = { 0 };

	if (!n)
		return;
	if (watch_existing_file(x->u.watch, 0, &f, &err))
		snprintf(f.path, sizeof f.path, "%s/…", x->u.watch_dir);
	printf("NOTE: %zu image%s %s in the watched folder before the start (%s%s): not "
	       "taken: which specimen each shows is not known here.  Name %s by catalog "
	       "number and run: copystand upload %s (one still being written then is taken "
	       "once it is whole)\n", n, n > 1 ? "s" : "",
	       n > 1 ? "were" : "was", strrchr(f.path, '/') + 1, n > 1 ? ", …" : "",
	       n > 1 ? "them" : "it", x->u.watch_dir);
}

/* --watch DIR: no camera here; a thread takes what the capture program
 * writes into DIR. */
static int start_watch(struct setup *x, cs_error *err)
{
	const cs_config *cfg = x->c.cfg;
	const char *keep = config_get(cfg, "watch-keep"), *mode = config_get(cfg, "watch-mode");
	watch_options wo = { .dir = config_get(cfg, "watch"), .mode = WATCH_AUTO };
	const char *why = "";
	int ret;

	if (keep && strcmp(keep, "copy") && strcmp(keep, "move"))
		return cs_error_set(err, CS_E_CONFIG, "the setting watch-keep ('watch-keep =' in "
				    "the config file, or --watch-keep) takes copy or move, not '%s'",
				    keep);
	if (mode && !strcmp(mode, "inotify"))
		wo.mode = WATCH_INOTIFY;
	else if (mode && !strcmp(mode, "poll"))
		wo.mode = WATCH_POLL;
	else if (mode && strcmp(mode, "auto"))
		return cs_error_set(err, CS_E_CONFIG, "the setting watch-mode ('watch-mode =' in "
				    "the config file, or --watch-mode) takes auto, inotify or poll, "
				    "not '%s'", mode);
	if ((ret = watch_open(&wo, &x->u.watch, err)))
		return ret;
	x->u.watch_dir = wo.dir;
	x->u.watch_move = keep && !strcmp(keep, "move");
	x->u.no_camera = true;
	printf("camera: none here; watching %s for the capture program's files (%s%s%s), "
	       "%s them into the session folder\n", wo.dir,
	       watch_method(x->u.watch, &why) == WATCH_POLL ? "polling" : "inotify",
	       why[0] ? ": " : "", why, x->u.watch_move ? "moving" : "copying");
	note_existing(x);
	if (pthread_create(&x->u.camera_thread, NULL, watch_main, &x->u) != 0)
		return cs_error_set(err, CS_E_NOMEM, "cannot start the watch thread");
	x->u.camera_started = true;
	return 0;
}

static int start(struct setup *x, cs_error *err)
{
	const cs_config *cfg = x->c.cfg;
	station_options so = { 0 };
	specify_login login;
	int ret;

	if ((ret = station_options_from_config(cfg, &so, &so.label, err)) ||
	    (so.label && (ret = barcode_reader_new(&x->labels, err))) ||
	    (ret = open_specify(x, err)) ||
	    (ret = cli_login(&x->c, &login, err)) ||
	    (ret = config_session_dir(cfg, &x->dir, err)) ||
	    !(x->jpath = journal_default_path(err)) ||
	    (ret = open_inputs(&x->ins, config_get(cfg, "scanner"), err)))
		return ret ? ret : CS_E_IO;
	printf("session folder %s\n", x->dir);
	so.journal_path = x->jpath;
	so.login = login;
	so.format = x->fmt;
	so.dir = x->dir;
	so.read_label = x->labels ? read_label : NULL;
	so.label_ud = x->labels;
	so.on_change = wake_ui;
	so.ud = &x->u;
	x->u.dir = x->dir;
	x->u.camopts = (camera_options){ .model = config_get(cfg, "camera"),
					 .port = config_get(cfg, "port") };
	x->u.delete_from_card = config_get_bool(cfg, "delete-from-card");
	if ((ret = station_open(&so, &x->u.st, err)))
		return ret;
	note_unjournaled(x);
	say_cards(&x->u, false);
	if (config_get(cfg, "watch"))
		return start_watch(x, err);
	/* Another program holds the camera (gphoto2 with the copystand hook):
	 * the station must not claim it. */
	if (x->u.camopts.port && !strcmp(x->u.camopts.port, "none")) {
		x->u.no_camera = true;
		printf("camera: none here; files come from another program (the gphoto2 "
		       "hook, a host plugin)\n");
		return 0;
	}
	if (pthread_create(&x->u.camera_thread, NULL, camera_main, &x->u) != 0)
		return cs_error_set(err, CS_E_NOMEM, "cannot start the camera thread");
	x->u.camera_started = true;
	return 0;
}

static void setup_free(struct setup *x)
{
	if (x->u.camera_started) {
		pthread_mutex_lock(&x->u.lock);
		x->u.quitting = true;
		pthread_mutex_unlock(&x->u.lock);
		pthread_join(x->u.camera_thread, NULL);
	}
	watch_free(x->u.watch);
	station_close(x->u.st);
	barcode_reader_free(x->labels);
	for (int i = 0; i < x->ins.n; i++)
		scanner_free(x->ins.in[i]);
	catalog_format_free(x->fmt);
	if (x->s) {
		cs_error err;
		specify_session_logout(x->s, &err);
		specify_session_free(x->s);
	}
	free(x->dir);
	free(x->jpath);
	cli_free(&x->c);
	pthread_mutex_destroy(&x->u.lock);
	close(x->u.wake[0]);
	close(x->u.wake[1]);
}

int cmd_station(int argc, char **argv)
{
	struct setup x = { 0 };
	cs_error err = { 0 };
	sigset_t block, old;
	int status = 1, r;

	cli_init(&x.c);
	pthread_mutex_init(&x.u.lock, NULL);
	x.u.tty = isatty(STDOUT_FILENO);
	x.u.shown.online = true;
	if ((r = parse_station(&x.c, argc, argv, &err)) != 0 || pipe2(x.u.wake, O_NONBLOCK | O_CLOEXEC)) {
		if (r < 0)
			fprintf(stderr, "copystand: %s\n", err.msg);
		fputs(station_usage, r == 1 ? stdout : stderr);
		x.u.wake[0] = x.u.wake[1] = -1;
		setup_free(&x);
		return r == 1 ? 0 : 2;
	}
	/* Threads started from here on leave SIGINT and SIGTERM to this one. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	r = cli_load(&x.c, &err) ? -1 : start(&x, &err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r == 0) {
		struct sigaction sa = { .sa_handler = on_signal };
		signal_pipe = x.u.wake[1];
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		say(&x.u, "ready — scan a specimen");
		status = run_input(&x.u, &x.ins);
		finish(&x.u, &x.ins);
		signal_pipe = -1;
	} else {
		status = cli_fail(&err);
	}
	setup_free(&x);
	return status;
}
