/* stream.c — see stream.h. Nothing here knows a wire format: heads and bodies go to the
 * client through st->mux, requests to the server through st->upc.
 */
#include "http/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/time.h"
#include "ev/worker.h"
#include "http/access_log.h"
#include "http/error_page.h"
#include "http/grpc.h"
#include "http/h1_upstream.h"
#include "http/h2_upstream.h"
#include "http/msg.h"
#include "http/request_analytics.h"
#include "http/router.h"
#include "http/stream_stats.h"
#include "stats/geo.h"
#include "upstream/pool.h"

static void attempt(struct http_stream *st);
static void filters_end(struct http_stream *st);

uint64_t stream_now_us(void)
{
    return mono_us();
}

struct listener_counters *stream_lctr(const struct http_stream *st)
{
    return &st->lc->st.ctr[st->w->id];
}

static void count_status(struct http_stream *st, unsigned status)
{
    if (status >= 100 && status < 600 && !st->uncounted)
        CTR_ADD(stream_lctr(st)->http_responses[status / 100 - 1], 1);
}

void stream_server_release(struct http_stream *st)
{
    upstream_release(&st->att);
}

void stream_up_release(struct http_stream *st, bool keep)
{
    if (!st->up)
        return;
    st->upc->release(st, keep);
    st->up = NULL;
}

void stream_free(struct http_stream *st)
{
    filters_end(st);
    stream_up_release(st, false);
    stream_server_release(st);
    if (st->upx)
        st->upc->free(st);
    free(st->held);
    st->held = NULL;
    st->hold = HOLD_NONE;
    free(st->resp_held);
    st->resp_held = NULL;
    st->resp_hold = RHOLD_NONE;
}

/* ---- filters ---- */

/* Runs the on_request hooks of the chain's filters from st->nran on, counting them in
 * st->nran (their response hooks run later, in reverse; a filter that waits resumes the
 * chain after itself). */
static enum filter_verdict run_request_filters(struct http_stream *st)
{
    while (st->nran < st->chain.nfirst + st->chain.nsecond) {
        const struct filter_conf *fc = filter_chain_at(&st->chain, st->nran++);
        if (!fc->ops->on_request)
            continue;
        enum filter_verdict v = fc->ops->on_request(&st->t, fc->conf);
        if (v != FILTER_CONTINUE)
            return v;
    }
    return FILTER_CONTINUE;
}

/* The on_end hooks of the filters that ran (once). */
static void filters_end(struct http_stream *st)
{
    if (st->filters_ended)
        return;
    st->filters_ended = true;
    st->waiting = false;
    for (uint32_t i = 0; i < st->nran; i++) {
        const struct filter_conf *fc = filter_chain_at(&st->chain, i);
        if (fc->ops->on_end)
            fc->ops->on_end(&st->t, fc->conf);
    }
}

/* The on_request_buffered hooks of the filters that ran, with the whole body in t->body. */
static enum filter_verdict run_buffered_filters(struct http_stream *st)
{
    st->t.body = (struct hstr){st->held ? st->held : "", (uint32_t)st->held_len};
    for (uint32_t i = 0; i < st->nran; i++) {
        const struct filter_conf *fc = filter_chain_at(&st->chain, i);
        enum filter_verdict v =
            fc->ops->on_request_buffered ? fc->ops->on_request_buffered(&st->t, fc->conf)
                                         : FILTER_CONTINUE;
        if (v != FILTER_CONTINUE)
            return v == FILTER_WAIT ? FILTER_ERROR : v; /* not a place to wait */
    }
    return FILTER_CONTINUE;
}

/* Response hooks of the filters that ran, last first. */
static enum filter_verdict run_response_filters(struct http_stream *st)
{
    for (uint32_t i = st->nran; i-- > 0;) {
        const struct filter_conf *fc = filter_chain_at(&st->chain, i);
        if (fc->ops->on_response && fc->ops->on_response(&st->t, fc->conf) == FILTER_ERROR)
            return FILTER_ERROR;
    }
    if (st->sticky_ran && filter_sticky.on_response(&st->t, NULL) == FILTER_ERROR)
        return FILTER_ERROR;
    return FILTER_CONTINUE;
}

/* ---- answers made by Strata ---- */

enum move stream_answer_step(struct http_stream *st)
{
    struct hstr body = st->t.answer_body;
    const struct http_body_ops *out = &st->mux->body;
    if (st->answer_left) {
        ssize_t room = out->send_room(st);
        size_t n = room > 0 ? (size_t)room : 0;
        n = out->send_data(st, body.p + body.len - st->answer_left,
                           n < st->answer_left ? n : st->answer_left);
        if (n == 0)
            return MOVE_NONE;
        st->answer_left -= (uint32_t)n;
    }
    /* a released held response may have trailers (answers made by Strata have none) */
    if (st->answer_left == 0 && (!st->t.resp.ntrailers || out->send_trailers(st, &st->t.resp)))
        out->send_end(st);
    return MOVE_PROGRESS;
}

