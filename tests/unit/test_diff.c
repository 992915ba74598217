/* test_diff.c — config_diff: listeners, routes (added, removed, reordered, changed; an
 * unnamed route followed by what it matches), backends and servers, and the connections a
 * reload would drain; two equal files differ in nothing. */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/diff.h"
#include "core/strbuf.h"
#include "test.h"

#define OLD                                                                                        \
    "listeners:\n"                                                                                 \
    "  - { name: web, listen: 127.0.0.1:8080, mode: http, routes: [\n"                             \
    "      { name: api, match: { path_prefix: /v1/ }, backend: app },\n"                           \
    "      { name: canary, match: { header: { x-canary: \"1\" } }, backend: app },\n"              \
    "      { match: { path: /healthz }, respond: { status: 200 } } ] }\n"                          \
    "  - { name: db, listen: 127.0.0.1:5432, mode: tcp, backend: pg }\n"                           \
    "backends:\n"                                                                                  \
    "  app: { servers: [ { name: a, address: 127.0.0.1:1 }, { name: b, address: 127.0.0.1:2 } ] "  \
    "}\n"                                                                                          \
    "  pg: { servers: [ { name: p, address: 127.0.0.1:5 } ] }\n"

#define NEW                                                                                        \
    "listeners:\n"                                                                                 \
    "  - { name: web, listen: 127.0.0.1:8080, mode: http, routes: [\n"                             \
    "      { match: { path: /new }, respond: { status: 204 } },\n"                                 \
    "      { name: canary, match: { header: { x-canary: \"1\" } }, backend: app },\n"              \
    "      { name: api, match: { path_prefix: /v1/ }, backend: app },\n"                           \
    "      { match: { path: /healthz }, respond: { status: 200 } } ] }\n"                          \
    "  - { name: db, listen: 127.0.0.1:5433, mode: tcp, backend: pg }\n"                           \
    "backends:\n"                                                                                  \
    "  app: { balance: weighted, servers: [ { name: a, address: 127.0.0.1:1, weight: 2 },\n"       \
    "                                       { name: c, address: 127.0.0.1:3 } ] }\n"               \
    "  pg: { servers: [ { name: p, address: 127.0.0.1:6 } ] }\n"

static struct config *load(const char *yaml)
{
    return test_load_config(yaml, 1);
}

TEST(diff_lists_what_a_change_does)
{
    struct config *a = load(OLD), *b = load(NEW);
    if (!a || !b)
        return;
    struct strbuf out;
    sb_init(&out, 1 << 20);
    unsigned n = config_diff(a, b, &out);
    const char *t = sb_str(&out);
    CHECK_EQ_U64(n, 9);
    CHECK(strstr(t, "  ~ db: listen 127.0.0.1:5432 -> 127.0.0.1:5433\n"));
    CHECK(strstr(t, "routes of listener web:\n"));
    CHECK(strstr(t, "  + path = /new (#1)\n"));
    CHECK(strstr(t, "  ^ canary: #2 -> #2 (reordered)\n"));
    CHECK(strstr(t, "  ^ api: #1 -> #3 (reordered)\n"));
    CHECK(!strstr(t, "healthz: #")); /* moved by the insertion only */
    CHECK(strstr(t, "  ~ app: balance round_robin -> weighted\n"));
    CHECK(strstr(t, "  ~ app/a: weight 1 -> 2\n"));
    CHECK(strstr(t, "  + app/c (127.0.0.1:3, weight 1)\n"));
    CHECK(strstr(t, "  - app/b (127.0.0.1:2)\n"));
    CHECK(strstr(t, "  ~ pg/p: address 127.0.0.1:5 -> 127.0.0.1:6\n"));
    CHECK(strstr(t, "a reload would drain:\n  connections of listener db (its address changed)\n"
                    "  connections to server app/b (removed)\n"
                    "  connections to server pg/p (its address changed)\n"));
    if (n != 9)
        fprintf(stderr, "%s", t);
    sb_reset(&out);
    CHECK_EQ_U64(config_diff(a, a, &out), 0);
    CHECK(strcmp(sb_str(&out), "no difference\n") == 0);
    sb_free(&out);
    config_unref(a);
    config_unref(b);
}
