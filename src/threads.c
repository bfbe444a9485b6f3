/* threads.c — one thread count for the library, and a monotonic clock.
 *
 * Our kernels parallelise with OpenMP over this many threads, and so do
 * large matrix products (sm_sgemm splits them into single-threaded OpenBLAS
 * calls, one per thread). OpenBLAS itself stays at one thread: its own
 * threading measured no faster (pthread build) or far slower (OpenMP
 * build) than one thread on the 2-vCPU machines this targets. (The OpenMP
 * build re-reads omp_get_max_threads() on each call, so sm_sgemm lowers
 * the count to 1 around every call it makes outside a parallel region.) It is the
 * OpenMP build so that no second pool of spinning pthreads competes with
 * ours. */
#include <cblas.h>
#include <omp.h>
#include <time.h>
#include "sm.h"

void sm_threads_init(void)
{
    /* The OpenMP build's openblas_set_num_threads also sets the OpenMP
     * thread count of the whole process: restore ours afterwards. */
    int n = omp_get_max_threads();
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
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
