/* test_grpc_web.c — the grpc_web filter: streaming base64 both ways (every cut of the
 * input, padding in the middle, bad input), gRPC frame boundaries, the trailer frame, and
 * the filter on transactions built by hand (request and response heads, bodies in pieces,
 * trailers moved into the body, trailers-only answers, requests that are not gRPC-Web).
 */
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/bug.h"
#include "http/filter.h"
#include "http/filters/grpc_web.h"
#include "http/msg.h"
#include "test.h"

/* ---- base64 ---- */

TEST(grpc_web_b64_encode)
{
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},
             {"f", "Zg=="},
             {"fo", "Zm8="},
             {"foo", "Zm9v"},
             {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"},
             {"\xff\xfe\xfd", "//79"}};
    char out[32];
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        size_t n = gw_b64_encode((const uint8_t *)v[i].in, strlen(v[i].in), out);
        CHECK_EQ_U64(n, gw_b64_len(strlen(v[i].in)));
        if (n != strlen(v[i].out) || memcmp(out, v[i].out, n) != 0)
            test_fail(__FILE__, __LINE__, "\"%s\" -> \"%.*s\"", v[i].in, (int)n, out);
    }
}

/* Decodes `in` fed in two pieces cut at `cut`; the bytes (or -1) into out/outlen. */
static int decode_cut(const char *in, size_t cut, uint8_t *out, size_t *outlen)
{
    struct gw_b64_dec d = {0};
    size_t n1 = 0, n2 = 0, len = strlen(in);
    if (gw_b64_decode(&d, in, cut, false, out, &n1) < 0 ||
        gw_b64_decode(&d, in + cut, len - cut, true, out + n1, &n2) < 0)
        return -1;
    *outlen = n1 + n2;
    return 0;
}

TEST(grpc_web_b64_decode_every_cut)
{
    static const struct {
        const char *in, *out;
        size_t outlen;
    } v[] = {
        {"Zm9vYmFy", "foobar", 6},   {"Zg==Zm8=Zm9v", "ffofoo", 6}, /* padded pieces one after the
                                                                       other */
        {"Zm9v\r\nYg==", "foob", 4},                                /* whitespace skipped */
        {"Zm9vYg", "foob", 4},                                      /* an unpadded last tail */
        {"Zm9vYmE", "fooba", 5},     {"AAECAwQ=", "\0\1\2\3\4", 5}, {"", "", 0},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        for (size_t cut = 0; cut <= strlen(v[i].in); cut++) {
            uint8_t out[32];
            size_t n = 0;
            if (decode_cut(v[i].in, cut, out, &n) < 0 || n != v[i].outlen ||
                memcmp(out, v[i].out, n) != 0)
                test_fail(__FILE__, __LINE__, "\"%s\" cut at %zu: %zu bytes", v[i].in, cut, n);
        }
    }
}

TEST(grpc_web_b64_decode_bad)
{
    static const char *const bad[] = {
        "Zm9*",     /* not in the alphabet */
        "Z===",     /* padding in the second place */
        "Zm=v",     /* data after padding in a group */
        "Zm9vY",    /* a last tail of one character */
        "Zm9v-_==", /* the URL-safe alphabet is not gRPC-Web's */
        "=AAA",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint8_t out[32];
        size_t n;
        for (size_t cut = 0; cut <= strlen(bad[i]); cut++)
            if (decode_cut(bad[i], cut, out, &n) == 0)
                test_fail(__FILE__, __LINE__, "\"%s\" (cut at %zu) accepted", bad[i], cut);
    }
}

/* ---- frames ---- */

TEST(grpc_web_frame_boundaries)
{
    const uint8_t two[] = {0, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 1, 'x'};
    for (size_t cut = 0; cut <= sizeof(two); cut++) {
        struct gw_frames f = {0};
        bool at1 = gw_frames_feed(&f, two, cut);
        bool at2 = gw_frames_feed(&f, two + cut, sizeof(two) - cut);
        bool boundary = cut == 0 || cut == 7 || cut == 12 || cut == sizeof(two);
        if (at1 != boundary || !at2)
            test_fail(__FILE__, __LINE__, "cut at %zu: %d %d", cut, at1, at2);
    }
}

