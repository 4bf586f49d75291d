/* SPDX-License-Identifier: MIT */
/*
 * channel.c - what every transport shares: the output and input buffers,
 * checked frame reads, counters, timeouts, the scheme table, listeners,
 * and the connection ops of a plain stream socket (TCP and unix).
 *
 * The two directions never touch the same fields: the sender's half and
 * the receiver's half of struct channel sit on separate cache lines and
 * only the counters read by channel_get_stats() are atomic (relaxed).
 */
#include "protocol/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"

#define MSG_BYTES 200

struct channel {
	const struct channel_ops *ops;
	void *priv;
	int fd;
	int timeout_ms;
	atomic_bool shut_rd, shut_wr;	/* this side shut down: -ECANCELED */

	/* the sending thread's half */
	_Alignas(64) uint8_t *obuf;
	size_t olen;
	int werr;			/* first send error, repeated after */
	char wmsg[MSG_BYTES];
	_Atomic uint64_t bytes_sent, frames_sent, sends;

	/* the receiving thread's half */
	_Alignas(64) uint8_t *ibuf;
	size_t ipos, ilen;		/* unread bytes: ibuf[ipos..ilen) */
	int rerr;
	char rmsg[MSG_BYTES];
	_Atomic uint64_t bytes_received, frames_received, recvs;
};

static void count(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- scheme table ------------------------------------------------------------ */

static const struct channel_ops *const transports[] = {
	[URI_TCP] = &channel_tcp_ops,
	[URI_TLS] = &channel_tls_ops,
	[URI_UNIX] = &channel_unix_ops,
	[URI_SSH] = &channel_ssh_ops,
};
_Static_assert(sizeof(transports) / sizeof(transports[0]) == URI_SCHEME_COUNT,
	       "one transport slot per URI scheme");

const struct channel_ops *channel_ops_for(enum uri_scheme scheme)
{
	return (unsigned)scheme < URI_SCHEME_COUNT ? transports[scheme] : NULL;
}

/* ---- lifetime ------------------------------------------------------------------ */

int channel_open(const struct channel_ops *ops, int fd, void *priv, int timeout_ms,
		 struct channel **out)
{
	struct channel *ch = aligned_alloc(64, ALIGN_UP(sizeof(*ch), 64));

	*out = NULL;
	if (ch) {
		memset(ch, 0, sizeof(*ch));
		ch->obuf = malloc(CHANNEL_OBUF_BYTES);
		ch->ibuf = malloc(CHANNEL_IBUF_BYTES);
	}
	if (!ch || !ch->obuf || !ch->ibuf) {
		struct channel tmp;

		if (ch) {
			free(ch->obuf);
			free(ch->ibuf);
			free(ch);
		}
		/* the transport still owns fd and priv: let it release them */
		memset(&tmp, 0, sizeof(tmp));
		tmp.ops = ops;
		tmp.fd = fd;
		tmp.priv = priv;
		ops->close(&tmp);
		return -ENOMEM;
	}
	ch->ops = ops;
	ch->fd = fd;
	ch->priv = priv;
	ch->timeout_ms = timeout_ms;
	atomic_init(&ch->shut_rd, false);
	atomic_init(&ch->shut_wr, false);
	*out = ch;
	return 0;
}

void channel_close(struct channel *ch)
{
	if (!ch)
		return;
	ch->ops->close(ch);
	free(ch->obuf);
	free(ch->ibuf);
	free(ch);
}

void channel_set_timeout(struct channel *ch, int timeout_ms)
{
	ch->timeout_ms = timeout_ms;
}

int channel_timeout(const struct channel *ch)
{
	return ch->timeout_ms;
}

const char *channel_transport(const struct channel *ch)
{
	return ch->ops->name;
}

int channel_handshake(struct channel *ch, char *err, size_t errlen)
{
	return ch->ops->handshake ? ch->ops->handshake(ch, err, errlen) : 0;
}

void channel_get_info(const struct channel *ch, struct channel_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->kind, sizeof(info->kind), "%s", ch->ops->name);
	if (ch->ops->info)
		ch->ops->info(ch, info);
}

int channel_fd(const struct channel *ch)
{
	return ch->ops->get_fd(ch);
}

void *channel_priv(const struct channel *ch)
{
	return ch->priv;
}

