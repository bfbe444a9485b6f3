/* Plain-C tests of the Winograd convolution (conv/winograd.c): its
 * forward against the convolution by its definition in double (within
 * the error bounds derived below; exactly for F(2x2) on dyadic data) on
 * random shapes (both tiles,
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
#include "ctest_conv.h"
#include "ctest_winograd.h"
#include "nn.h"

/* The transforms as matrices give the convolution: a random tile in double. */
static void test_transform_matrices(void)
{
    for (int tile = 2; tile <= 4; tile += 2) {
        wmats M = mats(tile);
        double d[36], g[9], U[36], V[36], P[36], Y[16], Ua[36], Va[36], Pa[36], Ya[16];
        for (int i = 0; i < M.a * M.a; i++) d[i] = sm_rng_normal(&rng);
        for (int i = 0; i < 9; i++) g[i] = sm_rng_normal(&rng);
        for (int absolute = 0; absolute <= 1; absolute++) {
            sandwich(absolute ? Ua : U, M.G, M.a, g, 3, 3, M.G, M.a, absolute);        /* G g G^T */
            sandwich(absolute ? Va : V, M.BT, M.a, d, M.a, M.a, M.BT, M.a, absolute); /* B^T d B */
        }
        for (int i = 0; i < M.a * M.a; i++) { P[i] = U[i] * V[i]; Pa[i] = Ua[i] * Va[i]; }
        sandwich(Y, M.AT, M.m, P, M.a, M.a, M.AT, M.m, 0);                           /* A^T P A */
        sandwich(Ya, M.AT, M.m, Pa, M.a, M.a, M.AT, M.m, 1);
        for (int i = 0; i < M.m; i++)
            for (int j = 0; j < M.m; j++) {
                double s = 0, t = 0;
                for (int r = 0; r < 3; r++)
                    for (int c = 0; c < 3; c++) {
                        s += g[r * 3 + c] * d[(i + r) * M.a + j + c];
                        t += fabs(g[r * 3 + c] * d[(i + r) * M.a + j + c]);
                    }
                /* both in double: G's entries (1 rounding each, twice), G g G^T
                 * (3 + 3), B^T d B (6 + 6), the product (1), A^T . A (6 + 6):
                 * 31 roundings; the definition: 17 */
                CHECK_BOUND(Y[i * M.m + j], s, ctest_gamma_d(31) * Ya[i * M.m + j] + ctest_gamma_d(17) * t);
            }
    }
}

/* Every output of the Winograd forward against the convolution in double:
 * within gamma(Cin + 9 or 15) of wino_abs (above), plus the reference's
 * gamma_d(9 Cin + 1) of sum |w||x| + |b|; exactly on dyadic data with F(2x2)
 * (G holds 1/2: every transform, product and sum of values k/16 is exact). */
static ctest_worst compare_once(int tile, int64_t n, int64_t cin, int64_t cout, int64_t h, int64_t w,
                                const int pad[4], int with_bias, int relu, int dyadic)
{
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, pad[0], pad[1], pad[2], pad[3], 1 };
    int64_t a = tile + 2;
    int64_t is[4] = { n, cin, h, w }, ws_[4] = { cout, cin, 3, 3 }, bs[1] = { cout };
    int64_t os[4] = { n, cout, sm_conv_out_size(h, 3, 1, 1, pad[0], pad[2]), sm_conv_out_size(w, 3, 1, 1, pad[1], pad[3]) };
    int64_t us[3] = { a * a, cout, cin };
    float *(*gen)(int64_t) = dyadic ? randk16 : randn;
    float *x = gen(sm_numel(4, is)), *wt = gen(sm_numel(4, ws_)), *b = gen(cout);
    float *y1 = malloc((size_t)sm_numel(4, os) * sizeof(float));
    float *u = malloc((size_t)sm_numel(3, us) * sizeof(float));
    sm_tensor tx, tw, tb, ty1, tu;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, wt, 4, ws_); sm_tensor_init(&tb, b, 1, bs);
    sm_tensor_init(&ty1, y1, 4, os); sm_tensor_init(&tu, u, 3, us);
    sm_tensor *bias = with_bias ? &tb : NULL;
    sm_err err;
    CHECK(sm_winograd_applies(&p));
    CHECK(sm_winograd_prepare_check(&err, &tu, &tw, tile) == SM_OK);
    CHECK(sm_winograd_check(&err, &ty1, &tx, &tu, bias, &p) == SM_OK);
    float *ws1 = malloc(sm_winograd_workspace(&ty1, &tx, &tu) * sizeof(float));
    for (int64_t i = 0; i < sm_numel(4, os); i++) y1[i] = 12345.0f; /* a sentinel left stands out */
    sm_winograd_prepare(&tu, &tw, tile);
    sm_winograd_forward(&ty1, &tx, &tu, bias, &p, relu, ws1);
    ref_conv ref = ref_conv2d(x, is, wt, cout, with_bias ? b : NULL, NULL, &p);
    double *wabs = wino_abs(tile, x, is, wt, cout, with_bias ? b : NULL, pad, os[2], os[3]);
    double L = (double)cin + (tile == 2 ? 9 : 15);
    ctest_worst worst = CTEST_WORST_INIT;
    for (int64_t i = 0; i < sm_numel(4, os); i++) {
        double want = relu && ref.y[i] < 0 ? 0 : ref.y[i]; /* the ReLU is 1-Lipschitz */
        double bound = ctest_gamma(L) * wabs[i] + ctest_gamma_d(9 * (double)cin + 1) * ref.abs[i];
        ctest_worst_add(&worst, i, y1[i], want, dyadic && tile == 2 ? 0 : bound);
    }
    ref_conv_free(&ref);
    free(wabs);
    free(x); free(wt); free(b); free(y1); free(u); free(ws1);
    return worst;
}

