/* test_health_http.c — active HTTP checks against a tiny HTTP server run in a thread on
 * 127.0.0.1 (port chosen by the kernel): verdicts on the status, the reasons the DOWN line
 * gives (the log is captured from stderr), the request as configured, the PROXY header,
 * and the verdict on response heads (through the HTTP/1 codec) on its own. Every loop is
 * bounded in count and time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/log.h"
#include "core/time.h"
#include "ev/loop.h"
#include "health/check.h"
#include "health/health.h"
#include "net/proxy_proto.h"
#include "test.h"

/* ---- the test server: one connection at a time, behaviour set before start ---- */

enum web_mode {
    WEB_REPLY,      /* read the request, send `reply`, close */
    WEB_REPLY_HOLD, /* read the request, send `reply`, keep the connection open */
    WEB_SLOW_REPLY, /* as WEB_REPLY, one byte every millisecond */
    WEB_CLOSE,      /* accept and close at once */
    WEB_SILENT,     /* read the request, never answer, keep the connection open */
};

#define WEB_HELD_MAX 32

struct web {
    int lfd;
    struct sockaddr_any addr;
    char addr_text[ADDR_STRLEN];
    pthread_t thread;
    _Atomic bool stop;
    pthread_mutex_t mu;
    enum web_mode mode;
    char reply[512]; /* under mu */
    /* what was seen, under mu */
    unsigned accepted;
    char last[2048];
    size_t last_len;
    int held[WEB_HELD_MAX];
    unsigned nheld;
};

/* Reads a request head (bounded by size and a 500 ms receive timeout): up to the empty
 * line after the request line, which may come after a PROXY header. Returns its length. */
static size_t web_read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (int i = 0; i < 256 && len < cap; i++) {
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        const char *rl = memmem(buf, len, " HTTP/1.1\r\n", 11);
        if (rl && memmem(rl, len - (size_t)(rl - buf), "\r\n\r\n", 4))
            break;
    }
    return len;
}

static void web_serve(struct web *w, int fd)
{
    char head[2048], reply[512];
    struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t len = web_read_head(fd, head, sizeof(head));
    pthread_mutex_lock(&w->mu);
    memcpy(w->last, head, len);
    w->last_len = len;
    snprintf(reply, sizeof(reply), "%s", w->reply);
    pthread_mutex_unlock(&w->mu);
    size_t rlen = strlen(reply);
    if (w->mode == WEB_SLOW_REPLY) {
        for (size_t i = 0; i < rlen; i++) {
            if (send(fd, reply + i, 1, MSG_NOSIGNAL) != 1)
                break;
            usleep(1000);
        }
    } else if (w->mode != WEB_SILENT && send(fd, reply, rlen, MSG_NOSIGNAL) < 0) {
        /* the check may be gone already: nothing to do */
    }
    if ((w->mode == WEB_SILENT || w->mode == WEB_REPLY_HOLD) && w->nheld < WEB_HELD_MAX)
        w->held[w->nheld++] = fd;
    else
        close(fd);
}

static void *web_main(void *arg)
{
    struct web *w = arg;
    struct pollfd p = {.fd = w->lfd, .events = POLLIN};
    while (!atomic_load(&w->stop)) {
        if (poll(&p, 1, 10) <= 0)
            continue;
        int fd = accept4(w->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&w->mu);
        w->accepted++;
        pthread_mutex_unlock(&w->mu);
        if (w->mode == WEB_CLOSE)
            close(fd);
        else
            web_serve(w, fd);
    }
    return NULL;
}

static void web_set_reply(struct web *w, const char *reply)
{
    pthread_mutex_lock(&w->mu);
    snprintf(w->reply, sizeof(w->reply), "%s", reply);
    pthread_mutex_unlock(&w->mu);
}

static struct web *web_start(enum web_mode mode, const char *reply)
{
    struct web *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->mode = mode;
    pthread_mutex_init(&w->mu, NULL);
    web_set_reply(w, reply ? reply : "");
    w->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    w->addr.u.in.sin_family = AF_INET;
    w->addr.u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    w->addr.len = sizeof(w->addr.u.in);
    if (w->lfd < 0 || bind(w->lfd, &w->addr.u.sa, w->addr.len) < 0 || listen(w->lfd, 64) < 0 ||
        getsockname(w->lfd, &w->addr.u.sa, &w->addr.len) < 0 ||
        pthread_create(&w->thread, NULL, web_main, w) != 0)
        abort();
    addr_format(&w->addr, w->addr_text, sizeof(w->addr_text));
    return w;
}

