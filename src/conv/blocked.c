/*
 * blocked.c — direct convolution for inference, on weights packed
 * once by panels of output channels: for small batches (one face), where
 * Winograd's transforms and im2col's columns move more data than the
 * products need, and where the layers are too small to share out well
 * between threads.
 *
 * Shapes: in [N,Cin,H,W], weight [Cout,Cin,kh,kw] (one group, Cout a
 * multiple of 16, any kernel, stride, dilation and padding), packed weight
 * wb [Cout, K = Cin*kh*kw], bias [Cout] or NULL, out [N,Cout,Ho,Wo]:
 *
 *   out[n,o,y,x] = b[o] + sum_{c,i,j} w[o,c,i,j] xp[n, c, y*sh + i*dh, x*sw + j*dw]
 *
 * (xp = the input zero-padded by pt, pl at the top/left), plus res[n,o,y,x]
 * when a residual is given (a residual block's sum, fused), then max(., 0)
 * when relu is set. wb holds panels of 32 output channels (the last one 16
 * when Cout is an odd multiple of 16): the panel of channels [o0, o0 + ob)
 * starts at o0 * K and holds w[o0 + r][k] at k * ob + r, so one k gives
 * whole vectors of output channels.
 *
 * Each thread copies the rows of a sample it needs into zero-padded planes
 * of its own (Wp columns per row: exactly the columns the outputs read), so
 * that the input a tap reads for output (y, x) is plane[(y*sh + i*dh) * Wp
 * + x*sw + j*dw] (y counted from the thread's first row)
 * with no bounds test. A register block is PB output positions times the
 * panel's vectors of 16 channels: for each k = (c, i, j) the block loads
 * the weight vectors once and multiplies them by the PB inputs, broadcast
 * (AVX-512: 12 positions x 2 vectors = 24 accumulators, 14 loads per 24
 * fused multiply-adds). Positions run along an output row, PB at a time;
 * with stride 1 they run along the whole plane as one flattened row of
 * Wp-wide rows (positions with x >= Wo read the next row and are dropped),
 * so a block does not stop at the end of a short row. Blocks past the end
 * of a row or of the plane read up to PB * sw floats past the last plane,
 * which the workspace keeps zero.
 *
 * The threads share out either the output rows (each pads its band of
 * rows and reads every weight) or, when the weights outweigh the input,
 * the panels (each pads the whole input and reads its panels' weights).
 * Nothing one thread writes is read by another, so one parallel region
 * without a barrier does the layer.
 */
#pragma GCC diagnostic ignored "-Wpsabi" /* vectors passed between inlined helpers only */
/* multiply-adds fused where the target has FMA (the build turns contraction
 * off globally for reproducible scalar code; these sums reassociate anyway) */
#pragma GCC optimize("fp-contract=fast")
#include <math.h>
#include <omp.h>
#include <string.h>
#include "conv/kernels.h"
#include "simd.h"

typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4))); /* unaligned loads and stores */
typedef int32_t v16i __attribute__((vector_size(64)));

#define OB 32      /* output channels per packed panel */
#define PB_MAX 12  /* positions per register block (the widest path's) */

typedef struct {
    SM_CONV_SHAPE_FIELDS;
    int64_t K, Hp, Wp, plane; /* plane = Hp * Wp */
    int flat;                 /* stride 1 along x: positions flattened over the plane */
    int64_t rows, row_len;    /* position rows and positions per row */
} bdims;

static bdims bdims_of(const sm_tensor *out, const sm_tensor *in, const sm_conv2d_params *p)
{
    bdims d;
    SM_CONV_SHAPE_SET(d, in, out);
    d.K = d.Cin * p->kh * p->kw;
    d.Hp = (d.Ho - 1) * p->sh + (int64_t)(p->kh - 1) * p->dh + 1;
    d.Wp = (d.Wo - 1) * p->sw + (int64_t)(p->kw - 1) * p->dw + 1;
    d.plane = d.Hp * d.Wp;
    d.flat = p->sw == 1 && p->sh == 1;
    /* flattened: one row of the positions y*Wp + x up to the last output */
    d.rows = d.flat ? 1 : d.Ho;
    d.row_len = d.flat ? (d.Ho - 1) * d.Wp + d.Wo : d.Wo;
    return d;
}

/* Floats past the last plane that a block may read. */
static int64_t slack(const sm_conv2d_params *p)
{
    return (int64_t)PB_MAX * p->sw + 16;
}

