/* Plain-C tests of the training fast paths: the direct small-channel
 * convolution (forward against a direct loop, both gradients against
 * loops of their definitions, weight gradient independent of the thread
 * count), the 2x2 max-pool path (values and argmax with ties and NaNs
 * against the general rule), written activation gradients, dropout's bulk
 * random numbers (the same mask as one sm_rng_uniform per element) and the
 * batch-norm statistics. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_rng.h"
#include "nn.h"
#include "ctest_conv.h"

static float *zeros(int64_t n)
{
    return calloc((size_t)(n ? n : 1), sizeof(float));
}

/* Input position read by output (y, x) through tap (i, j), or -1 when padding. */
static int64_t tap(int64_t y, int64_t x, int i, int j, int64_t H, int64_t W, const sm_conv2d_params *p)
{
    int64_t iy = y - p->pt + i, ix = x - p->pl + j;
    return iy < 0 || iy >= H || ix < 0 || ix >= W ? -1 : iy * W + ix;
}

/* dyadic: data k/16 (ctest_rng.h), so every product and partial sum is
 * exact (|sums| < 2^12 in steps of 2^-8) and the bounds are 0. */
static void check_direct_conv(int64_t N, int64_t Cin, int64_t Cout, int64_t H, int64_t W, int k, int pad, int dyadic)
{
    sm_conv2d_params p = { k, k, 1, 1, 1, 1, pad, pad, pad, pad, 1 };
    int64_t Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
    int64_t is[4] = { N, Cin, H, W }, os[4] = { N, Cout, Ho, Wo }, wsh[4] = { Cout, Cin, k, k }, bs[1] = { Cout };
    int64_t nx = N * Cin * H * W, ny = N * Cout * Ho * Wo, nw = Cout * Cin * k * k;
    float *(*gen)(int64_t) = dyadic ? randk16 : randn;
    float *x = gen(nx), *w = gen(nw), *b = gen(Cout), *g = gen(ny);
    float *y = zeros(ny), *gx = zeros(nx), *gw = zeros(nw), *gb = zeros(Cout), *gw1 = zeros(nw), *gb1 = zeros(Cout);
    sm_tensor tx, tw, tb, ty, tg, tgx, tgw, tgb, tgw1, tgb1;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, w, 4, wsh); sm_tensor_init(&tb, b, 1, bs);
    sm_tensor_init(&ty, y, 4, os); sm_tensor_init(&tg, g, 4, os); sm_tensor_init(&tgx, gx, 4, is);
    sm_tensor_init(&tgw, gw, 4, wsh); sm_tensor_init(&tgb, gb, 1, bs);
    sm_tensor_init(&tgw1, gw1, 4, wsh); sm_tensor_init(&tgb1, gb1, 1, bs);
    sm_err err;
    CHECK(sm_conv2d_check(&err, &ty, &tx, &tw, &tb, &p) == SM_OK);
    CHECK(plain_algo(SM_CONV_FORWARD, &tx, &ty, &p) == SM_CONV_DIRECT_SMALL);
    CHECK(plain_algo(SM_CONV_BACKWARD_INPUT, &tx, &ty, &p) == SM_CONV_DIRECT_SMALL);
    CHECK(plain_algo(SM_CONV_BACKWARD_WEIGHT, &tx, &ty, &p) == SM_CONV_DIRECT_SMALL);
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    float *ws = malloc(sm_conv_direct_small_workspace(&tx, &ty, &p) * sizeof(float));
    sm_conv_direct_small_forward(&ty, &tx, &tw, &tb, &p, ws);
    for (int64_t i = 0; i < nx; i++) gx[i] = 1.0f; /* backward adds to what is there */
    sm_conv_direct_small_backward_input(&tgx, &tg, &tw, &p, ws);
    sm_conv_direct_small_backward_weight(&tgw, &tgb, &tg, &tx, &p, 0.5f, ws);
    free(ws);
    omp_set_num_threads(1);
    ws = malloc(sm_conv_direct_small_workspace(&tx, &ty, &p) * sizeof(float));
    sm_conv_direct_small_backward_weight(&tgw1, &tgb1, &tg, &tx, &p, 0.5f, ws);
    free(ws);
    omp_set_num_threads(saved);
    /* every sum of the definitions, in double, and the sums of the absolute
     * values of their terms for the bounds (ctest.h): a float sum of n terms
     * in any order is within gamma(n) of their absolute sum, a double one
     * within gamma_d(n) (every product of two floats is exact in double).
     *   y = b + K products: gamma(K + 1) (|b| + sum |w||x|);
     *   gx = 1 + Cout k k products w g: gamma(Cout k k + 1) (1 + sum |w||g|);
     *   gw = 0 + 0.5 sum over N Ho Wo products g x (partial sums per chunk
     *     of samples, in float lanes and then double, rounded to float,
     *     times scale, added): gamma(N Ho Wo + 3) 0.5 sum |g||x|;
     *   gb the same over N Ho Wo values g: gamma(N Ho Wo + 3) 0.5 sum |g|. */
    double *rx = calloc((size_t)nx, sizeof(double)), *rw = calloc((size_t)nw, sizeof(double));
    double *ax = calloc((size_t)nx, sizeof(double)), *aw = calloc((size_t)nw, sizeof(double));
    int64_t K = Cin * k * k, Kx = Cout * k * k, M = N * Ho * Wo;
    ctest_worst worst_y = CTEST_WORST_INIT, worst_x = CTEST_WORST_INIT, worst_w = CTEST_WORST_INIT;
    ctest_worst worst_b = CTEST_WORST_INIT;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < Cout; o++) {
            for (int64_t yy = 0; yy < Ho; yy++)
                for (int64_t xx = 0; xx < Wo; xx++) {
                    double s = b[o], a = fabs(b[o]), go = g[((n * Cout + o) * Ho + yy) * Wo + xx];
                    for (int64_t c = 0; c < Cin; c++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int64_t q = tap(yy, xx, i, j, H, W, &p);
                                if (q < 0) continue;
                                int64_t xi = (n * Cin + c) * H * W + q, wi = ((o * Cin + c) * k + i) * k + j;
                                s += (double)w[wi] * x[xi];
                                a += fabs((double)w[wi] * x[xi]);
                                rx[xi] += (double)w[wi] * go;
                                ax[xi] += fabs((double)w[wi] * go);
                                rw[wi] += 0.5 * go * x[xi];
                                aw[wi] += 0.5 * fabs(go * x[xi]);
                            }
                    int64_t yi = ((n * Cout + o) * Ho + yy) * Wo + xx;
                    ctest_worst_add(&worst_y, yi, y[yi], s, !dyadic * (ctest_gamma((double)K + 1) + ctest_gamma_d((double)K + 1)) * a);
                }
        }
    CHECK_WORST(worst_y, "forward");
    for (int64_t i = 0; i < nx; i++)
        ctest_worst_add(&worst_x, i, gx[i], 1.0 + rx[i], !dyadic * (ctest_gamma((double)Kx + 1) + ctest_gamma_d((double)Kx + 1)) * (1 + ax[i]));
    for (int64_t i = 0; i < nw; i++)
        ctest_worst_add(&worst_w, i, gw[i], rw[i], !dyadic * (ctest_gamma((double)M + 3) + ctest_gamma_d((double)M + 1)) * aw[i]);
    CHECK_WORST(worst_x, "input gradient");
    CHECK_WORST(worst_w, "weight gradient");
    for (int64_t o = 0; o < Cout; o++) {
        double s = 0, a = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < Ho * Wo; i++) {
                s += g[(n * Cout + o) * Ho * Wo + i];
                a += fabs(g[(n * Cout + o) * Ho * Wo + i]);
            }
        ctest_worst_add(&worst_b, o, gb[o], 0.5 * s, !dyadic * (ctest_gamma((double)M + 3) + ctest_gamma_d((double)M)) * 0.5 * a);
    }
    CHECK_WORST(worst_b, "bias gradient");
    /* the weight gradient sums per fixed chunk of samples: the same bits
     * with one thread as with two */
    CHECK(memcmp(gw, gw1, (size_t)nw * sizeof(float)) == 0);
    CHECK(memcmp(gb, gb1, (size_t)Cout * sizeof(float)) == 0);
    free(rx); free(rw); free(ax); free(aw);
    free(x); free(w); free(b); free(g); free(y); free(gx); free(gw); free(gb); free(gw1); free(gb1);
}

