/*
 * l_gallery.c — Lua binding of gallery.c: userdata "siamese.Gallery".
 *
 *   core.gallery.new{dim, metric, threshold, model, score}  -> gallery
 *   core.gallery.load(path)                                  -> gallery, generation | nil, message
 *   core.gallery.lock, target, generation                    file locks and generations (l_filelock.c)
 *   core.gallery.Gallery                                     the metatable (lua/siamese/gallery.lua
 *                                                            adds verify, identify, search there)
 * Methods: add, add_many, remove, rename, names, has, count, size,
 * templates, rows (every template and its owner in one pass), clear, dim,
 * metric, model, score_mode, threshold, set_threshold,
 * save (-> true, generation), close, memory (bytes of C heap held), and the primitives _distance and
 * _knn; __len = identities; __gc and __close are the same idempotent function.
 *
 * Misuse (wrong types, shapes, other model, empty names) raises with the
 * method's name; expected failures (unknown identity, file problems)
 * return nil, message. The store is C heap memory owned by the userdata:
 * every allocation happens in sm_gallery_reserve, after all Lua checks, and
 * nothing that can raise runs while a C buffer is held outside the
 * userdata.
 *
 * The collector does not see that C heap: a dropped gallery of 100 MB
 * costs Lua a few bytes of userdata, so a loop that loads galleries would
 * not collect them for a long time. Each growth of the store (load, add,
 * add_many, rename) is therefore reported to the collector as debt
 * (lua_gc(L, LUA_GCSTEP, kbytes)), which makes it run in proportion, as if
 * Lua had allocated those bytes itself.
 *
 * Files are saved with sm_write_atomic_ex: a new gallery file is created
 * 0600 (it holds biometric templates), an existing one keeps its mode and
 * owner, a symlink is written through. load and save also give the file's
 * generation (sm_file_stamp) as read or as written, for readers that
 * reload on change.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>
#include <unistd.h>
#include "l_aux.h"
#include "l_filelock.h"
#include "gallery.h"

#define SM_GALLERY_MT "siamese.Gallery"

typedef struct {
    sm_gallery g;
    int closed;
    size_t accounted; /* bytes of C heap already reported to the collector */
} l_gallery;

/* Reports the growth of the store since the last report as collector debt. */
static void account_memory(lua_State *L, l_gallery *lg)
{
    size_t now = sm_gallery_memory(&lg->g);
    if (now <= lg->accounted) return;
    size_t kb = (now - lg->accounted) / 1024;
    lg->accounted = now;
    if (kb > 0) lua_gc(L, LUA_GCSTEP, (int)(kb > INT_MAX ? INT_MAX : kb));
}

static sm_gallery *check_gallery(lua_State *L, int idx, const char *fname)
{
    l_gallery *lg = luaL_checkudata(L, idx, SM_GALLERY_MT);
    if (lg->closed)
        luaL_error(L, "gallery:%s: the gallery is closed", fname);
    return &lg->g;
}

static l_gallery *owner_of(sm_gallery *g)
{
    return (l_gallery *)((char *)g - offsetof(l_gallery, g));
}

static l_gallery *push_gallery(lua_State *L)
{
    l_gallery *lg = lua_newuserdatauv(L, sizeof(l_gallery), 0);
    memset(lg, 0, sizeof *lg);
    luaL_setmetatable(L, SM_GALLERY_MT);
    return lg;
}

static const char *metric_name(sm_metric m) { return m == SM_DIST_COSINE ? "cosine" : "euclidean"; }
static const char *score_name(sm_score_mode s) { return s == SM_SCORE_MEAN ? "mean" : "nearest"; }

/* Optional model id at arg: must match the gallery's. */
static void check_model(lua_State *L, const sm_gallery *g, int arg, const char *fname)
{
    if (lua_isnoneornil(L, arg)) return;
    size_t len;
    const char *m = luaL_checklstring(L, arg, &len);
    if (len != g->model_len || memcmp(m, g->model, len) != 0)
        luaL_error(L, "gallery:%s: embeddings from model '%s' do not match this gallery's model '%s'",
                   fname, m, g->model);
}

