/* waf.c — the `waf` filter: ModSecurity (libmodsecurity3) with the OWASP Core Rule Set.
 *
 * The rules are parsed once, at config load, into one RulesSet per distinct route `waf:` (a
 * generated fragment sets the engine mode, the paranoia level and the anomaly thresholds,
 * then includes the CRS setup and rules; routes with the same settings share one); workers
 * share it read-only. Each request
 * inspected gets one Transaction: phase 1 (URI and header fields) in on_request, phase 2
 * (the body, held whole within max_body_buffered by the stream) in on_request_buffered,
 * phase 3 (response status and fields) in on_response when asked, phase 5 (logging) and the
 * cleanup in on_end. A disruptive intervention in blocking mode answers 403 with the
 * request id. The ids of the rules that matched go to the access log (`waf_rules`) and, by
 * category, to the metrics; ModSecurity's messages go to Strata's log, at most
 * WAF_LOG_PER_S lines a second per worker. A route without `waf` costs nothing.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config/config-t.h"
#include "core/log.h"
#include "http/error_page.h"
#include "http/filter.h"
#include "http/filters/util.h"
#include "http/filters/waf.h"
#include "http/msg.h"

#define WAF_IDS_MAX 16  /* rule ids kept per request for the log */
#define WAF_LOG_PER_S 5 /* ModSecurity messages to Strata's log, per worker */

static ModSecurity *msc; /* process-wide: made with the first rules, never freed */

/* One inspected request (in the arena). */
struct waf_txn {
    Transaction *tx;
    struct http_txn *t;
    const struct filter_waf_conf *c;
    uint32_t ids[WAF_IDS_MAX];
    uint32_t nids;
    bool blocked;
};

/* ---- ModSecurity's messages ---- */

static __thread uint64_t log_sec;
static __thread uint32_t log_n, log_dropped;

/* A line for Strata's log within the per-worker budget. */
static void log_limited(const char *msg)
{
    uint64_t now = (uint64_t)time(NULL);
    if (now != log_sec) {
        if (log_dropped)
            log_warn("waf: %u messages not logged (more than %d a second)", log_dropped,
                     WAF_LOG_PER_S);
        log_sec = now;
        log_n = log_dropped = 0;
    }
    if (log_n++ < WAF_LOG_PER_S)
        log_warn("waf: %s", msg);
    else
        log_dropped++;
}

/* The rule id of a message: its `[id "942100"]`; 0 when none. */
static uint32_t rule_id(const char *msg)
{
    const char *p = strstr(msg, "[id \"");
    return p ? (uint32_t)strtoul(p + 5, NULL, 10) : 0;
}

/* ModSecurity's callback for each rule that logs (data: the request's struct waf_txn, or
 * NULL for messages outside a transaction). */
static void on_message(void *data, const void *msg)
{
    struct waf_txn *wt = data;
    if (!msg)
        return;
    log_limited(msg);
    uint32_t id = rule_id(msg);
    if (!wt || !id || wt->nids == WAF_IDS_MAX)
        return;
    for (uint32_t i = 0; i < wt->nids; i++)
        if (wt->ids[i] == id)
            return;
    wt->ids[wt->nids++] = id;
}

/* ---- the rules, once at load ---- */

/* The fragment before and around the CRS: engine, body access, body processors (JSON and
 * XML bodies become ARGS), the paranoia level, thresholds and methods (CRS setvar ids
 * 900000, 900110, 900200, read by REQUEST-901-INITIALIZATION), then the CRS, then the
 * route's own rules. */
