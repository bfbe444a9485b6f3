/*
 * gallery.c — the embedding gallery: store, exact k-NN, file format.
 *
 * Store: templates are the rows of vec [cap, dim] (rows 0..n-1 in use),
 *   grown geometrically, with owner[r] (identity index), sqnorm[r] = |t|^2
 *   and invnorm[r] = 1/|t| (0 for a zero row). Identities live in
 *   enrolment order; names are bytes in one arena, found through an
 *   open-addressing hash table (FNV-1a, linear probing), so enrolling n
 *   people costs O(n), not O(n^2).
 *
 * Invariant: the first template of identity i comes before the first
 *   template of identity i + 1 (new identities get their first template
 *   appended; removal keeps the order). Every identity has >= 1 template.
 *   The file decoder checks this, which proves every identity has a
 *   template without any memory.
 *
 * k-NN (queries Q [m, dim] against rows R [N, dim]): for each block of up
 *   to QB queries and TB rows, dots = Q_b R_b^T by one sgemm, then each
 *   query ranks its rows by a score monotone in the distance:
 *     euclidean: s = |t|^2 - 2 q.t          d = sqrt(max(s + |q|^2, 0))
 *     cosine:    s = -(q.t) / |t|            d = 1 + s / |q|  (= 1 - cos)
 *   keeping its k best in a sorted list (insertion only when a score beats
 *   the current k-th, which is rare after the first blocks). Identity-level
 *   search with score "nearest" keeps k distinct identities: a template of
 *   an identity already listed only improves that entry. The threads take
 *   interleaved blocks of rows, each with its own lists (merged at the
 *   end), so even one query uses every core; ties rank by index, whatever
 *   the split. Workspace: threads x (QB x TB + QB x k) values whatever N is.
 */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "gallery.h"
#include "hash.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gallery.c writes vectors as stored: little-endian hosts only"
#endif

/* Largest accepted squared norm: keeps |t|^2 - 2 q.t finite in float. */
#define NORM2_MAX 1e30

/* ---- names ---------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

const char *sm_gallery_name(const sm_gallery *g, int64_t id, size_t *len)
{
    *len = (size_t)g->name_len[id];
    return g->arena + g->name_off[id];
}

int64_t sm_gallery_find(const sm_gallery *g, const char *name, size_t len)
{
    if (g->nslots == 0) return -1;
    uint64_t mask = (uint64_t)g->nslots - 1;
    for (uint64_t s = fnv1a(name, len) & mask;; s = (s + 1) & mask) {
        int64_t id = g->slots[s];
        if (id < 0) return -1;
        if ((size_t)g->name_len[id] == len && memcmp(g->arena + g->name_off[id], name, len) == 0)
            return id;
    }
}

static void slot_insert(int64_t *slots, int64_t nslots, const sm_gallery *g, int64_t id)
{
    uint64_t mask = (uint64_t)nslots - 1;
    uint64_t s = fnv1a(g->arena + g->name_off[id], (size_t)g->name_len[id]) & mask;
    while (slots[s] >= 0) s = (s + 1) & mask;
    slots[s] = id;
}

static void rebuild_slots(int64_t *slots, int64_t nslots, const sm_gallery *g)
{
    for (int64_t i = 0; i < nslots; i++) slots[i] = -1;
    for (int64_t id = 0; id < g->nid; id++) slot_insert(slots, nslots, g, id);
}

sm_status sm_gallery_name_check(sm_err *err, const char *name, size_t len)
{
    if (len == 0)
        return sm_fail(err, SM_EINVAL, "identity name must not be empty");
    if (len > SM_GALLERY_NAME_MAX)
        return sm_fail(err, SM_EINVAL, "identity name of %zu bytes is longer than %d", len, SM_GALLERY_NAME_MAX);
    if (memchr(name, 0, len))
        return sm_fail(err, SM_EINVAL, "identity name contains a zero byte");
    return SM_OK;
}

/* Drops the bytes of removed or renamed names when they make up most of the
 * arena. Opportunistic: when memory is short the garbage simply stays. */
static void compact_arena(sm_gallery *g)
{
    size_t live = 0;
    for (int64_t i = 0; i < g->nid; i++) live += (size_t)g->name_len[i];
    if (g->arena_len < 4096 || live * 2 > g->arena_len) return;
    char *fresh = malloc(g->arena_cap);
    if (!fresh) return;
    size_t at = 0;
    for (int64_t i = 0; i < g->nid; i++) {
        memcpy(fresh + at, g->arena + g->name_off[i], (size_t)g->name_len[i]);
        g->name_off[i] = (int64_t)at;
        at += (size_t)g->name_len[i];
    }
    free(g->arena);
    g->arena = fresh;
    g->arena_len = at;
}

