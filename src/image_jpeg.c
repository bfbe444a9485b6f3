/*
 * image_jpeg.c — JPEG decode and encode through libjpeg(-turbo), from and
 * to memory.
 *
 * Decode produces 1 channel for grayscale JPEGs and 3 (RGB) for everything
 * else. CMYK and YCCK files are read as CMYK and converted with the Adobe
 * convention (samples stored inverted, so a stored value is 255 - ink):
 *   R = round(C' K' / 255),  G = round(M' K' / 255),  B = round(Y' K' / 255)
 * where C', M', Y', K' are the stored samples. The IDCT is the accurate
 * integer one (JDCT_ISLOW) with libjpeg's default (fancy) upsampling. On
 * request (js_compat) grayscale and YCbCr files are instead rebuilt from
 * their coefficients exactly as jpeg-js does (read_js_compat), for
 * conformance with face-api run in Node; other colour spaces decode as usual.
 *
 * Strictness: data ending early ("premature end of JPEG file"),
 * JWRN_HIT_MARKER (a segment cut short) and JWRN_HUFF_BAD_CODE are errors;
 * other warnings (extraneous bytes, ...) are accepted silently. Progressive
 * files with more than SM_JPEG_MAX_SCANS scans are refused, which bounds
 * the work a small hostile file can cause.
 *
 * libjpeg reports errors by calling error_exit, which must not return: ours
 * formats the message into the caller's sm_err and longjmps back to the
 * setjmp of a small *_guarded function; the entry point then destroys the
 * libjpeg object (releasing every pool allocation) and frees its own
 * buffers. The entry points own all state that survives the jump, so no
 * local of a function containing setjmp is modified before a longjmp.
 *
 * EXIF orientation: sm_jpeg_exif_orientation reads the Orientation tag
 * straight from the input bytes (no allocation, every offset checked; see
 * sm.h), and probe reports it. Decode, when given an orientation other than
 * 1, writes each decoded row (libjpeg's or jpeg-js's) straight to where it
 * belongs in the upright output, so no second image-sized buffer is needed:
 * stored row y, pixel x goes to output pixel
 *   1 (x, y)          2 (W-1-x, y)        3 (W-1-x, H-1-y)    4 (x, H-1-y)
 *   5 (y, x)          6 (H-1-y, x)        7 (H-1-y, W-1-x)    8 (y, W-1-x)
 * for a stored W x H image (the output is H x W for 5..8).
 *
 * Encode writes gray (1 channel) or RGB (3), dropping alpha from 2 or 4
 * channels, at quality 1..100 with libjpeg's default 4:2:0 subsampling for
 * colour.
 */
#include <setjmp.h>
#include <stdio.h>   /* jpeglib.h needs FILE and size_t */
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include "sm.h"

#define SM_JPEG_MAX_SCANS 500

/* ---- error handling --------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub;  /* first: libjpeg sees only this part */
    jmp_buf jump;
    sm_err *err;
    sm_status status;
} jpeg_error_ctx;

static void jump_with(j_common_ptr cinfo, sm_status st, const char *msg)
{
    jpeg_error_ctx *ctx = (jpeg_error_ctx *)cinfo->err;
    ctx->status = st;
    sm_fail(ctx->err, st, "jpeg: %s", msg);
    longjmp(ctx->jump, 1);
}

static void on_error_exit(j_common_ptr cinfo)
{
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    jump_with(cinfo, cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? SM_ENOMEM : SM_EFORMAT, msg);
}

/* level < 0: warning; level >= 0: trace messages, ignored. */
static void on_emit_message(j_common_ptr cinfo, int level)
{
    if (level >= 0)
        return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE)
        on_error_exit(cinfo);
    cinfo->err->num_warnings++;
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* never print */
}

static void init_error_ctx(jpeg_error_ctx *ctx, sm_err *err)
{
    memset(ctx, 0, sizeof *ctx);
    jpeg_std_error(&ctx->pub);
    ctx->pub.error_exit = on_error_exit;
    ctx->pub.emit_message = on_emit_message;
    ctx->pub.output_message = on_output_message;
    ctx->err = err;
    ctx->status = SM_EFORMAT;
}

