/* h2_stream.c — one HTTP/2 stream of a client connection (see h2_session-t.h): the request
 * head handed to the protocol-neutral stream (stream.h), the request body passed on as
 * the server side takes it (the stream's flow-control window reopens only then), the mux
 * operations of stream-t.h (the response head as HEADERS, the body through a data
 * provider bounded by `stream_buffer`, trailers), and the end: log, server side done,
 * freed once nghttp2 closed the stream. The connection is h2_session.c's.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/hash.h"
#include "ev/worker.h"
#include "http/h2_session.h"
#include "http/hbuf.h"
#include "http/h2_stream.h"
#include "http/msg.h"
#include "http/stream.h"

static const struct http_mux_ops h2_mux_ops;
static enum move ws_step_request(struct h2s *s);
static uint64_t ws_deadline(const struct h2s *s);
static void ws_expired(struct h2s *s);
static const struct http_msg *ws_head(struct http_stream *st, const struct http_msg *m);
static void ws_tunnel(struct h2s *s);

/* ---- buffers ---- */

static struct pool *hbufs(struct h2s *s)
{
    return &s->c->w->hbuf_pool;
}

static void buf_release(struct pool *pool, struct h2_buf *b)
{
    if (b->pooled)
        hbuf_put(pool, b->pooled);
    else
        free(b->p);
    b->p = NULL;
    b->pooled = NULL;
    b->size = 0;
}

/* Storage for at least `need` bytes (at most cap): a pooled buffer first, then one of cap
 * bytes, the bytes held moved to its start. */
static bool buf_room(struct pool *pool, struct h2_buf *b, size_t need)
{
    if (!b->p) {
        if (b->cap <= HBUF_SIZE || need <= HBUF_SIZE) {
            if (!(b->pooled = hbuf_get(pool, HBUF_SIZE)))
                return false;
            b->p = b->pooled->data;
            b->size = b->cap < HBUF_SIZE ? b->cap : HBUF_SIZE;
            return true;
        }
    } else if (b->off + need <= b->size) {
        return true;
    } else if (need <= b->size) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
        return true;
    }
    char *q = malloc(b->cap);
    if (!q)
        return false;
    if (b->len)
        memcpy(q, b->p + b->off, b->len);
    buf_release(pool, b);
    b->p = q;
    b->off = 0;
    b->size = b->cap;
    return true;
}

static uint32_t buf_free_bytes(const struct h2_buf *b)
{
    return b->cap - b->len;
}

static size_t buf_put(struct pool *pool, struct h2_buf *b, const void *p, size_t n)
{
    size_t take = n < buf_free_bytes(b) ? n : buf_free_bytes(b);
    if (!buf_room(pool, b, b->len + take))
        return 0;
    if (b->off + b->len + take > b->size) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    memcpy(b->p + b->off + b->len, p, take);
    b->len += (uint32_t)take;
    return take;
}

static void buf_take(struct h2_buf *b, size_t n)
{
    b->off += (uint32_t)n;
    b->len -= (uint32_t)n;
    if (!b->len)
        b->off = 0;
}

static void buf_free(struct pool *pool, struct h2_buf *b)
{
    if (b->p)
        buf_release(pool, b);
    b->off = b->len = 0;
}

/* ---- life ---- */

static __thread uint64_t rng_state;

/* After a reload each new stream is served by the generation in force, as an HTTP/1
 * connection's next request is (admission_follow, through h2c_follow): the connection's
 * listener unit moves on, and each stream still open on the old generation keeps it alive
 * by a unit of its own, given back when the stream is freed. Streams in flight finish on
 * the generation they started on. */
static void follow_for_new_stream(struct h2c *c)
{
    struct listener_conf *old = c->lc;
    struct list *pos, *tmp;
    if (!h2c_follow(c) || c->lc == old)
        return;
    list_for_each_safe(pos, tmp, &c->streams)
    {
        struct h2s *s = list_entry(pos, struct h2s, link);
        if (s->st.lc == old && !s->gen_pinned) {
            atomic_fetch_add_explicit(&old->st.active, 1, memory_order_relaxed);
            s->gen_pinned = true;
        }
    }
}

