/* tls_int.h — what the files of src/tls share and nothing else includes: the algorithms
 * fetched once, the ex_data indexes, the per-connection state word, the ticket ring. */
#ifndef STRATA_TLS_TLS_INT_H
#define STRATA_TLS_TLS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tls/tls.h"

/* Fetched once by tls_global_init() and kept for the process: fetching on every
 * handshake takes OpenSSL 3.0's global method-store locks, which is what makes it scale
 * badly across threads. */
struct tls_algs {
    EVP_CIPHER *aes_256_cbc; /* ticket encryption */
    EVP_MD *sha256;          /* peer certificate fingerprints */
};
extern struct tls_algs tls_algs;
extern int tls_ctx_index;  /* SSL_CTX ex_data: the struct tls_server / tls_client */
extern int tls_peer_index; /* SSL ex_data: the peer's subject and fingerprint, made on
                            * the first info() that needs them; freed with the SSL */

/* The per-connection state lives in the SSL's app data word (no allocation besides the
 * SSL): the failure reason, flags, and an index (server: the certificate chosen, in the
 * store; client: the session slot), stored plus one so that 0 means none. */
enum {
    TLS_ST_FAIL_MASK = 0xff,
    TLS_ST_CLOSE_SENT = 1 << 8,  /* close_notify sent (shutdown_wr) */
    TLS_ST_PEEKED = 1 << 9,      /* server: the first byte read was looked at (tls_ctx.c) */
    TLS_ST_FATAL = 1 << 10,      /* a fatal error happened: no close_notify */
    TLS_ST_READ = 1 << 11,       /* the socket BIO read since the flag was last cleared */
    TLS_ST_SHORT_READ = 1 << 12, /* its last read returned less than asked: socket drained */
    TLS_ST_HS_WAIT_RD = 1 << 13, /* the handshake waits for the socket to be readable */
    TLS_ST_HS_WAIT_WR = 1 << 14, /* ... writable */
    TLS_ST_NOT_TLS = 1 << 15,    /* server: that byte was not a handshake record (plaintext) */
    TLS_ST_GATHER = 1 << 16,     /* writes are gathered, not sent (tls_ctx.c) */
    TLS_ST_RD_HUP = 1 << 17,     /* the peer's FIN was seen (CONN_RD_HUP): reads must see EOF */
    TLS_ST_INDEX_SHIFT = 18,
};

static inline uintptr_t tls_state(const SSL *s)
{
    return (uintptr_t)SSL_get_app_data(s);
}

static inline void tls_state_set(SSL *s, uintptr_t v)
{
    SSL_set_app_data(s, (void *)v);
}

static inline uint32_t tls_state_index(const SSL *s)
{
    return (uint32_t)(tls_state(s) >> TLS_ST_INDEX_SHIFT); /* 0: none, else index + 1 */
}

/* Gives s a socket BIO on fd that notes in s's state whether its last read drained the
 * socket (TLS_ST_READ, TLS_ST_SHORT_READ) and, while TLS_ST_GATHER is set, gathers what
 * OpenSSL writes instead of sending it. 0, or -1 (out of memory). */
int tls_set_socket(SSL *s, int fd);
/* Sends what was gathered: 1 all sent (or nothing gathered), 0 some left (the socket is
 * full: call again when it is writable), -1 failed (errno). */
int tls_send_gathered(SSL *s, int fd);
bool tls_has_gathered(SSL *s);

/* tickets.c */
struct tls_ticket_ring *tls_ticket_ring_new(uint32_t interval_ms);
void tls_ticket_ring_free(struct tls_ticket_ring *r);
int tls_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ectx,
                  EVP_MAC_CTX *hctx, int enc);

/* tls_ctx.c: settings common to server and client contexts. 0 or -1 with *err. */
int tls_ctx_versions(SSL_CTX *ctx, int min, int max, struct tls_error *err);
int tls_ctx_ciphers(SSL_CTX *ctx, const char *ciphers, const char *suites, struct tls_error *err);
int tls_ctx_curves(SSL_CTX *ctx, const char *curves, struct tls_error *err);
void tls_set_err(struct tls_error *err, enum tls_field f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
