/* test_quic.c — QUIC header parsing, QUIC-LB server IDs and DCID hashing (src/net/quic.c).
 * Fixtures are the published vectors of RFC 9001 Appendix A (v1) and RFC 9369 Appendix A
 * (v2), whose protected payloads are replaced by zeros where only their length matters, and
 * hand-built headers for the rest. Every fixture is also parsed at every prefix, from an
 * exact-size heap copy so that the sanitizer build catches any read past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "net/quic.h"
#include "test.h"

/* Decodes hex (spaces allowed) into out; returns the byte count. */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        int v;
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else if (n < cap) {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

/* A datagram: the hex bytes, then zeros up to total (0: no padding). */
static size_t fixture(uint8_t *out, size_t cap, const char *hex, size_t total)
{
    size_t n = unhex(hex, out, cap);
    if (total > n && total <= cap) {
        memset(out + n, 0, total - n);
        n = total;
    }
    return n;
}

static int parse(const uint8_t *p, size_t len, size_t sdl, struct quic_hdr *h, const char **why)
{
    return quic_parse(p, len, sdl, h, why);
}

static bool bytes_eq(const uint8_t *p, size_t n, const char *hex)
{
    uint8_t want[256];
    size_t wn = unhex(hex, want, sizeof(want));
    return n == wn && (n == 0 || memcmp(p, want, n) == 0);
}

static bool all_zero(const struct quic_hdr *h)
{
    static const struct quic_hdr zero;
    return memcmp(h, &zero, sizeof(zero)) == 0;
}

/* Parses every prefix pkt[0..i) from an exact-size copy: -1 (with a reason and a zeroed
 * header) below min_ok, 0 from min_ok on. */
static void check_prefixes(const uint8_t *pkt, size_t len, size_t sdl, size_t min_ok)
{
    for (size_t i = 0; i <= len; i++) {
        uint8_t *copy = malloc(i ? i : 1);
        struct quic_hdr h;
        const char *why = "unset";
        memcpy(copy, pkt, i);
        int rc = quic_parse(copy, i, sdl, &h, &why);
        if (rc != (i < min_ok ? -1 : 0))
            test_fail(__FILE__, __LINE__, "prefix %zu of %zu: rc %d", i, len, rc);
        else if (rc < 0)
            CHECK(why != NULL && all_zero(&h));
        else
            CHECK(why == NULL && h.dcid >= copy && h.dcid + h.dcid_len <= copy + i &&
                  h.pkt_len <= i);
        free(copy);
    }
}

/* RFC 9001 A.2: the client Initial (DCID 8394c8f03e515708, Length 1182), as protected. */
#define V1_CLIENT_INITIAL_HDR "c000000001088394c8f03e5157080000449e7b9aec34"
/* RFC 9001 A.3: the server Initial, whole (135 bytes). */
#define V1_SERVER_INITIAL                                                                          \
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a"                             \
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3"                             \
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84"                             \
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4"                             \
    "2158407dd074ee"
/* RFC 9001 A.4: Retry with token "token". */
#define V1_RETRY "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba"
/* RFC 9001 A.5: a short header with an empty DCID (ChaCha20-Poly1305). */
#define V1_SHORT_CHACHA "4cfe4189655e5cd55c41f69080575d7999c25a5bfb"
/* RFC 9369 A.2 and A.4: the v2 client Initial header and the v2 Retry. */
#define V2_CLIENT_INITIAL_HDR "d76b3343cf088394c8f03e5157080000449ea0c95e82"
#define V2_RETRY "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6"

TEST(quic_v1_client_initial)
{
    uint8_t p[1200];
    struct quic_hdr h;
    const char *why = "unset";
    size_t n = fixture(p, sizeof(p), V1_CLIENT_INITIAL_HDR, 1200);
    CHECK(parse(p, n, 8, &h, &why) == 0 && why == NULL);
    CHECK(h.is_long && h.fixed_bit);
    CHECK_EQ_U64(h.version, QUIC_VERSION_1);
    CHECK_EQ_U64(h.type, QUIC_PKT_INITIAL);
    CHECK(h.dcid == p + 6 && bytes_eq(h.dcid, h.dcid_len, "8394c8f03e515708"));
    CHECK_EQ_U64(h.scid_len, 0);
    CHECK(h.token != NULL && h.token_len == 0);
    CHECK_EQ_U64(h.pkt_len, 1200); /* 18 header bytes + Length 1182 */
    check_prefixes(p, n, 8, 1200);
}

TEST(quic_v1_server_initial_and_retry)
{
    uint8_t p[256];
    struct quic_hdr h;
    size_t n = fixture(p, sizeof(p), V1_SERVER_INITIAL, 0);
    CHECK_EQ_U64(n, 135);
    CHECK(parse(p, n, 0, &h, NULL) == 0);
    CHECK_EQ_U64(h.type, QUIC_PKT_INITIAL);
    CHECK_EQ_U64(h.dcid_len, 0);
    CHECK(bytes_eq(h.scid, h.scid_len, "f067a5502a4262b5"));
    CHECK_EQ_U64(h.pkt_len, 135);
    check_prefixes(p, n, 0, 135);

    n = fixture(p, sizeof(p), V1_RETRY, 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0);
    CHECK_EQ_U64(h.type, QUIC_PKT_RETRY);
    CHECK(bytes_eq(h.scid, h.scid_len, "f067a5502a4262b5"));
    CHECK(bytes_eq(h.token, h.token_len, "746f6b656e")); /* "token" */
    CHECK_EQ_U64(h.pkt_len, n);
    check_prefixes(p, n, 0, 15 + QUIC_RETRY_TAG_LEN); /* header 15 bytes + tag */
}

/* Hand-built v1 Handshake (type bits 10) and 0-RTT (01): flags, v1, DCID 4, SCID 2, Length. */
TEST(quic_v1_handshake_and_0rtt)
{
    uint8_t p[64];
    struct quic_hdr h;
    size_t n = fixture(p, sizeof(p), "e2 00000001 04 a1a2a3a4 02 b1b2 03 000102", 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0);
    CHECK_EQ_U64(h.type, QUIC_PKT_HANDSHAKE);
    CHECK(bytes_eq(h.dcid, h.dcid_len, "a1a2a3a4") && bytes_eq(h.scid, h.scid_len, "b1b2"));
    CHECK(h.token == NULL && h.token_len == 0);
    CHECK_EQ_U64(h.pkt_len, n);
    check_prefixes(p, n, 0, n);

    n = fixture(p, sizeof(p), "d1 00000001 04 a1a2a3a4 00 4002 0001", 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0); /* a 2-byte varint Length */
    CHECK_EQ_U64(h.type, QUIC_PKT_0RTT);
    CHECK_EQ_U64(h.scid_len, 0);
    CHECK_EQ_U64(h.pkt_len, n);
    check_prefixes(p, n, 0, n);
}

/* RFC 9369 §3.2: v2 numbers Initial 01, 0-RTT 10, Handshake 11, Retry 00. */
TEST(quic_v2_types)
{
    uint8_t p[1200];
    struct quic_hdr h;
    size_t n = fixture(p, sizeof(p), V2_CLIENT_INITIAL_HDR, 1200);
    CHECK(parse(p, n, 0, &h, NULL) == 0);
    CHECK_EQ_U64(h.version, QUIC_VERSION_2);
    CHECK_EQ_U64(h.type, QUIC_PKT_INITIAL);
    CHECK(bytes_eq(h.dcid, h.dcid_len, "8394c8f03e515708"));
    CHECK_EQ_U64(h.pkt_len, 1200);

    n = fixture(p, sizeof(p), V2_RETRY, 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0);
    CHECK_EQ_U64(h.type, QUIC_PKT_RETRY);
    CHECK(bytes_eq(h.token, h.token_len, "746f6b656e"));

    n = fixture(p, sizeof(p), "e0 6b3343cf 01 aa 00 01 00", 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.type == QUIC_PKT_0RTT);
    p[0] = 0xf0;
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.type == QUIC_PKT_HANDSHAKE);
    /* Initial: the token length (0) comes first, then Length 1 */
    n = fixture(p, sizeof(p), "d0 6b3343cf 01 aa 00 00 01 00", 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.type == QUIC_PKT_INITIAL);
}

