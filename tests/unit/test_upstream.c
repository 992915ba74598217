/* test_upstream.c — the upstream layer (src/upstream/): the failure classifier, the
 * attempt bookkeeping (tries, exclusion, reserved units, counters, passive health), real
 * non-blocking connects on loopback, and pool leases. Backends are built by hand.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev/worker.h"
#include "lb/lb.h"
#include "test.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

/* A round-robin backend of n servers on 127.0.0.1 (port 1 + i), all up. */
static struct backend *mk_backend(uint32_t n, uint32_t passive_fall)
{
    struct backend *b = calloc(1, sizeof(*b));
    b->name = "up";
    b->balance = BAL_ROUND_ROBIN;
    b->servers = calloc(n, sizeof(*b->servers));
    b->nservers = n;
    b->passive.fall = passive_fall;
    b->connect_timeout_ms = 1000;
    b->pool_max_idle = 4;
    b->pool_idle_timeout_ms = 10000;
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &b->servers[i];
        s->name = "s";
        s->index = s->gid = i;
        s->backend = b;
        s->addr.u.in.sin_family = AF_INET;
        s->addr.u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        s->addr.u.in.sin_port = htons((uint16_t)(1 + i));
        s->addr.len = sizeof(s->addr.u.in);
        s->st.ctr = calloc(1, sizeof(*s->st.ctr));
        if (!(s->st.live = calloc(1, sizeof(*s->st.live))))
            abort();
        atomic_store(&s->st.live->up, true);
    }
    b->lb_ops = lb_ops_for(b->balance);
    if (lb_backend_init(b, 1) < 0)
        abort();
    return b;
}

static void free_backend(struct backend *b)
{
    lb_backend_free(b);
    for (uint32_t i = 0; i < b->nservers; i++) {
        free(b->servers[i].st.ctr);
        free(b->servers[i].st.live);
    }
    free(b->servers);
    free(b);
}

static struct worker *mk_worker(bool with_loop)
{
    struct worker *w = calloc(1, sizeof(*w));
    w->loop.now_ms = 1000;
    w->loop.epfd = -1;
    if (with_loop && ev_loop_init(&w->loop) < 0)
        abort();
    return w;
}

static void free_worker(struct worker *w)
{
    if (w->loop.epfd >= 0)
        ev_loop_free(&w->loop);
    free(w);
}

/* What each test needs: a backend, a worker, an attempt on them. */
struct fx {
    struct backend *b;
    struct worker *w;
    struct up_attempt a;
};

static struct up_attempt *fx_start(struct fx *f, uint32_t nservers, uint32_t passive_fall,
                                   uint32_t tries, bool with_loop)
{
    f->b = mk_backend(nservers, passive_fall);
    f->w = mk_worker(with_loop);
    upstream_attempt_init(&f->a, f->b, tries, NULL);
    return &f->a;
}

static void fx_end(struct fx *f)
{
    free_worker(f->w);
    free_backend(f->b);
}

TEST(upstream_classify_local_shortage_vs_server_fault)
{
    static const int local[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL, EAGAIN};
    static const int server[] = {ECONNREFUSED, ETIMEDOUT,    EHOSTUNREACH, ECONNRESET,
                                 ENETUNREACH,  ECONNABORTED, EPROTO,       0};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        CHECK(upstream_classify(local[i]) == UP_FAULT_LOCAL);
    for (size_t i = 0; i < sizeof(server) / sizeof(server[0]); i++)
        CHECK(upstream_classify(server[i]) == UP_FAULT_SERVER);
}

