/* jwt.c — the jwt filter: a request must carry a compact JWS (RFC 7515/7519) whose signature
 * verifies with a key of the configured JWKS and an algorithm of the allowed list ("none"
 * never), whose `exp`/`nbf` hold within the clock skew, and whose `iss`/`aud` are those
 * configured. Then chosen claims go to the server as request fields (any such field the
 * client sent is removed first, token or not) and the token's field is removed if asked.
 * Refusals are 401 with a Bearer challenge (RFC 6750 §3); an unknown `kid` also asks the
 * JWKS fetcher for a refresh. A token verified lately is found in the worker's cache
 * (jwt_cache.h): only its time checks and forwarded claims are done again.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "http/filters/deny.h"
#include "http/filters/jwt.h"
#include "http/msg.h"

#define TOKEN_MAX (16 * 1024)

/* A token's three parts, decoded into the arena. */
struct jws {
    struct hstr input; /* header "." payload, as sent: what the signature covers */
    json_t *header, *claims;
    unsigned char *sig;
    size_t sig_len;
};

/* The token, from the configured field or `Authorization: Bearer`; .p NULL when none. */
static struct hstr token_of(const struct http_txn *t, const struct filter_jwt_conf *c)
{
    if (c->token_header)
        return http_hdr_get(&t->req, hstr_c(c->token_header));
    struct hstr v = http_hdr_get(&t->req, HSTR_LIT("Authorization"));
    if (!v.p || v.len < 7 || strncasecmp(v.p, "Bearer ", 7) != 0)
        return (struct hstr){NULL, 0};
    v.p += 7;
    v.len -= 7;
    while (v.len && v.p[0] == ' ') {
        v.p++;
        v.len--;
    }
    return v;
}

/* Decodes one base64url part into the arena; NULL when invalid. */
static unsigned char *part(struct http_txn *t, const char *p, size_t len, size_t *out_len)
{
    unsigned char *buf = arena_alloc(&t->arena, len * 3 / 4 + 2);
    long n = buf ? b64url_decode(p, len, buf) : -1;
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    *out_len = (size_t)n;
    return buf;
}

