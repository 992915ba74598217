/* rate.c — see rate.h. Relaxed ordering is enough: the words publish no other data. */
#include "rate.h"

#define STAMP_BITS 40
#define STAMP_MASK ((UINT64_C(1) << STAMP_BITS) - 1)
#define WIN_IDX_BITS 24
#define WIN_IDX_MASK ((UINT64_C(1) << WIN_IDX_BITS) - 1)
#define WIN_CNT_BITS 20

_Static_assert(RATE_BUCKET_CAP_MAX < (UINT64_C(1) << (64 - STAMP_BITS)), "debt fits the word");
_Static_assert(WIN_IDX_BITS + 2 * WIN_CNT_BITS == 64, "a window word is full");

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

int rate_bucket_init(struct rate_bucket *b, uint32_t n, uint32_t period_ms, uint32_t burst)
{
    if (n == 0 || period_ms == 0 || burst == 0)
        return -1;
    uint32_t g = gcd(n, period_ms);
    uint64_t cap = (uint64_t)burst * (period_ms / g);
    if (cap > RATE_BUCKET_CAP_MAX)
        return -1;
    *b = (struct rate_bucket){period_ms / g, (uint32_t)cap, n / g};
    return 0;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return a / b + (a % b != 0);
}

/* The debt left after `elapsed` ms at `rate` units a ms. */
static uint64_t refill(uint64_t debt, uint64_t elapsed, uint32_t rate)
{
    if (rate == 0 || elapsed == 0)
        return debt;
    if (elapsed > debt / rate)
        return 0; /* elapsed * rate >= debt, computed without overflow */
    return debt - elapsed * rate;
}

static void bucket_describe(const struct rate_bucket *b, uint64_t debt, struct rate_state *st)
{
    if (!st)
        return;
    st->remaining = (uint32_t)((b->cap - debt) / b->cost);
    uint64_t need = debt + b->cost > b->cap ? debt + b->cost - b->cap : 0;
    st->retry_ms = need == 0 ? 0 : b->refill ? div_up(need, b->refill) : UINT32_MAX;
    st->reset_ms = debt == 0 ? 0 : b->refill ? div_up(debt, b->refill) : UINT32_MAX;
}

bool rate_bucket_take(_Atomic uint64_t *w, uint64_t now_ms, const struct rate_bucket *b,
                      struct rate_state *st)
{
    uint64_t now = now_ms & STAMP_MASK;
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed), next, debt;
    do {
        uint64_t stamp = old & STAMP_MASK, at = now;
        uint64_t elapsed = (now - stamp) & STAMP_MASK;
        if (elapsed >> (STAMP_BITS - 1)) {
            elapsed = 0; /* now is before stamp: keep the later stamp */
            at = stamp;
        }
        debt = refill(old >> STAMP_BITS, elapsed, b->refill);
        if (debt + b->cost > b->cap) {
            bucket_describe(b, debt, st);
            return false;
        }
        next = ((debt + b->cost) << STAMP_BITS) | at;
    } while (!atomic_compare_exchange_weak_explicit(w, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    bucket_describe(b, debt + b->cost, st);
    return true;
}

/* ---- sliding window ---- */

uint64_t rate_window_word(uint64_t now_ms, uint32_t window_ms, uint32_t prev, uint32_t cur)
{
    uint64_t idx = (now_ms / window_ms) & WIN_IDX_MASK;
    uint64_t p = prev < RATE_WINDOW_MAX ? prev : RATE_WINDOW_MAX;
    uint64_t c = cur < RATE_WINDOW_MAX ? cur : RATE_WINDOW_MAX;
    return idx | p << WIN_IDX_BITS | c << (WIN_IDX_BITS + WIN_CNT_BITS);
}

void rate_window_counts(uint64_t word, uint64_t now_ms, uint32_t window_ms, uint32_t *prev,
                        uint32_t *cur)
{
    uint64_t idx = word & WIN_IDX_MASK, now_idx = (now_ms / window_ms) & WIN_IDX_MASK;
    uint32_t p = (uint32_t)(word >> WIN_IDX_BITS) & RATE_WINDOW_MAX;
    uint32_t c = (uint32_t)(word >> (WIN_IDX_BITS + WIN_CNT_BITS));
    *prev = *cur = 0;
    if (idx == now_idx) {
        *prev = p;
        *cur = c;
    } else if (idx == ((now_idx - 1) & WIN_IDX_MASK)) {
        *prev = c;
    }
}

uint32_t rate_window_estimate(uint32_t prev, uint32_t cur, uint64_t now_ms, uint32_t window_ms)
{
    uint64_t left = window_ms - now_ms % window_ms; /* of the previous window still covered */
    return (uint32_t)(((uint64_t)prev * left + window_ms - 1) / window_ms) + cur;
}

/* The first offset e' >= 0 into a window where ceil(prev * (W - e') / W) + cur < limit,
 * or W when there is none in this window. */
static uint64_t window_fit_at(uint32_t prev, uint32_t cur, uint32_t limit, uint32_t w)
{
    if (cur >= limit)
        return w;
    if (prev == 0)
        return 0;
    uint64_t span = (uint64_t)(limit - 1 - cur) * w / prev; /* longest W - e' that fits */
    return span >= w ? 0 : w - span;
}

bool rate_window_fits(const struct rate_window *rw, uint32_t prev, uint32_t cur, uint32_t pending,
                      uint64_t now_ms, struct rate_state *st)
{
    uint32_t w = rw->window_ms, e = (uint32_t)(now_ms % w);
    uint64_t used = (uint64_t)rate_window_estimate(prev, cur, now_ms, w) + pending;
    bool ok = used + 1 <= rw->limit;
    if (!st)
        return ok;
    uint64_t after = used + ok, c = (uint64_t)cur + pending + ok;
    uint32_t cur_now = c < RATE_WINDOW_MAX ? (uint32_t)c : RATE_WINDOW_MAX;
    st->remaining = after < rw->limit ? (uint32_t)(rw->limit - after) : 0;
    uint64_t at = window_fit_at(prev, cur_now, rw->limit, w);
    if (at < w)
        st->retry_ms = at > e ? at - e : 0;
    else /* in the next window, where this one's count is the previous */
        st->retry_ms = (w - e) + window_fit_at(cur_now, 0, rw->limit, w);
    st->reset_ms = cur_now ? (uint64_t)(w - e) + w : prev ? w - e : 0;
    return ok;
}

bool rate_window_take(_Atomic uint64_t *w, uint64_t now_ms, const struct rate_window *rw,
                      struct rate_state *st)
{
    uint32_t wms = rw->window_ms;
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed), next;
    do {
        uint64_t now = now_ms, later = (now_ms / wms + 1) & WIN_IDX_MASK;
        if (old && (old & WIN_IDX_MASK) == later)
            now = (now_ms / wms + 1) * wms; /* another thread's clock is a window ahead */
        uint32_t prev, cur;
        rate_window_counts(old, now, wms, &prev, &cur);
        if (!rate_window_fits(rw, prev, cur, 0, now, st))
            return false;
        next = rate_window_word(now, wms, prev, cur + 1);
    } while (!atomic_compare_exchange_weak_explicit(w, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}