TEST(quic_version_negotiation)
{
    uint8_t p[128];
    struct quic_hdr h;
    const char *why;
    /* unused bits random, fixed bit clear; lists v1 and v2 */
    size_t n = fixture(p, sizeof(p), "8a 00000000 08 0102030405060708 00 00000001 6b3343cf", 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0);
    CHECK(h.is_long && !h.fixed_bit);
    CHECK_EQ_U64(h.version, 0);
    CHECK_EQ_U64(h.type, QUIC_PKT_VERSION_NEG);
    CHECK(bytes_eq(h.dcid, h.dcid_len, "0102030405060708"));
    CHECK_EQ_U64(h.pkt_len, n);
    check_prefixes(p, n - 4, 0, n - 4);    /* needs one whole version... */
    for (size_t cut = 1; cut < 4; cut++) { /* ...and only whole ones */
        CHECK(parse(p, n - cut, 0, &h, &why) == -1);
        CHECK_STR_CONTAINS(why, "Version Negotiation");
    }

    /* CIDs echoed from an unknown version may exceed 20 bytes */
    memset(p, 0, sizeof(p));
    p[0] = 0xc0, p[5] = 21, p[27] = 30;
    CHECK(parse(p, 1 + 4 + 1 + 21 + 1 + 30 + 4, 0, &h, NULL) == 0);
    CHECK(h.dcid_len == 21 && h.scid_len == 30 && h.type == QUIC_PKT_VERSION_NEG);
}

