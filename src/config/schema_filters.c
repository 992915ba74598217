/* schema_filters.c — the keys of an HTTP route that configure its built-in filters:
 * grpc_web, path_rewrite, request_headers, response_headers, redirect and respond. Each key becomes
 * one `struct filter_conf` (ops + a malloc'd settings struct) appended to the route's
 * filters, in the order of the route's table (schema_http.c), which is the order they run.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "http/filter.h"
#include "http/filters/rate_limit-t.h"
#include "http/filters/auth-t.h"
#include "http/filters/jwt.h"
#include "http/filters/util.h"
#include "http/router.h"
#include "schema.h"

#define BODY_MAX (64 * 1024) /* respond: a fixed answer, not a file server */

/* ---- shared checks ---------------------------------------------------------------------- */

char *cfg_dup_text(struct cfg_ctx *ctx, const struct ynode *n, const char *what)
{
    char b[64];
    if (n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected %s, got %s", what, cfg_describe(n, b, sizeof(b)));
        return NULL;
    }
    for (size_t i = 0; i < n->len; i++) {
        unsigned char c = (unsigned char)n->text[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            cfg_error(ctx, n, "expected %s, got a control character at offset %zu", what, i);
            return NULL;
        }
    }
    char *s = strdup(n->text);
    if (!s)
        cfg_oom(ctx, n);
    return s;
}

