/* h1_upstream.c — the HTTP/1 server codec of a stream (h1_upstream.h): the request head
 * and body written for the server over the attempt's lease, the response head parsed
 * (interim heads passed on, an unasked switch refused), and the response body decoded and
 * handed to the client codec through the stream's mux. It knows nothing of the client's
 * protocol: after events on its connection it asks the client codec to run the stream.
 */
#include "http/h1_upstream.h"

#include <errno.h>
#include <string.h>

#include "ev/worker.h"
#include "http/h1_relay.h"
#include "http/msg.h"
#include "http/stream.h"
#include "upstream/pool.h"

static inline struct h1u *up_of(const struct http_stream *st)
{
    return st->upx;
}

/* ---- WebSocket through the body operations (RFC 8441 clients) ----
 * An HTTP/2 client's extended CONNECT reaches this codec as an HTTP/1 upgrade without
 * Sec-WebSocket-Key (RFC 8441 §5 has none): the key is made here and the 101's
 * Sec-WebSocket-Accept checked. After the 101 the client codec sets st->tunnel and the
 * bytes flow unframed: the client's through up_send_data (u->out) until its end (then
 * shutdown(SHUT_WR) once they are out), the server's to st->mux->body until it closes. */

/* Sec-WebSocket-Version and a Sec-WebSocket-Key for a WebSocket upgrade that has none
 * (the first attempt adds them to t->req: later attempts send the same). False: no
 * memory or no random bytes. */
static bool ws_prepare(struct http_stream *st, struct h1u *u)
{
    static const struct hstr ver = HSTR_LIT("Sec-WebSocket-Version"),
                             key = HSTR_LIT("Sec-WebSocket-Key");
    struct http_msg *req = &st->t.req;
    char k[WS_KEY_LEN + 1];
    if (!(req->flags & HTTP_F_UPGRADE) || !http_list_has(req->upgrade, HSTR_LIT("websocket")) ||
        http_hdr_find(req, key, 0) >= 0)
        return true;
    if (http_hdr_find(req, ver, 0) < 0 && http_hdr_add(req, &st->t.arena, ver, HSTR_LIT("13")) < 0)
        return false;
    if (!ws_key_new(k) || !ws_accept_of((struct hstr){k, WS_KEY_LEN}, u->ws_accept))
        return false;
    struct hstr kv = arena_dup(&st->t.arena, k, WS_KEY_LEN);
    if (!kv.p || http_hdr_add(req, &st->t.arena, key, kv) < 0)
        return false;
    u->ws_check = true;
    return true;
}

/* The 101 carries the Sec-WebSocket-Accept of the key made here (RFC 6455 §4.1). */
static bool ws_accept_ok(const struct http_stream *st, const struct h1u *u)
{
    struct hstr a = http_hdr_get(&st->t.resp, HSTR_LIT("Sec-WebSocket-Accept"));
    return a.len == WS_ACCEPT_LEN && memcmp(a.p, u->ws_accept, WS_ACCEPT_LEN) == 0;
}

/* Server → client in a tunnel: the server's bytes as they are, as much as the client codec
 * takes (the server is read only into the room its buffer has left); its close ends the
 * response. */
static enum move tunnel_step(struct http_stream *st, struct h1u *u)
{
    struct upconn *uc = st->up;
    const struct http_body_ops *out = &st->mux->body;
    enum io io = h1_read_into(st->w, &uc->c, &uc->in, HBUF_SIZE, true, NULL, &st->up_ms);
    if (io == IO_ERR) {
        stream_up_cut(st, "tunnel_error", "server connection reset");
        return MOVE_ERROR;
    }
    enum move m = io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
    if (uc->in && uc->in->len) {
        ssize_t room = out->send_room(st);
        if (room < 0) {
            stream_up_cut(st, "local_error", "out of memory");
            return MOVE_ERROR;
        }
        size_t n = uc->in->len < (size_t)room ? uc->in->len : (size_t)room;
        if (n && (n = out->send_data(st, hbuf_head(uc->in), n)) > 0) {
            hbuf_consume(uc->in, (uint32_t)n);
            m = MOVE_PROGRESS;
        }
    }
    if ((!uc->in || !uc->in->len) && (uc->c.flags & CONN_RD_EOF)) {
        u->resp_done = true;
        out->send_end(st);
        return MOVE_PROGRESS;
    }
    return m;
}

