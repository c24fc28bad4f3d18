/* Starts and steers tests/standin/standin.py, the Specify 7 + Web Asset
 * Server stand-in, as a child process on free loopback ports. */
#ifndef COPYSTAND_STANDIN_H
#define COPYSTAND_STANDIN_H

#include <cjson/cJSON.h>

#include "error.h"

typedef struct standin standin;

/* args: extra command-line arguments, NULL-terminated (may be NULL).
 * The server dies with us: it exits when its stdin (our pipe) closes. */
int standin_start(const char *const *args, standin **out, cs_error *err);
void standin_stop(standin *st);

const char *standin_url(const standin *st);       /* Specify base URL */
const char *standin_asset_url(const standin *st); /* asset server base URL */

/* Sends a control request (/__standin__/...); reply parsed when JSON. */
int standin_control(standin *st, const char *method, const char *path,
		    const char *json, cJSON **reply, cs_error *err);

/* Merges fault switches, e.g. "{\"error_rate\": 0.5}". */
int standin_faults(standin *st, const char *json, cs_error *err);

/* The stand-in's own view: attachments, files, request counts. */
cJSON *standin_state(standin *st);

/* Requests a state counts for key ("POST /fileupload"); 0 for none. */
int standin_requests(const cJSON *state, const char *key);

#endif
