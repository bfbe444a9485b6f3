/*
 * im2col.c — convolution as im2col + sgemm, every pass, any shape (the
 * formula and shapes are in conv.h).
 *
 * Per group, a chunk of nb samples is unfolded into columns
 * col[K = Cg*kh*kw][nb*Ho*Wo]; then out_g = W_g[Cout/G, K] x col in one
 * sgemm (batching samples makes the GEMM wide even for 8x8 maps).
 * Backward:  dcol = W_g^T x dout_g, folded back (col2im, +=) into grad_in;
 *            grad_W_g += dout_g x col^T;  grad_b += sum over positions of dout.
 * The workspace holds col and one gathered [Cout/G, nb*Ho*Wo] block.
 * GEMMs go through sm_sgemm (split across threads); unfold runs in parallel
 * over channels.
 */
#include <string.h>
#include "conv/kernels.h"

/* Workspace budget per chunk, in floats (8 MiB, to stay near the caches); at
 * least one sample. */
#define CONV_WS_BUDGET ((size_t)2 << 20)

typedef sm_conv_im2col_dims conv_dims;

/* d's derived sizes from its shape fields. */
static conv_dims derive(conv_dims d, const sm_conv2d_params *p)
{
    d.G = p->groups;
    d.Cg = d.Cin / d.G;
    d.Cgo = d.Cout / d.G;
    d.K = d.Cg * p->kh * p->kw;
    d.HWo = d.Ho * d.Wo;
    return d;
}

sm_conv_im2col_dims sm_conv_im2col_dims_of(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p)
{
    conv_dims d;
    SM_CONV_SHAPE_SET(d, in, out);
    return derive(d, p);
}

/* Samples per chunk so that col + gathered block fit the budget. */
static int64_t chunk_samples(const conv_dims *d)
{
    size_t per = (size_t)(d->K + d->Cgo) * (size_t)d->HWo;
    int64_t nb = per ? (int64_t)(CONV_WS_BUDGET / per) : d->N;
    if (nb < 1) nb = 1;
    if (nb > d->N) nb = d->N;
    return nb;
}

size_t sm_conv_im2col_workspace(const sm_conv_shape *s, const sm_conv2d_params *p)
{
    conv_dims d;
    d.N = s->N, d.Cin = s->Cin, d.H = s->H, d.W = s->W, d.Cout = s->Cout, d.Ho = s->Ho, d.Wo = s->Wo;
    d = derive(d, p);
    return (size_t)(d.K + d.Cgo) * (size_t)(chunk_samples(&d) * d.HWo);
}

/* Unfolds samples [n0, n0+nb) of group g into col[K][nb*HWo]. With
 * accumulate set, does the reverse (col2im): adds col back into x. */
static void unfold(float *col, float *x, const conv_dims *d, const sm_conv2d_params *p,
                   int64_t n0, int64_t nb, int64_t g, int accumulate)
{
    int64_t ncol = nb * d->HWo, HW = d->H * d->W;
    /* Parallel over channels: each channel's rows read (or, folding back,
     * write) only that channel's input plane, so threads never collide. */
    #pragma omp parallel for schedule(static) if (d->K * ncol > 65536)
    for (int64_t c = 0; c < d->Cg; c++)
        for (int64_t ky = 0; ky < p->kh; ky++)
            for (int64_t kx = 0; kx < p->kw; kx++) {
                int64_t r = (c * p->kh + ky) * p->kw + kx;
                int64_t xoff = kx * p->dw - p->pl, lo, hi;
                sm_conv_valid_range(d->W, d->Wo, p->sw, xoff, &lo, &hi);
                for (int64_t b = 0; b < nb; b++) {
                    float *src = x + ((n0 + b) * d->Cin + g * d->Cg + c) * HW;
                    float *dst = col + r * ncol + b * d->HWo;
                    for (int64_t oy = 0; oy < d->Ho; oy++) {
                        int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                        float *drow = dst + oy * d->Wo;
                        if (iy < 0 || iy >= d->H) {
                            if (!accumulate) memset(drow, 0, (size_t)d->Wo * sizeof(float));
                            continue;
                        }
                        float *srow = src + iy * d->W;
                        if (accumulate) {
                            for (int64_t ox = lo; ox < hi; ox++) srow[ox * p->sw + xoff] += drow[ox];
                        } else {
                            for (int64_t ox = 0; ox < lo; ox++) drow[ox] = 0;
                            if (p->sw == 1) memcpy(drow + lo, srow + (lo + xoff), (size_t)(hi - lo) * sizeof(float));
                            else for (int64_t ox = lo; ox < hi; ox++) drow[ox] = srow[ox * p->sw + xoff];
                            for (int64_t ox = hi; ox < d->Wo; ox++) drow[ox] = 0;
                        }
                    }
                }
            }
}

/* Copies group g of samples [n0, n0+nb) of a [N,Cout,Ho,Wo] tensor into
 * blk[Cgo][nb*HWo] (gather) or back (scatter, adding bias if given). */