void channel_get_stats(const struct channel *ch, struct channel_stats *st)
{
	st->bytes_sent = atomic_load_explicit(&ch->bytes_sent, memory_order_relaxed);
	st->bytes_received = atomic_load_explicit(&ch->bytes_received, memory_order_relaxed);
	st->frames_sent = atomic_load_explicit(&ch->frames_sent, memory_order_relaxed);
	st->frames_received = atomic_load_explicit(&ch->frames_received, memory_order_relaxed);
	st->sends = atomic_load_explicit(&ch->sends, memory_order_relaxed);
	st->recvs = atomic_load_explicit(&ch->recvs, memory_order_relaxed);
}

int channel_shutdown(struct channel *ch, int how)
{
	if (how == SHUT_RD || how == SHUT_RDWR)
		atomic_store(&ch->shut_rd, true);
	if (how == SHUT_WR || how == SHUT_RDWR)
		atomic_store(&ch->shut_wr, true);
	return ch->ops->shutdown(ch, how);
}

/* ---- sending ------------------------------------------------------------------- */

/* Latch the first send error; the stream is no longer whole after it. */
static int wfail(struct channel *ch, int ret, const char *msg, char *err, size_t errlen)
{
	ch->werr = ret;
	snprintf(ch->wmsg, sizeof(ch->wmsg), "%s", msg);
	return err_set(ret, err, errlen, "%s", msg);
}

static int send_iov(struct channel *ch, const struct iovec *iov, int n, char *err, size_t errlen)
{
	char msg[MSG_BYTES];
	uint64_t bytes = 0;
	int ret;

	for (int i = 0; i < n; i++)
		bytes += iov[i].iov_len;
	count(&ch->sends, 1);
	msg[0] = '\0';
	ret = ch->ops->send(ch, iov, n, msg, sizeof(msg));
	if (ret < 0)
		return wfail(ch, ret, msg, err, errlen);
	count(&ch->bytes_sent, bytes);
	return 0;
}

int channel_write(struct channel *ch, const void *frame, size_t len, char *err, size_t errlen)
{
	struct iovec iov[2];
	int n = 0, ret;

	if (ch->werr)
		return err_set(ch->werr, err, errlen, "channel failed earlier: %s", ch->wmsg);
	if (len <= CHANNEL_COPY_MAX && len <= CHANNEL_OBUF_BYTES - ch->olen) {
		memcpy(ch->obuf + ch->olen, frame, len);
		ch->olen += len;
		count(&ch->frames_sent, 1);
		return 0;
	}
	/* a large frame, or a full buffer: one send for both */
	if (ch->olen) {
		iov[n].iov_base = ch->obuf;
		iov[n++].iov_len = ch->olen;
	}
	iov[n].iov_base = (void *)(uintptr_t)frame;
	iov[n++].iov_len = len;
	ret = send_iov(ch, iov, n, err, errlen);
	if (ret < 0)
		return ret;
	ch->olen = 0;
	count(&ch->frames_sent, 1);
	return 0;
}

int channel_flush(struct channel *ch, char *err, size_t errlen)
{
	struct iovec iov;
	int ret;

	if (ch->werr)
		return err_set(ch->werr, err, errlen, "channel failed earlier: %s", ch->wmsg);
	if (!ch->olen)
		return 0;
	iov.iov_base = ch->obuf;
	iov.iov_len = ch->olen;
	ret = send_iov(ch, &iov, 1, err, errlen);
	if (ret == 0)
		ch->olen = 0;
	return ret;
}

/* ---- receiving ----------------------------------------------------------------- */

PRINTF_FMT(5, 6) static int rfail(struct channel *ch, int ret, char *err, size_t errlen,
				  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ch->rmsg, sizeof(ch->rmsg), fmt, ap);
	va_end(ap);
	ch->rerr = ret;
	return err_set(ret, err, errlen, "%s", ch->rmsg);
}

static ssize_t recv_some(struct channel *ch, void *buf, size_t min, size_t max, char *msg,
			 size_t msglen)
{
	ssize_t n;

	count(&ch->recvs, 1);
	msg[0] = '\0';
	n = ch->ops->recv(ch, buf, min, max, msg, msglen);
	if (n > 0)
		count(&ch->bytes_received, (uint64_t)n);
	return n;
}

