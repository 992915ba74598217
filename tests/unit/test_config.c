/* test_config.c — the configuration loader: every value of a full configuration, the
 * defaults, one case per kind of error (with its FILE:LINE:COL and message), aliases and
 * their limits, the shipped examples/, and the reference in doc/config.md.
 */
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "config/config.h"
#include "config/schema.h"
#include "test.h"

static struct config *load(const char *yaml, struct config_errors *e)
{
    memset(e, 0, sizeof(*e));
    return config_load_string("strata.yaml", yaml, 4, e);
}

static uint16_t port_of(const struct sockaddr_any *a)
{
    return ntohs(a->u.sa.sa_family == AF_INET6 ? a->u.in6.sin6_port : a->u.in.sin_port);
}

static const char full_yaml[] =
    "workers: 3\n"
    "timeouts: { connect: 1500ms, idle: 2m, drain: 1h }\n"
    "admin:\n"
    "  listen: 127.0.0.1:9191\n"
    "listeners:\n"
    "  - name: pg\n"
    "    listen: 127.0.0.1:5432\n"
    "    mode: tcp\n"
    "    backend: pg\n"
    "    max_connections: 10000\n"
    "    backlog: 512\n"
    "    timeouts: { idle: 1h }\n"
    "  - name: web.v6\n"
    "    listen: [\"[::1]:8080\", \"*:8080\"]\n"
    "    backend: web\n"
    "backends:\n"
    "  pg:\n"
    "    balance: least_conn\n"
    "    retries: 0\n"
    "    timeouts: { connect: 1s }\n"
    "    health_check: { type: tcp, interval: 3s, timeout: 250ms, rise: 4, fall: 5 }\n"
    "    passive: { fall: 0, cooldown: 30s }\n"
    "    servers:\n"
    "      - { address: 127.0.0.1:5433, name: pg1, weight: 7, backup: false,"
    " max_connections: 100 }\n"
    "      - 127.0.0.1:5434\n"
    "      - { address: \"[::1]:5435\", backup: yes }\n"
    "  web:\n"
    "    balance: maglev\n"
    "    servers: [10.0.0.1:80]\n";

static void check_full_listeners(const struct config *c)
{
    const struct listener_conf *l = &c->listeners[0];
    CHECK(strcmp(l->name, "pg") == 0);
    CHECK_EQ_U64(l->mode, MODE_TCP);
    CHECK_EQ_U64(l->naddrs, 1);
    CHECK(strcmp(l->addr_texts[0], "127.0.0.1:5432") == 0);
    CHECK_EQ_U64(l->addrs[0].u.sa.sa_family, AF_INET);
    CHECK_EQ_U64(port_of(&l->addrs[0]), 5432);
    CHECK(l->backend == config_backend(c, "pg"));
    CHECK_EQ_U64(l->max_conns, 10000);
    CHECK_EQ_U64(l->backlog, 512);
    CHECK_EQ_U64(l->idle_timeout_ms, 3600000);
    CHECK(l->st.ctr != NULL && ((uintptr_t)l->st.ctr % CACHELINE) == 0);

    l = &c->listeners[1];
    CHECK(strcmp(l->name, "web.v6") == 0);
    CHECK_EQ_U64(l->naddrs, 2);
    CHECK_EQ_U64(l->addrs[0].u.sa.sa_family, AF_INET6);
    CHECK_EQ_U64(port_of(&l->addrs[0]), 8080);
    CHECK(strcmp(l->addr_texts[0], "[::1]:8080") == 0);
    CHECK_EQ_U64(l->addrs[1].u.sa.sa_family, AF_INET);
    CHECK(l->backend == config_backend(c, "web"));
    CHECK_EQ_U64(l->idle_timeout_ms, 120000); /* the global idle */
    CHECK_EQ_U64(l->backlog, 1024);
}

