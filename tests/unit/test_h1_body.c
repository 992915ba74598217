/* test_h1_body.c — the HTTP/1.1 body decoder (src/http/h1_body.c): length, until-close and
 * chunked bodies; chunk extensions, trailers, every framing error; each vector decoded
 * whole, byte by byte, in pieces of a few bytes and split at every point, from exact-size
 * copies of the input, with the same data, end and verdict every time.
 */
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"
#include "http/msg.h"
#include "test.h"

/* What decoding gave. */
struct decoded {
    int r;
    size_t used; /* bytes consumed in all */
    char data[512];
    size_t dlen;
    struct h1_error err;
    char trailers[H1_MAX_TRAILER];
    size_t tlen;
};

/* One step on an exact-size copy of in[0..len); data is appended to d. */
static int step(struct h1_body *b, const char *in, size_t len, bool eof, size_t *consumed,
                struct decoded *d, int line)
{
    char *copy = malloc(len ? len : 1);
    const char *data;
    size_t dlen;
    memcpy(copy, in, len);
    int r = h1_body_step(b, copy, len, eof, consumed, &data, &dlen, &d->err);
    if (*consumed > len)
        test_fail(__FILE__, line, "consumed %zu of %zu", *consumed, len);
    if (r == H1B_DATA) {
        if (data < copy || data + dlen > copy + *consumed || dlen == 0 ||
            d->dlen + dlen > sizeof(d->data))
            test_fail(__FILE__, line, "data piece outside the consumed bytes");
        else
            memcpy(d->data + d->dlen, data, dlen), d->dlen += dlen;
    }
    free(copy);
    return r;
}

/* Decodes in[0..n): `first` bytes are available at first, then `piece` more each time
 * (0: all of the rest), as a session appending to its buffer would; eof once all is in. */
static void decode(enum http_body_kind kind, uint64_t cl, bool response, const char *in, size_t n,
                   size_t first, size_t piece, struct decoded *d, int line)
{
    struct h1_body *b = malloc(sizeof(*b));
    size_t avail = first < n ? first : n, off = 0;
    memset(d, 0, sizeof(*d));
    h1_body_init(b, kind, cl);
    b->response = response;
    for (int guard = 0; guard < 100000; guard++) {
        size_t c;
        d->r = step(b, in + off, avail - off, avail == n, &c, d, line);
        off += c;
        if (d->r == H1B_DATA)
            continue;
        if (d->r != H1B_AGAIN || avail == n)
            break;
        avail = piece && avail + piece < n ? avail + piece : n;
    }
    d->used = off;
    if (d->r == H1B_DONE && kind == HTTP_BODY_CHUNKED) {
        d->tlen = b->trailer_len;
        memcpy(d->trailers, b->trailer_buf, d->tlen);
    }
    free(b);
}

static bool same_decoded(const struct decoded *a, const struct decoded *b)
{
    if (a->r != b->r)
        return false;
    if (a->r == H1B_ERROR)
        return a->err.status == b->err.status && strcmp(a->err.reason, b->err.reason) == 0;
    return a->used == b->used && a->dlen == b->dlen && !memcmp(a->data, b->data, a->dlen) &&
           a->tlen == b->tlen && !memcmp(a->trailers, b->trailers, a->tlen);
}

/* Decodes whole into *d, then checks every split point and small pieces agree. */
static void decode_all_ways(enum http_body_kind kind, uint64_t cl, const char *in, size_t n,
                            struct decoded *d, int line)
{
    static struct decoded t;
    decode(kind, cl, false, in, n, n, 0, d, line);
    for (size_t i = 0; i <= n; i++) {
        decode(kind, cl, false, in, n, i, 0, &t, line);
        if (!same_decoded(&t, d))
            test_fail(__FILE__, line, "split at %zu/%zu: result %d, whole %d", i, n, t.r, d->r);
    }
    for (size_t piece = 1; piece <= 4; piece++) {
        decode(kind, cl, false, in, n, 0, piece, &t, line);
        if (!same_decoded(&t, d))
            test_fail(__FILE__, line, "pieces of %zu: result %d, whole %d", piece, t.r, d->r);
    }
}

#define CHUNKED(s, d) decode_all_ways(HTTP_BODY_CHUNKED, 0, s, sizeof(s) - 1, d, __LINE__)

