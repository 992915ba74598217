/* cidr.c — prefix parsing, 4-bit-stride tries and ACLs; see cidr.h.
 * A prefix of length L fixes the first L bits: the trie walks (L-1)/4 whole nibbles from
 * the root, then marks FULL the 2^(4-r) children of the last node that share the remaining
 * r bits (prefix expansion). A lookup follows one child per nibble until FULL or empty.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static unsigned family_bits(uint8_t family)
{
    return family == AF_INET ? 32 : 128;
}

/* Nibble i (0 = most significant) of a big-endian address. */
static inline unsigned nibble(const uint8_t *a, unsigned i)
{
    return (i & 1) ? a[i >> 1] & 0xfu : a[i >> 1] >> 4;
}

/* The digits after '/': 0 and *out, or -1 with a reason in *why. */
static int parse_prefix(const char *p, unsigned max, unsigned *out, const char **why)
{
    unsigned v = 0;
    size_t n = 0;
    if (strpbrk(p, ".:")) {
        *why = "prefix must be a length such as /24, not a netmask";
        return -1;
    }
    for (; p[n]; n++) {
        if (p[n] < '0' || p[n] > '9' || n >= 3)
            break;
        v = v * 10 + (unsigned)(p[n] - '0');
    }
    if (n == 0 || p[n] || v > max) {
        *why = max == 32 ? "prefix length must be 0-32 for IPv4"
                         : "prefix length must be 0-128 for IPv6";
        return -1;
    }
    *out = v;
    return 0;
}

/* Zeroes the bits of addr past `prefix`; returns true if any was set. */
static bool mask_host_bits(uint8_t *addr, unsigned prefix, unsigned bits)
{
    bool changed = false;
    for (unsigned i = prefix; i < bits; i += 8 - (i & 7)) {
        uint8_t keep = (uint8_t)(0xff00u >> (i & 7));
        if (addr[i >> 3] & ~keep)
            changed = true;
        addr[i >> 3] &= keep;
    }
    return changed;
}

/* ::ffff:a.b.c.d/96+n becomes a.b.c.d/n, so that it matches IPv4 lookups. */
static void normalize_mapped(struct cidr *c)
{
    if (c->family != AF_INET6 || c->prefix < 96 || memcmp(c->addr, v4_mapped_prefix, 12) != 0)
        return;
    c->family = AF_INET;
    c->prefix = (uint8_t)(c->prefix - 96);
    memmove(c->addr, c->addr + 12, 4);
    memset(c->addr + 4, 0, 12);
}

int cidr_parse(const char *text, struct cidr *out, const char **why)
{
    static __thread char why_buf[CIDR_STRLEN + 48];
    char host[INET6_ADDRSTRLEN];
    memset(out, 0, sizeof(*out));
    if (!text || !*text) {
        *why = "empty address";
        return -1;
    }
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof(host)) {
        *why = n == 0 ? "missing address before '/'" : "address too long";
        return -1;
    }
    memcpy(host, text, n);
    host[n] = '\0';
    out->family = strchr(host, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(out->family, host, out->addr) != 1) {
        *why = out->family == AF_INET6 ? "not a valid IPv6 address"
                                       : "not a valid IPv4 address (host names are not resolved)";
        return -1;
    }
    unsigned bits = family_bits(out->family), prefix = bits;
    if (slash && parse_prefix(slash + 1, bits, &prefix, why) < 0)
        return -1;
    out->prefix = (uint8_t)prefix;
    if (mask_host_bits(out->addr, prefix, bits)) {
        char net[CIDR_STRLEN];
        snprintf(why_buf, sizeof(why_buf), "host bits set: did you mean %s?",
                 cidr_format(out, net, sizeof(net)));
        *why = why_buf;
        return -1;
    }
    normalize_mapped(out);
    return 0;
}

const char *cidr_format(const struct cidr *c, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (!inet_ntop(c->family, c->addr, ip, sizeof(ip)))
        snprintf(ip, sizeof(ip), "?");
    snprintf(buf, len, "%s/%u", ip, c->prefix);
    return buf;
}

