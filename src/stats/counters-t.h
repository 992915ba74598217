/* counters-t.h — per-worker counter blocks (types only).
 *
 * Each block is written by exactly one worker thread and read by the admin thread, which
 * sums the blocks of all workers. Single writer, so CTR_ADD is a relaxed load + store (a
 * plain add on x86, no locked instruction); readers may see a value a few events old.
 */
#ifndef STRATA_STATS_COUNTERS_T_H
#define STRATA_STATS_COUNTERS_T_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/bug.h"
#include "tls/tls-t.h"

typedef _Atomic uint64_t counter_t;

/* The HTTP/2 limits of a client connection (listeners[].http.h2), counted each time one
 * bites (http/h2_session.c). */
enum h2_limit {
    H2L_STREAMS,       /* a stream refused: max_concurrent_streams */
    H2L_RESETS,        /* RST_STREAM past max_resets_per_second (rapid reset) */
    H2L_GLITCHES,      /* a stream error or invalid frame the client provoked */
    H2L_CONTINUATION,  /* CONTINUATION flood */
    H2L_HEADER_LIST,   /* a header list past max_header_size / max_headers (HPACK bomb) */
    H2L_SETTINGS,      /* floods, past their per-second limit */
    H2L_PING,
    H2L_PRIORITY,
    H2L_EMPTY_DATA,
    H2L_WINDOW_UPDATE,
    H2L_STALL,         /* a stream reset after stream_stall_timeout */
    H2L_COUNT
};

/* What the access filters decided (http/filters/: jwt, basic_auth, cors, ip_access, bot),
 * counted by filter_count() (http/filters/deny.h). */
enum http_filter_event {
    HFE_JWT_OK,         /* a valid token: the request went on */
    HFE_JWT_MISSING,    /* no token: 401 */
    HFE_JWT_INVALID,    /* a token refused (signature, expiry, issuer, audience, key...): 401 */
    HFE_BASIC_OK,
    HFE_BASIC_MISSING,
    HFE_BASIC_INVALID,  /* unknown user or wrong password: 401 */
    HFE_CORS_PREFLIGHT, /* a preflight answered by Strata */
    HFE_CORS_REFUSED,   /* a preflight from an origin, method or header not allowed: 403 */
    HFE_IP_DENIED,      /* ip_access: 403 */
    HFE_BOT_DENIED,     /* bot: a user agent denied: 403 */
    HFE_BOT_CHALLENGED, /* bot: redirected to get the challenge cookie */
    HFE_BOT_PASSED,     /* bot: a suspicious client came back with a valid cookie */
    HFE_LIMIT_REFUSED,  /* request_limits: too many fields (431) or too large a body (413) */
    HFE_COUNT
};

#define CTR_ADD(c, n)                                                                              \
    atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + (n),            \
                          memory_order_relaxed)
#define CTR_GET(c) atomic_load_explicit(&(c), memory_order_relaxed)

struct server_counters {
    counter_t conns_total;    /* connections established to this server */
    counter_t connect_errors; /* refused, unreachable or timed out connects */
    counter_t bytes_in;       /* server -> client */
    counter_t bytes_out;      /* client -> server */
    /* UDP (bytes above count datagram payloads). flows_active goes up and down: each
     * worker's value stays >= 0, so the sum over workers is the gauge. */
    counter_t dgrams_in;       /* server -> client */
    counter_t dgrams_out;      /* client -> server */
    counter_t flows_created;   /* flows opened to this server */
    counter_t flows_active;    /* flows open now */
    counter_t flows_evicted;   /* ended to make room (udp.max_flows) */
    counter_t flows_timed_out; /* ended by udp.flow_idle */
    /* HTTP */
    counter_t http_requests;  /* requests sent to this server (each attempt) */
    counter_t http_5xx;       /* 5xx responses from this server */
    counter_t http_reused;    /* requests sent on a pooled keep-alive connection */
    counter_t http_responses[5]; /* final responses from this server by class (1xx..5xx) */
    /* TCP_INFO of connections to this server (TCP relay sessions and HTTP server
     * connections), read while they live and when they close (stats/tcp_info.h); each
     * read adds what changed, the RTT goes to the HIST_RTT histogram */
    counter_t tcp_info_samples; /* reads */
    counter_t tcp_retrans;   /* segments retransmitted (tcpi_total_retrans) */
    counter_t tcp_segs_in;   /* segments received from the server */
    counter_t tcp_segs_out;  /* segments sent to the server */
} __attribute__((aligned(CACHELINE)));

/* What the WAF did with a request it inspected. */
enum waf_outcome { WAF_PASSED, WAF_DETECTED, WAF_BLOCKED, WAF_OUTCOME_COUNT };
/* CRS rule categories (by rule id range) that matched. */
enum waf_category {
    WAF_CAT_PROTOCOL,  /* 911, 920, 921: method, protocol enforcement and attacks */
    WAF_CAT_SCANNER,   /* 913 */
    WAF_CAT_LFI,       /* 930 */
    WAF_CAT_RFI,       /* 931 */
    WAF_CAT_RCE,       /* 932 */
    WAF_CAT_PHP,       /* 933 */
    WAF_CAT_NODEJS,    /* 934 */
    WAF_CAT_XSS,       /* 941 */
    WAF_CAT_SQLI,      /* 942 */
    WAF_CAT_SESSION,   /* 943 */
    WAF_CAT_JAVA,      /* 944 */
    WAF_CAT_RESPONSE,  /* 950..954: data leakages */
    WAF_CAT_OTHER,     /* the route's own rules and anything else */
    WAF_CAT_COUNT
};
/* How an external authorization check ended. */
enum ext_authz_outcome {
    EXT_AUTHZ_ALLOWED,   /* the auth service answered 2xx */
    EXT_AUTHZ_DENIED,    /* it answered something else: passed to the client */
    EXT_AUTHZ_FAILED,    /* unreachable, broken or too slow: the failure mode applied */
    EXT_AUTHZ_CACHE_HIT, /* answered from the worker's cache (also counted above) */
    EXT_AUTHZ_OUTCOME_COUNT
};

