/*
 * passes.c — the passes of a planned convolution: each check, workspace and
 * compute function hands the pass to the file of the algorithm plan.c
 * chose (kernels.h), with the weights in that algorithm's form. Nothing is
 * decided here but how each algorithm is called.
 *
 * Two algorithms reach their result through another computation:
 *  - packed_tap: a 1x1 input that only the tap (pt, pl) of the kernel
 *    reads is the 1x1 convolution of that tap's weights [Cout][Cin];
 *  - Winograd's input gradient is its forward of the output gradient,
 *    padded by 2 - p on each side, with each filter rotated by 180 degrees
 *    and the channel axes swapped (sm_winograd_prepare_flipped).
 */
#include <string.h>
#include "nn.h" /* sm_activation_forward: the ReLU of the kernels that do not fuse it */
#include "conv/kernels.h"

static const sm_conv2d_params ONE_TAP = { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1 };

static sm_conv_shape shape_of(const sm_tensor *in, const sm_tensor *out)
{
    sm_conv_shape s = { in->shape[0], in->shape[1], in->shape[2], in->shape[3], out->shape[1], out->shape[2],
                        out->shape[3] };
    return s;
}

static int is_winograd(sm_conv_algo a) { return a == SM_CONV_WINOGRAD_F2 || a == SM_CONV_WINOGRAD_F4; }
static int tile_of(sm_conv_algo a) { return a == SM_CONV_WINOGRAD_F2 ? 2 : 4; }

/* A tensor of Winograd's transformed weights' shape [a*a, rows, cols], no data. */
static sm_tensor winograd_stand_in(sm_conv_algo a, int64_t rows, int64_t cols)
{
    int64_t side = tile_of(a) + 2, shape[3] = { side * side, rows, cols };
    sm_tensor u;
    sm_tensor_init(&u, NULL, 3, shape);
    return u;
}

/* The input gradient's Winograd forward: the output gradient padded by 2 - p. */
static sm_conv2d_params flipped(const sm_conv2d_params *p)
{
    sm_conv2d_params q = { 3, 3, 1, 1, 1, 1, 2 - p->pt, 2 - p->pl, 2 - p->pb, 2 - p->pr, 1 };
    return q;
}

static const char *const PASS_NAMES[] = { "forward", "input gradient", "weight gradient" };

/* After the tensors' own check: whether a computes this pass at all. */
static sm_status runs_check(sm_err *err, sm_conv_algo a, sm_conv_pass pass, const sm_tensor *in,
                            const sm_tensor *out, const sm_conv2d_params *p)
{
    sm_conv_shape s = shape_of(in, out);
    if (sm_conv_algo_runs(a, pass, &s, p, sm_simd_level())) return SM_OK;
    char si[SM_SHAPE_STR_LEN];
    return sm_fail(err, SM_EINVAL, "conv: %s cannot compute the %s of input %s (kernel %dx%d, stride %d,%d, "
                   "dilation %d,%d, %d groups) on this CPU", sm_conv_algo_name(a), PASS_NAMES[pass],
                   sm_shape_str(si, sizeof si, in->ndim, in->shape), p->kh, p->kw, p->sh, p->sw, p->dh, p->dw,
                   p->groups);
}

static sm_status known_check(sm_err *err, sm_conv_algo a)
{
    if (a < 0 || a >= SM_CONV_NALGOS) return sm_fail(err, SM_EINVAL, "conv: unknown algorithm %d", (int)a);
    return SM_OK;
}

/* Winograd's transformed weights u must be of its tile. */
static sm_status tile_check(sm_err *err, sm_conv_algo a, const sm_tensor *u)
{
    int64_t side = tile_of(a) + 2;
    if (u->ndim < 1 || u->shape[0] != side * side)
        return sm_fail(err, SM_EINVAL, "conv: %s reads transformed weights [%lld,...]", sm_conv_algo_name(a),
                       (long long)(side * side));
    return SM_OK;
}

/* The workspace of im2col's and direct_small's passes, the same for all
 * three (the forward's own sizes: in and out are the input's and output's
 * shapes, or their gradients'); 0 for the kernels that need none. */
static size_t shared_workspace(sm_conv_algo a, const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p)
{
    sm_conv_shape s = shape_of(in, out);
    if (a == SM_CONV_IM2COL) return sm_conv_im2col_workspace(&s, p);
    if (a == SM_CONV_DIRECT_SMALL) return sm_conv_direct_small_workspace(in, out, p);
    return 0;
}

/* ---- weights ------------------------------------------------------------------------- */

