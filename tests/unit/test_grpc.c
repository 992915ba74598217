/* test_grpc.c — what the stream and router know of gRPC (http/grpc.h): which requests are
 * calls, grpc-timeout in every unit and malformed, the status mapping of Strata's answers
 * and their trailers-only form, and routes matching a service or a method. */
#include "config/config.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "http/msg.h"
#include "http/router.h"
#include "test.h"

static struct http_msg with(struct arena *a, const char *name, const char *value)
{
    struct http_msg m = {.is_request = true, .version = 20};
    m.method = HTTP_M_POST;
    m.method_name = hstr_c("POST");
    if (name)
        CHECK(http_hdr_add(&m, a, hstr_c(name), hstr_c(value)) == 0);
    return m;
}

TEST(grpc_content_types)
{
    struct arena a;
    arena_init(&a, 0);
    static const char *yes[] = {"application/grpc", "application/grpc+proto", "Application/GRPC",
                                "application/grpc; charset=x", "application/grpc-web-text"};
    static const char *no[] = {"application/grpcx", "application/json", "text/grpc",
                               "application/grp"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++) {
        struct http_msg m = with(&a, "content-type", yes[i]);
        CHECK(grpc_content_type(&m));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++) {
        struct http_msg m = with(&a, "content-type", no[i]);
        CHECK(!grpc_content_type(&m));
    }
    struct http_msg none = with(&a, NULL, NULL);
    CHECK(!grpc_content_type(&none));
    arena_free(&a);
}

TEST(grpc_timeouts)
{
    struct arena a;
    arena_init(&a, 0);
    static const struct {
        const char *v;
        uint64_t ms;
    } cases[] = {
        {"1H", 3600000},   {"2M", 120000}, {"3S", 3000}, {"250m", 250},
        {"1500u", 2},      {"1n", 1},      {"0m", 1},    {"99999999m", 99999999},
        {"", 0},           {"m", 0},       {"10", 0},    {"10s", 0},
        {"123456789m", 0}, {"-1S", 0},     {"1 S", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct http_msg m = with(&a, "grpc-timeout", cases[i].v);
        uint64_t got = grpc_timeout_ms(&m);
        if (got != cases[i].ms)
            test_fail(__FILE__, __LINE__, "grpc-timeout %s: %llu ms, expected %llu", cases[i].v,
                      (unsigned long long)got, (unsigned long long)cases[i].ms);
    }
    struct http_msg m = with(&a, NULL, NULL);
    CHECK(grpc_timeout_ms(&m) == 0);
    arena_free(&a);
}

TEST(grpc_answers)
{
    CHECK(grpc_code_for(404) == GRPC_UNIMPLEMENTED);
    CHECK(grpc_code_for(502) == GRPC_UNAVAILABLE);
    CHECK(grpc_code_for(503) == GRPC_UNAVAILABLE);
    CHECK(grpc_code_for(504) == GRPC_DEADLINE_EXCEEDED);
    CHECK(grpc_code_for(401) == GRPC_UNAUTHENTICATED);
    CHECK(grpc_code_for(403) == GRPC_PERMISSION_DENIED);
    CHECK(grpc_code_for(429) == GRPC_UNAVAILABLE);
    CHECK(grpc_code_for(413) == GRPC_RESOURCE_EXHAUSTED);
    CHECK(grpc_code_for(418) == GRPC_UNKNOWN);

    struct http_txn t = {0};
    arena_init(&t.arena, 0);
    CHECK(grpc_answer(&t, 503, "no server available: 100% down\n") == 0);
    CHECK(t.answered && t.resp.status == 200);
    CHECK(t.resp.body == HTTP_BODY_LENGTH && t.resp.content_length == 0);
    CHECK(hstr_eq(http_hdr_get(&t.resp, HSTR_LIT("content-type")), HSTR_LIT("application/grpc")));
    CHECK(hstr_eq(http_hdr_get(&t.resp, HSTR_LIT("grpc-status")), HSTR_LIT("14")));
    CHECK(hstr_eq(http_hdr_get(&t.resp, HSTR_LIT("grpc-message")),
                  HSTR_LIT("no server available: 100%25 down%0A")));
    arena_free(&t.arena);
}

static const char *grpc_route(const struct config *c, const char *path, const char *ctype)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = with(&a, ctype ? "content-type" : NULL, ctype);
    m.authority = hstr_c("h");
    m.path = hstr_c(path);
    const struct http_route *r = router_match(&c->listeners[0].http, &m, NULL);
    arena_free(&a);
    return r ? r->name : "-";
}

TEST(grpc_routes)
{
    static const char yaml[] =
        "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n    routes:\n"
        "      - { name: method, match: { grpc: { service: pkg.Greeter, method: Hello } }, "
        "backend: app }\n"
        "      - { name: service, match: { grpc: { service: pkg.Greeter } }, backend: app }\n"
        "      - { name: anycall, match: { grpc: true }, backend: app }\n"
        "      - { name: other, backend: app }\n"
        "backends:\n  app: { servers: [127.0.0.1:9001] }\n";
    struct config_errors e = {0};
    struct config *c = config_load_string("grpc.yaml", yaml, 1, &e);
    if (!c) {
        test_fail(__FILE__, __LINE__, "does not load:\n%s", e.text ? e.text : "?");
        config_errors_free(&e);
        return;
    }
    const char *g = "application/grpc";
    CHECK(!strcmp(grpc_route(c, "/pkg.Greeter/Hello", g), "method"));
    CHECK(!strcmp(grpc_route(c, "/pkg.Greeter/Bye", g), "service"));
    CHECK(!strcmp(grpc_route(c, "/pkg.Greeter/Hello", "application/json"), "other"));
    CHECK(!strcmp(grpc_route(c, "/pkg.GreeterX/Hello", g), "anycall"));
    CHECK(!strcmp(grpc_route(c, "/x", NULL), "other"));
    config_unref(c);

    static const char *bad[] = {
        "{ grpc: { method: Hello } }",
        "{ grpc: { service: 'a/b' } }",
        "{ grpc: { service: a, method: '' } }",
        "{ grpc: { service: a, extra: 1 } }",
        "{ grpc: false }",
        "{ path: /x, grpc: { service: a } }",
        "{ grpc: { service: a }, path_prefix: /x }",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char y[512];
        snprintf(y, sizeof(y),
                 "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n"
                 "    routes:\n      - { match: %s, backend: app }\n"
                 "backends:\n  app: { servers: [127.0.0.1:9001] }\n",
                 bad[i]);
        struct config_errors e2 = {0};
        struct config *c2 = config_load_string("bad.yaml", y, 1, &e2);
        if (c2) {
            test_fail(__FILE__, __LINE__, "accepted: %s", bad[i]);
            config_unref(c2);
        } else if (!e2.text || !strstr(e2.text, "bad.yaml:6:")) {
            test_fail(__FILE__, __LINE__, "no position for %s: %s", bad[i],
                      e2.text ? e2.text : "?");
        }
        config_errors_free(&e2);
    }
}
