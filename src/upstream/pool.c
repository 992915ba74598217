/* pool.c — per-worker pools of server connections and their leases; see pool.h. */
#include "upstream/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bug.h"
#include "ev/worker.h"
#include "http/hbuf.h"
#include "lb/lb.h"
#include "stats/tcp_info.h"

void upool_number_servers(struct config *cfg)
{
    uint32_t gid = 0;
    for (uint32_t i = 0; i < cfg->nbackends; i++)
        for (uint32_t j = 0; j < backend_slots(&cfg->backends[i]); j++)
            cfg->backends[i].servers[j].gid = gid++;
}

static uint32_t count_servers(const struct config *cfg)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < cfg->nbackends; i++)
        n += backend_slots(&cfg->backends[i]); /* servers added at run time too */
    return n;
}

int upool_init(struct upool *p, const struct config *cfg)
{
    p->nkeys = count_servers(cfg) * UP_XPRT_KINDS;
    p->avail = calloc(p->nkeys ? p->nkeys : 1, sizeof(*p->avail));
    p->navail = calloc(p->nkeys ? p->nkeys : 1, sizeof(*p->navail));
    if (!p->avail || !p->navail) {
        free(p->avail);
        free(p->navail);
        p->avail = NULL;
        p->navail = NULL;
        return -1;
    }
    for (uint32_t i = 0; i < p->nkeys; i++)
        list_init(&p->avail[i]);
    pool_init(&p->conns, sizeof(struct upconn), POOL_MAX_FREE);
    return 0;
}

static void upconn_close(struct worker *w, struct upconn *uc);

void upool_free(struct upool *p, struct worker *w)
{
    for (uint32_t i = 0; p->avail && i < p->nkeys; i++) {
        while (!list_empty(&p->avail[i]))
            upconn_close(w, list_entry(p->avail[i].next, struct upconn, link));
    }
    ev_reap(&w->loop); /* outside any batch: free them now */
    pool_destroy(&p->conns);
    free(p->avail);
    free(p->navail);
    p->avail = NULL;
    p->navail = NULL;
}

struct up_key upstream_key(const struct server *s)
{
    return (struct up_key){.server = s->gid, .xprt = (uint8_t)upstream_xprt_kind(s->backend)};
}

static uint32_t key_index(struct up_key k)
{
    return k.server * UP_XPRT_KINDS + k.xprt;
}

/* Events on a connection: its owner's, or, without a lease, any readiness to read means
 * the server closed it or broke the protocol — either way it is of no more use. */
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

static bool on_avail_list(const struct upconn *uc)
{
    return !list_empty(&uc->link);
}

/* Is s a server of the generation the worker serves (whose numbers key the pool)? A
 * connection to a server of an older one (a request that began before a reload) is never
 * pooled, and one of its requests never takes a pooled connection. */
static bool of_current(const struct worker *w, const struct server *s)
{
    const struct backend *b = s->backend;
    return !w->upool.stale && b >= w->cfg->backends && b < w->cfg->backends + w->cfg->nbackends;
}

static void unlink_avail(struct worker *w, struct upconn *uc)
{
    list_del(&uc->link);
    list_init(&uc->link);
    w->upool.navail[key_index(uc->key)]--;
}

static void link_avail(struct worker *w, struct upconn *uc)
{
    list_add_tail(&w->upool.avail[key_index(uc->key)], &uc->link);
    w->upool.navail[key_index(uc->key)]++;
}

/* The most recently used available connection with key k, with one more lease. */
static struct upconn *take_pooled(struct worker *w, struct up_key k)
{
    struct list *l = &w->upool.avail[key_index(k)];
    if (list_empty(l))
        return NULL;
    struct upconn *uc = list_entry(l->prev, struct upconn, link); /* most recent */
    if (++uc->active_streams >= uc->max_streams)
        unlink_avail(w, uc);
    ev_timer_cancel(&w->loop, &uc->idle);
    return uc;
}

/* A new connection to a->server with one lease; NULL with a->err/why set. */
static struct upconn *open_new(struct worker *w, struct up_attempt *a, struct up_key k)
{
    struct upconn *uc = pool_get(&w->upool.conns);
    if (!uc) {
        a->err = ENOMEM;
        a->why = NULL;
        return NULL;
    }
    memset(uc, 0, sizeof(*uc));
    enum up_connect r = upstream_connect(a, w, &uc->c, upconn_io, NULL);
    if (r == UP_CONNECT_FAILED) {
        pool_put(&w->upool.conns, uc);
        return NULL;
    }
    uc->key = k;
    uc->srv = a->server;
    uc->w = w;
    uc->max_streams = 1; /* HTTP/1; a multiplexing codec raises it once it knows */
    uc->active_streams = 1;
    uc->connecting = r == UP_CONNECT_PENDING;
    if (!uc->connecting)
        tcp_watch_start(&w->tcp_watches, &uc->watch, uc->c.h.fd, NULL, uc->srv);
    list_init(&uc->link);
    ev_timer_init(&uc->idle, idle_expired);
    return uc;
}

struct upconn *upstream_acquire(struct worker *w, struct up_attempt *a, void *owner,
                                void (*owner_io)(struct upconn *, uint32_t), bool fresh_only,
                                bool *reused)
{
    BUG_ON(!a->server);
    struct up_key k = upstream_key(a->server);
    struct upconn *uc = fresh_only || !of_current(w, a->server) ? NULL : take_pooled(w, k);
    *reused = uc != NULL;
    if (!uc)
        uc = open_new(w, a, k);
    if (!uc)
        return NULL;
    if (!uc->owner_closed) { /* a multiplexing owner stays */
        uc->owner = owner;
        uc->owner_io = owner_io;
    }
    uc->requests++;
    return uc;
}

