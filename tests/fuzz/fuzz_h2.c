/* fuzz_h2.c — libFuzzer target for the HTTP/2 framing path Strata owns around nghttp2:
 * the input (after a first byte of knobs) is a client's byte stream after the preface, fed
 * in input-derived pieces into an nghttp2 server session set up as h2_session.c sets it up
 * (manual flow control, the CONTINUATION, reset-rate and SETTINGS limits), whose callbacks
 * read every header block into the message model with h2_msg (requests, then trailers,
 * small input-derived limits) and consume request DATA as a stream passes it on. Every
 * request head read whole is written back (as a request for a server, and as a response
 * head) and must read back to the same model; abort() on a mismatch, or when nghttp2 hands
 * over a field name or value that Strata's own checks (which the codec then skips) refuse. What Strata sends
 * back (SETTINGS ACKs, PING ACKs, RST_STREAMs, a response per stream) is drained with
 * mem_send each round.
 */
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2_msg.h"
#include "http/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_STREAMS 8

struct fstream {
    int32_t id;
    struct h2_head head;
    struct http_msg m;
    struct arena a;
    bool dead, routed;
};

struct fuzz {
    nghttp2_session *ng;
    struct fstream s[MAX_STREAMS];
    uint32_t max_bytes, max_fields;
};

static struct fstream *slot(struct fuzz *f, int32_t id, bool create)
{
    for (int i = 0; i < MAX_STREAMS; i++)
        if (f->s[i].id == id)
            return &f->s[i];
    if (!create)
        return NULL;
    for (int i = 0; i < MAX_STREAMS; i++) {
        if (!f->s[i].id) {
            struct fstream *s = &f->s[i];
            memset(s, 0, sizeof(*s));
            s->id = id;
            arena_init(&s->a, 64 << 10);
            return s;
        }
    }
    return NULL;
}

static void release(struct fstream *s)
{
    arena_free(&s->a);
    s->id = 0;
}

static bool same(struct hstr a, struct hstr b)
{
    return a.len == b.len && (!a.len || !memcmp(a.p, b.p, a.len));
}

/* What Strata writes for a server reads back to the same request. */
static void round_trip(const struct http_msg *m)
{
    struct arena a;
    arena_init(&a, 1 << 20);
    nghttp2_nv *nv;
    struct h2_out o = {H2B_REQUEST, false, HSTR_LIT("http")};
    int n = h2_msg_nv(m, &o, &a, &nv);
    if (n > 0) {
        struct h2_head h;
        struct http_msg back = {0};
        h2_head_begin(&h, H2B_REQUEST, HTTP_M_OTHER, 1 << 20, 1 << 16);
        REQUIRE(h2_head_from_nv(&h, &back, &a, nv, (size_t)n, m->body == HTTP_BODY_NONE) == 0);
        REQUIRE(back.method == m->method && same(back.method_name, m->method_name));
        REQUIRE(same(back.path, m->path) && same(back.query, m->query));
        REQUIRE(same(back.authority, m->authority) && back.body == m->body);
        REQUIRE(back.content_length == m->content_length && back.nhdrs == m->nhdrs);
    }
    struct http_msg resp = *m;
    resp.is_request = false;
    resp.status = 200;
    o = (struct h2_out){H2B_RESPONSE, false, {NULL, 0}};
    n = h2_msg_nv(&resp, &o, &a, &nv);
    REQUIRE(n != 0);
    arena_free(&a);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr, void *user)
{
    struct fuzz *f = user;
    if (fr->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct fstream *s = slot(f, fr->hd.stream_id, fr->headers.cat == NGHTTP2_HCAT_REQUEST);
    if (!s) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, fr->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    enum h2_block kind = fr->headers.cat == NGHTTP2_HCAT_REQUEST ? H2B_REQUEST : H2B_TRAILERS;
    h2_head_begin(&s->head, kind, HTTP_M_OTHER, f->max_bytes, f->max_fields);
    h2_head_checked(&s->head); /* as the codec does */
    return 0;
}

/* The codec leaves out its own name and value checks for what the server session hands
 * over (h2_head_checked): they must hold for every regular field it does. */
static void check_as_given(const uint8_t *name, size_t namelen, const uint8_t *value,
                           size_t valuelen)
{
    struct h2_head h;
    struct http_msg m = {0};
    struct arena a;
    if (namelen && name[0] == ':')
        return;
    arena_init(&a, 0);
    h2_head_begin(&h, H2B_TRAILERS, HTTP_M_OTHER, 1u << 30, 1u << 20);
    h2_head_field(&h, &m, &a, name, namelen, value, valuelen);
    REQUIRE(!h.err || (strcmp(h.err, "invalid field value") && strcmp(h.err, "invalid field name")));
    arena_free(&a);
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct fstream *s = slot(user, fr->hd.stream_id, false);
    check_as_given(name, namelen, value, valuelen);
    if (s && !s->dead &&
        h2_head_field(&s->head, &s->m, &s->a, name, namelen, value, valuelen) < 0) {
        s->dead = true;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_PROTOCOL_ERROR);
    }
    return 0;
}

