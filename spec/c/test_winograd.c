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
#include "nn.h"

/* ---- error bounds ---------------------------------------------------------------
 * Winograd's F(m x m, 3x3) computes, per tile of m x m outputs,
 *
 *   Y = A^T [ sum_c (G g_oc G^T) .* (B^T d_c B) ] A + b_o
 *
 * which equals the convolution exactly in exact arithmetic. Expanded, every
 * output is a sum of terms (an entry of A^T) (an entry of A^T) (entries of
 * G, G) g (entries of B^T, B) d; in float each term passes through at most
 * L roundings, so (ctest.h, Higham lemma 3.3)
 *
 *   |Y - exact| <= gamma(L) * |A^T| [ sum_c (|G| |g| |G|^T) .* (|B^T| |d| |B|) ] |A| + |b|
 *
 * the same computation on absolute values (wino_abs below, from the
 * matrices of Lavin & Gray 2015 checked against the definition by
 * test_transform_matrices). L, counting the roundings along the longest
 * path through conv/winograd.c (products by 2, 4, 8 are exact):
 *   weights: G g G^T in double (8 roundings of 2^-53 < one of 2^-24), then
 *     rounded to float: 2;
 *   input: B^T . B, two 1-D passes; F(2): s0 - s2 etc., 1 each: 2; F(4):
 *     (4 s0 - 5 s2) + s4, 3 each: 6;
 *   the product over Cin channels (any order, FMA or not): Cin;
 *   output: A^T . A, two passes; F(2): (s0 + s1) + s2, 2 each: 4; F(4):
 *     (s0 + (s1 + s2)) + (s3 + s4) and (q + 8 u) + s5, 3 each: 6; + bias: 1.
 *   L = Cin + 9 for F(2x2), Cin + 15 for F(4x4).
 * The weight gradient dg = G^T [ sum_tiles (A dY A^T) .* (B^T d B) ] G:
 *   A dY A^T: F(2) y0 + y1, F(4) (y0 + y2) + (y1 + y3) and (y0 + 4 y2) + (2
 *   y1 + 8 y3): 1 or 2 per pass: 2 or 4; B^T d B: 2 or 6; the sum over
 *   the n T tiles (chunks added with beta = 1: still one sum): n T; G^T .
 *   G in double, rounded to float: 2; times scale, added to grad_w: 2.
 *   L = n T + 8 for F(2x2), n T + 14 for F(4x4).
 * The references are the definitions in double (their own rounding, within
 * gamma_d(terms) of the same absolute sums, is added to every bound). */

static const double BT2[4][4] = { { 1, 0, -1, 0 }, { 0, 1, 1, 0 }, { 0, -1, 1, 0 }, { 0, 1, 0, -1 } };
static const double AT2[2][4] = { { 1, 1, 1, 0 }, { 0, 1, -1, -1 } };
static const double G2[4][3] = { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } };
static const double BT4[6][6] = {
    { 4, 0, -5, 0, 1, 0 }, { 0, -4, -4, 1, 1, 0 }, { 0, 4, -4, -1, 1, 0 },
    { 0, -2, -1, 2, 1, 0 }, { 0, 2, -1, -2, 1, 0 }, { 0, 4, 0, -5, 0, 1 },
};
static const double AT4[4][6] = {
    { 1, 1, 1, 1, 1, 0 }, { 0, 1, -1, 2, -2, 0 }, { 0, 1, 1, 4, 4, 0 }, { 0, 1, -1, 8, -8, 1 },
};
static const double G4[6][3] = {
    { 1.0 / 4, 0, 0 }, { -1.0 / 6, -1.0 / 6, -1.0 / 6 }, { -1.0 / 6, 1.0 / 6, -1.0 / 6 },
    { 1.0 / 24, 1.0 / 12, 1.0 / 6 }, { 1.0 / 24, -1.0 / 12, 1.0 / 6 }, { 0, 0, 1 },
};

typedef struct { int m, a; const double *BT, *AT, *G; } wmats; /* BT a x a, AT m x a, G a x 3 */

static wmats mats(int tile)
{
    wmats w = { tile, tile + 2, tile == 2 ? &BT2[0][0] : &BT4[0][0], tile == 2 ? &AT2[0][0] : &AT4[0][0],
                tile == 2 ? &G2[0][0] : &G4[0][0] };
    return w;
}

/* out (r x c) = L (r x k) X (k x k') R^T (c x k'), with |.| of L, R and X
 * when absolute. */
static void sandwich(double *out, const double *L, int r, const double *X, int k, int k2, const double *R, int c,
                     int absolute)
{
    double t[6][6];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < k2; j++) {
            double s = 0;
            for (int q = 0; q < k; q++) s += absolute ? fabs(L[i * k + q] * X[q * k2 + j]) : L[i * k + q] * X[q * k2 + j];
            t[i][j] = s;
        }
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) {
            double s = 0;
            for (int q = 0; q < k2; q++) s += absolute ? fabs(t[i][q] * R[j * k2 + q]) : t[i][q] * R[j * k2 + q];
            out[i * c + j] = s;
        }
}

