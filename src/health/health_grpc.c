/* health_grpc.c — the gRPC check kind (grpc.health.v1.Health/Check): per check, a new
 * connection speaking HTTP/2 (h2c, or h2 over TLS with ALPN "h2" when the backend has `tls`),
 * one POST carrying a HealthCheckRequest{service}, and a verdict once the stream has ended:
 * up when :status is 200, grpc-status is 0 and the HealthCheckResponse says SERVING (1).
 * The HTTP/2 framing is nghttp2's, driven through memory buffers (mem_send/mem_recv) so
 * that the engine's transport (plain or TLS) carries the bytes. Verdicts are taken after
 * nghttp2 returns, never inside its callbacks (hc_finish ends the session). At most
 * HC_GRPC_READ_MAX bytes are read per check. See check.h.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/bug.h"
#include "net/proxy_proto.h"
#include "net/sock.h"

#define HC_GRPC_READ_MAX (64 * 1024) /* bytes read from the server by one check */
#define HC_GRPC_BODY_MAX 256         /* response body kept: a HealthCheckResponse is tiny */
#define HC_GRPC_MSG_MAX 80           /* grpc-message bytes quoted in the DOWN reason */

static const char health_path[] = "/grpc.health.v1.Health/Check";

/* Per server: the request, built once, and the state of the check in flight. */
struct hc_grpc {
    uint8_t *body; /* the length-prefixed HealthCheckRequest */
    size_t body_len;
    char *authority;
    char timeout[16]; /* grpc-timeout: the check's timeout, "1000m" */
    uint8_t pp[PP_V1_BUILD_MAX > PP_V2_BUILD_MAX ? PP_V1_BUILD_MAX : PP_V2_BUILD_MAX];
    size_t pp_len; /* PROXY header sent first (backends with proxy_protocol), or 0 */

    /* the check in flight; `ng` lives from the connect to the next check (or release) */
    nghttp2_session *ng;
    int32_t sid;
    bool connected;
    size_t pp_sent, body_sent, nread;
    const uint8_t *pend; /* bytes from nghttp2_session_mem_send not yet written */
    size_t pend_len;
    /* what came back on the stream */
    bool closed;     /* the stream ended (on_stream_close) */
    uint32_t rst;    /* its error code (0: ended cleanly) */
    unsigned status; /* :status, 0 until the response head */
    int grpc_status; /* -1 until seen (head or trailers) */
    char msg[HC_GRPC_MSG_MAX + 1];
    uint8_t resp[HC_GRPC_BODY_MAX];
    size_t resp_len;
    bool resp_over; /* the body was longer than HC_GRPC_BODY_MAX */
};

