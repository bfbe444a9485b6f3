/*
 * direct_small.c — direct (non-im2col) stride-1 convolution for few
 * channels, e.g. the 1->6 and 6->12 3x3 layers of the AT&T net or a first
 * 1->32 layer, where im2col + sgemm spends its time copying columns and the
 * products are too thin for BLAS.
 *
 * Shapes as conv.h: in [N,Cin,H,W], weight [Cout,Cin,kh,kw], out
 * [N,Cout,Ho,Wo], stride 1, dilation 1, one group, padding p < kernel:
 *
 *   out[n,o,y,x]  = b[o] + sum_{c,i,j} w[o,c,i,j] xp[n,c,y+i,x+j]
 *                   (xp = in zero-padded by pt, pl on the top/left)
 *   gin[n,c,y,x] += sum_{o,i,j} w[o,c,i,j] gp[n,o,y+(kh-1-pt)-i, x+(kw-1-pl)-j]
 *                   — the same correlation of the output gradient, padded
 *                   by kh-1-pt, kw-1-pl, with the kernel flipped and its
 *                   channel axes swapped (w'[c,o,i,j] = w[o,c,kh-1-i,kw-1-j]);
 *   gw[o,c,i,j]  += scale sum_{n,y,x} g[n,o,y,x] xp[n,c,y+i,x+j]
 *   gb[o]        += scale sum_{n,y,x} g[n,o,y,x]
 *
 * Each sample's input is first copied into a zero-padded plane whose rows
 * are wide enough for whole vectors of VW outputs, so the inner loops have
 * no bounds tests: a block of VW outputs of CB channels stays in registers
 * while the taps stream past. Samples run in parallel (dynamic schedule:
 * a thread that the OS delays holds up one sample, not half the batch).
 * The weight gradient sums per fixed chunk of samples, then over chunks in
 * order, so its value does not depend on the thread count.
 */
#include <omp.h>
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors passed between inlined helpers only */
/* multiply-adds fused where the target has FMA (the build turns contraction
 * off globally for reproducible scalar code; these sums reassociate anyway) */
#pragma GCC optimize("fp-contract=fast")
#include <string.h>
#include "conv/kernels.h"
#include "simd.h"

#define VW 16          /* outputs per vector block */
#define CHUNKS 8       /* weight-gradient partial sums */
#define MAX_K SM_CONV_DIRECT_SMALL_MAX_K
#define MAX_COUT SM_CONV_DIRECT_SMALL_MAX_COUT

typedef struct {
    SM_CONV_SHAPE_FIELDS;
    int64_t Hp, Wp;  /* padded plane of the input for the forward and weight gradient */
    int64_t Wv;      /* Wo rounded up to VW */
} dims;

/* d's padded sizes from its shape fields. */
static dims derive(dims d, const sm_conv2d_params *p)
{
    d.Wv = (d.Wo + VW - 1) / VW * VW;
    d.Hp = d.Ho + p->kh - 1;
    d.Wp = d.Wv + p->kw - 1;
    return d;
}

static dims dims_of(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p)
{
    dims d;
    SM_CONV_SHAPE_SET(d, in, out);
    return derive(d, p);
}

static size_t per_thread(const dims *d, const sm_conv2d_params *p);

size_t sm_conv_direct_small_scratch(const sm_conv_shape *s, const sm_conv2d_params *p)
{
    dims d;
    d.N = s->N, d.Cin = s->Cin, d.H = s->H, d.W = s->W, d.Cout = s->Cout, d.Ho = s->Ho, d.Wo = s->Wo;
    d = derive(d, p);
    return per_thread(&d, p);
}

static int threads(void)
{
    return omp_in_parallel() ? 1 : omp_get_max_threads();
}

/* Floats of one thread's scratch: a padded input plane set, and a padded
 * output-gradient plane set (both passes of backward use one of each). */
static size_t per_thread(const dims *d, const sm_conv2d_params *p)
{
    size_t xin = (size_t)(d->Cin * d->Hp * d->Wp);
    /* backward input: the output gradient padded to give H x W outputs */
    int64_t Wv_in = (d->W + VW - 1) / VW * VW;
    size_t gpad = (size_t)(d->Cout * (d->H + p->kh - 1) * (Wv_in + p->kw - 1));
    size_t gout = (size_t)(d->Cout * d->Ho * d->Wv);
    size_t a = xin + gout, b = gpad;
    return a > b ? a : b;
}

size_t sm_conv_direct_small_workspace(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p)
{
    dims d = dims_of(in, out, p);
    size_t acc = (size_t)CHUNKS * (size_t)(d.Cout * (d.Cin * p->kh * p->kw + 1) * VW);
    size_t flipped = (size_t)(d.Cin * d.Cout * p->kh * p->kw);
    return (size_t)threads() * per_thread(&d, p) + (acc > flipped ? acc : flipped);
}

