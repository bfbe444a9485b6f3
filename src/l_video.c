/*
 * l_video.c — core.video, the Lua binding of video.c (lua/siamese/video.lua
 * builds siamese.video on it):
 *
 *   pipe()                      -> read_fd, write_fd | nil, message
 *       the read end non-blocking; both close-on-exec
 *   read_all(fd [, max [, timeout]]) -> bytes | nil, message
 *       fd to end of file (at most max bytes, default 1 MiB; timeout in
 *       seconds, default none): a child's short output
 *   reader(fd, log_fd|nil, width, height [, {live = bool, timeout = s}]) -> reader | nil, message
 *       takes ownership of fd and log_fd (closed by reader:close or __gc)
 *   reader:adopt(pid)           the child reaped on close
 *   reader:read()               -> image, index, dropped | nil (end) | nil, message
 *   reader:close([wait])        -> how, code | nothing
 *       closes the pipes and reaps the child: with wait (seconds, at the
 *       end of a stream) it may first exit by itself; otherwise, or after
 *       that, SIGTERM, and SIGKILL 0.5 s later. how "exit" or "signal"
 *       with the status when it ended by itself, "stopped" when signalled
 *       by us; nothing without a child. Idempotent; also __close and __gc.
 *   reader:log()                -> the last bytes of the child's stderr
 *   reader:frames()             -> complete frames received so far
 *
 *   output_pipe()               -> child_fd, write_fd | nil, message
 *       a pipe for a child's stdin: child_fd (the read end, blocking) for
 *       spawn's stdin, write_fd (non-blocking) ours; both close-on-exec
 *   writer(fd, log_fd|nil, width, height [, {timeout = s}]) -> writer | nil, message
 *       takes ownership of fd (the pipe to the child) and log_fd (its
 *       stderr, non-blocking); timeout: seconds one write may wait for the
 *       child to take data (default none)
 *   writer:adopt(pid)           the child reaped on close
 *   writer:write(img)           -> true | nil, message
 *       img: a 3-channel image of the writer's size, written whole from
 *       its pixels; nil, message when the child stopped reading (died)
 *   writer:close([wait])        -> how, code | "killed" | nothing
 *       closes the pipe and reaps the child, which gets wait seconds
 *       (default 0) to finish by itself, then SIGKILL. how "exit" or
 *       "signal" with the status when it ended by itself; nothing without
 *       a child. Idempotent; __close and __gc close with no wait.
 *   writer:log()                -> the last bytes of the child's stderr
 *   writer:frames()             -> frames written
 *   create_temp(path, suffix)   -> name | nil, message
 *       a new empty file "<path>.tmp.<pid>.<k><suffix>" (O_EXCL)
 *   commit(tmp, path, overwrite) -> true | nil, message
 *       fsync tmp, rename it to path (never over an existing path unless
 *       overwrite), fsync the directory
 */
#include <limits.h>
#include <string.h>
#include "l_aux.h"

#define READER_MT "siamese.VideoReader"
#define WRITER_MT "siamese.VideoFrameWriter"
#define TERM_MS 500

void sm_open_video(lua_State *L);

static int check_fd(lua_State *L, int arg)
{
    lua_Integer fd = luaL_checkinteger(L, arg);
    luaL_argcheck(L, fd >= 0 && fd <= 1 << 24, arg, "descriptor must be a non-negative integer");
    return (int)fd;
}

/* Seconds (nil: forever) as milliseconds, -1 for forever. */
static int opt_timeout_ms(lua_State *L, lua_Number s, int arg, const char *what)
{
    if (s < 0) return -1;
    if (!(s <= 86400.0)) luaL_argerror(L, arg, lua_pushfstring(L, "%s must be 0..86400 seconds", what));
    return (int)(s * 1000.0 + 0.5);
}

static sm_video_reader *check_reader(lua_State *L)
{
    return luaL_checkudata(L, 1, READER_MT);
}

