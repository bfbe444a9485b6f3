/* Plain-C tests of fileio.c (atomic replacement, including a write that
 * fails half-way; symlinks written through, modes kept, stale temporaries
 * removed), filelock.c (path targets, advisory locks, generations) and
 * dtype.c (little-endian conversions to float32). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
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

/* A pid that belonged to a process that has exited (and was reaped). */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
}

static void test_write_atomic_writes_through_symlinks(void)
{
    char target[300], link1[300], link2[300], buf[64];
    sm_err err;
    CHECK(mkdir(strcat(strcpy(target, test_dir), "/real"), 0700) == 0);
    snprintf(target, sizeof target, "%s/real/people.gallery", test_dir);
    snprintf(link1, sizeof link1, "%s/link1", test_dir);
    snprintf(link2, sizeof link2, "%s/link2", test_dir);
    CHECK(symlink("real/people.gallery", link1) == 0); /* relative, dangling for now */
    CHECK(symlink(link1, link2) == 0);                 /* absolute, to another link */
    char *t = NULL;
    CHECK(sm_path_target(&err, link2, &t) == SM_OK && t && strcmp(t, target) == 0);
    free(t);
    /* a dangling link creates its target; both links stay links */
    CHECK(write_two(&err, link2, "one", "") == SM_OK);
    CHECK(read_file(target, buf, sizeof buf) == 3 && memcmp(buf, "one", 3) == 0);
    struct stat st;
    CHECK(lstat(link1, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(lstat(link2, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(write_two(&err, link1, "two", "!") == SM_OK);
    CHECK(read_file(link2, buf, sizeof buf) == 4 && memcmp(buf, "two!", 4) == 0);
    CHECK(lstat(link1, &st) == 0 && S_ISLNK(st.st_mode));
    /* a loop is an error naming the path, and writes nothing */
    char loop[300];
    snprintf(loop, sizeof loop, "%s/loop", test_dir);
    CHECK(symlink("loop", loop) == 0);
    CHECK(write_two(&err, loop, "x", "") == SM_EIO && strstr(err.msg, loop) != NULL);
    unlink(loop);
    unlink(link2);
    unlink(link1);
    unlink(target);
    snprintf(target, sizeof target, "%s/real", test_dir);
    CHECK(rmdir(target) == 0);
    CHECK(count_entries() == 0);
}

static void test_write_atomic_keeps_mode_and_creates_private_files(void)
{
    char path[300];
    sm_err err;
    struct stat st;
    snprintf(path, sizeof path, "%s/mode.bin", test_dir);
    sm_write_opts priv = { .new_mode = 0600, .stamp = NULL };
    const void *bufs[1] = { "abc" };
    size_t lens[1] = { 3 };
    CHECK(sm_write_atomic_ex(&err, path, bufs, lens, 1, &priv) == SM_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK(chmod(path, 0640) == 0);
    CHECK(sm_write_atomic_ex(&err, path, bufs, lens, 1, &priv) == SM_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);
    CHECK(chmod(path, 0604) == 0);
    CHECK(sm_write_atomic(&err, path, bufs, lens, 1) == SM_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0604 && st.st_uid == getuid());
    unlink(path);
    CHECK(count_entries() == 0);
}

/* new_mode is given to open(2): the umask still clears bits (the Lua
 * binding, core.write_atomic(path, {mode = m}, ...), documents this). */
static void test_write_atomic_new_mode_meets_the_umask(void)
{
    char path[300];
    sm_err err;
    struct stat st;
    const void *bufs[1] = { "abc" };
    size_t lens[1] = { 3 };
    mode_t saved = umask(022);
    snprintf(path, sizeof path, "%s/umask.bin", test_dir);
    sm_write_opts o = { .new_mode = 0640, .stamp = NULL };
    CHECK(sm_write_atomic_ex(&err, path, bufs, lens, 1, &o) == SM_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);
    unlink(path);
    CHECK(sm_write_atomic_ex(&err, path, bufs, lens, 1, NULL) == SM_OK); /* the default, 0666 */
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644);
    unlink(path);
    umask(077);
    o.new_mode = 0644;
    CHECK(sm_write_atomic_ex(&err, path, bufs, lens, 1, &o) == SM_OK);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
    unlink(path);
    umask(saved);
    CHECK(count_entries() == 0);
}

static void test_write_atomic_removes_stale_temporaries(void)
{
    char path[300], dead[340], live[340], mine[340], other[340], odd[340], buf[32];
    sm_err err;
    pid_t gone = dead_pid();
    snprintf(path, sizeof path, "%s/g.gallery", test_dir);
    snprintf(dead, sizeof dead, "%s.tmp.%ld.0", path, (long)gone);
    snprintf(live, sizeof live, "%s.tmp.%ld.3", path, (long)getppid()); /* alive: our parent */
    snprintf(mine, sizeof mine, "%s.tmp.%ld.7", path, (long)getpid());
    snprintf(other, sizeof other, "%s/h.gallery.tmp.%ld.0", test_dir, (long)gone);
    snprintf(odd, sizeof odd, "%s.tmp.%ld.0x", path, (long)gone);
    touch(dead); touch(live); touch(mine); touch(other); touch(odd);
    CHECK(write_two(&err, path, "new", "") == SM_OK);
    CHECK(!exists(dead));
    CHECK(exists(live) && exists(mine) && exists(other) && exists(odd));
    CHECK(read_file(path, buf, sizeof buf) == 3);
    unlink(live); unlink(mine); unlink(other); unlink(odd); unlink(path);
    CHECK(count_entries() == 0);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void test_lock_excludes_times_out_and_dies_with_its_holder(void)
{
    char lock[300];
    sm_err err;
    int a = -1, b = -1;
    snprintf(lock, sizeof lock, "%s/g.gallery.lock", test_dir);
    CHECK(sm_lock_acquire(&err, &a, lock, -1) == SM_OK && a >= 0);
    struct stat st;
    CHECK(stat(lock, &st) == 0 && (st.st_mode & 07777) == 0600);
    /* a second open of the same file conflicts, even in this process */
    CHECK(sm_lock_acquire(&err, &b, lock, 0) == SM_ELIMIT && b == -1);
    CHECK(strstr(err.msg, "locked by another process") != NULL);
    double t0 = now_s();
    CHECK(sm_lock_acquire(&err, &b, lock, 0.2) == SM_ELIMIT && b == -1);
    double waited = now_s() - t0;
    CHECK(waited >= 0.19 && waited < 5);
    sm_lock_release(a);
    CHECK(sm_lock_acquire(&err, &b, lock, 0.2) == SM_OK && b >= 0);
    sm_lock_release(b);

    /* a child takes the lock and is killed: the kernel releases it, and a
     * waiter blocked on it gets it */
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t child = fork();
    if (child == 0) {
        int fd;
        sm_err e;
        if (sm_lock_acquire(&e, &fd, lock, -1) != SM_OK) _exit(1);
        (void)!write(ready[1], "x", 1);
        for (;;) pause();
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1);
    CHECK(sm_lock_acquire(&err, &b, lock, 0) == SM_ELIMIT);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(sm_lock_acquire(&err, &b, lock, 5) == SM_OK);
    sm_lock_release(b);
    close(ready[0]);
    close(ready[1]);

    /* a waiter without a timeout blocks until the holder lets go */
    CHECK(sm_lock_acquire(&err, &a, lock, -1) == SM_OK);
    child = fork();
    if (child == 0) {
        int fd;
        sm_err e;
        close(a); /* the inherited descriptor shares the parent's lock */
        _exit(sm_lock_acquire(&e, &fd, lock, -1) == SM_OK ? 0 : 1);
    }
    struct timespec pause_t = { 0, 100 * 1000 * 1000 };
    nanosleep(&pause_t, NULL);
    int status = 0;
    CHECK(waitpid(child, &status, WNOHANG) == 0); /* still waiting */
    sm_lock_release(a);
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    char missing[300];
    snprintf(missing, sizeof missing, "%s/no/such/dir.lock", test_dir);
    CHECK(sm_lock_acquire(&err, &b, missing, 0) == SM_EIO && strstr(err.msg, missing) != NULL);
    unlink(lock);
    CHECK(count_entries() == 0);
}

static void test_generation_changes_on_every_save(void)
{
    char path[300], s1[SM_FILE_STAMP_LEN], s2[SM_FILE_STAMP_LEN], s3[SM_FILE_STAMP_LEN];
    sm_err err;
    sm_file_stamp written, seen;
    snprintf(path, sizeof path, "%s/gen.bin", test_dir);
    sm_write_opts o = { .new_mode = 0600, .stamp = &written };
    const void *bufs[1] = { "same" };
    size_t lens[1] = { 4 };
    CHECK(sm_write_atomic_ex(&err, path, bufs, lens, 1, &o) == SM_OK);
    CHECK(sm_file_stamp_path(&seen, path) == 0);
    CHECK(strcmp(sm_file_stamp_str(s1, &written), sm_file_stamp_str(s2, &seen)) == 0);
    /* the same bytes again, at once: still another generation */
    CHECK(sm_write_atomic_ex(&err, path, bufs, lens, 1, &o) == SM_OK);
    CHECK(sm_file_stamp_path(&seen, path) == 0);
    CHECK(strcmp(sm_file_stamp_str(s3, &seen), s1) != 0);
    unlink(path);
    CHECK(sm_file_stamp_path(&seen, path) == -1 && errno == ENOENT);
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
    RUN(test_write_atomic_writes_through_symlinks);
    RUN(test_write_atomic_keeps_mode_and_creates_private_files);
    RUN(test_write_atomic_new_mode_meets_the_umask);
    RUN(test_write_atomic_removes_stale_temporaries);
    RUN(test_lock_excludes_times_out_and_dies_with_its_holder);
    RUN(test_generation_changes_on_every_save);
    RUN(test_dtype_names);
    RUN(test_f16_conversion);
    RUN(test_bf16_conversion);
    RUN(test_decode_every_dtype);
    RUN(test_encode_strided);
    rmdir(test_dir);
    return ctest_summary("fileio");
}
