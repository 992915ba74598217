/* metrics.c — the metric table (the only place a metric is declared) and the Prometheus
 * text exporter. Counters are summed over the per-worker blocks when read; gauges come
 * from the shared atomics. See metrics.h.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/version.h"
#include "http/filters/rate_limit.h"
#include "lb/lb.h"
#include "lb/server_admin.h"
#include "proxy/redis_sync.h"

static uint64_t get_one(const struct config *c, const void *obj)
{
    (void)c;
    (void)obj;
    return 1;
}

static uint64_t get_workers(const struct config *c, const void *obj)
{
    (void)obj;
    return c->workers;
}

static uint64_t get_listener_active(const struct config *c, const void *obj)
{
    const struct listener_conf *l = obj;
    (void)c;
    return atomic_load_explicit(&l->st.active, memory_order_relaxed);
}

static uint64_t get_server_active(const struct config *c, const void *obj)
{
    const struct server *s = obj;
    (void)c;
    return atomic_load_explicit(&s->st.live->active, memory_order_relaxed);
}

static uint64_t get_server_up(const struct config *c, const void *obj)
{
    const struct server *s = obj;
    (void)c;
    return atomic_load_explicit(&s->st.live->up, memory_order_relaxed) ? 1 : 0;
}

static uint64_t get_server_weight(const struct config *c, const void *obj)
{
    (void)c;
    return lb_weight(obj);
}

static uint64_t get_server_draining(const struct config *c, const void *obj)
{
    (void)c;
    return server_admin_get(obj) == SRV_DRAIN;
}

static uint64_t get_server_maintenance(const struct config *c, const void *obj)
{
    (void)c;
    return server_admin_get(obj) == SRV_MAINT;
}

#define LCTR(field) .offset = offsetof(struct listener_counters, field)
#define RCTR(field) .offset = offsetof(struct route_counters, field)
/* The five rows of a family split by status class: row(index, "1xx") ... */
#define STATUS_CLASSES(row) row(0, "1xx"), row(1, "2xx"), row(2, "3xx"), row(3, "4xx"), row(4, "5xx")
#define SCTR(field) .offset = offsetof(struct server_counters, field)
#define GAUGE(fn) .offset = METRIC_NO_OFFSET, .get = (fn)
#define RLCTR(field) .offset = offsetof(struct rl_counters, field)

static uint64_t get_redis_stat(const struct config *c, const void *obj, size_t field)
{
    (void)c;
    (void)obj;
    return atomic_load_explicit((const _Atomic uint64_t *)((const char *)&redis_sync_stats + field),
                                memory_order_relaxed);
}
#define REDIS_GETTER(field)                                                                        \
    static uint64_t get_redis_##field(const struct config *c, const void *obj)                     \
    {                                                                                              \
        return get_redis_stat(c, obj, offsetof(struct redis_sync_stats, field));                   \
    }
REDIS_GETTER(up)
REDIS_GETTER(exchanges)
REDIS_GETTER(failures)
REDIS_GETTER(reconnects)

