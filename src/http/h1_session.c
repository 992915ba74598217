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
 * Progress: every event runs run(), which repeats the steps of the current state until
 * none moves. The loop is edge-triggered: the conn flags remember readiness, and a step
 * reads or writes until EAGAIN or until a buffer is full (back-pressure).
 */
#include "http/h1_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "health/health.h"
#include "http/access_log.h"
#include "http/filter.h"
#include "http/h1.h"
#include "http/hbuf.h"
#include "http/msg.h"
#include "http/router.h"
#include "lb/lb.h"
#include "net/admission.h"
#include "net/conn.h"
#include "net/sock.h"

#define POOL_MAX_FREE 1024
#define RUN_BUDGET 64 /* steps per run() before yielding to other sessions */
#define CHUNK_OVERHEAD 24 /* chunk-size line + CRLF after the data */
#define MAX_CHAIN 64

enum cstate { CS_IDLE, CS_HEAD, CS_TXN, CS_TUNNEL, CS_CLOSED };

/* One exchange: a request and its response. */
struct h1x {
    struct http_txn t;
    struct h1_parser hp;         /* the request head, then the response head */
    struct h1_body reqb, respb;  /* body decoders */
    struct upconn *up;           /* server connection of the current attempt */
    struct hbuf *uout;           /* bytes for the server */
    struct lb_req lbreq;
    const struct filter_conf *route_filters;
    uint32_t nroute_filters;
    uint32_t nran;               /* filters whose on_request ran */
    uint64_t start_us, attempt_ms, connected_us, first_byte_us;
    int64_t connect_us;          /* time of the last new connection, -1 = none */
    uint64_t bytes_in, bytes_out;
    uint64_t req_body_bytes;     /* request body data read so far */
    const char *end, *detail;    /* how it ended, for the access log */
    uint16_t status;             /* sent to the client */
    uint8_t tries;
    bool holds_server;           /* holds one unit of t.server->st.active */
    bool reused;                 /* the attempt's connection came from the pool */
    bool fresh_only;             /* the next attempt must open a new connection */
    bool head_staged;            /* the request head is in uout */
    bool req_done;               /* request body fully read from the client */
    bool body_started;           /* body bytes were taken from the client: no retry */
    bool resp_started;           /* response head written for the client */
    bool resp_done;              /* response fully written into the client buffer */
    bool last_pending;           /* response: the last chunk still has to be written */
    bool req_last_pending;       /* request: the same */
    bool close_after;            /* close the client connection after this response */
    bool cont_sent;              /* "100 Continue" sent to the client */
    bool chunk_out;              /* response body re-chunked for the client */
    bool up_keep;                /* the server connection may be parked afterwards */
    bool tunnel;                 /* 101: the exchange became a tunnel */
    bool sticky_ran;
    _Alignas(8) char arena_buf[3072]; /* the arena's first block: most requests fit */
};

struct h1s {
    struct conn cli;
    struct worker *w;
    struct listener_conf *lc;
    struct h1x *x;
    struct hbuf *in, *out; /* bytes from and for the client */
    struct admission ad;
    struct sockaddr_any client;
    struct ev_timer timer;
    uint64_t last_ms; /* last I/O progress (inactivity timeouts) */
    uint64_t head_deadline_ms;
    struct list link;      /* w->http_sessions, then w->http_dead */
    struct list runq_link; /* w->http_runq while queued */
    uint32_t requests;     /* exchanges started on this connection */
    uint8_t state;
    bool cli_eof; /* the client finished sending */
    bool up_eof_sent, cli_shut; /* tunnel half-closes passed on */
};

static void run(struct h1s *s);
static void session_close(struct h1s *s);
static void exchange_end(struct h1s *s);
static void up_attempt(struct h1s *s);
static void arm_timer(struct h1s *s);

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void schedule(struct h1s *s)
{
    if (list_empty(&s->runq_link))
        list_add_tail(&s->w->http_runq, &s->runq_link);
    s->w->loop.busy = true;
}

static struct listener_counters *lctr(struct h1s *s)
{
    return &s->lc->st.ctr[s->w->id];
}

/* ---- buffers and raw I/O ---- */

static struct hbuf *buf_of(struct h1s *s, struct hbuf **bp, uint32_t cap)
{
    if (!*bp)
        *bp = hbuf_get(&s->w->hbuf_pool, cap);
    return *bp;
}

static void buf_drop(struct h1s *s, struct hbuf **bp)
{
    hbuf_put(&s->w->hbuf_pool, *bp);
    *bp = NULL;
}

/* Room for a client head and its pipelined followers. */
static uint32_t in_cap(const struct h1s *s)
{
    uint32_t need = s->lc->http.limits.max_header_bytes + 1024;
    return need > HBUF_SIZE ? need : HBUF_SIZE;
}

enum io { IO_NONE, IO_MOVED, IO_EOF, IO_ERR };

/* Reads from c into *bp while there is room. `compact`: the bytes may be moved first. */
static enum io read_into(struct h1s *s, struct conn *c, struct hbuf **bp, uint32_t cap,
                         bool compact, uint64_t *count)
{
    if (!(c->flags & CONN_RD_READY) || (c->flags & CONN_RD_EOF))
        return IO_NONE;
    struct hbuf *b = buf_of(s, bp, cap);
    if (!b)
        return IO_ERR;
    if (compact && b->off && hbuf_room(b) < b->cap / 4)
        hbuf_compact(b);
    uint32_t room = hbuf_room(b);
    if (room == 0)
        return IO_NONE;
    ssize_t n = c->xprt->recv(c, hbuf_tail(b), room);
    if (n > 0) {
        b->len += (uint32_t)n;
        if (count)
            *count += (uint64_t)n;
        if ((size_t)n < room && !(c->flags & CONN_RD_HUP))
            c->flags &= ~CONN_RD_READY; /* a short read drained the socket */
        s->last_ms = s->w->loop.now_ms;
        return IO_MOVED;
    }
    if (n == 0) {
        c->flags |= CONN_RD_EOF;
        return IO_EOF;
    }
    if (errno == EAGAIN || errno == EINTR) {
        c->flags &= ~CONN_RD_READY;
        if (b->len == 0)
            buf_drop(s, bp);
        return IO_NONE;
    }
    c->flags |= CONN_ERROR;
    return IO_ERR;
}

