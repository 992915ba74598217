/* h1_upstream.c — the HTTP/1 server codec of a stream (struct http_up_ops, stream-t.h):
 * the request head and body written for the server over the attempt's lease, the
 * response head parsed (interim heads passed on, an unasked switch refused), and the
 * response body decoded and handed to the client codec through the stream's mux.
 */
#include <string.h>

#include "http/h1_session-t.h"
#include "http/msg.h"
#include "http/stream.h"

/* ---- attempts ---- */

/* A new attempt: the request head for the server into a fresh uout, the response parser
 * ready. */
static bool up_start(struct http_stream *st)
{
    struct h1s *s = st->conn;
    struct h1x *x = s->x;
    h1_parser_init(&x->hp);
    h1_buf_drop(s, &x->uout);
    struct hbuf *b = h1_buf_of(s, &x->uout, h1_head_cap(s));
    if (!b)
        return false;
    ssize_t n = h1_write_request(&st->t.req, false, hbuf_tail(b), hbuf_room(b));
    if (n < 0)
        return false;
    b->len = (uint32_t)n;
    return true;
}

/* The server connection failed or closed before the response was complete. */
static void up_broken(struct h1s *s, const char *detail)
{
    struct h1x *x = s->x;
    struct hbuf *in = x->st.up ? x->st.up->in : NULL;
    if (!x->st.resp_started) {
        stream_up_broken(&x->st, detail, !in || in->len == 0);
        return;
    }
    if (x->respb.kind == HTTP_BODY_UNTIL_CLOSE)
        return; /* not broken: that is how this body ends (handled by the body step) */
    stream_up_cut(&x->st, "server_abort", detail);
}

static void up_io(struct upconn *uc, uint32_t events)
{
    struct h1s *s = uc->owner;
    conn_note_events(&uc->c, events);
    if (s->state == CS_CLOSED)
        return;
    if (uc->connecting) {
        struct up_attempt *a = &s->x->st.att;
        enum up_connect r = upstream_conn_step(s->w, a, uc, events);
        if (r == UP_CONNECT_PENDING)
            return;
        if (r == UP_CONNECT_FAILED) {
            stream_connect_failed(&s->x->st, a->err, a->why);
            h1_run(s);
            return;
        }
        stream_connected(&s->x->st);
    }
    h1_run(s);
}

/* ---- the server side's request body (http_up_ops.body) ---- */

static bool req_chunked(const struct http_stream *st)
{
    return st->t.req.body == HTTP_BODY_CHUNKED;
}

static ssize_t up_send_room(struct http_stream *st)
{
    struct h1s *s = st->conn;
    return h1_body_room(s, &s->x->uout, req_chunked(st));
}

static size_t up_send_data(struct http_stream *st, const char *p, size_t n)
{
    struct h1s *s = st->conn;
    return h1_body_put(s, &s->x->uout, req_chunked(st), p, n);
}

static bool up_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    struct h1s *s = st->conn;
    return h1_body_last(s, &s->x->uout, req_chunked(st), m);
}

static void up_send_end(struct http_stream *st)
{
    struct h1s *s = st->conn;
    s->x->req_done = true;
}

const struct http_up_ops h1_up_ops = {
    .start = up_start,
    .body = {up_send_room, up_send_data, up_send_trailers, up_send_end},
    .io = up_io,
};

/* An interim response (1xx but 101), passed on; the parser is readied for the next head. */
static void on_interim(struct h1s *s, size_t head_len)
{
    struct h1x *x = s->x;
    stream_interim(&x->st);
    hbuf_consume(x->st.up->in, (uint32_t)head_len);
    memset(&x->st.t.resp, 0, sizeof(x->st.t.resp));
    h1_parser_init(&x->hp);
}

/* The response body decoder, after the head went to the client. */
static void start_response_body(struct h1x *x)
{
    struct http_msg *resp = &x->st.t.resp;
    bool no_body = x->st.t.req.method == HTTP_M_HEAD || resp->status == 204 || resp->status == 304;
    h1_body_init(&x->respb, no_body ? HTTP_BODY_NONE : resp->body, resp->content_length);
    x->respb.response = true;
    if (x->respb.kind == HTTP_BODY_NONE ||
        (x->respb.kind == HTTP_BODY_LENGTH && resp->content_length == 0))
        x->resp_done = true;
}

/* A complete response head in the server buffer: interim answers, the stream's checks
 * (retries on status), an unasked switch refused, then the head for the client. */
