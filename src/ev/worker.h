/* worker.h — worker threads: each owns an epoll loop, its own listening sockets
 * (SO_REUSEPORT: the kernel spreads new connections), the per-worker state of each listener
 * mode (sessions, pools, flow tables: net/listener_mode.h) and a connection-log buffer.
 * Nothing here is shared between workers except through the configuration's atomics. The
 * main thread talks to a worker only by worker_command(). A worker knows no mode by name:
 * the composition root (proxy/proxy.c) hands it the table of modes.
 */
#ifndef STRATA_EV_WORKER_H
#define STRATA_EV_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "config/config-t.h"
#include "core/list.h"
#include "core/logbuf.h"
#include "core/pool.h"
#include "net/pipe_pool.h"
#include "ev/loop.h"
#include "net/listener_mode.h"
#include "stats/tcp_info-t.h"
#include "upstream/pool.h"

enum worker_cmd {
    WORKER_RUN,
    WORKER_DRAIN, /* close stream listeners (datagram modes open no new flow), exit when
                   * the last session and the last flow end */
    WORKER_STOP,  /* close every session now and exit */
};

struct worker;

struct listen_sock {
    struct ev_handler h;
    struct listener_conf *lc;
    uint32_t addr_index; /* in lc->addrs */
    const struct listener_mode_ops *ops; /* of lc->mode */
    struct worker *w;
    bool pktinfo; /* UDP on a wildcard address: datagrams carry their destination address */
    bool handed_over; /* a binary upgrade's new process took this socket (proxy/upgrade.c;
                         read when the worker drains, after w->handed_over) */
};

/* A reload's hand-over to one worker (proxy/reload.c builds it on the control thread; the
 * worker applies it at its next wake and sets `done`). */
struct worker_swap {
    struct config *cfg;        /* the new generation: one reference, now the worker's */
    struct listen_sock *socks; /* its listening sockets; a kept one has the old one's fd */
    unsigned nsocks;
    bool *kept;                /* [the worker's nsocks]: that socket's fd lives on in socks */
    struct retired_gen *retired; /* allocated for the worker: where the old generation goes */
    _Atomic uint32_t *released;  /* incremented once the worker is done with the old one */
    _Atomic bool done;
};

/* A generation the worker served before a reload: kept (one reference, with its listening
 * sockets' memory) until no connection of any worker is left on it. */
struct retired_gen {
    struct config *cfg;        /* the worker's reference */
    struct listen_sock *socks; /* their memory: an event of the batch may still name one */
    _Atomic uint32_t *released; /* the control thread's count of workers done with cfg */
    bool quiet; /* found without connections at the end of a batch: dropped at the next */
    struct retired_gen *next;
};

#define WORKER_MODES 4 /* slots of worker.mode_state: at least enum listener_mode's values */