/* ---- lifetime ------------------------------------------------------------- */

/* Distances between unit vectors lie in [0, 2] for both metrics (cosine
 * distance 1 - cos; euclidean |a - b|), and our face models' embeddings
 * are near unit length: a threshold of 2 or more accepts everyone, 0 or
 * less no one. */
sm_status sm_gallery_threshold_check(sm_err *err, sm_status st, sm_metric metric, double threshold)
{
    if (!isfinite(threshold) || !(threshold > 0 && threshold < SM_GALLERY_THRESHOLD_MAX))
        return sm_fail(err, st, "threshold %g is outside (0, %g) for %s distances", threshold,
                       SM_GALLERY_THRESHOLD_MAX, metric == SM_DIST_COSINE ? "cosine" : "euclidean");
    return SM_OK;
}

sm_status sm_gallery_init_check(sm_err *err, int64_t dim, sm_metric metric, double threshold,
                                const char *model, size_t model_len)
{
    if (dim < 1 || dim > SM_GALLERY_DIM_MAX)
        return sm_fail(err, SM_EINVAL, "dim must be 1..%d, got %lld", SM_GALLERY_DIM_MAX, (long long)dim);
    if (metric != SM_DIST_EUCLIDEAN && metric != SM_DIST_COSINE)
        return sm_fail(err, SM_EINVAL, "metric must be euclidean or cosine");
    if (sm_gallery_threshold_check(err, SM_EINVAL, metric, threshold) != SM_OK)
        return SM_EINVAL;
    if (!model || model_len == 0 || model_len > SM_GALLERY_MODEL_MAX)
        return sm_fail(err, SM_EINVAL, "model id must be 1..%d bytes, got %zu", SM_GALLERY_MODEL_MAX,
                       model ? model_len : (size_t)0);
    if (memchr(model, 0, model_len))
        return sm_fail(err, SM_EINVAL, "model id contains a zero byte");
    return SM_OK;
}

void sm_gallery_init(sm_gallery *g, int64_t dim, sm_metric metric, sm_score_mode score,
                     double threshold, const char *model, size_t model_len)
{
    memset(g, 0, sizeof *g);
    g->dim = dim;
    g->metric = metric;
    g->score = score;
    g->threshold = threshold;
    memcpy(g->model, model, model_len);
    g->model[model_len] = '\0';
    g->model_len = model_len;
}

void sm_gallery_free(sm_gallery *g)
{
    free(g->vec); free(g->sqnorm); free(g->invnorm); free(g->owner);
    free(g->name_off); free(g->name_len); free(g->count); free(g->arena); free(g->slots);
    free(g->mean); free(g->mean_sqnorm); free(g->mean_invnorm);
    g->vec = g->sqnorm = g->invnorm = g->mean = g->mean_sqnorm = g->mean_invnorm = NULL;
    g->owner = g->name_off = g->name_len = g->count = g->slots = NULL;
    g->arena = NULL;
    g->n = g->cap = g->nid = g->idcap = g->nslots = 0;
    g->arena_len = g->arena_cap = 0;
    g->mean_dirty = 0;
}

size_t sm_gallery_memory(const sm_gallery *g)
{
    size_t dim = (size_t)g->dim, cap = (size_t)g->cap, idcap = (size_t)g->idcap;
    size_t mean = g->score == SM_SCORE_MEAN ? dim * sizeof(float) + 2 * sizeof(float) : 0;
    return cap * (dim * sizeof(float) + 2 * sizeof(float) + sizeof(int64_t)) +
           idcap * (3 * sizeof(int64_t) + mean) +
           g->arena_cap + (size_t)g->nslots * sizeof(int64_t);
}

/* ---- capacity --------------------------------------------------------------- */

/* realloc that leaves *p untouched on failure. */
static int grow(void *pp, size_t bytes)
{
    void **p = pp;
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q) return -1;
    *p = q;
    return 0;
}

static int64_t next_cap(int64_t cap, int64_t need)
{
    int64_t c = cap < 16 ? 16 : cap;
    while (c < need) c = c > INT64_MAX / 2 ? need : c * 2;
    return c;
}