static void check_full_backends(const struct config *c)
{
    CHECK_EQ_U64(c->nbackends, 2);
    const struct backend *b = config_backend(c, "pg");
    CHECK(b != NULL);
    CHECK(config_backend(c, "nope") == NULL);
    if (!b)
        return;
    CHECK_EQ_U64(b->balance, BAL_LEAST_CONN);
    CHECK(b->lb_ops != NULL && b->lb_worker != NULL);
    CHECK_EQ_U64(b->retries, 0);
    CHECK_EQ_U64(b->connect_timeout_ms, 1000);
    CHECK_EQ_U64(b->hc.type, HC_TCP);
    CHECK_EQ_U64(b->hc.interval_ms, 3000);
    CHECK_EQ_U64(b->hc.timeout_ms, 250);
    CHECK_EQ_U64(b->hc.rise, 4);
    CHECK_EQ_U64(b->hc.fall, 5);
    CHECK_EQ_U64(b->passive.fall, 0);
    CHECK_EQ_U64(b->passive.cooldown_ms, 30000);
    CHECK_EQ_U64(b->nservers, 3);

    const struct server *s = &b->servers[0];
    CHECK(strcmp(s->name, "pg1") == 0);
    CHECK(strcmp(s->addr_text, "127.0.0.1:5433") == 0);
    CHECK_EQ_U64(port_of(&s->addr), 5433);
    CHECK_EQ_U64(s->weight, 7);
    CHECK(!s->backup);
    CHECK_EQ_U64(s->max_conns, 100);
    CHECK_EQ_U64(s->index, 0);
    CHECK(s->backend == b);
    CHECK(atomic_load(&s->st.live->up));
    CHECK(s->st.ctr != NULL && ((uintptr_t)s->st.ctr % CACHELINE) == 0);

    s = &b->servers[1]; /* shorthand */
    CHECK(strcmp(s->name, "127.0.0.1:5434") == 0);
    CHECK(strcmp(s->addr_text, "127.0.0.1:5434") == 0);
    CHECK_EQ_U64(s->weight, 1);
    CHECK_EQ_U64(s->max_conns, 0);
    CHECK_EQ_U64(s->index, 1);

    s = &b->servers[2];
    CHECK(strcmp(s->name, "[::1]:5435") == 0);
    CHECK_EQ_U64(s->addr.u.sa.sa_family, AF_INET6);
    CHECK(s->backup);
    CHECK_EQ_U64(s->index, 2);

    b = config_backend(c, "web");
    CHECK(b && b->balance == BAL_MAGLEV);
    CHECK(b && b->connect_timeout_ms == 1500); /* the global connect */
    CHECK(b && b->hc.type == HC_NONE);
}

TEST(config_full_values)
{
    struct config_errors e;
    struct config *c = load(full_yaml, &e);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s", e.text ? e.text : "");
        config_errors_free(&e);
        return;
    }
    CHECK_EQ_U64(e.count, 0);
    CHECK_EQ_U64(c->refs, 1);
    CHECK(strcmp(c->file, "strata.yaml") == 0);
    CHECK_EQ_U64(c->workers, 3);
    CHECK_EQ_U64(c->drain_timeout_ms, 3600000);
    CHECK(c->admin_enabled);
    CHECK(strcmp(c->admin_text, "127.0.0.1:9191") == 0);
    CHECK_EQ_U64(port_of(&c->admin_addr), 9191);
    CHECK_EQ_U64(c->nlisteners, 2);

    check_full_listeners(c);
    check_full_backends(c);
    CHECK(config_ref(c) == c);
    CHECK_EQ_U64(c->refs, 2);
    config_unref(c);
    CHECK_EQ_U64(c->refs, 1);
    config_unref(c);
    config_errors_free(&e);
}