TEST(grpc_web_trailer_frame)
{
    struct http_hdr t[] = {{HSTR_LIT("Grpc-Status"), HSTR_LIT("0")},
                           {HSTR_LIT("grpc-message"), HSTR_LIT("ok%20fine")},
                           {HSTR_LIT("x-b"), HSTR_LIT("")}};
    uint8_t out[128];
    size_t n = gw_trailer_frame_len(t, 3);
    CHECK_EQ_U64(gw_trailer_frame(t, 3, out), n);
    static const char want[] = "\x80\0\0\0\x2dgrpc-status:0\r\ngrpc-message:ok%20fine\r\nx-b:\r\n";
    CHECK_EQ_U64(n, sizeof(want) - 1);
    CHECK(memcmp(out, want, sizeof(want) - 1) == 0);
    CHECK_EQ_U64(gw_trailer_frame(t, 0, out), 5);
    CHECK(memcmp(out, "\x80\0\0\0\0", 5) == 0);
}

/* ---- the filter on transactions ---- */

static void req_init(struct http_txn *t, const char *ct, const char *accept)
{
    memset(t, 0, sizeof(*t));
    arena_init(&t->arena, 0);
    t->req.is_request = true;
    t->req.version = 11;
    t->req.method_name = HSTR_LIT("POST");
    t->req.method = HTTP_M_POST;
    t->req.path = HSTR_LIT("/pkg.Svc/M");
    t->req.body = HTTP_BODY_LENGTH;
    t->req.content_length = 12;
    if (ct)
        CHECK(http_hdr_add(&t->req, &t->arena, HSTR_LIT("Content-Type"), hstr_c(ct)) == 0);
    if (accept)
        CHECK(http_hdr_add(&t->req, &t->arena, HSTR_LIT("Accept"), hstr_c(accept)) == 0);
}

static void resp_init(struct http_txn *t, unsigned status, const char *ct, enum http_body_kind body)
{
    t->resp.status = (uint16_t)status;
    t->resp.version = 20;
    t->resp.body = body;
    if (ct)
        CHECK(http_hdr_add(&t->resp, &t->arena, HSTR_LIT("content-type"), hstr_c(ct)) == 0);
}

static bool hdr_is(const struct http_msg *m, const char *name, const char *want)
{
    struct hstr v = http_hdr_get(m, hstr_c(name));
    return want ? v.p && hstr_eq(v, hstr_c(want)) : v.p == NULL;
}

/* Passes `in` through on_response_body in pieces of `step` bytes (0: one piece), then the
 * last call; appends every output to out (returned length), or -1 on a filter error. */
static long response_body(struct http_txn *t, const uint8_t *in, size_t len, size_t step, char *out,
                          size_t cap)
{
    size_t o = 0;
    for (size_t off = 0;; off += step) {
        bool last = off >= len;
        size_t n = last ? 0 : step && len - off > step ? step : len - off;
        const char *d = last ? NULL : (const char *)in + off; /* as the codecs call it */
        size_t dl = n;
        if (filter_grpc_web.on_response_body(t, NULL, &d, &dl, last) != FILTER_CONTINUE ||
            o + dl > cap)
            return -1;
        if (dl)
            memcpy(out + o, d, dl);
        o += dl;
        if (last)
            return (long)o;
        if (!step)
            off = len - step; /* one piece, then the last call */
    }
}

TEST(grpc_web_request_binary)
{
    struct http_txn t;
    req_init(&t, "application/grpc-web+proto", NULL);
    CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
    CHECK(t.grpc_web != NULL);
    CHECK(hdr_is(&t.req, "content-type", "application/grpc+proto"));
    CHECK(hdr_is(&t.req, "te", "trailers"));
    CHECK(hdr_is(&t.req, "grpc-accept-encoding", "identity"));
    CHECK(t.req.body == HTTP_BODY_LENGTH && t.req.content_length == 12); /* unchanged */
    const char *d = "\0\0\0\0\7message", *d0 = d;
    size_t len = 12;
    CHECK(filter_grpc_web.on_request_body(&t, NULL, &d, &len, false) == FILTER_CONTINUE);
    CHECK(d == d0 && len == 12);
    arena_free(&t.arena);
}

