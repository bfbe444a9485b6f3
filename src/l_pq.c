/*
 * l_pq.c — siamese.pq, the few libpq calls siamese needs to keep galleries
 * and registers in PostgreSQL (a module of its own, so that only users of
 * postgresql:// need libpq). Lua code builds on it (lua/siamese/pg.lua).
 *
 *   connect(conninfo) -> conn | nil, message
 *       conninfo: a postgresql:// URL or "key=value ..." text; libpq fills
 *       what it leaves out from the environment (PGHOST, PGUSER,
 *       PGPASSWORD, PGSERVICE, ~/.pgpass, ...)
 *   connect_start(conninfo) -> conn | nil, message
 *       starts connecting without waiting (PQconnectStart; only a host
 *       name lookup may block): conn:connect_poll() advances it
 *   conn:connect_poll()         -> "ok" | "pending" | nil, message
 *       advances a started connection as far as its socket allows now,
 *       never waiting; libpq's connect_timeout does not apply here (the
 *       caller gives up after its own time)
 *   conn:exec(sql, ...)         -> result | nil, message, sqlstate
 *   conn:exec_binary(sql, ...)  -> result (values in binary format) | nil, message, sqlstate
 *       sql: one statement with parameters $1, $2, ...; the arguments after
 *       sql are their values: a string (text; a zero byte in it is refused,
 *       as libpq would cut the text there), an integer, a float (17
 *       significant digits), a boolean, pq.null (NULL) or pq.bytes(s) (a
 *       bytea sent as raw bytes). result: {fields = {name, ...}, rows =
 *       {{value, ...}, ...}, affected = n | nil}; a value is a string (the
 *       text form; exec_binary: PostgreSQL's binary form, e.g. a bytea's raw
 *       bytes, an int8 big-endian) or pq.null.
 *   conn:copy_in(sql, data)     -> rows copied | nil, message, sqlstate
 *       sql: a COPY ... FROM STDIN statement; data: the whole stream
 *       (e.g. COPY's binary format), sent in 1 MiB pieces
 *   conn:notifies([timeout]) -> {{channel =, payload =, pid =}, ...} | nil, message
 *       the notifications (LISTEN) received, waiting up to timeout seconds
 *       (default 0: only those already here) for the first one; nil,
 *       message when the connection is lost
 *   conn:ok()                   -> whether the connection is up
 *   conn:reset()                -> true | nil, message (reconnects with the same conninfo)
 *   conn:backend_pid()          -> the server process's pid (0 when down)
 *   conn:close()                idempotent; also __close and __gc
 *   null                        the NULL value (a light userdata)
 *   bytes(s)                    -> s marked as a bytea parameter
 *
 * Misuse (a wrong argument type, a closed connection) raises an error
 * naming the function; failures of the server or the connection return
 * nil and libpq's message. Each PGresult is boxed in a userdata with a
 * __gc before any Lua call that may raise, so none leaks.
 */
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <libpq-fe.h>
#include "lua.h"
#include "lauxlib.h"

#define CONN_MT "siamese.pq.Conn"
#define RESULT_MT "siamese.pq.Result"
#define BYTES_MT "siamese.pq.Bytes"
#define NOTIFY_MT "siamese.pq.Notify"
#define MAX_PARAMS 1000

static char null_key; /* pq.null is its address */

typedef struct {
    PGconn *conn;
    int pending;                /* connect_start: not connected yet */
    PostgresPollingStatusType want; /* what the next PQconnectPoll waits for */
} conn_box;

typedef struct {
    PGresult *res;
} result_box;

typedef struct {
    PGnotify *n;
} notify_box;

static void no_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static conn_box *check_conn(lua_State *L)
{
    conn_box *c = luaL_checkudata(L, 1, CONN_MT);
    if (!c->conn) luaL_argerror(L, 1, "the connection is closed");
    if (c->pending) luaL_argerror(L, 1, "the connection is not made yet (connect_poll)");
    return c;
}

