/*
 * image.c — format sniffing and the two-phase decode dispatch.
 *
 * Formats are recognised by their first bytes only (never by file name):
 *   JPEG  FF D8 FF
 *   PNG   89 50 4E 47 0D 0A 1A 0A
 *   PNM   'P' followed by '2' (ASCII gray), '3' (ASCII RGB), '5' (binary
 *         gray) or '6' (binary RGB)
 *
 * sm_image_probe reads the header through the format's reader and applies
 * the size limits common to every format (each side 1..SM_IMAGE_MAX_SIDE,
 * width*height <= max_pixels) before anyone allocates the pixels;
 * sm_image_decode then fills a caller-owned buffer of exactly
 * width*height*channels bytes, turned upright when asked to apply a JPEG's
 * EXIF orientation (the same pixel count, width and height swapped for
 * orientations 5..8, so the limits hold either way).
 */
#include <string.h>
#include "sm.h"

static const uint8_t png_signature[8] = { 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A };

sm_image_format sm_image_sniff(const uint8_t *buf, size_t len)
{
    if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF)
        return SM_FMT_JPEG;
    if (len >= sizeof png_signature && memcmp(buf, png_signature, sizeof png_signature) == 0)
        return SM_FMT_PNG;
    if (len >= 2 && buf[0] == 'P' && (buf[1] == '2' || buf[1] == '3' || buf[1] == '5' || buf[1] == '6'))
        return SM_FMT_PNM;
    return SM_FMT_UNKNOWN;
}

const char *sm_image_format_name(sm_image_format f)
{
    switch (f) {
    case SM_FMT_JPEG: return "jpeg";
    case SM_FMT_PNG:  return "png";
    case SM_FMT_PNM:  return "pnm";
    default:          return "unknown";
    }
}

static sm_status probe_format(sm_err *err, sm_image_info *info, sm_image_format f,
                              const uint8_t *buf, size_t len)
{
    switch (f) {
    case SM_FMT_JPEG: return sm_jpeg_probe(err, info, buf, len);
    case SM_FMT_PNG:  return sm_png_probe(err, info, buf, len);
    case SM_FMT_PNM:  return sm_pnm_probe(err, info, buf, len);
    default:
        if (len == 0)
            return sm_fail(err, SM_EFORMAT, "empty image data");
        return sm_fail(err, SM_EFORMAT, "unknown image format (not JPEG, PNG or PNM)");
    }
}

/* The limits every format shares; the messages name the limit. */
static sm_status check_size(sm_err *err, const sm_image_info *info, uint64_t max_pixels)
{
    if (info->width < 1 || info->height < 1)
        return sm_fail(err, SM_EFORMAT, "%s: image has no pixels (%dx%d)",
                       sm_image_format_name(info->format), info->width, info->height);
    if (info->width > SM_IMAGE_MAX_SIDE || info->height > SM_IMAGE_MAX_SIDE)
        return sm_fail(err, SM_ELIMIT, "%s: image size %dx%d exceeds the limit of %d pixels per side",
                       sm_image_format_name(info->format), info->width, info->height, SM_IMAGE_MAX_SIDE);
    uint64_t pixels = (uint64_t)info->width * (uint64_t)info->height;
    if (pixels > max_pixels)
        return sm_fail(err, SM_ELIMIT, "%s: image size %dx%d (%llu pixels) exceeds the limit of %llu pixels (max_pixels)",
                       sm_image_format_name(info->format), info->width, info->height,
                       (unsigned long long)pixels, (unsigned long long)max_pixels);
    if (info->channels < 1 || info->channels > 4)
        return sm_fail(err, SM_EFORMAT, "%s: unsupported channel count %d",
                       sm_image_format_name(info->format), info->channels);
    return SM_OK;
}

sm_status sm_image_probe(sm_err *err, sm_image_info *info,
                         const uint8_t *buf, size_t len, uint64_t max_pixels)
{
    memset(info, 0, sizeof *info);
    sm_image_format f = sm_image_sniff(buf, len);
    sm_status st = probe_format(err, info, f, buf, len);
    if (st != SM_OK)
        return st;
    info->format = f;
    if (info->orientation < 1 || info->orientation > 8)
        info->orientation = 1;
    return check_size(err, info, max_pixels);
}

/* The orientation decode applies: 1 unless asked for. */
static int applied_orientation(const sm_image_info *info, const sm_decode_opts *opts)
{
    return opts && opts->apply_orientation ? info->orientation : 1;
}

void sm_image_decoded_size(const sm_image_info *info, const sm_decode_opts *opts, int *width, int *height)
{
    int o = applied_orientation(info, opts);
    int swap = o >= 5 && o <= 8;
    *width = swap ? info->height : info->width;
    *height = swap ? info->width : info->height;
}

sm_status sm_image_decode(sm_err *err, sm_image *out, const sm_image_info *info,
                          const uint8_t *buf, size_t len, const sm_decode_opts *opts)
{
    int orientation = applied_orientation(info, opts);
    if (orientation < 1 || orientation > 8)
        return sm_fail(err, SM_EINVAL, "decode: orientation %d is not 1..8", orientation);
    int w, h;
    sm_image_decoded_size(info, opts, &w, &h);
    if (out->width != w || out->height != h || out->channels != info->channels)
        return sm_fail(err, SM_EINVAL, "decode target is %dx%dx%d but the image is %dx%dx%d",
                       out->width, out->height, out->channels, w, h, info->channels);
    sm_image_format f = sm_image_sniff(buf, len);
    if (f != info->format)
        return sm_fail(err, SM_EINVAL, "decode: data is %s but probe said %s",
                       sm_image_format_name(f), sm_image_format_name(info->format));
    if (orientation != 1 && f != SM_FMT_JPEG)
        return sm_fail(err, SM_EINVAL, "decode: orientation %d given for a %s image (JPEG only)",
                       orientation, sm_image_format_name(f));
    switch (f) {
    case SM_FMT_JPEG: return sm_jpeg_decode(err, out, buf, len, opts && opts->jpeg_js_compat, orientation);
    case SM_FMT_PNG:  return sm_png_decode(err, out, buf, len);
    case SM_FMT_PNM:  return sm_pnm_decode(err, out, buf, len);
    default:          return sm_fail(err, SM_EFORMAT, "unknown image format");
    }
}
