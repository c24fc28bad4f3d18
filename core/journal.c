#include "journal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define SCHEMA_VERSION 6

struct journal {
	sqlite3 *db;
	char *path;
	int pid;
	char host[256];
};

static const char *const state_names[JS_COUNT] = {
	"captured", "named", "matched", "reserved", "uploaded", "attached",
	"unmatched", "ambiguous", "held", "failed", "rolled_back", "local",
	"deferred",
};

/* Each migration takes the schema from version i to i + 1; never edit one
 * that has shipped, add the next. */
static const char *const migrations[SCHEMA_VERSION] = {
	"CREATE TABLE batches ("
	"  id INTEGER PRIMARY KEY,"
	"  kind TEXT NOT NULL,"
	"  server TEXT NOT NULL,"
	"  collection TEXT NOT NULL,"
	"  collection_id INTEGER,"
	"  label TEXT,"
	"  created REAL NOT NULL,"
	"  state TEXT NOT NULL DEFAULT 'open');"
	"CREATE TABLE items ("
	"  id INTEGER PRIMARY KEY,"
	"  batch_id INTEGER NOT NULL REFERENCES batches(id),"
	"  path TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  size INTEGER NOT NULL DEFAULT 0,"
	"  sha256 TEXT,"
	"  mimetype TEXT,"
	"  target TEXT NOT NULL DEFAULT 'catalog-number',"
	"  identifier TEXT,"
	"  record_table TEXT,"
	"  record_id INTEGER,"
	"  ordinal INTEGER NOT NULL DEFAULT 0,"
	"  location TEXT UNIQUE,"
	"  join_id INTEGER,"
	"  attachment_id INTEGER,"
	"  extra TEXT,"
	"  state TEXT NOT NULL,"
	"  reason TEXT,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_try REAL NOT NULL DEFAULT 0,"
	"  lease_host TEXT,"
	"  lease_pid INTEGER,"
	"  lease_until REAL NOT NULL DEFAULT 0,"
	"  created REAL NOT NULL,"
	"  updated REAL NOT NULL);"
	"CREATE INDEX items_state ON items(state, next_try);"
	"CREATE INDEX items_batch ON items(batch_id, state);"
	"CREATE INDEX items_record ON items(record_table, record_id);"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  item_id INTEGER NOT NULL,"
	"  at REAL NOT NULL,"
	"  from_state TEXT,"
	"  to_state TEXT NOT NULL,"
	"  detail TEXT);"
	"CREATE INDEX events_item ON events(item_id);",
	/* 2: captures named from their labels look their number up. */
	"CREATE INDEX items_identifier ON items(identifier);",
	/* 3: what each station has scanned, for hosts that submit files to
	 * the station that runs (a gphoto2 hook). */
	"CREATE TABLE stations ("
	"  batch_id INTEGER PRIMARY KEY REFERENCES batches(id),"
	"  host TEXT NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  dir TEXT NOT NULL,"
	"  identifier TEXT,"
	"  record_id INTEGER,"
	"  ordinal_base INTEGER NOT NULL DEFAULT 0,"
	"  updated REAL NOT NULL,"
	/* The last file a host handed in, so the other half of a RAW+JPEG
	 * pair (a second hook call) gets the same name. */
	"  last_source TEXT,"
	"  last_stem TEXT,"
	"  last_at REAL NOT NULL DEFAULT 0);",
	/* 4: which press a capture comes from, and what places it in time:
	 * the scans of each station and readings of each camera's clock. */
	"ALTER TABLE items ADD COLUMN press_source TEXT;"
	"ALTER TABLE items ADD COLUMN press_lo REAL;"
	"ALTER TABLE items ADD COLUMN press_hi REAL;"
	"ALTER TABLE items ADD COLUMN press_cam REAL;"
	"ALTER TABLE items ADD COLUMN press_res REAL;"
	"ALTER TABLE items ADD COLUMN press_bind TEXT;"
	"ALTER TABLE items ADD COLUMN press_candidates TEXT;"
	/* The finisher asks each pass for the presses still to be decided. */
	"CREATE INDEX items_press ON items(press_bind, batch_id, press_source);"
	"CREATE TABLE scans ("
	"  id INTEGER PRIMARY KEY,"
	"  batch_id INTEGER NOT NULL REFERENCES batches(id),"
	"  at REAL NOT NULL,"
	"  identifier TEXT);"
	"CREATE INDEX scans_batch ON scans(batch_id, at);"
	"CREATE TABLE clocks ("
	"  id INTEGER PRIMARY KEY,"
	"  batch_id INTEGER NOT NULL REFERENCES batches(id),"
	"  source TEXT NOT NULL,"
	"  at REAL NOT NULL,"
	"  lo REAL,"
	"  hi REAL);"
	"CREATE INDEX clocks_batch ON clocks(batch_id, source, at);",
	/* 5: the files a camera announced, until one is journaled with
	 * that card path (items.card): a shot the download missed is on
	 * record until it is brought in. */
	"ALTER TABLE items ADD COLUMN card TEXT;"
	"CREATE TABLE card ("
	"  id INTEGER PRIMARY KEY,"
	"  batch_id INTEGER NOT NULL REFERENCES batches(id),"
	"  source TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  identifier TEXT,"
	"  announced REAL NOT NULL);"
	"CREATE INDEX card_path ON card(path);",
	/* 6: files sent to the asset server before their batch was
	 * journaled (copystand upload sends the first ones while Specify
	 * looks the names up): a location no item took is deleted there. */
	"CREATE TABLE ahead ("
	"  location TEXT PRIMARY KEY,"
	"  server TEXT NOT NULL,"
	"  host TEXT NOT NULL,"
	"  pid INTEGER NOT NULL,"
	"  sent REAL NOT NULL);"
	"CREATE INDEX items_location ON items(location);"
	"CREATE INDEX items_sha256 ON items(sha256);"
	/* The content as it was taken: sha256 follows the file when the
	 * station stamps it, and a capture program's re-save of the shot
	 * still has the bytes it wrote. */
	"ALTER TABLE items ADD COLUMN sha256_taken TEXT;"
	"CREATE INDEX items_sha256_taken ON items(sha256_taken);",
};

