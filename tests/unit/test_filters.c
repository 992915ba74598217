/* test_filters.c — the built-in filters on transactions built by hand: header set/add/
 * remove with templates (and every template variable), path rewrites (prefix and regex),
 * redirect and respond answers, forwarded headers (trusted, untrusted, IPv6, RFC 7239),
 * request ids (kept, made, invalid), traceparent (kept, invalid, absent), and sticky
 * sessions (cookie read, Set-Cookie written).
 */
#include <string.h>

#include "config/config.h"
#include "core/bug.h"
#include "http/filter.h"
#include "http/filters/util.h"
#include "http/msg.h"
#include "http/router.h"
#include "net/cidr.h"
#include "test.h"

/* A transaction for "METHOD target" to `authority` from `client` ("ip:port"). */
static void txn_init(struct http_txn *t, const char *method, const char *authority,
                     const char *target, const char *client)
{
    const char *why;
    memset(t, 0, sizeof(*t));
    arena_init(&t->arena, 0);
    t->req.is_request = true;
    t->req.version = 11;
    t->req.method_name = hstr_c(method);
    t->req.method = http_method_from(t->req.method_name);
    if (authority)
        t->req.authority = hstr_c(authority);
    const char *q = strchr(target, '?');
    t->req.path = (struct hstr){target, (uint32_t)(q ? (size_t)(q - target) : strlen(target))};
    if (q)
        t->req.query = hstr_c(q + 1);
    t->orig_path = t->req.path;
    CHECK(addr_parse(client, &t->client, &why) == 0);
}

static void add(struct http_msg *m, struct http_txn *t, const char *name, const char *value)
{
    CHECK(http_hdr_add(m, &t->arena, hstr_c(name), hstr_c(value)) == 0);
}

/* The value of field `name` as a C string in a static buffer ("<absent>" if none). */
static const char *get(const struct http_msg *m, const char *name)
{
    static char buf[512];
    struct hstr v = http_hdr_get(m, hstr_c(name));
    if (!v.p)
        return "<absent>";
    snprintf(buf, sizeof(buf), "%.*s", (int)v.len, v.p);
    return buf;
}

static unsigned count(const struct http_msg *m, const char *name)
{
    unsigned n = 0;
    for (int i = http_hdr_find(m, hstr_c(name), 0); i >= 0;
         i = http_hdr_find(m, hstr_c(name), (uint32_t)i + 1))
        n++;
    return n;
}

#define CHECK_HDR(m, name, want)                                                                   \
    do {                                                                                           \
        const char *got_ = get(m, name);                                                           \
        if (strcmp(got_, want) != 0)                                                               \
            test_fail(__FILE__, __LINE__, "%s: \"%s\", expected \"%s\"", name, got_, want);        \
    } while (0)

static bool hstr_is(struct hstr s, const char *want)
{
    return s.p && hstr_eq(s, hstr_c(want));
}

/* ---- templates ---------------------------------------------------------------------------- */

static void check_expand(struct http_txn *t, const char *tmpl, const char *want)
{
    struct hstr v = txn_expand(t, tmpl);
    if (!hstr_is(v, want))
        test_fail(__FILE__, __LINE__, "%s -> \"%.*s\", expected \"%s\"", tmpl, (int)v.len,
                  v.p ? v.p : "", want);
}

