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

#define PAR_MIN 32768

void sm_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
                                float *running_mean, float *running_var, const float *x,
                                const float *gamma, const float *beta,
                                int64_t N, int64_t C, int64_t L, float momentum, float eps)
{
    int64_t M = N * L;
    #pragma omp parallel for schedule(static) if (M * C > PAR_MIN)
    for (int64_t c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * L;
            for (int64_t i = 0; i < L; i++) s += p[i];
        }
        double mean = M ? s / (double)M : 0;
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * L;
            for (int64_t i = 0; i < L; i++) { double dv = p[i] - mean; ss += dv * dv; }
        }
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
        for (int64_t n = 0; n < N; n++) {
            const float *p = x + (n * C + c) * L, *g = grad_out + (n * C + c) * L;
            for (int64_t i = 0; i < L; i++) {
                sum_dy += g[i];
                sum_dy_xhat += (double)g[i] * (p[i] - mean) * invstd;
            }
        }
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
