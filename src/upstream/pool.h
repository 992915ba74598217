/* pool.h — per-worker keep-alive pools of HTTP connections to servers.
 *
 * Each worker keeps, for each server, a LIFO list of idle connections (bounded by the
 * backend's pool_max_idle, each closed after pool_idle_timeout_ms). A request takes the
 * most recently used one, or opens a new connection. An idle connection that becomes
 * readable (the server closed it, or sent bytes nobody asked for) is closed at once, so a
 * connection taken from the pool is very likely alive; the session still retries a
 * request whose reused connection fails before any response byte (see h1_session.c).
 */
#ifndef STRATA_UPSTREAM_POOL_H
#define STRATA_UPSTREAM_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config-t.h"
#include "core/list.h"
#include "ev/loop.h"
#include "net/conn.h"

struct worker;
struct hbuf;

struct upconn {
    struct conn c;
    struct server *srv;
    struct worker *w;
    struct hbuf *in; /* bytes read from the server, held while in use */
    void *owner;     /* the session using it; NULL while idle in the pool */
    void (*owner_io)(struct upconn *uc, uint32_t events); /* events while owned */
    struct list link;                                     /* idle list of its server, while idle */
    struct ev_timer idle;                                 /* idle timeout, while idle */
    struct ev_defer dfree;                                /* freed after the batch it closed in */
    uint32_t requests;                                    /* requests sent on it so far */
    bool connecting;                                      /* connect(2) in progress */
};

/* Per worker: one idle list per server of the configuration (by server->gid). */
struct upool {
    struct list *idle; /* [nservers] */
    uint32_t *nidle;   /* [nservers] */
    uint32_t nservers;
};

/* Numbers every server of cfg (server->gid); call once before workers start. */
void upool_number_servers(struct config *cfg);
int upool_init(struct upool *p, const struct config *cfg);
/* Closes and frees every idle connection (outside a batch: it reaps the loop) and frees
 * the lists. */
void upool_free(struct upool *p, struct worker *w);

/* The most recently parked idle connection to srv, now owned by `owner`; or NULL. */
struct upconn *upool_take(struct worker *w, struct server *srv, void *owner,
                          void (*owner_io)(struct upconn *, uint32_t));
/* Starts a new connection to srv (non-blocking). NULL with errno on failure (the connect
 * itself failing at once, or no memory). uc->connecting says whether it completed. */
struct upconn *upconn_open(struct worker *w, struct server *srv, void *owner,
                           void (*owner_io)(struct upconn *, uint32_t));
/* Parks a connection whose last exchange ended cleanly; closes it instead when the pool
 * is full, or the backend keeps none. */
void upool_park(struct worker *w, struct upconn *uc);
/* Closes, and frees after the current batch through the loop's deferred frees (events
 * may still name it). */
void upconn_close(struct worker *w, struct upconn *uc);

#endif
