/* udp_quic.c — see udp_quic.h. The server-ID lookup is a linear scan of the backend's
 * servers: it runs once per new flow, and backends hold few servers. The rendezvous seed
 * of a server is a hash of its name (the address when unnamed), so instances configured
 * alike agree without sharing state.
 */
#include "udp_quic.h"

#include <math.h>
#include <string.h>

#include "core/hash.h"
#include "net/quic.h"

#define RENDEZVOUS_SEED 0x72656e64657a766full /* "rendezvo": fixed, like the DCID hash */

static struct server *server_by_quic_id(const struct backend *b, const uint8_t *sid, size_t len)
{
    for (uint32_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (s->quic_id_len == len && memcmp(s->quic_id, sid, len) == 0)
            return s;
    }
    return NULL;
}

enum udp_quic_verdict udp_quic_classify(const struct udp_quic_conf *q, const struct backend *b,
                                        const uint8_t *pkt, size_t len, struct udp_quic_route *out)
{
    struct quic_hdr h;
    const uint8_t *sid;
    memset(out, 0, sizeof(*out));
    if (quic_parse(pkt, len, q->cid_len, &h, NULL) < 0)
        return UQ_DROP_INVALID;
    if (quic_lb_server_id(h.dcid, h.dcid_len, q->server_id_len, (uint8_t)q->config_id, &sid) == 0)
        out->by_id = server_by_quic_id(b, sid, q->server_id_len);
    /* a short header of a server that is down is hashed too: the live server it reaches
     * can reset the connection at once, where a drop would leave the client to time out */
    out->hashable = h.is_long || out->by_id;
    if (!out->hashable)
        return UQ_DROP_UNROUTABLE;
    out->dcid_hash = quic_dcid_hash(h.dcid, h.dcid_len);
    return UQ_ROUTE;
}

/* u in (0, 1), never 0 or 1: the top 53 bits plus one half, scaled. */
static double unit_interval(uint64_t x)
{
    return ((double)(x >> 11) + 0.5) * 0x1p-53;
}

struct server *udp_quic_rendezvous(struct backend *b, uint64_t h, const struct lb_req *req)
{
    struct server *best = NULL;
    double best_score = 0;
    for (uint32_t i = 0; i < b->nservers; i++) {
        struct server *s = &b->servers[i];
        if (!lb_eligible(s, req))
            continue;
        uint64_t seed = hash64(s->name, strlen(s->name), RENDEZVOUS_SEED);
        double score = -(double)lb_weight(s) / log(unit_interval(hash_mix64(h ^ seed)));
        if (!best || score > best_score) {
            best = s;
            best_score = score;
        }
    }
    return best;
}

struct server *udp_quic_pick(struct backend *b, const struct udp_quic_route *r,
                             const struct lb_req *req, bool *by_id)
{
    struct lb_req tier = *req;
    *by_id = false;
    if (r->by_id) {
        tier.backup = r->by_id->backup; /* a named server is taken from either tier */
        if (lb_eligible(r->by_id, &tier)) {
            *by_id = true;
            return r->by_id;
        }
    }
    if (!r->hashable)
        return NULL;
    tier.backup = false;
    struct server *s = udp_quic_rendezvous(b, r->dcid_hash, &tier);
    if (!s) {
        tier.backup = true;
        s = udp_quic_rendezvous(b, r->dcid_hash, &tier);
    }
    return s;
}
