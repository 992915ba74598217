/* schema_tls.c — the `tls` keys: a listener's TLS termination (certificates, versions,
 * ciphers, ALPN, session resumption, client certificates) and a backend's TLS to its
 * servers. Declared as tables like schema.c; the parse hooks then build the OpenSSL
 * objects (src/tls/) at load, so that a missing file, a key that does not match its
 * certificate or a cipher string OpenSSL refuses is an error at its file:line:col.
 *
 * Relative paths are taken from the configuration file's directory and stored resolved.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/log.h"
#include "schema.h"
#include "tls/tls.h"

#define SECTION(p, h, k, ...)                                                                      \
    {                                                                                              \
        .path = p, .help = h, .keys = k, .nkeys = ARRAY_SIZE(k), __VA_ARGS__                       \
    }

#define MOZILLA_INTERMEDIATE                                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

static const struct cfg_enum starttls_names[] = {
    {"none", TLS_STARTTLS_NONE},
    {"postgres", TLS_STARTTLS_POSTGRES},
    {NULL, 0},
};

static const struct cfg_enum version_names[] = {
    {"tlsv1.2", TLS_VER_1_2},
    {"tlsv1.3", TLS_VER_1_3},
    {NULL, 0},
};

/* ---- helpers ----------------------------------------------------------------------------- */

/* Replaces the relative path in *slot by one from the configuration file's directory. */
void cfg_resolve_path(struct cfg_ctx *ctx, const struct ynode *at, char **slot)
{
    const char *slash = strrchr(ctx->file, '/');
    if (!*slot || (*slot)[0] == '/' || !slash)
        return;
    int dirlen = (int)(slash - ctx->file);
    size_t len = (size_t)dirlen + strlen(*slot) + 2;
    char *p = malloc(len);
    if (!p) {
        cfg_oom(ctx, at);
        return;
    }
    snprintf(p, len, "%.*s/%s", dirlen, ctx->file, *slot);
    free(*slot);
    *slot = p;
}

/* Reports msg at the value of map's `a` (then `b` inside it, when given), or at map. */
static void error_at(struct cfg_ctx *ctx, const struct ynode *map, const char *a, const char *b,
                     const char *msg)
{
    const struct ynode *n = map && map->kind == YN_MAP && a ? ymap_get(map, a) : NULL;
    const struct ynode *m = n && n->kind == YN_MAP && b ? ymap_get(n, b) : NULL;
    size_t mark = ctx->pathlen;
    if (n)
        cfg_path_key(ctx, a);
    if (m)
        cfg_path_key(ctx, b);
    cfg_error(ctx, m ? m : n ? n : map, "%s", msg);
    cfg_path_pop(ctx, mark);
}

/* `alpn`: a protocol name or a list of them, into wire format (key->off: unsigned char *,
 * key->off2: uint32_t length). An empty list means none. */
static int parse_alpn(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                      void *target)
{
    unsigned char **wire = (unsigned char **)((char *)target + key->off);
    uint32_t *wlen = (uint32_t *)((char *)target + key->off2);
    size_t count = n->kind == YN_SEQ ? n->n : 1, total = 0;
    char b[64];
    if (n->kind != YN_SEQ && n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected a protocol name such as http/1.1 or a list, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const struct ynode *it = n->kind == YN_SEQ ? n->kids[i] : n;
        if (it->kind != YN_SCALAR || it->len == 0 || it->len > 255) {
            size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
            cfg_error(ctx, it, "expected a protocol name of 1 to 255 bytes, got %s",
                      cfg_describe(it, b, sizeof(b)));
            cfg_path_pop(ctx, mark);
            return -1;
        }
        total += 1 + it->len;
    }
    free(*wire);
    *wire = NULL;
    *wlen = 0;
    if (total == 0)
        return 0;
    if (!(*wire = malloc(total))) {
        cfg_oom(ctx, n);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const struct ynode *it = n->kind == YN_SEQ ? n->kids[i] : n;
        (*wire)[(*wlen)++] = (unsigned char)it->len;
        memcpy(*wire + *wlen, it->text, it->len);
        *wlen += (uint32_t)it->len;
    }
    return 0;
}

static void release_alpn(const struct cfg_key *key, void *target)
{
    unsigned char **wire = (unsigned char **)((char *)target + key->off);
    free(*wire);
    *wire = NULL;
}

