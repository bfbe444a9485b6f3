/*
 * jpeg_js_idct.c — the inverse DCT of jpeg-js (the JPEG decoder face-api
 * uses in Node; it comes from pdf.js), for decoding JPEGs to the very pixels
 * face-api saw (sm_decode_opts.jpeg_js_compat).
 *
 * Algorithm (Loeffler, Ligtenberg & Moschytz, 11 multiplications): one 1-D
 * pass over the rows with constants scaled by 2^12 and 8 fractional bits
 * kept, then one over the columns, then sample = clamp(128 + ((p + 8) >> 4)).
 * The rounding of every step is jpeg-js's: JavaScript computes the products
 * in doubles, and `>>` and stores into its Int32Array wrap to 32 bits, which
 * wrap32 reproduces (intermediates are held in 64 bits, so nothing here can
 * overflow, whatever the coefficients of a hostile file).
 */
#include "sm.h"

enum {
    COS1 = 4017, SIN1 = 799,    /* cos, sin (pi/16) * 4096 */
    COS3 = 3406, SIN3 = 2276,   /* cos, sin (3 pi/16) * 4096 */
    COS6 = 1567, SIN6 = 3784,   /* cos, sin (6 pi/16) * 4096 */
    SQRT2 = 5793, SQRT1D2 = 2896
};

/* JavaScript's ToInt32: the value modulo 2^32, as a signed 32-bit integer. */
static int64_t wrap32(int64_t v)
{
    uint32_t u = (uint32_t)(uint64_t)v;
    return u >= 0x80000000u ? (int64_t)u - 0x100000000LL : (int64_t)u;
}

/* JavaScript's a >> s: ToInt32, then an arithmetic shift. */
static int64_t sar(int64_t a, int s)
{
    int64_t w = wrap32(a);
    return w >= 0 ? w >> s : -((-w - 1) >> s) - 1; /* floor(w / 2^s) */
}

/* One 1-D pass over 8 values at stride `step`. first: the row pass (8
 * fractional bits: shifts 8 / 4 / 12), else the column pass (12 / 0 / 12). */
static void idct_1d(int64_t *p, int step, int first)
{
    int64_t *x[8];
    for (int k = 0; k < 8; k++) x[k] = p + k * step;
    if (*x[1] == 0 && *x[2] == 0 && *x[3] == 0 && *x[4] == 0 && *x[5] == 0 && *x[6] == 0 && *x[7] == 0) {
        int64_t t = first ? sar(SQRT2 * *x[0] + 512, 10) : sar(SQRT2 * *x[0] + 8192, 14);
        for (int k = 0; k < 8; k++) *x[k] = t;
        return;
    }
    int s1 = first ? 8 : 12;
    int64_t r1 = first ? 128 : 2048;
    int64_t v0 = sar(SQRT2 * *x[0] + r1, s1), v1 = sar(SQRT2 * *x[4] + r1, s1);
    int64_t v2 = *x[2], v3 = *x[6];
    int64_t v4 = sar(SQRT1D2 * (*x[1] - *x[7]) + r1, s1), v7 = sar(SQRT1D2 * (*x[1] + *x[7]) + r1, s1);
    int64_t v5 = first ? wrap32(*x[3] * 16) : *x[3], v6 = first ? wrap32(*x[5] * 16) : *x[5];
    int64_t t;
    /* stage 3 */
    t = sar(v0 - v1 + 1, 1); v0 = sar(v0 + v1 + 1, 1); v1 = t;
    t = sar(v2 * SIN6 + v3 * COS6 + r1, s1); v2 = sar(v2 * COS6 - v3 * SIN6 + r1, s1); v3 = t;
    t = sar(v4 - v6 + 1, 1); v4 = sar(v4 + v6 + 1, 1); v6 = t;
    t = sar(v7 + v5 + 1, 1); v5 = sar(v7 - v5 + 1, 1); v7 = t;
    /* stage 2 */
    t = sar(v0 - v3 + 1, 1); v0 = sar(v0 + v3 + 1, 1); v3 = t;
    t = sar(v1 - v2 + 1, 1); v1 = sar(v1 + v2 + 1, 1); v2 = t;
    t = sar(v4 * SIN3 + v7 * COS3 + 2048, 12); v4 = sar(v4 * COS3 - v7 * SIN3 + 2048, 12); v7 = t;
    t = sar(v5 * SIN1 + v6 * COS1 + 2048, 12); v5 = sar(v5 * COS1 - v6 * SIN1 + 2048, 12); v6 = t;
    /* stage 1 (stores into an Int32Array wrap) */
    *x[0] = wrap32(v0 + v7); *x[7] = wrap32(v0 - v7);
    *x[1] = wrap32(v1 + v6); *x[6] = wrap32(v1 - v6);
    *x[2] = wrap32(v2 + v5); *x[5] = wrap32(v2 - v5);
    *x[3] = wrap32(v3 + v4); *x[4] = wrap32(v3 - v4);
}

void sm_jpegjs_idct(uint8_t *out, ptrdiff_t stride, const int16_t coef[64], const uint16_t quant[64])
{
    int64_t p[64];
    for (int i = 0; i < 64; i++) p[i] = wrap32((int64_t)coef[i] * quant[i]);
    for (int row = 0; row < 8; row++) idct_1d(p + 8 * row, 1, 1);
    for (int col = 0; col < 8; col++) idct_1d(p + col, 8, 0);
    for (int y = 0; y < 8; y++)
        for (int x = 0; x < 8; x++) {
            int64_t s = 128 + sar(p[8 * y + x] + 8, 4);
            out[y * stride + x] = (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : s);
        }
}
