/* hardware/camera against ptpip-camera, the PTP/IP camera emulator, driven
 * by the real libgphoto2: shots fired from here and with the camera's own
 * button, RAW+JPEG pairs, deleting, and what goes wrong at copy stands
 * (busy, cable pulled mid-transfer, frozen, card full, camera gone and
 * back).  Each case has its own emulator on a free port; libgphoto2 keeps
 * its settings in the throw-away HOME.  SIGPIPE is left at its default on
 * purpose: the camera module must cope with cameras that hang up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "camera.h"
#include "harness.h"
#include "ptpip-client.h"
#include "sha256.h"
#include "tap.h"

#ifndef PTPIP_CAMERA_EXE
#error "PTPIP_CAMERA_EXE must name the built ptpip-camera program"
#endif

#define MODEL "PTP/IP Camera"

#define FOLDER "/store_00010001/DCIM/100COPYS"
#define DEFAULT_SIZE 204800

/* --- an emulator, a camera on it and a session folder ----------------- */

struct rig {
	ptpip_cam *cam;
	camera *c;
	char dir[512];
};

static bool rig_up(struct rig *r, const char *name, const char *const *args)
{
	camera_options o = { MODEL, NULL };
	cs_error err = { 0 };

	memset(r, 0, sizeof *r);
	snprintf(r->dir, sizeof r->dir, "%s/%s", harness_home(), name);
	mkdir(r->dir, 0700);
	if (!(r->cam = ptpip_cam_start(PTPIP_CAMERA_EXE, args))) {
		tap_ok(0, "%s: the emulator starts", name);
		return false;
	}
	o.port = ptpip_cam_port_path(r->cam);
	if (!tap_is_int(camera_open(&o, &r->c, &err), 0, "camera_open"))
		tap_diag("%s", err.msg);
	return r->c != NULL;
}

/* Its exit status is where ASan reports the emulator's leaks. */
static void rig_down(struct rig *r)
{
	camera_free(r->c);
	if (r->cam)
		tap_is_int(ptpip_cam_stop(r->cam), 0, "the emulator exits cleanly");
}

static char *control(struct rig *r, const char *cmd)
{
	return ptpip_cam_control(r->cam, "%s", cmd);
}

static bool control_is(struct rig *r, const char *cmd, const char *want)
{
	char *reply = control(r, cmd);
	bool same = reply && !strcmp(reply, want);

	if (!same)
		tap_diag("%s: got \"%s\", want \"%s\"", cmd, reply ? reply : "(nothing)", want);
	free(reply);
	return same;
}

static void control_ok(struct rig *r, const char *cmd)
{
	tap_ok(control_is(r, cmd, "OK"), "%s", cmd);
}

/* The handle the camera lists for name; -1 if it has no such file. */
static long handle_of(struct rig *r, const char *name)
{
	return ptpip_cam_listed(r->cam, name, NULL);
}

/* The local file holds the very bytes the camera has, and the capture's
 * size and SHA-256 are those of the file as it is on disk. */
static bool file_ok(struct rig *r, const camera_file *f)
{
	const char *name = strrchr(f->camera_path, '/');
	long handle = name ? handle_of(r, name + 1) : -1;
	char *reply = handle > 0 ? ptpip_cam_control(r->cam, "crc32 %ld", handle) : NULL;
	char want[16], sha[65] = "";
	long long size = -1;
	bool ok;

	snprintf(want, sizeof want, "OK %08lx", ptpip_crc_of_file(f->path));
	sha256_file(f->path, sha, &size, NULL);
	ok = reply && !strcmp(reply, want) && size == f->size && !strcmp(sha, f->sha256);
	if (!ok)
		tap_diag("%s: camera %s, local %s; size %lld/%lld; sha %s/%s", f->path,
			 reply ? reply : "(nothing)", want, size, f->size, sha, f->sha256);
	free(reply);
	return ok;
}

static char *local(const struct rig *r, const char *name)
{
	static char path[600];

	snprintf(path, sizeof path, "%s/%s", r->dir, name);
	return path;
}

