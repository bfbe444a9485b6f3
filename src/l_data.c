/*
 * l_data.c — Lua binding of the training-data core (core.data).
 *
 *   permutation(n, seed)               -> {1-based permutation of 1..n}
 *   balanced_pairs(labels, seed)       -> left, right, same
 *   pk_batches(labels, P, K, seed)     -> {{P*K indices}, ...}
 *   random_triplets(labels, n, seed)   -> anchor, positive, negative
 *   batch(images, indices, opts)       -> float tensor [N,C,H,W]
 *
 * Labels are Lua sequences of positive integers; indices are 1-based here
 * and 0-based in sampler.c (converted only in this file). Every C buffer is
 * a Lua userdata allocated before any work, so a raise never leaks. Messages
 * name the Lua-facing function (siamese.data.*) and its argument.
 */
#include <stdarg.h>
#include "l_aux.h"

/* Raises "bad argument #arg to 'fname' (message)" whatever the call chain. */
static int arg_error(lua_State *L, const char *fname, int arg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *msg = lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

static lua_Integer check_integer(lua_State *L, const char *fname, int arg, const char *what)
{
    int ok;
    lua_Integer v = lua_tointegerx(L, arg, &ok);
    if (!ok) arg_error(L, fname, arg, "%s must be an integer, got %s", what, luaL_typename(L, arg));
    return v;
}

static uint64_t check_seed(lua_State *L, const char *fname, int arg)
{
    return (uint64_t)check_integer(L, fname, arg, "seed");
}

static void *new_buffer(lua_State *L, size_t n, size_t size)
{
    return lua_newuserdatauv(L, n ? n * size : 1, 0);
}

/* Reads a sequence of positive integer labels into a new int32 buffer
 * (pushed), 0-based. */
static int32_t *check_labels(lua_State *L, const char *fname, int arg, int64_t *n)
{
    if (!lua_istable(L, arg)) arg_error(L, fname, arg, "labels must be a table, got %s", luaL_typename(L, arg));
    lua_Integer len = luaL_len(L, arg);
    if (len < 1 || len > INT32_MAX) arg_error(L, fname, arg, "labels must be a non-empty sequence");
    int32_t *labels = new_buffer(L, (size_t)len, sizeof *labels);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, arg, i);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < 1 || v > INT32_MAX)
            arg_error(L, fname, arg, "label %I must be a positive integer, got %s", i,
                      ok ? lua_pushfstring(L, "%I", v) : luaL_typename(L, -1));
        lua_pop(L, 1);
        labels[i - 1] = (int32_t)(v - 1);
    }
    *n = len;
    return labels;
}

/* Groups the labels; the work buffer is pushed. */
static sm_groups build_groups(lua_State *L, const int32_t *labels, int64_t n)
{
    int64_t *work = new_buffer(L, (size_t)sm_groups_work_len(n), sizeof *work);
    sm_groups g;
    sm_groups_build(&g, work, labels, n);
    return g;
}

static void check_status(lua_State *L, const char *fname, int arg, sm_status st, const sm_err *err)
{
    if (st != SM_OK) arg_error(L, fname, arg, "%s", err->msg);
}

/* Pushes {a[0]+1, ..., a[n-1]+1}. */
static void push_indices(lua_State *L, const int64_t *a, int64_t n)
{
    lua_createtable(L, (int)n, 0);
    for (int64_t i = 0; i < n; i++) {
        lua_pushinteger(L, a[i] + 1);
        lua_seti(L, -2, i + 1);
    }
}

/* ---- samplers -------------------------------------------------------------------------- */

static int l_permutation(lua_State *L)
{
    lua_Integer n = check_integer(L, "permutation", 1, "count");
    if (n < 0 || n > INT32_MAX) arg_error(L, "permutation", 1, "count must be 0..%d, got %I", INT32_MAX, n);
    sm_rng r;
    sm_rng_seed(&r, check_seed(L, "permutation", 2));
    int64_t *perm = new_buffer(L, (size_t)n, sizeof *perm);
    sm_permutation(perm, n, &r);
    push_indices(L, perm, n);
    return 1;
}

