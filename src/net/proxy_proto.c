/* proxy_proto.c — PROXY protocol v1/v2 parser and builders (see proxy_proto.h).
 * The parser checks what it can on every call, so a partial header fails on its first
 * wrong byte, and decodes addresses only once the whole header is in: the v1 line up to
 * its CRLF, the v2 block up to 16 + its length field. Every read is bounded by len.
 */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ---- CRC32c: reflected Castagnoli polynomial 0x82F63B78, 4 bits at a time ---- */

static const uint32_t crc32c_nibble[16] = {
    0x00000000, 0x105ec76f, 0x20bd8ede, 0x30e349b1, 0x417b1dbc, 0x5125dad3, 0x61c69362, 0x7198540d,
    0x82f63b78, 0x92a8fc17, 0xa24bb5a6, 0xb21572c9, 0xc38d26c4, 0xd3d3e1ab, 0xe330a81a, 0xf36e6f75,
};

static uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
        crc = (crc >> 4) ^ crc32c_nibble[crc & 15];
    }
    return crc;
}

uint32_t pp_crc32c(const void *buf, size_t len)
{
    return ~crc32c_update(~0u, buf, len);
}

/* ---- shared helpers ---- */

static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void set_in(struct sockaddr_any *a, const void *ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->u.in.sin_family = AF_INET;
    memcpy(&a->u.in.sin_addr, ip, 4);
    a->u.in.sin_port = htons(port);
    a->len = sizeof(struct sockaddr_in);
}

static void set_in6(struct sockaddr_any *a, const void *ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->u.in6.sin6_family = AF_INET6;
    memcpy(&a->u.in6.sin6_addr, ip, 16);
    a->u.in6.sin6_port = htons(port);
    a->len = sizeof(struct sockaddr_in6);
}

static enum pp_result fail(const char **why, const char *reason)
{
    *why = reason;
    return PP_ERROR;
}

/* ---- v1: "PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\r\n" or "PROXY UNKNOWN ...\r\n" ---- */

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN 6
#define V1_TCP_FIELDS_AT 11 /* after "PROXY TCPx " */

struct span {
    const char *p;
    size_t n;
};

/* Finds the CRLF within the first PP_V1_MAX_LINE bytes. Returns 1 with *text = the length
 * before it, 0 if none yet (*text = bytes seen before any CR), -1 on a lone CR or LF. */
static int v1_find_crlf(const uint8_t *buf, size_t len, size_t *text)
{
    size_t n = len < PP_V1_MAX_LINE ? len : PP_V1_MAX_LINE;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            return -1;
        if (buf[i] != '\r')
            continue;
        *text = i;
        if (i + 1 == n)
            return 0;
        return buf[i + 1] == '\n' ? 1 : -1;
    }
    *text = n;
    return 0;
}

