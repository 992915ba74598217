/* test_ws_h2.c — WebSocket over HTTP/2 (RFC 8441): an extended CONNECT read into the
 * message model as an upgrade and written back out (http/h2_msg.h), and the handshake
 * values Strata computes for HTTP/1 servers (http/ws_handshake.h). */
#include <stdlib.h>

#include "http/h2_msg.h"
#include "http/msg.h"
#include "http/ws_handshake.h"
#include "test.h"

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0                            \
    }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int read_request(struct http_msg *m, struct arena *a, const nghttp2_nv *nv, size_t n,
                        bool end_stream)
{
    struct h2_head h;
    memset(m, 0, sizeof(*m));
    arena_init(a, 0);
    h2_head_begin(&h, H2B_REQUEST, HTTP_M_OTHER, 16384, 100);
    return h2_head_from_nv(&h, m, a, nv, n, end_stream);
}

static bool nv_has(const nghttp2_nv *nv, int n, const char *name, const char *value)
{
    for (int i = 0; i < n; i++)
        if (nv[i].namelen == strlen(name) && !memcmp(nv[i].name, name, nv[i].namelen) &&
            nv[i].valuelen == strlen(value) && !memcmp(nv[i].value, value, nv[i].valuelen))
            return true;
    return false;
}

TEST(ws_h2_extended_connect_is_an_upgrade)
{
    const nghttp2_nv nv[] = {
        NV(":method", "CONNECT"), NV(":protocol", "websocket"),  NV(":scheme", "https"),
        NV(":path", "/chat?x=1"), NV(":authority", "a.example"), NV("sec-websocket-version", "13"),
    };
    struct http_msg m;
    struct arena a;
    CHECK(read_request(&m, &a, nv, COUNT(nv), false) == 0);
    CHECK(m.method == HTTP_M_GET && hstr_eq(m.method_name, HSTR_LIT("GET")));
    CHECK((m.flags & HTTP_F_UPGRADE) && hstr_eq(m.upgrade, HSTR_LIT("websocket")));
    CHECK(m.body == HTTP_BODY_NONE); /* the DATA is the tunnel's, after the switch */
    CHECK(hstr_eq(m.path, HSTR_LIT("/chat")) && hstr_eq(m.query, HSTR_LIT("x=1")));
    CHECK(hstr_eq(m.authority, HSTR_LIT("a.example")));

    /* written back for an HTTP/2 server: CONNECT with :protocol */
    nghttp2_nv *out;
    struct h2_out o = {.kind = H2B_REQUEST};
    int n = h2_msg_nv(&m, &o, &a, &out);
    CHECK(n > 0 && nv_has(out, n, ":method", "CONNECT") &&
          nv_has(out, n, ":protocol", "websocket"));
    CHECK(nv_has(out, n, ":path", "/chat?x=1") && nv_has(out, n, ":scheme", "https"));
    CHECK(nv_has(out, n, ":authority", "a.example"));
    /* without the upgrade (a server that does not take it): a plain GET */
    m.flags &= ~(uint32_t)HTTP_F_UPGRADE;
    n = h2_msg_nv(&m, &o, &a, &out);
    CHECK(n > 0 && nv_has(out, n, ":method", "GET"));
    arena_free(&a);
}

TEST(ws_h2_malformed_extended_connects)
{
    const nghttp2_nv no_path[] = {NV(":method", "CONNECT"), NV(":protocol", "websocket"),
                                  NV(":scheme", "http"), NV(":authority", "a")};
    const nghttp2_nv not_connect[] = {NV(":method", "GET"), NV(":protocol", "websocket"),
                                      NV(":scheme", "http"), NV(":path", "/"),
                                      NV(":authority", "a")};
    const nghttp2_nv star[] = {NV(":method", "CONNECT"), NV(":protocol", "websocket"),
                               NV(":scheme", "http"), NV(":path", "*"), NV(":authority", "a")};
    const nghttp2_nv bad_token[] = {NV(":method", "CONNECT"), NV(":protocol", "web socket"),
                                    NV(":scheme", "http"), NV(":path", "/"), NV(":authority", "a")};
    const nghttp2_nv with_cl[] = {NV(":method", "CONNECT"), NV(":protocol", "websocket"),
                                  NV(":scheme", "http"),    NV(":path", "/"),
                                  NV(":authority", "a"),    NV("content-length", "3")};
    const nghttp2_nv twice[] = {NV(":method", "CONNECT"),
                                NV(":protocol", "websocket"),
                                NV(":protocol", "websocket"),
                                NV(":scheme", "http"),
                                NV(":path", "/"),
                                NV(":authority", "a")};
    const nghttp2_nv plain[] = {NV(":method", "CONNECT"), NV(":authority", "a:443")};
    struct http_msg m;
    struct arena a;
    CHECK(read_request(&m, &a, no_path, COUNT(no_path), false) < 0);
    arena_free(&a);
    CHECK(read_request(&m, &a, not_connect, COUNT(not_connect), false) < 0);
    arena_free(&a);
    CHECK(read_request(&m, &a, star, COUNT(star), false) < 0);
    arena_free(&a);
    CHECK(read_request(&m, &a, bad_token, COUNT(bad_token), false) < 0);
    arena_free(&a);
    CHECK(read_request(&m, &a, with_cl, COUNT(with_cl), false) < 0);
    arena_free(&a);
    CHECK(read_request(&m, &a, twice, COUNT(twice), false) < 0);
    arena_free(&a);
    /* plain CONNECT stays what it was (refused later by the codec) */
    CHECK(read_request(&m, &a, plain, COUNT(plain), false) == 0);
    CHECK(m.method == HTTP_M_CONNECT && !(m.flags & HTTP_F_UPGRADE));
    arena_free(&a);
    /* :protocol in a response is misplaced */
    const nghttp2_nv resp[] = {NV(":status", "200"), NV(":protocol", "websocket")};
    struct h2_head h;
    memset(&m, 0, sizeof(m));
    arena_init(&a, 0);
    h2_head_begin(&h, H2B_RESPONSE, HTTP_M_GET, 16384, 100);
    CHECK(h2_head_from_nv(&h, &m, &a, resp, COUNT(resp), false) < 0);
    arena_free(&a);
}

TEST(ws_handshake_accept_and_key)
{
    char acc[WS_ACCEPT_LEN + 1], k1[WS_KEY_LEN + 1], k2[WS_KEY_LEN + 1];
    /* RFC 6455 §1.3's example */
    CHECK(ws_accept_of(HSTR_LIT("dGhlIHNhbXBsZSBub25jZQ=="), acc));
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK(ws_key_new(k1) && ws_key_new(k2));
    CHECK(strlen(k1) == WS_KEY_LEN && k1[22] == '=' && k1[23] == '=' && strcmp(k1, k2) != 0);
    char big[200];
    memset(big, 'a', sizeof(big));
    CHECK(!ws_accept_of((struct hstr){big, sizeof(big)}, acc)); /* bounded, no overflow */
}