static int threads(void)
{
    return omp_in_parallel() ? 1 : omp_get_max_threads();
}

/* Floats of one thread's scratch: the padded planes of one sample (a band
 * of rows or all of them), the slack after them, and with 8-bit weights
 * the panel being used, in floats. */
static int64_t per_thread(const bdims *d, const sm_conv2d_params *p, int q8)
{
    return d->Cin * d->plane + slack(p) + (q8 ? d->K * OB : 0);
}

/* The weight a pack function (fname) takes: contiguous [Cout,Cin,kh,kw],
 * Cout a multiple of 16; its shape string in sw. */
static sm_status pack_weight_check(sm_err *err, const char *fname, const sm_tensor *weight,
                                   char sw[SM_SHAPE_STR_LEN])
{
    sm_shape_str(sw, SM_SHAPE_STR_LEN, weight->ndim, weight->shape);
    if (weight->ndim != 4 || !sm_tensor_is_contiguous(weight) || weight->shape[0] % 16 != 0)
        return sm_fail(err, SM_EINVAL,
                       "%s: weight must be a contiguous [Cout,Cin,kh,kw] tensor with Cout a multiple of 16, got %s",
                       fname, sw);
    return SM_OK;
}

sm_status sm_conv2d_blocked_pack_check(sm_err *err, const sm_tensor *wb, const sm_tensor *weight)
{
    char sw[SM_SHAPE_STR_LEN], sp[SM_SHAPE_STR_LEN];
    sm_status st = pack_weight_check(err, "conv2d_blocked_pack", weight, sw);
    if (st) return st;
    sm_shape_str(sp, sizeof sp, wb->ndim, wb->shape);
    int64_t K = weight->shape[1] * weight->shape[2] * weight->shape[3];
    if (wb->ndim != 2 || wb->shape[0] != weight->shape[0] || wb->shape[1] != K || !sm_tensor_is_contiguous(wb))
        return sm_fail(err, SM_EINVAL, "conv2d_blocked_pack: packed weight %s should be [%lld,%lld] for weight %s",
                       sp, (long long)weight->shape[0], (long long)K, sw);
    return SM_OK;
}

void sm_conv2d_blocked_pack(sm_tensor *wb, const sm_tensor *weight)
{
    int64_t cout = wb->shape[0], K = wb->shape[1];
    for (int64_t o0 = 0; o0 < cout; o0 += OB) {
        int64_t ob = cout - o0 < OB ? cout - o0 : OB;
        float *dst = wb->data + o0 * K;
        for (int64_t r = 0; r < ob; r++)
            for (int64_t k = 0; k < K; k++) dst[k * ob + r] = weight->data[(o0 + r) * K + k];
    }
}

/* ---- weights on an 8-bit grid ---------------------------------------------
 * Weights quantised to 8 bits (face-api's are, per tensor; folding a
 * per-channel scale keeps them on a grid per output channel) are stored as
 * their levels: w[o,k] = offset[o] + step[o] * q, q in 0..255, kept as the
 * int8 q - 128 in the float panels' layout, four to a float of wq. A
 * thread turns a panel back into floats (offset + 128 step + step (q -
 * 128), within an ulp or two of w) just before using it: a quarter of the
 * bytes cross from memory, where a face's deep layers wait for them. */

sm_status sm_conv2d_blocked_pack8_check(sm_err *err, const sm_tensor *wq, const sm_tensor *grid,
                                        const sm_tensor *weight)
{
    char sw[SM_SHAPE_STR_LEN], sq[SM_SHAPE_STR_LEN], sg[SM_SHAPE_STR_LEN];
    sm_status st = pack_weight_check(err, "conv2d_blocked_pack8", weight, sw);
    if (st) return st;
    sm_shape_str(sq, sizeof sq, wq->ndim, wq->shape);
    sm_shape_str(sg, sizeof sg, grid->ndim, grid->shape);
    int64_t n = sm_numel(weight->ndim, weight->shape);
    if (wq->ndim != 1 || wq->shape[0] != n / 4 || !sm_tensor_is_contiguous(wq))
        return sm_fail(err, SM_EINVAL, "conv2d_blocked_pack8: 8-bit weight %s should be [%lld] for weight %s", sq,
                       (long long)(n / 4), sw);
    if (grid->ndim != 2 || grid->shape[0] != 2 || grid->shape[1] != weight->shape[0] ||
        !sm_tensor_is_contiguous(grid))
        return sm_fail(err, SM_EINVAL, "conv2d_blocked_pack8: grid %s should be [2,%lld] (offsets, steps)", sg,
                       (long long)weight->shape[0]);
    return SM_OK;
}

