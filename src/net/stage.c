/* stage.c — the connection stage (see stage.h): admission, PROXY header, SNI peek or TLS
 * handshake, then the listener mode.
 *
 * The PROXY header and the ClientHello are read with MSG_PEEK into the worker's scratch
 * buffer: nothing is consumed but the PROXY header itself, so the stage holds no buffer
 * and the relay finds the ClientHello still in the socket (and may splice it). The loop is
 * edge-triggered: a peek that finds an incomplete header waits for the next edge, which
 * new bytes bring.
 */
#include "stage.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "ev/worker.h"
#include "net/conn_end.h"
#include "net/conn_log.h"
#include "net/proxy_proto.h"
#include "net/sock.h"
#include "net/tls_hello.h"
#include "core/time.h"
#include "stats/counters-t.h"
#include "stats/runtime.h"
#include "tls/tls.h"

#define STAGE_LOG_PER_SEC 20
/* The most a peek looks at: a ClientHello (or PROXY header) larger than this is refused. */
#define PEEK_CAP (RELAY_BUF_SIZE - 128)

enum step { STEP_PROXY, STEP_STARTTLS, STEP_HELLO, STEP_HANDSHAKE, STEP_DONE };

/* PostgreSQL asks for TLS in plaintext first (protocol 3, "SSLRequest"): 8 bytes, length 8
 * and a magic code; the answer is one byte, 'S' (go ahead) or 'N'. A GSSAPI encryption
 * request comes the same way and is declined, after which libpq asks for TLS. */
#define PG_SSL_REQUEST 80877103u
#define PG_GSSENC_REQUEST 80877104u

struct stage {
    struct accepted a;
    struct worker *w;
    struct listener_conf *lc;
    stage_start_fn start;
    struct ev_timer timer; /* inspect timeout, then handshake timeout */
    struct list link;      /* w->stages while in the stage */
    struct ev_defer dfree; /* freed after the batch it ended in */
    const char *why;       /* detail of a failure (static string) */
    uint64_t tls_start_us; /* monotonic time the TLS handshake step began */
    uint8_t step;
    uint8_t end; /* enum conn_end once failed */
};

/* ---- failures: counted, logged within a budget, closed ---- */

/* A flood of refused connections must not become a flood of log lines: each worker logs
 * at most STAGE_LOG_PER_SEC stage failures a second and then one line saying how many it
 * left out. The metrics count every one. */
void stage_log_tick(struct worker *w)
{
    uint64_t sec = w->loop.now_ms / 1000;
    if (sec == w->refusal_log_sec)
        return;
    if (w->refusals_unlogged)
        worker_log(w,
                   "conn refusals: %llu more not logged (at most %u a second per worker; "
                   "the metrics count every one)",
                   (unsigned long long)w->refusals_unlogged, STAGE_LOG_PER_SEC);
    w->refusal_log_sec = sec;
    w->refusals_logged = 0;
    w->refusals_unlogged = 0;
}

static bool log_allowed(struct worker *w)
{
    stage_log_tick(w);
    if (w->refusals_logged < STAGE_LOG_PER_SEC) {
        w->refusals_logged++;
        return true;
    }
    w->refusals_unlogged++;
    return false;
}

static void count_failure(struct listener_counters *c, enum conn_end end, bool in_proxy,
                          const struct conn *cli)
{
    switch (end) {
    case END_TLS_ERROR:
        CTR_ADD(c->tls_failures[tls_last_fail(cli)], 1);
        break;
    case END_HANDSHAKE_TIMEOUT:
        CTR_ADD(c->tls_timeouts, 1);
        break;
    case END_DENIED:
        CTR_ADD(c->denied, 1);
        CTR_ADD(c->conns_rejected, 1);
        break;
    case END_RATE_LIMITED:
        CTR_ADD(c->rate_limited, 1);
        CTR_ADD(c->conns_rejected, 1);
        break;
    case END_LIMIT:
        CTR_ADD(c->conns_rejected, 1);
        break;
    case END_PROXY_ERROR:
        CTR_ADD(c->proxy_errors, 1);
        break;
    case END_BAD_HELLO:
    case END_NO_ROUTE:
        CTR_ADD(c->inspect_failures, 1);
        break;
    case END_INSPECT_TIMEOUT:
        if (in_proxy)
            CTR_ADD(c->proxy_errors, 1);
        else
            CTR_ADD(c->inspect_failures, 1);
        break;
    default:
        break;
    }
}

