/* config-t.h — the validated configuration snapshot (types only).
 *
 * A `struct config` is built once by config_load() and never modified afterwards, except
 * for the atomics inside the runtime-state objects it points to (server_state,
 * listener_state). It is reference-counted: each worker and each open connection holds a
 * reference to the generation it started on, so a reload can swap in a new snapshot while
 * old connections finish on the old one. All strings and arrays are owned by the snapshot.
 */
#ifndef STRATA_CONFIG_CONFIG_T_H
#define STRATA_CONFIG_CONFIG_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/cidr.h"
#include "net/quic.h"
#include "net/src_limit.h"
#include "http/route-t.h"
#include "stats/analytics-t.h"
#include "stats/counters-t.h"

struct hist;
struct recent_ring;

enum balance_kind {
    BAL_ROUND_ROBIN,
    BAL_WEIGHTED,
    BAL_LEAST_CONN,
    BAL_P2C,
    BAL_SOURCE_HASH,
    BAL_MAGLEV,
};

enum proxy_send { PROXY_SEND_NONE, PROXY_SEND_V1, PROXY_SEND_V2 };

enum listener_mode { MODE_TCP, MODE_UDP, MODE_HTTP };

enum health_type { HC_NONE, HC_TCP, HC_UDP, HC_HTTP, HC_GRPC };

/* What the runtime API (admin/admin_api.c) set for a server: st.admin. Only the control
 * thread writes it; workers read it in lb_eligible. */
enum server_admin {
    SRV_READY = 0, /* takes traffic while healthy */
    SRV_DRAIN,     /* no new connections or requests, except a sticky cookie's; open ones go on */
    SRV_MAINT,     /* maintenance (disabled): no new traffic at all; open ones go on */
    SRV_REMOVED,   /* removed at run time: as MAINT, and hidden from /metrics */
};

/* A bounded ring of a server's recent state changes (health verdicts and runtime API
 * writes), written by any thread (server_history_add, lb/server_history.c) without a lock:
 * each entry is a seqlock whose payload is atomics, so a reader never sees a torn one. */
#define SERVER_HISTORY_LEN 8
#define SERVER_HISTORY_WORDS 8 /* reason: up to 63 bytes + NUL, in 64-bit words */
struct server_event {
    _Atomic uint64_t seq;   /* 2 * (ticket + 1) when complete; odd while being written */
    _Atomic uint64_t at_ms; /* wall clock, ms since the epoch */
    _Atomic uint64_t reason[SERVER_HISTORY_WORDS];
};
struct server_history {
    _Atomic uint64_t next; /* tickets handed out */
    struct server_event ev[SERVER_HISTORY_LEN];
};

/* Where a server stands right now, in a shared block (core/shared_block.h): a reload
 * hands it to the same server (backend, name and address) of the next generation, so
 * both generations count into and read the same figures. An old generation's live
 * connection keeps its unit of `active` in it and gives it back there (no double count,
 * nothing to move); an old connection's passive report reaches the server the new
 * generation balances over. */
struct server_live {
    _Atomic uint32_t active;          /* open proxied connections, all workers, generations */
    _Atomic bool up;                  /* health verdict: eligible for new connections */
    _Atomic uint32_t connect_fails;   /* consecutive connect failures (passive check) */
    _Atomic uint64_t passive_down_ms; /* mono_ms when passive check took it down, 0 = not */
};

/* Runtime state of a server, shared by all workers and the control thread.
 * A reload carries `live`, `admin`, `weight` and `history` of a server that stays. */
struct server_state {
    _Atomic uint8_t admin;            /* enum server_admin */
    _Atomic uint32_t weight;          /* weight used by the balancers: server.weight at load,
                                         then the runtime API's (1..1000) */
    struct server_history history;    /* recent transitions, for the runtime API */
    struct server_live *live;         /* never NULL once built; maybe shared across reloads */
    _Atomic uint32_t h2_streams;      /* HTTP/2: the streams its last SETTINGS allowed (0 =
                                         none seen), for a new connection's first streams */
    /* Runtime blocks shared with the next generation (core/shared_block.h): */
    struct server_counters *ctr;      /* [nworkers], each written by its worker only */
    struct hist *hist;                /* [nworkers][HIST_KINDS] (stats/histogram.h) */
};

struct server {
    char *name; /* given name, or the address text */
    uint64_t fp; /* what it was built from, its backend's included (config_fingerprint) */
    char *addr_text;
    struct sockaddr_any addr;
    uint32_t weight;    /* 1..1000, default 1 */
    bool backup;        /* only used when no primary server is up */
    uint32_t max_conns; /* 0 = unlimited */
    uint32_t index;     /* position in backend->servers */
    uint32_t gid;       /* position among all servers of the config (upstream pools) */
    char sticky_id[17]; /* opaque id for sticky cookies: hex of a hash of backend/name */
    /* QUIC-LB server ID (`quic_id`): connection IDs carrying it are routed here by QUIC
     * listeners (udp.quic); quic_id_len 0 = none. */
    uint8_t quic_id[QUIC_LB_SERVER_ID_MAX];
    uint8_t quic_id_len;
    struct backend *backend;
    struct server_state st;
};

