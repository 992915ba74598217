/* test_src_limit.c — per-source limits (src/net/src_limit.c): what a source is (port, /64,
 * mapped addresses), concurrent-connection counts, exact token-bucket arithmetic with an
 * explicit clock, two threads hammering one source (run it under SAN=thread), and how
 * often distinct sources share a slot. Prints the measured collisions and cost per check.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hash.h"
#include "net/src_limit.h"
#include "test.h"

static struct sockaddr_any sa_port(const char *ip, uint16_t port)
{
    struct sockaddr_any a;
    memset(&a, 0, sizeof(a));
    if (strchr(ip, ':')) {
        a.u.in6.sin6_family = AF_INET6;
        a.u.in6.sin6_port = htons(port);
        if (inet_pton(AF_INET6, ip, &a.u.in6.sin6_addr) != 1)
            abort();
        a.len = sizeof(a.u.in6);
    } else {
        a.u.in.sin_family = AF_INET;
        a.u.in.sin_port = htons(port);
        if (inet_pton(AF_INET, ip, &a.u.in.sin_addr) != 1)
            abort();
        a.len = sizeof(a.u.in);
    }
    return a;
}

static struct sockaddr_any sa(const char *ip)
{
    return sa_port(ip, 40000);
}

static struct sockaddr_any sa_v4(uint32_t ip)
{
    struct sockaddr_any a;
    memset(&a, 0, sizeof(a));
    a.u.in.sin_family = AF_INET;
    a.u.in.sin_addr.s_addr = htonl(ip);
    a.len = sizeof(a.u.in);
    return a;
}

TEST(src_limit_table_size)
{
    struct src_limits *l = src_limits_new(0);
    CHECK(l && src_limits_nslots(l) == SRC_LIMITS_DEFAULT_SLOTS);
    src_limits_free(l);
    l = src_limits_new(1000);
    CHECK(l && src_limits_nslots(l) == 1024);
    src_limits_free(l);
    l = src_limits_new(1);
    CHECK(l && src_limits_nslots(l) == 1);
    src_limits_free(l);
    src_limits_free(NULL);
}

TEST(src_limit_what_is_a_source)
{
    struct src_limits *l = src_limits_new(1u << 20);
    struct sockaddr_any a = sa_port("192.0.2.7", 1000), b = sa_port("192.0.2.7", 2000);
    struct sockaddr_any m = sa_port("::ffff:192.0.2.7", 3000);
    CHECK(src_slot_of(l, &a) == src_slot_of(l, &b)); /* port ignored */
    CHECK(src_slot_of(l, &a) == src_slot_of(l, &m)); /* mapped = IPv4 */
    struct sockaddr_any p = sa("2001:db8:1:2::1"), q = sa("2001:db8:1:2:ffff:ffff:ffff:ffff");
    CHECK(src_slot_of(l, &p) == src_slot_of(l, &q)); /* one /64 */

    /* distinct /64s and distinct IPv4s spread (1M slots: a shared slot is a 1e-6 event) */
    uint64_t rng = 12345;
    int same6 = 0, same4 = 0;
    for (int i = 0; i < 1000; i++) {
        struct sockaddr_any x = sa("2001:db8::1"), y = sa("2001:db8::1");
        uint64_t r = rng_next(&rng);
        memcpy(&x.u.in6.sin6_addr.s6_addr[4], &r, 4);
        memcpy(&y.u.in6.sin6_addr.s6_addr[4], &r, 4);
        y.u.in6.sin6_addr.s6_addr[7] ^= 1; /* the neighbouring /64 */
        same6 += src_slot_of(l, &x) == src_slot_of(l, &y);
        struct sockaddr_any u = sa_v4((uint32_t)r), v = sa_v4((uint32_t)r ^ 1);
        same4 += src_slot_of(l, &u) == src_slot_of(l, &v);
    }
    CHECK(same6 <= 2 && same4 <= 2);

    /* the hash is keyed: another table places the same sources elsewhere */
    struct src_limits *l2 = src_limits_new(1u << 20);
    int agree = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        struct sockaddr_any x = sa_v4(0x0a000000u + i);
        agree += src_slot_of(l, &x) == src_slot_of(l2, &x);
    }
    CHECK(agree <= 2);
    src_limits_free(l2);

    struct sockaddr_any u1, u2;
    memset(&u1, 0, sizeof(u1));
    u1.u.sa.sa_family = AF_UNIX;
    u2 = u1;
    CHECK(src_slot_of(l, &u1) == src_slot_of(l, &u2));
    src_limits_free(l);
}