static json_t *json_part(struct http_txn *t, const char *p, size_t len)
{
    size_t n;
    unsigned char *b = part(t, p, len, &n);
    json_t *j = b ? json_loadb((const char *)b, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Splits and decodes the token; a reason when it is malformed. */
static const char *jws_parse(struct http_txn *t, struct hstr tok, struct jws *j)
{
    const char *d1 = tok.len <= TOKEN_MAX ? memchr(tok.p, '.', tok.len) : NULL;
    const char *end = tok.p + tok.len;
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return "malformed token";
    j->input = (struct hstr){tok.p, (uint32_t)(d2 - tok.p)};
    if (!(j->header = json_part(t, tok.p, (size_t)(d1 - tok.p))))
        return "malformed token header";
    if (!(j->claims = json_part(t, d1 + 1, (size_t)(d2 - d1 - 1))))
        return "malformed token claims";
    if (!(j->sig = part(t, d2 + 1, (size_t)(end - d2 - 1), &j->sig_len)) || !j->sig_len)
        return "malformed token signature";
    return NULL;
}

/* Checks the signature with the keys that fit (the kid's, or every key of the algorithm
 * when the token names none). */
static const char *check_signature(struct http_txn *t, struct filter_jwt_conf *c,
                                   const struct jws *j)
{
    const char *alg = json_string_value(json_object_get(j->header, "alg"));
    int a = alg ? jwa_from_name(alg, strlen(alg)) : -1;
    if (a < 0 || !(c->algorithms & (1u << a)))
        return "algorithm not allowed";
    if (json_object_get(j->header, "crit"))
        return "unsupported critical header";
    json_t *kidj = json_object_get(j->header, "kid");
    const char *kid = json_string_value(kidj);
    if (kidj && !kid)
        return "malformed token header";
    const struct jwks *ks = jwt_keys_enter(&c->keys, t->worker);
    bool known = false, ok = false;
    for (uint32_t i = 0; ks && i < ks->nkeys && !ok; i++) {
        const struct jwk *k = &ks->keys[i];
        if (kid && (!k->kid || strcmp(k->kid, kid) != 0))
            continue;
        known = true;
        ok = jws_verify(k, (enum jwa)a, j->input.p, j->input.len, j->sig, j->sig_len);
    }
    jwt_keys_leave(&c->keys, t->worker);
    if (ok)
        return NULL;
    if (!ks)
        return "no keys fetched yet";
    if (kid && !known) {
        jwt_keys_want_refresh(&c->keys);
        return "unknown key id";
    }
    return "invalid signature";
}

static bool aud_allowed(const struct filter_jwt_conf *c, json_t *aud)
{
    for (uint32_t i = 0; i < c->naudiences; i++) {
        if (json_is_string(aud) && strcmp(json_string_value(aud), c->audiences[i]) == 0)
            return true;
        size_t k;
        json_t *v;
        json_array_foreach(aud, k,
                           v) if (json_is_string(v) &&
                                  strcmp(json_string_value(v), c->audiences[i]) == 0) return true;
    }
    return false;
}

/* exp and nbf (NAN: absent) against the clock, within the skew; NULL when they hold. */
static const char *check_times(const struct filter_jwt_conf *c, double exp, double nbf)
{
    double now = (double)time(NULL), skew = c->clock_skew_ms / 1000.0;
    if (!isnan(exp) && now > exp + skew)
        return "token expired";
    if (!isnan(nbf) && now + skew < nbf)
        return "token not yet valid";
    return NULL;
}

/* The claims' checks; *exp and *nbf set (NAN: absent) for the cache. */
static const char *check_claims(const struct filter_jwt_conf *c, json_t *claims, double *expv,
                                double *nbfv)
{
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if ((exp && !json_is_number(exp)) || (nbf && !json_is_number(nbf)))
        return "malformed token claims";
    if (!exp && c->require_exp)
        return "token without expiry";
    *expv = exp ? json_number_value(exp) : NAN;
    *nbfv = nbf ? json_number_value(nbf) : NAN;
    const char *why = check_times(c, *expv, *nbfv);
    if (why)
        return why;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (c->issuer && (!iss || strcmp(iss, c->issuer) != 0))
        return "wrong issuer";
    if (c->naudiences && !aud_allowed(c, json_object_get(claims, "aud")))
        return "wrong audience";
    return NULL;
}

/* A claim as a field value: strings as they are, numbers and booleans as JSON, arrays of
 * strings comma-separated; NULL for other shapes and for values a field cannot carry. */
static struct hstr claim_value(struct http_txn *t, json_t *v)
{
    struct hstr s = {NULL, 0};
    if (json_is_string(v)) {
        s = arena_dup(&t->arena, json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        s = (struct hstr){"", 0};
        json_array_foreach(v, i, e)
        {
            if (!json_is_string(e))
                return (struct hstr){NULL, 0};
            s = arena_printf(&t->arena, "%.*s%s%s", (int)s.len, s.p, i ? "," : "",
                             json_string_value(e));
            if (!s.p)
                return s;
        }
    } else if (json_is_number(v) || json_is_boolean(v)) {
        char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        s = d ? arena_dup(&t->arena, d, strlen(d)) : s;
        free(d);
    }
    for (uint32_t i = 0; s.p && i < s.len; i++)
        if ((unsigned char)s.p[i] < 0x20 || s.p[i] == 0x7f)
            return (struct hstr){NULL, 0}; /* no CR/LF or NUL into a field */
    return s;
}

/* Sets the forwarded claims' fields (values[i].p NULL: claim i is not forwarded) and
 * removes the token's field if asked. */
static enum filter_verdict forward(struct http_txn *t, const struct filter_jwt_conf *c,
                                   const struct hstr *values)
{
    for (uint32_t i = 0; i < c->nclaims; i++) {
        struct hstr name = {c->claims[i].header, c->claims[i].header_len};
        if (values[i].p && http_hdr_set(&t->req, &t->arena, name, values[i]) < 0)
            return FILTER_ERROR;
    }
    if (!c->forward_token)
        http_hdr_remove(&t->req,
                        c->token_header ? hstr_c(c->token_header) : HSTR_LIT("Authorization"));
    return FILTER_CONTINUE;
}

/* 401 with the Bearer challenge; `error` set for a token that was there but refused. */
static enum filter_verdict refuse(struct http_txn *t, const struct filter_jwt_conf *c,
                                  const char *why, bool missing)
{
    enum filter_verdict v = filter_deny(t, 401, why, missing ? HFE_JWT_MISSING : HFE_JWT_INVALID);
    if (v != FILTER_ANSWER)
        return v;
    struct hstr h = missing ? arena_printf(&t->arena, "Bearer realm=\"%s\"", c->realm)
                            : arena_printf(&t->arena,
                                           "Bearer realm=\"%s\", error=\"invalid_token\", "
                                           "error_description=\"%s\"",
                                           c->realm, why);
    if (!h.p || http_hdr_add(&t->resp, &t->arena, HSTR_LIT("WWW-Authenticate"), h) < 0)
        return FILTER_ERROR;
    return FILTER_ANSWER;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    struct filter_jwt_conf *c = (struct filter_jwt_conf *)conf; /* keys: atomics only */
    for (uint32_t i = 0; i < c->nclaims; i++)
        http_hdr_remove(&t->req, (struct hstr){c->claims[i].header, c->claims[i].header_len});
    struct hstr tok = token_of(t, c);
    if (!tok.p || !tok.len) {
        if (c->optional)
            return FILTER_CONTINUE;
        return refuse(t, c, "no bearer token", true);
    }
    struct hstr *values = c->nclaims ? arena_alloc(&t->arena, c->nclaims * sizeof(*values))
                                     : NULL;
    if (c->nclaims && !values)
        return FILTER_ERROR;
    /* read before the keyset (jwks_fetch.c moves it after a swap): an entry never names a
     * serial newer than the keys it was verified with */
    uint64_t serial = atomic_load(&c->keys.serial);
    const struct jwt_cached *e = jwt_cache_find(&c->cache, t->worker, tok, serial);
    if (e && !check_times(c, e->exp, e->nbf)) {
        for (uint32_t i = 0, at = 0; i < c->nclaims; i++) {
            bool has = i < JWT_CACHE_CLAIMS && e->len[i] != UINT16_MAX;
            values[i] = has ? arena_dup(&t->arena, e->values + at, e->len[i]) : (struct hstr){0};
            if (has && !values[i].p)
                return FILTER_ERROR;
            at += has ? e->len[i] : 0;
        }
        filter_count(t, HFE_JWT_OK);
        return forward(t, c, values);
    }
    struct jws j = {0};
    double exp = NAN, nbf = NAN;
    const char *why = jws_parse(t, tok, &j);
    if (!why)
        why = check_signature(t, c, &j);
    if (!why)
        why = check_claims(c, j.claims, &exp, &nbf);
    enum filter_verdict v;
    if (why) {
        v = refuse(t, c, why, false);
    } else {
        for (uint32_t i = 0; i < c->nclaims; i++)
            values[i] = claim_value(t, json_object_get(j.claims, c->claims[i].claim));
        jwt_cache_put(&c->cache, t->worker, tok, serial, exp, nbf, values, c->nclaims);
        filter_count(t, HFE_JWT_OK);
        v = forward(t, c, values);
    }
    json_decref(j.header);
    json_decref(j.claims);
    return v;
}

static int start(const void *conf, unsigned nworkers, char *err, size_t errlen)
{
    struct filter_jwt_conf *c = (struct filter_jwt_conf *)conf;
    if (jwt_cache_init(&c->cache, nworkers) < 0) {
        snprintf(err, errlen, "jwt: out of memory");
        return -1;
    }
    return jwt_keys_start(&c->keys, nworkers, err, errlen);
}

const struct filter_ops filter_jwt = {
    .name = "jwt",
    .on_request = on_request,
    .start = start,
};