/* ---- attempts ---- */

/* Events on the leased connection: the connect first, then the client codec runs the
 * stream (which calls flush and step). */
static void up_io(struct upconn *uc, uint32_t events)
{
    struct http_stream *st = uc->owner;
    conn_note_events(&uc->c, events);
    if (uc->connecting) {
        enum up_connect r = upstream_conn_step(st->w, &st->att, uc, events);
        if (r == UP_CONNECT_PENDING)
            return;
        if (r == UP_CONNECT_FAILED)
            stream_connect_failed(st, st->att.err, st->att.why);
        else
            stream_connected(st);
    }
    st->mux->run(st);
}

/* The request head for the server into u->out: most heads fit in a pooled buffer; one
 * that does not (max_header_size allows larger ones) gets a buffer of the listener's
 * head size. */
static bool stage_head(struct http_stream *st, struct h1u *u)
{
    uint32_t big = st->lc->http.limits.max_header_bytes + 1024;
    for (uint32_t cap = HBUF_SIZE;; cap = big) {
        struct hbuf *b = h1_buf_of(st->w, &u->out, cap);
        ssize_t n = b ? h1_write_request(&st->t.req, false, hbuf_tail(b), hbuf_room(b)) : -1;
        if (n >= 0) {
            b->len = (uint32_t)n;
            return true;
        }
        h1_buf_drop(st->w, &u->out);
        if (!b || cap >= big)
            return false;
    }
}

/* ---- sending: the staged bytes go with the loop's other sends (ev/sendq.h) ---- */

static void up_send_prepare(struct ev_send *e)
{
    h1_send_prepare(e, container_of(e, struct h1u, send)->out);
}

static void up_send_done(struct ev_send *e, ssize_t res)
{
    struct h1u *u = container_of(e, struct h1u, send);
    struct http_stream *st = u->st;
    if (h1_note_sent(st->w, &st->up->c, &u->out, res, NULL, &st->up_ms) == IO_ERR)
        u->send_failed = true;
    st->mux->run(st);
}

/* A new attempt: fresh state, the request head staged, then a lease. */
static enum up_start up_start(struct http_stream *st)
{
    struct worker *w = st->w;
    struct h1u *u = up_of(st);
    if (!u) {
        if (!(u = pool_get(&w->h1u_pool))) {
            st->att.err = ENOMEM;
            st->att.why = NULL;
            return UP_START_CONNECT_FAILED;
        }
        u->out = NULL;
        u->out_pipe = SPLICED_NONE;
        u->ws_check = false;
        ev_send_init(&u->send, up_send_prepare, up_send_done);
        u->st = st;
        st->upx = u;
    }
    ev_send_cancel(&u->send); /* the last attempt's */
    u->send_failed = false;
    h1_buf_drop(w, &u->out);
    spliced_drop(&w->pipes, &u->out_pipe);
    h1_parser_init(&u->hp);
    u->respb.kind = HTTP_BODY_NONE;
    u->resp_done = u->keep = u->no_splice = false;
    u->resp_end = BODY_FLOWING;
    u->tunnel = u->cli_end = u->shut = false;
    u->req_sent = http_msg_bodiless(&st->t.req);
    if (!ws_prepare(st, u)) {
        st->att.err = ENOMEM;
        st->att.why = "no random bytes or memory for a WebSocket key";
        return UP_START_CONNECT_FAILED;
    }
    if (!stage_head(st, u))
        return UP_START_TOO_LARGE;
    st->up = upstream_acquire(w, &st->att, st, up_io, st->fresh_only, &st->reused);
    return st->up ? UP_START_OK : UP_START_CONNECT_FAILED;
}

static void up_release(struct http_stream *st, bool keep)
{
    struct h1u *u = up_of(st);
    struct upconn *uc = st->up;
    ev_send_cancel(&u->send); /* bytes still staged: the connection is not kept */
    keep = keep && u->keep && u->req_sent && u->resp_done && !u->out && !u->out_pipe.bytes &&
           (!uc->in || uc->in->len == 0);
    spliced_drop(&st->w->pipes, &u->out_pipe); /* what it holds was that connection's */
    upstream_lease_end(st->w, uc, keep);
}

