/* traceparent.c — the traceparent filter (W3C Trace Context, version 00): a request's
 * `traceparent` "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>" (lowercase, ids
 * not all zero, one field) is passed on unchanged; a missing or malformed one is replaced
 * by a new trace "00-<new trace id>-<new parent id>-01" (sampled), and then `tracestate`,
 * which belongs to no trace we pass on, is removed.
 */
#include <string.h>

#include "http/filter.h"
#include "http/filters/util.h"
#include "http/msg.h"

#define TRACEPARENT_LEN 55 /* 2 + 1 + 32 + 1 + 16 + 1 + 2 */

/* s[0..n) are lowercase hex digits, not all '0'. */
static bool hex_id(const char *s, size_t n, bool nonzero)
{
    bool zero = true;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
        zero &= s[i] == '0';
    }
    return !(nonzero && zero);
}

static bool valid(struct hstr v)
{
    return v.p && v.len == TRACEPARENT_LEN && memcmp(v.p, "00-", 3) == 0 && v.p[35] == '-' &&
           v.p[52] == '-' && hex_id(v.p + 3, 32, true) && hex_id(v.p + 36, 16, true) &&
           hex_id(v.p + 53, 2, false);
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    static const struct hstr tp = HSTR_TOKEN_LIT("traceparent"),
                             ts = HSTR_TOKEN_LIT("tracestate");
    const struct filter_traceparent_conf *c = conf;
    if (c && !c->enabled)
        return FILTER_CONTINUE;
    int first = http_hdr_find(&t->req, tp, 0);
    if (first >= 0 && valid(t->req.hdrs[first].value) &&
        http_hdr_find(&t->req, tp, (uint32_t)first + 1) < 0)
        return FILTER_CONTINUE;
    char *v = arena_alloc(&t->arena, TRACEPARENT_LEN);
    if (!v)
        return FILTER_ERROR;
    memcpy(v, "00-", 3);
    hex_put(v + 3, filter_rand64(), 16);
    hex_put(v + 19, filter_rand64(), 16);
    v[35] = '-';
    hex_put(v + 36, filter_rand64(), 16);
    memcpy(v + 52, "-01", 3);
    http_hdr_remove(&t->req, ts);
    return http_hdr_set(&t->req, &t->arena, tp, (struct hstr){v, TRACEPARENT_LEN, HSTR_VALUE}) < 0
               ? FILTER_ERROR
               : FILTER_CONTINUE;
}

const struct filter_ops filter_traceparent = {
    .name = "traceparent",
    .on_request = on_request,
};
