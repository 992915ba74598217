/* test_histogram.c — the latency histogram: quantiles from the sketch within 1% of the
 * exact ones on known distributions (uniform, exponential, lognormal) recorded by two
 * "workers" and merged, fixed memory, the Prometheus buckets, windows by subtraction; the
 * recent-errors ring and the error reasons of the access log.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/shared_block.h"
#include "stats/histogram.h"
#include "test.h"

#define NSAMPLES 200000

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Records v[] alternately into two hists (two workers), merges, and checks the quantiles
 * against the sorted samples. */
static void check_quantiles(uint64_t *v, size_t n, const char *what)
{
    struct hist *h = hist_alloc(2);
    CHECK(h != NULL);
    if (!h)
        return;
    for (size_t i = 0; i < n; i++)
        hist_record(&h[i & 1], v[i]);
    struct hist_snap *s = calloc(1, sizeof(*s));
    hist_merge(s, h, 2, sizeof(*h));
    CHECK_EQ_U64(s->count, n);
    qsort(v, n, sizeof(*v), cmp_u64);
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (unsigned i = 0; i < 4; i++) {
        double exact = (double)v[(size_t)(qs[i] * (double)(n - 1) + 0.5)];
        double est = hist_quantile(s, qs[i]);
        double err = fabs(est - exact) / exact;
        if (err > 0.01)
            test_fail(__FILE__, __LINE__, "%s q=%g: %.1f vs exact %.1f (%.3f%%)", what, qs[i],
                      est, exact, err * 100);
    }
    free(s);
    shared_block_put(h);
}

TEST(histogram_quantiles_uniform)
{
    uint64_t *v = malloc(NSAMPLES * sizeof(*v));
    for (size_t i = 0; i < NSAMPLES; i++)
        v[i] = 1000 + (uint64_t)(uniform01() * 99000); /* 1 to 100 ms */
    check_quantiles(v, NSAMPLES, "uniform");
    free(v);
}

TEST(histogram_quantiles_exponential)
{
    uint64_t *v = malloc(NSAMPLES * sizeof(*v));
    for (size_t i = 0; i < NSAMPLES; i++)
        v[i] = 1 + (uint64_t)(-20000.0 * log(uniform01())); /* mean 20 ms */
    check_quantiles(v, NSAMPLES, "exponential");
    free(v);
}

TEST(histogram_quantiles_lognormal)
{
    uint64_t *v = malloc(NSAMPLES * sizeof(*v));
    for (size_t i = 0; i < NSAMPLES; i++) {
        double z = sqrt(-2 * log(uniform01())) * cos(2 * M_PI * uniform01());
        v[i] = 1 + (uint64_t)exp(log(5000.0) + 1.5 * z); /* median 5 ms, heavy tail */
    }
    check_quantiles(v, NSAMPLES, "lognormal");
    free(v);
}

TEST(histogram_sketch_buckets_cover_values_in_order)
{
    unsigned prev = 0;
    for (uint64_t us = 1; us < (1ull << HIST_MAX_BITS); us += 1 + us / 97) {
        unsigned i = hist_sketch_index(us);
        uint64_t lo, width;
        hist_bucket_range(i, &lo, &width);
        CHECK(i >= prev && i < HIST_SKETCH_BUCKETS);
        CHECK(us >= lo && us < lo + width);
        CHECK(width * 64 <= lo || width == 1); /* 2^6 buckets per power of two */
        prev = i;
    }
    CHECK_EQ_U64(hist_sketch_index(UINT64_MAX), HIST_SKETCH_BUCKETS - 1);
    CHECK_EQ_U64(hist_sketch_index((1ull << HIST_MAX_BITS) - 1), HIST_SKETCH_BUCKETS - 1);
}

