/* copystand: photograph specimens and attach the images to Specify 7. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "station", cmd_station, "tethered shooting: scan, shoot, attached at once" },
	{ "check", cmd_check, "log in and check the Specify and asset-server setup" },
	{ "names", cmd_names, "show the identifier each file name resolves to" },
	{ "upload", cmd_upload, "attach a folder of captures to their records" },
	{ "batches", cmd_batches, "list upload batches with their counts" },
	{ "rollback", cmd_rollback, "remove what a batch attached" },
	{ "report", cmd_report, "an HTML contact sheet of a batch or a session folder" },
	{ "demo", cmd_demo, "attach the bundled samples to a bundled stand-in Specify" },
};

static void usage(FILE *out)
{
	fputs("usage: copystand COMMAND [options]   (copystand COMMAND --help)\n\n"
	      "commands:\n", out);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		puts("copystand " COPYSTAND_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "copystand: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
