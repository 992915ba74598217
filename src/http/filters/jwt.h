/* jwt.h — the jwt filter's settings and its keyset holder.
 *
 * The keys come from a JWKS file (read at load) or a JWKS URL fetched by a thread of the
 * filter's own (jwks_fetch.c, libcurl, never on a worker): at start, every `refresh`, and
 * when a worker meets an unknown `kid` (at most once per `min_refresh`). A new keyset is
 * swapped in atomically; the old one is freed once no worker can still be reading it: each
 * worker brackets its use with jwt_keys_enter/leave, which make its own counter odd while it
 * reads, and the fetcher waits for every odd counter to move before it frees (a grace
 * period as RCU's; workers never wait or lock).
 */
#ifndef STRATA_HTTP_FILTERS_JWT_H
#define STRATA_HTTP_FILTERS_JWT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/filters/jwk.h"
#include "http/filters/jwt_cache.h"

struct jwt_reader {
    _Atomic uint64_t seq; /* odd while its worker reads the keyset */
} __attribute__((aligned(64)));

struct jwt_keys {
    _Atomic(struct jwks *) current; /* NULL until the first fetch succeeds */
    _Atomic uint64_t serial;        /* moves after each swap (the token cache's validity) */
    struct jwt_reader *readers;     /* [nworkers], NULL when the keyset never changes */
    unsigned nworkers;
    /* the fetcher (jwks_url only) */
    char *url, *ca_file; /* owned (the fetcher may outlive the settings' strings) */
    uint32_t refresh_ms, min_refresh_ms, timeout_ms;
    pthread_t thread;
    bool started;
    int wake_fd;                    /* eventfd: a kid miss or stop */
    _Atomic bool stop, want;        /* want: a refresh was asked and not yet made */
    _Atomic uint64_t last_fetch_ms; /* CLOCK_MONOTONIC of the last attempt */
};

/* A claim passed on to the server as a request field. */
struct jwt_claim_fwd {
    char *claim;
    char *header;
    uint32_t header_len;
};

struct filter_jwt_conf {
    char *jwks_file, *jwks_url, *jwks_ca;
    uint32_t refresh_ms, min_refresh_ms, timeout_ms;
    uint32_t algorithms; /* bitmask of 1 << enum jwa; 0 in the config means every one */
    char *issuer;
    char **audiences;
    uint32_t naudiences;
    uint32_t clock_skew_ms;
    bool require_exp;
    bool optional;      /* a request without a token goes on (a bad one is still refused) */
    bool forward_token; /* false: the token's field is removed before the server */
    char *token_header; /* NULL: Authorization with the Bearer scheme */
    char *realm;
    struct jwt_claim_fwd *claims;
    uint32_t nclaims;
    struct jwt_keys keys;
    struct jwt_cache cache; /* tokens verified lately, per worker (from start) */
};

/* Readers (workers): the current keyset (maybe NULL) between enter and leave. */
const struct jwks *jwt_keys_enter(struct jwt_keys *k, unsigned worker);
void jwt_keys_leave(struct jwt_keys *k, unsigned worker);
/* A worker met an unknown kid: wakes the fetcher unless it fetched within min_refresh. */
void jwt_keys_want_refresh(struct jwt_keys *k);

/* The fetcher (jwks_fetch.c): starts the thread (first fetch at once); stop joins it and
 * frees the keyset. jwt_keys_swap installs ks and frees the old keyset after the grace
 * period (any thread but a worker). */
int jwt_keys_start(struct jwt_keys *k, unsigned nworkers, char *err, size_t errlen);
void jwt_keys_stop(struct jwt_keys *k);
void jwt_keys_swap(struct jwt_keys *k, struct jwks *ks);

#endif