TEST(quic_unknown_version_long_cids)
{
    static uint8_t p[1 + 4 + 1 + 255 + 1 + 255 + 3];
    struct quic_hdr h;
    const uint8_t head[] = {0xc3, 0x1a, 0x2a, 0x3a, 0x4a}; /* a reserved (greasing) version */
    memset(p, 0x5a, sizeof(p));
    memcpy(p, head, sizeof(head));
    p[5] = 255;
    p[5 + 1 + 255] = 255;
    CHECK(parse(p, sizeof(p), 0, &h, NULL) == 0);
    CHECK_EQ_U64(h.version, 0x1a2a3a4a);
    CHECK_EQ_U64(h.type, QUIC_PKT_UNKNOWN);
    CHECK(h.dcid == p + 6 && h.dcid_len == 255);
    CHECK(h.scid == p + 6 + 255 + 1 && h.scid_len == 255);
    CHECK_EQ_U64(h.pkt_len, sizeof(p));
    check_prefixes(p, sizeof(p), 0, sizeof(p) - 3); /* opaque after the SCID */
}

TEST(quic_cid_over_20_for_known_versions)
{
    uint8_t p[128];
    struct quic_hdr h;
    const char *why;
    const uint32_t versions[] = {QUIC_VERSION_1, QUIC_VERSION_2};
    for (size_t i = 0; i < 2; i++) {
        memset(p, 0, sizeof(p));
        p[0] = 0xc0;
        p[1] = (uint8_t)(versions[i] >> 24), p[2] = (uint8_t)(versions[i] >> 16);
        p[3] = (uint8_t)(versions[i] >> 8), p[4] = (uint8_t)versions[i];
        p[5] = 21;
        CHECK(parse(p, sizeof(p), 0, &h, &why) == -1 && all_zero(&h));
        CHECK_STR_CONTAINS(why, "DCID longer than 20");
        p[5] = 20; /* DCID fine, SCID 21 */
        p[26] = 21;
        CHECK(parse(p, sizeof(p), 0, &h, &why) == -1);
        CHECK_STR_CONTAINS(why, "SCID longer than 20");
        p[26] = 20; /* both 20: an Initial, token 0, Length 0 */
        CHECK(parse(p, sizeof(p), 0, &h, &why) == 0 && h.dcid_len == 20 && h.scid_len == 20);
    }
}

