/* test_http_config.c — the configuration of HTTP: `mode: http` listeners and their `http`
 * section (values and defaults), routes (every match kind, actions, the filters built
 * from their keys and their order, retry), the listener filters and default route, the
 * HTTP keys of backends (hash, sticky, keepalive, HTTP health checks), sticky ids, and
 * one case per kind of error with its FILE:LINE:COL. Run under ASan, the frees are
 * checked too (successful loads and every failed one).
 */
#include <string.h>

#include "config/config.h"
#include "core/bug.h"
#include "core/hash.h"
#include "http/filter.h"
#include "test.h"

static struct config *load(const char *yaml, struct config_errors *e)
{
    memset(e, 0, sizeof(*e));
    return config_load_string("strata.yaml", yaml, 2, e);
}

/* Loads yaml, which must succeed; reports the errors otherwise. */
static struct config *load_ok(const char *yaml)
{
    struct config_errors e;
    struct config *c = load(yaml, &e);
    if (!c)
        test_fail(__FILE__, __LINE__, "does not load:\n%s", e.text ? e.text : "?");
    config_errors_free(&e);
    return c;
}

static const char full_yaml[] =
    "listeners:\n"
    "  - name: web\n"
    "    listen: 127.0.0.1:8080\n"
    "    mode: http\n"
    "    backend: app\n"
    "    http:\n"
    "      max_request_line: 4k\n"
    "      max_header_size: 32k\n"
    "      max_headers: 50\n"
    "      max_body_buffered: 2m\n"
    "      request_header_timeout: 5s\n"
    "      keepalive_timeout: 20s\n"
    "      connect_timeout: 3s\n"
    "      response_timeout: 15s\n"
    "      request_timeout: 1m\n"
    "      max_requests_per_connection: 1000\n"
    "      trusted_proxies: [10.0.0.0/8, 127.0.0.1]\n"
    "      forwarded: both\n"
    "      request_id: X-Trace-Id\n"
    "      traceparent: false\n"
    "      access_log: { format: json, path: /tmp/access.log }\n"
    "    routes:\n"
    "      - name: api\n"
    "        match:\n"
    "          host: [API.example.com., \"*.api.example.com\"]\n"
    "          path_prefix: /v1/\n"
    "          method: [GET, POST, PURGE]\n"
    "          header: { X-Canary: \"1\", x-debug: { present: true },\n"
    "                    user-agent: { regex: curl }, x-p: { prefix: a } }\n"
    "          cookie: { session: { present: true } }\n"
    "          query: { beta: \"1\" }\n"
    "        backend: api_v1\n"
    "        respond_never: ~\n"
    "      - match: { path_regex: '^/u/[0-9]+$' }\n"
    "        split: [ { backend: blue, weight: 90 }, { backend: green, weight: 10 } ]\n"
    "        response_headers: { set: { x-a: \"1\" } }\n"
    "        request_headers: { set: { x-a: \"1\" }, add: { x-b: \"{client_ip}\" },\n"
    "                           remove: [x-c, x-d] }\n"
    "        path_rewrite: { regex: '^/u/(.*)$', replace: '/users/$1' }\n"
    "        retry: { tries: 2, on: [reset, 502, 503, 504], per_try_timeout: 2s }\n"
    "      - name: old\n"
    "        match: { path: /old }\n"
    "        redirect: { status: 301, location: \"https://{host}{request_uri}\" }\n"
    "      - match: { path: /hello }\n"
    "        respond: { body: \"hello\\n\" }\n"
    "      - match: { path: /v1 }\n"
    "        path_rewrite: { prefix: /v1, replace: \"\" }\n"
    "        backend: app\n"
    "backends:\n"
    "  app:\n"
    "    balance: maglev\n"
    "    hash: { header: X-User }\n"
    "    sticky: { cookie: srv, max_age: 1h, secure: true, http_only: false }\n"
    "    keepalive: { max_idle: 8, idle_timeout: 5s }\n"
    "    health_check: { type: http, path: /healthz, method: HEAD, host: example.com,\n"
    "                    expect_status: 200-299, interval: 2s }\n"
    "    servers: [ { address: 127.0.0.1:9001, name: a1 }, 127.0.0.1:9002 ]\n"
    "  api_v1:\n"
    "    balance: source_hash\n"
    "    hash: path\n"
    "    sticky: true\n"
    "    servers: [127.0.0.1:9101]\n"
    "  blue:\n"
    "    balance: maglev\n"
    "    hash: { cookie: uid }\n"
    "    servers: [127.0.0.1:9201]\n"
    "  green:\n"
    "    health_check: { type: http }\n"
    "    servers: [127.0.0.1:9301]\n";

