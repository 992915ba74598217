/* txn.c — what filters use to act on a transaction beyond the message helpers: making
 * Strata's own answer (txn_answer) and expanding value templates (txn_expand). Both
 * allocate in the transaction's arena only.
 */
#include <string.h>

#include "http/filter.h"
#include "http/filters/util.h"
#include "http/msg.h"
#include "net/conn.h"

int txn_answer(struct http_txn *t, unsigned status, const char *content_type, const char *body,
               size_t body_len)
{
    /* 1xx, 204 and 304 have no body at all (RFC 9110 §6.4.1), not even a length */
    bool bodyless = status < 200 || status == 204 || status == 304;
    struct hstr b = bodyless ? (struct hstr){"", 0} : arena_dup(&t->arena, body, body_len);
    if (!b.p)
        return -1;
    memset(&t->resp, 0, sizeof(t->resp));
    t->resp.version = 11;
    t->resp.status = (uint16_t)status;
    t->resp.reason = hstr_c(http_reason(status));
    t->resp.body = bodyless ? HTTP_BODY_NONE : HTTP_BODY_LENGTH;
    t->resp.content_length = b.len;
    if (content_type && !bodyless &&
        http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Content-Type"), hstr_c(content_type)) < 0)
        return -1;
    t->answer_body = b;
    t->answered = true;
    return 0;
}

/* A TLS variable of the client connection ("" on plain connections). */
static struct hstr tls_value(const struct http_txn *t, int v)
{
    struct xprt_info info = {0};
    if (t->conn)
        t->conn->xprt->info(t->conn, &info);
    const char *s = v == TV_TLS_VERSION          ? info.version
                    : v == TV_TLS_CIPHER         ? info.cipher
                    : v == TV_TLS_SNI            ? info.sni
                    : v == TV_TLS_CLIENT_SUBJECT ? info.peer_subject
                                                 : info.peer_fingerprint;
    return s ? hstr_c(s) : (struct hstr){"", 0};
}

/* The value of variable v for t; `ip` is room for the client address. */
static struct hstr var_value(struct http_txn *t, int v, char *ip, size_t iplen)
{
    const struct http_msg *r = &t->req;
    struct hstr host = r->authority;
    switch (v) {
    case TV_SCHEME:
        return t->tls ? HSTR_LIT("https") : HSTR_LIT("http");
    case TV_HOST:
        if (host.len && host.p[0] == '[') {
            const char *rb = memchr(host.p, ']', host.len);
            return (struct hstr){host.p, rb ? (uint32_t)(rb - host.p) + 1 : host.len};
        }
        if (host.p && memchr(host.p, ':', host.len))
            host.len = (uint32_t)((const char *)memchr(host.p, ':', host.len) - host.p);
        return host;
    case TV_AUTHORITY:
        return r->authority;
    case TV_PATH:
    case TV_REQUEST_URI: /* the query part is added by the caller */
        return r->path;
    case TV_QUERY:
        return r->query;
    case TV_CLIENT_IP:
        return (struct hstr){ip, (uint32_t)client_ip_text(&t->client, ip, iplen)};
    case TV_REQUEST_ID:
        return t->request_id;
    case TV_METHOD:
        return r->method_name;
    case TV_TLS_VERSION:
    case TV_TLS_CIPHER:
    case TV_TLS_SNI:
    case TV_TLS_CLIENT_SUBJECT:
    case TV_TLS_CLIENT_FINGERPRINT:
        return tls_value(t, v);
    }
    return (struct hstr){"", 0};
}

/* Copies (out != NULL) or measures the expansion of tmpl; returns its length. */
static size_t expand(struct http_txn *t, const char *tmpl, char *out)
{
    char ip[64];
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        const char *close = p[0] == '{' && p[1] != '{' ? strchr(p + 1, '}') : NULL;
        int v = close ? tmpl_var_lookup(p + 1, (size_t)(close - p - 1)) : -1;
        if (v < 0) {
            if (out)
                out[o] = *p;
            o++;
            p += p[0] == '{' && p[1] == '{' ? 2 : 1;
            continue;
        }
        struct hstr val = var_value(t, v, ip, sizeof(ip));
        if (out && val.len)
            memcpy(out + o, val.p, val.len);
        o += val.len;
        if (v == TV_REQUEST_URI && t->req.query.len) {
            if (out) {
                out[o] = '?';
                memcpy(out + o + 1, t->req.query.p, t->req.query.len);
            }
            o += 1 + t->req.query.len;
        }
        p = close + 1;
    }
    return o;
}

struct hstr txn_expand(struct http_txn *t, const char *tmpl)
{
    if (!strchr(tmpl, '{'))
        return hstr_c(tmpl); /* no variable: the template itself (config lifetime) */
    size_t n = expand(t, tmpl, NULL);
    char *out = arena_alloc(&t->arena, n + 1);
    if (!out)
        return (struct hstr){NULL, 0};
    expand(t, tmpl, out);
    out[n] = '\0';
    return (struct hstr){out, (uint32_t)n};
}
