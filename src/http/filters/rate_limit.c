/* rate_limit.c — the rate_limit filter; see rate_limit.h and rate_limit-t.h.
 *
 * on_request: for each limit in order, the request's key, then a decision on the limit's
 * table (cluster limits: rate_limit_cluster.c while Redis is up, else the fail mode). The
 * first limit refusing outside shadow mode answers 429; limits in shadow mode that would
 * refuse are counted and named in the access log (`rate_limit=shadow:NAME`) and the request
 * goes on. on_response: the RateLimit-Policy and RateLimit fields for the limits that
 * applied (not the shadow ones).
 */
#include "rate_limit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fmt.h"
#include "core/shared_block.h"
#include "core/siphash.h"
#include "core/time.h"
#include "http/filter.h"
#include "http/filters/rate_limit_cluster.h"
#include "http/msg.h"

#define KEY_MAX 512 /* bytes of a key hashed: longer header values are cut */

int rl_limit_build(struct rl_limit *l)
{
    uint32_t n = 1;
    while (n < l->slots)
        n <<= 1;
    l->mask = n - 1;
    uint64_t key[2] = {0, 0};
    siphash_random_key(key);
    l->k0 = key[0];
    l->k1 = key[1];
    /* shared blocks (core/shared_block.h): a reload hands them to the same limit */
    l->words = shared_block_new((size_t)n * sizeof(uint64_t));
    l->ctr = shared_block_new(RL_MAX_WORKERS * sizeof(struct rl_counters));
    if (!l->words || !l->ctr)
        return -1;
    if (l->cluster && !(l->cl = rl_cluster_new(l->name, n)))
        return -1;
    return 0;
}

void rl_limit_release(struct rl_limit *l)
{
    shared_block_put((void *)l->words);
    shared_block_put(l->ctr);
    rl_cluster_free(l->cl);
    l->words = NULL;
    l->ctr = NULL;
    l->cl = NULL;
}

/* Whether two limits count the same thing the same way: their table can serve both. */
static bool same_limit(const struct rl_limit *a, const struct rl_limit *b)
{
    if (strcmp(a->name, b->name) != 0 || a->algorithm != b->algorithm || a->rate != b->rate ||
        a->per_ms != b->per_ms || a->burst != b->burst || a->mask != b->mask ||
        a->nkey != b->nkey || a->cluster || b->cluster)
        return false;
    for (uint32_t i = 0; i < a->nkey; i++) {
        const struct rl_key_part *x = &a->key[i], *y = &b->key[i];
        if (x->kind != y->kind || x->prefix4 != y->prefix4 || x->prefix6 != y->prefix6 ||
            x->name_len != y->name_len || (x->name_len && memcmp(x->name, y->name, x->name_len)))
            return false;
    }
    return true;
}

/* The rate_limit filter of a route, or NULL. */
static struct filter_rate_limit_conf *route_limits(const struct http_route *r)
{
    for (uint32_t f = 0; f < r->nfilters; f++)
        if (r->filters[f].ops == &filter_rate_limit)
            return r->filters[f].conf;
    return NULL;
}

void rate_limit_carry(const struct http_route *old, struct http_route *r)
{
    const struct filter_rate_limit_conf *oc = route_limits(old);
    struct filter_rate_limit_conf *nc = route_limits(r);
    for (uint32_t i = 0; oc && nc && i < nc->nlimits; i++) {
        struct rl_limit *l = &nc->limits[i];
        for (uint32_t j = 0; j < oc->nlimits; j++) {
            const struct rl_limit *o = &oc->limits[j];
            if (!same_limit(o, l))
                continue;
            shared_block_adopt((void **)&l->words, (void *)o->words);
            shared_block_adopt((void **)&l->ctr, o->ctr);
            l->k0 = o->k0; /* the words are indexed under the old key */
            l->k1 = o->k1;
            break;
        }
    }
}

/* ---- keys ---- */

static size_t put(char *buf, size_t at, size_t cap, const void *p, size_t n)
{
    if (at + n > cap)
        n = cap > at ? cap - at : 0;
    memcpy(buf + at, p, n);
    return at + n;
}

/* The client address cut to the part's prefix, tagged by family. */
static size_t put_client(char *buf, size_t at, size_t cap, const struct rl_key_part *k,
                         const struct sockaddr_any *a)
{
    uint8_t b[17] = {0};
    unsigned bits = 0, len = 0;
    if (a->u.sa.sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr)) {
        b[0] = 6;
        memcpy(b + 1, a->u.in6.sin6_addr.s6_addr, 16);
        bits = k->prefix6;
        len = 16;
    } else if (a->u.sa.sa_family == AF_INET6 || a->u.sa.sa_family == AF_INET) {
        b[0] = 4;
        memcpy(b + 1,
               a->u.sa.sa_family == AF_INET ? (const uint8_t *)&a->u.in.sin_addr
                                            : a->u.in6.sin6_addr.s6_addr + 12,
               4);
        bits = k->prefix4;
        len = 4;
    }
    for (unsigned i = 0; i < len; i++) { /* keep `bits` leading bits */
        unsigned keep = bits > 8 * i ? bits - 8 * i : 0;
        if (keep < 8)
            b[1 + i] &= (uint8_t)(0xff00u >> keep);
    }
    return put(buf, at, cap, b, 1 + len);
}

