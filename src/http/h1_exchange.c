/* h1_exchange.c — one HTTP exchange past its request head (see h1_session-t.h): the
 * listener's and the route's filters, the router, Strata's own answers, server attempts
 * over pooled or new connections with retries, bodies streamed both ways (re-chunked when
 * chunked), and the response head for the client.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http/filter.h"
#include "http/h1_session-t.h"
#include "http/msg.h"
#include "http/router.h"

static void up_attempt(struct h1s *s);
static uint32_t max_tries(const struct h1x *x);

void h1_server_release(struct h1x *x)
{
    upstream_release(&x->st.att);
}

/* Gives the current server connection up: its lease ends cleanly when `keep` (the
 * connection may serve another request), else the connection is closed. */
void h1_up_release(struct h1s *s, bool keep)
{
    struct h1x *x = s->x;
    if (!x->up)
        return;
    upstream_lease_end(s->w, x->up, keep);
    x->up = NULL;
}

/* ---- answers made by Strata ---- */

void h1_count_status(struct h1s *s, unsigned status)
{
    if (status >= 100 && status < 600)
        CTR_ADD(h1_lctr(s)->http_responses[status / 100 - 1], 1);
}

/* Response hooks of the filters that ran, last first. */
static enum filter_verdict run_response_filters(struct h1s *s)
{
    struct h1x *x = s->x;
    for (uint32_t i = x->st.nran; i-- > 0;) {
        const struct filter_conf *fc = filter_chain_at(&x->st.chain, i);
        if (fc->ops->on_response && fc->ops->on_response(&x->st.t, fc->conf) == FILTER_ERROR)
            return FILTER_ERROR;
    }
    if (x->st.sticky_ran && filter_sticky.on_response(&x->st.t, NULL) == FILTER_ERROR)
        return FILTER_ERROR;
    return FILTER_CONTINUE;
}

/* The client connection must close after this exchange: the client asked, the worker
 * drains, or the connection served its quota of requests. */
bool h1_must_close(const struct h1s *s)
{
    const struct http_msg *req = &s->x->st.t.req;
    uint32_t quota = s->lc->http.max_requests_per_conn;
    return (req->flags & HTTP_F_CLOSE) || s->w->applied_cmd != WORKER_RUN ||
           (quota && s->requests >= quota);
}

/* Moves what fits of the answer's body (up to 64 KiB, in the arena) into the client
 * buffer; the answer is done when all of it is there. */
static enum move fill_answer(struct h1s *s)
{
    struct h1x *x = s->x;
    struct hstr body = x->st.t.answer_body;
    if (x->st.answer_left) {
        struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
        if (!b)
            return MOVE_NONE;
        if (hbuf_room(b) < b->cap / 2)
            hbuf_compact(b);
        uint32_t n = x->st.answer_left < hbuf_room(b) ? x->st.answer_left : hbuf_room(b);
        if (n == 0)
            return MOVE_NONE;
        memcpy(hbuf_tail(b), body.p + body.len - x->st.answer_left, n);
        b->len += n;
        x->st.answer_left -= n;
    }
    x->resp_done = x->st.answer_left == 0;
    return MOVE_PROGRESS;
}

/* Writes t->resp (an answer: body in t->answer_body) for the client. */
static void send_answer(struct h1s *s)
{
    struct h1x *x = s->x;
    struct http_txn *t = &x->st.t;
    bool head = t->req.method == HTTP_M_HEAD;
    if (!x->req_done || h1_must_close(s))
        x->close_after = true; /* an unread body would be taken for the next request */
    if (run_response_filters(s) == FILTER_ERROR)
        x->close_after = true;
    struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
    ssize_t n = b ? h1_write_response(&t->resp, head ? H1W_NO_BODY : H1W_AS_MSG,
                                      t->req.version ? t->req.version : 11, x->close_after,
                                      hbuf_tail(b), hbuf_room(b))
                  : -1;
    if (n < 0) {
        x->st.end = "internal_error";
        h1_session_close(s);
        return;
    }
    b->len += (uint32_t)n;
    x->st.answer_left = head ? 0 : t->answer_body.len;
    x->st.status = t->resp.status;
    x->st.resp_started = true;
    fill_answer(s);
    h1_count_status(s, x->st.status);
    h1_up_release(s, false);
    h1_server_release(x);
}

