/*
 * image_png.c — PNG decode and encode through libpng, from and to memory.
 *
 * Channels produced by decode (8 bits per sample, interleaved):
 *   gray 1/2/4/8/16 bit        -> 1 (sub-8-bit expanded to 0..255: v*255/(2^d-1))
 *   gray + tRNS                -> 2 (alpha 0 where the gray value equals the key)
 *   gray + alpha               -> 2
 *   RGB                        -> 3, RGB + tRNS -> 4
 *   RGBA                       -> 4
 *   palette 1/2/4/8 bit        -> 3, palette + tRNS -> 4
 * 16-bit samples become round(v * 255 / 65535) (png_set_scale_16);
 * Adam7-interlaced images are de-interlaced. Gamma, colour profiles and
 * text chunks are not applied.
 *
 * libpng reports errors by longjmp. Every entry point creates its own
 * png_struct whose error handler copies the message into the caller's
 * sm_err and jumps back to the setjmp of a small *_guarded function; the
 * entry point then frees everything libpng or we allocated and returns
 * SM_EFORMAT (SM_ENOMEM for allocation failures, SM_ELIMIT for a side above
 * SM_IMAGE_MAX_SIDE). Warnings are discarded. Nothing else runs inside that
 * scope.
 */
#include <ctype.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include "sm.h"

/* Ancillary chunks bigger than this (e.g. a decompressed iCCP or zTXt) are
 * refused; the pixel data (IDAT) is streamed and not concerned. */
#define PNG_CHUNK_MALLOC_MAX ((png_alloc_size_t)8 << 20)
/* Ancillary chunks kept in memory at most (sPLT, unknown...). */
#define PNG_CHUNK_CACHE_MAX 128u

/* ---- error handling --------------------------------------------------------- */

typedef struct {
    sm_err *err;
    sm_status status;   /* what to return after the longjmp */
} png_error_ctx;

/* libpng's allocation failures say "Out of memory" or "insufficient memory". */
static int is_memory_message(const char *msg)
{
    char lower[64];
    size_t i = 0;
    for (; msg[i] && i < sizeof lower - 1; i++)
        lower[i] = (char)tolower((unsigned char)msg[i]);
    lower[i] = '\0';
    return strstr(lower, "out of memory") != NULL || strstr(lower, "insufficient memory") != NULL;
}

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_error_ctx *ctx = png_get_error_ptr(png);
    ctx->status = msg && is_memory_message(msg) ? SM_ENOMEM : SM_EFORMAT;
    sm_fail(ctx->err, ctx->status, "png: %s", msg ? msg : "error");
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* ---- reading ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
} png_source;

static void read_from_memory(png_structp png, png_bytep out, size_t n)
{
    png_source *src = png_get_io_ptr(png);
    if (n > src->len - src->pos)
        png_error(png, "unexpected end of data (truncated file)");
    memcpy(out, src->buf + src->pos, n);
    src->pos += n;
}

/* Channels decode produces for the header libpng has read. */
static int decoded_channels(png_structp png, png_infop info)
{
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    switch (png_get_color_type(png, info)) {
    case PNG_COLOR_TYPE_GRAY:       return has_trns ? 2 : 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB:        return has_trns ? 4 : 3;
    case PNG_COLOR_TYPE_PALETTE:    return has_trns ? 4 : 3;
    case PNG_COLOR_TYPE_RGB_ALPHA:  return 4;
    default:                        return 0;
    }
}

static png_structp create_reader(png_error_ctx *ctx, png_source *src)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, on_png_error, on_png_warning);
    if (!png)
        return NULL;
    png_set_read_fn(png, src, read_from_memory);
    /* Our own size limits are applied after the header is read (with
     * messages that name them); let libpng accept any legal size here. */
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_chunk_malloc_max(png, PNG_CHUNK_MALLOC_MAX);
    png_set_chunk_cache_max(png, PNG_CHUNK_CACHE_MAX);
    return png;
}

/* Fills info from the header (all chunks up to the first IDAT). */
static void read_header_into(png_structp png, png_infop pinfo, sm_image_info *info)
{
    png_read_info(png, pinfo);
    png_uint_32 w = png_get_image_width(png, pinfo), h = png_get_image_height(png, pinfo);
    if (w > (png_uint_32)SM_IMAGE_MAX_SIDE || h > (png_uint_32)SM_IMAGE_MAX_SIDE) {
        /* Refused here, where the real sizes are known (an int could not
         * hold them all); smaller sizes get the common checks of image.c. */
        png_error_ctx *ctx = png_get_error_ptr(png);
        ctx->status = SM_ELIMIT;
        sm_fail(ctx->err, SM_ELIMIT, "png: image size %lux%lu exceeds the limit of %d pixels per side",
                (unsigned long)w, (unsigned long)h, SM_IMAGE_MAX_SIDE);
        png_longjmp(png, 1);
    }
    info->format = SM_FMT_PNG;
    info->width = (int)w;
    info->height = (int)h;
    info->channels = decoded_channels(png, pinfo);
}

/* The setjmp scopes live in these small functions; the state a longjmp
 * must leave intact (error context, source, sink) belongs to their callers,
 * so none of it is a local modified between setjmp and longjmp. */
static sm_status probe_guarded(png_structp png, png_infop pinfo, sm_image_info *info)
{
    if (setjmp(png_jmpbuf(png)))
        return SM_EFORMAT; /* the caller reads the real status from its context */
    read_header_into(png, pinfo, info);
    return SM_OK;
}

