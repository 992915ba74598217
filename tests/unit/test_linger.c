/* test_linger.c — the lingering close (net/linger.h) on a socket pair: the peer sees our
 * FIN at once, what it sends after is read and thrown away, and the connection is closed
 * at the peer's EOF, at the timeout, or at once when lingering is off or full. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev/worker.h"
#include "net/conn.h"
#include "net/linger.h"
#include "test.h"

static struct worker w;

static void no_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
}

static void stop_loop(struct ev_loop *loop, struct ev_timer *t)
{
    loop->stop = true;
}

/* Runs the worker's loop for about ms milliseconds. */
static void run_for(uint64_t ms)
{
    struct ev_timer t;
    ev_timer_init(&t, stop_loop);
    ev_timer_arm(&w.loop, &t, ms);
    w.loop.stop = false;
    ev_loop_run(&w.loop);
}

static void setup(void)
{
    memset(&w, 0, sizeof(w));
    CHECK(ev_loop_init(&w.loop) == 0);
    w.scratch = malloc(RELAY_BUF_SIZE);
    linger_worker_init(&w);
}

static void teardown(void)
{
    linger_close_all(&w);
    ev_reap(&w.loop);
    linger_worker_free(&w);
    ev_loop_free(&w.loop);
    free(w.scratch);
}

/* A registered connection on one end of a socket pair; the other end is *peer. */
static void open_pair(struct conn *c, int *peer)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    conn_init_plain(c, sv[0], no_io);
    CHECK(ev_add(&w.loop, &c->h) == 0);
    *peer = sv[1];
}

static char junk[4096];

TEST(linger_reads_until_the_peer_closes)
{
    setup();
    struct conn c;
    int peer;
    open_pair(&c, &peer);
    CHECK(write(peer, junk, sizeof(junk)) == sizeof(junk)); /* unread when lingering starts */
    conn_linger(&w, &c, 60000);
    CHECK(c.h.fd == -1);
    CHECK_EQ_U64(linger_count(&w), 1);
    char b[16];
    CHECK(recv(peer, b, sizeof(b), MSG_DONTWAIT) == 0); /* our FIN came at once */
    /* what the peer sends now is read and dropped: with nothing read, the socket would be
     * full long before 256 sends */
    int sent = 0;
    for (int i = 0; i < 256; i++) {
        if (write(peer, junk, sizeof(junk)) == sizeof(junk))
            sent++;
        run_for(1);
    }
    CHECK_EQ_U64(sent, 256);
    CHECK_EQ_U64(linger_count(&w), 1);
    close(peer);
    run_for(20);
    CHECK_EQ_U64(linger_count(&w), 0);
    teardown();
}

TEST(linger_ends_at_the_timeout)
{
    setup();
    struct conn c;
    int peer;
    open_pair(&c, &peer);
    conn_linger(&w, &c, 300);
    run_for(10);
    CHECK_EQ_U64(linger_count(&w), 1);
    run_for(600);
    CHECK_EQ_U64(linger_count(&w), 0);
    CHECK(send(peer, junk, 1, MSG_NOSIGNAL) < 0 && errno == EPIPE); /* closed */
    close(peer);
    teardown();
}

TEST(linger_off_or_full_closes_at_once)
{
    setup();
    struct conn c;
    int peer;
    open_pair(&c, &peer);
    conn_linger(&w, &c, 0);
    CHECK(c.h.fd == -1);
    CHECK_EQ_U64(linger_count(&w), 0);
    CHECK(send(peer, junk, 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
    close(peer);

    open_pair(&c, &peer);
    w.nlingers = LINGER_MAX_PER_WORKER; /* as if that many lingered already */
    conn_linger(&w, &c, 1000);
    CHECK_EQ_U64(linger_count(&w), LINGER_MAX_PER_WORKER);
    w.nlingers = 0;
    CHECK(c.h.fd == -1);
    CHECK(send(peer, junk, 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
    close(peer);
    teardown();
}

TEST(linger_close_all_ends_every_one)
{
    setup();
    struct conn c[3];
    int peer[3];
    for (int i = 0; i < 3; i++) {
        open_pair(&c[i], &peer[i]);
        conn_linger(&w, &c[i], 60000);
    }
    CHECK_EQ_U64(linger_count(&w), 3);
    linger_close_all(&w);
    CHECK_EQ_U64(linger_count(&w), 0);
    for (int i = 0; i < 3; i++) {
        CHECK(send(peer[i], junk, 1, MSG_NOSIGNAL) < 0 && errno == EPIPE);
        close(peer[i]);
    }
    teardown();
}
