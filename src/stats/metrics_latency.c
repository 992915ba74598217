/* metrics_latency.c — the Prometheus families the metric table cannot hold: latency
 * histograms (one declaration per family below) and route samples whose label values are
 * open (the exact status codes seen, errors by reason). Samples of a histogram with no
 * observation yet are left out. See metrics.h.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "http/stream_stats.h"
#include "stats/metrics.h"
#include "stats/runtime.h"

enum hist_scope { HS_LISTENER, HS_ROUTE, HS_BACKEND, HS_SERVER };

struct hist_family {
    const char *name;
    const char *help;
    enum hist_scope scope;
    enum hist_kind kind;
};

#define REQ_HELP "HTTP requests from their first byte to the end of the response"
#define TTFB_HELP "HTTP requests from their first byte to the response head from the server"
#define CONN_HELP "New connections to servers, from connect until usable (TLS included)"
#define SESS_HELP "Relayed TCP sessions from accept to close"

static const struct hist_family hist_families[] = {
    {"strata_listener_request_duration_seconds", REQ_HELP ".", HS_LISTENER, HIST_TOTAL},
    {"strata_listener_time_to_first_byte_seconds", TTFB_HELP ".", HS_LISTENER, HIST_TTFB},
    {"strata_listener_connect_duration_seconds", CONN_HELP ".", HS_LISTENER, HIST_CONNECT},
    {"strata_listener_session_duration_seconds", SESS_HELP ".", HS_LISTENER, HIST_SESSION},
    {"strata_listener_tls_handshake_duration_seconds", "TLS handshakes with clients.",
     HS_LISTENER, HIST_TLS},
    {"strata_route_request_duration_seconds", REQ_HELP ", by route.", HS_ROUTE, HIST_TOTAL},
    {"strata_route_time_to_first_byte_seconds", TTFB_HELP ", by route.", HS_ROUTE, HIST_TTFB},
    {"strata_route_connect_duration_seconds", CONN_HELP ", by route.", HS_ROUTE, HIST_CONNECT},
    {"strata_backend_request_duration_seconds", REQ_HELP ", by backend.", HS_BACKEND,
     HIST_TOTAL},
    {"strata_backend_time_to_first_byte_seconds", TTFB_HELP ", by backend.", HS_BACKEND,
     HIST_TTFB},
    {"strata_backend_connect_duration_seconds", CONN_HELP ", by backend.", HS_BACKEND,
     HIST_CONNECT},
    {"strata_backend_session_duration_seconds", SESS_HELP ", by backend.", HS_BACKEND,
     HIST_SESSION},
    {"strata_server_request_duration_seconds", REQ_HELP ", by server (its last attempt).",
     HS_SERVER, HIST_TOTAL},
    {"strata_server_time_to_first_byte_seconds", TTFB_HELP ", by server.", HS_SERVER, HIST_TTFB},
    {"strata_server_connect_duration_seconds", CONN_HELP ", by server.", HS_SERVER, HIST_CONNECT},
    {"strata_server_session_duration_seconds", SESS_HELP ", by server.", HS_SERVER, HIST_SESSION},
    {"strata_server_tcp_rtt_seconds",
     "Smoothed round-trip time of connections to the server (TCP relay, HTTP), read "
     "(TCP_INFO) while each is open (sampled about once a second) and when it closes.",
     HS_SERVER, HIST_RTT},
};

/* Labels of one object: up to two names and values. */
struct obj_labels {
    const char *names[2];
    const char *values[2];
    unsigned n;
};

static void put_labels(struct strbuf *out, const struct obj_labels *l, const char *extra,
                       const char *extra_value)
{
    sb_putc(out, '{');
    for (unsigned i = 0; i < l->n; i++) {
        sb_printf(out, "%s%s=\"", i ? "," : "", l->names[i]);
        metrics_escape_label(out, l->values[i]);
        sb_putc(out, '"');
    }
    if (extra)
        sb_printf(out, "%s%s=\"%s\"", l->n ? "," : "", extra, extra_value);
    sb_putc(out, '}');
}

static void render_hist(const struct config *c, struct strbuf *out, const char *name,
                        const struct obj_labels *l, const struct hist *block, enum hist_kind k,
                        struct hist_snap *s)
{
    memset(s, 0, sizeof(*s));
    if (!block)
        return;
    hist_merge_le(s, &block[k], c->workers, HIST_KINDS * sizeof(struct hist));
    if (s->count == 0)
        return;
    uint64_t cum = 0;
    for (unsigned i = 0; i <= HIST_LE_COUNT; i++) {
        cum += s->le[i];
        sb_printf(out, "%s_bucket", name);
        put_labels(out, l, "le", i < HIST_LE_COUNT ? hist_le_text[i] : "+Inf");
        sb_printf(out, " %" PRIu64 "\n", cum);
    }
    sb_printf(out, "%s_sum", name);
    put_labels(out, l, NULL, NULL);
    sb_printf(out, " %.6f\n%s_count", (double)s->sum_us / 1e6, name);
    put_labels(out, l, NULL, NULL);
    sb_printf(out, " %" PRIu64 "\n", s->count);
}

