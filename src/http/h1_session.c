/* h1_session.c — see h1_session.h.
 *
 * A session (struct h1s) is one client connection. It holds buffers only while bytes are
 * in them, and an exchange (struct h1x, pooled) only from the first byte of a request to
 * the end of its response, so an idle keep-alive connection costs a few hundred bytes.
 *
 * Life of a request:
 *   HEAD      read and parse the head (http/h1.h); the head is then copied into the
 *             exchange's arena, so the client buffer is free for the body and for
 *             pipelined requests
 *   ROUTE     listener filters, router, route filters (a filter may answer), sticky
 *             filter, balancer
 *   UPSTREAM  a pooled keep-alive connection or a new one; the head written for it
 *   BODY      request body streamed client → server once the connection is up
 *   RESPONSE  head parsed, response filters, head written for the client; body streamed
 *   END       access log line; server connection parked; the next pipelined request, or
 *             idle keep-alive, or close
 * Errors before the response head is sent answer 4xx/5xx with a short body; after it, the
 * client connection is cut (a truncated body must not look complete).
 *
 * Progress: every event runs h1_run(), which repeats the steps of the current state until
 * none moves. The loop is edge-triggered: the conn flags remember readiness, and a step
 * reads or writes until EAGAIN or until a buffer is full (back-pressure).
 *
 * This file is the client side (heads, the state machine, timers, tunnels, lifecycle);
 * h1_exchange.c the client codec past a head (the mux operations, the request body);
 * the server side is the stream's server codec (h1_upstream.c for HTTP/1 servers), driven
 * from here (flush, step); the protocol-neutral rest of an exchange (routing,
 * filters, answers, attempts, the access log) is the stream's (stream.c);
 * h1_session-t.h holds what the HTTP/1 files share.
 */
#include "http/h1_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/hash.h"
#include "core/log.h"
#include "http/access_log.h"
#include "http/h1_session-t.h"
#include "http/h1_upstream.h"
#include "http/h2_mem.h"
#include "http/h2_session.h"
#include "http/msg.h"
#include "http/stream.h"
#include "net/linger.h"
#include "net/sock.h"

#define RUN_BUDGET 64         /* steps per run() before yielding to other sessions */
#define HTTP_DEFER_ACCEPT_S 1 /* see sock_defer_accept */
/* Draining, a keep-alive connection that just answered is not closed at once: its client
 * may be sending the next request already, which would then fail. That request is
 * served (with Connection: close) if it comes within this time; else the connection
 * closes, as at a keep-alive timeout. */
#define DRAIN_IDLE_GRACE_MS 1000
static void exchange_end(struct h1s *s);
static void timer_lost(struct h1s *s);

/* The HTTP mode's per-worker state: w->mode_state[MODE_HTTP]. (The exchange and buffer
 * pools, the upstream pool and the access log buffer are still fields of struct worker.) */
struct h1_worker {
    struct list sessions; /* open client connections */
    uint32_t nsessions;
    struct pool session_pool; /* struct h1s */
};

static inline struct h1_worker *hw(const struct worker *w)
{
    return w->mode_state[MODE_HTTP];
}

static void schedule(struct h1s *s)
{
    ev_task_queue(&s->w->loop, &s->task);
}

/* ---- exchanges ---- */

/* Per-thread xorshift state for splits; seeded from the clock and the worker id. */
static __thread uint64_t rng_state;

static uint64_t next_rand(struct worker *w, uint64_t seed)
{
    if (!rng_state)
        rng_state = hash_mix64(seed ^ ((uint64_t)w->id << 32)) | 1;
    return rng_next(&rng_state);
}

static struct h1x *exchange_new(struct h1s *s)
{
    struct h1x *x = pool_get(&s->w->http_exchange_pool);
    if (!x)
        return NULL;
    /* after a reload, each new request is served by the generation in force */
    struct listener_conf *lc = admission_follow(s->w->cfg, s->lc, &s->ad, false);
    if (lc)
        s->lc = lc;
    memset(x, 0, offsetof(struct h1x, reqb));
    /* the body decoder is set by h1_body_init and the arena buffer needs no zeroing */
    memset(&x->req_done, 0, offsetof(struct h1x, arena_buf) - offsetof(struct h1x, req_done));
    x->reqb.kind = HTTP_BODY_NONE;
    arena_init_buf(&x->st.t.arena, x->arena_buf, sizeof(x->arena_buf), 0);
    x->st.t.req.is_request = true;
    x->st.t.lc = s->lc;
    x->st.t.client = s->client;
    x->st.t.conn = &s->cli;
    x->st.t.tls = s->cli.ctx != NULL;
    x->st.t.worker = s->w->id;
    x->st.w = s->w;
    x->st.lc = s->lc;
    x->st.conn = s;
    x->st.mux = &h1_mux_ops;
    x->st.start_us = stream_now_us();
    x->st.t.rand = next_rand(s->w, x->st.start_us);
    x->st.connect_us = -1;
    x->st.end = "ok";
    h1_parser_init(&x->hp);
    return x;
}

