/* conn.h — a connection: an fd registered in a worker's loop, its readiness as last seen
 * (the loop is edge-triggered, so the connection remembers), and the transport that moves
 * its bytes. The transport (`struct xprt_ops` + `ctx`) is chosen per listener and per
 * backend: plain sockets (net/xprt_plain.c) or TLS (tls/xprt_tls.c); the relays and codecs
 * above see only this interface.
 */
#ifndef STRATA_NET_CONN_H
#define STRATA_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
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
    /* A transport step waits for the other direction (TLS: a read that must write a
     * record first, a write that must read one): that readiness wakes the step too. */
    CONN_RD_WANTS_WR = 1 << 6,
    CONN_WR_WANTS_RD = 1 << 7,
    /* The transport's last read from the socket came back short (the socket was drained
     * then) and no EPOLLIN has been seen since: once the transport holds no more bytes, a
     * read would say EAGAIN (TLS: records read ahead are returned without the socket). */
    CONN_RD_DRAINED = 1 << 8,
};

struct conn;

/* What a finished handshake agreed on (for routing, headers and the access log).
 * Strings are owned by the transport and live as long as the connection. */
struct xprt_info {
    const char *version; /* "TLSv1.3"; NULL on plain connections */
    const char *cipher;
    const char *sni; /* server name the client asked for; NULL if none */
    const unsigned char *alpn;
    unsigned alpn_len;            /* 0: no protocol negotiated */
    bool resumed;                 /* the session was resumed (ticket or cache) */
    bool peer_verified;           /* a peer certificate was presented and verified */
    const char *peer_subject;     /* its subject, RFC 2253 ("CN=alice,O=Example"); or NULL */
    const char *peer_fingerprint; /* SHA-256 of its DER form, 64 lowercase hex; or NULL */
};

/* A transport. recv/send are like recv(2)/send(2): >0 bytes, 0 EOF (recv only), -1 with
 * errno (EAGAIN = not now; with CONN_RD_WANTS_WR / CONN_WR_WANTS_RD set when it waits for
 * the other direction). Every op but close may assume c->h.fd >= 0. */
struct xprt_ops {
    const char *name;
    ssize_t (*recv)(struct conn *c, void *buf, size_t len);
    ssize_t (*send)(struct conn *c, const void *buf, size_t len);
    /* One handshake step: 0 done; -1 with errno EAGAIN (waiting for readiness, flags say
     * which) or another errno (failed; *why names the reason, a static string). */
    int (*handshake)(struct conn *c, const char **why);
    /* Bytes already inside the transport that a recv returns without the socket. */
    bool (*pending)(const struct conn *c);
    /* Orderly end of our sending side (TLS: close_notify, then SHUT_WR). */
    int (*shutdown_wr)(struct conn *c);
    /* Frees the context and closes the fd (idempotent: fd becomes -1, ctx NULL). */
    void (*close)(struct conn *c);
    /* Fills what the handshake agreed on (zeroes on a plain connection). */
    void (*info)(const struct conn *c, struct xprt_info *out);
    /* Bytes may move by splice(2) straight from/to the fd (false for TLS). */
    bool can_splice;
    /* A recv shorter than asked means the socket is drained (true for plain sockets;
     * false for TLS, where one recv returns at most one record). */
    bool short_read_drains;
    /* A send is send(2) of the same bytes on the fd, and shutdown_wr is shutdown(2): the
     * loop may make them in a batch (ev/sendq.h). False for TLS, whose records (and
     * close_notify) OpenSSL writes. */
    bool fd_sends;
};

extern const struct xprt_ops xprt_plain;

struct conn {
    struct ev_handler h; /* h.fd is the socket; -1 once closed */
    const struct xprt_ops *xprt;
    void *ctx; /* the transport's per-connection state (TLS: the SSL object); NULL: none */
    uint32_t flags;
};

/* Records the readiness an epoll event reports.
 * A read shorter than asked drains an edge-triggered socket, so the reader may clear
 * CONN_RD_READY without the extra read that would return EAGAIN — unless the peer's FIN
 * was already reported (CONN_RD_HUP): then no new edge will come and EOF must be read. */
static inline void conn_note_events(struct conn *c, uint32_t ev)
{
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        c->flags = (c->flags & ~CONN_RD_DRAINED) | CONN_RD_READY;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        c->flags |= CONN_WR_READY;
    if (ev & (EPOLLRDHUP | EPOLLHUP))
        c->flags |= CONN_RD_HUP;
    if (ev & EPOLLERR)
        c->flags |= CONN_ERROR;
    if ((c->flags & CONN_RD_WANTS_WR) && (ev & EPOLLOUT))
        c->flags = (c->flags & ~CONN_RD_WANTS_WR) | CONN_RD_READY;
    if ((c->flags & CONN_WR_WANTS_RD) && (ev & EPOLLIN))
        c->flags = (c->flags & ~CONN_WR_WANTS_RD) | CONN_WR_READY;
}

/* After a recv of n > 0 bytes into `asked`: clears CONN_RD_READY when that proves the
 * socket drained (saves the read that would say EAGAIN). */
static inline void conn_note_read(struct conn *c, size_t n, size_t asked)
{
    if (n < asked && c->xprt->short_read_drains && !(c->flags & CONN_RD_HUP))
        c->flags &= ~CONN_RD_READY;
}

/* Sets up a plain connection on fd (not yet registered in the loop). */
static inline void conn_init_plain(struct conn *c, int fd, ev_io_cb cb)
{
    *c = (struct conn){.h = {.fd = fd, .cb = cb}, .xprt = &xprt_plain};
}

#endif
