/* check.h — internals of the active checks, shared by the engine (health.c: scheduling,
 * timeouts, rise/fall, TCP and UDP) and the other check kinds (health_http.c). Each kind is
 * an ops table; the engine owns the socket's registration and timer, the kind only opens
 * the socket and interprets its events. Control thread only. Not for use outside
 * src/health, except by its unit tests.
 */
#ifndef STRATA_HEALTH_CHECK_H
#define STRATA_HEALTH_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config-t.h"
#include "ev/loop.h"
#include "net/conn.h"

struct hc_server;

/* One kind of active check. A check in flight ends exactly once, through hc_finish() or
 * hc_fail_errno(), called by `io` or by the engine (timeout, stop). */
struct hc_ops {
    const char *name; /* in log lines: "TCP", "UDP", "HTTP", "gRPC" */
    /* Optional. ALPN offered over TLS (wire format), instead of the backend's list. */
    const unsigned char *alpn;
    unsigned alpn_len;
    /* Optional. Prepares hs->kind once, at health_start. 0, or -1 out of memory. */
    int (*init)(struct hc_server *hs);
    /* Opens the check socket and starts the check (connect, maybe send). Returns the fd
     * (the engine registers it, edge-triggered, and arms the timeout), or -1: with *why set,
     * a failure of the check for that reason; else errno tells (a local error such as
     * EMFILE skips the check, any other one is a failure). */
    int (*open)(struct hc_server *hs, const char **why);
    /* An event on the check socket (hs->io.fd >= 0). */
    void (*io)(struct hc_server *hs, uint32_t events);
    /* Optional. Frees hs->kind. */
    void (*release)(struct hc_server *hs);
};

extern const struct hc_ops hc_tcp_ops, hc_udp_ops, hc_http_ops, hc_grpc_ops;

/* Per checked server. Invariant: io.fd >= 0 exactly while a check is in flight, and then
 * io is registered on the loop and `timer` is its timeout. */
struct hc_server {
    struct health *h;
    struct server *srv;
    const struct hc_ops *ops;
    void *kind; /* the kind's own state (HTTP: the request, the read buffer) */
    struct ev_handler io;
    /* The check's transport on io.fd: plain, or TLS for backends with `tls` (TCP and
     * HTTP kinds), whose handshake the engine finishes before the kind sees the socket
     * connected; kinds read and write through xc.xprt. */
    struct conn xc;
    bool handshaken;
    struct ev_timer timer;
    /* What the check in flight waits for, completing "timeout after 1s ..." (static
     * string; NULL: nothing added). Reset to NULL when a check begins. */
    const char *phase;
    uint64_t started_ms;   /* when the current or last check began */
    uint32_t oks, fails;   /* consecutive results; one of them is 0 */
    bool last_up;          /* st.live->up as this checker last saw it */
    bool local_err_logged; /* a local socket error was already logged */
};

/* Ends the check in flight: closes its socket, applies the result to the rise/fall
 * streaks (maybe flipping the server, with `why` in the DOWN line; why is copied and
 * ignored when ok) and schedules the next check. hs->kind's socket state is stale after. */
void hc_finish(struct hc_server *hs, bool ok, const char *why);

/* Where the connect of the check in flight stands after `events`: 0 connected,
 * EINPROGRESS still connecting, or the error that failed it. */
int hc_connect_result(const struct hc_server *hs, uint32_t events);

/* hc_finish(hs, false, text of err): "connection refused"; ETIMEDOUT gives "timeout after
 * 1s" followed by hs->phase. */
void hc_fail_errno(struct hc_server *hs, int err);

/* ---- HTTP response heads (health_http.c; pure, exposed for the unit tests) ---- */

#define HC_HTTP_READ_MAX 4096 /* bytes of a response read at most by one check */

enum hc_status_result {
    HC_STATUS_MORE, /* no verdict yet: read more */
    HC_STATUS_OK,   /* *status is the final response's status code (100..599, not 1xx
                     * except 101) */
    HC_STATUS_BAD,  /* not a valid HTTP/1.x response head: *bad_off is where that head
                     * starts, *reason what the codec found wrong (static string) */
};

/* Reads the start of a response, buf[0..len), with the HTTP/1 codec (h1_parse_response,
 * as strict as for proxied responses: CRLF line ends, valid fields): interim 1xx responses
 * (except 101) are skipped; the verdict comes with the end of the final response's head,
 * never waiting for its body. A line is judged once its end (or the read bound) arrives. */
enum hc_status_result hc_http_status(const char *buf, size_t len, unsigned *status, size_t *bad_off,
                                     const char **reason);

/* ---- gRPC health messages (health_grpc.c; pure, exposed for the unit tests) ---- */

/* The request body of grpc.health.v1.Health/Check: a gRPC frame (flag 0, 4-byte length)
 * holding HealthCheckRequest{service = 1} for service[0..len) (empty: no field). Its length,
 * or -1 when it does not fit in `cap` bytes (len + 16 always do, for len < 2 MiB). */
ssize_t hc_grpc_request(const char *service, size_t len, uint8_t *out, size_t cap);

/* Reads a response body: exactly one uncompressed gRPC frame holding a HealthCheckResponse;
 * *serving = its field 1 (1 SERVING, 2 NOT_SERVING...; 0 when absent), unknown fields
 * skipped. 0, or -1 with *why (static string). */
int hc_grpc_serving(const uint8_t *body, size_t len, uint64_t *serving, const char **why);

#endif
