/*
 * Plain-C tests of the convolution wing through its own entry points
 * (src/conv/conv.h): a table forces every algorithm, by name, on every pass
 * it computes (sm_conv_*_check, _workspace, then the compute function, on
 * the weights in the form sm_conv_weights_make gives it), against the
 * convolution by its definition in double; a pass an algorithm does not
 * compute, or cannot on this CPU (direct_rgb without AVX2), must be refused
 * by the check. spec/c/each_cpu.sh runs this under every SIMD level
 * (SIAMESE_SIMD) and OpenBLAS kernel the CPU has, so that each algorithm x
 * instruction set is compared with the definition.
 *
 * Bounds (ctest.h: a value formed with at most L roundings per term is
 * within gamma(L) of the same computation on absolute values; the double
 * references add gamma_d of their own sums; max(., 0) is exact):
 *  - forward: K = Cin/G kh kw products, the bias and the residual, summed
 *    in any order, FMA or not: gamma(K + 2) (sum |w||x| + |b| + |res|).
 *    8-bit weights add the panel's rebuilt weights' error, gamma(K + 8)
 *    (|off| + 255 |step|) sum |x| (derived in test_conv2d_blocked.c).
 *    Winograd: gamma(Cin + 9) for F(2x2), gamma(Cin + 15) for F(4x4), of
 *    its transforms on absolute values (ctest_winograd.h);
 *  - input gradient: Cout/G kh kw terms per input, from zero:
 *    gamma(Cout/G kh kw) sum |w||g|; Winograd: its forward of the output
 *    gradient padded by 2 - p with the flipped weights, bounded as above;
 *  - weight gradient, onto 0.25 with scale 0.5: N Ho Wo terms, the scale
 *    and the sum with what was there: gamma(N Ho Wo + 3) (0.25 + 0.5 sum
 *    |g||x|); Winograd: gamma(N T + 8 or 14) of wino_weight_abs, T the
 *    tiles per sample; the bias gradient sums N Ho Wo terms of g the same
 *    way in every algorithm.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "ctest_rng.h"
#include "ctest_conv.h"
#include "ctest_winograd.h"

typedef struct {
    sm_conv_algo algo;
    int64_t n, cin, h, w, cout;
    sm_conv2d_params p;
    int relu, residual;
} conv_case;

static const conv_case CASES[] = {
    { SM_CONV_IM2COL, 3, 6, 9, 11, 10, { 3, 3, 2, 1, 1, 2, 1, 2, 0, 1, 2 }, 1, 0 },
    { SM_CONV_IM2COL, 2, 5, 8, 7, 4, { 1, 3, 1, 2, 1, 1, 0, 1, 0, 1, 1 }, 0, 0 },
    { SM_CONV_IM2COL_BANDED, 1, 4, 70, 66, 8, { 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 1 }, 0, 0 },
    { SM_CONV_IM2COL_BANDED, 2, 4, 21, 19, 6, { 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2 }, 1, 0 },
    { SM_CONV_POINTWISE, 2, 12, 7, 9, 20, { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1 }, 1, 0 },
    { SM_CONV_DEPTHWISE, 2, 8, 13, 10, 8, { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8 }, 0, 0 },
    { SM_CONV_DEPTHWISE, 2, 6, 14, 11, 6, { 3, 3, 2, 2, 2, 2, 2, 1, 0, 2, 6 }, 1, 0 },
    { SM_CONV_DIRECT_SMALL, 3, 2, 15, 21, 6, { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 0, 0 },
    { SM_CONV_DIRECT_SMALL, 2, 2, 12, 9, 8, { 5, 5, 1, 1, 1, 1, 2, 1, 0, 2, 1 }, 1, 0 },
    { SM_CONV_DIRECT_RGB, 2, 3, 17, 35, 16, { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 0, 0 },
    { SM_CONV_DIRECT_RGB, 1, 3, 31, 29, 32, { 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1 }, 1, 0 },
    { SM_CONV_PACKED, 2, 16, 7, 6, 24, { 3, 3, 1, 2, 1, 1, 1, 0, 1, 1, 1 }, 1, 0 },
    { SM_CONV_PACKED_TAP, 3, 16, 1, 1, 12, { 3, 3, 1, 1, 1, 1, 2, 0, 0, 2, 1 }, 0, 0 },
    { SM_CONV_BLOCKED, 2, 8, 12, 13, 32, { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 1, 1 },
    { SM_CONV_BLOCKED, 1, 16, 11, 11, 48, { 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1 }, 0, 0 },
    { SM_CONV_BLOCKED8, 1, 16, 9, 9, 32, { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 1, 1 },
    { SM_CONV_WINOGRAD_F2, 2, 9, 10, 11, 7, { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, 1, 0 },
    { SM_CONV_WINOGRAD_F4, 3, 8, 13, 12, 10, { 3, 3, 1, 1, 1, 1, 2, 0, 1, 2, 1 }, 0, 0 },
};

static const char *const PASS[] = { "forward", "input gradient", "weight gradient" };

static int is_winograd(sm_conv_algo a) { return a == SM_CONV_WINOGRAD_F2 || a == SM_CONV_WINOGRAD_F4; }

/* The data of one case: input, plain weights (on an 8-bit grid for
 * blocked8), bias, residual, output gradient. */
