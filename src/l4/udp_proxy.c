/* udp_proxy.c — the UDP relay of one worker (see udp_proxy.h).
 *
 * Client → server: the listener socket is read with recvmmsg(2), UDP_BATCH datagrams per
 * call, into the worker's 64 KiB slots; each datagram is found in the listener's flow
 * table (or opens a flow) and sent from its slot on the flow's connected socket.
 * Server → client: a flow's socket is read the same way and the whole batch goes back to
 * the client with one sendmmsg(2) on the listener socket (with IP_PKTINFO on a wildcard
 * address, so the reply leaves from the address the client wrote to).
 * Each datagram is copied once into user space and once out. One that cannot be relayed
 * at once (no server, full socket buffer) is dropped and counted: UDP senders retry, and
 * a relay that queued would only add latency. All sockets are level-triggered for input,
 * so a socket left unread after READ_ROUNDS batches is simply reported again.
 */
#include "udp_proxy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "core/logbuf.h"
#include "l4/udp_flow.h"
#include "l4/udp_quic.h"
#include "net/admission.h"
#include "net/cidr.h"
#include "net/sock.h"
#include "upstream/upstream.h"

#define READ_ROUNDS 4      /* batches read per readiness event before other sockets' turn */
#define EXPIRE_BUDGET 1024 /* flows ended per run of a listener's idle timer */
#define WARN_EVERY_MS 10000

enum flow_end { END_IDLE_TIMEOUT, END_EVICTED, END_SERVER_REFUSED, END_SERVER_ERROR, END_SHUTDOWN };

static const char *const end_names[] = {
    [END_IDLE_TIMEOUT] = "idle_timeout",
    [END_EVICTED] = "evicted",
    [END_SERVER_REFUSED] = "server_refused",
    [END_SERVER_ERROR] = "server_error",
    [END_SHUTDOWN] = "shutdown",
};

/* One udp listener on one worker. Invariant: `idle` is armed whenever the table holds a
 * flow (it may fire early: it then re-arms at the LRU flow's deadline). */
struct udp_lsn {
    struct listener_conf *lc; /* of the generation in force (a reload moves it) */
    struct worker *w;
    struct udp_lsn *next_orphan; /* its listener removed by a reload: freed at the end */
    struct udp_flow_table table;
    struct ev_timer idle;
    uint64_t warned_ms; /* last rate-limited warning about dropped datagrams */
};

/* One flow. Invariant: while !closed it is in ul->table, holds h.fd (registered in the
 * worker's loop) and one unit of server->st.live->active; once closed it waits on the loop's
 * deferred frees until the end of the event batch, as a later event may still name it. */
struct udp_sess {
    struct udp_flow f; /* key, LRU position, last activity */
    struct ev_handler h;
    struct udp_lsn *ul;
    struct listen_sock *ls; /* the socket the client wrote to: replies leave by it */
    struct server *server;
    uint64_t start_ms;
    uint64_t dgrams_in, dgrams_out, bytes_in, bytes_out; /* in: from the client */
    struct ev_defer dfree;                               /* once closed */
    bool closed;
    bool replied;     /* the server has answered (reported once to the passive check) */
    const char *quic; /* QUIC listeners: how the server was chosen, "server_id" or "hash" */
};

union udp_cmsg {
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    struct cmsghdr align;
};

struct udp_worker {
    struct udp_lsn **lsn; /* [cfg->nlisteners], indexed like cfg->listeners; NULL but for
                             udp listeners */
    struct udp_lsn *orphans; /* of listeners a reload removed (their flows' memory may
                                still name them until the batch ends) */
    uint32_t nflows;
    struct pool pool; /* struct udp_sess */
    char *slots;      /* UDP_BATCH * UDP_DGRAM_MAX bytes */
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_any peers[UDP_BATCH];
    union udp_cmsg ctl[UDP_BATCH];
};

static void flow_close(struct udp_sess *s, enum flow_end why, int err);

/* The UDP mode's per-worker state, or NULL on a worker without udp listeners. */
static inline struct udp_worker *uw(const struct worker *w)
{
    return w->mode_state[MODE_UDP];
}

/* ---- helpers ---- */

static struct listener_counters *lctr(struct udp_lsn *ul)
{
    return &ul->lc->st.ctr[ul->w->id];
}

static struct server_counters *sctr(struct udp_sess *s)
{
    return &s->server->st.ctr[s->ul->w->id];
}

