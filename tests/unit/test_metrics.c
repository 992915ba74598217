/* test_metrics.c — the metric table and its exporters: strbuf bounds, Prometheus text
 * rendered from a hand-built config with two workers' counters (sums, HELP/TYPE once,
 * label escaping), and the admin listener answering real HTTP requests over loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/strbuf.h"
#include "ev/loop.h"
#include "stats/metrics.h"
#include "test.h"

#define NW 2

/* ---- strbuf ---- */

TEST(strbuf_grows_and_formats)
{
    struct strbuf sb;
    sb_init(&sb, 0);
    CHECK(strcmp(sb_str(&sb), "") == 0);
    for (int i = 0; i < 1000; i++)
        CHECK(sb_printf(&sb, "%d,", i) == 0);
    CHECK(!sb.err);
    CHECK(strncmp(sb_str(&sb), "0,1,2,", 6) == 0);
    CHECK_STR_CONTAINS(sb_str(&sb), ",998,999,");
    CHECK_EQ_U64(sb.len, strlen(sb.buf));
    char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    size_t before = sb.len;
    CHECK(sb_printf(&sb, "[%s]", big) == 0);
    CHECK_EQ_U64(sb.len, before + sizeof(big) + 1);
    sb_reset(&sb);
    CHECK_EQ_U64(sb.len, 0);
    CHECK(sb_puts(&sb, "abc") == 0 && strcmp(sb_str(&sb), "abc") == 0);
    sb_free(&sb);
    CHECK(sb.buf == NULL && sb.len == 0);
}

TEST(strbuf_cap_sets_error_and_keeps_content)
{
    struct strbuf sb;
    sb_init(&sb, 10);
    CHECK(sb_puts(&sb, "12345") == 0);
    CHECK(sb_printf(&sb, "%s", "123456") < 0);
    CHECK(sb.err);
    CHECK(strcmp(sb_str(&sb), "12345") == 0);
    CHECK(sb_puts(&sb, "1") < 0); /* sticky: nothing more is appended */
    CHECK_EQ_U64(sb.len, 5);
    sb_reset(&sb);
    CHECK(!sb.err);
    CHECK(sb_printf(&sb, "%s", "1234567890") == 0); /* exactly the cap */
    CHECK(sb_putc(&sb, 'x') < 0);
    sb_free(&sb);
}

/* ---- a hand-built configuration ---- */

struct fixture {
    struct config cfg;
    struct listener_conf lst[2];
    struct backend be;
    struct server srv[2];
    struct server_live live[2];
    struct listener_counters lctr[2][NW];
    struct server_counters sctr[2][NW];
};

static struct fixture *fixture_new(void)
{
    struct fixture *f = aligned_alloc(CACHELINE, (sizeof(*f) + CACHELINE - 1) & ~(size_t)63);
    if (!f)
        abort();
    memset(f, 0, sizeof(*f));
    atomic_store(&f->cfg.refs, 1);
    f->cfg.workers = NW;
    f->cfg.listeners = f->lst;
    f->cfg.nlisteners = 2;
    f->cfg.backends = &f->be;
    f->cfg.nbackends = 1;
    f->lst[0].name = "web";
    f->lst[1].name = "we\"ird\\name\nx";
    f->be.name = "pg";
    f->be.servers = f->srv;
    f->be.nservers = 2;
    f->srv[0].name = "db1";
    f->srv[1].name = "10.0.0.2:5432";
    for (int i = 0; i < 2; i++) {
        f->lst[i].st.ctr = f->lctr[i];
        f->srv[i].st.ctr = f->sctr[i];
        f->srv[i].backend = &f->be;
        f->srv[i].index = (uint32_t)i;
        f->srv[i].st.live = &f->live[i];
        atomic_store(&f->srv[i].st.live->up, true);
    }
    return f;
}