typedef struct {
    int64_t is[4], os[4], ws[4], K;
    float *x, *w, *b, *res, *g, *grid; /* grid: offsets and steps of the 8-bit weights */
    sm_tensor tx, tw, tb, tres, tg, tgrid;
} conv_data;

static conv_data make_data(const conv_case *c)
{
    conv_data d;
    const sm_conv2d_params *p = &c->p;
    int64_t is[4] = { c->n, c->cin, c->h, c->w };
    int64_t os[4] = { c->n, c->cout, sm_conv_out_size(c->h, p->kh, p->sh, p->dh, p->pt, p->pb),
                      sm_conv_out_size(c->w, p->kw, p->sw, p->dw, p->pl, p->pr) };
    int64_t ws[4] = { c->cout, c->cin / p->groups, p->kh, p->kw }, bs[1] = { c->cout }, gs[2] = { 2, c->cout };
    memcpy(d.is, is, sizeof is);
    memcpy(d.os, os, sizeof os);
    memcpy(d.ws, ws, sizeof ws);
    d.K = ws[1] * p->kh * p->kw;
    d.x = randn(sm_numel(4, is));
    d.w = randn(sm_numel(4, ws));
    d.b = randn(c->cout);
    d.res = c->residual ? randn(sm_numel(4, os)) : NULL;
    d.g = randn(sm_numel(4, os));
    d.grid = calloc((size_t)(2 * c->cout), sizeof(float));
    if (c->algo == SM_CONV_BLOCKED8) /* weight = offset + step * level, level in 0..255 */
        for (int64_t o = 0; o < c->cout; o++) {
            d.grid[o] = -1.0f - 0.01f * (float)o;
            d.grid[c->cout + o] = 1.0f / 128 + 1e-4f * (float)o;
            for (int64_t k = 0; k < d.K; k++)
                d.w[o * d.K + k] = d.grid[o] + d.grid[c->cout + o] * (float)sm_rng_below(&rng, 256);
        }
    sm_tensor_init(&d.tx, d.x, 4, is);
    sm_tensor_init(&d.tw, d.w, 4, ws);
    sm_tensor_init(&d.tb, d.b, 1, bs);
    sm_tensor_init(&d.tres, d.res, 4, os);
    sm_tensor_init(&d.tg, d.g, 4, os);
    sm_tensor_init(&d.tgrid, d.grid, 2, gs);
    return d;
}

static void free_data(conv_data *d)
{
    free(d->x); free(d->w); free(d->b); free(d->res); free(d->g); free(d->grid);
}

/* The weights algorithm a reads in pass, in *t: the plain ones, or made
 * into *buf (free it). */
