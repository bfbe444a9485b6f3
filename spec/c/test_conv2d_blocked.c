/* Plain-C tests of the direct convolution on weights packed by panels of
 * output channels (conv/blocked.c): every code path the CPU runs
 * (portable, AVX2 + FMA, AVX-512) at one and two threads against the
 * convolution by its definition in double (within derived error bounds)
 * and, on dyadic data, exactly, on the shapes that take its different routes: stride 1
 * (positions flattened over the plane), stride 2 and (2, 1) (one output row
 * at a time), stride 3 (one position at a time), dilation, asymmetric and
 * valid padding, a 7x7 first layer with 3 input channels, a 16-channel
 * panel (Cout 16 and 48), outputs of 1x1, several samples, the fused ReLU
 * and no bias; the split of the work between threads by rows (large maps)
 * and by panels (deep layers); and the checks. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_rng.h"
#include "ctest_conv.h"
#include "nn.h"

/* Every output of every path the CPU runs, at 1 and 2 threads, and of the
 * default dispatch, against the convolution by its definition in double
 * (ctest_conv.h), within the bound of ctest.h for each element:
 *
 *   float weights: K products + the bias + the residual summed in any
 *     order: gamma(K + 2) * (|b| + |res| + sum |w||x|), plus the double
 *     reference's own gamma_d(K + 2) of the same; the fused ReLU is
 *     1-Lipschitz and adds nothing.
 *   8-bit weights: the kernel sums with its panel weights w' = (off + 128
 *     step) + step (q - 128) (3 roundings, |w' - W| <= 3u(1 + u) B with W
 *     = off + step lv exactly and B = |off| + 255 |step|), the test's w =
 *     off + step lv has 2 (|w - W| <= 2u(1 + u) B): |w' - w| <= gamma(6) B,
 *     which moves the output by gamma(6) B sum |x|; its rounding bound on
 *     |w'| instead of |w| adds gamma(K + 2) of that, and gamma(6)(1 +
 *     gamma(K + 2)) <= gamma(K + 8) (Higham lemma 3.3).
 *
 * dyadic: the data are k/16 (ctest_rng.h), the 8-bit grid offsets -1 -
 * (o % 4)/128 and steps 1/128, so every product and partial sum is exact
 * (|sum| < 2^12 in steps of 2^-11: 23 bits) and the bound is 0: any wrong
 * index or skipped tap shows however small. */