static const struct metric_def metric_table[] = {
    {"strata_build_info", "Strata build information; the value is always 1.", "", METRIC_GAUGE,
     METRIC_PROCESS, GAUGE(get_one), .const_label = "version", .const_value = STRATA_VERSION},
    {"strata_workers", "Number of worker threads.", "threads", METRIC_GAUGE, METRIC_PROCESS,
     GAUGE(get_workers)},

    {"strata_listener_connections_total", "Client connections accepted.", "connections",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(conns_total)},
    {"strata_listener_connections_active", "Client connections currently open.", "connections",
     METRIC_GAUGE, METRIC_LISTENER, GAUGE(get_listener_active)},
    {"strata_listener_connections_rejected_total",
     "Client connections closed at once: connection limit reached or no server available.",
     "connections", METRIC_COUNTER, METRIC_LISTENER, LCTR(conns_rejected)},
    {"strata_listener_bytes_in_total", "Bytes received from clients.", "bytes", METRIC_COUNTER,
     METRIC_LISTENER, LCTR(bytes_in)},
    {"strata_listener_bytes_out_total", "Bytes sent to clients.", "bytes", METRIC_COUNTER,
     METRIC_LISTENER, LCTR(bytes_out)},
    {"strata_listener_connect_failures_total",
     "Client sessions ended because no server could be reached.", "sessions", METRIC_COUNTER,
     METRIC_LISTENER, LCTR(connect_failures)},
    {"strata_listener_timeouts_total", "Client sessions ended by the idle timeout.", "sessions",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(timeouts)},
    {"strata_listener_denied_total",
     "Client connections refused by the ACL or sending PROXY headers from an untrusted source.",
     "connections", METRIC_COUNTER, METRIC_LISTENER, LCTR(denied)},
    {"strata_listener_rate_limited_total",
     "Client connections refused by the per-source connection rate.", "connections", METRIC_COUNTER,
     METRIC_LISTENER, LCTR(rate_limited)},
    {"strata_listener_proxy_errors_total",
     "Client connections closed for a malformed, missing or late PROXY protocol header.",
     "connections", METRIC_COUNTER, METRIC_LISTENER, LCTR(proxy_errors)},
    {"strata_listener_inspect_failures_total",
     "Client connections closed because their TLS ClientHello was malformed, not TLS, late, "
     "or matched no route.",
     "connections", METRIC_COUNTER, METRIC_LISTENER, LCTR(inspect_failures)},
    {"strata_listener_datagrams_in_total", "UDP datagrams received from clients.", "datagrams",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(dgrams_in)},
    {"strata_listener_datagrams_out_total", "UDP datagrams sent to clients.", "datagrams",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(dgrams_out)},
    {"strata_listener_datagrams_dropped_total",
     "UDP datagrams not relayed: no server available, out of descriptors or memory, a full "
     "socket buffer, or refused by QUIC routing.",
     "datagrams", METRIC_COUNTER, METRIC_LISTENER, LCTR(dgrams_dropped)},
    {"strata_listener_flows_created_total", "UDP flows opened (a new client address and port).",
     "flows", METRIC_COUNTER, METRIC_LISTENER, LCTR(flows_created)},
    {"strata_listener_flows_active", "UDP flows currently open.", "flows", METRIC_GAUGE,
     METRIC_LISTENER, LCTR(flows_active)},
    {"strata_listener_flows_evicted_total",
     "UDP flows ended to make room for a new one (udp.max_flows).", "flows", METRIC_COUNTER,
     METRIC_LISTENER, LCTR(flows_evicted)},
    {"strata_listener_flows_timed_out_total", "UDP flows ended by udp.flow_idle.", "flows",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(flows_timed_out)},
    {"strata_listener_quic_routed_by_server_id_total",
     "New UDP flows of a QUIC listener sent to the server named by the QUIC-LB server ID of "
     "their connection ID.",
     "flows", METRIC_COUNTER, METRIC_LISTENER, LCTR(quic_routed_by_server_id)},
    {"strata_listener_quic_routed_by_hash_total",
     "New UDP flows of a QUIC listener sent to a server by consistent hashing of their "
     "Destination Connection ID.",
     "flows", METRIC_COUNTER, METRIC_LISTENER, LCTR(quic_routed_by_hash)},
    {"strata_listener_quic_dropped_invalid_total",
     "Datagrams of new flows dropped by a QUIC listener because they are not QUIC packets.",
     "datagrams", METRIC_COUNTER, METRIC_LISTENER, LCTR(quic_dropped_invalid)},
    {"strata_listener_quic_dropped_unroutable_total",
     "Short-header datagrams of new flows dropped by a QUIC listener because their "
     "connection ID names no known server.",
     "datagrams", METRIC_COUNTER, METRIC_LISTENER, LCTR(quic_dropped_unroutable)},
    {"strata_listener_http_requests_total", "HTTP requests received (heads parsed).",
     "requests", METRIC_COUNTER, METRIC_LISTENER, LCTR(http_requests)},
#define HTTP_CLASS(i, cls)                                                                         \
    {"strata_listener_http_responses_total", "HTTP responses sent to clients, by status class.",  \
     "responses", METRIC_COUNTER, METRIC_LISTENER, LCTR(http_responses[i]),                       \
     .const_label = "code", .const_value = cls}
    HTTP_CLASS(0, "1xx"),
    HTTP_CLASS(1, "2xx"),
    HTTP_CLASS(2, "3xx"),
    HTTP_CLASS(3, "4xx"),
    HTTP_CLASS(4, "5xx"),
#undef HTTP_CLASS
    {"strata_listener_tls_handshakes_total", "TLS handshakes completed with clients.",
     "handshakes", METRIC_COUNTER, METRIC_LISTENER, LCTR(tls_handshakes)},
    {"strata_listener_tls_resumed_total",
     "TLS handshakes with clients that resumed a session (ticket or session cache).",
     "handshakes", METRIC_COUNTER, METRIC_LISTENER, LCTR(tls_resumed)},
#define TLS_FAIL(i, label)                                                                         \
    {"strata_listener_tls_handshake_failures_total",                                              \
     "TLS handshakes with clients that failed, by reason.", "handshakes", METRIC_COUNTER,          \
     METRIC_LISTENER, LCTR(tls_failures[i]), .const_label = "reason", .const_value = label}
    TLS_FAIL(TLS_FAIL_NOT_TLS, "not_tls"),
    TLS_FAIL(TLS_FAIL_NO_SHARED, "no_shared_cipher"),
    TLS_FAIL(TLS_FAIL_BAD_CERT, "bad_certificate"),
    TLS_FAIL(TLS_FAIL_CERT_REQUIRED, "client_certificate_required"),
    TLS_FAIL(TLS_FAIL_PEER_ALERT, "peer_alert"),
    TLS_FAIL(TLS_FAIL_HANDSHAKE, "handshake_failure"),
    TLS_FAIL(TLS_FAIL_EOF, "unexpected_eof"),
    {"strata_listener_tls_handshake_failures_total",
     "TLS handshakes with clients that failed, by reason.", "handshakes", METRIC_COUNTER,
     METRIC_LISTENER, LCTR(tls_timeouts), .const_label = "reason", .const_value = "timeout"},
#undef TLS_FAIL
    {"strata_listener_http_bad_requests_total",
     "HTTP requests refused by the parser (400, 413, 414, 431, 501, 505) or too slow (408).",
     "requests", METRIC_COUNTER, METRIC_LISTENER, LCTR(http_bad_requests)},
    {"strata_listener_http_lingering_closes_total",
     "HTTP client connections closed lingering: sending side shut after an answer given "
     "before the request was read whole (or an HTTP/2 GOAWAY), what the client still sent "
     "read and dropped until it closed or lingering_timeout passed.",
     "connections", METRIC_COUNTER, METRIC_LISTENER, LCTR(http_lingering)},
    {"strata_listener_http_retries_total",
     "Extra attempts made for HTTP requests (connect failures, resets, retried statuses).",
     "requests", METRIC_COUNTER, METRIC_LISTENER, LCTR(http_retries)},
    {"strata_listener_http_spliced_bytes_total",
     "HTTP body bytes moved socket to socket by splice(2), never copied into user space "
     "(bodies no filter sees, with a length, between plain HTTP/1 clients and servers).",
     "bytes", METRIC_COUNTER, METRIC_LISTENER, LCTR(http_spliced)},
    {"strata_listener_h2_connections_total", "Client connections that spoke HTTP/2.",
     "connections", METRIC_COUNTER, METRIC_LISTENER, LCTR(h2_conns)},
    {"strata_listener_h2_calm_goaways_total",
     "HTTP/2 client connections ended with GOAWAY (ENHANCE_YOUR_CALM) for abuse.", "connections",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(h2_calm)},
#define H2_LIMIT(i, label)                                                                         \
    {"strata_listener_h2_limit_hits_total",                                                       \
     "Times an HTTP/2 limit of listeners[].http.h2 stopped a client, by limit.", "events",         \
     METRIC_COUNTER, METRIC_LISTENER, LCTR(h2_limits[i]), .const_label = "limit",                 \
     .const_value = label}
    H2_LIMIT(H2L_STREAMS, "max_concurrent_streams"),
    H2_LIMIT(H2L_RESETS, "max_resets_per_second"),
    H2_LIMIT(H2L_GLITCHES, "max_glitches_per_second"),
    H2_LIMIT(H2L_CONTINUATION, "max_continuations"),
    H2_LIMIT(H2L_HEADER_LIST, "max_header_size"),
    H2_LIMIT(H2L_SETTINGS, "max_settings_per_second"),
    H2_LIMIT(H2L_PING, "max_pings_per_second"),
    H2_LIMIT(H2L_PRIORITY, "max_priority_per_second"),
    H2_LIMIT(H2L_EMPTY_DATA, "max_empty_data_per_second"),
    H2_LIMIT(H2L_WINDOW_UPDATE, "max_window_updates_per_second"),
    H2_LIMIT(H2L_STALL, "stream_stall_timeout"),
#undef H2_LIMIT
#define FILTER_EVENT(i, label)                                                                     \
    {"strata_listener_http_filter_events_total",                                                  \
     "What the access filters (jwt, basic_auth, cors, ip_access, bot) decided, by event.",         \
     "requests", METRIC_COUNTER, METRIC_LISTENER, LCTR(http_filter_events[i]),                    \
     .const_label = "event", .const_value = label}
    FILTER_EVENT(HFE_JWT_OK, "jwt_accepted"),
    FILTER_EVENT(HFE_JWT_MISSING, "jwt_missing"),
    FILTER_EVENT(HFE_JWT_INVALID, "jwt_refused"),
    FILTER_EVENT(HFE_BASIC_OK, "basic_accepted"),
    FILTER_EVENT(HFE_BASIC_MISSING, "basic_missing"),
    FILTER_EVENT(HFE_BASIC_INVALID, "basic_refused"),
    FILTER_EVENT(HFE_CORS_PREFLIGHT, "cors_preflight"),
    FILTER_EVENT(HFE_CORS_REFUSED, "cors_refused"),
    FILTER_EVENT(HFE_IP_DENIED, "ip_denied"),
    FILTER_EVENT(HFE_BOT_DENIED, "bot_denied"),
    FILTER_EVENT(HFE_BOT_CHALLENGED, "bot_challenged"),
    FILTER_EVENT(HFE_BOT_PASSED, "bot_passed"),
    FILTER_EVENT(HFE_LIMIT_REFUSED, "limits_refused"),
#undef FILTER_EVENT
#define WAF_REQ(i, label)                                                                          \
    {"strata_listener_waf_requests_total",                                                        \
     "Requests the WAF inspected, by outcome (passed, detected: rules matched but nothing was "   \
     "blocked, blocked).", "requests", METRIC_COUNTER, METRIC_LISTENER, LCTR(waf_requests[i]),     \
     .const_label = "outcome", .const_value = label}
    WAF_REQ(WAF_PASSED, "passed"),
    WAF_REQ(WAF_DETECTED, "detected"),
    WAF_REQ(WAF_BLOCKED, "blocked"),
#undef WAF_REQ
#define WAF_CAT(i, label)                                                                          \
    {"strata_listener_waf_rule_matches_total",                                                    \
     "Requests in which WAF rules of a category matched (CRS rule id ranges).", "requests",       \
     METRIC_COUNTER, METRIC_LISTENER, LCTR(waf_matches[i]), .const_label = "category",            \
     .const_value = label}
    WAF_CAT(WAF_CAT_PROTOCOL, "protocol"),
    WAF_CAT(WAF_CAT_SCANNER, "scanner"),
    WAF_CAT(WAF_CAT_LFI, "lfi"),
    WAF_CAT(WAF_CAT_RFI, "rfi"),
    WAF_CAT(WAF_CAT_RCE, "rce"),
    WAF_CAT(WAF_CAT_PHP, "php"),
    WAF_CAT(WAF_CAT_NODEJS, "nodejs"),
    WAF_CAT(WAF_CAT_XSS, "xss"),
    WAF_CAT(WAF_CAT_SQLI, "sqli"),
    WAF_CAT(WAF_CAT_SESSION, "session_fixation"),
    WAF_CAT(WAF_CAT_JAVA, "java"),
    WAF_CAT(WAF_CAT_RESPONSE, "data_leakage"),
    WAF_CAT(WAF_CAT_OTHER, "other"),
#undef WAF_CAT
#define AUTHZ(i, label)                                                                            \
    {"strata_listener_ext_authz_checks_total",                                                    \
     "External authorization checks, by result (cache_hit: answered from the worker's cache, "    \
     "also counted as allowed or denied).", "checks", METRIC_COUNTER, METRIC_LISTENER,            \
     LCTR(ext_authz[i]), .const_label = "result", .const_value = label}
    AUTHZ(EXT_AUTHZ_ALLOWED, "allowed"),
    AUTHZ(EXT_AUTHZ_DENIED, "denied"),
    AUTHZ(EXT_AUTHZ_FAILED, "failed"),
    AUTHZ(EXT_AUTHZ_CACHE_HIT, "cache_hit"),
#undef AUTHZ

    {"strata_listener_tcp_segments_in_total",
     "TCP segments received from clients of relayed sessions (TCP_INFO, sampled).", "segments",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(tcp_segs_in)},
    {"strata_listener_tcp_segments_out_total",
     "TCP segments sent to clients of relayed sessions (TCP_INFO, sampled).", "segments",
     METRIC_COUNTER, METRIC_LISTENER, LCTR(tcp_segs_out)},
    {"strata_listener_tcp_retransmits_total",
     "TCP segments retransmitted to clients of relayed sessions (TCP_INFO, sampled).",
     "segments", METRIC_COUNTER, METRIC_LISTENER, LCTR(tcp_retrans)},

    {"strata_server_connections_total", "Connections established to the server.", "connections",
     METRIC_COUNTER, METRIC_SERVER, SCTR(conns_total)},
    {"strata_server_connections_active", "Proxied connections currently open to the server.",
     "connections", METRIC_GAUGE, METRIC_SERVER, GAUGE(get_server_active)},
    {"strata_server_connect_errors_total",
     "Connection attempts to the server that were refused, unreachable or timed out.",
     "connections", METRIC_COUNTER, METRIC_SERVER, SCTR(connect_errors)},
    {"strata_server_bytes_in_total", "Bytes received from the server.", "bytes", METRIC_COUNTER,
     METRIC_SERVER, SCTR(bytes_in)},
    {"strata_server_bytes_out_total", "Bytes sent to the server.", "bytes", METRIC_COUNTER,
     METRIC_SERVER, SCTR(bytes_out)},
    {"strata_server_up", "Whether the server is eligible for new connections (1) or not (0).", "",
     METRIC_GAUGE, METRIC_SERVER, GAUGE(get_server_up)},
    {"strata_server_weight", "The server's balancing weight (the runtime API may change it).", "",
     METRIC_GAUGE, METRIC_SERVER, GAUGE(get_server_weight)},
    {"strata_server_draining",
     "Whether the server is drained (1): no new connections but a sticky cookie's.", "",
     METRIC_GAUGE, METRIC_SERVER, GAUGE(get_server_draining)},
    {"strata_server_maintenance",
     "Whether the server is in maintenance (1): disabled by the runtime API, no new traffic.", "",
     METRIC_GAUGE, METRIC_SERVER, GAUGE(get_server_maintenance)},
    {"strata_server_datagrams_in_total", "UDP datagrams received from the server.", "datagrams",
     METRIC_COUNTER, METRIC_SERVER, SCTR(dgrams_in)},
    {"strata_server_datagrams_out_total", "UDP datagrams sent to the server.", "datagrams",
     METRIC_COUNTER, METRIC_SERVER, SCTR(dgrams_out)},
    {"strata_server_flows_created_total", "UDP flows opened to the server.", "flows",
     METRIC_COUNTER, METRIC_SERVER, SCTR(flows_created)},
    {"strata_server_flows_active", "UDP flows currently open to the server.", "flows", METRIC_GAUGE,
     METRIC_SERVER, SCTR(flows_active)},
    {"strata_server_flows_evicted_total",
     "UDP flows to the server ended to make room for a new one (udp.max_flows).", "flows",
     METRIC_COUNTER, METRIC_SERVER, SCTR(flows_evicted)},
    {"strata_server_flows_timed_out_total", "UDP flows to the server ended by udp.flow_idle.",
     "flows", METRIC_COUNTER, METRIC_SERVER, SCTR(flows_timed_out)},
    {"strata_server_http_requests_total", "HTTP requests sent to the server (each attempt).",
     "requests", METRIC_COUNTER, METRIC_SERVER, SCTR(http_requests)},
    {"strata_server_http_5xx_total", "5xx responses (or invalid ones) from the server.",
     "responses", METRIC_COUNTER, METRIC_SERVER, SCTR(http_5xx)},
    {"strata_server_http_reused_total",
     "HTTP requests sent on a pooled keep-alive connection.", "requests", METRIC_COUNTER,
     METRIC_SERVER, SCTR(http_reused)},
#define SRV_CLASS(i, cls)                                                                          \
    {"strata_server_http_responses_total",                                                        \
     "Final HTTP responses from the server passed to clients, by status class.", "responses",     \
     METRIC_COUNTER, METRIC_SERVER, SCTR(http_responses[i]), .const_label = "code",               \
     .const_value = cls}
    STATUS_CLASSES(SRV_CLASS),
#undef SRV_CLASS
    {"strata_server_tcp_info_samples_total",
     "TCP_INFO reads of connections to the server (TCP relay, HTTP): while open, round robin "
     "about once a second, and at close.",
     "samples", METRIC_COUNTER, METRIC_SERVER, SCTR(tcp_info_samples)},
    {"strata_server_tcp_retransmits_total",
     "TCP segments retransmitted to the server (TCP_INFO of its connections, sampled).",
     "segments", METRIC_COUNTER, METRIC_SERVER, SCTR(tcp_retrans)},
    {"strata_server_tcp_segments_in_total",
     "TCP segments received from the server (TCP_INFO of its connections, sampled).",
     "segments", METRIC_COUNTER, METRIC_SERVER, SCTR(tcp_segs_in)},
    {"strata_server_tcp_segments_out_total",
     "TCP segments sent to the server (TCP_INFO of its connections, sampled).", "segments",
     METRIC_COUNTER, METRIC_SERVER, SCTR(tcp_segs_out)},

    {"strata_route_requests_total", "HTTP requests taken by the route.", "requests",
     METRIC_COUNTER, METRIC_ROUTE, RCTR(requests)},
#define ROUTE_CLASS(i, cls)                                                                        \
    {"strata_route_responses_total", "HTTP responses sent for the route, by status class.",       \
     "responses", METRIC_COUNTER, METRIC_ROUTE, RCTR(responses[i]), .const_label = "code",        \
     .const_value = cls}
    STATUS_CLASSES(ROUTE_CLASS),
#undef ROUTE_CLASS
    {"strata_route_retries_total", "Extra attempts made for the route's requests.", "requests",
     METRIC_COUNTER, METRIC_ROUTE, RCTR(retries)},
    {"strata_route_bytes_in_total", "Bytes received from clients for the route's requests.",
     "bytes", METRIC_COUNTER, METRIC_ROUTE, RCTR(bytes_in)},
    {"strata_route_bytes_out_total", "Bytes sent to clients for the route's requests.", "bytes",
     METRIC_COUNTER, METRIC_ROUTE, RCTR(bytes_out)},

    {"strata_rate_limit_allowed_total", "Requests under the limit.", "requests", METRIC_COUNTER,
     METRIC_RATE_LIMIT, RLCTR(allowed)},
    {"strata_rate_limit_limited_total", "Requests refused with 429 by the limit.", "requests",
     METRIC_COUNTER, METRIC_RATE_LIMIT, RLCTR(limited)},
    {"strata_rate_limit_shadow_total",
     "Requests over a limit in shadow mode (passed, only counted and logged).", "requests",
     METRIC_COUNTER, METRIC_RATE_LIMIT, RLCTR(shadow)},
    {"strata_rate_limit_fallback_total",
     "Requests of a cluster limit decided locally: Redis down or slow (fail: open), or the "
     "key table full.", "requests", METRIC_COUNTER, METRIC_RATE_LIMIT, RLCTR(fallback)},
    {"strata_rate_limit_redis_closed_total",
     "Requests of a cluster limit refused because Redis is down (fail: closed).", "requests",
     METRIC_COUNTER, METRIC_RATE_LIMIT, RLCTR(closed)},
    {"strata_rate_limit_redis_up", "Redis connections of rate limits that are up and in time.",
     "connections", METRIC_GAUGE, METRIC_PROCESS, GAUGE(get_redis_up)},
    {"strata_rate_limit_redis_exchanges_total", "Count exchanges with Redis completed in time.",
     "exchanges", METRIC_COUNTER, METRIC_PROCESS, GAUGE(get_redis_exchanges)},
    {"strata_rate_limit_redis_failures_total",
     "Redis connections lost, refused, or too slow (rate limits then use their fail mode).",
     "failures", METRIC_COUNTER, METRIC_PROCESS, GAUGE(get_redis_failures)},
    {"strata_rate_limit_redis_reconnects_total", "Connection attempts to Redis after the first.",
     "connections", METRIC_COUNTER, METRIC_PROCESS, GAUGE(get_redis_reconnects)},
};

