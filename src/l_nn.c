/*
 * l_nn.c — Lua binding of the neural-network kernels (core.nn; the
 * convolutions are core.conv, l_conv.c).
 *
 * These are the raw kernels the Lua modules in lua/siamese/nn call; they
 * take preallocated tensors, check every shape against the others before
 * touching memory, and raise on misuse. Parameter tables are read once per
 * call (a handful of integers; negligible next to the kernels).
 */
#include <math.h>
#include <string.h>
#include "l_aux.h"
#include "nn.h"

#define SM_INTBUF_MT "siamese.IntBuffer"

typedef struct { int64_t n; int32_t data[]; } intbuf;

/* ---- argument helpers ----------------------------------------------------------- */

static sm_tensor *opt_ctensor(lua_State *L, int arg)
{
    return lua_isnoneornil(L, arg) ? NULL : sm_l_checkcontiguous(L, arg);
}

static int64_t numel(const sm_tensor *t) { return sm_numel(t->ndim, t->shape); }

static void same_numel(lua_State *L, int arg, const sm_tensor *t, int64_t n, const char *what)
{
    if (numel(t) != n) {
        char s[SM_SHAPE_STR_LEN];
        luaL_argerror(L, arg, lua_pushfstring(L, "%s %s must have %d elements", what, sm_l_shape(s, t), (int)n));
    }
}

static void same_shape(lua_State *L, int arg, const sm_tensor *t, const sm_tensor *ref)
{
    if (!sm_tensor_same_shape(t, ref)) {
        char s1[SM_SHAPE_STR_LEN], s2[SM_SHAPE_STR_LEN];
        luaL_argerror(L, arg, lua_pushfstring(L, "shape %s does not match %s", sm_l_shape(s1, t), sm_l_shape(s2, ref)));
    }
}

static int raise(lua_State *L, sm_err *err) { return luaL_error(L, "%s", err->msg); }

/* {kh, kw, sh, sw, pt, pl, pb, pr, count_pad} */
static sm_pool2d_params pool_params(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    sm_pool2d_params p;
    p.kh = sm_l_paramint(L, arg, 1); p.kw = sm_l_paramint(L, arg, 2);
    p.sh = sm_l_paramint(L, arg, 3); p.sw = sm_l_paramint(L, arg, 4);
    p.pt = sm_l_paramint(L, arg, 5); p.pl = sm_l_paramint(L, arg, 6);
    p.pb = sm_l_paramint(L, arg, 7); p.pr = sm_l_paramint(L, arg, 8);
    p.count_pad = sm_l_paramint(L, arg, 9);
    return p;
}

/* [N,C,...] → N, C, L (product of the rest); 1-D input is [N] with C = L = 1. */
static void ncl(const sm_tensor *t, int64_t *N, int64_t *C, int64_t *L)
{
    *N = t->ndim > 0 ? t->shape[0] : 1;
    *C = t->ndim > 1 ? t->shape[1] : 1;
    *L = 1;
    for (int i = 2; i < t->ndim; i++) *L *= t->shape[i];
}

/* ---- pooling ----------------------------------------------------------------------------- */

static int l_intbuffer(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0 && n < ((lua_Integer)1 << 34), 1, "buffer size out of range");
    intbuf *b = lua_newuserdatauv(L, sizeof(intbuf) + (size_t)n * sizeof(int32_t), 0);
    b->n = n;
    luaL_setmetatable(L, SM_INTBUF_MT);
    return 1;
}

static int32_t *checkidx(lua_State *L, int arg, int64_t need)
{
    intbuf *b = luaL_checkudata(L, arg, SM_INTBUF_MT);
    if (b->n < need) luaL_argerror(L, arg, lua_pushfstring(L, "index buffer holds %d, %d needed", (int)b->n, (int)need));
    return b->data;
}

