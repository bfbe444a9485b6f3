/*
 * kernels.h — the algorithms of the convolution wing, one file each, for
 * passes.c (which routes a plan's passes to them), plan.c and the plain-C
 * tests; nothing outside src/conv/ includes it (the rest of the core goes
 * through conv.h). Each file's comment gives its formulas; none chooses
 * between algorithms (plan.c does).
 *
 * Shapes as in conv.h. Compute functions cannot fail once their check
 * (sm_conv2d_check unless a kernel has its own) has passed; backward
 * kernels accumulate (+=) into their gradients.
 */
#ifndef SM_CONV_KERNELS_H
#define SM_CONV_KERNELS_H
#include "conv/conv.h"

/* The sizes every kernel reads off its NCHW input and output. Each kernel
 * file's own dims struct starts with SM_CONV_SHAPE_FIELDS and fills them
 * with SM_CONV_SHAPE_SET before its derived fields. */
#define SM_CONV_SHAPE_FIELDS int64_t N, Cin, H, W, Cout, Ho, Wo
#define SM_CONV_SHAPE_SET(d, in, out)                                          \
    do {                                                                       \
        (d).N = (in)->shape[0], (d).Cin = (in)->shape[1];                      \
        (d).H = (in)->shape[2], (d).W = (in)->shape[3];                        \
        (d).Cout = (out)->shape[1], (d).Ho = (out)->shape[2];                  \
        (d).Wo = (out)->shape[3];                                              \
    } while (0)

/* ---- shapes and the plain weights' check (shape.c) ------------------------------ */

/* in [N,Cin,H,W], weight [Cout,Cin/groups,kh,kw], bias [Cout] or NULL,
 * out [N,Cout,Ho,Wo]. */
sm_status sm_conv2d_check(sm_err *err, const sm_tensor *out, const sm_tensor *in,
                          const sm_tensor *weight, const sm_tensor *bias, const sm_conv2d_params *p);
/* First and one-past-last output x whose input x = ox*s + off_minus_pad
 * is in [0, W). */
void sm_conv_valid_range(int64_t W, int64_t Wo, int s, int64_t off_minus_pad, int64_t *lo, int64_t *hi);
/* rows o [cout][hw] of one sample <- bias (or 0), ready for a beta = 1 GEMM. */
void sm_conv_fill_bias(float *o, const float *bias, int64_t cout, int64_t hw);

/* ---- im2col + sgemm (im2col.c), its banded forward (im2col_banded.c), 1x1 (pointwise.c) ---- */

/* The sizes of the im2col kernels: per group g, a [Cgo][K = Cg*kh*kw]
 * weight times K rows of columns. */
typedef struct {
    SM_CONV_SHAPE_FIELDS;
    int64_t G, Cg, Cgo, K, HWo;
} sm_conv_im2col_dims;
sm_conv_im2col_dims sm_conv_im2col_dims_of(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p);
/* Floats of workspace for every pass of im2col.c: a chunk of samples' columns. */
size_t sm_conv_im2col_workspace(const sm_conv_shape *s, const sm_conv2d_params *p);
void sm_conv_im2col_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                            const sm_tensor *bias, const sm_conv2d_params *p, float *ws);
void sm_conv_im2col_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                                   const sm_conv2d_params *p, float *ws);
void sm_conv_im2col_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                    const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws);
/* Column-matrix floats per band of output rows in the banded forward: the
 * band's columns stay in the cache between unfold and GEMM. */
#define SM_CONV_BAND_FLOATS ((int64_t)1 << 16)
/* Floats of the column matrix of one sample and group (K x Ho*Wo). */
size_t sm_conv_im2col_banded_workspace(const sm_conv_shape *s, const sm_conv2d_params *p);
void sm_conv_im2col_banded_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                                   const sm_tensor *bias, const sm_conv2d_params *p, float *ws);
void sm_conv_pointwise_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                               const sm_tensor *bias);

/* ---- depthwise: groups = Cin = Cout (depthwise.c) --------------------------------- */

void sm_conv_depthwise_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                               const sm_tensor *bias, const sm_conv2d_params *p);
void sm_conv_depthwise_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                                      const sm_conv2d_params *p);
void sm_conv_depthwise_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                       const sm_tensor *in, const sm_conv2d_params *p, float scale);

/* ---- direct, stride 1, few channels, every pass (direct_small.c) ------------------ */

