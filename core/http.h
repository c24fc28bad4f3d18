/* copystand — HTTP transport over libcurl.
 *
 * One http_client holds what several transfers share: cookies, TLS
 * settings, DNS and the connection cache (keep-alive), guarded so that
 * transfers may run on several threads.  It knows nothing of Specify; it
 * turns libcurl's failures into cs_error codes a person can act on.
 */
#ifndef COPYSTAND_HTTP_H
#define COPYSTAND_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

typedef struct http_client http_client;

typedef struct http_options {
	const char *ca_file;    /* extra CA bundle for private CAs, or NULL */
	bool insecure;          /* skip TLS verification (only when asked) */
	long connect_timeout_ms;/* 0: 10 s */
	long stall_timeout_s;   /* abort a transfer idle this long; 0: 60 s */
} http_options;

/* A file part of a multipart/form-data body, streamed from disk. */
typedef struct http_form_file {
	const char *field;      /* part name */
	const char *path;       /* local file to stream */
	const char *filename;   /* name announced to the server */
	const char *mimetype;
} http_form_file;

typedef struct http_request {
	const char *method;          /* "GET", "PUT", ...; NULL is GET */
	const char *url;
	const char *const *headers;  /* extra "Name: value" lines, NULL-terminated */
	const char *content_type;    /* for body */
	const char *body;            /* in-memory body, or NULL */
	size_t body_len;
	const char *const *form;     /* multipart fields: name, value, ..., NULL */
	const http_form_file *form_file; /* one streamed file part, or NULL */
	FILE *sink;                  /* write a 2xx body here instead of memory */
	size_t max_body;             /* cap on an in-memory body; 0: 64 MiB */
	bool head;                   /* HEAD request: no body expected */
	/* The request creates something: never send it twice.  libcurl
	 * resends a request whose reused connection closed without a reply;
	 * for this one that is an error instead (the server may have acted),
	 * and the caller finds out what happened. */
	bool once;
} http_request;

typedef struct http_response {
	long status;
	char *body;               /* NUL-terminated, or NULL when empty/sunk */
	size_t body_len;
	char content_type[128];
	long long content_length; /* from the header; -1 when absent */
	long long x_timestamp;    /* asset server clock; 0 when absent */
} http_response;

http_client *http_client_new(const http_options *opts, cs_error *err);
void http_client_free(http_client *client);

/* Performs one request.  Returns 0 when an HTTP response arrived (whatever
 * its status) and a negative code when none did.  The caller clears resp
 * with http_response_clear() in both cases. */
int http_client_perform(http_client *client, const http_request *req,
			http_response *resp, cs_error *err);

/* Stops every transfer under way and refuses new ones (CS_E_NETWORK):
 * for shutting down.  Safe from any thread. */
void http_client_cancel(http_client *client);

void http_response_clear(http_response *resp);

/* True when the response body is empty or only white space. */
bool http_response_is_blank(const http_response *resp);

/* The value of a cookie in the shared jar (malloc'd), or NULL. */
char *http_client_cookie(http_client *client, const char *name);

/* Puts a cookie for url's host (every path, a session cookie) into the
 * shared jar, as if that host had set it. */
int http_client_set_cookie(http_client *client, const char *url, const char *name,
			   const char *value, cs_error *err);

/* Removes the cookies named name that hold value when another of that
 * name is in the jar (one set with http_client_set_cookie, and the server
 * set its own for a wider domain). */
void http_client_drop_cookie(http_client *client, const char *name, const char *value);

/* Removes every cookie (a fresh login starts clean). */
void http_client_clear_cookies(http_client *client);

/* URL-escapes s (malloc'd). */
char *http_escape(const char *s);

/* Prints a URL with any user:password@ removed (for messages). */
void http_url_redact(const char *url, char *out, size_t outsz);

#endif
