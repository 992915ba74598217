/* h1.h — the HTTP/1.1 codec: a strict, incremental, zero-copy parser (RFC 9110/9112) that
 * fills a `struct http_msg`, a body decoder for chunked and length-delimited bodies, and
 * the writer that turns a message head back into bytes.
 *
 * Incremental: the caller keeps the head's bytes in one buffer from its first byte and
 * calls again with the same buffer, longer, after H1_AGAIN; any split of the input gives
 * the same result. Zero-copy: every slice in the message points into that buffer, which
 * must not move or change until the caller is done with the head.
 *
 * Strictness (each is an error, never a guess): both Content-Length and
 * Transfer-Encoding; differing Content-Lengths (identical repeats are folded into one);
 * a Content-Length that is not digits or overflows; a Transfer-Encoding other than a
 * final "chunked" (requests: 501 for an unknown coding, 400 when chunked is not last);
 * obs-fold; whitespace between a field name and the colon; an empty or non-token field
 * name; CTL characters (except HTAB) in values; a bare CR anywhere; a bare LF as line end
 * (rejected: we accept CRLF only); an invalid method token; a request target that is not
 * origin-form (absolute-form is accepted for any method and gives scheme + authority;
 * authority-form only with CONNECT; asterisk-form only with OPTIONS); Host missing in
 * HTTP/1.1, duplicated, or differing from an absolute-form authority (which wins, per
 * RFC 9112 §3.2.2, when equal); an HTTP version other than HTTP/1.0 or HTTP/1.1 (505).
 */
#ifndef STRATA_HTTP_H1_H
#define STRATA_HTTP_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/msg-t.h"

struct arena;

enum h1_result {
    H1_AGAIN = 0, /* need more bytes */
    H1_DONE = 1,  /* head complete */
    H1_ERROR = -1,
};

struct h1_limits {
    uint32_t max_line;    /* request line (or status line); over it → 414 (requests) */
    uint32_t max_head;    /* whole head in bytes; over it → 431 */
    uint32_t max_headers; /* field count; over it → 431 */
};

/* What went wrong: the status to answer (requests) and a short static reason for logs. */
struct h1_error {
    uint16_t status; /* 400, 414, 431, 501, 505 (responses: always 502) */
    const char *reason;
};

/* Parser state across calls for one head. Zero it (h1_parser_init) before each head. */
struct h1_parser {
    uint32_t pos;   /* bytes of complete lines examined so far */
    uint32_t state; /* internal */
    uint32_t nhdrs; /* internal */
    uint32_t scan;  /* internal: bytes already searched for the current line's end */
};

static inline void h1_parser_init(struct h1_parser *p)
{
    p->pos = p->state = p->nhdrs = p->scan = 0;
}

/* Parses a request head from buf[0..len).
 * Returns H1_DONE with *head_len = bytes of the head (through the empty line) and `m`
 * filled (end-to-end fields in m->hdrs, grown in arena `a`; framing fields consumed into
 * m->body / m->content_length; Connection/Keep-Alive/TE/Proxy-Connection consumed into
 * flags; Upgrade kept in m->upgrade with HTTP_F_UPGRADE when Connection names it;
 * `Expect: 100-continue` → HTTP_F_EXPECT_100, any other Expect → 417).
 * A request without Content-Length or Transfer-Encoding has HTTP_BODY_NONE.
 * Leading empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2).
 * H1_AGAIN when more bytes are needed (and the limits are not exceeded yet).
 * H1_ERROR with *err filled; the parser must then be initialised again before reuse.
 * Limits: a request line longer than max_line, or one that cannot end within max_head, is
 * 414; any other line ending past max_head, or field line max_headers + 1, is 431. An
 * unfinished line is only measured, so the verdict never depends on where input was split.
 * Decisions the RFCs leave open: request-target bytes >= 0x80 are accepted (as most servers
 * do), CTL, SP, DEL and '#' are not; an empty Host is refused; only the http and https
 * schemes are accepted in absolute-form, and an OPTIONS with an absolute-form target without
 * a path gets path "*" (RFC 9112 §3.2.4); m->query.p is NULL when the target has no '?'. */
int h1_parse_request(struct h1_parser *p, const char *buf, size_t len, const struct h1_limits *lim,
                     struct http_msg *m, struct arena *a, size_t *head_len, struct h1_error *err);

