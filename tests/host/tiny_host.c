/* A host program as a user would write one: built against the installed
 * libcopystand with nothing but `pkg-config --cflags --libs copystand`
 * (tests/test_install.sh), so it may include nothing of the source tree.
 * Needs no server nor station: giving a missing file to the running
 * station fails, with a negative code and a message. */
#include <copystand.h>
#include <stdio.h>

#if COPYSTAND_API_VERSION != 1
#error "written for version 1 of the copystand API"
#endif

int main(int argc, char **argv)
{
	char err[512] = "", *name = NULL;

	if (argc != 2) {
		fputs("usage: tiny_host MISSING-FILE\n", stderr);
		return 2;
	}
	printf("version %s\n", copystand_version());
	int rc = copystand_submit_to_running(argv[1], &name, err, sizeof err);
	printf("submit %d %s\n", rc, err);
	copystand_free(name);
	return rc < 0 && err[0] ? 0 : 1;
}
