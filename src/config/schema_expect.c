/* schema_expect.c — the `expect:` section: requests with the route, backend and status
 * they must get. Checked when the configuration loads (`strata check`, `strata run`,
 * every reload), by the same explain walk as `strata explain` (http/explain.h, the real
 * router): a configuration that breaks one is refused with the expectation's
 * file:line:col.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/explain.h"
#include "schema.h"

#define EXPECT_MAX_HEADERS 64

/* `headers: { name: value, ... }` -> "name: value" strings. */
static int parse_headers(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    struct expect_conf *e = target;
    char b[64];
    (void)key;
    if (n->kind != YN_MAP || n->n > EXPECT_MAX_HEADERS) {
        cfg_error(ctx, n, "expected a mapping of up to %d header fields, got %s",
                  EXPECT_MAX_HEADERS, cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(e->headers = calloc(n->n ? n->n : 1, sizeof(*e->headers)))) {
        cfg_oom(ctx, n);
        return -1;
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        if (k->kind != YN_SCALAR || v->kind != YN_SCALAR) {
            cfg_error(ctx, v->kind != YN_SCALAR ? v : k, "expected `name: value`, got %s",
                      cfg_describe(v->kind != YN_SCALAR ? v : k, b, sizeof(b)));
            return -1;
        }
        size_t len = k->len + v->len + 3;
        if (!(e->headers[e->nheaders] = malloc(len))) {
            cfg_oom(ctx, n);
            return -1;
        }
        snprintf(e->headers[e->nheaders++], len, "%s: %s", k->text, v->text);
    }
    return 0;
}

static void release_headers(const struct cfg_key *key, void *target)
{
    struct expect_conf *e = target;
    (void)key;
    for (uint32_t i = 0; i < e->nheaders; i++)
        free(e->headers[i]);
    free(e->headers);
    e->headers = NULL;
    e->nheaders = 0;
}

static const struct cfg_key expect_keys[] = {
    {"request", CT_STRING, CK_REQUIRED, .off = offsetof(struct expect_conf, request),
     .help = "`METHOD URL`, as `strata explain` takes it: `GET https://api.example.com/v1/` "
             "(the URL's port and scheme choose the listener) or `GET /path` with a `host` "
             "header."},
    {"headers", CT_CUSTOM, .parse = parse_headers, .release = release_headers,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Header fields of the request, e.g. `{ x-canary: \"1\" }`."},
    {"listener", CT_NAME, 0, .def_doc = "by the URL", .off = offsetof(struct expect_conf, listener),
     .help = "The listener that receives the request."},
    {"route", CT_STRING, 0, .def_doc = "not checked", .off = offsetof(struct expect_conf, route),
     .help = "The name of the route it must take (`name:`, or `route#N`); `none` for no "
             "route (404)."},
    {"backend", CT_NAME, 0, .def_doc = "not checked", .off = offsetof(struct expect_conf, backend),
     .help = "The backend it must go to (for a `split`, one of its targets with a weight)."},
    {"status", CT_U32, 0, "0", .min = 0, .max = 599, .off = offsetof(struct expect_conf, status),
     .help = "The status Strata itself must answer: 404 without a route, a `redirect` or "
             "`respond` route's status. 0 = not checked."},
};

const struct cfg_section cfg_expect_section = {
    .path = "expect[]",
    .help = "One expectation: a request and what it must get. Every expectation is checked "
            "when the configuration loads (`strata check`, start, reload); one that fails "
            "refuses the configuration.",
    .keys = expect_keys,
    .nkeys = sizeof(expect_keys) / sizeof(expect_keys[0]),
    .size = sizeof(struct expect_conf),
};

/* ---- verification ---- */

/* Reports msg at expect[i].key (the key's value, else the item). */
static void expect_error(struct cfg_ctx *ctx, uint32_t i, const char *key, const char *msg)
{
    const struct ynode *seq = ymap_get(ctx->doc, "expect");
    const struct ynode *item = seq && seq->kind == YN_SEQ && i < seq->n ? seq->kids[i] : seq;
    const struct ynode *at =
        item && item->kind == YN_MAP && ymap_get(item, key) ? ymap_get(item, key) : item;
    size_t mark = cfg_path_key(ctx, "expect");
    cfg_path_index(ctx, i);
    cfg_path_key(ctx, key);
    cfg_error(ctx, at, "%s", msg);
    cfg_path_pop(ctx, mark);
}

static const struct http_route *route_named(const struct listener_conf *l, const char *name)
{
    for (uint32_t i = 0; i < l->http.nroutes; i++)
        if (strcmp(l->http.routes[i].name, name) == 0)
            return &l->http.routes[i];
    return NULL;
}

/* "takes route X" with, for an expected route Y of the listener, why Y did not. */
static void check_route(struct cfg_ctx *ctx, uint32_t i, const struct expect_conf *e,
                        const struct explain_input *in, const struct explain_result *res)
{
    const char *got = res->route ? res->route->name : "none";
    if (strcmp(got, e->route) == 0)
        return;
    struct strbuf sb;
    sb_init(&sb, 2048);
    if (res->route)
        sb_printf(&sb, "%s takes route \"%s\" of listener %s, expected \"%s\"", e->request, got,
                  res->listener->name, e->route);
    else
        sb_printf(&sb, "%s matches no route of listener %s (404), expected \"%s\"", e->request,
                  res->listener->name, e->route);
    const struct http_route *want = route_named(res->listener, e->route);
    if (want) {
        size_t before = sb.len;
        sb_printf(&sb, " (its condition ");
        size_t mid = sb.len;
        explain_route_miss(want, in, &sb);
        if (sb.len == mid) { /* it holds: an earlier route took the request first */
            sb.len = before;
            sb_printf(&sb, " (it matches too, but \"%s\" comes first)", got);
        } else {
            sb_puts(&sb, " does not hold)");
        }
    } else if (strcmp(e->route, "none") != 0) {
        sb_printf(&sb, " (listener %s has no route of that name)", res->listener->name);
    }
    expect_error(ctx, i, "route", sb.err ? "route differs" : sb_str(&sb));
    sb_free(&sb);
}

static bool route_reaches(const struct http_route *r, const char *backend)
{
    if (r && r->action == ROUTE_BACKEND)
        return strcmp(r->backend->name, backend) == 0;
    for (uint32_t k = 0; r && r->action == ROUTE_SPLIT && k < r->nsplit; k++)
        if (r->split[k].weight && strcmp(r->split[k].backend->name, backend) == 0)
            return true;
    return false;
}

static void check_backend(struct cfg_ctx *ctx, uint32_t i, const struct expect_conf *e,
                          const struct explain_result *res)
{
    char msg[512];
    const struct http_route *r = res->route;
    if (!res->status && route_reaches(r, e->backend))
        return;
    if (res->status)
        snprintf(msg, sizeof(msg), "%s is answered %d by Strata (%s%s%s), expected backend %s",
                 e->request, res->status, r ? "route \"" : "no route", r ? r->name : "",
                 r ? "\"" : "", e->backend);
    else if (r->action == ROUTE_BACKEND)
        snprintf(msg, sizeof(msg), "%s goes to backend %s (route \"%s\"), expected %s", e->request,
                 r->backend->name, r->name, e->backend);
    else
        snprintf(msg, sizeof(msg),
                 "%s is split by route \"%s\" among backends that do not "
                 "include %s",
                 e->request, r->name, e->backend);
    expect_error(ctx, i, "backend", msg);
}

static void check_status(struct cfg_ctx *ctx, uint32_t i, const struct expect_conf *e,
                         const struct explain_result *res)
{
    char msg[512];
    if ((uint32_t)res->status == e->status)
        return;
    if (res->status)
        snprintf(msg, sizeof(msg), "%s is answered %d by Strata (%s%s%s), expected %u", e->request,
                 res->status, res->route ? "route \"" : "no route",
                 res->route ? res->route->name : "", res->route ? "\"" : "", e->status);
    else
        snprintf(msg, sizeof(msg),
                 "%s is proxied by route \"%s\" (its server answers), "
                 "expected Strata to answer %u",
                 e->request, res->route->name, e->status);
    expect_error(ctx, i, "status", msg);
}

void cfg_expect_verify(struct cfg_ctx *ctx)
{
    const struct cfg_root *root = ctx->root;
    if (ctx->nerrs) /* routes may be half built: the errors so far say what to fix first */
        return;
    for (uint32_t i = 0; i < root->nexpects; i++) {
        const struct expect_conf *e = &root->expects[i];
        struct explain_input in = {.request = e->request,
                                   .headers = (const char *const *)e->headers,
                                   .nheaders = e->nheaders,
                                   .listener = e->listener};
        struct explain_result res;
        char err[512];
        if (explain_run(root->listeners, root->nlisteners, &in, &res, NULL, err, sizeof(err))) {
            expect_error(ctx, i, e->listener && strstr(err, "listener") ? "listener" : "request",
                         err);
            continue;
        }
        if (e->route)
            check_route(ctx, i, e, &in, &res);
        if (e->backend)
            check_backend(ctx, i, e, &res);
        if (e->status)
            check_status(ctx, i, e, &res);
    }
}
