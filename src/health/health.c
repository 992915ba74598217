/* health.c — the active-check engine on the control loop (scheduling, timeouts, rise/fall),
 * the TCP and UDP check kinds, passive verdicts from the workers' connect results, and
 * server_set_up(), the one writer of st.live->up transitions.
 *
 * Each checked server has one timer: while idle it fires to start the next check; while a
 * check is in flight it is that check's timeout. A kind (check.h) opens the socket and reads
 * its events: a TCP check is a non-blocking connect; a UDP check sends the configured
 * payload on a connected socket and waits for any datagram back; HTTP is in health_http.c,
 * gRPC (over HTTP/2) in health_grpc.c.
 * The socket is closed as soon as the verdict is known. See health.h.
 */
#include "health.h"
#include "check.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/time.h"
#include "ev/loop.h"
#include "lb/lb.h"
#include "lb/server_admin.h"
#include "net/sock.h"
#include "tls/tls.h"

struct health {
    struct ev_loop *loop;
    struct config *cfg; /* one reference */
    struct hc_server *checks; /* room for every server slot of the checked backends */
    uint32_t nchecks;
    uint32_t *seen; /* [nbackends]: servers given a check (those added at run time too) */
    struct ev_timer passive_tick;
    struct ev_timer adopt_tick; /* gives servers added by the runtime API their checks */
    uint64_t rng; /* xorshift state for jitter, non-zero */
};

/* ---- verdicts (any thread) ---- */

bool server_set_up(struct server *s, bool up, const char *reason)
{
    bool expected = !up;
    if (!atomic_compare_exchange_strong(&s->st.live->up, &expected, up))
        return false;
    const char *b = s->backend ? s->backend->name : "?";
    server_history_add(s, "%s: %s", up ? "UP" : "DOWN", reason);
    if (up)
        log_info("server %s/%s is UP: %s", b, s->name, reason);
    else
        log_warn("server %s/%s is DOWN: %s", b, s->name, reason);
    return true;
}

void health_passive_report(struct server *s, bool ok, uint64_t now_ms)
{
    uint32_t fall = s->backend ? s->backend->passive.fall : 0;
    char reason[96];

    if (ok) {
        /* load first: the common case writes nothing to the shared cache line */
        if (atomic_load_explicit(&s->st.live->connect_fails, memory_order_relaxed))
            atomic_store_explicit(&s->st.live->connect_fails, 0, memory_order_relaxed);
        return;
    }
    if (fall == 0)
        return;
    uint32_t n = atomic_fetch_add(&s->st.live->connect_fails, 1) + 1;
    if (n < fall || !atomic_load(&s->st.live->up))
        return;
    snprintf(reason, sizeof(reason), "%u consecutive connect failures (passive)", n);
    if (server_set_up(s, false, reason))
        atomic_store(&s->st.live->passive_down_ms, now_ms ? now_ms : 1);
}

/* ---- helpers ---- */

static uint64_t rng_next(struct health *h)
{
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return h->rng = x;
}

