/* schema_security.c — the keys of the route filters `waf` (ModSecurity with the OWASP
 * CRS) and `ext_authz` (a sub-request to an auth service). Their rows in the filter table
 * are in schema_filters.c; the rules of a `waf` are parsed here, once, at load.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "http/filter.h"
#include "http/filters/waf.h"
#include "schema.h"

/* ---- waf ------------------------------------------------------------------------------- */

static const struct cfg_enum waf_modes[] = {
    {"off", WAF_OFF},
    {"detection_only", WAF_DETECT},
    {"blocking", WAF_BLOCK},
    {NULL, 0},
};
_Static_assert(sizeof(enum waf_mode) == sizeof(int), "CT_ENUM stores an int");

/* Words separated by single spaces, each accepted by `ok` (which may rewrite it in place),
 * into the char * at key->off: the value goes into a rule as it is. */
static int parse_words(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target, bool (*ok)(char *w, size_t len), const char *expected)
{
    char **slot = (char **)((char *)target + key->off);
    char *s = cfg_dup_text(ctx, n, expected);
    if (!s)
        return -1;
    for (char *p = s;; p++) {
        size_t len = strcspn(p, " ");
        if (!ok(p, len)) {
            cfg_error(ctx, n, "expected %s separated by single spaces, got \"%s\"", expected, s);
            free(s);
            return -1;
        }
        p += len;
        if (!*p)
            break;
    }
    free(*slot);
    *slot = s;
    return 0;
}

/* A method name: capital letters, '-' and '_'. */
static bool method_ok(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isupper((unsigned char)p[i]) && p[i] != '-' && p[i] != '_')
            return false;
    return n > 0;
}

static int parse_methods(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    return parse_words(ctx, key, n, target, method_ok, "method names (capital letters)");
}

static const struct cfg_enum waf_over_limits[] = {
    {"inspect_partial", WAF_OVER_INSPECT_PARTIAL},
    {"reject", WAF_OVER_REJECT},
    {NULL, 0},
};
_Static_assert(sizeof(enum waf_over_limit) == sizeof(int), "CT_ENUM stores an int");

/* One media type "type/subtype" of [a-z0-9+.-] (lowercased in place), n bytes. */
static bool media_type_ok(char *p, size_t n)
{
    size_t slashes = 0, slash_at = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] = (char)tolower((unsigned char)p[i]);
        if (p[i] == '/')
            slashes++, slash_at = i;
        else if (!isalnum((unsigned char)p[i]) && !strchr("+-.", p[i]))
            return false;
    }
    return slashes == 1 && slash_at > 0 && slash_at + 1 < n;
}

/* Media types ("text/html application/json"), lowercased: SecResponseBodyMimeType. */
static int parse_media_types(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                             void *target)
{
    return parse_words(ctx, key, n, target, media_type_ok,
                       "media types such as \"text/html application/json\"");
}

static void waf_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    char err[512];
    if (ctx->nerrs)
        return; /* the settings are not all there: no rules to build */
    if (waf_rules_build(target, err, sizeof(err)) < 0)
        cfg_error(ctx, map, "%s", err);
}

static void waf_release(void *target)
{
    waf_rules_free(target);
    free(((struct filter_waf_conf *)target)->allowed_methods);
    free(((struct filter_waf_conf *)target)->response_body_types);
}

