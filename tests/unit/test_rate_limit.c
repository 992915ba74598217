/* test_rate_limit.c — the rate_limit filter (src/http/filters/rate_limit*.c): its
 * configuration (values, defaults, errors with FILE:LINE:COL), request keys (prefixes,
 * absent header, combinations), decisions and answers through the filter's hooks (429,
 * Retry-After, RateLimit fields, shadow), and the cluster slots: two processes sharing a
 * budget through a counter standing for Redis, slot eviction, a slot held by another key.
 */
#include <string.h>

#include "config/config.h"
#include "http/filter.h"
#include "http/filters/rate_limit.h"
#include "http/filters/rate_limit_cluster.h"
#include "http/msg.h"
#include "test.h"

static const char yaml[] =
    "listeners:\n"
    "  - name: web\n"
    "    listen: 127.0.0.1:8080\n"
    "    mode: http\n"
    "    routes:\n"
    "      - name: api\n"
    "        backend: app\n"
    "        rate_limit:\n"
    "          limits:\n"
    "            - { name: net, key: [client_ip/24/48, \"header:X-Api-Key\"], algorithm: "
    "token_bucket, rate: 2, per: 1m }\n"
    "            - { name: all, key: route, rate: 100, per: 1h, cluster: true }\n"
    "            - { name: try, key: \"cookie:sid\", rate: 1, shadow: true, slots: 1000 }\n"
    "          redis: { address: \"127.0.0.1:6379\" }\n"
    "backends:\n"
    "  app:\n"
    "    servers: [127.0.0.1:9000]\n";

static struct config *load(const char *text, struct config_errors *e)
{
    memset(e, 0, sizeof(*e));
    return config_load_string("strata.yaml", text, 2, e);
}

static struct filter_rate_limit_conf *rl_conf(struct config *c)
{
    const struct http_route *r = &c->listeners[0].http.routes[0];
    CHECK(r->nfilters >= 1 && r->filters[0].ops == &filter_rate_limit);
    return r->filters[0].conf;
}

TEST(rate_limit_config)
{
    struct config_errors e;
    struct config *c = load(yaml, &e);
    CHECK(c != NULL);
    if (!c) {
        fprintf(stderr, "%s\n", e.text ? e.text : "?");
        config_errors_free(&e);
        return;
    }
    struct filter_rate_limit_conf *f = rl_conf(c);
    CHECK_EQ_U64(f->nlimits, 3);
    CHECK(f->headers && f->redis_state != NULL);
    CHECK_EQ_U64(f->redis.timeout_ms, 200);
    CHECK_EQ_U64(f->redis.sync_ms, 50);
    CHECK(f->redis.fail == RL_FAIL_OPEN && strcmp(f->redis.prefix, "strata:rl:") == 0);
    const struct rl_limit *net = &f->limits[0], *all = &f->limits[1], *try = &f->limits[2];
    CHECK(net->algorithm == RL_TOKEN_BUCKET && net->nkey == 2);
    CHECK(net->key[0].kind == RLK_CLIENT_IP && net->key[0].prefix4 == 24 &&
          net->key[0].prefix6 == 48);
    CHECK(net->key[1].kind == RLK_HEADER && strcmp(net->key[1].name, "x-api-key") == 0);
    CHECK_EQ_U64(net->burst, 2); /* defaults to rate */
    CHECK_EQ_U64(net->bucket.cost, 30000);
    CHECK(all->algorithm == RL_SLIDING_WINDOW && all->cluster && all->cl != NULL);
    CHECK_EQ_U64(all->fallback, 100);
    CHECK(try->shadow && try->key[0].kind == RLK_COOKIE && try->mask == 1023);
    config_unref(c);

    static const char *const bad[][2] = {
        {"key: [client_ip/33]", "strata.yaml:10:"},
        {"key: \"query:x\"", "expected client_ip"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[2048];
        const char *at = strstr(yaml, "key: [client_ip/24/48, \"header:X-Api-Key\"]");
        int n = snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - yaml), yaml, bad[i][0],
                         at + strlen("key: [client_ip/24/48, \"header:X-Api-Key\"]"));
        CHECK(n > 0 && (size_t)n < sizeof(text));
        c = load(text, &e);
        CHECK(c == NULL);
        CHECK_STR_CONTAINS(e.text, bad[i][1]);
        config_errors_free(&e);
    }
}

