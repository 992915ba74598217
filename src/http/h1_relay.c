/* h1_relay.c — see h1_relay.h. */
#include "http/h1_relay.h"

#include <errno.h>
#include <string.h>

#include "ev/worker.h"
#include "http/stream.h"

/* ---- buffers over a connection ---- */

struct hbuf *h1_buf_of(struct worker *w, struct hbuf **bp, uint32_t cap)
{
    if (!*bp)
        *bp = hbuf_get(&w->hbuf_pool, cap);
    return *bp;
}

void h1_buf_drop(struct worker *w, struct hbuf **bp)
{
    hbuf_put(&w->hbuf_pool, *bp);
    *bp = NULL;
}

bool h1_buf_append(struct worker *w, struct hbuf **bp, const void *data, size_t n)
{
    struct hbuf *b = h1_buf_of(w, bp, HBUF_SIZE);
    if (!b)
        return false;
    if (hbuf_room(b) < n)
        hbuf_compact(b);
    if (hbuf_room(b) < n)
        return false;
    memcpy(hbuf_tail(b), data, n);
    b->len += (uint32_t)n;
    return true;
}

enum io h1_read_into(struct worker *w, struct conn *c, struct hbuf **bp, uint32_t cap, bool compact,
                     uint64_t *count, uint64_t *last_ms)
{
    if (!(c->flags & CONN_RD_READY) || (c->flags & CONN_RD_EOF))
        return IO_NONE;
    struct hbuf *b = h1_buf_of(w, bp, cap);
    if (!b)
        return IO_ERR;
    if (compact && b->off && hbuf_room(b) < b->cap / 4)
        hbuf_compact(b);
    uint32_t room = hbuf_room(b);
    if (room == 0)
        return IO_NONE;
    ssize_t n = c->xprt->recv(c, hbuf_tail(b), room);
    if (n > 0) {
        b->len += (uint32_t)n;
        if (count)
            *count += (uint64_t)n;
        conn_note_read(c, (size_t)n, room);
        *last_ms = w->loop.now_ms;
        return IO_MOVED;
    }
    if (n == 0) {
        c->flags |= CONN_RD_EOF;
        return IO_EOF;
    }
    if (errno == EAGAIN || errno == EINTR) {
        c->flags &= ~CONN_RD_READY;
        if (b->len == 0)
            h1_buf_drop(w, bp);
        return IO_NONE;
    }
    c->flags |= CONN_ERROR;
    return IO_ERR;
}

/* What a write of n bytes to c (-1: failed, errno says why) means for its caller: the
 * bytes counted (IO_MOVED), c full (IO_NONE, CONN_WR_READY cleared) or c broken. */
static enum io note_write(struct worker *w, struct conn *c, ssize_t n, uint64_t *count,
                          uint64_t *last_ms)
{
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
            c->flags &= ~CONN_WR_READY;
            return IO_NONE;
        }
        c->flags |= CONN_ERROR;
        return IO_ERR;
    }
    if (count)
        *count += (uint64_t)n;
    *last_ms = w->loop.now_ms;
    return IO_MOVED;
}

enum io h1_flush_buf(struct worker *w, struct conn *c, struct hbuf **bp, uint64_t *count,
                     uint64_t *last_ms)
{
    struct hbuf *b = *bp;
    enum io r = IO_NONE;
    while (b && b->len && (c->flags & CONN_WR_READY)) {
        ssize_t n = c->xprt->send(c, hbuf_head(b), b->len);
        enum io w_io = note_write(w, c, n, count, last_ms);
        if (w_io != IO_MOVED) {
            if (w_io == IO_ERR)
                return IO_ERR;
            break;
        }
        hbuf_consume(b, (uint32_t)n);
        r = IO_MOVED;
    }
    if (b && b->len == 0)
        h1_buf_drop(w, bp);
    return r;
}

enum io h1_note_sent(struct worker *w, struct conn *c, struct hbuf **bp, ssize_t res,
                     uint64_t *count, uint64_t *last_ms)
{
    if (res <= 0) {
        errno = (int)-res;
        return res == 0 ? IO_NONE : note_write(w, c, -1, count, last_ms);
    }
    enum io r = note_write(w, c, res, count, last_ms);
    hbuf_consume(*bp, (uint32_t)res);
    if ((*bp)->len == 0)
        h1_buf_drop(w, bp);
    else
        c->flags &= ~CONN_WR_READY; /* a short send: the socket is full */
    return r;
}