static void check_versions(struct cfg_ctx *ctx, const struct ynode *map, int min, int max)
{
    if (min > max)
        error_at(ctx, map, ymap_get(map, "max_version") ? "max_version" : "min_version", NULL,
                 "min_version is above max_version");
}

/* Reports every setting OpenSSL refuses (tls_check_settings), each where it was written. */
static void
check_settings(struct cfg_ctx *ctx, const struct ynode *map, const struct tls_settings *set,
               void (*report)(struct cfg_ctx *, const struct ynode *, const struct tls_error *))
{
    struct tls_error errs[4];
    unsigned n = tls_check_settings(set, errs, ARRAY_SIZE(errs));
    for (unsigned i = 0; i < n; i++)
        report(ctx, map, &errs[i]);
}

/* ---- listeners[].tls ------------------------------------------------------------------- */

static void cert_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    static const char *const fields[] = {
        [TLS_F_CERT] = "cert", [TLS_F_KEY] = "key", [TLS_F_OCSP] = "ocsp"};
    struct tls_cert_conf *c = target;
    struct tls_error err;
    if (!c->cert || !c->key || map->kind != YN_MAP)
        return; /* reported by the walker */
    cfg_resolve_path(ctx, map, &c->cert);
    cfg_resolve_path(ctx, map, &c->key);
    cfg_resolve_path(ctx, map, &c->ocsp);
    if (ctx->oom || (c->loaded = tls_cert_load(c->cert, c->key, c->ocsp, &err)))
        return;
    const char *f = err.field < ARRAY_SIZE(fields) && fields[err.field] ? fields[err.field] : NULL;
    error_at(ctx, map, f, NULL, err.msg);
}

static void cert_release(void *target)
{
    struct tls_cert_conf *c = target;
    tls_cert_free(c->loaded);
    c->loaded = NULL;
}

static const struct cfg_key cert_keys[] = {
    {"cert", CT_STRING, CK_REQUIRED, .off = offsetof(struct tls_cert_conf, cert),
     .help = "PEM file: the certificate, then the intermediates of its chain. It must be "
             "valid now; it serves the DNS names of its subjectAltName (its CN without one)."},
    {"key", CT_STRING, CK_REQUIRED, .off = offsetof(struct tls_cert_conf, key),
     .help = "PEM file: the unencrypted private key (RSA or ECDSA) of `cert`."},
    {"ocsp", CT_STRING, 0, .def_doc = "none", .off = offsetof(struct tls_cert_conf, ocsp),
     .help = "DER file: an OCSP response stapled to handshakes that ask for one (read at "
             "load; reload to refresh it)."},
};

static const struct cfg_section cert_section =
    SECTION("listeners[].tls.certificates[]",
            "A certificate and its key. A handshake gets the certificate whose name matches "
            "the SNI exactly, else one whose `*.domain` wildcard matches it (one label), "
            "else the first certificate. Among an ECDSA and an RSA certificate for the same "
            "name, ECDSA goes to clients that support it and RSA to the others.",
            cert_keys, .size = sizeof(struct tls_cert_conf), .finish = cert_finish,
            .release = cert_release);

static void client_auth_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct tls_client_auth_conf *a = target;
    a->enabled = true;
    cfg_resolve_path(ctx, map, &a->ca);
}

static const struct cfg_key client_auth_keys[] = {
    {"ca", CT_STRING, CK_REQUIRED, .off = offsetof(struct tls_client_auth_conf, ca),
     .help = "PEM file of the CAs client certificates must chain to (also the names sent "
             "in the certificate request)."},
    {"required", CT_BOOL, 0, "true", .off = offsetof(struct tls_client_auth_conf, required),
     .help = "`true`: a client without a valid certificate fails the handshake (`client "
             "certificate required`). `false`: a certificate is verified if presented."},
};

static const struct cfg_section client_auth_section =
    SECTION("listeners[].tls.client_auth",
            "Client certificates (mutual TLS). Without this section none is asked for.",
            client_auth_keys, .finish = client_auth_finish);

#define TS_OFF(f) offsetof(struct tls_server_conf, f)

static void server_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct tls_server_conf *c = target;
    check_versions(ctx, map, c->min_version, c->max_version);
}

