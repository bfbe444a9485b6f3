/* Plain-C tests of the nn kernels: convolution against a direct loop
 * (forward, and backward through the adjoint identity <conv(x), g> =
 * <x, conv^T(g)>), pooling, dense layers, losses and an optimiser step. */
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_rng.h"
#include "ctest_conv.h"
#include "nn.h"

/* The forward against the definition in double (ctest_conv.h): K products
 * and the bias in any order, within gamma(K + 1) (|b| + sum |w||x|), the
 * reference within gamma_d(K + 1) of the same (ctest.h).
 *
 * The backward through the adjoint identities, exact in exact arithmetic:
 * <conv(x) - b, g> = <x, dL/dx> = <w, dL/dw> = sum over every (output,
 * tap) of g w x. With T = sum_k |g_k| (|b_o| + sum |w||x|)_k (which bounds
 * the same triple sum on absolute values):
 *   dot_y: each y_k - b (K products, the bias, the subtraction in float)
 *     within gamma(K + 2) of its absolute sum: gamma(K + 2) T;
 *   dot_x: each dL/dx_i sums Kx = (Cout / groups) kh kw products w g:
 *     gamma(Kx) T;
 *   dot_w: each dL/dw_j sums N Ho Wo products g x, times scale 1, added
 *     onto 0: gamma(N Ho Wo + 2) T;
 * and each dot, summed in double over its products (exact in double),
 * within gamma_d(its length) of (1 + that gamma) T. */
static void test_conv_matches_direct_loop_and_its_adjoint(void)
{
    for (int trial = 0; trial < 30; trial++) {
        sm_conv2d_params p;
        p.groups = 1 + (int)sm_rng_below(&rng, 3);
        p.kh = 1 + (int)sm_rng_below(&rng, 3); p.kw = 1 + (int)sm_rng_below(&rng, 3);
        p.sh = 1 + (int)sm_rng_below(&rng, 2); p.sw = 1 + (int)sm_rng_below(&rng, 2);
        p.dh = 1 + (int)sm_rng_below(&rng, 2); p.dw = 1 + (int)sm_rng_below(&rng, 2);
        p.pt = (int)sm_rng_below(&rng, 2); p.pb = (int)sm_rng_below(&rng, 3);
        p.pl = (int)sm_rng_below(&rng, 2); p.pr = (int)sm_rng_below(&rng, 3);
        int64_t is[4] = { 1 + (int64_t)sm_rng_below(&rng, 3), p.groups * (1 + (int64_t)sm_rng_below(&rng, 3)),
                          5 + (int64_t)sm_rng_below(&rng, 5), 5 + (int64_t)sm_rng_below(&rng, 5) };
        int64_t cout = p.groups * (1 + (int64_t)sm_rng_below(&rng, 3));
        if (trial % 3 == 0) { is[1] = p.groups; cout = p.groups; } /* depthwise: direct loops */
        int64_t ws_[4] = { cout, is[1] / p.groups, p.kh, p.kw }, bs[1] = { cout };
        int64_t os[4] = { is[0], cout, sm_conv_out_size(is[2], p.kh, p.sh, p.dh, p.pt, p.pb),
                          sm_conv_out_size(is[3], p.kw, p.sw, p.dw, p.pl, p.pr) };
        int64_t nx = sm_numel(4, is), nw = sm_numel(4, ws_), ny = sm_numel(4, os);
        float *x = randn(nx), *w = randn(nw), *b = randn(cout);
        float *y = calloc((size_t)ny, sizeof(float)), *g = randn(ny);
        float *gx = calloc((size_t)nx, sizeof(float)), *gw = calloc((size_t)nw, sizeof(float));
        sm_tensor tx, tw, tb, ty, tg, tgx, tgw;
        sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, w, 4, ws_); sm_tensor_init(&tb, b, 1, bs);
        sm_tensor_init(&ty, y, 4, os); sm_tensor_init(&tg, g, 4, os);
        sm_tensor_init(&tgx, gx, 4, is); sm_tensor_init(&tgw, gw, 4, ws_);
        sm_err err;
        CHECK(sm_conv2d_check(&err, &ty, &tx, &tw, &tb, &p) == SM_OK);
        float *ws = malloc(plain_workspace(&tx, &ty, &p) * sizeof(float));
        plain_forward(&ty, &tx, &tw, &tb, &p, ws);
        ref_conv ref = ref_conv2d(x, is, w, cout, b, NULL, &p);
        ctest_worst worst = CTEST_WORST_INIT;
        double dot_y = 0, dot_x = 0, dot_w = 0, T = 0;
        for (int64_t k = 0; k < ny; k++) {
            int64_t o = k / (os[2] * os[3]) % cout;
            ctest_worst_add(&worst, k, y[k], ref.y[k],
                            (ctest_gamma((double)ref.K + 1) + ctest_gamma_d((double)ref.K + 1)) * ref.abs[k]);
            /* <conv(x) - b, g> for the adjoint identities below */
            dot_y += (double)(y[k] - b[o]) * g[k];
            T += fabs(g[k]) * ref.abs[k];
        }
        CHECK_WORST(worst, "forward");
        plain_backward_input(&tgx, &tg, &tw, &p, ws);
        plain_backward_weight(&tgw, NULL, &tg, &tx, &p, 1.0f, ws);
        for (int64_t i = 0; i < nx; i++) dot_x += (double)x[i] * gx[i];
        for (int64_t i = 0; i < nw; i++) dot_w += (double)w[i] * gw[i];
        double gy = ctest_gamma((double)ref.K + 2), gxx = ctest_gamma((double)(cout / p.groups * p.kh * p.kw));
        double gww = ctest_gamma((double)(os[0] * os[2] * os[3]) + 2);
        double by = (gy + ctest_gamma_d((double)ny) * (1 + gy)) * T;
        double bx = (gxx + ctest_gamma_d((double)nx) * (1 + gxx)) * T;
        double bw = (gww + ctest_gamma_d((double)nw) * (1 + gww)) * T;
        /* conv is linear in x and in w: <conv(x), g> = <x, dL/dx> = <w, dL/dw> */
        CHECK_BOUND(dot_x, dot_y, bx + by);
        CHECK_BOUND(dot_w, dot_y, bw + by);
        ref_conv_free(&ref);
        free(x); free(w); free(b); free(y); free(g); free(gx); free(gw); free(ws);
    }
}