/* Embeddings at arg as rows [n, dim]: a tensor [dim] is one row. With
 * contiguous set, a non-contiguous tensor is replaced by a contiguous copy
 * (pushed on the stack, which keeps it alive). */
static sm_tensor check_rows(lua_State *L, const sm_gallery *g, int arg, const char *fname, int contiguous)
{
    sm_tensor *t = sm_l_totensor(L, arg);
    if (!t)
        luaL_error(L, "gallery:%s: bad argument #%d (expected a Tensor [%d] or [n,%d], got %s)",
                   fname, arg - 1, (int)g->dim, (int)g->dim, luaL_typename(L, arg));
    char s[SM_SHAPE_STR_LEN];
    if ((t->ndim != 1 && t->ndim != 2) || t->shape[t->ndim - 1] != g->dim)
        luaL_error(L, "gallery:%s: embedding of shape %s does not fit this %d-D gallery (expected [%d] or [n,%d])",
                   fname, sm_l_shape(s, t), (int)g->dim, (int)g->dim, (int)g->dim);
    if (contiguous && !sm_tensor_is_contiguous(t)) {
        lua_getfield(L, arg, "contiguous");
        lua_pushvalue(L, arg);
        lua_call(L, 1, 1);
        t = sm_l_checktensor(L, -1);
    }
    sm_tensor r = *t;
    if (t->ndim == 1) {
        r.ndim = 2;
        r.shape[0] = 1;
        r.shape[1] = t->shape[0];
        r.stride[0] = t->shape[0];
        r.stride[1] = t->stride[0];
    }
    return r;
}

static void raise_status(lua_State *L, sm_status st, const sm_err *err, const char *fname)
{
    if (st != SM_OK)
        luaL_error(L, "gallery:%s: %s", fname, err->msg);
}

/* ---- construction ----------------------------------------------------------- */

static int l_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer dim = sm_l_optintfield(L, 1, "dim", 0);
    const char *metric = sm_l_optstrfield(L, 1, "metric", "euclidean");
    const char *score = sm_l_optstrfield(L, 1, "score", "nearest");
    const char *model = sm_l_optstrfield(L, 1, "model", NULL);
    sm_metric m;
    if (strcmp(metric, "euclidean") == 0) m = SM_DIST_EUCLIDEAN;
    else if (strcmp(metric, "cosine") == 0) m = SM_DIST_COSINE;
    else return luaL_error(L, "gallery.new: metric must be 'euclidean' or 'cosine', got '%s'", metric);
    sm_score_mode sc;
    if (strcmp(score, "nearest") == 0) sc = SM_SCORE_NEAREST;
    else if (strcmp(score, "mean") == 0) sc = SM_SCORE_MEAN;
    else return luaL_error(L, "gallery.new: score must be 'nearest' or 'mean', got '%s'", score);
    if (!model)
        return luaL_error(L, "gallery.new: option 'model' (the id of the model that makes the embeddings) is required");
    double threshold = sm_l_optnumfield(L, 1, "threshold", m == SM_DIST_COSINE ? 0.4 : 0.6);
    lua_getfield(L, 1, "model");
    size_t model_len;
    lua_tolstring(L, -1, &model_len);
    lua_pop(L, 1);
    sm_err err;
    if (sm_gallery_init_check(&err, dim, m, threshold, model, model_len) != SM_OK)
        return luaL_error(L, "gallery.new: %s", err.msg);
    l_gallery *lg = push_gallery(L);
    sm_gallery_init(&lg->g, dim, m, sc, threshold, model, model_len);
    return 1;
}

static int l_close(lua_State *L)
{
    l_gallery *lg = luaL_checkudata(L, 1, SM_GALLERY_MT);
    sm_gallery_free(&lg->g);
    lg->closed = 1;
    lg->accounted = 0;
    return 0;
}

