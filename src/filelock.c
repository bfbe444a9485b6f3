/*
 * filelock.c — what a path finally names, and advisory locks.
 *
 * sm_path_target follows symlinks by hand (readlink, relative targets
 *   taken from the link's directory, at most 40 hops) so that a dangling
 *   last link still names the file a write would create; the directory
 *   part is made canonical with realpath.
 *
 * sm_lock_acquire takes an exclusive open-file-description lock
 *   (F_OFD_SETLKW) on a lock file. OFD locks belong to the open file, not
 *   the process: two opens conflict even within one process (so one
 *   process can test the timeout against itself), closing another
 *   descriptor of the file does not drop them, and the kernel drops them
 *   when the holder exits or dies. Without a timeout the wait is in the
 *   kernel (F_OFD_SETLKW, a fair queue). A bounded wait cannot be given to
 *   fcntl, and interrupting it would take a signal handler or thread
 *   cancellation (which AddressSanitizer misreports); it sleeps instead
 *   until the lock file is closed by someone (inotify: releasing the lock
 *   is closing its descriptor, and the kernel closes a dead holder's) and
 *   tries again, with at most 100 ms between tries in case no event comes
 *   (file systems without inotify), until the deadline.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "sm.h"

#define MAX_LINK_HOPS 40

/* Fills err naming path and the reason; errno is errnum on return. */
static sm_status os_fail(sm_err *err, int errnum, const char *what, const char *path)
{
    char buf[128];
    const char *why = strerror_r(errnum, buf, sizeof buf); /* the GNU strerror_r (_GNU_SOURCE) */
    sm_status st = sm_fail(err, errnum == ENOMEM ? SM_ENOMEM : SM_EIO, "cannot %s '%s': %s", what, path, why);
    errno = errnum;
    return st;
}

/* "dir" + "/" + "name" (dir "/" gives "/name"); malloc'd or NULL. */
static char *join(const char *dir, size_t dir_len, const char *name)
{
    size_t nl = strlen(name);
    char *s = malloc(dir_len + nl + 2);
    if (!s) return NULL;
    memcpy(s, dir, dir_len);
    size_t at = dir_len;
    if (at == 0 || s[at - 1] != '/') s[at++] = '/';
    memcpy(s + at, name, nl + 1);
    return s;
}

/* The directory part of path ("." when none) and the position of its last
 * component. */
static size_t dir_part(const char *path, const char **dir, size_t *dir_len)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        *dir = ".";
        *dir_len = 1;
        return 0;
    }
    *dir = path;
    *dir_len = slash == path ? 1 : (size_t)(slash - path);
    return (size_t)(slash - path) + 1;
}

sm_status sm_path_target(sm_err *err, const char *path, char **out)
{
    *out = NULL;
    if (!path || !*path) return sm_fail(err, SM_EINVAL, "empty path");
    char *cur = strdup(path);
    if (!cur) return sm_fail(err, SM_ENOMEM, "out of memory resolving '%s'", path);
    for (int hop = 0; hop <= MAX_LINK_HOPS; hop++) {
        struct stat st;
        const char *dir;
        size_t dir_len, base = dir_part(cur, &dir, &dir_len);
        if (lstat(cur, &st) == 0 && S_ISLNK(st.st_mode)) {
            char link[PATH_MAX];
            ssize_t n = readlink(cur, link, sizeof link - 1);
            if (n < 0) {
                sm_status s = os_fail(err, errno, "read the link", path);
                free(cur);
                return s;
            }
            link[n] = '\0';
            char *next = link[0] == '/' ? strdup(link) : join(dir, dir_len, link);
            free(cur);
            if (!next) return sm_fail(err, SM_ENOMEM, "out of memory resolving '%s'", path);
            cur = next;
            continue;
        }
        /* Not a link (or nothing there yet): canonical directory + name. */
        const char *name = cur + base;
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
            free(cur);
            return os_fail(err, EISDIR, "write a file at", path);
        }
        char *d = malloc(dir_len + 1);
        if (!d) {
            free(cur);
            return sm_fail(err, SM_ENOMEM, "out of memory resolving '%s'", path);
        }
        memcpy(d, dir, dir_len);
        d[dir_len] = '\0';
        char *canon = realpath(d, NULL);
        int e = errno;
        free(d);
        if (!canon) {
            free(cur);
            return os_fail(err, e, "resolve the directory of", path);
        }
        *out = join(canon, strlen(canon), name);
        free(canon);
        free(cur);
        return *out ? SM_OK : sm_fail(err, SM_ENOMEM, "out of memory resolving '%s'", path);
    }
    free(cur);
    return os_fail(err, ELOOP, "resolve", path);
}

