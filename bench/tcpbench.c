/* tcpbench.c — the backend and the load generator for Strata's benchmarks and e2e tests.
 *
 * One self-contained program (no Strata code) so it measures HAProxy, NGINX, Strata and a
 * direct connection the same way. Servers run until SIGINT/SIGTERM; every client run is
 * bounded in time. Results are printed as one "RESULT key=value ..." line on stdout, which
 * bench/run.sh parses; anything for people goes to stderr.
 *
 *   serve-echo PORT [THREADS]          echo every byte back
 *   serve-sink-source PORT [THREADS]   first line is a command: "SOURCE N\n" streams N bytes
 *                                      (0 = until the peer goes away), "SINK\n" reads to EOF
 *   throughput HOST PORT SECONDS [CONNS [down|up]]   bulk one way against serve-sink-source
 *   connrate HOST PORT SECONDS CONCURRENCY [keep]    connect, 64 B out, 64 B back, close;
 *                                      with "keep", exchanges repeat on each open connection
 *                                      (keep-alive round trips); latency p50/p99 either way
 *   idle HOST PORT N [HOLD_SECONDS]                  N connections, 1 byte echoed each, held
 *                                                    until stdin closes, a signal, or HOLD
 *   udp-echo PORT [THREADS]            UDP: send every datagram (up to 2 KiB) back
 *   udp-blast HOST PORT SECONDS SIZE CONC   CONC UDP sockets, each sending a SIZE-byte
 *                                      datagram and waiting for its echo (a reply not back
 *                                      within 200 ms counts as lost and the next is sent)
 *   connflood HOST PORT SECONDS CONC SRCADDR [RATE]   CONC connects in flight from SRCADDR
 *                                      (RATE/s at most; 0 = no limit), each waiting for the
 *                                      server to close, reset or refuse it: a denied-connect flood
 *
 * PORT 0 makes a server pick a free port; it prints "LISTENING port=N" on stdout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BULK_SIZE (256 * 1024)
#define ECHO_BUF (64 * 1024)
#define CMD_MAX 64
#define MAX_EVENTS 256
#define REQ_SIZE 64

static void die(const char *what)
{
    fprintf(stderr, "tcpbench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long parse_num(const char *s, long min, long max, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "tcpbench: bad %s \"%s\" (want %ld..%ld)\n", what, s, min, max);
        exit(2);
    }
    return v;
}

/* The CPUs this process may run on (taskset narrows them), at least 1. */
static int ncpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Resolve HOST PORT (numeric or name) into *ss; exits on failure. */
static socklen_t resolve(const char *host, const char *port, struct sockaddr_storage *ss)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "tcpbench: %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(2);
    }
    socklen_t len = ai->ai_addrlen;
    memcpy(ss, ai->ai_addr, len);
    freeaddrinfo(ai);
    return len;
}

/* Blocking connect with send/receive timeouts; returns the fd or -1. */
static int connect_blocking(const struct sockaddr_storage *ss, socklen_t len, int timeout_s)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
        close(fd);
        return -1;
    }
    set_nodelay(fd);
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---------------------------------------------------------------- servers */

enum srv_kind { SRV_ECHO, SRV_SINK_SOURCE };

enum conn_state { CS_ECHO, CS_CMD, CS_SOURCE, CS_SINK };

struct sconn {
    int fd;
    enum conn_state state;
    size_t off, len;          /* echo: pending bytes in buf[off..len) */
    uint32_t events;          /* the epoll interest set now registered */
    uint64_t remaining;       /* source: bytes still to send; UINT64_MAX = unlimited */
    char buf[ECHO_BUF];
};

struct server {
    enum srv_kind kind;
    int lfd;                  /* this thread's SO_REUSEPORT listening socket */
};

static char bulk[BULK_SIZE];

static int listen_on(const struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0)
        die("bind");
    if (listen(fd, 4096) < 0)
        die("listen");
    return fd;
}

