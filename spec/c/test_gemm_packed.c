/* Plain-C tests of the packed-weight product (conv/gemm_packed.c) and the
 * prepared im2col forward built on it (conv/packed.c): every code path
 * the CPU runs (portable, AVX2 + FMA, AVX-512) against a double-precision
 * product on odd shapes (row counts that leave a narrow last panel, column
 * counts of one and two vectors, row strides wider than the matrices), and
 * the packed forward against the convolution by its definition in double
 * (strides, dilation, padding, several chunks of samples, the fused ReLU,
 * Cout not a multiple of 8). Bounds (ctest.h): a K-term dot product in any
 * order, with or without FMA, is within gamma(K) sum |a||b| of the exact
 * one; on dyadic data (k/16, ctest_rng.h) every product and partial sum is
 * exact and so must the results be. */
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_rng.h"
#include "ctest_conv.h"
#include "nn.h"

/* Every C[i][j] of path against A B in double: within (gamma(K) +
 * gamma_d(K)) sum_k |A[i][k] B[k][j]| (the float sum, plus the double
 * reference's own rounding), exactly on dyadic data. *ran is 0 when the
 * CPU lacks the path. */
static ctest_worst gemm_worst(int path, int64_t M, int64_t K, int64_t N, int64_t ldb, int64_t ldc, int dyadic,
                              int *ran)
{
    float *(*gen)(int64_t) = dyadic ? randk16 : randn;
    float *A = gen(M * K), *B = gen(K * ldb), *Ap = malloc((size_t)(M * K) * sizeof(float));
    float *C = malloc((size_t)(M * ldc) * sizeof(float));
    for (int64_t i = 0; i < M * ldc; i++) C[i] = 12345.0f; /* sentinels between the columns */
    sm_gemm_pack(Ap, A, K, M, K);
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < K; k++) CHECK(Ap[sm_gemm_packed_index(i, k, M, K)] == A[i * K + k]);
    ctest_worst worst = CTEST_WORST_INIT;
    *ran = sm_gemm_packed_path(path, C, ldc, Ap, M, K, B, ldb, N);
    if (*ran) {
        for (int64_t i = 0; i < M; i++) {
            for (int64_t j = 0; j < N; j++) {
                double s = 0, a = 0;
                for (int64_t k = 0; k < K; k++) {
                    s += (double)A[i * K + k] * B[k * ldb + j];
                    a += fabs((double)A[i * K + k] * B[k * ldb + j]);
                }
                double bound = dyadic ? 0 : (ctest_gamma((double)K) + ctest_gamma_d((double)K)) * a;
                ctest_worst_add(&worst, i * ldc + j, C[i * ldc + j], s, bound);
            }
            for (int64_t j = N; j < ldc; j++) CHECK(C[i * ldc + j] == 12345.0f);
        }
    }
    free(A); free(B); free(Ap); free(C);
    return worst;
}

static void test_every_path_matches_the_plain_product(void)
{
    static const int64_t shapes[][5] = {
        /* M, K, N, ldb, ldc */
        { 8, 1, 16, 16, 16 }, { 1, 5, 16, 16, 16 }, { 13, 37, 48, 48, 48 }, { 32, 288, 96, 96, 96 },
        { 256, 2304, 16, 16, 16 }, { 7, 9, 32, 40, 35 }, { 19, 64, 80, 96, 81 }, { 64, 3, 176, 176, 176 },
    };
    int ran[3] = { 0, 0, 0 };
    for (int dyadic = 0; dyadic <= 1; dyadic++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int path = 0; path < 3; path++) {
                const int64_t *sh = shapes[s];
                int r;
                ctest_worst w = gemm_worst(path, sh[0], sh[1], sh[2], sh[3], sh[4], dyadic, &r);
                if (!r) continue;
                ran[path] = 1;
                CHECK_WORST(w, dyadic ? "a path, dyadic data" : "a path");
            }
    CHECK(ran[0]); /* the portable path always runs */
    /* the default dispatch runs one of the paths: the same bits as one
     * that ran (the same operations in the same order) */
    float *A = randn(24 * 10), *B = randn(10 * 32), *Ap = malloc(240 * sizeof(float));
    float *C0 = malloc(24 * 32 * sizeof(float)), *C1 = malloc(24 * 32 * sizeof(float));
    sm_gemm_pack(Ap, A, 10, 24, 10);
    sm_gemm_packed(C0, 32, Ap, 24, 10, B, 32, 32);
    int same = 0;
    for (int path = 0; path < 3; path++)
        if (sm_gemm_packed_path(path, C1, 32, Ap, 24, 10, B, 32, 32) && memcmp(C0, C1, 24 * 32 * sizeof(float)) == 0)
            same = 1;
    CHECK(same);
    free(A); free(B); free(Ap); free(C0); free(C1);
}

/* The packed forward against the convolution by its definition in double
 * (ctest_conv.h): K products and the bias summed in any order, gamma(K + 1)
 * (|b| + sum |w||x|) per output, plus the reference's own gamma_d(K + 1) of
 * it (the ReLU is 1-Lipschitz); exactly on dyadic data. */
