/* test_jwt_cache.c — the jwt filter's per-worker cache of verified tokens
 * (src/http/filters/jwt_cache.c): a hit only for the same token, worker and keyset serial;
 * the forwarded values and times as stored; values too large are not cached and drop what
 * the slot held; the workers' slots are apart.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "http/filters/jwt_cache.h"
#include "test.h"

static struct hstr hs(const char *s)
{
    return (struct hstr){s, (uint32_t)strlen(s)};
}

TEST(jwt_cache_hits_the_same_token_worker_and_serial)
{
    struct jwt_cache c = {0};
    CHECK(jwt_cache_init(&c, 2) == 0);
    struct hstr tok = hs("aaa.bbb.ccc");
    struct hstr values[3] = {hs("alice"), {NULL, 0}, hs("")};
    CHECK(jwt_cache_find(&c, 0, tok, 7) == NULL);
    jwt_cache_put(&c, 0, tok, 7, 1e9, NAN, values, 3);
    const struct jwt_cached *e = jwt_cache_find(&c, 0, tok, 7);
    CHECK(e != NULL);
    CHECK(e->exp == 1e9 && isnan(e->nbf));
    CHECK_EQ_U64(e->len[0], 5);
    CHECK_EQ_U64(e->len[1], UINT16_MAX);
    CHECK_EQ_U64(e->len[2], 0);
    CHECK(memcmp(e->values, "alice", 5) == 0);
    CHECK(jwt_cache_find(&c, 0, tok, 8) == NULL);              /* a new keyset */
    CHECK(jwt_cache_find(&c, 1, tok, 7) == NULL);              /* another worker */
    CHECK(jwt_cache_find(&c, 0, hs("aaa.bbb.ccd"), 7) == NULL); /* another token */
    CHECK(jwt_cache_find(&c, 2, tok, 7) == NULL);              /* no such worker */
    jwt_cache_free(&c);
}

TEST(jwt_cache_values_too_large_are_not_kept)
{
    struct jwt_cache c = {0};
    CHECK(jwt_cache_init(&c, 1) == 0);
    struct hstr tok = hs("x.y.z");
    struct hstr small = hs("v");
    jwt_cache_put(&c, 0, tok, 1, NAN, NAN, &small, 1);
    CHECK(jwt_cache_find(&c, 0, tok, 1) != NULL);
    static char big[JWT_CACHE_VALUES + 1];
    memset(big, 'b', sizeof(big));
    struct hstr large = {big, sizeof(big)};
    jwt_cache_put(&c, 0, tok, 1, NAN, NAN, &large, 1);
    CHECK(jwt_cache_find(&c, 0, tok, 1) == NULL); /* the old entry is gone too */
    struct hstr many[JWT_CACHE_CLAIMS + 1];
    for (unsigned i = 0; i <= JWT_CACHE_CLAIMS; i++)
        many[i] = small;
    jwt_cache_put(&c, 0, tok, 1, NAN, NAN, many, JWT_CACHE_CLAIMS + 1);
    CHECK(jwt_cache_find(&c, 0, tok, 1) == NULL);
    jwt_cache_free(&c);
}

TEST(jwt_cache_without_slots_finds_nothing)
{
    struct jwt_cache c = {0}; /* a filter that was never started */
    struct hstr tok = hs("a.b.c"), v = hs("v");
    jwt_cache_put(&c, 0, tok, 0, NAN, NAN, &v, 1);
    CHECK(jwt_cache_find(&c, 0, tok, 0) == NULL);
}
