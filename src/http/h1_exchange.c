/* h1_exchange.c — the HTTP/1 client codec past a request head (see h1_session-t.h): the
 * mux operations of stream-t.h (response heads framed for the client: HEAD/1xx/204/304,
 * re-chunked or close-delimited bodies, Connection; trailers from the model), 100-continue,
 * the h2c upgrade rules and the request body. Routing, filters, answers and attempts are
 * the stream's (stream.c); the server side is the server codec's (h1_upstream.c for HTTP/1
 * servers); the body relay is h1_relay.c.
 */
#include <errno.h>
#include <string.h>

#include "http/h1_session-t.h"
#include "http/h1_upstream.h"
#include "http/msg.h"
#include "http/stream.h"

/* The client connection must close after this exchange: the client asked, the worker
 * drains, or the connection served its quota of requests. */
bool h1_must_close(const struct h1s *s)
{
    const struct http_msg *req = &s->x->st.t.req;
    uint32_t quota = s->lc->http.max_requests_per_conn;
    return (req->flags & HTTP_F_CLOSE) || s->w->applied_cmd != WORKER_RUN ||
           (quota && s->requests >= quota);
}

/* ---- upgrades ---- */

/* h2c (RFC 7540 §3.2) is never forwarded: past the server's 101 the client would speak
 * HTTP/2 to the server directly, past every route and filter. h2c leaves the Upgrade list
 * (with nothing left, the request goes on as an ordinary one and the writer names no
 * upgrade in Connection), and HTTP2-Settings, h2c's connection-specific field, goes with
 * it. False when out of memory. */
static bool strip_h2c(struct http_msg *req, struct arena *a)
{
    static const struct hstr h2c = HSTR_LIT("h2c");
    http_hdr_remove(req, HSTR_LIT("HTTP2-Settings"));
    if (!(req->flags & HTTP_F_UPGRADE) || !http_list_has(req->upgrade, h2c))
        return true;
    char *out = arena_alloc(a, (size_t)req->upgrade.len * 2);
    if (!out)
        return false;
    uint32_t n = 0;
    const char *p = req->upgrade.p;
    struct hstr el;
    while (http_list_next(&p, req->upgrade.p + req->upgrade.len, &el)) {
        if (hstr_ieq(el, h2c))
            continue;
        if (n) {
            memcpy(out + n, ", ", 2);
            n += 2;
        }
        memcpy(out + n, el.p, el.len);
        n += el.len;
    }
    req->upgrade = n ? (struct hstr){out, n} : (struct hstr){NULL, 0};
    if (!n)
        req->flags &= ~(uint32_t)HTTP_F_UPGRADE;
    return true;
}

void h1_route_request(struct h1s *s)
{
    struct h1x *x = s->x;
    if (!strip_h2c(&x->st.t.req, &x->st.t.arena)) {
        stream_answer(&x->st, 500, "internal_error", "out of memory");
        return;
    }
    stream_route(&x->st);
}

/* ---- the request body ---- */

/* "100 Continue" for a client that waits for it before sending its body. */
static bool send_continue(struct h1s *s)
{
    struct h1x *x = s->x;
    if (!(x->st.t.req.flags & HTTP_F_EXPECT_100) || x->cont_sent)
        return true;
    x->cont_sent = true;
    if (x->st.t.req.version != 11 || (s->in && s->in->len))
        return true;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    return h1_buf_append(s->w, &s->out, cont, sizeof(cont) - 1);
}

/* A request body no filter sees, sent with a length longer than a buffer and within
 * max_request_body, goes from a plain client connection to a server codec that takes
 * bytes from a socket (an HTTP/1 server, not re-chunked) without entering user space,
 * once the bytes read with the head are passed on; never more than the body is taken
 * from the socket, so pipelined requests stay there. */
