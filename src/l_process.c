/*
 * l_process.c — core.process, the Lua binding of process.c:
 *
 *   fork([keep_fd])            -> pid (0 in the child) | nil, message
 *       the child keeps descriptors 0-2 and keep_fd only (see process.c)
 *   socketpair()               -> fd1, fd2 (close-on-exec) | nil, message
 *   close(fd)                  -> true | nil, message
 *   kill(pid, sig)             -> true | nil, message
 *       sig: a number or "TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "CHLD", 0
 *   waitpid(pid [, nohang])    -> exited, code, how | nil, message
 *       exited false while it runs (nohang); how "exit" (code: its status)
 *       or "signal" (code: the signal)
 *   write_frame(fd, bytes)     -> true | nil, message
 *   read_frame(fd [, max])     -> bytes | nil, message ("end of file" when
 *       the other side closed before a frame began)
 *       a frame is a 4-byte big-endian length and that many bytes;
 *       both block (for workers)
 *   spawn(argv [, {stdin = fd, stdout = fd, stderr = fd, env = {NAME = "value", ...},
 *                  new_group = true}]) -> pid | nil, message
 *       posix_spawnp of the argument vector (no shell); env: variables
 *       added to (or replacing those of) the parent's environment for the
 *       child (names [A-Za-z_][A-Za-z0-9_]*, values strings without zero
 *       bytes: else an error naming spawn's argument #2); new_group: the
 *       child leads a process group of its own (its pgid is its pid), so a
 *       terminal's Ctrl-C reaches only the parent, which stops it itself
 *   getpid()                   -> pid
 *   exit_now(code)             -> _exit(code): no atexit, no stdio flush
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "l_aux.h"

#define MAX_FRAME ((lua_Integer)1 << 30)

extern char **environ;

void sm_open_process(lua_State *L);

static int check_fd(lua_State *L, int arg)
{
    lua_Integer fd = luaL_checkinteger(L, arg);
    luaL_argcheck(L, fd >= 0 && fd <= 1 << 24, arg, "descriptor must be a non-negative integer");
    return (int)fd;
}

static int check_pid(lua_State *L, int arg)
{
    lua_Integer pid = luaL_checkinteger(L, arg);
    luaL_argcheck(L, pid > 0 && pid <= 0x7fffffff, arg, "pid must be a positive integer");
    return (int)pid;
}

static int l_fork(lua_State *L)
{
    int keep = lua_isnoneornil(L, 1) ? -1 : check_fd(L, 1);
    sm_err err;
    int pid;
    sm_status st = sm_process_fork(&err, &pid, keep);
    if (st != SM_OK) return sm_l_status(L, st, &err, 0);
    lua_pushinteger(L, pid);
    return 1;
}

static int l_socketpair(lua_State *L)
{
    sm_err err;
    int fds[2];
    sm_status st = sm_process_socketpair(&err, fds);
    if (st != SM_OK) return sm_l_status(L, st, &err, 0);
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

static int l_close(lua_State *L)
{
    sm_err err;
    sm_status st = sm_process_close(&err, check_fd(L, 1));
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static const struct { const char *name; int sig; } SIGNALS[] = {
    {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"QUIT", SIGQUIT},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"CHLD", SIGCHLD}, {NULL, 0}};

static int l_kill(lua_State *L)
{
    int pid = check_pid(L, 1);
    int sig = -1;
    if (lua_type(L, 2) == LUA_TSTRING) {
        const char *name = lua_tostring(L, 2);
        if (strncmp(name, "SIG", 3) == 0) name += 3;
        for (int i = 0; SIGNALS[i].name; i++)
            if (strcmp(SIGNALS[i].name, name) == 0) sig = SIGNALS[i].sig;
        if (sig < 0) return luaL_argerror(L, 2, lua_pushfstring(L, "unknown signal '%s'", lua_tostring(L, 2)));
    } else {
        lua_Integer s = luaL_checkinteger(L, 2);
        luaL_argcheck(L, s >= 0 && s < 65, 2, "signal must be 0..64");
        sig = (int)s;
    }
    sm_err err;
    sm_status st = sm_process_kill(&err, pid, sig);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_waitpid(lua_State *L)
{
    int pid = check_pid(L, 1);
    int nohang = lua_toboolean(L, 2);
    sm_err err;
    sm_process_status ps;
    sm_status st = sm_process_wait(&err, pid, nohang, &ps);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    lua_pushboolean(L, ps.exited);
    if (!ps.exited) return 1;
    lua_pushinteger(L, ps.code);
    lua_pushstring(L, ps.signaled ? "signal" : "exit");
    return 3;
}

static int l_write_frame(lua_State *L)
{
    int fd = check_fd(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    luaL_argcheck(L, (lua_Integer)len <= MAX_FRAME, 2, "frame larger than 1 GiB");
    unsigned char head[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8),
                             (unsigned char)len};
    sm_err err;
    sm_status st = sm_process_write_all(&err, fd, head, 4);
    if (st == SM_OK) st = sm_process_write_all(&err, fd, s, len);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_read_frame(lua_State *L)
{
    int fd = check_fd(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, MAX_FRAME);
    luaL_argcheck(L, max >= 0 && max <= MAX_FRAME, 2, "max must be 0..2^30");
    unsigned char head[4];
    size_t got;
    sm_err err;
    sm_status st = sm_process_read_all(&err, fd, head, 4, &got);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    if (got == 0) return sm_l_fail(L, "end of file");
    if (got < 4) return sm_l_fail(L, "truncated frame header");
    size_t len = ((size_t)head[0] << 24) | ((size_t)head[1] << 16) | ((size_t)head[2] << 8) | head[3];
    if ((lua_Integer)len > max) return sm_l_fail(L, "frame of %d bytes exceeds the limit of %d", (int)len, (int)max);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, len);
    st = sm_process_read_all(&err, fd, p, len, &got);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    if (got < len) return sm_l_fail(L, "truncated frame (%d of %d bytes)", (int)got, (int)len);
    luaL_pushresultsize(&b, len);
    return 1;
}

static int opt_fd_field(lua_State *L, int t, const char *name)
{
    if (lua_isnoneornil(L, t)) return -1;
    lua_getfield(L, t, name);
    int fd = -1;
    if (!lua_isnil(L, -1)) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 1 << 24)
            return luaL_argerror(L, t, lua_pushfstring(L, "'%s' must be a descriptor (a non-negative integer)", name));
        fd = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    return fd;
}

/* 1 when s (len bytes) is a variable name: [A-Za-z_][A-Za-z0-9_]* */
static int env_name_ok(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 1;
}

