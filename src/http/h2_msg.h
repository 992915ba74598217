/* h2_msg.h — HTTP/2 header blocks ⇄ the message model (msg-t.h), for both roles: the
 * client codec (requests in, responses out) and a server codec (requests out, responses
 * in), and trailers both ways.
 *
 * Reading: nghttp2 hands a header block over one field at a time (on_header_callback).
 * h2_head_begin, then h2_head_field for each field, then h2_head_end check the block as
 * RFC 9113 §8 says and fill a struct http_msg: pseudo-header fields first, each once and
 * only those of the role; lowercase token names; values without NUL, CR, LF or leading and
 * trailing whitespace; no connection-specific field (Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade) and TE only as "trailers" (kept in hdrs: a
 * gRPC server needs it; the HTTP/1 writer drops it); Cookie crumbs joined with "; "
 * (§8.2.3); Host folded into the authority; Content-Length parsed into the body framing
 * (and consumed); `Expect: 100-continue` into HTTP_F_EXPECT_100; HTTP2-Settings dropped.
 * Every name and value is
 * copied into the arena (nghttp2's buffers do not outlive the callback), within the limits
 * given: past them fields are only counted (so that HPACK decoding goes on) and the block
 * ends with 431 (a request) or an error.
 *
 * Writing: h2_msg_nv builds the nghttp2_nv array of a head or of trailers, in the arena:
 * pseudo-header fields first, names lowercased, connection-specific and framing fields
 * dropped and content-length written from the framing. A name that is not a token or a
 * value holding NUL, CR or LF fails the whole head (-1): nothing a filter stored can split
 * a message on the other side.
 */
#ifndef STRATA_HTTP_H2_MSG_H
#define STRATA_HTTP_H2_MSG_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/msg-t.h"

/* Which block a header block is. */
enum h2_block {
    H2B_REQUEST,  /* :method :scheme :authority :path */
    H2B_RESPONSE, /* :status (interim 1xx heads are responses too) */
    H2B_TRAILERS, /* no pseudo-header field */
};

/* The state of one header block being read. */
struct h2_head {
    enum h2_block kind;
    enum http_method req_method; /* H2B_RESPONSE: the request's (HEAD: no body) */
    uint32_t max_bytes;          /* decoded size (name + value + 32 each, as
                                    SETTINGS_MAX_HEADER_LIST_SIZE counts) */
    uint32_t max_fields;
    uint32_t bytes, fields; /* so far, stored or not */
    bool checked;           /* names and values were checked as §8.2.1 says already (an
                               nghttp2 server session does): not again (h2_head_checked) */
    uint8_t pseudo;         /* pseudo-header fields seen (bits) */
    bool regular;           /* a regular field was seen: no more pseudo-header fields */
    bool refused;           /* past a limit (431) or an unmet Expect (417): nothing more
                               is stored; a request is answered h->status */
    bool has_cl;            /* content-length seen */
    uint64_t cl;            /* its value */
    uint16_t status;        /* error status (400, 431, 501; responses and trailers: 502) */
    const char *err;        /* why the block is malformed or refused; NULL while valid */
};

void h2_head_begin(struct h2_head *h, enum h2_block kind, enum http_method req_method,
                   uint32_t max_bytes, uint32_t max_fields);
/* The fields come from an nghttp2 server session (HTTP messaging on), which hands over
 * only lowercase token names and values without NUL, CR, LF or leading and trailing
 * whitespace: those checks are skipped. Call after h2_head_begin. */
static inline void h2_head_checked(struct h2_head *h)
{
    h->checked = true;
}
/* One field of the block, into m (or m->trailers for H2B_TRAILERS), copied into `a`.
 * Returns 0, or -1 when the block is malformed (h->err, h->status): the stream must be
 * reset (RFC 9113 §8.1.1). A field past the limits returns 0 and sets h->refused. */
int h2_head_field(struct h2_head *h, struct http_msg *m, struct arena *a, const uint8_t *name,
                  size_t namelen, const uint8_t *value, size_t valuelen);
/* The block is complete; `end_stream`: it ended the stream (no body follows). Checks the
 * pseudo-header fields the role requires, joins the cookie crumbs, sets the framing.
 * Returns 0; -1 when malformed (h->err, h->status, reset the stream); 1 when it is valid
 * but past the limits (h->status 431: a request is answered). */
int h2_head_end(struct h2_head *h, struct http_msg *m, struct arena *a, bool end_stream);

/* Fills a whole block from an nv array (h2_head_begin/field/end in one call). */
int h2_head_from_nv(struct h2_head *h, struct http_msg *m, struct arena *a, const nghttp2_nv *nv,
                    size_t n, bool end_stream);

/* What h2_msg_nv writes. */
struct h2_out {
    enum h2_block kind;
    bool no_body;       /* H2B_RESPONSE: a response to HEAD, or 1xx/204/304 */
    struct hstr scheme; /* H2B_REQUEST: when m->scheme is empty ("http", "https") */
};

/* The nghttp2_nv array of m's head (or of m->trailers) in `a`: *nv and the count, or -1
 * when a field cannot be sent safely or out of memory. A request with HTTP_F_UPGRADE is
 * written as RFC 8441's extended CONNECT (:protocol m->upgrade): the caller clears the flag
 * in a copy for a server that does not take it. */
int h2_msg_nv(const struct http_msg *m, const struct h2_out *o, struct arena *a, nghttp2_nv **nv);

#endif