sm_status sm_gallery_reserve(sm_err *err, sm_gallery *g, int64_t more_templates,
                             int64_t more_ids, size_t more_name_bytes)
{
    size_t dim = (size_t)g->dim;
    /* Row counts beyond this cannot be addressed as bytes. */
    int64_t row_limit = (int64_t)(SIZE_MAX / 8 / (dim + 1)) - 1;
    if (more_templates < 0 || more_ids < 0 || more_templates > row_limit - g->n || more_ids > row_limit - g->nid)
        return sm_fail(err, SM_ENOMEM, "gallery: %lld templates / %lld identities is more than this system can hold",
                       (long long)(g->n + more_templates), (long long)(g->nid + more_ids));
    int64_t need = g->n + more_templates;
    if (need > g->cap) {
        int64_t c = next_cap(g->cap, need);
        if (c > row_limit) c = need;
        if (grow(&g->vec, (size_t)c * dim * sizeof(float)) || grow(&g->sqnorm, (size_t)c * sizeof(float)) ||
            grow(&g->invnorm, (size_t)c * sizeof(float)) || grow(&g->owner, (size_t)c * sizeof(int64_t)))
            return sm_fail(err, SM_ENOMEM, "gallery: out of memory for %lld templates of dimension %zu",
                           (long long)c, dim);
        g->cap = c;
    }
    need = g->nid + more_ids;
    if (need > g->idcap) {
        int64_t c = next_cap(g->idcap, need);
        if (c > row_limit) c = need;
        int64_t ns = 16;
        while (ns < 2 * c) ns *= 2;
        int64_t *slots = malloc((size_t)ns * sizeof(int64_t));
        /* mean templates only exist for score = mean */
        int means = g->score == SM_SCORE_MEAN;
        if (!slots || grow(&g->name_off, (size_t)c * sizeof(int64_t)) || grow(&g->name_len, (size_t)c * sizeof(int64_t)) ||
            grow(&g->count, (size_t)c * sizeof(int64_t)) || (means && grow(&g->mean, (size_t)c * dim * sizeof(float))) ||
            (means && grow(&g->mean_sqnorm, (size_t)c * sizeof(float))) ||
            (means && grow(&g->mean_invnorm, (size_t)c * sizeof(float)))) {
            free(slots);
            return sm_fail(err, SM_ENOMEM, "gallery: out of memory for %lld identities", (long long)c);
        }
        rebuild_slots(slots, ns, g);
        free(g->slots);
        g->slots = slots;
        g->nslots = ns;
        g->idcap = c;
    }
    if (more_name_bytes > SIZE_MAX / 2 - g->arena_len)
        return sm_fail(err, SM_ENOMEM, "gallery: names too long");
    size_t need_bytes = g->arena_len + more_name_bytes;
    if (need_bytes > g->arena_cap) {
        size_t c = g->arena_cap < 256 ? 256 : g->arena_cap;
        while (c < need_bytes) c *= 2;
        if (grow(&g->arena, c))
            return sm_fail(err, SM_ENOMEM, "gallery: out of memory for %zu bytes of names", c);
        g->arena_cap = c;
    }
    return SM_OK;
}

/* ---- enrolment -------------------------------------------------------------- */

/* Sum of squares in double; -1 when a value is not finite. */
static double row_norm2(const float *row, int64_t stride, int64_t dim)
{
    double s = 0;
    for (int64_t j = 0; j < dim; j++) {
        float v = row[j * stride];
        if (!isfinite(v)) return -1;
        s += (double)v * v;
    }
    return s;
}

static sm_status rows_check(sm_err *err, const sm_tensor *t, int64_t dim, const char *what)
{
    char s[SM_SHAPE_STR_LEN];
    if (t->ndim != 2 || t->shape[1] != dim)
        return sm_fail(err, SM_EINVAL, "%s must be [n,%lld], got %s", what, (long long)dim,
                       sm_shape_str(s, sizeof s, t->ndim, t->shape));
    for (int64_t i = 0; i < t->shape[0]; i++) {
        double n2 = row_norm2(t->data + i * t->stride[0], t->stride[1], dim);
        if (n2 < 0)
            return sm_fail(err, SM_EINVAL, "%s row %lld has a value that is not finite", what, (long long)i + 1);
        if (n2 > NORM2_MAX)
            return sm_fail(err, SM_EINVAL, "%s row %lld has a norm above 1e15", what, (long long)i + 1);
    }
    return SM_OK;
}

sm_status sm_gallery_add_check(sm_err *err, const sm_gallery *g, const char *const *names,
                               const size_t *lens, int64_t n, const sm_tensor *emb)
{
    sm_status st = rows_check(err, emb, g->dim, "embeddings");
    if (st != SM_OK) return st;
    if (emb->shape[0] != n)
        return sm_fail(err, SM_EINVAL, "%lld names for %lld embeddings", (long long)n, (long long)emb->shape[0]);
    for (int64_t i = 0; i < n; i++)
        if ((st = sm_gallery_name_check(err, names[i], lens[i])) != SM_OK)
            return st;
    return SM_OK;
}

