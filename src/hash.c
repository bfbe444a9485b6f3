/*
 * hash.c — CRC-32 (IEEE 802.3, zlib's crc32()) and SHA-256 (FIPS 180-4,
 * written from the specification).
 *
 * CRC-32: reflected polynomial 0xEDB88320, initial value 0xFFFFFFFF, final
 *   XOR 0xFFFFFFFF; crc32("123456789") = CBF43926. zlib computes it;
 *   sm_crc32_update(crc, ...) continues a running checksum: start with
 *   crc = 0 and pass each piece in order.
 * SHA-256: 512-bit blocks, message padded with 0x80, zeros and the bit
 *   length as a 64-bit big-endian integer; 64 rounds per block with the
 *   constants K (fractional parts of the cube roots of the first 64 primes).
 */
#include <string.h>
#include <zlib.h>
#include "hash.h"

/* ---- CRC-32 ------------------------------------------------------------- */

/* zlib's crc32() takes a uInt length (32 bits): longer buffers go in
 * pieces of at most 1 GiB, each continuing the running value. */
#define CRC_CHUNK ((size_t)1 << 30)

uint32_t sm_crc32_update(uint32_t crc, const void *buf, size_t len)
{
    const Bytef *p = buf;
    uLong c = crc;
    while (len > 0) {
        size_t n = len < CRC_CHUNK ? len : CRC_CHUNK;
        c = crc32(c, p, (uInt)n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

uint32_t sm_crc32(const void *buf, size_t len)
{
    return sm_crc32_update(0, buf, len);
}

/* ---- SHA-256 ------------------------------------------------------------ */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K256[i] + w[i];
        uint32_t S0 = ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void sm_sha256_init(sm_sha256_ctx *s)
{
    static const uint32_t h0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    };
    memcpy(s->h, h0, sizeof h0);
    s->total = 0;
    s->used = 0;
}

void sm_sha256_update(sm_sha256_ctx *s, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    s->total += len;
    if (s->used > 0) {
        size_t take = 64 - s->used < len ? 64 - s->used : len;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        len -= take;
        if (s->used < 64) return;
        sha256_block(s->h, s->block);
        s->used = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha256_block(s->h, p);
    memcpy(s->block, p, len);
    s->used = len;
}

void sm_sha256_final(sm_sha256_ctx *s, uint8_t digest[32])
{
    uint64_t bits = s->total * 8;
    uint8_t pad[72] = {0x80};
    /* 0x80, then zeros up to 56 mod 64, then the 8-byte length. */
    size_t padlen = (s->used < 56 ? 56 - s->used : 120 - s->used);
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t saved = s->total;
    sm_sha256_update(s, pad, padlen + 8);
    s->total = saved;
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(s->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sm_sha256(uint8_t digest[32], const void *buf, size_t len)
{
    sm_sha256_ctx s;
    sm_sha256_init(&s);
    sm_sha256_update(&s, buf, len);
    sm_sha256_final(&s, digest);
}

void sm_hex(char *out, const uint8_t *bytes, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}