static void ctr_dec(counter_t *c)
{
    CTR_ADD(*c, (uint64_t)-1); /* wraps to c - 1; a worker's own value never goes below 0 */
}

static struct udp_sess *sess_of(struct udp_flow *f)
{
    return container_of(f, struct udp_sess, f);
}

/* Counts n dropped datagrams; with a reason, also warns (once per WARN_EVERY_MS). */
static void drop(struct udp_lsn *ul, uint64_t n, const char *why)
{
    CTR_ADD(lctr(ul)->dgrams_dropped, n);
    uint64_t now = ul->w->loop.now_ms;
    if (!why || (ul->warned_ms && now < ul->warned_ms + WARN_EVERY_MS))
        return;
    ul->warned_ms = now ? now : 1;
    log_warn("listener %s: dropping datagrams of new flows on worker %u: %s (logged once per "
             "%u s)",
             ul->lc->name, ul->w->id, why, WARN_EVERY_MS / 1000);
}

/* Points msgs[0..n) at the slots for recvmmsg, with room for the sender's address and the
 * packet info only when asked. */
static void batch_prepare(struct udp_worker *u, unsigned n, bool names, bool control)
{
    for (unsigned i = 0; i < n; i++) {
        struct msghdr *m = &u->msgs[i].msg_hdr;
        u->iov[i] = (struct iovec){u->slots + (size_t)i * UDP_DGRAM_MAX, UDP_DGRAM_MAX};
        *m = (struct msghdr){.msg_iov = &u->iov[i], .msg_iovlen = 1};
        if (names) {
            m->msg_name = &u->peers[i].u;
            m->msg_namelen = sizeof(u->peers[i].u);
        }
        if (control) {
            m->msg_control = u->ctl[i].buf;
            m->msg_controllen = sizeof(u->ctl[i].buf);
        }
    }
}

/* The destination of a received datagram, from its IP_PKTINFO / IPV6_PKTINFO. */
static void local_from_cmsg(struct msghdr *m, struct udp_local *l)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            l->family = AF_INET;
            memcpy(&l->u.v4, CMSG_DATA(c), sizeof(l->u.v4));
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            l->family = AF_INET6;
            memcpy(&l->u.v6, CMSG_DATA(c), sizeof(l->u.v6));
        }
    }
}

/* The control message that makes a reply leave from l's address; returns its length (0
 * when the listener's address is specific). */
static size_t pktinfo_build(const struct udp_local *l, union udp_cmsg *ctl)
{
    struct cmsghdr *c = &ctl->align;
    memset(ctl, 0, sizeof(*ctl));
    if (l->family == AF_INET) {
        struct in_pktinfo pi = {.ipi_spec_dst = l->u.v4.ipi_spec_dst};
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(pi));
    }
    if (l->family == AF_INET6) {
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(l->u.v6));
        memcpy(CMSG_DATA(c), &l->u.v6, sizeof(l->u.v6));
        return CMSG_SPACE(sizeof(l->u.v6));
    }
    return 0;
}

/* ---- servers ---- */

/* Flows count as connections: least_conn and max_connections see them. */
/* A server for the next attempt of a new flow, reserved (upstream.h): by the balancer, or
 * by QUIC routing when qr is given (*by_id then says whether the connection ID named it). */
static struct server *pick_server(struct udp_lsn *ul, struct up_attempt *a,
                                  const struct udp_quic_route *qr, bool *by_id)
{
    struct backend *b = ul->lc->backend;
    if (!qr)
        return upstream_pick(a, ul->w, NULL);
    for (unsigned i = 0; i <= b->nservers && !upstream_exhausted(a); i++) {
        struct server *srv = udp_quic_pick(b, qr, &a->req, by_id);
        if (!srv || server_acquire(srv))
            return srv ? upstream_reserved(a, srv) : NULL;
        if (a->req.nexclude >= LB_MAX_EXCLUDE)
            return NULL;
        a->req.exclude[a->req.nexclude++] = srv; /* full since picked: skip it */
    }
    return NULL;
}

/* Picks a server for a new flow of `peer` (by QUIC routing when qr is given) and opens a
 * socket connected to it; a server whose connect() fails is booked by the upstream layer
 * and another is tried, up to `retries` more. Returns the fd with *out reserved
 * (server_acquire), or -1 (already warned). */