static void on_response_head(struct h1s *s, size_t head_len)
{
    struct h1x *x = s->x;
    struct http_msg *resp = &x->st.t.resp;
    if (resp->status >= 100 && resp->status < 200 && resp->status != 101) {
        on_interim(s, head_len);
        return;
    }
    if (!stream_response_checks(&x->st))
        return;
    if (resp->status == 101 && !h1_switch_asked(&x->st.t.req, resp)) {
        /* no tunnel: the server speaks another protocol on that connection now, and the
         * client may have asked for a switch Strata did not forward */
        x->close_after = true;
        stream_attempt_failed(&x->st, true, true);
        stream_answer(&x->st, 502, "bad_response", "server switched protocols unasked");
        return;
    }
    x->up_keep =
        !(resp->flags & HTTP_F_CLOSE) && resp->body != HTTP_BODY_UNTIL_CLOSE && resp->status != 101;
    if (!stream_send_response(&x->st))
        return;
    hbuf_consume(x->st.up->in, (uint32_t)head_len);
    if (resp->status == 101) {
        x->tunnel = true;
        x->resp_done = true;
        s->state = CS_TUNNEL;
        return;
    }
    start_response_body(x);
}

/* Parses the response head from the server buffer. */
static enum move parse_response_head(struct h1s *s)
{
    struct h1x *x = s->x;
    struct upconn *uc = x->st.up;
    if (!uc->in || uc->in->len == 0)
        return MOVE_NONE;
    /* a response head must fit in one server buffer */
    struct h1_limits lim = {HBUF_SIZE, HBUF_SIZE, 256};
    size_t head_len = 0;
    struct h1_error err = {0, NULL};
    int r = h1_parse_response(&x->hp, hbuf_head(uc->in), uc->in->len, &lim, x->st.t.req.method,
                              &x->st.t.resp, &x->st.t.arena, &head_len, &err);
    if (r == H1_AGAIN)
        return MOVE_NONE;
    if (r == H1_ERROR) {
        CTR_ADD(x->st.t.server->st.ctr[s->w->id].http_5xx, 1);
        stream_attempt_failed(&x->st, true, true);
        stream_answer(&x->st, 502, "bad_response",
                      err.reason ? err.reason : "invalid response head");
        return MOVE_ERROR;
    }
    on_response_head(s, head_len);
    return MOVE_PROGRESS;
}

/* Server → client: the response head, then its body. The server's EOF is acted on only
 * once what it sent before is used up. */
enum move h1_step_response(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->st.t.answered && !x->resp_done)
        return stream_answer_step(&x->st);
    if (!x->st.up || x->st.up->connecting || x->resp_done)
        return MOVE_NONE;
    struct upconn *uc = x->st.up;
    enum io io = h1_read_into(s, &uc->c, &uc->in, HBUF_SIZE, x->st.resp_started, NULL);
    if (io == IO_ERR) {
        up_broken(s, "server connection reset");
        return MOVE_ERROR;
    }
    enum move m = io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
    bool eof = (uc->c.flags & CONN_RD_EOF) != 0;
    if (!x->st.resp_started) {
        enum move h = parse_response_head(s);
        if (h == MOVE_ERROR)
            return h;
        if (h == MOVE_NONE) {
            if (eof) {
                up_broken(s, "server closed the connection");
                return MOVE_ERROR;
            }
            return m;
        }
        /* an interim answer, a retry, a tunnel or a body-less answer: look again */
        if (s->x != x || !x->st.resp_started || x->resp_done || x->tunnel)
            return MOVE_PROGRESS;
        m = MOVE_PROGRESS; /* the head is out: its body follows in the same write */
    }
    struct h1_error err = {0, NULL};
    struct body_move bm = {&x->respb,     uc->in,          eof, true, &x->last_pending,
                           &x->st.t.resp, &x->st.mux->body};
    enum move b = h1_move_body(s, &bm, &err);
    if (b == MOVE_ERROR) {
        stream_up_cut(&x->st, "bad_response", err.reason ? err.reason : "invalid response body");
        return MOVE_ERROR;
    }
    if (b == MOVE_NONE && eof && !x->resp_done && (!uc->in || uc->in->len == 0)) {
        up_broken(s, "server closed the connection before the end of the body");
        return MOVE_ERROR;
    }
    return b == MOVE_PROGRESS ? MOVE_PROGRESS : m;
}

enum move h1_step_flush_server(struct h1s *s)
{
    struct h1x *x = s->x;
    if (!x->st.up || x->st.up->connecting || !x->uout)
        return MOVE_NONE;
    enum io io = h1_flush_buf(s, &x->st.up->c, &x->uout, NULL);
    if (io == IO_ERR) {
        up_broken(s, "server connection reset while sending");
        return MOVE_ERROR;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}