TEST(upstream_attempt_server_fault_counts_excludes_and_spends_budget)
{
    struct fx f;
    struct up_attempt *a = fx_start(&f, 3, 1, 2, false);
    struct worker *w = f.w;
    struct server *s1 = upstream_pick(a, w, NULL);
    CHECK(s1 != NULL && a->server == s1 && a->tries == 1);
    CHECK_EQ_U64(atomic_load(&s1->st.live->active), 1);
    CHECK(upstream_failed(a, w, ECONNREFUSED, NULL) == UP_TRY_NEXT);
    CHECK(a->server == NULL && a->err == ECONNREFUSED);
    CHECK_EQ_U64(atomic_load(&s1->st.live->active), 0);
    CHECK_EQ_U64(s1->st.ctr[0].connect_errors, 1);
    CHECK(!atomic_load(&s1->st.live->up)); /* passive fall 1: reported exactly once, down */
    CHECK_EQ_U64(atomic_load(&s1->st.live->connect_fails), 1);
    atomic_store(&s1->st.live->up, true); /* up again: the exclusion alone must keep it out */
    struct server *s2 = upstream_pick(a, w, NULL);
    CHECK(s2 != NULL && s2 != s1 && a->tries == 2);
    CHECK(upstream_failed(a, w, ETIMEDOUT, "timed out") == UP_SPENT);
    CHECK(a->why != NULL && strcmp(a->why, "timed out") == 0);
    CHECK(upstream_exhausted(a));
    CHECK(upstream_pick(a, w, NULL) == NULL);
    CHECK_EQ_U64(atomic_load(&s2->st.live->active), 0);
    upstream_refund_try(a); /* a stale pooled connection: one try given back */
    struct server *s3 = upstream_pick(a, w, NULL);
    CHECK(s3 != NULL && s3 != s1 && s3 != s2);
    upstream_release(a);
    upstream_release(a); /* idempotent */
    CHECK_EQ_U64(atomic_load(&s3->st.live->active), 0);
    fx_end(&f);
}

TEST(upstream_attempt_local_shortage_blames_nobody)
{
    struct fx f;
    struct up_attempt *a = fx_start(&f, 2, 1, 3, false);
    struct worker *w = f.w;
    struct server *s = upstream_pick(a, w, NULL);
    CHECK(upstream_failed(a, w, EADDRNOTAVAIL, NULL) == UP_SHORTAGE);
    CHECK(a->server == NULL && a->req.nexclude == 0);
    CHECK_EQ_U64(atomic_load(&s->st.live->active), 0);
    CHECK_EQ_U64(s->st.ctr[0].connect_errors, 0);
    CHECK_EQ_U64(atomic_load(&s->st.live->connect_fails), 0);
    CHECK(atomic_load(&s->st.live->up));
    CHECK(upstream_pick(a, w, NULL) != NULL);
    CHECK(upstream_failed(a, w, EAGAIN, NULL) == UP_SHORTAGE);
    fx_end(&f);
}

TEST(upstream_pick_prefers_and_reports_no_server)
{
    struct fx f;
    struct up_attempt *a = fx_start(&f, 3, 0, 0, false);
    struct backend *b = f.b;
    struct worker *w = f.w;
    CHECK(a->max_tries == 1);
    CHECK(upstream_pick(a, w, &b->servers[2]) == &b->servers[2]);
    upstream_fault(a, w, false); /* e.g. a 5xx already reported: excluded, not reported */
    CHECK(a->req.nexclude == 1 && a->req.exclude[0] == &b->servers[2]);
    upstream_attempt_init(a, b, 3, NULL);
    for (uint32_t i = 0; i < b->nservers; i++)
        atomic_store(&b->servers[i].st.live->up, false);
    CHECK(upstream_pick(a, w, &b->servers[0]) == NULL);
    CHECK(a->tries == 0 && !upstream_exhausted(a)); /* no_server, not connect_failed */
    fx_end(&f);
}

/* A listening socket on 127.0.0.1 with a kernel-chosen port. */
static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 8) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        abort();
    *port = ntohs(sin.sin_port);
    return fd;
}

