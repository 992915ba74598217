/* tls_hello.h — peek at a TLS ClientHello without terminating TLS: SNI, ALPN, versions.
 *
 * For TLS passthrough routed by SNI. The parser reads the bytes a client sent from the start
 * of its connection and never modifies them: the caller forwards them unchanged to the
 * server it picks. Pure functions, no allocation, no global state; safe from any thread.
 */
#ifndef STRATA_NET_TLS_HELLO_H
#define STRATA_NET_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bound on the bytes from the start of the connection up to the end of the
 * ClientHello (record headers included). With len >= HELLO_MAX_BYTES, tls_hello_parse
 * never answers HELLO_NEED_MORE: a caller buffering this much always gets a decision. */
#define HELLO_MAX_BYTES 16384

#define HELLO_SNI_MAX 255      /* RFC 6066 / DNS: a host name is at most 255 bytes */
#define HELLO_ALPN_MAX 8       /* protocols kept from the ALPN list */
#define HELLO_ALPN_NAME_MAX 32 /* bytes per kept protocol, NUL included */

enum hello_result {
    HELLO_NEED_MORE, /* a prefix of a possibly valid ClientHello: call again with more */
    HELLO_OK,        /* a complete, well-formed ClientHello: *info is filled */
    HELLO_NOT_TLS,   /* the first bytes are not a TLS handshake record (HTTP, SSLv2, ...) */
    HELLO_ERROR,     /* a TLS handshake record, but not a well-formed ClientHello */
};

/* What the ClientHello says: filled on HELLO_OK, all zero after any other result. */
struct hello_info {
    char sni[HELLO_SNI_MAX + 1]; /* host_name, lowercased, NUL-terminated; "" when absent */
    size_t sni_len;              /* strlen(sni); 0 = no server_name host_name */
    /* ALPN protocols in the client's order, NUL-terminated. A protocol that cannot be kept
     * (beyond HELLO_ALPN_MAX, longer than HELLO_ALPN_NAME_MAX - 1, or holding a NUL byte)
     * is left out and sets alpn_incomplete. has_alpn: the extension was present. */
    char alpn[HELLO_ALPN_MAX][HELLO_ALPN_NAME_MAX];
    unsigned nalpn;
    bool has_alpn;
    bool alpn_incomplete;
    uint16_t legacy_version; /* ClientHello.legacy_version, e.g. 0x0303 */
    uint16_t max_version;    /* highest non-GREASE supported_versions entry (0x0304 = TLS
                              * 1.3), or legacy_version when the extension is absent */
};

/* Parses buf[0..len), every byte received so far from the start of a connection; the
 * caller keeps them and calls again with the longer buffer after each read. Reads nothing
 * beyond len, allocates nothing. The ClientHello may be split across TCP segments and
 * across consecutive handshake records; bytes after it are ignored.
 *  - Every strict prefix of a valid ClientHello gives HELLO_NEED_MORE.
 *  - Any other answer is final: a longer buffer with the same prefix gives the same one.
 *  - HELLO_NOT_TLS is decided on the first two bytes (content type 22, version major 3).
 *  - HELLO_ERROR comes as soon as the bytes so far break a rule: record and handshake
 *    framing, every length field, session id <= 32 bytes, cipher suites even and
 *    non-empty, a compression method, extensions filling the message exactly, no
 *    extension type twice, at most one host_name and a valid one (sni_name_valid).
 * On HELLO_ERROR and HELLO_NOT_TLS, *why (when why is not NULL) is a static string saying
 * why; otherwise it is set to NULL. */
enum hello_result tls_hello_parse(const uint8_t *buf, size_t len, struct hello_info *info,
                                  const char **why);

/* A host name as accepted in SNI and in patterns: 1..255 bytes of letters, digits, '-',
 * '_' and '.'; labels of 1..63 bytes (so no leading, trailing or double dot). '_' is not
 * valid in host names but does occur in DNS names that clients send; it is accepted. */
bool sni_name_valid(const char *name, size_t len, const char **why);

/* SNI route patterns: "api.example.com" matches that name only; "*.example.com" matches
 * every name below example.com at any depth (a.example.com, a.b.example.com), never
 * example.com itself (NGINX server_name semantics; TLS certificate wildcards differ and
 * match one label only). Case-insensitive. No other '*' is allowed. When several patterns
 * match, a router should prefer an exact name, then the longest wildcard suffix. */
bool sni_pattern_valid(const char *pattern, const char **why);
/* pattern: valid per sni_pattern_valid; name: name_len bytes, need not be NUL-terminated. */
bool sni_match(const char *pattern, const char *name, size_t name_len);

#endif
