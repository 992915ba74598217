/* conn.h — a connection: an fd registered in a worker's loop, its readiness as last seen
 * (the loop is edge-triggered, so the connection remembers), and the transport that moves
 * its bytes. Plain sockets now; TLS will be another `struct xprt_ops` and the relays and
 * codecs above will not change.
 */
#ifndef STRATA_NET_CONN_H
#define STRATA_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ev/loop.h"

enum conn_flag {
    CONN_RD_READY = 1 << 0, /* a read may return data or EOF */
    CONN_WR_READY = 1 << 1, /* a write may make progress */
    CONN_RD_EOF = 1 << 2,   /* the peer has finished sending */
    CONN_WR_SHUT = 1 << 3,  /* we have shut our sending side */
    CONN_ERROR = 1 << 4,    /* the socket reported an error */
    CONN_RD_HUP = 1 << 5,   /* epoll saw the peer's FIN: a short read is not the end */
};

struct conn;

struct xprt_ops {
    const char *name;
    /* Like recv(2)/send(2): >0 bytes, 0 EOF (recv only), -1 with errno (EAGAIN = not now). */
    ssize_t (*recv)(struct conn *c, void *buf, size_t len);
    ssize_t (*send)(struct conn *c, const void *buf, size_t len);
    int (*shutdown_wr)(struct conn *c);
    void (*close)(struct conn *c);
    /* Bytes may move by splice(2) straight from/to the fd (false for TLS). */
    bool can_splice;
};

extern const struct xprt_ops xprt_plain;

struct conn {
    struct ev_handler h; /* h.fd is the socket; -1 once closed */
    const struct xprt_ops *xprt;
    uint32_t flags;
};

/* Records the readiness an epoll event reports.
 * A read shorter than asked drains an edge-triggered socket, so the reader may clear
 * CONN_RD_READY without the extra read that would return EAGAIN — unless the peer's FIN
 * was already reported (CONN_RD_HUP): then no new edge will come and EOF must be read. */
static inline void conn_note_events(struct conn *c, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->flags |= CONN_RD_READY;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->flags |= CONN_WR_READY;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        c->flags |= CONN_RD_HUP;
    if (ev & EPOLLERR)
        c->flags |= CONN_ERROR;
}

#endif
