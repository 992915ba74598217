/* histogram.h — recording into a struct hist (one worker, cheap: no lock, no allocation)
 * and reading many of them merged: Prometheus buckets and quantiles from the sketch.
 */
#ifndef STRATA_STATS_HISTOGRAM_H
#define STRATA_STATS_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "stats/histogram-t.h"

/* Upper bounds of the Prometheus buckets, µs (and the same in seconds as text, for `le`). */
extern const uint32_t hist_le_us[HIST_LE_COUNT];
extern const char *const hist_le_text[HIST_LE_COUNT];

/* The sketch bucket of a value in µs. */
static inline unsigned hist_sketch_index(uint64_t us)
{
    if (us < (2u << HIST_SUB_BITS))
        return (unsigned)us;
    if (us >> HIST_MAX_BITS)
        return HIST_SKETCH_BUCKETS - 1;
    unsigned e = (unsigned)(63 - __builtin_clzll(us)) - HIST_SUB_BITS;
    return (e << HIST_SUB_BITS) + (unsigned)(us >> e);
}

static inline unsigned hist_le_index(uint64_t us)
{
    unsigned i = 0;
    while (i < HIST_LE_COUNT && us > hist_le_us[i])
        i++;
    return i;
}

/* Records one duration. Only the worker owning h may call it. */
static inline void hist_record(struct hist *h, uint64_t us)
{
    CTR_ADD(h->le[hist_le_index(us)], 1);
    CTR_ADD(h->sum_us, us);
    CTR_ADD(h->sketch[hist_sketch_index(us)], 1);
}

/* Adds n hists (e.g. one per worker, `stride` bytes apart) into *s (not cleared first).
 * The sketches are read only when they hold samples. */
void hist_merge(struct hist_snap *s, const struct hist *h, size_t n, size_t stride);

/* The same for the Prometheus buckets, sum and count only (the sketch is left alone). */
void hist_merge_le(struct hist_snap *s, const struct hist *h, size_t n, size_t stride);

/* s -= old, bucket by bucket (old an earlier read of the same hists): the samples between. */
void hist_snap_sub(struct hist_snap *s, const struct hist_snap *old);

/* The q-quantile (0 <= q <= 1) in µs, within 0.78% of a recorded value of that rank (or the
 * exact value below 128 µs); 0 when empty. */
double hist_quantile(const struct hist_snap *s, double q);

/* Lowest value and width of sketch bucket i, µs. */
void hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *width);

/* Zeroed memory for n hists, a shared block (core/shared_block.h: a reload hands it to the
 * next generation; anonymous pages, so pages never written take no memory and a config with
 * many routes costs what its traffic touches); freed with shared_block_put. NULL on
 * failure or when n is 0. */
struct hist *hist_alloc(size_t n);

#endif
