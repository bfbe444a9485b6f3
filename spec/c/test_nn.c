/* Plain-C tests of the nn kernels: convolution against a direct loop
 * (forward, and backward through the adjoint identity <conv(x), g> =
 * <x, conv^T(g)>), pooling, dense layers, losses and an optimiser step. */
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_rng.h"
#include "nn.h"

/* Direct definition of the convolution (see conv2d.c). */
static float conv_at(const float *x, const float *w, const float *b, const int64_t *is, int64_t cout,
                     const sm_conv2d_params *p, int64_t n, int64_t o, int64_t y, int64_t xx)
{
    int64_t cg = is[1] / p->groups, g = o / (cout / p->groups);
    double s = b ? b[o] : 0;
    for (int64_t c = 0; c < cg; c++)
        for (int i = 0; i < p->kh; i++)
            for (int j = 0; j < p->kw; j++) {
                int64_t iy = y * p->sh - p->pt + i * p->dh, ix = xx * p->sw - p->pl + j * p->dw;
                if (iy < 0 || iy >= is[2] || ix < 0 || ix >= is[3]) continue;
                s += (double)w[((o * cg + c) * p->kh + i) * p->kw + j] *
                     x[((n * is[1] + g * cg + c) * is[2] + iy) * is[3] + ix];
            }
    return (float)s;
}

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
        float *x = randn(sm_numel(4, is)), *w = randn(sm_numel(4, ws_)), *b = randn(cout);
        float *y = calloc((size_t)sm_numel(4, os), sizeof(float)), *g = randn(sm_numel(4, os));
        float *gx = calloc((size_t)sm_numel(4, is), sizeof(float)), *gw = calloc((size_t)sm_numel(4, ws_), sizeof(float));
        sm_tensor tx, tw, tb, ty, tg, tgx, tgw;
        sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, w, 4, ws_); sm_tensor_init(&tb, b, 1, bs);
        sm_tensor_init(&ty, y, 4, os); sm_tensor_init(&tg, g, 4, os);
        sm_tensor_init(&tgx, gx, 4, is); sm_tensor_init(&tgw, gw, 4, ws_);
        sm_err err;
        CHECK(sm_conv2d_check(&err, &ty, &tx, &tw, &tb, &p) == SM_OK);
        float *ws = malloc(sm_conv2d_workspace(&tx, &ty, &p) * sizeof(float));
        sm_conv2d_forward(&ty, &tx, &tw, &tb, &p, ws);
        double worst = 0, dot_y = 0, dot_x = 0, dot_w = 0;
        for (int64_t n = 0; n < os[0]; n++)
            for (int64_t o = 0; o < os[1]; o++)
                for (int64_t yy = 0; yy < os[2]; yy++)
                    for (int64_t xx = 0; xx < os[3]; xx++) {
                        int64_t k = ((n * os[1] + o) * os[2] + yy) * os[3] + xx;
                        double d = fabs(y[k] - conv_at(x, w, b, is, cout, &p, n, o, yy, xx));
                        if (d > worst) worst = d;
                        /* <conv(x) - b, g> for the adjoint identities below */
                        dot_y += (double)(y[k] - b[o]) * g[k];
                    }
        CHECK(worst < 1e-4);
        sm_conv2d_backward_input(&tgx, &tg, &tw, &p, ws);
        sm_conv2d_backward_params(&tgw, NULL, &tg, &tx, &p, 1.0f, ws);
        for (int64_t i = 0; i < sm_numel(4, is); i++) dot_x += (double)x[i] * gx[i];
        for (int64_t i = 0; i < sm_numel(4, ws_); i++) dot_w += (double)w[i] * gw[i];
        /* conv is linear in x and in w: <conv(x), g> = <x, dL/dx> = <w, dL/dw> */
        CHECK_NEAR(dot_x, dot_y, 1e-3 * (1 + fabs(dot_y)));
        CHECK_NEAR(dot_w, dot_y, 1e-3 * (1 + fabs(dot_y)));
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
    CHECK_NEAR(y[0], 12, 0);
    sm_maxpool2d_backward(&tgx, &tg, idx);
    CHECK_NEAR(gx[4], 1, 0);
    sm_avgpool2d_forward(&ty, &tx, &p);
    CHECK_NEAR(y[0], 5.5, 1e-6);

    float in[6] = { 1, 2, 3, 4, 5, 6 }, w[6] = { 1, 0, -1, 2, 1, 0 }, b[2] = { 0.5f, -0.5f }, out[4];
    int64_t s_in[2] = { 2, 3 }, s_w[2] = { 2, 3 }, s_b[1] = { 2 }, s_out[2] = { 2, 2 };
    sm_tensor ti, tw, tb, to;
    sm_tensor_init(&ti, in, 2, s_in); sm_tensor_init(&tw, w, 2, s_w);
    sm_tensor_init(&tb, b, 1, s_b); sm_tensor_init(&to, out, 2, s_out);
    CHECK(sm_linear_check(&err, &to, &ti, &tw, &tb) == SM_OK);
    sm_linear_forward(&to, &ti, &tw, &tb);
    CHECK_NEAR(out[0], 1 - 3 + 0.5, 1e-6);
    CHECK_NEAR(out[1], 2 + 2 - 0.5, 1e-6);
    CHECK_NEAR(out[3], 8 + 5 - 0.5, 1e-6);
}

