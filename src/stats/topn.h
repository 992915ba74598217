/* topn.h — heavy hitters with a fixed memory budget: the space-saving algorithm (Metwally,
 * Agrawal, El Abbadi 2005) over TOPN_K counters per table. Any key whose true count is
 * above total/TOPN_K is in the table; a count is over-estimated by at most `err`.
 *
 * A table is a plain value (no pointers): it can be copied, reset and merged. The seven
 * tables of one time window make a `struct topn_set`. One writer at a time: the callers
 * (stats/analytics.c) keep one set per worker and window.
 */
#ifndef STRATA_STATS_TOPN_H
#define STRATA_STATS_TOPN_H

#include <stddef.h>
#include <stdint.h>

#define TOPN_K 64       /* counters per table */
#define TOPN_KEY_MAX 64 /* key bytes kept (longer keys are cut) */
#define TOPN_INDEX 128  /* slots of a table's hash index (a power of two, >= 2 * TOPN_K) */

enum topn_table {
    TOPN_PATHS,         /* normalised path (topn_path_normalise) */
    TOPN_CLIENTS,       /* client address: 4 or 16 raw bytes */
    TOPN_USER_AGENTS,   /* User-Agent field */
    TOPN_HOSTS,         /* authority without the port, lowercased */
    TOPN_API_KEYS,      /* the configured API-key field's value */
    TOPN_STATUS_ROUTES, /* "404 route#1" */
    TOPN_COUNTRIES,     /* ISO 3166 code, when geo is on */
    TOPN_TABLES
};

struct topn_table_s {
    uint32_t n;     /* counters in use */
    uint64_t floor; /* no count is below this (counts only grow): ends the search for the
                       smallest early */
    uint8_t index[TOPN_INDEX]; /* open addressing on hash: counter + 1, 0 = empty */
    uint32_t hash[TOPN_K];
    uint64_t count[TOPN_K]; /* requests (over-estimated by at most err) */
    uint64_t err[TOPN_K];
    uint64_t bytes[TOPN_K]; /* request + response bytes since the key got its counter */
    uint8_t len[TOPN_K];
    char key[TOPN_K][TOPN_KEY_MAX];
};

struct topn_set {
    struct topn_table_s t[TOPN_TABLES];
};

/* One entry as read out. */
struct topn_item {
    const char *key;
    uint32_t len;
    uint64_t count, bytes;
};

void topn_table_reset(struct topn_table_s *t);
void topn_set_reset(struct topn_set *s);
/* Counts one occurrence of key[0..len) (cut at TOPN_KEY_MAX) carrying `bytes`. */
void topn_add(struct topn_table_s *t, const char *key, size_t len, uint64_t bytes);
/* Adds src's counters into dst (keys in both add up; new keys take free counters, or the
 * smallest one when src's count is larger). */
void topn_merge(struct topn_table_s *dst, const struct topn_table_s *src);
void topn_set_merge(struct topn_set *dst, const struct topn_set *src);
/* The up to n largest counters of t, largest first, into out[n]; returns how many. */
uint32_t topn_top(const struct topn_table_s *t, uint32_t n, struct topn_item *out);

/* Writes path[0..len) into out[cap] with every segment that is an id — all digits, a
 * UUID, or 16+ hex digits — replaced by "{id}", cut to cap - 1 bytes and NUL-terminated.
 * Returns the length written. */
size_t topn_path_normalise(const char *path, size_t len, char *out, size_t cap);

#endif