/* Sends what *bp holds; the buffer goes back to the pool once empty. */
static enum io flush_buf(struct h1s *s, struct conn *c, struct hbuf **bp, uint64_t *count)
{
    struct hbuf *b = *bp;
    enum io r = IO_NONE;
    while (b && b->len && (c->flags & CONN_WR_READY)) {
        ssize_t n = c->xprt->send(c, hbuf_head(b), b->len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                c->flags &= ~CONN_WR_READY;
                break;
            }
            c->flags |= CONN_ERROR;
            return IO_ERR;
        }
        hbuf_consume(b, (uint32_t)n);
        if (count)
            *count += (uint64_t)n;
        s->last_ms = s->w->loop.now_ms;
        r = IO_MOVED;
    }
    if (b && b->len == 0)
        buf_drop(s, bp);
    return r;
}

/* Appends bytes to *bp; false when they do not fit (or no memory). */
static bool buf_append(struct h1s *s, struct hbuf **bp, const void *data, size_t n)
{
    struct hbuf *b = buf_of(s, bp, HBUF_SIZE);
    if (!b)
        return false;
    if (hbuf_room(b) < n)
        hbuf_compact(b);
    if (hbuf_room(b) < n)
        return false;
    memcpy(hbuf_tail(b), data, n);
    b->len += (uint32_t)n;
    return true;
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
    memset(x, 0, offsetof(struct h1x, reqb));
    /* the body decoders are set by h1_body_init and the arena buffer needs no zeroing */
    memset(&x->up, 0, offsetof(struct h1x, arena_buf) - offsetof(struct h1x, up));
    x->reqb.kind = x->respb.kind = HTTP_BODY_NONE;
    arena_init_buf(&x->t.arena, x->arena_buf, sizeof(x->arena_buf), 0);
    x->t.req.is_request = true;
    x->t.lc = s->lc;
    x->t.client = s->client;
    x->t.worker = s->w->id;
    x->start_us = now_us();
    x->t.rand = next_rand(s->w, x->start_us);
    x->connect_us = -1;
    x->end = "ok";
    h1_parser_init(&x->hp);
    return x;
}

static void server_release(struct h1x *x)
{
    if (x->holds_server) {
        atomic_fetch_sub_explicit(&x->t.server->st.active, 1, memory_order_relaxed);
        x->holds_server = false;
    }
}

/* Gives the current server connection up: parked when `keep`, else closed. */
static void up_release(struct h1s *s, bool keep)
{
    struct h1x *x = s->x;
    if (!x->up)
        return;
    if (keep)
        upool_park(s->w, x->up);
    else
        upconn_close(s->w, x->up);
    x->up = NULL;
}

