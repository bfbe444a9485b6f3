/*
 * sm.h — public C API of the siamese core.
 *
 * The core never sees a lua_State, never exits, and never allocates on a path
 * that can fail afterwards. Every kernel that can be misused has a *_check
 * (or validates up front) that writes a message into an sm_err and returns a
 * status; compute functions called after a successful check cannot fail.
 *
 * Conventions: outputs first, then inputs, then parameters; indices are
 * 0-based here (bindings convert from Lua's 1-based indices); gradients
 * accumulate (+=) in backward passes.
 */
#ifndef SM_H
#define SM_H

#include <stddef.h>
#include <stdint.h>

/* ---- status and error messages ---------------------------------------- */

typedef enum {
    SM_OK = 0,
    SM_EINVAL,   /* misuse: bad shape, index, parameter (bindings raise) */
    SM_ENOMEM,   /* allocation failed */
    SM_EFORMAT,  /* corrupt / truncated / unsupported data (bindings return nil, msg) */
    SM_ELIMIT,   /* data exceeds a configured limit (e.g. image pixel count) */
    SM_EIO       /* operating-system I/O error */
} sm_status;

#define SM_ERR_LEN 256
typedef struct { char msg[SM_ERR_LEN]; } sm_err;

/* printf-style: writes into err (if non-NULL) and returns st. */
sm_status sm_fail(sm_err *err, sm_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- tensors ------------------------------------------------------------ */

#define SM_MAX_DIMS 8

/* A strided float32 view. The storage is owned elsewhere (in Lua, by a
 * userdata the view keeps alive); the struct itself never owns memory. */
typedef struct {
    float  *data;
    int     ndim;
    int64_t shape[SM_MAX_DIMS];
    int64_t stride[SM_MAX_DIMS]; /* in elements */
} sm_tensor;

/* Formats a shape as "[2,3,4]" into buf (always NUL-terminated). */
const char *sm_shape_str(char *buf, size_t len, int ndim, const int64_t *shape);
#define SM_SHAPE_STR_LEN 128

int64_t sm_numel(int ndim, const int64_t *shape);
int     sm_tensor_is_contiguous(const sm_tensor *t);
int     sm_tensor_same_shape(const sm_tensor *a, const sm_tensor *b);
/* Validates a shape (0..SM_MAX_DIMS dims, each >= 0, numel fits) and the
 * byte count; does not touch data. */
sm_status sm_shape_check(sm_err *err, int ndim, const int64_t *shape, size_t *nbytes);
/* Fills t as a contiguous row-major view of data with the given shape. */
void sm_tensor_init(sm_tensor *t, float *data, int ndim, const int64_t *shape);

/* Views (no data is touched; out may alias in). */
sm_status sm_tensor_narrow(sm_err *err, sm_tensor *out, const sm_tensor *in,
                           int dim, int64_t start, int64_t len);
sm_status sm_tensor_select(sm_err *err, sm_tensor *out, const sm_tensor *in,
                           int dim, int64_t index);
sm_status sm_tensor_transpose(sm_err *err, sm_tensor *out, const sm_tensor *in,
                              int d1, int d2);
/* Reinterprets a contiguous tensor with a new shape; one entry may be -1. */
sm_status sm_tensor_view(sm_err *err, sm_tensor *out, const sm_tensor *in,
                         int ndim, const int64_t *shape);
/* Resolves a -1 entry and checks the element count; shape is updated. */
sm_status sm_view_shape(sm_err *err, int64_t numel, int ndim, int64_t *shape);

/* Element-wise work over arbitrary strides. */
void sm_tensor_fill(sm_tensor *t, float v);
void sm_tensor_copy(sm_tensor *dst, const sm_tensor *src); /* same numel, row-major order */

typedef enum { SM_OP_ADD, SM_OP_SUB, SM_OP_MUL, SM_OP_DIV } sm_binop;
/* out = a (op) b, all the same shape (out may alias a or b). */
void sm_tensor_binop(sm_tensor *out, const sm_tensor *a, const sm_tensor *b, sm_binop op);
/* out = a (op) s. */
void sm_tensor_binop_scalar(sm_tensor *out, const sm_tensor *a, float s, sm_binop op);
/* out = alpha * a + beta * b (axpby-style; out may alias). */
void sm_tensor_axpby(sm_tensor *out, float alpha, const sm_tensor *a, float beta, const sm_tensor *b);

/* Reductions. Whole-tensor versions return doubles (accumulated in double). */
double sm_tensor_sum_all(const sm_tensor *t);
double sm_tensor_max_all(const sm_tensor *t, int64_t *argmax); /* argmax: row-major flat index */
double sm_tensor_min_all(const sm_tensor *t, int64_t *argmin);
/* p = 1, 2, or INFINITY */
double sm_tensor_norm_all(const sm_tensor *t, double p);

typedef enum { SM_RED_SUM, SM_RED_MEAN, SM_RED_MAX, SM_RED_MIN, SM_RED_NORM1, SM_RED_NORM2, SM_RED_NORMINF } sm_reduce;
/* Reduces along dim. out has in's shape without dim (or with size 1 there:
 * only the element count matters, out must be contiguous). idx (optional,
 * for MAX/MIN) receives 0-based positions along dim. */
sm_status sm_tensor_reduce_check(sm_err *err, const sm_tensor *in, int dim);
void sm_tensor_reduce(float *out, int64_t *idx, const sm_tensor *in, int dim, sm_reduce op);

/* C[M,N] = A[M,K] B[K,N] through cblas_sgemm. Any of A, B may be a
 * transposed view (unit stride on either axis); otherwise the check fails
 * and the caller must pass contiguous copies. C must be contiguous. */
sm_status sm_matmul_check(sm_err *err, const sm_tensor *c, const sm_tensor *a, const sm_tensor *b);
void sm_matmul(sm_tensor *c, const sm_tensor *a, const sm_tensor *b);
int  sm_matrix_blas_ok(const sm_tensor *m); /* 2-D with one unit stride */

typedef enum { SM_DIST_EUCLIDEAN, SM_DIST_SQEUCLIDEAN, SM_DIST_COSINE } sm_metric;
/* D[N,M] = distance between rows of A[N,K] and B[M,K] (contiguous). Uses
 * sgemm; euclidean is clamped at 0 before the square root; cosine distance
 * is 1 - cos, with zero rows treated as having cosine 0. */
sm_status sm_cdist_check(sm_err *err, const sm_tensor *d, const sm_tensor *a, const sm_tensor *b);
void sm_cdist(sm_tensor *d, const sm_tensor *a, const sm_tensor *b, sm_metric metric,
              float *work /* N + M floats */);

/* ---- images --------------------------------------------------------------- */

/* 8-bit interleaved samples, row by row, no padding between rows; channels
 * is 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA). data is not owned.
 * Pixel geometry is 0-based: pixel (x, y) has its centre at (x, y). */
typedef struct { int width, height, channels; uint8_t *data; } sm_image;

typedef enum { SM_FMT_UNKNOWN = 0, SM_FMT_JPEG, SM_FMT_PNG, SM_FMT_PNM } sm_image_format;
typedef struct { sm_image_format format; int width, height, channels; } sm_image_info;

#define SM_IMAGE_DEFAULT_MAX_PIXELS ((uint64_t)64 * 1000 * 1000)
#define SM_IMAGE_MAX_SIDE 65535

sm_image_format sm_image_sniff(const uint8_t *buf, size_t len);
const char     *sm_image_format_name(sm_image_format f);
/* Reads only the header: format, size and the channel count decode will
 * produce. SM_EFORMAT for unknown or corrupt data, SM_ELIMIT when
 * width*height > max_pixels. Allocates nothing that outlives the call. */
sm_status sm_image_probe(sm_err *err, sm_image_info *info,
                         const uint8_t *buf, size_t len, uint64_t max_pixels);
/* Decodes into out->data (width*height*channels bytes, as probe said; out's
 * fields must equal info's). SM_EFORMAT on corrupt or truncated data; out's
 * contents are then unspecified but nothing leaks. */
sm_status sm_image_decode(sm_err *err, sm_image *out, const sm_image_info *info,
                          const uint8_t *buf, size_t len);

/* ---- random numbers ----------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: identical streams for identical
 * seeds on every platform. */
typedef struct { uint64_t s[4]; int has_spare; double spare; } sm_rng;
void     sm_rng_seed(sm_rng *r, uint64_t seed);
uint64_t sm_rng_next(sm_rng *r);
double   sm_rng_uniform(sm_rng *r);             /* [0, 1) with 53 random bits */
double   sm_rng_normal(sm_rng *r);              /* standard normal, Box-Muller */
uint64_t sm_rng_below(sm_rng *r, uint64_t n);   /* uniform in [0, n), unbiased; n > 0 */
void sm_tensor_uniform(sm_tensor *t, sm_rng *r, float lo, float hi);
void sm_tensor_normal(sm_tensor *t, sm_rng *r, float mean, float std);

/* ---- threads ------------------------------------------------------------ */
void sm_set_num_threads(int n);
int  sm_get_num_threads(void);

#endif
