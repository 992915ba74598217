/* jwk.c — see jwk.h. */
#include "http/filters/jwk.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const jwa_names[JWA_COUNT] = {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512",
};

int jwa_from_name(const char *s, size_t len)
{
    for (int i = 0; i < JWA_COUNT; i++)
        if (strlen(jwa_names[i]) == len && memcmp(jwa_names[i], s, len) == 0)
            return i;
    return -1;
}

const char *jwa_name(enum jwa a)
{
    return a < JWA_COUNT ? jwa_names[a] : "?";
}

/* ---- base64url ---- */

/* The value of base64 character c in the URL-safe (`url`) or standard alphabet, or -1. */
static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    return c == (url ? '_' : '/') ? 63 : -1;
}

static long decode(const char *in, size_t len, unsigned char *out, bool url)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    long n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* the unused low bits of the last character must be zero (one encoding per value) */
    if (bits && (acc & ((1u << bits) - 1)))
        return -1;
    return n;
}

long b64url_decode(const char *in, size_t len, unsigned char *out)
{
    return decode(in, len, out, true);
}

long b64_decode(const char *in, size_t len, unsigned char *out)
{
    if (len % 4)
        return -1;
    for (int pad = 0; pad < 2 && len && in[len - 1] == '='; pad++)
        len--;
    return decode(in, len, out, false);
}

/* A base64url member of a JWK, decoded into a malloc'd buffer (*len set); NULL when absent
 * or invalid. */
static unsigned char *member_b64(json_t *o, const char *name, size_t *len)
{
    const char *s = json_string_value(json_object_get(o, name));
    if (!s)
        return NULL;
    size_t sl = strlen(s);
    unsigned char *buf = malloc(sl * 3 / 4 + 1);
    long n = buf ? b64url_decode(s, sl, buf) : -1;
    if (n <= 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

/* ---- building keys ---- */

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_key(json_t *o, const char **why)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = member_b64(o, "n", &nlen), *e = member_b64(o, "e", &elen);
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nlen, NULL) : NULL;
    BIGNUM *be = e ? BN_bin2bn(e, (int)elen, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    *why = "an RSA key needs base64url `n` and `e`";
    if (bn && be && nlen * 8 < 2048)
        *why = "an RSA key shorter than 2048 bits";
    else if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
             OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = pkey_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_key(json_t *o, enum jwk_kind *kind, const char **why)
{
    const char *crv = json_string_value(json_object_get(o, "crv"));
    size_t size = crv && strcmp(crv, "P-256") == 0 ? 32 : crv && strcmp(crv, "P-384") == 0 ? 48 : 0;
    *why = "an EC key needs `crv` P-256 or P-384 and base64url `x` and `y` of its size";
    if (!size)
        return NULL;
    *kind = size == 32 ? JWK_EC_P256 : JWK_EC_P384;
    size_t xl = 0, yl = 0;
    unsigned char *x = member_b64(o, "x", &xl), *y = member_b64(o, "y", &yl);
    unsigned char point[1 + 2 * 48];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (x && y && xl == size && yl == size && bld) {
        point[0] = 0x04; /* uncompressed: the key is checked to be on the curve */
        memcpy(point + 1, x, size);
        memcpy(point + 1 + size, y, size);
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, crv, 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * size))
            pkey = pkey_from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

static EVP_PKEY *okp_key(json_t *o, const char **why)
{
    const char *crv = json_string_value(json_object_get(o, "crv"));
    size_t xl = 0;
    unsigned char *x = crv && strcmp(crv, "Ed25519") == 0 ? member_b64(o, "x", &xl) : NULL;
    EVP_PKEY *pkey =
        x && xl == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xl) : NULL;
    *why = "an OKP key needs `crv` Ed25519 and a 32-byte base64url `x`";
    free(x);
    return pkey;
}

/* Fills k from JWK object o. Returns 1 (built), 0 (a key Strata ignores) or -1 (why set). */
static int jwk_build(struct jwk *k, json_t *o, const char **why)
{
    const char *kty = json_string_value(json_object_get(o, "kty"));
    const char *use = json_string_value(json_object_get(o, "use"));
    const char *alg = json_string_value(json_object_get(o, "alg"));
    const char *kid = json_string_value(json_object_get(o, "kid"));
    *why = "a key without `kty`";
    if (!kty)
        return -1;
    if (use && strcmp(use, "sig") != 0)
        return 0;
    k->alg = alg ? jwa_from_name(alg, strlen(alg)) : -1;
    if (alg && k->alg < 0)
        return 0; /* an algorithm Strata does not verify (RSA-OAEP, ...) */
    if (strcmp(kty, "RSA") == 0) {
        k->kind = JWK_RSA;
        k->pkey = rsa_key(o, why);
    } else if (strcmp(kty, "EC") == 0) {
        k->pkey = ec_key(o, &k->kind, why);
    } else if (strcmp(kty, "OKP") == 0) {
        k->kind = JWK_ED25519;
        k->pkey = okp_key(o, why);
    } else if (strcmp(kty, "oct") == 0) {
        k->kind = JWK_OCT;
        k->secret = member_b64(o, "k", &k->secret_len);
        *why = "an oct key needs a base64url `k` of at least 32 bytes";
        if (k->secret && k->secret_len < 32) {
            OPENSSL_clear_free(k->secret, k->secret_len);
            k->secret = NULL;
        }
        if (!k->secret)
            return -1;
    } else {
        return 0;
    }
    if (k->kind != JWK_OCT && !k->pkey)
        return -1;
    if (kid && !(k->kid = strdup(kid))) {
        *why = "out of memory";
        return -1;
    }
    return 1;
}

static void jwk_release(struct jwk *k)
{
    EVP_PKEY_free(k->pkey);
    if (k->secret)
        OPENSSL_clear_free(k->secret, k->secret_len);
    free(k->kid);
}

void jwks_free(struct jwks *ks)
{
    if (!ks)
        return;
    for (uint32_t i = 0; i < ks->nkeys; i++)
        jwk_release(&ks->keys[i]);
    free(ks->keys);
    free(ks);
}

struct jwks *jwks_parse(const char *text, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(why, whylen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return NULL;
    }
    json_t *arr = json_object_get(doc, "keys");
    size_t n = arr ? json_array_size(arr) : json_is_object(doc) ? 1 : 0;
    struct jwks *ks = calloc(1, sizeof(*ks));
    if (!ks || (arr && !json_is_array(arr)) || n == 0 || n > JWKS_MAX_KEYS ||
        !(ks->keys = calloc(n, sizeof(*ks->keys)))) {
        snprintf(why, whylen, "expected a JWKS ({\"keys\": [...]}, 1 to %d keys) or one JWK",
                 JWKS_MAX_KEYS);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = arr ? json_array_get(arr, i) : doc;
        const char *reason = "a key is not an object";
        struct jwk *k = &ks->keys[ks->nkeys];
        int r = json_is_object(o) ? jwk_build(k, o, &reason) : -1;
        if (r < 0) {
            jwk_release(k);
            snprintf(why, whylen, "key %zu: %s", i + 1, reason);
            goto fail;
        }
        if (r == 0)
            jwk_release(k);
        memset(k, 0, sizeof(*k) * (r == 0));
        ks->nkeys += (uint32_t)r;
    }
    if (ks->nkeys == 0) {
        snprintf(why, whylen,
                 "no signature key Strata can use (RSA, EC P-256/P-384, Ed25519, oct)");
        goto fail;
    }
    json_decref(doc);
    return ks;
fail:
    json_decref(doc);
    jwks_free(ks);
    return NULL;
}

/* ---- verification ---- */

bool jwk_fits(const struct jwk *k, enum jwa a)
{
    if (k->alg >= 0 && k->alg != (int)a)
        return false;
    switch (a) {
    case JWA_RS256:
    case JWA_RS384:
    case JWA_RS512:
    case JWA_PS256:
    case JWA_PS384:
    case JWA_PS512:
        return k->kind == JWK_RSA;
    case JWA_ES256:
        return k->kind == JWK_EC_P256;
    case JWA_ES384:
        return k->kind == JWK_EC_P384;
    case JWA_EDDSA:
        return k->kind == JWK_ED25519;
    case JWA_HS256:
    case JWA_HS384:
    case JWA_HS512:
        return k->kind == JWK_OCT;
    default:
        return false;
    }
}

static const EVP_MD *jwa_md(enum jwa a)
{
    switch (a) {
    case JWA_RS256:
    case JWA_PS256:
    case JWA_ES256:
    case JWA_HS256:
        return EVP_sha256();
    case JWA_RS384:
    case JWA_PS384:
    case JWA_ES384:
    case JWA_HS384:
        return EVP_sha384();
    case JWA_RS512:
    case JWA_PS512:
    case JWA_HS512:
        return EVP_sha512();
    default:
        return NULL; /* EdDSA hashes internally */
    }
}

static bool hmac_verify(const struct jwk *k, enum jwa a, const char *input, size_t len,
                        const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(jwa_md(a), k->secret, (int)k->secret_len, (const unsigned char *)input, len, mac,
              &mac_len))
        return false;
    return mac_len == sig_len && CRYPTO_memcmp(mac, sig, sig_len) == 0;
}