const struct metric_def *metrics_table(size_t *n)
{
    *n = ARRAY_SIZE(metric_table);
    return metric_table;
}

uint64_t metrics_sum_workers(const void *base, size_t size, size_t offset, uint32_t nworkers)
{
    uint64_t sum = 0;
    if (!base)
        return 0;
    for (uint32_t w = 0; w < nworkers; w++) {
        const counter_t *ctr = (const counter_t *)((const char *)base + w * size + offset);
        sum += CTR_GET(*ctr);
    }
    return sum;
}

uint64_t metric_value(const struct config *c, const struct metric_def *d, const void *obj)
{
    if (d->offset == METRIC_NO_OFFSET)
        return d->get(c, obj);
    switch (d->scope) {
    case METRIC_LISTENER: {
        const struct listener_conf *l = obj;
        return metrics_sum_workers(l->st.ctr, sizeof(*l->st.ctr), d->offset, c->workers);
    }
    case METRIC_SERVER: {
        const struct server *s = obj;
        return metrics_sum_workers(s->st.ctr, sizeof(*s->st.ctr), d->offset, c->workers);
    }
    case METRIC_ROUTE: {
        const struct http_route *r = obj;
        return metrics_sum_workers(r->ctr, sizeof(*r->ctr), d->offset, c->workers);
    }
    case METRIC_RATE_LIMIT: {
        const struct rl_limit *l = obj;
        return metrics_sum_workers(l->ctr, sizeof(*l->ctr), d->offset, c->workers);
    }
    case METRIC_PROCESS:
        break;
    }
    BUG_ON(1); /* a process-level metric must have a getter */
    return 0;
}

