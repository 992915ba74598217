/* fuzz_jwt.c — libFuzzer target for what the jwt filter reads from the network: a bearer
 * token (through the filter itself: base64url parts, JSON header and claims, key lookup,
 * signature check, claim checks and forwarding) and a JWKS document (fetched from a URL),
 * plus both base64 decoders. The first byte picks the target. Aborts unless: a token is
 * either refused with 401 and a Bearer challenge or (never, without the key) accepted;
 * decoders write at most len * 3 / 4 bytes and decode only what re-encodes to the input;
 * a parsed JWKS has 1..JWKS_MAX_KEYS keys, each fitting some algorithm.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/filter.h"
#include "http/filters/jwt.h"
#include "http/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const char JWKS[] =
    "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":"
    "\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\"},"
    "{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

static struct filter_jwt_conf *conf(void)
{
    static struct filter_jwt_conf c;
    static struct jwt_claim_fwd claims[] = {{"sub", "x-user", 6}, {"groups", "x-groups", 8}};
    if (!c.realm) {
        char why[256];
        c.realm = "strata";
        c.algorithms = (1u << JWA_COUNT) - 1;
        c.require_exp = true;
        c.clock_skew_ms = 60000;
        c.issuer = "iss";
        static char *aud[] = {"api"};
        c.audiences = aud;
        c.naudiences = 1;
        c.claims = claims;
        c.nclaims = 2;
        atomic_store(&c.keys.current, jwks_parse(JWKS, strlen(JWKS), why, sizeof(why)));
        REQUIRE(atomic_load(&c.keys.current) != NULL);
    }
    return &c;
}

static void fuzz_token(const char *tok, size_t len)
{
    struct http_txn t;
    memset(&t, 0, sizeof(t));
    arena_init(&t.arena, 0);
    t.req.is_request = true;
    struct hstr v = arena_printf(&t.arena, "Bearer %.*s", (int)len, tok);
    if (v.p && http_hdr_add(&t.req, &t.arena, HSTR_LIT("Authorization"), v) == 0) {
        enum filter_verdict r = filter_jwt.on_request(&t, conf());
        REQUIRE(r == FILTER_ANSWER);
        REQUIRE(t.resp.status == 401);
        REQUIRE(http_hdr_get(&t.resp, HSTR_LIT("WWW-Authenticate")).p != NULL);
    }
    arena_free(&t.arena);
}

static void fuzz_b64(const char *in, size_t len)
{
    unsigned char *out = malloc(len * 3 / 4 + 1), *enc = malloc(len + 8);
    long n = b64url_decode(in, len, out);
    REQUIRE(n <= (long)(len * 3 / 4));
    long m = b64_decode(in, len, out);
    REQUIRE(m <= (long)(len * 3 / 4));
    if (m >= 0) { /* standard base64 decodes only its one encoding */
        int e = EVP_EncodeBlock(enc, out, (int)m);
        REQUIRE((size_t)e == len && memcmp(enc, in, len) == 0);
    }
    free(out);
    free(enc);
}

static void fuzz_jwks(const char *in, size_t len)
{
    char why[256];
    struct jwks *ks = jwks_parse(in, len, why, sizeof(why));
    if (!ks)
        return;
    REQUIRE(ks->nkeys >= 1 && ks->nkeys <= JWKS_MAX_KEYS);
    unsigned char sig[96] = {0};
    for (uint32_t i = 0; i < ks->nkeys; i++) {
        bool any = false;
        for (int a = 0; a < JWA_COUNT; a++) {
            any |= jwk_fits(&ks->keys[i], (enum jwa)a);
            REQUIRE(!jws_verify(&ks->keys[i], (enum jwa)a, "a.b", 3, sig, sizeof(sig)));
        }
        REQUIRE(any);
    }
    jwks_free(ks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 3) {
    case 0:
        fuzz_token(in, len);
        break;
    case 1:
        fuzz_b64(in, len);
        break;
    default:
        fuzz_jwks(in, len);
        break;
    }
    return 0;
}
