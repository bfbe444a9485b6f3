/* Plain-C tests of the Winograd convolution (winograd.c): its
 * forward against the im2col path of conv2d.c on random shapes (both tiles,
 * SAME/VALID/asymmetric padding, planes small enough for the padded gather
 * and larger ones that take the bounds-checked path, with and without bias,
 * with the fused ReLU), the training gradients (input gradient through the
 * flipped weights, weight and bias gradients), and the checks that refuse
 * what it cannot do. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_rng.h"
#include "nn.h"

/* Tolerances relative to 1 + |output| for sums of up to 9*20 products of
 * unit normals: the im2col result itself carries ~1e-6; F(2x2) adds
 * little (constants 0, +-1, 1/2), F(4x4) more (constants up to 8 and
 * 1/24). A wrong transform is off by O(1). */
#define TOL2 5e-5
#define TOL4 5e-4

/* Largest |winograd - im2col| over the output, relative to 1 + |im2col|. */
static double compare_once(int tile, int64_t n, int64_t cin, int64_t cout, int64_t h, int64_t w,
                           const int pad[4], int with_bias, int relu)
{
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, pad[0], pad[1], pad[2], pad[3], 1 };
    int64_t a = tile + 2;
    int64_t is[4] = { n, cin, h, w }, ws_[4] = { cout, cin, 3, 3 }, bs[1] = { cout };
    int64_t os[4] = { n, cout, sm_conv_out_size(h, 3, 1, 1, pad[0], pad[2]), sm_conv_out_size(w, 3, 1, 1, pad[1], pad[3]) };
    int64_t us[3] = { a * a, cout, cin };
    float *x = randn(sm_numel(4, is)), *wt = randn(sm_numel(4, ws_)), *b = randn(cout);
    float *y0 = calloc((size_t)sm_numel(4, os), sizeof(float)), *y1 = calloc((size_t)sm_numel(4, os), sizeof(float));
    float *u = malloc((size_t)sm_numel(3, us) * sizeof(float));
    sm_tensor tx, tw, tb, ty0, ty1, tu;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, wt, 4, ws_); sm_tensor_init(&tb, b, 1, bs);
    sm_tensor_init(&ty0, y0, 4, os); sm_tensor_init(&ty1, y1, 4, os); sm_tensor_init(&tu, u, 3, us);
    sm_tensor *bias = with_bias ? &tb : NULL;
    sm_err err;
    CHECK(sm_winograd_applies(&p));
    CHECK(sm_conv2d_check(&err, &ty0, &tx, &tw, bias, &p) == SM_OK);
    CHECK(sm_winograd_prepare_check(&err, &tu, &tw, tile) == SM_OK);
    CHECK(sm_winograd_check(&err, &ty1, &tx, &tu, bias, &p) == SM_OK);
    float *ws0 = malloc((sm_conv2d_workspace(&tx, &ty0, &p) + 1) * sizeof(float));
    float *ws1 = malloc(sm_winograd_workspace(&ty1, &tx, &tu) * sizeof(float));
    sm_conv2d_forward(&ty0, &tx, &tw, bias, &p, ws0);
    sm_winograd_prepare(&tu, &tw, tile);
    sm_winograd_forward(&ty1, &tx, &tu, bias, &p, relu, ws1);
    double worst = 0;
    for (int64_t i = 0; i < sm_numel(4, os); i++) {
        double ref = relu && y0[i] < 0 ? 0 : y0[i];
        double d = fabs(y1[i] - ref) / (1 + fabs(ref));
        if (d > worst) worst = d;
    }
    free(x); free(wt); free(b); free(y0); free(y1); free(u); free(ws0); free(ws1);
    return worst;
}

static void test_winograd_matches_im2col(void)
{
    static const int pads[4][4] = { { 1, 1, 1, 1 }, { 0, 0, 0, 0 }, { 0, 1, 1, 0 }, { 2, 0, 1, 2 } };
    for (int trial = 0; trial < 40; trial++) {
        int tile = trial % 2 ? 4 : 2;
        int64_t n = 1 + (int64_t)sm_rng_below(&rng, 3);
        int64_t cin = 1 + (int64_t)sm_rng_below(&rng, 20), cout = 1 + (int64_t)sm_rng_below(&rng, 20);
        int64_t h = 3 + (int64_t)sm_rng_below(&rng, 20), w = 3 + (int64_t)sm_rng_below(&rng, 20);
        const int *pad = pads[trial % 4];
        double worst = compare_once(tile, n, cin, cout, h, w, pad, trial % 5 != 0, trial % 3 == 0);
        CHECK(worst < (tile == 2 ? TOL2 : TOL4));
    }
}