struct health_conf {
    enum health_type type;
    uint32_t interval_ms; /* default 2s */
    uint32_t timeout_ms;  /* default 1s */
    uint32_t rise;        /* default 2 */
    uint32_t fall;        /* default 3 */
    uint8_t *payload;     /* HC_UDP: the datagram sent (malloc'd; may hold any byte) */
    uint32_t payload_len;
    /* HC_HTTP: one request per check on a new connection ("Connection: close") */
    char *http_method;    /* default "GET" */
    char *http_path;      /* default "/" */
    char *http_host;      /* Host field (gRPC: :authority); default the server's address */
    uint16_t status_min;  /* expected status range, default 200..399 */
    uint16_t status_max;
    /* HC_GRPC: grpc.health.v1.Health/Check over HTTP/2 on a new connection */
    char *grpc_service; /* HealthCheckRequest.service; NULL/"" = the whole server */
};

struct passive_conf {
    uint32_t fall;        /* consecutive connect failures (HTTP: also 5xx answers and resets
                           * before a response) that mark a server down; 0 = off */
    uint32_t cooldown_ms; /* without active checks: time before it is tried again */
    bool http_5xx;        /* HTTP: 5xx answers count as failures too */
};

struct lb_ops;
struct tls_server; /* tls/tls-t.h */
struct tls_client;

/* What hashing balancers (source_hash, maglev) hash in an HTTP backend (`hash:`);
 * HASH_SOURCE (the client address) for L4, and when the chosen item is absent. */
enum hash_on { HASH_SOURCE, HASH_HEADER, HASH_COOKIE, HASH_PATH };

/* Cookie-based sticky sessions (`sticky:`): Strata sets `cookie` naming the server by an
 * opaque id (server_sticky_id), and sends a request carrying it back to that server while
 * it is eligible. */
struct sticky_conf {
    bool enabled;
    char *cookie;      /* default "strata_server" */
    uint32_t max_age_s; /* 0 = session cookie */
    bool secure, http_only;
};

/* What HTTP listeners speak to a backend's servers (`protocol`). */
enum backend_protocol {
    PROTO_H1,  /* HTTP/1.1 (plain or TLS) */
    PROTO_H2,  /* HTTP/2 over TLS, agreed by ALPN "h2" */
    PROTO_H2C, /* cleartext HTTP/2 with prior knowledge */
};

struct backend {
    char *name;
    uint64_t fp; /* what it was built from but its servers (config_fingerprint) */
    enum balance_kind balance;
    const struct lb_ops *lb_ops;
    void *lb_shared;             /* read-only balancer state (e.g. the maglev table) */
    struct lb_worker *lb_worker; /* [nworkers]: per-worker mutable balancer state */
    /* servers[0, nservers): nconfigured from the file, then those the runtime API added
     * (lb/server_admin.h), up to servers_cap = nconfigured + runtime_servers slots
     * allocated at load. nservers only grows: a slot is written first, then published by
     * a release store of nservers, so every reader of nservers sees whole servers. A
     * removed server stays in its slot (SRV_REMOVED) until the next reload, so a worker
     * holding a pointer to it still reads valid memory. */
    struct server *servers;
    _Atomic uint32_t nservers;
    uint32_t nconfigured;
    uint32_t servers_cap;
    uint32_t runtime_servers; /* config key; 0 for maglev (its table is built at load) */
    uint32_t retries; /* extra servers tried after a failed connect; default 2 */
    uint32_t connect_timeout_ms;
    enum proxy_send send_proxy; /* PROXY header written to each server connection */
    struct health_conf hc;
    struct passive_conf passive;
    enum hash_on hash_on; /* HTTP: what source_hash/maglev hash */
    char *hash_name;      /* HASH_HEADER/HASH_COOKIE: the field or cookie name */
    struct sticky_conf sticky;
    /* HTTP upstream keep-alive, per worker and server */
    uint32_t pool_max_idle;     /* idle connections kept, default 1000 */
    uint32_t pool_idle_timeout_ms; /* default 30s */
    struct tls_client *tls; /* TLS to the servers (tls_client_attach); NULL = plain */
    enum backend_protocol protocol; /* HTTP listeners; tcp/udp listeners ignore it */
    uint32_t h2_max_streams;        /* h2/h2c: streams per connection at most */
    uint32_t h2_window;             /* h2/h2c: a stream's receive window (response bytes held) */
    struct hist *hist;              /* [nworkers][HIST_KINDS] (stats/histogram.h) */
};

