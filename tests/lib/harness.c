#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef COPYSTAND_BINARY
#error "COPYSTAND_BINARY must name the built copystand program"
#endif

static char home[256];

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

const char *harness_home(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[300];

	if (home[0])
		return home;
	snprintf(home, sizeof home, "%s/copystand-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(home)) {
		perror("mkdtemp");
		abort();
	}
	setenv("HOME", home, 1);
	snprintf(dir, sizeof dir, "%s/.config", home);
	mkdir(dir, 0700);
	setenv("XDG_CONFIG_HOME", dir, 1);
	snprintf(dir, sizeof dir, "%s/.local/share", home);
	setenv("XDG_DATA_HOME", dir, 1);
	snprintf(dir, sizeof dir, "%s/.cache", home);
	setenv("XDG_CACHE_HOME", dir, 1);
	/* Settings from the developer's shell must not leak into tests. */
	unsetenv("COPYSTAND_SERVER");
	unsetenv("COPYSTAND_USER");
	unsetenv("COPYSTAND_COLLECTION");
	unsetenv("COPYSTAND_PASSWORD");
	unsetenv("COPYSTAND_CA_FILE");
	return home;
}

void harness_cleanup(void)
{
	if (home[0] && !getenv("COPYSTAND_KEEP_TMP"))
		nftw(home, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	home[0] = '\0';
}

int harness_server_start(harness_server *hs, const char *const *standin_args)
{
	const char *real = getenv("COPYSTAND_TEST_SERVER");
	cs_error err = { 0 };

	memset(hs, 0, sizeof *hs);
	harness_home();
	if (real && *real) {
		hs->url = real;
		hs->user = getenv("COPYSTAND_TEST_USER");
		hs->password = getenv("COPYSTAND_TEST_PASSWORD");
		hs->collection = getenv("COPYSTAND_TEST_COLLECTION");
		return 0;
	}
	if (standin_start(standin_args, &hs->standin, &err)) {
		fprintf(stderr, "# cannot start the stand-in: %s\n", err.msg);
		return -1;
	}
	hs->url = standin_url(hs->standin);
	hs->user = "spadmin";
	hs->password = "testpass";
	hs->collection = "Fish";
	return 0;
}

void harness_server_stop(harness_server *hs)
{
	standin_stop(hs->standin);
	memset(hs, 0, sizeof *hs);
}

const char *harness_standin_start(harness_server *hs)
{
	harness_home();
	if (harness_server_start(hs, NULL)) {
		harness_cleanup();
		return "no server to test against";
	}
	if (!hs->standin) {
		harness_cleanup();
		return "needs the stand-in (COPYSTAND_TEST_SERVER is set)";
	}
	return NULL;
}

cJSON *harness_attachment_of(const harness_server *hs, const char *name,
			     long long record, int *count)
{
	cJSON *st = standin_state(hs->standin), *a, *found = NULL;
	int n = 0;

	cJSON_ArrayForEach(a, cJSON_GetObjectItem(st, "attachments")) {
		const char *orig = cJSON_GetStringValue(cJSON_GetObjectItem(a, "origfilename"));
		const char *table = cJSON_GetStringValue(cJSON_GetObjectItem(a, "join_table"));
		long long rec = (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "record_id"));

		if ((name && (!orig || strcmp(orig, name))) || !table ||
		    strcmp(table, "collectionobjectattachment") || rec != record)
			continue;
		if (!n++)
			found = cJSON_Duplicate(a, true);
	}
	cJSON_Delete(st);
	if (count)
		*count = n;
	return found;
}

int harness_login(const harness_server *hs, specify_session **out, cs_error *err)
{
	specify_login login = {
		.server = hs->url, .user = hs->user, .password = hs->password,
		.collection = hs->collection,
	};
	return specify_session_login(&login, out, err);
}

char *harness_make_file(const char *name, size_t size, unsigned seed)
{
	char *path = NULL;
	FILE *f;

	if (asprintf(&path, "%s/%s", harness_home(), name) < 0)
		return NULL;
	if (!(f = fopen(path, "wb"))) {
		free(path);
		return NULL;
	}
	for (size_t i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		fputc((int)(seed >> 16) & 0xff, f);
	}
	fclose(f);
	return path;
}

/* Forks the binary with stdin from /dev/null and stdout+stderr to out_fd
 * (-1: the test's stderr). */