static int connect_server(struct udp_lsn *ul, const struct sockaddr_any *peer,
                          const struct udp_quic_route *qr, bool *by_id, struct server **out)
{
    struct up_attempt a;
    upstream_attempt_init(&a, ul->lc->backend, 1 + ul->lc->backend->retries, peer);
    for (;;) {
        struct server *srv = pick_server(ul, &a, qr, by_id);
        if (!srv) {
            drop(ul, 0, a.tries ? "every server tried failed" : "no server available");
            return -1;
        }
        int fd = sock_connect_udp(&srv->addr);
        if (fd >= 0) {
            *out = upstream_hand_over(&a); /* the flow holds the unit now */
            return fd;
        }
        switch (upstream_failed(&a, ul->w, errno, NULL)) {
        case UP_TRY_NEXT:
            continue;
        case UP_SHORTAGE:
            drop(ul, 0, strerror(a.err));
            return -1;
        case UP_SPENT:
            drop(ul, 0, "every server tried failed");
            return -1;
        }
    }
}

/* The server side of a flow failed (an ICMP error, mostly port unreachable): the server
 * is blamed (counted, passive check) and the flow ends; the client's next datagram opens
 * a new flow, on another server if this one is now down. */
static void flow_failed(struct udp_sess *s, int err)
{
    CTR_ADD(sctr(s)->connect_errors, 1);
    upstream_report(s->server, s->ul->w, false);
    flow_close(s, err == ECONNREFUSED ? END_SERVER_REFUSED : END_SERVER_ERROR, err);
}

/* ---- server → client ---- */

/* Sends the n datagrams just read from s's server back to its client, in one sendmmsg
 * when the socket buffer takes them all. */
static void reply(struct udp_sess *s, unsigned n)
{
    struct udp_lsn *ul = s->ul;
    struct udp_worker *u = uw(ul->w);
    union udp_cmsg ctl;
    size_t ctllen = s->ls->pktinfo ? pktinfo_build(&s->f.local, &ctl) : 0;
    uint64_t bytes = 0, sent_bytes = 0;
    unsigned sent = 0, done = 0;

    for (unsigned i = 0; i < n; i++) {
        struct msghdr *m = &u->msgs[i].msg_hdr;
        u->iov[i].iov_len = u->msgs[i].msg_len;
        bytes += u->msgs[i].msg_len;
        m->msg_name = &s->f.peer.u;
        m->msg_namelen = s->f.peer.len;
        m->msg_control = ctllen ? ctl.buf : NULL;
        m->msg_controllen = ctllen;
    }
    CTR_ADD(sctr(s)->dgrams_in, n);
    CTR_ADD(sctr(s)->bytes_in, bytes);
    while (done < n) {
        int r = sendmmsg(s->ls->h.fd, u->msgs + done, n - done, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == ENOBUFS || errno == EBADF))
            break; /* full (or closed): the rest is dropped */
        if (r < 0) {
            done++; /* this one cannot be sent (e.g. EMSGSIZE): skip it */
            continue;
        }
        for (unsigned i = done; i < done + (unsigned)r; i++)
            sent_bytes += u->iov[i].iov_len;
        done += (unsigned)r;
        sent += (unsigned)r;
    }
    s->dgrams_out += sent;
    s->bytes_out += sent_bytes;
    CTR_ADD(lctr(ul)->dgrams_out, sent);
    CTR_ADD(lctr(ul)->bytes_out, sent_bytes);
    if (sent < n)
        drop(ul, n - sent, NULL);
}

static void flow_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct udp_sess *s = container_of(h, struct udp_sess, h);
    struct udp_worker *u = uw(s->ul->w);
    if (s->closed)
        return; /* an event of this batch for a flow closed earlier in it */
    for (int round = 0; round < READ_ROUNDS; round++) {
        batch_prepare(u, UDP_BATCH, false, false);
        int n = recvmmsg(h->fd, u->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                flow_failed(s, errno);
            return;
        }
        if (n == 0)
            return;
        if (!s->replied) {
            s->replied = true;
            upstream_report(s->server, s->ul->w, true);
        }
        udp_flow_touch(&s->ul->table, &s->f, loop->now_ms);
        reply(s, (unsigned)n);
        if (n < UDP_BATCH) {
            /* drained; an error that came with the data is read now, not next time */
            int err = (events & EPOLLERR) ? sock_error(h->fd) : 0;
            if (err)
                flow_failed(s, err);
            return;
        }
    }
}