static void exchange_free(struct h1s *s)
{
    struct h1x *x = s->x;
    if (!x)
        return;
    up_release(s, false);
    server_release(x);
    buf_drop(s, &x->uout);
    arena_free(&x->t.arena);
    pool_put(&s->w->http_exchange_pool, x);
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

/* ---- answers made by Strata ---- */

static const char *const class_names[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

static void count_status(struct h1s *s, unsigned status)
{
    if (status >= 100 && status < 600)
        CTR_ADD(lctr(s)->http_responses[status / 100 - 1], 1);
    (void)class_names;
}

/* Response hooks of the filters that ran, last first. */
static enum filter_verdict run_response_filters(struct h1s *s)
{
    struct h1x *x = s->x;
    uint32_t nl = s->lc->http.nfilters;
    for (uint32_t i = x->nran; i-- > 0;) {
        const struct filter_conf *fc =
            i < nl ? &s->lc->http.filters[i] : &x->route_filters[i - nl];
        if (fc->ops->on_response && fc->ops->on_response(&x->t, fc->conf) == FILTER_ERROR)
            return FILTER_ERROR;
    }
    if (x->sticky_ran && filter_sticky.on_response(&x->t, NULL) == FILTER_ERROR)
        return FILTER_ERROR;
    return FILTER_CONTINUE;
}

/* The client connection must close after this exchange: the client asked, the worker
 * drains, or the connection served its quota of requests. */
static bool must_close(const struct h1s *s)
{
    const struct http_msg *req = &s->x->t.req;
    uint32_t quota = s->lc->http.max_requests_per_conn;
    return (req->flags & HTTP_F_CLOSE) || s->w->applied_cmd != WORKER_RUN ||
           (quota && s->requests >= quota);
}

/* Writes t->resp (an answer: body in t->answer_body) for the client. */
static void send_answer(struct h1s *s)
{
    struct h1x *x = s->x;
    struct http_txn *t = &x->t;
    bool head = t->req.method == HTTP_M_HEAD;
    if (!x->req_done || must_close(s))
        x->close_after = true; /* an unread body would be taken for the next request */
    if (run_response_filters(s) == FILTER_ERROR)
        x->close_after = true;
    struct hbuf *b = buf_of(s, &s->out, HBUF_SIZE);
    ssize_t n = b ? h1_write_response(&t->resp, head ? H1W_NO_BODY : H1W_AS_MSG,
                                      t->req.version ? t->req.version : 11, x->close_after,
                                      hbuf_tail(b), hbuf_room(b))
                  : -1;
    if (n < 0) {
        x->end = "internal_error";
        session_close(s);
        return;
    }
    b->len += (uint32_t)n;
    if (!head && t->answer_body.len)
        buf_append(s, &s->out, t->answer_body.p, t->answer_body.len);
    x->status = t->resp.status;
    x->resp_started = x->resp_done = true;
    count_status(s, x->status);
    up_release(s, false);
    server_release(x);
}

/* Answers `status` with a short text body naming the reason. */
static void answer(struct h1s *s, unsigned status, const char *end, const char *detail)
{
    struct h1x *x = s->x;
    if (x->resp_started) {
        /* too late for an answer: cut the connection so the client sees it incomplete */
        x->end = end;
        x->detail = detail;
        session_close(s);
        return;
    }
    char body[256];
    int n = snprintf(body, sizeof(body), "%u %s%s%s\n", status, http_reason(status),
                     detail ? ": " : "", detail ? detail : "");
    memset(&x->t.resp, 0, sizeof(x->t.resp));
    x->end = end;
    x->detail = detail;
    if (txn_answer(&x->t, status, "text/plain; charset=utf-8", body, (size_t)n) < 0) {
        session_close(s);
        return;
    }
    x->t.answered = true;
    /* the request could not be read whole or as meant: nothing after it can be trusted */
    if (status != 404 && status < 500)
        x->close_after = true;
    send_answer(s);
}

/* ---- routing ---- */

/* Runs the on_request hooks of fcs[0..n); `base` numbers them in the chain. */
static enum filter_verdict run_request_filters(struct h1s *s, const struct filter_conf *fcs,
                                               uint32_t n)
{
    struct h1x *x = s->x;
    for (uint32_t i = 0; i < n; i++) {
        x->nran++;
        if (!fcs[i].ops->on_request)
            continue;
        enum filter_verdict v = fcs[i].ops->on_request(&x->t, fcs[i].conf);
        if (v != FILTER_CONTINUE)
            return v;
    }
    return FILTER_CONTINUE;
}

/* The key hashing balancers use for this request (backend `hash:`). */
static void set_hash_key(struct h1x *x)
{
    struct backend *b = x->t.backend;
    struct hstr key = {NULL, 0};
    switch (b->hash_on) {
    case HASH_HEADER:
        key = http_hdr_get(&x->t.req, hstr_c(b->hash_name));
        break;
    case HASH_COOKIE:
        key = http_cookie_get(&x->t.req, hstr_c(b->hash_name));
        break;
    case HASH_PATH:
        key = x->t.req.path;
        break;
    case HASH_SOURCE:
        break;
    }
    x->lbreq.key = key.p;
    x->lbreq.keylen = key.len;
}

static void route_request(struct h1s *s)
{
    struct h1x *x = s->x;
    struct http_txn *t = &x->t;
    const struct http_listener_conf *hc = &s->lc->http;
    enum filter_verdict v = run_request_filters(s, hc->filters, hc->nfilters);
    if (v == FILTER_CONTINUE) {
        t->route = router_match(hc, &t->req);
        if (!t->route) {
            answer(s, 404, "no_route", "no route matches this request");
            return;
        }
        x->route_filters = t->route->filters;
        x->nroute_filters = t->route->nfilters;
        v = run_request_filters(s, t->route->filters, t->route->nfilters);
    }
    if (v == FILTER_ANSWER) {
        t->answered = true;
        x->end = "answered";
        send_answer(s);
        return;
    }
    if (v == FILTER_ERROR || t->route->action == ROUTE_ANSWER) {
        answer(s, 500, "internal_error", "a filter failed");
        return;
    }
    t->backend = route_pick_backend(t->route, t->rand);
    if (t->backend->sticky.enabled) {
        x->sticky_ran = true;
        if (filter_sticky.on_request(t, NULL) == FILTER_ERROR) {
            answer(s, 500, "internal_error", "a filter failed");
            return;
        }
    }
    x->lbreq.client = &t->client;
    set_hash_key(x);
    up_attempt(s);
}

/* ---- the server side ---- */

static bool server_acquire(struct server *srv)
{
    uint32_t n = atomic_fetch_add_explicit(&srv->st.active, 1, memory_order_relaxed);
    if (srv->max_conns && n >= srv->max_conns) {
        atomic_fetch_sub_explicit(&srv->st.active, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

static struct server *pick_server(struct h1s *s)
{
    struct h1x *x = s->x;
    struct backend *b = x->t.backend;
    if (x->t.sticky && lb_eligible(x->t.sticky, &x->lbreq) && server_acquire(x->t.sticky))
        return x->t.sticky;
    for (unsigned i = 0; i <= b->nservers; i++) {
        struct server *srv = lb_pick(b, s->w->id, &x->lbreq);
        if (!srv || server_acquire(srv))
            return srv;
        if (x->lbreq.nexclude >= LB_MAX_EXCLUDE)
            return NULL;
        x->lbreq.exclude[x->lbreq.nexclude++] = srv; /* full: skip it */
    }
    return NULL;
}

static uint32_t max_tries(const struct h1x *x)
{
    uint32_t n = x->t.route ? x->t.route->retry.tries : 1;
    return n ? n : 1;
}

static bool idempotent(const struct h1x *x)
{
    return http_method_idempotent(x->t.req.method);
}

static void up_io(struct upconn *uc, uint32_t events);

/* Writes the request head for the server into a fresh uout. */
static bool stage_request_head(struct h1s *s)
{
    struct h1x *x = s->x;
    buf_drop(s, &x->uout);
    struct hbuf *b = buf_of(s, &x->uout, HBUF_SIZE);
    if (!b)
        return false;
    ssize_t n = h1_write_request(&x->t.req, false, hbuf_tail(b), hbuf_room(b));
    if (n < 0)
        return false;
    b->len = (uint32_t)n;
    x->head_staged = true;
    return true;
}

/* Books a failed attempt on the current server (passive health, exclusion). */
static void attempt_failed(struct h1s *s, bool server_fault)
{
    struct h1x *x = s->x;
    struct server *srv = x->t.server;
    if (srv && server_fault) {
        health_passive_report(srv, false, s->w->loop.now_ms);
        if (x->lbreq.nexclude < LB_MAX_EXCLUDE)
            x->lbreq.exclude[x->lbreq.nexclude++] = srv;
    }
    up_release(s, false);
    server_release(x);
}

/* One more attempt when the policy allows it; else answers `status`. `nothing_sent`:
 * the server cannot have seen the request (connect failed), so any method may retry. */
static void retry_or_answer(struct h1s *s, bool nothing_sent, bool allowed, unsigned status,
                            const char *end, const char *detail)
{
    struct h1x *x = s->x;
    bool replayable = !x->body_started && (nothing_sent || (allowed && idempotent(x)));
    x->end = end;
    x->detail = detail;
    if (replayable && x->tries < max_tries(x)) {
        CTR_ADD(lctr(s)->http_retries, 1);
        up_attempt(s);
        return;
    }
    answer(s, status, end, detail);
}

static void connect_failed(struct h1s *s, int err)
{
    struct h1x *x = s->x;
    CTR_ADD(x->t.server->st.ctr[s->w->id].connect_errors, 1);
    attempt_failed(s, true);
    bool timeout = err == ETIMEDOUT;
    retry_or_answer(s, true, true, timeout ? 504 : 502, "connect_failed",
                    timeout ? "server connect timed out" : "server connection failed");
}

static void up_connected(struct h1s *s)
{
    struct h1x *x = s->x;
    x->up->connecting = false;
    sock_nodelay(x->up->c.h.fd);
    CTR_ADD(x->t.server->st.ctr[s->w->id].conns_total, 1);
    uint64_t now = now_us();
    x->connect_us = (int64_t)(now - x->connected_us);
    x->connected_us = now;
}

static void up_attempt(struct h1s *s)
{
    struct h1x *x = s->x;
    while (x->tries < max_tries(x)) {
        struct server *srv = pick_server(s);
        if (!srv) {
            answer(s, 503, x->tries ? x->end : "no_server",
                   x->tries ? x->detail : "no server available");
            return;
        }
        x->t.server = srv;
        x->holds_server = true;
        x->tries++;
        x->attempt_ms = s->w->loop.now_ms;
        if (!stage_request_head(s)) {
            answer(s, 500, "internal_error", "request head too large after rewriting");
            return;
        }
        CTR_ADD(srv->st.ctr[s->w->id].http_requests, 1);
        x->up = x->fresh_only ? NULL : upool_take(s->w, srv, s, up_io);
        x->reused = x->up != NULL;
        x->fresh_only = false;
        if (x->reused) {
            CTR_ADD(srv->st.ctr[s->w->id].http_reused, 1);
            x->up->requests++;
            arm_timer(s);
            return;
        }
        x->connected_us = now_us();
        x->up = upconn_open(s->w, srv, s, up_io);
        if (x->up) {
            x->up->requests = 1;
            if (!x->up->connecting)
                up_connected(s);
            arm_timer(s);
            return;
        }
        int err = errno;
        CTR_ADD(srv->st.ctr[s->w->id].connect_errors, 1);
        bool local = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
        attempt_failed(s, !local);
        x->end = "connect_failed";
        x->detail = local ? "out of local resources" : "server connection failed";
        if (local)
            break;
    }
    answer(s, x->tries ? 502 : 503, x->end, x->detail);
}

/* The server connection failed or closed before the response was complete. */
static void up_broken(struct h1s *s, const char *detail)
{
    struct h1x *x = s->x;
    struct hbuf *in = x->up ? x->up->in : NULL;
    bool nothing_back = !x->resp_started && (!in || in->len == 0);
    if (x->resp_started) {
        if (x->respb.kind == HTTP_BODY_UNTIL_CLOSE)
            return; /* not broken: that is how this body ends (handled by the body step) */
        x->end = "server_abort";
        x->detail = detail;
        health_passive_report(x->t.server, false, s->w->loop.now_ms);
        session_close(s);
        return;
    }
    bool was_reused = x->reused;
    attempt_failed(s, !was_reused);
    if (nothing_back && was_reused) {
        /* a kept-alive connection the server had closed: not the server's fault, and the
         * request never reached it unless it was taken — retry on a new connection */
        x->fresh_only = true;
        retry_or_answer(s, false, true, 502, "server_reset", detail);
        return;
    }
    bool allowed = nothing_back && (x->t.route->retry.on & RETRY_ON_RESET);
    retry_or_answer(s, false, allowed, 502, nothing_back ? "server_reset" : "bad_response",
                    nothing_back ? detail : "incomplete response head");
}

static void up_io(struct upconn *uc, uint32_t events)
{
    struct h1s *s = uc->owner;
    conn_note_events(&uc->c, events);
    if (s->state == CS_CLOSED)
        return;
    if (uc->connecting) {
        if (!(uc->c.flags & (CONN_WR_READY | CONN_ERROR)))
            return;
        if (events & (EPOLLERR | EPOLLHUP)) {
            int err = sock_error(uc->c.h.fd);
            connect_failed(s, err ? err : ECONNREFUSED);
            run(s);
            return;
        }
        up_connected(s);
    }
    run(s);
}

/* ---- bodies ---- */

enum move { MOVE_NONE, MOVE_PROGRESS, MOVE_ERROR };

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
static enum move move_body(struct h1s *s, struct h1_body *dec, struct hbuf *src,
                           struct hbuf **dstp, bool chunk, bool eof, bool *done,
                           bool *last_pending, struct h1_error *err)
{
    enum move r = MOVE_NONE;
    for (int guard = 0; guard < 64 && !*done; guard++) {
        struct hbuf *dst = buf_of(s, dstp, HBUF_SIZE);
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
            s->x->req_body_bytes += dlen;
            if (max && s->x->req_body_bytes > max) {
                err->status = 413;
                err->reason = "request body larger than max_request_body";
                return MOVE_ERROR;
            }
        }
        if (st == H1B_DATA && dlen) {
            if (chunk)
                dst->len += (uint32_t)h1_write_chunk_head(dlen, hbuf_tail(dst));
            memcpy(hbuf_tail(dst), data, dlen);
            dst->len += (uint32_t)dlen;
            if (chunk) {
                memcpy(hbuf_tail(dst), "\r\n", 2);
                dst->len += 2;
            }
        }
        if (used) {
            hbuf_consume(src, (uint32_t)used);
            r = MOVE_PROGRESS;
        }
        if (st == H1B_DONE) {
            if (dec->kind == HTTP_BODY_CHUNKED && dec->trailer_len && s->x)
                model_trailers(dec == &s->x->reqb ? &s->x->t.req : &s->x->t.resp, &s->x->t.arena,
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
static enum move step_request_body(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->req_done || !x->up || x->up->connecting)
        return MOVE_NONE;
    if (x->t.req.flags & HTTP_F_EXPECT_100 && !x->cont_sent) {
        x->cont_sent = true;
        if (x->t.req.version == 11 && (!s->in || s->in->len == 0)) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (!buf_append(s, &s->out, cont, sizeof(cont) - 1))
                return MOVE_ERROR;
        }
    }
    struct h1_error err = {0, NULL};
    size_t before = s->in ? s->in->len : 0;
    enum move m = move_body(s, &x->reqb, s->in, &x->uout, x->t.req.body == HTTP_BODY_CHUNKED,
                            false, &x->req_done, &x->req_last_pending, &err);
    if (s->in && s->in->len != before)
        x->body_started = true;
    if (m == MOVE_ERROR) {
        x->close_after = true;
        CTR_ADD(lctr(s)->http_bad_requests, 1);
        attempt_failed(s, false); /* the server got part of a body: that connection is done */
        answer(s, err.status ? err.status : 400, "bad_request",
               err.reason ? err.reason : "invalid request body");
    }
    return m;
}

/* Decides how the response body is framed for the client and writes the head. */
static bool write_response_head(struct h1s *s)
{
    struct h1x *x = s->x;
    struct http_msg *req = &x->t.req, *resp = &x->t.resp;
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
    if (must_close(s))
        x->close_after = true;
    struct hbuf *b = buf_of(s, &s->out, HBUF_SIZE);
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
    struct http_msg *resp = &x->t.resp;
    struct server *srv = x->t.server;
    if (resp->status >= 100 && resp->status < 200 && resp->status != 101) {
        /* interim: 100 is ours to send (already done or not wanted); others go to 1.1
         * clients */
        if (resp->status != 100 && x->t.req.version == 11) {
            struct hbuf *b = buf_of(s, &s->out, HBUF_SIZE);
            ssize_t n = b ? h1_write_response(resp, H1W_NO_BODY, 11, false, hbuf_tail(b),
                                              hbuf_room(b))
                          : -1;
            if (n > 0)
                b->len += (uint32_t)n;
        }
        hbuf_consume(x->up->in, (uint32_t)head_len);
        memset(resp, 0, sizeof(*resp));
        h1_parser_init(&x->hp);
        return;
    }
    if (!x->first_byte_us)
        x->first_byte_us = now_us();
    if (resp->status >= 500) {
        CTR_ADD(srv->st.ctr[s->w->id].http_5xx, 1);
        health_passive_report(srv, false, s->w->loop.now_ms);
        uint32_t on = x->t.route->retry.on;
        bool allowed = (resp->status == 502 && (on & RETRY_ON_502)) ||
                       (resp->status == 503 && (on & RETRY_ON_503)) ||
                       (resp->status == 504 && (on & RETRY_ON_504));
        if (allowed && idempotent(x) && !x->body_started && x->tries < max_tries(x)) {
            attempt_failed(s, true);
            memset(resp, 0, sizeof(*resp));
            h1_parser_init(&x->hp);
            CTR_ADD(lctr(s)->http_retries, 1);
            up_attempt(s);
            return;
        }
    } else {
        health_passive_report(srv, true, s->w->loop.now_ms);
    }
    if (resp->status == 101 && !(x->t.req.flags & HTTP_F_UPGRADE)) {
        attempt_failed(s, true);
        answer(s, 502, "bad_response", "server switched protocols unasked");
        return;
    }
    x->up_keep = !(resp->flags & HTTP_F_CLOSE) && resp->body != HTTP_BODY_UNTIL_CLOSE &&
                 resp->status != 101;
    if (run_response_filters(s) == FILTER_ERROR || !write_response_head(s)) {
        answer(s, 502, "bad_response", "response head too large");
        return;
    }
    hbuf_consume(x->up->in, (uint32_t)head_len);
    x->status = resp->status;
    x->resp_started = true;
    count_status(s, resp->status);
    if (resp->status == 101) {
        x->tunnel = true;
        x->resp_done = true;
        s->state = CS_TUNNEL;
        return;
    }
    bool no_body = x->t.req.method == HTTP_M_HEAD || resp->status == 204 ||
                   resp->status == 304;
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
    struct h1_limits lim = {65536, 65536, 256};
    size_t head_len = 0;
    struct h1_error err = {0, NULL};
    int r = h1_parse_response(&x->hp, hbuf_head(uc->in), uc->in->len, &lim, x->t.req.method,
                              &x->t.resp, &x->t.arena, &head_len, &err);
    if (r == H1_AGAIN)
        return MOVE_NONE;
    if (r == H1_ERROR) {
        CTR_ADD(x->t.server->st.ctr[s->w->id].http_5xx, 1);
        attempt_failed(s, true);
        answer(s, 502, "bad_response", err.reason ? err.reason : "invalid response head");
        return MOVE_ERROR;
    }
    on_response_head(s, head_len);
    return MOVE_PROGRESS;
}

/* Server → client: the response head, then its body. The server's EOF is acted on only
 * once what it sent before is used up. */
static enum move step_response(struct h1s *s)
{
    struct h1x *x = s->x;
    if (!x->up || x->up->connecting || x->resp_done)
        return MOVE_NONE;
    struct upconn *uc = x->up;
    enum io io = read_into(s, &uc->c, &uc->in, HBUF_SIZE, x->resp_started, NULL);
    if (io == IO_ERR) {
        up_broken(s, "server connection reset");
        return MOVE_ERROR;
    }
    enum move m = io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
    bool eof = (uc->c.flags & CONN_RD_EOF) != 0;
    if (!x->resp_started) {
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
        if (s->x != x || !x->resp_started || x->resp_done || x->tunnel)
            return MOVE_PROGRESS;
        m = MOVE_PROGRESS; /* the head is out: its body follows in the same write */
    }
    struct h1_error err = {0, NULL};
    enum move b = move_body(s, &x->respb, uc->in, &s->out, x->chunk_out, eof, &x->resp_done,
                            &x->last_pending, &err);
    if (b == MOVE_ERROR) {
        x->end = "bad_response";
        x->detail = err.reason ? err.reason : "invalid response body";
        health_passive_report(x->t.server, false, s->w->loop.now_ms);
        session_close(s);
        return MOVE_ERROR;
    }
    if (b == MOVE_NONE && eof && !x->resp_done && (!uc->in || uc->in->len == 0)) {
        up_broken(s, "server closed the connection before the end of the body");
        return MOVE_ERROR;
    }
    return b == MOVE_PROGRESS ? MOVE_PROGRESS : m;
}

/* ---- the client side ---- */

/* A complete request head at the start of s->in: copy it into the arena, count it, and
 * route it. */
static void start_request(struct h1s *s, size_t head_len)
{
    struct h1x *x = s->x;
    struct http_msg *req = &x->t.req;
    char *copy = arena_alloc(&x->t.arena, head_len);
    if (!copy) {
        answer(s, 500, "internal_error", "out of memory");
        return;
    }
    memcpy(copy, hbuf_head(s->in), head_len);
    msg_rebase(req, hbuf_head(s->in), head_len, copy);
    hbuf_consume(s->in, (uint32_t)head_len);
    h1_parser_init(&x->hp); /* now for the response head */
    x->bytes_in = head_len;
    x->t.orig_path = req->path;
    s->requests++;
    s->state = CS_TXN;
    CTR_ADD(lctr(s)->http_requests, 1);
    h1_body_init(&x->reqb, req->body, req->content_length);
    x->req_done = req->body == HTTP_BODY_NONE ||
                  (req->body == HTTP_BODY_LENGTH && req->content_length == 0);
    arm_timer(s);
    uint64_t max = s->lc->http.limits.max_request_body;
    if (max && req->body == HTTP_BODY_LENGTH && req->content_length > max) {
        CTR_ADD(lctr(s)->http_bad_requests, 1);
        x->close_after = true;
        answer(s, 413, "bad_request", "request body larger than max_request_body");
        return;
    }
    route_request(s);
}

/* Idle or reading a head: read, parse, and start the exchange when the head is whole. */
static enum move step_head(struct h1s *s)
{
    enum io io = read_into(s, &s->cli, &s->in, in_cap(s), false, NULL);
    if (io == IO_ERR) {
        session_close(s);
        return MOVE_ERROR;
    }
    if (!s->in || s->in->len == 0) {
        if (io == IO_EOF) {
            s->cli_eof = true;
            session_close(s); /* between requests: a normal end */
            return MOVE_ERROR;
        }
        return MOVE_NONE;
    }
    if (!s->x) {
        hbuf_compact(s->in); /* a head is parsed from the start of the buffer */
        if (!(s->x = exchange_new(s))) {
            session_close(s);
            return MOVE_ERROR;
        }
        s->state = CS_HEAD;
        s->head_deadline_ms = s->w->loop.now_ms + s->lc->http.timeouts.request_header_ms;
        arm_timer(s);
    }
    const struct http_limits *l = &s->lc->http.limits;
    struct h1_limits lim = {l->max_request_line, l->max_header_bytes, l->max_headers};
    size_t head_len = 0;
    struct h1_error err = {0, NULL};
    int r = h1_parse_request(&s->x->hp, hbuf_head(s->in), s->in->len, &lim, &s->x->t.req,
                             &s->x->t.arena, &head_len, &err);
    if (r == H1_DONE) {
        start_request(s, head_len);
        return MOVE_PROGRESS;
    }
    if (r == H1_ERROR || io == IO_EOF) {
        s->x->bytes_in = s->in->len;
        s->x->t.orig_path = (struct hstr){NULL, 0};
        memset(&s->x->t.req, 0, sizeof(s->x->t.req));
        s->x->t.req.version = 11;
        s->x->t.req.is_request = true;
        if (io == IO_EOF && r != H1_ERROR) {
            s->x->end = "client_abort";
            s->x->detail = "closed during the request head";
            session_close(s);
            return MOVE_ERROR;
        }
        CTR_ADD(lctr(s)->http_bad_requests, 1);
        s->state = CS_TXN;
        s->x->req_done = true;
        /* the bad bytes stay unread: nothing after them can be trusted as a request */
        s->x->close_after = true;
        answer(s, err.status ? err.status : 400, "bad_request", err.reason);
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
    enum io io = read_into(s, &s->cli, &s->in, in_cap(s), true, &x->bytes_in);
    if (io == IO_ERR) {
        x->end = "client_abort";
        x->detail = "client connection reset";
        session_close(s);
        return MOVE_ERROR;
    }
    if (io == IO_EOF) {
        s->cli_eof = true;
        if (!x->req_done && (!s->in || s->in->len == 0)) {
            x->end = "client_abort";
            x->detail = "closed during the request body";
            session_close(s);
            return MOVE_ERROR;
        }
        return MOVE_PROGRESS;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}

static enum move step_flush_client(struct h1s *s)
{
    uint64_t *count = s->x ? &s->x->bytes_out : NULL;
    enum io io = flush_buf(s, &s->cli, &s->out, count);
    if (io == IO_ERR) {
        if (s->x) {
            s->x->end = "client_abort";
            s->x->detail = "client connection reset";
        }
        session_close(s);
        return MOVE_ERROR;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}

static enum move step_flush_server(struct h1s *s)
{
    struct h1x *x = s->x;
    if (!x->up || x->up->connecting || !x->uout)
        return MOVE_NONE;
    enum io io = flush_buf(s, &x->up->c, &x->uout, NULL);
    if (io == IO_ERR) {
        up_broken(s, "server connection reset while sending");
        return MOVE_ERROR;
    }
    return io == IO_MOVED ? MOVE_PROGRESS : MOVE_NONE;
}

/* ---- tunnels (101 Switching Protocols) ---- */

static enum move tunnel_dir(struct h1s *s, struct conn *src, struct hbuf **sbuf,
                            struct conn *dst, struct hbuf **dbuf, bool *shut)
{
    enum move m = MOVE_NONE;
    if (*sbuf && (*sbuf)->len) {
        struct hbuf *b = *sbuf;
        if (buf_append(s, dbuf, hbuf_head(b), b->len)) {
            buf_drop(s, sbuf);
            m = MOVE_PROGRESS;
        }
    }
    if (!*sbuf || (*sbuf)->len == 0) {
        enum io io = read_into(s, src, sbuf, HBUF_SIZE, true, NULL);
        if (io == IO_ERR)
            return MOVE_ERROR;
        if (io == IO_MOVED)
            m = MOVE_PROGRESS;
    }
    if (dst->h.fd >= 0) {
        enum io io = flush_buf(s, dst, dbuf, NULL);
        if (io == IO_ERR)
            return MOVE_ERROR;
        if (io == IO_MOVED)
            m = MOVE_PROGRESS;
    }
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
    enum move up = tunnel_dir(s, &s->cli, &s->in, &x->up->c, &x->uout, &s->up_eof_sent);
    enum move down = tunnel_dir(s, &x->up->c, &x->up->in, &s->cli, &s->out, &s->cli_shut);
    if (up == MOVE_ERROR || down == MOVE_ERROR || (s->up_eof_sent && s->cli_shut)) {
        x->end = up == MOVE_ERROR || down == MOVE_ERROR ? "tunnel_error" : "tunnel_closed";
        session_close(s);
        return MOVE_ERROR;
    }
    return up == MOVE_PROGRESS || down == MOVE_PROGRESS ? MOVE_PROGRESS : MOVE_NONE;
}

/* ---- end of an exchange ---- */

static void log_exchange(struct h1s *s)
{
    struct h1x *x = s->x;
    uint64_t now = now_us();
    struct access_entry e = {
        .t = &x->t,
        .status = x->status,
        .bytes_in = x->bytes_in,
        .bytes_out = x->bytes_out,
        .total_us = now - x->start_us,
        .connect_us = x->connect_us,
        .ttfb_us = x->first_byte_us ? (int64_t)(x->first_byte_us - x->start_us) : -1,
        .retries = x->tries > 1 ? x->tries - 1u : 0,
        .end = x->end,
        .detail = x->detail,
    };
    access_log_write(s->w, s->lc, &e);
    CTR_ADD(lctr(s)->bytes_in, x->bytes_in);
    CTR_ADD(lctr(s)->bytes_out, x->bytes_out);
}

/* The response is out: log, give the server connection back, and go on with the next
 * request (pipelined), wait for one (keep-alive), or close. */
static void exchange_end(struct h1s *s)
{
    struct h1x *x = s->x;
    log_exchange(s);
    struct upconn *uc = x->up;
    bool keep = uc && x->up_keep && x->req_done && !x->uout && (!uc->in || uc->in->len == 0);
    up_release(s, keep);
    bool close = x->close_after || s->cli_eof;
    exchange_free(s);
    if (close) {
        session_close(s);
        return;
    }
    s->state = CS_IDLE;
    if (s->in && s->in->len == 0)
        buf_drop(s, &s->in);
    arm_timer(s);
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
        if (!x->resp_done || x->last_pending) {
            if ((r = step_request_body(s)) == MOVE_ERROR || s->x != x)
                return MOVE_ERROR;
            m |= r;
            if ((r = step_flush_server(s)) == MOVE_ERROR)
                return r;
            m |= r;
            if ((r = step_response(s)) == MOVE_ERROR || s->state == CS_CLOSED)
                return MOVE_ERROR;
            m |= r;
        } else if (!x->req_done) {
            /* answered early: the rest of the request body is not wanted; the connection
             * closes once the answer is out */
            x->close_after = true;
            x->req_done = true;
        }
        if (s->state != CS_TXN)
            return MOVE_PROGRESS;
        if ((r = step_client_read(s)) == MOVE_ERROR)
            return r;
        m |= r;
        if (x->resp_done && !x->last_pending && (!s->out || s->out->len == 0) && x->req_done) {
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

static void run(struct h1s *s)
{
    for (int i = 0; i < RUN_BUDGET; i++) {
        if (s->state == CS_CLOSED)
            return;
        /* MOVE_ERROR: a step changed course (an answer, a retry): look again */
        if (step(s) == MOVE_NONE)
            return;
    }
    schedule(s); /* a long transfer: let the other sessions of this worker run */
}

static void client_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct h1s *s = container_of(h, struct h1s, cli.h);
    if (s->state == CS_CLOSED)
        return;
    conn_note_events(&s->cli, events);
    run(s);
}

/* ---- timers ---- */

/* The next deadline of the session's current state. */
static uint64_t deadline(struct h1s *s)
{
    const struct http_timeouts *to = &s->lc->http.timeouts;
    struct h1x *x = s->x;
    switch (s->state) {
    case CS_IDLE:
        return s->last_ms + (s->requests ? to->keepalive_ms : to->request_header_ms);
    case CS_HEAD:
        return s->head_deadline_ms;
    case CS_TXN: {
        uint64_t d;
        if (x->up && x->up->connecting)
            d = x->attempt_ms + (to->connect_ms ? to->connect_ms : x->t.backend->connect_timeout_ms);
        else if (x->up && !x->resp_started) {
            uint32_t per_try = x->t.route && x->t.route->retry.per_try_timeout_ms
                                   ? x->t.route->retry.per_try_timeout_ms
                                   : to->response_ms;
            uint64_t a = x->attempt_ms + per_try, b = s->last_ms + to->response_ms;
            d = a > b ? a : b; /* a request body still flowing keeps it alive */
        } else
            d = s->last_ms + to->response_ms;
        /* start_us is on the monotonic clock, as the loop's now_ms */
        if (to->request_ms && x->start_us / 1000 + to->request_ms < d)
            d = x->start_us / 1000 + to->request_ms;
        return d;
    }
    case CS_TUNNEL:
        return s->last_ms + s->lc->idle_timeout_ms;
    default:
        return 0;
    }
}

/* Arms the timer for the current deadline, unless it is armed earlier already: the timer
 * callback recomputes the deadline and re-arms, so moving it later is left to it (one heap
 * operation saved for most requests). */
static void arm_timer(struct h1s *s)
{
    uint64_t d = deadline(s);
    if (d && (!ev_timer_armed(&s->timer) || d < s->timer.expire_ms))
        ev_timer_arm_at(&s->w->loop, &s->timer, d);
}

static void expired_in_txn(struct h1s *s)
{
    struct h1x *x = s->x;
    if (x->up && x->up->connecting) {
        connect_failed(s, ETIMEDOUT);
    } else if (x->up && !x->resp_started) {
        attempt_failed(s, true);
        retry_or_answer(s, false, x->t.route && (x->t.route->retry.on & RETRY_ON_504), 504,
                        "server_timeout", "server response timed out");
    } else if (!x->resp_started) {
        answer(s, 408, "client_timeout", "request body timed out");
    } else {
        x->end = "timeout";
        x->detail = "no progress within response_timeout";
        session_close(s);
    }
}

static void session_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct h1s *s = container_of(t, struct h1s, timer);
    if (s->state == CS_CLOSED)
        return;
    uint64_t d = deadline(s);
    if (loop->now_ms < d) {
        ev_timer_arm_at(loop, t, d);
        return;
    }
    switch (s->state) {
    case CS_IDLE:
        session_close(s); /* keep-alive over: a silent close */
        return;
    case CS_HEAD:
        CTR_ADD(lctr(s)->http_bad_requests, 1);
        s->state = CS_TXN;
        s->x->req_done = true;
        answer(s, 408, "client_timeout", "request head not received in time");
        break;
    case CS_TXN:
        expired_in_txn(s);
        break;
    case CS_TUNNEL:
        s->x->end = "tunnel_idle";
        session_close(s);
        return;
    }
    if (s->state != CS_CLOSED) {
        arm_timer(s);
        run(s);
    }
}

/* ---- lifecycle ---- */

static void session_close(struct h1s *s)
{
    struct worker *w = s->w;
    if (s->state == CS_CLOSED)
        return;
    if (s->x && s->x->status == 0 && !strcmp(s->x->end, "ok"))
        s->x->end = "client_abort";
    if (s->x && (s->state != CS_HEAD || s->x->bytes_in))
        log_exchange(s);
    exchange_free(s);
    s->state = CS_CLOSED;
    ev_timer_cancel(&w->loop, &s->timer);
    admission_release(w->cfg, s->lc, &s->ad);
    s->cli.xprt->close(&s->cli);
    buf_drop(s, &s->in);
    buf_drop(s, &s->out);
    list_del(&s->runq_link);
    list_del(&s->link);
    list_add_tail(&w->http_dead, &s->link);
    w->nhttp--;
}

void h1_accept(struct worker *w, struct listen_sock *ls, int fd, const struct sockaddr_any *peer)
{
    struct listener_conf *lc = ls->lc;
    struct listener_counters *c = &lc->st.ctr[w->id];
    CTR_ADD(c->conns_total, 1);
    struct h1s *s = pool_get(&w->http_session_pool);
    if (!s) {
        CTR_ADD(c->conns_rejected, 1);
        close(fd);
        return;
    }
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->lc = lc;
    s->client = *peer;
    s->cli = (struct conn){.h = {.fd = fd, .cb = client_io}, .xprt = &xprt_plain};
    s->last_ms = w->loop.now_ms;
    ev_timer_init(&s->timer, session_timer);
    list_init(&s->runq_link);
    list_add_tail(&w->http_sessions, &s->link);
    w->nhttp++;
    const char *why = NULL;
    enum admit_result ar = admit_connection(w->cfg, lc, &s->client, &s->ad, &why);
    if (ar == ADMIT_OK)
        ar = admit_source(lc, &s->client, w->loop.now_ms, &s->ad);
    if (ar != ADMIT_OK) {
        CTR_ADD(c->conns_rejected, 1);
        if (ar == ADMIT_DENIED)
            CTR_ADD(c->denied, 1);
        else if (ar == ADMIT_RATE_LIMITED)
            CTR_ADD(c->rate_limited, 1);
        sock_abort(fd);
        session_close(s);
        return;
    }
    if (ev_add(&w->loop, &s->cli.h) < 0) {
        session_close(s);
        return;
    }
    s->state = CS_IDLE;
    arm_timer(s);
}

int h1_worker_init(struct worker *w, const struct config *cfg)
{
    list_init(&w->http_sessions);
    list_init(&w->http_dead);
    list_init(&w->http_runq);
    list_init(&w->up_dead);
    pool_init(&w->http_session_pool, sizeof(struct h1s), POOL_MAX_FREE);
    pool_init(&w->http_exchange_pool, sizeof(struct h1x), 256);
    pool_init(&w->hbuf_pool, sizeof(struct hbuf) + HBUF_SIZE, POOL_MAX_FREE);
    w->access_fd = -1;
    return upool_init(&w->upool, cfg);
}

static void free_dead(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->http_dead)
    {
        list_del(pos);
        pool_put(&w->http_session_pool, list_entry(pos, struct h1s, link));
    }
    upool_free_dead(w);
}

void h1_after_events(struct worker *w)
{
    struct list q;
    list_init(&q);
    if (!list_empty(&w->http_runq)) {
        q = w->http_runq;
        q.next->prev = &q;
        q.prev->next = &q;
        list_init(&w->http_runq);
    }
    while (!list_empty(&q)) {
        struct h1s *s = list_entry(q.next, struct h1s, runq_link);
        list_del(&s->runq_link);
        run(s);
    }
    free_dead(w);
    if (w->access_len)
        access_log_flush(w);
}

void h1_drain(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->http_sessions)
    {
        struct h1s *s = list_entry(pos, struct h1s, link);
        if (s->state == CS_IDLE && !s->x)
            session_close(s);
        else if (s->x)
            s->x->close_after = true;
    }
}

void h1_close_all(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->http_sessions)
    {
        struct h1s *s = list_entry(pos, struct h1s, link);
        if (s->x)
            s->x->end = "shutdown";
        session_close(s);
    }
    free_dead(w);
    if (w->access_len)
        access_log_flush(w);
}

void h1_worker_free(struct worker *w)
{
    h1_close_all(w);
    upool_free(&w->upool, w);
    pool_destroy(&w->http_session_pool);
    pool_destroy(&w->http_exchange_pool);
    pool_destroy(&w->hbuf_pool);
    free(w->access_buf);
    w->access_buf = NULL;
}
