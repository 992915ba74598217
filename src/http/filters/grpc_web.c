/* grpc_web.c — the grpc_web filter: gRPC-Web from browsers (grpc/grpc doc/PROTOCOL-WEB.md)
 * translated to gRPC for the servers, as Envoy's grpc_web filter does.
 *
 * Request: a POST whose content-type is application/grpc-web[+sub] or
 * application/grpc-web-text[+sub] becomes application/grpc[+sub] with `te: trailers` (and
 * `grpc-accept-encoding: identity` when absent: a browser cannot decompress messages). Binary
 * bodies pass as they are; text bodies are base64, decoded as they stream (pieces cut
 * anywhere, padding anywhere), so their framing becomes chunked. Any other request passes
 * untouched, and so does its response.
 * Response: a gRPC one (200, application/grpc*) gets the content-type of the grpc-web
 * variant the client takes (text when its Accept, else its content-type, names
 * grpc-web-text), chunked framing, and its trailers (grpc-status, grpc-message, other
 * metadata) as the last frame of the body (flag 0x80, "name:value\r\n" lines), taken out of
 * the message so the client codec does not send them too. In text mode the body is base64,
 * padded at gRPC frame boundaries and at the end (bytes of a frame still coming wait, at
 * most 2). A trailers-only response (grpc-status in the head) gets its trailer frame too
 * when its end reaches the filters (HTTP/2 servers: see end_reaches_filters); otherwise
 * (HTTP/1 servers, Strata's own gRPC answers) its status stays in the head, as the spec
 * allows. An HTTP/1 server's gRPC response with a Content-Length passes as it is, labelled
 * binary (keeps_length). Non-gRPC responses (Strata's own HTTP errors, a server's 503 page)
 * pass untouched.
 * Limits: a text request body that is not base64 fails the exchange (a body filter error).
 * Output pieces are written into a per-exchange scratch buffer that the codec copies at once;
 * a text response piece grows by 4/3 and must fit in the codec's room (filter.h).
 */
#include "http/filters/grpc_web.h"

#include <string.h>

#include "config/config-t.h"
#include "core/bug.h"
#include "http/filter.h"
#include "http/msg.h"

/* ---- base64 and frames (pure) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t gw_b64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

enum { B64_PAD = 64, B64_SPACE = 65, B64_BAD = 66 };

static uint8_t b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0' + 52);
    switch (c) {
    case '+':
        return 62;
    case '/':
        return 63;
    case '=':
        return B64_PAD;
    case ' ':
    case '\t':
    case '\r':
    case '\n':
        return B64_SPACE;
    default:
        return B64_BAD;
    }
}

/* One group of 4 values (padding allowed in the last two only, "x=" then "="); bytes out. */
static int b64_group(const uint8_t v[4], uint8_t *out)
{
    if (v[0] == B64_PAD || v[1] == B64_PAD || (v[2] == B64_PAD && v[3] != B64_PAD))
        return -1;
    uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
                 (uint32_t)(v[2] == B64_PAD ? 0 : v[2]) << 6 | (v[3] == B64_PAD ? 0 : v[3]);
    out[0] = (uint8_t)(w >> 16);
    out[1] = (uint8_t)(w >> 8);
    out[2] = (uint8_t)w;
    return v[2] == B64_PAD ? 1 : v[3] == B64_PAD ? 2 : 3;
}

int gw_b64_decode(struct gw_b64_dec *d, const char *in, size_t n, bool last, uint8_t *out,
                  size_t *outlen)
{
    size_t o = 0;
    uint8_t v[4];
    for (size_t i = 0; i < n; i++) {
        uint8_t x = b64_value(in[i]);
        if (x == B64_SPACE)
            continue;
        if (x == B64_BAD)
            return -1;
        d->q[d->n++] = (char)x;
        if (d->n < 4)
            continue;
        for (int k = 0; k < 4; k++)
            v[k] = (uint8_t)d->q[k];
        int got = b64_group(v, out + o);
        if (got < 0)
            return -1;
        o += (size_t)got;
        d->n = 0;
    }
    if (last && d->n) {
        /* an unpadded tail: 2 characters are 1 byte, 3 are 2 */
        if (d->n == 1)
            return -1;
        for (int k = 0; k < 4; k++)
            v[k] = k < d->n ? (uint8_t)d->q[k] : B64_PAD;
        int got = b64_group(v, out + o);
        if (got < 0)
            return -1;
        o += (size_t)got;
        d->n = 0;
    }
    *outlen = o;
    return 0;
}