TEST(src_limit_conn_max)
{
    struct src_limits *l = src_limits_new(1024);
    struct sockaddr_any a = sa_port("198.51.100.1", 1), b = sa_port("198.51.100.1", 2);
    uint32_t slot = src_slot_of(l, &a);
    for (int i = 0; i < 3; i++)
        CHECK(src_conn_acquire(l, i & 1 ? &a : &b, 3));
    CHECK(!src_conn_acquire(l, &a, 3));
    CHECK(!src_conn_acquire(l, &b, 3));
    CHECK_EQ_U64(src_conn_count(l, slot), 3);
    src_conn_release(l, &a);
    CHECK_EQ_U64(src_conn_count(l, slot), 2);
    CHECK(src_conn_acquire(l, &b, 3));
    CHECK(!src_conn_acquire(l, &a, 3));
    CHECK(src_conn_acquire(l, &a, 4)); /* a larger max (after a reload) admits more */
    CHECK(!src_conn_acquire(l, &a, 2));
    for (int i = 0; i < 4; i++)
        src_conn_release_slot(l, slot);
    CHECK_EQ_U64(src_conn_count(l, slot), 0);
    CHECK(!src_conn_acquire(l, &a, 0)); /* max 0 admits nothing */
    CHECK_EQ_U64(src_conn_count(l, slot), 0);
    src_limits_free(l);
}

TEST(src_limit_global_cap)
{
    struct global_conns g = {0};
    CHECK(global_conn_acquire(&g, 2) && global_conn_acquire(&g, 2));
    CHECK(!global_conn_acquire(&g, 2));
    global_conn_release(&g);
    CHECK(global_conn_acquire(&g, 2));
    global_conn_release(&g);
    global_conn_release(&g);
    CHECK_EQ_U64(atomic_load(&g.active), 0);
}

/* Takes tokens at `now` until refused; returns how many were granted. */
static unsigned drain(struct src_limits *l, uint32_t slot, uint64_t now, uint32_t rate,
                      uint32_t burst)
{
    unsigned n = 0;
    while (n < 100000 && src_rate_allow_slot(l, slot, now, rate, burst))
        n++;
    return n;
}

TEST(src_limit_rate_bucket)
{
    struct src_limits *l = src_limits_new(1024);
    struct sockaddr_any a = sa("203.0.113.9");
    uint32_t s = src_slot_of(l, &a);
    /* 10/s, burst 5: a fresh source has a full bucket */
    CHECK_EQ_U64(drain(l, s, 1000, 10, 5), 5);
    CHECK_EQ_U64(drain(l, s, 1099, 10, 5), 0); /* 0.99 token */
    CHECK_EQ_U64(drain(l, s, 1100, 10, 5), 1);
    CHECK_EQ_U64(drain(l, s, 1600, 10, 5), 5);
    CHECK_EQ_U64(drain(l, s, 1000000, 10, 5), 5); /* never more than the burst */
    /* a clock read earlier by another thread refills nothing and moves nothing back */
    CHECK_EQ_U64(drain(l, s, 900000, 10, 5), 0);
    CHECK_EQ_U64(drain(l, s, 1000099, 10, 5), 0);
    CHECK_EQ_U64(drain(l, s, 1000100, 10, 5), 1);
    CHECK(src_rate_allow(l, &a, 2000000, 10, 5)); /* the address form */
    src_limits_free(l);
}

