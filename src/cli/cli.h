/* cli.h — command-line verbs that live outside main.c: `strata explain` and `strata diff`.
 * Each takes the arguments after its verb and returns the process exit code (0 ok,
 * 1 configuration error or differences found where asked, 2 usage error). */
#ifndef STRATA_CLI_CLI_H
#define STRATA_CLI_CLI_H

#include <stdio.h>

struct config;

int explain_main(int argc, char **argv);
int diff_main(int argc, char **argv);

/* Loads path as `strata check` does, printing its errors to stderr; NULL on error. */
struct config *cli_load(const char *path);

#endif
