/* main.c — unit-test runner: runs every registered test (or those whose name contains
 * argv[1]) and ends with the line "unit: N passed, N failed". Exit 1 if any failed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

static struct test_case *tests;
static int current_failed;

void test_register(struct test_case *tc)
{
    tc->next = tests;
    tests = tc;
}

void test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    current_failed = 1;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    /* constructors register in reverse order: reverse the list to run in file order */
    struct test_case *rev = NULL;
    while (tests) {
        struct test_case *n = tests->next;
        tests->next = rev;
        rev = tests;
        tests = n;
    }
    for (struct test_case *tc = rev; tc; tc = tc->next) {
        if (argc > 1 && !strstr(tc->name, argv[1]))
            continue;
        current_failed = 0;
        tc->fn();
        printf("%s %s\n", current_failed ? "FAIL" : "ok  ", tc->name);
        if (current_failed)
            failed++;
        else
            passed++;
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
