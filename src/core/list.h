/* list.h — intrusive circular doubly linked list (the kernel's shape).
 * An empty list is a head whose next and prev point to itself.
 */
#ifndef STRATA_CORE_LIST_H
#define STRATA_CORE_LIST_H

#include <stdbool.h>

#include "bug.h"

struct list {
    struct list *next, *prev;
};

static inline void list_init(struct list *h)
{
    h->next = h->prev = h;
}
static inline bool list_empty(const struct list *h)
{
    return h->next == h;
}

static inline void list_add_tail(struct list *h, struct list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Unlinks n and leaves it self-linked, so a second list_del is harmless. */
static inline void list_del(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)

/* Safe against removal of the current element. */
#define list_for_each_safe(pos, tmp, head)                                                         \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
