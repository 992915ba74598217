/* loop.h — one epoll event loop per thread, with a binary-heap timer queue.
 *
 * Every fd is registered once, edge-triggered, for both directions (EPOLLIN | EPOLLOUT |
 * EPOLLRDHUP | EPOLLET): the owner keeps its own readiness flags, so no epoll_ctl(MOD) is
 * ever needed on the data path. A loop, its handlers and its timers belong to one thread.
 * Only ev_loop_wake() may be called from another thread.
 */
#ifndef STRATA_EV_LOOP_H
#define STRATA_EV_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "core/list.h"

struct ev_loop;
struct ev_handler;
struct io_uring;

/* Called with the epoll event mask (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP). */
typedef void (*ev_io_cb)(struct ev_loop *loop, struct ev_handler *h, uint32_t events);

struct ev_handler {
    int fd;
    ev_io_cb cb;
};

struct ev_timer;
typedef void (*ev_timer_cb)(struct ev_loop *loop, struct ev_timer *t);

struct ev_timer {
    uint64_t expire_ms; /* absolute, on the mono_ms clock */
    uint32_t heap_idx;  /* 0 = not armed; else position + 1 in the heap */
    uint32_t fired_run; /* the loop's timers_run it last fired in */
    ev_timer_cb cb;
};

/* Deferred work: a task queued on a loop runs once, after the current batch of events and
 * timers (a session that has used its budget yields this way, a retry waits for the batch
 * to end). Queueing a task already queued does nothing. A task may queue itself again: it
 * then runs in the next round, after the loop has polled (without sleeping). */
struct ev_task {
    struct list link; /* loop->runq while queued, else self-linked */
    void (*run)(struct ev_task *t);
};

/* Deferred free: an object closed during a batch is handed to the loop, which calls
 * free_fn after the batch's tasks have run, because a later event of the same batch may
 * still point at it. The object must not be queued again until freed. */
struct ev_defer {
    struct list link; /* loop->dead */
    void (*free_fn)(struct ev_defer *d);
};

struct ev_loop {
    int epfd;
    int wakefd; /* eventfd: another thread's ev_loop_wake() */
    struct ev_handler wake_handler;
    void (*on_wake)(struct ev_loop *loop); /* run in the loop thread after a wake */
    /* Run once per iteration, after the events of the previous batch, the timers due, the
     * queued tasks and the queued sends, before the deferred frees and sleeping. */
    void (*after_events)(struct ev_loop *loop);
    uint64_t now_ms; /* cached at each loop iteration */
    struct ev_timer **heap;
    uint32_t nheap, heap_cap;
    uint32_t timers_run; /* ev_timers_run calls so far */
    struct list runq; /* struct ev_task: run after the batch; poll without sleeping */
    struct list dead; /* struct ev_defer: freed after the batch */
    struct list sendq;        /* struct ev_send (ev/sendq.h): made before polling */
    struct io_uring *uring;   /* the sends' ring; NULL: send(2) one by one */
    unsigned uring_entries;
    bool stop;
    void *owner; /* the worker or control thread that runs this loop */
};

/* 0, or -1 (errno) with loop->epfd -1. */
int ev_loop_init(struct ev_loop *loop);
void ev_loop_free(struct ev_loop *loop);

/* Runs until loop->stop is set (by a callback). */
void ev_loop_run(struct ev_loop *loop);

/* Thread-safe: makes the loop call on_wake soon. */
void ev_loop_wake(struct ev_loop *loop);

/* Registers h->fd edge-triggered for in, out and rdhup. Returns 0 or -1 (errno). */
int ev_add(struct ev_loop *loop, struct ev_handler *h);
/* Points h->fd's registration (made by ev_add for another handler) at h. */
int ev_rebind(struct ev_loop *loop, struct ev_handler *h);
/* Registers h->fd level-triggered for input only (listening sockets, admin). */
int ev_add_level_in(struct ev_loop *loop, struct ev_handler *h);
void ev_del(struct ev_loop *loop, struct ev_handler *h);

static inline void ev_timer_init(struct ev_timer *t, ev_timer_cb cb)
{
    t->expire_ms = 0;
    t->heap_idx = 0;
    t->fired_run = 0;
    t->cb = cb;
}
static inline bool ev_timer_armed(const struct ev_timer *t)
{
    return t->heap_idx != 0;
}

/* (Re)arms t to fire at now + ms. Returns 0, or -1 if the heap cannot grow. */
int ev_timer_arm(struct ev_loop *loop, struct ev_timer *t, uint64_t ms);
/* (Re)arms t to fire at an absolute time. */
int ev_timer_arm_at(struct ev_loop *loop, struct ev_timer *t, uint64_t at_ms);
void ev_timer_cancel(struct ev_loop *loop, struct ev_timer *t);

static inline void ev_task_init(struct ev_task *t, void (*run)(struct ev_task *t))
{
    list_init(&t->link);
    t->run = run;
}
/* Queues t to run after the current batch (once, however often it is queued). */
void ev_task_queue(struct ev_loop *loop, struct ev_task *t);
/* Takes t off the queue if it is on it. */
static inline void ev_task_cancel(struct ev_task *t)
{
    list_del(&t->link);
}
/* Runs the tasks queued before this call (those they queue run at the next call). */
void ev_tasks_run(struct ev_loop *loop);

/* Calls free_fn(d) after the current batch (see struct ev_defer). */
void ev_defer_free(struct ev_loop *loop, struct ev_defer *d, void (*free_fn)(struct ev_defer *d));
/* Frees what was deferred so far: run by the loop after each batch, and by an owner that
 * closed objects outside the loop (when stopping) before it frees their pools. */
void ev_reap(struct ev_loop *loop);

/* Pops and runs every timer due at or before now_ms, each once: one that its callback
 * re-arms for now runs again at the next call (after the turn's tasks and sends, which may
 * be the progress it waits for). Returns ms until the next, or -1 (0: one is due). */
int ev_timers_run(struct ev_loop *loop);

#endif
