/* tls_hello.c — see tls_hello.h. A reader walks the handshake records in place, so a
 * ClientHello fragmented across records is parsed without copying or allocating.
 * References: RFC 8446 §5.1 (records), §4.1.2 (ClientHello), §4.2 (extensions);
 * RFC 6066 §3 (server_name); RFC 7301 §3.1 (ALPN); RFC 8701 (GREASE).
 */
#include "tls_hello.h"

#include <string.h>

#define REC_HEADER 5
#define REC_HANDSHAKE 22
#define REC_MAX_PAYLOAD 16384 /* 2^14 */
#define HS_HEADER 4
#define HS_CLIENT_HELLO 1
#define HELLO_RANDOM 32
#define SESSION_ID_MAX 32
#define EXT_SERVER_NAME 0
#define EXT_ALPN 16
#define EXT_SUPPORTED_VERSIONS 43
#define SNI_HOST_NAME 0
#define DNS_LABEL_MAX 63

/* Returns from the calling function unless the step went through (HELLO_OK). */
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        enum hello_result res_ = (expr);                                                           \
        if (res_ != HELLO_OK)                                                                      \
            return res_;                                                                           \
    } while (0)

/* Reads the handshake message byte stream out of consecutive handshake records.
 * Invariants: pos <= len; msg_left bounds every read (a read past it is a malformed length
 * field, never a reason to wait); a read that needs bytes beyond len yields NEED_MORE. */
struct reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;      /* next byte of buf */
    size_t rec_left; /* payload bytes of the current record not read yet */
    size_t msg_left; /* bytes of the handshake message (header, then body) not read yet */
    const char *why; /* set with HELLO_ERROR */
};

static enum hello_result fail(struct reader *r, const char *why)
{
    r->why = why;
    return HELLO_ERROR;
}

/* Steps over the header of the next record. The first record's type and major version
 * were checked by tls_hello_parse (HELLO_NOT_TLS); a later one must continue the
 * handshake: anything else between ClientHello fragments is an error. */
static enum hello_result rd_record(struct reader *r)
{
    if (r->pos + REC_HEADER >= HELLO_MAX_BYTES)
        return fail(r, "ClientHello too large");
    if (r->len - r->pos < REC_HEADER)
        return HELLO_NEED_MORE;
    const uint8_t *h = r->buf + r->pos;
    if (h[0] != REC_HANDSHAKE)
        return fail(r, "non-handshake record inside the ClientHello");
    if (h[1] != 3)
        return fail(r, "record version is not 3.x");
    size_t n = (size_t)h[3] << 8 | h[4];
    if (n == 0)
        return fail(r, "empty handshake record");
    if (n > REC_MAX_PAYLOAD)
        return fail(r, "record longer than 2^14 bytes");
    r->pos += REC_HEADER;
    r->rec_left = n;
    return HELLO_OK;
}

/* Reads n bytes of the handshake message into dst, or skips them when dst is NULL. */
static enum hello_result rd_bytes(struct reader *r, void *dst, size_t n)
{
    uint8_t *out = dst;
    if (n > r->msg_left)
        return fail(r, "length field overruns the ClientHello");
    while (n > 0) {
        if (r->rec_left == 0)
            TRY(rd_record(r));
        if (r->pos >= HELLO_MAX_BYTES)
            return fail(r, "ClientHello too large");
        if (r->pos == r->len)
            return HELLO_NEED_MORE;
        size_t chunk = n;
        if (chunk > r->rec_left)
            chunk = r->rec_left;
        if (chunk > r->len - r->pos)
            chunk = r->len - r->pos;
        if (chunk > HELLO_MAX_BYTES - r->pos)
            chunk = HELLO_MAX_BYTES - r->pos;
        if (out) {
            memcpy(out, r->buf + r->pos, chunk);
            out += chunk;
        }
        r->pos += chunk;
        r->rec_left -= chunk;
        r->msg_left -= chunk;
        n -= chunk;
    }
    return HELLO_OK;
}

static enum hello_result rd_u8(struct reader *r, size_t *v)
{
    uint8_t b[1];
    TRY(rd_bytes(r, b, sizeof(b)));
    *v = b[0];
    return HELLO_OK;
}

static enum hello_result rd_u16(struct reader *r, size_t *v)
{
    uint8_t b[2];
    TRY(rd_bytes(r, b, sizeof(b)));
    *v = (size_t)b[0] << 8 | b[1];
    return HELLO_OK;
}

