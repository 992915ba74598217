/* access_log.c — see access_log.h. */
#include "http/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "ev/worker.h"
#include "http/route-t.h"
#include "net/conn.h"

#define ACCESS_BUF 65536
#define ACCESS_LINE_MAX 4096

int access_log_open(struct config *cfg, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++) {
        struct listener_conf *lc = &cfg->listeners[i];
        lc->st.access_fd = -1;
        if (lc->mode != MODE_HTTP || lc->http.access_log == ACCESS_LOG_OFF)
            continue;
        if (!lc->http.access_log_path) {
            lc->st.access_fd = STDOUT_FILENO;
            continue;
        }
        /* listeners sharing a path share the descriptor */
        for (uint32_t j = 0; j < i; j++) {
            struct listener_conf *o = &cfg->listeners[j];
            if (o->st.access_fd > STDOUT_FILENO && o->http.access_log_path &&
                strcmp(o->http.access_log_path, lc->http.access_log_path) == 0)
                lc->st.access_fd = o->st.access_fd;
        }
        if (lc->st.access_fd >= 0)
            continue;
        int fd = open(lc->http.access_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0) {
            snprintf(err, errlen, "listener %s: access log %s: %s", lc->name,
                     lc->http.access_log_path, strerror(errno));
            return -1;
        }
        lc->st.access_fd = fd;
    }
    return 0;
}

void access_log_close(struct config *cfg)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++) {
        int fd = cfg->listeners[i].st.access_fd;
        if (fd <= STDERR_FILENO)
            continue;
        for (uint32_t j = i; j < cfg->nlisteners; j++)
            if (cfg->listeners[j].st.access_fd == fd)
                cfg->listeners[j].st.access_fd = -1;
        close(fd);
    }
}

void access_log_flush(struct worker *w)
{
    size_t off = 0;
    while (off < w->access_len) {
        ssize_t n = write(w->access_fd, w->access_buf + off, w->access_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* a full disk or a closed pipe: the lines are dropped, not the loop */
        off += (size_t)n;
    }
    w->access_len = 0;
}

/* Appends s as a JSON string body (without quotes), escaping what JSON requires and
 * any byte outside printable ASCII. */
static size_t json_str(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len && o + 6 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* Text format: printable ASCII kept, anything else (and '"', '\') escaped as \xHH. */
static size_t text_str(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

struct line {
    char buf[ACCESS_LINE_MAX];
    size_t len;
    bool json;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
    if (n > sizeof(l->buf) - l->len - 1)
        n = sizeof(l->buf) - l->len - 1;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_fmt(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < sizeof(l->buf) - l->len ? (size_t)n : sizeof(l->buf) - l->len - 1;
}

/* A string field: JSON "key":"value", text key="value"; absent values are "-". */
static void put_str(struct line *l, const char *key, const char *s, size_t n)
{
    if (!s) {
        s = "-";
        n = 1;
    }
    put_fmt(l, l->json ? ",\"%s\":\"" : " %s=\"", key);
    size_t room = sizeof(l->buf) - l->len - 2;
    l->len +=
        l->json ? json_str(l->buf + l->len, room, s, n) : text_str(l->buf + l->len, room, s, n);
    put_raw(l, "\"", 1);
}

static void put_num(struct line *l, const char *key, long long v)
{
    put_fmt(l, l->json ? ",\"%s\":%lld" : " %s=%lld", key, v);
}

static void put_time(struct line *l)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    put_fmt(l, l->json ? "{\"time\":\"%s.%03ldZ\"" : "%s.%03ldZ", date, ts.tv_nsec / 1000000);
}

static void put_ms(struct line *l, const char *key, int64_t us)
{
    if (us < 0) {
        put_fmt(l, l->json ? ",\"%s\":null" : " %s=-", key);
        return;
    }
    put_fmt(l, l->json ? ",\"%s\":%lld.%03lld" : " %s=%lld.%03lld", key, (long long)(us / 1000),
            (long long)(us % 1000));
}

/* TLS fields of the client connection: version, cipher, SNI, resumed. */
static void put_tls(struct line *l, const struct conn *c)
{
    struct xprt_info info;
    c->xprt->info(c, &info);
    put_str(l, "tls_version", info.version, info.version ? strlen(info.version) : 0);
    put_str(l, "tls_cipher", info.cipher, info.cipher ? strlen(info.cipher) : 0);
    put_str(l, "tls_sni", info.sni, info.sni ? strlen(info.sni) : 0);
    put_num(l, "tls_resumed", info.resumed);
}

void access_log_write(struct worker *w, const struct listener_conf *lc,
                      const struct access_entry *e)
{
    int fd = lc->st.access_fd;
    if (fd < 0)
        return;
    const struct http_txn *t = e->t;
    const struct http_msg *rq = &t->req;
    struct line l = {.len = 0, .json = lc->http.access_log == ACCESS_LOG_JSON};
    char client[ADDR_STRLEN];
    addr_format(&t->client, client, sizeof(client));
    put_time(&l);
    put_str(&l, "listener", lc->name, strlen(lc->name));
    put_str(&l, "client", client, strlen(client));
    put_str(&l, "method", rq->method_name.p, rq->method_name.len);
    put_str(&l, "version", rq->version == 20 ? "2" : rq->version == 10 ? "1.0" : "1.1",
            rq->version == 20 ? 1 : 3);
    put_str(&l, "host", rq->authority.p, rq->authority.len);
    put_str(&l, "path", t->orig_path.p, t->orig_path.len);
    if (rq->query.len)
        put_str(&l, "query", rq->query.p, rq->query.len);
    put_num(&l, "status", e->status);
    put_num(&l, "bytes_in", (long long)e->bytes_in);
    put_num(&l, "bytes_out", (long long)e->bytes_out);
    const char *route = t->route ? t->route->name : NULL;
    put_str(&l, "route", route, route ? strlen(route) : 0);
    const char *backend = t->backend ? t->backend->name : NULL;
    put_str(&l, "backend", backend, backend ? strlen(backend) : 0);
    const char *server = t->server ? t->server->name : NULL;
    put_str(&l, "server", server, server ? strlen(server) : 0);
    put_ms(&l, "duration_ms", (int64_t)e->total_us);
    put_ms(&l, "connect_ms", e->connect_us);
    put_ms(&l, "ttfb_ms", e->ttfb_us);
    put_num(&l, "retries", e->retries);
    put_str(&l, "request_id", t->request_id.p, t->request_id.len);
    put_str(&l, "end", e->end, strlen(e->end));
    if (t->tls)
        put_tls(&l, t->conn);
    if (e->detail)
        put_str(&l, "detail", e->detail, strlen(e->detail));
    if (l.json)
        put_raw(&l, "}", 1);
    l.buf[l.len++] = '\n';

    if (!w->access_buf && !(w->access_buf = malloc(ACCESS_BUF)))
        return;
    if (w->access_len && (w->access_fd != fd || w->access_len + l.len > ACCESS_BUF))
        access_log_flush(w);
    w->access_fd = fd;
    memcpy(w->access_buf + w->access_len, l.buf, l.len);
    w->access_len += l.len;
}
