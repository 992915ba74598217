/* worker.c — worker threads: listening sockets, accept, commands, per-batch chores.
 * See worker.h. Sessions live in the listener modes (net/listener_mode.h), reached only
 * through w->modes.
 */
#include "worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/time.h"
#include "ev/sendq.h"
#include "net/sock_inherit.h"
#include "net/linger.h"
#include "net/stage.h"
#include "stats/tcp_info.h"

/* Connections accepted per readiness event at most (HAProxy's tune.maxaccept is 64 too).
 * Accepting one per event saves the accept(2) that says EAGAIN, but makes small loop
 * turns: an origin on the same CPU is then woken for fewer requests at a time. A/B in the
 * pinned layout, 6 interleaved rounds: with 64, Strata's CPU per HTTP request on a new
 * connection fell from 32.8 to 26.9 µs and the origin's from 19.5 to 15.4; per L4
 * connection from 76.3 to 72.2 µs. Each worker has its own SO_REUSEPORT socket, so a
 * batch takes nothing from another worker's share. */
#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100
/* Sends made per io_uring_enter at most (a flush with more makes several). */
#define SENDQ_ENTRIES 256
#define ACCEPT_PAUSE_LOG_MS 10000

void worker_log(struct worker *w, const char *fmt, ...)
{
    static const struct log_target err = {LOG_DEST_STDERR, LOG_FORMAT_TEXT};
    struct log_line l;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0 || !log_begin(&l, &w->logs, err, NULL))
        return;
    log_put_raw(&l, " info ", 6);
    log_put_raw(&l, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    log_end(&l);
}

static void set_accepting(struct worker *w, bool on)
{
    for (unsigned i = 0; i < w->nsocks; i++) {
        /* datagram sockets accept nothing: out of descriptors, they drop the datagrams of
         * new flows (counted) and go on relaying the open ones */
        if (w->socks[i].h.fd < 0 || w->socks[i].ops->io)
            continue;
        if (on)
            ev_add_level_in(&w->loop, &w->socks[i].h);
        else
            ev_del(&w->loop, &w->socks[i].h);
    }
}

/* Out of descriptors or memory: a level-triggered listener would spin on the same error,
 * so stop accepting for a while; open sessions go on and may free resources meanwhile. */
static void pause_accepting(struct worker *w, struct listen_sock *ls, int err)
{
    if (w->loop.now_ms >= w->pause_logged_ms + ACCEPT_PAUSE_LOG_MS || !w->pause_logged_ms) {
        log_warn("listener %s: accept: %s; pausing new connections on worker %u for %u ms "
                 "(logged once per %u s)",
                 ls->lc->name, strerror(err), w->id, ACCEPT_PAUSE_MS, ACCEPT_PAUSE_LOG_MS / 1000);
        w->pause_logged_ms = w->loop.now_ms;
    }
    set_accepting(w, false);
    /* Without the timer nothing would resume accepting: stay paused only with it. */
    if (ev_timer_arm(&w->loop, &w->accept_resume, ACCEPT_PAUSE_MS) < 0)
        set_accepting(w, true);
}

static void resume_accepting(struct ev_loop *loop, struct ev_timer *t)
{
    struct worker *w = container_of(t, struct worker, accept_resume);
    if (w->applied_cmd == WORKER_RUN)
        set_accepting(w, true);
}

static void accept_cb(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct listen_sock *ls = container_of(h, struct listen_sock, h);
    struct worker *w = ls->w;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_any peer;
        peer.len = sizeof(peer.u);
        int fd = accept4(h->fd, &peer.u.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(w, ls, errno);
            return; /* EAGAIN, or an aborted connection: nothing more now */
        }
        stage_accept(w, ls->lc, fd, &peer, ls->ops->start);
    }
}

/* keep_datagram: datagram sockets stay open (and read): the replies of open flows leave
 * by them. */
