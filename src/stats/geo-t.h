/* geo-t.h — types of the client geolocation (stats/geo.h): what a lookup tells, and sets of
 * country or continent codes that routes and ACLs match. Types only.
 */
#ifndef STRATA_STATS_GEO_T_H
#define STRATA_STATS_GEO_T_H

#include <stdbool.h>
#include <stdint.h>

/* What the database says of one address. Codes are two upper-case letters, or "" when
 * unknown (no database, a private address, a record without the field). */
struct geo_info {
    char country[3];   /* ISO 3166-1 alpha-2: "FR" */
    char continent[3]; /* "AF" "AN" "AS" "EU" "NA" "OC" "SA" */
    uint32_t asn;      /* autonomous system number, 0 = unknown */
};

/* A set of two-letter codes (AA..ZZ), one bit each. */
struct geo_codes {
    uint8_t bits[(26 * 26 + 7) / 8];
    uint32_t count; /* codes in the set; 0 = the set was not given */
};

/* A route's or an ACL's geo condition: the client's country in `countries` or its
 * continent in `continents` (each only when given). */
struct geo_match {
    struct geo_codes countries, continents;
};

/* An L4 ACL on countries (listeners[].acl.allow_countries / deny_countries): deny wins;
 * with an allow list, an address of unknown country is refused. */
struct geo_acl {
    struct geo_codes allow, deny;
};

#endif
