/*
 * tensor.c — strided float32 views and the element-wise work over them.
 *
 * A tensor is (data, ndim, shape[], stride[]) with strides in elements;
 * element (i0, ..., i{n-1}) (0-based) lives at data[sum_k i_k * stride[k]].
 * Views (narrow, select, transpose, view) only rewrite shape/stride/data.
 *
 * Element-wise loops go through a small iterator that first merges
 * dimensions that are contiguous with each other in every operand, so a
 * contiguous tensor is walked as one flat run.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "sm.h"

const char *sm_shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t used = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}

int64_t sm_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

sm_status sm_shape_check(sm_err *err, int ndim, const int64_t *shape, size_t *nbytes)
{
    if (ndim < 0 || ndim > SM_MAX_DIMS)
        return sm_fail(err, SM_EINVAL, "tensor must have 0..%d dimensions, got %d", SM_MAX_DIMS, ndim);
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return sm_fail(err, SM_EINVAL, "size of dimension %d is negative (%lld)", i + 1, (long long)shape[i]);
        /* 2^40 elements (4 TiB) is far beyond any machine this runs on. */
        if (shape[i] > 0 && n > ((uint64_t)1 << 40) / (uint64_t)shape[i]) {
            char s[SM_SHAPE_STR_LEN];
            return sm_fail(err, SM_EINVAL, "tensor shape %s is too large", sm_shape_str(s, sizeof s, ndim, shape));
        }
        n *= (uint64_t)shape[i];
    }
    if (nbytes) *nbytes = (size_t)n * sizeof(float);
    return SM_OK;
}

void sm_tensor_init(sm_tensor *t, float *data, int ndim, const int64_t *shape)
{
    t->data = data;
    t->ndim = ndim;
    int64_t st = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->stride[i] = st;
        st *= shape[i] > 0 ? shape[i] : 1;
    }
}

int sm_tensor_is_contiguous(const sm_tensor *t)
{
    int64_t st = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != st) return 0;
        st *= t->shape[i];
    }
    return 1;
}

int sm_tensor_same_shape(const sm_tensor *a, const sm_tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* ---- views ----------------------------------------------------------------- */

static sm_status check_dim(sm_err *err, const sm_tensor *t, int dim, const char *what)
{
    if (dim < 0 || dim >= t->ndim) {
        char s[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "%s %d out of range for tensor of shape %s", what, dim + 1,
                       sm_shape_str(s, sizeof s, t->ndim, t->shape));
    }
    return SM_OK;
}

sm_status sm_tensor_narrow(sm_err *err, sm_tensor *out, const sm_tensor *in, int dim, int64_t start, int64_t len)
{
    if (check_dim(err, in, dim, "dimension")) return SM_EINVAL;
    if (start < 0 || len < 0 || start + len > in->shape[dim]) {
        char s[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "range %lld..%lld out of bounds for dimension %d of shape %s",
                       (long long)start + 1, (long long)(start + len), dim + 1,
                       sm_shape_str(s, sizeof s, in->ndim, in->shape));
    }
    *out = *in;
    if (len > 0) out->data = in->data + start * in->stride[dim];
    out->shape[dim] = len;
    return SM_OK;
}

sm_status sm_tensor_select(sm_err *err, sm_tensor *out, const sm_tensor *in, int dim, int64_t index)
{
    if (check_dim(err, in, dim, "dimension")) return SM_EINVAL;
    if (index < 0 || index >= in->shape[dim]) {
        char s[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "index %lld out of range for dimension %d of shape %s",
                       (long long)index + 1, dim + 1, sm_shape_str(s, sizeof s, in->ndim, in->shape));
    }
    sm_tensor r = *in;
    r.data = in->data + index * in->stride[dim];
    for (int i = dim; i < in->ndim - 1; i++) {
        r.shape[i] = in->shape[i + 1];
        r.stride[i] = in->stride[i + 1];
    }
    r.ndim = in->ndim - 1;
    *out = r;
    return SM_OK;
}

sm_status sm_tensor_transpose(sm_err *err, sm_tensor *out, const sm_tensor *in, int d1, int d2)
{
    if (check_dim(err, in, d1, "dimension") || check_dim(err, in, d2, "dimension")) return SM_EINVAL;
    sm_tensor r = *in;
    r.shape[d1] = in->shape[d2];
    r.shape[d2] = in->shape[d1];
    r.stride[d1] = in->stride[d2];
    r.stride[d2] = in->stride[d1];
    *out = r;
    return SM_OK;
}

sm_status sm_view_shape(sm_err *err, int64_t numel, int ndim, int64_t *shape)
{
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) return sm_fail(err, SM_EINVAL, "only one dimension can be -1");
            infer = i;
        } else if (shape[i] < 0) {
            return sm_fail(err, SM_EINVAL, "size of dimension %d is negative (%lld)", i + 1, (long long)shape[i]);
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel % known != 0) {
            char s[SM_SHAPE_STR_LEN];
            return sm_fail(err, SM_EINVAL, "cannot infer the -1 of shape %s for %lld elements",
                           sm_shape_str(s, sizeof s, ndim, shape), (long long)numel);
        }
        shape[infer] = numel / known;
        known = numel;
    }
    if (known != numel) {
        char s[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "shape %s has %lld elements, the tensor has %lld",
                       sm_shape_str(s, sizeof s, ndim, shape), (long long)known, (long long)numel);
    }
    return SM_OK;
}

