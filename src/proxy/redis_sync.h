/* redis_sync.h — the control thread's Redis clients for cluster-wide rate limits: one
 * asynchronous hiredis connection per rate_limit filter with `redis`, driven by the
 * control loop (no thread of its own, never touched by a worker). Every `sync_interval`
 * it exchanges the counts of the keys used lately (http/filters/rate_limit_cluster.h),
 * registers this process among the nodes sharing the budgets, and tells the workers
 * whether Redis is up (struct rl_redis_state). An exchange or connect slower than
 * `timeout` or a lost connection marks it down (the limits' fail mode applies) and it
 * reconnects with a backoff from 100 ms to 5 s.
 */
#ifndef STRATA_PROXY_REDIS_SYNC_H
#define STRATA_PROXY_REDIS_SYNC_H

#include <stdatomic.h>
#include <stdint.h>

#include "config/config-t.h"
#include "ev/loop.h"

/* Process-wide, for /metrics; written by the control thread. */
struct redis_sync_stats {
    _Atomic uint64_t up;         /* clients up now */
    _Atomic uint64_t exchanges;  /* rounds of exchanges completed in time */
    _Atomic uint64_t failures;   /* lost, refused, too slow */
    _Atomic uint64_t reconnects; /* connection attempts after the first */
};
extern struct redis_sync_stats redis_sync_stats;

struct redis_sync;

/* Starts a client for each rate_limit filter of cfg with `redis` on the control loop.
 * NULL when out of memory (nothing is started then). */
struct redis_sync *redis_sync_start(struct ev_loop *loop, const struct config *cfg);
/* Closes every client; call from the loop's thread or once it has stopped. */
void redis_sync_stop(struct redis_sync *rs);

#endif