static const struct http_route *route(const struct config *c, uint32_t i)
{
    return &c->listeners[0].http.routes[i];
}

TEST(http_config_listener_values)
{
    /* the full document, less its deliberate unknown key */
    char yaml[sizeof(full_yaml)];
    strcpy(yaml, full_yaml);
    char *bad = strstr(yaml, "        respond_never: ~\n");
    memmove(bad, bad + 25, strlen(bad + 25) + 1);
    struct config *c = load_ok(yaml);
    if (!c)
        return;
    const struct listener_conf *l = &c->listeners[0];
    const struct http_listener_conf *h = &l->http;
    CHECK(l->mode == MODE_HTTP);
    CHECK_EQ_U64(h->limits.max_request_line, 4096);
    CHECK_EQ_U64(h->limits.max_header_bytes, 32768);
    CHECK_EQ_U64(h->limits.max_headers, 50);
    CHECK_EQ_U64(h->limits.max_body_buffered, 2 << 20);
    CHECK_EQ_U64(h->timeouts.request_header_ms, 5000);
    CHECK_EQ_U64(h->timeouts.keepalive_ms, 20000);
    CHECK_EQ_U64(h->timeouts.connect_ms, 3000);
    CHECK_EQ_U64(h->timeouts.response_ms, 15000);
    CHECK_EQ_U64(h->timeouts.request_ms, 60000);
    CHECK_EQ_U64(h->max_requests_per_conn, 1000);
    CHECK_EQ_U64(h->trusted_proxies.count, 2);
    CHECK(h->access_log.format == LOG_FORMAT_JSON);
    CHECK(h->access_log.path && strcmp(h->access_log.path, "/tmp/access.log") == 0);
    /* listener filters: forwarded (both forms, trusting the listener's proxies), request id
     * (lowercased); traceparent is off */
    CHECK_EQ_U64(h->nfilters, 2);
    CHECK(h->filters[0].ops == &filter_forwarded);
    const struct filter_forwarded_conf *fw = h->filters[0].conf;
    CHECK(fw->x_forwarded && fw->forwarded && fw->trusted == &h->trusted_proxies);
    CHECK(h->filters[1].ops == &filter_request_id);
    const struct filter_request_id_conf *rid = h->filters[1].conf;
    CHECK(strcmp(rid->header, "x-trace-id") == 0 && rid->header_len == 10);
    /* five routes and the listener's backend as a last, catch-all one */
    CHECK_EQ_U64(h->nroutes, 6);
    const struct http_route *d = route(c, 5);
    CHECK(strcmp(d->name, "default") == 0);
    CHECK(d->action == ROUTE_BACKEND && d->backend == config_backend(c, "app"));
    CHECK(d->match.nhosts == 0 && d->match.path.kind == SM_ANY && d->nfilters == 0);
    CHECK_EQ_U64(d->retry.tries, 3);
    CHECK_EQ_U64(d->retry.on, RETRY_ON_RESET);
    config_unref(c);
}

static void check_api_route(const struct config *c)
{
    const struct http_route *r = route(c, 0);
    const struct route_match *m = &r->match;
    CHECK(strcmp(r->name, "api") == 0);
    CHECK(r->action == ROUTE_BACKEND && r->backend == config_backend(c, "api_v1"));
    CHECK_EQ_U64(m->nhosts, 2);
    CHECK(strcmp(m->hosts[0].text, "api.example.com") == 0 && !m->hosts[0].wildcard);
    CHECK_EQ_U64(m->hosts[0].len, 15);
    CHECK(strcmp(m->hosts[1].text, ".api.example.com") == 0 && m->hosts[1].wildcard);
    CHECK(m->path.kind == SM_PREFIX && strcmp(m->path.text, "/v1/") == 0);
    CHECK_EQ_U64(m->methods, (1u << HTTP_M_GET) | (1u << HTTP_M_POST));
    CHECK_EQ_U64(m->nother_methods, 1);
    CHECK(strcmp(m->other_methods[0], "PURGE") == 0);
    CHECK_EQ_U64(m->nheaders, 4);
    CHECK(strcmp(m->headers[0].name, "x-canary") == 0 && m->headers[0].value.kind == SM_EXACT);
    CHECK(strcmp(m->headers[0].value.text, "1") == 0);
    CHECK(m->headers[1].value.kind == SM_PRESENT);
    CHECK(m->headers[2].value.kind == SM_REGEX && m->headers[2].value.re != NULL);
    CHECK(m->headers[3].value.kind == SM_PREFIX && strcmp(m->headers[3].value.text, "a") == 0);
    CHECK(m->ncookies == 1 && m->cookies[0].value.kind == SM_PRESENT);
    CHECK(m->nqueries == 1 && strcmp(m->queries[0].name, "beta") == 0);
    CHECK_EQ_U64(r->nfilters, 0);
    CHECK_EQ_U64(r->retry.tries, 3);
    CHECK_EQ_U64(r->retry.on, RETRY_ON_RESET);
    CHECK_EQ_U64(r->retry.per_try_timeout_ms, 0);
}

