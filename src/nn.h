/*
 * nn.h — neural-network kernels of the siamese core (one layer family per
 * .c file). Tensors are contiguous NCHW (or [N, F] for dense layers).
 *
 * Each family has a *_check that validates shapes and parameters without
 * allocating; the compute functions after a successful check cannot fail.
 * Backward passes accumulate (+=) into gradient buffers; zeroing is the
 * caller's job. Scratch memory is a caller-owned workspace whose size (in
 * floats) the *_workspace functions report.
 */
#ifndef SM_NN_H
#define SM_NN_H
#include "sm.h"

/* ---- 2-D convolution (conv2d.c) ---------------------------------------------- */

typedef struct {
    int kh, kw;            /* kernel size */
    int sh, sw;            /* stride */
    int dh, dw;            /* dilation */
    int pt, pl, pb, pr;    /* zero padding: top, left, bottom, right */
    int groups;            /* Cin and Cout divisible by groups */
} sm_conv2d_params;

/* The sizes every convolution kernel reads off its NCHW input and output.
 * Each kernel file's own dims struct starts with SM_CONV_SHAPE_FIELDS and
 * fills them with SM_CONV_SHAPE_SET before its derived fields. */
#define SM_CONV_SHAPE_FIELDS int64_t N, Cin, H, W, Cout, Ho, Wo
#define SM_CONV_SHAPE_SET(d, in, out)                                          \
    do {                                                                       \
        (d).N = (in)->shape[0], (d).Cin = (in)->shape[1];                      \
        (d).H = (in)->shape[2], (d).W = (in)->shape[3];                        \
        (d).Cout = (out)->shape[1], (d).Ho = (out)->shape[2];                  \
        (d).Wo = (out)->shape[3];                                              \
    } while (0)

/* Output size along one axis; <= 0 when the kernel does not fit. */
int64_t sm_conv_out_size(int64_t in, int k, int stride, int dilation, int pad_before, int pad_after);
/* TensorFlow SAME padding for one axis: out = ceil(in / stride); the odd
 * pixel goes after (bottom/right). */
void sm_conv_same_padding(int64_t in, int k, int stride, int dilation, int *pad_before, int *pad_after);

/* in [N,Cin,H,W], weight [Cout,Cin/groups,kh,kw], bias [Cout] or NULL,
 * out [N,Cout,Ho,Wo]. */
sm_status sm_conv2d_check(sm_err *err, const sm_tensor *out, const sm_tensor *in,
                          const sm_tensor *weight, const sm_tensor *bias, const sm_conv2d_params *p);
size_t sm_conv2d_workspace(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p);
void sm_conv2d_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                       const sm_tensor *bias, const sm_conv2d_params *p, float *ws);
/* grad_in += d loss / d in. */
void sm_conv2d_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                              const sm_conv2d_params *p, float *ws);
/* grad_w += scale * d loss / d weight; grad_b (may be NULL) likewise. */
void sm_conv2d_backward_params(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                               const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws);

/* Direct stride-1 kernels for few channels (conv2d_direct.c), used by the
 * functions above when sm_conv2d_direct_ok: groups 1, stride and dilation
 * 1, a kernel larger than 1x1, padding smaller than the kernel,
 * Cin*kh*kw <= 64, Cout <= 64 and the planes of a sample at most 4 MiB. */
int sm_conv2d_direct_ok(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p);
size_t sm_conv2d_direct_workspace(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p);
void sm_conv2d_direct_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight, const sm_tensor *bias,
                              const sm_conv2d_params *p, float *ws);
void sm_conv2d_direct_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                                     const sm_conv2d_params *p, float *ws);
void sm_conv2d_direct_backward_params(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                      const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws);

/* ---- pooling (pool2d.c) ----------------------------------------------------------- */

typedef struct {
    int kh, kw, sh, sw;
    int pt, pl, pb, pr;      /* padding; padded positions never win a max and,
                                for average pooling, count only when count_pad */
    int count_pad;           /* average pooling divides by kh*kw (1) or by the in-image count (0) */
} sm_pool2d_params;

/* in [N,C,H,W], out [N,C,Ho,Wo] (Ho from sm_conv_out_size with dilation 1). */
sm_status sm_pool2d_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_pool2d_params *p);
/* argmax (int32, numel of out) receives the winning flat position inside
 * the input plane (y*W + x) for backward; it may be NULL in inference. */
