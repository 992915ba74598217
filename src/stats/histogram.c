/* histogram.c — see histogram.h. */
#include "stats/histogram.h"

#include "core/shared_block.h"


/* Prometheus buckets: 0.5 ms to 60 s, about three per decade. */
const uint32_t hist_le_us[HIST_LE_COUNT] = {
    500,    1000,    2500,    5000,    10000,   25000,    50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};
const char *const hist_le_text[HIST_LE_COUNT] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "30",   "60",
};

void hist_merge_le(struct hist_snap *s, const struct hist *h, size_t n, size_t stride)
{
    for (size_t w = 0; w < n; w++) {
        const struct hist *x = (const struct hist *)((const char *)h + w * stride);
        for (unsigned i = 0; i <= HIST_LE_COUNT; i++) {
            uint64_t v = CTR_GET(x->le[i]);
            s->le[i] += v;
            s->count += v;
        }
        s->sum_us += CTR_GET(x->sum_us);
    }
}

void hist_merge(struct hist_snap *s, const struct hist *h, size_t n, size_t stride)
{
    uint64_t before = s->count;
    hist_merge_le(s, h, n, stride);
    if (s->count == before)
        return; /* nothing recorded: the sketches are all zero (and maybe never touched) */
    for (size_t w = 0; w < n; w++) {
        const struct hist *x = (const struct hist *)((const char *)h + w * stride);
        for (unsigned i = 0; i < HIST_SKETCH_BUCKETS; i++)
            s->sketch[i] += CTR_GET(x->sketch[i]);
    }
}

void hist_snap_sub(struct hist_snap *s, const struct hist_snap *old)
{
    for (unsigned i = 0; i <= HIST_LE_COUNT; i++)
        s->le[i] -= old->le[i];
    s->count -= old->count;
    s->sum_us -= old->sum_us;
    for (unsigned i = 0; i < HIST_SKETCH_BUCKETS; i++)
        s->sketch[i] -= old->sketch[i];
}

void hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    if (i < (2u << HIST_SUB_BITS)) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned e = (i >> HIST_SUB_BITS) - 1;
    *lo = (uint64_t)(i - (e << HIST_SUB_BITS)) << e;
    *width = (uint64_t)1 << e;
}

double hist_quantile(const struct hist_snap *s, double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < HIST_SKETCH_BUCKETS; i++)
        total += s->sketch[i];
    if (total == 0)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    /* the rank of the sample at q, as a sorted array's index would be */
    uint64_t rank = (uint64_t)(q * (double)(total - 1) + 0.5), seen = 0;
    for (unsigned i = 0; i < HIST_SKETCH_BUCKETS; i++) {
        seen += s->sketch[i];
        if (seen > rank) {
            uint64_t lo, width;
            hist_bucket_range(i, &lo, &width);
            return (double)lo + (double)(width - 1) / 2.0;
        }
    }
    return 0; /* not reached: seen == total > rank at the end */
}

struct hist *hist_alloc(size_t n)
{
    return n ? shared_block_new(n * sizeof(struct hist)) : NULL;
}
