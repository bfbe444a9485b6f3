/*
 * linalg.c — matrix product and pairwise distances through cblas_sgemm.
 *
 * matmul: C[M,N] = A[M,K] B[K,N]. A and B may be row-major views or
 *   transposed views (either axis with unit stride); C is contiguous.
 * cdist:  D[N,M] between rows of A[N,K] and B[M,K] (contiguous):
 *   euclidean    d = sqrt(max(|a|^2 + |b|^2 - 2 a.b, 0))
 *   sqeuclidean  d = max(|a|^2 + |b|^2 - 2 a.b, 0)
 *   cosine       d = 1 - a.b / (|a| |b|)   (0 when a row is all zeros: d = 1)
 *   The a.b terms come from one sgemm; the expansion loses relative
 *   precision for nearly equal rows (absolute error ~1e-7 |a|^2).
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>
#include "sm.h"

/* Below this many multiply-adds a product is not worth splitting. */
#define SGEMM_SPLIT_MIN 1e6

/* One cblas_sgemm on the calling thread only. The OpenMP build of OpenBLAS
 * sizes its own threading from the caller's omp_get_max_threads() on every
 * call outside a parallel region (openblas_set_num_threads(1) does not
 * stick), and its fork/join for small products cost up to 100x the product
 * itself when the 2 vCPUs are shared; so the thread count is 1 during the
 * call and restored afterwards (a per-thread setting, so cheap). */
static void sgemm_1thread(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > 1) omp_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
    if (nt > 1) omp_set_num_threads(nt);
}

void sm_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    int split_n = N >= M;
    int64_t len = split_n ? N : M;
    if (nt > len / 8) nt = (int)(len / 8); /* slices of at least 8 rows or columns */
    if (nt <= 1 || (double)M * (double)N * (double)K < SGEMM_SPLIT_MIN) {
        sgemm_1thread(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* Each thread computes its own block of C with a single-threaded call. */
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        int64_t lo = len * t / nt, hi = len * (t + 1) / nt;
        if (split_n) { /* columns lo..hi of op(B) and C */
            const float *b = trans_b ? B + lo * ldb : B + lo;
            cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)(hi - lo), (int)K, alpha, A, (int)lda, b, (int)ldb,
                        beta, C + lo, (int)ldc);
        } else {       /* rows lo..hi of op(A) and C */
            const float *a = trans_a ? A + lo : A + lo * lda;
            cblas_sgemm(CblasRowMajor, ta, tb, (int)(hi - lo), (int)N, (int)K, alpha, a, (int)lda, B, (int)ldb,
                        beta, C + lo * ldc, (int)ldc);
        }
    }
}

/* The plain library call, single-threaded: the benchmarks' reference. */
void sm_sgemm_plain(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C)
{
    sgemm_1thread(CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
}

/* Describes a 2-D view as a BLAS operand: transposed or not, leading dim. */
static int blas_layout(const sm_tensor *m, CBLAS_TRANSPOSE *trans, int64_t *ld)
{
    if (m->ndim != 2) return 0;
    int64_t rows = m->shape[0], cols = m->shape[1];
    if (cols <= 1 || m->stride[1] == 1) {
        int64_t l = rows <= 1 ? (cols > 1 ? cols : 1) : m->stride[0];
        if (l >= (cols > 1 ? cols : 1)) { *trans = CblasNoTrans; *ld = l; return 1; }
    }
    if (rows <= 1 || m->stride[0] == 1) {
        int64_t l = cols <= 1 ? (rows > 1 ? rows : 1) : m->stride[1];
        if (l >= (rows > 1 ? rows : 1)) { *trans = CblasTrans; *ld = l; return 1; }
    }
    return 0;
}

int sm_matrix_blas_ok(const sm_tensor *m)
{
    CBLAS_TRANSPOSE t;
    int64_t ld;
    return blas_layout(m, &t, &ld);
}

sm_status sm_matmul_check(sm_err *err, const sm_tensor *c, const sm_tensor *a, const sm_tensor *b)
{
    char sa[SM_SHAPE_STR_LEN], sb[SM_SHAPE_STR_LEN], sc[SM_SHAPE_STR_LEN];
    sm_shape_str(sa, sizeof sa, a->ndim, a->shape);
    sm_shape_str(sb, sizeof sb, b->ndim, b->shape);
    if (a->ndim != 2 || b->ndim != 2)
        return sm_fail(err, SM_EINVAL, "matmul expects 2-D matrices, got %s and %s", sa, sb);
    if (a->shape[1] != b->shape[0])
        return sm_fail(err, SM_EINVAL, "matmul inner sizes differ: %s x %s", sa, sb);
    if (c->ndim != 2 || c->shape[0] != a->shape[0] || c->shape[1] != b->shape[1] || !sm_tensor_is_contiguous(c))
        return sm_fail(err, SM_EINVAL, "matmul output must be a contiguous [%lld,%lld] matrix, got %s",
                       (long long)a->shape[0], (long long)b->shape[1], sm_shape_str(sc, sizeof sc, c->ndim, c->shape));
    if (!sm_matrix_blas_ok(a) || !sm_matrix_blas_ok(b))
        return sm_fail(err, SM_EINVAL, "matmul operands must be contiguous or transposed views");
    if (a->shape[0] > INT32_MAX || a->shape[1] > INT32_MAX || b->shape[1] > INT32_MAX)
        return sm_fail(err, SM_EINVAL, "matmul sizes exceed BLAS limits: %s x %s", sa, sb);
    return SM_OK;
}

/* C = alpha * op(A) op(B) + beta * C with op chosen by the layouts. */
static void gemm(sm_tensor *c, const sm_tensor *a, const sm_tensor *b, float alpha, float beta)
{
    int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (beta == 0) memset(c->data, 0, (size_t)(M * N) * sizeof(float));
        else for (int64_t i = 0; i < M * N; i++) c->data[i] *= beta;
        return;
    }
    /* the callers' checks made both layouts valid (blas_layout returns 1) */
    CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
    int64_t lda = K, ldb = N;
    blas_layout(a, &ta, &lda);
    blas_layout(b, &tb, &ldb);
    sm_sgemm(ta == CblasTrans, tb == CblasTrans, M, N, K, alpha, a->data, lda, b->data, ldb, beta, c->data, N);
}