static void fixture_fill(struct fixture *f)
{
    CTR_ADD(f->lctr[0][0].conns_total, 3);
    CTR_ADD(f->lctr[0][1].conns_total, 4);
    CTR_ADD(f->lctr[0][0].bytes_in, 100);
    CTR_ADD(f->lctr[0][1].bytes_in, 23);
    CTR_ADD(f->lctr[0][1].bytes_out, 9000000000ull);
    CTR_ADD(f->lctr[0][0].conns_rejected, 1);
    CTR_ADD(f->lctr[0][1].timeouts, 2);
    CTR_ADD(f->lctr[1][1].connect_failures, 6);
    atomic_store(&f->lst[0].st.active, 5);
    CTR_ADD(f->sctr[0][0].conns_total, 10);
    CTR_ADD(f->sctr[0][1].conns_total, 20);
    CTR_ADD(f->sctr[1][0].connect_errors, 2);
    CTR_ADD(f->sctr[1][1].connect_errors, 5);
    CTR_ADD(f->sctr[0][1].bytes_in, 77);
    CTR_ADD(f->sctr[0][0].bytes_out, 88);
    atomic_store(&f->srv[0].st.live->active, 4);
    atomic_store(&f->srv[1].st.live->up, false);
}

static size_t count_occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- Prometheus rendering ---- */

TEST(metrics_prometheus_sums_workers)
{
    struct fixture *f = fixture_new();
    fixture_fill(f);
    struct strbuf out;
    sb_init(&out, 0);
    metrics_render_prometheus(&f->cfg, &out);
    const char *t = sb_str(&out);
    CHECK(!out.err);
    CHECK_STR_CONTAINS(t, "\nstrata_listener_connections_total{listener=\"web\"} 7\n");
    CHECK_STR_CONTAINS(t, "\nstrata_listener_bytes_in_total{listener=\"web\"} 123\n");
    CHECK_STR_CONTAINS(t, "\nstrata_listener_bytes_out_total{listener=\"web\"} 9000000000\n");
    CHECK_STR_CONTAINS(t, "\nstrata_listener_connections_rejected_total{listener=\"web\"} 1\n");
    CHECK_STR_CONTAINS(t, "\nstrata_listener_timeouts_total{listener=\"web\"} 2\n");
    CHECK_STR_CONTAINS(t, "\nstrata_listener_connections_active{listener=\"web\"} 5\n");
    CHECK_STR_CONTAINS(t, "\nstrata_server_connections_total{backend=\"pg\",server=\"db1\"} 30\n");
    CHECK_STR_CONTAINS(t, "\nstrata_server_connect_errors_total{backend=\"pg\","
                          "server=\"10.0.0.2:5432\"} 7\n");
    CHECK_STR_CONTAINS(t, "\nstrata_server_bytes_in_total{backend=\"pg\",server=\"db1\"} 77\n");
    CHECK_STR_CONTAINS(t, "\nstrata_server_bytes_out_total{backend=\"pg\",server=\"db1\"} 88\n");
    CHECK_STR_CONTAINS(t, "\nstrata_server_connections_active{backend=\"pg\",server=\"db1\"} 4\n");
    CHECK_STR_CONTAINS(t, "\nstrata_server_up{backend=\"pg\",server=\"db1\"} 1\n");
    CHECK_STR_CONTAINS(t, "\nstrata_server_up{backend=\"pg\",server=\"10.0.0.2:5432\"} 0\n");
    CHECK_STR_CONTAINS(t, "\nstrata_build_info{version=\"");
    CHECK_STR_CONTAINS(t, "\nstrata_workers 2\n");
    sb_free(&out);
    free(f);
}

