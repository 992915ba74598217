/* admin_analytics.h — the admin API's analytics endpoints, as JSON (jansson):
 *   GET /api/v1/trends?range=hour|day  per-second (hour) or per-minute (day) series
 *   GET /api/v1/top?range=minute|hour&n=10  the top-N tables
 * Both run on the control thread, which owns the analytics' read side.
 */
#ifndef STRATA_ADMIN_ADMIN_ANALYTICS_H
#define STRATA_ADMIN_ADMIN_ANALYTICS_H

#include "config/config-t.h"
#include "core/strbuf.h"
#include "http/msg-t.h"

/* A JSON endpoint: writes the body for request m into out and returns the HTTP status
 * (200, or 400 with {"error": "..."} for bad parameters, 503 when analytics are not
 * running, 500 when out of memory). */
typedef int (*admin_json_fn)(struct config *cfg, const struct http_msg *m, struct strbuf *out);

int admin_trends(struct config *cfg, const struct http_msg *m, struct strbuf *out);
int admin_top(struct config *cfg, const struct http_msg *m, struct strbuf *out);

#endif