/* Sends t->resp (an answer: body in t->answer_body) to the client. */
static void send_answer(struct http_stream *st)
{
    struct http_txn *t = &st->t;
    if (run_response_filters(st) == FILTER_ERROR)
        st->must_close = true; /* the answer goes out as it is; nothing follows */
    if (!st->mux->send_head(st, &t->resp)) {
        st->end = "internal_error";
        st->mux->abort(st);
        return;
    }
    st->answer_left = t->req.method == HTTP_M_HEAD ? 0 : t->answer_body.len;
    st->status = t->resp.status;
    st->resp_started = true;
    stream_answer_step(st);
    count_status(st, st->status);
    stream_up_release(st, false);
    stream_server_release(st);
}

void stream_answer(struct http_stream *st, unsigned status, const char *end, const char *detail)
{
    st->end = end;
    st->detail = detail;
    if (st->resp_started) {
        /* too late for an answer: cut the stream so the client sees it incomplete */
        st->mux->abort(st);
        return;
    }
    char body[256];
    int n = snprintf(body, sizeof(body), "%u %s%s%s\n", status, http_reason(status),
                     detail ? ": " : "", detail ? detail : "");
    memset(&st->t.resp, 0, sizeof(st->t.resp));
    int r = st->t.grpc ? grpc_answer(&st->t, status, detail ? detail : http_reason(status))
                       : txn_answer(&st->t, status, "text/plain; charset=utf-8", body, (size_t)n);
    if (r == 0 && !st->t.grpc)
        r = error_page_apply(&st->t, status, detail);
    if (r < 0) {
        st->mux->abort(st);
        return;
    }
    st->t.answered = true;
    /* the request could not be read whole or as meant: nothing after it can be trusted */
    if (status != 404 && status < 500)
        st->must_close = true;
    send_answer(st);
}

/* ---- routing ---- */

/* The key hashing balancers use for this request (backend `hash:`). */
static void set_hash_key(struct http_stream *st)
{
    struct backend *b = st->t.backend;
    struct hstr key = {NULL, 0};
    switch (b->hash_on) {
    case HASH_HEADER:
        key = http_hdr_get(&st->t.req, hstr_c(b->hash_name));
        break;
    case HASH_COOKIE:
        key = http_cookie_get(&st->t.req, hstr_c(b->hash_name));
        break;
    case HASH_PATH:
        key = st->t.req.path;
        break;
    case HASH_SOURCE:
        break;
    }
    st->att.req.key = key.p;
    st->att.req.keylen = key.len;
}

static uint32_t max_tries(const struct http_stream *st)
{
    uint32_t n = st->t.route ? st->t.route->retry.tries : 1;
    return n ? n : 1;
}

/* The listener's filters, the router, the route's filters, from where the chain stopped
 * (a filter that waited resumes it); *v says how they ended. False when no route matched
 * (answered 404). */
static bool route_and_filter(struct http_stream *st, enum filter_verdict *v)
{
    struct http_txn *t = &st->t;
    const struct http_listener_conf *hc = &st->lc->http;
    *v = run_request_filters(st);
    if (*v != FILTER_CONTINUE || t->route)
        return true;
    t->route = router_match_geo(hc, &t->req, t->conn, &t->geo);
    if (!t->route) {
        stream_answer(st, 404, "no_route", "no route matches this request");
        return false;
    }
    st->chain.second = t->route->filters;
    st->chain.nsecond = t->route->nfilters;
    *v = run_request_filters(st);
    return true;
}

/* The backend's sticky filter; false when it failed (answered 500). */
static bool run_sticky(struct http_stream *st)
{
    if (!st->t.backend->sticky.enabled)
        return true;
    st->sticky_ran = true;
    if (filter_sticky.on_request(&st->t, NULL) != FILTER_ERROR)
        return true;
    stream_answer(st, 500, "internal_error", "a filter failed");
    return false;
}

/* A gRPC call: its deadline (grpc-timeout) bounds the whole exchange. */
static void grpc_call(struct http_stream *st)
{
    uint64_t timeout = grpc_timeout_ms(&st->t.req);
    st->t.grpc = true;
    if (timeout)
        st->deadline_ms = st->start_us / 1000 + timeout;
}

