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
    siphash_random_key(c->key + 2);
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
                                  uint64_t *h0, uint64_t *h1)
{
    if (!c->slots || worker >= c->nworkers)
        return NULL;
    *h0 = siphash24(c->key[0], c->key[1], tok.p, tok.len);
    *h1 = siphash24(c->key[2], c->key[3], tok.p, tok.len);
    if (*h0 == 0 && *h1 == 0)
        *h1 = 1; /* (0, 0) marks an empty slot */
    return &c->slots[(size_t)worker * JWT_CACHE_SLOTS + *h0 % JWT_CACHE_SLOTS];
}

const struct jwt_cached *jwt_cache_find(const struct jwt_cache *c, unsigned worker,
                                        struct hstr token, uint64_t serial)
{
    uint64_t h0, h1;
    const struct jwt_cached *e = slot_of(c, worker, token, &h0, &h1);
    return e && e->h0 == h0 && e->h1 == h1 && e->serial == serial ? e : NULL;
}

void jwt_cache_put(struct jwt_cache *c, unsigned worker, struct hstr token, uint64_t serial,
                   double exp, double nbf, const struct hstr *values, uint32_t n)
{
    uint64_t h0, h1;
    struct jwt_cached *e = slot_of(c, worker, token, &h0, &h1);
    if (!e || n > JWT_CACHE_CLAIMS)
        return;
    size_t used = 0;
    for (uint32_t i = 0; i < n; i++)
        used += values[i].p ? values[i].len : 0;
    if (used > JWT_CACHE_VALUES) {
        e->h0 = e->h1 = 0; /* the slot no longer holds what it held */
        return;
    }
    e->h0 = h0;
    e->h1 = h1;
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
