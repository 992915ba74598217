/* schema.c — every configuration key of Strata, declared once.
 *
 * These tables are the contract between the configuration file and the rest of the code:
 * walk.c parses and validates with them, reference.c prints doc/config.md from them. The
 * hooks below are the few rules a table cannot say (inherited defaults, references
 * between sections, addresses used twice).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/fmt.h"
#include "http/filters/util.h"
#include "net/addr.h"
#include "net/quic.h"
#include "net/tls_hello.h"
#include "schema.h"

#define MS_DAY CFG_MS_DAY
#define MAX_DURATION CFG_MAX_DURATION
#define MAX_CONNS 10000000
#define ADMIN_TOKEN_MIN 16

_Static_assert(sizeof(enum balance_kind) == sizeof(int), "CT_ENUM stores an int");
_Static_assert(sizeof(enum listener_mode) == sizeof(int), "CT_ENUM stores an int");
_Static_assert(sizeof(enum health_type) == sizeof(int), "CT_ENUM stores an int");
_Static_assert(sizeof(enum proxy_send) == sizeof(int), "CT_ENUM stores an int");

#define SECTION(p, h, k, ...)                                                                      \
    {                                                                                              \
        .path = p, .help = h, .keys = k, .nkeys = ARRAY_SIZE(k), __VA_ARGS__                       \
    }

static const struct cfg_enum balance_names[] = {
    {"round_robin", BAL_ROUND_ROBIN},
    {"weighted", BAL_WEIGHTED},
    {"least_conn", BAL_LEAST_CONN},
    {"p2c", BAL_P2C},
    {"source_hash", BAL_SOURCE_HASH},
    {"maglev", BAL_MAGLEV},
    {"cookie", -1},
    {NULL, 0},
};
static const struct cfg_enum mode_names[] = {
    {"tcp", MODE_TCP},
    {"udp", MODE_UDP},
    {"http", MODE_HTTP},
    {NULL, 0},
};
static const struct cfg_enum proxy_send_names[] = {
    {"none", PROXY_SEND_NONE},
    {"v1", PROXY_SEND_V1},
    {"v2", PROXY_SEND_V2},
    {NULL, 0},
};
static const struct cfg_enum protocol_names[] = {
    {"h1", PROTO_H1},
    {"h2", PROTO_H2},
    {"h2c", PROTO_H2C},
    {NULL, 0},
};
_Static_assert(sizeof(enum backend_protocol) == sizeof(int), "CT_ENUM stores an int");
static const struct cfg_enum health_names[] = {
    {"tcp", HC_TCP},   {"udp", HC_UDP},   {"http", HC_HTTP},
    {"grpc", HC_GRPC}, {"none", HC_NONE}, {NULL, 0},
};

/* ---- servers ------------------------------------------------------------------------- */

static void server_finish(struct cfg_ctx *ctx, const struct ynode *n, void *target)
{
    struct server *s = target;
    if (!s->name && s->addr_text && !(s->name = strdup(s->addr_text)))
        cfg_oom(ctx, n);
}

static long decode_hex(const char *s, size_t len, uint8_t *out);

/* `quic_id`: 1..15 bytes of hex, the server's QUIC-LB server ID. Its length is checked
 * against the QUIC listeners using the backend in check_quic_ids(). */