/* A filter answered (or failed) instead of the request going on. */
static void filters_answered(struct http_stream *st, enum filter_verdict v)
{
    struct http_txn *t = &st->t;
    if (v != FILTER_ANSWER) {
        stream_answer(st, 500, "internal_error", "a filter failed");
        return;
    }
    t->answered = true;
    st->end = "answered";
    st->detail = t->filter_detail;
    /* a gRPC client reads a status, not a page: a filter's answer becomes one */
    if (t->grpc && !grpc_content_type(&t->resp) &&
        grpc_answer(t, t->resp.status, http_reason(t->resp.status)) < 0) {
        stream_answer(st, 500, "internal_error", "out of memory");
        return;
    }
    send_answer(st);
}

/* A filter waits (FILTER_WAIT): the codec's timer now holds the wait's deadline. */
static void filter_waits(struct http_stream *st)
{
    uint32_t ms = st->t.wait_ms ? st->t.wait_ms : st->lc->http.timeouts.response_ms;
    st->waiting = true;
    st->wait_until_ms = st->w->loop.now_ms + ms;
    st->mux->rearm(st);
}

/* The body a filter wants whole is read first (HOLD_COLLECTING: the client codec passes it
 * to stream_hold_ops); a body known to be too large is refused at once. */
static bool hold_body(struct http_stream *st)
{
    const struct http_msg *req = &st->t.req;
    uint64_t max = st->lc->http.limits.max_body_buffered;
    if (!st->t.body_wanted || http_msg_bodiless(req))
        return false;
    if (req->body == HTTP_BODY_LENGTH && req->content_length > max) {
        CTR_ADD(stream_lctr(st)->http_bad_requests, 1);
        stream_answer(st, 413, "bad_request", "request body larger than max_body_buffered");
        return true;
    }
    st->hold = HOLD_COLLECTING;
    st->mux->rearm(st);
    return true;
}

/* The request goes on past its filters: the backend, then (the whole body first when a
 * filter wants it) the first attempt. */
static void proxy(struct http_stream *st)
{
    struct http_txn *t = &st->t;
    if (t->route->action == ROUTE_ANSWER) {
        stream_answer(st, 500, "internal_error", "a filter failed");
        return;
    }
    t->backend = route_pick_backend(t->route, t->rand);
    if (!run_sticky(st))
        return;
    st->req_body_hooks = filter_chain_has_body_hooks(&st->chain, st->nran, false);
    upstream_attempt_init(&st->att, t->backend, max_tries(st), &t->client);
    set_hash_key(st);
    if (hold_body(st))
        return;
    if (t->body_wanted) { /* no body: the hooks see an empty one */
        enum filter_verdict v = run_buffered_filters(st);
        if (v != FILTER_CONTINUE) {
            filters_answered(st, v);
            return;
        }
    }
    attempt(st);
}

/* The request filters (from where they stopped), then on to the server. */
static void go_on(struct http_stream *st)
{
    enum filter_verdict v;
    if (!route_and_filter(st, &v))
        return;
    if (v == FILTER_WAIT)
        filter_waits(st);
    else if (v != FILTER_CONTINUE)
        filters_answered(st, v);
    else
        proxy(st);
}

void stream_route(struct http_stream *st)
{
    const struct http_listener_conf *hc = &st->lc->http;
    if (grpc_content_type(&st->t.req))
        grpc_call(st);
    geo_lookup(st->w->cfg->analytics.geo, &st->t.client, &st->t.geo);
    st->chain = (struct filter_chain){hc->filters, hc->nfilters, NULL, 0};
    go_on(st);
}

void filter_resume(struct http_txn *t, enum filter_verdict v)
{
    struct http_stream *st = container_of(t, struct http_stream, t);
    BUG_ON(!st->waiting);
    st->waiting = false;
    if (v == FILTER_CONTINUE)
        go_on(st);
    else
        filters_answered(st, v == FILTER_WAIT ? FILTER_ERROR : v);
    st->mux->rearm(st);
    st->mux->run(st);
}

void stream_send(struct http_stream *st)
{
    upstream_attempt_init(&st->att, st->t.backend, max_tries(st), &st->t.client);
    set_hash_key(st);
    attempt(st);
}

/* ---- a body held whole ---- */

static ssize_t hold_room(struct http_stream *st)
{
    return HBUF_SIZE; /* the buffer grows; stream_body_piece enforces max_body_buffered */
}

/* Appends n bytes to a malloc'd buffer that grows by doubling; n, or 0 when out of memory. */
static size_t buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : HBUF_SIZE;
        while (c < *len + n)
            c *= 2;
        char *b = realloc(*buf, c);
        if (!b)
            return 0;
        *buf = b;
        *cap = c;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return n;
}