/* Called by libjpeg while it consumes input; refuses absurd scan counts. */
static void on_progress(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor)
        return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > SM_JPEG_MAX_SCANS) {
        char msg[96];
        snprintf(msg, sizeof msg, "more than %d scans (refused as a likely denial of service)", SM_JPEG_MAX_SCANS);
        jump_with(cinfo, SM_EFORMAT, msg);
    }
}

/* ---- EXIF orientation --------------------------------------------------------------- */

static unsigned get16(const uint8_t *p, int le)
{
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

static uint32_t get32(const uint8_t *p, int le)
{
    return le ? (uint32_t)get16(p, 1) | (uint32_t)get16(p + 2, 1) << 16
              : (uint32_t)get16(p, 0) << 16 | (uint32_t)get16(p + 2, 0);
}

#define EXIF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_SHORT 3
#define TIFF_ENTRY_SIZE 12

int sm_exif_orientation(const uint8_t *tiff, size_t len)
{
    if (!tiff || len < 8)
        return 1;
    int le;
    if (tiff[0] == 'I' && tiff[1] == 'I')
        le = 1;
    else if (tiff[0] == 'M' && tiff[1] == 'M')
        le = 0;
    else
        return 1;
    if (get16(tiff + 2, le) != 42)
        return 1;
    /* IFD0: a 2-byte entry count, then the entries, all inside tiff. */
    uint32_t ifd = get32(tiff + 4, le);
    if (ifd < 8 || ifd > len - 2)
        return 1;
    size_t count = get16(tiff + ifd, le);
    if (count == 0 || count > (len - ifd - 2) / TIFF_ENTRY_SIZE)
        return 1;
    const uint8_t *entry = tiff + ifd + 2;
    for (size_t i = 0; i < count; i++, entry += TIFF_ENTRY_SIZE) {
        if (get16(entry, le) != EXIF_TAG_ORIENTATION)
            continue;
        /* type SHORT, count 1: the value sits in the first two bytes of the
         * 4-byte value field, in the file's byte order */
        if (get16(entry + 2, le) != TIFF_TYPE_SHORT || get32(entry + 4, le) != 1)
            return 1;
        unsigned v = get16(entry + 8, le);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int sm_jpeg_exif_orientation(const uint8_t *buf, size_t len)
{
    static const uint8_t exif_id[6] = { 'E', 'x', 'i', 'f', 0, 0 };
    if (!buf || len < 4 || buf[0] != 0xFF || buf[1] != 0xD8)
        return 1;
    size_t pos = 2;
    for (;;) {  /* pos advances every turn, so this ends */
        if (pos >= len || buf[pos] != 0xFF)
            return 1;
        while (pos < len && buf[pos] == 0xFF)  /* fill bytes */
            pos++;
        if (pos >= len)
            return 1;
        unsigned marker = buf[pos++];
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7))  /* TEM, RSTn: no length */
            continue;
        if (marker == 0x00 || marker == 0xD8 || marker == 0xD9 || marker == 0xDA)  /* SOS, EOI, junk */
            return 1;
        if (len - pos < 2)
            return 1;
        size_t seg = get16(buf + pos, 0);  /* counts its own two bytes */
        if (seg < 2 || seg > len - pos)
            return 1;
        if (marker == 0xE1 && seg - 2 >= sizeof exif_id && memcmp(buf + pos + 2, exif_id, sizeof exif_id) == 0)
            return sm_exif_orientation(buf + pos + 2 + sizeof exif_id, seg - 2 - sizeof exif_id);
        pos += seg;
    }
}

/* Where stored row y of a w x h image goes in the upright output: its pixel
 * x lands at byte offset start + x * step (see the table at the top). */
typedef struct { ptrdiff_t start, step; } row_walk;

static row_walk orient_row(int orientation, int w, int h, int y, int channels)
{
    ptrdiff_t W = w, H = h, Y = y, c = channels;
    ptrdiff_t out_w = orientation >= 5 ? H : W;
    ptrdiff_t x0, y0, dx, dy;  /* output position of pixel 0, its change per pixel */
    switch (orientation) {
    case 2:  x0 = W - 1;     y0 = Y;         dx = -1; dy = 0;  break;
    case 3:  x0 = W - 1;     y0 = H - 1 - Y; dx = -1; dy = 0;  break;
    case 4:  x0 = 0;         y0 = H - 1 - Y; dx = 1;  dy = 0;  break;
    case 5:  x0 = Y;         y0 = 0;         dx = 0;  dy = 1;  break;
    case 6:  x0 = H - 1 - Y; y0 = 0;         dx = 0;  dy = 1;  break;
    case 7:  x0 = H - 1 - Y; y0 = W - 1;     dx = 0;  dy = -1; break;
    case 8:  x0 = Y;         y0 = W - 1;     dx = 0;  dy = -1; break;
    default: x0 = 0;         y0 = Y;         dx = 1;  dy = 0;  break;
    }
    row_walk r = { (y0 * out_w + x0) * c, (dy * out_w + dx) * c };
    return r;
}

static void put_row(uint8_t *out, row_walk walk, const uint8_t *row, int width, int channels)
{
    ptrdiff_t at = walk.start;
    if (channels == 3) {
        for (int x = 0; x < width; x++, at += walk.step, row += 3) {
            out[at] = row[0];
            out[at + 1] = row[1];
            out[at + 2] = row[2];
        }
    } else if (channels == 1) {
        for (int x = 0; x < width; x++, at += walk.step)
            out[at] = row[x];
    } else {
        for (int x = 0; x < width; x++, at += walk.step, row += channels)
            memcpy(out + at, row, (size_t)channels);
    }
}

/* ---- memory source ------------------------------------------------------------ */

/* The whole input is one buffer: libjpeg asks for more only past its end. */
static void source_init(j_decompress_ptr cinfo) { (void)cinfo; }
static void source_term(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean source_fill(j_decompress_ptr cinfo)
{
    WARNMS(cinfo, JWRN_JPEG_EOF); /* an error here: see on_emit_message */
    return FALSE;
}

static void source_skip(j_decompress_ptr cinfo, long n)
{
    struct jpeg_source_mgr *src = cinfo->src;
    if (n <= 0)
        return;
    if ((unsigned long)n > src->bytes_in_buffer)
        WARNMS(cinfo, JWRN_JPEG_EOF);
    src->next_input_byte += n;
    src->bytes_in_buffer -= (size_t)n;
}

static void init_source(struct jpeg_source_mgr *src, const uint8_t *buf, size_t len)
{
    src->init_source = source_init;
    src->fill_input_buffer = source_fill;
    src->skip_input_data = source_skip;
    src->resync_to_restart = jpeg_resync_to_restart;
    src->term_source = source_term;
    src->next_input_byte = buf;
    src->bytes_in_buffer = len;
}

/* Everything a decode call owns; lives in the entry point's frame. */
typedef struct {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_ctx error;
    struct jpeg_progress_mgr progress;
    struct jpeg_source_mgr source;
} jpeg_reader;

static void reader_init(jpeg_reader *r, sm_err *err, const uint8_t *buf, size_t len)
{
    memset(&r->cinfo, 0, sizeof r->cinfo);
    init_error_ctx(&r->error, err);
    r->cinfo.err = &r->error.pub;
    memset(&r->progress, 0, sizeof r->progress);
    r->progress.progress_monitor = on_progress;
    init_source(&r->source, buf, len);
}

/* Must run inside a setjmp scope: any call may longjmp. */
static void reader_open(jpeg_reader *r)
{
    jpeg_create_decompress(&r->cinfo);
    r->cinfo.progress = &r->progress; /* after create, which clears the struct */
    r->cinfo.src = &r->source;
    jpeg_read_header(&r->cinfo, TRUE);
}

static int is_cmyk(const struct jpeg_decompress_struct *cinfo)
{
    return cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
}

/* Channels decode will produce, 0 for colour spaces we cannot convert. */
static int decoded_channels(const struct jpeg_decompress_struct *cinfo)
{
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE: return 1;
    case JCS_YCbCr: case JCS_RGB: case JCS_CMYK: case JCS_YCCK: return 3;
    default: return 0;
    }
}

/* ---- probe ------------------------------------------------------------------------ */

static sm_status probe_guarded(jpeg_reader *r, sm_image_info *info)
{
    if (setjmp(r->error.jump))
        return r->error.status;
    reader_open(r);
    info->format = SM_FMT_JPEG;
    info->width = (int)r->cinfo.image_width;   /* at most 65535 in a JPEG header */
    info->height = (int)r->cinfo.image_height;
    info->channels = decoded_channels(&r->cinfo);
    return SM_OK;
}

sm_status sm_jpeg_probe(sm_err *err, sm_image_info *info, const uint8_t *buf, size_t len)
{
    jpeg_reader r;
    reader_init(&r, err, buf, len);
    sm_status st = probe_guarded(&r, info);
    jpeg_destroy_decompress(&r.cinfo);
    if (st == SM_OK && info->channels == 0)
        return sm_fail(err, SM_EFORMAT, "jpeg: unsupported colour space (%d components)",
                       r.cinfo.num_components);
    if (st == SM_OK)
        info->orientation = sm_jpeg_exif_orientation(buf, len);
    return st;
}

/* ---- decode ------------------------------------------------------------------------ */

/* round(a * b / 255) for 8-bit a, b. */
static uint8_t mul_div255(unsigned a, unsigned b)
{
    return (uint8_t)((2u * a * b + 255u) / 510u);
}

static void cmyk_row_to_rgb(uint8_t *rgb, const uint8_t *cmyk, int width)
{
    for (int x = 0; x < width; x++, rgb += 3, cmyk += 4) {
        unsigned k = cmyk[3];
        rgb[0] = mul_div255(cmyk[0], k);
        rgb[1] = mul_div255(cmyk[1], k);
        rgb[2] = mul_div255(cmyk[2], k);
    }
}

static uint8_t clamp_truncate(double v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

/* jpeg-js's colour conversion of one pixel:  R = Y + 1.402 (Cr - 128),
 * G = Y - 0.3441363 (Cb - 128) - 0.71413636 (Cr - 128), B = Y + 1.772 (Cb - 128),
 * each clamped to 0..255 and truncated. */
static void ycc_to_rgb_truncated(uint8_t *rgb, double y, double cb, double cr)
{
    cb -= 128.0;
    cr -= 128.0;
    rgb[0] = clamp_truncate(y + 1.402 * cr);
    rgb[1] = clamp_truncate(y - 0.3441363 * cb - 0.71413636 * cr);
    rgb[2] = clamp_truncate(y + 1.772 * cb);
}

/* jpeg-js's reconstruction from the quantised coefficients (which libjpeg
 * reads, baseline or progressive): each component's blocks through
 * sm_jpegjs_idct into a plane of whole blocks, planes sampled at
 * floor(x h / max_h), floor(y v / max_v) (chroma replicated, no
 * smoothing), then its colour conversion. The planes come from libjpeg's
 * image pool, freed by jpeg_destroy_decompress even after an error. Only
 * for grayscale and YCbCr files (decode_guarded checks). Each pixel goes
 * where orientation puts it. */
static void read_js_compat(j_decompress_ptr cinfo, sm_image *out, int orientation)
{
    jvirt_barray_ptr *coefs = jpeg_read_coefficients(cinfo);
    int nc = cinfo->num_components;
    uint8_t *plane[3];
    size_t stride[3];
    double sx[3], sy[3];
    for (int ci = 0; ci < nc; ci++) {
        jpeg_component_info *comp = cinfo->comp_info + ci;
        if (!comp->quant_table)
            ERREXIT(cinfo, JERR_NO_QUANT_TABLE);
        size_t bw = comp->width_in_blocks, bh = comp->height_in_blocks;
        stride[ci] = bw * 8;
        plane[ci] = (*cinfo->mem->alloc_large)((j_common_ptr)cinfo, JPOOL_IMAGE, stride[ci] * bh * 8);
        sx[ci] = (double)comp->h_samp_factor / cinfo->max_h_samp_factor;
        sy[ci] = (double)comp->v_samp_factor / cinfo->max_v_samp_factor;
        for (size_t by = 0; by < bh; by++) {
            JBLOCKARRAY row = (*cinfo->mem->access_virt_barray)((j_common_ptr)cinfo, coefs[ci],
                                                                (JDIMENSION)by, 1, FALSE);
            for (size_t bx = 0; bx < bw; bx++)
                sm_jpegjs_idct(plane[ci] + by * 8 * stride[ci] + bx * 8, (ptrdiff_t)stride[ci],
                               row[0][bx], comp->quant_table->quantval);
        }
    }
    int w = (int)cinfo->image_width, h = (int)cinfo->image_height;  /* as stored */
    for (int y = 0; y < h; y++) {
        row_walk walk = orient_row(orientation, w, h, y, out->channels);
        const uint8_t *line[3];
        for (int ci = 0; ci < nc; ci++) line[ci] = plane[ci] + (size_t)(y * sy[ci]) * stride[ci];
        for (int x = 0; x < w; x++) {
            uint8_t *dst = out->data + walk.start + (ptrdiff_t)x * walk.step;
            if (nc == 1) {
                dst[0] = line[0][(size_t)(x * sx[0])];
            } else {
                ycc_to_rgb_truncated(dst, line[0][(size_t)(x * sx[0])],
                                     line[1][(size_t)(x * sx[1])], line[2][(size_t)(x * sx[2])]);
            }
        }
    }
}

/* Rows land in out directly when they need neither conversion nor turning;
 * otherwise they pass through one-row buffers of libjpeg's image pool. */
static void read_scanlines(j_decompress_ptr cinfo, sm_image *out, int cmyk, int orientation)
{
    int w = (int)cinfo->output_width, h = (int)cinfo->output_height;  /* as stored */
    int c = out->channels, direct = orientation == 1;
    size_t stride = (size_t)w * (size_t)c;  /* out's, when direct */
    JSAMPARRAY raw = NULL, rgb = NULL;
    if (cmyk || !direct)
        raw = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE,
                                          (JDIMENSION)w * (JDIMENSION)(cmyk ? 4 : c), 1);
    if (cmyk && !direct)
        rgb = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE, (JDIMENSION)w * 3, 1);
    while (cinfo->output_scanline < cinfo->output_height) {
        size_t y = cinfo->output_scanline;
        JSAMPROW row = raw ? raw[0] : out->data + y * stride;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1)
            ERREXIT(cinfo, JERR_INPUT_EOF); /* cannot happen: our source never suspends */
        if (cmyk) {
            uint8_t *converted = direct ? out->data + y * stride : rgb[0];
            cmyk_row_to_rgb(converted, row, w);
            row = converted;
        }
        if (!direct)
            put_row(out->data, orient_row(orientation, w, h, (int)y, c), row, w, c);
    }
}