/* "10s" or "1500ms". */
static void fmt_ms(char *buf, size_t len, uint64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* Errors that say something about this host, not about the server. */
static bool local_error(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM ||
           err == EADDRNOTAVAIL;
}

/* Why a check failed, e.g. "connection refused" or "timeout after 1s connecting". */
static void fail_text(const struct hc_server *hs, int err, char *buf, size_t len)
{
    if (err == ETIMEDOUT) {
        char d[32];
        fmt_ms(d, sizeof(d), hs->srv->backend->hc.timeout_ms);
        snprintf(buf, len, "timeout after %s%s%s", d, hs->phase ? " " : "",
                 hs->phase ? hs->phase : "");
        return;
    }
    char tmp[64];
    const char *msg = strerror_r(err, tmp, sizeof(tmp));
    snprintf(buf, len, "%s", msg);
    if (buf[0] >= 'A' && buf[0] <= 'Z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
}

/* ---- active checks (control thread) ---- */

/* Applies one check result to the server's streaks and maybe flips it. */
static void hc_verdict(struct hc_server *hs, bool ok, const char *why)
{
    struct server *s = hs->srv;
    const struct health_conf *hc = &s->backend->hc;
    uint32_t rise = hc->rise ? hc->rise : 1, fall = hc->fall ? hc->fall : 1;
    bool up = atomic_load(&s->st.live->up);
    char reason[256];

    if (!up && hs->last_up)
        hs->oks = 0; /* taken down by someone else (passive): earn `rise` anew */
    if (ok) {
        hs->fails = 0;
        if (hs->oks < UINT32_MAX)
            hs->oks++;
        atomic_store(&s->st.live->connect_fails, 0);
        if (!up && hs->oks >= rise) {
            snprintf(reason, sizeof(reason), "%u consecutive successful %s checks", hs->oks,
                     hs->ops->name);
            atomic_store(&s->st.live->passive_down_ms, 0);
            server_set_up(s, true, reason);
        }
    } else {
        hs->oks = 0;
        if (hs->fails < UINT32_MAX)
            hs->fails++;
        if (up && hs->fails >= fall) {
            snprintf(reason, sizeof(reason), "%u consecutive failed %s checks (%s)", hs->fails,
                     hs->ops->name, why ? why : "failed");
            server_set_up(s, false, reason);
        }
    }
    hs->last_up = atomic_load(&s->st.live->up);
}

/* Arms the timer for the next check: one interval (+-5% jitter) after the last began. */
static void hc_schedule_next(struct hc_server *hs)
{
    struct ev_loop *loop = hs->h->loop;
    uint64_t ival = hs->srv->backend->hc.interval_ms ? hs->srv->backend->hc.interval_ms : 1;
    uint64_t at = hs->started_ms + ival - ival / 20 + rng_next(hs->h) % (ival / 10 + 1);
    if (at < loop->now_ms)
        at = loop->now_ms;
    if (ev_timer_arm_at(loop, &hs->timer, at) < 0)
        log_err("health: cannot schedule the check of %s/%s: out of memory", hs->srv->backend->name,
                hs->srv->name);
}

void hc_finish(struct hc_server *hs, bool ok, const char *why)
{
    struct ev_loop *loop = hs->h->loop;
    if (hs->io.fd >= 0) {
        ev_del(loop, &hs->io);
        hs->xc.xprt->close(&hs->xc); /* closes io.fd (and frees the TLS state) */
        hs->io.fd = -1;
    }
    ev_timer_cancel(loop, &hs->timer);
    hc_verdict(hs, ok, why);
    hc_schedule_next(hs);
}

int hc_connect_result(const struct hc_server *hs, uint32_t events)
{
    int err = sock_error(hs->io.fd);
    if (err || (events & EPOLLOUT))
        return err;
    return events & (EPOLLERR | EPOLLHUP) ? ECONNRESET : EINPROGRESS;
}

void hc_fail_errno(struct hc_server *hs, int err)
{
    char why[96];
    fail_text(hs, err, why, sizeof(why));
    hc_finish(hs, false, why);
}

/* A check could not start for a reason of our own: no verdict, try again next time. */
static void hc_skip(struct hc_server *hs, int err)
{
    if (!hs->local_err_logged)
        log_warn("health: cannot check %s/%s: %s", hs->srv->backend->name, hs->srv->name,
                 strerror(err));
    hs->local_err_logged = true;
    hc_schedule_next(hs);
}

/* TLS to the server (backends with `tls`): the TCP and HTTP kinds check through it. */
static int attach_tls(struct hc_server *hs)
{
    struct tls_client *tc = hs->srv->backend->tls;
    if (!tc || hs->ops == &hc_udp_ops)
        return 0;
    hs->handshaken = false;
    /* no worker's session cache: the control thread is not a worker */
    if (tls_client_attach(&hs->xc, tc, hs->srv, UINT_MAX) < 0)
        return -1;
    return hs->ops->alpn ? tls_client_offer_alpn(&hs->xc, hs->ops->alpn, hs->ops->alpn_len) : 0;
}

static void hc_begin(struct hc_server *hs)
{
    struct ev_loop *loop = hs->h->loop;
    const char *why = NULL;

    hs->started_ms = loop->now_ms;
    hs->phase = NULL;
    errno = 0;
    int fd = hs->ops->open(hs, &why);
    if (fd < 0) {
        if (why)
            hc_finish(hs, false, why);
        else if (local_error(errno))
            hc_skip(hs, errno);
        else
            hc_fail_errno(hs, errno); /* refused or unreachable at once */
        return;
    }
    hs->local_err_logged = false;
    hs->io.fd = fd;
    conn_init_plain(&hs->xc, fd, NULL);
    hs->handshaken = true;
    errno = 0;
    if (attach_tls(hs) < 0) {
        hs->xc.xprt->close(&hs->xc);
        hs->io.fd = -1;
        hc_skip(hs, ENOMEM);
        return;
    }
    if (ev_add(loop, &hs->io) < 0 ||
        ev_timer_arm(loop, &hs->timer, hs->srv->backend->hc.timeout_ms) < 0) {
        int e = errno ? errno : ENOMEM;
        ev_del(loop, &hs->io);
        hs->xc.xprt->close(&hs->xc); /* the fd, and the TLS state if any */
        hs->io.fd = -1;
        hc_skip(hs, e);
    }
    /* a socket already connected (or writable) reports EPOLLOUT at once: edge-triggered
     * registration delivers the current readiness */
}

/* Drives the TLS handshake once connected. True when the kind may see the socket (the
 * handshake is done, or the connect failed: the kind reports that). */
static bool hc_handshake(struct hc_server *hs, uint32_t events)
{
    if (sock_error(hs->io.fd) || (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLOUT)))
        return true;
    if (!(events & (EPOLLIN | EPOLLOUT)))
        return false;
    hs->phase = "in the TLS handshake";
    const char *why = NULL;
    if (hs->xc.xprt->handshake(&hs->xc, &why) == 0) {
        hs->handshaken = true;
        return true;
    }
    if (errno != EAGAIN) {
        char text[96];
        snprintf(text, sizeof(text), "TLS handshake failed: %s", why ? why : "error");
        hc_finish(hs, false, text);
    }
    return false;
}

static void hc_io_cb(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct hc_server *hs = container_of(h, struct hc_server, io);
    (void)loop;
    if (hs->io.fd < 0) /* a stale event for a check already ended */
        return;
    conn_note_events(&hs->xc, events);
    if (!hs->handshaken) {
        if (!hc_handshake(hs, events))
            return;
        if (hs->handshaken)
            events |= EPOLLOUT; /* connected and secured: the kind starts now */
    }
    hs->ops->io(hs, events);
}

/* Idle: start a check. In flight: the check timed out. */
static void hc_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct hc_server *hs = container_of(t, struct hc_server, timer);
    (void)loop;
    if (hs->io.fd >= 0)
        hc_fail_errno(hs, ETIMEDOUT);
    else
        hc_begin(hs);
}

