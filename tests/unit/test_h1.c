/* test_h1.c — the HTTP/1.1 request head parser (src/http/h1_parse.c): every accepted form
 * and what the model gets from it, every rejection with its status, the limits at their
 * exact boundaries, pipelining, and split invariance: each vector is also parsed at every
 * split point, from an exact-size copy of every prefix, and fed byte by byte.
 */
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"
#include "http/msg.h"
#include "test.h"

static const struct h1_limits lim = {.max_line = 8192, .max_head = 65536, .max_headers = 100};

/* One parse's outcome; `buf` (owned) holds the input the slices point into. */
struct parsed {
    int r;
    size_t head_len;
    struct h1_error err;
    struct http_msg m;
    struct arena a;
    char *buf;
};

static bool same_str(struct hstr a, struct hstr b)
{
    return (a.p == NULL) == (b.p == NULL) && hstr_eq(a, b);
}

static bool same_msg(const struct http_msg *x, const struct http_msg *y)
{
    if (x->is_request != y->is_request || x->version != y->version || x->flags != y->flags ||
        x->method != y->method || x->status != y->status || x->body != y->body ||
        x->content_length != y->content_length || x->nhdrs != y->nhdrs)
        return false;
    if (!same_str(x->method_name, y->method_name) || !same_str(x->scheme, y->scheme) ||
        !same_str(x->authority, y->authority) || !same_str(x->path, y->path) ||
        !same_str(x->query, y->query) || !same_str(x->upgrade, y->upgrade) ||
        !same_str(x->reason, y->reason))
        return false;
    for (uint32_t i = 0; i < x->nhdrs; i++)
        if (!hstr_eq(x->hdrs[i].name, y->hdrs[i].name) ||
            !hstr_eq(x->hdrs[i].value, y->hdrs[i].value))
            return false;
    return true;
}

static bool same_result(const struct parsed *a, const struct parsed *b)
{
    if (a->r != b->r)
        return false;
    if (a->r == H1_DONE)
        return a->head_len == b->head_len && same_msg(&a->m, &b->m);
    if (a->r == H1_ERROR)
        return a->err.status == b->err.status && strcmp(a->err.reason, b->err.reason) == 0;
    return true;
}

static int call(struct h1_parser *p, const char *buf, size_t len, const struct h1_limits *l,
                int method, struct parsed *o)
{
    if (method < 0)
        o->r = h1_parse_request(p, buf, len, l, &o->m, &o->a, &o->head_len, &o->err);
    else
        o->r = h1_parse_response(p, buf, len, l, (enum http_method)method, &o->m, &o->a,
                                 &o->head_len, &o->err);
    return o->r;
}

/* Parses s[0..n) in one call into *out (a request when method < 0, else a response to
 * that method), then checks that every split (two calls on one buffer, and one call on an
 * exact-size copy of each prefix, which must need more or be final) and a byte-by-byte
 * feed give the same result. */
static void parse_all_ways(const char *s, size_t n, int method, const struct h1_limits *l,
                           struct parsed *out, int line)
{
    struct h1_parser p;
    memset(out, 0, sizeof(*out));
    arena_init(&out->a, 0);
    out->buf = malloc(n ? n : 1);
    memcpy(out->buf, s, n);
    h1_parser_init(&p);
    call(&p, out->buf, n, l, method, out);
    if (out->r == H1_ERROR && !out->err.reason)
        test_fail(__FILE__, line, "an error without a reason");

    for (size_t i = 0; i <= n; i++) {
        struct parsed t;
        memset(&t, 0, sizeof(t));
        arena_init(&t.a, 0);
        char *copy = malloc(i ? i : 1);
        memcpy(copy, s, i);
        h1_parser_init(&p);
        int r = call(&p, copy, i, l, method, &t);
        if (r != H1_AGAIN && !same_result(&t, out))
            test_fail(__FILE__, line, "prefix of %zu/%zu bytes: result %d differs", i, n, r);
        free(copy);
        arena_reset(&t.a);
        h1_parser_init(&p);
        if (call(&p, out->buf, i, l, method, &t) == H1_AGAIN)
            call(&p, out->buf, n, l, method, &t);
        if (!same_result(&t, out))
            test_fail(__FILE__, line, "split at %zu/%zu: result %d, whole %d", i, n, t.r, out->r);
        arena_free(&t.a);
    }

