/* explain.c — a request's way through the configuration, for people and for `expect:`;
 * see explain.h. Read-only over the configuration; nothing is sent anywhere.
 */
#include "http/explain.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "http/filter.h"
#include "http/h1.h"
#include "http/msg.h"
#include "http/route_describe.h"
#include "http/router.h"
#include "lb/lb.h"

#define EXPLAIN_MAX_REQUEST 65536

/* ---- the request ---- */

struct url_parts {
    bool https, absolute;
    char authority[256];
    uint32_t port; /* explicit, or the scheme's default; 0 for a path */
};

static int split_url(const char *url, struct url_parts *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *rest = url;
    if (strncmp(url, "https://", 8) == 0)
        u->https = true, u->absolute = true, rest = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        u->absolute = true, rest = url + 7;
    else if (url[0] != '/') {
        snprintf(err, errlen,
                 "expected a URL (http://HOST/PATH or https://...) or a path "
                 "starting with '/', got \"%s\"",
                 url);
        return -1;
    }
    if (!u->absolute)
        return 0;
    size_t alen = strcspn(rest, "/?#");
    if (alen == 0 || alen >= sizeof(u->authority)) {
        snprintf(err, errlen, "the URL \"%s\" has no host", url);
        return -1;
    }
    memcpy(u->authority, rest, alen);
    const char *rb = strrchr(u->authority, ']');
    const char *colon = strrchr(rb ? rb : u->authority, ':');
    u->port = colon ? (uint32_t)strtoul(colon + 1, NULL, 10) : u->https ? 443 : 80;
    return 0;
}

/* The request as HTTP/1.1 bytes, parsed by the codec into h (then *parsed is set: h must
 * be released). */
static int parse_request(const struct explain_input *in, const struct url_parts *u,
                         struct h1_head *h, bool *parsed, struct strbuf *raw, char *err,
                         size_t errlen)
{
    static const struct h1_limits lim = {EXPLAIN_MAX_REQUEST, EXPLAIN_MAX_REQUEST, 256};
    const char *sp = strchr(in->request, ' ');
    const char *url = sp ? sp + 1 : NULL;
    bool has_host = false;
    for (uint32_t i = 0; i < in->nheaders; i++)
        has_host |= strncasecmp(in->headers[i], "host:", 5) == 0;
    sb_printf(raw, "%.*s %s HTTP/1.1\r\n", (int)(sp - in->request), in->request, url);
    if (u->absolute && !has_host)
        sb_printf(raw, "Host: %s\r\n", u->authority);
    for (uint32_t i = 0; i < in->nheaders; i++)
        sb_printf(raw, "%s\r\n", in->headers[i]);
    sb_puts(raw, "\r\n");
    if (raw->err) {
        snprintf(err, errlen, "the request is too large");
        return -1;
    }
    struct h1_error e = {0, NULL};
    size_t head_len;
    int r = h1_head_parse(h, false, raw->buf, raw->len, &lim, &head_len, &e);
    *parsed = true;
    if (r != H1_DONE) {
        snprintf(err, errlen, "the request does not parse as HTTP/1.1 (%d %s)",
                 e.status ? e.status : 400, e.reason ? e.reason : "incomplete");
        return -1;
    }
    return 0;
}

/* ---- the listener ---- */

static uint32_t addr_port(const struct sockaddr_any *a)
{
    return a->u.sa.sa_family == AF_INET6 ? ntohs(a->u.in6.sin6_port) : ntohs(a->u.in.sin_port);
}

/* The named listener, or the HTTP one the URL's port and scheme point to (else the first
 * HTTP listener with the URL's TLS-ness, else the first HTTP listener). */
