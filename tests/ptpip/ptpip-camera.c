/* ptpip-camera: a PTP/IP camera for tests and the demo, driven by the real
 * libgphoto2 ptp2 camlib through the port "ptpip:127.0.0.1:P:P" (model
 * "PTP/IP Camera") and steered by tests through a line protocol on a Unix
 * socket.  The protocol as libgphoto2 2.5.30 speaks it, quirks included, is
 * in /work/shared/ptpip.md; usage in README.md.
 *
 * One thread, one poll() loop, non-blocking sockets everywhere: a download
 * of hundreds of MB is produced a chunk at a time as the socket drains, so
 * control commands, events and faults keep working during it.  The card and
 * the image bytes are in card.c, their Exif in exif-segment.c, buffers and
 * socket I/O in buf.c.
 *
 * Like a real body it takes its time: a shot is announced (and listed) a
 * set delay after the press, and everything it dates (ObjectInfo, Exif,
 * the DateTime property) is on its own clock, which may be off and drift. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "buf.h"
#include "card.h"
#include "exif-segment.h"

#define ARRAY_SIZE(a) (sizeof (a) / sizeof (a)[0])

/* PTP/IP packet types (ptpip.md §2). */
enum {
	PKT_INIT_COMMAND_REQUEST = 1,
	PKT_INIT_COMMAND_ACK = 2,
	PKT_INIT_EVENT_REQUEST = 3,
	PKT_INIT_EVENT_ACK = 4,
	PKT_INIT_FAIL = 5,
	PKT_OPERATION_REQUEST = 6,
	PKT_OPERATION_RESPONSE = 7,
	PKT_EVENT = 8,
	PKT_START_DATA = 9,
	PKT_DATA = 10,
	PKT_END_DATA = 12,
};

/* PTP response codes. */
enum {
	RC_PENDING = 0,         /* ours: the response follows a streamed data phase */
	RC_OK = 0x2001,
	RC_GENERAL_ERROR = 0x2002,
	RC_SESSION_NOT_OPEN = 0x2003,
	RC_OPERATION_NOT_SUPPORTED = 0x2005,
	RC_INVALID_STORAGE_ID = 0x2008,
	RC_INVALID_OBJECT_HANDLE = 0x2009,
	RC_DEVICE_PROP_NOT_SUPPORTED = 0x200a,
	RC_STORE_FULL = 0x200c,
	RC_ACCESS_DENIED = 0x200f,
	RC_STORE_NOT_AVAILABLE = 0x2013,
	RC_DEVICE_BUSY = 0x2019,
	RC_INVALID_PARENT_OBJECT = 0x201a,
	RC_INVALID_DEVICE_PROP_VALUE = 0x201c,
	RC_INVALID_PARAMETER = 0x201d,
	RC_SESSION_ALREADY_OPEN = 0x201e,
};

/* PTP event codes. */
enum {
	EV_OBJECT_ADDED = 0x4002,
	EV_OBJECT_REMOVED = 0x4003,
	EV_STORE_FULL = 0x400a,
	EV_CAPTURE_COMPLETE = 0x400d,
};

/* The DateTime device property, a PTP string. */
#define DPC_DATE_TIME      0x5011u
#define DTC_STR            0xffffu

#define PTPIP_VERSION      0x00010000u
#define DATA_FROM_HOST     2u            /* an Operation Request's data phase */
#define INIT_FAIL_BUSY     2u
#define NO_TRANSACTION     0xffffffffu
#define ALL                0xffffffffu   /* "all stores", "root level" */

/* Object data goes out in Data packets of this size; the output buffer
 * never holds much more, whatever the object's size. */
#define CHUNK              (256u << 10)
/* Nothing libgphoto2 sends comes near this; more is a broken peer. */
#define MAX_PACKET         (1u << 20)
#define MAX_PENDING        4
#define MAX_CONTROL        8
#define DEFAULT_SHOT_SIZE  204800u
/* Shots pressed and not yet announced, at most (a body's buffer). */
#define MAX_DEVELOPING     64
/* Limits of the delay and the camera clock's offset (about 31 years) and
 * drift: the camera's clock never goes back before 1970. */
#define MAX_DELAY          3600.0
#define MAX_OFFSET         1e9
#define MAX_DRIFT          1e6

/* --- PTP encoding ----------------------------------------------------- */

/* Characters widened byte by byte, as libgphoto2 does with host names. */
static void put_ucs2(struct buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put16(b, (unsigned char)s[i]);
	put16(b, 0);
}

/* A PTP string: character count (with the NUL) then UCS-2; "" is one 0. */
static void put_string(struct buf *b, const char *s)
{
	size_t n = strnlen(s, 254);

	put_le(b, n ? n + 1 : 0, 1);
	if (n)
		put_ucs2(b, s, n);
}

static void put_u16_array(struct buf *b, const uint16_t *v, size_t n)
{
	put32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put16(b, v[i]);
}

/* --- PTP/IP packets --------------------------------------------------- */

/* Starts a packet; pkt_end() fills in its length. */
static size_t pkt_begin(struct buf *b, uint32_t type)
{
	size_t at = b->len;

	put32(b, 0);
	put32(b, type);
	return at;
}

static void pkt_end(struct buf *b, size_t at)
{
	patch_le(b, at, b->len - at, 4);
}

/* A data phase built in place: Start Data, then one End Data packet whose
 * payload the caller appends; data_end() sets both lengths. */
static size_t data_begin(struct buf *b, uint32_t tid)
{
	size_t at = pkt_begin(b, PKT_START_DATA);

	put32(b, tid);
	put64(b, 0);
	pkt_end(b, at);
	pkt_begin(b, PKT_END_DATA);
	put32(b, tid);
	return at;
}

static void data_end(struct buf *b, size_t at)
{
	size_t end_data = at + 20;

	/* Start Data: length, type, tid, then the 64-bit total at 12. */
	patch_le(b, at + 12, b->len - end_data - 12, 8);
	pkt_end(b, end_data);
}

static void put_response(struct buf *b, uint16_t code, uint32_t tid)
{
	size_t at = pkt_begin(b, PKT_OPERATION_RESPONSE);

	put16(b, code);
	put32(b, tid);
	pkt_end(b, at);
}

