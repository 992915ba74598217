/* redirect.c — the redirect filter: answers with the configured 3xx status and a Location
 * expanded from its template ("https://{host}{request_uri}"); the body is one line of
 * plain text naming the target, for clients that show bodies.
 */
#include "http/filter.h"
#include "http/msg.h"

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_redirect_conf *c = conf;
    struct hstr loc = txn_expand(t, c->location);
    if (!loc.p)
        return FILTER_ERROR;
    struct hstr body = arena_printf(&t->arena, "Redirecting to %.*s\n", (int)loc.len, loc.p);
    if (!body.p || txn_answer(t, c->status, "text/plain; charset=utf-8", body.p, body.len) < 0 ||
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Location"), loc) < 0)
        return FILTER_ERROR;
    return FILTER_ANSWER;
}

const struct filter_ops filter_redirect = {
    .name = "redirect",
    .on_request = on_request,
};
