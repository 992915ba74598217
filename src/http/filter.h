/* filter.h — the filter interface: every L7 feature that acts on a message (header
 * rewrite, redirects, direct answers, forwarded headers, request ids, sticky sessions, and
 * later auth, rate limits, WAF, compression, cache) is one `struct filter_ops`.
 *
 * The stream (http/stream.c) runs, for each request: the listener's filters, then the route's, in
 * order, on the request head (on_request); then, if none answered, picks a server and proxies; then
 * the same filters in reverse order on the response head (on_response). Body hooks see each piece
 * of body data as it streams. Filters see only the HTTP message model (http/msg-t.h) and the
 * transaction (http/txn-t.h), never a codec or a socket.
 *
 * Any hook may be NULL. A hook returns FILTER_CONTINUE, or FILTER_ANSWER after calling
 * txn_answer() (the request is not proxied; response hooks of the filters that already
 * ran still see the answer), or FILTER_ERROR (out of memory: the stream answers 500).
 *
 * Two things a request filter may ask of the stream (the layer in doc/architecture.md):
 * - the whole request body before the request goes to a server: on_request sets
 *   t->body_wanted; once every on_request ran, the stream reads the body into a buffer of
 *   at most the listener's `limits.max_body_buffered` (over it: 413), calls the
 *   on_request_buffered hooks with it in t->body, and sends it to the server from that
 *   buffer (a retry sends it again);
 * - to wait: on_request returns FILTER_WAIT after starting something on the worker's loop
 *   (a sub-request, a timer) and, from a later event of that loop (never from inside
 *   on_request), calls filter_resume() with FILTER_CONTINUE, FILTER_ANSWER or FILTER_ERROR.
 *   t->wait_ms (set by the filter; 0: the listener's response timeout) bounds the wait: past
 *   it the stream answers 504. on_end is how the filter hears that the stream went away.
 * And one of a response filter: the whole response body before the client sees anything
 * (a WAF's response inspection): on_response sets t->resp_body_wanted (t->resp_body_limit:
 * how much at most, 0 = `limits.max_body_buffered`); the stream holds the head and the
 * body (at most the limit) and calls the on_response_buffered hooks.
 */
#ifndef STRATA_HTTP_FILTER_H
#define STRATA_HTTP_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "http/route-t.h"
#include "http/txn-t.h"

enum filter_verdict { FILTER_CONTINUE, FILTER_ANSWER, FILTER_ERROR, FILTER_WAIT };

struct filter_ops {
    const char *name; /* the config key: "request_headers", "redirect"... */
    enum filter_verdict (*on_request)(struct http_txn *t, const void *conf);
    enum filter_verdict (*on_response)(struct http_txn *t, const void *conf);
    /* Body pieces: `data`/`len` may be replaced by the filter with bytes of its own
     * (arena or static); `last` on the final call (len may then be 0), made once the
     * message's trailers are in its `trailers` (a filter may take them out, e.g. into the
     * body as gRPC-Web does). A piece's replacement may be up to twice its length: codecs
     * pass pieces of at most half the room they have. */
    enum filter_verdict (*on_request_body)(struct http_txn *t, const void *conf, const char **data,
                                           size_t *len, bool last);
    enum filter_verdict (*on_response_body)(struct http_txn *t, const void *conf, const char **data,
                                            size_t *len, bool last);
    /* Background work of a filter (a JWKS fetcher), started once when the proxy runs (not
     * for `strata check`), from the main thread; stopped when the configuration is freed.
     * Returns 0, or -1 with a reason in err. */
    int (*start)(const void *conf, unsigned nworkers, char *err, size_t errlen);
    /* The whole request body is in t->body (a filter set t->body_wanted): in order, for the
     * filters whose on_request ran; FILTER_CONTINUE, FILTER_ANSWER or FILTER_ERROR. */
    enum filter_verdict (*on_request_buffered)(struct http_txn *t, const void *conf);
    /* The exchange ends (or a wait was given up): per-exchange state is released, a pending
     * wait cancelled (its filter_resume must not come). Called once for every filter whose
     * on_request ran. */
    void (*on_end)(struct http_txn *t, const void *conf);
    /* The response body is held (an on_response hook set t->resp_body_wanted): in
     * t->resp_body, whole, or its first t->resp_body_limit bytes when t->resp_body_partial.
     * Last filter first. FILTER_ANSWER replaces the response (the client saw nothing of it);
     * FILTER_CONTINUE lets it go on: the held bytes, then (partial) the rest as it comes. */
    enum filter_verdict (*on_response_buffered)(struct http_txn *t, const void *conf);
};

extern const struct filter_ops filter_request_headers, filter_response_headers, filter_path_rewrite,
    filter_redirect, filter_respond, filter_forwarded, filter_request_id, filter_traceparent,
    filter_sticky, filter_grpc_web;
extern const struct filter_ops filter_rate_limit;
/* Access filters (http/filters/jwt.c, basic_auth.c, cors.c, ip_access.c, bot.c). */
extern const struct filter_ops filter_jwt, filter_basic_auth, filter_cors, filter_ip_access,
    filter_bot, filter_request_limits;
extern const struct filter_ops filter_waf, filter_ext_authz;

/* The filters of one exchange, in request order: the listener's, then the route's. */
struct filter_chain {
    const struct filter_conf *first;
    uint32_t nfirst;
    const struct filter_conf *second;
    uint32_t nsecond;
};

/* Filter i of the chain (i < nfirst + nsecond). */
const struct filter_conf *filter_chain_at(const struct filter_chain *c, uint32_t i);

/* Passes one piece of body through the body hooks of the first `nran` filters (those whose
 * on_request ran): in order for a request body, last first for a response body. Each hook
 * may replace the data and its length. Stops at the first verdict other than FILTER_CONTINUE. A
 * hook that changes a body's length must have made the message's framing chunked (msg->body =
 * HTTP_BODY_CHUNKED) in its head hook, before the head was written. */
enum filter_verdict filter_chain_body(const struct filter_chain *c, uint32_t nran,
                                      struct http_txn *t, bool response, const char **data,
                                      size_t *len, bool last);
/* True when one of the first `nran` filters has a body hook for that direction. */
bool filter_chain_has_body_hooks(const struct filter_chain *c, uint32_t nran, bool response);

struct config;
/* Runs the `start` hook of every filter of every HTTP listener and route. */
int filters_start(struct config *cfg, char *err, size_t errlen);
/* A filter's wait (FILTER_WAIT) is over: the stream goes on as if on_request had returned
 * `v` (http/stream.c). Called from an event of the worker's loop. */
void filter_resume(struct http_txn *t, enum filter_verdict v);

/* Makes the transaction's answer: t->resp becomes a response with `status`, the given
 * content type and body (copied into the arena), and HTTP_BODY_LENGTH framing. Other
 * fields (Location...) may be added to t->resp afterwards. Returns 0 or -1 (no memory). */
int txn_answer(struct http_txn *t, unsigned status, const char *content_type, const char *body,
               size_t body_len);

/* Expands a template into the arena: {scheme} {host} (authority without port) {authority}
 * {path} {query} {request_uri} (path plus "?query" when there is one) {client_ip}
 * {request_id} {method}; "{{" is a literal "{"; an unknown {name} is kept as written.
 * Returns .p NULL when out of memory. */
struct hstr txn_expand(struct http_txn *t, const char *tmpl);

#endif
