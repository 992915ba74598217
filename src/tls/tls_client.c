/* tls_client.c — a backend's TLS context: server verification, client certificate,
 * ALPN offer, and session reuse per worker and server.
 *
 * Session cache shape: sessions[worker_id * nservers + server->index], sized at load from
 * the configuration's worker count and the backend's server count. server->index (the
 * position in the backend) rather than server->gid because the context belongs to one
 * backend and gid is only numbered when the workers start (upool_number_servers); the
 * slot is the same idea: one per worker and server, touched by that worker alone (in
 * tls_client_attach and in the new-session callback, which runs inside that worker's
 * SSL_read/SSL_do_handshake), so no lock. A TLS 1.3 server sends its tickets after the
 * handshake; the callback keeps the last one.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config/config-t.h"
#include "tls/tls_int.h"

#define SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

static int new_session_cb(SSL *s, SSL_SESSION *sess)
{
    struct tls_client *tc = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), tls_ctx_index);
    uint32_t slot = tls_state_index(s);
    if (!tc || !slot || !SSL_SESSION_is_resumable(sess))
        return 0; /* not kept: OpenSSL frees it */
    SSL_SESSION_free(tc->sessions[slot - 1]);
    tc->sessions[slot - 1] = sess;
    return 1;
}

static int load_verify(struct tls_client *tc, const struct tls_client_conf *conf,
                       struct tls_error *err)
{
    const char *file = conf->ca ? conf->ca : SYSTEM_CA_FILE;
    SSL_CTX_set_verify(tc->ctx, conf->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (!conf->verify && !conf->ca)
        return 0;
    if (SSL_CTX_load_verify_file(tc->ctx, file) != 1) {
        ERR_clear_error();
        tls_set_err(err, TLS_F_CA, "cannot load CA certificates (PEM) from %s", file);
        return -1;
    }
    return 0;
}

static int load_client_cert(struct tls_client *tc, const struct tls_client_conf *conf,
                            struct tls_error *err)
{
    if (!conf->cert)
        return 0;
    struct tls_cert *c = tls_cert_load(conf->cert, conf->key, NULL, err);
    if (!c)
        return -1;
    int rc = SSL_CTX_use_cert_and_key(tc->ctx, c->x509, c->pkey, c->chain, 1) == 1 ? 0 : -1;
    if (rc < 0) {
        ERR_clear_error();
        tls_set_err(err, TLS_F_CERT, "OpenSSL refuses the certificate %s", conf->cert);
    }
    tls_cert_free(c);
    return rc;
}

static int setup_ctx(struct tls_client *tc, const struct tls_client_conf *conf,
                     struct tls_error *err)
{
    SSL_CTX_set_options(tc->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(tc->ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(tc->ctx, 1); /* as servers (tls_server.c) */
    if (tls_ctx_versions(tc->ctx, conf->min_version, conf->max_version, err) < 0 ||
        tls_ctx_ciphers(tc->ctx, conf->ciphers, conf->ciphersuites, err) < 0 ||
        load_verify(tc, conf, err) < 0 || load_client_cert(tc, conf, err) < 0)
        return -1;
    if (conf->alpn && SSL_CTX_set_alpn_protos(tc->ctx, conf->alpn, conf->alpn_len) != 0)
        return -1;
    SSL_CTX_set_session_cache_mode(tc->ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(tc->ctx, new_session_cb);
    return SSL_CTX_set_ex_data(tc->ctx, tls_ctx_index, tc) == 1 ? 0 : -1;
}

struct tls_client *tls_client_new(const struct tls_client_conf *conf, uint32_t nworkers,
                                  uint32_t nservers, struct tls_error *err)
{
    struct tls_client *tc = NULL;
    err->field = TLS_F_NONE;
    err->msg[0] = '\0';
    if (tls_global_init() < 0 || !(tc = calloc(1, sizeof(*tc))))
        goto fail;
    tc->nworkers = nworkers;
    tc->nservers = nservers;
    tc->verify = conf->verify;
    if ((nworkers && nservers &&
         !(tc->sessions = calloc((size_t)nworkers * nservers, sizeof(*tc->sessions)))) ||
        (conf->sni && !(tc->sni = strdup(conf->sni))) ||
        !(tc->ctx = SSL_CTX_new_ex(NULL, NULL, TLS_client_method())) ||
        setup_ctx(tc, conf, err) < 0)
        goto fail;
    return tc;
fail:
    if (!err->msg[0])
        tls_set_err(err, TLS_F_NONE, "cannot set up TLS (out of memory?)");
    ERR_clear_error();
    tls_client_free(tc);
    return NULL;
}

void tls_client_free(struct tls_client *tc)
{
    if (!tc)
        return;
    for (size_t i = 0; tc->sessions && i < (size_t)tc->nworkers * tc->nservers; i++)
        SSL_SESSION_free(tc->sessions[i]);
    free(tc->sessions);
    SSL_CTX_free(tc->ctx);
    free(tc->sni);
    free(tc);
}

/* The host part of "host:port" / "[v6]:port" when it is a name (not an IP), into buf. */
static const char *host_name_of(const char *text, char *buf, size_t len)
{
    const char *colon = text ? strrchr(text, ':') : NULL;
    struct in_addr a;
    if (!colon || text[0] == '[' || (size_t)(colon - text) >= len || colon == text)
        return NULL;
    memcpy(buf, text, (size_t)(colon - text));
    buf[colon - text] = '\0';
    return inet_pton(AF_INET, buf, &a) == 1 ? NULL : buf;
}

/* Name checks: the certificate must name `sni` (or the server's host name); without a
 * name, the server's IP address (an IP subjectAltName), as curl does for https://IP/. */
static int set_peer_name(SSL *s, const struct tls_client *tc, const struct server *srv)
{
    char buf[256];
    const char *name = tc->sni ? tc->sni : host_name_of(srv->addr_text, buf, sizeof(buf));
    if (name && SSL_set_tlsext_host_name(s, name) != 1)
        return -1;
    if (!tc->verify)
        return 0;
    if (name)
        return SSL_set1_host(s, name) == 1 ? 0 : -1;
    X509_VERIFY_PARAM *vp = SSL_get0_param(s);
    const struct sockaddr_any *a = &srv->addr;
    if (a->u.sa.sa_family == AF_INET6)
        return X509_VERIFY_PARAM_set1_ip(vp, (const unsigned char *)&a->u.in6.sin6_addr, 16) == 1
                   ? 0
                   : -1;
    return X509_VERIFY_PARAM_set1_ip(vp, (const unsigned char *)&a->u.in.sin_addr, 4) == 1 ? 0 : -1;
}

int tls_client_attach(struct conn *c, struct tls_client *tc, const struct server *srv,
                      unsigned worker_id)
{
    SSL *s = SSL_new(tc->ctx);
    if (!s || tls_set_socket(s, c->h.fd) < 0 || set_peer_name(s, tc, srv) < 0)
        goto fail;
    SSL_set_connect_state(s);
    if (worker_id < tc->nworkers && srv->index < tc->nservers) {
        size_t slot = (size_t)worker_id * tc->nservers + srv->index;
        SSL_SESSION *sess = tc->sessions[slot];
        if (sess && SSL_SESSION_is_resumable(sess) && SSL_set_session(s, sess) != 1)
            goto fail;
        tls_state_set(s, (uintptr_t)(slot + 1) << TLS_ST_INDEX_SHIFT);
    }
    c->ctx = s;
    c->xprt = &xprt_tls;
    return 0;
fail:
    SSL_free(s);
    ERR_clear_error();
    return -1;
}

int tls_client_offer_alpn(struct conn *c, const unsigned char *alpn, unsigned len)
{
    /* SSL_set_alpn_protos returns 0 on success, unlike most of OpenSSL */
    if (SSL_set_alpn_protos(c->ctx, alpn, len) == 0)
        return 0;
    ERR_clear_error();
    return -1;
}