bool h1_req_splicing(struct h1s *s)
{
    struct h1x *x = s->x;
    const struct http_body_ops *out = stream_request_body_dest(&x->st);
    if (!out || !out->send_from_fd || x->req_no_splice || x->req_done || x->req_end ||
        x->reqb.kind != HTTP_BODY_LENGTH || x->reqb.remaining <= HBUF_SIZE ||
        x->st.req_body_hooks || (s->in && s->in->len) || !s->cli.xprt->can_splice)
        return false;
    uint64_t max = x->st.t.max_request_body ? x->st.t.max_request_body
                                            : s->lc->http.limits.max_request_body;
    return !max || x->st.t.req.content_length <= max; /* else copied, to answer 413 */
}

static enum move splice_request_body(struct h1s *s, const struct http_body_ops *out)
{
    struct h1x *x = s->x;
    if (!(s->cli.flags & CONN_RD_READY))
        return MOVE_NONE;
    ssize_t n = out->send_from_fd(&x->st, s->cli.h.fd, x->reqb.remaining);
    if (n > 0) {
        x->reqb.remaining -= (uint64_t)n;
        x->st.bytes_in += (uint64_t)n;
        x->st.req_body_bytes += (uint64_t)n;
        x->st.body_started = true;
        s->last_ms = s->w->loop.now_ms;
        CTR_ADD(h1_lctr(s)->http_spliced, (uint64_t)n);
        return MOVE_PROGRESS;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        s->cli.flags &= ~CONN_RD_READY;
        return MOVE_NONE;
    }
    if (n < 0 && errno == EINPROGRESS)
        return MOVE_NONE;
    /* the client's end or error, or no splice here: the copy path reads and says which */
    x->req_no_splice = true;
    return MOVE_PROGRESS;
}

/* Client → server: the request body, once the server connection is up (or into the
 * stream's buffer while a filter wants it whole; then from that buffer). */
enum move h1_step_request_body(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->st.hold == HOLD_WHOLE)
        return stream_held_step(&x->st);
    const struct http_body_ops *out = stream_request_body_dest(&x->st);
    if (x->req_done || !out)
        return MOVE_NONE;
    if (!send_continue(s))
        return MOVE_ERROR;
    if (h1_req_splicing(s)) {
        enum move m = splice_request_body(s, out);
        if (x->reqb.remaining) /* else its end, below */
            return m;
    }
    struct h1_error err = {0, NULL};
    size_t before = s->in ? s->in->len : 0;
    struct body_move bm = {&x->reqb,     s->in,        false, false,           &x->req_end,
                           &x->req_done, &x->st.t.req, out,   &x->st.bytes_in};
    enum move m = h1_move_body(&x->st, &bm, &err);
    if (s->in && s->in->len != before)
        x->st.body_started = true;
    if (m == MOVE_ERROR) {
        x->close_after = true;
        CTR_ADD(h1_lctr(s)->http_bad_requests, 1);
        stream_attempt_failed(&x->st, false, false); /* that server connection got part of a body */
        stream_answer(&x->st, err.status ? err.status : 400, "bad_request",
                      err.reason ? err.reason : "invalid request body");
    }
    return m;
}

/* ---- the client side: the mux operations (stream-t.h) ---- */

/* An interim head for the client: only HTTP/1.1 clients take one (100 is Strata's own to
 * send, see send_continue). */
static bool send_interim(struct h1s *s, const struct http_msg *m)
{
    if (m->status == 100 || s->x->st.t.req.version != 11)
        return true;
    struct hbuf *b = h1_buf_of(s->w, &s->out, HBUF_SIZE);
    ssize_t n = b ? h1_write_response(m, H1W_NO_BODY, 11, false, hbuf_tail(b), hbuf_room(b)) : -1;
    if (n > 0)
        b->len += (uint32_t)n;
    return true;
}

/* How the response body is framed for the client, and whether the connection closes
 * after it: a body of unknown length re-chunked for HTTP/1.1, sent until close for 1.0. */
static void decide_framing(struct h1s *s, const struct http_msg *m, bool no_body)
{
    struct h1x *x = s->x;
    if (!no_body && (m->body == HTTP_BODY_CHUNKED || m->body == HTTP_BODY_UNTIL_CLOSE)) {
        if (x->st.t.req.version == 10)
            x->close_after = true; /* a 1.0 client reads the body until we close */
        else
            x->chunk_out = true;
    }
    /* an answer before the whole request body: the rest will not be read, so the
     * connection cannot carry another request */
    if (h1_must_close(s) || !x->req_done || x->st.must_close)
        x->close_after = true;
}