/* Labels a sample of a family split by a fixed label (const_label) at position `at`. */
static void add_const_label(struct metric_sample *s, const struct metric_def *d, unsigned at)
{
    s->nlabels = at;
    if (!d->const_label)
        return;
    s->nlabels = at + 1;
    s->label_names[at] = d->const_label;
    s->label_values[at] = d->const_value;
}

/* The samples of a METRIC_ROUTE metric: every route of every HTTP listener. */
static int foreach_route_sample(const struct config *c, const struct metric_def *d,
                                metric_sample_cb cb, void *arg)
{
    struct metric_sample s = {.def = d, .label_names = {"listener", "route"}};
    bool first = true;
    int rc;
    add_const_label(&s, d, 2);
    for (uint32_t i = 0; i < c->nlisteners; i++) {
        const struct listener_conf *l = &c->listeners[i];
        for (uint32_t r = 0; l->mode == MODE_HTTP && r < l->http.nroutes; r++, first = false) {
            s.label_values[0] = l->name;
            s.label_values[1] = l->http.routes[r].name;
            s.value = metric_value(c, d, &l->http.routes[r]);
            if ((rc = cb(arg, &s, first)) != 0)
                return rc;
        }
    }
    return 0;
}

struct rl_walk {
    const struct config *c;
    struct metric_sample *s;
    metric_sample_cb cb;
    void *arg;
    bool first;
};