/* Copies planes src[C][H][W] into dst[C][Hd][Wd] at offset (top, left), zero elsewhere. */
static void pad_planes(float *dst, const float *src, int64_t C, int64_t H, int64_t W, int64_t Hd, int64_t Wd,
                       int64_t top, int64_t left)
{
    memset(dst, 0, (size_t)(C * Hd * Wd) * sizeof(float));
    for (int64_t c = 0; c < C; c++)
        for (int64_t y = 0; y < H; y++)
            memcpy(dst + (c * Hd + top + y) * Wd + left, src + (c * H + y) * W, (size_t)W * sizeof(float));
}

/* VW floats as one GCC vector (one AVX-512 register, two AVX2 or four SSE
 * ones); loads and stores through memcpy, which need no alignment. */
typedef float vec __attribute__((vector_size(VW * sizeof(float))));

SM_INLINE vec vload(const float *p)
{
    vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

SM_INLINE void vstore(float *p, vec v)
{
    memcpy(p, &v, sizeof v);
}

/* out[o][y][x] (= or +=) sum_{c,i,j} w[o][c][i][j] xp[c][y+i][x+j] (+ b[o])
 * for o in [o0, o0+NB), y < Ho, x < Wo, with xp [C][Hp][Wp] padded so that
 * reads up to x = roundup(Wo, VW) + kw - 2 stay inside. NB accumulators of
 * VW outputs stay in registers while the taps stream past. */
#define DEFINE_CORRELATE_BLOCK(NB)                                                                          \
    SM_INLINE void correlate_block##NB(float *out, const float *xp, const float *w, const float *b,    \
                                           int64_t o0, int64_t C, int64_t Ho, int64_t Wo, int64_t Hp,       \
                                           int64_t Wp, int kh, int kw, int accumulate)                      \
    {                                                                                                       \
        int64_t K = C * kh * kw;                                                                            \
        for (int64_t y = 0; y < Ho; y++)                                                                    \
            for (int64_t x0 = 0; x0 < Wo; x0 += VW) {                                                       \
                vec acc[NB];                                                                                \
                for (int o = 0; o < NB; o++) acc[o] = (vec){0} + (b ? b[o0 + o] : 0.0f);                    \
                for (int64_t c = 0; c < C; c++)                                                             \
                    for (int i = 0; i < kh; i++) {                                                          \
                        const float *row = xp + (c * Hp + y + i) * Wp + x0;                                 \
                        const float *wt = w + o0 * K + (c * kh + i) * kw;                                   \
                        for (int j = 0; j < kw; j++) {                                                      \
                            vec xv = vload(row + j);                                                        \
                            for (int o = 0; o < NB; o++) acc[o] += wt[o * K + j] * xv;                      \
                        }                                                                                   \
                    }                                                                                       \
                int64_t n = Wo - x0 < VW ? Wo - x0 : VW;                                                    \
                for (int o = 0; o < NB; o++) {                                                              \
                    float *dst = out + ((o0 + o) * Ho + y) * Wo + x0;                                       \
                    if (n == VW && !accumulate) { vstore(dst, acc[o]); continue; }                          \
                    float tmp[VW];                                                                          \
                    vstore(tmp, acc[o]);                                                                    \
                    if (accumulate) for (int64_t v = 0; v < n; v++) dst[v] += tmp[v];                       \
                    else for (int64_t v = 0; v < n; v++) dst[v] = tmp[v];                                   \
                }                                                                                           \
            }                                                                                               \
    }
DEFINE_CORRELATE_BLOCK(1)
DEFINE_CORRELATE_BLOCK(2)
DEFINE_CORRELATE_BLOCK(4)
DEFINE_CORRELATE_BLOCK(6)

/* All Co output channels, in blocks of 6 (when Co divides) or 4, 2, 1. */
SM_INLINE void correlate_body(float *out, const float *xp, const float *w, const float *b, int64_t C, int64_t Co,
                          int64_t Ho, int64_t Wo, int64_t Hp, int64_t Wp, int kh, int kw, int accumulate)
{
    int64_t o0 = 0;
    if (Co % 6 == 0)
        for (; o0 < Co; o0 += 6) correlate_block6(out, xp, w, b, o0, C, Ho, Wo, Hp, Wp, kh, kw, accumulate);
    for (; o0 + 4 <= Co; o0 += 4) correlate_block4(out, xp, w, b, o0, C, Ho, Wo, Hp, Wp, kh, kw, accumulate);
    for (; o0 + 2 <= Co; o0 += 2) correlate_block2(out, xp, w, b, o0, C, Ho, Wo, Hp, Wp, kh, kw, accumulate);
    for (; o0 < Co; o0++) correlate_block1(out, xp, w, b, o0, C, Ho, Wo, Hp, Wp, kh, kw, accumulate);
}
SM_CLONES_VOID(correlate, (float *out, const float *xp, const float *w, const float *b, int64_t C, int64_t Co,
          int64_t Ho, int64_t Wo, int64_t Hp, int64_t Wp, int kh, int kw, int accumulate), (out, xp, w, b, C, Co, Ho, Wo, Hp, Wp, kh, kw, accumulate))