static pid_t spawn(const char *const *argv, const char *const *env, int out_fd)
{
	const char *args[64];
	size_t n = 0;
	pid_t pid;

	args[n++] = COPYSTAND_BINARY;
	for (; argv && *argv && n < 63; argv++)
		args[n++] = *argv;
	args[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		dup2(devnull, 0);
		dup2(out_fd >= 0 ? out_fd : 2, 1);
		dup2(out_fd >= 0 ? out_fd : 2, 2);
		/* No controlling terminal: a password prompt must not hang. */
		setsid();
		for (; env && *env; env++)
			putenv((char *)*env);
		execv(COPYSTAND_BINARY, (char **)args);
		_exit(127);
	}
	return pid;
}

int harness_spawn(const char *const *argv, const char *const *env)
{
	return spawn(argv, env, -1);
}

/* Reads fd to its end into a malloc'd string. */
static char *slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	while (buf) {
		ssize_t r;
		if (len + 1024 > cap) {
			char *p = realloc(buf, cap *= 2);
			if (!p)
				break;
			buf = p;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (buf)
		buf[len] = '\0';
	return buf;
}

int harness_run_pty(const char *const *argv, const char *const *env,
		    const char *input, char **output)
{
	const char *args[64];
	size_t n = 0;
	int master, status;
	pid_t pid;

	args[n++] = COPYSTAND_BINARY;
	for (; argv && *argv && n < 63; argv++)
		args[n++] = *argv;
	args[n] = NULL;
	pid = forkpty(&master, NULL, NULL, NULL);
	if (pid == 0) {
		for (; env && *env; env++)
			putenv((char *)*env);
		execv(COPYSTAND_BINARY, (char **)args);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	if (input && write(master, input, strlen(input)) < 0)
		perror("write to the pty");
	/* On Linux a pty master reads EIO once the child side is closed. */
	*output = slurp(master);
	close(master);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int harness_run(const char *const *argv, const char *const *env, char **output)
{
	int pipefd[2], status;
	char *buf;
	pid_t pid;

	*output = NULL;
	if (pipe(pipefd))
		return -1;
	pid = spawn(argv, env, pipefd[1]);
	close(pipefd[1]);
	buf = slurp(pipefd[0]);
	close(pipefd[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0) {
		free(buf);
		return -1;
	}
	*output = buf;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int harness_run_program(const char *const *argv, char **out)
{
	int pipefd[2], status;
	char *text;
	pid_t pid;

	if (out)
		*out = NULL;
	fflush(stdout);
	if (pipe(pipefd) < 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	text = slurp(pipefd[0]);
	close(pipefd[0]);
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !text) {
		free(text);
		return -1;
	}
	for (size_t n = strlen(text); n && (text[n - 1] == '\n' || text[n - 1] == '\r'); )
		text[--n] = '\0';
	if (out)
		*out = text;
	else
		free(text);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

pid_t harness_fork_drain(const harness_server *hs, const char *journal_path,
			 long long batch, const pipeline_options *tuning)
{
	pid_t pid = fork();

	if (pid == 0) {
		pipeline_options o = tuning ? *tuning : (pipeline_options){ 0 };
		pipeline *p;
		cs_error err;

		o.journal_path = journal_path;
		o.login = (specify_login){ .server = hs->url, .user = hs->user,
					   .password = hs->password,
					   .collection = hs->collection };
		if (pipeline_start(&o, &p, &err))
			_exit(2);
		int ret = pipeline_wait_idle(p, batch, -1, &err);
		pipeline_stop(p);
		_exit(ret ? 1 : 0);
	}
	return pid;
}

bool harness_same_file(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	int ca, cb;

	while (same) {
		ca = fgetc(fa);
		cb = fgetc(fb);
		if (ca != cb)
			same = false;
		if (ca == EOF || cb == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

char *harness_dir_names(const char *dir)
{
	struct dirent **list;
	char *names = calloc(1, 4096);
	int n = scandir(dir, &list, NULL, alphasort);

	for (int i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, ".") && strcmp(list[i]->d_name, "..") && names)
			snprintf(names + strlen(names), 4096 - strlen(names), "%s%s",
				 names[0] ? " " : "", list[i]->d_name);
		free(list[i]);
	}
	if (n >= 0)
		free(list);
	return names;
}

bool harness_dir_is(const char *dir, const char *want)
{
	double until = harness_now() + 10;
	char *names = harness_dir_names(dir);
	bool same = names && !strcmp(names, want);

	/* A file being written (a download, an EXIF stamp) shows as a
	 * hidden temporary for a moment; a leftover stays. */
	while (!same && harness_now() < until) {
		nanosleep(&(struct timespec){ .tv_nsec = 100000000 }, NULL);
		free(names);
		names = harness_dir_names(dir);
		same = names && !strcmp(names, want);
	}

	if (!same)
		printf("# %s holds \"%s\", want \"%s\"\n", dir, names ? names : "?", want);
	free(names);
	return same;
}

double harness_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