static bool is_refusal(enum conn_end end)
{
    return end == END_LIMIT || end == END_DENIED || end == END_RATE_LIMITED;
}

/* Ends a connection that did not get past the stage: counts, logs, closes, releases. */
static void fail_connection(struct worker *w, struct listener_conf *lc, struct accepted *a,
                            enum conn_end end, const char *why, bool in_proxy)
{
    count_failure(&lc->st.ctr[w->id], end, in_proxy, &a->cli);
    if (lc->st.log.dest >= 0 && log_allowed(w)) {
        struct conn_log_entry e = {
            .client = &a->client,
            .duration_ms = w->loop.now_ms - a->start_ms,
            .end = end,
            .error = why,
        };
        conn_log(w, lc, &e);
    }
    /* Give the shared counts back before the peer can see the close. */
    admission_release(w->cfg, lc, &a->ad);
    if (is_refusal(end) && a->cli.h.fd >= 0)
        sock_abort(a->cli.h.fd); /* a reset: no TIME_WAIT left behind by a flood */
    a->cli.xprt->close(&a->cli);
}

/* ---- the steps ---- */

static const enum conn_end admit_ends[] = {
    [ADMIT_OK] = END_NONE,
    [ADMIT_LIMIT] = END_LIMIT,
    [ADMIT_DENIED] = END_DENIED,
    [ADMIT_RATE_LIMITED] = END_RATE_LIMITED,
};

static enum conn_end admit_source_of(struct worker *w, struct listener_conf *lc, struct accepted *a)
{
    enum admit_result r = admit_country(w->cfg, lc, &a->client);
    return admit_ends[r == ADMIT_OK ? admit_source(lc, &a->client, w->loop.now_ms, &a->ad) : r];
}

/* Peeks what the client sent so far into the worker's scratch buffer: the byte count,
 * 0 when nothing is there yet (wait), -1 when the stage must end (st->end set). */
static ssize_t peek(struct stage *st)
{
    if (!(st->a.cli.flags & CONN_RD_READY))
        return 0;
    ssize_t n = recv(st->a.cli.h.fd, st->w->scratch, PEEK_CAP, MSG_PEEK);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        st->a.cli.flags &= ~CONN_RD_READY;
        return 0;
    }
    st->end = n == 0 ? END_CLIENT_CLOSE : END_CLIENT_ERROR;
    st->why = "client closed before its first bytes were complete";
    return -1;
}

/* More bytes are needed: wait for the next edge, unless no more can come. */
static int need_more(struct stage *st, ssize_t have, enum conn_end too_long, const char *what)
{
    if (have >= PEEK_CAP) {
        st->end = too_long;
        st->why = what;
        return -1;
    }
    if (st->a.cli.flags & CONN_RD_HUP) {
        st->end = END_CLIENT_CLOSE;
        st->why = "client closed before its first bytes were complete";
        return -1;
    }
    st->a.cli.flags &= ~CONN_RD_READY; /* a new edge comes with new bytes */
    return 0;
}