/* Answers `status` with a short text body naming the reason. */
void h1_answer(struct h1s *s, unsigned status, const char *end, const char *detail)
{
    struct h1x *x = s->x;
    if (x->st.resp_started) {
        /* too late for an answer: cut the connection so the client sees it incomplete */
        x->st.end = end;
        x->st.detail = detail;
        h1_session_close(s);
        return;
    }
    char body[256];
    int n = snprintf(body, sizeof(body), "%u %s%s%s\n", status, http_reason(status),
                     detail ? ": " : "", detail ? detail : "");
    memset(&x->st.t.resp, 0, sizeof(x->st.t.resp));
    x->st.end = end;
    x->st.detail = detail;
    if (txn_answer(&x->st.t, status, "text/plain; charset=utf-8", body, (size_t)n) < 0) {
        h1_session_close(s);
        return;
    }
    x->st.t.answered = true;
    /* the request could not be read whole or as meant: nothing after it can be trusted */
    if (status != 404 && status < 500)
        x->close_after = true;
    send_answer(s);
}

/* ---- routing ---- */

/* Runs the on_request hooks of fcs[0..n), counting them in x->st.nran (their response hooks
 * run later, in reverse). */
static enum filter_verdict run_request_filters(struct h1s *s, const struct filter_conf *fcs,
                                               uint32_t n)
{
    struct h1x *x = s->x;
    for (uint32_t i = 0; i < n; i++) {
        x->st.nran++;
        if (!fcs[i].ops->on_request)
            continue;
        enum filter_verdict v = fcs[i].ops->on_request(&x->st.t, fcs[i].conf);
        if (v != FILTER_CONTINUE)
            return v;
    }
    return FILTER_CONTINUE;
}

/* The key hashing balancers use for this request (backend `hash:`). */
static void set_hash_key(struct h1x *x)
{
    struct backend *b = x->st.t.backend;
    struct hstr key = {NULL, 0};
    switch (b->hash_on) {
    case HASH_HEADER:
        key = http_hdr_get(&x->st.t.req, hstr_c(b->hash_name));
        break;
    case HASH_COOKIE:
        key = http_cookie_get(&x->st.t.req, hstr_c(b->hash_name));
        break;
    case HASH_PATH:
        key = x->st.t.req.path;
        break;
    case HASH_SOURCE:
        break;
    }
    x->st.att.req.key = key.p;
    x->st.att.req.keylen = key.len;
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
        h1_answer(s, 500, "internal_error", "out of memory");
        return;
    }
    struct http_txn *t = &x->st.t;
    const struct http_listener_conf *hc = &s->lc->http;
    x->st.chain = (struct filter_chain){hc->filters, hc->nfilters, NULL, 0};
    enum filter_verdict v = run_request_filters(s, hc->filters, hc->nfilters);
    if (v == FILTER_CONTINUE) {
        t->route = router_match(hc, &t->req, t->conn);
        if (!t->route) {
            h1_answer(s, 404, "no_route", "no route matches this request");
            return;
        }
        x->st.chain.second = t->route->filters;
        x->st.chain.nsecond = t->route->nfilters;
        v = run_request_filters(s, t->route->filters, t->route->nfilters);
    }
    if (v == FILTER_ANSWER) {
        t->answered = true;
        x->st.end = "answered";
        send_answer(s);
        return;
    }
    if (v == FILTER_ERROR || t->route->action == ROUTE_ANSWER) {
        h1_answer(s, 500, "internal_error", "a filter failed");
        return;
    }
    t->backend = route_pick_backend(t->route, t->rand);
    if (t->backend->sticky.enabled) {
        x->st.sticky_ran = true;
        if (filter_sticky.on_request(t, NULL) == FILTER_ERROR) {
            h1_answer(s, 500, "internal_error", "a filter failed");
            return;
        }
    }
    x->st.req_body_hooks = filter_chain_has_body_hooks(&x->st.chain, x->st.nran, false);
    upstream_attempt_init(&x->st.att, t->backend, max_tries(x), &t->client);
    set_hash_key(x);
    up_attempt(s);
}

/* ---- the server side ---- */

static uint32_t max_tries(const struct h1x *x)
{
    uint32_t n = x->st.t.route ? x->st.t.route->retry.tries : 1;
    return n ? n : 1;
}

