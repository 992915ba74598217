/* tcp_info.c — see tcp_info.h. */
#include "stats/tcp_info.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "core/log.h"
#include "stats/runtime.h"

static bool read_tcp_info(int fd, struct tcp_info *ti)
{
    socklen_t len = sizeof(*ti);
    return fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 &&
           len >= offsetof(struct tcp_info, tcpi_segs_in) + sizeof(ti->tcpi_segs_in);
}

/* Reads t's socket and adds what changed since the last read to its side's counters. */
static void sample(unsigned worker, struct tcp_watch *t)
{
    struct tcp_info ti;
    if (!read_tcp_info(t->fd, &ti))
        return;
    uint32_t in = ti.tcpi_segs_in - t->segs_in, out = ti.tcpi_segs_out - t->segs_out;
    uint32_t re = ti.tcpi_total_retrans - t->retrans;
    t->segs_in = ti.tcpi_segs_in;
    t->segs_out = ti.tcpi_segs_out;
    t->retrans = ti.tcpi_total_retrans;
    if (t->srv) {
        struct server_counters *c = &t->srv->st.ctr[worker];
        CTR_ADD(c->tcp_info_samples, 1);
        CTR_ADD(c->tcp_segs_in, in);
        CTR_ADD(c->tcp_segs_out, out);
        CTR_ADD(c->tcp_retrans, re);
        stats_hist_record(t->srv->st.hist, worker, HIST_RTT, ti.tcpi_rtt);
    } else if (t->lc) {
        struct listener_counters *c = &t->lc->st.ctr[worker];
        CTR_ADD(c->tcp_segs_in, in);
        CTR_ADD(c->tcp_segs_out, out);
        CTR_ADD(c->tcp_retrans, re);
    }
}

static void arm(struct tcp_watches *ws)
{
    if (ev_timer_arm(ws->loop, &ws->tick, TCP_WATCH_TICK_MS) < 0)
        log_err("tcp_info: cannot arm the sampling timer; open connections are read at close "
                "only");
}

static void tick_cb(struct ev_loop *loop, struct ev_timer *timer)
{
    struct tcp_watches *ws = container_of(timer, struct tcp_watches, tick);
    tcp_watches_sample(ws, loop->now_ms);
    if (ws->n)
        arm(ws);
}

void tcp_watches_init(struct tcp_watches *ws, struct ev_loop *loop, unsigned worker)
{
    list_init(&ws->live);
    ws->n = 0;
    ws->worker = worker;
    ws->loop = loop;
    ev_timer_init(&ws->tick, tick_cb);
}

void tcp_watches_stop(struct tcp_watches *ws)
{
    if (ws->loop)
        ev_timer_cancel(ws->loop, &ws->tick);
}

void tcp_watch_start(struct tcp_watches *ws, struct tcp_watch *t, int fd,
                     struct listener_conf *lc, struct server *srv)
{
    if (t->watched || fd < 0 || !ws->loop)
        return; /* a zeroed struct tcp_watches (a worker never initialised) watches nothing */
    *t = (struct tcp_watch){.fd = fd, .watched = true, .lc = lc, .srv = srv,
                            .since_ms = ws->loop->now_ms};
    list_add_tail(&ws->live, &t->link);
    ws->n++;
    if (!ev_timer_armed(&ws->tick))
        arm(ws);
}

void tcp_watch_end(struct tcp_watches *ws, struct tcp_watch *t)
{
    if (!t->watched)
        return;
    sample(ws->worker, t);
    list_del(&t->link);
    t->watched = false;
    ws->n--;
}

unsigned tcp_watches_sample(struct tcp_watches *ws, uint64_t now_ms)
{
    unsigned read = 0;
    uint32_t visits = ws->n < TCP_WATCH_PER_TICK ? ws->n : TCP_WATCH_PER_TICK;
    for (uint32_t i = 0; i < visits; i++) {
        struct tcp_watch *t = list_entry(ws->live.next, struct tcp_watch, link);
        list_del(&t->link);
        list_add_tail(&ws->live, &t->link);
        if (now_ms - t->since_ms < TCP_WATCH_MIN_AGE_MS)
            continue;
        sample(ws->worker, t);
        read++;
    }
    return read;
}