static void regroup(float *blk, float *t, const conv_dims *d, int64_t n0, int64_t nb, int64_t g,
                    int scatter, const float *bias)
{
    int64_t ncol = nb * d->HWo;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t o = 0; o < d->Cgo; o++) {
            float *tp = t + ((n0 + b) * d->Cout + g * d->Cgo + o) * d->HWo;
            float *bp = blk + o * ncol + b * d->HWo;
            if (!scatter) {
                memcpy(bp, tp, (size_t)d->HWo * sizeof(float));
            } else if (bias) {
                float bv = bias[g * d->Cgo + o];
                for (int64_t i = 0; i < d->HWo; i++) tp[i] = bp[i] + bv;
            } else {
                memcpy(tp, bp, (size_t)d->HWo * sizeof(float));
            }
        }
}

void sm_conv_im2col_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                            const sm_tensor *bias, const sm_conv2d_params *p, float *ws)
{
    conv_dims d = sm_conv_im2col_dims_of(in, out, p);
    int64_t nbmax = chunk_samples(&d);
    float *col = ws, *blk = ws + d.K * nbmax * d.HWo;
    for (int64_t n0 = 0; n0 < d.N; n0 += nbmax) {
        int64_t nb = d.N - n0 < nbmax ? d.N - n0 : nbmax, ncol = nb * d.HWo;
        for (int64_t g = 0; g < d.G; g++) {
            const float *wg = weight->data + g * d.Cgo * d.K;
            unfold(col, in->data, &d, p, n0, nb, g, 0);
            if (nb == 1) { /* the output block of one sample is already [Cgo][HWo] */
                float *o = out->data + (n0 * d.Cout + g * d.Cgo) * d.HWo;
                sm_conv_fill_bias(o, bias ? bias->data + g * d.Cgo : NULL, d.Cgo, d.HWo);
                sm_sgemm(0, 0, d.Cgo, ncol, d.K,
                            1.0f, wg, d.K, col, ncol, 1.0f, o, ncol);
            } else {
                sm_sgemm(0, 0, d.Cgo, ncol, d.K,
                            1.0f, wg, d.K, col, ncol, 0.0f, blk, ncol);
                regroup(blk, out->data, &d, n0, nb, g, 1, bias ? bias->data : NULL);
            }
        }
    }
}

/* Backward chunks: one sample when its map is wide enough for the GEMMs
 * (then dout needs no gathering), else as many as the workspace holds
 * (never more than the forward's, which sized the workspace). */
static int64_t backward_chunk_samples(const conv_dims *d)
{
    return d->HWo >= 1024 ? 1 : chunk_samples(d);
}

/* Points at dout for group g of samples [n0, n0+nb) as a [Cgo][nb*HWo]
 * block, gathering into blk when it is not already laid out that way. */
static const float *dout_block(float *blk, const sm_tensor *grad_out, const conv_dims *d,
                               int64_t n0, int64_t nb, int64_t g)
{
    if (nb == 1) return grad_out->data + (n0 * d->Cout + g * d->Cgo) * d->HWo;
    regroup(blk, grad_out->data, d, n0, nb, g, 0, NULL);
    return blk;
}

void sm_conv_im2col_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                                   const sm_conv2d_params *p, float *ws)
{
    conv_dims d = sm_conv_im2col_dims_of(grad_in, grad_out, p);
    int64_t nbmax = backward_chunk_samples(&d);
    float *col = ws, *blk = ws + d.K * nbmax * d.HWo;
    for (int64_t n0 = 0; n0 < d.N; n0 += nbmax) {
        int64_t nb = d.N - n0 < nbmax ? d.N - n0 : nbmax, ncol = nb * d.HWo;
        for (int64_t g = 0; g < d.G; g++) {
            const float *go = dout_block(blk, grad_out, &d, n0, nb, g);
            sm_sgemm(1, 0, d.K, ncol, d.Cgo,
                        1.0f, weight->data + g * d.Cgo * d.K, d.K, go, ncol, 0.0f, col, ncol);
            unfold(col, grad_in->data, &d, p, n0, nb, g, 1);
        }
    }
}

void sm_conv_im2col_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                    const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws)
{
    conv_dims d = sm_conv_im2col_dims_of(in, grad_out, p);
    int64_t nbmax = backward_chunk_samples(&d);
    float *col = ws, *blk = ws + d.K * nbmax * d.HWo;
    for (int64_t n0 = 0; n0 < d.N; n0 += nbmax) {
        int64_t nb = d.N - n0 < nbmax ? d.N - n0 : nbmax, ncol = nb * d.HWo;
        for (int64_t g = 0; g < d.G; g++) {
            const float *go = dout_block(blk, grad_out, &d, n0, nb, g);
            unfold(col, in->data, &d, p, n0, nb, g, 0);
            sm_sgemm(0, 1, d.Cgo, d.K, ncol,
                        scale, go, ncol, col, ncol, 1.0f, grad_w->data + g * d.Cgo * d.K, d.K);
            if (grad_b)
                for (int64_t o = 0; o < d.Cgo; o++) {
                    double s = 0;
                    for (int64_t i = 0; i < ncol; i++) s += go[o * ncol + i];
                    grad_b->data[g * d.Cgo + o] += scale * (float)s;
                }
        }
    }
}