/* Creates the read structs; SM_ENOMEM (with a message) when libpng cannot. */
static sm_status open_reader(sm_err *err, png_structp *png, png_infop *pinfo,
                             png_error_ctx *ctx, png_source *src)
{
    *png = create_reader(ctx, src);
    *pinfo = *png ? png_create_info_struct(*png) : NULL;
    if (!*pinfo) {
        if (*png)
            png_destroy_read_struct(png, NULL, NULL);
        return sm_fail(err, SM_ENOMEM, "png: out of memory");
    }
    return SM_OK;
}

sm_status sm_png_probe(sm_err *err, sm_image_info *info, const uint8_t *buf, size_t len)
{
    png_error_ctx ctx = { err, SM_OK };
    png_source src = { buf, len, 0 };
    png_structp png;
    png_infop pinfo;
    if (open_reader(err, &png, &pinfo, &ctx, &src) != SM_OK)
        return SM_ENOMEM;
    sm_status st = probe_guarded(png, pinfo, info);
    png_destroy_read_struct(&png, &pinfo, NULL);
    if (st != SM_OK)
        return ctx.status;
    if (info->channels == 0)
        return sm_fail(err, SM_EFORMAT, "png: unsupported colour type");
    return SM_OK;
}

/* Asks libpng for 8-bit samples in the layout the table at the top gives;
 * returns the number of interlace passes. */
static int request_8bit_output(png_structp png)
{
    png_set_expand(png);            /* palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha */
    png_set_scale_16(png);          /* 16 -> 8 bit, round(v * 255 / 65535) */
    return png_set_interlace_handling(png);
}

static void read_rows(png_structp png, sm_image *out, int passes)
{
    size_t stride = (size_t)out->width * (size_t)out->channels;
    /* With interlace handling each pass updates the rows in place. */
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < out->height; y++)
            png_read_row(png, out->data + (size_t)y * stride, NULL);
}

static sm_status decode_guarded(png_structp png, png_infop pinfo, sm_image *out)
{
    if (setjmp(png_jmpbuf(png)))
        return SM_EFORMAT; /* the caller reads the real status from its context */
    sm_image_info info;
    read_header_into(png, pinfo, &info);
    if (info.width != out->width || info.height != out->height || info.channels != out->channels)
        png_error(png, "decode target does not match the header");
    int passes = request_8bit_output(png);
    png_read_update_info(png, pinfo);
    if (png_get_bit_depth(png, pinfo) != 8 || png_get_channels(png, pinfo) != out->channels ||
        png_get_rowbytes(png, pinfo) != (size_t)out->width * (size_t)out->channels)
        png_error(png, "unexpected row layout after transformations");
    read_rows(png, out, passes);
    return SM_OK;
}

sm_status sm_png_decode(sm_err *err, sm_image *out, const uint8_t *buf, size_t len)
{
    png_error_ctx ctx = { err, SM_OK };
    png_source src = { buf, len, 0 };
    png_structp png;
    png_infop pinfo;
    if (open_reader(err, &png, &pinfo, &ctx, &src) != SM_OK)
        return SM_ENOMEM;
    sm_status st = decode_guarded(png, pinfo, out);
    png_destroy_read_struct(&png, &pinfo, NULL);
    return st == SM_OK ? SM_OK : ctx.status;
}

/* ---- writing ------------------------------------------------------------------ */

/* A growing malloc'd buffer owned by the encoder until it succeeds. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} png_sink;

static void write_to_memory(png_structp png, png_bytep in, size_t n)
{
    png_sink *sink = png_get_io_ptr(png);
    if (n > sink->cap - sink->len) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap - sink->len < n) {
            if (cap > SIZE_MAX / 2)
                png_error(png, "out of memory");
            cap *= 2;
        }
        uint8_t *grown = realloc(sink->data, cap);
        if (!grown)
            png_error(png, "out of memory");
        sink->data = grown;
        sink->cap = cap;
    }
    memcpy(sink->data + sink->len, in, n);
    sink->len += n;
}

static void flush_nothing(png_structp png)
{
    (void)png;
}

static int color_type_for(int channels)
{
    switch (channels) {
    case 1:  return PNG_COLOR_TYPE_GRAY;
    case 2:  return PNG_COLOR_TYPE_GRAY_ALPHA;
    case 3:  return PNG_COLOR_TYPE_RGB;
    default: return PNG_COLOR_TYPE_RGB_ALPHA;
    }
}

static sm_status encode_guarded(png_structp png, png_infop pinfo, png_sink *sink, const sm_image *img)
{
    if (setjmp(png_jmpbuf(png)))
        return SM_EFORMAT; /* the caller reads the real status from its context */
    png_set_write_fn(png, sink, write_to_memory, flush_nothing);
    png_set_IHDR(png, pinfo, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 color_type_for(img->channels), PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, pinfo);
    size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++)
        png_write_row(png, img->data + (size_t)y * stride);
    png_write_end(png, pinfo);
    return SM_OK;
}

sm_status sm_png_encode(sm_err *err, uint8_t **out, size_t *out_len, const sm_image *img)
{
    *out = NULL;
    *out_len = 0;
    if (img->channels < 1 || img->channels > 4 || img->width < 1 || img->height < 1)
        return sm_fail(err, SM_EINVAL, "png: cannot encode a %dx%dx%d image",
                       img->width, img->height, img->channels);
    png_error_ctx ctx = { err, SM_OK };
    png_sink sink = { NULL, 0, 0 };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error, on_png_warning);
    png_infop pinfo = png ? png_create_info_struct(png) : NULL;
    if (!pinfo) {
        if (png)
            png_destroy_write_struct(&png, NULL);
        return sm_fail(err, SM_ENOMEM, "png: out of memory");
    }
    sm_status st = encode_guarded(png, pinfo, &sink, img);
    png_destroy_write_struct(&png, &pinfo);
    if (st != SM_OK) {
        free(sink.data);
        return ctx.status;
    }
    *out = sink.data;
    *out_len = sink.len;
    return SM_OK;
}
