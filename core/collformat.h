/* copystand — the collection's catalog-number format: from Specify (its
 * name in the session info, its definition in the UIFormatters resource),
 * or as saved at the last start with Specify reachable, so that a station
 * can start while Specify is down.
 *
 * The saved copy lives in $XDG_CACHE_HOME/copystand (~/.cache/copystand),
 * one file per server and collection.
 */
#ifndef COPYSTAND_COLLFORMAT_H
#define COPYSTAND_COLLFORMAT_H

#include "catalog.h"
#include "error.h"
#include "specify.h"

/* Reads the format from Specify and saves it for server and collection
 * (as configured; best effort). */
int collformat_fetch(specify_session *s, const char *server,
		     const char *collection, struct catalog_format **out,
		     cs_error *err);

/* The format saved for server and collection; *saved (may be NULL) gets
 * when it was saved.  CS_E_NOT_FOUND when there is none. */
int collformat_saved(const char *server, const char *collection,
		     struct catalog_format **out, double *saved, cs_error *err);

#endif
