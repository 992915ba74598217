/* test_cidr.c — prefix parsing, set membership and ACLs (src/net/cidr.c): accepted and
 * refused forms with their reasons, edge prefix lengths for both families, IPv4-mapped
 * addresses, and 10k random prefixes checked against a linear-scan model on 100k
 * addresses per family. Prints the measured cost of a lookup against the linear scan.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hash.h"
#include "net/cidr.h"
#include "test.h"

static struct sockaddr_any sa_bytes(int family, const uint8_t *ip)
{
    struct sockaddr_any a;
    memset(&a, 0, sizeof(a));
    if (family == AF_INET) {
        a.u.in.sin_family = AF_INET;
        a.u.in.sin_port = htons(4321);
        memcpy(&a.u.in.sin_addr, ip, 4);
        a.len = sizeof(a.u.in);
    } else {
        a.u.in6.sin6_family = AF_INET6;
        a.u.in6.sin6_port = htons(4321);
        memcpy(&a.u.in6.sin6_addr, ip, 16);
        a.len = sizeof(a.u.in6);
    }
    return a;
}

/* "1.2.3.4" or an IPv6 literal as a client address (any port). */
static struct sockaddr_any sa(const char *ip)
{
    uint8_t b[16];
    int family = strchr(ip, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(family, ip, b) != 1)
        abort();
    return sa_bytes(family, b);
}

static void add(struct cidr_set *s, const char *text)
{
    struct cidr c;
    const char *why = NULL;
    if (cidr_parse(text, &c, &why) < 0) {
        test_fail(__FILE__, __LINE__, "cidr_parse(\"%s\"): %s", text, why);
        return;
    }
    CHECK(cidr_set_add(s, &c) == 0);
}

static bool in(const struct cidr_set *s, const char *ip)
{
    struct sockaddr_any a = sa(ip);
    return cidr_set_contains(s, &a);
}

TEST(cidr_parse_valid)
{
    static const struct {
        const char *in, *out;
        int family;
    } ok[] = {
        {"10.0.0.0/8", "10.0.0.0/8", AF_INET},
        {"192.168.1.7", "192.168.1.7/32", AF_INET},
        {"0.0.0.0/0", "0.0.0.0/0", AF_INET},
        {"255.255.255.255/32", "255.255.255.255/32", AF_INET},
        {"128.0.0.0/1", "128.0.0.0/1", AF_INET},
        {"10.0.0.0/008", "10.0.0.0/8", AF_INET},
        {"2001:db8::/32", "2001:db8::/32", AF_INET6},
        {"::1", "::1/128", AF_INET6},
        {"::/0", "::/0", AF_INET6},
        {"fe80::/10", "fe80::/10", AF_INET6},
        {"2001:DB8:0:0:0:0:0:1/128", "2001:db8::1/128", AF_INET6},
        {"::ffff:1.2.3.4", "1.2.3.4/32", AF_INET},
        {"::ffff:10.0.0.0/104", "10.0.0.0/8", AF_INET},
        {"::ffff:0:0/96", "0.0.0.0/0", AF_INET},
        {"::fffe:0:0/95", "::fffe:0:0/95", AF_INET6}, /* holds ::ffff:0:0/96, stays IPv6 */
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct cidr c;
        char buf[CIDR_STRLEN];
        const char *why = NULL;
        if (cidr_parse(ok[i].in, &c, &why) < 0) {
            test_fail(__FILE__, __LINE__, "cidr_parse(\"%s\") failed: %s", ok[i].in, why);
            continue;
        }
        cidr_format(&c, buf, sizeof(buf));
        if (strcmp(buf, ok[i].out) != 0 || c.family != ok[i].family)
            test_fail(__FILE__, __LINE__, "cidr_parse(\"%s\") = %s (family %d), want %s", ok[i].in,
                      buf, c.family, ok[i].out);
    }
}

