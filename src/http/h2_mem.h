/* h2_mem.h — nghttp2's memory from a worker's free lists (nghttp2_mem).
 *
 * nghttp2 allocates and frees a few small objects for every stream (the stream, its
 * outbound items, the copied header fields). With hundreds of streams in flight those
 * come and go in bursts larger than glibc's per-thread cache, so each one went through
 * malloc's bins. Here blocks up to 1 KiB come from one free list per size class of the
 * worker that owns the session (at most 512 idle blocks each), larger ones from malloc.
 * A session's blocks are allocated and freed on its worker's thread only.
 */
#ifndef STRATA_HTTP_H2_MEM_H
#define STRATA_HTTP_H2_MEM_H

#include <nghttp2/nghttp2.h>

struct h2_mem;

/* The free lists of one worker; NULL out of memory (nghttp2's default allocator is used
 * then). Freed with h2_mem_free once no session uses them. */
struct h2_mem *h2_mem_new(void);
void h2_mem_free(struct h2_mem *m);
/* The allocator to give nghttp2_session_*_new3 (nghttp2 copies it): m's lists, or NULL
 * (nghttp2's default) when m is NULL. */
nghttp2_mem *h2_mem_of(struct h2_mem *m, nghttp2_mem *out);

#endif
