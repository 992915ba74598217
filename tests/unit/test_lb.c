/* test_lb.c — property tests of the balancers (src/lb/): they measure shares, sequences,
 * stickiness and disruption rather than just calling pick(). Backends are built by hand
 * (no config file). Set STRATA_TEST_VERBOSE=1 to print the measured figures.
 */
#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "core/hash.h"
#include "lb/lb.h"
#include "test.h"

#define NWORKERS 2

static const enum balance_kind all_kinds[] = {BAL_ROUND_ROBIN, BAL_WEIGHTED,    BAL_LEAST_CONN,
                                              BAL_P2C,         BAL_SOURCE_HASH, BAL_MAGLEV};

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    if (!getenv("STRATA_TEST_VERBOSE"))
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("    ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* A backend of n servers named "srv-<name_base + i>", all up; weights NULL = all 1. */
static struct backend *mk_backend_named(enum balance_kind kind, uint32_t n, const uint32_t *weights,
                                        uint32_t name_base)
{
    struct backend *b = calloc(1, sizeof(*b));
    b->name = strdup("test");
    b->balance = kind;
    b->servers = calloc(n ? n : 1, sizeof(*b->servers));
    b->nservers = n;
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = &b->servers[i];
        char name[32];
        snprintf(name, sizeof(name), "srv-%u", name_base + i);
        s->name = strdup(name);
        s->weight = weights ? weights[i] : 1;
        atomic_store(&s->st.weight, s->weight);
        s->index = i;
        s->backend = b;
        if (!(s->st.live = calloc(1, sizeof(*s->st.live))))
            abort();
        atomic_store(&s->st.live->up, true);
    }
    b->lb_ops = lb_ops_for(kind);
    if (lb_backend_init(b, NWORKERS) < 0)
        abort();
    return b;
}

static struct backend *mk_backend(enum balance_kind kind, uint32_t n, const uint32_t *weights)
{
    return mk_backend_named(kind, n, weights, 0);
}

static void free_backend(struct backend *b)
{
    lb_backend_free(b);
    for (uint32_t i = 0; i < b->nservers; i++) {
        free(b->servers[i].name);
        free(b->servers[i].st.live);
    }
    free(b->servers);
    free(b->name);
    free(b);
}

static void set_up(struct backend *b, uint32_t i, bool up)
{
    atomic_store(&b->servers[i].st.live->up, up);
}

static void set_active(struct backend *b, uint32_t i, uint32_t active)
{
    atomic_store(&b->servers[i].st.live->active, active);
}

/* Index of the server picked, or -1 for NULL. */
static int pick_idx(struct backend *b, unsigned worker, struct lb_req *req)
{
    struct server *s = lb_pick(b, worker, req);
    return s ? (int)(s - b->servers) : -1;
}

static struct sockaddr_any ip4(uint32_t ip)
{
    struct sockaddr_any a;
    memset(&a, 0, sizeof(a));
    a.u.in.sin_family = AF_INET;
    a.u.in.sin_addr.s_addr = htonl(ip);
    a.u.in.sin_port = htons(40000);
    a.len = sizeof(a.u.in);
    return a;
}

/* The server picked for client IP `ip` by worker 0 (no exclusion). */
static int pick_for_ip(struct backend *b, uint32_t ip)
{
    struct sockaddr_any a = ip4(ip);
    struct lb_req req = {.client = &a};
    return pick_idx(b, 0, &req);
}

/* count[idx]++, failing the test (instead of crashing) on a NULL or out-of-range pick. */
#define TALLY(count, idx)                                                                          \
    do {                                                                                           \
        int i_ = (idx);                                                                            \
        CHECK(i_ >= 0 && (size_t)i_ < ARRAY_SIZE(count));                                          \
        if (i_ >= 0 && (size_t)i_ < ARRAY_SIZE(count))                                             \
            (count)[i_]++;                                                                         \
    } while (0)

/* Deterministic pseudo-random client IPs for the hashing tests. */
static uint32_t rand_ip(uint64_t *rng)
{
    return (uint32_t)(rng_next(rng) >> 32);
}

/* ---- common properties, every algorithm ------------------------------------------- */

/* What lb_pick must return for the current state: the tier rule, checked exhaustively
 * against lb_eligible over random health / limit / exclusion states. */
