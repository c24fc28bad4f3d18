/* copystand — the collection's catalog-number format: from Specify (its
 * name in the session info, its definition in the UIFormatters resource),
 * or as saved at the last start with Specify reachable, so that a station
 * can start while Specify is down.  Saved with it: the collection's id,
 * so that the next login need not ask for it.
 *
 * The saved copies live in $XDG_CACHE_HOME/copystand (~/.cache/copystand),
 * one file of each per server and collection.
 */
#ifndef COPYSTAND_COLLFORMAT_H
#define COPYSTAND_COLLFORMAT_H

#include "catalog.h"
#include "error.h"
#include "specify.h"

/* Reads the format from Specify and saves it, and the collection's id
 * and name, for server and collection (as configured; best effort). */
int collformat_fetch(specify_session *s, const char *server,
		     const char *collection, struct catalog_format **out,
		     cs_error *err);

/* The format saved for server and collection; *saved (may be NULL) gets
 * when it was saved.  CS_E_NOT_FOUND when there is none. */
int collformat_saved(const char *server, const char *collection,
		     struct catalog_format **out, double *saved, cs_error *err);

/* The id of collection (as configured) on server that the last start
 * with Specify reachable saved, and in *name Specify's name for it
 * (malloc'd); 0 and NULL when none is saved.  For specify_login. */
long long collformat_saved_id(const char *server, const char *collection, char **name);
/* Forgets that id (a login with it failed). */
void collformat_forget_id(const char *server, const char *collection);

#endif
