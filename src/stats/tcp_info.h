/* tcp_info.h — one TCP_INFO read of a socket that is about to close, added to the
 * statistics of its side: segments each way and retransmissions, and for a server its
 * smoothed RTT (HIST_RTT). Sampled once per connection, never per packet; called by the
 * TCP relay (both sockets) and the upstream pool (HTTP server connections). */
#ifndef STRATA_STATS_TCP_INFO_H
#define STRATA_STATS_TCP_INFO_H

#include "config/config-t.h"

void stats_tcp_info_listener(unsigned worker, struct listener_conf *lc, int fd);
void stats_tcp_info_server(unsigned worker, struct server *srv, int fd);

#endif