TEST(lb_all_kinds_only_eligible_and_tiers)
{
    for (size_t k = 0; k < ARRAY_SIZE(all_kinds); k++) {
        struct backend *b = mk_backend(all_kinds[k], 6, NULL);
        b->servers[4].backup = b->servers[5].backup = true;
        lb_backend_free(b); /* rebuild: maglev builds its tiers at init */
        CHECK(lb_backend_init(b, NWORKERS) == 0);
        b->servers[2].max_conns = 3;
        uint64_t rng = 42 + k;
        for (int iter = 0; iter < 2000; iter++) {
            uint64_t r = rng_next(&rng);
            for (uint32_t i = 0; i < 6; i++)
                set_up(b, i, (r >> i) & 1);
            set_active(b, 2, (uint32_t)((r >> 8) % 5));
            struct sockaddr_any a = ip4((uint32_t)(r >> 32));
            struct lb_req req = {.client = (r >> 12) & 1 ? &a : NULL};
            if ((r >> 13) & 1)
                req.exclude[req.nexclude++] = &b->servers[(r >> 14) % 6];
            bool prim = false, back = false;
            for (uint32_t i = 0; i < 6; i++) {
                req.backup = b->servers[i].backup;
                bool e = lb_eligible(&b->servers[i], &req);
                prim |= e && !b->servers[i].backup;
                back |= e && b->servers[i].backup;
            }
            req.backup = false;
            struct server *s = lb_pick(b, (unsigned)(iter & 1), &req);
            CHECK(!req.backup); /* restored */
            if (!prim && !back) {
                CHECK(s == NULL);
                continue;
            }
            CHECK(s != NULL);
            if (!s)
                continue;
            CHECK(s->backup == !prim);
            req.backup = s->backup;
            CHECK(lb_eligible(s, &req));
        }
        free_backend(b);
    }
}

TEST(lb_eligible_rules)
{
    struct backend *b = mk_backend(BAL_ROUND_ROBIN, 2, NULL);
    struct server *s = &b->servers[0];
    struct lb_req req = {0};
    CHECK(lb_eligible(s, &req));
    s->max_conns = 2;
    set_active(b, 0, 1);
    CHECK(lb_eligible(s, &req));
    set_active(b, 0, 2);
    CHECK(!lb_eligible(s, &req));
    s->max_conns = 0;
    CHECK(lb_eligible(s, &req));
    req.exclude[req.nexclude++] = &b->servers[1];
    CHECK(lb_eligible(s, &req));
    req.exclude[req.nexclude++] = s;
    CHECK(!lb_eligible(s, &req));
    req.nexclude = 0;
    req.backup = true;
    CHECK(!lb_eligible(s, &req));
    req.backup = false;
    set_up(b, 0, false);
    CHECK(!lb_eligible(s, &req));
    free_backend(b);
}

TEST(lb_ops_for_names)
{
    CHECK(strcmp(lb_ops_for(BAL_ROUND_ROBIN)->name, "round_robin") == 0);
    CHECK(strcmp(lb_ops_for(BAL_WEIGHTED)->name, "weighted") == 0);
    CHECK(strcmp(lb_ops_for(BAL_LEAST_CONN)->name, "least_conn") == 0);
    CHECK(strcmp(lb_ops_for(BAL_P2C)->name, "p2c") == 0);
    CHECK(strcmp(lb_ops_for(BAL_SOURCE_HASH)->name, "source_hash") == 0);
    CHECK(strcmp(lb_ops_for(BAL_MAGLEV)->name, "maglev") == 0);
}

TEST(lb_worker_state_seeded)
{
    struct backend *b = mk_backend(BAL_WEIGHTED, 3, NULL);
    CHECK(((uintptr_t)b->lb_worker % CACHELINE) == 0);
    CHECK(b->lb_worker[0].rng != 0 && b->lb_worker[1].rng != 0);
    CHECK(b->lb_worker[0].rng != b->lb_worker[1].rng);
    CHECK(b->lb_worker[0].cw && b->lb_worker[1].cw);
    CHECK(b->lb_worker[0].cw != b->lb_worker[1].cw);
    free_backend(b);
}

/* ---- round robin -------------------------------------------------------------------- */

