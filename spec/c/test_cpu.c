/* Plain-C test of the code-path switches: SIAMESE_SIMD lowers the SIMD
 * level of our kernels (never above what the CPU runs), and OpenBLAS runs
 * the kernel OPENBLAS_CORETYPE names. `make ctest-cpus` runs every suite
 * under each combination; this one proves the combination took effect. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "ctest.h"
#include "sm.h"

static void test_simd_level_follows_the_environment(void)
{
    const char *req = getenv("SIAMESE_SIMD");
    int cpu = sm_simd_cpu_level(), level = sm_simd_level();
    CHECK(level >= SM_SIMD_PORTABLE && level <= cpu);
    if (!req || !*req || strcmp(req, "avx512") == 0) CHECK(level == cpu);
    else if (strcmp(req, "avx2") == 0) CHECK(level == (cpu < SM_SIMD_AVX2 ? cpu : SM_SIMD_AVX2));
    else CHECK(level == SM_SIMD_PORTABLE); /* "portable", or a name we do not know */
    CHECK(strcmp(sm_simd_name(SM_SIMD_AVX2), "avx2") == 0);
}

static void test_blas_core_follows_the_environment(void)
{
    const char *want = getenv("OPENBLAS_CORETYPE");
    const char *core = sm_blas_core();
    CHECK(core != NULL && *core);
    if (want && *want) CHECK(strcasecmp(core, want) == 0);
}

int main(void)
{
    RUN(test_simd_level_follows_the_environment);
    RUN(test_blas_core_follows_the_environment);
    printf("cpu: our kernels %s (CPU %s), OpenBLAS %s\n", sm_simd_name(sm_simd_level()),
           sm_simd_name(sm_simd_cpu_level()), sm_blas_core());
    return ctest_summary("cpu");
}
