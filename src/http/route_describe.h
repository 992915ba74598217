/* route_describe.h — routes as text, for people: the runtime API's route list, `strata
 * explain` and `expect:` failures. Read-only over the configuration. */
#ifndef STRATA_HTTP_ROUTE_DESCRIBE_H
#define STRATA_HTTP_ROUTE_DESCRIBE_H

#include "core/strbuf.h"
#include "http/route-t.h"
#include "http/router.h"

/* "= /x", "prefix /v1/", "~ ^/a.*$", "present" or "any". */
void str_match_describe(const struct str_match *m, struct strbuf *out);

/* Every condition, e.g. "host api.example.com, path prefix /v1/, header x-canary = 1";
 * "every request" when it has none. */
void route_match_describe(const struct route_match *m, struct strbuf *out);

/* The condition `part` (and item `index`) of m, e.g. "header x-canary = 1". */
void route_miss_describe(const struct route_match *m, enum route_miss_part part, uint32_t index,
                         struct strbuf *out);

#endif