TEST(grpc_web_request_text)
{
    struct http_txn t;
    req_init(&t, "application/grpc-web-text", "application/grpc-web-text");
    CHECK(http_hdr_add(&t.req, &t.arena, HSTR_LIT("grpc-accept-encoding"), HSTR_LIT("gzip")) == 0);
    CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
    CHECK(hdr_is(&t.req, "content-type", "application/grpc"));
    CHECK(hdr_is(&t.req, "grpc-accept-encoding", "gzip")); /* the client's kept */
    CHECK(t.req.body == HTTP_BODY_CHUNKED);
    /* "\0\0\0\0\3abc" in base64, fed in pieces of 3 */
    const char *b64 = "AAAAAANhYmM=";
    uint8_t got[16];
    size_t o = 0;
    for (size_t off = 0; off <= 12; off += 3) {
        const char *d = b64 + off;
        size_t len = off < 12 ? 3 : 0;
        CHECK(filter_grpc_web.on_request_body(&t, NULL, &d, &len, off == 12) == FILTER_CONTINUE);
        memcpy(got + o, d, len);
        o += len;
    }
    CHECK_EQ_U64(o, 8);
    CHECK(memcmp(got, "\0\0\0\0\3abc", 8) == 0);
    const char *bad = "!!!!";
    size_t blen = 4;
    CHECK(filter_grpc_web.on_request_body(&t, NULL, &bad, &blen, false) == FILTER_ERROR);
    arena_free(&t.arena);
}

TEST(grpc_web_other_requests_untouched)
{
    static const char *const cts[] = {NULL,
                                      "application/json",
                                      "application/grpc",
                                      "application/grpc-webx",
                                      "application/grpc-web+",
                                      "text/application/grpc-web"};
    for (size_t i = 0; i < ARRAY_SIZE(cts); i++) {
        struct http_txn t;
        req_init(&t, cts[i], NULL);
        CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
        CHECK(t.grpc_web == NULL && hdr_is(&t.req, "te", NULL));
        resp_init(&t, 200, "application/grpc", HTTP_BODY_CHUNKED);
        CHECK(filter_grpc_web.on_response(&t, NULL) == FILTER_CONTINUE);
        CHECK(hdr_is(&t.resp, "content-type", "application/grpc"));
        arena_free(&t.arena);
    }
    /* a GET with the content type is not a gRPC-Web call either */
    struct http_txn t;
    req_init(&t, "application/grpc-web", NULL);
    t.req.method = HTTP_M_GET;
    CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE && t.grpc_web == NULL);
    arena_free(&t.arena);
}

static const uint8_t two_msgs[] = {0, 0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0, 3, 'y', 'o', '!'};

/* A gRPC response with trailers grpc-status 0 and x-t: 1. */
static void grpc_response(struct http_txn *t)
{
    static struct http_hdr tr[] = {{HSTR_LIT("grpc-status"), HSTR_LIT("0")},
                                   {HSTR_LIT("x-t"), HSTR_LIT("1")}};
    resp_init(t, 200, "application/grpc+proto", HTTP_BODY_LENGTH);
    t->resp.content_length = sizeof(two_msgs);
    CHECK(filter_grpc_web.on_response(t, NULL) == FILTER_CONTINUE);
    t->resp.trailers = tr;
    t->resp.ntrailers = 2;
}

