/* reload.c — see reload.h. */
#include "proxy/reload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "config/config.h"
#include "config/diff.h"
#include "core/log.h"
#include "core/time.h"
#include "ev/worker.h"
#include "health/health.h"
#include "http/filter.h"
#include "proxy/redis_sync.h"
#include "stats/analytics.h"
#include "proxy/control.h"
#include "proxy/proxy.h"
#include "proxy/sd_notify.h"

#define RELOAD_DIFF_MAX (64u << 10) /* the report of what a reload changed, bytes */

#define SWAP_WAIT_MS 10000 /* a worker applies a swap at its next wake: milliseconds */

void reload_init(struct reloader *r, struct worker *ws, unsigned n, struct config *cfg)
{
    memset(r, 0, sizeof(*r));
    r->ws = ws;
    r->nworkers = n;
    r->cur = config_ref(cfg);
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* Every line of `text` to the log as an error, and to out. */
static void report_errors(struct strbuf *out, const char *text)
{
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        log_err("reload: %.*s", (int)len, text);
        sb_append(out, text, len);
        sb_putc(out, '\n');
        text += len + (nl != NULL);
    }
}

/* The new snapshot, validated against what a reload cannot change; NULL with out filled. */
static struct config *load_next(struct reloader *r, struct strbuf *out)
{
    struct config_errors errs = {0};
    struct config *nc = config_load_file(r->cur->file, cpu_count(), &errs);
    if (!nc) {
        report_errors(out, errs.text ? errs.text : "configuration error\n");
        config_errors_free(&errs);
        return NULL;
    }
    config_errors_free(&errs);
    char why[512];
    if (nc->workers != r->cur->workers) {
        snprintf(why, sizeof(why),
                 "%s: error: workers: %u worker threads run and the file asks for %u; the "
                 "number of workers changes only with a restart",
                 nc->file, r->cur->workers, nc->workers);
        report_errors(out, why);
        config_unref(nc);
        return NULL;
    }
    if (nc->admin_enabled != r->cur->admin_enabled ||
        (nc->admin_enabled && !addr_equal(&nc->admin_addr, &r->cur->admin_addr)))
        log_warn("reload: admin.listen changed; the admin listener stays on %s until a restart",
                 r->cur->admin_enabled ? r->cur->admin_text : "(none)");
    if (nc->io_uring != r->cur->io_uring || nc->pipe_size != r->cur->pipe_size ||
        nc->pipe_cache != r->cur->pipe_cache)
        log_warn("reload: tuning changed; the workers keep their io_uring and pipe settings "
                 "until a restart");
    nc->generation = r->cur->generation + 1;
    return nc;
}

/* Builds every worker's part; on failure undoes them all. */
static int prepare_swaps(struct reloader *r, struct config *nc, struct worker_swap *sw,
                         unsigned *bound, char *err, size_t errlen)
{
    for (unsigned i = 0; i < r->nworkers; i++) {
        if (worker_swap_prepare(&r->ws[i], nc, &sw[i], bound, err, errlen) < 0) {
            for (unsigned j = 0; j <= i; j++)
                worker_swap_abort(&r->ws[j], &sw[j]);
            return -1;
        }
    }
    return 0;
}

/* Posts the swaps and waits until each worker applied its own (or exited: then it is
 * taken back and counted as released). */
static void run_swaps(struct reloader *r, struct config *nc, struct worker_swap *sw,
                      struct reload_gen *g)
{
    for (unsigned i = 0; i < r->nworkers; i++) {
        sw[i].cfg = config_ref(nc);
        sw[i].released = &g->released;
        worker_swap_post(&r->ws[i], &sw[i]);
    }
    uint64_t deadline = mono_ms() + SWAP_WAIT_MS;
    struct timespec tick = {0, 200 * 1000};
    for (unsigned i = 0; i < r->nworkers; i++) {
        struct worker *w = &r->ws[i];
        while (!atomic_load(&sw[i].done)) {
            if (atomic_load(&w->exited) || mono_ms() > deadline) {
                struct worker_swap *mine = &sw[i];
                if (atomic_compare_exchange_strong(&w->swap, &mine, NULL)) {
                    log_err("reload: worker %u did not take the new generation", w->id);
                    config_unref(sw[i].cfg);
                    worker_swap_abort(w, &sw[i]);
                    atomic_fetch_add(&g->released, 1);
                    break;
                }
            }
            nanosleep(&tick, NULL);
        }
        free(sw[i].kept);
        sw[i].kept = NULL;
    }
}

/* Stops a control-thread object of the previous generation (health checks, Redis
 * clients) after the loop's current batch: an event of this batch may still name it. */
struct control_retire {
    struct ev_defer d;
    void *obj;
    void (*stop)(void *obj);
};

static void control_retire_cb(struct ev_defer *d)
{
    struct control_retire *cr = container_of(d, struct control_retire, d);
    cr->stop(cr->obj);
    free(cr);
}

/* *slot (started for the old generation) is replaced by fresh, and stopped after the
 * batch; without memory for that, fresh is stopped and the old one stays. */