/* The example above, its route and its filter's settings; NULL (reported) if it fails. */
static struct config *load_example(const struct http_route **r, struct filter_rate_limit_conf **f)
{
    struct config_errors e;
    struct config *c = load(yaml, &e);
    CHECK(c != NULL);
    config_errors_free(&e);
    if (c) {
        *r = &c->listeners[0].http.routes[0];
        *f = rl_conf(c);
    }
    return c;
}

static void txn_from(struct http_txn *t, const struct http_route *r, const char *client)
{
    const char *why;
    memset(t, 0, sizeof(*t));
    arena_init(&t->arena, 0);
    t->req.is_request = true;
    t->route = r;
    CHECK(addr_parse(client, &t->client, &why) == 0);
}

TEST(rate_limit_keys)
{
    const struct http_route *r;
    struct filter_rate_limit_conf *f;
    struct config *c = load_example(&r, &f);
    if (!c)
        return;
    struct http_txn a, b, x;
    char ka[512], kb[512], kx[512];
    txn_from(&a, r, "192.0.2.1:1000");
    txn_from(&b, r, "192.0.2.200:2000");
    txn_from(&x, r, "192.0.3.1:1000");
    CHECK(rl_key_build(&f->limits[0], &a, ka, sizeof(ka)) == -1); /* no x-api-key */
    http_hdr_add(&a.req, &a.arena, hstr_c("X-API-Key"), hstr_c("k1"));
    http_hdr_add(&b.req, &b.arena, hstr_c("x-api-key"), hstr_c("k1"));
    http_hdr_add(&x.req, &x.arena, hstr_c("x-api-key"), hstr_c("k1"));
    int la = rl_key_build(&f->limits[0], &a, ka, sizeof(ka));
    int lb = rl_key_build(&f->limits[0], &b, kb, sizeof(kb));
    int lx = rl_key_build(&f->limits[0], &x, kx, sizeof(kx));
    CHECK(la > 0 && la == lb && memcmp(ka, kb, (size_t)la) == 0); /* one /24, one key */
    CHECK(la == lx && memcmp(ka, kx, (size_t)la) != 0);           /* another /24 */
    /* IPv6 /48: the same for addresses differing past it */
    struct http_txn s6, t6;
    txn_from(&s6, r, "[2001:db8:1:2::1]:1");
    txn_from(&t6, r, "[2001:db8:1:ffff::9]:1");
    http_hdr_add(&s6.req, &s6.arena, hstr_c("x-api-key"), hstr_c("k1"));
    http_hdr_add(&t6.req, &t6.arena, hstr_c("x-api-key"), hstr_c("k1"));
    la = rl_key_build(&f->limits[0], &s6, ka, sizeof(ka));
    lb = rl_key_build(&f->limits[0], &t6, kb, sizeof(kb));
    CHECK(la > 0 && la == lb && memcmp(ka, kb, (size_t)la) == 0);
    /* the route's name */
    CHECK(rl_key_build(&f->limits[1], &a, ka, sizeof(ka)) > 3);
    arena_free(&a.arena);
    arena_free(&b.arena);
    arena_free(&x.arena);
    arena_free(&s6.arena);
    arena_free(&t6.arena);
    config_unref(c);
}

