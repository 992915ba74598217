/* stream-t.h — one HTTP stream: the protocol-neutral part of a request/response exchange
 * (types only). A codec (the HTTP/1 session today, HTTP/2 next) owns the framing and embeds
 * one `struct http_stream` per exchange; the stream owns the transaction, the filter chain,
 * the upstream attempt and its retries, the timings, the status and how the exchange ended
 * (for the access log). Nothing here depends on a wire format.
 */
#ifndef STRATA_HTTP_STREAM_T_H
#define STRATA_HTTP_STREAM_T_H

#include <stdbool.h>
#include <stdint.h>

#include "http/filter.h"
#include "http/txn-t.h"
#include "upstream/upstream.h"

struct http_stream {
    struct http_txn t;
    struct filter_chain chain;            /* the listener's filters, then the route's */
    uint32_t nran;                        /* filters whose on_request ran */
    bool req_body_hooks, resp_body_hooks; /* a filter that ran has body hooks */
    bool sticky_ran;                      /* the backend's sticky filter ran on the request */
    struct up_attempt att;                /* the server attempts and the retry budget */
    uint64_t start_us, attempt_ms, connected_us, first_byte_us;
    int64_t connect_us; /* time of the last new connection, -1 = none */
    uint64_t bytes_in, bytes_out;
    uint64_t req_body_bytes;  /* request body data read so far */
    uint32_t answer_left;     /* bytes of an answer's body still to pass to the codec */
    const char *end, *detail; /* how it ended, for the access log: "ok" from each attempt
                                 on, until something fails (retries show in `tries`) */
    uint16_t status;          /* sent to the client */
    bool reused;              /* the attempt's connection came from the pool */
    bool fresh_only;          /* the next attempt must open a new connection */
    bool stale_retried;       /* a stale pooled connection was retried (once, for free) */
    bool body_started;        /* body bytes were taken from the client: no retry */
    bool resp_started;        /* response head passed to the client codec */
};

#endif
