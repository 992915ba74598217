/* pipe_pool.h — per-worker cache of kernel pipes used to splice(2) between sockets.
 * A relay direction holds a pipe only while bytes are in flight through it, so idle
 * connections hold none. Only empty pipes go back to the pool.
 */
#ifndef STRATA_NET_PIPE_POOL_H
#define STRATA_NET_PIPE_POOL_H

#include <stdint.h>
#include <sys/types.h>

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

/* Bytes on their way from one socket to another through a pooled pipe (splice(2)), never
 * in user space (the TCP relay's bulk mode, HTTP bodies no filter sees). Holds a pipe
 * only while bytes are in it. */
struct spliced {
    struct pipe_pair p; /* valid while `bytes` > 0 */
    uint32_t bytes;
};

#define SPLICED_NONE ((struct spliced){{-1, -1}, 0})

/* Moves up to `max` bytes from socket fd into sp's pipe (call only while it is empty).
 * Returns the bytes (> 0), 0 at the end of the stream, or -1 with errno: EAGAIN (nothing
 * to read), ENOBUFS (no pipe, or splice refused for fd: copy instead) or fd's error. */
ssize_t spliced_in(struct pipe_pool *pp, struct spliced *sp, int fd, size_t max);
/* One splice of what sp holds to socket fd: the bytes written (> 0), or -1 with errno
 * (EAGAIN: fd is full). The pipe goes back to pp once empty. */
ssize_t spliced_out(struct pipe_pool *pp, struct spliced *sp, int fd);
/* Gives sp's pipe back (closed when bytes were left in it). */
void spliced_drop(struct pipe_pool *pp, struct spliced *sp);

#endif
