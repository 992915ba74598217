/* jwt_cache.h — per worker, the tokens a jwt filter verified lately. A hit skips the
 * base64 and JSON decoding and the signature check (about 40k instructions for an HS256
 * token, several times that for RSA or ECDSA), and keeps what must hold at every request:
 * the time checks (exp, nbf) and the claims forwarded to the server.
 *
 * Direct-mapped, JWT_CACHE_SLOTS entries per worker, keyed by SipHash of the token under a
 * random key (clients cannot aim at a slot or forge a match), its length and its last 16
 * bytes (the signature's). An entry names the
 * keyset serial it was verified with: a new keyset (a JWKS refresh) invalidates every
 * entry. The memory is calloc'd once per filter at start; pages no worker touches cost
 * nothing.
 */
#ifndef STRATA_HTTP_FILTERS_JWT_CACHE_H
#define STRATA_HTTP_FILTERS_JWT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "http/msg-t.h"

#define JWT_CACHE_SLOTS 256
#define JWT_CACHE_CLAIMS 8    /* forwarded claims an entry can hold */
#define JWT_CACHE_VALUES 432  /* bytes of forwarded claim values an entry can hold */

struct jwt_cached {
    uint64_t hash;                   /* the token's SipHash */
    uint32_t token_len;              /* the token's length; 0: empty */
    char tail[16];                   /* its last bytes */
    uint64_t serial;                 /* the keyset it verified with */
    double exp, nbf;                 /* the claims; NAN when absent */
    uint16_t len[JWT_CACHE_CLAIMS];  /* forwarded claim i's value length; UINT16_MAX: none */
    char values[JWT_CACHE_VALUES];   /* the values, one after another */
};

struct jwt_cache {
    uint64_t key[2];            /* the SipHash key */
    struct jwt_cached *slots;   /* [nworkers][JWT_CACHE_SLOTS]; NULL: no cache */
    unsigned nworkers;
};

/* Allocates the slots (0 or -1: out of memory); free releases them. */
int jwt_cache_init(struct jwt_cache *c, unsigned nworkers);
void jwt_cache_free(struct jwt_cache *c);

/* The token's entry for this worker when it holds this token verified with keyset
 * `serial`, else NULL. */
const struct jwt_cached *jwt_cache_find(const struct jwt_cache *c, unsigned worker,
                                        struct hstr token, uint64_t serial);

/* Remembers a token verified with keyset `serial`, its exp/nbf (NAN: absent) and the n
 * values it forwards (.p NULL: that claim is not forwarded). Nothing when the values do
 * not fit an entry. */
void jwt_cache_put(struct jwt_cache *c, unsigned worker, struct hstr token, uint64_t serial,
                   double exp, double nbf, const struct hstr *values, uint32_t n);

#endif
