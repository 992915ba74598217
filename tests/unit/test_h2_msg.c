/* test_h2_msg.c — HTTP/2 header blocks ⇄ the message model (http/h2_msg.h). */
#include <stdlib.h>

#include "http/h2_msg.h"
#include "http/msg.h"
#include "test.h"

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }

struct blk {
    struct h2_head h;
    struct http_msg m;
    struct arena a;
};

static int read_block(struct blk *b, enum h2_block kind, const nghttp2_nv *nv, size_t n,
                      bool end_stream)
{
    memset(b, 0, sizeof(*b));
    arena_init(&b->a, 0);
    h2_head_begin(&b->h, kind, HTTP_M_GET, 16384, 100);
    return h2_head_from_nv(&b->h, &b->m, &b->a, nv, n, end_stream);
}

static bool nv_has(const nghttp2_nv *nv, int n, const char *name, const char *value)
{
    for (int i = 0; i < n; i++)
        if (nv[i].namelen == strlen(name) && !memcmp(nv[i].name, name, nv[i].namelen) &&
            nv[i].valuelen == strlen(value) && !memcmp(nv[i].value, value, nv[i].valuelen))
            return true;
    return false;
}

static bool nv_named(const nghttp2_nv *nv, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (nv[i].namelen == strlen(name) && !memcmp(nv[i].name, name, nv[i].namelen))
            return true;
    return false;
}

TEST(h2_msg_request_in)
{
    const nghttp2_nv nv[] = {
        NV(":method", "POST"),   NV(":scheme", "https"),       NV(":authority", "a.example:8443"),
        NV(":path", "/x/y?q=1"), NV("cookie", "a=1"),          NV("content-length", "5"),
        NV("x-y", "z"),          NV("cookie", "b=2"),          NV("te", "trailers"),
        NV("host", "other"),     NV("expect", "100-continue"),
    };
    struct blk b;
    CHECK(read_block(&b, H2B_REQUEST, nv, sizeof(nv) / sizeof(nv[0]), false) == 0);
    CHECK(b.m.is_request && b.m.version == 20 && b.m.method == HTTP_M_POST);
    CHECK(hstr_eq(b.m.scheme, HSTR_LIT("https")));
    CHECK(hstr_eq(b.m.authority, HSTR_LIT("a.example:8443"))); /* :authority wins over host */
    CHECK(hstr_eq(b.m.path, HSTR_LIT("/x/y")) && hstr_eq(b.m.query, HSTR_LIT("q=1")));
    CHECK(b.m.body == HTTP_BODY_LENGTH && b.m.content_length == 5);
    CHECK(hstr_eq(http_hdr_get(&b.m, HSTR_LIT("cookie")), HSTR_LIT("a=1; b=2")));
    CHECK(http_hdr_find(&b.m, HSTR_LIT("cookie"), 0) == 0 && b.m.nhdrs == 3);
    CHECK(!http_hdr_get(&b.m, HSTR_LIT("content-length")).p);
    CHECK(!http_hdr_get(&b.m, HSTR_LIT("host")).p && !http_hdr_get(&b.m, HSTR_LIT("expect")).p);
    CHECK(hstr_eq(http_hdr_get(&b.m, HSTR_LIT("te")), HSTR_LIT("trailers")));
    CHECK(b.m.flags & HTTP_F_EXPECT_100);
    arena_free(&b.a);
}

TEST(h2_msg_request_framing)
{
    const nghttp2_nv get[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
                              NV("host", "h.example")};
    struct blk b;
    CHECK(read_block(&b, H2B_REQUEST, get, 4, true) == 0);
    CHECK(b.m.body == HTTP_BODY_NONE && hstr_eq(b.m.authority, HSTR_LIT("h.example")));
    CHECK(b.m.query.p == NULL);
    arena_free(&b.a);
    CHECK(read_block(&b, H2B_REQUEST, get, 4, false) == 0);
    CHECK(b.m.body == HTTP_BODY_CHUNKED); /* unknown length: DATA frames follow */
    arena_free(&b.a);
    const nghttp2_nv opt[] = {NV(":method", "OPTIONS"), NV(":scheme", "http"), NV(":path", "*")};
    CHECK(read_block(&b, H2B_REQUEST, opt, 3, true) == 0);
    arena_free(&b.a);
}