int sm_conv2d_blocked_pack8(sm_tensor *wq, const sm_tensor *grid, const sm_tensor *weight)
{
    int64_t cout = weight->shape[0], K = weight->shape[1] * weight->shape[2] * weight->shape[3];
    const float *off = grid->data, *step = grid->data + cout;
    int8_t *q = (int8_t *)wq->data;
    for (int64_t o0 = 0; o0 < cout; o0 += OB) {
        int64_t ob = cout - o0 < OB ? cout - o0 : OB;
        for (int64_t r = 0; r < ob; r++) {
            int64_t o = o0 + r;
            /* a level within 2^-20 of the channel's largest magnitude (a few
             * ulps) counts as on the grid */
            double big = fabs((double)off[o]) + 255.0 * fabs((double)step[o]), tol = big * 0x1p-20;
            /* a weight on the grid is within tol of a level: far from a
             * rounding tie, so the reciprocal's rounding cannot pick another */
            double inv = step[o] != 0 ? 1.0 / step[o] : 0;
            for (int64_t k = 0; k < K; k++) {
                double w = weight->data[o * K + k];
                double lv = nearbyint((w - off[o]) * inv);
                if (!(lv >= 0 && lv <= 255 && fabs(off[o] + step[o] * lv - w) <= tol)) return 0;
                q[o0 * K + k * ob + r] = (int8_t)(lv - 128);
            }
        }
    }
    return 1;
}

sm_status sm_conv2d_blocked_check(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wb,
                                  const sm_tensor *bias, const sm_conv2d_params *p)
{
    if (p->groups != 1) return sm_fail(err, SM_EINVAL, "conv2d_blocked: needs one group, got %d", p->groups);
    if (in->ndim != 4) {
        char si[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "conv2d_blocked: expected 4-D input [N,C,H,W], got %s",
                       sm_shape_str(si, sizeof si, in->ndim, in->shape));
    }
    int64_t K = in->shape[1] * p->kh * p->kw;
    if (wb->ndim != 2 || wb->shape[1] != K || wb->shape[0] % 16 != 0 || !sm_tensor_is_contiguous(wb)) {
        char sw[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "conv2d_blocked: packed weight %s should be [Cout,%lld], Cout a multiple of 16",
                       sm_shape_str(sw, sizeof sw, wb->ndim, wb->shape), (long long)K);
    }
    /* the ordinary check on a stand-in weight of the original shape */
    int64_t ws[4] = { wb->shape[0], in->shape[1], p->kh, p->kw };
    sm_tensor w;
    sm_tensor_init(&w, wb->data, 4, ws);
    sm_status st = sm_conv2d_check(err, out, in, &w, bias, p);
    if (st) return st;
    /* the taps' input offsets are int32 */
    bdims d = bdims_of(out, in, p);
    if (d.Cin * d.plane + slack(p) > INT32_MAX)
        return sm_fail(err, SM_EINVAL, "conv2d_blocked: %lld padded input channels of %lldx%lld are too large",
                       (long long)d.Cin, (long long)d.Hp, (long long)d.Wp);
    return SM_OK;
}

sm_status sm_conv2d_blocked_check8(sm_err *err, const sm_tensor *out, const sm_tensor *in, const sm_tensor *wq,
                                   const sm_tensor *grid, const sm_tensor *bias, const sm_conv2d_params *p)
{
    if (out->ndim != 4 || in->ndim != 4) {
        char so[SM_SHAPE_STR_LEN], si[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "conv2d_blocked: expected 4-D input and output, got %s and %s",
                       sm_shape_str(si, sizeof si, in->ndim, in->shape),
                       sm_shape_str(so, sizeof so, out->ndim, out->shape));
    }
    int64_t cout = out->shape[1], K = in->shape[1] * p->kh * p->kw;
    char sq[SM_SHAPE_STR_LEN], sg[SM_SHAPE_STR_LEN];
    sm_shape_str(sq, sizeof sq, wq->ndim, wq->shape);
    sm_shape_str(sg, sizeof sg, grid->ndim, grid->shape);
    if (cout % 16 != 0 || wq->ndim != 1 || wq->shape[0] * 4 != cout * K || !sm_tensor_is_contiguous(wq))
        return sm_fail(err, SM_EINVAL, "conv2d_blocked: 8-bit weight %s should be [%lld], Cout %lld a multiple of 16",
                       sq, (long long)(cout * K / 4), (long long)cout);
    if (grid->ndim != 2 || grid->shape[0] != 2 || grid->shape[1] != cout || !sm_tensor_is_contiguous(grid))
        return sm_fail(err, SM_EINVAL, "conv2d_blocked: grid %s should be [2,%lld] (offsets, steps)", sg,
                       (long long)cout);
    /* the float check on a stand-in of the float panels' shape */
    int64_t ps[2] = { cout, K };
    sm_tensor wb;
    sm_tensor_init(&wb, grid->data, 2, ps);
    return sm_conv2d_blocked_check(err, out, in, &wb, bias, p);
}

