/*
 * fileio.c — crash-safe file replacement.
 *
 * sm_write_atomic(path, bufs...) makes path hold exactly the new bytes or
 * exactly the old ones, whatever happens (crash, full disk, power loss):
 *
 *   0. resolve path to the file it finally names (a symlink is written
 *      through: the link stays, its target is replaced), and remove the
 *      temporaries of that name that a killed writer left behind,
 *   1. create "<target>.tmp.<pid>.<k>" in the target's directory (O_EXCL,
 *      so two writers never share a temporary; k counts up on a name
 *      clash), with the existing file's owner (when allowed) and mode, or
 *      the new-file mode,
 *   2. write every buffer, fsync the file, close it,
 *   3. rename it over the target (atomic within one file system),
 *   4. fsync the directory so the rename itself is durable.
 *
 * Any failure before the rename removes the temporary and leaves path
 * untouched. Messages name the path and give strerror's reason.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
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
static int create_temporary(char *tmp, size_t tmp_len, const char *path, mode_t mode)
{
    long pid = (long)getpid();
    for (int k = 0; k < TMP_NAME_ATTEMPTS; k++) {
        snprintf(tmp, tmp_len, "%s.tmp.%ld.%d", path, pid, k);
        int fd;
        do fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* Parses "<pid>.<k>" (decimal, nothing after); the pid, or -1. */
static long temporary_pid(const char *s)
{
    long pid = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (digits >= 9) return -1; /* pids fit in 9 digits (pid_max <= 2^22) */
        pid = pid * 10 + (*s - '0');
    }
    if (digits == 0 || pid <= 0 || *s++ != '.') return -1;
    for (digits = 0; *s >= '0' && *s <= '9'; s++, digits++)
        if (digits >= 9) return -1;
    return digits > 0 && *s == '\0' ? pid : -1;
}

/* Removes "<base>.tmp.<pid>.<k>" regular files in the target's directory
 * whose writer is gone (kill(pid, 0) fails with ESRCH). Our own pid, live
 * processes (EPERM included: someone else's), other names and anything
 * that is not a regular file are left alone. Best effort: errors are
 * ignored (the save itself does not depend on it). */
static void remove_stale_temporaries(const char *target)
{
    const char *slash = strrchr(target, '/');
    if (!slash) return; /* targets are absolute (sm_path_target) */
    size_t dir_len = slash == target ? 1 : (size_t)(slash - target);
    const char *base = slash + 1;
    size_t base_len = strlen(base);
    char *dir = malloc(dir_len + 1);
    if (!dir) return;
    memcpy(dir, target, dir_len);
    dir[dir_len] = '\0';
    DIR *d = opendir(dir);
    free(dir);
    if (!d) return;
    long me = (long)getpid();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, base_len) != 0 || strncmp(n + base_len, ".tmp.", 5) != 0) continue;
        long pid = temporary_pid(n + base_len + 5);
        if (pid < 0 || pid == me) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        struct stat st;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        unlinkat(dirfd(d), n, 0);
    }
    closedir(d);
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
                                 const void *const *bufs, const size_t *lens, int nbufs,
                                 const char *target, sm_file_stamp *stamp)
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
    /* The stamp the file will have at target: rename keeps the inode and
     * its modification time. */
    if (stamp && sm_file_stamp_fd(stamp, fd) != 0) {
        int e = errno;
        close(fd);
        return io_fail(err, e, "stat temporary file for", path);
    }
    if (close(fd) != 0)
        return io_fail(err, errno, "close temporary file for", path);
    if (rename(tmp, target) != 0)
        return io_fail(err, errno, "rename temporary file over", path);
    return SM_OK;
}

/* Gives the temporary the existing file's owner (when the system allows:
 * only root may give a file away, so EPERM is not an error) and its mode. */
static int keep_owner_and_mode(int fd, const struct stat *old)
{
    struct stat now;
    if (fstat(fd, &now) != 0) return -1;
    if ((now.st_uid != old->st_uid || now.st_gid != old->st_gid) &&
        fchown(fd, old->st_uid, old->st_gid) != 0 && fchown(fd, (uid_t)-1, old->st_gid) != 0) {
        /* neither owner nor group could be kept: the mode still is */
    }
    return fchmod(fd, old->st_mode & 07777);
}

sm_status sm_write_atomic(sm_err *err, const char *path, const void *const *bufs,
                          const size_t *lens, int nbufs)
{
    return sm_write_atomic_ex(err, path, bufs, lens, nbufs, NULL);
}

sm_status sm_write_atomic_ex(sm_err *err, const char *path, const void *const *bufs,
                             const size_t *lens, int nbufs, const sm_write_opts *o)
{
    if (!path || !*path)
        return sm_fail(err, SM_EINVAL, "write_atomic: empty path");
    if (nbufs < 0 || (nbufs > 0 && (!bufs || !lens)))
        return sm_fail(err, SM_EINVAL, "write_atomic: bad buffer list");
    char *target;
    sm_status rs = sm_path_target(err, path, &target);
    if (rs == SM_EIO) /* e.g. no such directory: said as before symlinks were followed */
        return io_fail(err, errno, "create temporary file for", path);
    if (rs != SM_OK) return rs;
    struct stat old;
    int existed = stat(target, &old) == 0 && S_ISREG(old.st_mode);
    remove_stale_temporaries(target);
    size_t name_len = strlen(target) + 48;
    char *tmp = malloc(name_len);
    if (!tmp) {
        free(target);
        return sm_fail(err, SM_ENOMEM, "write_atomic: out of memory for '%s'", path);
    }
    mode_t mode = o && o->new_mode ? (mode_t)o->new_mode : 0666;
    int fd = create_temporary(tmp, name_len, target, existed ? 0600 : mode);
    if (fd < 0) {
        sm_status st = io_fail(err, errno, "create temporary file for", path);
        free(tmp);
        free(target);
        return st;
    }
    sm_status st = SM_OK;
    if (existed && keep_owner_and_mode(fd, &old) != 0) {
        st = io_fail(err, errno, "set the mode of the temporary file for", path);
        close(fd);
    }
    if (st == SM_OK)
        st = fill_and_rename(err, fd, tmp, path, bufs, lens, nbufs, target, o ? o->stamp : NULL);
    if (st != SM_OK) {
        unlink(tmp);
        free(tmp);
        free(target);
        return st;
    }
    /* The temporary's buffer is big enough for the directory name too. */
    if (sync_parent_directory(target, tmp, name_len) != 0)
        st = io_fail(err, errno, "sync the directory after replacing", path);
    free(tmp);
    free(target);
    return st;
}
