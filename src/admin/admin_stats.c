/* admin_stats.c — GET /api/v1/stats: the running figures as JSON (jansson), for the
 * dashboard and scripts. Counters are summed over the workers; latencies are quantiles of
 * the merged sketches (stats/histogram.h) in milliseconds, for every listener, route,
 * backend and server: since the configuration was loaded (`latency_ms`), and over a recent
 * window (`recent_latency_ms`: total and TTFB over the last 5 to 10 seconds, the
 * difference with a snapshot this file keeps of each, sparse: only the buckets in use).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_int.h"
#include "config/config.h"
#include "core/time.h"
#include "http/stream_stats.h"
#include "lb/lb.h"
#include "lb/server_admin.h"
#include "stats/metrics.h"
#include "stats/recent.h"
#include "stats/runtime.h"

#define WINDOW_MS 5000
#define MAX_RECENT 50

static const char *const mode_names[] = {[MODE_TCP] = "tcp", [MODE_UDP] = "udp",
                                         [MODE_HTTP] = "http"};
static const char *const kind_names[HIST_KINDS] = {
    [HIST_TOTAL] = "total",   [HIST_TTFB] = "ttfb", [HIST_CONNECT] = "connect",
    [HIST_TLS] = "tls",       [HIST_RTT] = "rtt",   [HIST_SESSION] = "session"};

static json_t *quantiles(const struct hist_snap *s)
{
    if (!s->count)
        return json_null();
    return json_pack("{s:f,s:f,s:f,s:f,s:I,s:f}", "p50", hist_quantile(s, 0.5) / 1000,
                     "p90", hist_quantile(s, 0.9) / 1000, "p99", hist_quantile(s, 0.99) / 1000,
                     "p999", hist_quantile(s, 0.999) / 1000, "count", (json_int_t)s->count,
                     "mean", (double)s->sum_us / (double)s->count / 1000);
}

/* The recent window: for each object (listeners, routes, backends, servers in the order
 * stats_json visits them) and each of total and TTFB, a sparse snapshot 5 to 10 s old
 * (`older`) and one 0 to 5 s old (`newer`); every WINDOW_MS the newer becomes the older.
 * Kept for one configuration (a reference held), reset when another is served. Control
 * thread only. */
struct sparse {
    uint32_t n;
    uint16_t *idx; /* sketch buckets in use */
    uint64_t *cnt;
    uint64_t count, sum_us;
};

struct window {
    struct config *cfg;
    uint32_t nslots;                 /* objects x 2 */
    struct sparse *older, *newer;
    uint64_t older_ms, newer_ms;     /* when they were taken */
    uint32_t rolls;                  /* snapshots taken since the window was (re)started */
    bool roll;                       /* this pass fills `newer` */
    uint32_t slot;                   /* next slot of this pass */
};
static struct window win;

static void sparse_free(struct sparse *v, uint32_t n)
{
    for (uint32_t i = 0; v && i < n; i++) {
        free(v[i].idx);
        free(v[i].cnt);
    }
    free(v);
}

static void window_reset(void)
{
    sparse_free(win.older, win.nslots);
    sparse_free(win.newer, win.nslots);
    config_unref(win.cfg);
    memset(&win, 0, sizeof(win));
}

static uint32_t count_objects(const struct config *c)
{
    uint32_t n = c->nlisteners + c->nbackends;
    for (uint32_t i = 0; i < c->nlisteners; i++)
        n += c->listeners[i].mode == MODE_HTTP ? c->listeners[i].http.nroutes : 0;
    for (uint32_t b = 0; b < c->nbackends; b++)
        n += c->backends[b].nservers;
    return n;
}

/* Starts a pass over every object: decides whether it rolls the window. */
static void window_begin(struct config *c, uint64_t now)
{
    if (win.cfg != c) {
        window_reset();
        win.nslots = count_objects(c) * 2;
        win.older = calloc(win.nslots, sizeof(struct sparse));
        win.newer = calloc(win.nslots, sizeof(struct sparse));
        if (!win.older || !win.newer) {
            window_reset();
            return;
        }
        win.cfg = config_ref(c);
    }
    win.slot = 0;
    if (win.newer_ms && now - win.newer_ms >= 2 * WINDOW_MS)
        win.rolls = 0; /* nobody asked for a while: the newer snapshot is too old to use */
    win.roll = win.rolls == 0 || now - win.newer_ms >= WINDOW_MS;
    if (!win.roll)
        return;
    struct sparse *t = win.older;
    win.older = win.newer;
    win.newer = t;
    win.older_ms = win.newer_ms;
    win.newer_ms = now;
    win.rolls++;
}

