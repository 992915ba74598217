/* admin_api.c — the runtime API: JSON views of the configuration in force and its runtime
 * state, and the writes of lb/server_admin.h. See admin_api.h for the paths. Runs on the
 * control thread, like every writer of server runtime state.
 */
#include "admin_api.h"
#include "admin_int.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/fmt.h"
#include "core/log.h"
#include "http/filter.h"
#include "http/msg.h"
#include "http/route_describe.h"
#include "lb/lb.h"
#include "lb/server_admin.h"
#include "net/addr.h"

#define API_PREFIX "/api/v1/"
#define API_MAX_SEGS 6
#define API_SEG_MAX 128

/* The request path split at '/' after the prefix: "backends", "B", "servers", "S"... */
struct api_path {
    char seg[API_MAX_SEGS][API_SEG_MAX];
    unsigned n;
};

static const char *const api_roots[] = {"config", "listeners", "routes", "servers", "backends"};

/* Copies p[0..len) into out (API_SEG_MAX bytes) with %XX decoded, so that a server named
 * in the file with any character can be reached; false on a bad escape or a NUL. */
static bool decode_segment(const char *p, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)p[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_digit(p[i + 1]) : -1;
            int lo = hi >= 0 ? hex_digit(p[i + 2]) : -1;
            if (lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* Splits path after API_PREFIX; false when it has too many or too long segments. */
static bool split_path(struct hstr path, struct api_path *ap)
{
    size_t plen = sizeof(API_PREFIX) - 1;
    ap->n = 0;
    if (path.len < plen || memcmp(path.p, API_PREFIX, plen) != 0)
        return false;
    const char *p = path.p + plen, *end = path.p + path.len;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t len = (size_t)((slash ? slash : end) - p);
        if (len == 0 || len >= API_SEG_MAX || ap->n == API_MAX_SEGS)
            return len == 0 && !slash ? true : false;
        if (!decode_segment(p, len, ap->seg[ap->n++]))
            return false;
        p += len + (slash ? 1 : 0);
        if (!slash)
            break;
    }
    return ap->n > 0;
}

bool admin_api_serves(struct hstr path)
{
    struct api_path ap;
    if (!split_path(path, &ap))
        return false;
    for (size_t i = 0; i < sizeof(api_roots) / sizeof(api_roots[0]); i++)
        if (strcmp(ap.seg[0], api_roots[i]) == 0)
            return true;
    return false;
}

/* ---- answers ---- */

static void reply_json(const struct admin_req *rq, int status, json_t *doc, const char *extra)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    bool head = rq->m->method == HTTP_M_HEAD;
    json_decref(doc);
    if (!text) {
        static const char oom[] = "{\"error\": \"out of memory\"}\n";
        admin_reply(rq->conn, 500, "application/json", NULL, oom, sizeof(oom) - 1, head);
        return;
    }
    admin_reply(rq->conn, status, "application/json", extra, text, strlen(text), head);
    free(text);
}

static void reply_error(const struct admin_req *rq, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(const struct admin_req *rq, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *extra = NULL;
    if (status == 401)
        extra = "WWW-Authenticate: Bearer realm=\"strata\"\r\n";
    reply_json(rq, status, json_pack("{s:s}", "error", msg), extra);
}

static void reply_method(const struct admin_req *rq, const char *allow)
{
    char extra[96];
    snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
    reply_json(rq, 405, json_pack("{s:s}", "error", "method not allowed"), extra);
}

/* ---- who is asking ---- */

bool admin_authorized(const struct admin_req *rq)
{
    const char *token = rq->cfg->admin_token;
    if (!token)
        return true;
    struct hstr v = http_hdr_get(rq->m, hstr_c("authorization"));
    static const char bearer[] = "Bearer ";
    size_t bl = sizeof(bearer) - 1, tl = strlen(token);
    if (!v.p || v.len < bl || strncasecmp(v.p, bearer, bl) != 0) {
        reply_error(rq, 401, "this admin listener needs Authorization: Bearer TOKEN");
        return false;
    }
    if (v.len - bl != tl || CRYPTO_memcmp(v.p + bl, token, tl) != 0) {
        char peer[64];
        log_warn("admin: %.*s %.*s from %s: wrong token", (int)rq->m->method_name.len,
                 rq->m->method_name.p, (int)rq->m->path.len, rq->m->path.p,
                 addr_format(rq->peer, peer, sizeof(peer)));
        reply_error(rq, 403, "wrong token");
        return false;
    }
    return true;
}

/* "127.0.0.1:40000" or "127.0.0.1:40000 (token ops)": who made a write. */
static void who_text(const struct admin_req *rq, char *out, size_t len)
{
    char peer[64];
    addr_format(rq->peer, peer, sizeof(peer));
    if (rq->cfg->admin_token)
        snprintf(out, len, "%s (token %s)", peer,
                 rq->cfg->admin_token_name ? rq->cfg->admin_token_name : "token");
    else
        snprintf(out, len, "%s", peer);
}

/* ---- views ---- */

static json_t *server_json(const struct server *s, bool history)
{
    enum server_admin a = server_admin_get(s);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:I, s:I, s:b}", "name", s->name,
                  "backend", s->backend->name, "address", s->addr_text, "state",
                  server_admin_name(a), "health", atomic_load(&s->st.live->up) ? "up" : "down", "weight",
                  (json_int_t)lb_weight(s), "configured_weight", (json_int_t)s->weight, "backup",
                  s->backup, "active", (json_int_t)atomic_load(&s->st.live->active), "max_connections",
                  (json_int_t)s->max_conns, "runtime", s->index >= s->backend->nconfigured);
    if (!o || !history)
        return o;
    struct server_event_copy ev[SERVER_HISTORY_LEN];
    unsigned n = server_history_read(s, ev);
    json_t *arr = json_array();
    for (unsigned i = 0; arr && i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:I, s:s}", "at_ms", (json_int_t)ev[i].at_ms, "event", ev[i].reason));
    json_object_set_new(o, "history", arr ? arr : json_null());
    return o;
}

