/* ext_authz.c — the `ext_authz` filter: external authorization, as NGINX's auth_request or
 * Envoy's ext_authz. on_request sends a sub-request (a GET of `path` with the chosen request
 * fields, X-Original-Method and X-Original-URI) to the auth service's backend and waits
 * (FILTER_WAIT); the answer resumes the request (filter_resume): a 2xx lets it on with the
 * chosen fields of the answer copied in, anything else is the client's answer (status,
 * chosen fields, body up to AUTHZ_BODY_MAX). A failure (no server, a broken or slow
 * exchange) applies the failure mode within `timeout`.
 *
 * The sub-request is a stream of its own (struct http_stream, stream_send): the upstream
 * layer picks, pools, connects and retries, the backend's server codec writes the request
 * and parses the answer, as for any request; this file is only its client side (a mux that
 * collects the answer) and its timer. Results are kept per worker for `cache` in a small
 * table keyed by the chosen request fields' values (authz_cache_*).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "ev/worker.h"
#include "http/filter.h"
#include "http/msg.h"
#include "http/stream.h"

#define AUTHZ_BODY_MAX 8192   /* of a denial's body, passed to the client */
#define AUTHZ_MAX_FIELDS 16   /* fields copied from one answer */
#define AUTHZ_CACHE_SLOTS 256 /* results per worker */
#define AUTHZ_CACHE_BLOB 2048 /* a larger result is not kept */
#define AUTHZ_MAX_KEY 1024    /* a longer cache key is not kept */

/* What the auth service said, pointing into the sub-request or a cache entry. */
struct authz_result {
    uint16_t status;
    uint32_t nh;
    struct http_hdr h[AUTHZ_MAX_FIELDS];
    struct hstr body;
};

/* One check in flight. */
struct authz_call {
    struct http_stream st; /* the sub-request */
    struct http_txn *parent;
    const struct filter_ext_authz_conf *c;
    struct ev_timer timer;
    struct ev_defer dfree;
    uint64_t deadline_ms; /* the check's `timeout` */
    struct hstr key;      /* the cache key (the parent's arena), .p NULL: not cached */
    uint64_t key_hash;
    bool head_seen, done, failed;
    bool waiting;  /* on_request returned FILTER_WAIT: the verdict resumes the parent */
    bool finished; /* the verdict is in `verdict` (the memory lasts to the batch's end) */
    enum filter_verdict verdict;
    uint32_t body_len;
    char body[AUTHZ_BODY_MAX];
    _Alignas(8) char arena_buf[2048];
};

static struct listener_counters *ctr(const struct http_txn *t)
{
    return &t->lc->st.ctr[t->worker];
}

/* ---- the per-worker cache ---- */

struct authz_entry {
    const void *conf;
    uint64_t hash, expires_ms;
    struct authz_result r; /* points into blob */
    uint32_t keylen;
    char *blob; /* the key, then the fields and the body */
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
    struct authz_entry *e = p;
    for (int i = 0; e && i < AUTHZ_CACHE_SLOTS; i++)
        free(e[i].blob);
    free(e);
}

static void cache_key_make(void)
{
    pthread_key_create(&cache_key, cache_free); /* freed when the worker's thread ends */
}

/* This worker's table (NULL: no memory). */
static struct authz_entry *cache_table(void)
{
    pthread_once(&cache_once, cache_key_make);
    struct authz_entry *e = pthread_getspecific(cache_key);
    if (!e && (e = calloc(AUTHZ_CACHE_SLOTS, sizeof(*e))) && pthread_setspecific(cache_key, e)) {
        free(e);
        e = NULL;
    }
    return e;
}

static struct authz_entry *cache_slot(const void *conf, uint64_t hash)
{
    struct authz_entry *tab = cache_table();
    return tab ? &tab[(hash ^ (uintptr_t)conf) % AUTHZ_CACHE_SLOTS] : NULL;
}

