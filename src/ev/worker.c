/* worker.c — worker threads: listening sockets, accept, commands, per-batch chores.
 * See worker.h. The TCP sessions live in l4/tcp_proxy.c, the UDP flows in l4/udp_proxy.c.
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
#include "core/log.h"
#include "l4/tcp_proxy.h"
#include "net/stage.h"
#include "http/access_log.h"
#include "http/h1_session.h"
#include "l4/udp_proxy.h"
#include "net/sock.h"

/* Accept one connection per readiness event, as NGINX does by default: the listening
 * socket is level-triggered, so the next epoll_wait reports it again if more are queued,
 * and the accept(2) that would only say EAGAIN is never made. Measured with bench/:
 * about 10% less CPU per connection than accepting until EAGAIN. */
#define ACCEPT_BATCH 1
#define ACCEPT_PAUSE_MS 100
#define ACCEPT_PAUSE_LOG_MS 10000

static void log_flush(struct worker *w)
{
    if (w->loglen) {
        ssize_t r = write(STDERR_FILENO, w->logbuf, w->loglen);
        (void)r; /* nowhere to report a failed log write */
        w->loglen = 0;
    }
}

/* Writes "2026-01-02T03:04:05.678Z info " into buf; the date part is cached per second. */
static size_t log_prefix(struct worker *w, char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != w->log_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(w->log_date, sizeof(w->log_date), "%Y-%m-%dT%H:%M:%S", &tm);
        w->log_sec = ts.tv_sec;
    }
    int n = snprintf(buf, len, "%s.%03ldZ info ", w->log_date, ts.tv_nsec / 1000000);
    return n < 0 ? 0 : (size_t)n;
}

/* Appends a line; when the buffer is full it is flushed first. */
void worker_log(struct worker *w, const char *fmt, ...)
{
    char line[512];
    size_t len = log_prefix(w, line, sizeof(line));
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    len += (size_t)n;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated: keep the newline */
    line[len++] = '\n';
    if (w->loglen + len > sizeof(w->logbuf))
        log_flush(w);
    memcpy(w->logbuf + w->loglen, line, len);
    w->loglen += len;
}

static void set_accepting(struct worker *w, bool on)
{
    for (unsigned i = 0; i < w->nsocks; i++) {
        /* UDP sockets read datagrams, they accept nothing: out of descriptors, they drop
         * the datagrams of new flows (counted) and go on relaying the open ones */
        if (w->socks[i].h.fd < 0 || w->socks[i].lc->mode == MODE_UDP)
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
    ev_timer_arm(&w->loop, &w->accept_resume, ACCEPT_PAUSE_MS);
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
        stage_accept(w, ls->lc, fd, &peer, ls->lc->mode == MODE_HTTP ? h1_start : tcp_start);
    }
}

/* keep_udp: UDP sockets stay open (and read): the replies of open flows leave by them. */
static void close_listeners(struct worker *w, bool keep_udp)
{
    for (unsigned i = 0; i < w->nsocks; i++) {
        if (keep_udp && w->socks[i].lc->mode == MODE_UDP)
            continue;
        if (w->socks[i].h.fd >= 0) {
            ev_del(&w->loop, &w->socks[i].h);
            close(w->socks[i].h.fd);
            w->socks[i].h.fd = -1;
        }
    }
}

static void on_wake(struct ev_loop *loop)
{
    struct worker *w = loop->owner;
    int cmd = atomic_load(&w->cmd);
    if (cmd == w->applied_cmd)
        return;
    w->applied_cmd = cmd;
    ev_timer_cancel(loop, &w->accept_resume);
    if (cmd == WORKER_DRAIN) {
        close_listeners(w, true);
        h1_drain(w);
    } else if (cmd == WORKER_STOP) {
        udp_close_all(w);
        close_listeners(w, false);
        stage_close_all(w);
        tcp_close_all(w);
        h1_close_all(w);
    }
}

