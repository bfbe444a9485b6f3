/* Plain-C tests of the inference fast paths: max pooling without an argmax
 * buffer gives the values of the argmax-keeping kernel (NaN sticks, -inf,
 * padding, strides 1 to 3); the convolution forward on large maps (output
 * rows in bands) and 1x1 convolutions (no unfold) match the definition in
 * double within derived error bounds, and exactly on dyadic data. */
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_conv.h"
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
        if (trial % 2) { /* the 2x2 stride-2 fast path (SAME padding: pad bottom/right, or top) */
            p.kh = p.kw = p.sh = p.sw = 2;
            p.pl = 0;
            p.pt = (int)sm_rng_below(&rng, 2);
            p.pb = (int)sm_rng_below(&rng, 2);
            p.pr = (int)sm_rng_below(&rng, 2);
        }
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

/* Every output of the convolution forward against its definition in double
 * (ctest_conv.h): K products and the bias summed in any order (the
 * banded, direct, split-column and GEMM routes alike) are within gamma(K +
 * 1) (|b| + sum |w||x|) of the exact value (ctest.h), the reference within
 * gamma_d(K + 1) of the same. On dyadic data (k/16) every product and
 * partial sum is exact: the outputs must be too. */
static ctest_worst conv_worst(int64_t N, int64_t cin, int64_t cout, int64_t H, int64_t W, sm_conv2d_params p,
                              int with_bias, int dyadic)
{
    sm_rng rng;
    sm_rng_seed(&rng, 5);
    int64_t is[4] = { N, cin, H, W }, ws_[4] = { cout, cin, p.kh, p.kw }, bs[1] = { cout };
    int64_t os[4] = { N, cout, sm_conv_out_size(H, p.kh, p.sh, 1, p.pt, p.pb), sm_conv_out_size(W, p.kw, p.sw, 1, p.pl, p.pr) };
    int64_t nx = sm_numel(4, is), nw = sm_numel(4, ws_), ny = sm_numel(4, os);
    float *x = malloc((size_t)nx * sizeof(float)), *w = malloc((size_t)nw * sizeof(float));
    float *b = malloc((size_t)cout * sizeof(float)), *y = malloc((size_t)ny * sizeof(float));
    float *all[3] = { x, w, b };
    int64_t len[3] = { nx, nw, cout };
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < len[k]; i++)
            all[k][i] = dyadic ? (float)((int)sm_rng_below(&rng, 33) - 16) / 16 : (float)sm_rng_normal(&rng);
    for (int64_t i = 0; i < ny; i++) y[i] = 12345.0f; /* a sentinel left stands out */
    sm_tensor tx, tw, tb, ty;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, w, 4, ws_); sm_tensor_init(&tb, b, 1, bs); sm_tensor_init(&ty, y, 4, os);
    sm_err err;
    CHECK(sm_conv2d_check(&err, &ty, &tx, &tw, with_bias ? &tb : NULL, &p) == SM_OK);
    float *ws = malloc((plain_workspace(&tx, &ty, &p) + 1) * sizeof(float));
    plain_forward(&ty, &tx, &tw, with_bias ? &tb : NULL, &p, ws);
    ref_conv ref = ref_conv2d(x, is, w, cout, with_bias ? b : NULL, NULL, &p);
    double g = ctest_gamma((double)ref.K + 1) + ctest_gamma_d((double)ref.K + 1);
    ctest_worst worst = CTEST_WORST_INIT;
    for (int64_t i = 0; i < ny; i++) ctest_worst_add(&worst, i, y[i], ref.y[i], dyadic ? 0 : g * ref.abs[i]);
    ref_conv_free(&ref);
    free(x); free(w); free(b); free(y); free(ws);
    return worst;
}