/* Waits for an event on c and drives the connect one step. */
static enum up_connect wait_step(struct up_attempt *a, struct worker *w, struct conn *c)
{
    struct epoll_event ev;
    for (int i = 0; i < 50; i++) {
        int n = epoll_wait(w->loop.epfd, &ev, 1, 100);
        if (n <= 0)
            continue;
        conn_note_events(c, ev.events);
        enum up_connect r = upstream_connect_step(a, w, c, ev.events);
        if (r != UP_CONNECT_PENDING)
            return r;
    }
    return UP_CONNECT_PENDING;
}

static void no_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
}

TEST(upstream_connect_completes_and_refused_is_the_servers_fault)
{
    struct fx f;
    struct up_attempt *a = fx_start(&f, 1, 0, 2, true);
    struct backend *b = f.b;
    struct worker *w = f.w;
    uint16_t port;
    int lfd = listen_any(&port);
    b->servers[0].addr.u.in.sin_port = htons(port);
    struct conn c;
    struct ev_timer t;
    ev_timer_init(&t, NULL);
    CHECK(upstream_pick(a, w, NULL) == &b->servers[0]);
    enum up_connect r = upstream_connect(a, w, &c, no_io, &t);
    CHECK(c.xprt == &xprt_plain && c.h.fd >= 0 && ev_timer_armed(&t));
    if (r == UP_CONNECT_PENDING)
        r = wait_step(a, w, &c);
    CHECK(r == UP_CONNECT_DONE && a->phase == UP_IDLE);
    CHECK_EQ_U64(b->servers[0].st.ctr[0].conns_total, 1);
    ev_timer_cancel(&w->loop, &t);
    c.xprt->close(&c);
    upstream_release(a);

    close(lfd); /* nobody listens there now: refused */
    CHECK(upstream_pick(a, w, NULL) == &b->servers[0]);
    r = upstream_connect(a, w, &c, no_io, NULL);
    if (r == UP_CONNECT_PENDING)
        r = wait_step(a, w, &c);
    CHECK(r == UP_CONNECT_FAILED && a->err == ECONNREFUSED);
    if (c.h.fd >= 0)
        c.xprt->close(&c);
    CHECK(upstream_failed(a, w, a->err, a->why) == UP_SPENT);
    CHECK_EQ_U64(b->servers[0].st.ctr[0].connect_errors, 1);
    CHECK_EQ_U64(b->servers[0].st.ctr[0].conns_total, 1);
    fx_end(&f);
}

static void owner_io(struct upconn *uc, uint32_t events)
{
}

/* A lease on a new connection to server i, connected. */
static struct upconn *connected_lease(struct worker *w, struct up_attempt *a, struct backend *b,
                                      uint32_t i)
{
    bool reused;
    upstream_attempt_init(a, b, 1, NULL);
    if (!upstream_pick(a, w, &b->servers[i]))
        return NULL;
    struct upconn *uc = upstream_acquire(w, a, &reused, owner_io, true, &reused);
    while (uc && uc->connecting) {
        struct epoll_event ev;
        if (epoll_wait(w->loop.epfd, &ev, 1, 1000) != 1) {
            upstream_lease_end(w, uc, false);
            upstream_release(a);
            return NULL;
        }
        struct upconn *u = container_of(ev.data.ptr, struct upconn, c.h);
        conn_note_events(&u->c, ev.events);
        upstream_conn_step(w, a, u, ev.events);
    }
    upstream_release(a);
    return uc;
}

/* Connections whose requests end together all stay pooled, up to max_idle and never
 * beyond the server's max_connections. */
