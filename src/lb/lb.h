/* lb.h — the balancer interface: one ops table per algorithm (src/lb/<name>.c).
 *
 * A balancer picks a server of a backend for a new connection. pick() is called
 * concurrently by all workers; it may read `shared` (built once by init, read-only after)
 * and mutate only the caller's `struct lb_worker`. It must return only eligible servers:
 * up, below max_conns, and not in req->exclude. Backup servers are considered only when
 * no primary server is eligible (lb_pick() handles that by calling pick twice).
 */
#ifndef STRATA_LB_LB_H
#define STRATA_LB_LB_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config-t.h"

/* Per-worker mutable state, one per (backend, worker). */
struct lb_worker {
    uint64_t rr;  /* round-robin cursor */
    uint64_t rng; /* xorshift state, non-zero */
    int64_t *cw;  /* smooth weighted RR current weights [nservers] */
} __attribute__((aligned(CACHELINE)));

#define LB_MAX_EXCLUDE 8

struct lb_req {
    const struct sockaddr_any *client;            /* for source_hash and maglev */
    const void *key; /* when set (HTTP `hash:`), hashed instead of the client address */
    size_t keylen;
    const struct server *exclude[LB_MAX_EXCLUDE]; /* servers already tried */
    unsigned nexclude;
    bool backup; /* pick among backup servers instead of primaries */
};

struct lb_ops {
    const char *name;
    /* Builds b->lb_shared (may stay NULL). Returns 0, or -1 on allocation failure. */
    int (*init)(struct backend *b);
    void (*destroy)(struct backend *b);
    struct server *(*pick)(struct backend *b, struct lb_worker *w, const struct lb_req *req);
};

extern const struct lb_ops lb_round_robin, lb_weighted, lb_least_conn, lb_p2c, lb_source_hash,
    lb_maglev;

/* The ops for a balance kind. */
const struct lb_ops *lb_ops_for(enum balance_kind kind);

/* Allocates b->lb_worker[nworkers] and calls ops->init. Returns 0 or -1. */
int lb_backend_init(struct backend *b, unsigned nworkers);
void lb_backend_free(struct backend *b);

/* True when s may take a new connection for this request (runtime state READY, health,
 * limit, exclusion, and the primary/backup tier asked for). */
bool lb_eligible(const struct server *s, const struct lb_req *req);

/* lb_eligible for the server a sticky cookie names: a draining server still takes it. */
bool lb_eligible_sticky(const struct server *s, const struct lb_req *req);

/* Picks a primary, or a backup when no primary is eligible. NULL when none is. */
struct server *lb_pick(struct backend *b, unsigned worker, struct lb_req *req);

/* Reserves one unit of s->st.live->active (connections, flows or in-flight HTTP requests: what
 * least_conn and max_connections count), unless that would pass s->max_conns. */
bool server_acquire(struct server *s);
void server_release(struct server *s);

/* lb_pick, then server_acquire: a server picked but full is excluded and the pick is made
 * again. Returns the reserved server, or NULL when none can take more. */
struct server *lb_pick_acquire(struct backend *b, unsigned worker, struct lb_req *req);

/* What hashing balancers hash: req->key when set, else the client's IP address. */
uint64_t lb_req_hash(const struct lb_req *req);

/* A server's weight for balancing: the runtime one (the configured weight at load, then
 * what the runtime API set), at least 1. */
static inline uint32_t lb_weight(const struct server *s)
{
    uint32_t w = atomic_load_explicit(&s->st.weight, memory_order_relaxed);
    return w ? w : 1;
}

/* Not removed by the runtime API (removed servers keep their slot until a reload). */
static inline bool server_in_use(const struct server *s)
{
    return atomic_load_explicit(&s->st.admin, memory_order_relaxed) != SRV_REMOVED;
}

/* Server slots allocated for b: its servers and the room for runtime additions. Arrays
 * indexed by server (per-worker balancer state, pools) are sized by this. */
static inline uint32_t backend_slots(const struct backend *b)
{
    return b->servers_cap > b->nservers ? b->servers_cap : b->nservers;
}

/* Maglev introspection (tests, admin): the lookup table of a tier as server indexes into
 * b->servers, and its size in *m. NULL when the backend is not maglev or the tier has no
 * server. */
const uint32_t *lb_maglev_table(const struct backend *b, bool backup, uint32_t *m);

#endif