TEST(filters_templates)
{
    struct http_txn t;
    txn_init(&t, "POST", "Example.com:8443", "/a/b?x=1&y", "192.0.2.7:5555");
    t.request_id = HSTR_LIT("rid-1");
    check_expand(&t, "plain text", "plain text");
    check_expand(&t, "{scheme}://{host}{request_uri}", "http://Example.com/a/b?x=1&y");
    check_expand(&t, "{authority}|{path}|{query}|{method}", "Example.com:8443|/a/b|x=1&y|POST");
    check_expand(&t, "{client_ip}/{request_id}", "192.0.2.7/rid-1");
    check_expand(&t, "{{host} {nope} {host", "{host} {nope} {host");
    check_expand(&t, "{", "{");
    check_expand(&t, "a}{{", "a}{");
    t.tls = true;
    check_expand(&t, "{scheme}", "https");
    t.req.query = (struct hstr){NULL, 0};
    check_expand(&t, "{request_uri}|{query}|", "/a/b||");
    t.req.authority = hstr_c("[2001:db8::2]:443");
    check_expand(&t, "{host}", "[2001:db8::2]");
    arena_free(&t.arena);

    txn_init(&t, "GET", NULL, "/", "[2001:db8::1]:5555");
    check_expand(&t, "{client_ip}|{host}|{request_id}", "2001:db8::1||");
    arena_free(&t.arena);
    txn_init(&t, "GET", "h", "/", "[::ffff:10.1.2.3]:5555"); /* IPv4 on a dual-stack socket */
    check_expand(&t, "{client_ip}", "10.1.2.3");
    arena_free(&t.arena);
}

/* ---- request_headers / response_headers ------------------------------------------------------ */

TEST(filters_headers_set_add_remove)
{
    struct hdr_op ops[] = {
        {HDR_SET, "x-a", 3, "1", 1},
        {HDR_ADD, "X-Client", 8, "{client_ip} via {host}", 22},
        {HDR_ADD, "x-b", 3, "second", 6},
        {HDR_REMOVE, "x-c", 3, NULL, 0},
    };
    struct filter_headers_conf conf = {ops, ARRAY_SIZE(ops)};
    struct http_txn t;
    txn_init(&t, "GET", "example.com", "/", "192.0.2.7:5555");
    add(&t.req, &t, "X-A", "old1");
    add(&t.req, &t, "x-b", "first");
    add(&t.req, &t, "x-a", "old2");
    add(&t.req, &t, "X-C", "gone");
    add(&t.req, &t, "x-c", "gone too");
    add(&t.req, &t, "x-keep", "k");
    CHECK(filter_request_headers.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_EQ_U64(count(&t.req, "x-a"), 1); /* set replaces every field of the name */
    CHECK_HDR(&t.req, "x-a", "1");
    CHECK_HDR(&t.req, "x-client", "192.0.2.7 via example.com");
    CHECK_EQ_U64(count(&t.req, "x-b"), 2); /* add keeps what was there, after it */
    CHECK(hstr_is(t.req.hdrs[http_hdr_find(&t.req, hstr_c("x-b"), 0)].value, "first"));
    CHECK_EQ_U64(count(&t.req, "x-c"), 0);
    CHECK_HDR(&t.req, "x-keep", "k");
    CHECK(filter_request_headers.on_response == NULL);

    /* the same operations on a response, by response_headers */
    add(&t.resp, &t, "x-c", "1");
    CHECK(filter_response_headers.on_request == NULL);
    CHECK(filter_response_headers.on_response(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.resp, "x-a", "1");
    CHECK_EQ_U64(count(&t.resp, "x-c"), 0);
    CHECK_HDR(&t.resp, "x-client", "192.0.2.7 via example.com");
    arena_free(&t.arena);
}

/* ---- path_rewrite ------------------------------------------------------------------------- */

TEST(filters_path_rewrite_prefix)
{
    struct filter_path_rewrite_conf conf = {
        .prefix = "/v1/", .prefix_len = 4, .replace = "/", .replace_len = 1};
    struct http_txn t;
    txn_init(&t, "GET", "h", "/v1/users/7?q=1", "192.0.2.7:1");
    CHECK(filter_path_rewrite.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.req.path, "/users/7"));
    CHECK(hstr_is(t.req.query, "q=1"));         /* the query is kept */
    CHECK(hstr_is(t.orig_path, "/v1/users/7")); /* the original stays for the log */
    arena_free(&t.arena);

    txn_init(&t, "GET", "h", "/v2/users", "192.0.2.7:1");
    CHECK(filter_path_rewrite.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.req.path, "/v2/users")); /* no match: unchanged */
    arena_free(&t.arena);

    /* an empty replacement: the result always starts with '/' */
    conf = (struct filter_path_rewrite_conf){
        .prefix = "/api", .prefix_len = 4, .replace = "", .replace_len = 0};
    txn_init(&t, "GET", "h", "/api", "192.0.2.7:1");
    CHECK(filter_path_rewrite.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.req.path, "/"));
    arena_free(&t.arena);
    txn_init(&t, "GET", "h", "/api/x", "192.0.2.7:1");
    CHECK(filter_path_rewrite.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.req.path, "/x"));
    arena_free(&t.arena);
}