TEST(grpc_web_response_binary)
{
    for (size_t step = 0; step <= 4; step++) {
        struct http_txn t;
        req_init(&t, "application/grpc-web+proto", NULL);
        CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
        grpc_response(&t);
        CHECK(hdr_is(&t.resp, "content-type", "application/grpc-web+proto"));
        CHECK(t.resp.body == HTTP_BODY_CHUNKED);
        char out[128];
        long n = response_body(&t, two_msgs, sizeof(two_msgs), step, out, sizeof(out));
        static const char frame[] = "\x80\0\0\0\x16grpc-status:0\r\nx-t:1\r\n";
        CHECK_EQ_U64(n, sizeof(two_msgs) + sizeof(frame) - 1);
        CHECK(n > 0 && memcmp(out, two_msgs, sizeof(two_msgs)) == 0 &&
              memcmp(out + sizeof(two_msgs), frame, sizeof(frame) - 1) == 0);
        CHECK(t.resp.ntrailers == 0 && t.resp.trailers == NULL); /* moved into the body */
        arena_free(&t.arena);
    }
}

TEST(grpc_web_response_text)
{
    for (size_t step = 0; step <= 7; step++) {
        struct http_txn t;
        req_init(&t, "application/grpc-web-text+proto", NULL); /* text without Accept */
        CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
        grpc_response(&t);
        CHECK(hdr_is(&t.resp, "content-type", "application/grpc-web-text+proto"));
        char out[256];
        long n = response_body(&t, two_msgs, sizeof(two_msgs), step, out, sizeof(out));
        /* the bytes of the binary answer, padded only where a piece ended on a frame
         * boundary (and at the end): never inside a frame */
        static const char frame[] = "\x80\0\0\0\x16grpc-status:0\r\nx-t:1\r\n";
        uint8_t dec[128];
        size_t dn = 0;
        struct gw_b64_dec d = {0};
        CHECK(n > 0 && gw_b64_decode(&d, out, (size_t)n, true, dec, &dn) == 0);
        CHECK_EQ_U64(dn, sizeof(two_msgs) + sizeof(frame) - 1);
        CHECK(memcmp(dec, two_msgs, sizeof(two_msgs)) == 0 &&
              memcmp(dec + sizeof(two_msgs), frame, sizeof(frame) - 1) == 0);
        size_t bytes = 0; /* decoded so far: a padded group ends a frame (7, 15) or all */
        for (long g = 0; g + 4 <= n; g += 4) {
            int pad = (out[g + 3] == '=') + (out[g + 2] == '=');
            bytes += 3 - (size_t)pad;
            if (pad && bytes != 7 && bytes != 15 && bytes != dn)
                test_fail(__FILE__, __LINE__, "step %zu: padding after %zu bytes", step, bytes);
        }
        arena_free(&t.arena);
    }
}

TEST(grpc_web_accept_chooses_the_response_encoding)
{
    struct http_txn t;
    req_init(&t, "application/grpc-web+proto", "text/plain, application/grpc-web-text");
    CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
    resp_init(&t, 200, "application/grpc", HTTP_BODY_CHUNKED);
    CHECK(filter_grpc_web.on_response(&t, NULL) == FILTER_CONTINUE);
    CHECK(hdr_is(&t.resp, "content-type", "application/grpc-web-text+proto"));
    arena_free(&t.arena);
}

