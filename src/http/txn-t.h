/* txn-t.h — one HTTP request/response exchange as filters, the router and the access log
 * see it (types only). The stream (http/stream.c) owns it; filters read and change
 * `req` and `resp` through http/msg.h, allocating in `arena`.
 */
#ifndef STRATA_HTTP_TXN_T_H
#define STRATA_HTTP_TXN_T_H

#include <stdbool.h>
#include <stdint.h>

#include "http/msg-t.h"
#include "net/addr.h"
#include "stats/geo-t.h"

struct listener_conf;
struct http_route;
struct backend;
struct server;
struct conn;

struct http_txn {
    struct http_msg req;
    struct http_msg resp;
    struct arena arena;

    const struct listener_conf *lc;
    const struct http_route *route; /* NULL until matched (and when none matched) */
    struct backend *backend;        /* chosen by the route (or split) */
    struct server *server;          /* the server of the current attempt */
    struct server *sticky;          /* sticky filter: the server the request's cookie names */
    bool sticky_set;                /* sticky filter: the response must (re)set the cookie */

    struct sockaddr_any client; /* the peer (or the PROXY protocol's client) */
    struct geo_info geo;        /* where client is (stats/geo.h); all "" when geo is off */
    bool tls;                   /* the client connection is TLS ("https") */
    const struct conn *conn;    /* the client connection: its transport's info (TLS) */
    unsigned worker;            /* worker id, for per-worker balancer state */
    uint64_t rand;              /* per-request random value (splits) */

    struct hstr request_id;  /* set by the request_id filter (or empty) */
    struct hstr orig_path;   /* path as received, before rewrites (for the log) */
    bool answered;           /* resp is an answer made by Strata (a filter or an error) */
    bool grpc;               /* the request is a gRPC (or gRPC-Web) call (http/grpc.h) */
    struct hstr answer_body; /* the answer's body */
    const char *filter_detail; /* why a filter answered (static text, for the access log) */
    uint64_t max_request_body; /* request_limits: the route's, when lower; 0 = the listener's */
    uint32_t body_timeout_ms;  /* request_limits: the whole body within this of the start */
    bool req_body_done;        /* request_limits' body hook saw the body's end */

    /* The whole-body and wait requests of filters (http/filter.h). */
    bool body_wanted;  /* a filter asked for the whole request body before the server */
    struct hstr body;  /* on_request_buffered: that body (the stream's buffer) */
    uint32_t wait_ms;  /* FILTER_WAIT: how long at most (0 = the response timeout) */
    struct hstr waf_rules; /* waf: the ids of the rules that matched, for the access log */
    /* The whole response body before the client sees any of it (http/filter.h): asked by
     * an on_response hook, given to the on_response_buffered hooks. */
    bool resp_body_wanted;    /* a filter asked for the response body whole */
    uint64_t resp_body_limit; /* at most this much is held (0: max_body_buffered) */
    struct hstr resp_body;    /* on_response_buffered: the held body (its first limit bytes) */
    bool resp_body_partial;   /* ...and the body goes on past them (over the limit) */

    /* Per-exchange state of filters that keep some (in the arena; NULL until they set it). */
    void *grpc_web; /* grpc_web: the request is gRPC-Web (http/filters/grpc_web.c) */
    void *rate_limit;       /* rate_limit: what the RateLimit fields report */
    const char *limited_by; /* rate_limit: the limit that refused ("shadow:NAME": would have) */
    void *ext_authz;        /* ext_authz: the pending check (http/filters/ext_authz.c) */
    void *waf;              /* waf: the ModSecurity transaction (http/filters/waf.c) */
};

#endif