/* Waits for one capture of n files and checks each against the camera. */
static bool capture_ok(struct rig *r, const char *stem, size_t n, camera_capture *cap)
{
	cs_error err = { 0 };
	int ret = camera_wait_capture(r->c, 10000, r->dir, stem, cap, &err);
	bool ok = ret == 0 && cap->nfiles == n;

	if (ret)
		tap_diag("camera_wait_capture: %s", err.msg);
	for (size_t i = 0; ok && i < cap->nfiles; i++)
		ok = file_ok(r, &cap->files[i]);
	return ok;
}

static bool has(const char *text, const char *part)
{
	bool found = strstr(text, part) != NULL;

	if (!found)
		tap_diag("\"%s\" does not say \"%s\"", text, part);
	return found;
}

/* --- the cases --------------------------------------------------------- */

static void test_open(void)
{
	ptpip_cam *cam;
	camera_options by_port = { NULL, NULL }, wrong = { "No Such Camera 3000", NULL };
	camera *c = NULL, *other = NULL;
	cs_error err = { 0 };
	char port[64];
	size_t n = 99;
	double t0;

	tap_is_int(camera_list(NULL, 0, &n, &err), 0, "camera_list");
	tap_diag("%zu camera(s) on this machine", n);
	if (n == 0) {
		tap_is_int(camera_open(NULL, &c, &err), CS_E_UNREACHABLE,
			   "no camera at all: CS_E_UNREACHABLE");
		tap_ok(has(err.msg, "no camera found"), "saying so: %s", err.msg);
		/* libgphoto2 leaks at each USB look: a station waiting for
		 * its camera looks again only when a USB device comes. */
		tap_is_int(camera_open(NULL, &c, &err), CS_E_UNREACHABLE, "asked again");
		tap_ok(has(err.msg, "no camera found") &&
		       has(err.msg, "looking again when one does"),
		       "not looked for again on the same USB devices: %s", err.msg);
	}
	if (!(cam = ptpip_cam_start(PTPIP_CAMERA_EXE, NULL)))
		return;
	by_port.port = wrong.port = ptpip_cam_port_path(cam);
	tap_is_int(camera_open(&wrong, &c, &err), CS_E_NOT_FOUND,
		   "a model libgphoto2 does not know: CS_E_NOT_FOUND");
	tap_ok(has(err.msg, "--list-cameras"), "with where to look: %s", err.msg);
	tap_is_int(camera_open(&by_port, &c, &err), 0,
		   "a network port alone: libgphoto2's generic PTP/IP camera");
	tap_is_str(c ? camera_model(c) : "", MODEL, "as that model");
	camera_free(c);
	c = NULL;
	by_port.model = MODEL;
	tap_is_int(camera_open(&by_port, &c, &err), 0, "model and port");
	tap_is_str(camera_model(c), MODEL, "camera_model");
	tap_is_str(camera_port(c), by_port.port, "camera_port");
	t0 = harness_now();
	tap_ok(camera_open(&by_port, &other, &err) < 0 && !other,
	       "a second program cannot have it meanwhile");
	tap_ok(has(err.msg, "no other program uses it") && harness_now() - t0 < 3,
	       "and is told at once (%.2f s): %s", harness_now() - t0, err.msg);
	camera_free(c);
	snprintf(port, sizeof port, "%s", by_port.port);
	tap_is_int(ptpip_cam_stop(cam), 0, "the emulator exits cleanly");
	by_port.port = port;
	t0 = harness_now();
	tap_is_int(camera_open(&by_port, &c, &err), CS_E_UNREACHABLE,
		   "nothing on the port: CS_E_UNREACHABLE");
	tap_ok(has(err.msg, "camera disconnected") && harness_now() - t0 < 3,
	       "camera disconnected, at once (%.2f s): %s", harness_now() - t0, err.msg);
}

