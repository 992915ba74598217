/* country_trends.h — requests and bytes per client country over time (the trends' rings:
 * one point per second for the last hour, one per minute for the last day), for the
 * busiest TRENDS_COUNTRIES countries and "other", so memory stays fixed whatever the
 * traffic: (TRENDS_COUNTRIES + 1) × 2 series × 5,040 points × 8 bytes, about 720 KiB.
 *
 * The workers count requests and bytes per country code (676 codes) in their own blocks
 * (analytics_record); the control thread folds the process totals in once a second. A
 * country takes a slot when one is free, or from the slot whose country has the lowest
 * recent rate (an average over about a minute) once it has twice that rate (one such
 * change a second at most, for the busiest country without a slot); the evicted
 * country's points move into "other", so at every point the slots and "other" add up to
 * the requests of known countries. One thread owns a struct country_trends.
 */
#ifndef STRATA_STATS_COUNTRY_TRENDS_H
#define STRATA_STATS_COUNTRY_TRENDS_H

#include <stdbool.h>
#include <stdint.h>

#include "stats/trends.h"

#define TRENDS_COUNTRIES 8
#define GEO_CODES (26 * 26) /* AA..ZZ, by geo_code_index() */

enum country_measure { CM_REQUESTS, CM_BYTES, CM_COUNT };

/* Series index of slot k's measure m; slot TRENDS_COUNTRIES is "other". */
#define CT_SERIES(k, m) ((k) * CM_COUNT + (m))
#define CT_OTHER TRENDS_COUNTRIES

struct country_trends {
    struct trend_ring sec, min;              /* CT_SERIES(slot, measure) */
    int16_t slot_country[TRENDS_COUNTRIES];  /* code index, -1 = free */
    int16_t slot_of[GEO_CODES];              /* slot, -1 = in "other" */
    float rate[GEO_CODES];                   /* requests a second, averaged */
    uint64_t last[GEO_CODES][CM_COUNT];      /* the totals at the previous fold */
    uint64_t delta[GEO_CODES][CM_COUNT];     /* a fold's scratch */
};

int country_trends_init(struct country_trends *t);
void country_trends_free(struct country_trends *t);

/* Folds the process totals (requests and bytes per code, never going down) into the second
 * closed at now_ms and its minute, as trends_fold does. */
void country_trends_fold(struct country_trends *t, const uint64_t totals[GEO_CODES][CM_COUNT],
                         int64_t now_ms);

/* The two-letter code of slot k ("" when free) into code[3]. */
void country_trends_code(const struct country_trends *t, unsigned k, char code[3]);

#endif
