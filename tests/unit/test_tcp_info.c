/* test_tcp_info.c — TCP_INFO sampling of live sockets (stats/tcp_info.h): a socket is read
 * only once it is old enough, each read adds only what changed (the total at close equals
 * the kernel's own count, never more), a tick reads at most TCP_WATCH_PER_TICK sockets and
 * the next tick goes on round robin, and ending a watch unlinks it. On a real loopback TCP
 * connection.
 */
#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config-t.h"
#include "stats/counters-t.h"
#include "stats/tcp_info.h"
#include "test.h"

/* A connected loopback pair: fds[0] the client, fds[1] the accepted side. */
static int tcp_pair(int fds[2])
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sin, &len) < 0)
        return -1;
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&sin, sizeof(sin)) < 0)
        return -1;
    fds[1] = accept(l, NULL, NULL);
    close(l);
    return fds[1] < 0 ? -1 : 0;
}

/* Sends n small messages from a to b and reads them (one segment each way per message). */
static void ping(int a, int b, int n)
{
    char buf[64];
    for (int i = 0; i < n; i++) {
        if (send(a, "x", 1, 0) != 1 || recv(b, buf, sizeof(buf), 0) < 1)
            CHECK(!"ping");
    }
}

static uint32_t kernel_segs_out(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 ? ti.tcpi_segs_out : 0;
}

TEST(tcp_info_live_reads_add_only_what_changed)
{
    int fds[2];
    struct ev_loop loop;
    CHECK(tcp_pair(fds) == 0 && ev_loop_init(&loop) == 0);
    struct server_counters sc = {0};
    struct listener_counters lc_ctr = {0};
    struct server srv = {.st.ctr = &sc};
    struct listener_conf lc = {.st.ctr = &lc_ctr};
    struct tcp_watches ws;
    struct tcp_watch ts = {0}, tl = {0};
    tcp_watches_init(&ws, &loop, 0);
    uint64_t t0 = loop.now_ms;
    tcp_watch_start(&ws, &ts, fds[0], NULL, &srv); /* the server side of a connection */
    tcp_watch_start(&ws, &tl, fds[1], &lc, NULL);  /* a relay's client side */
    CHECK(ws.n == 2 && ev_timer_armed(&ws.tick));
    ping(fds[0], fds[1], 5);
    CHECK_EQ_U64(tcp_watches_sample(&ws, t0 + TCP_WATCH_MIN_AGE_MS - 1), 0); /* too young */
    CHECK_EQ_U64(CTR_GET(sc.tcp_info_samples), 0);
    CHECK_EQ_U64(tcp_watches_sample(&ws, t0 + TCP_WATCH_MIN_AGE_MS), 2);
    CHECK_EQ_U64(CTR_GET(sc.tcp_info_samples), 1);
    uint64_t first = CTR_GET(sc.tcp_segs_out);
    CHECK(first >= 5 && CTR_GET(lc_ctr.tcp_segs_in) >= 5);
    ping(fds[0], fds[1], 7);
    tcp_watches_sample(&ws, t0 + 2 * TCP_WATCH_MIN_AGE_MS);
    CHECK(CTR_GET(sc.tcp_segs_out) >= first + 7);
    ping(fds[0], fds[1], 3);
    tcp_watch_end(&ws, &ts);
    tcp_watch_end(&ws, &tl);
    tcp_watch_end(&ws, &ts); /* a second end does nothing */
    CHECK_EQ_U64(CTR_GET(sc.tcp_info_samples), 3);
    /* three reads, and the sum is the kernel's count: nothing counted twice */
    CHECK_EQ_U64(CTR_GET(sc.tcp_segs_out), kernel_segs_out(fds[0]));
    CHECK_EQ_U64(CTR_GET(lc_ctr.tcp_segs_out), kernel_segs_out(fds[1]));
    CHECK(ws.n == 0 && ws.live.next == &ws.live);
    tcp_watches_stop(&ws);
    CHECK(!ev_timer_armed(&ws.tick));
    ev_loop_free(&loop);
    close(fds[0]);
    close(fds[1]);
}

TEST(tcp_info_ticks_are_bounded_and_round_robin)
{
    enum { N = TCP_WATCH_PER_TICK + TCP_WATCH_PER_TICK / 2 };
    int fds[2];
    struct ev_loop loop;
    CHECK(tcp_pair(fds) == 0 && ev_loop_init(&loop) == 0);
    ping(fds[0], fds[1], 1);
    struct server_counters sc = {0};
    struct server srv = {.st.ctr = &sc};
    struct tcp_watches ws;
    struct tcp_watch *t = calloc(N, sizeof(*t));
    CHECK(t != NULL);
    tcp_watches_init(&ws, &loop, 0);
    for (int i = 0; t && i < N; i++)
        tcp_watch_start(&ws, &t[i], fds[0], NULL, &srv);
    uint64_t now = loop.now_ms + TCP_WATCH_MIN_AGE_MS;
    CHECK_EQ_U64(tcp_watches_sample(&ws, now), TCP_WATCH_PER_TICK);
    int read = 0;
    for (int i = 0; t && i < N; i++)
        read += t[i].segs_out != 0;
    CHECK_EQ_U64(read, TCP_WATCH_PER_TICK); /* the first ones, in order */
    CHECK(t && t[0].segs_out && !t[N - 1].segs_out);
    CHECK_EQ_U64(tcp_watches_sample(&ws, now + 1000), TCP_WATCH_PER_TICK);
    for (int i = 0; t && i < N; i++)
        CHECK(t[i].segs_out != 0); /* the next tick took the rest first */
    for (int i = 0; t && i < N; i++)
        tcp_watch_end(&ws, &t[i]);
    CHECK(ws.n == 0);
    tcp_watches_stop(&ws);
    ev_loop_free(&loop);
    free(t);
    close(fds[0]);
    close(fds[1]);
}
