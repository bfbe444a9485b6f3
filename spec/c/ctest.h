/*
 * ctest.h — the tiny harness of the plain-C core tests.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *   int main(void) { RUN(test_something); return ctest_summary("tensor"); }
 *
 * The summary line reads "tensor: N passed, N failed"; the exit code is 1
 * when anything failed.
 */
#ifndef CTEST_H
#define CTEST_H
#include <math.h>
#include <stdio.h>

static int ctest_passed, ctest_failed, ctest_current_failed;

#define CHECK(cond) do { \
    if (!(cond)) { \
        ctest_current_failed = 1; \
        fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    } \
} while (0)

#define CHECK_NEAR(a, b, tol) do { \
    double ctest_a_ = (a), ctest_b_ = (b); \
    if (!(fabs(ctest_a_ - ctest_b_) <= (tol))) { \
        ctest_current_failed = 1; \
        fprintf(stderr, "  %s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", \
                __FILE__, __LINE__, #a, ctest_a_, #b, ctest_b_, (double)(tol)); \
    } \
} while (0)

#define RUN(fn) do { \
    ctest_current_failed = 0; \
    fn(); \
    if (ctest_current_failed) { ctest_failed++; fprintf(stderr, "FAIL %s\n", #fn); } \
    else ctest_passed++; \
} while (0)

static int ctest_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, ctest_passed, ctest_failed);
    return ctest_failed ? 1 : 0;
}
#endif