TEST(lb_rr_exact_even_spread)
{
    struct backend *b = mk_backend(BAL_ROUND_ROBIN, 3, NULL);
    struct lb_req req = {0};
    uint64_t count[3] = {0};
    for (int i = 0; i < 3000; i++) {
        int idx = pick_idx(b, 0, &req);
        CHECK(idx >= 0);
        if (idx >= 0)
            count[idx]++;
    }
    for (int i = 0; i < 3; i++)
        CHECK_EQ_U64(count[i], 1000);
    free_backend(b);
}

TEST(lb_rr_workers_start_apart)
{
    struct backend *b = mk_backend(BAL_ROUND_ROBIN, 3, NULL);
    struct lb_req req = {0};
    CHECK_EQ_U64(pick_idx(b, 0, &req), 0);
    CHECK_EQ_U64(pick_idx(b, 1, &req), 1);
    free_backend(b);
}

TEST(lb_rr_down_max_conns_exclude)
{
    struct backend *b = mk_backend(BAL_ROUND_ROBIN, 3, NULL);
    struct lb_req req = {0};
    set_up(b, 1, false);
    uint64_t count[3] = {0};
    for (int i = 0; i < 300; i++)
        TALLY(count, pick_idx(b, 0, &req));
    CHECK_EQ_U64(count[1], 0);
    CHECK_EQ_U64(count[0], 150);
    CHECK_EQ_U64(count[2], 150);
    /* max_conns: server 0 full */
    b->servers[0].max_conns = 4;
    set_active(b, 0, 4);
    for (int i = 0; i < 30; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 2);
    set_active(b, 0, 3);
    int seen0 = 0;
    for (int i = 0; i < 4; i++)
        seen0 += pick_idx(b, 0, &req) == 0;
    CHECK_EQ_U64(seen0, 2);
    /* exclude: the only other candidate */
    req.exclude[req.nexclude++] = &b->servers[2];
    for (int i = 0; i < 10; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 0);
    req.exclude[req.nexclude++] = &b->servers[0];
    CHECK(lb_pick(b, 0, &req) == NULL);
    req.nexclude = 0;
    /* all down */
    for (uint32_t i = 0; i < 3; i++)
        set_up(b, i, false);
    CHECK(lb_pick(b, 0, &req) == NULL);
    free_backend(b);
}

TEST(lb_rr_backup_only_when_primaries_down)
{
    struct backend *b = mk_backend(BAL_ROUND_ROBIN, 4, NULL);
    b->servers[3].backup = true;
    struct lb_req req = {0};
    for (int i = 0; i < 30; i++)
        CHECK(pick_idx(b, 0, &req) != 3);
    set_up(b, 0, false);
    set_up(b, 1, false);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 2);
    set_up(b, 2, false);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 3);
    CHECK(!req.backup);
    set_up(b, 1, true); /* a primary returns: the backup stops getting traffic */
    for (int i = 0; i < 10; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 1);
    set_up(b, 1, false);
    set_up(b, 3, false);
    CHECK(lb_pick(b, 0, &req) == NULL);
    free_backend(b);
}

/* ---- weighted ------------------------------------------------------------------------ */

TEST(lb_weighted_smooth_sequence)
{
    const uint32_t w[] = {5, 1, 1};
    struct backend *b = mk_backend(BAL_WEIGHTED, 3, w);
    struct lb_req req = {0};
    const int want[] = {0, 0, 1, 0, 2, 0, 0};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
            CHECK_EQ_U64(pick_idx(b, 0, &req), want[i]);
    /* no burst longer than a server's weight, over many cycles */
    int last = -1, run = 0, max_run[3] = {0};
    for (int i = 0; i < 7000; i++) {
        int idx = pick_idx(b, 0, &req);
        run = idx == last ? run + 1 : 1;
        last = idx;
        if (run > max_run[idx])
            max_run[idx] = run;
    }
    note("weighted 5,1,1: longest runs %d,%d,%d", max_run[0], max_run[1], max_run[2]);
    for (int i = 0; i < 3; i++)
        CHECK(max_run[i] <= (int)w[i]);
    free_backend(b);
}

/* Share of each server over `picks` picks vs weight / total, absolute deviation. */
static double weighted_max_dev(const uint32_t *w, uint32_t n, int picks)
{
    struct backend *b = mk_backend(BAL_WEIGHTED, n, w);
    struct lb_req req = {0};
    uint64_t count[8] = {0}, total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += w[i];
    for (int i = 0; i < picks; i++)
        TALLY(count, pick_idx(b, 0, &req));
    double max_dev = 0;
    for (uint32_t i = 0; i < n; i++) {
        double dev = fabs((double)count[i] / picks - (double)w[i] / (double)total);
        max_dev = dev > max_dev ? dev : max_dev;
    }
    free_backend(b);
    return max_dev;
}