/* ---- enrolment ---------------------------------------------------------------- */

static void reserve_or_raise(lua_State *L, sm_gallery *g, int64_t more_templates, int64_t more_ids,
                             size_t more_bytes, const char *fname)
{
    sm_err err;
    raise_status(L, sm_gallery_reserve(&err, g, more_templates, more_ids, more_bytes), &err, fname);
}

static int l_add(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "add");
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    sm_tensor rows = check_rows(L, g, 3, "add", 0);
    check_model(L, g, 4, "add");
    int64_t n = rows.shape[0];
    /* Each row goes under the same name: the name arrays are userdata. */
    const char **names = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *names, 0);
    size_t *lens = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *lens, 0);
    for (int64_t i = 0; i < n; i++) { names[i] = name; lens[i] = len; }
    sm_err err;
    if (n == 0)
        return luaL_error(L, "gallery:add: no embeddings given for '%s' (shape [0,%d])", name, (int)g->dim);
    raise_status(L, sm_gallery_add_check(&err, g, names, lens, n, &rows), &err, "add");
    reserve_or_raise(L, g, n, 1, len, "add");
    sm_gallery_add(g, names, lens, n, &rows);
    lua_pushinteger(L, g->count[sm_gallery_find(g, name, len)]);
    account_memory(L, owner_of(g));
    return 1;
}

static int l_add_many(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "add_many");
    luaL_checktype(L, 2, LUA_TTABLE);
    sm_tensor rows = check_rows(L, g, 3, "add_many", 0);
    check_model(L, g, 4, "add_many");
    int64_t n = (int64_t)luaL_len(L, 2);
    if (n != rows.shape[0])
        return luaL_error(L, "gallery:add_many: %d names for %d embeddings (shape [%d,%d])",
                          (int)n, (int)rows.shape[0], (int)rows.shape[0], (int)g->dim);
    const char **names = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *names, 0);
    size_t *lens = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *lens, 0);
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        lua_geti(L, 2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "gallery:add_many: names[%d] must be a string, got %s", (int)i + 1,
                              luaL_typename(L, -1));
        names[i] = lua_tolstring(L, -1, &lens[i]); /* still referenced by the table */
        bytes += lens[i];
        lua_pop(L, 1);
    }
    sm_err err;
    raise_status(L, sm_gallery_add_check(&err, g, names, lens, n, &rows), &err, "add_many");
    reserve_or_raise(L, g, n, n, bytes, "add_many");
    sm_gallery_add(g, names, lens, n, &rows);
    lua_pushinteger(L, n);
    account_memory(L, owner_of(g));
    return 1;
}

static int l_remove(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "remove");
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    int64_t id = sm_gallery_find(g, name, len);
    lua_pushinteger(L, id < 0 ? 0 : sm_gallery_remove(g, id));
    return 1;
}

static int l_rename(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "rename");
    size_t olen, nlen;
    const char *old = luaL_checklstring(L, 2, &olen);
    const char *new_name = luaL_checklstring(L, 3, &nlen);
    sm_err err;
    raise_status(L, sm_gallery_name_check(&err, new_name, nlen), &err, "rename");
    int64_t id = sm_gallery_find(g, old, olen);
    if (id < 0)
        return sm_l_fail(L, "unknown identity '%s'", old);
    int64_t other = sm_gallery_find(g, new_name, nlen);
    if (other == id) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (other >= 0)
        return sm_l_fail(L, "identity '%s' already exists", new_name);
    reserve_or_raise(L, g, 0, 0, nlen, "rename");
    sm_gallery_rename(g, id, new_name, nlen);
    lua_pushboolean(L, 1);
    account_memory(L, owner_of(g));
    return 1;
}

/* ---- queries about the contents ------------------------------------------------- */

static void push_name(lua_State *L, const sm_gallery *g, int64_t id)
{
    size_t len;
    const char *s = sm_gallery_name(g, id, &len);
    lua_pushlstring(L, s, len);
}

