/* upgrade.c — see upgrade.h.
 *
 * The exchange on the Unix stream socket: the new process writes "TAKEOVER\n"; the old one
 * sends one `struct handed` per listening socket, each with its fd (SCM_RIGHTS), and one
 * with kind HANDED_END; the new process writes "READY\n" once its workers run, followed by
 * one byte per socket received, in order: 1 when one of its listeners took it (the old
 * process then stops reading those of them that are UDP listeners). Both sides bound
 * every wait (UPGRADE_TIMEOUT_S).
 */
#include "proxy/upgrade.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/log.h"
#include "ev/loop.h"
#include "ev/worker.h"
#include "net/sock_inherit.h"
#include "proxy/sd_notify.h"

#define UPGRADE_TIMEOUT_S 10
#define HANDED_END 255
#define SOCK_INHERIT_MAP_MAX 4096 /* sockets said taken or not in READY (more: not taken) */

struct handed {
    uint8_t kind; /* enum listener_mode, SOCK_INHERIT_ADMIN or HANDED_END */
    struct sockaddr_any addr;
};

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun->sun_path, path);
    return 0;
}

static void set_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = UPGRADE_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- the new process ---- */

/* One struct handed and its fd (-1 for HANDED_END). 1, 0 at the end, -1 on error. */
static int recv_handed(int fd, struct handed *h, int *sock)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {h, sizeof(*h)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf)};
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    if (n != (ssize_t)sizeof(*h))
        return -1;
    *sock = -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        memcpy(sock, CMSG_DATA(c), sizeof(int));
    if (h->kind == HANDED_END)
        return 0;
    return *sock >= 0 ? 1 : -1;
}

int upgrade_takeover(const struct config *cfg, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    if (!cfg->upgrade_socket)
        return -2;
    if (unix_addr(cfg->upgrade_socket, &sun) < 0) {
        snprintf(err, errlen, "upgrade_socket %s: %s", cfg->upgrade_socket, strerror(errno));
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        if (fd >= 0)
            close(fd);
        return -2; /* nobody there: a plain start */
    }
    set_timeouts(fd);
    struct handed h;
    int sock, r, count = 0;
    if (send(fd, "TAKEOVER\n", 9, MSG_NOSIGNAL) != 9)
        goto fail;
    while ((r = recv_handed(fd, &h, &sock)) > 0) {
        if (sock_inherit_add(h.kind, &h.addr, sock) < 0)
            close(sock);
        count++;
    }
    if (r < 0)
        goto fail;
    log_info("binary upgrade: took over %d listening sockets from the process on %s", count,
             cfg->upgrade_socket);
    return fd;
fail:
    snprintf(err, errlen, "binary upgrade: the process on %s did not hand its sockets over: %s",
             cfg->upgrade_socket, errno ? strerror(errno) : "protocol error");
    close(fd);
    sock_inherit_close_rest();
    return -1;
}

