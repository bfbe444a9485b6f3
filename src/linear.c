/*
 * linear.c — dense layer through sgemm, torch weight layout.
 *
 * in [N,I], weight [O,I], bias [O], out [N,O]:   out = in W^T + 1 b^T
 * backward:  grad_in += grad_out W              ([N,O] x [O,I])
 *            grad_W  += scale * grad_out^T in   ([O,N] x [N,I])
 *            grad_b  += scale * column sums of grad_out
 */
#include "nn.h"

sm_status sm_linear_check(sm_err *err, const sm_tensor *out, const sm_tensor *in,
                          const sm_tensor *weight, const sm_tensor *bias)
{
    char si[SM_SHAPE_STR_LEN], sw[SM_SHAPE_STR_LEN], so[SM_SHAPE_STR_LEN];
    sm_shape_str(si, sizeof si, in->ndim, in->shape);
    sm_shape_str(sw, sizeof sw, weight->ndim, weight->shape);
    sm_shape_str(so, sizeof so, out->ndim, out->shape);
    if (in->ndim != 2 || weight->ndim != 2 || in->shape[1] != weight->shape[1])
        return sm_fail(err, SM_EINVAL, "linear: input %s does not fit weight %s (expected [N,%lld])", si, sw,
                       (long long)(weight->ndim == 2 ? weight->shape[1] : -1));
    if (bias && (bias->ndim != 1 || bias->shape[0] != weight->shape[0]))
        return sm_fail(err, SM_EINVAL, "linear: bias must have shape [%lld]", (long long)weight->shape[0]);
    if (out->ndim != 2 || out->shape[0] != in->shape[0] || out->shape[1] != weight->shape[0])
        return sm_fail(err, SM_EINVAL, "linear: output %s should be [%lld,%lld]", so,
                       (long long)in->shape[0], (long long)weight->shape[0]);
    if (!sm_tensor_is_contiguous(in) || !sm_tensor_is_contiguous(out) || !sm_tensor_is_contiguous(weight) ||
        (bias && !sm_tensor_is_contiguous(bias)))
        return sm_fail(err, SM_EINVAL, "linear: tensors must be contiguous");
    return SM_OK;
}

void sm_linear_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight, const sm_tensor *bias)
{
    int N = (int)in->shape[0], Ni = (int)in->shape[1], No = (int)weight->shape[0];
    if (N == 0 || No == 0) return;
    if (bias) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < No; o++) out->data[(int64_t)n * No + o] = bias->data[o];
    }
    if (Ni == 0) {
        if (!bias) for (int64_t i = 0; i < (int64_t)N * No; i++) out->data[i] = 0;
        return;
    }
    sm_sgemm(0, 1, N, No, Ni, 1.0f, in->data, Ni,
                weight->data, Ni, bias ? 1.0f : 0.0f, out->data, No);
}

void sm_linear_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight)
{
    int N = (int)grad_out->shape[0], No = (int)grad_out->shape[1], Ni = (int)weight->shape[1];
    if (N == 0 || No == 0 || Ni == 0) return;
    sm_sgemm(0, 0, N, Ni, No, 1.0f, grad_out->data, No,
                weight->data, Ni, 1.0f, grad_in->data, Ni);
}

void sm_linear_backward_params(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                               const sm_tensor *in, float scale)
{
    int N = (int)grad_out->shape[0], No = (int)grad_out->shape[1], Ni = (int)in->shape[1];
    if (N == 0 || No == 0) return;
    if (Ni > 0)
        sm_sgemm(1, 0, No, Ni, N, scale, grad_out->data, No,
                    in->data, Ni, 1.0f, grad_w->data, Ni);
    if (grad_b)
        for (int o = 0; o < No; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += grad_out->data[(int64_t)n * No + o];
            grad_b->data[o] += scale * (float)s;
        }
}