/* JWS ECDSA signatures are R || S of the curve's size; OpenSSL takes DER. Returns the
 * DER length written into der (room for 128 bytes), or 0. */
static size_t ecdsa_der(const unsigned char *sig, size_t sig_len, size_t half, unsigned char *der)
{
    if (sig_len != 2 * half)
        return 0;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)half, NULL), *s = BN_bin2bn(sig + half, (int)half, NULL);
    size_t n = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        unsigned char *p = der;
        if (i2d_ECDSA_SIG(es, NULL) <= 128)
            n = (size_t)i2d_ECDSA_SIG(es, &p);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return n;
}

bool jws_verify(const struct jwk *k, enum jwa a, const char *input, size_t input_len,
                const unsigned char *sig, size_t sig_len)
{
    if (!jwk_fits(k, a))
        return false;
    if (k->kind == JWK_OCT)
        return hmac_verify(k, a, input, input_len, sig, sig_len);
    unsigned char der[128];
    if (a == JWA_ES256 || a == JWA_ES384) {
        sig_len = ecdsa_der(sig, sig_len, a == JWA_ES256 ? 32 : 48, der);
        sig = der;
        if (!sig_len)
            return false;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = md && EVP_DigestVerifyInit(md, &pctx, jwa_md(a), NULL, k->pkey) > 0;
    if (ok && (a == JWA_PS256 || a == JWA_PS384 || a == JWA_PS512))
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    ok = ok && EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)input, input_len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}
