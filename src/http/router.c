/* router.c — HTTP route matching on the message model (see router.h): routes are tried in
 * order and the first whose every condition holds wins. Regexes are PCRE2 (8-bit, UTF off)
 * compiled with JIT at load; matching uses one match block per worker thread, so workers
 * share the compiled patterns without locks.
 */
#include "http/router.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/grpc.h"
#include "http/msg.h"
#include "net/conn.h"
#include "stats/geo.h"

/* Bounds the work of one regex match (backtracking steps), so that a pathological pattern
 * costs a bounded time per request instead of the library's default of ten million. */
#define REGEX_MATCH_LIMIT 1000000
/* Capture pairs every match block has room for: $0..$9. */
#define REGEX_MIN_PAIRS 10

static __thread pcre2_match_data *tls_md;
static __thread uint32_t tls_md_pairs;
static __thread pcre2_match_context *tls_mctx;
static __thread bool tls_mctx_failed;

/* A thread that matched frees its blocks when it exits (a key's destructor runs in the
 * exiting thread, where its __thread variables are still its own). */
static pthread_key_t tls_key;
static pthread_once_t tls_key_once = PTHREAD_ONCE_INIT;
static bool tls_key_ok;

static void tls_release(void *unused)
{
    pcre2_match_data_free(tls_md);
    pcre2_match_context_free(tls_mctx);
    tls_md = NULL;
    tls_mctx = NULL;
    tls_md_pairs = 0;
}

static void tls_key_init(void)
{
    tls_key_ok = pthread_key_create(&tls_key, tls_release) == 0;
}

static void tls_register(void)
{
    pthread_once(&tls_key_once, tls_key_init);
    if (tls_key_ok)
        pthread_setspecific(tls_key, &tls_key); /* any non-NULL value arms the destructor */
}

/* This thread's match block, with room for the captures of `re`; NULL when out of memory. */
static pcre2_match_data *match_data_for(const pcre2_code *re)
{
    uint32_t captures = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &captures);
    uint32_t pairs = captures + 1 < REGEX_MIN_PAIRS ? REGEX_MIN_PAIRS : captures + 1;
    if (tls_md && tls_md_pairs >= pairs)
        return tls_md;
    pcre2_match_data *md = pcre2_match_data_create(pairs, NULL);
    if (!md)
        return NULL;
    if (!tls_md)
        tls_register();
    pcre2_match_data_free(tls_md);
    tls_md = md;
    tls_md_pairs = pairs;
    return md;
}

static pcre2_match_context *match_context(void)
{
    if (!tls_mctx && !tls_mctx_failed) {
        tls_mctx = pcre2_match_context_create(NULL);
        if (tls_mctx)
            pcre2_set_match_limit(tls_mctx, REGEX_MATCH_LIMIT);
        tls_mctx_failed = !tls_mctx; /* then the library's defaults apply */
    }
    return tls_mctx;
}

/* Runs re on s[0..len): > 0 when it matches (captures in the returned block), else 0
 * (no match, or a limit or memory error: a request never matches by accident). */
static pcre2_match_data *regex_run(const pcre2_code *re, const char *s, size_t len)
{
    pcre2_match_data *md = match_data_for(re);
    if (!md)
        return NULL;
    int rc = pcre2_match(re, (PCRE2_SPTR)(s ? s : ""), len, 0, 0, md, match_context());
    return rc > 0 ? md : NULL;
}

int str_match_compile(struct str_match *m, const char *pattern, char *err, size_t errlen)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_NEVER_UTF,
                                   &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        snprintf(err, errlen, "%s at offset %zu", (const char *)msg, (size_t)off);
        return -1;
    }
    /* JIT is an optimisation: without it (unsupported CPU, no executable memory) the
     * interpreter runs the same pattern */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    char *text = strdup(pattern);
    if (!text) {
        pcre2_code_free(re);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    str_match_free(m);
    m->kind = SM_REGEX;
    m->text = text;
    m->len = (uint32_t)strlen(text);
    m->re = re;
    return 0;
}

