/* h2_session.h — HTTP/2 from clients on a `mode: http` listener (listeners[].http.h2):
 * chosen by ALPN "h2" after a TLS handshake, or by the connection preface on a plain
 * listener with `cleartext` (h2c with prior knowledge; HTTP/1 clients share it). Each
 * stream is a protocol-neutral struct http_stream (stream.h): routes, filters, answers,
 * attempts and the access log are the stream's, as for HTTP/1.
 *
 * The HTTP mode (h1_session.c) asks h2_claims at its start and adds the HTTP/2 sessions
 * of the worker to its drain, close-all and session count.
 */
#ifndef STRATA_HTTP_H2_SESSION_H
#define STRATA_HTTP_H2_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "net/stage.h"

/* Takes the connection when it speaks HTTP/2 (or may: the preface is awaited), else
 * false and the caller serves it as HTTP/1. */
bool h2_claims(struct worker *w, struct listener_conf *lc, struct accepted *a);
/* The worker drains: GOAWAY with the last stream id; each session ends when its streams
 * are done. */
void h2_drain(struct worker *w);
/* Ends every session now (end=shutdown). */
void h2_close_all(struct worker *w);
/* A reload (the HTTP mode's `reload`): a connection whose listener the reload changed or
 * removed gets GOAWAY (its open streams finish); the others move to the new generation
 * now, or, busy, when a stream begins with none open (h2c_follow). */
void h2_reload(struct worker *w);
struct h2c;
/* Moves c to the generation in force if its listener is written the same there; false
 * when it stays (no such listener). */
bool h2c_follow(struct h2c *c);
/* Sessions open on this worker. */
uint32_t h2_sessions(const struct worker *w);
/* The size of one client stream: the worker's pool of them (w->h2s_pool) is made with it. */
size_t h2s_size(void);

#endif
