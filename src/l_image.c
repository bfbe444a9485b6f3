/*
 * l_image.c — the siamese.Image userdata and the image functions
 * (core.image): decode/probe/new/from_tensor/resize_tensor and the methods
 * (get, set, bytes, clone, encode, resize, crop, pad, flip, grayscale,
 * to_rgb, warp_affine, to_tensor).
 *
 * An image is one userdata holding the sm_image header and its pixels
 * (sm_l_newimage), so the collector sees its real size. Decoding is two
 * phases: sm_image_probe reads the header and applies the pixel limit, then
 * the userdata is allocated and sm_image_decode fills it; no C heap memory
 * is held across either Lua allocation. Encoders return malloc'd buffers,
 * held in a guard userdata before any Lua call that may raise.
 *
 * A JPEG's EXIF orientation is applied by default (option exif = false
 * keeps the pixels as stored); the orientation applied is kept in a weak
 * registry table keyed by the image (only when not 1) and read as
 * img.orientation.
 *
 * Coordinates are 0-based pixel positions (pixel (x, y) is centred at
 * (x, y)); sizes are width, height for images and [.., H, W] for tensors.
 * Misuse raises (naming the argument and sizes); bad data returns nil, msg.
 */
#include <math.h>
#include <string.h>
#include "l_aux.h"

#define MAX_PIXELS_KEY "siamese.image.max_pixels"
/* Weak-keyed table: decoded image -> EXIF orientation applied (2..8). */
#define ORIENTATION_KEY "siamese.image.orientation"
/* Crop origins beyond this are refused, which keeps offset arithmetic far
 * from overflow. */
#define MAX_OFFSET ((lua_Integer)1 << 31)

/* ---- argument helpers ----------------------------------------------------------- */

static int check_side(lua_State *L, int arg, const char *what)
{
    lua_Integer v = luaL_checkinteger(L, arg);
    if (v < 1 || v > SM_IMAGE_MAX_SIDE)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be 1..%d, got %I", what, SM_IMAGE_MAX_SIDE, v));
    return (int)v;
}

static int check_channels(lua_State *L, int arg)
{
    lua_Integer c = luaL_checkinteger(L, arg);
    if (c < 1 || c > 4)
        luaL_argerror(L, arg, lua_pushfstring(L, "channels must be 1..4, got %I", c));
    return (int)c;
}

/* The value at idx as a byte; `what` (with entry > 0: "what entry N")
 * names it in the message raised against argument arg. */
static int check_u8(lua_State *L, int arg, int idx, const char *what, int entry)
{
    int ok;
    lua_Integer v = lua_tointegerx(L, idx, &ok);
    if (!ok || v < 0 || v > 255) {
        const char *got = luaL_tolstring(L, idx, NULL);
        if (entry > 0)
            luaL_argerror(L, arg, lua_pushfstring(L, "%s entry %d must be an integer 0..255, got %s", what, entry, got));
        luaL_argerror(L, arg, lua_pushfstring(L, "%s must be an integer 0..255, got %s", what, got));
    }
    return (int)v;
}

/* Option k of the table at opts: absent -> def in every channel; a number
 * -> that number in every channel; a table -> exactly `channels` numbers. */
static void opt_channel_numbers(lua_State *L, int opts, const char *k, double def, int channels, double out[4])
{
    for (int i = 0; i < 4; i++) out[i] = def;
    if (lua_isnoneornil(L, opts))
        return;
    luaL_checktype(L, opts, LUA_TTABLE);
    int t = lua_getfield(L, opts, k);
    if (t == LUA_TNUMBER) {
        for (int i = 0; i < 4; i++) out[i] = lua_tonumber(L, -1);
    } else if (t == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, -1);
        if (n != channels)
            luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' must have one number per channel (%d), got %I",
                                                   k, channels, n));
        for (int i = 0; i < channels; i++) {
            lua_geti(L, -1, i + 1);
            int ok;
            out[i] = lua_tonumberx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' entry %d must be a number", k, i + 1));
            lua_pop(L, 1);
        }
    } else if (t != LUA_TNIL) {
        luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' must be a number or a table of %d numbers", k, channels));
    }
    lua_pop(L, 1);
}