/* ---- protobuf by hand (pure) ---- */

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* A varint at p[*pos..len): 0 and *pos moved past it, or -1 (cut or longer than 10 bytes). */
static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 70 && *pos < len; shift += 7) {
        uint8_t b = p[(*pos)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

ssize_t hc_grpc_request(const char *service, size_t len, uint8_t *out, size_t cap)
{
    /* field 1 (string): tag 0x0a, length, bytes; proto3 leaves an empty string out */
    size_t msg = len ? 1 + (len < 128 ? 1 : len < 16384 ? 2 : 3) + len : 0;
    if (len >= (1u << 21) || cap < 5 + msg)
        return -1;
    out[0] = 0; /* not compressed */
    out[1] = (uint8_t)(msg >> 24);
    out[2] = (uint8_t)(msg >> 16);
    out[3] = (uint8_t)(msg >> 8);
    out[4] = (uint8_t)msg;
    if (!len)
        return 5;
    size_t n = 5;
    out[n++] = 0x0a;
    n += put_varint(out + n, len);
    memcpy(out + n, service, len);
    return (ssize_t)(n + len);
}

int hc_grpc_serving(const uint8_t *body, size_t len, uint64_t *serving, const char **why)
{
    *serving = 0; /* UNKNOWN when the field is absent */
    if (len < 5) {
        *why = len ? "response message cut short" : "no response message";
        return -1;
    }
    uint32_t mlen =
        (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 | (uint32_t)body[3] << 8 | body[4];
    if (body[0] != 0) {
        *why = body[0] == 1 ? "compressed response message" : "bad message flags";
        return -1;
    }
    if ((size_t)mlen != len - 5) {
        *why = mlen > len - 5 ? "response message cut short" : "more than one response message";
        return -1;
    }
    const uint8_t *p = body + 5;
    size_t pos = 0;
    while (pos < mlen) {
        uint64_t tag, v;
        if (get_varint(p, mlen, &pos, &tag) < 0 || tag >> 3 == 0)
            goto bad;
        switch (tag & 7) {
        case 0: /* varint */
            if (get_varint(p, mlen, &pos, &v) < 0)
                goto bad;
            if (tag >> 3 == 1)
                *serving = v; /* the last one wins, as protobuf says */
            break;
        case 1: /* 64-bit */
        case 5: /* 32-bit */
            if (mlen - pos < ((tag & 7) == 1 ? 8u : 4u))
                goto bad;
            pos += (tag & 7) == 1 ? 8 : 4;
            break;
        case 2: /* length-delimited */
            if (get_varint(p, mlen, &pos, &v) < 0 || v > mlen - pos)
                goto bad;
            pos += (size_t)v;
            break;
        default:
            goto bad;
        }
    }
    return 0;
bad:
    *why = "malformed HealthCheckResponse";
    return -1;
}

/* ---- the request, built once per server ---- */

static int grpc_init(struct hc_server *hs)
{
    const struct server *s = hs->srv;
    const struct backend *be = s->backend;
    const struct health_conf *hc = &be->hc;
    const char *service = hc->grpc_service ? hc->grpc_service : "";
    char addr[ADDR_STRLEN];
    const char *host = hc->http_host  ? hc->http_host
                       : s->addr_text ? s->addr_text
                                      : addr_format(&s->addr, addr, sizeof(addr));
    struct hc_grpc *st = calloc(1, sizeof(*st));
    if (!st)
        return -1;
    hs->kind = st;
    size_t slen = strlen(service), cap = slen + 16;
    ssize_t n;
    if (!(st->body = malloc(cap)) || !(st->authority = strdup(host)))
        return -1;
    n = hc_grpc_request(service, slen, st->body, cap);
    BUG_ON(n < 0); /* the configuration bounds the service name */
    st->body_len = (size_t)n;
    snprintf(st->timeout, sizeof(st->timeout), "%um", hc->timeout_ms ? hc->timeout_ms : 1000);
    ssize_t pplen = 0;
    if (be->send_proxy == PROXY_SEND_V1)
        pplen = pp_build_v1(NULL, NULL, (char *)st->pp, sizeof(st->pp));
    else if (be->send_proxy == PROXY_SEND_V2)
        pplen = pp_build_v2(NULL, NULL, st->pp, sizeof(st->pp));
    BUG_ON(pplen < 0);
    st->pp_len = (size_t)pplen;
    return 0;
}

static void session_end(struct hc_grpc *st)
{
    nghttp2_session_del(st->ng); /* NULL is fine */
    st->ng = NULL;
    st->pend = NULL;
    st->pend_len = 0;
}

static void grpc_release(struct hc_server *hs)
{
    struct hc_grpc *st = hs->kind;
    if (st) {
        session_end(st);
        free(st->body);
        free(st->authority);
    }
    free(st);
    hs->kind = NULL;
}

/* ---- nghttp2 callbacks: they only record; the verdict comes after mem_recv ---- */

static ssize_t read_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct hc_grpc *st = user;
    size_t n = st->body_len - st->body_sent;
    if (n > len)
        n = len;
    memcpy(buf, st->body + st->body_sent, n);
    st->body_sent += n;
    if (st->body_sent == st->body_len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
    return len == strlen(lit) && memcmp(name, lit, len) == 0;
}

/* A small decimal number, or -1. */
static int small_number(const uint8_t *v, size_t len)
{
    int n = 0;
    if (len == 0 || len > 4)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct hc_grpc *st = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != st->sid)
        return 0;
    if (name_is(name, namelen, ":status")) {
        int s = small_number(value, valuelen);
        st->status = s < 0 ? 0 : (unsigned)s;
    } else if (name_is(name, namelen, "grpc-status")) {
        st->grpc_status = small_number(value, valuelen);
        if (st->grpc_status < 0)
            st->grpc_status = 2; /* not a number: UNKNOWN */
    } else if (name_is(name, namelen, "grpc-message")) {
        size_t n = valuelen < HC_GRPC_MSG_MAX ? valuelen : HC_GRPC_MSG_MAX;
        for (size_t i = 0; i < n; i++)
            st->msg[i] = value[i] >= ' ' && value[i] < 0x7f ? (char)value[i] : '.';
        st->msg[n] = '\0';
    }
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                   void *user)
{
    struct hc_grpc *st = user;
    if (sid != st->sid)
        return 0;
    size_t room = sizeof(st->resp) - st->resp_len, n = len < room ? len : room;
    memcpy(st->resp + st->resp_len, data, n);
    st->resp_len += n;
    st->resp_over |= n < len;
    return 0;
}

static int on_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *user)
{
    struct hc_grpc *st = user;
    if (sid == st->sid) {
        st->closed = true;
        st->rst = error_code;
    }
    return 0;
}

/* ---- one check ---- */

static int submit_request(struct hc_server *hs, struct hc_grpc *st)
{
#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                                  \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }
    const char *scheme = hs->srv->backend->tls ? "https" : "http";
    const nghttp2_nv nv[] = {
        NV(":method", "POST"),
        NV(":scheme", scheme),
        NV(":path", health_path),
        NV(":authority", st->authority),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("grpc-timeout", st->timeout),
        NV("user-agent", "strata-health"),
    };
#undef NV
    nghttp2_data_provider dp = {.read_callback = read_body};
    nghttp2_settings_entry set[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    if (nghttp2_submit_settings(st->ng, NGHTTP2_FLAG_NONE, set, ARRAY_SIZE(set)) != 0)
        return -1;
    st->sid = nghttp2_submit_request(st->ng, NULL, nv, ARRAY_SIZE(nv), &dp, NULL);
    return st->sid < 0 ? -1 : 0;
}

static int session_begin(struct hc_server *hs, struct hc_grpc *st)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rc = nghttp2_session_client_new(&st->ng, cb, st);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) {
        st->ng = NULL;
        return -1;
    }
    return submit_request(hs, st);
}

