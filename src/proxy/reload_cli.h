/* reload_cli.h — `strata reload`: asks a running strata to reload, through the admin
 * listener of its configuration (POST /reload), and prints the answer.
 */
#ifndef STRATA_PROXY_RELOAD_CLI_H
#define STRATA_PROXY_RELOAD_CLI_H

#include <stdio.h>

#include "config/config-t.h"

/* cfg: the (valid) configuration the running process was started with, for its admin
 * address (a wildcard one is reached on loopback). Prints the process's answer to out, or
 * why it could not be asked to err. Returns the exit code: 0 reloaded, 1 the process
 * refused the file (its errors printed), 3 no admin listener or no answer. */
int reload_cli(const struct config *cfg, FILE *out, FILE *err);

#endif