static void check_chunked_error(const char *s, size_t n, const char *reason, int line)
{
    static struct decoded d;
    decode_all_ways(HTTP_BODY_CHUNKED, 0, s, n, &d, line);
    if (d.r != H1B_ERROR)
        test_fail(__FILE__, line, "accepted (result %d)", d.r);
    else if (d.err.status != 400 || !strstr(d.err.reason, reason))
        test_fail(__FILE__, line, "got %u \"%s\", expected 400 \"%s\"", d.err.status, d.err.reason,
                  reason);
}

#define CHUNKED_ERROR(s, reason) check_chunked_error(s, sizeof(s) - 1, reason, __LINE__)

static bool data_is(const struct decoded *d, const char *s)
{
    return d->dlen == strlen(s) && memcmp(d->data, s, d->dlen) == 0;
}

/* ---- length, until close, none ---- */

TEST(h1_body_length)
{
    static struct decoded d;
    static const char in[] = "hello worldGET / HTTP/1.1\r\n";
    decode_all_ways(HTTP_BODY_LENGTH, 11, in, sizeof(in) - 1, &d, __LINE__);
    CHECK(d.r == H1B_DONE && data_is(&d, "hello world"));
    CHECK_EQ_U64(d.used, 11); /* the next request is left alone */
    decode_all_ways(HTTP_BODY_LENGTH, 11, in, 5, &d, __LINE__);
    CHECK(d.r == H1B_AGAIN && data_is(&d, "hello") && d.used == 5);
}

TEST(h1_body_length_zero_and_none)
{
    static struct decoded d;
    decode_all_ways(HTTP_BODY_LENGTH, 0, "xyz", 3, &d, __LINE__);
    CHECK(d.r == H1B_DONE && d.used == 0 && d.dlen == 0);
    decode_all_ways(HTTP_BODY_NONE, 0, "xyz", 3, &d, __LINE__);
    CHECK(d.r == H1B_DONE && d.used == 0);
}

TEST(h1_body_until_close)
{
    static struct decoded d;
    decode_all_ways(HTTP_BODY_UNTIL_CLOSE, 0, "all of it", 9, &d, __LINE__);
    CHECK(d.r == H1B_DONE && data_is(&d, "all of it") && d.used == 9);
    /* without EOF, it waits */
    struct h1_body b;
    struct h1_error err;
    const char *data;
    size_t c, dl;
    h1_body_init(&b, HTTP_BODY_UNTIL_CLOSE, 0);
    CHECK(h1_body_step(&b, "", 0, false, &c, &data, &dl, &err) == H1B_AGAIN);
    CHECK(h1_body_step(&b, "", 0, true, &c, &data, &dl, &err) == H1B_DONE);
}

/* ---- chunked ---- */

TEST(h1_body_chunked_simple)
{
    static struct decoded d;
    CHUNKED("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", &d);
    CHECK(d.r == H1B_DONE && data_is(&d, "hello world"));
    CHECK_EQ_U64(d.used, 26);
    CHECK_EQ_U64(d.tlen, 0);
}

TEST(h1_body_chunked_hex_sizes)
{
    static struct decoded d;
    CHUNKED("A\r\n0123456789\r\n00000001\r\nx\r\n000\r\n\r\n", &d);
    CHECK(d.r == H1B_DONE && data_is(&d, "0123456789x"));
    CHUNKED("a\r\nabcdefghij\r\n0\r\n\r\n", &d);
    CHECK(d.r == H1B_DONE && d.dlen == 10);
}

TEST(h1_body_chunked_extensions)
{
    static struct decoded d;
    CHUNKED("3;a\r\nabc\r\n3;a=b;c=\"d e\\\"f\"\r\ndef\r\n"
            "1 ; x = y ;z\t=\t\"\"\r\ng\r\n0;last\r\n\r\n",
            &d);
    CHECK(d.r == H1B_DONE && data_is(&d, "abcdefg"));
}

