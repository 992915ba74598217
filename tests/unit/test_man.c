/* test_man.c — doc/strata.8 is what `strata man-page` prints (regenerate with `make man`),
 * and the page carries every verb of --help and every top-level configuration key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "test.h"

static char *capture(void (*print)(FILE *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return NULL;
    print(m);
    fclose(m);
    return text;
}

TEST(man_page_matches_doc_and_tables)
{
    char *page = capture(man_page_print), *help = capture(cli_usage), *doc = NULL;
    size_t doclen = 0;
    CHECK(page && help);
    if (!page || !help)
        return;
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
    FILE *f = fopen("doc/strata.8", "r");
    CHECK(f != NULL);
    if (f) {
        FILE *d = open_memstream(&doc, &doclen);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            fwrite(buf, 1, n, d);
        fclose(d);
        fclose(f);
        if (strcmp(doc, page) != 0)
            test_fail(__FILE__, __LINE__, "doc/strata.8 is out of date: run `make man`");
    }
    free(doc);
    free(page);
    free(help);
}