/* 1 done, 0 waiting, -1 failed (st->end set). */
static int step_proxy(struct stage *st)
{
    ssize_t n = peek(st);
    if (n <= 0)
        return (int)n;
    struct pp_info info;
    size_t used;
    switch (pp_parse((const uint8_t *)st->w->scratch, (size_t)n, &info, &used, &st->why)) {
    case PP_NEED_MORE:
        return need_more(st, n, END_PROXY_ERROR, "PROXY header too long");
    case PP_ERROR:
        st->end = END_PROXY_ERROR;
        return -1;
    case PP_OK:
        break;
    }
    if (info.sock_type == SOCK_DGRAM) {
        st->end = END_PROXY_ERROR;
        st->why = "PROXY header describes a UDP connection";
        return -1;
    }
    /* consume exactly the header: the bytes behind it belong to the protocol */
    if (recv(st->a.cli.h.fd, st->w->scratch, used, 0) != (ssize_t)used) {
        st->end = END_CLIENT_ERROR;
        st->why = "PROXY header could not be consumed";
        return -1;
    }
    if (!info.local) {
        st->a.client = info.src;
        st->a.dst = info.dst;
    }
    st->why = NULL;
    st->end = admit_source_of(st->w, st->lc, &st->a);
    return st->end == END_NONE ? 1 : -1;
}