TEST(lb_weighted_shares)
{
    const uint32_t w1[] = {3, 2, 1}, w2[] = {50, 30, 15, 5};
    double d1 = weighted_max_dev(w1, 3, 100000), d2 = weighted_max_dev(w2, 4, 100000);
    note("weighted 3,2,1: max share deviation %.6f; 50,30,15,5: %.6f", d1, d2);
    CHECK(d1 < 0.01);
    CHECK(d2 < 0.01);
}

TEST(lb_weighted_skips_down)
{
    const uint32_t w[] = {5, 1, 1};
    struct backend *b = mk_backend(BAL_WEIGHTED, 3, w);
    struct lb_req req = {0};
    set_up(b, 0, false);
    uint64_t count[3] = {0};
    for (int i = 0; i < 100; i++)
        TALLY(count, pick_idx(b, 0, &req));
    CHECK_EQ_U64(count[0], 0);
    CHECK_EQ_U64(count[1], 50);
    CHECK_EQ_U64(count[2], 50);
    free_backend(b);
}

/* ---- least connections --------------------------------------------------------------- */

TEST(lb_least_conn_fewest)
{
    struct backend *b = mk_backend(BAL_LEAST_CONN, 3, NULL);
    struct lb_req req = {0};
    set_active(b, 0, 5);
    set_active(b, 1, 1);
    set_active(b, 2, 3);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_U64(pick_idx(b, (unsigned)(i & 1), &req), 1);
    set_up(b, 1, false);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 2);
    free_backend(b);
}

TEST(lb_least_conn_weighted)
{
    const uint32_t w[] = {4, 1};
    struct backend *b = mk_backend(BAL_LEAST_CONN, 2, w);
    struct lb_req req = {0};
    set_active(b, 0, 4); /* 4/4 = 1 */
    set_active(b, 1, 3); /* 3/1 = 3 */
    for (int i = 0; i < 20; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 0);
    set_active(b, 0, 16); /* 16/4 = 4 > 3 */
    for (int i = 0; i < 20; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 1);
    free_backend(b);
}

TEST(lb_least_conn_ties_shared)
{
    struct backend *b = mk_backend(BAL_LEAST_CONN, 3, NULL);
    struct lb_req req = {0};
    for (uint32_t i = 0; i < 3; i++)
        set_active(b, i, 2);
    uint64_t count[3] = {0};
    for (int i = 0; i < 30; i++)
        TALLY(count, pick_idx(b, 0, &req));
    for (int i = 0; i < 3; i++)
        CHECK(count[i] >= 1);
    free_backend(b);
}

/* ---- power of two choices ------------------------------------------------------------ */

TEST(lb_p2c_prefers_idle)
{
    struct backend *b = mk_backend(BAL_P2C, 4, NULL);
    struct lb_req req = {0};
    set_active(b, 0, 100);
    set_active(b, 1, 0);
    set_active(b, 2, 100);
    set_active(b, 3, 100);
    uint64_t count[4] = {0};
    for (int i = 0; i < 10000; i++)
        TALLY(count, pick_idx(b, 0, &req));
    /* server 1 wins whenever it is one of the two drawn: 1 - C(3,2)/C(4,2) = 50% */
    note("p2c {100,0,100,100}: server 1 got %.4f of picks", (double)count[1] / 10000);
    CHECK(count[1] > 4000);
    CHECK(count[0] > 0 && count[2] > 0 && count[3] > 0);
    free_backend(b);
}

TEST(lb_p2c_never_down_and_single)
{
    struct backend *b = mk_backend(BAL_P2C, 4, NULL);
    struct lb_req req = {0};
    set_up(b, 2, false);
    for (int i = 0; i < 5000; i++)
        CHECK(pick_idx(b, (unsigned)(i & 1), &req) != 2);
    set_up(b, 0, false);
    set_up(b, 1, false);
    for (int i = 0; i < 100; i++)
        CHECK_EQ_U64(pick_idx(b, 0, &req), 3);
    set_up(b, 3, false);
    CHECK(lb_pick(b, 0, &req) == NULL);
    free_backend(b);
}

