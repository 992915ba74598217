/* rate_limit.h — the rate_limit filter (filter_rate_limit in http/filter.h): limits per
 * key (client address or prefix, header, cookie, route, or a combination), by token
 * bucket or sliding window, several per route, local to the process (exact across its
 * workers: shared atomics) or shared by several processes through Redis. Over a limit the
 * request is answered 429 with Retry-After; every response of the route carries the IETF
 * RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers). A limit
 * in shadow mode only counts and logs. Types in rate_limit-t.h.
 */
#ifndef STRATA_HTTP_FILTERS_RATE_LIMIT_H
#define STRATA_HTTP_FILTERS_RATE_LIMIT_H

#include "config/config-t.h"
#include "http/filters/rate_limit-t.h"
#include "http/route-t.h"

/* Calls cb for every rate_limit filter of the configuration's HTTP routes, in config
 * order, with the route it belongs to. Stops when cb returns nonzero and returns that. */
typedef int (*rate_limit_filter_cb)(void *arg, const struct http_route *r,
                                    struct filter_rate_limit_conf *c);
int rate_limit_foreach(const struct config *cfg, rate_limit_filter_cb cb, void *arg);

/* Builds a limit's tables and counters once its settings are parsed (config load).
 * Returns 0 or -1 (out of memory). rl_limit_release frees them. */
int rl_limit_build(struct rl_limit *l);
void rl_limit_release(struct rl_limit *l);

/* A reload: each local limit of route r's rate_limit filter that counts what a limit of
 * the same name on the old generation's route counted, the same way (algorithm, rate,
 * period, burst, slots, key), takes over its table and counters, so that no client gets a
 * fresh budget and the metrics never go back. Cluster limits keep their budget in Redis. */
void rate_limit_carry(const struct http_route *old, struct http_route *r);

/* The key of a request for limit l, written to buf (at most cap bytes: longer values are
 * cut). Returns its length, or -1 when the request has no such header or cookie (the
 * limit does not apply). */
struct http_txn;
int rl_key_build(const struct rl_limit *l, const struct http_txn *t, char *buf, size_t cap);

#endif
