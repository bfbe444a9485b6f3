/*
 * gemm_packed.c — a small single-threaded matrix product on a left matrix
 * packed once, for the many small products of inference convolutions (the
 * a*a tile-position products of winograd.c, the im2col product of a
 * prepared convolution in packed.c), where a BLAS call packs the same
 * weights again at every call and costs more in overhead than in work.
 *
 *   C[i][j] = sum_k A[i][k] B[k][j]     i < M, j < N, k < K  (C overwritten)
 *
 * A [M][K] is packed by sm_gemm_pack into row panels of SM_GEMM_MR rows
 * (the last one may be narrower): the panel of rows [i0, i0 + mr) starts
 * at i0 * K and holds A[i0 + r][k] at k * mr + r, so the packed matrix has
 * the size of A and a row range starting at a multiple of SM_GEMM_MR is
 * itself a packed matrix (callers split the rows between threads that way).
 *
 * B [K][N] and C [M][N] are row-major with row strides ldb, ldc >= N, and N
 * must be a multiple of SM_GEMM_NV (callers pad their column matrices with
 * columns they ignore). The register block is 8 rows x 32 columns: two
 * vectors of 16 floats per row, each B vector used by 8 broadcast FMAs.
 * The loops are written on GCC vectors of 16 floats and compiled for
 * AVX-512, AVX2 + FMA (each vector two registers) and the baseline, the
 * widest the CPU runs picked at the first call (sm_gemm_packed_path runs
 * a given one, for the tests).
 */
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors passed between inlined helpers only */
/* multiply-adds fused where the target has FMA (the build turns contraction
 * off globally for reproducible scalar code; these sums reassociate anyway) */
#pragma GCC optimize("fp-contract=fast")
#include <string.h>
#include "conv/kernels.h"
#include "simd.h"

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4))); /* unaligned loads and stores */

#define MR SM_GEMM_MR
#define NV SM_GEMM_NV

void sm_gemm_pack(float *dst, const float *A, int64_t lda, int64_t M, int64_t K)
{
    for (int64_t i0 = 0; i0 < M; i0 += MR) {
        int64_t mr = M - i0 < MR ? M - i0 : MR;
        float *p = dst + i0 * K;
        for (int64_t r = 0; r < mr; r++) {
            const float *a = A + (i0 + r) * lda;
            for (int64_t k = 0; k < K; k++) p[k * mr + r] = a[k];
        }
    }
}

int64_t sm_gemm_packed_index(int64_t i, int64_t k, int64_t M, int64_t K)
{
    int64_t i0 = i / MR * MR, mr = M - i0 < MR ? M - i0 : MR;
    return i0 * K + k * mr + (i - i0);
}

static inline v16 load(const float *p)
{
    return *(const v16u *)p;
}

static inline void store(float *p, v16 v)
{
    *(v16u *)p = v;
}

/* A full panel of 8 rows times 32 columns. */
SM_INLINE void block_8x32(float *C, int64_t ldc, const float *a, const float *B, int64_t ldb, int64_t K)
{
    v16 c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
    v16 c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0}, c60 = {0}, c61 = {0}, c70 = {0}, c71 = {0};
    for (int64_t k = 0; k < K; k++, a += 8, B += ldb) {
        v16 b0 = load(B), b1 = load(B + NV);
        c00 += a[0] * b0; c01 += a[0] * b1;
        c10 += a[1] * b0; c11 += a[1] * b1;
        c20 += a[2] * b0; c21 += a[2] * b1;
        c30 += a[3] * b0; c31 += a[3] * b1;
        c40 += a[4] * b0; c41 += a[4] * b1;
        c50 += a[5] * b0; c51 += a[5] * b1;
        c60 += a[6] * b0; c61 += a[6] * b1;
        c70 += a[7] * b0; c71 += a[7] * b1;
    }
    store(C, c00); store(C + NV, c01); C += ldc;
    store(C, c10); store(C + NV, c11); C += ldc;
    store(C, c20); store(C + NV, c21); C += ldc;
    store(C, c30); store(C + NV, c31); C += ldc;
    store(C, c40); store(C + NV, c41); C += ldc;
    store(C, c50); store(C + NV, c51); C += ldc;
    store(C, c60); store(C + NV, c61); C += ldc;
    store(C, c70); store(C + NV, c71);
}

