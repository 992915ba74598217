/* explain.h — what a request would go through, without sending it: the listener, each
 * route tried (and the first condition that failed), the filters in order with what each
 * would do, the backend, its balancing rule and candidate servers, or Strata's own answer.
 * The request is parsed by the HTTP/1 codec and matched by the real router in its explain
 * mode (router.h route_match_explain): no second matcher. Used by `strata explain` and by
 * the configuration's `expect:` checks (config/schema_expect.c).
 */
#ifndef STRATA_HTTP_EXPLAIN_H
#define STRATA_HTTP_EXPLAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config-t.h"
#include "core/strbuf.h"

struct explain_input {
    const char *request;        /* "METHOD URL": URL absolute (http[s]://host[:port]/path?q)
                                 * or a path (then a Host header is expected) */
    const char *const *headers; /* "name: value" */
    uint32_t nheaders;
    const char *listener; /* NULL: chosen by the URL's port and scheme */
};

struct explain_result {
    const struct listener_conf *listener;
    const struct http_route *route; /* NULL: no route matched (404) */
    uint32_t route_index;
    /* Strata's own answer: 404 without a route, the status of a `redirect` or `respond`
     * route; 0 when the request is proxied to route->backend or a split target. */
    int status;
};

/* Runs the request against the HTTP listeners ls[0..n). Returns 0 with *res filled (and,
 * when out is not NULL, the report appended to it), or -1 with a message in err (a request
 * that does not parse, no such listener, no HTTP listener). */
int explain_run(const struct listener_conf *ls, uint32_t n, const struct explain_input *in,
                struct explain_result *res, struct strbuf *out, char *err, size_t errlen);

/* Why route r did not take the request (its first failing condition), appended to out;
 * nothing when it would. For messages about a route someone expected. */
void explain_route_miss(const struct http_route *r, const struct explain_input *in,
                        struct strbuf *out);

#endif