static void set_norms(sm_gallery *g, int64_t r)
{
    const float *t = g->vec + r * g->dim;
    double n2 = 0;
    for (int64_t j = 0; j < g->dim; j++) n2 += (double)t[j] * t[j];
    g->sqnorm[r] = (float)n2;
    g->invnorm[r] = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
}

static int64_t new_identity(sm_gallery *g, const char *name, size_t len)
{
    int64_t id = g->nid++;
    memcpy(g->arena + g->arena_len, name, len);
    g->name_off[id] = (int64_t)g->arena_len;
    g->name_len[id] = (int64_t)len;
    g->count[id] = 0;
    g->arena_len += len;
    slot_insert(g->slots, g->nslots, g, id);
    return id;
}

void sm_gallery_add(sm_gallery *g, const char *const *names, const size_t *lens, int64_t n,
                    const sm_tensor *emb)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t id = sm_gallery_find(g, names[i], lens[i]);
        if (id < 0) id = new_identity(g, names[i], lens[i]);
        int64_t r = g->n++;
        float *dst = g->vec + r * g->dim;
        const float *src = emb->data + i * emb->stride[0];
        for (int64_t j = 0; j < g->dim; j++) dst[j] = src[j * emb->stride[1]];
        set_norms(g, r);
        g->owner[r] = id;
        g->count[id]++;
    }
    if (n > 0) g->mean_dirty = 1;
}

int64_t sm_gallery_remove(sm_gallery *g, int64_t id)
{
    int64_t w = 0, removed = 0, dim = g->dim;
    for (int64_t r = 0; r < g->n; r++) {
        int64_t o = g->owner[r];
        if (o == id) { removed++; continue; }
        if (w != r) {
            memcpy(g->vec + w * dim, g->vec + r * dim, (size_t)dim * sizeof(float));
            g->sqnorm[w] = g->sqnorm[r];
            g->invnorm[w] = g->invnorm[r];
        }
        g->owner[w++] = o > id ? o - 1 : o;
    }
    g->n = w;
    for (int64_t i = id; i + 1 < g->nid; i++) {
        g->name_off[i] = g->name_off[i + 1];
        g->name_len[i] = g->name_len[i + 1];
        g->count[i] = g->count[i + 1];
    }
    g->nid--;
    compact_arena(g);
    rebuild_slots(g->slots, g->nslots, g);
    g->mean_dirty = 1;
    return removed;
}

void sm_gallery_clear(sm_gallery *g)
{
    g->n = 0;
    g->nid = 0;
    g->arena_len = 0;
    for (int64_t i = 0; i < g->nslots; i++) g->slots[i] = -1;
    g->mean_dirty = 1;
}

void sm_gallery_rename(sm_gallery *g, int64_t id, const char *new_name, size_t len)
{
    memcpy(g->arena + g->arena_len, new_name, len);
    g->name_off[id] = (int64_t)g->arena_len;
    g->name_len[id] = (int64_t)len;
    g->arena_len += len;
    compact_arena(g);
    rebuild_slots(g->slots, g->nslots, g);
}

void sm_gallery_update_means(sm_gallery *g)
{
    if (!g->mean_dirty) return;
    int64_t dim = g->dim;
    if (g->nid > 0) memset(g->mean, 0, (size_t)(g->nid * dim) * sizeof(float));
    int cosine = g->metric == SM_DIST_COSINE;
    for (int64_t r = 0; r < g->n; r++) {
        float *m = g->mean + g->owner[r] * dim;
        const float *t = g->vec + r * dim;
        float w = cosine ? g->invnorm[r] : 1.0f;
        for (int64_t j = 0; j < dim; j++) m[j] += w * t[j];
    }
    for (int64_t i = 0; i < g->nid; i++) {
        float *m = g->mean + i * dim;
        float inv = 1.0f / (float)g->count[i];
        double n2 = 0;
        for (int64_t j = 0; j < dim; j++) {
            m[j] *= inv;
            n2 += (double)m[j] * m[j];
        }
        g->mean_sqnorm[i] = (float)n2;
        g->mean_invnorm[i] = n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f;
    }
    g->mean_dirty = 0;
}

/* ---- distances ---------------------------------------------------------------- */

static double direct_distance(const float *q, const float *t, int64_t dim, sm_metric metric)
{
    double dot = 0, qq = 0, tt = 0, d2 = 0;
    for (int64_t j = 0; j < dim; j++) {
        double a = q[j], b = t[j];
        dot += a * b; qq += a * a; tt += b * b; d2 += (a - b) * (a - b);
    }
    if (metric == SM_DIST_EUCLIDEAN) return sqrt(d2);
    if (qq == 0 || tt == 0) return 1.0;
    return 1.0 - dot / (sqrt(qq) * sqrt(tt));
}