/* Servers removed at run time are listed too (state "removed"): they may still hold
 * connections. */
static json_t *servers_json(const struct backend *b, bool history)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; arr && i < b->nservers; i++) {
        const struct server *s = &b->servers[i];
        json_array_append_new(arr, server_json(s, history));
    }
    return arr;
}

static const char *balance_name(const struct backend *b)
{
    return b->lb_ops ? b->lb_ops->name : "?";
}

static json_t *backend_json(const struct backend *b)
{
    return json_pack("{s:s, s:s, s:{s:I, s:I}, s:o}", "name", b->name, "balance", balance_name(b),
                     "runtime_servers", "capacity", (json_int_t)b->runtime_servers, "used",
                     (json_int_t)(b->nservers - b->nconfigured), "servers", servers_json(b, true));
}

static json_t *config_json(const struct config *c)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:{s:s?, s:b}}", "file", c->file, "generation",
                     (json_int_t)c->generation, "workers", (json_int_t)c->workers, "listeners",
                     (json_int_t)c->nlisteners, "backends", (json_int_t)c->nbackends, "admin",
                     "listen", c->admin_text, "token", c->admin_token != NULL);
}

static json_t *listener_json(const struct listener_conf *l)
{
    json_t *addrs = json_array();
    for (uint32_t i = 0; addrs && i < l->naddrs; i++)
        json_array_append_new(addrs, json_string(l->addr_texts[i]));
    return json_pack("{s:s, s:s, s:o, s:s?, s:I, s:I}", "name", l->name, "mode",
                     config_mode_name(l->mode), "listen", addrs, "backend",
                     l->backend ? l->backend->name : NULL, "routes",
                     (json_int_t)(l->mode == MODE_HTTP ? l->http.nroutes : l->nroutes), "active",
                     (json_int_t)atomic_load(&l->st.active));
}

static json_t *route_json(const struct listener_conf *l, uint32_t i)
{
    const struct http_route *r = &l->http.routes[i];
    struct strbuf sb;
    sb_init(&sb, 4096);
    route_match_describe(&r->match, &sb);
    json_t *filters = json_array();
    for (uint32_t f = 0; filters && f < r->nfilters; f++)
        json_array_append_new(filters, json_string(r->filters[f].ops->name));
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:o}", "listener", l->name, "index", (json_int_t)i,
                          "name", r->name, "match", sb.err ? "?" : sb_str(&sb), "filters", filters);
    sb_free(&sb);
    if (!o)
        return NULL;
    if (r->action == ROUTE_BACKEND) {
        json_object_set_new(o, "backend", json_string(r->backend->name));
    } else if (r->action == ROUTE_SPLIT) {
        json_t *split = json_array();
        for (uint32_t k = 0; split && k < r->nsplit; k++)
            json_array_append_new(split,
                                  json_pack("{s:s, s:I}", "backend", r->split[k].backend->name,
                                            "weight", (json_int_t)r->split[k].weight));
        json_object_set_new(o, "split", split);
    } else {
        json_object_set_new(o, "answer", json_true());
    }
    return o;
}