static const char *const bind_names[] = {
	[JB_NONE] = NULL, [JB_TRIGGER] = "trigger", [JB_PENDING] = "pending",
	[JB_TIME] = "time", [JB_PERSON] = "person", [JB_LABEL] = "label",
};

const char *journal_state_name(enum journal_state s)
{
	return (unsigned)s < JS_COUNT ? state_names[s] : "?";
}

int journal_state_parse(const char *name)
{
	for (int i = 0; name && i < JS_COUNT; i++)
		if (strcmp(state_names[i], name) == 0)
			return i;
	return -1;
}

bool journal_state_is_final(enum journal_state s)
{
	return s >= JS_ATTACHED && s != JS_DEFERRED;
}

static double now_s(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static int db_error(journal *j, int rc, const char *what, cs_error *err)
{
	if (rc == SQLITE_FULL)
		return cs_error_set(err, CS_E_IO, "%s: the disk holding the journal "
				    "%s is full: free some space", what, j->path);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return cs_error_set(err, CS_E_IO, "%s: the journal %s stayed locked "
				    "by another copystand process", what, j->path);
	return cs_error_set(err, CS_E_IO, "%s: journal %s: %s", what, j->path,
			    sqlite3_errmsg(j->db));
}

static int exec(journal *j, const char *sql, const char *what, cs_error *err)
{
	int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : db_error(j, rc, what, err);
}

static int prepare(journal *j, const char *sql, sqlite3_stmt **st, cs_error *err)
{
	int rc = sqlite3_prepare_v2(j->db, sql, -1, st, NULL);
	return rc == SQLITE_OK ? 0 : db_error(j, rc, "preparing a query", err);
}

/* Binds NULL for a NULL string. */
static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static void bind_id(sqlite3_stmt *st, int i, long long v)
{
	if (v > 0)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

/* An unbounded side (an infinity) as NULL. */
static void bind_bound(sqlite3_stmt *st, int i, double v)
{
	if (isinf(v) || isnan(v))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, v);
}

static double col_bound(sqlite3_stmt *st, int i, double none)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? none : sqlite3_column_double(st, i);
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

/* Runs a statement that returns no rows, then finalizes it. */
static int step_done(journal *j, sqlite3_stmt *st, const char *what, cs_error *err)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_error(j, rc, what, err);
}

/* --- opening and migrating ---------------------------------------------- */

static int schema_version(journal *j, int *version, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "PRAGMA user_version", &st, err);

	if (ret)
		return ret;
	*version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return 0;
}

static int migrate(journal *j, cs_error *err)
{
	char sql[64];
	int version, ret;

	/* A current journal is only read: every thread of every process opens
	 * it, and a write here is a commit (five syncs) under the one write
	 * lock. */
	if ((ret = schema_version(j, &version, err)) || version == SCHEMA_VERSION)
		return ret;
	/* IMMEDIATE: two processes opening a new journal migrate once. */
	if ((ret = exec(j, "BEGIN IMMEDIATE", "opening the journal", err)))
		return ret;
	if ((ret = schema_version(j, &version, err)))
		goto out;
	if (version > SCHEMA_VERSION) {
		ret = cs_error_set(err, CS_E_CONFIG, "the journal %s was written by a "
			"newer copystand (schema %d, this one knows %d): update "
			"copystand", j->path, version, SCHEMA_VERSION);
		goto out;
	}
	for (; version < SCHEMA_VERSION && ret == 0; version++)
		ret = exec(j, migrations[version], "updating the journal", err);
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (ret == 0)
		ret = exec(j, sql, "updating the journal", err);
out:
	if (ret == 0)
		return exec(j, "COMMIT", "updating the journal", err);
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int journal_open(const char *path, journal **out, cs_error *err)
{
	journal *j = calloc(1, sizeof *j);
	int rc, ret;

	*out = NULL;
	if (!j || !(j->path = strdup(path))) {
		free(j);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	j->pid = (int)getpid();
	if (gethostname(j->host, sizeof j->host - 1) != 0)
		strcpy(j->host, "localhost");
	rc = sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		ret = cs_error_set(err, CS_E_IO, "cannot open the journal %s: %s", path,
				   j->db ? sqlite3_errmsg(j->db) : sqlite3_errstr(rc));
		journal_close(j);
		return ret;
	}
	/* Another process may hold the write lock for a moment. */
	sqlite3_busy_timeout(j->db, 30000);
	if ((ret = exec(j, "PRAGMA journal_mode = WAL", "opening the journal", err)) ||
	    (ret = exec(j, "PRAGMA synchronous = FULL", "opening the journal", err)) ||
	    (ret = exec(j, "PRAGMA foreign_keys = ON", "opening the journal", err)) ||
	    (ret = migrate(j, err))) {
		journal_close(j);
		return ret;
	}
	*out = j;
	return 0;
}

void journal_close(journal *j)
{
	if (!j)
		return;
	sqlite3_close(j->db);
	free(j->path);
	free(j);
}

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

char *journal_default_path(cs_error *err)
{
	const char *data = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char *dir = NULL, *path = NULL;

	if (data && data[0] == '/') {
		if (asprintf(&dir, "%s/copystand", data) < 0)
			dir = NULL;
	} else if (home && asprintf(&dir, "%s/.local/share/copystand", home) < 0) {
		dir = NULL;
	}
	if (!dir) {
		cs_error_set(err, CS_E_CONFIG, "no HOME: cannot place the journal");
		return NULL;
	}
	if (mkdir_p(dir) != 0)
		cs_error_set(err, CS_E_IO, "cannot create %s: %s", dir, strerror(errno));
	else if (asprintf(&path, "%s/journal.sqlite", dir) < 0)
		path = NULL;
	free(dir);
	return path;
}

/* --- batches ------------------------------------------------------------- */

int journal_batch_new(journal *j, const char *kind, const char *server,
		      const char *collection, long long collection_id,
		      const char *label, long long *id, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "INSERT INTO batches (kind, server, collection, "
			  "collection_id, label, created) VALUES (?, ?, ?, ?, ?, ?)",
			  &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, kind);
	bind_text(st, 2, server);
	bind_text(st, 3, collection);
	bind_id(st, 4, collection_id);
	bind_text(st, 5, label);
	sqlite3_bind_double(st, 6, now_s());
	if ((ret = step_done(j, st, "starting a batch", err)) == 0)
		*id = sqlite3_last_insert_rowid(j->db);
	return ret;
}