TEST(upstream_pool_keeps_idle_up_to_the_server_limit)
{
    struct fx f;
    struct up_attempt *a = fx_start(&f, 1, 0, 1, true);
    struct backend *b = f.b;
    struct worker *w = f.w;
    struct config cfg = {.backends = b, .nbackends = 1};
    CHECK(upool_init(&w->upool, &cfg) == 0);
    w->cfg = &cfg; /* the generation the pool is keyed for */
    uint16_t port;
    int lfd = listen_any(&port);
    b->servers[0].addr.u.in.sin_port = htons(port);
    b->pool_max_idle = 3;
    struct upconn *uc[5];
    int accepted[10], nacc = 0; /* accepted as they come: the backlog is 8 */
    for (int i = 0; i < 5; i++) {
        uc[i] = connected_lease(w, a, b, 0);
        CHECK(uc[i] != NULL && !uc[i]->connecting);
        accepted[nacc++] = accept(lfd, NULL, NULL);
    }
    b->servers[0].max_conns = 2; /* tighter than max_idle */
    for (int i = 0; i < 5; i++)
        if (uc[i])
            upstream_lease_end(w, uc[i], true);
    CHECK_EQ_U64(w->upool.navail[0], 2);
    b->servers[0].max_conns = 0;
    for (int i = 0; i < 5; i++) {
        uc[i] = connected_lease(w, a, b, 0);
        accepted[nacc++] = accept(lfd, NULL, NULL);
    }
    for (int i = 0; i < 5; i++)
        if (uc[i])
            upstream_lease_end(w, uc[i], true);
    CHECK_EQ_U64(w->upool.navail[0], 3); /* max_idle */
    upool_free(&w->upool, w);
    w->cfg = NULL;
    for (int i = 0; i < nacc; i++)
        if (accepted[i] >= 0)
            close(accepted[i]);
    close(lfd);
    fx_end(&f);
}

TEST(upstream_pool_leases_reuse_by_key)
{
    struct fx f;
    struct up_attempt *a = fx_start(&f, 2, 0, 1, true);
    struct backend *b = f.b;
    struct worker *w = f.w;
    struct config cfg = {.backends = b, .nbackends = 1};
    CHECK(upool_init(&w->upool, &cfg) == 0);
    w->cfg = &cfg; /* the generation the pool is keyed for */
    CHECK(w->upool.nkeys == 2 * UP_XPRT_KINDS);
    uint16_t port;
    int lfd = listen_any(&port);
    b->servers[0].addr.u.in.sin_port = htons(port);
    b->servers[1].addr = b->servers[0].addr; /* same address, another server: another key */
    CHECK(upstream_pick(a, w, &b->servers[0]) != NULL);
    bool reused = true;
    struct upconn *uc = upstream_acquire(w, a, &reused, owner_io, false, &reused);
    CHECK(uc != NULL && !reused && uc->active_streams == 1 && uc->max_streams == 1);
    CHECK(uc->key.server == 0 && uc->key.xprt == UP_XPRT_PLAIN);
    if (uc->connecting) {
        struct epoll_event ev;
        CHECK(epoll_wait(w->loop.epfd, &ev, 1, 1000) == 1);
        conn_note_events(&uc->c, ev.events);
        CHECK(upstream_conn_step(w, a, uc, ev.events) == UP_CONNECT_DONE);
    }
    CHECK(!uc->connecting);
    upstream_lease_end(w, uc, true); /* parked */
    CHECK(uc->active_streams == 0 && uc->owner == NULL && w->upool.navail[0] == 1);
    upstream_release(a);

    upstream_attempt_init(a, b, 1, NULL);
    CHECK(upstream_pick(a, w, &b->servers[1]) == &b->servers[1]);
    struct upconn *other = upstream_acquire(w, a, &reused, owner_io, true, &reused);
    CHECK(other != NULL && other != uc && !reused); /* fresh_only, and another key anyway */
    upstream_lease_end(w, other, false);            /* closed */
    upstream_release(a);

    upstream_attempt_init(a, b, 1, NULL);
    CHECK(upstream_pick(a, w, &b->servers[0]) != NULL);
    struct upconn *again = upstream_acquire(w, a, &reused, owner_io, false, &reused);
    CHECK(again == uc && reused && uc->requests == 2 && w->upool.navail[0] == 0);
    upstream_lease_end(w, again, false);
    upstream_release(a);
    upool_free(&w->upool, w);
    w->cfg = NULL;
    close(lfd);
    fx_end(&f);
}
