/* h1_parse.c — the HTTP/1.1 head parser (RFC 9112 §2-§6 with the field rules of RFC 9110):
 * request and status lines, field lines, and the framing and connection fields folded
 * into the message model. It works line by line and resumes: a complete line is examined
 * once, the unfinished one is only searched for its end and measured against the limits,
 * so the verdict never depends on how the input was split (see h1.h).
 */
#include "http/h1.h"

#include <string.h>

#include "http/msg.h"

/* clang-format off */
const uint8_t h1_ctype[256] = {
    0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0xa2,0x00,0x00,0x00,0x00,0x00,0x00, /* 00 */
    0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00, /* 10 */
    0xa2,0x8f,0x06,0x83,0x8f,0x8f,0x8f,0x8f,0x8e,0x8e,0x8f,0x8f,0x8e,0x8f,0x8f,0x86, /* 20 */
    0xdf,0xdf,0xdf,0xdf,0xdf,0xdf,0xdf,0xdf,0xdf,0xdf,0x8e,0x8e,0x86,0x8e,0x86,0x86, /* 30 */
    0x86,0x9f,0x9f,0x9f,0x9f,0x9f,0x9f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f, /* 40 */
    0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8e,0x06,0x8e,0x87,0x8f, /* 50 */
    0x87,0x9f,0x9f,0x9f,0x9f,0x9f,0x9f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f, /* 60 */
    0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x8f,0x86,0x87,0x86,0x8f,0x00, /* 70 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* 80 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* 90 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* a0 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* b0 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* c0 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* d0 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* e0 */
    0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86,0x86, /* f0 */
};
/* clang-format on */

/* p->state: the phase in the low bits, then what the fields seen so far said. */
enum {
    PH_INIT = 0,   /* nothing examined: the message is not initialised yet */
    PH_START = 1,  /* before the start line (leading empty lines are skipped) */
    PH_FIELDS = 2, /* field lines, up to the empty line */
    PH_DONE = 3,
    PH_MASK = 3,
    ST_HOST = 1 << 2,         /* a Host field was seen */
    ST_CL = 1 << 3,           /* Content-Length seen (value in m->content_length) */
    ST_TE = 1 << 4,           /* Transfer-Encoding seen */
    ST_CHUNKED = 1 << 5,      /* ... and its last coding so far is chunked */
    ST_TE_UNKNOWN = 1 << 6,   /* ... with a coding we do not know (501 at the end) */
    ST_CLOSE = 1 << 7,        /* Connection: close */
    ST_KEEPALIVE = 1 << 8,    /* Connection: keep-alive */
    ST_CONN_UPGRADE = 1 << 9, /* Connection: upgrade */
    ST_CONN_NAMES = 1 << 10,  /* Connection names other fields (kept in hdrs until the end) */
    ST_UPGRADE = 1 << 11,     /* an Upgrade field (value in m->upgrade until the end) */
    ST_EXPECT100 = 1 << 12,   /* Expect: 100-continue */
    ST_EXPECT_BAD = 1 << 13,  /* another expectation (417 at the end) */
};

/* One call's context. */
struct ctx {
    struct h1_parser *p;
    const char *buf;
    const struct h1_limits *lim;
    struct http_msg *m;
    struct arena *a;
    struct h1_error *err;
    enum http_method req_method; /* responses: the request's method */
    bool resp;
};

static int fail(struct ctx *c, uint16_t status, const char *reason)
{
    c->err->status = c->resp ? 502 : status;
    c->err->reason = reason;
    return H1_ERROR;
}

static inline bool cls(char ch, unsigned mask)
{
    return (h1_ctype[(uint8_t)ch] & mask) != 0;
}

/* Skips bytes of class `mask` (one bit) from q; returns the first other byte's address
 * (or e). Four bytes a step while they all belong: one branch instead of four. */
static inline const char *span(const char *q, const char *e, unsigned mask)
{
    const uint8_t *t = h1_ctype;
    while (e - q >= 4 &&
           (t[(uint8_t)q[0]] & t[(uint8_t)q[1]] & t[(uint8_t)q[2]] & t[(uint8_t)q[3]] & mask))
        q += 4;
    while (q < e && cls(*q, mask))
        q++;
    return q;
}

