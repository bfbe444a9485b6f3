/*
 * winograd.c — 3x3 stride-1 convolution by Winograd's minimal filtering
 * F(m x m, 3x3), m = 2 or 4 (Lavin & Gray 2015, "Fast Algorithms for
 * Convolutional Neural Networks"): the forward (inference and training),
 * the input gradient (the forward of the output gradient with the flipped,
 * channel-swapped filters, sm_winograd_prepare_flipped) and the weight
 * gradient (sm_winograd_backward_weight, at the end of this file).
 *
 * Shapes: in [N,Cin,H,W], weight [Cout,Cin,3,3] (groups 1, dilation 1,
 * stride 1, any zero padding), bias [Cout] or NULL, out [N,Cout,Ho,Wo] as
 * in conv.h. The output is cut into m x m tiles; tile (ty, tx) of sample n
 * reads the a x a input patch d (a = m + 2) at rows ty*m - pt .., columns
 * tx*m - pl .. (zeros outside the image). For one input channel c and one
 * output channel o:
 *
 *   Y = A^T [ (G g G^T) .* (B^T d B) ] A        (m x m outputs)
 *
 * with g the 3x3 filter w[o,c]. Summed over c, the element-wise product at
 * each of the a*a positions xi becomes one matrix product:
 *
 *   U[xi] = (G g G^T)[xi]   [Cout][Cin]   (sm_winograd_prepare, once per weights)
 *   V[xi] = (B^T d B)[xi]   [Cin][T]      (T tiles of a chunk of samples)
 *   M[xi] = U[xi] V[xi]     [Cout][T]     (a*a sgemms, run in parallel)
 *   out   = A^T M A + bias, optionally max(., 0) (fused ReLU)
 *
 * Multiplications per output: a^2/m^2 * Cin*Cout, against 9 Cin*Cout
 * directly: 2.25x fewer for m = 2, 4x for m = 4. The transforms add
 * rounding: with m = 2 the matrices hold 0, +-1 and 1/2 (exact); with m = 4
 * they hold up to 5 and 1/24, so errors grow to ~1e-6 relative per layer.
 * Weights are transformed in double.
 *
 * Workspace per chunk of nb samples: a^2 (Cin + Cout) T floats, T = nb *
 * ceil(Ho/m) * ceil(Wo/m); chunks are sized to stay near the caches.
 */
#include <string.h>
#include "conv/kernels.h"

#ifndef WINO_WS_BUDGET
#define WINO_WS_BUDGET ((size_t)1 << 18)
#endif
#ifndef MIN_COLUMNS
#define MIN_COLUMNS 128
#endif
/* Tiles transformed together: one SIMD-friendly run along the tile axis. */
#define LANES 8

/* G of F(2x2,3x3) and F(4x4,3x3); B^T and A^T are written out below. */
static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

