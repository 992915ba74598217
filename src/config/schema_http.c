/* schema_http.c — the configuration of HTTP: a `mode: http` listener's `http` section
 * (limits, timeouts, forwarded headers, request ids, access log), its routes (match →
 * filters → backend, split or answer), and the HTTP keys of backends (hash, sticky,
 * keepalive). Declared as tables like schema.c; the filters' own keys are in
 * schema_filters.c.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/units.h"
#include "http/filter.h"
#include "http/filters/util.h"
#include "http/msg.h"
#include "http/router.h"
#include "schema.h"

#define SECTION(p, h, k, ...)                                                                      \
    {                                                                                              \
        .path = p, .help = h, .keys = k, .nkeys = ARRAY_SIZE(k), __VA_ARGS__                       \
    }

static bool scalar_is(const struct ynode *n, const char *s)
{
    return n->kind == YN_SCALAR && strcmp(n->text, s) == 0;
}

/* ---- listeners[].http ------------------------------------------------------------------ */

#define BODY_BUFFER_MAX (1ull << 30)

static int parse_size64(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    uint64_t v;
    char b[64];
    if (n->kind != YN_SCALAR || parse_size(n->text, &v) < 0 || v > BODY_BUFFER_MAX) {
        cfg_error(ctx, n, "expected a size from 0 to 1g (such as 64k or 1m), got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    *(uint64_t *)((char *)target + key->off) = v;
    return 0;
}

int cfg_parse_size_any(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target)
{
    uint64_t v;
    char b[64];
    if (n->kind != YN_SCALAR || parse_size(n->text, &v) < 0 || v > (1ull << 50)) {
        cfg_error(ctx, n, "expected a size (such as 0, 10m or 2g), got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    *(uint64_t *)((char *)target + key->off) = v;
    return 0;
}

static int parse_forwarded(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                           void *target)
{
    static const char *const names[] = {"none", "x-forwarded", "rfc7239", "both"};
    struct filter_forwarded_conf *f = &((struct http_listener_conf *)target)->forwarded;
    char b[64];
    for (unsigned i = 0; i < ARRAY_SIZE(names); i++) {
        if (scalar_is(n, names[i])) {
            f->x_forwarded = i & 1;
            f->forwarded = i & 2;
            return 0;
        }
    }
    const char *hint = n->kind == YN_SCALAR ? cfg_suggest(n->text, names, ARRAY_SIZE(names)) : NULL;
    cfg_error(ctx, n, "expected one of x-forwarded, rfc7239, both, none, got %s%s%s%s",
              cfg_describe(n, b, sizeof(b)), hint ? " (did you mean \"" : "", hint ? hint : "",
              hint ? "\"?)" : "");
    return -1;
}

static int parse_request_id(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                            void *target)
{
    struct filter_request_id_conf *r = &((struct http_listener_conf *)target)->request_id;
    free(r->header);
    r->header = NULL;
    r->header_len = 0;
    if (scalar_is(n, "none"))
        return 0;
    if (cfg_check_field_name(ctx, n, "header name") < 0)
        return -1;
    if (!(r->header = strdup(n->text))) {
        cfg_oom(ctx, n);
        return -1;
    }
    for (char *p = r->header; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->header_len = (uint32_t)n->len;
    return 0;
}

static void release_request_id(const struct cfg_key *key, void *target)
{
    struct filter_request_id_conf *r = &((struct http_listener_conf *)target)->request_id;
    free(r->header);
    r->header = NULL;
}

/* `sample`: a share from 0 to 1 ("0.1") or a percentage ("10%"), kept as the share of
 * lines skipped, in millionths. */
static int parse_sample(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                        void *target)
{
    struct log_conf *c = target;
    char b[64], *end = NULL;
    double v = n->kind == YN_SCALAR && n->len ? strtod(n->text, &end) : -1;
    if (end && *end == '%' && end[1] == 0) {
        v /= 100;
        end++;
    }
    if (!end || *end || !(v >= 0 && v <= 1)) {
        cfg_error(ctx, n, "expected a share from 0 to 1 (0.1) or a percentage (10%%), got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    c->skip_ppm = 1000000u - (uint32_t)(v * 1000000.0 + 0.5);
    return 0;
}

static const struct cfg_key access_log_keys[] = {
    {"format", CT_ENUM, 0, "text", .enums = cfg_log_formats,
     .off = offsetof(struct log_conf, format),
     .help = "`text`: one line per request (client, method, path as received, status, "
             "bytes, duration, route, server, request id); `json`: the same as one JSON "
             "object per line; `off`: no access log."},
    {"path", CT_STRING, 0, .def_doc = "standard output", .off = offsetof(struct log_conf, path),
     .help = "The file lines are appended to (shared with any other log naming it)."},
    CFG_SYSLOG_KEYS,
    {"sample", CT_CUSTOM, .parse = parse_sample, .type_doc = "share or percentage",
     .def_doc = "1 (every request)",
     .help = "Log only this share of the requests, drawn at random per request (`0.1` or "
             "`10%`). Errors are still all logged unless `sample_errors`."},
    {"sample_errors", CT_BOOL, 0, "false", .off = offsetof(struct log_conf, sample_errors),
     .help = "Sample errors too (status 400 and above, or no response). By default every "
             "error is logged whatever `sample` says."},
};

static const struct cfg_section access_log_section =
    SECTION("listeners[].http.access_log", "One line per HTTP request.", access_log_keys,
            .finish = cfg_log_finish);

static void http_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct listener_conf *l = container_of(target, struct listener_conf, http);
    if (l->mode != MODE_HTTP)
        cfg_error(ctx, map, "applies to listeners with `mode: http` only");
}

/* The listener filters point into the conf itself: only their array is owned here. */
static void http_release(void *target)
{
    struct http_listener_conf *h = target;
    cfg_free_listener_filters(h);
    free(h->filters);
    h->filters = NULL;
    h->nfilters = 0;
}

#define H2_OFF(f) offsetof(struct http2_conf, f)
#define H2_RATE(key, def, field, what)                                                             \
    {key, CT_U32, 0, def, .min = 1, .max = 1000000, .off = H2_OFF(field),                         \
     .help = what " a connection may send per second; past it the connection ends with "          \
                 "GOAWAY (ENHANCE_YOUR_CALM)."}

static const struct cfg_key h2_keys[] = {
    {"enabled", CT_BOOL, 0, "false", .off = H2_OFF(enabled),
     .help = "Speak HTTP/2 to clients that choose it by ALPN `h2` on a TLS listener (without "
             "an explicit `tls.alpn`, Strata then offers `h2` before `http/1.1`)."},
    {"cleartext", CT_BOOL, 0, "false", .off = H2_OFF(cleartext),
     .help = "On a plain listener, speak HTTP/2 to clients that start with its connection "
             "preface (h2c with prior knowledge); HTTP/1 clients share the listener."},
    {"websocket", CT_BOOL, 0, "true", .off = H2_OFF(websocket),
     .help = "Accept WebSocket over HTTP/2 (RFC 8441: SETTINGS_ENABLE_CONNECT_PROTOCOL, then "
             "CONNECT with `:protocol websocket`), relayed to HTTP/1 servers as an Upgrade and "
             "to HTTP/2 servers that accept extended CONNECT. Off: such a request is reset."},
    {"max_concurrent_streams", CT_U32, 0, "100", .min = 1, .max = 10000,
     .off = H2_OFF(max_streams),
     .help = "Streams open at once on a connection (SETTINGS_MAX_CONCURRENT_STREAMS). A "
             "stream the client reset counts until its server side is cancelled; streams "
             "past the limit are refused (REFUSED_STREAM)."},
    {"initial_window", CT_SIZE, 0, "64k", .min = 16384, .max = 16 << 20, .off = H2_OFF(window),
     .help = "Request body bytes a stream may send ahead (its flow-control window): the most "
             "Strata buffers per stream; the window reopens as the server takes the body. A "
             "connection's streams together hold 1 MiB at most (or one window when larger)."},
    {"stream_buffer", CT_SIZE, 0, "64k", .min = 16384, .max = 16 << 20,
     .off = H2_OFF(stream_buffer),
     .help = "Response body bytes held per stream while the client's window is closed; the "
             "server is read no faster than the client takes. A connection's streams together "
             "hold 1 MiB at most (or one buffer when larger)."},
    {"stream_stall_timeout", CT_DURATION, 0, "30s", .min = 1, .max = CFG_MAX_DURATION,
     .off = H2_OFF(stall_ms),
     .help = "A stream whose response cannot move (the client's window stays at zero) or "
             "whose request body stops is reset after this; a connection whose output waits "
             "that long for a client that does not read is closed."},
    {"max_continuations", CT_U32, 0, "8", .min = 1, .max = 1000, .off = H2_OFF(max_continuations),
     .help = "CONTINUATION frames in one header block; more end the connection (CONTINUATION "
             "flood). The decoded size of a block is bounded by `max_header_size` and "
             "`max_headers` (HPACK bomb: 431)."},
    H2_RATE("max_resets_per_second", "100", resets_per_s,
            "RST_STREAM frames (rapid reset, CVE-2023-44487)"),
    H2_RATE("max_glitches_per_second", "100", glitches_per_s,
            "Stream errors and invalid frames (malformed heads, refused streams, frames for "
            "closed streams; MadeYouReset, CVE-2025-8671)"),
    H2_RATE("max_settings_per_second", "100", settings_per_s, "SETTINGS frames"),
    H2_RATE("max_pings_per_second", "100", pings_per_s, "PING frames"),
    H2_RATE("max_priority_per_second", "1000", priority_per_s, "PRIORITY frames"),
    H2_RATE("max_empty_data_per_second", "100", empty_data_per_s,
            "Empty DATA frames that do not end their stream"),
    H2_RATE("max_window_updates_per_second", "1000", window_update_per_s,
            "WINDOW_UPDATE frames (beyond two for each DATA frame Strata sent)"),
};

static const struct cfg_section h2_section =
    SECTION("listeners[].http.h2", "HTTP/2 from clients, and the limits of one connection.",
            h2_keys);

#define HTTP_OFF(f) offsetof(struct http_listener_conf, f)

static const struct cfg_key http_keys[] = {
    {"max_request_line", CT_SIZE, 0, "8k", .min = 256, .max = 64 << 10,
     .off = HTTP_OFF(limits.max_request_line),
     .help = "Longest request line (method, target, version); a longer one is answered 414."},
    {"max_header_size", CT_SIZE, 0, "16k", .min = 1024, .max = 64 << 10,
     .off = HTTP_OFF(limits.max_header_bytes),
     .help = "Largest request head (request line and fields); a larger one is answered 431."},
    {"max_headers", CT_U32, 0, "100", .min = 1, .max = 1000, .off = HTTP_OFF(limits.max_headers),
     .help = "Most header fields in a request; more are answered 431."},
    {"max_body_buffered", CT_CUSTOM, 0, "1m", .parse = parse_size64,
     .off = HTTP_OFF(limits.max_body_buffered), .type_doc = "size up to `1g`",
     .help = "Largest body a filter may hold whole (bodies otherwise stream through); a "
             "larger one is answered 413."},
    {"max_request_body", CT_CUSTOM, 0, "0", .parse = cfg_parse_size_any,
     .off = HTTP_OFF(limits.max_request_body), .type_doc = "size, 0 = unlimited",
     .help = "Largest request body accepted (NGINX's client_max_body_size): a larger "
             "Content-Length is answered 413 before anything reaches a server; a chunked "
             "body that grows past it is cut with 413 and both connections are closed."},
    {"request_header_timeout", CT_DURATION, 0, "10s", .min = 1, .max = CFG_MS_DAY,
     .off = HTTP_OFF(timeouts.request_header_ms),
     .help = "Time a client has to send a whole request head; then 408."},
    {"keepalive_timeout", CT_DURATION, 0, "60s", .min = 1, .max = CFG_MS_DAY,
     .off = HTTP_OFF(timeouts.keepalive_ms),
     .help = "An idle client connection between two requests is closed after this."},
    {"connect_timeout", CT_DURATION, 0, "0", .min = 0, .max = CFG_MAX_DURATION,
     .off = HTTP_OFF(timeouts.connect_ms),
     .help = "Time allowed to connect to a server; `0`: the backend's connect timeout. A "
             "failed or slow connect is retried on another server, else answered 503/504."},
    {"response_timeout", CT_DURATION, 0, "30s", .min = 1, .max = CFG_MAX_DURATION,
     .off = HTTP_OFF(timeouts.response_ms),
     .help = "Time a server has to start its response once the request is sent; then 504."},
    {"request_timeout", CT_DURATION, 0, "0", .min = 0, .max = CFG_MAX_DURATION,
     .off = HTTP_OFF(timeouts.request_ms),
     .help = "Time for a whole exchange, request and response; `0` = no limit."},
    {"lingering_timeout", CT_DURATION, 0, "5s", .min = 0, .max = CFG_MS_DAY,
     .off = HTTP_OFF(timeouts.lingering_ms),
     .help = "A connection closed after an answer that came before the whole request was "
             "read (a 413 during an upload, a 400) first shuts its sending side, then reads "
             "and discards what the client still sends, until it closes or for at most this "
             "long: closed with unread bytes, the kernel would reset the connection and "
             "could destroy the answer (NGINX's lingering_close). `0`: close at once."},
    {"max_requests_per_connection", CT_U32, 0, "0", .min = 0, .max = 1000000000,
     .off = HTTP_OFF(max_requests_per_conn),
     .help = "Requests served on one client connection before Strata closes it; 0 = "
             "unlimited."},
    {"trusted_proxies", CT_CUSTOM, 0, .parse = cfg_parse_cidr_list,
     .release = cfg_release_cidr_list, .off = HTTP_OFF(trusted_proxies),
     .type_doc = "prefix or list of prefixes", .def_doc = "none",
     .help = "Clients that are proxies themselves: their X-Forwarded-* and Forwarded fields "
             "are kept and appended to. Those of any other client are replaced."},
    {"forwarded", CT_CUSTOM, 0, "x-forwarded", .parse = parse_forwarded,
     .type_doc = "`x-forwarded`, `rfc7239`, `both`, `none`",
     .help = "How servers learn who the client is: `x-forwarded` sets X-Forwarded-For "
             "(client IP), X-Forwarded-Proto (`http`/`https`) and X-Forwarded-Host; "
             "`rfc7239` sets Forwarded (`for=...;proto=...;host=...`); `both`; `none`."},
    {"request_id", CT_CUSTOM, 0, "x-request-id", .parse = parse_request_id,
     .release = release_request_id, .type_doc = "header name or `none`",
     .help = "Field carrying a request id: kept when the request has a usable one (1-200 "
             "visible characters), else made (32 random hex digits); sent to the server, "
             "returned to the client, logged. `none`: no request ids."},
    {"traceparent", CT_BOOL, 0, "true", .off = HTTP_OFF(traceparent.enabled),
     .help = "W3C Trace Context: a valid `traceparent` is passed on; a missing or invalid one "
             "is replaced by a new trace (and `tracestate` removed)."},
    {"ip_access", CT_CUSTOM, .parse = cfg_parse_listener_filter, .sub = &cfg_ip_access_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Client address allow/deny lists for every request of the listener (403)."},
    {"bot", CT_CUSTOM, .parse = cfg_parse_listener_filter, .sub = &cfg_bot_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "User-agent rules and the cookie challenge for every request of the listener."},
    {"basic_auth", CT_CUSTOM, .parse = cfg_parse_listener_filter, .sub = &cfg_basic_auth_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "HTTP Basic authentication for every request of the listener (401)."},
    {"jwt", CT_CUSTOM, .parse = cfg_parse_listener_filter, .sub = &cfg_jwt_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "A valid JWT for every request of the listener (401); its `forward_claims` are "
             "set before routing, so routes can match them."},
    {"error_pages", CT_SECTION, .sub = &cfg_error_pages_section, .off = HTTP_OFF(error_pages),
     .help = "Pages for Strata's own error answers (400-599): files or built-in HTML/JSON."},
    {"access_log", CT_SECTION, .sub = &access_log_section, .off = HTTP_OFF(access_log),
     .help = "The access log of the listener."},
    {"h2", CT_SECTION, .sub = &h2_section, .off = HTTP_OFF(h2),
     .help = "HTTP/2 from clients (off by default)."},
};

const struct cfg_section cfg_http_section =
    SECTION("listeners[].http",
            "HTTP settings of a `mode: http` listener: limits, timeouts, and what Strata adds "
            "to every request. Defaults apply without the section.",
            http_keys, .finish = http_finish, .release = http_release);

/* ---- listeners[].routes[].match (mode http) ---------------------------------------------- */

/* A host pattern: a name (letters, digits, '-', '.', '_'), "*.name", an IPv4 address or a
 * bracketed IPv6 address; no port. Stored lowercased, without a trailing dot. */
static int host_pattern(struct cfg_ctx *ctx, const struct ynode *n, struct host_pattern *h)
{
    char b[64];
    const char *s = n->kind == YN_SCALAR ? n->text : "";
    size_t len = n->kind == YN_SCALAR ? n->len : 0;
    bool wild = len > 2 && s[0] == '*' && s[1] == '.', ok = len > 0 && len <= 255;
    if (len > 1 && s[len - 1] == '.')
        len--;
    bool v6 = len > 2 && s[0] == '[' && s[len - 1] == ']';
    for (size_t i = wild ? 1 : 0; ok && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        ok = isalnum(c) || c == '-' || c == '.' || c == '_' ||
             (v6 && (c == ':' || ((i == 0 || i == len - 1) && (c == '[' || c == ']'))));
    }
    if (!ok) {
        cfg_error(ctx, n,
                  "expected a host name, \"*.domain\" or an IP address, without port, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (wild)
        s++, len--; /* keep the leading dot: ".example.com" */
    if (!(h->text = strndup(s, len))) {
        cfg_oom(ctx, n);
        return -1;
    }
    for (char *p = h->text; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    h->len = (uint32_t)len;
    h->wildcard = wild;
    return 0;
}

/* The items of a scalar-or-sequence value: the count, and item i. */
static size_t items(const struct ynode *n)
{
    return n->kind == YN_SEQ ? n->n : 1;
}

static const struct ynode *item(const struct ynode *n, size_t i)
{
    return n->kind == YN_SEQ ? n->kids[i] : n;
}

static int parse_hosts(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target)
{
    struct route_match *m = target;
    char b[64];
    if ((n->kind != YN_SEQ && n->kind != YN_SCALAR) || items(n) == 0) {
        cfg_error(ctx, n, "expected a host name or a sequence of them, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(m->hosts = calloc(items(n), sizeof(*m->hosts)))) {
        cfg_oom(ctx, n);
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < items(n); i++) {
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        if (host_pattern(ctx, item(n, i), &m->hosts[m->nhosts]) == 0)
            m->nhosts++;
        else
            bad = -1;
        cfg_path_pop(ctx, mark);
    }
    return bad;
}

static void release_hosts(const struct cfg_key *key, void *target)
{
    struct route_match *m = target;
    for (uint32_t i = 0; m->hosts && i < m->nhosts; i++)
        free(m->hosts[i].text);
    free(m->hosts);
    m->hosts = NULL;
    m->nhosts = 0;
}

static int compile_regex(struct cfg_ctx *ctx, const struct ynode *n, struct str_match *m)
{
    char err[200];
    if (str_match_compile(m, n->text, err, sizeof(err)) < 0) {
        cfg_error(ctx, n, "invalid regex: %s", err);
        return -1;
    }
    return 0;
}

static int parse_path(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                      void *target)
{
    struct route_match *m = target;
    char b[64];
    if (m->path.kind != SM_ANY) {
        cfg_error(ctx, n, "give only one of `path`, `path_prefix`, `path_regex` and `grpc`");
        return -1;
    }
    bool regex = strcmp(key->name, "path_regex") == 0;
    if (n->kind != YN_SCALAR || (!regex && (n->text[0] != '/' || strpbrk(n->text, " \t?#")))) {
        cfg_error(ctx, n, "expected %s, got %s",
                  regex ? "a regex" : "a path starting with '/' (without query)",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (regex)
        return compile_regex(ctx, n, &m->path);
    if (!(m->path.text = strdup(n->text))) {
        cfg_oom(ctx, n);
        return -1;
    }
    m->path.len = (uint32_t)n->len;
    m->path.kind = strcmp(key->name, "path") == 0 ? SM_EXACT : SM_PREFIX;
    return 0;
}

static void release_path(const struct cfg_key *key, void *target)
{
    str_match_free(&((struct route_match *)target)->path);
}

/* One method: known ones into the bitmask, others (valid tokens) kept by name. */
static int add_method(struct cfg_ctx *ctx, struct route_match *m, const struct ynode *n)
{
    char b[64];
    if (n->kind != YN_SCALAR || !http_token_valid(n->text, n->len)) {
        cfg_error(ctx, n, "expected a method such as GET, got %s", cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    enum http_method meth = http_method_from((struct hstr){n->text, (uint32_t)n->len});
    if (meth != HTTP_M_OTHER) {
        m->methods |= 1u << meth;
        return 0;
    }
    char up[16];
    size_t i = 0;
    for (; i < n->len && i < sizeof(up) - 1; i++)
        up[i] = (char)toupper((unsigned char)n->text[i]);
    up[i] = '\0';
    if (http_method_from(hstr_c(up)) != HTTP_M_OTHER) {
        cfg_error(ctx, n, "methods are case-sensitive: did you mean \"%s\"?", up);
        return -1;
    }
    char **o = realloc(m->other_methods, (m->nother_methods + 1) * sizeof(*o));
    if (o)
        m->other_methods = o;
    if (!o || !(o[m->nother_methods] = strdup(n->text))) {
        cfg_oom(ctx, n);
        return -1;
    }
    m->nother_methods++;
    return 0;
}

static int parse_methods(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    char b[64];
    if ((n->kind != YN_SEQ && n->kind != YN_SCALAR) || items(n) == 0) {
        cfg_error(ctx, n, "expected a method or a sequence of them, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < items(n); i++) {
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        bad |= add_method(ctx, target, item(n, i));
        cfg_path_pop(ctx, mark);
    }
    return bad;
}

static void release_methods(const struct cfg_key *key, void *target)
{
    struct route_match *m = target;
    for (uint32_t i = 0; m->other_methods && i < m->nother_methods; i++)
        free(m->other_methods[i]);
    free(m->other_methods);
    m->other_methods = NULL;
    m->nother_methods = 0;
}

/* A value form: "text" (exact), { exact | prefix | regex: text }, { present: true }. */
static int value_match(struct cfg_ctx *ctx, const struct ynode *n, struct str_match *m)
{
    char b[64];
    if (n->kind == YN_SCALAR) {
        m->kind = SM_EXACT;
    } else if (n->kind == YN_MAP && n->n == 1 && n->kids[1]->kind == YN_SCALAR) {
        const struct ynode *k = n->kids[0], *v = n->kids[1];
        size_t mark = cfg_path_key(ctx, k->text ? k->text : "?");
        int rc = -1;
        if (scalar_is(k, "present") && scalar_is(v, "true")) {
            m->kind = SM_PRESENT;
            rc = 0;
        } else if (scalar_is(k, "present")) {
            cfg_error(ctx, v, "only `present: true` is supported (a match on absence is not)");
        } else if (scalar_is(k, "regex")) {
            rc = compile_regex(ctx, v, m);
        } else if (scalar_is(k, "exact") || scalar_is(k, "prefix")) {
            m->kind = scalar_is(k, "exact") ? SM_EXACT : SM_PREFIX;
            n = v;
            rc = 1;
        } else {
            cfg_error(ctx, k, "unknown key, expected one of: exact, prefix, regex, present");
        }
        cfg_path_pop(ctx, mark);
        if (rc <= 0)
            return rc;
    } else {
        cfg_error(ctx, n,
                  "expected a value, or a mapping with one of exact, prefix, regex or "
                  "present, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(m->text = strdup(n->text))) {
        cfg_oom(ctx, n);
        return -1;
    }
    m->len = (uint32_t)n->len;
    return 0;
}

/* The name of a named match: header names are field names (lowercased), cookie names
 * tokens, query parameter names anything printable without '&', '=', '#' or space. */
static int match_name(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n)
{
    char b[64];
    if (strcmp(key->name, "header") == 0)
        return cfg_check_field_name(ctx, n, "header name");
    if (strcmp(key->name, "cookie") == 0 && n->kind == YN_SCALAR &&
        http_token_valid(n->text, n->len))
        return 0;
    if (strcmp(key->name, "query") == 0 && n->kind == YN_SCALAR && n->len &&
        !strpbrk(n->text, "&=# ") && !memchr(n->text, 0x7f, n->len)) {
        for (size_t i = 0; i < n->len; i++)
            if ((unsigned char)n->text[i] < 0x20)
                goto bad;
        return 0;
    }
bad:
    cfg_error(ctx, n, "expected a %s name, got %s", key->name, cfg_describe(n, b, sizeof(b)));
    return -1;
}

/* header / cookie / query: a mapping of names to value forms, into the named_match array
 * at key->off (count at key->off2). */
static int parse_named(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                       void *target)
{
    struct named_match **arr = (struct named_match **)((char *)target + key->off);
    uint32_t *count = (uint32_t *)((char *)target + key->off2);
    char b[64];
    if (n->kind != YN_MAP || n->n == 0) {
        cfg_error(ctx, n, "expected a mapping of %s names to values, got %s", key->name,
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!(*arr = calloc(n->n, sizeof(**arr)))) {
        cfg_oom(ctx, n);
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        struct named_match *nm = &(*arr)[*count];
        size_t mark = cfg_path_key(ctx, k->text ? k->text : "?");
        if (match_name(ctx, key, k) < 0 || value_match(ctx, v, &nm->value) < 0) {
            str_match_free(&nm->value);
            bad = -1;
        } else if (!(nm->name = strdup(k->text))) {
            str_match_free(&nm->value);
            cfg_oom(ctx, k);
            bad = -1;
        } else {
            nm->name_len = (uint32_t)k->len;
            if (strcmp(key->name, "header") == 0)
                for (char *p = nm->name; *p; p++)
                    *p = (char)tolower((unsigned char)*p);
            (*count)++;
        }
        cfg_path_pop(ctx, mark);
    }
    return bad;
}

static void release_named(const struct cfg_key *key, void *target)
{
    struct named_match **arr = (struct named_match **)((char *)target + key->off);
    uint32_t *count = (uint32_t *)((char *)target + key->off2);
    for (uint32_t i = 0; *arr && i < *count; i++) {
        free((*arr)[i].name);
        str_match_free(&(*arr)[i].value);
    }
    free(*arr);
    *arr = NULL;
    *count = 0;
}

/* client_cert: { subject: VALUE, fingerprint: VALUE } on the client's TLS certificate. */
static int parse_client_cert(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                             void *target)
{
    struct route_match *m = target;
    char b[64];
    if (n->kind != YN_MAP || n->n == 0) {
        cfg_error(ctx, n, "expected a mapping with subject and/or fingerprint, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    int bad = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        struct str_match *sm = scalar_is(k, "subject")       ? &m->cert_subject
                               : scalar_is(k, "fingerprint") ? &m->cert_fingerprint
                                                             : NULL;
        size_t mark = cfg_path_key(ctx, k->text ? k->text : "?");
        if (!sm) {
            cfg_error(ctx, k, "unknown key, expected one of: subject, fingerprint");
            bad = -1;
        } else if (value_match(ctx, v, sm) < 0) {
            str_match_free(sm);
            bad = -1;
        }
        cfg_path_pop(ctx, mark);
    }
    return bad;
}

static void release_client_cert(const struct cfg_key *key, void *target)
{
    struct route_match *m = target;
    str_match_free(&m->cert_subject);
    str_match_free(&m->cert_fingerprint);
}

/* A gRPC service or method name: a non-empty token without '/' or spaces. */
static bool grpc_name_ok(const struct ynode *v)
{
    return v->kind == YN_SCALAR && v->len > 0 && !strpbrk(v->text, "/ \t?#");
}

/* `grpc`: true (any gRPC call), or { service, method }: the request is a gRPC call and its
 * path is /service/method (or starts with /service/). The path is released by the path
 * keys' release. */
static int parse_grpc(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                      void *target)
{
    struct route_match *m = target;
    char b[64];
    if (scalar_is(n, "true")) {
        m->grpc = true;
        return 0;
    }
    const struct ynode *service = n->kind == YN_MAP ? ymap_get(n, "service") : NULL;
    const struct ynode *method = n->kind == YN_MAP ? ymap_get(n, "method") : NULL;
    if (n->kind != YN_MAP || !service || n->n != 1u + (method != NULL)) {
        cfg_error(ctx, n, "expected true or { service: package.Service, method: Name }, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    if (!grpc_name_ok(service) || (method && !grpc_name_ok(method))) {
        cfg_error(ctx, grpc_name_ok(service) ? method : service,
                  "expected a gRPC name (package.Service or Method, without '/' or spaces)");
        return -1;
    }
    if (m->path.kind != SM_ANY) {
        cfg_error(ctx, n, "give only one of `path`, `path_prefix`, `path_regex` and `grpc`");
        return -1;
    }
    size_t len = service->len + (method ? method->len : 0) + 3;
    if (!(m->path.text = malloc(len))) {
        cfg_oom(ctx, n);
        return -1;
    }
    m->path.len = (uint32_t)snprintf(m->path.text, len, "/%s/%s", service->text,
                                     method ? method->text : "");
    m->path.kind = method ? SM_EXACT : SM_PREFIX;
    m->grpc = true;
    return 0;
}

#define VALUE_FORMS                                                                                \
    "`\"text\"` (exact), `{ prefix: text }`, `{ regex: pattern }` or `{ present: true }`"

static const struct cfg_key match_keys[] = {
    {"country", CT_CUSTOM, .parse = cfg_parse_countries,
     .off = offsetof(struct route_match, geo.countries), .type_doc = "country code or list",
     .def_doc = "any",
     .help = "The client is located in one of these countries (ISO 3166 codes such as `FR`; "
             "needs `geo.database`; an unknown location matches no list)."},
    {"continent", CT_CUSTOM, .parse = cfg_parse_continents,
     .off = offsetof(struct route_match, geo.continents), .type_doc = "continent code or list",
     .def_doc = "any",
     .help = "The client is located on one of these continents: AF, AN, AS, EU, NA, OC, SA "
             "(needs `geo.database`)."},
    {"host", CT_CUSTOM, .parse = parse_hosts, .release = release_hosts,
     .type_doc = "host name or list", .def_doc = "any",
     .help = "The request's host (Host or the absolute URL's), compared without its port, "
             "case-insensitively, ignoring a trailing dot: `api.example.com`, or "
             "`*.example.com` for any name under example.com (not example.com itself). A list "
             "matches any of its names."},
    {"path", CT_CUSTOM, .parse = parse_path, .release = release_path, .type_doc = "path",
     .def_doc = "any", .help = "The path (without query) equals this."},
    {"path_prefix", CT_CUSTOM, .parse = parse_path, .release = release_path, .type_doc = "path",
     .def_doc = "any",
     .help = "The path starts with this (`/v1/` takes /v1/users, not /v1). At most one of "
             "`path`, `path_prefix`, `path_regex`."},
    {"path_regex", CT_CUSTOM, .parse = parse_path, .release = release_path,
     .type_doc = "PCRE2 regex", .def_doc = "any",
     .help = "The path matches this regex (PCRE2, searched anywhere unless anchored with `^` "
             "and `$`)."},
    {"grpc", CT_CUSTOM, .parse = parse_grpc, .type_doc = "true or { service, method }",
     .def_doc = "any",
     .help = "The request is a gRPC call (content type application/grpc...); with `service` "
             "(`package.Service`) its path is under /package.Service/, with `method` too it is "
             "/package.Service/Method. Not together with the `path` keys."},
    {"method", CT_CUSTOM, .parse = parse_methods, .release = release_methods,
     .type_doc = "method or list", .def_doc = "any",
     .help = "The request's method is one of these (case-sensitive: `GET`, `POST`...)."},
    {"header", CT_CUSTOM, .parse = parse_named, .release = release_named,
     .off = offsetof(struct route_match, headers), .off2 = offsetof(struct route_match, nheaders),
     .type_doc = "mapping of names to values", .def_doc = "none",
     .help = "Header fields (names case-insensitive), each: " VALUE_FORMS
             ". A field present several times matches when any of its values does."},
    {"cookie", CT_CUSTOM, .parse = parse_named, .release = release_named,
     .off = offsetof(struct route_match, cookies), .off2 = offsetof(struct route_match, ncookies),
     .type_doc = "mapping of names to values", .def_doc = "none",
     .help = "Cookies (names case-sensitive), each: " VALUE_FORMS "."},
    {"query", CT_CUSTOM, .parse = parse_named, .release = release_named,
     .off = offsetof(struct route_match, queries), .off2 = offsetof(struct route_match, nqueries),
     .type_doc = "mapping of names to values", .def_doc = "none",
     .help = "Query parameters (names case-sensitive, values as sent, not percent-decoded), "
             "each: " VALUE_FORMS "."},
    {"client_cert", CT_CUSTOM, .parse = parse_client_cert, .release = release_client_cert,
     .type_doc = "{ subject, fingerprint }", .def_doc = "none",
     .help = "The client's verified TLS certificate (listeners with `tls.client_auth`): "
             "`subject` in RFC 2253 form (`CN=alice,O=Example`) and `fingerprint` (SHA-256 "
             "of the certificate, 64 lowercase hex digits), each: " VALUE_FORMS
             ". A client without a verified certificate matches neither."},
};

static const char *const tcp_match_keys[] = {"sni", NULL};

static const struct cfg_section match_section =
    SECTION("listeners[].routes[].match (mode http)",
            "What an HTTP route matches: every condition given must hold.", match_keys,
            .other_keys = tcp_match_keys,
            .other_msg = "applies to `mode: tcp` listeners (TLS passthrough) only");

/* ---- split, retry ------------------------------------------------------------------------ */

static int parse_target_backend(struct cfg_ctx *ctx, const struct cfg_key *key,
                                const struct ynode *n, void *target)
{
    return cfg_backend_ref(ctx, n, (struct backend **)((char *)target + key->off));
}

static const struct cfg_key split_keys[] = {
    {"backend", CT_CUSTOM, CK_REQUIRED, .parse = parse_target_backend,
     .off = offsetof(struct split_target, backend), .type_doc = "backend name",
     .help = "A backend taking a share of the route's requests."},
    {"weight", CT_U32, CK_REQUIRED, .min = 0, .max = 100,
     .off = offsetof(struct split_target, weight),
     .help = "Its share, relative to the others (90 and 10: nine requests in ten); 0 takes "
             "none."},
};

static const struct cfg_section split_section =
    SECTION("listeners[].routes[].split[]",
            "One backend of a weighted split (blue/green, canary). Each request picks one at "
            "random by weight.",
            split_keys, .size = sizeof(struct split_target));

static int parse_retry_on(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                          void *target)
{
    static const char *const names[] = {"reset", "502", "503", "504"};
    struct retry_conf *r = target;
    char b[64];
    if ((n->kind != YN_SEQ && n->kind != YN_SCALAR) || items(n) == 0) {
        cfg_error(ctx, n, "expected a list of reset, 502, 503, 504, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    r->on = 0;
    int bad = 0;
    for (size_t i = 0; i < items(n); i++) {
        const struct ynode *it = item(n, i);
        size_t mark = n->kind == YN_SEQ ? cfg_path_index(ctx, i) : ctx->pathlen;
        unsigned j = 0;
        while (j < ARRAY_SIZE(names) && !scalar_is(it, names[j]))
            j++;
        if (j < ARRAY_SIZE(names)) {
            r->on |= 1u << j; /* RETRY_ON_RESET, _502, _503, _504 in this order */
        } else {
            const char *hint =
                it->kind == YN_SCALAR ? cfg_suggest(it->text, names, ARRAY_SIZE(names)) : NULL;
            cfg_error(ctx, it, "unknown retry condition %s, expected reset, 502, 503 or 504%s%s%s",
                      cfg_describe(it, b, sizeof(b)), hint ? " (did you mean \"" : "",
                      hint ? hint : "", hint ? "\"?)" : "");
            bad = -1;
        }
        cfg_path_pop(ctx, mark);
    }
    return bad;
}

_Static_assert(RETRY_ON_RESET == 1 && RETRY_ON_502 == 2 && RETRY_ON_503 == 4 && RETRY_ON_504 == 8,
               "parse_retry_on maps names to bits in order");

static const struct cfg_key retry_keys[] = {
    {"tries", CT_U32, 0, "3", .min = 1, .max = 10, .off = offsetof(struct retry_conf, tries),
     .help = "Attempts in all, each on another server when there is one (1 = no retry)."},
    {"on", CT_CUSTOM, 0, "reset", .parse = parse_retry_on,
     .type_doc = "list of `reset`, `502`, `503`, `504`",
     .help = "When an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) is tried "
             "again: `reset`, the connection failed before any response byte; `502`, `503`, "
             "`504`, the server answered that (`504` also: `per_try_timeout` expired). A "
             "failed connect is always retried, for any method."},
    {"per_try_timeout", CT_DURATION, 0, "0", .min = 0, .max = CFG_MAX_DURATION,
     .off = offsetof(struct retry_conf, per_try_timeout_ms),
     .help = "Time each attempt has for the response to start; `0`: the listener's "
             "`response_timeout`."},
};

static const struct cfg_section retry_section =
    SECTION("listeners[].routes[].retry", "Retries of requests proxied by the route.", retry_keys);

/* ---- listeners[].routes[] (mode http) ------------------------------------------------------- */

static int parse_route_backend(struct cfg_ctx *ctx, const struct cfg_key *key,
                               const struct ynode *n, void *target)
{
    return cfg_backend_ref(ctx, n, &((struct http_route *)target)->backend);
}

/* Every split item was written with weight 0 (not: some weight failed to parse). */
static bool all_weights_zero(const struct ynode *seq)
{
    for (size_t i = 0; seq && seq->kind == YN_SEQ && i < seq->n; i++) {
        const struct ynode *w =
            seq->kids[i]->kind == YN_MAP ? ymap_get(seq->kids[i], "weight") : NULL;
        if (!w || !scalar_is(w, "0"))
            return false;
    }
    return true;
}

/* Exactly one action: backend, split, or an answering filter (redirect or respond). */
static void route_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    struct http_route *r = target;
    static const char *const acts[] = {"backend", "split", "redirect", "respond"};
    const struct ynode *first = NULL;
    const char *first_name = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(acts); i++) {
        const struct ynode *k = ymap_key(map, acts[i]);
        if (!k)
            continue;
        if (!first) {
            first = k;
            first_name = acts[i];
            continue;
        }
        cfg_error(ctx, k,
                  "give only one of `backend`, `split`, `redirect` and `respond` "
                  "(`%s` is given too)",
                  first_name);
    }
    if (!first) {
        cfg_error(ctx, map,
                  "missing what the route does: `backend`, `split`, `redirect` or "
                  "`respond`");
        return;
    }
    r->action = first_name[0] == 'b'   ? ROUTE_BACKEND
                : first_name[0] == 's' ? ROUTE_SPLIT
                                       : ROUTE_ANSWER;
    for (uint32_t i = 0; r->split && i < r->nsplit; i++)
        r->split_total += r->split[i].weight;
    if (r->action == ROUTE_SPLIT && r->nsplit && r->split_total == 0 &&
        all_weights_zero(ymap_get(map, "split")))
        cfg_error(ctx, ymap_get(map, "split"), "every weight is 0: at least one must be above 0");
    if (r->action == ROUTE_ANSWER && ymap_key(map, "retry"))
        cfg_error(ctx, ymap_key(map, "retry"),
                  "applies to routes that proxy (`backend` or "
                  "`split`), not to `%s`",
                  first_name);
}

static void route_release(void *target)
{
    cfg_free_route_filters(target);
}

static const struct cfg_key route_keys[] = {
    {"name", CT_NAME, CK_UNIQUE, .def_doc = "`route#N` (N from 1)",
     .off = offsetof(struct http_route, name),
     .help = "Name in logs and metrics; unique within the listener."},
    {"match", CT_SECTION, .sub = &match_section, .off = offsetof(struct http_route, match),
     .def_doc = "every request", .help = "The condition; a route without it takes every request."},
    {"backend", CT_CUSTOM, 0, .parse = parse_route_backend, .type_doc = "backend name",
     .def_doc = "none", .help = "Proxy matching requests to this backend."},
    {"split", CT_LIST, 0, .sub = &split_section, .min = 1, .def_doc = "none",
     .off = offsetof(struct http_route, split), .off2 = offsetof(struct http_route, nsplit),
     .help = "Instead of `backend`: share the requests between backends by weight."},
    {"request_limits", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_request_limits_section,
     .type_doc = "mapping", .def_doc = "the listener's",
     .help = "The route's own max body and max header fields (413, 431)."},
    {"ip_access", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_ip_access_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Client address allow/deny lists (403 otherwise)."},
    {"bot", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_bot_section, .type_doc = "mapping",
     .def_doc = "none", .help = "User-agent rules and the cookie challenge."},
    {"rate_limit", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_rate_limit_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Limit the rate of requests per client, API key...; after the cheap refusals, before CORS and auth."},
    {"cors", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_cors_section, .type_doc = "mapping",
     .def_doc = "none", .help = "Answer CORS preflights; allow origins on responses."},
    {"basic_auth", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_basic_auth_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Require HTTP Basic credentials from an htpasswd file (401 otherwise)."},
    {"jwt", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_jwt_section, .type_doc = "mapping",
     .def_doc = "none", .help = "Require a valid JWT (401 otherwise)."},
    {"ext_authz", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_ext_authz_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Ask an auth service whether the request may go on."},
    {"waf", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_waf_section, .type_doc = "mapping",
     .def_doc = "none", .help = "Inspect requests with ModSecurity and the OWASP CRS."},
    {"grpc_web", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_grpc_web_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Translate gRPC-Web (browsers) to gRPC; first on the request, last on the "
             "response."},
    {"path_rewrite", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_path_rewrite_section,
     .type_doc = "mapping", .def_doc = "none", .help = "Rewrite the path sent to the server."},
    {"request_headers", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_request_headers_section,
     .type_doc = "mapping", .def_doc = "none", .help = "Change the request's header fields."},
    {"response_headers", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_response_headers_section,
     .type_doc = "mapping", .def_doc = "none", .help = "Change the response's header fields."},
    {"redirect", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_redirect_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Instead of a backend: answer with a redirect."},
    {"respond", CT_CUSTOM, .parse = cfg_parse_filter, .sub = &cfg_respond_section,
     .type_doc = "mapping", .def_doc = "none",
     .help = "Instead of a backend: answer with a fixed response."},
    {"error_pages", CT_SECTION, .sub = &cfg_error_pages_section,
     .off = offsetof(struct http_route, error_pages),
     .help = "Pages for Strata's own error answers on this route (else the listener's)."},
    {"retry", CT_SECTION, .sub = &retry_section, .off = offsetof(struct http_route, retry),
     .help = "Retries (on by default for connection resets of idempotent requests)."},
};

const struct cfg_section cfg_http_route_section =
    SECTION("listeners[].routes[] (mode http)",
            "An HTTP route: requests are matched against the routes in order and the first "
            "that matches takes the request (none: 404). It proxies to `backend`, or to one "
            "of `split`, or answers itself with `redirect` or `respond`; on the way its "
            "filters run in this order: `request_limits`, `ip_access`, `bot`, `rate_limit`, `cors`, "
            "`basic_auth`, `jwt`, `ext_authz`, `waf`, `grpc_web`, `path_rewrite`, `request_headers`, "
            "then, on the response, `response_headers`, `grpc_web`, `waf`, `cors`, `rate_limit`. "
            "The same access filters on the listener's `http` run first, before routing.",
            route_keys, .size = sizeof(struct http_route), .finish = route_finish,
            .release = route_release);

void cfg_http_routes_named(struct cfg_ctx *ctx, struct listener_conf *l)
{
    for (uint32_t i = 0; l->http.routes && i < l->http.nroutes; i++) {
        struct http_route *r = &l->http.routes[i];
        char name[32];
        snprintf(name, sizeof(name), "route#%u", i + 1);
        if (!r->name && !(r->name = strdup(name)))
            cfg_oom(ctx, NULL);
    }
}

/* ---- after references: default routes and listener filters ----------------------------- */

/* Appends the route standing for the listener's `backend`: every request, last. */
static int add_default_route(struct cfg_ctx *ctx, struct listener_conf *l)
{
    struct http_listener_conf *h = &l->http;
    struct http_route *r = realloc(h->routes, (h->nroutes + 1) * sizeof(*r));
    if (!r)
        return -1;
    h->routes = r;
    r = &h->routes[h->nroutes++];
    memset(r, 0, sizeof(*r));
    cfg_init_target(ctx, &cfg_http_route_section, r);
    r->action = ROUTE_BACKEND;
    r->backend = l->backend;
    return (r->name = strdup("default")) ? 0 : -1;
}

/* forwarded, request_id, traceparent (each when on), then the access filters, in that
 * order. */
static int build_listener_filters(struct listener_conf *l)
{
    struct http_listener_conf *h = &l->http;
    struct filter_conf f[3 + h->naccess_filters];
    uint32_t n = 0;
    h->forwarded.trusted = &h->trusted_proxies;
    if (h->forwarded.x_forwarded || h->forwarded.forwarded)
        f[n++] = (struct filter_conf){&filter_forwarded, &h->forwarded};
    if (h->request_id.header)
        f[n++] = (struct filter_conf){&filter_request_id, &h->request_id};
    if (h->traceparent.enabled)
        f[n++] = (struct filter_conf){&filter_traceparent, &h->traceparent};
    for (uint32_t i = 0; i < h->naccess_filters; i++)
        f[n++] = h->access_filters[i];
    if (!n)
        return 0;
    if (!(h->filters = malloc(n * sizeof(*f))))
        return -1;
    memcpy(h->filters, f, n * sizeof(*f));
    h->nfilters = n;
    return 0;
}

void cfg_http_finish(struct cfg_ctx *ctx)
{
    struct cfg_root *root = ctx->root;
    for (uint32_t i = 0; root->listeners && i < root->nlisteners; i++) {
        struct listener_conf *l = &root->listeners[i];
        if (l->mode != MODE_HTTP)
            continue;
        if ((l->backend && add_default_route(ctx, l) < 0) || build_listener_filters(l) < 0)
            cfg_oom(ctx, NULL);
    }
}

/* ---- backends: hash, sticky, keepalive ------------------------------------------------------- */

int cfg_parse_hash(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                   void *target)
{
    struct backend *b = target;
    char bd[64];
    if (b->balance != BAL_SOURCE_HASH && b->balance != BAL_MAGLEV) {
        cfg_error(ctx, n, "is used by `balance: source_hash` or `balance: maglev` only");
        return -1;
    }
    if (scalar_is(n, "path") || scalar_is(n, "source")) {
        b->hash_on = n->text[0] == 'p' ? HASH_PATH : HASH_SOURCE;
        return 0;
    }
    const struct ynode *k = n->kind == YN_MAP && n->n == 1 ? n->kids[0] : NULL;
    if (!k || !(scalar_is(k, "header") || scalar_is(k, "cookie"))) {
        cfg_error(ctx, n,
                  "expected `path`, `source`, `{ header: NAME }` or `{ cookie: NAME }`, "
                  "got %s",
                  cfg_describe(n, bd, sizeof(bd)));
        return -1;
    }
    const struct ynode *v = n->kids[1];
    bool header = scalar_is(k, "header");
    size_t mark = cfg_path_key(ctx, k->text);
    int rc = header ? cfg_check_field_name(ctx, v, "header name") : 0;
    if (!header && (v->kind != YN_SCALAR || !http_token_valid(v->text, v->len))) {
        cfg_error(ctx, v, "expected a cookie name, got %s", cfg_describe(v, bd, sizeof(bd)));
        rc = -1;
    }
    cfg_path_pop(ctx, mark);
    if (rc < 0)
        return -1;
    free(b->hash_name);
    if (!(b->hash_name = strdup(v->text))) {
        cfg_oom(ctx, v);
        return -1;
    }
    b->hash_on = header ? HASH_HEADER : HASH_COOKIE;
    return 0;
}

void cfg_release_hash(const struct cfg_key *key, void *target)
{
    struct backend *b = target;
    free(b->hash_name);
    b->hash_name = NULL;
}

#define MAX_AGE_MAX_S (400 * 24 * 3600) /* browsers cap cookies at 400 days */

static int parse_max_age(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                         void *target)
{
    uint64_t ms;
    char b[64];
    if (n->kind != YN_SCALAR || parse_duration_ms(n->text, &ms) < 0 || ms / 1000 > MAX_AGE_MAX_S) {
        cfg_error(ctx, n, "expected a duration from 0 to 9600h (400 days), got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    ((struct sticky_conf *)target)->max_age_s = (uint32_t)(ms / 1000);
    return 0;
}

static void sticky_finish(struct cfg_ctx *ctx, const struct ynode *map, void *target)
{
    const struct sticky_conf *s = target;
    const struct ynode *c = ymap_get(map, "cookie");
    if (c && s->cookie && !http_token_valid(s->cookie, strlen(s->cookie))) {
        size_t mark = cfg_path_key(ctx, "cookie");
        cfg_error(ctx, c, "expected a cookie name (a token), got \"%s\"", s->cookie);
        cfg_path_pop(ctx, mark);
    }
}

static const struct cfg_key sticky_keys[] = {
    {"cookie", CT_STRING, 0, "strata_server", .off = offsetof(struct sticky_conf, cookie),
     .help = "Name of the cookie naming the server."},
    {"max_age", CT_CUSTOM, 0, "0", .parse = parse_max_age, .type_doc = "duration 0..9600h",
     .help = "Lifetime of the cookie; `0`: until the browser closes (no Max-Age)."},
    {"secure", CT_BOOL, 0, "false", .off = offsetof(struct sticky_conf, secure),
     .help = "Mark the cookie `Secure` (sent over HTTPS only)."},
    {"http_only", CT_BOOL, 0, "true", .off = offsetof(struct sticky_conf, http_only),
     .help = "Mark the cookie `HttpOnly` (hidden from scripts)."},
};

const struct cfg_section cfg_sticky_section =
    SECTION("backends.<name>.sticky",
            "Cookie-based sticky sessions for HTTP listeners (`sticky: true` takes the "
            "defaults). A response from a server that the request's cookie does not name "
            "sets the cookie to an opaque id of that server (a hash of the backend and server "
            "names: stable across restarts and Strata instances); a request carrying it goes "
            "to that server while it is up and below its limits, else the `balance` method "
            "picks another (and the cookie is updated). Ignored by `mode: tcp`/`udp` "
            "listeners.",
            sticky_keys, .finish = sticky_finish);

int cfg_parse_sticky(struct cfg_ctx *ctx, const struct cfg_key *key, const struct ynode *n,
                     void *target)
{
    struct sticky_conf *s = &((struct backend *)target)->sticky;
    char b[64];
    if (n->kind == YN_MAP) {
        unsigned before = ctx->nerrs + ctx->dropped;
        cfg_walk_section(ctx, &cfg_sticky_section, n, s);
        s->enabled = true;
        return ctx->nerrs + ctx->dropped == before ? 0 : -1;
    }
    bool on = scalar_is(n, "true") || scalar_is(n, "yes") || scalar_is(n, "on");
    if (!on && !scalar_is(n, "false") && !scalar_is(n, "no") && !scalar_is(n, "off")) {
        cfg_error(ctx, n, "expected true, false or a mapping, got %s",
                  cfg_describe(n, b, sizeof(b)));
        return -1;
    }
    s->enabled = on;
    if (on && !s->cookie) {
        cfg_init_target(ctx, &cfg_sticky_section, s);
        s->enabled = true;
    }
    return 0;
}

void cfg_release_sticky(const struct cfg_key *key, void *target)
{
    struct sticky_conf *s = &((struct backend *)target)->sticky;
    cfg_free_target(&cfg_sticky_section, s);
    s->cookie = NULL;
}

static const struct cfg_key keepalive_keys[] = {
    {"max_idle", CT_U32, 0, "1000", .min = 0, .max = 100000,
     .off = offsetof(struct backend, pool_max_idle),
     .help = "Idle connections kept open to each server, per worker thread, for the next "
             "requests (never more than the server's `max_connections` when it has one); 0 = "
             "a new connection for every request. An idle connection exists only because that "
             "many requests were in flight at once, and closes after `idle_timeout`: the "
             "default keeps every one up to 1000 concurrent requests per worker and server, as "
             "HAProxy keeps them all, so a burst of concurrency does not turn into a new "
             "connection every few requests (a bound of 32 did at 50 concurrent requests)."},
    {"idle_timeout", CT_DURATION, 0, "30s", .min = 1, .max = CFG_MS_DAY,
     .off = offsetof(struct backend, pool_idle_timeout_ms),
     .help = "An idle server connection is closed after this (keep it below the servers' "
             "own keep-alive timeout)."},
};

static const struct cfg_key h2_upstream_keys[] = {
    {"max_streams", CT_U32, 0, "100", .min = 1, .max = 1000,
     .off = offsetof(struct backend, h2_max_streams),
     .help = "Requests one connection carries at once, at most (fewer when the server's "
             "SETTINGS_MAX_CONCURRENT_STREAMS says so); more connections open when needed."},
    {"window", CT_SIZE, 0, "256k", .min = 16384, .max = 16 << 20,
     .off = offsetof(struct backend, h2_window),
     .help = "A stream's receive window: the response bytes Strata holds for a client that "
             "reads slower than the server sends (flow control holds the server back)."},
};

const struct cfg_section cfg_h2_upstream_section =
    SECTION("backends.<name>.h2",
            "HTTP/2 to the servers, for `protocol: h2` and `h2c` (used by HTTP listeners).",
            h2_upstream_keys);

const struct cfg_section cfg_keepalive_section =
    SECTION("backends.<name>.keepalive",
            "Keep-alive connections to the servers, used by HTTP listeners (ignored by "
            "`mode: tcp`/`udp`).",
            keepalive_keys);