void str_match_free(struct str_match *m)
{
    pcre2_code_free(m->re);
    free(m->text);
    m->re = NULL;
    m->text = NULL;
    m->len = 0;
}

bool str_match_holds(const struct str_match *m, const char *s, size_t len)
{
    switch (m->kind) {
    case SM_ANY:
        return true;
    case SM_PRESENT:
        return s != NULL;
    case SM_EXACT:
        return s && len == m->len && memcmp(s, m->text, len) == 0;
    case SM_PREFIX:
        return s && len >= m->len && memcmp(s, m->text, m->len) == 0;
    case SM_REGEX:
        return s && regex_run(m->re, s, len) != NULL;
    }
    return false;
}

/* The host part of an authority: the port removed ("[v6]:p" keeps its brackets), and
 * one trailing dot ("example.com." is example.com). */
static struct hstr authority_host(struct hstr a)
{
    uint32_t n = a.len;
    if (n && a.p[0] == '[') {
        const char *rb = memchr(a.p, ']', n);
        n = rb ? (uint32_t)(rb - a.p) + 1 : n;
    } else {
        const char *colon = memchr(a.p, ':', n);
        n = colon ? (uint32_t)(colon - a.p) : n;
    }
    if (n > 1 && a.p[n - 1] == '.')
        n--;
    return (struct hstr){a.p, n};
}

static bool host_holds(const struct route_match *m, struct hstr authority)
{
    if (!m->nhosts)
        return true;
    struct hstr h = authority.p ? authority_host(authority) : (struct hstr){"", 0};
    for (uint32_t i = 0; i < m->nhosts; i++) {
        const struct host_pattern *p = &m->hosts[i];
        struct hstr pat = {p->text, p->len};
        if (!p->wildcard && hstr_ieq(h, pat))
            return true;
        /* "*.example.com" holds for any name under it, never for the apex */
        if (p->wildcard && h.len > p->len &&
            hstr_ieq((struct hstr){h.p + h.len - p->len, p->len}, pat))
            return true;
    }
    return false;
}

static bool method_holds(const struct route_match *m, const struct http_msg *req)
{
    if (!m->methods && !m->nother_methods)
        return true;
    if (req->method != HTTP_M_OTHER)
        return (m->methods >> req->method) & 1;
    for (uint32_t i = 0; i < m->nother_methods; i++)
        if (hstr_eq(req->method_name, hstr_c(m->other_methods[i])))
            return true;
    return false;
}

/* A header match holds when any field of that name satisfies it (or, with none, when
 * the match accepts absence). */
static bool header_holds(const struct named_match *nm, const struct http_msg *req)
{
    struct hstr name = {nm->name, nm->name_len};
    int i = http_hdr_find(req, name, 0);
    if (i < 0)
        return str_match_holds(&nm->value, NULL, 0);
    for (; i >= 0; i = http_hdr_find(req, name, (uint32_t)i + 1)) {
        struct hstr v = req->hdrs[i].value;
        if (str_match_holds(&nm->value, v.p ? v.p : "", v.len))
            return true;
    }
    return false;
}

static bool pairs_hold(const struct named_match *nm, uint32_t n, const struct http_msg *req,
                       struct hstr (*get)(const struct http_msg *, struct hstr))
{
    for (uint32_t i = 0; i < n; i++) {
        struct hstr v = get(req, (struct hstr){nm[i].name, nm[i].name_len});
        if (!str_match_holds(&nm[i].value, v.p, v.len))
            return false;
    }
    return true;
}

