/* copystand check: log in, show what a technician needs to know is right,
 * prove the asset server takes our tokens, log out. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"

static const char usage[] =
	"usage: copystand check [options]\n"
	"Logs in to Specify and checks user, agent, collection, catalog number\n"
	"format and the asset server.  Exit status 0 only when all is well.\n"
	CLI_COMMON_HELP;

static void row(const char *what, const char *value)
{
	printf("%-15s %s\n", what, value);
}

int cmd_check(int argc, char **argv)
{
	static const struct option options[] = {
		CLI_COMMON_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	specify_session *s = NULL;
	const specify_info *info;
	const specify_assets *assets;
	cs_error err = { 0 };
	char line[512];
	int opt, status = 0;
	cli c;

	cli_init(&c);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		int ret = cli_common_option(&c, opt, optarg, &err);
		if (ret < 0) {
			status = cli_fail(&err);
			goto out;
		}
		if (ret == 0) {
			fputs(usage, opt == 'h' ? stdout : stderr);
			status = opt == 'h' ? 0 : 2;
			goto out;
		}
	}
	if (optind < argc) {
		fputs(usage, stderr);
		status = 2;
		goto out;
	}
	if (cli_session_open(&c, &s, &err)) {
		status = cli_fail(&err);
		goto out;
	}
	info = specify_session_info(s);
	row("server", info->server);
	snprintf(line, sizeof line, "%s (id %lld)", info->user, info->user_id);
	row("user", line);
	snprintf(line, sizeof line, "%s (id %lld)", info->agent, info->agent_id);
	row("agent", line);
	snprintf(line, sizeof line, "%s (id %lld)", info->collection, info->collection_id);
	row("collection", line);
	row("catalog format", info->catalog_format ? info->catalog_format : "(none)");

	if (specify_assets_get(s, &assets, &err) || specify_assets_check(s, &err)) {
		row("asset server", "NOT usable");
		cli_fail(&err);
		status = 1;
	} else {
		snprintf(line, sizeof line, "%s: reachable, key and clock agree",
			 assets->write_url);
		row("asset server", line);
	}
	if (specify_session_logout(s, &err)) {
		cli_fail(&err);
		status = 1;
	} else {
		row("session", "logged out");
	}
out:
	specify_session_free(s);
	cli_free(&c);
	return status;
}
