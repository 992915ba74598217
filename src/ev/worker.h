/* worker.h — worker threads: each owns an epoll loop, its own listening sockets
 * (SO_REUSEPORT: the kernel spreads new connections), its sessions, its pools and a
 * connection-log buffer. Nothing here is shared between workers except through the
 * configuration's atomics. The main thread talks to a worker only by worker_command().
 */
#ifndef STRATA_EV_WORKER_H
#define STRATA_EV_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "config/config-t.h"
#include "core/list.h"
#include "core/pool.h"
#include "ev/loop.h"
#include "net/pipe_pool.h"
#include "upstream/pool.h"

enum worker_cmd {
    WORKER_RUN,
    WORKER_DRAIN, /* close TCP listeners, open no new UDP flow, exit when the last session
                   * and the last flow end */
    WORKER_STOP,  /* close every session now and exit */
};

struct worker;
struct udp_worker;

struct listen_sock {
    struct ev_handler h;
    struct listener_conf *lc;
    struct worker *w;
    bool pktinfo; /* UDP on a wildcard address: datagrams carry their destination address */
};

#define WORKER_LOGBUF 16384
#define HTTP_DEFER_ACCEPT_S 1 /* see sock_defer_accept */

struct worker {
    unsigned id;
    pthread_t thread;
    bool started;
    struct ev_loop loop;
    struct config *cfg; /* the generation this worker serves (one reference) */
    struct listen_sock *socks;
    unsigned nsocks;
    struct ev_timer accept_resume; /* armed while accepting is paused (EMFILE...) */
    uint64_t pause_logged_ms;      /* when a pause was last logged */
    uint64_t refusal_log_sec;      /* second of the refusal-log budget (net/stage.c) */
    uint64_t refusals_logged, refusals_unlogged;
    struct list stages;            /* connections in the stage (net/stage.c) */
    struct list stage_dead;        /* stage objects done during the batch, freed after it */
    struct pool stage_pool;
    uint32_t nstages;
    struct list sessions;          /* open sessions */
    struct list dead;              /* closed during the current batch, freed after it */
    struct list runq;              /* sessions with work deferred past the current batch */
    uint32_t nsessions;
    struct pool session_pool;
    struct pool buf_pool; /* struct relay_buf */
    struct pipe_pool pipes;
    struct udp_worker *udp;     /* UDP flows (l4/udp_proxy.c); NULL without udp listeners */
    /* HTTP (http/h1_session.c): sessions, their exchanges and buffers, upstream pools */
    struct list http_sessions;  /* open HTTP client connections */
    struct list http_dead;      /* closed during the current batch, freed after it */
    struct list http_runq;      /* sessions with work deferred past the current batch */
    uint32_t nhttp;
    struct pool http_session_pool;
    struct pool http_exchange_pool;
    struct pool hbuf_pool; /* struct hbuf of HBUF_SIZE */
    struct upool upool;
    struct list up_dead;   /* upstream connections closed during the batch */
    char *access_buf;      /* access log lines (http/access_log.c), flushed once per batch */
    size_t access_len;
    int access_fd;
    char *scratch;              /* RELAY_BUF_SIZE bytes for the copy path */
    char logbuf[WORKER_LOGBUF]; /* connection log lines, flushed once per batch */
    size_t loglen;
    time_t log_sec; /* second that log_date was formatted for */
    char log_date[24];
    _Atomic int cmd; /* enum worker_cmd, set by worker_command() */
    int applied_cmd;
    _Atomic bool exited;
};

/* Creates the workers' listening sockets for every listener address (in the calling
 * thread, so a bind failure is reported before anything starts). On failure, fills
 * `err` and returns -1 with everything already opened closed again. */
int workers_init(struct worker *ws, unsigned n, struct config *cfg, char *err, size_t errlen);
int workers_start(struct worker *ws, unsigned n);
void worker_command(struct worker *w, enum worker_cmd cmd);
/* Joins and frees every worker started by workers_start. */
void workers_join(struct worker *ws, unsigned n);
/* Workers started and not yet exited. */
unsigned workers_running(struct worker *ws, unsigned n);

/* Appends one line to the worker's log buffer (written to stderr after the batch). */
void worker_log(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