static void test_trigger(void)
{
	struct rig r;
	camera_capture cap;
	const camera_file *f = &cap.files[0];
	cs_error err = { 0 };

	if (rig_up(&r, "trigger", NULL)) {
		tap_is_int(camera_trigger(r.c, &err), 0, "camera_trigger");
		tap_ok(capture_ok(&r, "000000123", 1, &cap), "one capture, the camera's bytes");
		tap_is_str(f->path, local(&r, "000000123.jpg"), "named from the stem, .jpg");
		tap_is_str(f->camera_path, FOLDER "/IMG_0001.JPG", "from IMG_0001.JPG");
		tap_is_int(f->size, DEFAULT_SIZE, "200 KiB");
		tap_is_str(f->mimetype, "image/jpeg", "image/jpeg");
		tap_ok(harness_dir_is(r.dir, "000000123.jpg"), "nothing else in the folder");
		tap_ok(control_is(&r, "deleted", "OK") && handle_of(&r, "IMG_0001.JPG") > 0,
		       "the card keeps it until asked");
	}
	rig_down(&r);
}

static void test_press(void)
{
	struct rig r;
	camera_capture cap;

	if (rig_up(&r, "press", NULL)) {
		tap_ok(control_is(&r, "press", "OK 3"), "the camera's own shutter button");
		tap_ok(capture_ok(&r, NULL, 1, &cap), "is caught and downloaded");
		tap_is_str(cap.files[0].path, local(&r, "IMG_0001.JPG"),
			   "under the camera's name when no stem is given");
	}
	rig_down(&r);
}

static void test_raw_jpeg(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };

	if (rig_up(&r, "raw", NULL)) {
		tap_ok(control_is(&r, "press raw+jpeg 300000", "OK 3 4"), "a RAW+JPEG press");
		tap_ok(capture_ok(&r, "000000007", 2, &cap), "is one capture of two files");
		tap_is_str(cap.files[0].path, local(&r, "000000007.cr2"), "the RAW, .cr2");
		tap_is_str(cap.files[0].mimetype, "image/x-canon-cr2", "image/x-canon-cr2");
		tap_is_str(cap.files[1].path, local(&r, "000000007.jpg"), "the JPEG, .jpg");
		control_ok(&r, "payload raw+jpeg");
		tap_is_int(camera_trigger(r.c, &err), 0, "RAW+JPEG fired from here");
		tap_ok(capture_ok(&r, "000000007_2", 2, &cap), "is one capture too");
		tap_ok(harness_dir_is(r.dir, "000000007.cr2 000000007.jpg 000000007_2.cr2 000000007_2.jpg"),
		       "four files, two stems");
	}
	rig_down(&r);
}

static void test_series(void)
{
	static const char *const stems[] = { "a1", "a2", "a3", "a4", "a5" };
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	bool ok = true;

	if (!rig_up(&r, "series", NULL))
		goto out;
	/* Three presses before anyone waits: three captures, in order. */
	control_is(&r, "press", "OK 3");
	control_is(&r, "press raw+jpeg", "OK 4 5");
	tap_is_int(camera_trigger(r.c, &err), 0, "fired while two presses wait");
	tap_ok(capture_ok(&r, stems[0], 1, &cap) &&
	       !strcmp(cap.files[0].camera_path, FOLDER "/IMG_0001.JPG"), "first press first");
	tap_ok(capture_ok(&r, stems[1], 2, &cap) &&
	       !strcmp(cap.files[1].camera_path, FOLDER "/IMG_0002.JPG"), "then the pair");
	tap_ok(capture_ok(&r, stems[2], 1, &cap) &&
	       !strcmp(cap.files[0].camera_path, FOLDER "/IMG_0003.JPG"), "then the fired one");
	for (int i = 3; i < 5; i++)
		ok = ok && camera_trigger(r.c, &err) == 0 && capture_ok(&r, stems[i], 1, &cap);
	tap_ok(ok, "fire, wait, fire, wait");
	tap_ok(harness_dir_is(r.dir, "a1.jpg a2.cr2 a2.jpg a3.jpg a4.jpg a5.jpg"), "six files");
out:
	rig_down(&r);
}

