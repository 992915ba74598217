/* rate.h — rate algorithms on one atomic 64-bit word each, so that every worker can share
 * them without a lock: a token bucket and a sliding-window counter. Each update is a
 * compare-and-swap loop on the word, so concurrent callers can never push a limit past
 * its budget. The zeroed word is the initial state of both (a full bucket, an empty
 * window): tables of words need no initialization pass. Used by the per-source limits
 * (net/src_limit.c) and the HTTP rate limits (http/filters/rate_limit.c).
 */
#ifndef STRATA_CORE_RATE_H
#define STRATA_CORE_RATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- token bucket ----
 * The word holds the debt in units (high 24 bits) and the last update in ms (low 40 bits,
 * 34 years of uptime). A token costs `cost` units, the bucket holds `cap` units (burst x
 * cost) and regains `refill` units a millisecond: exact integer arithmetic for any rate
 * n per period p ms (cost = p/g, refill = n/g, g = gcd(n, p)). Storing the debt rather than
 * the tokens left makes the zeroed word a full bucket whatever the burst. */
#define RATE_BUCKET_CAP_MAX ((UINT32_C(1) << 24) - 1)

struct rate_bucket {
    uint32_t cost;   /* units a token costs (> 0) */
    uint32_t cap;    /* units the bucket holds, <= RATE_BUCKET_CAP_MAX */
    uint32_t refill; /* units regained a millisecond (0: never) */
};

/* What a decision leaves: whole tokens or requests left, ms until the next one is
 * allowed (0 when allowed now), and ms until the budget is whole again. */
struct rate_state {
    uint32_t remaining;
    uint64_t retry_ms;
    uint64_t reset_ms;
};

/* The bucket for `n` tokens every `period_ms` with room for `burst` tokens. -1 when
 * burst x cost does not fit in 24 bits (a burst too large for so fine a rate). */
int rate_bucket_init(struct rate_bucket *b, uint32_t n, uint32_t period_ms, uint32_t burst);

/* Takes one token (true) or refuses (false, nothing taken); *st (may be NULL) describes
 * the bucket afterwards. now_ms is the caller's monotonic clock; a now_ms older than the
 * word's last update (another thread read the clock earlier) refills nothing. */
bool rate_bucket_take(_Atomic uint64_t *w, uint64_t now_ms, const struct rate_bucket *b,
                      struct rate_state *st);

/* ---- sliding window ----
 * The "sliding window counter": the count of the current fixed window plus the previous
 * window's count weighted by the part of it the sliding window still covers. The word
 * holds the window number (low 24 bits of now / window_ms: a key idle for 2^24 windows
 * may see its old counts once) and both counts (20 bits each). */
#define RATE_WINDOW_MAX ((UINT32_C(1) << 20) - 1)

struct rate_window {
    uint32_t limit;     /* requests per window, 1..RATE_WINDOW_MAX */
    uint32_t window_ms; /* > 0 */
};

/* The counts of a window word as seen at now_ms (the current window's and the
 * previous one's). */
void rate_window_counts(uint64_t word, uint64_t now_ms, uint32_t window_ms, uint32_t *prev,
                        uint32_t *cur);
/* The sliding estimate at now_ms from the two counts (the previous one weighted, rounded
 * up: on the strict side). */
uint32_t rate_window_estimate(uint32_t prev, uint32_t cur, uint64_t now_ms, uint32_t window_ms);
/* Whether `extra` more requests fit given counts prev/cur (plus `pending` requests not
 * yet in them) and, in *st, what is left and when the next one fits. */
bool rate_window_fits(const struct rate_window *rw, uint32_t prev, uint32_t cur, uint32_t pending,
                      uint64_t now_ms, struct rate_state *st);
/* Counts one request (true) or refuses (false, nothing counted). */
bool rate_window_take(_Atomic uint64_t *w, uint64_t now_ms, const struct rate_window *rw,
                      struct rate_state *st);
/* A word for window number now_ms / window_ms with these counts (clamped to 20 bits). */
uint64_t rate_window_word(uint64_t now_ms, uint32_t window_ms, uint32_t prev, uint32_t cur);

#endif