static char *fragment(const struct filter_waf_conf *c)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f)
        return NULL;
    fprintf(f,
            "SecRuleEngine %s\n"
            "SecRequestBodyAccess %s\n"
            "SecRequestBodyLimit 1073741824\n"
            "SecRequestBodyNoFilesLimit 1073741824\n"
            "SecRequestBodyLimitAction ProcessPartial\n"
            "SecResponseBodyAccess %s\n"
            "SecResponseBodyMimeType %s\n"
            "SecResponseBodyLimit 1073741824\n"
            "SecResponseBodyLimitAction ProcessPartial\n"
            "SecAuditEngine Off\n"
            "SecRule REQUEST_HEADERS:Content-Type \"^(?:application(?:/soap\\+|/)|text/)xml\" "
            "\"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n"
            "SecRule REQUEST_HEADERS:Content-Type \"^application/json\" "
            "\"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n"
            "SecRule REQBODY_ERROR \"!@eq 0\" \"id:200002,phase:2,t:none,log,deny,status:400,"
            "msg:'Failed to parse request body'\"\n"
            "Include %s\n"
            "SecAction \"id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=%u\"\n"
            "SecAction \"id:900110,phase:1,nolog,pass,t:none,"
            "setvar:tx.inbound_anomaly_score_threshold=%u,"
            "setvar:tx.outbound_anomaly_score_threshold=%u\"\n"
            "SecAction \"id:900200,phase:1,nolog,pass,t:none,setvar:'tx.allowed_methods=%s'\"\n"
            "Include %s/*.conf\n"
            "%s\n",
            c->mode == WAF_BLOCK ? "On" : "DetectionOnly", c->inspect_body ? "On" : "Off",
            c->inspect_response_body ? "On" : "Off",
            c->response_body_types ? c->response_body_types : "text/html", c->crs_setup, c->paranoia, c->anomaly_threshold, c->response_threshold,
            c->allowed_methods, c->crs_rules,
            c->rules ? c->rules : "");
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Rule sets are shared by the routes whose fragments are the same text (a `waf: {}` on
 * many routes parses the CRS once), counted, and freed with the last of them. Config loads
 * and frees may come from several threads: the list takes a lock (never on the data path). */
struct shared_rules {
    char *text;
    RulesSet *rules;
    unsigned refs;
    struct shared_rules *next;
};

static struct shared_rules *shared;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

/* The rule set of `text` (taken over), parsed now or shared; NULL with err set. */
static RulesSet *rules_for(char *text, char *err, size_t errlen)
{
    for (struct shared_rules *r = shared; r; r = r->next) {
        if (!strcmp(r->text, text)) {
            r->refs++;
            free(text);
            return r->rules;
        }
    }
    struct shared_rules *r = calloc(1, sizeof(*r));
    RulesSet *rules = r ? msc_create_rules_set() : NULL;
    const char *why = NULL;
    if (!rules || msc_rules_add(rules, text, &why) < 0) {
        snprintf(err, errlen, "the WAF rules did not load: %s", why ? why : "out of memory");
        free((void *)why);
        free(text);
        free(r);
        if (rules)
            msc_rules_cleanup(rules);
        return NULL;
    }
    *r = (struct shared_rules){text, rules, 1, shared};
    shared = r;
    return rules;
}

int waf_rules_build(struct filter_waf_conf *c, char *err, size_t errlen)
{
    if (c->mode == WAF_OFF)
        return 0;
    pthread_mutex_lock(&shared_lock);
    if (!msc && (msc = msc_init())) {
        msc_set_connector_info(msc, "strata");
        msc_set_log_cb(msc, on_message);
    }
    char *text = msc ? fragment(c) : NULL;
    if (!msc || !text)
        snprintf(err, errlen, "%s", msc ? "out of memory" : "ModSecurity could not start");
    c->rules_set = text ? rules_for(text, err, errlen) : NULL;
    pthread_mutex_unlock(&shared_lock);
    return c->rules_set ? 0 : -1;
}

void waf_rules_free(struct filter_waf_conf *c)
{
    pthread_mutex_lock(&shared_lock);
    for (struct shared_rules **p = &shared; c->rules_set && *p; p = &(*p)->next) {
        struct shared_rules *r = *p;
        if (r->rules != c->rules_set)
            continue;
        if (--r->refs == 0) {
            *p = r->next;
            msc_rules_cleanup(r->rules);
            free(r->text);
            free(r);
        }
        break;
    }
    c->rules_set = NULL;
    pthread_mutex_unlock(&shared_lock);
}

/* ---- a request ---- */

static struct listener_counters *ctr(const struct http_txn *t)
{
    return &t->lc->st.ctr[t->worker];
}

