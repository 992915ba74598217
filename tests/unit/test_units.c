/* test_units.c — parse_duration_ms() and parse_size() (src/core/units.c): every unit, the
 * bare-number forms, malformed input, overflow, and that *out is untouched on failure.
 */
#include "core/units.h"
#include "test.h"

TEST(units_duration_valid)
{
    static const struct {
        const char *in;
        uint64_t ms;
    } ok[] = {
        {"0", 0},         {"250ms", 250},
        {"0ms", 0},       {"2s", 2000},
        {"5", 5000},      {"1m", 60000},
        {"90m", 5400000}, {"1h", 3600000},
        {"007s", 7000},   {"18446744073709551615ms", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 42;
        if (parse_duration_ms(ok[i].in, &v) != 0 || v != ok[i].ms)
            test_fail(__FILE__, __LINE__, "parse_duration_ms(\"%s\") = %llu, want %llu", ok[i].in,
                      (unsigned long long)v, (unsigned long long)ok[i].ms);
    }
}

TEST(units_duration_invalid)
{
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        "-1s",
        "+1s",
        " 1s",
        "1s ",
        "1 s",
        "5 parsecs",
        "1.5s",
        "1d",
        "1S",
        "1sec",
        "1hh",
        "0x10",
        "1e3",
        "18446744073709551616ms", /* one past UINT64_MAX */
        "18446744073709551615s",  /* overflows when scaled */
        "5124095576030432h",      /* 5124095576030432 * 3600000 > UINT64_MAX */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 42;
        if (parse_duration_ms(bad[i], &v) != -1 || v != 42)
            test_fail(__FILE__, __LINE__, "parse_duration_ms(\"%s\") accepted or wrote %llu",
                      bad[i], (unsigned long long)v);
    }
    uint64_t v;
    CHECK(parse_duration_ms("5124095576030h", &v) == 0); /* just below the limit */
    CHECK_EQ_U64(v, 5124095576030ull * 3600000ull);
}

TEST(units_size_valid)
{
    static const struct {
        const char *in;
        uint64_t bytes;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"1k", 1024},
        {"1K", 1024},
        {"4kb", 4096},
        {"2m", 2u << 20},
        {"2MB", 2u << 20},
        {"1g", 1u << 30},
        {"3Gb", 3ull << 30},
        {"17179869183g", 17179869183ull << 30},
        {"18446744073709551615", UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 42;
        if (parse_size(ok[i].in, &v) != 0 || v != ok[i].bytes)
            test_fail(__FILE__, __LINE__, "parse_size(\"%s\") = %llu, want %llu", ok[i].in,
                      (unsigned long long)v, (unsigned long long)ok[i].bytes);
    }
}

TEST(units_size_invalid)
{
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "1.5k",
        "1 k",
        "1t",
        "1kib",
        "1b",
        "0x10",
        " 1",
        "17179869184g", /* 2^34 GiB = 2^64 bytes */
        "18446744073709551616",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 42;
        if (parse_size(bad[i], &v) != -1 || v != 42)
            test_fail(__FILE__, __LINE__, "parse_size(\"%s\") accepted or wrote %llu", bad[i],
                      (unsigned long long)v);
    }
}
