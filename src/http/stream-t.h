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
#include <sys/types.h>

#include "http/filter.h"
#include "http/msg-t.h"
#include "http/txn-t.h"
#include "upstream/upstream.h"

struct http_stream;
struct upconn;
struct worker;

/* Progress of a step: nothing moved, something moved, or the exchange changed course (an
 * answer, a retry, a close: the caller looks again). */
enum move { MOVE_NONE, MOVE_PROGRESS, MOVE_ERROR };

/* Where a body goes, one direction of a stream: to the client through the client codec
 * (mux), or to the server through the server codec. The data's framing is the codec's.
 * Back-pressure both ways is pulled: whoever holds body data asks send_room first and
 * reads from its own peer (or, in HTTP/2, opens its flow-control window) only that much;
 * events on either connection run the client codec, which asks again, so no separate
 * resume call is needed. */
struct http_body_ops {
    /* Data bytes send_data takes now (0: wait until the codec ran; back-pressure), or -1
     * when it never will (out of memory). */
    ssize_t (*send_room)(struct http_stream *st);
    /* Body data, after send_room; returns the bytes taken: all when n <= send_room. */
    size_t (*send_data)(struct http_stream *st, const char *p, size_t n);
    /* The body ends, with the trailer fields m->trailers (may be none). False: no room
     * yet, call again. */
    bool (*send_trailers)(struct http_stream *st, const struct http_msg *m);
    /* The message is complete. */
    void (*send_end)(struct http_stream *st);
    /* Optional (NULL: not offered): body data taken straight from the plain socket fd, at
     * most `max` bytes, and sent on without entering user space (splice(2)); for a body no
     * filter sees, after send_data has passed what was read before. Returns the bytes
     * taken (> 0), 0 at fd's end, or -1 with errno: EAGAIN (fd has nothing now),
     * EINPROGRESS (what came before is still on its way: wait for the codec to run),
     * ENOBUFS (not possible here: use send_data), else fd's error. */
    ssize_t (*send_from_fd)(struct http_stream *st, int fd, size_t max);
};

/* The client side of a stream: what the codec (the mux) does for the stream. The codec
 * turns these calls into its wire format; the stream never sees one. */
struct http_mux_ops {
    /* A response head (final, or interim 1xx) for the client, framing as in m->body; the
     * codec decides the wire framing (and drops interim heads its client cannot take).
     * False when it cannot be written (too large). */
    bool (*send_head)(struct http_stream *st, const struct http_msg *m);
    struct http_body_ops body; /* the response body */
    /* The stream cannot go on and the client must see it cut (end/detail are set). */
    void (*abort)(struct http_stream *st);
    /* The stream's deadlines changed (a new attempt). */
    void (*rearm)(struct http_stream *st);
    /* Something happened on the stream's server connection: run the stream's steps. A
     * stream that ends during a call from its server codec keeps its memory until the end
     * of the event batch (the codec still holds st when the call returns). */
    void (*run)(struct http_stream *st);
    /* The server switched protocols (a 101 went to the client): from now on the codec
     * relays the bytes of both connections as they are, or, when it sets st->tunnel (an
     * HTTP/2 stream: RFC 8441), through the body operations of both sides: the server
     * codec then passes raw bytes both ways (see struct http_stream.tunnel). */
    void (*tunnel)(struct http_stream *st);
};

/* How a server codec's start went. */
enum up_start {
    UP_START_OK,             /* st->up leased (st->reused says whether it was pooled) */
    UP_START_TOO_LARGE,      /* the request head does not fit in the server's framing */
    UP_START_CONNECT_FAILED, /* a new connect failed at once: st->att.err/why are set */
};

/* The server side of a stream: the codec that speaks to the server (chosen by the stream
 * from the backend's protocol). The client codec drives it: while the response is not
 * complete and st->up is connected, it moves the request body into `body`, then calls
 * flush and step. */
struct http_up_ops {
    /* A new attempt on st->t.server (reserved): stages the request head (t->req) and takes
     * a lease on a connection to the server (a pooled one unless st->fresh_only). A
     * request without a body (http_msg_bodiless) is whole with its head: no body call
     * follows. */
    enum up_start (*start)(struct http_stream *st);
    struct http_body_ops body; /* the request body */
    /* Sends what is staged for the server. */
    enum move (*flush)(struct http_stream *st);
    /* Server → client: reads what the server sent for this stream and passes it on: heads
     * through stream_response_checks/stream_send_response/stream_interim, the body, its
     * trailers and its end through st->mux->body, asking send_room first. */
    enum move (*step)(struct http_stream *st);
    /* Ends the lease of the current attempt: the connection is kept for another stream
     * only when `keep` (the stream ended cleanly) and the codec saw both messages whole. */
    void (*release)(struct http_stream *st, bool keep);
    /* The stream ends: frees the codec's state (st->upx). */
    void (*free)(struct http_stream *st);
};

