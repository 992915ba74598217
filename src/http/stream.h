/* stream.h — the protocol-neutral HTTP stream (stream-t.h): routing, filters, Strata's
 * own answers, server attempts and retries, and the access log line of one exchange. A
 * codec fills t->req, calls stream_route, and reports what happens on its connections;
 * the stream answers through st->mux and opens attempts through st->upc.
 */
#ifndef STRATA_HTTP_STREAM_H
#define STRATA_HTTP_STREAM_H

#include "http/stream-t.h"

/* Current time on the monotonic clock, in microseconds (the loop's now_ms is on it too). */
uint64_t stream_now_us(void);
struct listener_counters *stream_lctr(const struct http_stream *st);

/* A complete request head in t->req: filters, router, balancer, first attempt. */
void stream_route(struct http_stream *st);
/* Answers `status` with a short text body naming the reason (or aborts the stream when
 * the response head is already out). */
void stream_answer(struct http_stream *st, unsigned status, const char *end, const char *detail);
/* Passes more of an answer's body to the codec; MOVE_NONE when it takes nothing now. */
enum move stream_answer_step(struct http_stream *st);
/* A final response head from the server in t->resp: passive health and retries on status.
 * False when the stream went another way (a retry): the codec drops the head. */
bool stream_response_checks(struct http_stream *st);
/* Response filters, then the head for the client (st->mux->send_head). False when that
 * failed: the stream answered 502 instead. */
bool stream_send_response(struct http_stream *st);

/* An interim (1xx) response head in t->resp, for the client. */
void stream_interim(struct http_stream *st);
/* A piece of body data (`last`: the end of the body, len may be 0; codecs pass it once the
 * message's trailers are in m->trailers) through the body filters that ran, and for the request the
 * max_request_body limit; what the filters give back must fit in `room`. Returns 0, or the status
 * to answer (413, 500) with *why. */
unsigned stream_body_piece(struct http_stream *st, bool response, const char **data, size_t *len,
                           bool last, size_t room, const char **why);

/* Where the client codec passes request body data now: the stream's own buffer while a
 * filter wants the body whole (stream_hold_ops: its send_end inspects it and starts the
 * first attempt), the server codec once the attempt is connected, or nowhere (NULL: wait;
 * a held body goes to the server through stream_held_step instead). */
const struct http_body_ops *stream_request_body_dest(struct http_stream *st);
extern const struct http_body_ops stream_hold_ops;
/* Sends the held body (HOLD_WHOLE), its trailers and its end to the current attempt as the
 * server codec takes them; st->held_end_sent once all is out. */
enum move stream_held_step(struct http_stream *st);

/* Where the server codec passes response body data: the client codec's body operations,
 * or, while a filter holds the response (st->resp_hold), the stream's own (whose send_end
 * runs the on_response_buffered hooks, then sends the response or the answer). */
extern const struct http_body_ops stream_resp_hold_ops;
/* A held response let go over its limit (RHOLD_DRAINING): passes held bytes to the client
 * codec as it takes them, before the rest of the body. */
enum move stream_resp_drain(struct http_stream *st);
static inline const struct http_body_ops *stream_response_body_dest(const struct http_stream *st)
{
    return st->resp_hold ? &stream_resp_hold_ops : &st->mux->body;
}

/* A sub-request (ext_authz): t->req (bodiless) straight to t->backend with t->route's
 * retry policy: no filters, no routing. The stream's mux gets the response or Strata's own
 * answer (502/503/504) as for any request. */
void stream_send(struct http_stream *st);

/* The body input a codec passes in one piece when its destination has `room` bytes: all
 * of it; or, when body filters run, half of it (a filter's replacement may be twice as
 * long), and nothing while the room is under 64 bytes (an encoding's groups must fit). */
static inline size_t stream_body_budget(const struct http_stream *st, bool response, size_t room)
{
    if (!(response ? st->resp_body_hooks : st->req_body_hooks))
        return room;
    return room < 64 ? 0 : room / 2;
}

/* ---- attempts ---- */

/* The current attempt's connection is up (after a connect of its own). */
void stream_connected(struct http_stream *st);
/* Gives the current server connection up: parked when `keep`, else closed. */
void stream_up_release(struct http_stream *st, bool keep);
/* The stream ends: its lease (not kept), its server unit and the server codec's state. */
void stream_free(struct http_stream *st);
/* Gives the attempt's server unit back (the stream ends or was answered). */
void stream_server_release(struct http_stream *st);
/* Ends the current attempt; a server at fault is excluded from the next pick and, with
 * `report`, booked as a passive-check failure. */
void stream_attempt_failed(struct http_stream *st, bool server_fault, bool report);
/* One more attempt when the policy allows it; else answers `status`. `nothing_sent`: the
 * server cannot have seen the request, so any method may retry. */
void stream_retry_or_answer(struct http_stream *st, bool nothing_sent, bool allowed,
                            unsigned status, const char *end, const char *detail);
/* The connect (or the transport's handshake) of the current attempt failed. */
void stream_connect_failed(struct http_stream *st, int err, const char *why);
/* The attempt failed where the server cannot have seen the request and nobody is to blame
 * (a stale pooled connection, a stream a GOAWAY left out): the next attempt does not count
 * against retry.tries, once per request. */
void stream_free_retry(struct http_stream *st);
/* The server connection failed or closed before the response head was complete;
 * `nothing_back`: it sent nothing for this request. */
void stream_up_broken(struct http_stream *st, const char *detail, bool nothing_back);
/* The server connection failed after the response head: the stream is aborted. */
void stream_up_cut(struct http_stream *st, const char *end, const char *detail);

/* The stream's next deadline (monotonic ms): connect, response (per try), request;
 * `last_ms`: the codec's last I/O progress. */
uint64_t stream_deadline(const struct http_stream *st, uint64_t last_ms);
/* That deadline passed: a connect or response timeout (retried or answered 504), a
 * request body too slow (408), or a response that stalled (aborted). */
void stream_expired(struct http_stream *st);

/* The access log line and the listener's byte counters. */
void stream_log(struct http_stream *st);

#endif
