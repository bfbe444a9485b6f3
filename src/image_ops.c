/*
 * image_ops.c — geometry and conversions on 8-bit images (and the same
 * resampling on float tensors).
 *
 * Images are width x height x channels bytes, interleaved, row by row.
 * Pixel (x, y) has its centre at (x, y); pixel x covers [x - 0.5, x + 0.5),
 * i.e. [x, x + 1) in the "edge" coordinates used by the area filter.
 *
 * Resampling (one axis; the 2-D result is the separable product):
 *   bilinear  src = (dst + 0.5) * in / out - 0.5, clamped to [0, in - 1];
 *             i0 = floor(src), i1 = min(i0 + 1, in - 1), w = src - i0,
 *             v = (1 - w) p[i0] + w p[i1]                (OpenCV INTER_LINEAR)
 *   tf        the same with src = dst * in / out (TensorFlow 1
 *             resize_bilinear, align_corners = false, no half-pixel offset)
 *   nearest   i = min(floor((dst + 0.5) * in / out), in - 1)
 *   area      output pixel dst covers [dst * in / out, (dst + 1) * in / out)
 *             in edge coordinates; v = sum over source pixels of
 *             overlap * p / sum of overlaps (exact box filter)
 *   auto      area when in >= 2 out on either axis, else bilinear
 * 8-bit results are rounded to nearest and clamped to 0..255; float
 * results are not rounded.
 *
 * Affine warp: out(x, y) = bilinear sample of in at A(x, y), where A maps
 * destination to source; taps outside the image read a border value
 * (OpenCV BORDER_CONSTANT).
 *
 * Gray from colour: L = (299 R + 587 G + 114 B + 500) / 1000 (integer
 * ITU-R 601 luma, as PIL's convert("L")).
 */
#include <math.h>
#include <omp.h>
#include <string.h>
#include "sm.h"

/* ---- channel conversion --------------------------------------------------------- */

static uint8_t luma601(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((r * 299u + g * 587u + b * 114u + 500u) / 1000u);
}

static int has_alpha(int channels)
{
    return channels == 2 || channels == 4;
}

void sm_pixels_convert(uint8_t *dst, int dst_channels, const uint8_t *src, int src_channels, size_t n)
{
    if (dst_channels == src_channels) {
        memcpy(dst, src, n * (size_t)src_channels);
        return;
    }
    int src_colour = src_channels >= 3, dst_colour = dst_channels >= 3;
    for (size_t i = 0; i < n; i++, dst += dst_channels, src += src_channels) {
        if (dst_colour) {
            dst[0] = src[0];
            dst[1] = src[src_colour ? 1 : 0];
            dst[2] = src[src_colour ? 2 : 0];
        } else {
            dst[0] = src_colour ? luma601(src[0], src[1], src[2]) : src[0];
        }
        if (has_alpha(dst_channels))
            dst[dst_channels - 1] = has_alpha(src_channels) ? src[src_channels - 1] : 255;
    }
}

void sm_image_convert(sm_image *out, const sm_image *in)
{
    sm_pixels_convert(out->data, out->channels, in->data, in->channels,
                      (size_t)in->width * (size_t)in->height);
}

/* ---- resampling taps -------------------------------------------------------------- */

sm_resize_method sm_resize_pick(sm_resize_method m, int64_t in_w, int64_t in_h,
                                int64_t out_w, int64_t out_h)
{
    if (m != SM_RESIZE_AUTO)
        return m;
    if (in_w >= 2 * out_w || in_h >= 2 * out_h)
        return SM_RESIZE_AREA;
    return SM_RESIZE_BILINEAR;
}

/* Two source indices and the weight of the second: v = (1 - w) p[i0] + w p[i1]. */
typedef struct { int64_t i0, i1; double w; } taps2;

static taps2 linear_taps(sm_resize_method m, int64_t dst, int64_t in, int64_t out)
{
    taps2 t;
    double src;
    if (m == SM_RESIZE_NEAREST) {
        t.i0 = (int64_t)floor(((double)dst + 0.5) * (double)in / (double)out);
        if (t.i0 > in - 1) t.i0 = in - 1;
        t.i1 = t.i0;
        t.w = 0;
        return t;
    }
    if (m == SM_RESIZE_TF) {
        src = (double)dst * (double)in / (double)out;       /* in [0, in) */
    } else {
        src = ((double)dst + 0.5) * (double)in / (double)out - 0.5;
        if (src < 0) src = 0;
        if (src > (double)(in - 1)) src = (double)(in - 1);
    }
    t.i0 = (int64_t)floor(src);
    t.i1 = t.i0 + 1 < in ? t.i0 + 1 : in - 1;
    t.w = src - (double)t.i0;
    return t;
}

