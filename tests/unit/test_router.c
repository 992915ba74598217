/* test_router.c — HTTP route matching: every match kind (host with wildcards, ports and
 * trailing dots; exact, prefix and regex paths; methods; headers, cookies and query
 * parameters with every value form), route order and the first match, weighted splits
 * over 10,000 random values, regex replacement, and regexes used from several threads.
 * Routes are built by the configuration loader, requests by hand.
 */
#include <pthread.h>
#include <string.h>

#include "config/config.h"
#include "core/bug.h"
#include "core/hash.h"
#include "http/msg.h"
#include "http/router.h"
#include "test.h"

#define LISTENER "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n"
#define BACKENDS                                                                                   \
    "backends:\n  app: { servers: [127.0.0.1:9001] }\n  blue: { servers: [127.0.0.1:9002] }\n"     \
    "  green: { servers: [127.0.0.1:9003] }\n"

static struct config *load_routes(const char *routes)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s    routes:\n%s%s", LISTENER, routes, BACKENDS);
    struct config_errors e = {0};
    struct config *c = config_load_string("router.yaml", yaml, 1, &e);
    if (!c)
        test_fail(__FILE__, __LINE__, "routes do not load:\n%s", e.text ? e.text : "?");
    config_errors_free(&e);
    return c;
}

/* A request "METHOD target" to `authority` (NULL: none); fields added with hdr(). */
static struct http_msg request(const char *method, const char *authority, const char *target)
{
    struct http_msg m = {.is_request = true, .version = 11};
    m.method_name = hstr_c(method);
    m.method = http_method_from(m.method_name);
    if (authority)
        m.authority = hstr_c(authority);
    const char *q = strchr(target, '?');
    m.path = (struct hstr){target, (uint32_t)(q ? (size_t)(q - target) : strlen(target))};
    if (q)
        m.query = hstr_c(q + 1);
    return m;
}

static void hdr(struct http_msg *m, struct arena *a, const char *name, const char *value)
{
    CHECK(http_hdr_add(m, a, hstr_c(name), hstr_c(value)) == 0);
}

/* The name of the route `m` takes, or "-" for none. */
static const char *routed(const struct config *c, const struct http_msg *m)
{
    const struct http_route *r = router_match(&c->listeners[0].http, m, NULL);
    return r ? r->name : "-";
}

#define CHECK_ROUTE(c, m, name)                                                                    \
    do {                                                                                           \
        const char *got_ = routed(c, m);                                                           \
        if (strcmp(got_, name) != 0)                                                               \
            test_fail(__FILE__, __LINE__, "routed to %s, expected %s", got_, name);                \
    } while (0)

TEST(router_hosts)
{
    struct config *c = load_routes("      - { name: exact, match: { host: Api.Example.com }, "
                                   "backend: app }\n"
                                   "      - { name: wild, match: { host: \"*.example.com\" }, "
                                   "backend: app }\n"
                                   "      - { name: list, match: { host: [a.test, \"[::1]\", "
                                   "10.0.0.1] }, backend: app }\n"
                                   "      - { name: any, backend: app }\n");
    if (!c)
        return;
    struct http_msg m = request("GET", "api.example.com", "/");
    CHECK_ROUTE(c, &m, "exact");
    m.authority = hstr_c("API.EXAMPLE.COM:8080"); /* case and port ignored */
    CHECK_ROUTE(c, &m, "exact");
    m.authority = hstr_c("api.example.com.:80"); /* one trailing dot ignored */
    CHECK_ROUTE(c, &m, "exact");
    m.authority = hstr_c("api.example.com..");
    CHECK_ROUTE(c, &m, "any");
    m.authority = hstr_c("www.example.com");
    CHECK_ROUTE(c, &m, "wild");
    m.authority = hstr_c("a.b.Example.COM:443"); /* any depth under the suffix */
    CHECK_ROUTE(c, &m, "wild");
    m.authority = hstr_c("example.com"); /* never the apex */
    CHECK_ROUTE(c, &m, "any");
    m.authority = hstr_c("badexample.com");
    CHECK_ROUTE(c, &m, "any");
    m.authority = hstr_c(".example.com"); /* nothing before the suffix */
    CHECK_ROUTE(c, &m, "any");
    m.authority = hstr_c("[::1]:8080");
    CHECK_ROUTE(c, &m, "list");
    m.authority = hstr_c("10.0.0.1:80");
    CHECK_ROUTE(c, &m, "list");
    m.authority = hstr_c("a.test");
    CHECK_ROUTE(c, &m, "list");
    m.authority = (struct hstr){NULL, 0}; /* HTTP/1.0 without Host */
    CHECK_ROUTE(c, &m, "any");
    config_unref(c);
}

