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
#include "lb/lb.h"
#include "schema.h"
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
    for (uint32_t i = 0; c->backends && i < c->nbackends; i++) {
        struct backend *b = &c->backends[i];
        if (b->lb_worker)
            lb_backend_free(b);
        for (uint32_t j = 0; b->servers && j < b->nservers; j++)
            free(b->servers[j].st.ctr);
    }
    for (uint32_t i = 0; c->listeners && i < c->nlisteners; i++) {
        free(c->listeners[i].st.ctr);
        src_limits_free(c->listeners[i].per_source.table);
    }
    free(c->global);
}

static void config_free(struct config *c)
{
    free_runtime(c);
    /* hand the parsed parts back to the schema, which knows how to free them */
    struct cfg_root root = {
        .admin = {.text = c->admin_text},
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

struct backend *config_backend(const struct config *c, const char *name)
{
    for (uint32_t i = 0; i < c->nbackends; i++)
        if (strcmp(c->backends[i].name, name) == 0)
            return &c->backends[i];
    return NULL;
}

/* ---- building the snapshot --------------------------------------------------------------- */

/* Zeroed, cache-line aligned array of n blocks of `size` bytes (a multiple of CACHELINE). */
static void *counters_alloc(size_t n, size_t size)
{
    void *p = aligned_alloc(CACHELINE, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

/* A server's id in sticky cookies: 16 hex digits of a hash of "backend/server", so the
 * same in every Strata process with the same names, and telling nothing about addresses. */
static void set_sticky_id(struct server *s, const struct backend *b)
{
    static const char digits[] = "0123456789abcdef";
    char key[2 * 256 + 2];
    int n = snprintf(key, sizeof(key), "%s/%s", b->name, s->name);
    uint64_t h = hash64(key, n < 0 ? 0 : (size_t)n >= sizeof(key) ? sizeof(key) - 1 : (size_t)n, 0);
    for (int i = 15; i >= 0; i--, h >>= 4)
        s->sticky_id[i] = digits[h & 15];
    s->sticky_id[16] = '\0';
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
        for (uint32_t j = 0; j < b->nservers; j++) {
            struct server *s = &b->servers[j];
            s->index = j;
            s->backend = b;
            set_sticky_id(s, b);
            atomic_store(&s->st.up, true);
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
    return 0;
}

/* Moves the walker's result into a new snapshot; *root is left empty. NULL on OOM. */
static struct config *build_config(const char *file, struct cfg_root *root)
{
    struct config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->workers = root->workers;
    c->drain_timeout_ms = root->timeouts.drain_ms;
    c->pipe_size = root->tuning.pipe_size;
    c->pipe_cache = root->tuning.pipe_cache;
    c->admin_enabled = root->admin.enabled;
    c->admin_addr = root->admin.addr;
    c->admin_text = root->admin.text;
    c->listeners = root->listeners;
    c->nlisteners = root->nlisteners;
    c->backends = root->backends;
    c->nbackends = root->nbackends;
    c->max_conns = root->max_conns;
    c->analytics = root->analytics;
    memset(root, 0, sizeof(*root));
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
