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

#endif
