/* shared_block.h — zeroed runtime blocks (counters, histograms, recent-error rings) that a
 * reload hands from one configuration snapshot to the next, so that both generations add
 * to the same figures and a metric never goes back.
 *
 * A block is reference-counted; the count and how the block was made live in the cache
 * line just before it. Large blocks are anonymous pages, which cost no memory until
 * written (a route's 500 exact-status counters, a histogram's buckets).
 */
#ifndef STRATA_CORE_SHARED_BLOCK_H
#define STRATA_CORE_SHARED_BLOCK_H

#include <stddef.h>

/* A zeroed, cache-line aligned block of `size` bytes with one reference, or NULL. */
void *shared_block_new(size_t size);

/* Drops one reference to b (NULL: nothing); the last one frees it. */
void shared_block_put(void *b);

/* *slot takes a reference to `old` and drops its own block; nothing when old is NULL or
 * already in *slot. */
void shared_block_adopt(void **slot, void *old);

#endif