sm_status sm_conv2d_blocked_check_residual(sm_err *err, const sm_tensor *out, const sm_tensor *res)
{
    if (res->ndim != out->ndim || memcmp(res->shape, out->shape, (size_t)out->ndim * sizeof(int64_t)) ||
        !sm_tensor_is_contiguous(res)) {
        char so[SM_SHAPE_STR_LEN], sr[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "conv2d_blocked: residual %s should be a contiguous tensor of the output's shape %s",
                       sm_shape_str(sr, sizeof sr, res->ndim, res->shape),
                       sm_shape_str(so, sizeof so, out->ndim, out->shape));
    }
    return SM_OK;
}

/* Workspace: each thread's planes (and float panel), then the K input
 * offsets of the taps (int32, stored in floats' room). */
size_t sm_conv2d_blocked_workspace(const sm_tensor *out, const sm_tensor *in, const sm_conv2d_params *p, int q8)
{
    bdims d = bdims_of(out, in, p);
    return (size_t)(threads() * per_thread(&d, p, q8) + d.K);
}

/* planes[c] <- rows [r0, r0 + rows) of sample n's zero-padded planes
 * (Hp x Wp, origin at -pt, -pl), the planes pstride floats apart; the
 * slack after the last plane is zeroed. */
static void pad_band(float *planes, int64_t pstride, const float *x, const bdims *d, const sm_conv2d_params *p,
                     int64_t n, int64_t r0, int64_t rows)
{
    /* columns [lo, hi) of a plane row come from the image */
    int64_t lo = p->pl, hi = p->pl + d->W < d->Wp ? p->pl + d->W : d->Wp;
    for (int64_t c = 0; c < d->Cin; c++) {
        float *dst = planes + c * pstride;
        const float *src = x + (n * d->Cin + c) * d->H * d->W;
        for (int64_t r = 0; r < rows; r++) {
            float *row = dst + r * d->Wp;
            int64_t y = r0 + r - p->pt;
            if (y < 0 || y >= d->H || hi <= lo) {
                memset(row, 0, (size_t)d->Wp * sizeof(float));
                continue;
            }
            memset(row, 0, (size_t)lo * sizeof(float));
            memcpy(row + lo, src + y * d->W, (size_t)(hi - lo) * sizeof(float));
            memset(row + hi, 0, (size_t)(d->Wp - hi) * sizeof(float));
        }
    }
    memset(planes + d->Cin * pstride, 0, (size_t)slack(p) * sizeof(float));
}

static inline v16 vload(const float *p)
{
    return *(const v16u *)p;
}

/* acc[r][v] = sum_k x[kofs[k] + r*STEP] w[k*ob + v*16 ..], r < PB, v < NV,
 * then bias and ReLU, stored to buf[r][v*16 ..]. STEP, PB and NV are
 * constants at every call, so acc stays in registers. */
