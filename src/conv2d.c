/*
 * conv2d.c — 2-D convolution (cross-correlation) as im2col + sgemm.
 *
 * Shapes: in [N,Cin,H,W], weight [Cout,Cin/G,kh,kw], bias [Cout],
 * out [N,Cout,Ho,Wo] with Ho = (H + pt + pb - dh*(kh-1) - 1) / sh + 1.
 *
 *   out[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] * in[n, g*Cg + c, y*sh - pt + i*dh, x*sw - pl + j*dw]
 *
 * with g = o / (Cout/G) and out-of-range input positions reading 0.
 *
 * Per group, a chunk of nb samples is unfolded into columns
 * col[K = Cg*kh*kw][nb*Ho*Wo]; then out_g = W_g[Cout/G, K] x col in one
 * sgemm (batching samples makes the GEMM wide even for 8x8 maps).
 * Backward:  dcol = W_g^T x dout_g, folded back (col2im, +=) into grad_in;
 *            grad_W_g += dout_g x col^T;  grad_b += sum over positions of dout.
 * The workspace holds col and one gathered [Cout/G, nb*Ho*Wo] block.
 * GEMMs go through sm_sgemm (split across threads); unfold runs in parallel
 * over channels. Stride-1 layers with few channels take the direct kernels
 * of conv2d_direct.c instead; first layers with few input channels (RGB)
 * the AVX2 forward of conv2d_first_layer.c.
 */
#include <string.h>
#include "nn.h"

/* Workspace budget per chunk, in floats (8 MiB, to stay near the caches); at
 * least one sample. */
#define CONV_WS_BUDGET ((size_t)2 << 20)

int64_t sm_conv_out_size(int64_t in, int k, int stride, int dilation, int pad_before, int pad_after)
{
    int64_t span = (int64_t)dilation * (k - 1) + 1, padded = in + pad_before + pad_after;
    if (stride <= 0 || padded < span) return 0;
    return (padded - span) / stride + 1;
}

void sm_conv_same_padding(int64_t in, int k, int stride, int dilation, int *pad_before, int *pad_after)
{
    int64_t out = (in + stride - 1) / stride;
    int64_t span = (int64_t)dilation * (k - 1) + 1;
    int64_t total = (out - 1) * stride + span - in;
    if (total < 0) total = 0;
    *pad_before = (int)(total / 2);
    *pad_after = (int)(total - total / 2);
}

typedef struct {
    SM_CONV_SHAPE_FIELDS;
    int64_t G, Cg, Cgo, K, HWo;
} conv_dims;

