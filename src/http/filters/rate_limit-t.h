/* rate_limit-t.h — the rate_limit filter's settings and the shared state they point to
 * (types only). Built at config load (config/schema_rate_limit.c), read-only afterwards
 * except through the atomics: the key tables, the counters, the cluster slots.
 *
 * A limit's state is a table of `slots` words indexed by SipHash of the request's key
 * under a random key (the per-source limits' design, net/src_limit.h): fixed memory, no
 * allocation or lock per request, a key that shares a slot with another shares its budget
 * (the strict side). A cluster limit adds a table of keyed slots synchronised with Redis
 * by the control thread (http/filters/rate_limit_cluster.c, proxy/redis_sync.c).
 */
#ifndef STRATA_HTTP_FILTERS_RATE_LIMIT_T_H
#define STRATA_HTTP_FILTERS_RATE_LIMIT_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/rate.h"
#include "net/addr.h"
#include "stats/counters-t.h"

/* Workers are at most 256 (schema.c `workers`): counters are allocated for that many. */
#define RL_MAX_WORKERS 256

enum rl_key_kind { RLK_CLIENT_IP, RLK_HEADER, RLK_COOKIE, RLK_ROUTE };

/* One part of a limit's key. A request without the header or cookie is not subject to
 * the limit (combine with a client_ip limit for those). */
struct rl_key_part {
    enum rl_key_kind kind;
    char *name; /* RLK_HEADER (lowercased) / RLK_COOKIE */
    uint32_t name_len;
    uint8_t prefix4, prefix6; /* RLK_CLIENT_IP: bits kept (32 and 64 by default) */
};

enum rl_algorithm { RL_TOKEN_BUCKET, RL_SLIDING_WINDOW };
enum rl_fail { RL_FAIL_OPEN, RL_FAIL_CLOSED };

/* Per worker and limit; each block written by its worker only. */
struct rl_counters {
    counter_t allowed;  /* passed (under the limit) */
    counter_t limited;  /* refused with 429 */
    counter_t shadow;   /* over the limit but passed: shadow mode */
    counter_t fallback; /* cluster limit decided locally: Redis down or slow (fail: open) */
    counter_t closed;   /* cluster limit refused because Redis is down (fail: closed) */
} __attribute__((aligned(CACHELINE)));

struct rl_cluster; /* rate_limit_cluster.c */

struct rl_limit {
    char *name;
    struct rl_key_part *key;
    uint32_t nkey;
    enum rl_algorithm algorithm;
    uint32_t rate;     /* tokens (bucket) or requests (window) per `per` */
    uint32_t per_ms;   /* the period */
    uint32_t burst;    /* bucket: tokens it holds (default: rate) */
    bool shadow;       /* count and log, never refuse */
    bool cluster;      /* shared through the filter's `redis` */
    uint32_t fallback; /* cluster, fail open: the local limit while Redis is down */
    uint32_t slots;    /* table size (rounded up to a power of two) */

    /* derived at load */
    struct rate_bucket bucket;
    struct rate_window window, fallback_window;
    uint64_t k0, k1; /* SipHash key of the slot index */
    uint32_t mask;
    _Atomic uint64_t *words; /* [mask + 1]: local limit, and a cluster limit's fallback */
    struct rl_cluster *cl;   /* cluster: the slots shared through Redis, else NULL */
    struct rl_counters *ctr; /* [RL_MAX_WORKERS] */
};

/* The filter's connection to Redis, for its cluster limits. */
struct rl_redis_conf {
    char *address_text; /* NULL: no Redis (no cluster limits allowed) */
    struct sockaddr_any address;
    uint32_t timeout_ms; /* a sync or connect slower than this: Redis is down */
    uint32_t sync_ms;    /* how often counts are exchanged */
    enum rl_fail fail;
    char *prefix;   /* of every Redis key */
    char *password; /* AUTH after connecting, or NULL */
};

/* What the control thread tells the workers about Redis. */
struct rl_redis_state {
    _Atomic bool up;        /* connected and the last sync was in time */
    _Atomic uint32_t nodes; /* Strata processes sharing the budgets (>= 1) */
};

struct filter_rate_limit_conf {
    struct rl_limit *limits;
    uint32_t nlimits;
    bool headers; /* RateLimit-Policy / RateLimit on responses */
    struct rl_redis_conf redis;
    struct rl_redis_state *redis_state; /* NULL without redis */
};

#endif