static void test_winograd_large_planes_take_the_checked_path(void)
{
    static const int same[4] = { 1, 1, 1, 1 }, valid[4] = { 0, 0, 0, 0 };
    /* padded planes above the stack budget (8192 floats) */
    CHECK(compare_once(2, 2, 3, 5, 101, 97, same, 1, 0) < TOL2);
    CHECK(compare_once(4, 1, 4, 3, 90, 130, valid, 0, 1) < TOL4);
    /* one-pixel output, and a batch with several tiles per row */
    CHECK(compare_once(4, 1, 8, 8, 3, 3, valid, 1, 0) < TOL4);
    CHECK(compare_once(2, 5, 16, 16, 35, 35, same, 1, 1) < TOL2);
}

static void test_winograd_checks_refuse_what_it_cannot_do(void)
{
    float d[4096] = { 0 };
    int64_t is[4] = { 1, 2, 6, 6 }, ws_[4] = { 3, 2, 3, 3 }, os[4] = { 1, 3, 6, 6 }, us[3] = { 16, 3, 2 };
    int64_t bad_us[3] = { 25, 3, 2 }, ws5[4] = { 3, 2, 5, 5 };
    sm_tensor x, w, y, u, badu, w5;
    sm_tensor_init(&x, d, 4, is); sm_tensor_init(&w, d, 4, ws_); sm_tensor_init(&y, d, 4, os);
    sm_tensor_init(&u, d, 3, us); sm_tensor_init(&badu, d, 3, bad_us); sm_tensor_init(&w5, d, 4, ws5);
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    sm_err err;
    CHECK(sm_winograd_check(&err, &y, &x, &u, NULL, &p) == SM_OK);
    CHECK(sm_winograd_check(&err, &y, &x, &badu, NULL, &p) == SM_EINVAL);
    CHECK(strstr(err.msg, "[25,3,2]") != NULL);
    CHECK(sm_winograd_prepare_check(&err, &u, &w, 3) == SM_EINVAL);
    CHECK(sm_winograd_prepare_check(&err, &u, &w, 4) == SM_EINVAL); /* 4 needs 36 positions */
    CHECK(sm_winograd_prepare_check(&err, &u, &w5, 2) == SM_EINVAL);
    p.sh = p.sw = 2;
    CHECK(!sm_winograd_applies(&p));
    CHECK(sm_winograd_check(&err, &y, &x, &u, NULL, &p) == SM_EINVAL);
    CHECK(strstr(err.msg, "stride 1") != NULL);
    p.sh = p.sw = 1;
    int64_t os_wrong[4] = { 1, 3, 5, 6 };
    sm_tensor yw;
    sm_tensor_init(&yw, d, 4, os_wrong);
    CHECK(sm_winograd_check(&err, &yw, &x, &u, NULL, &p) == SM_EINVAL); /* the ordinary shape check */
}

/* The training kernels against conv2d.c: the input gradient as a forward
 * of grad_out with the flipped weights (padding 2 - p), and the weight and
 * bias gradients (accumulated onto a nonzero start). Returns the largest
 * difference relative to 1 + |im2col| over both. */
