/* tcp_stats.c — see tcp_stats.h. */
#include "l4/tcp_stats.h"

#include "stats/recent.h"
#include "stats/runtime.h"
#include "stats/tcp_info.h"

void tcp_stats_connected(unsigned worker, struct listener_conf *lc, struct backend *b,
                         struct server *srv, uint64_t us)
{
    stats_hist_record(lc->st.hist, worker, HIST_CONNECT, us);
    if (b)
        stats_hist_record(b->hist, worker, HIST_CONNECT, us);
    if (srv)
        stats_hist_record(srv->st.hist, worker, HIST_CONNECT, us);
}

void tcp_stats_watch(struct tcp_watches *ws, struct tcp_watch *t, int fd,
                     struct listener_conf *lc, struct server *srv)
{
    tcp_watch_start(ws, t, fd, lc, srv);
}

void tcp_stats_closed(const struct tcp_stats_end *e)
{
    unsigned w = e->worker;
    /* the last TCP_INFO figures first: a reader that sees the session counted closed
     * finds them in place (x86 keeps stores in order; readers may still race) */
    tcp_watch_end(e->watches, e->cli);
    tcp_watch_end(e->watches, e->srv);
    stats_hist_record(e->lc->st.hist, w, HIST_SESSION, e->duration_us);
    if (e->backend)
        stats_hist_record(e->backend->hist, w, HIST_SESSION, e->duration_us);
    if (e->server)
        stats_hist_record(e->server->st.hist, w, HIST_SESSION, e->duration_us);
    if (e->error && e->lc->st.recent)
        recent_add(&e->lc->st.recent[w], 0, e->backend ? e->backend->name : NULL, e->error,
                   e->detail, NULL, 0);
}