void sm_maxpool2d_forward(sm_tensor *out, int32_t *argmax, const sm_tensor *in, const sm_pool2d_params *p);
void sm_maxpool2d_backward(sm_tensor *grad_in, const sm_tensor *grad_out, const int32_t *argmax);
void sm_avgpool2d_forward(sm_tensor *out, const sm_tensor *in, const sm_pool2d_params *p);
void sm_avgpool2d_backward(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_pool2d_params *p);

/* ---- dense layer (linear.c) ---------------------------------------------------------- */

/* in [N,I], weight [O,I] (torch layout), bias [O] or NULL, out [N,O]:
 * out = in W^T + b. */
sm_status sm_linear_check(sm_err *err, const sm_tensor *out, const sm_tensor *in,
                          const sm_tensor *weight, const sm_tensor *bias);
void sm_linear_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight, const sm_tensor *bias);
void sm_linear_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight);
void sm_linear_backward_params(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                               const sm_tensor *in, float scale);

/* ---- element-wise activations, dropout (activation.c) ----------------------------- */

typedef enum { SM_ACT_RELU, SM_ACT_LEAKY_RELU, SM_ACT_SIGMOID, SM_ACT_TANH, SM_ACT_RELU6 } sm_activation;
/* out[i] = f(in[i]) over n floats (out may alias in); slope is LeakyReLU's. */
void sm_activation_forward(float *out, const float *in, int64_t n, sm_activation f, float slope);
/* grad_in[i] += grad_out[i] * f'(.) using in (ReLU/Leaky/ReLU6) or out (sigmoid/tanh). */
void sm_activation_backward(float *grad_in, const float *grad_out, const float *in, const float *out,
                            int64_t n, sm_activation f, float slope);
/* grad_in[i] = grad_out[i] * f'(.): writes rather than adds (no zeroing
 * pass before); grad_in may alias grad_out. */
void sm_activation_grad(float *grad_in, const float *grad_out, const float *in, const float *out, int64_t n,
                        sm_activation f, float slope);
/* PReLU over [N,C,L]: out = x > 0 ? x : a[c] x. */
void sm_prelu_forward(float *out, const float *in, const float *a, int64_t N, int64_t C, int64_t L);
void sm_prelu_backward(float *grad_in, float *grad_a, const float *grad_out, const float *in,
                       const float *a, int64_t N, int64_t C, int64_t L, float scale);
/* Inverted dropout: mask[i] = 0 with probability p, else 1/(1-p); out = in * mask. */
void sm_dropout_forward(float *out, float *mask, const float *in, int64_t n, float p, sm_rng *rng);
/* grad_in += grad_out * mask */
void sm_mul_accumulate(float *grad_in, const float *grad_out, const float *mask, int64_t n);

/* ---- batch normalisation and per-channel affine (batchnorm.c) --------------------- */

/* x [N,C,L] (L = H*W, or 1 for [N,C]); gamma/beta may be NULL (no affine).
 * Training uses batch statistics, saves mean and 1/sqrt(var+eps) for
 * backward and updates the running statistics with the unbiased variance:
 * running = (1 - momentum) running + momentum batch. */
void sm_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
                                float *running_mean, float *running_var, const float *x,
                                const float *gamma, const float *beta,
                                int64_t N, int64_t C, int64_t L, float momentum, float eps);
void sm_batchnorm_forward_eval(float *out, const float *x, const float *running_mean, const float *running_var,
                               const float *gamma, const float *beta, int64_t N, int64_t C, int64_t L, float eps);
/* Backward of the training-mode transform (batch statistics). */
void sm_batchnorm_backward_train(float *grad_in, float *grad_gamma, float *grad_beta, const float *grad_out,
                                 const float *x, const float *save_mean, const float *save_invstd,
                                 const float *gamma, int64_t N, int64_t C, int64_t L, float scale);
/* Per-channel affine out = x w[c] + b[c] (folded batch-norm); b may be NULL. */
void sm_affine_forward(float *out, const float *x, const float *w, const float *b, int64_t N, int64_t C, int64_t L);
void sm_affine_backward(float *grad_in, float *grad_w, float *grad_b, const float *grad_out, const float *x,
                        const float *w, int64_t N, int64_t C, int64_t L, float scale);

/* ---- distances between paired rows (distance.c) ------------------------------------ */

typedef enum { SM_PAIR_EUCLIDEAN, SM_PAIR_SQEUCLIDEAN, SM_PAIR_COSINE } sm_pair_metric;
/* d[n] = distance(a[n,:], b[n,:]) for a, b [N,D]. Euclidean is
 * sqrt(max(sum (a-b)^2, eps)) (Keras' epsilon inside the root); cosine is
 * 1 - a.b / max(|a||b|, eps). */
