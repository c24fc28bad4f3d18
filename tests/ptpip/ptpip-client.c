#include "ptpip-client.h"

#include <zlib.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Generous: the emulator may run under ASan on a busy machine, and a
 * crc32 of a large object takes a while. */
#define REPLY_TIMEOUT_MS 60000

struct ptpip_cam {
	pid_t pid;
	int keepalive;          /* write end of the child's stdin */
	int control;            /* connected control socket, or -1 */
	/* Private directory holding the socket "control". */
	char dir[sizeof ((struct sockaddr_un *)0)->sun_path - sizeof "/control"];
	char socket_path[sizeof ((struct sockaddr_un *)0)->sun_path];
	char port_path[48];
};

/* Reads until a newline arrives (within the deadline); returns the line,
 * malloc'd, without it. */
static char *read_line(int fd, int timeout_ms)
{
	size_t len = 0, cap = 256;
	char *line = malloc(cap), *grown;

	while (line) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;
		if (len + 1 == cap) {
			if (!(grown = realloc(line, cap *= 2)))
				break;
			line = grown;
		}
		if (poll(&p, 1, timeout_ms) <= 0 || (r = read(fd, line + len, 1)) <= 0)
			break;
		if (line[len] == '\n') {
			line[len] = '\0';
			return line;
		}
		len++;
	}
	free(line);
	return NULL;
}

static int connect_control(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void spawn(ptpip_cam *cam, const char *exe, const char *const *args, int in, int out)
{
	const char *argv[32];
	size_t n = 0;

	argv[n++] = exe;
	argv[n++] = "--control";
	argv[n++] = cam->socket_path;
	for (; args && *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	/* The pipes may sit on 0 or 1 themselves (libgphoto2 closes fd 0, see
	 * README.md): move them out of the way before putting them in place. */
	in = fcntl(in, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	out = fcntl(out, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	dup2(in, STDIN_FILENO);
	dup2(out, STDOUT_FILENO);
	/* Sockets the parent holds (libgphoto2's are not close-on-exec) must
	 * not outlive it in the camera, or their peers never see them close. */
	closefrom(STDERR_FILENO + 1);
	execv(exe, (char **)argv);
	fprintf(stderr, "ptpip-client: cannot run %s: %s\n", exe, strerror(errno));
	_exit(127);
}

/* Waits for "READY <port>" and connects to the control socket. */
static int handshake(ptpip_cam *cam, int out)
{
	char *ready = read_line(out, REPLY_TIMEOUT_MS);
	int port, ok = ready && sscanf(ready, "READY %d", &port) == 1;

	free(ready);
	if (!ok) {
		fprintf(stderr, "ptpip-client: the camera did not get ready (see above)\n");
		return -1;
	}
	snprintf(cam->port_path, sizeof cam->port_path, "ptpip:127.0.0.1:%d:%d", port, port);
	if ((cam->control = connect_control(cam->socket_path)) < 0) {
		fprintf(stderr, "ptpip-client: cannot connect to %s: %s\n",
			cam->socket_path, strerror(errno));
		return -1;
	}
	return 0;
}

ptpip_cam *ptpip_cam_start(const char *exe, const char *const *args)
{
	const char *tmp = getenv("TMPDIR");
	ptpip_cam *cam = calloc(1, sizeof *cam);
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, ret = -1;

	if (!cam)
		return NULL;
	cam->keepalive = cam->control = -1;
	snprintf(cam->dir, sizeof cam->dir, "%s/ptpip-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(cam->dir) || pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
		fprintf(stderr, "ptpip-client: %s: %s\n", cam->dir, strerror(errno));
		cam->dir[0] = '\0';
		goto out;
	}
	snprintf(cam->socket_path, sizeof cam->socket_path, "%s/control", cam->dir);
	if ((cam->pid = fork()) == 0)
		spawn(cam, exe, args, in[0], out[1]);
	cam->keepalive = in[1];
	in[1] = -1;
	if (cam->pid > 0) {
		close(out[1]);
		out[1] = -1;
		ret = handshake(cam, out[0]);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	if (ret) {
		ptpip_cam_stop(cam);
		return NULL;
	}
	return cam;
}

/* Up to ten seconds for the child to exit by itself. */
static int reap(pid_t pid, int *status)
{
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return r == pid ? 0 : -1;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	return -1;
}

int ptpip_cam_stop(ptpip_cam *cam)
{
	int status = 0, ret = -1;

	if (!cam)
		return -1;
	if (cam->control >= 0)
		close(cam->control);
	if (cam->keepalive >= 0)
		close(cam->keepalive);
	if (cam->pid > 0) {
		if (reap(cam->pid, &status) == 0)
			ret = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		else if (kill(cam->pid, SIGKILL) == 0)
			waitpid(cam->pid, &status, 0);
	}
	if (cam->dir[0]) {
		unlink(cam->socket_path);       /* left behind only if it was killed */
		rmdir(cam->dir);
	}
	free(cam);
	return ret;
}

pid_t ptpip_cam_pid(const ptpip_cam *cam)
{
	return cam->pid;
}

const char *ptpip_cam_port_path(const ptpip_cam *cam)
{
	return cam->port_path;
}

char *ptpip_cam_control(ptpip_cam *cam, const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int n;
	bool sent;

	va_start(ap, fmt);
	n = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	cmd[n] = '\n';          /* replaces the NUL: the line is sent by length */
	sent = send(cam->control, cmd, (size_t)n + 1, MSG_NOSIGNAL) == n + 1;
	free(cmd);
	return sent ? read_line(cam->control, REPLY_TIMEOUT_MS) : NULL;
}

unsigned long ptpip_crc_of_file(const char *path)
{
	static unsigned char chunk[1 << 16];
	uLong crc = crc32(0, Z_NULL, 0);
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		crc = crc32(crc, chunk, (uInt)n);
	fclose(f);
	return crc;
}

long ptpip_cam_listed(ptpip_cam *cam, const char *name, unsigned long long *size)
{
	char *reply = ptpip_cam_control(cam, "list"), *save = NULL;
	long handle = -1;

	for (char *w = reply ? strtok_r(reply, " ", &save) : NULL; w; w = strtok_r(NULL, " ", &save)) {
		char file[64];
		long h;
		unsigned long long sz;
		if (sscanf(w, "%ld:%63[^:]:%llu", &h, file, &sz) == 3 && !strcmp(file, name)) {
			handle = h;
			if (size)
				*size = sz;
		}
	}
	free(reply);
	return handle;
}
