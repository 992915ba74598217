/* test_h2_up.c — what HTTP/2 to servers adds below the codec: a pooled connection shared by
 * several leases under a multiplexing owner (upstream_set_mux, upstream_set_max_streams,
 * the owner's close hook), and the backend keys `protocol` and `h2` with their defaults.
 * The codec itself (h2_upstream.c) is exercised end to end (tests/e2e/test_h2_upstream.py).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "ev/worker.h"
#include "lb/lb.h"
#include "test.h"
#include "upstream/pool.h"
#include "upstream/upstream.h"

static int nclosed;

static void mux_io(struct upconn *uc, uint32_t events)
{
}

static void mux_closed(struct upconn *uc)
{
    nclosed++;
}

/* One server (listening on loopback, never accepting) in a round-robin backend. */
struct mfx {
    struct backend b;
    struct server s;
    struct server_live live;
    struct server_counters ctr;
    struct worker w;
    struct config cfg; /* the generation the worker serves */
    struct up_attempt a;
    int lfd;
};

static void mfx_start(struct mfx *f)
{
    memset(f, 0, sizeof(*f));
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(f->lfd, 8) < 0 || getsockname(f->lfd, (struct sockaddr *)&sin, &len) < 0)
        abort();
    f->b = (struct backend){.name = "h2",
                            .balance = BAL_ROUND_ROBIN,
                            .servers = &f->s,
                            .nservers = 1,
                            .connect_timeout_ms = 1000,
                            .pool_max_idle = 4,
                            .pool_idle_timeout_ms = 10000,
                            .protocol = PROTO_H2C,
                            .h2_max_streams = 100};
    f->s = (struct server){.name = "s", .backend = &f->b};
    f->s.addr.u.in = sin;
    f->s.addr.len = sizeof(sin);
    f->s.st.ctr = &f->ctr;
    f->s.st.live = &f->live;
    atomic_store(&f->s.st.live->up, true);
    f->b.lb_ops = lb_ops_for(f->b.balance);
    f->w.loop.now_ms = 1000;
    f->cfg = (struct config){.backends = &f->b, .nbackends = 1};
    f->w.cfg = &f->cfg;
    if (lb_backend_init(&f->b, 1) < 0 || ev_loop_init(&f->w.loop) < 0 ||
        upool_init(&f->w.upool, &f->cfg) < 0)
        abort();
}

static void mfx_end(struct mfx *f)
{
    upool_free(&f->w.upool, &f->w);
    ev_loop_free(&f->w.loop);
    lb_backend_free(&f->b);
    close(f->lfd);
}

/* A lease on the server (its unit given back at once: the pool is what is tested). */
static struct upconn *lease(struct mfx *f, bool *reused)
{
    upstream_attempt_init(&f->a, &f->b, 1, NULL);
    if (!upstream_pick(&f->a, &f->w, NULL))
        return NULL;
    struct upconn *uc = upstream_acquire(&f->w, &f->a, NULL, mux_io, false, reused);
    for (int i = 0; uc && uc->connecting && i < 10; i++) { /* loopback: at once */
        struct epoll_event ev;
        if (epoll_wait(f->w.loop.epfd, &ev, 1, 100) == 1) {
            conn_note_events(&uc->c, ev.events);
            upstream_conn_step(&f->w, &f->a, uc, ev.events);
        }
    }
    upstream_release(&f->a);
    return uc;
}

/* A new connection made multiplexed: owned by `owner`, up to n streams. */
static struct upconn *mux_lease(struct mfx *f, void *owner, uint16_t n)
{
    bool reused;
    struct upconn *uc = lease(f, &reused);
    if (!uc)
        abort();
    upstream_set_mux(uc, owner, mux_io, mux_closed);
    upstream_set_max_streams(&f->w, uc, n);
    return uc;
}

