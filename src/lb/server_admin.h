/* server_admin.h — a server's runtime state as the runtime API changes it: drain, enable,
 * maintenance, weight, servers added to and removed from a backend at run time, and the
 * bounded history of each server's transitions.
 *
 * Threads: the writers (server_set_admin, server_set_weight, backend_server_add,
 * backend_server_remove) run on the control thread only (the admin listener); the workers
 * read the same atomics through lb_eligible and lb_weight, so a write takes effect on the
 * next pick without a lock. server_history_add may be called from any thread (health
 * verdicts come from the workers too).
 *
 * Adding: a backend has room for `runtime_servers` more servers after those of the file
 * (config.c: their counters, pool keys and balancer state are allocated at load). The
 * next free slot is written (name, address, weight, sticky id), then published by a
 * release store of b->nservers, so whoever reads nservers sees whole servers. A slot is
 * never written again before a reload, so a worker holding a removed server (an open
 * connection, a pooled one) still reads valid memory; removal is drain then disable in one
 * step (SRV_REMOVED: no new traffic, open connections finish, hidden from /metrics).
 * Servers added at run time are checked like the others: the health engine gives each a
 * check within its next tick (250 ms), and passive checks apply at once.
 * Everything set here lasts until the next reload, unless written to the file.
 */
#ifndef STRATA_LB_SERVER_ADMIN_H
#define STRATA_LB_SERVER_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config-t.h"

#define SERVER_NAME_MAX 64

/* "ready", "drain", "maint" or "removed". */
const char *server_admin_name(enum server_admin a);

static inline enum server_admin server_admin_get(const struct server *s)
{
    return (enum server_admin)atomic_load_explicit(&s->st.admin, memory_order_acquire);
}

/* Records one transition (printf-style reason, cut to 63 bytes) at the wall-clock time. */
void server_history_add(struct server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

struct server_event_copy {
    uint64_t at_ms; /* ms since the epoch */
    char reason[SERVER_HISTORY_WORDS * 8];
};

/* Copies the recorded transitions, oldest first, into out[SERVER_HISTORY_LEN]; an entry
 * being written at that moment is left out. Returns how many. */
unsigned server_history_read(const struct server *s, struct server_event_copy *out);

/* Drain (SRV_DRAIN), enable (SRV_READY) or maintenance (SRV_MAINT) of a server in use;
 * `who` goes into its history. Returns 0, or -1 with *why when the server was removed. */
int server_set_admin(struct server *s, enum server_admin to, const char *who, const char **why);

/* Sets the balancing weight (1..1000). -1 with *why when out of range or when the
 * backend's balancer ignores weights (round_robin) or built its table from them (maglev). */
int server_set_weight(struct server *s, uint32_t weight, const char *who, const char **why);

/* The server of b called name that is not removed, or NULL. */
struct server *backend_server_find(struct backend *b, const char *name);

/* True for a name the runtime API accepts: [A-Za-z0-9_.:-], 1..SERVER_NAME_MAX bytes. */
bool server_name_valid(const char *name);

struct server_spec {
    const char *name;      /* NULL: the address text */
    const char *addr_text; /* IPv4:port or [IPv6]:port */
    uint32_t weight;       /* 1..1000 */
    bool backup;
};

/* Fills b's next free slot and publishes it (SRV_READY, up). Returns the server, or NULL
 * with *why (and *status: 400 for a bad spec, 409 for a name in use or no free slot). */
struct server *backend_server_add(struct backend *b, const struct server_spec *spec,
                                  const char *who, const char **why, int *status);

/* Removes a server in use (SRV_REMOVED). Returns 0, or -1 with *why. */
int backend_server_remove(struct server *s, const char *who, const char **why);

/* Reload: carries what the runtime API set on `from` (a server of the running
 * configuration) to `to` (the server of the same backend and name in the new one, not yet
 * serving): drain or maintenance (a removed server that the new file lists again comes
 * back ready), the runtime weight unless the file changed the weight, and the history.
 * `up` and the other health state are the health carry's. */
void server_runtime_carry(const struct server *from, struct server *to);

#endif
