/* util.c — field-name rules, template checks, random ids and client address text for the
 * built-in filters and their configuration (see util.h). */
#include "http/filters/util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "core/bug.h"
#include "core/hash.h"

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

bool http_token_valid(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!tchar((unsigned char)s[i]))
            return false;
    return true;
}

bool http_field_reserved(const char *name, size_t len)
{
    static const char *const reserved[] = {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive",
        "te",   "trailer",        "upgrade",           "expect",     "proxy-connection",
    };
    for (size_t i = 0; i < ARRAY_SIZE(reserved); i++)
        if (strlen(reserved[i]) == len && strncasecmp(reserved[i], name, len) == 0)
            return true;
    return false;
}

const char *const tmpl_var_names[TV_COUNT] = {
    [TV_SCHEME] = "scheme",
    [TV_HOST] = "host",
    [TV_AUTHORITY] = "authority",
    [TV_PATH] = "path",
    [TV_QUERY] = "query",
    [TV_REQUEST_URI] = "request_uri",
    [TV_CLIENT_IP] = "client_ip",
    [TV_REQUEST_ID] = "request_id",
    [TV_METHOD] = "method",
    [TV_TLS_VERSION] = "tls_version",
    [TV_TLS_CIPHER] = "tls_cipher",
    [TV_TLS_SNI] = "tls_sni",
    [TV_TLS_CLIENT_SUBJECT] = "tls_client_subject",
    [TV_TLS_CLIENT_FINGERPRINT] = "tls_client_fingerprint",
};

int tmpl_var_lookup(const char *s, size_t len)
{
    for (int i = 0; i < TV_COUNT; i++)
        if (strlen(tmpl_var_names[i]) == len && memcmp(tmpl_var_names[i], s, len) == 0)
            return i;
    return -1;
}

/* Length of a "{name}" at s (name: lowercase letters and '_'), or 0 when s does not
 * start one. */
static size_t var_ref_len(const char *s, size_t len)
{
    size_t i = 1;
    while (i < len && ((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
        i++;
    return i > 1 && i < len && s[i] == '}' ? i + 1 : 0;
}

int tmpl_check(const char *t, size_t len, char *why, size_t whylen)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(why, whylen, "control character at offset %zu", i);
            return -1;
        }
        if (c != '{')
            continue;
        if (i + 1 < len && t[i + 1] == '{') {
            i++;
            continue;
        }
        size_t n = var_ref_len(t + i, len - i);
        if (n && tmpl_var_lookup(t + i + 1, n - 2) < 0) {
            snprintf(why, whylen, "unknown variable %.*s (write {{ for a literal {)", (int)n,
                     t + i);
            return -1;
        }
    }
    return 0;
}

static __thread uint64_t rng_state;

uint64_t filter_rand64(void)
{
    if (unlikely(rng_state == 0)) {
        uint64_t seed = 0;
        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = hash64(&ts, sizeof(ts), (uint64_t)(uintptr_t)&rng_state);
        }
        rng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
    }
    uint64_t v;
    do
        v = rng_next(&rng_state);
    while (v == 0);
    return v;
}

/* "000102...feff": two hex digits a step (a request id and a traceparent make five 64-bit
 * values into hex on every request). */
#define HEX_ROW(h)                                                                                 \
    h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char hex_pairs[] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4")
    HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b")
        HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");
_Static_assert(sizeof(hex_pairs) == 513, "256 pairs");

void hex_put(char *out, uint64_t v, unsigned nhex)
{
    unsigned i = nhex;
    if (i & 1) {
        out[--i] = hex_pairs[2 * (v & 15) + 1];
        v >>= 4;
    }
    while (i) {
        i -= 2;
        memcpy(out + i, hex_pairs + 2 * (v & 0xff), 2);
        v >>= 8;
    }
}

static bool v4_mapped(const struct sockaddr_in6 *s)
{
    return IN6_IS_ADDR_V4MAPPED(&s->sin6_addr);
}

bool client_ip_is_v6(const struct sockaddr_any *a)
{
    return a->u.sa.sa_family == AF_INET6 && !v4_mapped(&a->u.in6);
}

size_t client_ip_text(const struct sockaddr_any *a, char *buf, size_t len)
{
    const char *ok = NULL;
    if (a->u.sa.sa_family == AF_INET && len >= INET_ADDRSTRLEN) {
        return addr_ipv4_text(&a->u.in.sin_addr, buf);
    } else if (a->u.sa.sa_family == AF_INET6 && v4_mapped(&a->u.in6) && len >= INET_ADDRSTRLEN) {
        struct in_addr v4;
        memcpy(&v4, &a->u.in6.sin6_addr.s6_addr[12], sizeof(v4));
        return addr_ipv4_text(&v4, buf);
    } else if (a->u.sa.sa_family == AF_INET6) {
        ok = inet_ntop(AF_INET6, &a->u.in6.sin6_addr, buf, (socklen_t)len);
    }
    if (!ok)
        snprintf(buf, len, "unknown");
    return strlen(buf);
}
