/* tls_ctx.c — process-wide TLS state (algorithms fetched once, ex_data indexes) and the
 * context settings servers and clients share (versions, ciphers). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "tls/tls_int.h"

const char *const tls_fail_reasons[TLS_FAIL_COUNT] = {
    [TLS_FAIL_NONE] = "",
    [TLS_FAIL_NOT_TLS] = "not TLS",
    [TLS_FAIL_NO_SHARED] = "no shared cipher/version",
    [TLS_FAIL_BAD_CERT] = "bad certificate",
    [TLS_FAIL_CERT_REQUIRED] = "client certificate required",
    [TLS_FAIL_PEER_ALERT] = "alert from peer",
    [TLS_FAIL_HANDSHAKE] = "handshake failure",
    [TLS_FAIL_EOF] = "unexpected EOF",
};

const char *const tls_fail_labels[TLS_FAIL_COUNT] = {
    [TLS_FAIL_NONE] = "",
    [TLS_FAIL_NOT_TLS] = "not_tls",
    [TLS_FAIL_NO_SHARED] = "no_shared_cipher",
    [TLS_FAIL_BAD_CERT] = "bad_certificate",
    [TLS_FAIL_CERT_REQUIRED] = "client_certificate_required",
    [TLS_FAIL_PEER_ALERT] = "peer_alert",
    [TLS_FAIL_HANDSHAKE] = "handshake_failure",
    [TLS_FAIL_EOF] = "unexpected_eof",
};

struct tls_algs tls_algs;
int tls_ctx_index = -1, tls_peer_index = -1;

/* ex_data destructor of the peer identity and the gathered output: a malloc'd block */
static void free_block(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

/* The socket BIO, with a read that notes a short read in the SSL's state. With read-ahead
 * the record layer asks for as much as its buffer holds, so a short read means the socket
 * is drained: xprt_tls can then clear CONN_RD_READY without the read that says EAGAIN
 * (one syscall in five on a keep-alive request). */
static BIO_METHOD *noting_socket;
static int (*socket_read)(BIO *, char *, int);

/* The old-style (int) read and write: the _ex getters of a built-in method return
 * converters that call the method's own old-style functions, which a new method lacks. */
static int noting_read(BIO *b, char *out, int len)
{
    SSL *s = BIO_get_app_data(b);
    uintptr_t st = tls_state(s);
    /* An earlier read of this step came back short: the socket was drained, and bytes
     * arriving since bring a new EPOLLIN edge. Say EAGAIN without asking the kernel
     * (OpenSSL reads again after sending a handshake flight, or for the rest of a
     * record), unless the peer's FIN was seen: then only a read shows the EOF. */
    if ((st & TLS_ST_READ) && (st & TLS_ST_SHORT_READ) && !(st & TLS_ST_RD_HUP)) {
        tls_state_set(s, st & ~(uintptr_t)TLS_ST_SHORT_READ);
        BIO_clear_retry_flags(b);
        BIO_set_retry_read(b);
        errno = EAGAIN;
        return -1;
    }
    int n = socket_read(b, out, len);
    st = (st | TLS_ST_READ) & ~(uintptr_t)TLS_ST_SHORT_READ;
    if (n > 0 && n < len)
        st |= TLS_ST_SHORT_READ;
    /* A server's first byte other than 0x16 (a handshake record) is plaintext on a TLS
     * port: seen here rather than by a MSG_PEEK recv before each handshake. */
    if (n > 0 && !(st & TLS_ST_PEEKED) && SSL_is_server(s))
        st |= TLS_ST_PEEKED | (out[0] != 0x16 ? TLS_ST_NOT_TLS : 0);
    tls_state_set(s, st);
    return n;
}

/* Handshake output gathered while TLS_ST_GATHER is set (xprt_tls.c sets it around each
 * handshake step): OpenSSL writes and flushes each record on its own, so a TLS 1.3
 * server's two session tickets would leave in two write(2)s and two TCP segments. */
struct gathered {
    size_t len, off, cap;
    unsigned char data[];
};

static int tls_gathered_index = -1;
static int (*socket_write)(BIO *, const char *, int);

static int noting_write(BIO *b, const char *in, int len)
{
    SSL *s = BIO_get_app_data(b);
    if (!(tls_state(s) & TLS_ST_GATHER) || len <= 0)
        return socket_write(b, in, len);
    struct gathered *g = SSL_get_ex_data(s, tls_gathered_index);
    size_t have = g ? g->len : 0;
    if (!g || g->cap - g->len < (size_t)len) {
        size_t cap = have + (size_t)len < 4096 ? 4096 : have + (size_t)len;
        struct gathered *n = malloc(sizeof(*n) + cap);
        if (!n || SSL_set_ex_data(s, tls_gathered_index, n) != 1) {
            free(n);
            return -1; /* the handshake fails (SSL_ERROR_SYSCALL) */
        }
        *n = (struct gathered){.len = have, .off = g ? g->off : 0, .cap = cap};
        if (g)
            memcpy(n->data, g->data, have);
        free(g);
        g = n;
    }
    memcpy(g->data + g->len, in, (size_t)len);
    g->len += (size_t)len;
    BIO_clear_retry_flags(b);
    return len;
}

static BIO_METHOD *make_noting_socket(void)
{
    const BIO_METHOD *base = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "strata socket");
    socket_read = BIO_meth_get_read((BIO_METHOD *)base);
    socket_write = BIO_meth_get_write((BIO_METHOD *)base);
    if (!m || !socket_read || !socket_write || !BIO_meth_set_read(m, noting_read) ||
        !BIO_meth_set_write(m, noting_write) ||
        !BIO_meth_set_puts(m, BIO_meth_get_puts((BIO_METHOD *)base)) ||
        !BIO_meth_set_ctrl(m, BIO_meth_get_ctrl((BIO_METHOD *)base)) ||
        !BIO_meth_set_create(m, BIO_meth_get_create((BIO_METHOD *)base)) ||
        !BIO_meth_set_destroy(m, BIO_meth_get_destroy((BIO_METHOD *)base))) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

bool tls_has_gathered(SSL *s)
{
    const struct gathered *g = SSL_get_ex_data(s, tls_gathered_index);
    return g && g->off < g->len;
}

int tls_send_gathered(SSL *s, int fd)
{
    struct gathered *g = SSL_get_ex_data(s, tls_gathered_index);
    while (g && g->off < g->len) {
        ssize_t n = write(fd, g->data + g->off, g->len - g->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        g->off += (size_t)n;
    }
    if (g) {
        SSL_set_ex_data(s, tls_gathered_index, NULL); /* cannot fail: the slot exists */
        free(g);
    }
    return 1;
}

int tls_set_socket(SSL *s, int fd)
{
    BIO *b = BIO_new(noting_socket);
    if (!b)
        return -1;
    BIO_set_fd(b, fd, BIO_NOCLOSE);
    BIO_set_app_data(b, s);
    SSL_set_bio(s, b, b);
    return 0;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

static void init(void)
{
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
    tls_algs.aes_256_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    tls_algs.sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    tls_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    tls_peer_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_block);
    tls_gathered_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_block);
    noting_socket = make_noting_socket();
    init_rc = tls_algs.aes_256_cbc && tls_algs.sha256 && tls_ctx_index >= 0 &&
                      tls_peer_index >= 0 && tls_gathered_index >= 0 && noting_socket
                  ? 0
                  : -1;
}

int tls_global_init(void)
{
    pthread_once(&init_once, init);
    return init_rc;
}

void tls_set_err(struct tls_error *err, enum tls_field f, const char *fmt, ...)
{
    va_list ap;
    err->field = f;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

int tls_ctx_versions(SSL_CTX *ctx, int min, int max, struct tls_error *err)
{
    if (min > max) {
        tls_set_err(err, TLS_F_VERSION, "min_version is above max_version");
        return -1;
    }
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, max) != 1) {
        tls_set_err(err, TLS_F_VERSION, "OpenSSL refuses this version range");
        return -1;
    }
    return 0;
}

