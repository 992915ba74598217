/* tcp_info-t.h — the TCP_INFO sampling of live connections (stats/tcp_info.h). Types only.
 */
#ifndef STRATA_STATS_TCP_INFO_T_H
#define STRATA_STATS_TCP_INFO_T_H

#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"
#include "ev/loop.h"

struct listener_conf;
struct server;

/* One connected TCP socket whose TCP_INFO is read while it lives and once more when it
 * closes. Embedded in its connection (a relay session's two sides, an HTTP server
 * connection); a zeroed one is not watched. Invariant: `watched` ⇔ on its worker's
 * tcp_watches.live list, and fd is then open. */
struct tcp_watch {
    struct list link;
    int fd;
    bool watched;
    struct listener_conf *lc; /* a relay's client side: the listener's counters, or */
    struct server *srv;       /* a server side: the server's counters and RTT histogram */
    uint64_t since_ms;        /* loop time it was first watched */
    /* what earlier reads have counted already (TCP_INFO's counts are per connection) */
    uint32_t segs_in, segs_out, retrans;
};

/* A worker's watched sockets, visited round robin by a timer: the head is read and moved
 * to the tail, at most TCP_WATCH_PER_TICK each TCP_WATCH_TICK_MS. */
struct tcp_watches {
    struct list live;
    uint32_t n;
    unsigned worker;
    struct ev_loop *loop;
    struct ev_timer tick; /* armed while n > 0 */
};

#endif