static struct backend *route_for(const struct listener_conf *lc, const char *sni, size_t len)
{
    for (uint32_t i = 0; i < lc->nroutes; i++) {
        const struct sni_route *r = &lc->routes[i];
        if (r->nsni == 0)
            return r->backend;
        for (uint32_t j = 0; j < r->nsni && len; j++)
            if (sni_match(r->sni[j], sni, len))
                return r->backend;
    }
    return NULL;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Consumes one 8-byte request and answers it with one byte; -1 (st->end set) on error. */
static int answer_pg_request(struct stage *st, char answer)
{
    int fd = st->a.cli.h.fd;
    if (recv(fd, st->w->scratch, 8, 0) != 8 || send(fd, &answer, 1, MSG_NOSIGNAL) != 1) {
        st->end = END_CLIENT_ERROR;
        st->why = "could not answer the PostgreSQL TLS request";
        return -1;
    }
    return 0;
}

/* STARTTLS for PostgreSQL: the client's SSLRequest is answered 'S', then the handshake
 * follows on the same connection. A client that starts without asking for TLS is refused. */
static int step_starttls(struct stage *st)
{
    for (int round = 0; round < 2; round++) { /* at most a GSSENCRequest, then SSLRequest */
        ssize_t n = peek(st);
        if (n <= 0)
            return (int)n;
        if (n < 8)
            return need_more(st, n, END_TLS_ERROR, "");
        const unsigned char *p = (const unsigned char *)st->w->scratch;
        uint32_t code = be32(p + 4);
        if (be32(p) != 8 || (code != PG_SSL_REQUEST && code != PG_GSSENC_REQUEST))
            break;
        if (answer_pg_request(st, code == PG_SSL_REQUEST ? 'S' : 'N') < 0)
            return -1;
        if (code == PG_SSL_REQUEST)
            return 1;
    }
    st->end = END_TLS_ERROR;
    st->why = "the PostgreSQL client did not ask for TLS (sslmode=disable?)";
    return -1;
}

/* Picks the backend of the first SNI route matching sni; -1 (st->end set) when none. */
static int route_by_sni(struct stage *st, const char *sni, size_t len)
{
    st->a.backend = route_for(st->lc, sni, len);
    if (st->a.backend)
        return 1;
    st->end = END_NO_ROUTE;
    st->why = len ? "no route for this server name" : "no SNI and no default route";
    return -1;
}

static int step_hello(struct stage *st)
{
    ssize_t n = peek(st);
    if (n <= 0)
        return (int)n;
    struct hello_info hi;
    switch (tls_hello_parse((const uint8_t *)st->w->scratch, (size_t)n, &hi, &st->why)) {
    case HELLO_NEED_MORE:
        return need_more(st, n, END_BAD_HELLO, "ClientHello too large");
    case HELLO_NOT_TLS:
        st->why = "not a TLS handshake";
        st->end = END_BAD_HELLO;
        return -1;
    case HELLO_ERROR:
        st->end = END_BAD_HELLO;
        return -1;
    case HELLO_OK:
        break;
    }
    st->why = NULL;
    return route_by_sni(st, hi.sni, hi.sni_len);
}

static int step_handshake(struct stage *st)
{
    struct conn *c = &st->a.cli;
    if (c->xprt->handshake(c, &st->why) < 0) {
        if (errno == EAGAIN)
            return 0;
        st->end = END_TLS_ERROR;
        return -1;
    }
    /* bytes that came with the last handshake flight may wait inside the transport */
    c->flags |= CONN_RD_READY | CONN_WR_READY;
    st->why = NULL;
    struct xprt_info info;
    c->xprt->info(c, &info);
    struct listener_counters *ctr = &st->lc->st.ctr[st->w->id];
    CTR_ADD(ctr->tls_handshakes, 1);
    stats_hist_record(st->lc->st.hist, st->w->id, HIST_TLS, mono_us() - st->tls_start_us);
    if (info.resumed)
        CTR_ADD(ctr->tls_resumed, 1);
    if (st->lc->nroutes == 0)
        return 1;
    return route_by_sni(st, info.sni ? info.sni : "", info.sni ? strlen(info.sni) : 0);
}

/* The step after `done` for this listener (PROXY first, then TLS or the SNI peek). */
static enum step next_step(const struct listener_conf *lc, int done)
{
    if (done < STEP_PROXY && lc->proxy.enabled)
        return STEP_PROXY;
    if (done < STEP_STARTTLS && lc->tls && tls_server_starttls(lc->tls) == TLS_STARTTLS_POSTGRES)
        return STEP_STARTTLS;
    if (done < STEP_HELLO && lc->tls)
        return STEP_HANDSHAKE;
    if (done < STEP_HELLO && lc->mode == MODE_TCP && lc->nroutes > 0)
        return STEP_HELLO;
    return STEP_DONE;
}

/* The steps bounded by the TLS handshake timeout rather than the inspect timeout. */
static bool in_tls(int step)
{
    return step == STEP_STARTTLS || step == STEP_HANDSHAKE;
}

static void stage_obj_free(struct ev_defer *d)
{
    struct stage *st = container_of(d, struct stage, dfree);
    pool_put(&st->w->stage_pool, st);
}

static void stage_free(struct stage *st)
{
    struct worker *w = st->w;
    ev_timer_cancel(&w->loop, &st->timer);
    list_del(&st->link);
    w->nstages--;
    ev_defer_free(&w->loop, &st->dfree, stage_obj_free); /* events of this batch may name it */
}

static void stage_fail(struct stage *st)
{
    fail_connection(st->w, st->lc, &st->a, st->end, st->why, st->step == STEP_PROXY);
    stage_free(st);
}

/* Arms the timer bounding the step about to wait; false (stage ended) if it cannot be. */
static bool arm_step_timer(struct stage *st)
{
    uint32_t ms = in_tls(st->step) ? tls_server_handshake_timeout_ms(st->lc->tls)
                                   : st->lc->inspect_timeout_ms;
    if (ev_timer_arm(&st->w->loop, &st->timer, ms) == 0)
        return true;
    st->end = END_CLIENT_ERROR;
    st->why = "no memory for a timer";
    stage_fail(st);
    return false;
}

static int run_step(struct stage *st)
{
    switch (st->step) {
    case STEP_PROXY:
        return step_proxy(st);
    case STEP_STARTTLS:
        return step_starttls(st);
    case STEP_HELLO:
        return step_hello(st);
    case STEP_HANDSHAKE:
        return step_handshake(st);
    default:
        return 1;
    }
}

/* Attaches the listener's TLS transport before the handshake step. */
static int enter_step(struct stage *st, enum step next)
{
    /* one inspect timeout covers PROXY header and ClientHello; the handshake has its own */
    bool rearm = st->step == STEP_DONE || (in_tls(next) && !in_tls(st->step));
    st->step = (uint8_t)next;
    if (next == STEP_HANDSHAKE)
        st->tls_start_us = mono_us();
    if (next == STEP_HANDSHAKE && tls_server_attach(&st->a.cli, st->lc->tls) < 0) {
        st->end = END_CLIENT_ERROR;
        st->why = "no memory for TLS";
        stage_fail(st);
        return -1;
    }
    if (next != STEP_DONE && rearm && !arm_step_timer(st))
        return -1;
    return 0;
}

/* Runs steps until one waits, fails, or the mode takes the connection. */
static void stage_run(struct stage *st)
{
    while (st->step != STEP_DONE) {
        int r = run_step(st);
        if (r == 0)
            return;
        if (r < 0) {
            stage_fail(st);
            return;
        }
        if (enter_step(st, next_step(st->lc, st->step)) < 0)
            return;
    }
    struct accepted a = st->a;
    a.registered = true;
    stage_free(st);
    st->start(st->w, st->lc, &a);
}

static void stage_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct stage *st = container_of(h, struct stage, a.cli.h);
    if (st->step == STEP_DONE || st->a.cli.h.fd < 0)
        return;
    conn_note_events(&st->a.cli, events);
    stage_run(st);
}

