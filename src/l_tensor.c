/*
 * l_tensor.c — Lua binding of siamese.Tensor (float32, up to 8-D).
 *
 * Lua indices and dimensions are 1-based; they are converted to the core's
 * 0-based ones here and nowhere else. Views keep their storage alive through
 * user value 1. Misuse raises with the function, the argument and shapes.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "l_aux.h"

#define RNG_KEY "siamese.rng"

/* ---- helpers --------------------------------------------------------------------- */

sm_rng *sm_l_rng(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, RNG_KEY);
    sm_rng *r = lua_touserdata(L, -1);
    lua_pop(L, 1); /* still anchored in the registry */
    return r;
}

/* Reads a 1-based dimension argument, checks it against t, returns 0-based. */
static int check_dim(lua_State *L, int arg, const sm_tensor *t)
{
    lua_Integer d = luaL_checkinteger(L, arg);
    if (d < 1 || d > t->ndim) {
        char s[SM_SHAPE_STR_LEN];
        luaL_argerror(L, arg, lua_pushfstring(L, "dimension %d out of range for tensor of shape %s",
                                              (int)d, sm_l_shape(s, t)));
    }
    return (int)d - 1;
}

static sm_tensor *new_like(lua_State *L, const sm_tensor *t)
{
    return sm_l_newtensor(L, t->ndim, t->shape);
}

/* Pushes a contiguous copy of the tensor at idx (or the tensor itself). */
static sm_tensor *push_contiguous(lua_State *L, int idx)
{
    sm_tensor *t = sm_l_checktensor(L, idx);
    if (sm_tensor_is_contiguous(t)) {
        lua_pushvalue(L, idx);
        return t;
    }
    sm_tensor *c = new_like(L, t);
    sm_tensor_copy(c, t);
    return c;
}

static void check_same_shape(lua_State *L, int arg, const sm_tensor *a, const sm_tensor *b)
{
    if (!sm_tensor_same_shape(a, b)) {
        char sa[SM_SHAPE_STR_LEN], sb[SM_SHAPE_STR_LEN];
        luaL_argerror(L, arg, lua_pushfstring(L, "shapes %s and %s differ", sm_l_shape(sa, a), sm_l_shape(sb, b)));
    }
}

/* Converts Lua indices idx..idx+ndim-1 into an element pointer. */
static float *element(lua_State *L, sm_tensor *t, int idx)
{
    float *p = t->data;
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, idx + d);
        if (i < 1 || i > t->shape[d]) {
            char s[SM_SHAPE_STR_LEN];
            luaL_argerror(L, idx + d, lua_pushfstring(L, "index %d out of range for dimension %d of shape %s",
                                                      (int)i, d + 1, sm_l_shape(s, t)));
        }
        p += (i - 1) * t->stride[d];
    }
    return p;
}

/* ---- constructors ------------------------------------------------------------------ */

static int l_zeros(lua_State *L)
{
    int64_t shape[SM_MAX_DIMS];
    int nd = sm_l_checkshape(L, 1, shape);
    sm_tensor *t = sm_l_newtensor(L, nd, shape);
    sm_tensor_fill(t, 0);
    return 1;
}

static int l_ones(lua_State *L)
{
    int64_t shape[SM_MAX_DIMS];
    int nd = sm_l_checkshape(L, 1, shape);
    sm_tensor *t = sm_l_newtensor(L, nd, shape);
    sm_tensor_fill(t, 1);
    return 1;
}

static int l_full(lua_State *L)
{
    int64_t shape[SM_MAX_DIMS];
    luaL_checktype(L, 1, LUA_TTABLE);
    float v = (float)luaL_checknumber(L, 2);
    int nd = sm_l_checkshape(L, 1, shape);
    sm_tensor *t = sm_l_newtensor(L, nd, shape);
    sm_tensor_fill(t, v);
    return 1;
}

static int l_rand(lua_State *L)
{
    int64_t shape[SM_MAX_DIMS];
    int nd = sm_l_checkshape(L, 1, shape);
    sm_tensor *t = sm_l_newtensor(L, nd, shape);
    sm_tensor_uniform(t, sm_l_rng(L), 0, 1);
    return 1;
}

