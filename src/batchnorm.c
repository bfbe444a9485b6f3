/*
 * batchnorm.c — batch normalisation and the per-channel affine it folds into.
 *
 * x [N,C,L]; per channel c over the M = N*L values:
 *   mean = sum x / M,  var = sum (x - mean)^2 / M,  invstd = 1 / sqrt(var + eps)
 *   xhat = (x - mean) invstd,  y = gamma xhat + beta
 * Backward (batch statistics), with dxhat = dy gamma:
 *   dx = invstd / M * (M dxhat - sum dxhat - xhat sum(dxhat xhat))
 *   dgamma = sum dy xhat,  dbeta = sum dy
 * In evaluation the running statistics replace the batch ones, which makes
 * the layer the affine y = x w + b with w = gamma invstd, b = beta - mean w.
 */
#include <math.h>
#include "nn.h"
#include "simd.h"
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors passed between inlined helpers only */

#define PAR_MIN 32768

/* Row sums for the statistics: 16 float lanes (vectorised) per row, then
 * the lanes added in double; a row is at most a plane of one sample, so
 * each lane sums few values. A double accumulator per element, as a plain
 * loop would have, does not vectorise. */
typedef struct { sm_v8f a, b; } lanes16;

SM_INLINE double lanes_total(lanes16 s)
{
    float t[16];
    memcpy(t, &s.a, sizeof s.a);
    memcpy(t + 8, &s.b, sizeof s.b);
    double r = 0;
    for (int i = 0; i < 16; i++) r += t[i];
    return r;
}

SM_INLINE sm_v8f ld8(const float *p)
{
    sm_v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* sum of p[i] */
SM_INLINE double row_sum_body(const float *p, int64_t L)
{
    lanes16 s = {{0}, {0}};
    int64_t i = 0;
    for (; i + 16 <= L; i += 16) { s.a += ld8(p + i); s.b += ld8(p + i + 8); }
    double r = lanes_total(s);
    for (; i < L; i++) r += p[i];
    return r;
}
SM_CLONES(double, row_sum, (const float *p, int64_t L), (p, L))

/* sum of (p[i] - m)^2 */
SM_INLINE double row_sumsq_body(const float *p, int64_t L, float m)
{
    lanes16 s = {{0}, {0}};
    int64_t i = 0;
    for (; i + 16 <= L; i += 16) {
        sm_v8f d = ld8(p + i) - m, e = ld8(p + i + 8) - m;
        s.a += d * d;
        s.b += e * e;
    }
    double r = lanes_total(s);
    for (; i < L; i++) r += (double)(p[i] - m) * (p[i] - m);
    return r;
}
SM_CLONES(double, row_sumsq, (const float *p, int64_t L, float m), (p, L, m))

/* sum of g[i] and of g[i] (p[i] - m) */
SM_INLINE void row_sums_grad_body(const float *g, const float *p, int64_t L, float m, double *sg, double *sgx)
{
    lanes16 s = {{0}, {0}}, t = {{0}, {0}};
    int64_t i = 0;
    for (; i + 16 <= L; i += 16) {
        sm_v8f ga = ld8(g + i), gb = ld8(g + i + 8);
        s.a += ga;
        s.b += gb;
        t.a += ga * (ld8(p + i) - m);
        t.b += gb * (ld8(p + i + 8) - m);
    }
    double rs = lanes_total(s), rt = lanes_total(t);
    for (; i < L; i++) { rs += g[i]; rt += (double)g[i] * (p[i] - m); }
    *sg += rs;
    *sgx += rt;
}
SM_CLONES_VOID(row_sums_grad, (const float *g, const float *p, int64_t L, float m, double *sg, double *sgx), (g, p, L, m, sg, sgx))

void sm_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
                                float *running_mean, float *running_var, const float *x,
                                const float *gamma, const float *beta,
                                int64_t N, int64_t C, int64_t L, float momentum, float eps)
{
    int64_t M = N * L;
    #pragma omp parallel for schedule(static) if (M * C > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int64_t n = 0; n < N; n++) s += row_sum(x + (n * C + c) * L, L);
        double mean = M ? s / (double)M : 0;
        /* centred on the float mean; the (mean - fmean)^2 term this drops is
         * below float resolution */
        for (int64_t n = 0; n < N; n++) ss += row_sumsq(x + (n * C + c) * L, L, (float)mean);
        double var = M ? ss / (double)M : 0;
        float invstd = (float)(1.0 / sqrt(var + eps));
        save_mean[c] = (float)mean;
        save_invstd[c] = invstd;
        if (running_mean) {
            double unbiased = M > 1 ? ss / (double)(M - 1) : var;
            running_mean[c] = (1 - momentum) * running_mean[c] + momentum * (float)mean;
            running_var[c] = (1 - momentum) * running_var[c] + momentum * (float)unbiased;
        }
        float w = gamma ? gamma[c] * invstd : invstd;
        float b = (beta ? beta[c] : 0.0f) - (float)mean * w;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * L;
            float *o = out + (n * C + c) * L;
            for (int64_t i = 0; i < L; i++) o[i] = p[i] * w + b;
        }
    }
}

