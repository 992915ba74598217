/* tcp_proxy.c — the L4 TCP session: connect to a server with retries, then relay.
 *
 * Each direction (client→server "up", server→client "down") moves bytes one of two ways:
 * - copy: recv into a pooled 16 KiB buffer whose bytes join the loop's send queue
 *   (ev/sendq.h), made with the turn's other sends; the buffer goes back to the pool
 *   once all are sent, so idle connections hold none. (A TLS destination is written at
 *   once from the worker's scratch buffer: its sends are OpenSSL's.)
 * - splice: once a read fills the buffer (a bulk transfer), bytes go socket → pipe →
 *   socket with splice(2), never entering user space. A pipe is held only while bytes
 *   are in it.
 * What a destination did not take stays in the buffer until EPOLLOUT. Back-pressure: a
 * direction reads only when nothing is pending for its destination, so at most one buffer
 * or one pipe's worth is in flight per direction.
 */
#include "tcp_proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "ev/sendq.h"
#include "net/admission.h"
#include "net/cidr.h"
#include "net/conn.h"
#include "net/pipe_pool.h"
#include "net/proxy_proto.h"
#include "net/sock.h"
#include "net/conn_end.h"
#include "net/conn_log.h"
#include "net/stage.h"
#include "l4/tcp_stats.h"
#include "core/time.h"
#include "upstream/upstream.h"

/* One pump handles at most this much per direction before yielding to other sessions. */
#define PUMP_BUDGET (1u << 20)
#define SPLICE_CHUNK (1u << 20)

enum sess_state { SESS_CONNECTING, SESS_ESTABLISHED, SESS_CLOSED };

/* The TCP mode's per-worker state: w->mode_state[MODE_TCP]. */
struct tcp_worker {
    struct list sessions; /* open sessions */
    uint32_t nsessions;
    struct pool session_pool;
    struct pool buf_pool; /* struct relay_buf */
};

static inline struct tcp_worker *tw(const struct worker *w)
{
    return w->mode_state[MODE_TCP];
}

struct relay_dir {
    struct relay_buf *buf; /* bytes read but not yet written (copy mode) */
    struct ev_send send;   /* buf's bytes, queued on the loop while ev_send_queued() */
    struct spliced pipe;   /* bytes read but not yet written (splice mode) */
    bool splice;    /* bulk mode: move bytes with splice(2) */
    bool eof;       /* the source has finished sending */
    bool done;      /* eof passed on: the destination's write side is shut */
    uint64_t bytes; /* delivered to the destination */
};

struct tcp_session {
    struct conn cli, srv;
    struct relay_dir up, down; /* up: client → server; down: server → client */
    struct worker *w;
    struct listener_conf *lc;
    struct backend *backend; /* the listener's, or the one an SNI route chose */
    struct up_attempt att;
    struct sockaddr_any client; /* the peer, or the address its PROXY header carried */
    struct sockaddr_any dst;    /* what the client connected to, from its PROXY header */
    const char *why;            /* detail for the log line (static string) */
    struct admission ad;        /* caps and per-source units held */
    uint64_t start_ms, last_ms;
    uint64_t drain_at_ms;  /* a reload changed its path: closed then (0: not draining) */
    uint64_t connect_us;   /* monotonic time the current connect started (l4/tcp_stats.h) */
    struct ev_timer timer; /* connect timeout, then idle timeout */
    struct list link;      /* tw(w)->sessions while open */
    struct ev_task task;   /* a retry or a long transfer, on the loop's run queue */
    struct ev_defer dfree; /* freed after the batch it closed in */
    struct tcp_watch cli_watch, srv_watch; /* TCP_INFO sampling (l4/tcp_stats.h) */
    uint8_t state;
    uint8_t end;
    bool retry_pending; /* a connect failed: retry from the run queue */
};

enum pump_result { PUMP_WAIT, PUMP_MORE, PUMP_SRC_ERR, PUMP_DST_ERR };

static void session_close(struct tcp_session *s, enum conn_end why);
static bool arm_timer(struct tcp_session *s, uint64_t at_ms);
static void session_connect(struct tcp_session *s);
static int stage_upstream_preamble(struct tcp_session *s);
static void session_task(struct ev_task *t);

