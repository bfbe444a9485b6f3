/*
 * fileio.c — crash-safe file replacement.
 *
 * sm_write_atomic(path, bufs...) makes path hold exactly the new bytes or
 * exactly the old ones, whatever happens (crash, full disk, power loss):
 *
 *   1. create "<path>.tmp.<pid>.<k>" in the same directory (O_EXCL, so two
 *      writers never share a temporary; k counts up on a name clash),
 *   2. write every buffer, fsync the file, close it,
 *   3. rename it over path (atomic within one file system),
 *   4. fsync the directory so the rename itself is durable.
 *
 * Any failure before the rename removes the temporary and leaves path
 * untouched. Messages name the path and give strerror's reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sm.h"

#define TMP_NAME_ATTEMPTS 100

static const char *reason(int errnum, char *buf, size_t len)
{
    if (strerror_r(errnum, buf, len) != 0)
        snprintf(buf, len, "error %d", errnum);
    return buf;
}

static sm_status io_fail(sm_err *err, int errnum, const char *what, const char *path)
{
    char why[128];
    return sm_fail(err, SM_EIO, "cannot %s '%s': %s", what, path, reason(errnum, why, sizeof why));
}

/* Creates a fresh temporary next to path; its name goes into tmp (which
 * has room for path plus 48 bytes). Returns the descriptor or -1. */
static int create_temporary(char *tmp, size_t tmp_len, const char *path)
{
    long pid = (long)getpid();
    for (int k = 0; k < TMP_NAME_ATTEMPTS; k++) {
        snprintf(tmp, tmp_len, "%s.tmp.%ld.%d", path, pid, k);
        int fd;
        do fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* write(2) until everything is out; returns 0 or -1 with errno set. */
static int write_fully(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_all_buffers(int fd, const void *const *bufs, const size_t *lens, int nbufs)
{
    for (int i = 0; i < nbufs; i++)
        if (lens[i] > 0 && write_fully(fd, bufs[i], lens[i]) != 0)
            return -1;
    return 0;
}

/* fsyncs the directory holding path. File systems that cannot sync a
 * directory (EINVAL) are accepted: the rename is then as durable as the
 * system makes it. */
static int sync_parent_directory(const char *path, char *dir, size_t dir_len)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, dir_len, ".");
    else if (slash == path) snprintf(dir, dir_len, "/");
    else snprintf(dir, dir_len, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0 && saved == EINVAL) rc = 0;
    errno = saved;
    return rc;
}

/* Steps 2-3 for an open temporary; on failure fills err, returns non-OK
 * and has closed fd (the caller removes the temporary). */
static sm_status fill_and_rename(sm_err *err, int fd, const char *tmp, const char *path,
                                 const void *const *bufs, const size_t *lens, int nbufs)
{
    if (write_all_buffers(fd, bufs, lens, nbufs) != 0) {
        int e = errno;
        close(fd);
        return io_fail(err, e, "write temporary file for", path);
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return io_fail(err, e, "sync temporary file for", path);
    }
    if (close(fd) != 0)
        return io_fail(err, errno, "close temporary file for", path);
    if (rename(tmp, path) != 0)
        return io_fail(err, errno, "rename temporary file over", path);
    return SM_OK;
}

sm_status sm_write_atomic(sm_err *err, const char *path, const void *const *bufs,
                          const size_t *lens, int nbufs)
{
    if (!path || !*path)
        return sm_fail(err, SM_EINVAL, "write_atomic: empty path");
    if (nbufs < 0 || (nbufs > 0 && (!bufs || !lens)))
        return sm_fail(err, SM_EINVAL, "write_atomic: bad buffer list");
    size_t name_len = strlen(path) + 48;
    char *tmp = malloc(name_len);
    if (!tmp)
        return sm_fail(err, SM_ENOMEM, "write_atomic: out of memory for '%s'", path);
    int fd = create_temporary(tmp, name_len, path);
    if (fd < 0) {
        sm_status st = io_fail(err, errno, "create temporary file for", path);
        free(tmp);
        return st;
    }
    sm_status st = fill_and_rename(err, fd, tmp, path, bufs, lens, nbufs);
    if (st != SM_OK) {
        unlink(tmp);
        free(tmp);
        return st;
    }
    /* The temporary's buffer is big enough for the directory name too. */
    if (sync_parent_directory(path, tmp, name_len) != 0)
        st = io_fail(err, errno, "sync the directory after replacing", path);
    free(tmp);
    return st;
}