void sm_batchnorm_forward_eval(float *out, const float *x, const float *running_mean, const float *running_var,
                               const float *gamma, const float *beta, int64_t N, int64_t C, int64_t L, float eps)
{
    #pragma omp parallel for schedule(static) if (N * C * L > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        float invstd = (float)(1.0 / sqrt((double)running_var[c] + eps));
        float w = gamma ? gamma[c] * invstd : invstd;
        float b = (beta ? beta[c] : 0.0f) - running_mean[c] * w;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * L;
            float *o = out + (n * C + c) * L;
            for (int64_t i = 0; i < L; i++) o[i] = p[i] * w + b;
        }
    }
}

void sm_batchnorm_backward_train(float *grad_in, float *grad_gamma, float *grad_beta, const float *grad_out,
                                 const float *x, const float *save_mean, const float *save_invstd,
                                 const float *gamma, int64_t N, int64_t C, int64_t L, float scale)
{
    int64_t M = N * L;
    #pragma omp parallel for schedule(static) if (M * C > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        double sum_dy = 0, sum_dy_xhat = 0;
        float mean = save_mean[c], invstd = save_invstd[c];
        for (int64_t n = 0; n < N; n++)
            row_sums_grad(grad_out + (n * C + c) * L, x + (n * C + c) * L, L, mean, &sum_dy, &sum_dy_xhat);
        sum_dy_xhat *= invstd;
        if (grad_gamma) grad_gamma[c] += scale * (float)sum_dy_xhat;
        if (grad_beta) grad_beta[c] += scale * (float)sum_dy;
        if (!grad_in || M == 0) continue;
        float gm = gamma ? gamma[c] : 1.0f;
        /* sums of dxhat are gm times the sums of dy */
        float k = gm * invstd / (float)M;
        float a = (float)(sum_dy), b = (float)(sum_dy_xhat);
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * L, *g = grad_out + (n * C + c) * L;
            float *gi = grad_in + (n * C + c) * L;
            for (int64_t i = 0; i < L; i++) {
                float xhat = (p[i] - mean) * invstd;
                gi[i] += k * ((float)M * g[i] - a - xhat * b);
            }
        }
    }
}

void sm_affine_forward(float *out, const float *x, const float *w, const float *b, int64_t N, int64_t C, int64_t L)
{
    #pragma omp parallel for schedule(static) if (N * C * L > PAR_MIN)
    for (int64_t nc = 0; nc < N * C; nc++) {
        int64_t c = nc % C;
        float wc = w[c], bc = b ? b[c] : 0.0f;
        const float *p = x + nc * L;
        float *o = out + nc * L;
        for (int64_t i = 0; i < L; i++) o[i] = p[i] * wc + bc;
    }
}

void sm_affine_backward(float *grad_in, float *grad_w, float *grad_b, const float *grad_out, const float *x,
                        const float *w, int64_t N, int64_t C, int64_t L, float scale)
{
    for (int64_t c = 0; c < C; c++) {
        double sw = 0, sb = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * L, *g = grad_out + (n * C + c) * L;
            float *gi = grad_in ? grad_in + (n * C + c) * L : NULL;
            for (int64_t i = 0; i < L; i++) {
                if (gi) gi[i] += g[i] * w[c];
                sw += (double)g[i] * p[i];
                sb += g[i];
            }
        }
        if (grad_w) grad_w[c] += scale * (float)sw;
        if (grad_b) grad_b[c] += scale * (float)sb;
    }
}