static void render_family(const struct config *c, struct strbuf *out, const struct hist_family *f,
                          struct hist_snap *s)
{
    struct obj_labels l = {{"listener", "route"}, {NULL, NULL}, 1};
    for (uint32_t i = 0; (f->scope == HS_LISTENER || f->scope == HS_ROUTE) && i < c->nlisteners;
         i++) {
        const struct listener_conf *lc = &c->listeners[i];
        l.values[0] = lc->name;
        if (f->scope == HS_LISTENER) {
            render_hist(c, out, f->name, &l, lc->st.hist, f->kind, s);
            continue;
        }
        l.n = 2;
        for (uint32_t r = 0; lc->mode == MODE_HTTP && r < lc->http.nroutes; r++) {
            l.values[1] = lc->http.routes[r].name;
            render_hist(c, out, f->name, &l, lc->http.routes[r].hist, f->kind, s);
        }
    }
    l = (struct obj_labels){{"backend", "server"}, {NULL, NULL}, f->scope == HS_SERVER ? 2 : 1};
    for (uint32_t b = 0; (f->scope == HS_BACKEND || f->scope == HS_SERVER) && b < c->nbackends;
         b++) {
        const struct backend *be = &c->backends[b];
        l.values[0] = be->name;
        if (f->scope == HS_BACKEND) {
            render_hist(c, out, f->name, &l, be->hist, f->kind, s);
            continue;
        }
        for (uint32_t i = 0; i < be->nservers; i++) {
            l.values[1] = be->servers[i].name;
            render_hist(c, out, f->name, &l, be->servers[i].st.hist, f->kind, s);
        }
    }
}

/* The label value of entry i of an open set. */
typedef const char *(*open_label_fn)(unsigned i, char *buf, size_t size);

static const char *code_label(unsigned i, char *buf, size_t size)
{
    snprintf(buf, size, "%u", i + 100);
    return buf;
}

static const char *error_label(unsigned i, char *buf, size_t size)
{
    (void)buf;
    (void)size;
    return stream_stats_error_name((enum http_error)i);
}

/* One family of route samples with an open label: entry i of the counter array at `off`
 * in struct route_counters, for the entries counted at least once. */
static void render_route_set(const struct config *c, struct strbuf *out, const char *name,
                             size_t off, unsigned n, const char *label, open_label_fn value)
{
    for (uint32_t i = 0; i < c->nlisteners; i++) {
        const struct listener_conf *lc = &c->listeners[i];
        for (uint32_t r = 0; lc->mode == MODE_HTTP && r < lc->http.nroutes; r++) {
            const struct http_route *rt = &lc->http.routes[r];
            struct obj_labels l = {{"listener", "route"}, {lc->name, rt->name}, 2};
            for (unsigned e = 0; rt->ctr && e < n; e++) {
                uint64_t sum = 0;
                for (uint32_t w = 0; w < c->workers; w++)
                    sum += CTR_GET(((const counter_t *)((const char *)&rt->ctr[w] + off))[e]);
                if (!sum)
                    continue;
                char buf[16];
                sb_puts(out, name);
                put_labels(out, &l, label, value(e, buf, sizeof(buf)));
                sb_printf(out, " %" PRIu64 "\n", sum);
            }
        }
    }
}

static void render_route_open(const struct config *c, struct strbuf *out, bool om)
{
    static const char codes[] = "strata_route_responses_by_code_total";
    static const char errors[] = "strata_route_errors_total";
    metrics_family_header(out, codes,
                          "HTTP responses sent for the route, by exact status (codes seen).",
                          "counter", om);
    render_route_set(c, out, codes, offsetof(struct route_counters, codes), HTTP_CODES, "code",
                     code_label);
    metrics_family_header(out, errors,
                          "HTTP requests of the route that ended badly, by reason (the access "
                          "log's end; reasons seen).",
                          "counter", om);
    render_route_set(c, out, errors, offsetof(struct route_counters, errors), HERR_COUNT,
                     "reason", error_label);
}

void metrics_render_latency(const struct config *c, struct strbuf *out, bool openmetrics)
{
    struct hist_snap *s = malloc(sizeof(*s));
    if (!s) {
        out->err = true;
        return;
    }
    for (size_t i = 0; i < ARRAY_SIZE(hist_families) && !out->err; i++) {
        metrics_family_header(out, hist_families[i].name, hist_families[i].help, "histogram",
                              openmetrics);
        render_family(c, out, &hist_families[i], s);
    }
    free(s);
    render_route_open(c, out, openmetrics);
}