static conv_dims dims_of(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p)
{
    conv_dims d;
    SM_CONV_SHAPE_SET(d, in, out);
    d.G = p->groups;
    d.Cg = d.Cin / d.G;
    d.Cgo = d.Cout / d.G;
    d.K = d.Cg * p->kh * p->kw;
    d.HWo = d.Ho * d.Wo;
    return d;
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

/* First and one-past-last output x whose input x = ox*s - pad + off is in [0, W). */
static void valid_range(int64_t W, int64_t Wo, int s, int64_t off_minus_pad, int64_t *lo, int64_t *hi)
{
    int64_t a = 0, b = Wo;
    if (off_minus_pad < 0) a = (-off_minus_pad + s - 1) / s;
    /* need ox*s + off_minus_pad <= W - 1 */
    if (W - 1 - off_minus_pad < 0) b = 0;
    else {
        int64_t m = (W - 1 - off_minus_pad) / s + 1;
        if (m < b) b = m;
    }
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

/* Depthwise convolutions (groups = Cin = Cout) run as direct loops: as
 * GEMMs they would be Cin products with one output row each. Each (n, c)
 * plane is independent, so the loops run in parallel over planes (and over
 * channels for the weight gradient, which sums over the batch). */
static int is_depthwise(const conv_dims *d)
{
    return d->G > 1 && d->Cg == 1 && d->Cgo == 1;
}

/* Output columns [lo, hi) of a 3x3 stride-1 depthwise row whose three
 * taps are all inside: b + the nine taps in the order of the loop below
 * (the same sums), one pass instead of nine. Rows outside the image are
 * NULL and skipped, as there. */
static void depthwise3x3_interior(float *orow, const float *r0, const float *r1, const float *r2, const float *wc,
                                  float bias, int64_t xoff, int64_t lo, int64_t hi)
{
    const float *rows[3] = { r0, r1, r2 };
    for (int64_t ox = lo; ox < hi; ox++) orow[ox] = bias;
    /* one pass per present row: three taps added in order */
    for (int ky = 0; ky < 3; ky++) {
        const float *r = rows[ky];
        if (!r) continue;
        float w0 = wc[ky * 3], w1 = wc[ky * 3 + 1], w2 = wc[ky * 3 + 2];
        const float *s = r + xoff;
        for (int64_t ox = lo; ox < hi; ox++) {
            float v = orow[ox];
            v += w0 * s[ox];
            v += w1 * s[ox + 1];
            v += w2 * s[ox + 2];
            orow[ox] = v;
        }
    }
}

static void depthwise_forward(float *out, const float *x, const float *w, const float *b,
                              const conv_dims *d, const sm_conv2d_params *p)
{
    int64_t planes = d->N * d->Cin, HW = d->H * d->W;
    int k3 = p->kh == 3 && p->kw == 3 && p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1;
    /* columns whose three taps are inside: ox - pl >= 0 and ox - pl + 2 < W */
    int64_t lo3 = p->pl, hi3 = d->W - 2 + p->pl < d->Wo ? d->W - 2 + p->pl : d->Wo;
    if (hi3 < lo3) hi3 = lo3;
    #pragma omp parallel for schedule(static) if (planes * d->HWo > 16384)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t c = pl % d->Cin;
        const float *xp = x + pl * HW, *wc = w + c * p->kh * p->kw;
        float *op = out + pl * d->HWo, bias = b ? b[c] : 0.0f;
        for (int64_t oy = 0; oy < d->Ho; oy++) {
            float *orow = op + oy * d->Wo;
            if (k3 && hi3 > lo3) {
                const float *r[3];
                for (int ky = 0; ky < 3; ky++) {
                    int64_t iy = oy - p->pt + ky;
                    r[ky] = iy >= 0 && iy < d->H ? xp + iy * d->W : NULL;
                }
                depthwise3x3_interior(orow, r[0], r[1], r[2], wc, bias, -p->pl, lo3, hi3);
                /* the edge columns tap by tap, as below */
                for (int64_t ox = 0; ox < lo3; ox++) orow[ox] = bias;
                for (int64_t ox = hi3; ox < d->Wo; ox++) orow[ox] = bias;
                for (int ky = 0; ky < 3; ky++) {
                    if (!r[ky]) continue;
                    for (int kx = 0; kx < 3; kx++) {
                        int64_t xoff = kx - p->pl, vlo, vhi;
                        valid_range(d->W, d->Wo, 1, xoff, &vlo, &vhi);
                        float wv = wc[ky * 3 + kx];
                        for (int64_t ox = vlo; ox < vhi && ox < lo3; ox++) orow[ox] += wv * r[ky][ox + xoff];
                        for (int64_t ox = vlo > hi3 ? vlo : hi3; ox < vhi; ox++) orow[ox] += wv * r[ky][ox + xoff];
                    }
                }
                continue;
            }
            for (int64_t ox = 0; ox < d->Wo; ox++) orow[ox] = bias;
            /* add each tap's shifted input row over the outputs it reaches
             * (a contiguous run when the stride is 1: the loop vectorises) */
            for (int ky = 0; ky < p->kh; ky++) {
                int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                if (iy < 0 || iy >= d->H) continue;
                const float *irow = xp + iy * d->W;
                for (int kx = 0; kx < p->kw; kx++) {
                    int64_t xoff = kx * p->dw - p->pl, lo, hi;
                    valid_range(d->W, d->Wo, p->sw, xoff, &lo, &hi);
                    float wv = wc[ky * p->kw + kx];
                    if (p->sw == 1) {
                        for (int64_t ox = lo; ox < hi; ox++) orow[ox] += wv * irow[ox + xoff];
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++) orow[ox] += wv * irow[ox * p->sw + xoff];
                    }
                }
            }
        }
    }
}

