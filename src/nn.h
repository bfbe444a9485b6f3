/*
 * nn.h — neural-network kernels of the siamese core (one layer family per
 * .c file; the convolutions are a wing of their own, src/conv/conv.h).
 * Tensors are contiguous NCHW (or [N, F] for dense layers).
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

#endif