static void schedule(struct tcp_session *s)
{
    ev_task_queue(&s->w->loop, &s->task);
}

/* ---- byte accounting: per-worker counters, no atomics beyond relaxed stores ---- */

static void count_up(struct tcp_session *s, size_t n)
{
    unsigned id = s->w->id;
    s->up.bytes += n;
    CTR_ADD(s->lc->st.ctr[id].bytes_in, n);
    CTR_ADD(s->att.server->st.ctr[id].bytes_out, n);
}

static void count_down(struct tcp_session *s, size_t n)
{
    unsigned id = s->w->id;
    s->down.bytes += n;
    CTR_ADD(s->lc->st.ctr[id].bytes_out, n);
    CTR_ADD(s->att.server->st.ctr[id].bytes_in, n);
}

/* ---- one direction ---- */

/* Writes what is pending for d. Returns PUMP_MORE when nothing is left pending. */
static enum pump_result flush_pending(struct tcp_session *s, struct relay_dir *d, struct conn *dst,
                                      bool is_up)
{
    while (d->pipe.bytes > 0) {
        ssize_t n = spliced_out(&s->w->pipes, &d->pipe, dst->h.fd);
        if (n < 0) {
            if (errno == EAGAIN) {
                dst->flags &= ~CONN_WR_READY;
                return PUMP_WAIT;
            }
            return PUMP_DST_ERR;
        }
        is_up ? count_up(s, (size_t)n) : count_down(s, (size_t)n);
    }
    while (d->buf) {
        ssize_t n = dst->xprt->send(dst, d->buf->data + d->buf->off, d->buf->len);
        if (n < 0) {
            if (errno == EAGAIN) {
                dst->flags &= ~CONN_WR_READY;
                return PUMP_WAIT;
            }
            return PUMP_DST_ERR;
        }
        d->buf->off += (uint32_t)n;
        d->buf->len -= (uint32_t)n;
        is_up ? count_up(s, (size_t)n) : count_down(s, (size_t)n);
        if (d->buf->len == 0) {
            pool_put(&tw(s->w)->buf_pool, d->buf);
            d->buf = NULL;
        }
    }
    return PUMP_MORE;
}

/* After a copy read of n > 0 bytes: a full read switches d to splice (a bulk transfer),
 * a short one may prove src drained. */
static void note_copy_read(struct relay_dir *d, struct conn *src, struct conn *dst, size_t n)
{
    if (n == RELAY_BUF_SIZE && src->xprt->can_splice && dst->xprt->can_splice)
        d->splice = true;
    else
        conn_note_read(src, n, RELAY_BUF_SIZE);
}

/* Reads into a pooled buffer and queues its bytes on the loop's send queue; dir_sent
 * takes the answer. PUMP_WAIT when nothing was read. */
static enum pump_result copy_queued(struct tcp_session *s, struct relay_dir *d, struct conn *src,
                                    struct conn *dst, ssize_t *moved)
{
    struct relay_buf *b = pool_get(&tw(s->w)->buf_pool);
    if (!b)
        return PUMP_DST_ERR; /* out of memory: end the session, counted as an error */
    ssize_t n = src->xprt->recv(src, b->data, RELAY_BUF_SIZE);
    *moved = n;
    if (n <= 0) {
        pool_put(&tw(s->w)->buf_pool, b);
        return n == 0 || errno == EAGAIN ? PUMP_WAIT : PUMP_SRC_ERR;
    }
    note_copy_read(d, src, dst, (size_t)n);
    b->off = 0;
    b->len = (uint32_t)n;
    d->buf = b;
    ev_send_queue(&s->w->loop, &d->send, dst->h.fd, b->data, b->len);
    return PUMP_MORE;
}

