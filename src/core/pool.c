/* pool.c — see pool.h. */
#include "pool.h"

#include <stdlib.h>

void pool_init(struct pool *p, size_t size, uint32_t max_free)
{
    p->size = size < sizeof(struct pool_item) ? sizeof(struct pool_item) : size;
    p->free = NULL;
    p->nfree = 0;
    p->max_free = max_free;
    p->allocated = 0;
}

void *pool_get(struct pool *p)
{
    struct pool_item *it = p->free;
    if (it) {
        p->free = it->next;
        p->nfree--;
    } else {
        it = malloc(p->size);
        if (!it)
            return NULL;
    }
    p->allocated++;
    return it;
}

void pool_put(struct pool *p, void *obj)
{
    struct pool_item *it = obj;
    p->allocated--;
    if (p->nfree >= p->max_free) {
        free(it);
        return;
    }
    it->next = p->free;
    p->free = it;
    p->nfree++;
}

void pool_destroy(struct pool *p)
{
    while (p->free) {
        struct pool_item *it = p->free;
        p->free = it->next;
        free(it);
    }
    p->nfree = 0;
}
