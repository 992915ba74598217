/* country_trends.c — see country_trends.h. */
#include "stats/country_trends.h"

#include <string.h>

#define RATE_ALPHA (1.0f / 64) /* per fold (a second): about a minute of memory */
#define EVICT_FACTOR 2.0f      /* a newcomer needs this many times the weakest rate */

int country_trends_init(struct country_trends *t)
{
    memset(t, 0, sizeof(*t));
    for (int k = 0; k < TRENDS_COUNTRIES; k++)
        t->slot_country[k] = -1;
    for (int c = 0; c < GEO_CODES; c++)
        t->slot_of[c] = -1;
    return trend_rings_init(&t->sec, &t->min, (TRENDS_COUNTRIES + 1) * CM_COUNT);
}

void country_trends_free(struct country_trends *t)
{
    trend_rings_free(&t->sec, &t->min);
}

/* Slot k's points go into "other", and the slot is empty. */
static void merge_into_other(struct trend_ring *r, unsigned k)
{
    for (int m = 0; m < CM_COUNT; m++) {
        uint64_t *from = r->v[CT_SERIES(k, m)], *to = r->v[CT_SERIES(CT_OTHER, m)];
        for (uint32_t i = 0; i < r->len; i++) {
            to[i] += from[i];
            from[i] = 0;
        }
    }
}

/* A slot for country c: a free one, or the weakest one's when c is clearly busier (and
 * `evict`). */
static void claim_slot(struct country_trends *t, int c, bool evict)
{
    int weakest = -1;
    for (int k = 0; k < TRENDS_COUNTRIES; k++) {
        int o = t->slot_country[k];
        if (o < 0) {
            weakest = k;
            break;
        }
        if (weakest < 0 || t->rate[o] < t->rate[t->slot_country[weakest]])
            weakest = k;
    }
    int old = t->slot_country[weakest];
    if (old >= 0) {
        if (!evict || t->rate[c] <= EVICT_FACTOR * t->rate[old])
            return;
        merge_into_other(&t->sec, (unsigned)weakest);
        merge_into_other(&t->min, (unsigned)weakest);
        t->slot_of[old] = -1;
    }
    t->slot_country[weakest] = (int16_t)c;
    t->slot_of[c] = (int16_t)weakest;
}

void country_trends_fold(struct country_trends *t, const uint64_t totals[GEO_CODES][CM_COUNT],
                         int64_t now_ms)
{
    uint64_t d[(TRENDS_COUNTRIES + 1) * CM_COUNT] = {0};
    uint64_t(*delta)[CM_COUNT] = t->delta;
    for (int c = 0; c < GEO_CODES; c++) {
        for (int m = 0; m < CM_COUNT; m++) {
            delta[c][m] = totals[c][m] >= t->last[c][m] ? totals[c][m] - t->last[c][m] : 0;
            t->last[c][m] = totals[c][m];
        }
        t->rate[c] += RATE_ALPHA * ((float)delta[c][CM_REQUESTS] - t->rate[c]);
    }
    /* free slots go to any country seen; at most one slot changes hands a fold (moving a
     * slot's points costs a pass over its rings), to the busiest country without one */
    int best = -1;
    for (int c = 0; c < GEO_CODES; c++) {
        if (!(delta[c][CM_REQUESTS] || delta[c][CM_BYTES]) || t->slot_of[c] >= 0)
            continue;
        claim_slot(t, c, false);
        if (t->slot_of[c] < 0 && (best < 0 || t->rate[c] > t->rate[best]))
            best = c;
    }
    if (best >= 0)
        claim_slot(t, best, true);
    for (int c = 0; c < GEO_CODES; c++) {
        int k = t->slot_of[c] < 0 ? CT_OTHER : t->slot_of[c];
        for (int m = 0; m < CM_COUNT; m++)
            d[CT_SERIES(k, m)] += delta[c][m];
    }
    trend_rings_add(&t->sec, &t->min, now_ms, d);
}

void country_trends_code(const struct country_trends *t, unsigned k, char code[3])
{
    int c = k < TRENDS_COUNTRIES ? t->slot_country[k] : -1;
    code[0] = c < 0 ? 0 : (char)('A' + c / 26);
    code[1] = c < 0 ? 0 : (char)('A' + c % 26);
    code[2] = 0;
}