/* Stores the buckets of s in use into v (left empty when out of memory). */
static void sparse_set(struct sparse *v, const struct hist_snap *s)
{
    uint32_t n = 0;
    for (unsigned i = 0; s->count && i < HIST_SKETCH_BUCKETS; i++)
        n += s->sketch[i] != 0;
    free(v->idx);
    free(v->cnt);
    memset(v, 0, sizeof(*v));
    if (n && (!(v->idx = malloc(n * sizeof(*v->idx))) || !(v->cnt = malloc(n * sizeof(*v->cnt))))) {
        free(v->idx);
        v->idx = NULL;
        return;
    }
    for (unsigned i = 0; n && i < HIST_SKETCH_BUCKETS; i++)
        if (s->sketch[i]) {
            v->idx[v->n] = (uint16_t)i;
            v->cnt[v->n++] = s->sketch[i];
        }
    v->count = s->count;
    v->sum_us = s->sum_us;
}

/* The quantiles of the samples since the older snapshot of this pass's next slot, from
 * the current read s (changed: the older snapshot is taken out of it). Until the window
 * has two snapshots it is empty. */
static json_t *window_next(struct hist_snap *s)
{
    if (!win.cfg || win.slot >= win.nslots)
        return json_null();
    uint32_t k = win.slot++;
    if (win.roll)
        sparse_set(&win.newer[k], s);
    const struct sparse *o = win.rolls >= 2 ? &win.older[k] : &win.newer[k];
    if (o->count > s->count)
        return json_null(); /* cannot be: counts only grow within a configuration */
    s->count -= o->count;
    s->sum_us -= o->sum_us;
    for (uint32_t i = 0; i < o->n; i++)
        s->sketch[o->idx[i]] -= o->cnt[i];
    return quantiles(s);
}

/* The window's length in seconds (0 until it has two snapshots). */
static double window_seconds(uint64_t now)
{
    return win.cfg && win.rolls >= 2 ? (double)(now - win.older_ms) / 1000 : 0;
}

#define LSUM(l, field)                                                                             \
    metrics_sum_workers((l)->st.ctr, sizeof(*(l)->st.ctr),                                         \
                        offsetof(struct listener_counters, field), c->workers)
#define SSUM(s, field)                                                                             \
    metrics_sum_workers((s)->st.ctr, sizeof(*(s)->st.ctr), offsetof(struct server_counters, field), \
                        c->workers)
#define RSUM(r, field)                                                                             \
    metrics_sum_workers((r)->ctr, sizeof(*(r)->ctr), offsetof(struct route_counters, field),       \
                        c->workers)


/* {"total": {...}, ...} for the kinds in mask (1 << enum hist_kind) with samples. */
static json_t *latency(const struct config *c, const struct hist *block, unsigned mask,
                       struct hist_snap *s)
{
    json_t *o = json_object();
    for (unsigned k = 0; k < HIST_KINDS; k++) {
        if (!(mask & (1u << k)))
            continue;
        stats_hist_read(c, block, (enum hist_kind)k, s);
        json_object_set_new(o, kind_names[k], quantiles(s));
    }
    return o;
}

