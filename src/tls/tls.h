/* tls.h — TLS for Strata (OpenSSL 3.0): listener and backend contexts built from the
 * configuration, the TLS transport (xprt_tls) and the session-ticket key ring.
 *
 * Life cycle: schema_tls.c builds a `struct tls_server` per listener with `tls` and a
 * `struct tls_client` per backend with `tls`, at configuration load; they are freed with
 * the configuration. At run time a worker calls tls_server_attach() on an accepted fd or
 * tls_client_attach() on a connecting one, then drives conn->xprt->handshake() until it
 * returns 0 (or fails: tls_last_fail() says why), then recv/send as on any transport.
 * Someone (the control thread's timer) calls tls_tickets_rotate() now and then.
 */
#ifndef STRATA_TLS_TLS_H
#define STRATA_TLS_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "net/conn.h"
#include "tls/tls-t.h"

struct server;

/* tls_fail_reasons[reason]: "not TLS", "no shared cipher/version", ... ("" for NONE), as
 * the handshake's `why` says; tls_fail_labels[reason]: the same as metric label values
 * ("not_tls", "no_shared_cipher", "bad_certificate", "client_certificate_required",
 * "peer_alert", "handshake_failure", "unexpected_eof"). */
extern const char *const tls_fail_reasons[TLS_FAIL_COUNT];
extern const char *const tls_fail_labels[TLS_FAIL_COUNT];

extern const struct xprt_ops xprt_tls;

/* Which configuration key a load error is about (schema_tls.c reports it there). */
enum tls_field {
    TLS_F_NONE,
    TLS_F_CERT,
    TLS_F_KEY,
    TLS_F_OCSP,
    TLS_F_CA,
    TLS_F_CIPHERS,
    TLS_F_CIPHERSUITES,
    TLS_F_CURVES,
    TLS_F_VERSION,
};

struct tls_error {
    enum tls_field field;
    char msg[256];
};

/* Fetches the algorithms the hot paths use and the ex_data indexes, once per process
 * (the builders below call it). 0, or -1 when OpenSSL cannot provide them. */
int tls_global_init(void);

/* ---- loading (configuration time) ---- */

/* Loads a certificate (PEM, leaf then chain), its key and optionally a DER OCSP response,
 * checking that the files are readable, the certificate is PEM and valid now, and the
 * key matches it. NULL with *err filled (err->field says which path) on failure. */
struct tls_cert *tls_cert_load(const char *cert, const char *key, const char *ocsp,
                               struct tls_error *err);
void tls_cert_free(struct tls_cert *c);

/* The settings OpenSSL alone can judge, checked each on its own so that every problem is
 * reported, not only the first: cipher list, TLS 1.3 suites, groups, a CA file (NULL:
 * not checked). Fills up to `max` errors and returns how many. */
struct tls_settings {
    const char *ciphers, *suites, *curves, *ca;
};
unsigned tls_check_settings(const struct tls_settings *set, struct tls_error *errs, unsigned max);

/* Builds a listener's context from `conf` (certificates already loaded into
 * conf->certs[i].loaded; they move into the server). `id` (the listener name) is the
 * session id context. NULL with *err on failure. */
struct tls_server *tls_server_new(struct tls_server_conf *conf, const char *id,
                                  struct tls_error *err);
void tls_server_free(struct tls_server *ts);

/* What the connection stage needs of a listener's TLS: the handshake's time limit and the
 * plaintext exchange, if any, that comes before it. */
uint32_t tls_server_handshake_timeout_ms(const struct tls_server *ts);
enum tls_starttls tls_server_starttls(const struct tls_server *ts);

/* Builds a backend's context; the session cache has one slot per (worker, server). */
struct tls_client *tls_client_new(const struct tls_client_conf *conf, uint32_t nworkers,
                                  uint32_t nservers, struct tls_error *err);
void tls_client_free(struct tls_client *tc);

/* The certificate a listener serves for `sni` (len bytes, NULL/0 = none): exact name,
 * then a one-label wildcard, else the default (the first certificate); among those for
 * one name, ECDSA when `ecdsa_ok`, else RSA. */
const struct tls_cert *tls_cert_store_pick(const struct tls_cert_store *s, const char *sni,
                                           size_t len, bool ecdsa_ok);

/* ---- connections (worker threads) ---- */

/* Makes the accepted, non-blocking fd of c (set up with conn_init_plain) a TLS server
 * connection: c->xprt = &xprt_tls, c->ctx = the SSL object. 0, or -1 (out of memory;
 * c is unchanged and still plain). */
int tls_server_attach(struct conn *c, const struct tls_server *ts);

/* Makes c (connected or connecting to srv, a server of the backend tc belongs to) a TLS
 * client connection offering SNI, ALPN and the last session this worker had with srv.
 * The session the handshake yields is kept for next time. 0, or -1 (out of memory). */
int tls_client_attach(struct conn *c, struct tls_client *tc, const struct server *srv,
                      unsigned worker_id);

/* Offers `alpn` (wire format: length-prefixed names) on c, attached by tls_client_attach and
 * not yet handshaken, instead of its backend's list (the gRPC health check asks for h2).
 * 0, or -1 (no memory). */
int tls_client_offer_alpn(struct conn *c, const unsigned char *alpn, unsigned len);

/* Why the last handshake step of c failed (TLS_FAIL_NONE if it did not, or c is plain). */
enum tls_fail tls_last_fail(const struct conn *c);

/* The peer's certificate subject, RFC 2253 one-line ("CN=client,O=Example"), or its
 * SHA-256 fingerprint as 64 lowercase hex digits. Length written (without the NUL), or
 * -1 when there is no peer certificate or `len` is too small. (xprt_info carries both
 * too, for a verified peer.) */
int xprt_tls_peer_subject(const struct conn *c, char *buf, size_t len);
int xprt_tls_peer_fingerprint(const struct conn *c, char *hex, size_t len);

/* ---- session tickets ---- */

/* Rotates the ticket keys of every listener whose `ticket_rotate` period has passed
 * (now: mono_ms()). The previous key keeps decrypting (its tickets are renewed) for one
 * more period. Thread-safe; call it from one timer. */
void tls_tickets_rotate(uint64_t now_ms);

#endif