TEST(h1_body_chunked_trailers)
{
    static struct decoded d;
    CHUNKED("3\r\nabc\r\n0\r\nX-Checksum: 42\r\nContent-Length: 3\r\nX-B:two  \r\n"
            "Transfer-Encoding: chunked\r\n\r\nrest",
            &d);
    CHECK(d.r == H1B_DONE && data_is(&d, "abc"));
    CHECK_EQ_U64(d.used, 87);
    /* framing fields dropped; lines kept as received */
    CHECK(d.tlen == 27 && memcmp(d.trailers, "X-Checksum: 42\r\nX-B:two  \r\n", 27) == 0);
    /* each kept line splits with h1_field_line */
    struct hstr n, v;
    CHECK(h1_field_line(d.trailers, 14, &n, &v) == NULL);
    CHECK(n.len == 10 && v.len == 2);
}

TEST(h1_body_chunked_big_chunk_in_pieces)
{
    /* a chunk bigger than what each call sees: handed out in pieces, never copied */
    static char in[400];
    static struct decoded d;
    int k = sprintf(in, "12c\r\n");
    memset(in + k, 'z', 300);
    memcpy(in + k + 300, "\r\n0\r\n\r\n", 7);
    decode_all_ways(HTTP_BODY_CHUNKED, 0, in, (size_t)k + 307, &d, __LINE__);
    CHECK(d.r == H1B_DONE && d.dlen == 300 && d.used == (size_t)k + 307);
}