size_t h2s_size(void)
{
    return sizeof(struct h2s);
}

struct h2s *h2s_new(struct h2c *c, int32_t id)
{
    struct h2s *s = pool_get(&c->w->h2s_pool);
    if (!s)
        return NULL;
    memset(s, 0, offsetof(struct h2s, arena_buf)); /* the arena's block is not read before
                                                      it is written */
    follow_for_new_stream(c);
    const struct http2_conf *h2 = &c->lc->http.h2;
    s->c = c;
    s->id = id;
    s->req.cap = h2->window;
    s->resp.cap = h2->stream_buffer;
    s->last_ms = c->w->loop.now_ms;
    s->head_deadline_ms = s->last_ms + c->lc->http.timeouts.request_header_ms;
    struct http_stream *st = &s->st;
    arena_init_buf(&st->t.arena, s->arena_buf, sizeof(s->arena_buf), 0);
    st->t.req.is_request = true;
    st->t.req.version = 20;
    st->t.lc = c->lc;
    st->t.client = c->client;
    st->t.conn = &c->cli;
    st->t.tls = c->cli.ctx != NULL;
    st->t.worker = c->w->id;
    st->w = c->w;
    st->lc = c->lc;
    st->conn = s;
    st->mux = &h2_mux_ops; /* st->upc: the stream picks the server codec */
    st->start_us = stream_now_us();
    if (!rng_state)
        rng_state = hash_mix64(st->start_us ^ ((uint64_t)c->w->id << 32)) | 1;
    st->t.rand = rng_next(&rng_state);
    st->connect_us = -1;
    st->end = "ok";
    h2_head_begin(&s->head, H2B_REQUEST, HTTP_M_OTHER, c->lc->http.limits.max_header_bytes,
                  c->lc->http.limits.max_headers);
    h2_head_checked(&s->head); /* nghttp2's server session checked the fields */
    list_add_tail(&c->streams, &s->link);
    c->nstreams++;
    return s;
}

static void h2s_free(struct ev_defer *d)
{
    struct h2s *s = container_of(d, struct h2s, dfree);
    if (s->gen_pinned) /* its generation may go now (ev/worker.c counts these) */
        atomic_fetch_sub_explicit(&s->st.lc->st.active, 1, memory_order_release);
    arena_free(&s->st.t.arena);
    pool_put(&s->st.w->h2s_pool, s);
}

/* The request body held but never passed on goes back to the connection's window. */
static void drop_request_body(struct h2s *s)
{
    if (s->req.len && s->c->ng)
        nghttp2_session_consume_connection(s->c->ng, s->req.len);
    buf_free(hbufs(s), &s->req);
}

/* The stream is done with the server: its connection given back (kept for another stream
 * when `clean` and the server codec saw both messages whole) and its unit. The response
 * may still be on its way to the client: the line is logged when the stream closes. */
static void finish(struct h2s *s, bool clean)
{
    struct http_stream *st = &s->st;
    if (s->finished)
        return;
    s->finished = true;
    stream_up_release(st, clean);
    stream_server_release(st);
}

/* How the stream ended, for its log line: a reset before the response was out is the
 * client's abort (unless the stream said why already). */
static void close_reason(struct http_stream *st, uint32_t error_code, bool delivered)
{
    bool said = strcmp(st->end, "ok") && strcmp(st->end, "answered");
    if (said || (delivered && !error_code))
        return;
    st->end = "client_abort";
    st->detail = error_code ? "stream reset before the response was out" : "stream closed";
}

void h2s_closed(struct h2s *s, uint32_t error_code)
{
    struct h2c *c = s->c;
    close_reason(&s->st, error_code, s->resp_sent);
    finish(s, false);
    stream_log(&s->st);
    stream_free(&s->st); /* not from a server codec's call: nghttp2's or the session's */
    drop_request_body(s);
    c->resp_held -= s->resp.len;
    buf_free(hbufs(s), &s->resp);
    nghttp2_session_set_stream_user_data(c->ng, s->id, NULL);
    if (c->last == s)
        c->last = NULL;
    list_del(&s->link);
    c->nstreams--;
    ev_defer_free(&c->w->loop, &s->dfree, h2s_free);
}