static size_t hold_data(struct http_stream *st, const char *p, size_t n)
{
    return buf_append(&st->held, &st->held_len, &st->held_cap, p, n);
}

static bool hold_trailers(struct http_stream *st, const struct http_msg *m)
{
    return true; /* they stay in t->req.trailers, sent after the held body */
}

/* The body is whole: the filters inspect it, then the first attempt sends it. Called from
 * the client codec's body step, which looks at the stream again when it returns. */
static void hold_end(struct http_stream *st)
{
    st->hold = HOLD_WHOLE;
    enum filter_verdict v = run_buffered_filters(st);
    if (v != FILTER_CONTINUE) {
        filters_answered(st, v);
        return;
    }
    attempt(st);
}

const struct http_body_ops stream_hold_ops = {hold_room, hold_data, hold_trailers, hold_end, NULL};

const struct http_body_ops *stream_request_body_dest(struct http_stream *st)
{
    if (st->hold == HOLD_COLLECTING)
        return &stream_hold_ops;
    if (st->hold == HOLD_WHOLE || !st->up || st->up->connecting)
        return NULL;
    return &st->upc->body;
}

enum move stream_held_step(struct http_stream *st)
{
    const struct http_body_ops *out = st->upc ? &st->upc->body : NULL;
    enum move m = MOVE_NONE;
    if (st->hold != HOLD_WHOLE || st->held_end_sent || !st->up || st->up->connecting)
        return MOVE_NONE;
    while (st->held_sent < st->held_len) {
        ssize_t room = out->send_room(st);
        if (room < 0) {
            stream_answer(st, 500, "internal_error", "out of memory");
            return MOVE_ERROR;
        }
        size_t left = st->held_len - st->held_sent, n = left < (size_t)room ? left : (size_t)room;
        if (!n || !(n = out->send_data(st, st->held + st->held_sent, n)))
            return m;
        st->held_sent += n;
        m = MOVE_PROGRESS;
    }
    if (!out->send_trailers(st, &st->t.req))
        return m;
    out->send_end(st);
    st->held_end_sent = true;
    return MOVE_PROGRESS;
}

/* ---- attempts ---- */

static bool idempotent(const struct http_stream *st)
{
    return http_method_idempotent(st->t.req.method);
}

/* The body can be sent again: none of it left the client's side yet, or it is held. */
static bool body_replayable(const struct http_stream *st)
{
    return !st->body_started || st->hold == HOLD_WHOLE;
}

void stream_attempt_failed(struct http_stream *st, bool server_fault, bool report)
{
    if (server_fault)
        upstream_fault(&st->att, st->w, report);
    stream_up_release(st, false);
    stream_server_release(st);
}

void stream_retry_or_answer(struct http_stream *st, bool nothing_sent, bool allowed,
                            unsigned status, const char *end, const char *detail)
{
    bool replayable = body_replayable(st) && (nothing_sent || (allowed && idempotent(st)));
    st->end = end;
    st->detail = detail;
    if (replayable && !upstream_exhausted(&st->att)) {
        CTR_ADD(stream_lctr(st)->http_retries, 1);
        attempt(st);
        return;
    }
    stream_answer(st, status, end, detail);
}

/* Booked by the upstream layer; the request is retried on another server while the policy
 * allows (any method: the server saw nothing), else answered. */
void stream_connect_failed(struct http_stream *st, int err, const char *why)
{
    enum up_next next = upstream_failed(&st->att, st->w, err, why);
    stream_up_release(st, false);
    if (next == UP_SHORTAGE) {
        stream_answer(st, 502, "connect_failed", "out of local resources");
        return;
    }
    bool timeout = err == ETIMEDOUT;
    if (!why)
        why = timeout ? "server connect timed out" : "server connection failed";
    stream_retry_or_answer(st, true, next == UP_TRY_NEXT, timeout ? 504 : 502, "connect_failed",
                           why);
}

void stream_connected(struct http_stream *st)
{
    uint64_t now = stream_now_us();
    st->connect_us = (int64_t)(now - st->connected_us);
    st->connected_us = now;
    stream_stats_connected(st, (uint64_t)st->connect_us);
}

/* No server to try: the budget spent, or the last connect failed with no server left to
 * try (502, as the relay's connect_failed); nothing eligible at all: 503. */
static void no_server(struct http_stream *st)
{
    bool tried = st->att.tries > 0;
    bool failed = upstream_exhausted(&st->att) || st->att.err;
    stream_answer(st, failed ? 502 : 503, tried ? st->end : "no_server",
                  tried ? st->detail : "no server available");
}

/* The server codec for the backend's protocol. */
static const struct http_up_ops *server_codec(const struct backend *b)
{
    return b->protocol == PROTO_H1 ? &h1_up_ops : &h2_up_ops;
}