static enum waf_category category(uint32_t id)
{
    static const struct {
        uint32_t group;
        enum waf_category cat;
    } map[] = {
        {911, WAF_CAT_PROTOCOL}, {920, WAF_CAT_PROTOCOL}, {921, WAF_CAT_PROTOCOL},
        {913, WAF_CAT_SCANNER},  {930, WAF_CAT_LFI},      {931, WAF_CAT_RFI},
        {932, WAF_CAT_RCE},      {933, WAF_CAT_PHP},      {934, WAF_CAT_NODEJS},
        {941, WAF_CAT_XSS},      {942, WAF_CAT_SQLI},     {943, WAF_CAT_SESSION},
        {944, WAF_CAT_JAVA},     {950, WAF_CAT_RESPONSE}, {951, WAF_CAT_RESPONSE},
        {952, WAF_CAT_RESPONSE}, {953, WAF_CAT_RESPONSE}, {954, WAF_CAT_RESPONSE},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (id / 1000 == map[i].group)
            return map[i].cat;
    return WAF_CAT_OTHER;
}

/* The matched ids as the access log's `waf_rules` ("942100,949110"), rebuilt after each
 * phase (the line is written before on_end). The blocking evaluation rules (949, 959, 980)
 * are left out: they only sum the others. */
static void note_ids(struct waf_txn *wt)
{
    char buf[WAF_IDS_MAX * 11];
    size_t n = 0;
    for (uint32_t i = 0; i < wt->nids; i++) {
        uint32_t g = wt->ids[i] / 1000;
        if (g == 949 || g == 959 || g == 980)
            continue;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%u", n ? "," : "", wt->ids[i]);
    }
    if (n)
        wt->t->waf_rules = arena_dup(&wt->t->arena, buf, n);
}

/* After a phase: the ids for the log, and in blocking mode a disruptive intervention
 * answers (403; the request id in the body: the client can quote it). */
/* ModSecurity's intervention after a phase (its strings freed), and the ids noted; the
 * status when it is disruptive, else 0. */
static int intervention(struct waf_txn *wt)
{
    ModSecurityIntervention it = {200, 0, NULL, NULL, 0};
    int act = msc_intervention(wt->tx, &it);
    free(it.url);
    free(it.log);
    note_ids(wt);
    return act && it.disruptive ? it.status : 0;
}

static enum filter_verdict after_phase(struct waf_txn *wt)
{
    int st = intervention(wt);
    if (!st || wt->c->mode != WAF_BLOCK)
        return FILTER_CONTINUE;
    wt->blocked = true;
    /* the rule's status when it names a client or server error (a body that does not parse:
     * 400), else 403 */
    unsigned status = st >= 400 && st < 600 ? (unsigned)st : 403;
    char body[200];
    int n = snprintf(body, sizeof(body), "%u %s: blocked by the WAF (request id %.*s)\n", status,
                     http_reason(status), (int)wt->t->request_id.len,
                     wt->t->request_id.p ? wt->t->request_id.p : "");
    wt->t->filter_detail = "blocked by the WAF";
    return txn_answer(wt->t, status, "text/plain; charset=utf-8", body, (size_t)n) < 0 ||
                   error_page_apply(wt->t, status, wt->t->filter_detail) < 0
               ? FILTER_ERROR
               : FILTER_ANSWER;
}

static void add_header(Transaction *tx, struct hstr name, struct hstr value)
{
    msc_add_n_request_header(tx, (const unsigned char *)name.p, name.len,
                             (const unsigned char *)value.p, value.len);
}

/* Phase 1: the connection, the URI (as received, with its query), the header fields (with
 * Host and the framing fields the model keeps apart). */
static int request_head(struct waf_txn *wt)
{
    struct http_txn *t = wt->t;
    const struct http_msg *rq = &t->req;
    char ip[64];
    ip[client_ip_text(&t->client, ip, sizeof(ip) - 1)] = '\0';
    int port = ntohs(t->client.u.sa.sa_family == AF_INET6 ? t->client.u.in6.sin6_port
                                                          : t->client.u.in.sin_port);
    /* ModSecurity takes C strings */
    struct hstr uri = arena_printf(&t->arena, "%.*s%s%.*s", (int)t->orig_path.len, t->orig_path.p,
                                   rq->query.len ? "?" : "", (int)rq->query.len, rq->query.p);
    struct hstr method =
        arena_printf(&t->arena, "%.*s", (int)rq->method_name.len, rq->method_name.p);
    if (!uri.p || !method.p)
        return -1;
    msc_process_connection(wt->tx, ip, port, "0.0.0.0", 0);
    msc_process_uri(wt->tx, uri.p, method.p,
                    rq->version == 20 ? "2.0" : rq->version == 10 ? "1.0" : "1.1");
    if (rq->authority.len)
        add_header(wt->tx, HSTR_LIT("Host"), rq->authority);
    for (uint32_t i = 0; i < rq->nhdrs; i++)
        add_header(wt->tx, rq->hdrs[i].name, rq->hdrs[i].value);
    if (rq->body == HTTP_BODY_LENGTH) {
        struct hstr cl = arena_printf(&t->arena, "%llu", (unsigned long long)rq->content_length);
        if (cl.p)
            add_header(wt->tx, HSTR_LIT("Content-Length"), cl);
    } else if (rq->body == HTTP_BODY_CHUNKED && rq->version != 20) {
        add_header(wt->tx, HSTR_LIT("Transfer-Encoding"), HSTR_LIT("chunked"));
    }
    msc_process_request_headers(wt->tx);
    return 0;
}

static enum filter_verdict request_body(struct waf_txn *wt, struct hstr body)
{
    if (body.len)
        msc_append_request_body(wt->tx, (const unsigned char *)body.p, body.len);
    msc_process_request_body(wt->tx);
    return after_phase(wt);
}

static enum filter_verdict waf_request(struct http_txn *t, const void *conf)
{
    const struct filter_waf_conf *c = conf;
    if (c->mode == WAF_OFF)
        return FILTER_CONTINUE;
    struct waf_txn *wt = arena_alloc(&t->arena, sizeof(*wt));
    if (!wt)
        return FILTER_ERROR;
    memset(wt, 0, sizeof(*wt));
    wt->t = t;
    wt->c = c;
    /* ModSecurity's unique id is the request id (and it need not make one of its own) */
    struct hstr id = t->request_id.len ? arena_printf(&t->arena, "%.*s", (int)t->request_id.len,
                                                      t->request_id.p)
                                       : (struct hstr){NULL, 0};
    wt->tx = id.p ? msc_new_transaction_with_id(msc, c->rules_set, (char *)id.p, wt)
                  : msc_new_transaction(msc, c->rules_set, wt);
    if (!wt->tx)
        return FILTER_ERROR;
    t->waf = wt;
    if (request_head(wt) < 0)
        return FILTER_ERROR;
    enum filter_verdict v = after_phase(wt);
    if (v != FILTER_CONTINUE)
        return v;
    if (c->inspect_body && !http_msg_bodiless(&t->req)) {
        t->body_wanted = true; /* phase 2 in waf_buffered */
        return FILTER_CONTINUE;
    }
    return request_body(wt, (struct hstr){NULL, 0});
}

static enum filter_verdict waf_buffered(struct http_txn *t, const void *conf)
{
    struct waf_txn *wt = t->waf;
    (void)conf;
    if (!wt || !((const struct filter_waf_conf *)conf)->inspect_body ||
        http_msg_bodiless(&t->req))
        return FILTER_CONTINUE; /* phase 2 ran in waf_request */
    return request_body(wt, t->body);
}

/* The response's media type (Content-Type without parameters) is one of `types`. */
static bool inspectable(const struct http_msg *r, const char *types)
{
    struct hstr ct = http_hdr_get(r, HSTR_LIT("content-type"));
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t')
        n++;
    for (const char *p = types; n && *p;) {
        size_t len = strcspn(p, " ");
        if (len == n && !strncasecmp(p, ct.p, n))
            return true;
        p += len + (p[len] == ' ');
    }
    return false;
}

/* Phase 3 when asked: the response's status and fields are inspected and what matches is
 * logged and counted; the head is not held back for them. With inspect_response_body, a
 * body of an inspectable type is asked for whole (phase 4 in waf_response_buffered), and
 * the head waits with it. */
static enum filter_verdict waf_response(struct http_txn *t, const void *conf)
{
    const struct filter_waf_conf *c = conf;
    struct waf_txn *wt = t->waf;
    if (!wt || !(c->inspect_response || c->inspect_response_body) || wt->blocked)
        return FILTER_CONTINUE;
    if (c->inspect_response_body && !t->answered && inspectable(&t->resp, c->response_body_types)) {
        t->resp_body_wanted = true;
        t->resp_body_limit = c->response_body_limit;
    }
    const struct http_msg *r = &t->resp;
    for (uint32_t i = 0; i < r->nhdrs; i++)
        msc_add_n_response_header(wt->tx, (const unsigned char *)r->hdrs[i].name.p,
                                  r->hdrs[i].name.len, (const unsigned char *)r->hdrs[i].value.p,
                                  r->hdrs[i].value.len);
    msc_process_response_headers(wt->tx, r->status, "HTTP/1.1");
    intervention(wt); /* logged and counted, not acted on */
    return FILTER_CONTINUE;
}

/* A body over the limit: logged, and with `reject` refused (500) in blocking mode. */
static enum filter_verdict over_limit(struct waf_txn *wt)
{
    struct http_txn *t = wt->t;
    bool reject = wt->c->response_body_over_limit == WAF_OVER_REJECT;
    char msg[200];
    snprintf(msg, sizeof(msg), "response body of request %.*s longer than %u bytes: %s",
             (int)t->request_id.len, t->request_id.p ? t->request_id.p : "", t->resp_body.len,
             reject ? "refused" : "only its first part inspected");
    log_limited(msg);
    if (!reject || wt->c->mode != WAF_BLOCK)
        return FILTER_CONTINUE;
    wt->blocked = true;
    t->filter_detail = "response body over the WAF's limit";
    char body[200];
    int n = snprintf(body, sizeof(body), "500 %s: response body over the WAF's limit "
                     "(request id %.*s)\n", http_reason(500), (int)t->request_id.len,
                     t->request_id.p ? t->request_id.p : "");
    return txn_answer(t, 500, "text/plain; charset=utf-8", body, (size_t)n) < 0 ||
                   error_page_apply(t, 500, t->filter_detail) < 0
               ? FILTER_ERROR
               : FILTER_ANSWER;
}

/* Phase 4: the held response body (its first response_body_limit bytes when longer). */
static enum filter_verdict waf_response_buffered(struct http_txn *t, const void *conf)
{
    struct waf_txn *wt = t->waf;
    (void)conf;
    if (!wt || wt->blocked)
        return FILTER_CONTINUE;
    if (t->resp_body_partial) {
        enum filter_verdict v = over_limit(wt);
        if (v != FILTER_CONTINUE)
            return v;
    }
    if (t->resp_body.len)
        msc_append_response_body(wt->tx, (const unsigned char *)t->resp_body.p, t->resp_body.len);
    msc_process_response_body(wt->tx);
    return after_phase(wt);
}

/* The end: phase 5, the counters, the Transaction freed. */
static void waf_end(struct http_txn *t, const void *conf)
{
    struct waf_txn *wt = t->waf;
    if (!wt)
        return;
    t->waf = NULL;
    msc_process_logging(wt->tx);
    msc_transaction_cleanup(wt->tx);
    bool cats[WAF_CAT_COUNT] = {false};
    for (uint32_t i = 0; i < wt->nids; i++) {
        uint32_t g = wt->ids[i] / 1000;
        if (g != 949 && g != 959 && g != 980)
            cats[category(wt->ids[i])] = true;
    }
    bool matched = false;
    for (int k = 0; k < WAF_CAT_COUNT; k++) {
        if (cats[k])
            CTR_ADD(ctr(t)->waf_matches[k], 1);
        matched |= cats[k];
    }
    enum waf_outcome o = wt->blocked ? WAF_BLOCKED : matched ? WAF_DETECTED : WAF_PASSED;
    CTR_ADD(ctr(t)->waf_requests[o], 1);
    (void)conf;
}

const struct filter_ops filter_waf = {
    .name = "waf",
    .on_request = waf_request,
    .on_response = waf_response,
    .on_request_buffered = waf_buffered,
    .on_end = waf_end,
    .on_response_buffered = waf_response_buffered,
};