TEST(metrics_prometheus_help_type_once_and_escaping)
{
    static const char *const contract[] = {
        "strata_listener_connections_total",
        "strata_listener_connections_active",
        "strata_listener_connections_rejected_total",
        "strata_listener_bytes_in_total",
        "strata_listener_bytes_out_total",
        "strata_listener_connect_failures_total",
        "strata_listener_timeouts_total",
        "strata_server_connections_total",
        "strata_server_connections_active",
        "strata_server_connect_errors_total",
        "strata_server_bytes_in_total",
        "strata_server_bytes_out_total",
        "strata_server_up",
        "strata_build_info",
    };
    struct fixture *f = fixture_new();
    struct strbuf out;
    char line[160];
    sb_init(&out, 0);
    metrics_render_prometheus(&f->cfg, &out);
    const char *t = sb_str(&out);
    for (size_t i = 0; i < ARRAY_SIZE(contract); i++) {
        snprintf(line, sizeof(line), "# TYPE %s ", contract[i]);
        CHECK_EQ_U64(count_occurrences(t, line), 1);
        snprintf(line, sizeof(line), "# HELP %s ", contract[i]);
        CHECK_EQ_U64(count_occurrences(t, line), 1);
    }
    size_t n;
    const struct metric_def *tab = metrics_table(&n);
    for (size_t i = 0; i < n; i++) {
        const char *type = tab[i].type == METRIC_COUNTER ? "counter" : "gauge";
        snprintf(line, sizeof(line), "# TYPE %s %s\n", tab[i].name, type);
        CHECK_STR_CONTAINS(t, line);
        /* the Prometheus convention: counters, and only they, end in _total */
        size_t len = strlen(tab[i].name);
        bool total = len > 6 && strcmp(tab[i].name + len - 6, "_total") == 0;
        CHECK(total == (tab[i].type == METRIC_COUNTER));
    }
    /* \ -> \\, " -> \", newline -> \n */
    CHECK_STR_CONTAINS(t, "\nstrata_listener_connections_total"
                          "{listener=\"we\\\"ird\\\\name\\nx\"} 0\n");
    CHECK(!strstr(t, "name\nx")); /* no raw newline inside a sample */
    /* every line is a comment or "name{...} value" */
    for (const char *p = t; *p; p = strchr(p, '\n') + 1)
        CHECK(*p == '#' || strncmp(p, "strata_", 7) == 0);
    CHECK(out.len > 0 && t[out.len - 1] == '\n');
    sb_free(&out);
    free(f);
}

struct count_arg {
    unsigned samples, firsts, stop_after;
};

static int count_cb(void *arg, const struct metric_sample *s, bool first)
{
    struct count_arg *c = arg;
    (void)s;
    c->samples++;
    c->firsts += first;
    return c->stop_after && c->samples == c->stop_after ? 42 : 0;
}

TEST(metrics_foreach_visits_every_sample)
{
    struct fixture *f = fixture_new();
    size_t n, nproc = 0, nl = 0, ns = 0, nr = 0, nrl = 0;
    const struct metric_def *tab = metrics_table(&n);
    for (size_t i = 0; i < n; i++) {
        nproc += tab[i].scope == METRIC_PROCESS;
        nl += tab[i].scope == METRIC_LISTENER;
        ns += tab[i].scope == METRIC_SERVER;
        nr += tab[i].scope == METRIC_ROUTE;        /* no HTTP route in the fixture: no sample */
        nrl += tab[i].scope == METRIC_RATE_LIMIT; /* no rate limit in the fixture: no sample */
    }
    CHECK(nl >= 7 && ns >= 6); /* at least the TCP contract metrics */
    struct count_arg c = {0};
    CHECK(metrics_foreach(&f->cfg, count_cb, &c) == 0);
    CHECK_EQ_U64(c.samples, nproc + nl * 2 + ns * 2);
    CHECK_EQ_U64(c.firsts, n - nr - nrl);
    struct count_arg stop = {.stop_after = 3};
    CHECK(metrics_foreach(&f->cfg, count_cb, &stop) == 42);
    CHECK_EQ_U64(stop.samples, 3);
    /* no listeners, no servers: only process samples, still fine */
    f->cfg.nlisteners = 0;
    f->cfg.nbackends = 0;
    struct count_arg empty = {0};
    CHECK(metrics_foreach(&f->cfg, count_cb, &empty) == 0);
    CHECK_EQ_U64(empty.samples, nproc);
    struct strbuf out;
    sb_init(&out, 0);
    metrics_render_prometheus(&f->cfg, &out);
    CHECK_STR_CONTAINS(sb_str(&out), "# TYPE strata_server_up gauge\n");
    sb_free(&out);
    free(f);
}