static void after_events(struct ev_loop *loop)
{
    struct worker *w = loop->owner;
    tcp_run_queue(w);
    stage_log_tick(w);
    stage_free_dead(w);
    tcp_free_dead(w);
    udp_after_events(w);
    h1_after_events(w);
    log_flush(w);
    if (w->applied_cmd != WORKER_RUN && w->nsessions == 0 && w->nhttp == 0 &&
        stage_count(w) == 0 && udp_flows(w) == 0)
        loop->stop = true;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    ev_loop_run(&w->loop);
    stage_close_all(w);
    tcp_close_all(w);
    udp_close_all(w);
    h1_close_all(w);
    log_flush(w);
    atomic_store(&w->exited, true);
    return NULL;
}

static int worker_open_sockets(struct worker *w, struct config *cfg, char *err, size_t errlen)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        n += cfg->listeners[i].naddrs;
    w->socks = calloc(n ? n : 1, sizeof(*w->socks));
    if (!w->socks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_conf *lc = &cfg->listeners[i];
        for (uint32_t j = 0; j < lc->naddrs; j++) {
            struct listen_sock *ls = &w->socks[w->nsocks];
            ls->lc = lc;
            ls->w = w;
            if (lc->mode == MODE_UDP) {
                ls->h.cb = udp_listener_io;
                ls->pktinfo = addr_is_wildcard(&lc->addrs[j]);
                ls->h.fd = sock_bind_udp(&lc->addrs[j], 1, ls->pktinfo);
            } else {
                ls->h.cb = accept_cb;
                ls->h.fd = sock_listen_tcp(&lc->addrs[j], (int)lc->backlog, 1);
                if (ls->h.fd >= 0 && lc->mode == MODE_HTTP)
                    sock_defer_accept(ls->h.fd, HTTP_DEFER_ACCEPT_S);
            }
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
    udp_worker_free(w);
    h1_worker_free(w);
    stage_worker_free(w);
    free(w->socks);
    w->socks = NULL;
    pool_destroy(&w->session_pool);
    pool_destroy(&w->buf_pool);
    pipe_pool_destroy(&w->pipes);
    free(w->scratch);
    ev_loop_free(&w->loop);
    if (w->cfg)
        config_unref(w->cfg);
    w->cfg = NULL;
}

static int worker_init(struct worker *w, unsigned id, struct config *cfg, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    list_init(&w->sessions);
    list_init(&w->dead);
    list_init(&w->runq);
    stage_worker_init(w);
    if (h1_worker_init(w, cfg) < 0) {
        snprintf(err, errlen, "out of memory");
        h1_worker_free(w);
        return -1;
    }
    pool_init(&w->session_pool, tcp_session_size(), POOL_MAX_FREE);
    pool_init(&w->buf_pool, sizeof(struct relay_buf), POOL_MAX_FREE);
    if (ev_loop_init(&w->loop) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        return -1;
    }
    w->cfg = config_ref(cfg); /* dropped by worker_free */
    ev_timer_init(&w->accept_resume, resume_accepting);
    w->loop.owner = w;
    w->loop.on_wake = on_wake;
    w->loop.after_events = after_events;
    w->scratch = malloc(RELAY_BUF_SIZE);
    if (!w->scratch || pipe_pool_init(&w->pipes, cfg->pipe_cache, cfg->pipe_size) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (udp_worker_init(w) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (worker_open_sockets(w, cfg, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    worker_free(w);
    return -1;
}

int workers_init(struct worker *ws, unsigned n, struct config *cfg, char *err, size_t errlen)
{
    upool_number_servers(cfg);
    if (access_log_open(cfg, err, errlen) < 0)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        if (worker_init(&ws[i], i, cfg, err, errlen) < 0) {
            while (i-- > 0)
                worker_free(&ws[i]);
            access_log_close(cfg);
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
    struct config *cfg = n ? config_ref(ws[0].cfg) : NULL;
    for (unsigned i = 0; i < n; i++) {
        if (ws[i].started)
            pthread_join(ws[i].thread, NULL);
        worker_free(&ws[i]);
    }
    if (cfg) {
        access_log_close(cfg);
        config_unref(cfg);
    }
}

unsigned workers_running(struct worker *ws, unsigned n)
{
    unsigned running = 0;
    for (unsigned i = 0; i < n; i++)
        running += ws[i].started && !atomic_load(&ws[i].exited);
    return running;
}