/* Each of these is malformed (RFC 9113 §8.1.1, §8.2, §8.3): the stream is reset. */
TEST(h2_msg_request_malformed)
{
    static const nghttp2_nv cases[][5] = {
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("X-Up", "1")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("connection", "x")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("te", "gzip")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("upgrade", "h2c")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
         NV("transfer-encoding", "chunked")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV("x", "1"), NV(":path", "/")},
        {NV(":method", "GET"), NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV(":status", "200")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV(":foo", "1")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "nope")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "")},
        {NV(":method", "GET"), NV(":path", "/")},
        {NV(":scheme", "http"), NV(":path", "/")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("x", " lead")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("x", "a\r\nb: c")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("content-length", "x")},
        {NV(":method", "G T"), NV(":scheme", "http"), NV(":path", "/")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV(":authority", "a@b")},
        {NV(":method", "CONNECT"), NV(":scheme", "http"), NV(":path", "/")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "*")},
        /* bad bytes anywhere in long values (eight at a time), and in pseudo-header ones */
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
         NV("x", "abcdefghijklmnop\rq")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
         NV("x", "abcdefghij\nklmnopq")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
         NV("x", "abcdefgh\0ijklmnopq")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV("x", "abcdefghijk\t")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/a\r\nb")},
        {NV(":method", "GET"), NV(":scheme", "ht tp"), NV(":path", "/")},
        {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"), NV(":authority", "a\n")},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = 0;
        while (n < 5 && cases[i][n].name)
            n++;
        struct blk b;
        int r = read_block(&b, H2B_REQUEST, cases[i], n, true);
        if (r != -1 || !b.h.err || b.h.status != 400)
            test_fail(__FILE__, __LINE__, "case %zu: %d, not malformed", i, r);
        arena_free(&b.a);
    }
    /* long values are read whole (eight bytes at a time, then the rest) */
    const nghttp2_nv ok[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/"),
                             NV("user-agent", "h2load nghttp2/1.52.0 (a\tlong value)")};
    struct blk v;
    CHECK(read_block(&v, H2B_REQUEST, ok, 4, true) == 0);
    CHECK(hstr_eq(http_hdr_get(&v.m, HSTR_LIT("user-agent")),
                  HSTR_LIT("h2load nghttp2/1.52.0 (a\tlong value)")));
    arena_free(&v.a);
    /* a content-length and no body */
    const nghttp2_nv cl[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/"),
                             NV("content-length", "3")};
    struct blk b;
    CHECK(read_block(&b, H2B_REQUEST, cl, 4, true) == -1);
    arena_free(&b.a);
}

/* Past the limits the block is still read (HPACK must go on) but nothing is stored. */
TEST(h2_msg_request_limits)
{
    struct blk b;
    memset(&b, 0, sizeof(b));
    arena_init(&b.a, 0);
    h2_head_begin(&b.h, H2B_REQUEST, HTTP_M_OTHER, 1024, 10);
    const nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":path", "/")};
    for (int i = 0; i < 3; i++)
        CHECK(h2_head_field(&b.h, &b.m, &b.a, nv[i].name, nv[i].namelen, nv[i].value,
                            nv[i].valuelen) == 0);
    char big[600];
    memset(big, 'v', sizeof(big));
    for (int i = 0; i < 1000; i++)
        CHECK(h2_head_field(&b.h, &b.m, &b.a, (const uint8_t *)"x-big", 5, (const uint8_t *)big,
                            sizeof(big)) == 0);
    CHECK(b.m.nhdrs <= 1 && b.a.used < 4096);
    CHECK(h2_head_end(&b.h, &b.m, &b.a, true) == 1 && b.h.status == 431);
    arena_free(&b.a);
    const nghttp2_nv ex[] = {NV(":method", "PUT"), NV(":scheme", "http"), NV(":path", "/"),
                             NV("expect", "nope")};
    CHECK(read_block(&b, H2B_REQUEST, ex, 4, false) == 1 && b.h.status == 417);
    arena_free(&b.a);
}

