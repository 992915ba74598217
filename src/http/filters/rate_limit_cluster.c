/* rate_limit_cluster.c — see rate_limit_cluster.h. */
#include "rate_limit_cluster.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/hash.h"
#include "core/siphash.h"

struct rl_cslot {
    _Atomic uint64_t fp;      /* the key's hash; 0 = free */
    _Atomic uint64_t global;  /* window word from Redis */
    _Atomic uint32_t used_ms; /* last request (low 32 bits of the wall clock in ms) */
    _Atomic uint32_t others;  /* what other processes added between our last two exchanges */
    /* pending (allowed here, not sent yet: low 32 bits) | inflight (sent, not answered
     * yet: high 32 bits), one word so that moving pending to inflight is one atomic step
     * in which no worker can see the requests in neither */
    _Atomic uint64_t counts;
};

#define PENDING(w) ((uint32_t)(w))
#define INFLIGHT(w) ((uint32_t)((w) >> 32))

struct rl_cluster {
    uint64_t k0, k1; /* key hash: the same in every process for this limit name */
    uint32_t mask;
    struct rl_cslot *slots;
};

_Static_assert(sizeof(struct rl_cslot) == 32, "two slots a cache line");
_Static_assert(RATE_WINDOW_MAX < UINT32_MAX / 2, "pending and inflight cannot carry over");

struct rl_cluster *rl_cluster_new(const char *name, uint32_t slots)
{
    struct rl_cluster *cl = calloc(1, sizeof(*cl));
    void *mem = NULL;
    if (!cl || posix_memalign(&mem, CACHELINE, (size_t)slots * sizeof(struct rl_cslot)) != 0) {
        free(cl);
        return NULL;
    }
    memset(mem, 0, (size_t)slots * sizeof(struct rl_cslot));
    cl->slots = mem;
    cl->mask = slots - 1;
    cl->k0 = hash64(name, strlen(name), 0x7374726174612d72ull); /* "strata-r" */
    cl->k1 = hash64(name, strlen(name), 0x6c2d636c75737472ull);
    return cl;
}

void rl_cluster_free(struct rl_cluster *cl)
{
    if (!cl)
        return;
    free(cl->slots);
    free(cl);
}

uint32_t rl_cluster_nslots(const struct rl_cluster *cl)
{
    return cl->mask + 1;
}

uint64_t rl_cluster_fp(const struct rl_cluster *cl, const void *key, size_t len)
{
    uint64_t h = siphash24(cl->k0, cl->k1, key, len);
    return h ? h : 1;
}

/* Claims slot s for fp (or finds it held by fp). */
static bool claim(struct rl_cslot *s, uint64_t fp)
{
    uint64_t cur = atomic_load_explicit(&s->fp, memory_order_acquire);
    if (cur == 0 && atomic_compare_exchange_strong_explicit(&s->fp, &cur, fp, memory_order_acq_rel,
                                                            memory_order_acquire))
        return true;
    return cur == fp;
}

