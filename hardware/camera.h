/* copystand — the camera on the copy stand, tethered through libgphoto2.
 *
 * Finds and opens the camera, fires it from software, and brings home
 * every shot — fired from here or with the camera's own shutter button —
 * as files fsynced into a folder, hashed while they stream.  The files of
 * one shutter press (RAW+JPEG) come back as one capture.  Knows nothing of
 * Specify or catalog numbers: the caller names the files.
 *
 * Errors say what to do at the stand.  The codes:
 *   CS_E_TIMEOUT      camera_wait_capture: no shot came in time (normal)
 *   CS_E_UNREACHABLE  no camera, or it went away (cable, power): calls
 *                     reconnect by themselves once it is back
 *   CS_E_NETWORK      the camera stopped answering (frozen: the next call
 *                     reopens the session) or stayed busy for seconds
 *   CS_E_ACCESS       another program holds the camera; or it would not
 *                     delete a file (locked card)
 *   CS_E_IO           the card is full, or the local disk failed
 *   CS_E_CONFLICT     a file of the name asked for is already in the folder
 *   CS_E_PROTOCOL     the camera answered with an error (PTP General
 *                     Error: it cannot shoot now); the next call opens a
 *                     new session
 *   CS_E_CONFIG       several cameras and none chosen
 *   CS_E_NOT_FOUND    a camera model libgphoto2 does not know; a shot
 *                     erased on the camera before it came
 *   CS_E_INVALID      bad arguments; the camera cannot do that
 *
 * A camera belongs to one thread.  While a call talks to the camera that
 * thread holds back asynchronous signals (libgphoto2 turns an interrupted
 * wait into a broken session) and swallows the SIGPIPE of a camera that
 * hung up; they are delivered when the call returns or pauses.  Run the
 * camera in its own thread to keep the rest of the program responsive.
 * libgphoto2 keeps settings under $HOME/.gphoto; a throw-away HOME is fine.
 */
#ifndef COPYSTAND_CAMERA_H
#define COPYSTAND_CAMERA_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct camera camera;

/* libgphoto2 spells models and ports in at most 128 bytes. */
#define CAMERA_NAME_MAX 128

typedef struct camera_info {
	char model[CAMERA_NAME_MAX];    /* "Canon EOS 5D Mark III" */
	char port[CAMERA_NAME_MAX];     /* "usb:001,004" */
} camera_info;

/* The cameras libgphoto2 finds (USB and the like): the first max of them
 * into list (NULL if max is 0), how many there are into *count.  Network
 * (PTP/IP) cameras are never found: open them by port. */
int camera_list(camera_info *list, size_t max, size_t *count, cs_error *err);

typedef struct camera_options {
	/* As libgphoto2 names it; NULL: whatever camera is found (at port),
	 * or "PTP/IP Camera" for a ptpip: port. */
	const char *model;
	/* "usb:001,004", or "ptpip:192.168.1.20:15740:15740" (give the event
	 * port too, or events go to 15740); NULL: where the camera is found. */
	const char *port;
	/* Names shots as they are announced: writes the stem (see
	 * camera_wait_capture) for the press just announced into stem (size
	 * bytes); taken is NULL then.  When a name turns out to be taken in
	 * the folder, called again for the same press with taken the stem
	 * that was.  Called on the camera's thread, within its calls.  Used
	 * when camera_wait_capture gets no stem. */
	void (*name_press)(void *ud, const char *taken, char *stem, size_t size);
	void *name_press_ud;
	/* Told of every file the camera announces (path on its card,
	 * "/store_00010001/DCIM/100CANON/IMG_0001.JPG", and the stem its
	 * press got), and again with lost true of one that can no longer
	 * come (erased on the camera before it was downloaded): a shot can
	 * be on record before its download.  Camera's thread. */
	void (*on_card)(void *ud, const char *path, const char *stem, bool lost);
	void *on_card_ud;
} camera_options;

/* Opens the camera o names (o may be NULL): the one at o->port, else the
 * only one of o->model found, else the only camera found at all.  Later
 * reconnects look for the same model, at o->port if it was given, else
 * wherever it is found (a USB camera plugged in again has a new port). */
int camera_open(const camera_options *o, camera **out, cs_error *err);

/* The model and port of the session, as libgphoto2 names them. */
const char *camera_model(const camera *c);
const char *camera_port(const camera *c);

