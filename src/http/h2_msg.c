/* h2_msg.c — HTTP/2 header blocks ⇄ the message model; see h2_msg.h. */
#include "http/h2_msg.h"

#include <string.h>

#include "core/fmt.h"
#include "http/h1.h"
#include "http/msg.h"

enum pseudo_bit {
    PS_METHOD = 1 << 0,
    PS_SCHEME = 1 << 1,
    PS_AUTHORITY = 1 << 2,
    PS_PATH = 1 << 3,
    PS_STATUS = 1 << 4,
    PS_PROTOCOL = 1 << 5, /* RFC 8441 extended CONNECT */
};

void h2_head_begin(struct h2_head *h, enum h2_block kind, enum http_method req_method,
                   uint32_t max_bytes, uint32_t max_fields)
{
    memset(h, 0, sizeof(*h));
    h->kind = kind;
    h->req_method = req_method;
    h->max_bytes = max_bytes;
    h->max_fields = max_fields;
}

/* The block is malformed: the stream is reset. */
static int malformed(struct h2_head *h, const char *why)
{
    if (!h->err) {
        h->err = why;
        h->status = h->kind == H2B_REQUEST ? 400 : 502;
    }
    return -1;
}

/* The block is valid but refused: a request is answered `status` at its end. */
static int refuse(struct h2_head *h, uint16_t status, const char *why)
{
    if (!h->refused) {
        h->refused = true;
        h->status = status;
        h->err = why;
    }
    return 0;
}

static bool is_name(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(h1_ctype[p[i]] & H1C_TCHAR) || (p[i] >= 'A' && p[i] <= 'Z'))
            return false;
    return n > 0;
}

