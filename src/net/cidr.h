/* cidr.h — address prefixes ("10.0.0.0/8", "2001:db8::/32"), prefix sets and allow/deny ACLs.
 * A set is built while the configuration is loaded (malloc, single thread), then only read:
 * any number of workers may call cidr_set_contains()/acl_permits() at once without locks.
 * Lookups allocate nothing and touch at most one 64-byte trie node per 4 address bits
 * (8 for IPv4, 32 for IPv6).
 */
#ifndef STRATA_NET_CIDR_H
#define STRATA_NET_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"
#include "stats/geo-t.h"

/* One prefix. Invariants: family is AF_INET or AF_INET6; prefix <= 32 or 128; addr holds
 * the network in network byte order (IPv4 in addr[0..3]) and every bit past `prefix` is 0.
 * IPv4-mapped IPv6 prefixes (::ffff:a.b.c.d/96+n) are stored as the IPv4 prefix a.b.c.d/n. */
struct cidr {
    uint8_t family;
    uint8_t prefix;
    uint8_t addr[16];
};

/* Longest text cidr_format() writes, NUL included. */
#define CIDR_STRLEN 64

/* Parses "a.b.c.d", "a.b.c.d/n", "ipv6" or "ipv6/n" (no prefix = a single host, /32 or
 * /128). Host bits set past the prefix are an error, not silently masked: "10.1.2.3/8" is
 * refused with "host bits set: did you mean 10.0.0.0/8?". Netmasks ("/255.0.0.0"), zone
 * ids ("%eth0"), host names and surrounding spaces are refused.
 * Returns 0 and fills *out, or -1 with a reason in *why: a static string, or a thread-local
 * buffer valid until this thread's next cidr_parse() call. */
int cidr_parse(const char *text, struct cidr *out, const char **why);

/* Writes "a.b.c.d/n" or "ipv6/n" into buf (at least CIDR_STRLEN bytes); returns buf. */
const char *cidr_format(const struct cidr *c, char *buf, size_t len);

/* A multibit trie per family, 4 bits a level (16 children a node: one cache line).
 * A child is an index into `nodes`, 0 for "no prefix below" (the root, node 0, is never
 * a child), or CIDR_TRIE_FULL for "every address below is in the set". nodes == NULL
 * until the first prefix of that family is added. */
#define CIDR_TRIE_FULL UINT32_MAX

struct cidr_node {
    uint32_t child[16];
} __attribute__((aligned(64)));

struct cidr_trie {
    struct cidr_node *nodes;
    uint32_t nnodes, cap;
};

/* A zero-initialized struct cidr_set is a valid empty set. */
struct cidr_set {
    struct cidr_trie v4, v6;
    uint32_t count; /* prefixes added (overlapping ones included) */
};

/* Adds a prefix as cidr_parse() makes them (config time only; host bits are ignored).
 * Overlaps are fine; a prefix covering earlier, longer ones makes their nodes unreachable
 * (kept until cidr_set_free). Returns 0, or -1 when out of memory (the set is unchanged
 * and still valid). */
int cidr_set_add(struct cidr_set *s, const struct cidr *c);

/* True if the IP of `a` (port ignored) is inside a prefix of the set. An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d, as a dual-stack socket reports IPv4 clients) is looked up as
 * the IPv4 address a.b.c.d; consequently an IPv6 prefix such as ::/0 never matches an IPv4
 * client: write 0.0.0.0/0 for that. Families other than IPv4/IPv6 are never members. */
bool cidr_set_contains(const struct cidr_set *s, const struct sockaddr_any *a);

/* Frees the tries; the set is empty (and reusable) afterwards. */
void cidr_set_free(struct cidr_set *s);

/* An access list for client addresses. Deny wins: an address in `deny` is refused even if
 * it is also in `allow`. When has_allow is set (the configuration has an allow list, even
 * an empty one), only addresses in `allow` are permitted; otherwise every address not
 * denied is. A zero-initialized acl permits everything. Non-IP clients (AF_UNIX) are in
 * no set: they pass unless there is an allow list. */
struct acl {
    struct cidr_set allow, deny;
    bool has_allow;
    struct geo_acl countries; /* by the client's country (stats/geo.h), checked at admission */
};

bool acl_permits(const struct acl *acl, const struct sockaddr_any *a);
void acl_free(struct acl *acl);

#endif