static int l_randn(lua_State *L)
{
    int64_t shape[SM_MAX_DIMS];
    int nd = sm_l_checkshape(L, 1, shape);
    sm_tensor *t = sm_l_newtensor(L, nd, shape);
    sm_tensor_normal(t, sm_l_rng(L), 0, 1);
    return 1;
}

/* Shape of a nested table: descend through first elements. */
static int nested_shape(lua_State *L, int idx, int64_t *shape)
{
    int nd = 0;
    lua_pushvalue(L, idx);
    while (lua_istable(L, -1)) {
        if (nd == SM_MAX_DIMS)
            luaL_argerror(L, 1, lua_pushfstring(L, "nesting deeper than %d levels", SM_MAX_DIMS));
        shape[nd++] = (int64_t)luaL_len(L, -1);
        if (shape[nd - 1] == 0) break;
        lua_geti(L, -1, 1);
        lua_remove(L, -2);
    }
    lua_pop(L, 1);
    return nd;
}

/* Copies a nested table into data (row-major); checks it is rectangular. */
static float *fill_nested(lua_State *L, int idx, int d, int nd, const int64_t *shape, float *out, char *path)
{
    if (d == nd) {
        int ok;
        lua_Number v = lua_tonumberx(L, idx, &ok);
        if (!ok)
            luaL_argerror(L, 1, lua_pushfstring(L, "element %s is a %s, expected a number", path, luaL_typename(L, idx)));
        *out = (float)v;
        return out + 1;
    }
    if (!lua_istable(L, idx) || (int64_t)luaL_len(L, idx) != shape[d])
        luaL_argerror(L, 1, lua_pushfstring(L, "ragged nested table: entry %s should be a table of %d",
                                            path, (int)shape[d]));
    size_t plen = strlen(path);
    for (int64_t i = 1; i <= shape[d]; i++) {
        lua_geti(L, idx, i);
        if (plen < 96) snprintf(path + plen, 128 - plen, "[%d]", (int)i);
        out = fill_nested(L, lua_gettop(L), d + 1, nd, shape, out, path);
        path[plen] = '\0';
        lua_pop(L, 1);
    }
    return out;
}

