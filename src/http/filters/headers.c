/* headers.c — the request_headers and response_headers filters: the configured `set`,
 * `add` and `remove` operations, in that order, on the request head (before it is sent
 * to a server) or on the response head (before it is sent to the client). Values are
 * templates (txn_expand). The configuration refuses the fields the codec owns.
 */
#include "http/filter.h"
#include "http/msg.h"

static enum filter_verdict apply(struct http_txn *t, struct http_msg *m,
                                 const struct filter_headers_conf *c)
{
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct hdr_op *op = &c->ops[i];
        struct hstr name = {op->name, op->name_len};
        if (op->kind == HDR_REMOVE) {
            http_hdr_remove(m, name);
            continue;
        }
        struct hstr value = txn_expand(t, op->value);
        if (!value.p)
            return FILTER_ERROR;
        int rc = op->kind == HDR_SET ? http_hdr_set(m, &t->arena, name, value)
                                     : http_hdr_add(m, &t->arena, name, value);
        if (rc < 0)
            return FILTER_ERROR;
    }
    return FILTER_CONTINUE;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    return apply(t, &t->req, conf);
}

static enum filter_verdict on_response(struct http_txn *t, const void *conf)
{
    return apply(t, &t->resp, conf);
}

const struct filter_ops filter_request_headers = {
    .name = "request_headers",
    .on_request = on_request,
};

const struct filter_ops filter_response_headers = {
    .name = "response_headers",
    .on_response = on_response,
};