static json_t *classes(const counter_t *base, size_t stride, uint32_t workers)
{
    static const char *const names[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    json_t *o = json_object();
    for (unsigned i = 0; i < 5; i++)
        json_object_set_new(o, names[i], json_integer((json_int_t)metrics_sum_workers(
                                                base, stride, i * sizeof(counter_t), workers)));
    return o;
}

static json_t *json_u64(uint64_t v)
{
    return json_integer((json_int_t)v);
}

/* {"total": {...}, "ttfb": {...}} over the recent window; called once per object, in the
 * same order at every pass (see struct window). */
static json_t *recent_latency(const struct config *c, const struct hist *block,
                              struct hist_snap *s)
{
    json_t *o = json_object();
    stats_hist_read(c, block, HIST_TOTAL, s);
    json_object_set_new(o, "total", window_next(s));
    stats_hist_read(c, block, HIST_TTFB, s);
    json_object_set_new(o, "ttfb", window_next(s));
    return o;
}

static json_t *listener_json(const struct config *c, uint32_t i, struct hist_snap *s)
{
    const struct listener_conf *l = &c->listeners[i];
    json_t *addrs = json_array();
    for (uint32_t a = 0; a < l->naddrs; a++)
        json_array_append_new(addrs, json_string(l->addr_texts[a]));
    uint64_t rejected = LSUM(l, conns_rejected), denied = LSUM(l, denied),
             rate = LSUM(l, rate_limited);
    json_t *o = json_pack(
        "{s:s,s:s,s:o,s:b,s:o,s:I,s:o,s:o,s:o}", "name", l->name, "mode", mode_names[l->mode],
        "addresses", addrs, "tls", l->tls != NULL, "connections_total", json_u64(LSUM(l, conns_total)),
        "connections_active", (json_int_t)atomic_load(&l->st.active), "bytes_in",
        json_u64(LSUM(l, bytes_in)), "bytes_out", json_u64(LSUM(l, bytes_out)), "refusals",
        json_pack("{s:o,s:o,s:o,s:o,s:o}", "denied", json_u64(denied), "rate_limited",
                  json_u64(rate), "limit",
                  json_u64(rejected > denied + rate ? rejected - denied - rate : 0),
                  "proxy_errors", json_u64(LSUM(l, proxy_errors)), "inspect_failures",
                  json_u64(LSUM(l, inspect_failures))));
    json_object_set_new(o, "connect_failures", json_u64(LSUM(l, connect_failures)));
    if (l->mode == MODE_UDP) {
        json_object_set_new(o, "datagrams_in", json_u64(LSUM(l, dgrams_in)));
        json_object_set_new(o, "datagrams_out", json_u64(LSUM(l, dgrams_out)));
        json_object_set_new(o, "datagrams_dropped", json_u64(LSUM(l, dgrams_dropped)));
        json_object_set_new(o, "flows_active", json_u64(LSUM(l, flows_active)));
    }
    if (l->mode == MODE_TCP) {
        json_object_set_new(o, "tcp_segments_in", json_u64(LSUM(l, tcp_segs_in)));
        json_object_set_new(o, "tcp_segments_out", json_u64(LSUM(l, tcp_segs_out)));
        json_object_set_new(o, "tcp_retransmits", json_u64(LSUM(l, tcp_retrans)));
    }
    if (l->mode == MODE_HTTP) {
        json_object_set_new(o, "requests", json_u64(LSUM(l, http_requests)));
        json_object_set_new(o, "status",
                            classes(&l->st.ctr[0].http_responses[0], sizeof(*l->st.ctr), c->workers));
        json_object_set_new(o, "retries", json_u64(LSUM(l, http_retries)));
        json_object_set_new(o, "bad_requests", json_u64(LSUM(l, http_bad_requests)));
    }
    if (l->tls)
        json_object_set_new(o, "tls_handshakes", json_u64(LSUM(l, tls_handshakes)));
    unsigned mask = l->mode == MODE_HTTP ? (1u << HIST_TOTAL) | (1u << HIST_TTFB) | (1u << HIST_CONNECT)
                    : l->mode == MODE_TCP ? (1u << HIST_SESSION) | (1u << HIST_CONNECT)
                                          : 0;
    if (l->tls)
        mask |= 1u << HIST_TLS;
    json_object_set_new(o, "latency_ms", latency(c, l->st.hist, mask, s));
    json_object_set_new(o, "recent_latency_ms", recent_latency(c, l->st.hist, s));
    return o;
}

static json_t *route_json(const struct config *c, const struct listener_conf *l,
                          const struct http_route *r, struct hist_snap *s)
{
    json_t *codes = json_object(), *errors = json_object();
    for (unsigned i = 0; r->ctr && i < HTTP_CODES; i++) {
        uint64_t n = RSUM(r, codes[i]);
        char key[8];
        if (!n)
            continue;
        snprintf(key, sizeof(key), "%u", i + 100);
        json_object_set_new(codes, key, json_u64(n));
    }
    for (unsigned i = 0; r->ctr && i < HERR_COUNT; i++) {
        uint64_t n = RSUM(r, errors[i]);
        if (n)
            json_object_set_new(errors, stream_stats_error_name((enum http_error)i), json_u64(n));
    }
    json_t *backends = json_array();
    if (r->action == ROUTE_BACKEND && r->backend)
        json_array_append_new(backends, json_string(r->backend->name));
    for (uint32_t i = 0; r->action == ROUTE_SPLIT && i < r->nsplit; i++)
        json_array_append_new(backends, json_string(r->split[i].backend->name));
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "listener", l->name,
                     "name", r->name, "backends", backends, "requests", json_u64(RSUM(r, requests)),
                     "status", r->ctr ? classes(&r->ctr[0].responses[0], sizeof(*r->ctr), c->workers)
                                      : json_object(),
                     "codes", codes, "retries", json_u64(RSUM(r, retries)), "errors", errors,
                     "bytes_in", json_u64(RSUM(r, bytes_in)), "bytes_out",
                     json_u64(RSUM(r, bytes_out)), "latency_ms",
                     latency(c, r->hist, (1u << HIST_TOTAL) | (1u << HIST_TTFB) | (1u << HIST_CONNECT), s),
                     "recent_latency_ms", recent_latency(c, r->hist, s));
}