    struct parsed t;
    memset(&t, 0, sizeof(t));
    arena_init(&t.a, 0);
    h1_parser_init(&p);
    for (size_t i = 0; i <= n && call(&p, out->buf, i, l, method, &t) == H1_AGAIN; i++)
        ;
    if (!same_result(&t, out))
        test_fail(__FILE__, line, "byte by byte: result %d, whole %d", t.r, out->r);
    arena_free(&t.a);
}

static void done(struct parsed *p)
{
    arena_free(&p->a);
    free(p->buf);
}

#define REQ(s, pp) parse_all_ways(s, sizeof(s) - 1, -1, &lim, pp, __LINE__)

static bool str_is(struct hstr s, const char *c)
{
    return s.p && hstr_eq(s, hstr_c(c));
}

/* The value of field `name`, or NULL as a C string for comparisons in CHECKs. */
static bool hdr_is(const struct http_msg *m, const char *name, const char *value)
{
    struct hstr v = http_hdr_get(m, hstr_c(name));
    return v.p && hstr_eq(v, hstr_c(value));
}

static void check_reject(const char *s, size_t n, uint16_t status, const char *reason, int line)
{
    struct parsed p;
    parse_all_ways(s, n, -1, &lim, &p, line);
    if (p.r != H1_ERROR)
        test_fail(__FILE__, line, "accepted (result %d), expected %u", p.r, status);
    else if (p.err.status != status || !strstr(p.err.reason, reason))
        test_fail(__FILE__, line, "got %u \"%s\", expected %u \"%s\"", p.err.status, p.err.reason,
                  status, reason);
    done(&p);
}

#define REJECT(s, status, reason) check_reject(s, sizeof(s) - 1, status, reason, __LINE__)

/* ---- accepted forms ---- */

TEST(h1_req_simple_get)
{
    struct parsed p;
    REQ("GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Empty:\r\n\r\n", &p);
    CHECK(p.r == H1_DONE);
    CHECK_EQ_U64(p.head_len, 69);
    CHECK(p.m.is_request);
    CHECK_EQ_U64(p.m.version, 11);
    CHECK(p.m.method == HTTP_M_GET && str_is(p.m.method_name, "GET"));
    CHECK(str_is(p.m.path, "/a/b") && str_is(p.m.query, "x=1&y"));
    CHECK(str_is(p.m.authority, "example.com"));
    CHECK_EQ_U64(p.m.scheme.len, 0);
    CHECK_EQ_U64(p.m.nhdrs, 2); /* Host is not kept */
    CHECK(hdr_is(&p.m, "accept", "*/*") && hdr_is(&p.m, "x-empty", ""));
    CHECK(p.m.body == HTTP_BODY_NONE);
    CHECK_EQ_U64(p.m.flags, 0);
    /* zero-copy: the slices point into the buffer */
    CHECK(p.m.path.p == p.buf + 4);
    done(&p);
}

