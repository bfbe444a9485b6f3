/*
 * packed.c — the im2col forward of im2col.c for inference, on
 * weights packed once (sm_conv2d_pack) for the product of gemm_packed.c:
 * for the small maps of a network's deep layers (8x8 .. 1x1 at batch 1),
 * where a BLAS call spends more time packing the weights and starting
 * threads than multiplying.
 *
 * Shapes: in [N,Cin,H,W], weight [Cout,Cin,kh,kw] (one group, any kernel,
 * stride, dilation and padding), packed weight wp [Cout, K = Cin*kh*kw],
 * bias [Cout] or NULL, out [N,Cout,Ho,Wo]:
 *
 *   out[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] in[n, c, y*sh - pt + i*dh, x*sw - pl + j*dw]
 *
 * then max(., 0) when relu is set. A chunk of nb samples is unfolded into
 * col[K][ld] (ld = nb*Ho*Wo rounded up to whole vectors, the extra columns
 * zero), multiplied into blk[Cout][ld] = W col, and scattered to the
 * output with the bias (and ReLU). The three phases share one parallel
 * region: unfold over the rows of col, the product over panels of
 * SM_GEMM_MR output channels, the scatter over output planes.
 */
#include <string.h>
#include "conv/kernels.h"

/* Floats of col + blk per chunk (1 MiB): near the L2 cache. */
#define PACKED_WS_BUDGET ((size_t)1 << 18)

typedef struct {
    SM_CONV_SHAPE_FIELDS;
    int64_t HWo, K;
} pdims;

static pdims pdims_of(const sm_tensor *out, const sm_tensor *in, const sm_conv2d_params *p)
{
    pdims d;
    SM_CONV_SHAPE_SET(d, in, out);
    d.HWo = d.Ho * d.Wo;
    d.K = d.Cin * p->kh * p->kw;
    return d;
}

static int64_t padded(int64_t n)
{
    return (n + SM_GEMM_NV - 1) / SM_GEMM_NV * SM_GEMM_NV;
}

/* Samples per chunk: col and blk within the budget, at least one. */
static int64_t chunk(const pdims *d)
{
    size_t per = (size_t)(d->K + d->Cout) * (size_t)d->HWo;
    int64_t nb = per ? (int64_t)(PACKED_WS_BUDGET / per) : d->N;
    if (nb < 1) nb = 1;
    if (nb > d->N) nb = d->N;
    return nb;
}

sm_status sm_conv2d_packed_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wp,
                                 const sm_tensor *bias, const sm_conv2d_params *p)
{
    if (p->groups != 1) return sm_fail(err, SM_EINVAL, "conv2d_packed: needs one group, got %d", p->groups);
    if (in->ndim != 4) {
        char si[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "conv2d_packed: expected 4-D input [N,C,H,W], got %s",
                       sm_shape_str(si, sizeof si, in->ndim, in->shape));
    }
    int64_t K = in->shape[1] * p->kh * p->kw;
    if (wp->ndim != 2 || wp->shape[1] != K || !sm_tensor_is_contiguous(wp)) {
        char sw[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "conv2d_packed: packed weight %s should be [Cout,%lld]",
                       sm_shape_str(sw, sizeof sw, wp->ndim, wp->shape), (long long)K);
    }
    /* the ordinary check on a stand-in weight of the original shape */
    int64_t ws[4] = { wp->shape[0], in->shape[1], p->kh, p->kw };
    sm_tensor w;
    sm_tensor_init(&w, wp->data, 4, ws);
    return sm_conv2d_check(err, out, in, &w, bias, p);
}

sm_status sm_conv2d_pack_check(sm_err *err, const sm_tensor *wp, const sm_tensor *weight)
{
    char sw[SM_SHAPE_STR_LEN], sp[SM_SHAPE_STR_LEN];
    sm_shape_str(sw, sizeof sw, weight->ndim, weight->shape);
    sm_shape_str(sp, sizeof sp, wp->ndim, wp->shape);
    if (weight->ndim != 4 || !sm_tensor_is_contiguous(weight))
        return sm_fail(err, SM_EINVAL, "conv2d_pack: weight must be a contiguous [Cout,Cin,kh,kw] tensor, got %s", sw);
    int64_t K = weight->shape[1] * weight->shape[2] * weight->shape[3];
    if (wp->ndim != 2 || wp->shape[0] != weight->shape[0] || wp->shape[1] != K || !sm_tensor_is_contiguous(wp))
        return sm_fail(err, SM_EINVAL, "conv2d_pack: packed weight %s should be [%lld,%lld] for weight %s", sp,
                       (long long)weight->shape[0], (long long)K, sw);
    return SM_OK;
}