TEST(grpc_web_trailers_only_and_errors)
{
    /* trailers-only: no body, grpc-status stays in the head */
    struct http_txn t;
    req_init(&t, "application/grpc-web", NULL);
    CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
    resp_init(&t, 200, "application/grpc", HTTP_BODY_NONE);
    CHECK(http_hdr_add(&t.resp, &t.arena, HSTR_LIT("grpc-status"), HSTR_LIT("5")) == 0);
    CHECK(filter_grpc_web.on_response(&t, NULL) == FILTER_CONTINUE);
    CHECK(hdr_is(&t.resp, "content-type", "application/grpc-web"));
    CHECK(hdr_is(&t.resp, "grpc-status", "5") && t.resp.body == HTTP_BODY_NONE);
    arena_free(&t.arena);

    /* the same head with a body that reaches the filter: the head's status is framed */
    req_init(&t, "application/grpc-web", NULL);
    CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
    resp_init(&t, 200, "application/grpc", HTTP_BODY_CHUNKED);
    CHECK(http_hdr_add(&t.resp, &t.arena, HSTR_LIT("grpc-status"), HSTR_LIT("5")) == 0);
    CHECK(http_hdr_add(&t.resp, &t.arena, HSTR_LIT("grpc-message"), HSTR_LIT("gone")) == 0);
    CHECK(filter_grpc_web.on_response(&t, NULL) == FILTER_CONTINUE);
    char out[64];
    long n = response_body(&t, (const uint8_t *)"", 0, 0, out, sizeof(out));
    static const char frame[] = "\x80\0\0\0\x22grpc-status:5\r\ngrpc-message:gone\r\n";
    CHECK(n == sizeof(frame) - 1 && memcmp(out, frame, sizeof(frame) - 1) == 0);
    arena_free(&t.arena);

    /* trailers-only from an HTTP/2 server, whose codec passes the end through the filters:
     * the status moves from the head into the trailer frame; not so for Strata's answers */
    struct backend be = {.protocol = PROTO_H2C};
    for (int answered = 0; answered < 2; answered++) {
        req_init(&t, "application/grpc-web-text", NULL);
        t.backend = &be;
        t.answered = answered;
        CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
        resp_init(&t, 200, "application/grpc", HTTP_BODY_LENGTH);
        CHECK(http_hdr_add(&t.resp, &t.arena, HSTR_LIT("grpc-status"), HSTR_LIT("12")) == 0);
        CHECK(filter_grpc_web.on_response(&t, NULL) == FILTER_CONTINUE);
        CHECK(hdr_is(&t.resp, "content-type", "application/grpc-web-text"));
        CHECK(hdr_is(&t.resp, "grpc-status", answered ? "12" : NULL));
        CHECK(t.resp.body == (answered ? HTTP_BODY_LENGTH : HTTP_BODY_CHUNKED));
        n = response_body(&t, (const uint8_t *)"", 0, 0, out, sizeof(out));
        static const char b64[] = "gAAAABBncnBjLXN0YXR1czoxMg0K"; /* 0x80 ... grpc-status:12 */
        if (!answered)
            CHECK(n == sizeof(b64) - 1 && memcmp(out, b64, sizeof(b64) - 1) == 0);
        arena_free(&t.arena);
    }

    /* not a gRPC response (a 503 page, Strata's own 502): untouched, body included */
    static const unsigned statuses[] = {503, 502, 200};
    static const char *const types[] = {"text/html", "application/grpc", "text/html"};
    for (size_t i = 0; i < ARRAY_SIZE(statuses); i++) {
        req_init(&t, "application/grpc-web-text", NULL);
        CHECK(filter_grpc_web.on_request(&t, NULL) == FILTER_CONTINUE);
        resp_init(&t, statuses[i], types[i], HTTP_BODY_LENGTH);
        CHECK(filter_grpc_web.on_response(&t, NULL) == FILTER_CONTINUE);
        CHECK(hdr_is(&t.resp, "content-type", types[i]) && t.resp.body == HTTP_BODY_LENGTH);
        n = response_body(&t, (const uint8_t *)"<h1>", 4, 0, out, sizeof(out));
        CHECK(n == 4 && memcmp(out, "<h1>", 4) == 0);
        arena_free(&t.arena);
    }
}

TEST(grpc_web_config)
{
    struct config_errors e = {0};
    struct config *c = config_load_string(
        "strata.yaml",
        "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n    routes:\n"
        "      - { grpc_web: {}, request_headers: { set: { x-a: b } }, backend: app }\n"
        "backends: { app: { servers: [127.0.0.1:9001] } }\n",
        1, &e);
    CHECK(c != NULL);
    if (c) {
        const struct http_route *r = &c->listeners[0].http.routes[0];
        CHECK(r->nfilters == 2 && r->filters[0].ops == &filter_grpc_web); /* first */
        config_unref(c);
    }
    config_errors_free(&e);
    c = config_load_string("strata.yaml",
                           "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    mode: http\n"
                           "    routes:\n      - { grpc_web: { text: 1 }, backend: app }\n"
                           "backends: { app: { servers: [127.0.0.1:9001] } }\n",
                           1, &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, "routes[0].grpc_web.text");
    config_errors_free(&e);
}
