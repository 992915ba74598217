/* test_demo.c — the built-in demo's servers, started as `strata demo` starts them (on a
 * random base, retried when a port is taken) and spoken to over loopback: the TCP greeting,
 * and the web servers' keep-alive, pipelining, Connection: close, bodies and limits.
 * Client sockets time out after 2 s; every loop is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/bug.h"
#include "demo/demo.h"
#include "test.h"

/* Starts the demo servers on a random base. Returns the base, or 0 (after 10 tries). */
static unsigned demo_up(void)
{
    static bool seeded;
    char err[256];
    if (!seeded)
        srand((unsigned)time(NULL) ^ (unsigned)getpid());
    seeded = true;
    for (int i = 0; i < 10; i++) {
        unsigned base = 20000 + (unsigned)rand() % 20000;
        if (demo_servers_start(base, err, sizeof(err)) == 0)
            return base;
    }
    return 0;
}

struct client {
    int fd;
    size_t len;
    char buf[32768]; /* bytes received and not yet taken */
};

static struct client *client_new(unsigned port)
{
    struct client *c = calloc(1, sizeof(*c));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 2};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!c)
        abort();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    return c;
}

static void client_free(struct client *c)
{
    if (c) {
        close(c->fd);
        free(c);
    }
}

static bool client_send(struct client *c, const char *s, size_t n)
{
    return send(c->fd, s, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* Reads more bytes; false on EOF, error or timeout. */
static bool client_fill(struct client *c)
{
    if (c->len == sizeof(c->buf))
        return false;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    return true;
}

/* True when the peer has closed (EOF or reset) and nothing more is buffered. */
static bool client_closed(struct client *c)
{
    return c->len == 0 && !client_fill(c);
}

struct resp {
    int status;
    char head[1024]; /* the head, NUL-terminated */
    char body[9000]; /* the body, NUL-terminated */
};

/* Takes one response (no body read for HEAD). Returns false if none arrived whole. */
static bool client_response(struct client *c, struct resp *r, bool head_request)
{
    char *end;
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < 100; i++) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end || !client_fill(c))
            break;
    }
    end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end || (size_t)(end + 4 - c->buf) >= sizeof(r->head))
        return false;
    size_t hl = (size_t)(end + 4 - c->buf);
    memcpy(r->head, c->buf, hl);
    const char *cl = strstr(r->head, "Content-Length: ");
    size_t blen = head_request || !cl ? 0 : strtoul(cl + 16, NULL, 10);
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1 || blen >= sizeof(r->body))
        return false;
    for (int i = 0; i < 100 && c->len < hl + blen; i++)
        if (!client_fill(c))
            break;
    if (c->len < hl + blen)
        return false;
    memcpy(r->body, c->buf + hl, blen);
    memmove(c->buf, c->buf + hl + blen, c->len - hl - blen);
    c->len -= hl + blen;
    return true;
}

#define REQ(m, p) m " " p " HTTP/1.1\r\nHost: demo\r\n\r\n"

/* ---- the TCP servers ---- */

TEST(demo_tcp_server_greets_and_echoes)
{
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    struct client *c = client_new(base + 2);
    CHECK(c != NULL);
    if (c) {
        for (int i = 0; i < 50 && !memchr(c->buf, '\n', c->len); i++)
            if (!client_fill(c))
                break;
        CHECK(c->len == 21 && memcmp(c->buf, "strata demo server 2\n", 21) == 0);
        c->len = 0;
        CHECK(client_send(c, "ping", 4));
        for (int i = 0; i < 50 && c->len < 4; i++)
            if (!client_fill(c))
                break;
        CHECK(c->len == 4 && memcmp(c->buf, "ping", 4) == 0);
    }
    client_free(c);
    demo_servers_stop();
}

/* ---- the web servers ---- */