void sm_conv2d_pack(sm_tensor *wp, const sm_tensor *weight)
{
    sm_gemm_pack(wp->data, weight->data, wp->shape[1], wp->shape[0], wp->shape[1]);
}

size_t sm_conv2d_packed_workspace(const sm_tensor *out, const sm_tensor *in, const sm_conv2d_params *p)
{
    pdims d = pdims_of(out, in, p);
    return (size_t)(d.K + d.Cout) * (size_t)padded(chunk(&d) * d.HWo);
}

/* col[r][b*HWo + y*Wo + x] (row stride ld, columns ncol..ld zero) for
 * samples [n0, n0+nb): row r = (c, i, j) holds the input each output
 * position reads through tap (i, j) of channel c, 0 outside the image.
 * An orphaned omp for over the rows. */
static void unfold_rows(float *col, int64_t ld, const float *x, const pdims *d, const sm_conv2d_params *p,
                        int64_t n0, int64_t nb)
{
    int64_t ncol = nb * d->HWo, HW = d->H * d->W;
    /* over channels, then taps: no divisions per row (they cost more than
     * the copy on 4x4 maps) */
    #pragma omp for schedule(static)
    for (int64_t c = 0; c < d->Cin; c++)
    for (int64_t i = 0; i < p->kh; i++)
    for (int64_t j = 0; j < p->kw; j++) {
        float *dst = col + ((c * p->kh + i) * p->kw + j) * ld;
        /* outputs [lo, hi) of a row read inside the image: ix = ox*sw + off */
        int64_t off = j * p->dw - p->pl, lo = 0, hi = d->Wo;
        while (lo < hi && lo * p->sw + off < 0) lo++;
        while (hi > lo && (hi - 1) * p->sw + off >= d->W) hi--;
        for (int64_t b = 0; b < nb; b++) {
            const float *src = x + ((n0 + b) * d->Cin + c) * HW;
            for (int64_t oy = 0; oy < d->Ho; oy++) {
                int64_t iy = oy * p->sh - p->pt + i * p->dh;
                float *drow = dst + b * d->HWo + oy * d->Wo;
                if (iy < 0 || iy >= d->H) {
                    memset(drow, 0, (size_t)d->Wo * sizeof(float));
                    continue;
                }
                const float *srow = src + iy * d->W;
                for (int64_t ox = 0; ox < lo; ox++) drow[ox] = 0.0f;
                if (p->sw == 1)
                    for (int64_t ox = lo; ox < hi; ox++) drow[ox] = srow[ox + off];
                else
                    for (int64_t ox = lo; ox < hi; ox++) drow[ox] = srow[ox * p->sw + off];
                for (int64_t ox = hi; ox < d->Wo; ox++) drow[ox] = 0.0f;
            }
        }
        if (ld > ncol) memset(dst + ncol, 0, (size_t)(ld - ncol) * sizeof(float));
    }
}

void sm_conv2d_packed_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *wp, const sm_tensor *bias,
                              const sm_conv2d_params *p, int relu, float *ws)
{
    pdims d = pdims_of(out, in, p);
    int64_t nbmax = chunk(&d), panels = (d.Cout + SM_GEMM_MR - 1) / SM_GEMM_MR;
    float *col = ws, *blk = ws + d.K * padded(nbmax * d.HWo);
    const float *bv = bias ? bias->data : NULL;
    #pragma omp parallel if (d.Cout * d.K * nbmax * d.HWo > 131072)
    for (int64_t n0 = 0; n0 < d.N; n0 += nbmax) {
        int64_t nb = d.N - n0 < nbmax ? d.N - n0 : nbmax, ld = padded(nb * d.HWo);
        unfold_rows(col, ld, in->data, &d, p, n0, nb);
        #pragma omp for schedule(static)
        for (int64_t pi = 0; pi < panels; pi++) {
            int64_t r0 = pi * SM_GEMM_MR, rows = d.Cout - r0 < SM_GEMM_MR ? d.Cout - r0 : SM_GEMM_MR;
            sm_gemm_packed(blk + r0 * ld, ld, wp->data + r0 * d.K, rows, d.K, col, ld, ld);
        }
        #pragma omp for schedule(static)
        for (int64_t q = 0; q < nb * d.Cout; q++) {
            int64_t b = q / d.Cout, o = q % d.Cout;
            const float *src = blk + o * ld + b * d.HWo;
            float *dst = out->data + ((n0 + b) * d.Cout + o) * d.HWo, bo = bv ? bv[o] : 0.0f;
            if (relu)
                for (int64_t i = 0; i < d.HWo; i++) {
                    float v = src[i] + bo;
                    dst[i] = v > 0 ? v : 0;
                }
            else
                for (int64_t i = 0; i < d.HWo; i++) dst[i] = src[i] + bo;
        }
    }
}
