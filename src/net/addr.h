/* addr.h — socket addresses as the configuration writes them.
 * Accepted forms: "127.0.0.1:80", "[::1]:80", "*:80" / ":80" (all IPv4), "[::]:80".
 * Host names are not resolved here: the configuration must be loadable without DNS.
 */
#ifndef STRATA_NET_ADDR_H
#define STRATA_NET_ADDR_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

struct sockaddr_any {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } u;
    socklen_t len;
};

/* Returns 0 and fills *out, or -1 with a short reason in *why (static string). */
int addr_parse(const char *text, struct sockaddr_any *out, const char **why);

/* Writes "ip:port" or "[ip6]:port" into buf (at least ADDR_STRLEN bytes). */
#define ADDR_STRLEN 64
const char *addr_format(const struct sockaddr_any *a, char *buf, size_t len);

/* Dotted-quad text of ip into out (at least 16 bytes, NUL-terminated); returns its length.
 * Hand-written: as inet_ntop, at a fraction of its cost. */
size_t addr_ipv4_text(const struct in_addr *ip, char *out);

/* A 64-bit hash of the IP part only (port ignored), for source hashing. */
uint64_t addr_hash_ip(const struct sockaddr_any *a);

int addr_equal(const struct sockaddr_any *a, const struct sockaddr_any *b);

/* True for 127.0.0.0/8, [::1] and [::ffff:127.x.y.z] (any port). */
int addr_is_loopback(const struct sockaddr_any *a);

/* True for 0.0.0.0 and [::] (any port). */
int addr_is_wildcard(const struct sockaddr_any *a);

#endif