void journal_batch_clear(journal_batch *b)
{
	free(b->kind);
	free(b->server);
	free(b->collection);
	free(b->label);
	free(b->state);
	memset(b, 0, sizeof *b);
}

#define BATCH_COLUMNS "id, kind, server, collection, collection_id, label, created, state"

static void read_batch(sqlite3_stmt *st, journal_batch *b)
{
	b->id = sqlite3_column_int64(st, 0);
	b->kind = col_text(st, 1);
	b->server = col_text(st, 2);
	b->collection = col_text(st, 3);
	b->collection_id = sqlite3_column_int64(st, 4);
	b->label = col_text(st, 5);
	b->created = sqlite3_column_double(st, 6);
	b->state = col_text(st, 7);
}

int journal_batch_get(journal *j, long long id, journal_batch *out, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT " BATCH_COLUMNS " FROM batches WHERE id = ?", &st, err);

	memset(out, 0, sizeof *out);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		read_batch(st, out);
	else
		ret = cs_error_set(err, CS_E_NOT_FOUND, "there is no batch %lld in "
				   "the journal (copystand batches lists them)", id);
	sqlite3_finalize(st);
	return ret;
}

int journal_batch_set_state(journal *j, long long id, const char *state,
			    cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "UPDATE batches SET state = ? WHERE id = ?", &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, state);
	sqlite3_bind_int64(st, 2, id);
	return step_done(j, st, "updating a batch", err);
}

int journal_batches_each(journal *j, int (*fn)(void *ud, const journal_batch *b),
			 void *ud, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT " BATCH_COLUMNS " FROM batches ORDER BY id DESC",
			  &st, err);

	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
		journal_batch b = { 0 };
		read_batch(st, &b);
		ret = fn(ud, &b);
		journal_batch_clear(&b);
	}
	sqlite3_finalize(st);
	return ret;
}

int journal_batch_counts(journal *j, long long batch, long long counts[JS_COUNT],
			 cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT state, COUNT(*) FROM items WHERE batch_id = ? "
			  "GROUP BY state", &st, err);

	memset(counts, 0, sizeof(long long) * JS_COUNT);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int s = journal_state_parse((const char *)sqlite3_column_text(st, 0));
		if (s >= 0)
			counts[s] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	return 0;
}

/* --- items --------------------------------------------------------------- */

#define ITEM_COLUMNS "id, batch_id, path, name, size, sha256, mimetype, target, " \
	"identifier, record_table, record_id, ordinal, location, join_id, " \
	"attachment_id, extra, state, reason, attempts, next_try, lease_host, lease_pid, " \
	"press_source, press_lo, press_hi, press_cam, press_res, press_bind, " \
	"press_candidates, card"
/* The column after ITEM_COLUMNS (lease_until where it is asked for). */
#define ITEM_NCOLUMNS 30

static enum journal_bind bind_parse(const char *name)
{
	for (int i = JB_TRIGGER; name && i <= JB_LABEL; i++)
		if (!strcmp(bind_names[i], name))
			return (enum journal_bind)i;
	return JB_NONE;
}

void journal_item_clear(journal_item *it)
{
	free(it->path);
	free(it->name);
	free(it->sha256);
	free(it->mimetype);
	free(it->target);
	free(it->identifier);
	free(it->record_table);
	free(it->location);
	free(it->extra);
	free(it->reason);
	free(it->press.source);
	free(it->press.candidates);
	free(it->card);
	memset(it, 0, sizeof *it);
}

static void read_item(sqlite3_stmt *st, journal_item *it)
{
	it->id = sqlite3_column_int64(st, 0);
	it->batch_id = sqlite3_column_int64(st, 1);
	it->path = col_text(st, 2);
	it->name = col_text(st, 3);
	it->size = sqlite3_column_int64(st, 4);
	it->sha256 = col_text(st, 5);
	it->mimetype = col_text(st, 6);
	it->target = col_text(st, 7);
	it->identifier = col_text(st, 8);
	it->record_table = col_text(st, 9);
	it->record_id = sqlite3_column_int64(st, 10);
	it->ordinal = sqlite3_column_int(st, 11);
	it->location = col_text(st, 12);
	it->join_id = sqlite3_column_int64(st, 13);
	it->attachment_id = sqlite3_column_int64(st, 14);
	it->extra = col_text(st, 15);
	it->state = (enum journal_state)journal_state_parse((const char *)sqlite3_column_text(st, 16));
	it->reason = col_text(st, 17);
	it->attempts = sqlite3_column_int(st, 18);
	it->next_try = sqlite3_column_double(st, 19);
	it->card = col_text(st, 29);
	it->press = (journal_press){
		.bind = bind_parse((const char *)sqlite3_column_text(st, 27)) };
	if (it->press.bind == JB_NONE)
		return;
	it->press.source = col_text(st, 22);
	it->press.lo = col_bound(st, 23, -INFINITY);
	it->press.hi = col_bound(st, 24, INFINITY);
	it->press.cam = sqlite3_column_double(st, 25);
	it->press.res = sqlite3_column_double(st, 26);
	it->press.candidates = col_text(st, 28);
}