/* Runtime state of a listener, shared by all workers. */
struct listener_state {
    _Atomic uint32_t active;
    struct log_target log;    /* connection (tcp, http) or flow (udp) lines, core/logbuf.h */
    struct log_target access; /* mode http: the access log (http/access_log.h) */
    struct listener_counters *ctr; /* [nworkers] */
    struct hist *hist;             /* [nworkers][HIST_KINDS] (stats/histogram.h) */
    struct recent_ring *recent;    /* [nworkers]: the last errors (stats/recent.h) */
};

/* udp.quic: connection-ID-aware routing of new flows (see l4/udp_quic.h). Present =
 * enabled; the lengths passed quic_lb_config_valid() at load. */
struct udp_quic_conf {
    bool enabled;
    uint32_t cid_len;       /* length of the connection IDs the servers issue (short headers) */
    uint32_t server_id_len; /* QUIC-LB server ID bytes after the first octet */
    uint32_t config_id;     /* QUIC-LB config rotation codepoint, 0..6 */
};

/* mode udp: the flow table of each worker (see l4/udp_proxy.h). */
struct udp_conf {
    uint32_t flow_idle_ms; /* a flow without datagrams either way for this long ends */
    uint32_t max_flows;    /* per worker; the least recently used flow is evicted */
    struct udp_quic_conf quic;
};

/* A TLS-passthrough route: connections whose ClientHello names a host matching one of
 * `sni` (exact or "*.example.com") go to `backend`; a route without `sni` matches every
 * connection, including those without SNI. Tried in order, first match wins. */
struct sni_route {
    char **sni;
    uint32_t nsni;
    struct backend *backend;
};

/* Accepting the PROXY protocol: every connection must start with a v1 or v2 header and
 * come from a `trusted` source; its addresses then stand for the client's. */
struct proxy_accept_conf {
    bool enabled;
    struct cidr_set trusted;
};

/* Per-source limits (0 = off), on the client address (the PROXY one when accepted). */
struct source_limits_conf {
    uint32_t max_conns;       /* concurrent connections per source */
    uint32_t rate;            /* new connections per second per source */
    uint32_t burst;           /* bucket size for `rate` */
    struct src_limits *table; /* built when a limit is set; shared by all workers */
};

struct listener_conf {
    char *name;
    uint64_t fp; /* what it was built from but its routes (config_fingerprint) */
    enum listener_mode mode;
    struct sockaddr_any *addrs;
    char **addr_texts;
    uint32_t naddrs;
    struct backend *backend; /* NULL when `routes` decide */
    struct sni_route *routes;
    uint32_t nroutes;
    uint32_t inspect_timeout_ms; /* wait for the PROXY header and the ClientHello */
    struct proxy_accept_conf proxy;
    struct acl acl;
    struct source_limits_conf per_source;
    uint32_t max_conns; /* 0 = unlimited */
    uint32_t idle_timeout_ms;
    uint32_t backlog;
    struct log_conf log;  /* connection and flow lines (`log:`) */
    struct udp_conf udp; /* mode udp only */
    struct http_listener_conf http; /* mode http only */
    struct tls_server *tls;         /* TLS termination (tls/tls.h); NULL: plain */
    struct listener_state st;
};

struct config {
    _Atomic uint32_t refs;
    char *file;                /* path it was loaded from, or "<demo>" */
    uint32_t workers;          /* resolved: "auto" becomes the CPU count */
    uint32_t drain_timeout_ms; /* grace period for open connections on stop */
    uint32_t pipe_size;        /* F_SETPIPE_SZ for splice pipes, bytes */
    uint32_t pipe_cache;       /* empty pipes kept per worker */
    bool io_uring;             /* batch each loop turn's sends (ev/sendq.h) */
    uint64_t generation;       /* 1 at load; a reload numbers its snapshot one higher */
    uint32_t reload_drain_ms;  /* reload.drain_timeout: long-lived connections whose path
                                * changed are closed after it */
    bool admin_enabled;
    bool histograms; /* admin.histograms (and an admin listener): latency is recorded */
    struct sockaddr_any admin_addr;
    char *admin_text;
    char *admin_token;      /* bearer token for /api/v1/ (admin.token or token_file), or NULL */
    char *admin_token_name; /* who the token stands for in the write log, default "token" */
    struct listener_conf *listeners;
    uint32_t nlisteners;
    struct backend *backends;
    uint32_t nbackends;
    uint32_t max_conns;          /* process-wide cap on open client connections; 0 = none */
    char *upgrade_socket;        /* binary upgrades (proxy/upgrade.h), or NULL */
    struct global_conns *global; /* its counter, on a cache line of its own */
    /* Set by the composition root (proxy/proxy.c): undoes its process-wide set-up of this
     * snapshot (logs, modes) when the last reference goes. */
    void (*on_free)(struct config *c);
    struct analytics_conf analytics; /* top-N and geo (stats/analytics.h, stats/geo.h) */
};

#endif
