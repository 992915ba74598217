/* admin_analytics.c — see admin_analytics.h. */
#include "admin/admin_analytics.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "http/msg.h"
#include "net/addr.h"
#include "stats/analytics.h"

#define TOP_N_DEFAULT 10
#define TOP_N_MAX 50

/* Dumps j (taken) into out with `status`; 500 when it cannot. */
static int reply(json_t *j, int status, struct strbuf *out)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s || sb_puts(out, s) < 0) {
        free(s);
        sb_reset(out);
        sb_puts(out, "{\"error\":\"out of memory\"}");
        return 500;
    }
    free(s);
    return status;
}

static int error(int status, const char *msg, struct strbuf *out)
{
    return reply(json_pack("{s:s}", "error", msg), status, out);
}

/* The query parameter `name` as a C string in buf, or NULL when absent. */
static const char *param(const struct http_msg *m, const char *name, char *buf, size_t cap)
{
    struct hstr v = http_query_get(m, hstr_c(name));
    if (!v.p)
        return NULL;
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    memcpy(buf, v.p, n);
    buf[n] = 0;
    return buf;
}

/* The last n points of series s. */
static json_t *series_json(const struct trend_ring *r, unsigned s, uint32_t n, uint64_t *pts)
{
    json_t *a = json_array();
    trend_points(r, s, n, pts);
    for (uint32_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer((json_int_t)pts[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* The country slots in use and "other": [{"country": "FR", "requests": [...], "bytes":
 * [...]}, ...], the last n points of ring r (day: the per-minute ring). */
static json_t *countries_json(const struct country_trends *ct, bool day, uint32_t n,
                              uint64_t *pts)
{
    const struct trend_ring *r = day ? &ct->min : &ct->sec;
    json_t *a = json_array();
    for (unsigned k = 0; a && k <= TRENDS_COUNTRIES; k++) {
        char code[3];
        country_trends_code(ct, k, code);
        if (k < TRENDS_COUNTRIES && !code[0])
            continue;
        json_t *o = json_pack("{s:s,s:o,s:o}", "country", k == CT_OTHER ? "other" : code,
                              "requests", series_json(r, CT_SERIES(k, CM_REQUESTS), n, pts),
                              "bytes", series_json(r, CT_SERIES(k, CM_BYTES), n, pts));
        if (!o || json_array_append_new(a, o) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* `points`: how many of the newest points each series carries (1..len, default all). */
static int points_param(const struct http_msg *m, uint32_t len, uint32_t *n)
{
    char buf[16], *end = NULL;
    const char *text = param(m, "points", buf, sizeof(buf));
    long v = text ? strtol(text, &end, 10) : (long)len;
    if (text && (!*text || *end || v < 1 || v > (long)len))
        return -1;
    *n = (uint32_t)v;
    return 0;
}

int admin_trends(struct config *cfg, const struct http_msg *m, struct strbuf *out)
{
    char buf[16];
    const char *range = param(m, "range", buf, sizeof(buf));
    bool day = range && strcmp(range, "day") == 0;
    if (range && !day && strcmp(range, "hour") != 0)
        return error(400, "range must be hour or day", out);
    uint32_t n;
    if (points_param(m, day ? TRENDS_MINUTES : TRENDS_SECONDS, &n) < 0)
        return error(400, day ? "points must be a number from 1 to 1440"
                              : "points must be a number from 1 to 3600", out);
    struct analytics *a = analytics_current();
    if (!a)
        return error(503, "analytics are not running", out);
    const struct trends *t = analytics_trends(a);
    const struct trend_ring *r = day ? &t->min : &t->sec;
    uint64_t *pts = malloc(sizeof(uint64_t) * r->len);
    json_t *series = json_object(), *countries = NULL;
    if (!pts || !series)
        goto oom;
    for (int s = 0; s < TR_COUNT; s++)
        if (json_object_set_new(series, trend_names[s], series_json(r, s, n, pts)) < 0)
            goto oom;
    if (!(countries = countries_json(analytics_country_trends(a), day, n, pts)))
        goto oom;
    free(pts);
    int64_t step = day ? 60 : 1;
    const char *geo = !cfg->analytics.geo       ? "off: no geo.database in the configuration"
                      : !cfg->analytics.enabled ? "off: analytics.enabled is false"
                                                : "on";
    return reply(json_pack("{s:s,s:I,s:I,s:o,s:s,s:o}", "range", day ? "day" : "hour", "step_s",
                           (json_int_t)step, "end_ms", (json_int_t)(r->end * step * 1000),
                           "series", series, "countries_state", geo, "countries", countries),
                 200, out);
oom:
    free(pts);
    json_decref(series);
    return error(500, "out of memory", out);
}

/* The client table's keys are raw address bytes: shown as text. */
static json_t *key_json(enum topn_table tb, const struct topn_item *it)
{
    if (tb == TOPN_CLIENTS && (it->len == 4 || it->len == 16)) {
        char text[INET6_ADDRSTRLEN];
        if (inet_ntop(it->len == 4 ? AF_INET : AF_INET6, it->key, text, sizeof(text)))
            return json_string(text);
    }
    json_t *j = json_stringn(it->key, it->len);
    if (j)
        return j;
    char safe[TOPN_KEY_MAX]; /* not UTF-8 (a cut character, or bytes sent as they are) */
    for (uint32_t i = 0; i < it->len; i++)
        safe[i] = it->key[i] >= 0x20 && it->key[i] < 0x7f ? it->key[i] : '?';
    return json_stringn(safe, it->len);
}

static json_t *table_json(const struct topn_table_s *t, enum topn_table tb, uint32_t n)
{
    struct topn_item items[TOP_N_MAX];
    uint32_t k = topn_top(t, n, items);
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < k; i++) {
        json_t *key = key_json(tb, &items[i]);
        json_array_append_new(a, json_pack("{s:o,s:I,s:I}", "key", key, "count",
                                           (json_int_t)items[i].count, "bytes",
                                           (json_int_t)items[i].bytes));
    }
    return a;
}

static const char *const table_names[TOPN_TABLES] = {
    [TOPN_PATHS] = "paths",           [TOPN_CLIENTS] = "clients",
    [TOPN_USER_AGENTS] = "user_agents", [TOPN_HOSTS] = "hosts",
    [TOPN_API_KEYS] = "api_keys",     [TOPN_STATUS_ROUTES] = "status_routes",
    [TOPN_COUNTRIES] = "countries",
};

int admin_top(struct config *cfg, const struct http_msg *m, struct strbuf *out)
{
    char rbuf[16], nbuf[16];
    const char *range = param(m, "range", rbuf, sizeof(rbuf));
    const char *ntext = param(m, "n", nbuf, sizeof(nbuf));
    bool hour = range && strcmp(range, "hour") == 0;
    if (range && !hour && strcmp(range, "minute") != 0)
        return error(400, "range must be minute or hour", out);
    char *end = NULL;
    long n = ntext ? strtol(ntext, &end, 10) : TOP_N_DEFAULT;
    if (ntext && (!*ntext || *end || n < 1 || n > TOP_N_MAX))
        return error(400, "n must be a number from 1 to 50", out);
    struct analytics *a = analytics_current();
    if (!a)
        return error(503, "analytics are not running", out);
    struct topn_set *set = malloc(sizeof(*set));
    json_t *tables = json_object();
    if (!set || !tables) {
        free(set);
        json_decref(tables);
        return error(500, "out of memory", out);
    }
    analytics_top(a, hour ? AR_HOUR : AR_MINUTE, mono_ms(), set);
    for (int tb = 0; tb < TOPN_TABLES; tb++)
        json_object_set_new(tables, table_names[tb], table_json(&set->t[tb], tb, (uint32_t)n));
    free(set);
    const char *geo = cfg->analytics.geo ? "on" : "off: no geo.database in the configuration";
    const char *state = cfg->analytics.enabled ? NULL : "off: analytics.enabled is false";
    json_t *j = json_pack("{s:s,s:s,s:o}", "range", hour ? "hour" : "minute", "geo", geo,
                          "tables", tables);
    if (j && state)
        json_object_set_new(j, "top_n", json_string(state));
    return reply(j, 200, out);
}
