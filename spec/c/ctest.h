/*
 * ctest.h — the tiny harness of the plain-C core tests.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_BOUND(a, b, ctest_gamma(3) * fabs(b)); }
 *   int main(void) { RUN(test_something); return ctest_summary("tensor"); }
 *
 * The summary line reads "tensor: N passed, N failed"; the exit code is 1
 * when anything failed.
 */
#ifndef CTEST_H
#define CTEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

/* ---- error bounds -----------------------------------------------------
 * Floating-point comparisons are checked against bounds derived from the
 * computation, never against numbers tuned on one machine:
 *
 *   - exact operations (copies, max, integer or dyadic arithmetic whose
 *     every intermediate fits the significand, one correctly rounded op on
 *     exact data) compare with == or within the half ulp of that one op;
 *   - a sum of n terms (a dot product, a convolution) computed in any
 *     order, with or without FMA, differs from the exact value by at most
 *     gamma(n) * sum |terms|, gamma(n) = n u / (1 - n u), u = 2^-24 for
 *     float (Higham, Accuracy and Stability of Numerical Algorithms, 2nd
 *     ed., lemma 3.1 and eq. 3.5). More generally, when a value is formed
 *     by float operations with each term passing through at most L
 *     roundings, |computed - exact| <= gamma(L) * (the same expression
 *     evaluated on absolute values): each term carries a factor
 *     prod (1 + d_i), |d_i| <= u, of at most L roundings (lemma 3.3);
 *   - a reference computed in double carries its own gamma_d(n) with
 *     u = 2^-53, added to the bound.
 *
 * CHECK_BOUND(got, want, bound) prints got, want, |got - want| and the
 * bound; ctest_worst keeps the element of an array that uses the largest
 * share of its bound (NaN and sentinels count as infinitely far), and
 * CHECK_WORST fails when that share exceeds 1. */
#define CTEST_U 0x1p-24   /* float unit roundoff */
#define CTEST_UD 0x1p-53  /* double unit roundoff */

static inline double ctest_gamma(double n)   /* float */
{
    double nu = n * CTEST_U;
    return nu < 1 ? nu / (1 - nu) : INFINITY;
}

static inline double ctest_gamma_d(double n) /* double */
{
    double nu = n * CTEST_UD;
    return nu < 1 ? nu / (1 - nu) : INFINITY;
}

/* A value computed in double (error <= gamma_d(kd) * absval against the
 * exact want) and then rounded once to float: half an ulp of float more. */
static inline double ctest_round_bound(double want, double absval, double kd)
{
    return CTEST_U * fabs(want) + (1 + CTEST_U) * ctest_gamma_d(kd) * absval;
}

#define CHECK_BOUND(got, want, bound) do { \
    double ctest_g_ = (got), ctest_w_ = (want), ctest_b_ = (bound); \
    if (!(fabs(ctest_g_ - ctest_w_) <= ctest_b_)) { \
        ctest_current_failed = 1; \
        fprintf(stderr, "  %s:%d: %s = %.9g, expected %s = %.9g: |diff| %.3g > bound %.3g (%s)\n", \
                __FILE__, __LINE__, #got, ctest_g_, #want, ctest_w_, fabs(ctest_g_ - ctest_w_), ctest_b_, \
                #bound); \
    } \
} while (0)

typedef struct {
    double share;            /* largest |got - want| / bound so far */
    double got, want, bound; /* at that element */
    long long at;            /* its index, -1 before any */
    long long count;         /* elements seen */
} ctest_worst;
#define CTEST_WORST_INIT { 0, 0, 0, 0, -1, 0 }

static inline void ctest_worst_add(ctest_worst *w, long long at, double got, double want, double bound)
{
    double d = fabs(got - want), share;
    if (d <= bound) share = bound > 0 ? d / bound : 0;
    else share = bound > 0 && d == d ? d / bound : INFINITY; /* NaN, or any difference against 0 */
    w->count++;
    if (w->at < 0 || share > w->share) {
        w->share = share; w->got = got; w->want = want; w->bound = bound; w->at = at;
    }
}

/* Fails unless every element added to w was within its bound. */
#define CHECK_WORST(w, what) do { \
    const ctest_worst ctest_wv_ = (w), *ctest_wp_ = &ctest_wv_; \
    if (!(ctest_wp_->share <= 1)) { \
        ctest_current_failed = 1; \
        fprintf(stderr, "  %s:%d: %s: element %lld of %lld = %.9g, expected %.9g: |diff| %.3g > bound %.3g\n", \
                __FILE__, __LINE__, (what), ctest_wp_->at, ctest_wp_->count, ctest_wp_->got, ctest_wp_->want, \
                fabs(ctest_wp_->got - ctest_wp_->want), ctest_wp_->bound); \
    } else if (getenv("CTEST_SHARES")) \
        fprintf(stderr, "  %s:%d: %s: worst share of the bound %.3g\n", __FILE__, __LINE__, (what), \
                ctest_wp_->share); \
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
