/* proxy.h — the composition root of the data plane: which listener modes exist (the one
 * table of net/listener_mode.h ops, indexed by enum listener_mode), their process-wide
 * set-up, and the workers built with them. The control plane's root is control.h.
 * Main thread only, but for proxy_prepare.
 */
#ifndef STRATA_PROXY_PROXY_H
#define STRATA_PROXY_PROXY_H

#include <stddef.h>

#include "config/config-t.h"
#include "ev/worker.h"

/* Sets up every mode's process-wide state for cfg (logs, server numbers...), undone by
 * the snapshot's last config_unref (cfg->on_free). 0, or -1 with err filled and nothing
 * left set up. Main thread, or the control thread for a reload's new generation. */
int proxy_prepare(struct config *cfg, char *err, size_t errlen);
/* proxy_prepare, then n workers (workers_init). On failure, fills err and returns -1
 * (what proxy_prepare did goes with cfg's last reference). */
int proxy_init(struct worker *ws, unsigned n, struct config *cfg, char *err, size_t errlen);
/* Joins and frees the workers (workers_join). */
void proxy_join(struct worker *ws, unsigned n);

#endif
