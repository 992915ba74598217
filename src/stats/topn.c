/* topn.c — see topn.h. Tables are small (TOPN_K counters): lookups and the search for the
 * smallest counter are linear scans over contiguous arrays, which beats a heap or a hash
 * index at this size and keeps a table a plain copyable value. */
#include "stats/topn.h"

#include <stdbool.h>
#include <string.h>

#include "core/hash.h"

void topn_table_reset(struct topn_table_s *t)
{
    t->n = 0;
}

void topn_set_reset(struct topn_set *s)
{
    for (int i = 0; i < TOPN_TABLES; i++)
        topn_table_reset(&s->t[i]);
}

static int find(const struct topn_table_s *t, uint32_t h, const char *key, size_t len)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->hash[i] == h && t->len[i] == len && memcmp(t->key[i], key, len) == 0)
            return (int)i;
    return -1;
}

static uint32_t smallest(const struct topn_table_s *t)
{
    uint32_t m = 0;
    for (uint32_t i = 1; i < t->n; i++)
        if (t->count[i] < t->count[m])
            m = i;
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
    }
    put(t, j, h, key, len);
    t->count[j] += c;
    t->err[j] += e;
    t->bytes[j] = b;
}

void topn_add(struct topn_table_s *t, const char *key, size_t len, uint64_t bytes)
{
    if (len > TOPN_KEY_MAX)
        len = TOPN_KEY_MAX;
    count(t, (uint32_t)hash64(key, len, 0), key, len, 1, 0, bytes, true);
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
