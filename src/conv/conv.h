/*
 * conv.h — the convolution wing of the core (src/conv/): 2-D convolution
 * (cross-correlation) over NCHW tensors, by one of several algorithms.
 *
 *   out[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] * in[n, g*Cg + c, y*sh - pt + i*dh, x*sw - pl + j*dw]
 *
 * with g = o / (Cout/G), Cg = Cin/G, and out-of-range input positions
 * reading 0. Shapes: in [N,Cin,H,W], weight [Cout,Cin/G,kh,kw], bias [Cout]
 * or NULL, out [N,Cout,Ho,Wo] with Ho = sm_conv_out_size(H, kh, sh, dh, pt, pb).
 *
 * How to use it: sm_conv_plan picks the algorithm for a pass (plan.c, the
 * one decision table); sm_conv_weights_* put the weights in the form that
 * algorithm reads (none for most: the plain weight); then the pass runs as
 * every kernel of the core does: a *_check that validates without
 * allocating, a workspace size in floats, and a compute function that
 * cannot fail (passes.c routes each to the algorithm's own file).
 */
#ifndef SM_CONV_H
#define SM_CONV_H
#include "sm.h"

typedef struct {
    int kh, kw;            /* kernel size */
    int sh, sw;            /* stride */
    int dh, dw;            /* dilation */
    int pt, pl, pb, pr;    /* zero padding: top, left, bottom, right */
    int groups;            /* Cin and Cout divisible by groups */
} sm_conv2d_params;

/* ---- shapes (shape.c; pooling uses them too) ---------------------------------- */

/* Output size along one axis; <= 0 when the kernel does not fit. */
int64_t sm_conv_out_size(int64_t in, int k, int stride, int dilation, int pad_before, int pad_after);
/* TensorFlow SAME padding for one axis: out = ceil(in / stride); the odd
 * pixel goes after (bottom/right). */
void sm_conv_same_padding(int64_t in, int k, int stride, int dilation, int *pad_before, int *pad_after);

/* The sizes of one convolution: input [N,Cin,H,W], output [N,Cout,Ho,Wo]. */
typedef struct {
    int64_t N, Cin, H, W, Cout, Ho, Wo;
} sm_conv_shape;

/* The shape of input [N,Cin,H,W] convolved into Cout channels (Ho or Wo
 * <= 0 when the kernel does not fit). */
sm_conv_shape sm_conv_shape_of(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout,
                               const sm_conv2d_params *p);

/* ---- algorithms and the plan (plan.c) -------------------------------------------- */

typedef enum {
    SM_CONV_IM2COL,        /* im2col.c: unfold a chunk of samples, one sgemm (every pass) */
    SM_CONV_IM2COL_BANDED, /* im2col_banded.c: large maps, unfold and sgemm by bands of rows */
    SM_CONV_POINTWISE,     /* pointwise.c: 1x1, stride 1, unpadded: out_n = W x_n */
    SM_CONV_DEPTHWISE,     /* depthwise.c: groups = Cin = Cout, direct loops (every pass) */
    SM_CONV_DIRECT_SMALL,  /* direct_small.c: stride 1, few channels, padded planes (every pass) */
    SM_CONV_DIRECT_RGB,    /* direct_rgb.c: few input channels, stride 1 or 2, AVX2 rows */
    SM_CONV_PACKED,        /* packed.c: im2col on weights packed for gemm_packed.c */
    SM_CONV_PACKED_TAP,    /* packed.c on a 1x1 input that only one tap of the kernel reads */
    SM_CONV_BLOCKED,       /* blocked.c: direct, weights in panels of 32 output channels */
    SM_CONV_BLOCKED8,      /* blocked.c on weights kept as 8-bit levels of a grid */
    SM_CONV_WINOGRAD_F2,   /* winograd.c: F(2x2, 3x3) (every pass) */
    SM_CONV_WINOGRAD_F4,   /* winograd.c: F(4x4, 3x3) (every pass) */
    SM_CONV_NALGOS
} sm_conv_algo;

typedef enum { SM_CONV_FORWARD, SM_CONV_BACKWARD_INPUT, SM_CONV_BACKWARD_WEIGHT } sm_conv_pass;

/* What a layer holds besides its plain weights, and what it allows: the
 * "weights format" half of the decision (nn.Conv2d's prepare, pack,
 * training mode and class settings). All zero: plain weights, inference. */
typedef struct {
    int training;         /* training mode: forwards on weights that change at every step */
    int train_winograd;   /* training may use Winograd (nn.Conv2d.train_winograd) */
    int winograd;         /* inference Winograd opted in (nn.Conv2d:prepare) */
    int winograd_tile;    /* its tile, 2 or 4 forced; 0 chosen by the plan */
    int weight_grad_tile; /* the Winograd weight gradient's tile, 2 or 4 forced; 0 chosen */
    int packed;           /* packed inference forwards opted in (nn.Conv2d:pack) */
    int q8;               /* the weights are held as 8-bit levels too (pack{grid}) */
} sm_conv_weights;

