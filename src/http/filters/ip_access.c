/* ip_access.c — the ip_access filter: the client's address (the peer, or the PROXY
 * protocol's client) against the route's or listener's allow and deny prefixes (CIDR tries,
 * net/cidr.h; deny wins; with an allow list only its members pass), and its country and
 * continent (t->geo, looked up once per request in the configured geo database) against
 * lists of codes, the same way. Refused: `status` (403 by default).
 */
#include "http/filters/auth-t.h"
#include "http/filters/deny.h"
#include "stats/geo.h"

/* A list given and the code in it (an unknown location, "", is in no list). */
static bool listed(const struct geo_codes *c, const char code[3])
{
    return c->count && geo_codes_has(c, code);
}

/* Prefixes and locations together: deny lists first, then the allow lists (any). */
static enum filter_verdict by_location(struct http_txn *t, const struct filter_ip_access_conf *c)
{
    const struct acl *a = &c->acl;
    const struct geo_info *g = &t->geo;
    if (cidr_set_contains(&a->deny, &t->client))
        return filter_deny(t, c->status, "client address not allowed", HFE_IP_DENIED);
    if (listed(&a->countries.deny, g->country) || listed(&c->continents.deny, g->continent))
        return filter_deny(t, c->status, "client location not allowed", HFE_IP_DENIED);
    bool allow_lists = a->has_allow || a->countries.allow.count || c->continents.allow.count;
    if (!allow_lists || (a->has_allow && cidr_set_contains(&a->allow, &t->client)) ||
        listed(&a->countries.allow, g->country) || listed(&c->continents.allow, g->continent))
        return FILTER_CONTINUE;
    return filter_deny(t, c->status, "client location not allowed", HFE_IP_DENIED);
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_ip_access_conf *c = conf;
    if (c->geo)
        return by_location(t, c);
    if (acl_permits(&c->acl, &t->client))
        return FILTER_CONTINUE;
    return filter_deny(t, c->status, "client address not allowed", HFE_IP_DENIED);
}

const struct filter_ops filter_ip_access = {
    .name = "ip_access",
    .on_request = on_request,
};
