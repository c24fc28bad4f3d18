/* copystand-gphoto2-hook: the program to give `gphoto2 --capture-tethered`
 * as --hook-script.  gphoto2 runs it with no arguments, ACTION (and
 * ARGUMENT) in the environment, and waits for it; on each download it
 * hands the file to the copystand station running on this computer,
 * which names it from the number current when it was shot and attaches
 * it (docs/plugins.md).  Only the public API: a copy, an fsync and a journal
 * write, no network, so gphoto2 goes back to the camera at once. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <copystand.h>

static void usage(FILE *out)
{
	fputs("usage: gphoto2 --capture-tethered --hook-script=\"$(command -v copystand-gphoto2-hook)\"\n"
	      "gphoto2 runs this program (by its full path) after each file it downloads;\n"
	      "the file goes to the copystand station running on this computer, named\n"
	      "from the catalog number current there when it was shot.  Start `copystand station\n"
	      "--no-camera` first (it leaves the camera to gphoto2) and scan labels\n"
	      "in its terminal.  See docs/plugins.md.\n", out);
}

/* ARGUMENT is the path as gphoto2 wrote it, relative to gphoto2's folder
 * (which is ours) when its --filename is. */
static char *absolute(const char *path)
{
	char *cwd, *abs = NULL;

	if (path[0] == '/')
		return strdup(path);
	if (!(cwd = getcwd(NULL, 0)))
		return NULL;
	if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		abs = NULL;
	free(cwd);
	return abs;
}

static int download(const char *argument)
{
	char err[512], *path, *name = NULL;
	const char *base;
	int ret;

	if (!argument || !*argument) {
		fputs("copystand: gphoto2 named no file (ARGUMENT is empty); nothing handed on\n",
		      stderr);
		return 1;
	}
	if (!(path = absolute(argument))) {
		fprintf(stderr, "copystand: %s: not taken, left where gphoto2 saved it: "
			"cannot tell the current folder: %s\n", argument, strerror(errno));
		return 1;
	}
	ret = copystand_submit_to_running(path, &name, err, sizeof err);
	base = strrchr(path, '/') + 1;      /* absolute: it has one */
	/* One line each: gphoto2 passes our stderr through to its own.  The
	 * station names the file from the number current at its press (its
	 * capture time), and says so on its screen. */
	if (ret == 0)
		fprintf(stderr, "copystand: %s → the station (as %s until it is named from "
			"the number current when it was shot)\n", base, name);
	else
		fprintf(stderr, "copystand: %s: not taken, left where gphoto2 saved it: %s\n",
			path, err);
	copystand_free(name);
	free(path);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *action = getenv("ACTION");

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("copystand-gphoto2-hook %s\n", copystand_version());
		return 0;
	}
	/* gphoto2 never passes arguments: this is a person trying it. */
	if (argc > 1 || !action) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(action, "download"))
		return download(getenv("ARGUMENT"));
	/* init, start, stop and actions of later gphoto2 versions: nothing to
	 * do.  A failed init would abort gphoto2, and the station may well
	 * be started after it, before the first shot. */
	return 0;
}
