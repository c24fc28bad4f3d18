/* The journal on its own: schema and migrations, transitions that only
 * happen from the expected state, events, leases, several processes. */
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "journal.h"
#include "tap.h"

static char *path_in_home(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", harness_home(), name) < 0)
		abort();
	return p;
}

static long long add(journal *j, long long batch, const char *name, enum journal_state st)
{
	journal_item it = {
		.batch_id = batch, .path = (char *)"/tmp/x.jpg", .name = (char *)name,
		.size = 10, .identifier = (char *)"000000001", .state = st,
	};
	long long id = 0;
	cs_error err;
	if (journal_item_add(j, &it, &id, &err))
		tap_diag("add: %s", err.msg);
	return id;
}

static int count_events(const char *path, long long item)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	sqlite3_open(path, &db);
	sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events WHERE item_id = ?", -1, &st, NULL);
	sqlite3_bind_int64(st, 1, item);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void test_transitions(const char *path)
{
	journal *j = NULL, *other = NULL;
	journal_item it = { 0 };
	cs_error err = { 0 };
	long long batch = 0, id;

	tap_ok(journal_open(path, &j, &err) == 0, "open a new journal: %s", err.msg);
	tap_ok(journal_open(path, &other, &err) == 0, "a second connection to it");
	tap_ok(journal_batch_new(j, "upload", "http://x", "Fish", 4, "test", &batch, &err) == 0,
	       "a batch");
	id = add(j, batch, "a.jpg", JS_MATCHED);
	tap_ok(id > 0, "an item");
	tap_ok(journal_item_get(other, id, &it, &err) == 0 && it.state == JS_MATCHED &&
	       strcmp(it.name, "a.jpg") == 0, "the other connection sees it at once");

	free(it.location);
	it.location = strdup("uuid-1.jpg");
	it.state = JS_RESERVED;
	tap_ok(journal_item_update(j, &it, JS_MATCHED, &err) == 0, "matched -> reserved");
	tap_is_int(journal_item_update(other, &it, JS_MATCHED, &err), CS_E_CONFLICT,
		   "a second move from matched is refused");
	journal_item_clear(&it);
	journal_item_get(j, id, &it, &err);
	tap_is_str(it.location, "uuid-1.jpg", "the location is stored");
	tap_is_int(count_events(path, id), 2, "two events: added, reserved");

	long long id2 = add(j, batch, "b.jpg", JS_MATCHED);
	journal_item both[2] = { 0 };
	journal_item_get(j, id2, &both[0], &err);
	journal_item_get(j, id, &both[1], &err);
	both[0].state = JS_RESERVED;
	tap_is_int(journal_items_update(j, both, 2, JS_MATCHED, &err), CS_E_CONFLICT,
		   "a group update with one stale item fails");
	journal_item fresh = { 0 };
	journal_item_get(j, id2, &fresh, &err);
	tap_is_int(fresh.state, JS_MATCHED, "and changes nothing (all or none)");
	journal_item_clear(&fresh);
	journal_item_clear(&both[0]);
	journal_item_clear(&both[1]);

	long long counts[JS_COUNT];
	journal_batch_counts(j, batch, counts, &err);
	tap_ok(counts[JS_RESERVED] == 1 && counts[JS_MATCHED] == 1, "counts per state");

	journal_item *due;
	size_t n;
	tap_ok(journal_items_due(j, "http://x", "4", 4, JS_MATCHED, 1e12, 10, &due, &n, &err) == 0 &&
	       n == 1 && due[0].id == id2, "due items by collection id");
	journal_items_free(due, n);
	journal_items_due(j, "http://y", "Fish", 4, JS_MATCHED, 1e12, 10, &due, &n, &err);
	tap_is_int((long long)n, 0, "not those of another server");
	journal_items_free(due, n);

	int before = -1;
	tap_ok(journal_item_claim(j, id2, 1e12, &before, &err) == 0 && before == 0,
	       "claim an item (first attempt)");
	tap_ok(journal_item_claim(j, id2, 1e12, &before, &err) == 0 && before == 1,
	       "this process may take it up again (attempt counted)");
	journal_item_clear(&it);
	journal_close(j);
	journal_close(other);
}

