/* route-t.h — the HTTP part of the configuration snapshot (types only): a listener's
 * HTTP settings, its routes (match → filters → action), and what filters are configured
 * with. Built by src/config/, read-only afterwards; owned by the snapshot.
 */
#ifndef STRATA_HTTP_ROUTE_T_H
#define STRATA_HTTP_ROUTE_T_H

#include <stdbool.h>
#include <stdint.h>

#include "core/logbuf-t.h"

#include "http/error_page-t.h"
#include "net/cidr.h"
#include "stats/geo-t.h"

struct backend;
struct filter_ops;
struct route_counters;
struct hist;

/* How a string is matched. Regexes are PCRE2, compiled (with JIT) at load. */
enum str_match_kind {
    SM_ANY = 0, /* not set: matches anything, including absence */
    SM_PRESENT, /* the field/cookie/parameter exists, any value */
    SM_EXACT,
    SM_PREFIX,
    SM_REGEX,
};

struct str_match {
    enum str_match_kind kind;
    char *text; /* SM_EXACT / SM_PREFIX: the text; SM_REGEX: the pattern (for messages) */
    uint32_t len;
    void *re; /* SM_REGEX: pcre2_code * */
};

/* A match on a named item: a header field (name lowercased), a cookie or a query
 * parameter (names case-sensitive). */
struct named_match {
    char *name;
    uint32_t name_len;
    struct str_match value; /* SM_PRESENT when only the name was given */
};

/* Host patterns: "api.example.com" (exact, case-insensitive, port ignored) or
 * "*.example.com" (any name ending with ".example.com", not the apex). */
struct host_pattern {
    char *text; /* lowercased; for a wildcard, the suffix including the leading dot */
    uint32_t len;
    bool wildcard;
};

/* Every part given must match (AND); a route without `match` matches every request. */
struct route_match {
    struct host_pattern *hosts; /* any of them (OR); none = any host */
    uint32_t nhosts;
    struct str_match path; /* SM_ANY, SM_EXACT, SM_PREFIX or SM_REGEX, on the path
                            * without the query */
    uint32_t methods;      /* bitmask of 1 << enum http_method; 0 = any */
    char **other_methods;  /* method names outside enum http_method */
    uint32_t nother_methods;
    struct named_match *headers;
    uint32_t nheaders;
    struct named_match *cookies;
    uint32_t ncookies;
    struct named_match *queries;
    uint32_t nqueries;
    bool grpc; /* the request must be a gRPC call (http/grpc.h) */
    /* the client's verified TLS certificate (mTLS): SM_ANY when not asked */
    struct str_match cert_subject, cert_fingerprint;
    struct geo_match geo; /* the client's country or continent (stats/geo.h) */
};

/* One configured filter on a route (or on the listener): its ops and its settings,
 * whose type the ops know (see http/filter.h and the filter_*_conf structs below). */
struct filter_conf {
    const struct filter_ops *ops;
    void *conf;
};

enum route_action {
    ROUTE_BACKEND, /* proxy to `backend` */
    ROUTE_SPLIT,   /* proxy to one of `split`, by weight */
    ROUTE_ANSWER,  /* a filter (redirect, respond) answers; no backend */
};

struct split_target {
    struct backend *backend;
    uint32_t weight; /* 0..100 (0 = takes nothing, kept for a quick switch) */
};

/* Retry policy for requests proxied by a route (`retry:`). Connect failures are always
 * retried on another server (up to `tries`), for any method: nothing was sent. */
enum retry_on {
    RETRY_ON_RESET = 1 << 0, /* the connection failed before any response byte */
    RETRY_ON_502 = 1 << 1,
    RETRY_ON_503 = 1 << 2,
    RETRY_ON_504 = 1 << 3, /* also: the per-try timeout expired before any response byte */
};

struct retry_conf {
    uint32_t tries;              /* total attempts, default 3 (1 = no retry) */
    uint32_t on;                 /* enum retry_on, for idempotent methods only; default RESET */
    uint32_t per_try_timeout_ms; /* 0 = the listener's response timeout */
};