static void web_stop(struct web *w)
{
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    for (unsigned i = 0; i < w->nheld; i++)
        close(w->held[i]);
    close(w->lfd);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* The last request head the server read, NUL-terminated (NULs inside kept). */
static size_t web_last(struct web *w, char *out, size_t cap)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->last_len < cap - 1 ? w->last_len : cap - 1;
    memcpy(out, w->last, n);
    out[n] = '\0';
    pthread_mutex_unlock(&w->mu);
    return n;
}

static unsigned web_accepted(struct web *w)
{
    pthread_mutex_lock(&w->mu);
    unsigned n = w->accepted;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* ---- a one-server backend, the loop, the captured log ---- */

struct fix {
    struct config cfg;
    struct backend be;
    struct server srv;
    struct server_live live;
    struct ev_loop loop;
    struct health *h;
    int saved_err, log_fd;
    enum log_level saved_level;
    char log[8192];
};

/* A backend "b" with server "s" at a (addr_text as given), checked by HTTP every 50 ms,
 * timeout 300 ms, rise 2, fall 2; the server starts in state `up`. */
static struct fix *fix_new(const struct sockaddr_any *a, const char *addr_text, bool up)
{
    struct fix *f = calloc(1, sizeof(*f));
    if (!f)
        abort();
    atomic_store(&f->cfg.refs, 1);
    f->cfg.workers = 1;
    f->cfg.backends = &f->be;
    f->cfg.nbackends = 1;
    f->be.name = "b";
    f->be.servers = &f->srv;
    f->be.nservers = 1;
    f->be.hc = (struct health_conf){
        .type = HC_HTTP, .interval_ms = 50, .timeout_ms = 300, .rise = 2, .fall = 2};
    f->srv.name = "s";
    f->srv.addr = *a;
    f->srv.addr_text = (char *)addr_text;
    f->srv.backend = &f->be;
    f->srv.st.live = &f->live;
    atomic_store(&f->srv.st.live->up, up);
    return f;
}

/* Starts the checks with the log (info and up) going to a memory file. */
static void fix_start(struct fix *f)
{
    fflush(stderr);
    f->log_fd = memfd_create("strata-log", MFD_CLOEXEC);
    f->saved_err = dup(STDERR_FILENO);
    if (f->log_fd < 0 || f->saved_err < 0 || dup2(f->log_fd, STDERR_FILENO) < 0)
        abort();
    f->saved_level = log_threshold;
    log_threshold = LOG_INFO;
    if (ev_loop_init(&f->loop) < 0 || !(f->h = health_start(&f->loop, &f->cfg)))
        abort();
}

struct watch {
    struct ev_timer t;
    const struct server *s;
    bool want;
    uint64_t deadline;
};

static void watch_cb(struct ev_loop *loop, struct ev_timer *t)
{
    struct watch *w = container_of(t, struct watch, t);
    if (atomic_load(&w->s->st.live->up) == w->want || loop->now_ms >= w->deadline)
        loop->stop = true;
    else
        ev_timer_arm(loop, t, 2);
}

/* Runs the checks until the server's state is `want` or max_ms elapse; the elapsed ms. */
static uint64_t fix_run(struct fix *f, bool want, uint64_t max_ms)
{
    struct watch w = {.s = &f->srv, .want = want};
    uint64_t t0 = mono_ms();
    ev_timer_init(&w.t, watch_cb);
    f->loop.now_ms = t0;
    w.deadline = t0 + max_ms;
    ev_timer_arm(&f->loop, &w.t, 0);
    f->loop.stop = false;
    ev_loop_run(&f->loop);
    ev_timer_cancel(&f->loop, &w.t);
    return mono_ms() - t0;
}

/* Stops the checks and the capture; f->log holds what was logged. */
static void fix_end(struct fix *f)
{
    health_stop(f->h);
    CHECK_EQ_U64(f->loop.nheap, 0);
    ev_loop_free(&f->loop);
    dup2(f->saved_err, STDERR_FILENO);
    close(f->saved_err);
    ssize_t n = pread(f->log_fd, f->log, sizeof(f->log) - 1, 0);
    f->log[n > 0 ? n : 0] = '\0';
    close(f->log_fd);
    log_threshold = f->saved_level;
}

static bool is_up(const struct fix *f)
{
    return atomic_load(&f->srv.st.live->up);
}

#define OK_200 "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"

/* ---- verdicts ---- */

TEST(health_http_up_on_200_with_the_default_request)
{
    struct web *w = web_start(WEB_REPLY, OK_200);
    struct fix *f = fix_new(&w->addr, w->addr_text, false);
    char want[256], got[2048];
    fix_start(f);
    uint64_t ms = fix_run(f, true, 3000);
    fix_end(f);
    CHECK(is_up(f));
    CHECK(ms >= 45 && ms < 1000); /* rise 2: two checks, one interval apart */
    CHECK_STR_CONTAINS(f->log, "server b/s is UP: 2 consecutive successful HTTP checks");
    snprintf(want, sizeof(want),
             "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: strata-health\r\n"
             "Connection: close\r\n\r\n",
             w->addr_text);
    CHECK_EQ_U64(web_last(w, got, sizeof(got)), strlen(want));
    CHECK(strcmp(got, want) == 0);
    web_stop(w);
    free(f);
}

TEST(health_http_down_on_503_with_the_status)
{
    struct web *w = web_start(WEB_REPLY, "HTTP/1.1 503 Service Unavailable\r\n"
                                         "Content-Length: 0\r\n\r\n");
    struct fix *f = fix_new(&w->addr, w->addr_text, true);
    fix_start(f);
    uint64_t ms = fix_run(f, false, 3000);
    fix_end(f);
    CHECK(!is_up(f));
    CHECK(ms >= 45 && ms < 1000); /* fall 2 */
    CHECK_STR_CONTAINS(f->log, "server b/s is DOWN: 2 consecutive failed HTTP checks "
                               "(status 503, expected 200-399)");
    web_stop(w);
    free(f);
}

/* A server that reads the request and closes; one that closes before reading it (our
 * request may then draw a reset: the same reason, "with a reset"). */
TEST(health_http_down_when_closed_before_a_status_line)
{
    for (int i = 0; i < 2; i++) {
        struct web *w = i == 0 ? web_start(WEB_REPLY, "") : web_start(WEB_CLOSE, NULL);
        struct fix *f = fix_new(&w->addr, w->addr_text, true);
        fix_start(f);
        fix_run(f, false, 3000);
        fix_end(f);
        CHECK(!is_up(f));
        CHECK_STR_CONTAINS(f->log, i == 0 ? "is DOWN: 2 consecutive failed HTTP checks (closed "
                                            "before a status line)"
                                          : "is DOWN: 2 consecutive failed HTTP checks (closed "
                                            "before a status line");
        CHECK(web_accepted(w) >= 2);
        web_stop(w);
        free(f);
    }
}

/* A server that reads the request and never answers: timeout_ms bounds each check. */
TEST(health_http_down_on_timeout)
{
    struct web *w = web_start(WEB_SILENT, NULL);
    struct fix *f = fix_new(&w->addr, w->addr_text, true);
    f->be.hc.timeout_ms = 100;
    fix_start(f);
    uint64_t ms = fix_run(f, false, 3000);
    fix_end(f);
    CHECK(!is_up(f));
    CHECK(ms >= 195 && ms < 2000); /* two checks of 100 ms each, back to back */
    CHECK_STR_CONTAINS(f->log, "(timeout after 100ms waiting for the status line)");
    web_stop(w);
    free(f);
}

TEST(health_http_down_on_connection_refused)
{
    struct sockaddr_any a = {.len = sizeof(a.u.in)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.u.in.sin_family = AF_INET;
    a.u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && bind(fd, &a.u.sa, a.len) == 0 && getsockname(fd, &a.u.sa, &a.len) == 0);
    close(fd); /* a port where nothing listens */
    struct fix *f = fix_new(&a, "127.0.0.1:1", true);
    fix_start(f);
    fix_run(f, false, 3000);
    fix_end(f);
    CHECK(!is_up(f));
    CHECK_STR_CONTAINS(f->log, "2 consecutive failed HTTP checks (connection refused)");
    free(f);
}

/* expect_status 200-204: a redirect is a failure, 204 a success. */
TEST(health_http_expected_range)
{
    struct web *w = web_start(WEB_REPLY, "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n");
    struct fix *f = fix_new(&w->addr, w->addr_text, true);
    f->be.hc.status_min = 200;
    f->be.hc.status_max = 204;
    fix_start(f);
    fix_run(f, false, 3000);
    CHECK(!is_up(f));
    web_set_reply(w, "HTTP/1.1 204 No Content\r\n\r\n");
    fix_run(f, true, 3000);
    fix_end(f);
    CHECK(is_up(f));
    CHECK_STR_CONTAINS(f->log, "(status 302, expected 200-204)");
    CHECK_STR_CONTAINS(f->log, "is UP: 2 consecutive successful HTTP checks");
    web_stop(w);
    free(f);
}

TEST(health_http_bad_status_line)
{
    struct web *w = web_start(WEB_REPLY, "SSH-2.0-OpenSSH_9.2\r\n");
    struct fix *f = fix_new(&w->addr, w->addr_text, true);
    fix_start(f);
    fix_run(f, false, 3000);
    fix_end(f);
    CHECK(!is_up(f));
    CHECK_STR_CONTAINS(f->log, "(bad status line \"SSH-2.0-OpenSSH_9.2\")");
    web_stop(w);
    free(f);
}

/* The verdict comes with the status line: a body that never ends is not waited for. */
TEST(health_http_does_not_wait_for_the_body)
{
    struct web *w = web_start(WEB_REPLY_HOLD, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n"
                                              "\r\nthe start of a long body");
    struct fix *f = fix_new(&w->addr, w->addr_text, false);
    fix_start(f);
    uint64_t ms = fix_run(f, true, 3000);
    fix_end(f);
    CHECK(is_up(f));
    CHECK(ms < 280); /* two checks well under one timeout (300 ms) each */
    web_stop(w);
    free(f);
}

/* A status line split over many segments, after an interim 103 response. */
TEST(health_http_split_reply_after_an_interim_response)
{
    struct web *w = web_start(WEB_SLOW_REPLY, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n"
                                              "\r\nHTTP/1.1 200 OK\r\n\r\n");
    struct fix *f = fix_new(&w->addr, w->addr_text, false);
    fix_start(f);
    fix_run(f, true, 3000);
    fix_end(f);
    CHECK(is_up(f));
    web_stop(w);
    free(f);
}

/* ---- the request ---- */

TEST(health_http_sends_method_path_and_host_as_configured)
{
    struct web *w = web_start(WEB_REPLY, OK_200);
    struct fix *f = fix_new(&w->addr, w->addr_text, false);
    char got[2048];
    f->be.hc.http_method = "HEAD";
    f->be.hc.http_path = "/healthz?full=1";
    f->be.hc.http_host = "api.example.com";
    fix_start(f);
    fix_run(f, true, 3000);
    fix_end(f);
    CHECK(is_up(f));
    web_last(w, got, sizeof(got));
    CHECK(strcmp(got, "HEAD /healthz?full=1 HTTP/1.1\r\nHost: api.example.com\r\n"
                      "User-Agent: strata-health\r\nConnection: close\r\n\r\n") == 0);
    web_stop(w);
    free(f);
}

/* A backend that sends the PROXY protocol has its checks start with a header that says
 * "no client": v1 UNKNOWN, v2 LOCAL. */
TEST(health_http_sends_the_proxy_header)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n";
    char got[2048];
    for (int v = 1; v <= 2; v++) {
        struct web *w = web_start(WEB_REPLY, OK_200);
        struct fix *f = fix_new(&w->addr, "h", false);
        f->be.send_proxy = v == 1 ? PROXY_SEND_V1 : PROXY_SEND_V2;
        fix_start(f);
        fix_run(f, true, 3000);
        fix_end(f);
        CHECK(is_up(f));
        size_t n = web_last(w, got, sizeof(got));
        if (v == 1) {
            CHECK(n > 15 && memcmp(got, "PROXY UNKNOWN\r\n", 15) == 0);
            CHECK(n > 15 + strlen(req) && memcmp(got + 15, req, strlen(req)) == 0);
        } else {
            CHECK(n > 16 && memcmp(got, PP_V2_SIG, PP_V2_SIG_LEN) == 0);
            CHECK(got[12] == 0x20 && got[13] == 0 && got[14] == 0 && got[15] == 0); /* LOCAL */
            CHECK(n > 16 + strlen(req) && memcmp(got + 16, req, strlen(req)) == 0);
        }
        web_stop(w);
        free(f);
    }
}