/* Appends a zeroed node; returns its index, or 0 when out of memory. The array is
 * reallocated (64-byte aligned), so callers re-read t->nodes afterwards. */
static uint32_t trie_new_node(struct cidr_trie *t)
{
    if (t->nnodes == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 16;
        void *p = NULL;
        if (cap < t->cap || posix_memalign(&p, 64, (size_t)cap * sizeof(*t->nodes)) != 0)
            return 0;
        if (t->nnodes)
            memcpy(p, t->nodes, (size_t)t->nnodes * sizeof(*t->nodes));
        free(t->nodes);
        t->nodes = p;
        t->cap = cap;
    }
    memset(&t->nodes[t->nnodes], 0, sizeof(*t->nodes));
    return t->nnodes++;
}

static int trie_insert(struct cidr_trie *t, const uint8_t *addr, unsigned prefix)
{
    if (!t->nodes) {
        trie_new_node(t); /* the root, index 0 */
        if (!t->nodes)
            return -1;
    }
    /* walk the nibbles fully inside the prefix but the last; `rest` bits (0-4) remain */
    unsigned depth = prefix ? (prefix - 1) / 4 : 0;
    unsigned rest = prefix - 4 * depth;
    uint32_t n = 0;
    for (unsigned i = 0; i < depth; i++) {
        unsigned nib = nibble(addr, i);
        uint32_t c = t->nodes[n].child[nib];
        if (c == CIDR_TRIE_FULL)
            return 0; /* already covered by a shorter prefix */
        if (c == 0) {
            c = trie_new_node(t);
            if (c == 0)
                return -1; /* nodes added so far are empty: the set is unchanged */
            t->nodes[n].child[nib] = c;
        }
        n = c;
    }
    unsigned span = 1u << (4 - rest);
    unsigned first = nibble(addr, depth) & ~(span - 1);
    for (unsigned j = first; j < first + span; j++)
        t->nodes[n].child[j] = CIDR_TRIE_FULL;
    return 0;
}

int cidr_set_add(struct cidr_set *s, const struct cidr *c)
{
    BUG_ON(c->family != AF_INET && c->family != AF_INET6);
    BUG_ON(c->prefix > family_bits(c->family));
    struct cidr_trie *t = c->family == AF_INET ? &s->v4 : &s->v6;
    if (trie_insert(t, c->addr, c->prefix) < 0)
        return -1;
    s->count++;
    return 0;
}

static bool trie_lookup(const struct cidr_trie *t, const uint8_t *addr, unsigned nnibbles)
{
    const struct cidr_node *nodes = t->nodes;
    if (!nodes)
        return false;
    uint32_t n = 0;
    for (unsigned i = 0; i < nnibbles; i++) {
        uint32_t c = nodes[n].child[nibble(addr, i)];
        if (c == CIDR_TRIE_FULL)
            return true;
        if (c == 0)
            return false;
        n = c;
    }
    return false; /* not reached: nodes exist only above the last nibble */
}

bool cidr_set_contains(const struct cidr_set *s, const struct sockaddr_any *a)
{
    if (a->u.sa.sa_family == AF_INET)
        return trie_lookup(&s->v4, (const uint8_t *)&a->u.in.sin_addr, 8);
    if (a->u.sa.sa_family != AF_INET6)
        return false;
    const uint8_t *ip6 = a->u.in6.sin6_addr.s6_addr;
    if (memcmp(ip6, v4_mapped_prefix, 12) == 0)
        return trie_lookup(&s->v4, ip6 + 12, 8);
    return trie_lookup(&s->v6, ip6, 32);
}

void cidr_set_free(struct cidr_set *s)
{
    free(s->v4.nodes);
    free(s->v6.nodes);
    memset(s, 0, sizeof(*s));
}

bool acl_permits(const struct acl *acl, const struct sockaddr_any *a)
{
    if (cidr_set_contains(&acl->deny, a))
        return false;
    return !acl->has_allow || cidr_set_contains(&acl->allow, a);
}

void acl_free(struct acl *acl)
{
    cidr_set_free(&acl->allow);
    cidr_set_free(&acl->deny);
    acl->has_allow = false;
}
