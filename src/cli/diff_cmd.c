/* diff_cmd.c — `strata diff OLD NEW`: loads both files as `strata check` does and prints
 * config_diff (config/diff.h). Exit codes as diff(1): 0 no difference, 1 differences,
 * 2 trouble (usage, a file that does not load). */
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/diff.h"
#include "core/strbuf.h"

int diff_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: strata diff OLD NEW\n");
        return 2;
    }
    struct config *old = cli_load(argv[0]);
    struct config *new = old ? cli_load(argv[1]) : NULL;
    if (!new) {
        if (old)
            config_unref(old);
        return 2;
    }
    struct strbuf out;
    sb_init(&out, 16 << 20);
    unsigned n = config_diff(old, new, &out);
    fwrite(out.buf, 1, out.len, stdout);
    if (out.err)
        fprintf(stderr, "strata diff: the report was cut (too large)\n");
    sb_free(&out);
    config_unref(old);
    config_unref(new);
    return n ? 1 : 0;
}