/* One attempt: a server picked and reserved (the sticky one first), the request staged by
 * the server codec, and a lease on a pooled connection to it or a new one. */
static void attempt(struct http_stream *st)
{
    struct server *srv = upstream_pick(&st->att, st->w, st->t.sticky);
    if (!srv) {
        no_server(st);
        return;
    }
    st->t.server = srv;
    /* a new attempt: how the exchange ends is its to say (a failed one sets it again);
     * the failures before it are counted in `att.tries` */
    st->end = "ok";
    st->detail = NULL;
    st->attempt_ms = st->w->loop.now_ms;
    st->held_sent = 0; /* a held body goes whole to each attempt */
    st->held_end_sent = false;
    if (!st->upc)
        st->upc = server_codec(st->t.backend);
    uint64_t start = stream_now_us();
    enum up_start r = st->upc->start(st);
    bool reused = st->reused;
    st->fresh_only = false;
    if (r == UP_START_TOO_LARGE) {
        stream_answer(st, 500, "internal_error", "request head too large after rewriting");
        return;
    }
    CTR_ADD(srv->st.ctr[st->w->id].http_requests, 1);
    if (r == UP_START_CONNECT_FAILED) {
        stream_connect_failed(st, st->att.err, st->att.why);
        return;
    }
    if (reused) {
        CTR_ADD(srv->st.ctr[st->w->id].http_reused, 1);
    } else {
        st->connected_us = start;
        if (!st->up->connecting)
            stream_connected(st);
    }
    st->mux->rearm(st);
}

void stream_up_cut(struct http_stream *st, const char *end, const char *detail)
{
    st->end = end;
    st->detail = detail;
    upstream_report(st->t.server, st->w, false);
    st->mux->abort(st);
}

void stream_free_retry(struct http_stream *st)
{
    if (!st->stale_retried && st->att.tries) {
        st->stale_retried = true;
        upstream_refund_try(&st->att);
    }
}

void stream_up_broken(struct http_stream *st, const char *detail, bool nothing_back)
{
    bool was_reused = st->reused;
    stream_attempt_failed(st, !was_reused, true);
    if (nothing_back && was_reused) {
        /* a kept-alive connection the server had closed: not the server's fault, and the
         * pool's doing, so the new connection it takes does not count against `retry.tries`
         * (once per request) */
        st->fresh_only = true;
        stream_free_retry(st);
        stream_retry_or_answer(st, false, true, 502, "server_reset", detail);
        return;
    }
    bool allowed = nothing_back && (st->t.route->retry.on & RETRY_ON_RESET);
    stream_retry_or_answer(st, false, allowed, 502, nothing_back ? "server_reset" : "bad_response",
                           nothing_back ? detail : "incomplete response head");
}

/* ---- the response ---- */

static bool retry_on_status(const struct http_stream *st, unsigned status)
{
    uint32_t on = st->t.route->retry.on;
    return (status == 502 && (on & RETRY_ON_502)) || (status == 503 && (on & RETRY_ON_503)) ||
           (status == 504 && (on & RETRY_ON_504));
}

bool stream_response_checks(struct http_stream *st)
{
    struct http_msg *resp = &st->t.resp;
    struct server *srv = st->t.server;
    if (!st->first_byte_us)
        st->first_byte_us = stream_now_us();
    if (resp->status < 500) {
        upstream_report(srv, st->w, true);
        return true;
    }
    CTR_ADD(srv->st.ctr[st->w->id].http_5xx, 1);
    upstream_report(srv, st->w, !srv->backend->passive.http_5xx);
    if (!retry_on_status(st, resp->status) || !idempotent(st) || !body_replayable(st) ||
        upstream_exhausted(&st->att))
        return true;
    stream_attempt_failed(st, true, false); /* booked above */
    memset(resp, 0, sizeof(*resp));
    CTR_ADD(stream_lctr(st)->http_retries, 1);
    attempt(st);
    return false;
}

/* The response head's text copied into the arena: a server codec's slices point into its
 * input buffer, which the body will overwrite while the head waits. 0 or -1. */
static int own_head(struct http_txn *t)
{
    struct http_msg *r = &t->resp;
    struct hstr reason = arena_dup(&t->arena, r->reason.p, r->reason.len);
    if (!reason.p)
        return -1;
    r->reason = reason;
    for (uint32_t i = 0; i < r->nhdrs; i++) {
        struct http_hdr *h = &r->hdrs[i];
        struct hstr name = arena_dup(&t->arena, h->name.p, h->name.len);
        struct hstr value = arena_dup(&t->arena, h->value.p, h->value.len);
        if (!name.p || !value.p)
            return -1; /* the fields not copied yet still point into the codec's buffer */
        h->name = name;
        h->value = value;
    }
    return 0;
}

