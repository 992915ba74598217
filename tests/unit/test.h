/* test.h — the unit-test harness: self-registering tests and checks that record the file
 * and line of a failure. The runner (tests/unit/main.c) ends with "N passed, N failed".
 *
 *   TEST(units_duration) { CHECK(x == 1); CHECK_EQ_U64(a, b); }
 */
#ifndef STRATA_TESTS_UNIT_TEST_H
#define STRATA_TESTS_UNIT_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
    struct test_case *next;
};

void test_register(struct test_case *tc);
/* Records a failure of the running test (it keeps running to report more). */
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TEST(name)                                                                                 \
    static void test_fn_##name(void);                                                              \
    static struct test_case test_case_##name = {#name, test_fn_##name, NULL};                      \
    __attribute__((constructor)) static void test_reg_##name(void)                                 \
    {                                                                                              \
        test_register(&test_case_##name);                                                          \
    }                                                                                              \
    static void test_fn_##name(void)

struct config;
/* The whole file at path (malloc'd, NUL-terminated), or NULL when it cannot be read. */
char *test_read_file(const char *path);
/* What print(out) writes, as a malloc'd string; NULL when out of memory. */
char *test_capture(void (*print)(FILE *out));
/* The configuration of yaml (as "test.yaml"); NULL, with a test failure naming the
 * errors, when it does not load. */
struct config *test_load_config(const char *yaml, unsigned nworkers);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                                     \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
    do {                                                                                           \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                           \
        if (a_ != b_)                                                                              \
            test_fail(__FILE__, __LINE__, "%s == %s: %llu != %llu", #a, #b,                        \
                      (unsigned long long)a_, (unsigned long long)b_);                             \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_))                                                                \
            test_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)",    \
                      n_);                                                                         \
    } while (0)

#endif
