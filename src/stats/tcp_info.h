/* tcp_info.h — TCP_INFO of connected sockets, added to the statistics of their side:
 * segments each way and retransmissions, and for a server its smoothed RTT (HIST_RTT).
 * Read from the kernel, never counted per packet.
 *
 * Each worker watches its connected sockets (both sides of TCP relay sessions, HTTP
 * server connections): once a second a timer reads TCP_INFO of at most
 * TCP_WATCH_PER_TICK of them, round robin, so that long-lived connections show their RTT
 * and retransmissions before they close; a socket watched for less than
 * TCP_WATCH_MIN_AGE_MS is passed over (short connections are read once, at close). Each
 * read adds what changed since the previous one, so a connection is counted once in all.
 * Cost per tick and worker: one timer wake-up and at most TCP_WATCH_PER_TICK getsockopt
 * calls (about a microsecond each); none while nothing is watched. On the data path:
 * one list insert when a connection is established and one read at close, as before.
 */
#ifndef STRATA_STATS_TCP_INFO_H
#define STRATA_STATS_TCP_INFO_H

#include "config/config-t.h"
#include "stats/tcp_info-t.h"

#define TCP_WATCH_TICK_MS 1000
#define TCP_WATCH_PER_TICK 64
#define TCP_WATCH_MIN_AGE_MS 1000

void tcp_watches_init(struct tcp_watches *ws, struct ev_loop *loop, unsigned worker);
/* Cancels the timer; every watch must have ended. */
void tcp_watches_stop(struct tcp_watches *ws);

/* Starts watching fd (connected) for lc (a relay's client side) or srv (a server side). */
void tcp_watch_start(struct tcp_watches *ws, struct tcp_watch *t, int fd,
                     struct listener_conf *lc, struct server *srv);
/* The socket is about to close: reads it a last time and stops watching. No-op for a
 * socket not watched. */
void tcp_watch_end(struct tcp_watches *ws, struct tcp_watch *t);

/* One tick at loop time now_ms (the timer's; exposed for tests): returns the sockets read. */
unsigned tcp_watches_sample(struct tcp_watches *ws, uint64_t now_ms);

#endif