/* ---- flows ---- */

/* One line per flow in the listener's log (`log:`, core/logbuf.h). */
static void log_flow(struct udp_sess *s, enum flow_end why, int err)
{
    struct worker *w = s->ul->w;
    struct log_line l;
    if (!log_begin(&l, &w->logs, s->ul->lc->st.log, "flow"))
        return;
    char client[ADDR_STRLEN];
    addr_format(&s->f.peer, client, sizeof(client));
    log_nword(&l, "listener", s->ul->lc->name);
    log_nword(&l, "client", client);
    log_cword(&l, "server", s->server->name);
    log_u64(&l, "dgrams_in", s->dgrams_in);
    log_u64(&l, "dgrams_out", s->dgrams_out);
    log_u64(&l, "bytes_in", s->bytes_in);
    log_u64(&l, "bytes_out", s->bytes_out);
    log_u64(&l, "duration_ms", w->loop.now_ms - s->start_ms);
    log_nword(&l, "end", end_names[why]);
    if (why == END_SERVER_ERROR)
        log_cstr(&l, "error", strerror(err));
    if (s->quic)
        log_cword(&l, "quic", s->quic);
    log_end(&l);
}

static void flow_free(struct ev_defer *d)
{
    struct udp_sess *s = container_of(d, struct udp_sess, dfree);
    pool_put(&uw(s->ul->w)->pool, s);
}

static void flow_close(struct udp_sess *s, enum flow_end why, int err)
{
    struct udp_lsn *ul = s->ul;
    struct udp_worker *u = uw(ul->w);
    if (s->closed)
        return;
    log_flow(s, why, err);
    ctr_dec(&lctr(ul)->flows_active);
    ctr_dec(&sctr(s)->flows_active);
    if (why == END_EVICTED) {
        CTR_ADD(lctr(ul)->flows_evicted, 1);
        CTR_ADD(sctr(s)->flows_evicted, 1);
    } else if (why == END_IDLE_TIMEOUT) {
        CTR_ADD(lctr(ul)->flows_timed_out, 1);
        CTR_ADD(sctr(s)->flows_timed_out, 1);
    }
    close(s->h.fd); /* also takes it out of the loop */
    s->h.fd = -1;
    server_release(s->server);
    udp_flow_remove(&ul->table, &s->f);
    s->closed = true;
    ev_defer_free(&ul->w->loop, &s->dfree, flow_free);
    u->nflows--;
}

/* On a QUIC listener: classifies the first datagram of a new flow into *qr. False when it
 * must be dropped (counted here). */
static bool quic_admit(struct udp_lsn *ul, const uint8_t *dgram, size_t len,
                       struct udp_quic_route *qr)
{
    switch (udp_quic_classify(&ul->lc->udp.quic, ul->lc->backend, dgram, len, qr)) {
    case UQ_ROUTE:
        return true;
    case UQ_DROP_INVALID:
        CTR_ADD(lctr(ul)->quic_dropped_invalid, 1);
        return false;
    case UQ_DROP_UNROUTABLE:
        CTR_ADD(lctr(ul)->quic_dropped_unroutable, 1);
        return false;
    }
    return false;
}

/* Opens the flow of a new (peer, local) whose first datagram is dgram[0..len): a server,
 * a socket connected to it, a place in the table (evicting the least recently used flow
 * when full). NULL when the datagram cannot be relayed (the caller counts the drop). */