/* The client certificate conditions (mTLS): asked only when a route names them. */
static bool cert_holds(const struct route_match *m, const struct conn *cli)
{
    if (m->cert_subject.kind == SM_ANY && m->cert_fingerprint.kind == SM_ANY)
        return true;
    struct xprt_info info = {0};
    if (cli)
        cli->xprt->info(cli, &info);
    const char *subj = info.peer_subject, *fp = info.peer_fingerprint;
    return str_match_holds(&m->cert_subject, subj, subj ? strlen(subj) : 0) &&
           str_match_holds(&m->cert_fingerprint, fp, fp ? strlen(fp) : 0);
}

bool route_match_holds(const struct route_match *m, const struct http_msg *req,
                       const struct conn *cli)
{
    if (!cert_holds(m, cli))
        return false;
    if (!method_holds(m, req) || !host_holds(m, req->authority))
        return false;
    if (m->grpc && !grpc_content_type(req))
        return false;
    if (m->path.kind != SM_ANY &&
        !str_match_holds(&m->path, req->path.p ? req->path.p : "", req->path.len))
        return false;
    for (uint32_t i = 0; i < m->nheaders; i++)
        if (!header_holds(&m->headers[i], req))
            return false;
    return pairs_hold(m->cookies, m->ncookies, req, http_cookie_get) &&
           pairs_hold(m->queries, m->nqueries, req, http_query_get);
}

const struct http_route *router_match(const struct http_listener_conf *hc,
                                      const struct http_msg *req, const struct conn *cli)
{
    static const struct geo_info unknown = {"", "", 0};
    return router_match_geo(hc, req, cli, &unknown);
}

const struct http_route *router_match_geo(const struct http_listener_conf *hc,
                                          const struct http_msg *req, const struct conn *cli,
                                          const struct geo_info *geo)
{
    for (uint32_t i = 0; i < hc->nroutes; i++)
        if (geo_match_holds(&hc->routes[i].match.geo, geo) &&
            route_match_holds(&hc->routes[i].match, req, cli))
            return &hc->routes[i];
    return NULL;
}

struct backend *route_pick_backend(const struct http_route *r, uint64_t rnd)
{
    if (r->action == ROUTE_BACKEND)
        return r->backend;
    if (r->action != ROUTE_SPLIT || r->split_total == 0)
        return NULL;
    uint64_t x = rnd % r->split_total;
    for (uint32_t i = 0; i < r->nsplit; i++) {
        if (x < r->split[i].weight)
            return r->split[i].backend;
        x -= r->split[i].weight;
    }
    return NULL; /* split_total disagrees with the weights: not built by the config */
}

/* Appends src[0..n) to out at *o; false when it does not fit in cap. */
static bool put(char *out, size_t cap, size_t *o, const char *src, size_t n)
{
    if (n > cap - *o)
        return false;
    memcpy(out + *o, src, n);
    *o += n;
    return true;
}

long regex_replace(void *re, const char *s, size_t len, const char *replace, size_t rlen, char *out,
                   size_t cap)
{
    pcre2_match_data *md = regex_run(re, s, len);
    if (!md)
        return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t pairs = pcre2_get_ovector_count(md);
    size_t o = 0;
    if (ov[1] < ov[0]) /* \K in an assertion can do that: no sensible rewrite */
        return 0;
    /* the part before the match, the expansion, the part after it */
    if (!put(out, cap, &o, s, ov[0]))
        return -1;
    for (size_t i = 0; i < rlen; i++) {
        char c = replace[i];
        bool ref = c == '$' && i + 1 < rlen && replace[i + 1] >= '0' && replace[i + 1] <= '9';
        if (c == '$' && i + 1 < rlen && replace[i + 1] == '$') {
            i++; /* "$$" is a literal '$' */
        } else if (ref) {
            uint32_t g = (uint32_t)(replace[++i] - '0');
            if (g < pairs && ov[2 * g] != PCRE2_UNSET &&
                !put(out, cap, &o, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]))
                return -1;
            continue;
        }
        if (!put(out, cap, &o, &c, 1))
            return -1;
    }
    if (!put(out, cap, &o, s + ov[1], len - ov[1]))
        return -1;
    return (long)o;
}