/* The press columns, bound from the parameter first on. */
static void bind_press(sqlite3_stmt *st, int first, const journal_press *p)
{
	bool none = p->bind == JB_NONE;

	bind_text(st, first, none ? NULL : p->source);
	bind_bound(st, first + 1, none ? NAN : p->lo);
	bind_bound(st, first + 2, none ? NAN : p->hi);
	bind_bound(st, first + 3, none || p->res <= 0 ? NAN : p->cam);
	bind_bound(st, first + 4, none || p->res == 0 ? NAN : p->res);
	bind_text(st, first + 5, bind_names[p->bind]);
	bind_text(st, first + 6, none ? NULL : p->candidates);
}

static int add_event(journal *j, long long item, int from, enum journal_state to,
		     const char *detail, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "INSERT INTO events (item_id, at, from_state, to_state, "
			  "detail) VALUES (?, ?, ?, ?, ?)", &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, item);
	sqlite3_bind_double(st, 2, now_s());
	bind_text(st, 3, from >= 0 ? journal_state_name((enum journal_state)from) : NULL);
	bind_text(st, 4, journal_state_name(to));
	bind_text(st, 5, detail);
	return step_done(j, st, "recording an event", err);
}

static int begin(journal *j, cs_error *err)
{
	return exec(j, "BEGIN IMMEDIATE", "writing the journal", err);
}

static int finish(journal *j, int ret, cs_error *err)
{
	if (ret == 0)
		return exec(j, "COMMIT", "writing the journal", err);
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

int journal_card_drop(journal *j, const char *path, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "DELETE FROM card WHERE path = ?", &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, path);
	return step_done(j, st, "noting a shot brought in from the card", err);
}

static int insert_item(journal *j, const journal_item *it, long long *id,
		       cs_error *err)
{
	sqlite3_stmt *st;
	double now = now_s();
	int ret = prepare(j, "INSERT INTO items (batch_id, path, name, size, sha256, "
			  "mimetype, target, identifier, record_table, record_id, ordinal, "
			  "location, extra, state, reason, created, updated, press_source, "
			  "press_lo, press_hi, press_cam, press_res, press_bind, "
			  "press_candidates, card, sha256_taken) VALUES "
			  "(?, ?, ?, ?, ?5, ?, coalesce(?, 'catalog-number'), ?, ?, ?, ?, ?, "
			  "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?5)", &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, it->batch_id);
	bind_text(st, 2, it->path);
	bind_text(st, 3, it->name);
	sqlite3_bind_int64(st, 4, it->size);
	bind_text(st, 5, it->sha256);
	bind_text(st, 6, it->mimetype);
	bind_text(st, 7, it->target);
	bind_text(st, 8, it->identifier);
	bind_text(st, 9, it->record_table);
	bind_id(st, 10, it->record_id);
	sqlite3_bind_int(st, 11, it->ordinal);
	bind_text(st, 12, it->location);
	bind_text(st, 13, it->extra);
	bind_text(st, 14, journal_state_name(it->state));
	bind_text(st, 15, it->reason);
	sqlite3_bind_double(st, 16, now);
	sqlite3_bind_double(st, 17, now);
	bind_press(st, 18, &it->press);
	bind_text(st, 25, it->card);
	if ((ret = step_done(j, st, "adding a file to the journal", err)))
		return ret;
	*id = sqlite3_last_insert_rowid(j->db);
	if ((ret = add_event(j, *id, -1, it->state, it->reason, err)) == 0 && it->card)
		ret = journal_card_drop(j, it->card, err);  /* settled */
	return ret;
}

int journal_items_add(journal *j, const journal_item *items, size_t n,
		      long long *ids, cs_error *err)
{
	int ret = begin(j, err);

	for (size_t i = 0; ret == 0 && i < n; i++) {
		long long id = 0;
		ret = insert_item(j, &items[i], &id, err);
		if (ids)
			ids[i] = id;
	}
	return finish(j, ret, err);
}

int journal_item_add(journal *j, const journal_item *it, long long *id,
		     cs_error *err)
{
	return journal_items_add(j, it, 1, id, err);
}

int journal_find_attached(journal *j, const char *table, long long record_id,
			  const char *sha256, const char *name, long long except,
			  bool (*gone)(void *ud, long long join_id), void *ud,
			  long long *batch, bool *same_content, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT batch_id, sha256 IS ?1, join_id FROM items WHERE "
			  "record_table = ?2 AND record_id = ?3 AND state = 'attached' "
			  "AND batch_id IS NOT ?4 AND (sha256 = ?1 OR name = ?5) "
			  "ORDER BY sha256 IS ?1 DESC, id DESC", &st, err);

	*batch = 0;
	*same_content = false;
	if (ret)
		return ret;
	bind_text(st, 1, sha256);
	bind_text(st, 2, table);
	sqlite3_bind_int64(st, 3, record_id);
	sqlite3_bind_int64(st, 4, except);
	bind_text(st, 5, name);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (gone && gone(ud, sqlite3_column_int64(st, 2)))
			continue;
		*batch = sqlite3_column_int64(st, 0);
		*same_content = sqlite3_column_int(st, 1) != 0;
		break;
	}
	sqlite3_finalize(st);
	return 0;
}

