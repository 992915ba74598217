/* round_robin.c — plain round robin: each worker walks the servers with its own cursor,
 * skipping ineligible ones. Workers start at their own index, so N workers do not all
 * send their first connection to server 0. No shared state. Also the fallback of the
 * hashing balancers when a request carries no client address.
 */
#include "lb.h"

static struct server *rr_pick(struct backend *b, struct lb_worker *w, const struct lb_req *req)
{
    uint32_t n = b->nservers;
    if (n == 0)
        return NULL;
    uint32_t start = (uint32_t)(w->rr % n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = start + i < n ? start + i : start + i - n;
        struct server *s = &b->servers[idx];
        if (lb_eligible(s, req)) {
            w->rr = idx + 1u;
            return s;
        }
    }
    return NULL;
}

const struct lb_ops lb_round_robin = {
    .name = "round_robin",
    .pick = rr_pick,
};
