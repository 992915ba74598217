/* upstream.c — one attempt to reach a server (pick, reserve, connect, handshake, classify,
 * count, passive health, retry budget); see upstream.h. Used by the TCP relay
 * (l4/tcp_proxy.c), new UDP flows (l4/udp_proxy.c: pick and classification only) and,
 * through the connection pool (pool.c), the HTTP stream (http/h1_exchange.c).
 */
#include "upstream/upstream.h"

#include <errno.h>
#include <string.h>

#include "core/bug.h"
#include "ev/worker.h"
#include "health/health.h"
#include "net/sock.h"
#include "tls/tls.h"

enum up_fault upstream_classify(int err)
{
    switch (err) {
    case EMFILE:        /* descriptors: this process */
    case ENFILE:        /* descriptors: the host */
    case ENOBUFS:       /* socket memory */
    case ENOMEM:        /* memory */
    case EADDRNOTAVAIL: /* no local port (or address) left for the connection */
    case EAGAIN:        /* Linux connect(2): no ephemeral port left */
    case ENOSPC:        /* epoll_ctl(2): max_user_watches */
        return UP_FAULT_LOCAL;
    default:
        return UP_FAULT_SERVER;
    }
}

void upstream_attempt_init(struct up_attempt *a, struct backend *b, uint32_t max_tries,
                           const struct sockaddr_any *client)
{
    *a = (struct up_attempt){
        .backend = b,
        .req = {.client = client},
        .max_tries = (uint8_t)(max_tries == 0    ? 1
                               : max_tries > 255 ? 255
                                                 : max_tries),
    };
}

struct server *upstream_pick(struct up_attempt *a, struct worker *w, struct server *prefer)
{
    if (upstream_exhausted(a))
        return NULL;
    struct server *s = NULL;
    if (prefer && lb_eligible_sticky(prefer, &a->req) && server_acquire(prefer))
        s = prefer;
    else
        s = lb_pick_acquire(a->backend, w->id, &a->req);
    return s ? upstream_reserved(a, s) : NULL;
}

struct server *upstream_reserved(struct up_attempt *a, struct server *s)
{
    BUG_ON(a->server);
    a->server = s;
    a->tries++;
    a->err = 0;
    a->why = NULL;
    return s;
}

void upstream_release(struct up_attempt *a)
{
    if (a->server) {
        server_release(a->server);
        a->server = NULL;
    }
    a->phase = UP_IDLE;
}

void upstream_report(struct server *s, struct worker *w, bool ok)
{
    health_passive_report(s, ok, w->loop.now_ms);
}

void upstream_fault(struct up_attempt *a, struct worker *w, bool report)
{
    struct server *s = a->server;
    if (s) {
        if (report)
            upstream_report(s, w, false);
        if (a->req.nexclude < LB_MAX_EXCLUDE)
            a->req.exclude[a->req.nexclude++] = s;
    }
    upstream_release(a);
}

enum up_next upstream_failed(struct up_attempt *a, struct worker *w, int err, const char *why)
{
    a->err = err;
    a->why = why;
    if (upstream_classify(err) == UP_FAULT_LOCAL) {
        upstream_release(a); /* our shortage: no blame, and no other server would fare better */
        return UP_SHORTAGE;
    }
    if (a->server)
        CTR_ADD(a->server->st.ctr[w->id].connect_errors, 1);
    upstream_fault(a, w, true);
    return upstream_exhausted(a) ? UP_SPENT : UP_TRY_NEXT;
}

enum up_xprt upstream_xprt_kind(const struct backend *b)
{
    return b->tls ? UP_XPRT_TLS : UP_XPRT_PLAIN;
}

int upstream_attach_xprt(struct conn *c, struct backend *b, struct server *s, struct worker *w)
{
    if (b->tls)
        return tls_client_attach(c, b->tls, s, w->id);
    c->xprt = &xprt_plain;
    c->ctx = NULL;
    return 0;
}

/* Records a failure of the connect in progress (the caller books it). */
static enum up_connect connect_error(struct up_attempt *a, int err, const char *why)
{
    a->err = err;
    a->why = why;
    a->phase = UP_IDLE;
    return UP_CONNECT_FAILED;
}

/* The transport's handshake, once the TCP connect is done. */
static enum up_connect handshake(struct up_attempt *a, struct worker *w, struct conn *c)
{
    const char *why = NULL;
    if (c->xprt->handshake(c, &why) < 0) {
        if (errno == EAGAIN)
            return UP_CONNECT_PENDING;
        return connect_error(a, errno ? errno : ECONNABORTED, why ? why : "handshake failed");
    }
    a->phase = UP_IDLE;
    CTR_ADD(a->server->st.ctr[w->id].conns_total, 1);
    return UP_CONNECT_DONE;
}

enum up_connect upstream_connect(struct up_attempt *a, struct worker *w, struct conn *c,
                                 ev_io_cb cb, struct ev_timer *timer)
{
    struct server *s = a->server;
    int in_progress = 0;
    int fd = sock_connect_tcp(&s->addr, &in_progress);
    conn_init_plain(c, fd, cb);
    if (fd < 0)
        return connect_error(a, errno, NULL);
    if (upstream_attach_xprt(c, a->backend, s, w) < 0 || ev_add(&w->loop, &c->h) < 0 ||
        (timer && ev_timer_arm(&w->loop, timer, a->backend->connect_timeout_ms) < 0)) {
        int err = errno;
        c->xprt->close(c); /* also leaves epoll */
        return connect_error(a, err, NULL);
    }
    if (in_progress) {
        a->phase = UP_TCP;
        return UP_CONNECT_PENDING;
    }
    a->phase = UP_HANDSHAKE;
    sock_nodelay(fd);
    return handshake(a, w, c);
}

enum up_connect upstream_connect_step(struct up_attempt *a, struct worker *w, struct conn *c,
                                      uint32_t events)
{
    if (a->phase == UP_IDLE)
        return UP_CONNECT_DONE; /* nothing in progress */
    if (a->phase == UP_TCP) {
        if (!(c->flags & (CONN_WR_READY | CONN_ERROR)))
            return UP_CONNECT_PENDING;
        /* Writable without error or hang-up means connected: no getsockopt needed. */
        if (events & (EPOLLERR | EPOLLHUP)) {
            int err = sock_error(c->h.fd);
            return connect_error(a, err ? err : ECONNREFUSED, NULL);
        }
        a->phase = UP_HANDSHAKE;
        sock_nodelay(c->h.fd);
    }
    return handshake(a, w, c);
}
