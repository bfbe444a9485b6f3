/* threads.c — one thread count for the library, and a monotonic clock.
 *
 * Our kernels (im2col, pooling, activations, batch-norm, optimisers)
 * parallelise with OpenMP over this many threads. OpenBLAS stays at one
 * thread: measured on the 2-vCPU machines this targets, a 512^3 sgemm runs
 * at ~70 GFLOP/s on one thread and slower on two, and small products
 * (32x1225x288) at a fifth of the speed. It is the OpenMP build of OpenBLAS,
 * so no second pool of spinning pthreads competes with ours. */
#include <cblas.h>
#include <omp.h>
#include <time.h>
#include "sm.h"

void sm_threads_init(void)
{
    openblas_set_num_threads(1);
}

void sm_set_num_threads(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
}

int sm_get_num_threads(void)
{
    return omp_get_max_threads();
}

double sm_monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
