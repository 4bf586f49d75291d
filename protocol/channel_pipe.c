/* SPDX-License-Identifier: MIT */
/*
 * channel_pipe.c - a channel over two file descriptors, one read and one
 * written: the stdin and stdout that sshd gives `kvmigd --incoming stdio`
 * (pipes or a socket pair, whichever the sshd chose), handed to the agent.
 *
 * Both fds are made non-blocking; every wait polls the fd and the eventfd
 * of its direction, which channel_shutdown() signals, since pipes have no
 * shutdown(2) to wake a blocked poll (one eventfd per direction: a
 * SHUT_WR after the last frame leaves the reader waiting as before, not
 * woken over and over). EOF on the read side is the peer closing the
 * stream; EPIPE on the write side the peer gone. SIGPIPE is never raised,
 * whatever the process does with it: a socket is written with
 * MSG_NOSIGNAL, a pipe with SIGPIPE blocked in the writing thread, the
 * one a failed write raised taken back (sigtimedwait) before unblocking.
 */
#include "protocol/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"

struct pipe_conn {
	int rfd, wfd;
	int efd_rd, efd_wr; /* signalled by channel_shutdown() for its direction */
	bool wsock;	    /* wfd is a socket: MSG_NOSIGNAL */
	atomic_bool shut_rd, shut_wr;
};