static void up_free(struct http_stream *st)
{
    struct h1u *u = up_of(st);
    ev_send_cancel(&u->send);
    h1_buf_drop(st->w, &u->out);
    spliced_drop(&st->w->pipes, &u->out_pipe);
    pool_put(&st->w->h1u_pool, u);
    st->upx = NULL;
}

/* The server connection failed or closed before the response was complete. */
static void up_broken(struct http_stream *st, const char *detail)
{
    struct hbuf *in = st->up ? st->up->in : NULL;
    if (!st->resp_started) {
        stream_up_broken(st, detail, !in || in->len == 0);
        return;
    }
    if (up_of(st)->respb.kind == HTTP_BODY_UNTIL_CLOSE)
        return; /* not broken: that is how this body ends (handled by the body step) */
    stream_up_cut(st, "server_abort", detail);
}

/* ---- the server side's request body (http_up_ops.body) ---- */

static bool req_chunked(const struct http_stream *st)
{
    return st->t.req.body == HTTP_BODY_CHUNKED;
}

static ssize_t up_send_room(struct http_stream *st)
{
    if (up_of(st)->out_pipe.bytes)
        return 0; /* spliced bytes go first */
    return h1_body_room(st->w, &up_of(st)->out, req_chunked(st));
}

/* Unframed body bytes for a plain server connection go through u->out_pipe, once what
 * u->out holds before them (the head) is sent. */
static ssize_t up_send_from_fd(struct http_stream *st, int fd, size_t max)
{
    struct h1u *u = up_of(st);
    if (req_chunked(st) || (st->up && !st->up->c.xprt->can_splice)) {
        errno = ENOBUFS;
        return -1;
    }
    if (!st->up || st->up->connecting || u->out || u->out_pipe.bytes) {
        errno = EINPROGRESS;
        return -1;
    }
    return spliced_in(&st->w->pipes, &u->out_pipe, fd, max);
}

static size_t up_send_data(struct http_stream *st, const char *p, size_t n)
{
    return h1_body_put(&up_of(st)->out, req_chunked(st), p, n);
}

static bool up_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    return h1_body_last(st->w, &up_of(st)->out, req_chunked(st), m);
}

static void up_send_end(struct http_stream *st)
{
    struct h1u *u = up_of(st);
    u->req_sent = true;
    u->cli_end = u->tunnel; /* a tunnel's client side ended: shut once its bytes are out */
}

/* ---- the response ---- */

/* An interim response (1xx but 101), passed on; the parser is readied for the next head. */
static void on_interim(struct http_stream *st, size_t head_len)
{
    stream_interim(st);
    hbuf_consume(st->up->in, (uint32_t)head_len);
    memset(&st->t.resp, 0, sizeof(st->t.resp));
    h1_parser_init(&up_of(st)->hp);
}

/* The response body decoder, after the head went to the client. */
static void start_response_body(struct http_stream *st, struct h1u *u)
{
    struct http_msg *resp = &st->t.resp;
    bool no_body = st->t.req.method == HTTP_M_HEAD || resp->status == 204 || resp->status == 304;
    h1_body_init(&u->respb, no_body ? HTTP_BODY_NONE : resp->body, resp->content_length);
    u->respb.response = true;
    if (u->respb.kind == HTTP_BODY_NONE ||
        (u->respb.kind == HTTP_BODY_LENGTH && resp->content_length == 0)) {
        u->resp_done = true;
        st->mux->body.send_end(st);
    }
}

/* A complete response head in the server buffer: interim answers, the stream's checks
 * (retries on status), an unasked switch refused, then the head for the client. */