/* libpq's message without its trailing newline. */
static void push_message(lua_State *L, const char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
    lua_pushlstring(L, msg, n);
}

/* connect (start 0: PQconnectdb, waits) and connect_start (start 1:
 * PQconnectStart, returns at once): the connection boxed first, so its
 * __gc finishes it if a push below raises. */
static int open_conn(lua_State *L, int start)
{
    const char *info = luaL_checkstring(L, 1);
    conn_box *c = lua_newuserdatauv(L, sizeof *c, 0);
    c->conn = NULL;
    c->pending = start;
    c->want = PGRES_POLLING_WRITING; /* as libpq says to begin polling */
    luaL_setmetatable(L, CONN_MT);
    c->conn = start ? PQconnectStart(info) : PQconnectdb(info);
    if (!c->conn) {
        lua_pushnil(L);
        lua_pushstring(L, start ? "out of memory (PQconnectStart)" : "out of memory (PQconnectdb)");
        return 2;
    }
    if (PQstatus(c->conn) == CONNECTION_BAD || (!start && PQstatus(c->conn) != CONNECTION_OK)) {
        lua_pushnil(L);
        push_message(L, PQerrorMessage(c->conn));
        PQfinish(c->conn);
        c->conn = NULL;
        return 2;
    }
    if (!start) PQsetNoticeProcessor(c->conn, no_notices, NULL);
    return 1;
}

static int l_connect(lua_State *L)
{
    return open_conn(L, 0);
}

static int l_connect_start(lua_State *L)
{
    return open_conn(L, 1);
}

static int l_connect_poll(lua_State *L)
{
    conn_box *c = luaL_checkudata(L, 1, CONN_MT);
    if (!c->conn) luaL_argerror(L, 1, "the connection is closed");
    if (!c->pending) {
        lua_pushliteral(L, "ok");
        return 1;
    }
    for (;;) {
        int fd = PQsocket(c->conn);
        if (fd >= 0) {
            struct pollfd p = {fd, c->want == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
            int n;
            do n = poll(&p, 1, 0);
            while (n < 0 && errno == EINTR);
            if (n == 0) {
                lua_pushliteral(L, "pending");
                return 1;
            }
        }
        PostgresPollingStatusType st = PQconnectPoll(c->conn);
        if (st == PGRES_POLLING_OK) {
            c->pending = 0;
            PQsetNoticeProcessor(c->conn, no_notices, NULL);
            lua_pushliteral(L, "ok");
            return 1;
        }
        if (st == PGRES_POLLING_FAILED) {
            lua_pushnil(L);
            push_message(L, PQerrorMessage(c->conn));
            return 2;
        }
        c->want = st;
    }
}

static int l_bytes(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    luaL_setmetatable(L, BYTES_MT);
    return 1;
}

static int notify_gc(lua_State *L)
{
    notify_box *b = luaL_checkudata(L, 1, NOTIFY_MT);
    if (b->n) {
        PQfreemem(b->n);
        b->n = NULL;
    }
    return 0;
}

static int result_gc(lua_State *L)
{
    result_box *r = luaL_checkudata(L, 1, RESULT_MT);
    if (r->res) {
        PQclear(r->res);
        r->res = NULL;
    }
    return 0;
}

static int is_bytes(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx)) return 0;
    luaL_getmetatable(L, BYTES_MT);
    int yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

/* The parameters at stack index first.. as libpq's arrays. Each value's
 * string stays at its own stack index (numbers and pq.bytes are replaced
 * there by their strings), so the pointers live as long as the call. */