static int parse_quic_id(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    struct server *s = target;
    uint8_t buf[QUIC_LB_SERVER_ID_MAX + 1];
    char b[64];
    long len = -1;
    if (n->kind == YN_SCALAR && n->len <= 2 * sizeof(buf) && !memchr(n->text, ' ', n->len))
        len = decode_hex(n->text, n->len, buf);
    if (len < 1 || len > QUIC_LB_SERVER_ID_MAX) {
        cfg_error(ctx, n, "expected 1 to %d bytes as hex digits (e.g. \"0a01\"), got %s",
                  QUIC_LB_SERVER_ID_MAX, cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    memcpy(s->quic_id, buf, (size_t)len);
    s->quic_id_len = (uint8_t)len;
    return 0;
}

static const struct cfg_key server_keys[] = {
    {"address", CT_ADDR, CK_REQUIRED, .off = offsetof(struct server, addr),
     .off2 = offsetof(struct server, addr_text),
     .help = "Where the server listens: `IPv4:port` or `[IPv6]:port`. Host names are not "
             "resolved."},
    {"name", CT_STRING, CK_UNIQUE, .def_doc = "the address", .off = offsetof(struct server, name),
     .help = "Name shown in statistics and the admin API; unique within the backend."},
    {"weight", CT_U32, 0, "1", .min = 1, .max = 1000, .off = offsetof(struct server, weight),
     .help = "Relative share of new connections (every `balance` but `round_robin`)."},
    {"backup", CT_BOOL, 0, "false", .off = offsetof(struct server, backup),
     .help = "A backup server is used only when no primary server is available."},
    {"max_connections", CT_U32, 0, "0", .min = 0, .max = MAX_CONNS,
     .off = offsetof(struct server, max_conns),
     .help = "Open connections above which the server is skipped; 0 = unlimited."},
    {"quic_id", CT_CUSTOM, .parse = parse_quic_id, .type_doc = "hex string", .def_doc = "none",
     .help = "QUIC-LB server ID of this server, as hex digits (`\"0a01\"`): its length must "
             "be the `udp.quic.server_id_length` of every QUIC listener using the backend, and "
             "no two servers of a backend may share one. A new flow whose connection ID "
             "carries it comes to this server (see `listeners[].udp.quic`)."},
};

static const struct cfg_section server_section = SECTION(
    "backends.<name>.servers[]",
    "One server of a backend. A plain string is shorthand for `{ address: STRING }`.", server_keys,
    .size = sizeof(struct server), .shorthand = "address", .finish = server_finish);

/* ---- backends ------------------------------------------------------------------------ */

#define MAX_UDP_PAYLOAD 65507 /* the largest UDP payload over IPv4 */

/* Decodes "0a 0b0c" into out (room for len / 2 bytes); returns the byte count or -1. */
static long decode_hex(const char *s, size_t len, uint8_t *out)
{
    long n = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        if (i + 1 >= len || hex_digit(s[i]) < 0 || hex_digit(s[i + 1]) < 0)
            return -1;
        out[n++] = (uint8_t)(hex_digit(s[i]) << 4 | hex_digit(s[i + 1]));
        i += 2;
    }
    return n;
}

/* `payload` (text, any bytes YAML can write) or `payload_hex`: the UDP check's datagram. */
static int parse_payload(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    struct health_conf *hc = target;
    bool hex = strcmp(key->name, "payload_hex") == 0;
    char b[64];
    if (n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected %s, got %s", hex ? "hex digits" : "a string",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (hc->payload) {
        cfg_error(ctx, n, "give either `payload` or `payload_hex`, not both");
        return -1;
    }
    uint8_t *p = malloc(n->len ? n->len : 1);
    if (!p) {
        cfg_oom(ctx, n);
        return -1;
    }
    long len = hex ? decode_hex(n->text, n->len, p) : (long)n->len;
    if (!hex)
        memcpy(p, n->text, n->len);
    if (len < 1 || len > MAX_UDP_PAYLOAD) {
        cfg_error(ctx, n, "expected %s of 1 to %d bytes, got %s",
                  hex ? "pairs of hex digits" : "a string", MAX_UDP_PAYLOAD,
                  cfg_describe(n, b, sizeof(b)));
        free(p);
        return -1;
    }
    hc->payload = p;
    hc->payload_len = (uint32_t)len;
    return 0;
}

static void release_payload(const struct cfg_key *key, void *target)
{
    struct health_conf *hc = target;
    free(hc->payload);
    hc->payload = NULL;
    hc->payload_len = 0;
}

/* "200", 200 or "200-399": a status or a range of them, into status_min/status_max. */
static int parse_expect_status(struct cfg_ctx *ctx, const struct cfg_key *key,
                               const struct ynode *n, void *target)
{
    struct health_conf *hc = target;
    char b[64], *end = NULL;
    long lo = n->kind == YN_SCALAR ? strtol(n->text, &end, 10) : 0, hi = lo;
    if (end && *end == '-' && end[1] >= '0' && end[1] <= '9')
        hi = strtol(end + 1, &end, 10);
    if (n->kind != YN_SCALAR || !(n->text[0] >= '0' && n->text[0] <= '9') || *end || lo < 100 ||
        hi > 599 || lo > hi) {
        cfg_error(ctx, n, "expected a status (100..599) or a range such as 200-399, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    hc->status_min = (uint16_t)lo;
    hc->status_max = (uint16_t)hi;
    return 0;
}

#define MAX_GRPC_SERVICE 1024

/* `service` of the gRPC check: may be empty (the whole server), unlike CT_STRING. */
static int parse_service(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    struct health_conf *hc = target;
    char *s = cfg_dup_text(ctx, n, "a service name such as pkg.Service");
    if (!s)
        return -1;
    if (n->len > MAX_GRPC_SERVICE || strpbrk(s, " \t")) {
        cfg_error(ctx, n, "expected a service name of at most %d bytes, without spaces",
                  MAX_GRPC_SERVICE);
        free(s);
        return -1;
    }
    free(hc->grpc_service);
    hc->grpc_service = s;
    return 0;
}

static void release_service(const struct cfg_key *key, void *target)
{
    struct health_conf *hc = target;
    free(hc->grpc_service);
    hc->grpc_service = NULL;
}

static const struct cfg_key health_keys[] = {
    {"type", CT_ENUM, 0, "tcp", .enums = health_names, .off = offsetof(struct health_conf, type),
     .help = "`tcp`: a server is up when a TCP connection to it succeeds. `udp`: a server is up "
             "when it answers the datagram `payload` (or `payload_hex`) with any datagram "
             "within `timeout`. `http`: a server is up when it answers a request (`method` "
             "`path`, on a new connection) with a status in `expect_status` within `timeout`. "
             "`grpc`: a server is up when it answers `grpc.health.v1.Health/Check` for "
             "`service` with SERVING, grpc-status 0 and :status 200 within `timeout` (HTTP/2 "
             "on a new connection: h2c, or h2 by ALPN over the backend's `tls`). "
             "`none`: no checks."},
    {"interval", CT_DURATION, 0, "2s", .min = 10, .max = MS_DAY,
     .off = offsetof(struct health_conf, interval_ms), .help = "Time between two checks."},
    {"timeout", CT_DURATION, 0, "1s", .min = 1, .max = MS_DAY,
     .off = offsetof(struct health_conf, timeout_ms),
     .help = "A check that takes longer has failed."},
    {"rise", CT_U32, 0, "2", .min = 1, .max = 100, .off = offsetof(struct health_conf, rise),
     .help = "Consecutive successful checks that bring a down server up."},
    {"fall", CT_U32, 0, "3", .min = 1, .max = 100, .off = offsetof(struct health_conf, fall),
     .help = "Consecutive failed checks that take an up server down."},
    {"payload", CT_CUSTOM, .parse = parse_payload, .release = release_payload, .type_doc = "string",
     .def_doc = "none",
     .help = "`type: udp`: the datagram sent, as text of 1..65507 bytes (YAML escapes such "
             "as `\\x01` allowed; NUL is not: use `payload_hex`)."},
    {"payload_hex", CT_CUSTOM, .parse = parse_payload, .release = release_payload,
     .type_doc = "hex string", .def_doc = "none",
     .help = "`type: udp`: the datagram sent, as hex digits (spaces between bytes allowed), "
             "instead of `payload`."},
    {"path", CT_STRING, 0, "/", .off = offsetof(struct health_conf, http_path),
     .help = "`type: http`: the path (and query) requested."},
    {"method", CT_STRING, 0, "GET", .off = offsetof(struct health_conf, http_method),
     .help = "`type: http`: the request method."},
    {"host", CT_STRING, 0, .def_doc = "the server's address",
     .off = offsetof(struct health_conf, http_host),
     .help = "`type: http`: the Host field sent; `type: grpc`: the :authority."},
    {"expect_status", CT_CUSTOM, 0, "200-399", .parse = parse_expect_status,
     .type_doc = "status or range `LOW-HIGH`",
     .help = "`type: http`: the statuses that mean the server is up."},
    {"service", CT_CUSTOM, .parse = parse_service, .release = release_service,
     .type_doc = "string", .def_doc = "`\"\"` (the whole server)",
     .help = "`type: grpc`: the service whose health is asked (`HealthCheckRequest.service`, "
             "e.g. `pkg.Service`; empty: the server as a whole), up to 1024 bytes without "
             "spaces."},
};

/* The HTTP check's request line must be writable as is: a token method, a path from '/'. */
static void health_http_check(struct cfg_ctx *ctx, const struct ynode *map,
                              const struct health_conf *hc)
{
    static const char *const keys[] = {"path", "method", "host"};
    const char *bad[] = {
        hc->http_path && (hc->http_path[0] != '/' || strpbrk(hc->http_path, " \t"))
            ? "a path starting with '/', without spaces"
            : NULL,
        hc->http_method && !http_token_valid(hc->http_method, strlen(hc->http_method))
            ? "a method such as GET"
            : NULL,
        hc->http_host && strpbrk(hc->http_host, " \t/") ? "a host[:port] without spaces" : NULL,
    };
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        if (!bad[i])
            continue;
        size_t mark = cfg_path_key(ctx, keys[i]);
        cfg_error(ctx, ymap_get(map, keys[i]), "expected %s", bad[i]);
        cfg_path_pop(ctx, mark);
    }
}

static void health_absent(void *target)
{
    ((struct health_conf *)target)->type = HC_NONE;
}

static void health_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct health_conf *hc = target;
    if (hc->type == HC_UDP && !hc->payload)
        cfg_error(ctx, map, "type udp needs `payload` or `payload_hex` (the datagram to send)");
    else if (hc->type != HC_UDP && hc->payload)
        cfg_error(ctx, map, "`payload` and `payload_hex` apply to type udp only");
    /* each key, and the types it applies to */
    static const struct {
        const char *key;
        unsigned types;
        const char *which;
    } only[] = {
        {"path", 1u << HC_HTTP, "type http"},
        {"method", 1u << HC_HTTP, "type http"},
        {"expect_status", 1u << HC_HTTP, "type http"},
        {"host", 1u << HC_HTTP | 1u << HC_GRPC, "types http and grpc"},
        {"service", 1u << HC_GRPC, "type grpc"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(only); i++) {
        const struct ynode *k = ymap_key(map, only[i].key);
        if (!k || (only[i].types & 1u << hc->type))
            continue;
        size_t mark = cfg_path_key(ctx, only[i].key);
        cfg_error(ctx, k, "applies to %s only", only[i].which);
        cfg_path_pop(ctx, mark);
    }
    if (hc->type == HC_HTTP || hc->type == HC_GRPC) /* grpc: `host` only */
        health_http_check(ctx, map, hc);
}

static const struct cfg_section health_section =
    SECTION("backends.<name>.health_check",
            "Active health checks. Without this section no active checks run (`type: none`).",
            health_keys, .absent = health_absent, .finish = health_finish);

static const struct cfg_key passive_keys[] = {
    {"fall", CT_U32, 0, "3", .min = 0, .max = 1000, .off = offsetof(struct passive_conf, fall),
     .help = "Consecutive failures that take a server down: failed connects, and for HTTP "
             "connections reset or closed before a complete response; 0 turns passive "
             "checks off."},
    {"http_5xx", CT_BOOL, 0, "false", .off = offsetof(struct passive_conf, http_5xx),
     .help = "HTTP backends: a 5xx answer counts as a failure too, as "
             "HAProxy's `observe layer7` (off by default: one broken page must not take "
             "healthy servers out)."},
    {"cooldown", CT_DURATION, 0, "10s", .min = 100, .max = MS_DAY,
     .off = offsetof(struct passive_conf, cooldown_ms),
     .help = "Without active checks: how long a server taken down stays down before it is "
             "tried again."},
};

static const struct cfg_section passive_section =
    SECTION("backends.<name>.passive",
            "Passive health checks: failed connects made for real clients count against a server.",
            passive_keys);

static const struct cfg_key backend_timeout_keys[] = {
    {"connect", CT_DURATION, 0, .def_doc = "`timeouts.connect`", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct backend, connect_timeout_ms),
     .help = "Time allowed to connect to a server of this backend."},
};

static const struct cfg_section backend_timeout_section =
    SECTION("backends.<name>.timeouts", "Overrides the global `timeouts` for one backend.",
            backend_timeout_keys);

static void backend_init(struct cfg_ctx *ctx, void *target)
{
    ((struct backend *)target)->connect_timeout_ms = ctx->root->timeouts.connect_ms;
}

static const struct cfg_key backend_keys[] = {
    {"balance", CT_ENUM, 0, "round_robin", .enums = balance_names,
     .off = offsetof(struct backend, balance),
     .help = "How a server is chosen for a new connection: `round_robin` in turn; `weighted` "
             "in turn by weight; `least_conn` fewest open connections; `p2c` the better of two "
             "random servers; `source_hash` by client IP; `maglev` consistent hashing of the "
             "client IP (the same choice on every Strata instance). With `hash`, HTTP "
             "listeners hash a part of the request instead of the client IP."},
    {"retries", CT_U32, 0, "2", .min = 0, .max = 16, .off = offsetof(struct backend, retries),
     .help = "Other servers tried after a failed connect, before the client is dropped."},
    {"timeouts", CT_SECTION, .sub = &backend_timeout_section,
     .help = "Timeouts of this backend, overriding the global ones."},
    {"health_check", CT_SECTION, .sub = &health_section, .off = offsetof(struct backend, hc),
     .def_doc = "no active checks", .help = "Active health checks."},
    {"passive", CT_SECTION, .sub = &passive_section, .off = offsetof(struct backend, passive),
     .help = "Passive health checks (on by default)."},
    {"proxy_protocol", CT_ENUM, 0, "none", .enums = proxy_send_names,
     .off = offsetof(struct backend, send_proxy),
     .help = "Send a PROXY protocol header (`v1` text or `v2` binary) at the start of each "
             "server connection, so servers see the client's address."},
    {"hash", CT_CUSTOM, .parse = cfg_parse_hash, .release = cfg_release_hash,
     .type_doc = "`path`, `source`, `{ header: NAME }` or `{ cookie: NAME }`",
     .def_doc = "`source`",
     .help = "What `source_hash` and `maglev` hash for HTTP listeners: the client address "
             "(`source`), the request's path, a header field or a cookie (the client address "
             "when the request has none). `mode: tcp`/`udp` listeners always hash the client "
             "address and ignore it."},
    {"sticky", CT_CUSTOM, .parse = cfg_parse_sticky, .release = cfg_release_sticky,
     .sub = &cfg_sticky_section, .type_doc = "boolean or mapping", .def_doc = "off",
     .help = "Cookie-based sticky sessions for HTTP listeners (ignored by `mode: tcp`/`udp` "
             "listeners)."},
    {"keepalive", CT_SECTION, .sub = &cfg_keepalive_section, .off = 0,
     .help = "Idle connections kept to the servers for HTTP listeners."},
    /* before `tls`: h2 makes "h2" its default ALPN */
    {"protocol", CT_ENUM, 0, "h1", .enums = protocol_names, .off = offsetof(struct backend, protocol),
     .help = "What HTTP listeners speak to the servers, whatever their clients speak: `h1` "
             "(HTTP/1.1, plain or with `tls`), `h2` (HTTP/2 over TLS: needs `tls`, whose "
             "`alpn` defaults to `h2`; a server that does not agree to h2 by ALPN fails the "
             "connect) or `h2c` (cleartext HTTP/2 with prior knowledge, without `tls`). An "
             "HTTP/2 connection carries many requests at once (`h2.max_streams`). `mode: "
             "tcp`/`udp` listeners ignore it."},
    {"h2", CT_SECTION, .sub = &cfg_h2_upstream_section, .off = 0,
     .help = "HTTP/2 connections to the servers (`protocol: h2` or `h2c`)."},
    {"runtime_servers", CT_U32, 0, "4", .min = 0, .max = 256,
     .off = offsetof(struct backend, runtime_servers),
     .help = "Servers the runtime API may add to this backend while it runs (kept until the "
             "next reload). `maglev` backends take none: their table is built at load."},
    {"servers", CT_LIST, CK_REQUIRED, .sub = &server_section, .min = 1,
     .off = offsetof(struct backend, servers), .off2 = offsetof(struct backend, nservers),
     .help = "The servers, at least one."},
    /* after `servers`: the TLS session cache has a slot per worker and server */
    {"tls", CT_CUSTOM, .parse = cfg_parse_backend_tls, .release = cfg_release_backend_tls,
     .sub = &cfg_tls_client_section, .type_doc = "`true`, `false` or mapping",
     .def_doc = "plain TCP", .help = "Speak TLS to the servers."},
};

/* Protocols and the keys they need or exclude. */
static void backend_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct backend *b = target;
    const struct ynode *tls = ymap_get(map, "tls");
    const char *bad = NULL, *key = "protocol";
    if (b->protocol == PROTO_H2 && !b->tls && (!tls || tls->kind == YN_SCALAR))
        bad = "`h2` is HTTP/2 over TLS and needs `tls` (cleartext HTTP/2 is `h2c`)";
    else if (b->protocol == PROTO_H2C && b->tls)
        bad = "`h2c` is cleartext HTTP/2 and excludes `tls` (HTTP/2 over TLS is `h2`)";
    else if (b->protocol != PROTO_H1 && b->hc.type == HC_HTTP)
        bad = "health_check type http speaks HTTP/1.1, which an HTTP/2 server may not: use "
              "type tcp";
    else if (b->protocol == PROTO_H1 && ymap_get(map, "h2"))
        bad = "applies to `protocol: h2` or `h2c` only", key = "h2";
    if (!bad)
        return;
    size_t mark = cfg_path_key(ctx, key);
    const struct ynode *at = ymap_get(map, key);
    cfg_error(ctx, at ? at : map, "%s", bad);
    cfg_path_pop(ctx, mark);
}

