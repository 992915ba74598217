/* control.c — see control.h. */
#include "control.h"

#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "core/log.h"
#include "core/time.h"
#include "health/health.h"
#include "proxy/redis_sync.h"
#include "stats/analytics.h"
#include "http/filter.h"
#include "tls/tls.h"

static void control_wake(struct ev_loop *loop)
{
    struct control *c = loop->owner;
    if (atomic_load(&c->stop_requested))
        loop->stop = true;
}

/* Ticket keys rotate on each listener's own period; looking once a second is enough. */
#define TICKET_CHECK_MS 1000

static void rotate_tickets(struct ev_loop *loop, struct ev_timer *t)
{
    tls_tickets_rotate(mono_ms());
    if (ev_timer_arm(loop, t, TICKET_CHECK_MS) < 0)
        log_err("control: cannot re-arm the ticket-key timer; TLS ticket keys stop rotating");
}

static void *control_main(void *arg)
{
    struct control *c = arg;
    ev_loop_run(&c->loop);
    return NULL;
}

int control_start(struct control *c, struct config *cfg, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    if (ev_loop_init(&c->loop) < 0) {
        snprintf(err, errlen, "epoll: %m");
        return -1;
    }
    c->loop.owner = c;
    c->loop.on_wake = control_wake;
    if (cfg->admin_enabled) {
        const char *why = "unknown error";
        c->admin = admin_start(&c->loop, cfg, &why);
        if (!c->admin) {
            snprintf(err, errlen, "admin: cannot listen on %s: %s", cfg->admin_text, why);
            goto fail;
        }
    }
    if (cfg->admin_enabled && !(c->analytics = analytics_start(&c->loop, cfg))) {
        snprintf(err, errlen, "analytics: out of memory");
        goto fail;
    }
    c->health = health_start(&c->loop, cfg);
    if (!c->health) {
        snprintf(err, errlen, "health checks: out of memory");
        goto fail;
    }
    if (!(c->redis = redis_sync_start(&c->loop, cfg))) {
        snprintf(err, errlen, "rate limits' Redis clients: out of memory");
        goto fail;
    }
    if (filters_start(cfg, err, errlen) < 0)
        goto fail;
    ev_timer_init(&c->tickets, rotate_tickets);
    if (ev_timer_arm(&c->loop, &c->tickets, TICKET_CHECK_MS) < 0) {
        snprintf(err, errlen, "control: out of memory");
        goto fail;
    }
    int rc = pthread_create(&c->thread, NULL, control_main, c);
    if (rc) {
        snprintf(err, errlen, "cannot start the control thread: %s", strerror(rc));
        goto fail;
    }
    c->started = true;
    return 0;
fail:
    control_stop(c);
    return -1;
}

void control_stop(struct control *c)
{
    if (c->started) {
        atomic_store(&c->stop_requested, true);
        ev_loop_wake(&c->loop);
        pthread_join(c->thread, NULL);
        c->started = false;
    }
    if (c->health)
        health_stop(c->health);
    if (c->admin)
        admin_stop(c->admin);
    redis_sync_stop(c->redis);
    c->redis = NULL;
    analytics_stop(c->analytics);
    c->analytics = NULL;
    c->health = NULL;
    c->admin = NULL;
    ev_loop_free(&c->loop);
}