/* The head for the client: HEAD, 1xx, 204 and 304 without a body (Strata's own answers:
 * only HEAD). */
static bool mux_send_head(struct http_stream *st, const struct http_msg *m)
{
    struct h1s *s = st->conn;
    struct h1x *x = s->x;
    if (m->status < 200 && m->status != 101)
        return send_interim(s, m);
    unsigned version = st->t.req.version ? st->t.req.version : 11;
    bool no_body = st->t.req.method == HTTP_M_HEAD ||
                   (!st->t.answered && (m->status == 204 || m->status == 304 || m->status < 200));
    decide_framing(s, m, no_body);
    struct hbuf *b = h1_buf_of(s->w, &s->out, HBUF_SIZE);
    if (!b)
        return false;
    if (hbuf_room(b) < b->cap / 2)
        hbuf_compact(b);
    struct http_msg *resp = &st->t.resp; /* m: the writer frames it as x->chunk_out says */
    enum http_body_kind wire = resp->body;
    if (x->chunk_out)
        resp->body = HTTP_BODY_CHUNKED;
    ssize_t n = h1_write_response(resp, no_body ? H1W_NO_BODY : H1W_AS_MSG, (uint8_t)version,
                                  x->close_after, hbuf_tail(b), hbuf_room(b));
    resp->body = wire;
    if (n < 0)
        return false;
    b->len += (uint32_t)n;
    return true;
}

static ssize_t mux_send_room(struct http_stream *st)
{
    struct h1s *s = st->conn;
    if (s->out_pipe.bytes)
        return 0; /* spliced bytes go first */
    return h1_body_room(s->w, &s->out, s->x->chunk_out);
}

static size_t mux_send_data(struct http_stream *st, const char *p, size_t n)
{
    struct h1s *s = st->conn;
    return h1_body_put(&s->out, s->x->chunk_out, p, n);
}

/* Unframed body bytes for a plain client connection go through s->out_pipe, once what
 * s->out holds before them is sent. */
static ssize_t mux_send_from_fd(struct http_stream *st, int fd, size_t max)
{
    struct h1s *s = st->conn;
    if (s->x->chunk_out || !s->cli.xprt->can_splice) {
        errno = ENOBUFS;
        return -1;
    }
    if (!h1_out_sent(s)) {
        errno = EINPROGRESS;
        return -1;
    }
    ssize_t n = spliced_in(&s->w->pipes, &s->out_pipe, fd, max);
    if (n > 0)
        CTR_ADD(h1_lctr(s)->http_spliced, (uint64_t)n);
    return n;
}

static bool mux_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    struct h1s *s = st->conn;
    return h1_body_last(s->w, &s->out, s->x->chunk_out, m);
}

static void mux_send_end(struct http_stream *st)
{
    struct h1s *s = st->conn;
    s->x->resp_done = true;
}

static void mux_abort(struct http_stream *st)
{
    h1_session_close(st->conn);
}

static void mux_rearm(struct http_stream *st)
{
    h1_arm_timer(st->conn);
}

static void mux_run(struct http_stream *st)
{
    h1_run(st->conn);
}

/* The 101 is out: the session relays both connections' bytes (h1_session.c), or, when the
 * server codec multiplexes its connection (an HTTP/2 server: RFC 8441), the client's bytes
 * through the server codec's body operations and the server's back through ours. */
static void mux_tunnel(struct http_stream *st)
{
    struct h1s *s = st->conn;
    s->x->resp_done = true;
    s->state = CS_TUNNEL;
    if (st->upc != &h1_up_ops) {
        st->tunnel = true;
        s->x->resp_done = false; /* the tunnel's bytes are the response body, to its end */
    }
}

const struct http_mux_ops h1_mux_ops = {
    .send_head = mux_send_head,
    .body = {mux_send_room, mux_send_data, mux_send_trailers, mux_send_end, mux_send_from_fd},
    .abort = mux_abort,
    .rearm = mux_rearm,
    .run = mux_run,
    .tunnel = mux_tunnel,
};
