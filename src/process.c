/*
 * process.c — child processes and the pipes to them: fork (for pre-forked
 * workers), socketpair, kill, waitpid, whole-buffer reads and writes on a
 * descriptor, and posix_spawn of an argument vector (never a shell), with
 * an environment of the caller's making and optionally in a process group
 * of its own (a terminal's Ctrl-C then reaches the parent only).
 *
 * A child made by sm_process_fork starts clean: every descriptor >= 3 but
 * keep_fd is closed (it must not hold the parent's listening socket or its
 * clients' connections open), its signal mask is emptied and SIGPIPE,
 * SIGTERM and SIGINT are back at their default actions, and on Linux it
 * gets SIGTERM when the parent dies (PR_SET_PDEATHSIG), so a killed parent
 * leaves no orphan. Fork before any OpenMP or OpenBLAS thread pool exists:
 * the pools do not survive fork.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include "sm.h"

extern char **environ;

static sm_status os_fail(sm_err *err, int errnum, const char *what)
{
    char buf[128];
    const char *why = strerror_r(errnum, buf, sizeof buf);
    sm_status st = sm_fail(err, errnum == ENOMEM ? SM_ENOMEM : SM_EIO, "%s: %s", what, why);
    errno = errnum;
    return st;
}

/* Closes every descriptor >= 3 but keep (async-signal-safe enough for a
 * child of a single-threaded parent). */
static void close_others(int keep)
{
    int fds[4096];
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        int self = dirfd(d);
        struct dirent *e;
        while ((e = readdir(d)) != NULL && n < (int)(sizeof fds / sizeof fds[0])) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            int fd = atoi(e->d_name);
            if (fd >= 3 && fd != keep && fd != self) fds[n++] = fd;
        }
        closedir(d);
        for (int i = 0; i < n; i++) close(fds[i]);
        return;
    }
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (int fd = 3; fd < max; fd++)
        if (fd != keep) close(fd);
}

static void reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
}

sm_status sm_process_fork(sm_err *err, int *pid, int keep_fd)
{
    pid_t parent = getpid();
    fflush(NULL); /* no buffered output written twice */
    pid_t p = fork();
    if (p < 0) return os_fail(err, errno, "fork");
    if (p == 0) {
        reset_signals();
        close_others(keep_fd);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1); /* the parent died before prctl */
#else
        (void)parent;
#endif
    }
    *pid = (int)p;
    return SM_OK;
}

sm_status sm_process_socketpair(sm_err *err, int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return os_fail(err, errno, "socketpair");
    return SM_OK;
}

sm_status sm_process_close(sm_err *err, int fd)
{
    if (fd < 0) return sm_fail(err, SM_EINVAL, "bad descriptor %d", fd);
    if (close(fd) != 0 && errno != EINTR) return os_fail(err, errno, "close");
    return SM_OK;
}

sm_status sm_process_kill(sm_err *err, int pid, int sig)
{
    if (pid <= 0) return sm_fail(err, SM_EINVAL, "pid must be positive, got %d", pid); /* never a group */
    if (kill((pid_t)pid, sig) != 0) return os_fail(err, errno, "kill");
    return SM_OK;
}

sm_status sm_process_wait(sm_err *err, int pid, int nohang, sm_process_status *out)
{
    if (pid <= 0) return sm_fail(err, SM_EINVAL, "pid must be positive, got %d", pid);
    int st = 0;
    pid_t r;
    do r = waitpid((pid_t)pid, &st, nohang ? WNOHANG : 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) return os_fail(err, errno, "waitpid");
    memset(out, 0, sizeof *out);
    if (r == 0) return SM_OK; /* still running */
    out->exited = 1;
    if (WIFEXITED(st)) {
        out->code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        out->signaled = 1;
        out->code = WTERMSIG(st);
    }
    return SM_OK;
}

sm_status sm_process_write_all(sm_err *err, int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return os_fail(err, errno, "write");
        }
        p += w;
        len -= (size_t)w;
    }
    return SM_OK;
}

sm_status sm_process_read_all(sm_err *err, int fd, void *buf, size_t len, size_t *got)
{
    char *p = buf;
    size_t n = 0;
    while (n < len) {
        ssize_t r = read(fd, p + n, len - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            *got = n;
            return os_fail(err, errno, "read");
        }
        if (r == 0) break; /* end of file */
        n += (size_t)r;
    }
    *got = n;
    return SM_OK;
}

void sm_process_exit_now(int code)
{
    _exit(code);
}

int sm_process_getpid(void)
{
    return (int)getpid();
}

sm_status sm_process_spawn(sm_err *err, int *pid, const char *const *argv, const int fds[3],
                           const char *const *envp, int new_group)
{
    if (!argv || !argv[0] || !argv[0][0]) return sm_fail(err, SM_EINVAL, "empty argument vector");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int e = posix_spawn_file_actions_init(&fa);
    if (e) return os_fail(err, e, "posix_spawn_file_actions_init");
    e = posix_spawnattr_init(&at);
    if (e) {
        posix_spawn_file_actions_destroy(&fa);
        return os_fail(err, e, "posix_spawnattr_init");
    }
    for (int i = 0; i < 3 && !e; i++)
        if (fds[i] >= 0) e = posix_spawn_file_actions_adddup2(&fa, fds[i], i); /* dup2 clears CLOEXEC */
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGINT);
    if (!e) e = posix_spawnattr_setsigmask(&at, &none);
    if (!e) e = posix_spawnattr_setsigdefault(&at, &dflt);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (new_group) {
        if (!e) e = posix_spawnattr_setpgroup(&at, 0); /* a group of its own: its pid */
        flags |= POSIX_SPAWN_SETPGROUP;
    }
    if (!e) e = posix_spawnattr_setflags(&at, flags);
    pid_t p = -1;
    if (!e) e = posix_spawnp(&p, argv[0], &fa, &at, (char *const *)argv, envp ? (char *const *)envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (e) {
        char what[96];
        snprintf(what, sizeof what, "cannot run '%.64s'", argv[0]);
        return os_fail(err, e, what);
    }
    *pid = (int)p;
    return SM_OK;
}
