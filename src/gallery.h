/*
 * gallery.h — the embedding gallery (gallery.c).
 *
 * A gallery holds identities (unique non-empty names), each with one or
 * more enrolled templates: rows of a contiguous float matrix [n, dim] grown
 * geometrically, with a per-template owner (identity index) and cached
 * squared and inverse norms. Every identity has at least one template.
 *
 * Distances ("metric"):
 *   euclidean  d(q, t) = sqrt(max(|q|^2 - 2 q.t + |t|^2, 0))
 *   cosine     d(q, t) = 1 - q.t / (|q| |t|)   (a zero vector has cosine 0: d = 1)
 * Identity score ("score"): nearest = the smallest distance to any of its
 * templates; mean = the distance to its mean template (for cosine, the
 * mean of its L2-normalised templates).
 *
 * Exact k-NN: one sgemm per block of queries x block of rows, then a scan
 * keeping each query's k best in a small sorted list; the workspace is
 * bounded (threads x SM_GALLERY_QB x (SM_GALLERY_TB + k) values), whatever
 * the row count.
 *
 * Mutations follow check -> reserve (may fail with SM_ENOMEM, nothing
 * changed) -> apply (cannot fail).
 */
#ifndef SM_GALLERY_H
#define SM_GALLERY_H

#include "sm.h"

/* ---- gallery -------------------------------------------------------------- */

#define SM_GALLERY_MODEL_MAX 255     /* bytes of a model id */
#define SM_GALLERY_NAME_MAX  4096    /* bytes of an identity name */
#define SM_GALLERY_DIM_MAX   65536
#define SM_GALLERY_QB        64      /* queries per sgemm block */
#define SM_GALLERY_TB        4096    /* rows per sgemm block */

typedef enum { SM_SCORE_NEAREST = 0, SM_SCORE_MEAN = 1 } sm_score_mode;

typedef struct {
    int64_t dim;
    sm_metric metric;           /* SM_DIST_EUCLIDEAN or SM_DIST_COSINE */
    sm_score_mode score;
    double threshold;           /* accept when distance <= threshold */
    char model[SM_GALLERY_MODEL_MAX + 1];
    size_t model_len;

    /* templates */
    int64_t n, cap;
    float *vec;                 /* [cap, dim], rows 0..n-1 in use */
    float *sqnorm, *invnorm;    /* [cap]: |t|^2 and 1/|t| (0 for a zero row) */
    int64_t *owner;             /* [cap]: identity index of each template */

    /* identities, in enrolment order */
    int64_t nid, idcap;
    int64_t *name_off;          /* [idcap]: offset of the name in arena */
    int64_t *name_len;          /* [idcap] */
    int64_t *count;             /* [idcap]: templates held */
    char *arena;                /* names, not NUL-terminated */
    size_t arena_len, arena_cap;
    int64_t *slots;             /* open-addressing name -> identity, -1 empty */
    int64_t nslots;             /* power of two >= 2 idcap */

    /* mean templates (allocated for score = mean only), recomputed when dirty */
    float *mean, *mean_sqnorm, *mean_invnorm; /* [idcap, dim], [idcap], [idcap] */
    int mean_dirty;
} sm_gallery;

/* Validates the parameters (dim 1..SM_GALLERY_DIM_MAX, metric euclidean or
 * cosine, finite threshold, model id 1..SM_GALLERY_MODEL_MAX bytes). */
/* Thresholds are finite and in (0, SM_GALLERY_THRESHOLD_MAX); st is the
 * status to fail with (SM_EINVAL for an argument, SM_EFORMAT for a file). */
#define SM_GALLERY_THRESHOLD_MAX 2.0
sm_status sm_gallery_threshold_check(sm_err *err, sm_status st, sm_metric metric, double threshold);
sm_status sm_gallery_init_check(sm_err *err, int64_t dim, sm_metric metric, double threshold,
                                const char *model, size_t model_len);
/* Fills an empty gallery (allocates nothing; call after the check). */
void sm_gallery_init(sm_gallery *g, int64_t dim, sm_metric metric, sm_score_mode score,
                     double threshold, const char *model, size_t model_len);
/* Frees everything; idempotent (the gallery becomes empty, dim kept). */
void sm_gallery_free(sm_gallery *g);

/* Bytes of C heap the gallery holds (capacities included). */
size_t sm_gallery_memory(const sm_gallery *g);

/* Identity index of name, or -1. */
int64_t sm_gallery_find(const sm_gallery *g, const char *name, size_t len);
const char *sm_gallery_name(const sm_gallery *g, int64_t id, size_t *len);