static int l_new(lua_State *L)
{
    if (lua_isnumber(L, 1)) { /* tensor.new(5) is a 0-dim scalar */
        float v = (float)lua_tonumber(L, 1);
        sm_tensor *t = sm_l_newtensor(L, 0, NULL);
        t->data[0] = v;
        return 1;
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[SM_MAX_DIMS];
    int nd = nested_shape(L, 1, shape);
    sm_tensor *t = sm_l_newtensor(L, nd, shape);
    char path[128] = "";
    int top = lua_gettop(L);
    fill_nested(L, 1, 0, nd, shape, t->data, path);
    lua_settop(L, top);
    return 1;
}

static int l_is_tensor(lua_State *L)
{
    lua_pushboolean(L, sm_l_totensor(L, 1) != NULL);
    return 1;
}

static int l_manual_seed(lua_State *L)
{
    lua_Integer s = luaL_checkinteger(L, 1);
    sm_rng_seed(sm_l_rng(L), (uint64_t)s);
    return 0;
}

/* The generator's whole state as text: "xoshiro256**:" then the four state
 * words, the spare-normal flag and the spare's bits, each in hex, so a
 * checkpoint can store it in safetensors metadata and resume the stream. */
static int l_get_rng_state(lua_State *L)
{
    const sm_rng *r = sm_l_rng(L);
    uint64_t spare;
    memcpy(&spare, &r->spare, sizeof spare);
    char buf[160];
    snprintf(buf, sizeof buf, "xoshiro256**:%016llx,%016llx,%016llx,%016llx,%d,%016llx",
             (unsigned long long)r->s[0], (unsigned long long)r->s[1], (unsigned long long)r->s[2],
             (unsigned long long)r->s[3], r->has_spare ? 1 : 0, (unsigned long long)spare);
    lua_pushstring(L, buf);
    return 1;
}

static int parse_hex64(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    int n = 0;
    for (; n < 16; n++) {
        char c = (*p)[n];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (uint64_t)d;
    }
    *p += 16;
    *out = v;
    return 1;
}

static int l_set_rng_state(lua_State *L)
{
    size_t len;
    const char *str = luaL_checklstring(L, 1, &len);
    static const char prefix[] = "xoshiro256**:";
    const char *p = str;
    sm_rng r = { { 0 }, 0, 0 };
    uint64_t spare = 0;
    int ok = len == sizeof prefix - 1 + 4 * 17 + 2 + 16 && strncmp(p, prefix, sizeof prefix - 1) == 0;
    if (ok) {
        p += sizeof prefix - 1;
        for (int i = 0; i < 4 && ok; i++) ok = parse_hex64(&p, &r.s[i]) && *p++ == ',';
        ok = ok && (p[0] == '0' || p[0] == '1') && p[1] == ',';
        if (ok) { r.has_spare = p[0] == '1'; p += 2; }
        ok = ok && parse_hex64(&p, &spare);
        ok = ok && (r.s[0] | r.s[1] | r.s[2] | r.s[3]) != 0; /* the all-zero state is a fixed point */
    }
    if (!ok) return luaL_argerror(L, 1, "not a state from get_rng_state");
    memcpy(&r.spare, &spare, sizeof spare);
    *sm_l_rng(L) = r;
    return 0;
}

/* ---- size queries ------------------------------------------------------------------ */

static int l_dim(lua_State *L)
{
    lua_pushinteger(L, sm_l_checktensor(L, 1)->ndim);
    return 1;
}

static int l_numel(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    lua_pushinteger(L, sm_numel(t->ndim, t->shape));
    return 1;
}

static int l_shape(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        lua_pushinteger(L, t->shape[check_dim(L, 2, t)]);
        return 1;
    }
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int l_stride(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->stride[i]);
        lua_seti(L, -2, i + 1);
    }
    return 1;
}

static int l_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, sm_tensor_is_contiguous(sm_l_checktensor(L, 1)));
    return 1;
}

/* ---- elements ---------------------------------------------------------------------- */

static void check_index_count(lua_State *L, const sm_tensor *t, int given, const char *fn)
{
    if (given != t->ndim) {
        char s[SM_SHAPE_STR_LEN];
        luaL_error(L, "%s: tensor of shape %s needs %d indices, got %d", fn, sm_l_shape(s, t), t->ndim, given);
    }
}

static int l_get(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    check_index_count(L, t, lua_gettop(L) - 1, "get");
    lua_pushnumber(L, *element(L, t, 2));
    return 1;
}

/* t:set(i1, ..., in, value) */
static int l_set(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    int top = lua_gettop(L);
    check_index_count(L, t, top - 2, "set");
    float v = (float)luaL_checknumber(L, top);
    lua_settop(L, top - 1);
    *element(L, t, 2) = v;
    lua_settop(L, 1);
    return 1;
}

static int l_fill(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    sm_tensor_fill(t, (float)luaL_checknumber(L, 2));
    lua_settop(L, 1);
    return 1;
}

static int l_zero(lua_State *L)
{
    sm_tensor_fill(sm_l_checktensor(L, 1), 0);
    lua_settop(L, 1);
    return 1;
}

static int l_uniform_(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    float lo = (float)luaL_optnumber(L, 2, 0), hi = (float)luaL_optnumber(L, 3, 1);
    luaL_argcheck(L, hi >= lo, 3, "upper bound below lower bound");
    sm_tensor_uniform(t, sm_l_rng(L), lo, hi);
    lua_settop(L, 1);
    return 1;
}

static int l_normal_(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    float mean = (float)luaL_optnumber(L, 2, 0), std = (float)luaL_optnumber(L, 3, 1);
    luaL_argcheck(L, std >= 0, 3, "standard deviation must be non-negative");
    sm_tensor_normal(t, sm_l_rng(L), mean, std);
    lua_settop(L, 1);
    return 1;
}