void upgrade_finish(int fd)
{
    /* READY, then one byte per socket handed over: 1 when a listener here took it */
    unsigned char msg[6 + SOCK_INHERIT_MAP_MAX];
    memcpy(msg, "READY\n", 6);
    size_t len = 6 + sock_inherit_taken_map(msg + 6, SOCK_INHERIT_MAP_MAX);
    unsigned rest = sock_inherit_close_rest();
    if (rest)
        log_info("binary upgrade: %u listening sockets of listeners this file does not have "
                 "closed", rest);
    sd_notify_take_main(); /* before the old one stops: systemd follows this process */
    if (send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
        log_warn("binary upgrade: cannot tell the old process to stop: %s", strerror(errno));
    close(fd);
}

void upgrade_abandon(int fd)
{
    if (fd < 0)
        return;
    close(fd); /* the old process sees EOF before READY: it goes on serving */
    sock_inherit_close_rest();
}

/* ---- the old process (control thread) ---- */

struct upgrade_server {
    struct ev_loop *loop;
    struct ev_handler lh;   /* the Unix listening socket */
    struct ev_handler peer; /* the new process, once it took the sockets: waits for READY */
    struct worker *ws;
    unsigned n;
    struct admin *admin;
    char *path;
    struct stat bound; /* the file bind made: a newer process replaces it */
    /* What the last hand-over sent, in order (the admin listener's last: no worker) */
    struct handed_sock {
        unsigned worker;
        int fd;
    } *handed;
    unsigned nhanded;
};

static int send_handed(int fd, uint8_t kind, const struct sockaddr_any *addr, int sock)
{
    struct handed h = {.kind = kind};
    if (addr)
        h.addr = *addr;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {&h, sizeof(h)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (sock >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        msg.msg_control = ctl.buf;
        msg.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &sock, sizeof(int));
    }
    return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof(h) ? 0 : -1;
}

/* Every worker's listening sockets, then the admin listener's. */
static int hand_over(struct upgrade_server *u, int fd)
{
    unsigned count = 0, total = 0;
    for (unsigned i = 0; i < u->n; i++)
        total += u->ws[i].nsocks;
    free(u->handed);
    u->nhanded = 0;
    if (!(u->handed = calloc(total + 1, sizeof(*u->handed))))
        return -1;
    for (unsigned i = 0; i < u->n; i++) {
        struct worker *w = &u->ws[i];
        for (unsigned j = 0; j < w->nsocks && count < total; j++) {
            struct listen_sock *ls = &w->socks[j];
            if (ls->h.fd < 0)
                continue;
            if (send_handed(fd, (uint8_t)ls->lc->mode, &ls->lc->addrs[ls->addr_index],
                            ls->h.fd) < 0)
                return -1;
            u->handed[u->nhanded++] = (struct handed_sock){i, ls->h.fd};
            count++;
        }
    }
    if (u->admin) {
        struct sockaddr_any a;
        if (admin_local_addr(u->admin, &a) == 0 &&
            send_handed(fd, SOCK_INHERIT_ADMIN, &a, admin_listen_fd(u->admin)) < 0)
            return -1;
    }
    log_info("binary upgrade: %u listening sockets handed to a new process", count);
    return send_handed(fd, HANDED_END, NULL, -1);
}

static void peer_close(struct upgrade_server *u)
{
    ev_del(u->loop, &u->peer);
    close(u->peer.fd);
    u->peer.fd = -1;
}

/* READY's map (one byte per socket handed over, 1 = taken; missing: not taken): marks the
 * listening sockets the new process took, then each worker (read when it drains). */
static void mark_taken(struct upgrade_server *u, const unsigned char *map, size_t len)
{
    for (unsigned i = 0; i < u->nhanded && i < len; i++) {
        struct handed_sock *hs = &u->handed[i];
        if (!map[i] || hs->worker >= u->n)
            continue;
        struct worker *w = &u->ws[hs->worker];
        for (unsigned j = 0; j < w->nsocks; j++)
            if (w->socks[j].h.fd == hs->fd)
                w->socks[j].handed_over = true;
    }
    for (unsigned i = 0; i < u->n; i++) /* before the drain command (SIGTERM) */
        atomic_store_explicit(&u->ws[i].handed_over, true, memory_order_release);
}

/* READY (the new process serves: this one stops as on SIGTERM), or it went away (it
 * failed: this one goes on, its sockets never left it). */
static void peer_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct upgrade_server *u = container_of(h, struct upgrade_server, peer);
    unsigned char buf[6 + SOCK_INHERIT_MAP_MAX];
    (void)loop;
    (void)events;
    ssize_t n = recv(h->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    peer_close(u);
    if (n >= 6 && memcmp(buf, "READY\n", 6) == 0) {
        log_info("binary upgrade: the new process serves; stopping this one");
        mark_taken(u, buf + 6, (size_t)n - 6);
        sd_notify_give_up_main(); /* no STOPPING=1: the service goes on in the new one */
        kill(getpid(), SIGTERM);
    } else {
        log_warn("binary upgrade: the new process went away before it was ready; this one "
                 "goes on serving");
    }
}

static void accept_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct upgrade_server *u = container_of(h, struct upgrade_server, lh);
    char buf[16];
    (void)events;
    int fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (u->peer.fd >= 0) { /* one upgrade at a time */
        close(fd);
        return;
    }
    set_timeouts(fd); /* blocking, bounded: the control loop waits at most that */
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 8 || memcmp(buf, "TAKEOVER", 8) != 0 || hand_over(u, fd) < 0) {
        log_warn("binary upgrade: a peer on the upgrade socket failed the exchange");
        close(fd);
        return;
    }
    u->peer.fd = fd;
    u->peer.cb = peer_io;
    if (ev_add_level_in(loop, &u->peer) < 0)
        peer_close(u);
}

struct upgrade_server *upgrade_listen(struct ev_loop *loop, const struct config *cfg,
                                      struct worker *ws, unsigned n, struct admin *admin,
                                      char *err, size_t errlen)
{
    struct sockaddr_un sun;
    struct upgrade_server *u = calloc(1, sizeof(*u));
    if (!u || !(u->path = strdup(cfg->upgrade_socket))) {
        snprintf(err, errlen, "out of memory");
        free(u);
        return NULL;
    }
    u->loop = loop;
    u->ws = ws;
    u->n = n;
    u->admin = admin;
    u->peer.fd = -1;
    u->lh.cb = accept_io;
    u->lh.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* a previous process's path (it was upgraded, or it died): this process takes it */
    if (unix_addr(u->path, &sun) < 0 || u->lh.fd < 0 || (unlink(u->path) < 0 && errno != ENOENT) ||
        bind(u->lh.fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(u->path, 0600) < 0 ||
        stat(u->path, &u->bound) < 0 || listen(u->lh.fd, 4) < 0 ||
        ev_add_level_in(loop, &u->lh) < 0) {
        snprintf(err, errlen, "upgrade_socket %s: %s", u->path, strerror(errno));
        if (u->lh.fd >= 0)
            close(u->lh.fd);
        free(u->path);
        free(u);
        return NULL;
    }
    return u;
}

void upgrade_stop(struct upgrade_server *u)
{
    if (!u)
        return;
    if (u->peer.fd >= 0)
        peer_close(u);
    free(u->handed);
    ev_del(u->loop, &u->lh);
    /* the path stays when a newer process took it over (its own socket now) */
    struct stat now;
    if (stat(u->path, &now) == 0 && now.st_ino == u->bound.st_ino &&
        now.st_dev == u->bound.st_dev)
        unlink(u->path);
    close(u->lh.fd);
    free(u->path);
    free(u);
}