/* What the exchange holds besides its own memory: the stream's lease, server unit and
 * server codec state, and the arena's extra blocks. */
static void exchange_release(struct h1s *s)
{
    stream_free(&s->x->st);
    arena_free(&s->x->st.t.arena);
}

static void exchange_free(struct h1s *s)
{
    if (!s->x)
        return;
    exchange_release(s);
    pool_put(&s->w->http_exchange_pool, s->x);
    s->x = NULL;
}

/* Points every slice of m that lies in [from, from+len) at the same bytes in `to`. */
static void rebase(struct hstr *h, const char *from, size_t len, const char *to)
{
    if (h->p >= from && h->p < from + len)
        h->p = to + (h->p - from);
}

static void msg_rebase(struct http_msg *m, const char *from, size_t len, const char *to)
{
    rebase(&m->method_name, from, len, to);
    rebase(&m->scheme, from, len, to);
    rebase(&m->authority, from, len, to);
    rebase(&m->path, from, len, to);
    rebase(&m->query, from, len, to);
    rebase(&m->upgrade, from, len, to);
    rebase(&m->reason, from, len, to);
    for (uint32_t i = 0; i < m->nhdrs; i++) {
        rebase(&m->hdrs[i].name, from, len, to);
        rebase(&m->hdrs[i].value, from, len, to);
    }
}

/* ---- the client side ---- */

/* A complete request head at the start of s->in: copy it into the arena, count it, and
 * route it. */
static void start_request(struct h1s *s, size_t head_len)
{
    struct h1x *x = s->x;
    struct http_msg *req = &x->st.t.req;
    char *copy = arena_alloc(&x->st.t.arena, head_len);
    if (!copy) {
        stream_answer(&s->x->st, 500, "internal_error", "out of memory");
        return;
    }
    memcpy(copy, hbuf_head(s->in), head_len);
    msg_rebase(req, hbuf_head(s->in), head_len, copy);
    hbuf_consume(s->in, (uint32_t)head_len);
    h1_parser_init(&x->hp); /* now for the response head */
    x->st.bytes_in = head_len;
    x->st.t.orig_path = req->path;
    s->requests++;
    s->state = CS_TXN;
    CTR_ADD(h1_lctr(s)->http_requests, 1);
    h1_body_init(&x->reqb, req->body, req->content_length);
    x->req_done = http_msg_bodiless(req);
    h1_arm_timer(s);
    if (req->method == HTTP_M_CONNECT) {
        /* a reverse proxy does not open tunnels to arbitrary hosts (NGINX: 405, HAProxy
         * in reverse mode: refused); and a 2xx would turn the server connection into one */
        CTR_ADD(h1_lctr(s)->http_bad_requests, 1);
        x->close_after = true;
        stream_answer(&s->x->st, 501, "bad_request", "CONNECT is not supported");
        return;
    }
    uint64_t max = s->lc->http.limits.max_request_body;
    if (max && req->body == HTTP_BODY_LENGTH && req->content_length > max) {
        CTR_ADD(h1_lctr(s)->http_bad_requests, 1);
        x->close_after = true;
        stream_answer(&s->x->st, 413, "bad_request", "request body larger than max_request_body");
        return;
    }
    h1_route_request(s);
}

/* A head that fills the client buffer and may still be within max_header_size moves to a
 * buffer of the listener's head size (most heads fit in a pooled buffer). False when
 * there is no memory for it. */
static bool grow_head_buf(struct h1s *s)
{
    struct hbuf *old = s->in, *b = hbuf_get(&s->w->hbuf_pool, h1_head_cap(s));
    if (!b)
        return false;
    memcpy(b->data, hbuf_head(old), old->len);
    b->len = old->len;
    msg_rebase(&s->x->st.t.req, hbuf_head(old), old->len, b->data);
    s->in = b;
    hbuf_put(&s->w->hbuf_pool, old);
    return true;
}

