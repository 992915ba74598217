/* tls_server.c — a listener's TLS context and the callbacks of its handshakes.
 *
 * One SSL_CTX per listener, shared by every worker. The certificate is chosen per
 * handshake in the ClientHello callback, from the SNI and from what the client can
 * verify (ECDSA or RSA), and installed on the SSL with SSL_use_cert_and_key(). Why not
 * SSL_set_SSL_CTX() to a context per certificate: that switches only part of the state
 * (options, verify settings and the session and ticket configuration stay those of the
 * first context, a known source of surprises), and needs one context per certificate
 * where one per listener keeps a single session cache and ticket ring per listener;
 * installing a certificate costs a few reference counts.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/tls1.h>

#include "core/bug.h"
#include "tls/tls_int.h"

/* The first host_name of a server_name extension (RFC 6066 §3). */
static bool sni_of(SSL *s, const char **name, size_t *len)
{
    const unsigned char *p;
    size_t n;
    if (!SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &p, &n) || n < 5)
        return false;
    size_t list = (size_t)p[0] << 8 | p[1];
    if (list + 2 != n || p[2] != TLSEXT_NAMETYPE_host_name)
        return false;
    size_t l = (size_t)p[3] << 8 | p[4];
    if (l == 0 || l + 5 > n)
        return false;
    *name = (const char *)p + 5;
    *len = l;
    return true;
}

/* The client can verify an ECDSA certificate: it offers an ECDSA signature algorithm and
 * a suite usable with one (any TLS 1.3 suite, or an ECDHE-ECDSA suite for TLS 1.2). */
static bool client_takes_ecdsa(SSL *s)
{
    const unsigned char *p;
    size_t n;
    bool sig = false, suite = false;
    if (!SSL_client_hello_get0_ext(s, TLSEXT_TYPE_signature_algorithms, &p, &n) || n < 2)
        return false;
    for (size_t i = 2; i + 1 < n && !sig; i += 2)
        sig = p[i + 1] == 0x03 && p[i] >= 0x02 && p[i] <= 0x06; /* ecdsa_*_sha* */
    size_t nc = SSL_client_hello_get0_ciphers(s, &p);
    for (size_t i = 0; sig && i + 1 < nc && !suite; i += 2) {
        unsigned id = (unsigned)p[i] << 8 | p[i + 1];
        suite = (id >= 0x1301 && id <= 0x1305 && SSL_get_max_proto_version(s) != TLS1_2_VERSION) ||
                id == 0xc02b || id == 0xc02c || id == 0xcca9 || id == 0xc009 || id == 0xc00a ||
                id == 0xc023 || id == 0xc024;
    }
    return sig && suite;
}