static void answer(nghttp2_session *ng, struct fstream *s)
{
    struct http_msg resp = {.status = 404, .body = HTTP_BODY_NONE};
    nghttp2_nv *nv;
    struct h2_out o = {H2B_RESPONSE, true, {NULL, 0}};
    int n = h2_msg_nv(&resp, &o, &s->a, &nv);
    if (n > 0)
        nghttp2_submit_response(ng, s->id, nv, (size_t)n, NULL);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr, void *user)
{
    struct fstream *s = slot(user, fr->hd.stream_id, false);
    if (fr->hd.type != NGHTTP2_HEADERS || !s || s->dead)
        return 0;
    bool end = fr->hd.flags & NGHTTP2_FLAG_END_STREAM;
    int r = h2_head_end(&s->head, &s->m, &s->a, end);
    if (r < 0) {
        s->dead = true;
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_PROTOCOL_ERROR);
        return 0;
    }
    if (s->head.kind == H2B_REQUEST && r == 0) {
        REQUIRE(s->m.is_request && s->m.version == 20 && s->m.method_name.len);
        round_trip(&s->m);
    }
    if (!s->routed) {
        s->routed = true;
        answer(ng, s);
    }
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *p, size_t n,
                   void *user)
{
    nghttp2_session_consume(ng, id, n);
    return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    struct fstream *s = slot(user, id, false);
    if (s)
        release(s);
    return 0;
}

static nghttp2_session *session(struct fuzz *f, uint8_t knobs)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *o;
    nghttp2_session *ng = NULL;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    if (nghttp2_option_new(&o) == 0) {
        nghttp2_option_set_no_auto_window_update(o, 1);
        nghttp2_option_set_no_recv_client_magic(o, 1);
        nghttp2_option_set_max_settings(o, 32);
        nghttp2_option_set_max_outbound_ack(o, 100);
        nghttp2_option_set_max_continuations(o, 8);
        nghttp2_option_set_stream_reset_rate_limit(o, 200, 100);
        nghttp2_session_server_new2(&ng, cb, f, o);
        nghttp2_option_del(o);
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (ng)
        nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, iv, 3);
    f->max_bytes = knobs & 1 ? 256 : 16384;
    f->max_fields = knobs & 2 ? 4 : 100;
    return ng;
}

static void drain(nghttp2_session *ng)
{
    const uint8_t *p;
    for (int i = 0; i < 1000 && nghttp2_session_mem_send(ng, &p) > 0; i++)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct fuzz f;
    memset(&f, 0, sizeof(f));
    uint8_t knobs = data[0], cut = data[1];
    data += 2;
    size -= 2;
    if (!(f.ng = session(&f, knobs)))
        return 0;
    size_t piece = cut ? cut : size; /* input-derived pieces, as reads would bring them */
    for (size_t off = 0; off < size;) {
        size_t n = size - off < piece ? size - off : piece;
        if (nghttp2_session_mem_recv(f.ng, data + off, n) < 0)
            break;
        drain(f.ng);
        off += n;
    }
    nghttp2_session_del(f.ng);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (f.s[i].id)
            release(&f.s[i]);
    return 0;
}