/* Idle or reading a head: read, parse, and start the exchange when the head is whole. */
static enum move step_head(struct h1s *s)
{
    enum io io = h1_read_into(s->w, &s->cli, &s->in, HBUF_SIZE, false, NULL, &s->last_ms);
    if (io == IO_ERR) {
        h1_session_close(s);
        return MOVE_ERROR;
    }
    if (!s->in || s->in->len == 0) {
        if (io == IO_EOF) {
            s->cli_eof = true;
            h1_session_close(s); /* between requests: a normal end */
            return MOVE_ERROR;
        }
        return MOVE_NONE;
    }
    if (!s->x) {
        hbuf_compact(s->in); /* a head is parsed from the start of the buffer */
        if (!(s->x = exchange_new(s))) {
            h1_session_close(s);
            return MOVE_ERROR;
        }
        s->state = CS_HEAD;
        s->head_deadline_ms = s->w->loop.now_ms + s->lc->http.timeouts.request_header_ms;
        h1_arm_timer(s);
    }
    const struct http_limits *l = &s->lc->http.limits;
    struct h1_limits lim = {l->max_request_line, l->max_header_bytes, l->max_headers};
    size_t head_len = 0;
    struct h1_error err = {0, NULL};
    int r = h1_parse_request(&s->x->hp, hbuf_head(s->in), s->in->len, &lim, &s->x->st.t.req,
                             &s->x->st.t.arena, &head_len, &err);
    if (r == H1_DONE) {
        start_request(s, head_len);
        return MOVE_PROGRESS;
    }
    if (r == H1_ERROR || io == IO_EOF) {
        s->x->st.bytes_in = s->in->len;
        s->x->st.t.orig_path = (struct hstr){NULL, 0};
        memset(&s->x->st.t.req, 0, sizeof(s->x->st.t.req));
        s->x->st.t.req.version = 11;
        s->x->st.t.req.is_request = true;
        if (io == IO_EOF && r != H1_ERROR) {
            s->x->st.end = "client_abort";
            s->x->st.detail = "closed during the request head";
            h1_session_close(s);
            return MOVE_ERROR;
        }
        CTR_ADD(h1_lctr(s)->http_bad_requests, 1);
        s->state = CS_TXN;
        s->x->req_done = true;
        /* the bad bytes stay unread: nothing after them can be trusted as a request */
        s->x->close_after = true;
        stream_answer(&s->x->st, err.status ? err.status : 400, "bad_request", err.reason);
        return MOVE_PROGRESS;
    }
    if (hbuf_room(s->in) == 0 && s->in->cap < h1_head_cap(s)) {
        if (!grow_head_buf(s)) {
            h1_session_close(s);
            return MOVE_ERROR;
        }
        return MOVE_PROGRESS;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}

/* During an exchange: more request body, pipelined bytes, or the client's EOF. */
static enum move step_client_read(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->req_done && s->in && s->in->len >= HBUF_SIZE / 2)
        return MOVE_NONE; /* enough read ahead: wait for this response to finish */
    if (h1_req_splicing(s))
        return MOVE_NONE; /* the body step takes the bytes */
    /* bytes_in counts what the exchange takes (its head, its body as decoded or spliced),
     * not what is read: the next pipelined request may be in the same read */
    enum io io = h1_read_into(s->w, &s->cli, &s->in, HBUF_SIZE, true, NULL, &s->last_ms);
    if (io == IO_ERR) {
        x->st.end = "client_abort";
        x->st.detail = "client connection reset";
        h1_session_close(s);
        return MOVE_ERROR;
    }
    if (io == IO_EOF) {
        s->cli_eof = true;
        /* a client gone while a filter waits: its check is cancelled now, not when it ends */
        if ((!x->req_done && (!s->in || s->in->len == 0)) || x->st.waiting) {
            x->st.end = "client_abort";
            x->st.detail = x->st.waiting ? "closed while a filter waited"
                                         : "closed during the request body";
            h1_session_close(s);
            return MOVE_ERROR;
        }
        return MOVE_PROGRESS;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}

/* ---- sending to the client: s->out goes with the loop's other sends (ev/sendq.h) ---- */

static void cli_send_prepare(struct ev_send *e)
{
    h1_send_prepare(e, container_of(e, struct h1s, send)->out);
}

static void cli_send_done(struct ev_send *e, ssize_t res)
{
    struct h1s *s = container_of(e, struct h1s, send);
    uint64_t *count = s->x ? &s->x->st.bytes_out : NULL;
    if (h1_note_sent(s->w, &s->cli, &s->out, res, count, &s->last_ms) == IO_ERR)
        s->send_failed = true;
    h1_run(s);
}

static enum move step_flush_client(struct h1s *s)
{
    uint64_t *count = s->x ? &s->x->st.bytes_out : NULL;
    enum io io = h1_flush_queued(s->w, &s->cli, &s->out, &s->send, s->send_failed, count,
                                 &s->last_ms);
    if (io != IO_ERR && s->out_pipe.bytes && !s->out) {
        enum io spliced = h1_splice_out(s->w, &s->cli, &s->out_pipe, count, &s->last_ms);
        io = spliced == IO_NONE ? io : spliced;
    }
    if (io == IO_ERR) {
        if (s->x) {
            s->x->st.end = "client_abort";
            s->x->st.detail = "client connection reset";
        }
        h1_session_close(s);
        return MOVE_ERROR;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}

/* ---- tunnels (101 Switching Protocols) ---- */

static enum move step_tunnel_ops(struct h1s *s);

/* Sends what is staged for dst (dbuf: bytes from before the switch, such as the 101 head)
 * and then, straight from its buffer, what src sent: as much as dst takes. */
static enum io tunnel_send(struct h1s *s, struct conn *dst, struct hbuf **dbuf, struct hbuf **sbuf)
{
    if (dst->h.fd < 0)
        return IO_NONE;
    enum io staged = h1_flush_buf(s->w, dst, dbuf, NULL, &s->last_ms);
    if (staged == IO_ERR || *dbuf)
        return staged;
    enum io relayed = h1_flush_buf(s->w, dst, sbuf, NULL, &s->last_ms);
    return relayed == IO_NONE ? staged : relayed;
}

/* One direction of a tunnel. src is read only into the room its buffer has left, and that
 * room comes back only as dst takes the bytes: one bounded buffer per direction (two while
 * staged bytes drain), never an all-or-nothing copy, so a burst of any size moves and a slow
 * reader slows its writer (back-pressure). */
static enum move tunnel_dir(struct h1s *s, struct conn *src, struct hbuf **sbuf, struct conn *dst,
                            struct hbuf **dbuf, bool *shut)
{
    enum io out = tunnel_send(s, dst, dbuf, sbuf);
    if (out == IO_ERR)
        return MOVE_ERROR;
    enum io in = h1_read_into(s->w, src, sbuf, HBUF_SIZE, true, NULL, &s->last_ms);
    if (in == IO_ERR)
        return MOVE_ERROR;
    if (in == IO_MOVED && tunnel_send(s, dst, dbuf, sbuf) == IO_ERR)
        return MOVE_ERROR;
    enum move m = in == IO_MOVED || out == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
    if ((src->flags & CONN_RD_EOF) && (!*sbuf || !(*sbuf)->len) && (!*dbuf || !(*dbuf)->len) &&
        !*shut) {
        dst->xprt->shutdown_wr(dst);
        *shut = true;
        m = MOVE_PROGRESS;
    }
    return m;
}

static enum move step_tunnel(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->st.tunnel)
        return step_tunnel_ops(s);
    if (ev_send_queued(&s->send) || h1_up_sending(&x->st))
        return MOVE_NONE; /* bytes staged before the switch: their sends run the session */
    enum move up = tunnel_dir(s, &s->cli, &s->in, &x->st.up->c, h1_up_out(&x->st), &s->up_eof_sent);
    enum move down = tunnel_dir(s, &x->st.up->c, &x->st.up->in, &s->cli, &s->out, &s->cli_shut);
    if (up == MOVE_ERROR || down == MOVE_ERROR || (s->up_eof_sent && s->cli_shut)) {
        x->st.end = up == MOVE_ERROR || down == MOVE_ERROR ? "tunnel_error" : "tunnel_closed";
        h1_session_close(s);
        return MOVE_ERROR;
    }
    return up == MOVE_PROGRESS || down == MOVE_PROGRESS ? MOVE_PROGRESS : MOVE_NONE;
}

/* ---- tunnels through a multiplexing server codec (WebSocket to an HTTP/2 server) ----
 * st->tunnel (mux_tunnel): the server connection is not this exchange's alone, so the
 * client's bytes go to the server codec's body operations (its EOF as send_end) and the
 * server's come back through the mux body operations into s->out, raw (a 101 has no body
 * framing); the server's end closes the session once s->out is sent. */

static enum move tunnel_ops_up(struct h1s *s)
{
    struct http_stream *st = &s->x->st;
    const struct http_body_ops *out = &st->upc->body;
    if (s->up_eof_sent)
        return MOVE_NONE;
    enum io io = h1_read_into(s->w, &s->cli, &s->in, HBUF_SIZE, true, &st->bytes_in, &s->last_ms);
    if (io == IO_ERR)
        return MOVE_ERROR;
    enum move m = io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
    if (s->in && s->in->len) {
        ssize_t room = out->send_room(st);
        if (room < 0)
            return MOVE_ERROR;
        size_t n = s->in->len < (size_t)room ? s->in->len : (size_t)room;
        if (n && (n = out->send_data(st, hbuf_head(s->in), n)) > 0) {
            hbuf_consume(s->in, (uint32_t)n);
            m = MOVE_PROGRESS;
        }
    }
    if ((s->cli.flags & CONN_RD_EOF) && (!s->in || !s->in->len)) {
        out->send_end(st);
        s->up_eof_sent = true;
        m = MOVE_PROGRESS;
    }
    return m;
}

static enum move step_tunnel_ops(struct h1s *s)
{
    struct h1x *x = s->x;
    struct http_stream *st = &x->st;
    enum move m = tunnel_ops_up(s), r;
    if (m == MOVE_ERROR) {
        st->end = "tunnel_error";
        h1_session_close(s);
        return MOVE_ERROR;
    }
    if ((r = st->upc->flush(st)) == MOVE_ERROR || s->state != CS_TUNNEL)
        return MOVE_ERROR;
    m |= r;
    if (!x->resp_done && ((r = st->upc->step(st)) == MOVE_ERROR || s->state != CS_TUNNEL))
        return MOVE_ERROR;
    m |= r;
    if ((r = step_flush_client(s)) == MOVE_ERROR)
        return r;
    m |= r;
    if (x->resp_done && h1_out_sent(s)) {
        if (!strcmp(st->end, "ok"))
            st->end = "tunnel_closed";
        h1_session_close(s);
        return MOVE_ERROR;
    }
    return m;
}

/* ---- end of an exchange ---- */

/* The response is out: log, give the server connection back, and go on with the next
 * request (pipelined), wait for one (keep-alive), or close. */
static void exchange_end(struct h1s *s)
{
    struct h1x *x = s->x;
    stream_log(&s->x->st);
    stream_up_release(&x->st, true); /* kept if the server codec saw both messages whole */
    bool close = x->close_after || s->cli_eof;
    /* unread bytes in the socket would turn the close into a reset that can destroy the
     * answer just sent: a request cut short, a bad head's rest, pipelined requests */
    s->linger = close && !s->cli_eof && (x->req_cut || (s->in && s->in->len) ||
                                         (s->cli.flags & CONN_RD_READY));
    exchange_free(s);
    if (close) {
        h1_session_close(s);
        return;
    }
    s->state = CS_IDLE;
    if (s->in && s->in->len == 0)
        h1_buf_drop(s->w, &s->in);
    h1_arm_timer(s);
}

/* ---- the state machine ---- */

static enum move step(struct h1s *s)
{
    switch (s->state) {
    case CS_IDLE:
    case CS_HEAD:
        return step_head(s);
    case CS_TXN: {
        struct h1x *x = s->x;
        enum move m = MOVE_NONE, r;
        if ((r = step_flush_client(s)) == MOVE_ERROR)
            return r;
        m |= r;
        if (x->st.t.answered && !x->resp_done) {
            if ((r = stream_answer_step(&x->st)) == MOVE_ERROR)
                return r;
            m |= r;
        } else if (!x->resp_done) {
            struct http_stream *st = &x->st;
            if ((r = h1_step_request_body(s)) == MOVE_ERROR || s->x != x)
                return MOVE_ERROR;
            m |= r;
            if (st->upc && (r = st->upc->flush(st)) == MOVE_ERROR)
                return r;
            m |= r;
            if (st->upc && ((r = st->upc->step(st)) == MOVE_ERROR || s->state == CS_CLOSED))
                return MOVE_ERROR;
            m |= r;
        } else if (!x->req_done) {
            /* answered early: the rest of the request body is not wanted; the connection
             * closes once the answer is out, and the server's, waiting for the rest of a
             * body (its server codec never saw the request's end), is not kept */
            x->close_after = true;
            x->req_done = true;
            x->req_cut = true;
        }
        if (s->state != CS_TXN)
            return MOVE_PROGRESS;
        if ((r = step_client_read(s)) == MOVE_ERROR)
            return r;
        m |= r;
        if (x->resp_done && h1_out_sent(s) && x->req_done) {
            exchange_end(s);
            return MOVE_PROGRESS;
        }
        return m;
    }
    case CS_TUNNEL:
        return step_tunnel(s);
    default:
        return MOVE_NONE;
    }
}

void h1_run(struct h1s *s)
{
    int i;
    for (i = 0; i < RUN_BUDGET && s->state != CS_CLOSED; i++) {
        /* MOVE_ERROR: a step changed course (an answer, a retry): look again */
        if (step(s) == MOVE_NONE)
            break;
    }
    if (s->state == CS_CLOSED)
        return;
    if (i == RUN_BUDGET)
        schedule(s); /* a long transfer: let the other sessions of this worker run */
    /* what a step staged after its flush without calling it progress (a held response's
     * bytes let go, say) goes with the turn's sends too */
    if (!s->send_failed && s->state != CS_TUNNEL)
        h1_queue_send(s->w, &s->cli, &s->out, &s->send);
}

static void client_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct h1s *s = container_of(h, struct h1s, cli.h);
    if (s->state == CS_CLOSED)
        return;
    conn_note_events(&s->cli, events);
    h1_run(s);
}

