/* tickets.c — session-ticket keys shared by every worker, rotated by a timer.
 *
 * Each listener with `session_tickets` has a ring of two keys: the current one encrypts
 * new tickets, the previous one still decrypts (and its tickets are renewed). A key is a
 * 16-byte name, an AES-256-CBC key and an HMAC-SHA256 key, all random, made at start and
 * at each rotation; they never leave the process.
 *
 * Locking: a pthread rwlock per ring, taken for reading only while a handshake copies a
 * key out (about 100 bytes) and for writing once per rotation. Why not lock-free: a
 * reader needs the name and both keys of one generation together (a torn copy would
 * make undecryptable tickets), and two rotations inside one slow callback must not
 * recycle the slot it reads; an uncontended read lock costs two atomic operations, noise
 * beside a handshake's public-key work, and writers come once an hour.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "core/time.h"
#include "tls/tls_int.h"

struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
};

struct tls_ticket_ring {
    pthread_rwlock_t lock;
    struct ticket_key cur, prev;
    bool has_prev;
    uint64_t interval_ms, next_ms; /* next rotation, mono_ms() */
    struct tls_ticket_ring *next;  /* registry of live rings (tls_tickets_rotate) */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_ticket_ring *registry;

static int new_key(struct ticket_key *k)
{
    return RAND_bytes(k->name, sizeof(k->name)) == 1 && RAND_bytes(k->aes, sizeof(k->aes)) == 1 &&
                   RAND_priv_bytes(k->hmac, sizeof(k->hmac)) == 1
               ? 0
               : -1;
}

struct tls_ticket_ring *tls_ticket_ring_new(uint32_t interval_ms)
{
    struct tls_ticket_ring *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (pthread_rwlock_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    if (new_key(&r->cur) < 0) {
        tls_ticket_ring_free(r);
        return NULL;
    }
    r->interval_ms = interval_ms;
    r->next_ms = mono_ms() + interval_ms;
    pthread_mutex_lock(&registry_lock);
    r->next = registry;
    registry = r;
    pthread_mutex_unlock(&registry_lock);
    return r;
}

void tls_ticket_ring_free(struct tls_ticket_ring *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&registry_lock);
    for (struct tls_ticket_ring **p = &registry; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    pthread_rwlock_destroy(&r->lock);
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}

void tls_tickets_rotate(uint64_t now_ms)
{
    pthread_mutex_lock(&registry_lock);
    for (struct tls_ticket_ring *r = registry; r; r = r->next) {
        struct ticket_key k;
        if (now_ms < r->next_ms || new_key(&k) < 0)
            continue; /* a RAND failure keeps the current key: retried next time */
        pthread_rwlock_wrlock(&r->lock);
        r->prev = r->cur;
        r->has_prev = true;
        r->cur = k;
        pthread_rwlock_unlock(&r->lock);
        OPENSSL_cleanse(&k, sizeof(k));
        r->next_ms = now_ms > UINT64_MAX - r->interval_ms ? UINT64_MAX : now_ms + r->interval_ms;
    }
    pthread_mutex_unlock(&registry_lock);
}

/* Finds the key for a ticket: 1 current, 2 previous (renew the ticket), 0 unknown. */
static int find_key(struct tls_ticket_ring *r, const unsigned char name[16], struct ticket_key *out)
{
    int found = 0;
    pthread_rwlock_rdlock(&r->lock);
    if (memcmp(name, r->cur.name, 16) == 0) {
        *out = r->cur;
        found = 1;
    } else if (r->has_prev && memcmp(name, r->prev.name, 16) == 0) {
        *out = r->prev;
        found = 2;
    }
    pthread_rwlock_unlock(&r->lock);
    return found;
}

/* The HMAC key and digest. The MAC API takes the digest by name, so the provider looks
 * it up in its (cached) method store here; the cipher, by contrast, is fetched once at
 * start (tls_algs.aes_256_cbc) and passed as an object. */
static int mac_init(EVP_MAC_CTX *hctx, const struct ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA2-256", 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_init(hctx, k->hmac, sizeof(k->hmac), params) == 1 ? 0 : -1;
}

/* SSL_CTX_set_tlsext_ticket_key_evp_cb: enc=1 fills name and IV and sets up the cipher
 * and MAC for a new ticket; enc=0 finds the key named by a received ticket. Returns 1
 * (ok), 2 (ok, issue a new ticket), 0 (unknown key: full handshake), -1 (error). */
int tls_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ectx,
                  EVP_MAC_CTX *hctx, int enc)
{
    const struct tls_server *ts = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), tls_ctx_index);
    struct ticket_key k;
    int rc;
    if (!ts || !ts->tickets)
        return -1;
    if (enc) {
        pthread_rwlock_rdlock(&ts->tickets->lock);
        k = ts->tickets->cur;
        pthread_rwlock_unlock(&ts->tickets->lock);
        memcpy(key_name, k.name, 16);
        rc = RAND_bytes(iv, 16) == 1 &&
                     EVP_EncryptInit_ex2(ectx, tls_algs.aes_256_cbc, k.aes, iv, NULL) == 1 &&
                     mac_init(hctx, &k) == 0
                 ? 1
                 : -1;
    } else if ((rc = find_key(ts->tickets, key_name, &k)) > 0) {
        if (EVP_DecryptInit_ex2(ectx, tls_algs.aes_256_cbc, k.aes, iv, NULL) != 1 ||
            mac_init(hctx, &k) < 0)
            rc = -1;
        /* TLS 1.3 clients use a ticket once: a resumed connection must get a new one, and
         * OpenSSL sends it only when asked to renew */
        else if (SSL_version(s) >= TLS1_3_VERSION)
            rc = 2;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}
