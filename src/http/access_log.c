/* access_log.c — see access_log.h. */
#include "http/access_log.h"

#include <string.h>

#include "core/hash.h"
#include "core/logbuf.h"
#include "ev/worker.h"
#include "http/route-t.h"
#include "net/conn.h"
#include "stats/geo.h"

int access_log_open(struct config *cfg, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        cfg->listeners[i].st.access.dest = -1;
    for (uint32_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_conf *lc = &cfg->listeners[i];
        if (lc->mode != MODE_HTTP)
            continue;
        if (log_target_open(&lc->st.access, &lc->http.access_log, LOG_DEST_STDOUT, err, errlen) <
            0) {
            access_log_close(cfg);
            return -1;
        }
    }
    return 0;
}

void access_log_close(struct config *cfg)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        log_target_close(&cfg->listeners[i].st.access);
}

/* TLS fields of the client connection: version, cipher, SNI, resumed. */
static void put_tls(struct log_line *l, const struct conn *c)
{
    struct xprt_info info;
    c->xprt->info(c, &info);
    log_cstr(l, "tls_version", info.version);
    log_cstr(l, "tls_cipher", info.cipher);
    log_cstr(l, "tls_sni", info.sni);
    log_u64(l, "tls_resumed", (uint64_t)info.resumed);
}

/* access_log.sample: false when this request's line is left out. The draw mixes the
 * request's random value, so it does not follow the split it also drives. */
static bool sampled_in(const struct log_conf *c, const struct access_entry *e)
{
    if (!c->skip_ppm)
        return true;
    if (!c->sample_errors && (e->status >= 400 || e->status == 0))
        return true;
    return hash_mix64(e->t->rand) % 1000000u >= c->skip_ppm;
}

void access_log_write(struct worker *w, const struct listener_conf *lc,
                      const struct access_entry *e)
{
    struct log_line l;
    if (!sampled_in(&lc->http.access_log, e) || !log_begin(&l, &w->logs, lc->st.access, NULL))
        return;
    const struct http_txn *t = e->t;
    const struct http_msg *rq = &t->req;
    char client[ADDR_STRLEN];
    addr_format(&t->client, client, sizeof(client));
    log_name(&l, "listener", lc->name);
    log_name(&l, "client", client);
    log_str(&l, "method", rq->method_name.p, rq->method_name.len);
    log_str(&l, "version", rq->version == 20 ? "2" : rq->version == 10 ? "1.0" : "1.1",
            rq->version == 20 ? 1 : 3);
    log_str(&l, "host", rq->authority.p, rq->authority.len);
    log_str(&l, "path", t->orig_path.p, t->orig_path.len);
    if (rq->query.len)
        log_str(&l, "query", rq->query.p, rq->query.len);
    log_u64(&l, "status", e->status);
    log_u64(&l, "bytes_in", e->bytes_in);
    log_u64(&l, "bytes_out", e->bytes_out);
    log_name(&l, "route", t->route ? t->route->name : NULL);
    log_name(&l, "backend", t->backend ? t->backend->name : NULL);
    log_cstr(&l, "server", t->server ? t->server->name : NULL);
    log_ms(&l, "duration_ms", (int64_t)e->total_us);
    log_ms(&l, "connect_ms", e->connect_us);
    log_ms(&l, "ttfb_ms", e->ttfb_us);
    log_u64(&l, "retries", e->retries);
    log_str(&l, "request_id", t->request_id.p, t->request_id.len);
    log_name(&l, "end", e->end);
    if (w->cfg->analytics.geo)
        geo_log_fields(&l, &t->geo);
    if (t->waf_rules.len)
        log_str(&l, "waf_rules", t->waf_rules.p, t->waf_rules.len);
    if (t->tls)
        put_tls(&l, t->conn);
    if (e->detail)
        log_cstr(&l, "detail", e->detail);
    if (t->limited_by)
        log_name(&l, "rate_limit", t->limited_by);
    log_end(&l);
}