SM_INLINE void block(float *buf, const float *w, int64_t ob, const float *x, const int32_t *kofs, int64_t K,
                     const float *bias, int relu, const int STEP, const int PB, const int NV)
{
    v16 acc[PB_MAX][2];
    for (int r = 0; r < PB; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = (v16){0};
    for (int64_t k = 0; k < K; k++) {
        const float *xk = x + kofs[k];
        v16 w0 = vload(w + k * ob), w1 = NV > 1 ? vload(w + k * ob + 16) : w0;
        for (int r = 0; r < PB; r++) {
            float xv = xk[r * STEP];
            acc[r][0] += xv * w0;
            if (NV > 1) acc[r][1] += xv * w1;
        }
    }
    for (int v = 0; v < NV; v++) {
        v16 b = bias ? vload(bias + v * 16) : (v16){0};
        for (int r = 0; r < PB; r++) {
            v16 y = acc[r][v] + b;
            if (relu) y = (v16)((v16i)y & (y > 0)); /* the mask is all ones where y > 0 */
            *(v16u *)(buf + r * OB + v * 16) = y;
        }
    }
}

/* One block of up to PB positions for one panel; nv = 1 or 2 vectors of
 * 16 channels at once (the AVX2 and portable paths take one, to keep
 * their accumulators in registers). PB is the path's register block. */
SM_INLINE void block_any(float *buf, const float *w, int64_t ob, const float *x, const int32_t *kofs, int64_t K,
                         const float *bias, int relu, int step, int pb, const int PB, const int NV)
{
    /* the block widths compiled: PB, and PB/2 for short rows and tails */
    if (step == 1) {
        if (pb <= PB / 2) block(buf, w, ob, x, kofs, K, bias, relu, 1, PB / 2, NV);
        else block(buf, w, ob, x, kofs, K, bias, relu, 1, PB, NV);
    } else if (step == 2) {
        if (pb <= PB / 2) block(buf, w, ob, x, kofs, K, bias, relu, 2, PB / 2, NV);
        else block(buf, w, ob, x, kofs, K, bias, relu, 2, PB, NV);
    } else {
        /* other strides: one position at a time */
        for (int r = 0; r < pb; r++)
            block(buf + r * OB, w, ob, x + r * step, kofs, K, bias, relu, 1, 1, NV);
    }
}

/* One thread's share of a sample: output rows [y0, y1) for the panels
 * [p0, p1), on planes padded for those rows only (from padded row y0*sh). */
typedef struct {
    const bdims *d;
    const sm_conv2d_params *p;
    const float *in, *wb, *bias;
    int32_t *kofs; /* the taps' offsets in planes pstride floats apart */
    float *out, *planes;
    int64_t pstride;
    const int8_t *q;   /* 8-bit weights (wb NULL) ... */
    const float *grid; /* ... and their offsets and steps */
    float *panel;      /* the float panel made from them */
    const float *res;  /* added before the ReLU, shaped as out, or NULL */
    int64_t n, y0, y1, p0, p1;
    int relu;
} share;

/* Block of positions [pos0, pos0 + pb) of output row y (flattened: of the
 * band's flattened rows, y unused) for one panel. */
SM_INLINE void run_block(const share *sh, const float *w, int64_t panel, int64_t y, int64_t pos0, int64_t pb,
                         const int PB, const int NV)
{
    const bdims *d = sh->d;
    int64_t o0 = panel * OB, ob = d->Cout - o0 < OB ? d->Cout - o0 : OB;
    /* the first input of the block, in the band's planes */
    const float *x = d->flat ? sh->planes + pos0 : sh->planes + (y - sh->y0) * sh->p->sh * d->Wp + pos0 * sh->p->sw;
    float buf[PB_MAX * OB];
    for (int64_t v0 = 0; v0 < ob; v0 += 16 * NV) {
        const float *bias = sh->bias ? sh->bias + o0 + v0 : NULL;
        /* with a residual the ReLU comes after it, in the scatter */
        int relu = sh->relu && !sh->res;
        if (NV > 1 && ob - v0 >= 32)
            block_any(buf, w + v0, ob, x, sh->kofs, d->K, bias, relu, sh->p->sw, (int)pb, PB, 2);
        else
            block_any(buf + v0, w + v0, ob, x, sh->kofs, d->K, bias, relu, sh->p->sw, (int)pb, PB, 1);
    }
    /* scatter buf[r][c] to out[n, o0 + c, y, x], a run of positions along
     * an output row at a time (flattened: the block may cross rows and
     * holds positions x >= Wo to drop), channel by channel */
    int64_t HWo = d->Ho * d->Wo;
    float *on = sh->out + (sh->n * d->Cout + o0) * HWo;
    for (int64_t r0 = 0; r0 < pb;) {
        int64_t yo = y, xo = pos0 + r0, run = pb - r0;
        if (d->flat) {
            yo = sh->y0 + xo / d->Wp;
            xo %= d->Wp;
            if (xo >= d->Wo) { /* the dropped columns up to the next row */
                r0 += d->Wp - xo;
                continue;
            }
            if (run > d->Wo - xo) run = d->Wo - xo;
        }
        const float *src = buf + r0 * OB;
        int64_t at = yo * d->Wo + xo;
        if (sh->res) {
            /* out = (conv + bias) + res, then max(., 0): the sum of nn.Add, in its order */
            for (int64_t c = 0; c < ob; c++) {
                float *dst = on + c * HWo + at;
                const float *rp = sh->res + (dst - sh->out);
                for (int64_t r = 0; r < run; r++) {
                    float v = src[r * OB + c] + rp[r];
                    dst[r] = sh->relu && !(v > 0) ? 0.0f : v;
                }
            }
        } else {
            for (int64_t c = 0; c < ob; c++) {
                float *dst = on + c * HWo + at;
                for (int64_t r = 0; r < run; r++) dst[r] = src[r * OB + c];
            }
        }
        r0 += run;
    }
}

/* The float panel of 8-bit weights: offset + step * level, the level
 * q + 128, as (offset + 128 step) + step q per 16 channels. */
SM_INLINE const float *panel_floats(const share *sh, int64_t panel)
{
    const bdims *d = sh->d;
    int64_t o0 = panel * OB, ob = d->Cout - o0 < OB ? d->Cout - o0 : OB;
    const int8_t *q = sh->q + o0 * d->K;
    float base[OB], step[OB];
    for (int64_t r = 0; r < ob; r++) {
        step[r] = sh->grid[d->Cout + o0 + r];
        base[r] = sh->grid[o0 + r] + 128 * step[r];
    }
    /* plain loops: the compiler turns them into vector sign extensions
     * and conversions */
    if (ob == OB)
        for (int64_t k = 0; k < d->K; k++)
            for (int r = 0; r < OB; r++) sh->panel[k * OB + r] = base[r] + step[r] * (float)q[k * OB + r];
    else
        for (int64_t k = 0; k < d->K; k++)
            for (int r = 0; r < 16; r++) sh->panel[k * 16 + r] = base[r] + step[r] * (float)q[k * 16 + r];
    return sh->panel;
}

SM_INLINE void run_share(const share *sh, const int PB, const int NV)
{
    const bdims *d = sh->d;
    int64_t rows = sh->y1 - sh->y0;
    if (rows <= 0 || sh->p1 <= sh->p0) return;
    int64_t band_rows = (rows - 1) * sh->p->sh + (int64_t)(sh->p->kh - 1) * sh->p->dh + 1;
    pad_band(sh->planes, sh->pstride, sh->in, d, sh->p, sh->n, sh->y0 * sh->p->sh, band_rows);
    /* flattened: the band's rows as one row of (rows - 1) * Wp + Wo positions */
    int64_t prow = d->flat ? 1 : rows, len = d->flat ? (rows - 1) * d->Wp + d->Wo : d->Wo;
    for (int64_t panel = sh->p0; panel < sh->p1; panel++) {
        const float *w = sh->q ? panel_floats(sh, panel) : sh->wb + panel * OB * d->K;
        for (int64_t r = 0; r < prow; r++)
            for (int64_t pos0 = 0; pos0 < len; pos0 += PB)
                run_block(sh, w, panel, sh->y0 + r, pos0, len - pos0 < PB ? len - pos0 : PB, PB, NV);
    }
}

typedef void share_fn(const share *);

/* baseline (SSE2): a v16 is four registers; 2 positions x 1 vector */
static void share_portable(const share *sh)
{
    run_share(sh, 2, 1);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define HAVE_PATHS 1
/* AVX2: a v16 is two registers; 6 positions x 1 vector = 12 accumulators */
__attribute__((target("arch=x86-64-v3"))) static void share_avx2(const share *sh)
{
    run_share(sh, 6, 1);
}

/* AVX-512: 12 positions x 2 vectors = 24 accumulators of the 32 registers */
__attribute__((target("arch=x86-64-v4"))) static void share_avx512(const share *sh)
{
    run_share(sh, 12, 2);
}
#endif

/* The code path 0 (portable), 1 (AVX2 + FMA) or 2 (AVX-512), -1 the
 * widest allowed (sm_simd_level); NULL when this CPU or build lacks it or
 * SIAMESE_SIMD switched it off. */
static share_fn *path_fn(int path)
{
#ifdef HAVE_PATHS
    int level = sm_simd_level();
    if (path < 0) path = level;
    if (path > level) return NULL;
    if (path == SM_SIMD_AVX2) return share_avx2;
    if (path == SM_SIMD_AVX512) return share_avx512;
#else
    if (path < 0) path = 0;
#endif
    return path == 0 ? share_portable : NULL;
}

/* [*lo, *hi) = part t of nt of [0, n), in parts differing by at most one. */
static void part(int64_t n, int t, int nt, int64_t *lo, int64_t *hi)
{
    *lo = n * t / nt;
    *hi = n * (t + 1) / nt;
}

/* The forward on float panels wb, or (wb NULL) on 8-bit ones wq with grid. */
static int forward(int path, sm_tensor *out, const sm_tensor *in, const sm_tensor *wb, const sm_tensor *wq,
                   const sm_tensor *grid, const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p,
                   int relu, float *ws)
{
    share_fn *fn = path_fn(path);
    if (!fn) return 0;
    bdims d = bdims_of(out, in, p);
    int nt = threads();
    int64_t per = per_thread(&d, p, wb == NULL), panels = (d.Cout + OB - 1) / OB;
    int32_t *kofs = (int32_t *)(ws + nt * per);
    if (d.Cout * d.K * d.Ho * d.Wo * d.N <= 131072) nt = 1;
    /* Threads share out the panels when the weights outweigh the input
     * (deep layers: each thread pads the whole small input, reads only its
     * panels' weights), else the output rows (each pads its band of rows
     * and reads every weight). No thread reads what another wrote, so the
     * region needs no barrier. */
    int by_panel = panels >= nt && d.Cout * d.K >= d.Cin * d.plane;
    /* the planes' row stride is Wp; their size depends on the band */
    int64_t rows_max = by_panel ? d.Ho : (d.Ho + nt - 1) / nt;
    int64_t plane_rows = (rows_max - 1) * p->sh + (int64_t)(p->kh - 1) * p->dh + 1;
    for (int64_t c = 0, k = 0; c < d.Cin; c++)
        for (int i = 0; i < p->kh; i++)
            for (int j = 0; j < p->kw; j++, k++)
                kofs[k] = (int32_t)(c * plane_rows * d.Wp + (int64_t)i * p->dh * d.Wp + (int64_t)j * p->dw);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), n_t = omp_get_num_threads();
        float *mine = ws + t * per;
        share sh = { &d, p, in->data, wb ? wb->data : NULL, bias ? bias->data : NULL, kofs, out->data, mine,
                     plane_rows * d.Wp, wb ? NULL : (const int8_t *)wq->data, wb ? NULL : grid->data,
                     mine + d.Cin * d.plane + slack(p), res ? res->data : NULL, 0, 0, d.Ho, 0, panels, relu };
        /* part q of nt (a team smaller than asked takes several parts:
         * the planes are sized for parts of nt) */
        for (int q = t; q < nt; q += n_t) {
            if (by_panel) part(panels, q, nt, &sh.p0, &sh.p1);
            else part(d.Ho, q, nt, &sh.y0, &sh.y1);
            for (int64_t n = 0; n < d.N; n++) {
                sh.n = n;
                fn(&sh);
            }
        }
    }
    return 1;
}

