/* explain_cmd.c — `strata explain FILE 'METHOD URL' [-H 'name: value']... [--listener NAME]`:
 * loads FILE as `strata check` does and prints the request's way through it
 * (http/explain.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "core/strbuf.h"
#include "http/explain.h"

#define EXPLAIN_MAX_HEADERS 64

static int usage(void)
{
    fprintf(stderr, "usage: strata explain FILE 'METHOD URL' [-H 'name: value']... "
                    "[--listener NAME]\n"
                    "  e.g. strata explain strata.yaml 'GET https://api.example.com/v1/users' "
                    "-H 'x-canary: 1'\n");
    return 2;
}

struct config *cli_load(const char *path)
{
    struct config_errors errs = {0};
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    struct config *cfg = config_load_file(path, n > 0 ? (unsigned)n : 1, &errs);
    if (!cfg) {
        fputs(errs.text ? errs.text : "configuration error\n", stderr);
        fprintf(stderr, "%s: %u error%s\n", path, errs.count, errs.count == 1 ? "" : "s");
    }
    config_errors_free(&errs);
    return cfg;
}

int explain_main(int argc, char **argv)
{
    const char *headers[EXPLAIN_MAX_HEADERS];
    struct explain_input in = {.headers = headers};
    if (argc < 2)
        return usage();
    in.request = argv[1];
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-H") == 0 || strcmp(argv[i], "--header") == 0) && i + 1 < argc &&
            in.nheaders < EXPLAIN_MAX_HEADERS)
            headers[in.nheaders++] = argv[++i];
        else if (strcmp(argv[i], "--listener") == 0 && i + 1 < argc)
            in.listener = argv[++i];
        else
            return usage();
    }
    struct config *cfg = cli_load(argv[0]);
    if (!cfg)
        return 1;
    struct strbuf out;
    struct explain_result res;
    char err[512];
    sb_init(&out, 1 << 20);
    int rc = explain_run(cfg->listeners, cfg->nlisteners, &in, &res, &out, err, sizeof(err));
    if (rc == 0)
        fwrite(out.buf, 1, out.len, stdout);
    else
        fprintf(stderr, "strata explain: %s\n", err);
    sb_free(&out);
    config_unref(cfg);
    return rc == 0 ? 0 : 2;
}
