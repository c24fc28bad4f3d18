/* Shared setup for copystand's integration tests: a throw-away HOME, the
 * Specify to test against (the stand-in, or a real server named by
 * COPYSTAND_TEST_SERVER), scratch files and running the copystand binary. */
#ifndef COPYSTAND_HARNESS_H
#define COPYSTAND_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pipeline.h"
#include "specify.h"
#include "standin.h"

typedef struct harness_server {
	const char *url;
	const char *user;
	const char *password;
	const char *collection;
	standin *standin;       /* NULL against a real server */
} harness_server;

/* Seconds on the monotonic clock, for deadlines and durations. */
double harness_now(void);

/* Makes a fresh HOME and XDG dirs under a temporary directory, removed by
 * harness_cleanup(); returns that directory. */
const char *harness_home(void);
void harness_cleanup(void);

/* The server for this test: COPYSTAND_TEST_SERVER (+ _USER, _PASSWORD,
 * _COLLECTION) if set, else a new stand-in started with args. */
int harness_server_start(harness_server *hs, const char *const *standin_args);
void harness_server_stop(harness_server *hs);

/* For tests that read what Specify holds from the stand-in's state:
 * harness_home() and harness_server_start(); NULL, or why the test
 * cannot run (for tap_skip_all; HOME is then cleaned up already). */
const char *harness_standin_start(harness_server *hs);

/* The stand-in's attachment of collection object record whose file is
 * name (NULL: any) (a copy to cJSON_Delete, or NULL); *count (may be NULL)
 * gets how many there are. */
cJSON *harness_attachment_of(const harness_server *hs, const char *name,
			     long long record, int *count);

/* Logs in to hs with its default credentials. */
int harness_login(const harness_server *hs, specify_session **out, cs_error *err);

/* Writes size pseudo-random bytes (seeded) to a new file under HOME. */
char *harness_make_file(const char *name, size_t size, unsigned seed);

/* Runs another program (argv[0], found on PATH); its standard output,
 * without the last line ends, goes to *out (malloc'd; out may be NULL),
 * its standard error passes through.  The exit status, or -1. */
int harness_run_program(const char *const *argv, char **out);

/* Runs the copystand binary with argv (NULL-terminated) and extra
 * "NAME=value" environment entries; captures stdout and stderr together
 * (malloc'd into *output) and returns the exit status (-1 on failure). */
int harness_run(const char *const *argv, const char *const *env, char **output);

/* Like harness_run, but on a pseudo-terminal (a person at a terminal):
 * input is typed into it at once. */
int harness_run_pty(const char *const *argv, const char *const *env,
		    const char *input, char **output);

/* Starts the copystand binary like harness_run, without waiting; its
 * output goes to the test's stderr.  Returns the pid, -1 on failure. */
int harness_spawn(const char *const *argv, const char *const *env);

/* Forks a child process that drains a journal batch into hs with the
 * pipeline (tuning: max_inflight and retry delays, or NULL) and exits 0
 * when every item is final; returns its pid. */
pid_t harness_fork_drain(const harness_server *hs, const char *journal_path,
			 long long batch, const pipeline_options *tuning);

/* The names in dir, dot files included, space-separated and sorted
 * (malloc'd; "" for an empty or missing folder). */
char *harness_dir_names(const char *dir);
/* True when dir holds exactly the names want ("a b c", sorted); says what
 * it holds otherwise (a TAP diagnostic). */
bool harness_dir_is(const char *dir, const char *want);

/* True when both files have the same bytes. */
bool harness_same_file(const char *a, const char *b);

#endif
