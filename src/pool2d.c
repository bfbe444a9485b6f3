/*
 * pool2d.c — max and average pooling over [N,C,H,W].
 *
 * Window (y, x) covers input rows y*sh - pt .. y*sh - pt + kh - 1 and the
 * same for columns. Positions outside the image are padding:
 *   max:     ignored (as if -inf), as TensorFlow and torch do;
 *   average: out = sum(in-image values) / (count_pad ? kh*kw : in-image count).
 * Backward: max routes each output gradient to its argmax; average spreads
 * it evenly over the positions that were divided by.
 */
#include <math.h>
#include <string.h>
#include "nn.h"
#include "simd.h"
#include "conv/conv.h" /* sm_conv_out_size */
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors passed between inlined helpers only */

sm_status sm_pool2d_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_pool2d_params *p)
{
    char si[SM_SHAPE_STR_LEN], so[SM_SHAPE_STR_LEN];
    sm_shape_str(si, sizeof si, in->ndim, in->shape);
    sm_shape_str(so, sizeof so, out->ndim, out->shape);
    if (p->kh < 1 || p->kw < 1 || p->sh < 1 || p->sw < 1 || p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0)
        return sm_fail(err, SM_EINVAL, "pool2d: kernel and stride must be >= 1 and padding >= 0");
    if (p->pt >= p->kh || p->pb >= p->kh || p->pl >= p->kw || p->pr >= p->kw)
        return sm_fail(err, SM_EINVAL, "pool2d: padding must be smaller than the %dx%d window", p->kh, p->kw);
    if (in->ndim != 4)
        return sm_fail(err, SM_EINVAL, "pool2d: expected 4-D input [N,C,H,W], got %s", si);
    int64_t ho = sm_conv_out_size(in->shape[2], p->kh, p->sh, 1, p->pt, p->pb);
    int64_t wo = sm_conv_out_size(in->shape[3], p->kw, p->sw, 1, p->pl, p->pr);
    if (ho <= 0 || wo <= 0)
        return sm_fail(err, SM_EINVAL, "pool2d: input %s is smaller than the %dx%d window", si, p->kh, p->kw);
    if (out->ndim != 4 || out->shape[0] != in->shape[0] || out->shape[1] != in->shape[1] ||
        out->shape[2] != ho || out->shape[3] != wo)
        return sm_fail(err, SM_EINVAL, "pool2d: output %s should be [%lld,%lld,%lld,%lld]", so,
                       (long long)in->shape[0], (long long)in->shape[1], (long long)ho, (long long)wo);
    if (!sm_tensor_is_contiguous(in) || !sm_tensor_is_contiguous(out))
        return sm_fail(err, SM_EINVAL, "pool2d: tensors must be contiguous");
    if (in->shape[2] * in->shape[3] > INT32_MAX)
        return sm_fail(err, SM_EINVAL, "pool2d: input plane %s too large", si);
    return SM_OK;
}

/* Clipped window bounds [y0, y1) x [x0, x1) of output (oy, ox). */
static void window(const sm_pool2d_params *p, int64_t H, int64_t W, int64_t oy, int64_t ox,
                   int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1)
{
    int64_t ys = oy * p->sh - p->pt, xs = ox * p->sw - p->pl;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + p->kh > H ? H : ys + p->kh;
    *x1 = xs + p->kw > W ? W : xs + p->kw;
}

/* First and one-past-last output x whose input x = ox*s + off is in [0, W). */
static void valid_cols(int64_t W, int64_t Wo, int s, int64_t off, int64_t *lo, int64_t *hi)
{
    int64_t a = off < 0 ? (-off + s - 1) / s : 0, b = Wo;
    if (W - 1 - off < 0) b = 0;
    else if ((W - 1 - off) / s + 1 < b) b = (W - 1 - off) / s + 1;
    *lo = a;
    *hi = a > b ? a : b;
}

#define POOL_CHUNK 256 /* outputs of one row handled together */

/* Max pooling as running maxima over the window's shifted input rows, a
 * chunk of an output row at a time: each tap is a vectorisable pass. A tap
 * wins when it is larger or NaN (NaN then sticks, as in torch), or when it
 * is the window's first valid tap. */
/* The common 2x2, stride 2, unpadded window: a chunk of a row of windows
 * at a time, the four taps first split into contiguous arrays, then
 * compared in the same order (and with the same NaN rule) as the general
 * loop below, 8 windows at a time with masks (GCC vectors; a branch per
 * tap would mispredict on half of the comparisons). */