static sm_status weights_for(sm_err *err, const conv_case *c, const conv_data *d, sm_conv_pass pass, sm_tensor *t,
                             float **buf)
{
    sm_conv_shape s = sm_conv_shape_of(c->n, c->cin, c->h, c->w, c->cout, &c->p);
    int64_t shape[3];
    int nd = sm_conv_weights_shape(c->algo, pass, &s, &c->p, shape);
    *buf = NULL;
    *t = d->tw;
    if (nd == 0) return SM_OK;
    *buf = calloc((size_t)sm_numel(nd, shape), sizeof(float));
    sm_tensor_init(t, *buf, nd, shape);
    if (c->algo == SM_CONV_BLOCKED8) {
        sm_status st = sm_conv2d_blocked_pack8_check(err, t, &d->tgrid, &d->tw);
        if (!st && !sm_conv2d_blocked_pack8(t, &d->tgrid, &d->tw))
            st = sm_fail(err, SM_EINVAL, "weights off their grid");
        return st;
    }
    sm_status st = sm_conv_weights_check(err, c->algo, pass, t, &d->tw, &c->p);
    if (!st) sm_conv_weights_make(c->algo, pass, t, &d->tw, &c->p);
    return st;
}

/* The (top, left, bottom, right) padding of a 3x3 stride-1 case. */
static void pads(const sm_conv2d_params *p, int pad[4])
{
    pad[0] = p->pt, pad[1] = p->pl, pad[2] = p->pb, pad[3] = p->pr;
}

static ctest_worst check_forward(const conv_case *c, const conv_data *d, const sm_tensor *w)
{
    int64_t ny = sm_numel(4, d->os);
    float *y = malloc((size_t)ny * sizeof(float));
    for (int64_t i = 0; i < ny; i++) y[i] = 12345.0f; /* a sentinel left stands out */
    sm_tensor ty;
    sm_tensor_init(&ty, y, 4, d->os);
    const sm_tensor *grid = c->algo == SM_CONV_BLOCKED8 ? &d->tgrid : NULL, *res = d->res ? &d->tres : NULL;
    float *ws = malloc((sm_conv_forward_workspace(c->algo, &ty, &d->tx, &c->p) + 1) * sizeof(float));
    sm_conv_forward(c->algo, &ty, &d->tx, w, grid, &d->tb, res, &c->p, c->relu, ws);
    ref_conv ref = ref_conv2d(d->x, d->is, d->w, c->cout, d->b, d->res, &c->p);
    double *wabs = NULL;
    if (is_winograd(c->algo)) {
        int pad[4];
        pads(&c->p, pad);
        wabs = wino_abs(c->algo == SM_CONV_WINOGRAD_F2 ? 2 : 4, d->x, d->is, d->w, c->cout, d->b, pad, d->os[2],
                        d->os[3]);
    }
    ctest_worst worst = CTEST_WORST_INIT;
    for (int64_t i = 0; i < ny; i++) {
        int64_t o = i / (d->os[2] * d->os[3]) % c->cout;
        double want = c->relu && ref.y[i] < 0 ? 0 : ref.y[i];
        double bound = ctest_gamma_d((double)d->K + 2) * ref.abs[i];
        if (wabs) bound += ctest_gamma((double)c->cin + (c->algo == SM_CONV_WINOGRAD_F2 ? 9 : 15)) * wabs[i];
        else bound += ctest_gamma((double)d->K + 2) * ref.abs[i];
        if (c->algo == SM_CONV_BLOCKED8)
            bound += ctest_gamma((double)d->K + 8) * (fabs(d->grid[o]) + 255 * fabs(d->grid[c->cout + o])) * ref.absx[i];
        ctest_worst_add(&worst, i, y[i], want, bound);
    }
    ref_conv_free(&ref);
    free(wabs); free(ws); free(y);
    return worst;
}

/* The input gradient by its definition, in double: gi[n,c,iy,ix] = sum
 * over the outputs (o, oy, ox) and taps (i, j) that read it of w g; abs
 * the sums of |w g|. */