TEST(rate_limit_hooks_answer_429)
{
    const struct http_route *r;
    struct filter_rate_limit_conf *f;
    struct config *c = load_example(&r, &f);
    if (!c)
        return;
    enum filter_verdict v[3];
    struct http_txn t;
    for (int i = 0; i < 3; i++) {
        txn_from(&t, r, "198.51.100.7:5");
        http_hdr_add(&t.req, &t.arena, hstr_c("x-api-key"), hstr_c("k"));
        http_hdr_add(&t.req, &t.arena, hstr_c("cookie"), hstr_c("sid=s"));
        v[i] = filter_rate_limit.on_request(&t, f);
        if (i < 2) {
            /* the shadow limit (1 a second) is over on the second request, never refuses */
            CHECK(v[i] == FILTER_CONTINUE);
            CHECK(i == 0 ? t.limited_by == NULL : strcmp(t.limited_by, "shadow:try") == 0);
            t.resp.status = 200;
            CHECK(filter_rate_limit.on_response(&t, f) == FILTER_CONTINUE);
            struct hstr p = http_hdr_get(&t.resp, hstr_c("ratelimit-policy"));
            struct hstr s = http_hdr_get(&t.resp, hstr_c("ratelimit"));
            /* Redis is not up: the cluster limit is decided by its fallback, announced */
            CHECK(p.p && strncmp(p.p, "\"net\";q=2;w=60, \"all\";q=100;w=3600", p.len) == 0);
            CHECK(s.p && strncmp(s.p, i == 0 ? "\"net\";r=1;t=30" : "\"net\";r=0;t=", 12) == 0);
        }
        if (i < 2)
            arena_free(&t.arena);
    }
    CHECK(v[2] == FILTER_ANSWER);
    CHECK_EQ_U64(t.resp.status, 429);
    CHECK(strcmp(t.limited_by, "net") == 0);
    struct hstr ra = http_hdr_get(&t.resp, hstr_c("retry-after"));
    CHECK(ra.p && ra.len == 2 && memcmp(ra.p, "30", 2) == 0); /* a token every 30 s */
    arena_free(&t.arena);
    const struct rl_counters *ctr = &f->limits[0].ctr[0];
    CHECK_EQ_U64(CTR_GET(ctr->allowed), 2);
    CHECK_EQ_U64(CTR_GET(ctr->limited), 1);
    CHECK_EQ_U64(CTR_GET(f->limits[1].ctr[0].fallback), 2);
    CHECK_EQ_U64(CTR_GET(f->limits[2].ctr[0].shadow), 1);
    config_unref(c);
}

/* Two processes, each exchanging every 10 ms (offset by 5) with a counter standing for
 * Redis, asked far more than the budget: together they keep to it. */
TEST(rate_limit_cluster_two_processes)
{
    struct rl_cluster *p[2] = {rl_cluster_new("shared", 16), rl_cluster_new("shared", 16)};
    CHECK(p[0] && p[1]);
    if (!p[0] || !p[1])
        return;
    uint64_t fp = rl_cluster_fp(p[0], "team", 4);
    CHECK(fp == rl_cluster_fp(p[1], "team", 4));
    struct rate_window rw = {300, 3600000};
    uint64_t now = 3600000ull * 1000 + 1000, redis = 0;
    unsigned allowed = 0;
    for (int ms = 0; ms < 2000; ms++, now++) {
        for (int i = 0; i < 2; i++) {
            struct rate_state st;
            for (int k = 0; k < 3; k++)
                allowed += rl_cluster_take(p[i], 5, fp, &rw, 2, 10, now, &st) == RL_TAKE_ALLOWED;
            uint64_t f;
            uint32_t sent;
            if (ms % 10 == 5 * i && rl_cluster_collect(p[i], 5, now, rw.window_ms, &f, &sent)) {
                redis += sent;
                rl_cluster_answer(p[i], 5, f, sent, true, now / rw.window_ms, rw.window_ms, 0,
                                  (uint32_t)redis);
            }
        }
    }
    CHECK(allowed >= 297 && allowed <= 303);
    CHECK_EQ_U64(redis, allowed);
    /* a key whose slot another key holds is decided elsewhere */
    struct rate_state st;
    CHECK(rl_cluster_take(p[0], 5, fp + 1, &rw, 2, 10, now, &st) == RL_TAKE_OTHER_KEY);
    /* idle for two windows: the slot is freed, then taken by the other key */
    uint64_t f;
    uint32_t sent;
    CHECK(!rl_cluster_collect(p[0], 5, now + 2 * rw.window_ms, rw.window_ms, &f, &sent));
    CHECK(rl_cluster_take(p[0], 5, fp + 1, &rw, 2, 10, now, &st) == RL_TAKE_ALLOWED);
    rl_cluster_free(p[0]);
    rl_cluster_free(p[1]);
}
