/* fuzz_h1.c — libFuzzer target for the HTTP/1.1 codec (src/http/h1_*.c). The input is read
 * as a client's stream (pipelined request heads and bodies, as a session reads them) and
 * as a server's answer, with large and with small input-derived limits. Each stream is
 * read twice: whole, and arriving in pieces from an input-derived cut (the bytes not yet
 * arrived are poisoned for ASan); the digests of both must match. Every head parsed is
 * written back and must parse to the same model, and every chunked body re-encoded must
 * decode to the same data and trailers. abort() on any mismatch.
 */
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"
#include "http/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_MESSAGES 32

static const struct h1_limits big = {1u << 20, 1u << 20, 1u << 20};

/* ---- digests: what a reading produced, independent of how its input arrived ---- */

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix_u(uint64_t h, uint64_t v)
{
    return mix(h, &v, sizeof(v));
}

static uint64_t mix_s(uint64_t h, struct hstr s)
{
    h = mix_u(h, s.p ? s.len : UINT64_MAX);
    return s.len ? mix(h, s.p, s.len) : h;
}

static uint64_t mix_msg(uint64_t h, const struct http_msg *m)
{
    h = mix_u(h, (uint64_t)m->version << 40 | (uint64_t)m->flags << 8 | m->method);
    h = mix_u(h, (uint64_t)m->status << 8 | m->body);
    h = mix_u(h, m->content_length);
    h = mix_s(mix_s(mix_s(h, m->method_name), m->scheme), m->authority);
    h = mix_s(mix_s(mix_s(mix_s(h, m->path), m->query), m->upgrade), m->reason);
    for (uint32_t i = 0; i < m->nhdrs; i++)
        h = mix_s(mix_s(h, m->hdrs[i].name), m->hdrs[i].value);
    return mix_u(h, m->nhdrs);
}

static uint64_t mix_err(uint64_t h, const struct h1_error *e)
{
    return mix(mix_u(h, e->status), e->reason, strlen(e->reason));
}

/* ---- what every parsed head must satisfy ---- */

/* Framing and connection fields never reach hdrs (Host and Expect only in responses), and
 * every name is a token and every value clean: nothing can be smuggled through the model. */
static void check_invariants(const struct http_msg *m)
{
    static const char *const consumed[] = {
        "content-length",   "transfer-encoding", "connection", "keep-alive", "te",
        "proxy-connection", "upgrade",           "host",       "expect"};
    size_t n = sizeof(consumed) / sizeof(consumed[0]) - (m->is_request ? 0 : 2);
    for (uint32_t i = 0; i < m->nhdrs; i++) {
        struct hstr name = m->hdrs[i].name, value = m->hdrs[i].value;
        for (size_t k = 0; k < n; k++)
            REQUIRE(!hstr_ieq_c(name, consumed[k]));
        REQUIRE(name.len > 0);
        for (uint32_t k = 0; k < name.len; k++)
            REQUIRE(h1_ctype[(uint8_t)name.p[k]] & H1C_TCHAR);
        REQUIRE(h1_span_value(value.p, value.p + value.len) == value.p + value.len);
        REQUIRE(value.len == 0 || (value.p[0] != ' ' && value.p[value.len - 1] != ' '));
    }
    REQUIRE(m->body != HTTP_BODY_LENGTH || m->content_length <= INT64_MAX);
    REQUIRE(m->is_request ? m->body != HTTP_BODY_UNTIL_CLOSE
                          : m->status >= 100 && m->status <= 599);
    REQUIRE(m->version == 10 || m->version == 11);
    REQUIRE(!(m->flags & HTTP_F_UPGRADE) == !m->upgrade.p);
    if (m->is_request && m->version == 11)
        REQUIRE(m->authority.len > 0);
}

/* ---- round trips ---- */

static bool same_str(struct hstr a, struct hstr b)
{
    return (a.p == NULL) == (b.p == NULL) && hstr_eq(a, b);
}

static bool same_fields(const struct http_msg *x, const struct http_msg *y)
{
    if (x->nhdrs != y->nhdrs || x->body != y->body)
        return false;
    for (uint32_t i = 0; i < x->nhdrs; i++)
        if (!hstr_eq(x->hdrs[i].name, y->hdrs[i].name) ||
            !hstr_eq(x->hdrs[i].value, y->hdrs[i].value))
            return false;
    return true;
}

/* A parsed request written for a server parses back to the same model (but for what the
 * writer changes by design: origin-form, HTTP/1.1, Expect consumed, close lost to upgrade). */
