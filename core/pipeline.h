/* copystand — the pipeline: a background worker that drains the journal
 * into Specify while the caller keeps working.
 *
 * named → matched (batched lookups) → reserved (locations reserved in
 * chunks and journaled before any upload) → uploaded → attached, with the
 * stored size verified before an item counts as attached.  Transient
 * failures wait with exponential backoff and jitter and never give up the
 * batch; permanent ones fail that item with a reason and the rest goes
 * on.  An item taken up again (a retry, or after a crash) is first looked
 * for in Specify by its location, so nothing is attached twice.
 */
#ifndef COPYSTAND_PIPELINE_H
#define COPYSTAND_PIPELINE_H

#include <stdbool.h>

#include "error.h"
#include "journal.h"
#include "specify.h"

typedef struct pipeline pipeline;

/* A state change, reported from the pipeline's threads. */
typedef struct pipeline_event {
	long long item_id;
	long long batch_id;
	enum journal_state state;
	const char *name;         /* file name */
	const char *identifier;
	const char *reason;       /* why, for side states and retries */
	long long size;
	bool retry;               /* a transient failure: state unchanged */
} pipeline_event;

typedef struct pipeline_options {
	const char *journal_path;
	specify_login login;      /* copied; the password is wiped at stop */
	/* A session already open with login, or NULL (the pipeline logs in).
	 * The pipeline takes it over, even when it fails to start: it logs
	 * it out and frees it at stop. */
	specify_session *session;
	int max_inflight;         /* parallel uploads at most; 0: 4 */
	double retry_base_s;      /* first retry delay; 0: 1 s */
	double retry_cap_s;       /* longest retry delay; 0: 60 s */
	/* Called from pipeline threads: must be thread-safe and quick. */
	void (*on_event)(void *ud, const pipeline_event *ev);
	void *ud;
} pipeline_options;

typedef struct pipeline_status {
	bool online;              /* logged in to Specify */
	int inflight;
	int window;               /* current parallelism */
	int undoing;              /* undo requests not yet carried out */
	char last_error[256];
} pipeline_status;

/* Starts the threads; the server and collection of opts->login select
 * which batches of the journal this pipeline drains. */
int pipeline_start(const pipeline_options *opts, pipeline **out, cs_error *err);

/* New work is in the journal: look now rather than at the next tick. */
void pipeline_kick(pipeline *p);

/* Waits until every item of batch (0: of every batch of this server and
 * collection) is final, or timeout_s passes (CS_E_TIMEOUT; < 0: forever),
 * or pipeline_interrupt() is called (CS_E_INVALID). */
int pipeline_wait_idle(pipeline *p, long long batch, double timeout_s,
		       cs_error *err);

/* Makes pipeline_wait_idle return (e.g. from a signal-watching thread). */
void pipeline_interrupt(pipeline *p);

/* Takes an item back, e.g. a capture the technician undid: it goes no
 * further; if it reached Specify its attachment (or its orphan file on the
 * asset server) is deleted; with remove_file its local file is deleted
 * too; then it is rolled_back, and on_event says so.  Asynchronous: an
 * item being sent is taken back once that request returns; one that
 * reached Specify waits while Specify is unreachable.  The request lives
 * in memory only: stopped before it is carried out, the item goes on as
 * before at the next start.  CS_E_INVALID when too many are waiting. */
int pipeline_undo(pipeline *p, long long item_id, bool remove_file,
		  cs_error *err);

void pipeline_get_status(pipeline *p, pipeline_status *out);

/* Stops the threads and frees p.  Work under way is abandoned where it
 * stands; the journal says where, and the next start resumes it. */
void pipeline_stop(pipeline *p);

#endif