typedef sm_v8f v8f;
typedef sm_v8i v8i;

/* Takes c over v (and its index kc over k) where c wins: v is not NaN and
 * c is larger or NaN. */
SM_INLINE void take(v8f *v, v8i *k, v8f c, v8i kc)
{
    v8i t = (*v == *v) & ((c > *v) | (c != c));
    *v = (v8f)(((v8i)c & t) | ((v8i)*v & ~t));
    *k = (kc & t) | (*k & ~t);
}

SM_INLINE void maxpool2x2_row_body(float *o, int32_t *am, const float *r0, const float *r1, int64_t Wo, int32_t base,
                           int32_t W)
{
    float e0[POOL_CHUNK + 8], o0[POOL_CHUNK + 8], e1[POOL_CHUNK + 8], o1[POOL_CHUNK + 8];
    for (int64_t i = 0; i < Wo; i++) {
        e0[i] = r0[2 * i];
        o0[i] = r0[2 * i + 1];
        e1[i] = r1[2 * i];
        o1[i] = r1[2 * i + 1];
    }
    for (int64_t i = Wo; i < Wo + 8; i++) e0[i] = o0[i] = e1[i] = o1[i] = 0;
    const v8i lane = {0, 2, 4, 6, 8, 10, 12, 14};
    for (int64_t i = 0; i < Wo; i += 8) {
        v8f v, c;
        v8i k = lane + (base + 2 * (int32_t)i);
        memcpy(&v, e0 + i, sizeof v);
        memcpy(&c, o0 + i, sizeof c);
        take(&v, &k, c, lane + (base + 2 * (int32_t)i + 1));
        memcpy(&c, e1 + i, sizeof c);
        take(&v, &k, c, lane + (base + 2 * (int32_t)i + W));
        memcpy(&c, o1 + i, sizeof c);
        take(&v, &k, c, lane + (base + 2 * (int32_t)i + W + 1));
        float vv[8];
        int32_t kk[8];
        memcpy(vv, &v, sizeof vv);
        memcpy(kk, &k, sizeof kk);
        int64_t n = Wo - i < 8 ? Wo - i : 8;
        for (int64_t j = 0; j < n; j++) {
            o[i + j] = vv[j];
            am[i + j] = kk[j];
        }
    }
}
SM_CLONES_VOID(maxpool2x2_row, (float *o, int32_t *am, const float *r0, const float *r1, int64_t Wo, int32_t base,
          int32_t W), (o, am, r0, r1, Wo, base, W))

/* Values only (inference: no argmax): the same running maxima without the
 * index bookkeeping, taken in two passes: the window's rows first (a
 * vectorised pass over whole input rows), then its columns. Starting from
 * -inf gives the same results as taking the first valid tap: a -inf or NaN
 * first tap still ends up held. (Which of two equal values is held can
 * differ from the tap order of the argmax path: only +0 and -0 tell.) */
#define VALUES_ROW_MAX 2048 /* input rows up to this width take the two passes */

SM_INLINE float take_value(float cur, float v)
{
    return (cur == cur) & ((v > cur) | (v != v)) ? v : cur;
}

/* One plane (sample x channel) of maxpool_values. */
SM_INLINE void maxpool_plane_body(float *o, const float *x, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                                  const sm_pool2d_params *p)
{
    int two_pass = W <= VALUES_ROW_MAX;
    float rowmax[VALUES_ROW_MAX];
    for (int64_t oy = 0; oy < Ho; oy++) {
        float *orow = o + oy * Wo;
        if (two_pass) {
            for (int64_t ix = 0; ix < W; ix++) rowmax[ix] = -INFINITY;
            for (int ky = 0; ky < p->kh; ky++) {
                int64_t iy = oy * p->sh - p->pt + ky;
                if (iy < 0 || iy >= H) continue;
                const float *irow = x + iy * W;
                for (int64_t ix = 0; ix < W; ix++) rowmax[ix] = take_value(rowmax[ix], irow[ix]);
            }
        }
        for (int64_t ox = 0; ox < Wo; ox++) orow[ox] = -INFINITY;
        for (int ky = 0; ky < (two_pass ? 1 : p->kh); ky++) {
            int64_t iy = oy * p->sh - p->pt + ky;
            if (!two_pass && (iy < 0 || iy >= H)) continue;
            const float *irow = two_pass ? rowmax : x + iy * W;
            for (int kx = 0; kx < p->kw; kx++) {
                int64_t off = kx - p->pl, lo, hi;
                valid_cols(W, Wo, p->sw, off, &lo, &hi);
                const float *src = irow + off;
                for (int64_t ox = lo; ox < hi; ox++) orow[ox] = take_value(orow[ox], src[ox * p->sw]);
            }
        }
    }
}
SM_CLONES_VOID(maxpool_plane, (float *o, const float *x, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                              const sm_pool2d_params *p), (o, x, H, W, Ho, Wo, p))