static int l_maxpool2d_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *in = sm_l_checkcontiguous(L, 3);
    sm_pool2d_params p = pool_params(L, 4);
    sm_err err;
    if (sm_pool2d_check(&err, out, in, &p)) return raise(L, &err);
    int32_t *idx = lua_isnoneornil(L, 2) ? NULL : checkidx(L, 2, numel(out));
    sm_maxpool2d_forward(out, idx, in, &p);
    return 0;
}

static int l_maxpool2d_backward(lua_State *L)
{
    sm_tensor *gin = sm_l_checkcontiguous(L, 1), *gout = sm_l_checkcontiguous(L, 2);
    sm_pool2d_params p = pool_params(L, 4);
    sm_err err;
    if (sm_pool2d_check(&err, gout, gin, &p)) return raise(L, &err);
    sm_maxpool2d_backward(gin, gout, checkidx(L, 3, numel(gout)));
    return 0;
}

static int l_avgpool2d_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *in = sm_l_checkcontiguous(L, 2);
    sm_pool2d_params p = pool_params(L, 3);
    sm_err err;
    if (sm_pool2d_check(&err, out, in, &p)) return raise(L, &err);
    sm_avgpool2d_forward(out, in, &p);
    return 0;
}

static int l_avgpool2d_backward(lua_State *L)
{
    sm_tensor *gin = sm_l_checkcontiguous(L, 1), *gout = sm_l_checkcontiguous(L, 2);
    sm_pool2d_params p = pool_params(L, 3);
    sm_err err;
    if (sm_pool2d_check(&err, gout, gin, &p)) return raise(L, &err);
    sm_avgpool2d_backward(gin, gout, &p);
    return 0;
}

/* ---- linear ---------------------------------------------------------------------------------- */

static int l_linear_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *in = sm_l_checkcontiguous(L, 2), *w = sm_l_checkcontiguous(L, 3), *b = opt_ctensor(L, 4);
    sm_err err;
    if (sm_linear_check(&err, out, in, w, b)) return raise(L, &err);
    sm_linear_forward(out, in, w, b);
    return 0;
}

static int l_linear_backward_input(lua_State *L)
{
    sm_tensor *gin = sm_l_checkcontiguous(L, 1), *gout = sm_l_checkcontiguous(L, 2), *w = sm_l_checkcontiguous(L, 3);
    sm_err err;
    if (sm_linear_check(&err, gout, gin, w, NULL)) return raise(L, &err);
    sm_linear_backward_input(gin, gout, w);
    return 0;
}

static int l_linear_backward_params(lua_State *L)
{
    sm_tensor *gw = sm_l_checkcontiguous(L, 1), *gb = opt_ctensor(L, 2), *gout = sm_l_checkcontiguous(L, 3), *in = sm_l_checkcontiguous(L, 4);
    float scale = (float)luaL_checknumber(L, 5);
    sm_err err;
    if (sm_linear_check(&err, gout, in, gw, gb)) return raise(L, &err);
    sm_linear_backward_params(gw, gb, gout, in, scale);
    return 0;
}

/* ---- activations, dropout ------------------------------------------------------------------- */

static const char *const act_names[] = { "relu", "leaky_relu", "sigmoid", "tanh", "relu6", NULL };

static int l_activation_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *in = sm_l_checkcontiguous(L, 2);
    sm_activation f = (sm_activation)luaL_checkoption(L, 3, NULL, act_names);
    float slope = (float)luaL_optnumber(L, 4, 0.01);
    same_shape(L, 1, out, in);
    sm_activation_forward(out->data, in->data, numel(in), f, slope);
    return 0;
}

static int l_activation_backward(lua_State *L)
{
    sm_tensor *gin = sm_l_checkcontiguous(L, 1), *gout = sm_l_checkcontiguous(L, 2), *in = sm_l_checkcontiguous(L, 3), *out = sm_l_checkcontiguous(L, 4);
    sm_activation f = (sm_activation)luaL_checkoption(L, 5, NULL, act_names);
    float slope = (float)luaL_optnumber(L, 6, 0.01);
    same_shape(L, 1, gin, in);
    same_shape(L, 2, gout, in);
    same_shape(L, 4, out, in);
    sm_activation_backward(gin->data, gout->data, in->data, out->data, numel(in), f, slope);
    return 0;
}

