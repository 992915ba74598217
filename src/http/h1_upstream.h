/* h1_upstream.h — the HTTP/1 server codec (struct http_up_ops): one stream's exchange with
 * an HTTP/1 server over the attempt's lease, whatever protocol the stream's client speaks.
 * Its state for a stream (struct h1u) comes from the worker's pool at the first attempt and
 * goes back when the stream ends (http_up_ops.free).
 */
#ifndef STRATA_HTTP_H1_UPSTREAM_H
#define STRATA_HTTP_H1_UPSTREAM_H

#include <stdbool.h>

#include "ev/sendq.h"
#include "http/h1.h"
#include "http/h1_relay.h"
#include "http/hbuf.h"
#include "http/stream-t.h"
#include "http/ws_handshake.h"

struct h1u {
    struct h1_parser hp;  /* the response head */
    struct h1_body respb; /* the response body decoder */
    struct hbuf *out;     /* bytes staged for the server */
    struct ev_send send;  /* out's bytes, queued on the loop's send queue (ev/sendq.h) */
    struct http_stream *st;
    bool send_failed;     /* the queued send found the connection broken */
    struct spliced out_pipe; /* request body bytes for the server, after `out` (splice) */
    bool req_sent;        /* the request is staged whole (its end too) */
    bool resp_done;       /* the response went whole to the client codec */
    uint8_t resp_end;     /* the response body's enum body_end (h1_relay.h) */
    bool keep;            /* the server lets the connection carry another request */
    bool no_splice;       /* the client codec cannot take this body by splice: copy it */
    /* WebSocket for a client codec that relays through the body operations (st->tunnel) */
    bool tunnel;   /* switched (101): raw bytes both ways, the response until the close */
    bool cli_end;  /* tunnel: the client's side ended; shut once u->out is sent */
    bool shut;     /* tunnel: shutdown(SHUT_WR) done */
    bool ws_check; /* Sec-WebSocket-Key made here: the 101's Accept must be ws_accept */
    char ws_accept[WS_ACCEPT_LEN + 1];
};

extern const struct http_up_ops h1_up_ops;

/* A send of u->out is queued on the loop: nothing else may write to the server meanwhile. */
static inline bool h1_up_sending(const struct http_stream *st)
{
    return st->upx && ev_send_queued(&((const struct h1u *)st->upx)->send);
}

/* The bytes staged for the server: a tunnel (101) relays the client's bytes after them. */
static inline struct hbuf **h1_up_out(struct http_stream *st)
{
    return &((struct h1u *)st->upx)->out;
}

#endif