void sm_pair_distance_forward(float *d, const float *a, const float *b, int64_t N, int64_t D,
                              sm_pair_metric m, float eps);
/* grad_a += dL/dd * dd/da, grad_b likewise (either may be NULL). */
void sm_pair_distance_backward(float *grad_a, float *grad_b, const float *grad_d, const float *a,
                               const float *b, const float *d, int64_t N, int64_t D, sm_pair_metric m, float eps);
/* out = |a - b| element-wise (Koch et al.); backward through the sign. */
void sm_absdiff_forward(float *out, const float *a, const float *b, int64_t n);
void sm_absdiff_backward(float *grad_a, float *grad_b, const float *grad_out, const float *a, const float *b, int64_t n);

/* Row-wise y = x / max(|x|, eps) for x [N,D]; norms receives the divisors. */
void sm_l2normalize_forward(float *y, float *norms, const float *x, int64_t N, int64_t D, float eps);
void sm_l2normalize_backward(float *grad_x, const float *grad_y, const float *y, const float *norms,
                             int64_t N, int64_t D, float eps);

/* ---- losses (loss.c); each returns the mean loss and writes (not adds) the
 * gradient of that mean, times scale, into grad (which may be NULL) -------------------- */

/* Hadsell et al.: y d^2 + (1 - y) max(margin - d, 0)^2, y = 1 for "same". */
double sm_contrastive_loss(float *grad_d, const float *d, const float *y, int64_t N, float margin, float scale);
/* max(d(a,p) - d(a,n) + margin, 0) with euclidean (eps inside the root) or
 * squared euclidean distances; a, p, n [N,D]. */
double sm_triplet_loss(float *grad_a, float *grad_p, float *grad_n, const float *a, const float *p,
                       const float *n, int64_t N, int64_t D, float margin, int squared, float eps, float scale);
/* Binary cross-entropy on probabilities (clamped to [eps, 1-eps]) or on logits. */
double sm_bce_loss(float *grad_p, const float *p, const float *y, int64_t N, float eps, float scale);
double sm_bce_logits_loss(float *grad_z, const float *z, const float *y, int64_t N, float scale);

typedef enum { SM_MINE_BATCH_ALL, SM_MINE_BATCH_HARD, SM_MINE_SEMIHARD } sm_mining;
/* Triplet loss over a batch of embeddings e [B,D] with integer labels:
 *  batch-hard: per anchor, the farthest positive and the nearest negative;
 *              mean over anchors that have both;
 *  batch-all:  every valid (a, p, n); mean over triplets with positive loss;
 *  semi-hard:  every (a, p) with the nearest negative farther than p but
 *              within the margin (else the nearest negative); mean over
 *              all (a, p) pairs (FaceNet).
 * work: 2*B*B doubles. active (optional) receives the number of anchors or
 * triplets averaged over. */
double sm_batch_triplet_loss(float *grad_e, const float *e, const int64_t *labels, int64_t B, int64_t D,
                             float margin, int squared, float eps, sm_mining mining, float scale,
                             double *work, int64_t *active);

/* ---- optimisers (optim.c): one parameter tensor of n floats per call ------------------ */

/* torch.optim.SGD: g += wd w; v = mu v + g; g = nesterov ? g + mu v : v; w -= lr g. */
void sm_sgd_step(float *w, float *v, const float *g, int64_t n, float lr, float momentum, float wd, int nesterov);
/* Adam / AdamW (decoupled): t is the 1-based step count. */
void sm_adam_step(float *w, float *m, float *v, const float *g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int decoupled, int64_t t);
/* RMSprop: s = rho s + (1 - rho) g^2; w -= lr g / (sqrt(s) + eps) (after g += wd w). */
void sm_rmsprop_step(float *w, float *s, const float *g, int64_t n, float lr, float rho, float eps, float wd);
/* sum of squares of n floats, in double */
double sm_sumsq(const float *x, int64_t n);

/* ---- direct forward for few input channels (conv2d_first_layer.c) ----------------------- */

/* True for strides 1 or 2, dilation 1, one group, a kernel larger than
 * 1x1, Cin*kh*kw <= 32 (stride 1) or <= 160 (stride 2), Cout a multiple of
 * 8, on a CPU with AVX2 and FMA, and (stride 2) a workspace of `workspace`
 * floats holding one sample's input; sm_conv2d_forward then uses
 * sm_conv2d_forward_direct. */