int journal_find_content(journal *j, long long batch, const char *sha256,
			 char **name, long long *found, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT name, batch_id FROM items WHERE (sha256 = ?2 OR "
			  "sha256_taken = ?2) AND (batch_id = ?1 OR state NOT IN ('failed', "
			  "'rolled_back')) ORDER BY batch_id = ?1 DESC, id LIMIT 1", &st, err);

	*name = NULL;
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	bind_text(st, 2, sha256);
	if (sqlite3_step(st) != SQLITE_ROW)
		ret = cs_error_set(err, CS_E_NOT_FOUND, "no such content");
	else if (!(*name = col_text(st, 0)))
		ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
	else
		*found = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	return ret;
}

bool journal_knows_content(journal *j, const char *sha256)
{
	sqlite3_stmt *st;
	bool known = false;

	if (prepare(j, "SELECT 1 FROM items WHERE (sha256 = ?1 OR sha256_taken = ?1) "
		    "AND state NOT IN ('failed', 'rolled_back') LIMIT 1", &st, NULL))
		return false;
	bind_text(st, 1, sha256);
	known = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return known;
}

/* Whether host's process pid is another process that may still be at
 * work: not this one, and not one of this computer that is gone (another
 * computer's cannot be asked). */
static bool other_process(const journal *j, const char *host, int pid)
{
	if (!host || pid == j->pid)
		return false;
	return strcmp(host, j->host) != 0 || kill(pid, 0) == 0 || errno != ESRCH;
}

/* --- files sent ahead of their batch ------------------------------------------ */

int journal_ahead_add(journal *j, const char *server, const char *location,
		      cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "INSERT OR REPLACE INTO ahead (location, server, host, "
			  "pid, sent) VALUES (?, ?, ?, ?, ?)", &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, location);
	bind_text(st, 2, server);
	bind_text(st, 3, j->host);
	sqlite3_bind_int(st, 4, j->pid);
	sqlite3_bind_double(st, 5, now_s());
	return step_done(j, st, "noting a file sent ahead", err);
}

int journal_ahead_each(journal *j, const char *server,
		       int (*fn)(void *ud, const char *location), void *ud,
		       cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT location, host, pid FROM ahead WHERE server = ? "
			  "AND NOT EXISTS (SELECT 1 FROM items WHERE items.location = "
			  "ahead.location) ORDER BY sent", &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, server);
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *location = (const char *)sqlite3_column_text(st, 0);
		/* Another live process may still journal it. */
		if (location && !other_process(j, (const char *)sqlite3_column_text(st, 1),
					       sqlite3_column_int(st, 2)))
			ret = fn(ud, location);
	}
	sqlite3_finalize(st);
	return ret;
}

int journal_ahead_forget_taken(journal *j, cs_error *err)
{
	return exec(j, "DELETE FROM ahead WHERE EXISTS (SELECT 1 FROM items WHERE "
		    "items.location = ahead.location)", "forgetting files sent ahead", err);
}

int journal_ahead_remove(journal *j, const char *location, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "DELETE FROM ahead WHERE location = ?", &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, location);
	return step_done(j, st, "forgetting a file sent ahead", err);
}

int journal_item_get(journal *j, long long id, journal_item *out, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT " ITEM_COLUMNS " FROM items WHERE id = ?", &st, err);

	memset(out, 0, sizeof *out);
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW)
		read_item(st, out);
	else
		ret = cs_error_set(err, CS_E_NOT_FOUND, "no item %lld in the journal", id);
	sqlite3_finalize(st);
	return ret;
}

static int update_one(journal *j, const journal_item *it, enum journal_state from,
		      cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "UPDATE items SET identifier = ?, record_table = ?, "
			  "record_id = ?, ordinal = ?, location = ?, join_id = ?, "
			  "attachment_id = ?, extra = ?, state = ?, reason = ?, "
			  "attempts = ?, next_try = ?, updated = ?, "
			  /* A file named anew or rewritten (the EXIF stamp); an
			   * item without a path leaves the file's fields alone. */
			  "path = COALESCE(?16, path), name = COALESCE(?17, name), "
			  "sha256 = COALESCE(?18, sha256), "
			  "size = CASE WHEN ?16 IS NULL THEN size ELSE ?19 END, "
			  "press_source = ?20, press_lo = ?21, press_hi = ?22, "
			  "press_cam = ?23, press_res = ?24, press_bind = ?25, "
			  "press_candidates = ?26 "
			  "WHERE id = ?14 AND state = ?15", &st, err);

	if (ret)
		return ret;
	bind_text(st, 16, it->path);
	bind_text(st, 17, it->name);
	bind_text(st, 18, it->sha256);
	sqlite3_bind_int64(st, 19, it->size);
	bind_press(st, 20, &it->press);
	bind_text(st, 1, it->identifier);
	bind_text(st, 2, it->record_table);
	bind_id(st, 3, it->record_id);
	sqlite3_bind_int(st, 4, it->ordinal);
	bind_text(st, 5, it->location);
	bind_id(st, 6, it->join_id);
	bind_id(st, 7, it->attachment_id);
	bind_text(st, 8, it->extra);
	bind_text(st, 9, journal_state_name(it->state));
	bind_text(st, 10, it->reason);
	sqlite3_bind_int(st, 11, it->attempts);
	sqlite3_bind_double(st, 12, it->next_try);
	sqlite3_bind_double(st, 13, now_s());
	sqlite3_bind_int64(st, 14, it->id);
	bind_text(st, 15, journal_state_name(from));
	if ((ret = step_done(j, st, "updating the journal", err)))
		return ret;
	if (sqlite3_changes(j->db) != 1)
		return cs_error_set(err, CS_E_CONFLICT, "item %lld is no longer %s: "
				    "another copystand process moved it", it->id,
				    journal_state_name(from));
	if (it->state != from)
		ret = add_event(j, it->id, (int)from, it->state, it->reason, err);
	return ret;
}

int journal_items_update(journal *j, const journal_item *items, size_t n,
			 enum journal_state from, cs_error *err)
{
	int ret = begin(j, err);

	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = update_one(j, &items[i], from, err);
	return finish(j, ret, err);
}

