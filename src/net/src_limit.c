/* src_limit.c — per-source slots and the global cap; see src_limit.h for the design.
 * Every update is a compare-and-swap loop on one word, so a counter or a bucket can never
 * be pushed past its limit by concurrent callers. Relaxed ordering is enough: the words
 * publish no other data.
 */
#include "src_limit.h"

#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/rate.h"
#include "core/siphash.h"

/* A bucket word is a core/rate.h token bucket in thousandths of a token. */
#define MILLI 1000u

struct src_slot {
    _Atomic uint64_t bucket;
    _Atomic uint32_t conns;
    uint32_t unused;
};

struct src_limits {
    uint64_t k0, k1; /* SipHash key */
    uint32_t mask;   /* nslots - 1 */
    struct src_slot *slots;
};

_Static_assert(sizeof(struct src_slot) == 16, "four slots a cache line");
_Static_assert(SRC_RATE_BURST_MAX * 1000ull <= RATE_BUCKET_CAP_MAX, "a full bucket fits its word");

struct src_limits *src_limits_new(uint32_t slots)
{
    uint32_t n = 1;
    if (slots == 0)
        slots = SRC_LIMITS_DEFAULT_SLOTS;
    if (slots > SRC_LIMITS_MAX_SLOTS)
        slots = SRC_LIMITS_MAX_SLOTS;
    while (n < slots)
        n <<= 1;

    struct src_limits *l = calloc(1, sizeof(*l));
    void *mem = NULL;
    if (!l)
        goto fail;
    if (posix_memalign(&mem, CACHELINE, (size_t)n * sizeof(struct src_slot)) != 0)
        goto fail;
    memset(mem, 0, (size_t)n * sizeof(struct src_slot));
    l->slots = mem;
    l->mask = n - 1;
    uint64_t key[2] = {0, 0};
    siphash_random_key(key);
    l->k0 = key[0];
    l->k1 = key[1];
    return l;
fail:
    free(l);
    return NULL;
}

void src_limits_free(struct src_limits *l)
{
    if (!l)
        return;
    free(l->slots);
    free(l);
}

uint32_t src_limits_nslots(const struct src_limits *l)
{
    return l->mask + 1;
}

uint32_t src_slot_of(const struct src_limits *l, const struct sockaddr_any *a)
{
    /* the key length separates the domains: 4 bytes = IPv4, 8 = IPv6 /64, 0 = other */
    const uint8_t *key = NULL;
    size_t len = 0;
    if (a->u.sa.sa_family == AF_INET) {
        key = (const uint8_t *)&a->u.in.sin_addr;
        len = 4;
    } else if (a->u.sa.sa_family == AF_INET6) {
        const uint8_t *ip6 = a->u.in6.sin6_addr.s6_addr;
        bool mapped = IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr);
        key = mapped ? ip6 + 12 : ip6;
        len = mapped ? 4 : 8;
    }
    return (uint32_t)siphash24(l->k0, l->k1, key, len) & l->mask;
}

/* CAS increment unless the counter has reached max. */
static bool counter_acquire(_Atomic uint32_t *c, uint32_t max)
{
    uint32_t v = atomic_load_explicit(c, memory_order_relaxed);
    do {
        if (v >= max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(c, &v, v + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

static void counter_release(_Atomic uint32_t *c)
{
    uint32_t prev = atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
    BUG_ON(prev == 0); /* a release without its acquire */
}

bool src_conn_acquire_slot(struct src_limits *l, uint32_t slot, uint32_t max)
{
    return counter_acquire(&l->slots[slot & l->mask].conns, max);
}

void src_conn_release_slot(struct src_limits *l, uint32_t slot)
{
    counter_release(&l->slots[slot & l->mask].conns);
}

uint32_t src_conn_count(const struct src_limits *l, uint32_t slot)
{
    return atomic_load_explicit(&l->slots[slot & l->mask].conns, memory_order_relaxed);
}

bool src_rate_allow_slot(struct src_limits *l, uint32_t slot, uint64_t now_ms, uint32_t rate,
                         uint32_t burst)
{
    /* thousandths of a token, `rate` of them a millisecond (core/rate.h) */
    uint32_t b = burst < SRC_RATE_BURST_MAX ? burst : SRC_RATE_BURST_MAX;
    struct rate_bucket rb = {MILLI, b * MILLI, rate};
    return rate_bucket_take(&l->slots[slot & l->mask].bucket, now_ms, &rb, NULL);
}

bool global_conn_acquire(struct global_conns *g, uint32_t max)
{
    return counter_acquire(&g->active, max);
}

void global_conn_release(struct global_conns *g)
{
    counter_release(&g->active);
}
