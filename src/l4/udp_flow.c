/* udp_flow.c — see udp_flow.h. Chained hashing with a seeded hash (clients choose their
 * source ports, so bucket positions must not be predictable); the buckets double while
 * the table holds more flows than buckets, up to the first power of two >= max.
 */
#include "udp_flow.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/hash.h"
#include "core/time.h"

#define MIN_BUCKETS 64u

static uint32_t buckets_for(uint32_t max)
{
    uint32_t n = MIN_BUCKETS;
    while (n < max && n < (1u << 30))
        n <<= 1;
    return n;
}

int udp_flow_table_init(struct udp_flow_table *t, uint32_t max)
{
    memset(t, 0, sizeof(*t));
    list_init(&t->lru);
    t->max = max;
    t->nbuckets = MIN_BUCKETS;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    if (!t->buckets)
        return -1;
    if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
        t->seed = hash_mix64(mono_ms() ^ (uint64_t)(uintptr_t)t);
    return 0;
}

void udp_flow_table_free(struct udp_flow_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->nbuckets = t->n = 0;
    list_init(&t->lru);
}

/* The address bytes and the port, without padding or IPv6 flow label. */
uint64_t udp_flow_hash(const struct udp_flow_table *t, const struct sockaddr_any *peer)
{
    if (peer->u.sa.sa_family == AF_INET6) {
        uint64_t h = hash64(&peer->u.in6.sin6_addr, sizeof(peer->u.in6.sin6_addr), t->seed);
        return hash_mix64(h ^ peer->u.in6.sin6_port);
    }
    uint64_t key = (uint64_t)peer->u.in.sin_addr.s_addr << 16 | peer->u.in.sin_port;
    return hash64(&key, sizeof(key), t->seed);
}

static bool peer_equal(const struct sockaddr_any *a, const struct sockaddr_any *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return false;
    if (a->u.sa.sa_family == AF_INET6)
        return a->u.in6.sin6_port == b->u.in6.sin6_port &&
               memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, sizeof(struct in6_addr)) == 0;
    return a->u.in.sin_port == b->u.in.sin_port &&
           a->u.in.sin_addr.s_addr == b->u.in.sin_addr.s_addr;
}

/* Compares the destination address only: that is what the flow's replies come from. */
static bool local_equal(const struct udp_local *a, const struct udp_local *b)
{
    if (a->sock != b->sock || a->family != b->family)
        return false;
    if (a->family == AF_INET)
        return a->u.v4.ipi_addr.s_addr == b->u.v4.ipi_addr.s_addr;
    if (a->family == AF_INET6)
        return memcmp(&a->u.v6.ipi6_addr, &b->u.v6.ipi6_addr, sizeof(struct in6_addr)) == 0;
    return true;
}

struct udp_flow *udp_flow_find(const struct udp_flow_table *t, const struct sockaddr_any *peer,
                               const struct udp_local *local, uint64_t hash)
{
    for (struct udp_flow *f = t->buckets[hash & (t->nbuckets - 1)]; f; f = f->hnext)
        if (f->hash == hash && peer_equal(&f->peer, peer) && local_equal(&f->local, local))
            return f;
    return NULL;
}

/* Doubles the buckets; on allocation failure keeps the old ones (longer chains). */
static void grow(struct udp_flow_table *t)
{
    uint32_t n = t->nbuckets * 2;
    struct udp_flow **b = calloc(n, sizeof(*b));
    if (!b)
        return;
    for (uint32_t i = 0; i < t->nbuckets; i++) {
        struct udp_flow *f = t->buckets[i], *next;
        for (; f; f = next) {
            next = f->hnext;
            f->hnext = b[f->hash & (n - 1)];
            b[f->hash & (n - 1)] = f;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

void udp_flow_insert(struct udp_flow_table *t, struct udp_flow *f, uint64_t now_ms)
{
    if (t->n >= t->nbuckets && t->nbuckets < buckets_for(t->max))
        grow(t);
    struct udp_flow **head = &t->buckets[f->hash & (t->nbuckets - 1)];
    f->hnext = *head;
    *head = f;
    f->last_ms = now_ms;
    list_add_tail(&t->lru, &f->lru);
    t->n++;
}

void udp_flow_remove(struct udp_flow_table *t, struct udp_flow *f)
{
    struct udp_flow **pp = &t->buckets[f->hash & (t->nbuckets - 1)];
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    BUG_ON(!*pp); /* f must be in this table */
    *pp = f->hnext;
    f->hnext = NULL;
    list_del(&f->lru);
    t->n--;
}

struct udp_flow *udp_flow_lru(const struct udp_flow_table *t)
{
    return list_empty(&t->lru) ? NULL : list_entry(t->lru.next, struct udp_flow, lru);
}

struct udp_flow *udp_flow_expired(const struct udp_flow_table *t, uint64_t now_ms, uint64_t idle_ms)
{
    struct udp_flow *f = udp_flow_lru(t);
    return f && now_ms >= f->last_ms + idle_ms ? f : NULL;
}
