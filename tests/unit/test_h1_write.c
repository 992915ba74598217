/* test_h1_write.c — the HTTP/1.1 head writer (src/http/h1_write.c): the exact bytes for
 * requests and responses of each framing and connection case, refusal of what cannot be
 * written safely, output bounds, chunk lines, and parse → write → parse round trips that
 * must give the same model.
 */
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"
#include "http/msg.h"
#include "test.h"

static const struct h1_limits lim = {.max_line = 8192, .max_head = 65536, .max_headers = 100};

static struct http_msg new_req(const char *method, const char *path, const char *host)
{
    struct http_msg m;
    memset(&m, 0, sizeof(m));
    m.is_request = true;
    m.version = 11;
    m.method_name = hstr_c(method);
    m.method = http_method_from(m.method_name);
    m.path = hstr_c(path);
    m.authority = hstr_c(host);
    return m;
}

static struct http_msg new_resp(uint16_t status, const char *reason)
{
    struct http_msg m;
    memset(&m, 0, sizeof(m));
    m.version = 11;
    m.status = status;
    m.reason = hstr_c(reason);
    return m;
}

/* Writes with h1_write_request / h1_write_response into a 4 KiB buffer; NUL-terminated. */
static char out[4096];

static ssize_t wreq(const struct http_msg *m, bool close)
{
    ssize_t n = h1_write_request(m, close, out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    return n;
}

static ssize_t wresp(const struct http_msg *m, enum h1_write_framing f, uint8_t v, bool close)
{
    ssize_t n = h1_write_response(m, f, v, close, out, sizeof(out) - 1);
    out[n > 0 ? n : 0] = '\0';
    return n;
}

#define CHECK_OUT(n, expect)                                                                       \
    do {                                                                                           \
        CHECK_EQ_U64((n), strlen(expect));                                                         \
        if (strcmp(out, (expect)) != 0)                                                            \
            test_fail(__FILE__, __LINE__, "wrote \"%s\"", out);                                    \
    } while (0)

/* ---- requests ---- */

TEST(h1_write_request_simple)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = new_req("GET", "/p", "example.com");
    m.query = HSTR_LIT("a=1");
    http_hdr_add(&m, &a, HSTR_LIT("Accept"), HSTR_LIT("*/*"));
    http_hdr_add(&m, &a, HSTR_LIT("X-Empty"), HSTR_LIT(""));
    CHECK_OUT(wreq(&m, false),
              "GET /p?a=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Empty: \r\n\r\n");
    CHECK_OUT(wreq(&m, true), "GET /p?a=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
                              "X-Empty: \r\nConnection: close\r\n\r\n");
    arena_free(&a);
}