/* The split route: filters in the fixed order whatever the order of the keys. */
static void check_split_route(const struct config *c)
{
    const struct http_route *r = route(c, 1);
    CHECK(strcmp(r->name, "route#2") == 0);
    CHECK(r->action == ROUTE_SPLIT && r->nsplit == 2 && r->split_total == 100);
    CHECK(r->split[0].backend == config_backend(c, "blue") && r->split[0].weight == 90);
    CHECK(r->split[1].backend == config_backend(c, "green") && r->split[1].weight == 10);
    CHECK(r->match.path.kind == SM_REGEX);
    CHECK_EQ_U64(r->retry.tries, 2);
    CHECK_EQ_U64(r->retry.on, RETRY_ON_RESET | RETRY_ON_502 | RETRY_ON_503 | RETRY_ON_504);
    CHECK_EQ_U64(r->retry.per_try_timeout_ms, 2000);
    CHECK_EQ_U64(r->nfilters, 3);
    CHECK(r->filters[0].ops == &filter_path_rewrite);
    CHECK(r->filters[1].ops == &filter_request_headers);
    CHECK(r->filters[2].ops == &filter_response_headers);
    const struct filter_path_rewrite_conf *pr = r->filters[0].conf;
    CHECK(pr->prefix == NULL && pr->re != NULL && strcmp(pr->replace, "/users/$1") == 0);
    const struct filter_headers_conf *hc = r->filters[1].conf;
    CHECK_EQ_U64(hc->nops, 4);
    CHECK(hc->ops[0].kind == HDR_SET && strcmp(hc->ops[0].name, "x-a") == 0);
    CHECK(strcmp(hc->ops[0].value, "1") == 0 && hc->ops[0].value_len == 1);
    CHECK(hc->ops[1].kind == HDR_ADD && strcmp(hc->ops[1].value, "{client_ip}") == 0);
    CHECK(hc->ops[2].kind == HDR_REMOVE && strcmp(hc->ops[2].name, "x-c") == 0);
    CHECK(hc->ops[3].kind == HDR_REMOVE && hc->ops[3].value == NULL);
}

static void check_answer_routes(const struct config *c)
{
    const struct http_route *r = route(c, 2);
    CHECK(r->action == ROUTE_ANSWER && r->backend == NULL && r->nfilters == 1);
    CHECK(r->filters[0].ops == &filter_redirect);
    const struct filter_redirect_conf *rd = r->filters[0].conf;
    CHECK_EQ_U64(rd->status, 301);
    CHECK(strcmp(rd->location, "https://{host}{request_uri}") == 0);
    CHECK(r->match.path.kind == SM_EXACT && strcmp(r->match.path.text, "/old") == 0);

    r = route(c, 3);
    CHECK(strcmp(r->name, "route#4") == 0);
    CHECK(r->action == ROUTE_ANSWER && r->nfilters == 1 && r->filters[0].ops == &filter_respond);
    const struct filter_respond_conf *rs = r->filters[0].conf;
    CHECK_EQ_U64(rs->status, 200);
    CHECK(rs->body_len == 6 && memcmp(rs->body, "hello\n", 6) == 0);
    CHECK(strcmp(rs->content_type, "text/plain; charset=utf-8") == 0);

    r = route(c, 4);
    const struct filter_path_rewrite_conf *pr = r->filters[0].conf;
    CHECK(pr->prefix && strcmp(pr->prefix, "/v1") == 0 && pr->prefix_len == 3);
    CHECK(pr->replace && pr->replace_len == 0 && pr->re == NULL);
}

TEST(http_config_routes)
{
    char yaml[sizeof(full_yaml)];
    strcpy(yaml, full_yaml);
    char *bad = strstr(yaml, "        respond_never: ~\n");
    memmove(bad, bad + 25, strlen(bad + 25) + 1);
    struct config *c = load_ok(yaml);
    if (!c)
        return;
    check_api_route(c);
    check_split_route(c);
    check_answer_routes(c);
    config_unref(c);
}

