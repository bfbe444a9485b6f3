/*
 * l_hash.c — Lua binding of hash.c (siamese.hash):
 *
 *   core.hash.crc32(s)           -> integer, 8-digit lowercase hex
 *   core.hash.sha256(s)          -> 64-digit lowercase hex
 *   core.hash.file_sha256(path)  -> hex | nil, message
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "l_aux.h"
#include "hash.h"

static int l_crc32(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    uint32_t c = sm_crc32(s, len);
    lua_pushinteger(L, (lua_Integer)c);
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", (unsigned)c);
    lua_pushstring(L, hex);
    return 2;
}

static int l_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    uint8_t d[32];
    char hex[65];
    sm_sha256(d, s, len);
    sm_hex(hex, d, 32);
    lua_pushstring(L, hex);
    return 1;
}

static int l_file_sha256(lua_State *L)
{
    size_t plen;
    const char *path = luaL_checklstring(L, 1, &plen);
    luaL_argcheck(L, strlen(path) == plen, 1, "path contains a zero byte");
    /* The buffer is a userdata: nothing leaks whatever happens. */
    uint8_t *buf = lua_newuserdatauv(L, 1 << 16, 0);
    FILE *f = fopen(path, "rb");
    if (!f)
        return sm_l_fail(L, "cannot open '%s': %s", path, strerror(errno));
    sm_sha256_ctx s;
    sm_sha256_init(&s);
    size_t n;
    while ((n = fread(buf, 1, 1 << 16, f)) > 0)
        sm_sha256_update(&s, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return sm_l_fail(L, "cannot read '%s'", path);
    uint8_t d[32];
    char hex[65];
    sm_sha256_final(&s, d);
    sm_hex(hex, d, 32);
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg hash_functions[] = {
    { "crc32", l_crc32 }, { "sha256", l_sha256 }, { "file_sha256", l_file_sha256 },
    { NULL, NULL }
};

void sm_open_hash(lua_State *L)
{
    luaL_newlib(L, hash_functions);
    lua_setfield(L, -2, "hash");
}