/* How many ':'-separated names `list` holds. */
static int count_names(const char *list)
{
    int n = 0;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        n += len > 0;
        p += len + (e != NULL);
    }
    return n;
}

/* OpenSSL ignores unknown TLS 1.3 suite names: every name given must have been kept. */
static int tls13_suites(const SSL_CTX *ctx)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
    int n = 0;
    for (int i = 0; sk && i < sk_SSL_CIPHER_num(sk); i++)
        n += SSL_CIPHER_get_protocol_id(sk_SSL_CIPHER_value(sk, i)) >> 8 == 0x13;
    return n;
}

int tls_ctx_ciphers(SSL_CTX *ctx, const char *ciphers, const char *suites, struct tls_error *err)
{
    if (ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        ERR_clear_error();
        tls_set_err(err, TLS_F_CIPHERS,
                    "no usable cipher in \"%.120s\" (OpenSSL cipher list syntax, e.g. "
                    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256)",
                    ciphers);
        return -1;
    }
    if (suites &&
        (SSL_CTX_set_ciphersuites(ctx, suites) != 1 || tls13_suites(ctx) != count_names(suites))) {
        ERR_clear_error();
        tls_set_err(err, TLS_F_CIPHERSUITES,
                    "unknown TLS 1.3 cipher suite in \"%.120s\" (expected names such as "
                    "TLS_AES_128_GCM_SHA256, separated by ':')",
                    suites);
        return -1;
    }
    return 0;
}

int tls_ctx_curves(SSL_CTX *ctx, const char *curves, struct tls_error *err)
{
    if (!curves || SSL_CTX_set1_groups_list(ctx, curves) == 1)
        return 0;
    ERR_clear_error();
    tls_set_err(err, TLS_F_CURVES,
                "unknown group in \"%.120s\" (expected names such as X25519, prime256v1, "
                "secp384r1, separated by ':')",
                curves);
    return -1;
}

unsigned tls_check_settings(const struct tls_settings *set, struct tls_error *errs, unsigned max)
{
    unsigned n = 0;
    if (tls_global_init() < 0 || max == 0)
        return 0; /* reported by the builders */
    SSL_CTX *ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method());
    if (!ctx) {
        tls_set_err(&errs[n++], TLS_F_NONE, "cannot set up TLS (out of memory?)");
        return n;
    }
    if (n < max && tls_ctx_ciphers(ctx, set->ciphers, NULL, &errs[n]) < 0)
        n++;
    if (n < max && tls_ctx_ciphers(ctx, NULL, set->suites, &errs[n]) < 0)
        n++;
    if (n < max && tls_ctx_curves(ctx, set->curves, &errs[n]) < 0)
        n++;
    if (n < max && set->ca && access(set->ca, R_OK) != 0) {
        tls_set_err(&errs[n++], TLS_F_CA, "cannot read %s: %s", set->ca, strerror(errno));
    } else if (n < max && set->ca && SSL_CTX_load_verify_file(ctx, set->ca) != 1) {
        ERR_clear_error();
        tls_set_err(&errs[n++], TLS_F_CA, "cannot load CA certificates (PEM) from %s", set->ca);
    }
    SSL_CTX_free(ctx);
    return n;
}
