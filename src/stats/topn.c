/* topn.c — see topn.h. A key is found through a small open-addressing index (linear
 * probing, deletion by backward shift); the smallest counter, needed only when a new key
 * takes a full table's place, by a scan that stops at the known floor. Everything lives
 * inside the table, so a table stays a plain copyable value. */
#include "stats/topn.h"

#include <stdbool.h>
#include <string.h>


#define INDEX_MASK (TOPN_INDEX - 1)
_Static_assert((TOPN_INDEX & INDEX_MASK) == 0 && TOPN_INDEX >= 2 * TOPN_K && TOPN_K < 255,
               "the index is a power of two, at most half full, of 8-bit entries");

void topn_table_reset(struct topn_table_s *t)
{
    t->n = 0;
    t->floor = 0;
    memset(t->index, 0, sizeof(t->index));
}

/* A hash of the key, eight bytes at a time (keys are short: paths, addresses, names). */
static uint32_t key_hash(const char *key, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, key + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(h ^ (h >> 29));
}

void topn_set_reset(struct topn_set *s)
{
    for (int i = 0; i < TOPN_TABLES; i++)
        topn_table_reset(&s->t[i]);
}

static int find(const struct topn_table_s *t, uint32_t h, const char *key, size_t len)
{
    for (uint32_t s = h & INDEX_MASK; t->index[s]; s = (s + 1) & INDEX_MASK) {
        uint32_t i = t->index[s] - 1u;
        if (t->hash[i] == h && t->len[i] == len && memcmp(t->key[i], key, len) == 0)
            return (int)i;
    }
    return -1;
}

static void index_add(struct topn_table_s *t, uint32_t i)
{
    uint32_t s = t->hash[i] & INDEX_MASK;
    while (t->index[s])
        s = (s + 1) & INDEX_MASK;
    t->index[s] = (uint8_t)(i + 1);
}

/* Removes counter i from the index, moving back the entries its slot kept from home. */
static void index_del(struct topn_table_s *t, uint32_t i)
{
    uint32_t s = t->hash[i] & INDEX_MASK;
    while (t->index[s] != i + 1)
        s = (s + 1) & INDEX_MASK;
    for (uint32_t j = (s + 1) & INDEX_MASK; t->index[j]; j = (j + 1) & INDEX_MASK) {
        uint32_t home = t->hash[t->index[j] - 1u] & INDEX_MASK;
        /* j's entry may move to s unless its home lies cyclically in (s, j] */
        bool stays = s <= j ? (home > s && home <= j) : (home > s || home <= j);
        if (!stays) {
            t->index[s] = t->index[j];
            s = j;
        }
    }
    t->index[s] = 0;
}

static uint32_t smallest(struct topn_table_s *t)
{
    uint32_t m = 0;
    for (uint32_t i = 1; i < t->n && t->count[m] > t->floor; i++)
        if (t->count[i] < t->count[m])
            m = i;
    t->floor = t->count[m];
    return m;
}

static void put(struct topn_table_s *t, uint32_t i, uint32_t h, const char *key, size_t len)
{
    t->hash[i] = h;
    t->len[i] = (uint8_t)len;
    memcpy(t->key[i], key, len);
}

/* Counts c (error e, bytes b) for key: its counter, a free one, or the smallest one when
 * `evict` allows (space-saving: the newcomer inherits the smallest count as its error). */
static void count(struct topn_table_s *t, uint32_t h, const char *key, size_t len, uint64_t c,
                  uint64_t e, uint64_t b, bool evict)
{
    int i = find(t, h, key, len);
    if (i >= 0) {
        t->count[i] += c;
        t->err[i] += e;
        t->bytes[i] += b;
        return;
    }
    uint32_t j;
    if (t->n < TOPN_K) {
        j = t->n++;
        t->count[j] = 0;
        t->err[j] = 0;
    } else {
        j = smallest(t);
        if (!evict && t->count[j] >= c)
            return;
        t->err[j] = t->count[j];
        index_del(t, j);
    }
    put(t, j, h, key, len);
    index_add(t, j);
    t->count[j] += c;
    t->err[j] += e;
    t->bytes[j] = b;
}

void topn_add(struct topn_table_s *t, const char *key, size_t len, uint64_t bytes)
{
    if (len > TOPN_KEY_MAX)
        len = TOPN_KEY_MAX;
    count(t, key_hash(key, len), key, len, 1, 0, bytes, true);
}

void topn_merge(struct topn_table_s *dst, const struct topn_table_s *src)
{
    for (uint32_t i = 0; i < src->n; i++)
        count(dst, src->hash[i], src->key[i], src->len[i], src->count[i], src->err[i],
              src->bytes[i], false);
}

void topn_set_merge(struct topn_set *dst, const struct topn_set *src)
{
    for (int i = 0; i < TOPN_TABLES; i++)
        topn_merge(&dst->t[i], &src->t[i]);
}

uint32_t topn_top(const struct topn_table_s *t, uint32_t n, struct topn_item *out)
{
    bool taken[TOPN_K] = {false};
    uint32_t k = 0;
    for (; k < n && k < t->n; k++) {
        int best = -1;
        for (uint32_t i = 0; i < t->n; i++)
            if (!taken[i] && (best < 0 || t->count[i] > t->count[best]))
                best = (int)i;
        taken[best] = true;
        out[k] = (struct topn_item){t->key[best], t->len[best], t->count[best], t->bytes[best]};
    }
    return k;
}

/* ---- path normalisation ---- */

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_hex(s[i]))
            return false;
    return true;
}

/* 8-4-4-4-12 hex digits */
static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

static bool is_id(const char *s, size_t n)
{
    return all_digits(s, n) || is_uuid(s, n) || (n >= 16 && all_hex(s, n));
}

size_t topn_path_normalise(const char *path, size_t len, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    if (!cap)
        return 0;
    while (i < len && o + 1 < cap) {
        if (path[i] == '/') {
            out[o++] = '/';
            i++;
            continue;
        }
        const char *seg = path + i;
        const char *slash = memchr(seg, '/', len - i);
        size_t n = slash ? (size_t)(slash - seg) : len - i;
        const char *w = is_id(seg, n) ? "{id}" : seg;
        size_t wn = w == seg ? n : 4;
        if (wn > cap - 1 - o)
            wn = cap - 1 - o;
        memcpy(out + o, w, wn);
        o += wn;
        i += n;
    }
    out[o] = 0;
    return o;
}
