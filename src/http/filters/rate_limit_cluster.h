/* rate_limit_cluster.h — the slots of a cluster-wide limit: what workers decide on and
 * what the control thread exchanges with Redis (proxy/redis_sync.c).
 *
 * Design: every Strata process counts a key's requests in fixed windows in Redis
 * (INCRBY on "<prefix><limit>:<key hash>:<window number>"). A slot holds one key (its
 * 64-bit hash, the same in every process) and:
 *   global   the window word (core/rate.h) of the counts Redis last returned: this
 *            window's and the previous one's, all processes together;
 *   pending  requests this process allowed since its last exchange;
 *   inflight requests sent to Redis whose answer has not come back.
 *   others   what other processes added between this process's last two exchanges.
 * A worker allows a request when the sliding estimate of global + inflight + pending stays
 * under the limit AND pending stays under this process's share of what is left: (left -
 * others) / (4 x nodes), at least 1. A process's view of the others is one exchange late
 * and the processes' rounds drift apart; assuming the others take as much as in the round
 * before, and taking only a quarter of a fair share per round, keeps the N processes
 * together within about N requests of the budget (a simulation of two processes with
 * drifting rounds and answer delays, at any demand: 302 for 300; half shares gave up to
 * 348), at the cost of a burst reaching the whole budget in some twenty rounds (one second
 * at 50 ms) rather than one. A key Redis has not answered for yet (new here, perhaps spent
 * elsewhere) gets 1 % of the limit (at least one request) until the first exchange. Workers only do compare-and-swaps on the slot; the control thread is the
 * only writer of `global` and `others`.
 *
 * Bounded memory: `slots` slots; a slot idle for two windows with nothing pending is
 * freed by the control thread. A key whose slot another live key holds is decided by the
 * limit's local table instead (counted as fallback).
 */
#ifndef STRATA_HTTP_FILTERS_RATE_LIMIT_CLUSTER_H
#define STRATA_HTTP_FILTERS_RATE_LIMIT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/rate.h"

struct rl_cluster;

/* A table of `slots` (a power of two) for the limit `name` (which seeds the key hash, so
 * that processes with the same limit name agree on it). NULL when out of memory. */
struct rl_cluster *rl_cluster_new(const char *name, uint32_t slots);
void rl_cluster_free(struct rl_cluster *cl);
uint32_t rl_cluster_nslots(const struct rl_cluster *cl);

/* The key's hash shared by every process (never 0). */
uint64_t rl_cluster_fp(const struct rl_cluster *cl, const void *key, size_t len);

enum rl_take { RL_TAKE_OTHER_KEY = -1, RL_TAKE_REFUSED = 0, RL_TAKE_ALLOWED = 1 };

/* Worker: counts one request of key `fp` in slot `slot` against `rw` shared by `nodes`
 * processes exchanging every sync_ms. *st describes what is left (retry_ms at least the
 * next exchange when only this process's share is spent). */
enum rl_take rl_cluster_take(struct rl_cluster *cl, uint32_t slot, uint64_t fp,
                             const struct rate_window *rw, uint32_t nodes, uint32_t sync_ms,
                             uint64_t now_ms, struct rate_state *st);

/* Control thread: what to send for slot i. Frees a slot idle for two windows; else moves
 * its pending count to inflight. Returns true (with *fp and *sent) when the slot is to be
 * exchanged: it has something to send or was used in the last two windows. */
bool rl_cluster_collect(struct rl_cluster *cl, uint32_t i, uint64_t now_ms, uint32_t window_ms,
                        uint64_t *fp, uint32_t *sent);
/* Control thread: Redis answered (ok) for slot i with the counts of window number `wno`
 * (cur) and the one before (prev), after `sent` were added; or failed (!ok). */
void rl_cluster_answer(struct rl_cluster *cl, uint32_t i, uint64_t fp, uint32_t sent, bool ok,
                       uint64_t wno, uint32_t window_ms, uint32_t prev, uint32_t cur);

#endif