/* Make ibuf hold at least WIRE_HDR_BYTES unread bytes. */
static int fill_header(struct channel *ch, char *msg, size_t msglen)
{
	while (ch->ilen - ch->ipos < WIRE_HDR_BYTES) {
		ssize_t n;

		if (ch->ipos) {
			memmove(ch->ibuf, ch->ibuf + ch->ipos, ch->ilen - ch->ipos);
			ch->ilen -= ch->ipos;
			ch->ipos = 0;
		}
		n = recv_some(ch, ch->ibuf + ch->ilen, 1, CHANNEL_IBUF_BYTES - ch->ilen, msg,
			      msglen);
		if (n < 0)
			return (int)n;
		ch->ilen += (size_t)n;
	}
	return 0;
}

ssize_t channel_read_frame(struct channel *ch, uint8_t *buf, size_t cap, struct frame_hdr *h,
			   char *err, size_t errlen)
{
	char msg[MSG_BYTES];
	size_t total, have;
	ssize_t n;
	int ret;

	if (ch->rerr)
		return err_set(ch->rerr, err, errlen, "channel failed earlier: %s", ch->rmsg);
	ret = fill_header(ch, msg, sizeof(msg));
	if (ret < 0) {
		have = ch->ilen - ch->ipos;
		/* nothing consumed yet: the caller may try again */
		if (ret == -ETIMEDOUT)
			return err_set(ret, err, errlen, "no frame from the peer for %d ms",
				       ch->timeout_ms);
		/* EOF between frames: the end of the stream, -ENODATA */
		if (have == 0)
			return rfail(ch, ret, err, errlen, "%s", msg);
		return rfail(ch, ret == -ENODATA ? -ECONNRESET : ret, err, errlen,
			     "%s after %zu of the 8 bytes of a frame header", msg, have);
	}
	ret = frame_check_header(ch->ibuf + ch->ipos, WIRE_HDR_BYTES, h, msg, sizeof(msg));
	if (ret < 0)
		return rfail(ch, ret, err, errlen, "%s", msg);
	total = frame_total(h);
	if (total > cap)
		return rfail(ch, -ENOSPC, err, errlen,
			     "a %s frame of %zu bytes does not fit the %zu-byte buffer",
			     frame_type_name(h->type), total, cap);

	/* what is buffered first, then the rest */
	have = MIN(ch->ilen - ch->ipos, total);
	memcpy(buf, ch->ibuf + ch->ipos, have);
	ch->ipos += have;
	if (ch->ipos == ch->ilen)
		ch->ipos = ch->ilen = 0;
	while (have < total) {
		size_t rest = total - have;

		if (rest >= CHANNEL_IBUF_BYTES / 2) {
			/* large: straight into the caller's buffer */
			n = recv_some(ch, buf + have, 1, rest, msg, sizeof(msg));
			if (n < 0)
				goto cut;
			have += (size_t)n;
		} else {
			/* small: read ahead into ibuf (empty here) */
			size_t take;

			n = recv_some(ch, ch->ibuf, 1, CHANNEL_IBUF_BYTES, msg, sizeof(msg));
			if (n < 0)
				goto cut;
			take = MIN((size_t)n, rest);
			memcpy(buf + have, ch->ibuf, take);
			have += take;
			ch->ipos = take;
			ch->ilen = (size_t)n;
			if (ch->ipos == ch->ilen)
				ch->ipos = ch->ilen = 0;
		}
	}
	ret = frame_check_crc(buf, total, msg, sizeof(msg));
	if (ret < 0)
		return rfail(ch, ret, err, errlen, "%s", msg);
	count(&ch->frames_received, 1);
	return (ssize_t)total;
cut:
	/* EOF inside a frame: the frame is cut, the peer is gone */
	return rfail(ch, n == -ENODATA ? -ECONNRESET : (int)n, err, errlen,
		     "%s inside a %s frame (%zu of %zu bytes read)", msg, frame_type_name(h->type),
		     have, total);
}

int channel_wait(struct channel *ch, int timeout_ms)
{
	struct pollfd p = { .fd = ch->ops->get_fd(ch), .events = POLLIN };
	int n;

	if (ch->rerr || ch->ilen > ch->ipos)
		return 1;
	if (ch->ops->wait)
		return ch->ops->wait(ch, timeout_ms);
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n > 0;
}

/* ---- stream sockets -------------------------------------------------------------- */