static struct udp_sess *flow_open(struct udp_lsn *ul, struct listen_sock *ls,
                                  const struct sockaddr_any *peer, const struct udp_local *local,
                                  uint64_t hash, const uint8_t *dgram, size_t len)
{
    struct worker *w = ul->w;
    struct server *srv;
    struct udp_quic_route qroute, *qr = ul->lc->udp.quic.enabled ? &qroute : NULL;
    bool by_id = false;
    if (w->applied_cmd != WORKER_RUN)
        return NULL; /* draining: open flows go on, new ones are not started */
    if (!acl_permits(&ul->lc->acl, peer) || admit_country(w->cfg, ul->lc, peer) != ADMIT_OK) {
        CTR_ADD(lctr(ul)->denied, 1); /* checked once per flow, as TCP does per connection */
        return NULL;
    }
    if (qr && !quic_admit(ul, dgram, len, qr))
        return NULL;
    int fd = connect_server(ul, peer, qr, &by_id, &srv);
    if (fd < 0)
        return NULL;
    struct udp_sess *s = pool_get(&uw(w)->pool);
    if (!s) {
        drop(ul, 0, "out of memory");
        goto fail;
    }
    memset(s, 0, sizeof(*s));
    s->h = (struct ev_handler){.fd = fd, .cb = flow_io};
    if (ev_add_level_in(&w->loop, &s->h) < 0) {
        drop(ul, 0, strerror(errno));
        pool_put(&uw(w)->pool, s);
        goto fail;
    }
    /* the table's timer ends idle flows: no flow without it */
    if (!ev_timer_armed(&ul->idle) &&
        ev_timer_arm(&w->loop, &ul->idle, ul->lc->udp.flow_idle_ms) < 0) {
        drop(ul, 0, "out of memory");
        pool_put(&uw(w)->pool, s);
        goto fail; /* closing fd takes it out of the loop */
    }
    if (udp_flow_full(&ul->table))
        flow_close(sess_of(udp_flow_lru(&ul->table)), END_EVICTED, 0);
    s->f.peer = *peer;
    s->f.local = *local;
    s->f.hash = hash;
    s->ul = ul;
    s->ls = ls;
    s->server = srv;
    s->start_ms = w->loop.now_ms;
    if (qr) {
        s->quic = by_id ? "server_id" : "hash";
        if (by_id)
            CTR_ADD(lctr(ul)->quic_routed_by_server_id, 1);
        else
            CTR_ADD(lctr(ul)->quic_routed_by_hash, 1);
    }
    udp_flow_insert(&ul->table, &s->f, w->loop.now_ms);
    uw(w)->nflows++;
    CTR_ADD(lctr(ul)->flows_created, 1);
    CTR_ADD(lctr(ul)->flows_active, 1);
    CTR_ADD(sctr(s)->flows_created, 1);
    CTR_ADD(sctr(s)->flows_active, 1);
    return s;
fail:
    close(fd);
    server_release(srv);
    return NULL;
}

/* Ends the flows idle for udp.flow_idle (at most EXPIRE_BUDGET per run), then re-arms at
 * the next deadline. */
static void idle_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct udp_lsn *ul = container_of(t, struct udp_lsn, idle);
    uint64_t idle = ul->lc->udp.flow_idle_ms;
    struct udp_flow *f;
    for (unsigned n = 0; n < EXPIRE_BUDGET; n++) {
        if (!(f = udp_flow_expired(&ul->table, loop->now_ms, idle)))
            break;
        flow_close(sess_of(f), END_IDLE_TIMEOUT, 0);
    }
    if (!(f = udp_flow_lru(&ul->table)) || ev_timer_arm_at(loop, t, f->last_ms + idle) == 0)
        return;
    /* out of memory for the timer: no flow may stay open without a way to expire */
    while ((f = udp_flow_lru(&ul->table)))
        flow_close(sess_of(f), END_IDLE_TIMEOUT, ENOMEM);
}

/* ---- client → server ---- */

/* Relays datagram i of the batch just read from ls. */
static void client_datagram(struct udp_lsn *ul, struct listen_sock *ls, unsigned i)
{
    struct worker *w = ul->w;
    struct udp_worker *u = uw(w);
    struct msghdr *m = &u->msgs[i].msg_hdr;
    size_t len = u->msgs[i].msg_len;
    struct sockaddr_any *peer = &u->peers[i];
    struct udp_local local = {.sock = ls};

    CTR_ADD(lctr(ul)->dgrams_in, 1);
    CTR_ADD(lctr(ul)->bytes_in, len);
    if (m->msg_flags & MSG_TRUNC) {
        drop(ul, 1, NULL); /* larger than UDP_DGRAM_MAX: cannot happen over IP */
        return;
    }
    peer->len = m->msg_namelen;
    if (ls->pktinfo)
        local_from_cmsg(m, &local);
    uint64_t hash = udp_flow_hash(&ul->table, peer);
    struct udp_flow *f = udp_flow_find(&ul->table, peer, &local, hash);
    struct udp_sess *s;
    if (f) {
        s = sess_of(f);
        udp_flow_touch(&ul->table, f, w->loop.now_ms);
    } else if (!(s = flow_open(ul, ls, peer, &local, hash, u->iov[i].iov_base, len))) {
        drop(ul, 1, NULL);
        return;
    }
    if (send(s->h.fd, u->iov[i].iov_base, len, MSG_DONTWAIT) < 0) {
        int err = errno;
        drop(ul, 1, NULL);
        if (err != EAGAIN && err != ENOBUFS && err != EMSGSIZE && err != EINTR)
            flow_failed(s, err); /* an earlier datagram's ICMP error, reported now */
        return;
    }
    s->dgrams_in++;
    s->bytes_in += len;
    CTR_ADD(sctr(s)->dgrams_out, 1);
    CTR_ADD(sctr(s)->bytes_out, len);
}