/* ---- timers ---- */

/* The next deadline of the session's current state. */
static uint64_t deadline(struct h1s *s)
{
    const struct http_timeouts *to = &s->lc->http.timeouts;
    struct h1x *x = s->x;
    switch (s->state) {
    case CS_IDLE: {
        uint64_t d = s->last_ms + (s->requests ? to->keepalive_ms : to->request_header_ms);
        uint64_t grace = s->last_ms + DRAIN_IDLE_GRACE_MS;
        return s->w->applied_cmd != WORKER_RUN && grace < d ? grace : d;
    }
    case CS_HEAD:
        return s->head_deadline_ms;
    case CS_TXN:
        return stream_deadline(&x->st, s->last_ms);
    case CS_TUNNEL: {
        uint64_t idle = s->last_ms + s->lc->idle_timeout_ms;
        return s->drain_at_ms && s->drain_at_ms < idle ? s->drain_at_ms : idle;
    }
    default:
        return 0;
    }
}

/* Arms the timer for the current deadline, unless it is armed earlier already: the timer
 * callback recomputes the deadline and re-arms, so moving it later is left to it (one heap
 * operation saved for most requests). */
void h1_arm_timer(struct h1s *s)
{
    uint64_t d = deadline(s);
    if (d && (!ev_timer_armed(&s->timer) || d < s->timer.expire_ms) &&
        ev_timer_arm_at(&s->w->loop, &s->timer, d) < 0)
        timer_lost(s);
}