static void test_losses(void)
{
    float d[2] = { 0.5f, 0.25f }, y[2] = { 1, 0 }, g[2];
    double l = sm_contrastive_loss(g, d, y, 2, 1.0f, 1.0f);
    CHECK_NEAR(l, (0.25 + 0.75 * 0.75) / 2, 1e-7);
    CHECK_NEAR(g[0], 0.5, 1e-7);   /* 2 y d / N */
    CHECK_NEAR(g[1], -0.75, 1e-7); /* -2 (m - d) / N */
    float e[8] = { 0, 0, 0, 1, 3, 0, 3, 1 };
    int64_t lab[4] = { 1, 1, 2, 2 };
    double work[32];
    int64_t active;
    /* every anchor: positive at 1, nearest negative at 3: max(1 - 3 + 1, 0) = 0 */
    l = sm_batch_triplet_loss(NULL, e, lab, 4, 2, 1.0f, 0, 1e-7f, SM_MINE_BATCH_HARD, 1.0f, work, &active);
    CHECK_NEAR(l, 0, 1e-7);
    CHECK(active == 4);
    l = sm_batch_triplet_loss(NULL, e, lab, 4, 2, 3.0f, 0, 1e-7f, SM_MINE_BATCH_HARD, 1.0f, work, &active);
    CHECK_NEAR(l, 1, 1e-6);

    /* Semi-hard, 1-D points s0 = 0, s1 = 1 (identity 1), s2 = -0.5, s3 = 1.5
     * (identity 2), margin 1. (0,1): d_ap 1, negatives s2 at 0.5 and s3 at
     * 1.5: semi-hard s3 -> 0.5; (1,0): negatives s2 at 1.5, s3 at 0.5:
     * semi-hard s2 -> 0.5; (2,3) and (3,2): d_ap 2, no negative in (2, 3):
     * the hardest, at 0.5 -> 2.5 each. Mean over 4 pairs: 1.5 (batch-hard
     * gives 2). */
    float s[4] = { 0, 1, -0.5f, 1.5f }, gs[4];
    l = sm_batch_triplet_loss(gs, s, lab, 4, 1, 1.0f, 0, 1e-7f, SM_MINE_SEMIHARD, 1.0f, work, &active);
    CHECK_NEAR(l, 1.5, 1e-6);
    CHECK(active == 4);
    /* d/ds0 = (d01' - d03') + d10' - d20' = (-1 + 1) - 1 - 1 = -2, over 4 */
    CHECK_NEAR(gs[0], -0.5, 1e-6);
    /* d/ds1 = d01' + (d10' - d12') - d31' = 1 + (1 - 1) + 1 = 2, over 4 */
    CHECK_NEAR(gs[1], 0.5, 1e-6);
    /* d/ds2 = -d12' + (d23' - d20') + d32' = 1 + (-1 + 1) - 1 = 0 */
    CHECK_NEAR(gs[2], 0, 1e-6);
    CHECK_NEAR(gs[3], 0, 1e-6);
    l = sm_batch_triplet_loss(NULL, s, lab, 4, 1, 1.0f, 0, 1e-7f, SM_MINE_BATCH_HARD, 1.0f, work, &active);
    CHECK_NEAR(l, 2.0, 1e-6);
}

static void test_sgd_step(void)
{
    float w[2] = { 1, -1 }, v[2] = { 0, 0 }, g[2] = { 0.5f, 0.5f };
    sm_sgd_step(w, v, g, 2, 0.1f, 0.9f, 0.0f, 0);
    CHECK_NEAR(w[0], 0.95, 1e-7);
    sm_sgd_step(w, v, g, 2, 0.1f, 0.9f, 0.0f, 0);
    CHECK_NEAR(w[0], 0.95 - 0.1 * (0.9 * 0.5 + 0.5), 1e-6);
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
