/* test_tls.c — TLS: configuration errors at file:line:col, and real handshakes between a
 * backend's tls_client and a listener's tls_server over a socketpair (SNI, ECDSA/RSA,
 * ALPN, resumption by ticket and key rotation, mTLS, plaintext, data, close_notify).
 * Certificates are made at run time with the openssl CLI in a temporary directory.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config/config.h"
#include "core/log.h"
#include "tls/tls.h"
#include "test.h"

/* ---- fixtures ------------------------------------------------------------------------ */

static const char gen_script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "q() { \"$@\" >/dev/null 2>&1; }\n"
    "q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
    "  -out ca.pem -subj /CN=Strata-Test-CA -days 2\n"
    "mk() {\n"
    "  if [ $2 = rsa ]; then q openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
    "    -out $1.key; else q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
    "    -out $1.key; fi\n"
    "  q openssl req -new -key $1.key -subj \"/CN=$3\" -out $1.csr\n"
    "  printf 'subjectAltName=%s\\n' \"$4\" > $1.ext\n"
    "  q openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
    "    -extfile $1.ext -out $1.pem\n"
    "}\n"
    "mk default ec default.test DNS:default.test\n"
    "mk site-rsa rsa site.test DNS:site.test\n"
    "mk site-ec ec site.test DNS:site.test\n"
    "mk wild ec wild DNS:*.wild.test\n"
    "mk client ec client.test DNS:client.test\n"
    "openssl x509 -in client.pem -noout -fingerprint -sha256 > client.fp\n"
    "mkdir -p db && : > db/index && echo 01 > db/serial\n"
    "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=db/index\\nserial=db/serial\\n"
    "new_certs_dir=db\\ndefault_md=sha256\\npolicy=p\\nunique_subject=no\\n"
    "[p]\\ncommonName=supplied\\n' > ca.cnf\n"
    "q openssl req -new -key default.key -subj /CN=old.test -out old.csr\n"
    "q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in old.csr -out "
    "  expired.pem -startdate 20200101000000Z -enddate 20200102000000Z -notext\n"
    "q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in old.csr -out "
    "  future.pem -startdate 20990101000000Z -enddate 20990102000000Z -notext\n"
    "printf 'not a certificate\\n' > garbage.pem\n"
    "printf 'OCSP-RESPONSE-BYTES' > site.ocsp.der\n";

static char dir[64];

