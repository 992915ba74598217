/* upstream.h — one attempt to reach a server, shared by the TCP relay and the HTTP stream:
 * pick a server with the backend's balancer (leaving out those already tried), reserve a
 * unit of its active count, start a non-blocking connect, attach the backend's transport,
 * arm the connect timeout, drive the connect and the transport's handshake to the end,
 * classify a failure once (our shortage or the server's fault), feed passive health and
 * the server's counters, and say whether another attempt is allowed.
 *
 * The callers keep only their policy: what a failure means for the client (the relay's
 * end reason, an HTTP status) and when an attempt is retried (the relay: any connect
 * failure of the server's; HTTP: also resets and statuses, see h1_exchange.c).
 *
 * Ownership: the caller owns the `struct up_attempt` (in its session or exchange) and the
 * `struct conn` being connected; while a->server is set the attempt holds one unit of
 * a->server->st.live->active, given back by upstream_release or a failure.
 */
#ifndef STRATA_UPSTREAM_UPSTREAM_H
#define STRATA_UPSTREAM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config-t.h"
#include "lb/lb.h"
#include "net/conn.h"

struct worker;
struct ev_timer;

/* Who is to blame for a failed connect or handshake. */
enum up_fault {
    UP_FAULT_LOCAL,  /* this process or host ran short (fds, memory, ports): no blame, no retry */
    UP_FAULT_SERVER, /* the server refused, reset, timed out, was unreachable or failed the
                      * handshake: counted, reported to passive health, excluded, retried */
};

/* The transports a server connection may use: part of a pool's key, so that connections
 * with different transport parameters to one server are never shared. */
enum up_xprt {
    UP_XPRT_PLAIN,
    UP_XPRT_TLS, /* the backend's `tls` (tls_client_attach) */
    UP_XPRT_KINDS
};

enum up_phase {
    UP_IDLE,      /* no connect in progress */
    UP_TCP,       /* connect(2) in progress */
    UP_HANDSHAKE, /* connected; the transport's handshake is in progress */
};

/* The attempts of one client connection (relay) or one request (HTTP). Zeroed, then
 * upstream_attempt_init. */
struct up_attempt {
    struct backend *backend;
    struct server *server; /* reserved (one unit of st.live->active) while set */
    struct lb_req req;     /* client/key for hashing balancers; req.exclude: servers tried */
    uint8_t tries;         /* servers picked so far (each counts, whatever its outcome) */
    uint8_t max_tries;     /* at least 1 */
    uint8_t phase;         /* enum up_phase of the connect in progress */
    int err;               /* errno of the last failure, 0 = none */
    const char *why;       /* its reason (static string) */
};

/* Local shortage or server fault, for an errno of socket(2)/connect(2)/epoll_ctl(2) or a
 * failed connect's SO_ERROR. Errors that are neither (EACCES, ENETUNREACH...) count as the
 * server's: retrying elsewhere may help, and health tells the operator. */
enum up_fault upstream_classify(int err);

/* Starts the bookkeeping for a new client connection or request: no server, no try, no
 * exclusion, no hash key (the caller may set a->req.key after), `client` for the hashing
 * balancers. max_tries: attempts allowed in total (>= 1; 0 is taken as 1). */
void upstream_attempt_init(struct up_attempt *a, struct backend *b, uint32_t max_tries,
                           const struct sockaddr_any *client);

/* True when the budget of attempts is spent. */
static inline bool upstream_exhausted(const struct up_attempt *a)
{
    return a->tries >= a->max_tries;
}

/* Picks and reserves a server for the next attempt: `prefer` (a sticky server) when it is
 * eligible and has room, else the backend's balancer, excluding the servers already
 * tried. Counts a try. NULL when the budget is spent or no server can take more; the
 * caller tells them apart with upstream_exhausted (tries == 0: none was ever eligible). */
struct server *upstream_pick(struct up_attempt *a, struct worker *w, struct server *prefer);

/* Records s, reserved by the caller's own chooser (server_acquire; QUIC routing), as the
 * server of the next attempt, and counts a try. Returns s. */
struct server *upstream_reserved(struct up_attempt *a, struct server *s);

/* The reserved server, handed over to a caller that keeps the unit past the attempt (a
 * UDP flow): the attempt no longer holds it. */
static inline struct server *upstream_hand_over(struct up_attempt *a)
{
    struct server *s = a->server;
    a->server = NULL;
    return s;
}

/* The transport hook: attaches the transport the backend asks for to c (an fd, not yet
 * connected): TLS when the backend has `tls` (tls_client_attach: SNI, ALPN, the session
 * this worker last had with s), else plain. 0, or -1 with errno. */
int upstream_attach_xprt(struct conn *c, struct backend *b, struct server *s, struct worker *w);

/* The pool key's transport kind for connections to b. */
enum up_xprt upstream_xprt_kind(const struct backend *b);

/* Connect outcomes. */
enum up_connect {
    UP_CONNECT_FAILED = -1, /* a->err, a->why set; the caller calls upstream_failed */
    UP_CONNECT_PENDING = 0, /* wait for events; then upstream_connect_step */
    UP_CONNECT_DONE = 1,    /* connected and the handshake done */
};

/* Starts connecting c (whose handler callback is `cb`) to a->server: socket, non-blocking
 * connect, transport, registration in w's loop, TCP_NODELAY once connected; arms `timer`
 * (may be NULL when the caller keeps its own deadline) for the backend's connect timeout.
 * On UP_CONNECT_FAILED c->h.fd is -1. */
enum up_connect upstream_connect(struct up_attempt *a, struct worker *w, struct conn *c,
                                 ev_io_cb cb, struct ev_timer *timer);

/* Drives a pending connect after an event on c (events already noted in c->flags): the
 * TCP connect's completion, then the transport's handshake. On UP_CONNECT_DONE the
 * server's conns_total is counted. The caller closes c after UP_CONNECT_FAILED. */
enum up_connect upstream_connect_step(struct up_attempt *a, struct worker *w, struct conn *c,
                                      uint32_t events);

/* What may follow a failed connect. */
enum up_next {
    UP_TRY_NEXT, /* the server's fault, budget left: another server may be tried */
    UP_SPENT,    /* the server's fault, and the budget of tries is spent */
    UP_SHORTAGE, /* our own shortage: nothing booked against the server, no retry */
};

/* A connect or handshake of the current attempt failed with err (ETIMEDOUT for the
 * timeout), `why` naming it (static; NULL: the caller words it from err). Classifies it
 * once: a server fault counts a connect error and is booked as upstream_fault(..., true);
 * a local shortage just gives the unit back. The caller closes the connection. */
enum up_next upstream_failed(struct up_attempt *a, struct worker *w, int err, const char *why);

/* Gives the last try back (HTTP: a stale pooled connection is the pool's doing, not a
 * server's, and is retried once for free). */
static inline void upstream_refund_try(struct up_attempt *a)
{
    if (a->tries)
        a->tries--;
}

/* Ends the current attempt for a fault of the server seen after the connect (HTTP: a
 * reset, a bad or 5xx response): the server is left out of the next pick, a passive-check
 * failure is booked when `report` (once per fault: false when already reported), and the
 * unit is given back. */
void upstream_fault(struct up_attempt *a, struct worker *w, bool report);

/* Passive health for s from what this worker saw: `ok` ends a failure streak, a failure
 * extends it (health.h). The one place the data path feeds passive health. */
void upstream_report(struct server *s, struct worker *w, bool ok);

/* Gives the reserved unit of a->server back (idempotent). */
void upstream_release(struct up_attempt *a);

#endif
