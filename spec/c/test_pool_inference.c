/* Plain-C test of the inference max pooling (sm_maxpool2d_forward with no
 * argmax buffer): the same values as the argmax-keeping kernel, including
 * NaN (sticks), -inf, all-padding-free windows of SAME padding, strides 1,
 * 2 and 3. */
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "nn.h"

static void test_maxpool_without_argmax_gives_the_same_values(void)
{
    sm_rng rng;
    sm_rng_seed(&rng, 99);
    for (int trial = 0; trial < 60; trial++) {
        sm_pool2d_params p;
        p.kh = 1 + (int)sm_rng_below(&rng, 3); p.kw = 1 + (int)sm_rng_below(&rng, 3);
        p.sh = 1 + (int)sm_rng_below(&rng, 3); p.sw = 1 + (int)sm_rng_below(&rng, 3);
        p.pt = (int)sm_rng_below(&rng, (uint64_t)p.kh); p.pb = (int)sm_rng_below(&rng, (uint64_t)p.kh);
        p.pl = (int)sm_rng_below(&rng, (uint64_t)p.kw); p.pr = (int)sm_rng_below(&rng, (uint64_t)p.kw);
        p.count_pad = 0;
        int64_t is[4] = { 1 + (int64_t)sm_rng_below(&rng, 2), 1 + (int64_t)sm_rng_below(&rng, 3),
                          3 + (int64_t)sm_rng_below(&rng, 9), 3 + (int64_t)sm_rng_below(&rng, 9) };
        int64_t os[4] = { is[0], is[1], sm_conv_out_size(is[2], p.kh, p.sh, 1, p.pt, p.pb),
                          sm_conv_out_size(is[3], p.kw, p.sw, 1, p.pl, p.pr) };
        int64_t n = sm_numel(4, is), no = sm_numel(4, os);
        float *x = malloc((size_t)n * sizeof(float)), *y0 = malloc((size_t)no * sizeof(float));
        float *y1 = malloc((size_t)no * sizeof(float));
        int32_t *idx = malloc((size_t)no * sizeof(int32_t));
        for (int64_t i = 0; i < n; i++) {
            uint64_t r = sm_rng_below(&rng, 20);
            x[i] = r == 0 ? NAN : r == 1 ? -INFINITY : (float)sm_rng_normal(&rng);
        }
        sm_tensor tx, t0, t1;
        sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&t0, y0, 4, os); sm_tensor_init(&t1, y1, 4, os);
        sm_err err;
        CHECK(sm_pool2d_check(&err, &t0, &tx, &p) == SM_OK);
        sm_maxpool2d_forward(&t0, idx, &tx, &p);
        sm_maxpool2d_forward(&t1, NULL, &tx, &p);
        int same = 1;
        for (int64_t i = 0; i < no; i++)
            if (!(y0[i] == y1[i] || (y0[i] != y0[i] && y1[i] != y1[i]))) same = 0;
        CHECK(same);
        free(x); free(y0); free(y1); free(idx);
    }
}

int main(void)
{
    RUN(test_maxpool_without_argmax_gives_the_same_values);
    return ctest_summary("pool_inference");
}
