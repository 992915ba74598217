/* hbuf.c — see hbuf.h. */
#include "http/hbuf.h"

#include <stdlib.h>

struct hbuf *hbuf_get(struct pool *pool, uint32_t cap)
{
    struct hbuf *b;
    if (cap <= HBUF_SIZE) {
        b = pool_get(pool);
        cap = HBUF_SIZE;
    } else {
        b = malloc(sizeof(*b) + cap);
    }
    if (b) {
        b->off = b->len = 0;
        b->cap = cap;
    }
    return b;
}

void hbuf_put(struct pool *pool, struct hbuf *b)
{
    if (!b)
        return;
    if (b->cap == HBUF_SIZE)
        pool_put(pool, b);
    else
        free(b);
}