static void test_delete(void)
{
	struct rig r;
	camera_capture cap, pair;
	cs_error err = { 0 };

	if (!rig_up(&r, "delete", NULL))
		goto out;
	camera_trigger(r.c, &err);
	if (capture_ok(&r, "d1", 1, &cap)) {
		tap_is_int(camera_delete(r.c, &cap, &err), 0, "camera_delete");
		tap_ok(control_is(&r, "deleted", "OK IMG_0001.JPG"), "the camera deleted it");
		tap_ok(handle_of(&r, "IMG_0001.JPG") < 0, "it is off the card");
		tap_ok(harness_dir_is(r.dir, "d1.jpg"), "and on the disk");
	}
	camera_trigger(r.c, &err);
	if (capture_ok(&r, "d2", 1, &cap)) {
		unlink(cap.files[0].path);
		tap_is_int(camera_delete(r.c, &cap, &err), CS_E_IO,
			   "no local copy: not deleted, CS_E_IO");
		tap_ok(has(err.msg, "not deleted from the camera"), "%s", err.msg);
		tap_ok(truncate(local(&r, "d1.jpg"), 100) == 0 &&
		       rename(local(&r, "d1.jpg"), cap.files[0].path) == 0,
		       "another file in its place");
		tap_is_int(camera_delete(r.c, &cap, &err), CS_E_IO,
			   "a local copy of another size: not deleted either");
		tap_ok(control_is(&r, "deleted", "OK IMG_0001.JPG") &&
		       handle_of(&r, "IMG_0002.JPG") > 0, "the card still has it");
	}
	control_is(&r, "press raw+jpeg", "OK 5 6");
	if (capture_ok(&r, "d3", 2, &pair)) {
		/* libgphoto2 says OK to a refused delete: the card is looked at. */
		control_ok(&r, "fault busy 1");
		tap_is_int(camera_delete(r.c, &pair, &err), 0, "a busy camera: deleted on retry");
		tap_ok(control_is(&r, "deleted", "OK IMG_0001.JPG IMG_0003.CR2 IMG_0003.JPG"),
		       "both files of the pair");
	}
	camera_trigger(r.c, &err);
	if (capture_ok(&r, "d4", 1, &cap)) {
		control_ok(&r, "fault busy 1000000");
		tap_is_int(camera_delete(r.c, &cap, &err), CS_E_ACCESS,
			   "a camera that never deletes: CS_E_ACCESS");
		tap_ok(has(err.msg, "did not delete IMG_0004.JPG"), "%s", err.msg);
		control_ok(&r, "fault clear");
		tap_ok(handle_of(&r, "IMG_0004.JPG") > 0 && harness_dir_is(r.dir, "d2.jpg d3.cr2 d3.jpg d4.jpg"),
		       "the file is on the card and on the disk");
	}
out:
	rig_down(&r);
}

static void test_busy(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	double t0;

	if (!rig_up(&r, "busy", NULL))
		goto out;
	control_ok(&r, "fault busy 3");
	tap_is_int(camera_trigger(r.c, &err), 0, "a busy camera is asked again");
	tap_ok(capture_ok(&r, "b1", 1, &cap), "and the shot comes");
	control_ok(&r, "fault busy 1000000");
	t0 = harness_now();
	tap_is_int(camera_trigger(r.c, &err), CS_E_NETWORK, "busy for good: CS_E_NETWORK");
	tap_ok(has(err.msg, "stayed busy") && harness_now() - t0 < 5, "after a few seconds (%.1f s): %s",
	       harness_now() - t0, err.msg);
	control_ok(&r, "fault clear");
	tap_is_int(camera_trigger(r.c, &err), 0, "when it is free again, it fires");
	tap_ok(capture_ok(&r, "b2", 1, &cap), "and the shot comes");
out:
	rig_down(&r);
}