#define SM_CONV_DIRECT_SMALL_MAX_K 64    /* Cin*kh*kw */
#define SM_CONV_DIRECT_SMALL_MAX_COUT 64
/* Floats of one thread's padded planes (the plan keeps it bounded). */
size_t sm_conv_direct_small_scratch(const sm_conv_shape *s, const sm_conv2d_params *p);
size_t sm_conv_direct_small_workspace(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p);
void sm_conv_direct_small_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                                  const sm_tensor *bias, const sm_conv2d_params *p, float *ws);
void sm_conv_direct_small_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                                         const sm_conv2d_params *p, float *ws);
void sm_conv_direct_small_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                          const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws);

/* ---- direct forward for few input channels, AVX2 (direct_rgb.c) ------------------- */

#define SM_CONV_DIRECT_RGB_MAX_K 160 /* Cin*kh*kw: the taps of a row held at once */
/* 1 when this build has the kernel (x86-64, GCC); it runs on AVX2 + FMA. */
int sm_conv_direct_rgb_built(void);
/* Floats of workspace: stride 2 splits one sample's rows into even and odd columns. */
size_t sm_conv_direct_rgb_workspace(const sm_conv_shape *s, const sm_conv2d_params *p);
void sm_conv_direct_rgb_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                                const sm_tensor *bias, const sm_conv2d_params *p, float *ws);

/* ---- small products on a packed left matrix (gemm_packed.c) ------------------------------------ */

#define SM_GEMM_MR 8   /* rows per packed panel */
#define SM_GEMM_NV 16  /* N must be a multiple of this */
/* dst (M*K floats) <- A [M][K] (row stride lda) in panels of SM_GEMM_MR rows. */
void sm_gemm_pack(float *dst, const float *A, int64_t lda, int64_t M, int64_t K);
/* Position of A[i][k] in the packed matrix. */
int64_t sm_gemm_packed_index(int64_t i, int64_t k, int64_t M, int64_t K);
/* C [M][N] (row stride ldc) = Ap B, B [K][N] (row stride ldb), N a
 * multiple of SM_GEMM_NV; single-threaded. */
void sm_gemm_packed(float *C, int64_t ldc, const float *Ap, int64_t M, int64_t K, const float *B,
                    int64_t ldb, int64_t N);
/* The same product by one code path: 0 portable C, 1 AVX2 + FMA, 2
 * AVX-512; returns 0 (and does nothing) when the CPU or build lacks it. */
int sm_gemm_packed_path(int path, float *C, int64_t ldc, const float *Ap, int64_t M, int64_t K, const float *B,
                        int64_t ldb, int64_t N);

/* ---- im2col on weights packed once, for inference (packed.c) ------------------ */

/* wp [Cout, Cin*kh*kw] <- weight [Cout,Cin,kh,kw] packed for sm_gemm_packed. */
sm_status sm_conv2d_pack_check(sm_err *err, const sm_tensor *wp, const sm_tensor *weight);
void sm_conv2d_pack(sm_tensor *wp, const sm_tensor *weight);
/* The convolution of im2col.c (one group) from the packed
 * weights; relu != 0 applies max(., 0) to the output. */
sm_status sm_conv2d_packed_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wp,
                                 const sm_tensor *bias, const sm_conv2d_params *p);
size_t sm_conv2d_packed_workspace(const sm_tensor *out, const sm_tensor *in, const sm_conv2d_params *p);
void sm_conv2d_packed_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *wp, const sm_tensor *bias,
                              const sm_conv2d_params *p, int relu, float *ws);

/* ---- direct convolution on weights packed by output channels (blocked.c) ---- */

/* wb [Cout, Cin*kh*kw] <- weight [Cout,Cin,kh,kw] (Cout a multiple of 16)
 * in panels of 32 output channels. */
sm_status sm_conv2d_blocked_pack_check(sm_err *err, const sm_tensor *wb, const sm_tensor *weight);
void sm_conv2d_blocked_pack(sm_tensor *wb, const sm_tensor *weight);
/* The convolution of im2col.c (one group) from the packed
 * weights, plus res (NULL, or a contiguous tensor of out's shape: a
 * residual block's sum); relu != 0 applies max(., 0) last. */
sm_status sm_conv2d_blocked_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wb,
                                  const sm_tensor *bias, const sm_conv2d_params *p);