static enum hello_result rd_u24(struct reader *r, size_t *v)
{
    uint8_t b[3];
    TRY(rd_bytes(r, b, sizeof(b)));
    *v = (size_t)b[0] << 16 | (size_t)b[1] << 8 | b[2];
    return HELLO_OK;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

bool sni_name_valid(const char *name, size_t len, const char **why)
{
    const char *dummy;
    size_t label = 0;
    if (!why)
        why = &dummy;
    if (len == 0 || len > HELLO_SNI_MAX) {
        *why = "host name empty or longer than 255 bytes";
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') {
            if (label == 0)
                break;
            label = 0;
        } else if (!host_char(name[i])) {
            *why = "invalid character in host name";
            return false;
        } else if (++label > DNS_LABEL_MAX) {
            *why = "host name label longer than 63 bytes";
            return false;
        }
    }
    if (label == 0) {
        *why = "empty label in host name (leading, trailing or double dot)";
        return false;
    }
    return true;
}

/* server_name (RFC 6066 §3): a list of (name_type, opaque<1..2^16-1>) entries; every type
 * starts with a 16-bit length, so unknown types are skipped. One host_name at most. */
static enum hello_result ext_server_name(struct reader *r, size_t elen, struct hello_info *info)
{
    size_t list, type, nlen;
    const char *why;
    if (elen < 2)
        return fail(r, "server_name extension too short");
    TRY(rd_u16(r, &list));
    if (list == 0 || list != elen - 2)
        return fail(r, "server_name list length mismatch");
    size_t end = r->msg_left - list;
    while (r->msg_left > end) {
        if (r->msg_left - end < 3)
            return fail(r, "truncated server_name entry");
        TRY(rd_u8(r, &type));
        TRY(rd_u16(r, &nlen));
        if (nlen > r->msg_left - end)
            return fail(r, "server name overruns its list");
        if (type != SNI_HOST_NAME) {
            TRY(rd_bytes(r, NULL, nlen));
            continue;
        }
        if (info->sni_len)
            return fail(r, "two host_name entries in server_name");
        if (nlen == 0 || nlen > HELLO_SNI_MAX)
            return fail(r, "host_name empty or longer than 255 bytes");
        TRY(rd_bytes(r, info->sni, nlen));
        if (!sni_name_valid(info->sni, nlen, &why))
            return fail(r, why);
        for (size_t i = 0; i < nlen; i++)
            info->sni[i] = ascii_lower(info->sni[i]);
        info->sni[nlen] = '\0';
        info->sni_len = nlen;
    }
    return HELLO_OK;
}

/* application_layer_protocol_negotiation (RFC 7301): ProtocolName<1..2^8-1> list<2..>. */
static enum hello_result ext_alpn(struct reader *r, size_t elen, struct hello_info *info)
{
    size_t list, plen;
    if (elen < 2)
        return fail(r, "ALPN extension too short");
    TRY(rd_u16(r, &list));
    if (list < 2 || list != elen - 2)
        return fail(r, "ALPN list length mismatch");
    info->has_alpn = true;
    size_t end = r->msg_left - list;
    while (r->msg_left > end) {
        TRY(rd_u8(r, &plen));
        if (plen == 0)
            return fail(r, "empty ALPN protocol name");
        if (plen > r->msg_left - end)
            return fail(r, "ALPN protocol name overruns its list");
        if (info->nalpn == HELLO_ALPN_MAX || plen >= HELLO_ALPN_NAME_MAX) {
            info->alpn_incomplete = true;
            TRY(rd_bytes(r, NULL, plen));
            continue;
        }
        char *name = info->alpn[info->nalpn];
        TRY(rd_bytes(r, name, plen));
        name[plen] = '\0';
        if (memchr(name, '\0', plen)) {
            info->alpn_incomplete = true;
            memset(name, 0, plen);
        } else {
            info->nalpn++;
        }
    }
    return HELLO_OK;
}

