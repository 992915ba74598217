/* tcp_proxy.h — the L4 TCP relay: accept → pick a server → connect (with retries on
 * other servers) → relay both directions (splice for bulk, a copy for small messages) with
 * back-pressure and half-close → one log line when the session ends.
 */
#ifndef STRATA_L4_TCP_PROXY_H
#define STRATA_L4_TCP_PROXY_H

#include "ev/worker.h"
#include "net/addr.h"
#include "net/stage.h"

/* Takes a connection the stage admitted (net/stage.h): connects it to a server. */
void tcp_start(struct worker *w, struct listener_conf *lc, struct accepted *a);

/* Runs the deferred work of the worker's run queue (retries, long transfers). */
void tcp_run_queue(struct worker *w);
/* Frees sessions closed during the last batch. */
void tcp_free_dead(struct worker *w);
/* Ends every open session now (end=shutdown). */
void tcp_close_all(struct worker *w);

/* Size of one session object, for the worker's pool. */
size_t tcp_session_size(void);

#endif
