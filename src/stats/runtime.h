/* runtime.h — the observation blocks of a configuration snapshot: latency histograms of
 * every listener, route, backend and server, route counters and the recent-error rings,
 * one per worker each. Built and freed with the snapshot (config/config.c).
 */
#ifndef STRATA_STATS_RUNTIME_H
#define STRATA_STATS_RUNTIME_H

#include "config/config-t.h"
#include "stats/histogram.h"

/* Allocates them all (zeroed); the histograms only when c->histograms (else their blocks
 * stay NULL and recording is a test and a branch). 0, or -1 out of memory (what was made
 * is freed by stats_runtime_free). */
int stats_runtime_build(struct config *c);
void stats_runtime_free(struct config *c);

/* The histogram of `kind` of worker w in a block of [nworkers][HIST_KINDS]; NULL when
 * the block is. */
static inline struct hist *stats_hist(struct hist *block, unsigned w, enum hist_kind kind)
{
    return block ? &block[w * HIST_KINDS + kind] : NULL;
}

/* Records us into the block's histogram when there is one. */
static inline void stats_hist_record(struct hist *block, unsigned w, enum hist_kind kind,
                                     uint64_t us)
{
    if (block)
        hist_record(&block[w * HIST_KINDS + kind], us);
}

/* Merges kind `kind` of a block over the config's workers into *s (zeroed first). */
void stats_hist_read(const struct config *c, const struct hist *block, enum hist_kind kind,
                     struct hist_snap *s);

#endif
