/* health_http.c — the HTTP check kind: per check, a new connection, the configured request
 * ("Connection: close", after a PROXY header when the backend sends one), and a verdict on
 * the status of the final response's head, parsed by the HTTP/1 codec (http/h1.h): the
 * body is never waited for, and at most HC_HTTP_READ_MAX bytes are read. Interim 1xx
 * responses are skipped. See check.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "core/bug.h"
#include "http/h1.h"
#include "net/proxy_proto.h"
#include "net/sock.h"

/* Per server: the request, built once, and the state of the check in flight. */
struct hc_http {
    char *req; /* PROXY header (if any) + request head */
    size_t req_len;
    const char *invalid; /* non-NULL: the configured request cannot be sent, and why */
    size_t sent;         /* bytes of req written by the check in flight */
    bool connected;
    size_t rlen; /* bytes in rbuf */
    char rbuf[HC_HTTP_READ_MAX];
};

/* ---- response heads (pure) ---- */

#define HC_HTTP_MAX_FIELDS 100

/* One response head at buf[0..len) by the codec: H1_DONE with *status and *head_len,
 * H1_AGAIN, or H1_ERROR with *reason. The head's fields are not kept. */
static int parse_head(const char *buf, size_t len, unsigned *status, size_t *head_len,
                      const char **reason)
{
    static const struct h1_limits lim = {HC_HTTP_READ_MAX, HC_HTTP_READ_MAX, HC_HTTP_MAX_FIELDS};
    struct h1_head h;
    struct h1_error err = {0, NULL};
    int r = h1_head_parse(&h, true, buf, len, &lim, head_len, &err);
    *status = r == H1_DONE ? h.m.status : 0;
    *reason = err.reason;
    h1_head_release(&h);
    return r;
}

enum hc_status_result hc_http_status(const char *buf, size_t len, unsigned *status, size_t *bad_off,
                                     const char **reason)
{
    size_t off = 0, head_len = 0;
    for (;;) {
        int r = parse_head(buf + off, len - off, status, &head_len, reason);
        if (r == H1_AGAIN)
            return HC_STATUS_MORE;
        if (r == H1_ERROR) {
            *bad_off = off;
            return HC_STATUS_BAD;
        }
        if (*status >= 200 || *status == 101)
            return HC_STATUS_OK;
        off += head_len; /* an interim response: the final one follows */
    }
}

/* ---- the request, built once per server ---- */

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static bool all_tchars(const char *s)
{
    for (; *s; s++)
        if (!is_tchar(*s))
            return false;
    return true;
}

/* Visible ASCII, no space: what a request target and a Host value may hold. */
static bool all_visible(const char *s)
{
    for (; *s; s++)
        if (*s <= ' ' || *s >= 0x7f)
            return false;
    return true;
}

/* Why the configured request cannot be sent, or NULL. The configuration should have said
 * so already: this keeps a bad value from ever reaching a server. */
static const char *request_invalid(const char *method, const char *path, const char *host)
{
    if (!*method || !all_tchars(method))
        return "invalid check request: bad method";
    if ((*path != '/' && strcmp(path, "*") != 0) || !all_visible(path))
        return "invalid check request: bad path";
    if (!*host || !all_visible(host))
        return "invalid check request: bad host";
    return NULL;
}

static int http_init(struct hc_server *hs)
{
    const struct server *s = hs->srv;
    const struct backend *be = s->backend;
    const struct health_conf *hc = &be->hc;
    const char *method = hc->http_method ? hc->http_method : "GET";
    const char *path = hc->http_path ? hc->http_path : "/";
    char addr[ADDR_STRLEN];
    const char *host = hc->http_host  ? hc->http_host
                       : s->addr_text ? s->addr_text
                                      : addr_format(&s->addr, addr, sizeof(addr));
    char pp[PP_V1_BUILD_MAX > PP_V2_BUILD_MAX ? PP_V1_BUILD_MAX : PP_V2_BUILD_MAX];
    ssize_t pplen = 0;

    struct hc_http *st = calloc(1, sizeof(*st));
    if (!st)
        return -1;
    hs->kind = st;
    st->invalid = request_invalid(method, path, host);
    if (st->invalid)
        return 0;
    /* a health check relays no client: v1 "PROXY UNKNOWN", v2 LOCAL (the spec's case) */
    if (be->send_proxy == PROXY_SEND_V1)
        pplen = pp_build_v1(NULL, NULL, pp, sizeof(pp));
    else if (be->send_proxy == PROXY_SEND_V2)
        pplen = pp_build_v2(NULL, NULL, (uint8_t *)pp, sizeof(pp));
    BUG_ON(pplen < 0);
    static const char fmt[] = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: strata-health\r\n"
                              "Connection: close\r\n\r\n";
    size_t cap = (size_t)pplen + sizeof(fmt) + strlen(method) + strlen(path) + strlen(host);
    st->req = malloc(cap);
    if (!st->req)
        return -1;
    memcpy(st->req, pp, (size_t)pplen);
    int n = snprintf(st->req + pplen, cap - (size_t)pplen, fmt, method, path, host);
    BUG_ON(n < 0 || (size_t)n >= cap - (size_t)pplen);
    st->req_len = (size_t)pplen + (size_t)n;
    return 0;
}