TEST(router_paths)
{
    struct config *c =
        load_routes("      - { name: exact, match: { path: /a }, backend: app }\n"
                    "      - { name: prefix, match: { path_prefix: /v1/ }, "
                    "backend: app }\n"
                    "      - { name: anchored, match: { path_regex: '^/u/[0-9]+$' }, "
                    "backend: app }\n"
                    "      - { name: search, match: { path_regex: '\\.php' }, "
                    "backend: app }\n"
                    "      - { name: any, backend: app }\n");
    if (!c)
        return;
    struct http_msg m = request("GET", "h", "/a");
    CHECK_ROUTE(c, &m, "exact");
    m = request("GET", "h", "/a?x=1"); /* the query is not part of the path */
    CHECK_ROUTE(c, &m, "exact");
    m = request("GET", "h", "/a/");
    CHECK_ROUTE(c, &m, "any");
    m = request("GET", "h", "/A"); /* paths are case-sensitive */
    CHECK_ROUTE(c, &m, "any");
    m = request("GET", "h", "/v1/users");
    CHECK_ROUTE(c, &m, "prefix");
    m = request("GET", "h", "/v1/");
    CHECK_ROUTE(c, &m, "prefix");
    m = request("GET", "h", "/v1");
    CHECK_ROUTE(c, &m, "any");
    m = request("GET", "h", "/u/42");
    CHECK_ROUTE(c, &m, "anchored");
    m = request("GET", "h", "/u/42x");
    CHECK_ROUTE(c, &m, "any");
    m = request("GET", "h", "/x/u/42");
    CHECK_ROUTE(c, &m, "any");
    m = request("GET", "h", "/x/index.php?a=b");
    CHECK_ROUTE(c, &m, "search");
    config_unref(c);
}

TEST(router_methods)
{
    struct config *c =
        load_routes("      - { name: read, match: { method: [GET, HEAD] }, "
                    "backend: app }\n"
                    "      - { name: purge, match: { method: PURGE }, backend: app }\n"
                    "      - { name: any, backend: app }\n");
    if (!c)
        return;
    struct http_msg m = request("GET", "h", "/");
    CHECK_ROUTE(c, &m, "read");
    m = request("HEAD", "h", "/");
    CHECK_ROUTE(c, &m, "read");
    m = request("POST", "h", "/");
    CHECK_ROUTE(c, &m, "any");
    m = request("PURGE", "h", "/");
    CHECK_ROUTE(c, &m, "purge");
    m = request("PURGEX", "h", "/");
    CHECK_ROUTE(c, &m, "any");
    config_unref(c);
}

TEST(router_headers)
{
    struct config *c = load_routes(
        "      - { name: exact, match: { header: { X-Canary: \"1\" } }, backend: app }\n"
        "      - { name: present, match: { header: { x-debug: { present: true } } }, "
        "backend: app }\n"
        "      - { name: regex, match: { header: { user-agent: { regex: '^curl/' } } }, "
        "backend: app }\n"
        "      - { name: prefix, match: { header: { x-p: { prefix: ab } } }, backend: app }\n"
        "      - { name: any, backend: app }\n");
    if (!c)
        return;
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = request("GET", "h", "/");
    CHECK_ROUTE(c, &m, "any");
    hdr(&m, &a, "x-canary", "1"); /* names case-insensitive */
    CHECK_ROUTE(c, &m, "exact");

    m = request("GET", "h", "/");
    hdr(&m, &a, "X-Canary", "2"); /* values exact */
    hdr(&m, &a, "X-Debug", "");
    CHECK_ROUTE(c, &m, "present");
    hdr(&m, &a, "X-CANARY", "1"); /* any field of the name */
    CHECK_ROUTE(c, &m, "exact");

    m = request("GET", "h", "/");
    hdr(&m, &a, "User-Agent", "curl/8.5");
    CHECK_ROUTE(c, &m, "regex");
    m = request("GET", "h", "/");
    hdr(&m, &a, "User-Agent", "Mozilla curl/8.5");
    CHECK_ROUTE(c, &m, "any");

    m = request("GET", "h", "/");
    hdr(&m, &a, "x-p", "abc");
    CHECK_ROUTE(c, &m, "prefix");
    m = request("GET", "h", "/");
    hdr(&m, &a, "x-p", "a");
    CHECK_ROUTE(c, &m, "any");
    arena_free(&a);
    config_unref(c);
}