TEST(metrics_render_bounded_by_strbuf_cap)
{
    struct fixture *f = fixture_new();
    struct strbuf out;
    sb_init(&out, 300);
    metrics_render_prometheus(&f->cfg, &out);
    CHECK(out.err);
    CHECK(out.len <= 300);
    sb_free(&out);
    free(f);
}

/* ---- the admin listener, over loopback ---- */

struct probe {
    struct ev_loop *loop;
    struct sockaddr_any addr;
    const char *req;
    size_t reqlen;
    struct strbuf resp;
    int err; /* 0, or the errno of a failed step */
};

/* Client thread: one blocking request, reads until EOF, then stops the loop. */
static void *probe_thread(void *arg)
{
    struct probe *p = arg;
    struct timeval tv = {.tv_sec = 10};
    char buf[65536];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, &p->addr.u.sa, p->addr.len) < 0 ||
        send(fd, p->req, p->reqlen, MSG_NOSIGNAL) != (ssize_t)p->reqlen) {
        p->err = errno ? errno : EIO;
        goto out;
    }
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            break;
        if (n < 0) {
            p->err = errno;
            break;
        }
        sb_append(&p->resp, buf, (size_t)n);
    }
out:
    if (fd >= 0)
        close(fd);
    ev_loop_wake(p->loop);
    return NULL;
}

static void stop_on_wake(struct ev_loop *loop)
{
    loop->stop = true;
}

static void stop_on_timer(struct ev_loop *loop, struct ev_timer *t)
{
    (void)t;
    loop->stop = true;
}

static void run_for(struct ev_loop *loop, struct ev_timer *t, uint64_t ms)
{
    ev_timer_arm(loop, t, ms);
    loop->stop = false;
    ev_loop_run(loop);
}

/* Sends req to the admin listener while running loop; returns the raw response. */
static void probe(struct ev_loop *loop, struct admin *a, const char *req, size_t len,
                  struct strbuf *resp)
{
    struct probe p = {.loop = loop, .req = req, .reqlen = len};
    struct ev_timer deadline;
    pthread_t th;
    sb_init(&p.resp, 0);
    CHECK(admin_local_addr(a, &p.addr) == 0);
    ev_timer_init(&deadline, stop_on_timer);
    ev_timer_arm(loop, &deadline, 15000);
    CHECK(pthread_create(&th, NULL, probe_thread, &p) == 0);
    loop->stop = false;
    ev_loop_run(loop);
    pthread_join(th, NULL);
    ev_timer_cancel(loop, &deadline);
    CHECK(p.err == 0);
    *resp = p.resp;
}

static void check_status(struct ev_loop *loop, struct admin *a, const char *req,
                         const char *status_line)
{
    struct strbuf r;
    probe(loop, a, req, strlen(req), &r);
    if (strncmp(sb_str(&r), status_line, strlen(status_line)) != 0)
        test_fail(__FILE__, __LINE__, "%.40s... answered %.60s", req, sb_str(&r));
    CHECK_STR_CONTAINS(sb_str(&r), "\r\nConnection: close\r\n");
    CHECK_STR_CONTAINS(sb_str(&r), "\r\nContent-Length: ");
    sb_free(&r);
}

static struct admin *admin_fixture(struct ev_loop *loop, struct config *cfg)
{
    const char *why = NULL;
    CHECK(ev_loop_init(loop) == 0);
    loop->on_wake = stop_on_wake;
    memset(&cfg->admin_addr, 0, sizeof(cfg->admin_addr)); /* 127.0.0.1, any port */
    cfg->admin_addr.u.in.sin_family = AF_INET;
    cfg->admin_addr.u.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cfg->admin_addr.len = sizeof(cfg->admin_addr.u.in);
    struct admin *a = admin_start(loop, cfg, &why);
    CHECK(a != NULL);
    return a;
}