/* Reads into the scratch buffer and sends straight on; keeps only the remainder. */
static enum pump_result copy_through(struct tcp_session *s, struct relay_dir *d, struct conn *src,
                                     struct conn *dst, bool is_up, ssize_t *moved)
{
    char *scratch = s->w->scratch;
    ssize_t n = src->xprt->recv(src, scratch, RELAY_BUF_SIZE);
    *moved = n;
    if (n <= 0)
        return n == 0 || errno == EAGAIN ? PUMP_WAIT : PUMP_SRC_ERR;
    note_copy_read(d, src, dst, (size_t)n);
    ssize_t sent = dst->xprt->send(dst, scratch, (size_t)n);
    if (sent < 0) {
        if (errno != EAGAIN)
            return PUMP_DST_ERR;
        sent = 0;
    }
    if (sent > 0)
        is_up ? count_up(s, (size_t)sent) : count_down(s, (size_t)sent);
    if (sent < n) {
        dst->flags &= ~CONN_WR_READY;
        d->buf = pool_get(&tw(s->w)->buf_pool);
        if (!d->buf)
            return PUMP_DST_ERR; /* out of memory: end the session, counted as an error */
        d->buf->off = 0;
        d->buf->len = (uint32_t)(n - sent);
        memcpy(d->buf->data, scratch + sent, d->buf->len);
    }
    return PUMP_MORE;
}

/* Moves bytes src → dst until one side would block or the budget is spent. */
static enum pump_result dir_pump(struct tcp_session *s, struct relay_dir *d, struct conn *src,
                                 struct conn *dst, bool is_up)
{
    size_t budget = PUMP_BUDGET;
    for (;;) {
        if (ev_send_queued(&d->send))
            return PUMP_WAIT; /* dir_sent goes on */
        enum pump_result r = flush_pending(s, d, dst, is_up);
        if (r != PUMP_MORE)
            return r;
        if (d->eof) {
            if (!d->done) {
                /* Pass the EOF on, unless the other direction is over too: then the
                 * session closes both sockets now and close() sends the FIN. */
                struct relay_dir *other = is_up ? &s->down : &s->up;
                if (!other->done) { /* errors show on the next I/O */
                    if (dst->xprt->fd_sends) /* after the turn's sends */
                        ev_shut_queue(&s->w->loop, &d->send, dst->h.fd);
                    else
                        dst->xprt->shutdown_wr(dst);
                }
                dst->flags |= CONN_WR_SHUT;
                d->done = true;
            }
            return PUMP_WAIT;
        }
        if (!(src->flags & CONN_RD_READY) || !(dst->flags & CONN_WR_READY))
            return PUMP_WAIT;
        if (budget == 0)
            return PUMP_MORE;
        ssize_t n;
        if (d->splice) {
            n = spliced_in(&s->w->pipes, &d->pipe, src->h.fd, SPLICE_CHUNK);
            if (n < 0 && errno == ENOBUFS) {
                d->splice = false; /* no pipe, or not for this socket: copy */
                continue;
            }
            if (n < 0 && errno != EAGAIN)
                return PUMP_SRC_ERR;
        } else {
            r = dst->xprt->fd_sends ? copy_queued(s, d, src, dst, &n)
                                    : copy_through(s, d, src, dst, is_up, &n);
            if (r == PUMP_SRC_ERR || r == PUMP_DST_ERR)
                return r;
        }
        if (n < 0) {
            src->flags &= ~CONN_RD_READY;
            return PUMP_WAIT;
        }
        if (n == 0) {
            d->eof = true;
            if (s->end == END_NONE)
                s->end = is_up ? END_CLIENT_CLOSE : END_SERVER_CLOSE;
            continue;
        }
        s->last_ms = s->w->loop.now_ms;
        budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
    }
}

static void session_pump(struct tcp_session *s)
{
    enum pump_result up = dir_pump(s, &s->up, &s->cli, &s->srv, true);
    if (up == PUMP_SRC_ERR || up == PUMP_DST_ERR) {
        session_close(s, up == PUMP_SRC_ERR ? END_CLIENT_ERROR : END_SERVER_ERROR);
        return;
    }
    enum pump_result down = dir_pump(s, &s->down, &s->srv, &s->cli, false);
    if (down == PUMP_SRC_ERR || down == PUMP_DST_ERR) {
        session_close(s, down == PUMP_SRC_ERR ? END_SERVER_ERROR : END_CLIENT_ERROR);
        return;
    }
    if (s->up.done && s->down.done) {
        session_close(s, (enum conn_end)s->end);
        return;
    }
    if (up == PUMP_MORE || down == PUMP_MORE)
        schedule(s);
}