/* activation_grad(gin, gout, in, out, kind[, slope]): gin = gout * f'(.) (written, not added) */
static int l_activation_grad(lua_State *L)
{
    sm_tensor *gin = sm_l_checkcontiguous(L, 1), *gout = sm_l_checkcontiguous(L, 2), *in = sm_l_checkcontiguous(L, 3), *out = sm_l_checkcontiguous(L, 4);
    sm_activation f = (sm_activation)luaL_checkoption(L, 5, NULL, act_names);
    float slope = (float)luaL_optnumber(L, 6, 0.01);
    same_shape(L, 1, gin, in);
    same_shape(L, 2, gout, in);
    same_shape(L, 4, out, in);
    sm_activation_grad(gin->data, gout->data, in->data, out->data, numel(in), f, slope);
    return 0;
}

static int l_prelu_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *in = sm_l_checkcontiguous(L, 2), *a = sm_l_checkcontiguous(L, 3);
    int64_t N, C, Ln;
    same_shape(L, 1, out, in);
    ncl(in, &N, &C, &Ln);
    same_numel(L, 3, a, C, "slopes");
    sm_prelu_forward(out->data, in->data, a->data, N, C, Ln);
    return 0;
}

static int l_prelu_backward(lua_State *L)
{
    sm_tensor *gin = opt_ctensor(L, 1), *ga = opt_ctensor(L, 2), *gout = sm_l_checkcontiguous(L, 3), *in = sm_l_checkcontiguous(L, 4),
              *a = sm_l_checkcontiguous(L, 5);
    float scale = (float)luaL_checknumber(L, 6);
    int64_t N, C, Ln;
    ncl(in, &N, &C, &Ln);
    same_shape(L, 3, gout, in);
    if (gin) same_shape(L, 1, gin, in);
    same_numel(L, 5, a, C, "slopes");
    if (ga) same_numel(L, 2, ga, C, "slope gradients");
    sm_prelu_backward(gin ? gin->data : NULL, ga ? ga->data : NULL, gout->data, in->data, a->data, N, C, Ln, scale);
    return 0;
}

static int l_dropout_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *mask = sm_l_checkcontiguous(L, 2), *in = sm_l_checkcontiguous(L, 3);
    float p = (float)luaL_checknumber(L, 4);
    luaL_argcheck(L, p >= 0 && p < 1, 4, "dropout probability must be in [0, 1)");
    same_shape(L, 1, out, in);
    same_shape(L, 2, mask, in);
    sm_dropout_forward(out->data, mask->data, in->data, numel(in), p, sm_l_rng(L));
    return 0;
}

static int l_mul_accumulate(lua_State *L)
{
    sm_tensor *gin = sm_l_checkcontiguous(L, 1), *gout = sm_l_checkcontiguous(L, 2), *mask = sm_l_checkcontiguous(L, 3);
    same_shape(L, 2, gout, gin);
    same_shape(L, 3, mask, gin);
    sm_mul_accumulate(gin->data, gout->data, mask->data, numel(gin));
    return 0;
}

/* ---- batch-norm, affine -------------------------------------------------------------------- */

static void check_channels(lua_State *L, int arg, const sm_tensor *t, int64_t C, const char *what)
{
    if (t) same_numel(L, arg, t, C, what);
}

