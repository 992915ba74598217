/* xprt_plain.c — the plain-socket transport: no context, no handshake. */
#include <errno.h>
#include <string.h>
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

static int plain_handshake(struct conn *c, const char **why)
{
    return 0;
}

static bool plain_pending(const struct conn *c)
{
    return false;
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

static void plain_info(const struct conn *c, struct xprt_info *out)
{
    memset(out, 0, sizeof(*out));
}

const struct xprt_ops xprt_plain = {
    .name = "plain",
    .recv = plain_recv,
    .send = plain_send,
    .handshake = plain_handshake,
    .pending = plain_pending,
    .shutdown_wr = plain_shutdown_wr,
    .close = plain_close,
    .info = plain_info,
    .can_splice = true,
    .short_read_drains = true,
    .fd_sends = true,
};
