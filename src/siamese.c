/* siamese.c — luaopen_siamese_core: the C module behind require "siamese". */
#include "l_aux.h"

void sm_open_process(lua_State *L); /* l_process.c */
void sm_open_video(lua_State *L);   /* l_video.c */

static int l_set_num_threads(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 1024, 1, "thread count must be 1..1024");
    sm_set_num_threads((int)n);
    return 0;
}

static int l_get_num_threads(lua_State *L)
{
    lua_pushinteger(L, sm_get_num_threads());
    return 1;
}

static int l_clock(lua_State *L)
{
    lua_pushnumber(L, sm_monotonic_seconds());
    return 1;
}

/* {simd = level in use, cpu_simd = the CPU's widest, requested =
 * SIAMESE_SIMD or nil, blas_core = OpenBLAS's kernel} */
static int l_cpu(lua_State *L)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, sm_simd_name(sm_simd_level()));
    lua_setfield(L, -2, "simd");
    lua_pushstring(L, sm_simd_name(sm_simd_cpu_level()));
    lua_setfield(L, -2, "cpu_simd");
    const char *req = sm_simd_request();
    if (req) {
        lua_pushstring(L, req);
        lua_setfield(L, -2, "requested");
    }
    lua_pushstring(L, sm_blas_core());
    lua_setfield(L, -2, "blas_core");
    return 1;
}

int luaopen_siamese_core(lua_State *L)
{
    sm_threads_init();
    lua_newtable(L);
    lua_pushcfunction(L, l_set_num_threads);
    lua_setfield(L, -2, "set_num_threads");
    lua_pushcfunction(L, l_get_num_threads);
    lua_setfield(L, -2, "get_num_threads");
    lua_pushcfunction(L, l_clock);
    lua_setfield(L, -2, "clock");
    lua_pushcfunction(L, l_cpu);
    lua_setfield(L, -2, "cpu");
    sm_open_tensor(L);   /* sets core.tensor, core.manual_seed */
    sm_open_image(L);    /* sets core.image */
    sm_open_nn(L);       /* sets core.nn: layer, loss and optimiser kernels */
    sm_open_serial(L);   /* sets core.write_atomic, core.tensor_from_bytes, core.tensor_to_bytes */
    sm_open_data(L);     /* sets core.data: samplers, batch assembly */
    sm_open_gallery(L);  /* sets core.gallery: new, load, Gallery (the metatable) */
    sm_open_hash(L);     /* sets core.hash: crc32, sha256, file_sha256 */
    sm_open_conv(L);     /* sets core.conv: the convolutions, planned (src/conv/) */
    sm_open_process(L);  /* sets core.process: fork, socketpair, waitpid, frames, spawn */
    sm_open_video(L);    /* sets core.video: pipes and the raw-frame reader behind siamese.video */
    return 1;
}