static void sconn_close(int ep, struct sconn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Changes the interest set only when it differs: an origin that re-registered the same
 * events on every exchange would charge every proxy measured against it a system call. */
static void sconn_want(int ep, struct sconn *c, uint32_t events)
{
    if (c->events == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

/* Echo: read when nothing is pending, write what is pending; after a whole echo, back
 * to epoll (level-triggered: bytes already waiting are reported at once) rather than a
 * read that a ping-pong client answers with EAGAIN. Returns -1 to close. */
static int on_echo(int ep, struct sconn *c)
{
    for (int round = 0; round < 2; round++) { /* a read, then its echo */
        if (c->off < c->len) {
            ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
            if (n < 0)
                return (errno == EAGAIN || errno == EINTR) ? (sconn_want(ep, c, EPOLLOUT), 0)
                                                           : -1;
            c->off += (size_t)n;
            if (c->off < c->len) {
                sconn_want(ep, c, EPOLLOUT);
                return 0;
            }
            c->off = c->len = 0;
            sconn_want(ep, c, EPOLLIN);
            return 0;
        }
        ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        c->len = (size_t)n;
    }
    return 0;
}

static int on_source(int ep, struct sconn *c)
{
    for (int round = 0; round < 64; round++) {
        size_t want = BULK_SIZE;
        if (c->remaining != UINT64_MAX && c->remaining < want)
            want = (size_t)c->remaining;
        if (want == 0) {
            shutdown(c->fd, SHUT_WR);
            return -1;
        }
        ssize_t n = send(c->fd, bulk, want, MSG_NOSIGNAL);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        if (c->remaining != UINT64_MAX)
            c->remaining -= (uint64_t)n;
    }
    (void)ep;
    return 0;
}

static int on_sink(struct sconn *c)
{
    for (int round = 0; round < 64; round++) {
        ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (n == 0)
            return -1;
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    }
    return 0;
}

/* Reads the command line; switches the connection to SOURCE or SINK. */
static int on_cmd(int ep, struct sconn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, CMD_MAX - c->len, 0);
    if (n == 0)
        return -1;
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    c->len += (size_t)n;
    char *nl = memchr(c->buf, '\n', c->len);
    if (!nl)
        return c->len >= CMD_MAX ? -1 : 0;
    *nl = '\0';
    unsigned long long count;
    if (sscanf(c->buf, "SOURCE %llu", &count) == 1) {
        c->state = CS_SOURCE;
        c->remaining = count ? (uint64_t)count : UINT64_MAX;
        sconn_want(ep, c, EPOLLOUT);
        return on_source(ep, c);
    }
    if (strcmp(c->buf, "SINK") == 0) {
        c->state = CS_SINK;
        return on_sink(c);
    }
    return -1;
}

static void *server_thread(void *arg)
{
    const struct server *srv = arg;
    int lfd = srv->lfd;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            struct sconn *c = evs[i].data.ptr;
            if (!c) {
                for (int k = 0; k < 64; k++) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    set_nodelay(fd);
                    c = malloc(sizeof(*c));
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    c->off = c->len = 0;
                    c->remaining = 0;
                    c->events = EPOLLIN;
                    c->state = srv->kind == SRV_ECHO ? CS_ECHO : CS_CMD;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
                        close(fd);
                        free(c);
                    }
                }
                continue;
            }
            int rc;
            switch (c->state) {
            case CS_ECHO: rc = on_echo(ep, c); break;
            case CS_CMD: rc = on_cmd(ep, c); break;
            case CS_SOURCE: rc = on_source(ep, c); break;
            default: rc = on_sink(c); break;
            }
            if (rc < 0)
                sconn_close(ep, c);
        }
    }
    return NULL;
}

/* Tells the caller (bench/lib.sh reads this line) where the server listens, then serves
 * from the worker threads until SIGINT/SIGTERM (blocked in `set`). */
static int announce_and_wait(int port, const sigset_t *set)
{
    printf("LISTENING port=%d\n", port);
    fflush(stdout);
    int sig;
    sigwait(set, &sig);
    return 0;
}