static const double G4[6][3] = {
    {1.0 / 4, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
};

int sm_winograd_applies(const sm_conv2d_params *p)
{
    return p->kh == 3 && p->kw == 3 && p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1 && p->groups == 1;
}

static sm_status prepare_check(sm_err *err, const sm_tensor *u, const sm_tensor *weight, int tile, int flipped)
{
    char sw[SM_SHAPE_STR_LEN], su[SM_SHAPE_STR_LEN];
    sm_shape_str(sw, sizeof sw, weight->ndim, weight->shape);
    sm_shape_str(su, sizeof su, u->ndim, u->shape);
    if (tile != 2 && tile != 4)
        return sm_fail(err, SM_EINVAL, "winograd: tile must be 2 or 4, got %d", tile);
    if (weight->ndim != 4 || weight->shape[2] != 3 || weight->shape[3] != 3 || !sm_tensor_is_contiguous(weight))
        return sm_fail(err, SM_EINVAL, "winograd: weight must be a contiguous [Cout,Cin,3,3] tensor, got %s", sw);
    int64_t a = tile + 2, d1 = weight->shape[flipped ? 1 : 0], d2 = weight->shape[flipped ? 0 : 1];
    if (u->ndim != 3 || u->shape[0] != a * a || u->shape[1] != d1 || u->shape[2] != d2 ||
        !sm_tensor_is_contiguous(u))
        return sm_fail(err, SM_EINVAL, "winograd: transformed weight %s should be [%lld,%lld,%lld]", su,
                       (long long)(a * a), (long long)d1, (long long)d2);
    return SM_OK;
}

sm_status sm_winograd_prepare_check(sm_err *err, const sm_tensor *u, const sm_tensor *weight, int tile)
{
    return prepare_check(err, u, weight, tile, 0);
}

sm_status sm_winograd_prepare_flipped_check(sm_err *err, const sm_tensor *u, const sm_tensor *weight, int tile)
{
    return prepare_check(err, u, weight, tile, 1);
}

/* u[xi][o][c] = (G g G^T)[xi] of g = w[o,c]; flipped: u[xi][c][o] of g =
 * w[o,c] rotated by 180 degrees (g[i][j] = w[o,c,2-i,2-j]). */
static void prepare(sm_tensor *u, const sm_tensor *weight, int tile, int flipped)
{
    int a = tile + 2;
    int64_t cout = weight->shape[0], cin = weight->shape[1];
    const double *G = tile == 2 ? &G2[0][0] : &G4[0][0];
    /* k runs along the rows of u (so its a*a planes are written in order) */
    #pragma omp parallel for schedule(static) if (cout * cin > 1024)
    for (int64_t k = 0; k < cout * cin; k++) {
        int64_t o = flipped ? k % cout : k / cin, c = flipped ? k / cout : k % cin;
        /* u[xi] is the packed [Cout][Cin] (flipped: [Cin][Cout]) matrix */
        int64_t pos = flipped ? sm_gemm_packed_index(c, o, cin, cout) : sm_gemm_packed_index(o, c, cout, cin);
        const float *w = weight->data + (o * cin + c) * 9;
        float g[9];
        for (int t = 0; t < 9; t++) g[t] = flipped ? w[8 - t] : w[t];
        double tmp[6][3]; /* G g */
        for (int i = 0; i < a; i++)
            for (int j = 0; j < 3; j++)
                tmp[i][j] = G[i * 3] * g[j] + G[i * 3 + 1] * g[3 + j] + G[i * 3 + 2] * g[6 + j];
        for (int i = 0; i < a; i++)
            for (int j = 0; j < a; j++) {
                double v = tmp[i][0] * G[j * 3] + tmp[i][1] * G[j * 3 + 1] + tmp[i][2] * G[j * 3 + 2];
                u->data[(int64_t)(i * a + j) * cout * cin + pos] = (float)v;
            }
    }
}

void sm_winograd_prepare(sm_tensor *u, const sm_tensor *weight, int tile)
{
    prepare(u, weight, tile, 0);
}

void sm_winograd_prepare_flipped(sm_tensor *u, const sm_tensor *weight, int tile)
{
    prepare(u, weight, tile, 1);
}

typedef struct {
    SM_CONV_SHAPE_FIELDS;
    int64_t th, tw, tiles; /* tiles per sample = th * tw */
    int m, a, pt, pl;
} wino_dims;

static wino_dims wdims(const sm_tensor *out, const sm_tensor *in, const sm_tensor *u, const sm_conv2d_params *p)
{
    wino_dims d;
    SM_CONV_SHAPE_SET(d, in, out);
    d.m = u->shape[0] == 16 ? 2 : 4;
    d.a = d.m + 2;
    d.th = (d.Ho + d.m - 1) / d.m;
    d.tw = (d.Wo + d.m - 1) / d.m;
    d.tiles = d.th * d.tw;
    d.pt = p->pt;
    d.pl = p->pl;
    return d;
}

/* Samples per chunk: V and M within the budget (near the L2 cache), but at
 * least MIN_COLUMNS tiles so that small maps still give wide GEMMs. */
static int64_t wino_chunk(const wino_dims *d)
{
    size_t per = (size_t)(d->a * d->a) * (size_t)(d->Cin + d->Cout) * (size_t)d->tiles;
    int64_t nb = (int64_t)(WINO_WS_BUDGET / per), wide = (MIN_COLUMNS + d->tiles - 1) / d->tiles;
    if (nb < wide) nb = wide;
    if (nb < 1) nb = 1;
    if (nb > d->N) nb = d->N;
    return nb;
}

/* Columns of V and M in the forward: T rounded up to whole vectors of the
 * packed product (the extra columns of V are zero, those of M unused). */
static int64_t padded_columns(int64_t T)
{
    return (T + SM_GEMM_NV - 1) / SM_GEMM_NV * SM_GEMM_NV;
}

sm_status sm_winograd_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *u,
                            const sm_tensor *bias, const sm_conv2d_params *p)
{
    if (!sm_winograd_applies(p))
        return sm_fail(err, SM_EINVAL, "winograd: needs a 3x3 kernel, stride 1, dilation 1 and 1 group");
    if (u->ndim != 3 || (u->shape[0] != 16 && u->shape[0] != 36) || !sm_tensor_is_contiguous(u)) {
        char su[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "winograd: transformed weight must be [16 or 36,Cout,Cin], got %s",
                       sm_shape_str(su, sizeof su, u->ndim, u->shape));
    }
    /* the ordinary check on a stand-in weight of the original shape */
    sm_tensor w = *u;
    w.ndim = 4;
    w.shape[0] = u->shape[1];
    w.shape[1] = u->shape[2];
    w.shape[2] = 3;
    w.shape[3] = 3;
    w.stride[3] = 1;
    w.stride[2] = 3;
    w.stride[1] = 9;
    w.stride[0] = 9 * u->shape[2];
    return sm_conv2d_check(err, out, in, &w, bias, p);
}