static void session_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct h1s *s = container_of(t, struct h1s, timer);
    if (s->state == CS_CLOSED)
        return;
    uint64_t d = deadline(s);
    if (loop->now_ms < d) {
        if (ev_timer_arm_at(loop, t, d) < 0)
            timer_lost(s);
        return;
    }
    switch (s->state) {
    case CS_IDLE:
        h1_session_close(s); /* keep-alive over: a silent close */
        return;
    case CS_HEAD:
        CTR_ADD(h1_lctr(s)->http_bad_requests, 1);
        s->state = CS_TXN;
        s->x->req_done = true;
        stream_answer(&s->x->st, 408, "client_timeout", "request head not received in time");
        break;
    case CS_TXN:
        stream_expired(&s->x->st);
        break;
    case CS_TUNNEL:
        s->x->st.end = s->drain_at_ms && loop->now_ms >= s->drain_at_ms ? "reload_drain"
                                                                           : "tunnel_idle";
        h1_session_close(s);
        return;
    }
    if (s->state != CS_CLOSED) {
        h1_arm_timer(s);
        h1_run(s);
    }
}

/* ---- lifecycle ---- */

/* A session must never be left without its timeout: when the timer cannot be armed (no
 * memory for the heap), the session is closed from the run queue, after the batch (its
 * callers still use it and its exchange now). */