struct worker {
    unsigned id;
    pthread_t thread;
    bool started;
    struct ev_loop loop;
    struct config *cfg; /* the generation this worker serves (one reference) */
    /* The listener modes, indexed by enum listener_mode (the composition root's table),
     * and each one's own per-worker state (see net/listener_mode.h). */
    const struct listener_mode_ops *const *modes;
    unsigned nmodes;
    void *mode_state[WORKER_MODES];
    struct listen_sock *socks;
    unsigned nsocks;
    struct ev_timer accept_resume; /* armed while accepting is paused (EMFILE...) */
    uint64_t pause_logged_ms;      /* when a pause was last logged */
    /* The connection stage (net/stage.c): connections between accept and their mode,
     * and the budget of its failure log lines. */
    struct list stages;
    struct pool stage_pool;
    uint32_t nstages;
    uint64_t refusal_log_sec; /* second of the failure-log budget */
    uint64_t refusals_logged, refusals_unlogged;
    /* Connections in a lingering close (net/linger.h). */
    struct list lingers;
    struct pool linger_pool;
    uint32_t nlingers;
    char *scratch; /* RELAY_BUF_SIZE bytes: the stage's peeks, the TCP copy path */
    struct pipe_pool pipes; /* kernel pipes for splice(2): TCP relays, HTTP bodies */
    /* HTTP (http/h1_session.c, h1_upstream.c, upstream/pool.c): exchanges, buffers and
     * upstream pools; the sessions hang off mode_state. */
    struct pool http_exchange_pool;
    struct pool h1u_pool;  /* the HTTP/1 server codec's state per stream (h1_upstream.h) */
    struct pool hbuf_pool; /* struct hbuf of HBUF_SIZE */
    struct pool h2s_pool;  /* HTTP/2 client streams (struct h2s, h2_stream.c) */
    struct h2_mem *h2mem;  /* nghttp2's blocks for the client sessions (http/h2_mem.h) */
    struct upool upool;
    /* Every log line of this worker (access, connection, flow, stage), one buffer per
     * destination, written after each event batch (core/logbuf.h). */
    struct log_bufs logs;
    _Atomic(struct worker_swap *) swap; /* a reload to apply (worker_swap_post) */
    struct retired_gen *retired;
    struct ev_timer retire_tick; /* looks at the retired generations while there are some */
    _Atomic int cmd; /* enum worker_cmd, set by worker_command() */
    int applied_cmd;
    _Atomic int acked_cmd; /* applied_cmd, published once its effects are in place */
    _Atomic bool exited;
    /* A binary upgrade gave listening sockets of this worker to a new process, which
     * took those marked handed_over (proxy/upgrade.c), set before WORKER_DRAIN: draining,
     * those of its datagram listeners stop reading (the new process reads every datagram)
     * but stay open, as the replies of its open flows leave by them. */
    _Atomic bool handed_over;
    struct tcp_watches tcp_watches; /* connected TCP sockets whose TCP_INFO is sampled */
};

/* Sets up n workers for cfg with the listener modes modes[0..nmodes) (indexed by enum
 * listener_mode; the table must outlive the workers): each mode's per-worker state, and
 * the listening sockets of every listener address (in the calling thread, so a bind
 * failure is reported before anything starts). On failure, fills `err` and returns -1
 * with everything already made freed again. */
int workers_init(struct worker *ws, unsigned n, struct config *cfg,
                 const struct listener_mode_ops *const *modes, unsigned nmodes, char *err,
                 size_t errlen);
int workers_start(struct worker *ws, unsigned n);
void worker_command(struct worker *w, enum worker_cmd cmd);
/* Builds w's part of a reload to generation nc (control thread): nc's listening sockets,
 * each taken from w's sockets with the same mode and address (kept: never closed, so
 * nothing waiting in its queue is lost) or bound now (counted in *bound). -1 with a reason
 * in err when one cannot be bound; then worker_swap_abort closes what was bound. */
int worker_swap_prepare(struct worker *w, struct config *nc, struct worker_swap *sw,
                        unsigned *bound, char *err, size_t errlen);
/* Undoes worker_swap_prepare for a reload that will not happen. */
void worker_swap_abort(struct worker *w, struct worker_swap *sw);
/* Hands a reload to w (control thread); the worker applies it at its next wake: its
 * listening sockets become sw->socks (the kept ones never closed, so no connection waiting
 * in them is lost; the others closed), w->cfg becomes sw->cfg and each mode's `reload`
 * runs. The caller waits for sw->done, or for the worker to have exited. */
void worker_swap_post(struct worker *w, struct worker_swap *sw);
/* Joins and frees every worker started by workers_start. */
void workers_join(struct worker *ws, unsigned n);
/* Workers started and not yet exited. */
unsigned workers_running(struct worker *ws, unsigned n);
/* Waits, up to timeout_ms, until every running worker has applied cmd (for WORKER_DRAIN:
 * its stream listeners closed, its datagram listeners opening no new flow). False when one
 * has not by then. */
bool workers_wait_applied(struct worker *ws, unsigned n, enum worker_cmd cmd,
                          unsigned timeout_ms);

/* Appends one text line ("TIME info MESSAGE") to the worker's stderr buffer (written after
 * the batch). For rare lines; the per-connection ones are built with core/logbuf.h. */
void worker_log(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
