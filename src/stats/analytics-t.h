/* analytics-t.h — the configuration of traffic analytics and geolocation (`analytics:`
 * and `geo:` at the top level). Types only.
 */
#ifndef STRATA_STATS_ANALYTICS_T_H
#define STRATA_STATS_ANALYTICS_T_H

#include <stdbool.h>
#include <stdint.h>

#include "stats/geo-t.h"

struct geo_db;

struct analytics_conf {
    bool enabled;         /* top-N tables fed by every request (trends always run) */
    char *api_key_header; /* lowercased field name whose values make the api_keys table */
    uint32_t api_key_len;
    char *geo_path;       /* the .mmdb file (geo.database); NULL = geo off */
    struct geo_db *geo;   /* opened at load when geo_path is set */
};

#endif