static void timer_lost(struct h1s *s)
{
    s->timer_lost = true;
    schedule(s);
}

/* The run queue: a session that used its step budget, or lost its timer. */
static void session_task(struct ev_task *t)
{
    struct h1s *s = container_of(t, struct h1s, task);
    if (!s->timer_lost || s->state == CS_CLOSED) {
        h1_run(s); /* does nothing on a closed session */
        return;
    }
    if (s->x) {
        s->x->st.end = "local_error";
        s->x->st.detail = "no memory for a timer";
    }
    h1_session_close(s);
}

static void session_free(struct ev_defer *d)
{
    struct h1s *s = container_of(d, struct h1s, dfree);
    if (s->x)
        pool_put(&s->w->http_exchange_pool, s->x);
    pool_put(&hw(s->w)->session_pool, s);
}

void h1_session_close(struct h1s *s)
{
    struct worker *w = s->w;
    if (s->state == CS_CLOSED)
        return;
    if (s->x && s->x->st.status == 0 && !strcmp(s->x->st.end, "ok"))
        s->x->st.end = "client_abort";
    if (s->x && (s->state != CS_HEAD || s->x->st.bytes_in))
        stream_log(&s->x->st);
    /* the exchange's memory goes with the session's, after the batch: the server codec
     * that closed it may still be looking at its stream */
    if (s->x)
        exchange_release(s);
    s->state = CS_CLOSED;
    ev_timer_cancel(&w->loop, &s->timer);
    uint32_t linger_ms = s->linger ? s->lc->http.timeouts.lingering_ms : 0;
    if (linger_ms)
        CTR_ADD(h1_lctr(s)->http_lingering, 1);
    admission_release(w->cfg, s->lc, &s->ad);
    ev_send_finish(&s->send); /* staged bytes go before the close, as without the queue */
    conn_linger(w, &s->cli, linger_ms); /* 0: a plain close */
    h1_buf_drop(s->w, &s->in);
    h1_buf_drop(s->w, &s->out);
    spliced_drop(&s->w->pipes, &s->out_pipe);
    ev_task_cancel(&s->task);
    list_del(&s->link);
    hw(w)->nsessions--;
    ev_defer_free(&w->loop, &s->dfree, session_free);
}

