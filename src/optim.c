/*
 * optim.c — parameter updates, one tensor of n floats per call.
 *
 * SGD (torch.optim.SGD, dampening 0):  g' = g + wd w;  v = mu v + g';
 *   step = nesterov ? g' + mu v : v;  w -= lr step   (plain SGD when mu = 0)
 * Adam:  g' = g + wd w (L2) or, for AdamW, w -= lr wd w (decoupled);
 *   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;
 *   w -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * RMSprop:  g' = g + wd w;  s = rho s + (1 - rho) g'^2;  w -= lr g' / (sqrt(s) + eps)
 */
#include <math.h>
#include "nn.h"

#define PAR_MIN 65536 /* "if (parallel: ...)": a bare if would also turn off the simd (see activation.c) */

void sm_sgd_step(float *w, float *v, const float *g, int64_t n, float lr, float momentum, float wd, int nesterov)
{
    #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        if (momentum != 0) {
            v[i] = momentum * v[i] + gi;
            gi = nesterov ? gi + momentum * v[i] : v[i];
        }
        w[i] -= lr * gi;
    }
}

void sm_adam_step(float *w, float *m, float *v, const float *g, int64_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int decoupled, int64_t t)
{
    float bc1 = 1.0f - (float)pow(beta1, (double)t), bc2 = 1.0f - (float)pow(beta2, (double)t);
    float step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
    #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) w[i] -= lr * wd * w[i];
        else gi += wd * w[i];
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        w[i] -= step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}

void sm_rmsprop_step(float *w, float *s, const float *g, int64_t n, float lr, float rho, float eps, float wd)
{
    #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        s[i] = rho * s[i] + (1 - rho) * gi * gi;
        w[i] -= lr * gi / (sqrtf(s[i]) + eps);
    }
}

double sm_sumsq(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