bool gw_frames_feed(struct gw_frames *f, const uint8_t *p, size_t n)
{
    while (n) {
        if (f->left) {
            size_t take = f->left < n ? (size_t)f->left : n;
            f->left -= take;
            p += take;
            n -= take;
            continue;
        }
        f->hdr[f->have++] = *p++;
        n--;
        if (f->have == 5) {
            f->left = (uint32_t)f->hdr[1] << 24 | (uint32_t)f->hdr[2] << 16 |
                      (uint32_t)f->hdr[3] << 8 | f->hdr[4];
            f->have = 0;
        }
    }
    return f->have == 0 && f->left == 0;
}

size_t gw_trailer_frame_len(const struct http_hdr *t, uint32_t n)
{
    size_t len = 5;
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)t[i].name.len + 1 + t[i].value.len + 2;
    return len;
}

size_t gw_trailer_frame(const struct http_hdr *t, uint32_t n, uint8_t *out)
{
    size_t o = 5;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < t[i].name.len; k++) {
            char c = t[i].name.p[k];
            out[o++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        out[o++] = ':';
        if (t[i].value.len)
            memcpy(out + o, t[i].value.p, t[i].value.len);
        o += t[i].value.len;
        out[o++] = '\r';
        out[o++] = '\n';
    }
    size_t payload = o - 5;
    out[0] = GW_TRAILER_FLAG;
    out[1] = (uint8_t)(payload >> 24);
    out[2] = (uint8_t)(payload >> 16);
    out[3] = (uint8_t)(payload >> 8);
    out[4] = (uint8_t)payload;
    return o;
}

/* ---- per exchange ---- */

struct gw_state {
    bool text_req, text_resp;
    bool translating; /* the response is gRPC and its body is being translated */
    struct hstr sub;  /* the request's "+proto" (or empty) */
    struct gw_b64_dec dec;
    struct gw_frames frames;
    struct http_hdr *head; /* the status fields of a trailers-only head (head_status) */
    uint32_t nhead;
    uint8_t carry[2]; /* text response: bytes waiting for a whole 3-byte group */
    uint8_t ncarry;
    /* scratch for the pieces handed back: the codec copies each before the next call */
    uint8_t *req_buf, *resp_buf, *plain;
    size_t req_cap, resp_cap, plain_cap;
};

/* A scratch buffer of at least `need` bytes (grown in the arena, old ones left to it). */
static uint8_t *scratch(struct arena *a, uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return *buf;
    size_t c = need < 4096 ? 4096 : need;
    if (c < 2 * *cap)
        c = 2 * *cap;
    uint8_t *b = arena_alloc(a, c);
    if (!b)
        return NULL;
    *buf = b;
    *cap = c;
    return b;
}

static bool ieq_prefix(struct hstr s, const char *prefix, size_t n)
{
    return s.len >= n &&
           hstr_ieq((struct hstr){s.p, (uint32_t)n}, (struct hstr){prefix, (uint32_t)n});
}

enum gw_kind { GW_NONE, GW_BINARY, GW_TEXT };

/* "application/grpc-web[-text][+sub][; params]": the kind and "+sub" (may be empty). */
static enum gw_kind web_type(struct hstr ct, struct hstr *sub)
{
    static const char base[] = "application/grpc-web", text[] = "-text";
    if (!ct.p || !ieq_prefix(ct, base, sizeof(base) - 1))
        return GW_NONE;
    struct hstr rest = {ct.p + sizeof(base) - 1, ct.len - (uint32_t)(sizeof(base) - 1)};
    enum gw_kind k = GW_BINARY;
    if (ieq_prefix(rest, text, sizeof(text) - 1)) {
        k = GW_TEXT;
        rest.p += sizeof(text) - 1;
        rest.len -= sizeof(text) - 1;
    }
    uint32_t n = 0;
    if (rest.len && rest.p[0] == '+')
        while (n < rest.len && rest.p[n] != ';' && rest.p[n] != ' ' && rest.p[n] != '\t')
            n++;
    if (n == 1 || (n < rest.len && rest.p[n] != ';' && rest.p[n] != ' ' && rest.p[n] != '\t'))
        return GW_NONE; /* "+" alone, or "application/grpc-webx" */
    *sub = (struct hstr){rest.p, n};
    return k;
}

/* "application/grpc", "application/grpc+proto", "application/grpc; x=y". */
static bool grpc_type(struct hstr ct)
{
    static const char base[] = "application/grpc";
    size_t n = sizeof(base) - 1;
    return ct.p && ieq_prefix(ct, base, n) &&
           (ct.len == n || ct.p[n] == '+' || ct.p[n] == ';' || ct.p[n] == ' ');
}

