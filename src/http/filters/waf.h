/* waf.h — the WAF filter's rules, built once at config load (see waf.c). */
#ifndef STRATA_HTTP_FILTERS_WAF_H
#define STRATA_HTTP_FILTERS_WAF_H

#include <stddef.h>

#include "http/route-t.h"

/* Parses the CRS and the route's settings into c->rules_set (nothing when `mode: off`).
 * 0, or -1 with the reason in err (ModSecurity's: the file and line of a bad rule). */
int waf_rules_build(struct filter_waf_conf *c, char *err, size_t errlen);
void waf_rules_free(struct filter_waf_conf *c);

#endif
