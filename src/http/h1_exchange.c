/* h1_exchange.c — the HTTP/1 client codec past a request head (see h1_session-t.h): the
 * mux operations of stream-t.h (response heads framed for the client: HEAD/1xx/204/304,
 * re-chunked or close-delimited bodies, Connection; trailers from the model), 100-continue,
 * the h2c upgrade rules, the request body, and the body relay both ways. Routing, filters,
 * answers and attempts are the stream's (stream.c); the server side is h1_upstream.c.
 */
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
bool h1_switch_asked(const struct http_msg *req, const struct http_msg *resp)
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

/* ---- bodies ---- */

/* Sends the end of the body (trailers, then the end); false while there is no room. */
static bool body_end(struct http_stream *st, struct body_move *bm)
{
    if (!bm->out->send_trailers(st, bm->m))
        return false;
    *bm->last_pending = false;
    bm->out->send_end(st);
    return true;
}

/* The body ended: the filters' last word (what they held back), then the trailers into the
 * model; the end is sent next (last_pending). */
static bool body_done(struct h1s *s, struct body_move *bm, struct h1_error *err)
{
    struct http_stream *st = &s->x->st;
    const char *data = NULL;
    size_t dlen = 0;
    bool hooks = bm->response ? st->resp_body_hooks : st->req_body_hooks;
    ssize_t room = hooks ? bm->out->send_room(st) : 0;
    unsigned status = stream_body_piece(st, bm->response, &data, &dlen, true,
                                        room > 0 ? (size_t)room : 0, &err->reason);
    if (status || (dlen && bm->out->send_data(st, data, dlen) < dlen)) {
        err->status = (uint16_t)(status ? status : 500);
        return false;
    }
    if (bm->dec->kind == HTTP_BODY_CHUNKED && bm->dec->trailer_len)
        h1_body_trailers(bm->dec, bm->m, &st->t.arena);
    *bm->last_pending = true;
    return true;
}

/* One decoder step over what the destination can take now. *wait: no more input or room
 * (or the body ended). */
static enum move body_step(struct h1s *s, struct body_move *bm, struct h1_error *err, bool *wait)
{
    struct http_stream *st = &s->x->st;
    ssize_t room = bm->out->send_room(st);
    if (room < 0)
        return MOVE_ERROR;
    size_t avail = bm->src ? bm->src->len : 0;
    size_t len = avail < (size_t)room ? avail : (size_t)room;
    *wait = true;
    if (room == 0 ||
        (len == 0 && !bm->eof && !(bm->dec->kind == HTTP_BODY_LENGTH && !bm->dec->remaining)))
        return MOVE_NONE;
    size_t used = 0, dlen = 0;
    const char *data = NULL;
    int r = h1_body_step(bm->dec, bm->src ? hbuf_head(bm->src) : "", len, bm->eof && len == avail,
                         &used, &data, &dlen, err);
    if (r == H1B_ERROR)
        return MOVE_ERROR;
    if (r == H1B_DATA && dlen) {
        unsigned status =
            stream_body_piece(st, bm->response, &data, &dlen, false, (size_t)room, &err->reason);
        if (status || bm->out->send_data(st, data, dlen) < dlen) {
            err->status = (uint16_t)(status ? status : 500);
            return MOVE_ERROR;
        }
    }
    if (used)
        hbuf_consume(bm->src, (uint32_t)used);
    if (r == H1B_DONE && !body_done(s, bm, err))
        return MOVE_ERROR;
    *wait = r == H1B_AGAIN;
    return used || r == H1B_DONE ? MOVE_PROGRESS : MOVE_NONE;
}