static const struct cfg_section backend_section =
    SECTION("backends.<name>",
            "A named group of servers that listeners send connections to. The name (the mapping "
            "key) is 1-64 letters, digits, `_`, `.` or `-`.",
            backend_keys, .size = sizeof(struct backend),
            .name_off = offsetof(struct backend, name), .init = backend_init,
            .finish = backend_finish);

/* ---- listeners ----------------------------------------------------------------------- */

static int parse_listen(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    struct listener_conf *l = target;
    size_t count = n->kind == YN_SEQ ? n->n : 1, bad = 0;
    char b[64];

    if (n->kind != YN_SEQ && n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected an address or a sequence of addresses, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (count == 0) {
        cfg_error(ctx, n, "expected at least one address, got an empty sequence");
        return -1;
    }
    l->addrs = calloc(count, sizeof(*l->addrs));
    l->addr_texts = calloc(count, sizeof(*l->addr_texts));
    if (!l->addrs || !l->addr_texts) {
        cfg_oom(ctx, n);
        return -1;
    }
    l->naddrs = (uint32_t)count;
    if (n->kind == YN_SCALAR)
        return cfg_parse_addr(ctx, n, &l->addrs[0], &l->addr_texts[0]);
    for (size_t i = 0; i < count; i++) {
        size_t mark = cfg_path_index(ctx, i);
        bad += cfg_parse_addr(ctx, n->kids[i], &l->addrs[i], &l->addr_texts[i]) < 0;
        cfg_path_pop(ctx, mark);
    }
    return bad ? -1 : 0;
}

static void release_listen(const struct cfg_key *key, void *target)
{
    struct listener_conf *l = target;
    for (uint32_t i = 0; l->addr_texts && i < l->naddrs; i++)
        free(l->addr_texts[i]);
    free(l->addr_texts);
    free(l->addrs);
}

/* Records the reference; root_finish() resolves it once every backend is known. */
static int parse_backend_ref(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                             void *target)
{
    return cfg_backend_ref(ctx, n, (struct backend **)((char *)target + key->off));
}

int cfg_backend_ref(struct cfg_ctx *ctx, const struct ynode *n, struct backend **slot)
{
    char b[64];
    if (n->kind != YN_SCALAR) {
        cfg_error(ctx, n, "expected the name of a backend, got %s", cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (ctx->nrefs == ctx->caprefs) {
        size_t cap = ctx->caprefs ? ctx->caprefs * 2 : 8;
        struct cfg_ref *r = realloc(ctx->refs, cap * sizeof(*r));
        if (!r) {
            cfg_oom(ctx, n);
            return -1;
        }
        ctx->refs = r;
        ctx->caprefs = cap;
    }
    struct cfg_ref *r = &ctx->refs[ctx->nrefs++];
    r->slot = slot;
    r->node = n;
    snprintf(r->path, sizeof(r->path), "%s", ctx->path);
    return 0;
}

static const struct cfg_key listener_timeout_keys[] = {
    {"idle", CT_DURATION, 0, .def_doc = "`timeouts.idle`", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct listener_conf, idle_timeout_ms),
     .help = "A connection with no traffic in either direction for this long is closed."},
    {"inspect", CT_DURATION, 0, "5s", .min = 10, .max = MS_DAY,
     .off = offsetof(struct listener_conf, inspect_timeout_ms),
     .help = "How long a client may take to send the PROXY header and the TLS ClientHello "
             "when the listener needs them; slower clients are closed and counted."},
};

static const struct cfg_section listener_timeout_section =
    SECTION("listeners[].timeouts", "Overrides the global `timeouts` for one listener.",
            listener_timeout_keys);

/* The `udp` section is walked after `mode` (table order), so the mode is known here. */
static void udp_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct listener_conf *l = container_of(target, struct listener_conf, udp);
    if (l->mode != MODE_UDP)
        cfg_error(ctx, map, "applies to listeners with `mode: udp` only");
}

static void quic_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct udp_quic_conf *q = target;
    const char *why;
    q->enabled = true;
    if (!quic_lb_config_valid(q->cid_len, q->server_id_len, q->config_id, &why))
        cfg_error(ctx, map, "%s (cid_length %u, server_id_length %u, config_id %u)", why,
                  q->cid_len, q->server_id_len, q->config_id);
}

