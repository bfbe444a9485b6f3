/*
 * video.c — raw video frames from a pipe (ffmpeg's `-f rawvideo -pix_fmt
 * rgb24` output, ffmpeg being a child process), and the child's end.
 *
 * A frame is width * height * 3 bytes, frames back to back. Both pipe ends
 * we read are non-blocking; waits are poll() on the frame pipe and the
 * child's stderr together, so a child that writes much to stderr never
 * blocks on it while we wait for frames (we keep its last bytes for error
 * messages).
 *
 * Files (live = 0): read() fills the caller's frame directly, blocking
 * until it is complete; every frame is delivered.
 * Live (live = 1): read() drains the pipe. Bytes go into buf[cur] up to the
 * frame boundary; a completed buffer becomes the newest frame and cur
 * flips to the other one (overwriting the older complete frame, counted as
 * dropped). When the pipe is empty and a frame completed during this call,
 * it is copied out; the partial next frame stays in buf[cur] for the next
 * call. So the two buffers are always {newest complete, in progress}.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "sm.h"

#define MAX_FRAME_PAIR ((size_t)1 << 31)

static sm_status os_fail(sm_err *err, int errnum, const char *what)
{
    char buf[128];
    const char *why = strerror_r(errnum, buf, sizeof buf);
    return sm_fail(err, errnum == ENOMEM ? SM_ENOMEM : SM_EIO, "%s: %s", what, why);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

sm_status sm_video_pipe(sm_err *err, int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) != 0) return os_fail(err, errno, "pipe");
    int fl = fcntl(fds[0], F_GETFL);
    if (fl < 0 || fcntl(fds[0], F_SETFL, fl | O_NONBLOCK) != 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return os_fail(err, e, "fcntl");
    }
    return SM_OK;
}

static int nonblocking_fd(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

sm_status sm_video_reader_check(sm_err *err, int fd, int log_fd, int width, int height, int live)
{
    if (width < 1 || height < 1 || width > SM_IMAGE_MAX_SIDE || height > SM_IMAGE_MAX_SIDE)
        return sm_fail(err, SM_EINVAL, "frame size %dx%d out of range (each side 1..%d)", width, height,
                       SM_IMAGE_MAX_SIDE);
    if ((size_t)width * (size_t)height * 3 * 2 > MAX_FRAME_PAIR)
        return sm_fail(err, SM_ELIMIT, "frames of %dx%d are too large (two frames over 2 GiB)", width, height);
    if (fd < 0 || !nonblocking_fd(fd))
        return sm_fail(err, SM_EINVAL, "descriptor %d is not an open non-blocking descriptor", fd);
    if (log_fd != -1 && (log_fd < 0 || !nonblocking_fd(log_fd)))
        return sm_fail(err, SM_EINVAL, "log descriptor %d is not an open non-blocking descriptor", log_fd);
    (void)live;
    return SM_OK;
}

size_t sm_video_reader_workspace_size(int width, int height, int live)
{
    return live ? (size_t)width * (size_t)height * 3 * 2 : 0;
}

void sm_video_reader_init(sm_video_reader *r, int fd, int log_fd, int width, int height, int live,
                          int timeout_ms, uint8_t *workspace)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->log_fd = log_fd;
    r->width = width;
    r->height = height;
    r->live = live != 0;
    r->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
    r->frame_bytes = (size_t)width * (size_t)height * 3;
    if (r->live) {
        r->buf[0] = workspace;
        r->buf[1] = workspace + r->frame_bytes;
#ifdef F_SETPIPE_SZ
        /* Room for 4 frames (at most 4 MiB), so the child keeps up with its
         * source while we are busy; best effort, halved until allowed. */
        size_t want = r->frame_bytes * 4;
        if (want > ((size_t)4 << 20)) want = (size_t)4 << 20;
        int cur = fcntl(fd, F_GETPIPE_SZ);
        for (size_t sz = want; cur >= 0 && sz > (size_t)cur; sz /= 2)
            if (fcntl(fd, F_SETPIPE_SZ, (int)sz) >= 0) break;
#endif
    }
}

