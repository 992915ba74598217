/* basic_auth.c — the basic_auth filter: `Authorization: Basic` (RFC 7617) checked against the
 * users of an htpasswd file with crypt_r(3) (libxcrypt: bcrypt, SHA-256/512-crypt).
 *
 * A bcrypt check costs milliseconds (cost 10: ~50 ms of one core), far more than a request,
 * so each worker remembers the credentials it verified: a direct-mapped table of
 * `cache_size` SHA-256 digests of "user:password" (never the password itself), each valid
 * for `cache_ttl`. A keep-alive client pays the hash once, then one SHA-256 a request.
 * Wrong passwords are not remembered: each one costs its full hash (what slows guessing).
 */
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "core/time.h"
#include "http/filters/auth.h"
#include "http/filters/deny.h"
#include "http/filters/jwk.h"
#include "http/msg.h"

struct basic_slot {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    uint64_t expires_ms; /* 0: empty */
};

struct basic_cache {
    struct basic_slot *slots; /* [cache_size] */
    struct crypt_data *crypt; /* crypt_r's state: ~32 KiB, one per worker */
} __attribute__((aligned(64)));

static int user_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct htpasswd_user *)elem)->name);
}

/* crypt_r of pass with the user's hash as setting; true when it gives the hash again. */
static bool hash_matches(struct crypt_data *cd, const char *hash, const char *pass)
{
    memset(cd, 0, sizeof(*cd));
    const char *out = crypt_r(pass, hash, cd);
    size_t n = strlen(hash);
    return out && out[0] != '*' && strlen(out) == n && CRYPTO_memcmp(out, hash, n) == 0;
}

static struct basic_slot *slot_of(struct basic_cache *bc, uint32_t size,
                                  const unsigned char *digest)
{
    uint32_t h;
    memcpy(&h, digest, sizeof(h));
    return &bc->slots[h % size];
}

/* Whether user:pass (at cred, len) is right: from the worker's cache, else by its hash. */
static bool verify(const struct filter_basic_auth_conf *c, unsigned worker, const char *cred,
                   size_t len, char *user, const char *pass)
{
    const struct htpasswd_user *u = bsearch(user, c->users, c->nusers, sizeof(*c->users), user_cmp);
    /* an unknown user costs a hash too (the first user's, never a match), so the time of
     * an answer does not tell which users exist */
    bool known = u != NULL;
    if (!known)
        u = &c->users[0];
    struct basic_cache *bc = c->caches && worker < c->nworkers ? &c->caches[worker] : NULL;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    struct basic_slot *s = NULL;
    uint64_t now = mono_ms();
    if (known && bc && c->cache_size) {
        SHA256((const unsigned char *)cred, len, digest);
        s = slot_of(bc, c->cache_size, digest);
        if (s->expires_ms > now && CRYPTO_memcmp(s->digest, digest, sizeof(digest)) == 0)
            return true;
    }
    struct crypt_data *cd = bc ? bc->crypt : malloc(sizeof(*cd));
    bool ok = cd && hash_matches(cd, u->hash, pass) && known;
    if (!bc)
        free(cd);
    if (ok && s) {
        memcpy(s->digest, digest, sizeof(digest));
        s->expires_ms = now + c->cache_ttl_ms;
    }
    return ok;
}

static enum filter_verdict refuse(struct http_txn *t, const struct filter_basic_auth_conf *c,
                                  const char *why, enum http_filter_event ev)
{
    enum filter_verdict v = filter_deny(t, 401, why, ev);
    struct hstr h = v == FILTER_ANSWER
                        ? arena_printf(&t->arena, "Basic realm=\"%s\", charset=\"UTF-8\"", c->realm)
                        : (struct hstr){NULL, 0};
    if (v == FILTER_ANSWER &&
        (!h.p || http_hdr_add(&t->resp, &t->arena, HSTR_LIT("WWW-Authenticate"), h) < 0))
        return FILTER_ERROR;
    return v;
}