void udp_listener_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct listen_sock *ls = container_of(h, struct listen_sock, h);
    struct worker *w = ls->w;
    struct udp_worker *u = uw(w);
    if (h->fd < 0) /* a socket a reload took out of this batch */
        return;
    struct udp_lsn *ul = u->lsn[ls->lc - w->cfg->listeners];
    if (!ul) { /* a reload could not make its table (out of memory) */
        recv(h->fd, u->slots, UDP_DGRAM_MAX, MSG_DONTWAIT);
        return;
    }
    for (int round = 0; round < READ_ROUNDS; round++) {
        batch_prepare(u, UDP_BATCH, true, ls->pktinfo);
        int n = recvmmsg(h->fd, u->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return; /* EAGAIN (or a closed socket): level-triggered, nothing is lost */
        for (int i = 0; i < n; i++)
            client_datagram(ul, ls, (unsigned)i);
        if (n < UDP_BATCH)
            return;
    }
}

/* ---- the mode (net/listener_mode.h) ---- */

static void udp_close_all(struct worker *w)
{
    struct udp_worker *u = uw(w);
    if (!u)
        return;
    for (uint32_t i = 0; i < w->cfg->nlisteners; i++) {
        struct udp_lsn *ul = u->lsn[i];
        struct udp_flow *f;
        while (ul && (f = udp_flow_lru(&ul->table)))
            flow_close(sess_of(f), END_SHUTDOWN, 0);
    }
    /* freed by the loop's reap, after the batch or before udp_worker_free */
}

static uint32_t udp_flows(const struct worker *w)
{
    return uw(w) ? uw(w)->nflows : 0;
}

static void lsn_free(struct worker *w, struct udp_lsn *ul)
{
    ev_timer_cancel(&w->loop, &ul->idle);
    udp_flow_table_free(&ul->table);
    free(ul);
}

/* The flow table of udp listener lc on w; NULL out of memory. */
static struct udp_lsn *lsn_new(struct worker *w, struct listener_conf *lc)
{
    struct udp_lsn *ul = calloc(1, sizeof(*ul));
    if (!ul)
        return NULL;
    if (udp_flow_table_init(&ul->table, lc->udp.max_flows) < 0) {
        free(ul);
        return NULL;
    }
    ul->lc = lc;
    ul->w = w;
    ev_timer_init(&ul->idle, idle_cb);
    return ul;
}

static void udp_worker_free(struct worker *w)
{
    struct udp_worker *u = uw(w);
    if (!u)
        return;
    for (uint32_t i = 0; u->lsn && i < w->cfg->nlisteners; i++)
        if (u->lsn[i])
            lsn_free(w, u->lsn[i]);
    while (u->orphans) {
        struct udp_lsn *ul = u->orphans;
        u->orphans = ul->next_orphan;
        lsn_free(w, ul);
    }
    pool_destroy(&u->pool);
    free(u->slots);
    free(u->lsn);
    free(u);
    w->mode_state[MODE_UDP] = NULL;
}

static int udp_worker_init(struct worker *w)
{
    struct config *cfg = w->cfg;
    uint32_t nudp = 0;
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        nudp += cfg->listeners[i].mode == MODE_UDP;
    if (nudp == 0)
        return 0;
    struct udp_worker *u = calloc(1, sizeof(*u));
    if (!u)
        return -1;
    w->mode_state[MODE_UDP] = u;
    pool_init(&u->pool, sizeof(struct udp_sess), POOL_MAX_FREE);
    u->slots = malloc((size_t)UDP_BATCH * UDP_DGRAM_MAX);
    u->lsn = calloc(cfg->nlisteners, sizeof(*u->lsn));
    if (!u->slots || !u->lsn)
        goto fail;
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].mode == MODE_UDP && !(u->lsn[i] = lsn_new(w, &cfg->listeners[i])))
            goto fail;
    return 0;