/* The loop made the send copy_queued queued: count it, keep what did not go, go on. */
static void dir_sent(struct tcp_session *s, struct relay_dir *d, bool is_up, ssize_t res)
{
    struct conn *dst = is_up ? &s->srv : &s->cli;
    if (d->send.op == EV_SHUT_WR)
        return; /* errors show on the next I/O */
    if (res < 0 && res != -EAGAIN) {
        session_close(s, is_up ? END_SERVER_ERROR : END_CLIENT_ERROR);
        return;
    }
    if (res > 0) {
        is_up ? count_up(s, (size_t)res) : count_down(s, (size_t)res);
        d->buf->off += (uint32_t)res;
        d->buf->len -= (uint32_t)res;
    }
    if (d->buf->len == 0) {
        pool_put(&tw(s->w)->buf_pool, d->buf);
        d->buf = NULL;
    } else {
        dst->flags &= ~CONN_WR_READY; /* full: EPOLLOUT brings the rest */
    }
    session_pump(s);
}

static void up_sent(struct ev_send *e, ssize_t res)
{
    struct tcp_session *s = container_of(e, struct tcp_session, up.send);
    dir_sent(s, &s->up, true, res);
}

static void down_sent(struct ev_send *e, ssize_t res)
{
    struct tcp_session *s = container_of(e, struct tcp_session, down.send);
    dir_sent(s, &s->down, false, res);
}

/* ---- connection events ---- */

static void client_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct tcp_session *s = container_of(h, struct tcp_session, cli.h);
    if (s->state == SESS_CLOSED)
        return;
    conn_note_events(&s->cli, events);
    if (s->state == SESS_ESTABLISHED)
        session_pump(s);
}

static void session_server_release(struct tcp_session *s)
{
    upstream_release(&s->att);
}

/* The connect (or the transport's handshake) failed: booked by the upstream layer; the
 * relay's policy is to try another server while it allows, after the current batch
 * (events of this batch may still name the old fd), else to end. */
static void connect_failed(struct tcp_session *s, int err, const char *why)
{
    enum up_next next = upstream_failed(&s->att, s->w, err, why);
    ev_timer_cancel(&s->w->loop, &s->timer);
    s->srv.xprt->close(&s->srv); /* closing the fd also removes it from epoll */
    s->srv.flags = 0;
    if (next != UP_TRY_NEXT) {
        session_close(s, END_CONNECT_FAILED);
        return;
    }
    s->retry_pending = true;
    schedule(s);
}

static void established(struct tcp_session *s)
{
    struct worker *w = s->w;
    s->state = SESS_ESTABLISHED;
    upstream_report(s->att.server, w, true);
    tcp_stats_connected(w->id, s->lc, s->backend, s->att.server, mono_us() - s->connect_us);
    tcp_stats_watch(&w->tcp_watches, &s->srv_watch, s->srv.h.fd, NULL, s->att.server);
    s->last_ms = w->loop.now_ms;
    if (!arm_timer(s, w->loop.now_ms + s->lc->idle_timeout_ms))
        return;
    if (stage_upstream_preamble(s) < 0) {
        session_close(s, END_SERVER_ERROR);
        return;
    }
    session_pump(s);
}

static void server_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct tcp_session *s = container_of(h, struct tcp_session, srv.h);
    if (s->state == SESS_CLOSED || s->srv.h.fd < 0)
        return;
    conn_note_events(&s->srv, events);
    if (s->state == SESS_CONNECTING) {
        enum up_connect r = upstream_connect_step(&s->att, s->w, &s->srv, events);
        if (r == UP_CONNECT_FAILED)
            connect_failed(s, s->att.err, s->att.why);
        else if (r == UP_CONNECT_DONE)
            established(s);
        return;
    }
    session_pump(s);
}

