/*
 * activation.c — element-wise activations, PReLU and inverted dropout.
 * The loops are simple selects and 0/1 factors that the compiler turns
 * into vector blends (built at -O3): a data-dependent branch would
 * mispredict on half of random-signed inputs.
 *
 *   relu(x) = max(x, 0)                 relu'   = [x > 0]
 *   leaky(x) = x > 0 ? x : slope x      leaky'  = x > 0 ? 1 : slope
 *   relu6(x) = min(max(x, 0), 6)        relu6'  = [0 < x < 6]   (TF clipByValue(x, 0, 6))
 *   sigmoid(x) = 1 / (1 + e^-x)         sigmoid' = y (1 - y)      (y = output)
 *   tanh(x)                              tanh'   = 1 - y^2
 *   prelu(x) = x > 0 ? x : a[c] x       d/da[c] = x [x <= 0]
 *   dropout: y = x m, m = 0 w.p. p else 1/(1-p), so E[y] = x; dy/dx = m.
 */
#include <math.h>
#include "nn.h"

#define PAR_MIN 32768 /* below this many elements, threads cost more than they save */
/* The loops below say if (parallel: ...): a bare if clause on a combined
 * "parallel for simd" also governs the simd part, so below PAR_MIN GCC ran
 * a scalar, branching loop (~5 ns per element on random signs, 30x slower). */

static float sigmoidf(float x)
{
    /* Split by sign so exp never overflows. */
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

void sm_activation_forward(float *out, const float *in, int64_t n, sm_activation f, float slope)
{
    switch (f) {
    case SM_ACT_RELU:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case SM_ACT_LEAKY_RELU:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : slope * in[i];
        break;
    case SM_ACT_SIGMOID:
        #pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) out[i] = sigmoidf(in[i]);
        break;
    case SM_ACT_TANH:
        #pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) out[i] = tanhf(in[i]);
        break;
    case SM_ACT_RELU6:
        #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = in[i] > 0.0f ? in[i] : 0.0f;
            out[i] = v < 6.0f ? v : 6.0f;
        }
        break;
    }
}

void sm_activation_backward(float *grad_in, const float *grad_out, const float *in, const float *out,
                            int64_t n, sm_activation f, float slope)
{
    switch (f) {
    case SM_ACT_RELU:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] += grad_out[i] * (float)(in[i] > 0);
        break;
    case SM_ACT_LEAKY_RELU:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float pos = (float)(in[i] > 0);
            grad_in[i] += grad_out[i] * (pos + slope * (1.0f - pos));
        }
        break;
    case SM_ACT_SIGMOID:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] += grad_out[i] * out[i] * (1.0f - out[i]);
        break;
    case SM_ACT_TANH:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] += grad_out[i] * (1.0f - out[i] * out[i]);
        break;
    case SM_ACT_RELU6:
        #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] += grad_out[i] * (float)(in[i] > 0 && in[i] < 6.0f);
        break;
    }
}

void sm_activation_grad(float *grad_in, const float *grad_out, const float *in, const float *out, int64_t n,
                        sm_activation f, float slope)
{
    switch (f) {
    case SM_ACT_RELU:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] = grad_out[i] * (float)(in[i] > 0); /* a select would not vectorise */
        break;
    case SM_ACT_LEAKY_RELU:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float pos = (float)(in[i] > 0);
            grad_in[i] = grad_out[i] * (pos + slope * (1.0f - pos));
        }
        break;
    case SM_ACT_SIGMOID:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] = grad_out[i] * out[i] * (1.0f - out[i]);
        break;
    case SM_ACT_TANH:
        #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] = grad_out[i] * (1.0f - out[i] * out[i]);
        break;
    case SM_ACT_RELU6:
        /* in place the layer passes its output as in: 0 < y < 6 exactly when 0 < x < 6 */
        #pragma omp parallel for simd schedule(static) if (n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) grad_in[i] = grad_out[i] * (float)(in[i] > 0 && in[i] < 6.0f);
        break;
    }
}

void sm_prelu_forward(float *out, const float *in, const float *a, int64_t N, int64_t C, int64_t L)
{
    #pragma omp parallel for schedule(static) if (N * C * L > PAR_MIN)
    for (int64_t nc = 0; nc < N * C; nc++) {
        float s = a[nc % C];
        const float *x = in + nc * L;
        float *y = out + nc * L;
        for (int64_t i = 0; i < L; i++) y[i] = x[i] > 0 ? x[i] : s * x[i];
    }
}

void sm_prelu_backward(float *grad_in, float *grad_a, const float *grad_out, const float *in,
                       const float *a, int64_t N, int64_t C, int64_t L, float scale)
{
    for (int64_t c = 0; c < C; c++) {
        double ga = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *x = in + (n * C + c) * L, *go = grad_out + (n * C + c) * L;
            float *gi = grad_in ? grad_in + (n * C + c) * L : NULL;
            for (int64_t i = 0; i < L; i++) {
                if (x[i] > 0) {
                    if (gi) gi[i] += go[i];
                } else {
                    if (gi) gi[i] += a[c] * go[i];
                    ga += (double)go[i] * x[i];
                }
            }
        }
        if (grad_a) grad_a[c] += scale * (float)ga;
    }
}

void sm_dropout_forward(float *out, float *mask, const float *in, int64_t n, float p, sm_rng *rng)
{
    /* Drawn sequentially so a seed gives the same mask whatever the threads. */
    float keep = p < 1 ? 1.0f / (1.0f - p) : 0.0f;
    uint64_t u[256];
    for (int64_t i0 = 0; i0 < n; i0 += 256) {
        int64_t m = n - i0 < 256 ? n - i0 : 256;
        sm_rng_fill(rng, u, m);
        /* the same test as sm_rng_uniform(rng) < p, on the same numbers */
        for (int64_t i = 0; i < m; i++) {
            mask[i0 + i] = (double)(u[i] >> 11) * 0x1.0p-53 < p ? 0.0f : keep;
            out[i0 + i] = in[i0 + i] * mask[i0 + i];
        }
    }
}

void sm_mul_accumulate(float *grad_in, const float *grad_out, const float *mask, int64_t n)
{
    #pragma omp parallel for simd schedule(static) if (parallel: n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) grad_in[i] += grad_out[i] * mask[i];
}
