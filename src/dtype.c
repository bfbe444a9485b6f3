/*
 * dtype.c — element types of serialized tensors and their conversion to
 * and from float32.
 *
 * Bytes are always little-endian and read one at a time, so the code works
 * at any alignment and on any host byte order. Conversions to float32:
 *
 *   F32   bit copy (NaN payloads, -0 and infinities survive)
 *   F16   IEEE binary16, sign | 5-bit exponent (bias 15) | 10-bit fraction:
 *           exponent 0:   (-1)^s * fraction * 2^-24        (zero, subnormal)
 *           exponent 31:  infinity (fraction 0) or NaN (payload kept)
 *           otherwise:    rebias the exponent to 127, shift the fraction by 13
 *   BF16  the upper 16 bits of a float32: shift left by 16
 *   F64   rounded to nearest float32 (IEEE conversion; overflow gives inf)
 *   I64 I32 I16 I8 U8   converted exactly when representable, else rounded
 *   BOOL  one byte, 0 -> 0.0, anything else -> 1.0
 */
#include <string.h>
#include "sm.h"

static const struct { const char *name; sm_dtype dt; size_t size; } dtype_table[] = {
    { "F32", SM_DTYPE_F32, 4 }, { "F16", SM_DTYPE_F16, 2 }, { "BF16", SM_DTYPE_BF16, 2 },
    { "F64", SM_DTYPE_F64, 8 }, { "I64", SM_DTYPE_I64, 8 }, { "I32", SM_DTYPE_I32, 4 },
    { "I16", SM_DTYPE_I16, 2 }, { "I8", SM_DTYPE_I8, 1 },   { "U8", SM_DTYPE_U8, 1 },
    { "BOOL", SM_DTYPE_BOOL, 1 },
};
#define DTYPE_COUNT (sizeof dtype_table / sizeof dtype_table[0])

sm_status sm_dtype_parse(sm_err *err, sm_dtype *out, const char *name)
{
    for (size_t i = 0; i < DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = dtype_table[i].dt;
            return SM_OK;
        }
    }
    return sm_fail(err, SM_EFORMAT,
                   "unsupported dtype '%.40s' (expected F32, F16, BF16, F64, I64, I32, I16, I8, U8 or BOOL)",
                   name);
}

const char *sm_dtype_name(sm_dtype dt)
{
    for (size_t i = 0; i < DTYPE_COUNT; i++)
        if (dtype_table[i].dt == dt) return dtype_table[i].name;
    return "?";
}

size_t sm_dtype_size(sm_dtype dt)
{
    for (size_t i = 0; i < DTYPE_COUNT; i++)
        if (dtype_table[i].dt == dt) return dtype_table[i].size;
    return 0;
}

/* ---- little-endian loads and stores ------------------------------------------ */

static uint16_t load_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t load_u64(const uint8_t *p)
{
    return (uint64_t)load_u32(p) | ((uint64_t)load_u32(p + 4) << 32);
}

static void store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static float f32_from_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Two's-complement reinterpretation without implementation-defined casts. */
static int64_t signed_from_bits(uint64_t v, int bits)
{
    uint64_t sign = (uint64_t)1 << (bits - 1);
    if (!(v & sign)) return (int64_t)v;
    uint64_t magnitude = ((~v) & (sign - 1)) + 1; /* 1 .. 2^(bits-1) */
    return -(int64_t)(magnitude - 1) - 1;
}

/* ---- half precision ------------------------------------------------------------ */

float sm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t fraction = h & 0x3ff;
    if (exponent == 0x1f) /* infinity or NaN: all-ones exponent, fraction kept */
        return f32_from_bits(sign | 0x7f800000u | (fraction << 13));
    if (exponent != 0)    /* normal: rebias 15 -> 127 */
        return f32_from_bits(sign | ((exponent + 112) << 23) | (fraction << 13));
    /* zero or subnormal: fraction * 2^-24, exact in float32 */
    float magnitude = (float)fraction * f32_from_bits(0x33800000u); /* 2^-24 */
    return sign ? -magnitude : magnitude;
}

float sm_bf16_to_f32(uint16_t b)
{
    return f32_from_bits((uint32_t)b << 16);
}

/* ---- bulk conversion ------------------------------------------------------------- */

static float decode_one(const uint8_t *p, sm_dtype dt)
{
    switch (dt) {
    case SM_DTYPE_F32:  return f32_from_bits(load_u32(p));
    case SM_DTYPE_F16:  return sm_f16_to_f32(load_u16(p));
    case SM_DTYPE_BF16: return sm_bf16_to_f32(load_u16(p));
    case SM_DTYPE_F64: {
        double d;
        uint64_t bits = load_u64(p);
        memcpy(&d, &bits, sizeof d);
        return (float)d;
    }
    case SM_DTYPE_I64:  return (float)signed_from_bits(load_u64(p), 64);
    case SM_DTYPE_I32:  return (float)signed_from_bits(load_u32(p), 32);
    case SM_DTYPE_I16:  return (float)signed_from_bits(load_u16(p), 16);
    case SM_DTYPE_I8:   return (float)signed_from_bits(p[0], 8);
    case SM_DTYPE_U8:   return (float)p[0];
    case SM_DTYPE_BOOL: return p[0] ? 1.0f : 0.0f;
    }
    return 0.0f;
}

void sm_decode_le(float *out, const uint8_t *src, int64_t n, sm_dtype dt)
{
    size_t size = sm_dtype_size(dt);
    for (int64_t i = 0; i < n; i++, src += size)
        out[i] = decode_one(src, dt);
}

void sm_encode_f32_le(uint8_t *out, const sm_tensor *t)
{
    int64_t n = sm_numel(t->ndim, t->shape);
    int64_t index[SM_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < n; k++) {
        const float *p = t->data;
        for (int d = 0; d < t->ndim; d++) p += index[d] * t->stride[d];
        store_u32(out + 4 * k, f32_bits(*p));
        /* advance the row-major odometer */
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++index[d] < t->shape[d]) break;
            index[d] = 0;
        }
    }
}

/* Affine dequantisation of stored integer codes (tfjs weight manifests):
 * x = (float)(q * scale + min), the product and the sum each rounded in
 * double, as JavaScript computes them, then once to float. The two double
 * operations stay separate (ISO C mode: GCC does not contract a*b+c into
 * an FMA), so the result is bit-for-bit the one face-api loads. */
void sm_dequantize(float *x, int64_t n, double scale, double min)
{
    for (int64_t i = 0; i < n; i++) {
        double prod = (double)x[i] * scale;
        x[i] = (float)(prod + min);
    }
}
