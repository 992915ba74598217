/* schema_auth.c — the keys of the access filters a route (or a listener's `http`) lists:
 * jwt, basic_auth, cors, ip_access and bot. Files they name (JWKS, htpasswd, prefix lists,
 * user-agent lists) are read here, at load, so a bad file is a configuration error with
 * the position of the key that named it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "http/filter.h"
#include "http/filters/auth.h"
#include "http/router.h"
#include "http/filters/jwt.h"
#include "http/filters/util.h"
#include "schema.h"

#define FILE_MAX (4 << 20) /* the largest list or key file read at load */

#define SECTION(p, h, k, ...)                                                                      \
    {                                                                                              \
        .path = p, .help = h, .keys = k, .nkeys = ARRAY_SIZE(k), __VA_ARGS__                       \
    }

/* ---- shared ---------------------------------------------------------------------------- */

char *cfg_read_file(struct cfg_ctx *ctx, const struct ynode *at, const char *path, size_t max,
                    size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc(max + 1) : NULL;
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int err = errno;
    if (f)
        fclose(f);
    if (!f || !buf || n > max) {
        if (f && buf)
            cfg_error(ctx, at, "cannot read %s: larger than %zu bytes", path, max);
        else
            cfg_error(ctx, at, "cannot read %s: %s", path, !f ? strerror(err) : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static char *read_small_file(struct cfg_ctx *ctx, const struct ynode *at, const char *path,
                             size_t *len)
{
    return cfg_read_file(ctx, at, path, FILE_MAX, len);
}

/* A string or a sequence of strings (each checked by cfg_dup_text) into a malloc'd array. */
static int parse_strings(struct cfg_ctx *ctx, const struct ynode *n, const char *what, char ***out,
                         uint32_t *count)
{
    char b[64];
    size_t cnt = n->kind == YN_SEQ ? n->n : 1;
    if ((n->kind != YN_SEQ && n->kind != YN_SCALAR) || cnt == 0) {
        cfg_error(ctx, n, "expected %s or a sequence of them, got %s", what,
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    char **arr = calloc(cnt, sizeof(*arr));
    if (!arr) {
        cfg_oom(ctx, n);
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        arr[i] = cfg_dup_text(ctx, n->kind == YN_SEQ ? n->kids[i] : n, what);
        cfg_path_pop(ctx, mark);
        if (!arr[i]) {
            while (i-- > 0)
                free(arr[i]);
            free(arr);
            return -1;
        }
    }
    *out = arr;
    *count = (uint32_t)cnt;
    return 0;
}

static void free_strings(char **arr, uint32_t n)
{
    for (uint32_t i = 0; arr && i < n; i++)
        free(arr[i]);
    free(arr);
}

/* ---- on a listener ---------------------------------------------------------------------- */

/* The listener's access filters are parsed as a route's are (cfg_parse_filter), into a
 * route standing in for the listener. */
int cfg_parse_listener_filter(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                              void *target)
{
    struct http_listener_conf *h = target;
    struct http_route r = {.filters = h->access_filters, .nfilters = h->naccess_filters};
    int rc = cfg_parse_filter(ctx, key, n, &r);
    h->access_filters = r.filters;
    h->naccess_filters = r.nfilters;
    return rc;
}

void cfg_free_listener_filters(struct http_listener_conf *h)
{
    struct http_route r = {.filters = h->access_filters, .nfilters = h->naccess_filters};
    cfg_free_route_filters(&r);
    h->access_filters = NULL;
    h->naccess_filters = 0;
}

/* ---- jwt --------------------------------------------------------------------------------- */

#define JWT_OFF(f) offsetof(struct filter_jwt_conf, f)

static int parse_algorithms(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                            void *target)
{
    struct filter_jwt_conf *c = target;
    char **names;
    uint32_t count;
    if (parse_strings(ctx, n, "an algorithm name", &names, &count) < 0)
        return -1;
    int rc = 0;
    c->algorithms = 0;
    for (uint32_t i = 0; i < count; i++) {
        int a = jwa_from_name(names[i], strlen(names[i]));
        if (a < 0) {
            const struct ynode *at = n->kind == YN_SEQ ? n->kids[i] : n;
            cfg_error(ctx, at,
                      "expected RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, "
                      "HS256, HS384 or HS512, got \"%s\"%s",
                      names[i],
                      strcmp(names[i], "none") == 0 ? " (unsigned tokens are never accepted)" : "");
            rc = -1;
        }
        c->algorithms |= a >= 0 ? 1u << a : 0;
    }
    free_strings(names, count);
    return rc;
}

static int parse_audiences(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                           void *target)
{
    struct filter_jwt_conf *c = target;
    free_strings(c->audiences, c->naudiences);
    c->audiences = NULL;
    c->naudiences = 0;
    return parse_strings(ctx, n, "an audience", &c->audiences, &c->naudiences);
}

/* A header name (checked as filters' are) into the char * at key->off. */
static int parse_header_name(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                             void *target)
{
    char **slot = (char **)((char *)target + key->off);
    if (cfg_check_field_name(ctx, n, "header name") < 0)
        return -1;
    free(*slot);
    if (!(*slot = strdup(n->text)))
        cfg_oom(ctx, n);
    return *slot ? 0 : -1;
}

static int parse_forward_claims(struct cfg_ctx *ctx, const struct cfg_key *key,
                                const struct ynode *n, void *target)
{
    struct filter_jwt_conf *c = target;
    char b[64];
    if (n->kind != YN_MAP || n->n == 0) {
        cfg_error(ctx, n, "expected a mapping of claim names to header names, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(c->claims = calloc(n->n, sizeof(*c->claims)))) {
        cfg_oom(ctx, n);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        size_t mark = cfg_path_key(ctx, k->text ? k->text : "?");
        struct jwt_claim_fwd *f = &c->claims[c->nclaims];
        if (cfg_check_field_name(ctx, v, "header name") < 0) {
            rc = -1;
        } else if (!(f->claim = cfg_dup_text(ctx, k, "a claim name")) ||
                   !(f->header = strdup(v->text))) {
            cfg_oom(ctx, v);
            rc = -1;
        } else {
            f->header_len = (uint32_t)v->len;
            c->nclaims++;
        }
        cfg_path_pop(ctx, mark);
        if (rc < 0) {
            free(f->claim);
            break;
        }
    }
    return rc;
}

static void jwt_load_file(struct cfg_ctx *ctx, const struct ynode *map, struct filter_jwt_conf *c)
{
    const struct ynode *at = ymap_get(map, "jwks_file");
    size_t mark = cfg_path_key(ctx, "jwks_file"), len;
    char why[256];
    cfg_resolve_path(ctx, at, &c->jwks_file);
    char *text = read_small_file(ctx, at, c->jwks_file, &len);
    struct jwks *ks = text ? jwks_parse(text, len, why, sizeof(why)) : NULL;
    if (text && !ks)
        cfg_error(ctx, at, "%s: %s", c->jwks_file, why);
    atomic_store(&c->keys.current, ks);
    free(text);
    cfg_path_pop(ctx, mark);
}

static void jwt_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct filter_jwt_conf *c = target;
    if (!c->algorithms)
        c->algorithms = (1u << JWA_COUNT) - 1;
    if (!!c->jwks_file == !!c->jwks_url) {
        cfg_error(ctx, map, "give one of `jwks_file` and `jwks_url`");
        return;
    }
    if (c->jwks_url && strncmp(c->jwks_url, "https://", 8) != 0 &&
        strncmp(c->jwks_url, "http://", 7) != 0) {
        size_t mark = cfg_path_key(ctx, "jwks_url");
        cfg_error(ctx, ymap_get(map, "jwks_url"), "expected an https:// (or http://) URL");
        cfg_path_pop(ctx, mark);
    }
    cfg_resolve_path(ctx, map, &c->jwks_ca);
    if (c->jwks_file)
        jwt_load_file(ctx, map, c);
    /* copies: the walker frees the keys' strings before the release hook stops the thread */
    if ((c->jwks_url && !(c->keys.url = strdup(c->jwks_url))) ||
        (c->jwks_ca && !(c->keys.ca_file = strdup(c->jwks_ca))))
        cfg_oom(ctx, map);
    c->keys.refresh_ms = c->refresh_ms;
    c->keys.min_refresh_ms = c->min_refresh_ms;
    c->keys.timeout_ms = c->timeout_ms;
}

static void jwt_release(void *target)
{
    struct filter_jwt_conf *c = target;
    jwt_keys_stop(&c->keys);
    jwt_cache_free(&c->cache);
    free_strings(c->audiences, c->naudiences);
    for (uint32_t i = 0; c->claims && i < c->nclaims; i++) {
        free(c->claims[i].claim);
        free(c->claims[i].header);
    }
    free(c->claims);
    free(c->token_header);
}

static const struct cfg_key jwt_keys[] = {
    {"jwks_file", CT_STRING, .off = JWT_OFF(jwks_file), .def_doc = "none",
     .help = "A JWKS file (`{\"keys\": [...]}`), read at load: RSA, EC (P-256, P-384), OKP "
             "(Ed25519) and oct (HMAC, 32 bytes or more) keys."},
    {"jwks_url", CT_STRING, .off = JWT_OFF(jwks_url), .def_doc = "none",
     .help = "Instead of `jwks_file`: a JWKS fetched over HTTPS by a thread of the filter's own "
             "(never a worker), at start, every `refresh`, and when a token names an unknown "
             "`kid` (that token is refused; a later one with the new key passes). A failed "
             "fetch keeps the keys already held."},
    {"jwks_ca", CT_STRING, .off = JWT_OFF(jwks_ca), .def_doc = "the system's CAs",
     .help = "CA certificates (PEM) that verify the JWKS server."},
    {"refresh", CT_DURATION, 0, "5m", .min = 1000, .max = CFG_MS_DAY, .off = JWT_OFF(refresh_ms),
     .help = "How often the JWKS URL is fetched again."},
    {"min_refresh", CT_DURATION, 0, "10s", .min = 100, .max = CFG_MS_DAY,
     .off = JWT_OFF(min_refresh_ms),
     .help = "The least time between two fetches, however many unknown `kid`s arrive."},
    {"fetch_timeout", CT_DURATION, 0, "5s", .min = 100, .max = 60000, .off = JWT_OFF(timeout_ms),
     .help = "Time one JWKS fetch may take."},
    {"algorithms", CT_CUSTOM, .parse = parse_algorithms, .type_doc = "list of JWS algorithms",
     .def_doc = "all of them",
     .help = "Algorithms accepted: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, "
             "EdDSA (Ed25519), HS256, HS384, HS512. `none` never is. A key is used only for "
             "algorithms of its type (and its own `alg` when it has one)."},
    {"issuer", CT_STRING, .off = JWT_OFF(issuer), .def_doc = "any",
     .help = "The `iss` a token must have."},
    {"audiences", CT_CUSTOM, .parse = parse_audiences, .type_doc = "string or list",
     .def_doc = "any", .help = "The token's `aud` (a string or a list) must hold one of these."},
    {"clock_skew", CT_DURATION, 0, "60s", .min = 0, .max = 3600 * 1000,
     .off = JWT_OFF(clock_skew_ms),
     .help = "Allowance for clocks that differ, applied to `exp` and `nbf`."},
    {"require_exp", CT_BOOL, 0, "true", .off = JWT_OFF(require_exp),
     .help = "A token without `exp` is refused."},
    {"optional", CT_BOOL, 0, "false", .off = JWT_OFF(optional),
     .help = "A request without a token goes on (claim fields removed); a bad token is still "
             "refused."},
    {"token_header", CT_CUSTOM, .parse = parse_header_name, .off = JWT_OFF(token_header),
     .type_doc = "header name", .def_doc = "`Authorization: Bearer`",
     .help = "A field holding the token as it is, instead of the Bearer scheme."},
    {"forward_token", CT_BOOL, 0, "true", .off = JWT_OFF(forward_token),
     .help = "`false`: the token's field is removed before the request goes to the server."},
    {"forward_claims", CT_CUSTOM, .parse = parse_forward_claims,
     .type_doc = "mapping of claims to header names", .def_doc = "none",
     .help = "Claims sent to the server as request fields (`{ sub: x-user, role: x-role }`): "
             "strings as they are, numbers and booleans as JSON, lists of strings "
             "comma-separated. The client's own fields of these names are always removed. "
             "On a listener (`http.jwt`) they run before routing, so routes can match them "
             "(`match: { header: { x-role: admin } }`)."},
    {"realm", CT_STRING, 0, "strata", .off = JWT_OFF(realm),
     .help = "The realm of the `WWW-Authenticate: Bearer` challenge."},
};

const struct cfg_section cfg_jwt_section =
    SECTION("listeners[].routes[].jwt",
            "Requires a JWT (RFC 7519) signed by a key of a JWKS: signature (OpenSSL), `exp` "
            "and `nbf` with a clock skew, `iss`, `aud`. A request without a token, or with a "
            "bad one, is answered 401 with a `WWW-Authenticate: Bearer` challenge. Counted in "
            "`strata_listener_http_filter_events_total{event=jwt_*}`; the reason is the access "
            "log's `detail`.",
            jwt_keys, .finish = jwt_finish, .release = jwt_release);

/* ---- basic_auth ----------------------------------------------------------------------------- */

#define BASIC_OFF(f) offsetof(struct filter_basic_auth_conf, f)

static void basic_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct filter_basic_auth_conf *c = target;
    const struct ynode *at = ymap_get(map, "htpasswd");
    if (!c->file || !at)
        return;
    size_t mark = cfg_path_key(ctx, "htpasswd"), len;
    char why[256];
    cfg_resolve_path(ctx, at, &c->file);
    char *text = read_small_file(ctx, at, c->file, &len);
    if (text && htpasswd_parse(c, text, why, sizeof(why)) < 0)
        cfg_error(ctx, at, "%s: %s", c->file, why);
    free(text);
    cfg_path_pop(ctx, mark);
}

static void basic_release(void *target)
{
    basic_auth_release(target);
    free(((struct filter_basic_auth_conf *)target)->user_header);
}

static const struct cfg_key basic_keys[] = {
    {"htpasswd", CT_STRING, CK_REQUIRED, .off = BASIC_OFF(file),
     .help = "The users: an htpasswd file (`htpasswd -B` bcrypt, or SHA-256/512-crypt `$5$`, "
             "`$6$`), read at load. Apache's MD5 (`$apr1$`) and SHA-1 are refused."},
    {"realm", CT_STRING, 0, "strata", .off = BASIC_OFF(realm),
     .help = "The realm of the `WWW-Authenticate: Basic` challenge."},
    {"user_header", CT_CUSTOM, .parse = parse_header_name, .off = BASIC_OFF(user_header),
     .type_doc = "header name", .def_doc = "none",
     .help = "A field set to the authenticated user for the server (the client's own is "
             "removed)."},
    {"forward_credentials", CT_BOOL, 0, "true", .off = BASIC_OFF(forward_credentials),
     .help = "`false`: Authorization is removed before the request goes to the server."},
    {"cache_size", CT_U32, 0, "1024", .min = 0, .max = 1 << 20, .off = BASIC_OFF(cache_size),
     .help = "Verified credentials each worker remembers (as SHA-256 digests), so a client "
             "pays the password hash (bcrypt: milliseconds) once per `cache_ttl`, not per "
             "request; 0: none."},
    {"cache_ttl", CT_DURATION, 0, "5m", .min = 1000, .max = CFG_MS_DAY,
     .off = BASIC_OFF(cache_ttl_ms), .help = "How long a verified credential is remembered."},
};

const struct cfg_section cfg_basic_auth_section =
    SECTION("listeners[].routes[].basic_auth",
            "HTTP Basic authentication (RFC 7617) against an htpasswd file; a request without "
            "credentials or with wrong ones is answered 401 with a `WWW-Authenticate: Basic` "
            "challenge. Counted in `strata_listener_http_filter_events_total{event=basic_*}`.",
            basic_keys, .finish = basic_finish, .release = basic_release);

/* ---- cors ------------------------------------------------------------------------------------ */

#define CORS_OFF(f) offsetof(struct filter_cors_conf, f)

/* The list joined with ", " (malloc'd). */
static char *join(char **list, uint32_t n)
{
    size_t len = 1;
    for (uint32_t i = 0; i < n; i++)
        len += strlen(list[i]) + 2;
    char *s = malloc(len);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, list[i]);
    }
    return s;
}

static int parse_origins(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    struct filter_cors_conf *c = target;
    if (parse_strings(ctx, n, "an origin such as https://app.example.com, or *", &c->origins,
                      &c->norigins) < 0)
        return -1;
    for (uint32_t i = 0; i < c->norigins; i++) {
        const char *o = c->origins[i];
        c->any_origin |= strcmp(o, "*") == 0;
        if (strcmp(o, "*") && strncmp(o, "http://", 7) && strncmp(o, "https://", 8)) {
            cfg_error(ctx, n->kind == YN_SEQ ? n->kids[i] : n,
                      "expected an origin (scheme://host[:port]) or *, got \"%s\"", o);
            return -1;
        }
    }
    return 0;
}

static int parse_patterns(struct cfg_ctx *ctx, const struct ynode *n, struct str_match **out,
                          uint32_t *count)
{
    char **texts;
    uint32_t nt;
    if (parse_strings(ctx, n, "a regex", &texts, &nt) < 0)
        return -1;
    int rc = 0;
    *out = calloc(nt, sizeof(**out));
    for (uint32_t i = 0; *out && i < nt && rc == 0; i++) {
        char err[200];
        if (str_match_compile(&(*out)[i], texts[i], err, sizeof(err)) < 0) {
            cfg_error(ctx, n->kind == YN_SEQ ? n->kids[i] : n, "invalid regex: %s", err);
            rc = -1;
        } else {
            *count = i + 1;
        }
    }
    if (!*out) {
        cfg_oom(ctx, n);
        rc = -1;
    }
    free_strings(texts, nt);
    return rc;
}

static void free_patterns(struct str_match *m, uint32_t n)
{
    for (uint32_t i = 0; m && i < n; i++)
        str_match_free(&m[i]);
    free(m);
}

static int parse_origin_patterns(struct cfg_ctx *ctx, const struct cfg_key *key,
                                 const struct ynode *n, void *target)
{
    struct filter_cors_conf *c = target;
    return parse_patterns(ctx, n, &c->patterns, &c->npatterns);
}

/* methods, headers, expose_headers: tokens, kept as a list and joined. */
static int parse_token_list(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                            void *target)
{
    struct filter_cors_conf *c = target;
    char **list;
    uint32_t count;
    if (parse_strings(ctx, n, "a token", &list, &count) < 0)
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        if (!http_token_valid(list[i], strlen(list[i]))) {
            cfg_error(ctx, n->kind == YN_SEQ ? n->kids[i] : n,
                      "expected a method or field name (a token), got \"%s\"", list[i]);
            free_strings(list, count);
            return -1;
        }
    }
    char *joined = join(list, count);
    if (!joined) {
        free_strings(list, count);
        cfg_oom(ctx, n);
        return -1;
    }
    if (key->name[0] == 'm') {
        free_strings(c->method_list, c->nmethods);
        free(c->methods);
        c->method_list = list, c->nmethods = count, c->methods = joined;
    } else if (key->name[0] == 'h') {
        c->header_list = list, c->nheaders = count, c->headers = joined;
    } else {
        free_strings(list, count);
        c->expose = joined;
    }
    return 0;
}

static void cors_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct filter_cors_conf *c = target;
    if (!c->norigins && !c->npatterns)
        cfg_error(ctx, map, "give `origins` or `origin_patterns` (the origins allowed)");
    if (c->any_origin && c->credentials)
        cfg_error(ctx, map,
                  "`origins: \"*\"` with `credentials: true` would let every site read "
                  "answers made with the user's cookies: list the origins");
    if (!c->methods) {
        static const char *const defaults[] = {"GET", "HEAD", "POST"};
        c->method_list = calloc(3, sizeof(char *));
        for (int i = 0; c->method_list && i < 3; i++)
            c->method_list[i] = strdup(defaults[i]);
        c->nmethods = 3;
        c->methods = strdup("GET, HEAD, POST");
        if (!c->method_list || !c->methods || !c->method_list[2])
            cfg_oom(ctx, map);
    }
}

