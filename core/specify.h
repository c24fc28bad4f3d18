/* copystand — client for Specify 7 and its Web Asset Server.
 *
 * Follows the protocol in docs/specify.md: JSON login with CSRF rotation,
 * batched record lookups, attachment locations reserved before upload,
 * a fresh asset token before each asset-server request, join rows created
 * with a nested attachment.  A session that Specify drops is renewed once,
 * transparently.  Calls on one session may come from several threads.
 */
#ifndef COPYSTAND_SPECIFY_H
#define COPYSTAND_SPECIFY_H

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "targets.h"

typedef struct specify_session specify_session;

typedef struct specify_login {
	const char *server;     /* base URL, e.g. https://specify.example.org */
	const char *user;
	const char *password;   /* kept in memory for renewal, wiped on free */
	const char *collection; /* name or numeric id; NULL: the only one */
	const char *ca_file;    /* extra CA bundle, or NULL */
	bool insecure;          /* skip TLS verification */
	/* The collection's id and Specify's name for it as an earlier login
	 * learned them (0 and NULL: unknown).  With them the login asks
	 * Specify nothing first; specify_session_load checks them. */
	long long collection_id;
	const char *collection_name;
} specify_login;

/* A copy of src that owns its strings (for sessions opened later, from
 * another thread), its server without a trailing slash as batches name
 * it.  CS_E_CONFIG unless server, user, password and collection are set. */
int specify_login_copy(specify_login *dst, const specify_login *src,
		       cs_error *err);
/* Frees a copy's strings, wiping the password first. */
void specify_login_clear(specify_login *l);

/* What the login learned about the user and the collection. */
typedef struct specify_info {
	const char *server;
	const char *user;
	long long user_id;
	const char *agent;          /* "First Last" of the user's Agent */
	long long agent_id;
	const char *collection;
	long long collection_id;
	const char *catalog_format; /* UIFormatter name, NULL when none */
} specify_info;

/* The asset server as Specify announces it. */
typedef struct specify_assets {
	const char *collection;     /* the 'coll' value to send */
	const char *read_url;
	const char *write_url;
	const char *delete_url;
	const char *testkey_url;
	bool token_required_for_get;
} specify_assets;

/* An attachment location reserved with get_upload_params. */
typedef struct specify_reservation {
	char location[129];
	char token[160];
	time_t minted;              /* local time the token was received */
} specify_reservation;

/* A join row plus its nested attachment, to create. */
typedef struct specify_attachment {
	const char *table;          /* base table, e.g. "collectionobject" */
	long long record_id;
	int ordinal;
	const char *location;
	const char *mimetype;
	const char *origfilename;
	const char *title;
	bool ispublic;
	const cJSON *extra;         /* more attachment fields, or NULL */
} specify_attachment;

typedef struct specify_attached {
	long long join_id;          /* e.g. collectionobjectattachment id */
	long long attachment_id;
	long long record_id;
} specify_attached;

/* Called once per record found; value is the field's stored value. */
typedef int (*specify_record_fn)(void *ud, const char *value, const cJSON *record);

/* Logs in and reads the user and the collection's settings:
 * specify_session_open, then specify_session_load. */
int specify_session_login(const specify_login *login, specify_session **out,
			  cs_error *err);
/* Only the login (the collection chosen): the session can make requests,
 * and its info has the server, user and collection; the agent and the
 * catalog-number format come with specify_session_load.  For a caller
 * with requests that need neither (the asset settings, reservations):
 * sent first, they do not wait behind the load (Specify serves two
 * requests at a time). */
int specify_session_open(const specify_login *login, specify_session **out,
			 cs_error *err);
/* Reads the user (may they use the collection? their agent) and the
 * collection's catalog-number format, side by side. */
int specify_session_load(specify_session *s, cs_error *err);
int specify_session_logout(specify_session *s, cs_error *err);
void specify_session_free(specify_session *s);
const specify_info *specify_session_info(const specify_session *s);
/* Stops every request of the session under way; later ones fail at once.
 * For shutting down; safe from any thread. */
void specify_session_cancel(specify_session *s);
/* Asks, in the background, what the first upload and the first join rows
 * of table will need, so that neither waits for it then: the asset-server
 * settings at once; whether Specify has its bulk create once the first
 * upload begins (until then Specify's cores serve the lookup and the
 * reservation that upload waits for).  Failures are left to the calls
 * that need the answers; specify_session_free waits for it. */
void specify_session_warm(specify_session *s, const char *table);

/* Asset-server settings; CS_E_NO_ASSETS when Specify has none. */
int specify_assets_get(specify_session *s, const specify_assets **out,
		       cs_error *err);