double sm_gallery_distance(sm_gallery *g, int64_t id, const float *q)
{
    if (g->score == SM_SCORE_MEAN) {
        sm_gallery_update_means(g);
        return direct_distance(q, g->mean + id * g->dim, g->dim, g->metric);
    }
    double best = INFINITY;
    for (int64_t r = 0; r < g->n; r++) {
        if (g->owner[r] != id) continue;
        double d = direct_distance(q, g->vec + r * g->dim, g->dim, g->metric);
        if (d < best) best = d;
    }
    return best;
}

/* ---- k-NN search ---------------------------------------------------------------- */

sm_status sm_gallery_search_check(sm_err *err, const sm_gallery *g, const sm_tensor *q, int64_t k)
{
    if (k < 1)
        return sm_fail(err, SM_EINVAL, "k must be >= 1, got %lld", (long long)k);
    sm_status st = rows_check(err, q, g->dim, "queries");
    if (st != SM_OK) return st;
    if (q->stride[1] != 1 || (q->shape[0] > 1 && q->stride[0] != g->dim))
        return sm_fail(err, SM_EINVAL, "queries must be contiguous");
    return SM_OK;
}

int64_t sm_gallery_search_count(const sm_gallery *g, int64_t k, int identities)
{
    int64_t rows = identities ? g->nid : g->n;
    return k < rows ? k : rows;
}

/* Layout of one thread's share of the work: products [qb x TB] floats,
 * list scores [qb x kk] floats, list keys [qb x kk] int64 (8-aligned). */
typedef struct { size_t scores_off, keys_off, per; } work_layout;

static work_layout layout(int64_t qbmax, int64_t kk)
{
    work_layout w;
    size_t align = 64;
    w.scores_off = (size_t)qbmax * SM_GALLERY_TB * sizeof(float);
    w.keys_off = w.scores_off + ((size_t)(qbmax * kk) * sizeof(float) + 7) / 8 * 8;
    w.per = (w.keys_off + (size_t)(qbmax * kk) * sizeof(int64_t) + align - 1) / align * align;
    return w;
}

size_t sm_gallery_search_work_bytes(int64_t m, int64_t kk, int threads)
{
    int64_t qbmax = m < SM_GALLERY_QB ? m : SM_GALLERY_QB;
    if (threads < 1) threads = 1;
    return (size_t)threads * layout(qbmax, kk).per + (size_t)SM_GALLERY_QB * sizeof(float);
}

/* (v, key) ranks before (w, wkey): smaller score, ties by smaller key, so
 * results do not depend on how the rows were split between threads. */
static inline int before(float v, int64_t key, float w, int64_t wkey)
{
    return v < w || (v == w && key < wkey);
}

/* Inserts (v, key) into the ascending list s/id of length kk, given that it
 * ranks before the last entry. distinct: key appears at most once. */
static void list_insert(float *s, int64_t *id, int64_t kk, float v, int64_t key, int distinct)
{
    if (distinct) {
        int64_t j = 0;
        while (j < kk && id[j] != key) j++;
        if (j < kk) {
            if (!before(v, key, s[j], id[j])) return;
            for (; j + 1 < kk; j++) { s[j] = s[j + 1]; id[j] = id[j + 1]; }
            s[kk - 1] = INFINITY;
            id[kk - 1] = INT64_MAX;
        }
    }
    int64_t pos = kk - 1;
    while (pos > 0 && before(v, key, s[pos - 1], id[pos - 1])) {
        s[pos] = s[pos - 1];
        id[pos] = id[pos - 1];
        pos--;
    }
    s[pos] = v;
    id[pos] = key;
}

/* One query against one block of rows t0..t0+tb-1, in chunks: the dots
 * become ranking scores in place while a flag records whether any beats
 * the list's last entry (a loop the compiler vectorises); only flagged
 * chunks, rare once the list is full, are scanned for insertions. */
#define SCAN_CHUNK 64
static void scan_block(float *s, int64_t *id, int64_t kk, float *dots, int64_t tb, int64_t t0,
                       const float *aux, const int64_t *owner, int euclid)
{
    const float *a = aux + t0;
    for (int64_t c0 = 0; c0 < tb; c0 += SCAN_CHUNK) {
        int64_t c1 = tb - c0 < SCAN_CHUNK ? tb : c0 + SCAN_CHUNK;
        float worst = s[kk - 1];
        int hit = 0;
        if (euclid)
            for (int64_t j = c0; j < c1; j++) {
                float v = a[j] - 2.0f * dots[j];
                dots[j] = v;
                hit |= v <= worst;
            }
        else
            for (int64_t j = c0; j < c1; j++) {
                float v = -dots[j] * a[j];
                dots[j] = v;
                hit |= v <= worst;
            }
        if (!hit) continue;
        for (int64_t j = c0; j < c1; j++) {
            if (dots[j] <= worst) {
                int64_t key = owner ? owner[t0 + j] : t0 + j;
                if (before(dots[j], key, worst, id[kk - 1])) {
                    list_insert(s, id, kk, dots[j], key, owner != NULL);
                    worst = s[kk - 1];
                }
            }
        }
    }
}

