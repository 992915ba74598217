/* reload.h — swapping in a new configuration generation while the process runs.
 *
 * SIGHUP, `POST /reload` on the admin listener and `strata reload` all end in reload_run,
 * on the control thread: the file is read and validated; any error keeps the running
 * generation and is returned (FILE:LINE:COL lines). Otherwise the new snapshot gets the
 * next generation number and what stays of the old one's runtime state (reload_carry),
 * its process-wide set-up (proxy_prepare), and each worker its listening sockets — those
 * with an unchanged mode and address kept (the same fd: no connection refused, no gap),
 * new ones bound before the swap, removed ones closed by the worker at the swap. Each
 * worker then swaps (ev/worker.c) at its next wake; the health checks and the admin
 * listener move to the new snapshot. Connections go on with the generation they started
 * on; HTTP connections take the new one at their next request (admission_follow); long-
 * lived ones whose path changed are drained by their mode (listener_mode.h `reload`).
 * An old generation is freed once every worker is done with it.
 */
#ifndef STRATA_PROXY_RELOAD_H
#define STRATA_PROXY_RELOAD_H

#include <stdatomic.h>

#include "config/config-t.h"
#include "core/strbuf.h"

struct worker;
struct control;

/* A generation the workers may still hold, kept by the control thread until each worker
 * has let it go (the last reference must go on this thread: its logs and modes close). */
struct reload_gen {
    struct config *cfg;
    _Atomic uint32_t released; /* workers done with cfg */
    uint32_t expect;
    struct reload_gen *next;
};

struct reloader {
    struct worker *ws;
    unsigned nworkers;
    struct config *cur;     /* the generation in force: one reference */
    struct reload_gen *old; /* generations left behind */
};

/* Takes a reference on cfg, the generation the workers ws[0..n) serve. */
void reload_init(struct reloader *r, struct worker *ws, unsigned n, struct config *cfg);
/* Reloads cur->file (control thread; c: its health checks and admin listener). Returns 0
 * with a one-line summary in out, or -1 with the reasons (one per line) in out; either is
 * logged too. */
int reload_run(struct reloader *r, struct control *c, struct strbuf *out);
/* Frees the old generations every worker has let go (control thread, periodically). */
void reload_tick(struct reloader *r);
/* Drops every reference (after the workers are joined). */
void reload_free(struct reloader *r);

/* What a reload keeps (reload_carry.c): the process-wide connection count, each
 * listener's counters and per-source table (same name and mode), each server's runtime
 * state (same backend and server name: server_state_carry). */
void reload_carry(const struct config *old, struct config *nc);
void server_state_carry(const struct server *old, struct server *s);

#endif