static void test_conv_check_refuses_bad_shapes(void)
{
    float d[64] = { 0 };
    int64_t is[4] = { 1, 3, 4, 4 }, ws_[4] = { 2, 2, 3, 3 }, os[4] = { 1, 2, 2, 2 };
    sm_tensor x, w, y;
    sm_tensor_init(&x, d, 4, is); sm_tensor_init(&w, d, 4, ws_); sm_tensor_init(&y, d, 4, os);
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
    sm_err err;
    CHECK(sm_conv2d_check(&err, &y, &x, &w, NULL, &p) == SM_EINVAL); /* 3 input channels, weight wants 2 */
    CHECK(strstr(err.msg, "[1,3,4,4]") != NULL);
    int a, b;
    sm_conv_same_padding(112, 3, 2, 1, &a, &b);
    CHECK(a == 0 && b == 1); /* TensorFlow's rule: the extra pixel after */
    sm_conv_same_padding(5, 3, 1, 1, &a, &b);
    CHECK(a == 1 && b == 1);
}

static void test_pool_and_linear(void)
{
    float x[16], y[4], g[4] = { 1, 2, 3, 4 }, gx[16] = { 0 };
    int32_t idx[4];
    for (int i = 0; i < 16; i++) x[i] = (float)((i * 7) % 16);
    int64_t is[4] = { 1, 1, 4, 4 }, os[4] = { 1, 1, 2, 2 };
    sm_tensor tx, ty, tg, tgx;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&ty, y, 4, os);
    sm_tensor_init(&tg, g, 4, os); sm_tensor_init(&tgx, gx, 4, is);
    sm_pool2d_params p = { 2, 2, 2, 2, 0, 0, 0, 0, 1 };
    sm_err err;
    CHECK(sm_pool2d_check(&err, &ty, &tx, &p) == SM_OK);
    sm_maxpool2d_forward(&ty, idx, &tx, &p);
    /* window (0,0) holds x[0,1,4,5] = 0,7,12,3 */
    CHECK(y[0] == 12);
    sm_maxpool2d_backward(&tgx, &tg, idx);
    CHECK(gx[4] == 1);
    sm_avgpool2d_forward(&ty, &tx, &p);
    CHECK(y[0] == 5.5f); /* (0 + 7 + 12 + 3) / 4: integers and a division by 4, exact */

    float in[6] = { 1, 2, 3, 4, 5, 6 }, w[6] = { 1, 0, -1, 2, 1, 0 }, b[2] = { 0.5f, -0.5f }, out[4];
    int64_t s_in[2] = { 2, 3 }, s_w[2] = { 2, 3 }, s_b[1] = { 2 }, s_out[2] = { 2, 2 };
    sm_tensor ti, tw, tb, to;
    sm_tensor_init(&ti, in, 2, s_in); sm_tensor_init(&tw, w, 2, s_w);
    sm_tensor_init(&tb, b, 1, s_b); sm_tensor_init(&to, out, 2, s_out);
    CHECK(sm_linear_check(&err, &to, &ti, &tw, &tb) == SM_OK);
    sm_linear_forward(&to, &ti, &tw, &tb);
    /* small integers and halves: every product and sum is exact */
    CHECK(out[0] == 1 - 3 + 0.5);
    CHECK(out[1] == 2 + 2 - 0.5);
    CHECK(out[3] == 8 + 5 - 0.5);
}