TEST(cidr_parse_invalid)
{
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "empty address"},
        {"/8", "missing address"},
        {"10.0.0.0/", "prefix length must be 0-32"},
        {"10.0.0.0/33", "prefix length must be 0-32"},
        {"10.0.0.0/1000", "prefix length must be 0-32"},
        {"10.0.0.0/-1", "prefix length must be 0-32"},
        {"10.0.0.0/ 8", "prefix length must be 0-32"},
        {"10.0.0.0/8 ", "prefix length must be 0-32"},
        {"10.0.0.0/8/8", "prefix length must be 0-32"},
        {"10.0.0.0/255.0.0.0", "not a netmask"},
        {"::/129", "prefix length must be 0-128"},
        {"2001:db8::/x", "prefix length must be 0-128"},
        {"10.0.0/8", "not a valid IPv4 address"},
        {"10.0.0.0.0", "not a valid IPv4 address"},
        {"010.0.0.1", "not a valid IPv4 address"},
        {" 10.0.0.0", "not a valid IPv4 address"},
        {"1.2.3.256", "not a valid IPv4 address"},
        {"localhost", "host names are not resolved"},
        {"fe80::1%eth0", "not a valid IPv6 address"},
        {"1.2.3.4:80", "not a valid IPv6 address"},
        {"2001:db8::g", "not a valid IPv6 address"},
        {"10.1.2.3/8", "host bits set: did you mean 10.0.0.0/8?"},
        {"10.0.0.1/0", "host bits set: did you mean 0.0.0.0/0?"},
        {"192.168.1.1/31", "did you mean 192.168.1.0/31?"},
        {"2001:db8::1/32", "host bits set: did you mean 2001:db8::/32?"},
        {"2001:db8::1/127", "did you mean 2001:db8::/127?"},
        {"::ffff:10.1.0.0/104", "did you mean ::ffff:10.0.0.0/104?"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cidr c;
        const char *why = NULL;
        if (cidr_parse(bad[i].in, &c, &why) == 0) {
            test_fail(__FILE__, __LINE__, "cidr_parse(\"%s\") accepted", bad[i].in);
            continue;
        }
        if (!why || !strstr(why, bad[i].why))
            test_fail(__FILE__, __LINE__, "cidr_parse(\"%s\"): \"%s\", want \"%s\"", bad[i].in,
                      why ? why : "(null)", bad[i].why);
    }
    struct cidr c;
    const char *why = NULL;
    CHECK(cidr_parse(NULL, &c, &why) < 0);
}

TEST(cidr_edges_v4)
{
    struct cidr_set s = {0};
    CHECK(!in(&s, "1.2.3.4")); /* empty set */
    add(&s, "128.0.0.0/1");
    CHECK(in(&s, "128.0.0.0") && in(&s, "255.255.255.255") && in(&s, "200.1.2.3"));
    CHECK(!in(&s, "127.255.255.255") && !in(&s, "0.0.0.0"));
    add(&s, "10.0.0.0/31");
    CHECK(in(&s, "10.0.0.0") && in(&s, "10.0.0.1"));
    CHECK(!in(&s, "10.0.0.2") && !in(&s, "9.255.255.255"));
    add(&s, "10.9.8.7/32");
    CHECK(in(&s, "10.9.8.7"));
    CHECK(!in(&s, "10.9.8.6") && !in(&s, "10.9.8.8") && !in(&s, "10.9.8.15"));
    add(&s, "10.128.0.0/9");
    CHECK(in(&s, "10.128.0.0") && in(&s, "10.255.255.255") && !in(&s, "10.127.255.255"));
    /* IPv4 prefixes never match IPv6 clients, mapped ones excepted */
    CHECK(!in(&s, "8000::") && !in(&s, "::200.1.2.3"));
    CHECK(in(&s, "::ffff:10.9.8.7") && in(&s, "::ffff:200.1.2.3"));
    CHECK(!in(&s, "::ffff:10.9.8.8"));
    CHECK_EQ_U64(s.count, 4);
    cidr_set_free(&s);
    CHECK(!in(&s, "10.9.8.7"));

    add(&s, "0.0.0.0/0");
    CHECK(in(&s, "0.0.0.0") && in(&s, "255.255.255.255") && in(&s, "::ffff:1.1.1.1"));
    CHECK(!in(&s, "::1") && !in(&s, "::"));
    cidr_set_free(&s);
}