struct http_route {
    char *name; /* given, or "route#N" (1-based) */
    struct route_match match;
    struct filter_conf *filters; /* in order */
    uint32_t nfilters;
    enum route_action action;
    struct backend *backend;
    struct split_target *split;
    uint32_t nsplit;
    uint32_t split_total; /* sum of weights (> 0 when action is ROUTE_SPLIT) */
    struct retry_conf retry;
    struct error_pages error_pages; /* for answers made once the route was chosen */
    struct route_counters *ctr; /* [nworkers] (stats/counters-t.h), built with the snapshot */
    struct hist *hist;          /* [nworkers][HIST_KINDS] (stats/histogram.h) */
};

struct http_limits {
    uint32_t max_request_line;  /* default 8 KiB → 414 */
    uint32_t max_header_bytes;  /* whole head, default 16 KiB (≤ 64 KiB) → 431 */
    uint32_t max_headers;       /* default 100 → 431 */
    uint64_t max_body_buffered; /* when a filter buffers a body, default 1 MiB → 413 */
    uint64_t max_request_body;  /* any request body, 0 = unlimited → 413 */
};

/* HTTP/2 from clients (http/h2_session.c): whether it is spoken, and the limits that
 * bound what one connection may cost (each counted in /metrics when it bites). */
struct http2_conf {
    bool enabled;                /* by ALPN "h2" on a TLS listener */
    bool cleartext;              /* h2c with prior knowledge on a plain listener */
    bool websocket;              /* RFC 8441 extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL) */
    uint32_t max_streams;        /* SETTINGS_MAX_CONCURRENT_STREAMS, reset streams included */
    uint32_t window;             /* per-stream receive window = request body buffered */
    uint32_t stream_buffer;      /* response bytes held per stream */
    uint32_t stall_ms;           /* a stream without progress is reset after this */
    uint32_t max_continuations;  /* CONTINUATION frames per header block */
    uint32_t resets_per_s;       /* RST_STREAM from the client (rapid reset) */
    uint32_t glitches_per_s;     /* stream errors and invalid frames the client provokes */
    uint32_t settings_per_s, pings_per_s, priority_per_s, empty_data_per_s, window_update_per_s;
};

struct http_timeouts {
    uint32_t request_header_ms; /* whole request head must arrive within, default 10s → 408 */
    uint32_t keepalive_ms;      /* idle between requests, default 60s (silent close) */
    uint32_t connect_ms;        /* upstream connect, default 0 = the backend's → 503/504 */
    uint32_t response_ms;       /* first response byte after the request was sent, 30s → 504 */
    uint32_t request_ms;        /* whole exchange, 0 = off → 504 (or 408 while reading) */
    uint32_t lingering_ms;      /* reading what a client sends after our last answer, 5s */
};

/* ---- settings of the built-in filters (filter_conf.conf points to one) ---- */

enum hdr_op_kind { HDR_SET, HDR_ADD, HDR_REMOVE };

struct hdr_op {
    enum hdr_op_kind kind;
    char *name;
    uint32_t name_len;
    char *value; /* HDR_SET/HDR_ADD: a template (see struct tmpl) */
    uint32_t value_len;
};

/* request_headers / response_headers */
struct filter_headers_conf {
    struct hdr_op *ops;
    uint32_t nops;
};

/* path_rewrite: `prefix` replaced by `replace`, or `regex` (PCRE2, with captures $1..$9
 * in `replace`). */
struct filter_path_rewrite_conf {
    char *prefix; /* NULL when regex */
    uint32_t prefix_len;
    void *re; /* pcre2_code *, NULL when prefix */
    char *replace;
    uint32_t replace_len;
};

/* redirect: answers `status` (301/302/303/307/308) with Location from a template. */
struct filter_redirect_conf {
    uint16_t status;
    char *location; /* template: {scheme} {host} {path} {query} {request_uri} */
};

/* respond: answers `status` with a fixed body. */
struct filter_respond_conf {
    uint16_t status;
    char *body;
    uint32_t body_len;
    char *content_type; /* default "text/plain; charset=utf-8" */
};

/* forwarded: X-Forwarded-For/-Proto/-Host and/or RFC 7239 Forwarded. A client in the
 * listener's trusted_proxies keeps what it sent (appended to); any other client's are
 * replaced. */
struct filter_forwarded_conf {
    bool x_forwarded; /* X-Forwarded-For, -Proto, -Host */
    bool forwarded;   /* Forwarded: for=...;proto=...;host=... */
    const struct cidr_set *trusted;
};

