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
 * Live (live = 1): a thread (live_thread) polls the pipe, the child's
 * stderr and a wake-up pipe, and reads as soon as bytes arrive, so the
 * child never blocks on a full pipe while the consumer is busy: bytes go
 * into buf[cur] up to the frame boundary; a completed buffer becomes the
 * newest frame (publish: cur flips under the lock, so the two buffers are
 * always {newest complete, in progress}; an undelivered frame that gets
 * overwritten is counted as dropped). read() waits on a condition variable
 * until a frame is ready or the thread has ended, and copies the newest
 * frame out under the lock (the thread meanwhile fills the other buffer).
 * The thread only ends at end of file, on an error (kept for read() to
 * return after any frame still ready) or when close() wakes it; close()
 * joins it before closing any descriptor.
 *
 * Writing (sm_video_writer, for ffmpeg's `-f rawvideo -i pipe:0`): each
 * frame goes whole from the caller's pixels to the child's stdin (our end
 * non-blocking, waits are poll() on it and the child's stderr together);
 * SIGPIPE is blocked around write(), so a dead child is EPIPE. The output
 * file is a temporary created here (O_EXCL) and renamed over the target
 * only when the child finished cleanly (sm_video_commit).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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

sm_status sm_video_pipe(sm_err *err, int fds[2], int ours)
{
    if (pipe2(fds, O_CLOEXEC) != 0) return os_fail(err, errno, "pipe");
    int end = ours ? 1 : 0;
    int fl = fcntl(fds[end], F_GETFL);
    if (fl < 0 || fcntl(fds[end], F_SETFL, fl | O_NONBLOCK) != 0) {
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

/* Appends n bytes to the log tail, keeping the last SM_VIDEO_LOG_LEN.
 * Under the lock while the thread runs. */
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

/* Reads whatever the child's stderr holds now; closes it at its end. Run
 * by the thread while it runs (log_fd is then its own), else by the
 * consumer. */
static void drain_log(sm_video_reader *r)
{
    char buf[512];
    while (r->log_fd >= 0) {
        ssize_t n = read(r->log_fd, buf, sizeof buf);
        if (n > 0) {
            if (r->started) pthread_mutex_lock(&r->lock);
            log_append(r, buf, (size_t)n);
            if (r->started) pthread_mutex_unlock(&r->lock);
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

size_t sm_video_reader_log(char *out, sm_video_reader *r)
{
    if (r->started) pthread_mutex_lock(&r->lock);
    size_t n = r->log_len;
    memcpy(out, r->log, n);
    out[n] = '\0';
    if (r->started) pthread_mutex_unlock(&r->lock);
    return n;
}

int64_t sm_video_reader_frames(sm_video_reader *r)
{
    if (r->started) pthread_mutex_lock(&r->lock);
    int64_t n = r->frames;
    if (r->started) pthread_mutex_unlock(&r->lock);
    return n;
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

/* ---- live: the draining thread ---------------------------------------------- */

/* A frame completed in buf[cur]: it becomes the newest, cur flips to the
 * other buffer (whose frame, if not delivered, is dropped). */
static void publish(sm_video_reader *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->ready) r->dropped++;
    r->cur ^= 1;
    r->ready = 1;
    r->frames++;
    pthread_cond_signal(&r->changed);
    pthread_mutex_unlock(&r->lock);
    r->have = 0;
}

/* Reads what the pipe holds now. *end 1 at end of file; SM_EFORMAT when
 * it ends in the middle of a frame. */
static sm_status drain_frames(sm_err *err, int *end, sm_video_reader *r)
{
    for (;;) {
        ssize_t n = read_part(r, r->buf[r->cur]);
        if (n > 0) {
            r->have += (size_t)n;
            if (r->have == r->frame_bytes) publish(r);
        } else if (n == 0) {
            *end = 1;
            if (r->have == 0) return SM_OK;
            return sm_fail(err, SM_EFORMAT, "the stream ended in the middle of a frame (%zu of %zu bytes)",
                           r->have, r->frame_bytes);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return SM_OK;
        } else {
            return os_fail(err, errno, "read");
        }
    }
}

static void *live_thread(void *arg)
{
    sm_video_reader *r = arg;
    sm_err err;
    sm_status st = SM_OK;
    for (;;) {
        struct pollfd p[3] = {{r->wake[0], POLLIN, 0}, {r->fd, POLLIN, 0}, {r->log_fd, POLLIN, 0}};
        int n = poll(p, r->log_fd >= 0 ? 3 : 2, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            st = os_fail(&err, errno, "poll");
            break;
        }
        if (p[0].revents) break; /* close() wants us gone */
        if (r->log_fd >= 0 && p[2].revents) drain_log(r);
        if (p[1].revents) { /* data, end of file or an error: read() tells */
            int end = 0;
            st = drain_frames(&err, &end, r);
            if (st != SM_OK || end) break;
        }
    }
    pthread_mutex_lock(&r->lock);
    r->done = 1;
    r->done_status = st;
    if (st != SM_OK) r->done_err = err;
    pthread_cond_signal(&r->changed);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

sm_status sm_video_reader_start(sm_err *err, sm_video_reader *r)
{
    if (!r->live || r->started || r->fd < 0) return SM_OK;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0) return os_fail(err, rc, "pthread_condattr_init");
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* read()'s deadline is monotonic */
    if (rc == 0) rc = pthread_cond_init(&r->changed, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) return os_fail(err, rc, "pthread_cond_init");
    rc = pthread_mutex_init(&r->lock, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&r->changed);
        return os_fail(err, rc, "pthread_mutex_init");
    }
    if (pipe2(r->wake, O_CLOEXEC) != 0) {
        rc = errno;
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->changed);
        return os_fail(err, rc, "pipe");
    }
    /* The thread inherits a full signal mask: signals stay with the caller. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r->started = 1; /* before the thread runs: drain_log and publish lock */
    rc = pthread_create(&r->thread, NULL, live_thread, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        r->started = 0;
        close(r->wake[0]);
        close(r->wake[1]);
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->changed);
        return os_fail(err, rc, "pthread_create");
    }
    return SM_OK;
}

/* Stops and joins the thread; the reader is the consumer's alone after. */
static void stop_thread(sm_video_reader *r)
{
    if (!r->started) return;
    char one = 1;
    while (write(r->wake[1], &one, 1) < 0 && errno == EINTR) {}
    pthread_join(r->thread, NULL);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
    r->started = 0;
}

static sm_status read_live_frame(sm_err *err, uint8_t *dst, int *got, int64_t *index, int64_t *dropped,
                                 sm_video_reader *r, int64_t deadline)
{
    if (!r->started) return sm_fail(err, SM_EINVAL, "the live reader was not started");
    sm_status st = SM_OK;
    pthread_mutex_lock(&r->lock);
    while (!r->ready && !r->done) {
        if (deadline < 0) {
            pthread_cond_wait(&r->changed, &r->lock);
            continue;
        }
        struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
        if (pthread_cond_timedwait(&r->changed, &r->lock, &ts) == ETIMEDOUT && !r->ready && !r->done) {
            st = sm_fail(err, SM_EIO, "no frame within %.3g s", (double)r->timeout_ms / 1000.0);
            break;
        }
    }
    if (st == SM_OK && r->ready) {
        memcpy(dst, r->buf[r->cur ^ 1], r->frame_bytes);
        r->ready = 0;
        *got = 1;
        *index = r->frames;
        *dropped = r->dropped;
        r->dropped = 0;
    } else if (st == SM_OK) { /* the thread ended and every frame has been delivered */
        st = r->done_status;
        if (st != SM_OK) *err = r->done_err;
        else r->eof = 1;
    }
    pthread_mutex_unlock(&r->lock);
    return st;
}

sm_status sm_video_read(sm_err *err, uint8_t *dst, int *got, int64_t *index, int64_t *dropped,
                        sm_video_reader *r)
{
    *got = 0;
    *index = 0;
    *dropped = 0;
    if (r->eof || r->fd < 0) return SM_OK;
    if (!r->started) drain_log(r); /* else the thread drains it */
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
    stop_thread(r);
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

/* ---- writing: raw frames to a child's stdin -------------------------------- */

#define MAX_FRAME ((size_t)1 << 31)

sm_status sm_video_writer_check(sm_err *err, int fd, int log_fd, int width, int height)
{
    if (width < 1 || height < 1 || width > SM_IMAGE_MAX_SIDE || height > SM_IMAGE_MAX_SIDE)
        return sm_fail(err, SM_EINVAL, "frame size %dx%d out of range (each side 1..%d)", width, height,
                       SM_IMAGE_MAX_SIDE);
    if ((size_t)width * (size_t)height * 3 > MAX_FRAME)
        return sm_fail(err, SM_ELIMIT, "frames of %dx%d are too large (over 2 GiB)", width, height);
    if (fd < 0 || fcntl(fd, F_GETFL) < 0)
        return sm_fail(err, SM_EINVAL, "descriptor %d is not an open descriptor", fd);
    if (log_fd != -1 && (log_fd < 0 || !nonblocking_fd(log_fd)))
        return sm_fail(err, SM_EINVAL, "log descriptor %d is not an open non-blocking descriptor", log_fd);
    return SM_OK;
}

void sm_video_writer_init(sm_video_writer *w, int fd, int log_fd, int width, int height, int timeout_ms)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->log_fd = log_fd;
    w->width = width;
    w->height = height;
    w->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
    w->frame_bytes = (size_t)width * (size_t)height * 3;
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK); /* else writes just block */
#ifdef F_SETPIPE_SZ
    /* Room for a frame (at most 1 MiB): fewer waits; best effort. */
    size_t want = w->frame_bytes < ((size_t)1 << 20) ? w->frame_bytes : (size_t)1 << 20;
    int cur = fcntl(fd, F_GETPIPE_SZ);
    for (size_t sz = want; cur >= 0 && sz > (size_t)cur; sz /= 2)
        if (fcntl(fd, F_SETPIPE_SZ, (int)sz) >= 0) break;
#endif
}

/* Appends n bytes to the writer's log tail, keeping the last SM_VIDEO_LOG_LEN. */
static void wlog_append(sm_video_writer *w, const char *p, size_t n)
{
    if (n >= SM_VIDEO_LOG_LEN) {
        p += n - SM_VIDEO_LOG_LEN;
        n = SM_VIDEO_LOG_LEN;
    }
    if (w->log_len + n > SM_VIDEO_LOG_LEN) {
        size_t drop = w->log_len + n - SM_VIDEO_LOG_LEN;
        memmove(w->log, w->log + drop, w->log_len - drop);
        w->log_len -= drop;
    }
    memcpy(w->log + w->log_len, p, n);
    w->log_len += n;
    w->log[w->log_len] = '\0';
}

/* Reads whatever the child's stderr holds now; closes it at its end. */
static void wlog_drain(sm_video_writer *w)
{
    char buf[512];
    while (w->log_fd >= 0) {
        ssize_t n = read(w->log_fd, buf, sizeof buf);
        if (n > 0) {
            wlog_append(w, buf, (size_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(w->log_fd);
                w->log_fd = -1;
            }
            return;
        }
    }
}

/* write() with SIGPIPE blocked in this thread: a closed reader gives EPIPE
 * (the signal it raises is consumed unless one was pending before). */
static ssize_t write_nosigpipe(int fd, const void *p, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE) == 1;
    int blocked = pthread_sigmask(SIG_BLOCK, &pipe_set, &old) == 0;
    ssize_t r;
    do r = write(fd, p, n);
    while (r < 0 && errno == EINTR);
    int e = errno;
    if (blocked) {
        if (r < 0 && e == EPIPE && !was_pending) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    errno = e;
    return r;
}

static sm_status write_broken(sm_video_writer *w, sm_status st)
{
    w->broken = 1;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    return st;
}

sm_status sm_video_write(sm_err *err, sm_video_writer *w, const uint8_t *frame)
{
    if (w->broken || w->fd < 0)
        return sm_fail(err, SM_EIO, "the writer is closed or broken (an earlier write failed)");
    size_t done = 0;
    int64_t deadline = -1;
    wlog_drain(w);
    while (done < w->frame_bytes) {
        ssize_t n = write_nosigpipe(w->fd, frame + done, w->frame_bytes - done);
        if (n > 0) {
            done += (size_t)n;
            deadline = -1; /* progress: the timeout counts from here */
            continue;
        }
        if (n < 0 && errno == EPIPE)
            return write_broken(w, sm_fail(err, SM_EIO, "ffmpeg stopped reading frames (broken pipe)"));
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return write_broken(w, os_fail(err, errno, "write"));
        /* The pipe is full: wait for room, draining stderr meanwhile. */
        if (w->timeout_ms >= 0 && deadline < 0) deadline = now_ms() + w->timeout_ms;
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return write_broken(w, sm_fail(err, SM_EIO, "ffmpeg took no frame data for %.3g s",
                                                    (double)w->timeout_ms / 1000.0));
            wait = left > 1 << 30 ? 1 << 30 : (int)left;
        }
        struct pollfd p[2] = {{w->fd, POLLOUT, 0}, {w->log_fd, POLLIN, 0}};
        int k = poll(p, w->log_fd >= 0 ? 2 : 1, wait);
        if (k < 0 && errno != EINTR) return write_broken(w, os_fail(err, errno, "poll"));
        if (k > 0 && w->log_fd >= 0 && p[1].revents) wlog_drain(w);
        /* POLLOUT, POLLERR (reader gone): the next write() tells */
    }
    w->frames++;
    return SM_OK;
}

static void set_status(sm_process_status *st, int status)
{
    st->exited = 1;
    st->signaled = WIFSIGNALED(status);
    st->code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

void sm_video_writer_close(sm_process_status *st, int *by_itself, sm_video_writer *w, int wait_ms)
{
    memset(st, 0, sizeof *st);
    *by_itself = 0;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    w->broken = 1;
    if (w->pid > 0) {
        pid_t pid = (pid_t)w->pid;
        w->pid = 0;
        int64_t end = now_ms() + (wait_ms < 0 ? 0 : wait_ms);
        int reaped = 0;
        for (;;) {
            int status = 0;
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid) {
                set_status(st, status);
                *by_itself = 1;
                reaped = 1;
                break;
            }
            if (r < 0 && errno != EINTR) { /* not ours to wait for (ECHILD) */
                reaped = 1;
                break;
            }
            int64_t left = end - now_ms();
            if (left <= 0) break;
            /* Wait a little, on its stderr when it is open (the child may
             * write to it while it finishes and must not block on it). */
            int ms = left < 10 ? (int)left : 10;
            if (w->log_fd >= 0) {
                struct pollfd p = {w->log_fd, POLLIN, 0};
                if (poll(&p, 1, ms) > 0) wlog_drain(w);
                if (w->log_fd < 0) continue;
            } else {
                sleep_ms(ms);
            }
        }
        if (!reaped) {
            kill(pid, SIGKILL);
            int status;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        }
    }
    /* The child is gone: its stderr ends after what it wrote. */
    while (w->log_fd >= 0) {
        wlog_drain(w);
        if (w->log_fd < 0) break;
        struct pollfd p = {w->log_fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) { /* a grandchild may hold it open: give up */
            close(w->log_fd);
            w->log_fd = -1;
        }
    }
}

sm_status sm_video_create_temp(sm_err *err, char *out, size_t cap, const char *path, const char *suffix)
{
    long pid = (long)getpid();
    for (int k = 0; k < 100; k++) {
        int len = snprintf(out, cap, "%s.tmp.%ld.%d%s", path, pid, k, suffix);
        if (len < 0 || (size_t)len >= cap) return sm_fail(err, SM_EINVAL, "path too long: '%.64s...'", path);
        int fd;
        do fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0) {
            close(fd);
            return SM_OK;
        }
        if (errno != EEXIST) break;
    }
    char why[128];
    return sm_fail(err, SM_EIO, "cannot create a temporary file for '%s': %s", path,
                   strerror_r(errno, why, sizeof why));
}

/* fsync of the directory holding path (best effort where not supported). */
static int sync_directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && (e == EINVAL || e == EROFS)) rc = 0;
    errno = e;
    return rc;
}

static sm_status commit_fail(sm_err *err, int errnum, const char *what, const char *path)
{
    char why[128];
    return sm_fail(err, errnum == ENOMEM ? SM_ENOMEM : SM_EIO, "cannot %s '%s': %s", what, path,
                   strerror_r(errnum, why, sizeof why));
}

sm_status sm_video_commit(sm_err *err, const char *tmp, const char *path, int overwrite)
{
    int fd;
    do fd = open(tmp, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return commit_fail(err, errno, "open the temporary file for", path);
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return commit_fail(err, e, "sync the temporary file for", path);
    }
    close(fd);
    if (overwrite) {
        if (rename(tmp, path) != 0) return commit_fail(err, errno, "rename the temporary file to", path);
    } else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL && errno != ENOSYS) return commit_fail(err, errno, "rename the temporary file to", path);
        /* No RENAME_NOREPLACE here: link fails on an existing path too. */
        if (link(tmp, path) != 0) return commit_fail(err, errno, "link the temporary file to", path);
        unlink(tmp);
    }
    if (sync_directory_of(path) != 0) return commit_fail(err, errno, "sync the directory of", path);
    return SM_OK;
}
