/*
 * plan.c — which algorithm computes a convolution: the one decision of the
 * wing, from the shape (batch included), the parameters, what the layer
 * holds (sm_conv_weights) and the CPU's SIMD level.
 *
 * sm_conv_algo_runs says what each algorithm can do at all (its file's
 * limits); sm_conv_plan says which one is best, in the order of the table
 * below, the first row that serves winning. Each row names the benchmark
 * that justifies it: a section of spec/bench/README.md and its script.
 *
 *   pass, mode     row                                      algorithm
 *   forward, inference (the layer opted in with pack() / prepare()):
 *     packed       Cout % 16 == 0, kernel > 1x1, unless a   blocked (blocked8 on 8-bit
 *                  small map (side < 12) goes below         weights at batches < 4)
 *     prepared     3x3 stride 1, a tile for the map         winograd_f2 / winograd_f4
 *     packed       Cin >= 8                                 packed_tap (a 1x1 input one
 *                                                           tap reads), else packed
 *   forward, training (Conv2d.train_winograd):
 *                  3x3 stride 1, Cin >= 8, pad <= 2, tile   winograd_f2 / winograd_f4
 *   every forward left:
 *                  stride 1, few channels                   direct_small
 *                  groups = Cin = Cout                      depthwise
 *                  few input channels, AVX2                 direct_rgb
 *                  1x1, stride 1, unpadded                  pointwise
 *                  large maps                               im2col_banded
 *                  the rest                                 im2col
 *   input gradient:  training's Winograd row (on the input's map), then
 *                    direct_small, depthwise, im2col as for the forward
 *   weight gradient: training's Winograd row (tile forced by
 *                    Conv2d.weight_grad_tile), then the same three
 */
#include <string.h>
#include "conv/kernels.h"

static const char *const NAMES[SM_CONV_NALGOS] = {
    [SM_CONV_IM2COL] = "im2col",
    [SM_CONV_IM2COL_BANDED] = "im2col_banded",
    [SM_CONV_POINTWISE] = "pointwise",
    [SM_CONV_DEPTHWISE] = "depthwise",
    [SM_CONV_DIRECT_SMALL] = "direct_small",
    [SM_CONV_DIRECT_RGB] = "direct_rgb",
    [SM_CONV_PACKED] = "packed",
    [SM_CONV_PACKED_TAP] = "packed_tap",
    [SM_CONV_BLOCKED] = "blocked",
    [SM_CONV_BLOCKED8] = "blocked8",
    [SM_CONV_WINOGRAD_F2] = "winograd_f2",
    [SM_CONV_WINOGRAD_F4] = "winograd_f4",
};

const char *sm_conv_algo_name(sm_conv_algo a)
{
    return a >= 0 && a < SM_CONV_NALGOS ? NAMES[a] : "?";
}

int sm_conv_algo_of_name(const char *name)
{
    for (int a = 0; a < SM_CONV_NALGOS; a++)
        if (strcmp(NAMES[a], name) == 0) return a;
    return -1;
}

/* ---- shapes the rows test ------------------------------------------------------------ */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int winograd_shape(const sm_conv2d_params *p)
{
    return p->kh == 3 && p->kw == 3 && p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1 && p->groups == 1;
}

static int pads_at_most(const sm_conv2d_params *p, int n)
{
    return p->pt <= n && p->pl <= n && p->pb <= n && p->pr <= n;
}

/* A 1x1 input that a stride-1 kernel reads through one tap only, (pt, pl):
 * its padding leaves exactly one output. */
static int one_tap(const sm_conv_shape *s, const sm_conv2d_params *p)
{
    return s->H == 1 && s->W == 1 && p->sh == 1 && p->sw == 1 && p->kh - 1 == p->pt + p->pb &&
           p->kw - 1 == p->pl + p->pr;
}

static int depthwise(const sm_conv_shape *s, const sm_conv2d_params *p)
{
    return p->groups > 1 && s->Cin == p->groups && s->Cout == p->groups;
}

static int pointwise(const sm_conv2d_params *p)
{
    return p->kh == 1 && p->kw == 1 && p->sh == 1 && p->sw == 1 && p->groups == 1 && pads_at_most(p, 0);
}