static inline struct hstr slice(const char *s, const char *e)
{
    return (struct hstr){s, (uint32_t)(e - s)};
}

/* Equality with a lowercase literal of letters and '-' (s holds token bytes only: no other
 * token byte ORed with 0x20 gives a lowercase letter or '-'). */
static bool lc_eq(const char *s, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != lit[i])
            return false;
    return true;
}

static bool hstr_lc_eq(struct hstr s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && lc_eq(s.p, lit, n);
}

/* The reason for an unexpected byte, where `what` is the generic one. */
static const char *bad_byte(char ch, const char *what)
{
    if (ch == '\r')
        return "bare CR";
    if (ch == '\0')
        return "NUL byte";
    return what;
}

/* Next element of a comma-separated list in [*q, e), OWS trimmed; empty elements are
 * skipped (RFC 9110 §5.6.1.2). Returns false at the end of the list. */
static bool list_next(const char **q, const char *e, struct hstr *el)
{
    const char *s = *q;
    while (s < e && (*s == ',' || *s == ' ' || *s == '\t'))
        s++;
    if (s == e)
        return false;
    const char *t = s;
    while (t < e && *t != ',')
        t++;
    *q = t;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    *el = slice(s, t);
    return true;
}

static bool is_token(struct hstr s)
{
    return s.len > 0 && span(s.p, s.p + s.len, H1C_TCHAR) == s.p + s.len;
}

/* ---- the start line ---- */

/* Whether the 8 bytes at q are all request-target bytes: none below 0x21, none 0x7f or
 * '#' (the word tricks of block_is_value below; bytes >= 0x80 pass). */
static inline bool block_is_target(const char *q)
{
    const uint64_t ones = 0x0101010101010101ull, highs = ones << 7;
    uint64_t x, d, h;
    memcpy(&x, q, 8);
    d = x ^ (ones * 0x7f);
    h = x ^ (ones * '#');
    return ((((x - ones * 0x21) & ~x) | ((d - ones) & ~d) | ((h - ones) & ~h)) & highs) == 0;
}

static const char *span_target(const char *q, const char *e)
{
    while (e - q >= 8 && block_is_target(q))
        q += 8;
    return span(q, e, H1C_TARGET);
}

static enum http_method method_of(const char *s, size_t n)
{
    switch (n) {
    case 3:
        if (!memcmp(s, "GET", 3))
            return HTTP_M_GET;
        return !memcmp(s, "PUT", 3) ? HTTP_M_PUT : HTTP_M_OTHER;
    case 4:
        if (!memcmp(s, "POST", 4))
            return HTTP_M_POST;
        return !memcmp(s, "HEAD", 4) ? HTTP_M_HEAD : HTTP_M_OTHER;
    case 5:
        if (!memcmp(s, "PATCH", 5))
            return HTTP_M_PATCH;
        return !memcmp(s, "TRACE", 5) ? HTTP_M_TRACE : HTTP_M_OTHER;
    case 6:
        return !memcmp(s, "DELETE", 6) ? HTTP_M_DELETE : HTTP_M_OTHER;
    case 7:
        if (!memcmp(s, "OPTIONS", 7))
            return HTTP_M_OPTIONS;
        return !memcmp(s, "CONNECT", 7) ? HTTP_M_CONNECT : HTTP_M_OTHER;
    default:
        return HTTP_M_OTHER;
    }
}

/* "HTTP/d.d" at v (8 bytes): 10 or 11, 0 for another version, -1 when not a version. */
static int parse_version(const char *v)
{
    if (memcmp(v, "HTTP/", 5) != 0 || !cls(v[5], H1C_DIGIT) || v[6] != '.' || !cls(v[7], H1C_DIGIT))
        return -1;
    if (v[5] == '1' && (v[7] == '0' || v[7] == '1'))
        return v[7] == '1' ? 11 : 10;
    return 0;
}

/* Checks an authority ("host[:port]", host a reg-name or an IP-literal in brackets; no
 * userinfo) and returns where its host ends (e when there is no port), or NULL. */