static int cmd_serve(enum srv_kind kind, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: tcpbench serve-... PORT [THREADS]\n");
        return 2;
    }
    int port = (int)parse_num(argv[0], 0, 65535, "port");
    int threads = argc > 1 ? (int)parse_num(argv[1], 1, 256, "threads") : ncpus();
    memset(bulk, 'x', sizeof(bulk));
    raise_nofile();

    /* All sockets are bound here, so the port is listening on every thread once we say so;
     * with PORT 0 the first bind picks the port and the others join it. */
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    struct server *srv = calloc((size_t)threads, sizeof(*srv));
    if (!srv)
        die("calloc");
    for (int i = 0; i < threads; i++) {
        srv[i].kind = kind;
        srv[i].lfd = listen_on(&addr);
        socklen_t len = sizeof(addr);
        if (getsockname(srv[i].lfd, (struct sockaddr *)&addr, &len) < 0)
            die("getsockname");
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (int i = 0; i < threads; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, server_thread, &srv[i]) != 0)
            die("pthread_create");
        pthread_detach(t);
    }
    return announce_and_wait(ntohs(addr.sin_port), &set);
}

/* ----------------------------------------------------------- throughput */

struct tp_arg {
    struct sockaddr_storage ss;
    socklen_t len;
    double seconds;
    int upload;
    uint64_t bytes;
    int failed;
};

static void *tp_thread(void *arg)
{
    struct tp_arg *a = arg;
    char *buf = malloc(BULK_SIZE);
    if (!buf)
        die("malloc");
    memset(buf, 'y', BULK_SIZE);
    int fd = connect_blocking(&a->ss, a->len, 2);
    if (fd < 0) {
        a->failed = 1;
        free(buf);
        return NULL;
    }
    const char *cmd = a->upload ? "SINK\n" : "SOURCE 0\n";
    if (write_all(fd, cmd, strlen(cmd)) < 0)
        a->failed = 1;
    double end = now_s() + a->seconds;
    while (!a->failed && now_s() < end) {
        ssize_t n = a->upload ? send(fd, buf, BULK_SIZE, MSG_NOSIGNAL)
                              : recv(fd, buf, BULK_SIZE, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            a->failed = 1;
            break;
        }
        a->bytes += (uint64_t)n;
    }
    close(fd);
    free(buf);
    return NULL;
}

static int cmd_throughput(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tcpbench throughput HOST PORT SECONDS [CONNS [down|up]]\n");
        return 2;
    }
    double seconds = (double)parse_num(argv[2], 1, 3600, "seconds");
    int conns = argc > 3 ? (int)parse_num(argv[3], 1, 64, "conns") : 1;
    int upload = argc > 4 && strcmp(argv[4], "up") == 0;
    struct tp_arg *args = calloc((size_t)conns, sizeof(*args));
    pthread_t *th = calloc((size_t)conns, sizeof(*th));
    if (!args || !th)
        die("calloc");
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < conns; i++) {
        args[i].len = resolve(argv[0], argv[1], &args[i].ss);
        args[i].seconds = seconds;
        args[i].upload = upload;
    }
    double t0 = now_s();
    for (int i = 0; i < conns; i++)
        if (pthread_create(&th[i], NULL, tp_thread, &args[i]) != 0)
            die("pthread_create");
    uint64_t total = 0;
    int failed = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        total += args[i].bytes;
        failed += args[i].failed;
    }
    double el = now_s() - t0;
    double mbps = (double)total / el / 1e6;
    fprintf(stderr, "throughput: %.1f MB/s over %d connection(s), %s, %.2fs\n", mbps, conns,
            upload ? "up" : "down", el);
    printf("RESULT throughput_MBps=%.1f bytes=%llu seconds=%.3f conns=%d failed=%d\n", mbps,
           (unsigned long long)total, el, conns, failed);
    free(args);
    free(th);
    return failed == conns ? 1 : 0;
}

/* ------------------------------------------------------------- connrate */

enum cr_state { CR_CONNECTING, CR_READING };

