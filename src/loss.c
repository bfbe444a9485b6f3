/*
 * loss.c — losses for Siamese and triplet training, with their gradients.
 * Every loss is a mean; the gradient written is scale * d(mean)/d(input).
 *
 * Contrastive (Hadsell, Chopra, LeCun 2006), y = 1 for a genuine pair:
 *   L = 1/N sum y d^2 + (1 - y) max(m - d, 0)^2
 *   dL/dd = 2/N (y d - (1 - y) max(m - d, 0))
 *
 * Triplet (Schroff et al. 2015):  L = 1/N sum max(d_ap - d_an + m, 0)
 *   where active:  dL/dd_ap = 1/N,  dL/dd_an = -1/N;  then through the
 *   distance: euclidean d = sqrt(max(s, eps)) gives dd/da = (a - x)/d,
 *   squared gives 2 (a - x).
 *
 * Binary cross-entropy on probabilities p (clamped to [eps, 1 - eps]):
 *   L = -1/N sum y log p + (1 - y) log(1 - p),  dL/dp = (p - y) / (p (1 - p) N)
 * on logits z (stable form):
 *   L = 1/N sum max(z, 0) - z y + log(1 + e^-|z|),  dL/dz = (sigmoid(z) - y) / N
 *
 * Semi-hard mining (Schroff et al. 2015, FaceNet / OpenFace): every
 * anchor-positive pair (a, p) of the batch takes the negative n with
 * d_ap < d_an < d_ap + margin that is nearest to the anchor (the hardest
 * semi-hard one); when there is none, the nearest negative overall (the
 * hard one). The loss is the mean of max(d_ap - d_an + margin, 0) over all
 * anchor-positive pairs (inactive ones count as 0, as in TensorFlow's
 * triplet_semihard_loss); a semi-hard pick is active by construction.
 *
 * Batch triplet over embeddings e[B,D] with labels (Hermans et al. 2017):
 * D_ij from the rows, G_ij = dL/dD_ij collected while mining, then
 *   dL/de_i = sum_j (G_ij + G_ji) dD_ij/de_i,  dD_ij/de_i = (e_i - e_j)/D_ij
 * (or 2 (e_i - e_j) squared), computed directly (B is a batch, not a gallery).
 */
#include <math.h>
#include <string.h>
#include "nn.h"

double sm_contrastive_loss(float *grad_d, const float *d, const float *y, int64_t N, float margin, float scale)
{
    double loss = 0;
    for (int64_t i = 0; i < N; i++) {
        double hinge = margin - d[i] > 0 ? margin - d[i] : 0;
        loss += y[i] * (double)d[i] * d[i] + (1 - y[i]) * hinge * hinge;
        if (grad_d) grad_d[i] = (float)(scale * 2.0 * (y[i] * d[i] - (1 - y[i]) * hinge) / (double)N);
    }
    return N ? loss / (double)N : 0;
}

/* Distance between rows x and z and the factor f with dd/dx = f (x - z). */
static double row_distance(const float *x, const float *z, int64_t D, int squared, float eps, double *f)
{
    double s = 0;
    for (int64_t i = 0; i < D; i++) { double t = (double)x[i] - z[i]; s += t * t; }
    if (squared) { *f = 2.0; return s; }
    if (s <= eps) { *f = 0.0; return sqrt((double)eps); }
    double d = sqrt(s);
    *f = 1.0 / d;
    return d;
}

double sm_triplet_loss(float *grad_a, float *grad_p, float *grad_n, const float *a, const float *p,
                       const float *n, int64_t N, int64_t D, float margin, int squared, float eps, float scale)
{
    double loss = 0;
    for (int64_t r = 0; r < N; r++) {
        const float *xa = a + r * D, *xp = p + r * D, *xn = n + r * D;
        double fp, fn;
        double dap = row_distance(xa, xp, D, squared, eps, &fp);
        double dan = row_distance(xa, xn, D, squared, eps, &fn);
        double l = dap - dan + margin;
        int active = l > 0;
        if (active) loss += l;
        double g = active ? scale / (double)N : 0;
        for (int64_t i = 0; i < D; i++) {
            double tp = g * fp * ((double)xa[i] - xp[i]), tn = g * fn * ((double)xa[i] - xn[i]);
            if (grad_a) grad_a[r * D + i] = (float)(tp - tn);
            if (grad_p) grad_p[r * D + i] = (float)(-tp);
            if (grad_n) grad_n[r * D + i] = (float)tn;
        }
    }
    return N ? loss / (double)N : 0;
}

