/* jwt_cache.c — see jwt_cache.h. */
#include "http/filters/jwt_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/siphash.h"

int jwt_cache_init(struct jwt_cache *c, unsigned nworkers)
{
    if (c->slots)
        return 0;
    siphash_random_key(c->key);
    c->nworkers = nworkers ? nworkers : 1;
    c->slots = calloc((size_t)c->nworkers * JWT_CACHE_SLOTS, sizeof(*c->slots));
    return c->slots ? 0 : -1;
}

void jwt_cache_free(struct jwt_cache *c)
{
    free(c->slots);
    c->slots = NULL;
}

static struct jwt_cached *slot_of(const struct jwt_cache *c, unsigned worker, struct hstr tok,
                                  uint64_t *hash)
{
    if (!c->slots || worker >= c->nworkers || tok.len == 0)
        return NULL;
    *hash = siphash24(c->key[0], c->key[1], tok.p, tok.len);
    return &c->slots[(size_t)worker * JWT_CACHE_SLOTS + *hash % JWT_CACHE_SLOTS];
}

/* The last bytes of the token (all of a shorter one). */
static size_t tail_of(struct hstr tok, const char **p)
{
    size_t n = tok.len < 16 ? tok.len : 16;
    *p = tok.p + tok.len - n;
    return n;
}

const struct jwt_cached *jwt_cache_find(const struct jwt_cache *c, unsigned worker,
                                        struct hstr token, uint64_t serial)
{
    uint64_t hash;
    const struct jwt_cached *e = slot_of(c, worker, token, &hash);
    const char *tail;
    size_t n = tail_of(token, &tail);
    return e && e->token_len == token.len && e->hash == hash && e->serial == serial &&
                   memcmp(e->tail, tail, n) == 0
               ? e
               : NULL;
}

void jwt_cache_put(struct jwt_cache *c, unsigned worker, struct hstr token, uint64_t serial,
                   double exp, double nbf, const struct hstr *values, uint32_t n)
{
    uint64_t hash;
    struct jwt_cached *e = slot_of(c, worker, token, &hash);
    if (!e || n > JWT_CACHE_CLAIMS)
        return;
    size_t used = 0;
    for (uint32_t i = 0; i < n; i++)
        used += values[i].p ? values[i].len : 0;
    if (used > JWT_CACHE_VALUES) {
        e->token_len = 0; /* the slot no longer holds what it held */
        return;
    }
    const char *tail;
    size_t tn = tail_of(token, &tail);
    e->hash = hash;
    e->token_len = token.len;
    memcpy(e->tail, tail, tn);
    e->serial = serial;
    e->exp = exp;
    e->nbf = nbf;
    used = 0;
    for (uint32_t i = 0; i < n; i++) {
        e->len[i] = values[i].p ? (uint16_t)values[i].len : UINT16_MAX;
        if (values[i].p) {
            memcpy(e->values + used, values[i].p, values[i].len);
            used += values[i].len;
        }
    }
}