/* Appends n bytes to the log tail, keeping the last SM_VIDEO_LOG_LEN. */
static void log_append(sm_video_reader *r, const char *p, size_t n)
{
    if (n >= SM_VIDEO_LOG_LEN) {
        p += n - SM_VIDEO_LOG_LEN;
        n = SM_VIDEO_LOG_LEN;
    }
    if (r->log_len + n > SM_VIDEO_LOG_LEN) {
        size_t drop = r->log_len + n - SM_VIDEO_LOG_LEN;
        memmove(r->log, r->log + drop, r->log_len - drop);
        r->log_len -= drop;
    }
    memcpy(r->log + r->log_len, p, n);
    r->log_len += n;
    r->log[r->log_len] = '\0';
}

/* Reads whatever the child's stderr holds now; closes it at its end. */
static void drain_log(sm_video_reader *r)
{
    char buf[512];
    while (r->log_fd >= 0) {
        ssize_t n = read(r->log_fd, buf, sizeof buf);
        if (n > 0) {
            log_append(r, buf, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(r->log_fd);
                r->log_fd = -1;
            }
            return;
        }
    }
}

/* Waits until the frame pipe is readable (draining stderr meanwhile).
 * SM_EIO when the deadline (ms, -1: none) passes. */
static sm_status wait_readable(sm_err *err, sm_video_reader *r, int64_t deadline)
{
    for (;;) {
        struct pollfd p[2] = {{r->fd, POLLIN, 0}, {r->log_fd, POLLIN, 0}};
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return sm_fail(err, SM_EIO, "no frame within %.3g s", (double)r->timeout_ms / 1000.0);
            wait = left > 1 << 30 ? 1 << 30 : (int)left;
        }
        int n = poll(p, r->log_fd >= 0 ? 2 : 1, wait);
        if (n < 0) {
            if (errno == EINTR) continue;
            return os_fail(err, errno, "poll");
        }
        if (r->log_fd >= 0 && p[1].revents) drain_log(r);
        if (p[0].revents) return SM_OK; /* data, end of file or an error: read() tells */
    }
}

/* One read() into dst + have, up to the frame boundary. Returns bytes
 * read, 0 at end of file, -1 with errno (EAGAIN: nothing now). */
static ssize_t read_part(sm_video_reader *r, uint8_t *dst)
{
    ssize_t n;
    do n = read(r->fd, dst + r->have, r->frame_bytes - r->have);
    while (n < 0 && errno == EINTR);
    return n;
}

static sm_status at_eof(sm_err *err, sm_video_reader *r)
{
    r->eof = 1;
    if (r->have == 0) return SM_OK;
    size_t have = r->have;
    r->have = 0;
    return sm_fail(err, SM_EFORMAT, "the stream ended in the middle of a frame (%zu of %zu bytes)", have,
                   r->frame_bytes);
}

static sm_status read_file_frame(sm_err *err, uint8_t *dst, int *got, int64_t *index, sm_video_reader *r,
                                 int64_t deadline)
{
    for (;;) {
        ssize_t n = read_part(r, dst);
        if (n > 0) {
            r->have += (size_t)n;
            if (r->have == r->frame_bytes) {
                r->have = 0;
                *got = 1;
                *index = ++r->frames;
                return SM_OK;
            }
        } else if (n == 0) {
            return at_eof(err, r);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            sm_status st = wait_readable(err, r, deadline);
            if (st != SM_OK) return st;
        } else {
            return os_fail(err, errno, "read");
        }
    }
}

