/* hbuf.h — byte windows for the HTTP codecs: [off, off+len) inside data[cap].
 *
 * The common size comes from a per-worker pool; a listener allowing heads larger than
 * HBUF_SIZE gets malloc'd buffers of its own size. A connection holds a buffer only while
 * bytes are in it, so an idle keep-alive connection holds none.
 */
#ifndef STRATA_HTTP_HBUF_H
#define STRATA_HTTP_HBUF_H

#include <stdint.h>
#include <string.h>

#include "core/pool.h"

#define HBUF_SIZE 16384

struct hbuf {
    uint32_t off, len, cap;
    char data[];
};

/* A buffer of at least `cap` bytes (HBUF_SIZE ones from `pool`); NULL on ENOMEM. */
struct hbuf *hbuf_get(struct pool *pool, uint32_t cap);
void hbuf_put(struct pool *pool, struct hbuf *b);

static inline char *hbuf_head(struct hbuf *b)
{
    return b->data + b->off;
}
static inline char *hbuf_tail(struct hbuf *b)
{
    return b->data + b->off + b->len;
}
/* Bytes that can be appended without moving anything. */
static inline uint32_t hbuf_room(const struct hbuf *b)
{
    return b->cap - b->off - b->len;
}
static inline void hbuf_consume(struct hbuf *b, uint32_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}
/* Moves the bytes to the start, making all free room contiguous. */
static inline void hbuf_compact(struct hbuf *b)
{
    if (b->off && b->len)
        memmove(b->data, b->data + b->off, b->len);
    b->off = 0;
}

#endif