static const struct authz_result *cache_get(const struct filter_ext_authz_conf *c, struct hstr key,
                                            uint64_t hash, uint64_t now)
{
    struct authz_entry *e = cache_slot(c, hash);
    if (!e || !e->blob || e->conf != c || e->hash != hash || e->keylen != key.len ||
        memcmp(e->blob, key.p, key.len) || now >= e->expires_ms)
        return NULL;
    return &e->r;
}

static void cache_put(const struct filter_ext_authz_conf *c, struct hstr key, uint64_t hash,
                      uint64_t now, const struct authz_result *r)
{
    size_t need = key.len + r->body.len;
    for (uint32_t i = 0; i < r->nh; i++)
        need += r->h[i].name.len + r->h[i].value.len;
    struct authz_entry *e = cache_slot(c, hash);
    char *blob = need <= AUTHZ_CACHE_BLOB && e ? malloc(need ? need : 1) : NULL;
    if (!blob)
        return;
    free(e->blob);
    memset(e, 0, sizeof(*e));
    e->conf = c;
    e->hash = hash;
    e->expires_ms = now + c->cache_ms;
    e->r.status = r->status;
    e->r.nh = r->nh;
    e->keylen = key.len;
    e->blob = blob;
    char *p = blob;
    memcpy(p, key.p, key.len);
    p += key.len;
    for (uint32_t i = 0; i < r->nh; i++) {
        e->r.h[i].name = (struct hstr){memcpy(p, r->h[i].name.p, r->h[i].name.len), r->h[i].name.len};
        p += r->h[i].name.len;
        e->r.h[i].value =
            (struct hstr){memcpy(p, r->h[i].value.p, r->h[i].value.len), r->h[i].value.len};
        p += r->h[i].value.len;
    }
    e->r.body = (struct hstr){memcpy(p, r->body.p ? r->body.p : "", r->body.len), r->body.len};
}

/* The cache key: the chosen request fields' names and values, in the parent's arena. */
static struct hstr cache_key_of(struct http_txn *t, const struct filter_ext_authz_conf *c)
{
    char buf[AUTHZ_MAX_KEY];
    size_t n = 0;
    for (uint32_t i = 0; i < c->nrequest_headers; i++) {
        struct hstr v = http_hdr_get(&t->req, hstr_c(c->request_headers[i]));
        size_t nl = strlen(c->request_headers[i]);
        if (n + nl + v.len + 2 > sizeof(buf))
            return (struct hstr){NULL, 0};
        memcpy(buf + n, c->request_headers[i], nl);
        n += nl;
        buf[n++] = '\n';
        memcpy(buf + n, v.p ? v.p : "", v.len);
        n += v.len;
        buf[n++] = '\n';
    }
    return arena_dup(&t->arena, buf, n);
}

/* ---- what the answer does to the request ---- */

static bool listed(char *const *names, uint32_t n, struct hstr name)
{
    for (uint32_t i = 0; i < n; i++)
        if (hstr_ieq_c(name, names[i]))
            return true;
    return false;
}

/* The answer's fields that `names` lists (at most AUTHZ_MAX_FIELDS). */
static void pick_fields(struct authz_result *r, const struct http_msg *m, char *const *names,
                        uint32_t n)
{
    r->nh = 0;
    for (uint32_t i = 0; i < m->nhdrs && r->nh < AUTHZ_MAX_FIELDS; i++)
        if (listed(names, n, m->hdrs[i].name))
            r->h[r->nh++] = m->hdrs[i];
}

/* The result's fields set on m (copied into t's arena); -1 out of memory. */
static int set_fields(struct http_txn *t, struct http_msg *m, const struct authz_result *r)
{
    for (uint32_t i = 0; i < r->nh; i++) {
        struct hstr name = arena_dup(&t->arena, r->h[i].name.p, r->h[i].name.len);
        struct hstr value = arena_dup(&t->arena, r->h[i].value.p, r->h[i].value.len);
        if (!name.p || !value.p || http_hdr_set(m, &t->arena, name, value) < 0)
            return -1;
    }
    return 0;
}