size_t sm_winograd_workspace(const sm_tensor *out, const sm_tensor *in, const sm_tensor *u)
{
    sm_conv2d_params p = {3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1};
    wino_dims d = wdims(out, in, u, &p);
    return (size_t)(d.a * d.a) * (size_t)(d.Cin + d.Cout) * (size_t)padded_columns(wino_chunk(&d) * d.tiles);
}

/* One-dimensional transforms on LANES tiles at once: element k of the input
 * is s[k * ss], of the output o[k * os] (ss, os = 1 along a row, a along a
 * column). Written out so that every loop is a plain vector operation. */
#define L_FOR for (int l = 0; l < LANES; l++)

static inline void bt2_1d(float (*s)[LANES], int ss, float (*o)[LANES], int os)
{
    L_FOR {
        float s0 = s[0][l], s1 = s[ss][l], s2 = s[2 * ss][l], s3 = s[3 * ss][l];
        o[0][l] = s0 - s2;
        o[os][l] = s1 + s2;
        o[2 * os][l] = s2 - s1;
        o[3 * os][l] = s1 - s3;
    }
}

static inline void bt4_1d(float (*s)[LANES], int ss, float (*o)[LANES], int os)
{
    L_FOR {
        float s0 = s[0][l], s1 = s[ss][l], s2 = s[2 * ss][l], s3 = s[3 * ss][l], s4 = s[4 * ss][l],
              s5 = s[5 * ss][l];
        float p = s4 - 4 * s2, q = s3 - 4 * s1, r = s4 - s2, u = 2 * (s3 - s1);
        o[0][l] = 4 * s0 - 5 * s2 + s4;
        o[os][l] = p + q;
        o[2 * os][l] = p - q;
        o[3 * os][l] = r + u;
        o[4 * os][l] = r - u;
        o[5 * os][l] = 4 * s1 - 5 * s3 + s5;
    }
}

static inline void at2_1d(float (*s)[LANES], int ss, float (*o)[LANES], int os)
{
    L_FOR {
        float s0 = s[0][l], s1 = s[ss][l], s2 = s[2 * ss][l], s3 = s[3 * ss][l];
        o[0][l] = s0 + s1 + s2;
        o[os][l] = s1 - s2 - s3;
    }
}

static inline void at4_1d(float (*s)[LANES], int ss, float (*o)[LANES], int os)
{
    L_FOR {
        float s0 = s[0][l], s1 = s[ss][l], s2 = s[2 * ss][l], s3 = s[3 * ss][l], s4 = s[4 * ss][l],
              s5 = s[5 * ss][l];
        float p = s1 + s2, q = s1 - s2, r = s3 + s4, u = s3 - s4;
        o[0][l] = s0 + p + r;
        o[os][l] = q + 2 * u;
        o[2 * os][l] = p + 4 * r;
        o[3 * os][l] = q + 8 * u + s5;
    }
}

/* v = B^T patch B (a x a per lane). */
static inline void tile_in(int a, float (*patch)[LANES], float (*v)[LANES])
{
    float tmp[36][LANES];
    if (a == 4) {
        for (int j = 0; j < 4; j++) bt2_1d(patch + j, 4, tmp + j, 4);   /* columns */
        for (int i = 0; i < 4; i++) bt2_1d(tmp + 4 * i, 1, v + 4 * i, 1); /* rows */
    } else {
        for (int j = 0; j < 6; j++) bt4_1d(patch + j, 6, tmp + j, 6);
        for (int i = 0; i < 6; i++) bt4_1d(tmp + 6 * i, 1, v + 6 * i, 1);
    }
}

/* y = A^T mv A + bias (m x m per lane). */
static inline void tile_out(int m, float (*mv)[LANES], float bias, float (*y)[LANES])
{
    float tmp[24][LANES];
    if (m == 2) {
        for (int j = 0; j < 4; j++) at2_1d(mv + j, 4, tmp + j, 4);     /* columns: tmp [2][4] */
        for (int i = 0; i < 2; i++) at2_1d(tmp + 4 * i, 1, y + 2 * i, 1);
    } else {
        for (int j = 0; j < 6; j++) at4_1d(mv + j, 6, tmp + j, 6);     /* tmp [4][6] */
        for (int i = 0; i < 4; i++) at4_1d(tmp + 6 * i, 1, y + 4 * i, 1);
    }
    for (int k = 0; k < m * m; k++) L_FOR y[k][l] += bias;
}

/* dst[0 .. lanes) = src[0 .. lanes): a full run as one fixed-length copy
 * (inlined vector moves; a variable-length loop becomes a memcpy call). */
