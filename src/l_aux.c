/* l_aux.c — shared binding helpers (see l_aux.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "l_aux.h"

void sm_l_newclass(lua_State *L, const char *name, const luaL_Reg *methods)
{
    luaL_newmetatable(L, name);
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    /* Listed in package.loaded so that error messages raised from a method
     * called without a name (pcall(t.get, t, ...)) still name it, as
     * 'siamese.Tensor.get' (luaL_argerror searches package.loaded). */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

int sm_l_fail(lua_State *L, const char *fmt, ...)
{
    va_list ap;
    luaL_pushfail(L);
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return 2;
}

int sm_l_status(lua_State *L, sm_status st, const sm_err *err, int arg)
{
    const char *msg = err ? err->msg : "error";
    switch (st) {
    case SM_OK:
        return 0;
    case SM_EINVAL:
        if (arg > 0)
            return luaL_argerror(L, arg, msg);
        return luaL_error(L, "%s", msg);
    default:
        return sm_l_fail(L, "%s", msg);
    }
}

/* ---- guards ---------------------------------------------------------------- */

static int guard_gc(lua_State *L)
{
    void **g = luaL_checkudata(L, 1, SM_GUARD_MT);
    sm_l_guard_release(g);
    return 0;
}

void **sm_l_newguard(lua_State *L)
{
    void **g = lua_newuserdatauv(L, sizeof(void *), 0);
    *g = NULL;
    if (luaL_newmetatable(L, SM_GUARD_MT)) {
        lua_pushcfunction(L, guard_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, guard_gc);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    return g;
}

void sm_l_guard_release(void **g)
{
    free(*g);
    *g = NULL;
}

/* ---- tensors --------------------------------------------------------------- */

sm_tensor *sm_l_totensor(lua_State *L, int idx)
{
    return luaL_testudata(L, idx, SM_TENSOR_MT);
}

sm_tensor *sm_l_checktensor(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SM_TENSOR_MT);
}

static sm_tensor *push_tensor_header(lua_State *L)
{
    sm_tensor *t = lua_newuserdatauv(L, sizeof(sm_tensor), 1);
    memset(t, 0, sizeof *t);
    luaL_setmetatable(L, SM_TENSOR_MT);
    return t;
}

sm_tensor *sm_l_newtensor(lua_State *L, int ndim, const int64_t *shape)
{
    sm_err err;
    size_t nbytes;
    if (sm_shape_check(&err, ndim, shape, &nbytes) != SM_OK)
        luaL_error(L, "%s", err.msg);
    sm_tensor *t = push_tensor_header(L);
    /* The storage is a plain userdata so the collector sees its real size. */
    float *data = lua_newuserdatauv(L, nbytes ? nbytes : 1, 0);
    lua_setiuservalue(L, -2, 1);
    sm_tensor_init(t, data, ndim, shape);
    return t;
}

sm_tensor *sm_l_pushview(lua_State *L, int base, const sm_tensor *view)
{
    base = lua_absindex(L, base);
    sm_tensor copy = *view; /* view may point into a userdata we are about to move */
    sm_tensor *t = push_tensor_header(L);
    *t = copy;
    lua_getiuservalue(L, base, 1);
    lua_setiuservalue(L, -2, 1);
    return t;
}

int sm_l_checkshape(lua_State *L, int idx, int64_t *shape)
{
    int ndim;
    if (lua_istable(L, idx)) {
        lua_Integer n = luaL_len(L, idx);
        if (n > SM_MAX_DIMS)
            luaL_argerror(L, idx, lua_pushfstring(L, "shape has %d dimensions, at most %d are supported",
                                                  (int)n, SM_MAX_DIMS));
        ndim = (int)n;
        for (int i = 0; i < ndim; i++) {
            lua_geti(L, idx, i + 1);
            int ok;
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok || v < 0)
                luaL_argerror(L, idx, lua_pushfstring(L, "shape entry %d must be a non-negative integer, got %s",
                                                      i + 1, luaL_tolstring(L, -1, NULL)));
            shape[i] = v;
            lua_pop(L, 1);
        }
        return ndim;
    }
    int top = lua_gettop(L);
    ndim = top - idx + 1;
    if (ndim < 0) ndim = 0;
    if (ndim > SM_MAX_DIMS)
        luaL_error(L, "shape has %d dimensions, at most %d are supported", ndim, SM_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        lua_Integer v = luaL_checkinteger(L, idx + i);
        if (v < 0)
            luaL_argerror(L, idx + i, "size must be non-negative");
        shape[i] = v;
    }
    return ndim;
}

