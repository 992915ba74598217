/* h1_session-t.h — the HTTP/1 client codec's session types and the functions its two files
 * share (private to src/http/h1_session.c and h1_exchange.c). The protocol-neutral part of
 * an exchange is its struct http_stream (stream-t.h), run by stream.c; the server side is
 * the server codec's (h1_upstream.c for HTTP/1 servers); h1_relay.h holds what both
 * HTTP/1 halves share (buffers over a connection, the body relay).
 *
 * h1_session.c: the client connection — request heads, the state machine, timers, tunnels,
 * lifecycle. h1_exchange.c: the client codec past a request head — the mux operations
 * (response heads and their framing, re-chunked bodies, trailers), 100-continue, the h2c
 * rules, the request body.
 */
#ifndef STRATA_HTTP_H1_SESSION_T_H
#define STRATA_HTTP_H1_SESSION_T_H

#include <stdbool.h>
#include <stdint.h>

#include "ev/sendq.h"
#include "ev/worker.h"
#include "http/filter.h"
#include "http/h1.h"
#include "http/h1_relay.h"
#include "http/hbuf.h"
#include "http/stream-t.h"
#include "net/admission.h"
#include "net/conn.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

enum cstate { CS_IDLE, CS_HEAD, CS_TXN, CS_TUNNEL, CS_CLOSED };

/* One exchange on an HTTP/1 client connection: the stream (protocol-neutral) and the
 * HTTP/1 framing of the client side (the server side's is the server codec's, st.upx).
 * exchange_new zeroes [0, reqb) and [req_done, arena_buf): keep `st` and `hp` before
 * `reqb`, and every other field but the arena buffer from `req_done` on. */
struct h1x {
    struct http_stream st;
    struct h1_parser hp;   /* the request head */
    struct h1_body reqb;   /* the request body decoder */
    bool req_done;         /* request body fully read from the client */
    bool req_no_splice;    /* the request body is copied (see h1_req_splicing) */
    uint8_t req_end;       /* request: enum body_end (h1_relay.h) */
    bool resp_done;        /* response fully written into the client buffer */
    bool close_after;      /* close the client connection after this response */
    bool cont_sent;        /* "100 Continue" sent to the client */
    bool chunk_out;        /* response body re-chunked for the client */
    bool req_cut;          /* answered before the request was read whole: the rest of it
                              stays unread (req_done is set all the same) */
    _Alignas(8) char arena_buf[3072]; /* the arena's first block: most requests fit */
};

struct h1s {
    struct conn cli;
    struct worker *w;
    struct listener_conf *lc;
    struct h1x *x;
    struct hbuf *in, *out; /* bytes from and for the client */
    struct spliced out_pipe; /* response body bytes for the client, after `out` (splice) */
    struct ev_send send;     /* out's bytes, queued on the loop's send queue (ev/sendq.h) */
    struct admission ad;
    struct sockaddr_any client;
    struct ev_timer timer;
    uint64_t last_ms; /* last I/O progress (inactivity timeouts) */
    uint64_t drain_at_ms; /* a tunnel whose path a reload changed: closed then (0: none) */
    uint64_t head_deadline_ms;
    struct list link;      /* the HTTP mode's open sessions (h1_session.c) */
    struct ev_task task;   /* on the loop's run queue: a yield, or a lost timer */
    struct ev_defer dfree; /* freed after the batch it closed in */
    uint32_t requests;     /* exchanges started on this connection */
    uint8_t state;
    bool timer_lost;            /* the timer could not be armed: close from the run queue */
    bool cli_eof;               /* the client finished sending */
    bool up_eof_sent, cli_shut; /* tunnel half-closes passed on */
    bool send_failed;           /* the queued send found the connection broken */
    bool linger;                /* closing after the last answer with client bytes maybe
                                   unread: a lingering close (net/linger.h) */
};

static inline struct listener_counters *h1_lctr(struct h1s *s)
{
    return &s->lc->st.ctr[s->w->id];
}

/* Buffer size for a request head (the client's, and as written for the server, which
 * filters may have grown): the listener's max_header_size and some room. */
static inline uint32_t h1_head_cap(const struct h1s *s)
{
    uint32_t need = s->lc->http.limits.max_header_bytes + 1024;
    return need > HBUF_SIZE ? need : HBUF_SIZE;
}

/* Everything staged for the client is sent. */
static inline bool h1_out_sent(const struct h1s *s)
{
    return (!s->out || !s->out->len) && !s->out_pipe.bytes;
}

/* ---- h1_session.c ---- */
/* Repeats the steps of the session's state until none moves. */
void h1_run(struct h1s *s);
void h1_session_close(struct h1s *s);
void h1_arm_timer(struct h1s *s);

/* ---- h1_exchange.c ---- */
/* The HTTP/1 client codec's mux operations. */
extern const struct http_mux_ops h1_mux_ops;
/* The client connection must close after this exchange: the client asked, the worker
 * drains, or the connection served its quota of requests. */
bool h1_must_close(const struct h1s *s);
/* A complete request head is in x->st.t.req: the h2c upgrade stripped, then the stream
 * routes it. */
void h1_route_request(struct h1s *s);
/* Client → server: the request body, once the server connection is up. */
enum move h1_step_request_body(struct h1s *s);
/* The request body goes from the client's socket to the server codec by splice: the
 * session does not read the client meanwhile. */
bool h1_req_splicing(struct h1s *s);

#endif
