/* analytics.c — see analytics.h.
 *
 * The hand-off between a worker and the control thread, per bucket set:
 *   worker:  seq odd → (a new bucket: reset the set, epoch = bucket) → count → seq even
 *   control: seq (even) → copy the set → seq unchanged? then the copy is consistent
 * A worker reuses the set of bucket e for bucket e + 3, at least 10 s after e ended; the
 * control thread merges bucket e into its rings once e + 2 has begun (every worker is
 * then past e), so the set it reads is no longer written unless that worker is more than
 * a bucket late, which the sequence count detects. The copy itself may overlap a write
 * (the sequence count then makes the reader retry, COPY_TRIES times at most: a worker so
 * busy that its live bucket never holds still is left out of that one query, not of the
 * rings). Memory: each set is about 42 KiB; three per worker, 73 on the control thread.
 */
#include "stats/analytics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/bug.h"
#include "core/log.h"
#include "core/time.h"
#include "ev/loop.h"
#include "stats/counters-t.h"
#include "stats/geo.h"

#define SLOTS 3
#define COPY_TRIES 8

struct topn_slot {
    _Atomic uint32_t seq;
    _Atomic int64_t epoch; /* the bucket this set counts, -1 = none */
    struct topn_set set;
};

struct topn_worker {
    struct topn_slot slot[SLOTS];
} __attribute__((aligned(CACHELINE)));

/* A worker's requests and bytes per country code, since the start (single writer). */
struct country_counters {
    counter_t n[GEO_CODES][CM_COUNT];
} __attribute__((aligned(CACHELINE)));

struct analytics {
    unsigned nworkers;
    struct topn_worker *workers; /* [nworkers] */
    struct country_counters *countries; /* [nworkers] */
    /* the control thread's */
    struct ev_loop *loop;
    struct ev_timer tick;
    struct config *cfg; /* one reference; NULL in tests */
    struct trends trends;
    struct country_trends country_trends;
    uint64_t country_totals[GEO_CODES][CM_COUNT]; /* a fold's scratch */
    int64_t merged;                                    /* last bucket merged, -1 = none */
    struct topn_set fine[ANALYTICS_BUCKETS_PER_MIN];   /* merged buckets ... */
    int64_t fine_epoch[ANALYTICS_BUCKETS_PER_MIN];     /* ... and which (-1 = none) */
    struct topn_set minute[ANALYTICS_MINUTES];         /* merged minutes ... */
    int64_t minute_of[ANALYTICS_MINUTES];              /* ... and which (-1 = none) */
    struct topn_set copy;                              /* scratch for a worker's set */
};

static struct analytics *current;

struct analytics *analytics_current(void)
{
    return current;
}

/* ---- workers ---- */