/* A filter wants the response body whole (t->resp_body_wanted) and it may have one: the
 * head waits with it (RHOLD_COLLECTING). */
static bool hold_response(struct http_stream *st)
{
    const struct http_txn *t = &st->t;
    const struct http_msg *r = &t->resp;
    if (!t->resp_body_wanted || t->grpc || t->req.method == HTTP_M_HEAD || r->status < 200 ||
        r->status == 204 || r->status == 304 || r->body == HTTP_BODY_NONE ||
        (r->body == HTTP_BODY_LENGTH && r->content_length == 0))
        return false;
    if (own_head(&st->t) < 0)
        return false; /* no memory to hold it: it streams */
    st->resp_hold = RHOLD_COLLECTING;
    st->resp_over = false;
    st->resp_held_len = st->resp_held_sent = 0;
    return true;
}

bool stream_send_response(struct http_stream *st)
{
    struct http_msg *resp = &st->t.resp;
    st->resp_body_hooks = filter_chain_has_body_hooks(&st->chain, st->nran, true);
    if (run_response_filters(st) == FILTER_ERROR ||
        (!hold_response(st) && !st->mux->send_head(st, resp))) {
        stream_answer(st, 502, "bad_response", "response head too large");
        return false;
    }
    st->status = resp->status;
    st->resp_started = true; /* for the server codec: the body comes next */
    if (!st->resp_hold)
        count_status(st, resp->status); /* a held one: when it is let go */
    return true;
}

/* Strata's own answer to an interim (1xx) response head is to pass it on; the codec
 * decides whether its client takes it. */
void stream_interim(struct http_stream *st)
{
    st->mux->send_head(st, &st->t.resp);
}

/* ---- a response body held whole ---- */

static uint64_t resp_limit(const struct http_stream *st)
{
    return st->t.resp_body_limit ? st->t.resp_body_limit : st->lc->http.limits.max_body_buffered;
}

/* The on_response_buffered hooks, last filter first, with the held body (its first
 * resp_limit bytes when `partial`). */
static enum filter_verdict run_resp_buffered(struct http_stream *st, bool partial)
{
    uint64_t limit = resp_limit(st);
    size_t n = partial && st->resp_held_len > limit ? (size_t)limit : st->resp_held_len;
    st->t.resp_body = (struct hstr){st->resp_held ? st->resp_held : "", (uint32_t)n};
    st->t.resp_body_partial = partial;
    for (uint32_t i = st->nran; i-- > 0;) {
        const struct filter_conf *fc = filter_chain_at(&st->chain, i);
        enum filter_verdict v = fc->ops->on_response_buffered
                                    ? fc->ops->on_response_buffered(&st->t, fc->conf)
                                    : FILTER_CONTINUE;
        if (v != FILTER_CONTINUE)
            return v == FILTER_WAIT ? FILTER_ERROR : v;
    }
    return FILTER_CONTINUE;
}

/* A filter refused the held response: its answer goes out instead (the client saw nothing).
 * A whole response leaves the server connection reusable; one cut short closes it. */
static void resp_refused(struct http_stream *st, enum filter_verdict v, bool whole)
{
    st->resp_hold = RHOLD_NONE;
    st->resp_started = false;
    stream_up_release(st, whole);
    filters_answered(st, v);
}

/* The head goes to the client at last; false when it could not (the stream is cut). */
static bool resp_head_out(struct http_stream *st)
{
    if (!st->mux->send_head(st, &st->t.resp)) {
        st->resp_hold = RHOLD_NONE;
        st->end = "internal_error";
        st->mux->abort(st);
        return false;
    }
    count_status(st, st->t.resp.status);
    return true;
}

/* The whole response passed: it goes to the client from the buffer as Strata's own answers
 * do (stream_answer_step), with a length now known (unless trailers follow it). */
static void resp_release_whole(struct http_stream *st)
{
    struct http_txn *t = &st->t;
    st->resp_hold = RHOLD_NONE;
    if (!t->resp.ntrailers) {
        t->resp.body = HTTP_BODY_LENGTH;
        t->resp.content_length = st->resp_held_len;
    }
    if (!resp_head_out(st))
        return;
    t->answer_body = (struct hstr){st->resp_held ? st->resp_held : "", (uint32_t)st->resp_held_len};
    st->answer_left = (uint32_t)st->resp_held_len;
    t->answered = true;
    stream_answer_step(st);
}

/* More than the limit came: the filters see the first part; let go, the held bytes go to
 * the client (RHOLD_DRAINING) and the rest streams as it comes. False when answered. */