static void test_disconnect(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	char *stats;
	double t0;

	if (!rig_up(&r, "disconnect", NULL))
		goto out;
	control_ok(&r, "payload jpeg 3000000");
	camera_trigger(r.c, &err);
	control_ok(&r, "fault disconnect-after 600000");
	t0 = harness_now();
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, "c1", &cap, &err), CS_E_UNREACHABLE,
		   "cable pulled mid-transfer: CS_E_UNREACHABLE");
	tap_ok(has(err.msg, "camera disconnected") && has(err.msg, "reconnects"),
	       "saying so (%.2f s): %s", harness_now() - t0, err.msg);
	tap_ok(cap.nfiles == 0 && harness_dir_is(r.dir, ""), "no file, not even a partial one");
	tap_ok(capture_ok(&r, "c1", 1, &cap), "the next wait reconnects and brings the shot");
	tap_is_int(cap.files[0].size, 3000000, "whole");
	stats = control(&r, "stats");
	tap_ok(stats && !strncmp(stats, "OK sessions=2 ", 14), "in a second session: %s",
	       stats ? stats : "");
	free(stats);
out:
	rig_down(&r);
}

static void test_freeze(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	double t0;

	if (!rig_up(&r, "freeze", NULL))
		goto out;
	control_ok(&r, "fault freeze");
	t0 = harness_now();
	tap_is_int(camera_trigger(r.c, &err), CS_E_NETWORK, "a frozen camera: CS_E_NETWORK");
	tap_ok(has(err.msg, "stopped answering") && harness_now() - t0 < 4,
	       "within a few seconds (%.2f s): %s", harness_now() - t0, err.msg);
	control_ok(&r, "fault thaw");
	tap_is_int(camera_trigger(r.c, &err), 0, "once it is back, a new session fires it");
	tap_ok(capture_ok(&r, "f1", 1, &cap), "and the shot comes");
out:
	rig_down(&r);
}

static void test_card_full(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };

	if (!rig_up(&r, "full", NULL))
		goto out;
	control_ok(&r, "fault card-full");
	tap_is_int(camera_trigger(r.c, &err), CS_E_IO, "a full card: CS_E_IO");
	tap_ok(has(err.msg, "card is full"), "%s", err.msg);
	tap_is_int(camera_wait_capture(r.c, 2000, r.dir, "x", &cap, &err), CS_E_IO,
		   "the camera's StoreFull event says it too");
	tap_ok(has(err.msg, "card is full"), "%s", err.msg);
	tap_is_int(camera_trigger(r.c, &err), 0, "with room again, it fires");
	tap_ok(capture_ok(&r, "x", 1, &cap), "and the shot comes");
out:
	rig_down(&r);
}

/* The disk fills up during a download: the shot stays on the camera, no
 * part file is left, and it comes whole once there is room again.  A file
 * size limit stands in for the full disk (EFBIG instead of ENOSPC: the
 * same failed write()). */