/* A full panel of 8 rows times 16 columns. */
SM_INLINE void block_8x16(float *C, int64_t ldc, const float *a, const float *B, int64_t ldb, int64_t K)
{
    v16 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};
    for (int64_t k = 0; k < K; k++, a += 8, B += ldb) {
        v16 b = load(B);
        c0 += a[0] * b; c1 += a[1] * b; c2 += a[2] * b; c3 += a[3] * b;
        c4 += a[4] * b; c5 += a[5] * b; c6 += a[6] * b; c7 += a[7] * b;
    }
    store(C, c0); C += ldc; store(C, c1); C += ldc; store(C, c2); C += ldc; store(C, c3); C += ldc;
    store(C, c4); C += ldc; store(C, c5); C += ldc; store(C, c6); C += ldc; store(C, c7);
}

/* The last, narrower panel (mr < 8 rows), 16 columns at a time. */
SM_INLINE void block_rows_16(float *C, int64_t ldc, const float *a, int64_t mr, const float *B, int64_t ldb,
                             int64_t K)
{
    v16 c[MR];
    for (int64_t r = 0; r < mr; r++) c[r] = (v16){0};
    for (int64_t k = 0; k < K; k++, a += mr, B += ldb) {
        v16 b = load(B);
        for (int64_t r = 0; r < mr; r++) c[r] += a[r] * b;
    }
    for (int64_t r = 0; r < mr; r++) store(C + r * ldc, c[r]);
}

/* The product for one code path: always inlined into one function per
 * target below, so that each gets its own vector width. */
SM_INLINE void gemm_body(float *C, int64_t ldc, const float *Ap, int64_t M, int64_t K, const float *B, int64_t ldb,
                         int64_t N)
{
    for (int64_t i0 = 0; i0 < M; i0 += MR) {
        int64_t mr = M - i0 < MR ? M - i0 : MR;
        const float *a = Ap + i0 * K;
        float *c = C + i0 * ldc;
        int64_t j = 0;
        if (mr == MR) {
            for (; j + 2 * NV <= N; j += 2 * NV) block_8x32(c + j, ldc, a, B + j, ldb, K);
            for (; j < N; j += NV) block_8x16(c + j, ldc, a, B + j, ldb, K);
        } else {
            for (; j < N; j += NV) block_rows_16(c + j, ldc, a, mr, B + j, ldb, K);
        }
    }
}

typedef void gemm_fn(float *, int64_t, const float *, int64_t, int64_t, const float *, int64_t, int64_t);

static void gemm_portable(float *C, int64_t ldc, const float *Ap, int64_t M, int64_t K, const float *B,
                          int64_t ldb, int64_t N)
{
    gemm_body(C, ldc, Ap, M, K, B, ldb, N);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define HAVE_PATHS 1
__attribute__((target("arch=x86-64-v3"))) static void gemm_avx2(float *C, int64_t ldc, const float *Ap, int64_t M,
                                                                int64_t K, const float *B, int64_t ldb, int64_t N)
{
    gemm_body(C, ldc, Ap, M, K, B, ldb, N);
}

__attribute__((target("arch=x86-64-v4"))) static void gemm_avx512(float *C, int64_t ldc, const float *Ap,
                                                                  int64_t M, int64_t K, const float *B, int64_t ldb,
                                                                  int64_t N)
{
    gemm_body(C, ldc, Ap, M, K, B, ldb, N);
}
#endif

/* The code path for path 0 (portable), 1 (AVX2 + FMA), 2 (AVX-512), or
 * NULL when this CPU or build lacks it or SIAMESE_SIMD switched it off
 * (sm_simd_level). */
static gemm_fn *path_fn(int path)
{
    if (path == 0) return gemm_portable;
#ifdef HAVE_PATHS
    if (path > sm_simd_level()) return NULL;
    if (path == SM_SIMD_AVX2) return gemm_avx2;
    if (path == SM_SIMD_AVX512) return gemm_avx512;
#endif
    return NULL;
}

int sm_gemm_packed_path(int path, float *C, int64_t ldc, const float *Ap, int64_t M, int64_t K, const float *B,
                        int64_t ldb, int64_t N)
{
    gemm_fn *f = path_fn(path);
    if (f) f(C, ldc, Ap, M, K, B, ldb, N);
    return f != NULL;
}

/* The widest path allowed, chosen once (a benign race: every thread
 * computes the same value). */
static gemm_fn *best;

void sm_gemm_packed(float *C, int64_t ldc, const float *Ap, int64_t M, int64_t K, const float *B, int64_t ldb,
                    int64_t N)
{
    gemm_fn *f = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (!f) {
        f = path_fn(2);
        if (!f) f = path_fn(1);
        if (!f) f = path_fn(0);
        __atomic_store_n(&best, f, __ATOMIC_RELAXED);
    }
    f(C, ldc, Ap, M, K, B, ldb, N);
}
