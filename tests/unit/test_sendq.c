/* test_sendq.c — the loop's send queue (ev/sendq.h), through io_uring and without it:
 * order, short and refused sends, cancels, sends prepared at the flush, and sends queued
 * by a done callback. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev/loop.h"
#include "ev/sendq.h"
#include "test.h"

struct probe {
    struct ev_send s;
    ssize_t res;
    unsigned calls, order;
    const char *late; /* bytes prepare hands over, when set */
    struct ev_loop *loop;
    struct probe *cancel; /* done cancels this one */
    struct probe *requeue; /* done queues this one */
    struct probe *finish;  /* done finishes this one */
};

static unsigned done_seq;

static void probe_done(struct ev_send *s, ssize_t res)
{
    struct probe *p = container_of(s, struct probe, s);
    p->res = res;
    p->calls++;
    p->order = ++done_seq;
    if (p->cancel)
        ev_send_cancel(&p->cancel->s);
    if (p->requeue)
        ev_send_queue(p->loop, &p->requeue->s, p->s.fd, "again", 5);
    if (p->finish)
        ev_send_finish(&p->finish->s);
}

static void probe_prepare(struct ev_send *s)
{
    struct probe *p = container_of(s, struct probe, s);
    s->buf = p->late;
    s->len = (uint32_t)strlen(p->late);
}

static void probe_init(struct probe *p, struct ev_loop *loop, bool prepared)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    ev_send_init(&p->s, prepared ? probe_prepare : NULL, probe_done);
}