/* Parses a response head. `req_method` decides HEAD's body (none); 1xx, 204 and 304 have
 * none; otherwise Content-Length, chunked, or HTTP_BODY_UNTIL_CLOSE. Interim 1xx
 * responses (other than 101) are returned as heads too: the caller forwards or drops them
 * and parses the next head. Errors have status 502. A 2xx answer to CONNECT has no body.
 * Without a body, a received Content-Length stays in m->content_length (informational). */
int h1_parse_response(struct h1_parser *p, const char *buf, size_t len, const struct h1_limits *lim,
                      enum http_method req_method, struct http_msg *m, struct arena *a,
                      size_t *head_len, struct h1_error *err);

/* ---- one-shot heads ---- */

/* A head parsed whole, from its first byte, at each call (no state kept between calls):
 * for small readers that buffer a bounded head and parse it again as bytes arrive (the
 * admin listener, active health checks). `m`'s slices point into the caller's buffer and
 * into the arena, whose first block is `first`. */
struct h1_head {
    struct http_msg m;
    struct arena a;
    _Alignas(8) char first[1024];
};

/* h1_parse_request, or h1_parse_response (with `response`; body framing judged as for a
 * GET), from scratch into h->m. Call h1_head_release(h) afterwards, whatever the result. */
int h1_head_parse(struct h1_head *h, bool response, const char *buf, size_t len,
                  const struct h1_limits *lim, size_t *head_len, struct h1_error *err);
void h1_head_release(struct h1_head *h);

/* ---- bodies ---- */

enum h1_body_result {
    H1B_AGAIN = 0, /* consumed what it could; need more input */
    H1B_DATA = 1,  /* *data and *dlen: a piece of body data (inside the consumed bytes) */
    H1B_DONE = 2,  /* body complete; trailers (if any) in b->trailer_buf */
    H1B_ERROR = -1,
};

#define H1_MAX_TRAILER 4096

/* Decoder for one body. For HTTP_BODY_LENGTH and HTTP_BODY_UNTIL_CLOSE it only counts;
 * for HTTP_BODY_CHUNKED it checks every chunk-size line (hex digits only, no overflow
 * past 2^62, chunk extensions are allowed by the grammar but must be well-formed and are
 * dropped), the CRLF after each chunk's data, and the trailer section (fields as in a
 * head, at most H1_MAX_TRAILER bytes; framing and hop-by-hop fields such as
 * Content-Length, Transfer-Encoding, Host or Connection are dropped from it).
 * A chunk-size line longer than H1_MAX_CHUNK_LINE bytes before its CRLF (extensions
 * included) is an error. */
#define H1_MAX_CHUNK_LINE 1024

struct h1_body {
    enum http_body_kind kind;
    uint64_t remaining; /* LENGTH: bytes left; CHUNKED: bytes left in the current chunk */
    uint32_t state;     /* internal */
    uint32_t line_len;  /* internal: bytes of the current framing line seen */
    /* CHUNKED, at H1B_DONE: the trailer fields as received ("name: value\r\n" lines,
     * validated), copied into `trailer_buf`; 0 bytes when there were none. */
    char trailer_buf[H1_MAX_TRAILER];
    uint32_t trailer_len;
    bool response; /* set after h1_body_init for a response body: errors are then 502 */
};

void h1_body_init(struct h1_body *b, enum http_body_kind kind, uint64_t content_length);

/* Decodes from in[0..len). Sets *consumed to the bytes the caller may drop from its input
 * (framing and data). On H1B_DATA, *data and *dlen are the data piece (pointing into `in`,
 * within the consumed bytes); the caller forwards it and calls again with the rest.
 * For HTTP_BODY_UNTIL_CLOSE, the caller signals the end (EOF) by calling with len 0 and
 * eof = true, which returns H1B_DONE; for the other kinds an EOF before the end is the
 * caller's error to report. On H1B_ERROR, *err says why (status 400 for a request body,
 * 502 for a response). */
int h1_body_step(struct h1_body *b, const char *in, size_t len, bool eof, size_t *consumed,
                 const char **data, size_t *dlen, struct h1_error *err);

/* ---- writer ---- */

/* How the head written for the other side frames its body. */
enum h1_write_framing {
    H1W_AS_MSG,  /* from m->body: Content-Length for LENGTH, Transfer-Encoding: chunked for
                  * CHUNKED, nothing for NONE/UNTIL_CLOSE; except that a response with
                  * NONE whose status allows a body gets "Content-Length: 0", so that a
                  * client keeping the connection does not wait for its end */
    H1W_NO_BODY, /* a response to HEAD, or 1xx/204/304: keep Content-Length if LENGTH (or
                  * the informational m->content_length when NONE and it is not 0), never
                  * for 1xx/204; no TE */
};

