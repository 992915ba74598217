/* fmt.h — numbers as text by hand, for lines written on every request or connection (logs,
 * addresses) where snprintf's parsing costs more than the digits. */
#ifndef STRATA_CORE_FMT_H
#define STRATA_CORE_FMT_H

#include <stddef.h>
#include <stdint.h>

/* The decimal digits of v at out (room for 20); returns how many. No NUL. */
static inline size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

#endif