static int grpc_open(struct hc_server *hs, const char **why)
{
    struct hc_grpc *st = hs->kind;
    int in_progress;
    session_end(st); /* a check that timed out left its session */
    st->connected = st->closed = st->resp_over = false;
    st->pp_sent = st->body_sent = st->nread = st->resp_len = 0;
    st->rst = st->status = 0;
    st->grpc_status = -1;
    st->msg[0] = '\0';
    hs->phase = "connecting";
    if (session_begin(hs, st) < 0) {
        session_end(st);
        errno = ENOMEM;
        return -1;
    }
    return sock_connect_tcp(&hs->srv->addr, &in_progress);
}

static void grpc_finish(struct hc_server *hs, bool ok, const char *why)
{
    session_end(hs->kind);
    hc_finish(hs, ok, why);
}

/* A send or receive error: a reset once connected is the server closing early. */
static void grpc_fail_errno(struct hc_server *hs, int err)
{
    const struct hc_grpc *st = hs->kind;
    session_end(hs->kind);
    if (st->connected && (err == ECONNRESET || err == EPIPE))
        hc_finish(hs, false, "connection reset before the response ended");
    else
        hc_fail_errno(hs, err);
}

static const char *const grpc_codes[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *serving_name(uint64_t s)
{
    return s == 0 ? "UNKNOWN" : s == 2 ? "NOT_SERVING" : s == 3 ? "SERVICE_UNKNOWN" : "?";
}

/* The stream ended: the verdict. */
static void grpc_judge(struct hc_server *hs)
{
    struct hc_grpc *st = hs->kind;
    char why[160];
    const char *w = NULL;
    uint64_t serving;
    if (st->rst) {
        snprintf(why, sizeof(why), "stream reset by the server (%s)",
                 nghttp2_http2_strerror(st->rst));
    } else if (st->status != 200) {
        snprintf(why, sizeof(why), st->status ? "HTTP status %u, expected 200" : "no :status",
                 st->status);
    } else if (st->grpc_status < 0) {
        snprintf(why, sizeof(why), "no grpc-status");
    } else if (st->grpc_status != 0) {
        int c = st->grpc_status;
        snprintf(why, sizeof(why), "grpc-status %d (%s)%s%s%s", c,
                 c < (int)ARRAY_SIZE(grpc_codes) ? grpc_codes[c] : "?", st->msg[0] ? ": \"" : "",
                 st->msg, st->msg[0] ? "\"" : "");
    } else if (st->resp_over) {
        snprintf(why, sizeof(why), "response larger than %d bytes", HC_GRPC_BODY_MAX);
    } else if (hc_grpc_serving(st->resp, st->resp_len, &serving, &w) < 0) {
        snprintf(why, sizeof(why), "%s", w);
    } else if (serving != 1) {
        snprintf(why, sizeof(why), "status %s (%llu), expected SERVING", serving_name(serving),
                 (unsigned long long)serving);
    } else {
        grpc_finish(hs, true, NULL);
        return;
    }
    grpc_finish(hs, false, why);
}

/* Writes the PROXY header, then what nghttp2 has to send. 0 (all written, or EAGAIN), or
 * -1 once the check has ended. */
static int grpc_flush(struct hc_server *hs)
{
    struct hc_grpc *st = hs->kind;
    for (int guard = 0; guard < 1024; guard++) {
        const void *p;
        size_t n;
        if (st->pp_sent < st->pp_len) {
            p = st->pp + st->pp_sent;
            n = st->pp_len - st->pp_sent;
        } else {
            if (!st->pend_len) {
                ssize_t m = nghttp2_session_mem_send(st->ng, &st->pend);
                if (m < 0) {
                    grpc_finish(hs, false, nghttp2_strerror((int)m));
                    return -1;
                }
                if (m == 0)
                    return 0;
                st->pend_len = (size_t)m;
            }
            p = st->pend;
            n = st->pend_len;
        }
        ssize_t w = hs->xc.xprt->send(&hs->xc, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        if (w < 0) {
            grpc_fail_errno(hs, errno);
            return -1;
        }
        if (st->pp_sent < st->pp_len) {
            st->pp_sent += (size_t)w;
        } else {
            st->pend += w;
            st->pend_len -= (size_t)w;
        }
    }
    return 0;
}

/* Reads into nghttp2 until EAGAIN, the end of the stream, or the read bound. 0 to go on,
 * -1 once the check has ended. */
static int grpc_read(struct hc_server *hs)
{
    struct hc_grpc *st = hs->kind;
    uint8_t buf[4096];
    while (!st->closed) {
        if (st->nread >= HC_GRPC_READ_MAX) {
            grpc_finish(hs, false, "no response within the first 64 KiB");
            return -1;
        }
        ssize_t n = hs->xc.xprt->recv(&hs->xc, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0) {
            grpc_fail_errno(hs, errno);
            return -1;
        }
        if (n == 0) {
            grpc_finish(hs, false, "connection closed before the response ended");
            return -1;
        }
        st->nread += (size_t)n;
        ssize_t r = nghttp2_session_mem_recv(st->ng, buf, (size_t)n);
        if (r < 0) {
            char why[96];
            snprintf(why, sizeof(why), "HTTP/2 error: %s", nghttp2_strerror((int)r));
            grpc_finish(hs, false, why);
            return -1;
        }
    }
    return 0;
}

/* Over TLS the server must have chosen h2 by ALPN. */
static bool alpn_h2(struct hc_server *hs)
{
    struct xprt_info info = {0};
    if (!hs->srv->backend->tls)
        return true;
    hs->xc.xprt->info(&hs->xc, &info);
    return info.alpn_len == 2 && memcmp(info.alpn, "h2", 2) == 0;
}

static void grpc_io(struct hc_server *hs, uint32_t events)
{
    struct hc_grpc *st = hs->kind;
    if (!st->connected) {
        int err = hc_connect_result(hs, events);
        if (err == EINPROGRESS)
            return;
        if (err) {
            session_end(st);
            hc_fail_errno(hs, err);
            return;
        }
        if (!alpn_h2(hs)) {
            grpc_finish(hs, false, "the server did not choose h2 by ALPN");
            return;
        }
        st->connected = true;
        hs->phase = "waiting for the response";
    }
    if (grpc_flush(hs) < 0 || grpc_read(hs) < 0)
        return;
    if (st->closed) {
        grpc_judge(hs);
        return;
    }
    grpc_flush(hs); /* SETTINGS and WINDOW_UPDATE acknowledgements */
}

const struct hc_ops hc_grpc_ops = {
    .name = "gRPC",
    .alpn = (const unsigned char *)"\x02h2",
    .alpn_len = 3,
    .init = grpc_init,
    .open = grpc_open,
    .io = grpc_io,
    .release = grpc_release,
};