TEST(h1_req_query_presence)
{
    struct parsed p;
    REQ("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.query.p == NULL);
    done(&p);
    REQ("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.query.p != NULL && p.m.query.len == 0);
    CHECK(str_is(p.m.path, "/a"));
    done(&p);
}

TEST(h1_req_methods)
{
    static const struct {
        const char *line;
        enum http_method m;
    } v[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_GET},
        {"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_HEAD},
        {"POST / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_POST},
        {"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_PUT},
        {"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_DELETE},
        {"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_TRACE},
        {"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_PATCH},
        {"OPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_OPTIONS},
        {"PURGE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_OTHER},
        {"get / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_OTHER}, /* methods are case-sensitive */
        {"M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_M_OTHER},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct parsed p;
        parse_all_ways(v[i].line, strlen(v[i].line), -1, &lim, &p, __LINE__);
        CHECK(p.r == H1_DONE);
        CHECK_EQ_U64(p.m.method, v[i].m);
        CHECK(p.m.method_name.len == (uint32_t)(strchr(v[i].line, ' ') - v[i].line));
        done(&p);
    }
}

TEST(h1_req_absolute_form)
{
    struct parsed p;
    REQ("GET http://Example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n", &p);
    CHECK(p.r == H1_DONE);
    CHECK(str_is(p.m.scheme, "http"));
    CHECK(str_is(p.m.authority, "Example.com:8080")); /* the target's authority wins */
    CHECK(str_is(p.m.path, "/p/q") && str_is(p.m.query, "x=1"));
    CHECK(p.m.flags & HTTP_F_ABSOLUTE);
    CHECK_EQ_U64(p.m.nhdrs, 0);
    done(&p);
    REQ("GET HTTPS://a.b HTTP/1.1\r\nHost: a.b:443\r\n\r\n", &p); /* default port */
    CHECK(p.r == H1_DONE && str_is(p.m.scheme, "https") && str_is(p.m.path, "/"));
    CHECK(p.m.query.p == NULL);
    done(&p);
    REQ("GET http://a.b:80?k HTTP/1.1\r\nHost: a.b\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && str_is(p.m.path, "/") && str_is(p.m.query, "k"));
    done(&p);
    REQ("GET http://[::1]:8080/ HTTP/1.0\r\n\r\n", &p); /* HTTP/1.0: Host optional */
    CHECK(p.r == H1_DONE && str_is(p.m.authority, "[::1]:8080"));
    done(&p);
}

TEST(h1_req_asterisk_and_authority_forms)
{
    struct parsed p;
    REQ("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && str_is(p.m.path, "*") && p.m.method == HTTP_M_OPTIONS);
    done(&p);
    REQ("OPTIONS http://h:81 HTTP/1.1\r\nHost: h:81\r\n\r\n", &p); /* RFC 9112 §3.2.4 */
    CHECK(p.r == H1_DONE && str_is(p.m.path, "*"));
    done(&p);
    REQ("CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.method == HTTP_M_CONNECT);
    CHECK(str_is(p.m.authority, "db.example:5432") && p.m.path.len == 0);
    CHECK(p.m.body == HTTP_BODY_NONE);
    done(&p);
    REQ("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && str_is(p.m.authority, "[2001:db8::1]:443"));
    done(&p);
}

TEST(h1_req_leading_empty_lines)
{
    struct parsed p;
    REQ("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &p);
    CHECK(p.r == H1_DONE);
    CHECK_EQ_U64(p.head_len, 4 + 16 + 9 + 2);
    done(&p);
    REJECT("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bare LF");
}

TEST(h1_req_field_values)
{
    struct parsed p;
    REQ("GET / HTTP/1.1\r\nHost:h\r\nA: \t x  y \t\r\nB:\t\r\nC: caf\xc3\xa9\r\n"
        "Content-Type:text/plain\r\n\r\n",
        &p);
    CHECK(p.r == H1_DONE && str_is(p.m.authority, "h"));
    CHECK(hdr_is(&p.m, "a", "x  y") && hdr_is(&p.m, "B", ""));
    CHECK(hdr_is(&p.m, "c", "caf\xc3\xa9"));         /* obs-text */
    CHECK(str_is(p.m.hdrs[3].name, "Content-Type")); /* case kept */
    done(&p);
}

TEST(h1_req_target_bytes)
{
    struct parsed p;
    /* bytes >= 0x80 accepted; a few non-RFC-3986 printable ones too, as most servers do */
    REQ("GET /caf\xc3\xa9/{x}|^ HTTP/1.1\r\nHost: h\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.path.len == 12);
    done(&p);
    REJECT("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request target");
    REJECT("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request target");
    REJECT("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request target");
    REJECT("GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bare CR");
    REJECT("GET /a\0 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "NUL");
    REJECT("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request line");
    REJECT("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "request target");
}

TEST(h1_req_many_fields_grow)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 40; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "X-F%d: v%d\r\n", i, i);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n");
    struct parsed p;
    parse_all_ways(buf, (size_t)n, -1, &lim, &p, __LINE__);
    CHECK(p.r == H1_DONE);
    CHECK_EQ_U64(p.m.nhdrs, 40);
    CHECK(str_is(p.m.hdrs[0].name, "X-F0") && str_is(p.m.hdrs[39].value, "v39"));
    CHECK(p.m.hdr_cap >= 40);
    done(&p);
}

/* ---- framing ---- */

TEST(h1_req_content_length)
{
    struct parsed p;
    REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_LENGTH);
    CHECK_EQ_U64(p.m.content_length, 5);
    CHECK_EQ_U64(p.head_len, 47);
    CHECK_EQ_U64(p.m.nhdrs, 0);
    done(&p);
    REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_LENGTH && p.m.content_length == 0);
    done(&p);
    REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:   9223372036854775807 \r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.content_length == 9223372036854775807ull);
    done(&p);
}

TEST(h1_req_content_length_folded)
{
    struct parsed p;
    REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.content_length == 5);
    done(&p);
    REQ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.content_length == 5 && p.m.nhdrs == 0);
    done(&p);
}

TEST(h1_req_content_length_rejected)
{
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", 400, "different");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
           "different");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400, "bad Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "bad Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", 400, "bad Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400, "bad Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400, "empty Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5;\r\n\r\n", 400, "bad Content-Length");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
           "overflow");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", 400,
           "overflow");
}

TEST(h1_req_chunked)
{
    struct parsed p;
    REQ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_CHUNKED && p.m.nhdrs == 0);
    done(&p);
    REQ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tCHUNKED\t\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_CHUNKED);
    done(&p);
    REQ("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: ,chunked\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_CHUNKED);
    done(&p);
}

/* Request smuggling: every framing ambiguity is refused. */
TEST(h1_req_smuggling_cl_te)
{
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           400, "both Content-Length and Transfer-Encoding");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
           400, "both Content-Length and Transfer-Encoding");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n",
           400, "both Content-Length and Transfer-Encoding");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\n",
           400, "both Content-Length and Transfer-Encoding");
}

TEST(h1_req_smuggling_te_values)
{
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
           "chunked is not the last");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           400, "chunked is not the last");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
           "chunked is not the last");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
           "unknown transfer coding");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 501, "unknown");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501, "unknown");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400,
           "parameters");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400,
           "bad Transfer-Encoding");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400, "empty");
    REJECT("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
}