int sm_conv_weights_shape(sm_conv_algo a, sm_conv_pass pass, const sm_conv_shape *s, const sm_conv2d_params *p,
                          int64_t shape[3])
{
    int64_t K = s->Cin / p->groups * p->kh * p->kw;
    switch (a) {
    case SM_CONV_PACKED:
    case SM_CONV_BLOCKED: shape[0] = s->Cout, shape[1] = K; return 2;
    case SM_CONV_PACKED_TAP: shape[0] = s->Cout, shape[1] = s->Cin; return 2;
    case SM_CONV_BLOCKED8: shape[0] = s->Cout * K / 4; return 1;
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4:
        if (pass == SM_CONV_BACKWARD_WEIGHT) return 0;
        shape[0] = (tile_of(a) + 2) * (tile_of(a) + 2);
        shape[1] = pass == SM_CONV_FORWARD ? s->Cout : s->Cin;
        shape[2] = pass == SM_CONV_FORWARD ? s->Cin : s->Cout;
        return 3;
    default: return 0;
    }
}

/* The tap's weights [Cout][Cin]: weight [Cout,Cin,kh,kw] at (pt, pl). */
static sm_status tap_check(sm_err *err, const sm_tensor *dst, const sm_tensor *weight, const sm_conv2d_params *p)
{
    char sd[SM_SHAPE_STR_LEN], sw[SM_SHAPE_STR_LEN];
    sm_shape_str(sd, sizeof sd, dst->ndim, dst->shape);
    sm_shape_str(sw, sizeof sw, weight->ndim, weight->shape);
    if (weight->ndim != 4 || weight->shape[2] != p->kh || weight->shape[3] != p->kw || p->pt < 0 || p->pl < 0 ||
        p->pt >= p->kh || p->pl >= p->kw || !sm_tensor_is_contiguous(weight))
        return sm_fail(err, SM_EINVAL, "conv: packed_tap: weight %s has no tap (%d,%d) of a %dx%d kernel", sw, p->pt,
                       p->pl, p->kh, p->kw);
    if (dst->ndim != 2 || dst->shape[0] != weight->shape[0] || dst->shape[1] != weight->shape[1] ||
        !sm_tensor_is_contiguous(dst))
        return sm_fail(err, SM_EINVAL, "conv: packed_tap: packed weight %s should be [%lld,%lld] for weight %s", sd,
                       (long long)weight->shape[0], (long long)weight->shape[1], sw);
    return SM_OK;
}

sm_status sm_conv_weights_check(sm_err *err, sm_conv_algo a, sm_conv_pass pass, const sm_tensor *dst,
                                const sm_tensor *weight, const sm_conv2d_params *p)
{
    sm_status st = known_check(err, a);
    if (st) return st;
    switch (a) {
    case SM_CONV_PACKED: return sm_conv2d_pack_check(err, dst, weight);
    case SM_CONV_PACKED_TAP: return tap_check(err, dst, weight, p);
    case SM_CONV_BLOCKED: return sm_conv2d_blocked_pack_check(err, dst, weight);
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4:
        if (pass == SM_CONV_FORWARD) return sm_winograd_prepare_check(err, dst, weight, tile_of(a));
        if (pass == SM_CONV_BACKWARD_INPUT) return sm_winograd_prepare_flipped_check(err, dst, weight, tile_of(a));
        break;
    default: break;
    }
    return sm_fail(err, SM_EINVAL, "conv: the %s of %s reads no weights of its own", PASS_NAMES[pass],
                   sm_conv_algo_name(a));
}

void sm_conv_weights_make(sm_conv_algo a, sm_conv_pass pass, sm_tensor *dst, const sm_tensor *weight,
                          const sm_conv2d_params *p)
{
    switch (a) {
    case SM_CONV_PACKED: sm_conv2d_pack(dst, weight); break;
    case SM_CONV_PACKED_TAP: {
        int64_t cout = weight->shape[0], cin = weight->shape[1], taps = (int64_t)p->kh * p->kw;
        const float *w = weight->data + (int64_t)p->pt * p->kw + p->pl;
        for (int64_t o = 0; o < cout; o++)
            for (int64_t c = 0; c < cin; c++)
                dst->data[sm_gemm_packed_index(o, c, cout, cin)] = w[(o * cin + c) * taps];
        break;
    }
    case SM_CONV_BLOCKED: sm_conv2d_blocked_pack(dst, weight); break;
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4:
        if (pass == SM_CONV_FORWARD) sm_winograd_prepare(dst, weight, tile_of(a));
        else sm_winograd_prepare_flipped(dst, weight, tile_of(a));
        break;
    default: break;
    }
}