TEST(config_defaults)
{
    struct config_errors e;
    struct config *c = load("listeners: [ { name: a, listen: ':7000', backend: b } ]\n"
                            "backends: { b: { servers: [ 127.0.0.1:7001 ] } }\n",
                            &e);
    CHECK(c != NULL);
    if (!c) {
        config_errors_free(&e);
        return;
    }
    CHECK_EQ_U64(c->workers, 4); /* auto = ncpu */
    CHECK_EQ_U64(c->drain_timeout_ms, 10000);
    CHECK(!c->admin_enabled);
    CHECK(c->admin_text == NULL);
    const struct listener_conf *l = &c->listeners[0];
    CHECK_EQ_U64(l->mode, MODE_TCP);
    CHECK_EQ_U64(l->max_conns, 0);
    CHECK_EQ_U64(l->backlog, 1024);
    CHECK_EQ_U64(l->idle_timeout_ms, 300000);
    CHECK_EQ_U64(l->addrs[0].u.in.sin_addr.s_addr, htonl(INADDR_ANY));
    const struct backend *b = &c->backends[0];
    CHECK(strcmp(b->name, "b") == 0);
    CHECK_EQ_U64(b->balance, BAL_ROUND_ROBIN);
    CHECK_EQ_U64(b->retries, 2);
    CHECK_EQ_U64(b->connect_timeout_ms, 2000);
    CHECK_EQ_U64(b->hc.type, HC_NONE);
    CHECK_EQ_U64(b->passive.fall, 3);
    CHECK_EQ_U64(b->passive.cooldown_ms, 10000);
    CHECK_EQ_U64(b->servers[0].weight, 1);
    CHECK(!b->servers[0].backup);
    CHECK_EQ_U64(c->pipe_size, 256 * 1024);
    CHECK_EQ_U64(c->pipe_cache, 256);
    config_unref(c);
    config_errors_free(&e);

    /* sizes take k/m suffixes */
    c = load("tuning: { pipe_size: 1m, pipe_cache: 0 }\n"
             "listeners: [ { name: a, listen: ':7000', backend: b } ]\n"
             "backends: { b: { servers: [ 127.0.0.1:7001 ] } }\n",
             &e);
    CHECK(c && c->pipe_size == 1024 * 1024 && c->pipe_cache == 0);
    if (c)
        config_unref(c);
    config_errors_free(&e);

    /* health_check present but sparse: type tcp and the documented values */
    c = load("workers: auto\nadmin: {}\n"
             "listeners: [ { name: a, listen: ':7000', backend: b } ]\n"
             "backends: { b: { health_check: { rise: 1 }, servers: [ 127.0.0.1:7001 ] } }\n",
             &e);
    CHECK(c != NULL);
    if (c) {
        CHECK(c->admin_enabled);
        CHECK(strcmp(c->admin_text, "127.0.0.1:9090") == 0);
        CHECK_EQ_U64(c->backends[0].hc.type, HC_TCP);
        CHECK_EQ_U64(c->backends[0].hc.interval_ms, 2000);
        CHECK_EQ_U64(c->backends[0].hc.timeout_ms, 1000);
        CHECK_EQ_U64(c->backends[0].hc.rise, 1);
        CHECK_EQ_U64(c->backends[0].hc.fall, 3);
        config_unref(c);
    }
    config_errors_free(&e);
}

TEST(config_workers_auto_is_bounded)
{
    static const char y[] = "listeners: [ { name: a, listen: ':7000', backend: b } ]\n"
                            "backends: { b: { servers: [ 127.0.0.1:7001 ] } }\n";
    struct config_errors e = {0};
    struct config *c = config_load_string("x", y, 0, &e);
    CHECK(c && c->workers == 1);
    config_unref(c);
    c = config_load_string("x", y, 1000, &e);
    CHECK(c && c->workers == 256);
    config_unref(c);
    CHECK_EQ_U64(e.count, 0);
    config_errors_free(&e);
}

#define L_OK "listeners:\n  - name: pg\n    listen: 127.0.0.1:5432\n    backend: pg\n"
#define B_OK "backends:\n  pg:\n    servers: [127.0.0.1:5433]\n"
#define B_LIST "backends:\n  pg:\n    servers:\n      - 127.0.0.1:5433\n"

struct bad_case {
    const char *name;
    const char *yaml;
    const char *where; /* "strata.yaml:LINE:COL: error: " */
    const char *msg;   /* expected on the same line */
};

