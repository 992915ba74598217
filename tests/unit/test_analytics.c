/* test_analytics.c — trends rings (stats/trends.h), the space-saving top-N tables and path
 * normalisation (stats/topn.h), and the per-worker buckets merged by the control thread
 * (stats/analytics.h); a rough micro-benchmark of the per-request cost (printed, never
 * asserted).
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hash.h"
#include "stats/analytics.h"
#include "stats/topn.h"
#include "stats/trends.h"
#include "test.h"

static uint64_t sum(const uint64_t *v, uint32_t n)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

TEST(trends_fold_seconds_and_minutes)
{
    struct trends t;
    CHECK(trends_init(&t) == 0);
    uint64_t tot[TR_COUNT] = {0};
    int64_t t0 = 1700000000000LL; /* a minute boundary is 1700000040000 */
    tot[TR_REQUESTS] = 5;
    tot[TR_4XX] = 2;
    trends_fold(&t, tot, t0 + 5); /* second t0/1000 - 1 */
    tot[TR_REQUESTS] = 12;
    trends_fold(&t, tot, t0 + 1005);
    /* three seconds without a fold, then one */
    tot[TR_REQUESTS] = 20;
    tot[TR_L4_BYTES_IN] = 1000;
    trends_fold(&t, tot, t0 + 4005);
    uint64_t *pts = calloc(TRENDS_SECONDS, sizeof(uint64_t));
    int64_t end = trend_points(&t.sec, TR_REQUESTS, 6, pts);
    CHECK(end == t0 / 1000 + 3);
    uint64_t want[6] = {0, 5, 7, 0, 0, 8};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_U64(pts[i], want[i]);
    trend_points(&t.sec, TR_4XX, TRENDS_SECONDS, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_SECONDS), 2);
    trend_points(&t.min, TR_REQUESTS, TRENDS_MINUTES, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_MINUTES), 20);
    trend_points(&t.min, TR_L4_BYTES_IN, TRENDS_MINUTES, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_MINUTES), 1000);
    /* a total that goes down (a new configuration) restarts the baseline, adds nothing */
    tot[TR_REQUESTS] = 3;
    trends_fold(&t, tot, t0 + 5005);
    trend_points(&t.sec, TR_REQUESTS, TRENDS_SECONDS, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_SECONDS), 20);
    tot[TR_REQUESTS] = 4;
    trends_fold(&t, tot, t0 + 6005);
    trend_points(&t.sec, TR_REQUESTS, TRENDS_SECONDS, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_SECONDS), 21);
    free(pts);
    trends_free(&t);
}

TEST(trends_rings_wrap_with_fixed_memory)
{
    struct trends t;
    CHECK(trends_init(&t) == 0);
    uint64_t tot[TR_COUNT] = {0};
    int64_t t0 = 1700000000000LL;
    /* two hours of one request a second: the second ring keeps the last hour only */
    for (int i = 0; i < 7200; i++) {
        tot[TR_REQUESTS]++;
        trends_fold(&t, tot, t0 + (int64_t)i * 1000);
    }
    uint64_t *pts = calloc(TRENDS_SECONDS, sizeof(uint64_t));
    trend_points(&t.sec, TR_REQUESTS, TRENDS_SECONDS, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_SECONDS), 3600);
    trend_points(&t.min, TR_REQUESTS, TRENDS_MINUTES, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_MINUTES), 7200);
    CHECK_EQ_U64(pts[TRENDS_MINUTES - 2], 60);
    /* a jump of two days clears everything */
    tot[TR_REQUESTS]++;
    trends_fold(&t, tot, t0 + 2 * 86400000LL);
    trend_points(&t.min, TR_REQUESTS, TRENDS_MINUTES, pts);
    CHECK_EQ_U64(sum(pts, TRENDS_MINUTES), 1);
    CHECK(t.sec.len == TRENDS_SECONDS && t.min.len == TRENDS_MINUTES);
    free(pts);
    trends_free(&t);
}

static void norm(const char *in, const char *want)
{
    char out[TOPN_KEY_MAX + 1];
    size_t n = topn_path_normalise(in, strlen(in), out, sizeof(out));
    if (strcmp(out, want) != 0 || n != strlen(want))
        test_fail(__FILE__, __LINE__, "normalise(%s) = %s, want %s", in, out, want);
}

