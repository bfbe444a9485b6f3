/*
 * l_serial.c — Lua binding of the serialization helpers behind
 * siamese.safetensors (and any other file format written in Lua):
 *
 *   core.write_atomic(path, s1, s2, ...)          -> true | nil, message
 *   core.write_atomic(path, {mode = m}, s1, s2, ...) -> true | nil, message
 *       path holds exactly the concatenation of the strings, or is left as
 *       it was (fileio.c: a temporary in the same directory, fsync'd, then
 *       renamed over path). A symlink is written through. An existing file
 *       keeps its mode (and owner, when the system allows); options.mode
 *       is NOT applied to it. A new file is created with options.mode
 *       (default 0666) through open(2), so the process's umask still
 *       clears bits: the file gets mode & ~umask (0600 stays 0600 under the
 *       usual umasks 022, 027 and 077). mode: an integer from 1 to 0777
 *       (no setuid, setgid or sticky bits; 0 is refused because
 *       sm_write_opts reads 0 as "the default"); the options table knows
 *       no other key. Misuse raises an error naming write_atomic and the
 *       argument.
 *   core.tensor_from_bytes(bytes, offset, dtype, shape)
 *       -> new contiguous float32 tensor from little-endian data of dtype
 *          ("F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8",
 *          "BOOL") starting at the 0-based byte offset
 *   core.tensor_to_bytes(t)                       -> little-endian F32 bytes
 *
 * The conversions live in dtype.c and the file work in fileio.c.
 */
#include <stdio.h>
#include <string.h>
#include "l_aux.h"

/* The options table at arg: the new-file mode (0: none given). Raises on
 * unknown keys or a bad mode. */
static unsigned check_write_opts(lua_State *L, int arg)
{
    unsigned mode = 0;
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        /* key at -2, value at -1 */
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, arg, lua_pushfstring(L, "options are named (mode), got a %s key",
                                                  luaL_typename(L, -2)));
        if (strcmp(lua_tostring(L, -2), "mode") != 0)
            luaL_argerror(L, arg, lua_pushfstring(L, "unknown option '%s' (the options are: mode)",
                                                  lua_tostring(L, -2)));
        int isint = 0;
        lua_Integer m = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
        if (!isint || m < 1 || m > 0777) {
            char got[64];
            if (isint && m < 0)
                snprintf(got, sizeof got, "%lld", (long long)m);
            else if (isint)
                snprintf(got, sizeof got, "%lld (octal %llo)", (long long)m, (unsigned long long)m);
            else if (lua_type(L, -1) == LUA_TNUMBER)
                snprintf(got, sizeof got, "%.14g", (double)lua_tonumber(L, -1));
            else
                snprintf(got, sizeof got, "a %s", luaL_typename(L, -1));
            luaL_argerror(L, arg, lua_pushfstring(L, "mode must be an integer from 1 to 0777 "
                                                  "(octal; 511 in decimal), got %s", got));
        }
        mode = (unsigned)m;
        lua_pop(L, 1);
    }
    return mode;
}

static int l_write_atomic(lua_State *L)
{
    size_t path_len;
    const char *path = luaL_checklstring(L, 1, &path_len);
    luaL_argcheck(L, strlen(path) == path_len, 1, "path contains a zero byte");
    /* An options table may come first: no string buffer is ever a table. */
    int first = 2;
    sm_write_opts o = { .new_mode = 0, .stamp = NULL };
    if (lua_type(L, 2) == LUA_TTABLE) {
        o.new_mode = check_write_opts(L, 2);
        first = 3;
    }
    int top = lua_gettop(L);
    int nbufs = top >= first ? top - first + 1 : 0;
    /* The pointer arrays are userdata: no C heap is held if a check raises. */
    const void **bufs = lua_newuserdatauv(L, (size_t)(nbufs > 0 ? nbufs : 1) * sizeof *bufs, 0);
    size_t *lens = lua_newuserdatauv(L, (size_t)(nbufs > 0 ? nbufs : 1) * sizeof *lens, 0);
    for (int i = 0; i < nbufs; i++) {
        if (lua_type(L, i + first) != LUA_TSTRING)
            luaL_typeerror(L, i + first, "string");
        bufs[i] = lua_tolstring(L, i + first, &lens[i]);
    }
    sm_err err;
    sm_status st = sm_write_atomic_ex(&err, path, (const void *const *)bufs, lens, nbufs, &o);
    if (st != SM_OK)
        return sm_l_status(L, st, &err, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static sm_dtype check_dtype(lua_State *L, int arg)
{
    const char *name = luaL_checkstring(L, arg);
    sm_dtype dt;
    sm_err err;
    if (sm_dtype_parse(&err, &dt, name) != SM_OK)
        luaL_argerror(L, arg, err.msg);
    return dt;
}

static int l_tensor_from_bytes(lua_State *L)
{
    size_t len;
    const char *bytes = luaL_checklstring(L, 1, &len);
    lua_Integer offset = luaL_checkinteger(L, 2);
    sm_dtype dt = check_dtype(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    int64_t shape[SM_MAX_DIMS];
    int ndim = sm_l_checkshape(L, 4, shape);
    sm_err err;
    if (sm_shape_check(&err, ndim, shape, NULL) != SM_OK)
        luaL_argerror(L, 4, err.msg);
    if (offset < 0 || (size_t)offset > len)
        luaL_argerror(L, 2, lua_pushfstring(L, "offset %I outside the %I-byte string",
                                            offset, (lua_Integer)len));
    int64_t numel = sm_numel(ndim, shape);
    size_t need = (size_t)numel * sm_dtype_size(dt); /* numel <= 2^40: no overflow */
    if (need > len - (size_t)offset) {
        char s[SM_SHAPE_STR_LEN];
        return luaL_argerror(L, 1, lua_pushfstring(L, "shape %s of %s needs %I bytes at offset %I, "
                             "but the string has %I bytes (%I after the offset)",
                             sm_shape_str(s, sizeof s, ndim, shape), sm_dtype_name(dt),
                             (lua_Integer)need, offset, (lua_Integer)len,
                             (lua_Integer)(len - (size_t)offset)));
    }
    sm_tensor *t = sm_l_newtensor(L, ndim, shape);
    sm_decode_le(t->data, (const uint8_t *)bytes + offset, numel, dt);
    return 1;
}

static int l_tensor_to_bytes(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    size_t n = (size_t)sm_numel(t->ndim, t->shape) * 4;
    luaL_Buffer b;
    uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &b, n);
    sm_encode_f32_le(out, t);
    luaL_pushresultsize(&b, n);
    return 1;
}

/* dequantize(t, scale, min): in place, t holds integer codes (see dtype.c). */
static int l_dequantize(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    double scale = luaL_checknumber(L, 2), min = luaL_checknumber(L, 3);
    luaL_argcheck(L, sm_tensor_is_contiguous(t), 1, "tensor must be contiguous");
    sm_dequantize(t->data, sm_numel(t->ndim, t->shape), scale, min);
    lua_settop(L, 1);
    return 1;
}

static const luaL_Reg serial_functions[] = {
    { "dequantize", l_dequantize },
    { "write_atomic", l_write_atomic },
    { "tensor_from_bytes", l_tensor_from_bytes },
    { "tensor_to_bytes", l_tensor_to_bytes },
    { NULL, NULL }
};

void sm_open_serial(lua_State *L)
{
    luaL_setfuncs(L, serial_functions, 0);
}