TEST(quic_short_header)
{
    uint8_t p[64];
    const uint8_t cid[8] = {0x0a, 0x01, 0xc4, 0x60, 0x5e, 0x45, 0x04, 0xcc};
    struct quic_hdr h;
    const char *why;
    size_t n = quic_build_short(p, sizeof(p), cid, sizeof(cid));
    CHECK_EQ_U64(n, 1 + 8 + 21);
    CHECK(parse(p, n, 8, &h, &why) == 0 && why == NULL);
    CHECK(!h.is_long && h.fixed_bit);
    CHECK_EQ_U64(h.type, QUIC_PKT_1RTT);
    CHECK_EQ_U64(h.version, 0);
    CHECK(h.dcid == p + 1 && h.dcid_len == 8 && memcmp(h.dcid, cid, 8) == 0);
    CHECK(h.scid == NULL && h.scid_len == 0);
    CHECK_EQ_U64(h.pkt_len, n);
    check_prefixes(p, n, 8, 9);

    /* the configured length rules: 0 is a zero-length DCID, over 20 is refused */
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.dcid_len == 0);
    CHECK(parse(p, n, 20, &h, NULL) == 0 && h.dcid_len == 20);
    CHECK(parse(p, n, 21, &h, &why) == -1);
    CHECK_STR_CONTAINS(why, "exceeds 20");

    n = fixture(p, sizeof(p), V1_SHORT_CHACHA, 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.dcid_len == 0 && h.type == QUIC_PKT_1RTT);
    CHECK(parse(p, 10, 20, &h, &why) == -1); /* the configured DCID does not fit */
    CHECK_STR_CONTAINS(why, "shorter than its DCID");
}

/* The fixed bit is reported, not enforced (RFC 9287 greasing; see quic.h). */
TEST(quic_fixed_bit_reported)
{
    uint8_t p[1200];
    const uint8_t cid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct quic_hdr h;
    size_t n = quic_build_initial(p, sizeof(p), cid, 8, NULL, 0);
    p[0] &= (uint8_t)~0x40;
    CHECK(parse(p, n, 8, &h, NULL) == 0 && h.is_long && !h.fixed_bit);
    CHECK_EQ_U64(h.type, QUIC_PKT_INITIAL);
    n = quic_build_short(p, sizeof(p), cid, 8);
    p[0] = 0x00;
    CHECK(parse(p, n, 8, &h, NULL) == 0 && !h.is_long && !h.fixed_bit);
}

TEST(quic_initial_token_and_length)
{
    uint8_t p[64];
    struct quic_hdr h;
    const char *why;
    size_t n = fixture(p, sizeof(p), "c0 00000001 01 aa 01 bb 05 746f6b656e 02 0000", 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0);
    CHECK(bytes_eq(h.token, h.token_len, "746f6b656e"));
    CHECK_EQ_U64(h.pkt_len, n);
    check_prefixes(p, n, 0, n);

    n = fixture(p, sizeof(p), "c0 00000001 01 aa 01 bb 06 746f6b656e", 0);
    CHECK(parse(p, n, 0, &h, &why) == -1);
    CHECK_STR_CONTAINS(why, "token overruns");
    /* an 8-byte varint token length near 2^62 must not wrap */
    n = fixture(p, sizeof(p), "c0 00000001 01 aa 01 bb ffffffffffffffff 00 00", 0);
    CHECK(parse(p, n, 0, &h, &why) == -1);
    CHECK_STR_CONTAINS(why, "token overruns");
    n = fixture(p, sizeof(p), "e0 00000001 01 aa 01 bb bfffffff 00", 0);
    CHECK(parse(p, n, 0, &h, &why) == -1);
    CHECK_STR_CONTAINS(why, "Length field overruns");
}

