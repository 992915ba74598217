/* tcp_stats.c — see tcp_stats.h. */
#include "l4/tcp_stats.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "stats/recent.h"
#include "stats/runtime.h"

void tcp_stats_connected(unsigned worker, struct listener_conf *lc, struct backend *b,
                         struct server *srv, uint64_t us)
{
    stats_hist_record(lc->st.hist, worker, HIST_CONNECT, us);
    if (b)
        stats_hist_record(b->hist, worker, HIST_CONNECT, us);
    if (srv)
        stats_hist_record(srv->st.hist, worker, HIST_CONNECT, us);
}

static bool tcp_info(int fd, struct tcp_info *ti)
{
    socklen_t len = sizeof(*ti);
    return fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 &&
           len >= offsetof(struct tcp_info, tcpi_segs_in) + sizeof(ti->tcpi_segs_in);
}

void tcp_stats_closed(const struct tcp_stats_end *e)
{
    struct tcp_info ti;
    unsigned w = e->worker;
    stats_hist_record(e->lc->st.hist, w, HIST_SESSION, e->duration_us);
    if (e->backend)
        stats_hist_record(e->backend->hist, w, HIST_SESSION, e->duration_us);
    if (tcp_info(e->cli_fd, &ti)) {
        struct listener_counters *c = &e->lc->st.ctr[w];
        CTR_ADD(c->tcp_segs_in, ti.tcpi_segs_in);
        CTR_ADD(c->tcp_segs_out, ti.tcpi_segs_out);
        CTR_ADD(c->tcp_retrans, ti.tcpi_total_retrans);
    }
    if (e->server) {
        stats_hist_record(e->server->st.hist, w, HIST_SESSION, e->duration_us);
        if (tcp_info(e->srv_fd, &ti)) {
            struct server_counters *c = &e->server->st.ctr[w];
            CTR_ADD(c->tcp_info_samples, 1);
            CTR_ADD(c->tcp_segs_in, ti.tcpi_segs_in);
            CTR_ADD(c->tcp_segs_out, ti.tcpi_segs_out);
            CTR_ADD(c->tcp_retrans, ti.tcpi_total_retrans);
            stats_hist_record(e->server->st.hist, w, HIST_RTT, ti.tcpi_rtt);
        }
    }
    if (e->error && e->lc->st.recent)
        recent_add(&e->lc->st.recent[w], 0, e->backend ? e->backend->name : NULL, e->error,
                   e->detail, NULL, 0);
}
