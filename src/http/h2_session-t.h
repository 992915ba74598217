/* h2_session-t.h — the HTTP/2 client codec's types (private to h2_session.c and
 * h2_stream.c). A `struct h2c` is one client connection with its nghttp2 server session;
 * each request is a `struct h2s`, which embeds the protocol-neutral stream (stream-t.h) as
 * struct h1x does for HTTP/1.
 *
 * Memory is bounded per connection: at most max_concurrent_streams streams (one that the
 * client reset counts until its server side is cancelled and it is freed), each with at
 * most `initial_window` request bytes and `stream_buffer` response bytes, and all of them
 * together with at most H2_CONN_HELD of each (or one stream's worth when larger); the bytes
 * for the client stop being produced past H2_OUT_HIGH.
 */
#ifndef STRATA_HTTP_H2_SESSION_T_H
#define STRATA_HTTP_H2_SESSION_T_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "ev/loop.h"
#include "http/h2_msg.h"
#include "http/stream-t.h"
#include "net/addr.h"
#include "net/admission.h"
#include "net/conn.h"

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24
/* Bytes for the client past which nghttp2 is not asked for more. */
#define H2_OUT_HIGH (64u << 10)
/* What one connection holds at most across its streams, request bodies and response bodies
 * each (or one stream's window or buffer when larger): the connection's receive window,
 * and the response bytes its streams may hold. */
#define H2_CONN_HELD (1u << 20)

/* Per-second counts of what a client may only send so often (listeners[].http.h2). */
enum h2_meter_kind {
    H2M_RESETS,
    H2M_GLITCHES,
    H2M_SETTINGS,
    H2M_PING,
    H2M_PRIORITY,
    H2M_EMPTY_DATA,
    H2M_WINDOW_UPDATE,
    H2M_COUNT
};

struct h2_meter {
    uint64_t sec; /* the second counted (loop clock) */
    uint32_t n;
};

/* A byte buffer allocated on first use, never past `cap` (a stream's window or buffer).
 * A stream's starts as one of the worker's HBUF_SIZE buffers (`pooled`, p its data) and is
 * replaced by one of `cap` bytes only when that fills; `size` is what p holds. The
 * connection's output (h2_session.c) uses p, off, len and cap (its allocated size) only. */
struct hbuf;
struct h2_buf {
    char *p;
    struct hbuf *pooled;
    uint32_t off, len, cap, size;
};

enum h2c_state { H2C_SNIFF, H2C_OPEN, H2C_CLOSED };

struct h2c;

/* One stream. Lives from its first HEADERS frame until nghttp2 closes it (after the last
 * frame either way, or a reset) and its server side is done; freed after the batch. */
struct h2s {
    struct http_stream st;
    struct h2c *c;
    struct list link; /* c->streams */
    struct ev_defer dfree;
    int32_t id;
    struct h2_head head;              /* the header block being read (request, then trailers) */
    struct h2_buf req;                /* request body received, not yet passed on */
    struct h2_buf resp;               /* response body for the data provider */
    const struct http_msg *trail;     /* the response trailers to send at the end, or NULL */
    uint64_t last_ms;                 /* last progress of this stream (stall timeouts) */
    uint64_t drain_at_ms;             /* a tunnel whose server a reload changed: reset then */
    uint64_t head_deadline_ms;        /* the request head must be complete by then */
    bool routed;                      /* the request head was handed to the stream */
    bool dead;                        /* reset or malformed: frames for it are ignored */
    bool req_eof;                     /* the client ended its side (END_STREAM) */
    bool req_last_pending;            /* request body ended: trailers and end to pass on */
    bool req_sent;                    /* the request went whole to the server */
    bool cont_sent;                   /* 100 (Continue) sent */
    bool resp_nobody;                 /* the response head ended the stream (HEAD, 204, 304) */
    bool resp_deferred;               /* the data provider waits for data (resume it) */
    bool resp_eof;                    /* the stream sent the end of the response */
    bool resp_sent;                   /* ...and nghttp2 has taken all of it */
    bool finished;                    /* logged, server side done */
    bool gen_pinned;                  /* holds a unit of st.lc->st.active: a reload moved the
                                         connection on while this stream was open, and
                                         its generation must live until it is freed */
    _Alignas(8) char arena_buf[2048]; /* the arena's first block; last: h2s_new zeroes
                                         what comes before it only */
};

struct h2c {
    struct conn cli;
    struct worker *w;
    struct listener_conf *lc;
    nghttp2_session *ng;
    struct admission ad;
    struct sockaddr_any client;
    struct ev_timer timer;
    struct ev_task task;   /* run queue: a yield, a stream's event, a lost timer */
    struct ev_defer dfree; /* freed after the batch it closed in */
    struct list link;      /* the worker's HTTP/2 sessions */
    struct list streams;   /* struct h2s */
    struct h2s *last;      /* the stream found last (stream_of), NULL once it closes */
    uint32_t nstreams;     /* counted against max_concurrent_streams */
    uint32_t requests;
    struct h2_buf out;  /* bytes for the client */
    uint32_t resp_held; /* response bytes in the streams' buffers (H2_CONN_HELD) */
    uint64_t start_ms, last_ms;
    struct h2_meter meters[H2M_COUNT];
    /* WINDOW_UPDATE frames the client may send for DATA Strata sent (two per DATA frame:
     * the stream's and the connection's), before the per-second limit counts them */
    uint32_t wu_credit;
    uint8_t state;   /* enum h2c_state */
    bool goaway;     /* a GOAWAY was sent: no new streams */
    uint64_t drain_at_ms; /* a reload changed its listener: closed then (0: not) */
    bool calm;       /* abuse: GOAWAY(ENHANCE_YOUR_CALM), closing */
    bool fatal;      /* nghttp2 failed: close once the output is out */
    bool timer_lost; /* the timer could not be armed: close from the run queue */
    bool running;    /* inside h2c_run (a stream event queues a run instead) */
    bool linger;     /* ending with its output sent: a lingering close (net/linger.h) */
};

#endif