static int client_hello_cb(SSL *s, int *alert, void *arg)
{
    const struct tls_server *ts = arg;
    const char *name = NULL;
    size_t len = 0;
    sni_of(s, &name, &len);
    const struct tls_cert *c = tls_cert_store_pick(&ts->store, name, len, client_takes_ecdsa(s));
    uint32_t idx = 0;
    while (ts->store.certs[idx] != c)
        idx++;
    /* the default certificate came with the context (setup_ctx): installing it again
     * would redo OpenSSL's key-type lookup, about 1% of a full handshake's instructions */
    if (idx != 0 && (SSL_certs_clear(s), SSL_use_cert_and_key(s, c->x509, c->pkey, c->chain, 1) != 1)) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    uintptr_t st = tls_state(s) & (((uintptr_t)1 << TLS_ST_INDEX_SHIFT) - 1);
    tls_state_set(s, st | (uintptr_t)(idx + 1) << TLS_ST_INDEX_SHIFT);
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* The certificate was chosen by name already: acknowledge the name (so it is kept in the
 * session and SSL_get_servername() reports it). */
static int servername_cb(SSL *s, int *alert, void *arg)
{
    return SSL_TLSEXT_ERR_OK;
}

/* Server preference order; no common protocol: no ALPN, the handshake goes on. */
static int alpn_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    const struct tls_server *ts = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, ts->alpn, ts->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* OCSP stapling: the response loaded for the chosen certificate, if any. */
static int status_cb(SSL *s, void *arg)
{
    const struct tls_server *ts = arg;
    uint32_t idx = tls_state_index(s);
    const struct tls_cert *c = idx ? ts->store.certs[idx - 1] : NULL;
    if (!c || !c->ocsp)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_memdup(c->ocsp, c->ocsp_len); /* the SSL frees it */
    if (!copy)
        return SSL_TLSEXT_ERR_NOACK;
    SSL_set_tlsext_status_ocsp_resp(s, copy, (long)c->ocsp_len);
    return SSL_TLSEXT_ERR_OK;
}

static int setup_client_auth(struct tls_server *ts, const struct tls_client_auth_conf *ca,
                             struct tls_error *err)
{
    if (!ca->enabled)
        return 0;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca->ca);
    if (!names || SSL_CTX_load_verify_file(ts->ctx, ca->ca) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        ERR_clear_error();
        tls_set_err(err, TLS_F_CA, "cannot load CA certificates (PEM) from %s", ca->ca);
        return -1;
    }
    SSL_CTX_set_client_CA_list(ts->ctx, names);
    SSL_CTX_set_verify(
        ts->ctx, SSL_VERIFY_PEER | (ca->required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    ts->client_auth = true;
    ts->client_auth_required = ca->required;
    return 0;
}

static int setup_sessions(struct tls_server *ts, const struct tls_server_conf *conf, const char *id)
{
    size_t idlen = strlen(id);
    if (SSL_CTX_set_session_id_context(
            ts->ctx, (const unsigned char *)id,
            (unsigned)(idlen > SSL_MAX_SID_CTX_LENGTH ? SSL_MAX_SID_CTX_LENGTH : idlen)) != 1)
        return -1;
    SSL_CTX_set_session_cache_mode(ts->ctx, conf->session_cache ? SSL_SESS_CACHE_SERVER
                                                                : SSL_SESS_CACHE_OFF);
    SSL_CTX_sess_set_cache_size(ts->ctx, conf->session_cache);
    if (!conf->session_tickets) {
        SSL_CTX_set_options(ts->ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ts->ctx, 0);
        return 0;
    }
    if (!(ts->tickets = tls_ticket_ring_new(conf->ticket_rotate_ms)))
        return -1;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ts->ctx, tls_ticket_cb) == 1 ? 0 : -1;
}

/* Options and modes: no renegotiation (a DoS lever and unused by HTTP/1.1 proxies), no
 * compression (CRIME), our cipher order, buffers released while a connection is idle
 * (keep-alive connections then hold ~0 instead of ~34 KiB), partial writes and a write
 * buffer that may move between retries (the relays resend from their buffer). Read-ahead
 * takes whatever the socket holds in one read(2) instead of a header read and a body read
 * per record; what it buffers beyond the record returned is reported by pending(). */
static int setup_ctx(struct tls_server *ts, const struct tls_server_conf *conf,
                     struct tls_error *err)
{
    SSL_CTX_set_options(ts->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ts->ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ts->ctx, 1);
    SSL_CTX_set_dh_auto(ts->ctx, 1);
    if (tls_ctx_versions(ts->ctx, conf->min_version, conf->max_version, err) < 0 ||
        tls_ctx_ciphers(ts->ctx, conf->ciphers, conf->ciphersuites, err) < 0 ||
        tls_ctx_curves(ts->ctx, conf->curves, err) < 0)
        return -1;
    if (SSL_CTX_set_ex_data(ts->ctx, tls_ctx_index, ts) != 1)
        return -1;
    const struct tls_cert *def = ts->store.certs[0]; /* what client_hello_cb picks most */
    if (SSL_CTX_use_cert_and_key(ts->ctx, def->x509, def->pkey, def->chain, 1) != 1)
        return -1;
    SSL_CTX_set_client_hello_cb(ts->ctx, client_hello_cb, ts);
    SSL_CTX_set_tlsext_servername_callback(ts->ctx, servername_cb);
    SSL_CTX_set_tlsext_status_cb(ts->ctx, status_cb);
    SSL_CTX_set_tlsext_status_arg(ts->ctx, ts);
    if (ts->alpn)
        SSL_CTX_set_alpn_select_cb(ts->ctx, alpn_cb, ts);
    return 0;
}

struct tls_server *tls_server_new(struct tls_server_conf *conf, const char *id,
                                  struct tls_error *err)
{
    struct tls_server *ts = NULL;
    err->field = TLS_F_NONE;
    err->msg[0] = '\0';
    if (tls_global_init() < 0 || conf->ncerts == 0 || !(ts = calloc(1, sizeof(*ts))))
        goto oom;
    /* created once per listener with the default library context: the algorithms a
     * context needs are fetched here, at load, not per handshake */
    if (!(ts->ctx = SSL_CTX_new_ex(NULL, NULL, TLS_server_method())) ||
        !(ts->store.certs = calloc(conf->ncerts, sizeof(*ts->store.certs))))
        goto oom;
    for (uint32_t i = 0; i < conf->ncerts; i++) {
        BUG_ON(!conf->certs[i].loaded);
        ts->store.certs[ts->store.ncerts++] = conf->certs[i].loaded;
        conf->certs[i].loaded = NULL;
    }
    if (conf->alpn && !(ts->alpn = malloc(conf->alpn_len)))
        goto oom;
    if (conf->alpn)
        memcpy(ts->alpn, conf->alpn, conf->alpn_len);
    ts->alpn_len = conf->alpn_len;
    ts->handshake_timeout_ms = conf->handshake_timeout_ms;
    ts->starttls = (enum tls_starttls)conf->starttls;
    if (setup_ctx(ts, conf, err) < 0 || setup_client_auth(ts, &conf->client_auth, err) < 0 ||
        setup_sessions(ts, conf, id) < 0)
        goto fail;
    return ts;
oom:
    tls_set_err(err, TLS_F_NONE, "cannot set up TLS: %s",
                tls_global_init() < 0 ? "OpenSSL lacks AES-256-CBC or SHA-256" : "out of memory");
fail:
    if (!err->msg[0])
        tls_set_err(err, TLS_F_NONE, "cannot set up TLS (out of memory?)");
    ERR_clear_error();
    tls_server_free(ts);
    return NULL;
}

void tls_server_free(struct tls_server *ts)
{
    if (!ts)
        return;
    SSL_CTX_free(ts->ctx);
    for (uint32_t i = 0; i < ts->store.ncerts; i++)
        tls_cert_free(ts->store.certs[i]);
    free(ts->store.certs);
    tls_ticket_ring_free(ts->tickets);
    free(ts->alpn);
    free(ts);
}

uint32_t tls_server_handshake_timeout_ms(const struct tls_server *ts)
{
    return ts->handshake_timeout_ms;
}

enum tls_starttls tls_server_starttls(const struct tls_server *ts)
{
    return ts->starttls;
}

int tls_server_attach(struct conn *c, const struct tls_server *ts)
{
    SSL *s = SSL_new(ts->ctx);
    if (!s || tls_set_socket(s, c->h.fd) < 0) {
        SSL_free(s);
        ERR_clear_error();
        return -1;
    }
    SSL_set_accept_state(s);
    c->ctx = s;
    c->xprt = &xprt_tls;
    return 0;
}
