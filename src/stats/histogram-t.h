/* histogram-t.h — a latency histogram of one thing (a listener, route, backend or server)
 * and one kind of duration, as one worker records it (types only; histogram.h has the
 * functions).
 *
 * Two views of the same samples, both in microseconds:
 *  - `le`: the Prometheus buckets (fixed bounds, HIST_LE_BOUNDS_US), not cumulative, the
 *    last one is +Inf; with `sum_us` they make a Prometheus histogram;
 *  - `sketch`: log-linear buckets in the HDR style: exact below 2^(HIST_SUB_BITS+1) µs,
 *    then 2^HIST_SUB_BITS buckets per power of two, so a bucket's midpoint is within
 *    1/2^(HIST_SUB_BITS+1) (0.78%) of every value in it. Quantiles come from it. Values
 *    above HIST_MAX_US (134 s) land in the last bucket.
 * Counts only grow, so blocks merge by adding and a window is the difference of two
 * reads. Written by one worker (relaxed atomics as in counters-t.h), summed when read.
 */
#ifndef STRATA_STATS_HISTOGRAM_T_H
#define STRATA_STATS_HISTOGRAM_T_H

#include "stats/counters-t.h"

/* What is timed. */
enum hist_kind {
    HIST_TOTAL,   /* HTTP request: from its first byte to its end */
    HIST_TTFB,    /* request: from its first byte to the response head from the server */
    HIST_CONNECT, /* a new connection to a server: connect (and TLS) until usable */
    HIST_TLS,     /* listener: TLS handshake with the client */
    HIST_RTT,     /* server: smoothed RTT of its connections, sampled (stats/tcp_info.h) */
    HIST_SESSION, /* TCP relay session: from accept to close */
    HIST_KINDS
};

#define HIST_LE_COUNT 16 /* finite Prometheus bounds; le[HIST_LE_COUNT] is +Inf */
#define HIST_SUB_BITS 6
#define HIST_MAX_BITS 27 /* values up to 2^27 - 1 µs */
#define HIST_SKETCH_BUCKETS (((HIST_MAX_BITS - HIST_SUB_BITS) << HIST_SUB_BITS) + (1 << HIST_SUB_BITS))

struct hist {
    counter_t le[HIST_LE_COUNT + 1];
    counter_t sum_us;
    counter_t sketch[HIST_SKETCH_BUCKETS];
} __attribute__((aligned(CACHELINE)));

/* A merged read of hists (plain numbers, owned by the reader). */
struct hist_snap {
    uint64_t le[HIST_LE_COUNT + 1];
    uint64_t sum_us;
    uint64_t count;
    uint64_t sketch[HIST_SKETCH_BUCKETS];
};

#endif
