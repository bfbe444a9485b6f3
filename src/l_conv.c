/*
 * l_conv.c — Lua binding of the convolution wing (core.conv, see
 * src/conv/conv.h). nn.Conv2d is its one user besides the specs.
 *
 *   out_size(in, k, stride, dilation, pad_before, pad_after)   -> n (<= 0: the kernel does not fit)
 *   same_padding(in, k, stride, dilation)                      -> pad_before, pad_after
 *   plan(pass, {N,Cin,H,W}, cout, params, held)                -> algorithm name
 *   algorithms                                                 the names, in conv.h's order
 *
 *   weights_shape(algo, pass, {N,Cin,H,W}, cout, params)       -> shape, or nil: the plain weight
 *   make_weights(algo, pass, dst, weight, params)              dst <- weight in algo's form
 *   blocked_pack8(wq, grid, weight)                            -> true, or false when a weight is off the grid
 *
 *   forward_workspace(algo, out, in, w, bias|nil, params, grid|nil)                  -> floats
 *   forward(algo, out, in, w, bias|nil, params, grid|nil, relu, ws [, residual])   out <- conv(in) (+ residual)
 *   backward_input_workspace(algo, grad_in, grad_out, w, params)                     -> floats
 *   backward_input(algo, grad_in, grad_out, w, params, ws)                           grad_in <- dL/din
 *   backward_weight_workspace(algo, grad_w, grad_b|nil, grad_out, in, params)        -> floats
 *   backward_weight(algo, grad_w, grad_b|nil, grad_out, in, params, scale, ws)       grad_w, grad_b += scale dL/d.
 *
 * A pass's workspace takes the pass's own first arguments; grid is the
 * 8-bit weights' (blocked8 only).
 *
 * pass is "forward", "backward_input" or "backward_weight"; params the list
 * {kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups}; held says what the
 * layer holds (sm_conv_weights): {training, train_winograd, winograd,
 * tile, weight_grad_tile, packed, q8}, booleans and integers (nil: 0).
 */
#include "l_aux.h"
#include "conv/conv.h"

static const char *const PASSES[] = { "forward", "backward_input", "backward_weight", NULL };

static int raise(lua_State *L, sm_err *err) { return luaL_error(L, "%s", err->msg); }

static sm_tensor *opt_ctensor(lua_State *L, int arg)
{
    return lua_isnoneornil(L, arg) ? NULL : sm_l_checkcontiguous(L, arg);
}

static sm_conv_algo check_algo(lua_State *L, int arg)
{
    const char *name = luaL_checkstring(L, arg);
    int a = sm_conv_algo_of_name(name);
    if (a < 0) luaL_argerror(L, arg, lua_pushfstring(L, "unknown convolution algorithm '%s'", name));
    return (sm_conv_algo)a;
}

static float *workspace(lua_State *L, int arg, size_t need)
{
    sm_tensor *ws = sm_l_checkcontiguous(L, arg);
    int64_t have = sm_numel(ws->ndim, ws->shape);
    if ((size_t)have < need)
        luaL_argerror(L, arg, lua_pushfstring(L, "workspace has %d floats, %d needed", (int)have, (int)need));
    return ws->data;
}

/* {N,Cin,H,W} at arg, cout at arg + 1, params at arg + 2. */
static sm_conv_shape check_shape(lua_State *L, int arg, sm_conv2d_params *p)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    int64_t d[4];
    for (int i = 0; i < 4; i++) {
        d[i] = sm_l_paramint(L, arg, i + 1);
        if (d[i] < 0) luaL_argerror(L, arg, "sizes must be >= 0");
    }
    int64_t cout = luaL_checkinteger(L, arg + 1);
    *p = sm_l_conv_params(L, arg + 2);
    if (p->groups < 1 || d[1] % p->groups || cout % p->groups)
        luaL_argerror(L, arg + 2, "groups must be >= 1 and divide the channels");
    return sm_conv_shape_of(d[0], d[1], d[2], d[3], cout, p);
}

static int field_int(lua_State *L, int t, const char *k)
{
    lua_getfield(L, t, k);
    int v = lua_isboolean(L, -1) ? lua_toboolean(L, -1) : (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 1);
    return v;
}

static int l_out_size(lua_State *L)
{
    int64_t in = luaL_checkinteger(L, 1);
    int k = (int)luaL_checkinteger(L, 2), s = (int)luaL_checkinteger(L, 3), d = (int)luaL_checkinteger(L, 4);
    int p0 = (int)luaL_checkinteger(L, 5), p1 = (int)luaL_checkinteger(L, 6);
    lua_pushinteger(L, sm_conv_out_size(in, k, s, d, p0, p1));
    return 1;
}