int sm_conv2d_direct_applies(const sm_tensor *in, const sm_tensor *weight, const sm_conv2d_params *p,
                             size_t workspace);
void sm_conv2d_forward_direct(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight, const sm_tensor *bias,
                              const sm_conv2d_params *p, float *ws);

/* ---- small products on a packed left matrix (gemm_packed.c) ---------- */

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

/* ---- prepared im2col convolution for inference (conv2d_packed.c) ----- */

/* wp [Cout, Cin*kh*kw] <- weight [Cout,Cin,kh,kw] packed for sm_gemm_packed. */
sm_status sm_conv2d_pack_check(sm_err *err, const sm_tensor *wp, const sm_tensor *weight);
void sm_conv2d_pack(sm_tensor *wp, const sm_tensor *weight);
/* The convolution of sm_conv2d_forward (one group) from the packed
 * weights; relu != 0 applies max(., 0) to the output. */
sm_status sm_conv2d_packed_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wp,
                                 const sm_tensor *bias, const sm_conv2d_params *p);
size_t sm_conv2d_packed_workspace(const sm_tensor *out, const sm_tensor *in, const sm_conv2d_params *p);
void sm_conv2d_packed_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *wp, const sm_tensor *bias,
                              const sm_conv2d_params *p, int relu, float *ws);

/* ---- direct convolution on weights packed by output channels (conv2d_blocked.c) ---- */

/* wb [Cout, Cin*kh*kw] <- weight [Cout,Cin,kh,kw] (Cout a multiple of 16)
 * in panels of 32 output channels. */
sm_status sm_conv2d_blocked_pack_check(sm_err *err, const sm_tensor *wb, const sm_tensor *weight);
void sm_conv2d_blocked_pack(sm_tensor *wb, const sm_tensor *weight);
/* The convolution of sm_conv2d_forward (one group) from the packed
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
/* Weights on a grid per output channel (grid [2,Cout]: offsets, steps):
 * wq [Cout*Cin*kh*kw/4] <- their levels in 8 bits, in the panels' layout.
 * Returns 0 (wq partly written) when a weight is off its channel's grid
 * (more than a few ulps from offset + step * q, q in 0..255). */
sm_status sm_conv2d_blocked_pack8_check(sm_err *err, const sm_tensor *wq, const sm_tensor *grid,
                                        const sm_tensor *weight);
int sm_conv2d_blocked_pack8(sm_tensor *wq, const sm_tensor *grid, const sm_tensor *weight);
/* The forward on 8-bit weights (checked by sm_conv2d_blocked_check8). */
sm_status sm_conv2d_blocked_check8(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wq,
                                   const sm_tensor *grid, const sm_tensor *bias, const sm_conv2d_params *p);
void sm_conv2d_blocked_forward8(sm_tensor *out, const sm_tensor *in, const sm_tensor *wq, const sm_tensor *grid,
                                const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p, int relu,
                                float *ws);
int sm_conv2d_blocked_forward8_path(int path, sm_tensor *out, const sm_tensor *in, const sm_tensor *wq,
                                    const sm_tensor *grid, const sm_tensor *bias, const sm_tensor *res,
                                    const sm_conv2d_params *p, int relu, float *ws);

/* ---- Winograd 3x3 stride-1 convolution (winograd.c) ---------------- */

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
/* The convolution of sm_conv2d_forward from the transformed weights u
 * (the tile follows from u's first dimension); relu != 0 applies
 * max(., 0) to the output. */
sm_status sm_winograd_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *u,
                            const sm_tensor *bias, const sm_conv2d_params *p);
size_t sm_winograd_workspace(const sm_tensor *out, const sm_tensor *in, const sm_tensor *u);
void sm_winograd_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *u, const sm_tensor *bias,
                         const sm_conv2d_params *p, int relu, float *ws);
/* The weight gradient of sm_conv2d_backward_params (grad_w += scale *
 * dL/dw, and grad_b += scale * dL/db when grad_b is not NULL) by Winograd F(tile x tile, 3x3): the adjoints of the
 * output and weight transforms around a*a products. */
sm_status sm_winograd_backward_weight_check(sm_err *err, const sm_tensor *grad_w, const sm_tensor *grad_b,
                                            const sm_tensor *grad_out, const sm_tensor *in,
                                            const sm_conv2d_params *p, int tile);
size_t sm_winograd_backward_weight_workspace(const sm_tensor *grad_out, const sm_tensor *in, int tile);
void sm_winograd_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                 const sm_tensor *in, const sm_conv2d_params *p, float scale, int tile, float *ws);

#endif
