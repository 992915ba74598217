/* addr.c — see addr.h. */
#include "addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"
#include "core/hash.h"

static int parse_port(const char *p, uint16_t *port)
{
    if (!*p)
        return -1;
    unsigned long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int addr_parse(const char *text, struct sockaddr_any *out, const char **why)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon;
    uint16_t port;
    memset(out, 0, sizeof(*out));

    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':') {
            *why = "expected [IPv6]:port";
            return -1;
        }
        size_t n = (size_t)(end - text - 1);
        if (n >= sizeof(host)) {
            *why = "IPv6 address too long";
            return -1;
        }
        memcpy(host, text + 1, n);
        host[n] = '\0';
        if (parse_port(end + 2, &port) < 0) {
            *why = "port must be 1-65535";
            return -1;
        }
        if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) != 1) {
            *why = "not a valid IPv6 address";
            return -1;
        }
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons(port);
        out->len = sizeof(struct sockaddr_in6);
        return 0;
    }

    colon = strrchr(text, ':');
    if (!colon) {
        *why = "expected host:port";
        return -1;
    }
    if (strchr(text, ':') != colon) {
        *why = "IPv6 addresses must be written [addr]:port";
        return -1;
    }
    size_t n = (size_t)(colon - text);
    if (n >= sizeof(host)) {
        *why = "address too long";
        return -1;
    }
    memcpy(host, text, n);
    host[n] = '\0';
    if (parse_port(colon + 1, &port) < 0) {
        *why = "port must be 1-65535";
        return -1;
    }
    out->u.in.sin_family = AF_INET;
    out->u.in.sin_port = htons(port);
    out->len = sizeof(struct sockaddr_in);
    if (n == 0 || strcmp(host, "*") == 0) {
        out->u.in.sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        out->u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return 0;
    }
    if (inet_pton(AF_INET, host, &out->u.in.sin_addr) != 1) {
        *why = "not a valid IPv4 address (host names are not resolved)";
        return -1;
    }
    return 0;
}

size_t addr_ipv4_text(const struct in_addr *ip, char *out)
{
    const uint8_t *b = (const uint8_t *)&ip->s_addr;
    size_t o = 0;
    for (int i = 0; i < 4; i++) {
        o += fmt_u64(out + o, b[i]);
        out[o++] = '.';
    }
    out[--o] = 0;
    return o;
}

const char *addr_format(const struct sockaddr_any *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (len == 0)
        return buf;
    if (a->u.sa.sa_family == AF_INET) { /* hand-written: it is on every log line */
        char t[24];
        size_t o = addr_ipv4_text(&a->u.in.sin_addr, t);
        t[o++] = ':';
        o += fmt_u64(t + o, ntohs(a->u.in.sin_port));
        if (o > len - 1)
            o = len - 1;
        memcpy(buf, t, o);
        buf[o] = 0;
    } else if (a->u.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(a->u.in6.sin6_port));
    } else {
        snprintf(buf, len, "unknown");
    }
    return buf;
}

uint64_t addr_hash_ip(const struct sockaddr_any *a)
{
    if (a->u.sa.sa_family == AF_INET6)
        return hash64(&a->u.in6.sin6_addr, sizeof(a->u.in6.sin6_addr), 0);
    return hash64(&a->u.in.sin_addr, sizeof(a->u.in.sin_addr), 0);
}

int addr_is_wildcard(const struct sockaddr_any *a)
{
    if (a->u.sa.sa_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&a->u.in6.sin6_addr);
    return a->u.sa.sa_family == AF_INET && a->u.in.sin_addr.s_addr == htonl(INADDR_ANY);
}

int addr_is_loopback(const struct sockaddr_any *a)
{
    if (a->u.sa.sa_family == AF_INET6) {
        const struct in6_addr *ip = &a->u.in6.sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(ip) || (IN6_IS_ADDR_V4MAPPED(ip) && ip->s6_addr[12] == 127);
    }
    return a->u.sa.sa_family == AF_INET && (ntohl(a->u.in.sin_addr.s_addr) >> 24) == 127;
}

int addr_equal(const struct sockaddr_any *a, const struct sockaddr_any *b)
{
    return a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
}
