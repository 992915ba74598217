/* quic.c — see quic.h. A bounds-checked cursor walks the header in place; nothing is copied.
 * References: RFC 8999 §5 (invariant long and short headers), RFC 9000 §16 (variable-length
 * integers) and §17.2 (long header packets), RFC 9369 §3.2 (v2 type codes),
 * draft-ietf-quic-load-balancers-21 §3 (first octet) and §5 (CID format).
 */
#include "net/quic.h"

#include <string.h>

#include "core/hash.h"

#define QUIC_FORM_LONG 0x80
#define QUIC_FIXED_BIT 0x40
#define QUIC_LONG_TYPE_SHIFT 4
#define QUIC_DCID_HASH_SEED 0x717569632d636964ull /* "quic-cid": fixed, see quic_dcid_hash */

/* Reads the header. Invariant: pos <= len; every read checks len - pos first (no overflow). */
struct cursor {
    const uint8_t *p;
    size_t len;
    size_t pos;
    const char *why; /* set by the read that failed */
};

static int cur_fail(struct cursor *c, const char *why)
{
    c->why = why;
    return -1;
}

static int cur_u8(struct cursor *c, uint8_t *v, const char *why)
{
    if (c->len - c->pos < 1)
        return cur_fail(c, why);
    *v = c->p[c->pos++];
    return 0;
}

/* Points *at at the next n bytes and steps over them. */
static int cur_bytes(struct cursor *c, size_t n, const uint8_t **at, const char *why)
{
    if (c->len - c->pos < n)
        return cur_fail(c, why);
    *at = c->p + c->pos;
    c->pos += n;
    return 0;
}

/* A variable-length integer (RFC 9000 §16): the top 2 bits of the first byte give its size,
 * 1, 2, 4 or 8 bytes; the value is the remaining bits, big-endian (at most 2^62 - 1). */
static int cur_varint(struct cursor *c, uint64_t *v, const char *why)
{
    if (c->len - c->pos < 1)
        return cur_fail(c, why);
    size_t n = (size_t)1 << (c->p[c->pos] >> 6);
    if (c->len - c->pos < n)
        return cur_fail(c, why);
    uint64_t x = c->p[c->pos] & 0x3f;
    for (size_t i = 1; i < n; i++)
        x = x << 8 | c->p[c->pos + i];
    c->pos += n;
    *v = x;
    return 0;
}

/* A length byte then that many bytes of connection ID, at most max. The reasons: the length
 * is over max; the datagram ends first. */
static int cur_cid(struct cursor *c, size_t max, const uint8_t **cid, size_t *cid_len,
                   const char *too_long, const char *truncated)
{
    uint8_t n;
    if (cur_u8(c, &n, truncated) < 0)
        return -1;
    if (n > max)
        return cur_fail(c, too_long);
    *cid_len = n;
    return cur_bytes(c, n, cid, truncated);
}

static bool version_known(uint32_t version)
{
    return version == QUIC_VERSION_1 || version == QUIC_VERSION_2;
}

/* The long header type of a known version: v1 codes Initial 0, 0-RTT 1, Handshake 2,
 * Retry 3; v2 codes them 1, 2, 3, 0 (RFC 9369 §3.2), one step further round. */
static enum quic_pkt_type long_type(uint32_t version, uint8_t first)
{
    static const enum quic_pkt_type v1_types[4] = {QUIC_PKT_INITIAL, QUIC_PKT_0RTT,
                                                   QUIC_PKT_HANDSHAKE, QUIC_PKT_RETRY};
    unsigned bits = (first >> QUIC_LONG_TYPE_SHIFT) & 3;
    if (version == QUIC_VERSION_2)
        bits = (bits + 3) & 3;
    return v1_types[bits];
}

/* After the SCID of a known version: Initial token, Length, or the Retry token and tag.
 * Sets token and pkt_len. */
static int parse_v1_rest(struct cursor *c, struct quic_hdr *out)
{
    uint64_t n;
    if (out->type == QUIC_PKT_RETRY) {
        if (c->len - c->pos < QUIC_RETRY_TAG_LEN)
            return cur_fail(c, "Retry packet shorter than its integrity tag");
        out->token = c->p + c->pos;
        out->token_len = c->len - c->pos - QUIC_RETRY_TAG_LEN;
        out->pkt_len = c->len;
        return 0;
    }
    if (out->type == QUIC_PKT_INITIAL) {
        if (cur_varint(c, &n, "truncated Initial token length") < 0)
            return -1;
        if (n > c->len - c->pos) /* compared as uint64_t: no truncation where size_t is 32 */
            return cur_fail(c, "Initial token overruns the datagram");
        out->token = c->p + c->pos;
        out->token_len = (size_t)n;
        c->pos += (size_t)n;
    }
    if (cur_varint(c, &n, "truncated Length field") < 0)
        return -1;
    if (n > c->len - c->pos)
        return cur_fail(c, "Length field overruns the datagram");
    out->pkt_len = c->pos + (size_t)n;
    return 0;
}