/* ---- the TCP kind: a connect; the UDP kind: a datagram and any answer ---- */

static int tcp_open(struct hc_server *hs, const char **why)
{
    int in_progress;
    return sock_connect_tcp(&hs->srv->addr, &in_progress);
}

static void tcp_io(struct hc_server *hs, uint32_t events)
{
    int err = sock_error(hs->io.fd);
    if (err)
        hc_fail_errno(hs, err);
    else if (events & (EPOLLERR | EPOLLHUP))
        hc_fail_errno(hs, ECONNRESET);
    else if (events & EPOLLOUT)
        hc_finish(hs, true, NULL);
}

/* A socket connected to the server, the payload sent. Returns the fd (the verdict comes
 * with the reply, an ICMP error or the timeout) or -1 with errno. */
static int udp_open(struct hc_server *hs, const char **why)
{
    const struct health_conf *hc = &hs->srv->backend->hc;
    int fd = sock_connect_udp(&hs->srv->addr);
    if (fd < 0)
        return -1;
    if (send(fd, hc->payload, hc->payload_len, MSG_DONTWAIT) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void udp_io(struct hc_server *hs, uint32_t events)
{
    char b[1];
    if (recv(hs->io.fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
        hc_finish(hs, true, NULL); /* any datagram back (truncated here) is an answer */
    else if (errno != EAGAIN && errno != EINTR)
        hc_fail_errno(hs, errno); /* ICMP: port unreachable... */
}

const struct hc_ops hc_tcp_ops = {.name = "TCP", .open = tcp_open, .io = tcp_io};
const struct hc_ops hc_udp_ops = {.name = "UDP", .open = udp_open, .io = udp_io};

/* ---- passive cooldown (control thread) ---- */

/* Brings back, after passive.cooldown_ms, servers that the passive check took down in
 * backends without active checks (with them, the active checks bring servers back). */
static void passive_tick_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct health *h = container_of(t, struct health, passive_tick);
    uint64_t now = mono_ms();
    char reason[64], d[32];

    for (uint32_t b = 0; b < h->cfg->nbackends; b++) {
        struct backend *be = &h->cfg->backends[b];
        if (be->hc.type != HC_NONE || be->passive.fall == 0)
            continue;
        for (uint32_t i = 0; i < be->nservers; i++) {
            struct server *s = &be->servers[i];
            uint64_t down = atomic_load(&s->st.live->passive_down_ms);
            if (!down || atomic_load(&s->st.live->up) || now < down ||
                now - down < be->passive.cooldown_ms)
                continue;
            atomic_store(&s->st.live->connect_fails, 0);
            atomic_store(&s->st.live->passive_down_ms, 0);
            fmt_ms(d, sizeof(d), be->passive.cooldown_ms);
            snprintf(reason, sizeof(reason), "passive cooldown of %s elapsed", d);
            server_set_up(s, true, reason);
        }
    }
    if (ev_timer_arm(loop, t, HEALTH_PASSIVE_TICK_MS) < 0)
        log_err("health: cannot re-arm the passive cooldown tick: out of memory");
}

/* ---- life cycle ---- */

/* Stops everything h started; safe on a partly built h. */
static void health_free(struct health *h)
{
    for (uint32_t i = 0; h->checks && i < h->nchecks; i++) {
        struct hc_server *hs = &h->checks[i];
        ev_timer_cancel(h->loop, &hs->timer);
        if (hs->io.fd >= 0) {
            ev_del(h->loop, &hs->io);
            hs->xc.xprt->close(&hs->xc); /* a check in flight over TLS frees its SSL too */
        }
        if (hs->ops && hs->ops->release)
            hs->ops->release(hs);
    }
    ev_timer_cancel(h->loop, &h->passive_tick);
    ev_timer_cancel(h->loop, &h->adopt_tick);
    if (h->cfg)
        config_unref(h->cfg);
    free(h->checks);
    free(h->seen);
    free(h);
}

static const struct hc_ops *hc_ops_of(enum health_type t)
{
    switch (t) {
    case HC_UDP:
        return &hc_udp_ops;
    case HC_HTTP:
        return &hc_http_ops;
    case HC_GRPC:
        return &hc_grpc_ops;
    default:
        return &hc_tcp_ops;
    }
}

/* Sets up the check of be->servers[i] and arms its first run within a quarter interval
 * (at most 250 ms). Returns 0 or -1. */
static int hc_add(struct health *h, struct backend *be, uint32_t i)
{
    uint64_t spread = (be->hc.interval_ms < 1000 ? be->hc.interval_ms : 1000) / 4;
    struct hc_server *hs = &h->checks[h->nchecks++];
    hs->ops = hc_ops_of(be->hc.type);
    hs->h = h;
    hs->srv = &be->servers[i];
    hs->io.fd = -1;
    if (hs->ops->init && hs->ops->init(hs) < 0)
        return -1;
    hs->io.cb = hc_io_cb;
    ev_timer_init(&hs->timer, hc_timer_cb);
    hs->last_up = atomic_load(&hs->srv->st.live->up);
    return ev_timer_arm(h->loop, &hs->timer, 1 + rng_next(h) % (spread + 1));
}

/* Gives a check to every server of the checked backends that has none yet: all of them at
 * start, then those the runtime API published since (nservers grows; slots are never
 * reused before a reload, so h->seen[b] counts them). Returns 0 or -1. */
static int adopt_servers(struct health *h)
{
    for (uint32_t b = 0; b < h->cfg->nbackends; b++) {
        struct backend *be = &h->cfg->backends[b];
        uint32_t n = atomic_load_explicit(&be->nservers, memory_order_acquire);
        for (; be->hc.type != HC_NONE && h->seen[b] < n; h->seen[b]++)
            if (hc_add(h, be, h->seen[b]) < 0)
                return -1;
    }
    return 0;
}

static void adopt_tick_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct health *h = container_of(t, struct health, adopt_tick);
    if (adopt_servers(h) < 0)
        log_err("health: cannot check a server added at run time: out of memory");
    if (ev_timer_arm(loop, t, HEALTH_PASSIVE_TICK_MS) < 0)
        log_err("health: cannot re-arm the tick for servers added at run time: out of memory");
}

/* Makes room in h->checks for every server slot of the actively checked backends, sets
 * up the checks of the servers there are, and, when servers may be added at run time,
 * arms the tick that adopts them. Returns 0 or -1. */
static int health_init_checks(struct health *h)
{
    struct config *cfg = h->cfg;
    uint32_t n = 0;
    bool room = false;
    for (uint32_t b = 0; b < cfg->nbackends; b++) {
        const struct backend *be = &cfg->backends[b];
        if (be->hc.type == HC_NONE)
            continue;
        n += backend_slots(be);
        room |= backend_slots(be) > be->nservers;
    }
    if (n == 0)
        return 0;
    h->checks = calloc(n, sizeof(*h->checks));
    h->seen = calloc(cfg->nbackends, sizeof(*h->seen));
    if (!h->checks || !h->seen || adopt_servers(h) < 0)
        return -1;
    return room ? ev_timer_arm(h->loop, &h->adopt_tick, HEALTH_PASSIVE_TICK_MS) : 0;
}

struct health *health_start(struct ev_loop *loop, struct config *cfg)
{
    struct health *h = calloc(1, sizeof(*h));
    if (!h)
        goto fail;
    h->loop = loop;
    h->cfg = config_ref(cfg);
    h->rng = (mono_ms() ^ (uint64_t)(uintptr_t)h) | 1;
    ev_timer_init(&h->passive_tick, passive_tick_cb);
    ev_timer_init(&h->adopt_tick, adopt_tick_cb);
    if (health_init_checks(h) < 0)
        goto fail_h;
    for (uint32_t b = 0; b < cfg->nbackends; b++) {
        const struct backend *be = &cfg->backends[b];
        if (be->hc.type == HC_NONE && be->passive.fall > 0) {
            if (ev_timer_arm(loop, &h->passive_tick, HEALTH_PASSIVE_TICK_MS) < 0)
                goto fail_h;
            break;
        }
    }
    return h;
fail_h:
    health_free(h);
fail:
    log_err("health: cannot start the health checks: out of memory");
    return NULL;
}

void health_stop(struct health *h)
{
    if (h)
        health_free(h);
}