static const char *check_authority(const char *s, const char *e, bool need_port)
{
    const char *q;
    if (s < e && *s == '[') {
        for (q = s + 1; q < e && *q != ']'; q++)
            if (!cls(*q, H1C_HOST) || *q == '[')
                return NULL;
        if (q == e || q == s + 1)
            return NULL;
        q++;
    } else {
        for (q = s; q < e && *q != ':'; q++)
            if (!cls(*q, H1C_HOST) || *q == '[' || *q == ']')
                return NULL;
        if (q == s)
            return NULL;
    }
    const char *host_end = q;
    if (q == e)
        return need_port ? NULL : host_end;
    if (*q++ != ':' || (need_port && q == e) || e - q > 5)
        return NULL;
    return span(q, e, H1C_DIGIT) == e ? host_end : NULL;
}

/* RFC 9110 §4.2.3: the same host (case-insensitively) and the same port, where none (or
 * an empty one) stands for the scheme's default. Both are valid authorities. */
static bool authority_equiv(struct hstr a, struct hstr b, const char *default_port)
{
    const char *ah = check_authority(a.p, a.p + a.len, false);
    const char *bh = check_authority(b.p, b.p + b.len, false);
    struct hstr ap = slice(ah, a.p + a.len), bp = slice(bh, b.p + b.len);
    if (!hstr_ieq(slice(a.p, ah), slice(b.p, bh)))
        return false;
    if (ap.len > 0) /* skip the ':' */
        ap = slice(ap.p + 1, ap.p + ap.len);
    if (bp.len > 0)
        bp = slice(bp.p + 1, bp.p + bp.len);
    if (ap.len == 0)
        ap = hstr_c(default_port);
    if (bp.len == 0)
        bp = hstr_c(default_port);
    return hstr_eq(ap, bp);
}

/* "/path?query": the query's .p is NULL when there is no '?'. */
static void split_path(struct http_msg *m, const char *s, const char *e)
{
    const char *qm = memchr(s, '?', (size_t)(e - s));
    m->path = slice(s, qm ? qm : e);
    m->query = qm ? slice(qm + 1, e) : (struct hstr){NULL, 0};
}