TEST(h1_body_chunked_size_errors)
{
    CHUNKED_ERROR("0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size");
    CHUNKED_ERROR(" 5\r\nhello\r\n0\r\n\r\n", "bad chunk size");
    CHUNKED_ERROR("5 \r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("-5\r\nhello\r\n0\r\n\r\n", "bad chunk size");
    CHUNKED_ERROR("\r\nhello\r\n0\r\n\r\n", "bad chunk size");
    CHUNKED_ERROR("g\r\n", "bad chunk size");
    CHUNKED_ERROR("5\nhello\r\n0\r\n\r\n", "bare LF");
    CHUNKED_ERROR("5\rhello\r\n0\r\n\r\n", "bare CR");
    CHUNKED_ERROR("5\r\nhello\r\n0\n\r\n", "bare LF");
}

TEST(h1_body_chunked_overflow)
{
    static struct decoded d;
    /* 2^62 is the largest size accepted */
    decode_all_ways(HTTP_BODY_CHUNKED, 0, "4000000000000000\r\nab", 20, &d, __LINE__);
    CHECK(d.r == H1B_AGAIN && data_is(&d, "ab"));
    CHUNKED_ERROR("4000000000000001\r\n", "chunk size overflow");
    CHUNKED_ERROR("10000000000000000\r\n", "chunk size overflow");
    CHUNKED_ERROR("ffffffffffffffffffff\r\n", "chunk size overflow");
    /* leading zeros do not overflow */
    CHUNKED("000000000000000000000000000001\r\nq\r\n0\r\n\r\n", &d);
    CHECK(d.r == H1B_DONE && data_is(&d, "q"));
}

TEST(h1_body_chunked_line_too_long)
{
    static char in[2100];
    static struct decoded d;
    size_t n = (size_t)sprintf(in, "1;x=");
    memset(in + n, 'v', H1_MAX_CHUNK_LINE - n);
    memcpy(in + H1_MAX_CHUNK_LINE, "\r\nq\r\n0\r\n\r\n", 10);
    decode_all_ways(HTTP_BODY_CHUNKED, 0, in, H1_MAX_CHUNK_LINE + 10, &d, __LINE__);
    CHECK(d.r == H1B_DONE && data_is(&d, "q")); /* exactly the limit */
    memset(in + n, 'v', H1_MAX_CHUNK_LINE + 1 - n);
    memcpy(in + H1_MAX_CHUNK_LINE + 1, "\r\nq\r\n0\r\n\r\n", 10);
    check_chunked_error(in, H1_MAX_CHUNK_LINE + 11, "chunk-size line too long", __LINE__);
}

TEST(h1_body_chunked_extension_errors)
{
    CHUNKED_ERROR("5;\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a=\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a b\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a \r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a=b c\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a=\"x\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;(\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    CHUNKED_ERROR("5;a\nhello\r\n0\r\n\r\n", "bare LF");
}

TEST(h1_body_chunked_data_crlf)
{
    CHUNKED_ERROR("5\r\nhelloX\r\n0\r\n\r\n", "chunk data not followed by CRLF");
    CHUNKED_ERROR("5\r\nhello\n0\r\n\r\n", "chunk data not followed by CRLF");
    CHUNKED_ERROR("5\r\nhello\rX0\r\n\r\n", "chunk data not followed by CRLF");
    CHUNKED_ERROR("3\r\nhello\r\n0\r\n\r\n", "chunk data not followed by CRLF");
}

TEST(h1_body_chunked_trailer_errors)
{
    static char in[H1_MAX_TRAILER + 64];
    CHUNKED_ERROR("0\r\n X: y\r\n\r\n", "obs-fold");
    CHUNKED_ERROR("0\r\nX y\r\n\r\n", "whitespace before colon");
    CHUNKED_ERROR("0\r\nX\"y: 1\r\n\r\n", "bad field name");
    CHUNKED_ERROR("0\r\nXy\r\n\r\n", "missing colon");
    CHUNKED_ERROR("0\r\nX: y\nZ: 1\r\n\r\n", "bare LF");
    CHUNKED_ERROR("0\r\nX: y\rZ: 1\r\n\r\n", "bare CR");
    CHUNKED_ERROR("0\r\nX: a\0b\r\n\r\n", "NUL");
    CHUNKED_ERROR("0\r\n\rX", "bare CR after trailers");
    /* trailers over H1_MAX_TRAILER */
    size_t n = (size_t)sprintf(in, "0\r\nX: ");
    memset(in + n, 'v', H1_MAX_TRAILER);
    memcpy(in + n + H1_MAX_TRAILER, "\r\n\r\n", 4);
    check_chunked_error(in, n + H1_MAX_TRAILER + 4, "trailers too large", __LINE__);
}

TEST(h1_body_error_status_for_responses)
{
    static struct decoded d;
    decode(HTTP_BODY_CHUNKED, 0, true, "zz\r\n", 4, 4, 0, &d, __LINE__);
    CHECK(d.r == H1B_ERROR && d.err.status == 502);
    decode(HTTP_BODY_CHUNKED, 0, false, "zz\r\n", 4, 4, 0, &d, __LINE__);
    CHECK(d.r == H1B_ERROR && d.err.status == 400);
}

TEST(h1_body_after_done_and_error)
{
    struct h1_body b;
    struct h1_error err;
    const char *data;
    size_t c, dl;
    h1_body_init(&b, HTTP_BODY_CHUNKED, 0);
    CHECK(h1_body_step(&b, "0\r\n\r\nabc", 8, false, &c, &data, &dl, &err) == H1B_DONE);
    CHECK_EQ_U64(c, 5);
    CHECK(h1_body_step(&b, "abc", 3, false, &c, &data, &dl, &err) == H1B_DONE);
    CHECK_EQ_U64(c, 0);
    h1_body_init(&b, HTTP_BODY_CHUNKED, 0);
    CHECK(h1_body_step(&b, "x", 1, false, &c, &data, &dl, &err) == H1B_ERROR);
    CHECK(h1_body_step(&b, "0\r\n\r\n", 5, false, &c, &data, &dl, &err) == H1B_ERROR);
}

TEST(h1_body_pipelined_chunked_then_request)
{
    /* a whole exchange: head, chunked body, the next head right after */
    static const char in[] = "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "4;n=v\r\nwiki\r\n5\r\npedia\r\n0\r\nT: 1\r\n\r\n"
                             "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    const struct h1_limits lim = {1024, 4096, 16};
    struct h1_parser p;
    struct h1_error err;
    struct http_msg m;
    struct arena a;
    size_t hl, n = sizeof(in) - 1;
    static struct decoded d;
    arena_init(&a, 0);
    h1_parser_init(&p);
    CHECK(h1_parse_request(&p, in, n, &lim, &m, &a, &hl, &err) == H1_DONE);
    CHECK(m.body == HTTP_BODY_CHUNKED);
    decode_all_ways(m.body, 0, in + hl, n - hl, &d, __LINE__);
    CHECK(d.r == H1B_DONE && data_is(&d, "wikipedia") && d.tlen == 6);
    h1_parser_init(&p);
    size_t off = hl + d.used;
    CHECK(h1_parse_request(&p, in + off, n - off, &lim, &m, &a, &hl, &err) == H1_DONE);
    CHECK(m.path.len == 5 && memcmp(m.path.p, "/next", 5) == 0 && off + hl == n);
    arena_free(&a);
}
