/* src_limit.c — per-source slots and the global cap; see src_limit.h for the design.
 * Every update is a compare-and-swap loop on one word, so a counter or a bucket can never
 * be pushed past its limit by concurrent callers. Relaxed ordering is enough: the words
 * publish no other data.
 */
#include "src_limit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/hash.h"

/* A bucket word: debt in thousandths of a token (high 24 bits) | last update in ms (low 40
 * bits, i.e. 34 years of uptime). Storing the debt rather than the tokens left makes the
 * zeroed word a full bucket whatever the burst, so the table needs no initialization pass
 * and a bucket keeps its meaning when a reload changes the burst. */
#define STAMP_BITS 40
#define STAMP_MASK ((UINT64_C(1) << STAMP_BITS) - 1)
#define MILLI 1000u

struct src_slot {
    _Atomic uint64_t bucket;
    _Atomic uint32_t conns;
    uint32_t unused;
};

struct src_limits {
    _Atomic uint32_t refs; /* the generations sharing it (src_limits_share) */
    uint64_t k0, k1; /* SipHash key */
    uint32_t mask;   /* nslots - 1 */
    struct src_slot *slots;
};

_Static_assert(sizeof(struct src_slot) == 16, "four slots a cache line");
_Static_assert(SRC_RATE_BURST_MAX * 1000ull < (1ull << (64 - STAMP_BITS)),
               "a full debt fits in the bucket word");

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = ROTL64(v1, 13), v1 ^= v0, v0 = ROTL64(v0, 32);                              \
        v2 += v3, v3 = ROTL64(v3, 16), v3 ^= v2;                                                   \
        v0 += v3, v3 = ROTL64(v3, 21), v3 ^= v0;                                                   \
        v2 += v1, v1 = ROTL64(v1, 17), v1 ^= v2, v2 = ROTL64(v2, 32);                              \
    } while (0)

/* SipHash-2-4 (Aumasson & Bernstein): a keyed PRF, so slot choice is unpredictable
 * without the key, unlike the seeded FNV of core/hash.h. */
static uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    uint64_t m, last = (uint64_t)len << 56;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        m = 0;
        for (unsigned j = 0; j < 8; j++)
            m |= (uint64_t)in[i + j] << (8 * j);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (unsigned j = 0; i + j < len; j++)
        last |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static void random_key(uint64_t key[2])
{
    size_t got = 0;
    while (got < 2 * sizeof(uint64_t)) {
        ssize_t n = getrandom((char *)key + got, 2 * sizeof(uint64_t) - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno != EINTR) {
            break;
        }
    }
    if (got == 2 * sizeof(uint64_t))
        return;
    /* no getrandom (very old kernel): unpredictable enough to spread sources, weaker
     * against a client that can measure collisions */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    key[0] ^= hash_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30));
    key[1] ^= hash_mix64((uint64_t)getpid() ^ (uint64_t)(uintptr_t)key ^ key[0]);
}

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
    atomic_init(&l->refs, 1);
    uint64_t key[2] = {0, 0};
    random_key(key);
    l->k0 = key[0];
    l->k1 = key[1];
    return l;
fail:
    free(l);
    return NULL;
}

struct src_limits *src_limits_share(struct src_limits *l)
{
    atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    return l;
}

void src_limits_free(struct src_limits *l)
{
    if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
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

/* The debt left after `elapsed` ms at `rate` tokens a second (rate thousandths a ms). */
static uint64_t refill(uint64_t debt, uint64_t elapsed, uint32_t rate)
{
    if (rate == 0 || elapsed == 0)
        return debt;
    if (elapsed > debt / rate)
        return 0; /* elapsed * rate >= debt, computed without overflow */
    return debt - elapsed * rate;
}

bool src_rate_allow_slot(struct src_limits *l, uint32_t slot, uint64_t now_ms, uint32_t rate,
                         uint32_t burst)
{
    _Atomic uint64_t *w = &l->slots[slot & l->mask].bucket;
    uint64_t cap = (uint64_t)(burst < SRC_RATE_BURST_MAX ? burst : SRC_RATE_BURST_MAX) * MILLI;
    uint64_t now = now_ms & STAMP_MASK;
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed), next;
    do {
        uint64_t stamp = old & STAMP_MASK, debt = old >> STAMP_BITS, at = now;
        uint64_t elapsed = (now - stamp) & STAMP_MASK;
        if (elapsed >> (STAMP_BITS - 1)) {
            elapsed = 0; /* now is before stamp: keep the later stamp */
            at = stamp;
        }
        debt = refill(debt, elapsed, rate);
        if (debt + MILLI > cap)
            return false;
        next = ((debt + MILLI) << STAMP_BITS) | at;
    } while (!atomic_compare_exchange_weak_explicit(w, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

bool global_conn_acquire(struct global_conns *g, uint32_t max)
{
    return counter_acquire(&g->active, max);
}

void global_conn_release(struct global_conns *g)
{
    counter_release(&g->active);
}