TEST(h1_write_request_framing)
{
    struct http_msg m = new_req("POST", "/up", "h");
    m.body = HTTP_BODY_LENGTH;
    m.content_length = 1234567890123ull;
    CHECK_OUT(wreq(&m, false),
              "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 1234567890123\r\n\r\n");
    m.body = HTTP_BODY_CHUNKED;
    CHECK_OUT(wreq(&m, false),
              "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    m.body = HTTP_BODY_LENGTH;
    m.content_length = 0;
    CHECK_OUT(wreq(&m, false), "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
}

TEST(h1_write_request_upgrade)
{
    struct http_msg m = new_req("GET", "/ws", "h");
    m.flags = HTTP_F_UPGRADE;
    m.upgrade = HSTR_LIT("websocket");
    CHECK_OUT(wreq(&m, true), "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
                              "Upgrade: websocket\r\n\r\n");
}

TEST(h1_write_request_forms)
{
    struct http_msg m = new_req("CONNECT", "", "db:5432");
    CHECK_OUT(wreq(&m, false), "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n");
    m = new_req("OPTIONS", "*", "h");
    CHECK_OUT(wreq(&m, false), "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    m = new_req("GET", "", "");
    m.query = (struct hstr){"", 0}; /* a '?' with nothing after it is kept */
    /* no authority (an HTTP/1.0 client without Host): an empty Host, RFC 9112 §3.2 */
    CHECK_OUT(wreq(&m, false), "GET /? HTTP/1.1\r\nHost: \r\n\r\n");
    m = new_req("PURGE", "/x", "h");
    CHECK_OUT(wreq(&m, false), "PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n");
    m.method_name = (struct hstr){NULL, 0}; /* the name from the enum */
    m.method = HTTP_M_DELETE;
    CHECK_OUT(wreq(&m, false), "DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(h1_write_skips_generated_fields)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = new_req("GET", "/", "h");
    static const char *const names[] = {
        "Host", "content-length",   "Transfer-Encoding", "Connection", "Keep-Alive",
        "TE",   "Proxy-Connection", "Upgrade",           "X-Kept"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        http_hdr_add(&m, &a, hstr_c(names[i]), HSTR_LIT("1"));
    CHECK_OUT(wreq(&m, false), "GET / HTTP/1.1\r\nHost: h\r\nX-Kept: 1\r\n\r\n");
    arena_free(&a);
}

TEST(h1_write_refuses_injection)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = new_req("GET", "/", "h");
    http_hdr_add(&m, &a, HSTR_LIT("X-A"), HSTR_LIT("v\r\nTransfer-Encoding: chunked"));
    CHECK(wreq(&m, false) == -1);
    m = new_req("GET", "/", "h");
    http_hdr_add(&m, &a, HSTR_LIT("X A"), HSTR_LIT("v"));
    CHECK(wreq(&m, false) == -1);
    m = new_req("GET", "/", "h");
    http_hdr_add(&m, &a, HSTR_LIT("X-A"), (struct hstr){"a\0b", 3});
    CHECK(wreq(&m, false) == -1);
    m = new_req("GET", "/a b", "h");
    CHECK(wreq(&m, false) == -1);
    m = new_req("GET", "noslash", "h");
    CHECK(wreq(&m, false) == -1);
    m = new_req("GET", "/", "h\r\nX: y");
    CHECK(wreq(&m, false) == -1);
    m = new_req("GE T", "/", "h");
    CHECK(wreq(&m, false) == -1);
    m = new_req("GET", "/", "h");
    m.query = HSTR_LIT("a\nb");
    CHECK(wreq(&m, false) == -1);
    m = new_req("GET", "/", "h");
    m.flags = HTTP_F_UPGRADE;
    m.upgrade = HSTR_LIT("ws\r\n");
    CHECK(wreq(&m, false) == -1);
    arena_free(&a);
}

/* The writer skips checking a slice only when it says its bytes were checked: the parser's
 * fields say so, a slice a filter makes does not unless it sets `known`, and an empty
 * name is refused however it is marked. */
TEST(h1_write_trusts_only_slices_known_good)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A:  v w \r\n\r\n";
    struct arena a;
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m;
    size_t hl;
    arena_init(&a, 0);
    h1_parser_init(&p);
    CHECK(h1_parse_request(&p, in, strlen(in), &lim, &m, &a, &hl, &err) == H1_DONE);
    int i = http_hdr_find(&m, HSTR_LIT("x-a"), 0);
    CHECK(i >= 0);
    if (i >= 0) {
        CHECK_EQ_U64(m.hdrs[i].name.known, HSTR_TOKEN);
        CHECK_EQ_U64(m.hdrs[i].value.known, HSTR_VALUE);
        CHECK_EQ_U64(m.hdrs[i].value.len, 3); /* "v w": the OWS around it is not the value */
    }
    CHECK(HSTR_LIT("x").known == 0 && ((struct hstr){"x", 1}).known == 0);
    struct http_msg w = new_req("GET", "/", "h");
    http_hdr_add(&w, &a, HSTR_TOKEN_LIT("X-B"), (struct hstr){"1\r\n2", 4});
    CHECK(wreq(&w, false) == -1);
    w = new_req("GET", "/", "h");
    http_hdr_add(&w, &a, (struct hstr){"", 0, HSTR_TOKEN}, HSTR_LIT("v"));
    CHECK(wreq(&w, false) == -1);
    w = new_req("GET", "/", "h");
    http_hdr_add(&w, &a, HSTR_TOKEN_LIT("X-B"), (struct hstr){"ok", 2, HSTR_VALUE});
    CHECK_OUT(wreq(&w, false), "GET / HTTP/1.1\r\nHost: h\r\nX-B: ok\r\n\r\n");
    arena_free(&a);
}

TEST(h1_write_bounds)
{
    struct http_msg m = new_req("GET", "/path", "example.com");
    m.body = HTTP_BODY_LENGTH;
    m.content_length = 42;
    char full[256], small[256];
    ssize_t n = h1_write_request(&m, true, full, sizeof(full));
    CHECK(n > 0);
    for (size_t cap = 0; cap < (size_t)n; cap++)
        CHECK(h1_write_request(&m, true, small, cap) == -1);
    CHECK(h1_write_request(&m, true, small, (size_t)n) == n && !memcmp(small, full, (size_t)n));
    struct http_msg r = new_resp(200, "OK");
    n = h1_write_response(&r, H1W_AS_MSG, 10, false, full, sizeof(full));
    CHECK(n > 0);
    for (size_t cap = 0; cap < (size_t)n; cap++)
        CHECK(h1_write_response(&r, H1W_AS_MSG, 10, false, small, cap) == -1);
    CHECK(h1_write_response(&r, H1W_AS_MSG, 10, false, small, (size_t)n) == n);
}

/* ---- responses ---- */

TEST(h1_write_response_simple)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = new_resp(200, "OK");
    m.body = HTTP_BODY_LENGTH;
    m.content_length = 5;
    http_hdr_add(&m, &a, HSTR_LIT("Server"), HSTR_LIT("x"));
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, false),
              "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\n\r\n");
    CHECK_OUT(
        wresp(&m, H1W_AS_MSG, 10, false),
        "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 10, true),
              "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n");
    arena_free(&a);
}

