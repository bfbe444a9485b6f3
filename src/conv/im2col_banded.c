/*
 * im2col_banded.c — the im2col forward for large maps (a network's first
 * layers): sample by sample and group by group, in bands of output rows
 * whose columns stay in the cache between unfold and product, so that no
 * column matrix bigger than the caches is ever streamed. Same sums as
 * im2col.c (the formula is in conv.h).
 */
#include <string.h>
#include "conv/kernels.h"

typedef sm_conv_im2col_dims conv_dims;

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
                sm_conv_valid_range(d->W, d->Wo, p->sw, xoff, &lo, &hi);
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
    int64_t rows = SM_CONV_BAND_FLOATS / (d->K * d->Wo);
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

size_t sm_conv_im2col_banded_workspace(const sm_conv_shape *s, const sm_conv2d_params *p)
{
    return (size_t)(s->Cin / p->groups * p->kh * p->kw) * (size_t)(s->Ho * s->Wo);
}

void sm_conv_im2col_banded_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                                   const sm_tensor *bias, const sm_conv2d_params *p, float *ws)
{
    conv_dims d = sm_conv_im2col_dims_of(in, out, p);
    for (int64_t n = 0; n < d.N; n++)
        for (int64_t g = 0; g < d.G; g++)
            forward_banded(out->data, in->data, weight->data + g * d.Cgo * d.K,
                           bias ? bias->data + g * d.Cgo : NULL, &d, p, n, g, ws);
}