static void ref_input_grad(double *gi, double *abs, const conv_case *c, const conv_data *d)
{
    const sm_conv2d_params *p = &c->p;
    int64_t cg = c->cin / p->groups, og = c->cout / p->groups, Ho = d->os[2], Wo = d->os[3];
    memset(gi, 0, (size_t)sm_numel(4, d->is) * sizeof(double));
    memset(abs, 0, (size_t)sm_numel(4, d->is) * sizeof(double));
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t o = 0; o < c->cout; o++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double gv = d->g[((n * c->cout + o) * Ho + oy) * Wo + ox];
                    for (int64_t k = 0; k < cg; k++)
                        for (int i = 0; i < p->kh; i++)
                            for (int j = 0; j < p->kw; j++) {
                                int64_t iy = oy * p->sh - p->pt + (int64_t)i * p->dh;
                                int64_t ix = ox * p->sw - p->pl + (int64_t)j * p->dw;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                                int64_t at = ((n * c->cin + o / og * cg + k) * c->h + iy) * c->w + ix;
                                double t = d->w[((o * cg + k) * p->kh + i) * p->kw + j] * gv;
                                gi[at] += t;
                                abs[at] += fabs(t);
                            }
                }
}

static ctest_worst check_input_grad(const conv_case *c, const conv_data *d, const sm_tensor *w)
{
    int64_t nx = sm_numel(4, d->is);
    float *gi = malloc((size_t)nx * sizeof(float));
    for (int64_t i = 0; i < nx; i++) gi[i] = 12345.0f; /* written, not accumulated */
    sm_tensor tgi;
    sm_tensor_init(&tgi, gi, 4, d->is);
    float *ws = malloc((sm_conv_backward_input_workspace(c->algo, &tgi, &d->tg, &c->p) + 1) * sizeof(float));
    sm_conv_backward_input(c->algo, &tgi, &d->tg, w, &c->p, ws);
    double *want = malloc((size_t)nx * sizeof(double)), *abs = malloc((size_t)nx * sizeof(double)), *wabs = NULL;
    ref_input_grad(want, abs, c, d);
    int64_t terms = c->cout / c->p.groups * c->p.kh * c->p.kw;
    if (is_winograd(c->algo)) { /* the forward of g with the flipped, channel-swapped weights */
        float *wf = malloc((size_t)sm_numel(4, d->ws) * sizeof(float));
        for (int64_t o = 0; o < c->cout; o++)
            for (int64_t k = 0; k < c->cin; k++)
                for (int t = 0; t < 9; t++) wf[(k * c->cout + o) * 9 + t] = d->w[(o * c->cin + k) * 9 + 8 - t];
        int pad[4] = { 2 - c->p.pt, 2 - c->p.pl, 2 - c->p.pb, 2 - c->p.pr };
        wabs = wino_abs(c->algo == SM_CONV_WINOGRAD_F2 ? 2 : 4, d->g, d->os, wf, c->cin, NULL, pad, c->h, c->w);
        free(wf);
    }
    ctest_worst worst = CTEST_WORST_INIT;
    for (int64_t i = 0; i < nx; i++) {
        double bound = ctest_gamma_d((double)terms) * abs[i];
        if (wabs) bound += ctest_gamma((double)c->cout + (c->algo == SM_CONV_WINOGRAD_F2 ? 9 : 15)) * wabs[i];
        else bound += ctest_gamma((double)terms) * abs[i];
        ctest_worst_add(&worst, i, gi[i], want[i], bound);
    }
    free(want); free(abs); free(wabs); free(ws); free(gi);
    return worst;
}