void h1_start(struct worker *w, struct listener_conf *lc, struct accepted *a)
{
    if (h2_claims(w, lc, a)) /* HTTP/2: ALPN h2, or the h2c preface (h2_session.c) */
        return;
    struct h1s *s = pool_get(&hw(w)->session_pool);
    if (!s) {
        CTR_ADD(lc->st.ctr[w->id].conns_rejected, 1);
        admission_release(w->cfg, lc, &a->ad);
        a->cli.xprt->close(&a->cli);
        return;
    }
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->lc = lc;
    s->client = a->client;
    s->ad = a->ad;
    s->cli = a->cli;
    s->cli.h.cb = client_io;
    s->out_pipe = SPLICED_NONE;
    ev_send_init(&s->send, cli_send_prepare, cli_send_done);
    s->last_ms = w->loop.now_ms;
    ev_timer_init(&s->timer, session_timer);
    ev_task_init(&s->task, session_task);
    list_add_tail(&hw(w)->sessions, &s->link);
    hw(w)->nsessions++;
    if (conn_take_registration(w, &s->cli, a) < 0) {
        h1_session_close(s);
        return;
    }
    s->state = CS_IDLE;
    h1_arm_timer(s);
    /* with TCP_DEFER_ACCEPT the request is most likely here already: read it now rather
     * than after another epoll_wait (a read that finds nothing costs one EAGAIN) */
    s->cli.flags |= CONN_RD_READY | CONN_WR_READY;
    h1_run(s);
}

/* ---- the mode (net/listener_mode.h) ---- */

static void h1_drain(struct worker *w)
{
    struct list *pos, *tmp;
    if (!hw(w))
        return;
    h2_drain(w);
    list_for_each_safe(pos, tmp, &hw(w)->sessions)
    {
        struct h1s *s = list_entry(pos, struct h1s, link);
        if (s->state == CS_IDLE && !s->x &&
            (!s->requests || w->loop.now_ms >= s->last_ms + DRAIN_IDLE_GRACE_MS))
            h1_session_close(s);
        else if (s->x && !s->x->resp_done)
            s->x->close_after = true;
        else
            h1_arm_timer(s); /* the grace (deadline); a response whose last bytes are
                              * still to leave (no "Connection: close" in it) gets it too */
    }
}

/* A tunnel (WebSocket...) whose listener, backend or server the reload changed closes
 * after timeouts.reload_drain; a request in flight on a removed listener is the
 * connection's last. */
