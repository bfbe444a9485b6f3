/*
 * cpu.c — which SIMD code paths the hand-written kernels may take.
 *
 * Every dispatch in the core (conv/blocked.c, conv/gemm_packed.c, the
 * convolution plan of conv/plan.c and the SM_CLONES functions of simd.h)
 * asks sm_simd_level(): the widest level this CPU runs, lowered by the
 * environment variable SIAMESE_SIMD ("avx512", "avx2" or "portable"), so
 * that the tests can run every leaf of every dispatch on any AVX-512
 * machine (`make ctest-cpus`). A value that is not one of those names
 * selects the portable paths (the safe reading of a typo), and
 * sm_simd_request() reports it. sm_blas_core() names the kernel OpenBLAS
 * chose (OPENBLAS_CORETYPE overrides its choice).
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include "sm.h"

static int cpu_level(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return SM_SIMD_AVX512;
    if (__builtin_cpu_supports("x86-64-v3")) return SM_SIMD_AVX2;
#endif
    return SM_SIMD_PORTABLE;
}

/* The level SIAMESE_SIMD asks for, SM_SIMD_AVX512 when unset. */
static int requested_level(void)
{
    const char *s = getenv("SIAMESE_SIMD");
    if (!s || !*s || strcmp(s, "avx512") == 0) return SM_SIMD_AVX512;
    if (strcmp(s, "avx2") == 0) return SM_SIMD_AVX2;
    return SM_SIMD_PORTABLE;
}

/* Computed once; the race between threads is benign (all compute the
 * same value). -1: not yet known. */
static int level = -1;

int sm_simd_level(void)
{
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        int cpu = cpu_level(), req = requested_level();
        l = cpu < req ? cpu : req;
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
}

int sm_simd_cpu_level(void)
{
    return cpu_level();
}

const char *sm_simd_request(void)
{
    const char *s = getenv("SIAMESE_SIMD");
    return s && *s ? s : NULL;
}

const char *sm_simd_name(int l)
{
    return l >= SM_SIMD_AVX512 ? "avx512" : l == SM_SIMD_AVX2 ? "avx2" : "portable";
}

const char *sm_blas_core(void)
{
    return openblas_get_corename();
}