/* The response is text when Accept names grpc-web-text; binary when it names grpc-web;
 * else as the request. */
static bool wants_text(const struct http_msg *req, bool text_req)
{
    bool text = false, web = false;
    for (int i = http_hdr_find(req, HSTR_LIT("accept"), 0); i >= 0;
         i = http_hdr_find(req, HSTR_LIT("accept"), (uint32_t)i + 1)) {
        const char *p = req->hdrs[i].value.p;
        struct hstr el, sub;
        while (http_list_next(&p, req->hdrs[i].value.p + req->hdrs[i].value.len, &el)) {
            enum gw_kind k = web_type(el, &sub);
            text |= k == GW_TEXT;
            web |= k != GW_NONE;
        }
    }
    return web ? text : text_req;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    struct http_msg *req = &t->req;
    struct hstr sub;
    enum gw_kind k = req->method == HTTP_M_POST
                         ? web_type(http_hdr_get(req, HSTR_LIT("content-type")), &sub)
                         : GW_NONE;
    if (k == GW_NONE)
        return FILTER_CONTINUE;
    struct gw_state *st = arena_alloc(&t->arena, sizeof(*st));
    if (!st)
        return FILTER_ERROR;
    memset(st, 0, sizeof(*st));
    st->text_req = k == GW_TEXT;
    st->text_resp = wants_text(req, st->text_req);
    st->sub = sub;
    struct hstr ct = arena_printf(&t->arena, "application/grpc%.*s", (int)sub.len, sub.p);
    if (!ct.p || http_hdr_set(req, &t->arena, HSTR_LIT("content-type"), ct) < 0 ||
        http_hdr_set(req, &t->arena, HSTR_LIT("te"), HSTR_LIT("trailers")) < 0)
        return FILTER_ERROR;
    if (!http_hdr_get(req, HSTR_LIT("grpc-accept-encoding")).p &&
        http_hdr_add(req, &t->arena, HSTR_LIT("grpc-accept-encoding"), HSTR_LIT("identity")) < 0)
        return FILTER_ERROR;
    /* decoded text is shorter: its length is known only as it streams */
    if (st->text_req && !http_msg_bodiless(req))
        req->body = HTTP_BODY_CHUNKED;
    t->grpc_web = st;
    return FILTER_CONTINUE;
}

static enum filter_verdict on_request_body(struct http_txn *t, const void *conf, const char **data,
                                           size_t *len, bool last)
{
    struct gw_state *st = t->grpc_web;
    if (!st || !st->text_req)
        return FILTER_CONTINUE;
    uint8_t *out = scratch(&t->arena, &st->req_buf, &st->req_cap, *len / 4 * 3 + 6);
    size_t n;
    if (!out || gw_b64_decode(&st->dec, *data, *len, last, out, &n) < 0)
        return FILTER_ERROR;
    *data = (const char *)out;
    *len = n;
    return FILTER_CONTINUE;
}

/* The server codec passes the end of a body-less response through the body hooks, so a
 * trailers-only response can get its trailer frame: the HTTP/2 one does; the HTTP/1 one
 * ends such a response without them, and Strata's own answers never pass them. */
static bool end_reaches_filters(const struct http_txn *t)
{
    return !t->answered && t->backend && t->backend->protocol != PROTO_H1;
}

/* An HTTP/1 server's response with a Content-Length: its codec decodes the body by the
 * framing the filters leave, so neither that framing nor the body may change. Such a body
 * (HTTP/1 carries no trailers with a length) goes as it is, labelled binary. */
static bool keeps_length(const struct http_txn *t)
{
    return t->resp.body == HTTP_BODY_LENGTH && !t->answered && t->backend &&
           t->backend->protocol == PROTO_H1;
}

/* A trailers-only head: its status fields, kept for the trailer frame (slices into the
 * message, which outlives the exchange's filters); removed from the head when `take`. */
static int head_status(struct http_txn *t, struct gw_state *st, bool take)
{
    static const struct hstr names[] = {HSTR_LIT("grpc-status"), HSTR_LIT("grpc-message"),
                                        HSTR_LIT("grpc-status-details-bin")};
    if (!http_hdr_get(&t->resp, names[0]).p)
        return 0;
    if (!(st->head = arena_alloc(&t->arena, ARRAY_SIZE(names) * sizeof(*st->head))))
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        struct hstr v = http_hdr_get(&t->resp, names[i]);
        if (v.p)
            st->head[st->nhead++] = (struct http_hdr){names[i], v};
        if (take)
            http_hdr_remove(&t->resp, names[i]);
    }
    return 0;
}