struct cr_slot {
    int fd;
    enum cr_state state;
    size_t got;
    double t0; /* when the exchange began: connect(), or the request's send with keep */
    char buf[REQ_SIZE];
};

/* Latency histogram: 10 µs buckets up to LAT_BUCKETS × 10 µs, the last one open-ended. */
#define LAT_BUCKETS 20000
#define LAT_STEP_US 10

struct cr_arg {
    struct sockaddr_storage ss;
    socklen_t len;
    int slots;
    bool keep; /* repeat exchanges on an open connection instead of closing it */
    double end;
    uint64_t done, errors;
    uint32_t lat[LAT_BUCKETS];
};

static void lat_record(struct cr_arg *a, double seconds)
{
    double b = seconds * 1e6 / LAT_STEP_US;
    a->lat[b < LAT_BUCKETS - 1 ? (size_t)b : LAT_BUCKETS - 1]++;
}

/* The q-quantile (0..1) of the merged histograms of n threads, in µs (bucket's upper edge). */
static unsigned lat_quantile(const struct cr_arg *args, int n, double q)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < n; i++)
        for (size_t b = 0; b < LAT_BUCKETS; b++)
            total += args[i].lat[b];
    uint64_t want = (uint64_t)(q * (double)total);
    for (size_t b = 0; b < LAT_BUCKETS; b++) {
        for (int i = 0; i < n; i++)
            seen += args[i].lat[b];
        if (seen > want)
            return (unsigned)((b + 1) * LAT_STEP_US);
    }
    return 0;
}

static const char cr_request[REQ_SIZE] =
    "GET /0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS 1\r\n";

static int cr_open(int ep, struct cr_arg *a, struct cr_slot *s)
{
    s->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -1;
    set_nodelay(s->fd);
    s->state = CR_CONNECTING;
    s->got = 0;
    s->t0 = now_s();
    if (connect(s->fd, (struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    return 0;
}

static void cr_finish(int ep, struct cr_slot *s)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
}

/* Sends the request on a connected slot and waits for the echo. */
static int cr_send(struct cr_slot *s)
{
    if (send(s->fd, cr_request, REQ_SIZE, MSG_NOSIGNAL) != REQ_SIZE)
        return -1;
    s->state = CR_READING;
    s->got = 0;
    return 0;
}

/* Advances a slot; returns 1 when the exchange completed, 0 to wait, -1 on error. */
static int cr_step(int ep, struct cr_slot *s)
{
    if (s->state == CR_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || cr_send(s) < 0)
            return -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        return 0;
    }
    ssize_t n = recv(s->fd, s->buf + s->got, REQ_SIZE - s->got, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return -1;
    s->got += (size_t)n;
    return s->got == REQ_SIZE ? 1 : 0;
}

static void *cr_thread(void *arg)
{
    struct cr_arg *a = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct cr_slot *slots = calloc((size_t)a->slots, sizeof(*slots));
    if (!slots)
        die("calloc");
    for (int i = 0; i < a->slots; i++)
        if (cr_open(ep, a, &slots[i]) < 0)
            a->errors++;
    struct epoll_event evs[MAX_EVENTS];
    while (now_s() < a->end) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, 50);
        for (int i = 0; i < n; i++) {
            struct cr_slot *s = evs[i].data.ptr;
            int rc = cr_step(ep, s);
            if (rc == 0)
                continue;
            if (rc > 0) {
                double t = now_s();
                a->done++;
                lat_record(a, t - s->t0);
                s->t0 = t;
                if (a->keep && t < a->end) {
                    if (cr_send(s) == 0)
                        continue;
                    a->errors++;
                }
            } else {
                a->errors++;
            }
            cr_finish(ep, s);
            if (now_s() < a->end && cr_open(ep, a, s) < 0)
                a->errors++;
        }
        /* Reopen slots whose socket() or connect() failed outright (e.g. port exhaustion). */
        for (int i = 0; i < a->slots && n == 0; i++)
            if (slots[i].fd < 0 && cr_open(ep, a, &slots[i]) < 0)
                a->errors++;
    }
    for (int i = 0; i < a->slots; i++)
        if (slots[i].fd >= 0)
            close(slots[i].fd);
    free(slots);
    close(ep);
    return NULL;
}

