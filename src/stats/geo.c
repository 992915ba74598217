/* geo.c — see geo.h. */
#include "stats/geo.h"

#include <maxminddb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/logbuf.h"

struct geo_db {
    MMDB_s mmdb;
    uint64_t id; /* distinguishes databases in the threads' caches */
};

static _Atomic uint64_t next_id = 1;

struct geo_db *geo_open(const char *path, char *err, size_t errlen)
{
    struct geo_db *db = calloc(1, sizeof(*db));
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
    if (rc != MMDB_SUCCESS) {
        snprintf(err, errlen, "%s: %s", path,
                 rc == MMDB_IO_ERROR ? "cannot open or read the file" : MMDB_strerror(rc));
        free(db);
        return NULL;
    }
    db->id = next_id++;
    return db;
}

void geo_close(struct geo_db *db)
{
    if (!db)
        return;
    MMDB_close(&db->mmdb);
    free(db);
}

/* Copies a two-letter string field at path into out[3] (upper-cased); "" otherwise. */
static void code_of(MMDB_entry_s *e, const char *const *path, char out[3])
{
    MMDB_entry_data_s d;
    out[0] = 0;
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
        return;
    for (int i = 0; i < 2; i++) {
        char c = d.utf8_string[i];
        out[i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    out[2] = 0;
    if (geo_code_index(out, 2) < 0)
        out[0] = 0;
}

static uint32_t asn_of(MMDB_entry_s *e)
{
    static const char *const path[] = {"autonomous_system_number", NULL};
    MMDB_entry_data_s d;
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data)
        return 0;
    if (d.type == MMDB_DATA_TYPE_UINT32)
        return d.uint32;
    if (d.type == MMDB_DATA_TYPE_UINT16)
        return d.uint16;
    return 0;
}

static bool lookup_db(const struct geo_db *db, const struct sockaddr_any *a, struct geo_info *out)
{
    static const char *const country[] = {"country", "iso_code", NULL};
    static const char *const registered[] = {"registered_country", "iso_code", NULL};
    static const char *const continent[] = {"continent", "code", NULL};
    int mmerr;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr((MMDB_s *)&db->mmdb, &a->u.sa, &mmerr);
    if (mmerr != MMDB_SUCCESS || !r.found_entry)
        return false;
    code_of(&r.entry, country, out->country);
    if (!out->country[0])
        code_of(&r.entry, registered, out->country);
    code_of(&r.entry, continent, out->continent);
    out->asn = asn_of(&r.entry);
    return true;
}

/* ---- the per-thread cache: direct-mapped on a hash of the address ---- */

#define GEO_CACHE 1024

struct geo_cache_entry {
    uint64_t db_id; /* 0 = empty */
    uint8_t addr[16];
    uint8_t family;
    bool found;
    struct geo_info info;
};

static __thread struct geo_cache_entry *cache;
static pthread_key_t cache_key; /* frees a thread's cache when it exits */
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void)
{
    (void)pthread_key_create(&cache_key, free);
}

static void cache_alloc(void)
{
    cache = calloc(GEO_CACHE, sizeof(*cache)); /* NULL: every lookup goes to the db */
    pthread_once(&cache_once, cache_key_init);
    if (cache)
        pthread_setspecific(cache_key, cache);
}

/* The address bytes of a (4 or 16), or 0 for a non-IP address. */
static size_t addr_bytes(const struct sockaddr_any *a, const uint8_t **p)
{
    if (a->u.sa.sa_family == AF_INET) {
        *p = (const uint8_t *)&a->u.in.sin_addr;
        return 4;
    }
    if (a->u.sa.sa_family == AF_INET6) {
        *p = (const uint8_t *)&a->u.in6.sin6_addr;
        return 16;
    }
    return 0;
}