void upstream_set_mux(struct upconn *uc, void *owner, void (*io)(struct upconn *, uint32_t),
                      void (*closed)(struct upconn *))
{
    uc->owner = owner;
    uc->owner_io = io;
    uc->owner_closed = closed;
}

void upstream_set_max_streams(struct worker *w, struct upconn *uc, uint16_t n)
{
    uc->max_streams = n;
    if (uc->active_streams == 0) { /* idle: pooled as it is, unless it may carry none */
        if (n == 0 && on_avail_list(uc))
            unlink_avail(w, uc);
        return;
    }
    bool room = uc->active_streams < n && of_current(w, uc->srv);
    if (room && !on_avail_list(uc))
        link_avail(w, uc);
    else if (!room && on_avail_list(uc))
        unlink_avail(w, uc);
}

void upstream_conn_close(struct worker *w, struct upconn *uc)
{
    upconn_close(w, uc);
}

enum up_connect upstream_conn_step(struct worker *w, struct up_attempt *a, struct upconn *uc,
                                   uint32_t events)
{
    enum up_connect r = upstream_connect_step(a, w, &uc->c, events);
    if (r == UP_CONNECT_DONE) {
        uc->connecting = false;
        tcp_watch_start(&w->tcp_watches, &uc->watch, uc->c.h.fd, NULL, uc->srv);
    }
    return r;
}

/* Idle connections kept for uc's key: the backend's max_idle, and no more than the server
 * may have at once (its max_connections counts requests in flight, over all workers). */
static uint32_t idle_cap(const struct upconn *uc)
{
    uint32_t cap = uc->srv->backend->pool_max_idle;
    return uc->srv->max_conns && uc->srv->max_conns < cap ? uc->srv->max_conns : cap;
}

/* May a connection that just lost its last lease serve another? */
static bool may_pool(struct worker *w, struct upconn *uc)
{
    if (uc->in && uc->in->len == 0) {
        hbuf_put(&w->hbuf_pool, uc->in);
        uc->in = NULL;
    }
    return !uc->in && !uc->connecting && uc->max_streams && of_current(w, uc->srv) &&
           w->upool.navail[key_index(uc->key)] < idle_cap(uc) &&
           w->applied_cmd == WORKER_RUN &&
           !(uc->c.flags & (CONN_RD_EOF | CONN_ERROR | CONN_RD_HUP));
}

void upstream_lease_end(struct worker *w, struct upconn *uc, bool keep)
{
    BUG_ON(uc->active_streams == 0);
    if (!keep) {
        upconn_close(w, uc);
        return;
    }
    bool was_full = uc->active_streams-- >= uc->max_streams;
    if (uc->active_streams > 0) { /* other streams still use it (multiplexed) */
        if (was_full && uc->active_streams < uc->max_streams && !on_avail_list(uc) &&
            of_current(w, uc->srv))
            link_avail(w, uc);
        return;
    }
    if (on_avail_list(uc)) /* multiplexed, with room: judged as any idle connection */
        unlink_avail(w, uc);
    if (!may_pool(w, uc)) {
        upconn_close(w, uc);
        return;
    }
    if (!uc->owner_closed) {
        uc->owner = NULL;
        uc->owner_io = NULL;
    }
    link_avail(w, uc);
    if (ev_timer_arm(&w->loop, &uc->idle, uc->srv->backend->pool_idle_timeout_ms) < 0)
        upconn_close(w, uc); /* no timer, no way to end it: do not keep it */
}

static void upconn_free(struct ev_defer *d)
{
    struct upconn *uc = container_of(d, struct upconn, dfree);
    pool_put(&uc->w->upool.conns, uc);
}

static void upconn_close(struct worker *w, struct upconn *uc)
{
    if (uc->c.h.fd < 0)
        return;
    if (on_avail_list(uc))
        unlink_avail(w, uc);
    ev_timer_cancel(&w->loop, &uc->idle);
    if (uc->owner_closed)
        uc->owner_closed(uc);
    tcp_watch_end(&w->tcp_watches, &uc->watch);
    uc->c.xprt->close(&uc->c);
    hbuf_put(&w->hbuf_pool, uc->in);
    uc->in = NULL;
    uc->owner = NULL;
    uc->active_streams = 0;
    ev_defer_free(&w->loop, &uc->dfree, upconn_free);
}

int upool_rebuild(struct upool *p, struct worker *w)
{
    struct upool next = {0};
    p->stale = upool_init(&next, w->cfg) < 0;
    if (p->stale) /* keyed by the old numbers: nothing is pooled any more */
        return -1;
    pool_destroy(&next.conns); /* the connections' memory stays where it is */
    for (uint32_t i = 0; i < p->nkeys; i++) {
        while (!list_empty(&p->avail[i])) {
            struct upconn *uc = list_entry(p->avail[i].next, struct upconn, link);
            if (uc->active_streams == 0) {
                upconn_close(w, uc);
                continue;
            }
            unlink_avail(w, uc); /* multiplexed, with streams of the old generation */
            uc->max_streams = 0; /* none more; closed when its last lease ends */
        }
    }
    free(p->avail);
    free(p->navail);
    p->avail = next.avail;
    p->navail = next.navail;
    p->nkeys = next.nkeys;
    return 0;
}
