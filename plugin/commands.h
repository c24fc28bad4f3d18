/* The copystand subcommands; each takes its own argv (argv[0] is its name)
 * and returns the process exit status. */
#ifndef COPYSTAND_COMMANDS_H
#define COPYSTAND_COMMANDS_H

int cmd_check(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_names(int argc, char **argv);
int cmd_upload(int argc, char **argv);
int cmd_batches(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_station(int argc, char **argv);

#endif