static const struct cfg_key quic_keys[] = {
    {"cid_length", CT_U32, 0, "8", .min = 0, .max = 255,
     .off = offsetof(struct udp_quic_conf, cid_len),
     .help = "Length of the connection IDs the servers issue (short headers do not carry it): "
             "first octet, server ID and nonce, at most 20."},
    {"server_id_length", CT_U32, 0, "2", .min = 0, .max = 255,
     .off = offsetof(struct udp_quic_conf, server_id_len),
     .help = "QUIC-LB server ID bytes, right after the first octet of a connection ID "
             "(1..15); each server's `quic_id` has this length."},
    {"config_id", CT_U32, 0, "0", .min = 0, .max = 255,
     .off = offsetof(struct udp_quic_conf, config_id),
     .help = "QUIC-LB config rotation codepoint (0..6): the top 3 bits of the first octet of "
             "a routable connection ID. Other values (7 included) are not routed by ID."},
};

static const struct cfg_section quic_section = SECTION(
    "listeners[].udp.quic",
    "QUIC connection-ID routing (plaintext QUIC-LB, draft-ietf-quic-load-balancers): the "
    "section's presence turns it on and makes the listener QUIC-only. A datagram of an open "
    "flow (client address) goes to its flow's server as usual. The first datagram of a new "
    "flow is parsed as a QUIC packet, and: not QUIC → dropped (`quic_dropped_invalid`); "
    "its Destination Connection ID carries the `quic_id` of an eligible server (up, under "
    "its limits) → that server, so a client that changed address stays on its server "
    "(`quic_routed_by_server_id`); otherwise a long header (Initial, 0-RTT, Handshake) or "
    "a short header naming a known server that is down → rendezvous hashing of the "
    "DCID over the eligible servers by weight, the same choice in every worker and "
    "every Strata instance with the same servers (`quic_routed_by_hash`; a down server's "
    "client thus reaches a live server, which can reset the connection at once); a short "
    "header whose server ID is unknown or unroutable → dropped "
    "(`quic_dropped_unroutable`), as QUIC-LB says. The backend's `balance` is not used.",
    quic_keys, .finish = quic_finish);

static const struct cfg_key udp_keys[] = {
    {"flow_idle", CT_DURATION, 0, "30s", .min = 10, .max = MAX_DURATION,
     .off = offsetof(struct udp_conf, flow_idle_ms),
     .help = "A flow with no datagram in either direction for this long ends (`timeouts.idle` "
             "does not apply to UDP flows)."},
    {"max_flows", CT_U32, 0, "10000", .min = 1, .max = MAX_CONNS,
     .off = offsetof(struct udp_conf, max_flows),
     .help = "Flows each worker thread keeps for this listener; a new client beyond it evicts "
             "the least recently used flow."},
    {"quic", CT_SECTION, .sub = &quic_section, .off = offsetof(struct udp_conf, quic),
     .def_doc = "off", .help = "Route new flows by QUIC connection ID (see below)."},
};

static const struct cfg_section udp_section =
    SECTION("listeners[].udp",
            "Flow tracking of a `mode: udp` listener. A flow is a client address and port: "
            "its first datagram picks a server, and its datagrams and the server's replies "
            "go through one socket connected to that server until the flow is idle.",
            udp_keys, .finish = udp_finish);

/* ---- L4 inspection and limits ---------------------------------------------------------- */

/* A CIDR or a sequence of them, into the struct cidr_set at key->off. */
int cfg_parse_cidr_list(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    struct cidr_set *set = (struct cidr_set *)((char *)target + key->off);
    size_t count = n->kind == YN_SEQ ? n->n : 1, bad = 0;
    char b[64];
    if (n->kind != YN_SEQ && n->kind != YN_SCALAR) {
        cfg_error(ctx, n,
                  "expected an address prefix such as 10.0.0.0/8 or a sequence of "
                  "them, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const struct ynode *item = n->kind == YN_SEQ ? n->kids[i] : n;
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        struct cidr c;
        const char *why;
        if (item->kind != YN_SCALAR) {
            cfg_error(ctx, item, "expected an address prefix such as 10.0.0.0/8, got %s",
                      cfg_describe(item, b, sizeof(b)));
            bad++;
        } else if (cidr_parse(item->text, &c, &why) < 0) {
            cfg_error(ctx, item, "%s, got \"%s\"", why, item->text);
            bad++;
        } else if (cidr_set_add(set, &c) < 0) {
            cfg_oom(ctx, item);
            bad++;
        }
        cfg_path_pop(ctx, mark);
    }
    return bad ? -1 : 0;
}

void cfg_release_cidr_list(const struct cfg_key *key, void *target)
{
    cidr_set_free((struct cidr_set *)((char *)target + key->off));
}

static int parse_acl_allow(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                           void *target)
{
    ((struct acl *)target)->has_allow = true;
    return cfg_parse_cidr_list(ctx, key, n, target);
}

static const struct cfg_key acl_keys[] = {
    {"allow", CT_CUSTOM, 0, .parse = parse_acl_allow, .release = cfg_release_cidr_list,
     .off = offsetof(struct acl, allow), .type_doc = "prefix or list of prefixes",
     .def_doc = "every source", .help = "Only these sources may connect (when given)."},
    {"deny", CT_CUSTOM, 0, .parse = cfg_parse_cidr_list, .release = cfg_release_cidr_list,
     .off = offsetof(struct acl, deny), .type_doc = "prefix or list of prefixes", .def_doc = "none",
     .help = "These sources are refused, even if also allowed."},
    {"allow_countries", CT_CUSTOM, .parse = cfg_parse_countries,
     .off = offsetof(struct acl, countries.allow), .type_doc = "country code or list",
     .def_doc = "every country",
     .help = "Only clients located in these countries may connect (needs `geo.database`; a "
             "client of unknown country is refused)."},
    {"deny_countries", CT_CUSTOM, .parse = cfg_parse_countries,
     .off = offsetof(struct acl, countries.deny), .type_doc = "country code or list",
     .def_doc = "none", .help = "Clients located in these countries are refused."},
};

static const struct cfg_section acl_section =
    SECTION("listeners[].acl",
            "Client addresses allowed and denied, as prefixes (`10.0.0.0/8`, `2001:db8::/32`, "
            "a single address). Refused connections are closed at once and counted.",
            acl_keys);

static void proxy_accept_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct proxy_accept_conf *p = target;
    if (p->enabled && p->trusted.count == 0)
        cfg_error(ctx, map,
                  "`accept: true` needs `trusted`: the sources (load balancers) "
                  "allowed to send a PROXY header");
}