int cfg_check_field_name(struct cfg_ctx *ctx, const struct ynode *n, const char *what)
{
    char b[64];
    if (n->kind != YN_SCALAR || !http_token_valid(n->text, n->len)) {
        cfg_error(ctx, n, "expected a %s (letters, digits and !#$%%&'*+-.^_`|~), got %s", what,
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (http_field_reserved(n->text, n->len)) {
        cfg_error(ctx, n,
                  "%s \"%s\" is a connection or framing field that Strata manages itself "
                  "(Host is the request's authority: match it with `host`)",
                  what, n->text);
        return -1;
    }
    return 0;
}

/* A value template: text without control characters whose {variables} are known. */
static char *dup_template(struct cfg_ctx *ctx, const struct ynode *n, bool no_space)
{
    char why[128];
    char *s = cfg_dup_text(ctx, n, "a string (a template such as \"{client_ip}\")");
    if (!s)
        return NULL;
    if (tmpl_check(s, n->len, why, sizeof(why)) < 0) {
        cfg_error(ctx, n, "%s", why);
        free(s);
        return NULL;
    }
    if (no_space && (n->len == 0 || strpbrk(s, " \t"))) {
        cfg_error(ctx, n, "expected a URL without spaces, got \"%s\"", s);
        free(s);
        return NULL;
    }
    return s;
}

/* A path part: no control characters and no spaces; `slash`: must start with '/'. */
static char *dup_path(struct cfg_ctx *ctx, const struct ynode *n, bool slash)
{
    char *s = cfg_dup_text(ctx, n, "a path such as /v1/");
    if (s && (strpbrk(s, " \t") || (slash && s[0] != '/'))) {
        cfg_error(ctx, n, "expected a path%s without spaces, got \"%s\"",
                  slash ? " starting with '/'" : "", s);
        free(s);
        s = NULL;
    }
    return s;
}

/* ---- path_rewrite ------------------------------------------------------------------------ */

static int parse_rewrite_part(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                              void *target)
{
    struct filter_path_rewrite_conf *c = target;
    if (strcmp(key->name, "regex") == 0) {
        struct str_match m = {0};
        char err[200];
        if (n->kind != YN_SCALAR || str_match_compile(&m, n->text, err, sizeof(err)) < 0) {
            cfg_error(ctx, n, "invalid regex: %s",
                      n->kind == YN_SCALAR ? err : "expected a string");
            return -1;
        }
        c->re = m.re;
        free(m.text);
        return 0;
    }
    bool replace = strcmp(key->name, "replace") == 0;
    char *s = dup_path(ctx, n, !replace);
    if (!s)
        return -1;
    if (replace) {
        c->replace = s;
        c->replace_len = (uint32_t)n->len;
    } else {
        c->prefix = s;
        c->prefix_len = (uint32_t)n->len;
    }
    return 0;
}

static void path_rewrite_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct ynode *prefix = ymap_get(map, "prefix"), *regex = ymap_get(map, "regex");
    if (!prefix && !regex)
        cfg_error(ctx, map, "expected `prefix` or `regex` (what is replaced)");
    else if (prefix && regex)
        cfg_error(ctx, ymap_key(map, "regex"), "give either `prefix` or `regex`, not both");
}

static void path_rewrite_release(void *target)
{
    struct filter_path_rewrite_conf *c = target;
    struct str_match m = {.kind = SM_REGEX, .re = c->re};
    str_match_free(&m);
    free(c->prefix);
    free(c->replace);
}

static const struct cfg_key path_rewrite_keys[] = {
    {"prefix", CT_CUSTOM, .parse = parse_rewrite_part, .type_doc = "path", .def_doc = "none",
     .help = "A path starting with this prefix has it replaced by `replace` "
             "(`{ prefix: /v1/, replace: / }` sends /v1/users as /users)."},
    {"regex", CT_CUSTOM, .parse = parse_rewrite_part, .type_doc = "PCRE2 regex", .def_doc = "none",
     .help = "Instead of `prefix`: the first match of this regex in the path is replaced by "
             "`replace`, where `$1`..`$9` are its groups, `$0` the whole match and `$$` a `$` "
             "(`{ regex: '^/u/(.*)$', replace: '/users/$1' }`)."},
    {"replace", CT_CUSTOM, CK_REQUIRED, .parse = parse_rewrite_part, .type_doc = "string",
     .help = "The replacement; may be empty. A result not starting with `/` gets one."},
};

const struct cfg_section cfg_path_rewrite_section = {
    .path = "listeners[].routes[].path_rewrite",
    .help = "Rewrites the request's path before it is sent to the server; the query is kept, "
            "and the access log shows the path as received. A path that does not match is "
            "left as it is.",
    .keys = path_rewrite_keys,
    .nkeys = ARRAY_SIZE(path_rewrite_keys),
    .finish = path_rewrite_finish,
    .release = path_rewrite_release,
};

/* ---- request_headers / response_headers ---------------------------------------------------- */

static struct hdr_op *add_op(struct cfg_ctx *ctx, struct filter_headers_conf *c,
                             const struct ynode *at)
{
    struct hdr_op *ops = realloc(c->ops, (c->nops + 1) * sizeof(*ops));
    if (!ops) {
        cfg_oom(ctx, at);
        return NULL;
    }
    c->ops = ops;
    memset(&ops[c->nops], 0, sizeof(ops[0]));
    return &ops[c->nops++];
}

/* One operation on field `name` (a scalar node) with `value` (NULL for remove). */
static int header_op(struct cfg_ctx *ctx, struct filter_headers_conf *c, enum hdr_op_kind kind,
                     const struct ynode *name, const struct ynode *value)
{
    if (cfg_check_field_name(ctx, name, "header name") < 0)
        return -1;
    char *v = NULL;
    if (value && !(v = dup_template(ctx, value, false)))
        return -1;
    struct hdr_op *op = add_op(ctx, c, name);
    char *nm = strdup(name->text);
    if (!op || !nm) {
        if (op && !nm)
            cfg_oom(ctx, name);
        free(v);
        free(nm);
        return -1;
    }
    *op = (struct hdr_op){kind, nm, (uint32_t)name->len, v, v ? (uint32_t)value->len : 0};
    return 0;
}

static int parse_header_ops(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                            void *target)
{
    struct filter_headers_conf *c = target;
    enum hdr_op_kind kind = strcmp(key->name, "set") == 0   ? HDR_SET
                            : strcmp(key->name, "add") == 0 ? HDR_ADD
                                                            : HDR_REMOVE;
    char b[64];
    int bad = 0;
    if (kind == HDR_REMOVE && (n->kind == YN_SEQ || n->kind == YN_SCALAR)) {
        size_t count = n->kind == YN_SEQ ? n->n : 1;
        for (size_t i = 0; i < count; i++) {
            size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
            bad |= header_op(ctx, c, kind, n->kind == YN_SEQ ? n->kids[i] : n, NULL);
            cfg_path_pop(ctx, mark);
        }
        return bad ? -1 : 0;
    }
    if (kind == HDR_REMOVE || n->kind != YN_MAP) {
        cfg_error(ctx, n, "expected %s, got %s",
                  kind == HDR_REMOVE ? "a header name or a sequence of them"
                                     : "a mapping of header names to values",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->kids[2 * i];
        size_t mark = cfg_path_key(ctx, k->text ? k->text : "?");
        bad |= header_op(ctx, c, kind, k, n->kids[2 * i + 1]);
        cfg_path_pop(ctx, mark);
    }
    return bad ? -1 : 0;
}

static void headers_release(void *target)
{
    struct filter_headers_conf *c = target;
    for (uint32_t i = 0; c->ops && i < c->nops; i++) {
        free(c->ops[i].name);
        free(c->ops[i].value);
    }
    free(c->ops);
}

static const struct cfg_key headers_keys[] = {
    {"set", CT_CUSTOM, .parse = parse_header_ops, .type_doc = "mapping of names to templates",
     .def_doc = "none",
     .help = "Fields set to a value, replacing any the message has: `{ x-env: prod }`."},
    {"add", CT_CUSTOM, .parse = parse_header_ops, .type_doc = "mapping of names to templates",
     .def_doc = "none", .help = "Fields added, after any the message has."},
    {"remove", CT_CUSTOM, .parse = parse_header_ops, .type_doc = "name or list of names",
     .def_doc = "none", .help = "Fields removed (every field of that name)."},
};

#define HEADERS_HELP(what)                                                                         \
    "Changes the " what " fields: `set`, then `add`, then `remove`. Values are templates: "        \
    "`{scheme}`, `{host}` (without port), `{authority}`, `{path}`, `{query}`, "                    \
    "`{request_uri}` (path and query), `{client_ip}`, `{request_id}`, `{method}`; `{{` is a "      \
    "literal `{`. Names are field names (tokens); the fields Strata manages itself (Host, "        \
    "Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade, Expect, "    \
    "Proxy-Connection) are refused."

const struct cfg_section cfg_request_headers_section = {
    .path = "listeners[].routes[].request_headers",
    .help = HEADERS_HELP("request's") " They apply before the request is sent to a server.",
    .keys = headers_keys,
    .nkeys = ARRAY_SIZE(headers_keys),
    .release = headers_release,
};

const struct cfg_section cfg_response_headers_section = {
    .path = "listeners[].routes[].response_headers",
    .help = HEADERS_HELP("response's") " They apply to every response of the route, Strata's "
                                       "own answers included.",
    .keys = headers_keys,
    .nkeys = ARRAY_SIZE(headers_keys),
    .release = headers_release,
};

/* ---- redirect / respond ------------------------------------------------------------------- */

static int parse_location(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                          void *target)
{
    struct filter_redirect_conf *c = target;
    free(c->location);
    return (c->location = dup_template(ctx, n, true)) ? 0 : -1;
}

static void redirect_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct filter_redirect_conf *c = target;
    const struct ynode *st = ymap_get(map, "status");
    if (c->status != 301 && c->status != 302 && c->status != 303 && c->status != 307 &&
        c->status != 308) {
        size_t mark = cfg_path_key(ctx, "status");
        cfg_error(ctx, st ? st : map, "expected 301, 302, 303, 307 or 308, got %u", c->status);
        cfg_path_pop(ctx, mark);
    }
}

static void redirect_release(void *target)
{
    free(((struct filter_redirect_conf *)target)->location);
}

static int parse_status(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    char *end, b[64];
    long v = n->kind == YN_SCALAR ? strtol(n->text, &end, 10) : 0;
    if (n->kind != YN_SCALAR || !isdigit((unsigned char)n->text[0]) || *end || v < key->min ||
        v > key->max) {
        cfg_error(ctx, n, "expected a status code from %lld to %lld, got %s", (long long)key->min,
                  (long long)key->max, cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    *(uint16_t *)((char *)target + key->off) = (uint16_t)v;
    return 0;
}

static const struct cfg_key redirect_keys[] = {
    {"status", CT_CUSTOM, 0, "302", .parse = parse_status, .min = 100, .max = 999,
     .off = offsetof(struct filter_redirect_conf, status), .type_doc = "301, 302, 303, 307, 308",
     .help = "The status: 301/308 permanent, 302/303/307 temporary; 307 and 308 keep the "
             "method and body."},
    {"location", CT_CUSTOM, CK_REQUIRED, .parse = parse_location, .type_doc = "template",
     .help = "Where to: a URL template, e.g. `https://{host}{request_uri}` (the variables of "
             "`request_headers`)."},
};

const struct cfg_section cfg_redirect_section = {
    .path = "listeners[].routes[].redirect",
    .help = "Answers every request of the route with a redirect; no backend is used.",
    .keys = redirect_keys,
    .nkeys = ARRAY_SIZE(redirect_keys),
    .finish = redirect_finish,
    .release = redirect_release,
};

static int parse_body(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                      void *target)
{
    struct filter_respond_conf *c = target;
    char b[64];
    if (n->kind != YN_SCALAR || n->len > BODY_MAX) {
        cfg_error(ctx, n, "expected a string of at most %d bytes, got %s", BODY_MAX,
                  n->kind == YN_SCALAR ? "a longer one" : cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    char *s = malloc(n->len + 1);
    if (!s) {
        cfg_oom(ctx, n);
        return -1;
    }
    memcpy(s, n->text, n->len + 1);
    free(c->body);
    c->body = s;
    c->body_len = (uint32_t)n->len;
    return 0;
}

static void respond_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct filter_respond_conf *c = target;
    if ((c->status == 204 || c->status == 304) && c->body_len) {
        size_t mark = cfg_path_key(ctx, "body");
        cfg_error(ctx, ymap_get(map, "body"), "a %u answer has no body", c->status);
        cfg_path_pop(ctx, mark);
    }
}

static void respond_release(void *target)
{
    free(((struct filter_respond_conf *)target)->body);
}

static const struct cfg_key respond_keys[] = {
    {"status", CT_CUSTOM, 0, "200", .parse = parse_status, .min = 200, .max = 599,
     .off = offsetof(struct filter_respond_conf, status), .type_doc = "status 200..599",
     .help = "The status of the answer."},
    {"body", CT_CUSTOM, .parse = parse_body, .type_doc = "string", .def_doc = "empty",
     .help = "The body, as is (up to 64 KiB); none with 204 and 304."},
    {"content_type", CT_STRING, 0, "text/plain; charset=utf-8",
     .off = offsetof(struct filter_respond_conf, content_type),
     .help = "The Content-Type field of the answer."},
};

const struct cfg_section cfg_respond_section = {
    .path = "listeners[].routes[].respond",
    .help = "Answers every request of the route with a fixed response; no backend is used "
            "(health endpoints, maintenance pages, blocking a path).",
    .keys = respond_keys,
    .nkeys = ARRAY_SIZE(respond_keys),
    .finish = respond_finish,
    .release = respond_release,
};

/* ---- grpc_web ------------------------------------------------------------------------------ */

const struct cfg_section cfg_grpc_web_section = {
    .path = "listeners[].routes[].grpc_web",
    .help = "Translates gRPC-Web requests from browsers (`application/grpc-web`, "
            "`application/grpc-web+proto`, `application/grpc-web-text`: base64) into gRPC for "
            "the servers (`application/grpc`, `te: trailers`), and their gRPC responses back: "
            "the content type of the client's variant, messages as they stream (base64 for "
            "text), and the trailers (`grpc-status`, `grpc-message`, metadata) as the last "
            "frame of the body, as Envoy's grpc_web filter does. Other requests of the route "
            "pass untouched. No settings yet: write `grpc_web: {}`. Servers are reached over "
            "HTTP/2 (`protocol: h2c` or `h2` on the backend).",
};

/* ---- the filter list of a route ---------------------------------------------------------- */

struct filter_kind {
    const char *key;
    const struct filter_ops *ops;
    const struct cfg_section *sec;
    size_t size;
};

static const struct filter_kind filter_kinds[] = {
    {"path_rewrite", &filter_path_rewrite, &cfg_path_rewrite_section,
     sizeof(struct filter_path_rewrite_conf)},
    {"request_headers", &filter_request_headers, &cfg_request_headers_section,
     sizeof(struct filter_headers_conf)},
    {"response_headers", &filter_response_headers, &cfg_response_headers_section,
     sizeof(struct filter_headers_conf)},
    {"redirect", &filter_redirect, &cfg_redirect_section, sizeof(struct filter_redirect_conf)},
    {"respond", &filter_respond, &cfg_respond_section, sizeof(struct filter_respond_conf)},
    {"grpc_web", &filter_grpc_web, &cfg_grpc_web_section, 1},
    {"rate_limit", &filter_rate_limit, &cfg_rate_limit_section,
     sizeof(struct filter_rate_limit_conf)},
    {"jwt", &filter_jwt, &cfg_jwt_section, sizeof(struct filter_jwt_conf)},
    {"basic_auth", &filter_basic_auth, &cfg_basic_auth_section,
     sizeof(struct filter_basic_auth_conf)},
    {"cors", &filter_cors, &cfg_cors_section, sizeof(struct filter_cors_conf)},
    {"ip_access", &filter_ip_access, &cfg_ip_access_section, sizeof(struct filter_ip_access_conf)},
    {"bot", &filter_bot, &cfg_bot_section, sizeof(struct filter_bot_conf)},
    {"request_limits", &filter_request_limits, &cfg_request_limits_section,
     sizeof(struct filter_request_limits_conf)},
    {"waf", &filter_waf, &cfg_waf_section, sizeof(struct filter_waf_conf)},
    {"ext_authz", &filter_ext_authz, &cfg_ext_authz_section, sizeof(struct filter_ext_authz_conf)},
};

int cfg_parse_filter(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                     void *target)
{
    struct http_route *r = target;
    const struct filter_kind *k = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(filter_kinds) && !k; i++)
        if (strcmp(filter_kinds[i].key, key->name) == 0)
            k = &filter_kinds[i];
    BUG_ON(!k);
    struct filter_conf *f = realloc(r->filters, (r->nfilters + 1) * sizeof(*f));
    void *conf = calloc(1, k->size);
    if (f)
        r->filters = f;
    if (!f || !conf) {
        free(conf);
        cfg_oom(ctx, n);
        return -1;
    }
    f[r->nfilters++] = (struct filter_conf){k->ops, conf};
    unsigned before = ctx->nerrs + ctx->dropped;
    cfg_walk_section(ctx, k->sec, n, conf);
    return ctx->nerrs + ctx->dropped == before ? 0 : -1;
}

void cfg_free_route_filters(struct http_route *r)
{
    for (uint32_t i = 0; r->filters && i < r->nfilters; i++) {
        for (size_t k = 0; k < ARRAY_SIZE(filter_kinds); k++) {
            if (filter_kinds[k].ops == r->filters[i].ops) {
                cfg_free_target(filter_kinds[k].sec, r->filters[i].conf);
                break;
            }
        }
        free(r->filters[i].conf);
    }
    free(r->filters);
    r->filters = NULL;
    r->nfilters = 0;
}