TEST(lb_p2c_uniform_when_equal)
{
    struct backend *b = mk_backend(BAL_P2C, 5, NULL);
    struct lb_req req = {0};
    set_up(b, 4, false); /* forces some fallback passes too */
    uint64_t count[5] = {0};
    for (int i = 0; i < 40000; i++)
        TALLY(count, pick_idx(b, 0, &req));
    for (int i = 0; i < 4; i++)
        CHECK(count[i] > 9000 && count[i] < 11000);
    CHECK_EQ_U64(count[4], 0);
    free_backend(b);
}

/* ---- source hash --------------------------------------------------------------------- */

TEST(lb_source_hash_sticky_and_even)
{
    struct backend *b = mk_backend(BAL_SOURCE_HASH, 5, NULL);
    int first = pick_for_ip(b, 0x0a000001);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ_U64(pick_for_ip(b, 0x0a000001), first);
    uint64_t rng = 7, count[5] = {0};
    for (int i = 0; i < 10000; i++)
        TALLY(count, pick_for_ip(b, rand_ip(&rng)));
    for (int i = 0; i < 5; i++) {
        note("source_hash 5 servers: server %d has %llu of 10000", i, (unsigned long long)count[i]);
        CHECK(count[i] >= 1600 && count[i] <= 2400); /* within 20% of 2000 */
    }
    free_backend(b);
}

TEST(lb_source_hash_down_moves_only_its_clients)
{
    struct backend *b = mk_backend(BAL_SOURCE_HASH, 5, NULL);
    enum { NIP = 10000 };
    static uint32_t ips[NIP];
    static int before[NIP];
    uint64_t rng = 11;
    for (int i = 0; i < NIP; i++) {
        ips[i] = rand_ip(&rng);
        before[i] = pick_for_ip(b, ips[i]);
    }
    set_up(b, 2, false);
    int moved_others = 0, moved_own = 0, own = 0;
    for (int i = 0; i < NIP; i++) {
        int now = pick_for_ip(b, ips[i]);
        CHECK(now != 2);
        if (before[i] == 2) {
            own++;
            moved_own += now != 2;
        } else {
            moved_others += now != before[i];
        }
    }
    CHECK_EQ_U64(moved_others, 0);
    CHECK_EQ_U64(moved_own, own);
    set_up(b, 2, true); /* back up: everyone returns */
    int back = 0;
    for (int i = 0; i < NIP; i++)
        back += pick_for_ip(b, ips[i]) == before[i];
    CHECK_EQ_U64(back, NIP);
    free_backend(b);
}

TEST(lb_source_hash_weights_and_no_client)
{
    const uint32_t w[] = {3, 1};
    struct backend *b = mk_backend(BAL_SOURCE_HASH, 2, w);
    uint64_t rng = 13, count[2] = {0};
    for (int i = 0; i < 20000; i++)
        TALLY(count, pick_for_ip(b, rand_ip(&rng)));
    double share = (double)count[0] / 20000;
    note("source_hash weights 3,1: share of server 0 %.4f (want 0.75)", share);
    CHECK(share > 0.73 && share < 0.77);
    struct lb_req req = {0}; /* no client: round robin */
    CHECK_EQ_U64(pick_idx(b, 0, &req), 0);
    CHECK_EQ_U64(pick_idx(b, 0, &req), 1);
    free_backend(b);
}

/* ---- maglev -------------------------------------------------------------------------- */

static bool prime(uint32_t n)
{
    for (uint32_t d = 2; (uint64_t)d * d <= n; d++)
        if (n % d == 0)
            return false;
    return n >= 2;
}

enum { MG_KEYS = 100000 };
static uint32_t mg_ips[MG_KEYS];
static const char *mg_before[MG_KEYS];

static void mg_make_ips(void)
{
    uint64_t rng = 99;
    for (int i = 0; i < MG_KEYS; i++)
        mg_ips[i] = rand_ip(&rng);
}

static const char *mg_name(struct backend *b, uint32_t ip)
{
    int idx = pick_for_ip(b, ip);
    return idx >= 0 ? b->servers[idx].name : "";
}

