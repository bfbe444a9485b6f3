/*
 * hash.h — checksums and digests (hash.c): CRC-32 (zlib's) for the gallery
 * file's integrity, SHA-256 naming weights files and hashing web tokens.
 */
#ifndef SM_HASH_H
#define SM_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t sm_crc32(const void *buf, size_t len);
/* Running CRC-32: start from 0, feed the pieces in order. */
uint32_t sm_crc32_update(uint32_t crc, const void *buf, size_t len);

typedef struct { uint32_t h[8]; uint64_t total; uint8_t block[64]; size_t used; } sm_sha256_ctx;
void sm_sha256_init(sm_sha256_ctx *s);
void sm_sha256_update(sm_sha256_ctx *s, const void *buf, size_t len);
void sm_sha256_final(sm_sha256_ctx *s, uint8_t digest[32]);
void sm_sha256(uint8_t digest[32], const void *buf, size_t len);
/* out: 2n + 1 chars, lowercase hex, NUL-terminated. */
void sm_hex(char *out, const uint8_t *bytes, size_t n);

#endif