/* The source span of output pixel dst for the area filter: [lo, hi) in edge
 * coordinates, and the source pixels it touches: first .. end - 1. */
typedef struct { double lo, hi; int64_t first, end; } span;

static span area_span(int64_t dst, int64_t in, int64_t out)
{
    span s;
    s.lo = (double)dst * (double)in / (double)out;
    s.hi = (double)(dst + 1) * (double)in / (double)out;
    s.first = (int64_t)floor(s.lo);
    s.end = (int64_t)ceil(s.hi);
    if (s.end > in) s.end = in;
    if (s.end <= s.first) s.end = s.first + 1;
    return s;
}

/* Length of [i, i + 1) ∩ [lo, hi). */
static double overlap(int64_t i, const span *s)
{
    double a = (double)i > s->lo ? (double)i : s->lo;
    double b = (double)(i + 1) < s->hi ? (double)(i + 1) : s->hi;
    return b > a ? b - a : 0;
}

static uint8_t round_u8(double v)
{
    if (!(v > 0)) return 0;     /* also NaN */
    if (v >= 255) return 255;
    return (uint8_t)(v + 0.5);
}

/* ---- 8-bit images ----------------------------------------------------------------- */

static void resize_u8_linear(sm_image *out, const sm_image *in, sm_resize_method m)
{
    int c = in->channels;
    size_t in_stride = (size_t)in->width * (size_t)c;
    uint8_t *o = out->data;
    for (int y = 0; y < out->height; y++) {
        taps2 ty = linear_taps(m, y, in->height, out->height);
        const uint8_t *r0 = in->data + (size_t)ty.i0 * in_stride;
        const uint8_t *r1 = in->data + (size_t)ty.i1 * in_stride;
        for (int x = 0; x < out->width; x++) {
            taps2 tx = linear_taps(m, x, in->width, out->width);
            size_t a = (size_t)tx.i0 * (size_t)c, b = (size_t)tx.i1 * (size_t)c;
            for (int k = 0; k < c; k++) {
                double top = (1 - tx.w) * r0[a + k] + tx.w * r0[b + k];
                double bottom = (1 - tx.w) * r1[a + k] + tx.w * r1[b + k];
                *o++ = round_u8((1 - ty.w) * top + ty.w * bottom);
            }
        }
    }
}

/* The area filter's column taps, made once per chunk of output columns
 * (on the stack: no allocation) instead of once per output pixel: column
 * x0 + j reads source pixels first[j] .. end[j] - 1 with the weights
 * w[at[j] ..], each overlap(ix, &sx) exactly as the per-pixel loop
 * computes it, so the sums are the same to the bit. A column whose taps
 * would not fit alone (a shrink by more than AREA_TAPS) gets at[j] = -1
 * and its weights are computed as it is summed. */
#define AREA_COLS 256
#define AREA_TAPS 2048
#define AREA_ROWS 64    /* row weights of one output row kept when its span is this short */

typedef struct {
    int64_t x0, x1;                 /* the chunk: output columns [x0, x1) */
    span sx[AREA_COLS];
    int64_t at[AREA_COLS];
    double w[AREA_TAPS];
} area_cols;

static void area_cols_fill(area_cols *t, int64_t x0, int64_t in, int64_t out)
{
    int64_t used = 0, x = x0;
    t->x0 = x0;
    for (; x < out && x - x0 < AREA_COLS; x++) {
        span sx = area_span(x, in, out);
        int64_t n = sx.end - sx.first;
        if (n > AREA_TAPS) {
            t->at[x - x0] = -1;
        } else {
            if (used + n > AREA_TAPS) break;
            t->at[x - x0] = used;
            for (int64_t ix = sx.first; ix < sx.end; ix++) t->w[used++] = overlap(ix, &sx);
        }
        t->sx[x - x0] = sx;
    }
    t->x1 = x;
}

