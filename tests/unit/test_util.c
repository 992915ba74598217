/* test_util.c — helpers the unit tests share (declared in test.h). */
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "test.h"

char *test_read_file(const char *path)
{
    char *text = NULL, buf[4096];
    size_t len = 0, n;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    FILE *m = open_memstream(&text, &len);
    while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    if (m)
        fclose(m);
    fclose(f);
    return text;
}

char *test_capture(void (*print)(FILE *out))
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

struct config *test_load_config(const char *yaml, unsigned nworkers)
{
    struct config_errors e = {0};
    struct config *c = config_load_string("test.yaml", yaml, nworkers, &e);
    if (!c)
        test_fail(__FILE__, __LINE__, "does not load:\n%s", e.text ? e.text : "?");
    config_errors_free(&e);
    return c;
}