static inline void store_lanes(float *dst, const float *src, int lanes)
{
    if (lanes == LANES)
        for (int l = 0; l < LANES; l++) dst[l] = src[l];
    else
        for (int l = 0; l < lanes; l++) dst[l] = src[l];
}

/* Largest zero-padded input plane gathered on the stack (floats); larger
 * planes take the bounds-checked path. */
#define PLANE_MAX 8192

/* ---- whole tile rows at once ----------------------------------------------------
 * For maps ROW_MIN to ROW_TILES tiles wide the transforms run along a tile row:
 * the 1-D transform along x for every tile of the row (stride-m reads),
 * then the one along y as plain loops over the row's tiles, which read
 * and write contiguous runs (vectorised), instead of gathering LANES
 * patches element by element. Same arithmetic, in another order. */
#define ROW_TILES 64
/* Narrower maps keep the LANES path: their row loops are too short to
 * vectorise (measured: 4x4 maps 15 % slower row-wise, 35x35 10 % faster). */
#define ROW_MIN 8

/* o[k*os + t] = (B^T s)[k] for t < n, s[j] = in[j*ss + t] (a = 4 or 6) */
static inline void bt_run(int a, const float *restrict in, int64_t ss, float *restrict o, int64_t os, int64_t n)
{
    if (a == 4) {
        for (int64_t t = 0; t < n; t++) {
            float s0 = in[t], s1 = in[ss + t], s2 = in[2 * ss + t], s3 = in[3 * ss + t];
            o[t] = s0 - s2;
            o[os + t] = s1 + s2;
            o[2 * os + t] = s2 - s1;
            o[3 * os + t] = s1 - s3;
        }
    } else {
        for (int64_t t = 0; t < n; t++) {
            float s0 = in[t], s1 = in[ss + t], s2 = in[2 * ss + t], s3 = in[3 * ss + t], s4 = in[4 * ss + t],
                  s5 = in[5 * ss + t];
            float p = s4 - 4 * s2, q = s3 - 4 * s1, r = s4 - s2, u = 2 * (s3 - s1);
            o[t] = 4 * s0 - 5 * s2 + s4;
            o[os + t] = p + q;
            o[2 * os + t] = p - q;
            o[3 * os + t] = r + u;
            o[4 * os + t] = r - u;
            o[5 * os + t] = 4 * s1 - 5 * s3 + s5;
        }
    }
}

/* o[k*n + t] = (B^T s)[k], s[j] = row[m*t + j]: along x for n tiles */
static inline void bt_along_row(int m, const float *restrict row, float *restrict o, int64_t n)
{
    if (m == 2) {
        for (int64_t t = 0; t < n; t++) {
            const float *s = row + 2 * t;
            o[t] = s[0] - s[2];
            o[n + t] = s[1] + s[2];
            o[2 * n + t] = s[2] - s[1];
            o[3 * n + t] = s[1] - s[3];
        }
    } else {
        for (int64_t t = 0; t < n; t++) {
            const float *s = row + 4 * t;
            float p = s[4] - 4 * s[2], q = s[3] - 4 * s[1], r = s[4] - s[2], u = 2 * (s[3] - s[1]);
            o[t] = 4 * s[0] - 5 * s[2] + s[4];
            o[n + t] = p + q;
            o[2 * n + t] = p - q;
            o[3 * n + t] = r + u;
            o[4 * n + t] = r - u;
            o[5 * n + t] = 4 * s[1] - 5 * s[3] + s[5];
        }
    }
}

/* o[q*os + t] = (A^T s)[q] for t < n, s[i] = in[i*ss + t] (m = 2 or 4) */
static inline void at_run(int m, const float *restrict in, int64_t ss, float *restrict o, int64_t os, int64_t n)
{
    if (m == 2) {
        for (int64_t t = 0; t < n; t++) {
            float s0 = in[t], s1 = in[ss + t], s2 = in[2 * ss + t], s3 = in[3 * ss + t];
            o[t] = s0 + s1 + s2;
            o[os + t] = s1 - s2 - s3;
        }
    } else {
        for (int64_t t = 0; t < n; t++) {
            float s0 = in[t], s1 = in[ss + t], s2 = in[2 * ss + t], s3 = in[3 * ss + t], s4 = in[4 * ss + t],
                  s5 = in[5 * ss + t];
            float p = s1 + s2, q = s1 - s2, r = s3 + s4, u = s3 - s4;
            o[t] = s0 + p + r;
            o[os + t] = q + 2 * u;
            o[2 * os + t] = p + 4 * r;
            o[3 * os + t] = q + 8 * u + s5;
        }
    }
}