TEST(demo_web_keep_alive_three_requests_on_one_connection)
{
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    CHECK_EQ_U64(demo_http_port(base, 1), base + 11);
    CHECK_EQ_U64(demo_http_port(base, 3), base + 13);
    struct client *c = client_new(demo_http_port(base, 2));
    struct resp r;
    CHECK(c != NULL);
    if (c) {
        CHECK(client_send(c, REQ("GET", "/a"), strlen(REQ("GET", "/a"))));
        CHECK(client_response(c, &r, false) && r.status == 200);
        CHECK(strcmp(r.body, "hello from demo web 2: GET /a\n") == 0);
        CHECK(strstr(r.head, "Connection:") == NULL);
        static const char post[] = "POST /b?x=1 HTTP/1.1\r\nHost: demo\r\nContent-Length: 11\r\n"
                                   "\r\nhello world";
        CHECK(client_send(c, post, strlen(post)));
        CHECK(client_response(c, &r, false) && r.status == 200);
        CHECK(strcmp(r.body, "hello from demo web 2: POST /b?x=1\n") == 0);
        CHECK(client_send(c, REQ("GET", "/healthz"), strlen(REQ("GET", "/healthz"))));
        CHECK(client_response(c, &r, false) && r.status == 200);
        CHECK(strcmp(r.body, "ok") == 0);
        CHECK_STR_CONTAINS(r.head, "Content-Length: 2\r\n");
        CHECK(c->len == 0);
    }
    client_free(c);
    demo_servers_stop();
}

TEST(demo_web_pipelined_requests_answered_in_order)
{
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    struct client *c = client_new(demo_http_port(base, 1));
    struct resp r;
    CHECK(c != NULL);
    if (c) {
        /* two requests in one write, the first with a body, then one split in two */
        static const char two[] = "PUT /1 HTTP/1.1\r\nHost: demo\r\nContent-Length: 3\r\n\r\nabc"
                                  "GET /2 HTTP/1.1\r\nHost: demo\r\n\r\nGET /3 HT";
        CHECK(client_send(c, two, strlen(two)));
        CHECK(client_response(c, &r, false) && r.status == 200);
        CHECK(strcmp(r.body, "hello from demo web 1: PUT /1\n") == 0);
        CHECK(client_response(c, &r, false) && r.status == 200);
        CHECK(strcmp(r.body, "hello from demo web 1: GET /2\n") == 0);
        CHECK(client_send(c, "TP/1.1\r\nHost: demo\r\n\r\n", 22));
        CHECK(client_response(c, &r, false) && r.status == 200);
        CHECK(strcmp(r.body, "hello from demo web 1: GET /3\n") == 0);
    }
    client_free(c);
    demo_servers_stop();
}

TEST(demo_web_connection_close_honoured)
{
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    struct resp r;
    /* HTTP/1.1 with Connection: close, a pipelined request after it is not answered */
    struct client *c = client_new(demo_http_port(base, 3));
    static const char req[] = "GET /bye HTTP/1.1\r\nHost: demo\r\nConnection: keep-alive, close\r\n"
                              "\r\nGET /never HTTP/1.1\r\nHost: demo\r\n\r\n";
    CHECK(c && client_send(c, req, strlen(req)));
    CHECK(c && client_response(c, &r, false) && r.status == 200);
    CHECK_STR_CONTAINS(r.head, "Connection: close\r\n");
    CHECK(strcmp(r.body, "hello from demo web 3: GET /bye\n") == 0);
    CHECK(c && client_closed(c));
    client_free(c);
    /* HTTP/1.0: closed by default, kept with Connection: keep-alive */
    c = client_new(demo_http_port(base, 3));
    static const char ka[] = "HEAD /healthz HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK(c && client_send(c, ka, strlen(ka)));
    CHECK(c && client_response(c, &r, true) && r.status == 200);
    CHECK_STR_CONTAINS(r.head, "Content-Length: 2\r\n"); /* HEAD: the length, no body */
    CHECK_STR_CONTAINS(r.head, "Connection: keep-alive\r\n");
    CHECK(c && client_send(c, "GET / HTTP/1.0\r\n\r\n", 18));
    CHECK(c && client_response(c, &r, false) && r.status == 200);
    CHECK_STR_CONTAINS(r.head, "Connection: close\r\n");
    CHECK(c && client_closed(c));
    client_free(c);
    demo_servers_stop();
}

/* A body far larger than the buffers is read and dropped (over several turns of the
 * loop), and the next request on the connection is answered. */