static const struct cfg_key server_keys[] = {
    {"certificates", CT_LIST, CK_REQUIRED, .sub = &cert_section, .min = 1, .max = 10000,
     .off = TS_OFF(certs), .off2 = TS_OFF(ncerts),
     .help = "The certificates served; the first one is the default."},
    {"alpn", CT_CUSTOM, 0, .parse = parse_alpn, .release = release_alpn, .off = TS_OFF(alpn),
     .off2 = TS_OFF(alpn_len), .type_doc = "protocol name or list",
     .def_doc = "`[http/1.1]` on `mode: http`, none on `mode: tcp`",
     .help = "Protocols offered by ALPN, in order of preference (the first the client also "
             "offers is chosen). A client with none in common gets no ALPN, not an error."},
    {"min_version", CT_ENUM, 0, "tlsv1.2", .enums = version_names, .off = TS_OFF(min_version),
     .help = "Oldest protocol version accepted."},
    {"max_version", CT_ENUM, 0, "tlsv1.3", .enums = version_names, .off = TS_OFF(max_version),
     .help = "Newest protocol version accepted."},
    {"ciphers", CT_STRING, 0, MOZILLA_INTERMEDIATE, .off = TS_OFF(ciphers),
     .help = "TLS 1.2 cipher list in OpenSSL syntax (the default is Mozilla's "
             "\"intermediate\"); the server's order wins."},
    {"ciphersuites", CT_STRING, 0, TLS13_SUITES, .off = TS_OFF(ciphersuites),
     .help = "TLS 1.3 cipher suites, separated by `:`."},
    {"curves", CT_STRING, 0, "X25519:prime256v1:secp384r1", .off = TS_OFF(curves),
     .help = "Key exchange groups, in order of preference, separated by `:`."},
    {"session_tickets", CT_BOOL, 0, "true", .off = TS_OFF(session_tickets),
     .help = "Resumption by session tickets (TLS 1.2 and 1.3). The ticket keys are random, "
             "made at start, shared by every worker and never written anywhere; a reload "
             "makes new ones."},
    {"ticket_rotate", CT_DURATION, 0, "1h", .min = 1000, .max = CFG_MAX_DURATION,
     .off = TS_OFF(ticket_rotate_ms),
     .help = "A new ticket key is made this often; tickets of the previous key are still "
             "accepted (and renewed) for one more period."},
    {"session_cache", CT_U32, 0, "20000", .min = 0, .max = 10000000, .off = TS_OFF(session_cache),
     .help = "Sessions kept for resumption by session id (TLS 1.2 clients without tickets); "
             "0 = off."},
    {"handshake_timeout", CT_DURATION, 0, "10s", .min = 100, .max = 3600000,
     .off = TS_OFF(handshake_timeout_ms),
     .help = "Time a client has to complete the TLS handshake; slower clients are closed."},
    {"starttls", CT_ENUM, 0, "none", .enums = starttls_names, .off = TS_OFF(starttls),
     .help = "`mode: tcp`: a plaintext exchange before the handshake. `postgres`: "
             "PostgreSQL clients first ask for TLS (SSLRequest), Strata agrees, then "
             "terminates TLS and relays the plaintext protocol; a client that does not ask "
             "is refused."},
    {"client_auth", CT_SECTION, .sub = &client_auth_section, .off = TS_OFF(client_auth),
     .def_doc = "off", .help = "Ask clients for a certificate (mutual TLS)."},
};

const struct cfg_section cfg_tls_server_section =
    SECTION("listeners[].tls",
            "TLS termination on a `mode: http` or `mode: tcp` listener: clients speak TLS, "
            "the listener decrypts, and routes and relays the plaintext. On a `mode: tcp` "
            "listener with `routes`, the routes match the SNI of the terminated handshake.",
            server_keys, .finish = server_finish);

/* Where a tls_server_new() error belongs. */
static void report_server_error(struct cfg_ctx *ctx, const struct ynode *map,
                                const struct tls_error *err)
{
    const char *a = NULL, *b = NULL;
    switch (err->field) {
    case TLS_F_CIPHERS:
        a = "ciphers";
        break;
    case TLS_F_CIPHERSUITES:
        a = "ciphersuites";
        break;
    case TLS_F_CURVES:
        a = "curves";
        break;
    case TLS_F_VERSION:
        a = "min_version";
        break;
    case TLS_F_CA:
        a = "client_auth", b = "ca";
        break;
    default:
        break;
    }
    error_at(ctx, map, a, b, err->msg);
}