static enum filter_verdict on_request(struct http_txn *t, const void *conf)
{
    const struct filter_basic_auth_conf *c = conf;
    if (c->user_header)
        http_hdr_remove(&t->req, hstr_c(c->user_header));
    struct hstr v = http_hdr_get(&t->req, HSTR_LIT("Authorization"));
    if (!v.p || v.len < 6 || strncasecmp(v.p, "Basic ", 6) != 0)
        return refuse(t, c, "no basic credentials", HFE_BASIC_MISSING);
    const char *b64 = v.p + 6;
    size_t blen = v.len - 6;
    while (blen && *b64 == ' ') {
        b64++;
        blen--;
    }
    char *cred = arena_alloc(&t->arena, blen * 3 / 4 + 2);
    long n = cred && blen <= 4096 ? b64_decode((const char *)b64, blen, (unsigned char *)cred) : -1;
    char *colon = n > 0 ? memchr(cred, ':', (size_t)n) : NULL;
    if (!colon || memchr(cred, '\0', (size_t)n))
        return refuse(t, c, "malformed basic credentials", HFE_BASIC_INVALID);
    cred[n] = '\0';
    char *user = arena_alloc(&t->arena, (size_t)(colon - cred) + 1);
    if (!user)
        return FILTER_ERROR;
    memcpy(user, cred, (size_t)(colon - cred));
    user[colon - cred] = '\0';
    if (!verify(c, t->worker, cred, (size_t)n, user, colon + 1))
        return refuse(t, c, "wrong user or password", HFE_BASIC_INVALID);
    filter_count(t, HFE_BASIC_OK);
    if (c->user_header &&
        http_hdr_set(&t->req, &t->arena, hstr_c(c->user_header), hstr_c(user)) < 0)
        return FILTER_ERROR;
    if (!c->forward_credentials)
        http_hdr_remove(&t->req, HSTR_LIT("Authorization"));
    return FILTER_CONTINUE;
}

/* Per-worker caches; freed with the configuration (basic_auth_release). */
static int start(const void *conf, unsigned nworkers, char *err, size_t errlen)
{
    struct filter_basic_auth_conf *c = (struct filter_basic_auth_conf *)conf;
    if (c->caches)
        return 0;
    c->caches = calloc(nworkers, sizeof(*c->caches));
    bool ok = c->caches != NULL;
    for (unsigned i = 0; ok && i < nworkers; i++) {
        c->caches[i].slots = calloc(c->cache_size ? c->cache_size : 1, sizeof(struct basic_slot));
        c->caches[i].crypt = malloc(sizeof(struct crypt_data));
        ok = c->caches[i].slots && c->caches[i].crypt;
    }
    c->nworkers = nworkers;
    if (!ok) {
        snprintf(err, errlen, "basic_auth: out of memory");
        return -1;
    }
    return 0;
}

static bool hash_supported(const char *h)
{
    static const char *const kinds[] = {"$2y$", "$2b$", "$2a$", "$5$", "$6$"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strncmp(h, kinds[i], strlen(kinds[i])) == 0)
            return true;
    return false;
}

static int user_sort(const void *a, const void *b)
{
    return strcmp(((const struct htpasswd_user *)a)->name, ((const struct htpasswd_user *)b)->name);
}

int htpasswd_parse(struct filter_basic_auth_conf *c, char *text, char *why, size_t whylen)
{
    unsigned line = 0;
    /* strsep, not strtok: blank lines count in the line numbers of messages */
    for (char *rest = text, *l; (l = strsep(&rest, "\n"));) {
        line++;
        size_t len = strlen(l);
        if (len && l[len - 1] == '\r')
            l[--len] = '\0';
        if (!len || l[0] == '#')
            continue;
        char *colon = strchr(l, ':');
        if (!colon || colon == l) {
            snprintf(why, whylen, "line %u: expected user:hash", line);
            return -1;
        }
        *colon = '\0';
        if (!hash_supported(colon + 1)) {
            snprintf(why, whylen,
                     "line %u (user %s): unsupported hash: use bcrypt (htpasswd -B) or "
                     "SHA-256/512-crypt ($5$, $6$)",
                     line, l);
            return -1;
        }
        struct htpasswd_user *u = realloc(c->users, (c->nusers + 1) * sizeof(*u));
        if (!u) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
        c->users = u;
        u = &c->users[c->nusers];
        u->name = strdup(l);
        u->hash = strdup(colon + 1);
        c->nusers++;
        if (!u->name || !u->hash) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    }
    if (!c->nusers) {
        snprintf(why, whylen, "no users");
        return -1;
    }
    qsort(c->users, c->nusers, sizeof(*c->users), user_sort);
    for (uint32_t i = 1; i < c->nusers; i++) {
        if (strcmp(c->users[i - 1].name, c->users[i].name) == 0) {
            snprintf(why, whylen, "user %s is listed twice", c->users[i].name);
            return -1;
        }
    }
    return 0;
}

void basic_auth_release(struct filter_basic_auth_conf *c)
{
    for (unsigned i = 0; c->caches && i < c->nworkers; i++) {
        free(c->caches[i].slots);
        free(c->caches[i].crypt);
    }
    free(c->caches);
    c->caches = NULL;
    for (uint32_t i = 0; c->users && i < c->nusers; i++) {
        free(c->users[i].name);
        free(c->users[i].hash);
    }
    free(c->users);
    c->users = NULL;
}

const struct filter_ops filter_basic_auth = {
    .name = "basic_auth",
    .on_request = on_request,
    .start = start,
};