static void close_listeners(struct worker *w, bool keep_datagram)
{
    for (unsigned i = 0; i < w->nsocks; i++) {
        if (keep_datagram && w->socks[i].ops->io)
            continue;
        if (w->socks[i].h.fd >= 0) {
            ev_del(&w->loop, &w->socks[i].h);
            close(w->socks[i].h.fd);
            w->socks[i].h.fd = -1;
        }
    }
}

/* After a binary upgrade (w->handed_over): the datagram listeners the new process took
 * leave this loop, so that it reads every datagram of theirs; their fds stay for the
 * replies of the flows still open here (closed when the worker ends). */
static void mute_datagram_listeners(struct worker *w)
{
    for (unsigned i = 0; i < w->nsocks; i++) {
        struct listen_sock *ls = &w->socks[i];
        if (ls->ops->io && ls->h.fd >= 0 && ls->handed_over)
            ev_del(&w->loop, &ls->h);
    }
}

/* Ends every connection in the stage and every session of every mode now; their memory
 * goes at the next ev_reap. */
static void close_all(struct worker *w)
{
    stage_close_all(w);
    linger_close_all(w);
    for (unsigned m = 0; m < w->nmodes; m++)
        w->modes[m]->close_all(w);
}

/* ---- reloads: the swap and the generations left behind ---- */

#define RETIRE_TICK_MS 200

/* No connection of any worker is left on cfg: each holds a unit of its listener's active
 * count until its end (HTTP connections move theirs to the next generation with
 * admission_follow; UDP flows and pooled server connections are moved or closed by their
 * mode's `reload`). */
static bool generation_quiet(const struct config *cfg)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        if (atomic_load_explicit(&cfg->listeners[i].st.active, memory_order_acquire))
            return false;
    return true;
}

static void retired_drop(struct retired_gen *r)
{
    config_unref(r->cfg); /* never the last: the control thread holds one until `released` */
    free(r->socks);
    atomic_fetch_add_explicit(r->released, 1, memory_order_release);
    free(r);
}

/* At the end of a batch: a generation found quiet at the end of the previous one is
 * dropped (whatever this worker did with it then is over). */
static void retired_check(struct worker *w)
{
    for (struct retired_gen **pr = &w->retired; *pr;) {
        struct retired_gen *r = *pr;
        if (r->quiet) {
            *pr = r->next;
            retired_drop(r);
            continue;
        }
        r->quiet = generation_quiet(r->cfg);
        pr = &r->next;
    }
}

static void retire_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct worker *w = container_of(t, struct worker, retire_tick);
    /* the batch this timer ran in ends with after_events, which looks at them */
    if (w->retired && ev_timer_arm(loop, t, RETIRE_TICK_MS) < 0)
        log_warn("worker %u: cannot re-arm the reload timer; old generations are freed "
                 "on the next events", w->id);
}

/* The old sockets leave the loop: a kept one's fd lives on in the new array, the others
 * close (a removed listener: connections waiting in it are refused, as at a stop). The
 * old entries get fd -1, so an event of this batch that still names one does nothing. */
static void swap_sockets(struct worker *w, struct worker_swap *sw, bool accepting)
{
    for (unsigned i = 0; i < w->nsocks; i++) {
        struct listen_sock *ls = &w->socks[i];
        if (ls->h.fd < 0)
            continue;
        ev_del(&w->loop, &ls->h);
        if (!sw->kept[i])
            close(ls->h.fd);
        ls->h.fd = -1;
    }
    for (unsigned i = 0; i < sw->nsocks; i++) {
        struct listen_sock *ls = &sw->socks[i];
        ls->w = w;
        if ((ls->ops->io || accepting) && ev_add_level_in(&w->loop, &ls->h) < 0)
            log_err("worker %u: listener %s: epoll: %s; this worker does not accept on it",
                    w->id, ls->lc->name, strerror(errno));
    }
}

