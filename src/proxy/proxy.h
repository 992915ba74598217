/* proxy.h — the composition root of the data plane: which listener modes exist (the one
 * table of net/listener_mode.h ops, indexed by enum listener_mode), their process-wide
 * set-up, and the workers built with them. The control plane's root is control.h.
 * Main thread only.
 */
#ifndef STRATA_PROXY_PROXY_H
#define STRATA_PROXY_PROXY_H

#include <stddef.h>

#include "config/config-t.h"
#include "ev/worker.h"

/* Sets up every mode's process-wide state for cfg, then n workers (workers_init). On
 * failure, fills err and returns -1 with everything undone. */
int proxy_init(struct worker *ws, unsigned n, struct config *cfg, char *err, size_t errlen);
/* Joins and frees the workers (workers_join), then the modes' process-wide state. */
void proxy_join(struct worker *ws, unsigned n, struct config *cfg);

#endif