TEST(h2_msg_response_in)
{
    const nghttp2_nv nv[] = {NV(":status", "200"), NV("content-length", "10"), NV("x-a", "b")};
    struct blk b;
    CHECK(read_block(&b, H2B_RESPONSE, nv, 3, false) == 0);
    CHECK(b.m.status == 200 && b.m.body == HTTP_BODY_LENGTH && b.m.content_length == 10);
    CHECK(b.m.nhdrs == 1 && !b.m.is_request);
    arena_free(&b.a);
    const nghttp2_nv nc[] = {NV(":status", "304"), NV("content-length", "10")};
    CHECK(read_block(&b, H2B_RESPONSE, nc, 2, true) == 0);
    CHECK(b.m.body == HTTP_BODY_NONE && b.m.content_length == 10);
    arena_free(&b.a);
    const nghttp2_nv bad[][2] = {{NV(":status", "20")},
                                 {NV(":status", "101")},
                                 {NV(":path", "/")},
                                 {NV("x", "1"), NV(":status", "200")},
                                 {NV(":status", "abc")}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = bad[i][1].name ? 2 : 1;
        if (read_block(&b, H2B_RESPONSE, bad[i], n, false) != -1 || b.h.status != 502)
            test_fail(__FILE__, __LINE__, "response case %zu not malformed", i);
        arena_free(&b.a);
    }
    const nghttp2_nv cont[] = {NV(":status", "100")};
    CHECK(read_block(&b, H2B_RESPONSE, cont, 1, false) == 0 && b.m.body == HTTP_BODY_NONE);
    arena_free(&b.a);
}

TEST(h2_msg_trailers_both_ways)
{
    const nghttp2_nv nv[] = {NV("grpc-status", "0"), NV("grpc-message", "ok"),
                             NV("content-length", "1")};
    struct blk b;
    CHECK(read_block(&b, H2B_TRAILERS, nv, 3, true) == 0);
    CHECK(b.m.ntrailers == 2 && hstr_eq(b.m.trailers[0].name, HSTR_LIT("grpc-status")));
    nghttp2_nv *out;
    struct h2_out o = {H2B_TRAILERS, false, {NULL, 0}};
    int n = h2_msg_nv(&b.m, &o, &b.a, &out);
    CHECK(n == 2 && nv_has(out, n, "grpc-message", "ok"));
    arena_free(&b.a);
    const nghttp2_nv ps[] = {NV(":status", "200")};
    CHECK(read_block(&b, H2B_TRAILERS, ps, 1, true) == -1);
    arena_free(&b.a);
    CHECK(read_block(&b, H2B_TRAILERS, nv, 1, false) == -1); /* must end the stream */
    arena_free(&b.a);
    /* many trailers grow their array */
    memset(&b, 0, sizeof(b));
    arena_init(&b.a, 0);
    h2_head_begin(&b.h, H2B_TRAILERS, HTTP_M_GET, 1 << 20, 100);
    for (int i = 0; i < 40; i++)
        CHECK(h2_head_field(&b.h, &b.m, &b.a, (const uint8_t *)"t", 1, (const uint8_t *)"v", 1) ==
              0);
    CHECK(h2_head_end(&b.h, &b.m, &b.a, true) == 0 && b.m.ntrailers == 40);
    arena_free(&b.a);
}