static const struct listener_conf *pick_listener(const struct listener_conf *ls, uint32_t n,
                                                 const char *name, const struct url_parts *u,
                                                 const char **why)
{
    const struct listener_conf *same_tls = NULL, *first = NULL;
    for (uint32_t i = 0; i < n; i++) {
        const struct listener_conf *l = &ls[i];
        if (name) {
            if (strcmp(l->name, name) == 0) {
                *why = "named";
                return l;
            }
            continue;
        }
        if (l->mode != MODE_HTTP)
            continue;
        for (uint32_t k = 0; u->port && k < l->naddrs; k++)
            if (addr_port(&l->addrs[k]) == u->port) {
                *why = "its port is the URL's";
                return l;
            }
        if (!same_tls && (l->tls != NULL) == u->https)
            same_tls = l;
        if (!first)
            first = l;
    }
    *why = same_tls ? (u->https ? "the first with TLS" : "the first without TLS")
                    : "the first HTTP listener";
    return same_tls ? same_tls : first;
}

/* ---- what the filters would do ---- */

static void describe_headers_filter(const struct filter_headers_conf *c, struct strbuf *out)
{
    static const char *const verbs[] = {"set", "add", "remove"};
    for (uint32_t i = 0; i < c->nops; i++) {
        sb_printf(out, "%s%s %s", i ? "; " : "", verbs[c->ops[i].kind], c->ops[i].name);
        if (c->ops[i].kind != HDR_REMOVE)
            sb_printf(out, ": %s", c->ops[i].value);
    }
}

/* What path_rewrite makes of this request's path. */
static void describe_rewrite(const struct filter_path_rewrite_conf *c, const struct http_msg *m,
                             struct strbuf *out)
{
    char buf[2048];
    long n = -1;
    if (c->prefix && m->path.len >= c->prefix_len &&
        memcmp(m->path.p, c->prefix, c->prefix_len) == 0) {
        n = snprintf(buf, sizeof(buf), "%s%.*s", c->replace, (int)(m->path.len - c->prefix_len),
                     m->path.p + c->prefix_len);
    } else if (c->re) {
        n = regex_replace(c->re, m->path.p, m->path.len, c->replace, c->replace_len, buf,
                          sizeof(buf) - 1);
        n = n > 0 ? n : -1;
    }
    if (c->prefix)
        sb_printf(out, "prefix %s -> %s", c->prefix, c->replace);
    else
        sb_printf(out, "regex -> %s", c->replace);
    if (n >= 0 && (size_t)n < sizeof(buf))
        sb_printf(out, ": %.*s becomes %.*s", (int)m->path.len, m->path.p, (int)n, buf);
    else
        sb_printf(out, ": %.*s unchanged", (int)m->path.len, m->path.p);
}

/* One filter: its name and, for the built-in ones, what it would do. Returns the status
 * it answers with (redirect, respond), else 0. */
static int describe_filter(const struct filter_conf *f, const struct http_msg *m,
                           struct strbuf *out)
{
    const void *c = f->conf;
    int status = 0;
    sb_printf(out, "%s", f->ops->name);
    if (f->ops == &filter_request_headers || f->ops == &filter_response_headers) {
        sb_puts(out, ": ");
        describe_headers_filter(c, out);
    } else if (f->ops == &filter_path_rewrite) {
        sb_puts(out, ": ");
        describe_rewrite(c, m, out);
    } else if (f->ops == &filter_redirect) {
        const struct filter_redirect_conf *r = c;
        status = r->status;
        sb_printf(out, ": answers %u, Location: %s", r->status, r->location);
    } else if (f->ops == &filter_respond) {
        const struct filter_respond_conf *r = c;
        status = r->status;
        sb_printf(out, ": answers %u with %u bytes", r->status, r->body_len);
    } else if (f->ops == &filter_forwarded) {
        const struct filter_forwarded_conf *fw = c;
        sb_printf(out, ": sets %s%s%s", fw->x_forwarded ? "X-Forwarded-For/-Proto/-Host" : "",
                  fw->x_forwarded && fw->forwarded ? " and " : "",
                  fw->forwarded ? "Forwarded" : "");
    } else if (f->ops == &filter_request_id) {
        sb_printf(out, ": sets %s when absent, echoed on the response",
                  ((const struct filter_request_id_conf *)c)->header);
    } else if (f->ops == &filter_traceparent) {
        sb_puts(out, ": passes a valid traceparent on, else starts a new trace");
    } else if (f->ops == &filter_grpc_web) {
        sb_puts(out, ": turns gRPC-Web into gRPC and back");
    } else {
        sb_puts(out, ": not evaluated here (it may answer the request itself)");
    }
    sb_putc(out, '\n');
    return status;
}