static void maxpool_values(sm_tensor *out, const sm_tensor *in, const sm_pool2d_params *p)
{
    int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
    int64_t Ho = out->shape[2], Wo = out->shape[3];
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
    for (int64_t pl = 0; pl < planes; pl++)
        maxpool_plane(out->data + pl * Ho * Wo, in->data + pl * H * W, H, W, Ho, Wo, p);
}

void sm_maxpool2d_forward(sm_tensor *out, int32_t *argmax, const sm_tensor *in, const sm_pool2d_params *p)
{
    if (!argmax) {
        maxpool_values(out, in, p);
        return;
    }
    int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
    int64_t Ho = out->shape[2], Wo = out->shape[3];
    if (p->kh == 2 && p->kw == 2 && p->sh == 2 && p->sw == 2 && !(p->pt | p->pl | p->pb | p->pr)) {
        #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
        for (int64_t pl = 0; pl < planes; pl++) {
            for (int64_t oy = 0; oy < Ho; oy++) {
                const float *r0 = in->data + (pl * H + 2 * oy) * W;
                float *o = out->data + (pl * Ho + oy) * Wo;
                for (int64_t c0 = 0; c0 < Wo; c0 += POOL_CHUNK) {
                    int64_t n = Wo - c0 < POOL_CHUNK ? Wo - c0 : POOL_CHUNK;
                    maxpool2x2_row(o + c0, argmax + (pl * Ho + oy) * Wo + c0, r0 + 2 * c0, r0 + W + 2 * c0, n,
                                   (int32_t)(2 * oy * W + 2 * c0), (int32_t)W);
                }
            }
        }
        return;
    }
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *x = in->data + pl * H * W;
        float *o = out->data + pl * Ho * Wo;
        int32_t idx[POOL_CHUNK];
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t c0 = 0; c0 < Wo; c0 += POOL_CHUNK) {
                int64_t c1 = c0 + POOL_CHUNK < Wo ? c0 + POOL_CHUNK : Wo;
                float *orow = o + oy * Wo;
                for (int64_t ox = c0; ox < c1; ox++) { orow[ox] = -INFINITY; idx[ox - c0] = -1; }
                for (int ky = 0; ky < p->kh; ky++) {
                    int64_t iy = oy * p->sh - p->pt + ky;
                    if (iy < 0 || iy >= H) continue;
                    const float *irow = x + iy * W;
                    for (int kx = 0; kx < p->kw; kx++) {
                        int64_t off = kx - p->pl, lo, hi;
                        valid_cols(W, Wo, p->sw, off, &lo, &hi);
                        if (lo < c0) lo = c0;
                        if (hi > c1) hi = c1;
                        for (int64_t ox = lo; ox < hi; ox++) {
                            int64_t ix = ox * p->sw + off;
                            float v = irow[ix], cur = orow[ox];
                            /* the first tap always; later ones unless a NaN is held */
                            int take = (idx[ox - c0] < 0) | ((cur == cur) & ((v > cur) | (v != v)));
                            orow[ox] = take ? v : cur;
                            idx[ox - c0] = take ? (int32_t)(iy * W + ix) : idx[ox - c0];
                        }
                    }
                }
                if (argmax)
                    for (int64_t ox = c0; ox < c1; ox++) argmax[pl * Ho * Wo + oy * Wo + ox] = idx[ox - c0];
            }
    }
}

void sm_maxpool2d_backward(sm_tensor *grad_in, const sm_tensor *grad_out, const int32_t *argmax)
{
    int64_t planes = grad_in->shape[0] * grad_in->shape[1];
    int64_t HW = grad_in->shape[2] * grad_in->shape[3], HWo = grad_out->shape[2] * grad_out->shape[3];
    #pragma omp parallel for schedule(static) if (planes * HWo > 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *gi = grad_in->data + pl * HW;
        const float *go = grad_out->data + pl * HWo;
        const int32_t *am = argmax + pl * HWo;
        for (int64_t i = 0; i < HWo; i++) gi[am[i]] += go[i];
    }
}

static float divisor(const sm_pool2d_params *p, int64_t y0, int64_t y1, int64_t x0, int64_t x1)
{
    return p->count_pad ? (float)(p->kh * p->kw) : (float)((y1 - y0) * (x1 - x0));
}

