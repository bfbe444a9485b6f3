/*
 * test_exif.c — plain-C tests of EXIF orientation: sm_exif_orientation and
 * sm_jpeg_exif_orientation on buffers malloc'd to their exact length (so
 * AddressSanitizer catches any read past the end) for every truncation and
 * every single-byte mutation of valid EXIF, and sm_image_decode with
 * apply_orientation against the stored decode turned here, pixel by pixel,
 * for all 8 orientations, both byte orders and both JPEG reconstructions.
 */
#include <stdlib.h>
#include <string.h>
#include "ctest.h"
#include "sm.h"

static void put16(uint8_t *p, unsigned v, int le)
{
    if (le) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
    else    { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
}

static void put32(uint8_t *p, uint32_t v, int le)
{
    put16(p + (le ? 0 : 2), v & 0xFFFF, le);
    put16(p + (le ? 2 : 0), v >> 16, le);
}

/* TIFF data with IFD0 = { Make (ASCII, offset 100), Orientation SHORT 1 = v }
 * and a zero next-IFD offset: 8 + 2 + 2*12 + 4 = 38 bytes. */
#define TIFF_LEN 38
#define TIFF_ENTRIES_END 34
static void make_tiff(uint8_t t[TIFF_LEN], int le, unsigned v)
{
    memset(t, 0, TIFF_LEN);
    t[0] = t[1] = le ? 'I' : 'M';
    put16(t + 2, 42, le);
    put32(t + 4, 8, le);
    put16(t + 8, 2, le);
    uint8_t *e = t + 10;
    put16(e, 0x010F, le); put16(e + 2, 2, le); put32(e + 4, 6, le); put32(e + 8, 100, le);
    e += 12;
    put16(e, 0x0112, le); put16(e + 2, 3, le); put32(e + 4, 1, le); put16(e + 8, v, le);
}

/* sm_exif_orientation on an exact-size heap copy of the first n bytes. */
static int orientation_of(const uint8_t *t, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, t, n);
    int o = sm_exif_orientation(copy, n);
    free(copy);
    return o;
}

static void test_tiff_values(void)
{
    uint8_t t[TIFF_LEN];
    for (int le = 0; le <= 1; le++) {
        for (unsigned v = 0; v <= 10; v++) {
            make_tiff(t, le, v);
            CHECK(orientation_of(t, TIFF_LEN) == (v >= 1 && v <= 8 ? (int)v : 1));
        }
        make_tiff(t, le, 0xFFFF);
        CHECK(orientation_of(t, TIFF_LEN) == 1);
        make_tiff(t, le, 6);
        put16(t + 22 + 2, 4, le);          /* LONG */
        CHECK(orientation_of(t, TIFF_LEN) == 1);
        make_tiff(t, le, 6);
        put32(t + 22 + 4, 0, le);          /* count 0 */
        CHECK(orientation_of(t, TIFF_LEN) == 1);
        make_tiff(t, le, 6);
        put16(t + 8, 60000, le);           /* 60000 entries claimed */
        CHECK(orientation_of(t, TIFF_LEN) == 1);
        make_tiff(t, le, 6);
        put32(t + 4, 0xFFFFFFFFu, le);     /* IFD offset far outside */
        CHECK(orientation_of(t, TIFF_LEN) == 1);
        put32(t + 4, TIFF_LEN - 1, le);    /* count would straddle the end */
        CHECK(orientation_of(t, TIFF_LEN) == 1);
        put32(t + 4, TIFF_LEN, le);
        CHECK(orientation_of(t, TIFF_LEN) == 1);
    }
    CHECK(sm_exif_orientation(NULL, 0) == 1);
}

static void test_tiff_truncation_and_mutation(void)
{
    uint8_t t[TIFF_LEN];
    for (int le = 0; le <= 1; le++) {
        for (unsigned v = 1; v <= 8; v++) {
            make_tiff(t, le, v);
            for (size_t n = 0; n <= TIFF_LEN; n++)
                CHECK(orientation_of(t, n) == (n >= TIFF_ENTRIES_END ? (int)v : 1));
            /* every byte set to every value: any answer 1..8, no stray read */
            uint8_t *copy = malloc(TIFF_LEN);
            if (!copy) abort();
            int bad = 0;
            for (size_t i = 0; i < TIFF_LEN; i++) {
                for (unsigned b = 0; b < 256; b++) {
                    memcpy(copy, t, TIFF_LEN);
                    copy[i] = (uint8_t)b;
                    int o = sm_exif_orientation(copy, TIFF_LEN);
                    bad += o < 1 || o > 8;
                }
            }
            free(copy);
            CHECK(bad == 0);
        }
    }
}

