/* diff.h — what a change of configuration does, for people: listeners, routes and
 * backends added, removed, reordered or changed, servers added, removed or changed, and
 * which live connections a reload to the new configuration would drain (those whose
 * listener, backend or server is removed or changed; the others stay untouched). Used by
 * `strata diff OLD NEW` and by every reload's report (proxy/reload.c).
 */
#ifndef STRATA_CONFIG_DIFF_H
#define STRATA_CONFIG_DIFF_H

#include "config/config-t.h"
#include "core/strbuf.h"

/* Appends the report to out (one item a line, sections titled). Returns the number of
 * differences found (0: the two configurations do the same). */
unsigned config_diff(const struct config *old, const struct config *new, struct strbuf *out);

#endif