static int l_names(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "names");
    lua_createtable(L, (int)g->nid, 0);
    for (int64_t i = 0; i < g->nid; i++) {
        push_name(L, g, i);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_has(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "has");
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    lua_pushboolean(L, sm_gallery_find(g, name, len) >= 0);
    return 1;
}

static int l_count(lua_State *L)
{
    lua_pushinteger(L, check_gallery(L, 1, "count")->nid);
    return 1;
}

static int l_len(lua_State *L)
{
    l_gallery *lg = luaL_checkudata(L, 1, SM_GALLERY_MT);
    lua_pushinteger(L, lg->closed ? 0 : lg->g.nid);
    return 1;
}

static int l_size(lua_State *L)
{
    lua_pushinteger(L, check_gallery(L, 1, "size")->n);
    return 1;
}

static int l_templates(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "templates");
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    int64_t id = sm_gallery_find(g, name, len);
    if (id < 0) {
        luaL_pushfail(L);
        return 1;
    }
    int64_t shape[2] = { g->count[id], g->dim };
    sm_tensor *t = sm_l_newtensor(L, 2, shape);
    int64_t w = 0;
    for (int64_t r = 0; r < g->n; r++)
        if (g->owner[r] == id)
            memcpy(t->data + (w++) * g->dim, g->vec + r * g->dim, (size_t)g->dim * sizeof(float));
    return 1;
}

/* g:clear(): every identity and template removed (settings kept). */
static int l_clear(lua_State *L)
{
    sm_gallery_clear(check_gallery(L, 1, "clear"));
    return 0;
}

/* g:rows() -> tensor [n, dim] of every template in stored order, and the
 * owner of each row (1-based, an index into g:names()): the whole gallery
 * in one pass (g:templates per name would scan every row for each). */
static int l_rows(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "rows");
    int64_t shape[2] = { g->n, g->dim };
    sm_tensor *t = sm_l_newtensor(L, 2, shape);
    if (g->n > 0) memcpy(t->data, g->vec, (size_t)g->n * (size_t)g->dim * sizeof(float));
    lua_createtable(L, g->n > INT_MAX ? INT_MAX : (int)g->n, 0);
    for (int64_t r = 0; r < g->n; r++) {
        lua_pushinteger(L, (lua_Integer)g->owner[r] + 1);
        lua_rawseti(L, -2, (lua_Integer)r + 1);
    }
    return 2;
}

static int l_dim(lua_State *L) { lua_pushinteger(L, check_gallery(L, 1, "dim")->dim); return 1; }
static int l_metric(lua_State *L) { lua_pushstring(L, metric_name(check_gallery(L, 1, "metric")->metric)); return 1; }
static int l_score_mode(lua_State *L) { lua_pushstring(L, score_name(check_gallery(L, 1, "score_mode")->score)); return 1; }
static int l_threshold(lua_State *L) { lua_pushnumber(L, check_gallery(L, 1, "threshold")->threshold); return 1; }

static int l_memory(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)sm_gallery_memory(check_gallery(L, 1, "memory")));
    return 1;
}

static int l_model(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "model");
    lua_pushlstring(L, g->model, g->model_len);
    return 1;
}

static int l_set_threshold(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "set_threshold");
    lua_Number t = luaL_checknumber(L, 2);
    sm_err err;
    if (sm_gallery_threshold_check(&err, SM_EINVAL, g->metric, t) != SM_OK)
        return luaL_error(L, "gallery:set_threshold: %s", err.msg);
    g->threshold = t;
    return 0;
}

static int l_tostring(lua_State *L)
{
    l_gallery *lg = luaL_checkudata(L, 1, SM_GALLERY_MT);
    if (lg->closed) {
        lua_pushliteral(L, "siamese.Gallery(closed)");
        return 1;
    }
    const sm_gallery *g = &lg->g;
    lua_pushfstring(L, "siamese.Gallery(%d-D %s/%s, threshold %f, %I identities, %I templates, model '%s')",
                    (int)g->dim, metric_name(g->metric), score_name(g->score), g->threshold,
                    (lua_Integer)g->nid, (lua_Integer)g->n, g->model);
    return 1;
}