TEST(filters_path_rewrite_regex)
{
    struct str_match re = {0};
    char err[128];
    CHECK(str_match_compile(&re, "^/u/([0-9]+)(/.*)?$", err, sizeof(err)) == 0);
    struct filter_path_rewrite_conf conf = {
        .re = re.re, .replace = "/users/$1/profile$2", .replace_len = 19};
    struct http_txn t;
    txn_init(&t, "GET", "h", "/u/42/photos?big=1", "192.0.2.7:1");
    CHECK(filter_path_rewrite.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.req.path, "/users/42/profile/photos"));
    CHECK(hstr_is(t.req.query, "big=1"));
    CHECK(hstr_is(t.orig_path, "/u/42/photos"));
    arena_free(&t.arena);
    txn_init(&t, "GET", "h", "/u/x", "192.0.2.7:1");
    CHECK(filter_path_rewrite.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.req.path, "/u/x"));
    arena_free(&t.arena);
    str_match_free(&re);

    /* many references to a long capture: the room is computed, not guessed */
    CHECK(str_match_compile(&re, "^/(.*)$", err, sizeof(err)) == 0);
    conf = (struct filter_path_rewrite_conf){
        .re = re.re, .replace = "$1$1$1$1$1$1$1$1$1$1$1$1", .replace_len = 24};
    char path[600] = "/";
    memset(path + 1, 'a', 500);
    txn_init(&t, "GET", "h", path, "192.0.2.7:1");
    CHECK(filter_path_rewrite.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_EQ_U64(t.req.path.len, 1 + 12 * 500); /* and a leading '/' */
    CHECK(t.req.path.p[0] == '/' && t.req.path.p[1] == 'a');
    arena_free(&t.arena);
    str_match_free(&re);
}

/* ---- redirect / respond ------------------------------------------------------------------- */

TEST(filters_redirect)
{
    struct filter_redirect_conf conf = {301, "https://{host}{request_uri}"};
    struct http_txn t;
    txn_init(&t, "GET", "example.com:80", "/a?b=1", "192.0.2.7:1");
    CHECK(filter_redirect.on_request(&t, &conf) == FILTER_ANSWER);
    CHECK(t.answered);
    CHECK_EQ_U64(t.resp.status, 301);
    CHECK(hstr_is(t.resp.reason, "Moved Permanently"));
    CHECK_HDR(&t.resp, "location", "https://example.com/a?b=1");
    CHECK_HDR(&t.resp, "content-type", "text/plain; charset=utf-8");
    CHECK(t.resp.body == HTTP_BODY_LENGTH && t.resp.content_length == t.answer_body.len);
    CHECK(hstr_is(t.answer_body, "Redirecting to https://example.com/a?b=1\n"));
    CHECK(!memchr(t.answer_body.p, '<', t.answer_body.len)); /* no HTML */
    arena_free(&t.arena);
}

