/* reload_carry.c — the runtime state a reload hands from the running generation to the
 * next, for what the new file kept (matched by name): see reload.h.
 *
 * Counters, histograms and recent-error rings are shared blocks (core/shared_block.h): both
 * generations add to the same ones, so a metric never goes back, and what connections of
 * the old generation still count is not lost. State that only says where a server stands
 * is copied once, at the swap.
 */
#include "proxy/reload.h"

#include <string.h>

#include "config/config.h"
#include "core/shared_block.h"
#include "http/filters/rate_limit.h"
#include "lb/server_admin.h"
#include "net/src_limit.h"

/* Every runtime field of struct server_state a reload keeps lives here, and only here:
 * a field added to the struct is carried (or said not to be) in this function.
 * - ctr, hist: shared with the old server (same backend and server name).
 * - admin, weight, history (the runtime API's drain/maintenance and weight, the server's
 *   recent transitions): lb/server_admin.h server_runtime_carry.
 * - live (active connections, health verdict, passive-check streak and time down):
 *   shared when the server's address is the same, so a reload makes no server flap to
 *   DOWN and back, the old generation's connections keep counting against it (least_conn,
 *   max_connections) until they close and give their unit back to the same block, and
 *   what they report to the passive check reaches the server the new generation uses.
 *   A server moved to another address starts afresh (its old connections count against
 *   the old one).
 * - h2_streams (the server's last SETTINGS): copied when the address is the same. */
void server_state_carry(const struct server *old, struct server *s)
{
    shared_block_adopt((void **)&s->st.ctr, old->st.ctr);
    shared_block_adopt((void **)&s->st.hist, old->st.hist);
    server_runtime_carry(old, s); /* admin (drain, maintenance), weight, history */
    if (!addr_equal(&old->addr, &s->addr))
        return;
    shared_block_adopt((void **)&s->st.live, old->st.live);
    atomic_store(&s->st.h2_streams, atomic_load(&old->st.h2_streams));
}

static const struct server *server_named(const struct backend *b, const char *name)
{
    for (uint32_t i = 0; i < b->nservers; i++)
        if (strcmp(b->servers[i].name, name) == 0)
            return &b->servers[i];
    return NULL;
}

static const struct listener_conf *listener_named(const struct config *c, const char *name,
                                                  enum listener_mode mode)
{
    for (uint32_t i = 0; i < c->nlisteners; i++)
        if (c->listeners[i].mode == mode && strcmp(c->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

/* The listener's counters, histograms and recent errors, its routes' (by route name, with
 * their rate limits' tables), and
 * its per-source table (counts and rate buckets: a reload gives no source a fresh budget). */
static void listener_carry(const struct listener_conf *old, struct listener_conf *l)
{
    shared_block_adopt((void **)&l->st.ctr, old->st.ctr);
    shared_block_adopt((void **)&l->st.hist, old->st.hist);
    shared_block_adopt((void **)&l->st.recent, old->st.recent);
    for (uint32_t i = 0; i < l->http.nroutes; i++) {
        struct http_route *r = &l->http.routes[i];
        for (uint32_t j = 0; j < old->http.nroutes; j++) {
            const struct http_route *o = &old->http.routes[j];
            if (strcmp(o->name, r->name) == 0) {
                shared_block_adopt((void **)&r->ctr, o->ctr);
                shared_block_adopt((void **)&r->hist, o->hist);
                rate_limit_carry(o, r);
                break;
            }
        }
    }
    if (l->per_source.table && old->per_source.table) {
        src_limits_free(l->per_source.table);
        l->per_source.table = src_limits_share(old->per_source.table);
    }
}

void reload_carry(const struct config *old, struct config *nc)
{
    shared_block_adopt((void **)&nc->global, old->global);
    for (uint32_t i = 0; i < nc->nlisteners; i++) {
        struct listener_conf *l = &nc->listeners[i];
        const struct listener_conf *o = listener_named(old, l->name, l->mode);
        if (o)
            listener_carry(o, l);
    }
    for (uint32_t i = 0; i < nc->nbackends; i++) {
        struct backend *b = &nc->backends[i];
        const struct backend *ob = config_backend(old, b->name);
        if (ob)
            shared_block_adopt((void **)&b->hist, ob->hist);
        for (uint32_t j = 0; ob && j < b->nservers; j++) {
            const struct server *os = server_named(ob, b->servers[j].name);
            if (os)
                server_state_carry(os, &b->servers[j]);
        }
    }
}