static bool idempotent(const struct h1x *x)
{
    return http_method_idempotent(x->st.t.req.method);
}

static void up_io(struct upconn *uc, uint32_t events);

/* Writes the request head for the server into a fresh uout. */
static bool stage_request_head(struct h1s *s)
{
    struct h1x *x = s->x;
    h1_buf_drop(s, &x->uout);
    struct hbuf *b = h1_buf_of(s, &x->uout, h1_head_cap(s));
    if (!b)
        return false;
    ssize_t n = h1_write_request(&x->st.t.req, false, hbuf_tail(b), hbuf_room(b));
    if (n < 0)
        return false;
    b->len = (uint32_t)n;
    return true;
}

/* Ends the current attempt: its connection closed, its server unit given back. When the
 * server is at fault, a passive-check failure is booked (`report`) and the server is left
 * out of the next pick. */
void h1_attempt_failed(struct h1s *s, bool server_fault, bool report)
{
    struct h1x *x = s->x;
    if (server_fault)
        upstream_fault(&x->st.att, s->w, report);
    h1_up_release(s, false);
    h1_server_release(x);
}

/* One more attempt when the policy allows it; else answers `status`. `nothing_sent`:
 * the server cannot have seen the request (connect failed), so any method may retry. */
void h1_retry_or_answer(struct h1s *s, bool nothing_sent, bool allowed, unsigned status,
                        const char *end, const char *detail)
{
    struct h1x *x = s->x;
    bool replayable = !x->st.body_started && (nothing_sent || (allowed && idempotent(x)));
    x->st.end = end;
    x->st.detail = detail;
    if (replayable && !upstream_exhausted(&x->st.att)) {
        CTR_ADD(h1_lctr(s)->http_retries, 1);
        up_attempt(s);
        return;
    }
    h1_answer(s, status, end, detail);
}

/* The connect (or the transport's handshake) of the current attempt failed: booked by the
 * upstream layer; the request is retried on another server while the policy allows (any
 * method: the server saw nothing), else answered. */
static void connect_failed(struct h1s *s, int err, const char *why)
{
    struct h1x *x = s->x;
    enum up_next next = upstream_failed(&x->st.att, s->w, err, why);
    h1_up_release(s, false);
    if (next == UP_SHORTAGE) {
        h1_answer(s, 502, "connect_failed", "out of local resources");
        return;
    }
    bool timeout = err == ETIMEDOUT;
    if (!why)
        why = timeout ? "server connect timed out" : "server connection failed";
    h1_retry_or_answer(s, true, next == UP_TRY_NEXT, timeout ? 504 : 502, "connect_failed", why);
}

void h1_connect_failed(struct h1s *s, int err)
{
    connect_failed(s, err, NULL);
}

static void up_connected(struct h1s *s)
{
    struct h1x *x = s->x;
    uint64_t now = h1_now_us();
    x->st.connect_us = (int64_t)(now - x->st.connected_us);
    x->st.connected_us = now;
}

/* One attempt: a server picked and reserved (the sticky one first), the head staged, and
 * a lease on a pooled connection to it or a new one. */
static void up_attempt(struct h1s *s)
{
    struct h1x *x = s->x;
    struct server *srv = upstream_pick(&x->st.att, s->w, x->st.t.sticky);
    if (!srv) {
        /* the budget spent, or the last connect failed with no server left to try: 502
         * as the relay's connect_failed; nothing eligible at all: 503 */
        bool tried = x->st.att.tries > 0;
        bool failed = upstream_exhausted(&x->st.att) || x->st.att.err;
        h1_answer(s, failed ? 502 : 503, tried ? x->st.end : "no_server",
                  tried ? x->st.detail : "no server available");
        return;
    }
    x->st.t.server = srv;
    /* a new attempt: how the exchange ends is its to say (a failed one sets it again);
     * the failures before it are counted in `att.tries` */
    x->st.end = "ok";
    x->st.detail = NULL;
    x->st.attempt_ms = s->w->loop.now_ms;
    if (!stage_request_head(s)) {
        h1_answer(s, 500, "internal_error", "request head too large after rewriting");
        return;
    }
    CTR_ADD(srv->st.ctr[s->w->id].http_requests, 1);
    uint64_t start = h1_now_us();
    bool reused;
    x->up = upstream_acquire(s->w, &x->st.att, s, up_io, x->st.fresh_only, &reused);
    x->st.reused = reused;
    x->st.fresh_only = false;
    if (!x->up) {
        connect_failed(s, x->st.att.err, x->st.att.why);
        return;
    }
    if (reused) {
        CTR_ADD(srv->st.ctr[s->w->id].http_reused, 1);
    } else {
        x->st.connected_us = start;
        if (!x->up->connecting)
            up_connected(s);
    }
    h1_arm_timer(s);
}