sm_status sm_conv2d_blocked_check_residual(sm_err *err, const sm_tensor *out, const sm_tensor *res);
/* Floats of workspace; q8 != 0 for the 8-bit forward. */
size_t sm_conv2d_blocked_workspace(const sm_tensor *out, const sm_tensor *in, const sm_conv2d_params *p, int q8);
void sm_conv2d_blocked_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *wb, const sm_tensor *bias,
                               const sm_tensor *res, const sm_conv2d_params *p, int relu, float *ws);
/* The same on code path 0 (portable), 1 (AVX2 + FMA) or 2 (AVX-512), -1
 * the widest this CPU runs; returns 0 (and does nothing) when the CPU or
 * build lacks it. */
int sm_conv2d_blocked_forward_path(int path, sm_tensor *out, const sm_tensor *in, const sm_tensor *wb,
                                   const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p, int relu,
                                   float *ws);
/* 8-bit weights: sm_conv2d_blocked_pack8 (conv.h). */
/* The forward on 8-bit weights (checked by sm_conv2d_blocked_check8). */
sm_status sm_conv2d_blocked_check8(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wq,
                                   const sm_tensor *grid, const sm_tensor *bias, const sm_conv2d_params *p);
void sm_conv2d_blocked_forward8(sm_tensor *out, const sm_tensor *in, const sm_tensor *wq, const sm_tensor *grid,
                                const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p, int relu,
                                float *ws);
int sm_conv2d_blocked_forward8_path(int path, sm_tensor *out, const sm_tensor *in, const sm_tensor *wq,
                                    const sm_tensor *grid, const sm_tensor *bias, const sm_tensor *res,
                                    const sm_conv2d_params *p, int relu, float *ws);

/* ---- Winograd 3x3 stride-1 convolution (winograd.c) ------------------------- */

/* True for a 3x3 kernel with stride 1, dilation 1 and one group (any padding). */
int sm_winograd_applies(const sm_conv2d_params *p);
/* u [a*a,Cout,Cin] (a = tile + 2; tile 2 or 4) receives G g G^T of each
 * filter of weight [Cout,Cin,3,3]: u[xi] is the [Cout][Cin] matrix of
 * position xi, stored packed (sm_gemm_pack) for sm_winograd_forward. */
sm_status sm_winograd_prepare_check(sm_err *err, const sm_tensor *u, const sm_tensor *weight, int tile);
void sm_winograd_prepare(sm_tensor *u, const sm_tensor *weight, int tile);
/* The same for the input gradient of a 3x3 stride-1 convolution: u
 * [a*a,Cin,Cout] receives the transform of each filter rotated by 180
 * degrees with the channel axes swapped, so that sm_winograd_forward of the
 * output gradient (padded by 2 - pt, 2 - pl on the top/left) with it is the
 * input gradient. */
sm_status sm_winograd_prepare_flipped_check(sm_err *err, const sm_tensor *u, const sm_tensor *weight, int tile);
void sm_winograd_prepare_flipped(sm_tensor *u, const sm_tensor *weight, int tile);
/* The convolution of im2col.c from the transformed weights u
 * (the tile follows from u's first dimension); relu != 0 applies
 * max(., 0) to the output. */
sm_status sm_winograd_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *u,
                            const sm_tensor *bias, const sm_conv2d_params *p);
size_t sm_winograd_workspace(const sm_tensor *out, const sm_tensor *in, const sm_tensor *u);
void sm_winograd_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *u, const sm_tensor *bias,
                         const sm_conv2d_params *p, int relu, float *ws);
/* The weight gradient of im2col.c (grad_w += scale *
 * dL/dw, and grad_b += scale * dL/db when grad_b is not NULL) by Winograd F(tile x tile, 3x3): the adjoints of the
 * output and weight transforms around a*a products. */
sm_status sm_winograd_backward_weight_check(sm_err *err, const sm_tensor *grad_w, const sm_tensor *grad_b,
                                            const sm_tensor *grad_out, const sm_tensor *in,
                                            const sm_conv2d_params *p, int tile);
size_t sm_winograd_backward_weight_workspace(const sm_tensor *grad_out, const sm_tensor *in, int tile);
void sm_winograd_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                 const sm_tensor *in, const sm_conv2d_params *p, float scale, int tile, float *ws);

#endif