TEST(http_config_backend_keys)
{
    char yaml[sizeof(full_yaml)];
    strcpy(yaml, full_yaml);
    char *bad = strstr(yaml, "        respond_never: ~\n");
    memmove(bad, bad + 25, strlen(bad + 25) + 1);
    struct config *c = load_ok(yaml);
    if (!c)
        return;
    const struct backend *b = config_backend(c, "app");
    CHECK(b->hash_on == HASH_HEADER && strcmp(b->hash_name, "X-User") == 0);
    CHECK(b->sticky.enabled && strcmp(b->sticky.cookie, "srv") == 0);
    CHECK_EQ_U64(b->sticky.max_age_s, 3600);
    CHECK(b->sticky.secure && !b->sticky.http_only);
    CHECK_EQ_U64(b->pool_max_idle, 8);
    CHECK_EQ_U64(b->pool_idle_timeout_ms, 5000);
    CHECK(b->hc.type == HC_HTTP);
    CHECK(strcmp(b->hc.http_path, "/healthz") == 0 && strcmp(b->hc.http_method, "HEAD") == 0);
    CHECK(strcmp(b->hc.http_host, "example.com") == 0);
    CHECK(b->hc.status_min == 200 && b->hc.status_max == 299);

    b = config_backend(c, "api_v1");
    CHECK(b->hash_on == HASH_PATH && b->hash_name == NULL);
    CHECK(b->sticky.enabled && strcmp(b->sticky.cookie, "strata_server") == 0);
    CHECK(b->sticky.max_age_s == 0 && !b->sticky.secure && b->sticky.http_only);
    CHECK_EQ_U64(b->pool_max_idle, 1000); /* defaults */
    CHECK_EQ_U64(b->pool_idle_timeout_ms, 30000);
    CHECK(b->hc.type == HC_NONE);

    b = config_backend(c, "blue");
    CHECK(b->hash_on == HASH_COOKIE && strcmp(b->hash_name, "uid") == 0);
    CHECK(!b->sticky.enabled && b->sticky.cookie == NULL);

    b = config_backend(c, "green");
    CHECK(b->hash_on == HASH_SOURCE);
    CHECK(b->hc.type == HC_HTTP && strcmp(b->hc.http_path, "/") == 0);
    CHECK(strcmp(b->hc.http_method, "GET") == 0 && b->hc.http_host == NULL);
    CHECK(b->hc.status_min == 200 && b->hc.status_max == 399);
    config_unref(c);
}

TEST(http_config_sticky_ids)
{
    char yaml[sizeof(full_yaml)];
    strcpy(yaml, full_yaml);
    char *bad = strstr(yaml, "        respond_never: ~\n");
    memmove(bad, bad + 25, strlen(bad + 25) + 1);
    struct config *c = load_ok(yaml), *c2 = load_ok(yaml);
    if (!c || !c2)
        goto out;
    const struct backend *b = config_backend(c, "app");
    /* 16 lowercase hex digits of hash64("backend/server") */
    char want[17];
    uint64_t h = hash64("app/a1", 6, 0);
    snprintf(want, sizeof(want), "%016llx", (unsigned long long)h);
    CHECK(strcmp(b->servers[0].sticky_id, want) == 0);
    CHECK(strcmp(b->servers[0].sticky_id, b->servers[1].sticky_id) != 0);
    for (uint32_t i = 0; i < c->nbackends; i++) {
        for (uint32_t j = 0; j < c->backends[i].nservers; j++) {
            const char *id = c->backends[i].servers[j].sticky_id;
            CHECK_EQ_U64(strlen(id), 16);
            CHECK_EQ_U64(strspn(id, "0123456789abcdef"), 16);
            /* stable: another load gives the same ids */
            CHECK(strcmp(id, c2->backends[i].servers[j].sticky_id) == 0);
        }
    }
out:
    config_unref(c);
    config_unref(c2);
}

#define B_APP "backends:\n  app:\n    servers: [127.0.0.1:9001]\n"