static void slot_begin(struct topn_slot *s)
{
    atomic_store_explicit(&s->seq, atomic_load_explicit(&s->seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void slot_end(struct topn_slot *s)
{
    atomic_store_explicit(&s->seq, atomic_load_explicit(&s->seq, memory_order_relaxed) + 1,
                          memory_order_release);
}

static void record_into(struct topn_set *s, const struct analytics_req *r)
{
    char path[TOPN_KEY_MAX + 1], sr[TOPN_KEY_MAX];
    struct topn_table_s *t = s->t;
    if (r->path_len)
        topn_add(&t[TOPN_PATHS], path,
                 topn_path_normalise(r->path, r->path_len, path, sizeof(path)), r->bytes);
    const sa_family_t fam = r->client ? r->client->u.sa.sa_family : AF_UNSPEC;
    if (fam == AF_INET)
        topn_add(&t[TOPN_CLIENTS], (const char *)&r->client->u.in.sin_addr, 4, r->bytes);
    else if (fam == AF_INET6)
        topn_add(&t[TOPN_CLIENTS], (const char *)&r->client->u.in6.sin6_addr, 16, r->bytes);
    if (r->user_agent_len)
        topn_add(&t[TOPN_USER_AGENTS], r->user_agent, r->user_agent_len, r->bytes);
    if (r->host_len)
        topn_add(&t[TOPN_HOSTS], r->host, r->host_len, r->bytes);
    if (r->api_key_len)
        topn_add(&t[TOPN_API_KEYS], r->api_key, r->api_key_len, r->bytes);
    if (r->country && r->country[0])
        topn_add(&t[TOPN_COUNTRIES], r->country, strlen(r->country), r->bytes);
    /* "404 route#1": the status, then the route (names are at most 64 bytes) */
    uint32_t st = r->status % 1000, n = 0;
    sr[n++] = (char)('0' + st / 100);
    sr[n++] = (char)('0' + st / 10 % 10);
    sr[n++] = (char)('0' + st % 10);
    sr[n++] = ' ';
    size_t rl = r->route ? strlen(r->route) : 1;
    if (rl > sizeof(sr) - n)
        rl = sizeof(sr) - n;
    memcpy(sr + n, r->route ? r->route : "-", rl);
    topn_add(&t[TOPN_STATUS_ROUTES], sr, n + rl, r->bytes);
}

void analytics_record(unsigned worker, uint64_t now_ms, const struct analytics_req *r)
{
    struct analytics *a = current;
    if (!a || worker >= a->nworkers)
        return;
    int64_t e = (int64_t)(now_ms / 1000 / ANALYTICS_BUCKET_S);
    struct topn_slot *s = &a->workers[worker].slot[e % SLOTS];
    slot_begin(s);
    if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != e) {
        topn_set_reset(&s->set);
        atomic_store_explicit(&s->epoch, e, memory_order_relaxed);
    }
    record_into(&s->set, r);
    slot_end(s);
    int c = r->country && r->country[0] ? geo_code_index(r->country, 2) : -1;
    if (c >= 0) {
        CTR_ADD(a->countries[worker].n[c][CM_REQUESTS], 1);
        CTR_ADD(a->countries[worker].n[c][CM_BYTES], r->bytes);
    }
}

/* ---- the control thread ---- */

/* Copies worker w's set of bucket e into a->copy; false when it has none for e or it kept
 * changing. */
static bool copy_bucket(struct analytics *a, unsigned w, int64_t e)
{
    struct topn_slot *s = &a->workers[w].slot[e % SLOTS];
    for (int i = 0; i < COPY_TRIES; i++) {
        uint32_t s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != e)
            return false;
        memcpy(&a->copy, &s->set, sizeof(a->copy));
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == s1)
            return true;
    }
    return false;
}

/* Merges every worker's bucket e into dst. */
static void merge_bucket(struct analytics *a, int64_t e, struct topn_set *dst)
{
    for (unsigned w = 0; w < a->nworkers; w++)
        if (copy_bucket(a, w, e))
            topn_set_merge(dst, &a->copy);
}

/* Bucket e is over in every worker: into the minute ring and the last-minute ring. */
static void finish_bucket(struct analytics *a, int64_t e)
{
    int fi = (int)(e % ANALYTICS_BUCKETS_PER_MIN);
    struct topn_set *f = &a->fine[fi];
    topn_set_reset(f);
    a->fine_epoch[fi] = e;
    merge_bucket(a, e, f);
    int64_t m = e / ANALYTICS_BUCKETS_PER_MIN;
    int mi = (int)(m % ANALYTICS_MINUTES);
    if (a->minute_of[mi] != m) {
        topn_set_reset(&a->minute[mi]);
        a->minute_of[mi] = m;
    }
    topn_set_merge(&a->minute[mi], f);
}

void analytics_fold(struct analytics *a, const uint64_t totals[TR_COUNT], int64_t now_real_ms,
                    uint64_t now_mono_ms)
{
    trends_fold(&a->trends, totals, now_real_ms);
    memset(a->country_totals, 0, sizeof(a->country_totals));
    for (unsigned w = 0; w < a->nworkers; w++)
        for (int c = 0; c < GEO_CODES; c++)
            for (int m = 0; m < CM_COUNT; m++)
                a->country_totals[c][m] += CTR_GET(a->countries[w].n[c][m]);
    country_trends_fold(&a->country_trends, a->country_totals, now_real_ms);
    int64_t now = (int64_t)(now_mono_ms / 1000 / ANALYTICS_BUCKET_S);
    /* a late tick catches up on the buckets the workers may still hold (an hour at most) */
    int64_t from = now - 2 - ANALYTICS_BUCKETS_PER_MIN * ANALYTICS_MINUTES;
    if (a->merged + 1 > from)
        from = a->merged + 1;
    for (int64_t e = from < 0 ? 0 : from; e <= now - 2; e++)
        finish_bucket(a, e);
    if (now - 2 > a->merged)
        a->merged = now - 2;
}

