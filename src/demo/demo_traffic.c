/* demo_traffic.c — a little steady traffic for the demo, so that its dashboard shows
 * something alive from the first second: a thread of its own sends about 15 HTTP requests
 * a second over the routes of the demo-shop listener (the /reports/ ones are slow: the web
 * servers hold them 80-250 ms; /legacy/ has no server), and a TCP session through demo-db
 * every second or so. Blocking sockets with short timeouts; failures (Strata not listening
 * yet, or stopping) are only waited out.
 */
#include "demo.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TRAFFIC_PERIOD_MS 65
#define TRAFFIC_TIMEOUT_S 1

static pthread_t traffic_thread;
static atomic_bool traffic_stop, traffic_running;
static unsigned traffic_base;

static const char *const paths[] = {
    "/api/users/42", "/api/items?page=2", "/static/app.css", "/hello",         "/api/users/7",
    "/reports/daily", "/api/cart",        "/static/logo.png", "/old/catalog",  "/api/users/42",
    "/reports/monthly", "/api/users/1337", "/legacy/orders",   "/api/items?page=3",
};
static const char *const agents[] = {"demo-shop/2.1", "curl/7.88.1", "Mozilla/5.0 (demo)"};

static void pause_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A blocking TCP connection to 127.0.0.1:port with short timeouts, or -1. */
static int dial(unsigned port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {TRAFFIC_TIMEOUT_S, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends `out` and the end of what it sends, then reads until EOF (or the timeout). */
static void exchange(unsigned port, const char *out, size_t len)
{
    char buf[4096];
    int fd = dial(port);
    if (fd < 0) {
        pause_ms(200); /* not listening (yet, or any more) */
        return;
    }
    if (send(fd, out, len, MSG_NOSIGNAL) == (ssize_t)len && shutdown(fd, SHUT_WR) == 0)
        while (recv(fd, buf, sizeof(buf), 0) > 0 && !atomic_load(&traffic_stop))
            ;
    close(fd);
}

static void *traffic_main(void *arg)
{
    (void)arg;
    char req[512];
    for (unsigned n = 0; !atomic_load(&traffic_stop); n++) {
        const char *path = paths[n % (sizeof(paths) / sizeof(paths[0]))];
        int len = snprintf(req, sizeof(req),
                           "GET %s HTTP/1.1\r\nHost: shop.demo\r\nUser-Agent: %s\r\n"
                           "X-Api-Key: demo-key-%u\r\nConnection: close\r\n\r\n",
                           path, agents[n % 3], n % 7 == 0 ? 2u : 1u);
        exchange(demo_shop_port(traffic_base), req, (size_t)len);
        if (n % 15 == 0) /* the L4 relay: greeting, echo, close */
            exchange(traffic_base + DEMO_DB_OFFSET, "hi\n", 3);
        pause_ms(TRAFFIC_PERIOD_MS);
    }
    return NULL;
}

int demo_traffic_start(unsigned base)
{
    traffic_base = base;
    atomic_store(&traffic_stop, false);
    if (pthread_create(&traffic_thread, NULL, traffic_main, NULL) != 0)
        return -1;
    atomic_store(&traffic_running, true);
    return 0;
}

void demo_traffic_stop(void)
{
    if (!atomic_exchange(&traffic_running, false))
        return;
    atomic_store(&traffic_stop, true);
    pthread_join(traffic_thread, NULL);
}
