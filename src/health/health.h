/* health.h — server health: active TCP/UDP/HTTP checks run by the control thread, passive checks
 * fed by the workers' connect results, and the single place where a server's `up` flag
 * changes (server_set_up), so every transition is logged exactly once.
 *
 * Threads: health_start/health_stop and the checks run on the control thread's loop;
 * health_passive_report and server_set_up may be called from any thread (atomics only).
 */
#ifndef STRATA_HEALTH_HEALTH_H
#define STRATA_HEALTH_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config-t.h"

struct ev_loop;
struct health;

/* Period of the control-thread tick that ends passive cooldowns. */
#define HEALTH_PASSIVE_TICK_MS 250

/* Starts checking every server of cfg on `loop` (the control thread's): an active TCP, UDP
 * or HTTP check per server of each backend with hc.type != HC_NONE (first one within
 * ~250 ms, with jitter), and the passive-cooldown tick when some backend without active
 * checks has passive.fall > 0; servers the runtime API adds later get their active check
 * within HEALTH_PASSIVE_TICK_MS. Takes a reference on cfg. Returns NULL (logged) on
 * allocation failure. A socket error on our side (EMFILE...) skips a check without a
 * verdict.
 * HTTP: each check connects, sends "METHOD PATH HTTP/1.1" with Host, User-Agent
 * strata-health and Connection: close (after a PROXY v1 UNKNOWN / v2 LOCAL header when the
 * backend has send_proxy), and succeeds when the final status is in
 * [status_min, status_max]; hc.timeout_ms covers the connect and the status line. A method
 * that is not a token, or a path or host with spaces or control characters, makes every
 * check of that backend fail with "invalid check request" (the configuration should refuse
 * them first). */
struct health *health_start(struct ev_loop *loop, struct config *cfg);

/* Cancels timers, closes check sockets, frees h and drops its config reference. h may be
 * NULL. Must run on the loop's thread, outside an I/O callback batch (in a timer, in
 * loop->after_events, or once the loop has stopped): a pending event of the current batch
 * may still point at a check socket's handler. */
void health_stop(struct health *h);

/* Sets s->st.live->up with a compare-exchange. On a real transition it logs once
 * ("server B/S is DOWN: reason" as a warning, "... is UP: reason" as info) and returns
 * true; returns false when the server already was in that state. */
bool server_set_up(struct server *s, bool up, const char *reason);

/* Passive check, called by a worker after each upstream connect attempt to s (for UDP:
 * after a flow's first reply, or an ICMP error such as port unreachable). `ok`
 * resets the failure streak; a failure extends it, and when it reaches
 * backend->passive.fall (> 0) the server is marked down and st.live->passive_down_ms is set to
 * now_ms (mono_ms clock, never 0). It comes back through the active checks (after `rise`
 * successes) or, without them, after passive.cooldown_ms (health's control tick). */
void health_passive_report(struct server *s, bool ok, uint64_t now_ms);

#endif
