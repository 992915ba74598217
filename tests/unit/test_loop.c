/* test_loop.c — the event loop's timer heap, run queue and deferred frees, and the
 * per-worker pools. */
#include <stdlib.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/pool.h"
#include "ev/loop.h"
#include "net/pipe_pool.h"
#include "test.h"

static uint64_t fired_at[64];
static unsigned fired_order[64];
static unsigned nfired;

struct tagged_timer {
    struct ev_timer t;
    unsigned tag;
};

static void record_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct tagged_timer *tt = (struct tagged_timer *)t;
    fired_at[nfired] = loop->now_ms;
    fired_order[nfired++] = tt->tag;
}

TEST(timers_fire_in_deadline_order)
{
    struct ev_loop loop;
    CHECK(ev_loop_init(&loop) == 0);
    struct tagged_timer ts[40];
    uint64_t rng = 42;
    nfired = 0;
    loop.now_ms = 1000;
    for (unsigned i = 0; i < 40; i++) {
        ev_timer_init(&ts[i].t, record_cb);
        ts[i].tag = i;
        CHECK(ev_timer_arm(&loop, &ts[i].t, rng_next(&rng) % 500) == 0);
    }
    /* cancel a few, re-arm a few later and earlier */
    ev_timer_cancel(&loop, &ts[3].t);
    ev_timer_cancel(&loop, &ts[17].t);
    ev_timer_arm(&loop, &ts[5].t, 1000);
    ev_timer_arm(&loop, &ts[6].t, 0);
    CHECK(!ev_timer_armed(&ts[3].t));
    loop.now_ms = 1499;
    ev_timers_run(&loop);
    unsigned before_late = nfired;
    CHECK_EQ_U64(before_late, 37); /* 40 - 2 cancelled - the one moved to +1000 */
    for (unsigned i = 1; i < nfired; i++)
        CHECK(ts[fired_order[i - 1]].t.expire_ms <= ts[fired_order[i]].t.expire_ms);
    CHECK_EQ_U64(fired_order[0], 6);
    loop.now_ms = 2000;
    CHECK(ev_timers_run(&loop) == -1); /* heap now empty */
    CHECK_EQ_U64(nfired, 38);
    CHECK_EQ_U64(fired_order[37], 5);
    ev_loop_free(&loop);
}

TEST(timers_next_deadline)
{
    struct ev_loop loop;
    CHECK(ev_loop_init(&loop) == 0);
    struct tagged_timer t;
    ev_timer_init(&t.t, record_cb);
    loop.now_ms = 500;
    CHECK(ev_timers_run(&loop) == -1);
    ev_timer_arm(&loop, &t.t, 250);
    CHECK(ev_timers_run(&loop) == 250);
    loop.now_ms = 700;
    CHECK(ev_timers_run(&loop) == 50);
    ev_timer_cancel(&loop, &t.t);
    ev_timer_cancel(&loop, &t.t); /* twice is harmless */
    CHECK(ev_timers_run(&loop) == -1);
    ev_loop_free(&loop);
}

static unsigned stress_fired;
static void count_cb(struct ev_loop *loop, struct ev_timer *t)
{
    stress_fired++;
}

TEST(timers_heap_stress_against_model)
{
    enum { N = 2000 };
    struct ev_loop loop;
    CHECK(ev_loop_init(&loop) == 0);
    struct ev_timer *ts = calloc(N, sizeof(*ts));
    bool armed[N] = {0};
    uint64_t rng = 7;
    loop.now_ms = 0;
    stress_fired = 0;
    unsigned expected = 0;
    for (unsigned i = 0; i < N; i++)
        ev_timer_init(&ts[i], count_cb);
    for (unsigned op = 0; op < 20000; op++) {
        unsigned i = (unsigned)(rng_next(&rng) % N);
        if (rng_next(&rng) % 3 == 0) {
            ev_timer_cancel(&loop, &ts[i]);
            armed[i] = false;
        } else {
            ev_timer_arm(&loop, &ts[i], 1 + rng_next(&rng) % 10000);
            armed[i] = true;
        }
    }
    for (unsigned i = 0; i < N; i++)
        expected += armed[i];
    CHECK_EQ_U64(loop.nheap, expected);
    loop.now_ms = 20000;
    ev_timers_run(&loop);
    CHECK_EQ_U64(stress_fired, expected);
    CHECK_EQ_U64(loop.nheap, 0);
    free(ts);
    ev_loop_free(&loop);
}

/* ---- run queue and deferred frees ---- */

struct counted_task {
    struct ev_task t;
    struct ev_loop *loop;
    unsigned runs, requeue; /* requeue: times it queues itself again */
};

static void counted_run(struct ev_task *t)
{
    struct counted_task *c = container_of(t, struct counted_task, t);
    c->runs++;
    if (c->requeue && c->requeue--)
        ev_task_queue(c->loop, t);
}

