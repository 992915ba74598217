/* recent.h — the last errors of a listener, for the dashboard: a small ring per listener
 * and worker, written by its worker only (no lock: a sequence number tells the reader to
 * skip an entry being written), read by the admin thread. Fixed memory; strings are copied
 * and cut.
 */
#ifndef STRATA_STATS_RECENT_H
#define STRATA_STATS_RECENT_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/bug.h"

#define RECENT_PER_WORKER 32

struct recent_error {
    _Atomic uint32_t seq; /* odd while being written */
    uint64_t unix_ms;
    uint16_t status;      /* sent to the client, 0 = none (L4, or cut) */
    char where[48];       /* route (HTTP) or backend (TCP) */
    char reason[24];      /* the log's `end` */
    char detail[72];
    char path[72];        /* HTTP: the request path, without the query */
};

struct recent_ring {
    _Atomic uint32_t next; /* entries written so far */
    struct recent_error e[RECENT_PER_WORKER];
} __attribute__((aligned(CACHELINE)));

/* Appends an error (strings may be NULL). Only the ring's worker may call it. */
void recent_add(struct recent_ring *r, uint16_t status, const char *where, const char *reason,
                const char *detail, const char *path, uint32_t path_len);

/* Copies the stable entries of ring r into out[0..max) (unordered; seq cleared); returns
 * how many. */
unsigned recent_read(const struct recent_ring *r, struct recent_error *out, unsigned max);

#endif