static enum filter_verdict on_response(struct http_txn *t, const void *conf)
{
    struct gw_state *st = t->grpc_web;
    struct http_msg *resp = &t->resp;
    if (!st || resp->status != 200 || !grpc_type(http_hdr_get(resp, HSTR_LIT("content-type"))))
        return FILTER_CONTINUE; /* not gRPC: the browser sees the HTTP error as it is */
    bool bodiless = http_msg_bodiless(resp), as_is = !bodiless && keeps_length(t);
    struct hstr ct =
        arena_printf(&t->arena, "application/grpc-web%s%.*s",
                     st->text_resp && !as_is ? "-text" : "", (int)st->sub.len, st->sub.p);
    if (!ct.p || http_hdr_set(resp, &t->arena, HSTR_LIT("content-type"), ct) < 0)
        return FILTER_ERROR;
    if (as_is || (bodiless && !end_reaches_filters(t)))
        return FILTER_CONTINUE; /* grpc-status (if any) stays in the head */
    if (head_status(t, st, bodiless) < 0)
        return FILTER_ERROR;
    st->translating = true;
    resp->body = HTTP_BODY_CHUNKED; /* a trailer frame (and base64) change the length */
    return FILTER_CONTINUE;
}

/* The fields of the trailer frame: the message's trailers, else those of a trailers-only
 * head; none when neither. */
static void trailer_fields(struct http_txn *t, const struct http_hdr **f, uint32_t *n)
{
    const struct gw_state *st = t->grpc_web;
    *f = t->resp.ntrailers ? t->resp.trailers : st->head;
    *n = t->resp.ntrailers ? t->resp.ntrailers : st->nhead;
}

/* Text mode: carry + in[0..n) + the trailer frame (when last) as base64; bytes of a frame
 * still coming that do not fill a 3-byte group wait for the next piece. */
static enum filter_verdict encode_text(struct http_txn *t, struct gw_state *st, const uint8_t *in,
                                       size_t n, const struct http_hdr *f, uint32_t nf, bool last,
                                       const char **data, size_t *len)
{
    bool boundary = gw_frames_feed(&st->frames, in, n);
    size_t tlen = last && nf ? gw_trailer_frame_len(f, nf) : 0;
    size_t total = st->ncarry + n + tlen;
    uint8_t *plain = scratch(&t->arena, &st->plain, &st->plain_cap, total);
    char *out = (char *)scratch(&t->arena, &st->resp_buf, &st->resp_cap, gw_b64_len(total));
    if (!plain || !out)
        return FILTER_ERROR;
    memcpy(plain, st->carry, st->ncarry);
    if (n) /* the last call may have no data (NULL) */
        memcpy(plain + st->ncarry, in, n);
    if (tlen)
        gw_trailer_frame(f, nf, plain + st->ncarry + n);
    size_t keep = last || boundary ? 0 : total % 3;
    memcpy(st->carry, plain + total - keep, keep);
    st->ncarry = (uint8_t)keep;
    *len = gw_b64_encode(plain, total - keep, out);
    *data = out;
    return FILTER_CONTINUE;
}

static enum filter_verdict on_response_body(struct http_txn *t, const void *conf, const char **data,
                                            size_t *len, bool last)
{
    struct gw_state *st = t->grpc_web;
    if (!st || !st->translating)
        return FILTER_CONTINUE;
    const struct http_hdr *f = NULL;
    uint32_t nf = 0;
    if (last)
        trailer_fields(t, &f, &nf);
    enum filter_verdict v = FILTER_CONTINUE;
    if (st->text_resp) {
        v = encode_text(t, st, (const uint8_t *)*data, *len, f, nf, last, data, len);
    } else if (nf) {
        size_t tlen = gw_trailer_frame_len(f, nf);
        uint8_t *out = scratch(&t->arena, &st->resp_buf, &st->resp_cap, *len + tlen);
        if (!out)
            return FILTER_ERROR;
        if (*len)
            memcpy(out, *data, *len);
        *len += gw_trailer_frame(f, nf, out + *len);
        *data = (const char *)out;
    }
    if (last) { /* now in the body: the client codec must not send them as trailers too */
        t->resp.trailers = NULL;
        t->resp.ntrailers = 0;
    }
    return v;
}

const struct filter_ops filter_grpc_web = {
    .name = "grpc_web",
    .on_request = on_request,
    .on_response = on_response,
    .on_request_body = on_request_body,
    .on_response_body = on_response_body,
};