TEST(filters_respond)
{
    struct filter_respond_conf conf = {503, "down for maintenance\n", 21, "text/plain"};
    struct http_txn t;
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    add(&t.resp, &t, "x-stale", "1"); /* an answer replaces whatever was in resp */
    CHECK(filter_respond.on_request(&t, &conf) == FILTER_ANSWER);
    CHECK(t.answered && t.resp.status == 503 && !t.resp.is_request);
    CHECK(hstr_is(t.answer_body, "down for maintenance\n"));
    CHECK_EQ_U64(t.resp.content_length, 21);
    CHECK_HDR(&t.resp, "content-type", "text/plain");
    CHECK_EQ_U64(count(&t.resp, "x-stale"), 0);
    arena_free(&t.arena);

    /* 204: no body, no framing length, no content type */
    conf = (struct filter_respond_conf){204, NULL, 0, "text/plain"};
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    CHECK(filter_respond.on_request(&t, &conf) == FILTER_ANSWER);
    CHECK(t.resp.status == 204 && t.resp.body == HTTP_BODY_NONE && t.answer_body.len == 0);
    CHECK_EQ_U64(count(&t.resp, "content-type"), 0);
    arena_free(&t.arena);
}

/* ---- forwarded ---------------------------------------------------------------------------- */

static void trust(struct cidr_set *set, const char *prefix)
{
    struct cidr c;
    const char *why;
    CHECK(cidr_parse(prefix, &c, &why) == 0);
    CHECK(cidr_set_add(set, &c) == 0);
}