static json_t *list_json(const struct config *c, const char *what)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; arr && strcmp(what, "listeners") == 0 && i < c->nlisteners; i++)
        json_array_append_new(arr, listener_json(&c->listeners[i]));
    for (uint32_t i = 0; arr && strcmp(what, "routes") == 0 && i < c->nlisteners; i++)
        for (uint32_t k = 0; c->listeners[i].mode == MODE_HTTP && k < c->listeners[i].http.nroutes;
             k++)
            json_array_append_new(arr, route_json(&c->listeners[i], k));
    for (uint32_t i = 0; arr && strcmp(what, "backends") == 0 && i < c->nbackends; i++)
        json_array_append_new(arr, backend_json(&c->backends[i]));
    for (uint32_t i = 0; arr && strcmp(what, "servers") == 0 && i < c->nbackends; i++) {
        json_t *some = servers_json(&c->backends[i], false);
        if (some)
            json_array_extend(arr, some);
        json_decref(some);
    }
    return arr ? json_pack("{s:o}", what, arr) : NULL;
}

/* ---- writes ---- */

static void log_write(const struct admin_req *rq, const char *who, int status, const char *what)
{
    if (status < 400)
        log_info("admin: %.*s %.*s by %s: %s", (int)rq->m->method_name.len, rq->m->method_name.p,
                 (int)rq->m->path.len, rq->m->path.p, who, what);
    else
        log_warn("admin: %.*s %.*s by %s refused (%d): %s", (int)rq->m->method_name.len,
                 rq->m->method_name.p, (int)rq->m->path.len, rq->m->path.p, who, status, what);
}

void admin_log_write(const struct admin_req *rq, const char *what)
{
    char who[160];
    who_text(rq, who, sizeof(who));
    log_write(rq, who, 200, what);
}

static void write_done(const struct admin_req *rq, const char *who, int status,
                       const struct server *s, const char *what)
{
    log_write(rq, who, status, what);
    reply_json(rq, status, server_json(s, true), NULL);
}

static void write_refused(const struct admin_req *rq, const char *who, int status, const char *why)
{
    log_write(rq, who, status, why);
    reply_error(rq, status, "%s", why);
}

/* The body as a JSON object, or NULL after answering 400. */
static json_t *body_object(const struct admin_req *rq, const char *who)
{
    json_error_t err;
    char why[300];
    json_t *doc = NULL;
    if (rq->body_len && !(doc = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &err))) {
        snprintf(why, sizeof(why), "invalid JSON at line %d column %d: %s", err.line, err.column,
                 err.text);
        write_refused(rq, who, 400, why);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        write_refused(rq, who, 400, "expected a JSON object in the request body");
        return NULL;
    }
    return doc;
}

/* Fields of an add: {"address": "...", "name"?: "...", "weight"?: N, "backup"?: bool}. */
static int parse_spec(json_t *doc, struct server_spec *spec, const char **why)
{
    json_t *addr = json_object_get(doc, "address"), *name = json_object_get(doc, "name");
    json_t *weight = json_object_get(doc, "weight"), *backup = json_object_get(doc, "backup");
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "address") && strcmp(k, "name") && strcmp(k, "weight") &&
            strcmp(k, "backup")) {
            *why = "unknown field (expected address, name, weight, backup)";
            return -1;
        }
    }
    if (!json_is_string(addr)) {
        *why = "address: expected a string such as \"127.0.0.1:8080\"";
        return -1;
    }
    if (name && !json_is_string(name)) {
        *why = "name: expected a string";
        return -1;
    }
    if (weight && (!json_is_integer(weight) || json_integer_value(weight) < 1 ||
                   json_integer_value(weight) > 1000)) {
        *why = "weight must be an integer from 1 to 1000";
        return -1;
    }
    if (backup && !json_is_boolean(backup)) {
        *why = "backup: expected true or false";
        return -1;
    }
    spec->addr_text = json_string_value(addr);
    spec->name = name ? json_string_value(name) : NULL;
    spec->weight = weight ? (uint32_t)json_integer_value(weight) : 1;
    spec->backup = backup && json_is_true(backup);
    return 0;
}

static void add_server(const struct admin_req *rq, struct backend *b, const char *who)
{
    json_t *doc = body_object(rq, who);
    if (!doc)
        return;
    struct server_spec spec;
    const char *why = NULL;
    int status = 400;
    struct server *s = NULL;
    if (parse_spec(doc, &spec, &why) == 0)
        s = backend_server_add(b, &spec, who, &why, &status);
    if (s) {
        char what[160];
        snprintf(what, sizeof(what), "server %s/%s added at %s", b->name, s->name, s->addr_text);
        write_done(rq, who, 201, s, what);
    } else {
        write_refused(rq, who, status, why);
    }
    json_decref(doc);
}