/* ---- search primitives ------------------------------------------------------------ */

/* g:_distance(name, emb [, model]) -> distance | nil (unknown name). */
static int l_distance(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "verify");
    size_t len;
    const char *name = luaL_checklstring(L, 2, &len);
    sm_tensor rows = check_rows(L, g, 3, "verify", 1);
    check_model(L, g, 4, "verify");
    if (rows.shape[0] != 1) {
        char s[SM_SHAPE_STR_LEN];
        return luaL_error(L, "gallery:verify: expected one embedding [%d], got %s", (int)g->dim,
                          sm_l_shape(s, &rows));
    }
    sm_err err;
    raise_status(L, sm_gallery_search_check(&err, g, &rows, 1), &err, "verify");
    int64_t id = sm_gallery_find(g, name, len);
    if (id < 0) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushnumber(L, sm_gallery_distance(g, id, rows.data));
    return 1;
}

/* g:_knn(queries, k, identities, model, fname) -> distances [m, kk], indices
 * (m lists of 1-based template or identity indices), names (m lists). */
static int l_knn(lua_State *L)
{
    const char *fname = luaL_optstring(L, 6, "search");
    sm_gallery *g = check_gallery(L, 1, fname);
    sm_tensor q = check_rows(L, g, 2, fname, 1);
    lua_Integer k = luaL_checkinteger(L, 3);
    int identities = lua_toboolean(L, 4);
    check_model(L, g, 5, fname);
    sm_err err;
    raise_status(L, sm_gallery_search_check(&err, g, &q, k), &err, fname);
    int64_t m = q.shape[0], kk = sm_gallery_search_count(g, k, identities);
    int64_t shape[2] = { m, kk };
    int threads = sm_get_num_threads();
    int64_t *idx = lua_newuserdatauv(L, (size_t)(m * kk > 0 ? m * kk : 1) * sizeof(int64_t), 0);
    void *work = lua_newuserdatauv(L, sm_gallery_search_work_bytes(m, kk, threads), 0);
    sm_tensor *d = sm_l_newtensor(L, 2, shape);
    sm_gallery_search(d->data, idx, g, &q, k, identities, threads, work);
    lua_createtable(L, (int)m, 0);
    lua_createtable(L, (int)m, 0);
    for (int64_t i = 0; i < m; i++) {
        lua_createtable(L, (int)kk, 0);
        lua_createtable(L, (int)kk, 0);
        for (int64_t j = 0; j < kk; j++) {
            int64_t r = idx[i * kk + j];
            lua_pushinteger(L, r + 1);
            lua_rawseti(L, -3, j + 1);
            push_name(L, g, identities ? r : g->owner[r]);
            lua_rawseti(L, -2, j + 1);
        }
        lua_rawseti(L, -3, i + 1);
        lua_rawseti(L, -3, i + 1);
    }
    return 3;
}

/* ---- persistence ------------------------------------------------------------------ */

static int l_save(lua_State *L)
{
    sm_gallery *g = check_gallery(L, 1, "save");
    size_t plen;
    const char *path = luaL_checklstring(L, 2, &plen);
    luaL_argcheck(L, strlen(path) == plen, 2, "path contains a zero byte");
    size_t head_len = sm_gallery_head_len(g);
    uint8_t *head = lua_newuserdatauv(L, head_len, 0);
    uint32_t crc = sm_gallery_encode_head(head, g);
    const void *bufs[3] = { head, g->vec, &crc };
    size_t lens[3] = { head_len, (size_t)(g->n * g->dim) * sizeof(float), 4 };
    sm_err err;
    sm_file_stamp stamp;
    sm_write_opts o = { .new_mode = 0600, .stamp = &stamp };
    sm_status st = sm_write_atomic_ex(&err, path, bufs, lens, 3, &o);
    if (st != SM_OK)
        return sm_l_fail(L, "%s", err.msg);
    lua_pushboolean(L, 1);
    char sbuf[SM_FILE_STAMP_LEN];
    lua_pushstring(L, sm_file_stamp_str(sbuf, &stamp));
    return 2;
}