int rl_key_build(const struct rl_limit *l, const struct http_txn *t, char *buf, size_t cap)
{
    size_t at = 0;
    for (uint32_t i = 0; i < l->nkey; i++) {
        const struct rl_key_part *k = &l->key[i];
        struct hstr v = {NULL, 0};
        at = put(buf, at, cap, (const char[]){(char)('0' + k->kind)}, 1);
        switch (k->kind) {
        case RLK_CLIENT_IP:
            at = put_client(buf, at, cap, k, &t->client);
            continue;
        case RLK_HEADER:
            v = http_hdr_get(&t->req, (struct hstr){k->name, k->name_len});
            break;
        case RLK_COOKIE:
            v = http_cookie_get(&t->req, (struct hstr){k->name, k->name_len});
            break;
        case RLK_ROUTE:
            v = hstr_c(t->route && t->route->name ? t->route->name : "");
            break;
        }
        if (!v.p)
            return -1;
        /* the length first, so that parts cannot run into each other */
        at = put(buf, at, cap, &v.len, sizeof(v.len));
        at = put(buf, at, cap, v.p, v.len);
    }
    return (int)at;
}

/* ---- decisions ---- */

enum outcome { OUT_ALLOWED, OUT_LIMITED, OUT_CLOSED };

static bool local_take(const struct rl_limit *l, const struct rate_window *rw, const char *key,
                       size_t len, uint64_t now, struct rate_state *st)
{
    _Atomic uint64_t *w = &l->words[siphash24(l->k0, l->k1, key, len) & l->mask];
    if (l->algorithm == RL_TOKEN_BUCKET)
        return rate_bucket_take(w, now, &l->bucket, st);
    return rate_window_take(w, now, rw, st);
}

static enum outcome decide(const struct filter_rate_limit_conf *c, const struct rl_limit *l,
                           struct rl_counters *ctr, const char *key, size_t len, uint64_t now,
                           struct rate_state *st)
{
    if (!l->cl)
        return local_take(l, &l->window, key, len, now, st) ? OUT_ALLOWED : OUT_LIMITED;
    const struct rl_redis_state *rs = c->redis_state;
    if (atomic_load_explicit(&rs->up, memory_order_relaxed)) {
        uint32_t slot = (uint32_t)siphash24(l->k0, l->k1, key, len);
        uint32_t nodes = atomic_load_explicit(&rs->nodes, memory_order_relaxed);
        /* windows shared by processes are numbered by the wall clock */
        enum rl_take r = rl_cluster_take(l->cl, slot, rl_cluster_fp(l->cl, key, len), &l->window,
                                         nodes ? nodes : 1, c->redis.sync_ms, real_ms(), st);
        if (r != RL_TAKE_OTHER_KEY)
            return r == RL_TAKE_ALLOWED ? OUT_ALLOWED : OUT_LIMITED;
    } else if (c->redis.fail == RL_FAIL_CLOSED) {
        CTR_ADD(ctr->closed, 1);
        *st = (struct rate_state){0, c->redis.timeout_ms, c->redis.timeout_ms};
        return OUT_CLOSED;
    }
    CTR_ADD(ctr->fallback, 1);
    return local_take(l, &l->fallback_window, key, len, now, st) ? OUT_ALLOWED : OUT_LIMITED;
}

/* What the response fields report: one entry per limit that applied (not shadow). */
struct rl_txn {
    uint32_t n;
    struct {
        const struct rl_limit *l;
        struct rate_state st;
    } e[];
};

static uint64_t secs_up(uint64_t ms)
{
    return (ms + 999) / 1000;
}