/* Makes the certificates once; false (and a failure) when the openssl CLI cannot. */
static bool fixtures(void)
{
    static int state; /* 0 not yet, 1 ok, -1 failed */
    if (state)
        return state > 0;
    signal(SIGPIPE, SIG_IGN); /* the socket BIO writes with write(2), as in main.c */
    snprintf(dir, sizeof(dir), "/tmp/strata-tls-XXXXXX");
    state = -1;
    if (!mkdtemp(dir))
        return false;
    char path[128], cmd[256];
    snprintf(path, sizeof(path), "%s/gen.sh", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fputs(gen_script, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "sh %s %s", path, dir);
    if (system(cmd) != 0) {
        test_fail(__FILE__, __LINE__, "could not make test certificates with openssl");
        return false;
    }
    state = 1;
    return true;
}

/* At exit, whichever tests ran. */
__attribute__((destructor)) static void rm_fixtures(void)
{
    char cmd[128];
    if (dir[0] && strncmp(dir, "/tmp/strata-tls-", 16) == 0) {
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
}

/* Loads yaml as DIR/strata.yaml (so relative paths are the fixtures). */
static struct config *load(const char *yaml, struct config_errors *e)
{
    char name[128];
    snprintf(name, sizeof(name), "%s/strata.yaml", dir);
    memset(e, 0, sizeof(*e));
    return config_load_string(name, yaml, 2, e);
}

/* ---- configuration errors -------------------------------------------------------------- */

/* Lines 8-10 hold the certificate's keys, line 11 one more `tls` key. */
static const char bad_tmpl[] = "listeners:\n"
                               "  - name: web\n"
                               "    listen: 127.0.0.1:8443\n"
                               "    mode: http\n"
                               "    backend: app\n"
                               "    tls:\n"
                               "      certificates:\n"
                               "        - cert: %s\n"
                               "          key: %s\n"
                               "          %s\n"
                               "      %s\n"
                               "backends:\n"
                               "  app: { servers: [127.0.0.1:9000] }\n";

static void expect_error(const char *cert, const char *key, const char *line10, const char *line11,
                         const char *want)
{
    char yaml[1024];
    struct config_errors e;
    snprintf(yaml, sizeof(yaml), bad_tmpl, cert, key, line10, line11);
    struct config *c = load(yaml, &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, want);
    if (!e.text || !strstr(e.text, want))
        fprintf(stderr, "    got: %s", e.text ? e.text : "(nothing)\n");
    config_unref(c);
    config_errors_free(&e);
}

TEST(tls_config_errors)
{
    if (!fixtures())
        return;
    const char *ok_c = "site-ec.pem", *ok_k = "site-ec.key", *none = "# none";
    expect_error("missing.pem", ok_k, none, none,
                 "strata.yaml:8:17: error: listeners[0].tls.certificates[0].cert: cannot read "
                 "/tmp/strata-tls-");
    expect_error("garbage.pem", ok_k, none, none,
                 "strata.yaml:8:17: error: listeners[0].tls.certificates[0].cert: ");
    expect_error("garbage.pem", ok_k, none, none, "garbage.pem is not a PEM certificate");
    expect_error(ok_c, "default.key", none, none,
                 "strata.yaml:9:16: error: listeners[0].tls.certificates[0].key: ");
    expect_error(ok_c, "default.key", none, none, "does not match the certificate");
    expect_error(ok_c, "missing.key", none, none,
                 "strata.yaml:9:16: error: listeners[0].tls.certificates[0].key: cannot read");
    expect_error("expired.pem", "default.key", none, none,
                 "strata.yaml:8:17: error: listeners[0].tls.certificates[0].cert: ");
    expect_error("expired.pem", "default.key", none, none, "has expired");
    expect_error("future.pem", "default.key", none, none, "is not valid yet");
    expect_error(ok_c, ok_k, "ocsp: missing.der", none,
                 "strata.yaml:10:17: error: listeners[0].tls.certificates[0].ocsp: cannot read");
    expect_error(ok_c, ok_k, none, "min_version: tlsv1.1",
                 "strata.yaml:11:20: error: listeners[0].tls.min_version: unknown value "
                 "\"tlsv1.1\", expected one of tlsv1.2, tlsv1.3");
    expect_error(ok_c, ok_k, none, "ciphers: NOT-A-CIPHER",
                 "strata.yaml:11:16: error: listeners[0].tls.ciphers: no usable cipher in "
                 "\"NOT-A-CIPHER\"");
    expect_error(ok_c, ok_k, none, "ciphersuites: TLS_AES_128_GCM_SHA256:TLS_NOPE",
                 "strata.yaml:11:21: error: listeners[0].tls.ciphersuites: unknown TLS 1.3");
    expect_error(ok_c, ok_k, none, "curves: X25519:nocurve",
                 "strata.yaml:11:15: error: listeners[0].tls.curves: unknown group");
    expect_error(ok_c, ok_k, none, "client_auth: { ca: missing-ca.pem }",
                 "strata.yaml:11:26: error: listeners[0].tls.client_auth.ca: cannot read "
                 "/tmp/strata-tls-");
    expect_error(ok_c, ok_k, none, "client_auth: { ca: garbage.pem }",
                 "strata.yaml:11:26: error: listeners[0].tls.client_auth.ca: cannot load CA "
                 "certificates (PEM) from /tmp/strata-tls-");
    /* every problem is reported, not only the first */
    expect_error("missing.pem", ok_k, "ocsp: x.der", "curves: nope\n      ciphers: NOPE",
                 "strata.yaml:11:15: error: listeners[0].tls.curves: unknown group");
    expect_error("missing.pem", ok_k, "ocsp: x.der", "curves: nope\n      ciphers: NOPE",
                 "strata.yaml:12:16: error: listeners[0].tls.ciphers: no usable cipher");
    expect_error(ok_c, ok_k, none, "starttls: postgres",
                 "strata.yaml:11:17: error: listeners[0].tls.starttls: applies to `mode: tcp` "
                 "listeners only");
    expect_error(ok_c, ok_k, none, "max_version: tlsv1.2\n      min_version: tlsv1.3",
                 "strata.yaml:11:20: error: listeners[0].tls.max_version: min_version is "
                 "above max_version");

    struct config_errors e;
    struct config *c =
        load("listeners:\n"
             "  - name: dns\n"
             "    listen: 127.0.0.1:5353\n"
             "    mode: udp\n"
             "    backend: app\n"
             "    tls: { certificates: [ { cert: site-ec.pem, key: site-ec.key } ] }\n"
             "backends:\n"
             "  app:\n"
             "    servers: [127.0.0.1:53]\n"
             "    tls: { ca: nope.pem, cert: client.pem }\n",
             &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, "strata.yaml:6:10: error: listeners[0].tls: applies to `mode: "
                               "tcp` and `mode: http` listeners only");
    CHECK_STR_CONTAINS(e.text, "strata.yaml:10:32: error: backends.app.tls.cert: a client "
                               "certificate needs both `cert` and `key`");
    config_unref(c);
    config_errors_free(&e);

    /* the short forms: `tls: true` (system CAs) and `tls: false` (plain) */
    c = load("workers: 3\n"
             "listeners: [ { name: a, listen: 127.0.0.1:1, backend: app } ]\n"
             "backends:\n"
             "  app: { servers: [127.0.0.1:53, 127.0.0.1:54], tls: true }\n"
             "  off: { servers: [127.0.0.1:55], tls: false }\n"
             "  empty: { servers: [127.0.0.1:56], tls: {} }\n",
             &e);
    CHECK(c != NULL);
    if (c) {
        const struct tls_client *tc = config_backend(c, "app")->tls;
        CHECK(tc && tc->verify && !tc->sni && tc->nworkers == 3 && tc->nservers == 2);
        CHECK(config_backend(c, "off")->tls == NULL);
        CHECK(config_backend(c, "empty")->tls != NULL);
        CHECK(c->listeners[0].tls == NULL);
    }
    config_unref(c);
    config_errors_free(&e);

    c = load("listeners: [ { name: a, listen: 127.0.0.1:1, backend: app } ]\n"
             "backends:\n"
             "  app:\n"
             "    servers: [127.0.0.1:53]\n"
             "    tls: { ca: nope.pem }\n",
             &e);
    CHECK(c == NULL);
    CHECK_STR_CONTAINS(e.text, "strata.yaml:5:16: error: backends.app.tls.ca: cannot read");
    config_unref(c);
    config_errors_free(&e);
}

/* ---- handshakes ------------------------------------------------------------------------ */

static const char good_yaml[] =
    "workers: 2\n"
    "listeners:\n"
    "  - name: web\n"
    "    listen: 127.0.0.1:8443\n"
    "    mode: http\n"
    "    backend: plain\n"
    "    tls:\n"
    "      certificates:\n"
    "        - { cert: default.pem, key: default.key }\n"
    "        - { cert: site-rsa.pem, key: site-rsa.key }\n"
    "        - { cert: site-ec.pem, key: site-ec.key, ocsp: site.ocsp.der }\n"
    "        - { cert: wild.pem, key: wild.key }\n"
    "      ticket_rotate: 1s\n"
    "  - name: mtls\n"
    "    listen: 127.0.0.1:8444\n"
    "    backend: plain\n"
    "    tls:\n"
    "      certificates: [ { cert: site-ec.pem, key: site-ec.key } ]\n"
    "      alpn: [h2, http/1.1]\n"
    "      client_auth: { ca: ca.pem }\n"
    "  - name: pg\n"
    "    listen: 127.0.0.1:8445\n"
    "    routes: [ { match: { sni: site.test }, backend: plain } ]\n"
    "    tls: { certificates: [ { cert: site-ec.pem, key: site-ec.key } ], starttls: postgres,\n"
    "           handshake_timeout: 2500ms }\n"
    "backends:\n"
    "  plain: { servers: [127.0.0.1:9000] }\n"
    "  site: { servers: [127.0.0.1:9001], tls: { ca: ca.pem, sni: site.test, alpn: http/1.1 } }\n"
    "  wild: { servers: [127.0.0.1:9002], tls: { ca: ca.pem, sni: a.wild.test } }\n"
    "  other: { servers: [127.0.0.1:9003], tls: { verify: false, sni: other.test } }\n"
    "  nosni: { servers: [127.0.0.1:9004], tls: { verify: false } }\n"
    "  h2only: { servers: [127.0.0.1:9005], tls: { ca: ca.pem, sni: site.test, alpn: [h2] } }\n"
    "  mtls: { servers: [127.0.0.1:9006],\n"
    "          tls: { ca: ca.pem, sni: site.test, cert: client.pem, key: client.key } }\n"
    "  by_ip: { servers: [127.0.0.1:9007], tls: { ca: ca.pem } }\n";

struct pair {
    struct conn cli, srv;
    const char *why_cli, *why_srv;
};

static int open_pair_on(struct pair *p, const struct tls_server *ts, struct tls_client *tc,
                        const struct server *srv, unsigned worker)
{
    int fds[2];
    memset(p, 0, sizeof(*p));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) < 0)
        return -1;
    conn_init_plain(&p->cli, fds[0], NULL);
    conn_init_plain(&p->srv, fds[1], NULL);
    if (ts && tls_server_attach(&p->srv, ts) < 0)
        return -1;
    if (tc && tls_client_attach(&p->cli, tc, srv, worker) < 0)
        return -1;
    return 0;
}