/* Whether any byte of v is zero (exact as a yes/no). */
static inline uint64_t zero_byte(uint64_t v)
{
    return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

/* RFC 9113 §8.2.1: no NUL, CR or LF, and no leading or trailing SP or HTAB. Eight bytes at
 * a time: values are most of a head's bytes, read once in and once out. */
static bool is_value(const uint8_t *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull;
    if (n && (p[0] == ' ' || p[0] == '\t' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        return false;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (zero_byte(v) | zero_byte(v ^ (ones * '\r')) | zero_byte(v ^ (ones * '\n')))
            return false;
    }
    for (; i < n; i++)
        if (p[i] == 0 || p[i] == '\r' || p[i] == '\n')
            return false;
    return true;
}

static bool all_of(struct hstr s, uint8_t cls)
{
    for (uint32_t i = 0; i < s.len; i++)
        if (!(h1_ctype[(uint8_t)s.p[i]] & cls))
            return false;
    return s.len > 0;
}

static bool name_is(const uint8_t *p, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* Fields that describe a connection, which HTTP/2 has no use for (RFC 9113 §8.2.2). */
static bool connection_specific(struct hstr n)
{
#define NAME(s) {s, sizeof(s) - 1}
    static const struct hstr names[] = {NAME("connection"), NAME("keep-alive"),
                                        NAME("proxy-connection"), NAME("transfer-encoding"),
                                        NAME("upgrade")};
#undef NAME
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n.len == names[i].len && hstr_ieq(n, names[i]))
            return true;
    return false;
}

/* Digits only, no overflow past 2^62. */
static bool parse_length(struct hstr v, uint64_t *out)
{
    uint64_t n = 0;
    if (!all_of(v, H1C_DIGIT))
        return false;
    for (uint32_t i = 0; i < v.len; i++) {
        n = n * 10 + (uint64_t)(v.p[i] - '0');
        if (n > (1ull << 62))
            return false;
    }
    *out = n;
    return true;
}

/* ---- reading ---- */

static bool scheme_ok(struct hstr s)
{
    if (!s.len || !((s.p[0] | 0x20) >= 'a' && (s.p[0] | 0x20) <= 'z'))
        return false;
    for (uint32_t i = 1; i < s.len; i++) {
        char c = s.p[i];
        if (!(h1_ctype[(uint8_t)c] & (H1C_DIGIT)) && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z') &&
            c != '+' && c != '-' && c != '.')
            return false;
    }
    return true;
}

/* :path into path and query (query.p NULL without '?'). */
static bool set_path(struct http_msg *m, struct hstr v)
{
    if (!all_of(v, H1C_TARGET) || (v.p[0] != '/' && !(v.len == 1 && v.p[0] == '*')))
        return false;
    const char *q = memchr(v.p, '?', v.len);
    m->path = (struct hstr){v.p, q ? (uint32_t)(q - v.p) : v.len};
    m->query = q ? (struct hstr){q + 1, (uint32_t)(v.p + v.len - q - 1)} : (struct hstr){NULL, 0};
    return true;
}

static int status_field(struct h2_head *h, struct http_msg *m, struct hstr v)
{
    if (v.len != 3 || !all_of(v, H1C_DIGIT) || v.p[0] == '0')
        return malformed(h, "invalid :status");
    m->status = (uint16_t)((v.p[0] - '0') * 100 + (v.p[1] - '0') * 10 + (v.p[2] - '0'));
    if (m->status == 101) /* RFC 9113 §8.6: no Upgrade in HTTP/2 */
        return malformed(h, "101 in HTTP/2");
    m->reason = hstr_c(http_reason(m->status));
    return 0;
}

/* One pseudo-header field: first in the block, once each, of the block's role only. */
static int pseudo_field(struct h2_head *h, struct http_msg *m, struct hstr n, struct hstr v)
{
#define PSEUDO(s) {s, sizeof(s) - 1}
    static const struct {
        struct hstr name;
        uint8_t bit;
        bool request;
    } known[] = {
        {PSEUDO(":method"), PS_METHOD, true},       {PSEUDO(":scheme"), PS_SCHEME, true},
        {PSEUDO(":authority"), PS_AUTHORITY, true}, {PSEUDO(":path"), PS_PATH, true},
        {PSEUDO(":status"), PS_STATUS, false},      {PSEUDO(":protocol"), PS_PROTOCOL, true},
    };
#undef PSEUDO
    if (h->regular)
        return malformed(h, "pseudo-header field after a regular one");
    size_t i = 0;
    while (i < sizeof(known) / sizeof(known[0]) && !hstr_eq(n, known[i].name))
        i++;
    if (i == sizeof(known) / sizeof(known[0]) || h->kind == H2B_TRAILERS ||
        known[i].request != (h->kind == H2B_REQUEST))
        return malformed(h, "unknown or misplaced pseudo-header field");
    if (h->pseudo & known[i].bit)
        return malformed(h, "repeated pseudo-header field");
    h->pseudo |= known[i].bit;
    switch (known[i].bit) {
    case PS_METHOD:
        if (!all_of(v, H1C_TCHAR))
            return malformed(h, "invalid :method");
        m->method_name = v;
        m->method = http_method_from(v);
        return 0;
    case PS_SCHEME:
        m->scheme = v;
        return scheme_ok(v) ? 0 : malformed(h, "invalid :scheme");
    case PS_AUTHORITY:
        m->authority = v;
        return all_of(v, H1C_HOST) ? 0 : malformed(h, "invalid :authority");
    case PS_PATH:
        return set_path(m, v) ? 0 : malformed(h, "invalid :path");
    case PS_PROTOCOL:
        m->upgrade = v;
        return all_of(v, H1C_TCHAR) ? 0 : malformed(h, "invalid :protocol");
    default:
        return status_field(h, m, v);
    }
}

/* Appends a trailer field (m->trailers grows in the arena, doubling). */
static int add_trailer(struct http_msg *m, struct arena *a, struct hstr n, struct hstr v)
{
    uint32_t k = m->ntrailers;
    if ((k & (k - 1)) == 0 && k >= 8) { /* full at 8, 16, 32...: grow */
        struct http_hdr *t = arena_alloc(a, (size_t)k * 2 * sizeof(*t));
        if (!t)
            return -1;
        memcpy(t, m->trailers, k * sizeof(*t));
        m->trailers = t;
    } else if (k == 0 && !(m->trailers = arena_alloc(a, 8 * sizeof(*m->trailers)))) {
        return -1;
    }
    m->trailers[m->ntrailers++] = (struct http_hdr){n, v};
    return 0;
}

/* A regular field the model consumes, for a request or a response: Content-Length, Host,
 * Expect. Returns 1 when consumed, 0 when it is an ordinary field, -1 when malformed. */
static int framing_field(struct h2_head *h, struct http_msg *m, struct hstr n, struct hstr v)
{
    if (hstr_eq(n, HSTR_LIT("content-length"))) {
        uint64_t cl;
        if (!parse_length(v, &cl) || (h->has_cl && cl != h->cl))
            return malformed(h, "invalid content-length");
        h->has_cl = true;
        h->cl = cl;
        return 1;
    }
    if (h->kind != H2B_REQUEST)
        return 0;
    if (hstr_eq(n, HSTR_LIT("http2-settings")))
        return 1; /* HTTP/1's upgrade to h2c: meaningless here, never passed on */
    if (hstr_eq(n, HSTR_LIT("host"))) {
        if (!all_of(v, H1C_HOST))
            return malformed(h, "invalid host");
        if (!(h->pseudo & PS_AUTHORITY)) /* else :authority wins (RFC 9113 §8.3.1) */
            m->authority = v;
        return 1;
    }
    if (hstr_eq(n, HSTR_LIT("expect"))) {
        if (hstr_ieq_c(v, "100-continue"))
            m->flags |= HTTP_F_EXPECT_100;
        else
            refuse(h, 417, "unsupported expectation");
        return 1;
    }
    return 0;
}

int h2_head_field(struct h2_head *h, struct http_msg *m, struct arena *a, const uint8_t *name,
                  size_t namelen, const uint8_t *value, size_t valuelen)
{
    if (h->err && !h->refused)
        return -1;
    h->fields++;
    h->bytes += (uint32_t)(namelen > (1u << 24) ? (1u << 24) : namelen) +
                (uint32_t)(valuelen > (1u << 24) ? (1u << 24) : valuelen) + 32;
    if (namelen && name[0] == ':' && (h->checked || is_name(name + 1, namelen - 1))) {
        /* each pseudo-header field's value is checked by its own, narrower class */
        if (h->fields > h->max_fields || h->bytes > h->max_bytes)
            return refuse(h, 431, "header list too large");
        struct hstr v = arena_dup(a, value, valuelen); /* the name is only looked up */
        if (!v.p)
            return refuse(h, 431, "header list too large");
        return pseudo_field(h, m, (struct hstr){(const char *)name, (uint32_t)namelen}, v);
    }
    h->regular = true;
    if (!h->checked && !is_value(value, valuelen))
        return malformed(h, "invalid field value");
    if (!h->checked && !is_name(name, namelen))
        return malformed(h, "invalid field name");
    struct hstr n0 = {(const char *)name, (uint32_t)namelen};
    if (connection_specific(n0))
        return malformed(h, "connection-specific field");
    if (name_is(name, namelen, "te") && !name_is(value, valuelen, "trailers"))
        return malformed(h, "TE other than trailers");
    if (h->refused || h->fields > h->max_fields || h->bytes > h->max_bytes)
        return refuse(h, 431, "header list too large");
    struct hstr n = arena_dup(a, name, namelen), v = arena_dup(a, value, valuelen);
    if (!n.p || !v.p)
        return refuse(h, 431, "header list too large");
    if (h->kind == H2B_TRAILERS) {
        if (hstr_eq(n, HSTR_LIT("content-length")) || hstr_eq(n, HSTR_LIT("host")))
            return 0; /* framing has no place in trailers: dropped, as HTTP/1's decoder does */
        return add_trailer(m, a, n, v) < 0 ? refuse(h, 431, "header list too large") : 0;
    }
    int f = framing_field(h, m, n, v);
    if (f)
        return f < 0 ? -1 : 0;
    return http_hdr_add(m, a, n, v) < 0 ? refuse(h, 431, "header list too large") : 0;
}

/* RFC 9113 §8.2.3: the crumbs of a split Cookie field are joined with "; " into one
 * field, where the first was. */
static int join_cookies(struct http_msg *m, struct arena *a)
{
    static const struct hstr cookie = HSTR_LIT("cookie");
    int first = http_hdr_find(m, cookie, 0);
    if (first < 0 || http_hdr_find(m, cookie, (uint32_t)first + 1) < 0)
        return 0;
    size_t len = 0;
    for (uint32_t i = (uint32_t)first; i < m->nhdrs; i++)
        if (hstr_ieq(m->hdrs[i].name, cookie))
            len += m->hdrs[i].value.len + 2;
    char *p = arena_alloc(a, len);
    if (!p)
        return -1;
    uint32_t n = 0, out = (uint32_t)first + 1;
    for (uint32_t i = (uint32_t)first; i < m->nhdrs; i++) {
        struct http_hdr f = m->hdrs[i];
        if (!hstr_ieq(f.name, cookie)) {
            m->hdrs[out++] = f;
            continue;
        }
        if (n) {
            memcpy(p + n, "; ", 2);
            n += 2;
        }
        memcpy(p + n, f.value.p, f.value.len);
        n += f.value.len;
    }
    m->nhdrs = out;
    m->hdrs[first].value = (struct hstr){p, n};
    return 0;
}

/* The body framing from content-length and END_STREAM. */
static int set_body(struct h2_head *h, struct http_msg *m, bool no_body, bool end_stream)
{
    m->content_length = h->has_cl ? h->cl : 0;
    if (end_stream && h->has_cl && h->cl && !no_body)
        return malformed(h, "content-length with no body");
    if (no_body || end_stream)
        m->body = HTTP_BODY_NONE;
    else
        m->body = h->has_cl ? HTTP_BODY_LENGTH : HTTP_BODY_CHUNKED;
    return 0;
}

/* ---- RFC 8441 extended CONNECT ---- */

/* `:method CONNECT` with `:protocol`, `:scheme`, `:path` and `:authority` (RFC 8441 §4): in
 * the model, what an HTTP/1 upgrade is (GET, HTTP_F_UPGRADE, upgrade = the protocol), with
 * no body: the stream's DATA is the tunnel's, after the switch. */
static int end_extended_connect(struct h2_head *h, struct http_msg *m, struct arena *a,
                                bool end_stream)
{
    const uint8_t all = PS_SCHEME | PS_PATH | PS_AUTHORITY;
    if (m->method != HTTP_M_CONNECT || (h->pseudo & all) != all)
        return malformed(h, ":protocol without CONNECT, :scheme, :path and :authority");
    if (m->path.len == 1 && m->path.p[0] == '*')
        return malformed(h, ":path * in an extended CONNECT");
    if (h->has_cl)
        return malformed(h, "extended CONNECT with content-length");
    m->method = HTTP_M_GET;
    m->method_name = HSTR_LIT("GET");
    m->flags |= HTTP_F_UPGRADE;
    if (join_cookies(m, a) < 0)
        refuse(h, 431, "header list too large");
    return set_body(h, m, true, end_stream);
}

static int end_request(struct h2_head *h, struct http_msg *m, struct arena *a, bool end_stream)
{
    m->is_request = true;
    if (!(h->pseudo & PS_METHOD))
        return malformed(h, "no :method");
    if (h->pseudo & PS_PROTOCOL)
        return end_extended_connect(h, m, a, end_stream);
    if (m->method == HTTP_M_CONNECT) {
        if ((h->pseudo & (PS_SCHEME | PS_PATH)) || !(h->pseudo & PS_AUTHORITY))
            return malformed(h, "CONNECT with :scheme or :path, or without :authority");
    } else if ((h->pseudo & (PS_SCHEME | PS_PATH)) != (PS_SCHEME | PS_PATH)) {
        return malformed(h, "no :scheme or :path");
    } else if (m->path.len == 1 && m->path.p[0] == '*' && m->method != HTTP_M_OPTIONS) {
        return malformed(h, ":path * for a method other than OPTIONS");
    }
    if (join_cookies(m, a) < 0)
        refuse(h, 431, "header list too large");
    return set_body(h, m, false, end_stream);
}

static int end_response(struct h2_head *h, struct http_msg *m, bool end_stream)
{
    if (!(h->pseudo & PS_STATUS))
        return malformed(h, "no :status");
    bool interim = m->status < 200;
    if (interim && end_stream)
        return malformed(h, "interim response ends the stream");
    bool no_body = interim || m->status == 204 || m->status == 304 || h->req_method == HTTP_M_HEAD;
    return set_body(h, m, no_body, end_stream);
}

int h2_head_end(struct h2_head *h, struct http_msg *m, struct arena *a, bool end_stream)
{
    if (h->err && !h->refused)
        return -1;
    m->version = 20;
    int r = 0;
    if (h->kind == H2B_REQUEST)
        r = end_request(h, m, a, end_stream);
    else if (h->kind == H2B_RESPONSE)
        r = end_response(h, m, end_stream);
    else if (!end_stream)
        r = malformed(h, "trailers do not end the stream");
    if (r < 0 || (h->err && !h->refused))
        return -1;
    return h->refused ? 1 : 0;
}

int h2_head_from_nv(struct h2_head *h, struct http_msg *m, struct arena *a, const nghttp2_nv *nv,
                    size_t n, bool end_stream)
{
    for (size_t i = 0; i < n; i++)
        if (h2_head_field(h, m, a, nv[i].name, nv[i].namelen, nv[i].value, nv[i].valuelen) < 0)
            return -1;
    return h2_head_end(h, m, a, end_stream);
}

/* ---- writing ---- */

struct nv_out {
    nghttp2_nv *v;
    size_t n, cap;
    struct arena *a;
};

static void put(struct nv_out *o, struct hstr name, struct hstr value)
{
    o->v[o->n++] = (nghttp2_nv){(uint8_t *)name.p, (uint8_t *)value.p, name.len, value.len,
                                NGHTTP2_NV_FLAG_NONE};
}

/* A name in lowercase: the same bytes when they are, else an arena copy. .p NULL when it
 * is not a token (or out of memory). */
static struct hstr lower_name(struct arena *a, struct hstr n)
{
    bool upper = false;
    for (uint32_t i = 0; i < n.len; i++) {
        if (!(h1_ctype[(uint8_t)n.p[i]] & H1C_TCHAR))
            return (struct hstr){NULL, 0};
        upper |= n.p[i] >= 'A' && n.p[i] <= 'Z';
    }
    if (!n.len || !upper)
        return n.len ? n : (struct hstr){NULL, 0};
    struct hstr l = arena_dup(a, n.p, n.len);
    for (uint32_t i = 0; l.p && i < l.len; i++)
        if (l.p[i] >= 'A' && l.p[i] <= 'Z')
            ((char *)l.p)[i] = (char)(l.p[i] + 32);
    return l;
}

/* Fields an HTTP/2 head never carries as they are: connection-specific ones, the framing
 * (written from the model), Host in a request (its :authority), TE but "trailers". */
static bool dropped(const struct h2_out *o, const struct http_hdr *f)
{
    switch (f->name.len) { /* most fields are none of these: their lengths say so */
    case 2:
        return hstr_ieq_c(f->name, "te") &&
               (o->kind != H2B_REQUEST || !hstr_ieq_c(f->value, "trailers"));
    case 4:
        return o->kind != H2B_RESPONSE && hstr_ieq_c(f->name, "host");
    case 14:
        return hstr_ieq_c(f->name, "content-length") || hstr_ieq_c(f->name, "http2-settings");
    case 7:
    case 10:
    case 16:
    case 17:
        return connection_specific(f->name);
    default:
        return false;
    }
}

static int put_fields(struct nv_out *o, const struct h2_out *h, const struct http_hdr *f,
                      uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (dropped(h, &f[i]))
            continue;
        struct hstr name = lower_name(o->a, f[i].name);
        if (!name.p || !f[i].value.p || !is_value((const uint8_t *)f[i].value.p, f[i].value.len))
            return -1;
        if (hstr_eq(name, HSTR_LIT("te")))
            put(o, name, HSTR_LIT("trailers"));
        else
            put(o, name, f[i].value);
    }
    return 0;
}

/* v in decimal in the arena, at least `width` digits (leading zeros); .p NULL out of
 * memory. By hand: snprintf's format parsing cost more than the rest of a head. */
static struct hstr arena_decimal(struct arena *a, uint64_t v, size_t width)
{
    char d[20];
    size_t n = fmt_u64(d, v), pad = n < width ? width - n : 0;
    char *p = arena_alloc(a, pad + n);
    if (!p)
        return (struct hstr){NULL, 0};
    memset(p, '0', pad);
    memcpy(p + pad, d, n);
    return (struct hstr){p, (uint32_t)(pad + n)};
}

/* path?query in the arena; .p NULL out of memory. */
static struct hstr arena_join_query(struct arena *a, struct hstr path, struct hstr query)
{
    char *p = arena_alloc(a, (size_t)path.len + 1 + query.len);
    if (!p)
        return (struct hstr){NULL, 0};
    memcpy(p, path.p, path.len);
    p[path.len] = '?';
    memcpy(p + path.len + 1, query.p, query.len);
    return (struct hstr){p, path.len + 1 + query.len};
}

static int put_request_pseudo(struct nv_out *o, const struct http_msg *m, const struct h2_out *h)
{
    if (!all_of(m->method_name, H1C_TCHAR))
        return -1;
    if (m->flags & HTTP_F_UPGRADE) { /* RFC 8441 §4: the upgrade as CONNECT with :protocol */
        if (!m->authority.len || !m->upgrade.len || !all_of(m->upgrade, H1C_TCHAR))
            return -1;
        put(o, HSTR_LIT(":method"), HSTR_LIT("CONNECT"));
        put(o, HSTR_LIT(":protocol"), m->upgrade);
    } else {
        put(o, HSTR_LIT(":method"), m->method_name);
    }
    if (m->method == HTTP_M_CONNECT) {
        put(o, HSTR_LIT(":authority"), m->authority);
        return m->authority.len ? 0 : -1;
    }
    put(o, HSTR_LIT(":scheme"), m->scheme.len ? m->scheme : h->scheme);
    if (m->authority.len)
        put(o, HSTR_LIT(":authority"), m->authority);
    struct hstr path = m->path.len ? m->path : HSTR_LIT("/");
    if (m->query.p)
        path = arena_join_query(o->a, path, m->query);
    if (!path.p || !all_of(path, H1C_TARGET) ||
        (m->authority.len && !all_of(m->authority, H1C_HOST)))
        return -1;
    put(o, HSTR_LIT(":path"), path);
    return 0;
}

/* content-length from the framing: a body of known length, or the length a HEAD or 304
 * response describes. */
static int put_length(struct nv_out *o, const struct http_msg *m, const struct h2_out *h)
{
    bool known = m->body == HTTP_BODY_LENGTH;
    if (h->kind == H2B_RESPONSE && h->no_body)
        known = (known || m->content_length) && m->status >= 200 && m->status != 204;
    if (!known)
        return 0;
    struct hstr v = arena_decimal(o->a, m->content_length, 1);
    if (!v.p)
        return -1;
    put(o, HSTR_LIT("content-length"), v);
    return 0;
}

int h2_msg_nv(const struct http_msg *m, const struct h2_out *h, struct arena *a, nghttp2_nv **nv)
{
    bool trailers = h->kind == H2B_TRAILERS;
    struct nv_out o = {NULL, 0, (trailers ? m->ntrailers : m->nhdrs) + 7u, a};
    if (!(o.v = arena_alloc(a, o.cap * sizeof(*o.v))))
        return -1;
    if (h->kind == H2B_REQUEST && put_request_pseudo(&o, m, h) < 0)
        return -1;
    if (h->kind == H2B_RESPONSE) {
        struct hstr st = arena_decimal(a, m->status, 3);
        if (!st.p || m->status < 100 || m->status > 999)
            return -1;
        put(&o, HSTR_LIT(":status"), st);
    }
    if (put_fields(&o, h, trailers ? m->trailers : m->hdrs, trailers ? m->ntrailers : m->nhdrs) <
            0 ||
        (!trailers && put_length(&o, m, h) < 0))
        return -1;
    *nv = o.v;
    return (int)o.n;
}