static void cors_release(void *target)
{
    struct filter_cors_conf *c = target;
    free_strings(c->origins, c->norigins);
    free_patterns(c->patterns, c->npatterns);
    free_strings(c->method_list, c->nmethods);
    free_strings(c->header_list, c->nheaders);
    free(c->methods);
    free(c->headers);
    free(c->expose);
}

static const struct cfg_key cors_keys[] = {
    {"origins", CT_CUSTOM, .parse = parse_origins, .type_doc = "string or list", .def_doc = "none",
     .help = "Origins allowed, exactly as browsers send them (`https://app.example.com`), or "
             "`\"*\"` for any (not with `credentials`)."},
    {"origin_patterns", CT_CUSTOM, .parse = parse_origin_patterns, .type_doc = "regex or list",
     .def_doc = "none",
     .help = "Regexes (PCRE2) an allowed Origin matches: `'^https://[a-z0-9-]+\\.example\\.com$'` "
             "(anchor them)."},
    {"methods", CT_CUSTOM, .parse = parse_token_list, .type_doc = "list of methods",
     .def_doc = "GET, HEAD, POST", .help = "Methods a preflight may ask for."},
    {"headers", CT_CUSTOM, .parse = parse_token_list, .type_doc = "list of field names",
     .def_doc = "none", .help = "Request fields a preflight may ask for."},
    {"expose_headers", CT_CUSTOM, .parse = parse_token_list, .type_doc = "list of field names",
     .def_doc = "none",
     .help = "Response fields scripts may read (Access-Control-Expose-Headers)."},
    {"credentials", CT_BOOL, 0, "false", .off = CORS_OFF(credentials),
     .help = "Allow cookies and credentials (Access-Control-Allow-Credentials: true)."},
    {"max_age", CT_DURATION, 0, "10m", .min = 0, .max = CFG_MS_DAY, .off = CORS_OFF(max_age_ms),
     .help = "How long browsers may keep a preflight's answer (Access-Control-Max-Age)."},
};

