/* demo_http.c — the demo's web servers: tiny HTTP/1.1 origins on the demo thread's loop.
 * Requests are parsed by the HTTP/1 codec (http/h1.h). Every request gets 200 and "hello
 * from demo web N: METHOD PATH\n" (GET or HEAD /healthz: "ok"). Keep-alive and pipelining
 * work; a body with Content-Length is read and dropped; a chunked one is refused (501).
 * Paths under /reports/ are slow on purpose (answered after 80-250 ms), so that the
 * dashboard has a slow route to show. A
 * request the codec refuses (its status: 400, 505...) or a request head over WEB_HEAD_MAX
 * (431) is answered and the connection closed. Buffers, connection count and idle time are
 * bounded. Demo thread only (all state here is that thread's).
 */
#include "demo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/list.h"
#include "ev/loop.h"
#include "http/h1.h"
#include "http/msg.h"
#include "net/sock.h"

#define WEB_HEAD_MAX 8192                /* request line + header fields + empty line */
#define WEB_OUT_MAX (WEB_HEAD_MAX + 512) /* one response: its body echoes method and path */
#define WEB_MAX_CONNS 256                /* all demo web servers together */
#define WEB_IDLE_MS 30000                /* a connection with nothing received for this long */
#define WEB_READS_PER_RUN 64             /* then other connections get their turn */
#define WEB_PORT_OFFSET 10               /* server n listens on base + 10 + n */
#define WEB_MAX_FIELDS 100

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
    uint32_t hold_ms; /* the response in `out` waits this long before it is sent */
    bool held;        /* waiting: `timer` sends it at hold_until */
    uint64_t hold_until;
    size_t in_len;    /* bytes in `in` */
    size_t out_off, out_len;
    char in[WEB_HEAD_MAX];
    char out[WEB_OUT_MAX];
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
/* ---- answering ---- */

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    default:
        return "HTTP Version Not Supported";
    }
}

/* Puts one response into the empty `out`. r == NULL: an error `status`, then close. */
static void respond(struct web_conn *c, int status, const struct http_msg *r)
{
    char body[WEB_HEAD_MAX + 64];
    int blen;
    bool head_only = r && r->method == HTTP_M_HEAD;
    bool get = head_only || (r && r->method == HTTP_M_GET);
    bool keep = r && !(r->flags & HTTP_F_CLOSE);
    if (!r)
        blen = snprintf(body, sizeof(body), "%s\n", reason_of(status));
    else if (get && hstr_eq(r->path, hstr_c("/healthz")))
        blen = snprintf(body, sizeof(body), "ok");
    else
        blen = snprintf(body, sizeof(body), "hello from demo web %u: %.*s %.*s%s%.*s\n", c->srv->n,
                        (int)r->method_name.len, r->method_name.p, (int)r->path.len, r->path.p,
                        r->query.p ? "?" : "", (int)r->query.len, r->query.p);
    BUG_ON(blen < 0 || (size_t)blen >= sizeof(body));
    const char *conn = !keep                      ? "Connection: close\r\n"
                       : r->flags & HTTP_F_HTTP10 ? "Connection: keep-alive\r\n"
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

/* The status for a parsed request (200), or for one the codec refused. */
static int request_status(int r, const struct http_msg *m, const struct h1_error *err)
{
    if (r == H1_ERROR)
        return err->status;
    /* chunked bodies are not for this demo: refuse rather than misread */
    return m->body == HTTP_BODY_CHUNKED ? 501 : 200;
}

/* Answers the request at the start of `in` if its head is complete (or wrong). True if it
 * did. Empty lines before a request line are skipped by the codec (RFC 9112 §2.2). */
static bool serve_one(struct web_conn *c)
{
    static const struct h1_limits lim = {WEB_HEAD_MAX, WEB_HEAD_MAX, WEB_MAX_FIELDS};
    struct h1_head h;
    struct h1_error err = {0, NULL};
    size_t hl = 0;
    int r = h1_head_parse(&h, false, c->in, c->in_len, &lim, &hl, &err);
    if (r == H1_AGAIN && c->in_len < sizeof(c->in)) {
        h1_head_release(&h);
        return false;
    }
    int status = r == H1_AGAIN ? 431 : request_status(r, &h.m, &err);
    respond(c, status, status == 200 ? &h.m : NULL);
    if (status == 200) {
        static unsigned slow_n;
        if (h.m.path.len >= 9 && memcmp(h.m.path.p, "/reports/", 9) == 0)
            c->hold_ms = 80 + (slow_n++ * 37) % 171; /* 80..250 ms */
        c->discard = h.m.body == HTTP_BODY_LENGTH ? h.m.content_length : 0;
        c->close_after = (h.m.flags & HTTP_F_CLOSE) != 0;
        consume(c, hl);
    }
    h1_head_release(&h);
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
        if (c->hold_ms) {
            c->hold_until = loop->now_ms + c->hold_ms;
            c->hold_ms = 0;
            c->held = true;
        }
        if (c->held && loop->now_ms < c->hold_until) {
            ev_timer_arm(loop, &c->timer, c->hold_until - loop->now_ms); /* it had a slot */
            return true;
        }
        if (c->held) {
            c->held = false;
            ev_timer_arm(loop, &c->timer, WEB_IDLE_MS);
        }
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
    if ((!c->resume && !c->held) || !conn_work(loop, c))
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
        c->close_after = c->closing = c->eof = c->resume = c->held = false;
        c->in_len = c->out_off = c->out_len = 0;
        c->hold_ms = 0;
        c->hold_until = 0;
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