static void test_losses(void)
{
    /* Every value here is exact: the data are dyadic with few bits, every
     * distance is the square root of the square of a dyadic (or of 1, 9)
     * and sqrt is correctly rounded, and a gradient term c/4 (Delta/d)
     * Delta = c/4 (d = |Delta| in 1-D) is computed in double within 2^-52
     * of the float c/4, to which the cast returns. */
    float d[2] = { 0.5f, 0.25f }, y[2] = { 1, 0 }, g[2];
    double l = sm_contrastive_loss(g, d, y, 2, 1.0f, 1.0f);
    CHECK(l == (0.25 + 0.75 * 0.75) / 2);
    CHECK(g[0] == 0.5f);   /* 2 y d / N */
    CHECK(g[1] == -0.75f); /* -2 (m - d) / N */
    float e[8] = { 0, 0, 0, 1, 3, 0, 3, 1 };
    int64_t lab[4] = { 1, 1, 2, 2 };
    double work[32];
    int64_t active;
    /* every anchor: positive at 1, nearest negative at 3: max(1 - 3 + 1, 0) = 0 */
    l = sm_batch_triplet_loss(NULL, e, lab, 4, 2, 1.0f, 0, 1e-7f, SM_MINE_BATCH_HARD, 1.0f, work, &active);
    CHECK(l == 0);
    CHECK(active == 4);
    l = sm_batch_triplet_loss(NULL, e, lab, 4, 2, 3.0f, 0, 1e-7f, SM_MINE_BATCH_HARD, 1.0f, work, &active);
    CHECK(l == 1);

    /* Semi-hard, 1-D points s0 = 0, s1 = 1 (identity 1), s2 = -0.5, s3 = 1.5
     * (identity 2), margin 1. (0,1): d_ap 1, negatives s2 at 0.5 and s3 at
     * 1.5: semi-hard s3 -> 0.5; (1,0): negatives s2 at 1.5, s3 at 0.5:
     * semi-hard s2 -> 0.5; (2,3) and (3,2): d_ap 2, no negative in (2, 3):
     * the hardest, at 0.5 -> 2.5 each. Mean over 4 pairs: 1.5 (batch-hard
     * gives 2). */
    float s[4] = { 0, 1, -0.5f, 1.5f }, gs[4];
    l = sm_batch_triplet_loss(gs, s, lab, 4, 1, 1.0f, 0, 1e-7f, SM_MINE_SEMIHARD, 1.0f, work, &active);
    CHECK(l == 1.5);
    CHECK(active == 4);
    /* d/ds0 = (d01' - d03') + d10' - d20' = (-1 + 1) - 1 - 1 = -2, over 4 */
    CHECK(gs[0] == -0.5f);
    /* d/ds1 = d01' + (d10' - d12') - d31' = 1 + (1 - 1) + 1 = 2, over 4 */
    CHECK(gs[1] == 0.5f);
    /* d/ds2 = -d12' + (d23' - d20') + d32' = 1 + (-1 + 1) - 1 = 0 */
    CHECK(gs[2] == 0);
    CHECK(gs[3] == 0);
    l = sm_batch_triplet_loss(NULL, s, lab, 4, 1, 1.0f, 0, 1e-7f, SM_MINE_BATCH_HARD, 1.0f, work, &active);
    CHECK(l == 2.0);
}

/* One SGD step w -= lr (momentum v + g + wd w) (v updated) in double from
 * the same float inputs; the float kernel rounds each term at most 5 times
 * (wd w, + g, momentum v, +, lr *, w -): within gamma(5) of the sum of the
 * terms' absolute values. */
static void check_sgd_step(float *w, float *v, const float *g, float lr, float momentum, float wd)
{
    double w0 = w[0], v0 = v[0], g0 = g[0];
    double vn = momentum * v0 + g0 + wd * w0, want = w0 - lr * vn;
    double absval = fabs(w0) + lr * (momentum * fabs(v0) + fabs(g0) + wd * fabs(w0));
    sm_sgd_step(w, v, g, 2, lr, momentum, wd, 0);
    CHECK_BOUND(v[0], vn, ctest_gamma(3) * (momentum * fabs(v0) + fabs(g0) + wd * fabs(w0)));
    CHECK_BOUND(w[0], want, ctest_gamma(5) * absval);
}

static void test_sgd_step(void)
{
    float w[2] = { 1, -1 }, v[2] = { 0, 0 }, g[2] = { 0.5f, 0.5f };
    check_sgd_step(w, v, g, 0.1f, 0.9f, 0.0f);
    CHECK_BOUND(w[0], 0.95, ctest_gamma(5) * 1.05 + 0.5 * fabs((double)0.1f - 0.1)); /* and 0.1 is 0.1f within 2^-28 */
    check_sgd_step(w, v, g, 0.1f, 0.9f, 0.0f); /* momentum: v = 0.9 * 0.5 + 0.5 */
    check_sgd_step(w, v, g, 0.1f, 0.9f, 0.01f);
}

int main(void)
{
    sm_rng_seed(&rng, 7);
    RUN(test_conv_matches_direct_loop_and_its_adjoint);
    RUN(test_conv_check_refuses_bad_shapes);
    RUN(test_pool_and_linear);
    RUN(test_losses);
    RUN(test_sgd_step);
    return ctest_summary("nn");
}