int sm_conv2d_blocked_forward_path(int path, sm_tensor *out, const sm_tensor *in, const sm_tensor *wb,
                                   const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p, int relu,
                                   float *ws)
{
    return forward(path, out, in, wb, NULL, NULL, bias, res, p, relu, ws);
}

void sm_conv2d_blocked_forward(sm_tensor *out, const sm_tensor *in, const sm_tensor *wb, const sm_tensor *bias,
                               const sm_tensor *res, const sm_conv2d_params *p, int relu, float *ws)
{
    forward(-1, out, in, wb, NULL, NULL, bias, res, p, relu, ws);
}

int sm_conv2d_blocked_forward8_path(int path, sm_tensor *out, const sm_tensor *in, const sm_tensor *wq,
                                    const sm_tensor *grid, const sm_tensor *bias, const sm_tensor *res,
                                    const sm_conv2d_params *p, int relu, float *ws)
{
    return forward(path, out, in, NULL, wq, grid, bias, res, p, relu, ws);
}

void sm_conv2d_blocked_forward8(sm_tensor *out, const sm_tensor *in, const sm_tensor *wq, const sm_tensor *grid,
                                const sm_tensor *bias, const sm_tensor *res, const sm_conv2d_params *p, int relu,
                                float *ws)
{
    forward(-1, out, in, NULL, wq, grid, bias, res, p, relu, ws);
}