#define SERVER_KINDS                                                                               \
    ((1u << HIST_TOTAL) | (1u << HIST_TTFB) | (1u << HIST_CONNECT) | (1u << HIST_SESSION))

static json_t *server_json(const struct config *c, const struct server *sv, struct hist_snap *s)
{
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:b,s:i,s:b,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "backend", sv->backend->name,
        "name", sv->name, "address", sv->addr_text, "up", atomic_load(&sv->st.live->up),
        "weight", (int)atomic_load(&sv->st.weight), "backup", sv->backup, "active",
        (json_int_t)atomic_load(&sv->st.live->active), "connections_total", json_u64(SSUM(sv, conns_total)),
        "connect_errors", json_u64(SSUM(sv, connect_errors)), "requests",
        json_u64(SSUM(sv, http_requests)), "status",
        classes(&sv->st.ctr[0].http_responses[0], sizeof(*sv->st.ctr), c->workers), "bytes_in",
        json_u64(SSUM(sv, bytes_in)), "bytes_out", json_u64(SSUM(sv, bytes_out)), "latency_ms",
        latency(c, sv->st.hist, SERVER_KINDS, s));
    json_object_set_new(o, "recent_latency_ms", recent_latency(c, sv->st.hist, s));
    enum server_admin state = server_admin_get(sv); /* the runtime API's drain/maintenance */
    json_object_set_new(o, "state", json_string(server_admin_name(state)));
    json_object_set_new(o, "draining", json_boolean(state == SRV_DRAIN));
    stats_hist_read(c, sv->st.hist, HIST_RTT, s);
    json_object_set_new(o, "tcp",
                        json_pack("{s:o,s:o,s:o,s:o,s:o}", "samples",
                                  json_u64(SSUM(sv, tcp_info_samples)), "rtt_ms", quantiles(s),
                                  "retransmits", json_u64(SSUM(sv, tcp_retrans)), "segments_in",
                                  json_u64(SSUM(sv, tcp_segs_in)), "segments_out",
                                  json_u64(SSUM(sv, tcp_segs_out))));
    return o;
}

static json_t *backend_json(const struct config *c, const struct backend *b, struct hist_snap *s)
{
    uint64_t req = 0, bin = 0, bout = 0, active = 0, up = 0, cls[5] = {0};
    for (uint32_t i = 0; i < b->nservers; i++) {
        const struct server *sv = &b->servers[i];
        req += SSUM(sv, http_requests);
        bin += SSUM(sv, bytes_in);
        bout += SSUM(sv, bytes_out);
        active += atomic_load(&sv->st.live->active);
        up += atomic_load(&sv->st.live->up);
        for (unsigned k = 0; k < 5; k++)
            cls[k] += SSUM(sv, http_responses[k]);
    }
    return json_pack("{s:s,s:s,s:I,s:I,s:o,s:{s:o,s:o,s:o,s:o,s:o},s:o,s:o,s:o,s:o,s:o}", "name",
                     b->name, "balance", b->lb_ops ? b->lb_ops->name : "", "servers",
                     (json_int_t)b->nservers, "servers_up", (json_int_t)up, "requests",
                     json_u64(req), "status", "1xx", json_u64(cls[0]), "2xx", json_u64(cls[1]),
                     "3xx", json_u64(cls[2]), "4xx", json_u64(cls[3]), "5xx", json_u64(cls[4]),
                     "active", json_u64(active), "bytes_in", json_u64(bin), "bytes_out",
                     json_u64(bout), "latency_ms", latency(c, b->hist, SERVER_KINDS, s),
                     "recent_latency_ms", recent_latency(c, b->hist, s));
}