/* Wait for events on fd, at most timeout_ms (< 0: forever). Return: 0, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events, int timeout_ms)
{
	uint64_t deadline = timeout_ms >= 0 ? clock_now_ms() + (uint64_t)timeout_ms : 0;
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		int left = -1, n;

		if (timeout_ms >= 0) {
			uint64_t now = clock_now_ms();

			left = now >= deadline ? 0 : (int)(deadline - now);
		}
		n = poll(&p, 1, left);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* A failed sendmsg/recv: the peer gone, this side shut down, or another error. */
static int sock_error(struct channel *ch, int e, bool sending, char *err, size_t errlen)
{
	bool shut = atomic_load(sending ? &ch->shut_wr : &ch->shut_rd);

	switch (e) {
	case EPIPE:
	case ECONNRESET:
	case ENOTCONN:
	case ESHUTDOWN:
		if (shut)
			return err_set(-ECANCELED, err, errlen, "the channel was shut down");
		return err_set(-ECONNRESET, err, errlen, "the peer closed the connection (%s)",
			       strerror(e));
	default:
		return err_set(-e, err, errlen, "%s: %s", sending ? "send" : "recv", strerror(e));
	}
}

int channel_iov_advance(struct iovec *v, int i, int iovcnt, size_t done)
{
	while (done && i < iovcnt) {
		if (done >= v[i].iov_len) {
			done -= v[i].iov_len;
			i++;
		} else {
			v[i].iov_base = (uint8_t *)v[i].iov_base + done;
			v[i].iov_len -= done;
			done = 0;
		}
	}
	return i;
}

int channel_sock_send(struct channel *ch, const struct iovec *iov, int iovcnt, char *err,
		      size_t errlen)
{
	struct iovec v[CHANNEL_IOV_MAX];
	int i = 0, ret;

	if (iovcnt < 0 || iovcnt > CHANNEL_IOV_MAX)
		return err_set(-EINVAL, err, errlen, "send: %d iovecs", iovcnt);
	memcpy(v, iov, (size_t)iovcnt * sizeof(*v));
	while (i < iovcnt) {
		struct msghdr mh;
		ssize_t n;

		if (!v[i].iov_len) {
			i++;
			continue;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = v + i;
		mh.msg_iovlen = (size_t)(iovcnt - i);
		n = sendmsg(ch->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN /* = EWOULDBLOCK on Linux */)
				return sock_error(ch, errno, true, err, errlen);
			ret = wait_fd(ch->fd, POLLOUT, ch->timeout_ms);
			if (ret == -ETIMEDOUT)
				return err_set(ret, err, errlen,
					       "the peer accepted no data for %d ms",
					       ch->timeout_ms);
			if (ret < 0)
				return err_set(ret, err, errlen, "poll: %s", strerror(-ret));
			continue;
		}
		i = channel_iov_advance(v, i, iovcnt, (size_t)n);
	}
	return 0;
}

ssize_t channel_sock_recv(struct channel *ch, void *buf, size_t min, size_t max, char *err,
			  size_t errlen)
{
	size_t got = 0;
	int ret;

	if (min == 0 || min > max)
		return err_set(-EINVAL, err, errlen, "recv: min %zu, max %zu", min, max);
	while (got < min) {
		ssize_t n = recv(ch->fd, (uint8_t *)buf + got, max - got, MSG_DONTWAIT);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0) {
			if (atomic_load(&ch->shut_rd))
				return err_set(-ECANCELED, err, errlen,
					       "the channel was shut down");
			if (got)
				return err_set(-ECONNRESET, err, errlen,
					       "the peer closed the connection");
			return err_set(-ENODATA, err, errlen, "the peer closed the connection");
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN /* = EWOULDBLOCK on Linux */)
			return sock_error(ch, errno, false, err, errlen);
		ret = wait_fd(ch->fd, POLLIN, ch->timeout_ms);
		if (ret == -ETIMEDOUT)
			return err_set(ret, err, errlen, "no data from the peer for %d ms",
				       ch->timeout_ms);
		if (ret < 0)
			return err_set(ret, err, errlen, "poll: %s", strerror(-ret));
	}
	return (ssize_t)got;
}

int channel_sock_shutdown(struct channel *ch, int how)
{
	return shutdown(ch->fd, how) < 0 ? -errno : 0;
}