static int cmd_connrate(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tcpbench connrate HOST PORT SECONDS CONCURRENCY [keep]\n");
        return 2;
    }
    double seconds = (double)parse_num(argv[2], 1, 3600, "seconds");
    int conc = (int)parse_num(argv[3], 1, 10000, "concurrency");
    bool keep = argc > 4 && strcmp(argv[4], "keep") == 0;
    int threads = ncpus() < conc ? ncpus() : conc;
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct cr_arg *args = calloc((size_t)threads, sizeof(*args));
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    if (!args || !th)
        die("calloc");
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        args[i].len = resolve(argv[0], argv[1], &args[i].ss);
        args[i].slots = conc / threads + (i < conc % threads);
        args[i].end = t0 + seconds;
        args[i].keep = keep;
        if (pthread_create(&th[i], NULL, cr_thread, &args[i]) != 0)
            die("pthread_create");
    }
    uint64_t done = 0, errors = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        done += args[i].done;
        errors += args[i].errors;
    }
    double el = now_s() - t0;
    double cps = (double)done / el;
    unsigned p50 = lat_quantile(args, threads, 0.50), p99 = lat_quantile(args, threads, 0.99);
    fprintf(stderr, "connrate: %.0f %s/s (%llu done, %llu errors, concurrency %d, %.2fs, "
            "p50 %u us, p99 %u us)\n", cps, keep ? "exchanges" : "conn", (unsigned long long)done,
            (unsigned long long)errors, conc, el, p50, p99);
    printf("RESULT connrate_cps=%.0f conns=%llu errors=%llu seconds=%.3f concurrency=%d "
           "p50_us=%u p99_us=%u keep=%d\n", cps, (unsigned long long)done,
           (unsigned long long)errors, el, conc, p50, p99, keep);
    free(args);
    free(th);
    return done == 0 ? 1 : 0;
}

/* ----------------------------------------------------------------- idle */

static volatile sig_atomic_t idle_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    idle_stop = 1;
}

static int cmd_idle(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: tcpbench idle HOST PORT N [HOLD_SECONDS]\n");
        return 2;
    }
    int n = (int)parse_num(argv[2], 1, 1000000, "count");
    int hold = argc > 3 ? (int)parse_num(argv[3], 1, 86400, "hold seconds") : 600;
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sockaddr_storage ss;
    socklen_t len = resolve(argv[0], argv[1], &ss);
    int *fds = calloc((size_t)n, sizeof(int));
    if (!fds)
        die("calloc");
    int open_ok = 0, failed = 0;
    double t0 = now_s();
    for (int i = 0; i < n && !idle_stop; i++) {
        int fd = connect_blocking(&ss, len, 5);
        char c = (char)('a' + i % 26), r = 0;
        if (fd < 0 || write_all(fd, &c, 1) < 0 || read_full(fd, &r, 1) < 0 || r != c) {
            if (fd >= 0)
                close(fd);
            failed++;
            if (failed > 10 && failed > n / 100)
                break;
            continue;
        }
        fds[open_ok++] = fd;
    }
    printf("RESULT idle_open=%d failed=%d seconds=%.3f\n", open_ok, failed, now_s() - t0);
    fflush(stdout);
    double end = now_s() + hold;
    while (!idle_stop && now_s() < end) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int rc = poll(&p, 1, 200);
        if (rc > 0) {
            char tmp[256];
            if (read(0, tmp, sizeof(tmp)) <= 0)
                break;
        }
    }
    for (int i = 0; i < open_ok; i++)
        close(fds[i]);
    free(fds);
    return open_ok == n ? 0 : 1;
}

/* ----------------------------------------------------------------- UDP */

#define UDP_BATCH 32
#define UDP_MAX 65536
#define UDP_LOSS_MS 200

struct ue_arg {
    int fd;
};