static int l_batchnorm_forward_train(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *sm = sm_l_checkcontiguous(L, 2), *si = sm_l_checkcontiguous(L, 3), *rm = opt_ctensor(L, 4),
              *rv = opt_ctensor(L, 5), *x = sm_l_checkcontiguous(L, 6), *g = opt_ctensor(L, 7), *b = opt_ctensor(L, 8);
    float momentum = (float)luaL_checknumber(L, 9), eps = (float)luaL_checknumber(L, 10);
    int64_t N, C, Ln;
    luaL_argcheck(L, x->ndim >= 2, 6, "batch-norm input must be [N,C] or [N,C,...]");
    ncl(x, &N, &C, &Ln);
    same_shape(L, 1, out, x);
    check_channels(L, 2, sm, C, "saved mean");
    check_channels(L, 3, si, C, "saved invstd");
    check_channels(L, 4, rm, C, "running mean");
    check_channels(L, 5, rv, C, "running var");
    luaL_argcheck(L, (rm == NULL) == (rv == NULL), 5, "running mean and var go together");
    check_channels(L, 7, g, C, "weight");
    check_channels(L, 8, b, C, "bias");
    sm_batchnorm_forward_train(out->data, sm->data, si->data, rm ? rm->data : NULL, rv ? rv->data : NULL,
                               x->data, g ? g->data : NULL, b ? b->data : NULL, N, C, Ln, momentum, eps);
    return 0;
}

static int l_batchnorm_forward_eval(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *x = sm_l_checkcontiguous(L, 2), *rm = sm_l_checkcontiguous(L, 3), *rv = sm_l_checkcontiguous(L, 4),
              *g = opt_ctensor(L, 5), *b = opt_ctensor(L, 6);
    float eps = (float)luaL_checknumber(L, 7);
    int64_t N, C, Ln;
    luaL_argcheck(L, x->ndim >= 2, 2, "batch-norm input must be [N,C] or [N,C,...]");
    ncl(x, &N, &C, &Ln);
    same_shape(L, 1, out, x);
    check_channels(L, 3, rm, C, "running mean");
    check_channels(L, 4, rv, C, "running var");
    check_channels(L, 5, g, C, "weight");
    check_channels(L, 6, b, C, "bias");
    sm_batchnorm_forward_eval(out->data, x->data, rm->data, rv->data, g ? g->data : NULL, b ? b->data : NULL,
                              N, C, Ln, eps);
    return 0;
}

static int l_batchnorm_backward_train(lua_State *L)
{
    sm_tensor *gin = opt_ctensor(L, 1), *gg = opt_ctensor(L, 2), *gb = opt_ctensor(L, 3), *gout = sm_l_checkcontiguous(L, 4),
              *x = sm_l_checkcontiguous(L, 5), *sm = sm_l_checkcontiguous(L, 6), *si = sm_l_checkcontiguous(L, 7), *g = opt_ctensor(L, 8);
    float scale = (float)luaL_checknumber(L, 9);
    int64_t N, C, Ln;
    ncl(x, &N, &C, &Ln);
    if (gin) same_shape(L, 1, gin, x);
    same_shape(L, 4, gout, x);
    check_channels(L, 2, gg, C, "weight gradient");
    check_channels(L, 3, gb, C, "bias gradient");
    check_channels(L, 6, sm, C, "saved mean");
    check_channels(L, 7, si, C, "saved invstd");
    check_channels(L, 8, g, C, "weight");
    sm_batchnorm_backward_train(gin ? gin->data : NULL, gg ? gg->data : NULL, gb ? gb->data : NULL, gout->data,
                                x->data, sm->data, si->data, g ? g->data : NULL, N, C, Ln, scale);
    return 0;
}

static int l_affine_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *x = sm_l_checkcontiguous(L, 2), *w = sm_l_checkcontiguous(L, 3), *b = opt_ctensor(L, 4);
    int64_t N, C, Ln;
    ncl(x, &N, &C, &Ln);
    same_shape(L, 1, out, x);
    check_channels(L, 3, w, C, "scale");
    check_channels(L, 4, b, C, "shift");
    sm_affine_forward(out->data, x->data, w->data, b ? b->data : NULL, N, C, Ln);
    return 0;
}

