/* request_analytics.h — the one hook at the end of an HTTP stream that feeds the
 * analytics (stats/analytics.h): called where the access-log line is made, with the same
 * entry.
 */
#ifndef STRATA_HTTP_REQUEST_ANALYTICS_H
#define STRATA_HTTP_REQUEST_ANALYTICS_H

#include "http/access_log.h"

struct http_stream;

/* Counts the finished request in this worker's top-N tables when `analytics.enabled`. */
void request_analytics(const struct http_stream *st, const struct access_entry *e);

#endif