TEST(h1_req_smuggling_obfuscation)
{
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400,
           "whitespace before colon");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n Transfer-Encoding: x\r\n"
           "\r\n",
           400, "obs-fold");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\tx\r\n\r\n", 400,
           "obs-fold");
    REJECT("POST / HTTP/1.1\r\n Host: h\r\n\r\n", 400, "obs-fold");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chu\0nked\r\n\r\n", 400, "NUL");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x0b\r\n\r\n", 400, "CTL");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\rX: y\r\n\r\n", 400,
           "bare CR");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\n\r\n", 400, "bare LF");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\n\n", 400, "bare LF");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nContent-Length\r\n\r\n", 400, "missing colon");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", 400, "empty field name");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nA(b: x\r\n\r\n", 400, "bad field name");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nA\x80: x\r\n\r\n", 400, "bad field name");
}

/* ---- connection fields ---- */

TEST(h1_req_connection_close)
{
    struct parsed p;
    REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.flags == HTTP_F_CLOSE && p.m.nhdrs == 0);
    done(&p);
    REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.flags == 0);
    done(&p);
}

TEST(h1_req_http10_flags)
{
    struct parsed p;
    REQ("GET / HTTP/1.0\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.version == 10);
    CHECK(p.m.flags == (HTTP_F_HTTP10 | HTTP_F_CLOSE));
    CHECK(p.m.authority.len == 0);
    done(&p);
    REQ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.flags == (HTTP_F_HTTP10 | HTTP_F_KEEPALIVE10));
    CHECK_EQ_U64(p.m.nhdrs, 0);
    done(&p);
    REQ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && p.m.flags == (HTTP_F_HTTP10 | HTTP_F_CLOSE));
    done(&p);
}

TEST(h1_req_hop_by_hop_removed)
{
    struct parsed p;
    REQ("GET / HTTP/1.1\r\nX-A: 1\r\nHost: h\r\nX-Secret: s\r\nConnection: x-secret, X-Other\r\n"
        "TE: trailers\r\nKeep-Alive: 5\r\nProxy-Connection: keep-alive\r\nX-Other: o\r\n"
        "X-B: 2\r\nUpgrade: foo\r\n\r\n",
        &p);
    CHECK(p.r == H1_DONE);
    CHECK_EQ_U64(p.m.nhdrs, 2);
    CHECK(str_is(p.m.hdrs[0].name, "X-A") && str_is(p.m.hdrs[1].name, "X-B"));
    CHECK(p.m.upgrade.p == NULL && !(p.m.flags & HTTP_F_UPGRADE));
    done(&p);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nConnection: a b\r\n\r\n", 400, "bad Connection");
}