static const struct bad_case bad_cases[] = {
    {"wrong type", L_OK "    backlog: [1]\n" B_OK, "strata.yaml:5:14: error: ",
     "listeners[0].backlog: expected an integer from 1 to 65535, got a sequence"},
    {"wrong type for a section", "timeouts: 5s\n" L_OK B_OK,
     "strata.yaml:1:11: error: ", "timeouts: expected a mapping, got \"5s\""},
    {"unknown key", L_OK "    backnd: pg\n" B_OK,
     "strata.yaml:5:5: error: ", "listeners[0].backnd: unknown key, did you mean \"backend\"?"},
    {"unknown top-level key", "listner: 1\n" L_OK B_OK,
     "strata.yaml:1:1: error: ", "listner: unknown key, did you mean \"listeners\"?"},
    {"unknown key, nothing close", L_OK B_OK "    zzz: 1\n",
     "strata.yaml:8:5: error: ", "backends.pg.zzz: unknown key, expected one of: balance, retries"},
    {"bad address", "listeners:\n  - name: pg\n    listen: 127.0.0.1\n    backend: pg\n" B_OK,
     "strata.yaml:3:13: error: ", "listeners[0].listen: expected host:port, got \"127.0.0.1\""},
    {"bad IPv6 address",
     "listeners:\n  - name: pg\n    listen: [ '[::1:80' ]\n    backend: pg\n" B_OK,
     "strata.yaml:3:15: error: ", "listeners[0].listen[0]: expected [IPv6]:port"},
    {"host name", L_OK "backends:\n  pg:\n    servers: [db.example.com:5432]\n",
     "strata.yaml:7:15: error: ", "servers[0]: not a valid IPv4 address"},
    {"bad port", "listeners:\n  - name: pg\n    listen: 127.0.0.1:70000\n    backend: pg\n" B_OK,
     "strata.yaml:3:13: error: ", "listeners[0].listen: port must be 1-65535, got"},
    {"duplicate listener name",
     L_OK "  - name: pg\n    listen: 127.0.0.1:5433\n    backend: pg\n" B_OK,
     "strata.yaml:5:11: error: ",
     "listeners[1].name: duplicate name \"pg\", already used by listeners[0]"},
    {"duplicate backend", L_OK B_OK "  pg:\n    servers: [127.0.0.1:5434]\n",
     "strata.yaml:8:3: error: ", "backends.pg: duplicate key (first defined at line 6)"},
    {"duplicate key", "workers: 2\nworkers: 3\n" L_OK B_OK,
     "strata.yaml:2:1: error: ", "workers: duplicate key (first defined at line 1)"},
    {"missing backend",
     "listeners:\n  - name: pg\n    listen: 127.0.0.1:5432\n    backend: pgg\n" B_OK,
     "strata.yaml:4:14: error: ",
     "listeners[0].backend: no backend named \"pgg\" (did you mean \"pg\"?)"},
    {"unknown balance", L_OK B_OK "    balance: lest_conn\n", "strata.yaml:8:14: error: ",
     "backends.pg.balance: unknown value \"lest_conn\", expected one of round_robin, weighted, "
     "least_conn, p2c, source_hash, maglev (did you mean \"least_conn\"?)"},
    {"negative integer", L_OK B_OK "    retries: -1\n", "strata.yaml:8:14: error: ",
     "backends.pg.retries: expected an integer from 0 to 16, got \"-1\""},
    {"integer too large", L_OK "    max_connections: 99999999999999999999\n" B_OK,
     "strata.yaml:5:22: error: ", "listeners[0].max_connections: expected an integer from 0 to"},
    {"tcp-only key on a udp listener",
     "listeners:\n  - name: pg\n    listen: 127.0.0.1:5432\n    mode: udp\n    backend: pg\n"
     "    per_source: { rate: 5 }\n" B_OK,
     "strata.yaml:6:17: error: ",
     "listeners[0].per_source: applies to `mode: tcp` and `mode: http` listeners only"},
    {"bad size", "tuning:\n  pipe_size: 64 kb\n" L_OK B_OK, "strata.yaml:2:14: error: ",
     "tuning.pipe_size: expected a size such as 4096, 64k or 1m, got \"64 kb\""},
    {"size out of range", "tuning:\n  pipe_size: 2m\n" L_OK B_OK, "strata.yaml:2:14: error: ",
     "tuning.pipe_size: expected a size from 4096 to 1048576 bytes, got \"2m\""},
    {"bad duration", "timeouts:\n  connect: 5 parsecs\n" L_OK B_OK, "strata.yaml:2:12: error: ",
     "timeouts.connect: expected a duration such as 250ms, 2s, 5m or 1h, got \"5 parsecs\""},
    {"duration too long", "timeouts:\n  idle: 100000h\n" L_OK B_OK, "strata.yaml:2:9: error: ",
     "timeouts.idle: expected a duration from 1ms to 720h, got \"100000h\""},
    {"empty servers", L_OK "backends:\n  pg:\n    servers: []\n",
     "strata.yaml:7:14: error: ", "backends.pg.servers: expected at least 1 entry, got 0"},
    {"YAML syntax error", "listeners:\n  - name: pg\n   listen: x\n",
     "strata.yaml:3:4: error: ", "invalid YAML: did not find expected '-' indicator"},
    {"tab indentation", "backends:\n\tpg: {}\n",
     "strata.yaml:2:1: error: ", "a tab character; YAML indents with spaces only"},
    {"missing required listen", "listeners:\n  - name: pg\n    backend: pg\n" B_OK,
     "strata.yaml:2:5: error: ", "listeners[0]: missing required key \"listen\""},
    {"missing listeners", B_OK, "strata.yaml:1:1: error: ", "missing required key \"listeners\""},
    {"required key without value", "listeners:\n" B_OK,
     "strata.yaml:1:11: error: ", "listeners: a value is required"},
    {"weight out of range", L_OK B_LIST "      - { address: 127.0.0.1:5434, weight: 1001 }\n",
     "strata.yaml:9:44: error: ",
     "backends.pg.servers[1].weight: expected an integer from 1 to 1000, got \"1001\""},
    {"same listen address",
     L_OK "  - name: pg2\n    listen: [ 127.0.0.1:5432 ]\n    backend: pg\n" B_OK,
     "strata.yaml:6:15: error: ",
     "listeners[1].listen[0]: address 127.0.0.1:5432 is already used by listener \"pg\""},
    {"listen address of admin", "admin: { listen: 127.0.0.1:5432 }\n" L_OK B_OK,
     "strata.yaml:4:13: error: ", "already used by the admin listener"},
    {"duplicate server name", L_OK B_LIST "      - { address: 127.0.0.1:5433 }\n",
     "strata.yaml:9:9: error: ", "backends.pg.servers[1].name: duplicate name \"127.0.0.1:5433\""},
    {"value not supported yet", L_OK B_OK "    balance: cookie\n", "strata.yaml:8:14: error: ",
     "backends.pg.balance: \"cookie\" is not supported yet (supported: round_robin"},
    {"bad workers", "workers: 0\n" L_OK B_OK, "strata.yaml:1:10: error: ",
     "workers: expected \"auto\" or an integer from 1 to 256, got \"0\""},
    {"bad backend name", L_OK "backends:\n  \"p g\":\n    servers: [127.0.0.1:5433]\n",
     "strata.yaml:6:3: error: ", "expected a name of 1-64 letters, digits"},
    {"bad boolean", L_OK B_LIST "      - { address: 127.0.0.1:5434, backup: maybe }\n",
     "strata.yaml:9:44: error: ", "backup: expected true or false, got \"maybe\""},
    {"empty file", "", "strata.yaml:1:1: error: ", "the configuration is empty"},
    {"comments only", "# nothing here\n", "strata.yaml:1:1: error: ", "is empty"},
    {"not a mapping", "- a\n- b\n",
     "strata.yaml:1:1: error: ", "expected a mapping at the top level, got a sequence"},
    {"two documents", L_OK B_OK "---\nworkers: 1\n",
     "strata.yaml:8:1: error: ", "expected one YAML document"},
    {"null server", L_OK B_LIST "      - ~\n", "strata.yaml:9:9: error: ",
     "backends.pg.servers[1]: expected a mapping or a string, got nothing (null)"},
    {"unknown alias", L_OK B_OK "    retries: *nope\n",
     "strata.yaml:8:14: error: ", "unknown alias \"*nope\""},
};