static int l_affine_backward(lua_State *L)
{
    sm_tensor *gin = opt_ctensor(L, 1), *gw = opt_ctensor(L, 2), *gb = opt_ctensor(L, 3), *gout = sm_l_checkcontiguous(L, 4),
              *x = sm_l_checkcontiguous(L, 5), *w = sm_l_checkcontiguous(L, 6);
    float scale = (float)luaL_checknumber(L, 7);
    int64_t N, C, Ln;
    ncl(x, &N, &C, &Ln);
    if (gin) same_shape(L, 1, gin, x);
    same_shape(L, 4, gout, x);
    check_channels(L, 2, gw, C, "scale gradient");
    check_channels(L, 3, gb, C, "shift gradient");
    check_channels(L, 6, w, C, "scale");
    sm_affine_backward(gin ? gin->data : NULL, gw ? gw->data : NULL, gb ? gb->data : NULL, gout->data, x->data,
                       w->data, N, C, Ln, scale);
    return 0;
}

/* ---- distances ----------------------------------------------------------------------------- */

static const char *const pair_names[] = { "euclidean", "sqeuclidean", "cosine", NULL };

static void check_rows(lua_State *L, int arg, const sm_tensor *a)
{
    if (a->ndim != 2) {
        char s[SM_SHAPE_STR_LEN];
        luaL_argerror(L, arg, lua_pushfstring(L, "expected [N,D] embeddings, got %s", sm_l_shape(s, a)));
    }
}

static int l_pair_distance_forward(lua_State *L)
{
    sm_tensor *d = sm_l_checkcontiguous(L, 1), *a = sm_l_checkcontiguous(L, 2), *b = sm_l_checkcontiguous(L, 3);
    sm_pair_metric m = (sm_pair_metric)luaL_checkoption(L, 4, "euclidean", pair_names);
    float eps = (float)luaL_optnumber(L, 5, 1e-7);
    check_rows(L, 2, a);
    same_shape(L, 3, b, a);
    same_numel(L, 1, d, a->shape[0], "distances");
    sm_pair_distance_forward(d->data, a->data, b->data, a->shape[0], a->shape[1], m, eps);
    return 0;
}

static int l_pair_distance_backward(lua_State *L)
{
    sm_tensor *ga = opt_ctensor(L, 1), *gb = opt_ctensor(L, 2), *gd = sm_l_checkcontiguous(L, 3), *a = sm_l_checkcontiguous(L, 4),
              *b = sm_l_checkcontiguous(L, 5), *d = sm_l_checkcontiguous(L, 6);
    sm_pair_metric m = (sm_pair_metric)luaL_checkoption(L, 7, "euclidean", pair_names);
    float eps = (float)luaL_optnumber(L, 8, 1e-7);
    check_rows(L, 4, a);
    same_shape(L, 5, b, a);
    if (ga) same_shape(L, 1, ga, a);
    if (gb) same_shape(L, 2, gb, a);
    same_numel(L, 3, gd, a->shape[0], "distance gradients");
    same_numel(L, 6, d, a->shape[0], "distances");
    sm_pair_distance_backward(ga ? ga->data : NULL, gb ? gb->data : NULL, gd->data, a->data, b->data, d->data,
                              a->shape[0], a->shape[1], m, eps);
    return 0;
}

static int l_absdiff_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *a = sm_l_checkcontiguous(L, 2), *b = sm_l_checkcontiguous(L, 3);
    same_shape(L, 3, b, a);
    same_shape(L, 1, out, a);
    sm_absdiff_forward(out->data, a->data, b->data, numel(a));
    return 0;
}

static int l_absdiff_backward(lua_State *L)
{
    sm_tensor *ga = opt_ctensor(L, 1), *gb = opt_ctensor(L, 2), *gout = sm_l_checkcontiguous(L, 3), *a = sm_l_checkcontiguous(L, 4),
              *b = sm_l_checkcontiguous(L, 5);
    same_shape(L, 5, b, a);
    same_shape(L, 3, gout, a);
    if (ga) same_shape(L, 1, ga, a);
    if (gb) same_shape(L, 2, gb, a);
    sm_absdiff_backward(ga ? ga->data : NULL, gb ? gb->data : NULL, gout->data, a->data, b->data, numel(a));
    return 0;
}