TEST(h2_up_pool_one_connection_many_leases)
{
    struct mfx f;
    mfx_start(&f);
    int owner;
    bool reused = true;
    nclosed = 0;
    struct upconn *uc = mux_lease(&f, &owner, 3);
    CHECK(uc->requests == 1 && uc->owner_closed == mux_closed);
    CHECK_EQ_U64(f.w.upool.navail[0], 1); /* room for two more */
    CHECK(lease(&f, &reused) == uc && reused && uc->owner == &owner);
    CHECK(lease(&f, &reused) == uc && uc->active_streams == 3);
    CHECK_EQ_U64(f.w.upool.navail[0], 0); /* full: off the list */
    struct upconn *other = lease(&f, &reused);
    CHECK(other != NULL && other != uc && !reused);
    upstream_lease_end(&f.w, other, false);
    upstream_lease_end(&f.w, uc, true); /* a stream ends: room again */
    CHECK(uc->active_streams == 2 && f.w.upool.navail[0] == 1);
    upstream_set_max_streams(&f.w, uc, 2); /* the server's SETTINGS: full again */
    CHECK_EQ_U64(f.w.upool.navail[0], 0);
    upstream_set_max_streams(&f.w, uc, 10);
    CHECK_EQ_U64(f.w.upool.navail[0], 1);
    upstream_lease_end(&f.w, uc, true);
    upstream_lease_end(&f.w, uc, true); /* idle, pooled: the owner stays */
    CHECK(uc->active_streams == 0 && uc->owner == &owner && f.w.upool.navail[0] == 1);
    CHECK(nclosed == 0);
    CHECK(lease(&f, &reused) == uc && reused && uc->owner == &owner);
    upstream_lease_end(&f.w, uc, true);
    mfx_end(&f); /* closes the idle connection: the owner hears it */
    CHECK(nclosed == 1);
}

TEST(h2_up_pool_goaway_closes_with_the_last_lease)
{
    struct mfx f;
    mfx_start(&f);
    int owner;
    bool reused;
    nclosed = 0;
    struct upconn *uc = mux_lease(&f, &owner, 5);
    CHECK(lease(&f, &reused) == uc);
    upstream_set_max_streams(&f.w, uc, 0); /* GOAWAY: no new stream */
    CHECK_EQ_U64(f.w.upool.navail[0], 0);
    struct upconn *fresh = lease(&f, &reused);
    CHECK(fresh != uc && !reused);
    upstream_lease_end(&f.w, fresh, false);
    upstream_lease_end(&f.w, uc, true);
    CHECK(nclosed == 0 && uc->active_streams == 1);
    upstream_lease_end(&f.w, uc, true); /* the last one: closed, not pooled */
    CHECK(nclosed == 1 && f.w.upool.navail[0] == 0);
    ev_reap(&f.w.loop);
    mfx_end(&f);
}

TEST(h2_up_pool_idle_mux_connection_closed_by_its_owner)
{
    struct mfx f;
    mfx_start(&f);
    int owner;
    nclosed = 0;
    struct upconn *uc = mux_lease(&f, &owner, 5);
    upstream_lease_end(&f.w, uc, true);
    CHECK_EQ_U64(f.w.upool.navail[0], 1);
    upstream_set_max_streams(&f.w, uc, 0); /* a GOAWAY on the idle connection */
    CHECK_EQ_U64(f.w.upool.navail[0], 0);
    upstream_conn_close(&f.w, uc);
    CHECK(nclosed == 1);
    ev_reap(&f.w.loop);
    mfx_end(&f);
}

static struct config *load(const char *yaml)
{
    struct config_errors e;
    memset(&e, 0, sizeof(e));
    struct config *c = config_load_string("strata.yaml", yaml, 1, &e);
    if (!c)
        test_fail(__FILE__, __LINE__, "does not load:\n%s", e.text ? e.text : "?");
    config_errors_free(&e);
    return c;
}

TEST(h2_up_config_protocol_and_h2_keys)
{
    struct config *c = load("listeners:\n"
                            "  - { name: web, listen: 127.0.0.1:8080, mode: http, backend: a }\n"
                            "backends:\n"
                            "  a: { servers: [ 127.0.0.1:1 ] }\n"
                            "  b:\n"
                            "    protocol: h2c\n"
                            "    h2: { max_streams: 7, window: 1m }\n"
                            "    servers: [ 127.0.0.1:2 ]\n");
    if (!c)
        return;
    CHECK(c->backends[0].protocol == PROTO_H1);
    CHECK_EQ_U64(c->backends[0].h2_max_streams, 100);
    CHECK_EQ_U64(c->backends[0].h2_window, 256 << 10);
    CHECK(c->backends[1].protocol == PROTO_H2C && c->backends[1].tls == NULL);
    CHECK_EQ_U64(c->backends[1].h2_max_streams, 7);
    CHECK_EQ_U64(c->backends[1].h2_window, 1 << 20);
    config_unref(c);
}
