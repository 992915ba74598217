/* listener_mode.h — what a listener mode (`mode: tcp | udp | http`) gives the workers:
 * one ops table per mode, defined in the mode's own file (l4/tcp_proxy.c, l4/udp_proxy.c,
 * http/h1_session.c) and listed by the composition root (proxy/proxy.c). A worker
 * (ev/worker.c) knows no mode by name: it opens sockets, accepts, runs the batch chores,
 * drains and stops through these operations only.
 *
 * Per-worker state: each mode keeps its own (session lists, pools, flow tables) in
 * w->mode_state[mode], set by worker_init and freed by worker_free; nothing else reads it.
 * Every operation runs on the worker's thread, except process_init/process_free (main
 * thread, before the workers start and after they are joined).
 */
#ifndef STRATA_NET_LISTENER_MODE_H
#define STRATA_NET_LISTENER_MODE_H

#include <stddef.h>
#include <stdint.h>

#include "ev/loop.h"
#include "net/addr.h"
#include "net/stage.h"

struct config;
struct worker;
struct listen_sock;

struct listener_mode_ops {
    const char *name; /* as in the configuration: "tcp", "udp", "http" */
    /* Opens one listening socket of ls->lc at `addr` (non-blocking, SO_REUSEPORT). Returns
     * the fd, or -1 with errno set. */
    int (*bind)(struct listen_sock *ls, const struct sockaddr_any *addr);
    /* NULL for a stream mode: the worker accepts (level-triggered, paused when out of
     * descriptors, closed when draining) and hands each connection to the connection
     * stage (net/stage.h), which calls `start` once it is admitted. Else a datagram
     * mode: its socket is registered with this callback, is never paused, and stays open
     * while draining (the replies of open flows leave by it). */
    ev_io_cb io;
    /* Stream modes: takes a connection the stage admitted (see stage_start_fn). */
    stage_start_fn start;
    /* Optional. Process-wide set-up for cfg before any worker exists (0, or -1 with a
     * reason in err), and its undoing after the last worker is freed. */
    int (*process_init)(struct config *cfg, char *err, size_t errlen);
    void (*process_free)(struct config *cfg);
    /* Sets up w->mode_state[mode] (w->cfg and w->loop are ready). 0, or -1 out of
     * memory. worker_free is safe after a failed or skipped worker_init; it is called
     * after close_all and after the loop's deferred frees have run. */
    int (*worker_init)(struct worker *w);
    void (*worker_free)(struct worker *w);
    /* Optional. After every batch, once the queued tasks have run (log buffers...). */
    void (*after_events)(struct worker *w);
    /* Optional. A reload: w->cfg is the new generation, `old` the one before (alive until
     * no connection of any worker is left on it: see ev/worker.c). The mode moves what
     * it keeps per worker for the listeners and servers of w->cfg (flow tables, pools),
     * and begins draining its long-lived connections whose listener, backend or server
     * the reload changed (fingerprints, config.h): closed after w->cfg->reload_drain_ms.
     * Those unchanged are not touched. */
    void (*reload)(struct worker *w, struct config *old);
    /* Optional. The worker drains: idle sessions may close now, busy ones when done. */
    void (*drain)(struct worker *w);
    /* Ends every session now (end=shutdown). Their memory is freed by the loop's reap. */
    void (*close_all)(struct worker *w);
    /* Sessions (or flows) still open on w: the worker exits a drain when all are 0. */
    uint32_t (*sessions)(const struct worker *w);
};

#endif
