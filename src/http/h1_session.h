/* h1_session.h — an HTTP/1.1 client connection on a `mode: http` listener: requests read
 * and parsed (http/h1.h), routed and filtered on the message model, proxied over pooled
 * keep-alive server connections (upstream/pool.h), responses written back in order;
 * keep-alive, pipelining, 100-continue, WebSocket/Upgrade tunnels, retries, timeouts, and
 * one access log line per request.
 */
#ifndef STRATA_HTTP_H1_SESSION_H
#define STRATA_HTTP_H1_SESSION_H

#include <stddef.h>

#include "ev/worker.h"
#include "net/addr.h"
#include "net/stage.h"

/* The `mode: http` operations (net/listener_mode.h). Per worker: the client connections
 * and their pool (w->mode_state[MODE_HTTP]); the process-wide part numbers the servers
 * and opens the access logs. */
extern const struct listener_mode_ops http_mode_ops;

/* Takes a connection the stage admitted (net/stage.h) on an HTTP listener. */
void h1_start(struct worker *w, struct listener_conf *lc, struct accepted *a);

#endif