/* request_id: a header (default x-request-id) set when absent, kept when present, and
 * echoed on the response. */
struct filter_request_id_conf {
    char *header;
    uint32_t header_len;
};

/* traceparent: W3C trace context passed on when valid, replaced when malformed, created
 * when absent (a new trace id and a new parent id). */
struct filter_traceparent_conf {
    bool enabled;
};

/* waf: ModSecurity with the OWASP Core Rule Set (http/filters/waf.c). */
enum waf_mode { WAF_OFF, WAF_DETECT, WAF_BLOCK };
/* A held response body longer than the limit: its first part inspected (and let go when
 * it passes: the rest streams uninspected), or refused (500), as ModSecurity's
 * SecResponseBodyLimitAction ProcessPartial / Reject. */
enum waf_over_limit { WAF_OVER_INSPECT_PARTIAL, WAF_OVER_REJECT };

struct filter_waf_conf {
    int mode;                   /* enum waf_mode */
    uint32_t paranoia;          /* CRS paranoia level 1..4 */
    uint32_t anomaly_threshold; /* CRS inbound anomaly score that blocks */
    uint32_t response_threshold; /* CRS outbound anomaly score */
    bool inspect_body;          /* request bodies, held within max_body_buffered */
    bool inspect_response;      /* response status and header fields */
    bool inspect_response_body; /* response bodies of response_body_types, held */
    uint32_t response_body_limit; /* bytes held at most (0: max_body_buffered) */
    int response_body_over_limit; /* enum waf_over_limit */
    char *response_body_types;  /* media types inspected (space-separated, lowercase) */
    char *crs_setup;            /* the CRS setup file */
    char *crs_rules;            /* the directory of the CRS rule files */
    char *allowed_methods;      /* CRS tx.allowed_methods (space-separated) */
    char *rules;                /* extra rules (ModSecurity language) after the CRS */
    void *rules_set;            /* RulesSet *, built once at load (waf_rules_build) */
};

/* ext_authz: a sub-request to an auth service decides (http/filters/ext_authz.c). */
struct filter_ext_authz_conf {
    struct backend *backend;      /* the auth service */
    char *path;                   /* the sub-request's path */
    char **request_headers;       /* request fields sent to it (lowercased names) */
    uint32_t nrequest_headers;
    char **upstream_headers;      /* fields of its 2xx copied into the request */
    uint32_t nupstream_headers;
    char **client_headers;        /* fields of its denial passed to the client */
    uint32_t nclient_headers;
    uint32_t timeout_ms;          /* the whole check, connect included */
    int failure;                  /* enum ext_authz_failure: when it fails or times out */
    uint32_t cache_ms;            /* results kept this long per worker (0 = no cache) */
    struct http_route route;      /* the sub-request's retry policy (tries) */
};

enum ext_authz_failure { EXT_AUTHZ_DENY_503, EXT_AUTHZ_DENY_403, EXT_AUTHZ_ALLOW };

/* The HTTP side of a listener (mode: http). */
struct http_listener_conf {
    struct http_route *routes;
    uint32_t nroutes;
    struct filter_conf *filters; /* run before the route's: forwarded headers, request id,
                                  * traceparent (built from the settings below) */
    uint32_t nfilters;
    struct http_limits limits;
    struct http_timeouts timeouts;
    struct cidr_set trusted_proxies; /* clients whose X-Forwarded-For/Forwarded are kept */
    struct log_conf access_log;     /* path NULL = stdout */
    uint32_t max_requests_per_conn; /* 0 = unlimited */
    struct http2_conf h2;
    /* What the listener filters are built from; filters[].conf points to these (not
     * allocated separately). Disabled ones have no filter in `filters`. */
    struct filter_forwarded_conf forwarded;   /* both flags false: `forwarded: none` */
    struct filter_request_id_conf request_id; /* header NULL: `request_id: none` */
    struct filter_traceparent_conf traceparent;
    /* Access filters given on the listener (`http.jwt`, `http.ip_access`...), owned here;
     * `filters` lists them after the three above, so they run before routing. */
    struct filter_conf *access_filters;
    uint32_t naccess_filters;
    struct error_pages error_pages; /* Strata's own error answers (error_page.h) */
};

#endif