static void stage_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct stage *st = container_of(t, struct stage, timer);
    st->end = in_tls(st->step) ? END_HANDSHAKE_TIMEOUT : END_INSPECT_TIMEOUT;
    st->why = NULL;
    stage_fail(st);
}

/* ---- accept and hand-off ---- */

int conn_take_registration(struct worker *w, struct conn *c, const struct accepted *a)
{
    return a->registered ? ev_rebind(&w->loop, &c->h) : ev_add(&w->loop, &c->h);
}

void stage_accept(struct worker *w, struct listener_conf *lc, int fd,
                  const struct sockaddr_any *peer, stage_start_fn start)
{
    struct accepted a = {.client = *peer, .start_ms = w->loop.now_ms};
    conn_init_plain(&a.cli, fd, stage_io);
    CTR_ADD(lc->st.ctr[w->id].conns_total, 1);
    const char *why = NULL;
    enum conn_end end = admit_ends[admit_connection(w->cfg, lc, &a.client, &a.ad, &why)];
    if (end == END_NONE && !lc->proxy.enabled)
        end = admit_source_of(w, lc, &a);
    if (end != END_NONE) {
        fail_connection(w, lc, &a, end, why, false);
        return;
    }
    enum step first = next_step(lc, -1);
    if (first == STEP_DONE) { /* nothing to read first: the mode takes it now */
        start(w, lc, &a);
        return;
    }
    struct stage *st = pool_get(&w->stage_pool);
    if (!st) {
        fail_connection(w, lc, &a, END_CLIENT_ERROR, "no memory", false);
        return;
    }
    *st = (struct stage){.a = a, .w = w, .lc = lc, .start = start, .step = STEP_DONE};
    ev_timer_init(&st->timer, stage_timer);
    list_add_tail(&w->stages, &st->link);
    w->nstages++;
    if (ev_add(&w->loop, &st->a.cli.h) < 0) {
        st->end = END_CLIENT_ERROR;
        st->why = "cannot register the connection";
        stage_fail(st);
        return;
    }
    if (enter_step(st, first) < 0)
        return;
    /* the first bytes are most likely here already (TCP_DEFER_ACCEPT on http listeners) */
    st->a.cli.flags |= CONN_RD_READY | CONN_WR_READY;
    stage_run(st);
}

/* ---- per worker ---- */

void stage_worker_init(struct worker *w)
{
    list_init(&w->stages);
    pool_init(&w->stage_pool, sizeof(struct stage), POOL_MAX_FREE);
}

void stage_close_all(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->stages)
    {
        struct stage *st = list_entry(pos, struct stage, link);
        st->end = END_SHUTDOWN;
        st->why = NULL;
        stage_fail(st);
    }
    /* freed by the loop's reap (ev_reap), after the batch or before stage_worker_free */
}

void stage_worker_free(struct worker *w)
{
    BUG_ON(w->nstages); /* after stage_close_all and the loop's reap */
    pool_destroy(&w->stage_pool);
}

uint32_t stage_count(const struct worker *w)
{
    return w->nstages;
}