/* Enrolment of n rows of emb ([n, dim], any strides), row i under names[i]
 * (names may repeat and may already exist). The check validates names
 * (1..SM_GALLERY_NAME_MAX bytes, no zero byte), the shape and that every
 * value is finite; reserve makes room (SM_ENOMEM leaves g unchanged); add
 * cannot fail. */
sm_status sm_gallery_add_check(sm_err *err, const sm_gallery *g, const char *const *names,
                               const size_t *lens, int64_t n, const sm_tensor *emb);
sm_status sm_gallery_reserve(sm_err *err, sm_gallery *g, int64_t more_templates,
                             int64_t more_ids, size_t more_name_bytes);
void sm_gallery_add(sm_gallery *g, const char *const *names, const size_t *lens, int64_t n,
                    const sm_tensor *emb);

/* Removes identity id and its templates (O(n dim)); returns how many
 * templates went. */
int64_t sm_gallery_remove(sm_gallery *g, int64_t id);
/* Removes every identity and template (the storage is kept for reuse). */
void sm_gallery_clear(sm_gallery *g);
/* Renames identity id; the caller has checked that new_name is valid and
 * absent, and reserved len bytes (sm_gallery_reserve(g, 0, 0, len)). */
void sm_gallery_rename(sm_gallery *g, int64_t id, const char *new_name, size_t len);
/* Validates a name (length and no zero byte). */
sm_status sm_gallery_name_check(sm_err *err, const char *name, size_t len);

/* Queries q [m, dim] (contiguous rows) against the templates (identities =
 * 0) or the identities (identities = 1, scored by g->score). The check
 * validates shapes, k >= 1 and finite values. Results: dist [m, kk] and
 * idx [m, kk] (template or identity indices, ascending distance, ties by
 * ascending index) where kk = sm_gallery_search_count(g, k, identities). */
sm_status sm_gallery_search_check(sm_err *err, const sm_gallery *g, const sm_tensor *q, int64_t k);
int64_t sm_gallery_search_count(const sm_gallery *g, int64_t k, int identities);
/* Bytes of work for m queries, kk = sm_gallery_search_count(...) results
 * each, on `threads` threads (the same count must be passed to search). */
size_t sm_gallery_search_work_bytes(int64_t m, int64_t kk, int threads);
void sm_gallery_search(float *dist, int64_t *idx, sm_gallery *g, const sm_tensor *q, int64_t k,
                       int identities, int threads, void *work);

/* Distance from one embedding (dim values, contiguous; checked finite by
 * the caller) to identity id, scored by g->score, computed directly in
 * double precision. */
double sm_gallery_distance(sm_gallery *g, int64_t id, const float *q);

/* Mean template of each identity, recomputed if stale (score = mean). */
void sm_gallery_update_means(sm_gallery *g);

/* ---- file format -----------------------------------------------------------
 * Little-endian, CRC-32 over everything before the trailing checksum:
 *   "SMGALLRY"  8-byte magic
 *   u32 version (1), u32 metric (0 euclidean, 1 cosine), u32 score (0 nearest,
 *   1 mean), u32 model length, f64 threshold, u64 dim, u64 identities,
 *   u64 templates, model bytes,
 *   per identity: u32 name length, name bytes,
 *   per template: u32 owner (identity index),
 *   templates x dim f32 vectors,
 *   u32 CRC-32.
 */
#define SM_GALLERY_MAGIC "SMGALLRY"
#define SM_GALLERY_VERSION 1

/* The file is written from three pieces (header + names + owners, the
 * vectors as stored, the checksum): no copy of the vectors is made.
 * head_len gives the size of the first piece; sm_gallery_encode_head fills
 * it (head_len bytes) and returns the CRC-32 of the whole file. */
size_t   sm_gallery_head_len(const sm_gallery *g);
uint32_t sm_gallery_encode_head(uint8_t *head, const sm_gallery *g);

/* Validates a whole file in memory (magic, version, fields, counts against
 * the length, every name, owners, finite vectors, checksum) before anything
 * is allocated; fills the sizes needed to build it. */
typedef struct {
    int64_t dim, nid, n;
    sm_metric metric;
    sm_score_mode score;
    double threshold;
    size_t model_off, model_len, names_off, names_bytes, owners_off, vec_off;
} sm_gallery_info;
sm_status sm_gallery_decode_check(sm_err *err, sm_gallery_info *info, const uint8_t *buf, size_t len);
/* Fills g (initialised empty by the caller) from a checked buffer; g must
 * have reserved info->n templates, info->nid identities and
 * info->names_bytes name bytes. The one thing the check cannot see without
 * memory, a name that appears twice, is found here: SM_EFORMAT, and the
 * caller frees g without exposing it. */
sm_status sm_gallery_decode(sm_err *err, sm_gallery *g, const sm_gallery_info *info, const uint8_t *buf);

#endif