/* A request body a filter wanted whole (t->body_wanted), held before the server. */
enum body_hold {
    HOLD_NONE,       /* the body streams to the server as it comes */
    HOLD_COLLECTING, /* the client codec passes it to stream_hold_ops (into `held`) */
    HOLD_WHOLE,      /* inspected; sent from `held` to each attempt (stream_held_step) */
};

/* A response body a filter wanted whole (t->resp_body_wanted), held before the client. */
enum resp_hold {
    RHOLD_NONE,       /* the body streams to the client as it comes */
    RHOLD_COLLECTING, /* the server codec passes it to stream_resp_hold_ops (into resp_held);
                         the head waits too */
    RHOLD_DRAINING,   /* over the limit and let go: the held bytes go to the client before
                         the rest, which then streams (stream_resp_hold_ops forwards) */
};

struct http_stream {
    struct http_txn t;
    struct worker *w;
    struct listener_conf *lc;
    void *conn;                           /* the client codec's connection (the ops' owner) */
    const struct http_mux_ops *mux;       /* the client side */
    const struct http_up_ops *upc;        /* the server side: set at the first attempt */
    void *upx;                            /* the server codec's state (its own type) */
    struct upconn *up;                    /* the current attempt's lease (upstream/pool.h) */
    struct filter_chain chain;            /* the listener's filters, then the route's */
    uint32_t nran;                        /* filters whose on_request ran */
    bool req_body_hooks, resp_body_hooks; /* a filter that ran has body hooks */
    bool sticky_ran;                      /* the backend's sticky filter ran on the request */
    struct up_attempt att;                /* the server attempts and the retry budget */
    uint64_t start_us, attempt_ms, connected_us, first_byte_us;
    uint64_t up_ms;       /* last I/O progress with the server (inactivity timeouts) */
    uint64_t deadline_ms; /* the client's deadline for the whole call (grpc-timeout), 0 = none */
    int64_t connect_us;   /* time of the last new connection, -1 = none */
    uint64_t bytes_in, bytes_out;
    uint64_t req_body_bytes;  /* request body data read so far */
    uint32_t answer_left;     /* bytes of an answer's body still to pass to the codec */
    const char *end, *detail; /* how it ended, for the access log: "ok" from each attempt
                                 on, until something fails (retries show in `tries`) */
    uint16_t status;          /* sent to the client */
    bool reused;              /* the attempt's connection came from the pool */
    bool fresh_only;          /* the next attempt must open a new connection */
    bool stale_retried;       /* a retry was free already (stream_free_retry, once) */
    bool body_started;        /* body bytes were taken from the client: no retry */
    bool resp_started;        /* response head passed to the client codec */
    bool must_close;          /* nothing after this exchange can be trusted (an answer to a
                                 request not read whole or as meant): the codec ends the
                                 client connection after it */
    bool waiting;             /* a filter's on_request returned FILTER_WAIT */
    bool filters_ended;       /* the on_end hooks ran */
    bool uncounted;           /* a sub-request (ext_authz): not in the listener's counters */
    uint8_t hold;             /* enum body_hold */
    bool held_end_sent;       /* HOLD_WHOLE: the current attempt has the whole body */
    uint64_t wait_until_ms;   /* waiting: the deadline of the wait */
    char *held;               /* HOLD_*: the request body (malloc'd, max_body_buffered) */
    size_t held_len, held_cap, held_sent;
    uint8_t resp_hold;        /* enum resp_hold */
    bool resp_over;           /* RHOLD_COLLECTING: more than the limit came */
    char *resp_held;          /* RHOLD_*: the response body (malloc'd, at most the limit and
                                 one piece) */
    size_t resp_held_len, resp_held_cap, resp_held_sent;
    bool tunnel;              /* set by mux->tunnel: the switched protocol's bytes flow
                                 through the body operations (upc->body: the client's, with
                                 send_end for its end; mux->body: the server's, send_end at
                                 its close), unframed and past the body filters */
};

#endif
