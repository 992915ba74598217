/* quic.h — QUIC packet headers read without keys, for connection-ID-aware UDP routing.
 *
 * quic_parse reads the header a datagram starts with: the version-independent fields of
 * RFC 8999 for any version, plus the packet type, token and length of versions 1 (RFC 9000
 * §17) and 2 (RFC 9369). quic_lb_server_id reads the server ID of an unencrypted QUIC-LB
 * connection ID (draft-ietf-quic-load-balancers-21). Pure functions over caller-owned bytes:
 * no allocation, no I/O, no global state; safe from any thread.
 */
#ifndef STRATA_NET_QUIC_H
#define STRATA_NET_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUIC_VERSION_NEG 0x00000000u /* the version field of a Version Negotiation packet */
#define QUIC_VERSION_1 0x00000001u   /* RFC 9000 */
#define QUIC_VERSION_2 0x6b3343cfu   /* RFC 9369 */
#define QUIC_V1_CID_MAX 20           /* connection ID limit of versions 1 and 2 */
#define QUIC_CID_MAX 255             /* RFC 8999: any version, one length octet */
#define QUIC_RETRY_TAG_LEN 16        /* Retry Integrity Tag, versions 1 and 2 */
/* RFC 9000 §14.1: the smallest UDP payload that may carry a client Initial */
#define QUIC_MIN_INITIAL_DATAGRAM 1200

enum quic_pkt_type {
    /* versions 1 and 2: from the long header type bits, which v2 numbers differently */
    QUIC_PKT_INITIAL,
    QUIC_PKT_0RTT,
    QUIC_PKT_HANDSHAKE,
    QUIC_PKT_RETRY,
    QUIC_PKT_VERSION_NEG, /* long header, version 0 */
    QUIC_PKT_1RTT,        /* short header */
    QUIC_PKT_UNKNOWN,     /* long header of a version this parser does not know */
};

/* A parsed header. Every pointer points into the datagram given to quic_parse (the caller
 * keeps it alive) and [ptr, ptr + len) lies inside it; a zero length may come with a
 * non-NULL pointer. Fields a packet does not carry are NULL/0.
 *
 * The fixed bit (0x40, "QUIC bit") is reported, never checked: RFC 9287 lets endpoints that
 * negotiated grease_quic_bit clear it in short headers and in most long headers (client
 * Initials with a token included), RFC 8999 makes it version-specific, and QUIC-LB forbids
 * routing on any first-octet bit but the header form. A caller that wants RFC 9000
 * strictness can drop `!fixed_bit` packets of versions 1 and 2 itself. */
struct quic_hdr {
    bool is_long;            /* header form bit (0x80) */
    bool fixed_bit;          /* 0x40 of the first octet, as received */
    enum quic_pkt_type type; /* QUIC_PKT_1RTT for every short header */
    uint32_t version;        /* long headers; 0 for a short header (it carries none) */
    const uint8_t *dcid;     /* Destination Connection ID */
    size_t dcid_len;
    const uint8_t *scid; /* Source Connection ID: long headers only */
    size_t scid_len;
    const uint8_t *token; /* Initial: the token (often empty); Retry: the Retry Token */
    size_t token_len;
    /* Bytes of the datagram this packet occupies: up to the end of its Length field's
     * extent for Initial, 0-RTT and Handshake of versions 1 and 2, the whole datagram for
     * every other packet (they have no Length field). A coalesced next packet starts here. */
    size_t pkt_len;
};

/* Parses the first QUIC packet header of the datagram pkt[0..len). Reads nothing beyond len.
 *
 * A datagram may coalesce several packets (RFC 9000 §12.2), but they share one Destination
 * Connection ID (senders MUST NOT mix them; receivers SHOULD ignore later packets that
 * differ), so the first header alone decides routing; out->pkt_len says where a second one
 * would start.
 *
 * Long header (first bit set): version, DCID and SCID, each length checked against len; for
 * versions 1 and 2 each CID is at most 20 bytes (RFC 9000 §17.2: MUST drop otherwise), for
 * any other version up to 255 (RFC 8999 §5.1). Version 0 is Version Negotiation: a
 * non-empty list of 4-byte versions must follow. For versions 1 and 2 the type bits are
 * decoded and the rest of the header checked: Initial token length and token, then the
 * Length field of Initial, 0-RTT and Handshake, which must fit in the datagram; a Retry
 * must hold its 16-byte integrity tag. Other versions are opaque after the SCID.
 *
 * Short header (first bit clear): the DCID is the next short_dcid_len bytes, since short
 * headers do not carry its length: it is the length the servers behind this listener use,
 * configured (0..20; more is refused). Only the flags byte and the DCID are required.
 *
 * Returns 0 and fills *out, or -1 with *out zeroed. *why (when why is not NULL) is a static
 * string saying why on -1, NULL on 0. */