void channel_sock_close(struct channel *ch)
{
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
}

int channel_sock_get_fd(const struct channel *ch)
{
	return ch->fd;
}

void channel_sock_set_buffers(int fd)
{
	int sz = (int)CHANNEL_SOCKBUF_BYTES;

	/* best effort: the kernel caps the size, and a failure costs only speed */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

int channel_sock_connect(int family, const void *addr, size_t addrlen, int timeout_ms,
			 int (*setup)(int fd), int *fd)
{
	int s, ret = 0, soerr = 0;
	socklen_t len = sizeof(soerr);

	*fd = -1;
	s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -errno;
	if (setup) {
		ret = setup(s);
		if (ret < 0)
			goto out;
	}
	if (connect(s, addr, (socklen_t)addrlen) < 0) {
		if (errno != EINPROGRESS) {
			ret = -errno;
			goto out;
		}
		ret = wait_fd(s, POLLOUT, timeout_ms);
		if (ret < 0)
			goto out;
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			ret = -errno;
		else if (soerr)
			ret = -soerr;
		if (ret < 0)
			goto out;
	}
	/* sends and receives say MSG_DONTWAIT; the socket itself blocks */
	ret = set_nonblock(s, false);
out:
	if (ret < 0)
		close(s);
	else
		*fd = s;
	return ret;
}

int channel_sock_accept(int lfd, int timeout_ms, int *fd)
{
	uint64_t deadline = timeout_ms >= 0 ? clock_now_ms() + (uint64_t)timeout_ms : 0;
	int ret;

	*fd = -1;
	ret = set_nonblock(lfd, true);
	for (; ret == 0;) {
		int left = -1, s;

		if (timeout_ms >= 0) {
			uint64_t now = clock_now_ms();

			left = now >= deadline ? 0 : (int)(deadline - now);
		}
		ret = wait_fd(lfd, POLLIN, left);
		if (ret == -ETIMEDOUT && timeout_ms == 0)
			ret = -EAGAIN;
		if (ret < 0)
			break;
		s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (s >= 0) {
			*fd = s;
			return 0;
		}
		/* a connection that went away before we took it: wait again */
		if (errno != EAGAIN /* = EWOULDBLOCK on Linux */ && errno != EINTR &&
		    errno != ECONNABORTED)
			ret = -errno;
	}
	return ret;
}

int channel_sock_accept_setup(int lfd, int wait_ms, void (*setup)(int fd), int *fd, char *err,
			      size_t errlen)
{
	int ret = channel_sock_accept(lfd, wait_ms, fd);

	if (ret == -EAGAIN)
		return ret;
	if (ret == -ETIMEDOUT)
		return err_set(ret, err, errlen, "no connection within %d ms", wait_ms);
	if (ret < 0)
		return err_set(ret, err, errlen, "accept: %s", strerror(-ret));
	setup(*fd);
	return 0;
}

int channel_sock_accept_open(const struct channel_ops *ops, int lfd, int wait_ms, int timeout_ms,
			     void (*setup)(int fd), struct channel **out, char *err, size_t errlen)
{
	int fd, ret = channel_sock_accept_setup(lfd, wait_ms, setup, &fd, err, errlen);

	if (ret < 0)
		return ret;
	ret = channel_open(ops, fd, NULL, timeout_ms, out);
	if (ret < 0)
		return err_set(ret, err, errlen, "accept: out of memory");
	return 0;
}

/* ---- connect, listen, accept ------------------------------------------------------ */

struct channel_listener {
	const struct channel_ops *ops;
	struct uri uri;		/* as given, with the port bound */
	int fd;
	void *priv;
};

static const struct channel_ops *transport(const struct uri *u, const char *what, char *err,
					   size_t errlen)
{
	const struct channel_ops *ops = channel_ops_for(u->scheme);

	if (!ops)
		err_set(-EOPNOTSUPP, err, errlen, "%s: the %s transport is not in this build yet",
			what, uri_scheme_name(u->scheme));
	return ops;
}

int channel_connect_opts(const char *uri, const struct channel_opts *o, int timeout_ms,
			 struct channel **out, char *err, size_t errlen)
{
	static const struct channel_opts none;
	const struct channel_ops *ops;
	struct uri u;
	int ret;

	*out = NULL;
	ret = uri_parse(uri, &u, err, errlen);
	if (ret < 0)
		return ret;
	ops = transport(&u, uri, err, errlen);
	if (!ops || !ops->connect)
		return ops ? err_set(-EOPNOTSUPP, err, errlen, "%s: cannot connect", uri)
			   : -EOPNOTSUPP;
	return ops->connect(&u, o ? o : &none, timeout_ms, out, err, errlen);
}

int channel_connect(const char *uri, int timeout_ms, struct channel **out, char *err,
		    size_t errlen)
{
	return channel_connect_opts(uri, NULL, timeout_ms, out, err, errlen);
}

int channel_listen_opts(const char *spec, const struct channel_opts *o,
			struct channel_listener **out, char *err, size_t errlen)
{
	static const struct channel_opts none;
	struct channel_listener *l;
	const struct channel_ops *ops;
	struct uri u;
	int ret;

	*out = NULL;
	ret = uri_parse_listen(spec, &u, err, errlen);
	if (ret < 0)
		return ret;
	ops = transport(&u, spec, err, errlen);
	if (!ops || !ops->listen)
		return ops ? err_set(-EOPNOTSUPP, err, errlen, "%s: cannot listen", spec)
			   : -EOPNOTSUPP;
	l = calloc(1, sizeof(*l));
	if (!l)
		return err_set(-ENOMEM, err, errlen, "out of memory");
	l->ops = ops;
	l->uri = u;
	l->fd = -1;
	ret = ops->listen(&l->uri, o ? o : &none, &l->fd, &l->priv, err, errlen);
	if (ret < 0) {
		free(l);
		return ret;
	}
	*out = l;
	return 0;
}

int channel_listen(const char *spec, struct channel_listener **out, char *err, size_t errlen)
{
	return channel_listen_opts(spec, NULL, out, err, errlen);
}

int channel_accept(struct channel_listener *l, int timeout_ms, struct channel **out, char *err,
		   size_t errlen)
{
	*out = NULL;
	return l->ops->accept(l->fd, l->priv, timeout_ms, timeout_ms, out, err, errlen);
}

int channel_accept_pending(struct channel_listener *l, int timeout_ms, struct channel **out,
			   char *err, size_t errlen)
{
	*out = NULL;
	return l->ops->accept(l->fd, l->priv, 0, timeout_ms, out, err, errlen);
}

int channel_listener_addr(const struct channel_listener *l, char *buf, size_t cap)
{
	return uri_format_listen(&l->uri, buf, cap);
}

uint16_t channel_listener_port(const struct channel_listener *l)
{
	return l->uri.scheme == URI_UNIX ? 0 : l->uri.port;
}

int channel_listener_fd(const struct channel_listener *l)
{
	return l->fd;
}

int channel_listener_uri(const struct channel_listener *l, char *buf, size_t cap)
{
	struct uri u = l->uri;
	int n;

	if (u.scheme == URI_UNIX) {
		char cwd[4096];

		if (u.path[0] == '/')
			n = snprintf(buf, cap, "unix://%s", u.path);
		else if (getcwd(cwd, sizeof(cwd)))
			n = snprintf(buf, cap, "unix://%s/%s", strcmp(cwd, "/") ? cwd : "", u.path);
		else
			return -errno;
		return n < 0 ? -EINVAL : (size_t)n >= cap ? -ENOSPC : n;
	}
	/* a wildcard address is reached through loopback */
	if (!u.host[0] || !strcmp(u.host, "0.0.0.0"))
		snprintf(u.host, sizeof(u.host), "127.0.0.1");
	else if (!strcmp(u.host, "::"))
		snprintf(u.host, sizeof(u.host), "::1");
	return uri_format(&u, buf, cap);
}

int channel_listener_add_psk(struct channel_listener *l, const char *identity, const uint8_t *key,
			     size_t len, uint64_t expires_ms)
{
	if (l->ops != &channel_tls_ops)
		return -EOPNOTSUPP;
	return channel_tls_add_psk(l->priv, identity, key, len, expires_ms);
}

void channel_listener_remove_psk(struct channel_listener *l, const char *identity)
{
	if (l->ops == &channel_tls_ops)
		channel_tls_remove_psk(l->priv, identity);
}

void channel_listener_close(struct channel_listener *l)
{
	if (!l)
		return;
	l->ops->unlisten(&l->uri, l->fd, l->priv);
	free(l);
}
