/* respond.c — the respond filter: answers every request it sees with the configured
 * status, content type and body, without a backend. */
#include "http/filter.h"

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_respond_conf *c = conf;
    if (txn_answer(t, c->status, c->content_type, c->body ? c->body : "", c->body_len) < 0)
        return FILTER_ERROR;
    return FILTER_ANSWER;
}

const struct filter_ops filter_respond = {
    .name = "respond",
    .on_request = on_request,
};
