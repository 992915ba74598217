/* forwarded.c — the forwarded filter: tells servers who the client is.
 * X-Forwarded-For gets the client's IP, X-Forwarded-Proto "http" or "https" (TLS on the
 * client side), X-Forwarded-Host the authority; RFC 7239 Forwarded gets one element
 * `for=...;proto=...;host=...`. A client in the listener's trusted_proxies is a proxy
 * whose own fields are kept: the IP is appended to its lists, its -Proto and -Host kept.
 * From any other client those fields are replaced, so a client cannot forge them.
 */
#include <arpa/inet.h>
#include <string.h>

#include "http/filter.h"
#include "http/filters/util.h"
#include "http/msg.h"
#include "net/cidr.h"

/* Every value of `name` joined with ", ", then `tail` ("a, b, tail"); only `tail` when
 * `keep` is false or the field is absent. In the arena; .p NULL when out of memory. */
static struct hstr join_fields(struct http_txn *t, struct hstr name, bool keep, struct hstr tail)
{
    if (!keep)
        return tail;
    size_t n = tail.len;
    for (int i = keep ? http_hdr_find(&t->req, name, 0) : -1; i >= 0;
         i = http_hdr_find(&t->req, name, (uint32_t)i + 1))
        n += t->req.hdrs[i].value.len ? t->req.hdrs[i].value.len + 2 : 0;
    char *out = arena_alloc(&t->arena, n ? n : 1);
    if (!out)
        return (struct hstr){NULL, 0};
    size_t o = 0;
    for (int i = keep ? http_hdr_find(&t->req, name, 0) : -1; i >= 0;
         i = http_hdr_find(&t->req, name, (uint32_t)i + 1)) {
        struct hstr v = t->req.hdrs[i].value;
        if (!v.len)
            continue;
        memcpy(out + o, v.p, v.len);
        memcpy(out + o + v.len, ", ", 2);
        o += v.len + 2;
    }
    memcpy(out + o, tail.p, tail.len);
    return (struct hstr){out, (uint32_t)n};
}

static bool present(const struct http_txn *t, struct hstr name)
{
    return http_hdr_find(&t->req, name, 0) >= 0;
}

static int x_forwarded(struct http_txn *t, bool trusted, struct hstr ip)
{
    static const struct hstr xff = HSTR_TOKEN_LIT("X-Forwarded-For"),
                             xfp = HSTR_TOKEN_LIT("X-Forwarded-Proto"),
                             xfh = HSTR_TOKEN_LIT("X-Forwarded-Host");
    struct hstr v = join_fields(t, xff, trusted, ip);
    if (!v.p || http_hdr_set(&t->req, &t->arena, xff, v) < 0)
        return -1;
    static const struct hstr https = HSTR_TOKEN_LIT("https"), http = HSTR_TOKEN_LIT("http");
    if (!(trusted && present(t, xfp)) &&
        http_hdr_set(&t->req, &t->arena, xfp, t->tls ? https : http) < 0)
        return -1;
    if (trusted && present(t, xfh))
        return 0;
    if (!t->req.authority.len) {
        http_hdr_remove(&t->req, xfh);
        return 0;
    }
    return http_hdr_set(&t->req, &t->arena, xfh, t->req.authority);
}

/* The RFC 7239 value of a parameter: the token itself, or a quoted-string. */
static struct hstr param_value(struct http_txn *t, struct hstr v)
{
    if (http_token_valid(v.p, v.len))
        return v;
    char *out = arena_alloc(&t->arena, 2 + 2 * (size_t)v.len);
    if (!out)
        return (struct hstr){NULL, 0};
    size_t o = 0;
    out[o++] = '"';
    for (uint32_t i = 0; i < v.len; i++) {
        if (v.p[i] == '"' || v.p[i] == '\\')
            out[o++] = '\\';
        out[o++] = v.p[i];
    }
    out[o++] = '"';
    return (struct hstr){out, (uint32_t)o};
}

static int forwarded(struct http_txn *t, bool trusted, struct hstr ip)
{
    static const struct hstr fwd = HSTR_LIT("Forwarded");
    /* for=192.0.2.1, for="[2001:db8::1]" (RFC 7239 §6: IPv6 quoted and bracketed) */
    struct hstr elem;
    struct hstr host = t->req.authority.len ? param_value(t, t->req.authority) : hstr_c("");
    if (!host.p)
        return -1;
    const char *scheme = t->tls ? "https" : "http";
    if (client_ip_is_v6(&t->client))
        elem = arena_printf(&t->arena, "for=\"[%.*s]\";proto=%s", (int)ip.len, ip.p, scheme);
    else
        elem = arena_printf(&t->arena, "for=%.*s;proto=%s", (int)ip.len, ip.p, scheme);
    if (elem.p && host.len)
        elem =
            arena_printf(&t->arena, "%.*s;host=%.*s", (int)elem.len, elem.p, (int)host.len, host.p);
    if (!elem.p)
        return -1;
    struct hstr v = join_fields(t, fwd, trusted, elem);
    return v.p ? http_hdr_set(&t->req, &t->arena, fwd, v) : -1;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_forwarded_conf *c = conf;
    bool trusted = c->trusted && cidr_set_contains(c->trusted, &t->client);
    char *buf = arena_alloc(&t->arena, INET6_ADDRSTRLEN); /* the IP is written in place */
    if (!buf)
        return FILTER_ERROR;
    struct hstr ip = {buf, (uint32_t)client_ip_text(&t->client, buf, INET6_ADDRSTRLEN),
                      HSTR_VALUE};
    if (c->x_forwarded && x_forwarded(t, trusted, ip) < 0)
        return FILTER_ERROR;
    if (c->forwarded && forwarded(t, trusted, ip) < 0)
        return FILTER_ERROR;
    return FILTER_CONTINUE;
}

const struct filter_ops filter_forwarded = {
    .name = "forwarded",
    .on_request = on_request,
};