static sm_status read_live_frame(sm_err *err, uint8_t *dst, int *got, int64_t *index, int64_t *dropped,
                                 sm_video_reader *r, int64_t deadline)
{
    int newest = -1; /* the buffer holding the newest frame completed in this call */
    sm_status st = SM_OK;
    for (;;) {
        ssize_t n = read_part(r, r->buf[r->cur]);
        if (n > 0) {
            r->have += (size_t)n;
            if (r->have == r->frame_bytes) {
                if (newest >= 0) ++*dropped;
                newest = r->cur;
                r->cur ^= 1;
                r->have = 0;
                r->frames++;
            }
            continue;
        }
        if (n == 0) {
            /* A part after the newest frame is an error only when that
             * frame has been delivered (the next read reports it). */
            if (newest < 0) return at_eof(err, r);
            if (r->have == 0) r->eof = 1;
            break;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            st = os_fail(err, errno, "read");
            if (newest < 0) return st;
            break; /* deliver the frame; the error comes back on the next read */
        }
        if (newest >= 0) break; /* drained: the newest complete frame is it */
        st = wait_readable(err, r, deadline);
        if (st != SM_OK) return st;
    }
    memcpy(dst, r->buf[newest], r->frame_bytes);
    *got = 1;
    *index = r->frames;
    return SM_OK;
}

sm_status sm_video_read(sm_err *err, uint8_t *dst, int *got, int64_t *index, int64_t *dropped,
                        sm_video_reader *r)
{
    *got = 0;
    *index = 0;
    *dropped = 0;
    if (r->eof || r->fd < 0) return SM_OK;
    drain_log(r);
    int64_t deadline = r->timeout_ms < 0 ? -1 : now_ms() + r->timeout_ms;
    sm_status st = r->live ? read_live_frame(err, dst, got, index, dropped, r, deadline)
                           : read_file_frame(err, dst, got, index, r, deadline);
    if (st != SM_OK) r->eof = 1; /* a broken stream is over */
    return st;
}

/* Polls waitpid for up to ms; 1 when the child has been reaped. */
static int reap_within(sm_process_status *st, int pid, int ms)
{
    int64_t end = now_ms() + ms;
    for (;;) {
        int status = 0;
        pid_t w = waitpid((pid_t)pid, &status, WNOHANG);
        if (w == (pid_t)pid || (w < 0 && errno == ECHILD)) {
            if (w == (pid_t)pid) {
                st->exited = 1;
                st->signaled = WIFSIGNALED(status);
                st->code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? WTERMSIG(status) : 0;
            }
            return 1;
        }
        if (w < 0 && errno != EINTR) return 1; /* not ours to wait for */
        if (now_ms() >= end) return 0;
        sleep_ms(5);
    }
}

void sm_video_reader_close(sm_process_status *st, int *by_itself, sm_video_reader *r, int wait_ms, int term_ms)
{
    memset(st, 0, sizeof *st);
    *by_itself = 0;
    if (r->fd >= 0) {
        close(r->fd);
        r->fd = -1;
    }
    r->eof = 1;
    if (r->pid > 0) {
        int pid = r->pid;
        r->pid = 0;
        if (reap_within(st, pid, wait_ms < 0 ? 0 : wait_ms)) {
            *by_itself = st->exited;
        } else {
            kill((pid_t)pid, SIGTERM);
            if (!reap_within(st, pid, term_ms < 0 ? 0 : term_ms)) {
                kill((pid_t)pid, SIGKILL);
                int status;
                while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {}
            }
            memset(st, 0, sizeof *st);
        }
    }
    /* The child is gone: its stderr ends after what it wrote. */
    while (r->log_fd >= 0) {
        drain_log(r);
        if (r->log_fd < 0) break;
        struct pollfd p = {r->log_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) { /* a grandchild may hold it open: give up */
            close(r->log_fd);
            r->log_fd = -1;
        }
    }
}

sm_status sm_video_read_all(sm_err *err, size_t *got, char *buf, size_t cap, int fd, int timeout_ms)
{
    *got = 0;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        char extra;
        ssize_t n = *got < cap ? read(fd, buf + *got, cap - *got) : read(fd, &extra, 1);
        if (n > 0) {
            if (*got == cap) return sm_fail(err, SM_ELIMIT, "output longer than %zu bytes", cap);
            *got += (size_t)n;
            continue;
        }
        if (n == 0) return SM_OK;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return os_fail(err, errno, "read");
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) return sm_fail(err, SM_EIO, "no end of output within %.3g s", timeout_ms / 1000.0);
            wait = left > 1 << 30 ? 1 << 30 : (int)left;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait) < 0 && errno != EINTR) return os_fail(err, errno, "poll");
    }
}