/* The algorithm for one pass of this convolution, from its shape (batch
 * included), its parameters, what the layer holds and the SIMD level of
 * the CPU (sm_simd_level()). Always one that sm_conv_algo_runs. */
sm_conv_algo sm_conv_plan(sm_conv_pass pass, const sm_conv_shape *s, const sm_conv2d_params *p,
                          const sm_conv_weights *w, int simd);
/* Whether algorithm a can compute this pass of this convolution at all on
 * a CPU of SIMD level simd (what a forced algorithm is checked against). */
int sm_conv_algo_runs(sm_conv_algo a, sm_conv_pass pass, const sm_conv_shape *s, const sm_conv2d_params *p,
                      int simd);
/* "im2col", "winograd_f4", ...; sm_conv_algo_of_name returns -1 for an unknown name. */
const char *sm_conv_algo_name(sm_conv_algo a);
int sm_conv_algo_of_name(const char *name);

/* ---- the weights as an algorithm reads them (passes.c) ---------------------------- */

/* The shape (ndim, written to shape) of the weights algorithm a reads in
 * pass; 0 when it reads the plain weight [Cout,Cin/G,kh,kw] (or, for the
 * weight gradient, none). SM_CONV_BLOCKED8 reads 8-bit levels made by
 * sm_conv2d_blocked_pack8 below, not by sm_conv_weights_make. */
int sm_conv_weights_shape(sm_conv_algo a, sm_conv_pass pass, const sm_conv_shape *s, const sm_conv2d_params *p,
                          int64_t shape[3]);
sm_status sm_conv_weights_check(sm_err *err, sm_conv_algo a, sm_conv_pass pass, const sm_tensor *dst,
                                const sm_tensor *weight, const sm_conv2d_params *p);
/* dst <- weight [Cout,Cin,kh,kw] in the form of sm_conv_weights_shape. */
void sm_conv_weights_make(sm_conv_algo a, sm_conv_pass pass, sm_tensor *dst, const sm_tensor *weight,
                          const sm_conv2d_params *p);
/* Weights on a grid per output channel (grid [2,Cout]: offsets, steps):
 * wq [Cout*Cin*kh*kw/4] <- their levels in 8 bits (Cout a multiple of 16).
 * Returns 0 (wq partly written) when a weight is off its channel's grid
 * (more than a few ulps from offset + step * q, q in 0..255). */
sm_status sm_conv2d_blocked_pack8_check(sm_err *err, const sm_tensor *wq, const sm_tensor *grid,
                                        const sm_tensor *weight);
int sm_conv2d_blocked_pack8(sm_tensor *wq, const sm_tensor *grid, const sm_tensor *weight);

/* ---- the passes (passes.c), on algorithm a's weights w ------------------------------ */

/* out <- conv(in) + res, then max(., 0) when relu != 0. grid: the 8-bit
 * weights' grid (SM_CONV_BLOCKED8 only, else NULL); res (NULL, or out's
 * shape): a residual block's sum, SM_CONV_BLOCKED and SM_CONV_BLOCKED8
 * only. */
sm_status sm_conv_forward_check(sm_err *err, sm_conv_algo a, const sm_tensor *out, const sm_tensor *in,
                                const sm_tensor *w, const sm_tensor *grid, const sm_tensor *bias,
                                const sm_tensor *res, const sm_conv2d_params *p);
size_t sm_conv_forward_workspace(sm_conv_algo a, const sm_tensor *out, const sm_tensor *in,
                                 const sm_conv2d_params *p);
void sm_conv_forward(sm_conv_algo a, sm_tensor *out, const sm_tensor *in, const sm_tensor *w, const sm_tensor *grid,
                     const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p, int relu, float *ws);

/* grad_in <- d loss / d in (written, not accumulated: the accumulating
 * kernels start from zero). */
sm_status sm_conv_backward_input_check(sm_err *err, sm_conv_algo a, const sm_tensor *grad_in,
                                       const sm_tensor *grad_out, const sm_tensor *w, const sm_conv2d_params *p);
size_t sm_conv_backward_input_workspace(sm_conv_algo a, const sm_tensor *grad_in, const sm_tensor *grad_out,
                                        const sm_conv2d_params *p);
void sm_conv_backward_input(sm_conv_algo a, sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *w,
                            const sm_conv2d_params *p, float *ws);

/* grad_w += scale * d loss / d weight; grad_b (may be NULL) likewise. */
sm_status sm_conv_backward_weight_check(sm_err *err, sm_conv_algo a, const sm_tensor *grad_w,
                                        const sm_tensor *grad_b, const sm_tensor *grad_out, const sm_tensor *in,
                                        const sm_conv2d_params *p);
size_t sm_conv_backward_weight_workspace(sm_conv_algo a, const sm_tensor *grad_out, const sm_tensor *in,
                                         const sm_conv2d_params *p);
void sm_conv_backward_weight(sm_conv_algo a, sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                             const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws);

#endif