static void collect_params(lua_State *L, int first, int arg0, const char **values, int *lengths,
                           int *formats)
{
    int top = lua_gettop(L);
    for (int idx = first; idx <= top; idx++) {
        int i = idx - first, t = lua_type(L, idx);
        lengths[i] = 0;
        formats[i] = 0;
        if (t == LUA_TSTRING) {
            size_t len;
            values[i] = lua_tolstring(L, idx, &len);
            if (strlen(values[i]) != len) /* libpq would cut it there, silently */
                luaL_argerror(L, arg0 + i, "text with a zero byte (pq.bytes sends binary data)");
        } else if (t == LUA_TNUMBER) {
            if (lua_isinteger(L, idx)) {
                lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
            } else {
                double v = lua_tonumber(L, idx);
                if (!isfinite(v))
                    luaL_argerror(L, arg0 + i, lua_pushfstring(L, "a finite number expected, got %f", v));
                char buf[40];
                snprintf(buf, sizeof buf, "%.17g", v);
                lua_pushstring(L, buf);
            }
            lua_replace(L, idx);
            values[i] = lua_tostring(L, idx);
        } else if (t == LUA_TBOOLEAN) {
            values[i] = lua_toboolean(L, idx) ? "true" : "false";
        } else if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &null_key) {
            values[i] = NULL;
        } else if (t == LUA_TTABLE && is_bytes(L, idx)) {
            lua_rawgeti(L, idx, 1);
            lua_replace(L, idx);
            size_t len;
            values[i] = lua_tolstring(L, idx, &len);
            if (len > INT_MAX) luaL_argerror(L, arg0 + i, "bytes over 2 GiB");
            lengths[i] = (int)len;
            formats[i] = 1;
        } else {
            luaL_argerror(L, arg0 + i, lua_pushfstring(L, "string, number, boolean, pq.null or pq.bytes expected, "
                                                          "got %s", luaL_typename(L, idx)));
        }
    }
}

/* Pushes the result's rows (after checking its status): 1 value, or nil,
 * message, sqlstate (3). The result stays boxed at index box. */
static int push_result(lua_State *L, PGconn *conn, result_box *box)
{
    PGresult *res = box->res;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        lua_pushnil(L);
        push_message(L, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (state) lua_pushstring(L, state);
        else lua_pushnil(L);
        return 3;
    }
    int nrows = PQntuples(res), nfields = PQnfields(res);
    lua_createtable(L, 0, 3);
    lua_createtable(L, nfields, 0);
    for (int j = 0; j < nfields; j++) {
        lua_pushstring(L, PQfname(res, j));
        lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, "fields");
    lua_createtable(L, nrows, 0);
    for (int i = 0; i < nrows; i++) {
        lua_createtable(L, nfields, 0);
        for (int j = 0; j < nfields; j++) {
            if (PQgetisnull(res, i, j)) lua_pushlightuserdata(L, &null_key);
            else lua_pushlstring(L, PQgetvalue(res, i, j), (size_t)PQgetlength(res, i, j));
            lua_rawseti(L, -2, j + 1);
        }
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "rows");
    const char *affected = PQcmdTuples(res);
    if (affected && *affected) {
        lua_pushinteger(L, (lua_Integer)strtoll(affected, NULL, 10));
        lua_setfield(L, -2, "affected");
    }
    return 1;
}

static int exec_with(lua_State *L, int binary)
{
    conn_box *c = check_conn(L);
    const char *sql = luaL_checkstring(L, 2);
    int n = lua_gettop(L) - 2;
    if (n > MAX_PARAMS) luaL_argerror(L, 3 + MAX_PARAMS, "too many parameters");
    luaL_checkstack(L, 8, "siamese.pq exec"); /* the arrays, the box, a converted number, the result */
    const char **values = n > 0 ? lua_newuserdatauv(L, (size_t)n * sizeof *values, 0) : NULL;
    int *lengths = n > 0 ? lua_newuserdatauv(L, (size_t)n * sizeof *lengths, 0) : NULL;
    int *formats = n > 0 ? lua_newuserdatauv(L, (size_t)n * sizeof *formats, 0) : NULL;
    result_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->res = NULL;
    luaL_setmetatable(L, RESULT_MT);
    /* The arrays and the box sit above the parameters: move them below. */
    int extra = (n > 0 ? 3 : 0) + 1;
    for (int k = 0; k < extra; k++) lua_rotate(L, 3, 1);
    collect_params(L, 3 + extra, 3, values, lengths, formats);
    box->res = PQexecParams(c->conn, sql, n, NULL, values, lengths, formats, binary ? 1 : 0);
    int nret = push_result(L, c->conn, box);
    PQclear(box->res); /* copied into Lua values: free it now, not at the next collection */
    box->res = NULL;
    return nret;
}

