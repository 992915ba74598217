/* h2_upstream.h — the HTTP/2 server codec (struct http_up_ops) for backends with
 * `protocol: h2` (TLS, ALPN h2) or `h2c` (cleartext, prior knowledge), whatever protocol the
 * stream's client speaks.
 *
 * One pooled server connection (upstream/pool.h) carries many streams: its multiplexing
 * owner is a per-connection object with nghttp2's client session, set once when the
 * connection opens and kept while it idles in the pool. The pool offers the connection to
 * new streams while it has room: min(backend h2.max_streams, the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS), none after a GOAWAY. Events on the connection are read
 * into nghttp2, whose callbacks only record what happened for each stream (response head,
 * body bytes, trailers, end, reset); the streams concerned are then run by their client
 * codecs (st->mux->run), which call this codec's step, where the stream layer's functions
 * are called (answers, retries, cuts) as the HTTP/1 codec does.
 *
 * Memory per stream is bounded: request body bytes waiting for the server's window (64 KiB),
 * response body bytes not yet taken by the client codec (at most the stream's receive
 * window, h2.window: the window reopens only as the client codec takes them). Per
 * connection: the frames nghttp2 produced and the socket did not take yet (64 KiB and one
 * frame). The per-stream state lives from the stream's first attempt to its end
 * (http_up_ops.free).
 */
#ifndef STRATA_HTTP_H2_UPSTREAM_H
#define STRATA_HTTP_H2_UPSTREAM_H

#include "http/stream-t.h"

extern const struct http_up_ops h2_up_ops;

#endif
