/* test_country_trends.c — requests and bytes per country over time (stats/country_trends.h):
 * the first countries take the slots and the rest go to "other", a clearly busier
 * newcomer takes the weakest slot and the evicted country's history moves into "other"
 * (the sums never change), the memory is fixed; and analytics_record feeds it from the
 * workers (stats/analytics.h).
 */
#include <stdlib.h>
#include <string.h>

#include "stats/analytics.h"
#include "stats/country_trends.h"
#include "stats/geo.h"
#include "test.h"

#define T0 1700000000000LL

static uint64_t series_sum(const struct trend_ring *r, unsigned s)
{
    uint64_t *pts = calloc(r->len, sizeof(uint64_t)), n = 0;
    if (!pts)
        return 0;
    trend_points(r, s, r->len, pts);
    for (uint32_t i = 0; i < r->len; i++)
        n += pts[i];
    free(pts);
    return n;
}

/* The slot of country code ("FR"), or -1. */
static int slot_of(const struct country_trends *t, const char *code)
{
    for (unsigned k = 0; k < TRENDS_COUNTRIES; k++) {
        char c[3];
        country_trends_code(t, k, c);
        if (strcmp(c, code) == 0)
            return (int)k;
    }
    return -1;
}

static uint64_t all_requests(const struct trend_ring *r)
{
    uint64_t n = 0;
    for (unsigned k = 0; k <= TRENDS_COUNTRIES; k++)
        n += series_sum(r, CT_SERIES(k, CM_REQUESTS));
    return n;
}

/* Country number i as geo_code_index numbers them: 0 AA, 1 AB, ... 9 AJ. */
static int code(int i)
{
    return i;
}

TEST(country_trends_slots_other_and_eviction)
{
    struct country_trends *t = malloc(sizeof(*t));
    static uint64_t tot[GEO_CODES][CM_COUNT];
    memset(tot, 0, sizeof(tot));
    CHECK(t && country_trends_init(t) == 0);
    /* TRENDS_COUNTRIES + 2 countries, one request each a second for a minute */
    int64_t now = T0;
    for (int s = 0; s < 60; s++, now += 1000) {
        for (int i = 0; i < TRENDS_COUNTRIES + 2; i++) {
            tot[code(i)][CM_REQUESTS] += 1;
            tot[code(i)][CM_BYTES] += 100;
        }
        country_trends_fold(t, tot, now);
    }
    CHECK(slot_of(t, "AA") >= 0 && slot_of(t, "AH") >= 0); /* the first eight */
    CHECK(slot_of(t, "AI") < 0 && slot_of(t, "AJ") < 0);   /* in "other" */
    CHECK_EQ_U64(series_sum(&t->sec, CT_SERIES(slot_of(t, "AA"), CM_REQUESTS)), 60);
    CHECK_EQ_U64(series_sum(&t->sec, CT_SERIES(slot_of(t, "AA"), CM_BYTES)), 6000);
    CHECK_EQ_U64(series_sum(&t->sec, CT_SERIES(CT_OTHER, CM_REQUESTS)), 120);
    CHECK_EQ_U64(series_sum(&t->min, CT_SERIES(CT_OTHER, CM_BYTES)), 12000);
    CHECK_EQ_U64(all_requests(&t->sec), 60 * (TRENDS_COUNTRIES + 2));

    /* "AJ" turns busy (10 a second) while "AA" stops: AJ takes AA's slot once its rate
     * is twice AA's, and AA's minute of history moves into "other" */
    int aa = slot_of(t, "AA");
    for (int s = 0; s < 60; s++, now += 1000) {
        for (int i = 1; i < TRENDS_COUNTRIES + 2; i++)
            tot[code(i)][CM_REQUESTS] += i == 9 ? 10 : 1;
        country_trends_fold(t, tot, now);
    }
    CHECK(slot_of(t, "AA") < 0);
    CHECK(slot_of(t, "AJ") == aa);
    uint64_t want = 60 * (TRENDS_COUNTRIES + 2) + 60 * (TRENDS_COUNTRIES + 10);
    CHECK_EQ_U64(all_requests(&t->sec), want); /* nothing lost or counted twice */
    CHECK_EQ_U64(all_requests(&t->min), want);
    /* AJ's slot holds only what came after it took the slot: less than its 660 */
    uint64_t aj = series_sum(&t->sec, CT_SERIES(aa, CM_REQUESTS));
    CHECK(aj > 0 && aj < 60 + 600);
    /* a quiet newcomer does not evict anyone: "AK" sends one request */
    tot[code(10)][CM_REQUESTS] += 1;
    country_trends_fold(t, tot, now);
    CHECK(slot_of(t, "AK") < 0);
    /* the memory is the rings made at init */
    CHECK(t->sec.nseries == (TRENDS_COUNTRIES + 1) * CM_COUNT && t->sec.len == TRENDS_SECONDS);
    country_trends_free(t);
    free(t);
}

TEST(country_trends_fed_by_analytics_record)
{
    struct analytics *a = analytics_new(2);
    CHECK(a != NULL);
    if (!a)
        return;
    struct analytics_req r = {.status = 200, .route = "r", .country = "FR", .bytes = 300};
    for (int i = 0; i < 6; i++)
        analytics_record((unsigned)i % 2, 1000, &r);
    r.country = "US";
    analytics_record(0, 1000, &r);
    r.country = ""; /* unknown: not counted per country */
    analytics_record(1, 1000, &r);
    uint64_t tot[TR_COUNT] = {0};
    analytics_fold(a, tot, T0 + 5, 2000);
    const struct country_trends *ct = analytics_country_trends(a);
    int fr = slot_of(ct, "FR"), us = slot_of(ct, "US");
    CHECK(fr >= 0 && us >= 0);
    if (fr >= 0 && us >= 0) {
        CHECK_EQ_U64(series_sum(&ct->sec, CT_SERIES(fr, CM_REQUESTS)), 6);
        CHECK_EQ_U64(series_sum(&ct->sec, CT_SERIES(fr, CM_BYTES)), 1800);
        CHECK_EQ_U64(series_sum(&ct->min, CT_SERIES(us, CM_REQUESTS)), 1);
    }
    CHECK_EQ_U64(all_requests(&ct->sec), 7);
    analytics_free(a);
}
