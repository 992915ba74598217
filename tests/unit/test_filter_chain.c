/* test_filter_chain.c — the filter chain's order and body hooks (http/filter_chain.c). */
#include "http/filter.h"
#include "http/msg.h"
#include "test.h"

static char order[16];
static int norder;

static enum filter_verdict tag_body(struct http_txn *t, const char tag, const char **data,
                                    size_t *len, bool last)
{
    order[norder++] = tag;
    if (last) { /* a filter may say something at the end */
        static const char tail[] = "!";
        *data = tail;
        *len = 1;
    }
    return FILTER_CONTINUE;
}

static enum filter_verdict body_a(struct http_txn *t, const void *conf, const char **data,
                                  size_t *len, bool last)
{
    return tag_body(t, 'a', data, len, last);
}

static enum filter_verdict body_b(struct http_txn *t, const void *conf, const char **data,
                                  size_t *len, bool last)
{
    return tag_body(t, 'b', data, len, last);
}

/* Upper-cases the piece into its own buffer (a filter replacing the data). */
static enum filter_verdict body_upper(struct http_txn *t, const void *conf, const char **data,
                                      size_t *len, bool last)
{
    static char out[64];
    for (size_t i = 0; i < *len && i < sizeof(out); i++)
        out[i] = (char)((*data)[i] >= 'a' && (*data)[i] <= 'z' ? (*data)[i] - 32 : (*data)[i]);
    *data = out;
    order[norder++] = 'u';
    return FILTER_CONTINUE;
}

static enum filter_verdict body_fail(struct http_txn *t, const void *conf, const char **data,
                                     size_t *len, bool last)
{
    order[norder++] = 'f';
    return FILTER_ERROR;
}

static const struct filter_ops ops_a = {
    .name = "a", .on_request_body = body_a, .on_response_body = body_a};
static const struct filter_ops ops_b = {
    .name = "b", .on_request_body = body_b, .on_response_body = body_b};
static const struct filter_ops ops_upper = {.name = "u", .on_response_body = body_upper};
static const struct filter_ops ops_fail = {.name = "f", .on_request_body = body_fail};
static const struct filter_ops ops_none = {.name = "n"};

TEST(filter_chain_spans_listener_then_route)
{
    struct filter_conf l[] = {{&ops_a, NULL}}, r[] = {{&ops_none, NULL}, {&ops_b, NULL}};
    struct filter_chain c = {l, 1, r, 2};
    CHECK(filter_chain_at(&c, 0)->ops == &ops_a);
    CHECK(filter_chain_at(&c, 2)->ops == &ops_b);
    CHECK(filter_chain_has_body_hooks(&c, 3, false));
    CHECK(!filter_chain_has_body_hooks(&c, 0, false)); /* none ran */
    struct filter_chain only_none = {r, 1, NULL, 0};
    CHECK(!filter_chain_has_body_hooks(&only_none, 1, true));
}

TEST(filter_chain_body_order_request_then_response)
{
    struct filter_conf l[] = {{&ops_a, NULL}}, r[] = {{&ops_b, NULL}};
    struct filter_chain c = {l, 1, r, 1};
    struct http_txn t = {0};
    const char *data = "x";
    size_t len = 1;
    norder = 0;
    CHECK(filter_chain_body(&c, 2, &t, false, &data, &len, false) == FILTER_CONTINUE);
    CHECK(filter_chain_body(&c, 2, &t, true, &data, &len, false) == FILTER_CONTINUE);
    CHECK(norder == 4 && memcmp(order, "abba", 4) == 0);
    /* only the filters that ran see the body */
    norder = 0;
    filter_chain_body(&c, 1, &t, false, &data, &len, false);
    CHECK(norder == 1 && order[0] == 'a');
}

TEST(filter_chain_body_replaces_data_and_stops_on_error)
{
    struct filter_conf r[] = {{&ops_upper, NULL}, {&ops_fail, NULL}, {&ops_a, NULL}};
    struct filter_chain c = {NULL, 0, r, 3};
    struct http_txn t = {0};
    const char *data = "hello";
    size_t len = 5;
    norder = 0;
    /* response: last first — a ('a' adds nothing mid-body), then upper; fail has no
     * response hook */
    CHECK(filter_chain_body(&c, 3, &t, true, &data, &len, false) == FILTER_CONTINUE);
    CHECK(len == 5 && memcmp(data, "HELLO", 5) == 0);
    CHECK(norder == 2 && memcmp(order, "au", 2) == 0);
    /* the last call: a's tail "!" goes through upper */
    data = NULL;
    len = 0;
    norder = 0;
    CHECK(filter_chain_body(&c, 3, &t, true, &data, &len, true) == FILTER_CONTINUE);
    CHECK(len == 1 && data[0] == '!');
    /* request: in order; upper has no request hook, fail stops before a */
    norder = 0;
    CHECK(filter_chain_body(&c, 3, &t, false, &data, &len, false) == FILTER_ERROR);
    CHECK(norder == 1 && order[0] == 'f');
}