/* ---- forward ------------------------------------------------------------------------- */

sm_status sm_conv_forward_check(sm_err *err, sm_conv_algo a, const sm_tensor *out, const sm_tensor *in,
                                const sm_tensor *w, const sm_tensor *grid, const sm_tensor *bias,
                                const sm_tensor *res, const sm_conv2d_params *p)
{
    sm_status st = known_check(err, a);
    if (st) return st;
    if (res && a != SM_CONV_BLOCKED && a != SM_CONV_BLOCKED8)
        return sm_fail(err, SM_EINVAL, "conv: %s adds no residual (blocked and blocked8 do)", sm_conv_algo_name(a));
    if ((grid != NULL) != (a == SM_CONV_BLOCKED8))
        return sm_fail(err, SM_EINVAL, "conv: the 8-bit weights' grid is for blocked8 alone (algorithm %s)",
                       sm_conv_algo_name(a));
    switch (a) {
    case SM_CONV_PACKED: st = sm_conv2d_packed_check(err, out, in, w, bias, p); break;
    case SM_CONV_PACKED_TAP:
        st = sm_conv2d_packed_check(err, out, in, w, bias, &ONE_TAP);
        if (!st && (p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0))
            st = sm_fail(err, SM_EINVAL, "conv: padding must be >= 0");
        break;
    case SM_CONV_BLOCKED: st = sm_conv2d_blocked_check(err, out, in, w, bias, p); break;
    case SM_CONV_BLOCKED8: st = sm_conv2d_blocked_check8(err, out, in, w, grid, bias, p); break;
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4:
        st = sm_winograd_check(err, out, in, w, bias, p);
        if (!st) st = tile_check(err, a, w);
        break;
    default: st = sm_conv2d_check(err, out, in, w, bias, p); break;
    }
    if (!st && res) st = sm_conv2d_blocked_check_residual(err, out, res);
    return st ? st : runs_check(err, a, SM_CONV_FORWARD, in, out, p);
}

size_t sm_conv_forward_workspace(sm_conv_algo a, const sm_tensor *out, const sm_tensor *in,
                                 const sm_conv2d_params *p)
{
    sm_conv_shape s = shape_of(in, out);
    switch (a) {
    case SM_CONV_IM2COL:
    case SM_CONV_DIRECT_SMALL: return shared_workspace(a, in, out, p);
    case SM_CONV_IM2COL_BANDED: return sm_conv_im2col_banded_workspace(&s, p);
    case SM_CONV_DIRECT_RGB: return sm_conv_direct_rgb_workspace(&s, p);
    case SM_CONV_PACKED: return sm_conv2d_packed_workspace(out, in, p);
    case SM_CONV_PACKED_TAP: return sm_conv2d_packed_workspace(out, in, &ONE_TAP);
    case SM_CONV_BLOCKED: return sm_conv2d_blocked_workspace(out, in, p, 0);
    case SM_CONV_BLOCKED8: return sm_conv2d_blocked_workspace(out, in, p, 1);
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4: {
        sm_tensor u = winograd_stand_in(a, s.Cout, s.Cin);
        return sm_winograd_workspace(out, in, &u);
    }
    default: return 0; /* pointwise, depthwise */
    }
}

void sm_conv_forward(sm_conv_algo a, sm_tensor *out, const sm_tensor *in, const sm_tensor *w, const sm_tensor *grid,
                     const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p, int relu, float *ws)
{
    switch (a) {
    case SM_CONV_PACKED: sm_conv2d_packed_forward(out, in, w, bias, p, relu, ws); return;
    case SM_CONV_PACKED_TAP: sm_conv2d_packed_forward(out, in, w, bias, &ONE_TAP, relu, ws); return;
    case SM_CONV_BLOCKED: sm_conv2d_blocked_forward(out, in, w, bias, res, p, relu, ws); return;
    case SM_CONV_BLOCKED8: sm_conv2d_blocked_forward8(out, in, w, grid, bias, res, p, relu, ws); return;
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4: sm_winograd_forward(out, in, w, bias, p, relu, ws); return;
    case SM_CONV_IM2COL: sm_conv_im2col_forward(out, in, w, bias, p, ws); break;
    case SM_CONV_IM2COL_BANDED: sm_conv_im2col_banded_forward(out, in, w, bias, p, ws); break;
    case SM_CONV_POINTWISE: sm_conv_pointwise_forward(out, in, w, bias); break;
    case SM_CONV_DEPTHWISE: sm_conv_depthwise_forward(out, in, w, bias, p); break;
    case SM_CONV_DIRECT_SMALL: sm_conv_direct_small_forward(out, in, w, bias, p, ws); break;
    case SM_CONV_DIRECT_RGB: sm_conv_direct_rgb_forward(out, in, w, bias, p, ws); break;
    default: return;
    }
    /* the kernels above do not fuse the ReLU */
    if (relu) sm_activation_forward(out->data, out->data, sm_numel(out->ndim, out->shape), SM_ACT_RELU, 0.0f);
}

