/* test_man.c — doc/strata.8 is what `strata man-page` prints (regenerate with `make man`),
 * and the page carries every verb of --help and every top-level configuration key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "test.h"

TEST(man_page_matches_doc_and_tables)
{
    char *page = test_capture(man_page_print), *help = test_capture(cli_usage);
    char *doc = test_read_file("doc/strata.8");
    CHECK(page && help);
    if (!page || !help) {
        free(page);
        free(help);
        free(doc);
        return;
    }
    CHECK_STR_CONTAINS(page, ".TH STRATA 8");
    CHECK_STR_CONTAINS(page, ".SH CONFIGURATION");
    CHECK_STR_CONTAINS(page, "\\fBruntime_servers\\fR");
    CHECK_STR_CONTAINS(page, "\\fBexpect\\fR");
    for (const struct cli_command *c = cli_commands; c->args; c++) {
        char verb[64];
        snprintf(verb, sizeof(verb), "strata %.*s", (int)strcspn(c->args, " "), c->args);
        CHECK_STR_CONTAINS(help, verb);
    }
    CHECK_STR_CONTAINS(page, "explain FILE");
    CHECK(doc != NULL);
    if (doc && strcmp(doc, page) != 0)
        test_fail(__FILE__, __LINE__, "doc/strata.8 is out of date: run `make man`");
    free(doc);
    free(page);
    free(help);
}