TEST(http_config_defaults)
{
    struct config *c =
        load_ok("listeners:\n"
                "  - { name: web, listen: 127.0.0.1:8080, mode: http, backend: app }\n"
                "  - { name: pg, listen: 127.0.0.1:5432, backend: app }\n" B_APP);
    if (!c)
        return;
    const struct http_listener_conf *h = &c->listeners[0].http;
    CHECK_EQ_U64(h->limits.max_request_line, 8192);
    CHECK_EQ_U64(h->limits.max_header_bytes, 16384);
    CHECK_EQ_U64(h->limits.max_headers, 100);
    CHECK_EQ_U64(h->limits.max_body_buffered, 1 << 20);
    CHECK_EQ_U64(h->timeouts.request_header_ms, 10000);
    CHECK_EQ_U64(h->timeouts.keepalive_ms, 60000);
    CHECK_EQ_U64(h->timeouts.connect_ms, 0);
    CHECK_EQ_U64(h->timeouts.response_ms, 30000);
    CHECK_EQ_U64(h->timeouts.request_ms, 0);
    CHECK_EQ_U64(h->max_requests_per_conn, 0);
    CHECK_EQ_U64(h->trusted_proxies.count, 0);
    CHECK(h->access_log.format == LOG_FORMAT_TEXT && h->access_log.path == NULL);
    /* forwarded (X-Forwarded-*), request id (x-request-id), traceparent */
    CHECK_EQ_U64(h->nfilters, 3);
    CHECK(h->filters[0].ops == &filter_forwarded);
    const struct filter_forwarded_conf *fw = h->filters[0].conf;
    CHECK(fw->x_forwarded && !fw->forwarded);
    CHECK(h->filters[1].ops == &filter_request_id);
    CHECK(strcmp(((const struct filter_request_id_conf *)h->filters[1].conf)->header,
                 "x-request-id") == 0);
    CHECK(h->filters[2].ops == &filter_traceparent);
    CHECK(((const struct filter_traceparent_conf *)h->filters[2].conf)->enabled);
    /* only the listener's backend: one route taking everything */
    CHECK_EQ_U64(h->nroutes, 1);
    CHECK(h->routes[0].action == ROUTE_BACKEND && h->routes[0].backend == &c->backends[0]);
    /* a tcp listener has no HTTP routes nor filters */
    CHECK(c->listeners[1].mode == MODE_TCP && c->listeners[1].http.nroutes == 0);
    CHECK(c->listeners[1].http.nfilters == 0 && c->listeners[1].http.filters == NULL);
    config_unref(c);

    c = load_ok("listeners:\n"
                "  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n    backlog: 64\n"
                "    http: { forwarded: none, request_id: none, traceparent: off }\n"
                "    routes: [ { respond: { status: 204 } } ]\n" B_APP);
    if (!c)
        return;
    h = &c->listeners[0].http;
    CHECK(h->nfilters == 0 && h->filters == NULL && h->nroutes == 1);
    CHECK_EQ_U64(c->listeners[0].backlog, 64);
    CHECK(strcmp(h->routes[0].name, "route#1") == 0);
    config_unref(c);
}

/* A filter built from a route key carries the ops of that name: the schema's table of
 * filter kinds (config/schema_filters.c) is the only map from keys to filters. */
TEST(http_config_filter_keys_name_their_ops)
{
    struct config *c =
        load_ok("listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n"
                "    http: { forwarded: none, request_id: none, traceparent: off }\n"
                "    routes:\n"
                "      - { backend: app, path_rewrite: { prefix: /x, replace: /z }, "
                "request_headers: { set: { x-a: 1 } },"
                " response_headers: { remove: x-b } }\n"
                "      - { redirect: { location: /y } }\n"
                "      - { respond: { status: 204 } }\n" B_APP);
    if (!c)
        return;
    static const char *const keys[] = {"path_rewrite", "request_headers", "response_headers"};
    const struct http_route *r = route(c, 0);
    CHECK_EQ_U64(r->nfilters, 3);
    for (uint32_t i = 0; i < r->nfilters && i < 3; i++)
        CHECK(strcmp(r->filters[i].ops->name, keys[i]) == 0);
    CHECK(strcmp(route(c, 1)->filters[0].ops->name, "redirect") == 0);
    CHECK(strcmp(route(c, 2)->filters[0].ops->name, "respond") == 0);
    config_unref(c);
}

/* ---- errors ------------------------------------------------------------------------------ */

/* lines 1-4: an http listener without backend; tests append from line 5 */
#define HL "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n"
#define R5 "    routes:\n" /* line 5; a route starts on line 6 */
#define BK                                                                                         \
    "backends:\n  app:\n    servers: [127.0.0.1:9001]\n  blue:\n    servers: [127.0.0.1:9002]\n"

struct bad_case {
    const char *name;
    const char *yaml;
    const char *where; /* "strata.yaml:LINE:COL: error: " */
    const char *msg;   /* expected on the same line */
};

