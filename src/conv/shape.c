/*
 * shape.c — the sizes of a convolution (also pooling's: pool2d.c), the
 * check of plain weights every kernel starts from, and the small loops
 * the kernels share.
 */
#include "conv/kernels.h"

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

sm_conv_shape sm_conv_shape_of(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout,
                               const sm_conv2d_params *p)
{
    sm_conv_shape s = { N, Cin, H, W, Cout, 0, 0 };
    s.Ho = sm_conv_out_size(H, p->kh, p->sh, p->dh, p->pt, p->pb);
    s.Wo = sm_conv_out_size(W, p->kw, p->sw, p->dw, p->pl, p->pr);
    return s;
}

void sm_conv_valid_range(int64_t W, int64_t Wo, int s, int64_t off_minus_pad, int64_t *lo, int64_t *hi)
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

void sm_conv_fill_bias(float *o, const float *bias, int64_t cout, int64_t hw)
{
    for (int64_t c = 0; c < cout; c++) {
        float bv = bias ? bias[c] : 0.0f;
        for (int64_t i = 0; i < hw; i++) o[c * hw + i] = bv;
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