static void test_disk_full(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	struct rlimit was, small = { 100000, 0 };
	void (*xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
	int ret;

	if (!rig_up(&r, "diskfull", NULL) || getrlimit(RLIMIT_FSIZE, &was) < 0)
		goto out;
	control_ok(&r, "payload jpeg 300000");
	small.rlim_max = was.rlim_max;
	tap_is_int(camera_trigger(r.c, &err), 0, "the shutter fires");
	setrlimit(RLIMIT_FSIZE, &small);
	ret = camera_wait_capture(r.c, 10000, r.dir, "full", &cap, &err);
	setrlimit(RLIMIT_FSIZE, &was);
	tap_is_int(ret, CS_E_IO, "the disk fills: CS_E_IO");
	tap_ok(has(err.msg, "free space on the disk") && has(err.msg, "stays on the camera"),
	       "saying what to do: %s", err.msg);
	tap_ok(harness_dir_is(r.dir, ""), "no part file is left");
	tap_ok(capture_ok(&r, "full", 1, &cap) && cap.files[0].size == 300000,
	       "with room again, the same shot comes whole");
out:
	signal(SIGXFSZ, xfsz);
	rig_down(&r);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void test_idle(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	double t0, cpu0, wall, cpu;

	if (!rig_up(&r, "idle", NULL))
		goto out;
	t0 = harness_now();
	cpu0 = cpu_seconds();
	tap_is_int(camera_wait_capture(r.c, 2000, r.dir, "i", &cap, &err), CS_E_TIMEOUT,
		   "nothing happens: CS_E_TIMEOUT");
	wall = harness_now() - t0;
	cpu = cpu_seconds() - cpu0;
	tap_ok(wall >= 2.0 && wall < 2.5, "after the 2 s asked (%.3f s)", wall);
	tap_ok(cpu < 0.2, "using little CPU (%.3f s)", cpu);
	t0 = harness_now();
	tap_is_int(camera_wait_capture(r.c, 0, r.dir, "i", &cap, &err), CS_E_TIMEOUT,
		   "timeout 0: one look");
	tap_ok(harness_now() - t0 < 0.2, "that returns at once (%.3f s)", harness_now() - t0);
	tap_ok(harness_dir_is(r.dir, ""), "and leaves nothing behind");
out:
	rig_down(&r);
}

static long vm_hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void test_large(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	long hwm0 = vm_hwm_kb(), grown;
	double t0, secs;
	int ret;

	if (!rig_up(&r, "large", NULL))
		goto out;
	control_ok(&r, "payload jpeg 300000000");
	camera_trigger(r.c, &err);
	t0 = harness_now();
	ret = camera_wait_capture(r.c, 10000, r.dir, "big", &cap, &err);
	secs = harness_now() - t0;
	grown = vm_hwm_kb() - hwm0;
	if (!tap_is_int(ret, 0, "a 300 MB shot"))
		tap_diag("%s", err.msg);
	tap_diag("downloaded, hashed and fsynced in %.2f s (%.0f MB/s)", secs, 300 / secs);
	tap_ok(ret == 0 && cap.files[0].size == 300000000 && file_ok(&r, &cap.files[0]),
	       "every byte");
	tap_ok(grown < 64 * 1024, "streamed: peak memory grew by %ld kB", grown);
out:
	rig_down(&r);
}

static volatile sig_atomic_t ticks;

static void on_tick(int sig)
{
	(void)sig;
	ticks++;
}

/* libgphoto2 breaks the session when a signal interrupts its select(). */
static void test_signals(void)
{
	struct itimerval every_ms = { { 0, 1000 }, { 0, 1000 } }, off = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa = { .sa_handler = on_tick }, old;
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	int ret;

	if (!rig_up(&r, "signals", NULL))
		goto out;
	control_ok(&r, "payload raw+jpeg 20000000");
	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &every_ms, NULL);
	ret = camera_trigger(r.c, &err);
	if (ret == 0)
		ret = camera_wait_capture(r.c, 10000, r.dir, "s", &cap, &err);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	if (!tap_is_int(ret, 0, "a timer firing every millisecond does not break a capture"))
		tap_diag("%s", err.msg);
	tap_ok(ret == 0 && cap.nfiles == 2 && file_ok(&r, &cap.files[0]) &&
	       file_ok(&r, &cap.files[1]), "of 40 MB, whole");
	tap_ok(ticks > 0, "and the signals were delivered (%d)", (int)ticks);
out:
	rig_down(&r);
}

/* libgphoto2 closes fd 0 when it lets a PTP/IP camera go. */
static void test_stdin(void)
{
	struct rig r;
	struct stat want, got;
	int fds[2], saved = dup(STDIN_FILENO);

	if (pipe(fds) < 0 || dup2(fds[0], STDIN_FILENO) < 0) {
		tap_ok(0, "a pipe on stdin");
		return;
	}
	close(fds[0]);
	fstat(STDIN_FILENO, &want);
	rig_up(&r, "stdin", NULL);
	rig_down(&r);
	tap_ok(fstat(STDIN_FILENO, &got) == 0 && got.st_ino == want.st_ino &&
	       got.st_dev == want.st_dev, "stdin is still the pipe after the camera is gone");
	close(fds[1]);
	if (saved >= 0) {
		dup2(saved, STDIN_FILENO);
		close(saved);
	}
}

static void test_names(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	FILE *f;

	if (!rig_up(&r, "names", NULL))
		goto out;
	if ((f = fopen(local(&r, "000000001.jpg"), "w"))) {
		fputs("an earlier shot\n", f);
		fclose(f);
	}
	control_is(&r, "press", "OK 3");
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, "000000001", &cap, &err), CS_E_CONFLICT,
		   "a name already taken: CS_E_CONFLICT");
	tap_ok(has(err.msg, "never overwritten"), "%s", err.msg);
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, "", &cap, &err), CS_E_INVALID,
		   "an empty stem: CS_E_INVALID");
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, "../x", &cap, &err), CS_E_INVALID,
		   "a stem with a slash: CS_E_INVALID");
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, ".x", &cap, &err), CS_E_INVALID,
		   "a hidden name: CS_E_INVALID");
	tap_is_int(camera_wait_capture(r.c, -1, r.dir, "x", &cap, &err), CS_E_INVALID,
		   "a negative timeout: CS_E_INVALID");
	tap_is_int(camera_wait_capture(r.c, 5000, local(&r, "nowhere"), "y", &cap, &err), CS_E_IO,
		   "a folder that is not there: CS_E_IO");
	tap_ok(capture_ok(&r, "000000001_2", 1, &cap), "the shot waited for a good name");
	tap_ok(harness_dir_is(r.dir, "000000001.jpg 000000001_2.jpg"), "next to the earlier one");
	tap_is_int(camera_wait_capture(r.c, 100, r.dir, "z", &cap, &err), CS_E_TIMEOUT,
		   "and came only once");
	/* Erased with the camera's menu while it waited for a name. */
	if ((f = fopen(local(&r, "e.jpg"), "w")))
		fclose(f);
	control_is(&r, "press", "OK 4");
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, "e", &cap, &err), CS_E_CONFLICT,
		   "a shot waits for a name");
	control_ok(&r, "erase 4");
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, "e2", &cap, &err), CS_E_NOT_FOUND,
		   "and is erased on the camera meanwhile: CS_E_NOT_FOUND");
	tap_ok(has(err.msg, "erased on the camera"), "%s", err.msg);
	tap_is_int(camera_wait_capture(r.c, 100, r.dir, "e2", &cap, &err), CS_E_TIMEOUT,
		   "it is not asked for again");
	tap_ok(harness_dir_is(r.dir, "000000001.jpg 000000001_2.jpg e.jpg"), "nothing of it in the folder");