static void on_response_head(struct http_stream *st, size_t head_len)
{
    struct h1u *u = up_of(st);
    struct http_msg *resp = &st->t.resp;
    if (resp->status >= 100 && resp->status < 200 && resp->status != 101) {
        on_interim(st, head_len);
        return;
    }
    if (!stream_response_checks(st))
        return;
    if (resp->status == 101 && u->ws_check && !ws_accept_ok(st, u)) {
        stream_attempt_failed(st, true, true);
        stream_answer(st, 502, "bad_response", "101 without the Sec-WebSocket-Accept asked for");
        return;
    }
    if (resp->status == 101 && !http_switch_asked(&st->t.req, resp)) {
        /* no tunnel: the server speaks another protocol on that connection now, and the
         * client may have asked for a switch Strata did not forward */
        st->must_close = true;
        stream_attempt_failed(st, true, true);
        stream_answer(st, 502, "bad_response", "server switched protocols unasked");
        return;
    }
    u->keep =
        !(resp->flags & HTTP_F_CLOSE) && resp->body != HTTP_BODY_UNTIL_CLOSE && resp->status != 101;
    if (!stream_send_response(st))
        return;
    hbuf_consume(st->up->in, (uint32_t)head_len);
    if (resp->status == 101) {
        u->resp_done = true;
        st->mux->tunnel(st);
        if (st->tunnel && st->up) { /* relayed through the body operations: tunnel_step */
            u->tunnel = true;
            u->resp_done = false;
        }
        return;
    }
    start_response_body(st, u);
}

/* Parses the response head from the server buffer. */
static enum move parse_response_head(struct http_stream *st)
{
    struct upconn *uc = st->up;
    if (!uc->in || uc->in->len == 0)
        return MOVE_NONE;
    /* a response head must fit in one server buffer */
    struct h1_limits lim = {HBUF_SIZE, HBUF_SIZE, 256};
    size_t head_len = 0;
    struct h1_error err = {0, NULL};
    int r = h1_parse_response(&up_of(st)->hp, hbuf_head(uc->in), uc->in->len, &lim,
                              st->t.req.method, &st->t.resp, &st->t.arena, &head_len, &err);
    if (r == H1_AGAIN)
        return MOVE_NONE;
    if (r == H1_ERROR) {
        CTR_ADD(st->t.server->st.ctr[st->w->id].http_5xx, 1);
        stream_attempt_failed(st, true, true);
        stream_answer(st, 502, "bad_response", err.reason ? err.reason : "invalid response head");
        return MOVE_ERROR;
    }
    on_response_head(st, head_len);
    return MOVE_PROGRESS;
}

/* ---- bodies moved by splice(2) ----
 * A response body no filter sees, sent with a length longer than a buffer, goes from the
 * server's socket to the client codec's without entering user space (the client codec
 * offers send_from_fd: a plain HTTP/1 client connection, the body not re-chunked). The
 * bytes read with the head go the usual way first; never more than the body is taken
 * from the socket, so the connection stays reusable. */

static bool splice_wanted(const struct http_stream *st, const struct h1u *u,
                          const struct upconn *uc)
{
    return st->resp_started && !u->no_splice && !u->resp_end &&
           u->respb.kind == HTTP_BODY_LENGTH && u->respb.remaining > HBUF_SIZE &&
           !st->resp_body_hooks && stream_response_body_dest(st)->send_from_fd && /* not held */
           uc->c.xprt->can_splice &&
           (!uc->in || !uc->in->len);
}

/* MOVE_PROGRESS when bytes moved or the server's end was seen (CONN_RD_EOF); u->no_splice
 * when the body must be copied after all. */
static enum move splice_body(struct http_stream *st, struct h1u *u, struct upconn *uc)
{
    if (!(uc->c.flags & CONN_RD_READY) || (uc->c.flags & CONN_RD_EOF))
        return MOVE_NONE;
    ssize_t n = st->mux->body.send_from_fd(st, uc->c.h.fd, u->respb.remaining);
    if (n > 0) {
        u->respb.remaining -= (uint64_t)n;
        st->up_ms = st->w->loop.now_ms;
        return MOVE_PROGRESS;
    }
    if (n == 0) {
        uc->c.flags |= CONN_RD_EOF;
        return MOVE_PROGRESS;
    }
    if (errno == EAGAIN || errno == EINTR)
        uc->c.flags &= ~CONN_RD_READY;
    else if (errno == ENOBUFS) {
        u->no_splice = true;
        return MOVE_PROGRESS; /* look again: the copy path reads */
    } else if (errno != EINPROGRESS) {
        uc->c.flags |= CONN_ERROR;
        up_broken(st, "server connection reset");
        return MOVE_ERROR;
    }
    return MOVE_NONE;
}