static const struct bad_case bad_cases[] = {
    {"waf paranoia", HL R5 "      - backend: app\n        waf: { paranoia: 5 }\n" BK,
     "strata.yaml:7:26: error: ",
     "listeners[0].routes[0].waf.paranoia: expected an integer from 1 to 4, got \"5\""},
    {"waf mode", HL R5 "      - backend: app\n        waf: { mode: shadow }\n" BK,
     "strata.yaml:7:22: error: ", "listeners[0].routes[0].waf.mode: unknown value \"shadow\""},
    {"waf rules that do not parse",
     HL R5 "      - backend: app\n        waf: { rules: \"SecRule FOO\" }\n" BK,
     "strata.yaml:7:14: error: ", "listeners[0].routes[0].waf: the WAF rules did not load"},
    {"ext_authz unknown backend", HL R5 "      - backend: app\n        ext_authz: { backend: x }\n" BK,
     "strata.yaml:7:31: error: ", "listeners[0].routes[0].ext_authz.backend: no backend named"},
    {"ext_authz failure mode",
     HL R5 "      - backend: app\n        ext_authz: { backend: app, failure_mode: open }\n" BK,
     "strata.yaml:7:50: error: ",
     "listeners[0].routes[0].ext_authz.failure_mode: unknown value \"open\""},
    {"ext_authz reserved field",
     HL R5 "      - backend: app\n        ext_authz: { backend: app, request_headers: [host] }\n" BK,
     "strata.yaml:7:54: error: ", "ext_authz.request_headers[0]: field name \"host\" is a connection"},
    {"unknown backend", HL R5 "      - backend: apq\n" BK, "strata.yaml:6:18: error: ",
     "listeners[0].routes[0].backend: no backend named \"apq\" (did you mean \"app\"?)"},
    {"unknown split backend", HL R5 "      - split: [ { backend: nope, weight: 1 } ]\n" BK,
     "strata.yaml:6:29: error: ", "listeners[0].routes[0].split[0].backend: no backend named"},
    {"bad regex", HL R5 "      - match: { path_regex: '^/u/(' }\n        backend: app\n" BK,
     "strata.yaml:6:30: error: ",
     "listeners[0].routes[0].match.path_regex: invalid regex: missing closing parenthesis at "
     "offset 5"},
    {"bad header regex",
     HL R5 "      - match: { header: { x-a: { regex: 'a{2,1}' } } }\n        backend: app\n" BK,
     "strata.yaml:6:42: error: ",
     "listeners[0].routes[0].match.header.x-a.regex: invalid regex: numbers out of order in {} "
     "quantifier at offset 5"},
    {"split weight out of range", HL R5 "      - split: [ { backend: app, weight: 101 } ]\n" BK,
     "strata.yaml:6:42: error: ",
     "listeners[0].routes[0].split[0].weight: expected an integer from 0 to 100, got \"101\""},
    {"split weights all zero",
     HL R5 "      - split: [ { backend: app, weight: 0 }, { backend: blue, weight: 0 } ]\n" BK,
     "strata.yaml:6:16: error: ",
     "listeners[0].routes[0]: every weight is 0: at least one must be above 0"},
    {"split weight missing", HL R5 "      - split: [ { backend: app } ]\n" BK,
     "strata.yaml:6:18: error: ", "split[0]: missing required key \"weight\""},
    {"redirect status", HL R5 "      - redirect: { status: 305, location: /x }\n" BK,
     "strata.yaml:6:29: error: ",
     "listeners[0].routes[0].redirect.status: expected 301, 302, 303, 307 or 308, got 305"},
    {"redirect without location", HL R5 "      - redirect: { status: 301 }\n" BK,
     "strata.yaml:6:19: error: ", "routes[0].redirect: missing required key \"location\""},
    {"redirect location with a space", HL R5 "      - redirect: { location: \"/a b\" }\n" BK,
     "strata.yaml:6:31: error: ", "redirect.location: expected a URL without spaces"},
    {"path and path_prefix", HL R5 "      - match: { path: /a, path_prefix: /b }\n" BK,
     "strata.yaml:6:41: error: ",
     "listeners[0].routes[0].match.path_prefix: give only one of `path`, `path_prefix`, "
     "`path_regex` and `grpc`"},
    {"path without slash", HL R5 "      - match: { path: a }\n        backend: app\n" BK,
     "strata.yaml:6:24: error: ", "match.path: expected a path starting with '/'"},
    {"http match key on a tcp route",
     "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n" R5
     "      - { match: { sni: a.com, host: a.com }, backend: app }\n" BK,
     "strata.yaml:5:32: error: ",
     "listeners[0].routes[0].match.host: applies to `mode: http` listeners only"},
    {"http route key on a tcp route",
     "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n" R5
     "      - { backend: app, split: [] }\n" BK,
     "strata.yaml:5:25: error: ",
     "listeners[0].routes[0].split: applies to `mode: http` listeners"},
    {"sni on an http route", HL R5 "      - { match: { sni: a.com }, backend: app }\n" BK,
     "strata.yaml:6:20: error: ",
     "listeners[0].routes[0].match.sni: applies to `mode: tcp` listeners (TLS passthrough) only"},
    {"http section on a tcp listener",
     "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    backend: app\n"
     "    http: { max_headers: 10 }\n" BK,
     "strata.yaml:5:11: error: ", "listeners[0].http: applies to listeners with `mode: http` only"},
    {"routes on a udp listener",
     "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: udp\n" R5
     "      - backend: app\n" BK,
     "strata.yaml:6:7: error: ",
     "listeners[0].routes: applies to `mode: tcp` and `mode: http` listeners only"},
    {"http listener with nothing to do", HL BK,
     "strata.yaml:2:5: error: ", "listeners[0]: missing required key \"backend\" (or \"routes\")"},
    {"unknown retry condition",
     HL R5 "      - backend: app\n        retry: { on: [reset, 500] }\n" BK,
     "strata.yaml:7:30: error: ",
     "listeners[0].routes[0].retry.on[1]: unknown retry condition \"500\", expected reset, "
     "502, 503 or 504 (did you mean \"502\"?)"},
    {"retry on an answer",
     HL R5 "      - respond: { status: 200 }\n        retry: { tries: 2 }\n" BK,
     "strata.yaml:7:9: error: ", "routes[0]: applies to routes that proxy"},
    {"header name not a token",
     HL R5 "      - backend: app\n        request_headers: { set: { \"x a\": \"1\" } }\n" BK,
     "strata.yaml:7:35: error: ",
     "listeners[0].routes[0].request_headers.set.x a: expected a header name"},
    {"framing header set",
     HL R5 "      - backend: app\n        request_headers: { set: { Content-Length: \"5\" } }\n" BK,
     "strata.yaml:7:35: error: ",
     "header name \"Content-Length\" is a connection or framing field that Strata manages"},
    {"hop-by-hop header removed",
     HL R5 "      - backend: app\n        response_headers: { remove: [x-a, connection] }\n" BK,
     "strata.yaml:7:43: error: ",
     "response_headers.remove[1]: header name \"connection\" is a connection or framing field"},
    {"host header matched", HL R5 "      - { match: { header: { Host: a } }, backend: app }\n" BK,
     "strata.yaml:6:30: error: ",
     "match.header.Host: header name \"Host\" is a connection or framing field"},
    {"unknown template variable",
     HL R5 "      - backend: app\n        request_headers: { add: { x-b: \"{client_ipp}\" } }\n" BK,
     "strata.yaml:7:40: error: ",
     "request_headers.add.x-b: unknown variable {client_ipp} (write {{ for a literal {)"},
    {"backend and split",
     HL R5 "      - backend: app\n        split: [ { backend: app, weight: 1 } ]\n" BK,
     "strata.yaml:7:9: error: ",
     "listeners[0].routes[0]: give only one of `backend`, `split`, `redirect` and `respond` "
     "(`backend` is given too)"},
    {"redirect and respond",
     HL R5 "      - redirect: { location: /a }\n        respond: { status: 200 }\n" BK,
     "strata.yaml:7:9: error: ", "(`redirect` is given too)"},
    {"route without action", HL R5 "      - match: { path: /a }\n" BK, "strata.yaml:6:9: error: ",
     "listeners[0].routes[0]: missing what the route does: `backend`, `split`, `redirect` or "
     "`respond`"},
    {"respond status", HL R5 "      - respond: { status: 700 }\n" BK, "strata.yaml:6:28: error: ",
     "respond.status: expected a status code from 200 to 599, got \"700\""},
    {"respond 204 with a body", HL R5 "      - respond: { status: 204, body: x }\n" BK,
     "strata.yaml:6:39: error: ", "respond.body: a 204 answer has no body"},
    {"lowercase method", HL R5 "      - { match: { method: [GET, post] }, backend: app }\n" BK,
     "strata.yaml:6:34: error: ",
     "match.method[1]: methods are case-sensitive: did you mean \"POST\"?"},
    {"host with port", HL R5 "      - { match: { host: \"a.com:80\" }, backend: app }\n" BK,
     "strata.yaml:6:26: error: ",
     "match.host: expected a host name, \"*.domain\" or an IP address, without port"},
    {"present false",
     HL R5 "      - { match: { cookie: { a: { present: false } } }, backend: app }\n" BK,
     "strata.yaml:6:44: error: ", "match.cookie.a.present: only `present: true` is supported"},
    {"unknown value form",
     HL R5 "      - { match: { query: { a: { suffix: x } } }, backend: app }\n" BK,
     "strata.yaml:6:34: error: ",
     "match.query.a.suffix: unknown key, expected one of: exact, prefix, regex, present"},
    {"duplicate route name",
     HL R5 "      - { name: a, backend: app }\n      - { name: a, backend: app }\n" BK,
     "strata.yaml:7:17: error: ", "routes[1].name: duplicate name \"a\", already used by"},
    {"path_rewrite prefix and regex",
     HL R5 "      - backend: app\n        path_rewrite: { prefix: /a, regex: a, replace: / }\n" BK,
     "strata.yaml:7:37: error: ", "path_rewrite: give either `prefix` or `regex`, not both"},
    {"path_rewrite without pattern",
     HL R5 "      - backend: app\n        path_rewrite: { replace: / }\n" BK,
     "strata.yaml:7:23: error: ", "path_rewrite: expected `prefix` or `regex`"},
    {"path_rewrite bad regex",
     HL R5 "      - backend: app\n        path_rewrite: { regex: '(', replace: / }\n" BK,
     "strata.yaml:7:32: error: ", "path_rewrite.regex: invalid regex: missing closing parenthesis"},
    {"hash on round robin", HL "    backend: app\n" BK "    hash: path\n",
     "strata.yaml:11:11: error: ",
     "backends.blue.hash: is used by `balance: source_hash` or `balance: maglev` only"},
    {"hash header not a token",
     HL "    backend: app\n" BK "    balance: maglev\n    hash: { header: \"a b\" }\n",
     "strata.yaml:12:21: error: ", "backends.blue.hash.header: expected a header name"},
    {"hash form", HL "    backend: app\n" BK "    balance: maglev\n    hash: [x]\n",
     "strata.yaml:12:11: error: ", "backends.blue.hash: expected `path`, `source`"},
    {"sticky cookie name", HL "    backend: app\n" BK "    sticky: { cookie: \"a;b\" }\n",
     "strata.yaml:11:23: error: ",
     "backends.blue.sticky.cookie: expected a cookie name (a token), got \"a;b\""},
    {"sticky value", HL "    backend: app\n" BK "    sticky: maybe\n", "strata.yaml:11:13: error: ",
     "backends.blue.sticky: expected true, false or a mapping, got \"maybe\""},
    {"forwarded value", HL "    backend: app\n    http: { forwarded: x-forwardd }\n" BK,
     "strata.yaml:6:24: error: ",
     "listeners[0].http.forwarded: expected one of x-forwarded, rfc7239, both, none, got "
     "\"x-forwardd\" (did you mean \"x-forwarded\"?)"},
    {"request_id framing field",
     HL "    backend: app\n    http: { request_id: Transfer-Encoding }\n" BK,
     "strata.yaml:6:25: error: ",
     "listeners[0].http.request_id: header name \"Transfer-Encoding\" is a connection"},
    {"header size limit", HL "    backend: app\n    http: { max_header_size: 128k }\n" BK,
     "strata.yaml:6:30: error: ",
     "listeners[0].http.max_header_size: expected a size from 1024 to 65536 bytes"},
    {"access log format", HL "    backend: app\n    http: { access_log: { format: xml } }\n" BK,
     "strata.yaml:6:35: error: ", "listeners[0].http.access_log.format: unknown value \"xml\""},
    {"http health key on a tcp check",
     HL "    backend: app\n" BK "    health_check: { type: tcp, path: /x }\n",
     "strata.yaml:11:32: error: ", "backends.blue.health_check.path: applies to type http only"},
    {"health check status range",
     HL "    backend: app\n" BK "    health_check: { type: http, expect_status: 400-200 }\n",
     "strata.yaml:11:48: error: ",
     "health_check.expect_status: expected a status (100..599) or a range such as 200-399"},
    {"health check path", HL "    backend: app\n" BK "    health_check: { type: http, path: x }\n",
     "strata.yaml:11:39: error: ",
     "backends.blue.health_check.path: expected a path starting with '/', without spaces"},
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

TEST(http_config_errors_each_kind)
{
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

/* Everything built before an error is freed (ASan checks it): the full document with one
 * unknown key fails after every route, filter, regex and backend key was parsed. */
TEST(http_config_failed_load_frees_everything)
{
    struct config_errors e;
    struct config *c = load(full_yaml, &e);
    CHECK(c == NULL);
    CHECK_EQ_U64(e.count, 1);
    CHECK_STR_CONTAINS(e.text, "strata.yaml:33:9: error: listeners[0].routes[0].respond_never: "
                               "unknown key");
    config_errors_free(&e);
}
