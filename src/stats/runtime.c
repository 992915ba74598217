/* runtime.c — see runtime.h. Histograms come from hist_alloc (untouched pages cost no
 * memory), route counters from it too for the same reason: a route's exact status codes
 * are 500 counters of which a few are ever written. */
#include "stats/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "stats/recent.h"

static void *zeroed_pages(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int stats_runtime_build(struct config *c)
{
    size_t nh = c->histograms ? (size_t)c->workers * HIST_KINDS : 0; /* 0: none allocated */
    for (uint32_t i = 0; i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        if (nh && !(l->st.hist = hist_alloc(nh)))
            return -1;
        if (!(l->st.recent = zeroed_pages(c->workers * sizeof(struct recent_ring))))
            return -1;
        for (uint32_t r = 0; r < l->http.nroutes; r++) {
            struct http_route *rt = &l->http.routes[r];
            if ((nh && !(rt->hist = hist_alloc(nh))) ||
                !(rt->ctr = zeroed_pages(c->workers * sizeof(struct route_counters))))
                return -1;
        }
    }
    for (uint32_t b = 0; b < c->nbackends; b++) {
        struct backend *be = &c->backends[b];
        if (nh && !(be->hist = hist_alloc(nh)))
            return -1;
        for (uint32_t s = 0; nh && s < be->nservers; s++)
            if (!(be->servers[s].st.hist = hist_alloc(nh)))
                return -1;
    }
    return 0;
}

void stats_runtime_free(struct config *c)
{
    size_t nh = (size_t)c->workers * HIST_KINDS;
    for (uint32_t i = 0; c->listeners && i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        hist_free(l->st.hist, nh);
        if (l->st.recent)
            munmap(l->st.recent, c->workers * sizeof(struct recent_ring));
        for (uint32_t r = 0; l->http.routes && r < l->http.nroutes; r++) {
            struct http_route *rt = &l->http.routes[r];
            hist_free(rt->hist, nh);
            if (rt->ctr)
                munmap(rt->ctr, c->workers * sizeof(struct route_counters));
            rt->hist = NULL;
            rt->ctr = NULL;
        }
        l->st.hist = NULL;
        l->st.recent = NULL;
    }
    for (uint32_t b = 0; c->backends && b < c->nbackends; b++) {
        struct backend *be = &c->backends[b];
        hist_free(be->hist, nh);
        be->hist = NULL;
        for (uint32_t s = 0; be->servers && s < be->nservers; s++) {
            hist_free(be->servers[s].st.hist, nh);
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
