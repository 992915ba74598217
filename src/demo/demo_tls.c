/* demo_tls.c — the demo's TLS certificate: a self-signed ECDSA P-256 certificate for
 * localhost and 127.0.0.1, made at start (OpenSSL) into a private temporary directory and
 * removed at stop, so `./strata` shows TLS termination with nothing to prepare.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "demo/demo.h"

static char cert_dir[64];

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* A self-signed certificate for key, valid 30 days from now. NULL on failure. */
static X509 *self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    if (!name || !X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -60) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600) || !X509_set_pubkey(x, key) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"strata demo",
                                    -1, -1, 0) ||
        !X509_set_issuer_name(x, name) ||
        add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") < 0 ||
        !X509_sign(x, key, EVP_sha256())) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int write_pem(const char *path, X509 *x, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    return fclose(f) == 0 && ok ? 0 : -1;
}

const char *demo_tls_dir(char *err, size_t errlen)
{
    strcpy(cert_dir, "/tmp/strata-demo-XXXXXX");
    if (!mkdtemp(cert_dir)) {
        snprintf(err, errlen, "demo certificate: cannot make a temporary directory: %m");
        return NULL;
    }
    char cert[96], key[96];
    snprintf(cert, sizeof(cert), "%s/cert.pem", cert_dir);
    snprintf(key, sizeof(key), "%s/key.pem", cert_dir);
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = pkey ? self_signed(pkey) : NULL;
    int rc = x ? write_pem(key, NULL, pkey) | write_pem(cert, x, NULL) : -1;
    X509_free(x);
    EVP_PKEY_free(pkey);
    if (rc < 0) {
        snprintf(err, errlen, "demo certificate: cannot make it in %s", cert_dir);
        demo_tls_remove();
        return NULL;
    }
    return cert_dir;
}

void demo_tls_remove(void)
{
    char path[96];
    if (!cert_dir[0])
        return;
    snprintf(path, sizeof(path), "%s/cert.pem", cert_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/key.pem", cert_dir);
    unlink(path);
    rmdir(cert_dir);
    cert_dir[0] = '\0';
}