static int l_copy(lua_State *L)
{
    sm_tensor *dst = sm_l_checktensor(L, 1), *src = sm_l_checktensor(L, 2);
    if (sm_numel(dst->ndim, dst->shape) != sm_numel(src->ndim, src->shape)) {
        char sa[SM_SHAPE_STR_LEN], sb[SM_SHAPE_STR_LEN];
        luaL_argerror(L, 2, lua_pushfstring(L, "cannot copy %s into %s: element counts differ",
                                            sm_l_shape(sb, src), sm_l_shape(sa, dst)));
    }
    sm_tensor_copy(dst, src);
    lua_settop(L, 1);
    return 1;
}

static int l_clone(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    sm_tensor *c = new_like(L, t);
    sm_tensor_copy(c, t);
    return 1;
}

static int l_contiguous(lua_State *L)
{
    push_contiguous(L, 1);
    return 1;
}

static void push_table(lua_State *L, const sm_tensor *t, int d, const float *p)
{
    if (d == t->ndim) {
        lua_pushnumber(L, *p);
        return;
    }
    lua_createtable(L, (int)t->shape[d], 0);
    for (int64_t i = 0; i < t->shape[d]; i++) {
        push_table(L, t, d + 1, p + i * t->stride[d]);
        lua_seti(L, -2, i + 1);
    }
}

static int l_totable(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    luaL_checkstack(L, t->ndim + 4, "tensor too deep");
    push_table(L, t, 0, t->data);
    return 1;
}

/* ---- views ---------------------------------------------------------------------------- */

static int l_narrow(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1), v;
    int d = check_dim(L, 2, t);
    lua_Integer start = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
    sm_err err;
    if (sm_tensor_narrow(&err, &v, t, d, start - 1, len) != SM_OK)
        return luaL_argerror(L, 3, err.msg);
    sm_l_pushview(L, 1, &v);
    return 1;
}

static int l_select(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1), v;
    int d = check_dim(L, 2, t);
    lua_Integer i = luaL_checkinteger(L, 3);
    sm_err err;
    if (sm_tensor_select(&err, &v, t, d, i - 1) != SM_OK)
        return luaL_argerror(L, 3, err.msg);
    sm_l_pushview(L, 1, &v);
    return 1;
}

static int l_transpose(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1), v;
    int d1, d2;
    if (lua_isnoneornil(L, 2) && t->ndim == 2) {
        d1 = 0;
        d2 = 1;
    } else {
        d1 = check_dim(L, 2, t);
        d2 = check_dim(L, 3, t);
    }
    sm_err err;
    sm_tensor_transpose(&err, &v, t, d1, d2);
    sm_l_pushview(L, 1, &v);
    return 1;
}

static int l_view(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1), v;
    int64_t shape[SM_MAX_DIMS];
    int nd;
    if (lua_istable(L, 2)) {
        nd = (int)luaL_len(L, 2);
        luaL_argcheck(L, nd <= SM_MAX_DIMS, 2, "too many dimensions");
        for (int i = 0; i < nd; i++) {
            lua_geti(L, 2, i + 1);
            int ok;
            shape[i] = lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_argerror(L, 2, "shape entries must be integers");
            lua_pop(L, 1);
        }
    } else {
        nd = lua_gettop(L) - 1;
        luaL_argcheck(L, nd <= SM_MAX_DIMS, 2, "too many dimensions");
        for (int i = 0; i < nd; i++) shape[i] = luaL_checkinteger(L, i + 2);
    }
    sm_err err;
    if (sm_tensor_view(&err, &v, t, nd, shape) != SM_OK)
        return luaL_argerror(L, 2, err.msg);
    sm_l_pushview(L, 1, &v);
    return 1;
}

/* reshape: a view when contiguous, otherwise a contiguous copy viewed. */
static int l_reshape(lua_State *L)
{
    int top = lua_gettop(L);
    push_contiguous(L, 1);
    lua_replace(L, 1);
    lua_settop(L, top);
    return l_view(L);
}