const char *sm_l_shape(char *buf, const sm_tensor *t)
{
    return sm_shape_str(buf, SM_SHAPE_STR_LEN, t->ndim, t->shape);
}

/* ---- images ---------------------------------------------------------------- */

sm_image *sm_l_checkimage(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, SM_IMAGE_MT);
}

sm_image *sm_l_newimage(lua_State *L, int width, int height, int channels)
{
    if (width < 0 || height < 0 || width > SM_IMAGE_MAX_SIDE || height > SM_IMAGE_MAX_SIDE)
        luaL_error(L, "image size %dx%d out of range (each side 0..%d)", width, height, SM_IMAGE_MAX_SIDE);
    if (channels < 1 || channels > 4)
        luaL_error(L, "image channels must be 1..4, got %d", channels);
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    /* Header and pixels in one userdata: the collector sees the real size. */
    sm_image *img = lua_newuserdatauv(L, sizeof(sm_image) + n, 0);
    img->width = width;
    img->height = height;
    img->channels = channels;
    img->data = (uint8_t *)(img + 1);
    luaL_setmetatable(L, SM_IMAGE_MT);
    return img;
}

/* ---- option tables ----------------------------------------------------------- */

static int getopt_field(lua_State *L, int idx, const char *k)
{
    if (idx == 0 || lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lua_getfield(L, idx, k) == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

lua_Number sm_l_optnumfield(lua_State *L, int idx, const char *k, lua_Number def)
{
    if (!getopt_field(L, idx, k)) return def;
    int ok;
    lua_Number v = lua_tonumberx(L, -1, &ok);
    if (!ok) luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a number", k));
    lua_pop(L, 1);
    return v;
}

lua_Integer sm_l_optintfield(lua_State *L, int idx, const char *k, lua_Integer def)
{
    if (!getopt_field(L, idx, k)) return def;
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be an integer", k));
    lua_pop(L, 1);
    return v;
}

const char *sm_l_optstrfield(lua_State *L, int idx, const char *k, const char *def)
{
    if (!getopt_field(L, idx, k)) return def;
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a string", k));
    const char *s = lua_tostring(L, -1);
    lua_pop(L, 1); /* still referenced by the option table */
    return s;
}

int sm_l_optboolfield(lua_State *L, int idx, const char *k, int def)
{
    if (!getopt_field(L, idx, k)) return def;
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* ---- kernel arguments shared by l_nn.c and l_conv.c -------------------------------- */

sm_tensor *sm_l_checkcontiguous(lua_State *L, int arg)
{
    sm_tensor *t = sm_l_checktensor(L, arg);
    if (!sm_tensor_is_contiguous(t)) {
        char s[SM_SHAPE_STR_LEN];
        luaL_argerror(L, arg, lua_pushfstring(L, "tensor %s must be contiguous", sm_l_shape(s, t)));
    }
    return t;
}

int sm_l_paramint(lua_State *L, int t, int i)
{
    lua_geti(L, t, i);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    if (!ok || v < 0 || v > INT32_MAX) luaL_error(L, "parameter %d must be a non-negative integer", i);
    lua_pop(L, 1);
    return (int)v;
}

sm_conv2d_params sm_l_conv_params(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TTABLE);
    sm_conv2d_params p;
    p.kh = sm_l_paramint(L, arg, 1); p.kw = sm_l_paramint(L, arg, 2);
    p.sh = sm_l_paramint(L, arg, 3); p.sw = sm_l_paramint(L, arg, 4);
    p.dh = sm_l_paramint(L, arg, 5); p.dw = sm_l_paramint(L, arg, 6);
    p.pt = sm_l_paramint(L, arg, 7); p.pl = sm_l_paramint(L, arg, 8);
    p.pb = sm_l_paramint(L, arg, 9); p.pr = sm_l_paramint(L, arg, 10);
    p.groups = sm_l_paramint(L, arg, 11);
    return p;
}
