/*
 * depthwise.c — depthwise convolution (groups = Cin = Cout: each channel
 * convolved with its own kh x kw filter) as direct loops: as GEMMs these
 * would be Cin products with one output row each. Each (n, c) plane is
 * independent, so the loops run in parallel over planes (and over channels
 * for the weight gradient, which sums over the batch).
 *
 *   out[n,c,y,x] = b[c] + sum_{i,j} w[c,0,i,j] in[n, c, y*sh - pt + i*dh, x*sw - pl + j*dw]
 */
#include "conv/kernels.h"

typedef struct {
    SM_CONV_SHAPE_FIELDS;
    int64_t HWo;
} conv_dims;

static conv_dims dims_of(const sm_tensor *in, const sm_tensor *out)
{
    conv_dims d;
    SM_CONV_SHAPE_SET(d, in, out);
    d.HWo = d.Ho * d.Wo;
    return d;
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

static void forward(float *out, const float *x, const float *w, const float *b,
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
                        sm_conv_valid_range(d->W, d->Wo, 1, xoff, &vlo, &vhi);
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
                    sm_conv_valid_range(d->W, d->Wo, p->sw, xoff, &lo, &hi);
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

static void backward_input(float *gin, const float *gout, const float *w, const conv_dims *d,
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

static void backward_weight(float *gw, float *gb, const float *gout, const float *x,
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

void sm_conv_depthwise_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                               const sm_tensor *bias, const sm_conv2d_params *p)
{
    conv_dims d = dims_of(in, out);
    forward(out->data, in->data, weight->data, bias ? bias->data : NULL, &d, p);
}

void sm_conv_depthwise_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                                      const sm_conv2d_params *p)
{
    conv_dims d = dims_of(grad_in, grad_out);
    backward_input(grad_in->data, grad_out->data, weight->data, &d, p);
}

void sm_conv_depthwise_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                       const sm_tensor *in, const sm_conv2d_params *p, float scale)
{
    conv_dims d = dims_of(in, grad_out);
    backward_weight(grad_w->data, grad_b ? grad_b->data : NULL, grad_out->data, in->data, &d, p, scale);
}