/* out's size is the stored one turned by orientation (1..8). */
static sm_status decode_guarded(jpeg_reader *r, sm_image *out, int js_compat, int orientation)
{
    j_decompress_ptr cinfo = &r->cinfo;
    if (setjmp(r->error.jump))
        return r->error.status;
    reader_open(r);
    int swap = orientation >= 5;
    int w = swap ? out->height : out->width, h = swap ? out->width : out->height;  /* stored */
    if ((int)cinfo->image_width != w || (int)cinfo->image_height != h ||
        decoded_channels(cinfo) != out->channels)
        return sm_fail(r->error.err, SM_EINVAL, "jpeg: decode target does not match the header");
    if (js_compat && (cinfo->jpeg_color_space == JCS_YCbCr || cinfo->jpeg_color_space == JCS_GRAYSCALE)) {
        read_js_compat(cinfo, out, orientation);
        jpeg_finish_decompress(cinfo);
        return SM_OK;
    }
    int cmyk = is_cmyk(cinfo);
    cinfo->out_color_space = cmyk ? JCS_CMYK : out->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    cinfo->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(cinfo);
    if ((int)cinfo->output_width != w || (int)cinfo->output_height != h ||
        cinfo->output_components != (cmyk ? 4 : out->channels))
        return sm_fail(r->error.err, SM_EFORMAT, "jpeg: unexpected output layout");
    read_scanlines(cinfo, out, cmyk, orientation);
    jpeg_finish_decompress(cinfo);
    return SM_OK;
}