TEST(topn_path_normalise_collapses_ids)
{
    norm("/v1/users/123", "/v1/users/{id}");
    norm("/v1/users/123/orders/9", "/v1/users/{id}/orders/{id}");
    norm("/o/550e8400-e29b-41d4-a716-446655440000/x", "/o/{id}/x");
    norm("/blob/0123456789abcdefABCD", "/blob/{id}");
    norm("/blob/0123456789abcde", "/blob/0123456789abcde"); /* 15 hex: kept */
    norm("/v2/user42", "/v2/user42");
    norm("/", "/");
    norm("//a//1/", "//a//{id}/");
    char longp[200];
    memset(longp, 'g', sizeof(longp));
    longp[0] = '/';
    char out[TOPN_KEY_MAX + 1];
    CHECK(topn_path_normalise(longp, sizeof(longp), out, sizeof(out)) == TOPN_KEY_MAX);
}

/* n keys drawn from a Zipf(s) distribution over `universe` keys: the table must hold the
 * true top 10 with counts within err of the truth. */
TEST(topn_finds_zipf_heavy_hitters)
{
    enum { UNIVERSE = 20000, DRAWS = 200000 };
    double *cdf = malloc(sizeof(double) * UNIVERSE);
    uint32_t *truth = calloc(UNIVERSE, sizeof(uint32_t));
    double z = 0;
    for (int i = 0; i < UNIVERSE; i++)
        cdf[i] = (z += 1.0 / pow(i + 1, 1.1));
    struct topn_table_s *t = calloc(1, sizeof(*t));
    uint64_t rng = 42;
    for (int d = 0; d < DRAWS; d++) {
        double u = (double)(rng_next(&rng) >> 11) / 9007199254740992.0 * z;
        int lo = 0, hi = UNIVERSE - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        truth[lo]++;
        char key[32];
        int n = snprintf(key, sizeof(key), "/item/key-%d", lo);
        topn_add(t, key, (size_t)n, 100);
    }
    struct topn_item top[10];
    CHECK(topn_top(t, 10, top) == 10);
    for (int i = 0; i < 10; i++) {
        char want[32];
        int n = snprintf(want, sizeof(want), "/item/key-%d", i); /* rank i is key i */
        bool found = false;
        for (int j = 0; j < 10; j++)
            found |= top[j].len == (uint32_t)n && memcmp(top[j].key, want, (size_t)n) == 0;
        if (!found)
            test_fail(__FILE__, __LINE__, "true heavy hitter %s not in the top 10", want);
    }
    /* counts: over-estimated by at most err, which is bounded by DRAWS / TOPN_K */
    for (uint32_t i = 0; i < t->n; i++)
        CHECK(t->err[i] <= DRAWS / TOPN_K);
    for (int j = 0; j < 10; j++) {
        char key[TOPN_KEY_MAX + 1];
        memcpy(key, top[j].key, top[j].len);
        key[top[j].len] = 0;
        int k = atoi(key + strlen("/item/key-"));
        CHECK(top[j].count >= truth[k] && top[j].count <= truth[k] + DRAWS / TOPN_K);
    }
    CHECK(t->n == TOPN_K); /* memory: never more than TOPN_K counters */
    free(t);
    free(truth);
    free(cdf);
}

/* After heavy churn (every new key evicts one), every key still in the table is found by
 * its index: counting it again raises its own counter and takes no other. */
TEST(topn_index_finds_every_key_after_churn)
{
    struct topn_table_s *t = calloc(1, sizeof(*t));
    char key[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(key, sizeof(key), "k%d", i % 7 == 0 ? 1 : i);
        topn_add(t, key, (size_t)n, 1);
    }
    CHECK(t->n == TOPN_K);
    uint32_t occupied = 0;
    for (int s = 0; s < TOPN_INDEX; s++)
        occupied += t->index[s] != 0;
    CHECK_EQ_U64(occupied, TOPN_K);
    for (uint32_t i = 0; i < t->n; i++) {
        uint64_t before = t->count[i];
        char k[TOPN_KEY_MAX];
        memcpy(k, t->key[i], t->len[i]);
        topn_add(t, k, t->len[i], 1);
        if (t->count[i] != before + 1)
            test_fail(__FILE__, __LINE__, "counter %u not found by its key", i);
    }
    free(t);
}

TEST(topn_merge_adds_common_keys)
{
    struct topn_table_s *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    for (int i = 0; i < 5; i++)
        topn_add(a, "x", 1, 10);
    for (int i = 0; i < 3; i++)
        topn_add(b, "x", 1, 10);
    topn_add(b, "y", 1, 1);
    topn_merge(a, b);
    struct topn_item top[4];
    CHECK(topn_top(a, 4, top) == 2);
    CHECK(top[0].len == 1 && top[0].key[0] == 'x' && top[0].count == 8 && top[0].bytes == 80);
    CHECK(top[1].key[0] == 'y' && top[1].count == 1);
    free(a);
    free(b);
}