static void check_request_round_trip(const struct http_msg *m)
{
    static char out[(1u << 20) + 4096];
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m2;
    struct arena a;
    size_t hl;
    if (m->authority.len == 0) /* an HTTP/1.0 request without Host: not HTTP/1.1 */
        return;
    ssize_t n = h1_write_request(m, m->flags & HTTP_F_CLOSE, out, sizeof(out));
    REQUIRE(n > 0);
    arena_init(&a, 0);
    h1_parser_init(&p);
    REQUIRE(h1_parse_request(&p, out, (size_t)n, &big, &m2, &a, &hl, &err) == H1_DONE);
    REQUIRE(hl == (size_t)n);
    uint32_t keep = HTTP_F_UPGRADE | (m->flags & HTTP_F_UPGRADE ? 0 : HTTP_F_CLOSE);
    REQUIRE((m->flags & keep) == (m2.flags & keep) && m2.version == 11);
    REQUIRE(m->method == m2.method && hstr_eq(m->method_name, m2.method_name));
    REQUIRE(hstr_eq(m->authority, m2.authority) && hstr_eq(m->path, m2.path));
    REQUIRE(same_str(m->query, m2.query) && same_str(m->upgrade, m2.upgrade));
    REQUIRE(same_fields(m, &m2) && m->content_length == m2.content_length);
    arena_free(&a);
}

/* A parsed response written for an HTTP/1.1 client parses back to the same model. */
static void check_response_round_trip(const struct http_msg *m, enum http_method method)
{
    static char out[(1u << 20) + 4096];
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m2;
    struct arena a;
    size_t hl;
    enum h1_write_framing f = m->body == HTTP_BODY_NONE ? H1W_NO_BODY : H1W_AS_MSG;
    ssize_t n = h1_write_response(m, f, 11, m->flags & HTTP_F_CLOSE, out, sizeof(out));
    REQUIRE(n > 0);
    arena_init(&a, 0);
    h1_parser_init(&p);
    REQUIRE(h1_parse_response(&p, out, (size_t)n, &big, method, &m2, &a, &hl, &err) == H1_DONE);
    REQUIRE(hl == (size_t)n && m->status == m2.status);
    REQUIRE(hstr_eq(m->reason.len ? m->reason : hstr_c(http_reason(m->status)), m2.reason));
    uint32_t keep = HTTP_F_UPGRADE | (m->status == 101 ? 0 : HTTP_F_CLOSE);
    REQUIRE((m->flags & keep) == (m2.flags & keep) && same_str(m->upgrade, m2.upgrade));
    REQUIRE(same_fields(m, &m2));
    if (m->status >= 200 && m->status != 204)
        REQUIRE(m->content_length == m2.content_length);
    arena_free(&a);
}

/* A decoded chunked body re-encoded as one chunk and its trailers decodes the same. */
static void check_chunked_round_trip(const char *body, size_t blen, const struct h1_body *b)
{
    size_t cap = blen + b->trailer_len + 64;
    char *buf = malloc(cap);
    struct h1_body *d = malloc(sizeof(*d));
    struct h1_error err;
    const char *data;
    size_t n = 0, off = 0, c, dl, got = 0;
    int r;
    REQUIRE(buf && d);
    if (blen) {
        n = h1_write_chunk_head(blen, buf);
        memcpy(buf + n, body, blen);
        memcpy(buf + n + blen, "\r\n", 2);
        n += blen + 2;
    }
    struct http_msg tm = {0};
    struct arena ta;
    arena_init(&ta, 0);
    h1_body_trailers(b, &tm, &ta);
    ssize_t k = h1_write_last_chunk(&tm, buf + n, cap - n);
    REQUIRE(k > 0);
    size_t last_at = n;
    n += (size_t)k;
    h1_body_init(d, HTTP_BODY_CHUNKED, 0);
    while ((r = h1_body_step(d, buf + off, n - off, true, &c, &data, &dl, &err)) == H1B_DATA) {
        REQUIRE(got + dl <= blen && memcmp(data, body + got, dl) == 0);
        got += dl;
        off += c;
    }
    REQUIRE(r == H1B_DONE && off + c == n && got == blen);
    /* the trailers as decoded again write the same last chunk (a fixed point) */
    struct http_msg tm2 = {0};
    h1_body_trailers(d, &tm2, &ta);
    char *again = malloc(cap);
    REQUIRE(again);
    ssize_t k2 = h1_write_last_chunk(&tm2, again, cap);
    REQUIRE(k2 == k && memcmp(again, buf + last_at, (size_t)k) == 0);
    free(again);
    arena_free(&ta);
    free(d);
    free(buf);
}

/* ---- reading a stream the way a session does ---- */

/* The input as it arrives: buf[0..avail) has arrived, the rest is poisoned until it does.
 * `step` bytes arrive at a time (0: all the rest at once). */
struct stream {
    const char *buf;
    size_t size, avail, step;
};

/* More input arrives; false when there is no more. */
static bool arrive(struct stream *s)
{
    if (s->avail == s->size)
        return false;
    size_t n = s->step && s->step < s->size - s->avail ? s->step : s->size - s->avail;
    ASAN_UNPOISON_MEMORY_REGION(s->buf + s->avail, n);
    s->avail += n;
    return true;
}