static void session_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct tcp_session *s = container_of(t, struct tcp_session, timer);
    if (s->drain_at_ms && loop->now_ms >= s->drain_at_ms) {
        session_close(s, END_RELOAD_DRAIN);
        return;
    }
    if (s->state == SESS_CONNECTING) {
        connect_failed(s, ETIMEDOUT, NULL);
        return;
    }
    uint64_t deadline = s->last_ms + s->lc->idle_timeout_ms;
    if (loop->now_ms >= deadline) {
        CTR_ADD(s->lc->st.ctr[s->w->id].timeouts, 1);
        session_close(s, END_IDLE_TIMEOUT);
        return;
    }
    arm_timer(s, deadline);
}

/* Connects to a server of the backend: the first call starts the bookkeeping (1 +
 * `retries` tries); each call picks a server not tried yet. A connect that fails at once
 * is booked and the next server tried at once; the relay ends when the upstream layer
 * allows no more (no_server when nothing was ever eligible). */
static void session_connect(struct tcp_session *s)
{
    struct up_attempt *a = &s->att;
    if (a->max_tries == 0)
        upstream_attempt_init(a, s->backend, 1 + s->backend->retries, &s->client);
    for (;;) {
        if (!upstream_pick(a, s->w, NULL)) {
            session_close(s, a->tries ? END_CONNECT_FAILED : END_NO_SERVER);
            return;
        }
        s->state = SESS_CONNECTING;
        s->connect_us = mono_us();
        switch (upstream_connect(a, s->w, &s->srv, server_io, &s->timer)) {
        case UP_CONNECT_PENDING:
            return;
        case UP_CONNECT_DONE:
            established(s);
            return;
        case UP_CONNECT_FAILED:
            if (upstream_failed(a, s->w, a->err, a->why) != UP_TRY_NEXT) {
                session_close(s, END_CONNECT_FAILED);
                return;
            }
        }
    }
}

/* ---- lifecycle ---- */

/* Arms the session's timer (connect or idle timeout) for at_ms. A session must
 * never be left without its timeout: when the timer cannot be armed (no memory for the
 * heap) it ends now. Returns false when it did. */
static bool arm_timer(struct tcp_session *s, uint64_t at_ms)
{
    if (s->drain_at_ms && s->drain_at_ms < at_ms) /* a reload drains it (tcp_reload) */
        at_ms = s->drain_at_ms;
    if (ev_timer_arm_at(&s->w->loop, &s->timer, at_ms) == 0)
        return true;
    s->why = "no memory for a timer";
    session_close(s, END_LOCAL_ERROR);
    return false;
}

static void release_dir(struct worker *w, struct relay_dir *d)
{
    ev_send_finish(&d->send); /* bytes read before the close still go, as without the queue */
    if (d->buf) {
        pool_put(&tw(w)->buf_pool, d->buf);
        d->buf = NULL;
    }
    spliced_drop(&w->pipes, &d->pipe);
}

static void log_session(struct tcp_session *s, enum conn_end why)
{
    struct conn_log_entry e = {
        .client = &s->client,
        .server = s->att.server ? s->att.server->name : NULL,
        .bytes_in = s->up.bytes,
        .bytes_out = s->down.bytes,
        .duration_ms = s->w->loop.now_ms - s->start_ms,
        .end = why,
        .error = why != END_CONNECT_FAILED ? s->why
                 : s->att.why              ? s->att.why
                                           : strerror(s->att.err),
    };
    conn_log(s->w, s->lc, &e);
}

/* Counts what ended a session early, for the listener's metrics. */
static void count_end(struct tcp_session *s, enum conn_end why)
{
    struct listener_counters *c = &s->lc->st.ctr[s->w->id];
    switch (why) {
    case END_CONNECT_FAILED:
    case END_NO_SERVER:
        CTR_ADD(c->connect_failures, 1);
        break;
    default:
        break;
    }
}

