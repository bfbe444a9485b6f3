/* threads.c — one thread count for the library: OpenBLAS and (later) our
 * own parallel loops read it. */
#include <cblas.h>
#include "sm.h"

static int sm_threads = 0; /* 0: OpenBLAS's own default until set */

void sm_set_num_threads(int n)
{
    if (n < 1) n = 1;
    sm_threads = n;
    openblas_set_num_threads(n);
}

int sm_get_num_threads(void)
{
    return sm_threads > 0 ? sm_threads : openblas_get_num_threads();
}
