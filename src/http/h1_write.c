/* h1_write.c — the HTTP/1.1 head writer: turns a message model back into a request head
 * for a server or a response head for a client, regenerating the framing and connection
 * fields that the parser consumed, and writes chunk framing lines. Every string of the
 * model is checked as it is copied, so that nothing a filter stored can split a message.
 */
#include "http/h1.h"

#include <string.h>

#include "http/msg.h"

/* The output: `bad` once something did not fit or could not be written. */
struct out {
    char *p;
    size_t len, cap;
    bool bad;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->bad || o->cap - o->len < n) {
        o->bad = true;
        return;
    }
    if (n)
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_c(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Whether every byte of s is of class `mask` (field values: a word at a time). */
static bool all_of_class(struct hstr s, unsigned mask)
{
    if (mask == H1C_VALUE)
        return !s.len || h1_span_value(s.p, s.p + s.len) == s.p + s.len;
    for (uint32_t i = 0; i < s.len; i++)
        if (!(h1_ctype[(uint8_t)s.p[i]] & mask))
            return false;
    return true;
}

/* Copies s when every byte of it is of class `mask` (and it is not empty when `nonempty`). */
static void put_checked(struct out *o, struct hstr s, unsigned mask, bool nonempty)
{
    if (!all_of_class(s, mask) || (nonempty && s.len == 0))
        o->bad = true;
    put(o, s.p, s.len);
}

static void put_u64(struct out *o, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + sizeof(tmp) - n, (size_t)n);
}

static void put_field(struct out *o, const char *name, struct hstr value)
{
    put_c(o, name);
    put_checked(o, value, H1C_VALUE, false);
    put(o, "\r\n", 2);
}

/* Fields the writer generates itself, never copied from hdrs (Host: for requests only). */
static bool generated(struct hstr n, bool request)
{
    switch (n.len) {
    case 2:
        return hstr_ieq_c(n, "te");
    case 4:
        return request && hstr_ieq_c(n, "host");
    case 7:
        return hstr_ieq_c(n, "upgrade");
    case 10:
        return hstr_ieq_c(n, "connection") || hstr_ieq_c(n, "keep-alive");
    case 14:
        return hstr_ieq_c(n, "content-length");
    case 16:
        return hstr_ieq_c(n, "proxy-connection");
    case 17:
        return hstr_ieq_c(n, "transfer-encoding");
    default:
        return false;
    }
}

/* "name: value\r\n", both checked as put_checked does unless known good already (the
 * parser's fields, the filters' own): checking every byte of a head's dozen fields again
 * was a tenth of a proxied request's instructions. */
static void put_hdr(struct out *o, const struct http_hdr *h)
{
    size_t n = (size_t)h->name.len + h->value.len + 4;
    if (o->bad || o->cap - o->len < n || !h->name.len ||
        (h->name.known != HSTR_TOKEN && !all_of_class(h->name, H1C_TCHAR)) ||
        (!(h->value.known & HSTR_VALUE) && !all_of_class(h->value, H1C_VALUE))) {
        o->bad = true;
        return;
    }
    char *d = o->p + o->len;
    memcpy(d, h->name.p, h->name.len);
    d += h->name.len;
    memcpy(d, ": ", 2);
    if (h->value.len)
        memcpy(d + 2, h->value.p, h->value.len);
    memcpy(d + 2 + h->value.len, "\r\n", 2);
    o->len += n;
}

static void put_hdrs(struct out *o, const struct http_msg *m, bool request)
{
    for (uint32_t i = 0; i < m->nhdrs; i++)
        if (!generated(m->hdrs[i].name, request))
            put_hdr(o, &m->hdrs[i]);
}

static void put_length(struct out *o, uint64_t n)
{
    put_c(o, "Content-Length: ");
    put_u64(o, n);
    put(o, "\r\n", 2);
}

static const char *method_name(enum http_method m)
{
    static const char *const names[] = {
        [HTTP_M_GET] = "GET",         [HTTP_M_HEAD] = "HEAD",     [HTTP_M_POST] = "POST",
        [HTTP_M_PUT] = "PUT",         [HTTP_M_DELETE] = "DELETE", [HTTP_M_CONNECT] = "CONNECT",
        [HTTP_M_OPTIONS] = "OPTIONS", [HTTP_M_TRACE] = "TRACE",   [HTTP_M_PATCH] = "PATCH",
    };
    return (unsigned)m < sizeof(names) / sizeof(names[0]) && names[m] ? names[m] : "";
}

/* The request-target: authority-form for CONNECT, "*" for OPTIONS *, else origin-form. */
static void put_target(struct out *o, const struct http_msg *m)
{
    if (m->method == HTTP_M_CONNECT) {
        put_checked(o, m->authority, H1C_HOST, true);
    } else if (m->method == HTTP_M_OPTIONS && m->path.len == 1 && m->path.p[0] == '*') {
        put(o, "*", 1);
    } else if (m->path.len == 0) {
        put(o, "/", 1);
    } else {
        if (m->path.p[0] != '/')
            o->bad = true;
        put_checked(o, m->path, H1C_TARGET, true);
    }
    if (m->method != HTTP_M_CONNECT && m->query.p) {
        put(o, "?", 1);
        put_checked(o, m->query, H1C_TARGET, false);
    }
}

