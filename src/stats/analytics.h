/* analytics.h — traffic analytics in memory, bounded: trends (stats/trends.h) and the
 * top-N tables (stats/topn.h) over the last minute and the last hour.
 *
 * Workers record each finished HTTP request into their own top-N sets without locks:
 * time is cut into ANALYTICS_BUCKET_S buckets and a worker writes only the set of the
 * current bucket (a ring of three per worker), under a per-set sequence count that lets
 * the control thread copy it consistently. The control thread (analytics_tick, once a
 * second) folds the trends and merges every bucket that all workers have left behind into
 * its own rings: 12 buckets (the last minute) and 60 minutes (the last hour). A query
 * merges those with the workers' live buckets. All memory is allocated at start.
 */
#ifndef STRATA_STATS_ANALYTICS_H
#define STRATA_STATS_ANALYTICS_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"
#include "stats/country_trends.h"
#include "stats/topn.h"
#include "stats/trends.h"

struct config;
struct ev_loop;

#define ANALYTICS_BUCKET_S 5
#define ANALYTICS_BUCKETS_PER_MIN (60 / ANALYTICS_BUCKET_S)
#define ANALYTICS_MINUTES 60

/* One finished request as the top-N tables see it. Slices may be empty (p NULL/len 0). */
struct analytics_req {
    const char *path;
    uint32_t path_len; /* as received (normalised here) */
    const struct sockaddr_any *client;
    const char *user_agent, *host, *api_key;
    uint32_t user_agent_len, host_len, api_key_len;
    uint16_t status;
    const char *route; /* route name, or the listener's when none matched */
    const char *country; /* "" when unknown */
    uint64_t bytes;      /* request + response bytes */
};

enum analytics_range { AR_MINUTE, AR_HOUR };

struct analytics;

/* Makes the process-wide analytics for cfg's workers and starts its once-a-second tick on
 * `loop` (the control thread's). Returns NULL when out of memory. The workers record into
 * it from now on (analytics_record). */
struct analytics *analytics_start(struct ev_loop *loop, struct config *cfg);
/* Reads cfg's counters from now on (after a reload). */
void analytics_set_config(struct analytics *a, struct config *cfg);
/* Stops the tick; the workers must have stopped. a may be NULL. */
void analytics_stop(struct analytics *a);

/* Worker `worker`: counts one request in its current bucket, and in its per-country
 * counters when r->country is known. now_ms: monotonic. No-op when analytics are not
 * running. */
void analytics_record(unsigned worker, uint64_t now_ms, const struct analytics_req *r);

/* The control thread's view (call on its thread only). */
const struct trends *analytics_trends(const struct analytics *a);
/* Requests and bytes per country over time (the requests analytics_record counted with a
 * country: `analytics.enabled` and a geo database). */
const struct country_trends *analytics_country_trends(const struct analytics *a);
/* Merges the range ending at now_mono_ms into *out (reset first). */
void analytics_top(struct analytics *a, enum analytics_range range, uint64_t now_mono_ms,
                   struct topn_set *out);
/* The process analytics, or NULL (tests, or before start). */
struct analytics *analytics_current(void);

/* Folds the trends (totals as of now_real_ms) and the buckets finished before now_mono_ms.
 * Called by the tick; exposed for tests. */
void analytics_fold(struct analytics *a, const uint64_t totals[TR_COUNT], int64_t now_real_ms,
                    uint64_t now_mono_ms);
/* For tests: the analytics of n workers without a loop. */
struct analytics *analytics_new(unsigned nworkers);
void analytics_free(struct analytics *a);

#endif