static const unsigned char alpn_http11[] = "\x08http/1.1";
static const unsigned char alpn_h2_h1[] = "\x02h2\x08http/1.1"; /* http.h2.enabled */
static const unsigned char alpn_h2[] = "\x02h2";                    /* backend protocol: h2 */

int cfg_parse_listener_tls(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                           void *target)
{
    struct listener_conf *l = target;
    struct tls_server_conf conf = {0};
    struct tls_error err;
    unsigned before = ctx->nerrs + ctx->dropped;
    if (l->mode == MODE_UDP) {
        cfg_error(ctx, n, "applies to `mode: tcp` and `mode: http` listeners only (not UDP)");
        return -1;
    }
    cfg_walk_section(ctx, &cfg_tls_server_section, n, &conf);
    if (conf.starttls != TLS_STARTTLS_NONE && l->mode != MODE_TCP)
        error_at(ctx, n, "starttls", NULL, "applies to `mode: tcp` listeners only");
    struct tls_settings set = {conf.ciphers, conf.ciphersuites, conf.curves, conf.client_auth.ca};
    check_settings(ctx, n, &set, report_server_error);
    /* `http` is read before `tls` (the key order) */
    const unsigned char *alpn = l->http.h2.enabled ? alpn_h2_h1 : alpn_http11;
    size_t alpn_len = l->http.h2.enabled ? sizeof(alpn_h2_h1) - 1 : sizeof(alpn_http11) - 1;
    if (l->mode == MODE_HTTP && n->kind == YN_MAP && !ymap_get(n, "alpn") &&
        (conf.alpn = malloc(alpn_len))) {
        memcpy(conf.alpn, alpn, alpn_len);
        conf.alpn_len = (unsigned)alpn_len;
    }
    if (ctx->nerrs + ctx->dropped == before &&
        !(l->tls = tls_server_new(&conf, l->name ? l->name : "", &err)))
        report_server_error(ctx, n, &err);
    cfg_free_target(&cfg_tls_server_section, &conf);
    return l->tls ? 0 : -1;
}

void cfg_release_listener_tls(const struct cfg_key *key, void *target)
{
    struct listener_conf *l = target;
    tls_server_free(l->tls);
    l->tls = NULL;
}

/* ---- backends.<name>.tls ---------------------------------------------------------------- */

#define TC_OFF(f) offsetof(struct tls_client_conf, f)

static void client_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct tls_client_conf *c = target;
    check_versions(ctx, map, c->min_version, c->max_version);
    if (!c->cert != !c->key)
        error_at(ctx, map, c->cert ? "cert" : "key", NULL,
                 "a client certificate needs both `cert` and `key`");
    cfg_resolve_path(ctx, map, &c->ca);
    cfg_resolve_path(ctx, map, &c->cert);
    cfg_resolve_path(ctx, map, &c->key);
}

static const struct cfg_key client_keys[] = {
    {"ca", CT_STRING, 0, .def_doc = "the system store", .off = TC_OFF(ca),
     .help = "PEM file of the CAs server certificates must chain to; without it, the "
             "system's (`/etc/ssl/certs/ca-certificates.crt`)."},
    {"verify", CT_BOOL, 0, "true", .off = TC_OFF(verify),
     .help = "Verify the server's certificate: its chain, and that it names `sni` (or, "
             "without one, the server's IP address). `false` is allowed for tests, with "
             "a warning at load."},
    {"sni", CT_STRING, 0, .def_doc = "the server's host name; none for an IP address",
     .off = TC_OFF(sni), .help = "Server name sent (SNI) and expected in the certificate."},
    {"cert", CT_STRING, 0, .def_doc = "none", .off = TC_OFF(cert),
     .help = "PEM client certificate (and chain) for servers that ask for one (mTLS)."},
    {"key", CT_STRING, 0, .def_doc = "none", .off = TC_OFF(key),
     .help = "PEM private key of `cert`."},
    {"alpn", CT_CUSTOM, 0, .parse = parse_alpn, .release = release_alpn, .off = TC_OFF(alpn),
     .off2 = TC_OFF(alpn_len), .type_doc = "protocol name or list", .def_doc = "none",
     .help = "Protocols offered by ALPN, in order of preference."},
    {"min_version", CT_ENUM, 0, "tlsv1.2", .enums = version_names, .off = TC_OFF(min_version),
     .help = "Oldest protocol version offered."},
    {"max_version", CT_ENUM, 0, "tlsv1.3", .enums = version_names, .off = TC_OFF(max_version),
     .help = "Newest protocol version offered."},
    {"ciphers", CT_STRING, 0, .def_doc = "OpenSSL's default", .off = TC_OFF(ciphers),
     .help = "TLS 1.2 cipher list in OpenSSL syntax."},
    {"ciphersuites", CT_STRING, 0, .def_doc = "OpenSSL's default", .off = TC_OFF(ciphersuites),
     .help = "TLS 1.3 cipher suites, separated by `:`."},
};

