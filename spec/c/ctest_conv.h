/*
 * ctest_conv.h — the convolution by its definition, in double, for the
 * plain-C tests: the value of every output and what its error bound needs
 * (see ctest.h): the sum of the absolute values of its terms, and the sum
 * of |x| over the input it reads.
 *
 *   y[n,o,oy,ox] = b[o] + res[n,o,oy,ox]
 *                + sum_{c,i,j} w[o,c,i,j] x[n, g*Cg + c, oy*sh - pt + i*dh, ox*sw - pl + j*dw]
 *
 * (zero outside the image; g the group of o, Cg = Cin / groups). Every
 * product of two floats is exact in double, so y is within
 * gamma_d(K + 2) * abs of the exact value.
 */
#ifndef CTEST_CONV_H
#define CTEST_CONV_H
#include <math.h>
#include <stdlib.h>
#include "nn.h"
#include "conv/kernels.h" /* the algorithms one by one: the tests of a single kernel call them */

typedef struct {
    double *y;    /* the value */
    double *abs;  /* |b| + |res| + sum |w| |x| */
    double *absx; /* sum |x| over the taps inside the image */
    int64_t os[4];
    int64_t K;    /* products per output: Cg * kh * kw */
} ref_conv;

/* b and res may be NULL. Free with ref_conv_free. */
static inline ref_conv ref_conv2d(const float *x, const int64_t is[4], const float *w, int64_t cout,
                                  const float *b, const float *res, const sm_conv2d_params *p)
{
    ref_conv r;
    int64_t N = is[0], cin = is[1], H = is[2], W = is[3], cg = cin / p->groups;
    r.os[0] = N;
    r.os[1] = cout;
    r.os[2] = sm_conv_out_size(H, p->kh, p->sh, p->dh, p->pt, p->pb);
    r.os[3] = sm_conv_out_size(W, p->kw, p->sw, p->dw, p->pl, p->pr);
    r.K = cg * p->kh * p->kw;
    int64_t ny = N * cout * r.os[2] * r.os[3];
    r.y = malloc((size_t)(ny ? ny : 1) * sizeof(double));
    r.abs = malloc((size_t)(ny ? ny : 1) * sizeof(double));
    r.absx = malloc((size_t)(ny ? ny : 1) * sizeof(double));
    int64_t k = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < cout; o++) {
            int64_t g = o / (cout / p->groups);
            for (int64_t oy = 0; oy < r.os[2]; oy++)
                for (int64_t ox = 0; ox < r.os[3]; ox++, k++) {
                    double s = b ? b[o] : 0, a = b ? fabs(b[o]) : 0, ax = 0;
                    if (res) { s += res[k]; a += fabs(res[k]); }
                    for (int64_t c = 0; c < cg; c++)
                        for (int i = 0; i < p->kh; i++) {
                            int64_t iy = oy * p->sh - p->pt + (int64_t)i * p->dh;
                            if (iy < 0 || iy >= H) continue;
                            for (int j = 0; j < p->kw; j++) {
                                int64_t ix = ox * p->sw - p->pl + (int64_t)j * p->dw;
                                if (ix < 0 || ix >= W) continue;
                                double wv = w[((o * cg + c) * p->kh + i) * p->kw + j];
                                double xv = x[((n * cin + g * cg + c) * H + iy) * W + ix];
                                s += wv * xv;
                                a += fabs(wv * xv);
                                ax += fabs(xv);
                            }
                        }
                    r.y[k] = s;
                    r.abs[k] = a;
                    r.absx[k] = ax;
                }
        }
    return r;
}

static inline void ref_conv_free(ref_conv *r)
{
    free(r->y);
    free(r->abs);
    free(r->absx);
}

/* ---- the convolution a layer with plain weights gets ------------------------------------- */

/* The algorithm sm_conv_plan gives this pass of a layer holding plain
 * weights (no prepare, no pack, no Winograd in training) on this CPU. */
static inline sm_conv_algo plain_algo(sm_conv_pass pass, const sm_tensor *in, const sm_tensor *out,
                                      const sm_conv2d_params *p)
{
    sm_conv_shape s = { in->shape[0], in->shape[1], in->shape[2], in->shape[3], out->shape[1], out->shape[2],
                        out->shape[3] };
    sm_conv_weights plain = { 0 };
    return sm_conv_plan(pass, &s, p, &plain, sm_simd_level());
}

/* Floats of workspace enough for the three passes of plain_algo. */
static inline size_t plain_workspace(const sm_tensor *in, const sm_tensor *out, const sm_conv2d_params *p)
{
    size_t f = sm_conv_forward_workspace(plain_algo(SM_CONV_FORWARD, in, out, p), out, in, p);
    size_t i = sm_conv_backward_input_workspace(plain_algo(SM_CONV_BACKWARD_INPUT, in, out, p), in, out, p);
    size_t w = sm_conv_backward_weight_workspace(plain_algo(SM_CONV_BACKWARD_WEIGHT, in, out, p), out, in, p);
    size_t m = f > i ? f : i;
    return m > w ? m : w;
}

static inline void plain_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *w, const sm_tensor *b,
                                 const sm_conv2d_params *p, float *ws)
{
    sm_conv_forward(plain_algo(SM_CONV_FORWARD, in, out, p), out, in, w, NULL, b, NULL, p, 0, ws);
}

/* grad_in <- dL/din */
static inline void plain_backward_input(sm_tensor *grad_in, const sm_tensor *grad_out, const sm_tensor *w,
                                        const sm_conv2d_params *p, float *ws)
{
    sm_conv_backward_input(plain_algo(SM_CONV_BACKWARD_INPUT, grad_in, grad_out, p), grad_in, grad_out, w, p, ws);
}

/* grad_w, grad_b += scale dL/d. */
static inline void plain_backward_weight(sm_tensor *grad_w, sm_tensor *grad_b, const sm_tensor *grad_out,
                                         const sm_tensor *in, const sm_conv2d_params *p, float scale, float *ws)
{
    sm_conv_backward_weight(plain_algo(SM_CONV_BACKWARD_WEIGHT, in, grad_out, p), grad_w, grad_b, grad_out, in, p,
                            scale, ws);
}

#endif