static void stats_session(struct tcp_session *s, enum conn_end why)
{
    bool failed = why == END_CONNECT_FAILED || why == END_NO_SERVER || why == END_SERVER_ERROR ||
                  why == END_LOCAL_ERROR;
    struct tcp_stats_end e = {
        .worker = s->w->id,
        .lc = s->lc,
        .backend = s->backend,
        .server = s->state == SESS_ESTABLISHED ? s->att.server : NULL,
        .duration_us = (s->w->loop.now_ms - s->start_ms) * 1000,
        .watches = &s->w->tcp_watches,
        .cli = &s->cli_watch,
        .srv = &s->srv_watch,
        .error = failed ? conn_end_names[why] : NULL,
        .detail = why != END_CONNECT_FAILED ? s->why : s->att.why ? s->att.why : strerror(s->att.err),
    };
    tcp_stats_closed(&e);
}

static void session_free(struct ev_defer *d)
{
    struct tcp_session *s = container_of(d, struct tcp_session, dfree);
    pool_put(&tw(s->w)->session_pool, s);
}

static void session_close(struct tcp_session *s, enum conn_end why)
{
    struct worker *w = s->w;
    struct listener_conf *lc = s->lc;
    if (s->state == SESS_CLOSED)
        return;
    if (why == END_NONE)
        why = END_CLIENT_CLOSE;
    count_end(s, why);
    log_session(s, why);
    stats_session(s, why);
    s->state = SESS_CLOSED;
    ev_timer_cancel(&w->loop, &s->timer);
    /* Give the shared counts back before the peers can see the close: a client that
     * reconnects at once, or reads the metrics, finds its unit free. */
    session_server_release(s);
    admission_release(w->cfg, lc, &s->ad);
    release_dir(w, &s->up); /* before the fds close: a queued send is made on them */
    release_dir(w, &s->down);
    s->cli.xprt->close(&s->cli);
    if (s->srv.h.fd >= 0)
        s->srv.xprt->close(&s->srv);
    ev_task_cancel(&s->task);
    list_del(&s->link);
    tw(w)->nsessions--;
    ev_defer_free(&w->loop, &s->dfree, session_free);
}

/* Stages the PROXY header for the server (if the backend sends one) as the first bytes to
 * write upstream. 0, or -1 out of memory. */
static int stage_upstream_preamble(struct tcp_session *s)
{
    enum proxy_send mode = s->backend->send_proxy;
    if (mode == PROXY_SEND_NONE)
        return 0;
    struct relay_buf *b = pool_get(&tw(s->w)->buf_pool);
    if (!b)
        return -1;
    struct sockaddr_any dst = s->dst;
    dst.len = sizeof(dst.u);
    if (s->dst.u.sa.sa_family == AF_UNSPEC && getsockname(s->cli.h.fd, &dst.u.sa, &dst.len))
        dst.u.sa.sa_family = AF_UNSPEC; /* the builders then write UNKNOWN / LOCAL */
    ssize_t h = mode == PROXY_SEND_V1 ? pp_build_v1(&s->client, &dst, b->data, RELAY_BUF_SIZE)
                                      : pp_build_v2(&s->client, &dst, (uint8_t *)b->data,
                                                    RELAY_BUF_SIZE);
    BUG_ON(h < 0);
    b->off = 0;
    b->len = (uint32_t)h;
    s->up.buf = b;
    return 0;
}

static void init_dir(struct relay_dir *d, void (*sent)(struct ev_send *e, ssize_t res))
{
    memset(d, 0, sizeof(*d));
    d->pipe = SPLICED_NONE;
    ev_send_init(&d->send, NULL, sent);
}

static struct tcp_session *session_new(struct worker *w, struct listener_conf *lc,
                                       struct accepted *a)
{
    struct tcp_session *s = pool_get(&tw(w)->session_pool);
    if (!s)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->w = w;
    s->lc = lc;
    s->backend = a->backend ? a->backend : lc->backend;
    s->client = a->client;
    s->dst = a->dst;
    s->ad = a->ad;
    s->start_ms = a->start_ms;
    s->last_ms = w->loop.now_ms;
    s->cli = a->cli;
    s->cli.h.cb = client_io;
    conn_init_plain(&s->srv, -1, server_io);
    init_dir(&s->up, up_sent);
    init_dir(&s->down, down_sent);
    ev_timer_init(&s->timer, session_timer);
    ev_task_init(&s->task, session_task);
    list_add_tail(&tw(w)->sessions, &s->link);
    tw(w)->nsessions++;
    return s;
}