/* Echoes whatever arrives, a batch at a time, to where it came from. */
static void *ue_thread(void *arg)
{
    struct ue_arg *a = arg;
    static __thread char bufs[UDP_BATCH][2048];
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage peers[UDP_BATCH];
    for (;;) {
        for (int i = 0; i < UDP_BATCH; i++) {
            iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &peers[i],
                                              .msg_namelen = sizeof(peers[i]),
                                              .msg_iov = &iov[i],
                                              .msg_iovlen = 1};
        }
        int n = recvmmsg(a->fd, msgs, UDP_BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++)
            iov[i].iov_len = msgs[i].msg_len;
        for (int done = 0; done < n;) {
            int r = sendmmsg(a->fd, msgs + done, (unsigned)(n - done), 0);
            done += r > 0 ? r : 1; /* a datagram that cannot be sent is dropped */
        }
    }
    return NULL;
}

static int cmd_udp_echo(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: tcpbench udp-echo PORT [THREADS]\n");
        return 2;
    }
    int port = (int)parse_num(argv[0], 0, 65535, "port");
    int threads = argc > 1 ? (int)parse_num(argv[1], 1, 256, "threads") : ncpus();
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct ue_arg *args = calloc((size_t)threads, sizeof(*args));
    if (!args)
        die("calloc");
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < threads; i++) {
        int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
            die("udp socket");
        socklen_t len = sizeof(addr);
        if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
            die("getsockname");
        args[i].fd = fd;
        pthread_t t;
        if (pthread_create(&t, NULL, ue_thread, &args[i]) != 0)
            die("pthread_create");
        pthread_detach(t);
    }
    return announce_and_wait(ntohs(addr.sin_port), &set);
}

struct ub_slot {
    int fd;
    double sent_at;
};

struct ub_arg {
    struct sockaddr_storage ss;
    socklen_t len;
    int slots, size;
    double end;
    uint64_t done, lost;
};

static void ub_send(struct ub_slot *s, const char *buf, int size)
{
    s->sent_at = now_s();
    if (send(s->fd, buf, (size_t)size, 0) < 0)
        s->sent_at = 0; /* counted as lost at the next scan */
}

static void *ub_thread(void *arg)
{
    struct ub_arg *a = arg;
    char *buf = calloc(1, UDP_MAX);
    struct ub_slot *slots = calloc((size_t)a->slots, sizeof(*slots));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!buf || !slots || ep < 0)
        die("ub_thread");
    for (int i = 0; i < a->slots; i++) {
        slots[i].fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &slots[i]};
        if (slots[i].fd < 0 || connect(slots[i].fd, (struct sockaddr *)&a->ss, a->len) < 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, slots[i].fd, &ev) < 0)
            die("udp client socket");
        ub_send(&slots[i], buf, a->size);
    }
    struct epoll_event evs[MAX_EVENTS];
    double scan = now_s();
    while (now_s() < a->end) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, 20);
        for (int i = 0; i < n; i++) {
            struct ub_slot *s = evs[i].data.ptr;
            while (recv(s->fd, buf, UDP_MAX, MSG_DONTWAIT) >= 0)
                a->done++;
            ub_send(s, buf, a->size);
        }
        double t = now_s();
        if (t - scan < 0.05)
            continue;
        scan = t;
        for (int i = 0; i < a->slots; i++) {
            if (t - slots[i].sent_at > UDP_LOSS_MS / 1000.0) {
                a->lost++;
                ub_send(&slots[i], buf, a->size);
            }
        }
    }
    for (int i = 0; i < a->slots; i++)
        close(slots[i].fd);
    close(ep);
    free(slots);
    free(buf);
    return NULL;
}