static int rate_limit_samples(void *arg, const struct http_route *r,
                              struct filter_rate_limit_conf *f)
{
    struct rl_walk *w = arg;
    for (uint32_t i = 0; i < f->nlimits; i++, w->first = false) {
        w->s->label_values[0] = r->name;
        w->s->label_values[1] = f->limits[i].name;
        w->s->value = metric_value(w->c, w->s->def, &f->limits[i]);
        int rc = w->cb(w->arg, w->s, w->first);
        if (rc)
            return rc;
    }
    return 0;
}

/* Calls cb for each sample of one metric. Returns cb's first nonzero value, else 0. */
static int foreach_sample(const struct config *c, const struct metric_def *d, metric_sample_cb cb,
                          void *arg)
{
    struct metric_sample s = {.def = d};
    bool first = true;
    int rc;

    if (d->scope == METRIC_PROCESS) {
        add_const_label(&s, d, 0);
        s.value = metric_value(c, d, c);
        return cb(arg, &s, true);
    }
    if (d->scope == METRIC_LISTENER) {
        s.label_names[0] = "listener";
        add_const_label(&s, d, 1);
        for (uint32_t i = 0; i < c->nlisteners; i++, first = false) {
            s.label_values[0] = c->listeners[i].name;
            s.value = metric_value(c, d, &c->listeners[i]);
            if ((rc = cb(arg, &s, first)) != 0)
                return rc;
        }
        return 0;
    }
    if (d->scope == METRIC_ROUTE)
        return foreach_route_sample(c, d, cb, arg);
    if (d->scope == METRIC_RATE_LIMIT) {
        s.nlabels = 2;
        s.label_names[0] = "route";
        s.label_names[1] = "limit";
        struct rl_walk w = {c, &s, cb, arg, true};
        return rate_limit_foreach(c, rate_limit_samples, &w);
    }
    s.label_names[0] = "backend";
    s.label_names[1] = "server";
    add_const_label(&s, d, 2);
    for (uint32_t b = 0; b < c->nbackends; b++) {
        const struct backend *be = &c->backends[b];
        for (uint32_t i = 0; i < be->nservers; i++) {
            if (!server_in_use(&be->servers[i]))
                continue; /* an empty runtime slot, or a server removed at run time */
            s.label_values[0] = be->name;
            s.label_values[1] = be->servers[i].name;
            s.value = metric_value(c, d, &be->servers[i]);
            if ((rc = cb(arg, &s, first)) != 0)
                return rc;
            first = false;
        }
    }
    return 0;
}