/* A byte value per channel from option k (number or table), default 0. */
static void opt_channel_bytes(lua_State *L, int opts, const char *k, int channels, uint8_t out[4])
{
    memset(out, 0, 4);
    if (lua_isnoneornil(L, opts))
        return;
    luaL_checktype(L, opts, LUA_TTABLE);
    int t = lua_getfield(L, opts, k);
    int top = lua_gettop(L);
    const char *what = lua_pushfstring(L, "option '%s'", k);
    if (t == LUA_TNUMBER) {
        memset(out, check_u8(L, opts, top, what, 0), 4);
    } else if (t == LUA_TTABLE) {
        lua_Integer n = luaL_len(L, top);
        if (n != channels)
            luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' must have one value per channel (%d), got %I",
                                                   k, channels, n));
        for (int i = 0; i < channels; i++) {
            lua_geti(L, top, i + 1);
            out[i] = (uint8_t)check_u8(L, opts, top + 2, what, i + 1);
            lua_settop(L, top + 1);
        }
    } else if (t != LUA_TNIL) {
        luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' must be an integer 0..255 or a table of %d", k, channels));
    }
    lua_settop(L, top - 1);
}

static sm_resize_method opt_method(lua_State *L, int opts)
{
    static const char *const names[] = { "auto", "bilinear", "area", "nearest", "tf", NULL };
    static const sm_resize_method methods[] = {
        SM_RESIZE_AUTO, SM_RESIZE_BILINEAR, SM_RESIZE_AREA, SM_RESIZE_NEAREST, SM_RESIZE_TF
    };
    const char *s = sm_l_optstrfield(L, opts, "method", "auto");
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return methods[i];
    luaL_argerror(L, opts, lua_pushfstring(L, "unknown method '%s' (expected auto, bilinear, area, nearest or tf)", s));
    return SM_RESIZE_AUTO;
}

static size_t image_bytes(const sm_image *img)
{
    return (size_t)img->width * (size_t)img->height * (size_t)img->channels;
}

static sm_image *push_like(lua_State *L, const sm_image *img, int channels)
{
    return sm_l_newimage(L, img->width, img->height, channels);
}

/* ---- pixel limit ----------------------------------------------------------------- */

static uint64_t max_pixels(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MAX_PIXELS_KEY);
    lua_Integer n = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : (lua_Integer)SM_IMAGE_DEFAULT_MAX_PIXELS;
    lua_pop(L, 1);
    return (uint64_t)n;
}

static lua_Integer check_pixel_limit(lua_State *L, int arg, lua_Integer n)
{
    if (n < 1)
        luaL_argerror(L, arg, lua_pushfstring(L, "max_pixels must be a positive integer, got %I", n));
    return n;
}

static int l_set_max_pixels(lua_State *L)
{
    lua_Integer n = check_pixel_limit(L, 1, luaL_checkinteger(L, 1));
    lua_pushinteger(L, n);
    lua_setfield(L, LUA_REGISTRYINDEX, MAX_PIXELS_KEY);
    return 0;
}

static int l_get_max_pixels(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)max_pixels(L));
    return 1;
}

/* ---- decoding ---------------------------------------------------------------------- */

/* Option exif of the table at opts (absent: true); anything but a boolean
 * or nil raises. */
static int opt_exif(lua_State *L, int opts)
{
    if (lua_isnoneornil(L, opts))
        return 1;
    luaL_checktype(L, opts, LUA_TTABLE);
    int t = lua_getfield(L, opts, "exif");
    int v = t == LUA_TNIL || lua_toboolean(L, -1);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_argerror(L, opts, lua_pushfstring(L, "option 'exif' must be a boolean, got %s", luaL_typename(L, -1)));
    lua_pop(L, 1);
    return v;
}