static int l_exec(lua_State *L)
{
    return exec_with(L, 0);
}

static int l_exec_binary(lua_State *L)
{
    return exec_with(L, 1);
}

static int l_copy_in(lua_State *L)
{
    conn_box *c = check_conn(L);
    const char *sql = luaL_checkstring(L, 2);
    size_t len;
    const char *data = luaL_checklstring(L, 3, &len);
    result_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->res = NULL;
    luaL_setmetatable(L, RESULT_MT);
    box->res = PQexec(c->conn, sql);
    ExecStatusType st = box->res ? PQresultStatus(box->res) : PGRES_FATAL_ERROR;
    if (st != PGRES_COPY_IN) {
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            int n = push_result(L, c->conn, box); /* nil, the error, its SQLSTATE */
            PQclear(box->res);
            box->res = NULL;
            return n;
        }
        /* Misuse: another statement ran. A COPY TO STDOUT is read to its
         * end so that the connection stays usable, then the error. */
        PQclear(box->res);
        box->res = NULL;
        if (st == PGRES_COPY_OUT) {
            char *buf;
            while (PQgetCopyData(c->conn, &buf, 0) > 0) PQfreemem(buf);
        }
        PGresult *rest;
        while ((rest = PQgetResult(c->conn)) != NULL) PQclear(rest);
        return luaL_argerror(L, 2, "not a COPY ... FROM STDIN statement");
    }
    PQclear(box->res);
    box->res = NULL;
    const size_t piece = (size_t)1 << 20;
    char failbuf[512]; /* libpq's message, copied: the next call may reuse its buffer */
    const char *failed = NULL;
    for (size_t off = 0; off < len && !failed; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (PQputCopyData(c->conn, data + off, (int)n) != 1) {
            snprintf(failbuf, sizeof failbuf, "%s", PQerrorMessage(c->conn));
            failed = failbuf;
        }
    }
    if (PQputCopyEnd(c->conn, NULL) != 1 && !failed) {
        snprintf(failbuf, sizeof failbuf, "%s", PQerrorMessage(c->conn));
        failed = failbuf;
    }
    /* The COPY's result, then the end of results (also after a failure). */
    box->res = PQgetResult(c->conn);
    int nret;
    if (failed && (!box->res || PQresultStatus(box->res) == PGRES_COMMAND_OK)) {
        lua_pushnil(L);
        push_message(L, failed);
        lua_pushnil(L);
        nret = 3;
    } else if (!box->res || PQresultStatus(box->res) != PGRES_COMMAND_OK) {
        nret = push_result(L, c->conn, box);
    } else {
        const char *rows = PQcmdTuples(box->res);
        lua_pushinteger(L, (lua_Integer)strtoll(rows ? rows : "0", NULL, 10));
        nret = 1;
    }
    if (box->res) PQclear(box->res);
    box->res = NULL;
    PGresult *extra;
    while ((extra = PQgetResult(c->conn)) != NULL) PQclear(extra);
    return nret;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int l_notifies(lua_State *L)
{
    conn_box *c = check_conn(L);
    lua_Number timeout = luaL_optnumber(L, 2, 0);
    luaL_argcheck(L, timeout >= 0 && timeout <= 86400, 2, "timeout must be 0..86400 seconds");
    notify_box *box = lua_newuserdatauv(L, sizeof *box, 0); /* frees a notification if a push raises */
    box->n = NULL;
    luaL_setmetatable(L, NOTIFY_MT);
    lua_newtable(L);
    int count = 0;
    double deadline = now_s() + timeout;
    for (;;) {
        if (!PQconsumeInput(c->conn)) {
            lua_pushnil(L);
            push_message(L, PQerrorMessage(c->conn));
            return 2;
        }
        PGnotify *n;
        while ((n = PQnotifies(c->conn)) != NULL) {
            box->n = n;
            lua_createtable(L, 0, 3);
            lua_pushstring(L, n->relname);
            lua_setfield(L, -2, "channel");
            lua_pushstring(L, n->extra);
            lua_setfield(L, -2, "payload");
            lua_pushinteger(L, n->be_pid);
            lua_setfield(L, -2, "pid");
            box->n = NULL;
            PQfreemem(n);
            lua_rawseti(L, -2, ++count);
        }
        if (count > 0) return 1;
        double left = deadline - now_s();
        if (left <= 0) return 1;
        int fd = PQsocket(c->conn);
        if (fd < 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "the connection is down");
            return 2;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int ms = left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
        if (poll(&p, 1, ms) < 0 && errno != EINTR) {
            lua_pushnil(L);
            lua_pushfstring(L, "poll: %s", strerror(errno));
            return 2;
        }
    }
}