/* SOI, APP0 (JFIF), APP1 Exif with make_tiff(le, v), then SOS: a JPEG head. */
static size_t make_head(uint8_t *buf, int le, unsigned v)
{
    static const uint8_t app0[] = { 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0 };
    size_t n = 0;
    buf[n++] = 0xFF; buf[n++] = 0xD8;
    memcpy(buf + n, app0, sizeof app0); n += sizeof app0;
    buf[n++] = 0xFF; buf[n++] = 0xFF;                 /* a fill byte */
    buf[n++] = 0xE1;
    put16(buf + n, 2 + 6 + TIFF_LEN, 0); n += 2;
    memcpy(buf + n, "Exif\0\0", 6); n += 6;
    make_tiff(buf + n, le, v); n += TIFF_LEN;
    buf[n++] = 0xFF; buf[n++] = 0xDA; buf[n++] = 0; buf[n++] = 2;
    return n;
}

static int jpeg_orientation_of(const uint8_t *b, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) abort();
    memcpy(copy, b, n);
    int o = sm_jpeg_exif_orientation(copy, n);
    free(copy);
    return o;
}

static void test_jpeg_markers(void)
{
    uint8_t b[128];
    for (int le = 0; le <= 1; le++) {
        size_t n = make_head(b, le, 6);
        CHECK(jpeg_orientation_of(b, n) == 6);
        size_t exif_end = 2 + 18 + 3 + 2 + 6 + TIFF_LEN;
        for (size_t k = 0; k < n; k++)  /* cut: the segment must be whole */
            CHECK(jpeg_orientation_of(b, k) == (k >= exif_end ? 6 : 1));
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            for (unsigned v = 0; v < 256; v++) {
                uint8_t saved = b[i];
                b[i] = (uint8_t)v;
                int o = jpeg_orientation_of(b, n);
                bad += o < 1 || o > 8;
                b[i] = saved;
            }
        }
        CHECK(bad == 0);
    }
    /* the Exif segment after the first scan is not looked for */
    uint8_t c[128];
    size_t n = make_head(c, 1, 6);
    memcpy(b, c, 20);
    memcpy(b + 20, "\xFF\xDA\x00\x02", 4);
    memcpy(b + 24, c + 20, n - 20);
    CHECK(jpeg_orientation_of(b, n + 4) == 1);
    CHECK(sm_jpeg_exif_orientation(NULL, 0) == 1);
    CHECK(jpeg_orientation_of((const uint8_t *)"\xFF\xD8", 2) == 1);
}

/* ---- decode ------------------------------------------------------------------------ */

/* in turned by orientation o, as the standard defines it: out(X, Y). */
static void turn(sm_image *out, const sm_image *in, int o)
{
    int W = in->width, H = in->height, c = in->channels;
    for (int Y = 0; Y < out->height; Y++) {
        for (int X = 0; X < out->width; X++) {
            int x, y;  /* the stored pixel shown at (X, Y) */
            switch (o) {
            case 2:  x = W - 1 - X; y = Y;         break;
            case 3:  x = W - 1 - X; y = H - 1 - Y; break;
            case 4:  x = X;         y = H - 1 - Y; break;
            case 5:  x = Y;         y = X;         break;
            case 6:  x = Y;         y = H - 1 - X; break;  /* 90 clockwise: the bottom-left is shown top-left */
            case 7:  x = W - 1 - Y; y = H - 1 - X; break;
            case 8:  x = W - 1 - Y; y = X;         break;  /* 90 counter-clockwise: the top-right is shown top-left */
            default: x = X;         y = Y;         break;
            }
            memcpy(out->data + ((size_t)Y * out->width + X) * c, in->data + ((size_t)y * W + x) * c, (size_t)c);
        }
    }
}

/* jpeg with an Exif APP1 (orientation v, byte order le) after SOI. */
static uint8_t *with_exif(const uint8_t *jpeg, size_t len, int le, unsigned v, size_t *out_len)
{
    size_t seg = 2 + 2 + 6 + TIFF_LEN;
    uint8_t *b = malloc(len + seg);
    if (!b) abort();
    b[0] = 0xFF; b[1] = 0xD8; b[2] = 0xFF; b[3] = 0xE1;
    put16(b + 4, (unsigned)(seg - 2), 0);
    memcpy(b + 6, "Exif\0\0", 6);
    make_tiff(b + 12, le, v);
    memcpy(b + 2 + seg, jpeg + 2, len - 2);
    *out_len = len + seg;
    return b;
}

