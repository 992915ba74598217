/* test_proxy_proto.c — PROXY protocol v1/v2 parser and builders (src/net/proxy_proto.c):
 * valid headers of each kind, every prefix of them (PP_NEED_MORE), malformed ones (PP_ERROR,
 * as early as possible), TLVs with CRC32c, and build → parse round trips.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy_proto.h"
#include "test.h"

/* ---- helpers ---- */

static struct sockaddr_any mk_addr(const char *ip, uint16_t port)
{
    struct sockaddr_any a;
    memset(&a, 0, sizeof(a));
    if (strchr(ip, ':')) {
        a.u.in6.sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a.u.in6.sin6_addr);
        a.u.in6.sin6_port = htons(port);
        a.len = sizeof(struct sockaddr_in6);
    } else {
        a.u.in.sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a.u.in.sin_addr);
        a.u.in.sin_port = htons(port);
        a.len = sizeof(struct sockaddr_in);
    }
    return a;
}

static enum pp_result parse(const void *buf, size_t len, struct pp_info *info, size_t *consumed)
{
    const char *why = NULL;
    enum pp_result r = pp_parse(buf, len, info, consumed, &why);
    if (r == PP_ERROR && !why)
        test_fail(__FILE__, __LINE__, "PP_ERROR without a reason");
    return r;
}

/* Every strict prefix of a valid header needs more; the whole header parses. Each prefix
 * is copied to a heap block of its exact size, so that ASan sees any read past len. */
static void check_prefixes(const void *hdr, size_t n)
{
    struct pp_info info;
    size_t consumed;
    for (size_t i = 0; i <= n; i++) {
        uint8_t *copy = malloc(i ? i : 1);
        memcpy(copy, hdr, i);
        enum pp_result r = parse(copy, i, &info, &consumed);
        free(copy);
        if (r != (i < n ? PP_NEED_MORE : PP_OK))
            test_fail(__FILE__, __LINE__, "prefix of %zu/%zu bytes: result %d", i, n, (int)r);
    }
    CHECK(parse(hdr, n, &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, n);
}

static bool same_addr(const struct sockaddr_any *a, const char *ip, uint16_t port)
{
    struct sockaddr_any b = mk_addr(ip, port);
    return addr_equal(a, &b);
}

static enum pp_result parse_str(const char *s)
{
    struct pp_info info;
    size_t consumed;
    return parse(s, strlen(s), &info, &consumed);
}

/* Fails the test unless s is rejected, and rejected without needing its last byte when
 * by_byte (the error is visible at that many bytes). */
static void expect_error(const char *s, size_t by_byte, int line)
{
    struct pp_info info;
    size_t consumed;
    size_t n = strlen(s);
    if (parse(s, n, &info, &consumed) != PP_ERROR)
        test_fail(__FILE__, line, "accepted: \"%.*s\"", (int)strcspn(s, "\r\n"), s);
    if (by_byte && parse(s, by_byte, &info, &consumed) != PP_ERROR)
        test_fail(__FILE__, line, "not rejected after %zu bytes", by_byte);
}

/* A v2 header: signature, ver_cmd, fam, then body (addresses + TLVs) of blen bytes. */
static size_t mk_v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t blen)
{
    memcpy(out, PP_V2_SIG, PP_V2_SIG_LEN);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(blen >> 8);
    out[15] = (uint8_t)blen;
    if (blen)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

static const uint8_t v4_body[12] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdb, 0xc4, 0x01, 0xbb};

/* Appends a TLV to body at *n. */
static void add_tlv(uint8_t *body, size_t *n, uint8_t type, const void *v, size_t vlen)
{
    body[(*n)++] = type;
    body[(*n)++] = (uint8_t)(vlen >> 8);
    body[(*n)++] = (uint8_t)vlen;
    memcpy(body + *n, v, vlen);
    *n += vlen;
}

/* ---- v1 ---- */