static int l_balanced_pairs(lua_State *L)
{
    static const char fname[] = "balanced_pairs";
    int64_t n;
    sm_rng r;
    sm_rng_seed(&r, check_seed(L, fname, 2));
    const int32_t *labels = check_labels(L, fname, 1, &n);
    sm_groups g = build_groups(L, labels, n);
    sm_err err;
    check_status(L, fname, 1, sm_balanced_pairs_check(&err, &g), &err);
    int64_t count = sm_balanced_pairs_count(&g);
    int64_t *left = new_buffer(L, (size_t)count, sizeof *left);
    int64_t *right = new_buffer(L, (size_t)count, sizeof *right);
    uint8_t *same = new_buffer(L, (size_t)count, sizeof *same);
    sm_balanced_pairs(left, right, same, &g, &r);
    push_indices(L, left, count);
    push_indices(L, right, count);
    lua_createtable(L, (int)count, 0);
    for (int64_t i = 0; i < count; i++) {
        lua_pushinteger(L, same[i]);
        lua_seti(L, -2, i + 1);
    }
    return 3;
}

static int l_pk_batches(lua_State *L)
{
    static const char fname[] = "pk_batches";
    int64_t n;
    lua_Integer P = check_integer(L, fname, 2, "P"), K = check_integer(L, fname, 3, "K");
    sm_rng r;
    sm_rng_seed(&r, check_seed(L, fname, 4));
    if (P < 2) arg_error(L, fname, 2, "P must be >= 2, got %I", P);
    if (K < 2 || K > INT32_MAX) arg_error(L, fname, 3, "K must be 2..%d, got %I", INT32_MAX, K);
    const int32_t *labels = check_labels(L, fname, 1, &n);
    sm_groups g = build_groups(L, labels, n);
    sm_err err;
    check_status(L, fname, 2, sm_pk_check(&err, &g, P, K), &err);
    int64_t batches = sm_pk_batch_count(&g, P), per_batch = P * K;
    int64_t *work = new_buffer(L, (size_t)sm_groups_count_min(&g, 2), sizeof *work);
    int64_t *out = new_buffer(L, (size_t)(batches * per_batch), sizeof *out);
    sm_pk_batches(out, work, &g, P, K, &r);
    lua_createtable(L, (int)batches, 0);
    for (int64_t b = 0; b < batches; b++) {
        push_indices(L, out + b * per_batch, per_batch);
        lua_seti(L, -2, b + 1);
    }
    return 1;
}

static int l_random_triplets(lua_State *L)
{
    static const char fname[] = "random_triplets";
    int64_t n;
    lua_Integer count = check_integer(L, fname, 2, "count");
    if (count < 0 || count > INT32_MAX) arg_error(L, fname, 2, "count must be 0..%d, got %I", INT32_MAX, count);
    sm_rng r;
    sm_rng_seed(&r, check_seed(L, fname, 3));
    const int32_t *labels = check_labels(L, fname, 1, &n);
    sm_groups g = build_groups(L, labels, n);
    sm_err err;
    check_status(L, fname, 1, sm_triplets_check(&err, &g), &err);
    int64_t *work = new_buffer(L, (size_t)sm_groups_count_min(&g, 2), sizeof *work);
    int64_t *anchor = new_buffer(L, (size_t)count, sizeof *anchor);
    int64_t *positive = new_buffer(L, (size_t)count, sizeof *positive);
    int64_t *negative = new_buffer(L, (size_t)count, sizeof *negative);
    sm_random_triplets(anchor, positive, negative, count, work, &g, &r);
    push_indices(L, anchor, count);
    push_indices(L, positive, count);
    push_indices(L, negative, count);
    return 3;
}

/* ---- batch assembly ---------------------------------------------------------------------- */

/* Argument numbers below are those of dataset:batch(indices, opts). */
#define BATCH_INDICES_ARG 1
#define BATCH_OPTS_ARG 2

