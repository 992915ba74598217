/* admin.h — the admin listener on the control thread's loop: a deliberately small
 * HTTP/1.x server, one request per connection (parsed by the HTTP/1 codec), for GET
 * /metrics (Prometheus text from the metric table) and GET /healthz. Every connection is
 * bounded in request size (8 KiB), time (5 s to send the request) and number (64 at
 * once); nothing on it can block the loop.
 */
#ifndef STRATA_ADMIN_ADMIN_H
#define STRATA_ADMIN_ADMIN_H

#include "config/config-t.h"
#include "net/addr.h"

struct ev_loop;
struct admin;

#define ADMIN_MAX_CONNS 64
#define ADMIN_MAX_REQUEST 8192       /* request line + headers, bytes */
#define ADMIN_READ_TIMEOUT_MS 5000   /* to receive the whole request */
#define ADMIN_WRITE_TIMEOUT_MS 30000 /* to send the whole response */

/* Binds cfg->admin_addr (SO_REUSEADDR, non-blocking, close-on-exec) and serves it on
 * `loop` (the control thread's). Takes a reference on cfg, whose metrics it serves.
 * Returns NULL on failure with *why set to the reason, e.g. "Address already in use"
 * (static storage of this thread, valid until the next admin_start). */
struct admin *admin_start(struct ev_loop *loop, struct config *cfg, const char **why);

/* The listening socket (a binary upgrade hands it to the new process). */
int admin_listen_fd(const struct admin *a);

/* The address actually bound (useful when the configured port is 0). Returns 0 or -1. */
int admin_local_addr(const struct admin *a, struct sockaddr_any *out);

/* Serves cfg's metrics from now on (after a reload): takes a reference on cfg and drops
 * the one on the previous configuration. The listening address is not changed. */
void admin_set_config(struct admin *a, struct config *cfg);

/* POST /reload calls fn(arg, out) on the control thread: 0 with a summary in out, or -1
 * with the reasons (answered 422). */
struct strbuf;
typedef int (*admin_reload_fn)(void *arg, struct strbuf *out);
void admin_set_reload(struct admin *a, admin_reload_fn fn, void *arg);

/* Closes the listener and every admin connection, frees a, drops its config reference.
 * a may be NULL. Must run on the loop's thread, outside an I/O callback batch (in a
 * timer, in loop->after_events, or once the loop has stopped). */
void admin_stop(struct admin *a);

#endif
