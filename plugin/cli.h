/* copystand command line: options every command shares, and opening a
 * Specify session from them. */
#ifndef COPYSTAND_CLI_H
#define COPYSTAND_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include "config.h"
#include "specify.h"

enum {
	CLI_OPT_SERVER = 0x1000,
	CLI_OPT_USER,
	CLI_OPT_COLLECTION,
	CLI_OPT_CONFIG,
	CLI_OPT_CA_FILE,
	CLI_OPT_INSECURE,
};

/* Spliced into each command's getopt_long table. */
#define CLI_COMMON_OPTIONS \
	{ "server", required_argument, NULL, CLI_OPT_SERVER }, \
	{ "user", required_argument, NULL, CLI_OPT_USER }, \
	{ "collection", required_argument, NULL, CLI_OPT_COLLECTION }, \
	{ "config", required_argument, NULL, CLI_OPT_CONFIG }, \
	{ "ca-file", required_argument, NULL, CLI_OPT_CA_FILE }, \
	{ "insecure", no_argument, NULL, CLI_OPT_INSECURE }

#define CLI_COMMON_HELP \
	"  --server URL        Specify 7 address (COPYSTAND_SERVER)\n" \
	"  --user NAME         Specify user (COPYSTAND_USER)\n" \
	"  --collection NAME   collection name or id (COPYSTAND_COLLECTION)\n" \
	"  --config FILE       config file (default ~/.config/copystand/config)\n" \
	"  --ca-file FILE      trust this CA bundle too (private CAs)\n" \
	"  --insecure          do not verify TLS certificates (unsafe)\n" \
	"The password comes from COPYSTAND_PASSWORD, 'password =' in the config\n" \
	"file (mode 0600 only) or a prompt; never from the command line.\n"

typedef struct cli {
	cs_config *opts;          /* values given on the command line */
	const char *config_path;
	cs_config *cfg;           /* file < environment < command line */
	char *asked;              /* a password typed at the prompt (wiped) */
	double format_saved;      /* when the cached format used was saved */
} cli;

void cli_init(cli *c);
void cli_free(cli *c);

/* Handles one common option; returns 1 if it was one, 0 if not, <0 on error. */
int cli_common_option(cli *c, int opt, const char *arg, cs_error *err);

/* Builds c->cfg from the config file, the environment and the options. */
int cli_load(cli *c, cs_error *err);

/* The login settings from c->cfg, asking for the password on the terminal
 * if no other source gave one; the strings belong to c. */
int cli_login(cli *c, specify_login *out, cs_error *err);

/* Logs in with cli_login()'s settings. */
int cli_session_open(cli *c, specify_session **out, cs_error *err);
/* Only the login (specify_session_open), with the collection's id that
 * an earlier run saved, so that it is one request: the caller sends what
 * needs neither the user nor the format, then calls cli_session_load. */
int cli_session_start(cli *c, specify_session **out, cs_error *err);
/* specify_session_load; a failure forgets the saved id (it may be what
 * failed: the next run asks Specify for it). */
int cli_session_load(cli *c, specify_session *s, cs_error *err);

struct catalog_format;
/* The collection's catalog-number format (session info + UIFormatters),
 * saved per server and collection for starts without Specify; s NULL:
 * the saved one (CS_E_NOT_FOUND when there is none), and
 * c->format_saved says when it was saved. */
int cli_catalog_format(cli *c, specify_session *s, struct catalog_format **out,
		       cs_error *err);

/* Prints "copystand: <message>" to stderr and returns exit status 1. */
int cli_fail(const cs_error *err);

#endif
