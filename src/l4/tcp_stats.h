/* tcp_stats.h — what a TCP relay session feeds the statistics (stats/runtime.h): connect
 * and session-duration histograms of its listener, backend and server; when it closes, one
 * TCP_INFO read of each socket (stats/tcp_info.h); a failed session goes to the
 * listener's recent errors.
 */
#ifndef STRATA_L4_TCP_STATS_H
#define STRATA_L4_TCP_STATS_H

#include <stdint.h>

#include "config/config-t.h"

struct tcp_stats_end {
    unsigned worker;
    struct listener_conf *lc;
    struct backend *backend;
    struct server *server; /* NULL when none was reached */
    uint64_t duration_us;
    int cli_fd, srv_fd;     /* -1 when closed already */
    const char *error;     /* the log's end when it was a failure, else NULL */
    const char *detail;
};

void tcp_stats_connected(unsigned worker, struct listener_conf *lc, struct backend *b,
                         struct server *srv, uint64_t us);
void tcp_stats_closed(const struct tcp_stats_end *e);

#endif
