/* control.h — the control-plane thread: its own event loop running the active health
 * checks and the admin listener, off the workers' data path.
 */
#ifndef STRATA_PROXY_CONTROL_H
#define STRATA_PROXY_CONTROL_H

#include <pthread.h>
#include <stdbool.h>

#include "config/config-t.h"
#include "ev/loop.h"

struct health;
struct admin;
struct redis_sync;
struct analytics;

struct control {
    pthread_t thread;
    bool started;
    struct ev_loop loop;
    struct health *health;
    struct admin *admin;
    struct redis_sync *redis; /* cluster rate limits' Redis clients (proxy/redis_sync.h) */
    struct analytics *analytics; /* trends and top-N (stats/analytics.h), with the admin */
    struct ev_timer tickets; /* rotates TLS session-ticket keys (tls/tls.h) */
    _Atomic bool stop_requested;
};

/* Binds the admin listener (if configured) and starts health checks and the thread.
 * Returns 0, or -1 with a reason in err. */
int control_start(struct control *c, struct config *cfg, char *err, size_t errlen);
/* Stops the thread and frees what control_start made. */
void control_stop(struct control *c);

#endif