int metrics_foreach(const struct config *c, metric_sample_cb cb, void *arg)
{
    for (size_t i = 0; i < ARRAY_SIZE(metric_table); i++) {
        int rc = foreach_sample(c, &metric_table[i], cb, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- Prometheus text format 0.0.4 ---- */

void metrics_escape_label(struct strbuf *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!esc)
            continue;
        sb_append(out, run, (size_t)(s - run));
        sb_puts(out, esc);
        run = s + 1;
    }
    sb_append(out, run, (size_t)(s - run));
}

/* HELP text escapes only backslash and newline. */
static void escape_help(struct strbuf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_puts(out, "\\\\");
        else if (*s == '\n')
            sb_puts(out, "\\n");
        else
            sb_putc(out, *s);
    }
}

static int render_sample(void *arg, const struct metric_sample *s, bool first)
{
    struct strbuf *out = arg;
    (void)first;
    sb_puts(out, s->def->name);
    for (unsigned i = 0; i < s->nlabels; i++) {
        sb_puts(out, i == 0 ? "{" : ",");
        sb_puts(out, s->label_names[i]);
        sb_puts(out, "=\"");
        metrics_escape_label(out, s->label_values[i] ? s->label_values[i] : "");
        sb_putc(out, '"');
    }
    if (s->nlabels)
        sb_putc(out, '}');
    sb_printf(out, " %" PRIu64 "\n", s->value);
    return out->err ? -1 : 0;
}