TEST(demo_web_large_body_dropped)
{
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    static char chunk[65536];
    struct resp r;
    struct client *c = client_new(demo_http_port(base, 1));
    static const char head[] =
        "POST /upload HTTP/1.1\r\nHost: demo\r\nContent-Length: 2097152\r\n\r\n";
    CHECK(c && client_send(c, head, strlen(head)));
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; c && i < 32; i++)
        CHECK(client_send(c, chunk, sizeof(chunk)));
    CHECK(c && client_send(c, REQ("GET", "/after"), strlen(REQ("GET", "/after"))));
    CHECK(c && client_response(c, &r, false) && r.status == 200);
    CHECK(strcmp(r.body, "hello from demo web 1: POST /upload\n") == 0);
    CHECK(c && client_response(c, &r, false) && r.status == 200);
    CHECK(strcmp(r.body, "hello from demo web 1: GET /after\n") == 0);
    client_free(c);
    demo_servers_stop();
}

/* What the web servers refuse: each answered with its status, then the connection closes. */
TEST(demo_web_refuses_bad_requests_and_closes)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"NOT A REQUEST\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: demo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\n\r\n", 400},         /* HTTP/1.1 without Host */
        {"GET / HTTP/1.1\nHost: demo\n\n", 400}, /* bare LF */
        {"GET / HTTP/2.0\r\n\r\n", 505},
    };
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    struct resp r;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct client *c = client_new(demo_http_port(base, 1));
        bool ok = c && client_send(c, cases[i].req, strlen(cases[i].req)) &&
                  client_response(c, &r, false) && r.status == cases[i].status &&
                  strstr(r.head, "Connection: close\r\n") && client_closed(c);
        if (!ok)
            test_fail(__FILE__, __LINE__, "case %zu: status %d, want %d", i, r.status,
                      cases[i].status);
        client_free(c);
    }
    demo_servers_stop();
}

/* A request head over 8 KiB closes the connection; one just under is served. */
TEST(demo_web_request_head_bounded)
{
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    static char big[9000];
    struct resp r;
    struct client *c = client_new(demo_http_port(base, 2));
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: demo\r\nX-Pad: ");
    memset(big + n, 'a', sizeof(big) - (size_t)n);
    CHECK(c && client_send(c, big, sizeof(big)));
    CHECK(c && client_response(c, &r, false) && r.status == 431);
    CHECK(c && client_closed(c));
    client_free(c);

    c = client_new(demo_http_port(base, 2));
    size_t len = 8192 - 4; /* the head fills the buffer exactly, CRLF CRLF included */
    memset(big + n, 'b', len - (size_t)n);
    memcpy(big + len, "\r\n\r\n", 4);
    CHECK(c && client_send(c, big, len + 4));
    CHECK(c && client_response(c, &r, false) && r.status == 200);
    CHECK(strcmp(r.body, "hello from demo web 2: GET /\n") == 0);
    client_free(c);
    demo_servers_stop();
}

/* A start that cannot bind a web port fails and leaves nothing open: the same base
 * works once that port is free. */
TEST(demo_start_failure_leaves_nothing_open)
{
    char err[256];
    unsigned base = demo_up();
    CHECK(base != 0);
    if (!base)
        return;
    demo_servers_stop();
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)demo_http_port(base, 3))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool taken = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
                 bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 1) == 0;
    CHECK(taken);
    if (taken) {
        int rc = demo_servers_start(base, err, sizeof(err));
        CHECK(rc < 0);
        CHECK_STR_CONTAINS(err, "demo web server 127.0.0.1:");
        if (rc == 0)
            demo_servers_stop();
    }
    if (fd >= 0)
        close(fd);
    if (demo_servers_start(base, err, sizeof(err)) < 0) {
        test_fail(__FILE__, __LINE__, "restart on the same base: %s", err);
        return;
    }
    struct client *c = client_new(demo_http_port(base, 3));
    struct resp r;
    CHECK(c && client_send(c, REQ("GET", "/"), strlen(REQ("GET", "/"))));
    CHECK(c && client_response(c, &r, false) && r.status == 200);
    client_free(c);
    demo_servers_stop();
}
