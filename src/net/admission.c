/* admission.c — see admission.h. */
#include "net/admission.h"

#include "net/cidr.h"
#include "net/src_limit.h"
#include "stats/geo.h"

enum admit_result admit_connection(struct config *cfg, struct listener_conf *lc,
                                   const struct sockaddr_any *client, struct admission *ad,
                                   const char **why)
{
    uint32_t n = atomic_fetch_add_explicit(&lc->st.active, 1, memory_order_relaxed);
    ad->holds |= ADMIT_HOLD_LISTENER;
    if (lc->max_conns && n >= lc->max_conns)
        return ADMIT_LIMIT;
    if (cfg->max_conns) {
        if (!global_conn_acquire(cfg->global, cfg->max_conns))
            return ADMIT_LIMIT;
        ad->holds |= ADMIT_HOLD_GLOBAL;
    }
    if (lc->proxy.enabled && !cidr_set_contains(&lc->proxy.trusted, client)) {
        *why = "PROXY protocol source not trusted";
        return ADMIT_DENIED;
    }
    return ADMIT_OK;
}

enum admit_result admit_source(struct listener_conf *lc, const struct sockaddr_any *client,
                               uint64_t now_ms, struct admission *ad)
{
    struct source_limits_conf *ps = &lc->per_source;
    if (!acl_permits(&lc->acl, client))
        return ADMIT_DENIED;
    if (!ps->table)
        return ADMIT_OK;
    ad->src_slot = src_slot_of(ps->table, client);
    if (ps->rate && !src_rate_allow_slot(ps->table, ad->src_slot, now_ms, ps->rate, ps->burst))
        return ADMIT_RATE_LIMITED;
    if (ps->max_conns) {
        if (!src_conn_acquire_slot(ps->table, ad->src_slot, ps->max_conns))
            return ADMIT_LIMIT;
        ad->holds |= ADMIT_HOLD_SOURCE;
    }
    return ADMIT_OK;
}

enum admit_result admit_country(const struct config *cfg, const struct listener_conf *lc,
                                const struct sockaddr_any *client)
{
    const struct geo_acl *acl = &lc->acl.countries;
    if (!acl->allow.count && !acl->deny.count)
        return ADMIT_OK;
    struct geo_info g;
    geo_lookup(cfg->analytics.geo, client, &g);
    return geo_acl_permits(acl, &g) ? ADMIT_OK : ADMIT_DENIED;
}

void admission_release(struct config *cfg, struct listener_conf *lc, struct admission *ad)
{
    if (ad->holds & ADMIT_HOLD_SOURCE)
        src_conn_release_slot(lc->per_source.table, ad->src_slot);
    if (ad->holds & ADMIT_HOLD_GLOBAL)
        global_conn_release(cfg->global);
    if (ad->holds & ADMIT_HOLD_LISTENER)
        atomic_fetch_sub_explicit(&lc->st.active, 1, memory_order_relaxed);
    ad->holds = 0;
}
