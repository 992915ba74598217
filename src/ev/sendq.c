/* sendq.c — see sendq.h. */
#include "sendq.h"

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "ev/loop.h"

/* Rounds of sends queued by done callbacks that one flush makes before the loop polls. */
#define FLUSH_ROUNDS 4
/* res of a send not made yet. */
#define RES_PENDING INT64_MIN

void ev_send_queue(struct ev_loop *loop, struct ev_send *s, int fd, const void *buf, uint32_t len)
{
    BUG_ON(ev_send_queued(s));
    s->fd = fd;
    s->buf = buf;
    s->len = len;
    s->op = EV_SEND;
    s->res = RES_PENDING;
    list_add_tail(&loop->sendq, &s->link);
}

void ev_shut_queue(struct ev_loop *loop, struct ev_send *s, int fd)
{
    BUG_ON(s->prepare);
    ev_send_queue(loop, s, fd, NULL, 0);
    s->op = EV_SHUT_WR;
}

int ev_sendq_uring(struct ev_loop *loop, unsigned entries)
{
    struct io_uring *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    int rc = io_uring_queue_init(entries, r, 0);
    if (rc < 0) {
        free(r);
        errno = -rc;
        return -1;
    }
    loop->uring = r;
    loop->uring_entries = entries;
    return 0;
}

static void uring_drop(struct ev_loop *loop)
{
    io_uring_queue_exit(loop->uring);
    free(loop->uring);
    loop->uring = NULL;
}

void ev_sendq_free(struct ev_loop *loop)
{
    BUG_ON(!list_empty(&loop->sendq)); /* owners cancel before closing their fds */
    if (loop->uring)
        uring_drop(loop);
}

/* Takes the completions posted so far; returns how many. */
static unsigned reap(struct io_uring *r)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(r, head, cqe)
    {
        ((struct ev_send *)io_uring_cqe_get_data(cqe))->res = cqe->res;
        n++;
    }
    io_uring_cq_advance(r, n);
    return n;
}

/* Makes up to the ring's size of the sends from p on, in one io_uring_enter; returns the
 * first not taken. MSG_DONTWAIT makes io_uring complete each at once (sent, or -EAGAIN)
 * instead of waiting for room: every completion is posted before the call returns, so
 * the wait below does not sleep and no buffer is used after the flush. */
static struct list *send_ring(struct ev_loop *loop, struct list *p, const struct list *q)
{
    struct io_uring *r = loop->uring;
    unsigned n = 0;
    for (; p != q && n < loop->uring_entries; p = p->next) {
        struct ev_send *s = list_entry(p, struct ev_send, link);
        if (s->res != RES_PENDING || s->op != EV_SEND)
            continue;
        n++;
        struct io_uring_sqe *sqe = io_uring_get_sqe(r);
        io_uring_prep_send(sqe, s->fd, s->buf, s->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        io_uring_sqe_set_data(sqe, s);
    }
    int rc = io_uring_submit_and_wait(r, n);
    unsigned got = 0;
    for (;;) {
        got += reap(r);
        if (got >= n)
            return p;
        if (rc < 0 && rc != -EINTR)
            break;
        struct io_uring_cqe *cqe;
        rc = io_uring_wait_cqe(r, &cqe);
    }
    /* The ring refused the batch: the sends not made go by send(2) from now on. */
    log_warn("io_uring refused a batch of sends (%s): this worker sends one by one from now",
             strerror(-rc));
    uring_drop(loop);
    return p;
}

static void send_now(struct ev_send *s)
{
    ssize_t n = s->op == EV_SHUT_WR ? shutdown(s->fd, SHUT_WR)
                                    : send(s->fd, s->buf, s->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    s->res = n < 0 ? -errno : n;
}

void ev_send_finish(struct ev_send *s)
{
    if (!ev_send_queued(s))
        return;
    list_del(&s->link);
    if (s->res != RES_PENDING)
        return; /* made by the flush in progress, its done not called yet */
    if (s->prepare)
        s->prepare(s);
    if (s->len || s->op == EV_SHUT_WR)
        send_now(s);
}

/* Makes every send on q: through the ring while there is one, else one by one; then the
 * shutdowns, one by one (io_uring would make them in a worker thread: a wake-up and a
 * wait for each). Made last in the turn, a FIN that wakes a peer sharing our CPU lets the
 * scheduler switch to it when the worker is about to sleep anyway, not in mid-turn. */
static void make_sends(struct ev_loop *loop, struct list *q)
{
    struct list *p;
    for (p = q->next; p != q; p = p->next) {
        struct ev_send *s = list_entry(p, struct ev_send, link);
        if (s->prepare)
            s->prepare(s);
        if (!s->len && s->op == EV_SEND)
            s->res = 0;
    }
    for (p = q->next; p != q && loop->uring;)
        p = send_ring(loop, p, q);
    for (int op = EV_SEND; op <= EV_SHUT_WR; op++)
        for (p = q->next; p != q; p = p->next) {
            struct ev_send *s = list_entry(p, struct ev_send, link);
            if (s->res == RES_PENDING && s->op == op)
                send_now(s);
        }
}

void ev_sends_flush(struct ev_loop *loop)
{
    for (int round = 0; round < FLUSH_ROUNDS && !list_empty(&loop->sendq); round++) {
        /* Take the queue: what the callbacks queue waits for the next round. */
        struct list q = loop->sendq;
        q.next->prev = &q;
        q.prev->next = &q;
        list_init(&loop->sendq);
        make_sends(loop, &q);
        while (!list_empty(&q)) { /* a callback may cancel a later send: it is skipped */
            struct ev_send *s = list_entry(q.next, struct ev_send, link);
            list_del(&s->link);
            s->done(s, s->res);
        }
    }
}
