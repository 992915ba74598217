/* linger.c — see linger.h. */
#include "net/linger.h"

#include <errno.h>
#include <sys/socket.h>

#include "core/bug.h"
#include "core/pool.h"
#include "ev/worker.h"
#include "net/conn.h"

struct lingering {
    struct conn c;
    struct worker *w;
    struct ev_timer timer;
    struct list link; /* w->lingers */
    struct ev_defer dfree;
};

static void linger_free(struct ev_defer *d)
{
    struct lingering *l = container_of(d, struct lingering, dfree);
    pool_put(&l->w->linger_pool, l);
}

static void linger_end(struct lingering *l)
{
    struct worker *w = l->w;
    ev_timer_cancel(&w->loop, &l->timer);
    l->c.xprt->close(&l->c);
    list_del(&l->link);
    w->nlingers--;
    ev_defer_free(&w->loop, &l->dfree, linger_free); /* an event of this batch may name it */
}

/* Reads per event: a peer that sends as fast as this reads must not hold the worker (its
 * next bytes raise a new edge; one that stops with bytes unread waits for the timeout). */
#define LINGER_READS_PER_EVENT 16

/* The socket's bytes are read raw, past the transport: nothing of them is wanted (TLS:
 * the records are not decrypted). Ends at EOF or an error; EAGAIN waits for the next
 * edge. A peer that keeps sending is cut by the timeout. */
static void linger_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct lingering *l = container_of(h, struct lingering, c.h);
    if (l->c.h.fd < 0)
        return;
    for (int i = 0; i < LINGER_READS_PER_EVENT; i++) {
        ssize_t n = recv(h->fd, l->w->scratch, RELAY_BUF_SIZE, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        linger_end(l); /* EOF, or the peer reset: nothing more to protect */
        return;
    }
}

static void linger_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    linger_end(container_of(t, struct lingering, timer));
}

void conn_linger(struct worker *w, struct conn *c, uint32_t timeout_ms)
{
    struct lingering *l = NULL;
    if (c->h.fd < 0)
        return;
    if (timeout_ms && w->nlingers < LINGER_MAX_PER_WORKER && (l = pool_get(&w->linger_pool))) {
        *l = (struct lingering){.c = *c, .w = w};
        l->c.h.cb = linger_io;
        ev_timer_init(&l->timer, linger_timeout);
    }
    if (!l || c->xprt->shutdown_wr(c) < 0 || ev_rebind(&w->loop, &l->c.h) < 0 ||
        ev_timer_arm(&w->loop, &l->timer, timeout_ms) < 0) {
        if (l)
            pool_put(&w->linger_pool, l);
        c->xprt->close(c);
        return;
    }
    c->h.fd = -1; /* the linger owns it now */
    c->ctx = NULL;
    list_add_tail(&w->lingers, &l->link);
    w->nlingers++;
    /* bytes that came before the hand-over raised no edge for this handler */
    linger_io(&w->loop, &l->c.h, EPOLLIN);
}

void linger_worker_init(struct worker *w)
{
    list_init(&w->lingers);
    pool_init(&w->linger_pool, sizeof(struct lingering), POOL_MAX_FREE);
}

void linger_close_all(struct worker *w)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->lingers)
        linger_end(list_entry(pos, struct lingering, link));
}

void linger_worker_free(struct worker *w)
{
    BUG_ON(w->nlingers); /* after linger_close_all and the loop's reap */
    pool_destroy(&w->linger_pool);
}

uint32_t linger_count(const struct worker *w)
{
    return w->nlingers;
}