/* A request that cannot be sent fails every check without connecting. */
TEST(health_http_invalid_request_fails_without_connecting)
{
    struct web *w = web_start(WEB_REPLY, OK_200);
    struct fix *f = fix_new(&w->addr, w->addr_text, true);
    f->be.hc.http_path = "/a b";
    fix_start(f);
    fix_run(f, false, 3000);
    fix_end(f);
    CHECK(!is_up(f));
    CHECK_STR_CONTAINS(f->log, "(invalid check request: bad path)");
    CHECK_EQ_U64(web_accepted(w), 0);
    web_stop(w);
    free(f);
}

/* ---- the verdict on a response head (through the HTTP/1 codec) ---- */

static enum hc_status_result status_of(const char *s, unsigned *status, size_t *bad)
{
    const char *reason = NULL;
    *status = 0;
    *bad = 99;
    enum hc_status_result r = hc_http_status(s, strlen(s), status, bad, &reason);
    if (r == HC_STATUS_BAD && !reason)
        test_fail(__FILE__, __LINE__, "\"%s\": BAD without a reason", s);
    return r;
}

TEST(health_http_response_head_verdict)
{
    static const struct {
        const char *in;
        enum hc_status_result r;
        unsigned status; /* when OK */
        size_t bad;      /* when BAD */
    } cases[] = {
        {"HTTP/1.1 200 OK\r\n\r\n", HC_STATUS_OK, 200, 0},
        {"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n", HC_STATUS_OK, 404, 0},
        {"HTTP/1.1 204\r\n\r\n", HC_STATUS_OK, 204, 0}, /* no reason phrase, no space */
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", HC_STATUS_OK, 200, 0},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", HC_STATUS_OK, 101, 0},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\n\r\n", HC_STATUS_OK, 500, 0},
        {"HTTP/1.1 103 Hints\r\nLink: <a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", HC_STATUS_OK, 200, 0},
        {"", HC_STATUS_MORE, 0, 0},
        {"HTT", HC_STATUS_MORE, 0, 0},
        {"HTTP/1.1 200 OK", HC_STATUS_MORE, 0, 0},     /* the line is not over */
        {"HTTP/1.1 200 OK\r\n", HC_STATUS_MORE, 0, 0}, /* the head is not over */
        {"HTTP/1.1 100 Continue\r\n", HC_STATUS_MORE, 0, 0},
        {"HTTP/1.1 100 Continue\r\nX: y\r\n", HC_STATUS_MORE, 0, 0},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.", HC_STATUS_MORE, 0, 0},
        {"SSH-2.0", HC_STATUS_MORE, 0, 0}, /* judged at the line's end */
        {"SSH-2.0-OpenSSH_9.2\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 301 \n\n", HC_STATUS_BAD, 0, 0}, /* bare LF */
        {"http/1.1 200 OK\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/2.0 200 OK\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 20 OK\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 2000 OK\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 099 Low\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 600 High\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1  200 OK\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HC_STATUS_BAD, 0, 0},
        {"HTTP/1.1 100 Continue\r\n\r\nGarbage\r\n", HC_STATUS_BAD, 0, 25},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        unsigned status;
        size_t bad;
        enum hc_status_result r = status_of(cases[i].in, &status, &bad);
        if (r != cases[i].r)
            test_fail(__FILE__, __LINE__, "case %zu \"%s\": result %d, want %d", i, cases[i].in,
                      (int)r, (int)cases[i].r);
        else if (r == HC_STATUS_OK)
            CHECK_EQ_U64(status, cases[i].status);
        else if (r == HC_STATUS_BAD)
            CHECK_EQ_U64(bad, cases[i].bad);
    }
}