static int l_unsqueeze(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    lua_Integer d = luaL_checkinteger(L, 2);
    char s[SM_SHAPE_STR_LEN];
    if (d < 1 || d > t->ndim + 1 || t->ndim == SM_MAX_DIMS)
        return luaL_argerror(L, 2, lua_pushfstring(L, "cannot insert dimension %d into shape %s", (int)d, sm_l_shape(s, t)));
    sm_tensor v = *t;
    int k = (int)d - 1;
    for (int i = t->ndim; i > k; i--) {
        v.shape[i] = t->shape[i - 1];
        v.stride[i] = t->stride[i - 1];
    }
    v.shape[k] = 1;
    v.stride[k] = k < t->ndim ? t->shape[k] * t->stride[k] : 1;
    v.ndim = t->ndim + 1;
    sm_l_pushview(L, 1, &v);
    return 1;
}

static int l_squeeze(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1), v = *t;
    int only = lua_isnoneornil(L, 2) ? -1 : check_dim(L, 2, t);
    v.ndim = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 1 && (only < 0 || only == i)) continue;
        v.shape[v.ndim] = t->shape[i];
        v.stride[v.ndim] = t->stride[i];
        v.ndim++;
    }
    sm_l_pushview(L, 1, &v);
    return 1;
}

/* ---- arithmetic ------------------------------------------------------------------------- */

/* op(self, other) where other is a tensor of the same shape or a number.
 * inplace writes into self; otherwise into a new tensor. */
static int arith(lua_State *L, sm_binop op, int inplace, const char *name)
{
    /* Metamethods may see (number, tensor). */
    if (!inplace && lua_isnumber(L, 1) && sm_l_totensor(L, 2)) {
        sm_tensor *b = sm_l_totensor(L, 2);
        float s = (float)lua_tonumber(L, 1);
        sm_tensor *out = new_like(L, b);
        if (op == SM_OP_ADD || op == SM_OP_MUL) {
            sm_tensor_binop_scalar(out, b, s, op);
        } else { /* s - b, s / b */
            sm_tensor_fill(out, s);
            sm_tensor_binop(out, out, b, op);
        }
        return 1;
    }
    sm_tensor *a = sm_l_checktensor(L, 1);
    sm_tensor *out;
    if (lua_isnumber(L, 2)) {
        float s = (float)lua_tonumber(L, 2);
        out = inplace ? a : new_like(L, a);
        sm_tensor_binop_scalar(out, a, s, op);
    } else {
        sm_tensor *b = sm_l_totensor(L, 2);
        if (!b) return luaL_argerror(L, 2, lua_pushfstring(L, "%s expects a tensor or a number, got %s", name, luaL_typename(L, 2)));
        check_same_shape(L, 2, a, b);
        out = inplace ? a : new_like(L, a);
        sm_tensor_binop(out, a, b, op);
    }
    if (inplace) lua_settop(L, 1);
    return 1;
}

static int l_add(lua_State *L)  { return arith(L, SM_OP_ADD, 0, "add"); }
static int l_sub(lua_State *L)  { return arith(L, SM_OP_SUB, 0, "sub"); }
static int l_mul(lua_State *L)  { return arith(L, SM_OP_MUL, 0, "mul"); }
static int l_div(lua_State *L)  { return arith(L, SM_OP_DIV, 0, "div"); }
static int l_add_(lua_State *L) { return arith(L, SM_OP_ADD, 1, "add_"); }
static int l_sub_(lua_State *L) { return arith(L, SM_OP_SUB, 1, "sub_"); }
static int l_mul_(lua_State *L) { return arith(L, SM_OP_MUL, 1, "mul_"); }
static int l_div_(lua_State *L) { return arith(L, SM_OP_DIV, 1, "div_"); }

static int l_scale(lua_State *L)
{
    luaL_checknumber(L, 2);
    return arith(L, SM_OP_MUL, 0, "scale");
}

static int l_scale_(lua_State *L)
{
    luaL_checknumber(L, 2);
    return arith(L, SM_OP_MUL, 1, "scale_");
}

