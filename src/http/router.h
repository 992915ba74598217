/* router.h — HTTP route matching: host, path, method, header, cookie and query matches
 * evaluated on the message model; routes tried in order, first match wins; weighted
 * splits. PCRE2 (JIT) for regexes, compiled at config load by str_match_compile().
 */
#ifndef STRATA_HTTP_ROUTER_H
#define STRATA_HTTP_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/msg-t.h"
#include "http/route-t.h"

struct conn;

/* The first route of `hc` whose match holds for `req` from `cli`, or NULL (→ 404). */
const struct http_route *router_match(const struct http_listener_conf *hc,
                                      const struct http_msg *req, const struct conn *cli);

/* router_match() for a client located at geo (stats/geo.h): routes with a `country` or
 * `continent` condition hold only for a client located there. router_match() is this with
 * an unknown location. */
const struct http_route *router_match_geo(const struct http_listener_conf *hc,
                                          const struct http_msg *req, const struct conn *cli,
                                          const struct geo_info *geo);

/* cli: the client connection (its TLS identity), or NULL (no TLS identity). */
bool route_match_holds(const struct route_match *m, const struct http_msg *req,
                       const struct conn *cli);

/* Matches s[0..len) (s may be NULL = absent: only SM_ANY holds then). */
bool str_match_holds(const struct str_match *m, const char *s, size_t len);

/* The backend of a ROUTE_BACKEND route, or the split target that `rnd` falls on (weights
 * proportional; a 0 weight is never chosen). */
struct backend *route_pick_backend(const struct http_route *r, uint64_t rnd);

/* Compiles `pattern` as a PCRE2 regex (UTF-8 off, JIT when available) into m->re and sets
 * kind SM_REGEX. Returns 0, or -1 with a message ("... at offset N") in err. */
int str_match_compile(struct str_match *m, const char *pattern, char *err, size_t errlen);
/* Frees what str_match_compile made (m->re) and m->text. */
void str_match_free(struct str_match *m);

/* Applies a compiled regex `re` to s and, when it matches, expands `replace` with $0..$9
 * into out[cap]; returns the length, 0 when it does not match... -1 when out is too small.
 * (Used by path_rewrite.) */
long regex_replace(void *re, const char *s, size_t len, const char *replace, size_t rlen, char *out,
                   size_t cap);

#endif