/* A loop with (ring = true) or without io_uring; false if the ring was asked and refused. */
static bool loop_open(struct ev_loop *loop, bool ring)
{
    CHECK(ev_loop_init(loop) == 0);
    return !ring || ev_sendq_uring(loop, 4) == 0;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (int i = 0; i < 100 && got < cap; i++) {
        ssize_t n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void order_and_cancel(bool ring)
{
    struct ev_loop loop;
    int sv[2];
    if (!loop_open(&loop, ring)) {
        ev_loop_free(&loop);
        return; /* no io_uring here: the other run covers the queue */
    }
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct probe p[7];
    const char *words[7] = {"one ", "two ", "three ", "four ", "five ", "six ", "seven"};
    done_seq = 0;
    for (int i = 0; i < 7; i++) {
        probe_init(&p[i], &loop, false);
        ev_send_queue(&loop, &p[i].s, sv[0], words[i], (uint32_t)strlen(words[i]));
    }
    ev_send_cancel(&p[1].s);   /* before the flush */
    p[2].cancel = &p[5];       /* during it: made, but its done is not called */
    p[3].finish = &p[4];       /* made already: not made twice */
    ev_sends_flush(&loop);     /* 7 sends > the ring's 4 entries: two batches */
    char buf[128] = "";
    size_t n = read_all(sv[1], buf, sizeof(buf) - 1);
    buf[n] = '\0';
    CHECK(strcmp(buf, "one three four five six seven") == 0);
    CHECK(p[0].calls == 1 && p[0].res == 4 && p[0].order == 1);
    CHECK(p[1].calls == 0 && p[4].calls == 0 && p[5].calls == 0);
    CHECK(p[6].calls == 1 && p[6].res == 5 && p[6].order == 4);
    CHECK(list_empty(&loop.sendq));
    close(sv[0]);
    close(sv[1]);
    ev_loop_free(&loop);
}

TEST(sendq_keeps_order_and_cancels_with_io_uring)
{
    order_and_cancel(true);
}

TEST(sendq_keeps_order_and_cancels_without_io_uring)
{
    order_and_cancel(false);
}

/* A full socket answers -EAGAIN at once (never a wait for room), a nearly full one takes
 * part; prepare hands bytes over at the flush; a done may queue another send. */
static void full_and_prepared(bool ring)
{
    struct ev_loop loop;
    int sv[2];
    if (!loop_open(&loop, ring)) {
        ev_loop_free(&loop);
        return;
    }
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    static char big[1 << 20];
    memset(big, 'x', sizeof(big));
    struct probe fill, more, late, again;
    probe_init(&fill, &loop, false);
    probe_init(&more, &loop, false);
    ev_send_queue(&loop, &fill.s, sv[0], big, sizeof(big));
    ev_send_queue(&loop, &more.s, sv[0], big, sizeof(big));
    ev_sends_flush(&loop);
    CHECK(fill.calls == 1 && fill.res > 0 && fill.res < (ssize_t)sizeof(big));
    CHECK(more.calls == 1 && more.res == -EAGAIN);
    char sink[1 << 16];
    for (int i = 0; i < 1000 && read_all(sv[1], sink, sizeof(sink)) > 0; i++)
        ;
    probe_init(&late, &loop, true);
    probe_init(&again, &loop, false);
    late.requeue = &again;
    ev_send_queue(&loop, &late.s, sv[0], NULL, 0);
    late.late = "set at the flush "; /* after the queueing: prepare reads it */
    ev_sends_flush(&loop);
    char buf[64] = "";
    size_t n = read_all(sv[1], buf, sizeof(buf) - 1);
    buf[n] = '\0';
    CHECK(strcmp(buf, "set at the flush again") == 0);
    CHECK(late.calls == 1 && again.calls == 1 && again.res == 5);
    close(sv[0]);
    close(sv[1]);
    ev_loop_free(&loop);
}

TEST(sendq_full_socket_and_prepared_sends_with_io_uring)
{
    full_and_prepared(true);
}

TEST(sendq_full_socket_and_prepared_sends_without_io_uring)
{
    full_and_prepared(false);
}

/* ev_send_finish makes a queued send at once, without its done; a broken socket's send
 * reports its errno. */
TEST(sendq_finish_and_errors)
{
    struct ev_loop loop;
    int sv[2];
    CHECK(ev_loop_init(&loop) == 0);
    (void)ev_sendq_uring(&loop, 8);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct probe a, b;
    probe_init(&a, &loop, false);
    probe_init(&b, &loop, false);
    ev_send_queue(&loop, &a.s, sv[0], "now", 3);
    ev_send_finish(&a.s);
    char buf[8] = "";
    CHECK(read_all(sv[1], buf, sizeof(buf)) == 3 && memcmp(buf, "now", 3) == 0);
    CHECK(!ev_send_queued(&a.s) && a.calls == 0);
    close(sv[1]);
    ev_send_queue(&loop, &b.s, sv[0], "gone", 4);
    ev_sends_flush(&loop);
    CHECK(b.calls == 1 && b.res == -EPIPE);
    close(sv[0]);
    ev_loop_free(&loop);
}

/* A queued shutdown is made after the turn's sends (the peer reads the bytes, then EOF)
 * and reports 0; ev_send_finish makes a queued one at once. */
static void shutdown_after_sends(bool ring)
{
    struct ev_loop loop;
    int sv[2], sv2[2];
    if (!loop_open(&loop, ring)) {
        ev_loop_free(&loop);
        return;
    }
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
    struct probe shut, data, early;
    probe_init(&shut, &loop, false);
    probe_init(&data, &loop, false);
    probe_init(&early, &loop, false);
    ev_shut_queue(&loop, &shut.s, sv[0]);
    ev_send_queue(&loop, &data.s, sv[0], "last words", 10);
    ev_sends_flush(&loop);
    CHECK(shut.calls == 1 && shut.res == 0 && data.calls == 1 && data.res == 10);
    char buf[32] = "";
    CHECK(read_all(sv[1], buf, sizeof(buf)) == 10 && memcmp(buf, "last words", 10) == 0);
    CHECK(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) == 0); /* EOF, not EAGAIN */
    ev_shut_queue(&loop, &early.s, sv2[0]);
    ev_send_finish(&early.s);
    CHECK(!ev_send_queued(&early.s) && early.calls == 0);
    CHECK(recv(sv2[1], buf, sizeof(buf), MSG_DONTWAIT) == 0);
    for (int i = 0; i < 2; i++) {
        close(sv[i]);
        close(sv2[i]);
    }
    ev_loop_free(&loop);
}

TEST(sendq_shutdown_after_sends_with_io_uring)
{
    shutdown_after_sends(true);
}

TEST(sendq_shutdown_after_sends_without_io_uring)
{
    shutdown_after_sends(false);
}