/* Moves body data until the source or the destination runs dry, or the body is sent. */
enum move h1_move_body(struct h1s *s, struct body_move *bm, struct h1_error *err)
{
    enum move r = MOVE_NONE;
    for (int guard = 0; guard < 64; guard++) {
        if (*bm->last_pending)
            return body_end(&s->x->st, bm) ? MOVE_PROGRESS : r;
        bool wait;
        enum move m = body_step(s, bm, err, &wait);
        if (m == MOVE_ERROR)
            return m;
        if (m == MOVE_PROGRESS)
            r = m;
        if (wait)
            return r;
    }
    return r;
}

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
    return h1_buf_append(s, &s->out, cont, sizeof(cont) - 1);
}

/* Client → server: the request body, once the server connection is up. */
enum move h1_step_request_body(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->req_done || !x->st.up || x->st.up->connecting)
        return MOVE_NONE;
    if (!send_continue(s))
        return MOVE_ERROR;
    struct h1_error err = {0, NULL};
    size_t before = s->in ? s->in->len : 0;
    struct body_move bm = {&x->reqb,     s->in,           false, false, &x->req_last_pending,
                           &x->st.t.req, &x->st.upc->body};
    enum move m = h1_move_body(s, &bm, &err);
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
    struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
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
    struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
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

/* Data room in *bp (compacted when short) for a body written `chunked` or not; -1 when
 * there is no buffer. */
ssize_t h1_body_room(struct h1s *s, struct hbuf **bp, bool chunked)
{
    struct hbuf *b = h1_buf_of(s, bp, HBUF_SIZE);
    if (!b)
        return -1;
    if (hbuf_room(b) < b->cap / 4)
        hbuf_compact(b);
    uint32_t overhead = chunked ? CHUNK_OVERHEAD : 0;
    return hbuf_room(b) > overhead ? (ssize_t)(hbuf_room(b) - overhead) : 0;
}

/* Appends body data to *bp, as one chunk when `chunked`; what fits. */
size_t h1_body_put(struct h1s *s, struct hbuf **bp, bool chunked, const char *p, size_t n)
{
    struct hbuf *b = *bp; /* the caller asked h1_body_room first */
    uint32_t overhead = chunked ? CHUNK_OVERHEAD : 0;
    size_t room = b && hbuf_room(b) > overhead ? hbuf_room(b) - overhead : 0;
    size_t take = n < room ? n : room;
    if (take == 0)
        return 0;
    if (chunked)
        b->len += (uint32_t)h1_write_chunk_head(take, hbuf_tail(b));
    memcpy(hbuf_tail(b), p, take);
    b->len += (uint32_t)take;
    if (chunked) {
        memcpy(hbuf_tail(b), "\r\n", 2);
        b->len += 2;
    }
    return take;
}

/* The last chunk with m's trailers into *bp when `chunked` (else nothing: a body sent
 * with a length or until close has no trailers); false while it does not fit. */
bool h1_body_last(struct h1s *s, struct hbuf **bp, bool chunked, const struct http_msg *m)
{
    if (!chunked)
        return true;
    struct hbuf *b = h1_buf_of(s, bp, HBUF_SIZE);
    if (!b)
        return false;
    ssize_t n = h1_write_last_chunk(m, hbuf_tail(b), hbuf_room(b));
    if (n < 0) {
        hbuf_compact(b);
        n = h1_write_last_chunk(m, hbuf_tail(b), hbuf_room(b));
    }
    if (n < 0)
        return false;
    b->len += (uint32_t)n;
    return true;
}

static ssize_t mux_send_room(struct http_stream *st)
{
    struct h1s *s = st->conn;
    return h1_body_room(s, &s->out, s->x->chunk_out);
}

static size_t mux_send_data(struct http_stream *st, const char *p, size_t n)
{
    struct h1s *s = st->conn;
    return h1_body_put(s, &s->out, s->x->chunk_out, p, n);
}

static bool mux_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    struct h1s *s = st->conn;
    return h1_body_last(s, &s->out, s->x->chunk_out, m);
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
    .body = {mux_send_room, mux_send_data, mux_send_trailers, mux_send_end},
    .abort = mux_abort,
    .rearm = mux_rearm,
};
