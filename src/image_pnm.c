/*
 * image_pnm.c — Netpbm gray and colour maps: P2/P5 (gray, 1 channel) and
 * P3/P6 (RGB, 3 channels), decode and encode.
 *
 * Header: magic, width, height, maxval as decimal numbers separated by
 * whitespace, with '#' comments running to the end of a line. Binary
 * rasters (P5, P6) start after exactly one whitespace byte following maxval
 * and hold 1-byte samples, or 2-byte big-endian samples when maxval > 255.
 * ASCII rasters (P2, P3) hold decimal samples separated by whitespace.
 *
 * maxval is 1..65535; a sample above maxval is an error; samples are
 * scaled to 8 bits as round(v * 255 / maxval), halves rounding up (the
 * identity when maxval = 255). Truncated data is an error; bytes after the
 * raster are ignored.
 *
 * The encoder writes P5 or P6 with maxval 255.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sm.h"

/* Large enough for any side we accept, small enough to stay in an int. */
#define PNM_MAX_NUMBER 999999999u

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
} pnm_reader;

typedef struct {
    int ascii;          /* P2, P3 */
    int channels;       /* 1 (P2, P5) or 3 (P3, P6) */
    uint32_t width, height, maxval;
    size_t raster;      /* offset of the first raster byte (binary) or token (ASCII) */
} pnm_header;

static int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void skip_space_and_comments(pnm_reader *r)
{
    while (r->pos < r->len) {
        uint8_t c = r->buf[r->pos];
        if (c == '#') {
            while (r->pos < r->len && r->buf[r->pos] != '\n' && r->buf[r->pos] != '\r')
                r->pos++;
        } else if (is_space(c)) {
            r->pos++;
        } else {
            return;
        }
    }
}

/* Reads one unsigned decimal number (after whitespace and comments). */
static sm_status read_number(sm_err *err, pnm_reader *r, const char *what, uint32_t *out)
{
    skip_space_and_comments(r);
    if (r->pos >= r->len)
        return sm_fail(err, SM_EFORMAT, "pnm: truncated data (expected %s)", what);
    uint8_t c = r->buf[r->pos];
    if (c < '0' || c > '9')
        return sm_fail(err, SM_EFORMAT, "pnm: expected %s, found byte 0x%02x", what, c);
    uint64_t v = 0;
    while (r->pos < r->len && r->buf[r->pos] >= '0' && r->buf[r->pos] <= '9') {
        v = v * 10 + (uint64_t)(r->buf[r->pos] - '0');
        if (v > PNM_MAX_NUMBER)
            return sm_fail(err, SM_EFORMAT, "pnm: %s is too large", what);
        r->pos++;
    }
    *out = (uint32_t)v;
    return SM_OK;
}

static sm_status read_header(sm_err *err, pnm_header *h, const uint8_t *buf, size_t len)
{
    if (len < 2 || buf[0] != 'P')
        return sm_fail(err, SM_EFORMAT, "pnm: bad magic number");
    switch (buf[1]) {
    case '2': h->ascii = 1; h->channels = 1; break;
    case '3': h->ascii = 1; h->channels = 3; break;
    case '5': h->ascii = 0; h->channels = 1; break;
    case '6': h->ascii = 0; h->channels = 3; break;
    default:  return sm_fail(err, SM_EFORMAT, "pnm: unsupported type P%c (only P2, P3, P5, P6)", buf[1]);
    }
    pnm_reader r = { buf, len, 2 };
    if (r.pos < len && !is_space(buf[r.pos]) && buf[r.pos] != '#')
        return sm_fail(err, SM_EFORMAT, "pnm: bad magic number");
    sm_status st;
    if ((st = read_number(err, &r, "width", &h->width)) != SM_OK) return st;
    if ((st = read_number(err, &r, "height", &h->height)) != SM_OK) return st;
    if ((st = read_number(err, &r, "maxval", &h->maxval)) != SM_OK) return st;
    if (h->maxval < 1 || h->maxval > 65535)
        return sm_fail(err, SM_EFORMAT, "pnm: maxval %u out of range 1..65535", (unsigned)h->maxval);
    /* Exactly one whitespace byte separates maxval from a binary raster. */
    if (r.pos >= len)
        return sm_fail(err, SM_EFORMAT, "pnm: truncated data (no pixel data)");
    if (!is_space(buf[r.pos]))
        return sm_fail(err, SM_EFORMAT, "pnm: expected whitespace after maxval");
    h->raster = r.pos + 1;
    return SM_OK;
}

