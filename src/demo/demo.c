/* demo.c — see demo.h. Each demo TCP server greets a new connection with
 * "strata demo server N" and then echoes what it receives. They are deliberately
 * simple: a reply that would block closes that demo connection. The web servers
 * (demo_http.c) share this thread and loop.
 */
#include "demo.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/list.h"
#include "ev/loop.h"
#include "net/sock.h"

struct demo_server {
    struct ev_handler h;
    unsigned n;
};

struct demo_conn {
    struct ev_handler h;
    struct list link; /* in demo_conns, so that a stop frees what is still open */
};

static struct ev_loop demo_loop;
static struct demo_server servers[DEMO_SERVERS];
static struct list demo_conns = {&demo_conns, &demo_conns};
static pthread_t demo_thread;
static _Atomic bool demo_stop;

static void demo_conn_close(struct ev_loop *loop, struct demo_conn *c)
{
    ev_del(loop, &c->h);
    close(c->h.fd);
    list_del(&c->link);
    free(c);
}

static void demo_conn_cb(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    char buf[4096];
    ssize_t n = recv(h->fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0 || send(h->fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
        demo_conn_close(loop, container_of(h, struct demo_conn, h));
}

static void demo_accept_cb(struct ev_loop *loop, struct ev_handler *h, uint32_t events)
{
    struct demo_server *srv = container_of(h, struct demo_server, h);
    int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    char hello[64];
    int len = snprintf(hello, sizeof(hello), "strata demo server %u\n", srv->n);
    struct demo_conn *c = malloc(sizeof(*c));
    if (!c || send(fd, hello, (size_t)len, MSG_NOSIGNAL) != len) {
        free(c);
        close(fd);
        return;
    }
    c->h.fd = fd;
    c->h.cb = demo_conn_cb;
    if (ev_add_level_in(loop, &c->h) < 0) {
        close(fd);
        free(c);
        return;
    }
    list_add_tail(&demo_conns, &c->link);
}

static void demo_wake(struct ev_loop *loop)
{
    if (atomic_load(&demo_stop))
        loop->stop = true;
}

static void *demo_main(void *arg)
{
    (void)arg;
    ev_loop_run(&demo_loop);
    return NULL;
}

/* Closes every demo socket; the thread is not running (stopped, or never started). */
static void demo_close_all(void)
{
    while (!list_empty(&demo_conns))
        demo_conn_close(&demo_loop, list_entry(demo_conns.next, struct demo_conn, link));
    demo_http_stop(&demo_loop);
    for (unsigned i = 0; i < DEMO_SERVERS; i++) {
        if (servers[i].h.fd >= 0)
            close(servers[i].h.fd);
        servers[i].h.fd = -1;
    }
    ev_loop_free(&demo_loop);
}

int demo_servers_start(unsigned base, char *err, size_t errlen)
{
    if (ev_loop_init(&demo_loop) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        return -1;
    }
    atomic_store(&demo_stop, false);
    demo_loop.on_wake = demo_wake;
    for (unsigned i = 0; i < DEMO_SERVERS; i++)
        servers[i].h.fd = -1;
    for (unsigned i = 0; i < DEMO_SERVERS; i++) {
        struct sockaddr_any a;
        const char *why;
        char text[32];
        snprintf(text, sizeof(text), "127.0.0.1:%u", base + 1 + i);
        if (addr_parse(text, &a, &why) < 0) {
            snprintf(err, errlen, "demo server %s: %s", text, why);
            goto fail;
        }
        servers[i].n = i + 1;
        servers[i].h.cb = demo_accept_cb;
        servers[i].h.fd = sock_listen_tcp(&a, 128, 0);
        if (servers[i].h.fd < 0 || ev_add_level_in(&demo_loop, &servers[i].h) < 0) {
            snprintf(err, errlen, "demo server %s: %s", text, strerror(errno));
            goto fail;
        }
    }
    if (demo_http_start(&demo_loop, base, err, errlen) < 0)
        goto fail;
    if (pthread_create(&demo_thread, NULL, demo_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the demo thread");
        goto fail;
    }
    if (demo_traffic_start(base) < 0) /* the demo works without it: say so and go on */
        fprintf(stderr, "strata demo: cannot start the demo traffic thread\n");
    return 0;
fail:
    demo_close_all();
    return -1;
}

void demo_servers_stop(void)
{
    demo_traffic_stop();
    atomic_store(&demo_stop, true);
    ev_loop_wake(&demo_loop);
    pthread_join(demo_thread, NULL);
    demo_close_all();
}

/* The listeners the demo's own traffic (demo_traffic.c) goes through, with backends of
 * their own so that balancing on the others stays as a person trying the demo expects,
 * and no log lines: a shop whose /reports/ are slow (demo_http.c) and whose /legacy/
 * server is gone. */
static void demo_config_shop(unsigned base, char *listeners, size_t llen, char *backends,
                             size_t blen)
{
    snprintf(listeners, llen,
             "  - name: demo-shop\n"
             "    listen: 127.0.0.1:%u\n"
             "    mode: http\n"
             "    log: { format: off }\n"
             "    http: { access_log: { format: off } }\n"
             "    routes:\n"
             "      - { name: reports, match: { path_prefix: /reports/ }, backend: shop }\n"
             "      - { name: users, match: { path_prefix: /api/users/ }, backend: shop }\n"
             "      - { name: legacy, match: { path_prefix: /legacy/ }, backend: legacy,\n"
             "          retry: { tries: 1 } }\n"
             "      - { name: hello, match: { path: /hello },\n"
             "          respond: { status: 200, body: \"hello\\n\" } }\n"
             "      - { name: old, match: { path_prefix: /old/ },\n"
             "          redirect: { status: 301, location: \"http://{authority}/api/\" } }\n"
             "      - { name: api, match: { path_prefix: /api/ }, backend: shop }\n"
             "      - { name: static, backend: shop }\n"
             "  - name: demo-db\n"
             "    listen: 127.0.0.1:%u\n"
             "    mode: tcp\n"
             "    log: { format: off }\n"
             "    backend: db\n",
             demo_shop_port(base), base + DEMO_DB_OFFSET);
    snprintf(backends, blen,
             "  shop:\n"
             "    balance: least_conn\n"
             "    servers: [ { name: web1, address: 127.0.0.1:%u }, "
             "{ name: web2, address: 127.0.0.1:%u }, { name: web3, address: 127.0.0.1:%u } ]\n"
             "  legacy:\n"
             "    servers: [ { name: old1, address: 127.0.0.1:%u } ]\n"
             "  db:\n"
             "    servers: [ { name: db1, address: 127.0.0.1:%u }, "
             "{ name: db2, address: 127.0.0.1:%u } ]\n",
             demo_http_port(base, 1), demo_http_port(base, 2), demo_http_port(base, 3),
             base + DEMO_LEGACY_OFFSET, base + 1, base + 2);
}

unsigned demo_shop_port(unsigned base)
{
    return base + 81;
}

void demo_config(unsigned base, const char *cert_dir, char *buf, size_t len)
{
    unsigned w1 = demo_http_port(base, 1), w2 = demo_http_port(base, 2),
             w3 = demo_http_port(base, 3);
    char shop_listeners[1536], shop_backends[512];
    demo_config_shop(base, shop_listeners, sizeof(shop_listeners), shop_backends,
                     sizeof(shop_backends));
    snprintf(buf, len,
             "workers: auto\n"
             "timeouts: { connect: 1s, idle: 5m, drain: 2s }\n"
             "admin: { listen: 127.0.0.1:%u }\n"
             "listeners:\n"
             "  - name: demo-tcp\n"
             "    listen: 127.0.0.1:%u\n"
             "    mode: tcp\n"
             "    backend: demo\n"
             "  - name: demo-http\n"
             "    listen: 127.0.0.1:%u\n"
             "    mode: http\n"
             "    http: &demo_http\n"
             "      access_log: { format: text }\n"
             "      h2: { enabled: true, cleartext: true }\n"
             "    routes: &demo_routes\n"
             "      - name: hello\n"
             "        match: { path: /hello }\n"
             "        respond: { status: 200, body: \"hello from Strata itself\\n\" }\n"
             "      - name: old\n"
             "        match: { path_prefix: /old/ }\n"
             "        redirect: { status: 301, location: \"http://{authority}/api/\" }\n"
             "      - name: canary-host\n"
             "        match: { host: canary.demo }\n"
             "        backend: canary\n"
             "      - name: api\n"
             "        match: { path_prefix: /api/ }\n"
             "        path_rewrite: { prefix: /api/, replace: / }\n"
             "        response_headers: { set: { x-demo-route: api } }\n"
             "        backend: web\n"
             "      - name: split\n"
             "        split: [ { backend: stable, weight: 90 }, { backend: canary, weight: 10 } ]\n"
             "  - name: demo-https\n"
             "    listen: 127.0.0.1:%u\n"
             "    mode: http\n"
             "    tls: { certificates: [ { cert: %s/cert.pem, key: %s/key.pem } ] }\n"
             "    http: *demo_http\n"
             "    routes: *demo_routes\n"
             "%s"
             "backends:\n"
             "  demo:\n"
             "    balance: round_robin\n"
             "    health_check: { type: tcp, interval: 1s, timeout: 500ms, rise: 2, fall: 2 }\n"
             "    servers:\n"
             "      - { name: demo1, address: 127.0.0.1:%u }\n"
             "      - { name: demo2, address: 127.0.0.1:%u }\n"
             "      - { name: demo3, address: 127.0.0.1:%u }\n"
             "  web:\n"
             "    health_check: { type: http, path: /healthz, interval: 1s, timeout: 500ms }\n"
             "    servers:\n"
             "      - { name: web1, address: 127.0.0.1:%u }\n"
             "      - { name: web2, address: 127.0.0.1:%u }\n"
             "      - { name: web3, address: 127.0.0.1:%u }\n"
             "  stable:\n"
             "    servers: [ { name: web1, address: 127.0.0.1:%u }, "
             "{ name: web2, address: 127.0.0.1:%u } ]\n"
             "  canary:\n"
             "    servers: [ { name: web3, address: 127.0.0.1:%u } ]\n"
             "%s",
             base + 90, base, base + 80, base + 43, cert_dir, cert_dir, shop_listeners, base + 1,
             base + 2, base + 3, w1, w2, w3, w1, w2, w3, shop_backends);
}

void demo_print_help(unsigned base)
{
    unsigned h = base + 80;
    printf("Strata demo:\n"
           "  L4: a TCP listener on 127.0.0.1:%u balancing round-robin over three demo servers\n"
           "      (127.0.0.1:%u-%u) that greet and then echo.\n"
           "  L7: an HTTP listener on 127.0.0.1:%u routing to three demo web servers\n"
           "      (127.0.0.1:%u-%u): /hello is answered by Strata itself, /old/... redirects,\n"
           "      Host canary.demo goes to the canary, /api/... is rewritten and balanced over\n"
           "      all three, anything else is split 90/10 between stable and canary.\n"
           "      The same routes over TLS on 127.0.0.1:%u (a self-signed certificate).\n"
           "      Both speak HTTP/1.1 and HTTP/2 (h2 by ALPN, h2c with prior knowledge).\n\n"
           "Try, in another terminal:\n"
           "  for i in 1 2 3; do echo hi | nc -N 127.0.0.1 %u; done    # three servers answer\n"
           "  curl -s http://127.0.0.1:%u/hello                         # Strata answers\n"
           "  curl -si http://127.0.0.1:%u/old/page | head -3           # 301 to /api/\n"
           "  for i in 1 2 3; do curl -s http://127.0.0.1:%u/api/x; done # web 1, 2, 3\n"
           "  curl -s -H 'Host: canary.demo' http://127.0.0.1:%u/       # web 3 (canary)\n"
           "  for i in $(seq 20); do curl -s http://127.0.0.1:%u/; done | sort | uniq -c  # ~90/10\n"
           "  curl -sk https://127.0.0.1:%u/api/tls                     # TLS terminated, web N\n"
           "  curl -skI --http2 https://127.0.0.1:%u/hello | head -1     # HTTP/2 200\n"
           "  curl -s --http2-prior-knowledge http://127.0.0.1:%u/api/h2c # h2c to HTTP/1 web N\n"
           "  curl -s http://127.0.0.1:%u/metrics | grep strata_listener_http  # Prometheus\n"
           "Dashboard: http://127.0.0.1:%u/ (live: L4 and L7, latency per route, servers)\n"
           "  A built-in client sends about 15 requests/s through demo-shop (127.0.0.1:%u:\n"
           "  /reports/ is slow, /legacy/ has no server) and a TCP session a second through\n"
           "  demo-db (127.0.0.1:%u), so the dashboard has traffic to show at once.\n"
           "Stop with Ctrl-C. Run your own configuration with: strata run FILE\n\n",
           base, base + 1, base + DEMO_SERVERS, h, demo_http_port(base, 1),
           demo_http_port(base, DEMO_WEB_SERVERS), base + 43, base, h, h, h, h, h, base + 43,
           base + 43, h, base + 90, base + 90, demo_shop_port(base), base + DEMO_DB_OFFSET);
    fflush(stdout);
}
