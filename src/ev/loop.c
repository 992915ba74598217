/* loop.c — see loop.h. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/time.h"
#include "ev/sendq.h"

#define EV_BATCH 256

static void wake_cb(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    (void)events;
    uint64_t v;
    while (read(h->fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
    if (loop->on_wake)
        loop->on_wake(loop);
}

int ev_loop_init(struct ev_loop *loop)
{
    *loop = (struct ev_loop){0};
    list_init(&loop->runq);
    list_init(&loop->dead);
    list_init(&loop->sendq);
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return -1;
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0)
        goto fail_ep;
    loop->wake_handler.fd = loop->wakefd;
    loop->wake_handler.cb = wake_cb;
    if (ev_add_level_in(loop, &loop->wake_handler) < 0)
        goto fail_wake;
    loop->now_ms = mono_ms();
    return 0;
fail_wake:
    close(loop->wakefd);
fail_ep:
    close(loop->epfd);
    loop->epfd = -1; /* ev_loop_free and owners can tell a loop that never started */
    return -1;
}

void ev_loop_free(struct ev_loop *loop)
{
    BUG_ON(!list_empty(&loop->dead)); /* the owner reaps before freeing what they point to */
    ev_sendq_free(loop);
    close(loop->wakefd);
    close(loop->epfd);
    free(loop->heap);
    loop->heap = NULL;
}

void ev_loop_wake(struct ev_loop *loop)
{
    uint64_t one = 1;
    ssize_t w = write(loop->wakefd, &one, sizeof(one));
    (void)w; /* EAGAIN means a wake is already pending */
}

static int ctl_add(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = h};
    return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, h->fd, &ev);
}

int ev_add(struct ev_loop *loop, struct ev_handler *h)
{
    return ctl_add(loop, h, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
}

int ev_rebind(struct ev_loop *loop, struct ev_handler *h)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = h};
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, h->fd, &ev);
}

int ev_add_level_in(struct ev_loop *loop, struct ev_handler *h)
{
    return ctl_add(loop, h, EPOLLIN);
}

void ev_del(struct ev_loop *loop, struct ev_handler *h)
{
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, h->fd, NULL);
}

/* ---- deferred work and deferred frees ---- */

void ev_task_queue(struct ev_loop *loop, struct ev_task *t)
{
    if (list_empty(&t->link))
        list_add_tail(&loop->runq, &t->link);
}

void ev_tasks_run(struct ev_loop *loop)
{
    if (list_empty(&loop->runq))
        return;
    /* Detach the queue first: a task queued now runs at the next call. */
    struct list q = loop->runq;
    q.next->prev = &q;
    q.prev->next = &q;
    list_init(&loop->runq);
    while (!list_empty(&q)) {
        struct ev_task *t = list_entry(q.next, struct ev_task, link);
        list_del(&t->link);
        t->run(t);
    }
}

void ev_defer_free(struct ev_loop *loop, struct ev_defer *d, void (*free_fn)(struct ev_defer *d))
{
    d->free_fn = free_fn;
    list_add_tail(&loop->dead, &d->link);
}

void ev_reap(struct ev_loop *loop)
{
    while (!list_empty(&loop->dead)) {
        struct ev_defer *d = list_entry(loop->dead.next, struct ev_defer, link);
        list_del(&d->link);
        d->free_fn(d);
    }
}

/* ---- timer heap: a min-heap on expire_ms; heap_idx is position + 1 ---- */

static void heap_set(struct ev_loop *loop, uint32_t i, struct ev_timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i + 1;
}

static void heap_up(struct ev_loop *loop, uint32_t i)
{
    struct ev_timer *t = loop->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (loop->heap[parent]->expire_ms <= t->expire_ms)
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct ev_loop *loop, uint32_t i)
{
    struct ev_timer *t = loop->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= loop->nheap)
            break;
        if (c + 1 < loop->nheap && loop->heap[c + 1]->expire_ms < loop->heap[c]->expire_ms)
            c++;
        if (t->expire_ms <= loop->heap[c]->expire_ms)
            break;
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, t);
}

static void heap_remove(struct ev_loop *loop, struct ev_timer *t)
{
    uint32_t i = t->heap_idx - 1;
    BUG_ON(i >= loop->nheap || loop->heap[i] != t);
    t->heap_idx = 0;
    loop->nheap--;
    if (i == loop->nheap)
        return;
    struct ev_timer *last = loop->heap[loop->nheap];
    heap_set(loop, i, last);
    if (i > 0 && loop->heap[(i - 1) / 2]->expire_ms > last->expire_ms)
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

int ev_timer_arm_at(struct ev_loop *loop, struct ev_timer *t, uint64_t at_ms)
{
    if (t->heap_idx) {
        uint64_t old = t->expire_ms;
        t->expire_ms = at_ms;
        if (at_ms < old)
            heap_up(loop, t->heap_idx - 1);
        else
            heap_down(loop, t->heap_idx - 1);
        return 0;
    }
    if (loop->nheap == loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct ev_timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            return -1;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->expire_ms = at_ms;
    loop->heap[loop->nheap] = t;
    loop->nheap++;
    heap_up(loop, loop->nheap - 1);
    return 0;
}

int ev_timer_arm(struct ev_loop *loop, struct ev_timer *t, uint64_t ms)
{
    return ev_timer_arm_at(loop, t, loop->now_ms + ms);
}

void ev_timer_cancel(struct ev_loop *loop, struct ev_timer *t)
{
    if (t->heap_idx)
        heap_remove(loop, t);
}

/* Milliseconds until the first timer is due: 0 if overdue, -1 if none (capped at 60 s). */
static int next_timeout(const struct ev_loop *loop)
{
    if (loop->nheap == 0)
        return -1;
    uint64_t next = loop->heap[0]->expire_ms;
    if (next <= loop->now_ms)
        return 0;
    return next - loop->now_ms > 60000 ? 60000 : (int)(next - loop->now_ms);
}

int ev_timers_run(struct ev_loop *loop)
{
    uint32_t run = ++loop->timers_run;
    while (loop->nheap > 0) {
        struct ev_timer *t = loop->heap[0];
        if (t->expire_ms > loop->now_ms || t->fired_run == run)
            break; /* not due, or fired already in this run and re-armed for now */
        heap_remove(loop, t);
        t->fired_run = run;
        t->cb(loop, t);
    }
    return next_timeout(loop);
}

void ev_loop_run(struct ev_loop *loop)
{
    struct epoll_event evs[EV_BATCH];
    while (!loop->stop) {
        loop->now_ms = mono_ms();
        ev_timers_run(loop);
        /* After the previous batch's events and this round's timers, before sleeping. */
        ev_tasks_run(loop);
        /* The turn's sends, then after_events: it writes the log lines of the exchanges
         * that the sends completed. */
        ev_sends_flush(loop);
        if (loop->after_events)
            loop->after_events(loop);
        ev_reap(loop);
        if (loop->stop)
            break;
        bool idle = list_empty(&loop->runq) && list_empty(&loop->sendq);
        int timeout = idle ? next_timeout(loop) : 0;
        int n = epoll_wait(loop->epfd, evs, EV_BATCH, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_err("epoll_wait: %m");
            break;
        }
        loop->now_ms = mono_ms();
        for (int i = 0; i < n; i++) {
            struct ev_handler *h = evs[i].data.ptr;
            h->cb(loop, h, evs[i].events);
        }
    }
}
