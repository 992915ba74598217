/* units.h — parsing of the human units used in the configuration.
 * Durations: an integer followed by ms, s, m or h ("250ms", "2s", "1m"); a bare integer
 * is seconds. Sizes: an integer followed by nothing (bytes), k, m or g (powers of 1024).
 * Both return 0 on success and -1 on malformed input or overflow; *out is untouched then.
 */
#ifndef STRATA_CORE_UNITS_H
#define STRATA_CORE_UNITS_H

#include <stdint.h>

int parse_duration_ms(const char *s, uint64_t *out);
int parse_size(const char *s, uint64_t *out);

#endif