TEST(h1_write_response_reason)
{
    struct http_msg m = new_resp(404, "");
    m.body = HTTP_BODY_LENGTH;
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, false),
              "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    m = new_resp(299, "");
    m.body = HTTP_BODY_LENGTH;
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, false), "HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n");
    m = new_resp(200, "O\nK");
    CHECK(wresp(&m, H1W_AS_MSG, 11, false) == -1);
    m = new_resp(99, "");
    CHECK(wresp(&m, H1W_AS_MSG, 11, false) == -1);
}

TEST(h1_write_response_chunked)
{
    struct http_msg m = new_resp(200, "OK");
    m.body = HTTP_BODY_CHUNKED;
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, false),
              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* an HTTP/1.0 client cannot take chunks: the caller sends until close */
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 10, true), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    m.body = HTTP_BODY_UNTIL_CLOSE;
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, true), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
}

TEST(h1_write_response_no_body)
{
    struct http_msg m = new_resp(200, "OK");
    m.body = HTTP_BODY_LENGTH;
    m.content_length = 99;
    CHECK_OUT(wresp(&m, H1W_NO_BODY, 11, false), "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
    m.body = HTTP_BODY_CHUNKED;
    CHECK_OUT(wresp(&m, H1W_NO_BODY, 11, false), "HTTP/1.1 200 OK\r\n\r\n");
    /* a parsed HEAD answer: NONE with the informational length */
    m.body = HTTP_BODY_NONE;
    CHECK_OUT(wresp(&m, H1W_NO_BODY, 11, false), "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n");
    m = new_resp(304, "Not Modified");
    m.content_length = 7;
    CHECK_OUT(wresp(&m, H1W_NO_BODY, 11, false),
              "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n");
    m = new_resp(204, "No Content");
    m.body = HTTP_BODY_LENGTH;
    m.content_length = 7;
    CHECK_OUT(wresp(&m, H1W_NO_BODY, 11, false), "HTTP/1.1 204 No Content\r\n\r\n");
    m = new_resp(100, "Continue");
    CHECK_OUT(wresp(&m, H1W_NO_BODY, 11, false), "HTTP/1.1 100 Continue\r\n\r\n");
}

TEST(h1_write_response_none_gets_zero_length)
{
    struct http_msg m = new_resp(403, "");
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, false),
              "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    m = new_resp(204, "");
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, false), "HTTP/1.1 204 No Content\r\n\r\n");
    m = new_resp(304, "");
    CHECK_OUT(wresp(&m, H1W_AS_MSG, 11, false), "HTTP/1.1 304 Not Modified\r\n\r\n");
}

