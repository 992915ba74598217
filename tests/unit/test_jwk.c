/* test_jwk.c — base64url and base64 decoding (alphabets, padding, trailing bits), JWKS
 * parsing (key types, ignored keys, refused keys) and which algorithms a key fits. The
 * signatures themselves are checked end to end (tests/e2e/test_auth_jwt.py) with tokens
 * made by python3-cryptography.
 */
#include <string.h>

#include "http/filters/jwk.h"
#include "test.h"

static long dec(const char *s, unsigned char *out)
{
    return b64url_decode(s, strlen(s), out);
}

TEST(jwk_b64url_decodes_and_refuses)
{
    unsigned char out[64];
    CHECK(dec("", out) == 0);
    CHECK(dec("Zg", out) == 1 && out[0] == 'f');
    CHECK(dec("Zm8", out) == 2 && memcmp(out, "fo", 2) == 0);
    CHECK(dec("Zm9v", out) == 3 && memcmp(out, "foo", 3) == 0);
    CHECK(dec("-_8", out) == 2 && out[0] == 0xfb && out[1] == 0xff);
    CHECK(dec("Zm9v=", out) == -1); /* no padding in base64url */
    CHECK(dec("Z", out) == -1);     /* 1 mod 4 */
    CHECK(dec("Zh", out) == -1);    /* non-zero trailing bits */
    CHECK(dec("Zm+v", out) == -1);  /* standard alphabet */
    CHECK(dec("Zm9 v", out) == -1);
    CHECK(b64_decode("Zm9vYg==", 8, out) == 4 && memcmp(out, "foob", 4) == 0);
    CHECK(b64_decode("YTpi", 4, out) == 3 && memcmp(out, "a:b", 3) == 0);
    CHECK(b64_decode("Zm9vYg", 6, out) == -1); /* padding required */
    CHECK(b64_decode("-_8=", 4, out) == -1);
    CHECK(b64_decode("+/8=", 4, out) == 2 && out[0] == 0xfb);
}

TEST(jwk_alg_names)
{
    CHECK(jwa_from_name("RS256", 5) == JWA_RS256);
    CHECK(jwa_from_name("EdDSA", 5) == JWA_EDDSA);
    CHECK(jwa_from_name("none", 4) == -1);
    CHECK(jwa_from_name("rs256", 5) == -1);
    CHECK(strcmp(jwa_name(JWA_ES384), "ES384") == 0);
}

/* A P-256 public key (RFC 7515 A.3) and an Ed25519 one (RFC 8037 A.2). */
#define EC_KEY_JSON                                                                                \
    "{\"kty\":\"EC\",\"kid\":\"e\",\"crv\":\"P-256\","                                             \
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","                                       \
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}"
#define ED_KEY_JSON                                                                                \
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"EdDSA\","                                      \
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}"
#define OCT_KEY_JSON                                                                               \
    "{\"kty\":\"oct\",\"kid\":\"h\",\"k\":\""                                                      \
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}"

TEST(jwk_parses_a_keyset)
{
    char why[256] = "";
    const char *doc = "{\"keys\":[" EC_KEY_JSON "," ED_KEY_JSON "," OCT_KEY_JSON
                      ",{\"kty\":\"EC\",\"use\":\"enc\",\"crv\":\"P-256\",\"x\":\"a\",\"y\":\"b\"}"
                      ",{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\",\"n\":\"AQAB\",\"e\":\"AQAB\"}"
                      ",{\"kty\":\"XYZ\"}]}";
    struct jwks *ks = jwks_parse(doc, strlen(doc), why, sizeof(why));
    CHECK(ks != NULL);
    if (!ks) {
        test_fail(__FILE__, __LINE__, "%s", why);
        return;
    }
    CHECK(ks->nkeys == 3);
    CHECK(ks->keys[0].kind == JWK_EC_P256 && strcmp(ks->keys[0].kid, "e") == 0);
    CHECK(ks->keys[1].kind == JWK_ED25519 && ks->keys[1].kid == NULL);
    CHECK(ks->keys[2].kind == JWK_OCT && ks->keys[2].secret_len == 64);
    CHECK(jwk_fits(&ks->keys[0], JWA_ES256) && !jwk_fits(&ks->keys[0], JWA_ES384));
    CHECK(!jwk_fits(&ks->keys[0], JWA_RS256) && !jwk_fits(&ks->keys[0], JWA_HS256));
    CHECK(jwk_fits(&ks->keys[1], JWA_EDDSA));
    CHECK(jwk_fits(&ks->keys[2], JWA_HS512) && !jwk_fits(&ks->keys[2], JWA_RS256));
    /* a signature of the wrong size or for another key type is false, never a crash */
    unsigned char sig[64] = {0};
    CHECK(!jws_verify(&ks->keys[0], JWA_ES256, "a.b", 3, sig, 10));
    CHECK(!jws_verify(&ks->keys[0], JWA_ES256, "a.b", 3, sig, 64));
    CHECK(!jws_verify(&ks->keys[1], JWA_RS256, "a.b", 3, sig, 64));
    CHECK(!jws_verify(&ks->keys[2], JWA_HS256, "a.b", 3, sig, 32));
    jwks_free(ks);

    ks = jwks_parse(ED_KEY_JSON, strlen(ED_KEY_JSON), why, sizeof(why));
    CHECK(ks && ks->nkeys == 1);
    jwks_free(ks);
}

static void check_refused(const char *doc, const char *want)
{
    char why[256] = "";
    struct jwks *ks = jwks_parse(doc, strlen(doc), why, sizeof(why));
    CHECK(ks == NULL);
    jwks_free(ks);
    if (!strstr(why, want))
        test_fail(__FILE__, __LINE__, "\"%s\": got \"%s\", expected \"%s\"", doc, why, want);
}

TEST(jwk_refuses_bad_keysets)
{
    check_refused("", "invalid JSON");
    check_refused("{\"keys\": 3}", "expected a JWKS");
    check_refused("{\"keys\": []}", "expected a JWKS");
    check_refused("[1]", "expected a JWKS");
    check_refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                  "key 1: an RSA key shorter than 2048 bits");
    check_refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}]}",
                  "key 1: an EC key needs");
    /* a point that is not on the curve */
    check_refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                  "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                  "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
                  "key 1: an EC key needs");
    check_refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}", "at least 32 bytes");
    check_refused("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AQAB\"}]}",
                  "an OKP key needs");
    check_refused("{\"keys\":[{\"n\":\"x\"}]}", "without `kty`");
    check_refused("{\"keys\":[{\"kty\":\"EC\",\"use\":\"enc\"}]}", "no signature key");
    check_refused("{\"keys\":[" ED_KEY_JSON "], \"keys\": []}", "invalid JSON"); /* duplicate */
}