TEST(src_limit_rate_exact_fractions)
{
    struct src_limits *l = src_limits_new(1024);
    uint32_t s = 7;
    /* 3/s: 3 thousandths of a token a ms; the remainders carry over */
    CHECK_EQ_U64(drain(l, s, 0, 3, 2), 2);   /* debt 2000 at t=0 */
    CHECK_EQ_U64(drain(l, s, 333, 3, 2), 0); /* 999 back: 1001 owed, 1 token needs <= 1000 */
    CHECK_EQ_U64(drain(l, s, 334, 3, 2), 1); /* 1002 back: debt 998 + 1000 */
    CHECK_EQ_U64(drain(l, s, 666, 3, 2), 0); /* debt 1998 - 996 = 1002 */
    CHECK_EQ_U64(drain(l, s, 667, 3, 2), 1); /* 1998 - 999 = 999: exact, not rounded */
    /* burst 1: a full bucket drops the surplus */
    s = 8;
    CHECK_EQ_U64(drain(l, s, 0, 3, 1), 1);
    CHECK_EQ_U64(drain(l, s, 333, 3, 1), 0);
    CHECK_EQ_U64(drain(l, s, 334, 3, 1), 1);
    CHECK_EQ_U64(drain(l, s, 667, 3, 1), 0);
    CHECK_EQ_U64(drain(l, s, 668, 3, 1), 1);
    /* rate 0 = burst only, burst 0 = nothing, bursts are clamped */
    CHECK_EQ_U64(drain(l, 9, 0, 0, 2), 2);
    CHECK_EQ_U64(drain(l, 9, UINT32_MAX, 0, 2), 0);
    CHECK_EQ_U64(drain(l, 10, 0, 1000, 0), 0);
    CHECK_EQ_U64(drain(l, 11, 5, 0, 1000000), SRC_RATE_BURST_MAX);
    /* a high rate refills a big burst in a few ms, without overflow */
    CHECK_EQ_U64(drain(l, 11, 6, UINT32_MAX, SRC_RATE_BURST_MAX), SRC_RATE_BURST_MAX);
    CHECK_EQ_U64(drain(l, 12, 0, 1000000, 16000), 16000);
    CHECK_EQ_U64(drain(l, 12, 8, 1000000, 16000), 8000);
    /* a clock far from 0 (the stamp keeps 40 bits) */
    uint64_t t = (UINT64_C(1) << 45) + 12345;
    CHECK_EQ_U64(drain(l, 13, t, 10, 3), 3);
    CHECK_EQ_U64(drain(l, 13, t + 99, 10, 3), 0);
    CHECK_EQ_U64(drain(l, 13, t + 100, 10, 3), 1);
    src_limits_free(l);
}

/* ---- two threads on one source ---- */

#define ROUNDS 100000
#define TMAX 3 /* each thread wants 2 units at once: together they want 4 */

struct hammer {
    struct src_limits *l;
    struct global_conns *g;
    struct sockaddr_any src;
    _Atomic uint32_t *holders, *high, *gholders, *ghigh;
    pthread_barrier_t *start; /* both threads begin together, so that they overlap */
    uint32_t granted, refused, rate_granted;
};

/* Counts a unit held (after the acquire succeeded) and records the high-water mark. */
static void hold(_Atomic uint32_t *holders, _Atomic uint32_t *high)
{
    uint32_t n = atomic_fetch_add(holders, 1) + 1;
    uint32_t hi = atomic_load(high);
    while (n > hi && !atomic_compare_exchange_weak(high, &hi, n))
        ;
}

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    pthread_barrier_wait(h->start);
    for (int i = 0; i < ROUNDS; i++) {
        int src = 0, glob = 0;
        for (int k = 0; k < 2; k++) {
            if (src_conn_acquire(h->l, &h->src, TMAX)) {
                hold(h->holders, h->high);
                src++;
            }
            if (global_conn_acquire(h->g, TMAX)) {
                hold(h->gholders, h->ghigh);
                glob++;
            }
        }
        h->granted += (uint32_t)src;
        h->refused += (uint32_t)(2 - src);
        for (; src > 0; src--) { /* forget the unit before giving it back */
            atomic_fetch_sub(h->holders, 1);
            src_conn_release(h->l, &h->src);
        }
        for (; glob > 0; glob--) {
            atomic_fetch_sub(h->gholders, 1);
            global_conn_release(h->g);
        }
    }
    for (int i = 0; i < ROUNDS / 10; i++) /* one clock instant: only the burst passes */
        h->rate_granted += src_rate_allow(h->l, &h->src, 5000, 10, 1000);
    return NULL;
}

