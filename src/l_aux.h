/*
 * l_aux.h — helpers shared by the binding files (the only files that see Lua).
 *
 * Conventions:
 *  - misuse raises through luaL_argerror/luaL_error with the function, the
 *    argument and the shapes in the message;
 *  - expected failures (bad file, corrupt data) return nil, message
 *    (sm_l_fail);
 *  - no Lua call that can raise is made while C heap memory is held, except
 *    through a guard (sm_l_newguard) whose __gc frees it.
 */
#ifndef L_AUX_H
#define L_AUX_H

#include <lua.h>
#include <lauxlib.h>
#include "sm.h"
#include "nn.h"
#include "conv/conv.h" /* sm_conv2d_params */

#define SM_TENSOR_MT  "siamese.Tensor"
#define SM_IMAGE_MT   "siamese.Image"
#define SM_GUARD_MT   "siamese.Guard"

/* Creates (or fetches) a metatable with __index = itself holding methods
 * and metamethods; leaves it on the stack. */
void sm_l_newclass(lua_State *L, const char *name, const luaL_Reg *methods);

/* Pushes nil, formatted message; returns 2 (for `return sm_l_fail(...)`). */
int sm_l_fail(lua_State *L, const char *fmt, ...);
/* Raises a Lua error for a misuse status, or pushes nil + message for an
 * expected failure (SM_EFORMAT, SM_ELIMIT, SM_EIO, SM_ENOMEM). */
int sm_l_status(lua_State *L, sm_status st, const sm_err *err, int arg);

/* Guard: a userdata holding one malloc'd pointer, freed by __gc/__close.
 * Use it to hold C memory across Lua calls that may raise. */
void **sm_l_newguard(lua_State *L);
void   sm_l_guard_release(void **g); /* frees now and clears */

/* Tensors: userdata (sm_tensor) with user value 1 = storage userdata. */
sm_tensor *sm_l_checktensor(lua_State *L, int idx);
sm_tensor *sm_l_totensor(lua_State *L, int idx); /* NULL if not a tensor */
/* Pushes a new contiguous tensor of the given shape; data is uninitialised.
 * Raises on bad shapes (naming fname). */
sm_tensor *sm_l_newtensor(lua_State *L, int ndim, const int64_t *shape);
/* Pushes a view that shares the storage of the tensor at index base. */
sm_tensor *sm_l_pushview(lua_State *L, int base, const sm_tensor *view);
/* Reads a shape given as a table {d1, d2, ...} at idx, or as the integers
 * idx..top; returns ndim. */
int sm_l_checkshape(lua_State *L, int idx, int64_t *shape);
/* The tensor at arg, which must be contiguous (raises naming its shape). */
sm_tensor *sm_l_checkcontiguous(lua_State *L, int arg);
/* Element i of the list at index t: a non-negative int32 (raises otherwise). */
int sm_l_paramint(lua_State *L, int t, int i);
/* conv2d parameters from the list {kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, groups} at arg. */
sm_conv2d_params sm_l_conv_params(lua_State *L, int arg);
/* Formats a tensor's shape for messages. */
const char *sm_l_shape(char *buf, const sm_tensor *t);

/* Images: userdata holding an sm_image header followed by the pixels. */
sm_image *sm_l_checkimage(lua_State *L, int idx);
sm_image *sm_l_newimage(lua_State *L, int width, int height, int channels);

/* Option tables: field of the table at idx (idx may be absent/nil). */
lua_Number  sm_l_optnumfield(lua_State *L, int idx, const char *k, lua_Number def);
lua_Integer sm_l_optintfield(lua_State *L, int idx, const char *k, lua_Integer def);
const char *sm_l_optstrfield(lua_State *L, int idx, const char *k, const char *def);
int         sm_l_optboolfield(lua_State *L, int idx, const char *k, int def);

/* Module openers (one per binding file). */
void sm_open_tensor(lua_State *L);
void sm_open_image(lua_State *L);
void sm_open_nn(lua_State *L);
void sm_open_serial(lua_State *L);
void sm_open_data(lua_State *L);
void sm_open_gallery(lua_State *L);
void sm_open_hash(lua_State *L);
void sm_open_conv(lua_State *L);
sm_rng *sm_l_rng(lua_State *L); /* the one library RNG */

#endif
