/* admin.h — the admin listener on the control thread's loop: a deliberately small
 * HTTP/1.x server, one request per connection (parsed by the HTTP/1 codec), for GET
 * /metrics (Prometheus text from the metric table), GET /healthz and the runtime API
 * (/api/v1/..., admin_api.h). Every connection is bounded in request size (8 KiB of head,
 * 4 KiB of body with Content-Length), time (5 s to send the request) and number (64 at
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
#define ADMIN_MAX_BODY 4096          /* a request body (runtime API writes), bytes */
#define ADMIN_READ_TIMEOUT_MS 5000   /* to receive the whole request */
#define ADMIN_WRITE_TIMEOUT_MS 30000 /* to send the whole response */

struct http_msg;
struct admin_conn;

/* One complete request, as handed to an endpoint family's handler (valid during the call). */
struct admin_req {
    struct admin_conn *conn;
    const struct http_msg *m;
    const char *body; /* Content-Length bytes (none: len 0) */
    size_t body_len;
    const struct sockaddr_any *peer;
    struct config *cfg; /* the configuration in force */
};

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