static int l_l2normalize_forward(lua_State *L)
{
    sm_tensor *y = sm_l_checkcontiguous(L, 1), *norms = sm_l_checkcontiguous(L, 2), *x = sm_l_checkcontiguous(L, 3);
    float eps = (float)luaL_optnumber(L, 4, 1e-12);
    check_rows(L, 3, x);
    same_shape(L, 1, y, x);
    same_numel(L, 2, norms, x->shape[0], "norms");
    sm_l2normalize_forward(y->data, norms->data, x->data, x->shape[0], x->shape[1], eps);
    return 0;
}

static int l_l2normalize_backward(lua_State *L)
{
    sm_tensor *gx = sm_l_checkcontiguous(L, 1), *gy = sm_l_checkcontiguous(L, 2), *y = sm_l_checkcontiguous(L, 3), *norms = sm_l_checkcontiguous(L, 4);
    float eps = (float)luaL_optnumber(L, 5, 1e-12);
    check_rows(L, 3, y);
    same_shape(L, 1, gx, y);
    same_shape(L, 2, gy, y);
    same_numel(L, 4, norms, y->shape[0], "norms");
    sm_l2normalize_backward(gx->data, gy->data, y->data, norms->data, y->shape[0], y->shape[1], eps);
    return 0;
}

/* ---- losses ----------------------------------------------------------------------------------- */

static int l_contrastive_loss(lua_State *L)
{
    sm_tensor *g = opt_ctensor(L, 1), *d = sm_l_checkcontiguous(L, 2), *y = sm_l_checkcontiguous(L, 3);
    float margin = (float)luaL_checknumber(L, 4), scale = (float)luaL_optnumber(L, 5, 1);
    int64_t n = numel(d);
    same_numel(L, 3, y, n, "labels");
    if (g) same_numel(L, 1, g, n, "gradient");
    lua_pushnumber(L, sm_contrastive_loss(g ? g->data : NULL, d->data, y->data, n, margin, scale));
    return 1;
}

static int l_triplet_loss(lua_State *L)
{
    sm_tensor *ga = opt_ctensor(L, 1), *gp = opt_ctensor(L, 2), *gn = opt_ctensor(L, 3);
    sm_tensor *a = sm_l_checkcontiguous(L, 4), *p = sm_l_checkcontiguous(L, 5), *n = sm_l_checkcontiguous(L, 6);
    float margin = (float)luaL_checknumber(L, 7);
    int squared = lua_toboolean(L, 8);
    float eps = (float)luaL_optnumber(L, 9, 1e-7), scale = (float)luaL_optnumber(L, 10, 1);
    check_rows(L, 4, a);
    same_shape(L, 5, p, a);
    same_shape(L, 6, n, a);
    if (ga) same_shape(L, 1, ga, a);
    if (gp) same_shape(L, 2, gp, a);
    if (gn) same_shape(L, 3, gn, a);
    lua_pushnumber(L, sm_triplet_loss(ga ? ga->data : NULL, gp ? gp->data : NULL, gn ? gn->data : NULL, a->data,
                                      p->data, n->data, a->shape[0], a->shape[1], margin, squared, eps, scale));
    return 1;
}

static int l_bce_loss(lua_State *L)
{
    sm_tensor *g = opt_ctensor(L, 1), *p = sm_l_checkcontiguous(L, 2), *y = sm_l_checkcontiguous(L, 3);
    int logits = lua_toboolean(L, 4);
    float eps = (float)luaL_optnumber(L, 5, 1e-7), scale = (float)luaL_optnumber(L, 6, 1);
    int64_t n = numel(p);
    same_numel(L, 3, y, n, "labels");
    if (g) same_numel(L, 1, g, n, "gradient");
    double loss = logits ? sm_bce_logits_loss(g ? g->data : NULL, p->data, y->data, n, scale)
                         : sm_bce_loss(g ? g->data : NULL, p->data, y->data, n, eps, scale);
    lua_pushnumber(L, loss);
    return 1;
}

