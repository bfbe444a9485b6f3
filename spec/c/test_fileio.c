/* Plain-C tests of fileio.c (atomic replacement, including a write that
 * fails half-way) and dtype.c (little-endian conversions to float32). */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctest.h"
#include "sm.h"

static char test_dir[256];

static void make_test_dir(void)
{
    snprintf(test_dir, sizeof test_dir, "/tmp/sm_test_fileio.XXXXXX");
    if (!mkdtemp(test_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Reads a whole file into buf; returns its length or -1. */
static long read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

/* Number of entries in test_dir other than . and .. */
static int count_entries(void)
{
    DIR *d = opendir(test_dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static sm_status write_two(sm_err *err, const char *path, const char *a, const char *b)
{
    const void *bufs[2] = { a, b };
    size_t lens[2] = { strlen(a), strlen(b) };
    return sm_write_atomic(err, path, bufs, lens, 2);
}

static void test_write_atomic_writes_and_replaces(void)
{
    char path[300], buf[64];
    sm_err err;
    snprintf(path, sizeof path, "%s/file.bin", test_dir);
    CHECK(write_two(&err, path, "hello ", "world") == SM_OK);
    long n = read_file(path, buf, sizeof buf);
    CHECK(n == 11 && memcmp(buf, "hello world", 11) == 0);
    CHECK(write_two(&err, path, "bye", "") == SM_OK);
    n = read_file(path, buf, sizeof buf);
    CHECK(n == 3 && memcmp(buf, "bye", 3) == 0);
    CHECK(sm_write_atomic(&err, path, NULL, NULL, 0) == SM_OK); /* empty file */
    CHECK(read_file(path, buf, sizeof buf) == 0);
    CHECK(count_entries() == 1); /* no temporaries left behind */
    unlink(path);
}

static void test_write_atomic_missing_directory(void)
{
    char path[300];
    sm_err err;
    snprintf(path, sizeof path, "%s/missing/file.bin", test_dir);
    CHECK(write_two(&err, path, "a", "b") == SM_EIO);
    CHECK(strstr(err.msg, path) != NULL);
    CHECK(strstr(err.msg, "No such file or directory") != NULL);
    CHECK(count_entries() == 0);
    CHECK(sm_write_atomic(&err, "", NULL, NULL, 0) == SM_EINVAL);
}

/* A write that fails half-way (file size limit: EFBIG) must leave the old
 * file intact and remove the temporary. */
static void test_write_atomic_failed_write_keeps_old_file(void)
{
    char path[300], buf[64];
    sm_err err;
    snprintf(path, sizeof path, "%s/keep.bin", test_dir);
    CHECK(write_two(&err, path, "old ", "contents") == SM_OK);

    static char big[1 << 16];
    memset(big, 'x', sizeof big);
    struct rlimit saved, small;
    getrlimit(RLIMIT_FSIZE, &saved);
    small = saved;
    small.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    const void *bufs[1] = { big };
    size_t lens[1] = { sizeof big };
    sm_status st = sm_write_atomic(&err, path, bufs, lens, 1);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);

    CHECK(st == SM_EIO);
    CHECK(strstr(err.msg, "cannot write temporary file for") != NULL);
    CHECK(strstr(err.msg, path) != NULL);
    long n = read_file(path, buf, sizeof buf);
    CHECK(n == 12 && memcmp(buf, "old contents", 12) == 0);
    CHECK(count_entries() == 1);
    unlink(path);
}

static void test_dtype_names(void)
{
    sm_dtype dt;
    sm_err err;
    CHECK(sm_dtype_parse(&err, &dt, "BF16") == SM_OK && dt == SM_DTYPE_BF16);
    CHECK(sm_dtype_size(dt) == 2);
    CHECK(strcmp(sm_dtype_name(SM_DTYPE_I64), "I64") == 0 && sm_dtype_size(SM_DTYPE_I64) == 8);
    CHECK(sm_dtype_parse(&err, &dt, "f32") == SM_EFORMAT);
    CHECK(strstr(err.msg, "'f32'") != NULL);
}

static uint32_t bits_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static void test_f16_conversion(void)
{
    CHECK(sm_f16_to_f32(0x3c00) == 1.0f);
    CHECK(sm_f16_to_f32(0xc100) == -2.5f);
    CHECK(sm_f16_to_f32(0x7bff) == 65504.0f);            /* largest normal */
    CHECK(sm_f16_to_f32(0x0400) == ldexpf(1.0f, -14));   /* smallest normal */
    CHECK(sm_f16_to_f32(0x0001) == ldexpf(1.0f, -24));   /* smallest subnormal */
    CHECK(sm_f16_to_f32(0x03ff) == 1023 * ldexpf(1.0f, -24));
    CHECK(bits_of(sm_f16_to_f32(0x8000)) == 0x80000000u); /* -0 */
    CHECK(isinf(sm_f16_to_f32(0x7c00)) && sm_f16_to_f32(0x7c00) > 0);
    CHECK(isinf(sm_f16_to_f32(0xfc00)) && sm_f16_to_f32(0xfc00) < 0);
    CHECK(bits_of(sm_f16_to_f32(0x7e00)) == 0x7fc00000u); /* quiet NaN */
    CHECK(bits_of(sm_f16_to_f32(0x7c01)) == 0x7f802000u); /* payload kept */
    /* every finite half converts exactly: check against the formula */
    int exact = 1;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        uint32_t e = h >> 10, f = h & 0x3ff;
        float want = e ? ldexpf((float)(1024 + f), (int)e - 25) : ldexpf((float)f, -24);
        if (sm_f16_to_f32((uint16_t)h) != want || sm_f16_to_f32((uint16_t)(h | 0x8000)) != -want) exact = 0;
    }
    CHECK(exact);
}

static void test_bf16_conversion(void)
{
    CHECK(sm_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(sm_bf16_to_f32(0xc049) == -3.140625f);
    CHECK(bits_of(sm_bf16_to_f32(0x0001)) == 0x00010000u);
    CHECK(isinf(sm_bf16_to_f32(0xff80)));
    CHECK(bits_of(sm_bf16_to_f32(0x7fc1)) == 0x7fc10000u);
}

static void test_decode_every_dtype(void)
{
    float out[4];
    const uint8_t f32[] = { 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x80 }; /* 1, -0 */
    sm_decode_le(out, f32, 2, SM_DTYPE_F32);
    CHECK(out[0] == 1.0f && bits_of(out[1]) == 0x80000000u);
    const uint8_t f16[] = { 0x01, 0x00, 0x00, 0x7c };
    sm_decode_le(out, f16, 2, SM_DTYPE_F16);
    CHECK(out[0] == ldexpf(1.0f, -24) && isinf(out[1]));
    const uint8_t bf16[] = { 0x80, 0x3f, 0x49, 0xc0 };
    sm_decode_le(out, bf16, 2, SM_DTYPE_BF16);
    CHECK(out[0] == 1.0f && out[1] == -3.140625f);
    const uint8_t f64[] = { 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,   /* 1.5 */
                            0, 0, 0, 0, 0, 0, 0xf0, 0x7f }; /* inf */
    sm_decode_le(out, f64, 2, SM_DTYPE_F64);
    CHECK(out[0] == 1.5f && isinf(out[1]));
    const uint8_t i64[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   /* -1 */
                            0, 0, 0, 0, 0, 0, 0, 0x80 };                     /* INT64_MIN */
    sm_decode_le(out, i64, 2, SM_DTYPE_I64);
    CHECK(out[0] == -1.0f && out[1] == -9223372036854775808.0f);
    const uint8_t i32[] = { 0xfe, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x01 }; /* -2, 2^24 + 1 */
    sm_decode_le(out, i32, 2, SM_DTYPE_I32);
    CHECK(out[0] == -2.0f && out[1] == 16777216.0f);
    const uint8_t i16[] = { 0x00, 0x80, 0xff, 0x7f };
    sm_decode_le(out, i16, 2, SM_DTYPE_I16);
    CHECK(out[0] == -32768.0f && out[1] == 32767.0f);
    const uint8_t bytes[] = { 0x80, 0x7f, 0x00, 0x02 };
    sm_decode_le(out, bytes, 4, SM_DTYPE_I8);
    CHECK(out[0] == -128.0f && out[1] == 127.0f && out[3] == 2.0f);
    sm_decode_le(out, bytes, 4, SM_DTYPE_U8);
    CHECK(out[0] == 128.0f && out[1] == 127.0f);
    sm_decode_le(out, bytes, 4, SM_DTYPE_BOOL);
    CHECK(out[0] == 1.0f && out[2] == 0.0f && out[3] == 1.0f);
    /* unaligned source */
    const uint8_t odd[] = { 0xaa, 0x00, 0x00, 0x80, 0x3f };
    sm_decode_le(out, odd + 1, 1, SM_DTYPE_F32);
    CHECK(out[0] == 1.0f);
}

static void test_encode_strided(void)
{
    float d[6] = { 1, 2, 3, 4, 5, 6 };
    int64_t shape[2] = { 2, 3 };
    sm_tensor t, tt;
    sm_err err;
    sm_tensor_init(&t, d, 2, shape);
    sm_tensor_transpose(&err, &tt, &t, 0, 1); /* [3,2]: 1 4 2 5 3 6 */
    uint8_t out[24];
    sm_encode_f32_le(out, &tt);
    float back[6];
    sm_decode_le(back, out, 6, SM_DTYPE_F32);
    CHECK(back[0] == 1 && back[1] == 4 && back[2] == 2 && back[3] == 5 && back[4] == 3 && back[5] == 6);
    CHECK(out[0] == 0x00 && out[3] == 0x3f); /* 1.0f = 0x3f800000, little-endian */
    sm_tensor scalar;
    sm_tensor_init(&scalar, d + 5, 0, NULL);
    sm_encode_f32_le(out, &scalar);
    sm_decode_le(back, out, 1, SM_DTYPE_F32);
    CHECK(back[0] == 6);
}

int main(void)
{
    make_test_dir();
    RUN(test_write_atomic_writes_and_replaces);
    RUN(test_write_atomic_missing_directory);
    RUN(test_write_atomic_failed_write_keeps_old_file);
    RUN(test_dtype_names);
    RUN(test_f16_conversion);
    RUN(test_bf16_conversion);
    RUN(test_decode_every_dtype);
    RUN(test_encode_strided);
    rmdir(test_dir);
    return ctest_summary("fileio");
}