int journal_item_update(journal *j, const journal_item *it,
			enum journal_state from, cs_error *err)
{
	return journal_items_update(j, it, 1, from, err);
}

/* Calls fn for each item row of st, then finalizes it. */
static int each_row(sqlite3_stmt *st, int (*fn)(void *ud, const journal_item *it),
		    void *ud)
{
	int ret = 0;

	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW) {
		journal_item it;
		read_item(st, &it);
		ret = fn(ud, &it);
		journal_item_clear(&it);
	}
	sqlite3_finalize(st);
	return ret;
}

int journal_items_each(journal *j, long long batch, int state,
		       int (*fn)(void *ud, const journal_item *it), void *ud,
		       cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT " ITEM_COLUMNS " FROM items WHERE "
			  "(?1 = 0 OR batch_id = ?1) AND (?2 IS NULL OR state = ?2) "
			  "ORDER BY id", &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	bind_text(st, 2, state >= 0 ? journal_state_name((enum journal_state)state) : NULL);
	return each_row(st, fn, ud);
}

int journal_left_over(journal *j, const char *server, const char *collection,
		      long long except, int (*fn)(void *ud, const journal_item *it),
		      void *ud, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT " ITEM_COLUMNS " FROM items WHERE "
			  "state IN ('unmatched', 'ambiguous', 'failed') AND batch_id <> ?1 "
			  "AND batch_id IN (SELECT id FROM batches WHERE server = ?2 AND "
			  "collection = ?3) AND NOT EXISTS (SELECT 1 FROM items AS later "
			  "WHERE later.path = items.path AND later.id > items.id) "
			  "ORDER BY id", &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, except);
	bind_text(st, 2, server);
	bind_text(st, 3, collection);
	return each_row(st, fn, ud);
}

int journal_items_of_identifier(journal *j, const char *identifier,
				int (*fn)(void *ud, const journal_item *it),
				void *ud, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT " ITEM_COLUMNS " FROM items WHERE "
			  "identifier = ? ORDER BY id", &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, identifier);
	return each_row(st, fn, ud);
}

/* Grows *v (of *cap elements of size each) to hold one more than n. */
static int grow(void **v, size_t *cap, size_t n, size_t each, cs_error *err)
{
	void *bigger;

	if (n < *cap)
		return 0;
	if (!(bigger = realloc(*v, (*cap = *cap ? 2 * *cap : 32) * each)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	*v = bigger;
	return 0;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int journal_paths_in(journal *j, const char *dir, char ***paths, size_t *n,
		     cs_error *err)
{
	sqlite3_stmt *st;
	size_t len = strlen(dir), cap = 0;
	int ret = prepare(j, "SELECT path FROM items WHERE substr(path, 1, ?) = ? "
			  "AND instr(substr(path, ? + 1), '/') = 0", &st, err);

	*paths = NULL;
	*n = 0;
	if (ret)
		return ret;
	/* dir + "/" + a name without a slash: the folder's own files. */
	char *prefix = NULL;
	if (asprintf(&prefix, "%s/", dir) < 0) {
		sqlite3_finalize(st);
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)len + 1);
	bind_text(st, 2, prefix);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)len + 1);
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW &&
	       (ret = grow((void **)paths, &cap, *n, sizeof **paths, err)) == 0) {
		if (!((*paths)[*n] = col_text(st, 0)))
			ret = cs_error_set(err, CS_E_NOMEM, "out of memory");
		else
			(*n)++;
	}
	sqlite3_finalize(st);
	free(prefix);
	if (ret) {
		journal_paths_free(*paths, *n);
		*paths = NULL;
		*n = 0;
		return ret;
	}
	if (*n)
		qsort(*paths, *n, sizeof **paths, cmp_path);
	return 0;
}

bool journal_paths_have(char *const *paths, size_t n, const char *path)
{
	return n && bsearch(&path, paths, n, sizeof *paths, cmp_path);
}

