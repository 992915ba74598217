/* test_udp_flow.c — the UDP flow table: lookups by client address and port (IPv4, IPv6,
 * per listening socket and destination address), LRU order under touches and removals,
 * idle expiry from the LRU head, and growth of the buckets up to the bound.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "l4/udp_flow.h"
#include "test.h"

static struct sockaddr_any v4(const char *ip, uint16_t port)
{
    struct sockaddr_any a;
    memset(&a, 0, sizeof(a));
    a.u.in.sin_family = AF_INET;
    a.u.in.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.u.in.sin_addr);
    a.len = sizeof(a.u.in);
    return a;
}

static struct sockaddr_any v6(const char *ip, uint16_t port)
{
    struct sockaddr_any a;
    memset(&a, 0, sizeof(a));
    a.u.in6.sin6_family = AF_INET6;
    a.u.in6.sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &a.u.in6.sin6_addr);
    a.len = sizeof(a.u.in6);
    return a;
}

static const int sock_a = 1, sock_b = 2; /* stand-ins for two listening sockets */

/* Fills f's key and inserts it at now. */
static void add(struct udp_flow_table *t, struct udp_flow *f, struct sockaddr_any peer,
                const void *sock, uint64_t now)
{
    memset(f, 0, sizeof(*f));
    f->peer = peer;
    f->local.sock = sock;
    f->hash = udp_flow_hash(t, &peer);
    udp_flow_insert(t, f, now);
}

static struct udp_flow *find(struct udp_flow_table *t, struct sockaddr_any peer, const void *sock)
{
    struct udp_local l = {.sock = sock};
    return udp_flow_find(t, &peer, &l, udp_flow_hash(t, &peer));
}

TEST(udp_flow_insert_and_find)
{
    struct udp_flow_table t;
    struct udp_flow f[4];
    CHECK(udp_flow_table_init(&t, 100) == 0);
    add(&t, &f[0], v4("10.0.0.1", 5000), &sock_a, 0);
    add(&t, &f[1], v4("10.0.0.1", 5001), &sock_a, 0);
    add(&t, &f[2], v6("2001:db8::1", 5000), &sock_a, 0);
    add(&t, &f[3], v4("10.0.0.1", 5000), &sock_b, 0); /* same client, other socket */
    CHECK_EQ_U64(t.n, 4);
    CHECK(find(&t, v4("10.0.0.1", 5000), &sock_a) == &f[0]);
    CHECK(find(&t, v4("10.0.0.1", 5001), &sock_a) == &f[1]);
    CHECK(find(&t, v6("2001:db8::1", 5000), &sock_a) == &f[2]);
    CHECK(find(&t, v4("10.0.0.1", 5000), &sock_b) == &f[3]);
    CHECK(find(&t, v4("10.0.0.2", 5000), &sock_a) == NULL);
    CHECK(find(&t, v6("2001:db8::2", 5000), &sock_a) == NULL);
    /* a key compares address and port only: padding or a flow label does not matter */
    struct sockaddr_any p = v6("2001:db8::1", 5000);
    p.u.in6.sin6_flowinfo = htonl(7);
    CHECK(find(&t, p, &sock_a) == &f[2]);
    udp_flow_remove(&t, &f[1]);
    CHECK(find(&t, v4("10.0.0.1", 5001), &sock_a) == NULL);
    CHECK(find(&t, v4("10.0.0.1", 5000), &sock_a) == &f[0]);
    CHECK_EQ_U64(t.n, 3);
    udp_flow_table_free(&t);
}

TEST(udp_flow_destination_address_is_part_of_the_key)
{
    struct udp_flow_table t;
    struct udp_flow f[2];
    CHECK(udp_flow_table_init(&t, 10) == 0);
    for (int i = 0; i < 2; i++) {
        memset(&f[i], 0, sizeof(f[i]));
        f[i].peer = v4("127.0.0.1", 4000);
        f[i].local = (struct udp_local){.sock = &sock_a, .family = AF_INET};
        inet_pton(AF_INET, i ? "127.0.0.2" : "127.0.0.1", &f[i].local.u.v4.ipi_addr);
        f[i].hash = udp_flow_hash(&t, &f[i].peer);
        udp_flow_insert(&t, &f[i], 0);
    }
    struct udp_local l = {.sock = &sock_a, .family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &l.u.v4.ipi_addr);
    CHECK(udp_flow_find(&t, &f[0].peer, &l, f[0].hash) == &f[1]);
    inet_pton(AF_INET, "127.0.0.1", &l.u.v4.ipi_addr);
    CHECK(udp_flow_find(&t, &f[0].peer, &l, f[0].hash) == &f[0]);
    udp_flow_table_free(&t);
}