int quic_parse(const uint8_t *pkt, size_t len, size_t short_dcid_len, struct quic_hdr *out,
               const char **why);

/* ---- QUIC-LB (draft-ietf-quic-load-balancers-21), unencrypted configurations ----
 *
 * A QUIC-LB connection ID is { First Octet, Server ID, Nonce, [server's own bytes] }. The
 * first octet's top 3 bits are the config rotation codepoint (0..6 name a configuration;
 * 0b111 marks a CID the load balancer cannot route); its low 5 bits encode the CID length
 * minus one or are random, and are not used here. With no key configured (the "plaintext"
 * case; earlier drafts' Plaintext CID Algorithm), the server ID is the server_id_len bytes
 * right after the first octet. */
#define QUIC_LB_CONFIG_MAX 6     /* highest usable config rotation codepoint */
#define QUIC_LB_UNROUTABLE 7     /* codepoint 0b111: never routable */
#define QUIC_LB_SERVER_ID_MAX 15 /* draft: 1..15 octets */
#define QUIC_LB_NONCE_MIN 4      /* draft: the nonce is at least 4 octets */

/* The config rotation codepoint of a connection ID that starts with first_octet. */
static inline unsigned quic_lb_config_rotation(uint8_t first_octet)
{
    return first_octet >> 5;
}

/* Points *sid (when sid is not NULL) at the server ID of dcid and returns 0; returns -1,
 * *sid = NULL, when the CID is unroutable for this configuration: shorter than
 * 1 + server_id_len, config rotation bits other than config_id (0b111 included), or invalid
 * arguments (config_id > 6, server_id_len 0). On -1 the caller uses its fallback algorithm
 * (a long header: hash the DCID or the 4-tuple; a short header: the draft says SHOULD drop,
 * or route by 4-tuple). The server ID is opaque bytes, compared with memcmp. */
int quic_lb_server_id(const uint8_t *dcid, size_t dcid_len, size_t server_id_len, uint8_t config_id,
                      const uint8_t **sid);

/* Whether a listener's QUIC-LB settings fit the draft and QUIC v1: config_id 0..6,
 * server_id_len 1..15, and a CID of cid_len bytes holding the first octet, the server ID and
 * a nonce of at least 4 bytes within 20 bytes. On false, *why (when not NULL) says why. */
bool quic_lb_config_valid(size_t cid_len, size_t server_id_len, unsigned config_id,
                          const char **why);

/* A stable 64-bit hash of a connection ID (hash64 with a fixed seed): the same bytes give the
 * same value in every worker, process and restart, for consistent hashing of packets whose
 * DCID the client chose (Initial, 0-RTT) or that QUIC-LB cannot route. */
uint64_t quic_dcid_hash(const uint8_t *dcid, size_t len);

/* ---- Test-packet builders (unit and end-to-end tests; not for production traffic) ----
 * They write syntactically valid, unprotected packets that quic_parse accepts; the payload is
 * zeros, not encrypted frames, so a real QUIC endpoint will discard them. Both return the
 * bytes written, or 0 when a CID is longer than 20 bytes or cap is too small. */

/* A version 1 client Initial padded to exactly QUIC_MIN_INITIAL_DATAGRAM (1200) bytes: long
 * header, type Initial, the given CIDs, empty token, a Length varint covering a 1-byte packet
 * number and the zero payload. Needs cap >= 1200. */
size_t quic_build_initial(uint8_t *out, size_t cap, const uint8_t *dcid, size_t dlen,
                          const uint8_t *scid, size_t slen);

/* A short-header (1-RTT) packet: flags 0x40, the DCID, a 1-byte packet number and 20 payload
 * bytes (enough for a header protection sample). Needs cap >= dlen + 22. */
size_t quic_build_short(uint8_t *out, size_t cap, const uint8_t *dcid, size_t dlen);

#endif
