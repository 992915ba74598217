/* admin.c — the admin HTTP listener: accept, read one request (parsed by the HTTP/1 codec,
 * http/h1.h, as strictly as a proxied one), answer, close.
 *
 * A connection goes READ (until the blank line ends the headers) -> WRITE (until the whole
 * response is sent) -> LINGER (write side shut, unread input drained so that closing does
 * not reset the connection before the client has read the answer) -> closed. One timer
 * per connection bounds each state. See admin.h for the contracts.
 */
#include "admin.h"
#include "admin_analytics.h"
#include "admin_api.h"
#include "admin_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/list.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "ev/loop.h"
#include "http/h1.h"
#include "http/msg.h"
#include "net/sock.h"
#include "net/sock_inherit.h"
#include "stats/metrics.h"

#define ADMIN_BACKLOG 64
#define ADMIN_ACCEPT_BATCH 16
#define ADMIN_ACCEPT_PAUSE_MS 100 /* after EMFILE and the like */
#define ADMIN_LINGER_MS 1000
#define ADMIN_LINGER_MAX_DRAIN 65536 /* unread input discarded before giving up */
#define ADMIN_MAX_RESPONSE (64u << 20)
#define ADMIN_MAX_FIELDS 100
#define ADMIN_MAX_INPUT (ADMIN_MAX_REQUEST + ADMIN_MAX_BODY)

enum aconn_state { AC_READ, AC_WRITE, AC_LINGER };

struct admin_conn {
    struct admin *a;
    struct ev_handler io;
    struct ev_timer timer; /* deadline of the current state */
    struct list link;      /* in admin->conns */
    enum aconn_state state;
    size_t inlen;      /* bytes in `in` (READ), or bytes discarded (LINGER) */
    struct strbuf out; /* the whole response (WRITE) */
    const char *extra_headers; /* admin_reply: header lines added to the response, or NULL */
    size_t outoff;     /* bytes of out already sent */
    struct sockaddr_any peer;
    bool continued; /* "100 Continue" sent for an `Expect: 100-continue` body */
    char in[ADMIN_MAX_INPUT]; /* the head, then a body of at most ADMIN_MAX_BODY bytes */
};

struct admin {
    struct ev_loop *loop;
    struct config *cfg;   /* one reference */
    struct ev_handler lh; /* the listening socket, level-triggered */
    bool listening;       /* lh is registered (false while paused) */
    struct ev_timer accept_pause;
    struct list conns;
    uint32_t nconns;
    admin_reload_fn reload; /* POST /reload (admin_set_reload), or NULL */
    void *reload_arg;
};

static void conn_close(struct admin_conn *c)
{
    struct admin *a = c->a;
    ev_del(a->loop, &c->io);
    close(c->io.fd);
    ev_timer_cancel(a->loop, &c->timer);
    list_del(&c->link);
    a->nconns--;
    sb_free(&c->out);
    free(c);
}

static void conn_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    conn_close(container_of(t, struct admin_conn, timer));
}

/* LINGER: discards input until EOF (then closes), EAGAIN (waits) or too much of it. */
static void conn_drain(struct admin_conn *c)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->io.fd, buf, sizeof(buf), 0);
        if (n > 0) {
            c->inlen += (size_t)n;
            if (c->inlen <= ADMIN_LINGER_MAX_DRAIN)
                continue;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        conn_close(c);
        return;
    }
}