/* Coalesced packets (RFC 9000 §12.2): pkt_len says where the next one starts. */
TEST(quic_coalesced)
{
    uint8_t p[256];
    struct quic_hdr h, h2;
    size_t n = fixture(p, sizeof(p), V1_SERVER_INITIAL, 0);
    n += unhex("e0 00000001 00 08 f067a5502a4262b5 02 0000", p + n, sizeof(p) - n);
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.type == QUIC_PKT_INITIAL);
    CHECK_EQ_U64(h.pkt_len, 135);
    CHECK(parse(p + h.pkt_len, n - h.pkt_len, 0, &h2, NULL) == 0);
    CHECK(h2.type == QUIC_PKT_HANDSHAKE && h2.pkt_len == n - h.pkt_len);
}

TEST(quic_empty_and_null_why)
{
    struct quic_hdr h;
    const char *why = "unset";
    CHECK(quic_parse(NULL, 0, 8, &h, &why) == -1 && all_zero(&h));
    CHECK_STR_CONTAINS(why, "empty");
    CHECK(quic_parse((const uint8_t *)"\xc0", 1, 8, &h, NULL) == -1);
}

/* draft-ietf-quic-load-balancers-21 Appendix: unencrypted CID, config 0, server ID c4605e,
 * nonce 4504cc4f, first octet 0x07 (config 0, self-encoded length 8 - 1). */
TEST(quic_lb_server_id_vector)
{
    uint8_t cid[8];
    const uint8_t *sid = (const uint8_t *)"unset";
    unhex("07c4605e4504cc4f", cid, sizeof(cid));
    CHECK(quic_lb_server_id(cid, 8, 3, 0, &sid) == 0);
    CHECK(sid == cid + 1 && bytes_eq(sid, 3, "c4605e"));
    CHECK(quic_lb_server_id(cid, 8, 3, 1, &sid) == -1 && sid == NULL);
}

TEST(quic_lb_server_id_lengths_and_configs)
{
    uint8_t cid[20];
    const uint8_t *sid;
    for (size_t i = 0; i < sizeof(cid); i++)
        cid[i] = (uint8_t)(0x10 + i);
    for (uint8_t cfg = 0; cfg <= QUIC_LB_CONFIG_MAX; cfg++) {
        cid[0] = (uint8_t)(cfg << 5 | 0x13);
        for (size_t len = 0; len <= sizeof(cid); len++) {
            for (size_t sl = 0; sl <= 20; sl++) {
                int want = sl >= 1 && len >= 1 + sl ? 0 : -1;
                int rc = quic_lb_server_id(cid, len, sl, cfg, &sid);
                CHECK(rc == want);
                CHECK(rc == 0 ? sid == cid + 1 : sid == NULL);
                /* another config: never routable */
                CHECK(quic_lb_server_id(cid, len, sl, (uint8_t)((cfg + 1) % 7), &sid) == -1);
            }
        }
    }
    CHECK(quic_lb_server_id(cid, 20, 2, 0, NULL) == -1); /* cid[0] is config 6 now */
    cid[0] = 0x1f;
    CHECK(quic_lb_server_id(cid, 20, 2, 0, NULL) == 0); /* sid may be NULL */
    CHECK(quic_lb_server_id(NULL, 0, 2, 0, &sid) == -1);
}