/* ---- the request ---- */

static void count_bad(struct h2s *s)
{
    CTR_ADD(stream_lctr(&s->st)->http_bad_requests, 1);
}

/* A header block that breaks RFC 9113 §8: the stream is reset and logged. */
static void malformed(struct h2s *s)
{
    count_bad(s);
    s->st.end = "bad_request";
    s->st.detail = s->head.err;
    s->routed = true;
    h2c_glitch(s->c);
    h2c_reset(s->c, s, NGHTTP2_PROTOCOL_ERROR);
    finish(s, false);
}

/* The request cannot go on as received (before routing): answered as HTTP/1 would. */
static bool refused(struct h2s *s, int r)
{
    struct http_stream *st = &s->st;
    const struct http_msg *req = &st->t.req;
    uint64_t max = s->c->lc->http.limits.max_request_body;
    if (r == 1) {
        if (s->head.status == 431)
            CTR_ADD(stream_lctr(st)->h2_limits[H2L_HEADER_LIST], 1);
        count_bad(s);
        stream_answer(st, s->head.status, "bad_request", s->head.err);
    } else if (req->method == HTTP_M_CONNECT) {
        count_bad(s);
        stream_answer(st, 501, "bad_request", "CONNECT is not supported");
    } else if (max && req->body == HTTP_BODY_LENGTH && req->content_length > max) {
        count_bad(s);
        stream_answer(st, 413, "bad_request", "request body larger than max_request_body");
    } else {
        return false;
    }
    return true;
}

void h2s_head_done(struct h2s *s, bool end_stream)
{
    struct h2c *c = s->c;
    struct http_stream *st = &s->st;
    int r = h2_head_end(&s->head, &st->t.req, &st->t.arena, end_stream);
    st->bytes_in += s->head.bytes;
    if (r < 0) {
        malformed(s);
        return;
    }
    s->routed = true;
    s->req_eof = end_stream;
    s->req_sent = http_msg_bodiless(&st->t.req); /* whole with its head: no body calls */
    s->last_ms = c->w->loop.now_ms;
    st->t.orig_path = st->t.req.path;
    c->requests++;
    CTR_ADD(stream_lctr(st)->http_requests, 1);
    uint32_t quota = c->lc->http.max_requests_per_conn;
    if (quota && c->requests >= quota)
        h2c_goaway(c); /* this stream is served, the client opens a new connection */
    h2c_arm_timer_for(c, s);
    if (!refused(s, r))
        stream_route(st);
}

void h2s_trailers_done(struct h2s *s)
{
    struct http_stream *st = &s->st;
    if (h2_head_end(&s->head, &st->t.req, &st->t.arena, true) != 0) {
        if (!s->finished)
            malformed(s);
        return;
    }
    s->req_eof = true;
}

bool h2s_data(struct h2s *s, const uint8_t *p, size_t n)
{
    s->st.bytes_in += n;
    if (s->finished || s->st.t.answered) {
        nghttp2_session_consume(s->c->ng, s->id, n); /* not wanted any more */
        return true;
    }
    return buf_put(hbufs(s), &s->req, p, n) == n;
}

/* "100 Continue" for a client that waits for it, once the server connection is up. */
static void send_continue(struct h2s *s)
{
    static const nghttp2_nv cont[] = {{(uint8_t *)":status", (uint8_t *)"100", 7, 3, 0}};
    if (!(s->st.t.req.flags & HTTP_F_EXPECT_100) || s->cont_sent || s->req.len || s->req_eof)
        return;
    s->cont_sent = true;
    nghttp2_submit_headers(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NULL, cont, 1, NULL);
}

/* The body ended: the filters' last word, then the trailers and the end (req_last_pending). */
static unsigned request_body_last(struct h2s *s, const struct http_body_ops *out, const char **why)
{
    struct http_stream *st = &s->st;
    const char *data = NULL;
    size_t dlen = 0;
    ssize_t room = st->req_body_hooks ? out->send_room(st) : 0;
    unsigned status =
        stream_body_piece(st, false, &data, &dlen, true, room > 0 ? (size_t)room : 0, why);
    if (!status && dlen && out->send_data(st, data, dlen) < dlen)
        status = 500;
    s->req_last_pending = !status;
    return status;
}