/* The line of `text` that starts with `where`, checked to contain `msg`. */
static int has_error(const char *text, const char *where, const char *msg)
{
    for (const char *p = text; p && (p = strstr(p, where)); p++) {
        const char *eol = strchr(p, '\n');
        const char *m = strstr(p, msg);
        if ((p == text || p[-1] == '\n') && m && (!eol || m < eol))
            return 1;
    }
    return 0;
}

TEST(config_errors_each_kind)
{
    CHECK(ARRAY_SIZE(bad_cases) >= 14);
    for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct config_errors e;
        struct config *c = load(bc->yaml, &e);
        if (c || e.count == 0 || !e.text || !has_error(e.text, bc->where, bc->msg))
            test_fail(__FILE__, __LINE__, "case \"%s\": expected %s...%s, got:\n%s", bc->name,
                      bc->where, bc->msg, e.text ? e.text : "(no errors)");
        config_unref(c);
        config_errors_free(&e);
    }
}

TEST(config_errors_all_collected_in_file_order)
{
    struct config_errors e;
    struct config *c = load("backends:\n"
                            "  pg:\n"
                            "    retries: 99\n"
                            "    servers: [ 1.2.3.4 ]\n"
                            "workers: x\n"
                            "listeners:\n"
                            "  - { name: 'a b', listen: 1.2.3.4:5, backend: pg, mode: htpp }\n",
                            &e);
    CHECK(c == NULL);
    CHECK_EQ_U64(e.count, 5);
    const char *t = e.text ? e.text : "";
    const char *p3 = strstr(t, "strata.yaml:3:"), *p4 = strstr(t, "strata.yaml:4:");
    const char *p5 = strstr(t, "strata.yaml:5:"), *p7 = strstr(t, "strata.yaml:7:");
    CHECK(p3 && p4 && p5 && p7 && p3 < p4 && p4 < p5 && p5 < p7);
    /* each error is one line */
    size_t lines = 0;
    for (const char *q = t; *q; q++)
        lines += *q == '\n';
    CHECK_EQ_U64(lines, 5);
    config_errors_free(&e);
}