TEST(lb_maglev_table_prime_and_balanced)
{
    struct backend *b = mk_backend(BAL_MAGLEV, 10, NULL);
    uint32_t m = 0;
    const uint32_t *table = lb_maglev_table(b, false, &m);
    CHECK(table != NULL);
    CHECK_EQ_U64(m, 65537);
    CHECK(prime(m));
    CHECK(lb_maglev_table(b, true, &m) == NULL); /* no backup tier */
    uint64_t slots[10] = {0}, keys[10] = {0};
    for (uint32_t i = 0; table && i < m; i++)
        slots[table[i]]++;
    uint64_t lo = slots[0], hi = slots[0];
    for (int i = 1; i < 10; i++) {
        lo = slots[i] < lo ? slots[i] : lo;
        hi = slots[i] > hi ? slots[i] : hi;
    }
    CHECK(hi - lo <= 1); /* equal weights: slots differ by at most one */
    mg_make_ips();
    for (int i = 0; i < MG_KEYS; i++)
        TALLY(keys, pick_for_ip(b, mg_ips[i]));
    double max_dev = 0;
    for (int i = 0; i < 10; i++)
        max_dev = fmax(max_dev, fabs((double)keys[i] / MG_KEYS - 0.1));
    note("maglev 10 servers: slots %llu..%llu of %u, key share max |dev| %.4f",
         (unsigned long long)lo, (unsigned long long)hi, m, max_dev);
    /* slots are exact, so keys deviate only by sampling: sd = sqrt(.1*.9/1e5) = 0.00095;
     * 0.005 (0.5 percentage point) is > 5 sd */
    CHECK(max_dev < 0.005);
    free_backend(b);
    b = mk_backend(BAL_MAGLEV, 1000, NULL); /* 100 * N > 65537: next prime >= 100000 */
    table = lb_maglev_table(b, false, &m);
    CHECK(m >= 100000 && prime(m));
    free_backend(b);
}

/* Fraction of keys whose server (by name) differs between b1 and b2. */
static double mg_moved(struct backend *b1, struct backend *b2)
{
    int moved = 0;
    for (int i = 0; i < MG_KEYS; i++)
        moved += strcmp(mg_name(b1, mg_ips[i]), mg_name(b2, mg_ips[i])) != 0;
    return (double)moved / MG_KEYS;
}

TEST(lb_maglev_disruption)
{
    mg_make_ips();
    struct backend *b10 = mk_backend(BAL_MAGLEV, 10, NULL);
    struct backend *b9 = mk_backend_named(BAL_MAGLEV, 9, NULL, 1); /* srv-0 removed */
    struct backend *b11 = mk_backend(BAL_MAGLEV, 11, NULL);        /* srv-10 added */
    double removed = mg_moved(b10, b9), added = mg_moved(b10, b11);
    note("maglev remove 1 of 10: %.4f moved (1/N = 0.1); add 11th: %.4f (1/11 = 0.0909)", removed,
         added);
    CHECK(removed <= 0.1 + 0.02);
    CHECK(added <= 1.0 / 11 + 0.02);
    free_backend(b9);
    free_backend(b11);
    free_backend(b10);
}

TEST(lb_maglev_order_independent)
{
    mg_make_ips();
    struct backend *a = mk_backend(BAL_MAGLEV, 10, NULL);
    struct backend *b = mk_backend(BAL_MAGLEV, 10, NULL);
    /* same servers listed in reverse order: rebuild b with swapped names */
    lb_backend_free(b);
    for (uint32_t i = 0; i < 10; i++)
        b->servers[i].name[4] = (char)('0' + 9 - i); /* "srv-N" -> "srv-(9-N)" */
    CHECK(lb_backend_init(b, NWORKERS) == 0);
    CHECK(mg_moved(a, b) == 0);
    free_backend(a);
    free_backend(b);
}