/* The a x a patch of plane x (H x W) at rows y0.., columns x0.. (zero outside). */
static void patch(double *d, const float *x, int64_t H, int64_t W, int64_t y0, int64_t x0, int a)
{
    for (int i = 0; i < a; i++)
        for (int j = 0; j < a; j++) {
            int64_t y = y0 + i, xx = x0 + j;
            d[i * a + j] = y >= 0 && y < H && xx >= 0 && xx < W ? x[y * W + xx] : 0;
        }
}

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

/* |A^T| [ sum_c (|G||w_oc||G|^T) .* (|B^T||x_c||B|) ] |A| + |b_o| for every
 * output of the Winograd forward of x [N,Cin,H,W] with w [Cout,Cin,3,3],
 * stride 1, padding pad (top, left, bottom, right); out [N,Cout,Ho,Wo]. */
static double *wino_abs(int tile, const float *x, const int64_t is[4], const float *w, int64_t cout, const float *b,
                        const int pad[4], int64_t Ho, int64_t Wo)
{
    wmats M = mats(tile);
    int m = M.m, a = M.a, aa = a * a;
    int64_t N = is[0], cin = is[1], H = is[2], W = is[3];
    double *U = malloc((size_t)(cout * cin * aa) * sizeof(double)), *V = malloc((size_t)(cin * aa) * sizeof(double));
    double *out = calloc((size_t)(N * cout * Ho * Wo + 1), sizeof(double));
    for (int64_t k = 0; k < cout * cin; k++) {
        double g[9];
        for (int t = 0; t < 9; t++) g[t] = w[k * 9 + t];
        sandwich(U + k * aa, M.G, a, g, 3, 3, M.G, a, 1);
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t ty = 0; ty * m < Ho; ty++)
            for (int64_t tx = 0; tx * m < Wo; tx++) {
                for (int64_t c = 0; c < cin; c++) {
                    double d[36];
                    patch(d, x + (n * cin + c) * H * W, H, W, ty * m - pad[0], tx * m - pad[1], a);
                    sandwich(V + c * aa, M.BT, a, d, a, a, M.BT, a, 1);
                }
                for (int64_t o = 0; o < cout; o++) {
                    double P[36] = { 0 }, Y[16];
                    for (int64_t c = 0; c < cin; c++)
                        for (int xi = 0; xi < aa; xi++) P[xi] += U[(o * cin + c) * aa + xi] * V[c * aa + xi];
                    sandwich(Y, M.AT, m, P, a, a, M.AT, m, 1);
                    for (int i = 0; i < m && ty * m + i < Ho; i++)
                        for (int j = 0; j < m && tx * m + j < Wo; j++)
                            out[((n * cout + o) * Ho + ty * m + i) * Wo + tx * m + j] =
                                Y[i * m + j] + (b ? fabs(b[o]) : 0);
                }
            }
    free(U); free(V);
    return out;
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
    wmats M = mats(tile);
    int m = M.m, aa = (int)(a * a);
    int64_t T = n * ((os[2] + m - 1) / m) * ((os[3] + m - 1) / m);
    double *S = calloc((size_t)(cout * cin * aa), sizeof(double));
    double *Va = malloc((size_t)(cin * aa) * sizeof(double)), *Da = malloc((size_t)(cout * aa) * sizeof(double));
    for (int64_t nn = 0; nn < n; nn++)
        for (int64_t ty = 0; ty * m < os[2]; ty++)
            for (int64_t tx_ = 0; tx_ * m < os[3]; tx_++) {
                for (int64_t c = 0; c < cin; c++) {
                    double d[36];
                    patch(d, x + (nn * cin + c) * h * w, h, w, ty * m - pad[0], tx_ * m - pad[1], (int)a);
                    sandwich(Va + c * aa, M.BT, (int)a, d, (int)a, (int)a, M.BT, (int)a, 1);
                }
                for (int64_t o = 0; o < cout; o++) {
                    double dy[16];
                    /* dY: zero past the output's edge */
                    patch(dy, g + (nn * cout + o) * HWo, os[2], os[3], ty * m, tx_ * m, m);
                    double AT_T[24]; /* A = (A^T)^T, a x m: A dY A^T = L X R^T with L = R = A */
                    for (int i = 0; i < a; i++)
                        for (int j = 0; j < m; j++) AT_T[i * m + j] = M.AT[j * a + i];
                    sandwich(Da + o * aa, AT_T, (int)a, dy, m, m, AT_T, (int)a, 1);
                }
                for (int64_t o = 0; o < cout; o++)
                    for (int64_t c = 0; c < cin; c++)
                        for (int xi = 0; xi < aa; xi++) S[(o * cin + c) * aa + xi] += Da[o * aa + xi] * Va[c * aa + xi];
            }
    double Lw = (double)T + (tile == 2 ? 8 : 14);
    for (int64_t o = 0; o < cout; o++)
        for (int64_t c = 0; c < cin; c++) {
            double GT[18], dg[9]; /* G^T S G = L X R^T with L = R = G^T (3 x a) */
            for (int i = 0; i < 3; i++)
                for (int k = 0; k < a; k++) GT[i * a + k] = M.G[k * 3 + i];
            sandwich(dg, GT, 3, S + (o * cin + c) * aa, (int)a, (int)a, GT, 3, 1);
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
    free(iabs); free(wf); free(S); free(Va); free(Da);
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
