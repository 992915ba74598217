/* pool.c — see pool.h. */
#include "upstream/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "ev/worker.h"
#include "http/hbuf.h"
#include "net/sock.h"

void upool_number_servers(struct config *cfg)
{
    uint32_t gid = 0;
    for (uint32_t i = 0; i < cfg->nbackends; i++)
        for (uint32_t j = 0; j < cfg->backends[i].nservers; j++)
            cfg->backends[i].servers[j].gid = gid++;
}

static uint32_t count_servers(const struct config *cfg)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->nbackends; i++)
        n += cfg->backends[i].nservers;
    return n;
}

int upool_init(struct upool *p, const struct config *cfg)
{
    p->nservers = count_servers(cfg);
    p->idle = calloc(p->nservers ? p->nservers : 1, sizeof(*p->idle));
    p->nidle = calloc(p->nservers ? p->nservers : 1, sizeof(*p->nidle));
    if (!p->idle || !p->nidle) {
        free(p->idle);
        free(p->nidle);
        p->idle = NULL;
        p->nidle = NULL;
        return -1;
    }
    for (uint32_t i = 0; i < p->nservers; i++)
        list_init(&p->idle[i]);
    return 0;
}

void upool_free(struct upool *p, struct worker *w)
{
    for (uint32_t i = 0; p->idle && i < p->nservers; i++) {
        while (!list_empty(&p->idle[i]))
            upconn_close(w, list_entry(p->idle[i].next, struct upconn, link));
    }
    ev_reap(&w->loop); /* outside any batch: free them now */
    free(p->idle);
    free(p->nidle);
    p->idle = NULL;
    p->nidle = NULL;
}

/* Events on a connection: its owner's, or, while idle, any readiness to read means the
 * server closed it or broke the protocol — either way it is of no more use. */
static void upconn_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct upconn *uc = container_of(h, struct upconn, c.h);
    if (uc->c.h.fd < 0)
        return;
    if (uc->owner) {
        uc->owner_io(uc, events);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        upconn_close(uc->w, uc);
}

static void idle_expired(struct ev_loop *loop, struct ev_timer *t)
{
    struct upconn *uc = container_of(t, struct upconn, idle);
    upconn_close(uc->w, uc);
}

static void unlink_idle(struct worker *w, struct upconn *uc)
{
    list_del(&uc->link);
    list_init(&uc->link);
    w->upool.nidle[uc->srv->gid]--;
    ev_timer_cancel(&w->loop, &uc->idle);
}

struct upconn *upool_take(struct worker *w, struct server *srv, void *owner,
                          void (*owner_io)(struct upconn *, uint32_t))
{
    struct list *l = &w->upool.idle[srv->gid];
    if (list_empty(l))
        return NULL;
    struct upconn *uc = list_entry(l->prev, struct upconn, link); /* most recent */
    unlink_idle(w, uc);
    uc->owner = owner;
    uc->owner_io = owner_io;
    return uc;
}

struct upconn *upconn_open(struct worker *w, struct server *srv, void *owner,
                           void (*owner_io)(struct upconn *, uint32_t))
{
    struct upconn *uc = calloc(1, sizeof(*uc));
    if (!uc)
        return NULL;
    int in_progress = 0;
    int fd = sock_connect_tcp(&srv->addr, &in_progress);
    if (fd < 0) {
        int err = errno;
        free(uc);
        errno = err;
        return NULL;
    }
    conn_init_plain(&uc->c, fd, upconn_io);
    uc->srv = srv;
    uc->w = w;
    uc->owner = owner;
    uc->owner_io = owner_io;
    uc->connecting = in_progress;
    list_init(&uc->link);
    ev_timer_init(&uc->idle, idle_expired);
    if (ev_add(&w->loop, &uc->c.h) < 0) {
        int err = errno;
        close(fd);
        free(uc);
        errno = err;
        return NULL;
    }
    if (!in_progress)
        sock_nodelay(fd);
    return uc;
}

void upool_park(struct worker *w, struct upconn *uc)
{
    struct backend *b = uc->srv->backend;
    uint32_t gid = uc->srv->gid;
    if (uc->in && uc->in->len == 0) {
        hbuf_put(&w->hbuf_pool, uc->in);
        uc->in = NULL;
    }
    if (uc->in || w->upool.nidle[gid] >= b->pool_max_idle || w->applied_cmd != WORKER_RUN ||
        (uc->c.flags & (CONN_RD_EOF | CONN_ERROR | CONN_RD_HUP))) {
        upconn_close(w, uc);
        return;
    }
    uc->owner = NULL;
    uc->owner_io = NULL;
    list_add_tail(&w->upool.idle[gid], &uc->link);
    w->upool.nidle[gid]++;
    if (ev_timer_arm(&w->loop, &uc->idle, b->pool_idle_timeout_ms) < 0)
        upconn_close(w, uc); /* an idle connection must not outlive its timeout */
}

static void upconn_free(struct ev_defer *d)
{
    free(container_of(d, struct upconn, dfree));
}

void upconn_close(struct worker *w, struct upconn *uc)
{
    if (uc->c.h.fd < 0)
        return;
    if (!uc->owner && !list_empty(&uc->link))
        unlink_idle(w, uc);
    ev_timer_cancel(&w->loop, &uc->idle);
    uc->c.xprt->close(&uc->c);
    hbuf_put(&w->hbuf_pool, uc->in);
    uc->in = NULL;
    uc->owner = NULL;
    ev_defer_free(&w->loop, &uc->dfree, upconn_free);
}