static int l_unm(lua_State *L)
{
    sm_tensor *a = sm_l_checktensor(L, 1);
    sm_tensor *out = new_like(L, a);
    sm_tensor_binop_scalar(out, a, -1.0f, SM_OP_MUL);
    return 1;
}

/* ---- reductions --------------------------------------------------------------------------- */

/* Pushes a tensor of t's shape without dim (or with size 1 if keepdim). */
static sm_tensor *new_reduced(lua_State *L, const sm_tensor *t, int dim, int keepdim)
{
    int64_t shape[SM_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == dim) {
            if (keepdim) shape[nd++] = 1;
        } else {
            shape[nd++] = t->shape[i];
        }
    }
    return sm_l_newtensor(L, nd, shape);
}

/* self:op([dim [, keepdim]]) → number, or a tensor along dim. */
static int reduce(lua_State *L, sm_reduce op)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        int64_t n = sm_numel(t->ndim, t->shape);
        switch (op) {
        case SM_RED_SUM: lua_pushnumber(L, sm_tensor_sum_all(t)); break;
        case SM_RED_MEAN: lua_pushnumber(L, n ? sm_tensor_sum_all(t) / (double)n : NAN); break;
        default: return luaL_error(L, "internal: reduction without dim");
        }
        return 1;
    }
    int d = check_dim(L, 2, t);
    sm_tensor *out = new_reduced(L, t, d, lua_toboolean(L, 3));
    sm_tensor_reduce(out->data, NULL, t, d, op);
    return 1;
}

static int l_sum(lua_State *L)  { return reduce(L, SM_RED_SUM); }
static int l_mean(lua_State *L) { return reduce(L, SM_RED_MEAN); }

/* max/min: no dim → value, 1-based flat index; dim → values, indices
 * (1-based, as a float tensor). */
static int extreme(lua_State *L, int want_max, int only_index)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    if (lua_isnoneornil(L, 2)) {
        if (sm_numel(t->ndim, t->shape) == 0)
            return luaL_argerror(L, 1, want_max ? "max of an empty tensor" : "min of an empty tensor");
        int64_t k;
        double v = want_max ? sm_tensor_max_all(t, &k) : sm_tensor_min_all(t, &k);
        if (only_index) {
            lua_pushinteger(L, k + 1);
            return 1;
        }
        lua_pushnumber(L, v);
        lua_pushinteger(L, k + 1);
        return 2;
    }
    int d = check_dim(L, 2, t);
    if (t->shape[d] == 0)
        return luaL_argerror(L, 2, "reduction over an empty dimension");
    int keep = lua_toboolean(L, 3);
    sm_tensor *vals = new_reduced(L, t, d, keep);
    sm_tensor *idx = new_reduced(L, t, d, keep);
    int64_t n = sm_numel(vals->ndim, vals->shape);
    int64_t *pos = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof(int64_t), 0);
    sm_tensor_reduce(vals->data, pos, t, d, want_max ? SM_RED_MAX : SM_RED_MIN);
    for (int64_t i = 0; i < n; i++) idx->data[i] = (float)(pos[i] + 1);
    lua_pop(L, 1);
    if (only_index) {
        lua_remove(L, -2);
        return 1;
    }
    return 2;
}

static int l_max(lua_State *L)    { return extreme(L, 1, 0); }
static int l_min(lua_State *L)    { return extreme(L, 0, 0); }
static int l_argmax(lua_State *L) { return extreme(L, 1, 1); }
static int l_argmin(lua_State *L) { return extreme(L, 0, 1); }

/* t:norm([p [, dim [, keepdim]]]) with p = 1, 2 (default) or math.huge. */
static int l_norm(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    double p = luaL_optnumber(L, 2, 2);
    if (!(p == 1 || p == 2 || isinf(p)))
        return luaL_argerror(L, 2, "norm order must be 1, 2 or math.huge");
    if (lua_isnoneornil(L, 3)) {
        lua_pushnumber(L, sm_tensor_norm_all(t, p));
        return 1;
    }
    int d = check_dim(L, 3, t);
    sm_tensor *out = new_reduced(L, t, d, lua_toboolean(L, 4));
    sm_tensor_reduce(out->data, NULL, t, d, p == 1 ? SM_RED_NORM1 : p == 2 ? SM_RED_NORM2 : SM_RED_NORMINF);
    return 1;
}