out:
	rig_down(&r);
}

/* name_press: the stem current when the camera announced the press. */
struct namer {
	const char *const *stems; /* the names given, one per call */
	int calls;
	char taken[64];           /* the last name said to be taken */
};

static void name_now(void *ud, const char *taken, char *stem, size_t size)
{
	struct namer *n = ud;
	snprintf(n->taken, sizeof n->taken, "%s", taken ? taken : "");
	snprintf(stem, size, "%s", n->stems[n->calls++]);
}

static void test_named_at_shutter(void)
{
	static const char *const stems[] = { "000000005", "000000006", "000000006_2", "x" };
	struct namer n = { .stems = stems };
	camera_options o = { MODEL, NULL, name_now, &n };
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	FILE *f;

	memset(&r, 0, sizeof r);
	snprintf(r.dir, sizeof r.dir, "%s/named", harness_home());
	mkdir(r.dir, 0700);
	if (!(r.cam = ptpip_cam_start(PTPIP_CAMERA_EXE, NULL)))
		return;
	o.port = ptpip_cam_port_path(r.cam);
	if (!tap_is_int(camera_open(&o, &r.c, &err), 0, "camera_open with a namer"))
		goto out;
	/* Announced while waiting, named at once: a later name (a scan right
	 * after the shutter) is not asked for when it downloads. */
	tap_is_int(camera_wait_capture(r.c, 300, r.dir, NULL, &cap, &err), CS_E_TIMEOUT,
		   "nothing yet");
	control_is(&r, "press raw+jpeg 100000", "OK 3 4");
	while (n.calls == 0 &&
	       camera_wait_capture(r.c, 50, r.dir, NULL, &cap, &err) == CS_E_TIMEOUT)
		;
	if (cap.nfiles == 0)
		tap_is_int(camera_wait_capture(r.c, 5000, r.dir, NULL, &cap, &err), 0,
			   "the press comes");
	tap_is_int(n.calls, 1, "one name for the two files of a press");
	tap_is_str(cap.stem, "000000005", "the name given at the shutter");
	tap_ok(harness_dir_is(r.dir, "000000005.cr2 000000005.jpg"), "both files under it");
	/* A name taken meanwhile: the press is named again, its two files
	 * under one new stem. */
	if ((f = fopen(local(&r, "000000006.jpg"), "w")))
		fclose(f);
	control_is(&r, "press raw+jpeg 100000", "OK 5 6");
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, NULL, &cap, &err), CS_E_CONFLICT,
		   "a name already taken: CS_E_CONFLICT");
	tap_is_int(camera_wait_capture(r.c, 5000, r.dir, NULL, &cap, &err), 0,
		   "the next try");
	tap_is_str(cap.stem, "000000006_2", "uses the name asked for anew");
	tap_is_str(n.taken, "000000006", "asked anew for the same press, told which was taken");
	tap_is_int(n.calls, 3, "asked once per press and once per conflict");
	tap_ok(harness_dir_is(r.dir, "000000005.cr2 000000005.jpg 000000006.jpg "
			      "000000006_2.cr2 000000006_2.jpg"), "both files of the press under it");
