/*
 * test_image.c — plain-C tests of the image core: probe/decode of a PNG and
 * PGMs built here in memory (the PNG with stored deflate blocks, its CRC-32
 * and Adler-32 computed here, so no encoder of ours is involved), errors on
 * every truncation (including the longjmp paths of libpng and libjpeg, which
 * must not leak: run under ASan with detect_leaks=1 and under valgrind),
 * encoder round trips, and numeric checks of resize, crop, warp and the
 * tensor conversions.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "sm.h"

/* ---- a tiny PNG writer (stored deflate, filter 0) ----------------------------------- */

static uint32_t crc32_of(const uint8_t *p, size_t n, uint32_t crc)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
    }
    return ~crc;
}

static uint32_t adler32_of(const uint8_t *p, size_t n)
{
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return (b << 16) | a;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Appends a chunk at buf + *len. */
static void put_chunk(uint8_t *buf, size_t *len, const char *type, const uint8_t *data, uint32_t n)
{
    uint8_t *p = buf + *len;
    put_be32(p, n);
    memcpy(p + 4, type, 4);
    if (n) memcpy(p + 8, data, n);
    put_be32(p + 8 + n, crc32_of(p + 4, 4 + (size_t)n, 0));
    *len += 12 + (size_t)n;
}

/* An 8-bit PNG of colour type 0 (gray), 2 (RGB) or 6 (RGBA); returns its
 * malloc'd bytes; *idat_end is the offset just past the IDAT chunk. */
static uint8_t *make_png(size_t *out_len, size_t *idat_end, int w, int h, int color_type, const uint8_t *pixels)
{
    int channels = color_type == 0 ? 1 : color_type == 2 ? 3 : 4;
    size_t row = (size_t)w * (size_t)channels, raw_len = (row + 1) * (size_t)h;
    uint8_t *raw = malloc(raw_len);
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * (row + 1)] = 0; /* filter: none */
        memcpy(raw + (size_t)y * (row + 1) + 1, pixels + (size_t)y * row, row);
    }
    /* zlib stream: header, one stored final block, Adler-32 */
    size_t z_len = 2 + 5 + raw_len + 4;
    uint8_t *z = malloc(z_len);
    z[0] = 0x78; z[1] = 0x01;
    z[2] = 0x01;
    z[3] = (uint8_t)raw_len; z[4] = (uint8_t)(raw_len >> 8);
    z[5] = (uint8_t)~raw_len; z[6] = (uint8_t)(~raw_len >> 8);
    memcpy(z + 7, raw, raw_len);
    put_be32(z + 7 + raw_len, adler32_of(raw, raw_len));

    uint8_t *png = malloc(8 + 25 + 12 + z_len + 12);
    static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A };
    memcpy(png, sig, 8);
    size_t len = 8;
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8; ihdr[9] = (uint8_t)color_type; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
    put_chunk(png, &len, "IHDR", ihdr, 13);
    put_chunk(png, &len, "IDAT", z, (uint32_t)z_len);
    *idat_end = len;
    put_chunk(png, &len, "IEND", NULL, 0);
    free(raw);
    free(z);
    *out_len = len;
    return png;
}

/* Probes and decodes buf into a fresh malloc'd image (freed by the caller
 * through img->data). */
