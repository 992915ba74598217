/* sock.h — socket set-up shared by listeners, relays and checks. All sockets are
 * non-blocking and close-on-exec. Functions return an fd or -1 with errno set. */
#ifndef STRATA_NET_SOCK_H
#define STRATA_NET_SOCK_H

#include "addr.h"

/* A listening TCP socket with SO_REUSEADDR, SO_REUSEPORT when reuseport is set (one
 * socket per worker), IPV6_V6ONLY on IPv6 so [::] and 0.0.0.0 can coexist, and
 * TCP_NODELAY, which accepted sockets inherit. */
int sock_listen_tcp(const struct sockaddr_any *a, int backlog, int reuseport);

/* Starts a non-blocking connect. *in_progress is set when the result comes later
 * (EINPROGRESS): wait for writability, then read sock_error(). */
int sock_connect_tcp(const struct sockaddr_any *a, int *in_progress);

/* A UDP socket bound to a (SO_REUSEADDR, SO_REUSEPORT when reuseport is set, IPV6_V6ONLY
 * on IPv6). With pktinfo, received datagrams carry their destination address
 * (IP_PKTINFO / IPV6_RECVPKTINFO), for a wildcard address to reply from the right one. */
int sock_bind_udp(const struct sockaddr_any *a, int reuseport, int pktinfo);

/* A UDP socket connected to a: it sends there and receives only from there, and reports
 * an ICMP port unreachable as ECONNREFUSED. */
int sock_connect_udp(const struct sockaddr_any *a);

/* The pending error of a socket (SO_ERROR): 0 when connected. */
int sock_error(int fd);

void sock_nodelay(int fd);

/* Makes the coming close(2) send a reset instead of a FIN (SO_LINGER 0): for connections
 * refused before any byte was relayed, so that they leave no TIME_WAIT behind. */
void sock_abort(int fd);

/* TCP_DEFER_ACCEPT: accept(2) returns a connection only once its first bytes arrived (or
 * after about `seconds`), so a protocol where the client speaks first (HTTP) costs one
 * wake-up less per connection. Best effort. */
void sock_defer_accept(int fd, int seconds);

#endif