static void lists_init(float *s, int64_t *id, int64_t count)
{
    for (int64_t i = 0; i < count; i++) {
        s[i] = INFINITY;
        id[i] = INT64_MAX;
    }
}

void sm_gallery_search(float *dist, int64_t *idx, sm_gallery *g, const sm_tensor *q, int64_t k,
                       int identities, int threads, void *work)
{
    int64_t m = q->shape[0], dim = g->dim;
    int64_t kk = sm_gallery_search_count(g, k, identities);
    if (m == 0 || kk == 0) return;
    int euclid = g->metric == SM_DIST_EUCLIDEAN;
    const float *rows = g->vec, *aux = euclid ? g->sqnorm : g->invnorm;
    const int64_t *owner = NULL;
    int64_t nrows = g->n;
    if (identities && g->score == SM_SCORE_MEAN) {
        sm_gallery_update_means(g);
        rows = g->mean;
        aux = euclid ? g->mean_sqnorm : g->mean_invnorm;
        nrows = g->nid;
    } else if (identities) {
        owner = g->owner;
    }
    int64_t nblocks = (nrows + SM_GALLERY_TB - 1) / SM_GALLERY_TB;
    int nt = threads < 1 ? 1 : threads;
    if (nt > nblocks) nt = (int)nblocks;
    int64_t qbmax = m < SM_GALLERY_QB ? m : SM_GALLERY_QB;
    /* work: one share per thread, then the query norms */
    work_layout wl = layout(qbmax, kk);
    uint8_t *base = work;
    float *qaux = (float *)(base + (size_t)nt * wl.per);
    for (int64_t q0 = 0; q0 < m; q0 += SM_GALLERY_QB) {
        int64_t qb = m - q0 < SM_GALLERY_QB ? m - q0 : SM_GALLERY_QB;
        const float *Q = q->data + q0 * dim;
        for (int64_t i = 0; i < qb; i++) {
            double n2 = 0;
            for (int64_t j = 0; j < dim; j++) n2 += (double)Q[i * dim + j] * Q[i * dim + j];
            qaux[i] = euclid ? (float)n2 : (n2 > 0 ? (float)(1.0 / sqrt(n2)) : 0.0f);
        }
        /* Each thread takes every nt-th block of rows with its own lists;
         * sm_sgemm inside the parallel region is one single-threaded call. */
        #pragma omp parallel num_threads(nt)
        {
            int tid = omp_get_thread_num();
            uint8_t *mine = base + (size_t)tid * wl.per;
            float *dots = (float *)mine;
            float *ls = (float *)(mine + wl.scores_off);
            int64_t *lk = (int64_t *)(mine + wl.keys_off);
            lists_init(ls, lk, qb * kk);
            for (int64_t b = tid; b < nblocks; b += nt) {
                int64_t t0 = b * SM_GALLERY_TB;
                int64_t tb = nrows - t0 < SM_GALLERY_TB ? nrows - t0 : SM_GALLERY_TB;
                sm_sgemm(0, 1, qb, tb, dim, 1.0f, Q, dim, rows + t0 * dim, dim, 0.0f, dots, tb);
                for (int64_t i = 0; i < qb; i++)
                    scan_block(ls + i * kk, lk + i * kk, kk, dots + i * tb, tb, t0, aux, owner, euclid);
            }
        }
        /* merge the threads' lists, then ranking scores -> distances */
        for (int64_t i = 0; i < qb; i++) {
            float *s = dist + (q0 + i) * kk;
            int64_t *id = idx + (q0 + i) * kk;
            lists_init(s, id, kk);
            for (int t = 0; t < nt; t++) {
                const uint8_t *mine = base + (size_t)t * wl.per;
                const float *ls = (const float *)(mine + wl.scores_off) + i * kk;
                const int64_t *lk = (const int64_t *)(mine + wl.keys_off) + i * kk;
                for (int64_t j = 0; j < kk && lk[j] != INT64_MAX; j++)
                    if (before(ls[j], lk[j], s[kk - 1], id[kk - 1]))
                        list_insert(s, id, kk, ls[j], lk[j], owner != NULL);
            }
            for (int64_t j = 0; j < kk; j++)
                s[j] = euclid ? sqrtf(fmaxf(s[j] + qaux[i], 0.0f)) : 1.0f + s[j] * qaux[i];
        }
    }
}