/* One plane of avgpool_inside's general case. */
SM_INLINE void avgpool_plane_body(float *o, const float *x, int64_t W, int64_t Ho, int64_t Wo, float div,
                                  const sm_pool2d_params *p)
{
    for (int64_t oy = 0; oy < Ho; oy++) {
        float *orow = o + oy * Wo;
        for (int64_t ox = 0; ox < Wo; ox++) orow[ox] = 0.0f;
        for (int ky = 0; ky < p->kh; ky++) {
            const float *irow = x + (oy * p->sh + ky) * W;
            for (int kx = 0; kx < p->kw; kx++) {
                if (p->sw == 2)
                    for (int64_t ox = 0; ox < Wo; ox++) orow[ox] += irow[2 * ox + kx];
                else
                    for (int64_t ox = 0; ox < Wo; ox++) orow[ox] += irow[ox * p->sw + kx];
            }
        }
        for (int64_t ox = 0; ox < Wo; ox++) orow[ox] /= div;
    }
}
SM_CLONES_VOID(avgpool_plane, (float *o, const float *x, int64_t W, int64_t Ho, int64_t Wo, float div,
                              const sm_pool2d_params *p), (o, x, W, Ho, Wo, div, p))

/* Every window inside the image (no padding reached): the sums of the
 * general path, in the same tap order, a row of outputs at a time (the
 * output row holds the running sums), divided by the window's size. */
static void avgpool_inside(sm_tensor *out, const sm_tensor *in, const sm_pool2d_params *p)
{
    int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
    int64_t Ho = out->shape[2], Wo = out->shape[3];
    float div = (float)(p->kh * p->kw);
    if (p->kh == 2 && p->kw == 2 && p->sh == 2 && p->sw == 2 && Wo < 64) {
        /* small maps (a residual net's shortcuts): one output at a time, the
         * same sum ((0 + a) + b) + c + d, without per-row loop overheads */
        for (int64_t pl = 0; pl < planes; pl++) {
            const float *x = in->data + pl * H * W;
            float *o = out->data + pl * Ho * Wo;
            for (int64_t oy = 0; oy < Ho; oy++) {
                const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
                for (int64_t ox = 0; ox < Wo; ox++)
                    o[oy * Wo + ox] = (((r0[2 * ox] + r0[2 * ox + 1]) + r1[2 * ox]) + r1[2 * ox + 1]) / div;
            }
        }
        return;
    }
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
    for (int64_t pl = 0; pl < planes; pl++)
        avgpool_plane(out->data + pl * Ho * Wo, in->data + pl * H * W, W, Ho, Wo, div, p);
}

void sm_avgpool2d_forward(sm_tensor *out, const sm_tensor *in, const sm_pool2d_params *p)
{
    int64_t planes = in->shape[0] * in->shape[1], H = in->shape[2], W = in->shape[3];
    int64_t Ho = out->shape[2], Wo = out->shape[3];
    if (p->pt == 0 && p->pl == 0 && (Ho - 1) * p->sh + p->kh <= H && (Wo - 1) * p->sw + p->kw <= W) {
        avgpool_inside(out, in, p);
        return;
    }
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *x = in->data + pl * H * W;
        float *o = out->data + pl * Ho * Wo;
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                int64_t y0, y1, x0, x1;
                window(p, H, W, oy, ox, &y0, &y1, &x0, &x1);
                float s = 0;
                for (int64_t y = y0; y < y1; y++)
                    for (int64_t xx = x0; xx < x1; xx++) s += x[y * W + xx];
                o[oy * Wo + ox] = s / divisor(p, y0, y1, x0, x1);
            }
    }
}

void sm_avgpool2d_backward(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_pool2d_params *p)
{
    int64_t planes = grad_in->shape[0] * grad_in->shape[1], H = grad_in->shape[2], W = grad_in->shape[3];
    int64_t Ho = grad_out->shape[2], Wo = grad_out->shape[3];
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *gi = grad_in->data + pl * H * W;
        const float *go = grad_out->data + pl * Ho * Wo;
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                int64_t y0, y1, x0, x1;
                window(p, H, W, oy, ox, &y0, &y1, &x0, &x1);
                float g = go[oy * Wo + ox] / divisor(p, y0, y1, x0, x1);
                for (int64_t y = y0; y < y1; y++)
                    for (int64_t xx = x0; xx < x1; xx++) gi[y * W + xx] += g;
            }
    }
}