static enum filter_verdict refuse(struct http_txn *t, const struct rl_limit *l,
                                  const struct rate_state *st)
{
    static const char body[] = "429 Too Many Requests\n";
    if (txn_answer(t, 429, "text/plain; charset=utf-8", body, sizeof(body) - 1) < 0)
        return FILTER_ERROR;
    uint64_t after = secs_up(st->retry_ms);
    struct hstr v = arena_printf(&t->arena, "%llu", (unsigned long long)(after ? after : 1));
    if (!v.p || http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Retry-After"), v) < 0)
        return FILTER_ERROR;
    t->limited_by = l->name;
    return FILTER_ANSWER;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_rate_limit_conf *c = conf;
    struct rl_txn *rt = NULL;
    if (c->headers) {
        rt = arena_alloc(&t->arena, sizeof(*rt) + c->nlimits * sizeof(rt->e[0]));
        if (!rt)
            return FILTER_ERROR;
        rt->n = 0;
        t->rate_limit = rt;
    }
    uint64_t now = mono_ms();
    char key[KEY_MAX];
    for (uint32_t i = 0; i < c->nlimits; i++) {
        const struct rl_limit *l = &c->limits[i];
        int len = rl_key_build(l, t, key, sizeof(key));
        if (len < 0)
            continue;
        struct rl_counters *ctr = &l->ctr[t->worker % RL_MAX_WORKERS];
        struct rate_state st = {0};
        enum outcome o = decide(c, l, ctr, key, (size_t)len, now, &st);
        if (o != OUT_ALLOWED && l->shadow) {
            CTR_ADD(ctr->shadow, 1);
            struct hstr s = arena_printf(&t->arena, "shadow:%s", l->name);
            t->limited_by = s.p ? s.p : l->name;
            continue;
        }
        if (rt && !l->shadow) {
            rt->e[rt->n].l = l;
            rt->e[rt->n++].st = st;
        }
        if (o != OUT_ALLOWED) {
            CTR_ADD(ctr->limited, 1);
            return refuse(t, l, &st);
        }
        CTR_ADD(ctr->allowed, 1);
    }
    return FILTER_CONTINUE;
}

/* The policy's window in seconds: the period, or for a bucket the time it takes to fill. */
static uint64_t policy_window_s(const struct rl_limit *l)
{
    if (l->algorithm == RL_SLIDING_WINDOW)
        return secs_up(l->per_ms) ? secs_up(l->per_ms) : 1;
    uint64_t ms = (uint64_t)l->burst * l->per_ms / l->rate;
    return secs_up(ms) ? secs_up(ms) : 1;
}

/* RateLimit-Policy: "name";q=Q;w=W, ...  RateLimit: "name";r=R;t=T, ...  (draft-ietf-
 * httpapi-ratelimit-headers: lists of strings with parameters, q = quota, w = window,
 * r = remaining, t = seconds until the quota is back, or until the next request may go
 * when nothing is left). */
/* A bounded text being built (no printf on the per-request path). */
struct field_text {
    char p[1024];
    size_t n;
    bool full;
};

static void ft_put(struct field_text *f, const char *s, size_t n)
{
    if (f->full || n > sizeof(f->p) - f->n) {
        f->full = true;
        return;
    }
    memcpy(f->p + f->n, s, n);
    f->n += n;
}

static void ft_num(struct field_text *f, uint64_t v)
{
    char d[20];
    ft_put(f, d, fmt_u64(d, v));
}

/* One list member: `"name";K1=V1;K2=V2`, after ", " when not the first. */
static void ft_member(struct field_text *f, bool first, const char *name, const char *k1,
                      uint64_t v1, const char *k2, uint64_t v2)
{
    if (!first)
        ft_put(f, ", ", 2);
    ft_put(f, "\"", 1);
    ft_put(f, name, strlen(name));
    ft_put(f, "\";", 2);
    ft_put(f, k1, 2);
    ft_num(f, v1);
    ft_put(f, ";", 1);
    ft_put(f, k2, 2);
    ft_num(f, v2);
}

static enum filter_verdict on_response(struct http_txn *t, const void *conf)
{
    const struct rl_txn *rt = t->rate_limit;
    if (!rt || rt->n == 0)
        return FILTER_CONTINUE;
    struct field_text policy = {.n = 0}, state = {.n = 0};
    for (uint32_t i = 0; i < rt->n; i++) {
        const struct rl_limit *l = rt->e[i].l;
        const struct rate_state *st = &rt->e[i].st;
        uint32_t q = l->algorithm == RL_TOKEN_BUCKET ? l->burst : l->rate;
        uint64_t secs = secs_up(st->remaining ? st->reset_ms : st->retry_ms);
        size_t pn = policy.n, sn = state.n;
        ft_member(&policy, i == 0, l->name, "q=", q, "w=", policy_window_s(l));
        ft_member(&state, i == 0, l->name, "r=", st->remaining, "t=", secs);
        if (policy.full || state.full) { /* names are short (CT_NAME): only a very long */
            policy.n = pn;               /* list is cut */
            state.n = sn;
            break;
        }
    }
    struct hstr p = arena_dup(&t->arena, policy.p, policy.n);
    struct hstr s = arena_dup(&t->arena, state.p, state.n);
    if (!p.p || !s.p || http_hdr_set(&t->resp, &t->arena, HSTR_LIT("RateLimit-Policy"), p) < 0 ||
        http_hdr_set(&t->resp, &t->arena, HSTR_LIT("RateLimit"), s) < 0)
        return FILTER_ERROR;
    return FILTER_CONTINUE;
}

const struct filter_ops filter_rate_limit = {
    .name = "rate_limit",
    .on_request = on_request,
    .on_response = on_response,
};

int rate_limit_foreach(const struct config *cfg, rate_limit_filter_cb cb, void *arg)
{
    for (uint32_t i = 0; i < cfg->nlisteners; i++) {
        const struct listener_conf *lc = &cfg->listeners[i];
        if (lc->mode != MODE_HTTP)
            continue;
        for (uint32_t r = 0; r < lc->http.nroutes; r++) {
            const struct http_route *rt = &lc->http.routes[r];
            for (uint32_t f = 0; f < rt->nfilters; f++) {
                int rc;
                if (rt->filters[f].ops == &filter_rate_limit &&
                    (rc = cb(arg, rt, rt->filters[f].conf)) != 0)
                    return rc;
            }
        }
    }
    return 0;
}
