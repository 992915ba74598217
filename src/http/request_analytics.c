/* request_analytics.c — see request_analytics.h. */
#include "http/request_analytics.h"

#include <string.h>

#include "ev/worker.h"
#include "http/msg.h"
#include "http/route-t.h"
#include "http/stream-t.h"
#include "stats/analytics.h"

/* The value of the first field `name`, or an empty slice. */
static struct hstr field(const struct http_msg *m, struct hstr name)
{
    int i = name.len ? http_hdr_find(m, name, 0) : -1;
    return i < 0 ? (struct hstr){NULL, 0} : m->hdrs[i].value;
}

/* The host of an authority, without its port ("[v6]" keeps its brackets). */
static struct hstr host_of(struct hstr a)
{
    if (!a.len || a.p[0] == '[') {
        const char *rb = a.len ? memchr(a.p, ']', a.len) : NULL;
        return (struct hstr){a.p, rb ? (uint32_t)(rb - a.p) + 1 : a.len};
    }
    const char *colon = memchr(a.p, ':', a.len);
    return (struct hstr){a.p, colon ? (uint32_t)(colon - a.p) : a.len};
}

void request_analytics(const struct http_stream *st, const struct access_entry *e)
{
    const struct analytics_conf *ac = &st->w->cfg->analytics;
    if (!ac->enabled || !analytics_current())
        return; /* off, or no admin listener to read the tables */
    const struct http_txn *t = &st->t;
    struct hstr ua = field(&t->req, HSTR_LIT("user-agent"));
    struct hstr key = field(&t->req, (struct hstr){ac->api_key_header, ac->api_key_len});
    struct hstr host = host_of(t->req.authority);
    struct analytics_req r = {
        .path = t->orig_path.p,
        .path_len = t->orig_path.len,
        .client = &t->client,
        .user_agent = ua.p,
        .user_agent_len = ua.len,
        .host = host.p,
        .host_len = host.len,
        .api_key = key.p,
        .api_key_len = key.len,
        .status = e->status,
        .route = t->route ? t->route->name : st->lc->name,
        .country = t->geo.country,
        .bytes = e->bytes_in + e->bytes_out,
    };
    analytics_record(st->w->id, st->w->loop.now_ms, &r);
}
