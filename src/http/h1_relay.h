/* h1_relay.h — what the two halves of the HTTP/1 codec share: the client codec
 * (h1_session.c, h1_exchange.c: an HTTP/1 client connection) and the server codec
 * (h1_upstream.c: one stream's exchange with an HTTP/1 server, whatever its client speaks).
 * Buffers filled from and drained to a connection, and the body relay: a body decoded from
 * one side's bytes, each piece through the stream's body filters, then to the other side's
 * codec (struct http_body_ops), with back-pressure.
 */
#ifndef STRATA_HTTP_H1_RELAY_H
#define STRATA_HTTP_H1_RELAY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ev/sendq.h"
#include "http/h1.h"
#include "http/hbuf.h"
#include "http/stream-t.h"
#include "net/conn.h"
#include "net/pipe_pool.h"

struct worker;

#define CHUNK_OVERHEAD 24 /* chunk-size line + CRLF after the data */

enum io { IO_NONE, IO_MOVED, IO_EOF, IO_ERR };

/* ---- buffers over a connection ---- */

/* *bp, or a new buffer of `cap` bytes from w's pool (NULL: no memory). */
struct hbuf *h1_buf_of(struct worker *w, struct hbuf **bp, uint32_t cap);
/* Gives *bp back to w's pool. */
void h1_buf_drop(struct worker *w, struct hbuf **bp);
/* Appends bytes to *bp; false when they do not fit (or no memory). */
bool h1_buf_append(struct worker *w, struct hbuf **bp, const void *data, size_t n);
/* Reads from c into *bp while there is room; `compact`: the bytes may be moved first;
 * `count` (may be NULL) adds the bytes read; *last_ms is set to now when bytes moved. */
enum io h1_read_into(struct worker *w, struct conn *c, struct hbuf **bp, uint32_t cap, bool compact,
                     uint64_t *count, uint64_t *last_ms);
/* Sends what *bp holds; the buffer goes back to the pool once empty. */
enum io h1_flush_buf(struct worker *w, struct conn *c, struct hbuf **bp, uint64_t *count,
                     uint64_t *last_ms);

/* ---- the same through the loop's send queue (ev/sendq.h) ----
 * A plain connection's staged bytes join the turn's other sends: h1_flush_queued queues
 * `send` (IO_NONE until its done), whose prepare is h1_send_prepare on the buffer (so the
 * send takes whatever is staged by the flush) and whose done applies the result with
 * h1_note_sent, then runs the owner as after an event. `failed`: an earlier queued send
 * found c broken (IO_ERR). */
enum io h1_flush_queued(struct worker *w, struct conn *c, struct hbuf **bp, struct ev_send *send,
                        bool failed, uint64_t *count, uint64_t *last_ms);
/* Queues `send` for the bytes in *bp if it can go by the queue; true when one is queued
 * (now or before). */
bool h1_queue_send(struct worker *w, struct conn *c, struct hbuf **bp, struct ev_send *send);
static inline void h1_send_prepare(struct ev_send *e, struct hbuf *b)
{
    e->buf = b ? hbuf_head(b) : NULL;
    e->len = b ? b->len : 0;
}
/* What h1_flush_buf does after a send of res bytes (or -errno). */
enum io h1_note_sent(struct worker *w, struct conn *c, struct hbuf **bp, ssize_t res,
                     uint64_t *count, uint64_t *last_ms);

/* ---- bodies moved by splice(2) ---- */

/* Writes what sp's pipe holds to c (net/pipe_pool.h: struct spliced, spliced_in into it
 * from w->pipes); the pipe goes back to the pool once empty. */
enum io h1_splice_out(struct worker *w, struct conn *c, struct spliced *sp, uint64_t *count,
                      uint64_t *last_ms);

/* ---- bodies ---- */

/* How far the end of a body got (struct body_move.end). */
enum body_end {
    BODY_FLOWING,   /* data still coming */
    BODY_LAST_WORD, /* the body ended: the filters' last word still to pass */
    BODY_TRAILERS,  /* then its trailers and its end */
};

/* One direction of an HTTP/1 body: decoded from `src` with `dec`, each piece through the
 * stream's body filters, then to `out` (the other side's codec). */
struct body_move {
    struct h1_body *dec;
    struct hbuf *src;
    bool eof;                        /* src has ended (for bodies delimited by close) */
    bool response;                   /* which of the stream's body hooks */
    uint8_t *end;                    /* enum body_end */
    bool *done;                      /* set once the end is sent */
    struct http_msg *m;              /* whose trailers */
    const struct http_body_ops *out; /* where the data goes */
    uint64_t *count;                 /* adds the bytes taken from src, framing too (or NULL) */
};

/* Moves body data until the source or the destination runs dry, or the body is sent. */
enum move h1_move_body(struct http_stream *st, struct body_move *bm, struct h1_error *err);

/* Body data room in *bp for a body written `chunked` or not (-1: no buffer); appends data
 * after h1_body_room (as one chunk when `chunked`; returns what fit); the last chunk with
 * m's trailers (false while it does not fit; nothing when not `chunked`). */
ssize_t h1_body_room(struct worker *w, struct hbuf **bp, bool chunked);
size_t h1_body_put(struct hbuf **bp, bool chunked, const char *p, size_t n);
bool h1_body_last(struct worker *w, struct hbuf **bp, bool chunked, const struct http_msg *m);

#endif