/* Server → client: the response head, then its body. The server's EOF is acted on only
 * once what it sent before is used up. */
static enum move up_step(struct http_stream *st)
{
    struct h1u *u = up_of(st);
    if (!st->up || st->up->connecting || u->resp_done)
        return MOVE_NONE;
    if (u->tunnel)
        return tunnel_step(st, u);
    struct upconn *uc = st->up;
    enum move m = MOVE_NONE;
    if (splice_wanted(st, u, uc)) {
        m = splice_body(st, u, uc);
        /* the rest when it ended (below: its end, or a server gone before it) */
        if (m == MOVE_ERROR || (u->respb.remaining && !(uc->c.flags & CONN_RD_EOF)))
            return m;
    } else {
        enum io io =
            h1_read_into(st->w, &uc->c, &uc->in, HBUF_SIZE, st->resp_started, NULL, &st->up_ms);
        if (io == IO_ERR) {
            up_broken(st, "server connection reset");
            return MOVE_ERROR;
        }
        m = io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
    }
    bool eof = (uc->c.flags & CONN_RD_EOF) != 0;
    if (!st->resp_started) {
        enum move h = parse_response_head(st);
        if (h == MOVE_ERROR)
            return h;
        if (h == MOVE_NONE) {
            if (eof) {
                up_broken(st, "server closed the connection");
                return MOVE_ERROR;
            }
            return m;
        }
        /* an interim answer, a retry, a tunnel or a body-less answer: look again */
        if (st->up != uc || !st->resp_started || u->resp_done || u->tunnel)
            return MOVE_PROGRESS;
        m = MOVE_PROGRESS; /* the head is out: its body follows in the same write */
    }
    struct h1_error err = {0, NULL};
    struct body_move bm = {&u->respb,    uc->in,        eof,         true,
                           &u->resp_end, &u->resp_done, &st->t.resp, stream_response_body_dest(st),
                           NULL};
    enum move b = h1_move_body(st, &bm, &err);
    if (st->up != uc)
        return MOVE_ERROR; /* a filter refused the held response: answered instead */
    if (b == MOVE_ERROR) {
        stream_up_cut(st, "bad_response", err.reason ? err.reason : "invalid response body");
        return MOVE_ERROR;
    }
    if (b == MOVE_NONE && eof && !u->resp_done && !u->resp_end &&
        (!uc->in || uc->in->len == 0)) {
        up_broken(st, "server closed the connection before the end of the body");
        return MOVE_ERROR;
    }
    return b == MOVE_PROGRESS ? MOVE_PROGRESS : m;
}

static enum move up_flush(struct http_stream *st)
{
    struct h1u *u = up_of(st);
    if (!st->up || st->up->connecting || (!u->out && !u->out_pipe.bytes && !u->cli_end))
        return MOVE_NONE;
    enum io io = h1_flush_queued(st->w, &st->up->c, &u->out, &u->send, u->send_failed, NULL,
                                 &st->up_ms);
    if (io != IO_ERR && !u->out && u->out_pipe.bytes) {
        enum io spliced = h1_splice_out(st->w, &st->up->c, &u->out_pipe, NULL, &st->up_ms);
        io = spliced == IO_NONE ? io : spliced;
    }
    if (io == IO_ERR) {
        up_broken(st, "server connection reset while sending");
        return MOVE_ERROR;
    }
    if (u->cli_end && !u->out && !u->shut) { /* a tunnel's client side ended (see above) */
        u->shut = true;
        st->up->c.xprt->shutdown_wr(&st->up->c);
        return MOVE_PROGRESS;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}

const struct http_up_ops h1_up_ops = {
    .start = up_start,
    .body = {up_send_room, up_send_data, up_send_trailers, up_send_end, up_send_from_fd},
    .flush = up_flush,
    .step = up_step,
    .release = up_release,
    .free = up_free,
};
