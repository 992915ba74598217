/* bug.h — compiler helpers and the "impossible state" assertion.
 *
 * Error philosophy (doc/architecture.md): what the network, the config file or the
 * environment can do wrong is handled and counted; BUG_ON is only for states the code
 * itself must never reach. It aborts in every build so that a broken invariant is loud.
 */
#ifndef STRATA_CORE_BUG_H
#define STRATA_CORE_BUG_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define CACHELINE 64

#define BUG_ON(cond)                                                                               \
    do {                                                                                           \
        if (unlikely(cond)) {                                                                      \
            fprintf(stderr, "BUG at %s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