bool geo_lookup(const struct geo_db *db, const struct sockaddr_any *a, struct geo_info *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *p;
    size_t n = db ? addr_bytes(a, &p) : 0;
    if (!n)
        return false;
    if (!cache)
        cache_alloc();
    struct geo_cache_entry *e = cache ? &cache[hash64(p, n, db->id) % GEO_CACHE] : NULL;
    if (e && e->db_id == db->id && e->family == n && memcmp(e->addr, p, n) == 0) {
        *out = e->info;
        return e->found;
    }
    bool found = lookup_db(db, a, out);
    if (e) {
        e->db_id = db->id;
        e->family = (uint8_t)n;
        memcpy(e->addr, p, n);
        e->found = found;
        e->info = *out;
    }
    return found;
}

void geo_log_fields(struct log_line *l, const struct geo_info *g)
{
    log_cword(l, "country", g->country[0] ? g->country : NULL);
    log_u64(l, "asn", g->asn);
}

/* ---- code sets ---- */

int geo_code_index(const char *s, size_t len)
{
    if (len != 2)
        return -1;
    int v = 0;
    for (int i = 0; i < 2; i++) {
        char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 32) : s[i];
        if (c < 'A' || c > 'Z')
            return -1;
        v = v * 26 + (c - 'A');
    }
    return v;
}

void geo_codes_add(struct geo_codes *c, int index)
{
    if (index < 0 || (c->bits[index / 8] >> (index % 8)) & 1)
        return;
    c->bits[index / 8] |= (uint8_t)(1u << (index % 8));
    c->count++;
}

bool geo_codes_has(const struct geo_codes *c, const char code[3])
{
    int i = geo_code_index(code, code[0] ? 2 : 0);
    return i >= 0 && (c->bits[i / 8] >> (i % 8)) & 1;
}

bool geo_is_continent(const char *s, size_t len)
{
    static const char *const names[] = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (len == 2 && (s[0] & ~0x20) == names[i][0] && (s[1] & ~0x20) == names[i][1])
            return true;
    return false;
}

bool geo_is_country(const char *s, size_t len)
{
    /* ISO 3166-1 alpha-2 (Debian's iso-codes), and XK (Kosovo) as MaxMind's databases use it */
    static const char codes[] =
        "ADAEAFAGAIALAMAOAQARASATAUAWAXAZBABBBDBEBFBGBHBIBJBLBMBNBOBQBRBSBTBVBWBYBZCACCCD"
        "CFCGCHCICKCLCMCNCOCRCUCVCWCXCYCZDEDJDKDMDODZECEEEGEHERESETFIFJFKFMFOFRGAGBGDGEGF"
        "GGGHGIGLGMGNGPGQGRGSGTGUGWGYHKHMHNHRHTHUIDIEILIMINIOIQIRISITJEJMJOJPKEKGKHKIKMKN"
        "KPKRKWKYKZLALBLCLILKLRLSLTLULVLYMAMCMDMEMFMGMHMKMLMMMNMOMPMQMRMSMTMUMVMWMXMYMZNA"
        "NCNENFNGNINLNONPNRNUNZOMPAPEPFPGPHPKPLPMPNPRPSPTPWPYQARERORSRURWSASBSCSDSESGSHSI"
        "SJSKSLSMSNSOSRSSSTSVSXSYSZTCTDTFTGTHTJTKTLTMTNTOTRTTTVTWTZUAUGUMUSUYUZVAVCVEVGVI"
        "VNVUWFWSXKYEYTZAZMZW";
    if (len != 2)
        return false;
    char a = (char)(s[0] & ~0x20), b = (char)(s[1] & ~0x20);
    for (size_t i = 0; i + 1 < sizeof(codes); i += 2)
        if (codes[i] == a && codes[i + 1] == b)
            return true;
    return false;
}

bool geo_match_holds(const struct geo_match *m, const struct geo_info *g)
{
    if (m->countries.count && !geo_codes_has(&m->countries, g->country))
        return false;
    return !m->continents.count || geo_codes_has(&m->continents, g->continent);
}

bool geo_acl_permits(const struct geo_acl *acl, const struct geo_info *g)
{
    if (acl->deny.count && geo_codes_has(&acl->deny, g->country))
        return false;
    return !acl->allow.count || geo_codes_has(&acl->allow, g->country);
}