/* Wait for events on fd or a shutdown. Return: 0, -ECANCELED, -ETIMEDOUT, -errno. */
static int wait_io(struct pipe_conn *c, int fd, short events, int timeout_ms, bool rd)
{
	struct pollfd p[2] = {{.fd = fd, .events = events},
			      {.fd = rd ? c->efd_rd : c->efd_wr, .events = POLLIN}};
	int n;

	for (;;) {
		if (atomic_load(rd ? &c->shut_rd : &c->shut_wr))
			return -ECANCELED;
		n = poll(p, 2, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		if (atomic_load(rd ? &c->shut_rd : &c->shut_wr))
			return -ECANCELED;
		if (p[0].revents)
			return 0;
	}
}

/*
 * writev() that never raises SIGPIPE: send() with MSG_NOSIGNAL on a
 * socket; on a pipe, SIGPIPE blocked in this thread, and the one an EPIPE
 * left pending (unless one was pending already) taken before unblocking.
 */
static ssize_t write_nosig(const struct pipe_conn *c, struct iovec *v, int n)
{
	struct timespec zero = {0, 0};
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t ret;
	int e;

	if (c->wsock) {
		struct msghdr mh = {.msg_iov = v, .msg_iovlen = (size_t)n};

		return sendmsg(c->wfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	ret = writev(c->wfd, v, n);
	e = errno;
	if (ret < 0 && e == EPIPE && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return ret;
}

static int pipe_send(struct channel *ch, const struct iovec *iov, int iovcnt, char *err,
		     size_t errlen)
{
	struct pipe_conn *c = channel_priv(ch);
	struct iovec v[CHANNEL_IOV_MAX];
	int i = 0, ret;

	if (iovcnt < 0 || iovcnt > CHANNEL_IOV_MAX)
		return err_set(-EINVAL, err, errlen, "send: %d iovecs", iovcnt);
	memcpy(v, iov, (size_t)iovcnt * sizeof(*v));
	while (i < iovcnt) {
		ssize_t n;

		if (!v[i].iov_len) {
			i++;
			continue;
		}
		if (atomic_load(&c->shut_wr)) /* as a shut socket: nothing more goes out */
			return err_set(-ECANCELED, err, errlen, "the channel was shut down");
		n = write_nosig(c, v + i, iovcnt - i);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return err_set(-ECONNRESET, err, errlen, "the peer closed its end");
			if (errno != EAGAIN)
				return err_set(-errno, err, errlen, "write: %s", strerror(errno));
			ret = wait_io(c, c->wfd, POLLOUT, channel_timeout(ch), false);
			if (ret == -ETIMEDOUT)
				return err_set(ret, err, errlen, "the peer accepted no data for %d ms",
					       channel_timeout(ch));
			if (ret < 0)
				return err_set(ret, err, errlen, "%s",
					       ret == -ECANCELED ? "the channel was shut down"
							 : strerror(-ret));
			continue;
		}
		i = channel_iov_advance(v, i, iovcnt, (size_t)n);
	}
	return 0;
}

static ssize_t pipe_recv(struct channel *ch, void *buf, size_t min, size_t max, char *err,
			 size_t errlen)
{
	struct pipe_conn *c = channel_priv(ch);
	size_t got = 0;
	int ret;

	if (min == 0 || min > max)
		return err_set(-EINVAL, err, errlen, "recv: min %zu, max %zu", min, max);
	while (got < min) {
		ssize_t n;

		if (atomic_load(&c->shut_rd))
			return err_set(-ECANCELED, err, errlen, "the channel was shut down");
		n = read(c->rfd, (uint8_t *)buf + got, max - got);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0) {
			if (got)
				return err_set(-ECONNRESET, err, errlen,
					       "the peer closed the stream inside a frame");
			return err_set(-ENODATA, err, errlen, "the peer closed the stream");
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return err_set(-errno, err, errlen, "read: %s", strerror(errno));
		ret = wait_io(c, c->rfd, POLLIN, channel_timeout(ch), true);
		if (ret == -ETIMEDOUT)
			return err_set(ret, err, errlen, "no data from the peer for %d ms",
				       channel_timeout(ch));
		if (ret < 0)
			return err_set(ret, err, errlen, "%s",
				       ret == -ECANCELED ? "the channel was shut down"
							 : strerror(-ret));
	}
	return (ssize_t)got;
}

static int pipe_wait(struct channel *ch, int timeout_ms)
{
	struct pipe_conn *c = channel_priv(ch);
	int ret = wait_io(c, c->rfd, POLLIN, timeout_ms, true);

	if (ret == -ETIMEDOUT)
		return 0;
	/* a shutdown is reported by the read that follows */
	return ret == -ECANCELED ? 1 : ret < 0 ? ret : 1;
}

static int pipe_shutdown(struct channel *ch, int how)
{
	struct pipe_conn *c = channel_priv(ch);
	uint64_t one = 1;
	int ret = 0;

	if (how == SHUT_RD || how == SHUT_RDWR) {
		atomic_store(&c->shut_rd, true);
		if (write(c->efd_rd, &one, sizeof(one)) < 0)
			ret = -errno;
	}
	if (how == SHUT_WR || how == SHUT_RDWR) {
		atomic_store(&c->shut_wr, true);
		/* the peer sees EOF once every copy of the write end is closed */
		if (c->wsock)
			(void)shutdown(c->wfd, SHUT_WR);
		if (write(c->efd_wr, &one, sizeof(one)) < 0)
			ret = -errno;
	}
	return ret;
}

static void pipe_close(struct channel *ch)
{
	struct pipe_conn *c = channel_priv(ch);

	if (!c)
		return;
	close(c->rfd);
	if (c->wfd != c->rfd)
		close(c->wfd);
	close(c->efd_rd);
	close(c->efd_wr);
	free(c);
}

static int pipe_get_fd(const struct channel *ch)
{
	const struct pipe_conn *c = channel_priv(ch);

	return c ? c->rfd : -1;
}

static const struct channel_ops channel_pipe_ops = {
	.name = "stdio",
	.send = pipe_send,
	.recv = pipe_recv,
	.wait = pipe_wait,
	.shutdown = pipe_shutdown,
	.close = pipe_close,
	.get_fd = pipe_get_fd,
};

int channel_pipe_open(int rfd, int wfd, int timeout_ms, struct channel **out)
{
	struct pipe_conn *c = calloc(1, sizeof(*c));
	struct stat st;

	*out = NULL;
	if (!c) {
		close(rfd);
		if (wfd != rfd)
			close(wfd);
		return -ENOMEM;
	}
	c->rfd = rfd;
	c->wfd = wfd;
	c->efd_rd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->efd_wr = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->wsock = fstat(wfd, &st) == 0 && S_ISSOCK(st.st_mode);
	atomic_init(&c->shut_rd, false);
	atomic_init(&c->shut_wr, false);
	if (c->efd_rd < 0 || c->efd_wr < 0 ||
	    fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK) < 0) {
		int e = errno;

		if (c->efd_rd >= 0)
			close(c->efd_rd);
		if (c->efd_wr >= 0)
			close(c->efd_wr);
		close(rfd);
		if (wfd != rfd)
			close(wfd);
		free(c);
		return -e;
	}
	return channel_open(&channel_pipe_ops, rfd, c, timeout_ms, out);
}