/* Request body data for the server, as much as it takes now; the window reopens by what
 * it took. */
static unsigned request_body_data(struct h2s *s, const struct http_body_ops *out, const char **why,
                                  enum move *m)
{
    struct http_stream *st = &s->st;
    ssize_t room = out->send_room(st);
    if (room < 0)
        return 500;
    size_t take = stream_body_budget(st, false, (size_t)room);
    size_t n = s->req.len < take ? s->req.len : take;
    if (!n)
        return 0;
    const char *data = s->req.p + s->req.off;
    size_t dlen = n;
    unsigned status = stream_body_piece(st, false, &data, &dlen, false, (size_t)room, why);
    if (status || out->send_data(st, data, dlen) < dlen)
        return status ? status : 500;
    buf_take(&s->req, n);
    nghttp2_session_consume(s->c->ng, s->id, n);
    st->body_started = true;
    s->last_ms = s->c->w->loop.now_ms;
    *m = MOVE_PROGRESS;
    return 0;
}

/* Client → server: the request body, once the server connection is up. */
static enum move step_request_body(struct h2s *s)
{
    struct http_stream *st = &s->st;
    const struct http_body_ops *out;
    enum move m = MOVE_NONE;
    const char *why = NULL;
    unsigned status = 0;
    if (st->t.answered)
        return MOVE_NONE;
    if (st->hold == HOLD_WHOLE) { /* a filter had it whole: sent from the stream's buffer, */
        m = stream_held_step(st); /* again to a retry's attempt */
        s->req_sent = st->held_end_sent;
        return m;
    }
    if (s->req_sent || !(out = stream_request_body_dest(st)))
        return MOVE_NONE;
    send_continue(s);
    if (!s->req_last_pending)
        status = request_body_data(s, out, &why, &m);
    if (!status && !s->req_last_pending && s->req_eof && !s->req.len)
        status = request_body_last(s, out, &why);
    if (!status && s->req_last_pending && out->send_trailers(st, &st->t.req)) {
        s->req_last_pending = false;
        s->req_sent = out != &stream_hold_ops; /* held: it goes from the buffer */
        out->send_end(st);
        m = MOVE_PROGRESS;
    }
    if (status) {
        count_bad(s);
        stream_attempt_failed(st, false, false); /* that server connection got part of a body */
        stream_answer(st, status, "bad_request", why ? why : "invalid request body");
        return MOVE_ERROR;
    }
    return m;
}

/* Server → client: what the server codec has for the stream (after the request body it
 * can take now, and what is staged for the server). */
static enum move step_server(struct h2s *s)
{
    struct http_stream *st = &s->st;
    enum move m = st->tunnel ? ws_step_request(s) : step_request_body(s), r;
    if (m == MOVE_ERROR || !st->upc || s->finished || st->t.answered)
        return m;
    if ((r = st->upc->flush(st)) == MOVE_ERROR)
        return r;
    m |= r;
    if (!s->resp_eof && !s->finished && (r = st->upc->step(st)) != MOVE_NONE)
        m |= r;
    return m;
}

enum move h2s_step(struct h2s *s)
{
    struct http_stream *st = &s->st;
    if (!s->routed || s->finished)
        return MOVE_NONE;
    enum move m = MOVE_NONE;
    if (st->t.answered && !s->resp_eof)
        m = stream_answer_step(st);
    else if (!s->resp_eof)
        m = step_server(s);
    if (s->resp_eof && !s->finished) {
        finish(s, s->req_sent || st->t.answered);
        if (s->req.len) { /* answered early: the rest of the request is not wanted */
            nghttp2_session_consume(s->c->ng, s->id, s->req.len);
            buf_free(hbufs(s), &s->req);
        }
        m = MOVE_PROGRESS;
    }
    return m;
}

/* ---- deadlines ---- */