static void set_orientation(lua_State *L, int img, int orientation)
{
    if (orientation == 1)
        return;
    img = lua_absindex(L, img);
    lua_getfield(L, LUA_REGISTRYINDEX, ORIENTATION_KEY);
    lua_pushvalue(L, img);
    lua_pushinteger(L, orientation);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static int l_decode(lua_State *L)
{
    size_t len;
    luaL_checktype(L, 1, LUA_TSTRING);
    const uint8_t *buf = (const uint8_t *)lua_tolstring(L, 1, &len);
    lua_Integer limit = (lua_Integer)max_pixels(L);
    limit = check_pixel_limit(L, 2, sm_l_optintfield(L, 2, "max_pixels", limit));
    const char *jd = sm_l_optstrfield(L, 2, "jpeg_decoder", "libjpeg");
    sm_decode_opts opts = { .jpeg_js_compat = strcmp(jd, "jpeg-js") == 0, .apply_orientation = opt_exif(L, 2) };
    if (!opts.jpeg_js_compat && strcmp(jd, "libjpeg") != 0)
        return luaL_argerror(L, 2, lua_pushfstring(L, "jpeg_decoder must be 'libjpeg' or 'jpeg-js', got '%s'", jd));
    sm_err err;
    sm_image_info info;
    sm_status st = sm_image_probe(&err, &info, buf, len, (uint64_t)limit);
    if (st != SM_OK)
        return sm_l_status(L, st, &err, 1);
    int w, h;
    sm_image_decoded_size(&info, &opts, &w, &h);
    sm_image *img = sm_l_newimage(L, w, h, info.channels);
    st = sm_image_decode(&err, img, &info, buf, len, &opts);
    if (st != SM_OK) {
        lua_pop(L, 1);
        return sm_l_status(L, st, &err, 1);
    }
    set_orientation(L, -1, opts.apply_orientation ? info.orientation : 1);
    return 1;
}

/* The header only; the pixel limit does not apply (the per-side one does).
 * The size is the one decode gives with the same exif option. */
static int l_probe(lua_State *L)
{
    size_t len;
    luaL_checktype(L, 1, LUA_TSTRING);
    const uint8_t *buf = (const uint8_t *)lua_tolstring(L, 1, &len);
    sm_decode_opts opts = { .apply_orientation = opt_exif(L, 2) };
    sm_err err;
    sm_image_info info;
    sm_status st = sm_image_probe(&err, &info, buf, len, UINT64_MAX);
    if (st != SM_OK)
        return sm_l_status(L, st, &err, 1);
    int w, h;
    sm_image_decoded_size(&info, &opts, &w, &h);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, sm_image_format_name(info.format));
    lua_setfield(L, -2, "format");
    lua_pushinteger(L, w);
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, h);
    lua_setfield(L, -2, "height");
    lua_pushinteger(L, info.channels);
    lua_setfield(L, -2, "channels");
    return 1;
}

/* ---- construction and pixel access --------------------------------------------------- */

static int l_new(lua_State *L)
{
    int w = check_side(L, 1, "width"), h = check_side(L, 2, "height"), c = check_channels(L, 3);
    size_t need = (size_t)w * (size_t)h * (size_t)c, len = 0;
    const char *bytes = NULL;
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TSTRING);
        bytes = lua_tolstring(L, 4, &len);
        if (len != need)
            luaL_argerror(L, 4, lua_pushfstring(L, "expected %d*%d*%d = %I bytes, got %I",
                                                w, h, c, (lua_Integer)need, (lua_Integer)len));
    }
    sm_image *img = sm_l_newimage(L, w, h, c);
    if (bytes)
        memcpy(img->data, bytes, need);
    else
        memset(img->data, 0, need);
    return 1;
}

static int l_bytes(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    lua_pushlstring(L, (const char *)img->data, image_bytes(img));
    return 1;
}

static uint8_t *check_pixel(lua_State *L, sm_image *img)
{
    lua_Integer x = luaL_checkinteger(L, 2), y = luaL_checkinteger(L, 3);
    if (x < 0 || x >= img->width || y < 0 || y >= img->height)
        luaL_argerror(L, x < 0 || x >= img->width ? 2 : 3,
                      lua_pushfstring(L, "pixel (%I, %I) is outside the %dx%d image", x, y, img->width, img->height));
    return img->data + ((size_t)y * (size_t)img->width + (size_t)x) * (size_t)img->channels;
}

static int l_get(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    uint8_t *p = check_pixel(L, img);
    for (int k = 0; k < img->channels; k++)
        lua_pushinteger(L, p[k]);
    return img->channels;
}

static int l_set(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    uint8_t *p = check_pixel(L, img);
    int given = lua_gettop(L) - 3;
    if (given != img->channels)
        luaL_argerror(L, 4, lua_pushfstring(L, "expected %d channel values, got %d", img->channels, given));
    uint8_t v[4];
    for (int k = 0; k < img->channels; k++)
        v[k] = (uint8_t)check_u8(L, 4 + k, 4 + k, "channel value", 0);
    memcpy(p, v, (size_t)img->channels);
    lua_settop(L, 1);
    return 1;
}

static int l_clone(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    sm_image *out = push_like(L, img, img->channels);
    memcpy(out->data, img->data, image_bytes(img));
    return 1;
}

