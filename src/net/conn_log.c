/* conn_log.c — see conn_log.h. */
#include "net/conn_log.h"

#include "core/logbuf.h"
#include "ev/worker.h"
#include "stats/geo.h"

void conn_log(struct worker *w, const struct listener_conf *lc, const struct conn_log_entry *e)
{
    struct log_line l;
    if (!log_begin(&l, &w->logs, lc->st.log, "conn"))
        return;
    char client[ADDR_STRLEN];
    addr_format(e->client, client, sizeof(client));
    log_nword(&l, "listener", lc->name);
    log_nword(&l, "client", client);
    log_cword(&l, "server", e->server);
    log_u64(&l, "bytes_in", e->bytes_in);
    log_u64(&l, "bytes_out", e->bytes_out);
    log_u64(&l, "duration_ms", e->duration_ms);
    log_nword(&l, "end", conn_end_names[e->end]);
    if (w->cfg->analytics.geo) {
        struct geo_info g;
        geo_lookup(w->cfg->analytics.geo, e->client, &g);
        geo_log_fields(&l, &g);
    }
    if (e->error)
        log_cstr(&l, "error", e->error);
    log_end(&l);
}