TEST(histogram_fixed_memory_prometheus_buckets_and_windows)
{
    /* the size is fixed by the type, whatever is recorded */
    CHECK(sizeof(struct hist) < 12 * 1024);
    struct hist *h = hist_alloc(1);
    struct hist_snap *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    hist_record(h, 500);      /* le 0.0005 (inclusive) */
    hist_record(h, 501);      /* le 0.001 */
    hist_record(h, 70000000); /* +Inf */
    hist_merge(a, h, 1, sizeof(*h));
    CHECK_EQ_U64(a->le[0], 1);
    CHECK_EQ_U64(a->le[1], 1);
    CHECK_EQ_U64(a->le[HIST_LE_COUNT], 1);
    CHECK_EQ_U64(a->sum_us, 70001001);
    for (int i = 0; i < 1000; i++)
        hist_record(h, 3000);
    hist_merge(b, h, 1, sizeof(*h));
    hist_snap_sub(b, a); /* the window: only the 1000 samples of 3 ms */
    CHECK_EQ_U64(b->count, 1000);
    CHECK(fabs(hist_quantile(b, 0.99) - 3000) / 3000 < 0.01);
    CHECK(hist_quantile(b, 0) > 2970);
    memset(b, 0, sizeof(*b));
    CHECK(hist_quantile(b, 0.5) == 0);
    free(a);
    free(b);
    shared_block_put(h);
}

/* ---- the recent-errors ring and the error reasons ---- */

#include "http/stream_stats.h"
#include "stats/recent.h"

TEST(recent_ring_keeps_the_last_entries_cut_to_size)
{
    struct recent_ring *r = calloc(1, sizeof(*r));
    struct recent_error out[RECENT_PER_WORKER];
    CHECK_EQ_U64(recent_read(r, out, RECENT_PER_WORKER), 0);
    char path[200];
    memset(path, 'p', sizeof(path));
    for (unsigned i = 0; i < RECENT_PER_WORKER + 5; i++)
        recent_add(r, (uint16_t)(500 + i % 4), "route", "connect_failed", NULL, path,
                   (uint32_t)sizeof(path));
    unsigned n = recent_read(r, out, RECENT_PER_WORKER);
    CHECK_EQ_U64(n, RECENT_PER_WORKER);
    CHECK(strcmp(out[0].reason, "connect_failed") == 0 && strcmp(out[0].detail, "") == 0);
    CHECK_EQ_U64(strlen(out[0].path), sizeof(out[0].path) - 1);
    CHECK(out[0].unix_ms > 1600000000000ull);
    CHECK_EQ_U64(recent_read(r, out, 3), 3);
    free(r);
}

TEST(stream_error_reasons_from_the_access_log_end)
{
    CHECK(stream_stats_error("ok") == HERR_COUNT);
    CHECK(stream_stats_error("answered") == HERR_COUNT);
    CHECK(stream_stats_error(NULL) == HERR_COUNT);
    CHECK(stream_stats_error("connect_failed") == HERR_CONNECT_FAILED);
    CHECK(stream_stats_error("bad_gateway") == HERR_BAD_RESPONSE);
    CHECK(stream_stats_error("something_new") == HERR_OTHER);
    for (unsigned i = 0; i < HERR_COUNT; i++)
        CHECK(stream_stats_error_name((enum http_error)i)[0] != '\0');
    CHECK(strcmp(stream_stats_error_name(HERR_NO_ROUTE), "no_route") == 0);
}

/* Not a benchmark (nothing is asserted): what recording costs, printed beside the results.
 * A proxied request records two kinds (total, TTFB) at four levels. */
TEST(histogram_record_cost_printed)
{
    enum { LEVELS = 4, N = 1000000 };
    struct hist *h = hist_alloc(LEVELS * HIST_KINDS);
    struct timespec a, b;
    uint64_t v = 1234;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned i = 0; i < N; i++) {
        v = v * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t us = 200 + ((v >> 33) % 20000);
        for (unsigned l = 0; l < LEVELS; l++) {
            hist_record(&h[l * HIST_KINDS + HIST_TOTAL], us);
            hist_record(&h[l * HIST_KINDS + HIST_TTFB], us / 2);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
    printf("    %.1f ns per request for %u records (%.1f ns each)\n", ns, 2 * LEVELS,
           ns / (2 * LEVELS));
    struct hist_snap *s = calloc(1, sizeof(*s));
    hist_merge(s, &h[HIST_TOTAL], 1, sizeof(*h));
    CHECK_EQ_U64(s->count, N);
    free(s);
    shared_block_put(h);
}