sm_status sm_tensor_view(sm_err *err, sm_tensor *out, const sm_tensor *in, int ndim, const int64_t *shape)
{
    int64_t sh[SM_MAX_DIMS];
    if (ndim < 0 || ndim > SM_MAX_DIMS)
        return sm_fail(err, SM_EINVAL, "view must have 0..%d dimensions, got %d", SM_MAX_DIMS, ndim);
    memcpy(sh, shape, (size_t)ndim * sizeof *sh);
    if (!sm_tensor_is_contiguous(in)) {
        char s[SM_SHAPE_STR_LEN];
        return sm_fail(err, SM_EINVAL, "view needs a contiguous tensor (shape %s is a strided view; use reshape or contiguous)",
                       sm_shape_str(s, sizeof s, in->ndim, in->shape));
    }
    sm_status st = sm_view_shape(err, sm_numel(in->ndim, in->shape), ndim, sh);
    if (st) return st;
    sm_tensor_init(out, in->data, ndim, sh);
    return SM_OK;
}

/* ---- iteration ---------------------------------------------------------------- */

/* Walks up to three same-shaped operands in row-major order, one inner run
 * (the last merged dimension) at a time. */
typedef struct {
    int nd, nops;
    int64_t shape[SM_MAX_DIMS];
    int64_t stride[3][SM_MAX_DIMS];
    int64_t count[SM_MAX_DIMS];
    float *ptr[3];
    int64_t inner, istride[3];
    int done;
} iter3;

static void iter_init(iter3 *it, int nops, const sm_tensor *const *ops)
{
    const sm_tensor *t0 = ops[0];
    it->nops = nops;
    it->nd = 0;
    it->done = sm_numel(t0->ndim, t0->shape) == 0;
    /* Drop size-1 dimensions, merge dims contiguous in every operand. */
    for (int d = 0; d < t0->ndim; d++) {
        if (t0->shape[d] == 1) continue;
        int k = it->nd;
        if (k > 0) {
            int mergeable = 1;
            for (int o = 0; o < nops; o++)
                if (it->stride[o][k - 1] != ops[o]->stride[d] * t0->shape[d]) mergeable = 0;
            if (mergeable) {
                it->shape[k - 1] *= t0->shape[d];
                for (int o = 0; o < nops; o++) it->stride[o][k - 1] = ops[o]->stride[d];
                continue;
            }
        }
        it->shape[k] = t0->shape[d];
        for (int o = 0; o < nops; o++) it->stride[o][k] = ops[o]->stride[d];
        it->nd++;
    }
    if (it->nd == 0) { /* a single element */
        it->nd = 1;
        it->shape[0] = 1;
        for (int o = 0; o < nops; o++) it->stride[o][0] = 1;
    }
    for (int d = 0; d < it->nd; d++) it->count[d] = 0;
    for (int o = 0; o < nops; o++) {
        it->ptr[o] = ops[o]->data;
        it->istride[o] = it->stride[o][it->nd - 1];
    }
    it->inner = it->shape[it->nd - 1];
}

/* Advances to the next inner run; returns 0 when done. */
static int iter_next(iter3 *it)
{
    for (int d = it->nd - 2; d >= 0; d--) {
        if (++it->count[d] < it->shape[d]) {
            for (int o = 0; o < it->nops; o++) it->ptr[o] += it->stride[o][d];
            return 1;
        }
        it->count[d] = 0;
        for (int o = 0; o < it->nops; o++) it->ptr[o] -= it->stride[o][d] * (it->shape[d] - 1);
    }
    it->done = 1;
    return 0;
}

#define FOR_RUNS(it) for (; !(it).done; iter_next(&(it)))

void sm_tensor_fill(sm_tensor *t, float v)
{
    iter3 it;
    const sm_tensor *ops[1] = { t };
    iter_init(&it, 1, ops);
    FOR_RUNS(it) {
        float *p = it.ptr[0];
        int64_t s = it.istride[0];
        for (int64_t i = 0; i < it.inner; i++) p[i * s] = v;
    }
}