static int cmd_udp_blast(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: tcpbench udp-blast HOST PORT SECONDS SIZE CONC\n");
        return 2;
    }
    double seconds = (double)parse_num(argv[2], 1, 3600, "seconds");
    int size = (int)parse_num(argv[3], 0, 65507, "size");
    int conc = (int)parse_num(argv[4], 1, 10000, "concurrency");
    int threads = ncpus() < conc ? ncpus() : conc;
    raise_nofile();
    struct ub_arg *args = calloc((size_t)threads, sizeof(*args));
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    if (!args || !th)
        die("calloc");
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
        args[i].len = resolve(argv[0], argv[1], &args[i].ss);
        args[i].slots = conc / threads + (i < conc % threads);
        args[i].size = size;
        args[i].end = t0 + seconds;
        if (pthread_create(&th[i], NULL, ub_thread, &args[i]) != 0)
            die("pthread_create");
    }
    uint64_t done = 0, lost = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        done += args[i].done;
        lost += args[i].lost;
    }
    double el = now_s() - t0;
    fprintf(stderr, "udp-blast: %.0f round trips/s (%llu done, %llu lost, %d B, conc %d)\n",
            (double)done / el, (unsigned long long)done, (unsigned long long)lost, size, conc);
    printf("RESULT udp_rtps=%.0f dgrams=%llu lost=%llu seconds=%.3f size=%d concurrency=%d\n",
           (double)done / el, (unsigned long long)done, (unsigned long long)lost, el, size, conc);
    free(args);
    free(th);
    return done == 0 ? 1 : 0;
}

/* ------------------------------------------------------------ connflood */

#define CF_OPEN_MS 1000

enum cf_state { CF_IDLE, CF_WAIT };

struct cf_slot {
    int fd;
    enum cf_state state;
    double started;
};

struct cf_stats {
    uint64_t attempts, closed, reset, refused, open, errors;
};

/* Opens a connection from src (port chosen at connect time); 0 on success. */
static int cf_open(int ep, const struct sockaddr_storage *dst, socklen_t dlen,
                   const struct sockaddr_in *src, struct cf_slot *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -1;
    int one = 1;
    setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(s->fd, (const struct sockaddr *)src, sizeof(*src)) < 0 ||
        (connect(s->fd, (const struct sockaddr *)dst, dlen) < 0 && errno != EINPROGRESS)) {
        int err = errno;
        close(s->fd);
        s->fd = -1;
        return err == ECONNREFUSED ? 1 : -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    s->state = CF_WAIT;
    s->started = now_s();
    return 0;
}

static void cf_close(int ep, struct cf_slot *s)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    s->state = CF_IDLE;
}

/* The server answered a flood connection: count how, then close it. */
static void cf_outcome(int ep, struct cf_slot *s, struct cf_stats *st)
{
    char b[64];
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err == ECONNREFUSED) {
        st->refused++;
    } else if (err == ECONNRESET) {
        st->reset++;
    } else if (err) {
        st->errors++;
    } else {
        ssize_t n = recv(s->fd, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0)
            st->closed++;
        else if (n < 0 && errno == ECONNRESET)
            st->reset++;
        else if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return; /* spurious wake-up: keep waiting */
        else if (n > 0)
            st->open++; /* it sent data: accepted, not denied */
        else
            st->errors++;
    }
    cf_close(ep, s);
}