/* A 2xx: its fields set on the request; else the client's answer. */
static enum filter_verdict apply(struct http_txn *t, const struct filter_ext_authz_conf *c,
                                 const struct authz_result *r)
{
    if (r->status >= 200 && r->status < 300) {
        CTR_ADD(ctr(t)->ext_authz[EXT_AUTHZ_ALLOWED], 1);
        return set_fields(t, &t->req, r) < 0 ? FILTER_ERROR : FILTER_CONTINUE;
    }
    CTR_ADD(ctr(t)->ext_authz[EXT_AUTHZ_DENIED], 1);
    if (txn_answer(t, r->status, "text/plain; charset=utf-8", r->body.p ? r->body.p : "",
                   r->body.len) < 0 ||
        set_fields(t, &t->resp, r) < 0)
        return FILTER_ERROR;
    return FILTER_ANSWER;
}

/* The service could not say: the failure mode. */
static enum filter_verdict failed(struct http_txn *t, const struct filter_ext_authz_conf *c,
                                  const char *why)
{
    CTR_ADD(ctr(t)->ext_authz[EXT_AUTHZ_FAILED], 1);
    if (c->failure == EXT_AUTHZ_ALLOW)
        return FILTER_CONTINUE;
    unsigned status = c->failure == EXT_AUTHZ_DENY_403 ? 403 : 503;
    struct hstr body = arena_printf(&t->arena, "%u %s: the authorization check %s\n", status,
                                    http_reason(status), why);
    return body.p && txn_answer(t, status, "text/plain; charset=utf-8", body.p, body.len) == 0
               ? FILTER_ANSWER
               : FILTER_ERROR;
}

/* ---- the sub-request ---- */

static void call_free(struct ev_defer *d)
{
    struct authz_call *a = container_of(d, struct authz_call, dfree);
    arena_free(&a->st.t.arena);
    free(a);
}

/* The sub-request is over (or given up): its lease (kept when both messages were whole),
 * its server unit, its codec state; the memory after the batch (its server codec may still
 * hold it). */
static void call_end(struct authz_call *a, bool keep)
{
    ev_timer_cancel(&a->st.w->loop, &a->timer);
    stream_up_release(&a->st, keep);
    stream_free(&a->st);
    ev_defer_free(&a->st.w->loop, &a->dfree, call_free);
}

/* The verdict from the finished sub-request. */
static enum filter_verdict conclude(struct authz_call *a, const char *why)
{
    struct http_txn *t = a->parent;
    const struct filter_ext_authz_conf *c = a->c;
    const struct http_msg *resp = &a->st.t.resp;
    if (why || a->failed || a->st.t.answered || !a->head_seen)
        return failed(t, c, why ? why : "failed");
    struct authz_result r = {.status = resp->status, .body = {a->body, a->body_len}};
    bool allow = resp->status >= 200 && resp->status < 300;
    if (allow)
        r.body = (struct hstr){NULL, 0};
    pick_fields(&r, resp, allow ? c->upstream_headers : c->client_headers,
                allow ? c->nupstream_headers : c->nclient_headers);
    if (c->cache_ms && a->key.p)
        cache_put(c, a->key, a->key_hash, a->st.w->loop.now_ms, &r);
    return apply(t, c, &r);
}

/* Done (or failed): the verdict for the parent, which resumes when it was waiting. */
static void finish(struct authz_call *a, const char *why)
{
    struct http_txn *t = a->parent;
    bool waiting = a->waiting;
    enum filter_verdict v = conclude(a, why);
    t->ext_authz = NULL; /* from here the parent may end: nothing of ours is left to cancel */
    a->finished = true;
    a->verdict = v;
    call_end(a, !why && a->done && !a->failed);
    if (waiting)
        filter_resume(t, v);
}

/* The sub-request's steps, as a client codec drives its stream: the request out, the
 * answer in; then the verdict. */
