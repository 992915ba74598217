/* stream_stats.h — what a stream feeds the statistics (stats/runtime.h): latency
 * histograms of its listener, route, backend and server, its route's counters (status
 * classes and codes, retries, errors by reason, bytes) and the listener's recent errors.
 * Called on the stream's worker; no lock, no allocation.
 */
#ifndef STRATA_HTTP_STREAM_STATS_H
#define STRATA_HTTP_STREAM_STATS_H

#include <stdint.h>

#include "http/stream-t.h"

/* A new server connection became usable after `us`. */
void stream_stats_connected(const struct http_stream *st, uint64_t us);

/* The stream ended after total_us; ttfb_us is -1 without a response from a server. */
void stream_stats_end(const struct http_stream *st, uint64_t total_us, int64_t ttfb_us);

/* The enum http_error of an access-log `end` ("ok" and "answered" are none: HERR_COUNT). */
enum http_error stream_stats_error(const char *end);
/* Its label in the metrics ("connect_failed", ...). */
const char *stream_stats_error_name(enum http_error e);

#endif