static void test_direct_conv_shapes(void)
{
    for (int dyadic = 0; dyadic <= 1; dyadic++) {
        check_direct_conv(9, 1, 6, 12, 20, 3, 0, dyadic);  /* AT&T first layer, one vector and a tail */
        check_direct_conv(5, 6, 12, 9, 7, 3, 0, dyadic);   /* AT&T second layer, blocks of 6 */
        check_direct_conv(3, 1, 32, 10, 17, 3, 1, dyadic); /* padded first layer of a bigger net */
        check_direct_conv(4, 2, 5, 6, 40, 3, 1, dyadic);   /* blocks 4 + 1, three vectors */
        check_direct_conv(2, 2, 7, 8, 8, 5, 2, dyadic);    /* 5x5, blocks 4 + 2 + 1 */
        check_direct_conv(3, 7, 2, 4, 6, 3, 2, dyadic);    /* padding 2 of a 3x3, more inputs than outputs */
    }
}

static void test_direct_conv_dispatch(void)
{
    int64_t is[4] = { 1, 8, 8, 8 }, os[4] = { 1, 4, 6, 6 };
    sm_tensor x, y;
    sm_tensor_init(&x, NULL, 4, is);
    sm_tensor_init(&y, NULL, 4, os);
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
    CHECK(plain_algo(SM_CONV_FORWARD, &x, &y, &p) != SM_CONV_DIRECT_SMALL); /* 8 x 3 x 3 = 72 > 64: im2col */
    is[1] = 4;
    sm_tensor_init(&x, NULL, 4, is);
    CHECK(plain_algo(SM_CONV_FORWARD, &x, &y, &p) == SM_CONV_DIRECT_SMALL);
    p.sh = 2;
    CHECK(plain_algo(SM_CONV_FORWARD, &x, &y, &p) != SM_CONV_DIRECT_SMALL); /* strided: im2col */
    sm_conv2d_params one = { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
    int64_t os1[4] = { 1, 4, 8, 8 };
    sm_tensor_init(&y, NULL, 4, os1);
    CHECK(plain_algo(SM_CONV_FORWARD, &x, &y, &one) != SM_CONV_DIRECT_SMALL); /* 1x1: a plain GEMM */
    int64_t big_in[4] = { 1, 3, 416, 416 }, big_out[4] = { 1, 16, 414, 414 };
    sm_tensor_init(&x, NULL, 4, big_in);
    sm_tensor_init(&y, NULL, 4, big_out);
    p.sh = 1;
    CHECK(plain_algo(SM_CONV_FORWARD, &x, &y, &p) != SM_CONV_DIRECT_SMALL); /* 11 MiB of planes: im2col */
}

/* The general rule: taps in row-major order, a tap wins when it is the
 * first, or the held value is not NaN and the tap is larger or NaN. */
static void test_maxpool_2x2_matches_rule(void)
{
    int64_t N = 2, C = 3, H = 7, W = 37, Ho = 3, Wo = 18;
    int64_t is[4] = { N, C, H, W }, os[4] = { N, C, Ho, Wo };
    float *x = randn(N * C * H * W), *y = zeros(N * C * Ho * Wo);
    for (int64_t i = 0; i < N * C * H * W; i++) {
        x[i] = (float)(int)(x[i] * 2); /* many ties */
        if (i % 23 == 5) x[i] = NAN;
    }
    int32_t *am = malloc((size_t)(N * C * Ho * Wo) * sizeof(int32_t));
    sm_tensor tx, ty;
    sm_tensor_init(&tx, x, 4, is);
    sm_tensor_init(&ty, y, 4, os);
    sm_pool2d_params p = { 2, 2, 2, 2, 0, 0, 0, 0, 0 };
    sm_err err;
    CHECK(sm_pool2d_check(&err, &ty, &tx, &p) == SM_OK);
    sm_maxpool2d_forward(&ty, am, &tx, &p);
    int bad = 0;
    for (int64_t pl = 0; pl < N * C; pl++)
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                float v = 0;
                int32_t k = -1;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        int32_t q = (int32_t)((2 * oy + i) * W + 2 * ox + j);
                        float c = x[pl * H * W + q];
                        if (k < 0 || (v == v && (c > v || c != c))) { v = c; k = q; }
                    }
                int64_t o = (pl * Ho + oy) * Wo + ox;
                if (am[o] != k || !(y[o] == v || (y[o] != y[o] && v != v))) bad++;
            }
    CHECK(bad == 0);
    free(x); free(y); free(am);
}