static void test_winograd_matches_the_definition(void)
{
    static const int pads[4][4] = { { 1, 1, 1, 1 }, { 0, 0, 0, 0 }, { 0, 1, 1, 0 }, { 2, 0, 1, 2 } };
    for (int trial = 0; trial < 40; trial++) {
        int tile = trial % 2 ? 4 : 2;
        int64_t n = 1 + (int64_t)sm_rng_below(&rng, 3);
        int64_t cin = 1 + (int64_t)sm_rng_below(&rng, 20), cout = 1 + (int64_t)sm_rng_below(&rng, 20);
        int64_t h = 3 + (int64_t)sm_rng_below(&rng, 20), w = 3 + (int64_t)sm_rng_below(&rng, 20);
        const int *pad = pads[trial % 4];
        int dyadic = trial % 4 == 2; /* F(2x2) on exact data: bound 0 */
        CHECK_WORST(compare_once(tile, n, cin, cout, h, w, pad, trial % 5 != 0, trial % 3 == 0, dyadic),
                    dyadic ? "forward, dyadic data" : "forward");
    }
}

static void test_winograd_large_planes_take_the_checked_path(void)
{
    static const int same[4] = { 1, 1, 1, 1 }, valid[4] = { 0, 0, 0, 0 };
    /* padded planes above the stack budget (8192 floats) */
    CHECK_WORST(compare_once(2, 2, 3, 5, 101, 97, same, 1, 0, 0), "F(2x2) 101x97");
    CHECK_WORST(compare_once(2, 2, 3, 5, 101, 97, same, 1, 0, 1), "F(2x2) 101x97, dyadic data");
    CHECK_WORST(compare_once(4, 1, 4, 3, 90, 130, valid, 0, 1, 0), "F(4x4) 90x130");
    /* one-pixel output, and a batch with several tiles per row */
    CHECK_WORST(compare_once(4, 1, 8, 8, 3, 3, valid, 1, 0, 0), "F(4x4) one pixel");
    CHECK_WORST(compare_once(2, 5, 16, 16, 35, 35, same, 1, 1, 0), "F(2x2) 35x35");
    CHECK_WORST(compare_once(2, 5, 16, 16, 35, 35, same, 1, 1, 1), "F(2x2) 35x35, dyadic data");
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

/* The training kernels against the definitions in double, and im2col.c's
 * im2col ones against the same:
 *   input gradient: the Winograd forward of grad_out with the flipped
 *     weights (padding 2 - p), bounded as the forward (Cin there = Cout);
 *     im2col: 9 Cout products per element (dcol = W^T dout, then col2im
 *     adds up to 9): gamma(9 Cout + 1) sum |w||g|.
 *   weight gradient onto 0.25, scale 0.5: Winograd as in the header
 *     comment, L = n T + 8 or 14 on 0.25 + 0.5 |G|^T [sum_t (|A||dY||A|^T) .*
 *     (|B^T||d||B|)] |G|; im2col: n Ho Wo products per element, summed in
 *     chunks, each times scale and added (beta = 1): gamma(n Ho Wo + 3) of
 *     0.25 + 0.5 sum |g||x|.
 *   bias gradient onto -0.5: a double sum (gamma_d(n Ho Wo) < u: one
 *     rounding), rounded to float, times scale, added: gamma(4) of 0.5 +
 *     0.5 sum |g|.
 * On dyadic data with F(2x2) (and few tiles: sums below 2^13 in steps of
 * 2^-8) everything is exact. */
static void compare_backward(int tile, int64_t n, int64_t cin, int64_t cout, int64_t h, int64_t w,
                             const int pad[4], int dyadic, ctest_worst *wi, ctest_worst *ww, ctest_worst *wb)
{
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, pad[0], pad[1], pad[2], pad[3], 1 };
    sm_conv2d_params q = { 3, 3, 1, 1, 1, 1, 2 - pad[0], 2 - pad[1], 2 - pad[2], 2 - pad[3], 1 };
    int flipped_pad[4] = { 2 - pad[0], 2 - pad[1], 2 - pad[2], 2 - pad[3] };
    int64_t a = tile + 2;
    int64_t is[4] = { n, cin, h, w }, ws_[4] = { cout, cin, 3, 3 }, bs[1] = { cout };
    int64_t os[4] = { n, cout, sm_conv_out_size(h, 3, 1, 1, pad[0], pad[2]), sm_conv_out_size(w, 3, 1, 1, pad[1], pad[3]) };
    int64_t us[3] = { a * a, cin, cout };
    int64_t nin = sm_numel(4, is), nw = sm_numel(4, ws_), HWo = os[2] * os[3];
    float *(*gen)(int64_t) = dyadic ? randk16 : randn;
    float *x = gen(nin), *wt = gen(nw), *g = gen(sm_numel(4, os));
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
    float *ws0 = malloc((plain_workspace(&tx, &tg, &p) + 1) * sizeof(float));
    float *ws1 = malloc(sm_winograd_workspace(&tgi1, &tg, &tu) * sizeof(float));
    float *ws2 = malloc(sm_winograd_backward_weight_workspace(&tg, &tx, tile) * sizeof(float));
    plain_backward_input(&tgi0, &tg, &tw, &p, ws0);
    plain_backward_weight(&tgw0, &tgb0, &tg, &tx, &p, 0.5f, ws0);
    sm_winograd_prepare_flipped(&tu, &tw, tile);
    sm_winograd_forward(&tgi1, &tg, &tu, NULL, &q, 0, ws1);
    sm_winograd_backward_weight(&tgw1, &tgb1, &tg, &tx, &p, 0.5f, tile, ws2);
    int exact = dyadic && tile == 2;

    /* input gradient: the convolution of g with w flipped, channels swapped */
    float *wf = malloc((size_t)nw * sizeof(float));
    for (int64_t o = 0; o < cout; o++)
        for (int64_t c = 0; c < cin; c++)
            for (int t = 0; t < 9; t++) wf[(c * cout + o) * 9 + t] = wt[(o * cin + c) * 9 + 8 - t];
    ref_conv ri = ref_conv2d(g, os, wf, cin, NULL, NULL, &q);
    CHECK(ri.os[2] == h && ri.os[3] == w);
    double *iabs = wino_abs(tile, g, os, wf, cin, NULL, flipped_pad, h, w);
    for (int64_t i = 0; i < nin; i++) {
        double rd = ctest_gamma_d(9 * (double)cout) * ri.abs[i];
        ctest_worst_add(wi, i, gi1[i], ri.y[i], exact ? 0 : ctest_gamma((double)cout + (tile == 2 ? 9 : 15)) * iabs[i] + rd);
        ctest_worst_add(wi, i, gi0[i], ri.y[i], dyadic ? 0 : ctest_gamma(9 * (double)cout + 1) * ri.abs[i] + rd);
    }

    /* weight gradient: the definition and |.| of the Winograd sums */
    int m = tile;
    int64_t T = n * ((os[2] + m - 1) / m) * ((os[3] + m - 1) / m);
    double *wabs = wino_weight_abs(tile, x, is, g, os, pad);
    double Lw = (double)T + (tile == 2 ? 8 : 14);
    for (int64_t o = 0; o < cout; o++)
        for (int64_t c = 0; c < cin; c++) {
            const double *dg = wabs + (o * cin + c) * 9;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    double s = 0, t = 0;
                    for (int64_t nn = 0; nn < n; nn++)
                        for (int64_t yy = 0; yy < os[2]; yy++)
                            for (int64_t xx = 0; xx < os[3]; xx++) {
                                int64_t iy = yy - pad[0] + i, ix = xx - pad[1] + j;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                double v = (double)g[(nn * cout + o) * HWo + yy * os[3] + xx] * x[((nn * cin + c) * h + iy) * w + ix];
                                s += v;
                                t += fabs(v);
                            }
                    int64_t k = (o * cin + c) * 9 + i * 3 + j;
                    double want = 0.25 + 0.5 * s, rd = ctest_gamma_d((double)(n * HWo) + 2) * (0.25 + 0.5 * t);
                    ctest_worst_add(ww, k, gw1[k], want, exact ? 0 : ctest_gamma(Lw) * (0.25 + 0.5 * dg[i * 3 + j]) + rd);
                    ctest_worst_add(ww, k, gw0[k], want, dyadic ? 0 : ctest_gamma((double)(n * HWo) + 3) * (0.25 + 0.5 * t) + rd);
                }
        }
    for (int64_t o = 0; o < cout; o++) {
        double s = 0, t = 0;
        for (int64_t nn = 0; nn < n; nn++)
            for (int64_t i = 0; i < HWo; i++) { s += g[(nn * cout + o) * HWo + i]; t += fabs(g[(nn * cout + o) * HWo + i]); }
        double want = -0.5 + 0.5 * s, bound = dyadic ? 0 : ctest_gamma(4) * (0.5 + 0.5 * t) + ctest_gamma_d((double)(n * HWo) + 2) * (0.5 + 0.5 * t);
        ctest_worst_add(wb, o, gb1[o], want, bound);
        ctest_worst_add(wb, o, gb0[o], want, bound);
    }
    ref_conv_free(&ri);
    free(iabs); free(wf); free(wabs);
    free(x); free(wt); free(g); free(gi0); free(gi1); free(gw0); free(gw1); free(u); free(ws0); free(ws1); free(ws2);
}