/* The weights of output row y's source rows, when its span is short. */
static int area_rows_fill(double *wy, const span *sy)
{
    if (sy->end - sy->first > AREA_ROWS) return 0;
    for (int64_t iy = sy->first; iy < sy->end; iy++) wy[iy - sy->first] = overlap(iy, sy);
    return 1;
}

/* Output rows [y0, y1) of the 8-bit area resize. */
static void resize_u8_area_rows(sm_image *out, const sm_image *in, int64_t y0, int64_t y1)
{
    int c = in->channels;
    size_t in_stride = (size_t)in->width * (size_t)c;
    area_cols t;
    double wys[AREA_ROWS];
    for (int64_t x0 = 0; x0 < out->width; x0 = t.x1) {
        area_cols_fill(&t, x0, in->width, out->width);
        for (int64_t y = y0; y < y1; y++) {
            span sy = area_span(y, in->height, out->height);
            int rows_kept = area_rows_fill(wys, &sy);
            uint8_t *o = out->data + ((size_t)y * (size_t)out->width + (size_t)x0) * (size_t)c;
            for (int64_t x = x0; x < t.x1; x++) {
                const span *sx = &t.sx[x - x0];
                const double *wx = t.at[x - x0] >= 0 ? t.w + t.at[x - x0] : NULL;
                double acc[4] = { 0, 0, 0, 0 }, total = 0;
                for (int64_t iy = sy.first; iy < sy.end; iy++) {
                    double wy = rows_kept ? wys[iy - sy.first] : overlap(iy, &sy);
                    const uint8_t *row = in->data + (size_t)iy * in_stride;
                    if (wx && c == 3) {
                        for (int64_t ix = sx->first; ix < sx->end; ix++) {
                            double w = wy * wx[ix - sx->first];
                            const uint8_t *p = row + (size_t)ix * 3;
                            acc[0] += w * p[0];
                            acc[1] += w * p[1];
                            acc[2] += w * p[2];
                            total += w;
                        }
                        continue;
                    }
                    for (int64_t ix = sx->first; ix < sx->end; ix++) {
                        double w = wy * (wx ? wx[ix - sx->first] : overlap(ix, sx));
                        const uint8_t *p = row + (size_t)ix * (size_t)c;
                        for (int k = 0; k < c; k++)
                            acc[k] += w * p[k];
                        total += w;
                    }
                }
                for (int k = 0; k < c; k++)
                    *o++ = round_u8(acc[k] / total);
            }
        }
    }
}

/* Source pixels read above which the area resize splits its output rows
 * over the threads. */
#define AREA_PARALLEL_PIXELS ((int64_t)1 << 18)

static void resize_u8_area(sm_image *out, const sm_image *in)
{
    int64_t H = out->height;
    #pragma omp parallel if ((int64_t)in->width * in->height > AREA_PARALLEL_PIXELS && H > 1)
    {
        int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
        resize_u8_area_rows(out, in, H * id / nt, H * (id + 1) / nt);
    }
}

void sm_image_resize(sm_image *out, const sm_image *in, sm_resize_method m)
{
    m = sm_resize_pick(m, in->width, in->height, out->width, out->height);
    if (m == SM_RESIZE_AREA)
        resize_u8_area(out, in);
    else
        resize_u8_linear(out, in, m);
}

/* ---- float planes (tensors) ------------------------------------------------------ */

typedef struct {
    float *data;
    int64_t h, w, sy, sx;   /* size and strides in elements */
} plane;

static void resize_plane_linear(plane *out, const plane *in, sm_resize_method m)
{
    for (int64_t y = 0; y < out->h; y++) {
        taps2 ty = linear_taps(m, y, in->h, out->h);
        const float *r0 = in->data + ty.i0 * in->sy, *r1 = in->data + ty.i1 * in->sy;
        float *o = out->data + y * out->sy;
        for (int64_t x = 0; x < out->w; x++) {
            taps2 tx = linear_taps(m, x, in->w, out->w);
            int64_t a = tx.i0 * in->sx, b = tx.i1 * in->sx;
            double top = (1 - tx.w) * r0[a] + tx.w * r0[b];
            double bottom = (1 - tx.w) * r1[a] + tx.w * r1[b];
            o[x * out->sx] = (float)((1 - ty.w) * top + ty.w * bottom);
        }
    }
}

/* Output rows [y0, y1) of the float area resize (the column taps as for
 * 8-bit images). */
