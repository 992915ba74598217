/* sticky.c — the sticky filter: cookie-based sticky sessions for a backend with
 * `sticky` enabled. The session appends it (it is not configured on routes) after the
 * route chose t->backend; its `conf` is not used: the settings are t->backend->sticky.
 * on_request: t->sticky = the server of t->backend whose sticky_id the cookie carries
 * (NULL when none), for the session to prefer while it is eligible.
 * on_response: when a server answered (t->server) and it is not the one the cookie named,
 * Set-Cookie names it: "<cookie>=<sticky_id>; Path=/[; Max-Age=N][; Secure][; HttpOnly]".
 */
#include <stdio.h>
#include <string.h>

#include "config/config-t.h"
#include "http/filter.h"
#include "http/msg.h"

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct backend *b = t->backend;
    t->sticky = NULL;
    t->sticky_set = false;
    if (!b || !b->sticky.enabled || !b->sticky.cookie)
        return FILTER_CONTINUE;
    struct hstr v = http_cookie_get(&t->req, hstr_c(b->sticky.cookie));
    for (uint32_t i = 0; v.p && v.len == sizeof(b->servers[0].sticky_id) - 1 && i < b->nservers;
         i++) {
        if (memcmp(b->servers[i].sticky_id, v.p, v.len) == 0) {
            t->sticky = &b->servers[i];
            break;
        }
    }
    t->sticky_set = t->sticky == NULL;
    return FILTER_CONTINUE;
}

static enum filter_verdict on_response(struct http_txn *t, const void *conf)
{
    const struct backend *b = t->backend;
    if (!b || !b->sticky.enabled || !b->sticky.cookie || !t->server || t->server == t->sticky)
        return FILTER_CONTINUE;
    const struct sticky_conf *s = &b->sticky;
    char age[32] = "";
    if (s->max_age_s)
        snprintf(age, sizeof(age), "; Max-Age=%u", s->max_age_s);
    struct hstr v =
        arena_printf(&t->arena, "%s=%s; Path=/%s%s%s", s->cookie, t->server->sticky_id, age,
                     s->secure ? "; Secure" : "", s->http_only ? "; HttpOnly" : "");
    if (!v.p || http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Set-Cookie"), v) < 0)
        return FILTER_ERROR;
    t->sticky_set = true;
    return FILTER_CONTINUE;
}

const struct filter_ops filter_sticky = {
    .name = "sticky",
    .on_request = on_request,
    .on_response = on_response,
};