/* Reads element k (row-major) of a strided tensor. */
static float *elem_at(const sm_tensor *t, int64_t k)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t n = t->shape[d];
        off += (k % n) * t->stride[d];
        k /= n;
    }
    return t->data + off;
}

void sm_tensor_copy(sm_tensor *dst, const sm_tensor *src)
{
    if (sm_tensor_same_shape(dst, src)) {
        iter3 it;
        const sm_tensor *ops[2] = { dst, src };
        iter_init(&it, 2, ops);
        FOR_RUNS(it) {
            float *d = it.ptr[0], *s = it.ptr[1];
            int64_t ds = it.istride[0], ss = it.istride[1];
            if (ds == 1 && ss == 1) memmove(d, s, (size_t)it.inner * sizeof *d);
            else for (int64_t i = 0; i < it.inner; i++) d[i * ds] = s[i * ss];
        }
        return;
    }
    /* Different shapes, same element count: walk both in row-major order. */
    int64_t n = sm_numel(dst->ndim, dst->shape);
    if (sm_tensor_is_contiguous(dst) && sm_tensor_is_contiguous(src)) {
        memmove(dst->data, src->data, (size_t)n * sizeof(float));
        return;
    }
    for (int64_t k = 0; k < n; k++) *elem_at(dst, k) = *elem_at(src, k);
}

static inline float apply(sm_binop op, float a, float b)
{
    switch (op) {
    case SM_OP_ADD: return a + b;
    case SM_OP_SUB: return a - b;
    case SM_OP_MUL: return a * b;
    default:        return a / b;
    }
}

void sm_tensor_binop(sm_tensor *out, const sm_tensor *a, const sm_tensor *b, sm_binop op)
{
    iter3 it;
    const sm_tensor *ops[3] = { out, a, b };
    iter_init(&it, 3, ops);
    FOR_RUNS(it) {
        float *o = it.ptr[0], *x = it.ptr[1], *y = it.ptr[2];
        int64_t so = it.istride[0], sx = it.istride[1], sy = it.istride[2];
        if (so == 1 && sx == 1 && sy == 1) {
            switch (op) { /* split so each loop vectorises */
            case SM_OP_ADD: for (int64_t i = 0; i < it.inner; i++) o[i] = x[i] + y[i]; break;
            case SM_OP_SUB: for (int64_t i = 0; i < it.inner; i++) o[i] = x[i] - y[i]; break;
            case SM_OP_MUL: for (int64_t i = 0; i < it.inner; i++) o[i] = x[i] * y[i]; break;
            case SM_OP_DIV: for (int64_t i = 0; i < it.inner; i++) o[i] = x[i] / y[i]; break;
            }
        } else {
            for (int64_t i = 0; i < it.inner; i++) o[i * so] = apply(op, x[i * sx], y[i * sy]);
        }
    }
}

void sm_tensor_binop_scalar(sm_tensor *out, const sm_tensor *a, float s, sm_binop op)
{
    iter3 it;
    const sm_tensor *ops[2] = { out, a };
    iter_init(&it, 2, ops);
    FOR_RUNS(it) {
        float *o = it.ptr[0], *x = it.ptr[1];
        int64_t so = it.istride[0], sx = it.istride[1];
        for (int64_t i = 0; i < it.inner; i++) o[i * so] = apply(op, x[i * sx], s);
    }
}

void sm_tensor_axpby(sm_tensor *out, float alpha, const sm_tensor *a, float beta, const sm_tensor *b)
{
    iter3 it;
    const sm_tensor *ops[3] = { out, a, b };
    iter_init(&it, 3, ops);
    FOR_RUNS(it) {
        float *o = it.ptr[0], *x = it.ptr[1], *y = it.ptr[2];
        int64_t so = it.istride[0], sx = it.istride[1], sy = it.istride[2];
        for (int64_t i = 0; i < it.inner; i++) o[i * so] = alpha * x[i * sx] + beta * y[i * sy];
    }
}

/* ---- whole-tensor reductions ---------------------------------------------------- */

double sm_tensor_sum_all(const sm_tensor *t)
{
    iter3 it;
    const sm_tensor *ops[1] = { t };
    double acc = 0;
    iter_init(&it, 1, ops);
    FOR_RUNS(it) {
        const float *p = it.ptr[0];
        int64_t s = it.istride[0];
        for (int64_t i = 0; i < it.inner; i++) acc += p[i * s];
    }
    return acc;
}