ssize_t h1_write_request(const struct http_msg *m, bool close, char *out, size_t cap)
{
    struct out o = {out, 0, cap, false};
    struct hstr method = m->method_name.len ? m->method_name : hstr_c(method_name(m->method));
    put_checked(&o, method, H1C_TCHAR, true);
    put(&o, " ", 1);
    put_target(&o, m);
    put_c(&o, " HTTP/1.1\r\n");
    /* RFC 9112 §3.2: every HTTP/1.1 request has a Host, empty when the target has no
     * authority (an HTTP/1.0 client that sent none) */
    put_c(&o, "Host: ");
    put_checked(&o, m->authority, H1C_HOST, false);
    put(&o, "\r\n", 2);
    put_hdrs(&o, m, true);
    if (m->body == HTTP_BODY_LENGTH)
        put_length(&o, m->content_length);
    else if (m->body == HTTP_BODY_CHUNKED)
        put_c(&o, "Transfer-Encoding: chunked\r\n");
    if (m->flags & HTTP_F_UPGRADE) {
        put_c(&o, "Connection: upgrade\r\n");
        put_field(&o, "Upgrade: ", m->upgrade);
    } else if (close) {
        put_c(&o, "Connection: close\r\n");
    }
    put(&o, "\r\n", 2);
    return o.bad ? -1 : (ssize_t)o.len;
}

/* The framing field of a response head (see enum h1_write_framing). */
static void put_response_framing(struct out *o, const struct http_msg *m,
                                 enum h1_write_framing framing, uint8_t client_version)
{
    unsigned s = m->status;
    bool no_length = s < 200 || s == 204; /* RFC 9110 §8.6: never a Content-Length */
    if (framing == H1W_NO_BODY) {
        if (!no_length &&
            (m->body == HTTP_BODY_LENGTH || (m->body == HTTP_BODY_NONE && m->content_length)))
            put_length(o, m->content_length);
        return;
    }
    if (m->body == HTTP_BODY_LENGTH)
        put_length(o, m->content_length);
    else if (m->body == HTTP_BODY_CHUNKED && client_version >= 11)
        put_c(o, "Transfer-Encoding: chunked\r\n");
    else if (m->body == HTTP_BODY_NONE && !no_length && s != 304)
        put_length(o, 0);
}

ssize_t h1_write_response(const struct http_msg *m, enum h1_write_framing framing,
                          uint8_t client_version, bool close, char *out, size_t cap)
{
    struct out o = {out, 0, cap, false};
    unsigned s = m->status;
    if (s < 100 || s > 999)
        return -1;
    char code[4] = {(char)('0' + s / 100), (char)('0' + s / 10 % 10), (char)('0' + s % 10), ' '};
    put_c(&o, "HTTP/1.1 ");
    put(&o, code, 4);
    put_checked(&o, m->reason.len ? m->reason : hstr_c(http_reason(s)), H1C_VALUE, false);
    put(&o, "\r\n", 2);
    put_hdrs(&o, m, false);
    put_response_framing(&o, m, framing, client_version);
    if (s == 101 && m->upgrade.len) {
        put_c(&o, "Connection: upgrade\r\n");
        put_field(&o, "Upgrade: ", m->upgrade);
    } else if (close) {
        put_c(&o, "Connection: close\r\n");
    } else if (client_version == 10) {
        put_c(&o, "Connection: keep-alive\r\n");
    }
    put(&o, "\r\n", 2);
    return o.bad ? -1 : (ssize_t)o.len;
}

size_t h1_write_chunk_head(uint64_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (uint64_t v = n; v; v >>= 4)
        k++;
    k = k ? k : 1;
    for (size_t i = k; i-- > 0; n >>= 4)
        out[i] = hex[n & 15];
    out[k] = '\r';
    out[k + 1] = '\n';
    return k + 2;
}

/* A field that can be written as is: a token name, a value of field-value bytes. */
static bool field_ok(const struct http_hdr *h)
{
    if (h->name.len == 0 || (h->value.len && h1_span_value(h->value.p, h->value.p + h->value.len) !=
                                                 h->value.p + h->value.len))
        return false;
    for (uint32_t i = 0; i < h->name.len; i++)
        if (!(h1_ctype[(uint8_t)h->name.p[i]] & H1C_TCHAR))
            return false;
    return true;
}

ssize_t h1_write_last_chunk(const struct http_msg *m, char *out, size_t cap)
{
    struct out o = {out, 0, cap, false};
    put(&o, "0\r\n", 3);
    for (uint32_t i = 0; i < m->ntrailers; i++) {
        const struct http_hdr *h = &m->trailers[i];
        if (generated(h->name, true) || !field_ok(h))
            continue;
        put(&o, h->name.p, h->name.len);
        put(&o, ": ", 2);
        put(&o, h->value.p, h->value.len);
        put(&o, "\r\n", 2);
    }
    put(&o, "\r\n", 2);
    return o.bad ? -1 : (ssize_t)o.len;
}
