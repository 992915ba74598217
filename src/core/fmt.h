/* fmt.h — numbers as text by hand, for lines written on every request or connection (logs,
 * addresses) where snprintf's parsing costs more than the digits; hex digits read back. */
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

/* The value of a hexadecimal digit, or -1 for any other character. */
static inline int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

#endif