TEST(router_cookies_and_query)
{
    struct config *c = load_routes(
        "      - { name: both, match: { cookie: { session: { present: true } }, "
        "query: { beta: \"1\" } }, backend: app }\n"
        "      - { name: cookie, match: { cookie: { v: { regex: '^[0-9]+$' } } }, backend: app }\n"
        "      - { name: flag, match: { query: { debug: { present: true } } }, backend: app }\n"
        "      - { name: any, backend: app }\n");
    if (!c)
        return;
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = request("GET", "h", "/?beta=1");
    CHECK_ROUTE(c, &m, "any"); /* every condition must hold */
    hdr(&m, &a, "Cookie", "a=b; session=xyz");
    CHECK_ROUTE(c, &m, "both");
    m = request("GET", "h", "/?beta=2");
    hdr(&m, &a, "Cookie", "session=xyz");
    CHECK_ROUTE(c, &m, "any");
    m = request("GET", "h", "/");
    hdr(&m, &a, "Cookie", "Session=1; v=123");
    CHECK_ROUTE(c, &m, "cookie"); /* cookie names case-sensitive */
    m = request("GET", "h", "/");
    hdr(&m, &a, "Cookie", "v=12a");
    CHECK_ROUTE(c, &m, "any");
    m = request("GET", "h", "/x?a=1&debug");
    CHECK_ROUTE(c, &m, "flag");
    m = request("GET", "h", "/x?debugger=1");
    CHECK_ROUTE(c, &m, "any");
    arena_free(&a);
    config_unref(c);
}

/* Routes are tried in order: the first that holds wins, even when a later one is more
 * specific; the listener's backend is a last catch-all; without it, no route is NULL. */
TEST(router_order_and_first_match)
{
    struct config *c = load_routes(
        "      - { name: api, match: { host: api.test, path_prefix: /v1/ }, backend: app }\n"
        "      - { name: broad, match: { path_prefix: / }, backend: app }\n"
        "      - { name: specific, match: { path: /v1/x }, backend: app }\n");
    if (!c)
        return;
    struct http_msg m = request("GET", "api.test", "/v1/x");
    CHECK_ROUTE(c, &m, "api");
    m.authority = hstr_c("other.test");
    CHECK_ROUTE(c, &m, "broad");
    m = request("GET", "h", "*"); /* OPTIONS * has no path starting with '/' */
    CHECK_ROUTE(c, &m, "-");
    config_unref(c);

    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "%s    backend: green\n    routes:\n"
             "      - { name: a, match: { path: /a }, backend: app }\n%s",
             LISTENER, BACKENDS);
    struct config_errors e = {0};
    c = config_load_string("router.yaml", yaml, 1, &e);
    CHECK(c != NULL);
    config_errors_free(&e);
    if (!c)
        return;
    m = request("GET", "h", "/b");
    CHECK_ROUTE(c, &m, "default");
    CHECK(route_pick_backend(router_match(&c->listeners[0].http, &m, NULL), 0) ==
          config_backend(c, "green"));
    config_unref(c);
}

/* 90/10 and 1/0/3 splits over 10,000 random values: shares within 2 points, weight 0 never
 * chosen; answers pick no backend. */