/* absolute-form "http[s]://authority[/path][?query]" (RFC 9112 §3.2.2). */
static int parse_absolute(struct ctx *c, const char *s, const char *e)
{
    struct http_msg *m = c->m;
    const char *q = s;
    while (q < e && ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z'))
        q++;
    if (e - q < 3 || memcmp(q, "://", 3) != 0)
        return fail(c, 400, "bad request target");
    if (q - s == 4 && lc_eq(s, "http", 4))
        m->scheme = HSTR_LIT("http");
    else if (q - s == 5 && lc_eq(s, "https", 5))
        m->scheme = HSTR_LIT("https");
    else
        return fail(c, 400, "unsupported scheme");
    const char *auth = q + 3;
    for (q = auth; q < e && *q != '/' && *q != '?'; q++)
        ;
    if (!check_authority(auth, q, false))
        return fail(c, 400, "bad authority in request target");
    m->authority = slice(auth, q);
    m->flags |= HTTP_F_ABSOLUTE;
    if (q < e && *q == '/') {
        split_path(m, q, e);
    } else {
        bool star = q == e && m->method == HTTP_M_OPTIONS;
        m->path = star ? HSTR_LIT("*") : HSTR_LIT("/");
        m->query = q < e ? slice(q + 1, e) : (struct hstr){NULL, 0};
    }
    return 0;
}

/* The request-target [s, e), whose bytes are already checked, by form (RFC 9112 §3.2). */
static int parse_target(struct ctx *c, const char *s, const char *e)
{
    struct http_msg *m = c->m;
    if (*s == '/') {
        if (m->method == HTTP_M_CONNECT)
            return fail(c, 400, "CONNECT without authority-form");
        split_path(m, s, e);
        return 0;
    }
    if (*s == '*' && e - s == 1) {
        if (m->method != HTTP_M_OPTIONS)
            return fail(c, 400, "asterisk-form without OPTIONS");
        m->path = slice(s, e);
        return 0;
    }
    if (m->method == HTTP_M_CONNECT) {
        if (!check_authority(s, e, true))
            return fail(c, 400, "bad CONNECT authority");
        m->authority = slice(s, e);
        return 0;
    }
    return parse_absolute(c, s, e);
}

/* "method SP request-target SP HTTP-version" in [s, e) (without the CRLF). */
static int parse_request_line(struct ctx *c, const char *s, const char *e)
{
    struct http_msg *m = c->m;
    const char *q = span(s, e, H1C_TCHAR);
    if (q == e || *q != ' ' || q == s)
        return fail(c, 400, q == e ? "bad request line" : bad_byte(*q, "bad method"));
    m->method_name = slice(s, q);
    m->method = method_of(s, (size_t)(q - s));
    const char *t = ++q;
    q = span_target(q, e);
    if (q == e || *q != ' ' || q == t)
        return fail(c, 400, q == e ? "bad request line" : bad_byte(*q, "bad request target"));
    if (e - (q + 1) != 8)
        return fail(c, 400, "bad request line");
    int v = parse_version(q + 1);
    if (v < 0)
        return fail(c, 400, "bad HTTP version");
    if (v == 0)
        return fail(c, 505, "unsupported HTTP version");
    m->version = (uint8_t)v;
    return parse_target(c, t, q);
}

/* "HTTP-version SP 3DIGIT [SP reason]" in [s, e); "HTTP/1.1 200" is accepted too. */
static int parse_status_line(struct ctx *c, const char *s, const char *e)
{
    struct http_msg *m = c->m;
    if (e - s < 12 || s[8] != ' ')
        return fail(c, 502, "bad status line");
    int v = parse_version(s);
    if (v <= 0)
        return fail(c, 502, v < 0 ? "bad HTTP version" : "unsupported HTTP version");
    const char *d = s + 9;
    if (!cls(d[0], H1C_DIGIT) || !cls(d[1], H1C_DIGIT) || !cls(d[2], H1C_DIGIT))
        return fail(c, 502, "bad status code");
    unsigned status = (unsigned)(d[0] - '0') * 100 + (unsigned)(d[1] - '0') * 10 + (d[2] - '0');
    if (status < 100 || status > 599)
        return fail(c, 502, "bad status code");
    const char *r = d + 3;
    if (r < e && *r++ != ' ')
        return fail(c, 502, "bad status code");
    const char *q = h1_span_value(r, e);
    if (q != e)
        return fail(c, 502, bad_byte(*q, "CTL in reason phrase"));
    m->version = (uint8_t)v;
    m->status = (uint16_t)status;
    m->reason = slice(r, e);
    return 0;
}

/* ---- field lines ---- */

/* Whether the 8 bytes at q are all field-value bytes but HTAB: none below 0x20, none 0x7f
 * ("has less than" and "has zero" word tricks; bytes >= 0x80 pass). */
static inline bool block_is_value(const char *q)
{
    const uint64_t ones = 0x0101010101010101ull, highs = ones << 7;
    uint64_t x, y;
    memcpy(&x, q, 8);
    y = x ^ (ones * 0x7f);
    return ((((x - ones * 0x20) & ~x) | ((y - ones) & ~y)) & highs) == 0;
}

const char *h1_span_value(const char *q, const char *e)
{
    for (;;) {
        while (e - q >= 8 && block_is_value(q))
            q += 8;
        const char *stop = e - q >= 8 ? q + 8 : e;
        while (q < stop && cls(*q, H1C_VALUE))
            q++;
        if (q < stop || q == e)
            return q;
    }
}

const char *h1_field_line(const char *line, size_t len, struct hstr *name, struct hstr *value)
{
    const char *e = line + len, *q = span(line, e, H1C_TCHAR);
    if (q == e)
        return q == line ? "empty field name" : "missing colon";
    if (*q != ':') {
        if (*q == ' ' || *q == '\t')
            return q == line ? "obs-fold" : "whitespace before colon";
        return bad_byte(*q, "bad field name");
    }
    if (q == line)
        return "empty field name";
    *name = slice(line, q);
    name->known = HSTR_TOKEN;
    const char *v = q + 1;
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    q = h1_span_value(v, e);
    if (q != e)
        return bad_byte(*q, "CTL in field value");
    while (q > v && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    *value = slice(v, q);
    value->known = HSTR_VALUE;
    return NULL;
}

/* Fields the codec consumes, by name. */
enum field_kind {
    FK_OTHER,
    FK_HOST,
    FK_CONTENT_LENGTH,
    FK_TRANSFER_ENCODING,
    FK_CONNECTION,
    FK_HOP, /* Keep-Alive, TE, Proxy-Connection: dropped */
    FK_UPGRADE,
    FK_EXPECT,
};

static enum field_kind field_kind(struct hstr n)
{
    switch (n.len) {
    case 2:
        return lc_eq(n.p, "te", 2) ? FK_HOP : FK_OTHER;
    case 4:
        return lc_eq(n.p, "host", 4) ? FK_HOST : FK_OTHER;
    case 6:
        return lc_eq(n.p, "expect", 6) ? FK_EXPECT : FK_OTHER;
    case 7:
        return lc_eq(n.p, "upgrade", 7) ? FK_UPGRADE : FK_OTHER;
    case 10:
        if (lc_eq(n.p, "connection", 10))
            return FK_CONNECTION;
        return lc_eq(n.p, "keep-alive", 10) ? FK_HOP : FK_OTHER;
    case 14:
        return lc_eq(n.p, "content-length", 14) ? FK_CONTENT_LENGTH : FK_OTHER;
    case 16:
        return lc_eq(n.p, "proxy-connection", 16) ? FK_HOP : FK_OTHER;
    case 17:
        return lc_eq(n.p, "transfer-encoding", 17) ? FK_TRANSFER_ENCODING : FK_OTHER;
    default:
        return FK_OTHER;
    }
}

/* Content-Length = 1#DIGIT with all elements equal (RFC 9110 §8.6); at most INT64_MAX. */
static int on_content_length(struct ctx *c, struct hstr v)
{
    struct h1_parser *p = c->p;
    const char *q = v.p, *e = v.p + v.len;
    struct hstr el;
    bool any = false;
    if (p->state & ST_TE)
        return fail(c, 400, "both Content-Length and Transfer-Encoding");
    while (list_next(&q, e, &el)) {
        uint64_t n = 0;
        for (uint32_t i = 0; i < el.len; i++) {
            unsigned d = (unsigned)(el.p[i] - '0');
            if (d > 9)
                return fail(c, 400, "bad Content-Length");
            if (n > ((uint64_t)INT64_MAX - d) / 10)
                return fail(c, 400, "Content-Length overflow");
            n = n * 10 + d;
        }
        if ((p->state & ST_CL) && n != c->m->content_length)
            return fail(c, 400, "different Content-Lengths");
        c->m->content_length = n;
        p->state |= ST_CL;
        any = true;
    }
    return any ? 0 : fail(c, 400, "empty Content-Length");
}

/* Transfer-Encoding: a list of codings in which chunked may only be last, and once
 * (RFC 9112 §6.1); a coding we do not know is 501 at the end of the head. */
static int on_transfer_encoding(struct ctx *c, struct hstr v)
{
    struct h1_parser *p = c->p;
    const char *q = v.p, *e = v.p + v.len;
    struct hstr el;
    bool any = false;
    if (p->state & ST_CL)
        return fail(c, 400, "both Content-Length and Transfer-Encoding");
    if (c->m->version == 10)
        return fail(c, 400, "Transfer-Encoding in HTTP/1.0");
    p->state |= ST_TE;
    while (list_next(&q, e, &el)) {
        if (p->state & ST_CHUNKED)
            return fail(c, 400, "chunked is not the last coding");
        const char *t = span(el.p, el.p + el.len, H1C_TCHAR);
        if (t == el.p)
            return fail(c, 400, "bad Transfer-Encoding");
        bool chunked = t - el.p == 7 && lc_eq(el.p, "chunked", 7);
        if (chunked && t != el.p + el.len)
            return fail(c, 400, "chunked with parameters");
        if (chunked)
            p->state |= ST_CHUNKED;
        else
            p->state |= ST_TE_UNKNOWN;
        any = true;
    }
    return any ? 0 : fail(c, 400, "empty Transfer-Encoding");
}

/* Connection options (RFC 9110 §7.6.1): close, keep-alive and upgrade set flags; any other
 * names a hop-by-hop field, removed at the end, so the field is kept in hdrs until then. */
static int on_connection(struct ctx *c, struct hstr name, struct hstr v)
{
    struct h1_parser *p = c->p;
    const char *q = v.p, *e = v.p + v.len;
    struct hstr el;
    bool names = false;
    while (list_next(&q, e, &el)) {
        if (!is_token(el))
            return fail(c, 400, "bad Connection");
        if (hstr_lc_eq(el, "close"))
            p->state |= ST_CLOSE;
        else if (hstr_lc_eq(el, "keep-alive"))
            p->state |= ST_KEEPALIVE;
        else if (hstr_lc_eq(el, "upgrade"))
            p->state |= ST_CONN_UPGRADE;
        else
            names = true;
    }
    if (!names)
        return 0;
    p->state |= ST_CONN_NAMES;
    return http_hdr_add(c->m, c->a, name, v) == 0 ? 0 : fail(c, 500, "out of memory");
}

/* Host: one, a valid authority; compared with an absolute-form target's (RFC 9112 §3.2.2);
 * a CONNECT's authority is its target. */
static int on_host(struct ctx *c, struct hstr v)
{
    struct http_msg *m = c->m;
    if (c->p->state & ST_HOST)
        return fail(c, 400, "duplicate Host");
    c->p->state |= ST_HOST;
    if (!check_authority(v.p, v.p + v.len, false))
        return fail(c, 400, v.len ? "bad Host" : "empty Host");
    if (m->flags & HTTP_F_ABSOLUTE) {
        const char *port = m->scheme.len == 5 ? "443" : "80";
        if (!authority_equiv(m->authority, v, port))
            return fail(c, 400, "Host differs from the target's authority");
    } else if (m->method != HTTP_M_CONNECT) {
        m->authority = v;
    }
    return 0;
}

static int on_field(struct ctx *c, struct hstr name, struct hstr value)
{
    struct h1_parser *p = c->p;
    switch (field_kind(name)) {
    case FK_HOST:
        if (c->resp)
            break;
        return on_host(c, value);
    case FK_CONTENT_LENGTH:
        return on_content_length(c, value);
    case FK_TRANSFER_ENCODING:
        return on_transfer_encoding(c, value);
    case FK_CONNECTION:
        return on_connection(c, name, value);
    case FK_HOP:
        return 0;
    case FK_UPGRADE: /* an empty one names no protocol: as if absent */
        if (value.len == 0)
            return 0;
        if (p->state & ST_UPGRADE)
            return fail(c, 400, "duplicate Upgrade");
        p->state |= ST_UPGRADE;
        c->m->upgrade = value;
        return 0;
    case FK_EXPECT:
        if (c->resp)
            break;
        p->state |= hstr_ieq_c(value, "100-continue") ? ST_EXPECT100 : ST_EXPECT_BAD;
        return 0;
    case FK_OTHER:
        break;
    }
    struct http_msg *m = c->m;
    if (m->nhdrs < m->hdr_cap) { /* the common case, without a call */
        m->hdrs[m->nhdrs++] = (struct http_hdr){name, value};
        return 0;
    }
    return http_hdr_add(m, c->a, name, value) == 0 ? 0 : fail(c, 500, "out of memory");
}

/* Whether the comma list `list` holds the token `name` (case-insensitively). */
static bool list_has(struct hstr list, struct hstr name)
{
    const char *q = list.p, *e = list.p + list.len;
    struct hstr el;
    while (list_next(&q, e, &el))
        if (hstr_ieq(el, name))
            return true;
    return false;
}

/* Removes the Connection fields and every field they name (RFC 9110 §7.6.1). A field to
 * drop is first marked with an empty name (no field has one) while the lists are intact. */
static void drop_connection_named(struct http_msg *m)
{
    static const struct hstr conn = HSTR_LIT("connection");
    for (uint32_t i = 0; i < m->nhdrs; i++) {
        if (hstr_ieq(m->hdrs[i].name, conn))
            continue;
        for (uint32_t j = 0; j < m->nhdrs; j++)
            if (hstr_ieq(m->hdrs[j].name, conn) && list_has(m->hdrs[j].value, m->hdrs[i].name)) {
                m->hdrs[i].name.len = 0;
                break;
            }
    }
    uint32_t out = 0;
    for (uint32_t i = 0; i < m->nhdrs; i++)
        if (m->hdrs[i].name.len && !hstr_ieq(m->hdrs[i].name, conn))
            m->hdrs[out++] = m->hdrs[i];
    m->nhdrs = out;
}

/* The flags every message gets from its version and Connection options. */
static void connection_flags(struct ctx *c)
{
    struct http_msg *m = c->m;
    uint32_t st = c->p->state;
    if (st & ST_CONN_NAMES)
        drop_connection_named(m);
    if (m->version == 10) {
        m->flags |= HTTP_F_HTTP10;
        if ((st & ST_KEEPALIVE) && !(st & ST_CLOSE))
            m->flags |= HTTP_F_KEEPALIVE10;
        else
            m->flags |= HTTP_F_CLOSE;
    } else if (st & ST_CLOSE) {
        m->flags |= HTTP_F_CLOSE;
    }
}

static int finish_request(struct ctx *c)
{
    struct http_msg *m = c->m;
    uint32_t st = c->p->state;
    if (m->version == 11 && !(st & ST_HOST))
        return fail(c, 400, "missing Host");
    if (st & ST_TE_UNKNOWN)
        return fail(c, 501, "unknown transfer coding");
    if (st & ST_EXPECT_BAD)
        return fail(c, 417, "unsupported expectation");
    connection_flags(c);
    /* Upgrade and 100-continue mean nothing in HTTP/1.0 (RFC 9110 §7.8, §10.1.1) */
    if ((st & ST_UPGRADE) && (st & ST_CONN_UPGRADE) && m->version == 11)
        m->flags |= HTTP_F_UPGRADE;
    else
        m->upgrade = (struct hstr){NULL, 0};
    if ((st & ST_EXPECT100) && m->version == 11)
        m->flags |= HTTP_F_EXPECT_100;
    m->body = (st & ST_CHUNKED) ? HTTP_BODY_CHUNKED
              : (st & ST_CL)    ? HTTP_BODY_LENGTH
                                : HTTP_BODY_NONE;
    return 0;
}

/* RFC 9112 §6.3: no body after 1xx, 204, 304, for HEAD, or a 2xx to CONNECT. */
static int finish_response(struct ctx *c)
{
    struct http_msg *m = c->m;
    uint32_t st = c->p->state;
    unsigned s = m->status;
    if (st & ST_TE_UNKNOWN)
        return fail(c, 502, "unknown transfer coding");
    connection_flags(c);
    if (s == 101 && (st & ST_UPGRADE))
        m->flags |= HTTP_F_UPGRADE;
    else
        m->upgrade = (struct hstr){NULL, 0};
    if (s < 200 || s == 204 || s == 304 || c->req_method == HTTP_M_HEAD ||
        (c->req_method == HTTP_M_CONNECT && s < 300)) {
        m->body = HTTP_BODY_NONE;
    } else if (st & ST_CHUNKED) {
        m->body = HTTP_BODY_CHUNKED;
    } else if (st & ST_CL) {
        m->body = HTTP_BODY_LENGTH;
    } else {
        m->body = HTTP_BODY_UNTIL_CLOSE;
        m->flags |= HTTP_F_CLOSE;
    }
    return 0;
}

/* ---- lines ---- */

/* The complete line [s, lf] before or at the start line; `max` is the longest it may be
 * (max_line, or less so that it fits in max_head). Returns 0 or H1_ERROR. */
static int start_line(struct ctx *c, const char *s, const char *lf, size_t max)
{
    size_t n = (size_t)(lf - s);
    bool cr = n > 0 && lf[-1] == '\r';
    if (n - cr > max)
        return fail(c, 414, c->resp ? "status line too long" : "request line too long");
    if (!cr)
        return fail(c, 400, "bare LF");
    if (n == 1)
        return 0; /* an empty line before the start line (RFC 9112 §2.2) */
    int r = c->resp ? parse_status_line(c, s, lf - 1) : parse_request_line(c, s, lf - 1);
    if (r == 0)
        c->p->state = (c->p->state & ~(uint32_t)PH_MASK) | PH_FIELDS;
    return r;
}

/* The complete field line [s, lf], or the empty line ending the head. Returns 0,
 * H1_DONE or H1_ERROR. */
static int field_line(struct ctx *c, const char *s, const char *lf)
{
    struct hstr name, value;
    if (lf == s || lf[-1] != '\r')
        return fail(c, 400, "bare LF");
    const char *e = lf - 1;
    if (e == s) {
        int r = c->resp ? finish_response(c) : finish_request(c);
        return r == 0 ? H1_DONE : r;
    }
    if (++c->p->nhdrs > c->lim->max_headers)
        return fail(c, 431, "too many fields");
    const char *why = h1_field_line(s, (size_t)(e - s), &name, &value);
    if (why)
        return fail(c, 400, why);
    return on_field(c, name, value);
}

/* The line-by-line loop shared by requests and responses. The line starting at p->pos is
 * searched for its LF from p->scan, within the window where it may end: a line not ended
 * there is too long, whatever follows, which keeps the verdict independent of splits. */
static int parse_head(struct ctx *c, size_t len, size_t *head_len)
{
    struct h1_parser *p = c->p;
    const struct h1_limits *lim = c->lim;
    if ((p->state & PH_MASK) == PH_INIT) {
        memset(c->m, 0, sizeof(*c->m));
        c->m->is_request = !c->resp;
        p->state = PH_START;
        p->pos = p->scan = p->nhdrs = 0;
    }
    for (;;) {
        uint32_t phase = p->state & PH_MASK;
        size_t start = p->pos, max = 0, wend = lim->max_head;
        if (phase == PH_DONE) {
            *head_len = p->pos;
            return H1_DONE;
        }
        if (phase == PH_START) {
            if (start + 2 > lim->max_head)
                return fail(c, 431, "head too large");
            max = lim->max_head - start - 2;
            if (lim->max_line < max)
                max = lim->max_line;
            wend = start + max + 2;
        }
        size_t end = len < wend ? len : wend;
        const char *lf = p->scan < end ? memchr(c->buf + p->scan, '\n', end - p->scan) : NULL;
        if (!lf) {
            if (p->scan < end)
                p->scan = (uint32_t)end;
            if (phase == PH_START && len > start && len - start - (c->buf[len - 1] == '\r') > max)
                return fail(c, 414, c->resp ? "status line too long" : "request line too long");
            if (phase != PH_START && len >= lim->max_head)
                return fail(c, 431, "head too large");
            return H1_AGAIN;
        }
        int r = phase == PH_START ? start_line(c, c->buf + start, lf, max)
                                  : field_line(c, c->buf + start, lf);
        if (r == H1_ERROR)
            return r;
        p->pos = p->scan = (uint32_t)(lf - c->buf + 1);
        if (r == H1_DONE)
            p->state = (p->state & ~(uint32_t)PH_MASK) | PH_DONE;
    }
}

int h1_parse_request(struct h1_parser *p, const char *buf, size_t len, const struct h1_limits *lim,
                     struct http_msg *m, struct arena *a, size_t *head_len, struct h1_error *err)
{
    struct ctx c = {p, buf, lim, m, a, err, HTTP_M_OTHER, false};
    return parse_head(&c, len, head_len);
}

int h1_parse_response(struct h1_parser *p, const char *buf, size_t len, const struct h1_limits *lim,
                      enum http_method req_method, struct http_msg *m, struct arena *a,
                      size_t *head_len, struct h1_error *err)
{
    struct ctx c = {p, buf, lim, m, a, err, req_method, true};
    return parse_head(&c, len, head_len);
}

int h1_head_parse(struct h1_head *h, bool response, const char *buf, size_t len,
                  const struct h1_limits *lim, size_t *head_len, struct h1_error *err)
{
    struct h1_parser p;
    arena_init_buf(&h->a, h->first, sizeof(h->first), 4 * (size_t)lim->max_head);
    h1_parser_init(&p);
    if (response)
        return h1_parse_response(&p, buf, len, lim, HTTP_M_GET, &h->m, &h->a, head_len, err);
    return h1_parse_request(&p, buf, len, lim, &h->m, &h->a, head_len, err);
}

void h1_head_release(struct h1_head *h)
{
    arena_free(&h->a);
}