static int l_same_padding(lua_State *L)
{
    int64_t in = luaL_checkinteger(L, 1);
    int k = (int)luaL_checkinteger(L, 2), s = (int)luaL_checkinteger(L, 3), d = (int)luaL_optinteger(L, 4, 1);
    luaL_argcheck(L, s >= 1, 3, "stride must be >= 1");
    int a, b;
    sm_conv_same_padding(in, k, s, d, &a, &b);
    lua_pushinteger(L, a);
    lua_pushinteger(L, b);
    return 2;
}

static int l_plan(lua_State *L)
{
    sm_conv_pass pass = (sm_conv_pass)luaL_checkoption(L, 1, NULL, PASSES);
    sm_conv2d_params p;
    sm_conv_shape s = check_shape(L, 2, &p);
    luaL_checktype(L, 5, LUA_TTABLE);
    sm_conv_weights w = {
        .training = field_int(L, 5, "training"), .train_winograd = field_int(L, 5, "train_winograd"),
        .winograd = field_int(L, 5, "winograd"), .winograd_tile = field_int(L, 5, "tile"),
        .weight_grad_tile = field_int(L, 5, "weight_grad_tile"), .packed = field_int(L, 5, "packed"),
        .q8 = field_int(L, 5, "q8"),
    };
    if ((w.winograd_tile && w.winograd_tile != 2 && w.winograd_tile != 4) ||
        (w.weight_grad_tile && w.weight_grad_tile != 2 && w.weight_grad_tile != 4))
        return luaL_argerror(L, 5, "tiles must be 2 or 4");
    lua_pushstring(L, sm_conv_algo_name(sm_conv_plan(pass, &s, &p, &w, sm_simd_level())));
    return 1;
}