/* ---- linear algebra -------------------------------------------------------------------------- */

static int l_matmul(lua_State *L)
{
    sm_tensor *a = sm_l_checktensor(L, 1), *b = sm_l_checktensor(L, 2);
    char sa[SM_SHAPE_STR_LEN], sb[SM_SHAPE_STR_LEN];
    if (a->ndim != 2 || b->ndim != 2)
        return luaL_error(L, "bad argument to 'matmul' (expected 2-D matrices, got %s and %s)",
                          sm_l_shape(sa, a), sm_l_shape(sb, b));
    if (a->shape[1] != b->shape[0])
        return luaL_error(L, "bad argument to 'matmul' (inner sizes differ: %s x %s)",
                          sm_l_shape(sa, a), sm_l_shape(sb, b));
    if (!sm_matrix_blas_ok(a)) { a = push_contiguous(L, 1); lua_replace(L, 1); }
    if (!sm_matrix_blas_ok(b)) { b = push_contiguous(L, 2); lua_replace(L, 2); }
    int64_t shape[2] = { a->shape[0], b->shape[1] };
    sm_tensor *c;
    if (!lua_isnoneornil(L, 3)) { /* matmul(a, b, out): reuse out */
        c = sm_l_checktensor(L, 3);
        lua_pushvalue(L, 3);
    } else {
        c = sm_l_newtensor(L, 2, shape);
    }
    sm_err err;
    if (sm_matmul_check(&err, c, a, b) != SM_OK)
        return luaL_error(L, "matmul: %s", err.msg);
    sm_matmul(c, a, b);
    return 1;
}

static int l_cdist(lua_State *L)
{
    static const char *const names[] = { "euclidean", "sqeuclidean", "cosine", NULL };
    static const sm_metric metrics[] = { SM_DIST_EUCLIDEAN, SM_DIST_SQEUCLIDEAN, SM_DIST_COSINE };
    sm_tensor *a = sm_l_checktensor(L, 1), *b = sm_l_checktensor(L, 2);
    sm_metric m = metrics[luaL_checkoption(L, 3, "euclidean", names)];
    char sa[SM_SHAPE_STR_LEN], sb[SM_SHAPE_STR_LEN];
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1])
        return luaL_error(L, "bad argument to 'cdist' (expected [N,D] and [M,D] matrices, got %s and %s)",
                          sm_l_shape(sa, a), sm_l_shape(sb, b));
    lua_settop(L, 2);
    a = push_contiguous(L, 1);
    b = push_contiguous(L, 2);
    int64_t shape[2] = { a->shape[0], b->shape[0] }, wshape[1] = { a->shape[0] + b->shape[0] };
    sm_tensor *d = sm_l_newtensor(L, 2, shape);
    sm_tensor *work = sm_l_newtensor(L, 1, wshape);
    sm_err err;
    if (sm_cdist_check(&err, d, a, b) != SM_OK)
        return luaL_error(L, "cdist: %s", err.msg);
    sm_cdist(d, a, b, m, work->data);
    lua_pop(L, 1);
    return 1;
}

/* ---- printing ----------------------------------------------------------------------------------- */

static void add_value(luaL_Buffer *b, float v)
{
    char s[32];
    snprintf(s, sizeof s, "%10.4g", (double)v);
    luaL_addstring(b, s);
}