static void set_weight(const struct admin_req *rq, struct server *s, const char *who)
{
    json_t *doc = body_object(rq, who);
    if (!doc)
        return;
    json_t *w = json_object_get(doc, "weight");
    const char *why = "weight must be an integer from 1 to 1000";
    int rc = -1;
    if (json_is_integer(w) && json_integer_value(w) >= 1 && json_integer_value(w) <= 1000)
        rc = server_set_weight(s, (uint32_t)json_integer_value(w), who, &why);
    json_decref(doc);
    if (rc < 0) {
        /* a valid number the balancer cannot use is a conflict, not a bad request */
        write_refused(rq, who, strncmp(why, "weight", 6) ? 409 : 400, why);
        return;
    }
    char what[160];
    snprintf(what, sizeof(what), "server %s/%s weight %u", s->backend->name, s->name, lb_weight(s));
    write_done(rq, who, 200, s, what);
}

static void set_state(const struct admin_req *rq, struct server *s, const char *verb,
                      const char *who)
{
    enum server_admin to = strcmp(verb, "drain") == 0    ? SRV_DRAIN
                           : strcmp(verb, "enable") == 0 ? SRV_READY
                                                         : SRV_MAINT;
    const char *why = NULL;
    if (server_set_admin(s, to, who, &why) < 0) {
        write_refused(rq, who, 409, why);
        return;
    }
    char what[160];
    snprintf(what, sizeof(what), "server %s/%s %s", s->backend->name, s->name,
             server_admin_name(to));
    write_done(rq, who, 200, s, what);
}

static void remove_server(const struct admin_req *rq, struct server *s, const char *who)
{
    const char *why = NULL;
    if (backend_server_remove(s, who, &why) < 0) {
        write_refused(rq, who, 409, why);
        return;
    }
    char what[160];
    snprintf(what, sizeof(what), "server %s/%s removed", s->backend->name, s->name);
    write_done(rq, who, 200, s, what);
}

/* ---- dispatch ---- */

static bool is_get(const struct admin_req *rq)
{
    return rq->m->method == HTTP_M_GET || rq->m->method == HTTP_M_HEAD;
}

/* backends/B/servers/S[/VERB] */
static void serve_server(const struct admin_req *rq, struct backend *b, const struct api_path *ap)
{
    enum http_method m = rq->m->method;
    struct server *s = backend_server_find(b, ap->seg[3]);
    char who[160];
    who_text(rq, who, sizeof(who));
    if (!s) {
        reply_error(rq, 404, "backend %s has no server %s", b->name, ap->seg[3]);
        return;
    }
    if (ap->n == 4) {
        if (is_get(rq))
            reply_json(rq, 200, server_json(s, true), NULL);
        else if (m == HTTP_M_DELETE)
            remove_server(rq, s, who);
        else
            reply_method(rq, "GET, HEAD, DELETE");
        return;
    }
    const char *verb = ap->seg[4];
    bool state = !strcmp(verb, "drain") || !strcmp(verb, "enable") || !strcmp(verb, "disable");
    if (ap->n != 5 || (!state && strcmp(verb, "weight") != 0)) {
        reply_error(rq, 404, "unknown action (expected drain, enable, disable or weight)");
        return;
    }
    if (m != HTTP_M_POST && m != HTTP_M_PUT)
        reply_method(rq, "POST, PUT");
    else if (state)
        set_state(rq, s, verb, who);
    else
        set_weight(rq, s, who);
}

static void serve_backends(const struct admin_req *rq, const struct api_path *ap)
{
    struct backend *b = config_backend(rq->cfg, ap->seg[1]);
    if (!b) {
        reply_error(rq, 404, "no backend %s", ap->seg[1]);
        return;
    }
    if (ap->n == 2) {
        if (is_get(rq))
            reply_json(rq, 200, backend_json(b), NULL);
        else
            reply_method(rq, "GET, HEAD");
        return;
    }
    if (strcmp(ap->seg[2], "servers") != 0) {
        reply_error(rq, 404, "not found");
    } else if (ap->n == 3) {
        char who[160];
        who_text(rq, who, sizeof(who));
        if (is_get(rq))
            reply_json(rq, 200, json_pack("{s:o}", "servers", servers_json(b, true)), NULL);
        else if (rq->m->method == HTTP_M_POST)
            add_server(rq, b, who);
        else
            reply_method(rq, "GET, HEAD, POST");
    } else {
        serve_server(rq, b, ap);
    }
}

void admin_api_serve(const struct admin_req *rq)
{
    struct api_path ap;
    if (!split_path(rq->m->path, &ap)) {
        reply_error(rq, 404, "not found");
        return;
    }
    if (strcmp(ap.seg[0], "backends") == 0 && ap.n >= 2) {
        serve_backends(rq, &ap);
        return;
    }
    if (ap.n != 1) {
        reply_error(rq, 404, "not found");
        return;
    }
    if (!is_get(rq)) {
        reply_method(rq, "GET, HEAD");
        return;
    }
    if (strcmp(ap.seg[0], "config") == 0)
        reply_json(rq, 200, config_json(rq->cfg), NULL);
    else
        reply_json(rq, 200, list_json(rq->cfg, ap.seg[0]), NULL);
}