static const struct cfg_key waf_keys[] = {
    {"mode", CT_ENUM, 0, "blocking", .enums = waf_modes,
     .off = offsetof(struct filter_waf_conf, mode),
     .help = "`blocking`: a request whose anomaly score reaches `anomaly_threshold` is "
             "answered 403 with its request id (400 for a body that does not parse); "
             "`detection_only`: nothing is blocked, what "
             "matched is logged and counted (shadow mode); `off`: no inspection at all."},
    {"paranoia", CT_U32, 0, "1", .min = 1, .max = 4,
     .off = offsetof(struct filter_waf_conf, paranoia),
     .help = "The CRS paranoia level: 1 has the fewest false positives, 4 the most rules."},
    {"anomaly_threshold", CT_U32, 0, "5", .min = 1, .max = 1000,
     .off = offsetof(struct filter_waf_conf, anomaly_threshold),
     .help = "The CRS inbound anomaly score that blocks (a critical rule scores 5)."},
    {"response_threshold", CT_U32, 0, "4", .min = 1, .max = 1000,
     .off = offsetof(struct filter_waf_conf, response_threshold),
     .help = "The CRS outbound anomaly score (with `inspect_response`)."},
    {"inspect_body", CT_BOOL, 0, "true", .off = offsetof(struct filter_waf_conf, inspect_body),
     .help = "Request bodies (forms, JSON, XML) are read whole before the request goes to a "
             "server, within the listener's `limits.max_body_buffered` (a larger one is "
             "answered 413), and inspected."},
    {"inspect_response", CT_BOOL, 0, "false",
     .off = offsetof(struct filter_waf_conf, inspect_response),
     .help = "The response's status and header fields are inspected too; what matches is "
             "logged and counted, the response is not held back (see "
             "`inspect_response_body`)."},
    {"inspect_response_body", CT_BOOL, 0, "false",
     .off = offsetof(struct filter_waf_conf, inspect_response_body),
     .help = "Response bodies of `response_body_types` are inspected too (the CRS's "
             "RESPONSE-95x rules: SQL errors, stack traces, source code leaking out), status "
             "and fields with them. Such a response is held whole before the client sees any "
             "of it (up to `response_body_limit`): what the rules refuse is answered 403 (or "
             "the route's error page) instead. Holding costs the time to receive the body "
             "and its memory: the first byte reaches the client only after the last one "
             "reached Strata."},
    {"response_body_limit", CT_SIZE, 0, .def_doc = "the listener's `limits.max_body_buffered`",
     .max = 1u << 30, .off = offsetof(struct filter_waf_conf, response_body_limit),
     .help = "The most of a response body held and inspected."},
    {"response_body_over_limit", CT_ENUM, 0, "inspect_partial", .enums = waf_over_limits,
     .off = offsetof(struct filter_waf_conf, response_body_over_limit),
     .help = "A longer body: `inspect_partial` inspects its first `response_body_limit` "
             "bytes and, when they pass, sends them and streams the rest uninspected "
             "(ModSecurity's ProcessPartial); `reject` answers 500 (in `detection_only` "
             "mode: only logged). Either way Strata's log says so."},
    {"response_body_types", CT_CUSTOM, 0, "text/html text/plain text/xml application/json "
     "application/xml", .parse = parse_media_types,
     .off = offsetof(struct filter_waf_conf, response_body_types),
     .type_doc = "media types separated by spaces",
     .help = "The response media types (Content-Type without parameters) whose bodies are "
             "held and inspected; others stream as they come."},
    {"crs_setup", CT_STRING, 0, "/etc/modsecurity/crs/crs-setup.conf",
     .off = offsetof(struct filter_waf_conf, crs_setup),
     .help = "The CRS setup file (Debian's modsecurity-crs installs it here)."},
    {"crs_rules", CT_STRING, 0, "/usr/share/modsecurity-crs/rules",
     .off = offsetof(struct filter_waf_conf, crs_rules),
     .help = "The directory of the CRS rule files (`*.conf`)."},
    {"allowed_methods", CT_CUSTOM, 0, "GET HEAD POST OPTIONS PUT PATCH DELETE",
     .parse = parse_methods, .off = offsetof(struct filter_waf_conf, allowed_methods),
     .type_doc = "methods separated by spaces",
     .help = "The methods the CRS lets through (rule 911100); the CRS's own default leaves "
             "out PUT, PATCH and DELETE, which APIs use."},
    {"rules", CT_STRING, 0, .def_doc = "none", .off = offsetof(struct filter_waf_conf, rules),
     .help = "More rules in the ModSecurity language, after the CRS (exclusions such as "
             "`SecRuleRemoveById 920350`)."},
};