TEST(src_limit_threads_one_source)
{
    struct src_limits *l = src_limits_new(1024);
    struct global_conns g = {0};
    _Atomic uint32_t holders = 0, high = 0, gholders = 0, ghigh = 0;
    struct hammer h[2];
    pthread_t th[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    for (int i = 0; i < 2; i++) {
        h[i] = (struct hammer){.l = l, .g = &g, .start = &start};
        h[i].holders = &holders, h[i].high = &high;
        h[i].gholders = &gholders, h[i].ghigh = &ghigh;
        h[i].src = sa_port("192.0.2.200", (uint16_t)(1000 + i)); /* one source, two ports */
        CHECK(pthread_create(&th[i], NULL, hammer_run, &h[i]) == 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    CHECK_EQ_U64(src_conn_count(l, src_slot_of(l, &h[0].src)), 0);
    CHECK_EQ_U64(atomic_load(&g.active), 0);
    CHECK(atomic_load(&high) <= TMAX && atomic_load(&ghigh) <= TMAX);
    CHECK(atomic_load(&high) >= 2);
    CHECK_EQ_U64(h[0].granted + h[0].refused + h[1].granted + h[1].refused, 4 * ROUNDS);
    CHECK_EQ_U64(h[0].rate_granted + h[1].rate_granted, 1000);
    printf("    2 threads x %d rounds x 2 units, max %d: high-water %u, %u refused\n", ROUNDS, TMAX,
           atomic_load(&high), h[0].refused + h[1].refused);
    src_limits_free(l);
}

/* ---- distinct sources ---- */

/* How many of the n sources land in each slot (an array of nslots counters). */
static uint16_t *occupancy(const struct src_limits *l, const struct sockaddr_any *src, int n,
                           uint32_t *shared)
{
    uint16_t *occ = calloc(src_limits_nslots(l), sizeof(*occ));
    *shared = 0;
    for (int i = 0; i < n; i++)
        occ[src_slot_of(l, &src[i])]++;
    for (int i = 0; i < n; i++)
        *shared += occ[src_slot_of(l, &src[i])] > 1;
    return occ;
}

TEST(src_limit_distinct_sources)
{
    enum { NSRC = 10000 };
    struct src_limits *big = src_limits_new(1u << 20), *dflt = src_limits_new(0);
    uint64_t rng = 777;
    struct sockaddr_any *src = malloc(NSRC * sizeof(*src));
    for (int i = 0; i < NSRC; i++)
        src[i] = sa_v4((uint32_t)rng_next(&rng));
    uint32_t shared_big, shared_dflt;
    uint16_t *occ = occupancy(big, src, NSRC, &shared_big);
    free(occupancy(dflt, src, NSRC, &shared_dflt));
    /* each source takes 2 of max 2: refused only where a slot-mate took them first */
    int refused = 0, wrongly = 0;
    for (int i = 0; i < NSRC; i++) {
        for (int k = 0; k < 2; k++) {
            if (src_conn_acquire(big, &src[i], 2))
                continue;
            refused++;
            wrongly += occ[src_slot_of(big, &src[i])] < 2;
        }
    }
    CHECK_EQ_U64(wrongly, 0);
    /* expected: n(1 - e^(-n/m)) = 95 of 10k in 1M slots, 1,419 in 64k */
    CHECK(shared_big < 300);
    CHECK(shared_dflt > 1000 && shared_dflt < 1900);
    printf("    10k random IPv4 sources: %u share a slot in 1M slots (%d acquires refused), "
           "%u in the default 64k\n",
           shared_big, refused, shared_dflt);
    free(occ);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int rep = 0; rep < 100; rep++)
        for (int i = 0; i < NSRC; i++) {
            uint32_t s = src_slot_of(dflt, &src[i]);
            if (src_rate_allow_slot(dflt, s, (uint64_t)rep * 1000, 1000, 1000) &&
                src_conn_acquire_slot(dflt, s, 1000))
                src_conn_release_slot(dflt, s);
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("    slot hash + rate check + acquire + release: %.1f ns\n", ns / (100.0 * NSRC));
    free(src);
    src_limits_free(big);
    src_limits_free(dflt);
}