/* row[m*t + p] = (A^T s)[p], s[k] = in[k*n + t]: along x for n tiles */
static inline void at_along_row(int m, const float *restrict in, float *restrict row, int64_t n)
{
    if (m == 2) {
        for (int64_t t = 0; t < n; t++) {
            float s0 = in[t], s1 = in[n + t], s2 = in[2 * n + t], s3 = in[3 * n + t];
            row[2 * t] = s0 + s1 + s2;
            row[2 * t + 1] = s1 - s2 - s3;
        }
    } else {
        for (int64_t t = 0; t < n; t++) {
            float s0 = in[t], s1 = in[n + t], s2 = in[2 * n + t], s3 = in[3 * n + t], s4 = in[4 * n + t],
                  s5 = in[5 * n + t];
            float p = s1 + s2, q = s1 - s2, r = s3 + s4, u = s3 - s4;
            row[4 * t] = s0 + p + r;
            row[4 * t + 1] = q + 2 * u;
            row[4 * t + 2] = p + 4 * r;
            row[4 * t + 3] = q + 8 * u + s5;
        }
    }
}

/* The transformed tiles of one zero-padded plane (PW columns) into
 * V[xi][c][col0 + t], V's xi rows spaced by vs floats. */
static void plane_to_v(float *V, int64_t vs, int64_t col0, const float *plane, int64_t PW, const wino_dims *d)
{
    const int a = d->a, m = d->m;
    const int64_t tw = d->tw;
    float R[6 * 6 * ROW_TILES]; /* R[(i*a + k)*tw + tx]: row i of the tile row, x-transformed */
    for (int64_t ty = 0; ty < d->th; ty++) {
        for (int i = 0; i < a; i++) bt_along_row(m, plane + (ty * m + i) * PW, R + i * a * tw, tw);
        float *dst = V + col0 + ty * tw;
        for (int k = 0; k < a; k++) bt_run(a, R + k * tw, a * tw, dst + k * vs, a * vs, tw);
    }
}

/* out plane (Ho x Wo) <- A^T M A + bias (relu) of the tiles M[xi][col0 + t],
 * M's xi rows spaced by ms floats. */
static void m_to_plane(float *op, const float *Mx, int64_t ms, int64_t col0, float bias, int relu,
                       const wino_dims *d)
{
    const int a = d->a, m = d->m;
    const int64_t tw = d->tw;
    float Y[4 * 6 * ROW_TILES];  /* Y[(q*a + k)*tw + tx]: y-transformed */
    float row[4 * ROW_TILES];
    for (int64_t ty = 0; ty < d->th; ty++) {
        const float *src = Mx + col0 + ty * tw;
        for (int k = 0; k < a; k++) at_run(m, src + k * ms, a * ms, Y + k * tw, a * tw, tw);
        for (int q = 0; q < m && ty * m + q < d->Ho; q++) {
            at_along_row(m, Y + q * a * tw, row, tw);
            float *orow = op + (ty * m + q) * d->Wo;
            if (relu)
                for (int64_t x = 0; x < d->Wo; x++) {
                    float v = row[x] + bias;
                    orow[x] = v > 0 ? v : 0;
                }
            else
                for (int64_t x = 0; x < d->Wo; x++) orow[x] = row[x] + bias;
        }
    }
}

/* V[xi][c][t] (row stride ld >= T, columns T..ld zeroed) for samples
 * [n0, n0+nb): for each channel plane, the a x a patches of LANES
 * consecutive tiles (row-major over the tile grid, so no lane is wasted at
 * the end of a tile row) are gathered, then transformed B^T . B lane by
 * lane. Small planes are first copied into a zero-padded plane covering
 * every tile, so the gather needs no bounds checks. The channels are
 * shared out by an orphaned omp for: call it inside a parallel region. */