/* ---- file format -------------------------------------------------------------------- */

#define HEAD_FIXED 56 /* magic 8, 4 x u32, f64, 3 x u64 */

static uint8_t *put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); return p + 4; }
static uint8_t *put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); return p + 8; }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

size_t sm_gallery_head_len(const sm_gallery *g)
{
    size_t len = HEAD_FIXED + g->model_len + 4 * (size_t)g->n;
    for (int64_t i = 0; i < g->nid; i++) len += 4 + (size_t)g->name_len[i];
    return len;
}

uint32_t sm_gallery_encode_head(uint8_t *head, const sm_gallery *g)
{
    uint8_t *p = head;
    memcpy(p, SM_GALLERY_MAGIC, 8);
    p += 8;
    p = put_u32(p, SM_GALLERY_VERSION);
    p = put_u32(p, g->metric == SM_DIST_COSINE ? 1 : 0);
    p = put_u32(p, (uint32_t)g->score);
    p = put_u32(p, (uint32_t)g->model_len);
    memcpy(p, &g->threshold, 8);
    p += 8;
    p = put_u64(p, (uint64_t)g->dim);
    p = put_u64(p, (uint64_t)g->nid);
    p = put_u64(p, (uint64_t)g->n);
    memcpy(p, g->model, g->model_len);
    p += g->model_len;
    for (int64_t i = 0; i < g->nid; i++) {
        p = put_u32(p, (uint32_t)g->name_len[i]);
        memcpy(p, g->arena + g->name_off[i], (size_t)g->name_len[i]);
        p += g->name_len[i];
    }
    for (int64_t r = 0; r < g->n; r++) p = put_u32(p, (uint32_t)g->owner[r]);
    uint32_t crc = sm_crc32_update(0, head, (size_t)(p - head));
    return sm_crc32_update(crc, g->vec, (size_t)(g->n * g->dim) * sizeof(float));
}