/* How many sessions have opened: grows at each reconnect, which any call
 * may make by itself, so a caller can say the camera is back. */
unsigned camera_sessions(const camera *c);

/* Fires the shutter and returns; the shot comes through
 * camera_wait_capture().  A busy camera is tried again for a few seconds. */
int camera_trigger(camera *c, cs_error *err);

/* Files of one shutter press: RAW+JPEG is two, some cameras add more. */
#define CAMERA_CAPTURE_MAX_FILES 4
/* libgphoto2 folders (1024 bytes) and names (128) joined by a slash. */
#define CAMERA_PATH_MAX 1160

typedef struct camera_file {
	char path[PATH_MAX];            /* the local copy, DIR/NAME */
	char camera_path[CAMERA_PATH_MAX]; /* "/store_00010001/DCIM/100CANON/IMG_0001.CR2" */
	long long size;
	char sha256[65];                /* lower-case hex */
	char mimetype[64];              /* "image/jpeg", "image/x-canon-cr2" */
} camera_file;

typedef struct camera_capture {
	char stem[256];                 /* the stem the files were named with, or "" */
	size_t nfiles;
	camera_file files[CAMERA_CAPTURE_MAX_FILES];
} camera_capture;

/* Waits up to timeout_ms (0: just look) for the next shot, fired from
 * here or on the camera, and downloads every file of that shutter press
 * into the folder dir.
 *
 * Names: stem plus the camera file's extension in lower case, so
 * stem "000000123" gives 000000123.jpg and 000000123.cr2 (build stems with
 * catalog_name_build(id, index, NULL, ...)); stem NULL takes the stem
 * camera_options.name_press gave when the press was announced, or keeps
 * the camera's names (IMG_0001.JPG) without one.  Nothing is ever
 * overwritten: a name already in dir is CS_E_CONFLICT before anything is
 * downloaded (and name_press is asked again for the next try).
 *
 * Files of one press are those with the same name but for the extension,
 * in the same camera folder, announced one after the other; the press ends
 * when the camera says so (CaptureComplete), another press begins,
 * CAMERA_CAPTURE_MAX_FILES are in, or nothing more came for a second.
 *
 * Each file streams to ".NAME.part" in dir, hashed on the way; its size is
 * checked against the camera's, it is fsynced and renamed to NAME; then dir
 * is fsynced.  Only then does the call return 0 with out filled.  On any
 * failure no file of the press is left in dir (a crash may leave a .part,
 * which the next try of the same name replaces) and the press stays
 * queued: the next call, after a reconnect if need be, tries it again.
 * Waiting keeps timeout_ms whatever the camera does, without spinning; a
 * download, or reconnecting to a camera that is away, may run past it. */
int camera_wait_capture(camera *c, int timeout_ms, const char *dir, const char *stem,
			camera_capture *out, cs_error *err);

/* Queues a file already on the card (path as on_card gave it, from an
 * earlier session) as a press of its own: camera_wait_capture() brings it
 * with the card's name (IMG_0001.JPG) when given no stem, or reports it
 * lost (on_card) if the card no longer has it. */
int camera_fetch(camera *c, const char *path, cs_error *err);

/* Reads the camera's clock (the PTP DateTime property): its date and time,
 * whole seconds counted as if UTC, into *camera_time, read at a moment
 * between *before and *after on this computer's clock (unix seconds).
 * libgphoto2 keeps a property's value for 2 s: a read sooner than
 * CAMERA_CLOCK_SPACING_S after the last one, or after the session
 * opened, is CS_E_TIMEOUT (ask again later), never a stale value.
 * CS_E_INVALID: the camera has no clock to read. */
#define CAMERA_CLOCK_SPACING_S 2.5
int camera_read_clock(camera *c, double *before, double *after, double *camera_time,
		      cs_error *err);

/* Deletes the files of a capture from the card, each only if its local
 * copy still has the size downloaded and fsyncs (file and folder) again;
 * then checks the card no longer lists them (libgphoto2 reports success
 * even when the camera refused).  cap is as camera_wait_capture() filled
 * it; if the caller renamed the local files, it updates path. */
int camera_delete(camera *c, const camera_capture *cap, cs_error *err);

/* Ends the session and frees c (NULL is fine). */
void camera_free(camera *c);

#endif