sm_status sm_jpeg_decode(sm_err *err, sm_image *out, const uint8_t *buf, size_t len,
                         int js_compat, int orientation)
{
    if (orientation < 1 || orientation > 8)
        return sm_fail(err, SM_EINVAL, "jpeg: orientation %d is not 1..8", orientation);
    jpeg_reader r;
    reader_init(&r, err, buf, len);
    sm_status st = decode_guarded(&r, out, js_compat, orientation);
    jpeg_destroy_decompress(&r.cinfo);
    return st;
}

/* ---- encode ------------------------------------------------------------------------- */

/* A growing malloc'd output buffer, owned by the entry point. */
typedef struct {
    struct jpeg_destination_mgr pub;  /* first: libjpeg sees only this part */
    uint8_t *data;
    size_t cap, len;
} jpeg_sink;

#define JPEG_SINK_FIRST_SIZE 16384

static void sink_init(j_compress_ptr cinfo)
{
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    sink->data = malloc(JPEG_SINK_FIRST_SIZE);
    if (!sink->data)
        ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    sink->cap = JPEG_SINK_FIRST_SIZE;
    sink->pub.next_output_byte = sink->data;
    sink->pub.free_in_buffer = sink->cap;
}

/* Called when the buffer is full: double it. */
static boolean sink_grow(j_compress_ptr cinfo)
{
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    size_t old = sink->cap;
    if (old > SIZE_MAX / 2)
        ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
    uint8_t *grown = realloc(sink->data, old * 2);
    if (!grown)
        ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
    sink->data = grown;
    sink->cap = old * 2;
    sink->pub.next_output_byte = grown + old;
    sink->pub.free_in_buffer = sink->cap - old;
    return TRUE;
}