/* The weight and bias gradients, onto 0.25 and -0.5 with scale 0.5. */
static ctest_worst check_weight_grad(const conv_case *c, const conv_data *d)
{
    const sm_conv2d_params *p = &c->p;
    int64_t nw = sm_numel(4, d->ws), cg = c->cin / p->groups, og = c->cout / p->groups;
    int64_t Ho = d->os[2], Wo = d->os[3], HWo = Ho * Wo, terms = c->n * HWo;
    float *gw = malloc((size_t)nw * sizeof(float)), *gb = malloc((size_t)c->cout * sizeof(float));
    for (int64_t i = 0; i < nw; i++) gw[i] = 0.25f;
    for (int64_t o = 0; o < c->cout; o++) gb[o] = -0.5f;
    int64_t bs[1] = { c->cout };
    sm_tensor tgw, tgb;
    sm_tensor_init(&tgw, gw, 4, d->ws);
    sm_tensor_init(&tgb, gb, 1, bs);
    float *ws = malloc((sm_conv_backward_weight_workspace(c->algo, &d->tg, &d->tx, p) + 1) * sizeof(float));
    sm_conv_backward_weight(c->algo, &tgw, &tgb, &d->tg, &d->tx, p, 0.5f, ws);
    double *wabs = NULL, Lw = (double)terms + 3;
    if (is_winograd(c->algo)) {
        int pad[4], m = c->algo == SM_CONV_WINOGRAD_F2 ? 2 : 4;
        pads(p, pad);
        wabs = wino_weight_abs(m, d->x, d->is, d->g, d->os, pad);
        Lw = (double)(c->n * ((Ho + m - 1) / m) * ((Wo + m - 1) / m)) + (m == 2 ? 8 : 14);
    }
    ctest_worst worst = CTEST_WORST_INIT;
    for (int64_t o = 0; o < c->cout; o++)
        for (int64_t k = 0; k < cg; k++)
            for (int i = 0; i < p->kh; i++)
                for (int j = 0; j < p->kw; j++) {
                    double s = 0, t = 0;
                    for (int64_t n = 0; n < c->n; n++)
                        for (int64_t oy = 0; oy < Ho; oy++)
                            for (int64_t ox = 0; ox < Wo; ox++) {
                                int64_t iy = oy * p->sh - p->pt + (int64_t)i * p->dh;
                                int64_t ix = ox * p->sw - p->pl + (int64_t)j * p->dw;
                                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                                double v = (double)d->g[((n * c->cout + o) * Ho + oy) * Wo + ox] *
                                           d->x[((n * c->cin + o / og * cg + k) * c->h + iy) * c->w + ix];
                                s += v;
                                t += fabs(v);
                            }
                    int64_t at = ((o * cg + k) * p->kh + i) * p->kw + j;
                    double mag = wabs ? wabs[(o * cg + k) * 9 + i * 3 + j] : t;
                    double bound = ctest_gamma(Lw) * (0.25 + 0.5 * mag) + ctest_gamma_d((double)terms + 2) * (0.25 + 0.5 * t);
                    ctest_worst_add(&worst, at, gw[at], 0.25 + 0.5 * s, bound);
                }
    for (int64_t o = 0; o < c->cout; o++) {
        double s = 0, t = 0;
        for (int64_t n = 0; n < c->n; n++)
            for (int64_t i = 0; i < HWo; i++) {
                s += d->g[(n * c->cout + o) * HWo + i];
                t += fabs(d->g[(n * c->cout + o) * HWo + i]);
            }
        double bound = (ctest_gamma((double)terms + 3) + ctest_gamma_d((double)terms + 2)) * (0.5 + 0.5 * t);
        ctest_worst_add(&worst, nw + o, gb[o], -0.5 + 0.5 * s, bound);
    }
    free(wabs); free(ws); free(gw); free(gb);
    return worst;
}

/* The pass's check of the case's algorithm on its data and weights w. */
static sm_status pass_check(sm_err *err, const conv_case *c, const conv_data *d, sm_conv_pass pass,
                            const sm_tensor *w)
{
    sm_tensor ty = d->tg, tgi = d->tx, tgw = d->tw; /* shapes only */
    switch (pass) {
    case SM_CONV_FORWARD:
        return sm_conv_forward_check(err, c->algo, &ty, &d->tx, w, c->algo == SM_CONV_BLOCKED8 ? &d->tgrid : NULL,
                                     &d->tb, d->res ? &d->tres : NULL, &c->p);
    case SM_CONV_BACKWARD_INPUT: return sm_conv_backward_input_check(err, c->algo, &tgi, &d->tg, w, &c->p);
    default: return sm_conv_backward_weight_check(err, c->algo, &tgw, NULL, &d->tg, &d->tx, &c->p);
    }
}

