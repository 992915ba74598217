/* tcp_proxy.h — the L4 TCP relay: accept → pick a server → connect (with retries on
 * other servers) → relay both directions (splice for bulk, a copy for small messages) with
 * back-pressure and half-close → one log line when the session ends.
 */
#ifndef STRATA_L4_TCP_PROXY_H
#define STRATA_L4_TCP_PROXY_H

#include "ev/worker.h"
#include "net/addr.h"

/* The `mode: tcp` operations (net/listener_mode.h). Per worker: the sessions, their pool,
 * relay buffers, a pipe pool, the copy path's scratch buffer and the refusal-log budget. */
extern const struct listener_mode_ops tcp_mode_ops;

/* Takes ownership of fd, a freshly accepted client connection on ls. */
void tcp_accept(struct worker *w, struct listen_sock *ls, int fd, const struct sockaddr_any *peer);

#endif
