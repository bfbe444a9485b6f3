/*
 * ctest_winograd.h — the error bound of Winograd's F(m x m, 3x3) for the
 * plain-C tests (test_winograd.c, test_conv.c): the transform matrices and
 * the same computation on absolute values.
 */
#ifndef CTEST_WINOGRAD_H
#define CTEST_WINOGRAD_H
#include <math.h>
#include <stdlib.h>
#include "ctest.h"

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

/* |G|^T [ sum_tiles (|A| |dY| |A|^T) .* (|B^T| |d| |B|) ] |G| for every
 * weight of the Winograd weight gradient of x [N,Cin,H,W] and the output
 * gradient g [N,Cout,Ho,Wo] (stride 1, padding pad: top, left, bottom,
 * right): [Cout][Cin][3][3], to free. */
static double *wino_weight_abs(int tile, const float *x, const int64_t is[4], const float *g, const int64_t os[4],
                               const int pad[4])
{
    wmats M = mats(tile);
    int m = M.m, a = M.a, aa = a * a;
    int64_t n = is[0], cin = is[1], h = is[2], w = is[3], cout = os[1], HWo = os[2] * os[3];
    double *S = calloc((size_t)(cout * cin * aa), sizeof(double));
    double *Va = malloc((size_t)(cin * aa) * sizeof(double)), *Da = malloc((size_t)(cout * aa) * sizeof(double));
    double *out = malloc((size_t)(cout * cin * 9) * sizeof(double));
    double AT_T[24]; /* A = (A^T)^T, a x m: A dY A^T = L X R^T with L = R = A */
    for (int i = 0; i < a; i++)
        for (int j = 0; j < m; j++) AT_T[i * m + j] = M.AT[j * a + i];
    for (int64_t nn = 0; nn < n; nn++)
        for (int64_t ty = 0; ty * m < os[2]; ty++)
            for (int64_t tx = 0; tx * m < os[3]; tx++) {
                for (int64_t c = 0; c < cin; c++) {
                    double d[36];
                    patch(d, x + (nn * cin + c) * h * w, h, w, ty * m - pad[0], tx * m - pad[1], a);
                    sandwich(Va + c * aa, M.BT, a, d, a, a, M.BT, a, 1);
                }
                for (int64_t o = 0; o < cout; o++) {
                    double dy[16];
                    /* dY: zero past the output's edge */
                    patch(dy, g + (nn * cout + o) * HWo, os[2], os[3], ty * m, tx * m, m);
                    sandwich(Da + o * aa, AT_T, a, dy, m, m, AT_T, a, 1);
                }
                for (int64_t o = 0; o < cout; o++)
                    for (int64_t c = 0; c < cin; c++)
                        for (int xi = 0; xi < aa; xi++) S[(o * cin + c) * aa + xi] += Da[o * aa + xi] * Va[c * aa + xi];
            }
    double GT[18]; /* G^T S G = L X R^T with L = R = G^T (3 x a) */
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < a; k++) GT[i * a + k] = M.G[k * 3 + i];
    for (int64_t k = 0; k < cout * cin; k++) sandwich(out + k * 9, GT, 3, S + k * aa, a, a, GT, 3, 1);
    free(S); free(Va); free(Da);
    return out;
}

#endif
