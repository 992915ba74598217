/* geo.h — client geolocation from a MaxMind-format database (.mmdb, libmaxminddb): the
 * country and continent codes and, when the database has them, the autonomous system
 * number. The file is mapped once when the configuration loads and only read afterwards,
 * so any number of threads look up at once; each thread keeps a small cache of recent
 * addresses (a keep-alive connection's requests cost one lookup).
 */
#ifndef STRATA_STATS_GEO_H
#define STRATA_STATS_GEO_H

#include <stdbool.h>
#include <stddef.h>

#include "net/addr.h"
#include "stats/geo-t.h"

struct geo_db;

/* Opens and maps path. NULL with a reason in err ("cannot open: ...", "not a MaxMind
 * database"). */
struct geo_db *geo_open(const char *path, char *err, size_t errlen);
void geo_close(struct geo_db *db);

/* Fills *out for address a (db NULL, no record, a non-IP address: every field unknown).
 * Returns true when a record was found. */
bool geo_lookup(const struct geo_db *db, const struct sockaddr_any *a, struct geo_info *out);

/* Two ASCII letters (any case) → an index 0..675, or -1. */
int geo_code_index(const char *s, size_t len);
void geo_codes_add(struct geo_codes *c, int index);
bool geo_codes_has(const struct geo_codes *c, const char code[3]);
/* An assigned ISO 3166-1 alpha-2 country code (any case). */
bool geo_is_country(const char *s, size_t len);
/* The seven continent codes of MaxMind databases. */
bool geo_is_continent(const char *s, size_t len);

struct log_line;
/* Appends `country` (the code, or - when unknown) and `asn` (0 when unknown) to a log
 * line (core/logbuf.h): the access and connection logs when geo is on. */
void geo_log_fields(struct log_line *l, const struct geo_info *g);

/* True when the client of `g` satisfies m (an empty m holds for everyone). */
bool geo_match_holds(const struct geo_match *m, const struct geo_info *g);
/* True when the ACL lets the client of `g` in. */
bool geo_acl_permits(const struct geo_acl *acl, const struct geo_info *g);

#endif