TEST(config_errors_are_bounded)
{
    char *y = malloc(200000);
    size_t o = (size_t)sprintf(y, "listeners:\n");
    for (int i = 0; i < 200; i++)
        o += (size_t)sprintf(y + o, "  - { name: l%d, listen: bad, backend: b }\n", i);
    sprintf(y + o, "backends: { b: { servers: [ 127.0.0.1:1 ] } }\n");
    struct config_errors e;
    struct config *c = load(y, &e);
    CHECK(c == NULL);
    CHECK_EQ_U64(e.count, CFG_MAX_ERRORS + 1);
    CHECK_STR_CONTAINS(e.text, "150 more errors not shown");
    config_errors_free(&e);
    free(y);
}

TEST(config_errors_append)
{
    struct config_errors e = {0};
    CHECK(config_load_string("one.yaml", "workers: 0\n", 1, &e) == NULL);
    CHECK(config_load_string("two.yaml", "[", 1, &e) == NULL);
    CHECK(e.count >= 3);
    CHECK_STR_CONTAINS(e.text, "one.yaml:1:10: error: workers:");
    CHECK_STR_CONTAINS(e.text, "two.yaml:2:1: error: invalid YAML");
    config_errors_free(&e);
    CHECK(e.text == NULL && e.count == 0);
}

TEST(config_missing_file)
{
    struct config_errors e = {0};
    CHECK(config_load_file("/nonexistent/strata.yaml", 1, &e) == NULL);
    CHECK_EQ_U64(e.count, 1);
    CHECK_STR_CONTAINS(e.text,
                       "/nonexistent/strata.yaml: error: cannot open: No such file or directory");
    config_errors_free(&e);
}

TEST(config_aliases)
{
    struct config_errors e;
    struct config *c = load("x: &unused 1\n", &e);
    CHECK(c == NULL); /* unknown key x, but the anchor itself is fine */
    CHECK_STR_CONTAINS(e.text, "x: unknown key");
    config_errors_free(&e);

    c = load(L_OK "backends:\n"
                  "  pg:\n"
                  "    health_check: &hc { interval: 5s }\n"
                  "    servers: &srv [127.0.0.1:5433]\n"
                  "  pg2:\n"
                  "    health_check: *hc\n"
                  "    servers: *srv\n",
             &e);
    CHECK(c != NULL);
    if (c) {
        CHECK_EQ_U64(c->backends[1].hc.interval_ms, 5000);
        CHECK_EQ_U64(c->backends[1].nservers, 1);
        config_unref(c);
    }
    config_errors_free(&e);
}

TEST(config_alias_bomb_is_bounded)
{
    struct config_errors e;
    struct config *c = load("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                            "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                            "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                            "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                            &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, "alias expansion");
    config_errors_free(&e);
}

TEST(config_deep_nesting_is_bounded)
{
    char y[400];
    memset(y, '[', 300);
    y[300] = '\0';
    struct config_errors e;
    CHECK(load(y, &e) == NULL);
    CHECK_STR_CONTAINS(e.text, "nesting deeper than");
    config_errors_free(&e);
}

TEST(config_examples_load)
{
    glob_t g;
    int rc = glob("examples/*.yaml", 0, NULL, &g);
    CHECK(rc == 0);
    if (rc != 0)
        return;
    CHECK(g.gl_pathc >= 3);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct config_errors e = {0};
        struct config *c = config_load_file(g.gl_pathv[i], 2, &e);
        if (!c)
            test_fail(__FILE__, __LINE__, "%s does not load:\n%s", g.gl_pathv[i],
                      e.text ? e.text : "");
        config_unref(c);
        config_errors_free(&e);
    }
    globfree(&g);
}

/* doc/config.md must contain the reference exactly as the tables print it. */
TEST(config_reference_matches_doc)
{
    char *ref = test_capture(config_reference_print), *doc = test_read_file("doc/config.md");
    CHECK(ref != NULL && strlen(ref) > 1000);
    if (!ref)
        return;
    CHECK_STR_CONTAINS(ref, "| `balance` |");
    CHECK(doc != NULL);
    if (doc) {
        if (!strstr(doc, ref))
            test_fail(__FILE__, __LINE__,
                      "doc/config.md is out of date: regenerate its "
                      "reference part with `strata config-reference`");
    }
    free(doc);
    free(ref);
}