/* The child's environment for spawn's option table at index t, or NULL
 * (no 'env': the parent's). The parent's variables but those the table
 * names, then the table's "NAME=value" strings; everything is Lua-owned (a
 * userdata of pointers and the strings, anchored in a table left on the
 * stack), so an error raised on the way leaks nothing. */
static const char *const *build_env(lua_State *L, int t)
{
    if (lua_isnoneornil(L, t)) return NULL;
    lua_getfield(L, t, "env");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_argerror(L, t, lua_pushfstring(L, "'env' must be a table of NAME = value strings, got %s",
                                            luaL_typename(L, -1)));
    int env = lua_gettop(L);
    lua_newtable(L); /* the anchor: "NAME=value" strings 1..k */
    int anchor = lua_gettop(L);
    lua_Integer k = 0;
    lua_pushnil(L);
    while (lua_next(L, env)) {
        size_t nlen, vlen;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, t, "'env' names must be strings");
        const char *name = lua_tolstring(L, -2, &nlen);
        if (!env_name_ok(name, nlen))
            luaL_argerror(L, t, lua_pushfstring(L, "'env' name '%s' must match [A-Za-z_][A-Za-z0-9_]*", name));
        if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
            luaL_argerror(L, t, lua_pushfstring(L, "'env' value of %s must be a string, got %s", name,
                                                luaL_typename(L, -1)));
        lua_pushvalue(L, -1); /* a copy to convert: never the value lua_next holds */
        const char *value = lua_tolstring(L, -1, &vlen);
        if (strlen(value) != vlen)
            luaL_argerror(L, t, lua_pushfstring(L, "'env' value of %s must not contain a zero byte", name));
        if (k >= 4096) luaL_argerror(L, t, "'env' holds more than 4096 variables");
        lua_pushfstring(L, "%s=%s", name, value);
        lua_rawseti(L, anchor, ++k);
        lua_pop(L, 2); /* the copy and the value */
    }
    size_t parent = 0;
    while (environ && environ[parent]) parent++;
    const char **envp = lua_newuserdatauv(L, sizeof(char *) * (parent + (size_t)k + 1), 0);
    lua_rawseti(L, anchor, k + 1); /* kept alive with the strings */
    size_t n = 0;
    for (size_t i = 0; i < parent; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nlen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        lua_pushlstring(L, environ[i], nlen);
        int named = lua_rawget(L, env) != LUA_TNIL; /* replaced by the table's */
        lua_pop(L, 1);
        if (!named) envp[n++] = environ[i];
    }
    for (lua_Integer i = 1; i <= k; i++) {
        lua_rawgeti(L, anchor, i);
        envp[n++] = lua_tostring(L, -1); /* anchored */
        lua_pop(L, 1);
    }
    envp[n] = NULL;
    return envp; /* the env table and the anchor stay on the stack */
}

static int opt_flag_field(lua_State *L, int t, const char *name)
{
    if (lua_isnoneornil(L, t)) return 0;
    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        return luaL_argerror(L, t, lua_pushfstring(L, "'%s' must be a boolean", name));
    int on = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return on;
}

static int l_spawn(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 4096, 1, "argv must hold 1..4096 strings");
    int fds[3] = {opt_fd_field(L, 2, "stdin"), opt_fd_field(L, 2, "stdout"), opt_fd_field(L, 2, "stderr")};
    int new_group = opt_flag_field(L, 2, "new_group");
    const char **argv = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0); /* freed by the GC */
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        if (lua_type(L, -1) != LUA_TSTRING || strlen(s) != len)
            return luaL_argerror(L, 1, lua_pushfstring(L, "argv[%d] must be a string without zero bytes", (int)i));
        argv[i - 1] = s; /* anchored by the argv table */
        lua_pop(L, 1);
    }
    argv[n] = NULL;
    const char *const *envp = build_env(L, 2);
    sm_err err;
    int pid;
    sm_status st = sm_process_spawn(&err, &pid, argv, fds, envp, new_group);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    lua_pushinteger(L, pid);
    return 1;
}

static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, sm_process_getpid());
    return 1;
}

static int l_exit_now(lua_State *L)
{
    lua_Integer code = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, code >= 0 && code <= 255, 1, "exit code must be 0..255");
    sm_process_exit_now((int)code);
    return 0;
}

void sm_open_process(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"fork", l_fork}, {"socketpair", l_socketpair}, {"close", l_close}, {"kill", l_kill},
        {"waitpid", l_waitpid}, {"write_frame", l_write_frame}, {"read_frame", l_read_frame},
        {"spawn", l_spawn}, {"getpid", l_getpid}, {"exit_now", l_exit_now}, {NULL, NULL}};
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "process");
}