TEST(h1_req_upgrade)
{
    struct parsed p;
    REQ("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: k\r\n\r\n",
        &p);
    CHECK(p.r == H1_DONE && (p.m.flags & HTTP_F_UPGRADE));
    CHECK(str_is(p.m.upgrade, "websocket"));
    CHECK_EQ_U64(p.m.nhdrs, 1);
    done(&p);
    REQ("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && !(p.m.flags & HTTP_F_UPGRADE) && p.m.upgrade.p == NULL);
    done(&p);
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: a\r\nUpgrade: b\r\n\r\n", 400,
           "duplicate Upgrade");
    /* an empty Upgrade names no protocol (found by fuzz_h1 on a 101 answer) */
    REQ("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && !(p.m.flags & HTTP_F_UPGRADE) && p.m.upgrade.p == NULL);
    done(&p);
}

TEST(h1_req_expect)
{
    struct parsed p;
    REQ("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", &p);
    CHECK(p.r == H1_DONE && (p.m.flags & HTTP_F_EXPECT_100) && p.m.nhdrs == 0);
    done(&p);
    REQ("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &p); /* ignored in 1.0 */
    CHECK(p.r == H1_DONE && !(p.m.flags & HTTP_F_EXPECT_100));
    done(&p);
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417, "expectation");
    REJECT("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n", 417, "expectation");
}

/* ---- request line and Host rejections ---- */

TEST(h1_req_bad_method)
{
    REJECT("GE(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad method");
    REJECT(" / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad method");
    REJECT("G\rET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bare CR");
    REJECT("GET\r\n\r\n", 400, "bad request line");
}

TEST(h1_req_bad_version)
{
    REJECT("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "unsupported HTTP version");
    REJECT("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "unsupported HTTP version");
    REJECT("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "unsupported HTTP version");
    REJECT("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "bad HTTP version");
    REJECT("GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400, "bad HTTP version");
    REJECT("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "bad request line");
    REJECT("GET / HTTP/1\r\nHost: h\r\n\r\n", 400, "bad request line");
    REJECT("GET /\r\nHost: h\r\n\r\n", 400, "bad request line");
}

TEST(h1_req_bad_forms)
{
    REJECT("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "CONNECT without authority-form");
    REJECT("CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad CONNECT authority");
    REJECT("CONNECT h: HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad CONNECT authority");
    REJECT("CONNECT u@h:1 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad CONNECT authority");
    REJECT("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "asterisk-form without OPTIONS");
    REJECT("GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad request target");
    REJECT("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "unsupported scheme");
    REJECT("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad authority");
    REJECT("GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad authority");
    REJECT("GET http://h:123456/ HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad authority");
}

TEST(h1_req_host_rules)
{
    REJECT("GET / HTTP/1.1\r\n\r\n", 400, "missing Host");
    REJECT("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "duplicate Host");
    REJECT("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, "empty Host");
    REJECT("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad Host");
    REJECT("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "bad Host");
    REJECT("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, "bad Host");
    REJECT("GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", 400, "bad Host");
    REJECT("GET http://a/ HTTP/1.1\r\n\r\n", 400, "missing Host");
    REJECT("GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", 400, "Host differs");
    REJECT("GET http://a:8080/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "Host differs");
    REJECT("GET https://a/ HTTP/1.1\r\nHost: a:80\r\n\r\n", 400, "Host differs");
}

/* ---- limits ---- */

/* "GET /aaa... HTTP/1.1" of exactly `n` bytes (without CRLF), then a Host and the end. */
static size_t long_line(char *buf, size_t n)
{
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', n - 14);
    memcpy(buf + n - 9, " HTTP/1.1\r\nHost: h\r\n\r\n", 22);
    return n + 13;
}

TEST(h1_req_limit_414)
{
    static char buf[300];
    struct h1_limits l = {.max_line = 100, .max_head = 1000, .max_headers = 10};
    struct parsed p;
    size_t n = long_line(buf, 100);
    parse_all_ways(buf, n, -1, &l, &p, __LINE__);
    CHECK(p.r == H1_DONE);
    done(&p);
    n = long_line(buf, 101);
    parse_all_ways(buf, n, -1, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 414);
    done(&p);
    /* refused before the line ends: 101 bytes with no CR yet, or 102 ending in CR */
    struct h1_parser hp;
    struct h1_error err;
    struct http_msg m;
    struct arena a;
    size_t hl;
    arena_init(&a, 0);
    h1_parser_init(&hp);
    CHECK(h1_parse_request(&hp, buf, 100, &l, &m, &a, &hl, &err) == H1_AGAIN);
    CHECK(h1_parse_request(&hp, buf, 101, &l, &m, &a, &hl, &err) == H1_ERROR);
    CHECK_EQ_U64(err.status, 414);
    CHECK_STR_CONTAINS(err.reason, "request line too long");
    memcpy(buf + 100, "\r", 1);
    h1_parser_init(&hp);
    CHECK(h1_parse_request(&hp, buf, 101, &l, &m, &a, &hl, &err) == H1_AGAIN);
    buf[101] = 'x';
    CHECK(h1_parse_request(&hp, buf, 102, &l, &m, &a, &hl, &err) == H1_ERROR);
    CHECK_EQ_U64(err.status, 414);
    arena_free(&a);
}

/* A head of exactly `n` bytes: request line, Host, then X-Pad filling up to the end. */
static size_t head_of(char *buf, size_t n)
{
    size_t k = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ");
    memset(buf + k, 'p', n - k - 4);
    memcpy(buf + n - 4, "\r\n\r\n", 4);
    return n;
}

TEST(h1_req_limit_431_head)
{
    static char buf[600];
    struct h1_limits l = {.max_line = 100, .max_head = 500, .max_headers = 10};
    struct parsed p;
    parse_all_ways(buf, head_of(buf, 500), -1, &l, &p, __LINE__);
    CHECK(p.r == H1_DONE && p.head_len == 500);
    done(&p);
    parse_all_ways(buf, head_of(buf, 501), -1, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 431);
    done(&p);
    /* an unfinished line reaching max_head is refused without waiting for its end */
    head_of(buf, 600);
    parse_all_ways(buf, 500, -1, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 431);
    done(&p);
    parse_all_ways(buf, 499, -1, &l, &p, __LINE__);
    CHECK(p.r == H1_AGAIN);
    done(&p);
}

TEST(h1_req_limit_431_request_line_in_small_head)
{
    /* a request line that cannot fit in max_head is 414, wherever the input is split */
    static char buf[300];
    struct h1_limits l = {.max_line = 1000, .max_head = 60, .max_headers = 10};
    struct parsed p;
    parse_all_ways(buf, long_line(buf, 80), -1, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 414);
    done(&p);
    parse_all_ways(buf, long_line(buf, 58), -1, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 431); /* the line fits, the Host does not */
    done(&p);
}

TEST(h1_req_limit_431_fields)
{
    struct h1_limits l = {.max_line = 100, .max_head = 1000, .max_headers = 3};
    struct parsed p;
    static const char ok[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    static const char over[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    parse_all_ways(ok, sizeof(ok) - 1, -1, &l, &p, __LINE__);
    CHECK(p.r == H1_DONE);
    done(&p);
    parse_all_ways(over, sizeof(over) - 1, -1, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 431);
    CHECK_STR_CONTAINS(p.err.reason, "too many fields");
    done(&p);
}

/* ---- incremental parsing ---- */

TEST(h1_req_resumes_at_last_line)
{
    /* fed byte by byte, pos is always the start of the unfinished line and the search for
     * its end resumes where it stopped: no byte is searched twice */
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789\r\n\r\n";
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m;
    struct arena a;
    size_t hl = 0, n = sizeof(req) - 1;
    arena_init(&a, 0);
    h1_parser_init(&p);
    for (size_t i = 1; i < n; i++) {
        CHECK(h1_parse_request(&p, req, i, &lim, &m, &a, &hl, &err) == H1_AGAIN);
        const char *line_end = memchr(req + p.pos, '\n', n - p.pos);
        CHECK(line_end && (size_t)(line_end - req) >= i - 1);
        CHECK_EQ_U64(p.scan, i);
    }
    CHECK(h1_parse_request(&p, req, n, &lim, &m, &a, &hl, &err) == H1_DONE);
    CHECK_EQ_U64(hl, n);
    /* called again once done: the same answer */
    CHECK(h1_parse_request(&p, req, n, &lim, &m, &a, &hl, &err) == H1_DONE && hl == n);
    arena_free(&a);
}

TEST(h1_req_pipelined)
{
    static const char in[] = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                             "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
                             "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    const char *paths[] = {"/a", "/b", "/c"};
    size_t off = 0, n = sizeof(in) - 1;
    struct arena a;
    arena_init(&a, 0);
    for (int k = 0; k < 3; k++) {
        struct h1_parser p;
        struct h1_error err;
        struct http_msg m;
        size_t hl;
        h1_parser_init(&p);
        CHECK(h1_parse_request(&p, in + off, n - off, &lim, &m, &a, &hl, &err) == H1_DONE);
        CHECK(str_is(m.path, paths[k]));
        off += hl;
        if (m.body == HTTP_BODY_LENGTH)
            off += m.content_length;
        CHECK_EQ_U64(!!(m.flags & HTTP_F_CLOSE), k == 2);
        arena_reset(&a);
    }
    CHECK_EQ_U64(off, n);
    arena_free(&a);
}

TEST(h1_req_error_status_is_stable)
{
    /* the first bad line decides, even when a later one is also bad or over a limit */
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nA : 1\r\nB: \x01\r\n\r\n", 400, "whitespace before colon");
    REJECT("GET / HTTP/1.1\r\nHost: h\r\nExpect: x\r\nA : 1\r\n\r\n", 400,
           "whitespace before colon");
}

/* ---- responses ---- */

#define RESP(s, method, pp) parse_all_ways(s, sizeof(s) - 1, method, &lim, pp, __LINE__)

static void check_reject_resp(const char *s, size_t n, const char *reason, int line)
{
    struct parsed p;
    parse_all_ways(s, n, HTTP_M_GET, &lim, &p, line);
    if (p.r != H1_ERROR)
        test_fail(__FILE__, line, "accepted (result %d)", p.r);
    else if (p.err.status != 502 || !strstr(p.err.reason, reason))
        test_fail(__FILE__, line, "got %u \"%s\", expected 502 \"%s\"", p.err.status, p.err.reason,
                  reason);
    done(&p);
}

#define REJECT_RESP(s, reason) check_reject_resp(s, sizeof(s) - 1, reason, __LINE__)

TEST(h1_resp_simple)
{
    struct parsed p;
    RESP("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: x\r\n\r\nhello world!", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && !p.m.is_request);
    CHECK_EQ_U64(p.m.status, 200);
    CHECK(str_is(p.m.reason, "OK") && p.m.version == 11);
    CHECK(p.m.body == HTTP_BODY_LENGTH && p.m.content_length == 12);
    CHECK_EQ_U64(p.head_len, 50);
    CHECK(p.m.nhdrs == 1 && hdr_is(&p.m, "server", "x"));
    CHECK_EQ_U64(p.m.flags, 0);
    done(&p);
}

TEST(h1_resp_reason_forms)
{
    struct parsed p;
    RESP("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.status == 404 && p.m.reason.len == 0);
    done(&p);
    RESP("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.status == 404 && p.m.reason.len == 0);
    done(&p);
    RESP("HTTP/1.1 500 Tr\xe8s  mal\tpass\xe9\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && str_is(p.m.reason, "Tr\xe8s  mal\tpass\xe9"));
    done(&p);
}

TEST(h1_resp_framing)
{
    struct parsed p;
    RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_CHUNKED && !(p.m.flags & HTTP_F_CLOSE));
    done(&p);
    RESP("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_UNTIL_CLOSE && (p.m.flags & HTTP_F_CLOSE));
    done(&p);
    RESP("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_LENGTH && p.m.content_length == 5);
    done(&p);
}

TEST(h1_resp_no_body_statuses)
{
    static const char *const v[] = {
        "HTTP/1.1 204 No Content\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct parsed p;
        parse_all_ways(v[i], strlen(v[i]), HTTP_M_GET, &lim, &p, __LINE__);
        CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_NONE && !(p.m.flags & HTTP_F_CLOSE));
        if (i == 1)
            CHECK_EQ_U64(p.m.content_length, 42); /* informational */
        done(&p);
    }
}

TEST(h1_resp_to_head_and_connect)
{
    struct parsed p;
    RESP("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", HTTP_M_HEAD, &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_NONE && p.m.content_length == 1234);
    done(&p);
    RESP("HTTP/1.1 200 OK\r\n\r\n", HTTP_M_HEAD, &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_NONE && !(p.m.flags & HTTP_F_CLOSE));
    done(&p);
    RESP("HTTP/1.1 200 Connection established\r\n\r\n", HTTP_M_CONNECT, &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_NONE);
    done(&p);
    RESP("HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", HTTP_M_CONNECT, &p);
    CHECK(p.r == H1_DONE && p.m.body == HTTP_BODY_LENGTH);
    done(&p);
}

TEST(h1_resp_upgrade_and_connection)
{
    struct parsed p;
    RESP("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Accept: a\r\n\r\n",
         HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && (p.m.flags & HTTP_F_UPGRADE) && str_is(p.m.upgrade, "websocket"));
    CHECK(p.m.body == HTTP_BODY_NONE && p.m.nhdrs == 1);
    done(&p);
    RESP("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.flags == (HTTP_F_HTTP10 | HTTP_F_CLOSE));
    done(&p);
    RESP("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.flags == (HTTP_F_HTTP10 | HTTP_F_KEEPALIVE10));
    done(&p);
    RESP("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.flags == HTTP_F_CLOSE && p.m.nhdrs == 0);
    done(&p);
    /* Host and Expect mean nothing in a response: kept as they are */
    RESP("HTTP/1.1 200 OK\r\nHost: h\r\nExpect: x\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, &p);
    CHECK(p.r == H1_DONE && p.m.nhdrs == 2);
    done(&p);
}

TEST(h1_resp_interim_then_final)
{
    static const char in[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
                             "Content-Length: 0\r\n\r\n";
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m;
    struct arena a;
    size_t hl;
    arena_init(&a, 0);
    h1_parser_init(&p);
    CHECK(h1_parse_response(&p, in, sizeof(in) - 1, &lim, HTTP_M_POST, &m, &a, &hl, &err) ==
          H1_DONE);
    CHECK(m.status == 100 && hl == 25);
    h1_parser_init(&p);
    CHECK(h1_parse_response(&p, in + hl, sizeof(in) - 1 - hl, &lim, HTTP_M_POST, &m, &a, &hl,
                            &err) == H1_DONE);
    CHECK(m.status == 201 && m.body == HTTP_BODY_LENGTH);
    arena_free(&a);
}

TEST(h1_resp_rejected)
{
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "both Content-Length and Transfer-Encoding");
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                "both Content-Length and Transfer-Encoding");
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unknown transfer coding");
    REJECT_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "not the last");
    REJECT_RESP("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0");
    REJECT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "different");
    REJECT_RESP("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "obs-fold");
    REJECT_RESP("HTTP/1.1 200 OK\r\nA : b\r\n\r\n", "whitespace before colon");
    REJECT_RESP("HTTP/1.1 200 OK\nA: b\r\n\r\n", "bare LF");
    REJECT_RESP("HTTP/1.1 200 O\rK\r\n\r\n", "bare CR");
}

TEST(h1_resp_bad_status_line)
{
    REJECT_RESP("HTTP/1.1 099 X\r\n\r\n", "bad status code");
    REJECT_RESP("HTTP/1.1 600 X\r\n\r\n", "bad status code");
    REJECT_RESP("HTTP/1.1 2000 X\r\n\r\n", "bad status code");
    REJECT_RESP("HTTP/1.1 20a X\r\n\r\n", "bad status code");
    REJECT_RESP("HTTP/1.1 20\r\n\r\n", "bad status line");
    REJECT_RESP("HTTP/1.1  200 OK\r\n\r\n", "bad status code");
    REJECT_RESP("HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version");
    REJECT_RESP("HTTP/1.1\r\n\r\n", "bad status line");
    REJECT_RESP("ICY 200 OK\r\n\r\n", "bad status line");
    REJECT_RESP("HTTP/1.1-200 OK\r\n\r\n", "bad status line");
}

TEST(h1_resp_limits_are_502)
{
    struct h1_limits l = {.max_line = 20, .max_head = 60, .max_headers = 1};
    struct parsed p;
    static const char longline[] = "HTTP/1.1 200 A long reason phrase\r\n\r\n";
    static const char fields[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    static const char head[] = "HTTP/1.1 200 OK\r\nA: 0123456789012345678901234567890123456789\r\n";
    parse_all_ways(longline, sizeof(longline) - 1, HTTP_M_GET, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 502);
    CHECK_STR_CONTAINS(p.err.reason, "status line too long");
    done(&p);
    parse_all_ways(fields, sizeof(fields) - 1, HTTP_M_GET, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 502);
    done(&p);
    parse_all_ways(head, sizeof(head) - 1, HTTP_M_GET, &l, &p, __LINE__);
    CHECK(p.r == H1_ERROR && p.err.status == 502);
    CHECK_STR_CONTAINS(p.err.reason, "head too large");
    done(&p);
}

TEST(h1_field_line_helper)
{
    struct hstr n, v;
    CHECK(h1_field_line("X-A:  b c ", 10, &n, &v) == NULL);
    CHECK(str_is(n, "X-A") && str_is(v, "b c"));
    CHECK_STR_CONTAINS(h1_field_line(" a: b", 5, &n, &v), "obs-fold");
    CHECK_STR_CONTAINS(h1_field_line("a b: c", 6, &n, &v), "whitespace before colon");
    CHECK_STR_CONTAINS(h1_field_line("ab", 2, &n, &v), "missing colon");
    CHECK_STR_CONTAINS(h1_field_line("", 0, &n, &v), "empty field name");
    CHECK_STR_CONTAINS(h1_field_line("a: \x7f", 4, &n, &v), "CTL");
}
