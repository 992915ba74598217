/* counters-t.h — per-worker counter blocks (types only).
 *
 * Each block is written by exactly one worker thread and read by the admin thread, which
 * sums the blocks of all workers. Single writer, so CTR_ADD is a relaxed load + store (a
 * plain add on x86, no locked instruction); readers may see a value a few events old.
 */
#ifndef STRATA_STATS_COUNTERS_T_H
#define STRATA_STATS_COUNTERS_T_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/bug.h"

typedef _Atomic uint64_t counter_t;

#define CTR_ADD(c, n)                                                                              \
    atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n),            \
                          memory_order_relaxed)
#define CTR_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

struct server_counters {
    counter_t conns_total;    /* connections established to this server */
    counter_t connect_errors; /* refused, unreachable or timed out connects */
    counter_t bytes_in;       /* server -> client */
    counter_t bytes_out;      /* client -> server */
} __attribute__((aligned(CACHELINE)));

struct listener_counters {
    counter_t conns_total;      /* connections accepted */
    counter_t conns_rejected;   /* closed at once: limit reached or no server available */
    counter_t bytes_in;         /* client -> proxy */
    counter_t bytes_out;        /* proxy -> client */
    counter_t connect_failures; /* sessions ended because no server could be reached */
    counter_t timeouts;         /* sessions ended by the idle timeout */
} __attribute__((aligned(CACHELINE)));

#endif