static void test_decode_turns(void)
{
    enum { W = 21, H = 13 };
    for (int channels = 1; channels <= 3; channels += 2) {
        uint8_t px[W * H * 3];
        for (int i = 0; i < W * H * channels; i++) px[i] = (uint8_t)(i * 37 + (i / 7) * 11);
        sm_image src = { W, H, channels, px };
        sm_err err;
        uint8_t *jpeg = NULL;
        size_t jlen = 0;
        CHECK(sm_jpeg_encode(&err, &jpeg, &jlen, &src, 95) == SM_OK);
        if (!jpeg) return;
        for (int js = 0; js <= 1; js++) {
            uint8_t stored_px[W * H * 3], want_px[W * H * 3], got_px[W * H * 3];
            sm_image_info info;
            CHECK(sm_image_probe(&err, &info, jpeg, jlen, SM_IMAGE_DEFAULT_MAX_PIXELS) == SM_OK);
            CHECK(info.orientation == 1);
            sm_image stored = { W, H, channels, stored_px };
            sm_decode_opts plain = { .jpeg_js_compat = js };
            CHECK(sm_image_decode(&err, &stored, &info, jpeg, jlen, &plain) == SM_OK);
            for (int le = 0; le <= 1; le++) {
                for (int o = 1; o <= 8; o++) {
                    size_t len;
                    uint8_t *data = with_exif(jpeg, jlen, le, (unsigned)o, &len);
                    CHECK(sm_image_probe(&err, &info, data, len, SM_IMAGE_DEFAULT_MAX_PIXELS) == SM_OK);
                    CHECK(info.orientation == o && info.width == W && info.height == H);
                    sm_decode_opts opts = { .jpeg_js_compat = js, .apply_orientation = 1 };
                    int w, h;
                    sm_image_decoded_size(&info, &opts, &w, &h);
                    CHECK(o >= 5 ? (w == H && h == W) : (w == W && h == H));
                    sm_image want = { w, h, channels, want_px }, got = { w, h, channels, got_px };
                    turn(&want, &stored, o);
                    memset(got_px, 0xAB, sizeof got_px);
                    CHECK(sm_image_decode(&err, &got, &info, data, len, &opts) == SM_OK);
                    CHECK(memcmp(got_px, want_px, (size_t)W * H * channels) == 0);
                    /* not applied: as stored */
                    sm_image as_stored = { W, H, channels, got_px };
                    CHECK(sm_image_decode(&err, &as_stored, &info, data, len, &plain) == SM_OK);
                    CHECK(memcmp(got_px, stored_px, (size_t)W * H * channels) == 0);
                    CHECK(sm_image_decode(&err, &as_stored, &info, data, len, NULL) == SM_OK);
                    /* a target of the wrong size is refused */
                    if (o >= 5)
                        CHECK(sm_image_decode(&err, &as_stored, &info, data, len, &opts) == SM_EINVAL);
                    free(data);
                }
            }
        }
        free(jpeg);
    }
}

static void test_decode_refuses_bad_orientation(void)
{
    uint8_t px[4 * 3 * 3] = { 0 };
    sm_image src = { 4, 3, 3, px };
    sm_err err;
    uint8_t *jpeg = NULL;
    size_t jlen = 0;
    CHECK(sm_jpeg_encode(&err, &jpeg, &jlen, &src, 90) == SM_OK);
    if (!jpeg) return;
    sm_image_info info;
    CHECK(sm_image_probe(&err, &info, jpeg, jlen, 100) == SM_OK);
    sm_decode_opts opts = { .apply_orientation = 1 };
    uint8_t out_px[4 * 3 * 3];
    sm_image out = { 4, 3, 3, out_px };
    info.orientation = 9;
    CHECK(sm_image_decode(&err, &out, &info, jpeg, jlen, &opts) == SM_EINVAL);
    info.orientation = 0;
    CHECK(sm_image_decode(&err, &out, &info, jpeg, jlen, &opts) == SM_EINVAL);
    CHECK(sm_jpeg_decode(&err, &out, jpeg, jlen, 0, 9) == SM_EINVAL);
    free(jpeg);
}

int main(void)
{
    RUN(test_tiff_values);
    RUN(test_tiff_truncation_and_mutation);
    RUN(test_jpeg_markers);
    RUN(test_decode_turns);
    RUN(test_decode_refuses_bad_orientation);
    return ctest_summary("exif");
}