enum rl_take rl_cluster_take(struct rl_cluster *cl, uint32_t slot, uint64_t fp,
                             const struct rate_window *rw, uint32_t nodes, uint32_t sync_ms,
                             uint64_t now_ms, struct rate_state *st)
{
    struct rl_cslot *s = &cl->slots[slot & cl->mask];
    if (!claim(s, fp))
        return RL_TAKE_OTHER_KEY;
    if (atomic_load_explicit(&s->used_ms, memory_order_relaxed) != (uint32_t)now_ms)
        atomic_store_explicit(&s->used_ms, (uint32_t)now_ms, memory_order_relaxed);
    uint64_t w = atomic_load_explicit(&s->counts, memory_order_relaxed);
    for (;;) {
        uint32_t p = PENDING(w), infl = INFLIGHT(w);
        uint32_t prev, cur;
        uint64_t g = atomic_load_explicit(&s->global, memory_order_relaxed);
        rate_window_counts(g, now_ms, rw->window_ms, &prev, &cur);
        if (!rate_window_fits(rw, prev, cur, p + infl, now_ms, st))
            return RL_TAKE_REFUSED;
        /* this process's share of what is left: what the last exchange left, less what the
         * others are likely to have taken since (as much as in the round before), a quarter
         * of a fair share because our view of them is a round late and rounds drift */
        uint64_t used = (uint64_t)rate_window_estimate(prev, cur, now_ms, rw->window_ms) + infl +
                        atomic_load_explicit(&s->others, memory_order_relaxed);
        uint64_t left = used < rw->limit ? rw->limit - used : 0;
        uint64_t share = (left + 4 * nodes - 1) / (4 * nodes), mine = p;
        if (g == 0) { /* a key Redis has not told us about yet: it may be spent elsewhere */
            share = (rw->limit + 99) / 100;
            mine = (uint64_t)p + infl;
        }
        if (mine + 1 > (share ? share : 1)) {
            st->remaining = 0;
            if (st->retry_ms < sync_ms)
                st->retry_ms = sync_ms;
            return RL_TAKE_REFUSED;
        }
        if (atomic_compare_exchange_weak_explicit(&s->counts, &w, w + 1, memory_order_relaxed,
                                                  memory_order_relaxed))
            return RL_TAKE_ALLOWED;
    }
}

bool rl_cluster_collect(struct rl_cluster *cl, uint32_t i, uint64_t now_ms, uint32_t window_ms,
                        uint64_t *fp, uint32_t *sent)
{
    struct rl_cslot *s = &cl->slots[i];
    uint64_t f = atomic_load_explicit(&s->fp, memory_order_acquire);
    if (!f)
        return false;
    /* signed: a worker may have read the clock after us (a window is at most a day) */
    int32_t since =
        (int32_t)((uint32_t)now_ms - atomic_load_explicit(&s->used_ms, memory_order_relaxed));
    bool recent = since < 2 * (int64_t)window_ms;
    uint64_t w = atomic_load_explicit(&s->counts, memory_order_relaxed), moved;
    do
        moved = ((uint64_t)(INFLIGHT(w) + PENDING(w)) << 32);
    while (PENDING(w) && !atomic_compare_exchange_weak_explicit(
                             &s->counts, &w, moved, memory_order_relaxed, memory_order_relaxed));
    uint32_t p = PENDING(w);
    if (!p && !recent) {
        if (INFLIGHT(w) == 0) {
            /* idle: free it (a worker that claims it now starts from zero, as Redis's
             * counts of an idle key have expired too) */
            atomic_store_explicit(&s->global, 0, memory_order_relaxed);
            atomic_store_explicit(&s->others, 0, memory_order_relaxed);
            atomic_store_explicit(&s->fp, 0, memory_order_release);
        }
        return false;
    }
    *fp = f;
    *sent = p;
    return true;
}

void rl_cluster_answer(struct rl_cluster *cl, uint32_t i, uint64_t fp, uint32_t sent, bool ok,
                       uint64_t wno, uint32_t window_ms, uint32_t prev, uint32_t cur)
{
    struct rl_cslot *s = &cl->slots[i];
    if (ok && atomic_load_explicit(&s->fp, memory_order_acquire) == fp) {
        uint64_t at = wno * window_ms;
        uint32_t old_prev, old_cur;
        rate_window_counts(atomic_load_explicit(&s->global, memory_order_relaxed), at, window_ms,
                           &old_prev, &old_cur);
        uint64_t others = (uint64_t)old_cur + sent < cur ? cur - old_cur - sent : 0;
        atomic_store_explicit(&s->others, (uint32_t)others, memory_order_relaxed);
        atomic_store_explicit(&s->global, rate_window_word(at, window_ms, prev, cur),
                              memory_order_relaxed);
    }
    /* after `global` includes them, so workers count them twice for a moment, never zero
     * times (on failure they are dropped: Redis never saw them) */
    if (sent)
        atomic_fetch_sub_explicit(&s->counts, (uint64_t)sent << 32, memory_order_relaxed);
}
