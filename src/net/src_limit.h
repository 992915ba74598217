/* src_limit.h — per-source limits shared by every worker: concurrent connections and a
 * new-connection token bucket per client source, and a global connection cap. Atomics only
 * (no locks, no allocation after src_limits_new), fixed memory: 16 bytes a slot.
 *
 * Design: a source is a hash slot, not a key. The table is an array of slots indexed by
 * SipHash-2-4 of the source under a random key drawn at creation, so clients cannot aim at
 * a slot nor predict who shares theirs. Sources that collide share one budget: the limits
 * err on the strict side (an address is never allowed more than `max`/`burst`, it can be
 * refused early while its slot-mate is busy). Chosen over an open-addressing table with
 * CAS-claimed keys because (1) its invariant holds with single-word atomics: a key + count
 * pair claimed and freed by two threads at once can be duplicated across slots and double a
 * budget unless more machinery is added; (2) a flood of distinct sources (a botnet, or
 * rotating IPv6 addresses) fills a keyed table, whose fallback is a shared bucket anyway;
 * here the flood only costs the sources it collides with, about nsources/nslots of them.
 * Size the table well above the expected number of concurrently active sources
 * (1M slots = 16 MiB keeps shared slots near 1% with 10k active sources).
 *
 * A source is the client IP, port ignored. IPv4-mapped IPv6 addresses count as IPv4.
 * IPv6 sources are keyed by their /64: one subscriber or host usually owns a whole /64 and
 * can rotate through it freely, so per-address limits would be no limit at all. Non-IP
 * sources (AF_UNIX) all share one slot.
 */
#ifndef STRATA_NET_SRC_LIMIT_H
#define STRATA_NET_SRC_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"

#define SRC_LIMITS_DEFAULT_SLOTS 65536u
#define SRC_LIMITS_MAX_SLOTS (1u << 26)
/* Largest burst a bucket can hold (the bucket stores burst x 1000 in 24 bits). */
#define SRC_RATE_BURST_MAX 16000u

struct src_limits;

/* A table of `slots` slots, rounded up to a power of two (0 = SRC_LIMITS_DEFAULT_SLOTS,
 * capped at SRC_LIMITS_MAX_SLOTS), every counter 0 and every bucket full, keyed with a
 * fresh random key, one reference. NULL when out of memory. */
struct src_limits *src_limits_new(uint32_t slots);
/* One more reference (a reload's next generation keeps the table: proxy/reload.c). */
struct src_limits *src_limits_share(struct src_limits *l);
/* Drops a reference; the last one frees the table (no thread may use it then). */
void src_limits_free(struct src_limits *l);
uint32_t src_limits_nslots(const struct src_limits *l);

/* The slot of a source (same IPv4, or same IPv6 /64 -> same slot). Callers that check
 * several limits, or release later, compute it once and keep it (e.g. in the session). */
uint32_t src_slot_of(const struct src_limits *l, const struct sockaddr_any *a);

/* Takes one of the slot's `max` concurrent-connection units: true (the caller must
 * release it exactly once) or false (the slot holds max already; nothing to release).
 * The count never exceeds the largest `max` used with the slot. */
bool src_conn_acquire_slot(struct src_limits *l, uint32_t slot, uint32_t max);
void src_conn_release_slot(struct src_limits *l, uint32_t slot);
/* The slot's current count (a snapshot; for tests and diagnostics). */
uint32_t src_conn_count(const struct src_limits *l, uint32_t slot);

/* Token bucket: takes one token (true) or refuses (false, nothing consumed). The bucket
 * holds at most `burst` tokens (clamped to SRC_RATE_BURST_MAX) and regains `rate` a
 * second, credited per whole millisecond with exact integer arithmetic (in thousandths
 * of a token): at rate 3/s, a token is back 334 ms after use, not 333. rate 0 means no
 * refill. now_ms is the caller's monotonic clock (mono_ms()); a now_ms older than the
 * slot's last update (another thread read the clock earlier) refills nothing. */
bool src_rate_allow_slot(struct src_limits *l, uint32_t slot, uint64_t now_ms, uint32_t rate,
                         uint32_t burst);

static inline bool src_conn_acquire(struct src_limits *l, const struct sockaddr_any *a,
                                    uint32_t max)
{
    return src_conn_acquire_slot(l, src_slot_of(l, a), max);
}

static inline void src_conn_release(struct src_limits *l, const struct sockaddr_any *a)
{
    src_conn_release_slot(l, src_slot_of(l, a));
}

static inline bool src_rate_allow(struct src_limits *l, const struct sockaddr_any *a,
                                  uint64_t now_ms, uint32_t rate, uint32_t burst)
{
    return src_rate_allow_slot(l, src_slot_of(l, a), now_ms, rate, burst);
}

/* A process-wide connection cap (zero-initialized = no connection held). Place it on its
 * own cache line: every worker writes it on every accept and close. */
struct global_conns {
    _Atomic uint32_t active;
};

/* Same contract as src_conn_acquire_slot: true = one unit taken, release it once. */
bool global_conn_acquire(struct global_conns *g, uint32_t max);
void global_conn_release(struct global_conns *g);

#endif