static int open_pair(struct pair *p, const struct tls_server *ts, struct tls_client *tc,
                     const struct server *srv)
{
    return open_pair_on(p, ts, tc, srv, 0);
}

static void close_pair(struct pair *p)
{
    p->cli.xprt->close(&p->cli);
    p->srv.xprt->close(&p->srv);
}

/* What the event loop would report on a socket pair where both ends may have bytes and
 * room: a transport step only runs on the readiness it waits for. */
static void note_ready(struct pair *p)
{
    conn_note_events(&p->cli, EPOLLIN | EPOLLOUT);
    conn_note_events(&p->srv, EPOLLIN | EPOLLOUT);
}

/* Steps both handshakes until both are done or one fails (bounded). 0 both done; -1 the
 * client failed; -2 the server failed; -3 no progress. */
static int handshake(struct pair *p)
{
    bool cdone = false, sdone = false;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        note_ready(p);
        if (!cdone) {
            int rc = p->cli.xprt->handshake(&p->cli, &p->why_cli);
            if (rc == 0)
                cdone = true;
            else if (errno != EAGAIN)
                return -1;
        }
        if (!sdone) {
            int rc = p->srv.xprt->handshake(&p->srv, &p->why_srv);
            if (rc == 0)
                sdone = true;
            else if (errno != EAGAIN)
                return -2;
        }
    }
    return cdone && sdone ? 0 : -3;
}

