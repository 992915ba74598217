/* xprt_plain.c — the plain-socket transport. */
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"

static ssize_t plain_recv(struct conn *c, void *buf, size_t len)
{
    return recv(c->h.fd, buf, len, 0);
}

static ssize_t plain_send(struct conn *c, const void *buf, size_t len)
{
    return send(c->h.fd, buf, len, MSG_NOSIGNAL);
}

static int plain_shutdown_wr(struct conn *c)
{
    return shutdown(c->h.fd, SHUT_WR);
}

static void plain_close(struct conn *c)
{
    if (c->h.fd >= 0)
        close(c->h.fd);
    c->h.fd = -1;
}

const struct xprt_ops xprt_plain = {
    .name = "plain",
    .recv = plain_recv,
    .send = plain_send,
    .shutdown_wr = plain_shutdown_wr,
    .close = plain_close,
    .can_splice = true,
};