void sm_matmul(sm_tensor *c, const sm_tensor *a, const sm_tensor *b)
{
    gemm(c, a, b, 1.0f, 0.0f);
}

sm_status sm_cdist_check(sm_err *err, const sm_tensor *d, const sm_tensor *a, const sm_tensor *b)
{
    char sa[SM_SHAPE_STR_LEN], sb[SM_SHAPE_STR_LEN];
    sm_shape_str(sa, sizeof sa, a->ndim, a->shape);
    sm_shape_str(sb, sizeof sb, b->ndim, b->shape);
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1])
        return sm_fail(err, SM_EINVAL, "pairwise distances need [N,D] and [M,D] matrices, got %s and %s", sa, sb);
    if (!sm_tensor_is_contiguous(a) || !sm_tensor_is_contiguous(b))
        return sm_fail(err, SM_EINVAL, "pairwise distances need contiguous matrices");
    if (d->ndim != 2 || d->shape[0] != a->shape[0] || d->shape[1] != b->shape[0] || !sm_tensor_is_contiguous(d))
        return sm_fail(err, SM_EINVAL, "pairwise distance output must be a contiguous [%lld,%lld] matrix",
                       (long long)a->shape[0], (long long)b->shape[0]);
    if (a->shape[0] > INT32_MAX || b->shape[0] > INT32_MAX || a->shape[1] > INT32_MAX)
        return sm_fail(err, SM_EINVAL, "pairwise distance sizes exceed BLAS limits: %s and %s", sa, sb);
    return SM_OK;
}

static void row_sqnorms(float *out, const sm_tensor *m)
{
    int64_t rows = m->shape[0], cols = m->shape[1];
    for (int64_t i = 0; i < rows; i++) {
        const float *r = m->data + i * cols;
        double s = 0;
        for (int64_t j = 0; j < cols; j++) s += (double)r[j] * r[j];
        out[i] = (float)s;
    }
}

void sm_cdist(sm_tensor *d, const sm_tensor *a, const sm_tensor *b, sm_metric metric, float *work)
{
    int64_t N = a->shape[0], M = b->shape[0];
    float *na = work, *nb = work + N;
    sm_tensor bt;
    sm_err err;
    sm_tensor_transpose(&err, &bt, b, 0, 1);
    row_sqnorms(na, a);
    row_sqnorms(nb, b);
    if (metric == SM_DIST_COSINE) {
        gemm(d, a, &bt, 1.0f, 0.0f);
        for (int64_t i = 0; i < N; i++) {
            float *row = d->data + i * M;
            for (int64_t j = 0; j < M; j++) {
                float den = sqrtf(na[i]) * sqrtf(nb[j]);
                row[j] = 1.0f - (den > 0 ? row[j] / den : 0.0f);
            }
        }
        return;
    }
    gemm(d, a, &bt, -2.0f, 0.0f);
    for (int64_t i = 0; i < N; i++) {
        float *row = d->data + i * M;
        for (int64_t j = 0; j < M; j++) {
            float v = row[j] + na[i] + nb[j];
            v = v > 0 ? v : 0;
            row[j] = metric == SM_DIST_EUCLIDEAN ? sqrtf(v) : v;
        }
    }
}