void journal_paths_free(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* --- stations --------------------------------------------------------------- */

void journal_station_clear(journal_station *st)
{
	free(st->dir);
	free(st->identifier);
	free(st->last_source);
	free(st->last_stem);
	*st = (journal_station){ 0 };
}

int journal_station_note(journal *j, long long batch, const char *source,
			 const char *stem, cs_error *err)
{
	sqlite3_stmt *q;
	int ret = prepare(j, "UPDATE stations SET last_source = ?, last_stem = ?, "
			  "last_at = ? WHERE batch_id = ?", &q, err);

	if (ret)
		return ret;
	bind_text(q, 1, source);
	bind_text(q, 2, stem);
	sqlite3_bind_double(q, 3, now_s());
	sqlite3_bind_int64(q, 4, batch);
	return step_done(j, q, "noting a host's file", err);
}

int journal_station_ended(journal *j, long long batch, cs_error *err)
{
	sqlite3_stmt *q;
	int ret = prepare(j, "UPDATE stations SET pid = 0 WHERE batch_id = ?", &q, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(q, 1, batch);
	return step_done(j, q, "noting that a station ended", err);
}

int journal_station_publish(journal *j, const journal_station *st, cs_error *err)
{
	sqlite3_stmt *q;
	int ret = prepare(j, "INSERT INTO stations (batch_id, host, pid, dir, "
			  "identifier, record_id, ordinal_base, updated) VALUES "
			  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (batch_id) DO UPDATE "
			  "SET host = ?2, pid = ?3, dir = ?4, identifier = ?5, "
			  "record_id = ?6, ordinal_base = ?7, updated = ?8", &q, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(q, 1, st->batch_id);
	bind_text(q, 2, j->host);
	sqlite3_bind_int(q, 3, j->pid);
	bind_text(q, 4, st->dir);
	bind_text(q, 5, st->identifier && st->identifier[0] ? st->identifier : NULL);
	bind_id(q, 6, st->record_id);
	sqlite3_bind_int(q, 7, st->ordinal_base);
	sqlite3_bind_double(q, 8, now_s());
	return step_done(j, q, "noting the station's number", err);
}

int journal_station_current(journal *j, journal_station *out, cs_error *err)
{
	sqlite3_stmt *q;
	int ret = prepare(j, "SELECT batch_id, host, pid, dir, identifier, record_id, "
			  "ordinal_base, updated, last_source, last_stem, last_at "
			  "FROM stations ORDER BY updated DESC", &q, err);

	*out = (journal_station){ 0 };
	if (ret)
		return ret;
	ret = cs_error_set(err, CS_E_NOT_FOUND, "no copystand station has run for this "
			   "user: start one (copystand station) and scan a label");
	/* The newest live station of this computer, else the newest. */
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *host = (const char *)sqlite3_column_text(q, 1);
		int pid = sqlite3_column_int(q, 2);
		/* pid 0: the station ended; else it runs while its process does. */
		bool live = host && !strcmp(host, j->host) && pid > 0 &&
			(kill(pid, 0) == 0 || errno != ESRCH);
		if (ret == 0 && !live)
			continue;
		journal_station_clear(out);
		out->batch_id = sqlite3_column_int64(q, 0);
		out->dir = col_text(q, 3);
		out->identifier = col_text(q, 4);
		out->record_id = sqlite3_column_int64(q, 5);
		out->ordinal_base = sqlite3_column_int(q, 6);
		out->last_source = col_text(q, 8);
		out->last_stem = col_text(q, 9);
		out->last_at = sqlite3_column_double(q, 10);
		out->live = live;
		ret = out->dir ? 0 : cs_error_set(err, CS_E_NOMEM, "out of memory");
		if (live)
			break;
	}
	sqlite3_finalize(q);
	return ret;
}

/* A lease on this host by a process that is gone is no lease. */
static bool lease_is_live(journal *j, sqlite3_stmt *st, double now,
			  double lease_until)
{
	return lease_until >= now &&
	       other_process(j, (const char *)sqlite3_column_text(st, 20),
			     sqlite3_column_int(st, 21));
}

int journal_items_due(journal *j, const char *server, const char *collection,
		      long long collection_id, enum journal_state state,
		      double now, size_t max,
		      journal_item **out, size_t *n, cs_error *err)
{
	sqlite3_stmt *st;
	journal_item *v;
	int ret;

	*out = NULL;
	*n = 0;
	if (!(v = calloc(max ? max : 1, sizeof *v)))
		return cs_error_set(err, CS_E_NOMEM, "out of memory");
	ret = prepare(j, "SELECT " ITEM_COLUMNS ", lease_until FROM items WHERE "
		      "state = ? AND next_try <= ? AND batch_id IN (SELECT id FROM "
		      "batches WHERE server = ? AND (collection = ? OR "
		      "collection_id = ?)) ORDER BY id", &st, err);
	if (ret) {
		free(v);
		return ret;
	}
	bind_text(st, 1, journal_state_name(state));
	sqlite3_bind_double(st, 2, now);
	bind_text(st, 3, server);
	bind_text(st, 4, collection);
	bind_id(st, 5, collection_id);
	while (*n < max && sqlite3_step(st) == SQLITE_ROW) {
		if (lease_is_live(j, st, now, sqlite3_column_double(st, ITEM_NCOLUMNS)))
			continue;
		read_item(st, &v[(*n)++]);
	}
	sqlite3_finalize(st);
	*out = v;
	return 0;
}

void journal_items_free(journal_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		journal_item_clear(&items[i]);
	free(items);
}

int journal_item_claim(journal *j, long long id, double lease_until,
		       int *attempts_before, cs_error *err)
{
	sqlite3_stmt *st;
	double now = now_s();
	int ret = begin(j, err);
	bool free_to_take = false;

	if (ret == 0)
		ret = prepare(j, "SELECT " ITEM_COLUMNS ", lease_until FROM items "
			      "WHERE id = ?", &st, err);
	if (ret == 0) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			free_to_take = !lease_is_live(j, st, now,
						      sqlite3_column_double(st, ITEM_NCOLUMNS));
			*attempts_before = sqlite3_column_int(st, 18);
		}
		sqlite3_finalize(st);
		if (!free_to_take)
			ret = cs_error_set(err, CS_E_CONFLICT, "item %lld is being "
					   "worked on by another process", id);
	}
	if (ret == 0)
		ret = prepare(j, "UPDATE items SET lease_host = ?, lease_pid = ?, "
			      "lease_until = ?, attempts = attempts + 1 WHERE id = ?",
			      &st, err);
	if (ret == 0) {
		bind_text(st, 1, j->host);
		sqlite3_bind_int(st, 2, j->pid);
		sqlite3_bind_double(st, 3, lease_until);
		sqlite3_bind_int64(st, 4, id);
		ret = step_done(j, st, "taking up an item", err);
	}
	return finish(j, ret, err);
}

int journal_item_release(journal *j, long long id, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "UPDATE items SET lease_host = NULL, lease_pid = NULL, "
			  "lease_until = 0 WHERE id = ? AND lease_pid = ?", &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, j->pid);
	return step_done(j, st, "releasing an item", err);
}

int journal_record_count(journal *j, const char *table, long long record_id,
			 long long *count, cs_error *err)
{
	sqlite3_stmt *st;
	/* A capture the finisher has not taken yet, a held one and a
	 * deferred RAW will take their places too. */
	int ret = prepare(j, "SELECT COUNT(*) FROM items WHERE record_table = ? AND "
			  "record_id = ? AND state IN ('captured', 'held', 'deferred', "
			  "'matched', 'reserved', 'uploaded', 'attached')", &st, err);

	if (ret)
		return ret;
	bind_text(st, 1, table);
	sqlite3_bind_int64(st, 2, record_id);
	*count = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return 0;
}