/* Sends len bytes from a to b and reads them back on b (bounded). */
static bool transfer(struct conn *a, struct conn *b, size_t len)
{
    unsigned char *out = malloc(len), *in = malloc(len);
    size_t sent = 0, got = 0;
    for (size_t i = 0; out && i < len; i++)
        out[i] = (unsigned char)(i * 7 + 3);
    for (int i = 0; out && in && got < len && i < 10000; i++) {
        if (sent < len) {
            ssize_t n = a->xprt->send(a, out + sent, len - sent);
            if (n > 0)
                sent += (size_t)n;
            else if (errno != EAGAIN)
                break;
        }
        ssize_t n = b->xprt->recv(b, in + got, len - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno != EAGAIN)
            break;
    }
    bool ok = got == len && memcmp(in, out, len) == 0;
    free(out);
    free(in);
    return ok;
}

static const struct tls_server *listener_tls(const struct config *c, const char *name)
{
    for (uint32_t i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return c->listeners[i].tls;
    return NULL;
}

static X509 *peer_cert(struct conn *c)
{
    return SSL_get0_peer_certificate((SSL *)c->ctx);
}

static bool peer_names(struct conn *c, const char *name)
{
    X509 *x = peer_cert(c);
    return x && X509_check_host(x, name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
}

static bool peer_is_ecdsa(struct conn *c)
{
    X509 *x = peer_cert(c);
    return x && EVP_PKEY_get_base_id(X509_get0_pubkey(x)) == EVP_PKEY_EC;
}

/* The configuration of the handshake tests (its `verify: false` warnings silenced). */
static struct config *good_config(void)
{
    struct config_errors e;
    enum log_level saved = log_threshold;
    log_threshold = LOG_ERR;
    struct config *c = load(good_yaml, &e);
    log_threshold = saved;
    CHECK(c != NULL);
    if (!c)
        fprintf(stderr, "%s", e.text ? e.text : "");
    config_errors_free(&e);
    return c;
}

/* Connects backend `b` to listener `l`; the pair is open on return (close_pair). */
static int connect_to(struct config *c, const char *l, const char *b, struct pair *p,
                      const char *sigalgs)
{
    struct backend *be = config_backend(c, b);
    if (open_pair(p, listener_tls(c, l), be->tls, &be->servers[0]) < 0)
        return -4;
    if (sigalgs)
        SSL_set1_sigalgs_list((SSL *)p->cli.ctx, sigalgs);
    return handshake(p);
}

TEST(tls_handshake_sni_and_key_type)
{
    if (!fixtures())
        return;
    struct config *c = good_config();
    if (!c)
        return;
    struct pair p;
    struct xprt_info ci, si;

    /* what the connection stage asks of a listener */
    CHECK_EQ_U64(tls_server_starttls(listener_tls(c, "pg")), TLS_STARTTLS_POSTGRES);
    CHECK_EQ_U64(tls_server_handshake_timeout_ms(listener_tls(c, "pg")), 2500);
    CHECK_EQ_U64(tls_server_starttls(listener_tls(c, "web")), TLS_STARTTLS_NONE);
    CHECK_EQ_U64(tls_server_handshake_timeout_ms(listener_tls(c, "web")), 10000);

    /* exact name, ECDSA offered: the ECDSA certificate, with ALPN and OCSP */
    CHECK_EQ_U64(connect_to(c, "web", "site", &p, NULL), 0);
    CHECK(peer_names(&p.cli, "site.test") && peer_is_ecdsa(&p.cli));
    p.cli.xprt->info(&p.cli, &ci);
    p.srv.xprt->info(&p.srv, &si);
    CHECK(ci.version && strcmp(ci.version, "TLSv1.3") == 0);
    CHECK(si.sni && strcmp(si.sni, "site.test") == 0);
    CHECK(si.alpn_len == 8 && memcmp(si.alpn, "http/1.1", 8) == 0);
    CHECK(ci.alpn_len == 8 && memcmp(ci.alpn, "http/1.1", 8) == 0);
    CHECK(ci.peer_verified && !si.peer_verified && !ci.resumed);
    CHECK(ci.peer_subject && strcmp(ci.peer_subject, "CN=site.test") == 0);
    CHECK(si.peer_subject == NULL && si.peer_fingerprint == NULL);
    CHECK(ci.cipher != NULL);
    close_pair(&p);

    /* exact name, only RSA signature algorithms: the RSA certificate */
    CHECK_EQ_U64(connect_to(c, "web", "site", &p, "rsa_pss_rsae_sha256:rsa_pkcs1_sha256"), 0);
    CHECK(peer_names(&p.cli, "site.test") && !peer_is_ecdsa(&p.cli));
    close_pair(&p);

    /* a TLS 1.2 client offering RSA only: RSA too */
    struct backend *site = config_backend(c, "site");
    CHECK_EQ_U64(open_pair(&p, listener_tls(c, "web"), site->tls, &site->servers[0]), 0);
    SSL_set_max_proto_version((SSL *)p.cli.ctx, TLS1_2_VERSION);
    SSL_set_cipher_list((SSL *)p.cli.ctx, "ECDHE-RSA-AES128-GCM-SHA256");
    CHECK_EQ_U64(handshake(&p), 0);
    CHECK(peer_names(&p.cli, "site.test") && !peer_is_ecdsa(&p.cli));
    p.cli.xprt->info(&p.cli, &ci);
    CHECK(ci.version && strcmp(ci.version, "TLSv1.2") == 0);
    close_pair(&p);

    /* wildcard (verified by the client against a.wild.test) */
    CHECK_EQ_U64(connect_to(c, "web", "wild", &p, NULL), 0);
    CHECK(peer_names(&p.cli, "a.wild.test"));
    close_pair(&p);

    /* unknown name and no name: the default (first) certificate */
    CHECK_EQ_U64(connect_to(c, "web", "other", &p, NULL), 0);
    CHECK(peer_names(&p.cli, "default.test"));
    p.cli.xprt->info(&p.cli, &ci);
    CHECK(!ci.peer_verified && ci.peer_subject == NULL); /* verify: false */
    close_pair(&p);
    CHECK_EQ_U64(connect_to(c, "web", "nosni", &p, NULL), 0);
    CHECK(peer_names(&p.cli, "default.test"));
    p.srv.xprt->info(&p.srv, &si);
    CHECK(si.sni == NULL);
    close_pair(&p);

    /* no ALPN in common: no ALPN, no failure */
    CHECK_EQ_U64(connect_to(c, "web", "h2only", &p, NULL), 0);
    p.srv.xprt->info(&p.srv, &si);
    CHECK(si.alpn_len == 0);
    close_pair(&p);

    /* verification by IP address: the certificate does not name 127.0.0.1 */
    CHECK_EQ_U64(connect_to(c, "web", "by_ip", &p, NULL), -1);
    CHECK(p.why_cli && strcmp(p.why_cli, "bad certificate") == 0);
    CHECK_EQ_U64(tls_last_fail(&p.cli), TLS_FAIL_BAD_CERT);
    close_pair(&p);
    config_unref(c);
}

TEST(tls_handshake_ocsp_stapled)
{
    if (!fixtures())
        return;
    struct config *c = good_config();
    if (!c)
        return;
    struct backend *site = config_backend(c, "site");
    struct pair p;
    const unsigned char *resp = NULL;
    CHECK_EQ_U64(open_pair(&p, listener_tls(c, "web"), site->tls, &site->servers[0]), 0);
    SSL_set_tlsext_status_type((SSL *)p.cli.ctx, TLSEXT_STATUSTYPE_ocsp);
    CHECK_EQ_U64(handshake(&p), 0);
    long len = SSL_get_tlsext_status_ocsp_resp((SSL *)p.cli.ctx, &resp);
    CHECK(len == 19 && resp && memcmp(resp, "OCSP-RESPONSE-BYTES", 19) == 0);
    close_pair(&p);
    config_unref(c);
}

TEST(tls_data_eof_and_resumption)
{
    if (!fixtures())
        return;
    struct config *c = good_config();
    if (!c)
        return;
    struct pair p;
    struct xprt_info ci, si;

    CHECK_EQ_U64(connect_to(c, "web", "site", &p, NULL), 0);
    CHECK(transfer(&p.cli, &p.srv, 100000));
    CHECK(transfer(&p.srv, &p.cli, 70000)); /* the client reads the tickets too */
    CHECK(!p.srv.xprt->pending(&p.srv));
    /* a record read in part: the rest is pending inside the transport */
    char small[10];
    CHECK_EQ_U64(p.srv.xprt->send(&p.srv, "0123456789abcdefghij", 20), 20);
    ssize_t got = -1;
    for (int i = 0; i < 10 && got < 0; i++)
        got = p.cli.xprt->recv(&p.cli, small, sizeof(small));
    CHECK_EQ_U64(got, 10);
    CHECK(p.cli.xprt->pending(&p.cli));
    CHECK_EQ_U64(p.cli.xprt->recv(&p.cli, small, sizeof(small)), 10);
    CHECK(memcmp(small, "abcdefghij", 10) == 0 && !p.cli.xprt->pending(&p.cli));
    /* a full socket: EAGAIN clears CONN_WR_READY (partial writes: never more than sent) */
    static char big[1 << 16];
    ssize_t w = 0;
    size_t total = 0;
    p.cli.flags |= CONN_WR_READY;
    for (int i = 0; i < 1000 && w >= 0; i++)
        if ((w = p.cli.xprt->send(&p.cli, big, sizeof(big))) > 0)
            total += (size_t)w;
    CHECK(w < 0 && errno == EAGAIN && !(p.cli.flags & CONN_WR_READY) && total > 0);
    bool unsent = true; /* the record of the send that said EAGAIN */
    for (int i = 0; i < 10000 && (total > 0 || unsent); i++) {
        ssize_t r = p.srv.xprt->recv(&p.srv, big, sizeof(big));
        if (r > 0)
            total -= (size_t)r;
        if (unsent && (w = p.cli.xprt->send(&p.cli, big, sizeof(big))) > 0) {
            total += (size_t)w; /* retried with the same bytes: now framed and sent */
            unsent = false;
        }
    }
    CHECK(total == 0 && !unsent);
    /* close_notify, then FIN: an EOF, and the other direction still works */
    CHECK_EQ_U64(p.cli.xprt->shutdown_wr(&p.cli), 0);
    char buf[64];
    ssize_t n = -1;
    for (int i = 0; i < 10 && n < 0; i++)
        n = p.srv.xprt->recv(&p.srv, buf, sizeof(buf));
    CHECK_EQ_U64(n, 0);
    CHECK(transfer(&p.srv, &p.cli, 1000));
    /* the server closes without close_notify: an EOF for the client too */
    close(p.srv.h.fd);
    p.srv.h.fd = -1;
    n = p.cli.xprt->recv(&p.cli, buf, sizeof(buf));
    CHECK_EQ_U64(n, 0);
    CHECK_EQ_U64(tls_last_fail(&p.cli), TLS_FAIL_NONE); /* not a failure */
    CHECK_EQ_U64(p.cli.xprt->shutdown_wr(&p.cli), 0);   /* FIN only */
    close_pair(&p);

    /* the second connection resumes with the ticket of the first */
    CHECK_EQ_U64(connect_to(c, "web", "site", &p, NULL), 0);
    p.cli.xprt->info(&p.cli, &ci);
    p.srv.xprt->info(&p.srv, &si);
    CHECK(ci.resumed && si.resumed);
    CHECK(transfer(&p.srv, &p.cli, 10)); /* new tickets */
    close_pair(&p);

    /* one rotation: the previous key still decrypts */
    tls_tickets_rotate(UINT64_MAX / 2);
    CHECK_EQ_U64(connect_to(c, "web", "site", &p, NULL), 0);
    p.srv.xprt->info(&p.srv, &si);
    CHECK(si.resumed);
    CHECK(transfer(&p.srv, &p.cli, 10));
    close_pair(&p);

    /* two more rotations: its key is gone, a full handshake */
    tls_tickets_rotate(UINT64_MAX / 2 + 500); /* not due yet (ticket_rotate: 1s) */
    CHECK_EQ_U64(connect_to(c, "web", "site", &p, NULL), 0);
    p.srv.xprt->info(&p.srv, &si);
    CHECK(si.resumed);
    CHECK(transfer(&p.srv, &p.cli, 10));
    close_pair(&p);
    tls_tickets_rotate(UINT64_MAX / 2 + 1000);
    tls_tickets_rotate(UINT64_MAX / 2 + 2000);
    CHECK_EQ_U64(connect_to(c, "web", "site", &p, NULL), 0);
    p.srv.xprt->info(&p.srv, &si);
    CHECK(!si.resumed);
    close_pair(&p);

    /* TLS 1.2 without tickets: resumption by session id (session_cache) */
    for (int i = 0; i < 2; i++) {
        struct backend *site = config_backend(c, "site");
        CHECK_EQ_U64(open_pair(&p, listener_tls(c, "web"), site->tls, &site->servers[0]), 0);
        SSL_set_max_proto_version((SSL *)p.cli.ctx, TLS1_2_VERSION);
        SSL_set_options((SSL *)p.cli.ctx, SSL_OP_NO_TICKET);
        CHECK_EQ_U64(handshake(&p), 0);
        p.srv.xprt->info(&p.srv, &si);
        CHECK(strcmp(si.version, "TLSv1.2") == 0 && si.resumed == (i == 1));
        CHECK(transfer(&p.cli, &p.srv, 10));
        close_pair(&p);
    }
    config_unref(c);
}

TEST(tls_mtls_and_failures)
{
    if (!fixtures())
        return;
    struct config *c = good_config();
    if (!c)
        return;
    struct pair p;
    struct xprt_info si;

    /* a client certificate: verified; subject and fingerprint for routing and headers */
    CHECK_EQ_U64(connect_to(c, "mtls", "mtls", &p, NULL), 0);
    CHECK(transfer(&p.cli, &p.srv, 100));
    p.srv.xprt->info(&p.srv, &si);
    CHECK(si.peer_verified && si.alpn_len == 0);
    char subj[256], fp[65], want[160] = "";
    CHECK_EQ_U64(xprt_tls_peer_subject(&p.srv, subj, sizeof(subj)), strlen("CN=client.test"));
    CHECK(strcmp(subj, "CN=client.test") == 0);
    CHECK_EQ_U64(xprt_tls_peer_fingerprint(&p.srv, fp, sizeof(fp)), 64);
    char path[128];
    snprintf(path, sizeof(path), "%s/client.fp", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[160], *o = want;
        if (fgets(line, sizeof(line), f))
            for (const char *s = strchr(line, '=') ? strchr(line, '=') + 1 : line; *s; s++)
                if (*s != ':' && *s != '\n')
                    *o++ = (char)(*s >= 'A' && *s <= 'F' ? *s - 'A' + 'a' : *s);
        *o = '\0';
        fclose(f);
    }
    CHECK(strcmp(fp, want) == 0);
    CHECK_EQ_U64(xprt_tls_peer_fingerprint(&p.cli, fp, 10), -1); /* too small */
    CHECK(si.peer_subject && strcmp(si.peer_subject, "CN=client.test") == 0);
    CHECK(si.peer_fingerprint && strcmp(si.peer_fingerprint, want) == 0);
    struct xprt_info again;
    p.srv.xprt->info(&p.srv, &again); /* made once, kept with the connection */
    CHECK(again.peer_subject == si.peer_subject);
    close_pair(&p);

    /* no client certificate: refused, and the server says why */
    CHECK_EQ_U64(connect_to(c, "mtls", "site", &p, NULL), -2);
    CHECK(p.why_srv && strcmp(p.why_srv, "client certificate required") == 0);
    CHECK_EQ_U64(tls_last_fail(&p.srv), TLS_FAIL_CERT_REQUIRED);
    CHECK(strcmp(tls_fail_labels[tls_last_fail(&p.srv)], "client_certificate_required") == 0);
    close_pair(&p);

    /* plaintext on a TLS port */
    CHECK_EQ_U64(open_pair(&p, listener_tls(c, "web"), NULL, NULL), 0);
    CHECK_EQ_U64(send(p.cli.h.fd, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
    const char *why = NULL;
    CHECK_EQ_U64(p.srv.xprt->handshake(&p.srv, &why), -1);
    CHECK(why && strcmp(why, tls_fail_reasons[TLS_FAIL_NOT_TLS]) == 0);
    CHECK(why && strcmp(why, "not TLS") == 0);
    CHECK_EQ_U64(tls_last_fail(&p.srv), TLS_FAIL_NOT_TLS);
    close_pair(&p);

    /* nothing yet: wait; then the client leaves: unexpected EOF */
    CHECK_EQ_U64(open_pair(&p, listener_tls(c, "web"), NULL, NULL), 0);
    errno = 0;
    CHECK_EQ_U64(p.srv.xprt->handshake(&p.srv, &why), -1);
    CHECK_EQ_U64(errno, EAGAIN);
    CHECK(!(p.srv.flags & CONN_RD_READY));
    shutdown(p.cli.h.fd, SHUT_WR);
    why = NULL;
    CHECK_EQ_U64(p.srv.xprt->handshake(&p.srv, &why), -1); /* no EPOLLIN yet: still waits */
    CHECK_EQ_U64(errno, EAGAIN);
    CHECK(why == NULL);
    conn_note_events(&p.srv, EPOLLIN | EPOLLRDHUP);
    CHECK_EQ_U64(p.srv.xprt->handshake(&p.srv, &why), -1);
    CHECK(why && strcmp(why, "unexpected EOF") == 0);
    close_pair(&p);

    /* a TLS 1.2-only client against a TLS 1.3-only server */
    struct backend *site = config_backend(c, "site");
    CHECK_EQ_U64(open_pair(&p, listener_tls(c, "web"), site->tls, &site->servers[0]), 0);
    SSL_set_min_proto_version((SSL *)p.srv.ctx, TLS1_3_VERSION);
    SSL_set_max_proto_version((SSL *)p.cli.ctx, TLS1_2_VERSION);
    CHECK_EQ_U64(handshake(&p), -2);
    CHECK(p.why_srv && strcmp(p.why_srv, "no shared cipher/version") == 0);
    note_ready(&p);
    CHECK_EQ_U64(p.cli.xprt->handshake(&p.cli, &p.why_cli), -1); /* reads the alert */
    /* the client reads the server's protocol_version alert */
    CHECK(p.why_cli && strcmp(p.why_cli, "no shared cipher/version") == 0);
    close_pair(&p);
    config_unref(c);
}

/* ---- threads ----------------------------------------------------------------------------- */

struct worker_arg {
    struct config *c;
    unsigned id;
    int ok, resumed;
};

/* One worker's handshakes: its own session slot, the shared server context and keys. */
static void *worker_main(void *arg)
{
    struct worker_arg *w = arg;
    struct backend *site = config_backend(w->c, "site");
    for (int i = 0; i < 40; i++) {
        struct pair p;
        struct xprt_info ci;
        if (open_pair_on(&p, listener_tls(w->c, "web"), site->tls, &site->servers[0], w->id) == 0 &&
            handshake(&p) == 0 && transfer(&p.srv, &p.cli, 100)) {
            w->ok++;
            p.cli.xprt->info(&p.cli, &ci);
            w->resumed += ci.resumed;
        }
        close_pair(&p);
    }
    return NULL;
}

TEST(tls_workers_share_contexts)
{
    if (!fixtures())
        return;
    struct config *c = good_config();
    if (!c)
        return;
    struct worker_arg w[2] = {{c, 0, 0, 0}, {c, 1, 0, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
    for (uint64_t now = UINT64_MAX / 4; now < UINT64_MAX / 4 + 20000; now += 1000)
        tls_tickets_rotate(now); /* rotations while the workers resume */
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_U64(w[i].ok, 40);
        CHECK(w[i].resumed >= 20); /* a rotation costs at most one full handshake in two */
    }
    config_unref(c);
}