void metrics_family_header(struct strbuf *out, const char *name, const char *help,
                           const char *type, bool openmetrics)
{
    size_t len = strlen(name);
    /* OpenMetrics names a counter family without its samples' _total suffix */
    if (openmetrics && strcmp(type, "counter") == 0 && len > 6 &&
        strcmp(name + len - 6, "_total") == 0)
        len -= 6;
    sb_printf(out, "# HELP %.*s ", (int)len, name);
    escape_help(out, help);
    sb_printf(out, "\n# TYPE %.*s %s\n", (int)len, name, type);
}

static void render_table(const struct config *c, struct strbuf *out, bool openmetrics)
{
    for (size_t i = 0; i < ARRAY_SIZE(metric_table) && !out->err; i++) {
        const struct metric_def *d = &metric_table[i];
        /* rows of one family (same name, a const label apart) share HELP and TYPE */
        if (i == 0 || strcmp(metric_table[i - 1].name, d->name) != 0)
            metrics_family_header(out, d->name, d->help,
                                  d->type == METRIC_COUNTER ? "counter" : "gauge", openmetrics);
        foreach_sample(c, d, render_sample, out);
    }
    metrics_render_latency(c, out, openmetrics);
}

void metrics_render_prometheus(const struct config *c, struct strbuf *out)
{
    render_table(c, out, false);
}

void metrics_render_openmetrics(const struct config *c, struct strbuf *out)
{
    render_table(c, out, true);
    sb_puts(out, "# EOF\n");
}