static const struct cfg_key proxy_accept_keys[] = {
    {"accept", CT_BOOL, 0, "false", .off = offsetof(struct proxy_accept_conf, enabled),
     .help = "Every connection must start with a PROXY v1 or v2 header; its source address "
             "then stands for the client in ACLs, limits, hashing and logs."},
    {"trusted", CT_CUSTOM, 0, .parse = cfg_parse_cidr_list, .release = cfg_release_cidr_list,
     .off = offsetof(struct proxy_accept_conf, trusted), .type_doc = "prefix or list of prefixes",
     .def_doc = "none (required with `accept`)",
     .help = "Sources allowed to send a PROXY header; a connection from any other source is "
             "refused."},
};

static const struct cfg_section proxy_accept_section =
    SECTION("listeners[].proxy_protocol", "Accepting the PROXY protocol (HAProxy's v1 and v2).",
            proxy_accept_keys, .finish = proxy_accept_finish);

static void per_source_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct source_limits_conf *p = target;
    if (p->rate && !p->burst)
        p->burst = p->rate;
}

static const struct cfg_key per_source_keys[] = {
    {"max_connections", CT_U32, 0, "0", .min = 0, .max = MAX_CONNS,
     .off = offsetof(struct source_limits_conf, max_conns),
     .help = "Open connections per source; more are closed at once. 0 = unlimited."},
    {"rate", CT_U32, 0, "0", .min = 0, .max = 1000000,
     .off = offsetof(struct source_limits_conf, rate),
     .help = "New connections per second per source (token bucket). 0 = unlimited."},
    {"burst", CT_U32, 0, .def_doc = "`rate`", .min = 1, .max = SRC_RATE_BURST_MAX,
     .off = offsetof(struct source_limits_conf, burst),
     .help = "Connections a source may open at once before `rate` applies."},
};

static const struct cfg_section per_source_section =
    SECTION("listeners[].per_source",
            "Limits per client source, shared by all workers (a fixed table of counters: "
            "sources that share a slot share a budget, so the limits err on the strict side).",
            per_source_keys, .finish = per_source_finish);

/* SNI patterns: a host name or "*.example.com", or a sequence of them. */
static int parse_sni_list(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                          void *target)
{
    struct sni_route *r = target;
    size_t count = n->kind == YN_SEQ ? n->n : 1, bad = 0;
    char b[64];
    if ((n->kind != YN_SEQ && n->kind != YN_SCALAR) || count == 0) {
        cfg_error(ctx, n, "expected a host name, \"*.domain\", or a sequence of them, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(r->sni = calloc(count, sizeof(*r->sni)))) {
        cfg_oom(ctx, n);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const struct ynode *item = n->kind == YN_SEQ ? n->kids[i] : n;
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        const char *why;
        if (item->kind != YN_SCALAR || !sni_pattern_valid(item->text, &why)) {
            cfg_error(ctx, item, "expected a host name or \"*.domain\"%s%s, got %s",
                      item->kind == YN_SCALAR ? ": " : "", item->kind == YN_SCALAR ? why : "",
                      cfg_describe(item, b, sizeof(b)));
            bad++;
        } else if (!(r->sni[r->nsni++] = strdup(item->text))) {
            cfg_oom(ctx, item);
            bad++;
        }
        cfg_path_pop(ctx, mark);
    }
    return bad ? -1 : 0;
}

static void release_sni_list(const struct cfg_key *key, void *target)
{
    struct sni_route *r = target;
    for (uint32_t i = 0; r->sni && i < r->nsni; i++)
        free(r->sni[i]);
    free(r->sni);
    r->sni = NULL;
    r->nsni = 0;
}

static const struct cfg_key route_match_keys[] = {
    {"sni", CT_CUSTOM, CK_REQUIRED, .parse = parse_sni_list, .release = release_sni_list,
     .type_doc = "host name or list",
     .help = "Server names (SNI) this route takes: "
             "`api.example.com`, or `*.example.com` for any "
             "name under example.com (not example.com itself)."},
};

static const char *const http_match_keys[] = {
    "host", "path", "path_prefix", "path_regex", "method", "header", "cookie", "query", NULL,
};

static const struct cfg_section route_match_section =
    SECTION("listeners[].routes[].match (mode tcp)", "What a TLS passthrough route matches.",
            route_match_keys, .other_keys = http_match_keys,
            .other_msg = "applies to `mode: http` listeners only");

static const struct cfg_key route_keys[] = {
    {"match", CT_SECTION, 0, .sub = &route_match_section, .def_doc = "every connection",
     .help = "The condition; a route without it is the default (also for clients sending "
             "no SNI)."},
    {"backend", CT_CUSTOM, CK_REQUIRED, .parse = parse_backend_ref, .type_doc = "backend name",
     .off = offsetof(struct sni_route, backend), .help = "Where matching connections go."},
};

static const char *const http_route_keys[] = {
    "name",     "split",   "path_rewrite", "request_headers", "response_headers",
    "redirect", "respond", "retry",        NULL,
};

static const struct cfg_section route_section =
    SECTION("listeners[].routes[] (mode tcp)", "One TLS passthrough route.", route_keys,
            .size = sizeof(struct sni_route), .other_keys = http_route_keys,
            .other_msg = "applies to `mode: http` listeners only");

/* `routes` is a list of TLS passthrough routes on a tcp listener, of HTTP routes on an
 * http listener (`mode` is walked before it). */
static const struct cfg_key routes_by_mode[] = {
    {"routes", CT_LIST, 0, .sub = &route_section, .min = 1,
     .off = offsetof(struct listener_conf, routes),
     .off2 = offsetof(struct listener_conf, nroutes)},
    {"routes", CT_LIST, 0, .sub = &cfg_http_route_section, .min = 1,
     .off = offsetof(struct listener_conf, http.routes),
     .off2 = offsetof(struct listener_conf, http.nroutes)},
};

static const struct cfg_section routes_release_section = {
    .keys = routes_by_mode, .nkeys = ARRAY_SIZE(routes_by_mode)};

static int parse_routes(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    struct listener_conf *l = target;
    if (l->mode == MODE_UDP) {
        cfg_error(ctx, n, "applies to `mode: tcp` and `mode: http` listeners only");
        return -1;
    }
    cfg_parse_value(ctx, &routes_by_mode[l->mode == MODE_HTTP], n, target);
    if (l->mode == MODE_HTTP)
        cfg_http_routes_named(ctx, l);
    return 0;
}

static void release_routes(const struct cfg_key *key, void *target)
{
    cfg_free_target(&routes_release_section, target);
}

/* With a listener `backend`, "default" names the route standing for it (the last one,
 * added after the list): no route of the list may take that name too. */
static void check_default_route_name(struct cfg_ctx *ctx, const struct ynode *routes)
{
    for (size_t i = 0; routes->kind == YN_SEQ && i < routes->n; i++) {
        const struct ynode *r = routes->kids[i];
        const struct ynode *name = r->kind == YN_MAP ? ymap_get(r, "name") : NULL;
        if (!name || name->kind != YN_SCALAR || strcmp(name->text, "default") != 0)
            continue;
        size_t mark = cfg_path_key(ctx, "routes");
        cfg_path_index(ctx, i);
        cfg_path_key(ctx, "name");
        cfg_error(ctx, name,
                  "duplicate name \"default\": the listener's `backend` is the route of "
                  "that name (the last one)");
        cfg_path_pop(ctx, mark);
    }
}

static void listener_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct listener_conf *l = target;
    const struct ynode *backend = ymap_get(map, "backend"), *routes = ymap_get(map, "routes");
    if (!backend && !routes)
        cfg_error(ctx, map, "missing required key \"backend\" (or \"routes\")");
    else if (backend && routes && l->mode == MODE_TCP)
        cfg_error(ctx, routes, "give either `backend` or `routes`, not both");
    /* an http listener may have both: `backend` takes what no route matches */
    if (l->mode == MODE_HTTP && backend && routes)
        check_default_route_name(ctx, routes);
    if (l->mode == MODE_TCP)
        return;
    /* connection-level keys: the connection stage (net/stage.h) applies them to tcp and
     * http listeners; a UDP listener has no connection */
    static const char *const stream_only[] = {"proxy_protocol", "per_source",
                                              "max_connections", "backlog"};
    for (size_t i = 0; l->mode == MODE_UDP && i < ARRAY_SIZE(stream_only); i++) {
        const struct ynode *k = ymap_get(map, stream_only[i]);
        if (!k)
            continue;
        size_t mark = cfg_path_key(ctx, stream_only[i]);
        cfg_error(ctx, k, "applies to `mode: tcp` and `mode: http` listeners only");
        cfg_path_pop(ctx, mark);
    }
}