static void input_transform(float *V, int64_t ld, const float *x, const wino_dims *d, int64_t n0, int64_t nb)
{
    const int a = d->a, m = d->m;
    int64_t T = nb * d->tiles, HW = d->H * d->W;
    int64_t PH = d->th * m + 2, PW = d->tw * m + 2;
    int padded = PH * PW <= PLANE_MAX, rowwise = padded && d->tw >= ROW_MIN && d->tw <= ROW_TILES;
    #pragma omp for schedule(static)
    for (int64_t c = 0; c < d->Cin; c++) {
        float patch[36][LANES], v[36][LANES];
        float plane[PLANE_MAX];
        for (int64_t n = n0; n < n0 + nb; n++) {
            const float *xp = x + (n * d->Cin + c) * HW;
            if (padded) {
                /* plane[r][q] = x[r - pt][q - pl], zero outside the image */
                memset(plane, 0, (size_t)(PH * PW) * sizeof(float));
                for (int64_t r = 0; r < PH; r++) {
                    int64_t y = r - d->pt, len = d->W;
                    if (y < 0 || y >= d->H) continue;
                    if (d->pl + len > PW) len = PW - d->pl;
                    if (len > 0) memcpy(plane + r * PW + d->pl, xp + y * d->W, (size_t)len * sizeof(float));
                }
            }
            if (rowwise) {
                plane_to_v(V + c * ld, d->Cin * ld, (n - n0) * d->tiles, plane, PW, d);
                continue;
            }
            for (int64_t t0 = 0; t0 < d->tiles; t0 += LANES) {
                int lanes = d->tiles - t0 < LANES ? (int)(d->tiles - t0) : LANES;
                int64_t ty = t0 / d->tw, tx = t0 % d->tw;
                for (int l = 0; l < LANES; l++) {
                    if (l >= lanes) {
                        for (int k = 0; k < a * a; k++) patch[k][l] = 0;
                        continue;
                    }
                    if (padded) {
                        const float *pp = plane + ty * m * PW + tx * m;
                        for (int i = 0; i < a; i++)
                            for (int j = 0; j < a; j++) patch[i * a + j][l] = pp[i * PW + j];
                    } else {
                        int64_t y0 = ty * m - d->pt, x0 = tx * m - d->pl;
                        for (int i = 0; i < a; i++)
                            for (int j = 0; j < a; j++) {
                                int64_t y = y0 + i, xx = x0 + j;
                                patch[i * a + j][l] = y >= 0 && y < d->H && xx >= 0 && xx < d->W ? xp[y * d->W + xx] : 0.0f;
                            }
                    }
                    if (++tx == d->tw) { tx = 0; ty++; }
                }
                tile_in(a, patch, v);
                float *dst0 = V + c * ld + (n - n0) * d->tiles + t0;
                for (int xi = 0; xi < a * a; xi++) {
                    float *dst = dst0 + (int64_t)xi * d->Cin * ld;
                    store_lanes(dst, v[xi], lanes);
                }
            }
        }
        if (ld > T)
            for (int xi = 0; xi < a * a; xi++)
                memset(V + ((int64_t)xi * d->Cin + c) * ld + T, 0, (size_t)(ld - T) * sizeof(float));
    }
}

/* out = A^T M A + bias (then max(., 0) when relu) for samples [n0, n0+nb),
 * LANES consecutive tiles at a time; M[xi][o][t] has row stride ld. An
 * orphaned omp for over the channels, as input_transform. */
static void output_transform(float *out, const float *Mx, int64_t ld, const float *bias, int relu,
                             const wino_dims *d, int64_t n0, int64_t nb)
{
    const int a = d->a, m = d->m;
    int64_t HWo = d->Ho * d->Wo;
    int rowwise = d->tw >= ROW_MIN && d->tw <= ROW_TILES;
    #pragma omp for schedule(static)
    for (int64_t o = 0; o < d->Cout; o++) {
        float mv[36][LANES], y[16][LANES];
        float bv = bias ? bias[o] : 0.0f;
        for (int64_t n = n0; n < n0 + nb; n++) {
            float *op = out + (n * d->Cout + o) * HWo;
            if (rowwise) {
                m_to_plane(op, Mx + o * ld, d->Cout * ld, (n - n0) * d->tiles, bv, relu, d);
                continue;
            }
            for (int64_t t0 = 0; t0 < d->tiles; t0 += LANES) {
                int lanes = d->tiles - t0 < LANES ? (int)(d->tiles - t0) : LANES;
                const float *src0 = Mx + o * ld + (n - n0) * d->tiles + t0;
                for (int xi = 0; xi < a * a; xi++) {
                    const float *src = src0 + (int64_t)xi * d->Cout * ld;
                    for (int l = 0; l < LANES; l++) mv[xi][l] = l < lanes ? src[l] : 0.0f;
                }
                tile_out(m, mv, bv, y);
                if (relu)
                    for (int k = 0; k < m * m; k++)
                        for (int l = 0; l < LANES; l++) y[k][l] = y[k][l] > 0 ? y[k][l] : 0;
                int64_t ty = t0 / d->tw, tx = t0 % d->tw;
                for (int l = 0; l < lanes; l++) {
                    int64_t ys = ty * m, xs = tx * m;
                    int64_t ih = d->Ho - ys < m ? d->Ho - ys : m, jw = d->Wo - xs < m ? d->Wo - xs : m;
                    float *ob = op + ys * d->Wo + xs;
                    for (int64_t i = 0; i < ih; i++)
                        for (int64_t j = 0; j < jw; j++) ob[i * d->Wo + j] = y[i * m + j][l];
                    if (++tx == d->tw) { tx = 0; ty++; }
                }
            }
        }
    }
}

