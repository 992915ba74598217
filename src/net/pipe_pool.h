/* pipe_pool.h — per-worker cache of kernel pipes used to splice(2) between sockets.
 * A relay direction holds a pipe only while bytes are in flight through it, so idle
 * connections hold none. Only empty pipes go back to the pool.
 */
#ifndef STRATA_NET_PIPE_POOL_H
#define STRATA_NET_PIPE_POOL_H

#include <stdint.h>

struct pipe_pair {
    int rd, wr;
};

struct pipe_pool {
    struct pipe_pair *free;
    uint32_t nfree, cap;
    uint32_t pipe_size; /* F_SETPIPE_SZ applied to new pipes; 0 = kernel default */
    uint64_t created, failed;
};

int pipe_pool_init(struct pipe_pool *pp, uint32_t cap, uint32_t pipe_size);
/* 0 and *out filled, or -1 (pipe creation failed: the caller falls back to copying). */
int pipe_pool_get(struct pipe_pool *pp, struct pipe_pair *out);
/* Returns an EMPTY pipe to the pool (or closes it when full). */
void pipe_pool_put(struct pipe_pool *pp, struct pipe_pair p);
/* Closes a pipe that may still hold data. */
void pipe_close(struct pipe_pair p);
void pipe_pool_destroy(struct pipe_pool *pp);

#endif