static sm_status decode_all(sm_err *err, sm_image *img, const uint8_t *buf, size_t len, uint64_t max_pixels)
{
    sm_image_info info;
    memset(img, 0, sizeof *img);
    sm_status st = sm_image_probe(err, &info, buf, len, max_pixels);
    if (st != SM_OK)
        return st;
    img->width = info.width;
    img->height = info.height;
    img->channels = info.channels;
    img->data = malloc((size_t)info.width * (size_t)info.height * (size_t)info.channels);
    st = sm_image_decode(err, img, &info, buf, len, NULL);
    return st;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* ---- decoding ---------------------------------------------------------------------------- */

static void test_sniff(void)
{
    CHECK(sm_image_sniff((const uint8_t *)"\xFF\xD8\xFF\xE0", 4) == SM_FMT_JPEG);
    CHECK(sm_image_sniff((const uint8_t *)"\x89PNG\r\n\x1a\n", 8) == SM_FMT_PNG);
    CHECK(sm_image_sniff((const uint8_t *)"\x89PNG\r\n\x1a", 7) == SM_FMT_UNKNOWN);
    CHECK(sm_image_sniff((const uint8_t *)"P5", 2) == SM_FMT_PNM);
    CHECK(sm_image_sniff((const uint8_t *)"P4", 2) == SM_FMT_UNKNOWN);
    CHECK(sm_image_sniff((const uint8_t *)"", 0) == SM_FMT_UNKNOWN);
    CHECK(strcmp(sm_image_format_name(SM_FMT_PNG), "png") == 0);
    CHECK(strcmp(sm_image_format_name(SM_FMT_JPEG), "jpeg") == 0);
    CHECK(strcmp(sm_image_format_name(SM_FMT_PNM), "pnm") == 0);
}

static void test_png_decode_and_truncation(void)
{
    static const int types[3] = { 0, 2, 6 };
    for (int t = 0; t < 3; t++) {
        int w = 5, h = 3, c = types[t] == 0 ? 1 : types[t] == 2 ? 3 : 4;
        uint8_t px[5 * 3 * 4];
        fill_pattern(px, sizeof px, 7u + (unsigned)t);
        size_t len, idat_end;
        uint8_t *png = make_png(&len, &idat_end, w, h, types[t], px);
        sm_err err;
        sm_image_info info;
        CHECK(sm_image_probe(&err, &info, png, len, SM_IMAGE_DEFAULT_MAX_PIXELS) == SM_OK);
        CHECK(info.format == SM_FMT_PNG && info.width == w && info.height == h && info.channels == c);
        sm_image img;
        CHECK(decode_all(&err, &img, png, len, SM_IMAGE_DEFAULT_MAX_PIXELS) == SM_OK);
        CHECK(memcmp(img.data, px, (size_t)(w * h * c)) == 0);
        free(img.data);
        /* Every cut before the end of the pixel data fails, without leaks. */
        for (size_t cut = 0; cut < idat_end; cut++) {
            sm_status st = decode_all(&err, &img, png, cut, SM_IMAGE_DEFAULT_MAX_PIXELS);
            CHECK(st == SM_EFORMAT);
            free(img.data);
        }
        /* A flipped CRC in IDAT is refused. */
        png[idat_end - 1] ^= 0x55;
        CHECK(decode_all(&err, &img, png, len, SM_IMAGE_DEFAULT_MAX_PIXELS) == SM_EFORMAT);
        CHECK(strstr(err.msg, "png:") != NULL);
        free(img.data);
        free(png);
    }
}

static void test_png_limits(void)
{
    uint8_t px[1] = { 0 };
    size_t len, idat_end;
    uint8_t *png = make_png(&len, &idat_end, 1, 1, 0, px);
    sm_err err;
    sm_image_info info;
    CHECK(sm_image_probe(&err, &info, png, len, 0) == SM_ELIMIT);
    CHECK(strstr(err.msg, "limit") != NULL);
    /* Rewrite IHDR to 60000 x 60000 (and fix its CRC). */
    put_be32(png + 16, 60000);
    put_be32(png + 20, 60000);
    put_be32(png + 29, crc32_of(png + 12, 17, 0));
    CHECK(sm_image_probe(&err, &info, png, len, SM_IMAGE_DEFAULT_MAX_PIXELS) == SM_ELIMIT);
    CHECK(strstr(err.msg, "limit") != NULL);
    put_be32(png + 16, 70000);
    put_be32(png + 29, crc32_of(png + 12, 17, 0));
    CHECK(sm_image_probe(&err, &info, png, len, UINT64_MAX) == SM_ELIMIT);
    CHECK(strstr(err.msg, "65535") != NULL);
    free(png);
}

static void test_pgm(void)
{
    static const char p5[] = "P5\n# comment\n3 2\n255\n\x01\x02\x03\xfa\xfb\xfc";
    sm_err err;
    sm_image img;
    CHECK(decode_all(&err, &img, (const uint8_t *)p5, sizeof p5 - 1, 100) == SM_OK);
    CHECK(img.width == 3 && img.height == 2 && img.channels == 1);
    CHECK(img.data[0] == 1 && img.data[3] == 0xfa && img.data[5] == 0xfc);
    free(img.data);
    for (size_t cut = 0; cut < sizeof p5 - 1; cut++) {
        CHECK(decode_all(&err, &img, (const uint8_t *)p5, cut, 100) != SM_OK);
        free(img.data);
    }
    /* ASCII with maxval 1000: round(v * 255 / 1000) */
    static const char p2[] = "P2 4 1 1000\n0 2 500 1000\n";
    CHECK(decode_all(&err, &img, (const uint8_t *)p2, sizeof p2 - 1, 100) == SM_OK);
    CHECK(img.data[0] == 0 && img.data[1] == 1 && img.data[2] == 128 && img.data[3] == 255);
    free(img.data);
    /* 16-bit binary PPM */
    static const char p6[] = "P6 1 1 65535\n\x00\x00\x80\x80\xff\xff";
    CHECK(decode_all(&err, &img, (const uint8_t *)p6, sizeof p6 - 1, 100) == SM_OK);
    CHECK(img.channels == 3 && img.data[0] == 0 && img.data[1] == 128 && img.data[2] == 255);
    free(img.data);
    /* sample above maxval, giant header */
    static const char bad[] = "P5 1 1 10\n\x0b";
    CHECK(decode_all(&err, &img, (const uint8_t *)bad, sizeof bad - 1, 100) == SM_EFORMAT);
    free(img.data);
    static const char giant[] = "P5 100000 100000 255\n";
    CHECK(decode_all(&err, &img, (const uint8_t *)giant, sizeof giant - 1, SM_IMAGE_DEFAULT_MAX_PIXELS) == SM_ELIMIT);
    CHECK(strstr(err.msg, "limit") != NULL);
    CHECK(img.data == NULL);
}

static void test_garbage(void)
{
    sm_err err;
    sm_image_info info;
    CHECK(sm_image_probe(&err, &info, (const uint8_t *)"", 0, 100) == SM_EFORMAT);
    CHECK(sm_image_probe(&err, &info, (const uint8_t *)"hello world", 11, 100) == SM_EFORMAT);
    CHECK(sm_image_probe(&err, &info, (const uint8_t *)"\xFF\xD8\xFF\x00\x00", 5, 100) == SM_EFORMAT);
    CHECK(strstr(err.msg, "jpeg:") != NULL);
}

/* ---- encoders ----------------------------------------------------------------------------- */

static void test_png_round_trip(void)
{
    for (int c = 1; c <= 4; c++) {
        uint8_t px[7 * 5 * 4];
        fill_pattern(px, sizeof px, (unsigned)c);
        sm_image img = { 7, 5, c, px };
        uint8_t *buf;
        size_t len;
        sm_err err;
        CHECK(sm_png_encode(&err, &buf, &len, &img) == SM_OK);
        sm_image back;
        CHECK(decode_all(&err, &back, buf, len, 100) == SM_OK);
        CHECK(back.channels == c && back.width == 7 && back.height == 5);
        CHECK(memcmp(back.data, px, (size_t)(7 * 5 * c)) == 0);
        free(back.data);
        free(buf);
    }
}

static void test_jpeg_round_trip_and_truncation(void)
{
    enum { W = 24, H = 16 };
    uint8_t px[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = px + (y * W + x) * 3;
            p[0] = (uint8_t)(x * 10); p[1] = (uint8_t)(y * 15); p[2] = (uint8_t)(128 + x - y);
        }
    sm_image img = { W, H, 3, px };
    uint8_t *buf;
    size_t len;
    sm_err err;
    CHECK(sm_jpeg_encode(&err, &buf, &len, &img, 0) == SM_EINVAL);
    CHECK(buf == NULL);
    CHECK(sm_jpeg_encode(&err, &buf, &len, &img, 95) == SM_OK);
    sm_image back;
    CHECK(decode_all(&err, &back, buf, len, 1000) == SM_OK);
    CHECK(back.channels == 3);
    double diff = 0;
    for (size_t i = 0; i < sizeof px; i++)
        diff += fabs((double)back.data[i] - px[i]);
    /* not a rounding bound: JPEG at quality 95 is lossy by design; its
     * quantisation (steps of 1 to 12 levels at q95) and 4:2:0 chroma
     * keep a smooth image within 2 levels on average (a quality
     * criterion on 8-bit pixels, with libjpeg's integer DCT) */
    CHECK(diff / sizeof px < 2.0);
    free(back.data);
    for (size_t cut = 0; cut < len; cut += (cut < 700 ? 1 : 7)) {
        CHECK(decode_all(&err, &back, buf, cut, 1000) != SM_OK);
        free(back.data);
    }
    free(buf);

    /* gray + alpha is written as gray */
    uint8_t ga[4 * 2 * 2] = { 10, 1, 20, 2, 30, 3, 40, 4, 50, 5, 60, 6, 70, 7, 80, 8 };
    sm_image gimg = { 4, 2, 2, ga };
    CHECK(sm_jpeg_encode(&err, &buf, &len, &gimg, 100) == SM_OK);
    CHECK(decode_all(&err, &back, buf, len, 1000) == SM_OK);
    CHECK(back.channels == 1);
    CHECK(abs(back.data[0] - 10) <= 3 && abs(back.data[7] - 80) <= 3); /* lossy, as above */
    free(back.data);
    free(buf);
}

static void test_pnm_encode(void)
{
    uint8_t px[2 * 1 * 4] = { 255, 0, 0, 9, 0, 0, 255, 9 };
    sm_image img = { 2, 1, 4, px };
    uint8_t *buf;
    size_t len;
    sm_err err;
    CHECK(sm_pnm_encode(&err, &buf, &len, &img, 1) == SM_OK);
    CHECK(len == 11 + 2 && memcmp(buf, "P5\n2 1\n255\n", 11) == 0);
    CHECK(buf[11] == 76 && buf[12] == 29); /* 601 luma of red and blue */
    free(buf);
    CHECK(sm_pnm_encode(&err, &buf, &len, &img, 0) == SM_OK);
    CHECK(memcmp(buf, "P6\n2 1\n255\n\xff\x00\x00\x00\x00\xff", 17) == 0 && len == 17);
    free(buf);
}

/* ---- geometry ------------------------------------------------------------------------------ */

static int image_equals(const sm_image *img, const uint8_t *want)
{
    return memcmp(img->data, want, (size_t)img->width * (size_t)img->height * (size_t)img->channels) == 0;
}

static void test_resize_2x2_to_4x4(void)
{
    uint8_t src_px[4] = { 0, 100, 200, 40 };
    sm_image src = { 2, 2, 1, src_px };
    uint8_t out_px[16];
    sm_image out = { 4, 4, 1, out_px };
    static const uint8_t bilinear[16] = { 0, 25, 75, 100, 50, 59, 76, 85, 150, 126, 79, 55, 200, 160, 80, 40 };
    static const uint8_t tf[16] = { 0, 50, 100, 100, 100, 85, 70, 70, 200, 120, 40, 40, 200, 120, 40, 40 };
    static const uint8_t nearest[16] = { 0, 0, 100, 100, 0, 0, 100, 100, 200, 200, 40, 40, 200, 200, 40, 40 };
    sm_image_resize(&out, &src, SM_RESIZE_BILINEAR);
    CHECK(image_equals(&out, bilinear));
    sm_image_resize(&out, &src, SM_RESIZE_AUTO);
    CHECK(image_equals(&out, bilinear));
    sm_image_resize(&out, &src, SM_RESIZE_TF);
    CHECK(image_equals(&out, tf));
    sm_image_resize(&out, &src, SM_RESIZE_NEAREST);
    CHECK(image_equals(&out, nearest));
    sm_image_resize(&out, &src, SM_RESIZE_AREA);
    CHECK(image_equals(&out, nearest));
}

static void test_resize_area(void)
{
    uint8_t px[16] = { 10, 20, 1, 2, 30, 41, 2, 2, 0, 0, 1, 2, 0, 1, 1, 2 };
    sm_image src = { 4, 4, 1, px };
    uint8_t o[4];
    sm_image out = { 2, 2, 1, o };
    sm_image_resize(&out, &src, SM_RESIZE_AREA);
    CHECK(o[0] == 25 && o[1] == 2 && o[2] == 0 && o[3] == 2);
    CHECK(sm_resize_pick(SM_RESIZE_AUTO, 4, 4, 2, 2) == SM_RESIZE_AREA);
    CHECK(sm_resize_pick(SM_RESIZE_AUTO, 4, 4, 3, 3) == SM_RESIZE_BILINEAR);
    CHECK(sm_resize_pick(SM_RESIZE_AUTO, 4, 9, 4, 4) == SM_RESIZE_AREA);
    uint8_t row[3] = { 0, 90, 180 }, r2[2];
    sm_image s3 = { 3, 1, 1, row }, o2 = { 2, 1, 1, r2 };
    sm_image_resize(&o2, &s3, SM_RESIZE_AREA);
    CHECK(r2[0] == 30 && r2[1] == 150);
}

static void test_tensor_resize_tf(void)
{
    float in_data[4] = { 0, 1, 2, 3 }, out_data[16];
    int64_t in_shape[3] = { 1, 2, 2 }, out_shape[3] = { 1, 4, 4 };
    sm_tensor in, out;
    sm_tensor_init(&in, in_data, 3, in_shape);
    sm_tensor_init(&out, out_data, 3, out_shape);
    sm_err err;
    CHECK(sm_tensor_resize_check(&err, &out, &in) == SM_OK);
    sm_tensor_resize(&out, &in, SM_RESIZE_TF);
    static const float want[16] = { 0, .5f, 1, 1, 1, 1.5f, 2, 2, 2, 2.5f, 3, 3, 2, 2.5f, 3, 3 };
    /* taps at 0 and 1/2 of integers: every product and sum is exact */
    for (int i = 0; i < 16; i++)
        CHECK(out_data[i] == want[i]);
    int64_t bad_shape[3] = { 2, 4, 4 };
    sm_tensor bad;
    sm_tensor_init(&bad, out_data, 3, bad_shape);
    CHECK(sm_tensor_resize_check(&err, &bad, &in) == SM_EINVAL);
    int64_t flat_shape[2] = { 2, 2 };
    sm_tensor flat;
    sm_tensor_init(&flat, in_data, 2, flat_shape);
    CHECK(sm_tensor_resize_check(&err, &out, &flat) == SM_EINVAL);
}

static void test_region(void)
{
    uint8_t px[6] = { 1, 2, 3, 4, 5, 6 };
    sm_image src = { 3, 2, 1, px };
    uint8_t o[12];
    sm_image out = { 4, 3, 1, o };
    static const uint8_t zero[4] = { 0, 0, 0, 0 }, nine[4] = { 9, 9, 9, 9 };
    sm_image_region(&out, &src, -1, -1, zero);
    static const uint8_t want[12] = { 0, 0, 0, 0, 0, 1, 2, 3, 0, 4, 5, 6 };
    CHECK(image_equals(&out, want));
    sm_image_region(&out, &src, 100, 0, nine);
    for (int i = 0; i < 12; i++) CHECK(o[i] == 9);
    sm_image_region(&out, &src, -100, 0, zero);
    for (int i = 0; i < 12; i++) CHECK(o[i] == 0);
    uint8_t f[6];
    sm_image flipped = { 3, 2, 1, f };
    sm_image_flip(&flipped, &src);
    static const uint8_t want_flip[6] = { 3, 2, 1, 6, 5, 4 };
    CHECK(image_equals(&flipped, want_flip));
}

static void test_warp(void)
{
    uint8_t px[12];
    fill_pattern(px, sizeof px, 3);
    sm_image src = { 4, 3, 1, px };
    static const uint8_t border[4] = { 7, 7, 7, 7 };
    double m[6] = { 1, 0, 1, 0, 1, 2 }, inv[6];
    sm_err err;
    CHECK(sm_affine_invert(&err, inv, m) == SM_OK);
    uint8_t o[12];
    sm_image out = { 4, 3, 1, o };
    sm_image_warp_affine(&out, &src, inv, border);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 4; x++)
            CHECK(o[y * 4 + x] == ((x >= 1 && y >= 2) ? px[(y - 2) * 4 + x - 1] : 7));
    /* quarter turn: (x, y) -> (h - 1 - y, x), output 3 x 4 */
    double rot[6] = { 0, -1, 2, 1, 0, 0 };
    CHECK(sm_affine_invert(&err, inv, rot) == SM_OK);
    uint8_t r[12];
    sm_image rotated = { 3, 4, 1, r };
    sm_image_warp_affine(&rotated, &src, inv, border);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 3; x++)
            CHECK(r[y * 3 + x] == px[(2 - x) * 4 + y]);
    double singular[6] = { 1, 2, 0, 2, 4, 0 };
    CHECK(sm_affine_invert(&err, inv, singular) == SM_EINVAL);
    double nan_m[6] = { 1, 0, NAN, 0, 1, 0 };
    CHECK(sm_affine_invert(&err, inv, nan_m) == SM_EINVAL);
}