/* Max or min with its row-major flat index; the first NaN wins, as in torch. */
static double extreme_all(const sm_tensor *t, int64_t *where, int want_max)
{
    int64_t n = sm_numel(t->ndim, t->shape), best_k = -1;
    double best = want_max ? -INFINITY : INFINITY;
    for (int64_t k = 0; k < n; k++) {
        float v = *elem_at(t, k);
        if (isnan(v)) { best = v; best_k = k; break; }
        if (best_k < 0 || (want_max ? v > best : v < best)) { best = v; best_k = k; }
    }
    if (where) *where = best_k;
    return best;
}

double sm_tensor_max_all(const sm_tensor *t, int64_t *argmax) { return extreme_all(t, argmax, 1); }
double sm_tensor_min_all(const sm_tensor *t, int64_t *argmin) { return extreme_all(t, argmin, 0); }

double sm_tensor_norm_all(const sm_tensor *t, double p)
{
    iter3 it;
    const sm_tensor *ops[1] = { t };
    double acc = 0;
    iter_init(&it, 1, ops);
    FOR_RUNS(it) {
        const float *x = it.ptr[0];
        int64_t s = it.istride[0];
        for (int64_t i = 0; i < it.inner; i++) {
            double v = fabs((double)x[i * s]);
            if (p == 1) acc += v;
            else if (p == 2) acc += v * v;
            else if (v > acc || isnan(v)) acc = v;
        }
    }
    return p == 2 ? sqrt(acc) : acc;
}

/* ---- reductions along one dimension -------------------------------------------- */

sm_status sm_tensor_reduce_check(sm_err *err, const sm_tensor *in, int dim)
{
    return check_dim(err, in, dim, "dimension");
}

void sm_tensor_reduce(float *out, int64_t *idx, const sm_tensor *in, int dim, sm_reduce op)
{
    /* Outer positions: every index of in except dim, in row-major order. */
    sm_tensor rest;
    sm_err err;
    int64_t n = in->shape[dim], step = in->stride[dim];
    if (in->shape[dim] == 0) {
        sm_tensor tmp = *in;
        tmp.shape[dim] = 1;
        sm_tensor_select(&err, &rest, &tmp, dim, 0);
    } else {
        sm_tensor_select(&err, &rest, in, dim, 0);
    }
    int64_t outer = sm_numel(rest.ndim, rest.shape);
    for (int64_t k = 0; k < outer; k++) {
        const float *p = elem_at(&rest, k);
        double acc = 0;
        int64_t best = 0;
        switch (op) {
        case SM_RED_SUM: case SM_RED_MEAN:
            for (int64_t i = 0; i < n; i++) acc += p[i * step];
            if (op == SM_RED_MEAN) acc = n ? acc / (double)n : NAN;
            break;
        case SM_RED_MAX: case SM_RED_MIN:
            acc = n ? p[0] : NAN;
            for (int64_t i = 1; i < n && !isnan(acc); i++) {
                float v = p[i * step];
                if (isnan(v) || (op == SM_RED_MAX ? v > acc : v < acc)) { acc = v; best = i; }
            }
            break;
        case SM_RED_NORM1:
            for (int64_t i = 0; i < n; i++) acc += fabs((double)p[i * step]);
            break;
        case SM_RED_NORM2:
            for (int64_t i = 0; i < n; i++) acc += (double)p[i * step] * p[i * step];
            acc = sqrt(acc);
            break;
        case SM_RED_NORMINF:
            for (int64_t i = 0; i < n; i++) {
                double v = fabs((double)p[i * step]);
                if (v > acc || isnan(v)) acc = v;
            }
            break;
        }
        out[k] = (float)acc;
        if (idx) idx[k] = best;
    }
}

/* ---- random fills (row-major order, so a seed gives the same tensor) ------------ */

void sm_tensor_uniform(sm_tensor *t, sm_rng *r, float lo, float hi)
{
    iter3 it;
    const sm_tensor *ops[1] = { t };
    iter_init(&it, 1, ops);
    FOR_RUNS(it) {
        float *p = it.ptr[0];
        int64_t s = it.istride[0];
        for (int64_t i = 0; i < it.inner; i++)
            p[i * s] = (float)(lo + (hi - lo) * sm_rng_uniform(r));
    }
}

void sm_tensor_normal(sm_tensor *t, sm_rng *r, float mean, float std)
{
    iter3 it;
    const sm_tensor *ops[1] = { t };
    iter_init(&it, 1, ops);
    FOR_RUNS(it) {
        float *p = it.ptr[0];
        int64_t s = it.istride[0];
        for (int64_t i = 0; i < it.inner; i++)
            p[i * s] = (float)(mean + std * sm_rng_normal(r));
    }
}