/* pipe() / output_pipe(): read end, write end; ours (0 read, 1 write) non-blocking. */
static int push_pipe(lua_State *L, int ours)
{
    sm_err err;
    int fds[2];
    sm_status st = sm_video_pipe(&err, fds, ours);
    if (st != SM_OK) return sm_l_status(L, st, &err, 0);
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

static int l_pipe(lua_State *L) { return push_pipe(L, 0); }
static int l_output_pipe(lua_State *L) { return push_pipe(L, 1); }

static int l_read_all(lua_State *L)
{
    int fd = check_fd(L, 1);
    lua_Integer max = luaL_optinteger(L, 2, 1 << 20);
    luaL_argcheck(L, max >= 0 && max <= 1 << 30, 2, "max must be 0..2^30");
    lua_Number t = luaL_optnumber(L, 3, -1);
    if (!lua_isnoneornil(L, 3)) luaL_argcheck(L, t >= 0, 3, "timeout must be 0..86400 seconds");
    int timeout = opt_timeout_ms(L, t, 3, "timeout");
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, (size_t)max);
    sm_err err;
    size_t got;
    sm_status st = sm_video_read_all(&err, &got, p, (size_t)max, fd, timeout);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    luaL_pushresultsize(&b, got);
    return 1;
}

static int l_reader(lua_State *L)
{
    int fd = check_fd(L, 1);
    int log_fd = lua_isnoneornil(L, 2) ? -1 : check_fd(L, 2);
    lua_Integer w = luaL_checkinteger(L, 3), h = luaL_checkinteger(L, 4);
    luaL_argcheck(L, w >= 1 && w <= SM_IMAGE_MAX_SIDE, 3, "width must be 1..65535");
    luaL_argcheck(L, h >= 1 && h <= SM_IMAGE_MAX_SIDE, 4, "height must be 1..65535");
    if (!lua_isnoneornil(L, 5)) luaL_checktype(L, 5, LUA_TTABLE);
    int live = sm_l_optboolfield(L, 5, "live", 0);
    lua_Number t = sm_l_optnumfield(L, 5, "timeout", -1);
    if (!lua_isnoneornil(L, 5)) {
        lua_getfield(L, 5, "timeout");
        luaL_argcheck(L, lua_isnil(L, -1) || t >= 0, 5, "timeout must be 0..86400 seconds");
        lua_pop(L, 1);
    }
    int timeout = opt_timeout_ms(L, t, 5, "timeout");
    sm_err err;
    sm_status st = sm_video_reader_check(&err, fd, log_fd, (int)w, (int)h, live);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    size_t ws = sm_video_reader_workspace_size((int)w, (int)h, live);
    /* The reader and its frame buffers in one userdata: no C heap to leak. */
    sm_video_reader *r = lua_newuserdatauv(L, sizeof *r + ws, 0);
    sm_video_reader_init(r, fd, log_fd, (int)w, (int)h, live, timeout, (uint8_t *)(r + 1));
    luaL_setmetatable(L, READER_MT); /* from here __gc closes the descriptors */
    st = sm_video_reader_start(&err, r);
    if (st != SM_OK) {
        sm_process_status ps;
        int by_itself;
        sm_video_reader_close(&ps, &by_itself, r, 0, TERM_MS);
        return sm_l_status(L, st, &err, 1);
    }
    return 1;
}

static int l_adopt(lua_State *L)
{
    sm_video_reader *r = check_reader(L);
    lua_Integer pid = luaL_checkinteger(L, 2);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 2, "pid must be a positive integer");
    luaL_argcheck(L, r->pid == 0, 1, "the reader already has a child");
    luaL_argcheck(L, r->fd >= 0, 1, "the reader is closed");
    r->pid = (int)pid;
    return 0;
}

static int l_read(lua_State *L)
{
    sm_video_reader *r = check_reader(L);
    if (r->eof || r->fd < 0) return 0;
    sm_image *img = sm_l_newimage(L, r->width, r->height, 3); /* may raise: nothing is held yet */
    sm_err err;
    int got;
    int64_t index, dropped;
    sm_status st = sm_video_read(&err, img->data, &got, &index, &dropped, r);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    if (!got) return 0;
    lua_pushinteger(L, (lua_Integer)index);
    lua_pushinteger(L, (lua_Integer)dropped);
    return 3;
}

