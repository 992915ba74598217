/* pool.h — per-worker free lists of fixed-size objects (relay buffers, pipes).
 * A pool belongs to one thread; no locking. It keeps at most `max_free` idle objects and
 * returns the rest to the system, so memory held by an idle proxy stays bounded.
 */
#ifndef STRATA_CORE_POOL_H
#define STRATA_CORE_POOL_H

#include <stddef.h>
#include <stdint.h>

struct pool_item {
    struct pool_item *next;
};

struct pool {
    size_t size; /* object size (>= sizeof(struct pool_item)) */
    struct pool_item *free;
    uint32_t nfree, max_free;
    uint64_t allocated; /* objects currently handed out */
};

/* Free objects a pool keeps by default (more are given back to malloc). */
#define POOL_MAX_FREE 1024

void pool_init(struct pool *p, size_t size, uint32_t max_free);
void *pool_get(struct pool *p); /* NULL on ENOMEM */
void pool_put(struct pool *p, void *obj);
void pool_destroy(struct pool *p);

/* Relay buffers: a bounded byte window [off, off+len) inside data[cap]. */
#define RELAY_BUF_SIZE 16384

struct relay_buf {
    uint32_t off, len;
    char data[RELAY_BUF_SIZE];
};

#endif