static void test_activation_grad_writes(void)
{
    int64_t n = 1000;
    float *in = randn(n), *go = randn(n), *a = randn(n), *b = zeros(n), *out = zeros(n);
    sm_activation kinds[4] = { SM_ACT_RELU, SM_ACT_LEAKY_RELU, SM_ACT_SIGMOID, SM_ACT_TANH };
    for (int k = 0; k < 4; k++) {
        sm_activation_forward(out, in, n, kinds[k], 0.1f);
        memset(b, 0, (size_t)n * sizeof(float));
        sm_activation_backward(b, go, in, out, n, kinds[k], 0.1f);
        sm_activation_grad(a, go, in, out, n, kinds[k], 0.1f); /* a held noise: overwritten */
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += a[i] != b[i]; /* == : 0 + -0 is +0 */
        CHECK(bad == 0);
    }
    free(in); free(go); free(a); free(b); free(out);
}

static void test_dropout_mask_stream(void)
{
    int64_t n = 1000;
    float *in = randn(n), *out = zeros(n), *mask = zeros(n);
    sm_rng r1, r2;
    sm_rng_seed(&r1, 7);
    sm_rng_seed(&r2, 7);
    sm_dropout_forward(out, mask, in, n, 0.3f, &r1);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float m = sm_rng_uniform(&r2) < 0.3f ? 0.0f : 1.0f / 0.7f;
        if (mask[i] != m || out[i] != in[i] * m) bad++;
    }
    CHECK(bad == 0);
    CHECK(sm_rng_next(&r1) == sm_rng_next(&r2)); /* both streams advanced alike */
    free(in); free(out); free(mask);
}