static bool resp_over_limit(struct http_stream *st)
{
    enum filter_verdict v = run_resp_buffered(st, true);
    if (v != FILTER_CONTINUE) {
        resp_refused(st, v, false);
        return false;
    }
    if (!resp_head_out(st))
        return false;
    st->resp_hold = RHOLD_DRAINING;
    st->resp_held_sent = 0;
    return true;
}

enum move stream_resp_drain(struct http_stream *st)
{
    const struct http_body_ops *out = &st->mux->body;
    enum move m = MOVE_NONE;
    if (st->resp_hold != RHOLD_DRAINING)
        return m;
    while (st->resp_held_sent < st->resp_held_len) {
        ssize_t room = out->send_room(st);
        size_t left = st->resp_held_len - st->resp_held_sent;
        size_t n = room > 0 ? (left < (size_t)room ? left : (size_t)room) : 0;
        if (!n || !(n = out->send_data(st, st->resp_held + st->resp_held_sent, n)))
            return m;
        st->resp_held_sent += n;
        m = MOVE_PROGRESS;
    }
    st->resp_hold = RHOLD_NONE; /* from now on the body goes straight to the client */
    free(st->resp_held);
    st->resp_held = NULL;
    st->resp_held_len = st->resp_held_cap = 0;
    return MOVE_PROGRESS;
}

/* The held response was refused (or let go whole) while the server codec still calls: what
 * it passes is not for the client, whose answer is going out. */
static bool rhold_answered(const struct http_stream *st)
{
    return st->resp_hold == RHOLD_NONE && st->t.answered;
}

/* The server codec's destination while the response is held (then, once it is let go over
 * the limit, the client codec's, after the held bytes). The buffer takes any piece: the
 * limit is checked on the next call. */
static ssize_t rhold_room(struct http_stream *st)
{
    if (st->resp_hold == RHOLD_COLLECTING && st->resp_over && !resp_over_limit(st))
        return 0; /* answered instead: the server codec stops (its stream changed course) */
    if (rhold_answered(st))
        return 0;
    stream_resp_drain(st);
    return st->resp_hold == RHOLD_NONE ? st->mux->body.send_room(st)
           : st->resp_hold == RHOLD_DRAINING ? 0
                                             : HBUF_SIZE;
}

static size_t rhold_data(struct http_stream *st, const char *p, size_t n)
{
    if (rhold_answered(st))
        return n;
    if (st->resp_hold != RHOLD_COLLECTING)
        return st->mux->body.send_data(st, p, n);
    n = buf_append(&st->resp_held, &st->resp_held_len, &st->resp_held_cap, p, n);
    st->resp_over = st->resp_held_len > resp_limit(st);
    return n;
}

static bool rhold_trailers(struct http_stream *st, const struct http_msg *m)
{
    if (st->resp_hold == RHOLD_COLLECTING || rhold_answered(st))
        return true; /* they stay in t->resp.trailers */
    stream_resp_drain(st);
    return st->resp_hold == RHOLD_NONE && st->mux->body.send_trailers(st, m);
}

/* The server's response is complete: the filters decide on it (its first part when it
 * was over the limit), then it goes out or the answer does. */
static void rhold_end(struct http_stream *st)
{
    if (st->resp_hold != RHOLD_COLLECTING) {
        if (!rhold_answered(st))
            st->mux->body.send_end(st);
        return;
    }
    enum filter_verdict v = run_resp_buffered(st, st->resp_over);
    if (v != FILTER_CONTINUE)
        resp_refused(st, v, true);
    else
        resp_release_whole(st);
}

/* no send_from_fd: a held body must enter user space */
const struct http_body_ops stream_resp_hold_ops = {rhold_room, rhold_data, rhold_trailers,
                                                   rhold_end, NULL};

/* ---- bodies ---- */

unsigned stream_body_piece(struct http_stream *st, bool response, const char **data, size_t *len,
                           bool last, size_t room, const char **why)
{
    if (!response && !last) {
        uint64_t max = st->t.max_request_body ? st->t.max_request_body
                                              : st->lc->http.limits.max_request_body;
        st->req_body_bytes += *len;
        if (max && st->req_body_bytes > max) {
            *why = "request body larger than max_request_body";
            return 413;
        }
    }
    if ((response ? st->resp_body_hooks : st->req_body_hooks) &&
        (filter_chain_body(&st->chain, st->nran, &st->t, response, data, len, last) !=
             FILTER_CONTINUE ||
         *len > room)) {
        *why = "a body filter failed";
        return 500;
    }
    if (!response && st->hold == HOLD_COLLECTING &&
        st->held_len + *len > st->lc->http.limits.max_body_buffered) {
        *why = "request body larger than max_body_buffered";
        return 413;
    }
    return 0;
}

