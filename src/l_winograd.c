/*
 * l_winograd.c — Lua binding of the Winograd convolution
 * (core.winograd, see winograd.c). nn.Conv2d:prepare() uses it.
 *
 *   prepare(u, weight)                        u [16 or 36, Cout, Cin] <- transformed weight
 *   prepare(u, weight, true)                  u [16 or 36, Cin, Cout] <- the same of the flipped
 *                                             weight (input gradient, see nn.h)
 *   workspace(out, in, u, params)             floats of scratch forward needs
 *   forward(out, in, u, bias|nil, params, relu, ws)
 *
 *   backward_weight_workspace(gw, go, in, params, tile)
 *   backward_weight(gw, gb|nil, go, in, params, scale, tile, ws)   gw += scale dL/dw,
 *                                             gb += scale dL/db (tile 2 or 4)
 *
 * params is the conv2d list {kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups}.
 */
#include "l_aux.h"
#include "nn.h"

static int l_prepare(lua_State *L)
{
    sm_tensor *u = sm_l_checkcontiguous(L, 1), *w = sm_l_checkcontiguous(L, 2);
    int tile = u->ndim == 3 && u->shape[0] == 16 ? 2 : u->ndim == 3 && u->shape[0] == 36 ? 4 : 0;
    sm_err err;
    if (tile == 0) {
        char s[SM_SHAPE_STR_LEN];
        return luaL_argerror(L, 1, lua_pushfstring(L, "expected [16 or 36,Cout,Cin], got %s", sm_l_shape(s, u)));
    }
    int flipped = lua_toboolean(L, 3);
    if (flipped) {
        if (sm_winograd_prepare_flipped_check(&err, u, w, tile)) return luaL_error(L, "%s", err.msg);
        sm_winograd_prepare_flipped(u, w, tile);
        return 0;
    }
    if (sm_winograd_prepare_check(&err, u, w, tile)) return luaL_error(L, "%s", err.msg);
    sm_winograd_prepare(u, w, tile);
    return 0;
}

static int l_workspace(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *in = sm_l_checkcontiguous(L, 2), *u = sm_l_checkcontiguous(L, 3);
    sm_conv2d_params p = sm_l_conv_params(L, 4);
    sm_err err;
    if (sm_winograd_check(&err, out, in, u, NULL, &p)) return luaL_error(L, "%s", err.msg);
    lua_pushinteger(L, (lua_Integer)sm_winograd_workspace(out, in, u));
    return 1;
}

static int l_forward(lua_State *L)
{
    sm_tensor *out = sm_l_checkcontiguous(L, 1), *in = sm_l_checkcontiguous(L, 2), *u = sm_l_checkcontiguous(L, 3);
    sm_tensor *b = lua_isnoneornil(L, 4) ? NULL : sm_l_checkcontiguous(L, 4);
    sm_conv2d_params p = sm_l_conv_params(L, 5);
    int relu = lua_toboolean(L, 6);
    sm_tensor *ws = sm_l_checkcontiguous(L, 7);
    sm_err err;
    if (sm_winograd_check(&err, out, in, u, b, &p)) return luaL_error(L, "%s", err.msg);
    size_t need = sm_winograd_workspace(out, in, u);
    if ((size_t)sm_numel(ws->ndim, ws->shape) < need)
        return luaL_argerror(L, 7, lua_pushfstring(L, "workspace has %d floats, %d needed",
                                                   (int)sm_numel(ws->ndim, ws->shape), (int)need));
    sm_winograd_forward(out, in, u, b, &p, relu, ws->data);
    return 0;
}

static int l_backward_weight_workspace(lua_State *L)
{
    sm_tensor *gw = sm_l_checkcontiguous(L, 1), *go = sm_l_checkcontiguous(L, 2), *in = sm_l_checkcontiguous(L, 3);
    sm_conv2d_params p = sm_l_conv_params(L, 4);
    int tile = (int)luaL_checkinteger(L, 5);
    sm_err err;
    if (sm_winograd_backward_weight_check(&err, gw, NULL, go, in, &p, tile)) return luaL_error(L, "%s", err.msg);
    lua_pushinteger(L, (lua_Integer)sm_winograd_backward_weight_workspace(go, in, tile));
    return 1;
}

static int l_backward_weight(lua_State *L)
{
    sm_tensor *gw = sm_l_checkcontiguous(L, 1), *gb = lua_isnoneornil(L, 2) ? NULL : sm_l_checkcontiguous(L, 2);
    sm_tensor *go = sm_l_checkcontiguous(L, 3), *in = sm_l_checkcontiguous(L, 4);
    sm_conv2d_params p = sm_l_conv_params(L, 5);
    float scale = (float)luaL_checknumber(L, 6);
    int tile = (int)luaL_checkinteger(L, 7);
    sm_tensor *ws = sm_l_checkcontiguous(L, 8);
    sm_err err;
    if (sm_winograd_backward_weight_check(&err, gw, gb, go, in, &p, tile)) return luaL_error(L, "%s", err.msg);
    size_t need = sm_winograd_backward_weight_workspace(go, in, tile);
    if ((size_t)sm_numel(ws->ndim, ws->shape) < need)
        return luaL_argerror(L, 8, lua_pushfstring(L, "workspace has %d floats, %d needed",
                                                   (int)sm_numel(ws->ndim, ws->shape), (int)need));
    sm_winograd_backward_weight(gw, gb, go, in, &p, scale, tile, ws->data);
    return 0;
}

static const luaL_Reg winograd_functions[] = {
    { "prepare", l_prepare }, { "workspace", l_workspace }, { "forward", l_forward },
    { "backward_weight_workspace", l_backward_weight_workspace }, { "backward_weight", l_backward_weight },
    { NULL, NULL },
};

void sm_open_winograd(lua_State *L)
{
    luaL_newlib(L, winograd_functions);
    lua_setfield(L, -2, "winograd");
}