TEST(proxy_v1_tcp4)
{
    const char *h = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    struct pp_info info;
    size_t consumed;
    CHECK(parse(h, strlen(h), &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, strlen(h));
    CHECK_EQ_U64(info.version, 1);
    CHECK(!info.local);
    CHECK(info.sock_type == SOCK_STREAM);
    CHECK(same_addr(&info.src, "192.168.0.1", 56324));
    CHECK(same_addr(&info.dst, "192.168.0.11", 443));
    CHECK(parse_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n") == PP_OK);
}

TEST(proxy_v1_tcp6)
{
    const char *h = "PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 65535 0\r\n";
    struct pp_info info;
    size_t consumed;
    CHECK(parse(h, strlen(h), &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, strlen(h));
    CHECK(same_addr(&info.src, "2001:db8::1", 65535));
    CHECK(same_addr(&info.dst, "::ffff:10.0.0.1", 0));
    CHECK(parse_str("PROXY TCP6 FFFF:ffff:ffff:ffff:ffff:ffff:ffff:ffff :: 1 2\r\n") == PP_OK);
}

TEST(proxy_v1_unknown)
{
    struct pp_info info;
    size_t consumed;
    const char *h = "PROXY UNKNOWN\r\nGET / HTTP/1.0\r\n";
    CHECK(parse(h, strlen(h), &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, 15);
    CHECK(info.local);
    CHECK(info.src.u.sa.sa_family == AF_UNSPEC);
    /* the receiver ignores whatever follows UNKNOWN up to the CRLF */
    h = "PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535 whatever\r\n";
    CHECK(parse(h, strlen(h), &info, &consumed) == PP_OK);
    CHECK(info.local);
    CHECK_EQ_U64(consumed, strlen(h));
}

TEST(proxy_v1_prefixes_need_more)
{
    const char *h4 = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    check_prefixes(h4, strlen(h4));
    const char *h6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK_EQ_U64(strlen(h6), 104);
    check_prefixes(h6, strlen(h6));
    check_prefixes("PROXY UNKNOWN\r\n", 15);
    check_prefixes("PROXY UNKNOWN 1.2.3.4 x\r\n", 25);
}

TEST(proxy_v1_trailing_data)
{
    const char *h = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nPROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\nabc";
    struct pp_info info;
    size_t consumed;
    CHECK(parse(h, strlen(h), &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, 32);
    CHECK(same_addr(&info.src, "1.2.3.4", 1));
    /* same answer for every length from the end of the header on */
    for (size_t n = 32; n <= strlen(h); n++) {
        CHECK(parse(h, n, &info, &consumed) == PP_OK);
        CHECK_EQ_U64(consumed, 32);
    }
}

TEST(proxy_v1_line_length)
{
    char line[128];
    /* 107 bytes with the CRLF: the longest line accepted */
    snprintf(line, sizeof(line), "PROXY UNKNOWN %-91s\r\n", "x");
    CHECK_EQ_U64(strlen(line), 107);
    CHECK(parse_str(line) == PP_OK);
    snprintf(line, sizeof(line), "PROXY UNKNOWN %-92s\r\n", "x");
    CHECK_EQ_U64(strlen(line), 108);
    CHECK(parse_str(line) == PP_ERROR);
    /* no CRLF within 107 bytes is an error at 107 bytes, not a wait */
    memset(line, 'x', sizeof(line));
    memcpy(line, "PROXY UNKNOWN ", 14);
    struct pp_info info;
    size_t consumed;
    CHECK(parse(line, 106, &info, &consumed) == PP_NEED_MORE);
    CHECK(parse(line, 107, &info, &consumed) == PP_ERROR);
    CHECK(parse(line, sizeof(line), &info, &consumed) == PP_ERROR);
}

TEST(proxy_v1_malformed)
{
    static const char *const bad[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",         /* LF only */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx\r\n",    /* lone CR */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n\r\n",     /* lone LF */
        "PROXY UNKNOWN a\nb\r\n",                   /* LF inside UNKNOWN */
        "PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",     /* octet > 255 */
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",         /* 3 octets */
        "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",     /* 5 octets */
        "PROXY TCP4 1.2..4 5.6.7.8 1 2\r\n",        /* empty octet */
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",      /* leading zero in an octet */
        "PROXY TCP4 1.2.3.4 5.6.7.1234 1 2\r\n",    /* 4-digit octet */
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",           /* IPv6 in TCP4 */
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",           /* IPv4 in TCP6 */
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", /* 144 bits */
        "PROXY TCP6 1:::2 ::1 1 2\r\n",             /* triple colon */
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",           /* two "::" */
        "PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000:0000 ::1 1 2\r\n", /* too long */
        "PROXY TCP6 ::1 ::1 8a 2\r\n",                                              /* hex port */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",  /* port > 65535 */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n", /* 6-digit port */
        "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",    /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n",     /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n",    /* sign */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",     /* sign */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",     /* double space */
        "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",     /* double space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",     /* trailing space */
        " PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",     /* leading space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",    /* 5 fields */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",        /* 3 fields */
        "PROXY TCP4\r\n",                          /* no fields */
        "PROXY TCP4 \r\n",                         /* no fields */
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",      /* lowercase */
        "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",      /* lowercase */
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",      /* protocol */
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",      /* protocol */
        "PROXY UNKNOWNX\r\n",                      /* UNKNOWN + junk */
        "PROXY UNKNOW\r\n",                        /* truncated keyword */
        "PROXY \r\n",                              /* nothing */
        "PROXY\r\n",                               /* nothing */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\t\r\n",    /* tab */
        "\n",                                      /* empty line */
        "\r\nGET / HTTP/1.1\r\n",                  /* neither v1 nor v2 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i], 0, __LINE__);
    /* the reason is a static string */
    const char *why = NULL;
    struct pp_info info;
    size_t consumed;
    CHECK(pp_parse((const uint8_t *)"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", 36, &info, &consumed,
                   &why) == PP_ERROR);
    CHECK_STR_CONTAINS(why, "destination port");
}

TEST(proxy_v1_fails_fast)
{
    expect_error("GET / HTTP/1.1\r\n", 1, __LINE__);
    expect_error("PROXX TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 5, __LINE__);
    expect_error("PROXY\tTCP4 1.2.3.4 5.6.7.8 1 2\r\n", 6, __LINE__);
    expect_error("PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n", 10, __LINE__);
    expect_error("PROXY UNKNOWNN\r\n", 14, __LINE__);
    expect_error("PROXY TCP4 1.2.3.4 x 1 2\r\n", 20, __LINE__);
    expect_error("PROXY TCP4 ::1 ::1 1 2\r\n", 12, __LINE__);
    expect_error("PROXY TCP6 ::g ::1 1 2\r\n", 14, __LINE__);
    expect_error("PROXY TCP4 1.2.3.4\n", 19, __LINE__);
    expect_error("PROXY TCP4 1.2.3.4\rx", 20, __LINE__);
}

/* ---- v2 ---- */

TEST(proxy_v2_ipv4)
{
    uint8_t h[64];
    size_t n = mk_v2(h, 0x21, 0x11, v4_body, sizeof(v4_body));
    struct pp_info info;
    size_t consumed;
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, 28);
    CHECK_EQ_U64(info.version, 2);
    CHECK(!info.local);
    CHECK(info.sock_type == SOCK_STREAM);
    CHECK(!info.crc32c_checked);
    CHECK(same_addr(&info.src, "192.0.2.1", 56260));
    CHECK(same_addr(&info.dst, "198.51.100.7", 443));
    check_prefixes(h, n);
    /* UDP over IPv4 is reported, not refused */
    n = mk_v2(h, 0x21, 0x12, v4_body, sizeof(v4_body));
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK(info.sock_type == SOCK_DGRAM);
}

TEST(proxy_v2_ipv6)
{
    uint8_t body[36] = {0x20, 0x01,     0x0d,        0xb8, [15] = 1, [16] = 0xfe,
                        0x80, [31] = 2, [32] = 0x30, 0x39, 0x00,     0x50};
    uint8_t h[64];
    size_t n = mk_v2(h, 0x21, 0x21, body, sizeof(body));
    struct pp_info info;
    size_t consumed;
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, 52);
    CHECK(same_addr(&info.src, "2001:db8::1", 12345));
    CHECK(same_addr(&info.dst, "fe80::2", 80));
    check_prefixes(h, n);
    /* an address block longer than the family needs: the rest is TLVs (here one NOOP) */
    uint8_t big[40];
    memcpy(big, body, 36);
    memcpy(big + 36, "\x04\x00\x01\x00", 4);
    n = mk_v2(h, 0x21, 0x21, big, sizeof(big));
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, 56);
}

TEST(proxy_v2_local_and_unspec)
{
    uint8_t h[300], body[216] = {0};
    struct pp_info info;
    size_t consumed;
    size_t n = mk_v2(h, 0x20, 0x00, NULL, 0); /* LOCAL, as senders of health checks do */
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, 16);
    CHECK(info.local);
    CHECK(info.sock_type == 0);
    check_prefixes(h, n);
    /* LOCAL: family and block are ignored, whatever they hold */
    n = mk_v2(h, 0x20, 0xff, "\x01\xff\xff", 3);
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK(info.local);
    CHECK_EQ_U64(consumed, 19);
    /* PROXY with UNSPEC or UNIX addresses: use the real ones */
    n = mk_v2(h, 0x21, 0x00, NULL, 0);
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK(info.local);
    n = mk_v2(h, 0x21, 0x31, body, sizeof(body));
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK(info.local);
    CHECK_EQ_U64(consumed, 232);
    n = mk_v2(h, 0x21, 0x31, body, 215); /* too short for two sun_path */
    CHECK(parse(h, n, &info, &consumed) == PP_ERROR);
}

TEST(proxy_v2_bad_fixed_part)
{
    uint8_t h[64];
    struct pp_info info;
    size_t consumed;
    mk_v2(h, 0x11, 0x11, v4_body, 12); /* version 1 */
    CHECK(parse(h, 13, &info, &consumed) == PP_ERROR);
    mk_v2(h, 0x31, 0x11, v4_body, 12); /* version 3 */
    CHECK(parse(h, 13, &info, &consumed) == PP_ERROR);
    mk_v2(h, 0x22, 0x11, v4_body, 12); /* command 2 */
    CHECK(parse(h, 13, &info, &consumed) == PP_ERROR);
    mk_v2(h, 0x2f, 0x11, v4_body, 12); /* command 15 */
    CHECK(parse(h, 13, &info, &consumed) == PP_ERROR);
    static const uint8_t bad_fam[] = {0x01, 0x10, 0x13, 0x20, 0x23, 0x30, 0x33, 0x41, 0xf1};
    for (size_t i = 0; i < sizeof(bad_fam); i++) {
        mk_v2(h, 0x21, bad_fam[i], v4_body, 12);
        CHECK(parse(h, 14, &info, &consumed) == PP_ERROR);
    }
    mk_v2(h, 0x21, 0x11, v4_body, 11); /* IPv4 needs 12 bytes */
    CHECK(parse(h, 16, &info, &consumed) == PP_ERROR);
    mk_v2(h, 0x21, 0x21, v4_body, 12); /* IPv6 needs 36 */
    CHECK(parse(h, 16, &info, &consumed) == PP_ERROR);
}

TEST(proxy_v2_fails_fast)
{
    uint8_t h[64];
    struct pp_info info;
    size_t consumed;
    /* a wrong byte anywhere in the signature fails as soon as that byte is in */
    for (size_t i = 0; i < PP_V2_SIG_LEN; i++) {
        mk_v2(h, 0x21, 0x11, v4_body, 12);
        h[i] ^= 0x40;
        CHECK(parse(h, i + 1, &info, &consumed) == PP_ERROR);
        if (i > 0)
            CHECK(parse(h, i, &info, &consumed) == PP_NEED_MORE);
    }
    /* a TLS ClientHello or an HTTP request is refused on its first byte */
    CHECK(parse("\x16\x03\x01", 1, &info, &consumed) == PP_ERROR);
    CHECK(parse("GET", 1, &info, &consumed) == PP_ERROR);
    CHECK(parse("", 0, &info, &consumed) == PP_NEED_MORE);
}

TEST(proxy_v2_length_bound)
{
    static uint8_t h[PP_MAX_HEADER + 16];
    uint8_t body[PP_MAX_HEADER];
    struct pp_info info;
    size_t consumed;
    /* the longest accepted: 16 + 4080, the block padded with one NOOP TLV */
    size_t blen = PP_MAX_HEADER - 16, pad = blen - 12 - 3;
    memcpy(body, v4_body, 12);
    body[12] = PP2_TYPE_NOOP;
    body[13] = (uint8_t)(pad >> 8);
    body[14] = (uint8_t)pad;
    memset(body + 15, 0, pad);
    size_t n = mk_v2(h, 0x21, 0x11, body, blen);
    CHECK_EQ_U64(n, PP_MAX_HEADER);
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, PP_MAX_HEADER);
    CHECK(parse(h, n - 1, &info, &consumed) == PP_NEED_MORE);
    /* one more byte announced: refused once the length field is in, without waiting */
    h[15]++;
    CHECK(parse(h, 16, &info, &consumed) == PP_ERROR);
    h[14] = h[15] = 0xff;
    CHECK(parse(h, 16, &info, &consumed) == PP_ERROR);
}

TEST(proxy_v2_tlvs)
{
    uint8_t body[512], h[600], uid[128];
    size_t bn = 12;
    memcpy(body, v4_body, 12);
    for (size_t i = 0; i < sizeof(uid); i++)
        uid[i] = (uint8_t)(i * 7);
    add_tlv(body, &bn, PP2_TYPE_NOOP, "", 0);
    add_tlv(body, &bn, PP2_TYPE_ALPN, "h2", 2);
    add_tlv(body, &bn, PP2_TYPE_AUTHORITY, "example.com", 11);
    add_tlv(body, &bn, PP2_TYPE_UNIQUE_ID, uid, sizeof(uid));
    add_tlv(body, &bn, 0x20, "\x01\x00\x00\x00\x00\x21\x00\x07TLSv1.3", 15); /* SSL */
    add_tlv(body, &bn, 0xe0, "custom", 6);
    add_tlv(body, &bn, PP2_TYPE_NOOP, "xyz", 3);
    size_t n = mk_v2(h, 0x21, 0x11, body, bn);
    struct pp_info info;
    size_t consumed;
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK_EQ_U64(consumed, n);
    CHECK_EQ_U64(info.alpn_len, 2);
    CHECK(strcmp(info.alpn, "h2") == 0);
    CHECK_EQ_U64(info.authority_len, 11);
    CHECK(strcmp(info.authority, "example.com") == 0);
    CHECK_EQ_U64(info.unique_id_len, 128);
    CHECK(memcmp(info.unique_id, uid, 128) == 0);
    CHECK(same_addr(&info.src, "192.0.2.1", 56260));
    check_prefixes(h, n);
}

TEST(proxy_v2_tlv_errors)
{
    uint8_t body[600], h[700], big[300];
    struct pp_info info;
    size_t consumed, bn, n;
    memset(big, 'a', sizeof(big));
    memcpy(body, v4_body, 12);
    /* a TLV whose value runs past the announced length */
    bn = 12;
    add_tlv(body, &bn, PP2_TYPE_ALPN, "h2", 2);
    n = mk_v2(h, 0x21, 0x11, body, bn - 1);
    CHECK(parse(h, n + 10, &info, &consumed) == PP_ERROR);
    /* 1 or 2 stray bytes after the last TLV */
    for (size_t extra = 1; extra <= 2; extra++) {
        bn = 12;
        add_tlv(body, &bn, PP2_TYPE_ALPN, "h2", 2);
        memset(body + bn, 0, extra);
        n = mk_v2(h, 0x21, 0x11, body, bn + extra);
        CHECK(parse(h, n, &info, &consumed) == PP_ERROR);
    }
    /* values over their bound */
    static const struct {
        uint8_t type;
        size_t len;
    } over[] = {{PP2_TYPE_ALPN, 256}, {PP2_TYPE_AUTHORITY, 256}, {PP2_TYPE_UNIQUE_ID, 129}};
    for (size_t i = 0; i < 3; i++) {
        bn = 12;
        add_tlv(body, &bn, over[i].type, big, over[i].len - 1);
        n = mk_v2(h, 0x21, 0x11, body, bn);
        CHECK(parse(h, n, &info, &consumed) == PP_OK);
        bn = 12;
        add_tlv(body, &bn, over[i].type, big, over[i].len);
        n = mk_v2(h, 0x21, 0x11, body, bn);
        CHECK(parse(h, n, &info, &consumed) == PP_ERROR);
    }
    /* a NUL inside the authority; a repeated ALPN */
    bn = 12;
    add_tlv(body, &bn, PP2_TYPE_AUTHORITY, "a\0b", 3);
    CHECK(parse(h, mk_v2(h, 0x21, 0x11, body, bn), &info, &consumed) == PP_ERROR);
    bn = 12;
    add_tlv(body, &bn, PP2_TYPE_ALPN, "h2", 2);
    add_tlv(body, &bn, PP2_TYPE_ALPN, "h2", 2);
    CHECK(parse(h, mk_v2(h, 0x21, 0x11, body, bn), &info, &consumed) == PP_ERROR);
}

/* Builds an IPv4 header carrying an authority and a CRC32c TLV computed as the spec says. */
static size_t mk_v2_crc(uint8_t *h)
{
    uint8_t body[64];
    size_t bn = 12;
    memcpy(body, v4_body, 12);
    add_tlv(body, &bn, PP2_TYPE_AUTHORITY, "a.example", 9);
    add_tlv(body, &bn, PP2_TYPE_CRC32C, "\0\0\0\0", 4);
    size_t n = mk_v2(h, 0x21, 0x11, body, bn);
    uint32_t crc = pp_crc32c(h, n);
    h[n - 4] = (uint8_t)(crc >> 24);
    h[n - 3] = (uint8_t)(crc >> 16);
    h[n - 2] = (uint8_t)(crc >> 8);
    h[n - 1] = (uint8_t)crc;
    return n;
}

TEST(proxy_v2_crc32c)
{
    /* RFC 3720 B.4 check value of CRC32c */
    CHECK_EQ_U64(pp_crc32c("123456789", 9), 0xe3069283);
    CHECK_EQ_U64(pp_crc32c("", 0), 0);
    uint8_t h[128];
    struct pp_info info;
    size_t consumed;
    size_t n = mk_v2_crc(h);
    CHECK(parse(h, n, &info, &consumed) == PP_OK);
    CHECK(info.crc32c_checked);
    CHECK(strcmp(info.authority, "a.example") == 0);
    check_prefixes(h, n);
    /* any flipped bit, in the checksum or elsewhere past the signature, is refused */
    for (size_t i = 16; i < n; i++) {
        n = mk_v2_crc(h);
        h[i] ^= 0x01;
        if (parse(h, n, &info, &consumed) != PP_ERROR)
            test_fail(__FILE__, __LINE__, "flip at byte %zu accepted", i);
    }
    /* a CRC32c TLV must be 4 bytes */
    uint8_t body[32];
    size_t bn = 12;
    memcpy(body, v4_body, 12);
    add_tlv(body, &bn, PP2_TYPE_CRC32C, "\0\0\0", 3);
    CHECK(parse(h, mk_v2(h, 0x21, 0x11, body, bn), &info, &consumed) == PP_ERROR);
}

/* ---- builders and round trips ---- */

static void roundtrip(const char *sip, uint16_t sp, const char *dip, uint16_t dp,
                      const char *want_v1, int line)
{
    struct sockaddr_any s = mk_addr(sip, sp), d = mk_addr(dip, dp);
    char v1[PP_V1_BUILD_MAX];
    uint8_t v2[PP_V2_BUILD_MAX];
    struct pp_info info;
    size_t consumed;
    ssize_t n1 = pp_build_v1(&s, &d, v1, sizeof(v1));
    ssize_t n2 = pp_build_v2(&s, &d, v2, sizeof(v2));
    if (n1 < 0 || n2 < 0) {
        test_fail(__FILE__, line, "build failed");
        return;
    }
    if (want_v1 && ((size_t)n1 != strlen(want_v1) || memcmp(v1, want_v1, (size_t)n1) != 0))
        test_fail(__FILE__, line, "v1 built \"%.*s\"", (int)n1 - 2, v1);
    for (int v = 1; v <= 2; v++) {
        const void *b = v == 1 ? (const void *)v1 : v2;
        size_t n = (size_t)(v == 1 ? n1 : n2);
        if (parse(b, n, &info, &consumed) != PP_OK || consumed != n || info.version != v) {
            test_fail(__FILE__, line, "v%d: built header does not parse back", v);
            continue;
        }
        bool mixed = s.u.sa.sa_family != d.u.sa.sa_family;
        if (!mixed && (!addr_equal(&info.src, &s) || !addr_equal(&info.dst, &d)))
            test_fail(__FILE__, line, "v%d: addresses changed", v);
        check_prefixes(b, n);
        for (size_t cap = 0; cap < n; cap++)
            if ((v == 1 ? pp_build_v1(&s, &d, v1, cap) : pp_build_v2(&s, &d, v2, cap)) != -1)
                test_fail(__FILE__, line, "v%d: cap %zu accepted", v, cap);
    }
}

TEST(proxy_roundtrip)
{
    roundtrip("192.168.0.1", 56324, "192.168.0.11", 443,
              "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", __LINE__);
    roundtrip("0.0.0.0", 0, "255.255.255.255", 65535,
              "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", __LINE__);
    roundtrip("2001:db8::1", 1, "::1", 2, "PROXY TCP6 2001:db8::1 ::1 1 2\r\n", __LINE__);
    roundtrip("::", 1, "1::", 2, "PROXY TCP6 :: 1:: 1 2\r\n", __LINE__);
    roundtrip("1:0:0:1:0:0:0:1", 1, "1:0:0:1:0:0:1:0", 2,
              "PROXY TCP6 1:0:0:1::1 1::1:0:0:1:0 1 2\r\n", __LINE__);
    roundtrip("1:2:3:4:5:6:7:0", 1, "0:2:3:4:5:6:7:8", 2,
              "PROXY TCP6 1:2:3:4:5:6:7:0 0:2:3:4:5:6:7:8 1 2\r\n", __LINE__);
    roundtrip("ABCD:EF01::ffff:10.0.0.1", 1, "::ffff:10.0.0.1", 2,
              "PROXY TCP6 abcd:ef01::ffff:a00:1 ::ffff:a00:1 1 2\r\n", __LINE__);
    roundtrip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
              "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, NULL, __LINE__);
    /* mixed families: IPv6 with the IPv4 address mapped */
    roundtrip("10.1.2.3", 80, "2001:db8::5", 443,
              "PROXY TCP6 ::ffff:a01:203 2001:db8::5 80 443\r\n", __LINE__);
}

TEST(proxy_build_mixed_and_local)
{
    struct sockaddr_any s = mk_addr("10.1.2.3", 80), d = mk_addr("2001:db8::5", 443), u;
    uint8_t v2[PP_V2_BUILD_MAX];
    char v1[PP_V1_BUILD_MAX];
    struct pp_info info;
    size_t consumed;
    ssize_t n = pp_build_v2(&s, &d, v2, sizeof(v2));
    CHECK_EQ_U64(n, 52);
    CHECK(parse(v2, (size_t)n, &info, &consumed) == PP_OK);
    CHECK(same_addr(&info.src, "::ffff:10.1.2.3", 80));
    CHECK(same_addr(&info.dst, "2001:db8::5", 443));
    /* no addresses: UNKNOWN / LOCAL */
    n = pp_build_v1(NULL, NULL, v1, sizeof(v1));
    CHECK(n == 15 && memcmp(v1, "PROXY UNKNOWN\r\n", 15) == 0);
    n = pp_build_v2(NULL, &d, v2, sizeof(v2));
    CHECK_EQ_U64(n, 16);
    CHECK(v2[12] == 0x20 && v2[13] == 0x00);
    CHECK(parse(v2, 16, &info, &consumed) == PP_OK && info.local);
    /* a family PROXY cannot carry: UNKNOWN / PROXY with AF_UNSPEC */
    memset(&u, 0, sizeof(u));
    u.u.sa.sa_family = AF_UNIX;
    n = pp_build_v1(&u, &d, v1, sizeof(v1));
    CHECK(n == 15 && memcmp(v1, "PROXY UNKNOWN\r\n", 15) == 0);
    n = pp_build_v2(&s, &u, v2, sizeof(v2));
    CHECK_EQ_U64(n, 16);
    CHECK(v2[12] == 0x21 && v2[13] == 0x00);
    CHECK(parse(v2, 16, &info, &consumed) == PP_OK && info.local);
    CHECK(pp_build_v2(NULL, NULL, v2, 15) == -1);
    CHECK(pp_build_v1(NULL, NULL, v1, 14) == -1);
}