static ctest_worst blocked_worst_opts(int64_t N, int64_t cin, int64_t cout, int64_t H, int64_t W, sm_conv2d_params p,
                                      int with_bias, int relu, int residual, int q8, int dyadic)
{
    int64_t K = cin * p.kh * p.kw;
    int64_t is[4] = { N, cin, H, W }, ws_[4] = { cout, cin, p.kh, p.kw }, bs[1] = { cout }, ps[2] = { cout, K };
    int64_t os[4] = { N, cout, sm_conv_out_size(H, p.kh, p.sh, p.dh, p.pt, p.pb),
                      sm_conv_out_size(W, p.kw, p.sw, p.dw, p.pl, p.pr) };
    int64_t ny = sm_numel(4, os);
    float *(*gen)(int64_t) = dyadic ? randk16 : randn;
    float *x = gen(sm_numel(4, is)), *w = gen(sm_numel(4, ws_)), *b = gen(cout), *res = gen(ny);
    /* 8-bit: weights on a grid per output channel, offset + step * level */
    float grid[2 * 256];
    int8_t *levels = malloc((size_t)(cout * K));
    if (q8) {
        for (int64_t o = 0; o < cout; o++) {
            grid[o] = dyadic ? -1.0f - (float)(o % 4) / 128 : -1.0f - 0.01f * (float)o;
            grid[cout + o] = dyadic ? 1.0f / 128 : 1.0f / 128 + 1e-4f * (float)o;
            for (int64_t k = 0; k < K; k++) {
                int lv = (int)(sm_rng_uniform(&rng) * 256) & 255;
                w[o * K + k] = grid[o] + grid[cout + o] * (float)lv;
            }
        }
    }
    float *y1 = malloc((size_t)ny * sizeof(float));
    float *wb = malloc((size_t)(cout * K) * sizeof(float));
    sm_tensor tx, tw, tb, ty1, twb;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, w, 4, ws_); sm_tensor_init(&tb, b, 1, bs);
    sm_tensor_init(&ty1, y1, 4, os); sm_tensor_init(&twb, wb, 2, ps);
    sm_tensor *bias = with_bias ? &tb : NULL;
    sm_err err;
    CHECK(sm_conv2d_blocked_pack_check(&err, &twb, &tw) == SM_OK);
    CHECK(sm_conv2d_blocked_check(&err, &ty1, &tx, &twb, bias, &p) == SM_OK);
    ref_conv ref = ref_conv2d(x, is, w, cout, with_bias ? b : NULL, residual ? res : NULL, &p);
    CHECK(ref.K == K && ref.os[2] == os[2] && ref.os[3] == os[3]);
    double *bound = malloc((size_t)ny * sizeof(double));
    int64_t plane = os[2] * os[3];
    for (int64_t i = 0; i < ny; i++) {
        int64_t o = i / plane % cout;
        bound[i] = (ctest_gamma((double)K + 2) + ctest_gamma_d((double)K + 2)) * ref.abs[i];
        if (q8) bound[i] += ctest_gamma((double)K + 8) * (fabs(grid[o]) + 255 * fabs(grid[cout + o])) * ref.absx[i];
        if (dyadic) bound[i] = 0;
    }
    sm_conv2d_blocked_pack(&twb, &tw);
    int64_t gs[2] = { 2, cout }, qs[1] = { cout * K / 4 };
    sm_tensor tgrid, twq, tres;
    sm_tensor_init(&tgrid, grid, 2, gs);
    sm_tensor_init(&twq, (float *)levels, 1, qs);
    sm_tensor_init(&tres, res, 4, os);
    sm_tensor *r = residual ? &tres : NULL;
    if (q8) {
        CHECK(sm_conv2d_blocked_pack8_check(&err, &twq, &tgrid, &tw) == SM_OK);
        CHECK(sm_conv2d_blocked_pack8(&twq, &tgrid, &tw));
        CHECK(sm_conv2d_blocked_check8(&err, &ty1, &tx, &twq, &tgrid, bias, &p) == SM_OK);
    }
    if (r) CHECK(sm_conv2d_blocked_check_residual(&err, &ty1, r) == SM_OK);
    ctest_worst worst = CTEST_WORST_INIT;
    int ran = 0;
    int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 2; threads++) {
        omp_set_num_threads(threads);
        /* exactly the workspace asked for: reads past it show under ASan */
        float *ws1 = malloc(sm_conv2d_blocked_workspace(&ty1, &tx, &p, q8) * sizeof(float));
        for (int path = 0; path <= 3; path++) {
            for (int64_t i = 0; i < ny; i++) y1[i] = 12345.0f; /* a sentinel left stands out */
            if (path == 3) { /* the default dispatch: one of the paths */
                if (q8) sm_conv2d_blocked_forward8(&ty1, &tx, &twq, &tgrid, bias, r, &p, relu, ws1);
                else sm_conv2d_blocked_forward(&ty1, &tx, &twb, bias, r, &p, relu, ws1);
            } else if (!(q8 ? sm_conv2d_blocked_forward8_path(path, &ty1, &tx, &twq, &tgrid, bias, r, &p, relu, ws1)
                            : sm_conv2d_blocked_forward_path(path, &ty1, &tx, &twb, bias, r, &p, relu, ws1))) {
                continue;
            } else {
                ran++;
            }
            for (int64_t i = 0; i < ny; i++) {
                double want = relu && ref.y[i] < 0 ? 0 : ref.y[i];
                ctest_worst_add(&worst, i, y1[i], want, bound[i]);
            }
        }
        free(ws1);
    }
    omp_set_num_threads(saved);
    CHECK(ran >= 2); /* the portable path always runs */
    ref_conv_free(&ref);
    free(bound);
    free(x); free(w); free(b); free(res); free(levels); free(y1); free(wb);
    return worst;
}

/* The residual (added before the ReLU) and 8-bit weights on a grid. */
static void test_blocked_residual_and_8bit(void)
{
    sm_conv2d_params same3 = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    sm_conv2d_params valid_s2 = { 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1 };
    for (int dyadic = 0; dyadic <= 1; dyadic++) {
        CHECK_WORST(blocked_worst_opts(1, 32, 32, 35, 35, same3, 1, 1, 1, 0, dyadic), "residual, relu");
        CHECK_WORST(blocked_worst_opts(2, 64, 48, 6, 7, same3, 1, 0, 1, 0, dyadic), "residual");
        CHECK_WORST(blocked_worst_opts(1, 256, 256, 4, 4, same3, 1, 1, 0, 1, dyadic), "8-bit, relu");
        CHECK_WORST(blocked_worst_opts(1, 128, 48, 9, 9, valid_s2, 0, 0, 1, 1, dyadic), "8-bit, residual");
        CHECK_WORST(blocked_worst_opts(3, 16, 16, 5, 5, same3, 1, 1, 1, 1, dyadic), "8-bit, residual, relu");
    }
}