_Static_assert(sizeof(enum log_format) == sizeof(int), "CT_ENUM stores an int");

const struct cfg_enum cfg_log_formats[] = {
    {"text", LOG_FORMAT_TEXT},
    {"json", LOG_FORMAT_JSON},
    {"off", LOG_FORMAT_OFF},
    {NULL, 0},
};

const struct cfg_enum cfg_syslog_facilities[] = {
    {"kern", 0},    {"user", 1},    {"mail", 2},    {"daemon", 3},  {"auth", 4},
    {"syslog", 5},  {"lpr", 6},     {"news", 7},    {"uucp", 8},    {"cron", 9},
    {"authpriv", 10}, {"ftp", 11},  {"local0", 16}, {"local1", 17}, {"local2", 18},
    {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23},
    {NULL, 0},
};

int cfg_parse_syslog(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                     void *target)
{
    struct syslog_conf *c = (struct syslog_conf *)((char *)target + key->off);
    char b[64];
    const char *why = NULL;
    if (n->kind != YN_SCALAR || n->len == 0) {
        cfg_error(ctx, n, "expected a socket path such as /dev/log or udp:HOST:PORT, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (n->text[0] == '/') {
        c->unix_path = true;
        if (n->len >= 108)
            why = "socket path too long (at most 107 bytes)";
    } else if (strncmp(n->text, "udp:", 4) != 0) {
        why = "expected a socket path such as /dev/log or udp:HOST:PORT";
    } else if (addr_parse(n->text + 4, &c->addr, &why) < 0) {
        /* why set by addr_parse */
    }
    if (why) {
        cfg_error(ctx, n, "%s, got \"%s\"", why, n->text);
        return -1;
    }
    if (!(c->text = strdup(n->text))) {
        cfg_oom(ctx, n);
        return -1;
    }
    if (!c->unix_path)
        memmove(c->text, c->text + 4, strlen(c->text) - 3); /* the address, for messages */
    return 0;
}

void cfg_release_syslog(const struct cfg_key *key, void *target)
{
    struct syslog_conf *c = (struct syslog_conf *)((char *)target + key->off);
    free(c->text);
    c->text = NULL;
}

void cfg_log_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct log_conf *c = target;
    if (c->path && c->syslog.text)
        cfg_error(ctx, ymap_get(map, "syslog"), "give `path` or `syslog`, not both");
}

static const struct cfg_key log_keys[] = {
    {"format", CT_ENUM, 0, "text", .enums = cfg_log_formats,
     .off = offsetof(struct log_conf, format),
     .help = "`text`: one `conn` line per connection (`mode: tcp`; on `mode: http`, the "
             "connections refused before HTTP: admission, PROXY header, TLS) or `flow` line per "
             "UDP flow: listener, client, server, bytes, duration, how it ended; `json`: the "
             "same fields as one JSON object per line (`\"event\": \"conn\"` or `\"flow\"`); "
             "`off`: none."},
    {"path", CT_STRING, 0, .def_doc = "standard error", .off = offsetof(struct log_conf, path),
     .help = "The file lines are appended to (shared with any other log naming it)."},
    CFG_SYSLOG_KEYS,
};

static const struct cfg_section log_section =
    SECTION("listeners[].log",
            "The connection and flow log of a listener (the HTTP access log is "
            "`listeners[].http.access_log`). Lines are buffered per worker and written once per "
            "event batch.",
            log_keys, .finish = cfg_log_finish);

static void listener_init(struct cfg_ctx *ctx, void *target)
{
    ((struct listener_conf *)target)->idle_timeout_ms = ctx->root->timeouts.idle_ms;
}

static const struct cfg_key listener_keys[] = {
    {"name", CT_NAME, CK_REQUIRED | CK_UNIQUE, .off = offsetof(struct listener_conf, name),
     .help = "Unique name: 1-64 letters, digits, `_`, `.` or `-`. Used in logs and metrics."},
    {"listen", CT_CUSTOM, CK_REQUIRED, .parse = parse_listen, .release = release_listen,
     .type_doc = "address or list of addresses",
     .help = "Where to accept connections: `IPv4:port`, `[IPv6]:port`, `*:port` (all IPv4) "
             "or `[::]:port`, or a list of them. No two listeners may use the same address."},
    {"mode", CT_ENUM, 0, "tcp", .enums = mode_names, .off = offsetof(struct listener_conf, mode),
     .help = "`tcp`: relay bytes to a server unchanged (any TCP protocol). `udp`: relay "
             "datagrams, tracking one flow per client address and port (see `udp`). `http`: "
             "HTTP/1.1 proxy: each request is routed (see `routes` and `http`)."},
    {"backend", CT_CUSTOM, 0, .parse = parse_backend_ref, .type_doc = "backend name",
     .off = offsetof(struct listener_conf, backend), .def_doc = "required unless `routes`",
     .help = "The backend (a key of `backends`) that serves this listener. On a `mode: http` "
             "listener with `routes`, it takes the requests no route matches (a last route "
             "named `default`)."},
    {"routes", CT_CUSTOM, 0, .parse = parse_routes, .release = release_routes,
     .sub = &route_section, .alt = &cfg_http_route_section, .type_doc = "list",
     .def_doc = "none",
     .help = "`mode: tcp`: TLS passthrough routed by SNI: each connection's TLS ClientHello "
             "is read without terminating TLS, the first route whose `match.sni` names the "
             "requested host (or a route without `match`) picks the backend, and the bytes "
             "are replayed to the chosen server; instead of `backend`. `mode: http`: HTTP "
             "routes, tried in order for each request."},
    {"proxy_protocol", CT_SECTION, .sub = &proxy_accept_section,
     .off = offsetof(struct listener_conf, proxy), .def_doc = "not accepted",
     .help = "Accept the PROXY protocol (v1 or v2) from trusted sources."},
    {"acl", CT_SECTION, .sub = &acl_section, .off = offsetof(struct listener_conf, acl),
     .def_doc = "every source allowed", .help = "Client addresses allowed and denied."},
    {"per_source", CT_SECTION, .sub = &per_source_section,
     .off = offsetof(struct listener_conf, per_source), .def_doc = "no limits",
     .help = "Limits per client address (IPv4) or /64 (IPv6)."},
    {"max_connections", CT_U32, 0, "0", .min = 0, .max = MAX_CONNS,
     .off = offsetof(struct listener_conf, max_conns),
     .help = "Open connections above which new ones are closed at once; 0 = unlimited."},
    {"backlog", CT_U32, 0, "1024", .min = 1, .max = 65535,
     .off = offsetof(struct listener_conf, backlog),
     .help = "Kernel queue of connections not yet accepted (`listen(2)` backlog)."},
    {"timeouts", CT_SECTION, .sub = &listener_timeout_section,
     .help = "Timeouts of this listener, overriding the global ones."},
    {"udp", CT_SECTION, .sub = &udp_section, .off = offsetof(struct listener_conf, udp),
     .help = "UDP flow tracking (`mode: udp` only)."},
    {"log", CT_SECTION, .sub = &log_section, .off = offsetof(struct listener_conf, log),
     .help = "Connection and flow log lines: format and file."},
    {"http", CT_SECTION, .sub = &cfg_http_section, .off = offsetof(struct listener_conf, http),
     .help = "HTTP settings (`mode: http` only)."},
    /* after `name` and `mode`, which it depends on */
    {"tls", CT_CUSTOM, .parse = cfg_parse_listener_tls, .release = cfg_release_listener_tls,
     .sub = &cfg_tls_server_section, .type_doc = "mapping", .def_doc = "plain TCP",
     .help = "Terminate TLS (`mode: tcp` and `mode: http`)."},
};

static const struct cfg_section listener_section =
    SECTION("listeners[]", "A socket that accepts client connections and sends them to a backend.",
            listener_keys, .size = sizeof(struct listener_conf), .init = listener_init,
            .finish = listener_finish);

/* ---- top level ----------------------------------------------------------------------- */