static void h1_reload_busy(struct worker *w, struct h1s *s)
{
    if (s->state == CS_TUNNEL && !s->drain_at_ms &&
        !config_path_kept(w->cfg, s->lc, s->x->st.att.server)) {
        s->drain_at_ms = w->loop.now_ms + w->cfg->reload_drain_ms;
        h1_arm_timer(s);
    } else if (s->x && !config_listener_successor(w->cfg, s->lc)) {
        s->x->close_after = true;
    }
}

/* A reload: the server pools take the new numbers; idle connections move to the new
 * generation now (or close, their listener removed), busy ones at their next request;
 * HTTP/2 connections see h2_reload. */
static void h1_reload(struct worker *w, struct config *old)
{
    struct list *pos, *tmp;
    (void)old;
    if (upool_rebuild(&w->upool, w) < 0)
        log_warn("worker %u: reload: out of memory; server connections are not kept idle "
                 "any more", w->id);
    if (!hw(w))
        return;
    h2_reload(w);
    list_for_each_safe(pos, tmp, &hw(w)->sessions)
    {
        struct h1s *s = list_entry(pos, struct h1s, link);
        if (s->state != CS_IDLE || s->x) {
            h1_reload_busy(w, s);
            continue;
        }
        struct listener_conf *lc = admission_follow(w->cfg, s->lc, &s->ad, false);
        if (!lc) {
            h1_session_close(s);
            continue;
        }
        s->lc = lc;
        h1_arm_timer(s);
    }
}

static void h1_close_all(struct worker *w)
{
    struct list *pos, *tmp;
    if (!hw(w))
        return;
    h2_close_all(w);
    list_for_each_safe(pos, tmp, &hw(w)->sessions)
    {
        struct h1s *s = list_entry(pos, struct h1s, link);
        if (s->x)
            s->x->st.end = "shutdown";
        h1_session_close(s);
    }
}

static uint32_t h1_sessions(const struct worker *w)
{
    return (hw(w) ? hw(w)->nsessions : 0) + h2_sessions(w);
}

static void h1_worker_free(struct worker *w)
{
    struct h1_worker *h = hw(w);
    upool_free(&w->upool, w); /* reaps the loop */
    pool_destroy(&w->http_exchange_pool);
    pool_destroy(&w->h1u_pool);
    pool_destroy(&w->hbuf_pool);
    pool_destroy(&w->h2s_pool);
    h2_mem_free(w->h2mem);
    w->h2mem = NULL;
    if (!h)
        return;
    BUG_ON(h->nsessions); /* after close_all and the loop's reap */
    pool_destroy(&h->session_pool);
    free(h);
    w->mode_state[MODE_HTTP] = NULL;
}

static int h1_worker_init(struct worker *w)
{
    struct h1_worker *h = calloc(1, sizeof(*h));
    if (!h)
        return -1;
    w->mode_state[MODE_HTTP] = h;
    list_init(&h->sessions);
    pool_init(&h->session_pool, sizeof(struct h1s), POOL_MAX_FREE);
    pool_init(&w->http_exchange_pool, sizeof(struct h1x), 256);
    pool_init(&w->h1u_pool, sizeof(struct h1u), 256);
    pool_init(&w->hbuf_pool, sizeof(struct hbuf) + HBUF_SIZE, POOL_MAX_FREE);
    pool_init(&w->h2s_pool, h2s_size(), 256);
    w->h2mem = h2_mem_new(); /* NULL: nghttp2 allocates by itself */
    return upool_init(&w->upool, w->cfg);
}

/* Before the workers: the servers' numbers (the upstream pools' index) and the access
 * log files, shared by every worker. */
static int h1_process_init(struct config *cfg, char *err, size_t errlen)
{
    upool_number_servers(cfg);
    return access_log_open(cfg, err, errlen);
}

static int h1_bind(struct listen_sock *ls, const struct sockaddr_any *addr)
{
    int fd = sock_listen_tcp(addr, (int)ls->lc->backlog, 1);
    if (fd >= 0)
        sock_defer_accept(fd, HTTP_DEFER_ACCEPT_S);
    return fd;
}

const struct listener_mode_ops http_mode_ops = {
    .name = "http",
    .bind = h1_bind,
    .start = h1_start, /* a stream mode */
    .process_init = h1_process_init,
    .process_free = access_log_close,
    .worker_init = h1_worker_init,
    .worker_free = h1_worker_free,
    .reload = h1_reload,
    .drain = h1_drain,
    .close_all = h1_close_all,
    .sessions = h1_sessions,
};