TEST(filters_forwarded_untrusted)
{
    struct cidr_set trusted = {0};
    trust(&trusted, "10.0.0.0/8");
    struct filter_forwarded_conf conf = {true, true, &trusted};
    struct http_txn t;
    txn_init(&t, "GET", "example.com", "/", "192.0.2.7:5555");
    add(&t.req, &t, "X-Forwarded-For", "6.6.6.6"); /* forged by the client */
    add(&t.req, &t, "X-Forwarded-Proto", "https");
    add(&t.req, &t, "X-Forwarded-Host", "evil.test");
    add(&t.req, &t, "Forwarded", "for=6.6.6.6");
    CHECK(filter_forwarded.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.req, "x-forwarded-for", "192.0.2.7");
    CHECK_HDR(&t.req, "x-forwarded-proto", "http");
    CHECK_HDR(&t.req, "x-forwarded-host", "example.com");
    CHECK_HDR(&t.req, "forwarded", "for=192.0.2.7;proto=http;host=example.com");
    CHECK_EQ_U64(count(&t.req, "x-forwarded-for"), 1);
    arena_free(&t.arena);

    /* no authority: no X-Forwarded-Host, no host= */
    txn_init(&t, "GET", NULL, "/", "192.0.2.7:5555");
    add(&t.req, &t, "X-Forwarded-Host", "evil.test");
    t.tls = true;
    CHECK(filter_forwarded.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_EQ_U64(count(&t.req, "x-forwarded-host"), 0);
    CHECK_HDR(&t.req, "x-forwarded-proto", "https");
    CHECK_HDR(&t.req, "forwarded", "for=192.0.2.7;proto=https");
    arena_free(&t.arena);
    cidr_set_free(&trusted);
}

TEST(filters_forwarded_trusted)
{
    struct cidr_set trusted = {0};
    trust(&trusted, "10.0.0.0/8");
    struct filter_forwarded_conf conf = {true, true, &trusted};
    struct http_txn t;
    txn_init(&t, "GET", "example.com:8080", "/", "10.1.2.3:5555");
    add(&t.req, &t, "X-Forwarded-For", "203.0.113.9, 198.51.100.1");
    add(&t.req, &t, "x-forwarded-for", "172.16.0.1"); /* a second field joins the list */
    add(&t.req, &t, "X-Forwarded-Proto", "https");
    add(&t.req, &t, "X-Forwarded-Host", "www.example.com");
    add(&t.req, &t, "Forwarded", "for=203.0.113.9;proto=https");
    CHECK(filter_forwarded.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.req, "x-forwarded-for", "203.0.113.9, 198.51.100.1, 172.16.0.1, 10.1.2.3");
    CHECK_EQ_U64(count(&t.req, "x-forwarded-for"), 1);
    CHECK_HDR(&t.req, "x-forwarded-proto", "https");          /* kept */
    CHECK_HDR(&t.req, "x-forwarded-host", "www.example.com"); /* kept */
    /* host with a port is not a token: quoted */
    CHECK_HDR(&t.req, "forwarded",
              "for=203.0.113.9;proto=https, for=10.1.2.3;proto=http;host=\"example.com:8080\"");
    arena_free(&t.arena);

    /* trusted but nothing sent: the fields are made */
    txn_init(&t, "GET", "example.com", "/", "10.1.2.3:5555");
    CHECK(filter_forwarded.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.req, "x-forwarded-for", "10.1.2.3");
    CHECK_HDR(&t.req, "x-forwarded-proto", "http");
    CHECK_HDR(&t.req, "x-forwarded-host", "example.com");
    arena_free(&t.arena);
    cidr_set_free(&trusted);
}

TEST(filters_forwarded_ipv6_and_forms)
{
    struct filter_forwarded_conf conf = {false, true, NULL}; /* rfc7239 only, nobody trusted */
    struct http_txn t;
    txn_init(&t, "GET", "example.com", "/", "[2001:db8::1]:5555");
    t.tls = true;
    add(&t.req, &t, "X-Forwarded-For", "1.1.1.1");
    CHECK(filter_forwarded.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.req, "forwarded", "for=\"[2001:db8::1]\";proto=https;host=example.com");
    CHECK_HDR(&t.req, "x-forwarded-for", "1.1.1.1"); /* that form is off: left alone */
    arena_free(&t.arena);

    conf = (struct filter_forwarded_conf){true, false, NULL}; /* x-forwarded only */
    txn_init(&t, "GET", "example.com", "/", "[2001:db8::1]:5555");
    CHECK(filter_forwarded.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.req, "x-forwarded-for", "2001:db8::1");
    CHECK_EQ_U64(count(&t.req, "forwarded"), 0);
    arena_free(&t.arena);

    /* an IPv4 client seen through a dual-stack socket is written as IPv4, and trusted by
     * an IPv4 prefix */
    struct cidr_set trusted = {0};
    trust(&trusted, "192.0.2.0/24");
    conf = (struct filter_forwarded_conf){true, true, &trusted};
    txn_init(&t, "GET", "example.com", "/", "[::ffff:192.0.2.7]:5555");
    add(&t.req, &t, "X-Forwarded-For", "203.0.113.9");
    CHECK(filter_forwarded.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.req, "x-forwarded-for", "203.0.113.9, 192.0.2.7");
    CHECK_HDR(&t.req, "forwarded", "for=192.0.2.7;proto=http;host=example.com");
    arena_free(&t.arena);
    cidr_set_free(&trusted);
}

/* ---- request_id --------------------------------------------------------------------------- */

static bool is_hex(struct hstr s, uint32_t len)
{
    if (!s.p || s.len != len)
        return false;
    for (uint32_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", s.p[i]))
            return false;
    return true;
}

TEST(filters_request_id)
{
    struct filter_request_id_conf conf = {"x-request-id", 12};
    struct http_txn t;
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    add(&t.req, &t, "X-Request-Id", "abc-123_XYZ");
    CHECK(filter_request_id.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.request_id, "abc-123_XYZ")); /* kept */
    CHECK_HDR(&t.req, "x-request-id", "abc-123_XYZ");
    CHECK(filter_request_id.on_response(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.resp, "x-request-id", "abc-123_XYZ"); /* echoed */
    arena_free(&t.arena);

    /* absent: made, 32 hex digits, set on the request; two ids differ */
    char first[33];
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    CHECK(filter_request_id.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(is_hex(t.request_id, 32));
    CHECK_HDR(&t.req, "x-request-id", get(&t.req, "x-request-id"));
    CHECK(hstr_eq(http_hdr_get(&t.req, hstr_c("x-request-id")), t.request_id));
    snprintf(first, sizeof(first), "%.*s", (int)t.request_id.len, t.request_id.p);
    arena_free(&t.arena);
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    CHECK(filter_request_id.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(is_hex(t.request_id, 32) && !hstr_is(t.request_id, first));
    arena_free(&t.arena);

    /* unusable: replaced (a space, too long, empty, two fields) */
    char long_id[202];
    memset(long_id, 'a', 201);
    long_id[201] = '\0';
    const char *bad[] = {"has space", long_id, "", "ok\x7f"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
        add(&t.req, &t, "x-request-id", bad[i]);
        CHECK(filter_request_id.on_request(&t, &conf) == FILTER_CONTINUE);
        CHECK(is_hex(t.request_id, 32));
        CHECK_EQ_U64(count(&t.req, "x-request-id"), 1);
        arena_free(&t.arena);
    }
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    add(&t.req, &t, "x-request-id", "one");
    add(&t.req, &t, "x-request-id", "two");
    CHECK(filter_request_id.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(is_hex(t.request_id, 32) && count(&t.req, "x-request-id") == 1);
    arena_free(&t.arena);

    memset(long_id, 'b', 200); /* 200 is the limit, kept */
    long_id[200] = '\0';
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    add(&t.req, &t, "x-request-id", long_id);
    CHECK(filter_request_id.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(hstr_is(t.request_id, long_id));
    arena_free(&t.arena);
}

/* ---- traceparent -------------------------------------------------------------------------- */

#define TP_VALID "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* A traceparent made by Strata: version 00, new ids (not all zero), flags 01. */
static bool fresh_traceparent(const struct http_msg *m)
{
    struct hstr v = http_hdr_get(m, hstr_c("traceparent"));
    return v.p && v.len == 55 && memcmp(v.p, "00-", 3) == 0 &&
           is_hex((struct hstr){v.p + 3, 32}, 32) && v.p[35] == '-' &&
           is_hex((struct hstr){v.p + 36, 16}, 16) && memcmp(v.p + 52, "-01", 3) == 0 &&
           memcmp(v.p + 3, "00000000000000000000000000000000", 32) != 0 &&
           !hstr_eq(v, hstr_c(TP_VALID));
}

TEST(filters_traceparent)
{
    struct filter_traceparent_conf conf = {true};
    struct http_txn t;
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    add(&t.req, &t, "traceparent", TP_VALID);
    add(&t.req, &t, "tracestate", "congo=t61rcWkgMzE");
    CHECK(filter_traceparent.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK_HDR(&t.req, "traceparent", TP_VALID); /* valid: passed on unchanged */
    CHECK_HDR(&t.req, "tracestate", "congo=t61rcWkgMzE");
    arena_free(&t.arena);

    txn_init(&t, "GET", "h", "/", "192.0.2.7:1"); /* absent: a new trace */
    CHECK(filter_traceparent.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(fresh_traceparent(&t.req));
    arena_free(&t.arena);

    const char *invalid[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* length */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",  /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  /* flags */
    };
    for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
        txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
        add(&t.req, &t, "traceparent", invalid[i]);
        add(&t.req, &t, "tracestate", "congo=t61rcWkgMzE");
        CHECK(filter_traceparent.on_request(&t, &conf) == FILTER_CONTINUE);
        if (!fresh_traceparent(&t.req))
            test_fail(__FILE__, __LINE__, "invalid #%zu not replaced: %s", i,
                      get(&t.req, "traceparent"));
        CHECK_EQ_U64(count(&t.req, "traceparent"), 1);
        CHECK_EQ_U64(count(&t.req, "tracestate"), 0); /* belongs to no trace we pass on */
        arena_free(&t.arena);
    }

    txn_init(&t, "GET", "h", "/", "192.0.2.7:1"); /* two fields are not one trace */
    add(&t.req, &t, "traceparent", TP_VALID);
    add(&t.req, &t, "traceparent", TP_VALID);
    CHECK(filter_traceparent.on_request(&t, &conf) == FILTER_CONTINUE);
    CHECK(fresh_traceparent(&t.req) && count(&t.req, "traceparent") == 1);
    arena_free(&t.arena);
}

/* ---- sticky ------------------------------------------------------------------------------- */

TEST(filters_sticky)
{
    struct config_errors e = {0};
    struct config *c = config_load_string(
        "sticky.yaml",
        "listeners: [ { name: web, listen: 127.0.0.1:8080, mode: http, backend: app } ]\n"
        "backends:\n"
        "  app:\n"
        "    sticky: { cookie: srv, max_age: 1h, secure: true }\n"
        "    servers: [127.0.0.1:9001, 127.0.0.1:9002]\n"
        "  plain: { servers: [127.0.0.1:9003] }\n",
        1, &e);
    CHECK(c != NULL);
    config_errors_free(&e);
    if (!c)
        return;
    struct backend *b = config_backend(c, "app");
    struct server *s0 = &b->servers[0], *s1 = &b->servers[1];
    char cookie[64];
    snprintf(cookie, sizeof(cookie), "a=1; srv=%s; z=2", s1->sticky_id);

    struct http_txn t;
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    t.backend = b;
    add(&t.req, &t, "Cookie", cookie);
    CHECK(filter_sticky.on_request(&t, NULL) == FILTER_CONTINUE);
    CHECK(t.sticky == s1 && !t.sticky_set);
    t.server = s1; /* the session honoured it: nothing to set */
    CHECK(filter_sticky.on_response(&t, NULL) == FILTER_CONTINUE);
    CHECK_EQ_U64(count(&t.resp, "set-cookie"), 0);
    t.server = s0; /* s1 was not eligible: the cookie moves to s0 */
    CHECK(filter_sticky.on_response(&t, NULL) == FILTER_CONTINUE);
    char want[128];
    snprintf(want, sizeof(want), "srv=%s; Path=/; Max-Age=3600; Secure; HttpOnly", s0->sticky_id);
    CHECK_HDR(&t.resp, "set-cookie", want);
    CHECK(t.sticky_set);
    arena_free(&t.arena);

    /* no cookie, or one naming no server: none, and the response sets it */
    const char *cookies[] = {NULL, "srv=0123456789abcdef", "srv=short"};
    for (size_t i = 0; i < ARRAY_SIZE(cookies); i++) {
        txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
        t.backend = b;
        if (cookies[i])
            add(&t.req, &t, "Cookie", cookies[i]);
        CHECK(filter_sticky.on_request(&t, NULL) == FILTER_CONTINUE);
        CHECK(t.sticky == NULL && t.sticky_set);
        t.server = s1;
        CHECK(filter_sticky.on_response(&t, NULL) == FILTER_CONTINUE);
        CHECK_EQ_U64(count(&t.resp, "set-cookie"), 1);
        arena_free(&t.arena);
    }

    /* an answer (no server) sets nothing; a backend without sticky neither */
    txn_init(&t, "GET", "h", "/", "192.0.2.7:1");
    t.backend = b;
    CHECK(filter_sticky.on_request(&t, NULL) == FILTER_CONTINUE);
    CHECK(filter_sticky.on_response(&t, NULL) == FILTER_CONTINUE);
    CHECK_EQ_U64(count(&t.resp, "set-cookie"), 0);
    t.backend = config_backend(c, "plain");
    t.server = &t.backend->servers[0];
    CHECK(filter_sticky.on_request(&t, NULL) == FILTER_CONTINUE && t.sticky == NULL);
    CHECK(filter_sticky.on_response(&t, NULL) == FILTER_CONTINUE);
    CHECK_EQ_U64(count(&t.resp, "set-cookie"), 0);
    arena_free(&t.arena);
    config_unref(c);
}

TEST(filters_hex_put_odd_and_even_widths)
{
    char out[17] = {0};
    hex_put(out, 0x0123456789abcdefull, 16);
    CHECK(strcmp(out, "0123456789abcdef") == 0);
    memset(out, 0, sizeof(out));
    hex_put(out, 0xfedcbull, 5);
    CHECK(strcmp(out, "fedcb") == 0);
    memset(out, 0, sizeof(out));
    hex_put(out, 0xa5ull, 2);
    CHECK(strcmp(out, "a5") == 0);
}