/* opts[key]: a number for every channel or a table with one per channel. */
static void per_channel(lua_State *L, int opts, const char *key, double def, int channels, double out[4])
{
    for (int c = 0; c < 4; c++) out[c] = def;
    if (lua_isnoneornil(L, opts)) return;
    int t = lua_getfield(L, opts, key);
    if (t == LUA_TNUMBER) {
        for (int c = 0; c < 4; c++) out[c] = lua_tonumber(L, -1);
    } else if (t == LUA_TTABLE) {
        if (luaL_len(L, -1) != channels)
            arg_error(L, "batch", BATCH_OPTS_ARG, "%s must have %d values (one per channel)", key, channels);
        for (int c = 0; c < channels; c++) {
            lua_geti(L, -1, c + 1);
            if (!lua_isnumber(L, -1)) arg_error(L, "batch", BATCH_OPTS_ARG, "%s[%d] must be a number", key, c + 1);
            out[c] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else if (t != LUA_TNIL) {
        arg_error(L, "batch", BATCH_OPTS_ARG, "%s must be a number or a table", key);
    }
    lua_pop(L, 1);
}

static double opt_number(lua_State *L, int opts, const char *key, double def)
{
    if (lua_isnoneornil(L, opts)) return def;
    int t = lua_getfield(L, opts, key);
    double v = def;
    if (t == LUA_TNUMBER) v = lua_tonumber(L, -1);
    else if (t != LUA_TNIL) arg_error(L, "batch", BATCH_OPTS_ARG, "%s must be a number, got %s", key, lua_typename(L, t));
    lua_pop(L, 1);
    return v;
}

static sm_batch_params batch_params(lua_State *L, int opts, int channels)
{
    if (!lua_isnoneornil(L, opts) && !lua_istable(L, opts))
        arg_error(L, "batch", BATCH_OPTS_ARG, "table expected, got %s", luaL_typename(L, opts));
    sm_batch_params p;
    p.scale = opt_number(L, opts, "scale", 1.0 / 255);
    per_channel(L, opts, "mean", 0, channels, p.mean);
    per_channel(L, opts, "std", 1, channels, p.std);
    p.flip = opt_number(L, opts, "flip", 0);
    double shift = opt_number(L, opts, "shift", 0);
    if (shift != (double)(int)shift || shift < 0 || shift > SM_IMAGE_MAX_SIDE)
        arg_error(L, "batch", BATCH_OPTS_ARG, "shift must be an integer 0..%d", SM_IMAGE_MAX_SIDE);
    p.shift = (int)shift;
    p.brightness = opt_number(L, opts, "brightness", 0);
    p.contrast = opt_number(L, opts, "contrast", 0);
    return p;
}

static uint64_t batch_seed(lua_State *L, int opts)
{
    if (lua_isnoneornil(L, opts) || lua_getfield(L, opts, "seed") == LUA_TNIL) {
        if (!lua_isnoneornil(L, opts)) lua_pop(L, 1);
        return sm_rng_next(sm_l_rng(L)); /* follows siamese.manual_seed */
    }
    int ok;
    lua_Integer s = lua_tointegerx(L, -1, &ok);
    if (!ok) arg_error(L, "batch", BATCH_OPTS_ARG, "seed must be an integer");
    lua_pop(L, 1);
    return (uint64_t)s;
}

/* batch(images, indices, opts): images is the dataset's list (anchors them). */
static int l_batch(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_istable(L, 2))
        arg_error(L, "batch", BATCH_INDICES_ARG, "indices must be a table, got %s", luaL_typename(L, 2));
    lua_Integer count = luaL_len(L, 1), n = luaL_len(L, 2);
    if (n < 1 || n > INT32_MAX) arg_error(L, "batch", BATCH_INDICES_ARG, "indices must be a non-empty sequence");
    const sm_image **images = new_buffer(L, (size_t)n, sizeof *images);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 2, i);
        int ok;
        lua_Integer k = lua_tointegerx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok || k < 1 || k > count)
            arg_error(L, "batch", BATCH_INDICES_ARG, "index %I must be an integer 1..%I", i, count);
        lua_geti(L, 1, k);
        images[i - 1] = luaL_testudata(L, -1, SM_IMAGE_MT);
        if (!images[i - 1]) return luaL_error(L, "batch: dataset image %I is not a siamese.Image", k);
        lua_pop(L, 1); /* still referenced by the images table */
    }
    sm_batch_params p = batch_params(L, 3, images[0]->channels);
    sm_rng r;
    sm_rng_seed(&r, batch_seed(L, 3));
    int64_t shape[4] = { n, images[0]->channels, images[0]->height, images[0]->width };
    sm_err err;
    sm_tensor probe;
    sm_tensor_init(&probe, NULL, 4, shape);
    check_status(L, "batch", BATCH_OPTS_ARG, sm_batch_check(&err, &probe, images, n, &p), &err);
    sm_tensor *out = sm_l_newtensor(L, 4, shape);
    sm_batch_assemble(out, images, n, &p, &r);
    return 1;
}

static const luaL_Reg data_functions[] = {
    { "permutation", l_permutation },
    { "balanced_pairs", l_balanced_pairs }, { "pk_batches", l_pk_batches },
    { "random_triplets", l_random_triplets }, { "batch", l_batch },
    { NULL, NULL }
};

void sm_open_data(lua_State *L)
{
    luaL_newlib(L, data_functions);
    lua_setfield(L, -2, "data");
}