static void depthwise_backward_input(float *gin, const float *gout, const float *w, const conv_dims *d,
                                     const sm_conv2d_params *p)
{
    int64_t planes = d->N * d->Cin, HW = d->H * d->W;
    #pragma omp parallel for schedule(static) if (planes * d->HWo > 16384)
    for (int64_t pl = 0; pl < planes; pl++) {
        int64_t c = pl % d->Cin;
        float *gp = gin + pl * HW;
        const float *go = gout + pl * d->HWo, *wc = w + c * p->kh * p->kw;
        for (int64_t oy = 0; oy < d->Ho; oy++)
            for (int64_t ox = 0; ox < d->Wo; ox++) {
                float g = go[oy * d->Wo + ox];
                for (int ky = 0; ky < p->kh; ky++) {
                    int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                    if (iy < 0 || iy >= d->H) continue;
                    for (int kx = 0; kx < p->kw; kx++) {
                        int64_t ix = ox * p->sw - p->pl + kx * p->dw;
                        if (ix >= 0 && ix < d->W) gp[iy * d->W + ix] += wc[ky * p->kw + kx] * g;
                    }
                }
            }
    }
}

static void depthwise_backward_params(float *gw, float *gb, const float *gout, const float *x,
                                      const conv_dims *d, const sm_conv2d_params *p, float scale)
{
    int64_t HW = d->H * d->W;
    #pragma omp parallel for schedule(static) if (d->N * d->Cin * d->HWo > 16384)
    for (int64_t c = 0; c < d->Cin; c++) {
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                double s = 0;
                for (int64_t n = 0; n < d->N; n++) {
                    const float *xp = x + (n * d->Cin + c) * HW, *go = gout + (n * d->Cin + c) * d->HWo;
                    for (int64_t oy = 0; oy < d->Ho; oy++) {
                        int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                        if (iy < 0 || iy >= d->H) continue;
                        for (int64_t ox = 0; ox < d->Wo; ox++) {
                            int64_t ix = ox * p->sw - p->pl + kx * p->dw;
                            if (ix >= 0 && ix < d->W) s += (double)go[oy * d->Wo + ox] * xp[iy * d->W + ix];
                        }
                    }
                }
                gw[(c * p->kh + ky) * p->kw + kx] += scale * (float)s;
            }
        if (gb) {
            double s = 0;
            for (int64_t n = 0; n < d->N; n++) {
                const float *go = gout + (n * d->Cin + c) * d->HWo;
                for (int64_t i = 0; i < d->HWo; i++) s += go[i];
            }
            gb[c] += scale * (float)s;
        }
    }
}

sm_status sm_conv2d_check(sm_err *err, const sm_tensor *out, const sm_tensor *in,
                          const sm_tensor *weight, const sm_tensor *bias, const sm_conv2d_params *p)
{
    char si[SM_SHAPE_STR_LEN], sw[SM_SHAPE_STR_LEN], so[SM_SHAPE_STR_LEN];
    sm_shape_str(si, sizeof si, in->ndim, in->shape);
    sm_shape_str(sw, sizeof sw, weight->ndim, weight->shape);
    sm_shape_str(so, sizeof so, out->ndim, out->shape);
    if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->groups < 1 ||
        p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0)
        return sm_fail(err, SM_EINVAL, "conv2d: kernel, stride, dilation and groups must be >= 1 and padding >= 0");
    if (in->ndim != 4)
        return sm_fail(err, SM_EINVAL, "conv2d: expected 4-D input [N,C,H,W], got %s", si);
    if (weight->ndim != 4 || weight->shape[2] != p->kh || weight->shape[3] != p->kw)
        return sm_fail(err, SM_EINVAL, "conv2d: weight %s does not match a %dx%d kernel", sw, p->kh, p->kw);
    int64_t cout = weight->shape[0];
    if (in->shape[1] % p->groups || cout % p->groups || weight->shape[1] * p->groups != in->shape[1])
        return sm_fail(err, SM_EINVAL, "conv2d: input %s and weight %s do not fit %d groups", si, sw, p->groups);
    if (bias && (bias->ndim != 1 || bias->shape[0] != cout))
        return sm_fail(err, SM_EINVAL, "conv2d: bias must have shape [%lld]", (long long)cout);
    int64_t ho = sm_conv_out_size(in->shape[2], p->kh, p->sh, p->dh, p->pt, p->pb);
    int64_t wo = sm_conv_out_size(in->shape[3], p->kw, p->sw, p->dw, p->pl, p->pr);
    if (ho <= 0 || wo <= 0)
        return sm_fail(err, SM_EINVAL, "conv2d: input %s is smaller than the %dx%d kernel", si, p->kh, p->kw);
    if (out->ndim != 4 || out->shape[0] != in->shape[0] || out->shape[1] != cout || out->shape[2] != ho || out->shape[3] != wo)
        return sm_fail(err, SM_EINVAL, "conv2d: output %s should be [%lld,%lld,%lld,%lld]", so,
                       (long long)in->shape[0], (long long)cout, (long long)ho, (long long)wo);
    if (!sm_tensor_is_contiguous(in) || !sm_tensor_is_contiguous(out) || !sm_tensor_is_contiguous(weight) ||
        (bias && !sm_tensor_is_contiguous(bias)))
        return sm_fail(err, SM_EINVAL, "conv2d: tensors must be contiguous");
    return SM_OK;
}

