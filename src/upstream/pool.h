/* pool.h — per-worker pools of server connections, and the leases streams take on them.
 *
 * A connection (struct upconn) is keyed by its server and its transport parameters
 * (struct up_key): a backend speaking TLS and one speaking plain to the same address
 * never share a connection. A stream's use of a connection is a lease: one unit of
 * uc->active_streams, taken by upstream_acquire and given back by upstream_lease_end. A
 * connection carries at most max_streams leases at once (1 for HTTP/1; a multiplexing
 * codec sets more), and sits on its key's available list while it has room for one more.
 *
 * Each worker keeps, per key, a LIFO list of available connections (bounded by the
 * backend's pool_max_idle and by the server's max_connections when it has one, each
 * closed after pool_idle_timeout_ms without a lease). A
 * request takes the most recently used one, or opens a new connection. An idle connection
 * that becomes readable (the server closed it, or sent bytes nobody asked for) is closed
 * at once, so a connection taken from the pool is very likely alive; the HTTP stream still
 * retries a request whose reused connection fails before any response byte
 * (h1_exchange.c).
 *
 * Events: while leased, the connection's events go to owner_io (the codec that drives it:
 * for HTTP/1 the session of its one stream). A multiplexing codec (HTTP/2) instead makes
 * itself the connection's owner once, right after the upstream_acquire that opened it
 * (upstream_set_mux): that owner stays while the connection is idle (a server's PING or
 * GOAWAY still reaches it), later leases keep it, and its `closed` hook runs when the pool
 * closes the connection. Memory: closed connections are freed after the current batch (the
 * loop's deferred frees), as a pending event may still name them.
 */
#ifndef STRATA_UPSTREAM_POOL_H
#define STRATA_UPSTREAM_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config-t.h"
#include "core/list.h"
#include "core/pool.h"
#include "ev/loop.h"
#include "net/conn.h"
#include "stats/tcp_info-t.h"
#include "upstream/upstream.h"

struct worker;
struct hbuf;

/* What makes two connections interchangeable. */
struct up_key {
    uint32_t server; /* server->gid */
    uint8_t xprt;    /* enum up_xprt */
};

struct upconn {
    struct conn c;
    struct up_key key;
    struct server *srv;
    struct worker *w;
    struct hbuf *in; /* bytes read from the server, held while leased */
    void *owner;     /* the codec using it; NULL while it has no lease (but a
                        multiplexing owner, which stays) */
    void (*owner_io)(struct upconn *uc, uint32_t events); /* events while it has an owner */
    /* A multiplexing owner's (set once, kept while idle): the connection is closing. */
    void (*owner_closed)(struct upconn *uc);
    struct list link;      /* its key's available list, while on it */
    struct ev_timer idle;  /* idle timeout, while it has no lease */
    struct ev_defer dfree; /* freed after the batch it closed in */
    uint32_t requests;     /* leases taken on it so far */
    uint16_t max_streams;  /* leases it may carry at once: 1 for HTTP/1; 0: no more */
    uint16_t active_streams;
    bool connecting; /* the connect or the transport's handshake is in progress */
    struct tcp_watch watch; /* TCP_INFO sampling once connected (stats/tcp_info.h) */
};

/* Per worker: one available list per key (index: gid * UP_XPRT_KINDS + xprt). */
struct upool {
    struct list *avail; /* [nkeys] */
    uint32_t *navail;   /* [nkeys] */
    uint32_t nkeys;
    bool stale; /* a reload could not rekey the lists: they are no longer used */
    struct pool conns; /* struct upconn memory */
};

/* Numbers every server of cfg (server->gid); call once before workers start. */
void upool_number_servers(struct config *cfg);
int upool_init(struct upool *p, const struct config *cfg);
/* Closes every pooled connection (outside a batch: it reaps the loop) and frees the
 * lists. */
void upool_free(struct upool *p, struct worker *w);

/* After a reload (w->cfg is the new generation, numbered by upool_number_servers): the
 * idle connections close, multiplexed ones still carrying streams of the old generation
 * take no more and close with their last, and the lists are keyed by the new numbers.
 * -1 out of memory: the lists stay `stale`, and no connection is pooled any more. */
int upool_rebuild(struct upool *p, struct worker *w);

/* The key of connections to s for backend s->backend. */
struct up_key upstream_key(const struct server *s);

/* Takes a lease for a stream on a connection to a->server (reserved by upstream_pick):
 * the most recent available pooled connection with the same key unless `fresh_only`, else
 * a new one (upstream_connect, the backend's connect timeout left to the caller;
 * uc->connecting says whether it is still in progress, then the owner's events go through
 * upstream_conn_step). Sets *reused. NULL when a new connect failed at once: a->err and
 * a->why are set, for upstream_failed. */
struct upconn *upstream_acquire(struct worker *w, struct up_attempt *a, void *owner,
                                void (*owner_io)(struct upconn *, uint32_t), bool fresh_only,
                                bool *reused);

/* Drives a pending connect of uc after events (upstream_connect_step); clears
 * uc->connecting once done. */
enum up_connect upstream_conn_step(struct worker *w, struct up_attempt *a, struct upconn *uc,
                                   uint32_t events);

/* Makes `owner` the multiplexing owner of uc (just opened by upstream_acquire): it gets
 * every event of the connection from now on, leased or idle, and closed(uc) when the pool
 * closes it (idle timeout, pool full, the worker's end, upstream_conn_close). */
void upstream_set_mux(struct upconn *uc, void *owner, void (*io)(struct upconn *, uint32_t),
                      void (*closed)(struct upconn *));

/* The leases uc may carry at once from now on (a server's SETTINGS_MAX_CONCURRENT_STREAMS;
 * 0 after a GOAWAY: none more, and it is closed when its last lease ends): it is offered
 * to new streams only while it has room. */
void upstream_set_max_streams(struct worker *w, struct upconn *uc, uint16_t n);

/* Closes uc at once, whatever leases it carries (their holders must not end them after):
 * for a multiplexing owner whose connection failed, once its streams have let go. */
void upstream_conn_close(struct worker *w, struct upconn *uc);

/* Gives a stream's lease back. `keep`: the stream ended cleanly and the connection may
 * serve another (it goes back to its available list, or is closed when the pool is full,
 * the backend keeps none, the worker drains or the server closed); otherwise the
 * connection is closed (with every lease on it). */
void upstream_lease_end(struct worker *w, struct upconn *uc, bool keep);

#endif