struct listener_counters {
    counter_t conns_total;      /* connections accepted */
    counter_t conns_rejected;   /* closed at once: limit reached or no server available */
    counter_t bytes_in;         /* client -> proxy */
    counter_t bytes_out;        /* proxy -> client */
    counter_t connect_failures; /* sessions ended because no server could be reached */
    counter_t timeouts;         /* sessions ended by the idle timeout */
    /* TCP admission and inspection (each also counted in conns_rejected when at accept) */
    counter_t denied;           /* refused by the ACL, or PROXY header from an untrusted source */
    counter_t rate_limited;     /* refused by per_source.rate */
    counter_t proxy_errors;     /* PROXY header malformed, missing or too slow */
    counter_t inspect_failures; /* ClientHello malformed, not TLS, too slow, or no route */
    /* UDP listeners (see server_counters) */
    counter_t dgrams_in;       /* client -> proxy */
    counter_t dgrams_out;      /* proxy -> client */
    counter_t dgrams_dropped;  /* not relayed: no server, no memory or descriptor, full buffer */
    counter_t flows_created;   /* flows opened */
    counter_t flows_active;    /* flows open now */
    counter_t flows_evicted;   /* ended to make room (udp.max_flows) */
    counter_t flows_timed_out; /* ended by udp.flow_idle */
    /* UDP listeners with udp.quic: how new flows were routed, or why they were not (the
     * drops are also in dgrams_dropped) */
    counter_t quic_routed_by_server_id; /* the DCID named an eligible server's quic_id */
    counter_t quic_routed_by_hash;      /* rendezvous hashing of the DCID */
    counter_t quic_dropped_invalid;     /* first datagram of a new flow is not QUIC */
    counter_t quic_dropped_unroutable;  /* short header with an unknown or unroutable ID */
    /* HTTP listeners: requests, and responses sent by status class (1xx..5xx) */
    counter_t http_requests;
    counter_t http_responses[5];
    counter_t http_bad_requests; /* rejected by the parser (400, 413, 414, 431, 501, 505) */
    counter_t http_retries;      /* extra attempts made on another (or a fresh) connection */
    counter_t http_spliced;      /* body bytes moved socket to socket by splice(2) */
    counter_t http_lingering;    /* client connections closed lingering (net/linger.h) */
    /* HTTP/2 client connections */
    counter_t h2_conns;                 /* connections that spoke HTTP/2 */
    counter_t h2_calm;                  /* ended with GOAWAY (ENHANCE_YOUR_CALM) */
    counter_t h2_limits[H2L_COUNT];     /* by enum h2_limit */
    /* TLS listeners */
    counter_t tls_handshakes;                 /* completed */
    counter_t tls_resumed;                    /* of which resumed (ticket or session cache) */
    counter_t tls_failures[TLS_FAIL_COUNT];   /* failed, by enum tls_fail ([0] unused) */
    counter_t tls_timeouts;                   /* not finished within handshake_timeout */
    counter_t http_filter_events[HFE_COUNT];  /* access filters, by enum http_filter_event */
    /* WAF (http/filters/waf.c) and external authorization (http/filters/ext_authz.c) */
    counter_t waf_requests[WAF_OUTCOME_COUNT];  /* inspected requests, by enum waf_outcome */
    counter_t waf_matches[WAF_CAT_COUNT];       /* requests a rule category matched */
    counter_t ext_authz[EXT_AUTHZ_OUTCOME_COUNT]; /* checks, by enum ext_authz_outcome */
    /* TCP relay: the client connection's TCP_INFO, sampled (stats/tcp_info.h) */
    counter_t tcp_segs_in;  /* segments received from clients */
    counter_t tcp_segs_out; /* segments sent to clients */
    counter_t tcp_retrans;  /* segments retransmitted to clients */
} __attribute__((aligned(CACHELINE)));

/* How an HTTP request ended when it did not end well (the access log's `end`), counted per
 * route. */
enum http_error {
    HERR_CONNECT_FAILED,
    HERR_SERVER_REFUSED,
    HERR_SERVER_RESET,
    HERR_BAD_RESPONSE,
    HERR_SERVER_TIMEOUT,
    HERR_NO_SERVER,
    HERR_CLIENT_TIMEOUT,
    HERR_CLIENT_ABORT,
    HERR_TIMEOUT,
    HERR_DEADLINE,
    HERR_BAD_REQUEST,
    HERR_NO_ROUTE,
    HERR_INTERNAL,
    HERR_OTHER, /* any other end but ok and answered */
    HERR_COUNT
};

#define HTTP_CODES 500 /* exact status codes 100..599, index status - 100 */

/* Per HTTP route (listeners[].routes[]), per worker. */
struct route_counters {
    counter_t requests;          /* requests the route took */
    counter_t responses[5];      /* final responses sent, by class */
    counter_t retries;           /* extra attempts */
    counter_t bytes_in;          /* from clients */
    counter_t bytes_out;         /* to clients */
    counter_t errors[HERR_COUNT]; /* by enum http_error */
    counter_t codes[HTTP_CODES]; /* by exact status */
} __attribute__((aligned(CACHELINE)));

#endif