/* Writes a request head for a server: "METHOD path[?query] HTTP/1.1", "Host: authority"
 * first (empty when there is no authority, RFC 9112 §3.2), then m->hdrs in order, the framing
 * field, "Connection: upgrade" + "Upgrade: <m->upgrade>" when HTTP_F_UPGRADE, else "Connection:
 * close" when `close` is set (nothing for keep-alive, the HTTP/1.1 default), and the empty line. A
 * body of an HTTP/1.0 client is written with the framing the model says. Returns the length, or -1
 * when it does not fit in `cap`. Both writers skip the fields of m->hdrs that they generate
 * themselves (Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Proxy-Connection,
 * Upgrade, and Host in a request), and also return -1 when a string of the model cannot be written
 * safely (a field name that is not a token, a CTL other than HTAB in a value, a bad method, target
 * or reason), so that nothing a filter stored can split or smuggle a message. CONNECT is
 * written in authority-form, an OPTIONS with path "*" in asterisk-form, all else in
 * origin-form (an empty path as "/"); a query whose .p is not NULL gets its '?'. */
ssize_t h1_write_request(const struct http_msg *m, bool close, char *out, size_t cap);

/* Writes a response head for a client of HTTP version `client_version` (10 or 11):
 * "HTTP/1.1 status reason" (always 1.1, per RFC 9110 §6.2), m->hdrs, the framing field
 * (for an HTTP/1.0 client a CHUNKED body cannot be sent chunked: the caller must then
 * send it until close, and passes close = true; no Transfer-Encoding is written), then
 * "Connection: close" when `close`, or "Connection: keep-alive" for a 1.0 client that
 * keeps the connection, "Connection: upgrade" + "Upgrade: ..." for a 101, and the empty
 * line. Returns the length, or -1 when it does not fit. */
ssize_t h1_write_response(const struct http_msg *m, enum h1_write_framing framing,
                          uint8_t client_version, bool close, char *out, size_t cap);

/* Writes a chunk-size line for n > 0 data bytes ("1a2b\r\n"); returns its length (≤ 18). */
size_t h1_write_chunk_head(uint64_t n, char *out);
/* The trailer fields a chunked body ended with (dec after H1B_DONE) into m->trailers, as
 * arena copies (the decoder's buffer is reused); none when out of memory. */
void h1_body_trailers(const struct h1_body *dec, struct http_msg *m, struct arena *a);

/* The last chunk with the trailer fields of m->trailers (checked as head fields are; one
 * that cannot be written safely, or a framing, connection or Host field, is left out) and
 * the final CRLF; returns the length or -1 when it does not fit. */
ssize_t h1_write_last_chunk(const struct http_msg *m, char *out, size_t cap);

/* ---- shared by the codec's files, and for whoever checks or splits fields ---- */

/* Character classes, one bit each in h1_ctype[byte]. */
enum h1_char_class {
    H1C_TCHAR = 1 << 0,  /* token (RFC 9110 §5.6.2) */
    H1C_VALUE = 1 << 1,  /* field-value byte: HTAB, SP, VCHAR, obs-text */
    H1C_TARGET = 1 << 2, /* request-target byte: VCHAR but '#', and obs-text */
    H1C_HOST = 1 << 3,   /* authority byte: unreserved, sub-delims, '%', ':', '[', ']' */
    H1C_HEX = 1 << 4,    /* HEXDIG */
    H1C_OWS = 1 << 5,    /* SP, HTAB */
    H1C_DIGIT = 1 << 6,  /* DIGIT */
    H1C_QDTEXT = 1 << 7, /* qdtext of a quoted-string */
};
extern const uint8_t h1_ctype[256];

/* Splits one field line (without its CRLF) into name and value (OWS trimmed), checking
 * that the name is a token ending at the colon and that the value holds no CTL but HTAB.
 * Returns NULL when valid, else a short static reason ("obs-fold", "bare CR", ...). Used
 * for trailers: each line of h1_body.trailer_buf parses with it. */
const char *h1_field_line(const char *line, size_t len, struct hstr *name, struct hstr *value);

/* The first byte in [p, e) that is not a field-value byte (H1C_VALUE), or e; a word at a
 * time. */
const char *h1_span_value(const char *p, const char *e);

#endif
