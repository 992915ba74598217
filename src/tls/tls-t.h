/* tls-t.h — TLS types (no prototypes): what the configuration builds for a listener
 * (`struct tls_server`) and for a backend (`struct tls_client`), the reasons a handshake
 * fails, and the parsed `tls:` sections they are built from.
 *
 * Both objects are built once at configuration load (schema_tls.c), hang off the
 * immutable snapshot (listener_conf->tls, backend->tls) and are freed with it. Their
 * SSL_CTX is shared by every worker thread (OpenSSL makes that safe); the only mutable
 * parts are the ticket key ring (tickets.c, its own lock) and the client session cache
 * (one slot per worker and server, written by that worker only).
 */
#ifndef STRATA_TLS_TLS_T_H
#define STRATA_TLS_TLS_T_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/types.h>

/* Why a handshake failed; the names (tls_fail_reasons[]) label a /metrics counter. */
enum tls_fail {
    TLS_FAIL_NONE,          /* no failure (yet) */
    TLS_FAIL_NOT_TLS,       /* the first byte is not a TLS handshake record (plaintext) */
    TLS_FAIL_NO_SHARED,     /* no shared cipher, version, group or signature algorithm */
    TLS_FAIL_BAD_CERT,      /* the peer's certificate did not verify */
    TLS_FAIL_CERT_REQUIRED, /* mTLS: the client sent no certificate */
    TLS_FAIL_PEER_ALERT,    /* the peer ended the handshake with an alert */
    TLS_FAIL_HANDSHAKE,     /* anything else: malformed messages, internal errors */
    TLS_FAIL_EOF,           /* the peer closed (or reset) in the middle of the handshake */
    TLS_FAIL_COUNT
};

/* A plaintext exchange before the handshake (`starttls`, mode tcp listeners). */
enum tls_starttls {
    TLS_STARTTLS_NONE,
    TLS_STARTTLS_POSTGRES, /* PostgreSQL's SSLRequest, answered 'S' (net/stage.c) */
};

/* TLS protocol versions, as the wire numbers OpenSSL uses (TLS1_2_VERSION...). */
enum tls_version { TLS_VER_1_2 = 0x0303, TLS_VER_1_3 = 0x0304 };

/* listeners[].tls.certificates[]: paths as written (relative ones are resolved against
 * the configuration file's directory when loaded). */
struct tls_cert_conf {
    char *cert;              /* PEM: the certificate, then its chain */
    char *key;               /* PEM private key matching it */
    char *ocsp;              /* DER OCSP response stapled to handshakes; NULL = none */
    struct tls_cert *loaded; /* built by the item's finish hook; moved to the store */
};

struct tls_client_auth_conf {
    bool enabled;
    char *ca;      /* PEM CAs that client certificates must chain to */
    bool required; /* false: verified when presented, but optional */
};

/* listeners[].tls as parsed. */
struct tls_server_conf {
    struct tls_cert_conf *certs;
    uint32_t ncerts;
    unsigned char *alpn; /* ALPN wire format (length-prefixed names); NULL = none */
    uint32_t alpn_len;
    bool alpn_given;              /* `alpn` was written (else the mode's default applies) */
    int min_version, max_version; /* enum tls_version */
    char *ciphers, *ciphersuites, *curves;
    bool session_tickets;
    uint32_t ticket_rotate_ms;
    uint32_t session_cache; /* server-side cache entries; 0 = off */
    uint32_t handshake_timeout_ms;
    int starttls; /* enum tls_starttls */
    struct tls_client_auth_conf client_auth;
};

/* backends.<name>.tls as parsed. */
struct tls_client_conf {
    char *ca;         /* NULL: the system store */
    bool verify;      /* verify the server's certificate (chain and name) */
    char *sni;        /* NULL: the server's host when it is a name, none for an IP */
    char *cert, *key; /* client certificate for mTLS to servers; NULL = none */
    unsigned char *alpn;
    uint32_t alpn_len;
    int min_version, max_version;
    char *ciphers, *ciphersuites;
};

/* One loaded certificate: leaf, chain, key, the names it serves and its OCSP response.
 * Immutable once loaded. */
struct tls_cert {
    X509 *x509;
    EVP_PKEY *pkey;
    STACK_OF(X509) * chain; /* intermediates after the leaf in the PEM file; may be NULL */
    bool ecdsa;             /* EC key (else RSA or another type used as RSA-like) */
    char **names;           /* lowercase DNS names: SAN entries, or the CN without SAN */
    uint32_t nnames;
    unsigned char *ocsp; /* DER OCSP response; NULL = none */
    uint32_t ocsp_len;
};

/* The certificates of a listener, indexed for SNI (cert_store.c). certs[0] (with its
 * ECDSA/RSA twin, if any) is the default for clients sending no or an unknown name. */
struct tls_cert_store {
    struct tls_cert **certs; /* owned, in configuration order */
    uint32_t ncerts;
};

/* The session-ticket key ring of a listener (tickets.c). */
struct tls_ticket_ring;

struct tls_server {
    SSL_CTX *ctx; /* one per listener, shared by all workers */
    struct tls_cert_store store;
    struct tls_ticket_ring *tickets; /* NULL: session_tickets off */
    unsigned char *alpn;             /* server preference order, wire format; NULL = none */
    uint32_t alpn_len;
    uint32_t handshake_timeout_ms;
    enum tls_starttls starttls;
    bool client_auth, client_auth_required;
};

struct tls_client {
    SSL_CTX *ctx; /* one per backend, shared by all workers */
    char *sni;    /* explicit `sni`, or NULL */
    bool verify;
    /* Session reuse: the last session of each (worker, server of the backend), at
     * sessions[worker_id * nservers + server->index]. Each slot is read and written by
     * its worker only, so the data path takes no lock. */
    struct ssl_session_st **sessions; /* SSL_SESSION */
    uint32_t nworkers, nservers;
};

#endif