void sm_winograd_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *u, const sm_tensor *bias,
                         const sm_conv2d_params *p, int relu, float *ws)
{
    wino_dims d = wdims(out, in, u, p);
    int64_t nbmax = wino_chunk(&d), aa = d.a * d.a;
    float *V = ws, *Mx = ws + aa * d.Cin * padded_columns(nbmax * d.tiles);
    /* a*a independent products, each cut into panels of SM_GEMM_MR output
     * channels: the jobs shared out between the threads */
    int64_t panels = (d.Cout + SM_GEMM_MR - 1) / SM_GEMM_MR, jobs = aa * panels;
    /* one parallel region for all three phases (the omp for barriers
     * between them are cheaper than starting three regions) */
    #pragma omp parallel if (aa * d.Cout * d.Cin * nbmax * d.tiles > 131072)
    for (int64_t n0 = 0; n0 < d.N; n0 += nbmax) {
        int64_t nb = d.N - n0 < nbmax ? d.N - n0 : nbmax, T = nb * d.tiles, ld = padded_columns(T);
        input_transform(V, ld, in->data, &d, n0, nb);
        #pragma omp for schedule(static)
        for (int64_t job = 0; job < jobs; job++) {
            int64_t xi = job / panels, r0 = job % panels * SM_GEMM_MR;
            int64_t rows = d.Cout - r0 < SM_GEMM_MR ? d.Cout - r0 : SM_GEMM_MR;
            sm_gemm_packed(Mx + (xi * d.Cout + r0) * ld, ld, u->data + xi * d.Cout * d.Cin + r0 * d.Cin, rows,
                           d.Cin, V + xi * d.Cin * ld, ld, ld);
        }
        output_transform(out->data, Mx, ld, bias ? bias->data : NULL, relu, &d, n0, nb);
    }
}

/* ---- weight gradient ----------------------------------------------------------------
 * The forward is, per tile, Y = A^T [U .* V] A with U = G g G^T, so with dY
 * the output gradient of a tile (zero past the output's edge):
 *
 *   dM = A dY A^T                         (a x a, the adjoint of the output transform)
 *   dU[xi] = sum over tiles dM[xi] V[xi]^T   [Cout][Cin]  (a*a sgemms)
 *   dg = G^T dU G                         (3 x 3, the adjoint of the weight transform)
 *
 * a*a/m^2 multiply-adds per output and channel pair instead of im2col's 9. */

size_t sm_winograd_backward_weight_workspace(const sm_tensor *grad_out, const sm_tensor *in, int tile)
{
    int64_t a = tile + 2;
    int64_t us[3] = { a * a, grad_out->shape[1], in->shape[1] };
    sm_tensor u;
    sm_tensor_init(&u, NULL, 3, us);
    return sm_winograd_workspace(grad_out, in, &u) + (size_t)(a * a * us[1] * us[2]);
}

/* A y A^T per lane, y m x m, out a x a (one-dimensional: out[k] = sum_i
 * AT[i][k] y[i]). */
static inline void a2t_1d(float (*s)[LANES], int ss, float (*o)[LANES], int os)
{
    L_FOR {
        float y0 = s[0][l], y1 = s[ss][l];
        o[0][l] = y0;
        o[os][l] = y0 + y1;
        o[2 * os][l] = y0 - y1;
        o[3 * os][l] = -y1;
    }
}

static inline void a4t_1d(float (*s)[LANES], int ss, float (*o)[LANES], int os)
{
    L_FOR {
        float y0 = s[0][l], y1 = s[ss][l], y2 = s[2 * ss][l], y3 = s[3 * ss][l];
        float e = y0 + y2, f = y1 + y3, g = y0 + 4 * y2, h = 2 * y1 + 8 * y3;
        o[0][l] = y0;
        o[os][l] = e + f;
        o[2 * os][l] = e - f;
        o[3 * os][l] = g + h;
        o[4 * os][l] = g - h;
        o[5 * os][l] = y3;
    }
}

