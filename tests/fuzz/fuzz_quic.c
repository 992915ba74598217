/* fuzz_quic.c — libFuzzer target for the QUIC header parser and QUIC-LB (src/net/quic.c).
 * Input: one parameter byte (short-header DCID length = byte % 21), then the datagram.
 * Checked beyond "no crash": a result comes with a reason exactly when it fails; every
 * pointer lies inside the datagram; the fields agree with the wire bytes; the first packet
 * alone (pkt_len bytes) parses the same; quic_lb_server_id agrees with its definition for
 * every server ID length and config id; the builders' packets parse back.
 */
#include <stdlib.h>
#include <string.h>

#include "net/quic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static int inside(const uint8_t *buf, size_t len, const uint8_t *p, size_t n)
{
    if (p == NULL)
        return n == 0;
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

/* The header agrees with the bytes it was read from. */
static void check_fields(const uint8_t *pkt, size_t len, size_t sdl, const struct quic_hdr *h)
{
    REQUIRE(len >= 1 && h->pkt_len <= len);
    REQUIRE(inside(pkt, len, h->dcid, h->dcid_len) && h->dcid != NULL);
    REQUIRE(inside(pkt, len, h->scid, h->scid_len));
    REQUIRE(inside(pkt, len, h->token, h->token_len));
    REQUIRE(h->is_long == !!(pkt[0] & 0x80) && h->fixed_bit == !!(pkt[0] & 0x40));
    if (!h->is_long) {
        REQUIRE(h->type == QUIC_PKT_1RTT && h->version == 0 && h->scid == NULL);
        REQUIRE(h->dcid == pkt + 1 && h->dcid_len == sdl && h->pkt_len == len);
        return;
    }
    uint32_t v = (uint32_t)pkt[1] << 24 | (uint32_t)pkt[2] << 16 | (uint32_t)pkt[3] << 8 | pkt[4];
    REQUIRE(h->version == v);
    REQUIRE(h->dcid == pkt + 6 && h->dcid_len == pkt[5]);
    REQUIRE(h->scid == h->dcid + h->dcid_len + 1 && h->scid_len == h->dcid[h->dcid_len]);
    size_t hdr_end = (size_t)(h->scid - pkt) + h->scid_len;
    REQUIRE(h->pkt_len >= hdr_end);
    if (v == QUIC_VERSION_1 || v == QUIC_VERSION_2) {
        REQUIRE(h->dcid_len <= QUIC_V1_CID_MAX && h->scid_len <= QUIC_V1_CID_MAX);
        REQUIRE(h->type <= QUIC_PKT_RETRY);
    } else {
        REQUIRE(h->type == (v == 0 ? QUIC_PKT_VERSION_NEG : QUIC_PKT_UNKNOWN));
        REQUIRE(h->pkt_len == len && h->token == NULL);
    }
}

static int same_hdr(const struct quic_hdr *a, const struct quic_hdr *b)
{
    return a->is_long == b->is_long && a->fixed_bit == b->fixed_bit && a->type == b->type &&
           a->version == b->version && a->dcid == b->dcid && a->dcid_len == b->dcid_len &&
           a->scid == b->scid && a->scid_len == b->scid_len && a->token == b->token &&
           a->token_len == b->token_len && a->pkt_len == b->pkt_len;
}

/* The server ID answer for every length and config id, against its definition. */
static void check_lb(const uint8_t *cid, size_t len)
{
    for (size_t sl = 0; sl <= 21; sl++) {
        for (unsigned cfg = 0; cfg <= 8; cfg++) {
            const uint8_t *sid = (const uint8_t *)"unset";
            int rc = quic_lb_server_id(cid, len, sl, (uint8_t)cfg, &sid);
            int want =
                cfg <= QUIC_LB_CONFIG_MAX && sl >= 1 && len >= 1 + sl && (cid[0] >> 5) == cfg;
            REQUIRE(rc == (want ? 0 : -1));
            REQUIRE(want ? sid == cid + 1 : sid == NULL);
        }
    }
}

/* CIDs taken from the input build packets that parse back to them. */
static void check_builders(const uint8_t *data, size_t size)
{
    static uint8_t out[QUIC_MIN_INITIAL_DATAGRAM];
    struct quic_hdr h;
    size_t dlen = size % 21, slen = (size / 21) % 21;
    if (size < dlen + slen)
        return;
    size_t n = quic_build_initial(out, sizeof(out), data, dlen, data + dlen, slen);
    REQUIRE(n == QUIC_MIN_INITIAL_DATAGRAM);
    REQUIRE(quic_parse(out, n, 0, &h, NULL) == 0 && h.type == QUIC_PKT_INITIAL);
    REQUIRE(h.dcid_len == dlen && (dlen == 0 || memcmp(h.dcid, data, dlen) == 0));
    REQUIRE(h.scid_len == slen && (slen == 0 || memcmp(h.scid, data + dlen, slen) == 0));
    n = quic_build_short(out, sizeof(out), data, dlen);
    REQUIRE(n > 0 && quic_parse(out, n, dlen, &h, NULL) == 0 && h.dcid_len == dlen);
    REQUIRE(dlen == 0 || memcmp(h.dcid, data, dlen) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t sdl = data[0] % 21;
    const uint8_t *pkt = data + 1;
    size_t len = size - 1;
    struct quic_hdr h, first;
    const char *why = "unset";
    check_builders(pkt, len);
    int rc = quic_parse(pkt, len, sdl, &h, &why);
    REQUIRE(rc == 0 || rc == -1);
    REQUIRE(rc == 0 ? why == NULL : why != NULL);
    if (rc < 0)
        return 0;
    check_fields(pkt, len, sdl, &h);
    /* the first packet alone parses to the same header */
    REQUIRE(quic_parse(pkt, h.pkt_len, sdl, &first, NULL) == 0);
    REQUIRE(same_hdr(&first, &h));
    if (h.dcid_len > 0)
        check_lb(h.dcid, h.dcid_len);
    REQUIRE(quic_dcid_hash(h.dcid, h.dcid_len) == quic_dcid_hash(h.dcid, h.dcid_len));
    return 0;
}