static ctest_worst packed_worst(int64_t N, int64_t cin, int64_t cout, int64_t H, int64_t W, sm_conv2d_params p,
                                int with_bias, int relu, int dyadic)
{
    int64_t K = cin * p.kh * p.kw;
    int64_t is[4] = { N, cin, H, W }, ws_[4] = { cout, cin, p.kh, p.kw }, bs[1] = { cout }, ps[2] = { cout, K };
    int64_t os[4] = { N, cout, sm_conv_out_size(H, p.kh, p.sh, p.dh, p.pt, p.pb),
                      sm_conv_out_size(W, p.kw, p.sw, p.dw, p.pl, p.pr) };
    float *(*gen)(int64_t) = dyadic ? randk16 : randn;
    float *x = gen(sm_numel(4, is)), *w = gen(sm_numel(4, ws_)), *b = gen(cout);
    float *y1 = malloc((size_t)sm_numel(4, os) * sizeof(float));
    float *wp = malloc((size_t)(cout * K) * sizeof(float));
    sm_tensor tx, tw, tb, ty1, twp;
    sm_tensor_init(&tx, x, 4, is); sm_tensor_init(&tw, w, 4, ws_); sm_tensor_init(&tb, b, 1, bs);
    sm_tensor_init(&ty1, y1, 4, os); sm_tensor_init(&twp, wp, 2, ps);
    sm_tensor *bias = with_bias ? &tb : NULL;
    sm_err err;
    CHECK(sm_conv2d_pack_check(&err, &twp, &tw) == SM_OK);
    CHECK(sm_conv2d_packed_check(&err, &ty1, &tx, &twp, bias, &p) == SM_OK);
    float *ws1 = malloc(sm_conv2d_packed_workspace(&ty1, &tx, &p) * sizeof(float));
    sm_conv2d_pack(&twp, &tw);
    for (int64_t i = 0; i < sm_numel(4, os); i++) y1[i] = 12345.0f; /* a sentinel left stands out */
    sm_conv2d_packed_forward(&ty1, &tx, &twp, bias, &p, relu, ws1);
    ref_conv ref = ref_conv2d(x, is, w, cout, with_bias ? b : NULL, NULL, &p);
    ctest_worst worst = CTEST_WORST_INIT;
    for (int64_t i = 0; i < sm_numel(4, os); i++) {
        double want = relu && ref.y[i] < 0 ? 0 : ref.y[i];
        double bound = dyadic ? 0 : (ctest_gamma((double)K + 1) + ctest_gamma_d((double)K + 1)) * ref.abs[i];
        ctest_worst_add(&worst, i, y1[i], want, bound);
    }
    ref_conv_free(&ref);
    free(x); free(w); free(b); free(y1); free(wp); free(ws1);
    return worst;
}

static void test_packed_forward_matches_im2col(void)
{
    sm_conv2d_params same3 = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    sm_conv2d_params valid_s2 = { 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1 };
    sm_conv2d_params one = { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1 };
    sm_conv2d_params odd = { 5, 3, 2, 1, 1, 2, 2, 0, 1, 3, 1 };
    sm_conv2d_params asym = { 3, 3, 1, 1, 1, 1, 0, 1, 2, 0, 1 };
    for (int dyadic = 0; dyadic <= 1; dyadic++) {
        CHECK_WORST(packed_worst(1, 16, 32, 4, 4, same3, 1, 0, dyadic), "same3");
        CHECK_WORST(packed_worst(1, 8, 13, 1, 1, same3, 1, 1, dyadic), "one tap reaches the image");
        CHECK_WORST(packed_worst(3, 12, 20, 17, 17, valid_s2, 1, 1, dyadic), "valid_s2");
        CHECK_WORST(packed_worst(2, 9, 7, 5, 6, one, 0, 0, dyadic), "1x1");
        CHECK_WORST(packed_worst(2, 10, 9, 11, 13, odd, 1, 1, dyadic), "odd");
        CHECK_WORST(packed_worst(5, 8, 24, 9, 7, asym, 0, 1, dyadic), "asym");
        CHECK_WORST(packed_worst(40, 32, 16, 20, 20, same3, 1, 0, dyadic), "several chunks of samples");
    }
}

static void test_packed_checks_refuse_mismatches(void)
{
    sm_conv2d_params p = { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    float buf[4096] = { 0 };
    int64_t is[4] = { 1, 4, 5, 5 }, os[4] = { 1, 6, 5, 5 }, good[2] = { 6, 36 }, bad[2] = { 6, 35 };
    int64_t ws_[4] = { 6, 4, 3, 3 }, flat[2] = { 6, 36 };
    sm_tensor tx, ty, twp, tbad, tw, tflat;
    sm_tensor_init(&tx, buf, 4, is); sm_tensor_init(&ty, buf, 4, os); sm_tensor_init(&twp, buf, 2, good);
    sm_tensor_init(&tbad, buf, 2, bad); sm_tensor_init(&tw, buf, 4, ws_); sm_tensor_init(&tflat, buf, 2, flat);
    sm_err err;
    CHECK(sm_conv2d_packed_check(&err, &ty, &tx, &twp, NULL, &p) == SM_OK);
    CHECK(sm_conv2d_packed_check(&err, &ty, &tx, &tbad, NULL, &p) != SM_OK);
    CHECK(strstr(err.msg, "packed weight") != NULL);
    sm_conv2d_params g2 = p;
    g2.groups = 2;
    CHECK(sm_conv2d_packed_check(&err, &ty, &tx, &twp, NULL, &g2) != SM_OK);
    int64_t os_bad[4] = { 1, 6, 4, 5 };
    sm_tensor tyb;
    sm_tensor_init(&tyb, buf, 4, os_bad);
    CHECK(sm_conv2d_packed_check(&err, &tyb, &tx, &twp, NULL, &p) != SM_OK);
    CHECK(sm_conv2d_pack_check(&err, &twp, &tw) == SM_OK);
    CHECK(sm_conv2d_pack_check(&err, &tbad, &tw) != SM_OK);
    CHECK(sm_conv2d_pack_check(&err, &twp, &tflat) != SM_OK);
}

int main(void)
{
    sm_rng_seed(&rng, 20261122);
    RUN(test_every_path_matches_the_plain_product);
    RUN(test_packed_forward_matches_im2col);
    RUN(test_packed_checks_refuse_mismatches);
    return ctest_summary("gemm_packed");
}