/* A lease held by a process that is gone does not block the item. */
static void test_dead_lease(const char *path)
{
	journal *j = NULL;
	cs_error err;
	int before;
	pid_t pid;
	long long batch, id;

	journal_open(path, &j, &err);
	journal_batch_new(j, "upload", "http://z", "Fish", 4, NULL, &batch, &err);
	id = add(j, batch, "c.jpg", JS_RESERVED);
	pid = fork();
	if (pid == 0) {
		journal *mine;
		journal_open(path, &mine, &err);
		_exit(journal_item_claim(mine, id, 1e12, &before, &err) == 0 ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a child process claims an item");
	tap_ok(journal_item_claim(j, id, 1e12, &before, &err) == 0 && before == 1,
	       "the child is gone, so its lease is too");

	/* A live process's lease holds. */
	id = add(j, batch, "d.jpg", JS_RESERVED);
	int gate[2];
	if (pipe(gate))
		abort();
	pid = fork();
	if (pid == 0) {
		journal *mine;
		journal_open(path, &mine, &err);
		journal_item_claim(mine, id, 1e12, &before, &err);
		if (write(gate[1], "x", 1) != 1)
			_exit(1);
		pause();  /* alive, holding the lease, until killed */
		_exit(0);
	}
	char c;
	if (read(gate[0], &c, 1) != 1)
		abort();
	tap_is_int(journal_item_claim(j, id, 1e12, &before, &err), CS_E_CONFLICT,
		   "a live process's lease is respected");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	journal_close(j);
}

static void test_newer_schema(const char *path)
{
	sqlite3 *db;
	journal *j = NULL;
	cs_error err = { 0 };

	sqlite3_open(path, &db);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	tap_is_int(journal_open(path, &j, &err), CS_E_CONFIG, "a journal from a newer copystand");
	tap_ok(strstr(err.msg, "newer copystand") != NULL, "says so: %s", err.msg);
	journal_close(j);
}

static void test_no_secrets(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	bool clean = true;

	sqlite3_open(path, &db);
	sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL", -1, &st, NULL);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *sql = (const char *)sqlite3_column_text(st, 0);
		if (strstr(sql, "password") || strstr(sql, "token") || strstr(sql, "cookie"))
			clean = false;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	tap_ok(clean, "the schema has no place for passwords, tokens or cookies");
}

/* A file a camera announced stays listed until an item with its card
 * path is journaled (in the same transaction), or it is dropped. */
static void test_card(const char *path)
{
	journal *j = NULL;
	journal_card *cards = NULL;
	size_t n = 0;
	cs_error err = { 0 };
	long long batch = 0, id = 0;
	journal_card a = { .source = (char *)"Canon EOS R5", .path = (char *)"/DCIM/IMG_0001.JPG",
			   .identifier = (char *)"000000009", .announced = 100 };
	journal_card b = { .source = (char *)"Canon EOS R5", .path = (char *)"/DCIM/IMG_0002.JPG",
			   .announced = 101 };

	if (!tap_ok(journal_open(path, &j, &err) == 0, "card: open: %s", err.msg))
		return;
	journal_batch_new(j, "station", "http://x", "Fish", 4, "test", &batch, &err);
	a.batch_id = b.batch_id = batch;
	tap_ok(journal_card_add(j, &a, &err) == 0 && journal_card_add(j, &b, &err) == 0 &&
	       journal_card_add(j, &a, &err) == 0, "two files announced, one twice");
	tap_ok(journal_cards_get(j, &cards, &n, &err) == 0 && n == 2 &&
	       !strcmp(cards[0].path, a.path) && !strcmp(cards[0].identifier, "000000009") &&
	       !cards[1].identifier && cards[0].batch_id == batch,
	       "listed once each, oldest first, with the number fired for");
	journal_cards_free(cards, n);

	journal_item it = { .batch_id = batch, .path = (char *)"/tmp/IMG_0001.JPG",
			    .name = (char *)"IMG_0001.JPG", .state = JS_CAPTURED,
			    .card = (char *)a.path };
	tap_ok(journal_item_add(j, &it, &id, &err) == 0, "the file is journaled");
	journal_item got = { 0 };
	tap_ok(journal_item_get(j, id, &got, &err) == 0 && got.card && !strcmp(got.card, a.path),
	       "the item keeps its card path");
	journal_item_clear(&got);
	tap_ok(journal_cards_get(j, &cards, &n, &err) == 0 && n == 1 &&
	       !strcmp(cards[0].path, b.path), "which settles its card entry");
	journal_cards_free(cards, n);
	tap_ok(journal_card_drop(j, b.path, &err) == 0 &&
	       journal_cards_get(j, &cards, &n, &err) == 0 && n == 0, "a lost one is dropped");
	journal_cards_free(cards, n);
	journal_close(j);
}

/* journal_find_content: the first item of a batch with those bytes, else
 * one of another batch that has not failed. */
static void test_find_content(const char *path)
{
	journal *j = NULL;
	cs_error err = { 0 };
	long long b1 = 0, b2 = 0, found = 0;
	char *name = NULL;
	const char *sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

	if (!tap_ok(journal_open(path, &j, &err) == 0 &&
		    journal_batch_new(j, "station", "http://x", "Fish", 4, "s1", &b1, &err) == 0 &&
		    journal_batch_new(j, "station", "http://x", "Fish", 4, "s2", &b2, &err) == 0,
		    "two batches: %s", err.msg))
		goto out;
	journal_item it = {
		.batch_id = b1, .path = (char *)"/tmp/c.jpg", .name = (char *)"000000001.jpg",
		.size = 4, .sha256 = (char *)sha, .state = JS_CAPTURED,
	};
	long long id;
	tap_ok(journal_item_add(j, &it, &id, &err) == 0, "an item with its hash: %s", err.msg);
	it.name = (char *)"000000001_2.jpg";
	journal_item_add(j, &it, &id, &err);
	int ret = journal_find_content(j, b1, sha, &name, &found, &err);
	tap_ok(ret == 0 && name && strcmp(name, "000000001.jpg") == 0 && found == b1,
	       "found in its batch, the first (%s)", name ? name : err.msg);
	free(name);
	ret = journal_find_content(j, b2, sha, &name, &found, &err);
	tap_ok(ret == 0 && name && !strcmp(name, "000000001.jpg") && found == b1,
	       "and from another batch, as that batch's (%s)", name ? name : err.msg);
	free(name);
	tap_is_int(journal_find_content(j, b1, "00", &name, &found, &err), CS_E_NOT_FOUND,
		   "other bytes are not found");
	tap_ok(name == NULL, "and no name");
	journal_item gaveup = it;
	gaveup.name = (char *)"000000002.jpg";
	gaveup.sha256 = (char *)"77";
	gaveup.state = JS_FAILED;
	journal_item_add(j, &gaveup, NULL, &err);
	tap_is_int(journal_find_content(j, b2, "77", &name, &found, &err), CS_E_NOT_FOUND,
		   "a failed item is not found from another batch");
	ret = journal_find_content(j, b1, "77", &name, &found, &err);
	tap_ok(ret == 0 && name && !strcmp(name, "000000002.jpg"), "but is from its own");
	free(name);
	/* The station stamps its copy: other bytes, the same shot. */
	journal_item got = { 0 };
	journal_item_get(j, id, &got, &err);
	free(got.sha256);
	got.sha256 = strdup("5a3b");
	tap_ok(journal_item_update(j, &got, got.state, &err) == 0, "its copy stamped: %s", err.msg);
	journal_item_clear(&got);
	ret = journal_find_content(j, b1, "5a3b", &name, &found, &err);
	tap_ok(ret == 0 && name && !strcmp(name, "000000001_2.jpg"), "found by the bytes it has now");
	free(name);
	ret = journal_find_content(j, b1, sha, &name, &found, &err);
	tap_ok(ret == 0 && name, "and still by the bytes it was taken with");
	free(name);
	tap_ok(journal_knows_content(j, sha) && journal_knows_content(j, "5a3b"),
	       "both are known content");
out:
	journal_close(j);
}

/* Opening a current journal only reads it: it neither writes nor waits
 * for a connection in the middle of a write (a station's transaction
 * while a hook or a worker opens it). */
static void test_open_reads(const char *path)
{
	journal *j = NULL;
	sqlite3 *db = NULL;
	cs_error err = { 0 };

	journal_open(path, &j, &err);
	journal_close(j);
	j = NULL;
	sqlite3_open(path, &db);
	tap_ok(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK,
	       "another connection holds the write lock");
	int rc = journal_open(path, &j, &err);
	tap_ok(rc == 0, "the journal opens all the same%s%s", rc ? ": " : "", rc ? err.msg : "");
	journal_close(j);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

struct seen {
	char list[256];
};

static int note_ahead(void *ud, const char *location)
{
	struct seen *s = ud;
	size_t n = strlen(s->list);

	snprintf(s->list + n, sizeof s->list - n, "%s%s", n ? " " : "", location);
	return 0;
}

/* Files sent ahead of their batch: this process's and a dead one's are
 * visited (to be deleted, or forgotten where an item took the location), a
 * live process's are not; removed ones are gone. */
static void test_ahead(const char *path)
{
	journal *j = NULL;
	cs_error err = { 0 };
	struct seen seen = { "" };
	long long batch;
	int gate[2], status;
	pid_t dead, live;

	if (!tap_ok(journal_open(path, &j, &err) == 0 &&
		    journal_batch_new(j, "upload", "http://a", "Fish", 4, NULL, &batch, &err) == 0,
		    "a journal: %s", err.msg))
		goto out;
	tap_ok(journal_ahead_add(j, "http://a", "mine.jpg", &err) == 0 &&
	       journal_ahead_add(j, "http://a", "kept.jpg", &err) == 0 &&
	       journal_ahead_add(j, "http://b", "other-server.jpg", &err) == 0,
	       "three files noted as sent ahead: %s", err.msg);
	journal_item it = {
		.batch_id = batch, .path = (char *)"/tmp/k.jpg", .name = (char *)"k.jpg",
		.location = (char *)"kept.jpg", .state = JS_UPLOADED,
	};
	long long id;
	journal_item_add(j, &it, &id, &err);
	if ((dead = fork()) == 0) {
		journal *mine;
		_exit(journal_open(path, &mine, &err) ||
		      journal_ahead_add(mine, "http://a", "dead.jpg", &err) ? 1 : 0);
	}
	waitpid(dead, &status, 0);
	if (pipe(gate))
		abort();
	if ((live = fork()) == 0) {
		journal *mine;
		char c = journal_open(path, &mine, &err) ||
			 journal_ahead_add(mine, "http://a", "live.jpg", &err) ? '1' : '0';
		if (write(gate[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c = 0;
	if (read(gate[0], &c, 1) != 1)
		abort();
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && c == '0',
	       "and one by a process now gone, one by a process still running");
	tap_ok(journal_ahead_each(j, "http://a", note_ahead, &seen, &err) == 0,
	       "walked: %s", err.msg);
	tap_is_str(seen.list, "mine.jpg dead.jpg",
		   "this process's and the gone one's of this server, not one an item took");
	journal_ahead_remove(j, "mine.jpg", &err);
	seen.list[0] = '\0';
	journal_ahead_each(j, "http://a", note_ahead, &seen, &err);
	tap_is_str(seen.list, "dead.jpg", "a removed one is gone");
	kill(live, SIGKILL);
	waitpid(live, &status, 0);
	seen.list[0] = '\0';
	journal_ahead_each(j, "http://a", note_ahead, &seen, &err);
	tap_is_str(seen.list, "dead.jpg live.jpg", "the running one's once it is gone");
	tap_ok(journal_ahead_forget_taken(j, &err) == 0 &&
	       journal_ahead_remove(j, "dead.jpg", &err) == 0 &&
	       journal_ahead_remove(j, "live.jpg", &err) == 0 &&
	       journal_ahead_remove(j, "other-server.jpg", &err) == 0, "forgotten: %s", err.msg);
	sqlite3 *db;
	sqlite3_stmt *q;
	sqlite3_open(path, &db);
	sqlite3_prepare_v2(db, "SELECT count(*) FROM ahead", -1, &q, NULL);
	tap_is_int(sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1, 0,
		   "the one an item took went with the others (one statement)");
	sqlite3_finalize(q);
	sqlite3_close(db);
	it = (journal_item){ .batch_id = batch, .path = (char *)"/tmp/a.jpg",
			     .name = (char *)"a.jpg", .sha256 = (char *)"c0ffee",
			     .state = JS_ATTACHED };
	journal_item_add(j, &it, &id, &err);
	it.sha256 = (char *)"fa11ed";
	it.state = JS_FAILED;
	journal_item_add(j, &it, &id, &err);
	tap_ok(journal_knows_content(j, "c0ffee"), "attached content is known");
	tap_ok(!journal_knows_content(j, "fa11ed"), "failed content is not (it may be sent again)");
	tap_ok(!journal_knows_content(j, "ab"), "nor content never journaled");
	close(gate[0]);
	close(gate[1]);
out:
	journal_close(j);
}

int main(void)
{
	char *p1 = path_in_home("j1.sqlite"), *p2 = path_in_home("j2.sqlite");

	test_transitions(p1);
	test_no_secrets(p1);
	test_dead_lease(p1);
	test_newer_schema(p2);
	test_card(p1);
	test_find_content(p1);
	test_ahead(p1);
	test_open_reads(p1);
	free(p1);
	free(p2);
	harness_cleanup();
	return tap_done();
}
