/* h1_exchange.c — the HTTP/1 side of one exchange past its request head (see
 * h1_session-t.h): the client codec's mux operations (response heads, re-chunked bodies,
 * 100-continue, HEAD/204/304), the h2c upgrade rules, and the server codec (request head
 * for the server, response head parsed, bodies streamed both ways). Routing, filters,
 * answers and attempts are the stream's (stream.c).
 */
#include <errno.h>
#include <string.h>

#include "http/h1_session-t.h"
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

/* The next element of the comma list [*p, end), without its surrounding spaces and tabs;
 * false at the end of the list. Empty elements are skipped. */
static bool upgrade_next(const char **p, const char *end, struct hstr *el)
{
    while (*p < end) {
        const char *q = *p, *e = memchr(q, ',', (size_t)(end - q));
        e = e ? e : end;
        *p = e < end ? e + 1 : end;
        while (q < e && (*q == ' ' || *q == '\t'))
            q++;
        while (e > q && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > q) {
            *el = (struct hstr){q, (uint32_t)(e - q)};
            return true;
        }
    }
    return false;
}

static bool upgrade_has(struct hstr list, struct hstr proto)
{
    const char *p = list.p;
    struct hstr el;
    while (upgrade_next(&p, list.p + list.len, &el))
        if (hstr_ieq(el, proto))
            return true;
    return false;
}

/* h2c (RFC 7540 §3.2) is never forwarded: past the server's 101 the client would speak
 * HTTP/2 to the server directly, past every route and filter. h2c leaves the Upgrade list
 * (with nothing left, the request goes on as an ordinary one and the writer names no
 * upgrade in Connection), and HTTP2-Settings, h2c's connection-specific field, goes with
 * it. False when out of memory. */
