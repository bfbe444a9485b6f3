/*
 * distance.c — distances between paired rows a[n,:], b[n,:] of [N,D] tensors,
 * and the component-wise |a - b| of Koch et al.'s Siamese head.
 *
 *   euclidean    d = sqrt(max(s, eps)), s = sum (a - b)^2
 *                dd/da = (a - b) / d when s > eps, else 0 (the clamp is flat)
 *   sqeuclidean  d = s,              dd/da = 2 (a - b)
 *   cosine       d = 1 - a.b / q, q = max(|a||b|, eps)
 *                dd/da = -(b / q - (a.b) a / (|a|^2 q))  when |a||b| > eps
 *   every dd/db is the mirror image (swap a and b).
 */
#include <math.h>
#include "nn.h"

void sm_pair_distance_forward(float *d, const float *a, const float *b, int64_t N, int64_t D,
                              sm_pair_metric m, float eps)
{
    for (int64_t n = 0; n < N; n++) {
        const float *x = a + n * D, *y = b + n * D;
        if (m == SM_PAIR_COSINE) {
            double xy = 0, xx = 0, yy = 0;
            for (int64_t i = 0; i < D; i++) { xy += (double)x[i] * y[i]; xx += (double)x[i] * x[i]; yy += (double)y[i] * y[i]; }
            double q = sqrt(xx) * sqrt(yy);
            d[n] = (float)(1.0 - xy / (q > eps ? q : eps));
            continue;
        }
        double s = 0;
        for (int64_t i = 0; i < D; i++) { double t = (double)x[i] - y[i]; s += t * t; }
        d[n] = m == SM_PAIR_SQEUCLIDEAN ? (float)s : (float)sqrt(s > eps ? s : eps);
    }
}

void sm_pair_distance_backward(float *grad_a, float *grad_b, const float *grad_d, const float *a,
                               const float *b, const float *d, int64_t N, int64_t D, sm_pair_metric m, float eps)
{
    for (int64_t n = 0; n < N; n++) {
        const float *x = a + n * D, *y = b + n * D;
        float *gx = grad_a ? grad_a + n * D : NULL, *gy = grad_b ? grad_b + n * D : NULL;
        double g = grad_d[n];
        if (m == SM_PAIR_COSINE) {
            double xy = 0, xx = 0, yy = 0;
            for (int64_t i = 0; i < D; i++) { xy += (double)x[i] * y[i]; xx += (double)x[i] * x[i]; yy += (double)y[i] * y[i]; }
            double q = sqrt(xx) * sqrt(yy);
            if (q <= eps) {
                /* d = 1 - a.b / eps: linear in each side */
                for (int64_t i = 0; i < D; i++) {
                    if (gx) gx[i] -= (float)(g * y[i] / eps);
                    if (gy) gy[i] -= (float)(g * x[i] / eps);
                }
                continue;
            }
            for (int64_t i = 0; i < D; i++) {
                if (gx) gx[i] -= (float)(g * (y[i] / q - xy * x[i] / (xx * q)));
                if (gy) gy[i] -= (float)(g * (x[i] / q - xy * y[i] / (yy * q)));
            }
            continue;
        }
        double k;
        if (m == SM_PAIR_SQEUCLIDEAN) {
            k = 2.0 * g;
        } else {
            double s = (double)d[n] * d[n];
            if (s <= eps) continue; /* the clamp: zero gradient */
            k = g / d[n];
        }
        for (int64_t i = 0; i < D; i++) {
            float t = (float)(k * ((double)x[i] - y[i]));
            if (gx) gx[i] += t;
            if (gy) gy[i] -= t;
        }
    }
}

void sm_absdiff_forward(float *out, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = fabsf(a[i] - b[i]);
}

void sm_absdiff_backward(float *grad_a, float *grad_b, const float *grad_out, const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float diff = a[i] - b[i];
        float g = diff > 0 ? grad_out[i] : diff < 0 ? -grad_out[i] : 0.0f;
        if (grad_a) grad_a[i] += g;
        if (grad_b) grad_b[i] -= g;
    }
}

/* Row-wise L2 normalisation: y = x / n, n = max(|x|, eps);
 * dx = (dy - y (y . dy)) / n where |x| > eps, else dy / eps. */
void sm_l2normalize_forward(float *y, float *norms, const float *x, int64_t N, int64_t D, float eps)
{
    for (int64_t r = 0; r < N; r++) {
        double s = 0;
        for (int64_t i = 0; i < D; i++) s += (double)x[r * D + i] * x[r * D + i];
        double n = sqrt(s);
        if (n < eps) n = eps;
        norms[r] = (float)n;
        for (int64_t i = 0; i < D; i++) y[r * D + i] = (float)(x[r * D + i] / n);
    }
}

void sm_l2normalize_backward(float *grad_x, const float *grad_y, const float *y, const float *norms,
                             int64_t N, int64_t D, float eps)
{
    for (int64_t r = 0; r < N; r++) {
        const float *yr = y + r * D, *gr = grad_y + r * D;
        double n = norms[r], dot = 0;
        if (n > eps)
            for (int64_t i = 0; i < D; i++) dot += (double)yr[i] * gr[i];
        for (int64_t i = 0; i < D; i++) grad_x[r * D + i] += (float)((gr[i] - yr[i] * dot) / n);
    }
}