static void call_run(struct authz_call *a)
{
    struct http_stream *st = &a->st;
    for (int i = 0; i < 16 && !a->done; i++) {
        enum move m = MOVE_NONE;
        if (st->t.answered)
            m = stream_answer_step(st);
        else if (st->up && !st->up->connecting && (m = st->upc->flush(st)) != MOVE_ERROR &&
                 st->up)
            m |= st->upc->step(st); /* (after an error the stream changed course: look again) */
        if (m == MOVE_NONE)
            break;
    }
    if (a->done)
        finish(a, NULL);
}

static void call_timer(struct ev_loop *loop, struct ev_timer *tm)
{
    struct authz_call *a = container_of(tm, struct authz_call, timer);
    if (loop->now_ms >= a->deadline_ms) {
        finish(a, "timed out");
        return;
    }
    stream_expired(&a->st); /* a connect or response timeout: retried or answered */
    call_run(a);
}

/* ---- the mux operations of the sub-request: its answer is collected here ---- */

static struct authz_call *call_of(struct http_stream *st)
{
    return container_of(st, struct authz_call, st);
}

static bool mux_send_head(struct http_stream *st, const struct http_msg *m)
{
    if (m->status >= 200)
        call_of(st)->head_seen = true;
    return true;
}

static ssize_t mux_send_room(struct http_stream *st)
{
    return AUTHZ_BODY_MAX; /* what does not fit is dropped */
}

static size_t mux_send_data(struct http_stream *st, const char *p, size_t n)
{
    struct authz_call *a = call_of(st);
    size_t take = AUTHZ_BODY_MAX - a->body_len < n ? AUTHZ_BODY_MAX - a->body_len : n;
    memcpy(a->body + a->body_len, p, take);
    a->body_len += (uint32_t)take;
    return n;
}

static bool mux_send_trailers(struct http_stream *st, const struct http_msg *m)
{
    return true;
}

static void mux_send_end(struct http_stream *st)
{
    call_of(st)->done = true;
}

static void mux_abort(struct http_stream *st)
{
    struct authz_call *a = call_of(st);
    a->done = a->failed = true;
}

static void mux_rearm(struct http_stream *st)
{
    struct authz_call *a = call_of(st);
    uint64_t d = stream_deadline(st, st->w->loop.now_ms);
    if (a->deadline_ms < d)
        d = a->deadline_ms;
    if (ev_timer_arm_at(&st->w->loop, &a->timer, d) < 0)
        mux_abort(st); /* no timer, no check: the failure mode */
}

static void mux_run(struct http_stream *st)
{
    call_run(call_of(st));
}

static void mux_tunnel(struct http_stream *st)
{
    mux_abort(st); /* a 101 from an auth service is not an answer */
}

static const struct http_mux_ops authz_mux = {
    .send_head = mux_send_head,
    .body = {mux_send_room, mux_send_data, mux_send_trailers, mux_send_end, NULL},
    .abort = mux_abort,
    .rearm = mux_rearm,
    .run = mux_run,
    .tunnel = mux_tunnel,
};