/* ---- generations ---------------------------------------------------------- */

static void stamp_of(sm_file_stamp *s, const struct stat *st)
{
    s->dev = (uint64_t)st->st_dev;
    s->ino = (uint64_t)st->st_ino;
    s->size = (uint64_t)st->st_size;
    s->mtime_sec = (int64_t)st->st_mtim.tv_sec;
    s->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
}

int sm_file_stamp_fd(sm_file_stamp *s, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    stamp_of(s, &st);
    return 0;
}

int sm_file_stamp_path(sm_file_stamp *s, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    stamp_of(s, &st);
    return 0;
}

const char *sm_file_stamp_str(char *buf, const sm_file_stamp *s)
{
    snprintf(buf, SM_FILE_STAMP_LEN, "%llu:%llu:%llu:%lld.%09lld", (unsigned long long)s->dev,
             (unsigned long long)s->ino, (unsigned long long)s->size, (long long)s->mtime_sec,
             (long long)s->mtime_nsec);
    return buf;
}

/* ---- locks ---------------------------------------------------------------- */

static int lock_op(int fd, int cmd)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET; /* l_start = l_len = 0: the whole file */
    return fcntl(fd, cmd, &fl);
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Bounded wait: try, then sleep until the lock file is closed by someone
 * (inotify IN_CLOSE_*: a holder releases the lock by closing its
 * descriptor, and a dying holder's descriptors are closed by the kernel)
 * or MAX_WAIT_MS pass (a safety net for file systems without inotify
 * events), and try again, until the deadline. Returns 1 when the deadline
 * passed, else 0 with *errnum 0 (locked) or the error. */
#define MAX_WAIT_MS 100
static int timed_lock(int fd, const char *lock_path, double timeout, int *errnum)
{
    double deadline = now_seconds() + timeout;
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (in >= 0 && inotify_add_watch(in, lock_path, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_DELETE_SELF) < 0) {
        close(in);
        in = -1;
    }
    int expired = 0;
    *errnum = 0;
    for (;;) {
        if (lock_op(fd, F_OFD_SETLK) == 0) break;
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            *errnum = errno;
            break;
        }
        double left = deadline - now_seconds();
        if (left <= 0) {
            expired = 1;
            break;
        }
        int ms = left * 1000 < MAX_WAIT_MS ? (int)(left * 1000) + 1 : MAX_WAIT_MS;
        if (in >= 0) {
            struct pollfd p = { .fd = in, .events = POLLIN };
            if (poll(&p, 1, ms) > 0) {
                char events[4096];
                while (read(in, events, sizeof events) > 0) {} /* drain: any event means try again */
            }
        } else {
            struct timespec t = { 0, (long)(ms < 10 ? ms : 10) * 1000000L };
            nanosleep(&t, NULL);
        }
    }
    if (in >= 0) close(in);
    return expired;
}

sm_status sm_lock_acquire(sm_err *err, int *fd_out, const char *lock_path, double timeout)
{
    *fd_out = -1;
    int fd;
    do fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return os_fail(err, errno, "open the lock file", lock_path);
    int errnum = 0, busy = 0;
    if (timeout < 0) {
        int rc;
        do rc = lock_op(fd, F_OFD_SETLKW);
        while (rc != 0 && errno == EINTR);
        errnum = rc == 0 ? 0 : errno;
    } else if (lock_op(fd, F_OFD_SETLK) == 0) {
        errnum = 0;
    } else if (errno != EAGAIN && errno != EACCES) {
        errnum = errno;
    } else if (timeout == 0) {
        busy = 1;
    } else {
        busy = timed_lock(fd, lock_path, timeout, &errnum);
    }
    if (busy || errnum != 0) {
        close(fd);
        if (busy)
            return sm_fail(err, SM_ELIMIT, "'%s' is locked by another process (waited %g s)", lock_path,
                           timeout);
        return os_fail(err, errnum, "lock", lock_path);
    }
    *fd_out = fd;
    return SM_OK;
}

void sm_lock_release(int fd)
{
    if (fd >= 0) close(fd); /* closing the only descriptor drops the OFD lock */
}