/* dM[xi][o][t] for samples [n0, n0+nb) from grad_out. */
static void grad_transform(float *dM, const float *g, const wino_dims *d, int64_t n0, int64_t nb)
{
    const int a = d->a, m = d->m;
    int64_t T = nb * d->tiles, HWo = d->Ho * d->Wo;
    #pragma omp parallel for schedule(static) if (d->Cout * T * a * a > 32768)
    for (int64_t o = 0; o < d->Cout; o++) {
        float y[16][LANES], tmp[24][LANES], mv[36][LANES];
        for (int64_t n = n0; n < n0 + nb; n++) {
            const float *gp = g + (n * d->Cout + o) * HWo;
            for (int64_t t0 = 0; t0 < d->tiles; t0 += LANES) {
                int lanes = d->tiles - t0 < LANES ? (int)(d->tiles - t0) : LANES;
                int64_t ty = t0 / d->tw, tx = t0 % d->tw;
                for (int l = 0; l < LANES; l++) {
                    if (l >= lanes) {
                        for (int k = 0; k < m * m; k++) y[k][l] = 0;
                        continue;
                    }
                    int64_t ys = ty * m, xs = tx * m;
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < m; j++)
                            y[i * m + j][l] = ys + i < d->Ho && xs + j < d->Wo ? gp[(ys + i) * d->Wo + xs + j] : 0.0f;
                    if (++tx == d->tw) { tx = 0; ty++; }
                }
                if (m == 2) {
                    for (int j = 0; j < 2; j++) a2t_1d(y + j, 2, tmp + j, 2);     /* columns: tmp [4][2] */
                    for (int i = 0; i < 4; i++) a2t_1d(tmp + 2 * i, 1, mv + 4 * i, 1);
                } else {
                    for (int j = 0; j < 4; j++) a4t_1d(y + j, 4, tmp + j, 4);     /* tmp [6][4] */
                    for (int i = 0; i < 6; i++) a4t_1d(tmp + 4 * i, 1, mv + 6 * i, 1);
                }
                float *dst0 = dM + o * T + (n - n0) * d->tiles + t0;
                for (int xi = 0; xi < a * a; xi++) {
                    float *dst = dst0 + (int64_t)xi * d->Cout * T;
                    store_lanes(dst, mv[xi], lanes);
                }
            }
        }
    }
}

sm_status sm_winograd_backward_weight_check(sm_err *err, const sm_tensor *grad_w, const sm_tensor *grad_b,
                                            const sm_tensor *grad_out, const sm_tensor *in,
                                            const sm_conv2d_params *p, int tile)
{
    if (tile != 2 && tile != 4) return sm_fail(err, SM_EINVAL, "winograd: tile must be 2 or 4, got %d", tile);
    if (!sm_winograd_applies(p))
        return sm_fail(err, SM_EINVAL, "winograd: needs a 3x3 kernel, stride 1, dilation 1 and 1 group");
    return sm_conv2d_check(err, grad_out, in, grad_w, grad_b, p);
}

void sm_winograd_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                 const sm_tensor *in, const sm_conv2d_params *p, float scale, int tile, float *ws)
{
    int64_t a = tile + 2;
    int64_t us[3] = { a * a, grad_out->shape[1], in->shape[1] };
    sm_tensor u;
    sm_tensor_init(&u, NULL, 3, us);
    wino_dims d = wdims(grad_out, in, &u, p);
    int64_t nbmax = wino_chunk(&d), aa = d.a * d.a;
    float *V = ws, *dM = ws + aa * d.Cin * nbmax * d.tiles, *dU = dM + aa * d.Cout * nbmax * d.tiles;
    for (int64_t n0 = 0; n0 < d.N; n0 += nbmax) {
        int64_t nb = d.N - n0 < nbmax ? d.N - n0 : nbmax, T = nb * d.tiles;
        #pragma omp parallel if (d.Cin * T * aa > 32768)
        input_transform(V, T, in->data, &d, n0, nb);
        grad_transform(dM, grad_out->data, &d, n0, nb);
        float beta = n0 == 0 ? 0.0f : 1.0f;
        #pragma omp parallel for schedule(dynamic, 1) if (aa * d.Cout * d.Cin * T > 262144)
        for (int64_t xi = 0; xi < aa; xi++)
            sm_sgemm(0, 1, d.Cout, d.Cin, T, 1.0f, dM + xi * d.Cout * T, T, V + xi * d.Cin * T, T, beta,
                     dU + xi * d.Cout * d.Cin, d.Cin);
    }
    /* grad_w[o,c] += scale G^T dU[o,c] G, in double */
    const double *G = tile == 2 ? &G2[0][0] : &G4[0][0];
    int64_t cc = d.Cout * d.Cin;
    #pragma omp parallel for schedule(static) if (cc * aa > 65536)
    for (int64_t oc = 0; oc < cc; oc++) {
        double tmp[3][6]; /* G^T dU: 3 x a */
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < a; j++) {
                double s = 0;
                for (int k = 0; k < a; k++) s += G[k * 3 + i] * dU[(k * a + j) * cc + oc];
                tmp[i][j] = s;
            }
        float *gw = grad_w->data + oc * 9;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                double s = 0;
                for (int k = 0; k < a; k++) s += tmp[i][k] * G[k * 3 + j];
                gw[i * 3 + j] += scale * (float)s;
            }
    }
    if (grad_b) {
        int64_t HWo = d.Ho * d.Wo;
        for (int64_t o = 0; o < d.Cout; o++) {
            double s = 0;
            for (int64_t n = 0; n < d.N; n++) {
                const float *g = grad_out->data + (n * d.Cout + o) * HWo;
                for (int64_t i = 0; i < HWo; i++) s += g[i];
            }
            grad_b->data[o] += scale * (float)s;
        }
    }
}
