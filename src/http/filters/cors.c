/* cors.c — the cors filter (Fetch standard's CORS protocol): a preflight (OPTIONS with
 * Origin and Access-Control-Request-Method) is answered by Strata — 204 with the allowed
 * origin, methods, headers, credentials and max age, or 403 when the origin, method or a
 * header is not allowed — and never reaches the server. Other requests with an allowed
 * Origin go on and their response (the server's or Strata's own) gets
 * Access-Control-Allow-Origin (and -Credentials, -Expose-Headers). Responses always get
 * `Vary: Origin` unless every origin is allowed without credentials.
 */
#include <string.h>

#include "http/filters/auth-t.h"
#include "http/filters/deny.h"
#include "http/msg.h"
#include "http/router.h"

static bool origin_allowed(const struct filter_cors_conf *c, struct hstr o)
{
    if (c->any_origin)
        return true;
    for (uint32_t i = 0; i < c->norigins; i++)
        if (strlen(c->origins[i]) == o.len && memcmp(c->origins[i], o.p, o.len) == 0)
            return true;
    for (uint32_t i = 0; i < c->npatterns; i++)
        if (str_match_holds(&c->patterns[i], o.p, o.len))
            return true;
    return false;
}

static bool listed(char **list, uint32_t n, struct hstr el)
{
    for (uint32_t i = 0; i < n; i++)
        if (hstr_ieq_c(el, list[i]))
            return true;
    return false;
}

/* Every header the preflight asks for is allowed (names compared case-insensitively). */
static bool headers_allowed(const struct filter_cors_conf *c, struct hstr asked)
{
    const char *p = asked.p, *end = asked.p + asked.len;
    struct hstr el;
    while (asked.p && http_list_next(&p, end, &el))
        if (el.len && !listed(c->header_list, c->nheaders, el))
            return false;
    return true;
}

/* The origin echoed (or "*" when any origin is allowed without credentials). */
static int allow_origin(struct http_txn *t, const struct filter_cors_conf *c, struct hstr o)
{
    struct http_msg *r = &t->resp;
    bool star = c->any_origin && !c->credentials;
    if (http_hdr_set(r, &t->arena, HSTR_LIT("Access-Control-Allow-Origin"),
                     star ? HSTR_LIT("*") : o) < 0)
        return -1;
    if (c->credentials && http_hdr_set(r, &t->arena, HSTR_LIT("Access-Control-Allow-Credentials"),
                                       HSTR_LIT("true")) < 0)
        return -1;
    return 0;
}

static int vary_origin(struct http_txn *t, const struct filter_cors_conf *c)
{
    if (c->any_origin && !c->credentials)
        return 0;
    struct hstr v = http_hdr_get(&t->resp, HSTR_LIT("Vary"));
    if (v.p && (http_list_has(v, HSTR_LIT("Origin")) || http_list_has(v, HSTR_LIT("*"))))
        return 0;
    return http_hdr_add(&t->resp, &t->arena, HSTR_LIT("Vary"), HSTR_LIT("Origin"));
}

static enum filter_verdict preflight(struct http_txn *t, const struct filter_cors_conf *c,
                                     struct hstr origin, struct hstr method)
{
    if (!origin_allowed(c, origin))
        return filter_deny(t, 403, "CORS origin not allowed", HFE_CORS_REFUSED);
    if (!listed(c->method_list, c->nmethods, method))
        return filter_deny(t, 403, "CORS method not allowed", HFE_CORS_REFUSED);
    if (!headers_allowed(c, http_hdr_get(&t->req, HSTR_LIT("Access-Control-Request-Headers"))))
        return filter_deny(t, 403, "CORS header not allowed", HFE_CORS_REFUSED);
    filter_count(t, HFE_CORS_PREFLIGHT);
    if (txn_answer(t, 204, NULL, "", 0) < 0 || allow_origin(t, c, origin) < 0)
        return FILTER_ERROR;
    struct http_msg *r = &t->resp;
    struct hstr age = arena_printf(&t->arena, "%u", c->max_age_ms / 1000);
    if (!age.p ||
        http_hdr_add(r, &t->arena, HSTR_LIT("Access-Control-Allow-Methods"), hstr_c(c->methods)) <
            0 ||
        (c->headers && http_hdr_add(r, &t->arena, HSTR_LIT("Access-Control-Allow-Headers"),
                                    hstr_c(c->headers)) < 0) ||
        http_hdr_add(r, &t->arena, HSTR_LIT("Access-Control-Max-Age"), age) < 0)
        return FILTER_ERROR;
    t->filter_detail = "CORS preflight";
    return FILTER_ANSWER;
}

static bool is_preflight(const struct http_txn *t)
{
    return t->req.method == HTTP_M_OPTIONS && http_hdr_get(&t->req, HSTR_LIT("Origin")).p &&
           http_hdr_get(&t->req, HSTR_LIT("Access-Control-Request-Method")).p;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    if (!is_preflight(t))
        return FILTER_CONTINUE;
    return preflight(t, conf, http_hdr_get(&t->req, HSTR_LIT("Origin")),
                     http_hdr_get(&t->req, HSTR_LIT("Access-Control-Request-Method")));
}

static enum filter_verdict on_response(struct http_txn *t, const void *conf)
{
    const struct filter_cors_conf *c = conf;
    struct hstr origin = http_hdr_get(&t->req, HSTR_LIT("Origin"));
    if (vary_origin(t, c) < 0)
        return FILTER_ERROR;
    /* a preflight's answer has its fields already (a refused one none); a refused origin
     * gets none */
    if (!origin.p || is_preflight(t) ||
        http_hdr_get(&t->resp, HSTR_LIT("Access-Control-Allow-Origin")).p ||
        !origin_allowed(c, origin))
        return FILTER_CONTINUE;
    if (allow_origin(t, c, origin) < 0 ||
        (c->expose && http_hdr_set(&t->resp, &t->arena, HSTR_LIT("Access-Control-Expose-Headers"),
                                   hstr_c(c->expose)) < 0))
        return FILTER_ERROR;
    return FILTER_CONTINUE;
}

const struct filter_ops filter_cors = {
    .name = "cors",
    .on_request = on_request,
    .on_response = on_response,
};