/* Weight-gradient sums of output channels o0 .. o0+NB-1 for the 3-wide
 * taps of input row offset i of channel c: acc[o][(c,i,j)][VW] +=
 * g[o][y][x] xp[c][y+i][x+j]. The 3 NB accumulators stay in registers and
 * each loaded vector serves NB (input) or 3 (gradient) products. */
#define DEFINE_GRADS3_BLOCK(NB)                                                                             \
    SM_INLINE void grads3_block##NB(float *acc, const float *g, const float *xp, int64_t o0, int64_t c,    \
                                    int i, int64_t K, int64_t Ho, int64_t Wv, int64_t Hp, int64_t Wp,       \
                                    int kh)                                                                 \
    {                                                                                                       \
        vec a[NB][3];                                                                                       \
        float *at[NB];                                                                                      \
        for (int o = 0; o < NB; o++) {                                                                      \
            at[o] = acc + ((o0 + o) * K + (c * kh + i) * 3) * VW;                                           \
            for (int j = 0; j < 3; j++) a[o][j] = vload(at[o] + j * VW);                                    \
        }                                                                                                   \
        for (int64_t y = 0; y < Ho; y++) {                                                                  \
            const float *row = xp + (c * Hp + y + i) * Wp;                                                  \
            for (int64_t x0 = 0; x0 < Wv; x0 += VW) {                                                       \
                vec x0v = vload(row + x0), x1v = vload(row + x0 + 1), x2v = vload(row + x0 + 2);            \
                for (int o = 0; o < NB; o++) {                                                              \
                    vec gv = vload(g + ((o0 + o) * Ho + y) * Wv + x0);                                      \
                    a[o][0] += gv * x0v;                                                                    \
                    a[o][1] += gv * x1v;                                                                    \
                    a[o][2] += gv * x2v;                                                                    \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
        for (int o = 0; o < NB; o++)                                                                        \
            for (int j = 0; j < 3; j++) vstore(at[o] + j * VW, a[o][j]);                                    \
    }
DEFINE_GRADS3_BLOCK(1)
DEFINE_GRADS3_BLOCK(4)

/* acc[o][t][VW] += g[o][y][x] xp[c][y+i][x+j] over y, x (t = (c,i,j)), and
 * accb[o][VW] += g[o][y][x]; g [Co][Ho][Wv] is zero past Wo. */
SM_INLINE void correlate_grads_body(float *acc, float *accb, const float *g, const float *xp, int64_t C, int64_t Co,
                                   int64_t Ho, int64_t Wv, int64_t Hp, int64_t Wp, int kh, int kw)
{
    int64_t K = C * kh * kw;
    for (int64_t o = 0; o < Co; o++) {
        vec bsum = vload(accb + o * VW);
        for (int64_t y = 0; y < Ho; y++)
            for (int64_t x0 = 0; x0 < Wv; x0 += VW) bsum += vload(g + (o * Ho + y) * Wv + x0);
        vstore(accb + o * VW, bsum);
    }
    if (kw == 3) { /* the common case */
        for (int64_t c = 0; c < C; c++)
            for (int i = 0; i < kh; i++) {
                int64_t o0 = 0;
                for (; o0 + 4 <= Co; o0 += 4) grads3_block4(acc, g, xp, o0, c, i, K, Ho, Wv, Hp, Wp, kh);
                for (; o0 < Co; o0++) grads3_block1(acc, g, xp, o0, c, i, K, Ho, Wv, Hp, Wp, kh);
            }
        return;
    }
    for (int64_t o = 0; o < Co; o++)
        for (int64_t c = 0; c < C; c++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++) {
                    float *at = acc + (o * K + (c * kh + i) * kw + j) * VW;
                    vec a = vload(at);
                    for (int64_t y = 0; y < Ho; y++) {
                        const float *row = xp + (c * Hp + y + i) * Wp + j, *gr = g + (o * Ho + y) * Wv;
                        for (int64_t x0 = 0; x0 < Wv; x0 += VW) a += vload(gr + x0) * vload(row + x0);
                    }
                    vstore(at, a);
                }
}
SM_CLONES_VOID(correlate_grads, (float *acc, float *accb, const float *g, const float *xp, int64_t C, int64_t Co,
          int64_t Ho, int64_t Wv, int64_t Hp, int64_t Wp, int kh, int kw), (acc, accb, g, xp, C, Co, Ho, Wv, Hp, Wp, kh, kw))

void sm_conv_direct_small_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *weight, const sm_tensor *bias,
                                  const sm_conv2d_params *p, float *ws)
{
    dims d = dims_of(in, out, p);
    int nt = threads();
    size_t pt_size = per_thread(&d, p);
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1 && d.N > 1)
    for (int64_t n = 0; n < d.N; n++) {
        float *xp = ws + (size_t)omp_get_thread_num() * pt_size;
        pad_planes(xp, in->data + n * d.Cin * d.H * d.W, d.Cin, d.H, d.W, d.Hp, d.Wp, p->pt, p->pl);
        correlate(out->data + n * d.Cout * d.Ho * d.Wo, xp, weight->data, bias ? bias->data : NULL, d.Cin, d.Cout,
                  d.Ho, d.Wo, d.Hp, d.Wp, p->kh, p->kw, 0);
    }
}

void sm_conv_direct_small_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *weight,
                                         const sm_conv2d_params *p, float *ws)
{
    dims d = dims_of(grad_in, grad_out, p);
    int nt = threads(), kh = p->kh, kw = p->kw;
    size_t pt_size = per_thread(&d, p);
    /* w'[c][o][i][j] = w[o][c][kh-1-i][kw-1-j] after the per-thread planes */
    float *wf = ws + (size_t)nt * pt_size;
    for (int64_t o = 0; o < d.Cout; o++)
        for (int64_t c = 0; c < d.Cin; c++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                    wf[((c * d.Cout + o) * kh + i) * kw + j] =
                        weight->data[((o * d.Cin + c) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
    int64_t Hg = d.H + kh - 1, Wg = (d.W + VW - 1) / VW * VW + kw - 1;
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1 && d.N > 1)
    for (int64_t n = 0; n < d.N; n++) {
        float *gp = ws + (size_t)omp_get_thread_num() * pt_size;
        pad_planes(gp, grad_out->data + n * d.Cout * d.Ho * d.Wo, d.Cout, d.Ho, d.Wo, Hg, Wg, kh - 1 - p->pt,
                   kw - 1 - p->pl);
        correlate(grad_in->data + n * d.Cin * d.H * d.W, gp, wf, NULL, d.Cout, d.Cin, d.H, d.W, Hg, Wg, kh, kw, 1);
    }
}

void sm_conv_direct_small_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                          const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws)
{
    dims d = dims_of(in, grad_out, p);
    int nt = threads();
    size_t pt_size = per_thread(&d, p);
    int64_t K = d.Cin * p->kh * p->kw, per_chunk = d.Cout * (K + 1) * VW;
    int64_t chunks = d.N < CHUNKS ? d.N : CHUNKS;
    float *acc = ws + (size_t)nt * pt_size;
    memset(acc, 0, (size_t)(chunks * per_chunk) * sizeof(float));
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1 && chunks > 1)
    for (int64_t ch = 0; ch < chunks; ch++) {
        float *xp = ws + (size_t)omp_get_thread_num() * pt_size, *gv = xp + d.Cin * d.Hp * d.Wp;
        float *a = acc + ch * per_chunk;
        for (int64_t n = d.N * ch / chunks; n < d.N * (ch + 1) / chunks; n++) {
            pad_planes(xp, in->data + n * d.Cin * d.H * d.W, d.Cin, d.H, d.W, d.Hp, d.Wp, p->pt, p->pl);
            pad_planes(gv, grad_out->data + n * d.Cout * d.Ho * d.Wo, d.Cout, d.Ho, d.Wo, d.Ho, d.Wv, 0, 0);
            correlate_grads(a, a + d.Cout * K * VW, gv, xp, d.Cin, d.Cout, d.Ho, d.Wv, d.Hp, d.Wp, p->kh, p->kw);
        }
    }
    /* chunks in order, then the VW lanes: the same sums whatever the threads */
    for (int64_t o = 0; o < d.Cout; o++) {
        for (int64_t t = 0; t <= K; t++) {
            double s = 0;
            for (int64_t ch = 0; ch < chunks; ch++) {
                const float *lane = t < K ? acc + ch * per_chunk + (o * K + t) * VW
                                          : acc + ch * per_chunk + d.Cout * K * VW + o * VW;
                for (int v = 0; v < VW; v++) s += lane[v];
            }
            if (t < K) grad_w->data[o * K + t] += scale * (float)s;
            else if (grad_b) grad_b->data[o] += scale * (float)s;
        }
    }
}