static void test_conv_forward_on_large_maps_and_1x1(void)
{
    for (int dyadic = 0; dyadic <= 1; dyadic++) {
        /* K * Ho*Wo above the banding threshold: 3x3 valid (the detector's
         * first layer, smaller), 7x7 stride 2 (the recognition net's), padded */
        sm_conv2d_params valid3 = { 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
        CHECK_WORST(conv_worst(1, 3, 5, 170, 163, valid3, 1, dyadic), dyadic ? "1, 3, 5, 170, 163, valid3, 1, dyadic data" : "1, 3, 5, 170, 163, valid3, 1");
        sm_conv2d_params s2k7 = { 7, 7, 2, 2, 1, 1, 0, 0, 0, 0, 1 };
        CHECK_WORST(conv_worst(3, 3, 4, 150, 150, s2k7, 1, dyadic), dyadic ? "3, 3, 4, 150, 150, s2k7, 1, dyadic data" : "3, 3, 4, 150, 150, s2k7, 1");
        sm_conv2d_params padded = { 3, 3, 1, 1, 1, 1, 1, 2, 0, 1, 1 };
        CHECK_WORST(conv_worst(2, 4, 3, 140, 121, padded, 0, dyadic), dyadic ? "2, 4, 3, 140, 121, padded, 0, dyadic data" : "2, 4, 3, 140, 121, padded, 0");
        /* few input channels, output channels a multiple of 8: the direct
         * kernel (with AVX2/FMA), interior, borders and row tails */
        CHECK_WORST(conv_worst(2, 3, 16, 40, 37, valid3, 1, dyadic), dyadic ? "2, 3, 16, 40, 37, valid3, 1, dyadic data" : "2, 3, 16, 40, 37, valid3, 1");
        CHECK_WORST(conv_worst(1, 3, 8, 21, 30, padded, 0, dyadic), dyadic ? "1, 3, 8, 21, 30, padded, 0, dyadic data" : "1, 3, 8, 21, 30, padded, 0");
        sm_conv2d_params pad5 = { 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1 };
        CHECK_WORST(conv_worst(1, 1, 8, 17, 9, pad5, 1, dyadic), dyadic ? "1, 1, 8, 17, 9, pad5, 1, dyadic data" : "1, 1, 8, 17, 9, pad5, 1");
        /* stride 2 (split even/odd columns): the recognition net's 7x7 first
         * layer, a padded 3x3 with odd sizes, mixed strides */
        CHECK_WORST(conv_worst(2, 3, 32, 150, 150, s2k7, 1, dyadic), dyadic ? "2, 3, 32, 150, 150, s2k7, 1, dyadic data" : "2, 3, 32, 150, 150, s2k7, 1");
        sm_conv2d_params same2 = { 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1 };
        CHECK_WORST(conv_worst(1, 3, 16, 41, 37, same2, 1, dyadic), dyadic ? "1, 3, 16, 41, 37, same2, 1, dyadic data" : "1, 3, 16, 41, 37, same2, 1");
        sm_conv2d_params mixed = { 5, 3, 1, 2, 1, 1, 2, 0, 1, 1, 1 };
        CHECK_WORST(conv_worst(1, 2, 8, 30, 27, mixed, 0, dyadic), dyadic ? "1, 2, 8, 30, 27, mixed, 0, dyadic data" : "1, 2, 8, 30, 27, mixed, 0");
        /* 1x1 stride 1 without padding: the GEMM on the input planes */
        sm_conv2d_params one = { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
        CHECK_WORST(conv_worst(2, 16, 16, 13, 12, one, 1, dyadic), dyadic ? "2, 16, 16, 13, 12, one, 1, dyadic data" : "2, 16, 16, 13, 12, one, 1");
        CHECK_WORST(conv_worst(3, 16, 7, 13, 11, one, 1, dyadic), dyadic ? "3, 16, 7, 13, 11, one, 1, dyadic data" : "3, 16, 7, 13, 11, one, 1");
        CHECK_WORST(conv_worst(1, 5, 3, 9, 9, one, 0, dyadic), dyadic ? "1, 5, 3, 9, 9, one, 0, dyadic data" : "1, 5, 3, 9, 9, one, 0");
    }
}

int main(void)
{
    RUN(test_maxpool_without_argmax_gives_the_same_values);
    RUN(test_conv_forward_on_large_maps_and_1x1);
    return ctest_summary("inference");
}