/* ---- input gradient ------------------------------------------------------------------ */

sm_status sm_conv_backward_input_check(sm_err *err, sm_conv_algo a, const sm_tensor *grad_in,
                                       const sm_tensor *grad_out, const sm_tensor *w, const sm_conv2d_params *p)
{
    sm_status st = known_check(err, a);
    if (st) return st;
    if (is_winograd(a)) {
        sm_conv2d_params q = flipped(p);
        st = sm_winograd_check(err, grad_in, grad_out, w, NULL, &q);
        if (!st) st = tile_check(err, a, w);
    } else {
        st = sm_conv2d_check(err, grad_out, grad_in, w, NULL, p);
    }
    return st ? st : runs_check(err, a, SM_CONV_BACKWARD_INPUT, grad_in, grad_out, p);
}

size_t sm_conv_backward_input_workspace(sm_conv_algo a, const sm_tensor *grad_in, const sm_tensor *grad_out,
                                        const sm_conv2d_params *p)
{
    if (!is_winograd(a)) return shared_workspace(a, grad_in, grad_out, p);
    sm_tensor u = winograd_stand_in(a, grad_in->shape[1], grad_out->shape[1]);
    return sm_winograd_workspace(grad_in, grad_out, &u);
}

void sm_conv_backward_input(sm_conv_algo a, sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *w,
                            const sm_conv2d_params *p, float *ws)
{
    if (is_winograd(a)) {
        sm_conv2d_params q = flipped(p);
        sm_winograd_forward(grad_in, grad_out, w, NULL, &q, 0, ws);
        return;
    }
    memset(grad_in->data, 0, (size_t)sm_numel(grad_in->ndim, grad_in->shape) * sizeof(float));
    switch (a) {
    case SM_CONV_DIRECT_SMALL: sm_conv_direct_small_backward_input(grad_in, grad_out, w, p, ws); break;
    case SM_CONV_DEPTHWISE: sm_conv_depthwise_backward_input(grad_in, grad_out, w, p); break;
    default: sm_conv_im2col_backward_input(grad_in, grad_out, w, p, ws); break;
    }
}

/* ---- weight gradient ----------------------------------------------------------------- */

sm_status sm_conv_backward_weight_check(sm_err *err, sm_conv_algo a, const sm_tensor *grad_w,
                                        const sm_tensor *grad_b, const sm_tensor *grad_out, const sm_tensor *in,
                                        const sm_conv2d_params *p)
{
    sm_status st = known_check(err, a);
    if (st) return st;
    st = is_winograd(a) ? sm_winograd_backward_weight_check(err, grad_w, grad_b, grad_out, in, p, tile_of(a))
                        : sm_conv2d_check(err, grad_out, in, grad_w, grad_b, p);
    return st ? st : runs_check(err, a, SM_CONV_BACKWARD_WEIGHT, in, grad_out, p);
}

size_t sm_conv_backward_weight_workspace(sm_conv_algo a, const sm_tensor *grad_out, const sm_tensor *in,
                                         const sm_conv2d_params *p)
{
    if (!is_winograd(a)) return shared_workspace(a, in, grad_out, p);
    return sm_winograd_backward_weight_workspace(grad_out, in, tile_of(a));
}

void sm_conv_backward_weight(sm_conv_algo a, sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                             const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws)
{
    switch (a) {
    case SM_CONV_DIRECT_SMALL: sm_conv_direct_small_backward_weight(grad_w, grad_b, grad_out, in, p, scale, ws); break;
    case SM_CONV_DEPTHWISE: sm_conv_depthwise_backward_weight(grad_w, grad_b, grad_out, in, p, scale); break;
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4: sm_winograd_backward_weight(grad_w, grad_b, grad_out, in, p, scale, tile_of(a), ws); break;
    default: sm_conv_im2col_backward_weight(grad_w, grad_b, grad_out, in, p, scale, ws); break;
    }
}
