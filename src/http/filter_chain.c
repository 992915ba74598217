/* filter_chain.c — see the filter_chain functions in filter.h. */
#include "http/filter.h"

#include "config/config-t.h"

const struct filter_conf *filter_chain_at(const struct filter_chain *c, uint32_t i)
{
    return i < c->nfirst ? &c->first[i] : &c->second[i - c->nfirst];
}

enum filter_verdict filter_chain_body(const struct filter_chain *c, uint32_t nran,
                                      struct http_txn *t, bool response, const char **data,
                                      size_t *len, bool last)
{
    for (uint32_t k = 0; k < nran; k++) {
        /* requests go through the filters in order, responses last first */
        const struct filter_conf *fc = filter_chain_at(c, response ? nran - 1 - k : k);
        enum filter_verdict (*hook)(struct http_txn *, const void *, const char **, size_t *,
                                    bool) =
            response ? fc->ops->on_response_body : fc->ops->on_request_body;
        if (!hook)
            continue;
        enum filter_verdict v = hook(t, fc->conf, data, len, last);
        if (v != FILTER_CONTINUE)
            return v;
    }
    return FILTER_CONTINUE;
}

bool filter_chain_has_body_hooks(const struct filter_chain *c, uint32_t nran, bool response)
{
    for (uint32_t i = 0; i < nran; i++) {
        const struct filter_ops *ops = filter_chain_at(c, i)->ops;
        if (response ? ops->on_response_body != NULL : ops->on_request_body != NULL)
            return true;
    }
    return false;
}

static int start_all(const struct filter_conf *fcs, uint32_t n, unsigned nworkers, char *err,
                     size_t errlen)
{
    for (uint32_t i = 0; i < n; i++)
        if (fcs[i].ops->start && fcs[i].ops->start(fcs[i].conf, nworkers, err, errlen) < 0)
            return -1;
    return 0;
}

int filters_start(struct config *cfg, char *err, size_t errlen)
{
    for (uint32_t l = 0; l < cfg->nlisteners; l++) {
        const struct http_listener_conf *h = &cfg->listeners[l].http;
        if (cfg->listeners[l].mode != MODE_HTTP)
            continue;
        if (start_all(h->filters, h->nfilters, cfg->workers, err, errlen) < 0)
            return -1;
        for (uint32_t r = 0; r < h->nroutes; r++)
            if (start_all(h->routes[r].filters, h->routes[r].nfilters, cfg->workers, err,
                          errlen) < 0)
                return -1;
    }
    return 0;
}