bool h1_queue_send(struct worker *w, struct conn *c, struct hbuf **bp, struct ev_send *send)
{
    if (ev_send_queued(send))
        return true;
    if (!*bp || !(*bp)->len || !c->xprt->fd_sends || !(c->flags & CONN_WR_READY))
        return false;
    ev_send_queue(&w->loop, send, c->h.fd, NULL, 0);
    return true;
}

enum io h1_flush_queued(struct worker *w, struct conn *c, struct hbuf **bp, struct ev_send *send,
                        bool failed, uint64_t *count, uint64_t *last_ms)
{
    if (failed)
        return IO_ERR;
    if (h1_queue_send(w, c, bp, send))
        return IO_NONE;
    return h1_flush_buf(w, c, bp, count, last_ms);
}

/* ---- bodies moved by splice(2) ---- */

enum io h1_splice_out(struct worker *w, struct conn *c, struct spliced *sp, uint64_t *count,
                      uint64_t *last_ms)
{
    enum io r = IO_NONE;
    while (sp->bytes && (c->flags & CONN_WR_READY)) {
        ssize_t n = spliced_out(&w->pipes, sp, c->h.fd);
        enum io w_io = note_write(w, c, n, count, last_ms);
        if (w_io != IO_MOVED)
            return w_io == IO_ERR ? IO_ERR : r;
        r = IO_MOVED;
    }
    return r;
}

/* ---- bodies ---- */

/* Room the filters' last word waits for: it may be longer than a data piece (what they
 * held back, a gRPC-Web trailer frame). */
#define LAST_WORD_ROOM 4096

/* The filters' last word: what they held back, maybe the trailers turned into body bytes
 * (the trailers are in the model already). MOVE_NONE while the room is short. */
static enum move body_last_word(struct http_stream *st, struct body_move *bm, struct h1_error *err)
{
    if (bm->response ? st->resp_body_hooks : st->req_body_hooks) {
        ssize_t room = bm->out->send_room(st);
        if (room < 0)
            return MOVE_ERROR;
        if ((size_t)room < LAST_WORD_ROOM)
            return MOVE_NONE;
        const char *data = NULL;
        size_t dlen = 0;
        unsigned status =
            stream_body_piece(st, bm->response, &data, &dlen, true, (size_t)room, &err->reason);
        if (status || (dlen && bm->out->send_data(st, data, dlen) < dlen)) {
            err->status = (uint16_t)(status ? status : 500);
            return MOVE_ERROR;
        }
    }
    *bm->end = BODY_TRAILERS;
    return MOVE_PROGRESS;
}

/* The body ended: the filters' last word, then the trailers and the end (each waits for
 * room). */
static enum move body_finish(struct http_stream *st, struct body_move *bm, struct h1_error *err)
{
    enum move m = MOVE_NONE;
    if (*bm->end == BODY_LAST_WORD && (m = body_last_word(st, bm, err)) != MOVE_PROGRESS)
        return m;
    if (!bm->out->send_trailers(st, bm->m))
        return m;
    *bm->end = BODY_FLOWING;
    *bm->done = true;
    bm->out->send_end(st);
    return MOVE_PROGRESS;
}

/* One decoder step over what the destination can take now. *wait: no more input or room
 * (or the body ended). */
