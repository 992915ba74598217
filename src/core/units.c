/* units.c — see units.h. */
#include "units.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* Parses the leading decimal digits; returns the rest of the string or NULL. */
static const char *parse_u64(const char *s, uint64_t *v)
{
    if (!isdigit((unsigned char)*s))
        return NULL;
    uint64_t n = 0;
    for (; isdigit((unsigned char)*s); s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (n > (UINT64_MAX - d) / 10)
            return NULL;
        n = n * 10 + d;
    }
    *v = n;
    return s;
}

static int scale(uint64_t v, uint64_t mul, uint64_t *out)
{
    if (mul && v > UINT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

int parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mul;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000},
    };
    uint64_t v;
    const char *rest = parse_u64(s, &v);
    if (!rest)
        return -1;
    for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(rest, units[i].suffix) == 0)
            return scale(v, units[i].mul, out);
    return -1;
}

int parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *suffix;
        uint64_t mul;
    } units[] = {
        {"", 1},
        {"k", 1ull << 10},
        {"kb", 1ull << 10},
        {"m", 1ull << 20},
        {"mb", 1ull << 20},
        {"g", 1ull << 30},
        {"gb", 1ull << 30},
    };
    uint64_t v;
    const char *rest = parse_u64(s, &v);
    if (!rest)
        return -1;
    for (unsigned i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(rest, units[i].suffix) == 0)
            return scale(v, units[i].mul, out);
    return -1;
}
