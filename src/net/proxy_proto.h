/* proxy_proto.h — PROXY protocol v1 (text) and v2 (binary) headers, as specified in HAProxy's
 * doc/proxy-protocol.txt: an incremental, strict parser for what a client sends first, and
 * builders for what Strata sends to a server. Pure functions over caller-owned buffers: no
 * allocation, no I/O, no global state; safe from any thread.
 */
#ifndef STRATA_NET_PROXY_PROTO_H
#define STRATA_NET_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/addr.h"

/* The longest header pp_parse() accepts, v1 or v2 (v2: 16 fixed bytes + addresses + TLVs).
 * A v2 header announcing more is rejected as soon as its length field is read, so a caller
 * that has PP_MAX_HEADER bytes buffered never gets PP_NEED_MORE. */
#define PP_MAX_HEADER 4096
#define PP_V1_MAX_LINE 107 /* "PROXY UNKNOWN <ip6> <ip6> 65535 65535\r\n" */
#define PP_V2_HEADER_MIN 16
#define PP_V2_SIG "\r\n\r\n\0\r\nQUIT\n" /* the 12-byte v2 signature (contains a NUL) */
#define PP_V2_SIG_LEN 12

/* v2 TLV types (spec §2.2) that the parser recognises. */
#define PP2_TYPE_ALPN 0x01
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_NOOP 0x04
#define PP2_TYPE_UNIQUE_ID 0x05

/* Bounds of the TLV values kept in struct pp_info; a longer value is a parse error. */
#define PP_ALPN_MAX 255      /* one ALPN protocol id (RFC 7301) */
#define PP_AUTHORITY_MAX 255 /* a host name (SNI) */
#define PP_UNIQUE_ID_MAX 128 /* spec §2.2.5 */

enum pp_result {
    PP_NEED_MORE, /* a valid header may still follow: read more and call again */
    PP_OK,        /* a complete header: *consumed bytes of it, info filled */
    PP_ERROR,     /* these bytes can never start a valid header: drop the connection */
};

/* What a header says. Filled by pp_parse() only when it returns PP_OK; every field not
 * mentioned by the header is zero. */
struct pp_info {
    int version; /* 1 or 2 */
    /* true: use the real connection's addresses (src, dst are zeroed, family AF_UNSPEC).
     * Set for v1 "UNKNOWN", v2 LOCAL, and v2 PROXY with family UNSPEC or UNIX. */
    bool local;
    int sock_type;                /* SOCK_STREAM, or SOCK_DGRAM for a v2 UDP header; 0 when local */
    struct sockaddr_any src, dst; /* AF_INET or AF_INET6 with ports, when !local */
    bool crc32c_checked;          /* a v2 CRC32c TLV was present and matched */
    /* v2 TLVs, copied (the strings also NUL-terminated); at most one of each type. */
    char alpn[PP_ALPN_MAX + 1];
    size_t alpn_len;
    char authority[PP_AUTHORITY_MAX + 1];
    size_t authority_len;
    uint8_t unique_id[PP_UNIQUE_ID_MAX];
    size_t unique_id_len;
};

/* Parses the header at the start of a connection. buf holds every byte received so far
 * (len of them, from the first); only buf[0..len) is read, never more.
 *   PP_NEED_MORE  len < PP_MAX_HEADER and buf is a strict prefix of some valid header.
 *   PP_OK         *consumed = header length (the bytes after it are the client's stream).
 *   PP_ERROR      *why = a short static reason. Reported as early as possible: the first
 *                 byte that does not match "PROXY " or the v2 signature already fails.
 * A result is final once it is PP_OK or PP_ERROR: more bytes do not change it. */
enum pp_result pp_parse(const uint8_t *buf, size_t len, struct pp_info *info, size_t *consumed,
                        const char **why);

/* Builders: write the header for a connection from src to dst into out and return its
 * length, or -1 if cap is too small (nothing useful is written then). Two IPv4 addresses
 * give TCP4 / AF_INET; an IPv4 and an IPv6 one give TCP6 / AF_INET6 with the IPv4 address
 * mapped (::ffff:a.b.c.d). Either NULL gives v1 "PROXY UNKNOWN\r\n" / a v2 LOCAL header
 * (health checks); any other family gives "UNKNOWN" / a v2 PROXY header of family UNSPEC.
 * v1 writes canonical text (IPv6 per RFC 5952, no dotted tail) and no NUL; v2 no TLVs. */
#define PP_V1_BUILD_MAX PP_V1_MAX_LINE
#define PP_V2_BUILD_MAX (PP_V2_HEADER_MIN + 36)
ssize_t pp_build_v1(const struct sockaddr_any *src, const struct sockaddr_any *dst, char *out,
                    size_t cap);
ssize_t pp_build_v2(const struct sockaddr_any *src, const struct sockaddr_any *dst, uint8_t *out,
                    size_t cap);

/* CRC32c (Castagnoli, RFC 4960 appendix B) of buf, as the v2 CRC32C TLV carries it. */
uint32_t pp_crc32c(const void *buf, size_t len);

#endif