const struct cfg_section cfg_waf_section = {
    .path = "listeners[].routes[].waf",
    .help = "A web application firewall: ModSecurity (libmodsecurity3) with the OWASP Core "
            "Rule Set, in anomaly-scoring mode. The rules are parsed once when the "
            "configuration loads; each request is one ModSecurity transaction (URI, header "
            "fields, then the body). The ids of the rules that matched are in the access "
            "log (`waf_rules`) and counted by category in "
            "`strata_listener_waf_rule_matches_total`; ModSecurity's messages go to Strata's "
            "log (at most 5 a second per worker). It runs after the access filters and "
            "`ext_authz` (a request they refuse costs no inspection), before `grpc_web` and "
            "the rewrites.",
    .keys = waf_keys,
    .nkeys = ARRAY_SIZE(waf_keys),
    .finish = waf_finish,
    .release = waf_release,
};

/* ---- ext_authz ---------------------------------------------------------------------------- */

static const struct cfg_enum authz_failures[] = {
    {"503", EXT_AUTHZ_DENY_503},
    {"403", EXT_AUTHZ_DENY_403},
    {"allow", EXT_AUTHZ_ALLOW},
    {NULL, 0},
};
_Static_assert(sizeof(enum ext_authz_failure) == sizeof(int), "CT_ENUM stores an int");

static int parse_authz_backend(struct cfg_ctx *ctx, const struct cfg_key *key,
                               const struct ynode *n, void *target)
{
    return cfg_backend_ref(ctx, n, &((struct filter_ext_authz_conf *)target)->backend);
}

/* A list of field names (or one), lowercased, into the char ** at key->off and its count
 * at key->off2. */