/* An HTTP/1-shaped response (as a server or a filter made it) for an HTTP/2 client. */
TEST(h2_msg_response_out)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = {.status = 200, .body = HTTP_BODY_LENGTH, .content_length = 12};
    http_hdr_add(&m, &a, HSTR_LIT("Content-Type"), HSTR_LIT("text/plain"));
    http_hdr_add(&m, &a, HSTR_LIT("Connection"), HSTR_LIT("close"));
    http_hdr_add(&m, &a, HSTR_LIT("Keep-Alive"), HSTR_LIT("timeout=5"));
    http_hdr_add(&m, &a, HSTR_LIT("Transfer-Encoding"), HSTR_LIT("chunked"));
    http_hdr_add(&m, &a, HSTR_LIT("Set-Cookie"), HSTR_LIT("a=1"));
    http_hdr_add(&m, &a, HSTR_LIT("Set-Cookie"), HSTR_LIT("b=2"));
    nghttp2_nv *nv;
    struct h2_out o = {H2B_RESPONSE, false, {NULL, 0}};
    int n = h2_msg_nv(&m, &o, &a, &nv);
    CHECK(n == 5);
    CHECK(n > 0 && nv_has(nv, n, ":status", "200") && nv[0].name[0] == ':');
    CHECK(nv_has(nv, n, "content-type", "text/plain") && nv_has(nv, n, "content-length", "12"));
    CHECK(nv_has(nv, n, "set-cookie", "a=1") && nv_has(nv, n, "set-cookie", "b=2"));
    CHECK(!nv_named(nv, n, "connection") && !nv_named(nv, n, "transfer-encoding"));
    /* a chunked (unknown length) body: no content-length; HEAD keeps the length */
    m.body = HTTP_BODY_CHUNKED;
    n = h2_msg_nv(&m, &o, &a, &nv);
    CHECK(n == 4 && !nv_named(nv, n, "content-length"));
    m.body = HTTP_BODY_LENGTH;
    o.no_body = true;
    n = h2_msg_nv(&m, &o, &a, &nv);
    CHECK(nv_has(nv, n, "content-length", "12"));
    m.status = 204;
    n = h2_msg_nv(&m, &o, &a, &nv);
    CHECK(nv_has(nv, n, ":status", "204") && !nv_named(nv, n, "content-length"));
    /* what could split a message elsewhere is refused */
    http_hdr_add(&m, &a, HSTR_LIT("X-Bad"), HSTR_LIT("a\r\nb"));
    CHECK(h2_msg_nv(&m, &o, &a, &nv) == -1);
    m.nhdrs--;
    http_hdr_add(&m, &a, HSTR_LIT("Bad Name"), HSTR_LIT("v"));
    CHECK(h2_msg_nv(&m, &o, &a, &nv) == -1);
    arena_free(&a);
}

/* An HTTP/1 request (as the HTTP/1 parser makes it) for an HTTP/2 server. */
TEST(h2_msg_request_out)
{
    struct arena a;
    arena_init(&a, 0);
    struct http_msg m = {.is_request = true,
                         .version = 11,
                         .method = HTTP_M_POST,
                         .method_name = HSTR_LIT("POST"),
                         .authority = HSTR_LIT("api.example"),
                         .path = HSTR_LIT("/v1/x"),
                         .query = HSTR_LIT("a=b"),
                         .body = HTTP_BODY_LENGTH,
                         .content_length = 3};
    http_hdr_add(&m, &a, HSTR_LIT("Host"), HSTR_LIT("api.example"));
    http_hdr_add(&m, &a, HSTR_LIT("TE"), HSTR_LIT("trailers"));
    http_hdr_add(&m, &a, HSTR_LIT("Proxy-Connection"), HSTR_LIT("keep-alive"));
    http_hdr_add(&m, &a, HSTR_LIT("Upgrade"), HSTR_LIT("h2c"));
    http_hdr_add(&m, &a, HSTR_LIT("X-Forwarded-For"), HSTR_LIT("10.0.0.1"));
    nghttp2_nv *nv;
    struct h2_out o = {H2B_REQUEST, false, HSTR_LIT("http")};
    int n = h2_msg_nv(&m, &o, &a, &nv);
    CHECK(n == 7);
    CHECK(nv_has(nv, n, ":method", "POST") && nv_has(nv, n, ":scheme", "http"));
    CHECK(nv_has(nv, n, ":authority", "api.example") && nv_has(nv, n, ":path", "/v1/x?a=b"));
    CHECK(nv_has(nv, n, "te", "trailers") && nv_has(nv, n, "x-forwarded-for", "10.0.0.1"));
    CHECK(nv_has(nv, n, "content-length", "3") && !nv_named(nv, n, "host"));
    CHECK(!nv_named(nv, n, "proxy-connection") && !nv_named(nv, n, "upgrade"));
    /* round trip: what Strata writes, Strata reads back the same */
    struct blk b;
    CHECK(read_block(&b, H2B_REQUEST, nv, (size_t)n, false) == 0);
    CHECK(hstr_eq(b.m.path, m.path) && hstr_eq(b.m.query, m.query));
    CHECK(b.m.body == HTTP_BODY_LENGTH && b.m.content_length == 3);
    arena_free(&b.a);
    /* TE other than trailers is dropped; an empty path is "/" */
    m.hdrs[1].value = HSTR_LIT("gzip");
    m.path = (struct hstr){NULL, 0};
    m.query = (struct hstr){NULL, 0};
    n = h2_msg_nv(&m, &o, &a, &nv);
    CHECK(!nv_named(nv, n, "te") && nv_has(nv, n, ":path", "/"));
    arena_free(&a);
}
