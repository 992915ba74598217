/* trends.h — traffic over time in fixed rings: one point per second for the last hour and
 * one per minute for the last day, for each series below. Memory is fixed when the rings
 * are made (10 series × 5,040 points × 8 bytes: about 400 KiB).
 *
 * Nothing here is on the data path: the workers only bump their per-worker counters
 * (stats/counters-t.h), and the control thread folds the process totals into the rings
 * once a second (trends_fold). The newest per-second point is the last complete second;
 * the newest per-minute point is the minute in progress. One thread owns a struct trends.
 */
#ifndef STRATA_STATS_TRENDS_H
#define STRATA_STATS_TRENDS_H

#include <stdbool.h>
#include <stdint.h>

struct config;

enum trend_series {
    TR_REQUESTS,  /* HTTP requests */
    TR_2XX,       /* HTTP responses by status class */
    TR_3XX,
    TR_4XX,
    TR_5XX,
    TR_BYTES_IN,  /* HTTP listeners: client -> proxy */
    TR_BYTES_OUT, /* HTTP listeners: proxy -> client */
    TR_L4_CONNS,  /* tcp listeners: connections accepted; udp listeners: flows opened */
    TR_L4_BYTES_IN,
    TR_L4_BYTES_OUT,
    TR_COUNT
};

#define TRENDS_SECONDS 3600 /* the per-second ring: one hour */
#define TRENDS_MINUTES 1440 /* the per-minute ring: one day */

/* Points of nseries series over the same time steps. */
struct trend_ring {
    int64_t end; /* index (unix second or minute) of the newest point; 0 = none yet */
    uint32_t len;
    uint32_t nseries;
    uint64_t **v; /* [nseries][len], v[s][end % len] is the newest */
};

struct trends {
    struct trend_ring sec, min;
    uint64_t last[TR_COUNT]; /* the totals at the previous fold */
    bool primed;             /* last[] holds a baseline (0 at start: so are the counters) */
};

/* The JSON names of the series, in enum order ("requests", "status_2xx", ...). */
extern const char *const trend_names[TR_COUNT];

/* Allocates the rings. Returns 0, or -1 (out of memory; t is then empty and freeable). */
int trends_init(struct trends *t);
void trends_free(struct trends *t);

/* The process totals of every series, summed over cfg's listeners and the workers. */
void trends_totals(const struct config *cfg, uint64_t totals[TR_COUNT]);

/* Adds what changed since the previous fold to the second before now_ms (a fold runs just
 * after each second boundary) and to its minute. Seconds without a fold stay 0. A total
 * that went down (a new configuration's counters) restarts the baseline. */
void trends_fold(struct trends *t, const uint64_t totals[TR_COUNT], int64_t now_ms);

/* The last n points of series s of ring r, oldest first, into out[n] (0 before the start).
 * Returns the index of the newest point (r->end). */
int64_t trend_points(const struct trend_ring *r, unsigned s, uint32_t n, uint64_t *out);

/* Rings of other series (stats/country_trends.h), zeroed: a per-second ring (TRENDS_SECONDS) and a per-minute ring (TRENDS_MINUTES) of nseries
 * series: both made (0), or neither (-1, out of memory; both freeable). */
int trend_rings_init(struct trend_ring *sec, struct trend_ring *min, uint32_t nseries);
void trend_rings_free(struct trend_ring *sec, struct trend_ring *min);
/* Adds d[nseries] to the second a fold at now_ms closes (the one before now_ms's) and to
 * its minute, moving each ring on first when that point is newer than its newest (the
 * points skipped over are zeroed). */
void trend_rings_add(struct trend_ring *sec, struct trend_ring *min, int64_t now_ms,
                     const uint64_t *d);

#endif