static int l_close(lua_State *L)
{
    sm_video_reader *r = check_reader(L);
    int wait = 0;
    if (!lua_isnoneornil(L, 2)) {
        lua_Number s = luaL_checknumber(L, 2);
        luaL_argcheck(L, s >= 0 && s <= 60, 2, "wait must be 0..60 seconds");
        wait = (int)(s * 1000.0 + 0.5);
    }
    int had_child = r->pid > 0;
    sm_process_status ps;
    int by_itself;
    sm_video_reader_close(&ps, &by_itself, r, wait, TERM_MS);
    if (!had_child) return 0;
    if (!by_itself) {
        lua_pushliteral(L, "stopped");
        return 1;
    }
    lua_pushstring(L, ps.signaled ? "signal" : "exit");
    lua_pushinteger(L, ps.code);
    return 2;
}

static int l_gc(lua_State *L)
{
    sm_video_reader *r = check_reader(L);
    sm_process_status ps;
    int by_itself;
    sm_video_reader_close(&ps, &by_itself, r, 0, TERM_MS);
    return 0;
}

static int l_log(lua_State *L)
{
    sm_video_reader *r = check_reader(L);
    char log[SM_VIDEO_LOG_LEN + 1];
    size_t n = sm_video_reader_log(log, r);
    lua_pushlstring(L, log, n);
    return 1;
}

static int l_frames(lua_State *L)
{
    sm_video_reader *r = check_reader(L);
    lua_pushinteger(L, (lua_Integer)sm_video_reader_frames(r));
    return 1;
}

/* ---- writing ---------------------------------------------------------------- */

static sm_video_writer *check_writer(lua_State *L)
{
    return luaL_checkudata(L, 1, WRITER_MT);
}

static int l_writer(lua_State *L)
{
    int fd = check_fd(L, 1);
    int log_fd = lua_isnoneornil(L, 2) ? -1 : check_fd(L, 2);
    lua_Integer w = luaL_checkinteger(L, 3), h = luaL_checkinteger(L, 4);
    luaL_argcheck(L, w >= 1 && w <= SM_IMAGE_MAX_SIDE, 3, "width must be 1..65535");
    luaL_argcheck(L, h >= 1 && h <= SM_IMAGE_MAX_SIDE, 4, "height must be 1..65535");
    if (!lua_isnoneornil(L, 5)) luaL_checktype(L, 5, LUA_TTABLE);
    lua_Number t = sm_l_optnumfield(L, 5, "timeout", -1);
    if (!lua_isnoneornil(L, 5)) {
        lua_getfield(L, 5, "timeout");
        luaL_argcheck(L, lua_isnil(L, -1) || t >= 0, 5, "timeout must be 0..86400 seconds");
        lua_pop(L, 1);
    }
    int timeout = opt_timeout_ms(L, t, 5, "timeout");
    sm_err err;
    sm_status st = sm_video_writer_check(&err, fd, log_fd, (int)w, (int)h);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    sm_video_writer *wr = lua_newuserdatauv(L, sizeof *wr, 0);
    sm_video_writer_init(wr, fd, log_fd, (int)w, (int)h, timeout);
    luaL_setmetatable(L, WRITER_MT);
    return 1;
}

static int l_writer_adopt(lua_State *L)
{
    sm_video_writer *w = check_writer(L);
    lua_Integer pid = luaL_checkinteger(L, 2);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 2, "pid must be a positive integer");
    luaL_argcheck(L, w->pid == 0, 1, "the writer already has a child");
    luaL_argcheck(L, w->fd >= 0, 1, "the writer is closed");
    w->pid = (int)pid;
    return 0;
}