size_t sm_conv2d_workspace(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p)
{
    if (sm_conv2d_direct_ok(in, out, p)) return sm_conv2d_direct_workspace(in, out, p);
    conv_dims d = dims_of(in, out, p);
    if (is_depthwise(&d)) return 0;
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
                valid_range(d->W, d->Wo, p->sw, xoff, &lo, &hi);
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

/* A 1x1 convolution with stride 1, no padding and one group: each sample's
 * input plane [Cin][H*W] is already the column matrix, so out_n = W x_n
 * with no unfold and no regrouping. */
static int is_pointwise(const conv_dims *d, const sm_conv2d_params *p)
{
    return p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && d->G == 1 &&
           p->pt == 0 && p->pl == 0 && p->pb == 0 && p->pr == 0;
}

/* rows [Cout][HWo] of one sample <- bias (or 0), ready for a beta = 1 GEMM */
static void fill_bias(float *o, const float *bias, int64_t cout, int64_t hw)
{
    for (int64_t c = 0; c < cout; c++) {
        float bv = bias ? bias[c] : 0.0f;
        for (int64_t i = 0; i < hw; i++) o[c * hw + i] = bv;
    }
}

/* Column-matrix floats per band of output rows in the banded forward: the
 * band's columns stay in the cache between unfold and GEMM. */
#define BAND_FLOATS ((int64_t)1 << 16)

/* Unfolds output rows [oy0, oy1) of sample n, group g into
 * col[K][(oy1 - oy0) * Wo] (forward only; see unfold). */
static void unfold_band(float *col, const float *x, const conv_dims *d, const sm_conv2d_params *p,
                        int64_t n, int64_t g, int64_t oy0, int64_t oy1)
{
    int64_t ncol = (oy1 - oy0) * d->Wo, HW = d->H * d->W;
    for (int64_t c = 0; c < d->Cg; c++) {
        const float *src = x + (n * d->Cin + g * d->Cg + c) * HW;
        for (int64_t ky = 0; ky < p->kh; ky++)
            for (int64_t kx = 0; kx < p->kw; kx++) {
                int64_t r = (c * p->kh + ky) * p->kw + kx;
                int64_t xoff = kx * p->dw - p->pl, lo, hi;
                valid_range(d->W, d->Wo, p->sw, xoff, &lo, &hi);
                for (int64_t oy = oy0; oy < oy1; oy++) {
                    int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                    float *drow = col + r * ncol + (oy - oy0) * d->Wo;
                    if (iy < 0 || iy >= d->H) {
                        memset(drow, 0, (size_t)d->Wo * sizeof(float));
                        continue;
                    }
                    const float *srow = src + iy * d->W;
                    for (int64_t ox = 0; ox < lo; ox++) drow[ox] = 0;
                    if (p->sw == 1) memcpy(drow + lo, srow + (lo + xoff), (size_t)(hi - lo) * sizeof(float));
                    else for (int64_t ox = lo; ox < hi; ox++) drow[ox] = srow[ox * p->sw + xoff];
                    for (int64_t ox = hi; ox < d->Wo; ox++) drow[ox] = 0;
                }
            }
    }
}

/* One sample, one group, in bands of output rows: each thread unfolds its
 * band into its own slice of col (the slices together are the K x HWo the
 * workspace holds) and runs a single-threaded GEMM into the output rows
 * (leading dimension HWo), bias filled first. Large maps (the first layers)
 * thus never stream a column matrix bigger than the caches. */
static void forward_banded(float *out, const float *x, const float *wg, const float *bias, const conv_dims *d,
                           const sm_conv2d_params *p, int64_t n, int64_t g, float *col)
{
    int64_t rows = BAND_FLOATS / (d->K * d->Wo);
    if (rows < 1) rows = 1;
    int64_t nbands = (d->Ho + rows - 1) / rows;
    float *o = out + (n * d->Cout + g * d->Cgo) * d->HWo;
    #pragma omp parallel for schedule(dynamic, 1) if (nbands > 1)
    for (int64_t b = 0; b < nbands; b++) {
        int64_t oy0 = b * rows, oy1 = oy0 + rows < d->Ho ? oy0 + rows : d->Ho, ncol = (oy1 - oy0) * d->Wo;
        float *cb = col + d->K * oy0 * d->Wo, *ob = o + oy0 * d->Wo;
        unfold_band(cb, x, d, p, n, g, oy0, oy1);
        for (int64_t c = 0; c < d->Cgo; c++) {
            float bv = bias ? bias[c] : 0.0f;
            for (int64_t i = 0; i < ncol; i++) ob[c * d->HWo + i] = bv;
        }
        sm_sgemm(0, 0, d->Cgo, ncol, d->K, 1.0f, wg, d->K, cb, ncol, 1.0f, ob, d->HWo);
    }
}

void sm_conv2d_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                       const sm_tensor *bias, const sm_conv2d_params *p, float *ws)
{
    if (sm_conv2d_direct_ok(in, out, p)) {
        sm_conv2d_direct_forward(out, in, weight, bias, p, ws);
        return;
    }
    conv_dims d = dims_of(in, out, p);
    if (is_depthwise(&d)) {
        depthwise_forward(out->data, in->data, weight->data, bias ? bias->data : NULL, &d, p);
        return;
    }
    if (sm_conv2d_direct_applies(in, weight, p, sm_conv2d_workspace(in, out, p))) { /* few input channels */
        sm_conv2d_forward_direct(out, in, weight, bias, p, ws);
        return;
    }
    if (is_pointwise(&d, p)) {
        for (int64_t n = 0; n < d.N; n++) {
            float *o = out->data + n * d.Cout * d.HWo;
            fill_bias(o, bias ? bias->data : NULL, d.Cout, d.HWo);
            sm_sgemm(0, 0, d.Cout, d.HWo, d.Cin, 1.0f, weight->data, d.Cin, in->data + n * d.Cin * d.HWo, d.HWo,
                     1.0f, o, d.HWo);
        }
        return;
    }
    if (d.K * d.HWo > 4 * BAND_FLOATS) { /* large maps: sample by sample, in bands of rows */
        for (int64_t n = 0; n < d.N; n++)
            for (int64_t g = 0; g < d.G; g++)
                forward_banded(out->data, in->data, weight->data + g * d.Cgo * d.K,
                               bias ? bias->data + g * d.Cgo : NULL, &d, p, n, g, ws);
        return;
    }
    int64_t nbmax = chunk_samples(&d);
    float *col = ws, *blk = ws + d.K * nbmax * d.HWo;
    for (int64_t n0 = 0; n0 < d.N; n0 += nbmax) {
        int64_t nb = d.N - n0 < nbmax ? d.N - n0 : nbmax, ncol = nb * d.HWo;
        for (int64_t g = 0; g < d.G; g++) {
            const float *wg = weight->data + g * d.Cgo * d.K;
            unfold(col, in->data, &d, p, n0, nb, g, 0);
            if (nb == 1) { /* the output block of one sample is already [Cgo][HWo] */
                float *o = out->data + (n0 * d.Cout + g * d.Cgo) * d.HWo;
                fill_bias(o, bias ? bias->data + g * d.Cgo : NULL, d.Cgo, d.HWo);
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

void sm_conv2d_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                              const sm_conv2d_params *p, float *ws)
{
    if (sm_conv2d_direct_ok(grad_in, grad_out, p)) {
        sm_conv2d_direct_backward_input(grad_in, grad_out, weight, p, ws);
        return;
    }
    conv_dims d = dims_of(grad_in, grad_out, p);
    if (is_depthwise(&d)) {
        depthwise_backward_input(grad_in->data, grad_out->data, weight->data, &d, p);
        return;
    }
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

void sm_conv2d_backward_params(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                               const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws)
{
    if (sm_conv2d_direct_ok(in, grad_out, p)) {
        sm_conv2d_direct_backward_params(grad_w, grad_b, grad_out, in, p, scale, ws);
        return;
    }
    conv_dims d = dims_of(in, grad_out, p);
    if (is_depthwise(&d)) {
        depthwise_backward_params(grad_w->data, grad_b ? grad_b->data : NULL, grad_out->data, in->data, &d, p, scale);
        return;
    }
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
