/* udp_quic.h — QUIC connection-ID routing of new UDP flows (listeners with `udp.quic`).
 *
 * The first datagram of a new flow is classified (quic_parse, quic_lb_server_id) and its
 * server picked by the QUIC-LB server ID of its Destination Connection ID, or else by
 * weighted rendezvous hashing of the DCID, so every worker and every Strata instance with
 * the same servers makes the same choice. Reads only the snapshot and the servers' atomics.
 */
#ifndef STRATA_L4_UDP_QUIC_H
#define STRATA_L4_UDP_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config-t.h"
#include "lb/lb.h"

enum udp_quic_verdict {
    UQ_ROUTE,           /* pick with udp_quic_pick() */
    UQ_DROP_INVALID,    /* not a QUIC packet */
    UQ_DROP_UNROUTABLE, /* short header whose server ID is unknown or unroutable */
};

/* What the first datagram says about its server. */
struct udp_quic_route {
    struct server *by_id; /* the server whose quic_id the DCID carries, or NULL */
    uint64_t dcid_hash;   /* quic_dcid_hash() of the DCID, when hashable */
    bool hashable;        /* a long header, or a short header naming a known server */
};

/* Classifies the datagram pkt[0..len) for a listener with settings q in front of b. */
enum udp_quic_verdict udp_quic_classify(const struct udp_quic_conf *q, const struct backend *b,
                                        const uint8_t *pkt, size_t len, struct udp_quic_route *out);

/* The server for a classified datagram: r->by_id when it is eligible (up, under its limits,
 * not in req->exclude; its own tier), else the rendezvous choice over the eligible
 * primaries (then backups) when r->hashable. *by_id says which. NULL when none is. */
struct server *udp_quic_pick(struct backend *b, const struct udp_quic_route *r,
                             const struct lb_req *req, bool *by_id);

/* Weighted rendezvous hashing: the eligible server of req's tier with the highest score
 * -weight / ln(u), u uniform in (0, 1) from h and a hash of the server's name. NULL when
 * none is eligible. Removing a server moves only the keys it had. */
struct server *udp_quic_rendezvous(struct backend *b, uint64_t h, const struct lb_req *req);

#endif