const struct cfg_section cfg_cors_section =
    SECTION("listeners[].routes[].cors",
            "Cross-origin requests from browsers: preflights (OPTIONS with "
            "Access-Control-Request-Method) are answered by Strata (204, or 403 for an origin, "
            "method or header not allowed) and never reach the server; responses to allowed "
            "origins get Access-Control-Allow-Origin, and `Vary: Origin`. Counted in "
            "`strata_listener_http_filter_events_total{event=cors_*}`.",
            cors_keys, .finish = cors_finish, .release = cors_release);

/* ---- ip_access ------------------------------------------------------------------------------- */

#define IP_OFF(f) offsetof(struct filter_ip_access_conf, f)

static int parse_ip_allow(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                          void *target)
{
    ((struct filter_ip_access_conf *)target)->acl.has_allow = true;
    return cfg_parse_cidr_list(ctx, key, n, target);
}

/* A prefix file: one prefix a line; blank lines and '#' comments skipped. */
static void load_prefix_file(struct cfg_ctx *ctx, const struct ynode *map, const char *key,
                             char **path, struct cidr_set *set)
{
    const struct ynode *at = ymap_get(map, key);
    if (!*path || !at)
        return;
    size_t mark = cfg_path_key(ctx, key), len;
    cfg_resolve_path(ctx, at, path);
    char *text = read_small_file(ctx, at, *path, &len);
    unsigned line = 0;
    for (char *rest = text, *l; rest && (l = strsep(&rest, "\n"));) {
        line++;
        char *hash = strchr(l, '#');
        if (hash)
            *hash = '\0';
        while (*l == ' ' || *l == '\t')
            l++;
        size_t ll = strlen(l);
        while (ll && (l[ll - 1] == ' ' || l[ll - 1] == '\t' || l[ll - 1] == '\r'))
            l[--ll] = '\0';
        struct cidr c;
        const char *why;
        if (!ll)
            continue;
        if (cidr_parse(l, &c, &why) < 0) {
            cfg_error(ctx, at, "%s line %u: %s", *path, line, why);
            break;
        }
        if (cidr_set_add(set, &c) < 0) {
            cfg_oom(ctx, at);
            break;
        }
    }
    free(text);
    cfg_path_pop(ctx, mark);
}

