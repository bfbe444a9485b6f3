/*
 * direct_rgb.c — forward convolution for few input channels (the first
 * layer of a network on an RGB image), computed directly with AVX2/FMA
 * (call it only on a CPU that has them).
 *
 * Shapes as in conv.h: in [N,Cin,H,W], weight [Cout,Cin,kh,kw], bias
 * [Cout] or NULL, out [N,Cout,Ho,Wo]; strides 1 or 2, dilation 1, one
 * group, any zero padding:
 *
 *   out[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] in[n,c,y*sh - pt + i,x*sw - pl + j]
 *
 * With a horizontal stride of 2 each input row is first split into its even
 * and odd columns (in the workspace), so that every tap again reads 8
 * consecutive floats: column 2x + q is even[x + q/2] or odd[x + (q-1)/2].
 * With K = Cin*kh*kw small (<= 32), im2col writes K copies of the image and
 * the GEMM has a short inner dimension, both slow. Here each output row is
 * computed 8 columns at a time for 8 output channels: one load of 8 inputs
 * per tap feeds 8 fused multiply-adds (the weight broadcast from memory),
 * and nothing is unfolded. Columns whose taps would leave the image and the
 * rows next to the padding take a scalar loop with bounds checks; a row's
 * last 8 interior columns are one block overlapping the previous one.
 */
#include <string.h>
#include "conv/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86_DIRECT 1
#endif

int sm_conv_direct_rgb_built(void)
{
#ifdef HAVE_X86_DIRECT
    return 1;
#else
    return 0;
#endif
}

size_t sm_conv_direct_rgb_workspace(const sm_conv_shape *s, const sm_conv2d_params *p)
{
    return p->sw == 2 ? (size_t)(s->Cin * s->H * 2 * ((s->W + 1) / 2)) : 0;
}

#ifdef HAVE_X86_DIRECT
/* One output value by the definition (borders). */
static float direct_at(const float *x, const float *w, float bias, int64_t cin, int64_t H, int64_t W,
                       const sm_conv2d_params *p, int64_t y, int64_t xx)
{
    float s = bias;
    for (int64_t c = 0; c < cin; c++)
        for (int i = 0; i < p->kh; i++) {
            int64_t iy = y * p->sh - p->pt + i;
            if (iy < 0 || iy >= H) continue;
            for (int j = 0; j < p->kw; j++) {
                int64_t ix = xx * p->sw - p->pl + j;
                if (ix >= 0 && ix < W) s += w[(c * p->kh + i) * p->kw + j] * x[(c * H + iy) * W + ix];
            }
        }
    return s;
}

/* Output row y of one sample for output channels o0..o0+7 (out rows at op +
 * o*HWo). x is the sample's planes [Cin][H][W] (the borders read it); the
 * vector loop reads xv: x itself with stride 1 (row stride rs = W), or the
 * split rows [even Wh | odd Wh] (rs = 2 Wh) with stride 2. */
__attribute__((target("avx2,fma")))
static void direct_row8(float *op, const float *x, const float *xv, int64_t rs, int64_t Wh, const float *w,
                        const float *bias, int64_t o0, int64_t cin, int64_t H, int64_t W, int64_t Wo, int64_t HWo,
                        const sm_conv2d_params *p, int64_t y)
{
    int kk = p->kh * p->kw, sw = p->sw;
    int64_t K = cin * kk;
    /* columns whose every tap is inside the image:
     * x*sw - pl >= 0 and x*sw - pl + kw - 1 <= W - 1 */
    int64_t lo = (p->pl + sw - 1) / sw, span = W - p->kw + p->pl;
    int64_t hi = span < 0 ? 0 : span / sw + 1;
    if (hi > Wo) hi = Wo;
    int64_t iy0 = y * p->sh - p->pt;
    int rows_inside = iy0 >= 0 && iy0 + p->kh <= H;
    if (!rows_inside || lo >= hi) lo = hi = 0;
    /* taps' offsets in xv (relative to the output column) and weights [tap][8] */
    int64_t off[SM_CONV_DIRECT_RGB_MAX_K];
    float wt[SM_CONV_DIRECT_RGB_MAX_K][8];
    for (int64_t c = 0; c < cin; c++)
        for (int i = 0; i < p->kh; i++)
            for (int j = 0; j < p->kw; j++) {
                int64_t t = (c * p->kh + i) * p->kw + j, row = (c * H + iy0 + i) * rs, q = j - p->pl;
                if (sw == 1) {
                    off[t] = row + q;
                } else { /* column 2x + q: even[x + r] or odd[x + r], r = floor(q / 2) */
                    int64_t r = q >= 0 ? q / 2 : -((-q + 1) / 2);
                    off[t] = row + (q - 2 * r) * Wh + r;
                }
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
            __m256 v = _mm256_loadu_ps(xv + off[t] + xx);
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

/* Parallel over output rows (and, for stride 2, over the split rows). */
void sm_conv_direct_rgb_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight, const sm_tensor *bias,
                                const sm_conv2d_params *p, float *ws)
{
#ifdef HAVE_X86_DIRECT
    int64_t N = in->shape[0], cin = in->shape[1], H = in->shape[2], W = in->shape[3];
    int64_t cout = out->shape[1], Ho = out->shape[2], Wo = out->shape[3], HWo = Ho * Wo;
    int64_t groups8 = cout / 8, jobs = groups8 * Ho, Wh = (W + 1) / 2;
    for (int64_t n = 0; n < N; n++) {
        const float *x = in->data + n * cin * H * W, *xv = x;
        int64_t rs = W;
        if (p->sw == 2) { /* rows split into even and odd columns */
            #pragma omp parallel for schedule(static) if (cin * H * W > 65536)
            for (int64_t r = 0; r < cin * H; r++) {
                const float *src = x + r * W;
                float *ev = ws + r * 2 * Wh, *od = ev + Wh;
                for (int64_t i = 0; i < Wh; i++) ev[i] = src[2 * i];
                for (int64_t i = 0; i < W / 2; i++) od[i] = src[2 * i + 1];
                if (W % 2) od[Wh - 1] = 0;
            }
            xv = ws;
            rs = 2 * Wh;
        }
        #pragma omp parallel for schedule(static) if (jobs * Wo * 8 > 16384)
        for (int64_t job = 0; job < jobs; job++) {
            int64_t y = job % Ho, og = job / Ho;
            direct_row8(out->data + n * cout * HWo, x, xv, rs, Wh, weight->data, bias ? bias->data : NULL,
                        og * 8, cin, H, W, Wo, HWo, p, y);
        }
    }
#else
    (void)out; (void)in; (void)weight; (void)bias; (void)p; (void)ws;
#endif
}