static int parse_workers(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    struct cfg_root *root = target;
    char b[64];
    if (n->kind == YN_SCALAR && strcmp(n->text, "auto") == 0) {
        unsigned w = ctx->ncpu ? ctx->ncpu : 1;
        root->workers = w > 256 ? 256 : w;
        return 0;
    }
    char *end;
    long v = n->kind == YN_SCALAR ? strtol(n->text, &end, 10) : 0;
    if (n->kind != YN_SCALAR || !*n->text || *end || v < 1 || v > 256 || n->text[0] == ' ' ||
        n->text[0] == '+') {
        cfg_error(ctx, n, "expected \"auto\" or an integer from 1 to 256, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    root->workers = (uint32_t)v;
    return 0;
}

static const struct cfg_key timeout_keys[] = {
    {"connect", CT_DURATION, 0, "2s", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct cfg_root, timeouts.connect_ms),
     .help = "Time allowed to connect to a server (a backend may override it)."},
    {"idle", CT_DURATION, 0, "5m", .min = 1, .max = MAX_DURATION,
     .off = offsetof(struct cfg_root, timeouts.idle_ms),
     .help = "A connection idle this long is closed (a listener may override it)."},
    {"drain", CT_DURATION, 0, "10s", .min = 0, .max = MAX_DURATION,
     .off = offsetof(struct cfg_root, timeouts.drain_ms),
     .help = "On SIGTERM, how long open connections may finish before they are closed."},
    {"reload_drain", CT_DURATION, 0, "30s", .min = 0, .max = MAX_DURATION,
     .off = offsetof(struct cfg_root, timeouts.reload_drain_ms),
     .help = "After a reload, how long a long-lived connection whose path the reload changed "
             "(a tunnel, a TCP session, an HTTP/2 connection, a UDP flow) may go on before it "
             "is closed; those whose listener, backend and server stayed are not touched."},
};

static const struct cfg_section timeout_section = SECTION(
    "timeouts", "Global timeouts; listeners and backends may override some of them.", timeout_keys);

static const struct cfg_key tuning_keys[] = {
    {"pipe_size", CT_SIZE, 0, "256k", .min = 4096, .max = 1 << 20,
     .off = offsetof(struct cfg_root, tuning.pipe_size),
     .help = "Kernel pipe size for zero-copy (splice) relaying of bulk transfers (TCP relays, "
             "and HTTP response bodies no filter sees): larger means fewer system calls per MiB. "
             "Above /proc/sys/fs/pipe-max-size the kernel default (64k) is kept."},
    {"pipe_cache", CT_U32, 0, "256", .min = 0, .max = 65536,
     .off = offsetof(struct cfg_root, tuning.pipe_cache),
     .help = "Empty pipes each worker keeps for reuse. A pipe is held only while bytes are "
             "in flight through it, so idle connections hold none."},
    {"io_uring", CT_BOOL, 0, "true", .off = offsetof(struct cfg_root, tuning.io_uring),
     .help = "Make the sends of each event-loop turn together, in one io_uring_enter(2) "
             "system call, so that a server or client on the same CPU is woken once per turn "
             "rather than once per send. Where the kernel refuses io_uring (old kernels, "
             "container policies) workers send one by one and say so in the log."},
};

static const struct cfg_section tuning_section = SECTION(
    "tuning", "Resource knobs with sane defaults; most setups never touch them.", tuning_keys);

/* `token_file`: its first line becomes the token (read once, at load). */
static void admin_read_token_file(struct cfg_ctx *ctx, const struct ynode *map,
                                  struct cfg_root *root)
{
    const struct ynode *at = ymap_get(map, "token_file");
    size_t mark = cfg_path_key(ctx, "token_file");
    char buf[512] = "";
    FILE *f = fopen(root->admin.token_file, "r");
    if (!f) {
        cfg_error(ctx, at, "cannot open %s: %s", root->admin.token_file, strerror(errno));
    } else {
        bool read = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        if (!read || strlen(buf) < ADMIN_TOKEN_MIN)
            cfg_error(ctx, at, "%s: expected a token of at least %d characters on its first line",
                      root->admin.token_file, ADMIN_TOKEN_MIN);
        else if (!(root->admin.token = strdup(buf)))
            cfg_oom(ctx, at);
    }
    cfg_path_pop(ctx, mark);
}

/* The admin listener is open to whoever reaches its address: off loopback, only with a
 * token (writes change live traffic). */
static void admin_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct cfg_root *root = target;
    root->admin.enabled = true;
    const struct ynode *tok = ymap_get(map, "token");
    if (root->admin.token && root->admin.token_file) {
        size_t mark = cfg_path_key(ctx, "token_file");
        cfg_error(ctx, ymap_get(map, "token_file"), "give `token` or `token_file`, not both");
        cfg_path_pop(ctx, mark);
        return;
    }
    if (root->admin.token && strlen(root->admin.token) < ADMIN_TOKEN_MIN) {
        size_t mark = cfg_path_key(ctx, "token");
        cfg_error(ctx, tok, "expected at least %d characters", ADMIN_TOKEN_MIN);
        cfg_path_pop(ctx, mark);
    }
    if (root->admin.token_file)
        admin_read_token_file(ctx, map, root);
    if (!root->admin.token && !root->admin.token_file && root->admin.text &&
        !addr_is_loopback(&root->admin.addr)) {
        const struct ynode *at = ymap_get(map, "listen");
        size_t mark = cfg_path_key(ctx, "listen");
        cfg_error(ctx, at ? at : map,
                  "%s is not a loopback address: an admin listener reachable from the network "
                  "needs `token` or `token_file` (clients send `Authorization: Bearer TOKEN`)",
                  root->admin.text);
        cfg_path_pop(ctx, mark);
    }
}

static void admin_absent(void *target)
{
    struct cfg_root *root = target;
    free(root->admin.text);
    root->admin.text = NULL;
    root->admin.enabled = false;
}

static const struct cfg_key admin_keys[] = {
    {"listen", CT_ADDR, 0, "127.0.0.1:9090", .off = offsetof(struct cfg_root, admin.addr),
     .off2 = offsetof(struct cfg_root, admin.text),
     .help = "Address of the admin API, metrics and dashboard. Keep it off public networks: "
             "an address other than loopback (127.0.0.0/8, ::1) needs `token` or "
             "`token_file`."},
    {"token", CT_STRING, 0, .def_doc = "none", .off = offsetof(struct cfg_root, admin.token),
     .help = "Bearer token (at least 16 characters) the runtime API (`/api/v1/` servers, "
             "backends, config...) and `POST /reload` ask of every request: `Authorization: "
             "Bearer TOKEN`. The read-only views (`/metrics`, `/healthz`, `/api/v1/stats`, "
             "trends, top, the dashboard) stay open."},
    {"token_file", CT_STRING, 0, .def_doc = "none",
     .off = offsetof(struct cfg_root, admin.token_file),
     .help = "A file whose first line is the token, read at load (keeps it out of the "
             "configuration)."},
    {"token_name", CT_NAME, 0, "token", .off = offsetof(struct cfg_root, admin.token_name),
     .help = "Who the token stands for in the log line of every runtime API write."},
    {"histograms", CT_BOOL, 0, "true", .off = offsetof(struct cfg_root, admin.histograms),
     .help = "Record latency histograms and percentiles per listener, route, backend and "
             "server (`/metrics`, `/api/v1/stats`, the dashboard). `false` saves a few "
             "nanoseconds per request; without an admin listener they are not recorded."},
};

static const struct cfg_section admin_section =
    SECTION("admin", "The admin listener. Without this section there is none.", admin_keys,
            .finish = admin_finish, .absent = admin_absent);

static void check_refs(struct cfg_ctx *ctx)
{
    const struct cfg_root *root = ctx->root;
    for (size_t i = 0; i < ctx->nrefs; i++) {
        const struct cfg_ref *r = &ctx->refs[i];
        const char *cands[64];
        size_t nc = 0;
        for (uint32_t j = 0; j < root->nbackends && !*r->slot; j++) {
            const char *name = root->backends[j].name;
            if (name && strcmp(name, r->node->text) == 0)
                *r->slot = &root->backends[j];
            else if (name && nc < ARRAY_SIZE(cands))
                cands[nc++] = name;
        }
        if (*r->slot || !root->nbackends) /* no backends at all is reported already */
            continue;
        const char *hint = cfg_suggest(r->node->text, cands, nc);
        snprintf(ctx->path, sizeof(ctx->path), "%s", r->path);
        ctx->pathlen = strlen(ctx->path);
        if (hint)
            cfg_error(ctx, r->node, "no backend named \"%s\" (did you mean \"%s\"?)", r->node->text,
                      hint);
        else
            cfg_error(ctx, r->node, "no backend named \"%s\" in `backends`", r->node->text);
        cfg_path_pop(ctx, 0);
    }
}

