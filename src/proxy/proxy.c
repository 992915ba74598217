/* proxy.c — see proxy.h. Adding a listener mode adds one line to `modes` and nothing in
 * the event loop or the workers. */
#include "proxy/proxy.h"

#include "core/bug.h"
#include "http/h1_session.h"
#include "l4/tcp_proxy.h"
#include "l4/udp_proxy.h"

static const struct listener_mode_ops *const modes[] = {
    [MODE_TCP] = &tcp_mode_ops,
    [MODE_UDP] = &udp_mode_ops,
    [MODE_HTTP] = &http_mode_ops,
};

/* Undoes the process-wide set-up of modes[0..n). */
static void modes_free(struct config *cfg, unsigned n)
{
    while (n-- > 0)
        if (modes[n]->process_free)
            modes[n]->process_free(cfg);
}

int proxy_init(struct worker *ws, unsigned n, struct config *cfg, char *err, size_t errlen)
{
    unsigned m;
    for (m = 0; m < ARRAY_SIZE(modes); m++)
        if (modes[m]->process_init && modes[m]->process_init(cfg, err, errlen) < 0)
            goto fail;
    if (workers_init(ws, n, cfg, modes, ARRAY_SIZE(modes), err, errlen) < 0)
        goto fail;
    return 0;
fail:
    modes_free(cfg, m);
    return -1;
}

void proxy_join(struct worker *ws, unsigned n, struct config *cfg)
{
    workers_join(ws, n);
    modes_free(cfg, ARRAY_SIZE(modes));
}