int sm_conv_algo_runs(sm_conv_algo a, sm_conv_pass pass, const sm_conv_shape *s, const sm_conv2d_params *p,
                      int simd)
{
    int forward = pass == SM_CONV_FORWARD;
    switch (a) {
    case SM_CONV_IM2COL: return 1;
    case SM_CONV_IM2COL_BANDED: return forward;
    case SM_CONV_POINTWISE: return forward && pointwise(p);
    case SM_CONV_DEPTHWISE: return depthwise(s, p);
    case SM_CONV_DIRECT_SMALL: /* planes padded by less than the kernel, flipped for the input gradient */
        return p->groups == 1 && p->sh == 1 && p->sw == 1 && p->dh == 1 && p->dw == 1 && p->kh * p->kw > 1 &&
               p->pt < p->kh && p->pb < p->kh && p->pl < p->kw && p->pr < p->kw &&
               s->Cin * p->kh * p->kw <= SM_CONV_DIRECT_SMALL_MAX_K && s->Cout <= SM_CONV_DIRECT_SMALL_MAX_COUT;
    case SM_CONV_DIRECT_RGB: /* rows of 8 columns for 8 output channels, AVX2 + FMA */
        return forward && sm_conv_direct_rgb_built() && simd >= SM_SIMD_AVX2 && p->sh >= 1 && p->sh <= 2 &&
               p->sw >= 1 && p->sw <= 2 && p->dh == 1 && p->dw == 1 && p->groups == 1 && s->Cout % 8 == 0 &&
               s->Cin * p->kh * p->kw <= SM_CONV_DIRECT_RGB_MAX_K;
    case SM_CONV_PACKED: return forward && p->groups == 1;
    case SM_CONV_PACKED_TAP: return forward && p->groups == 1 && one_tap(s, p);
    case SM_CONV_BLOCKED:
    case SM_CONV_BLOCKED8: return forward && p->groups == 1 && s->Cout % 16 == 0;
    case SM_CONV_WINOGRAD_F2:
    case SM_CONV_WINOGRAD_F4: /* the input gradient pads the output gradient by 2 - p */
        return winograd_shape(p) && (forward || pads_at_most(p, 2));
    default: return 0;
    }
}

/* ---- the rows ------------------------------------------------------------------------ */

/* Winograd's tile for n outputs of ho x wo, 0 for none. "Training speed"
 * (bench_train.lua, and the conv3x3_* rows of run.lua, "Convolutions"): on
 * small maps only batches give the a*a products enough columns. */
static int auto_tile(int64_t n, int64_t ho, int64_t wo)
{
    int64_t side = min64(ho, wo);
    if (side >= 12 || (side >= 6 && n >= 4)) return 4;
    if (side >= 6 || (side >= 4 && n >= 4)) return 2;
    return 0;
}

/* The inference tile: fewer than four samples take F(2x2) on every map
 * from 6x6 — with the packed product of gemm_packed.c as fast as or faster
 * than F(4x4) there for one face of the recognition net ("Face pipeline",
 * face_forward.lua), and its transforms are exact. */
static int inference_tile(int64_t n, int64_t ho, int64_t wo)
{
    if (n < 4 && min64(ho, wo) >= 6) return 2;
    return auto_tile(n, ho, wo);
}

static sm_conv_algo winograd(int tile)
{
    return tile == 2 ? SM_CONV_WINOGRAD_F2 : SM_CONV_WINOGRAD_F4;
}

/* The blocked direct forward ("Face pipeline", "A direct convolution on
 * weights packed by panels of 32 output channels"; face_forward.lua, the
 * recognition net at 2 threads): maps of 12x12 and up at any batch; below
 * that, batches under 4 except the maps Winograd F(2x2) serves better
 * (from 6x6, when prepared and the weights are not in 8 bits: Winograd's
 * transformed weights are 7x their bytes, "8-bit weights") and the 1x1
 * input one tap reads (packed_tap). Kernels of 1x1 stay with the GEMMs. */
static int blocked_serves(const sm_conv_shape *s, const sm_conv2d_params *p, const sm_conv_weights *w, int simd)
{
    if (!w->packed || p->kh * p->kw == 1 || !sm_conv_algo_runs(SM_CONV_BLOCKED, SM_CONV_FORWARD, s, p, simd))
        return 0;
    if (min64(s->Ho, s->Wo) >= 12) return 1;
    if (s->N >= 4) return 0;
    if (w->winograd && min64(s->Ho, s->Wo) >= 6 && !w->q8) return 0;
    return !(one_tap(s, p) && s->Cin >= 8);
}

/* Training's Winograd: 3x3 stride 1, at least 8 input channels (fewer go
 * to direct_small, faster there: "Training speed", bench_train.lua, the
 * AT&T net), padding <= 2 (the input gradient's padding 2 - p). */
static int train_winograd(const sm_conv_shape *s, const sm_conv2d_params *p, const sm_conv_weights *w)
{
    return w->train_winograd && s->Cin >= 8 && winograd_shape(p) && pads_at_most(p, 2);
}

/* direct_small where it runs on a batch whose planes fit one thread's
 * scratch (4 MiB; larger images stay with im2col, whose workspace is
 * bounded): "Training speed", "What made the AT&T net fast"
 * (bench_train.lua). */
static int direct_small_serves(const sm_conv_shape *s, const sm_conv2d_params *p, int simd)
{
    return s->N > 0 && sm_conv_algo_runs(SM_CONV_DIRECT_SMALL, SM_CONV_FORWARD, s, p, simd) &&
           sm_conv_direct_small_scratch(s, p) <= ((size_t)1 << 20);
}

