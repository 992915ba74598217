/* h2_stream.h — what h2_session.c (the connection) and h2_stream.c (each stream: the mux
 * operations, the request body, the end) ask of each other. Private to the two files.
 */
#ifndef STRATA_HTTP_H2_STREAM_H
#define STRATA_HTTP_H2_STREAM_H

#include "http/h2_session-t.h"

/* ---- h2_stream.c ---- */
/* A new stream for a request HEADERS frame; NULL out of memory. */
struct h2s *h2s_new(struct h2c *c, int32_t id);
/* The request head is complete: checked, counted, then routed (or answered). */
void h2s_head_done(struct h2s *s, bool end_stream);
/* The request trailers are complete (they ended the stream). */
void h2s_trailers_done(struct h2s *s);
/* Request body data for the stream; false when it overflows the window (the client broke
 * flow control). */
bool h2s_data(struct h2s *s, const uint8_t *p, size_t n);
/* Moves what can move: the request body on, the answer's body, the end. */
enum move h2s_step(struct h2s *s);
/* nghttp2 closed the stream: its server side is cancelled unless finished; it is freed
 * after the batch. */
void h2s_closed(struct h2s *s, uint32_t error_code);
/* The stream's next deadline, and what happens when it passes. */
uint64_t h2s_deadline(const struct h2s *s);
void h2s_expired(struct h2s *s);
/* A reload to cur: a WebSocket stream whose server changed is reset after
 * timeouts.reload_drain (the session re-arms its timer). */
void h2s_reload(struct h2s *s, struct config *cur);
/* An END_STREAM of ours went out: a request not read whole is reset (NO_ERROR). */
void h2s_sent_end(struct h2s *s);

/* ---- h2_session.c ---- */
/* Repeats the connection's steps (read, streams, send) until none moves; nothing when it
 * is running already. */
void h2c_run(struct h2c *c);
/* Runs the connection soon (after a stream event that came from outside its run). */
void h2c_kick(struct h2c *c);
/* Resets stream s (RST_STREAM with `code`); frames for it are ignored from now on. */
void h2c_reset(struct h2c *c, struct h2s *s, uint32_t code);
/* The client provoked a stream error or sent an invalid frame: counted and rate-limited. */
void h2c_glitch(struct h2c *c);
/* GOAWAY(NO_ERROR) with the last stream id: no new streams; the connection ends when the
 * open ones have (drain, max_requests_per_connection). */
void h2c_goaway(struct h2c *c);
/* Re-arms the connection's timer (a stream's deadline changed). */
void h2c_arm_timer(struct h2c *c);
/* The same when only stream s's deadline moved: the timer fires no later than it, without
 * a walk over every stream (an early expiry computes the whole deadline again). */
void h2c_arm_timer_for(struct h2c *c, const struct h2s *s);

#endif
