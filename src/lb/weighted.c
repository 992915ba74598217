/* weighted.c — smooth weighted round robin, as NGINX does it
 * (ngx_http_upstream_get_peer in ngx_http_upstream_round_robin.c): every eligible server
 * gains its weight, the one with the highest current weight wins and loses the total. The
 * picks interleave (weights 5,1,1 give a a b a c a a), never a burst of one server.
 * Current weights are per worker (w->cw), so each worker runs its own exact sequence.
 */
#include "lb.h"

#include "core/bug.h"

static struct server *wrr_pick(struct backend *b, struct lb_worker *w, const struct lb_req *req)
{
    BUG_ON(b->nservers && !w->cw);
    struct server *best = NULL;
    int64_t *best_cw = NULL;
    int64_t total = 0;
    for (uint32_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (!lb_eligible(s, req))
            continue;
        int64_t weight = lb_weight(s);
        w->cw[i] += weight;
        total += weight;
        if (!best || w->cw[i] > *best_cw) {
            best = s;
            best_cw = &w->cw[i];
        }
    }
    if (best)
        *best_cw -= total;
    return best;
}

const struct lb_ops lb_weighted = {
    .name = "weighted",
    .pick = wrr_pick,
};
