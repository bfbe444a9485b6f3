/*
 * l_filelock.c — Lua binding of filelock.c for siamese.gallery.update:
 *
 *   core.gallery.lock(path [, timeout])  -> lock | nil, message
 *       an exclusive advisory lock on "<target>.lock" (target: the file
 *       path finally names, symlinks followed), created 0600 next to it.
 *       timeout: seconds (nil waits as long as it takes, 0 tries once).
 *       lock:close() releases it (also __close and __gc; idempotent);
 *       lock:target() is the resolved gallery path. The kernel releases
 *       it when the process dies.
 *   core.gallery.target(path)            -> resolved path | nil, message
 *   core.gallery.generation(path)        -> string | nil, message
 *       device, inode, size and modification time (ns) of the file: a
 *       different string means the file was replaced or rewritten.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "l_aux.h"
#include "l_filelock.h"

#define SM_LOCK_MT "siamese.GalleryLock"

typedef struct { int fd; } lock_ud;

static const char *check_path(lua_State *L, int arg)
{
    size_t len;
    const char *path = luaL_checklstring(L, arg, &len);
    luaL_argcheck(L, strlen(path) == len, arg, "path contains a zero byte");
    luaL_argcheck(L, len > 0, arg, "path is empty");
    return path;
}

/* Pushes the resolved target of path (a string), or nil, message (returns 0
 * then, after pushing the two values). */
static int push_target(lua_State *L, const char *path)
{
    void **guard = sm_l_newguard(L);
    sm_err err;
    char *t = NULL;
    sm_status st = sm_path_target(&err, path, &t);
    *guard = t;
    if (st != SM_OK) {
        lua_pop(L, 1);
        sm_l_fail(L, "%s", err.msg);
        return 0;
    }
    lua_pushstring(L, t); /* may raise: the guard frees t */
    sm_l_guard_release(guard);
    lua_remove(L, -2);
    return 1;
}

static int l_target(lua_State *L)
{
    const char *path = check_path(L, 1);
    return push_target(L, path) ? 1 : 2;
}

static int l_lock(lua_State *L)
{
    const char *path = check_path(L, 1);
    double timeout = -1;
    if (!lua_isnoneornil(L, 2)) {
        timeout = luaL_checknumber(L, 2);
        luaL_argcheck(L, timeout >= 0 && !isnan(timeout), 2, "timeout must be a number of seconds >= 0");
    }
    lua_settop(L, 2);
    if (!push_target(L, path)) return 2;                     /* 3: target */
    const char *lock_path = lua_pushfstring(L, "%s.lock", lua_tostring(L, 3)); /* 4 */
    lock_ud *lk = lua_newuserdatauv(L, sizeof(lock_ud), 1);    /* 5 */
    lk->fd = -1;
    luaL_setmetatable(L, SM_LOCK_MT);
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, 5, 1);
    sm_err err;
    sm_status st = sm_lock_acquire(&err, &lk->fd, lock_path, timeout);
    if (st == SM_ELIMIT) {
        char waited[32];
        snprintf(waited, sizeof waited, "%g", timeout);
        return sm_l_fail(L, "'%s': gallery is locked by another process (gave up after %s s)", path, waited);
    }
    if (st != SM_OK)
        return sm_l_fail(L, "'%s': %s", path, err.msg);
    return 1;
}

static int l_lock_close(lua_State *L)
{
    lock_ud *lk = luaL_checkudata(L, 1, SM_LOCK_MT);
    sm_lock_release(lk->fd);
    lk->fd = -1;
    return 0;
}

static int l_lock_target(lua_State *L)
{
    luaL_checkudata(L, 1, SM_LOCK_MT);
    lua_getiuservalue(L, 1, 1);
    return 1;
}

static int l_lock_held(lua_State *L)
{
    lock_ud *lk = luaL_checkudata(L, 1, SM_LOCK_MT);
    lua_pushboolean(L, lk->fd >= 0);
    return 1;
}

static int l_lock_tostring(lua_State *L)
{
    lock_ud *lk = luaL_checkudata(L, 1, SM_LOCK_MT);
    lua_getiuservalue(L, 1, 1);
    lua_pushfstring(L, "siamese.GalleryLock(%s, %s)", lua_tostring(L, -1), lk->fd >= 0 ? "held" : "released");
    return 1;
}

static int l_generation(lua_State *L)
{
    const char *path = check_path(L, 1);
    sm_file_stamp s;
    if (sm_file_stamp_path(&s, path) != 0)
        return sm_l_fail(L, "cannot stat '%s': %s", path, strerror(errno));
    char buf[SM_FILE_STAMP_LEN];
    lua_pushstring(L, sm_file_stamp_str(buf, &s));
    return 1;
}

static const luaL_Reg lock_methods[] = {
    { "close", l_lock_close }, { "target", l_lock_target }, { "held", l_lock_held },
    { "__gc", l_lock_close }, { "__close", l_lock_close }, { "__tostring", l_lock_tostring },
    { NULL, NULL }
};

void sm_l_filelock_register(lua_State *L)
{
    sm_l_newclass(L, SM_LOCK_MT, lock_methods);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_lock);
    lua_setfield(L, -2, "lock");
    lua_pushcfunction(L, l_target);
    lua_setfield(L, -2, "target");
    lua_pushcfunction(L, l_generation);
    lua_setfield(L, -2, "generation");
}