/* GREASE values (RFC 8701) are 0x?a?a with both bytes equal; they mean nothing. */
static bool grease(size_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* supported_versions (RFC 8446 §4.2.1), ClientHello form: ProtocolVersion<2..254>. */
static enum hello_result ext_versions(struct reader *r, size_t elen, struct hello_info *info)
{
    size_t n, v;
    if (elen < 1)
        return fail(r, "supported_versions extension too short");
    TRY(rd_u8(r, &n));
    if (n < 2 || n % 2 || n != elen - 1)
        return fail(r, "supported_versions length mismatch");
    for (size_t i = 0; i < n / 2; i++) {
        TRY(rd_u16(r, &v));
        if (!grease(v) && v > info->max_version)
            info->max_version = (uint16_t)v;
    }
    return HELLO_OK;
}

/* The extensions block fills the rest of the message. Each handler reads exactly its
 * extension's bytes or fails; other extensions are skipped. No type may appear twice
 * (RFC 8446 §4.2), whatever it is: a duplicate server_name could steer a router and the
 * server apart. */
static enum hello_result parse_extensions(struct reader *r, struct hello_info *info)
{
    uint64_t seen[65536 / 64];
    size_t type, elen;
    memset(seen, 0, sizeof(seen));
    while (r->msg_left > 0) {
        TRY(rd_u16(r, &type));
        TRY(rd_u16(r, &elen));
        if (elen > r->msg_left)
            return fail(r, "extension overruns the ClientHello");
        if (seen[type / 64] & (1ull << (type % 64)))
            return fail(r, "duplicate extension");
        seen[type / 64] |= 1ull << (type % 64);
        switch (type) {
        case EXT_SERVER_NAME:
            TRY(ext_server_name(r, elen, info));
            break;
        case EXT_ALPN:
            TRY(ext_alpn(r, elen, info));
            break;
        case EXT_SUPPORTED_VERSIONS:
            TRY(ext_versions(r, elen, info));
            break;
        default:
            TRY(rd_bytes(r, NULL, elen));
        }
    }
    return HELLO_OK;
}

/* ClientHello body (RFC 8446 §4.1.2; extensions optional before TLS 1.3, RFC 5246 §7.4.1.2):
 * legacy_version, random, legacy_session_id<0..32>, cipher_suites<2..2^16-2>,
 * legacy_compression_methods<1..2^8-1>, [extensions<8..2^16-1>]. */
static enum hello_result parse_body(struct reader *r, struct hello_info *info)
{
    size_t n;
    TRY(rd_u16(r, &n));
    if (n >> 8 != 3)
        return fail(r, "ClientHello version is not 3.x");
    info->legacy_version = (uint16_t)n;
    TRY(rd_bytes(r, NULL, HELLO_RANDOM));
    TRY(rd_u8(r, &n));
    if (n > SESSION_ID_MAX)
        return fail(r, "session id longer than 32 bytes");
    TRY(rd_bytes(r, NULL, n));
    TRY(rd_u16(r, &n));
    if (n == 0 || n % 2)
        return fail(r, "cipher suites length zero or odd");
    TRY(rd_bytes(r, NULL, n));
    TRY(rd_u8(r, &n));
    if (n == 0)
        return fail(r, "no compression method");
    TRY(rd_bytes(r, NULL, n));
    if (r->msg_left == 0)
        return HELLO_OK;
    TRY(rd_u16(r, &n));
    if (n != r->msg_left)
        return fail(r, "extensions length does not match the ClientHello length");
    return parse_extensions(r, info);
}

/* The handshake header, then the body: one ClientHello, bounded so that it ends within
 * HELLO_MAX_BYTES of the connection's first byte. */
static enum hello_result parse_message(struct reader *r, struct hello_info *info)
{
    size_t type, mlen;
    TRY(rd_u8(r, &type));
    if (type != HS_CLIENT_HELLO)
        return fail(r, "handshake message is not a ClientHello");
    TRY(rd_u24(r, &mlen));
    if (mlen > HELLO_MAX_BYTES - REC_HEADER - HS_HEADER)
        return fail(r, "ClientHello too large");
    r->msg_left = mlen;
    TRY(parse_body(r, info));
    if (info->max_version == 0)
        info->max_version = info->legacy_version;
    return HELLO_OK;
}

enum hello_result tls_hello_parse(const uint8_t *buf, size_t len, struct hello_info *info,
                                  const char **why)
{
    struct reader r = {.buf = buf, .len = len, .msg_left = HS_HEADER};
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    memset(info, 0, sizeof(*info));
    /* SSLv2 hellos (first bit set), HTTP, ...: known from the first byte or two */
    if ((len >= 1 && buf[0] != REC_HANDSHAKE) || (len >= 2 && buf[1] != 3)) {
        *why = "not a TLS handshake record";
        return HELLO_NOT_TLS;
    }
    enum hello_result res = parse_message(&r, info);
    if (res == HELLO_ERROR)
        *why = r.why;
    if (res != HELLO_OK)
        memset(info, 0, sizeof(*info)); /* no half-parsed name for a caller to log */
    return res;
}

/* ASCII case-insensitive equality of n bytes; locale-independent. */
static bool ascii_caseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return false;
    return true;
}

bool sni_pattern_valid(const char *pattern, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    size_t n = strlen(pattern);
    if (pattern[0] == '*') {
        if (pattern[1] != '.') {
            *why = "'*' must be followed by '.' (as in *.example.com)";
            return false;
        }
        /* the shortest name it matches, "a.example.com", is as long as the pattern */
        if (n > HELLO_SNI_MAX) {
            *why = "wildcard pattern too long";
            return false;
        }
        pattern += 2;
        n -= 2;
    }
    if (memchr(pattern, '*', n)) {
        *why = "'*' is only allowed as the whole first label";
        return false;
    }
    return sni_name_valid(pattern, n, why);
}

bool sni_match(const char *pattern, const char *name, size_t name_len)
{
    if (pattern[0] == '*') {
        const char *suffix = pattern + 1; /* ".example.com" */
        size_t slen = strlen(suffix);
        return name_len > slen && ascii_caseeq(name + name_len - slen, suffix, slen);
    }
    size_t plen = strlen(pattern);
    return plen == name_len && ascii_caseeq(pattern, name, plen);
}
