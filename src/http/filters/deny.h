/* deny.h — what the access filters (jwt, basic_auth, cors, ip_access, bot) share: their
 * refusals as Strata's own answers, with the reason in the access log (`detail`), and their
 * decisions counted per listener (strata_listener_http_filter_events_total).
 */
#ifndef STRATA_HTTP_FILTERS_DENY_H
#define STRATA_HTTP_FILTERS_DENY_H

#include "http/filter.h"
#include "stats/counters-t.h"

/* Counts event ev on the request's listener (nothing when the transaction has none). */
void filter_count(const struct http_txn *t, enum http_filter_event ev);

/* Answers `status` ("401 Unauthorized: detail"), counts ev and records `detail` (static
 * text) for the access log. Returns FILTER_ANSWER, or FILTER_ERROR when out of memory. */
enum filter_verdict filter_deny(struct http_txn *t, unsigned status, const char *detail,
                                enum http_filter_event ev);

#endif