TEST(quic_lb_unroutable)
{
    uint8_t cid[8] = {0xe7, 0x0a, 0x01, 1, 2, 3, 4, 5}; /* codepoint 0b111 */
    const uint8_t *sid;
    CHECK_EQ_U64(quic_lb_config_rotation(cid[0]), QUIC_LB_UNROUTABLE);
    for (uint8_t cfg = 0; cfg <= 7; cfg++)
        CHECK(quic_lb_server_id(cid, 8, 2, cfg, &sid) == -1 && sid == NULL);
    cid[0] = 0xff;
    CHECK(quic_lb_server_id(cid, 8, 2, 7, &sid) == -1);
    cid[0] = 0x07;                                      /* config 0 */
    CHECK(quic_lb_server_id(cid, 8, 2, 8, &sid) == -1); /* config_id out of range */
    CHECK(quic_lb_server_id(cid, 8, 2, 0, &sid) == 0 && bytes_eq(sid, 2, "0a01"));
}

TEST(quic_lb_config_valid)
{
    const char *why;
    CHECK(quic_lb_config_valid(8, 2, 0, &why) && why == NULL);
    CHECK(quic_lb_config_valid(20, 15, 6, NULL));
    CHECK(quic_lb_config_valid(7, 2, 0, NULL)); /* 1 + 2 + 4 */
    CHECK(!quic_lb_config_valid(6, 2, 0, &why));
    CHECK_STR_CONTAINS(why, "nonce");
    CHECK(!quic_lb_config_valid(8, 2, 7, &why));
    CHECK_STR_CONTAINS(why, "config_id");
    CHECK(!quic_lb_config_valid(20, 0, 0, &why) && !quic_lb_config_valid(20, 16, 0, &why));
    CHECK_STR_CONTAINS(why, "server_id_length");
    CHECK(!quic_lb_config_valid(21, 2, 0, &why));
    CHECK_STR_CONTAINS(why, "20 bytes");
}

TEST(quic_dcid_hash_stable)
{
    const uint8_t a[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
    uint8_t b[8];
    memcpy(b, a, sizeof(b));
    CHECK_EQ_U64(quic_dcid_hash(a, 8), quic_dcid_hash(b, 8));
    /* pinned: a change here reroutes every in-flight handshake across an upgrade */
    CHECK_EQ_U64(quic_dcid_hash(a, 8), 0x96c7cfcf60c622e8ull);
    CHECK_EQ_U64(quic_dcid_hash(a, 8), hash64(a, 8, 0x717569632d636964ull));
    b[7] ^= 1;
    CHECK(quic_dcid_hash(a, 8) != quic_dcid_hash(b, 8));
    CHECK(quic_dcid_hash(a, 8) != quic_dcid_hash(a, 7));
}

TEST(quic_builders)
{
    uint8_t p[1300], cid[21];
    struct quic_hdr h;
    memset(cid, 0xab, sizeof(cid));
    size_t n = quic_build_initial(p, sizeof(p), cid, 20, cid, 20);
    CHECK_EQ_U64(n, QUIC_MIN_INITIAL_DATAGRAM);
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.type == QUIC_PKT_INITIAL && h.pkt_len == n);
    CHECK(h.dcid_len == 20 && h.scid_len == 20 && h.token_len == 0);
    CHECK_EQ_U64(quic_build_initial(p, 1199, cid, 8, cid, 8), 0);
    CHECK_EQ_U64(quic_build_initial(p, sizeof(p), cid, 21, cid, 8), 0);
    CHECK_EQ_U64(quic_build_initial(p, sizeof(p), cid, 8, cid, 21), 0);
    n = quic_build_initial(p, sizeof(p), NULL, 0, NULL, 0);
    CHECK(parse(p, n, 0, &h, NULL) == 0 && h.dcid_len == 0 && h.pkt_len == 1200);

    CHECK_EQ_U64(quic_build_short(p, 1 + 20 + 21, cid, 20), 42);
    CHECK_EQ_U64(quic_build_short(p, 1 + 20 + 20, cid, 20), 0);
    CHECK_EQ_U64(quic_build_short(p, sizeof(p), cid, 21), 0);
}
