/* stream_stats.c — see stream_stats.h. */
#include "http/stream_stats.h"

#include <string.h>

#include "ev/worker.h"
#include "stats/recent.h"
#include "stats/runtime.h"

static const char *const error_names[HERR_COUNT] = {
    [HERR_CONNECT_FAILED] = "connect_failed", [HERR_SERVER_REFUSED] = "server_refused",
    [HERR_SERVER_RESET] = "server_reset",     [HERR_BAD_RESPONSE] = "bad_response",
    [HERR_SERVER_TIMEOUT] = "server_timeout", [HERR_NO_SERVER] = "no_server",
    [HERR_CLIENT_TIMEOUT] = "client_timeout", [HERR_CLIENT_ABORT] = "client_abort",
    [HERR_TIMEOUT] = "timeout",               [HERR_DEADLINE] = "deadline",
    [HERR_BAD_REQUEST] = "bad_request",       [HERR_NO_ROUTE] = "no_route",
    [HERR_INTERNAL] = "internal_error",       [HERR_OTHER] = "other",
};

const char *stream_stats_error_name(enum http_error e)
{
    return e < HERR_COUNT ? error_names[e] : "";
}

enum http_error stream_stats_error(const char *end)
{
    if (!end || strcmp(end, "ok") == 0 || strcmp(end, "answered") == 0)
        return HERR_COUNT;
    if (strcmp(end, "bad_gateway") == 0)
        return HERR_BAD_RESPONSE;
    for (unsigned i = 0; i < HERR_OTHER; i++)
        if (strcmp(end, error_names[i]) == 0)
            return (enum http_error)i;
    return HERR_OTHER;
}

/* Latency of one kind into every level the stream went through. */
static void record_levels(const struct http_stream *st, enum hist_kind kind, uint64_t us)
{
    unsigned w = st->w->id;
    const struct http_txn *t = &st->t;
    stats_hist_record(st->lc->st.hist, w, kind, us);
    if (t->route)
        stats_hist_record(t->route->hist, w, kind, us);
    if (t->backend)
        stats_hist_record(t->backend->hist, w, kind, us);
    if (t->server)
        stats_hist_record(t->server->st.hist, w, kind, us);
}

void stream_stats_connected(const struct http_stream *st, uint64_t us)
{
    record_levels(st, HIST_CONNECT, us);
}

static void count_route(const struct http_stream *st, enum http_error err)
{
    struct route_counters *c = st->t.route && st->t.route->ctr ? &st->t.route->ctr[st->w->id] : NULL;
    unsigned status = st->status;
    if (!c)
        return;
    CTR_ADD(c->requests, 1);
    if (status >= 100 && status < 600) {
        CTR_ADD(c->responses[status / 100 - 1], 1);
        CTR_ADD(c->codes[status - 100], 1);
    }
    if (st->att.tries > 1)
        CTR_ADD(c->retries, st->att.tries - 1u);
    CTR_ADD(c->bytes_in, st->bytes_in);
    CTR_ADD(c->bytes_out, st->bytes_out);
    if (err != HERR_COUNT)
        CTR_ADD(c->errors[err], 1);
}

void stream_stats_end(const struct http_stream *st, uint64_t total_us, int64_t ttfb_us)
{
    const struct http_txn *t = &st->t;
    enum http_error err = stream_stats_error(st->end);
    record_levels(st, HIST_TOTAL, total_us);
    if (ttfb_us >= 0)
        record_levels(st, HIST_TTFB, (uint64_t)ttfb_us);
    count_route(st, err);
    if (t->server && !t->answered && st->status >= 100 && st->status < 600)
        CTR_ADD(t->server->st.ctr[st->w->id].http_responses[st->status / 100 - 1], 1);
    if ((err != HERR_COUNT || st->status >= 500) && st->lc->st.recent)
        recent_add(&st->lc->st.recent[st->w->id], st->status, t->route ? t->route->name : NULL,
                   st->end, st->detail, t->orig_path.p, t->orig_path.len);
}
