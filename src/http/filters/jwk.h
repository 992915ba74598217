/* jwk.h — JSON Web Keys and JWS signature checks for the jwt filter: base64url (RFC 4648 §5,
 * checked, no padding), a JWKS document (RFC 7517) parsed with jansson into OpenSSL keys,
 * and the signature of a compact JWS verified with OpenSSL 3 EVP (RFC 7518 §3, RFC 8037).
 * No cryptography is written here: keys are built with EVP_PKEY_fromdata and checked with
 * EVP_DigestVerify / HMAC. A keyset is immutable once parsed; any thread may read it.
 */
#ifndef STRATA_HTTP_FILTERS_JWK_H
#define STRATA_HTTP_FILTERS_JWK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The JWS algorithms Strata verifies ("none" is never one of them). */
enum jwa {
    JWA_RS256,
    JWA_RS384,
    JWA_RS512,
    JWA_PS256,
    JWA_PS384,
    JWA_PS512,
    JWA_ES256,
    JWA_ES384,
    JWA_EDDSA,
    JWA_HS256,
    JWA_HS384,
    JWA_HS512,
    JWA_COUNT
};

/* The algorithm named s[0..len) ("RS256"...), or -1. */
int jwa_from_name(const char *s, size_t len);
const char *jwa_name(enum jwa a);

/* Decodes base64url text (no padding, no whitespace) into out (room for at least
 * len * 3 / 4 + 1 bytes). Returns the decoded length, or -1 on a character outside the
 * alphabet, a length of 1 mod 4, or non-zero trailing bits. */
long b64url_decode(const char *in, size_t len, unsigned char *out);
/* The same for standard base64 (RFC 4648 §4: '+' '/', padded to a multiple of 4). */
long b64_decode(const char *in, size_t len, unsigned char *out);

enum jwk_kind { JWK_RSA, JWK_EC_P256, JWK_EC_P384, JWK_ED25519, JWK_OCT };

struct jwk {
    char *kid; /* NULL when the key has none */
    int alg;   /* the key's "alg", or -1 when it names none */
    enum jwk_kind kind;
    void *pkey;            /* EVP_PKEY * (public keys) */
    unsigned char *secret; /* JWK_OCT */
    size_t secret_len;
};

struct jwks {
    struct jwk *keys;
    uint32_t nkeys;
};

#define JWKS_MAX_KEYS 64
#define JWKS_MAX_BYTES (1 << 20)

/* Parses a JWKS document ({"keys": [...]}, or a single JWK object). Keys of other types
 * or uses ("use": "enc"), and private parts, are ignored; a key that cannot be built is an
 * error. Returns a keyset (free with jwks_free) or NULL with a reason in why. */
struct jwks *jwks_parse(const char *text, size_t len, char *why, size_t whylen);
void jwks_free(struct jwks *ks);

/* Whether key k may verify algorithm a (its type and curve, and its own "alg" if any). */
bool jwk_fits(const struct jwk *k, enum jwa a);

/* Verifies `sig` over `input` (the JWS signing input: header "." payload, as sent) with
 * key k and algorithm a. False on any mismatch or error. */
bool jws_verify(const struct jwk *k, enum jwa a, const char *input, size_t input_len,
                const unsigned char *sig, size_t sig_len);

#endif