TEST(router_split_distribution)
{
    struct config *c = load_routes(
        "      - name: ninety\n        match: { path: /a }\n"
        "        split: [ { backend: blue, weight: 90 }, { backend: green, weight: 10 } ]\n"
        "      - name: zero\n        match: { path: /b }\n"
        "        split: [ { backend: blue, weight: 1 }, { backend: app, weight: 0 },\n"
        "                 { backend: green, weight: 3 } ]\n"
        "      - { name: answer, respond: { status: 200 } }\n");
    if (!c)
        return;
    const struct http_route *r = &c->listeners[0].http.routes[0];
    const struct backend *blue = config_backend(c, "blue"), *green = config_backend(c, "green");
    const struct backend *app = config_backend(c, "app");
    uint64_t rng = 0x1234567887654321ull;
    unsigned nblue = 0, ngreen = 0, other = 0;
    for (int i = 0; i < 10000; i++) {
        const struct backend *b = route_pick_backend(r, rng_next(&rng));
        nblue += b == blue;
        ngreen += b == green;
        other += b != blue && b != green;
    }
    CHECK(nblue >= 8800 && nblue <= 9200);
    CHECK(ngreen >= 800 && ngreen <= 1200);
    CHECK_EQ_U64(other, 0);

    r = &c->listeners[0].http.routes[1];
    CHECK_EQ_U64(r->split_total, 4);
    nblue = ngreen = other = 0;
    for (int i = 0; i < 10000; i++) {
        const struct backend *b = route_pick_backend(r, rng_next(&rng));
        nblue += b == blue;
        ngreen += b == green;
        other += b == app || !b;
    }
    CHECK(nblue >= 2300 && nblue <= 2700);
    CHECK(ngreen >= 7300 && ngreen <= 7700);
    CHECK_EQ_U64(other, 0);
    /* cumulative: rnd % 4 = 0 → blue, 1..3 → green */
    CHECK(route_pick_backend(r, 4) == blue && route_pick_backend(r, 5) == green);
    CHECK(route_pick_backend(r, 7) == green);

    CHECK(route_pick_backend(&c->listeners[0].http.routes[2], 1) == NULL);
    config_unref(c);
}

TEST(router_str_match)
{
    struct str_match any = {.kind = SM_ANY}, present = {.kind = SM_PRESENT};
    CHECK(str_match_holds(&any, NULL, 0) && str_match_holds(&any, "x", 1));
    CHECK(!str_match_holds(&present, NULL, 0) && str_match_holds(&present, "", 0));
    struct str_match exact = {.kind = SM_EXACT, .text = "abc", .len = 3};
    CHECK(str_match_holds(&exact, "abc", 3) && !str_match_holds(&exact, "abcd", 4));
    CHECK(!str_match_holds(&exact, "abd", 3) && !str_match_holds(&exact, NULL, 0));
    struct str_match prefix = {.kind = SM_PREFIX, .text = "ab", .len = 2};
    CHECK(str_match_holds(&prefix, "abc", 3) && !str_match_holds(&prefix, "a", 1));

    struct str_match re = {0};
    char err[128];
    CHECK(str_match_compile(&re, "^a[0-9]+z$", err, sizeof(err)) == 0);
    CHECK(re.kind == SM_REGEX && strcmp(re.text, "^a[0-9]+z$") == 0);
    CHECK(str_match_holds(&re, "a123z", 5));
    CHECK(!str_match_holds(&re, "a123z!", 6) && !str_match_holds(&re, NULL, 0));
    /* the subject is bytes, not a string: a NUL or invalid UTF-8 inside is fine */
    CHECK(!str_match_holds(&re, "a1\0z", 4));
    CHECK(str_match_holds(&re, "a1z\xff", 3));
    str_match_free(&re);
    str_match_free(&re); /* idempotent */
    CHECK(re.re == NULL && re.text == NULL);

    CHECK(str_match_compile(&re, "a(b", err, sizeof(err)) < 0);
    CHECK_STR_CONTAINS(err, "missing closing parenthesis at offset 3");
    CHECK(str_match_compile(&re, "(*UTF)a", err, sizeof(err)) < 0); /* UTF stays off */
    CHECK(re.re == NULL);
}