static void control_swap(struct control *c, void **slot, void *fresh, void (*stop)(void *),
                         const char *what)
{
    struct control_retire *cr = fresh ? malloc(sizeof(*cr)) : NULL;
    if (!cr) {
        log_err("reload: %s: out of memory; those of the previous generation go on", what);
        if (fresh)
            stop(fresh);
        return;
    }
    cr->obj = *slot;
    cr->stop = stop;
    *slot = fresh;
    ev_defer_free(&c->loop, &cr->d, control_retire_cb);
}

static void health_stop_any(void *h)
{
    health_stop(h);
}

static void redis_stop_any(void *rs)
{
    redis_sync_stop(rs);
}

/* The control thread's users of a snapshot move to the new one: the admin listener and
 * analytics take it; the health checks and the rate limits' Redis clients (which point
 * into it) are started anew and the old ones stopped. */
static void control_move(struct control *c, struct config *nc)
{
    if (c->admin)
        admin_set_config(c->admin, nc);
    if (c->analytics)
        analytics_set_config(c->analytics, nc);
    control_swap(c, (void **)&c->health, health_start(&c->loop, nc), health_stop_any,
                 "health checks");
    control_swap(c, (void **)&c->redis, redis_sync_start(&c->loop, nc), redis_stop_any,
                 "the rate limits' Redis clients");
}

/* What the reload changed (config_diff), after the "in force" line: to the caller, and to
 * the log one line at a time. */
static void report_changes(struct strbuf *out, const struct strbuf *changes)
{
    const char *p = sb_str(changes), *end = p + changes->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        log_info("reload: %.*s", (int)len, p);
        p += len + 1;
    }
    sb_append(out, sb_str(changes), changes->len);
}

int reload_run(struct reloader *r, struct control *c, struct strbuf *out)
{
    struct strbuf changes; /* config_diff of the running file and the new one */
    sb_init(&changes, RELOAD_DIFF_MAX);
    uint64_t t0 = mono_ms();
    sd_notify_reloading();
    struct config *nc = load_next(r, out);
    struct worker_swap *sw = nc ? calloc(r->nworkers, sizeof(*sw)) : NULL;
    struct reload_gen *g = nc ? calloc(1, sizeof(*g)) : NULL;
    char err[512];
    unsigned bound = 0, before = 0;
    if (nc && (!sw || !g)) {
        report_errors(out, "reload: out of memory");
        goto fail;
    }
    if (!nc)
        goto fail;
    reload_carry(r->cur, nc);
    config_diff(r->cur, nc, &changes); /* what the caller and the log are told after it */
    if (proxy_prepare(nc, err, sizeof(err)) < 0 || filters_start(nc, err, sizeof(err)) < 0 ||
        prepare_swaps(r, nc, sw, &bound, err, sizeof(err)) < 0) {
        report_errors(out, err);
        goto fail;
    }
    for (unsigned i = 0; i < r->nworkers; i++)
        before += r->ws[i].nsocks;
    g->cfg = r->cur; /* the control thread's reference, until every worker let it go */
    g->expect = r->nworkers;
    run_swaps(r, nc, sw, g);
    g->next = r->old;
    r->old = g;
    r->cur = nc;
    control_move(c, nc);
    free(sw);
    unsigned total = 0;
    for (unsigned i = 0; i < r->nworkers; i++)
        total += r->ws[i].nsocks;
    sb_printf(out,
              "reload: generation %llu in force (%s): %u listeners, %u backends; listening "
              "sockets: %u kept, %u new, %u closed; %llu ms\n",
              (unsigned long long)nc->generation, nc->file, nc->nlisteners, nc->nbackends,
              total - bound, bound, before - (total - bound),
              (unsigned long long)(mono_ms() - t0));
    log_info("%.*s", (int)out->len - 1, sb_str(out));
    report_changes(out, &changes);
    sb_free(&changes);
    sd_notify_ready(nc);
    return 0;
fail:
    sb_free(&changes);
    free(sw);
    free(g);
    if (nc)
        config_unref(nc);
    sb_printf(out, "reload refused: generation %llu (%s) stays in force\n",
              (unsigned long long)r->cur->generation, r->cur->file);
    log_err("reload refused: generation %llu stays in force",
            (unsigned long long)r->cur->generation);
    sd_notify_ready(r->cur);
    return -1;
}

void reload_tick(struct reloader *r)
{
    for (struct reload_gen **pg = &r->old; *pg;) {
        struct reload_gen *g = *pg;
        if (atomic_load_explicit(&g->released, memory_order_acquire) < g->expect) {
            pg = &g->next;
            continue;
        }
        *pg = g->next;
        log_info("reload: generation %llu released: no connection is left on it",
                 (unsigned long long)g->cfg->generation);
        config_unref(g->cfg);
        free(g);
    }
}

void reload_free(struct reloader *r)
{
    while (r->old) {
        struct reload_gen *g = r->old;
        r->old = g->next;
        config_unref(g->cfg);
        free(g);
    }
    if (r->cur)
        config_unref(r->cur);
    r->cur = NULL;
}