fail:
    udp_worker_free(w);
    return -1;
}

/* ---- reloads ---- */

/* The listening socket of the generation in force that took over old (same address). */
static struct listen_sock *socket_successor(struct worker *w, const struct listen_sock *old,
                                            const struct listener_conf *lc)
{
    const struct sockaddr_any *a = &old->lc->addrs[old->addr_index];
    for (unsigned i = 0; i < w->nsocks; i++)
        if (w->socks[i].lc == lc && addr_equal(&lc->addrs[w->socks[i].addr_index], a))
            return &w->socks[i];
    return NULL;
}

/* ul's listener stays (as lc): each flow whose listener, backend and server are written
 * as before goes on, untouched but for its pointers, now to the new generation's objects
 * (its server unit moves too); the others end. */
static void lsn_follow(struct worker *w, struct udp_lsn *ul, struct listener_conf *lc)
{
    struct list *pos, *tmp;
    bool same = lc->fp == ul->lc->fp;
    struct listener_conf *from = ul->lc;
    ul->lc = lc;
    ul->table.max = lc->udp.max_flows;
    list_for_each_safe(pos, tmp, &ul->table.lru)
    {
        struct udp_sess *s = sess_of(container_of(pos, struct udp_flow, lru));
        struct server *to = same ? config_server_successor(w->cfg, s->server) : NULL;
        struct listen_sock *ls = to ? socket_successor(w, s->ls, lc) : NULL;
        if (!ls) {
            ul->lc = from; /* its line names the listener it ran on */
            flow_close(s, END_SHUTDOWN, 0);
            ul->lc = lc;
            continue;
        }
        atomic_fetch_add_explicit(&to->st.live->active, 1, memory_order_relaxed);
        server_release(s->server);
        s->server = to; /* same counters: the reload shared them */
        s->ls = ls;
        s->f.local.sock = ls; /* its key names the socket (not in the hash) */
    }
}

static void udp_reload(struct worker *w, struct config *old)
{
    struct udp_worker *u = uw(w);
    if (!u) { /* no udp listener before */
        if (udp_worker_init(w) < 0)
            log_err("worker %u: reload: out of memory for the UDP flow tables", w->id);
        return;
    }
    struct udp_lsn **next = calloc(w->cfg->nlisteners ? w->cfg->nlisteners : 1, sizeof(*next));
    for (uint32_t i = 0; i < old->nlisteners; i++) {
        struct udp_lsn *ul = u->lsn[i];
        struct listener_conf *to = ul ? config_listener_successor(w->cfg, ul->lc) : NULL;
        if (ul && to && next) {
            lsn_follow(w, ul, to);
            next[to - w->cfg->listeners] = ul;
        } else if (ul) { /* removed: its flows end, its memory goes with the worker's */
            struct udp_flow *f;
            while ((f = udp_flow_lru(&ul->table)))
                flow_close(sess_of(f), END_SHUTDOWN, 0);
            ev_timer_cancel(&w->loop, &ul->idle);
            ul->next_orphan = u->orphans;
            u->orphans = ul;
        }
    }
    if (!next)
        log_err("worker %u: reload: out of memory; UDP flows ended", w->id);
    for (uint32_t i = 0; next && i < w->cfg->nlisteners; i++)
        if (w->cfg->listeners[i].mode == MODE_UDP && !next[i] &&
            !(next[i] = lsn_new(w, &w->cfg->listeners[i])))
            log_err("worker %u: reload: out of memory; listener %s drops datagrams", w->id,
                    w->cfg->listeners[i].name);
    free(u->lsn);
    u->lsn = next;
}

/* On a wildcard address, datagrams carry the address they were sent to (IP_PKTINFO), so
 * that replies leave from it. */
static int udp_bind(struct listen_sock *ls, const struct sockaddr_any *addr)
{
    ls->pktinfo = addr_is_wildcard(addr);
    return sock_bind_udp(addr, 1, ls->pktinfo);
}

const struct listener_mode_ops udp_mode_ops = {
    .name = "udp",
    .bind = udp_bind,
    .io = udp_listener_io, /* a datagram mode: no accept */
    .worker_init = udp_worker_init,
    .reload = udp_reload,
    .worker_free = udp_worker_free,
    .close_all = udp_close_all,
    .sessions = udp_flows, /* flows end when idle */
};
