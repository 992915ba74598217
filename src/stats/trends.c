/* trends.c — see trends.h. */
#include "stats/trends.h"

#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"

const char *const trend_names[TR_COUNT] = {
    [TR_REQUESTS] = "requests",         [TR_2XX] = "status_2xx",
    [TR_3XX] = "status_3xx",            [TR_4XX] = "status_4xx",
    [TR_5XX] = "status_5xx",            [TR_BYTES_IN] = "bytes_in",
    [TR_BYTES_OUT] = "bytes_out",       [TR_L4_CONNS] = "l4_connections",
    [TR_L4_BYTES_IN] = "l4_bytes_in",   [TR_L4_BYTES_OUT] = "l4_bytes_out",
};

static int trend_ring_init(struct trend_ring *r, uint32_t len, uint32_t nseries)
{
    r->end = 0;
    r->len = len;
    r->nseries = nseries;
    if (!(r->v = calloc(nseries, sizeof(*r->v))))
        return -1;
    for (uint32_t s = 0; s < nseries; s++)
        if (!(r->v[s] = calloc(len, sizeof(uint64_t))))
            return -1;
    return 0;
}

static void trend_ring_free(struct trend_ring *r)
{
    for (uint32_t s = 0; r->v && s < r->nseries; s++)
        free(r->v[s]);
    free(r->v);
    r->v = NULL;
    r->nseries = 0;
}

int trend_rings_init(struct trend_ring *sec, struct trend_ring *min, uint32_t nseries)
{
    if (trend_ring_init(sec, TRENDS_SECONDS, nseries) < 0 ||
        trend_ring_init(min, TRENDS_MINUTES, nseries) < 0) {
        trend_rings_free(sec, min);
        return -1;
    }
    return 0;
}

void trend_rings_free(struct trend_ring *sec, struct trend_ring *min)
{
    trend_ring_free(sec);
    trend_ring_free(min);
}

int trends_init(struct trends *t)
{
    memset(t, 0, sizeof(*t));
    t->primed = true; /* the counters start at 0 with the process */
    return trend_rings_init(&t->sec, &t->min, TR_COUNT);
}

void trends_free(struct trends *t)
{
    trend_rings_free(&t->sec, &t->min);
}

/* Moves the ring's newest point to index `at`, zeroing the points skipped over (a point
 * older than the newest is left where it is: the clock went back). */
static void ring_advance(struct trend_ring *r, int64_t at)
{
    if (at <= r->end)
        return;
    int64_t from = r->end && at - r->end < (int64_t)r->len ? r->end + 1 : at - r->len + 1;
    for (int64_t i = from; i <= at; i++)
        for (uint32_t s = 0; s < r->nseries; s++)
            r->v[s][(uint64_t)i % r->len] = 0;
    r->end = at;
}

static void trend_ring_add(struct trend_ring *r, int64_t at, const uint64_t *d)
{
    ring_advance(r, at);
    if (at <= r->end - (int64_t)r->len)
        return; /* older than the ring */
    for (uint32_t s = 0; s < r->nseries; s++)
        r->v[s][(uint64_t)at % r->len] += d[s];
}

void trends_fold(struct trends *t, const uint64_t totals[TR_COUNT], int64_t now_ms)
{
    uint64_t d[TR_COUNT] = {0};
    for (int s = 0; s < TR_COUNT; s++) {
        if (t->primed && totals[s] >= t->last[s])
            d[s] = totals[s] - t->last[s];
        t->last[s] = totals[s];
    }
    t->primed = true;
    trend_rings_add(&t->sec, &t->min, now_ms, d);
}

void trend_rings_add(struct trend_ring *sec, struct trend_ring *min, int64_t now_ms,
                     const uint64_t *d)
{
    int64_t s = now_ms / 1000 - 1;
    trend_ring_add(sec, s, d);
    trend_ring_add(min, s / 60, d);
}

int64_t trend_points(const struct trend_ring *r, unsigned s, uint32_t n, uint64_t *out)
{
    for (uint32_t i = 0; i < n; i++) {
        int64_t at = r->end - (int64_t)(n - 1 - i);
        bool in = r->end && at > r->end - (int64_t)r->len && at >= 0;
        out[i] = in ? r->v[s][(uint64_t)at % r->len] : 0;
    }
    return r->end;
}

/* Adds one listener's counters, summed over its workers, to the totals. */
static void listener_totals(const struct listener_conf *lc, unsigned nworkers,
                            uint64_t tot[TR_COUNT])
{
    for (unsigned w = 0; w < nworkers; w++) {
        const struct listener_counters *c = &lc->st.ctr[w];
        if (lc->mode == MODE_HTTP) {
            tot[TR_REQUESTS] += CTR_GET(c->http_requests);
            for (int k = 0; k < 4; k++)
                tot[TR_2XX + k] += CTR_GET(c->http_responses[k + 1]);
            tot[TR_BYTES_IN] += CTR_GET(c->bytes_in);
            tot[TR_BYTES_OUT] += CTR_GET(c->bytes_out);
        } else {
            tot[TR_L4_CONNS] +=
                lc->mode == MODE_UDP ? CTR_GET(c->flows_created) : CTR_GET(c->conns_total);
            tot[TR_L4_BYTES_IN] += CTR_GET(c->bytes_in);
            tot[TR_L4_BYTES_OUT] += CTR_GET(c->bytes_out);
        }
    }
}

void trends_totals(const struct config *cfg, uint64_t totals[TR_COUNT])
{
    memset(totals, 0, sizeof(uint64_t) * TR_COUNT);
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].st.ctr)
            listener_totals(&cfg->listeners[i], cfg->workers, totals);
}
