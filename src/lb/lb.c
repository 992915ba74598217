/* lb.c — what every balancer shares: the kind → ops mapping, the per-worker state
 * (allocated here, one cache line per worker so workers never share a written line), the
 * eligibility rule, and the primary-then-backup policy of lb_pick(). The algorithms live
 * in one file each and only implement ops->pick (and ops->init for shared tables).
 */
#include "lb.h"

#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/hash.h"

const struct lb_ops *lb_ops_for(enum balance_kind kind)
{
    switch (kind) {
    case BAL_ROUND_ROBIN:
        return &lb_round_robin;
    case BAL_WEIGHTED:
        return &lb_weighted;
    case BAL_LEAST_CONN:
        return &lb_least_conn;
    case BAL_P2C:
        return &lb_p2c;
    case BAL_SOURCE_HASH:
        return &lb_source_hash;
    case BAL_MAGLEV:
        return &lb_maglev;
    }
    return NULL;
}

/* A non-zero xorshift seed, distinct per worker: hash_mix64 is a bijection, so distinct
 * inputs give distinct outputs (the zero fix-up could collide only with a 2^-64 chance). */
static uint64_t worker_seed(const struct backend *b, unsigned i)
{
    uint64_t base = b->name ? hash64(b->name, strlen(b->name), 0x5eed) : 0x5eed;
    uint64_t seed = hash_mix64(base + i + 1);
    return seed ? seed : 0x9e3779b97f4a7c15ull;
}

/* The weighted balancer's current weights: one block of nworkers * slots, worker i
 * owning [i * slots, (i + 1) * slots). lb_worker[0].cw is the block's base. */
static int alloc_current_weights(struct backend *b, unsigned nworkers)
{
    uint32_t n = backend_slots(b); /* servers added at run time have theirs too */
    if (n == 0)
        return 0;
    int64_t *cw = calloc((size_t)nworkers * n, sizeof(*cw));
    if (!cw)
        return -1;
    for (unsigned i = 0; i < nworkers; i++)
        b->lb_worker[i].cw = cw + (size_t)i * n;
    return 0;
}

int lb_backend_init(struct backend *b, unsigned nworkers)
{
    if (!b->lb_ops)
        b->lb_ops = lb_ops_for(b->balance);
    BUG_ON(!b->lb_ops || nworkers == 0);
    b->lb_shared = NULL;
    size_t size = (size_t)nworkers * sizeof(struct lb_worker);
    b->lb_worker = aligned_alloc(CACHELINE, size); /* size is a multiple of CACHELINE */
    if (!b->lb_worker)
        goto fail;
    memset(b->lb_worker, 0, size);
    for (unsigned i = 0; i < nworkers; i++) {
        b->lb_worker[i].rr = i; /* workers start at different servers */
        b->lb_worker[i].rng = worker_seed(b, i);
    }
    if (b->lb_ops == &lb_weighted && alloc_current_weights(b, nworkers) < 0)
        goto fail;
    if (b->lb_ops->init && b->lb_ops->init(b) < 0)
        goto fail;
    return 0;
fail:
    lb_backend_free(b);
    return -1;
}

void lb_backend_free(struct backend *b)
{
    if (b->lb_ops && b->lb_ops->destroy)
        b->lb_ops->destroy(b);
    b->lb_shared = NULL;
    if (b->lb_worker)
        free(b->lb_worker[0].cw);
    free(b->lb_worker);
    b->lb_worker = NULL;
}

/* Health, limit, exclusion and tier; the runtime state is the caller's test. */
static bool eligible_rest(const struct server *s, const struct lb_req *req)
{
    if (s->backup != req->backup)
        return false;
    if (!atomic_load_explicit(&s->st.live->up, memory_order_relaxed))
        return false;
    if (s->max_conns && atomic_load_explicit(&s->st.live->active, memory_order_relaxed) >= s->max_conns)
        return false;
    for (unsigned i = 0; i < req->nexclude && i < LB_MAX_EXCLUDE; i++)
        if (req->exclude[i] == s)
            return false;
    return true;
}

bool lb_eligible(const struct server *s, const struct lb_req *req)
{
    return atomic_load_explicit(&s->st.admin, memory_order_relaxed) == SRV_READY &&
           eligible_rest(s, req);
}

bool lb_eligible_sticky(const struct server *s, const struct lb_req *req)
{
    uint8_t a = atomic_load_explicit(&s->st.admin, memory_order_relaxed);
    return (a == SRV_READY || a == SRV_DRAIN) && eligible_rest(s, req);
}

struct server *lb_pick(struct backend *b, unsigned worker, struct lb_req *req)
{
    struct lb_worker *w = &b->lb_worker[worker];
    bool saved = req->backup;
    req->backup = false;
    struct server *s = b->lb_ops->pick(b, w, req);
    if (!s) {
        req->backup = true;
        s = b->lb_ops->pick(b, w, req);
    }
    req->backup = saved;
    return s;
}

uint64_t lb_req_hash(const struct lb_req *req)
{
    if (req->key)
        return hash64(req->key, req->keylen, 0x5354524154414b59ull);
    return addr_hash_ip(req->client);
}

bool server_acquire(struct server *s)
{
    uint32_t n = atomic_fetch_add_explicit(&s->st.live->active, 1, memory_order_relaxed);
    if (s->max_conns && n >= s->max_conns) {
        atomic_fetch_sub_explicit(&s->st.live->active, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

void server_release(struct server *s)
{
    atomic_fetch_sub_explicit(&s->st.live->active, 1, memory_order_relaxed);
}

struct server *lb_pick_acquire(struct backend *b, unsigned worker, struct lb_req *req)
{
    for (unsigned i = 0; i <= b->nservers; i++) {
        struct server *srv = lb_pick(b, worker, req);
        if (!srv || server_acquire(srv))
            return srv;
        if (req->nexclude >= LB_MAX_EXCLUDE)
            return NULL;
        req->exclude[req->nexclude++] = srv; /* full since picked: skip it */
    }
    return NULL;
}