static bool strip_h2c(struct http_msg *req, struct arena *a)
{
    static const struct hstr h2c = HSTR_LIT("h2c");
    http_hdr_remove(req, HSTR_LIT("HTTP2-Settings"));
    if (!(req->flags & HTTP_F_UPGRADE) || !upgrade_has(req->upgrade, h2c))
        return true;
    char *out = arena_alloc(a, (size_t)req->upgrade.len * 2);
    if (!out)
        return false;
    uint32_t n = 0;
    const char *p = req->upgrade.p;
    struct hstr el;
    while (upgrade_next(&p, req->upgrade.p + req->upgrade.len, &el)) {
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

/* A 101 switches to protocols the request asked for, as forwarded: else the server would
 * open a tunnel nobody asked for (an h2c Strata stripped, for one). RFC 9110 §15.2.2: the
 * 101 names them in its Upgrade field. */
static bool switch_asked(const struct http_msg *req, const struct http_msg *resp)
{
    if (!(req->flags & HTTP_F_UPGRADE) || !resp->upgrade.len)
        return false;
    const char *p = resp->upgrade.p;
    struct hstr el;
    while (upgrade_next(&p, resp->upgrade.p + resp->upgrade.len, &el))
        if (!upgrade_has(req->upgrade, el))
            return false;
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

/* ---- the server side (upstream codec) ---- */

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

const struct http_up_ops h1_up_ops = {
    .start = up_start,
    .io = up_io,
};

/* ---- bodies ---- */

/* The trailer fields a chunked body ended with, into m->trailers (arena copies: the
 * decoder's buffer is reused). Lines were validated by the decoder. */
static void model_trailers(struct http_msg *m, struct arena *a, const struct h1_body *dec)
{
    const char *p = dec->trailer_buf, *end = p + dec->trailer_len;
    uint32_t n = 0;
    for (const char *q = p; q < end; q++)
        n += *q == '\n';
    struct http_hdr *t = n ? arena_alloc(a, n * sizeof(*t)) : NULL;
    char *copy = n ? arena_alloc(a, dec->trailer_len) : NULL;
    if (!t || !copy)
        return;
    memcpy(copy, p, dec->trailer_len);
    m->ntrailers = 0;
    for (const char *line = copy; line < copy + dec->trailer_len && m->ntrailers < n;) {
        const char *eol = memchr(line, '\n', (size_t)(copy + dec->trailer_len - line));
        if (!eol)
            break;
        size_t len = (size_t)(eol - line) - (eol > line && eol[-1] == '\r');
        struct http_hdr *h = &t[m->ntrailers];
        if (!h1_field_line(line, len, &h->name, &h->value))
            m->ntrailers++;
        line = eol + 1;
    }
    m->trailers = t;
}

/* Decodes body bytes from src with `dec` and appends them to *dstp, re-chunked when
 * `chunk`; `eof`: the source has ended (for bodies delimited by close). Sets *done at the
 * end of the body. Stops when the destination is full (back-pressure). */
/* Runs the body hooks of the filters that ran (if any has one for this direction) on a
 * piece of body; what they give back must fit in `room`. */
static bool body_hooks(struct h1s *s, const struct h1_body *dec, const char **data, size_t *dlen,
                       bool last, size_t room, struct h1_error *err)
{
    struct h1x *x = s->x;
    bool response = dec == &x->respb;
    if (!(response ? x->st.resp_body_hooks : x->st.req_body_hooks))
        return true;
    if (filter_chain_body(&x->st.chain, x->st.nran, &x->st.t, response, data, dlen, last) ==
            FILTER_CONTINUE &&
        *dlen <= room)
        return true;
    err->status = 500;
    err->reason = "a body filter failed";
    return false;
}

/* Appends body data to dst, as one chunk when `chunk`; room was checked by the caller. */
static bool put_body(struct hbuf *dst, const char *data, size_t n, bool chunk)
{
    if (hbuf_room(dst) < n + (chunk ? CHUNK_OVERHEAD : 0))
        return false;
    if (chunk)
        dst->len += (uint32_t)h1_write_chunk_head(n, hbuf_tail(dst));
    memcpy(hbuf_tail(dst), data, n);
    dst->len += (uint32_t)n;
    if (chunk) {
        memcpy(hbuf_tail(dst), "\r\n", 2);
        dst->len += 2;
    }
    return true;
}

static enum move move_body(struct h1s *s, struct h1_body *dec, struct hbuf *src, struct hbuf **dstp,
                           bool chunk, bool eof, bool *done, bool *last_pending,
                           struct h1_error *err)
{
    enum move r = MOVE_NONE;
    for (int guard = 0; guard < 64 && !*done; guard++) {
        struct hbuf *dst = h1_buf_of(s, dstp, HBUF_SIZE);
        if (!dst)
            return MOVE_ERROR;
        if (*last_pending) {
            ssize_t n = h1_write_last_chunk(dec->trailer_buf, dec->trailer_len, hbuf_tail(dst),
                                            hbuf_room(dst));
            if (n < 0) {
                hbuf_compact(dst);
                n = h1_write_last_chunk(dec->trailer_buf, dec->trailer_len, hbuf_tail(dst),
                                        hbuf_room(dst));
            }
            if (n < 0)
                return r; /* wait for room */
            dst->len += (uint32_t)n;
            *last_pending = false;
            *done = true;
            return MOVE_PROGRESS;
        }
        if (hbuf_room(dst) < dst->cap / 4)
            hbuf_compact(dst);
        uint32_t room = hbuf_room(dst);
        uint32_t overhead = chunk ? CHUNK_OVERHEAD : 0;
        if (room <= overhead)
            return r;
        size_t avail = src ? src->len : 0;
        size_t len = avail < room - overhead ? avail : room - overhead;
        if (len == 0 && !eof && !(dec->kind == HTTP_BODY_LENGTH && dec->remaining == 0))
            return r;
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        int st = h1_body_step(dec, src ? hbuf_head(src) : "", len, eof && len == avail, &used,
                              &data, &dlen, err);
        if (st == H1B_ERROR)
            return MOVE_ERROR;
        if (st == H1B_DATA && dlen && dec == &s->x->reqb) {
            uint64_t max = s->lc->http.limits.max_request_body;
            s->x->st.req_body_bytes += dlen;
            if (max && s->x->st.req_body_bytes > max) {
                err->status = 413;
                err->reason = "request body larger than max_request_body";
                return MOVE_ERROR;
            }
        }
        if (st == H1B_DATA && dlen &&
            (!body_hooks(s, dec, &data, &dlen, false, room - overhead, err) ||
             !put_body(dst, data, dlen, chunk)))
            return MOVE_ERROR;
        if (used) {
            hbuf_consume(src, (uint32_t)used);
            r = MOVE_PROGRESS;
        }
        if (st == H1B_DONE) {
            /* the filters' last word (what they held back), before the end of the body */
            data = NULL;
            dlen = 0;
            size_t left = hbuf_room(dst) > overhead ? hbuf_room(dst) - overhead : 0;
            if (!body_hooks(s, dec, &data, &dlen, true, left, err) ||
                (dlen && !put_body(dst, data, dlen, chunk)))
                return MOVE_ERROR;
            if (dec->kind == HTTP_BODY_CHUNKED && dec->trailer_len && s->x)
                model_trailers(dec == &s->x->reqb ? &s->x->st.t.req : &s->x->st.t.resp, &s->x->st.t.arena,
                               dec);
            if (chunk)
                *last_pending = true;
            else
                *done = true;
            r = MOVE_PROGRESS;
            continue;
        }
        if (st == H1B_AGAIN)
            return r;
    }
    return r;
}

/* Client → server: the request body, once the server connection is up. */
enum move h1_step_request_body(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->req_done || !x->st.up || x->st.up->connecting)
        return MOVE_NONE;
    if (x->st.t.req.flags & HTTP_F_EXPECT_100 && !x->cont_sent) {
        x->cont_sent = true;
        if (x->st.t.req.version == 11 && (!s->in || s->in->len == 0)) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (!h1_buf_append(s, &s->out, cont, sizeof(cont) - 1))
                return MOVE_ERROR;
        }
    }
    struct h1_error err = {0, NULL};
    size_t before = s->in ? s->in->len : 0;
    enum move m = move_body(s, &x->reqb, s->in, &x->uout, x->st.t.req.body == HTTP_BODY_CHUNKED, false,
                            &x->req_done, &x->req_last_pending, &err);
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

/* Decides how the response body is framed for the client and writes the head: HEAD,
 * 1xx, 204 and 304 without a body (Strata's own answers: only HEAD), a body of unknown
 * length re-chunked for HTTP/1.1 or sent until close for HTTP/1.0. */
static bool mux_send_head(struct http_stream *st, const struct http_msg *m)
{
    struct h1s *s = st->conn;
    struct h1x *x = s->x;
    struct http_msg *resp = &st->t.resp;
    unsigned version = st->t.req.version ? st->t.req.version : 11;
    bool no_body = st->t.req.method == HTTP_M_HEAD ||
                   (!st->t.answered && (m->status == 204 || m->status == 304 || m->status < 200));
    enum http_body_kind wire = resp->body;
    if (!no_body && (wire == HTTP_BODY_CHUNKED || wire == HTTP_BODY_UNTIL_CLOSE)) {
        if (version == 10) {
            x->close_after = true; /* a 1.0 client reads the body until we close */
        } else {
            resp->body = HTTP_BODY_CHUNKED;
            x->chunk_out = true;
        }
    }
    /* an answer before the whole request body: the rest will not be read, so the
     * connection cannot carry another request */
    if (h1_must_close(s) || !x->req_done || st->must_close)
        x->close_after = true;
    struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
    if (!b)
        return false;
    if (hbuf_room(b) < b->cap / 2)
        hbuf_compact(b);
    ssize_t n = h1_write_response(resp, no_body ? H1W_NO_BODY : H1W_AS_MSG, (uint8_t)version,
                                  x->close_after, hbuf_tail(b), hbuf_room(b));
    resp->body = wire;
    if (n < 0)
        return false;
    b->len += (uint32_t)n;
    return true;
}

/* Body data for the client buffer, as one chunk when re-chunked; what fits. */
static size_t mux_send_data(struct http_stream *st, const char *p, size_t n)
{
    struct h1s *s = st->conn;
    uint32_t overhead = s->x->chunk_out ? CHUNK_OVERHEAD : 0;
    struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
    if (!b)
        return 0;
    if (hbuf_room(b) < b->cap / 2)
        hbuf_compact(b);
    if (hbuf_room(b) <= overhead)
        return 0;
    size_t take = n < hbuf_room(b) - overhead ? n : hbuf_room(b) - overhead;
    if (overhead)
        b->len += (uint32_t)h1_write_chunk_head(take, hbuf_tail(b));
    memcpy(hbuf_tail(b), p, take);
    b->len += (uint32_t)take;
    if (overhead) {
        memcpy(hbuf_tail(b), "\r\n", 2);
        b->len += 2;
    }
    return take;
}

static bool mux_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    return true;
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

const struct http_mux_ops h1_mux_ops = {
    .send_head = mux_send_head,
    .send_data = mux_send_data,
    .send_trailers = mux_send_trailers,
    .send_end = mux_send_end,
    .abort = mux_abort,
    .rearm = mux_rearm,
};

/* An interim response (1xx but 101): 100 is ours to send (already done or not wanted);
 * others go to HTTP/1.1 clients. The parser is readied for the next head. */
static void on_interim(struct h1s *s, size_t head_len)
{
    struct h1x *x = s->x;
    struct http_msg *resp = &x->st.t.resp;
    if (resp->status != 100 && x->st.t.req.version == 11) {
        struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
        ssize_t n =
            b ? h1_write_response(resp, H1W_NO_BODY, 11, false, hbuf_tail(b), hbuf_room(b)) : -1;
        if (n > 0)
            b->len += (uint32_t)n;
    }
    hbuf_consume(x->st.up->in, (uint32_t)head_len);
    memset(resp, 0, sizeof(*resp));
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
    if (resp->status == 101 && !switch_asked(&x->st.t.req, resp)) {
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
        stream_answer(&x->st, 502, "bad_response", err.reason ? err.reason : "invalid response head");
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
    enum move b = move_body(s, &x->respb, uc->in, &s->out, x->chunk_out, eof, &x->resp_done,
                            &x->last_pending, &err);
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