static bool v1_tcp_char(char c, bool v6)
{
    if ((c >= '0' && c <= '9') || c == '.' || c == ' ')
        return true;
    return v6 && (c == ':' || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
}

/* Checks the first n bytes of the line text (CRLF excluded) against what every valid line
 * starts with; complete: the text ends there. The full decoding happens in v1_addresses(). */
static enum pp_result v1_check_text(const char *s, size_t n, bool complete, const char **why)
{
    static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
    size_t k = n < V1_PREFIX_LEN ? n : V1_PREFIX_LEN, i;
    if (memcmp(s, V1_PREFIX, k) != 0 || (complete && n < V1_PREFIX_LEN))
        return fail(why, "not a PROXY protocol header");
    if (n < V1_PREFIX_LEN)
        return PP_OK;
    const char *p = s + V1_PREFIX_LEN;
    size_t m = n - V1_PREFIX_LEN;
    for (i = 0; i < 3; i++) {
        size_t plen = strlen(protos[i]);
        if (memcmp(p, protos[i], m < plen ? m : plen) == 0 && (!complete || m >= plen))
            break;
    }
    if (i == 3 || (i == 2 && m > 7 && p[7] != ' ')) /* "UNKNOWN" then CRLF or a space */
        return fail(why, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
    for (size_t j = V1_TCP_FIELDS_AT; i < 2 && j < n; j++)
        if (!v1_tcp_char(s[j], i == 1))
            return fail(why, "invalid character in v1 header");
    return PP_OK;
}

/* Splits s[0..n) at single spaces into exactly `want` non-empty fields. */
static int v1_split(const char *s, size_t n, struct span *f, int want)
{
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ')
            continue;
        if (i == start || k == want)
            return -1;
        f[k].p = s + start;
        f[k].n = i - start;
        k++;
        start = i + 1;
    }
    return k == want ? 0 : -1;
}

/* A decimal 0..max without sign or leading zero, at most `digits` digits. */
static int v1_number(const char *s, size_t n, size_t digits, unsigned max, unsigned *out)
{
    unsigned v = 0;
    if (n == 0 || n > digits || (s[0] == '0' && n > 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* Exactly four dot-separated decimals 0..255 without leading zeros. */
static int v1_ipv4(struct span f, uint8_t ip[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        unsigned v;
        while (i < f.n && f.p[i] != '.')
            i++;
        if (v1_number(f.p + start, i - start, 3, 255, &v) < 0)
            return -1;
        ip[part] = (uint8_t)v;
        if (part < 3 && i++ == f.n)
            return -1;
    }
    return i == f.n ? 0 : -1;
}

static int v1_ipv6(struct span f, uint8_t ip[16])
{
    char text[INET6_ADDRSTRLEN];
    if (f.n < 2 || f.n >= sizeof(text))
        return -1;
    memcpy(text, f.p, f.n);
    text[f.n] = '\0';
    return inet_pton(AF_INET6, text, ip) == 1 ? 0 : -1;
}

/* Decodes "<src> <dst> <sport> <dport>" of a TCP4 (v6 false) or TCP6 line. */
static enum pp_result v1_addresses(const char *s, size_t n, bool v6, struct pp_info *info,
                                   const char **why)
{
    struct span f[4];
    uint8_t src[16], dst[16];
    unsigned sport, dport;
    if (v1_split(s, n, f, 4) < 0)
        return fail(why, "v1 header needs 4 fields separated by single spaces");
    if (v6 ? v1_ipv6(f[0], src) < 0 : v1_ipv4(f[0], src) < 0)
        return fail(why, "invalid v1 source address");
    if (v6 ? v1_ipv6(f[1], dst) < 0 : v1_ipv4(f[1], dst) < 0)
        return fail(why, "invalid v1 destination address");
    if (v1_number(f[2].p, f[2].n, 5, 65535, &sport) < 0)
        return fail(why, "invalid v1 source port");
    if (v1_number(f[3].p, f[3].n, 5, 65535, &dport) < 0)
        return fail(why, "invalid v1 destination port");
    if (v6) {
        set_in6(&info->src, src, (uint16_t)sport);
        set_in6(&info->dst, dst, (uint16_t)dport);
    } else {
        set_in(&info->src, src, (uint16_t)sport);
        set_in(&info->dst, dst, (uint16_t)dport);
    }
    info->sock_type = SOCK_STREAM;
    return PP_OK;
}

static enum pp_result v1_parse(const uint8_t *buf, size_t len, struct pp_info *info,
                               size_t *consumed, const char **why)
{
    const char *s = (const char *)buf;
    size_t text;
    int found = v1_find_crlf(buf, len, &text);
    if (found < 0)
        return fail(why, "v1 header has a CR or LF outside its final CRLF");
    if (v1_check_text(s, text, found == 1, why) != PP_OK)
        return PP_ERROR;
    if (!found)
        return len >= PP_V1_MAX_LINE ? fail(why, "v1 header has no CRLF in 107 bytes")
                                     : PP_NEED_MORE;
    info->version = 1;
    if (s[V1_PREFIX_LEN] == 'U') {
        info->local = true;
    } else {
        bool v6 = s[V1_PREFIX_LEN + 3] == '6';
        if (v1_addresses(s + V1_TCP_FIELDS_AT, text - V1_TCP_FIELDS_AT, v6, info, why) != PP_OK)
            return PP_ERROR;
    }
    *consumed = text + 2;
    return PP_OK;
}

/* ---- v2: 12-byte signature, ver_cmd, fam, 16-bit length, addresses, TLVs ---- */

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1

/* Address block size for a PROXY command's family/protocol byte; -1: not a valid pair. */
static int v2_addr_size(uint8_t fam)
{
    switch (fam) {
    case 0x00: /* UNSPEC */
        return 0;
    case 0x11: /* TCP over IPv4 */
    case 0x12: /* UDP over IPv4 */
        return 12;
    case 0x21: /* TCP over IPv6 */
    case 0x22: /* UDP over IPv6 */
        return 36;
    case 0x31: /* UNIX stream */
    case 0x32: /* UNIX datagram */
        return 216;
    default:
        return -1;
    }
}

/* Validates the fixed 16 bytes as far as they are present; PP_OK sets *total (16 + length). */
static enum pp_result v2_fixed(const uint8_t *buf, size_t len, size_t *total, const char **why)
{
    size_t k = len < PP_V2_SIG_LEN ? len : PP_V2_SIG_LEN;
    if (memcmp(buf, PP_V2_SIG, k) != 0)
        return fail(why, "not a PROXY protocol header");
    if (len <= PP_V2_SIG_LEN)
        return PP_NEED_MORE;
    uint8_t cmd = buf[12] & 0x0f;
    if (buf[12] >> 4 != 2)
        return fail(why, "v2 header with a version other than 2");
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return fail(why, "v2 command is neither LOCAL nor PROXY");
    /* LOCAL: the family byte is ignored, as the spec says */
    if (len >= 14 && cmd == V2_CMD_PROXY && v2_addr_size(buf[13]) < 0)
        return fail(why, "v2 address family or protocol is invalid");
    if (len < PP_V2_HEADER_MIN)
        return PP_NEED_MORE;
    size_t alen = get_be16(buf + 14);
    if (PP_V2_HEADER_MIN + alen > PP_MAX_HEADER)
        return fail(why, "v2 header longer than PP_MAX_HEADER");
    if (cmd == V2_CMD_PROXY && alen < (size_t)v2_addr_size(buf[13]))
        return fail(why, "v2 length too short for the address family");
    *total = PP_V2_HEADER_MIN + alen;
    return PP_OK;
}

/* Copies a TLV value into a bounded field; strings get a NUL and must not contain one. */
static int tlv_copy(void *dst, size_t cap, size_t *dst_len, const uint8_t *v, size_t n, bool string)
{
    if (n > cap || (string && memchr(v, '\0', n)))
        return -1;
    memcpy(dst, v, n);
    if (string)
        ((char *)dst)[n] = '\0';
    *dst_len = n;
    return 0;
}

/* Interprets one TLV whose value v[0..n) lies within the header. */
static enum pp_result v2_tlv(uint8_t type, const uint8_t *v, size_t n, struct pp_info *info,
                             const char **why)
{
    switch (type) {
    case PP2_TYPE_ALPN:
        if (tlv_copy(info->alpn, PP_ALPN_MAX, &info->alpn_len, v, n, true) < 0)
            return fail(why, "v2 ALPN TLV too long or contains a NUL");
        break;
    case PP2_TYPE_AUTHORITY:
        if (tlv_copy(info->authority, PP_AUTHORITY_MAX, &info->authority_len, v, n, true) < 0)
            return fail(why, "v2 authority TLV too long or contains a NUL");
        break;
    case PP2_TYPE_UNIQUE_ID:
        if (tlv_copy(info->unique_id, PP_UNIQUE_ID_MAX, &info->unique_id_len, v, n, false) < 0)
            return fail(why, "v2 unique-id TLV longer than 128 bytes");
        break;
    case PP2_TYPE_CRC32C:
        if (n != 4)
            return fail(why, "v2 CRC32c TLV is not 4 bytes");
        break;
    default: /* NOOP, SSL, NETNS, custom: skipped */
        break;
    }
    return PP_OK;
}

/* The CRC32c of the header buf[0..total) with the 4 bytes at crc_at taken as zeros. */
static bool v2_crc_matches(const uint8_t *buf, size_t total, size_t crc_at)
{
    static const uint8_t zeros[4];
    uint32_t crc = crc32c_update(~0u, buf, crc_at);
    crc = crc32c_update(crc, zeros, 4);
    crc = ~crc32c_update(crc, buf + crc_at + 4, total - crc_at - 4);
    return crc == get_be32(buf + crc_at);
}

/* Walks the TLVs in buf[off..total); each must fit entirely inside. */
static enum pp_result v2_tlvs(const uint8_t *buf, size_t off, size_t total, struct pp_info *info,
                              const char **why)
{
    const unsigned once = 1u << PP2_TYPE_ALPN | 1u << PP2_TYPE_AUTHORITY | 1u << PP2_TYPE_CRC32C |
                          1u << PP2_TYPE_UNIQUE_ID;
    unsigned seen = 0;
    size_t crc_at = 0;
    while (off < total) {
        if (total - off < 3)
            return fail(why, "v2 TLV truncated");
        uint8_t type = buf[off];
        size_t n = get_be16(buf + off + 1);
        if (n > total - off - 3)
            return fail(why, "v2 TLV overruns the header");
        if (type < 32 && (once >> type & 1)) {
            if (seen >> type & 1)
                return fail(why, "v2 TLV repeated");
            seen |= 1u << type;
        }
        if (v2_tlv(type, buf + off + 3, n, info, why) != PP_OK)
            return PP_ERROR;
        if (type == PP2_TYPE_CRC32C)
            crc_at = off + 3;
        off += 3 + n;
    }
    if (crc_at && !v2_crc_matches(buf, total, crc_at))
        return fail(why, "v2 CRC32c mismatch");
    info->crc32c_checked = crc_at != 0;
    return PP_OK;
}

static enum pp_result v2_parse(const uint8_t *buf, size_t len, struct pp_info *info,
                               size_t *consumed, const char **why)
{
    size_t total;
    enum pp_result r = v2_fixed(buf, len, &total, why);
    if (r != PP_OK)
        return r;
    if (len < total)
        return PP_NEED_MORE;
    info->version = 2;
    *consumed = total;
    if ((buf[12] & 0x0f) == V2_CMD_LOCAL) { /* the whole block is discarded */
        info->local = true;
        return PP_OK;
    }
    const uint8_t *a = buf + PP_V2_HEADER_MIN;
    uint8_t fam = buf[13];
    switch (fam >> 4) {
    case 0x1:
        set_in(&info->src, a, get_be16(a + 8));
        set_in(&info->dst, a + 4, get_be16(a + 10));
        break;
    case 0x2:
        set_in6(&info->src, a, get_be16(a + 32));
        set_in6(&info->dst, a + 16, get_be16(a + 34));
        break;
    default: /* UNSPEC or UNIX: use the real connection's addresses */
        info->local = true;
        break;
    }
    if (!info->local)
        info->sock_type = (fam & 0x0f) == 0x2 ? SOCK_DGRAM : SOCK_STREAM;
    return v2_tlvs(buf, PP_V2_HEADER_MIN + (size_t)v2_addr_size(fam), total, info, why);
}

enum pp_result pp_parse(const uint8_t *buf, size_t len, struct pp_info *info, size_t *consumed,
                        const char **why)
{
    enum pp_result r;
    memset(info, 0, sizeof(*info));
    *consumed = 0;
    if (len == 0)
        return PP_NEED_MORE;
    if (buf[0] == PP_V2_SIG[0])
        r = v2_parse(buf, len, info, consumed, why);
    else
        r = v1_parse(buf, len, info, consumed, why);
    if (r != PP_OK) {
        memset(info, 0, sizeof(*info));
        *consumed = 0;
    }
    return r;
}

/* ---- builders ---- */

/* Both ends in one family: AF_INET (4-byte addresses) or AF_INET6 (IPv4 mapped if needed). */
struct pp_ends {
    int family; /* 0: not representable */
    uint8_t src[16], dst[16];
    uint16_t sport, dport; /* host order */
};

static void raw_addr(const struct sockaddr_any *a, int family, uint8_t out[16], uint16_t *port)
{
    if (a->u.sa.sa_family == AF_INET6) {
        memcpy(out, &a->u.in6.sin6_addr, 16);
        *port = ntohs(a->u.in6.sin6_port);
    } else if (family == AF_INET) {
        memcpy(out, &a->u.in.sin_addr, 4);
        *port = ntohs(a->u.in.sin_port);
    } else { /* ::ffff:a.b.c.d */
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a->u.in.sin_addr, 4);
        *port = ntohs(a->u.in.sin_port);
    }
}

static void pp_ends(const struct sockaddr_any *src, const struct sockaddr_any *dst,
                    struct pp_ends *e)
{
    memset(e, 0, sizeof(*e));
    if (!src || !dst)
        return;
    int fs = src->u.sa.sa_family, fd = dst->u.sa.sa_family;
    if ((fs != AF_INET && fs != AF_INET6) || (fd != AF_INET && fd != AF_INET6))
        return;
    e->family = fs == AF_INET && fd == AF_INET ? AF_INET : AF_INET6;
    raw_addr(src, e->family, e->src, &e->sport);
    raw_addr(dst, e->family, e->dst, &e->dport);
}

/* RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2) of zero groups as "::". */
static void ipv6_text(const uint8_t ip[16], char out[INET6_ADDRSTRLEN])
{
    unsigned g[8];
    int best = -1, best_n = 1;
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
    for (int i = 0, j; i < 8; i = j + 1) {
        for (j = i; j < 8 && g[j] == 0; j++)
            ;
        if (j - i > best_n) {
            best = i;
            best_n = j - i;
        }
    }
    size_t n = 0;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            out[n++] = ':';
            out[n++] = ':';
            i += best_n - 1;
            continue;
        }
        if (n > 0 && out[n - 1] != ':')
            out[n++] = ':';
        n += (size_t)snprintf(out + n, INET6_ADDRSTRLEN - n, "%x", g[i]);
    }
    out[n] = '\0';
}

ssize_t pp_build_v1(const struct sockaddr_any *src, const struct sockaddr_any *dst, char *out,
                    size_t cap)
{
    char line[PP_V1_MAX_LINE + 1], s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    struct pp_ends e;
    int n;
    pp_ends(src, dst, &e);
    if (e.family == AF_INET) {
        inet_ntop(AF_INET, e.src, s, sizeof(s));
        inet_ntop(AF_INET, e.dst, d, sizeof(d));
    } else if (e.family == AF_INET6) {
        ipv6_text(e.src, s);
        ipv6_text(e.dst, d);
    }
    if (e.family)
        n = snprintf(line, sizeof(line), "PROXY TCP%c %s %s %u %u\r\n",
                     e.family == AF_INET ? '4' : '6', s, d, e.sport, e.dport);
    else
        n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
    if (n < 0 || (size_t)n > cap)
        return -1;
    memcpy(out, line, (size_t)n);
    return n;
}

ssize_t pp_build_v2(const struct sockaddr_any *src, const struct sockaddr_any *dst, uint8_t *out,
                    size_t cap)
{
    uint8_t h[PP_V2_BUILD_MAX];
    struct pp_ends e;
    size_t alen = 0, w;
    pp_ends(src, dst, &e);
    w = e.family == AF_INET ? 4 : 16;
    memcpy(h, PP_V2_SIG, PP_V2_SIG_LEN);
    h[12] = src && dst ? 0x20 | V2_CMD_PROXY : 0x20 | V2_CMD_LOCAL;
    h[13] = e.family == AF_INET ? 0x11 : e.family == AF_INET6 ? 0x21 : 0x00;
    if (e.family) {
        alen = 2 * w + 4;
        memcpy(h + 16, e.src, w);
        memcpy(h + 16 + w, e.dst, w);
        put_be16(h + 16 + 2 * w, e.sport);
        put_be16(h + 18 + 2 * w, e.dport);
    }
    put_be16(h + 14, (uint16_t)alen);
    if (PP_V2_HEADER_MIN + alen > cap)
        return -1;
    memcpy(out, h, PP_V2_HEADER_MIN + alen);
    return (ssize_t)(PP_V2_HEADER_MIN + alen);
}