sm_status sm_gallery_decode_check(sm_err *err, sm_gallery_info *info, const uint8_t *buf, size_t len)
{
    if (len < 8 || memcmp(buf, SM_GALLERY_MAGIC, 8) != 0)
        return sm_fail(err, SM_EFORMAT, "not a gallery file (bad magic)");
    if (len < HEAD_FIXED + 4)
        return sm_fail(err, SM_EFORMAT, "truncated gallery file (%zu bytes, the header alone needs %d)",
                       len, HEAD_FIXED + 4);
    uint32_t version = get_u32(buf + 8);
    if (version != SM_GALLERY_VERSION)
        return sm_fail(err, SM_EFORMAT, "unsupported gallery file version %u (this build reads version %d)",
                       version, SM_GALLERY_VERSION);
    uint32_t stored = get_u32(buf + len - 4), crc = sm_crc32(buf, len - 4);
    if (stored != crc)
        return sm_fail(err, SM_EFORMAT, "gallery file damaged or truncated (CRC-32 %08x, expected %08x)",
                       crc, stored);
    uint32_t metric = get_u32(buf + 12), score = get_u32(buf + 16), model_len = get_u32(buf + 20);
    double threshold;
    memcpy(&threshold, buf + 24, 8);
    uint64_t dim = get_u64(buf + 32), nid = get_u64(buf + 40), n = get_u64(buf + 48);
    if (metric > 1)
        return sm_fail(err, SM_EFORMAT, "gallery file: unknown metric code %u", metric);
    if (score > 1)
        return sm_fail(err, SM_EFORMAT, "gallery file: unknown score code %u", score);
    if (model_len < 1 || model_len > SM_GALLERY_MODEL_MAX)
        return sm_fail(err, SM_EFORMAT, "gallery file: model id length %u out of range", model_len);
    if (sm_gallery_threshold_check(NULL, SM_EFORMAT, SM_DIST_EUCLIDEAN, threshold) != SM_OK)
        return sm_fail(err, SM_EFORMAT, "gallery file: threshold %g is outside (0, %g), not trusted", threshold,
                       SM_GALLERY_THRESHOLD_MAX);
    if (dim < 1 || dim > SM_GALLERY_DIM_MAX)
        return sm_fail(err, SM_EFORMAT, "gallery file: dimension %llu out of range", (unsigned long long)dim);
    size_t body = len - 4; /* bytes before the checksum */
    if (nid > n || n > body / (4 * (dim + 1)))
        return sm_fail(err, SM_EFORMAT, "gallery file: %llu identities / %llu templates do not fit in %zu bytes",
                       (unsigned long long)nid, (unsigned long long)n, len);
    size_t pos = HEAD_FIXED;
    if (model_len > body - pos)
        return sm_fail(err, SM_EFORMAT, "gallery file truncated in the model id");
    if (memchr(buf + pos, 0, model_len))
        return sm_fail(err, SM_EFORMAT, "gallery file: model id contains a zero byte");
    info->model_off = pos;
    pos += model_len;
    info->names_off = pos;
    size_t names_bytes = 0;
    for (uint64_t i = 0; i < nid; i++) {
        if (body - pos < 4)
            return sm_fail(err, SM_EFORMAT, "gallery file truncated in the names");
        uint32_t nl = get_u32(buf + pos);
        pos += 4;
        if (nl < 1 || nl > SM_GALLERY_NAME_MAX || nl > body - pos)
            return sm_fail(err, SM_EFORMAT, "gallery file: identity %llu has a bad name length %u",
                           (unsigned long long)i + 1, nl);
        if (memchr(buf + pos, 0, nl))
            return sm_fail(err, SM_EFORMAT, "gallery file: identity %llu has a zero byte in its name",
                           (unsigned long long)i + 1);
        pos += nl;
        names_bytes += nl;
    }
    size_t vec_bytes = (size_t)n * (size_t)dim * 4; /* n (dim + 1) 4 <= body: no overflow */
    if (body - pos != 4 * (size_t)n + vec_bytes)
        return sm_fail(err, SM_EFORMAT, "gallery file: %zu bytes after the names, expected %zu for %llu templates",
                       body - pos, 4 * (size_t)n + vec_bytes, (unsigned long long)n);
    info->owners_off = pos;
    /* Identities must first appear in order 0, 1, 2, ...: each has a template. */
    uint64_t seen = 0;
    for (uint64_t r = 0; r < n; r++) {
        uint32_t o = get_u32(buf + pos + 4 * r);
        if (o > seen || o >= nid)
            return sm_fail(err, SM_EFORMAT, "gallery file: template %llu has a bad owner %u",
                           (unsigned long long)r + 1, o);
        if (o == seen) seen++;
    }
    if (seen != nid)
        return sm_fail(err, SM_EFORMAT, "gallery file: %llu identities have no template",
                       (unsigned long long)(nid - seen));
    pos += 4 * (size_t)n;
    info->vec_off = pos;
    for (uint64_t r = 0; r < n; r++) {
        float row[256];
        double n2 = 0;
        for (uint64_t j0 = 0; j0 < dim; j0 += 256) {
            uint64_t c = dim - j0 < 256 ? dim - j0 : 256;
            memcpy(row, buf + pos + 4 * (r * dim + j0), 4 * c);
            double part = row_norm2(row, 1, (int64_t)c);
            if (part < 0)
                return sm_fail(err, SM_EFORMAT, "gallery file: template %llu has a value that is not finite",
                               (unsigned long long)r + 1);
            n2 += part;
        }
        if (n2 > NORM2_MAX)
            return sm_fail(err, SM_EFORMAT, "gallery file: template %llu has a norm above 1e15",
                           (unsigned long long)r + 1);
    }
    info->dim = (int64_t)dim;
    info->nid = (int64_t)nid;
    info->n = (int64_t)n;
    info->metric = metric ? SM_DIST_COSINE : SM_DIST_EUCLIDEAN;
    info->score = score ? SM_SCORE_MEAN : SM_SCORE_NEAREST;
    info->threshold = threshold;
    info->model_len = model_len;
    info->names_bytes = names_bytes;
    return SM_OK;
}

sm_status sm_gallery_decode(sm_err *err, sm_gallery *g, const sm_gallery_info *info, const uint8_t *buf)
{
    size_t pos = info->names_off;
    for (int64_t i = 0; i < info->nid; i++) {
        uint32_t nl = get_u32(buf + pos);
        pos += 4;
        if (sm_gallery_find(g, (const char *)buf + pos, nl) >= 0)
            return sm_fail(err, SM_EFORMAT, "gallery file: identity name '%.*s' appears twice",
                           (int)(nl < 64 ? nl : 64), (const char *)buf + pos);
        new_identity(g, (const char *)buf + pos, nl);
        pos += nl;
    }
    if (info->n > 0) /* an empty gallery has no store yet */
        memcpy(g->vec, buf + info->vec_off, (size_t)(info->n * info->dim) * sizeof(float));
    for (int64_t r = 0; r < info->n; r++) {
        int64_t o = get_u32(buf + info->owners_off + 4 * (size_t)r);
        g->owner[r] = o;
        g->count[o]++;
        set_norms(g, r);
    }
    g->n = info->n;
    g->mean_dirty = 1;
    return SM_OK;
}