static void http_release(struct hc_server *hs)
{
    struct hc_http *st = hs->kind;
    if (st)
        free(st->req);
    free(st);
    hs->kind = NULL;
}

/* ---- one check ---- */

static int http_open(struct hc_server *hs, const char **why)
{
    struct hc_http *st = hs->kind;
    int in_progress;
    if (st->invalid) {
        *why = st->invalid;
        return -1;
    }
    st->sent = 0;
    st->rlen = 0;
    st->connected = false;
    hs->phase = "connecting";
    return sock_connect_tcp(&hs->srv->addr, &in_progress);
}

/* What the codec found wrong, and the head's first line quoted (up to 40 bytes,
 * non-printable ones as '.'), as the reason. */
static void fail_bad_head(struct hc_server *hs, const char *reason, const char *line, size_t avail)
{
    char why[128];
    int n = snprintf(why, sizeof(why) - 44, "%s \"", reason ? reason : "bad response head");
    size_t w = n < 0 ? 0 : (size_t)n < sizeof(why) - 44 ? (size_t)n : sizeof(why) - 45;
    for (size_t i = 0; i < avail && i < 40 && line[i] != '\r' && line[i] != '\n'; i++)
        why[w++] = line[i] >= ' ' && line[i] < 0x7f ? line[i] : '.';
    why[w++] = '"';
    why[w] = '\0';
    hc_finish(hs, false, why);
}

/* A socket error. Once connected, a reset is the server closing before its status line
 * (it may close before our request arrives, and then the request draws the reset). */
static void http_fail_errno(struct hc_server *hs, int err)
{
    const struct hc_http *st = hs->kind;
    if (st->connected && (err == ECONNRESET || err == EPIPE))
        hc_finish(hs, false, "closed before a status line, with a reset");
    else
        hc_fail_errno(hs, err);
}

/* Judges what was read so far. Returns true when the check has ended. */
static bool http_judge(struct hc_server *hs)
{
    struct hc_http *st = hs->kind;
    const struct health_conf *hc = &hs->srv->backend->hc;
    unsigned lo = hc->status_min ? hc->status_min : 200;
    unsigned hi = hc->status_max ? hc->status_max : 399;
    unsigned status;
    size_t bad;
    const char *reason = NULL;
    char why[96];

    switch (hc_http_status(st->rbuf, st->rlen, &status, &bad, &reason)) {
    case HC_STATUS_MORE:
        if (st->rlen < sizeof(st->rbuf))
            return false;
        snprintf(why, sizeof(why), "no complete response head in the first %zu bytes", st->rlen);
        hc_finish(hs, false, why);
        return true;
    case HC_STATUS_BAD:
        fail_bad_head(hs, reason, st->rbuf + bad, st->rlen - bad);
        return true;
    case HC_STATUS_OK:
        break;
    }
    if (status >= lo && status <= hi) {
        hc_finish(hs, true, NULL);
    } else {
        snprintf(why, sizeof(why), "status %u, expected %u-%u", status, lo, hi);
        hc_finish(hs, false, why);
    }
    return true;
}

/* Reads until a verdict, EAGAIN, or the read bound. */
static void http_read(struct hc_server *hs)
{
    struct hc_http *st = hs->kind;
    while (st->rlen < sizeof(st->rbuf)) {
        ssize_t n = hs->xc.xprt->recv(&hs->xc, st->rbuf + st->rlen, sizeof(st->rbuf) - st->rlen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (errno != EAGAIN)
                http_fail_errno(hs, errno);
            return;
        }
        if (n == 0) {
            hc_finish(hs, false, "closed before a status line");
            return;
        }
        st->rlen += (size_t)n;
        if (http_judge(hs))
            return;
    }
}

static void http_io(struct hc_server *hs, uint32_t events)
{
    struct hc_http *st = hs->kind;
    if (!st->connected) {
        int err = hc_connect_result(hs, events);
        if (err == EINPROGRESS)
            return;
        if (err) {
            hc_fail_errno(hs, err);
            return;
        }
        st->connected = true;
        hs->phase = "sending the request";
    }
    while (st->sent < st->req_len) {
        ssize_t n = hs->xc.xprt->send(&hs->xc, st->req + st->sent, st->req_len - st->sent);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            http_fail_errno(hs, errno);
            return;
        }
        if (n < 0)
            break; /* the rest on EPOLLOUT; an early answer is still read below */
        st->sent += (size_t)n;
        if (st->sent == st->req_len)
            hs->phase = "waiting for the status line";
    }
    http_read(hs);
}

const struct hc_ops hc_http_ops = {
    .name = "HTTP",
    .init = http_init,
    .open = http_open,
    .io = http_io,
    .release = http_release,
};
