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
#include <pthread.h>

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

/* C = alpha op(A) op(B) + beta C, row-major: the one place the library
 * calls sgemm. Large products are split along N (or M) across the OpenMP
 * threads, each slice a single-threaded OpenBLAS call: on the 2-vCPU
 * machines this targets that runs ~1.8x faster than one thread, while
 * OpenBLAS's own threading is no faster (pthread build) or far slower
 * (OpenMP build) than one thread. Inside a parallel region it runs on the
 * calling thread only. */
void sm_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* One plain single-threaded cblas_sgemm of contiguous C[M,N] = A[M,K] B[K,N]
 * (the benchmarks' reference). */
void sm_sgemm_plain(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C);

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
/* width and height as stored in the file; orientation is a JPEG's EXIF
 * Orientation (1..8, see sm_jpeg_exif_orientation), 1 for other formats. */
typedef struct { sm_image_format format; int width, height, channels; int orientation; } sm_image_info;

#define SM_IMAGE_DEFAULT_MAX_PIXELS ((uint64_t)64 * 1000 * 1000)
#define SM_IMAGE_MAX_SIDE 65535

sm_image_format sm_image_sniff(const uint8_t *buf, size_t len);
const char     *sm_image_format_name(sm_image_format f);
/* Reads only the header: format, size and the channel count decode will
 * produce. SM_EFORMAT for unknown or corrupt data, SM_ELIMIT when
 * width*height > max_pixels. Allocates nothing that outlives the call. */
sm_status sm_image_probe(sm_err *err, sm_image_info *info,
                         const uint8_t *buf, size_t len, uint64_t max_pixels);
/* Decoder choices. jpeg_js_compat: decode grayscale and YCbCr JPEGs to the
 * very pixels jpeg-js (face-api's decoder in Node) produces, for
 * conformance with its outputs: its integer IDCT, subsampled chroma
 * replicated instead of libjpeg's triangle-filtered ("fancy") upsampling,
 * and YCbCr -> RGB in floating point, truncated. libjpeg's default output
 * differs from it by up to ~30 levels at colour edges. */
/* apply_orientation: turn the pixels as info->orientation says (the
 * decoded image is then the upright one, width and height swapped for
 * 5..8); 0 leaves them as stored. */
typedef struct { int jpeg_js_compat; int apply_orientation; } sm_decode_opts;

/* The size decode produces: info's, swapped when opts applies an
 * orientation of 5..8. opts may be NULL. The pixel count is info's. */
void sm_image_decoded_size(const sm_image_info *info, const sm_decode_opts *opts, int *width, int *height);
/* Decodes into out->data (width*height*channels bytes; out's size must be
 * sm_image_decoded_size's, its channels info's). opts may be NULL
 * (defaults: all zero). SM_EFORMAT on corrupt or truncated data; out's
 * contents are then unspecified but nothing leaks. */
sm_status sm_image_decode(sm_err *err, sm_image *out, const sm_image_info *info,
                          const uint8_t *buf, size_t len, const sm_decode_opts *opts);

/* EXIF Orientation (TIFF tag 0x0112), how the stored pixels must be turned
 * to be upright: 1 as stored, 2 mirrored left-right, 3 rotated 180, 4
 * mirrored top-bottom, 5 transposed (mirrored about the main diagonal), 6
 * rotated 90 degrees clockwise, 7 transversed (mirrored about the
 * anti-diagonal), 8 rotated 90 degrees counter-clockwise (270 clockwise).
 * sm_jpeg_exif_orientation walks a JPEG's marker segments up to the first
 * scan and reads the first APP1 "Exif\0\0" segment; sm_exif_orientation
 * reads TIFF data (what follows "Exif\0\0"): byte order "II" or "MM", IFD0's
 * entry 0x0112 of type SHORT and count 1. Every offset is checked against
 * len; anything missing, malformed, truncated or out of range gives 1.
 * Neither allocates. */
int sm_jpeg_exif_orientation(const uint8_t *buf, size_t len);
int sm_exif_orientation(const uint8_t *tiff, size_t len);

/* Per-format header readers and decoders behind sm_image_probe/decode
 * (image_png.c, image_jpeg.c, image_pnm.c). probe fills info (without the
 * size limits, which sm_image_probe applies); decode writes out->data,
 * whose fields must equal what probe reported. */
sm_status sm_png_probe(sm_err *err, sm_image_info *info, const uint8_t *buf, size_t len);
sm_status sm_png_decode(sm_err *err, sm_image *out, const uint8_t *buf, size_t len);
sm_status sm_jpeg_probe(sm_err *err, sm_image_info *info, const uint8_t *buf, size_t len);
/* orientation 1..8 (1: as stored): out's size is the turned one. */
sm_status sm_jpeg_decode(sm_err *err, sm_image *out, const uint8_t *buf, size_t len,
                         int js_compat, int orientation);
/* jpeg-js's inverse DCT of one 8x8 block (jpeg_js_idct.c): coefficients and
 * quantisation table in natural (row-major) order, 8x8 samples written to
 * out with the given row stride. */
void sm_jpegjs_idct(uint8_t *out, ptrdiff_t stride, const int16_t coef[64], const uint16_t quant[64]);
sm_status sm_pnm_probe(sm_err *err, sm_image_info *info, const uint8_t *buf, size_t len);
sm_status sm_pnm_decode(sm_err *err, sm_image *out, const uint8_t *buf, size_t len);

/* Encoders: on SM_OK *out is a malloc'd buffer of *out_len bytes that the
 * caller frees; on failure *out is NULL. PNG keeps 1..4 channels (lossless);
 * JPEG writes gray or RGB (alpha dropped), quality 1..100; PNM writes P5
 * (want_channels 1) or P6 (3), or picks by the image when want_channels is
 * 0, converting as sm_pixels_convert does. */
#define SM_JPEG_DEFAULT_QUALITY 90
sm_status sm_png_encode(sm_err *err, uint8_t **out, size_t *out_len, const sm_image *img);
sm_status sm_jpeg_encode(sm_err *err, uint8_t **out, size_t *out_len, const sm_image *img, int quality);
sm_status sm_pnm_encode(sm_err *err, uint8_t **out, size_t *out_len, const sm_image *img, int want_channels);

/* Geometry and conversions (image_ops.c). Output images are allocated by
 * the caller with the size and channel count the operation produces. */

/* Converts n pixels from src_channels to dst_channels: gray from colour by
 * ITU-R 601 integer weights L = (299 R + 587 G + 114 B + 500) / 1000, gray
 * replicated into colour, alpha copied when both sides have it, set to 255
 * when only dst has it, dropped otherwise. dst and src must not overlap. */
void sm_pixels_convert(uint8_t *dst, int dst_channels, const uint8_t *src, int src_channels, size_t n);
/* out (any channel count) from in; sizes must match. */
void sm_image_convert(sm_image *out, const sm_image *in);

typedef enum {
    SM_RESIZE_AUTO = 0,  /* AREA when shrinking 2x or more on either axis, else BILINEAR */
    SM_RESIZE_BILINEAR,  /* half-pixel centres, clamped at the edges */
    SM_RESIZE_AREA,      /* exact box filter with fractional overlap */
    SM_RESIZE_NEAREST,   /* nearest centre: src = floor((dst + 0.5) * in / out) */
    SM_RESIZE_TF         /* TensorFlow 1 resize_bilinear: src = dst * in / out */
} sm_resize_method;
/* Resolves SM_RESIZE_AUTO for the given sizes; other methods pass through. */
sm_resize_method sm_resize_pick(sm_resize_method m, int64_t in_w, int64_t in_h,
                                int64_t out_w, int64_t out_h);
/* out's size is the target; channels must match. Rounds to nearest. */
void sm_image_resize(sm_image *out, const sm_image *in, sm_resize_method m);
/* in: float [C,H,W] or [N,C,H,W] (any strides); out: same leading dims
 * with the target H', W'. No rounding. */
sm_status sm_tensor_resize_check(sm_err *err, const sm_tensor *out, const sm_tensor *in);
void sm_tensor_resize(sm_tensor *out, const sm_tensor *in, sm_resize_method m);

/* The crops of n boxes of in as a batch of network inputs: box b =
 * boxes[4b .. 4b+3] = {x, y, w, h} (0-based top-left, size; pixels outside
 * in are 0) normalised to (pixel * scale - mean[c]) / std[c] as floats,
 * area-resized to out's S x S and written to out[b] ([C,S,S], or [C,x,y]
 * when transpose): the same values as sm_image_region, sm_image_to_tensor
 * and sm_tensor_resize (SM_RESIZE_AREA) in turn. Boxes with w or h < 1 are
 * skipped (their rows left as they are). Boxes in parallel. out:
 * [n, in->channels, S, S]. */
sm_status sm_image_area_crops_check(sm_err *err, const sm_tensor *out, const sm_image *in, int64_t n);
void sm_image_area_crops(sm_tensor *out, const sm_image *in, const int64_t *boxes, int64_t n, double scale,
                         const double mean[4], const double std[4], int transpose);

/* out(ox, oy) = in(ox + x, oy + y) where inside in, else fill[c]: crop
 * (x, y >= 0 usually, fill 0) and pad (x = -left, y = -top). */
void sm_image_region(sm_image *out, const sm_image *in, int64_t x, int64_t y, const uint8_t fill[4]);
/* out(ox, oy) = in(clamp(ox + x), clamp(oy + y)): the same window, with
 * positions outside in replicating the nearest edge pixel (pad mode "edge"). */
void sm_image_region_edge(sm_image *out, const sm_image *in, int64_t x, int64_t y);
/* Horizontal mirror: out(x, y) = in(width - 1 - x, y). */
void sm_image_flip(sm_image *out, const sm_image *in);

/* Affine maps as {a, b, c, d, e, f}: (x, y) -> (a x + b y + c, d x + e y + f).
 * SM_EINVAL when m is singular or not finite. */
sm_status sm_affine_invert(sm_err *err, double inv[6], const double m[6]);
/* out(x, y) = in sampled bilinearly at dst_to_src(x, y); taps outside in
 * read border[c]. Rounds to nearest. */
void sm_image_warp_affine(sm_image *out, const sm_image *in, const double dst_to_src[6],
                          const uint8_t border[4]);

/* Image <-> float tensor [C,H,W] (any strides):
 *   to:   t[c,y,x] = (pixel * scale - mean[c]) / std[c]
 *   from: pixel = round(clamp((t[c,y,x] * std[c] + mean[c]) / scale, 0, 255))
 * (NaN gives 0). The checks validate shapes and channel counts. */
/* face-api's toBatchTensor in one pass: the image at (left, top) inside a
 * zero square of side `side`, TF-1 bilinear resize to out's [C,S,S], then
 * (v * scale - mean[c]) / std[c]. out must be [in->channels, S, S]. */
void sm_image_square_tf(sm_tensor *out, const sm_image *in, int64_t left, int64_t top, int64_t side,
                        double scale, const double *mean, const double *std);
sm_status sm_image_to_tensor_check(sm_err *err, const sm_tensor *out, const sm_image *in);
void sm_image_to_tensor(sm_tensor *out, const sm_image *in, double scale,
                        const double mean[4], const double std[4]);
sm_status sm_image_from_tensor_check(sm_err *err, const sm_image *out, const sm_tensor *in);
void sm_image_from_tensor(sm_image *out, const sm_tensor *in, double scale,
                          const double mean[4], const double std[4]);

/* ---- random numbers ----------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: identical streams for identical
 * seeds on every platform. */
typedef struct { uint64_t s[4]; int has_spare; double spare; } sm_rng;
void     sm_rng_seed(sm_rng *r, uint64_t seed);
uint64_t sm_rng_next(sm_rng *r);
/* The next n raw outputs of sm_rng_next, faster in bulk. */
void sm_rng_fill(sm_rng *r, uint64_t *out, int64_t n);
double   sm_rng_uniform(sm_rng *r);             /* [0, 1) with 53 random bits */
double   sm_rng_normal(sm_rng *r);              /* standard normal, Box-Muller */
uint64_t sm_rng_below(sm_rng *r, uint64_t n);   /* uniform in [0, n), unbiased; n > 0 */
void sm_tensor_uniform(sm_tensor *t, sm_rng *r, float lo, float hi);
void sm_tensor_normal(sm_tensor *t, sm_rng *r, float mean, float std);

/* ---- SIMD code paths (cpu.c) ------------------------------------------- */
/* The widest code path the kernels take: the CPU's, lowered by the
 * environment variable SIAMESE_SIMD = avx512 | avx2 | portable (any other
 * value: portable). Read once, at the first call. */
enum { SM_SIMD_PORTABLE = 0, SM_SIMD_AVX2 = 1, SM_SIMD_AVX512 = 2 };
int sm_simd_level(void);
int sm_simd_cpu_level(void);          /* what the CPU runs, ignoring SIAMESE_SIMD */
const char *sm_simd_request(void);    /* SIAMESE_SIMD as set, or NULL */
const char *sm_simd_name(int level);  /* "avx512", "avx2", "portable" */
const char *sm_blas_core(void);       /* OpenBLAS's kernel: "Haswell", "SkylakeX", ... */

/* ---- threads ------------------------------------------------------------ */
/* Called once at load: OpenBLAS to one thread of its own (see threads.c). */
void sm_threads_init(void);
void sm_set_num_threads(int n);
int  sm_get_num_threads(void);
/* Wall-clock seconds from an arbitrary origin, for progress and benchmarks. */
double sm_monotonic_seconds(void);

/* x[i] = (float)((double)x[i] * scale + min) without fused multiply-add (the
 * tfjs uint8 dequantisation; x holds the integer codes). */
void sm_dequantize(float *x, int64_t n, double scale, double min);

/* ---- files -------------------------------------------------------------- */

/* Replaces path atomically with the concatenation of bufs[0..nbufs-1]
 * (lens[i] bytes each): writes a temporary file in the same directory,
 * fsyncs it, renames it over path and fsyncs the directory. On failure the
 * temporary is removed, path is left as it was, and SM_EIO is returned with
 * the path and the system's reason (SM_ENOMEM if memory ran out). */
sm_status sm_write_atomic(sm_err *err, const char *path, const void *const *bufs,
                          const size_t *lens, int nbufs);

/* A file's generation: changes whenever the file is replaced or rewritten
 * (device, inode, size, modification time to the nanosecond). */
typedef struct { uint64_t dev, ino, size; int64_t mtime_sec, mtime_nsec; } sm_file_stamp;
/* "dev:ino:size:sec.nsec" into buf (SM_FILE_STAMP_LEN bytes). */
#define SM_FILE_STAMP_LEN 96
const char *sm_file_stamp_str(char *buf, const sm_file_stamp *s);
/* Stamp of an open file / of a path (symlinks followed): 0, or -1 with errno. */
int sm_file_stamp_fd(sm_file_stamp *s, int fd);
int sm_file_stamp_path(sm_file_stamp *s, const char *path);

/* sm_write_atomic with options (o may be NULL: the defaults):
 *  - a symlinked path is written through: the temporary goes next to the
 *    link's final target and is renamed over it (the link stays);
 *  - an existing file keeps its mode and, when the system allows it, its
 *    owner and group; a new file gets new_mode (0 means 0666; the umask
 *    applies);
 *  - temporaries "<target>.tmp.<pid>.<k>" that a killed writer left (its
 *    pid is not alive) are removed first; others' files are never touched;
 *  - stamp (may be NULL) receives the generation of the file written. */
typedef struct { unsigned new_mode; sm_file_stamp *stamp; } sm_write_opts;
sm_status sm_write_atomic_ex(sm_err *err, const char *path, const void *const *bufs,
                             const size_t *lens, int nbufs, const sm_write_opts *o);

/* The file path finally names (filelock.c): symlinks followed, including a
 * dangling last one (its target is what a write creates), the directory
 * part made canonical. SM_OK with *out a malloc'd string, or SM_EIO
 * (naming path and the reason; errno is the reason) / SM_ENOMEM /
 * SM_EINVAL (empty path) with *out NULL. */
sm_status sm_path_target(sm_err *err, const char *path, char **out);

/* An exclusive advisory lock on lock_path (created 0600 when absent): an
 * open-file-description lock (fcntl F_OFD_SETLKW), so two opens conflict
 * even within one process, and the kernel drops it when the holder dies.
 * timeout < 0 waits as long as it takes (in the kernel), 0 tries once,
 * > 0 waits at most that many seconds (asleep until the lock file is
 * closed by someone, inotify, at most 100 ms between tries). SM_OK with
 * *fd (release with sm_lock_release),
 * SM_ELIMIT when the lock stayed busy, SM_EIO when the file cannot be
 * opened or locked. */
sm_status sm_lock_acquire(sm_err *err, int *fd, const char *lock_path, double timeout);
void sm_lock_release(int fd);

/* Child processes (process.c). sm_process_fork: *pid is the child's pid in
 * the parent and 0 in the child; the child has every descriptor >= 3 but
 * keep_fd (-1: none) closed, an empty signal mask, SIGPIPE/SIGTERM/SIGINT
 * at their defaults, and (Linux) SIGTERM when the parent dies. Fork only
 * while no OpenMP/OpenBLAS thread pool exists. Failures are SM_EIO (or
 * SM_ENOMEM) naming the call and the system's reason; SM_EINVAL for a
 * pid <= 0 (never a process group) or a negative fd. */
typedef struct { int exited, signaled, code; } sm_process_status; /* code: exit status or signal */
sm_status sm_process_fork(sm_err *err, int *pid, int keep_fd);
sm_status sm_process_socketpair(sm_err *err, int fds[2]);      /* AF_UNIX stream, close-on-exec */
sm_status sm_process_close(sm_err *err, int fd);
sm_status sm_process_kill(sm_err *err, int pid, int sig);
/* waitpid (EINTR retried); nohang: out->exited = 0 while it runs. */
sm_status sm_process_wait(sm_err *err, int pid, int nohang, sm_process_status *out);
/* Blocking whole-buffer I/O (EINTR retried); read_all stops early only at
 * end of file (*got < len). */
sm_status sm_process_write_all(sm_err *err, int fd, const void *buf, size_t len);
sm_status sm_process_read_all(sm_err *err, int fd, void *buf, size_t len, size_t *got);
/* posix_spawnp of argv (NULL-terminated; PATH searched, no shell); fds:
 * descriptors to become the child's stdin, stdout, stderr (-1: inherited);
 * envp: the child's environment ("NAME=value", NULL-terminated; NULL: the
 * parent's); new_group: the child leads a process group of its own (pgid =
 * its pid), so a terminal's Ctrl-C (SIGINT to the foreground group) does
 * not reach it. Allocates nothing the caller must free. */
sm_status sm_process_spawn(sm_err *err, int *pid, const char *const *argv, const int fds[3],
                           const char *const *envp, int new_group);
void sm_process_exit_now(int code); /* _exit: no atexit handlers, no stdio flush */
int sm_process_getpid(void);

/* ---- video frames from a pipe (video.c) ------------------------------------ */
/* Reads fixed-size raw frames (ffmpeg's `-f rawvideo` output) from a pipe.
 * Files: each read blocks for the next frame, straight into the caller's
 * pixels, and never drops one. Live: a thread of the reader (started by
 * sm_video_reader_start) drains the pipe as fast as the child writes, into
 * two frame buffers (the newest complete frame and the one being filled),
 * so the child never waits for a slow consumer and a read gets the newest
 * frame: it copies it out and counts the frames overwritten since the
 * previous read; it blocks only when no frame has completed since then.
 * The reader owns fd, log_fd (the child's stderr, whose last bytes it
 * keeps for messages) and the child pid: sm_video_reader_close stops the
 * thread, closes them and reaps the child. */
#define SM_VIDEO_LOG_LEN 1024
typedef struct {
    int fd, log_fd;          /* non-blocking read ends (-1: closed / none) */
    int pid;                 /* the child to reap on close (0: none) */
    int width, height;
    int live, timeout_ms;    /* timeout_ms: per read, -1 waits forever */
    size_t frame_bytes;
    int eof;                 /* no more frames to deliver (the consumer's flag) */
    /* files: the frame in progress (the consumer's) */
    size_t have;             /* bytes of the frame in progress */
    /* live: shared with the thread under lock, except where marked */
    uint8_t *buf[2];         /* the two frame buffers (the workspace) */
    int cur;                 /* the buffer being filled (the thread's) */
    int ready;               /* buf[cur ^ 1] holds a frame not yet delivered */
    int64_t dropped;         /* frames overwritten since the last delivery */
    int done;                /* the thread ended: end of file or an error */
    sm_status done_status;   /* SM_OK at a clean end, else done_err says why */
    sm_err done_err;
    int started;             /* the thread runs (until close joins it) */
    int wake[2];             /* a pipe whose write end wakes the thread to stop */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;  /* a frame completed or the thread ended */
    /* both */
    int64_t frames;          /* complete frames received so far */
    char log[SM_VIDEO_LOG_LEN + 1]; /* the last bytes of the child's stderr, NUL-terminated */
    size_t log_len;
} sm_video_reader;

/* A pipe to or from a child: fds[0] the read end, fds[1] the write end,
 * both close-on-exec (posix_spawn's dup2 clears it on the child's copy);
 * our end, fds[ours] (0: a child's output we read, 1: a child's input we
 * write), is non-blocking, the child's blocks. SM_EIO naming the reason. */
sm_status sm_video_pipe(sm_err *err, int fds[2], int ours);
/* SM_EINVAL unless 1 <= width, height <= SM_IMAGE_MAX_SIDE, fd is an open
 * non-blocking descriptor and log_fd is -1 or one; SM_ELIMIT when two
 * frames of width x height x 3 bytes exceed 2^31 bytes. Never allocates. */
sm_status sm_video_reader_check(sm_err *err, int fd, int log_fd, int width, int height, int live);
/* Bytes of workspace the reader needs (live: two frames; files: none). */
size_t sm_video_reader_workspace_size(int width, int height, int live);
/* Takes ownership of fd and log_fd (after a successful check). Live: the
 * pipe is enlarged to hold a few frames when the system allows it. */
void sm_video_reader_init(sm_video_reader *r, int fd, int log_fd, int width, int height, int live,
                          int timeout_ms, uint8_t *workspace);
/* Live readers: starts the draining thread (all signals blocked in it, so
 * Ctrl-C and SIGCHLD stay with the caller's thread). SM_ENOMEM / SM_EIO
 * when it cannot be started; the reader still owns its descriptors and
 * sm_video_reader_close must be called. Nothing to do for files. */
sm_status sm_video_reader_start(sm_err *err, sm_video_reader *r);
/* Reads the next frame (files) or the newest complete one (live) into dst
 * (frame_bytes bytes, rgb24). *got 1: a frame, *index its number (1-based),
 * *dropped the frames skipped before it (always 0 for files); *got 0: the
 * stream ended cleanly. SM_EFORMAT when it ends in the middle of a frame,
 * SM_EIO on a read error or when no frame came within timeout_ms; after
 * an end or an error every later read ends again (*got 0). */
sm_status sm_video_read(sm_err *err, uint8_t *dst, int *got, int64_t *index, int64_t *dropped,
                        sm_video_reader *r);
/* Copies the last bytes of the child's stderr (NUL-terminated, at most
 * SM_VIDEO_LOG_LEN + 1 bytes into out); returns their length. */
size_t sm_video_reader_log(char *out, sm_video_reader *r);
/* Complete frames received so far. */
int64_t sm_video_reader_frames(sm_video_reader *r);
/* Stops the thread (live), closes the descriptors (the frame pipe first, so
 * a child blocked on it gets EPIPE) and reaps the child: after wait_ms for
 * it to exit on its own (0 when closing early), SIGTERM; after term_ms
 * more, SIGKILL and a blocking wait. *by_itself 1 when it exited before any
 * signal, with its status in *st. The rest of the child's stderr is kept
 * in r->log. Idempotent; *by_itself 0 and *st zeroed when there was no
 * child. */
void sm_video_reader_close(sm_process_status *st, int *by_itself, sm_video_reader *r, int wait_ms, int term_ms);
/* Reads fd (non-blocking, e.g. sm_video_pipe's) to end of file into buf
 * (cap bytes): SM_ELIMIT past cap, SM_EIO on an error or after timeout_ms
 * (-1: forever). For a child's short output (ffprobe's JSON). */
sm_status sm_video_read_all(sm_err *err, size_t *got, char *buf, size_t cap, int fd, int timeout_ms);

/* ---- video frames to a pipe (video.c) -------------------------------------- */
/* Writes raw rgb24 frames to a child's stdin (ffmpeg's `-f rawvideo -i
 * pipe:0`). The write end is non-blocking; a write waits with poll() on it
 * and on the child's stderr together (draining that into log, so a child
 * that writes much to stderr never blocks on it while we wait). SIGPIPE is
 * blocked around each write() (and a pending one it raised consumed), so a
 * dead child gives EPIPE, never a signal. The writer owns fd, log_fd and
 * the child pid: sm_video_writer_close closes them and reaps the child. */
typedef struct {
    int fd, log_fd;          /* the child's stdin (write end), its stderr (read end); -1: closed / none */
    int pid;                 /* the child to reap on close (0: none) */
    int width, height;
    int timeout_ms;          /* how long one write may wait for the child (-1: forever) */
    size_t frame_bytes;
    int64_t frames;          /* complete frames written */
    int broken;              /* a write failed: the pipe is closed, later writes fail */
    char log[SM_VIDEO_LOG_LEN + 1]; /* the last bytes of the child's stderr, NUL-terminated */
    size_t log_len;
} sm_video_writer;

/* SM_EINVAL unless 1 <= width, height <= SM_IMAGE_MAX_SIDE, fd is an open
 * descriptor and log_fd is -1 or an open non-blocking one; SM_ELIMIT when a
 * frame exceeds 2^31 bytes. Never allocates. */
sm_status sm_video_writer_check(sm_err *err, int fd, int log_fd, int width, int height);
/* Takes ownership of fd (made non-blocking; its pipe enlarged to hold a
 * frame or 1 MiB when the system allows) and log_fd. */
void sm_video_writer_init(sm_video_writer *w, int fd, int log_fd, int width, int height, int timeout_ms);
/* Writes one frame (frame_bytes bytes of rgb24) whole. SM_EIO when the
 * child stopped reading (it died: EPIPE), on a write error or when no byte
 * could be written for timeout_ms; the pipe is then closed and every later
 * write fails the same way (the child is still to be reaped by close). */
sm_status sm_video_write(sm_err *err, sm_video_writer *w, const uint8_t *frame);
/* Closes the pipe (the child sees the end of its input and finishes) and
 * reaps the child: it gets wait_ms to exit by itself (stderr drained
 * meanwhile), then SIGKILL and a blocking wait. *by_itself 1 when it
 * exited before the signal, with its status in *st. The rest of the
 * child's stderr is kept in w->log. Idempotent; *by_itself 0 and *st
 * zeroed when there was no child. */
void sm_video_writer_close(sm_process_status *st, int *by_itself, sm_video_writer *w, int wait_ms);
/* Creates an empty file "<path>.tmp.<pid>.<k><suffix>" (O_EXCL: never an
 * existing one; k counts up on a clash) and puts its name in out (cap
 * bytes). SM_EIO naming path and the reason; SM_EINVAL when the name does
 * not fit in cap. */
sm_status sm_video_create_temp(sm_err *err, char *out, size_t cap, const char *path, const char *suffix);
/* Makes a finished temporary the file path: fsyncs it, renames it over
 * path (overwrite 0: fails with SM_EIO if path exists, atomically where the
 * file system allows), fsyncs the directory. SM_EIO naming path and the
 * reason; the temporary is left for the caller to remove on failure. */
sm_status sm_video_commit(sm_err *err, const char *tmp, const char *path, int overwrite);

/* Element types of serialized tensors (safetensors names), all stored
 * little-endian; dtype.c converts them to and from float32. */
typedef enum {
    SM_DTYPE_F32, SM_DTYPE_F16, SM_DTYPE_BF16, SM_DTYPE_F64,
    SM_DTYPE_I64, SM_DTYPE_I32, SM_DTYPE_I16, SM_DTYPE_I8,
    SM_DTYPE_U8, SM_DTYPE_BOOL
} sm_dtype;

/* "F32" -> SM_DTYPE_F32 ...; SM_EFORMAT for an unknown name. */
sm_status   sm_dtype_parse(sm_err *err, sm_dtype *out, const char *name);
const char *sm_dtype_name(sm_dtype dt);
size_t      sm_dtype_size(sm_dtype dt); /* bytes per element */

float sm_f16_to_f32(uint16_t h);   /* IEEE binary16: exact, incl. subnormals, inf, NaN */
float sm_bf16_to_f32(uint16_t b);  /* bfloat16: the top half of a float32 */
/* out[i] = src element i (n elements of dt, little-endian, any alignment)
 * as float32; BOOL is 1 for any non-zero byte; wide integers round. */
void sm_decode_le(float *out, const uint8_t *src, int64_t n, sm_dtype dt);
/* Writes t's elements (any strides) in row-major order as little-endian
 * float32: 4 * numel bytes. */
void sm_encode_f32_le(uint8_t *out, const sm_tensor *t);

/* ---- samplers ------------------------------------------------------------ */
/* Index sampling for training (sampler.c). Images are 0..n-1, each with a
 * non-negative identity label; every sampler draws from an explicit sm_rng,
 * so a seed gives the same indices on every run. Scratch memory is owned by
 * the caller; nothing here allocates. */

/* Images grouped by identity: group g holds members[starts[g] ..
 * starts[g+1]-1] (ascending image indices); group_of[i] is image i's group.
 * Groups are ordered by label. */
typedef struct {
    int64_t n, count;
    const int64_t *members, *starts, *group_of;
} sm_groups;

/* int64 elements of work that sm_groups_build needs: 3n + 1. */
int64_t sm_groups_work_len(int64_t n);
/* SM_EINVAL when a label is negative. */
sm_status sm_labels_check(sm_err *err, const int32_t *labels, int64_t n);
/* Groups n images by label, using work (sm_groups_work_len(n) int64s). */
void sm_groups_build(sm_groups *g, int64_t *work, const int32_t *labels, int64_t n);
/* Number of groups with at least min_size members. */
int64_t sm_groups_count_min(const sm_groups *g, int64_t min_size);

/* out[0..n-1] = a uniform random permutation of 0..n-1 (Fisher-Yates). */
void sm_permutation(int64_t *out, int64_t n, sm_rng *r);

/* Balanced pairs: for every image i one positive pair (i, j), j another
 * image of i's identity, same = 1 (skipped when the identity has one image),
 * and one negative pair (i, k), k of another identity, same = 0; the pairs
 * are returned in a shuffled order. Needs at least two identities. */
sm_status sm_balanced_pairs_check(sm_err *err, const sm_groups *g);
int64_t   sm_balanced_pairs_count(const sm_groups *g);
void sm_balanced_pairs(int64_t *left, int64_t *right, uint8_t *same, const sm_groups *g, sm_rng *r);

/* P x K batches: the identities with at least 2 images, in a shuffled
 * order, cut into batches of P distinct identities; a last incomplete batch
 * is completed with identities from the start of the order, so every
 * eligible identity appears once per epoch. Each identity contributes K
 * images: drawn without replacement when it has K or more, otherwise all
 * of them plus draws with replacement. out is batches * P * K indices,
 * identity by identity; work holds sm_groups_count_min(g, 2) int64s.
 * Needs P >= 2, K >= 2 and at least P eligible identities. */
sm_status sm_pk_check(sm_err *err, const sm_groups *g, int64_t P, int64_t K);
int64_t   sm_pk_batch_count(const sm_groups *g, int64_t P);
void sm_pk_batches(int64_t *out, int64_t *work, const sm_groups *g, int64_t P, int64_t K, sm_rng *r);

/* Random triplets: an identity drawn uniformly among those with >= 2
 * images, anchor and positive two distinct images of it, negative an image
 * of any other identity. work holds sm_groups_count_min(g, 2) int64s.
 * Needs one identity with >= 2 images and at least two identities. */
sm_status sm_triplets_check(sm_err *err, const sm_groups *g);
void sm_random_triplets(int64_t *anchor, int64_t *positive, int64_t *negative, int64_t n,
                        int64_t *work, const sm_groups *g, sm_rng *r);

/* Batch assembly from same-size 8-bit images into out [N,C,H,W]
 * (contiguous), with optional augmentation drawn from r per image, in this
 * order: flip (probability), shift (dx, dy uniform in -shift..shift; pixels
 * shifted in are 0), brightness factor b = 1 + U(-brightness, brightness),
 * contrast factor c = 1 + U(-contrast, contrast) around the image's mean
 * pixel m:  p' = clamp(((p - m) c + m) b, 0, 255), then
 *   out[n,c,y,x] = (p' * scale - mean[c]) / std[c]. */
typedef struct {
    double scale, mean[4], std[4];
    double flip, brightness, contrast;
    int shift;
} sm_batch_params;
sm_status sm_batch_check(sm_err *err, const sm_tensor *out, const sm_image *const *images,
                         int64_t n, const sm_batch_params *p);
void sm_batch_assemble(sm_tensor *out, const sm_image *const *images, int64_t n,
                       const sm_batch_params *p, sm_rng *r);

#endif