static void ip_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct filter_ip_access_conf *c = target;
    if (c->allow_file)
        c->acl.has_allow = true;
    load_prefix_file(ctx, map, "allow_file", &c->allow_file, &c->acl.allow);
    load_prefix_file(ctx, map, "deny_file", &c->deny_file, &c->acl.deny);
    c->geo = c->acl.countries.allow.count || c->acl.countries.deny.count ||
             c->continents.allow.count || c->continents.deny.count;
    if (!c->acl.has_allow && !ymap_get(map, "deny") && !c->deny_file && !c->geo &&
        !ymap_get(map, "allow_countries") && !ymap_get(map, "deny_countries") &&
        !ymap_get(map, "allow_continents") && !ymap_get(map, "deny_continents"))
        cfg_error(ctx, map, "give `allow`, `deny`, `allow_file`, `deny_file`, "
                            "`allow_countries`, `deny_countries`, `allow_continents` or "
                            "`deny_continents`");
}

static int parse_deny_status(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                             void *target)
{
    char *end, b[64];
    long v = n->kind == YN_SCALAR ? strtol(n->text, &end, 10) : 0;
    if (n->kind != YN_SCALAR || !isdigit((unsigned char)n->text[0]) || *end || v < 400 || v > 499) {
        cfg_error(ctx, n, "expected a status from 400 to 499, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    ((struct filter_ip_access_conf *)target)->status = (uint16_t)v;
    return 0;
}

static void ip_release(void *target)
{
    acl_free(&((struct filter_ip_access_conf *)target)->acl);
}

static const struct cfg_key ip_keys[] = {
    {"allow", CT_CUSTOM, 0, .parse = parse_ip_allow, .off = IP_OFF(acl.allow),
     .type_doc = "prefix or list of prefixes", .def_doc = "everyone",
     .help = "Only these clients pass (with `allow_file`: those of either)."},
    {"deny", CT_CUSTOM, 0, .parse = cfg_parse_cidr_list, .off = IP_OFF(acl.deny),
     .type_doc = "prefix or list of prefixes", .def_doc = "none",
     .help = "These clients are refused, even if allowed."},
    {"allow_file", CT_STRING, .off = IP_OFF(allow_file), .def_doc = "none",
     .help = "A file of prefixes to allow, one a line (`#` comments), read at load."},
    {"deny_file", CT_STRING, .off = IP_OFF(deny_file), .def_doc = "none",
     .help = "A file of prefixes to deny, as `allow_file`."},
    {"allow_countries", CT_CUSTOM, .parse = cfg_parse_countries,
     .off = IP_OFF(acl.countries.allow), .type_doc = "country code or list",
     .def_doc = "everyone",
     .help = "Only clients located in these countries (ISO 3166 codes such as `FR`) pass, "
             "or those of the other allow lists; needs `geo.database`; a client of unknown "
             "location is refused."},
    {"deny_countries", CT_CUSTOM, .parse = cfg_parse_countries,
     .off = IP_OFF(acl.countries.deny), .type_doc = "country code or list", .def_doc = "none",
     .help = "Clients located in these countries are refused, even if allowed."},
    {"allow_continents", CT_CUSTOM, .parse = cfg_parse_continents,
     .off = IP_OFF(continents.allow), .type_doc = "continent code or list",
     .def_doc = "everyone",
     .help = "Only clients located on these continents (`AF`, `AN`, `AS`, `EU`, `NA`, `OC`, "
             "`SA`) pass, or those of the other allow lists."},
    {"deny_continents", CT_CUSTOM, .parse = cfg_parse_continents,
     .off = IP_OFF(continents.deny), .type_doc = "continent code or list", .def_doc = "none",
     .help = "Clients located on these continents are refused, even if allowed."},
    {"status", CT_CUSTOM, 0, "403", .parse = parse_deny_status, .type_doc = "status 400..499",
     .help = "The answer to a refused client."},
};

const struct cfg_section cfg_ip_access_section =
    SECTION("listeners[].routes[].ip_access",
            "Client address allow and deny lists (CIDR tries, as the listener's L4 `acl`), "
            "and lists of the client's country or continent (from `geo.database`): deny "
            "wins; with allow lists only a member of one of them passes. The client is the "
            "peer, or the PROXY protocol's client. Counted in "
            "`strata_listener_http_filter_events_total{event=ip_denied}`.",
            ip_keys, .finish = ip_finish, .release = ip_release);

/* ---- bot ---------------------------------------------------------------------------------- */

#define BOT_OFF(f) offsetof(struct filter_bot_conf, f)

static const struct cfg_enum bot_actions[] = {
    {"off", BOT_OFF},
    {"challenge", BOT_CHALLENGE},
    {"deny", BOT_DENY},
    {NULL, 0},
};

static int parse_bot_patterns(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                              void *target)
{
    struct filter_bot_conf *c = target;
    if (strcmp(key->name, "allow") == 0)
        return parse_patterns(ctx, n, &c->allow, &c->nallow);
    if (strcmp(key->name, "deny") == 0)
        return parse_patterns(ctx, n, &c->deny, &c->ndeny);
    return parse_patterns(ctx, n, &c->challenge, &c->nchallenge);
}

#define BOT_KNOWN_MAX 256

/* The known-bot patterns: the file's (one regex a line) or the built-in ones. */
static void load_known(struct cfg_ctx *ctx, const struct ynode *map, struct filter_bot_conf *c)
{
    const struct ynode *at = ymap_get(map, "known_bots_file");
    size_t len, mark = at ? cfg_path_key(ctx, "known_bots_file") : ctx->pathlen;
    char *text = NULL;
    if (at) {
        cfg_resolve_path(ctx, at, &c->known_bots_file);
        if (!(text = read_small_file(ctx, at, c->known_bots_file, &len))) {
            cfg_path_pop(ctx, mark);
            return;
        }
    }
    const char *lines[BOT_KNOWN_MAX];
    unsigned lineno[BOT_KNOWN_MAX], at_line = 0;
    size_t n = 0;
    for (char *rest = text, *l; rest && (l = strsep(&rest, "\n"));) {
        size_t ll = strlen(l);
        at_line++;
        if (ll && l[ll - 1] == '\r')
            l[--ll] = '\0';
        if (!ll || l[0] == '#')
            continue;
        if (n == BOT_KNOWN_MAX) {
            cfg_error(ctx, at, "more than %d patterns", BOT_KNOWN_MAX);
            break;
        }
        lineno[n] = at_line;
        lines[n++] = l;
    }
    for (size_t i = 0; !text && bot_known_patterns[i]; i++) {
        lineno[n] = (unsigned)i + 1;
        lines[n++] = bot_known_patterns[i];
    }
    c->known = calloc(n ? n : 1, sizeof(*c->known));
    for (size_t i = 0; c->known && i < n; i++) {
        char err[200];
        if (str_match_compile(&c->known[i], lines[i], err, sizeof(err)) < 0) {
            cfg_error(ctx, at ? at : map, "line %u: invalid regex: %s", lineno[i], err);
            break;
        }
        c->nknown = (uint32_t)i + 1;
    }
    if (!c->known)
        cfg_oom(ctx, map);
    free(text);
    cfg_path_pop(ctx, mark);
}

static const struct cfg_enum bot_modes[] = {
    {"cookie", BOT_MODE_COOKIE},
    {"javascript", BOT_MODE_JS},
    {NULL, 0},
};
_Static_assert(sizeof(enum bot_mode) == sizeof(int), "CT_ENUM stores an int");

static void bot_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct filter_bot_conf *c = target;
    load_known(ctx, map, c);
    if (!c->cookie)
        return; /* its own error was given */
    size_t len = strlen(c->cookie) + 5;
    if (!(c->proof_cookie = malloc(len)))
        cfg_oom(ctx, map);
    else
        snprintf(c->proof_cookie, len, "%s_pow", c->cookie);
    if (c->secret_text) {
        size_t n = strlen(c->secret_text);
        if (n < 32) {
            size_t mark = cfg_path_key(ctx, "secret");
            cfg_error(ctx, ymap_get(map, "secret"), "expected at least 32 characters");
            cfg_path_pop(ctx, mark);
            return;
        }
        SHA256((const unsigned char *)c->secret_text, n, c->secret);
    } else if (RAND_bytes(c->secret, sizeof(c->secret)) != 1) {
        cfg_error(ctx, map, "no random bytes for the challenge secret");
    }
}

static void bot_release(void *target)
{
    struct filter_bot_conf *c = target;
    free_patterns(c->allow, c->nallow);
    free_patterns(c->deny, c->ndeny);
    free_patterns(c->challenge, c->nchallenge);
    free_patterns(c->known, c->nknown);
    free(c->proof_cookie);
    OPENSSL_cleanse(c->secret, sizeof(c->secret));
}

static const struct cfg_key bot_keys[] = {
    {"allow", CT_CUSTOM, .parse = parse_bot_patterns, .type_doc = "regex or list",
     .def_doc = "none", .help = "User-Agents that always pass (`'Googlebot/'`)."},
    {"deny", CT_CUSTOM, .parse = parse_bot_patterns, .type_doc = "regex or list", .def_doc = "none",
     .help = "User-Agents answered 403."},
    {"challenge", CT_CUSTOM, .parse = parse_bot_patterns, .type_doc = "regex or list",
     .def_doc = "none", .help = "User-Agents that must pass the cookie challenge."},
    {"known_bots", CT_ENUM, 0, "challenge", .enums = bot_actions, .off = BOT_OFF(known_action),
     .help = "What known bots get: `challenge`, `deny` (403) or `off`. The built-in list "
             "holds scripted clients (curl, wget, python-requests, Go-http-client, "
             "libwww-perl, Scrapy, okhttp...) and scanners (sqlmap, nikto, nmap, zgrab...)."},
    {"known_bots_file", CT_STRING, .off = BOT_OFF(known_bots_file), .def_doc = "the built-in list",
     .help = "Instead of the built-in list: a file of regexes, one a line (`#` comments)."},
    {"challenge_empty", CT_BOOL, 0, "true", .off = BOT_OFF(challenge_empty),
     .help = "A request without User-Agent must pass the challenge."},
    {"challenge_all", CT_BOOL, 0, "false", .off = BOT_OFF(challenge_all),
     .help = "Every client not `allow`ed must pass the challenge."},
    {"challenge_mode", CT_ENUM, 0, "cookie", .enums = bot_modes, .off = BOT_OFF(mode),
     .help = "`cookie`: the challenge is a 307 that sets the signed cookie (clients that keep "
             "cookies pass); `javascript`: a page (403, served by Strata) whose script must "
             "find a proof of work (`difficulty`) and store it in the cookie `<cookie>_pow` "
             "before the 307 with the signed cookie comes: clients that run no script never "
             "pass, browsers do after a fraction of a second."},
    {"difficulty", CT_U32, 0, "16", .min = 0, .max = 24, .off = BOT_OFF(difficulty),
     .help = "`javascript`: the leading zero bits of SHA-256(token:n) the script must find; "
             "each bit doubles the work (16: about 65,000 hashes, ~0.3 s in a browser)."},
    {"cookie", CT_STRING, 0, "strata_bc", .off = BOT_OFF(cookie),
     .help = "The challenge cookie's name."},
    {"cookie_ttl", CT_DURATION, 0, "1h", .min = 1000, .max = 30 * CFG_MS_DAY,
     .off = BOT_OFF(cookie_ttl_ms), .help = "How long a passed challenge holds."},
    {"secret", CT_STRING, .off = BOT_OFF(secret_text), .def_doc = "random at start",
     .help = "The HMAC key of the cookie (32 characters or more); give the same one to every "
             "instance behind one name so a cookie from one is valid at the others."},
};

const struct cfg_section cfg_bot_section =
    SECTION("listeners[].routes[].bot",
            "Basic bot protection: User-Agent `allow`, `deny` (403), known bots, and a light "
            "challenge for clients marked suspicious — a 307 to the same URL that sets an "
            "HMAC-signed cookie (bound to the client's IP and User-Agent): browsers come back "
            "with it and pass, scripts that keep no cookies do not (with `challenge_mode: "
            "javascript`, only clients that run the page's script pass). Other methods than "
            "GET/HEAD without the cookie are answered 403. Counted in "
            "`strata_listener_http_filter_events_total{event=bot_*}`.",
            bot_keys, .finish = bot_finish, .release = bot_release);

/* ---- request_limits ---------------------------------------------------------------------- */

static const struct cfg_key request_limits_keys[] = {
    {"max_body", CT_CUSTOM, 0, "0", .parse = cfg_parse_size_any,
     .off = offsetof(struct filter_request_limits_conf, max_body),
     .type_doc = "size, 0 = the listener's",
     .help = "Largest request body on this route: a larger Content-Length is answered 413 "
             "before anything reaches a server; a chunked or HTTP/2 body growing past it is "
             "cut with 413. Only lowers the listener's `max_request_body`."},
    {"max_headers", CT_U32, 0, "0", .min = 0, .max = 1000,
     .off = offsetof(struct filter_request_limits_conf, max_headers),
     .help = "Most header fields on this route (431 above); 0: the listener's `max_headers`."},
    {"body_timeout", CT_DURATION, 0, "0", .min = 0, .max = CFG_MAX_DURATION,
     .off = offsetof(struct filter_request_limits_conf, body_timeout_ms),
     .help = "Time from the request's start within which its whole body must arrive (slow "
             "uploads, slowloris on bodies): then 408, and the server's request is abandoned; "
             "0: none. The time includes waiting for the server to take the body."},
};

const struct cfg_section cfg_request_limits_section =
    SECTION("listeners[].routes[].request_limits",
            "Request bounds of one route, tighter than the listener's `http` limits (which "
            "are checked first, for every request). Counted in "
            "`strata_listener_http_filter_events_total{event=limits_refused}`.",
            request_limits_keys);