uint64_t h2s_deadline(const struct h2s *s)
{
    uint64_t stall = s->last_ms + s->c->lc->http.h2.stall_ms;
    if (s->dead)
        return 0;
    if (!s->routed)
        return s->head_deadline_ms;
    if (s->finished)
        return stall; /* the rest of the response waits for the client's window */
    uint64_t d = s->st.tunnel ? ws_deadline(s) : stream_deadline(&s->st, s->last_ms);
    return s->resp.len && stall < d ? stall : d;
}

void h2s_reload(struct h2s *s, struct config *cur)
{
    if (!s->st.tunnel || s->drain_at_ms || config_path_kept(cur, s->st.lc, s->st.att.server))
        return;
    s->drain_at_ms = s->c->w->loop.now_ms + cur->reload_drain_ms;
}

void h2s_expired(struct h2s *s)
{
    struct http_stream *st = &s->st;
    if (!s->routed) {
        count_bad(s);
        st->end = "client_timeout";
        st->detail = "request head not received in time";
        h2c_reset(s->c, s, NGHTTP2_CANCEL);
        return;
    }
    if (s->finished ||
        (s->resp.len && s->c->w->loop.now_ms >= s->last_ms + s->c->lc->http.h2.stall_ms)) {
        CTR_ADD(stream_lctr(st)->h2_limits[H2L_STALL], 1);
        st->end = "timeout";
        st->detail = "the client's flow-control window stayed closed";
        h2c_reset(s->c, s, NGHTTP2_CANCEL);
        finish(s, false);
        return;
    }
    if (st->tunnel) {
        ws_expired(s);
        return;
    }
    stream_expired(st);
}

void h2s_sent_end(struct h2s *s)
{
    if (!s->req_eof && !s->dead)
        h2c_reset(s->c, s, NGHTTP2_NO_ERROR); /* RFC 9113 §8.1: the rest is not wanted */
}

/* ---- the client side: the mux operations (stream-t.h) ---- */

/* The data provider: response body bytes as the client's windows allow. */
static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
    struct h2s *s = src->ptr;
    size_t n = s->resp.len < len ? s->resp.len : len;
    if (n) {
        memcpy(buf, s->resp.p + s->resp.off, n);
        buf_take(&s->resp, n);
        s->c->resp_held -= (uint32_t)n;
        s->st.bytes_out += n;
        s->last_ms = s->c->w->loop.now_ms;
    }
    if (s->resp.len || !s->resp_eof) {
        s->resp_deferred = !n;
        return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    s->resp_sent = true;
    nghttp2_nv *nv;
    struct h2_out o = {H2B_TRAILERS, false, {NULL, 0}};
    int nt = s->trail ? h2_msg_nv(s->trail, &o, &s->st.t.arena, &nv) : 0;
    if (nt > 0 && nghttp2_submit_trailer(ng, id, nv, (size_t)nt) == 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    return (ssize_t)n;
}

static bool send_interim(struct h2s *s, const struct http_msg *m)
{
    nghttp2_nv *nv;
    struct h2_out o = {H2B_RESPONSE, true, {NULL, 0}};
    if (m->status == 100 || m->status == 101)
        return true; /* 100 is Strata's own to send; HTTP/2 has no 101 */
    int n = h2_msg_nv(m, &o, &s->st.t.arena, &nv);
    if (n > 0)
        nghttp2_submit_headers(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NULL, nv, (size_t)n, NULL);
    return true;
}

static bool mux_send_head(struct http_stream *st, const struct http_msg *m)
{
    struct h2s *s = st->conn;
    if (s->dead)
        return true;
    if (m->status == 101 && (st->t.req.flags & HTTP_F_UPGRADE) && !(m = ws_head(st, m)))
        return false;
    if (m->status < 200)
        return send_interim(s, m);
    /* HEAD, 204 and 304 from a server, and a message that has no body at all (a gRPC
     * trailers-only answer among them) */
    bool no_body = st->t.req.method == HTTP_M_HEAD || http_msg_bodiless(m) ||
                   (!st->t.answered && (m->status == 204 || m->status == 304));
    struct h2_out o = {H2B_RESPONSE, no_body, {NULL, 0}};
    nghttp2_nv *nv;
    int n = h2_msg_nv(m, &o, &st->t.arena, &nv);
    if (n < 0)
        return false;
    /* without a body, END_STREAM goes on the HEADERS frame (clients check a 304's or a
     * HEAD's content-length against DATA otherwise); the server codec sends its end in
     * the same step, before the frame is written */
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_body};
    if (nghttp2_submit_response(s->c->ng, s->id, nv, (size_t)n, no_body ? NULL : &prd) != 0)
        return false;
    for (int i = 0; i < n; i++)
        st->bytes_out += nv[i].namelen + nv[i].valuelen;
    s->resp_nobody = no_body;
    s->resp_sent = no_body;
    s->last_ms = s->c->w->loop.now_ms;
    h2c_kick(s->c);
    return true;
}