static void test_winograd_training_gradients_match_the_definitions(void)
{
    static const int pads[4][4] = { { 1, 1, 1, 1 }, { 0, 0, 0, 0 }, { 0, 1, 1, 0 }, { 2, 0, 1, 2 } };
    ctest_worst wi = CTEST_WORST_INIT, ww = CTEST_WORST_INIT, wb = CTEST_WORST_INIT;
    ctest_worst di = CTEST_WORST_INIT, dw = CTEST_WORST_INIT, db = CTEST_WORST_INIT;
    for (int trial = 0; trial < 24; trial++) {
        int tile = trial % 2 ? 4 : 2;
        int64_t n = 1 + (int64_t)sm_rng_below(&rng, 3);
        int64_t cin = 1 + (int64_t)sm_rng_below(&rng, 20), cout = 1 + (int64_t)sm_rng_below(&rng, 20);
        int64_t h = 3 + (int64_t)sm_rng_below(&rng, 20), w = 3 + (int64_t)sm_rng_below(&rng, 20);
        int dyadic = trial % 4 == 2; /* F(2x2) on exact data: bound 0 */
        if (dyadic) compare_backward(tile, n, cin, cout, h, w, pads[trial % 4], 1, &di, &dw, &db);
        else compare_backward(tile, n, cin, cout, h, w, pads[trial % 4], 0, &wi, &ww, &wb);
    }
    CHECK_WORST(wi, "input gradient");
    CHECK_WORST(ww, "weight gradient");
    CHECK_WORST(wb, "bias gradient");
    CHECK_WORST(di, "input gradient, dyadic data");
    CHECK_WORST(dw, "weight gradient, dyadic data");
    CHECK_WORST(db, "bias gradient, dyadic data");
    /* a plane above the padded-gather budget */
    static const int same[4] = { 1, 1, 1, 1 };
    ctest_worst li = CTEST_WORST_INIT, lw = CTEST_WORST_INIT, lb = CTEST_WORST_INIT;
    compare_backward(4, 2, 3, 5, 101, 97, same, 0, &li, &lw, &lb);
    CHECK_WORST(li, "input gradient, large plane");
    CHECK_WORST(lw, "weight gradient, large plane");
    CHECK_WORST(lb, "bias gradient, large plane");
}

int main(void)
{
    sm_rng_seed(&rng, 20261122);
    RUN(test_transform_matrices);
    RUN(test_winograd_matches_the_definition);
    RUN(test_winograd_large_planes_take_the_checked_path);
    RUN(test_winograd_checks_refuse_what_it_cannot_do);
    RUN(test_winograd_training_gradients_match_the_definitions);
    return ctest_summary("winograd");
}