/* ---- deadlines ---- */

/* When a route's request_limits.body_timeout runs out for a body not yet whole (else 0). */
static uint64_t body_late_at(const struct http_stream *st)
{
    if (!st->t.body_timeout_ms || st->t.req_body_done)
        return 0;
    return st->start_us / 1000 + st->t.body_timeout_ms;
}

uint64_t stream_deadline(const struct http_stream *st, uint64_t last_ms)
{
    const struct http_timeouts *to = &st->lc->http.timeouts;
    uint64_t d;
    if (st->up_ms > last_ms)
        last_ms = st->up_ms;
    if (st->waiting) {
        d = st->wait_until_ms;
    } else if (st->up && st->up->connecting) {
        d = st->attempt_ms + (to->connect_ms ? to->connect_ms : st->t.backend->connect_timeout_ms);
    } else if (st->up && !st->resp_started) {
        uint32_t per_try = st->t.route && st->t.route->retry.per_try_timeout_ms
                               ? st->t.route->retry.per_try_timeout_ms
                               : to->response_ms;
        uint64_t a = st->attempt_ms + per_try, b = last_ms + to->response_ms;
        d = a > b ? a : b; /* a request body still flowing keeps it alive */
    } else {
        d = last_ms + to->response_ms;
    }
    /* start_us is on the monotonic clock, as the loop's now_ms */
    if (to->request_ms && st->start_us / 1000 + to->request_ms < d)
        d = st->start_us / 1000 + to->request_ms;
    if (st->deadline_ms && st->deadline_ms < d)
        d = st->deadline_ms;
    if (body_late_at(st) && body_late_at(st) < d)
        d = body_late_at(st);
    return d;
}

/* The client's own deadline passed: the server's work is abandoned (not its fault). */
static void call_expired(struct http_stream *st)
{
    if (st->resp_started) {
        st->end = "deadline";
        st->detail = "grpc-timeout expired";
        st->mux->abort(st);
        return;
    }
    stream_up_release(st, false);
    stream_server_release(st);
    stream_answer(st, 504, "deadline", "grpc-timeout expired");
}

/* The route's body_timeout ran out with the request body not whole: the client's fault, as
 * a request head too slow is; the server's work is abandoned. */
static void body_expired(struct http_stream *st)
{
    st->end = "client_timeout";
    st->detail = "request body not received within body_timeout";
    if (st->resp_started) {
        st->mux->abort(st);
        return;
    }
    stream_up_release(st, false);
    stream_server_release(st);
    stream_answer(st, 408, st->end, st->detail);
}

void stream_expired(struct http_stream *st)
{
    if (st->deadline_ms && st->w->loop.now_ms >= st->deadline_ms) {
        call_expired(st);
    } else if (st->waiting) {
        filters_end(st); /* the waiting filter gives its work up */
        stream_answer(st, 504, "filter_timeout", "a filter's check did not finish in time");
    } else if (body_late_at(st) && st->w->loop.now_ms >= body_late_at(st)) {
        body_expired(st);
    } else if (st->up && st->up->connecting) {
        stream_connect_failed(st, ETIMEDOUT, NULL);
    } else if (st->up && !st->resp_started) {
        stream_attempt_failed(st, true, true);
        stream_retry_or_answer(st, false, st->t.route && (st->t.route->retry.on & RETRY_ON_504),
                               504, "server_timeout", "server response timed out");
    } else if (!st->resp_started) {
        stream_answer(st, 408, "client_timeout", "request body timed out");
    } else {
        st->end = "timeout";
        st->detail = "no progress within response_timeout";
        st->mux->abort(st);
    }
}

/* ---- the end ---- */

void stream_log(struct http_stream *st)
{
    uint64_t now = stream_now_us();
    struct access_entry e = {
        .t = &st->t,
        .status = st->status,
        .bytes_in = st->bytes_in,
        .bytes_out = st->bytes_out,
        .total_us = now - st->start_us,
        .connect_us = st->connect_us,
        .ttfb_us = st->first_byte_us ? (int64_t)(st->first_byte_us - st->start_us) : -1,
        .retries = st->att.tries > 1 ? st->att.tries - 1u : 0,
        .end = st->end,
        .detail = st->detail,
    };
    access_log_write(st->w, st->lc, &e);
    stream_stats_end(st, e.total_us, e.ttfb_us);
    request_analytics(st, &e);
    CTR_ADD(stream_lctr(st)->bytes_in, st->bytes_in);
    CTR_ADD(stream_lctr(st)->bytes_out, st->bytes_out);
}