static int l_ok(lua_State *L)
{
    conn_box *c = luaL_checkudata(L, 1, CONN_MT);
    lua_pushboolean(L, c->conn && !c->pending && PQstatus(c->conn) == CONNECTION_OK);
    return 1;
}

static int l_reset(lua_State *L)
{
    conn_box *c = check_conn(L);
    PQreset(c->conn);
    if (PQstatus(c->conn) != CONNECTION_OK) {
        lua_pushnil(L);
        push_message(L, PQerrorMessage(c->conn));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_backend_pid(lua_State *L)
{
    conn_box *c = check_conn(L);
    lua_pushinteger(L, PQstatus(c->conn) == CONNECTION_OK ? PQbackendPID(c->conn) : 0);
    return 1;
}

static int l_close(lua_State *L)
{
    conn_box *c = luaL_checkudata(L, 1, CONN_MT);
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    return 0;
}

static int l_tostring(lua_State *L)
{
    conn_box *c = luaL_checkudata(L, 1, CONN_MT);
    if (!c->conn) lua_pushliteral(L, "siamese.pq connection (closed)");
    else lua_pushfstring(L, "siamese.pq connection (%s, database %s)",
                         PQstatus(c->conn) == CONNECTION_OK ? "up" : "down", PQdb(c->conn));
    return 1;
}

int luaopen_siamese_pq(lua_State *L)
{
    static const luaL_Reg conn_methods[] = {
        {"connect_poll", l_connect_poll}, {"exec", l_exec}, {"exec_binary", l_exec_binary}, {"copy_in", l_copy_in}, {"notifies", l_notifies},
        {"ok", l_ok},
        {"reset", l_reset}, {"backend_pid", l_backend_pid}, {"close", l_close}, {NULL, NULL}};
    luaL_newmetatable(L, CONN_MT);
    luaL_newlib(L, conn_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    luaL_newmetatable(L, RESULT_MT);
    lua_pushcfunction(L, result_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, BYTES_MT);
    lua_pop(L, 1);
    luaL_newmetatable(L, NOTIFY_MT);
    lua_pushcfunction(L, notify_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);

    static const luaL_Reg funcs[] = {{"connect", l_connect}, {"connect_start", l_connect_start},
                                     {"bytes", l_bytes}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    lua_pushlightuserdata(L, &null_key);
    lua_setfield(L, -2, "null");
    lua_pushinteger(L, PQlibVersion());
    lua_setfield(L, -2, "libpq_version");
    return 1;
}
