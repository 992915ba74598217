/* least_conn.c — the eligible server with the fewest open connections per unit of weight
 * (active / weight, compared as active_a * weight_b < active_b * weight_a, no division).
 * Ties go to the first one met from a start that rotates with the worker's cursor, so
 * servers with equal load share the new connections instead of server 0 taking them all.
 */
#include "lb.h"

static struct server *lc_pick(struct backend *b, struct lb_worker *w, const struct lb_req *req)
{
    uint32_t n = b->nservers;
    if (n == 0)
        return NULL;
    uint32_t start = (uint32_t)(w->rr++ % n);
    struct server *best = NULL;
    uint64_t best_active = 0, best_weight = 1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t idx = start + i < n ? start + i : start + i - n;
        struct server *s = &b->servers[idx];
        if (!lb_eligible(s, req))
            continue;
        uint64_t active = atomic_load_explicit(&s->st.live->active, memory_order_relaxed);
        uint64_t weight = lb_weight(s);
        if (!best || active * best_weight < best_active * weight) {
            best = s;
            best_active = active;
            best_weight = weight;
        }
    }
    return best;
}

const struct lb_ops lb_least_conn = {
    .name = "least_conn",
    .pick = lc_pick,
};