/* The server connection failed or closed before the response was complete. */
static void up_broken(struct h1s *s, const char *detail)
{
    struct h1x *x = s->x;
    struct hbuf *in = x->up ? x->up->in : NULL;
    bool nothing_back = !x->st.resp_started && (!in || in->len == 0);
    if (x->st.resp_started) {
        if (x->respb.kind == HTTP_BODY_UNTIL_CLOSE)
            return; /* not broken: that is how this body ends (handled by the body step) */
        x->st.end = "server_abort";
        x->st.detail = detail;
        upstream_report(x->st.t.server, s->w, false);
        h1_session_close(s);
        return;
    }
    bool was_reused = x->st.reused;
    h1_attempt_failed(s, !was_reused, true);
    if (nothing_back && was_reused) {
        /* a kept-alive connection the server had closed: not the server's fault, and the
         * pool's doing, so the new connection it takes does not count against `retry.tries`
         * (once per request) */
        x->st.fresh_only = true;
        if (!x->st.stale_retried && x->st.att.tries) {
            x->st.stale_retried = true;
            upstream_refund_try(&x->st.att);
        }
        h1_retry_or_answer(s, false, true, 502, "server_reset", detail);
        return;
    }
    bool allowed = nothing_back && (x->st.t.route->retry.on & RETRY_ON_RESET);
    h1_retry_or_answer(s, false, allowed, 502, nothing_back ? "server_reset" : "bad_response",
                       nothing_back ? detail : "incomplete response head");
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
            connect_failed(s, a->err, a->why);
            h1_run(s);
            return;
        }
        up_connected(s);
    }
    h1_run(s);
}

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
    if (x->req_done || !x->up || x->up->connecting)
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
        h1_attempt_failed(s, false, false); /* that server connection got part of a body */
        h1_answer(s, err.status ? err.status : 400, "bad_request",
                  err.reason ? err.reason : "invalid request body");
    }
    return m;
}

/* Decides how the response body is framed for the client and writes the head. */
static bool write_response_head(struct h1s *s)
{
    struct h1x *x = s->x;
    struct http_msg *req = &x->st.t.req, *resp = &x->st.t.resp;
    bool head = req->method == HTTP_M_HEAD;
    bool no_body = head || resp->status == 204 || resp->status == 304 || resp->status < 200;
    enum http_body_kind wire = resp->body;
    x->chunk_out = false;
    if (!no_body && (wire == HTTP_BODY_CHUNKED || wire == HTTP_BODY_UNTIL_CLOSE)) {
        if (req->version == 10) {
            x->close_after = true; /* a 1.0 client reads the body until we close */
        } else {
            resp->body = HTTP_BODY_CHUNKED;
            x->chunk_out = true;
        }
    }
    /* an answer before the whole request body: the rest will not be read, so the
     * connection cannot carry another request */
    if (h1_must_close(s) || !x->req_done)
        x->close_after = true;
    struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
    if (!b)
        return false;
    if (hbuf_room(b) < b->cap / 2)
        hbuf_compact(b);
    ssize_t n = h1_write_response(resp, no_body ? H1W_NO_BODY : H1W_AS_MSG, req->version,
                                  x->close_after, hbuf_tail(b), hbuf_room(b));
    resp->body = wire;
    if (n < 0)
        return false;
    b->len += (uint32_t)n;
    return true;
}

/* A complete response head in the server buffer: interim answers, retries on status,
 * response filters, then the head for the client. */