/* ---- the backend ---- */

static const char *balance_rule(enum balance_kind k)
{
    switch (k) {
    case BAL_ROUND_ROBIN:
        return "each eligible server in turn";
    case BAL_WEIGHTED:
        return "in turn by weight (smooth weighted round robin)";
    case BAL_LEAST_CONN:
        return "the fewest open connections per unit of weight";
    case BAL_P2C:
        return "the less loaded of two random servers";
    case BAL_SOURCE_HASH:
        return "rendezvous hash of the key (client address by default)";
    case BAL_MAGLEV:
        return "Maglev consistent hash of the key (client address by default)";
    }
    return "?";
}

static void describe_backend(const struct backend *b, struct strbuf *out)
{
    sb_printf(out, "backend:   %s (protocol %s%s)\n", b->name,
              b->protocol == PROTO_H1   ? "h1"
              : b->protocol == PROTO_H2 ? "h2"
                                        : "h2c",
              b->tls ? ", TLS" : "");
    sb_printf(out, "balance:   %s: %s", lb_ops_for(b->balance)->name, balance_rule(b->balance));
    if (b->hash_on == HASH_PATH)
        sb_puts(out, "; hashes the path");
    else if (b->hash_on != HASH_SOURCE)
        sb_printf(out, "; hashes the %s %s", b->hash_on == HASH_HEADER ? "header" : "cookie",
                  b->hash_name);
    if (b->sticky.enabled)
        sb_printf(out, "; sticky cookie %s first", b->sticky.cookie);
    sb_puts(out, "\nservers:\n");
    for (uint32_t i = 0; i < b->nservers; i++) {
        const struct server *s = &b->servers[i];
        bool named = strcmp(s->name, s->addr_text) != 0;
        sb_printf(out, "  %s%s%s weight %u%s%s\n", named ? s->name : "", named ? " " : "",
                  s->addr_text, lb_weight(s),
                  s->backup ? " backup (only when no primary is eligible)" : " candidate",
                  s->max_conns ? " (max_connections set)" : "");
    }
}

static void describe_action(const struct http_route *r, struct strbuf *out)
{
    if (r->action == ROUTE_BACKEND) {
        describe_backend(r->backend, out);
        return;
    }
    sb_puts(out, "split:    ");
    for (uint32_t i = 0; i < r->nsplit; i++)
        sb_printf(out, " %s %u%%", r->split[i].backend->name,
                  r->split_total ? r->split[i].weight * 100 / r->split_total : 0);
    sb_putc(out, '\n');
    for (uint32_t i = 0; i < r->nsplit; i++)
        if (r->split[i].weight)
            describe_backend(r->split[i].backend, out);
}

/* ---- the walk ---- */

/* Tries the routes in order (the real router, explain mode), reporting each miss. */
static void walk_routes(const struct listener_conf *l, const struct http_msg *m,
                        struct explain_result *res, struct strbuf *out)
{
    for (uint32_t i = 0; i < l->http.nroutes; i++) {
        const struct http_route *r = &l->http.routes[i];
        uint32_t idx;
        enum route_miss_part miss = route_match_explain(&r->match, m, NULL, &idx);
        if (out && miss != ROUTE_MISS_NONE) {
            sb_printf(out, "  #%u %s: no, ", i + 1, r->name);
            route_miss_describe(&r->match, miss, idx, out);
            sb_puts(out, miss == ROUTE_MISS_CERT ? " (explain sends no certificate)\n"
                                                 : " does not hold\n");
        }
        if (miss == ROUTE_MISS_NONE) {
            res->route = r;
            res->route_index = i;
            if (out) {
                sb_printf(out, "  #%u %s: MATCH (", i + 1, r->name);
                route_match_describe(&r->match, out);
                sb_puts(out, ")\n");
            }
            return;
        }
    }
}