static double compare_backward(int tile, int64_t n, int64_t cin, int64_t cout, int64_t h, int64_t w,
                               const int pad[4])
{
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, pad[0], pad[1], pad[2], pad[3], 1 };
    sm_conv2d_params q = { 3, 3, 1, 1, 1, 1, 2 - pad[0], 2 - pad[1], 2 - pad[2], 2 - pad[3], 1 };
    int64_t a = tile + 2;
    int64_t is[4] = { n, cin, h, w }, ws_[4] = { cout, cin, 3, 3 }, bs[1] = { cout };
    int64_t os[4] = { n, cout, sm_conv_out_size(h, 3, 1, 1, pad[0], pad[2]), sm_conv_out_size(w, 3, 1, 1, pad[1], pad[3]) };
    int64_t us[3] = { a * a, cin, cout };
    int64_t nin = sm_numel(4, is), nw = sm_numel(4, ws_);
    float *x = randn(nin), *wt = randn(nw), *g = randn(sm_numel(4, os));
    float *gi0 = calloc((size_t)nin, sizeof(float)), *gi1 = calloc((size_t)nin, sizeof(float));
    float *gw0 = malloc((size_t)nw * sizeof(float)), *gw1 = malloc((size_t)nw * sizeof(float));
    float gb0[32], gb1[32];
    for (int64_t i = 0; i < nw; i++) gw0[i] = gw1[i] = 0.25f;
    for (int64_t i = 0; i < cout; i++) gb0[i] = gb1[i] = -0.5f;
    float *u = malloc((size_t)sm_numel(3, us) * sizeof(float));
    sm_tensor tx, tw, tg, tgi0, tgi1, tgw0, tgw1, tgb0, tgb1, tu;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, wt, 4, ws_); sm_tensor_init(&tg, g, 4, os);
    sm_tensor_init(&tgi0, gi0, 4, is); sm_tensor_init(&tgi1, gi1, 4, is);
    sm_tensor_init(&tgw0, gw0, 4, ws_); sm_tensor_init(&tgw1, gw1, 4, ws_);
    sm_tensor_init(&tgb0, gb0, 1, bs); sm_tensor_init(&tgb1, gb1, 1, bs); sm_tensor_init(&tu, u, 3, us);
    sm_err err;
    CHECK(sm_winograd_prepare_flipped_check(&err, &tu, &tw, tile) == SM_OK);
    CHECK(sm_winograd_check(&err, &tgi1, &tg, &tu, NULL, &q) == SM_OK);
    CHECK(sm_winograd_backward_weight_check(&err, &tgw1, &tgb1, &tg, &tx, &p, tile) == SM_OK);
    float *ws0 = malloc((sm_conv2d_workspace(&tx, &tg, &p) + 1) * sizeof(float));
    float *ws1 = malloc(sm_winograd_workspace(&tgi1, &tg, &tu) * sizeof(float));
    float *ws2 = malloc(sm_winograd_backward_weight_workspace(&tg, &tx, tile) * sizeof(float));
    sm_conv2d_backward_input(&tgi0, &tg, &tw, &p, ws0);
    sm_conv2d_backward_params(&tgw0, &tgb0, &tg, &tx, &p, 0.5f, ws0);
    sm_winograd_prepare_flipped(&tu, &tw, tile);
    sm_winograd_forward(&tgi1, &tg, &tu, NULL, &q, 0, ws1);
    sm_winograd_backward_weight(&tgw1, &tgb1, &tg, &tx, &p, 0.5f, tile, ws2);
    double worst = 0;
    for (int64_t i = 0; i < nin; i++) {
        double d = fabs(gi1[i] - gi0[i]) / (1 + fabs(gi0[i]));
        if (d > worst) worst = d;
    }
    /* a weight gradient sums n*Ho*Wo products: relative to its scale */
    double scale = sqrt((double)(n * os[2] * os[3]));
    for (int64_t i = 0; i < nw; i++) {
        double d = fabs(gw1[i] - gw0[i]) / (scale + fabs(gw0[i]));
        if (d > worst) worst = d;
    }
    for (int64_t i = 0; i < cout; i++) {
        double d = fabs(gb1[i] - gb0[i]) / (scale + fabs(gb0[i]));
        if (d > worst) worst = d;
    }
    free(x); free(wt); free(g); free(gi0); free(gi1); free(gw0); free(gw1); free(u); free(ws0); free(ws1); free(ws2);
    return worst;
}

static void test_winograd_training_gradients_match_im2col(void)
{
    static const int pads[4][4] = { { 1, 1, 1, 1 }, { 0, 0, 0, 0 }, { 0, 1, 1, 0 }, { 2, 0, 1, 2 } };
    for (int trial = 0; trial < 24; trial++) {
        int tile = trial % 2 ? 4 : 2;
        int64_t n = 1 + (int64_t)sm_rng_below(&rng, 3);
        int64_t cin = 1 + (int64_t)sm_rng_below(&rng, 20), cout = 1 + (int64_t)sm_rng_below(&rng, 20);
        int64_t h = 3 + (int64_t)sm_rng_below(&rng, 20), w = 3 + (int64_t)sm_rng_below(&rng, 20);
        double worst = compare_backward(tile, n, cin, cout, h, w, pads[trial % 4]);
        CHECK(worst < (tile == 2 ? TOL2 : TOL4));
    }
    /* a plane above the padded-gather budget */
    static const int same[4] = { 1, 1, 1, 1 };
    CHECK(compare_backward(4, 2, 3, 5, 101, 97, same) < TOL4);
}

int main(void)
{
    sm_rng_seed(&rng, 20261122);
    RUN(test_winograd_matches_im2col);
    RUN(test_winograd_large_planes_take_the_checked_path);
    RUN(test_winograd_checks_refuse_what_it_cannot_do);
    RUN(test_winograd_training_gradients_match_im2col);
    return ctest_summary("winograd");
}