sm_status sm_pnm_probe(sm_err *err, sm_image_info *info, const uint8_t *buf, size_t len)
{
    pnm_header h;
    sm_status st = read_header(err, &h, buf, len);
    if (st != SM_OK)
        return st;
    info->format = SM_FMT_PNM;
    info->width = (int)h.width;
    info->height = (int)h.height;
    info->channels = h.channels;
    return SM_OK;
}

/* round(v * 255 / maxval), halves up; v <= maxval <= 65535. */
static uint8_t scale_sample(uint32_t v, uint32_t maxval)
{
    if (maxval == 255)
        return (uint8_t)v;
    return (uint8_t)((2u * 255u * v + maxval) / (2u * maxval));
}

static sm_status sample_too_large(sm_err *err, uint32_t v, uint32_t maxval, size_t index)
{
    return sm_fail(err, SM_EFORMAT, "pnm: sample %u exceeds maxval %u (sample %zu)",
                   (unsigned)v, (unsigned)maxval, index);
}

static sm_status decode_binary(sm_err *err, uint8_t *out, size_t nsamples, const pnm_header *h,
                               const uint8_t *buf, size_t len)
{
    size_t bytes_per_sample = h->maxval > 255 ? 2 : 1;
    size_t have = len - h->raster;
    if (have / bytes_per_sample < nsamples)
        return sm_fail(err, SM_EFORMAT, "pnm: truncated pixel data (%zu of %zu bytes)",
                       have, nsamples * bytes_per_sample);
    const uint8_t *p = buf + h->raster;
    for (size_t i = 0; i < nsamples; i++) {
        uint32_t v = bytes_per_sample == 2 ? ((uint32_t)p[2 * i] << 8) | p[2 * i + 1] : p[i];
        if (v > h->maxval)
            return sample_too_large(err, v, h->maxval, i);
        out[i] = scale_sample(v, h->maxval);
    }
    return SM_OK;
}

static sm_status decode_ascii(sm_err *err, uint8_t *out, size_t nsamples, const pnm_header *h,
                              const uint8_t *buf, size_t len)
{
    pnm_reader r = { buf, len, h->raster };
    for (size_t i = 0; i < nsamples; i++) {
        uint32_t v;
        sm_status st = read_number(err, &r, "a sample", &v);
        if (st != SM_OK)
            return st;
        if (v > h->maxval)
            return sample_too_large(err, v, h->maxval, i);
        out[i] = scale_sample(v, h->maxval);
    }
    return SM_OK;
}

sm_status sm_pnm_decode(sm_err *err, sm_image *out, const uint8_t *buf, size_t len)
{
    pnm_header h;
    sm_status st = read_header(err, &h, buf, len);
    if (st != SM_OK)
        return st;
    if ((int)h.width != out->width || (int)h.height != out->height || h.channels != out->channels)
        return sm_fail(err, SM_EINVAL, "pnm: decode target does not match the header");
    size_t nsamples = (size_t)h.width * h.height * (size_t)h.channels;
    if (h.ascii)
        return decode_ascii(err, out->data, nsamples, &h, buf, len);
    return decode_binary(err, out->data, nsamples, &h, buf, len);
}

/* ---- encoder --------------------------------------------------------------- */

sm_status sm_pnm_encode(sm_err *err, uint8_t **out, size_t *out_len, const sm_image *img, int want_channels)
{
    *out = NULL;
    *out_len = 0;
    int channels = want_channels;
    if (channels == 0)
        channels = img->channels <= 2 ? 1 : 3;
    if (channels != 1 && channels != 3)
        return sm_fail(err, SM_EINVAL, "pnm: can write 1 or 3 channels, not %d", channels);
    char header[48];
    int hlen = snprintf(header, sizeof header, "P%c\n%d %d\n255\n",
                        channels == 1 ? '5' : '6', img->width, img->height);
    size_t row_bytes = (size_t)img->width * (size_t)channels;
    size_t total = (size_t)hlen + row_bytes * (size_t)img->height;
    uint8_t *buf = malloc(total);
    if (!buf)
        return sm_fail(err, SM_ENOMEM, "pnm: out of memory (%zu bytes)", total);
    memcpy(buf, header, (size_t)hlen);
    size_t src_row = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++)
        sm_pixels_convert(buf + hlen + (size_t)y * row_bytes, channels,
                          img->data + (size_t)y * src_row, img->channels, (size_t)img->width);
    *out = buf;
    *out_len = total;
    return SM_OK;
}