static int parse_names(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target)
{
    char ***list = (char ***)((char *)target + key->off);
    uint32_t *count = (uint32_t *)((char *)target + key->off2);
    char b[64];
    if (n->kind != YN_SEQ && n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected a field name or a list of them, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    size_t items = n->kind == YN_SEQ ? n->n : 1;
    char **names = calloc(items ? items : 1, sizeof(*names));
    if (!names) {
        cfg_oom(ctx, n);
        return -1;
    }
    int bad = 0;
    uint32_t k = 0;
    for (size_t i = 0; i < items; i++) {
        const struct ynode *it = n->kind == YN_SEQ ? n->kids[i] : n;
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        if (cfg_check_field_name(ctx, it, "field name") < 0) {
            bad = -1;
        } else if (!(names[k] = strdup(it->text))) {
            cfg_oom(ctx, it);
            bad = -1;
        } else {
            for (char *p = names[k++]; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        }
        cfg_path_pop(ctx, mark);
    }
    for (uint32_t i = 0; *list && i < *count; i++)
        free((*list)[i]);
    free(*list);
    *list = names;
    *count = k;
    return bad;
}

static void free_names(char **list, uint32_t n)
{
    for (uint32_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

static int parse_authz_path(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                            void *target)
{
    struct filter_ext_authz_conf *c = target;
    char *s = cfg_dup_text(ctx, n, "a path such as /auth");
    if (s && (s[0] != '/' || strpbrk(s, " \t"))) {
        cfg_error(ctx, n, "expected a path starting with '/' without spaces, got \"%s\"", s);
        free(s);
        s = NULL;
    }
    if (!s)
        return -1;
    free(c->path);
    c->path = s;
    return 0;
}

/* Defaults of the lists (when absent): the credentials to the service; its challenge,
 * redirect and cookies back to the client. */
static void authz_init(struct cfg_ctx *ctx, void *target)
{
    static const char *const req[] = {"authorization", "cookie"};
    static const char *const cli[] = {"www-authenticate", "location", "set-cookie",
                                      "content-type"};
    struct filter_ext_authz_conf *c = target;
    c->request_headers = calloc(ARRAY_SIZE(req), sizeof(char *));
    c->client_headers = calloc(ARRAY_SIZE(cli), sizeof(char *));
    for (size_t i = 0; c->request_headers && i < ARRAY_SIZE(req); i++)
        if ((c->request_headers[c->nrequest_headers] = strdup(req[i])))
            c->nrequest_headers++;
    for (size_t i = 0; c->client_headers && i < ARRAY_SIZE(cli); i++)
        if ((c->client_headers[c->nclient_headers] = strdup(cli[i])))
            c->nclient_headers++;
    if (c->nrequest_headers < ARRAY_SIZE(req) || c->nclient_headers < ARRAY_SIZE(cli))
        cfg_oom(ctx, NULL);
}

static void authz_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct filter_ext_authz_conf *c = target;
    if (!c->path && !(c->path = strdup("/")))
        cfg_oom(ctx, map);
    /* the sub-request's own route: its name in logs, its retries (connect failures and
     * resets move to another server while the timeout allows) */
    c->route.name = "ext_authz";
    c->route.action = ROUTE_BACKEND;
    c->route.backend = c->backend;
    if (!c->route.retry.tries)
        c->route.retry.tries = 1;
    c->route.retry.on = RETRY_ON_RESET;
}

static void authz_release(void *target)
{
    struct filter_ext_authz_conf *c = target;
    free_names(c->request_headers, c->nrequest_headers);
    free_names(c->upstream_headers, c->nupstream_headers);
    free_names(c->client_headers, c->nclient_headers);
    free(c->path);
}

#define AUTHZ_OFF(f) offsetof(struct filter_ext_authz_conf, f)

static const struct cfg_key authz_keys[] = {
    {"backend", CT_CUSTOM, CK_REQUIRED, .parse = parse_authz_backend, .type_doc = "backend name",
     .help = "The auth service: a backend of this configuration (its balancing, pools, "
             "health checks and TLS apply)."},
    {"path", CT_CUSTOM, 0, .parse = parse_authz_path, .type_doc = "path", .def_doc = "`/`",
     .help = "The path of the check. It is a GET with the chosen request fields, "
             "`X-Original-Method` and `X-Original-URI` (the client's request line)."},
    {"request_headers", CT_CUSTOM, 0, .parse = parse_names, .off = AUTHZ_OFF(request_headers),
     .off2 = AUTHZ_OFF(nrequest_headers), .type_doc = "list of field names",
     .def_doc = "`[authorization, cookie]`",
     .help = "Request fields sent to the auth service; they are also the cache key."},
    {"upstream_headers", CT_CUSTOM, 0, .parse = parse_names, .off = AUTHZ_OFF(upstream_headers),
     .off2 = AUTHZ_OFF(nupstream_headers), .type_doc = "list of field names", .def_doc = "none",
     .help = "Fields of the service's 2xx set on the request before it goes to the server "
             "(`x-user-id`)."},
    {"client_headers", CT_CUSTOM, 0, .parse = parse_names, .off = AUTHZ_OFF(client_headers),
     .off2 = AUTHZ_OFF(nclient_headers), .type_doc = "list of field names",
     .def_doc = "`[www-authenticate, location, set-cookie, content-type]`",
     .help = "Fields of any other answer of the service passed to the client with its "
             "status and body (up to 8 KiB)."},
    {"timeout", CT_DURATION, 0, "1s", .min = 1, .max = 60000, .off = AUTHZ_OFF(timeout_ms),
     .help = "Time the whole check has, connect included; past it `failure_mode` applies."},
    {"failure_mode", CT_ENUM, 0, "503", .enums = authz_failures, .off = AUTHZ_OFF(failure),
     .help = "When the service cannot be reached, breaks the exchange or is too slow: "
             "answer `503` or `403`, or `allow` the request (fail open)."},
    {"cache", CT_DURATION, 0, "0", .min = 0, .max = 3600000, .off = AUTHZ_OFF(cache_ms),
     .help = "How long a result is kept, per worker, for requests with the same "
             "`request_headers` values (`0`: every request is checked). At most 256 results "
             "per worker; a result larger than 2 KiB is not kept."},
    {"tries", CT_U32, 0, "1", .min = 1, .max = 5, .off = AUTHZ_OFF(route.retry.tries),
     .help = "Attempts, each on another server of the backend, when a connect fails or the "
             "connection is reset before an answer (within `timeout`)."},
};

const struct cfg_section cfg_ext_authz_section = {
    .path = "listeners[].routes[].ext_authz",
    .help = "External authorization, as NGINX's auth_request or Envoy's ext_authz: each "
            "request of the route is first checked by a sub-request to an auth service. "
            "Its 2xx lets the request on (with `upstream_headers` copied in); any other "
            "answer goes to the client as it is (status, `client_headers`, body). Results "
            "are counted in `strata_listener_ext_authz_checks_total`.",
    .keys = authz_keys,
    .nkeys = ARRAY_SIZE(authz_keys),
    .init = authz_init,
    .finish = authz_finish,
    .release = authz_release,
};
