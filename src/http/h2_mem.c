/* h2_mem.c — nghttp2's allocations from a worker's free lists; see h2_mem.h. */
#include "http/h2_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"

#define H2_MEM_STEP 64   /* size classes: 64, 128, ... H2_MEM_MAX bytes */
#define H2_MEM_MAX 1024
#define H2_MEM_KEEP 512  /* idle blocks kept per class */
#define CLASSES (H2_MEM_MAX / H2_MEM_STEP)
#define LARGE 0xffffffffu

/* Before each block: its class (or LARGE), padded so the block stays 16-byte aligned. */
struct head {
    uint32_t cls;
    uint32_t size; /* asked for (realloc copies this much) */
    uint64_t pad;
};

struct h2_mem {
    struct pool classes[CLASSES];
};

static void *mem_malloc(size_t size, void *user)
{
    struct h2_mem *m = user;
    struct head *h;
    if (size > UINT32_MAX - sizeof(*h))
        return NULL;
    if (size > H2_MEM_MAX) {
        if (!(h = malloc(sizeof(*h) + size)))
            return NULL;
        h->cls = LARGE;
    } else {
        uint32_t c = size ? (uint32_t)((size - 1) / H2_MEM_STEP) : 0;
        if (!(h = pool_get(&m->classes[c])))
            return NULL;
        h->cls = c;
    }
    h->size = (uint32_t)size;
    return h + 1;
}

static void mem_free(void *ptr, void *user)
{
    struct h2_mem *m = user;
    if (!ptr)
        return;
    struct head *h = (struct head *)ptr - 1;
    if (h->cls == LARGE)
        free(h);
    else
        pool_put(&m->classes[h->cls], h);
}

static void *mem_calloc(size_t n, size_t size, void *user)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = mem_malloc(n * size, user);
    if (p)
        memset(p, 0, n * size);
    return p;
}

static void *mem_realloc(void *ptr, size_t size, void *user)
{
    if (!ptr)
        return mem_malloc(size, user);
    struct head *h = (struct head *)ptr - 1;
    if (h->cls != LARGE && size <= (h->cls + 1) * H2_MEM_STEP) {
        h->size = (uint32_t)size;
        return ptr;
    }
    void *p = mem_malloc(size, user);
    if (!p)
        return NULL;
    memcpy(p, ptr, h->size < size ? h->size : size);
    mem_free(ptr, user);
    return p;
}

struct h2_mem *h2_mem_new(void)
{
    struct h2_mem *m = malloc(sizeof(*m));
    if (!m)
        return NULL;
    for (uint32_t i = 0; i < CLASSES; i++)
        pool_init(&m->classes[i], sizeof(struct head) + (i + 1) * H2_MEM_STEP, H2_MEM_KEEP);
    return m;
}

void h2_mem_free(struct h2_mem *m)
{
    if (!m)
        return;
    for (uint32_t i = 0; i < CLASSES; i++)
        pool_destroy(&m->classes[i]);
    free(m);
}

nghttp2_mem *h2_mem_of(struct h2_mem *m, nghttp2_mem *out)
{
    if (!m)
        return NULL;
    *out = (nghttp2_mem){m, mem_malloc, mem_free, mem_calloc, mem_realloc};
    return out;
}