static int l_writer_write(lua_State *L)
{
    sm_video_writer *w = check_writer(L);
    sm_image *img = sm_l_checkimage(L, 2);
    if (img->width != w->width || img->height != w->height || img->channels != 3)
        return luaL_argerror(L, 2, lua_pushfstring(L, "expected a 3-channel %dx%d image, got a %d-channel %dx%d one",
                                                   w->width, w->height, img->channels, img->width, img->height));
    sm_err err;
    sm_status st = sm_video_write(&err, w, img->data);
    if (st != SM_OK) return sm_l_status(L, st, &err, 2);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_writer_close(lua_State *L)
{
    sm_video_writer *w = check_writer(L);
    int wait = 0;
    if (!lua_isnoneornil(L, 2)) {
        lua_Number s = luaL_checknumber(L, 2);
        luaL_argcheck(L, s >= 0 && s <= 86400, 2, "wait must be 0..86400 seconds");
        wait = (int)(s * 1000.0 + 0.5);
    }
    int had_child = w->pid > 0;
    sm_process_status ps;
    int by_itself;
    sm_video_writer_close(&ps, &by_itself, w, wait);
    if (!had_child) return 0;
    if (!by_itself) {
        lua_pushliteral(L, "killed");
        return 1;
    }
    lua_pushstring(L, ps.signaled ? "signal" : "exit");
    lua_pushinteger(L, ps.code);
    return 2;
}

static int l_writer_gc(lua_State *L)
{
    sm_video_writer *w = check_writer(L);
    sm_process_status ps;
    int by_itself;
    sm_video_writer_close(&ps, &by_itself, w, 0);
    return 0;
}

static int l_writer_log(lua_State *L)
{
    sm_video_writer *w = check_writer(L);
    lua_pushlstring(L, w->log, w->log_len);
    return 1;
}

static int l_writer_frames(lua_State *L)
{
    sm_video_writer *w = check_writer(L);
    lua_pushinteger(L, w->frames);
    return 1;
}

static const char *check_path(lua_State *L, int arg, size_t *len)
{
    const char *s = luaL_checklstring(L, arg, len);
    luaL_argcheck(L, *len > 0 && strlen(s) == *len, arg, "path must be non-empty, without zero bytes");
    return s;
}

static int l_create_temp(lua_State *L)
{
    size_t plen, slen;
    const char *path = check_path(L, 1, &plen);
    const char *suffix = luaL_optlstring(L, 2, "", &slen);
    luaL_argcheck(L, strlen(suffix) == slen && slen <= 64 && !strchr(suffix, '/'), 2,
                  "suffix must be at most 64 bytes, without '/' or zero bytes");
    size_t cap = plen + slen + 48;
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, cap);
    sm_err err;
    sm_status st = sm_video_create_temp(&err, out, cap, path, suffix);
    if (st != SM_OK) return sm_l_status(L, st, &err, 1);
    luaL_pushresultsize(&b, strlen(out));
    return 1;
}

static int l_commit(lua_State *L)
{
    size_t len;
    const char *tmp = check_path(L, 1, &len);
    const char *path = check_path(L, 2, &len);
    int overwrite = lua_toboolean(L, 3);
    sm_err err;
    sm_status st = sm_video_commit(&err, tmp, path, overwrite);
    if (st != SM_OK) return sm_l_status(L, st, &err, 2);
    lua_pushboolean(L, 1);
    return 1;
}

void sm_open_video(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"adopt", l_adopt}, {"read", l_read}, {"close", l_close}, {"log", l_log}, {"frames", l_frames},
        {"__gc", l_gc}, {"__close", l_gc}, {NULL, NULL}};
    static const luaL_Reg writer_methods[] = {
        {"adopt", l_writer_adopt}, {"write", l_writer_write}, {"close", l_writer_close}, {"log", l_writer_log},
        {"frames", l_writer_frames}, {"__gc", l_writer_gc}, {"__close", l_writer_gc}, {NULL, NULL}};
    static const luaL_Reg fns[] = {{"pipe", l_pipe}, {"read_all", l_read_all}, {"reader", l_reader},
                                   {"output_pipe", l_output_pipe}, {"writer", l_writer},
                                   {"create_temp", l_create_temp}, {"commit", l_commit}, {NULL, NULL}};
    sm_l_newclass(L, READER_MT, methods);
    lua_pop(L, 1);
    sm_l_newclass(L, WRITER_MT, writer_methods);
    lua_pop(L, 1);
    luaL_newlib(L, fns);
    lua_setfield(L, -2, "video");
}
