/* ip_access.c — the ip_access filter: the client's address (the peer, or the PROXY
 * protocol's client) against the route's or listener's allow and deny prefixes (CIDR tries,
 * net/cidr.h; deny wins; with an allow list only its members pass). Refused: `status`
 * (403 by default).
 */
#include "http/filters/auth-t.h"
#include "http/filters/deny.h"

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_ip_access_conf *c = conf;
    if (acl_permits(&c->acl, &t->client))
        return FILTER_CONTINUE;
    return filter_deny(t, c->status, "client address not allowed", HFE_IP_DENIED);
}

const struct filter_ops filter_ip_access = {
    .name = "ip_access",
    .on_request = on_request,
};