void analytics_top(struct analytics *a, enum analytics_range range, uint64_t now_mono_ms,
                   struct topn_set *out)
{
    int64_t now = (int64_t)(now_mono_ms / 1000 / ANALYTICS_BUCKET_S);
    topn_set_reset(out);
    if (range == AR_MINUTE) {
        for (int i = 0; i < ANALYTICS_BUCKETS_PER_MIN; i++)
            if (a->fine_epoch[i] > now - ANALYTICS_BUCKETS_PER_MIN && a->fine_epoch[i] <= a->merged)
                topn_set_merge(out, &a->fine[i]);
    } else {
        int64_t m = now / ANALYTICS_BUCKETS_PER_MIN;
        for (int i = 0; i < ANALYTICS_MINUTES; i++)
            if (a->minute_of[i] > m - ANALYTICS_MINUTES)
                topn_set_merge(out, &a->minute[i]);
    }
    /* the buckets not merged yet, live from the workers */
    for (int64_t e = a->merged + 1; e <= now; e++)
        if (e > now - 3)
            merge_bucket(a, e, out);
}

const struct trends *analytics_trends(const struct analytics *a)
{
    return &a->trends;
}

const struct country_trends *analytics_country_trends(const struct analytics *a)
{
    return &a->country_trends;
}

struct analytics *analytics_new(unsigned nworkers)
{
    struct analytics *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->nworkers = nworkers;
    a->merged = -1;
    for (int i = 0; i < ANALYTICS_BUCKETS_PER_MIN; i++)
        a->fine_epoch[i] = -1;
    for (int i = 0; i < ANALYTICS_MINUTES; i++)
        a->minute_of[i] = -1;
    a->workers = aligned_alloc(CACHELINE, sizeof(*a->workers) * (nworkers ? nworkers : 1));
    a->countries = aligned_alloc(CACHELINE, sizeof(*a->countries) * (nworkers ? nworkers : 1));
    if (a->countries) /* counters start at 0 (single writer, relaxed: no atomic_init needed) */
        memset(a->countries, 0, sizeof(*a->countries) * (nworkers ? nworkers : 1));
    if (!a->workers || !a->countries || trends_init(&a->trends) < 0 ||
        country_trends_init(&a->country_trends) < 0) {
        analytics_free(a);
        return NULL;
    }
    for (unsigned w = 0; w < nworkers; w++)
        for (int s = 0; s < SLOTS; s++) {
            atomic_init(&a->workers[w].slot[s].seq, 0);
            atomic_init(&a->workers[w].slot[s].epoch, -1);
            topn_set_reset(&a->workers[w].slot[s].set);
        }
    current = a;
    return a;
}

void analytics_free(struct analytics *a)
{
    if (!a)
        return;
    if (current == a)
        current = NULL;
    trends_free(&a->trends);
    country_trends_free(&a->country_trends);
    free(a->countries);
    free(a->workers);
    free(a);
}

/* Runs just after each second boundary (wall clock), so that each fold closes a second. */
static uint32_t ms_to_next_second(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return 1000u - (uint32_t)(ts.tv_nsec / 1000000) + 5u;
}

static void tick_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct analytics *a = container_of(t, struct analytics, tick);
    uint64_t totals[TR_COUNT];
    struct timespec ts;
    trends_totals(a->cfg, totals);
    clock_gettime(CLOCK_REALTIME, &ts);
    analytics_fold(a, totals, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, mono_ms());
    if (ev_timer_arm(loop, t, ms_to_next_second()) < 0)
        log_err("analytics: cannot re-arm the tick timer; trends and top-N stop moving");
}

struct analytics *analytics_start(struct ev_loop *loop, struct config *cfg)
{
    struct analytics *a = analytics_new(cfg->workers);
    if (!a)
        return NULL;
    a->loop = loop;
    a->cfg = config_ref(cfg);
    ev_timer_init(&a->tick, tick_cb);
    if (ev_timer_arm(loop, &a->tick, ms_to_next_second()) < 0) {
        analytics_stop(a);
        return NULL;
    }
    return a;
}

void analytics_set_config(struct analytics *a, struct config *cfg)
{
    struct config *old = a->cfg;
    a->cfg = config_ref(cfg);
    config_unref(old);
}

void analytics_stop(struct analytics *a)
{
    if (!a)
        return;
    if (a->loop)
        ev_timer_cancel(a->loop, &a->tick);
    if (a->cfg)
        config_unref(a->cfg);
    analytics_free(a);
}