/* The filters (listener's, then route's) in order; the first answer decides the status. */
static void walk_filters(const struct listener_conf *l, const struct http_route *r,
                         const struct http_msg *m, struct explain_result *res, struct strbuf *out)
{
    struct strbuf none; /* what the filters would do, when nobody reads it */
    sb_init(&none, 1 << 16);
    struct strbuf *o = out ? out : &none;
    uint32_t n = 0;
    if (out)
        sb_puts(out, "filters:\n");
    for (uint32_t pass = 0; pass < 2; pass++) {
        const struct filter_conf *fs = pass ? r->filters : l->http.filters;
        uint32_t nf = pass ? r->nfilters : l->http.nfilters;
        for (uint32_t i = 0; i < nf; i++) {
            sb_printf(o, "  %u. %s", ++n, pass ? "" : "(listener) ");
            int st = describe_filter(&fs[i], m, o);
            if (st && !res->status)
                res->status = st;
        }
    }
    if (out && n == 0)
        sb_puts(out, "  none\n");
    sb_free(&none);
}

int explain_run(const struct listener_conf *ls, uint32_t n, const struct explain_input *in,
                struct explain_result *res, struct strbuf *out, char *err, size_t errlen)
{
    struct url_parts u;
    const char *sp = strchr(in->request, ' ');
    memset(res, 0, sizeof(*res));
    if (!sp || sp == in->request || strchr(sp + 1, ' ')) {
        snprintf(err, errlen,
                 "expected \"METHOD URL\", e.g. \"GET https://example.com/\", "
                 "got \"%s\"",
                 in->request);
        return -1;
    }
    if (split_url(sp + 1, &u, err, errlen) < 0)
        return -1;
    const char *why = NULL;
    const struct listener_conf *l = pick_listener(ls, n, in->listener, &u, &why);
    if (!l || l->mode != MODE_HTTP) {
        snprintf(err, errlen,
                 l              ? "listener %s is not a `mode: http` listener"
                 : in->listener ? "no listener named %s"
                                : "no HTTP listener%s",
                 in->listener ? in->listener : "");
        return -1;
    }
    struct h1_head *h = malloc(sizeof(*h));
    struct strbuf raw;
    sb_init(&raw, EXPLAIN_MAX_REQUEST);
    bool parsed = false;
    int rc = -1;
    if (!h) {
        snprintf(err, errlen, "out of memory");
        goto release;
    }
    if (parse_request(in, &u, h, &parsed, &raw, err, errlen) < 0)
        goto release;
    res->listener = l;
    if (out)
        sb_printf(out, "request:   %s\nlistener:  %s (%s; %s%s)\nroutes:\n", in->request, l->name,
                  l->addr_texts[0], l->tls ? "TLS, " : "", why);
    walk_routes(l, &h->m, res, out);
    if (!res->route) {
        res->status = 404;
        if (out)
            sb_puts(out, "route:     none: Strata answers 404\n");
        rc = 0;
        goto release;
    }
    if (out)
        sb_printf(out, "route:     %s\n", res->route->name);
    walk_filters(l, res->route, &h->m, res, out);
    if (res->route->action == ROUTE_ANSWER || res->status) {
        if (out)
            sb_printf(out, "answer:    Strata answers %d itself (no backend)\n", res->status);
    } else if (out) {
        describe_action(res->route, out);
    }
    rc = 0;
release:
    if (parsed)
        h1_head_release(h);
    free(h);
    sb_free(&raw);
    return rc;
}

void explain_route_miss(const struct http_route *r, const struct explain_input *in,
                        struct strbuf *out)
{
    struct url_parts u;
    char err[160];
    const char *sp = strchr(in->request, ' ');
    struct h1_head *h = malloc(sizeof(*h));
    struct strbuf raw;
    sb_init(&raw, EXPLAIN_MAX_REQUEST);
    bool parsed = false;
    if (h && sp && split_url(sp + 1, &u, err, sizeof(err)) == 0 &&
        parse_request(in, &u, h, &parsed, &raw, err, sizeof(err)) == 0) {
        uint32_t idx;
        enum route_miss_part miss = route_match_explain(&r->match, &h->m, NULL, &idx);
        if (miss != ROUTE_MISS_NONE)
            route_miss_describe(&r->match, miss, idx, out);
    }
    if (parsed)
        h1_head_release(h);
    free(h);
    sb_free(&raw);
}
