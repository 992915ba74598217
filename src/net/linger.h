/* linger.h — the lingering close: ending a connection that may still receive.
 *
 * close(2) on a TCP socket with unread bytes in its receive queue makes the kernel reset
 * the connection, and the reset destroys what the peer has not read yet of our last
 * bytes: a 413 answered while the client still uploads, a 400 followed by more bytes. A
 * connection handed to conn_linger has its sending side shut after those bytes (TLS:
 * close_notify, then FIN); what still comes is read and thrown away until the peer's EOF
 * or an error, or until the timeout; then it is closed (RFC 9112 §9.6; NGINX's
 * lingering_close). A lingering connection holds its fd and a few dozen bytes, no
 * admission unit and no session; a draining worker waits for it (the timeout bounds that).
 */
#ifndef STRATA_NET_LINGER_H
#define STRATA_NET_LINGER_H

#include <stdint.h>

struct worker;
struct conn;

/* Most connections lingering per worker; past it, one more is closed at once. */
#define LINGER_MAX_PER_WORKER 4096

/* Takes c over (fd, transport, loop registration) and leaves it closed (fd -1). With
 * timeout_ms 0, no memory, or LINGER_MAX_PER_WORKER lingering already, closes at once. */
void conn_linger(struct worker *w, struct conn *c, uint32_t timeout_ms);

/* Per worker: set up, close every lingering connection now (their memory goes through
 * the loop's deferred frees), tear down (after the loop's reap), and count them. */
void linger_worker_init(struct worker *w);
void linger_close_all(struct worker *w);
void linger_worker_free(struct worker *w);
uint32_t linger_count(const struct worker *w);

#endif
