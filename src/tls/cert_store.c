/* cert_store.c — loading certificates and choosing one per handshake by SNI.
 *
 * A certificate serves the DNS names of its subjectAltName (its CN only when it has no
 * SAN). The store is a plain array scanned in order: listeners carry a handful of
 * certificates, and the scan touches only the names (a hash by name is the next step
 * for thousands). Loading checks what an operator gets wrong: unreadable files, a file
 * that is not PEM, a key for another certificate, a certificate out of its validity.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/bug.h"
#include "tls/tls.h"

#define TLS_FILE_MAX (1u << 20) /* certificates, keys and OCSP responses are small */

static void set_err(struct tls_error *err, enum tls_field f, const char *fmt, const char *a,
                    const char *b)
{
    err->field = f;
    snprintf(err->msg, sizeof(err->msg), fmt, a, b ? b : "");
}

/* Reads a whole file (at most TLS_FILE_MAX bytes) into a memory BIO; NULL with *err. */
static BIO *read_file(const char *path, enum tls_field f, struct tls_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        set_err(err, f, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    char buf[16384];
    size_t n, total = 0;
    while (bio && (n = fread(buf, 1, sizeof(buf), fp)) > 0) {
        total += n;
        if (total > TLS_FILE_MAX || BIO_write(bio, buf, (int)n) != (int)n) {
            set_err(err, f, "cannot read %s: %s", path,
                    total > TLS_FILE_MAX ? "larger than 1 MiB" : "out of memory");
            BIO_free(bio);
            bio = NULL;
        }
    }
    if (bio && ferror(fp)) {
        set_err(err, f, "cannot read %s: %s", path, strerror(errno));
        BIO_free(bio);
        bio = NULL;
    } else if (!bio && !err->msg[0]) {
        set_err(err, f, "cannot read %s: %s", path, "out of memory");
    }
    fclose(fp);
    return bio;
}

static int add_name(struct tls_cert *c, const unsigned char *s, int len)
{
    if (len <= 0 || len > 253 || memchr(s, '\0', (size_t)len))
        return 0; /* not a usable DNS name: ignored */
    char **n = realloc(c->names, (c->nnames + 1) * sizeof(*n));
    if (!n)
        return -1;
    c->names = n;
    if (!(n[c->nnames] = strndup((const char *)s, (size_t)len)))
        return -1;
    for (char *p = n[c->nnames]; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c->nnames++;
    return 0;
}

/* The DNS names of the SAN, or the CN when there is no DNS SAN. */
static int collect_names(struct tls_cert *c)
{
    GENERAL_NAMES *san = X509_get_ext_d2i(c->x509, NID_subject_alt_name, NULL, NULL);
    int rc = 0;
    for (int i = 0; san && i < sk_GENERAL_NAME_num(san) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);
        if (g->type == GEN_DNS)
            rc = add_name(c, ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(san);
    if (rc < 0 || c->nnames)
        return rc;
    const X509_NAME *subj = X509_get_subject_name(c->x509);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    unsigned char *cn = NULL;
    int len =
        idx >= 0
            ? ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)))
            : -1;
    if (len > 0)
        rc = add_name(c, cn, len);
    OPENSSL_free(cn);
    return rc;
}

static int load_x509(struct tls_cert *c, const char *path, struct tls_error *err)
{
    BIO *bio = read_file(path, TLS_F_CERT, err);
    if (!bio)
        return -1;
    c->x509 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!c->x509) {
        set_err(err, TLS_F_CERT, "%s is not a PEM certificate%s", path, "");
        BIO_free(bio);
        return -1;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        if ((!c->chain && !(c->chain = sk_X509_new_null())) || !sk_X509_push(c->chain, x)) {
            X509_free(x);
            set_err(err, TLS_F_CERT, "%s: %s", path, "out of memory");
            BIO_free(bio);
            return -1;
        }
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    BIO_free(bio);
    int before = X509_cmp_current_time(X509_get0_notBefore(c->x509));
    int after = X509_cmp_current_time(X509_get0_notAfter(c->x509));
    if (before >= 0 || after <= 0) {
        set_err(err, TLS_F_CERT, "%s %s", path,
                before >= 0 ? "is not valid yet (notBefore is in the future)"
                            : "has expired (notAfter is in the past)");
        return -1;
    }
    if (collect_names(c) < 0) {
        set_err(err, TLS_F_CERT, "%s: %s", path, "out of memory");
        return -1;
    }
    return 0;
}