/* Proves key and clocks agree: a token from Specify accepted by testkey. */
int specify_assets_check(specify_session *s, cs_error *err);

/* Finds the records of table whose field equals any of values, scoped to
 * the collection, in as few requests as URL limits allow. */
int specify_records_lookup(specify_session *s, const char *table,
			   const char *field, const char *const *values,
			   size_t n, specify_record_fn fn, void *ud,
			   cs_error *err);
/* Copies the non-empty values into out (room for n), sorted and each once
 * as the database compares them, without case; returns how many. */
size_t specify_values_unique(const char *const *values, size_t n, const char **out);
/* That order (qsort/bsearch over const char * elements). */
int specify_value_cmp(const void *a, const void *b);

/* One row of a match query: a record and one of its attachments. */
typedef struct specify_match_row {
	long long id;
	const char *value;          /* as Specify displays it: "123" for 000000123 */
	long long join_id;          /* 0: the record has no attachment */
	const char *origfilename;   /* that attachment's, "" when none */
} specify_match_row;
typedef int (*specify_match_fn)(void *ud, const specify_match_row *row);

/* Finds the records whose target field is any of values, with their
 * attachments, through the query builder as Specify's own importer does
 * (POST /stored_query/ephemeral/): one request for thousands of values.
 * The values must not contain commas (the query splits on them), nor
 * hyphens for a catalog-number format (read as ranges).  CS_E_ACCESS when
 * the user may not run queries (/querybuilder/query execute), at once
 * after the first refusal. */
int specify_match_query(specify_session *s, const struct match_target *t,
			const char *const *values, size_t n,
			specify_match_fn fn, void *ud, cs_error *err);
/* Records of table matching filters, Django lookups already URL-escaped
 * ("catalognumber__startswith=V00"), at most limit of them (0: all). */
int specify_records_query(specify_session *s, const char *table,
			  const char *filters, size_t limit, const char *field,
			  specify_record_fn fn, void *ud, cs_error *err);
int specify_record_get(specify_session *s, const char *table, long long id,
		       cJSON **out, cs_error *err);

/* PUTs a whole record back, its "version" inside (Specify replaces every
 * dependent collection sent: a missing attachment is deleted).
 * CS_E_CONFLICT when someone saved it meanwhile.  *out: the saved record. */
int specify_record_put(specify_session *s, const char *table, long long id,
		       const cJSON *record, cJSON **out, cs_error *err);

/* The text of an app resource such as "UIFormatters" (malloc'd). */
int specify_app_resource(specify_session *s, const char *name, char **out,
			 cs_error *err);

/* Reserves n attachment locations; filenames give their extensions.  The
 * session keeps their tokens: an upload of one of them within 90 s, with
 * no token given, uses it instead of asking for one. */
int specify_locations_reserve(specify_session *s, const char *const *filenames,
			      size_t n, specify_reservation *out, cs_error *err);
int specify_asset_token(specify_session *s, const char *location, char *out,
			size_t outsz, cs_error *err);
/* Streams path to the asset server as location.  token may be NULL: a
 * fresh one is fetched first. */
int specify_asset_upload(specify_session *s, const char *path,
			 const char *origname, const char *mimetype,
			 const char *location, const char *token, cs_error *err);
int specify_asset_download(specify_session *s, const char *location, FILE *out,
			   cs_error *err);
int specify_asset_size(specify_session *s, const char *location,
		       long long *size, cs_error *err);
/* Removes an uploaded file that no attachment refers to. */
int specify_asset_delete(specify_session *s, const char *location,
			 cs_error *err);

int specify_attachment_create(specify_session *s, const specify_attachment *a,
			      specify_attached *out, cs_error *err);
/* Creates n join rows with their attachments, out[i] for a[i], in one
 * request where Specify has its bulk view (7.11.2 on; asked once per
 * session), else CS_E_UNSUPPORTED and nothing is sent.  Specify commits
 * the rows one by one: after a failure any first few of them may exist. */
int specify_attachments_create(specify_session *s, const specify_attachment *a,
			       size_t n, specify_attached *out, cs_error *err);
/* The ordinal after the record's existing attachments. */
int specify_attachment_next_ordinal(specify_session *s, const char *table,
				    long long record_id, int *ordinal,
				    cs_error *err);
/* Looks for the join row whose attachment has this location; *out is
 * zeroed and CS_E_NOT_FOUND returned when there is none. */
int specify_attachment_find(specify_session *s, const char *table,
			    const char *location, specify_attached *out,
			    cs_error *err);
/* Deletes a join row; Specify deletes the attachment and its file. */
int specify_attachment_delete(specify_session *s, const char *table,
			      long long join_id, cs_error *err);

#endif