/* Reads a whole file into a guard-held buffer; returns NULL and pushes
 * nil, message on failure (2 values). */
static uint8_t *read_whole(lua_State *L, const char *path, size_t *len, void **guard, sm_file_stamp *stamp)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sm_l_fail(L, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || sm_file_stamp_fd(stamp, fileno(f)) != 0) {
        fclose(f);
        sm_l_fail(L, "cannot read '%s': not a regular file", path);
        return NULL;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX / 2) {
        fclose(f);
        sm_l_fail(L, "cannot read '%s': file too large", path);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        sm_l_fail(L, "out of memory reading '%s' (%I bytes)", path, (lua_Integer)size);
        return NULL;
    }
    *guard = buf;
    size_t got = fread(buf, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        sm_l_fail(L, "cannot read '%s'", path);
        return NULL;
    }
    *len = got;
    return buf;
}

static int l_load(lua_State *L)
{
    size_t plen;
    const char *path = luaL_checklstring(L, 1, &plen);
    luaL_argcheck(L, strlen(path) == plen, 1, "path contains a zero byte");
    void **guard = sm_l_newguard(L);
    size_t len = 0;
    sm_file_stamp stamp;
    const uint8_t *buf = read_whole(L, path, &len, guard, &stamp);
    if (!buf) return 2;
    sm_err err;
    sm_gallery_info info;
    if (sm_gallery_decode_check(&err, &info, buf, len) != SM_OK)
        return sm_l_fail(L, "'%s': %s", path, err.msg);
    l_gallery *lg = push_gallery(L);
    sm_gallery_init(&lg->g, info.dim, info.metric, info.score, info.threshold,
                    (const char *)buf + info.model_off, info.model_len);
    sm_status st = sm_gallery_reserve(&err, &lg->g, info.n, info.nid, info.names_bytes);
    if (st == SM_OK) st = sm_gallery_decode(&err, &lg->g, &info, buf);
    sm_l_guard_release(guard);
    if (st != SM_OK) {
        sm_gallery_free(&lg->g);
        lg->closed = 1;
        return sm_l_fail(L, "'%s': %s", path, err.msg);
    }
    account_memory(L, lg);
    char sbuf[SM_FILE_STAMP_LEN];
    lua_pushstring(L, sm_file_stamp_str(sbuf, &stamp));
    return 2;
}

/* ---- registration ------------------------------------------------------------------- */

static const luaL_Reg gallery_methods[] = {
    { "add", l_add }, { "add_many", l_add_many }, { "remove", l_remove }, { "rename", l_rename },
    { "names", l_names }, { "has", l_has }, { "count", l_count }, { "size", l_size },
    { "templates", l_templates }, { "rows", l_rows }, { "clear", l_clear }, { "dim", l_dim }, { "metric", l_metric }, { "model", l_model },
    { "score_mode", l_score_mode }, { "threshold", l_threshold }, { "set_threshold", l_set_threshold },
    { "save", l_save }, { "close", l_close }, { "memory", l_memory },
    { "_distance", l_distance }, { "_knn", l_knn },
    { "__len", l_len }, { "__gc", l_close }, { "__close", l_close }, { "__tostring", l_tostring },
    { NULL, NULL }
};

static const luaL_Reg gallery_functions[] = {
    { "new", l_new }, { "load", l_load },
    { NULL, NULL }
};

void sm_open_gallery(lua_State *L)
{
    luaL_newlib(L, gallery_functions);
    sm_l_filelock_register(L);
    sm_l_newclass(L, SM_GALLERY_MT, gallery_methods);
    lua_setfield(L, -2, "Gallery");
    lua_setfield(L, -2, "gallery");
}