static ssize_t mux_send_room(struct http_stream *st)
{
    struct h2s *s = st->conn;
    if (s->resp_nobody || s->dead)
        return 1 << 20; /* taken and dropped */
    if (!s->resp.p && !buf_room(hbufs(s), &s->resp, 0))
        return -1;
    /* all the streams together hold H2_CONN_HELD at most (or one stream's buffer) */
    uint32_t total = s->resp.cap > H2_CONN_HELD ? s->resp.cap : H2_CONN_HELD;
    uint32_t others = s->c->resp_held - s->resp.len;
    uint32_t left = others < total ? total - others - s->resp.len : 0;
    uint32_t room = buf_free_bytes(&s->resp);
    return (ssize_t)(room < left ? room : left);
}

static void resume(struct h2s *s)
{
    if (s->resp_deferred && !s->dead) {
        s->resp_deferred = false;
        nghttp2_session_resume_data(s->c->ng, s->id);
    }
    h2c_kick(s->c);
}

static size_t mux_send_data(struct http_stream *st, const char *p, size_t n)
{
    struct h2s *s = st->conn;
    if (s->resp_nobody || s->dead)
        return n;
    size_t took = buf_put(hbufs(s), &s->resp, p, n);
    s->c->resp_held += (uint32_t)took;
    if (took)
        resume(s);
    return took;
}

static bool mux_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    struct h2s *s = st->conn;
    s->trail = m->ntrailers ? m : NULL;
    return true;
}

static void mux_send_end(struct http_stream *st)
{
    struct h2s *s = st->conn;
    s->resp_eof = true;
    if (st->tunnel && !strcmp(st->end, "ok"))
        st->end = "tunnel_closed"; /* the server closed it (HTTP/1's relay says the same) */
    resume(s);
}

/* The stream cannot go on: the client sees it reset. */
static void mux_abort(struct http_stream *st)
{
    struct h2s *s = st->conn;
    h2c_reset(s->c, s, NGHTTP2_INTERNAL_ERROR);
    finish(s, false);
}

static void mux_rearm(struct http_stream *st)
{
    struct h2s *s = st->conn;
    h2c_arm_timer_for(s->c, s);
}

/* Events on the server connection: the connection runs (it may be running already: the
 * server codec was called from a step, and the loop looks again). */
/* Events on the stream's server connection: the stream moves now; the connection sends
 * from the run queue, after the batch, so the frames of every stream that moved in it leave
 * in one write (one wake-up of the client) rather than one each. */
static void mux_run(struct http_stream *st)
{
    struct h2s *s = st->conn;
    if (s->c->state != H2C_OPEN)
        return;
    if (!s->c->running)
        h2s_step(s);
    h2c_kick(s->c);
}

/* HTTP/2 has no 101: a switch answers only an extended CONNECT (RFC 8441), else cut. */
static void mux_tunnel(struct http_stream *st)
{
    if ((st->t.req.flags & HTTP_F_UPGRADE) && !((struct h2s *)st->conn)->dead) {
        ws_tunnel(st->conn);
        return;
    }
    st->end = "bad_response";
    st->detail = "101 for an HTTP/2 client";
    mux_abort(st);
}