static void sink_term(j_compress_ptr cinfo)
{
    jpeg_sink *sink = (jpeg_sink *)cinfo->dest;
    sink->len = sink->cap - sink->pub.free_in_buffer;
}

typedef struct {
    struct jpeg_compress_struct cinfo;
    jpeg_error_ctx error;
    jpeg_sink sink;
} jpeg_writer;

static void write_scanlines(j_compress_ptr cinfo, const sm_image *img)
{
    int out_channels = cinfo->input_components;
    size_t stride = (size_t)img->width * (size_t)img->channels;
    JSAMPARRAY converted = NULL;
    if (out_channels != img->channels) /* alpha to drop */
        converted = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE,
                                                (JDIMENSION)img->width * (JDIMENSION)out_channels, 1);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW row = img->data + (size_t)cinfo->next_scanline * stride;
        if (converted) {
            sm_pixels_convert(converted[0], out_channels, row, img->channels, (size_t)img->width);
            row = converted[0];
        }
        jpeg_write_scanlines(cinfo, &row, 1);
    }
}

static sm_status encode_guarded(jpeg_writer *w, const sm_image *img, int quality)
{
    j_compress_ptr cinfo = &w->cinfo;
    if (setjmp(w->error.jump))
        return w->error.status;
    jpeg_create_compress(cinfo);
    cinfo->dest = &w->sink.pub;
    cinfo->image_width = (JDIMENSION)img->width;
    cinfo->image_height = (JDIMENSION)img->height;
    cinfo->input_components = img->channels <= 2 ? 1 : 3;
    cinfo->in_color_space = img->channels <= 2 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    cinfo->dct_method = JDCT_ISLOW;
    jpeg_start_compress(cinfo, TRUE);
    write_scanlines(cinfo, img);
    jpeg_finish_compress(cinfo);
    return SM_OK;
}

sm_status sm_jpeg_encode(sm_err *err, uint8_t **out, size_t *out_len, const sm_image *img, int quality)
{
    *out = NULL;
    *out_len = 0;
    if (quality < 1 || quality > 100)
        return sm_fail(err, SM_EINVAL, "jpeg: quality must be 1..100, got %d", quality);
    if (img->channels < 1 || img->channels > 4 || img->width < 1 || img->height < 1)
        return sm_fail(err, SM_EINVAL, "jpeg: cannot encode a %dx%dx%d image",
                       img->width, img->height, img->channels);
    jpeg_writer w;
    memset(&w.cinfo, 0, sizeof w.cinfo);
    init_error_ctx(&w.error, err);
    w.cinfo.err = &w.error.pub;
    memset(&w.sink, 0, sizeof w.sink);
    w.sink.pub.init_destination = sink_init;
    w.sink.pub.empty_output_buffer = sink_grow;
    w.sink.pub.term_destination = sink_term;
    sm_status st = encode_guarded(&w, img, quality);
    jpeg_destroy_compress(&w.cinfo);
    if (st != SM_OK) {
        free(w.sink.data);
        return st;
    }
    *out = w.sink.data;
    *out_len = w.sink.len;
    return SM_OK;
}