static enum move body_step(struct http_stream *st, struct body_move *bm, struct h1_error *err,
                           bool *wait)
{
    ssize_t room = bm->out->send_room(st);
    if (room < 0)
        return MOVE_ERROR;
    size_t take = stream_body_budget(st, bm->response, (size_t)room);
    size_t avail = bm->src ? bm->src->len : 0;
    size_t len = avail < take ? avail : take;
    *wait = true;
    /* a body whose length is all here ends without room (its last bytes may have gone by
     * splice, around the decoder) */
    bool whole = bm->dec->kind == HTTP_BODY_LENGTH && !bm->dec->remaining;
    if ((room == 0 && !whole) || (len == 0 && !bm->eof && !whole))
        return MOVE_NONE;
    size_t used = 0, dlen = 0;
    const char *data = NULL;
    int r = h1_body_step(bm->dec, bm->src ? hbuf_head(bm->src) : "", len, bm->eof && len == avail,
                         &used, &data, &dlen, err);
    if (r == H1B_ERROR)
        return MOVE_ERROR;
    if (r == H1B_DATA && dlen) {
        unsigned status =
            stream_body_piece(st, bm->response, &data, &dlen, false, (size_t)room, &err->reason);
        if (status || bm->out->send_data(st, data, dlen) < dlen) {
            err->status = (uint16_t)(status ? status : 500);
            return MOVE_ERROR;
        }
    }
    if (used) {
        hbuf_consume(bm->src, (uint32_t)used);
        if (bm->count)
            *bm->count += used;
    }
    if (r == H1B_DONE) {
        if (bm->dec->kind == HTTP_BODY_CHUNKED && bm->dec->trailer_len)
            h1_body_trailers(bm->dec, bm->m, &st->t.arena);
        *bm->end = BODY_LAST_WORD;
    }
    *wait = r == H1B_AGAIN;
    return used || r == H1B_DONE ? MOVE_PROGRESS : MOVE_NONE;
}

enum move h1_move_body(struct http_stream *st, struct body_move *bm, struct h1_error *err)
{
    enum move r = MOVE_NONE;
    for (int guard = 0; guard < 64; guard++) {
        if (*bm->end) {
            enum move f = body_finish(st, bm, err);
            return f == MOVE_NONE ? r : f;
        }
        bool wait;
        enum move m = body_step(st, bm, err, &wait);
        if (m == MOVE_ERROR)
            return m;
        if (m == MOVE_PROGRESS)
            r = m;
        if (wait)
            return r;
    }
    return r;
}

/* Data room in *bp (compacted when short) for a body written `chunked` or not; -1 when
 * there is no buffer. */
ssize_t h1_body_room(struct worker *w, struct hbuf **bp, bool chunked)
{
    struct hbuf *b = h1_buf_of(w, bp, HBUF_SIZE);
    if (!b)
        return -1;
    if (hbuf_room(b) < b->cap / 4)
        hbuf_compact(b);
    uint32_t overhead = chunked ? CHUNK_OVERHEAD : 0;
    return hbuf_room(b) > overhead ? (ssize_t)(hbuf_room(b) - overhead) : 0;
}

/* Appends body data to *bp, as one chunk when `chunked`; what fits. */
size_t h1_body_put(struct hbuf **bp, bool chunked, const char *p, size_t n)
{
    struct hbuf *b = *bp; /* the caller asked h1_body_room first */
    uint32_t overhead = chunked ? CHUNK_OVERHEAD : 0;
    size_t room = b && hbuf_room(b) > overhead ? hbuf_room(b) - overhead : 0;
    size_t take = n < room ? n : room;
    if (take == 0)
        return 0;
    if (chunked)
        b->len += (uint32_t)h1_write_chunk_head(take, hbuf_tail(b));
    memcpy(hbuf_tail(b), p, take);
    b->len += (uint32_t)take;
    if (chunked) {
        memcpy(hbuf_tail(b), "\r\n", 2);
        b->len += 2;
    }
    return take;
}

/* The last chunk with m's trailers into *bp when `chunked` (else nothing: a body sent
 * with a length or until close has no trailers); false while it does not fit. */
bool h1_body_last(struct worker *w, struct hbuf **bp, bool chunked, const struct http_msg *m)
{
    if (!chunked)
        return true;
    struct hbuf *b = h1_buf_of(w, bp, HBUF_SIZE);
    if (!b)
        return false;
    ssize_t n = h1_write_last_chunk(m, hbuf_tail(b), hbuf_room(b));
    if (n < 0) {
        hbuf_compact(b);
        n = h1_write_last_chunk(m, hbuf_tail(b), hbuf_room(b));
    }
    if (n < 0)
        return false;
    b->len += (uint32_t)n;
    return true;
}