/* Long header (RFC 8999 §5.1): flags, version, DCID, SCID, then version-specific. */
static int parse_long(struct cursor *c, struct quic_hdr *out)
{
    const uint8_t *v;
    if (cur_bytes(c, 4, &v, "truncated version") < 0)
        return -1;
    out->version = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    bool known = version_known(out->version);
    size_t max = known ? QUIC_V1_CID_MAX : QUIC_CID_MAX;
    if (cur_cid(c, max, &out->dcid, &out->dcid_len, "DCID longer than 20 bytes for QUIC v1/v2",
                "truncated destination connection ID") < 0)
        return -1;
    if (cur_cid(c, max, &out->scid, &out->scid_len, "SCID longer than 20 bytes for QUIC v1/v2",
                "truncated source connection ID") < 0)
        return -1;
    if (out->version == QUIC_VERSION_NEG) {
        size_t rest = c->len - c->pos;
        if (rest == 0 || rest % 4 != 0)
            return cur_fail(c, "Version Negotiation list is empty or not whole versions");
        out->type = QUIC_PKT_VERSION_NEG;
        out->pkt_len = c->len;
        return 0;
    }
    if (!known) {
        out->type = QUIC_PKT_UNKNOWN;
        out->pkt_len = c->len;
        return 0;
    }
    out->type = long_type(out->version, c->p[0]);
    return parse_v1_rest(c, out);
}

/* Short header (RFC 8999 §5.2): flags, then a DCID of the configured length. */
static int parse_short(struct cursor *c, size_t dcid_len, struct quic_hdr *out)
{
    if (dcid_len > QUIC_V1_CID_MAX)
        return cur_fail(c, "configured short-header DCID length exceeds 20");
    if (cur_bytes(c, dcid_len, &out->dcid, "short header shorter than its DCID") < 0)
        return -1;
    out->dcid_len = dcid_len;
    out->type = QUIC_PKT_1RTT;
    out->pkt_len = c->len;
    return 0;
}

int quic_parse(const uint8_t *pkt, size_t len, size_t short_dcid_len, struct quic_hdr *out,
               const char **why)
{
    struct cursor c = {.p = pkt, .len = len};
    uint8_t first;
    int rc;
    memset(out, 0, sizeof(*out));
    if (cur_u8(&c, &first, "empty datagram") < 0) {
        rc = -1;
    } else {
        out->is_long = first & QUIC_FORM_LONG;
        out->fixed_bit = first & QUIC_FIXED_BIT;
        rc = out->is_long ? parse_long(&c, out) : parse_short(&c, short_dcid_len, out);
    }
    if (rc < 0)
        memset(out, 0, sizeof(*out));
    if (why)
        *why = rc < 0 ? c.why : NULL;
    return rc;
}

int quic_lb_server_id(const uint8_t *dcid, size_t dcid_len, size_t server_id_len, uint8_t config_id,
                      const uint8_t **sid)
{
    if (sid)
        *sid = NULL;
    if (config_id > QUIC_LB_CONFIG_MAX || server_id_len == 0)
        return -1;
    if (dcid_len < 1 || dcid_len - 1 < server_id_len)
        return -1;
    /* config_id <= 6, so this also refuses codepoint 0b111 */
    if (quic_lb_config_rotation(dcid[0]) != config_id)
        return -1;
    if (sid)
        *sid = dcid + 1;
    return 0;
}

bool quic_lb_config_valid(size_t cid_len, size_t server_id_len, unsigned config_id,
                          const char **why)
{
    const char *err = NULL;
    if (config_id > QUIC_LB_CONFIG_MAX)
        err = "QUIC-LB config_id must be 0..6 (7 marks unroutable CIDs)";
    else if (server_id_len < 1 || server_id_len > QUIC_LB_SERVER_ID_MAX)
        err = "QUIC-LB server_id_length must be 1..15";
    else if (cid_len > QUIC_V1_CID_MAX)
        err = "QUIC connection IDs are at most 20 bytes";
    else if (cid_len < 1 + server_id_len + QUIC_LB_NONCE_MIN)
        err = "cid_length must hold the first octet, the server ID and a 4-byte nonce";
    if (why)
        *why = err;
    return err == NULL;
}

/* The seed is fixed, not random per process: every worker, every restart and every Strata
 * instance behind the same ECMP route must send one DCID to the same server. */
uint64_t quic_dcid_hash(const uint8_t *dcid, size_t len)
{
    return hash64(dcid, len, QUIC_DCID_HASH_SEED);
}

/* ---- Test-packet builders: see quic.h; for tests only ---- */

size_t quic_build_initial(uint8_t *out, size_t cap, const uint8_t *dcid, size_t dlen,
                          const uint8_t *scid, size_t slen)
{
    const size_t total = QUIC_MIN_INITIAL_DATAGRAM;
    size_t pos = 0;
    if (dlen > QUIC_V1_CID_MAX || slen > QUIC_V1_CID_MAX || cap < total)
        return 0;
    out[pos++] = QUIC_FORM_LONG | QUIC_FIXED_BIT; /* type Initial, 1-byte packet number */
    static const uint8_t v1[4] = {0, 0, 0, 1};
    memcpy(out + pos, v1, 4);
    pos += 4;
    out[pos++] = (uint8_t)dlen;
    if (dlen)
        memcpy(out + pos, dcid, dlen);
    pos += dlen;
    out[pos++] = (uint8_t)slen;
    if (slen)
        memcpy(out + pos, scid, slen);
    pos += slen;
    out[pos++] = 0;                  /* token length 0 */
    size_t length = total - pos - 2; /* packet number + payload, after a 2-byte varint */
    out[pos++] = (uint8_t)(0x40 | length >> 8);
    out[pos++] = (uint8_t)length;
    memset(out + pos, 0, total - pos); /* packet number 0, then zero payload */
    return total;
}

size_t quic_build_short(uint8_t *out, size_t cap, const uint8_t *dcid, size_t dlen)
{
    const size_t tail = 1 + 20; /* packet number + payload */
    if (dlen > QUIC_V1_CID_MAX || cap < 1 + dlen + tail)
        return 0;
    out[0] = QUIC_FIXED_BIT; /* short header, 1-byte packet number */
    if (dlen)
        memcpy(out + 1, dcid, dlen);
    memset(out + 1 + dlen, 0, tail);
    return 1 + dlen + tail;
}