/* WRITE: sends what is left; once all is sent, shuts the write side and lingers. */
static void conn_write(struct admin_conn *c)
{
    while (c->outoff < c->out.len) {
        ssize_t n = send(c->io.fd, c->out.buf + c->outoff, c->out.len - c->outoff, MSG_NOSIGNAL);
        if (n > 0) {
            c->outoff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return; /* EPOLLOUT (edge) calls us again */
        } else {
            conn_close(c);
            return;
        }
    }
    sb_free(&c->out);
    shutdown(c->io.fd, SHUT_WR);
    c->state = AC_LINGER;
    c->inlen = 0;
    if (ev_timer_arm(c->a->loop, &c->timer, ADMIN_LINGER_MS) < 0) {
        conn_close(c);
        return;
    }
    conn_drain(c);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 503:
        return "Service Unavailable";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

/* Queues a complete response and starts sending it. head: omit the body (HEAD). */
static void conn_respond(struct admin_conn *c, int status, const char *ctype, const char *body,
                         size_t len, bool head)
{
    struct strbuf *o = &c->out;
    sb_reset(o);
    sb_printf(o, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
              status_text(status), ctype, len);
    if (status == 405 && !c->extra_headers) /* a handler's 405 says its own Allow */
        sb_puts(o, "Allow: GET, HEAD\r\n");
    if (c->extra_headers)
        sb_puts(o, c->extra_headers);
    c->extra_headers = NULL; /* one response's; c may be freed before conn_respond returns */
    sb_puts(o, "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    if (!head)
        sb_append(o, body, len);
    if (o->err) {
        static const char oom[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        sb_free(o);
        sb_init(o, ADMIN_MAX_RESPONSE);
        if (sb_append(o, oom, sizeof(oom) - 1) < 0) {
            conn_close(c);
            return;
        }
    }
    c->state = AC_WRITE;
    c->outoff = 0;
    if (ev_timer_arm(c->a->loop, &c->timer, ADMIN_WRITE_TIMEOUT_MS) < 0) {
        conn_close(c);
        return;
    }
    conn_write(c);
}

struct config *admin_conn_config(const struct admin_conn *c)
{
    return c->a->cfg;
}

void admin_reply(struct admin_conn *c, int status, const char *ctype, const char *headers,
                 const char *body, size_t len, bool head)
{
    c->extra_headers = headers;
    conn_respond(c, status, ctype, body, len, head);
}

static void respond_text(struct admin_conn *c, int status, const char *text, bool head)
{
    conn_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), head);
}

/* OpenMetrics when the client's Accept names it (Prometheus does when it can take it). */
static bool wants_openmetrics(const struct http_msg *m)
{
    struct hstr accept = http_hdr_get(m, hstr_c("accept"));
    return accept.len && memmem(accept.p, accept.len, "application/openmetrics-text", 28);
}

static void serve_metrics(struct admin_conn *c, const struct http_msg *m, bool head)
{
    struct strbuf body;
    bool om = wants_openmetrics(m);
    sb_init(&body, ADMIN_MAX_RESPONSE - 512);
    if (om)
        metrics_render_openmetrics(c->a->cfg, &body);
    else
        metrics_render_prometheus(c->a->cfg, &body);
    if (body.err) {
        sb_free(&body);
        log_warn("admin: /metrics: response too large or out of memory");
        respond_text(c, 500, "cannot render metrics\n", head);
        return;
    }
    admin_reply_maybe_gzip(c, m, 200,
                           om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                              : "text/plain; version=0.0.4; charset=utf-8",
                           sb_str(&body), body.len, head);
    sb_free(&body);
}

/* POST /reload: the reload runs here, on the control thread; 200 with its summary, or
 * 422 with the errors (FILE:LINE:COL) and the running configuration left in force. */
static void serve_reload(struct admin_conn *c)
{
    struct strbuf out;
    sb_init(&out, 1u << 20);
    int rc = c->a->reload ? c->a->reload(c->a->reload_arg, &out) : -1;
    if (!c->a->reload)
        sb_puts(&out, "reload is not available\n");
    respond_text(c, rc == 0 ? 200 : c->a->reload ? 422 : 503, sb_str(&out), false);
    sb_free(&out);
}

/* A JSON endpoint of the API (admin_analytics.h and the like). */
static void serve_json(struct admin_conn *c, bool head, const struct http_msg *m, admin_json_fn fn)
{
    struct strbuf body;
    sb_init(&body, ADMIN_MAX_RESPONSE - 512);
    int status = fn(c->a->cfg, m, &body);
    if (body.err) {
        sb_free(&body);
        respond_text(c, 500, "cannot render the answer\n", head);
        return;
    }
    conn_respond(c, status, "application/json", sb_str(&body), body.len, head);
    sb_free(&body);
}

/* Answers a complete request (its head, and its body when it has one). The runtime API and
 * POST /reload show the admin token first when one is configured; the read-only views
 * (/metrics, /api/v1/stats, trends, top, the dashboard) stay open as /metrics is. */
static void handle_request(struct admin_conn *c, const struct http_msg *m, const char *body,
                           size_t body_len)
{
    bool head = m->method == HTTP_M_HEAD;
    struct admin_req rq = {c, m, body, body_len, &c->peer, c->a->cfg};
    bool reload = m->method == HTTP_M_POST && hstr_eq(m->path, hstr_c("/reload"));
    bool runtime_api = admin_api_serves(m->path);
    if ((runtime_api || reload) && !admin_authorized(&rq))
        return; /* answered 401 or 403 */
    if (reload) {
        admin_log_write(&rq, "reload asked");
        serve_reload(c);
    } else if (runtime_api) {
        admin_api_serve(&rq);
    } else if (!head && m->method != HTTP_M_GET)
        respond_text(c, 405, "method not allowed\n", false);
    else if (hstr_eq(m->path, hstr_c("/metrics")))
        serve_metrics(c, m, head);
    else if (hstr_eq(m->path, hstr_c("/api/v1/trends")))
        serve_json(c, head, m, admin_trends);
    else if (hstr_eq(m->path, hstr_c("/api/v1/top")))
        serve_json(c, head, m, admin_top);
    else if (hstr_eq(m->path, hstr_c("/healthz")))
        respond_text(c, 200, "ok\n", head);
    else if (hstr_eq(m->path, hstr_c("/api/v1/stats")))
        admin_serve_stats(c, m, head);
    else if (admin_serve_web(c, m, head))
        ;
    else
        respond_text(c, 404, "not found\n", head);
}

/* A complete head: answers once its body (Content-Length, at most ADMIN_MAX_BODY bytes)
 * is here too. False while more is needed. */
static bool try_body(struct admin_conn *c, const struct http_msg *m, size_t head_len)
{
    if (m->body == HTTP_BODY_CHUNKED) {
        respond_text(c, 411, "a request body needs Content-Length\n", false);
        return true;
    }
    uint64_t len = m->body == HTTP_BODY_LENGTH ? m->content_length : 0;
    if (len > ADMIN_MAX_BODY) {
        respond_text(c, 413, "request body too large\n", false);
        return true;
    }
    if (c->inlen - head_len < len) {
        if ((m->flags & HTTP_F_EXPECT_100) && !c->continued) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            c->continued = true; /* small enough for any socket buffer; a failure shows later */
            (void)!send(c->io.fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
        }
        return false;
    }
    handle_request(c, m, c->in + head_len, (size_t)len);
    return true;
}

/* Parses the bytes read so far (from the start: a head is at most ADMIN_MAX_REQUEST
 * bytes) and answers once the request is complete or wrong. False while more is needed.
 * Bytes after the body (pipelined requests) are ignored, and drained on linger. */
static bool try_request(struct admin_conn *c)
{
    static const struct h1_limits lim = {ADMIN_MAX_REQUEST, ADMIN_MAX_REQUEST, ADMIN_MAX_FIELDS};
    struct h1_head h;
    struct h1_error err = {0, NULL};
    size_t head_len;
    int r = h1_head_parse(&h, false, c->in, c->inlen, &lim, &head_len, &err);
    bool done = r != H1_AGAIN;
    if (r == H1_DONE)
        done = try_body(c, &h.m, head_len);
    else if (r == H1_ERROR && (err.status == 431 || err.status == 414))
        respond_text(c, 431, "request header too large\n", false);
    else if (r == H1_ERROR) /* whatever the codec says (400, 417, 501, 505): a bad request */
        respond_text(c, 400, "bad request\n", false);
    h1_head_release(&h);
    return done;
}

/* READ: reads until the head is complete (then answers), EAGAIN, EOF or the size cap. */
static void conn_read(struct admin_conn *c)
{
    for (;;) {
        if (c->inlen == ADMIN_MAX_INPUT) { /* the parser caps the head: this is a body */
            respond_text(c, 413, "request body too large\n", false);
            return;
        }
        ssize_t n = recv(c->io.fd, c->in + c->inlen, ADMIN_MAX_INPUT - c->inlen, 0);
        if (n > 0) {
            c->inlen += (size_t)n;
            if (try_request(c))
                return;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            conn_close(c); /* EOF before a complete request, or a socket error */
            return;
        }
    }
}

static void conn_io_cb(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct admin_conn *c = container_of(h, struct admin_conn, io);
    (void)loop;
    (void)events; /* each state reads or writes until EAGAIN, whatever woke it */
    switch (c->state) {
    case AC_READ:
        conn_read(c);
        break;
    case AC_WRITE:
        conn_write(c);
        break;
    case AC_LINGER:
        conn_drain(c);
        break;
    }
}

/* Takes over fd (accepted from peer) as a new admin connection; closes it on failure. */
static void conn_new(struct admin *a, int fd, const struct sockaddr_any *peer)
{
    struct admin_conn *c = malloc(sizeof(*c));
    if (!c)
        goto fail;
    c->a = a;
    c->peer = *peer;
    c->continued = false;
    c->io.fd = fd;
    c->io.cb = conn_io_cb;
    ev_timer_init(&c->timer, conn_timer_cb);
    c->state = AC_READ;
    c->inlen = 0;
    c->outoff = 0;
    c->extra_headers = NULL;
    sb_init(&c->out, ADMIN_MAX_RESPONSE);
    if (ev_timer_arm(a->loop, &c->timer, ADMIN_READ_TIMEOUT_MS) < 0)
        goto fail_c;
    if (ev_add(a->loop, &c->io) < 0)
        goto fail_timer;
    list_add_tail(&a->conns, &c->link);
    a->nconns++;
    return; /* the edge-triggered registration reports the data already there */
fail_timer:
    ev_timer_cancel(a->loop, &c->timer);
fail_c:
    free(c);
fail:
    close(fd);
}

static void accept_pause_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct admin *a = container_of(t, struct admin, accept_pause);
    if (ev_add_level_in(loop, &a->lh) == 0)
        a->listening = true;
    else if (ev_timer_arm(loop, t, ADMIN_ACCEPT_PAUSE_MS) < 0)
        log_err("admin: cannot resume accepting: %m");
}