static void put_init_fail(struct buf *b)
{
	size_t at = pkt_begin(b, PKT_INIT_FAIL);

	put32(b, INIT_FAIL_BUSY);
	pkt_end(b, at);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Takes the next whole packet from in; 1 if there is one, 0 if more bytes
 * are needed, -1 if the length makes no sense. */
static int next_packet(struct buf *in, uint32_t *type, const unsigned char **body,
		       size_t *len)
{
	const unsigned char *p = in->data + in->off;
	uint32_t total;

	if (buf_pending(in) < 8)
		return 0;
	total = get32(p);
	if (total < 8 || total > MAX_PACKET)
		return -1;
	if (buf_pending(in) < total)
		return 0;
	*type = get32(p + 4);
	*body = p + 8;
	*len = total - 8;
	in->off += total;
	return 1;
}

/* --- clocks ----------------------------------------------------------- */

static int64_t clock_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t to_us(double seconds)
{
	return (int64_t)(seconds * 1e6 + (seconds < 0 ? -0.5 : 0.5));
}

/* The camera's clock: the computer's CLOCK_REALTIME plus an offset, and
 * a drift that accumulates from the moment the clock was last set. */
struct camera_clock {
	int64_t offset_us;
	int64_t since_us;       /* CLOCK_REALTIME when set */
	double drift_ppm;
};

static int64_t camera_time(const struct camera_clock *c, int64_t real_us)
{
	return real_us + c->offset_us +
	       (int64_t)(c->drift_ppm * 1e-6 * (double)(real_us - c->since_us));
}

/* From real_us on the camera reads camera_us, and runs drift_ppm fast.
 * With camera_us >= 0 and drift_ppm >= -1e6 it never reads before 1970,
 * so times are split into seconds by plain division. */
static void clock_set(struct camera_clock *c, int64_t camera_us, int64_t real_us,
		      double drift_ppm)
{
	c->offset_us = camera_us - real_us;
	c->since_us = real_us;
	c->drift_ppm = drift_ppm;
}

/* " seconds.micros", as the control protocol prints times. */
static void put_seconds(struct buf *b, int64_t us)
{
	buf_printf(b, " %" PRId64 ".%06" PRId64, us / 1000000, us % 1000000);
}

/* The camera shows its wall time as PTP dates, printed as if UTC
 * (libgphoto2 reads them as local time, e.g. for the file's mtime). */
static void put_date(struct buf *b, time_t t)
{
	char date[32];
	struct tm tm;

	strftime(date, sizeof date, "%Y%m%dT%H%M%S", gmtime_r(&t, &tm));
	put_string(b, date);
}

/* What may follow a PTP date's seconds: nothing, or "." and digits.  The
 * fraction in microseconds; -1 if malformed. */
static int64_t parse_fraction(const char *s)
{
	int64_t us = 0, unit = 1000000;

	if (!*s)
		return 0;
	if (*s++ != '.' || !*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	for (; *s && unit > 1; s++)
		us += (*s - '0') * (unit /= 10);
	return us;
}

/* "YYYYMMDDThhmmss[.s…]" as PTP writes dates: the wall time it names,
 * read as UTC, in microseconds; -1 if it is none or before 1970. */
static int64_t parse_date(const char *s)
{
	struct tm tm = { 0 }, want;
	int64_t us;
	time_t t;

	if (strspn(s, "0123456789") != 8 || s[8] != 'T' || strspn(s + 9, "0123456789") != 6 ||
	    (us = parse_fraction(s + 15)) < 0 ||
	    sscanf(s, "%4d%2d%2dT%2d%2d%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	want = tm;
	/* timegm() normalises: a field out of range shows as a change. */
	if ((t = timegm(&tm)) < 0 || tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon ||
	    tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour ||
	    tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
		return -1;
	return (int64_t)t * 1000000 + us;
}

/* --- the camera ------------------------------------------------------- */

struct payload {
	enum shot_kind kind;
	uint64_t size;
	char file[512];         /* the JPEG's bytes come from this file, "" */
};

/* A GetObject being streamed. */
struct stream {
	bool active;
	uint32_t handle, tid;
	uint64_t sent, size;
	uint64_t cut;           /* fault: hang up after this many bytes */
};

struct request {
	uint32_t tid;
	uint32_t param[5];      /* 0 where not sent */
	struct buf *out;        /* the command socket's */
	const unsigned char *data;      /* what the host sent in its data phase */
	size_t data_len;
};

/* An operation whose data phase the host is sending. */
struct receiving {
	bool active;
	uint16_t code;
	struct request rq;
	struct buf data;
};

/* One libgphoto2 connection: a command and an event socket. */
struct session {
	struct conn cmd, evt;
	uint32_t number;        /* from the Init Command Ack, pairs the event socket */
	uint32_t id;            /* PTP session id, 0 while none is open */
	bool datetime;          /* the DateTime property, as DeviceInfo said */
	struct stream get;
	struct receiving recv;
	bool hangup;            /* close both sockets once cmd.out has gone */
};

struct faults {
	unsigned long busy;     /* this many operations answer DeviceBusy */
	uint64_t cut;           /* next GetObject: bytes before hanging up */
	int64_t cut_off_us;     /* and then switched off for this long */
	bool frozen;
	bool card_full;
	bool general_error;     /* next InitiateCapture: GeneralError */
	int64_t off_until_us;   /* switched off: connections closed (MONOTONIC) */
};

struct camera;
typedef uint16_t op_fn(struct camera *cam, const struct request *rq);

struct operation {
	uint16_t code;
	const char *name;
	op_fn *fn;
	bool has_data;          /* the reply goes in a data phase built around fn */
	bool needs_session;
	bool datetime;          /* offered with the DateTime property only */
};

#define N_OPERATIONS 13
static const struct operation operations[N_OPERATIONS];

/* A shot between the press and its ObjectAdded: exposure, processing and
 * the camera writing its card. */
struct developing {
	int64_t due_us;         /* CLOCK_MONOTONIC */
	uint32_t handles[2];
	int n;
	uint32_t tid;           /* InitiateCapture's, for the events */
};

enum exif_mode { EXIF_SUBSEC, EXIF_SECONDS, EXIF_NONE };

struct camera {
	struct card *card;
	const char *model, *serial, *control_path;
	int listen_fd, control_fd, signal_fd, stdin_fd;
	struct conn pending[MAX_PENDING];       /* accepted, not yet initialised */
	struct conn control[MAX_CONTROL];
	struct session s;
	struct faults faults;
	struct payload payload;
	struct camera_clock clock;
	int64_t delay_us;                       /* from a press to its ObjectAdded */
	struct developing developing[MAX_DEVELOPING];   /* in press order */
	size_t n_developing;
	enum exif_mode exif;
	bool datetime;                          /* for the next connection */
	struct buf deleted;                     /* " NAME" per host deletion */
	uint32_t sessions;
	unsigned long refused, unsupported, served[N_OPERATIONS];
	bool quit;
};

static void session_end(struct camera *cam)
{
	struct session *s = &cam->s;

	conn_close(&s->cmd);
	conn_close(&s->evt);
	s->id = 0;
	s->hangup = false;
	s->get.active = false;
	s->recv.active = false;
	buf_free(&s->recv.data);
}

static void queue_event(struct camera *cam, uint16_t code, uint32_t tid, uint32_t param)
{
	struct buf *b = &cam->s.evt.out;
	size_t at;

	/* Without an event socket nobody hears the camera; that is fine. */
	if (cam->s.evt.fd < 0)
		return;
	at = pkt_begin(b, PKT_EVENT);
	put16(b, code);
	put32(b, tid);
	put32(b, param);
	pkt_end(b, at);
}

/* ObjectAdded for each file, then CaptureComplete: libgphoto2 gives up on
 * ObjectAdded 20 polls after CaptureComplete (ptpip.md quirk 3). */
static void announce_shot(struct camera *cam, const uint32_t *handles, int n, uint32_t tid)
{
	for (int i = 0; i < n; i++)
		queue_event(cam, EV_OBJECT_ADDED, tid, handles[i]);
	queue_event(cam, EV_CAPTURE_COMPLETE, tid, tid);
}

/* The shutter, pressed now: the files are made at once, dated by the
 * camera's clock, and developed (hidden, unannounced) for the delay.
 * RC_OK, RC_DEVICE_BUSY (too many in flight) or RC_STORE_NOT_AVAILABLE;
 * *made (may be NULL) gets the shot. */
static uint16_t shoot(struct camera *cam, const struct payload *p, uint32_t tid,
		      const struct developing **made)
{
	int64_t real = clock_us(CLOCK_REALTIME);
	struct shot shot = {
		.kind = p->kind, .size = p->size, .jpeg_path = p->file[0] ? p->file : NULL,
		.pressed = { camera_time(&cam->clock, real), real },
	};
	struct developing *d = &cam->developing[cam->n_developing];
	unsigned char *exif = NULL;

	if (cam->n_developing == MAX_DEVELOPING)
		return RC_DEVICE_BUSY;
	/* A JPEG given as a file is sent as it is. */
	if (!shot.jpeg_path && cam->exif != EXIF_NONE &&
	    !(exif = exif_segment_new(cam->model, shot.pressed.camera_us,
				      cam->exif == EXIF_SUBSEC, &shot.exif_len)))
		return RC_STORE_NOT_AVAILABLE;
	shot.exif = exif;
	d->n = card_shoot(cam->card, &shot, d->handles);
	free(exif);
	if (d->n < 0)
		return RC_STORE_NOT_AVAILABLE;
	d->due_us = clock_us(CLOCK_MONOTONIC) + cam->delay_us;
	d->tid = tid;
	cam->n_developing++;
	if (made)
		*made = d;
	return RC_OK;
}

/* --- operations --------------------------------------------------------- */

/* What this connection's camera offers: without the DateTime property,
 * the operations on properties are not there at all. */
static bool offered(const struct camera *cam, const struct operation *op)
{
	return !op->datetime || cam->s.datetime;
}

static const struct operation *find_operation(const struct camera *cam, uint16_t code)
{
	for (size_t i = 0; i < N_OPERATIONS; i++)
		if (operations[i].code == code)
			return offered(cam, &operations[i]) ? &operations[i] : NULL;
	return NULL;
}

static uint16_t op_get_device_info(struct camera *cam, const struct request *rq)
{
	static const uint16_t events[] = {
		EV_OBJECT_ADDED, EV_OBJECT_REMOVED, EV_STORE_FULL, EV_CAPTURE_COMPLETE,
	};
	static const uint16_t capture_formats[] = { FORMAT_JPEG, FORMAT_RAW };
	static const uint16_t image_formats[] = { FORMAT_ASSOCIATION, FORMAT_JPEG, FORMAT_RAW };
	static const uint16_t properties[] = { DPC_DATE_TIME };
	uint16_t ops[N_OPERATIONS];
	size_t n_ops = 0;
	struct buf *out = rq->out;

	for (size_t i = 0; i < N_OPERATIONS; i++)
		if (offered(cam, &operations[i]))
			ops[n_ops++] = operations[i].code;
	put16(out, 100);                /* StandardVersion */
	/* Vendor id 0 keeps libgphoto2 on its generic paths, and so does a
	 * manufacturer that is not Canon, Nikon, FUJIFILM or OLYMPUS. */
	put32(out, 0);
	put16(out, 0);
	put_string(out, "");
	put16(out, 0);                  /* FunctionalMode */
	put_u16_array(out, ops, n_ops);
	put_u16_array(out, events, ARRAY_SIZE(events));
	/* libgphoto2's get_config and get_summary query every property
	 * listed: DateTime alone, or none. */
	put_u16_array(out, properties, cam->s.datetime ? ARRAY_SIZE(properties) : 0);
	put_u16_array(out, capture_formats, ARRAY_SIZE(capture_formats));
	put_u16_array(out, image_formats, ARRAY_SIZE(image_formats));
	put_string(out, "copystand");
	put_string(out, cam->model);
	put_string(out, "1.0");
	put_string(out, cam->serial);
	return RC_OK;
}

static uint16_t op_open_session(struct camera *cam, const struct request *rq)
{
	if (cam->s.id)
		return RC_SESSION_ALREADY_OPEN;
	if (!rq->param[0])
		return RC_INVALID_PARAMETER;
	cam->s.id = rq->param[0];
	return RC_OK;
}

static uint16_t op_close_session(struct camera *cam, const struct request *rq)
{
	(void)rq;
	cam->s.id = 0;
	return RC_OK;
}

static uint16_t op_get_storage_ids(struct camera *cam, const struct request *rq)
{
	(void)cam;
	put32(rq->out, 1);
	put32(rq->out, CARD_STORAGE_ID);
	return RC_OK;
}

static uint16_t op_get_storage_info(struct camera *cam, const struct request *rq)
{
	uint64_t used = card_used(cam->card);
	struct buf *out = rq->out;

	if (rq->param[0] != CARD_STORAGE_ID)
		return RC_INVALID_STORAGE_ID;
	put16(out, 0x0004);             /* removable RAM */
	put16(out, 0x0002);             /* generic hierarchical */
	put16(out, 0x0000);             /* read-write */
	put64(out, CARD_CAPACITY);
	put64(out, used < CARD_CAPACITY ? CARD_CAPACITY - used : 0);
	put32(out, 0xffffffff);         /* free space in images: not used */
	put_string(out, "SD card");
	put_string(out, "COPYSTAND");
	return RC_OK;
}

/* PTP's parent argument: 0 means every object, ALL the root level. */
static bool object_selected(const struct object *o, uint32_t format, uint32_t parent)
{
	if (o->unwritten || (format && o->format != format))
		return false;
	if (parent == ALL)
		return o->parent == 0;
	return !parent || o->parent == parent;
}

static uint16_t op_get_object_handles(struct camera *cam, const struct request *rq)
{
	uint32_t storage = rq->param[0], format = rq->param[1], parent = rq->param[2], n = 0;
	const struct object *folder = card_find(cam->card, parent);
	size_t count_at = rq->out->len;

	if (storage != ALL && storage != CARD_STORAGE_ID)
		return RC_INVALID_STORAGE_ID;
	if (parent && parent != ALL && (!folder || folder->format != FORMAT_ASSOCIATION))
		return RC_INVALID_PARENT_OBJECT;
	put32(rq->out, 0);
	for (size_t i = 0; i < card_count(cam->card); i++) {
		const struct object *o = card_at(cam->card, i);
		if (object_selected(o, format, parent)) {
			put32(rq->out, o->handle);
			n++;
		}
	}
	patch_le(rq->out, count_at, n, 4);
	return RC_OK;
}

static uint16_t op_get_object_info(struct camera *cam, const struct request *rq)
{
	const struct object *o = card_find(cam->card, rq->param[0]);
	struct buf *out = rq->out;

	if (!o)
		return RC_INVALID_OBJECT_HANDLE;
	put32(out, CARD_STORAGE_ID);
	put16(out, o->format);
	put16(out, 0);                  /* not protected */
	put32(out, (uint32_t)o->size);
	put16(out, 0);                  /* no thumbnail: format, size, width, height */
	put32(out, 0);
	put32(out, 0);
	put32(out, 0);
	put32(out, o->width);
	put32(out, o->height);
	put32(out, o->width ? 24 : 0);
	put32(out, o->parent);
	/* Association type: generic folder.  The name must not be empty, or
	 * libgphoto2 takes the record for a 64-bit size variant. */
	put16(out, o->format == FORMAT_ASSOCIATION ? 1 : 0);
	put32(out, 0);                  /* association description */
	put32(out, 0);                  /* sequence number */
	put_string(out, o->name);
	put_date(out, o->mtime);        /* capture date: the press, for shots */
	put_date(out, o->mtime);        /* modification date */
	put_string(out, "");            /* keywords */
	return RC_OK;
}

/* Starts the data phase; stream_refill() sends the bytes and the response. */
static uint16_t op_get_object(struct camera *cam, const struct request *rq)
{
	const struct object *o = card_find(cam->card, rq->param[0]);
	size_t at;

	if (!o || o->format == FORMAT_ASSOCIATION)
		return RC_INVALID_OBJECT_HANDLE;
	at = pkt_begin(rq->out, PKT_START_DATA);
	put32(rq->out, rq->tid);
	put64(rq->out, o->size);
	pkt_end(rq->out, at);
	cam->s.get = (struct stream){
		.active = true, .handle = o->handle, .tid = rq->tid, .size = o->size,
		.cut = cam->faults.cut,
	};
	cam->faults.cut = UINT64_MAX;
	return RC_PENDING;
}

static uint16_t op_delete_object(struct camera *cam, const struct request *rq)
{
	const struct object *o = card_find(cam->card, rq->param[0]);

	if (rq->param[0] == ALL || (o && o->format == FORMAT_ASSOCIATION))
		return RC_ACCESS_DENIED;        /* whole cards and folders: not here */
	if (!o)
		return RC_INVALID_OBJECT_HANDLE;
	buf_printf(&cam->deleted, " %s", o->name);
	card_remove(cam->card, rq->param[0]);
	return RC_OK;
}

static uint16_t op_initiate_capture(struct camera *cam, const struct request *rq)
{
	/* gp_camera_capture() ignores an error response to InitiateCapture
	 * and waits for events: StoreFull is the one it gives up on. */
	if (cam->faults.card_full) {
		cam->faults.card_full = false;
		queue_event(cam, EV_STORE_FULL, rq->tid, CARD_STORAGE_ID);
		return RC_STORE_FULL;
	}
	/* What cameras answer when they cannot shoot (autofocus found
	 * nothing, mode dial on video): no shot, no event. */
	if (cam->faults.general_error) {
		cam->faults.general_error = false;
		return RC_GENERAL_ERROR;
	}
	/* An error: gp_camera_trigger_capture() reports it;
	 * gp_camera_capture() waits for ever, as it would for any response.
	 * The events go out after the response, even without a delay:
	 * develop() runs between rounds of the main loop. */
	return shoot(cam, &cam->payload, rq->tid, NULL);
}

/* The camera's clock now, in whole seconds. */
static time_t camera_now(const struct camera *cam)
{
	return (time_t)(camera_time(&cam->clock, clock_us(CLOCK_REALTIME)) / 1000000);
}

/* DateTime (0x5011) is the only property: a settable string. */
static uint16_t op_get_device_prop_desc(struct camera *cam, const struct request *rq)
{
	struct buf *out = rq->out;

	if (rq->param[0] != DPC_DATE_TIME)
		return RC_DEVICE_PROP_NOT_SUPPORTED;
	put16(out, DPC_DATE_TIME);
	put16(out, DTC_STR);
	put_le(out, 1, 1);              /* GetSet: settable */
	put_string(out, "");            /* factory default */
	put_date(out, camera_now(cam));
	put_le(out, 0, 1);              /* FormFlag: none */
	return RC_OK;
}

static uint16_t op_get_device_prop_value(struct camera *cam, const struct request *rq)
{
	if (rq->param[0] != DPC_DATE_TIME)
		return RC_DEVICE_PROP_NOT_SUPPORTED;
	put_date(rq->out, camera_now(cam));
	return RC_OK;
}

/* A PTP string of ASCII characters into text (size bytes); false if the
 * data holds none, or a longer one. */
static bool get_string(const unsigned char *p, size_t len, char *text, size_t size)
{
	size_t n = len ? p[0] : 0;     /* characters, the NUL included */

	if (!len || 1 + 2 * n > len || n > size)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned c = p[1 + 2 * i] | (unsigned)p[2 + 2 * i] << 8;
		if (c > 0x7f)
			return false;
		text[i] = (char)c;
	}
	text[n ? n - 1 : 0] = '\0';
	return true;
}

/* The host sets the camera's clock (libgphoto2 writes its local time;
 * we read the fields as UTC, as the camera shows them).  The drift goes
 * on from now. */
static uint16_t op_set_device_prop_value(struct camera *cam, const struct request *rq)
{
	char text[32];
	int64_t wall_us;

	if (rq->param[0] != DPC_DATE_TIME)
		return RC_DEVICE_PROP_NOT_SUPPORTED;
	if (!get_string(rq->data, rq->data_len, text, sizeof text) ||
	    (wall_us = parse_date(text)) < 0)
		return RC_INVALID_DEVICE_PROP_VALUE;
	clock_set(&cam->clock, wall_us, clock_us(CLOCK_REALTIME), cam->clock.drift_ppm);
	return RC_OK;
}

static const struct operation operations[N_OPERATIONS] = {
	{ 0x1001, "GetDeviceInfo", op_get_device_info, true, false },
	{ 0x1002, "OpenSession", op_open_session, false, false },
	{ 0x1003, "CloseSession", op_close_session, false, true },
	{ 0x1004, "GetStorageIDs", op_get_storage_ids, true, true },
	{ 0x1005, "GetStorageInfo", op_get_storage_info, true, true },
	{ 0x1007, "GetObjectHandles", op_get_object_handles, true, true },
	{ 0x1008, "GetObjectInfo", op_get_object_info, true, true },
	{ 0x1009, "GetObject", op_get_object, false, true },
	{ 0x100b, "DeleteObject", op_delete_object, false, true },
	{ 0x100e, "InitiateCapture", op_initiate_capture, false, true },
	{ 0x1014, "GetDevicePropDesc", op_get_device_prop_desc, true, true, true },
	{ 0x1015, "GetDevicePropValue", op_get_device_prop_value, true, true, true },
	{ 0x1016, "SetDevicePropValue", op_set_device_prop_value, false, true, true },
};

static uint16_t run_operation(struct camera *cam, const struct operation *op,
			      const struct request *rq)
{
	size_t at;
	uint16_t rc;

	if (cam->faults.busy) {
		cam->faults.busy--;
		return RC_DEVICE_BUSY;
	}
	if (op->needs_session && !cam->s.id)
		return RC_SESSION_NOT_OPEN;
	if (!op->has_data)
		return op->fn(cam, rq);
	at = data_begin(rq->out, rq->tid);
	if ((rc = op->fn(cam, rq)) == RC_OK)
		data_end(rq->out, at);
	else
		rq->out->len = at;      /* an error has no data phase */
	return rc;
}

/* Runs a request whose data, if any, has come, and queues its response
 * (unless a streamed data phase sends it later). */
static void execute(struct camera *cam, uint16_t code, const struct request *rq)
{
	const struct operation *op = find_operation(cam, code);
	uint16_t rc = RC_OPERATION_NOT_SUPPORTED;

	if (!op) {
		cam->unsupported++;
	} else {
		cam->served[op - operations]++;
		rc = run_operation(cam, op, rq);
	}
	if (rc != RC_PENDING)
		put_response(rq->out, rc, rq->tid);
}

/* An Operation Request: data phase flag, opcode, tid, up to five
 * parameters.  One that sends data waits for it (data_packet()). */
static void operation_request(struct camera *cam, const unsigned char *body, size_t len)
{
	struct request rq = { .out = &cam->s.cmd.out };
	struct receiving *r = &cam->s.recv;
	uint16_t code;

	if (len < 10)
		return;
	code = (uint16_t)(body[4] | body[5] << 8);
	rq.tid = get32(body + 6);
	for (size_t k = 0; k < 5 && 10 + 4 * k + 4 <= len; k++)
		rq.param[k] = get32(body + 10 + 4 * k);
	if (get32(body) != DATA_FROM_HOST) {
		execute(cam, code, &rq);
		return;
	}
	r->active = true;
	r->code = code;
	r->rq = rq;
	r->data.len = 0;
}

/* The host's data phase: Start Data, then Data packets up to End Data,
 * or nothing more when it is empty (ptpip.md §2.7).  Then the operation
 * runs.  -1 if it is larger than anything an operation takes. */
static int data_packet(struct camera *cam, uint32_t type, const unsigned char *body,
		       size_t len)
{
	struct receiving *r = &cam->s.recv;
	bool empty = type == PKT_START_DATA && len >= 12 && !get32(body + 4) && !get32(body + 8);

	/* Stray data (a stale tid) is dropped. */
	if (!r->active || len < 4 || get32(body) != r->rq.tid)
		return 0;
	if (type != PKT_START_DATA)
		put_bytes(&r->data, body + 4, len - 4);
	if (r->data.oom || r->data.len > MAX_PACKET)
		return -1;
	if (empty || type == PKT_END_DATA) {
		r->active = false;
		r->rq.data = r->data.data;
		r->rq.data_len = r->data.len;
		execute(cam, r->code, &r->rq);
	}
	return 0;
}

/* Serves the next packet if there is one and no download is under way;
 * 1 if it did, 0 if not, -1 if the peer broke the protocol. */
static int serve_request(struct camera *cam)
{
	const unsigned char *body;
	uint32_t type;
	size_t len;
	int r;

	if (cam->s.get.active || cam->s.hangup)
		return 0;
	if ((r = next_packet(&cam->s.cmd.in, &type, &body, &len)) <= 0)
		return r;
	if (type == PKT_OPERATION_REQUEST)
		operation_request(cam, body, len);
	else if (type == PKT_START_DATA || type == PKT_DATA || type == PKT_END_DATA)
		return data_packet(cam, type, body, len) < 0 ? -1 : 1;
	return 1;
}

/* Queues the next Data packets of a download (then the response) while
 * less than a chunk is waiting; -1 on failure. */
static int stream_refill(struct camera *cam)
{
	struct stream *get = &cam->s.get;
	struct buf *out = &cam->s.cmd.out;

	while (get->active && buf_pending(out) < CHUNK) {
		const struct object *o = card_find(cam->card, get->handle);
		uint64_t n = get->size - get->sent < CHUNK ? get->size - get->sent : CHUNK;
		bool last = get->sent + n == get->size;
		size_t at = pkt_begin(out, last ? PKT_END_DATA : PKT_DATA);
		unsigned char *p;

		put32(out, get->tid);
		if (!o || !(p = buf_grow(out, (size_t)n)) || card_read(o, get->sent, p, (size_t)n)) {
			fprintf(stderr, "ptpip-camera: cannot send object %" PRIu32 ": %s\n",
				get->handle, !o ? "erased" : strerror(errno));
			return -1;
		}
		pkt_end(out, at);
		if (get->sent + n >= get->cut) {
			/* Fault: the packet is cut short and no response follows. */
			out->len -= (size_t)(get->sent + n - get->cut);
			get->active = false;
			cam->s.hangup = true;
			if (cam->faults.cut_off_us) {
				cam->faults.off_until_us = clock_us(CLOCK_MONOTONIC) +
							   cam->faults.cut_off_us;
				cam->faults.cut_off_us = 0;
			}
			break;
		}
		get->sent += n;
		if (last) {
			put_response(out, RC_OK, get->tid);
			get->active = false;
		}
	}
	return out->oom ? -1 : 0;
}

/* Does the session's work that needs no new input: requests, the next
 * chunks of a download, flushing.  A download goes on at the next POLLOUT
 * (see collect_watches()), so control commands are served during it.
 * Nothing moves while the camera is frozen. */
static void session_pump(struct camera *cam)
{
	struct session *s = &cam->s;

	while (s->cmd.fd >= 0 && !cam->faults.frozen) {
		int served = serve_request(cam);

		if (served < 0 || stream_refill(cam) || conn_flush(&s->cmd) ||
		    conn_flush(&s->evt) || (s->hangup && !buf_pending(&s->cmd.out))) {
			session_end(cam);
			return;
		}
		if (!served)
			return;
	}
}

/* --- PTP/IP connection set-up ------------------------------------------ */

/* A second libgphoto2 while one is connected gets Init Fail (it reports
 * "access denied") rather than a hang. */
static void refuse(struct camera *cam, struct conn *c)
{
	put_init_fail(&c->out);
	conn_flush(c);
	conn_close(c);
	cam->refused++;
}

static void init_command(struct camera *cam, struct conn *c)
{
	struct session *s = &cam->s;
	static const unsigned char guid[16] = "copystand-ptpip";
	size_t at;

	if (s->cmd.fd >= 0) {
		refuse(cam, c);
		return;
	}
	conn_move(&s->cmd, c);
	s->number = ++cam->sessions;
	s->datetime = cam->datetime;
	at = pkt_begin(&s->cmd.out, PKT_INIT_COMMAND_ACK);
	put32(&s->cmd.out, s->number);
	put_bytes(&s->cmd.out, guid, sizeof guid);
	/* libgphoto2 looks for the name's NUL without a length check. */
	put_ucs2(&s->cmd.out, cam->model, strnlen(cam->model, 254));
	put32(&s->cmd.out, PTPIP_VERSION);
	pkt_end(&s->cmd.out, at);
	session_pump(cam);
}

static void init_event(struct camera *cam, struct conn *c, const unsigned char *body,
		       size_t len)
{
	struct session *s = &cam->s;
	size_t at;

	if (len < 4 || s->cmd.fd < 0 || s->evt.fd >= 0 || get32(body) != s->number) {
		refuse(cam, c);
		return;
	}
	conn_move(&s->evt, c);
	at = pkt_begin(&s->evt.out, PKT_INIT_EVENT_ACK);
	pkt_end(&s->evt.out, at);
	session_pump(cam);
}

/* An accepted connection says what it is with its first packet. */
static void pending_input(struct camera *cam, struct conn *c)
{
	const unsigned char *body;
	uint32_t type;
	size_t len;
	int r;

	if (conn_fill(c) < 0 || (r = next_packet(&c->in, &type, &body, &len)) < 0) {
		conn_close(c);
		return;
	}
	if (r == 0)
		return;
	if (type == PKT_INIT_COMMAND_REQUEST)
		init_command(cam, c);
	else if (type == PKT_INIT_EVENT_REQUEST)
		init_event(cam, c, body, len);
	else
		conn_close(c);
}

static void accept_ptpip(struct camera *cam)
{
	int one = 1, fd = accept4(cam->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (clock_us(CLOCK_MONOTONIC) < cam->faults.off_until_us) {
		close(fd);
		return;
	}
	/* Without it each small response waits for a delayed ACK: ~40 ms per
	 * transaction (ptpip.md quirk 4). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	for (size_t i = 0; i < MAX_PENDING; i++) {
		if (cam->pending[i].fd < 0) {
			cam->pending[i].fd = fd;
			return;
		}
	}
	close(fd);
}

/* --- the control channel ----------------------------------------------- */

/* A decimal number; NULL if s is one, else what is wrong. */
static const char *parse_number(const char *s, uint64_t *v)
{
	char *end;

	if (!s)
		return "a number is missing";
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end || end == s || *s == '-' ? "not a number" : NULL;
}

/* [jpeg|raw+jpeg] [SIZE] [file PATH], in any order, over the defaults in
 * *p. */
static const char *parse_payload(char *args, struct payload *p)
{
	char *save = NULL;

	for (char *w = strtok_r(args, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		const char *err;
		if (!strcmp(w, "file")) {
			char *path = strtok_r(NULL, " ", &save);
			if (!path || access(path, R_OK) != 0)
				return "file needs a readable JPEG file";
			snprintf(p->file, sizeof p->file, "%s", path);
		} else if (!strcmp(w, "jpeg"))
			p->kind = SHOT_JPEG;
		else if (!strcmp(w, "raw+jpeg"))
			p->kind = SHOT_RAW_JPEG;
		else if (parse_number(w, &p->size))
			return "expected jpeg, raw+jpeg or a SIZE in bytes";
		else if ((err = card_check_size(p->size)))
			return err;
	}
	return NULL;
}

/* Control commands append what follows "OK" to reply, or return why not. */
typedef const char *command_fn(struct camera *cam, char *args, struct buf *reply);

/* Replies at the press, so a test can bracket its moment; the shot is
 * announced after the delay. */
static const char *cmd_press(struct camera *cam, char *args, struct buf *reply)
{
	struct payload p = cam->payload;
	const char *err = parse_payload(args, &p);
	const struct developing *d;
	uint16_t rc;

	if (err)
		return err;
	if ((rc = shoot(cam, &p, NO_TRANSACTION, &d)) != RC_OK)
		return rc == RC_DEVICE_BUSY ? "too many shots not yet announced"
					    : "out of memory or the file went away";
	for (int i = 0; i < d->n; i++)
		buf_printf(reply, " %" PRIu32, d->handles[i]);
	return NULL;
}

static const char *cmd_payload(struct camera *cam, char *args, struct buf *reply)
{
	struct payload p = { SHOT_JPEG, DEFAULT_SHOT_SIZE, "" };
	const char *err = parse_payload(args, &p);

	(void)reply;
	if (!err)
		cam->payload = p;
	return err;
}

static bool parse_decimal(const char *s, double lo, double hi, double *v);

static const char *cmd_fault(struct camera *cam, char *args, struct buf *reply)
{
	char *save = NULL, *what = strtok_r(args, " ", &save), *arg = strtok_r(NULL, " ", &save);
	const char *err = NULL;
	uint64_t v;

	(void)reply;
	if (!what)
		return "which fault?";
	if (!strcmp(what, "busy")) {
		if (!(err = parse_number(arg, &v)))
			cam->faults.busy = (unsigned long)v;
	} else if (!strcmp(what, "disconnect-after")) {
		/* [off SECONDS]: the cable stays out after the cut. */
		char *off = strtok_r(NULL, " ", &save), *secs = strtok_r(NULL, " ", &save);
		double seconds = 0;
		if ((err = parse_number(arg, &v)))
			return err;
		if (off && (strcmp(off, "off") || !secs ||
			    !parse_decimal(secs, 0, MAX_DELAY, &seconds)))
			return "expected BYTES [off SECONDS]";
		cam->faults.cut = v;
		cam->faults.cut_off_us = to_us(seconds);
	} else if (!strcmp(what, "freeze")) {
		cam->faults.frozen = true;
	} else if (!strcmp(what, "thaw")) {
		cam->faults.frozen = false;
	} else if (!strcmp(what, "card-full")) {
		cam->faults.card_full = true;
	} else if (!strcmp(what, "general-error")) {
		cam->faults.general_error = true;
	} else if (!strcmp(what, "off")) {
		/* Switched off (or the cable pulled) while nothing moves: the
		 * host notices at its next read of either socket. */
		double seconds;
		if (!arg || !parse_decimal(arg, 0, MAX_DELAY, &seconds))
			return "expected SECONDS from 0 to 3600";
		cam->faults.off_until_us = clock_us(CLOCK_MONOTONIC) + to_us(seconds);
		if (cam->s.cmd.fd >= 0)
			session_end(cam);
	} else if (!strcmp(what, "clear")) {
		cam->faults = (struct faults){ .cut = UINT64_MAX };
	} else {
		err = "unknown fault";
	}
	return err;
}

static const char *cmd_list(struct camera *cam, char *args, struct buf *reply)
{
	(void)args;
	for (size_t i = 0; i < card_count(cam->card); i++) {
		const struct object *o = card_at(cam->card, i);
		if (o->format != FORMAT_ASSOCIATION && !o->unwritten)
			buf_printf(reply, " %" PRIu32 ":%s:%" PRIu64, o->handle, o->name, o->size);
	}
	return NULL;
}

static const char *cmd_deleted(struct camera *cam, char *args, struct buf *reply)
{
	(void)args;
	put_bytes(reply, cam->deleted.data, cam->deleted.len);
	return NULL;
}

static const char *cmd_stats(struct camera *cam, char *args, struct buf *reply)
{
	(void)args;
	buf_printf(reply, " sessions=%" PRIu32 " refused=%lu", cam->sessions, cam->refused);
	for (size_t i = 0; i < N_OPERATIONS; i++)
		buf_printf(reply, " %s=%lu", operations[i].name, cam->served[i]);
	buf_printf(reply, " unsupported=%lu", cam->unsupported);
	return NULL;
}

/* An object handle; 0 (no object's) if arg is none. */
static uint32_t parse_handle(const char *arg)
{
	uint64_t handle;

	return parse_number(arg, &handle) || handle > UINT32_MAX ? 0 : (uint32_t)handle;
}

/* A file the host may see. */
static const struct object *find_file(struct camera *cam, const char *arg)
{
	const struct object *o = card_find(cam->card, parse_handle(arg));

	return o && o->format != FORMAT_ASSOCIATION ? o : NULL;
}

/* The checksum of a file's bytes, for tests to compare downloads with. */
static const char *cmd_crc32(struct camera *cam, char *args, struct buf *reply)
{
	const struct object *o = find_file(cam, args);
	unsigned char *chunk;
	uLong crc = crc32(0, Z_NULL, 0);
	uint64_t off = 0;

	if (!o)
		return "no such file";
	if (!(chunk = malloc(CHUNK)))
		return "out of memory";
	while (off < o->size) {
		size_t n = o->size - off < CHUNK ? (size_t)(o->size - off) : CHUNK;
		if (card_read(o, off, chunk, n))
			break;
		crc = crc32(crc, chunk, (uInt)n);
		off += n;
	}
	free(chunk);
	if (off < o->size)
		return strerror(errno);
	buf_printf(reply, " %08lx", crc);
	return NULL;
}

/* Deleted with the camera's own menu: the host hears ObjectRemoved. */
static const char *cmd_erase(struct camera *cam, char *args, struct buf *reply)
{
	const struct object *o = find_file(cam, args);
	uint32_t handle;

	(void)reply;
	if (!o)
		return "no such file";
	handle = o->handle;
	card_remove(cam->card, handle);
	queue_event(cam, EV_OBJECT_REMOVED, NO_TRANSACTION, handle);
	return NULL;
}

/* The moment of a shot's press, announced or not: camera clock, then
 * CLOCK_REALTIME. */
static const char *cmd_pressed(struct camera *cam, char *args, struct buf *reply)
{
	const struct object *o = card_find_any(cam->card, parse_handle(args));

	if (!o || !o->pressed.real_us)
		return "no such shot";
	put_seconds(reply, o->pressed.camera_us);
	put_seconds(reply, o->pressed.real_us);
	return NULL;
}

/* A decimal number within [lo, hi] (NaN is not). */
static bool parse_decimal(const char *s, double lo, double hi, double *v)
{
	char *end;

	if (!s)
		return false;
	errno = 0;
	*v = strtod(s, &end);
	return !errno && !*end && end != s && *v >= lo && *v <= hi;
}

/* The index of word among names, or -1. */
static int parse_choice(const char *word, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(word, names[i]))
			return i;
	return -1;
}

/* --delay and --exif call these with reply NULL. */
static const char *cmd_delay(struct camera *cam, char *args, struct buf *reply)
{
	double seconds;

	(void)reply;
	if (!parse_decimal(args, 0, MAX_DELAY, &seconds))
		return "expected SECONDS from 0 to 3600";
	cam->delay_us = to_us(seconds);
	return NULL;
}

#define CLOCK_RANGE "expected OFFSET seconds within 1e9 and DRIFT_PPM within 1e6"

/* "clock": the camera's time now; "clock OFFSET [DRIFT_PPM]" sets it. */
static const char *cmd_clock(struct camera *cam, char *args, struct buf *reply)
{
	char *save = NULL, *offset = strtok_r(args, " ", &save), *drift = strtok_r(NULL, " ", &save);
	int64_t real = clock_us(CLOCK_REALTIME);
	double o, d = 0;

	if (!offset) {
		put_seconds(reply, camera_time(&cam->clock, real));
		return NULL;
	}
	if (strtok_r(NULL, " ", &save) || !parse_decimal(offset, -MAX_OFFSET, MAX_OFFSET, &o) ||
	    (drift && !parse_decimal(drift, -MAX_DRIFT, MAX_DRIFT, &d)))
		return CLOCK_RANGE;
	clock_set(&cam->clock, real + to_us(o), real, d);
	return NULL;
}

static const char *cmd_exif(struct camera *cam, char *args, struct buf *reply)
{
	static const char *const modes[] = { "subsec", "seconds", "none" };
	int mode = parse_choice(args, modes, (int)ARRAY_SIZE(modes));

	(void)reply;
	if (mode < 0)
		return "expected subsec, seconds or none";
	cam->exif = (enum exif_mode)mode;
	return NULL;
}

/* From the next connection: libgphoto2 reads DeviceInfo once, at init. */
static const char *cmd_datetime(struct camera *cam, char *args, struct buf *reply)
{
	static const char *const states[] = { "off", "on" };
	int on = parse_choice(args, states, (int)ARRAY_SIZE(states));

	(void)reply;
	if (on < 0)
		return "expected off or on";
	cam->datetime = on;
	return NULL;
}

static const char *cmd_quit(struct camera *cam, char *args, struct buf *reply)
{
	(void)args;
	(void)reply;
	cam->quit = true;
	return NULL;
}

static const struct command {
	const char *name;
	command_fn *fn;
} commands[] = {
	{ "press", cmd_press },
	{ "payload", cmd_payload },
	{ "fault", cmd_fault },
	{ "list", cmd_list },
	{ "deleted", cmd_deleted },
	{ "stats", cmd_stats },
	{ "crc32", cmd_crc32 },
	{ "erase", cmd_erase },
	{ "pressed", cmd_pressed },
	{ "delay", cmd_delay },
	{ "clock", cmd_clock },
	{ "exif", cmd_exif },
	{ "datetime", cmd_datetime },
	{ "quit", cmd_quit },
};

static void control_line(struct camera *cam, char *line, struct buf *reply)
{
	size_t n = strcspn(line, " "), mark = reply->len;
	char *args = line[n] ? line + n + 1 : line + n;
	const char *err = "unknown command";

	line[n] = '\0';
	buf_printf(reply, "OK");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (!strcmp(line, commands[i].name))
			err = commands[i].fn(cam, args, reply);
	if (err) {
		reply->len = mark;
		buf_printf(reply, "ERR %s", err);
	}
	buf_printf(reply, "\n");
}

static void control_input(struct camera *cam, struct conn *c)
{
	bool gone = conn_fill(c) < 0;
	char *line, *nl;

	while (buf_pending(&c->in) &&
	       (nl = memchr(c->in.data + c->in.off, '\n', buf_pending(&c->in)))) {
		line = (char *)c->in.data + c->in.off;
		c->in.off += (size_t)(nl - line) + 1;
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		control_line(cam, line, &c->out);
	}
	/* A command changes what the session has to say (events, a thaw). */
	session_pump(cam);
	/* Replies first: a client may half-close once it has sent its line. */
	if (conn_flush(c) || gone)
		conn_close(c);
}

static void accept_control(struct camera *cam)
{
	int fd = accept4(cam->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (size_t i = 0; i < MAX_CONTROL; i++) {
		if (cam->control[i].fd < 0) {
			cam->control[i].fd = fd;
			return;
		}
	}
	close(fd);
}

/* --- set-up, main loop, clean-up --------------------------------------- */

static int listen_ptpip(int port, int *bound)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		close(fd);
		return -1;
	}
	*bound = ntohs(a.sin_port);
	return fd;
}

static int listen_control(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof a.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(a.sun_path, path);
	/* A socket left by an emulator that was killed. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 8)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* SIGTERM and SIGINT arrive as a readable descriptor; SIGPIPE is moot
 * (MSG_NOSIGNAL) except for stdout, where the parent may have gone. */
static int signal_descriptor(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Stdin is watched only when it is a pipe or socket from a parent: its
 * end means the parent is gone.  A terminal or /dev/null is left alone. */
static int watched_stdin(void)
{
	struct stat st;

	if (fstat(STDIN_FILENO, &st) || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return -1;
	return STDIN_FILENO;
}

static void stdin_input(struct camera *cam)
{
	char scrap[256];
	ssize_t r = read(cam->stdin_fd, scrap, sizeof scrap);

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		cam->quit = true;
}

enum watch_kind { W_SIGNAL, W_STDIN, W_PTPIP, W_CONTROL_LISTEN, W_PENDING, W_CMD, W_EVT,
		  W_CONTROL };

struct watches {
	struct pollfd fds[6 + MAX_PENDING + MAX_CONTROL];
	enum watch_kind kind[6 + MAX_PENDING + MAX_CONTROL];
	struct conn *conn[6 + MAX_PENDING + MAX_CONTROL];
	size_t n;
};

static void watch(struct watches *w, enum watch_kind kind, int fd, struct conn *c,
		  short events)
{
	if (fd < 0)
		return;
	w->fds[w->n] = (struct pollfd){ .fd = fd, .events = events };
	w->kind[w->n] = kind;
	w->conn[w->n++] = c;
}

static void collect_watches(struct camera *cam, struct watches *w)
{
	struct session *s = &cam->s;
	/* Frozen, the camera still reads (to notice a host hanging up) but
	 * sends nothing. */
	short cmd_out = (buf_pending(&s->cmd.out) || s->get.active) && !cam->faults.frozen ?
			POLLOUT : 0;
	short evt_out = buf_pending(&s->evt.out) && !cam->faults.frozen ? POLLOUT : 0;

	w->n = 0;
	watch(w, W_SIGNAL, cam->signal_fd, NULL, POLLIN);
	watch(w, W_STDIN, cam->stdin_fd, NULL, POLLIN);
	watch(w, W_PTPIP, cam->listen_fd, NULL, POLLIN);
	watch(w, W_CONTROL_LISTEN, cam->control_fd, NULL, POLLIN);
	for (size_t i = 0; i < MAX_PENDING && !cam->faults.frozen; i++)
		watch(w, W_PENDING, cam->pending[i].fd, &cam->pending[i], POLLIN);
	watch(w, W_CMD, s->cmd.fd, &s->cmd, POLLIN | cmd_out);
	watch(w, W_EVT, s->evt.fd, &s->evt, POLLIN | evt_out);
	for (size_t i = 0; i < MAX_CONTROL; i++)
		watch(w, W_CONTROL, cam->control[i].fd, &cam->control[i],
		      POLLIN | (buf_pending(&cam->control[i].out) ? POLLOUT : 0));
}

static void session_input(struct camera *cam, struct conn *c)
{
	/* The event socket carries nothing after its Init; reading it only
	 * tells us when the host has gone. */
	if (conn_fill(c) < 0) {
		session_end(cam);
		return;
	}
	if (c == &cam->s.evt)
		cam->s.evt.in.len = cam->s.evt.in.off = 0;
	session_pump(cam);
}

static void dispatch(struct camera *cam, const struct watches *w, size_t i)
{
	struct conn *c = w->conn[i];

	/* An earlier handler in this round may have closed c. */
	if (c && c->fd != w->fds[i].fd)
		return;
	switch (w->kind[i]) {
	case W_SIGNAL:
		cam->quit = true;
		break;
	case W_STDIN:
		stdin_input(cam);
		break;
	case W_PTPIP:
		accept_ptpip(cam);
		break;
	case W_CONTROL_LISTEN:
		accept_control(cam);
		break;
	case W_PENDING:
		pending_input(cam, c);
		break;
	case W_CMD:
	case W_EVT:
		session_input(cam, c);
		break;
	case W_CONTROL:
		control_input(cam, c);
		break;
	}
}

/* Announces the shots whose delay is over, oldest first: a body writes
 * its buffer in order, so a shot never overtakes an earlier one. */
static void develop(struct camera *cam)
{
	int64_t now = clock_us(CLOCK_MONOTONIC);
	size_t done = 0;

	for (; done < cam->n_developing && cam->developing[done].due_us <= now; done++) {
		const struct developing *d = &cam->developing[done];
		for (int i = 0; i < d->n; i++)
			card_reveal(cam->card, d->handles[i]);
		announce_shot(cam, d->handles, d->n, d->tid);
	}
	if (!done)
		return;
	cam->n_developing -= done;
	memmove(cam->developing, cam->developing + done,
		cam->n_developing * sizeof *cam->developing);
	session_pump(cam);
}

/* Milliseconds until the next shot is due, for poll(); -1: none. */
static int develop_timeout(const struct camera *cam)
{
	int64_t left;

	if (!cam->n_developing)
		return -1;
	left = cam->developing[0].due_us - clock_us(CLOCK_MONOTONIC);
	return left > 0 ? (int)((left + 999) / 1000) : 0;
}

static void run(struct camera *cam)
{
	struct watches w;

	/* Shots fall due between rounds: a command that follows a press's
	 * reply already finds a shot without delay announced. */
	while (!cam->quit) {
		develop(cam);
		collect_watches(cam, &w);
		if (poll(w.fds, w.n, develop_timeout(cam)) < 0) {
			if (errno == EINTR)
				continue;
			perror("ptpip-camera: poll");
			return;
		}
		for (size_t i = 0; i < w.n && !cam->quit; i++)
			if (w.fds[i].revents)
				dispatch(cam, &w, i);
	}
}

static void camera_cleanup(struct camera *cam)
{
	session_end(cam);
	for (size_t i = 0; i < MAX_PENDING; i++)
		conn_close(&cam->pending[i]);
	for (size_t i = 0; i < MAX_CONTROL; i++) {
		conn_flush(&cam->control[i]);   /* the reply to "quit" */
		conn_close(&cam->control[i]);
	}
	if (cam->control_fd >= 0) {
		close(cam->control_fd);
		unlink(cam->control_path);
	}
	if (cam->listen_fd >= 0)
		close(cam->listen_fd);
	if (cam->signal_fd >= 0)
		close(cam->signal_fd);
	buf_free(&cam->deleted);
	card_free(cam->card);
}

static void usage(FILE *f)
{
	fputs("usage: ptpip-camera [--port N] [--control PATH] [--dir DIR]\n"
	      "                    [--model NAME] [--serial S] [--delay SECONDS]\n"
	      "                    [--clock-offset S] [--clock-drift PPM]\n"
	      "                    [--exif subsec|seconds|none] [--no-datetime]\n"
	      "A PTP/IP camera on 127.0.0.1 for libgphoto2 (port ptpip:127.0.0.1:N:N,\n"
	      "model \"PTP/IP Camera\").  Prints READY <port> once listening.\n", f);
}

/* Fills cam from the command line; 0, or the exit status to leave with. */
static int parse_args(int argc, char **argv, struct camera *cam, int *port, const char **dir)
{
	static const struct option options[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "control", required_argument, NULL, 'c' },
		{ "dir", required_argument, NULL, 'd' },
		{ "model", required_argument, NULL, 'm' },
		{ "serial", required_argument, NULL, 's' },
		{ "delay", required_argument, NULL, 'D' },
		{ "clock-offset", required_argument, NULL, 'o' },
		{ "clock-drift", required_argument, NULL, 'r' },
		{ "exif", required_argument, NULL, 'e' },
		{ "no-datetime", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t real = clock_us(CLOCK_REALTIME);
	double offset = 0, drift = 0;
	const char *err = NULL;
	int opt, at = 0;
	uint64_t v;

	while ((opt = getopt_long(argc, argv, "", options, &at)) != -1) {
		switch (opt) {
		case 'p':
			if (parse_number(optarg, &v) || v > 65535)
				err = "not a port number";
			else
				*port = (int)v;
			break;
		case 'c': cam->control_path = optarg; break;
		case 'd': *dir = optarg; break;
		case 'm': cam->model = optarg; break;
		case 's': cam->serial = optarg; break;
		case 'D': err = cmd_delay(cam, optarg, NULL); break;
		case 'o':
			if (!parse_decimal(optarg, -MAX_OFFSET, MAX_OFFSET, &offset))
				err = CLOCK_RANGE;
			break;
		case 'r':
			if (!parse_decimal(optarg, -MAX_DRIFT, MAX_DRIFT, &drift))
				err = CLOCK_RANGE;
			break;
		case 'e': err = cmd_exif(cam, optarg, NULL); break;
		case 'n': cam->datetime = false; break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		}
		if (err) {
			fprintf(stderr, "ptpip-camera: --%s %s: %s\n", options[at].name, optarg, err);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	/* The drift accumulates from the start. */
	clock_set(&cam->clock, real + to_us(offset), real, drift);
	return 0;
}

int main(int argc, char **argv)
{
	struct camera cam = {
		.model = "ptpip-camera", .serial = "0000000001",
		.listen_fd = -1, .control_fd = -1, .signal_fd = -1, .stdin_fd = -1,
		.s = { .cmd.fd = -1, .evt.fd = -1 },
		.faults = { .cut = UINT64_MAX },
		.payload = { SHOT_JPEG, DEFAULT_SHOT_SIZE, "" },
		.exif = EXIF_SUBSEC, .datetime = true,
	};
	const char *dir = NULL;
	int port = 0, bound, status;

	for (size_t i = 0; i < MAX_PENDING; i++)
		cam.pending[i].fd = -1;
	for (size_t i = 0; i < MAX_CONTROL; i++)
		cam.control[i].fd = -1;
	if ((status = parse_args(argc, argv, &cam, &port, &dir)))
		return status == 1 ? 0 : status;
	status = 1;
	if (!(cam.card = card_new(camera_now(&cam))) || (dir && card_load_dir(cam.card, dir)))
		goto out;
	if ((cam.signal_fd = signal_descriptor()) < 0 ||
	    (cam.listen_fd = listen_ptpip(port, &bound)) < 0) {
		perror("ptpip-camera: cannot listen on 127.0.0.1");
		goto out;
	}
	if (cam.control_path && (cam.control_fd = listen_control(cam.control_path)) < 0) {
		fprintf(stderr, "ptpip-camera: cannot listen on %s: %s\n", cam.control_path,
			strerror(errno));
		goto out;
	}
	cam.stdin_fd = watched_stdin();
	printf("READY %d\n", bound);
	fflush(stdout);
	run(&cam);
	status = 0;
out:
	camera_cleanup(&cam);
	return status;
}