static struct analytics_req req_for(const char *path, const struct sockaddr_any *client)
{
    return (struct analytics_req){.path = path, .path_len = (uint32_t)strlen(path),
                                  .client = client, .user_agent = "ua", .user_agent_len = 2,
                                  .status = 200, .route = "r", .country = "FR", .bytes = 10};
}

TEST(analytics_buckets_merge_workers_over_time)
{
    struct analytics *a = analytics_new(2);
    CHECK(a != NULL);
    struct sockaddr_any cli = {0};
    cli.u.in.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &cli.u.in.sin_addr);
    uint64_t tot[TR_COUNT] = {0};
    uint64_t t0 = 1000000; /* monotonic ms: bucket 200 */
    struct analytics_req r = req_for("/v1/users/1", &cli);
    for (int i = 0; i < 30; i++)
        analytics_record((unsigned)i % 2, t0 + (uint64_t)i * 100, &r); /* 3 s, both workers */
    analytics_record(7, t0, &r); /* no such worker: ignored */
    struct topn_set *s = malloc(sizeof(*s));
    struct topn_item top[2];
    /* before any fold: read live from the workers */
    analytics_top(a, AR_MINUTE, t0 + 3000, s);
    CHECK(topn_top(&s->t[TOPN_PATHS], 2, top) == 1 && top[0].count == 30);
    /* 12 s later the bucket is merged into the rings */
    analytics_fold(a, tot, 1700000000000LL, t0 + 12000);
    for (int i = 0; i < 5; i++)
        analytics_record(1, t0 + 12000, &r); /* a live bucket on top */
    analytics_top(a, AR_MINUTE, t0 + 12000, s);
    CHECK(topn_top(&s->t[TOPN_PATHS], 2, top) == 1);
    CHECK(top[0].count == 35 && top[0].len == 14 && memcmp(top[0].key, "/v1/users/{id}", 14) == 0);
    CHECK(topn_top(&s->t[TOPN_CLIENTS], 2, top) == 1 && top[0].len == 4 && top[0].count == 35);
    CHECK(topn_top(&s->t[TOPN_COUNTRIES], 2, top) == 1 && top[0].bytes == 350);
    CHECK(topn_top(&s->t[TOPN_STATUS_ROUTES], 2, top) == 1 && top[0].len == 5 &&
          memcmp(top[0].key, "200 r", 5) == 0);
    /* three minutes later: out of the last minute, still in the last hour */
    analytics_fold(a, tot, 1700000000000LL, t0 + 180000);
    analytics_top(a, AR_MINUTE, t0 + 180000, s);
    CHECK(topn_top(&s->t[TOPN_PATHS], 2, top) == 0);
    analytics_top(a, AR_HOUR, t0 + 180000, s);
    CHECK(topn_top(&s->t[TOPN_PATHS], 2, top) == 1 && top[0].count == 35);
    /* two hours later: gone */
    analytics_fold(a, tot, 1700000000000LL, t0 + 7200000);
    analytics_top(a, AR_HOUR, t0 + 7200000, s);
    CHECK(topn_top(&s->t[TOPN_PATHS], 2, top) == 0);
    free(s);
    analytics_free(a);
}

/* Rough per-request cost of analytics_record (7 tables) on a skewed stream of 1,000
 * paths and clients (keys made beforehand); printed only, never asserted. */
TEST(analytics_record_cost_benchmark)
{
    struct analytics *a = analytics_new(1);
    CHECK(a != NULL);
    enum { N = 300000, KEYS = 1000 };
    static char paths[KEYS][40];
    static struct sockaddr_any clients[KEYS];
    for (int k = 0; k < KEYS; k++) {
        snprintf(paths[k], sizeof(paths[k]), "/v1/res%d/%d/items", k % 50, k);
        clients[k].u.in.sin_family = AF_INET;
        clients[k].u.in.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)k);
    }
    static uint16_t pick[N];
    uint64_t rng = 7;
    for (int i = 0; i < N; i++) {
        uint64_t x = rng_next(&rng) % KEYS;
        pick[i] = (uint16_t)(x * x / KEYS); /* skewed towards small keys */
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < N; i++) {
        struct analytics_req r = req_for(paths[pick[i]], &clients[pick[i]]);
        analytics_record(0, 1000000 + (uint64_t)i / 20, &r);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / N;
    printf("    analytics_record: %.0f ns per request (7 tables, %d distinct keys)\n", ns, KEYS);
    analytics_free(a);
}