/* Stops accepting for a moment: the level-triggered listener would spin on EMFILE. */
static void accept_pause(struct admin *a, int err)
{
    log_warn("admin: accept: %s; pausing for %dms", strerror(err), ADMIN_ACCEPT_PAUSE_MS);
    ev_del(a->loop, &a->lh);
    a->listening = false;
    if (ev_timer_arm(a->loop, &a->accept_pause, ADMIN_ACCEPT_PAUSE_MS) < 0)
        log_err("admin: cannot schedule resuming accepts: out of memory");
}

static void accept_cb(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct admin *a = container_of(h, struct admin, lh);
    (void)loop;
    (void)events;
    for (int i = 0; i < ADMIN_ACCEPT_BATCH && a->listening; i++) {
        struct sockaddr_any peer;
        peer.len = sizeof(peer.u);
        int fd = accept4(a->lh.fd, &peer.u.sa, &peer.len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(a, errno);
            return; /* EAGAIN, or an error the next readiness will retry */
        }
        if (a->nconns >= ADMIN_MAX_CONNS) {
            close(fd); /* over the limit: refuse rather than queue */
            continue;
        }
        conn_new(a, fd, &peer);
    }
}

struct admin *admin_start(struct ev_loop *loop, struct config *cfg, const char **why)
{
    static __thread char msg[160];
    struct admin *a = calloc(1, sizeof(*a));
    if (!a) {
        *why = "out of memory";
        return NULL;
    }
    a->loop = loop;
    list_init(&a->conns);
    ev_timer_init(&a->accept_pause, accept_pause_cb);
    a->lh.cb = accept_cb;
    a->lh.fd = sock_inherit_take(SOCK_INHERIT_ADMIN, &cfg->admin_addr); /* an upgrade's */
    if (a->lh.fd < 0)
        a->lh.fd = sock_listen_tcp(&cfg->admin_addr, ADMIN_BACKLOG, 0);
    if (a->lh.fd < 0)
        goto fail;
    if (ev_add_level_in(loop, &a->lh) < 0)
        goto fail_fd;
    a->listening = true;
    a->cfg = config_ref(cfg);
    return a;
fail_fd:;
    int e = errno;
    close(a->lh.fd);
    errno = e;
fail:
    snprintf(msg, sizeof(msg), "%s", strerror(errno));
    *why = msg;
    free(a);
    return NULL;
}

int admin_listen_fd(const struct admin *a)
{
    return a->lh.fd;
}

int admin_local_addr(const struct admin *a, struct sockaddr_any *out)
{
    out->len = sizeof(out->u);
    return getsockname(a->lh.fd, &out->u.sa, &out->len);
}

void admin_set_config(struct admin *a, struct config *cfg)
{
    struct config *old = a->cfg;
    a->cfg = config_ref(cfg);
    config_unref(old);
}

void admin_set_reload(struct admin *a, admin_reload_fn fn, void *arg)
{
    a->reload = fn;
    a->reload_arg = arg;
}

void admin_stop(struct admin *a)
{
    struct list *pos, *tmp;
    if (!a)
        return;
    list_for_each_safe(pos, tmp, &a->conns) conn_close(list_entry(pos, struct admin_conn, link));
    if (a->listening)
        ev_del(a->loop, &a->lh);
    ev_timer_cancel(a->loop, &a->accept_pause);
    close(a->lh.fd);
    admin_stats_release();
    config_unref(a->cfg);
    free(a);
}
