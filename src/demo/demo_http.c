/* demo_http.c — the demo's web servers: tiny HTTP/1.1 origins on the demo thread's loop.
 * Every request gets 200 and "hello from demo web N: METHOD PATH\n" (GET or HEAD /healthz:
 * "ok"). Keep-alive and pipelining work; a body with Content-Length is read and dropped;
 * Transfer-Encoding is refused (501). A malformed request (400) or a request head over
 * WEB_HEAD_MAX (431) is answered and the connection closed. Buffers, connection count and
 * idle time are bounded. Demo thread only (all state here is that thread's).
 */
#include "demo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/list.h"
#include "ev/loop.h"
#include "net/sock.h"

#define WEB_HEAD_MAX 8192                /* request line + header fields + empty line */
#define WEB_OUT_MAX (WEB_HEAD_MAX + 512) /* one response: its body echoes method and path */
#define WEB_MAX_CONNS 256                /* all demo web servers together */
#define WEB_IDLE_MS 30000                /* a connection with nothing received for this long */
#define WEB_READS_PER_RUN 64             /* then other connections get their turn */
#define WEB_PORT_OFFSET 10               /* server n listens on base + 10 + n */

struct web_server {
    struct ev_handler h; /* the listening socket, level-triggered */
    unsigned n;          /* 1..DEMO_WEB_SERVERS */
};

/* One client connection. Invariant: a new request is only parsed when `out` is empty and
 * no body bytes remain to drop, so `out` holds at most one response. */
struct web_conn {
    struct ev_handler h;   /* edge-triggered */
    struct ev_timer timer; /* the idle timeout; with `resume`, the next turn at once */
    struct list link;      /* in `conns` */
    const struct web_server *srv;
    uint64_t discard; /* body bytes of the last request still to drop */
    bool close_after; /* close once the last request's body is dropped */
    bool closing;     /* no more requests: close once `out` is sent */
    bool eof;         /* the client closed its side */
    bool resume;      /* used up its reads: `timer` continues the work */
    size_t in_len;    /* bytes in `in` */
    size_t out_off, out_len;
    char in[WEB_HEAD_MAX];
    char out[WEB_OUT_MAX];
};

/* What the server needs of a request; method and target point into the head. */
struct web_req {
    const char *method, *target;
    size_t method_len, target_len;
    uint64_t content_length;
    bool http10; /* HTTP/1.0: persistent only when asked for */
    bool keep_alive;
};

static struct web_server webs[DEMO_WEB_SERVERS] = {[0 ... DEMO_WEB_SERVERS - 1].h.fd = -1};
static struct list conns = {&conns, &conns};
static unsigned nconns;

unsigned demo_http_port(unsigned base, unsigned n)
{
    return base + WEB_PORT_OFFSET + n;
}

/* ---- parsing a request head ---- */

/* tchar of RFC 9110 §5.6.2. */
static bool is_tchar(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static bool all_tchars(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_tchar(p[i]))
            return false;
    return n > 0;
}

/* The length of the head at the start of buf, through its empty line; 0 if incomplete.
 * Lines end with LF, a CR before it is dropped by the parser. */
static size_t head_length(const char *buf, size_t len)
{
    size_t line = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i == line || (i == line + 1 && buf[line] == '\r'))
            return i + 1;
        line = i + 1;
    }
    return 0;
}

/* "METHOD TARGET HTTP/1.x": 0, or the status to answer with. */
static int parse_request_line(const char *p, size_t n, struct web_req *r)
{
    const char *end = p + n, *sp1 = memchr(p, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (!sp2 || !all_tchars(p, (size_t)(sp1 - p)) || sp2 == sp1 + 1)
        return 400;
    for (const char *t = sp1 + 1; t < sp2; t++)
        if (*t <= ' ' || *t >= 0x7f)
            return 400;
    const char *v = sp2 + 1;
    if (end - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1')
        return 505;
    r->method = p;
    r->method_len = (size_t)(sp1 - p);
    r->target = sp1 + 1;
    r->target_len = (size_t)(sp2 - sp1 - 1);
    r->http10 = v[7] == '0';
    r->keep_alive = !r->http10; /* HTTP/1.1 (and later minors): persistent by default */
    return 0;
}

/* Does the comma-separated list v[0..n) hold `token` (case-insensitive)? */
static bool has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return true;
    }
    return false;
}