static int by_time_desc(const void *a, const void *b)
{
    const struct recent_error *x = a, *y = b;
    return x->unix_ms < y->unix_ms ? 1 : x->unix_ms > y->unix_ms ? -1 : 0;
}

/* The last errors of every listener, newest first. */
static json_t *recent_json(const struct config *c)
{
    size_t cap = (size_t)c->nlisteners * c->workers * RECENT_PER_WORKER, n = 0;
    struct recent_error *all = cap ? malloc(cap * sizeof(*all)) : NULL;
    uint32_t *owner = cap ? malloc(cap * sizeof(*owner)) : NULL;
    json_t *a = json_array();
    for (uint32_t i = 0; all && owner && i < c->nlisteners; i++) {
        for (uint32_t w = 0; c->listeners[i].st.recent && w < c->workers; w++) {
            unsigned got = recent_read(&c->listeners[i].st.recent[w], all + n, RECENT_PER_WORKER);
            for (unsigned k = 0; k < got; k++)
                owner[n + k] = i;
            n += got;
        }
    }
    /* sort indices, not entries, so each keeps its listener */
    size_t *idx = n ? malloc(n * sizeof(*idx)) : NULL;
    for (size_t i = 0; idx && i < n; i++)
        idx[i] = i;
    for (size_t i = 1; idx && i < n; i++) /* insertion sort: n is a few hundred at most */
        for (size_t j = i; j > 0 && by_time_desc(&all[idx[j - 1]], &all[idx[j]]) > 0; j--) {
            size_t t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    for (size_t i = 0; idx && i < n && i < MAX_RECENT; i++) {
        const struct recent_error *e = &all[idx[i]];
        json_array_append_new(
            a, json_pack("{s:I,s:s,s:s,s:i,s:s,s:s,s:s}", "time_ms", (json_int_t)e->unix_ms,
                         "listener", c->listeners[owner[idx[i]]].name, "where", e->where, "status",
                         (int)e->status, "reason", e->reason, "detail", e->detail, "path", e->path));
    }
    free(idx);
    free(owner);
    free(all);
    return a;
}

static json_t *stats_json(struct config *c)
{
    struct hist_snap *s = malloc(sizeof(*s));
    if (!s)
        return NULL;
    uint64_t now = mono_ms();
    window_begin(c, now);
    json_t *ls = json_array(), *rs = json_array(), *bs = json_array(), *ss = json_array();
    for (uint32_t i = 0; i < c->nlisteners; i++) {
        const struct listener_conf *l = &c->listeners[i];
        json_array_append_new(ls, listener_json(c, i, s));
        for (uint32_t r = 0; l->mode == MODE_HTTP && r < l->http.nroutes; r++)
            json_array_append_new(rs, route_json(c, l, &l->http.routes[r], s));
    }
    for (uint32_t b = 0; b < c->nbackends; b++) {
        json_array_append_new(bs, backend_json(c, &c->backends[b], s));
        for (uint32_t i = 0; i < c->backends[b].nservers; i++)
            if (server_admin_get(&c->backends[b].servers[i]) != SRV_REMOVED) /* as /metrics */
                json_array_append_new(ss, server_json(c, &c->backends[b].servers[i], s));
    }
    free(s);
    return json_pack("{s:I,s:i,s:f,s:o,s:o,s:o,s:o,s:o}", "time_ms",
                     (json_int_t)real_ms(), "workers",
                     (int)c->workers, "recent_window_s", window_seconds(now), "listeners", ls,
                     "routes", rs, "backends", bs, "servers", ss, "recent_errors", recent_json(c));
}

void admin_stats_release(void)
{
    window_reset();
}

void admin_serve_stats(struct admin_conn *c, const struct http_msg *m, bool head)
{
    json_t *j = stats_json(admin_conn_config(c));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        admin_reply(c, 500, "application/json", NULL, oom, sizeof(oom) - 1, head);
        return;
    }
    admin_reply_maybe_gzip(c, m, 200, "application/json", text, strlen(text), head);
    free(text);
}