/* batch_triplet_loss(grad|nil, e [B,D], labels (tensor of B integers), margin,
 * squared, eps, "hard"|"all"|"semihard", scale) → loss, active */
static int l_batch_triplet_loss(lua_State *L)
{
    static const char *const mining[] = { "all", "hard", "semihard", NULL };
    static const sm_mining kinds[] = { SM_MINE_BATCH_ALL, SM_MINE_BATCH_HARD, SM_MINE_SEMIHARD };
    sm_tensor *g = opt_ctensor(L, 1), *e = sm_l_checkcontiguous(L, 2), *lab = sm_l_checkcontiguous(L, 3);
    float margin = (float)luaL_checknumber(L, 4);
    int squared = lua_toboolean(L, 5);
    float eps = (float)luaL_optnumber(L, 6, 1e-7);
    sm_mining m = kinds[luaL_checkoption(L, 7, "hard", mining)];
    float scale = (float)luaL_optnumber(L, 8, 1);
    check_rows(L, 2, e);
    int64_t B = e->shape[0];
    luaL_argcheck(L, B <= 65536, 2, "batch too large for batch triplet loss");
    same_numel(L, 3, lab, B, "labels");
    if (g) same_shape(L, 1, g, e);
    /* Scratch as userdata: nothing to free if a later call raises. */
    int64_t *labels = lua_newuserdatauv(L, (size_t)(B ? B : 1) * sizeof(int64_t), 0);
    double *work = lua_newuserdatauv(L, (size_t)(2 * B * B + 1) * sizeof(double), 0);
    for (int64_t i = 0; i < B; i++) labels[i] = (int64_t)lab->data[i];
    int64_t active;
    double loss = sm_batch_triplet_loss(g ? g->data : NULL, e->data, labels, B, e->shape[1], margin, squared, eps,
                                        m, scale, work, &active);
    lua_pushnumber(L, loss);
    lua_pushinteger(L, active);
    return 2;
}

/* ---- optimisers -------------------------------------------------------------------------------- */

static void check_param_pair(lua_State *L, int arg, const sm_tensor *t, const sm_tensor *w)
{
    same_numel(L, arg, t, numel(w), "optimiser state");
}

static int l_sgd_step(lua_State *L)
{
    sm_tensor *w = sm_l_checkcontiguous(L, 1), *v = opt_ctensor(L, 2), *g = sm_l_checkcontiguous(L, 3);
    float lr = (float)luaL_checknumber(L, 4), mom = (float)luaL_optnumber(L, 5, 0), wd = (float)luaL_optnumber(L, 6, 0);
    int nesterov = lua_toboolean(L, 7);
    check_param_pair(L, 3, g, w);
    if (mom != 0) {
        luaL_argcheck(L, v != NULL, 2, "momentum needs a velocity tensor");
        check_param_pair(L, 2, v, w);
    }
    sm_sgd_step(w->data, v ? v->data : NULL, g->data, numel(w), lr, mom, wd, nesterov);
    return 0;
}

static int l_adam_step(lua_State *L)
{
    sm_tensor *w = sm_l_checkcontiguous(L, 1), *m = sm_l_checkcontiguous(L, 2), *v = sm_l_checkcontiguous(L, 3), *g = sm_l_checkcontiguous(L, 4);
    float lr = (float)luaL_checknumber(L, 5), b1 = (float)luaL_checknumber(L, 6), b2 = (float)luaL_checknumber(L, 7);
    float eps = (float)luaL_checknumber(L, 8), wd = (float)luaL_checknumber(L, 9);
    int decoupled = lua_toboolean(L, 10);
    lua_Integer t = luaL_checkinteger(L, 11);
    luaL_argcheck(L, t >= 1, 11, "step count must be >= 1");
    check_param_pair(L, 2, m, w);
    check_param_pair(L, 3, v, w);
    check_param_pair(L, 4, g, w);
    sm_adam_step(w->data, m->data, v->data, g->data, numel(w), lr, b1, b2, eps, wd, decoupled, t);
    return 0;
}