static void apply_swap(struct worker *w, struct worker_swap *sw)
{
    bool accepting = w->applied_cmd == WORKER_RUN && !ev_timer_armed(&w->accept_resume);
    struct retired_gen *r = sw->retired;
    swap_sockets(w, sw, accepting);
    r->cfg = w->cfg;
    r->socks = w->socks;
    r->released = sw->released;
    w->cfg = sw->cfg;
    w->socks = sw->socks;
    w->nsocks = sw->nsocks;
    for (unsigned m = 0; m < w->nmodes; m++)
        if (w->modes[m]->reload)
            w->modes[m]->reload(w, r->cfg);
    r->next = w->retired;
    w->retired = r;
    if (!ev_timer_armed(&w->retire_tick) &&
        ev_timer_arm(&w->loop, &w->retire_tick, RETIRE_TICK_MS) < 0)
        log_warn("worker %u: cannot arm the reload timer", w->id);
    atomic_store_explicit(&sw->done, true, memory_order_release);
}

/* Listening sockets of every address of cfg's listeners: 0 when none. */
static unsigned count_addrs(const struct config *cfg)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        n += cfg->listeners[i].naddrs;
    return n;
}

/* A listening socket of w for address j of lc, not open yet. */
static void listen_sock_init(struct worker *w, struct listen_sock *ls, struct listener_conf *lc,
                             uint32_t j)
{
    BUG_ON(lc->mode >= w->nmodes);
    ls->lc = lc;
    ls->addr_index = j;
    ls->ops = w->modes[lc->mode];
    ls->w = w;
    ls->h.cb = ls->ops->io ? ls->ops->io : accept_cb;
}

/* An old socket of w that can serve `addr` of a listener in `mode`, not yet taken. */
static struct listen_sock *kept_socket(struct worker *w, struct worker_swap *sw,
                                       enum listener_mode mode, const struct sockaddr_any *addr)
{
    for (unsigned i = 0; i < w->nsocks; i++) {
        struct listen_sock *o = &w->socks[i];
        if (!sw->kept[i] && o->h.fd >= 0 && o->lc->mode == mode &&
            addr_equal(&o->lc->addrs[o->addr_index], addr)) {
            sw->kept[i] = true;
            return o;
        }
    }
    return NULL;
}

int worker_swap_prepare(struct worker *w, struct config *nc, struct worker_swap *sw,
                        unsigned *bound, char *err, size_t errlen)
{
    unsigned n = count_addrs(nc);
    memset(sw, 0, sizeof(*sw));
    sw->socks = calloc(n ? n : 1, sizeof(*sw->socks));
    sw->kept = calloc(w->nsocks ? w->nsocks : 1, sizeof(*sw->kept));
    sw->retired = calloc(1, sizeof(*sw->retired));
    if (!sw->socks || !sw->kept || !sw->retired) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < nc->nlisteners; i++) {
        struct listener_conf *lc = &nc->listeners[i];
        for (uint32_t j = 0; j < lc->naddrs; j++) {
            struct listen_sock *ls = &sw->socks[sw->nsocks];
            listen_sock_init(w, ls, lc, j);
            struct listen_sock *o = kept_socket(w, sw, lc->mode, &lc->addrs[j]);
            if (o) {
                ls->h.fd = o->h.fd;
                ls->pktinfo = o->pktinfo;
            } else if ((ls->h.fd = ls->ops->bind(ls, &lc->addrs[j])) < 0) {
                snprintf(err, errlen, "listener %s: cannot listen on %s: %s", lc->name,
                         lc->addr_texts[j], strerror(errno));
                return -1;
            } else {
                (*bound)++;
            }
            sw->nsocks++;
        }
    }
    return 0;
}

void worker_swap_abort(struct worker *w, struct worker_swap *sw)
{
    for (unsigned i = 0; sw->socks && i < sw->nsocks; i++) {
        bool kept = false;
        for (unsigned o = 0; o < w->nsocks && !kept; o++)
            kept = sw->kept[o] && w->socks[o].h.fd == sw->socks[i].h.fd;
        if (!kept)
            close(sw->socks[i].h.fd);
    }
    free(sw->socks);
    free(sw->kept);
    free(sw->retired);
    memset(sw, 0, sizeof(*sw));
}

