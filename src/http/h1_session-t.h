/* h1_session-t.h — the HTTP/1 codec's session types and the functions its three files
 * share (private to src/http/h1_session.c, h1_exchange.c and h1_upstream.c; nothing else
 * includes it). The protocol-neutral part of an exchange is its struct http_stream
 * (stream-t.h), run by stream.c.
 *
 * h1_session.c: the client connection — buffers and raw I/O, request heads, the state
 * machine, timers, tunnels, lifecycle. h1_exchange.c: the client codec past a request
 * head — the mux operations (response heads and their framing, re-chunked bodies, trailers),
 * 100-continue, the h2c rules, the request body, the body relay both ways.
 * h1_upstream.c: the server codec (struct http_up_ops) — request head and body for the
 * server, the response head parsed, the response body read.
 */
#ifndef STRATA_HTTP_H1_SESSION_T_H
#define STRATA_HTTP_H1_SESSION_T_H

#include <stdbool.h>
#include <stdint.h>

#include "ev/worker.h"
#include "http/filter.h"
#include "http/h1.h"
#include "http/hbuf.h"
#include "http/stream-t.h"
#include "net/admission.h"
#include "net/conn.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

#define CHUNK_OVERHEAD 24 /* chunk-size line + CRLF after the data */

enum cstate { CS_IDLE, CS_HEAD, CS_TXN, CS_TUNNEL, CS_CLOSED };

/* One exchange on an HTTP/1 client connection: the stream (protocol-neutral) and the
 * HTTP/1 framing of both sides. exchange_new zeroes [0, reqb) and [uout, arena_buf): keep
 * `st` and `hp` before `reqb`, and every other field but the arena buffer after `uout`. */
struct h1x {
    struct http_stream st;
    struct h1_parser hp;        /* the request head, then the response head */
    struct h1_body reqb, respb; /* body decoders */
    struct hbuf *uout;          /* bytes for the server */

    bool req_done;                    /* request body fully read from the client */
    bool resp_done;                   /* response fully written into the client buffer */
    bool last_pending;                /* response: the last chunk still has to be written */
    bool req_last_pending;            /* request: the same */
    bool close_after;                 /* close the client connection after this response */
    bool cont_sent;                   /* "100 Continue" sent to the client */
    bool chunk_out;                   /* response body re-chunked for the client */
    bool up_keep;                     /* the server connection may be parked afterwards */
    bool tunnel;                      /* 101: the exchange became a tunnel */
    _Alignas(8) char arena_buf[3072]; /* the arena's first block: most requests fit */
};

struct h1s {
    struct conn cli;
    struct worker *w;
    struct listener_conf *lc;
    struct h1x *x;
    struct hbuf *in, *out; /* bytes from and for the client */
    struct admission ad;
    struct sockaddr_any client;
    struct ev_timer timer;
    uint64_t last_ms; /* last I/O progress (inactivity timeouts) */
    uint64_t head_deadline_ms;
    struct list link;      /* the HTTP mode's open sessions (h1_session.c) */
    struct ev_task task;   /* on the loop's run queue: a yield, or a lost timer */
    struct ev_defer dfree; /* freed after the batch it closed in */
    uint32_t requests;     /* exchanges started on this connection */
    uint8_t state;
    bool timer_lost;            /* the timer could not be armed: close from the run queue */
    bool cli_eof;               /* the client finished sending */
    bool up_eof_sent, cli_shut; /* tunnel half-closes passed on */
};

enum io { IO_NONE, IO_MOVED, IO_EOF, IO_ERR };

/* One direction of an HTTP/1 body: decoded from `src` with `dec`, each piece through the
 * stream's body filters, then to `out` (the other side's codec). */
struct body_move {
    struct h1_body *dec;
    struct hbuf *src;
    bool eof;                        /* src has ended (for bodies delimited by close) */
    bool response;                   /* which of the stream's body hooks */
    bool *last_pending;              /* the body ended: its trailers and end still to send */
    struct http_msg *m;              /* whose trailers */
    const struct http_body_ops *out; /* where the data goes */
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

/* ---- h1_session.c ---- */
struct hbuf *h1_buf_of(struct h1s *s, struct hbuf **bp, uint32_t cap);
void h1_buf_drop(struct h1s *s, struct hbuf **bp);
/* Appends bytes to *bp; false when they do not fit (or no memory). */
bool h1_buf_append(struct h1s *s, struct hbuf **bp, const void *data, size_t n);
/* Reads from c into *bp while there is room; `compact`: the bytes may be moved first;
 * `count` (may be NULL) adds the bytes read. */
enum io h1_read_into(struct h1s *s, struct conn *c, struct hbuf **bp, uint32_t cap, bool compact,
                     uint64_t *count);
/* Sends what *bp holds; the buffer goes back to the pool once empty. */
enum io h1_flush_buf(struct h1s *s, struct conn *c, struct hbuf **bp, uint64_t *count);
/* Repeats the steps of the session's state until none moves. */
void h1_run(struct h1s *s);
void h1_session_close(struct h1s *s);
void h1_arm_timer(struct h1s *s);

/* ---- h1_exchange.c ---- */
/* The HTTP/1 client codec's mux operations; the server codec's are in h1_upstream.c. */
extern const struct http_mux_ops h1_mux_ops;
extern const struct http_up_ops h1_up_ops;
/* The client connection must close after this exchange: the client asked, the worker
 * drains, or the connection served its quota of requests. */
bool h1_must_close(const struct h1s *s);
/* A complete request head is in x->st.t.req: the h2c upgrade stripped, then the stream
 * routes it. */
void h1_route_request(struct h1s *s);
/* Client → server: the request body, once the server connection is up. */
enum move h1_step_request_body(struct h1s *s);
/* A 101 switches only to protocols the request asked for, as forwarded. */
bool h1_switch_asked(const struct http_msg *req, const struct http_msg *resp);
/* Moves body data until the source or the destination runs dry, or the body is sent. */
enum move h1_move_body(struct h1s *s, struct body_move *bm, struct h1_error *err);
/* Body data room in *bp for a body written `chunked` or not (-1: no buffer); appends data
 * after h1_body_room (as one chunk when `chunked`; returns what fit); the last chunk with
 * m's trailers (false while it does not fit; nothing when not `chunked`). */
ssize_t h1_body_room(struct h1s *s, struct hbuf **bp, bool chunked);
size_t h1_body_put(struct h1s *s, struct hbuf **bp, bool chunked, const char *p, size_t n);
bool h1_body_last(struct h1s *s, struct hbuf **bp, bool chunked, const struct http_msg *m);

/* ---- h1_upstream.c ---- */
/* Server → client: the response head, then its body. */
enum move h1_step_response(struct h1s *s);
/* Sends the bytes staged for the server. */
enum move h1_step_flush_server(struct h1s *s);

#endif
