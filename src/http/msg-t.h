/* msg-t.h — the protocol-neutral HTTP message (types only).
 *
 * The HTTP/1 codec (and later HTTP/2) turns bytes into a `struct http_msg` and back.
 * Routing, filters, balancing and logging see only this model, never a codec:
 * - a request has method, scheme, authority (Host, or the h2 :authority), path and query;
 *   a response has status and reason;
 * - `hdrs` holds the end-to-end fields only. The codec consumes what describes the
 *   connection or the framing — Host (→ authority), Content-Length and Transfer-Encoding
 *   (→ body), Connection and the fields it names, Keep-Alive, TE, Proxy-Connection,
 *   Upgrade (→ flags/upgrade) — and the writer of the other side regenerates them;
 * - the body is described by `body` and flows separately, in chunks.
 * Strings are slices (`struct hstr`): into the codec's read buffer while the head is
 * held there, or into the transaction's arena for values a filter made. Names keep their
 * case as received; lookups are case-insensitive.
 */
#ifndef STRATA_HTTP_MSG_T_H
#define STRATA_HTTP_MSG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte slice; not NUL-terminated. `known` says what every byte of it was checked to be,
 * so that the head writers need not check it again: HSTR_VALUE (field-value bytes), or
 * HSTR_TOKEN (token bytes, which are field-value bytes too); 0 for unknown, what a slice
 * made with `(struct hstr){p, len}` gets. A sub-slice may keep it (bytes of a checked
 * slice are checked); a slice pointed at other bytes must not (rebasing a head moves
 * the same bytes). It lives in what would be padding. */
struct hstr {
    const char *p;
    uint32_t len;
    uint32_t known;
};

enum { HSTR_VALUE = 1, HSTR_TOKEN = 3 };

#define HSTR_LIT(s) ((struct hstr){(s), sizeof(s) - 1, 0})
/* A literal of token bytes (a field name, "https"): the head writers trust it. */
#define HSTR_TOKEN_LIT(s) ((struct hstr){(s), sizeof(s) - 1, HSTR_TOKEN})

struct http_hdr {
    struct hstr name, value;
};

enum http_method {
    HTTP_M_OTHER, /* a valid token we do not know: passed on as is, not idempotent */
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_PUT,
    HTTP_M_DELETE,
    HTTP_M_CONNECT,
    HTTP_M_OPTIONS,
    HTTP_M_TRACE,
    HTTP_M_PATCH,
};

enum http_body_kind {
    HTTP_BODY_NONE,       /* no body at all (GET without framing, 204, 304, HEAD's answer) */
    HTTP_BODY_LENGTH,     /* exactly content_length bytes */
    HTTP_BODY_CHUNKED,    /* chunked on the wire (h1), or of unknown length (h2) */
    HTTP_BODY_UNTIL_CLOSE /* a response delimited by the server closing (h1 only) */
};

enum http_msg_flag {
    HTTP_F_CLOSE = 1 << 0,       /* the sender will close after this message (h1) */
    HTTP_F_EXPECT_100 = 1 << 1,  /* request had `Expect: 100-continue` (field consumed) */
    HTTP_F_UPGRADE = 1 << 2,     /* request asks to upgrade (see `upgrade`); 101 answers it */
    HTTP_F_ABSOLUTE = 1 << 3,    /* request target was absolute-form */
    HTTP_F_HTTP10 = 1 << 4,      /* HTTP/1.0 peer: no chunked, keep-alive only if asked */
    HTTP_F_KEEPALIVE10 = 1 << 5, /* HTTP/1.0 request with Connection: keep-alive */
};

struct http_msg {
    bool is_request;
    uint8_t version; /* 10 or 11 for HTTP/1.x, 20 for h2 */
    uint32_t flags;  /* enum http_msg_flag */

    /* request */
    enum http_method method;
    struct hstr method_name; /* as received (always set for requests) */
    struct hstr scheme;      /* "http"/"https" when known (absolute-form, h2); else empty */
    struct hstr authority;   /* Host value or absolute-form authority */
    struct hstr path;        /* from '/' up to '?' (or "*" for OPTIONS *) */
    struct hstr query;       /* after '?', without it; empty when none */
    struct hstr upgrade;     /* the Upgrade field's value when HTTP_F_UPGRADE; an h2
                                extended CONNECT (RFC 8441) is a GET with its :protocol here */

    /* response */
    uint16_t status;
    struct hstr reason;

    struct http_hdr *hdrs; /* end-to-end fields, in order received */
    uint32_t nhdrs, hdr_cap;

    enum http_body_kind body;
    uint64_t content_length; /* HTTP_BODY_LENGTH */

    struct http_hdr *trailers; /* chunked trailer fields, once the body has ended */
    uint32_t ntrailers;
};

/* A bump allocator for one transaction: rewritten values, grown header arrays, answers.
 * Memory comes in blocks and is freed whole by arena_reset/arena_free. */
struct arena_block;
struct arena {
    struct arena_block *head;
    size_t used, limit; /* bytes handed out so far; limit bounds a transaction (0 = 1 MiB) */
};

#endif