static void resize_plane_area_rows(plane *out, const plane *in, int64_t y0, int64_t y1)
{
    area_cols t;
    double wys[AREA_ROWS];
    for (int64_t x0 = 0; x0 < out->w; x0 = t.x1) {
        area_cols_fill(&t, x0, in->w, out->w);
        for (int64_t y = y0; y < y1; y++) {
            span sy = area_span(y, in->h, out->h);
            int rows_kept = area_rows_fill(wys, &sy);
            float *o = out->data + y * out->sy;
            for (int64_t x = x0; x < t.x1; x++) {
                const span *sx = &t.sx[x - x0];
                const double *wx = t.at[x - x0] >= 0 ? t.w + t.at[x - x0] : NULL;
                double acc = 0, total = 0;
                for (int64_t iy = sy.first; iy < sy.end; iy++) {
                    double wy = rows_kept ? wys[iy - sy.first] : overlap(iy, &sy);
                    const float *row = in->data + iy * in->sy;
                    for (int64_t ix = sx->first; ix < sx->end; ix++) {
                        double w = wy * (wx ? wx[ix - sx->first] : overlap(ix, sx));
                        acc += w * row[ix * in->sx];
                        total += w;
                    }
                }
                o[x * out->sx] = (float)(acc / total);
            }
        }
    }
}

static void resize_plane_area(plane *out, const plane *in)
{
    int64_t H = out->h;
    #pragma omp parallel if (in->w * in->h > AREA_PARALLEL_PIXELS && H > 1)
    {
        int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
        resize_plane_area_rows(out, in, H * id / nt, H * (id + 1) / nt);
    }
}

/* ---- crops as network inputs (MTCNN's R-Net and O-Net batches) ------------------ */

sm_status sm_image_area_crops_check(sm_err *err, const sm_tensor *out, const sm_image *in, int64_t n)
{
    char s[SM_SHAPE_STR_LEN];
    if (out->ndim != 4 || out->shape[0] != n || out->shape[1] != in->channels || out->shape[2] < 1
        || out->shape[2] != out->shape[3])
        return sm_fail(err, SM_EINVAL, "output must be [%lld,%d,S,S] for %lld boxes of a %d-channel image, got %s",
                       (long long)n, in->channels, (long long)n, in->channels,
                       sm_shape_str(s, sizeof s, out->ndim, out->shape));
    return SM_OK;
}

/* One box: the area resize of plane k of the normalised crop, all channels
 * in one pass (the sum of weights is the same sequence of additions for
 * every plane, so one total serves them all). */
static void area_crop(float *o, const int64_t st[4], const sm_image *in, const int64_t box[4],
                      const float (*lut)[256])
{
    int c = in->channels;
    int64_t bx = box[0], by = box[1], w = box[2], h = box[3], S = st[3];
    size_t in_stride = (size_t)in->width * (size_t)c;
    area_cols t;
    double wys[AREA_ROWS];
    float zero[4];
    for (int k = 0; k < c; k++) zero[k] = lut[k][0];
    for (int64_t x0 = 0; x0 < S; x0 = t.x1) {
        area_cols_fill(&t, x0, w, S);
        for (int64_t y = 0; y < S; y++) {
            span sy = area_span(y, h, S);
            int rows_kept = area_rows_fill(wys, &sy);
            for (int64_t x = x0; x < t.x1; x++) {
                const span *sx = &t.sx[x - x0];
                const double *wx = t.at[x - x0] >= 0 ? t.w + t.at[x - x0] : NULL;
                double acc[4] = { 0, 0, 0, 0 }, total = 0;
                for (int64_t iy = sy.first; iy < sy.end; iy++) {
                    double wy = rows_kept ? wys[iy - sy.first] : overlap(iy, &sy);
                    int64_t yy = by + iy;
                    int row_in = yy >= 0 && yy < in->height;
                    const uint8_t *row = row_in ? in->data + (size_t)yy * in_stride : NULL;
                    for (int64_t ix = sx->first; ix < sx->end; ix++) {
                        double wgt = wy * (wx ? wx[ix - sx->first] : overlap(ix, sx));
                        int64_t xx = bx + ix;
                        if (row_in && xx >= 0 && xx < in->width) {
                            const uint8_t *p = row + (size_t)xx * (size_t)c;
                            for (int k = 0; k < c; k++) acc[k] += wgt * lut[k][p[k]];
                        } else {
                            for (int k = 0; k < c; k++) acc[k] += wgt * zero[k];
                        }
                        total += wgt;
                    }
                }
                for (int k = 0; k < c; k++) o[k * st[0] + y * st[1] + x * st[2]] = (float)(acc[k] / total);
            }
        }
    }
}