TEST(tasks_run_once_per_round_and_requeue_for_the_next)
{
    struct ev_loop loop;
    CHECK(ev_loop_init(&loop) == 0);
    struct counted_task a = {.loop = &loop}, b = {.loop = &loop, .requeue = 2}, c = {.loop = &loop};
    ev_task_init(&a.t, counted_run);
    ev_task_init(&b.t, counted_run);
    ev_task_init(&c.t, counted_run);
    ev_task_queue(&loop, &a.t);
    ev_task_queue(&loop, &a.t); /* already queued: runs once */
    ev_task_queue(&loop, &b.t);
    ev_task_queue(&loop, &c.t);
    ev_task_cancel(&c.t);
    ev_tasks_run(&loop);
    CHECK(a.runs == 1 && b.runs == 1 && c.runs == 0);
    CHECK(!list_empty(&loop.runq)); /* b queued itself: the next round */
    ev_tasks_run(&loop);
    ev_tasks_run(&loop);
    CHECK(a.runs == 1 && b.runs == 3);
    CHECK(list_empty(&loop.runq));
    ev_loop_free(&loop);
}

struct counted_obj {
    struct ev_defer d;
    unsigned *freed;
};

static void counted_free(struct ev_defer *d)
{
    struct counted_obj *o = container_of(d, struct counted_obj, d);
    (*o->freed)++;
}

TEST(deferred_frees_wait_for_the_reap)
{
    struct ev_loop loop;
    CHECK(ev_loop_init(&loop) == 0);
    unsigned freed = 0;
    struct counted_obj o[3] = {{.freed = &freed}, {.freed = &freed}, {.freed = &freed}};
    for (unsigned i = 0; i < 3; i++)
        ev_defer_free(&loop, &o[i].d, counted_free);
    CHECK_EQ_U64(freed, 0);
    ev_reap(&loop);
    CHECK_EQ_U64(freed, 3);
    ev_reap(&loop); /* nothing twice */
    CHECK_EQ_U64(freed, 3);
    ev_loop_free(&loop);
}

TEST(pool_reuses_and_bounds_free_list)
{
    struct pool p;
    pool_init(&p, sizeof(struct relay_buf), 2);
    void *a = pool_get(&p), *b = pool_get(&p), *c = pool_get(&p);
    CHECK(a && b && c);
    CHECK_EQ_U64(p.allocated, 3);
    pool_put(&p, a);
    pool_put(&p, b);
    pool_put(&p, c); /* over max_free: returned to the system */
    CHECK_EQ_U64(p.nfree, 2);
    CHECK_EQ_U64(p.allocated, 0);
    void *d = pool_get(&p);
    CHECK(d == b); /* LIFO: the most recently freed, still warm in cache */
    pool_put(&p, d);
    pool_destroy(&p);
    CHECK_EQ_U64(p.nfree, 0);
}

TEST(pipe_pool_reuses_pipes)
{
    struct pipe_pool pp;
    CHECK(pipe_pool_init(&pp, 1, 0) == 0);
    struct pipe_pair a, b;
    CHECK(pipe_pool_get(&pp, &a) == 0);
    CHECK(pipe_pool_get(&pp, &b) == 0);
    CHECK_EQ_U64(pp.created, 2);
    CHECK(write(a.wr, "x", 1) == 1);
    char c;
    CHECK(read(a.rd, &c, 1) == 1);
    pipe_pool_put(&pp, a);
    pipe_pool_put(&pp, b); /* pool holds 1: this one is closed */
    struct pipe_pair again;
    CHECK(pipe_pool_get(&pp, &again) == 0);
    CHECK(again.rd == a.rd && again.wr == a.wr);
    CHECK_EQ_U64(pp.created, 2);
    pipe_close(again);
    pipe_pool_destroy(&pp);
}

static unsigned rearm_calls;

static void rearm_now_cb(struct ev_loop *loop, struct ev_timer *t)
{
    rearm_calls++;
    CHECK(ev_timer_arm(loop, t, 0) == 0); /* due again at once */
}

/* A timer that its callback re-arms for "now" runs once per ev_timers_run (again after the
 * turn's tasks and sends), and the other timers due still run in that call. */
TEST(timers_rearmed_for_now_wait_for_the_next_run)
{
    struct ev_loop loop;
    CHECK(ev_loop_init(&loop) == 0);
    loop.now_ms = 1000;
    struct ev_timer a, b;
    ev_timer_init(&a, rearm_now_cb);
    ev_timer_init(&b, rearm_now_cb);
    CHECK(ev_timer_arm(&loop, &a, 0) == 0);
    CHECK(ev_timer_arm(&loop, &b, 0) == 0);
    rearm_calls = 0;
    CHECK(ev_timers_run(&loop) == 0); /* both due again: poll without sleeping */
    CHECK(rearm_calls == 2);
    CHECK(ev_timers_run(&loop) == 0);
    CHECK(rearm_calls == 4);
    ev_timer_cancel(&loop, &a);
    ev_timer_cancel(&loop, &b);
    ev_loop_free(&loop);
}