/* Reports that address j of listener i is already used by `other`, at the node where it
 * was written ("listeners[i].listen" or "listeners[i].listen[j]"). */
static void listen_conflict(struct cfg_ctx *ctx, uint32_t i, uint32_t j, const char *other)
{
    const struct ynode *seq = ymap_get(ctx->doc, "listeners");
    const struct ynode *n = ymap_get(seq->kids[i], "listen");
    size_t mark = cfg_path_key(ctx, "listeners");
    cfg_path_index(ctx, i);
    cfg_path_key(ctx, "listen");
    if (n->kind == YN_SEQ) {
        cfg_path_index(ctx, j);
        n = n->kids[j];
    }
    cfg_error(ctx, n, "address %s is already used by %s", ctx->root->listeners[i].addr_texts[j],
              other);
    cfg_path_pop(ctx, mark);
}

/* No address may be used by two listeners of the same protocol (a tcp and a udp listener
 * may share one, as DNS does), twice by one, or by a TCP listener and admin. */
static void check_addresses(struct cfg_ctx *ctx)
{
    const struct cfg_root *root = ctx->root;
    char other[128];
    for (uint32_t i = 0; i < root->nlisteners; i++) {
        const struct listener_conf *l = &root->listeners[i];
        for (uint32_t j = 0; j < l->naddrs; j++) {
            if (!l->addr_texts[j])
                continue;
            bool dup = false;
            for (uint32_t pi = 0; pi <= i && !dup; pi++) {
                const struct listener_conf *p = &root->listeners[pi];
                for (uint32_t pj = 0; pj < (pi == i ? j : p->naddrs) && !dup; pj++) {
                    if (!p->addr_texts[pj] || !addr_equal(&p->addrs[pj], &l->addrs[j]) ||
                        (p->mode == MODE_UDP) != (l->mode == MODE_UDP))
                        continue;
                    if (pi == i)
                        snprintf(other, sizeof(other), "listen[%u] of the same listener", pj);
                    else
                        snprintf(other, sizeof(other), "listener \"%s\"", p->name ? p->name : "?");
                    listen_conflict(ctx, i, j, other);
                    dup = true;
                }
            }
            if (!dup && root->admin.enabled && root->admin.text && l->mode != MODE_UDP &&
                addr_equal(&root->admin.addr, &l->addrs[j]))
                listen_conflict(ctx, i, j, "the admin listener (admin.listen)");
        }
    }
}

/* Reports an error at server j's `quic_id` in backend b ("backends.B.servers[j].quic_id"). */
static void quic_id_error(struct cfg_ctx *ctx, const struct backend *b, uint32_t j, const char *msg)
{
    const struct ynode *n = ymap_get(ymap_get(ctx->doc, "backends"), b->name);
    const struct ynode *seq = n ? ymap_get(n, "servers") : NULL;
    const struct ynode *at = seq && seq->kind == YN_SEQ && j < seq->n ? seq->kids[j] : n;
    if (at && at->kind == YN_MAP && ymap_get(at, "quic_id"))
        at = ymap_get(at, "quic_id");
    size_t mark = cfg_path_key(ctx, "backends");
    cfg_path_key(ctx, b->name);
    cfg_path_key(ctx, "servers");
    cfg_path_index(ctx, j);
    cfg_path_key(ctx, "quic_id");
    cfg_error(ctx, at, "%s", msg);
    cfg_path_pop(ctx, mark);
}

/* A server's quic_id must have the server_id_length of every QUIC listener of its backend,
 * and no two servers of a backend may share one. */
static void check_quic_ids(struct cfg_ctx *ctx)
{
    const struct cfg_root *root = ctx->root;
    char msg[160];
    for (uint32_t i = 0; i < root->nbackends; i++) {
        const struct backend *b = &root->backends[i];
        for (uint32_t j = 0; b->name && j < b->nservers; j++) {
            const struct server *s = &b->servers[j];
            for (uint32_t k = 0; s->quic_id_len && k < j; k++) {
                const struct server *o = &b->servers[k];
                if (o->quic_id_len == s->quic_id_len &&
                    memcmp(o->quic_id, s->quic_id, s->quic_id_len) == 0) {
                    snprintf(msg, sizeof(msg), "duplicate quic_id, already used by servers[%u]", k);
                    quic_id_error(ctx, b, j, msg);
                    break;
                }
            }
            for (uint32_t l = 0; s->quic_id_len && l < root->nlisteners; l++) {
                const struct listener_conf *lc = &root->listeners[l];
                if (lc->backend != b || !lc->udp.quic.enabled ||
                    lc->udp.quic.server_id_len == s->quic_id_len)
                    continue;
                snprintf(msg, sizeof(msg),
                         "is %u bytes long, but listener \"%s\" has udp.quic.server_id_length "
                         "%u",
                         s->quic_id_len, lc->name ? lc->name : "?", lc->udp.quic.server_id_len);
                quic_id_error(ctx, b, j, msg);
                break;
            }
        }
    }
}

static void root_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    check_refs(ctx);
    cfg_http_finish(ctx);
    check_addresses(ctx);
    check_quic_ids(ctx);
    cfg_expect_verify(ctx);
}

/* Order matters: `timeouts` comes before `listeners` and `backends`, whose init hooks copy
 * the global values as defaults. */
static const struct cfg_key root_keys[] = {
    {"workers", CT_CUSTOM, 0, "auto", .parse = parse_workers, .type_doc = "`auto` or 1..256",
     .help = "Worker threads, each with its own event loop. `auto`: one per CPU."},
    {"timeouts", CT_SECTION, .sub = &timeout_section, .help = "Global timeouts."},
    {"admin", CT_SECTION, .sub = &admin_section, .def_doc = "no admin listener",
     .help = "The admin API, metrics and dashboard listener."},
    {"tuning", CT_SECTION, .sub = &tuning_section, .help = "Resource knobs."},
    {"upgrade_socket", CT_STRING, 0, .def_doc = "none",
     .off = offsetof(struct cfg_root, upgrade_socket),
     .help = "Path of a Unix socket where the running process hands its listening sockets "
             "to a new `strata run` of the same file (a binary upgrade: no connection "
             "refused), then drains and exits. The new process takes over the path."},
    {"analytics", CT_SECTION, .sub = &cfg_analytics_section,
     .off = offsetof(struct cfg_root, analytics), .help = "Traffic analytics (trends, top-N)."},
    {"geo", CT_SECTION, .sub = &cfg_geo_section, .off = offsetof(struct cfg_root, analytics),
     .def_doc = "off", .help = "Client geolocation from a MaxMind database."},
    {"max_connections", CT_U32, 0, "0", .min = 0, .max = MAX_CONNS,
     .off = offsetof(struct cfg_root, max_conns),
     .help = "Open client connections for the whole process, all listeners together; more "
             "are closed at once and counted. 0 = unlimited."},
    {"listeners", CT_LIST, CK_REQUIRED, .sub = &listener_section, .min = 1,
     .off = offsetof(struct cfg_root, listeners), .off2 = offsetof(struct cfg_root, nlisteners),
     .help = "The listeners, at least one."},
    {"backends", CT_NAMED, CK_REQUIRED, .sub = &backend_section, .min = 1,
     .off = offsetof(struct cfg_root, backends), .off2 = offsetof(struct cfg_root, nbackends),
     .help = "The backends by name, at least one."},
    {"expect", CT_LIST, 0, .sub = &cfg_expect_section, .def_doc = "none", .min = 0, .max = 1000,
     .off = offsetof(struct cfg_root, expects), .off2 = offsetof(struct cfg_root, nexpects),
     .help = "Requests and the route, backend or status they must get, checked at every load "
             "(see `strata explain`)."},
};

const struct cfg_section cfg_root_section =
    SECTION("", "The top level of the configuration file.", root_keys,
            .size = sizeof(struct cfg_root), .finish = root_finish);