void sm_image_area_crops(sm_tensor *out, const sm_image *in, const int64_t *boxes, int64_t n, double scale,
                         const double mean[4], const double std[4], int transpose)
{
    float lut[4][256];
    int c = in->channels;
    for (int k = 0; k < c; k++)
        for (int v = 0; v < 256; v++) lut[k][v] = (float)(((double)v * scale - mean[k]) / std[k]);
    /* strides of plane, output row y and output column x (and the side) */
    int64_t st[4] = { out->stride[1], transpose ? out->stride[3] : out->stride[2],
                      transpose ? out->stride[2] : out->stride[3], out->shape[2] };
    int64_t work = 0;
    for (int64_t b = 0; b < n; b++) work += boxes[4 * b + 2] * boxes[4 * b + 3];
    #pragma omp parallel for schedule(dynamic, 1) if (n > 1 && work > AREA_PARALLEL_PIXELS)
    for (int64_t b = 0; b < n; b++) {
        const int64_t *box = boxes + 4 * b;
        if (box[2] < 1 || box[3] < 1) continue;
        area_crop(out->data + b * out->stride[0], st, in, box, (const float (*)[256])lut);
    }
}

sm_status sm_tensor_resize_check(sm_err *err, const sm_tensor *out, const sm_tensor *in)
{
    char a[SM_SHAPE_STR_LEN], b[SM_SHAPE_STR_LEN];
    if (in->ndim != 3 && in->ndim != 4)
        return sm_fail(err, SM_EINVAL, "expected a [C,H,W] or [N,C,H,W] tensor, got %s",
                       sm_shape_str(a, sizeof a, in->ndim, in->shape));
    int d = in->ndim;
    if (in->shape[d - 1] < 1 || in->shape[d - 2] < 1)
        return sm_fail(err, SM_EINVAL, "cannot resize an empty image plane (shape %s)",
                       sm_shape_str(a, sizeof a, in->ndim, in->shape));
    int leading_ok = out->ndim == d;
    for (int i = 0; leading_ok && i < d - 2; i++)
        leading_ok = out->shape[i] == in->shape[i];
    if (!leading_ok || out->shape[d - 1] < 1 || out->shape[d - 2] < 1)
        return sm_fail(err, SM_EINVAL, "cannot resize %s into %s",
                       sm_shape_str(a, sizeof a, in->ndim, in->shape),
                       sm_shape_str(b, sizeof b, out->ndim, out->shape));
    return SM_OK;
}

void sm_tensor_resize(sm_tensor *out, const sm_tensor *in, sm_resize_method m)
{
    int d = in->ndim;
    int64_t n = d == 4 ? in->shape[0] : 1, c = in->shape[d - 3];
    m = sm_resize_pick(m, in->shape[d - 1], in->shape[d - 2], out->shape[d - 1], out->shape[d - 2]);
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < c; k++) {
            int64_t in_off = k * in->stride[d - 3] + (d == 4 ? i * in->stride[0] : 0);
            int64_t out_off = k * out->stride[d - 3] + (d == 4 ? i * out->stride[0] : 0);
            plane src = { in->data + in_off, in->shape[d - 2], in->shape[d - 1],
                          in->stride[d - 2], in->stride[d - 1] };
            plane dst = { out->data + out_off, out->shape[d - 2], out->shape[d - 1],
                          out->stride[d - 2], out->stride[d - 1] };
            if (m == SM_RESIZE_AREA)
                resize_plane_area(&dst, &src);
            else
                resize_plane_linear(&dst, &src, m);
        }
    }
}

/* ---- crop, pad, flip ----------------------------------------------------------------- */

static void fill_pixels(uint8_t *dst, int channels, const uint8_t fill[4], int64_t n)
{
    for (int64_t i = 0; i < n; i++, dst += channels)
        memcpy(dst, fill, (size_t)channels);
}