/* The batch statistics against their definitions in double. Per channel,
 * over M = N L values:
 *   mean: a float sum of M values in any order (float lanes, then double),
 *     divided in double and rounded to float: within gamma(M + 2) sum|x|/M
 *     of the exact mean m;
 *   invstd = 1/sqrt(var + eps): the kernel sums the M squares (x - fm)^2
 *     about its float mean fm (a subtraction, a square: each term within
 *     gamma(2) relative, then nonnegative terms summed: gamma(M + 2) of the
 *     sum), and sum (x - fm)^2 = SS + M (fm - m)^2 with SS = sum (x - m)^2
 *     exactly. So var' = var + D with |D| <= Dv = gamma(M + 2)(SS/M + e^2)
 *     + e^2, e the mean's bound above (+ double rounding); then f(v) =
 *     (v + eps)^-1/2 moves by at most 1/2 (V - Dv)^-3/2 Dv (the mean value
 *     theorem, V = var + eps), and the double sqrt and division and the
 *     rounding to float add (u + gamma_d(4)) (V - Dv)^-1/2. */
static void test_batchnorm_statistics(void)
{
    int64_t N = 3, C = 2, L = 37, M = N * L;
    float *x = randn(N * C * L), *out = zeros(N * C * L), mean[2], invstd[2];
    for (int64_t i = 0; i < N * C * L; i++) x[i] = 100.0f + 3.0f * x[i]; /* far from 0 */
    const float eps = 1e-5f;
    sm_batchnorm_forward_train(out, mean, invstd, NULL, NULL, x, NULL, NULL, N, C, L, 0.1f, eps);
    for (int64_t c = 0; c < C; c++) {
        double s = 0, ss = 0, sa = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < L; i++) {
                s += x[(n * C + c) * L + i];
                sa += fabs(x[(n * C + c) * L + i]);
            }
        double m = s / (double)M;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < L; i++) ss += (x[(n * C + c) * L + i] - m) * (x[(n * C + c) * L + i] - m);
        /* the reference's own rounding: gamma_d(M + 1) on the mean, (M + 3)
         * relative on SS (the deviation of m adds M (dm)^2, far smaller) */
        double em = ctest_gamma((double)M + 2) * sa / (double)M + ctest_gamma_d((double)M + 1) * sa / (double)M;
        CHECK_BOUND(mean[c], m, em);
        double var = ss / (double)M, V = var + (double)eps;
        double Dv = ctest_gamma((double)M + 2) * (var + em * em) + em * em + ctest_gamma_d((double)M + 4) * (var + em * em);
        CHECK(Dv < V / 2);
        double bound = 0.5 * pow(V - Dv, -1.5) * Dv + (CTEST_U + ctest_gamma_d(4)) * pow(V - Dv, -0.5);
        CHECK_BOUND(invstd[c], 1.0 / sqrt(V), bound);
    }
    free(x); free(out);
}

int main(void)
{
    sm_rng_seed(&rng, 20261122);
    RUN(test_direct_conv_shapes);
    RUN(test_direct_conv_dispatch);
    RUN(test_maxpool_2x2_matches_rule);
    RUN(test_activation_grad_writes);
    RUN(test_dropout_mask_stream);
    RUN(test_batchnorm_statistics);
    return ctest_summary("train_kernels");
}