TEST(admin_serves_metrics_and_healthz)
{
    struct fixture *f = fixture_new();
    struct ev_loop loop;
    fixture_fill(f);
    struct admin *a = admin_fixture(&loop, &f->cfg);
    if (!a)
        return;
    CHECK_EQ_U64(atomic_load(&f->cfg.refs), 2);
    struct strbuf r;
    const char *req = "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    probe(&loop, a, req, strlen(req), &r);
    const char *t = sb_str(&r), *body = strstr(t, "\r\n\r\n");
    CHECK(strncmp(t, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_STR_CONTAINS(t, "\r\nContent-Type: text/plain; version=0.0.4");
    CHECK_STR_CONTAINS(t, "\nstrata_listener_connections_total{listener=\"web\"} 7\n");
    const char *cl = strstr(t, "Content-Length: ");
    CHECK(cl && body && strtoul(cl + 16, NULL, 10) == strlen(body + 4));
    sb_free(&r);

    check_status(&loop, a, "GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\n");
    /* a leading empty line is ignored (RFC 9112 §2.2), as by the proxy */
    probe(&loop, a, "\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 36, &r);
    CHECK(strlen(sb_str(&r)) > 3 && strcmp(sb_str(&r) + r.len - 7, "\r\n\r\nok\n") == 0);
    sb_free(&r);
    probe(&loop, a, "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 35, &r);
    CHECK_STR_CONTAINS(sb_str(&r), "Content-Length: 3\r\n");
    CHECK(r.len > 4 && strcmp(sb_str(&r) + r.len - 4, "\r\n\r\n") == 0); /* no body */
    sb_free(&r);
    admin_stop(a);
    CHECK_EQ_U64(atomic_load(&f->cfg.refs), 1);
    ev_loop_free(&loop);
    free(f);
}

TEST(admin_rejects_bad_requests)
{
    struct fixture *f = fixture_new();
    struct ev_loop loop;
    struct admin *a = admin_fixture(&loop, &f->cfg);
    if (!a)
        return;
    check_status(&loop, a, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 404 ");
    check_status(&loop, a, "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
                 "HTTP/1.1 405 ");
    /* the requests are parsed by the HTTP/1 codec, as strictly as proxied ones */
    check_status(&loop, a, "GET /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");      /* no Host */
    check_status(&loop, a, "GET /healthz HTTP/1.1\nHost: a\n\n", "HTTP/1.1 400 "); /* bare LF */
    check_status(&loop, a, "\x16\x03\x01\x02\x01\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400 ");
    check_status(&loop, a, "GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    check_status(&loop, a, "GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 ");
    check_status(&loop, a, "GET  /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ");
    check_status(&loop, a, "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", "HTTP/1.1 400 ");
    check_status(&loop, a, "GET /metrics HTTP/1.1\r\nX: a\rb\r\n\r\n", "HTTP/1.1 400 ");
    check_status(&loop, a, "\r\n\r\nGET\r\n\r\n", "HTTP/1.1 400 ");
    char *big = malloc(ADMIN_MAX_REQUEST + 100);
    if (big) {
        memcpy(big, "GET /metrics HTTP/1.1\r\nX-Pad: ", 30);
        memset(big + 30, 'a', ADMIN_MAX_REQUEST + 69);
        big[ADMIN_MAX_REQUEST + 99] = '\0';
        check_status(&loop, a, big, "HTTP/1.1 431 ");
        free(big);
    }
    admin_stop(a);
    ev_loop_free(&loop);
    free(f);
}

TEST(admin_large_metrics_partial_writes)
{
    enum { NSRV = 20000 };
    struct fixture *f = fixture_new();
    struct server *srv = calloc(NSRV, sizeof(*srv));
    struct server_counters *ctr = aligned_alloc(CACHELINE, NSRV * NW * sizeof(*ctr));
    char *names = malloc(NSRV * 16);
    struct server_live *live = calloc(NSRV, sizeof(*live));
    struct ev_loop loop;
    if (!srv || !ctr || !names || !live)
        abort();
    memset(ctr, 0, NSRV * NW * sizeof(*ctr));
    for (uint32_t i = 0; i < NSRV; i++) {
        snprintf(names + i * 16, 16, "s%u", i);
        srv[i].name = names + i * 16;
        srv[i].backend = &f->be;
        srv[i].st.ctr = ctr + i * NW;
        srv[i].st.live = &live[i];
        CTR_ADD(ctr[i * NW + 1].bytes_in, i);
    }
    f->be.servers = srv;
    f->be.nservers = NSRV;
    struct admin *a = admin_fixture(&loop, &f->cfg);
    if (a) {
        struct strbuf r;
        const char *req = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
        probe(&loop, a, req, strlen(req), &r);
        const char *body = strstr(sb_str(&r), "\r\n\r\n");
        const char *cl = strstr(sb_str(&r), "Content-Length: ");
        CHECK(r.len > 4000000);
        CHECK(cl && body && strtoul(cl + 16, NULL, 10) == r.len - (size_t)(body + 4 - r.buf));
        CHECK_STR_CONTAINS(sb_str(&r), "\nstrata_server_bytes_in_total{backend=\"pg\","
                                       "server=\"s19999\"} 19999\n");
        sb_free(&r);
        admin_stop(a);
    }
    ev_loop_free(&loop);
    free(names);
    free(live);
    free(ctr);
    free(srv);
    free(f);
}

/* Connections beyond ADMIN_MAX_CONNS are closed at once; the listener keeps serving. */
TEST(admin_bounds_connections)
{
    enum { EXTRA = 6, N = ADMIN_MAX_CONNS + EXTRA };
    struct fixture *f = fixture_new();
    struct ev_loop loop;
    struct ev_timer t;
    int fds[N];
    struct admin *a = admin_fixture(&loop, &f->cfg);
    if (!a)
        return;
    struct sockaddr_any addr;
    CHECK(admin_local_addr(a, &addr) == 0);
    ev_timer_init(&t, stop_on_timer);
    /* in two rounds, so that the kernel's accept queue (backlog 64) never overflows */
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        CHECK(fds[i] >= 0);
        int rc = connect(fds[i], &addr.u.sa, addr.len);
        CHECK(rc == 0 || errno == EINPROGRESS);
        if (i == ADMIN_MAX_CONNS - 1 || i == N - 1)
            run_for(&loop, &t, 200);
    }
    int closed = 0;
    for (int i = 0; i < N; i++) {
        char c;
        if (recv(fds[i], &c, 1, 0) == 0)
            closed++;
        close(fds[i]);
    }
    CHECK_EQ_U64(closed, EXTRA);
    run_for(&loop, &t, 100); /* let the server see the clients' EOFs */
    check_status(&loop, a, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK\r\n");
    admin_stop(a);
    ev_loop_free(&loop);
    free(f);
}

TEST(admin_bind_failure_reports_why)
{
    struct fixture *f = fixture_new();
    struct ev_loop loop;
    const char *why = NULL;
    struct admin *a = admin_fixture(&loop, &f->cfg);
    if (!a)
        return;
    CHECK(admin_local_addr(a, &f->cfg.admin_addr) == 0); /* the very same port */
    struct admin *b = admin_start(&loop, &f->cfg, &why);
    CHECK(b == NULL);
    CHECK(why && strstr(why, "in use"));
    CHECK_EQ_U64(atomic_load(&f->cfg.refs), 2);
    admin_stop(b);
    admin_stop(a);
    ev_loop_free(&loop);
    free(f);
}