void sm_image_region(sm_image *out, const sm_image *in, int64_t x, int64_t y, const uint8_t fill[4])
{
    int c = out->channels;
    size_t out_stride = (size_t)out->width * (size_t)c, in_stride = (size_t)in->width * (size_t)c;
    /* Output columns [left, right) come from the image, the rest are fill. */
    int64_t left = x < 0 ? -x : 0;
    int64_t right = (int64_t)in->width - x;
    if (right > out->width) right = out->width;
    if (left > out->width) left = out->width;
    if (right < left) right = left;
    for (int oy = 0; oy < out->height; oy++) {
        uint8_t *row = out->data + (size_t)oy * out_stride;
        int64_t sy = oy + y;
        if (sy < 0 || sy >= in->height || right == left) {
            fill_pixels(row, c, fill, out->width);
            continue;
        }
        fill_pixels(row, c, fill, left);
        memcpy(row + (size_t)left * (size_t)c,
               in->data + (size_t)sy * in_stride + (size_t)(left + x) * (size_t)c,
               (size_t)(right - left) * (size_t)c);
        fill_pixels(row + (size_t)right * (size_t)c, c, fill, out->width - right);
    }
}

static int64_t clamp_index(int64_t v, int64_t n)
{
    return v < 0 ? 0 : (v >= n ? n - 1 : v);
}

void sm_image_region_edge(sm_image *out, const sm_image *in, int64_t x, int64_t y)
{
    size_t c = (size_t)out->channels;
    size_t out_stride = (size_t)out->width * c, in_stride = (size_t)in->width * c;
    for (int oy = 0; oy < out->height; oy++) {
        const uint8_t *src = in->data + (size_t)clamp_index(oy + y, in->height) * in_stride;
        uint8_t *row = out->data + (size_t)oy * out_stride;
        for (int ox = 0; ox < out->width; ox++)
            memcpy(row + (size_t)ox * c, src + (size_t)clamp_index(ox + x, in->width) * c, c);
    }
}

void sm_image_flip(sm_image *out, const sm_image *in)
{
    int c = in->channels, w = in->width;
    size_t stride = (size_t)w * (size_t)c;
    for (int y = 0; y < in->height; y++) {
        const uint8_t *src = in->data + (size_t)y * stride;
        uint8_t *dst = out->data + (size_t)y * stride;
        for (int x = 0; x < w; x++)
            memcpy(dst + (size_t)x * (size_t)c, src + (size_t)(w - 1 - x) * (size_t)c, (size_t)c);
    }
}

/* ---- affine warp --------------------------------------------------------------------- */

sm_status sm_affine_invert(sm_err *err, double inv[6], const double m[6])
{
    double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5];
    for (int i = 0; i < 6; i++)
        if (!isfinite(m[i]))
            return sm_fail(err, SM_EINVAL, "affine matrix entry %d is not finite", i + 1);
    double det = a * e - b * d;
    /* Relative test: the two products cancel to (nearly) nothing. */
    if (!(fabs(det) > 1e-12 * (fabs(a * e) + fabs(b * d))) || !isfinite(1.0 / det))
        return sm_fail(err, SM_EINVAL, "affine matrix is singular (determinant %g)", det);
    inv[0] = e / det;
    inv[1] = -b / det;
    inv[2] = (b * f - e * c) / det;
    inv[3] = -d / det;
    inv[4] = a / det;
    inv[5] = (d * c - a * f) / det;
    return SM_OK;
}

static const uint8_t *pixel_or_border(const sm_image *in, int64_t x, int64_t y, const uint8_t border[4])
{
    if (x < 0 || y < 0 || x >= in->width || y >= in->height)
        return border;
    return in->data + ((size_t)y * (size_t)in->width + (size_t)x) * (size_t)in->channels;
}

static void sample_bilinear(uint8_t *dst, const sm_image *in, double sx, double sy, const uint8_t border[4])
{
    int c = in->channels;
    /* Outside (-1, size) on either axis every tap is border (also NaN). */
    if (!(sx > -1 && sx < in->width && sy > -1 && sy < in->height)) {
        memcpy(dst, border, (size_t)c);
        return;
    }
    int64_t x0 = (int64_t)floor(sx), y0 = (int64_t)floor(sy);
    double fx = sx - (double)x0, fy = sy - (double)y0;
    const uint8_t *p00 = pixel_or_border(in, x0, y0, border);
    const uint8_t *p01 = pixel_or_border(in, x0 + 1, y0, border);
    const uint8_t *p10 = pixel_or_border(in, x0, y0 + 1, border);
    const uint8_t *p11 = pixel_or_border(in, x0 + 1, y0 + 1, border);
    for (int k = 0; k < c; k++) {
        double top = (1 - fx) * p00[k] + fx * p01[k];
        double bottom = (1 - fx) * p10[k] + fx * p11[k];
        dst[k] = round_u8((1 - fy) * top + fy * bottom);
    }
}