static int load_key(struct tls_cert *c, const char *path, struct tls_error *err)
{
    BIO *bio = read_file(path, TLS_F_KEY, err);
    if (!bio)
        return -1;
    c->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (!c->pkey) {
        set_err(err, TLS_F_KEY, "%s is not a PEM private key (or it is encrypted)%s", path, "");
        return -1;
    }
    if (X509_check_private_key(c->x509, c->pkey) != 1) {
        ERR_clear_error();
        set_err(err, TLS_F_KEY, "%s does not match the certificate's public key%s", path, "");
        return -1;
    }
    c->ecdsa = EVP_PKEY_get_base_id(c->pkey) == EVP_PKEY_EC;
    return 0;
}

static int load_ocsp(struct tls_cert *c, const char *path, struct tls_error *err)
{
    BIO *bio = read_file(path, TLS_F_OCSP, err);
    if (!bio)
        return -1;
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !(c->ocsp = malloc((size_t)len))) {
        set_err(err, TLS_F_OCSP, "%s: %s", path, len <= 0 ? "empty file" : "out of memory");
        BIO_free(bio);
        return -1;
    }
    memcpy(c->ocsp, data, (size_t)len);
    c->ocsp_len = (uint32_t)len;
    BIO_free(bio);
    return 0;
}

struct tls_cert *tls_cert_load(const char *cert, const char *key, const char *ocsp,
                               struct tls_error *err)
{
    struct tls_cert *c = calloc(1, sizeof(*c));
    err->msg[0] = '\0';
    if (!c) {
        set_err(err, TLS_F_CERT, "%s: %s", cert, "out of memory");
        return NULL;
    }
    if (load_x509(c, cert, err) < 0 || load_key(c, key, err) < 0 ||
        (ocsp && load_ocsp(c, ocsp, err) < 0))
        goto fail;
    return c;
fail:
    tls_cert_free(c);
    return NULL;
}

void tls_cert_free(struct tls_cert *c)
{
    if (!c)
        return;
    X509_free(c->x509);
    EVP_PKEY_free(c->pkey);
    sk_X509_pop_free(c->chain, X509_free);
    for (uint32_t i = 0; i < c->nnames; i++)
        free(c->names[i]);
    free(c->names);
    free(c->ocsp);
    free(c);
}

/* ---- choosing ---------------------------------------------------------------------- */

enum match_kind { M_EXACT, M_WILDCARD, M_DEFAULT };

static bool name_eq(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && strncasecmp(name, s, len) == 0;
}

/* "*.example.com" matches "a.example.com" (one label, not empty, not example.com). */
static bool wildcard_eq(const char *name, const char *s, size_t len)
{
    if (name[0] != '*' || name[1] != '.')
        return false;
    const char *dot = memchr(s, '.', len);
    return dot && dot > s && name_eq(name + 1, dot, len - (size_t)(dot - s));
}

static bool matches(const struct tls_cert *c, enum match_kind k, const char *s, size_t len)
{
    for (uint32_t i = 0; i < c->nnames; i++)
        if (k == M_EXACT ? name_eq(c->names[i], s, len) : wildcard_eq(c->names[i], s, len))
            return true;
    return false;
}

/* Among the certificates matching (k, s), the first of the preferred key type, else the
 * first of any type. M_DEFAULT matches the first certificate and those sharing its first
 * name (its ECDSA or RSA twin). */
static const struct tls_cert *choose(const struct tls_cert_store *st, enum match_kind k,
                                     const char *s, size_t len, bool ecdsa_ok)
{
    const struct tls_cert *any = NULL;
    if (k == M_DEFAULT && st->certs[0]->nnames == 0)
        return st->certs[0];
    if (k == M_DEFAULT) {
        s = st->certs[0]->names[0];
        len = strlen(s);
    }
    for (uint32_t i = 0; i < st->ncerts; i++) {
        const struct tls_cert *c = st->certs[i];
        if (!matches(c, k == M_DEFAULT ? M_EXACT : k, s, len))
            continue;
        if (c->ecdsa == ecdsa_ok)
            return c;
        if (!any)
            any = c;
    }
    return any;
}

const struct tls_cert *tls_cert_store_pick(const struct tls_cert_store *st, const char *sni,
                                           size_t len, bool ecdsa_ok)
{
    const struct tls_cert *c = NULL;
    BUG_ON(st->ncerts == 0);
    if (sni && len)
        c = choose(st, M_EXACT, sni, len, ecdsa_ok);
    if (!c && sni && len)
        c = choose(st, M_WILDCARD, sni, len, ecdsa_ok);
    return c ? c : choose(st, M_DEFAULT, NULL, 0, ecdsa_ok);
}