TEST(lb_maglev_down_moves_only_its_keys)
{
    mg_make_ips();
    struct backend *b = mk_backend(BAL_MAGLEV, 10, NULL);
    for (int i = 0; i < MG_KEYS; i++)
        mg_before[i] = mg_name(b, mg_ips[i]);
    set_up(b, 3, false);
    int moved_others = 0, own = 0;
    uint64_t dest[10] = {0};
    for (int i = 0; i < MG_KEYS; i++) {
        int now = pick_for_ip(b, mg_ips[i]);
        CHECK(now != 3 && now >= 0);
        if (now < 0)
            continue;
        if (strcmp(mg_before[i], "srv-3") == 0) {
            own++;
            dest[now]++;
        } else {
            moved_others += strcmp(mg_before[i], b->servers[now].name) != 0;
        }
    }
    CHECK_EQ_U64(moved_others, 0);
    /* the down server's keys spread over the other nine, not onto one neighbour */
    for (int i = 0; i < 10; i++)
        if (i != 3)
            CHECK(dest[i] > (uint64_t)own / 9 / 2 && dest[i] < (uint64_t)own / 9 * 2);
    set_up(b, 3, true);
    int back = 0;
    for (int i = 0; i < MG_KEYS; i++)
        back += strcmp(mg_name(b, mg_ips[i]), mg_before[i]) == 0;
    CHECK_EQ_U64(back, MG_KEYS);
    /* all down but one: everything goes to it (the scan after the probes) */
    for (uint32_t i = 0; i < 10; i++)
        set_up(b, i, i == 7);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ_U64(pick_for_ip(b, mg_ips[i]), 7);
    free_backend(b);
}

TEST(lb_maglev_weights)
{
    mg_make_ips();
    const uint32_t w[] = {2, 1, 2, 1};
    struct backend *b = mk_backend(BAL_MAGLEV, 4, w);
    uint64_t keys[4] = {0};
    for (int i = 0; i < MG_KEYS; i++)
        TALLY(keys, pick_for_ip(b, mg_ips[i]));
    double max_rel = 0;
    for (int i = 0; i < 4; i++) {
        double want = w[i] / 6.0, got = (double)keys[i] / MG_KEYS;
        max_rel = fmax(max_rel, fabs(got - want) / want);
    }
    note("maglev weights 2,1,2,1: shares %.4f %.4f %.4f %.4f, max relative dev %.4f",
         (double)keys[0] / MG_KEYS, (double)keys[1] / MG_KEYS, (double)keys[2] / MG_KEYS,
         (double)keys[3] / MG_KEYS, max_rel);
    CHECK(max_rel < 0.05);
    free_backend(b);
}

TEST(lb_maglev_backup_tier)
{
    struct backend *b = mk_backend(BAL_MAGLEV, 4, NULL);
    b->servers[2].backup = b->servers[3].backup = true;
    lb_backend_free(b);
    CHECK(lb_backend_init(b, NWORKERS) == 0);
    uint32_t m = 0;
    CHECK(lb_maglev_table(b, true, &m) != NULL);
    uint64_t rng = 5;
    for (int i = 0; i < 1000; i++)
        CHECK(pick_for_ip(b, rand_ip(&rng)) < 2);
    set_up(b, 0, false);
    set_up(b, 1, false);
    uint64_t count[4] = {0};
    for (int i = 0; i < 1000; i++)
        TALLY(count, pick_for_ip(b, rand_ip(&rng)));
    CHECK(count[2] > 300 && count[3] > 300);
    free_backend(b);
}

/* ---- concurrency --------------------------------------------------------------------- */

struct picker {
    struct backend *b;
    unsigned worker;
    uint64_t count[3];
};

static void *picker_run(void *arg)
{
    struct picker *p = arg;
    struct lb_req req = {0};
    for (int i = 0; i < 100000; i++) {
        struct server *s = lb_pick(p->b, p->worker, &req);
        if (!s)
            continue;
        p->count[s - p->b->servers]++;
        /* touch the shared runtime state the way workers do */
        atomic_fetch_add_explicit(&s->st.live->active, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&s->st.live->active, 1, memory_order_relaxed);
    }
    return NULL;
}

TEST(lb_concurrent_workers)
{
    for (size_t k = 0; k < ARRAY_SIZE(all_kinds); k++) {
        struct backend *b = mk_backend(all_kinds[k], 3, NULL);
        struct picker p[2] = {{.b = b, .worker = 0}, {.b = b, .worker = 1}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, picker_run, &p[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        uint64_t total = 0;
        for (int s = 0; s < 3; s++)
            total += p[0].count[s] + p[1].count[s];
        CHECK_EQ_U64(total, 200000);
        if (all_kinds[k] == BAL_ROUND_ROBIN || all_kinds[k] == BAL_WEIGHTED) {
            for (int s = 0; s < 3; s++) {
                double share = (double)(p[0].count[s] + p[1].count[s]) / 200000;
                CHECK(fabs(share - 1.0 / 3) < 0.01);
            }
        }
        free_backend(b);
    }
}