/* Weights off the grid are refused, and the checks name the shapes. */
static void test_blocked_pack8_refuses(void)
{
    int64_t ws_[4] = { 16, 2, 1, 1 }, gs[2] = { 2, 16 }, qs[1] = { 8 }, bad_qs[1] = { 9 };
    float w[32], grid[32], q[9];
    for (int o = 0; o < 16; o++) {
        grid[o] = 0.0f;
        grid[16 + o] = 0.5f;
        w[2 * o] = 0.5f * 3;
        w[2 * o + 1] = 0.5f * 255;
    }
    sm_tensor tw, tgrid, tq, tbad;
    sm_tensor_init(&tw, w, 4, ws_); sm_tensor_init(&tgrid, grid, 2, gs); sm_tensor_init(&tq, q, 1, qs);
    sm_tensor_init(&tbad, q, 1, bad_qs);
    sm_err err;
    CHECK(sm_conv2d_blocked_pack8_check(&err, &tq, &tgrid, &tw) == SM_OK);
    CHECK(sm_conv2d_blocked_pack8(&tq, &tgrid, &tw) == 1);
    w[7] = 0.5f * 3 + 0.01f;                 /* between two levels */
    CHECK(sm_conv2d_blocked_pack8(&tq, &tgrid, &tw) == 0);
    w[7] = 0.5f * 256;                       /* past the last level */
    CHECK(sm_conv2d_blocked_pack8(&tq, &tgrid, &tw) == 0);
    CHECK(sm_conv2d_blocked_pack8_check(&err, &tbad, &tgrid, &tw) != SM_OK);
    CHECK(strstr(err.msg, "8-bit weight") != NULL);
    int64_t os[4] = { 1, 16, 3, 3 }, rs[4] = { 1, 16, 3, 4 };
    sm_tensor tout, tres;
    sm_tensor_init(&tout, w, 4, os); sm_tensor_init(&tres, w, 4, rs);
    CHECK(sm_conv2d_blocked_check_residual(&err, &tout, &tres) != SM_OK);
    CHECK(strstr(err.msg, "residual") != NULL);
}

