/* tcp_stats.h — what a TCP relay session feeds the statistics (stats/runtime.h): connect
 * and session-duration histograms of its listener, backend and server; TCP_INFO of both
 * sockets, watched while the session lives and read a last time when it closes
 * (stats/tcp_info.h); a failed session goes to the listener's recent errors.
 */
#ifndef STRATA_L4_TCP_STATS_H
#define STRATA_L4_TCP_STATS_H

#include <stdint.h>

#include "config/config-t.h"
#include "stats/tcp_info-t.h"

struct tcp_stats_end {
    unsigned worker;
    struct listener_conf *lc;
    struct backend *backend;
    struct server *server; /* NULL when none was reached */
    uint64_t duration_us;
    struct tcp_watches *watches; /* the worker's */
    struct tcp_watch *cli, *srv; /* the session's sockets, still open */
    const char *error;     /* the log's end when it was a failure, else NULL */
    const char *detail;
};

void tcp_stats_connected(unsigned worker, struct listener_conf *lc, struct backend *b,
                         struct server *srv, uint64_t us);
void tcp_stats_closed(const struct tcp_stats_end *e);
/* Starts watching the TCP_INFO of the client socket (at start) or of the server socket
 * (once connected: srv is the server reached). */
void tcp_stats_watch(struct tcp_watches *ws, struct tcp_watch *t, int fd,
                     struct listener_conf *lc, struct server *srv);

#endif