TEST(udp_flow_lru_order)
{
    struct udp_flow_table t;
    struct udp_flow a, b, c;
    CHECK(udp_flow_table_init(&t, 3) == 0);
    CHECK(udp_flow_lru(&t) == NULL);
    add(&t, &a, v4("10.0.0.1", 1), &sock_a, 1);
    add(&t, &b, v4("10.0.0.1", 2), &sock_a, 2);
    CHECK(!udp_flow_full(&t));
    add(&t, &c, v4("10.0.0.1", 3), &sock_a, 3);
    CHECK(udp_flow_full(&t));
    CHECK(udp_flow_lru(&t) == &a); /* oldest first */
    udp_flow_touch(&t, &a, 4);     /* a datagram for a: it becomes the newest */
    CHECK(udp_flow_lru(&t) == &b);
    udp_flow_touch(&t, &c, 5);
    CHECK(udp_flow_lru(&t) == &b);
    udp_flow_remove(&t, &b); /* evicted */
    CHECK(udp_flow_lru(&t) == &a);
    udp_flow_remove(&t, &a);
    CHECK(udp_flow_lru(&t) == &c);
    udp_flow_remove(&t, &c);
    CHECK(udp_flow_lru(&t) == NULL);
    CHECK_EQ_U64(t.n, 0);
    udp_flow_table_free(&t);
}

TEST(udp_flow_idle_expiry)
{
    struct udp_flow_table t;
    struct udp_flow f[3];
    CHECK(udp_flow_table_init(&t, 10) == 0);
    for (int i = 0; i < 3; i++)
        add(&t, &f[i], v4("192.0.2.1", (uint16_t)(100 + i)), &sock_a, (uint64_t)i * 10);
    CHECK(udp_flow_expired(&t, 9, 10) == NULL); /* f[0] idle 9 ms of 10 */
    CHECK(udp_flow_expired(&t, 10, 10) == &f[0]);
    udp_flow_touch(&t, &f[0], 25); /* f[0] active again */
    CHECK(udp_flow_expired(&t, 25, 10) == &f[1]);
    udp_flow_remove(&t, &f[1]);
    CHECK(udp_flow_expired(&t, 25, 10) == NULL); /* f[2] idle 5 ms */
    CHECK(udp_flow_expired(&t, 30, 10) == &f[2]);
    udp_flow_remove(&t, &f[2]);
    CHECK(udp_flow_expired(&t, 34, 10) == NULL);
    CHECK(udp_flow_expired(&t, 35, 10) == &f[0]);
    udp_flow_table_free(&t);
}

TEST(udp_flow_grows_to_the_bound)
{
    enum { N = 5000 };
    struct udp_flow_table t;
    struct udp_flow *f = calloc(N, sizeof(*f));
    CHECK(f && udp_flow_table_init(&t, N) == 0);
    if (!f)
        return;
    for (int i = 0; i < N; i++)
        add(&t, &f[i], v4(i % 2 ? "10.1.0.1" : "10.1.0.2", (uint16_t)(1024 + i)), &sock_a,
            (uint64_t)i);
    CHECK_EQ_U64(t.n, N);
    CHECK_EQ_U64(t.nbuckets, 8192); /* the first power of two >= N, and no further */
    unsigned found = 0;
    for (int i = 0; i < N; i++)
        found +=
            find(&t, v4(i % 2 ? "10.1.0.1" : "10.1.0.2", (uint16_t)(1024 + i)), &sock_a) == &f[i];
    CHECK_EQ_U64(found, N);
    /* evict in LRU order: insertion order here */
    for (int i = 0; i < N; i++) {
        struct udp_flow *lru = udp_flow_lru(&t);
        if (lru != &f[i]) {
            test_fail(__FILE__, __LINE__, "eviction %d: not the oldest flow", i);
            break;
        }
        udp_flow_remove(&t, lru);
    }
    CHECK_EQ_U64(t.n, 0);
    udp_flow_table_free(&t);
    free(f);
}

TEST(udp_flow_hash_is_seeded)
{
    struct udp_flow_table a, b;
    CHECK(udp_flow_table_init(&a, 1) == 0 && udp_flow_table_init(&b, 1) == 0);
    struct sockaddr_any p = v4("198.51.100.7", 53);
    /* two tables hash alike only if getrandom gave both the same seed */
    CHECK(a.seed != b.seed);
    CHECK(udp_flow_hash(&a, &p) == udp_flow_hash(&a, &p));
    udp_flow_table_free(&a);
    udp_flow_table_free(&b);
}
