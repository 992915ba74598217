/* udp_flow.h — the UDP flow table of one listener on one worker: a hash table keyed by the
 * client's address and port (and, on a wildcard listener, the local address it sent to),
 * with every flow on one LRU list. The list's head is both the flow to evict when the
 * table is full and the next one to reach its idle deadline, so a single timer per table
 * serves every flow's idle timeout. Single-threaded; the table allocates only its buckets.
 */
#ifndef STRATA_L4_UDP_FLOW_H
#define STRATA_L4_UDP_FLOW_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "net/addr.h"

/* Where a client's datagrams arrive: the listening socket (a listener may have several
 * addresses) and, on a wildcard address, the destination address of the datagram
 * (IP_PKTINFO / IPV6_RECVPKTINFO), which the replies must come from. */
struct udp_local {
    const void *sock;   /* the listening socket, compared by identity only */
    sa_family_t family; /* AF_INET or AF_INET6 with pktinfo; 0 when the socket's address
                         * is specific and says it */
    union {
        struct in_pktinfo v4;  /* ipi_addr: the header's destination; ipi_spec_dst */
        struct in6_pktinfo v6; /* ipi6_addr, ipi6_ifindex */
    } u;
};

/* Embedded in the owner's flow object. Key fields (peer, local, hash) are set by the
 * caller before udp_flow_insert() and not changed while the flow is in a table. */
struct udp_flow {
    struct udp_flow *hnext; /* bucket chain */
    struct list lru;        /* table->lru: least recently used first */
    uint64_t hash;          /* udp_flow_hash(table, &peer) */
    uint64_t last_ms;       /* last datagram either way */
    struct sockaddr_any peer;
    struct udp_local local;
};

struct udp_flow_table {
    struct udp_flow **buckets; /* nbuckets, a power of two, grown up to fit max */
    uint32_t nbuckets;
    uint32_t n;   /* flows in the table */
    uint32_t max; /* the bound the owner enforces (udp.max_flows); caps the growth */
    uint64_t seed;
    struct list lru;
};

/* Sets up an empty table for up to `max` flows. Returns 0, or -1 when out of memory. */
int udp_flow_table_init(struct udp_flow_table *t, uint32_t max);
/* Frees the buckets; the flows themselves belong to the caller. */
void udp_flow_table_free(struct udp_flow_table *t);

/* Seeded hash of a client address and port (the seed is random per table). */
uint64_t udp_flow_hash(const struct udp_flow_table *t, const struct sockaddr_any *peer);

/* The flow of (peer, local) with this hash, or NULL. */
struct udp_flow *udp_flow_find(const struct udp_flow_table *t, const struct sockaddr_any *peer,
                               const struct udp_local *local, uint64_t hash);

/* Adds f (not already in the table) as the most recently used, at now_ms. Never fails:
 * when the buckets cannot grow, chains get longer. The caller keeps n <= max by evicting
 * udp_flow_lru() first. */
void udp_flow_insert(struct udp_flow_table *t, struct udp_flow *f, uint64_t now_ms);
void udp_flow_remove(struct udp_flow_table *t, struct udp_flow *f);

/* Marks f used at now_ms: it moves to the LRU tail. */
static inline void udp_flow_touch(struct udp_flow_table *t, struct udp_flow *f, uint64_t now_ms)
{
    f->last_ms = now_ms;
    list_del(&f->lru);
    list_add_tail(&t->lru, &f->lru);
}

static inline bool udp_flow_full(const struct udp_flow_table *t)
{
    return t->n >= t->max;
}

/* The least recently used flow, or NULL when the table is empty. */
struct udp_flow *udp_flow_lru(const struct udp_flow_table *t);

/* The least recently used flow if it has been idle for at least idle_ms at now_ms. */
struct udp_flow *udp_flow_expired(const struct udp_flow_table *t, uint64_t now_ms,
                                  uint64_t idle_ms);

#endif
