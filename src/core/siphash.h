/* siphash.h — SipHash-2-4 (Aumasson & Bernstein), a keyed PRF: tables indexed by it under
 * a random key cannot be aimed at by clients (unlike the seeded FNV of core/hash.h). Used
 * by the per-source limits (net/src_limit.c) and the HTTP rate limits
 * (http/filters/rate_limit.c).
 */
#ifndef STRATA_CORE_SIPHASH_H
#define STRATA_CORE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash24(uint64_t k0, uint64_t k1, const void *in, size_t len);

/* Fills key[2] from getrandom(); without it (very old kernels), from the clock and the
 * pid: unpredictable enough to spread keys, weaker against a client that can measure
 * collisions. */
void siphash_random_key(uint64_t key[2]);

#endif
