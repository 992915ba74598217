/* proxy.c — see proxy.h. Adding a listener mode adds one line to `modes` and nothing in
 * the event loop or the workers. */
#include "proxy/proxy.h"

#include "core/bug.h"
#include "core/logbuf.h"
#include "http/h1_session.h"
#include "l4/tcp_proxy.h"
#include "l4/udp_proxy.h"

static const struct listener_mode_ops *const modes[] = {
    [MODE_TCP] = &tcp_mode_ops,
    [MODE_UDP] = &udp_mode_ops,
    [MODE_HTTP] = &http_mode_ops,
};

/* Each listener's connection or flow log (`log:`), whatever its mode: the connection stage
 * writes to it for stream listeners too. */
static void listener_logs_close(struct config *cfg)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        log_target_close(&cfg->listeners[i].st.log);
}

static int listener_logs_open(struct config *cfg, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++)
        cfg->listeners[i].st.log.dest = -1;
    for (uint32_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_conf *lc = &cfg->listeners[i];
        if (log_target_open(&lc->st.log, &lc->log, LOG_DEST_STDERR, err, errlen) < 0) {
            listener_logs_close(cfg);
            return -1;
        }
    }
    return 0;
}

/* Undoes the process-wide set-up of modes[0..n), then the logs. */
static void modes_free(struct config *cfg, unsigned n)
{
    while (n-- > 0)
        if (modes[n]->process_free)
            modes[n]->process_free(cfg);
    listener_logs_close(cfg);
}

/* The last reference to a generation: what proxy_prepare set up goes with it. */
static void proxy_release(struct config *cfg)
{
    modes_free(cfg, ARRAY_SIZE(modes));
}

int proxy_prepare(struct config *cfg, char *err, size_t errlen)
{
    unsigned m = 0;
    if (listener_logs_open(cfg, err, errlen) < 0)
        return -1;
    for (; m < ARRAY_SIZE(modes); m++)
        if (modes[m]->process_init && modes[m]->process_init(cfg, err, errlen) < 0) {
            modes_free(cfg, m);
            return -1;
        }
    cfg->on_free = proxy_release;
    return 0;
}

int proxy_init(struct worker *ws, unsigned n, struct config *cfg, char *err, size_t errlen)
{
    if (proxy_prepare(cfg, err, errlen) < 0)
        return -1;
    return workers_init(ws, n, cfg, modes, ARRAY_SIZE(modes), err, errlen);
}

void proxy_join(struct worker *ws, unsigned n)
{
    workers_join(ws, n);
}