/* direct_rgb for a kernel larger than 1x1 (1x1 stays with the GEMM,
 * measured faster) with Cin*kh*kw <= 32 at horizontal stride 1 (measured
 * against im2col on the tiny detector's 3x3 first layer) or <= 160 at
 * stride 2 (the recognition net's 7x7 first layer): "Face pipeline", the
 * detector's and the descriptor's rows of run.lua. At stride 2 it splits
 * one sample's rows into its workspace; the cascade this table replaces
 * took it only when im2col's workspace would have held them, kept so that
 * every shape keeps its algorithm. */
static int direct_rgb_serves(const sm_conv_shape *s, const sm_conv2d_params *p, int simd)
{
    int64_t K = s->Cin * p->kh * p->kw;
    if (p->kh * p->kw == 1 || (p->sw == 1 && K > 32)) return 0;
    if (!sm_conv_algo_runs(SM_CONV_DIRECT_RGB, SM_CONV_FORWARD, s, p, simd)) return 0;
    return p->sw != 2 || sm_conv_direct_rgb_workspace(s, p) <= sm_conv_im2col_workspace(s, p);
}

/* What no prepared form serves. */
static sm_conv_algo plain_forward(const sm_conv_shape *s, const sm_conv2d_params *p, int simd)
{
    if (direct_small_serves(s, p, simd)) return SM_CONV_DIRECT_SMALL;
    /* as GEMMs, Cin products of one output row each (the detectors' 3x3
     * depthwise layers: "Face pipeline", face_stages.lua) */
    if (depthwise(s, p)) return SM_CONV_DEPTHWISE;
    if (direct_rgb_serves(s, p, simd)) return SM_CONV_DIRECT_RGB;
    /* the input planes are already the columns (MobileFaceNet's 1x1
     * layers: "MTCNN and MobileFaceNet", bench_mtcnn.lua) */
    if (pointwise(p)) return SM_CONV_POINTWISE;
    /* a column matrix above 1 MiB: the first layers of the detectors
     * ("Face pipeline", face_detect rows of run.lua) */
    if ((s->Cin / p->groups * p->kh * p->kw) * s->Ho * s->Wo > 4 * SM_CONV_BAND_FLOATS) return SM_CONV_IM2COL_BANDED;
    /* chunks of samples make the GEMM wide ("Convolutions", run.lua's
     * conv3x3_* rows against the sgemm of the same sizes) */
    return SM_CONV_IM2COL;
}

/* The gradients when Winograd does not serve. */
static sm_conv_algo plain_backward(const sm_conv_shape *s, const sm_conv2d_params *p, int simd)
{
    if (direct_small_serves(s, p, simd)) return SM_CONV_DIRECT_SMALL;
    if (depthwise(s, p)) return SM_CONV_DEPTHWISE;
    return SM_CONV_IM2COL;
}

static sm_conv_algo inference_forward(const sm_conv_shape *s, const sm_conv2d_params *p, const sm_conv_weights *w,
                                      int simd)
{
    if (blocked_serves(s, p, w, simd)) return w->q8 && s->N < 4 ? SM_CONV_BLOCKED8 : SM_CONV_BLOCKED;
    /* Winograd for inference ("Face pipeline", "Also used"; face_forward.lua) */
    if (w->winograd && winograd_shape(p)) {
        int tile = w->winograd_tile ? w->winograd_tile : inference_tile(s->N, s->Ho, s->Wo);
        if (tile) return winograd(tile);
    }
    /* im2col with the packed product: the deep layers at batch 1, where a
     * BLAS call costs more in packing and start-up than in work ("Face
     * pipeline", "Also used"; face_forward.lua) */
    if (w->packed && p->groups == 1 && s->Cin >= 8)
        return one_tap(s, p) && p->kh * p->kw > 1 ? SM_CONV_PACKED_TAP : SM_CONV_PACKED;
    return plain_forward(s, p, simd);
}

sm_conv_algo sm_conv_plan(sm_conv_pass pass, const sm_conv_shape *s, const sm_conv2d_params *p,
                          const sm_conv_weights *w, int simd)
{
    switch (pass) {
    case SM_CONV_FORWARD:
        if (!w->training) return inference_forward(s, p, w, simd);
        if (train_winograd(s, p, w) && auto_tile(s->N, s->Ho, s->Wo)) return winograd(auto_tile(s->N, s->Ho, s->Wo));
        return plain_forward(s, p, simd);
    case SM_CONV_BACKWARD_INPUT: /* the forward of the output gradient onto the input's map */
        if (train_winograd(s, p, w) && auto_tile(s->N, s->H, s->W)) return winograd(auto_tile(s->N, s->H, s->W));
        return plain_backward(s, p, simd);
    case SM_CONV_BACKWARD_WEIGHT:
        if (train_winograd(s, p, w) && auto_tile(s->N, s->Ho, s->Wo))
            return winograd(w->weight_grad_tile ? w->weight_grad_tile : auto_tile(s->N, s->Ho, s->Wo));
        return plain_backward(s, p, simd);
    }
    return SM_CONV_IM2COL;
}
