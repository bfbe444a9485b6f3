/*
 * conv2d_direct.c — forward convolution for few input channels (the first
 * layer of a network on an RGB image), computed directly with AVX2/FMA
 * when the CPU has them.
 *
 * Shapes as in conv2d.c: in [N,Cin,H,W], weight [Cout,Cin,kh,kw], bias
 * [Cout] or NULL, out [N,Cout,Ho,Wo]; stride 1, dilation 1, one group, any
 * zero padding:
 *
 *   out[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] in[n,c,y - pt + i,x - pl + j]
 *
 * With K = Cin*kh*kw small (<= 32), im2col writes K copies of the image and
 * the GEMM has a short inner dimension, both slow. Here each output row is
 * computed 8 columns at a time for 8 output channels: one load of 8 inputs
 * per tap feeds 8 fused multiply-adds (the weight broadcast from memory),
 * and nothing is unfolded. Columns whose taps would leave the image and the
 * rows next to the padding take a scalar loop with bounds checks; a row's
 * last 8 interior columns are one block overlapping the previous one.
 */
#include <string.h>
#include "nn.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_DIRECT 1
#endif

#define DIRECT_MAX_K 32

/* True when the direct kernel handles this convolution on this CPU. */
int sm_conv2d_direct_applies(const sm_tensor *in, const sm_tensor *weight, const sm_conv2d_params *p)
{
#ifdef HAVE_X86_DIRECT
    int64_t cin = in->shape[1], cout = weight->shape[0];
    if (p->sh != 1 || p->sw != 1 || p->dh != 1 || p->dw != 1 || p->groups != 1) return 0;
    /* 1x1 kernels stay with the GEMM (no unfold there; measured faster) */
    if (p->kh * p->kw == 1 || cin * p->kh * p->kw > DIRECT_MAX_K || cout % 8 != 0) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    (void)in; (void)weight; (void)p;
    return 0;
#endif
}

#ifdef HAVE_X86_DIRECT
/* One output value by the definition (borders). */
static float direct_at(const float *x, const float *w, float bias, int64_t cin, int64_t H, int64_t W,
                       const sm_conv2d_params *p, int64_t y, int64_t xx)
{
    float s = bias;
    for (int64_t c = 0; c < cin; c++)
        for (int i = 0; i < p->kh; i++) {
            int64_t iy = y - p->pt + i;
            if (iy < 0 || iy >= H) continue;
            for (int j = 0; j < p->kw; j++) {
                int64_t ix = xx - p->pl + j;
                if (ix >= 0 && ix < W) s += w[(c * p->kh + i) * p->kw + j] * x[(c * H + iy) * W + ix];
            }
        }
    return s;
}

/* Output row y of sample planes x [Cin][H][W] for output channels
 * o0..o0+7: out rows at op + o*HWo. */
__attribute__((target("avx2,fma")))
static void direct_row8(float *op, const float *x, const float *w, const float *bias, int64_t o0, int64_t cin,
                        int64_t H, int64_t W, int64_t Wo, int64_t HWo, const sm_conv2d_params *p, int64_t y)
{
    int kk = p->kh * p->kw;
    int64_t K = cin * kk;
    /* columns whose every tap is inside the image: x - pl >= 0, x - pl + kw - 1 < W */
    int64_t lo = p->pl, hi = W - p->kw + 1 + p->pl;
    if (hi > Wo) hi = Wo;
    int rows_inside = y - p->pt >= 0 && y - p->pt + p->kh <= H;
    if (!rows_inside || lo >= hi) lo = hi = 0;
    /* taps' input offsets (relative to the output column) and weights [tap][8] */
    int64_t off[DIRECT_MAX_K];
    float wt[DIRECT_MAX_K][8];
    for (int64_t c = 0; c < cin; c++)
        for (int i = 0; i < p->kh; i++)
            for (int j = 0; j < p->kw; j++) {
                int64_t t = (c * p->kh + i) * p->kw + j;
                off[t] = (c * H + y - p->pt + i) * W - p->pl + j;
                for (int k = 0; k < 8; k++) wt[t][k] = w[(o0 + k) * K + t];
            }
    int64_t xx = lo, last = hi - 8;
    for (; xx < hi && last >= lo; xx += 8) {
        /* the last block ends at hi, overlapping the one before: the
         * shared columns are recomputed with the same operations */
        if (xx > last) xx = last;
        __m256 acc[8];
        for (int k = 0; k < 8; k++) acc[k] = _mm256_set1_ps(bias ? bias[o0 + k] : 0.0f);
        for (int64_t t = 0; t < K; t++) {
            __m256 v = _mm256_loadu_ps(x + off[t] + xx);
            for (int k = 0; k < 8; k++) acc[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(&wt[t][k]), v, acc[k]);
        }
        for (int k = 0; k < 8; k++) _mm256_storeu_ps(op + (o0 + k) * HWo + y * Wo + xx, acc[k]);
    }
    if (last < lo) xx = lo; /* fewer than 8 interior columns: all scalar */
    /* the rest of the row: the borders (and short rows) */
    for (int64_t c0 = 0; c0 < Wo; c0++) {
        if (c0 >= lo && c0 < xx) continue;
        for (int k = 0; k < 8; k++)
            op[(o0 + k) * HWo + y * Wo + c0] =
                direct_at(x, w + (o0 + k) * K, bias ? bias[o0 + k] : 0.0f, cin, H, W, p, y, c0);
    }
}
#endif

/* Call only when sm_conv2d_direct_applies; parallel over rows. */
void sm_conv2d_forward_direct(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight, const sm_tensor *bias,
                              const sm_conv2d_params *p)
{
#ifdef HAVE_X86_DIRECT
    int64_t N = in->shape[0], cin = in->shape[1], H = in->shape[2], W = in->shape[3];
    int64_t cout = out->shape[1], Ho = out->shape[2], Wo = out->shape[3], HWo = Ho * Wo;
    int64_t groups8 = cout / 8, jobs = N * groups8 * Ho;
    #pragma omp parallel for schedule(static) if (jobs * Wo * 8 > 16384)
    for (int64_t job = 0; job < jobs; job++) {
        int64_t y = job % Ho, og = (job / Ho) % groups8, n = job / (Ho * groups8);
        direct_row8(out->data + n * cout * HWo, in->data + n * cin * H * W, weight->data, bias ? bias->data : NULL,
                    og * 8, cin, H, W, Wo, HWo, p, y);
    }
#else
    (void)out; (void)in; (void)weight; (void)bias; (void)p;
#endif
}