/* --- presses, scans and camera clocks ------------------------------------- */

int journal_scan_add(journal *j, long long batch, double at, const char *identifier,
		     cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "INSERT INTO scans (batch_id, at, identifier) VALUES (?, ?, ?)",
			  &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	sqlite3_bind_double(st, 2, at);
	bind_text(st, 3, identifier && identifier[0] ? identifier : NULL);
	return step_done(j, st, "noting a scan", err);
}


int journal_scans_get(journal *j, long long batch, journal_scan **out, size_t *n,
		      cs_error *err)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int ret = prepare(j, "SELECT at, identifier FROM scans WHERE batch_id = ? "
			  "ORDER BY at, id", &st, err);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW &&
	       (ret = grow((void **)out, &cap, *n, sizeof **out, err)) == 0) {
		journal_scan *s = &(*out)[(*n)++];
		s->at = sqlite3_column_double(st, 0);
		s->identifier = col_text(st, 1);
	}
	sqlite3_finalize(st);
	if (ret) {
		journal_scans_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

void journal_scans_free(journal_scan *scans, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(scans[i].identifier);
	free(scans);
}

int journal_clock_add(journal *j, long long batch, const char *source,
		      const journal_clock *c, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "INSERT INTO clocks (batch_id, source, at, lo, hi) VALUES "
			  "(?, ?, ?, ?, ?)", &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	bind_text(st, 2, source);
	sqlite3_bind_double(st, 3, c->at);
	bind_bound(st, 4, c->lo);
	bind_bound(st, 5, c->hi);
	return step_done(j, st, "noting the camera's clock", err);
}

int journal_clocks_get(journal *j, long long batch, const char *source, size_t max,
		       journal_clock **out, size_t *n, cs_error *err)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int ret = prepare(j, "SELECT at, lo, hi FROM clocks WHERE batch_id = ? AND "
			  "source = ? ORDER BY at DESC LIMIT ?", &st, err);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	bind_text(st, 2, source);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW &&
	       (ret = grow((void **)out, &cap, *n, sizeof **out, err)) == 0)
		(*out)[(*n)++] = (journal_clock){ sqlite3_column_double(st, 0),
			col_bound(st, 1, -INFINITY), col_bound(st, 2, INFINITY) };
	sqlite3_finalize(st);
	if (ret) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

/* Presses whose number is still to be decided. */
#define UNDECIDED "press_bind = 'pending' AND state IN ('captured', 'held')"

int journal_presses_pending(journal *j, int (*fn)(void *ud, long long batch,
						   const char *source),
			    void *ud, cs_error *err)
{
	sqlite3_stmt *st;
	int ret = prepare(j, "SELECT DISTINCT batch_id, press_source FROM items WHERE "
			  UNDECIDED, &st, err);

	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW)
		ret = fn(ud, sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	return ret;
}

int journal_presses_get(journal *j, long long batch, const char *source,
			size_t history, journal_item **out, size_t *n, cs_error *err)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int ret = prepare(j, "SELECT " ITEM_COLUMNS " FROM items WHERE batch_id = ?1 AND "
			  "press_source = ?2 AND id >= COALESCE((SELECT id FROM items WHERE "
			  "batch_id = ?1 AND press_source = ?2 AND id < COALESCE((SELECT "
			  "MIN(id) FROM items WHERE batch_id = ?1 AND press_source = ?2 AND "
			  UNDECIDED "), (SELECT MAX(id) + 1 FROM items)) ORDER BY id DESC "
			  "LIMIT 1 OFFSET ?3), 0) ORDER BY id", &st, err);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, batch);
	bind_text(st, 2, source);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(history ? history - 1 : 0));
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW &&
	       (ret = grow((void **)out, &cap, *n, sizeof **out, err)) == 0)
		read_item(st, &(*out)[(*n)++]);
	sqlite3_finalize(st);
	if (ret) {
		journal_items_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

int journal_card_add(journal *j, const journal_card *c, cs_error *err)
{
	sqlite3_stmt *st;
	/* A file announced again (a reconnect lists the card anew) is noted
	 * once. */
	int ret = prepare(j, "INSERT INTO card (batch_id, source, path, identifier, announced) "
			  "SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS "
			  "(SELECT 1 FROM card WHERE path = ?3 AND source = ?2)", &st, err);

	if (ret)
		return ret;
	sqlite3_bind_int64(st, 1, c->batch_id);
	bind_text(st, 2, c->source);
	bind_text(st, 3, c->path);
	bind_text(st, 4, c->identifier && c->identifier[0] ? c->identifier : NULL);
	sqlite3_bind_double(st, 5, c->announced);
	return step_done(j, st, "noting a shot on the camera's card", err);
}

int journal_cards_get(journal *j, journal_card **out, size_t *n, cs_error *err)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int ret = prepare(j, "SELECT batch_id, source, path, identifier, announced FROM card "
			  "ORDER BY announced, id", &st, err);

	*out = NULL;
	*n = 0;
	if (ret)
		return ret;
	while (ret == 0 && sqlite3_step(st) == SQLITE_ROW &&
	       (ret = grow((void **)out, &cap, *n, sizeof **out, err)) == 0) {
		journal_card *c = &(*out)[(*n)++];
		c->batch_id = sqlite3_column_int64(st, 0);
		c->source = col_text(st, 1);
		c->path = col_text(st, 2);
		c->identifier = col_text(st, 3);
		c->announced = sqlite3_column_double(st, 4);
	}
	sqlite3_finalize(st);
	if (ret) {
		journal_cards_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return ret;
}

void journal_cards_free(journal_card *cards, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(cards[i].source);
		free(cards[i].path);
		free(cards[i].identifier);
	}
	free(cards);
}