static void on_response_head(struct h1s *s, size_t head_len)
{
    struct h1x *x = s->x;
    struct http_msg *resp = &x->st.t.resp;
    struct server *srv = x->st.t.server;
    if (resp->status >= 100 && resp->status < 200 && resp->status != 101) {
        /* interim: 100 is ours to send (already done or not wanted); others go to 1.1
         * clients */
        if (resp->status != 100 && x->st.t.req.version == 11) {
            struct hbuf *b = h1_buf_of(s, &s->out, HBUF_SIZE);
            ssize_t n =
                b ? h1_write_response(resp, H1W_NO_BODY, 11, false, hbuf_tail(b), hbuf_room(b))
                  : -1;
            if (n > 0)
                b->len += (uint32_t)n;
        }
        hbuf_consume(x->up->in, (uint32_t)head_len);
        memset(resp, 0, sizeof(*resp));
        h1_parser_init(&x->hp);
        return;
    }
    if (!x->st.first_byte_us)
        x->st.first_byte_us = h1_now_us();
    if (resp->status >= 500) {
        CTR_ADD(srv->st.ctr[s->w->id].http_5xx, 1);
        upstream_report(srv, s->w, !srv->backend->passive.http_5xx);
        uint32_t on = x->st.t.route->retry.on;
        bool allowed = (resp->status == 502 && (on & RETRY_ON_502)) ||
                       (resp->status == 503 && (on & RETRY_ON_503)) ||
                       (resp->status == 504 && (on & RETRY_ON_504));
        if (allowed && idempotent(x) && !x->st.body_started && !upstream_exhausted(&x->st.att)) {
            h1_attempt_failed(s, true, false); /* booked above */
            memset(resp, 0, sizeof(*resp));
            h1_parser_init(&x->hp);
            CTR_ADD(h1_lctr(s)->http_retries, 1);
            up_attempt(s);
            return;
        }
    } else {
        upstream_report(srv, s->w, true);
    }
    if (resp->status == 101 && !switch_asked(&x->st.t.req, resp)) {
        /* no tunnel: the server speaks another protocol on that connection now, and the
         * client may have asked for a switch Strata did not forward */
        x->close_after = true;
        h1_attempt_failed(s, true, true);
        h1_answer(s, 502, "bad_response", "server switched protocols unasked");
        return;
    }
    x->up_keep =
        !(resp->flags & HTTP_F_CLOSE) && resp->body != HTTP_BODY_UNTIL_CLOSE && resp->status != 101;
    x->st.resp_body_hooks = filter_chain_has_body_hooks(&x->st.chain, x->st.nran, true);
    if (run_response_filters(s) == FILTER_ERROR || !write_response_head(s)) {
        h1_answer(s, 502, "bad_response", "response head too large");
        return;
    }
    hbuf_consume(x->up->in, (uint32_t)head_len);
    x->st.status = resp->status;
    x->st.resp_started = true;
    h1_count_status(s, resp->status);
    if (resp->status == 101) {
        x->tunnel = true;
        x->resp_done = true;
        s->state = CS_TUNNEL;
        return;
    }
    bool no_body = x->st.t.req.method == HTTP_M_HEAD || resp->status == 204 || resp->status == 304;
    h1_body_init(&x->respb, no_body ? HTTP_BODY_NONE : resp->body, resp->content_length);
    x->respb.response = true;
    if (x->respb.kind == HTTP_BODY_NONE ||
        (x->respb.kind == HTTP_BODY_LENGTH && resp->content_length == 0))
        x->resp_done = true;
}

/* Parses the response head from the server buffer. */
static enum move parse_response_head(struct h1s *s)
{
    struct h1x *x = s->x;
    struct upconn *uc = x->up;
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
        h1_attempt_failed(s, true, true);
        h1_answer(s, 502, "bad_response", err.reason ? err.reason : "invalid response head");
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
        return fill_answer(s);
    if (!x->up || x->up->connecting || x->resp_done)
        return MOVE_NONE;
    struct upconn *uc = x->up;
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
        x->st.end = "bad_response";
        x->st.detail = err.reason ? err.reason : "invalid response body";
        upstream_report(x->st.t.server, s->w, false);
        h1_session_close(s);
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
    if (!x->up || x->up->connecting || !x->uout)
        return MOVE_NONE;
    enum io io = h1_flush_buf(s, &x->up->c, &x->uout, NULL);
    if (io == IO_ERR) {
        up_broken(s, "server connection reset while sending");
        return MOVE_ERROR;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}
