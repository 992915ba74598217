/* tcp_proxy.h — the L4 TCP relay: accept → pick a server → connect (with retries on
 * other servers) → relay both directions (splice for bulk, a copy for small messages) with
 * back-pressure and half-close → one log line when the session ends.
 */
#ifndef STRATA_L4_TCP_PROXY_H
#define STRATA_L4_TCP_PROXY_H

#include "ev/worker.h"
#include "net/addr.h"
#include "net/stage.h"

/* The `mode: tcp` operations (net/listener_mode.h). Per worker: the sessions, their pool,
 * relay buffers and a pipe pool. */
extern const struct listener_mode_ops tcp_mode_ops;

/* Takes a connection the stage admitted (net/stage.h): connects it to a server. */
void tcp_start(struct worker *w, struct listener_conf *lc, struct accepted *a);

#endif