TEST(cidr_edges_v6)
{
    struct cidr_set s = {0};
    add(&s, "8000::/1");
    CHECK(in(&s, "8000::") && in(&s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(!in(&s, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    add(&s, "2001:db8::/127");
    CHECK(in(&s, "2001:db8::") && in(&s, "2001:db8::1"));
    CHECK(!in(&s, "2001:db8::2") && !in(&s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
    add(&s, "2001:db8::42/128");
    CHECK(in(&s, "2001:db8::42") && !in(&s, "2001:db8::43") && !in(&s, "2001:db8::40"));
    add(&s, "2001:db8:8000::/33");
    CHECK(in(&s, "2001:db8:8000::1") && in(&s, "2001:db8:ffff::"));
    CHECK(!in(&s, "2001:db8:7fff::"));
    CHECK(!in(&s, "10.0.0.1") && !in(&s, "::ffff:128.0.0.1"));
    cidr_set_free(&s);

    /* ::/0 is all of IPv6 but not the IPv4 clients of a dual-stack socket */
    add(&s, "::/0");
    CHECK(in(&s, "::") && in(&s, "::1") && in(&s, "ffff::1") && in(&s, "::ffff:0:1:2"));
    CHECK(!in(&s, "::ffff:1.2.3.4") && !in(&s, "1.2.3.4"));
    cidr_set_free(&s);

    /* a mapped prefix is an IPv4 prefix */
    add(&s, "::ffff:192.168.0.0/112");
    CHECK(in(&s, "192.168.3.4") && in(&s, "::ffff:192.168.255.255"));
    CHECK(!in(&s, "192.169.0.0"));
    cidr_set_free(&s);

    struct sockaddr_any u;
    memset(&u, 0, sizeof(u));
    u.u.sa.sa_family = AF_UNIX;
    add(&s, "0.0.0.0/0");
    add(&s, "::/0");
    CHECK(!cidr_set_contains(&s, &u));
    cidr_set_free(&s);
}

TEST(cidr_overlaps)
{
    struct cidr_set s = {0};
    add(&s, "10.1.2.0/24");
    add(&s, "10.1.3.0/24");
    uint32_t nodes = s.v4.nnodes;
    add(&s, "10.1.2.128/25"); /* inside 10.1.2.0/24: no new node */
    CHECK_EQ_U64(s.v4.nnodes, nodes);
    add(&s, "10.0.0.0/8"); /* covers both /24s */
    CHECK(in(&s, "10.1.2.3") && in(&s, "10.200.0.1") && !in(&s, "11.0.0.0"));
    add(&s, "10.1.4.0/24"); /* already covered: no new node */
    CHECK_EQ_U64(s.v4.nnodes, nodes);
    CHECK(in(&s, "10.1.4.1"));
    cidr_set_free(&s);
}

TEST(cidr_acl)
{
    struct acl acl = {0};
    struct sockaddr_any a = sa("10.1.2.3"), b = sa("10.9.9.9"), c = sa("192.0.2.1");
    struct sockaddr_any d = sa("2001:db8::1");
    CHECK(acl_permits(&acl, &a) && acl_permits(&acl, &d)); /* empty acl permits all */

    add(&acl.deny, "10.1.0.0/16");
    CHECK(!acl_permits(&acl, &a) && acl_permits(&acl, &b) && acl_permits(&acl, &c));

    acl.has_allow = true; /* an empty allow list permits nothing */
    CHECK(!acl_permits(&acl, &b) && !acl_permits(&acl, &d));

    add(&acl.allow, "10.0.0.0/8");
    add(&acl.allow, "2001:db8::/32");
    CHECK(!acl_permits(&acl, &a)); /* deny wins over allow */
    CHECK(acl_permits(&acl, &b) && acl_permits(&acl, &d) && !acl_permits(&acl, &c));
    struct sockaddr_any m = sa("::ffff:10.1.0.1"), n = sa("::ffff:10.2.0.1");
    CHECK(!acl_permits(&acl, &m) && acl_permits(&acl, &n));
    acl_free(&acl);
    CHECK(acl_permits(&acl, &a));
}

/* ---- random prefixes against a linear-scan model ---- */

#define NPREFIX 10000
#define NADDR 100000

struct model {
    uint64_t net[2], mask[2]; /* IPv4 in net[0] low 32 bits; IPv6 high, low halves */
};

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static struct model model_of(const struct cidr *c)
{
    struct model m = {{0, 0}, {0, 0}};
    if (c->family == AF_INET) {
        m.mask[0] = c->prefix ? (0xffffffffull << (32 - c->prefix)) & 0xffffffffull : 0;
        m.net[0] = (uint64_t)c->addr[0] << 24 | c->addr[1] << 16 | c->addr[2] << 8 | c->addr[3];
        return m;
    }
    for (int h = 0; h < 2; h++) {
        int bits = c->prefix - 64 * h;
        m.mask[h] = bits <= 0 ? 0 : bits >= 64 ? ~0ull : ~0ull << (64 - bits);
        m.net[h] = be64(c->addr + 8 * h);
    }
    return m;
}

static bool model_contains(const struct model *m, size_t n, int family, const uint8_t *ip)
{
    if (family == AF_INET) {
        uint64_t a = (uint64_t)ip[0] << 24 | ip[1] << 16 | ip[2] << 8 | ip[3];
        for (size_t i = 0; i < n; i++)
            if ((a & m[i].mask[0]) == m[i].net[0])
                return true;
        return false;
    }
    uint64_t hi = be64(ip), lo = be64(ip + 8);
    for (size_t i = 0; i < n; i++)
        if ((hi & m[i].mask[0]) == m[i].net[0] && (lo & m[i].mask[1]) == m[i].net[1])
            return true;
    return false;
}

/* A random prefix: mostly long enough that a random address hits the set about 1 time in 5
 * (IPv4), with a few short ones so that covering prefixes arrive after covered ones. */
static struct cidr random_prefix(int family, uint64_t *rng)
{
    struct cidr c;
    unsigned bits = family == AF_INET ? 32 : 128;
    memset(&c, 0, sizeof(c));
    c.family = (uint8_t)family;
    for (unsigned i = 0; i < bits / 8; i++)
        c.addr[i] = (uint8_t)rng_next(rng);
    if (rng_next(rng) % 1000 == 0)
        c.prefix = (uint8_t)(1 + rng_next(rng) % 11);
    else
        c.prefix = (uint8_t)(12 + rng_next(rng) % (bits - 11));
    for (unsigned i = c.prefix; i < bits; i++)
        c.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    return c;
}

/* Uniform (40%), inside a set prefix (30%), or inside it but for its last network bit. */
static void random_addr(int family, const struct cidr *set, uint64_t *rng, uint8_t *ip)
{
    unsigned bytes = family == AF_INET ? 4 : 16, kind = (unsigned)(rng_next(rng) % 10);
    for (unsigned i = 0; i < bytes; i++)
        ip[i] = (uint8_t)rng_next(rng);
    if (kind < 4)
        return;
    const struct cidr *c = &set[rng_next(rng) % NPREFIX];
    for (unsigned i = 0; i < c->prefix; i++) {
        uint8_t bit = (uint8_t)(0x80u >> (i % 8));
        ip[i / 8] = (uint8_t)((ip[i / 8] & ~bit) | (c->addr[i / 8] & bit));
    }
    if (kind >= 7 && c->prefix > 0)
        ip[(c->prefix - 1) / 8] ^= (uint8_t)(0x80u >> ((c->prefix - 1) % 8));
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void random_vs_model(int family, uint64_t seed)
{
    uint64_t rng = seed;
    struct cidr *pfx = malloc(NPREFIX * sizeof(*pfx));
    struct model *m = malloc(NPREFIX * sizeof(*m));
    uint8_t(*ips)[16] = malloc(NADDR * sizeof(*ips));
    bool *want = malloc(NADDR * sizeof(*want));
    struct cidr_set s = {0};
    for (size_t i = 0; i < NPREFIX; i++) {
        pfx[i] = random_prefix(family, &rng);
        m[i] = model_of(&pfx[i]);
        CHECK(cidr_set_add(&s, &pfx[i]) == 0);
    }
    for (size_t i = 0; i < NADDR; i++)
        random_addr(family, pfx, &rng, ips[i]);

    double t0 = now_ns();
    for (size_t i = 0; i < NADDR; i++)
        want[i] = model_contains(m, NPREFIX, family, ips[i]);
    double t1 = now_ns();
    size_t hits = 0, wrong = 0;
    for (size_t i = 0; i < NADDR; i++) {
        struct sockaddr_any a = sa_bytes(family, ips[i]);
        bool got = cidr_set_contains(&s, &a);
        hits += got;
        if (got != want[i] && wrong++ < 5)
            test_fail(__FILE__, __LINE__, "address #%zu: trie says %d, linear scan %d", i, got,
                      want[i]);
        if (family == AF_INET && (i & 1)) { /* the same address as a mapped IPv6 client */
            uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            memcpy(mapped + 12, ips[i], 4);
            struct sockaddr_any b = sa_bytes(AF_INET6, mapped);
            if (cidr_set_contains(&s, &b) != want[i] && wrong++ < 5)
                test_fail(__FILE__, __LINE__, "mapped address #%zu disagrees", i);
        }
    }
    CHECK_EQ_U64(wrong, 0);
    CHECK(hits > NADDR / 5 && hits < NADDR * 4 / 5); /* both answers well exercised */

    /* timing: lookups only, the sockaddrs built beforehand */
    struct sockaddr_any *sas = malloc(NADDR * sizeof(*sas));
    for (size_t i = 0; i < NADDR; i++)
        sas[i] = sa_bytes(family, ips[i]);
    volatile size_t sink = 0;
    double t2 = now_ns();
    for (int rep = 0; rep < 10; rep++)
        for (size_t i = 0; i < NADDR; i++)
            sink += cidr_set_contains(&s, &sas[i]);
    double t3 = now_ns();
    const struct cidr_trie *t = family == AF_INET ? &s.v4 : &s.v6;
    printf("    %s, %d prefixes (%u trie nodes, %zu KiB): trie %.1f ns/lookup, linear scan "
           "%.0f ns/lookup, %zu/%d hits\n",
           family == AF_INET ? "IPv4" : "IPv6", NPREFIX, t->nnodes,
           (size_t)t->nnodes * sizeof(struct cidr_node) / 1024, (t3 - t2) / (10.0 * NADDR),
           (t1 - t0) / NADDR, hits, NADDR);
    (void)sink;
    cidr_set_free(&s);
    free(sas);
    free(want);
    free(ips);
    free(m);
    free(pfx);
}

TEST(cidr_random_v4_vs_linear)
{
    random_vs_model(AF_INET, 0x9e3779b97f4a7c15ull);
}

TEST(cidr_random_v6_vs_linear)
{
    random_vs_model(AF_INET6, 0x243f6a8885a308d3ull);
}