/* The GET for the service: the chosen fields, the client's method and URI. */
static int build_request(struct authz_call *a, struct http_txn *t)
{
    const struct filter_ext_authz_conf *c = a->c;
    struct http_msg *rq = &a->st.t.req;
    struct arena *ar = &a->st.t.arena;
    rq->is_request = true;
    rq->version = 11;
    rq->method = HTTP_M_GET;
    rq->method_name = HSTR_LIT("GET");
    rq->path = hstr_c(c->path);
    rq->authority = arena_dup(ar, t->req.authority.p, t->req.authority.len);
    rq->body = HTTP_BODY_NONE;
    struct hstr uri = t->req.query.len ? arena_printf(ar, "%.*s?%.*s", (int)t->req.path.len,
                                                      t->req.path.p, (int)t->req.query.len,
                                                      t->req.query.p)
                                       : arena_dup(ar, t->req.path.p, t->req.path.len);
    struct hstr method = arena_dup(ar, t->req.method_name.p, t->req.method_name.len);
    if (!rq->authority.p || !uri.p || !method.p ||
        http_hdr_add(rq, ar, HSTR_LIT("X-Original-Method"), method) < 0 ||
        http_hdr_add(rq, ar, HSTR_LIT("X-Original-URI"), uri) < 0)
        return -1;
    for (uint32_t i = 0; i < t->req.nhdrs; i++) {
        const struct http_hdr *h = &t->req.hdrs[i];
        if (!listed(c->request_headers, c->nrequest_headers, h->name))
            continue;
        struct hstr name = arena_dup(ar, h->name.p, h->name.len);
        struct hstr value = arena_dup(ar, h->value.p, h->value.len);
        if (!name.p || !value.p || http_hdr_add(rq, ar, name, value) < 0)
            return -1;
    }
    return 0;
}

/* A new sub-request for the parent stream pst. */
static struct authz_call *call_new(struct http_stream *pst, const struct filter_ext_authz_conf *c)
{
    struct authz_call *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    struct http_stream *st = &a->st;
    arena_init_buf(&st->t.arena, a->arena_buf, sizeof(a->arena_buf), 0);
    a->parent = &pst->t;
    a->c = c;
    st->t.lc = pst->t.lc;
    st->t.client = pst->t.client;
    st->t.worker = pst->t.worker;
    st->t.rand = pst->t.rand;
    st->t.route = &c->route;
    st->t.backend = c->backend;
    st->w = pst->w;
    st->lc = pst->lc;
    st->conn = a;
    st->mux = &authz_mux;
    st->uncounted = true;
    st->start_us = stream_now_us();
    st->connect_us = -1;
    st->end = "ok";
    ev_timer_init(&a->timer, call_timer);
    a->deadline_ms = pst->w->loop.now_ms + c->timeout_ms;
    if (build_request(a, &pst->t) < 0) {
        arena_free(&st->t.arena);
        free(a);
        return NULL;
    }
    return a;
}

/* ---- the filter ---- */

static enum filter_verdict authz_request(struct http_txn *t, const void *conf)
{
    const struct filter_ext_authz_conf *c = conf;
    struct http_stream *pst = container_of(t, struct http_stream, t);
    struct hstr key = {NULL, 0};
    uint64_t hash = 0;
    if (c->cache_ms && (key = cache_key_of(t, c)).p) {
        hash = hash64(key.p, key.len, 0);
        const struct authz_result *r = cache_get(c, key, hash, pst->w->loop.now_ms);
        if (r) {
            CTR_ADD(ctr(t)->ext_authz[EXT_AUTHZ_CACHE_HIT], 1);
            return apply(t, c, r);
        }
    }
    struct authz_call *a = call_new(pst, c);
    if (!a)
        return FILTER_ERROR;
    a->key = key;
    a->key_hash = hash;
    t->ext_authz = a;
    if (ev_timer_arm_at(&pst->w->loop, &a->timer, a->deadline_ms) < 0) {
        t->ext_authz = NULL;
        call_end(a, false);
        return FILTER_ERROR;
    }
    stream_send(&a->st);
    if (!a->finished)
        call_run(a);
    if (a->finished) /* over already (no server to try): a's memory lasts to the batch's end */
        return a->verdict;
    a->waiting = true;
    t->wait_ms = c->timeout_ms + 1000; /* our own timer ends it first */
    return FILTER_WAIT;
}

/* The parent goes away while its check is in flight: the check is given up. */
static void authz_end(struct http_txn *t, const void *conf)
{
    struct authz_call *a = t->ext_authz;
    if (!a)
        return;
    t->ext_authz = NULL;
    a->st.end = "client_gone";
    call_end(a, false);
}

const struct filter_ops filter_ext_authz = {
    .name = "ext_authz",
    .on_request = authz_request,
    .on_end = authz_end,
};
