/* tcp_info.c — see tcp_info.h. */
#include "stats/tcp_info.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "stats/runtime.h"

static bool read_tcp_info(int fd, struct tcp_info *ti)
{
    socklen_t len = sizeof(*ti);
    return fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 &&
           len >= offsetof(struct tcp_info, tcpi_segs_in) + sizeof(ti->tcpi_segs_in);
}

void stats_tcp_info_listener(unsigned worker, struct listener_conf *lc, int fd)
{
    struct tcp_info ti;
    if (!read_tcp_info(fd, &ti))
        return;
    struct listener_counters *c = &lc->st.ctr[worker];
    CTR_ADD(c->tcp_segs_in, ti.tcpi_segs_in);
    CTR_ADD(c->tcp_segs_out, ti.tcpi_segs_out);
    CTR_ADD(c->tcp_retrans, ti.tcpi_total_retrans);
}

void stats_tcp_info_server(unsigned worker, struct server *srv, int fd)
{
    struct tcp_info ti;
    if (!read_tcp_info(fd, &ti))
        return;
    struct server_counters *c = &srv->st.ctr[worker];
    CTR_ADD(c->tcp_info_samples, 1);
    CTR_ADD(c->tcp_segs_in, ti.tcpi_segs_in);
    CTR_ADD(c->tcp_segs_out, ti.tcpi_segs_out);
    CTR_ADD(c->tcp_retrans, ti.tcpi_total_retrans);
    stats_hist_record(srv->st.hist, worker, HIST_RTT, ti.tcpi_rtt);
}