static void test_every_algorithm_on_every_pass(void)
{
    int level = sm_simd_level();
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        const conv_case *c = &CASES[k];
        conv_data d = make_data(c);
        sm_conv_shape s = sm_conv_shape_of(c->n, c->cin, c->h, c->w, c->cout, &c->p);
        for (int pass = SM_CONV_FORWARD; pass <= SM_CONV_BACKWARD_WEIGHT; pass++) {
            char what[96];
            snprintf(what, sizeof what, "%s, %s, case %d, %s", sm_conv_algo_name(c->algo), PASS[pass], (int)k,
                     sm_simd_name(level));
            sm_err err;
            sm_tensor w;
            float *buf;
            sm_status made = weights_for(&err, c, &d, (sm_conv_pass)pass, &w, &buf);
            int runs = sm_conv_algo_runs(c->algo, (sm_conv_pass)pass, &s, &c->p, level);
            sm_status st = made ? made : pass_check(&err, c, &d, (sm_conv_pass)pass, &w);
            if (!runs) { /* refused, by the weights' check or the pass's */
                if (st == SM_OK) fprintf(stderr, "  %s: accepted a pass it does not compute\n", what);
                CHECK(st != SM_OK);
            } else if (st != SM_OK) {
                fprintf(stderr, "  %s: %s\n", what, err.msg);
                CHECK(st == SM_OK);
            } else if (pass == SM_CONV_FORWARD) {
                CHECK_WORST(check_forward(c, &d, &w), what);
            } else if (pass == SM_CONV_BACKWARD_INPUT) {
                CHECK_WORST(check_input_grad(c, &d, &w), what);
            } else {
                CHECK_WORST(check_weight_grad(c, &d), what);
            }
            free(buf);
        }
        free_data(&d);
    }
}

/* Every algorithm is in the table, and every name comes back. */
static void test_names(void)
{
    int seen[SM_CONV_NALGOS] = { 0 };
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) seen[CASES[k].algo] = 1;
    for (int a = 0; a < SM_CONV_NALGOS; a++) {
        CHECK(seen[a]);
        CHECK(sm_conv_algo_of_name(sm_conv_algo_name((sm_conv_algo)a)) == a);
    }
    CHECK(sm_conv_algo_of_name("fft") == -1);
}

/* The plan always gives an algorithm that runs, for shapes around every
 * threshold of plan.c and every combination of what the layer holds. */
static void test_plan_gives_what_runs(void)
{
    const sm_conv2d_params ps[] = {
        { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1 }, { 3, 3, 1, 1, 1, 1, 3, 3, 3, 3, 1 }, { 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1 },
        { 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1 }, { 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 1 }, { 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16 },
        { 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 2 }, { 3, 3, 1, 1, 1, 1, 2, 0, 0, 2, 1 },
    };
    const int64_t chans[][2] = { { 3, 16 }, { 4, 8 }, { 8, 24 }, { 16, 16 }, { 16, 32 }, { 64, 64 }, { 96, 128 } };
    const int64_t maps[][3] = { { 1, 1, 1 }, { 2, 4, 4 }, { 4, 4, 4 }, { 1, 6, 6 }, { 4, 8, 8 }, { 1, 12, 12 },
                                { 3, 35, 35 }, { 1, 150, 150 } };
    int bad = 0;
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        for (size_t j = 0; j < sizeof chans / sizeof chans[0]; j++)
            for (size_t k = 0; k < sizeof maps / sizeof maps[0]; k++)
                for (int held = 0; held < 128; held++) {
                    const sm_conv2d_params *p = &ps[i];
                    int64_t cin = chans[j][0], cout = chans[j][1];
                    if (p->groups > 1) cin = cout = p->groups;
                    sm_conv_shape s = sm_conv_shape_of(maps[k][0], cin, maps[k][1], maps[k][2], cout, p);
                    if (s.Ho <= 0 || s.Wo <= 0) continue;
                    sm_conv_weights w = { held & 1, held >> 1 & 1, held >> 2 & 1, held >> 3 & 1 ? 4 : 0,
                                          held >> 4 & 1 ? 2 : 0, held >> 5 & 1, held >> 6 & 1 };
                    for (int pass = SM_CONV_FORWARD; pass <= SM_CONV_BACKWARD_WEIGHT; pass++)
                        bad += !sm_conv_algo_runs(sm_conv_plan((sm_conv_pass)pass, &s, p, &w, sm_simd_level()),
                                                  (sm_conv_pass)pass, &s, p, sm_simd_level());
                }
    CHECK(bad == 0);
}

int main(void)
{
    sm_rng_seed(&rng, 20261203);
    RUN(test_names);
    RUN(test_every_algorithm_on_every_pass);
    RUN(test_plan_gives_what_runs);
    return ctest_summary("conv");
}