/* Reads one body starting at *off; returns the digest, or sets *stop. */
static uint64_t read_body(struct stream *s, size_t *off, const struct http_msg *m, bool resp,
                          uint64_t h, bool *stop, char *body)
{
    static struct h1_body b;
    struct h1_error err;
    const char *data;
    size_t c, dl, blen = 0;
    h1_body_init(&b, m->body, m->content_length);
    b.response = resp;
    for (;;) {
        int r = h1_body_step(&b, s->buf + *off, s->avail - *off, s->avail == s->size, &c, &data,
                             &dl, &err);
        REQUIRE(c <= s->avail - *off);
        *off += c;
        if (r == H1B_DATA) {
            REQUIRE(dl > 0 && data >= s->buf && data + dl <= s->buf + *off);
            memcpy(body + blen, data, dl);
            blen += dl;
            continue;
        }
        if (r == H1B_ERROR) {
            REQUIRE(err.status == (resp ? 502 : 400));
            *stop = true;
            return mix_err(h, &err);
        }
        if (r == H1B_DONE) {
            if (m->body == HTTP_BODY_CHUNKED)
                check_chunked_round_trip(body, blen, &b);
            h = mix_u(mix(h, body, blen), blen);
            return mix(h, b.trailer_buf, m->body == HTTP_BODY_CHUNKED ? b.trailer_len : 0);
        }
        if (!arrive(s)) { /* the input ends inside the body */
            *stop = true;
            return mix_u(mix(h, body, blen), blen);
        }
    }
}

/* Reads heads and bodies until the input ends or an error; returns the digest. */
static uint64_t read_stream(struct stream *s, bool resp, enum http_method method,
                            const struct h1_limits *lim, bool round_trips, char *body)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t off = 0, hl;
    struct arena a;
    bool stop = false;
    arena_init(&a, 0);
    for (int k = 0; k < MAX_MESSAGES && !stop && off < s->size; k++) {
        struct h1_parser p;
        struct h1_error err;
        struct http_msg m;
        int r;
        h1_parser_init(&p);
        while ((r = resp ? h1_parse_response(&p, s->buf + off, s->avail - off, lim, method, &m, &a,
                                             &hl, &err)
                         : h1_parse_request(&p, s->buf + off, s->avail - off, lim, &m, &a, &hl,
                                            &err)) == H1_AGAIN)
            if (!arrive(s))
                break;
        h = mix_u(h, (uint64_t)(r + 1));
        if (r != H1_DONE) {
            if (r == H1_ERROR)
                h = mix_err(h, &err);
            break;
        }
        REQUIRE(hl > 0 && hl <= s->avail - off && hl <= lim->max_head);
        h = mix_msg(mix_u(h, hl), &m);
        check_invariants(&m);
        if (round_trips && resp)
            check_response_round_trip(&m, method);
        else if (round_trips)
            check_request_round_trip(&m);
        off += hl;
        if (!resp)
            method = m.method;
        if (m.method == HTTP_M_CONNECT || (m.flags & HTTP_F_UPGRADE))
            break; /* a tunnel follows */
        h = read_body(s, &off, &m, resp, h, &stop, body);
        arena_reset(&a);
    }
    arena_free(&a);
    return h;
}

/* Reads the input whole, then arriving from a cut in pieces; both must agree. */
static void read_both_ways(const uint8_t *data, size_t size, size_t cut, size_t step, bool resp,
                           enum http_method method, const struct h1_limits *lim, char *body)
{
    struct stream whole = {(const char *)data, size, size, 0};
    uint64_t h1 = read_stream(&whole, resp, method, lim, true, body);

    char *copy = malloc(size ? size : 1);
    REQUIRE(copy);
    memcpy(copy, data, size);
    ASAN_POISON_MEMORY_REGION(copy + cut, size - cut);
    struct stream parts = {copy, size, cut, step};
    uint64_t h2 = read_stream(&parts, resp, method, lim, false, body);
    ASAN_UNPOISON_MEMORY_REGION(copy, size);
    free(copy);
    REQUIRE(h1 == h2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum http_method methods[4] = {HTTP_M_GET, HTTP_M_HEAD, HTTP_M_POST,
                                                HTTP_M_CONNECT};
    if (size > (1u << 16))
        return 0;
    char *body = malloc(size + 1);
    REQUIRE(body);
    uint64_t seed = mix(0, data, size);
    size_t cut = size ? seed % (size + 1) : 0;
    size_t step = (seed >> 20) % 9; /* 0: the rest at once */
    uint8_t x = (uint8_t)(seed >> 32);
    struct h1_limits small = {8u + x % 64, 32u + (x >> 2) * 4, 1u + x % 8};
    enum http_method method = methods[(seed >> 40) % 4];

    read_both_ways(data, size, cut, step, false, 0, &big, body);
    read_both_ways(data, size, cut, step, false, 0, &small, body);
    read_both_ways(data, size, cut, step, true, method, &big, body);
    read_both_ways(data, size, cut, step, true, method, &small, body);
    free(body);
    return 0;
}