void worker_swap_post(struct worker *w, struct worker_swap *sw)
{
    atomic_store_explicit(&w->swap, sw, memory_order_release);
    ev_loop_wake(&w->loop);
}

static void on_wake(struct ev_loop *loop)
{
    struct worker *w = loop->owner;
    struct worker_swap *sw = atomic_exchange_explicit(&w->swap, NULL, memory_order_acq_rel);
    if (sw)
        apply_swap(w, sw);
    int cmd = atomic_load(&w->cmd);
    if (cmd == w->applied_cmd)
        return;
    w->applied_cmd = cmd;
    ev_timer_cancel(loop, &w->accept_resume);
    if (cmd == WORKER_DRAIN) {
        close_listeners(w, true);
        if (atomic_load_explicit(&w->handed_over, memory_order_acquire))
            mute_datagram_listeners(w);
        for (unsigned m = 0; m < w->nmodes; m++)
            if (w->modes[m]->drain)
                w->modes[m]->drain(w);
    } else if (cmd == WORKER_STOP) {
        close_all(w);
        close_listeners(w, false);
    }
    atomic_store_explicit(&w->acked_cmd, cmd, memory_order_release);
}

static uint32_t open_sessions(const struct worker *w)
{
    uint32_t n = stage_count(w) + linger_count(w);
    for (unsigned m = 0; m < w->nmodes; m++)
        n += w->modes[m]->sessions(w);
    return n;
}

/* After the batch's tasks (the loop's run queue), before its deferred frees. */
static void after_events(struct ev_loop *loop)
{
    struct worker *w = loop->owner;
    stage_log_tick(w);
    for (unsigned m = 0; m < w->nmodes; m++)
        if (w->modes[m]->after_events)
            w->modes[m]->after_events(w);
    log_bufs_flush(&w->logs);
    if (w->retired)
        retired_check(w);
    if (w->applied_cmd != WORKER_RUN && open_sessions(w) == 0)
        loop->stop = true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ev_loop_run(&w->loop);
    close_all(w);
    ev_reap(&w->loop);
    log_bufs_flush(&w->logs);
    atomic_store(&w->exited, true);
    return NULL;
}

static int worker_open_sockets(struct worker *w, struct config *cfg, char *err, size_t errlen)
{
    unsigned n = count_addrs(cfg);
    w->socks = calloc(n ? n : 1, sizeof(*w->socks));
    if (!w->socks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_conf *lc = &cfg->listeners[i];
        for (uint32_t j = 0; j < lc->naddrs; j++) {
            struct listen_sock *ls = &w->socks[w->nsocks];
            listen_sock_init(w, ls, lc, j);
            /* a binary upgrade: the socket of the process upgraded, with its queue */
            ls->h.fd = sock_inherit_take((int)lc->mode, &lc->addrs[j]);
            ls->pktinfo = ls->h.fd >= 0 && ls->ops->io && addr_is_wildcard(&lc->addrs[j]);
            if (ls->h.fd < 0)
                ls->h.fd = ls->ops->bind(ls, &lc->addrs[j]);
            if (ls->h.fd < 0) {
                snprintf(err, errlen, "listener %s: cannot listen on %s: %s", lc->name,
                         lc->addr_texts[j], strerror(errno));
                return -1;
            }
            w->nsocks++;
            if (ev_add_level_in(&w->loop, &ls->h) < 0) {
                snprintf(err, errlen, "epoll: %s", strerror(errno));
                return -1;
            }
        }
    }
    return 0;
}

