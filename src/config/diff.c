/* diff.c — config_diff: two snapshots compared by name (listeners, backends, servers,
 * named routes; an unnamed route by what it matches), see diff.h. Read-only.
 */
#include "config/diff.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "http/filter.h"
#include "http/route_describe.h"
#include "lb/lb.h"

/* What a reload would drain, gathered while comparing and printed last. */
struct diff_ctx {
    struct strbuf *out;
    struct strbuf drain;
    unsigned n;
    const char *section; /* printed before the first item of a section */
};

static void item(struct diff_ctx *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void item(struct diff_ctx *d, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (d->section) {
        sb_printf(d->out, "%s:\n", d->section);
        d->section = NULL;
    }
    sb_printf(d->out, "  %s\n", buf);
    d->n++;
}

static void drains(struct diff_ctx *d, const char *what)
{
    sb_printf(&d->drain, "  %s\n", what);
}

/* ---- listeners ---- */

static const struct listener_conf *listener_named(const struct config *c, const char *name)
{
    for (uint32_t i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

static void addrs_text(const struct listener_conf *l, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < l->naddrs && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "", l->addr_texts[i]);
}

/* Changes that break a listener's open connections: its sockets or how they are handled. */
static void compare_listener(struct diff_ctx *d, const struct listener_conf *a,
                             const struct listener_conf *b)
{
    char ta[512], tb[512];
    addrs_text(a, ta, sizeof(ta));
    addrs_text(b, tb, sizeof(tb));
    const char *ba = a->backend ? a->backend->name : "-", *bb = b->backend ? b->backend->name : "-";
    const char *why = NULL;
    if (strcmp(ta, tb) != 0) {
        item(d, "~ %s: listen %s -> %s", a->name, ta, tb);
        why = "address";
    }
    if (a->mode != b->mode) {
        item(d, "~ %s: mode %s -> %s", a->name, config_mode_name(a->mode),
             config_mode_name(b->mode));
        why = "mode";
    }
    if ((a->tls != NULL) != (b->tls != NULL)) {
        item(d, "~ %s: tls %s -> %s", a->name, a->tls ? "on" : "off", b->tls ? "on" : "off");
        why = "TLS";
    }
    if (a->mode != MODE_HTTP && strcmp(ba, bb) != 0) {
        item(d, "~ %s: backend %s -> %s", a->name, ba, bb);
        why = "backend";
    }
    if (why) {
        char line[256];
        snprintf(line, sizeof(line), "connections of listener %s (its %s changed)", a->name, why);
        drains(d, line);
    }
}

static void diff_listeners(struct diff_ctx *d, const struct config *o, const struct config *n)
{
    char t[512], line[256];
    d->section = "listeners";
    for (uint32_t i = 0; i < n->nlisteners; i++) {
        const struct listener_conf *b = &n->listeners[i], *a = listener_named(o, b->name);
        if (!a) {
            addrs_text(b, t, sizeof(t));
            item(d, "+ %s (%s, %s)", b->name, t, config_mode_name(b->mode));
        } else {
            compare_listener(d, a, b);
        }
    }
    for (uint32_t i = 0; i < o->nlisteners; i++) {
        const struct listener_conf *a = &o->listeners[i];
        if (listener_named(n, a->name))
            continue;
        addrs_text(a, t, sizeof(t));
        item(d, "- %s (%s, %s)", a->name, t, config_mode_name(a->mode));
        snprintf(line, sizeof(line), "connections of listener %s (removed)", a->name);
        drains(d, line);
    }
}

/* ---- routes ---- */

/* A route's identity across files: its given name, or what it matches when unnamed
 * ("route#N" moves when a route is inserted before it). */
static void route_key(const struct http_route *r, struct strbuf *sb)
{
    if (strncmp(r->name, "route#", 6) != 0) {
        sb_puts(sb, r->name);
        return;
    }
    route_match_describe(&r->match, sb);
}

/* What the route does after matching, as text: filters, then the action. */
static void route_body(const struct http_route *r, struct strbuf *sb)
{
    for (uint32_t i = 0; i < r->nfilters; i++)
        sb_printf(sb, "%s, ", r->filters[i].ops->name);
    if (r->action == ROUTE_BACKEND)
        sb_printf(sb, "backend %s", r->backend->name);
    for (uint32_t i = 0; r->action == ROUTE_SPLIT && i < r->nsplit; i++)
        sb_printf(sb, "%s%s %u", i ? ", " : "split ", r->split[i].backend->name,
                  r->split[i].weight);
    if (r->action == ROUTE_ANSWER)
        sb_puts(sb, "answers");
}

/* Requests in flight finish on the old configuration; only long-lived exchanges (WebSocket
 * and other tunnels) through a changed route are drained. */
static void drain_route(struct diff_ctx *d, const struct listener_conf *l, const char *key,
                        const char *what)
{
    char line[512];
    snprintf(line, sizeof(line), "tunnels (WebSocket) through route %s of listener %s (%s)", key,
             l->name, what);
    drains(d, line);
}

static int route_find(const struct listener_conf *l, const char *key)
{
    struct strbuf sb;
    sb_init(&sb, 4096);
    int found = -1;
    for (uint32_t i = 0; l && l->mode == MODE_HTTP && i < l->http.nroutes && found < 0; i++) {
        sb_reset(&sb);
        route_key(&l->http.routes[i], &sb);
        if (!sb.err && strcmp(sb_str(&sb), key) == 0)
            found = (int)i;
    }
    sb_free(&sb);
    return found;
}

/* Route i of l's position among the routes that `other` has too: a route only moved by
 * an insertion or a removal keeps it, one that really changed places does not. */
static uint32_t common_rank(const struct listener_conf *l, uint32_t i,
                            const struct listener_conf *other)
{
    struct strbuf key;
    uint32_t rank = 0;
    sb_init(&key, 4096);
    for (uint32_t j = 0; j < i; j++) {
        sb_reset(&key);
        route_key(&l->http.routes[j], &key);
        rank += route_find(other, sb_str(&key)) >= 0;
    }
    sb_free(&key);
    return rank;
}

static void compare_route(struct diff_ctx *d, const struct listener_conf *la, uint32_t ia,
                          const struct listener_conf *lb, uint32_t ib, const char *key)
{
    const struct http_route *a = &la->http.routes[ia], *b = &lb->http.routes[ib];
    struct strbuf x, y;
    sb_init(&x, 8192);
    sb_init(&y, 8192);
    if (common_rank(la, ia, lb) != common_rank(lb, ib, la))
        item(d, "^ %s: #%u -> #%u (reordered)", key, ia + 1, ib + 1);
    route_match_describe(&a->match, &x);
    route_match_describe(&b->match, &y);
    if (strcmp(sb_str(&x), sb_str(&y)) != 0)
        item(d, "~ %s: match %s -> %s", key, sb_str(&x), sb_str(&y));
    sb_reset(&x);
    sb_reset(&y);
    route_body(a, &x);
    route_body(b, &y);
    if (strcmp(sb_str(&x), sb_str(&y)) != 0) {
        item(d, "~ %s: %s -> %s", key, sb_str(&x), sb_str(&y));
        drain_route(d, lb, key, "changed");
    }
    sb_free(&x);
    sb_free(&y);
}

static void diff_routes_of(struct diff_ctx *d, const struct listener_conf *a,
                           const struct listener_conf *b)
{
    char title[160];
    struct strbuf key;
    sb_init(&key, 4096);
    snprintf(title, sizeof(title), "routes of listener %s", b->name);
    d->section = title;
    for (uint32_t i = 0; i < b->http.nroutes; i++) {
        sb_reset(&key);
        route_key(&b->http.routes[i], &key);
        int j = route_find(a, sb_str(&key));
        if (j < 0)
            item(d, "+ %s (#%u)", sb_str(&key), i + 1);
        else
            compare_route(d, a, (uint32_t)j, b, i, sb_str(&key));
    }
    for (uint32_t i = 0; a && a->mode == MODE_HTTP && i < a->http.nroutes; i++) {
        sb_reset(&key);
        route_key(&a->http.routes[i], &key);
        if (route_find(b, sb_str(&key)) < 0) {
            item(d, "- %s (was #%u)", sb_str(&key), i + 1);
            drain_route(d, a, sb_str(&key), "removed");
        }
    }
    d->section = NULL;
    sb_free(&key);
}

/* ---- backends and servers ---- */

/* Servers compare by name; a running configuration's servers added at run time count (a
 * reload to a file without them drains them). */
static const struct server *server_named(const struct backend *b, const char *name)
{
    for (uint32_t i = 0; b && i < b->nservers; i++)
        if (strcmp(b->servers[i].name, name) == 0)
            return &b->servers[i];
    return NULL;
}

static void compare_server(struct diff_ctx *d, const struct backend *be, const struct server *a,
                           const struct server *b)
{
    char line[256];
    if (strcmp(a->addr_text, b->addr_text) != 0) {
        item(d, "~ %s/%s: address %s -> %s", be->name, a->name, a->addr_text, b->addr_text);
        snprintf(line, sizeof(line), "connections to server %s/%s (its address changed)", be->name,
                 a->name);
        drains(d, line);
    }
    if (a->weight != b->weight)
        item(d, "~ %s/%s: weight %u -> %u", be->name, a->name, a->weight, b->weight);
    if (a->backup != b->backup)
        item(d, "~ %s/%s: backup %s -> %s", be->name, a->name, a->backup ? "yes" : "no",
             b->backup ? "yes" : "no");
    if (a->max_conns != b->max_conns)
        item(d, "~ %s/%s: max_connections %u -> %u", be->name, a->name, a->max_conns, b->max_conns);
}

static void compare_backend(struct diff_ctx *d, const struct backend *a, const struct backend *b)
{
    char line[256];
    if (a->balance != b->balance)
        item(d, "~ %s: balance %s -> %s", a->name, lb_ops_for(a->balance)->name,
             lb_ops_for(b->balance)->name);
    if (a->protocol != b->protocol || (a->tls != NULL) != (b->tls != NULL)) {
        item(d, "~ %s: how servers are spoken to (protocol or tls) changed", a->name);
        snprintf(line, sizeof(line), "connections to backend %s (protocol or TLS changed)",
                 a->name);
        drains(d, line);
    }
    if (a->hc.type != b->hc.type)
        item(d, "~ %s: health_check type changed", a->name);
    for (uint32_t i = 0; i < b->nservers; i++) {
        const struct server *sb = &b->servers[i], *sa = server_named(a, sb->name);
        if (!sa)
            item(d, "+ %s/%s (%s, weight %u)", b->name, sb->name, sb->addr_text, sb->weight);
        else
            compare_server(d, a, sa, sb);
    }
    for (uint32_t i = 0; i < a->nservers; i++) {
        const struct server *sa = &a->servers[i];
        if (server_named(b, sa->name))
            continue;
        item(d, "- %s/%s (%s%s)", a->name, sa->name, sa->addr_text,
             i >= a->nconfigured ? ", added at run time" : "");
        snprintf(line, sizeof(line), "connections to server %s/%s (removed)", a->name, sa->name);
        drains(d, line);
    }
}

static void diff_backends(struct diff_ctx *d, const struct config *o, const struct config *n)
{
    char line[256];
    d->section = "backends";
    for (uint32_t i = 0; i < n->nbackends; i++) {
        const struct backend *b = &n->backends[i], *a = config_backend(o, b->name);
        if (!a)
            item(d, "+ %s (%s, %u servers)", b->name, lb_ops_for(b->balance)->name, b->nconfigured);
        else
            compare_backend(d, a, b);
    }
    for (uint32_t i = 0; i < o->nbackends; i++) {
        const struct backend *a = &o->backends[i];
        if (config_backend(n, a->name))
            continue;
        item(d, "- %s", a->name);
        snprintf(line, sizeof(line), "connections to backend %s (removed)", a->name);
        drains(d, line);
    }
}

unsigned config_diff(const struct config *old, const struct config *new, struct strbuf *out)
{
    struct diff_ctx d = {.out = out};
    sb_init(&d.drain, 1 << 20);
    diff_listeners(&d, old, new);
    for (uint32_t i = 0; i < new->nlisteners; i++) {
        const struct listener_conf *b = &new->listeners[i], *a = listener_named(old, b->name);
        if (b->mode == MODE_HTTP)
            diff_routes_of(&d, a, b);
    }
    diff_backends(&d, old, new);
    if (d.n == 0)
        sb_puts(out, "no difference\n");
    else if (d.drain.len)
        sb_printf(out, "a reload would drain:\n%s", sb_str(&d.drain));
    else
        sb_puts(out, "a reload would drain: nothing (every open connection keeps its path)\n");
    sb_free(&d.drain);
    return d.n;
}