TEST(h1_write_response_101)
{
    struct http_msg m = new_resp(101, "Switching Protocols");
    m.flags = HTTP_F_UPGRADE;
    m.upgrade = HSTR_LIT("websocket");
    CHECK_OUT(
        wresp(&m, H1W_NO_BODY, 11, false),
        "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
}

/* ---- chunks ---- */

TEST(h1_write_chunk_lines)
{
    char buf[32];
    CHECK(h1_write_chunk_head(1, buf) == 3 && !memcmp(buf, "1\r\n", 3));
    CHECK(h1_write_chunk_head(0x1a2b, buf) == 6 && !memcmp(buf, "1a2b\r\n", 6));
    CHECK(h1_write_chunk_head(4096, buf) == 6 && !memcmp(buf, "1000\r\n", 6));
    CHECK(h1_write_chunk_head(UINT64_MAX, buf) == 18 && !memcmp(buf, "ffffffffffffffff\r\n", 18));
    struct http_msg none = {0};
    struct http_hdr x1[] = {{HSTR_LIT("X"), HSTR_LIT("1")}};
    struct http_msg one = {.trailers = x1, .ntrailers = 1};
    CHECK(h1_write_last_chunk(&none, buf, sizeof(buf)) == 5 && !memcmp(buf, "0\r\n\r\n", 5));
    CHECK(h1_write_last_chunk(&one, buf, sizeof(buf)) == 11);
    CHECK(!memcmp(buf, "0\r\nX: 1\r\n\r\n", 11));
    CHECK(h1_write_last_chunk(&one, buf, 10) == -1);
    CHECK(h1_write_last_chunk(&none, buf, 4) == -1);
}

TEST(h1_write_last_chunk_leaves_out_unsafe_and_framing_trailers)
{
    /* a trailer a filter stored can neither split the message nor add framing */
    char buf[128];
    struct http_hdr t[] = {
        {HSTR_LIT("Content-Length"), HSTR_LIT("5")},
        {HSTR_LIT("Bad Name"), HSTR_LIT("v")},
        {HSTR_LIT("X-Crlf"), HSTR_LIT("a\r\nb")},
        {HSTR_LIT("Host"), HSTR_LIT("h")},
        {HSTR_LIT(""), HSTR_LIT("v")},
        {HSTR_LIT("X-Ok"), HSTR_LIT("fine")},
    };
    struct http_msg m = {.trailers = t, .ntrailers = 6};
    ssize_t n = h1_write_last_chunk(&m, buf, sizeof(buf));
    CHECK(n == 17 && !memcmp(buf, "0\r\nX-Ok: fine\r\n\r\n", 17));
}

TEST(h1_write_chunks_decode_back)
{
    /* chunk lines the writer makes decode back, with the trailers */
    char buf[256];
    size_t n = h1_write_chunk_head(11, buf);
    memcpy(buf + n, "hello world\r\n", 13);
    n += 13;
    struct http_hdr tv[] = {{HSTR_LIT("T"), HSTR_LIT("v")}};
    struct http_msg m = {.trailers = tv, .ntrailers = 1};
    ssize_t k = h1_write_last_chunk(&m, buf + n, sizeof(buf) - n);
    CHECK(k == 11);
    n += (size_t)k;
    struct h1_body b;
    struct h1_error err;
    const char *data;
    size_t c, dl, off = 0, got = 0;
    int r;
    h1_body_init(&b, HTTP_BODY_CHUNKED, 0);
    while ((r = h1_body_step(&b, buf + off, n - off, false, &c, &data, &dl, &err)) == H1B_DATA) {
        off += c;
        got += dl;
    }
    off += c;
    CHECK(r == H1B_DONE && got == 11 && off == n);
    CHECK(b.trailer_len == 6 && !memcmp(b.trailer_buf, "T: v\r\n", 6));
}

/* ---- round trips ---- */

static bool same_str(struct hstr a, struct hstr b)
{
    return (a.p == NULL) == (b.p == NULL) && hstr_eq(a, b);
}

/* The model parts a round trip keeps (absolute-form becomes origin-form: scheme and
 * HTTP_F_ABSOLUTE are not kept; 1.0 becomes 1.1). */
static bool same_model(const struct http_msg *x, const struct http_msg *y)
{
    uint32_t keep = HTTP_F_CLOSE | HTTP_F_UPGRADE | HTTP_F_EXPECT_100;
    if (x->method != y->method || x->status != y->status || x->body != y->body ||
        x->content_length != y->content_length || x->nhdrs != y->nhdrs ||
        (x->flags & keep & ~HTTP_F_EXPECT_100) != (y->flags & keep & ~HTTP_F_EXPECT_100))
        return false;
    if (!hstr_eq(x->method_name, y->method_name) || !hstr_eq(x->authority, y->authority) ||
        !hstr_eq(x->path, y->path) || !same_str(x->query, y->query) ||
        !same_str(x->upgrade, y->upgrade))
        return false;
    /* an empty reason is written as the standard one */
    if (!x->is_request &&
        !hstr_eq(x->reason.len ? x->reason : hstr_c(http_reason(x->status)), y->reason))
        return false;
    for (uint32_t i = 0; i < x->nhdrs; i++)
        if (!hstr_eq(x->hdrs[i].name, y->hdrs[i].name) ||
            !hstr_eq(x->hdrs[i].value, y->hdrs[i].value))
            return false;
    return true;
}

static void round_trip_request(const char *in, int line)
{
    struct arena a;
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m1, m2;
    size_t hl;
    char buf[4096];
    arena_init(&a, 0);
    h1_parser_init(&p);
    if (h1_parse_request(&p, in, strlen(in), &lim, &m1, &a, &hl, &err) != H1_DONE) {
        test_fail(__FILE__, line, "first parse failed");
        goto out;
    }
    ssize_t n = h1_write_request(&m1, m1.flags & HTTP_F_CLOSE, buf, sizeof(buf));
    h1_parser_init(&p);
    if (n < 0 || h1_parse_request(&p, buf, (size_t)n, &lim, &m2, &a, &hl, &err) != H1_DONE ||
        hl != (size_t)n)
        test_fail(__FILE__, line, "written head does not parse: %.*s", (int)(n > 0 ? n : 0), buf);
    else if (!same_model(&m1, &m2))
        test_fail(__FILE__, line, "model differs after a round trip: %.*s", (int)n, buf);
out:
    arena_free(&a);
}

static void round_trip_response(const char *in, enum http_method method, int line)
{
    struct arena a;
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m1, m2;
    size_t hl;
    char buf[4096];
    arena_init(&a, 0);
    h1_parser_init(&p);
    if (h1_parse_response(&p, in, strlen(in), &lim, method, &m1, &a, &hl, &err) != H1_DONE) {
        test_fail(__FILE__, line, "first parse failed");
        goto out;
    }
    bool none = m1.body == HTTP_BODY_NONE;
    ssize_t n = h1_write_response(&m1, none ? H1W_NO_BODY : H1W_AS_MSG, 11, m1.flags & HTTP_F_CLOSE,
                                  buf, sizeof(buf));
    h1_parser_init(&p);
    if (n < 0 || h1_parse_response(&p, buf, (size_t)n, &lim, method, &m2, &a, &hl, &err) != H1_DONE)
        test_fail(__FILE__, line, "written head does not parse: %.*s", (int)(n > 0 ? n : 0), buf);
    else if (!same_model(&m1, &m2))
        test_fail(__FILE__, line, "model differs after a round trip: %.*s", (int)n, buf);
out:
    arena_free(&a);
}

TEST(h1_round_trip_requests)
{
    static const char *const v[] = {
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a/b?c=d&e HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\n"
        "Cookie: a=1; b=2\r\nX-Empty:\r\n\r\n",
        "GET /q? HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\n",
        "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n",
        "GET http://h:81/p?x HTTP/1.1\r\nHost: h:81\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\nMax-Forwards: 1\r\n\r\n",
        "PURGE /cache HTTP/1.1\r\nHost: h\r\nConnection: X-Hop\r\nX-Hop: 1\r\nX-E2e: 2\r\n\r\n",
        "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: [::1]:80\r\nX: \xff\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        round_trip_request(v[i], __LINE__);
}

TEST(h1_round_trip_responses)
{
    round_trip_response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: s\r\n\r\n", HTTP_M_GET,
                        __LINE__);
    round_trip_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_M_GET,
                        __LINE__);
    round_trip_response("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", HTTP_M_GET, __LINE__);
    round_trip_response("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, __LINE__);
    round_trip_response("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", HTTP_M_GET, __LINE__);
    round_trip_response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", HTTP_M_HEAD, __LINE__);
    round_trip_response("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                        "Upgrade: websocket\r\n\r\n",
                        HTTP_M_GET, __LINE__);
    round_trip_response("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", HTTP_M_GET,
                        __LINE__);
}