static int l_rmsprop_step(lua_State *L)
{
    sm_tensor *w = sm_l_checkcontiguous(L, 1), *s = sm_l_checkcontiguous(L, 2), *g = sm_l_checkcontiguous(L, 3);
    float lr = (float)luaL_checknumber(L, 4), rho = (float)luaL_checknumber(L, 5), eps = (float)luaL_checknumber(L, 6);
    float wd = (float)luaL_optnumber(L, 7, 0);
    check_param_pair(L, 2, s, w);
    check_param_pair(L, 3, g, w);
    sm_rmsprop_step(w->data, s->data, g->data, numel(w), lr, rho, eps, wd);
    return 0;
}

/* sgemm_plain(c, a, b): one single-threaded cblas_sgemm (the benchmarks' reference). */
static int l_sgemm_plain(lua_State *L)
{
    sm_tensor *c = sm_l_checkcontiguous(L, 1), *a = sm_l_checkcontiguous(L, 2), *b = sm_l_checkcontiguous(L, 3);
    sm_err err;
    if (sm_matmul_check(&err, c, a, b)) return raise(L, &err);
    sm_sgemm_plain(a->shape[0], b->shape[1], a->shape[1], a->data, b->data, c->data);
    return 0;
}

static int l_sumsq(lua_State *L)
{
    sm_tensor *t = sm_l_checkcontiguous(L, 1);
    lua_pushnumber(L, sm_sumsq(t->data, numel(t)));
    return 1;
}

static const luaL_Reg nn_functions[] = {
    { "intbuffer", l_intbuffer },
    { "maxpool2d_forward", l_maxpool2d_forward }, { "maxpool2d_backward", l_maxpool2d_backward },
    { "avgpool2d_forward", l_avgpool2d_forward }, { "avgpool2d_backward", l_avgpool2d_backward },
    { "linear_forward", l_linear_forward }, { "linear_backward_input", l_linear_backward_input },
    { "linear_backward_params", l_linear_backward_params },
    { "activation_forward", l_activation_forward }, { "activation_backward", l_activation_backward },
    { "activation_grad", l_activation_grad },
    { "prelu_forward", l_prelu_forward }, { "prelu_backward", l_prelu_backward },
    { "dropout_forward", l_dropout_forward }, { "mul_accumulate", l_mul_accumulate },
    { "batchnorm_forward_train", l_batchnorm_forward_train }, { "batchnorm_forward_eval", l_batchnorm_forward_eval },
    { "batchnorm_backward_train", l_batchnorm_backward_train },
    { "affine_forward", l_affine_forward }, { "affine_backward", l_affine_backward },
    { "pair_distance_forward", l_pair_distance_forward }, { "pair_distance_backward", l_pair_distance_backward },
    { "l2normalize_forward", l_l2normalize_forward }, { "l2normalize_backward", l_l2normalize_backward },
    { "absdiff_forward", l_absdiff_forward }, { "absdiff_backward", l_absdiff_backward },
    { "contrastive_loss", l_contrastive_loss }, { "triplet_loss", l_triplet_loss }, { "bce_loss", l_bce_loss },
    { "batch_triplet_loss", l_batch_triplet_loss },
    { "sgd_step", l_sgd_step }, { "adam_step", l_adam_step }, { "rmsprop_step", l_rmsprop_step },
    { "sumsq", l_sumsq }, { "sgemm_plain", l_sgemm_plain },
    { NULL, NULL }
};

void sm_open_nn(lua_State *L)
{
    luaL_newmetatable(L, SM_INTBUF_MT);
    lua_pop(L, 1);
    luaL_newlib(L, nn_functions);
    lua_setfield(L, -2, "nn");
}
