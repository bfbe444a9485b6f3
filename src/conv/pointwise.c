/*
 * pointwise.c — a 1x1 convolution with stride 1, no padding and one group:
 * each sample's input plane [Cin][H*W] is already the column matrix, so
 * out_n = W x_n + b, one sgemm per sample with no unfold and no
 * regrouping.
 */
#include "conv/kernels.h"

void sm_conv_pointwise_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight,
                               const sm_tensor *bias)
{
    int64_t N = in->shape[0], Cin = in->shape[1], Cout = out->shape[1], HWo = out->shape[2] * out->shape[3];
    for (int64_t n = 0; n < N; n++) {
        float *o = out->data + n * Cout * HWo;
        sm_conv_fill_bias(o, bias ? bias->data : NULL, Cout, HWo);
        sm_sgemm(0, 0, Cout, HWo, Cin, 1.0f, weight->data, Cin, in->data + n * Cin * HWo, HWo, 1.0f, o, HWo);
    }
}