static int l_index(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {  /* strings only: lua_tostring converts numbers in place */
        const char *k = lua_tostring(L, 2);
        if (strcmp(k, "width") == 0) { lua_pushinteger(L, img->width); return 1; }
        if (strcmp(k, "height") == 0) { lua_pushinteger(L, img->height); return 1; }
        if (strcmp(k, "channels") == 0) { lua_pushinteger(L, img->channels); return 1; }
        if (strcmp(k, "orientation") == 0) {
            lua_getfield(L, LUA_REGISTRYINDEX, ORIENTATION_KEY);
            lua_pushvalue(L, 1);
            if (lua_rawget(L, -2) != LUA_TNUMBER) {
                lua_pop(L, 1);
                lua_pushinteger(L, 1);
            }
            return 1;
        }
    }
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
}

static int l_tostring(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    lua_pushfstring(L, "siamese.Image(%dx%d, %d channel%s)", img->width, img->height,
                    img->channels, img->channels == 1 ? "" : "s");
    return 1;
}

/* ---- encoding ------------------------------------------------------------------------ */

static int l_encode(lua_State *L)
{
    static const char *const formats[] = { "png", "jpeg", "jpg", "pgm", "ppm", "pnm", NULL };
    sm_image *img = sm_l_checkimage(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int f = 0;
    while (formats[f] && strcmp(formats[f], name) != 0) f++;
    if (!formats[f])
        return luaL_argerror(L, 2, lua_pushfstring(L, "unknown format '%s' (expected png, jpeg, jpg, pgm, ppm or pnm)", name));
    lua_Integer quality = sm_l_optintfield(L, 3, "quality", SM_JPEG_DEFAULT_QUALITY);
    if (quality < 1 || quality > 100)
        return luaL_argerror(L, 3, lua_pushfstring(L, "option 'quality' must be 1..100, got %I", quality));
    void **guard = sm_l_newguard(L);   /* before the encoder allocates */
    uint8_t *buf = NULL;
    size_t len = 0;
    sm_err err;
    sm_status st;
    switch (f) {
    case 0:  st = sm_png_encode(&err, &buf, &len, img); break;
    case 1: case 2: st = sm_jpeg_encode(&err, &buf, &len, img, (int)quality); break;
    case 3:  st = sm_pnm_encode(&err, &buf, &len, img, 1); break;
    case 4:  st = sm_pnm_encode(&err, &buf, &len, img, 3); break;
    default: st = sm_pnm_encode(&err, &buf, &len, img, 0); break;
    }
    *guard = buf;
    if (st != SM_OK)
        return sm_l_status(L, st, &err, 1);
    lua_pushlstring(L, (const char *)buf, len);  /* may raise: the guard frees buf */
    sm_l_guard_release(guard);
    return 1;
}

/* ---- geometry --------------------------------------------------------------------------- */

static int l_resize(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    int w = check_side(L, 2, "width"), h = check_side(L, 3, "height");
    sm_resize_method m = opt_method(L, 4);
    sm_image *out = sm_l_newimage(L, w, h, img->channels);
    sm_image_resize(out, img, m);
    return 1;
}

static lua_Integer check_offset(lua_State *L, int arg, const char *what)
{
    lua_Integer v = luaL_checkinteger(L, arg);
    if (v < -MAX_OFFSET || v > MAX_OFFSET)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s %I is out of range", what, v));
    return v;
}

static int l_crop(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    lua_Integer x = check_offset(L, 2, "x"), y = check_offset(L, 3, "y");
    lua_Integer w = luaL_checkinteger(L, 4), h = luaL_checkinteger(L, 5);
    if (w < 1 || h < 1)
        return luaL_argerror(L, w < 1 ? 4 : 5, lua_pushfstring(L, "crop size must be positive, got %Ix%I", w, h));
    if (w > SM_IMAGE_MAX_SIDE || h > SM_IMAGE_MAX_SIDE)
        return luaL_argerror(L, w > SM_IMAGE_MAX_SIDE ? 4 : 5,
                             lua_pushfstring(L, "crop size %Ix%I exceeds %d per side", w, h, SM_IMAGE_MAX_SIDE));
    static const uint8_t zero[4] = { 0, 0, 0, 0 };
    sm_image *out = sm_l_newimage(L, (int)w, (int)h, img->channels);
    sm_image_region(out, img, x, y, zero);
    return 1;
}

static lua_Integer opt_margin(lua_State *L, int opts, const char *k)
{
    lua_Integer v = sm_l_optintfield(L, opts, k, 0);
    if (v < 0 || v > SM_IMAGE_MAX_SIDE)
        luaL_argerror(L, opts, lua_pushfstring(L, "option '%s' must be 0..%d, got %I", k, SM_IMAGE_MAX_SIDE, v));
    return v;
}

static int l_pad(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer left = opt_margin(L, 2, "left"), top = opt_margin(L, 2, "top");
    lua_Integer right = opt_margin(L, 2, "right"), bottom = opt_margin(L, 2, "bottom");
    uint8_t fill[4];
    opt_channel_bytes(L, 2, "value", img->channels, fill);
    const char *mode = sm_l_optstrfield(L, 2, "mode", "constant");
    int edge = strcmp(mode, "edge") == 0;
    if (!edge && strcmp(mode, "constant") != 0)
        return luaL_argerror(L, 2, lua_pushfstring(L, "unknown mode '%s' (expected constant or edge)", mode));
    lua_Integer w = img->width + left + right, h = img->height + top + bottom;
    if (w > SM_IMAGE_MAX_SIDE || h > SM_IMAGE_MAX_SIDE)
        return luaL_argerror(L, 2, lua_pushfstring(L, "padded size %Ix%I exceeds %d per side", w, h, SM_IMAGE_MAX_SIDE));
    sm_image *out = sm_l_newimage(L, (int)w, (int)h, img->channels);
    if (edge)
        sm_image_region_edge(out, img, -left, -top);
    else
        sm_image_region(out, img, -left, -top, fill);
    return 1;
}

static int l_flip(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    sm_image *out = push_like(L, img, img->channels);
    sm_image_flip(out, img);
    return 1;
}

static int convert_to(lua_State *L, int channels)
{
    sm_image *img = sm_l_checkimage(L, 1);
    sm_image *out = push_like(L, img, channels);
    sm_image_convert(out, img);
    return 1;
}

static int l_grayscale(lua_State *L) { return convert_to(L, 1); }
static int l_to_rgb(lua_State *L)    { return convert_to(L, 3); }

/* {{a,b,c},{d,e,f}} or {a,b,c,d,e,f}. */
static void check_matrix(lua_State *L, int arg, double m[6])
{
    static const char shape_msg[] = "affine matrix must be {{a,b,c},{d,e,f}} or {a,b,c,d,e,f}";
    luaL_checktype(L, arg, LUA_TTABLE);
    int nested = lua_geti(L, arg, 1) == LUA_TTABLE;
    lua_pop(L, 1);
    if (luaL_len(L, arg) != (nested ? 2 : 6))
        luaL_argerror(L, arg, shape_msg);
    for (int i = 0; i < 6; i++) {
        if (nested) {
            lua_geti(L, arg, i / 3 + 1);
            if (!lua_istable(L, -1) || luaL_len(L, -1) != 3)
                luaL_argerror(L, arg, shape_msg);
            lua_geti(L, -1, i % 3 + 1);
        } else {
            lua_geti(L, arg, i + 1);
        }
        int ok;
        m[i] = lua_tonumberx(L, -1, &ok);
        if (!ok)
            luaL_argerror(L, arg, lua_pushfstring(L, "affine matrix entry %d is not a number", i + 1));
        lua_pop(L, nested ? 2 : 1);
    }
}

static int l_warp_affine(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    double m[6], inv[6];
    check_matrix(L, 2, m);
    int w = check_side(L, 3, "width"), h = check_side(L, 4, "height");
    int inverse = sm_l_optboolfield(L, 5, "inverse", 0);
    uint8_t border[4];
    opt_channel_bytes(L, 5, "border", img->channels, border);
    sm_err err;
    if (inverse) {
        for (int i = 0; i < 6; i++)
            if (!isfinite(m[i]))
                return luaL_argerror(L, 2, lua_pushfstring(L, "affine matrix entry %d is not finite", i + 1));
        memcpy(inv, m, sizeof inv);
    } else if (sm_affine_invert(&err, inv, m) != SM_OK) {
        return luaL_argerror(L, 2, err.msg);
    }
    sm_image *out = sm_l_newimage(L, w, h, img->channels);
    sm_image_warp_affine(out, img, inv, border);
    return 1;
}

/* ---- tensors ------------------------------------------------------------------------------ */

/* scale, mean and std options shared by to_tensor and from_tensor. */
static void opt_normalisation(lua_State *L, int opts, int channels, double *scale, double mean[4], double std[4])
{
    *scale = sm_l_optnumfield(L, opts, "scale", 1.0 / 255.0);
    if (!(*scale != 0 && isfinite(*scale)))
        luaL_argerror(L, opts, "option 'scale' must be a finite non-zero number");
    opt_channel_numbers(L, opts, "mean", 0.0, channels, mean);
    opt_channel_numbers(L, opts, "std", 1.0, channels, std);
    for (int k = 0; k < channels; k++) {
        if (!(std[k] != 0 && isfinite(std[k])))
            luaL_argerror(L, opts, lua_pushfstring(L, "option 'std' must be finite and non-zero (channel %d is %f)",
                                                   k + 1, std[k]));
        if (!isfinite(mean[k]))
            luaL_argerror(L, opts, lua_pushfstring(L, "option 'mean' must be finite (channel %d is %f)", k + 1, mean[k]));
    }
}

static int l_to_tensor(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    double scale, mean[4], std[4];
    opt_normalisation(L, 2, img->channels, &scale, mean, std);
    sm_tensor *out;
    if (!lua_isnoneornil(L, 2) && lua_getfield(L, 2, "out") != LUA_TNIL) {
        out = sm_l_totensor(L, -1);
        if (!out)
            return luaL_argerror(L, 2, "option 'out' must be a tensor");
        sm_err err;
        if (sm_image_to_tensor_check(&err, out, img) != SM_OK)
            return luaL_argerror(L, 2, err.msg);
    } else {
        int64_t shape[3] = { img->channels, img->height, img->width };
        out = sm_l_newtensor(L, 3, shape);
    }
    sm_image_to_tensor(out, img, scale, mean, std);
    return 1;
}

/* img:to_square_tensor(size [, opts]): face-api's toBatchTensor(size,
 * centred) with normalisation (see sm_image_square_tf). opts.centred places
 * the image in the middle (the extra pixel of an odd difference after, as
 * JS Math.round does), else at the top-left; scale/mean/std as to_tensor. */
static int l_to_square_tensor(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    int size = check_side(L, 2, "size");
    double scale, mean[4], std[4];
    opt_normalisation(L, 3, img->channels, &scale, mean, std);
    int centred = sm_l_optboolfield(L, 3, "centred", 0);
    int64_t w = img->width, h = img->height, side = w > h ? w : h, diff = side - (w < h ? w : h);
    int64_t before = centred ? diff - (int64_t)floor((double)diff / 2 + 0.5) : 0;
    int64_t left = w < h ? before : 0, top = h < w ? before : 0;
    int64_t shape[3] = { img->channels, size, size };
    sm_tensor *out = sm_l_newtensor(L, 3, shape);
    sm_image_square_tf(out, img, left, top, side, scale, mean, std);
    return 1;
}

static int l_from_tensor(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    char s[SM_SHAPE_STR_LEN];
    if (t->ndim != 3 || t->shape[0] < 1 || t->shape[0] > 4 ||
        t->shape[1] < 1 || t->shape[1] > SM_IMAGE_MAX_SIDE || t->shape[2] < 1 || t->shape[2] > SM_IMAGE_MAX_SIDE)
        return luaL_argerror(L, 1, lua_pushfstring(L, "expected a [C,H,W] tensor with C 1..4 and H, W 1..%d, got %s",
                                                   SM_IMAGE_MAX_SIDE, sm_l_shape(s, t)));
    int c = (int)t->shape[0];
    double scale, mean[4], std[4];
    opt_normalisation(L, 2, c, &scale, mean, std);
    sm_image *out = sm_l_newimage(L, (int)t->shape[2], (int)t->shape[1], c);
    sm_image_from_tensor(out, t, scale, mean, std);
    return 1;
}

static int l_resize_tensor(lua_State *L)
{
    sm_tensor *t = sm_l_checktensor(L, 1);
    int h = check_side(L, 2, "height"), w = check_side(L, 3, "width");
    sm_resize_method m = opt_method(L, 4);
    char s[SM_SHAPE_STR_LEN];
    if (t->ndim != 3 && t->ndim != 4)
        return luaL_argerror(L, 1, lua_pushfstring(L, "expected a [C,H,W] or [N,C,H,W] tensor, got %s", sm_l_shape(s, t)));
    int64_t shape[4];
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    shape[t->ndim - 2] = h;
    shape[t->ndim - 1] = w;
    sm_tensor probe = *t;
    memcpy(probe.shape, shape, sizeof(int64_t) * (size_t)t->ndim);
    sm_err err;
    if (sm_tensor_resize_check(&err, &probe, t) != SM_OK)
        return luaL_argerror(L, 1, err.msg);
    sm_tensor *out = sm_l_newtensor(L, t->ndim, shape);
    sm_tensor_resize(out, t, m);
    return 1;
}

/* core.image.area_crops(img, boxes, out [, opts]): the crops of boxes =
 * {{x, y, w, h}, ...} (integers: 0-based top-left and size, 0..65535 per
 * side, an empty box skipped; zero pixels outside img) normalised as to_tensor (opts scale, mean,
 * std) and area-resized in floats into out [#boxes, C, S, S] (transposed,
 * [C, x, y], when opts.transpose): what img:crop, to_tensor and
 * resize_tensor{method = "area"} give, in one pass per box, boxes in
 * parallel (sm_image_area_crops). MTCNN's R-Net and O-Net batches
 * (siamese.face.mtcnn). Returns out. */
static int l_area_crops(lua_State *L)
{
    sm_image *img = sm_l_checkimage(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    sm_tensor *out = sm_l_checktensor(L, 3);
    double scale, mean[4], std[4];
    opt_normalisation(L, 4, img->channels, &scale, mean, std);
    int transpose = 0;
    if (!lua_isnoneornil(L, 4)) {
        lua_getfield(L, 4, "transpose");
        transpose = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_Integer n = luaL_len(L, 2);
    sm_err err;
    if (sm_image_area_crops_check(&err, out, img, (int64_t)n) != SM_OK)
        return luaL_argerror(L, 3, err.msg);
    int64_t *boxes = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * 4 * sizeof(int64_t), 0);
    for (lua_Integer b = 0; b < n; b++) {
        if (lua_geti(L, 2, b + 1) != LUA_TTABLE)
            return luaL_argerror(L, 2, lua_pushfstring(L, "boxes[%I] must be a table {x, y, w, h}", b + 1));
        for (int i = 0; i < 4; i++) {
            int ok;
            lua_geti(L, -1, i + 1);
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            int bad = !ok || (i < 2 ? (v < -MAX_OFFSET || v > MAX_OFFSET) : (v < 0 || v > 65535));
            if (bad)
                return luaL_argerror(L, 2, lua_pushfstring(L, "boxes[%I][%d] must be an integer %s", b + 1, i + 1,
                                                           i < 2 ? "offset" : "size in 0..65535"));
            boxes[4 * b + i] = (int64_t)v;
        }
        lua_pop(L, 1);
    }
    sm_image_area_crops(out, img, boxes, (int64_t)n, scale, mean, std, transpose);
    lua_pushvalue(L, 3);
    return 1;
}

/* ---- registration ------------------------------------------------------------------------ */

static const luaL_Reg image_methods[] = {
    { "bytes", l_bytes }, { "get", l_get }, { "set", l_set }, { "clone", l_clone },
    { "encode", l_encode }, { "resize", l_resize }, { "crop", l_crop }, { "pad", l_pad },
    { "flip", l_flip }, { "grayscale", l_grayscale }, { "to_rgb", l_to_rgb },
    { "warp_affine", l_warp_affine }, { "to_tensor", l_to_tensor }, { "to_square_tensor", l_to_square_tensor },
    { NULL, NULL }
};

static const luaL_Reg image_functions[] = {
    { "decode", l_decode }, { "probe", l_probe }, { "new", l_new },
    { "set_max_pixels", l_set_max_pixels }, { "get_max_pixels", l_get_max_pixels },
    { "from_tensor", l_from_tensor }, { "resize_tensor", l_resize_tensor }, { "area_crops", l_area_crops },
    { NULL, NULL }
};

void sm_open_image(lua_State *L)
{
    lua_newtable(L);                                 /* image -> orientation applied */
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ORIENTATION_KEY);
    luaL_newlib(L, image_functions);                 /* core.image */
    luaL_newlib(L, image_methods);                   /* methods, also core.image.methods */
    luaL_newmetatable(L, SM_IMAGE_MT);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, l_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);                                   /* metatable */
    lua_setfield(L, -2, "methods");                  /* lua/siamese/image.lua adds save */
    lua_setfield(L, -2, "image");
}