void sm_image_warp_affine(sm_image *out, const sm_image *in, const double a[6], const uint8_t border[4])
{
    uint8_t *o = out->data;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++, o += out->channels)
            sample_bilinear(o, in, a[0] * x + a[1] * y + a[2], a[3] * x + a[4] * y + a[5], border);
}

/* ---- tensors ----------------------------------------------------------------------------- */

static sm_status check_chw(sm_err *err, const sm_tensor *t, const sm_image *img, const char *what)
{
    char s[SM_SHAPE_STR_LEN];
    if (t->ndim != 3 || t->shape[0] != img->channels || t->shape[1] != img->height || t->shape[2] != img->width)
        return sm_fail(err, SM_EINVAL, "%s must have shape [%d,%d,%d] (C,H,W), got %s", what,
                       img->channels, img->height, img->width, sm_shape_str(s, sizeof s, t->ndim, t->shape));
    return SM_OK;
}

sm_status sm_image_to_tensor_check(sm_err *err, const sm_tensor *out, const sm_image *in)
{
    return check_chw(err, out, in, "output tensor");
}

void sm_image_to_tensor(sm_tensor *out, const sm_image *in, double scale,
                        const double mean[4], const double std[4])
{
    int c = in->channels;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < in->height; y++) {
            const uint8_t *p = in->data + (size_t)y * (size_t)in->width * (size_t)c + k;
            float *o = out->data + k * out->stride[0] + y * out->stride[1];
            for (int x = 0; x < in->width; x++)
                o[x * out->stride[2]] = (float)(((double)p[(size_t)x * (size_t)c] * scale - mean[k]) / std[k]);
        }
}

sm_status sm_image_from_tensor_check(sm_err *err, const sm_image *out, const sm_tensor *in)
{
    return check_chw(err, in, out, "tensor");
}

void sm_image_from_tensor(sm_image *out, const sm_tensor *in, double scale,
                          const double mean[4], const double std[4])
{
    int c = out->channels;
    for (int k = 0; k < c; k++)
        for (int y = 0; y < out->height; y++) {
            uint8_t *p = out->data + (size_t)y * (size_t)out->width * (size_t)c + k;
            const float *v = in->data + k * in->stride[0] + y * in->stride[1];
            for (int x = 0; x < out->width; x++)
                p[(size_t)x * (size_t)c] = round_u8(((double)v[x * in->stride[2]] * std[k] + mean[k]) / scale);
        }
}

/* ---- padded square, resized (face-api's toBatchTensor) -------------------------- */

/* The image placed at (left, top) in a zero square of side `side` (the
 * virtual padded image P), resized to S x S with the TF-1 grid and
 * normalised: out[c][y][x] = (bilinear(P)[c] * scale - mean[c]) / std[c],
 * the taps in double as the float path computes them. Reading P through
 * the image avoids building the padded float square, which for a photo
 * is side^2 x 3 floats. */
