/* config.c — loading a configuration file into a reference-counted snapshot.
 *
 * Reads the file, builds the YAML tree (yaml_tree.c), walks it with the schema (walk.c,
 * schema.c), and on success turns the result into a struct config with its runtime state
 * (per-worker counters, balancers). Errors are sorted by position and appended to errs.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/hash.h"
#include "core/shared_block.h"
#include "lb/lb.h"
#include "schema.h"
#include "stats/runtime.h"
#include "yaml_tree.h"

#define CONFIG_MAX_BYTES (16u << 20)

/* ---- error output ---------------------------------------------------------------------- */

static void errs_append(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one line. On allocation failure the line is lost but `count` still says an
 * error happened, so a caller never mistakes a failed load for a clean one. */
static void errs_append(struct config_errors *errs, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    if (!errs)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(line) ? sizeof(line) - 1 : (size_t)n;

    errs->count++;
    if (errs->len + len + 2 > errs->cap) {
        size_t cap = errs->cap ? errs->cap * 2 : 1024;
        while (cap < errs->len + len + 2)
            cap *= 2;
        char *t = realloc(errs->text, cap);
        if (!t)
            return;
        errs->text = t;
        errs->cap = cap;
    }
    memcpy(errs->text + errs->len, line, len);
    errs->len += len;
    errs->text[errs->len++] = '\n';
    errs->text[errs->len] = '\0';
}

void config_errors_free(struct config_errors *errs)
{
    free(errs->text);
    memset(errs, 0, sizeof(*errs));
}

/* Emits the walker's errors in file order. */
static void emit_errors(struct cfg_ctx *ctx, struct config_errors *errs)
{
    struct cfg_err sorted[CFG_MAX_ERRORS];
    memcpy(sorted, ctx->errs, ctx->nerrs * sizeof(sorted[0]));
    /* insertion sort: stable, so errors at one position keep the order they were found */
    for (unsigned i = 1; i < ctx->nerrs; i++) {
        struct cfg_err e = sorted[i];
        unsigned j = i;
        while (j > 0 && (sorted[j - 1].line > e.line ||
                         (sorted[j - 1].line == e.line && sorted[j - 1].col > e.col))) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = e;
    }
    for (unsigned i = 0; i < ctx->nerrs; i++) {
        if (sorted[i].line)
            errs_append(errs, "%s:%u:%u: error: %s", ctx->file, sorted[i].line, sorted[i].col,
                        sorted[i].msg);
        else
            errs_append(errs, "%s: error: %s", ctx->file, sorted[i].msg);
    }
    if (ctx->dropped)
        errs_append(errs, "%s: error: %u more errors not shown", ctx->file, ctx->dropped);
}

/* ---- release --------------------------------------------------------------------------- */

static void free_runtime(struct config *c)
{
    stats_runtime_free(c);
    for (uint32_t i = 0; c->backends && i < c->nbackends; i++) {
        struct backend *b = &c->backends[i];
        if (b->lb_worker)
            lb_backend_free(b);
        for (uint32_t j = 0; b->servers && j < backend_slots(b); j++) {
            shared_block_put(b->servers[j].st.ctr);
            shared_block_put(b->servers[j].st.live);
        }
    }
    for (uint32_t i = 0; c->listeners && i < c->nlisteners; i++) {
        shared_block_put(c->listeners[i].st.ctr);
        src_limits_free(c->listeners[i].per_source.table);
    }
    shared_block_put(c->global);
}

static void config_free(struct config *c)
{
    if (c->on_free)
        c->on_free(c);
    free_runtime(c);
    /* hand the parsed parts back to the schema, which knows how to free them */
    struct cfg_root root = {
        .admin = {.text = c->admin_text,
                  .token = c->admin_token,
                  .token_name = c->admin_token_name},
        .upgrade_socket = c->upgrade_socket,
        .listeners = c->listeners,
        .nlisteners = c->nlisteners,
        .backends = c->backends,
        .nbackends = c->nbackends,
        .analytics = c->analytics,
    };
    cfg_root_free(&root);
    free(c->file);
    free(c);
}

void config_unref(struct config *c)
{
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        config_free(c);
}

const char *config_mode_name(enum listener_mode m)
{
    return m == MODE_TCP ? "tcp" : m == MODE_UDP ? "udp" : "http";
}

struct backend *config_backend(const struct config *c, const char *name)
{
    for (uint32_t i = 0; i < c->nbackends; i++)
        if (strcmp(c->backends[i].name, name) == 0)
            return &c->backends[i];
    return NULL;
}

struct listener_conf *config_listener_successor(const struct config *cur,
                                               const struct listener_conf *lc)
{
    for (uint32_t i = 0; i < cur->nlisteners; i++)
        if (cur->listeners[i].mode == lc->mode && strcmp(cur->listeners[i].name, lc->name) == 0)
            return &cur->listeners[i];
    return NULL;
}

struct server *config_server_successor(const struct config *cur, const struct server *s)
{
    const struct backend *b = config_backend(cur, s->backend->name);
    if (!b || b->fp != s->backend->fp)
        return NULL;
    for (uint32_t i = 0; i < b->nservers; i++)
        if (strcmp(b->servers[i].name, s->name) == 0)
            return b->servers[i].fp == s->fp ? &b->servers[i] : NULL;
    return NULL;
}

bool config_path_kept(const struct config *cur, const struct listener_conf *lc,
                      const struct server *srv)
{
    const struct listener_conf *to = config_listener_successor(cur, lc);
    return to && to->fp == lc->fp && (!srv || config_server_successor(cur, srv));
}

/* ---- building the snapshot --------------------------------------------------------------- */

/* Zeroed, cache-line aligned array of n blocks of `size` bytes (a multiple of CACHELINE),
 * shareable with the next generation. */
static void *counters_alloc(size_t n, size_t size)
{
    return shared_block_new(n * size);
}

/* A server's id in sticky cookies: 16 hex digits of a hash of "backend/server", so the
 * same in every Strata process with the same names, and telling nothing about addresses. */
void config_server_sticky_id(struct server *s, const struct backend *b)
{
    static const char digits[] = "0123456789abcdef";
    char key[2 * 256 + 2];
    int n = snprintf(key, sizeof(key), "%s/%s", b->name, s->name);
    uint64_t h = hash64(key, n < 0 ? 0 : (size_t)n >= sizeof(key) ? sizeof(key) - 1 : (size_t)n, 0);
    for (int i = 15; i >= 0; i--, h >>= 4)
        s->sticky_id[i] = digits[h & 15];
    s->sticky_id[16] = '\0';
}

/* Makes room for b->runtime_servers more servers after those of the file, for the runtime
 * API (maglev takes none: its table is built once here). Returns 0 or -1. */
static int add_runtime_slots(struct backend *b)
{
    b->nconfigured = b->nservers;
    if (b->balance == BAL_MAGLEV)
        b->runtime_servers = 0;
    b->servers_cap = b->nservers + b->runtime_servers;
    if (b->runtime_servers == 0)
        return 0;
    struct server *s = realloc(b->servers, (size_t)b->servers_cap * sizeof(*s));
    if (!s)
        return -1;
    memset(s + b->nservers, 0, (size_t)b->runtime_servers * sizeof(*s));
    b->servers = s;
    return 0;
}

/* Per-worker counters, initial health, and the balancer of every backend. */
static int build_runtime(struct config *c)
{
    if (!(c->global = counters_alloc(1, CACHELINE)))
        return -1;
    for (uint32_t i = 0; i < c->nlisteners; i++) {
        struct listener_conf *l = &c->listeners[i];
        if (!(l->st.ctr = counters_alloc(c->workers, sizeof(struct listener_counters))))
            return -1;
        if ((l->per_source.max_conns || l->per_source.rate) &&
            !(l->per_source.table = src_limits_new(SRC_LIMITS_DEFAULT_SLOTS)))
            return -1;
    }
    for (uint32_t i = 0; i < c->nbackends; i++) {
        struct backend *b = &c->backends[i];
        if (add_runtime_slots(b) < 0)
            return -1;
        for (uint32_t j = 0; j < b->servers_cap; j++) { /* the runtime slots too */
            struct server *s = &b->servers[j];
            s->index = j;
            s->backend = b;
            if (s->name) /* a runtime slot gets its id when filled */
                config_server_sticky_id(s, b);
            atomic_store(&s->st.weight, s->weight ? s->weight : 1);
            if (!(s->st.live = shared_block_new(sizeof(*s->st.live))))
                return -1;
            atomic_store(&s->st.live->up, true);
            if (!(s->st.ctr = counters_alloc(c->workers, sizeof(struct server_counters))))
                return -1;
        }
        b->lb_ops = lb_ops_for(b->balance);
        if (lb_backend_init(b, c->workers) < 0) {
            /* lb_backend_init releases what it allocated when it fails */
            b->lb_worker = NULL;
            b->lb_shared = NULL;
            return -1;
        }
    }
    return stats_runtime_build(c);
}

/* Moves the walker's result into a new snapshot; *root is left empty. NULL on OOM. */
static struct config *build_config(const char *file, struct cfg_root *root)
{
    struct config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->generation = 1;
    c->workers = root->workers;
    c->drain_timeout_ms = root->timeouts.drain_ms;
    c->reload_drain_ms = root->timeouts.reload_drain_ms;
    c->pipe_size = root->tuning.pipe_size;
    c->pipe_cache = root->tuning.pipe_cache;
    c->io_uring = root->tuning.io_uring;
    c->admin_enabled = root->admin.enabled;
    c->histograms = root->admin.enabled && root->admin.histograms;
    c->admin_addr = root->admin.addr;
    c->admin_text = root->admin.text;
    c->admin_token = root->admin.token;
    c->admin_token_name = root->admin.token_name;
    c->generation = 1;
    free(root->admin.token_file); /* read into the token at load */
    c->listeners = root->listeners;
    c->nlisteners = root->nlisteners;
    c->backends = root->backends;
    c->nbackends = root->nbackends;
    c->max_conns = root->max_conns;
    c->upgrade_socket = root->upgrade_socket;
    c->analytics = root->analytics;
    struct expect_conf *expects = root->expects; /* checked at load: cfg_root_free frees them */
    uint32_t nexpects = root->nexpects;
    memset(root, 0, sizeof(*root));
    root->expects = expects;
    root->nexpects = nexpects;
    if (!(c->file = strdup(file)) || build_runtime(c) < 0)
        goto fail;
    return c;
fail:
    config_free(c);
    return NULL;
}

static struct config *load_buffer(const char *name, const char *buf, size_t len, unsigned ncpu,
                                  struct config_errors *errs)
{
    struct ytree_error yerr;
    struct ynode *doc = NULL;
    struct config *c = NULL;

    switch (ytree_parse(buf, len, &doc, &yerr)) {
    case YT_ERROR:
        if (yerr.line)
            errs_append(errs, "%s:%u:%u: error: %s", name, yerr.line, yerr.col, yerr.msg);
        else
            errs_append(errs, "%s: error: %s", name, yerr.msg);
        return NULL;
    case YT_EMPTY:
        errs_append(errs,
                    "%s:1:1: error: the configuration is empty (expected a mapping with "
                    "at least \"listeners\" and \"backends\")",
                    name);
        return NULL;
    case YT_OK:
        break;
    }

    struct cfg_ctx *ctx = calloc(1, sizeof(*ctx));
    struct cfg_root root = {0};
    if (!ctx) {
        errs_append(errs, "%s: error: out of memory", name);
        ytree_free(doc);
        return NULL;
    }
    ctx->file = name;
    ctx->ncpu = ncpu;
    if (cfg_parse(ctx, doc, &root) > 0)
        emit_errors(ctx, errs);
    else if (!(c = build_config(name, &root)))
        errs_append(errs, "%s: error: out of memory", name);
    else
        config_fingerprint(c, doc);
    cfg_root_free(&root);
    cfg_ctx_release(ctx);
    free(ctx);
    ytree_free(doc);
    return c;
}

struct config *config_load_string(const char *name, const char *yaml, unsigned ncpu,
                                  struct config_errors *errs)
{
    return load_buffer(name, yaml, strlen(yaml), ncpu, errs);
}

/* Reads a whole file of at most CONFIG_MAX_BYTES into a malloc'd buffer. */
static char *read_file(const char *path, size_t *len, struct config_errors *errs)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (!f) {
        errs_append(errs, "%s: error: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            char *t = ncap > CONFIG_MAX_BYTES + 1 ? NULL : realloc(buf, ncap);
            if (!t) {
                errs_append(errs, "%s: error: %s", path,
                            ncap > CONFIG_MAX_BYTES + 1 ? "file larger than 16 MiB"
                                                        : "out of memory");
                goto fail;
            }
            buf = t;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        errs_append(errs, "%s: error: cannot read: %s", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

struct config *config_load_file(const char *path, unsigned ncpu, struct config_errors *errs)
{
    size_t len;
    char *buf = read_file(path, &len, errs);
    if (!buf)
        return NULL;
    struct config *c = load_buffer(path, buf, len, ncpu, errs);
    free(buf);
    return c;
}
