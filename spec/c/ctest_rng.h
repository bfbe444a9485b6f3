/*
 * ctest_rng.h — random data for the plain-C tests: the test program's one
 * generator `rng` (seed it in main with sm_rng_seed) and arrays of unit
 * normals drawn from it.
 */
#ifndef CTEST_RNG_H
#define CTEST_RNG_H
#include <stdlib.h>
#include "sm.h"

static sm_rng rng;

/* n unit normals in a malloc'd array (room for one when n is 0); free() it. */
static float *randn(int64_t n)
{
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = (float)sm_rng_normal(&rng);
    return p;
}

/* n dyadic values k/16, k uniform in -16..16, in a malloc'd array: every
 * product of two is a multiple of 2^-8 of magnitude <= 1, so any sum of up
 * to 2^15 of them (and of a few more such values) is exact in float, in
 * any order: kernels on these data must match a reference exactly. */
static inline float *randk16(int64_t n)
{
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = (float)((int)sm_rng_below(&rng, 33) - 16) / 16;
    return p;
}

#endif