static int l_weights_shape(lua_State *L)
{
    sm_conv_algo a = check_algo(L, 1);
    sm_conv_pass pass = (sm_conv_pass)luaL_checkoption(L, 2, NULL, PASSES);
    sm_conv2d_params p;
    sm_conv_shape s = check_shape(L, 3, &p);
    int64_t shape[3];
    int nd = sm_conv_weights_shape(a, pass, &s, &p, shape);
    if (nd == 0) return 0;
    lua_createtable(L, nd, 0);
    for (int i = 0; i < nd; i++) {
        lua_pushinteger(L, shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_make_weights(lua_State *L)
{
    sm_conv_algo a = check_algo(L, 1);
    sm_conv_pass pass = (sm_conv_pass)luaL_checkoption(L, 2, NULL, PASSES);
    sm_tensor *dst = sm_l_checkcontiguous(L, 3), *w = sm_l_checkcontiguous(L, 4);
    sm_conv2d_params p = sm_l_conv_params(L, 5);
    sm_err err;
    if (sm_conv_weights_check(&err, a, pass, dst, w, &p)) return raise(L, &err);
    sm_conv_weights_make(a, pass, dst, w, &p);
    return 0;
}

static int l_blocked_pack8(lua_State *L)
{
    sm_tensor *wq = sm_l_checkcontiguous(L, 1), *grid = sm_l_checkcontiguous(L, 2), *w = sm_l_checkcontiguous(L, 3);
    sm_err err;
    if (sm_conv2d_blocked_pack8_check(&err, wq, grid, w)) return raise(L, &err);
    lua_pushboolean(L, sm_conv2d_blocked_pack8(wq, grid, w));
    return 1;
}

/* The arguments a pass and its workspace share, checked: (algo, out, in,
 * w, bias|nil, params, grid|nil) for the forward (its residual at 10, with
 * with_residual), (algo, grad_in, grad_out, w, params) for the input
 * gradient, (algo, grad_w, grad_b|nil, grad_out, in, params) for the
 * weight gradient. */
typedef struct {
    sm_conv_algo a;
    sm_tensor *t1, *t2, *t3, *bias, *grid, *res;
    sm_conv2d_params p;
} pass_args;

static pass_args forward_args(lua_State *L, int with_residual)
{
    pass_args g = { check_algo(L, 1), sm_l_checkcontiguous(L, 2), sm_l_checkcontiguous(L, 3),
                    sm_l_checkcontiguous(L, 4), opt_ctensor(L, 5), NULL, NULL, sm_l_conv_params(L, 6) };
    g.grid = opt_ctensor(L, 7);
    g.res = with_residual ? opt_ctensor(L, 10) : NULL;
    sm_err err;
    if (sm_conv_forward_check(&err, g.a, g.t1, g.t2, g.t3, g.grid, g.bias, g.res, &g.p)) raise(L, &err);
    return g;
}

static pass_args input_grad_args(lua_State *L)
{
    pass_args g = { check_algo(L, 1), sm_l_checkcontiguous(L, 2), sm_l_checkcontiguous(L, 3),
                    sm_l_checkcontiguous(L, 4), NULL, NULL, NULL, sm_l_conv_params(L, 5) };
    sm_err err;
    if (sm_conv_backward_input_check(&err, g.a, g.t1, g.t2, g.t3, &g.p)) raise(L, &err);
    return g;
}

static pass_args weight_grad_args(lua_State *L)
{
    pass_args g = { check_algo(L, 1), sm_l_checkcontiguous(L, 2), sm_l_checkcontiguous(L, 4),
                    sm_l_checkcontiguous(L, 5), opt_ctensor(L, 3), NULL, NULL, sm_l_conv_params(L, 6) };
    sm_err err;
    if (sm_conv_backward_weight_check(&err, g.a, g.t1, g.bias, g.t2, g.t3, &g.p)) raise(L, &err);
    return g;
}

static int l_forward_workspace(lua_State *L)
{
    pass_args g = forward_args(L, 0);
    lua_pushinteger(L, (lua_Integer)sm_conv_forward_workspace(g.a, g.t1, g.t2, &g.p));
    return 1;
}

static int l_forward(lua_State *L)
{
    pass_args g = forward_args(L, 1);
    int relu = lua_toboolean(L, 8);
    float *ws = workspace(L, 9, sm_conv_forward_workspace(g.a, g.t1, g.t2, &g.p));
    sm_conv_forward(g.a, g.t1, g.t2, g.t3, g.grid, g.bias, g.res, &g.p, relu, ws);
    return 0;
}

static int l_backward_input_workspace(lua_State *L)
{
    pass_args g = input_grad_args(L);
    lua_pushinteger(L, (lua_Integer)sm_conv_backward_input_workspace(g.a, g.t1, g.t2, &g.p));
    return 1;
}

static int l_backward_input(lua_State *L)
{
    pass_args g = input_grad_args(L);
    float *ws = workspace(L, 6, sm_conv_backward_input_workspace(g.a, g.t1, g.t2, &g.p));
    sm_conv_backward_input(g.a, g.t1, g.t2, g.t3, &g.p, ws);
    return 0;
}

static int l_backward_weight_workspace(lua_State *L)
{
    pass_args g = weight_grad_args(L);
    lua_pushinteger(L, (lua_Integer)sm_conv_backward_weight_workspace(g.a, g.t2, g.t3, &g.p));
    return 1;
}

static int l_backward_weight(lua_State *L)
{
    pass_args g = weight_grad_args(L);
    float scale = (float)luaL_checknumber(L, 7);
    float *ws = workspace(L, 8, sm_conv_backward_weight_workspace(g.a, g.t2, g.t3, &g.p));
    sm_conv_backward_weight(g.a, g.t1, g.bias, g.t2, g.t3, &g.p, scale, ws);
    return 0;
}

static const luaL_Reg conv_functions[] = {
    { "out_size", l_out_size }, { "same_padding", l_same_padding }, { "plan", l_plan },
    { "weights_shape", l_weights_shape }, { "make_weights", l_make_weights }, { "blocked_pack8", l_blocked_pack8 },
    { "forward_workspace", l_forward_workspace }, { "forward", l_forward },
    { "backward_input_workspace", l_backward_input_workspace }, { "backward_input", l_backward_input },
    { "backward_weight_workspace", l_backward_weight_workspace }, { "backward_weight", l_backward_weight },
    { NULL, NULL },
};

void sm_open_conv(lua_State *L)
{
    luaL_newlib(L, conv_functions);
    lua_createtable(L, SM_CONV_NALGOS, 0);
    for (int a = 0; a < SM_CONV_NALGOS; a++) {
        lua_pushstring(L, sm_conv_algo_name((sm_conv_algo)a));
        lua_rawseti(L, -2, a + 1);
    }
    lua_setfield(L, -2, "algorithms");
    lua_setfield(L, -2, "conv");
}