/* Content-Length: digits only, at most 15 of them; -1 if invalid. */
static int64_t parse_length(const char *v, size_t n)
{
    int64_t x = 0;
    if (n == 0 || n > 15)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

/* One header field line "name: value": 0, or the status to answer with. */
static int parse_field(const char *p, size_t n, struct web_req *r, bool *has_len, bool *conn_close,
                       bool *conn_keep)
{
    const char *colon = memchr(p, ':', n);
    if (!colon || !all_tchars(p, (size_t)(colon - p)))
        return 400; /* also rejects obs-fold and space before the colon */
    size_t nl = (size_t)(colon - p);
    const char *v = colon + 1, *end = p + n;
    for (const char *q = v; q < end; q++)
        if ((*q < ' ' && *q != '\t') || *q == 0x7f)
            return 400;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (nl == 17 && strncasecmp(p, "transfer-encoding", nl) == 0)
        return 501; /* chunked bodies are not for this demo: refuse rather than misread */
    if (nl == 14 && strncasecmp(p, "content-length", nl) == 0) {
        int64_t len = parse_length(v, (size_t)(end - v));
        if (len < 0 || (*has_len && (uint64_t)len != r->content_length))
            return 400;
        r->content_length = (uint64_t)len;
        *has_len = true;
    } else if (nl == 10 && strncasecmp(p, "connection", nl) == 0) {
        *conn_close |= has_token(v, (size_t)(end - v), "close");
        *conn_keep |= has_token(v, (size_t)(end - v), "keep-alive");
    }
    return 0;
}

/* Parses the complete head buf[0..len): 0 and *r, or the status to answer with. */
static int parse_head(const char *buf, size_t len, struct web_req *r)
{
    bool has_len = false, conn_close = false, conn_keep = false;
    size_t line = 0;
    int status = 0;
    memset(r, 0, sizeof(*r));
    for (size_t i = 0; i < len && status == 0; i++) {
        if (buf[i] != '\n')
            continue;
        size_t n = i - line;
        if (n > 0 && buf[i - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the empty line */
        if (line == 0)
            status = parse_request_line(buf, n, r);
        else
            status = parse_field(buf + line, n, r, &has_len, &conn_close, &conn_keep);
        line = i + 1;
    }
    if (conn_close)
        r->keep_alive = false;
    else if (conn_keep)
        r->keep_alive = true;
    return status;
}

/* ---- answering ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    default:
        return "HTTP Version Not Supported";
    }
}

/* Puts one response into the empty `out`. r == NULL: an error `status`, then close. */
static void respond(struct web_conn *c, int status, const struct web_req *r)
{
    char body[WEB_HEAD_MAX + 64];
    int blen;
    bool head_only = r && r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
    bool get = head_only || (r && r->method_len == 3 && memcmp(r->method, "GET", 3) == 0);
    if (!r)
        blen = snprintf(body, sizeof(body), "%s\n", reason_of(status));
    else if (get && r->target_len == 8 && memcmp(r->target, "/healthz", 8) == 0)
        blen = snprintf(body, sizeof(body), "ok");
    else
        blen = snprintf(body, sizeof(body), "hello from demo web %u: %.*s %.*s\n", c->srv->n,
                        (int)r->method_len, r->method, (int)r->target_len, r->target);
    BUG_ON(blen < 0 || (size_t)blen >= sizeof(body));
    const char *conn = !r || !r->keep_alive ? "Connection: close\r\n"
                       : r->http10          ? "Connection: keep-alive\r\n"
                                            : "";
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n"
                     "%.*s",
                     status, reason_of(status), blen, conn, head_only ? 0 : blen, body);
    BUG_ON(n < 0 || (size_t)n >= sizeof(c->out));
    c->out_off = 0;
    c->out_len = (size_t)n;
    if (!r)
        c->closing = true;
}

static void consume(struct web_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* Answers the request at the start of `in` if its head is complete. True if it did. */
static bool serve_one(struct web_conn *c)
{
    size_t skip = 0;
    while (skip < c->in_len && (c->in[skip] == '\r' || c->in[skip] == '\n'))
        skip++; /* empty lines before a request line are ignored (RFC 9112 §2.2) */
    consume(c, skip);
    size_t hl = head_length(c->in, c->in_len);
    if (hl == 0) {
        if (c->in_len < sizeof(c->in))
            return false;
        respond(c, 431, NULL);
        return true;
    }
    struct web_req r;
    int status = parse_head(c->in, hl, &r);
    respond(c, status ? status : 200, status ? NULL : &r);
    consume(c, hl);
    if (!status) {
        c->discard = r.content_length;
        c->close_after = !r.keep_alive;
    }
    return true;
}

/* ---- connections ---- */

static void conn_close(struct ev_loop *loop, struct web_conn *c)
{
    ev_del(loop, &c->h);
    close(c->h.fd);
    ev_timer_cancel(loop, &c->timer);
    list_del(&c->link);
    nconns--;
    free(c);
}

/* Sends, drops body bytes, answers complete requests and reads, until the socket would
 * block (true) or the connection is over (false). */
static bool conn_work(struct ev_loop *loop, struct web_conn *c)
{
    unsigned reads = 0;
    if (c->resume) {
        c->resume = false;
        ev_timer_arm(loop, &c->timer, WEB_IDLE_MS); /* it had a heap slot: cannot fail */
    }
    for (;;) {
        if (c->out_off < c->out_len) {
            ssize_t n = send(c->h.fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
            if (n < 0 && errno != EINTR)
                return errno == EAGAIN;
            c->out_off += n > 0 ? (size_t)n : 0;
            continue;
        }
        c->out_off = c->out_len = 0;
        if (c->closing)
            return false;
        size_t drop = c->discard < c->in_len ? (size_t)c->discard : c->in_len;
        consume(c, drop);
        c->discard -= drop;
        if (c->discard == 0 && c->close_after)
            return false; /* its response is sent, its body read: a clean close */
        if (c->discard == 0 && serve_one(c))
            continue;
        if (c->eof)
            return false;
        if (++reads > WEB_READS_PER_RUN) {
            c->resume = true; /* edge-triggered: no new event would come for what is queued */
            ev_timer_arm(loop, &c->timer, 0);
            return true;
        }
        ssize_t n = recv(c->h.fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            ev_timer_arm(loop, &c->timer, WEB_IDLE_MS); /* armed: cannot fail */
        } else if (n == 0) {
            c->eof = true;
        } else if (errno != EINTR) {
            return errno == EAGAIN;
        }
    }
}

static void conn_io(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct web_conn *c = container_of(h, struct web_conn, h);
    if ((events & EPOLLERR) || !conn_work(loop, c))
        conn_close(loop, c);
}

static void conn_timer(struct ev_loop *loop, struct ev_timer *t)
{
    struct web_conn *c = container_of(t, struct web_conn, timer);
    if (!c->resume || !conn_work(loop, c))
        conn_close(loop, c); /* idle for too long, or over */
}

static void web_accept(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct web_server *srv = container_of(h, struct web_server, h);
    for (int i = 0; i < 16; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct web_conn *c = nconns < WEB_MAX_CONNS ? malloc(sizeof(*c)) : NULL;
        if (!c) {
            close(fd);
            continue;
        }
        c->h = (struct ev_handler){.fd = fd, .cb = conn_io};
        ev_timer_init(&c->timer, conn_timer);
        c->srv = srv;
        c->discard = 0;
        c->close_after = c->closing = c->eof = c->resume = false;
        c->in_len = c->out_off = c->out_len = 0;
        if (ev_timer_arm(loop, &c->timer, WEB_IDLE_MS) < 0 || ev_add(loop, &c->h) < 0) {
            ev_timer_cancel(loop, &c->timer);
            close(fd);
            free(c);
            continue;
        }
        list_add_tail(&conns, &c->link);
        nconns++;
    }
}

/* ---- life cycle ---- */

int demo_http_start(struct ev_loop *loop, unsigned base, char *err, size_t errlen)
{
    for (unsigned i = 0; i < DEMO_WEB_SERVERS; i++) {
        struct sockaddr_any a;
        const char *why;
        char text[32];
        snprintf(text, sizeof(text), "127.0.0.1:%u", demo_http_port(base, i + 1));
        if (addr_parse(text, &a, &why) < 0) {
            snprintf(err, errlen, "demo web server %s: %s", text, why);
            goto fail;
        }
        webs[i].n = i + 1;
        webs[i].h.cb = web_accept;
        webs[i].h.fd = sock_listen_tcp(&a, 128, 0);
        if (webs[i].h.fd < 0 || ev_add_level_in(loop, &webs[i].h) < 0) {
            snprintf(err, errlen, "demo web server %s: %s", text, strerror(errno));
            goto fail;
        }
    }
    return 0;
fail:
    demo_http_stop(loop);
    return -1;
}

void demo_http_stop(struct ev_loop *loop)
{
    while (!list_empty(&conns))
        conn_close(loop, list_entry(conns.next, struct web_conn, link));
    for (unsigned i = 0; i < DEMO_WEB_SERVERS; i++) {
        if (webs[i].h.fd >= 0) {
            ev_del(loop, &webs[i].h);
            close(webs[i].h.fd);
        }
        webs[i].h.fd = -1;
    }
}