static int cmd_connflood(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: tcpbench connflood HOST PORT SECONDS CONC SRCADDR [RATE]\n");
        return 2;
    }
    double seconds = (double)parse_num(argv[2], 1, 3600, "seconds");
    int conc = (int)parse_num(argv[3], 1, 10000, "concurrency");
    long rate = argc > 5 ? parse_num(argv[5], 0, 10000000, "rate") : 0;
    struct sockaddr_in src = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, argv[4], &src.sin_addr) != 1) {
        fprintf(stderr, "tcpbench: bad source address \"%s\" (want IPv4)\n", argv[4]);
        return 2;
    }
    struct sockaddr_storage dst;
    socklen_t dlen = resolve(argv[0], argv[1], &dst);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct cf_slot *slots = calloc((size_t)conc, sizeof(*slots));
    if (ep < 0 || !slots)
        die("connflood");
    for (int i = 0; i < conc; i++)
        slots[i].fd = -1;
    struct cf_stats st = {0};
    struct epoll_event evs[MAX_EVENTS];
    double t0 = now_s(), end = t0 + seconds, scan = t0;
    for (;;) {
        double t = now_s();
        if (t >= end)
            break;
        /* Start connections in idle slots, within the rate budget (RATE 0: no limit). */
        int idle = 0;
        for (int i = 0; i < conc; i++) {
            if (slots[i].state != CF_IDLE)
                continue;
            if (rate && (double)st.attempts >= (t - t0) * (double)rate) {
                idle++;
                continue;
            }
            st.attempts++;
            int rc = cf_open(ep, &dst, dlen, &src, &slots[i]);
            if (rc > 0)
                st.refused++;
            else if (rc < 0)
                st.errors++, idle++;
        }
        int n = epoll_wait(ep, evs, MAX_EVENTS, idle ? 1 : 20);
        for (int i = 0; i < n; i++)
            cf_outcome(ep, evs[i].data.ptr, &st);
        t = now_s();
        if (t - scan < 0.05)
            continue;
        scan = t;
        for (int i = 0; i < conc; i++) {
            if (slots[i].state == CF_WAIT && t - slots[i].started > CF_OPEN_MS / 1000.0) {
                st.open++; /* still open: the server kept it (not denied) */
                cf_close(ep, &slots[i]);
            }
        }
    }
    for (int i = 0; i < conc; i++)
        if (slots[i].fd >= 0)
            cf_close(ep, &slots[i]);
    double el = now_s() - t0;
    uint64_t denied = st.closed + st.reset + st.refused;
    fprintf(stderr,
            "connflood: %.0f denied conn/s from %s (%llu closed, %llu reset, %llu refused, "
            "%llu left open, %llu errors, conc %d)\n",
            (double)denied / el, argv[4], (unsigned long long)st.closed,
            (unsigned long long)st.reset, (unsigned long long)st.refused,
            (unsigned long long)st.open, (unsigned long long)st.errors, conc);
    printf("RESULT flood_cps=%.0f denied=%llu closed=%llu reset=%llu refused=%llu open=%llu "
           "errors=%llu attempts=%llu seconds=%.3f concurrency=%d\n",
           (double)denied / el, (unsigned long long)denied, (unsigned long long)st.closed,
           (unsigned long long)st.reset, (unsigned long long)st.refused,
           (unsigned long long)st.open, (unsigned long long)st.errors,
           (unsigned long long)st.attempts, el, conc);
    free(slots);
    close(ep);
    return denied == 0 ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: tcpbench serve-echo PORT [THREADS]\n"
                    "       tcpbench serve-sink-source PORT [THREADS]\n"
                    "       tcpbench throughput HOST PORT SECONDS [CONNS [down|up]]\n"
                    "       tcpbench connrate HOST PORT SECONDS CONCURRENCY\n"
                    "       tcpbench idle HOST PORT N [HOLD_SECONDS]\n"
                    "       tcpbench udp-echo PORT [THREADS]\n"
                    "       tcpbench udp-blast HOST PORT SECONDS SIZE CONC\n"
                    "       tcpbench connflood HOST PORT SECONDS CONC SRCADDR [RATE]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;
    if (strcmp(cmd, "serve-echo") == 0)
        return cmd_serve(SRV_ECHO, argc, argv);
    if (strcmp(cmd, "serve-sink-source") == 0)
        return cmd_serve(SRV_SINK_SOURCE, argc, argv);
    if (strcmp(cmd, "throughput") == 0)
        return cmd_throughput(argc, argv);
    if (strcmp(cmd, "connrate") == 0)
        return cmd_connrate(argc, argv);
    if (strcmp(cmd, "idle") == 0)
        return cmd_idle(argc, argv);
    if (strcmp(cmd, "udp-echo") == 0)
        return cmd_udp_echo(argc, argv);
    if (strcmp(cmd, "udp-blast") == 0)
        return cmd_udp_blast(argc, argv);
    if (strcmp(cmd, "connflood") == 0)
        return cmd_connflood(argc, argv);
    usage();
    return 2;
}