static void test_blocked_forward_matches_im2col(void)
{
    sm_conv2d_params same3 = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    sm_conv2d_params valid3 = { 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
    sm_conv2d_params valid_s2 = { 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1 };
    sm_conv2d_params same_s2 = { 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1 };
    sm_conv2d_params first = { 7, 7, 2, 2, 1, 1, 0, 0, 0, 0, 1 };
    sm_conv2d_params rows_s21 = { 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1 };
    sm_conv2d_params s3 = { 3, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1 };
    sm_conv2d_params dil = { 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1 };
    sm_conv2d_params asym = { 3, 5, 1, 1, 1, 1, 0, 3, 2, 1, 1 };
    sm_conv2d_params one = { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
    for (int dyadic = 0; dyadic <= 1; dyadic++) {
        CHECK_WORST(blocked_worst_opts(1, 32, 32, 35, 35, same3, 1, 1, 0, 0, dyadic), "rows split between threads");
        CHECK_WORST(blocked_worst_opts(1, 256, 256, 4, 4, same3, 1, 0, 0, 0, dyadic), "panels split between threads");
        CHECK_WORST(blocked_worst_opts(1, 64, 64, 17, 17, same3, 1, 1, 0, 0, dyadic), "1, 64, 64, 17, 17, same3, 1, 1");
        CHECK_WORST(blocked_worst_opts(2, 16, 48, 9, 11, valid3, 1, 0, 0, 0, dyadic), "a 16-channel last panel");
        CHECK_WORST(blocked_worst_opts(1, 8, 16, 6, 5, same3, 0, 1, 0, 0, dyadic), "one 16-channel panel, no bias");
        CHECK_WORST(blocked_worst_opts(1, 32, 64, 35, 35, valid_s2, 1, 1, 0, 0, dyadic), "1, 32, 64, 35, 35, valid_s2, 1, 1");
        CHECK_WORST(blocked_worst_opts(3, 24, 32, 8, 8, same_s2, 1, 0, 0, 0, dyadic), "3, 24, 32, 8, 8, same_s2, 1, 0");
        CHECK_WORST(blocked_worst_opts(1, 3, 32, 150, 150, first, 1, 1, 0, 0, dyadic), "the recognition net's first layer");
        CHECK_WORST(blocked_worst_opts(2, 5, 32, 13, 10, rows_s21, 1, 1, 0, 0, dyadic), "2, 5, 32, 13, 10, rows_s21, 1, 1");
        CHECK_WORST(blocked_worst_opts(2, 7, 16, 14, 17, s3, 1, 0, 0, 0, dyadic), "2, 7, 16, 14, 17, s3, 1, 0");
        CHECK_WORST(blocked_worst_opts(1, 9, 32, 12, 12, dil, 0, 1, 0, 0, dyadic), "1, 9, 32, 12, 12, dil, 0, 1");
        CHECK_WORST(blocked_worst_opts(2, 6, 16, 7, 9, asym, 1, 1, 0, 0, dyadic), "2, 6, 16, 7, 9, asym, 1, 1");
        CHECK_WORST(blocked_worst_opts(4, 12, 32, 5, 7, one, 1, 0, 0, 0, dyadic), "4, 12, 32, 5, 7, one, 1, 0");
        CHECK_WORST(blocked_worst_opts(2, 256, 32, 4, 4, valid_s2, 1, 1, 0, 0, dyadic), "a 1x1 output");
        CHECK_WORST(blocked_worst_opts(1, 16, 32, 1, 1, same3, 1, 0, 0, 0, dyadic), "a 1x1 input");
    }
}

static void test_blocked_checks_refuse_mismatches(void)
{
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    float buf[8192] = { 0 };
    int64_t is[4] = { 1, 4, 5, 5 }, os[4] = { 1, 16, 5, 5 }, good[2] = { 16, 36 }, bad[2] = { 16, 35 };
    int64_t odd[2] = { 12, 36 }, ws_[4] = { 16, 4, 3, 3 }, ws12[4] = { 12, 4, 3, 3 };
    sm_tensor tx, ty, twb, tbad, todd, tw, tw12;
    sm_tensor_init(&tx, buf, 4, is); sm_tensor_init(&ty, buf, 4, os); sm_tensor_init(&twb, buf, 2, good);
    sm_tensor_init(&tbad, buf, 2, bad); sm_tensor_init(&todd, buf, 2, odd); sm_tensor_init(&tw, buf, 4, ws_);
    sm_tensor_init(&tw12, buf, 4, ws12);
    sm_err err;
    CHECK(sm_conv2d_blocked_check(&err, &ty, &tx, &twb, NULL, &p) == SM_OK);
    CHECK(sm_conv2d_blocked_check(&err, &ty, &tx, &tbad, NULL, &p) != SM_OK);
    CHECK(strstr(err.msg, "packed weight") != NULL);
    CHECK(sm_conv2d_blocked_check(&err, &ty, &tx, &todd, NULL, &p) != SM_OK); /* Cout not a multiple of 16 */
    sm_conv2d_params g2 = p;
    g2.groups = 2;
    CHECK(sm_conv2d_blocked_check(&err, &ty, &tx, &twb, NULL, &g2) != SM_OK);
    int64_t os_bad[4] = { 1, 16, 4, 5 };
    sm_tensor tyb;
    sm_tensor_init(&tyb, buf, 4, os_bad);
    CHECK(sm_conv2d_blocked_check(&err, &tyb, &tx, &twb, NULL, &p) != SM_OK);
    CHECK(sm_conv2d_blocked_pack_check(&err, &twb, &tw) == SM_OK);
    CHECK(sm_conv2d_blocked_pack_check(&err, &tbad, &tw) != SM_OK);
    CHECK(sm_conv2d_blocked_pack_check(&err, &todd, &tw12) != SM_OK);
    CHECK(strstr(err.msg, "multiple of 16") != NULL);
}

/* The packed layout: panels of 32 output channels, the last one 16 wide. */
static void test_blocked_pack_layout(void)
{
    int64_t cout = 48, K = 5, ws_[4] = { 48, 5, 1, 1 }, ps[2] = { 48, 5 };
    float w[240], wb[240];
    for (int i = 0; i < 240; i++) w[i] = (float)i;
    sm_tensor tw, twb;
    sm_tensor_init(&tw, w, 4, ws_);
    sm_tensor_init(&twb, wb, 2, ps);
    sm_conv2d_blocked_pack(&twb, &tw);
    for (int64_t o = 0; o < cout; o++)
        for (int64_t k = 0; k < K; k++) {
            int64_t o0 = o / 32 * 32, ob = cout - o0 < 32 ? cout - o0 : 32;
            CHECK(wb[o0 * K + k * ob + (o - o0)] == w[o * K + k]);
        }
}

int main(void)
{
    sm_rng_seed(&rng, 20261122);
    RUN(test_blocked_forward_matches_im2col);
    RUN(test_blocked_checks_refuse_mismatches);
    RUN(test_blocked_pack_layout);
    RUN(test_blocked_residual_and_8bit);
    RUN(test_blocked_pack8_refuses);
    return ctest_summary("conv2d_blocked");
}