out:
	rig_down(&r);
}

/* The camera goes away (switched off, cable out) and comes back. */
static void test_gone_and_back(void)
{
	struct rig r;
	camera_capture cap;
	cs_error err = { 0 };
	char port[16];
	const char *args[] = { "--port", port, NULL };
	double t0;
	int ret;

	if (!rig_up(&r, "gone", NULL))
		goto out;
	snprintf(port, sizeof port, "%s", strrchr(ptpip_cam_port_path(r.cam), ':') + 1);
	tap_is_int(ptpip_cam_stop(r.cam), 0, "the camera goes away");
	r.cam = NULL;
	t0 = harness_now();
	ret = camera_wait_capture(r.c, 1500, r.dir, "g", &cap, &err);
	tap_ok(ret == CS_E_UNREACHABLE, "waiting says CS_E_UNREACHABLE (%.2f s): %s",
	       harness_now() - t0, err.msg);
	t0 = harness_now();
	ret = camera_wait_capture(r.c, 1500, r.dir, "g", &cap, &err);
	tap_ok(ret == CS_E_UNREACHABLE && has(err.msg, "camera disconnected"),
	       "while it is away, after the timeout (%.2f s): %s", harness_now() - t0, err.msg);
	tap_ok(harness_now() - t0 >= 1.4, "without returning early");
	if (!(r.cam = ptpip_cam_start(PTPIP_CAMERA_EXE, args))) {
		tap_ok(0, "the camera comes back on port %s", port);
		goto out;
	}
	/* A press while there is no session makes no event: wait until the
	 * camera is reconnected (an idle wait times out) before pressing. */
	t0 = harness_now();
	while ((ret = camera_wait_capture(r.c, 500, r.dir, "g", &cap, &err)) != CS_E_TIMEOUT &&
	       harness_now() - t0 < 20)
		;
	tap_is_int(ret, CS_E_TIMEOUT, "it is reconnected");
	tap_diag("after %.2f s", harness_now() - t0);
	control_is(&r, "press", "OK 3");
	tap_ok(capture_ok(&r, "g", 1, &cap), "and its shots come");
out:
	rig_down(&r);
}

int main(void)
{
	harness_home();
	test_open();
	test_trigger();
	test_press();
	test_raw_jpeg();
	test_series();
	test_delete();
	test_busy();
	test_disconnect();
	test_freeze();
	test_card_full();
	test_disk_full();
	test_idle();
	test_large();
	test_signals();
	test_stdin();
	test_names();
	test_named_at_shutter();
	test_gone_and_back();
	harness_cleanup();
	return tap_done();
}
