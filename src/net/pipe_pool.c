/* pipe_pool.c — see pipe_pool.h. */
#include "pipe_pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int pipe_pool_init(struct pipe_pool *pp, uint32_t cap, uint32_t pipe_size)
{
    pp->free = calloc(cap ? cap : 1, sizeof(*pp->free));
    if (!pp->free)
        return -1;
    pp->nfree = 0;
    pp->cap = cap;
    pp->pipe_size = pipe_size;
    pp->created = pp->failed = 0;
    return 0;
}

int pipe_pool_get(struct pipe_pool *pp, struct pipe_pair *out)
{
    if (pp->nfree > 0) {
        *out = pp->free[--pp->nfree];
        return 0;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        pp->failed++;
        return -1;
    }
    if (pp->pipe_size)
        fcntl(fds[1], F_SETPIPE_SZ, (int)pp->pipe_size); /* best effort */
    pp->created++;
    out->rd = fds[0];
    out->wr = fds[1];
    return 0;
}

void pipe_close(struct pipe_pair p)
{
    close(p.rd);
    close(p.wr);
}

void pipe_pool_put(struct pipe_pool *pp, struct pipe_pair p)
{
    if (pp->nfree < pp->cap)
        pp->free[pp->nfree++] = p;
    else
        pipe_close(p);
}

void pipe_pool_destroy(struct pipe_pool *pp)
{
    while (pp->nfree > 0)
        pipe_close(pp->free[--pp->nfree]);
    free(pp->free);
    pp->free = NULL;
}

ssize_t spliced_in(struct pipe_pool *pp, struct spliced *sp, int fd, size_t max)
{
    if (sp->p.rd < 0 && pipe_pool_get(pp, &sp->p) < 0) {
        errno = ENOBUFS;
        return -1;
    }
    ssize_t n = splice(fd, NULL, sp->p.wr, NULL, max, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
        sp->bytes += (uint32_t)n;
        return n;
    }
    int err = errno;
    spliced_drop(pp, sp); /* empty: back to the pool */
    errno = err == EINVAL || err == ENOSYS ? ENOBUFS : err; /* refused here: copy */
    return n;
}

ssize_t spliced_out(struct pipe_pool *pp, struct spliced *sp, int fd)
{
    ssize_t n = splice(sp->p.rd, NULL, fd, NULL, sp->bytes, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0 && !(sp->bytes -= (uint32_t)n))
        spliced_drop(pp, sp);
    return n;
}

void spliced_drop(struct pipe_pool *pp, struct spliced *sp)
{
    if (sp->p.rd < 0)
        return;
    if (sp->bytes)
        pipe_close(sp->p);
    else
        pipe_pool_put(pp, sp->p);
    *sp = SPLICED_NONE;
}