static void worker_free(struct worker *w)
{
    close_listeners(w, false);
    if (w->loop.epfd >= 0) { /* else the loop, the stage and every mode never started */
        close_all(w);
        ev_reap(&w->loop);
        for (unsigned m = 0; m < w->nmodes; m++)
            w->modes[m]->worker_free(w);
        stage_worker_free(w);
        linger_worker_free(w);
        tcp_watches_stop(&w->tcp_watches);
        ev_loop_free(&w->loop);
    }
    while (w->retired) { /* after close_all: the last sessions on them are gone */
        struct retired_gen *r = w->retired;
        w->retired = r->next;
        retired_drop(r);
    }
    log_bufs_free(&w->logs);
    pipe_pool_destroy(&w->pipes); /* after the modes: their sessions gave theirs back */
    free(w->scratch);
    w->scratch = NULL;
    free(w->socks);
    w->socks = NULL;
    if (w->cfg)
        config_unref(w->cfg);
    w->cfg = NULL;
}

static int worker_init(struct worker *w, unsigned id, struct config *cfg,
                       const struct listener_mode_ops *const *modes, unsigned nmodes, char *err,
                       size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->modes = modes;
    w->nmodes = nmodes;
    w->cfg = config_ref(cfg); /* dropped by worker_free */
    if (ev_loop_init(&w->loop) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        goto fail;
    }
    ev_timer_init(&w->accept_resume, resume_accepting);
    ev_timer_init(&w->retire_tick, retire_tick);
    tcp_watches_init(&w->tcp_watches, &w->loop, id);
    w->loop.owner = w;
    w->loop.on_wake = on_wake;
    w->loop.after_events = after_events;
    stage_worker_init(w);
    linger_worker_init(w);
    if (!(w->scratch = malloc(RELAY_BUF_SIZE)) ||
        pipe_pool_init(&w->pipes, cfg->pipe_cache, cfg->pipe_size) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->io_uring && ev_sendq_uring(&w->loop, SENDQ_ENTRIES) < 0 && id == 0)
        log_warn("io_uring unavailable (%s): workers send one by one", strerror(errno));
    for (unsigned m = 0; m < nmodes; m++) {
        if (modes[m]->worker_init(w) < 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (worker_open_sockets(w, cfg, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    worker_free(w);
    return -1;
}

int workers_init(struct worker *ws, unsigned n, struct config *cfg,
                 const struct listener_mode_ops *const *modes, unsigned nmodes, char *err,
                 size_t errlen)
{
    BUG_ON(nmodes > WORKER_MODES);
    for (unsigned i = 0; i < n; i++) {
        if (worker_init(&ws[i], i, cfg, modes, nmodes, err, errlen) < 0) {
            while (i-- > 0)
                worker_free(&ws[i]);
            return -1;
        }
    }
    return 0;
}

int workers_start(struct worker *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int rc = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
        if (rc) {
            log_err("cannot start worker %u: %s", i, strerror(rc));
            return -1;
        }
        ws[i].started = true;
    }
    return 0;
}

void worker_command(struct worker *w, enum worker_cmd cmd)
{
    atomic_store(&w->cmd, (int)cmd);
    ev_loop_wake(&w->loop);
}

void workers_join(struct worker *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (ws[i].started)
            pthread_join(ws[i].thread, NULL);
        worker_free(&ws[i]);
    }
}

static bool worker_alive(struct worker *w)
{
    return w->started && !atomic_load(&w->exited);
}

unsigned workers_running(struct worker *ws, unsigned n)
{
    unsigned running = 0;
    for (unsigned i = 0; i < n; i++)
        running += worker_alive(&ws[i]);
    return running;
}

bool workers_wait_applied(struct worker *ws, unsigned n, enum worker_cmd cmd,
                          unsigned timeout_ms)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        unsigned pending = 0;
        for (unsigned i = 0; i < n; i++)
            pending += worker_alive(&ws[i]) &&
                       atomic_load_explicit(&ws[i].acked_cmd, memory_order_acquire) != (int)cmd;
        if (pending == 0)
            return true;
        if (mono_ms() >= deadline)
            return false;
        nanosleep(&(struct timespec){.tv_nsec = 1000 * 1000}, NULL);
    }
}