double sm_bce_loss(float *grad_p, const float *p, const float *y, int64_t N, float eps, float scale)
{
    double loss = 0;
    for (int64_t i = 0; i < N; i++) {
        double q = p[i] < eps ? eps : p[i] > 1 - eps ? 1 - eps : p[i];
        loss -= y[i] * log(q) + (1 - y[i]) * log(1 - q);
        if (grad_p) grad_p[i] = (float)(scale * (q - y[i]) / (q * (1 - q) * (double)N));
    }
    return N ? loss / (double)N : 0;
}

double sm_bce_logits_loss(float *grad_z, const float *z, const float *y, int64_t N, float scale)
{
    double loss = 0;
    for (int64_t i = 0; i < N; i++) {
        double v = z[i];
        loss += (v > 0 ? v : 0) - v * y[i] + log1p(exp(-fabs(v)));
        double sig = v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v));
        if (grad_z) grad_z[i] = (float)(scale * (sig - y[i]) / (double)N);
    }
    return N ? loss / (double)N : 0;
}

double sm_batch_triplet_loss(float *grad_e, const float *e, const int64_t *labels, int64_t B, int64_t D,
                             float margin, int squared, float eps, sm_mining mining, float scale,
                             double *work, int64_t *active)
{
    double *dist = work, *G = work + B * B;
    /* dist holds D_ij; the factor f_ij with dD_ij/de_i = f_ij (e_i - e_j) is
     * recomputed in the gradient loop. */
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < B; j++) {
            double f;
            dist[i * B + j] = i == j ? 0 : row_distance(e + i * D, e + j * D, D, squared, eps, &f);
        }
    memset(G, 0, (size_t)(B * B) * sizeof(double));
    double loss = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < B; i++) {
        if (mining == SM_MINE_BATCH_HARD) {
            int64_t jp = -1, kn = -1;
            for (int64_t j = 0; j < B; j++) {
                if (j == i) continue;
                if (labels[j] == labels[i]) {
                    if (jp < 0 || dist[i * B + j] > dist[i * B + jp]) jp = j;
                } else if (kn < 0 || dist[i * B + j] < dist[i * B + kn]) {
                    kn = j;
                }
            }
            if (jp < 0 || kn < 0) continue;
            count++;
            double l = dist[i * B + jp] - dist[i * B + kn] + margin;
            if (l > 0) {
                loss += l;
                G[i * B + jp] += 1;
                G[i * B + kn] -= 1;
            }
        } else if (mining == SM_MINE_SEMIHARD) {
            for (int64_t j = 0; j < B; j++) {
                if (j == i || labels[j] != labels[i]) continue;
                double dap = dist[i * B + j];
                int64_t semi = -1, hard = -1;
                for (int64_t k = 0; k < B; k++) {
                    if (labels[k] == labels[i]) continue;
                    double dan = dist[i * B + k];
                    if (hard < 0 || dan < dist[i * B + hard]) hard = k;
                    if (dan > dap && dan < dap + margin && (semi < 0 || dan < dist[i * B + semi])) semi = k;
                }
                if (hard < 0) continue; /* a batch of one identity: no triplet */
                int64_t kn = semi >= 0 ? semi : hard;
                count++;
                double l = dap - dist[i * B + kn] + margin;
                if (l > 0) {
                    loss += l;
                    G[i * B + j] += 1;
                    G[i * B + kn] -= 1;
                }
            }
        } else {
            for (int64_t j = 0; j < B; j++) {
                if (j == i || labels[j] != labels[i]) continue;
                for (int64_t k = 0; k < B; k++) {
                    if (labels[k] == labels[i]) continue;
                    double l = dist[i * B + j] - dist[i * B + k] + margin;
                    if (l > 0) {
                        loss += l;
                        count++;
                        G[i * B + j] += 1;
                        G[i * B + k] -= 1;
                    }
                }
            }
        }
    }
    if (active) *active = count;
    double norm = count ? 1.0 / (double)count : 0;
    if (grad_e) {
        for (int64_t i = 0; i < B; i++) {
            float *gi = grad_e + i * D;
            for (int64_t d = 0; d < D; d++) gi[d] = 0;
            for (int64_t j = 0; j < B; j++) {
                double c = G[i * B + j] + G[j * B + i];
                if (j == i || c == 0) continue;
                double f;
                row_distance(e + i * D, e + j * D, D, squared, eps, &f);
                double k = scale * norm * c * f;
                for (int64_t d = 0; d < D; d++) gi[d] += (float)(k * ((double)e[i * D + d] - e[j * D + d]));
            }
        }
    }
    return loss * norm;
}