/* ---- WebSocket over HTTP/2 (RFC 8441) ----
 * An extended CONNECT is in the model an upgrade (h2_msg.c); the server's switch (a 101
 * from an HTTP/1 server, a 2xx from an HTTP/2 one, both 101 in the model) goes to the
 * client as 200, then the stream is a tunnel (st->tunnel): the client's DATA is passed to
 * the server codec's body operations as it takes it (the window reopens by that much) and
 * END_STREAM as send_end; the server's bytes come back through the mux body operations and
 * its close as END_STREAM. Tunnels skip the body filters and max_request_body, as HTTP/1's
 * do, and end after the listener's idle_timeout without a byte either way. */

/* The 200 an HTTP/2 client gets for a 101: no Sec-WebSocket-Accept (RFC 8441 §5), a body
 * of unknown length (the tunnel). NULL out of memory. */
static const struct http_msg *ws_head(struct http_stream *st, const struct http_msg *m)
{
    struct http_msg *r = arena_alloc(&st->t.arena, sizeof(*r));
    if (!r)
        return NULL;
    *r = *m;
    r->status = 200;
    r->reason = HSTR_LIT("OK");
    r->flags &= ~(uint32_t)HTTP_F_UPGRADE;
    r->body = HTTP_BODY_CHUNKED;
    r->content_length = 0;
    r->nhdrs = 0;
    if (m->nhdrs && !(r->hdrs = arena_alloc(&st->t.arena, m->nhdrs * sizeof(*r->hdrs))))
        return NULL;
    for (uint32_t i = 0; i < m->nhdrs; i++)
        if (!hstr_ieq_c(m->hdrs[i].name, "sec-websocket-accept"))
            r->hdrs[r->nhdrs++] = m->hdrs[i];
    return r;
}

static void ws_tunnel(struct h2s *s)
{
    struct http_stream *st = &s->st;
    st->tunnel = true;
    st->req_body_hooks = st->resp_body_hooks = false;
    s->req_sent = false; /* the client's DATA goes to the server from now on */
    s->last_ms = s->c->w->loop.now_ms;
    h2c_arm_timer(s->c);
    h2c_kick(s->c);
}

/* Client → server in a tunnel: its DATA as the server codec takes it, then its end. */
static enum move ws_step_request(struct h2s *s)
{
    struct http_stream *st = &s->st;
    const struct http_body_ops *out = &st->upc->body;
    enum move m = MOVE_NONE;
    if (s->req_sent || !st->up)
        return MOVE_NONE;
    while (s->req.len) {
        ssize_t room = out->send_room(st);
        if (room < 0) {
            stream_up_cut(st, "local_error", "out of memory");
            return MOVE_ERROR;
        }
        size_t n = s->req.len < (size_t)room ? s->req.len : (size_t)room;
        if (!n || !(n = out->send_data(st, s->req.p + s->req.off, n)))
            break;
        buf_take(&s->req, n);
        nghttp2_session_consume(s->c->ng, s->id, n);
        s->last_ms = s->c->w->loop.now_ms;
        m = MOVE_PROGRESS;
    }
    if (s->req_eof && !s->req.len) {
        out->send_end(st);
        s->req_sent = true;
        m = MOVE_PROGRESS;
    }
    return m;
}

static uint64_t ws_deadline(const struct h2s *s)
{
    uint64_t last = s->st.up_ms > s->last_ms ? s->st.up_ms : s->last_ms;
    uint64_t idle = last + s->c->lc->idle_timeout_ms;
    return s->drain_at_ms && s->drain_at_ms < idle ? s->drain_at_ms : idle;
}

static void ws_expired(struct h2s *s)
{
    bool drained = s->drain_at_ms && s->c->w->loop.now_ms >= s->drain_at_ms;
    s->st.end = drained ? "reload_drain" : "tunnel_idle";
    s->st.detail = NULL;
    h2c_reset(s->c, s, NGHTTP2_CANCEL);
    finish(s, false);
}

static const struct http_mux_ops h2_mux_ops = {
    .send_head = mux_send_head,
    .body = {mux_send_room, mux_send_data, mux_send_trailers, mux_send_end, NULL},
    .abort = mux_abort,
    .rearm = mux_rearm,
    .run = mux_run,
    .tunnel = mux_tunnel,
};