static int l_tostring(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    char s[SM_SHAPE_STR_LEN];
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "siamese.Tensor");
    luaL_addstring(&b, sm_l_shape(s, t));
    int64_t n = sm_numel(t->ndim, t->shape);
    if (n == 0) {
        luaL_pushresult(&b);
        return 1;
    }
    if (t->ndim == 0) {
        luaL_addchar(&b, ' ');
        add_value(&b, t->data[0]);
    } else if (t->ndim <= 2) {
        /* Rows and columns, eliding the middle of long ones. */
        int64_t rows = t->ndim == 2 ? t->shape[0] : 1, cols = t->shape[t->ndim - 1];
        int64_t rs = t->ndim == 2 ? t->stride[0] : 0, cs = t->stride[t->ndim - 1];
        for (int64_t i = 0; i < rows; i++) {
            if (rows > 8 && i == 4) { luaL_addstring(&b, "\n  ..."); i = rows - 4; }
            luaL_addstring(&b, "\n ");
            for (int64_t j = 0; j < cols; j++) {
                if (cols > 8 && j == 4) { luaL_addstring(&b, "       ..."); j = cols - 4; }
                add_value(&b, t->data[i * rs + j * cs]);
            }
        }
    } else {
        luaL_addstring(&b, "\n ");
        int64_t shown = n < 8 ? n : 8;
        for (int64_t k = 0; k < shown; k++) {
            int64_t off = 0, r = k;
            for (int d = t->ndim - 1; d >= 0; d--) { off += (r % t->shape[d]) * t->stride[d]; r /= t->shape[d]; }
            add_value(&b, t->data[off]);
        }
        if (n > shown) luaL_addstring(&b, " ...");
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- registration ----------------------------------------------------------------------------------- */

static const luaL_Reg tensor_methods[] = {
    { "dim", l_dim }, { "numel", l_numel }, { "shape", l_shape }, { "size", l_shape },
    { "stride", l_stride }, { "is_contiguous", l_is_contiguous },
    { "get", l_get }, { "set", l_set }, { "fill", l_fill }, { "zero", l_zero },
    { "uniform_", l_uniform_ }, { "normal_", l_normal_ },
    { "copy", l_copy }, { "clone", l_clone }, { "contiguous", l_contiguous }, { "totable", l_totable },
    { "narrow", l_narrow }, { "select", l_select }, { "transpose", l_transpose }, { "t", l_transpose },
    { "view", l_view }, { "reshape", l_reshape }, { "unsqueeze", l_unsqueeze }, { "squeeze", l_squeeze },
    { "add", l_add }, { "sub", l_sub }, { "mul", l_mul }, { "div", l_div },
    { "add_", l_add_ }, { "sub_", l_sub_ }, { "mul_", l_mul_ }, { "div_", l_div_ },
    { "scale", l_scale }, { "scale_", l_scale_ },
    { "sum", l_sum }, { "mean", l_mean }, { "max", l_max }, { "min", l_min },
    { "argmax", l_argmax }, { "argmin", l_argmin }, { "norm", l_norm },
    { "matmul", l_matmul },
    { "__add", l_add }, { "__sub", l_sub }, { "__mul", l_mul }, { "__div", l_div }, { "__unm", l_unm },
    { "__tostring", l_tostring },
    { NULL, NULL }
};

static const luaL_Reg tensor_functions[] = {
    { "zeros", l_zeros }, { "ones", l_ones }, { "full", l_full }, { "new", l_new },
    { "rand", l_rand }, { "randn", l_randn }, { "is_tensor", l_is_tensor },
    { "matmul", l_matmul }, { "cdist", l_cdist },
    { NULL, NULL }
};

void sm_open_tensor(lua_State *L)
{
    /* The library RNG lives in the registry; seeded with 0 until manual_seed. */
    sm_rng *r = lua_newuserdatauv(L, sizeof(sm_rng), 0);
    sm_rng_seed(r, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, RNG_KEY);

    sm_l_newclass(L, SM_TENSOR_MT, tensor_methods);
    lua_pop(L, 1);
    luaL_newlib(L, tensor_functions);
    lua_setfield(L, -2, "tensor");
    lua_pushcfunction(L, l_manual_seed);
    lua_setfield(L, -2, "manual_seed");
    lua_pushcfunction(L, l_get_rng_state);
    lua_setfield(L, -2, "get_rng_state");
    lua_pushcfunction(L, l_set_rng_state);
    lua_setfield(L, -2, "set_rng_state");
}
