/* request_limits.c — the request_limits filter: a route's own request bounds, tighter than
 * the listener's `max_request_body` and `max_headers`, which the codecs check before
 * routing (a login or API route may take 64 KiB where uploads take 100 MiB). Too many
 * fields: 431. A Content-Length above `max_body`:
 * 413 before anything reaches a server; a chunked (or HTTP/2) body that grows past it is
 * cut with 413 by the stream (t->max_request_body), as the listener's limit is. A body not
 * whole within `body_timeout` of the request's start is answered 408 (or cut, once the
 * response began) by the stream's deadline (t->body_timeout_ms); the body hook tells it
 * when the body ended.
 */
#include "config/config-t.h"
#include "http/filters/auth-t.h"
#include "http/filters/deny.h"

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_request_limits_conf *c = conf;
    if (c->max_headers && t->req.nhdrs > c->max_headers)
        return filter_deny(t, 431, "more header fields than the route's max_headers",
                           HFE_LIMIT_REFUSED);
    bool body = t->req.body != HTTP_BODY_NONE &&
                !(t->req.body == HTTP_BODY_LENGTH && t->req.content_length == 0);
    if (c->body_timeout_ms && body)
        t->body_timeout_ms = c->body_timeout_ms;
    if (!c->max_body)
        return FILTER_CONTINUE;
    if (t->req.body == HTTP_BODY_LENGTH && t->req.content_length > c->max_body)
        return filter_deny(t, 413, "request body larger than the route's max_body",
                           HFE_LIMIT_REFUSED);
    uint64_t listener = t->lc ? t->lc->http.limits.max_request_body : 0;
    if ((!listener || c->max_body < listener) &&
        (!t->max_request_body || c->max_body < t->max_request_body))
        t->max_request_body = c->max_body;
    return FILTER_CONTINUE;
}

/* Marks the body's end for body_timeout (the stream's deadline stops counting it). */
static enum filter_verdict on_request_body(struct http_txn *t, const void *conf, const char **data,
                                           size_t *len, bool last)
{
    if (last)
        t->req_body_done = true;
    return FILTER_CONTINUE;
}

const struct filter_ops filter_request_limits = {
    .name = "request_limits",
    .on_request = on_request,
    .on_request_body = on_request_body,
};