void sm_image_square_tf(sm_tensor *out, const sm_image *in, int64_t left, int64_t top, int64_t side,
                        double scale, const double *mean, const double *std)
{
    int c = in->channels;
    int64_t S = out->shape[1];
    /* the column taps are the same for every row: computed once when they
     * fit on the stack */
    enum { XTAPS_MAX = 1024 };
    taps2 xtaps[XTAPS_MAX];
    int cached = S <= XTAPS_MAX;
    for (int64_t x = 0; cached && x < S; x++) xtaps[x] = linear_taps(SM_RESIZE_TF, x, side, S);
    /* images have 1 to 4 channels; a multiplication instead of a division
     * per value (the float results agree but for rare last-bit ties) */
    double inv_std[4];
    for (int k = 0; k < c && k < 4; k++) inv_std[k] = 1.0 / std[k];
    if (side == S) {
        /* no resize (a face chip already at the network's size): every tap
         * is (i0 = x, w = 0), so v is the pixel itself, as below */
        #pragma omp parallel for schedule(static) if (S * S > 65536)
        for (int64_t y = 0; y < S; y++) {
            int64_t r = y - top;
            int in_rows = r >= 0 && r < in->height;
            for (int64_t x = 0; x < S; x++) {
                int64_t col = x - left;
                int ok = in_rows && col >= 0 && col < in->width;
                for (int k = 0; k < c; k++) {
                    double v = ok ? in->data[((size_t)r * (size_t)in->width + (size_t)col) * (size_t)c + (size_t)k] : 0;
                    out->data[k * out->stride[0] + y * out->stride[1] + x * out->stride[2]] =
                        (float)((v * scale - mean[k]) * inv_std[k]);
                }
            }
        }
        return;
    }
    #pragma omp parallel for schedule(static) if (S * S > 16384)
    for (int64_t y = 0; y < S; y++) {
        taps2 ty = linear_taps(SM_RESIZE_TF, y, side, S);
        int64_t r0 = ty.i0 - top, r1 = ty.i1 - top;
        int in0 = r0 >= 0 && r0 < in->height, in1 = r1 >= 0 && r1 < in->height;
        int64_t x = 0;
        if (cached && c == 3 && in0 && in1) {
            /* RGB rows both inside the image: the columns whose taps are
             * both inside need no tests (the same arithmetic as below) */
            const uint8_t *p0 = in->data + (size_t)r0 * (size_t)in->width * 3;
            const uint8_t *p1 = in->data + (size_t)r1 * (size_t)in->width * 3;
            float *o0 = out->data + y * out->stride[1], *o1 = o0 + out->stride[0], *o2 = o1 + out->stride[0];
            for (; x < S; x++) {
                taps2 tx = xtaps[x];
                int64_t c0 = tx.i0 - left, c1 = tx.i1 - left;
                if (!(c0 >= 0 && c0 < in->width && c1 >= 0 && c1 < in->width)) break;
                const uint8_t *a0 = p0 + c0 * 3, *a1 = p0 + c1 * 3, *b0 = p1 + c0 * 3, *b1 = p1 + c1 * 3;
                double w = tx.w, v[3];
                for (int k = 0; k < 3; k++) {
                    double top_ = (1 - w) * a0[k] + w * a1[k], bottom = (1 - w) * b0[k] + w * b1[k];
                    v[k] = (1 - ty.w) * top_ + ty.w * bottom;
                }
                o0[x * out->stride[2]] = (float)((v[0] * scale - mean[0]) * inv_std[0]);
                o1[x * out->stride[2]] = (float)((v[1] * scale - mean[1]) * inv_std[1]);
                o2[x * out->stride[2]] = (float)((v[2] * scale - mean[2]) * inv_std[2]);
            }
        }
        for (; x < S; x++) {
            taps2 tx = cached ? xtaps[x] : linear_taps(SM_RESIZE_TF, x, side, S);
            int64_t c0 = tx.i0 - left, c1 = tx.i1 - left;
            int ok0 = c0 >= 0 && c0 < in->width, ok1 = c1 >= 0 && c1 < in->width;
            for (int k = 0; k < c; k++) {
                /* P outside the image is 0 */
                double p00 = in0 && ok0 ? in->data[((size_t)r0 * (size_t)in->width + (size_t)c0) * (size_t)c + (size_t)k] : 0;
                double p01 = in0 && ok1 ? in->data[((size_t)r0 * (size_t)in->width + (size_t)c1) * (size_t)c + (size_t)k] : 0;
                double p10 = in1 && ok0 ? in->data[((size_t)r1 * (size_t)in->width + (size_t)c0) * (size_t)c + (size_t)k] : 0;
                double p11 = in1 && ok1 ? in->data[((size_t)r1 * (size_t)in->width + (size_t)c1) * (size_t)c + (size_t)k] : 0;
                double top_ = (1 - tx.w) * p00 + tx.w * p01, bottom = (1 - tx.w) * p10 + tx.w * p11;
                double v = (1 - ty.w) * top_ + ty.w * bottom;
                out->data[k * out->stride[0] + y * out->stride[1] + x * out->stride[2]] =
                    (float)((v * scale - mean[k]) * inv_std[k]);
            }
        }
    }
}
