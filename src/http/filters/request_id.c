/* request_id.c — the request_id filter: every request carries an id in the configured
 * field (default X-Request-Id), kept when the client (or a proxy before Strata) sent a
 * usable one — 1 to 200 visible ASCII characters — and otherwise made: 128 random bits
 * as 32 hex digits. The id is stored in t->request_id (access log, templates) and
 * returned to the client in the same field of the response.
 */
#include "http/filter.h"
#include "http/filters/util.h"
#include "http/msg.h"

#define REQUEST_ID_MAX 200

static bool usable(struct hstr v)
{
    if (!v.p || v.len == 0 || v.len > REQUEST_ID_MAX)
        return false;
    for (uint32_t i = 0; i < v.len; i++)
        if ((unsigned char)v.p[i] <= 0x20 || (unsigned char)v.p[i] >= 0x7f)
            return false;
    return true;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_request_id_conf *c = conf;
    struct hstr name = {c->header, c->header_len, HSTR_TOKEN}; /* checked by the config */
    int first = http_hdr_find(&t->req, name, 0);
    struct hstr v = first >= 0 ? t->req.hdrs[first].value : (struct hstr){NULL, 0};
    /* one field with a usable value; several are as good as a bad one */
    if (usable(v) && http_hdr_find(&t->req, name, (uint32_t)first + 1) < 0) {
        /* a copy: the log and the response may outlive the request head's buffer */
        t->request_id = arena_dup(&t->arena, v.p, v.len);
        t->request_id.known = HSTR_VALUE; /* usable(): visible ASCII */
        return t->request_id.p ? FILTER_CONTINUE : FILTER_ERROR;
    }
    char *id = arena_alloc(&t->arena, 32);
    if (!id)
        return FILTER_ERROR;
    hex_put(id, filter_rand64(), 16);
    hex_put(id + 16, filter_rand64(), 16);
    t->request_id = (struct hstr){id, 32, HSTR_VALUE};
    return http_hdr_set(&t->req, &t->arena, name, t->request_id) < 0 ? FILTER_ERROR
                                                                     : FILTER_CONTINUE;
}

static enum filter_verdict on_response(struct http_txn *t, const void *conf)
{
    const struct filter_request_id_conf *c = conf;
    if (!t->request_id.len)
        return FILTER_CONTINUE;
    struct hstr name = {c->header, c->header_len, HSTR_TOKEN};
    return http_hdr_set(&t->resp, &t->arena, name, t->request_id) < 0 ? FILTER_ERROR
                                                                      : FILTER_CONTINUE;
}

const struct filter_ops filter_request_id = {
    .name = "request_id",
    .on_request = on_request,
    .on_response = on_response,
};
