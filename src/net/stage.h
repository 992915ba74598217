/* stage.h — the connection stage: what every accepted TCP connection goes through before
 * a listener mode (the L4 relay, the HTTP codec) takes it, in this order:
 *
 *   admission (caps, ACL, per-source limits)
 *   → PROXY v1/v2 header (listeners with proxy_protocol.accept; peeked, then consumed)
 *   → the ClientHello peeked for SNI routes (tcp passthrough: the bytes stay in the
 *     socket for the relay) or a TLS handshake (listeners with `tls:`, termination)
 *   → the mode's start function, with a `struct accepted`.
 *
 * A connection that needs none of the steps goes straight from accept to the mode, with
 * no stage object. Failures are counted per listener, logged as one `conn ... end=...`
 * line (at most STAGE_LOG_PER_SEC a second per worker) and closed; nothing else runs.
 */
#ifndef STRATA_NET_STAGE_H
#define STRATA_NET_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config-t.h"
#include "net/addr.h"
#include "net/admission.h"
#include "net/conn.h"

struct worker;

/* What the stage hands to a mode. The mode copies it into its session and owns the
 * connection, the admission units and the registration from then on. */
struct accepted {
    struct conn cli;            /* fd, transport (handshake done), readiness */
    struct sockaddr_any client; /* the peer, or the source its PROXY header carried */
    struct sockaddr_any dst;    /* the PROXY header's destination; AF_UNSPEC if none */
    struct admission ad;        /* units held, given back by admission_release */
    struct backend *backend;    /* an SNI route's choice; NULL: the listener's backend */
    uint64_t start_ms;          /* accept time */
    bool registered;            /* cli.h is in the loop already: the mode calls
                                   conn_take_registration instead of ev_add */
};

/* The mode's entry point: takes ownership of everything in *a (a itself is the stage's). */
typedef void (*stage_start_fn)(struct worker *w, struct listener_conf *lc, struct accepted *a);

/* Takes ownership of fd, freshly accepted on a listener of lc. */
void stage_accept(struct worker *w, struct listener_conf *lc, int fd,
                  const struct sockaddr_any *peer, stage_start_fn start);

/* Registers the mode's copy of an accepted connection in the loop (ev_add, or pointing
 * the existing registration at the new handler). 0, or -1 with errno. */
int conn_take_registration(struct worker *w, struct conn *c, const struct accepted *a);

/* Per worker: set up, end every connection still in the stage (shutdown; their memory
 * goes through the loop's deferred frees), and tear down (after the loop's reap). */
void stage_worker_init(struct worker *w);
void stage_close_all(struct worker *w);
void stage_worker_free(struct worker *w);
/* Connections in the stage now (a draining worker waits for them too). */
uint32_t stage_count(const struct worker *w);

/* Ends the current second of the log budget: logs how many failures it left out. */
void stage_log_tick(struct worker *w);

#endif