void tcp_start(struct worker *w, struct listener_conf *lc, struct accepted *a)
{
    struct tcp_session *s = session_new(w, lc, a);
    if (!s) {
        CTR_ADD(lc->st.ctr[w->id].conns_rejected, 1);
        admission_release(w->cfg, lc, &a->ad);
        a->cli.xprt->close(&a->cli); /* out of memory: nothing else to do for this client */
        return;
    }
    s->state = SESS_CONNECTING;
    if (conn_take_registration(w, &s->cli, a) < 0) {
        session_close(s, END_CLIENT_ERROR);
        return;
    }
    tcp_stats_watch(&w->tcp_watches, &s->cli_watch, s->cli.h.fd, lc, NULL);
    session_connect(s);
}

/* The run queue: a retry after a failed connect, or a transfer that used its budget. */
static void session_task(struct ev_task *t)
{
    struct tcp_session *s = container_of(t, struct tcp_session, task);
    if (s->state == SESS_CLOSED)
        return;
    if (s->retry_pending) {
        s->retry_pending = false;
        session_connect(s);
    } else if (s->state == SESS_ESTABLISHED) {
        session_pump(s);
    }
}

/* ---- the mode (net/listener_mode.h) ---- */

static void tcp_close_all(struct worker *w)
{
    struct list *pos, *tmp;
    if (!tw(w))
        return;
    list_for_each_safe(pos, tmp, &tw(w)->sessions)
    {
        session_close(list_entry(pos, struct tcp_session, link), END_SHUTDOWN);
    }
}

/* A reload: sessions whose listener, backend and server stay as they were go on untouched
 * (on the generation they started on); the others are closed after timeouts.reload_drain
 * (at once when it is 0). */
static void tcp_reload(struct worker *w, struct config *old)
{
    struct list *pos, *tmp;
    (void)old;
    if (!tw(w))
        return;
    list_for_each_safe(pos, tmp, &tw(w)->sessions)
    {
        struct tcp_session *s = list_entry(pos, struct tcp_session, link);
        if (s->drain_at_ms || config_path_kept(w->cfg, s->lc, s->att.server))
            continue;
        s->drain_at_ms = w->loop.now_ms + w->cfg->reload_drain_ms;
        if (!ev_timer_armed(&s->timer) || s->drain_at_ms < s->timer.expire_ms)
            arm_timer(s, s->drain_at_ms);
    }
}

/* Called only on a running worker: its TCP state exists. */
static uint32_t tcp_sessions(const struct worker *w)
{
    return tw(w)->nsessions;
}

static void tcp_worker_free(struct worker *w)
{
    struct tcp_worker *t = tw(w);
    if (!t)
        return;
    BUG_ON(t->nsessions); /* after close_all and the loop's reap */
    pool_destroy(&t->session_pool);
    pool_destroy(&t->buf_pool);
    free(t);
    w->mode_state[MODE_TCP] = NULL;
}

static int tcp_worker_init(struct worker *w)
{
    struct tcp_worker *t = w->mode_state[MODE_TCP] = calloc(1, sizeof(struct tcp_worker));
    if (!t)
        return -1;
    list_init(&t->sessions);
    pool_init(&t->session_pool, sizeof(struct tcp_session), POOL_MAX_FREE);
    pool_init(&t->buf_pool, sizeof(struct relay_buf), POOL_MAX_FREE);
    return 0;
}

static int tcp_bind(struct listen_sock *ls, const struct sockaddr_any *addr)
{
    return sock_listen_tcp(addr, (int)ls->lc->backlog, 1);
}

const struct listener_mode_ops tcp_mode_ops = {
    .name = "tcp",
    .bind = tcp_bind,
    .start = tcp_start, /* a stream mode */
    .worker_init = tcp_worker_init,
    .worker_free = tcp_worker_free, /* no drain: sessions end by themselves */
    .close_all = tcp_close_all,
    .reload = tcp_reload,
    .sessions = tcp_sessions,
};
