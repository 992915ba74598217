/* commands.c — the command-line verbs, declared once: `strata --help` prints this table,
 * and the manual page strata(8) (man.c) is generated from it and from the configuration
 * schema tables, so neither can drift from the other. */
#include "cli/cli.h"

#include <string.h>

const struct cli_command cli_commands[] = {
    {"", "run the built-in demo (ports 7000-7013, 7080, 7090)"},
    {"demo [BASE_PORT]", "the demo on other ports"},
    {"run FILE", "run with a configuration file"},
    {"check FILE", "validate a configuration file (and its `expect:` section) and exit"},
    {"reload [-c FILE]",
     "make the running strata re-read its file (through the admin listener FILE names; "
     "default " CLI_DEFAULT_CONFIG ")"},
    {"explain FILE 'METHOD URL' [-H 'name: value']... [--listener NAME]",
     "print the listener, routes tried, filters, backend, balancing rule and candidate "
     "servers a request would take"},
    {"diff OLD NEW",
     "print what changes from OLD to NEW and which live connections a reload would drain "
     "(exit 0: no difference, 1: differences, 2: trouble)"},
    {"config-reference", "print the configuration reference (markdown)"},
    {"man-page", "print this manual page, strata(8) (roff)"},
    {"--version | --help", "print the version, or this help"},
    {NULL, NULL},
};

const char cli_exit_codes[] = "0 ok, 1 configuration error, 2 usage error, 3 runtime failure.";
const char cli_signals[] =
    "SIGTERM/SIGINT stop accepting and drain open connections for up to timeouts.drain, "
    "then exit; a second signal exits at once. SIGHUP reloads the configuration file (as "
    "POST /reload on the admin listener does). Binary upgrade: with upgrade_socket in the "
    "file, `strata run FILE` of the new executable takes the running one's sockets; the old "
    "one drains and exits.";

#define USAGE_COL 36   /* where the help text starts */
#define USAGE_WIDTH 96 /* where it wraps */

/* Prints text from column `col` (the cursor is there), wrapped at USAGE_WIDTH. */
static void wrapped(FILE *out, const char *text, int col)
{
    int at = col;
    while (*text) {
        size_t word = strcspn(text, " ");
        if (at > col && at + 1 + (int)word > USAGE_WIDTH) {
            fprintf(out, "\n%*s", col, "");
            at = col;
        } else if (at > col) {
            fputc(' ', out);
            at++;
        }
        fwrite(text, 1, word, out);
        at += (int)word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

void cli_usage(FILE *out)
{
    for (const struct cli_command *c = cli_commands; c->args; c++) {
        int n = fprintf(out, "%s strata %s", c == cli_commands ? "usage:" : "      ", c->args);
        if (n + 2 > USAGE_COL)
            fprintf(out, "\n%*s", USAGE_COL, "");
        else
            fprintf(out, "%*s", USAGE_COL - n, "");
        wrapped(out, c->help, USAGE_COL);
    }
    fputs("\nExit codes: ", out);
    wrapped(out, cli_exit_codes, 12);
    fputs("Signals: ", out);
    wrapped(out, cli_signals, 9);
}
