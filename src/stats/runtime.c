/* runtime.c — see runtime.h. Histograms, route counters and recent-error rings are shared
 * blocks (core/shared_block.h: a reload hands them on; large ones are anonymous pages,
 * which cost nothing until written: a route's exact status codes are 500 counters of which
 * a few are ever written). */
#include "stats/runtime.h"

#include <stdlib.h>
#include <string.h>

#include "core/shared_block.h"
#include "lb/lb.h"
#include "stats/recent.h"

int stats_runtime_build(struct config *c)
{
    size_t nh = c->histograms ? (size_t)c->workers * HIST_KINDS : 0; /* 0: none allocated */
    for (uint32_t i = 0; i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        if (nh && !(l->st.hist = hist_alloc(nh)))
            return -1;
        if (!(l->st.recent = shared_block_new(c->workers * sizeof(struct recent_ring))))
            return -1;
        for (uint32_t r = 0; r < l->http.nroutes; r++) {
            struct http_route *rt = &l->http.routes[r];
            if ((nh && !(rt->hist = hist_alloc(nh))) ||
                !(rt->ctr = shared_block_new(c->workers * sizeof(struct route_counters))))
                return -1;
        }
    }
    for (uint32_t b = 0; b < c->nbackends; b++) {
        struct backend *be = &c->backends[b];
        if (nh && !(be->hist = hist_alloc(nh)))
            return -1;
        for (uint32_t s = 0; nh && s < backend_slots(be); s++) /* runtime slots too */
            if (!(be->servers[s].st.hist = hist_alloc(nh)))
                return -1;
    }
    return 0;
}

void stats_runtime_free(struct config *c)
{
    for (uint32_t i = 0; c->listeners && i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        shared_block_put(l->st.hist);
        shared_block_put(l->st.recent);
        for (uint32_t r = 0; l->http.routes && r < l->http.nroutes; r++) {
            struct http_route *rt = &l->http.routes[r];
            shared_block_put(rt->hist);
            shared_block_put(rt->ctr);
            rt->hist = NULL;
            rt->ctr = NULL;
        }
        l->st.hist = NULL;
        l->st.recent = NULL;
    }
    for (uint32_t b = 0; c->backends && b < c->nbackends; b++) {
        struct backend *be = &c->backends[b];
        shared_block_put(be->hist);
        be->hist = NULL;
        for (uint32_t s = 0; be->servers && s < backend_slots(be); s++) {
            shared_block_put(be->servers[s].st.hist);
            be->servers[s].st.hist = NULL;
        }
    }
}

void stats_hist_read(const struct config *c, const struct hist *block, enum hist_kind kind,
                     struct hist_snap *s)
{
    memset(s, 0, sizeof(*s));
    if (block)
        hist_merge(s, &block[kind], c->workers, HIST_KINDS * sizeof(struct hist));
}
