/* round_robin.c — plain round robin over one cursor shared by all workers (an atomic
 * fetch-add per pick, a few ns beside the ~80 µs a proxied connection costs), so the
 * rotation is exact across workers: N connections reach N different servers. Also the fallback of
 * the hashing balancers when a request carries no client address; their shared state is not a
 * cursor, so they use the worker's own.
 */
#include <stdlib.h>

#include "lb.h"

struct rr_shared {
    _Atomic uint64_t cursor;
} __attribute__((aligned(CACHELINE)));

static int rr_init(struct backend *b)
{
    struct rr_shared *sh = aligned_alloc(CACHELINE, sizeof(*sh));
    if (!sh)
        return -1;
    atomic_init(&sh->cursor, 0);
    b->lb_shared = sh;
    return 0;
}

static void rr_destroy(struct backend *b)
{
    free(b->lb_shared);
    b->lb_shared = NULL;
}

/* The ticket selects the (ticket mod k)-th of the k eligible servers, so a server that
 * is down does not double the share of the one after it. */
static struct server *rr_pick(struct backend *b, struct lb_worker *w, const struct lb_req *req)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < b->nservers; i++)
        k += lb_eligible(&b->servers[i], req);
    if (k == 0)
        return NULL;
    bool shared = b->lb_ops == &lb_round_robin && b->lb_shared;
    uint64_t ticket = shared
                          ? atomic_fetch_add_explicit(&((struct rr_shared *)b->lb_shared)->cursor,
                                                      1, memory_order_relaxed)
                          : w->rr++;
    uint32_t target = (uint32_t)(ticket % k);
    struct server *first = NULL;
    for (uint32_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (!lb_eligible(s, req))
            continue;
        if (target-- == 0)
            return s;
        if (!first)
            first = s;
    }
    return first; /* eligibility changed between the passes (health, limits) */
}

const struct lb_ops lb_round_robin = {
    .name = "round_robin",
    .init = rr_init,
    .destroy = rr_destroy,
    .pick = rr_pick,
};
