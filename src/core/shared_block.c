/* shared_block.c — see shared_block.h. */
#include "core/shared_block.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/bug.h"

/* From this size on a block is anonymous pages (zero until written). */
#define SHARED_MMAP_MIN (64 * 1024)

struct shared_head {
    _Atomic uint32_t refs;
    size_t map_len; /* the mapping's length when mmap'd, 0 when malloc'd */
} __attribute__((aligned(CACHELINE)));

_Static_assert(sizeof(struct shared_head) == CACHELINE, "one cache line before the block");

static struct shared_head *head_of(void *b)
{
    return (struct shared_head *)b - 1;
}

void *shared_block_new(size_t size)
{
    size_t len = sizeof(struct shared_head) + size;
    struct shared_head *h;
    if (size >= SHARED_MMAP_MIN) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        h = p;
        h->map_len = len;
    } else {
        len = (len + CACHELINE - 1) / CACHELINE * CACHELINE;
        if (!(h = aligned_alloc(CACHELINE, len)))
            return NULL;
        memset(h, 0, len);
        h->map_len = 0;
    }
    atomic_init(&h->refs, 1);
    return h + 1;
}

void shared_block_put(void *b)
{
    if (!b)
        return;
    struct shared_head *h = head_of(b);
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (h->map_len)
        munmap(h, h->map_len);
    else
        free(h);
}

void shared_block_adopt(void **slot, void *old)
{
    if (!old || *slot == old)
        return;
    atomic_fetch_add_explicit(&head_of(old)->refs, 1, memory_order_relaxed);
    shared_block_put(*slot);
    *slot = old;
}
