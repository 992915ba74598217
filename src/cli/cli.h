/* cli.h — command-line verbs that live outside main.c: `strata explain` and `strata diff`.
 * Each takes the arguments after its verb and returns the process exit code (0 ok,
 * 1 configuration error or differences found where asked, 2 usage error). */
#ifndef STRATA_CLI_CLI_H
#define STRATA_CLI_CLI_H

#include <stdio.h>

struct config;

/* Where `strata reload` looks without -c. */
#define CLI_DEFAULT_CONFIG "/etc/strata/strata.yaml"

/* One verb of the command line: its arguments and what it does (commands.c). */
struct cli_command {
    const char *args; /* "check FILE"; "" for `strata` alone; NULL ends the table */
    const char *help;
};
extern const struct cli_command cli_commands[];
extern const char cli_exit_codes[], cli_signals[];

/* `strata --help`: the table above, the exit codes and the signals. */
void cli_usage(FILE *out);

/* strata(8) in roff, from cli_commands and the configuration reference (schema tables). */
void man_page_print(FILE *out);

int explain_main(int argc, char **argv);
int diff_main(int argc, char **argv);

/* Loads path as `strata check` does, printing its errors to stderr; NULL on error. */
struct config *cli_load(const char *path);

#endif