TEST(router_regex_replace)
{
    struct str_match re = {0};
    char err[128], out[64];
    CHECK(str_match_compile(&re, "^/u/([0-9]+)/(.*)$", err, sizeof(err)) == 0);
    const char *p = "/u/42/photos";
    long n = regex_replace(re.re, p, strlen(p), "/users/$1?tab=$2&$$", 19, out, sizeof(out));
    CHECK(n == 22 && memcmp(out, "/users/42?tab=photos&$", 22) == 0);
    n = regex_replace(re.re, "/x", 2, "/y", 2, out, sizeof(out));
    CHECK_EQ_U64(n, 0);
    n = regex_replace(re.re, p, strlen(p), "/users/$1", 9, out, 5);
    CHECK(n == -1);
    str_match_free(&re);

    /* unanchored: the first match is replaced, the rest kept; $0 is the match, an unset
     * group is empty, "$" before a non-digit is literal */
    CHECK(str_match_compile(&re, "o(x)?", err, sizeof(err)) == 0);
    n = regex_replace(re.re, "/foo/boo", 8, "[$0$1$]", 7, out, sizeof(out));
    CHECK(n > 0 && (size_t)n == strlen("/f[o$]o/boo") &&
          memcmp(out, "/f[o$]o/boo", (size_t)n) == 0);
    str_match_free(&re);
}

/* Workers are threads: each match uses its own thread's match block. */
static void *match_many(void *arg)
{
    const struct str_match *re = arg;
    char subject[32];
    long ok = 0;
    for (int i = 0; i < 20000; i++) {
        int len = snprintf(subject, sizeof(subject), "/u/%d", i);
        ok += str_match_holds(re, subject, (size_t)len);
        ok += !str_match_holds(re, "/v/1", 4);
    }
    return (void *)ok;
}

TEST(router_regex_threads)
{
    struct str_match re = {0};
    char err[128];
    CHECK(str_match_compile(&re, "^/u/([0-9]+)$", err, sizeof(err)) == 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        CHECK(pthread_create(&t[i], NULL, match_many, &re) == 0);
    for (int i = 0; i < 4; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        CHECK_EQ_U64((long)ok, 40000);
    }
    str_match_free(&re);
}

/* Explain mode: the first condition that fails, in routing order, with the item index,
 * and agreement with route_match_holds. */
TEST(router_explain_names_the_failing_condition)
{
    struct config *c = load_routes(
        "      - { name: all, match: { method: GET, host: h.test, path_prefix: /v1/, "
        "header: { x-a: \"1\", x-b: \"2\" }, cookie: { k: v }, query: { q: \"1\" } }, "
        "backend: app }\n");
    if (!c)
        return;
    struct arena a;
    arena_init(&a, 0);
    const struct route_match *rm = &c->listeners[0].http.routes[0].match;
    uint32_t idx = 99;
    struct http_msg m = request("POST", "h.test", "/v1/x?q=1");
    CHECK(route_match_explain(rm, &m, NULL, &idx) == ROUTE_MISS_METHOD);
    m = request("GET", "other.test", "/v1/x?q=1");
    CHECK(route_match_explain(rm, &m, NULL, &idx) == ROUTE_MISS_HOST);
    m = request("GET", "h.test", "/v2/x?q=1");
    CHECK(route_match_explain(rm, &m, NULL, &idx) == ROUTE_MISS_PATH);
    m = request("GET", "h.test", "/v1/x?q=1");
    hdr(&m, &a, "x-a", "1");
    CHECK(route_match_explain(rm, &m, NULL, &idx) == ROUTE_MISS_HEADER && idx == 1);
    hdr(&m, &a, "x-b", "2");
    CHECK(route_match_explain(rm, &m, NULL, &idx) == ROUTE_MISS_COOKIE && idx == 0);
    hdr(&m, &a, "cookie", "k=v");
    CHECK(route_match_explain(rm, &m, NULL, &idx) == ROUTE_MISS_NONE);
    CHECK(route_match_holds(rm, &m, NULL));
    m.query = hstr_c("q=2");
    CHECK(route_match_explain(rm, &m, NULL, &idx) == ROUTE_MISS_QUERY && idx == 0);
    CHECK(!route_match_holds(rm, &m, NULL));
    arena_free(&a);
    config_unref(c);
}