const struct cfg_section cfg_tls_client_section =
    SECTION("backends.<name>.tls",
            "TLS to the servers of a backend. `tls: true` (or `{}`) means TLS with the "
            "defaults: the server's certificate verified against the system store. Each "
            "worker reuses the last session it had with each server.",
            client_keys, .finish = client_finish);

static void report_client_error(struct cfg_ctx *ctx, const struct ynode *map,
                                const struct tls_error *err)
{
    static const char *const keys[] = {
        [TLS_F_CERT] = "cert",
        [TLS_F_KEY] = "key",
        [TLS_F_CA] = "ca",
        [TLS_F_CIPHERS] = "ciphers",
        [TLS_F_CIPHERSUITES] = "ciphersuites",
        [TLS_F_VERSION] = "min_version",
    };
    const char *a = err->field < ARRAY_SIZE(keys) ? keys[err->field] : NULL;
    error_at(ctx, map, a, NULL, err->msg);
}

/* `protocol: h2`: ALPN offers h2 by default, and a list the operator gave must have it. */
static void client_alpn_h2(struct cfg_ctx *ctx, const struct ynode *n, struct tls_client_conf *c)
{
    if (!c->alpn) {
        if ((c->alpn = malloc(sizeof(alpn_h2) - 1))) {
            memcpy(c->alpn, alpn_h2, sizeof(alpn_h2) - 1);
            c->alpn_len = sizeof(alpn_h2) - 1;
        }
        return;
    }
    for (unsigned i = 0; i < c->alpn_len; i += 1u + c->alpn[i])
        if (c->alpn[i] == 2 && i + 3 <= c->alpn_len && memcmp(c->alpn + i + 1, "h2", 2) == 0)
            return;
    error_at(ctx, n, "alpn", NULL, "`protocol: h2` needs `h2` among the protocols offered");
}

/* `true`/`false` or a mapping. Walked after `servers` (table order): the session cache has
 * a slot per worker and server. */
int cfg_parse_backend_tls(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                          void *target)
{
    struct backend *b = target;
    struct tls_client_conf conf = {0};
    struct tls_error err;
    unsigned before = ctx->nerrs + ctx->dropped;
    char d[64];
    if (n->kind == YN_SCALAR) {
        static const struct cfg_key onoff = {"tls", CT_BOOL, .off = 0};
        bool on = false;
        cfg_parse_value(ctx, &onoff, n, &on);
        if (ctx->nerrs + ctx->dropped != before || !on)
            return ctx->nerrs + ctx->dropped != before ? -1 : 0;
        cfg_init_target(ctx, &cfg_tls_client_section, &conf);
    } else if (n->kind == YN_MAP) {
        cfg_walk_section(ctx, &cfg_tls_client_section, n, &conf);
    } else {
        cfg_error(ctx, n, "expected true, false or a mapping, got %s",
                  cfg_describe(n, d, sizeof(d)));
        return -1;
    }
    struct tls_settings set = {conf.ciphers, conf.ciphersuites, NULL, conf.ca};
    check_settings(ctx, n, &set, report_client_error);
    if (b->protocol == PROTO_H2)
        client_alpn_h2(ctx, n, &conf);
    if (ctx->nerrs + ctx->dropped == before &&
        !(b->tls = tls_client_new(&conf, ctx->root->workers, b->nservers, &err)))
        report_client_error(ctx, n, &err);
    if (b->tls && !conf.verify) {
        const struct ynode *v = ymap_get(n, "verify");
        log_warn("%s:%u:%u: warning: %s.verify: false: the servers' certificates are not "
                 "verified (anyone on the path can pose as them)",
                 ctx->file, v->line, v->col, ctx->path);
    }
    cfg_free_target(&cfg_tls_client_section, &conf);
    return b->tls ? 0 : -1;
}

void cfg_release_backend_tls(const struct cfg_key *key, void *target)
{
    struct backend *b = target;
    tls_client_free(b->tls);
    b->tls = NULL;
}
