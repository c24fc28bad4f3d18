/* copystand — errors a person can act on.
 *
 * Every fallible function returns 0 or a negative CS_E_* code and, when
 * given a cs_error, fills it with a message that says what happened and
 * what to do.  The code decides what the program does next (retry, skip,
 * stop); the message is for the technician.
 */
#ifndef COPYSTAND_ERROR_H
#define COPYSTAND_ERROR_H

#include <stdbool.h>

enum cs_code {
	CS_OK = 0,
	CS_E_INVALID = -1,      /* bad argument or bad input */
	CS_E_NOMEM = -2,
	CS_E_IO = -3,           /* local file or disk */
	CS_E_CONFIG = -4,       /* settings missing or unsafe */
	CS_E_UNREACHABLE = -10, /* could not connect or resolve */
	CS_E_TIMEOUT = -11,
	CS_E_TLS = -12,         /* certificate or handshake failure */
	CS_E_NETWORK = -13,     /* connection dropped mid-exchange */
	CS_E_SERVER = -14,      /* 5xx: the server failed */
	CS_E_PROTOCOL = -15,    /* a reply we cannot understand */
	CS_E_AUTH = -20,        /* wrong user name or password */
	CS_E_ACCESS = -21,      /* permission or collection access denied */
	CS_E_NO_AGENT = -22,    /* user has no Agent in this division */
	CS_E_SESSION = -23,     /* session lost and could not be renewed */
	CS_E_NO_ASSETS = -24,   /* Specify has no asset server configured */
	CS_E_TOKEN = -25,       /* asset server refused our token */
	CS_E_TOO_LARGE = -26,   /* 413 from the server or a proxy */
	CS_E_NOT_FOUND = -27,
	CS_E_CONFLICT = -28,    /* 409: record changed meanwhile */
	CS_E_UNSUPPORTED = -29, /* the server lacks what was asked for */
};

typedef struct cs_error {
	int code;
	char msg[768];
} cs_error;

/* Fills err (which may be NULL) and returns code. */
int cs_error_set(cs_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with more context ("upload V1.jpg: ..."). */
int cs_error_prefix(cs_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void cs_error_clear(cs_error *err);

/* True for failures that may go away by themselves (network, 5xx, timeouts,
 * an asset token refused because of clock trouble): retry later, do not
 * give up on the work. */
bool cs_error_is_transient(int code);

/* A short stable name ("unreachable", "auth", ...) for logs and JSON. */
const char *cs_error_name(int code);

#endif
