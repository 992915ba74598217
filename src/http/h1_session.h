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

/* Takes ownership of fd, a freshly accepted client connection on an HTTP listener. */
void h1_start(struct worker *w, struct listener_conf *lc, struct accepted *a);

/* Per-worker setup (right after the worker is zeroed) and teardown of the HTTP lists and
 * pools; 0 or -1 (out of memory). h1_worker_free is safe after a failed init. */
int h1_worker_init(struct worker *w, const struct config *cfg);
void h1_worker_free(struct worker *w);

/* After each event batch: deferred work, then frees what closed during the batch. */
void h1_after_events(struct worker *w);
/* Draining: idle connections close now, busy ones after their current response. */
void h1_drain(struct worker *w);
/* Ends every connection now. */
void h1_close_all(struct worker *w);

#endif