static void test_convert_and_tensors(void)
{
    uint8_t rgba[8] = { 255, 0, 0, 9, 10, 200, 30, 8 }, g[2], ga[4], rgb[6];
    sm_pixels_convert(g, 1, rgba, 4, 2);
    CHECK(g[0] == 76 && g[1] == 124);
    sm_pixels_convert(ga, 2, rgba, 4, 2);
    CHECK(ga[0] == 76 && ga[1] == 9 && ga[3] == 8);
    sm_pixels_convert(rgb, 3, g, 1, 2);
    CHECK(rgb[0] == 76 && rgb[2] == 76 && rgb[3] == 124);

    uint8_t px[6] = { 0, 51, 255, 255, 102, 0 };
    sm_image img = { 2, 1, 3, px };
    float data[6];
    int64_t shape[3] = { 3, 1, 2 };
    sm_tensor t;
    sm_tensor_init(&t, data, 3, shape);
    sm_err err;
    CHECK(sm_image_to_tensor_check(&err, &t, &img) == SM_OK);
    double mean[4] = { 0, 0, 0, 0 }, std[4] = { 1, 1, 1, 1 };
    sm_image_to_tensor(&t, &img, 1.0 / 255, mean, std);
    /* (p scale - mean) / std in double (3 roundings, none for 0), then
     * rounded once to float: 51/255 is 1/5 */
    CHECK(data[0] == 0);   /* channel 0, x = 0 */
    CHECK_BOUND(data[1], 1, ctest_round_bound(1, 1, 3));   /* channel 0, x = 1 */
    CHECK_BOUND(data[2], 0.2, ctest_round_bound(0.2, 0.2, 3));
    uint8_t back_px[6];
    sm_image back = { 2, 1, 3, back_px };
    CHECK(sm_image_from_tensor_check(&err, &back, &t) == SM_OK);
    sm_image_from_tensor(&back, &t, 1.0 / 255, mean, std);
    CHECK(memcmp(back_px, px, 6) == 0);
    sm_image wrong = { 1, 2, 3, back_px };
    CHECK(sm_image_from_tensor_check(&err, &wrong, &t) == SM_EINVAL);
}

int main(void)
{
    RUN(test_sniff);
    RUN(test_png_decode_and_truncation);
    RUN(test_png_limits);
    RUN(test_pgm);
    RUN(test_garbage);
    RUN(test_png_round_trip);
    RUN(test_jpeg_round_trip_and_truncation);
    RUN(test_pnm_encode);
    RUN(test_resize_2x2_to_4x4);
    RUN(test_resize_area);
    RUN(test_tensor_resize_tf);
    RUN(test_region);
    RUN(test_warp);
    RUN(test_convert_and_tensors);
    return ctest_summary("image");
}
