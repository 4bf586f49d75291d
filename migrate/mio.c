/* SPDX-License-Identifier: MIT */
#include "migrate/mio.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/xio.h"

#define FILE_BUF (4u << 20)

struct file_priv {
	int fd;
	uint8_t *buf;
	size_t len;
	int err;
};

static int file_flush(struct mio *io)
{
	struct file_priv *f = io->priv;

	if (!f->err && f->len)
		f->err = write_all(f->fd, f->buf, f->len);
	f->len = 0;
	return f->err;
}

static int file_write(struct mio *io, const void *buf, size_t len)
{
	struct file_priv *f = io->priv;

	if (f->err)
		return f->err;
	if (len >= FILE_BUF) {
		if (file_flush(io) < 0)
			return f->err;
		f->err = write_all(f->fd, buf, len);
		return f->err;
	}
	if (f->len + len > FILE_BUF && file_flush(io) < 0)
		return f->err;
	memcpy(f->buf + f->len, buf, len);
	f->len += len;
	return 0;
}

static int file_read(struct mio *io, void *buf, size_t len)
{
	struct file_priv *f = io->priv;
	int ret = read_all(f->fd, buf, len);

	if (!ret)
		io->bytes_in += len;
	return ret;
}

static void file_close(struct mio *io)
{
	struct file_priv *f = io->priv;

	if (!f)
		return;
	free(f->buf);
	free(f);
	io->priv = NULL;
}

int mio_file_open(struct mio *io, int fd)
{
	struct file_priv *f = calloc(1, sizeof(*f));

	memset(io, 0, sizeof(*io));
	if (!f)
		return -ENOMEM;
	f->buf = malloc(FILE_BUF);
	if (!f->buf) {
		free(f);
		return -ENOMEM;
	}
	f->fd = fd;
	io->write = file_write;
	io->flush = file_flush;
	io->read = file_read;
	io->close = file_close;
	io->priv = f;
	return 0;
}

int mio_read_frame(struct mio *io, uint8_t *buf, size_t cap, struct frame_hdr *h, char *err,
		   size_t errlen)
{
	int ret;

	ret = io->read(io, buf, WIRE_HDR_BYTES);
	if (ret == -ENODATA) {
		snprintf(err, errlen, "the stream ended");
		return ret;
	}
	if (ret < 0) {
		if (ret == -ECONNRESET)
			snprintf(err, errlen, "the stream ended inside a frame header");
		else
			snprintf(err, errlen, "reading the stream failed: %s", strerror(-ret));
		return ret;
	}
	ret = frame_check_header(buf, WIRE_HDR_BYTES, h, err, errlen);
	if (ret < 0)
		return ret;
	if (frame_total(h) > cap) {
		snprintf(err, errlen, "%s frame of %u bytes exceeds the %zu-byte buffer",
			 frame_type_name(h->type), h->len, cap);
		return -EBADMSG;
	}
	ret = io->read(io, buf + WIRE_HDR_BYTES, h->len + WIRE_CRC_BYTES);
	if (ret < 0) {
		snprintf(err, errlen, "the stream ended inside a %s frame of %u bytes",
			 frame_type_name(h->type), h->len);
		return ret == -ENODATA ? -ECONNRESET : ret;
	}
	return frame_check_crc(buf, frame_total(h), err, errlen);
}

/* ---- sockets ---------------------------------------------------------------- */

#define SOCK_BUF (1u << 20)
#define SOCK_IO_TIMEOUT_MS 30000

struct sock_priv {
	int fd;
	uint8_t *buf;
	size_t len;
	int err;
};

static int sock_wait(struct mio *io, int timeout_ms)
{
	struct sock_priv *s = io->priv;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	int n;

	do {
		n = poll(&p, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n > 0 ? 1 : 0;
}

static int sock_send_all(struct sock_priv *s, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			struct pollfd pf = { .fd = s->fd, .events = POLLOUT };
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return errno == EPIPE ? -ECONNRESET : -errno;
			do {
				r = poll(&pf, 1, SOCK_IO_TIMEOUT_MS);
			} while (r < 0 && errno == EINTR);
			if (r == 0)
				return -ETIMEDOUT;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sock_flush(struct mio *io)
{
	struct sock_priv *s = io->priv;

	if (!s->err && s->len)
		s->err = sock_send_all(s, s->buf, s->len);
	s->len = 0;
	return s->err;
}

static int sock_write(struct mio *io, const void *buf, size_t len)
{
	struct sock_priv *s = io->priv;

	if (s->err)
		return s->err;
	if (s->len + len > SOCK_BUF && sock_flush(io) < 0)
		return s->err;
	if (len >= SOCK_BUF) {
		s->err = sock_send_all(s, buf, len);
		return s->err;
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

static int sock_read(struct mio *io, void *buf, size_t len)
{
	struct sock_priv *s = io->priv;
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(s->fd, p + done, len - done, 0);

		if (n < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			r = sock_wait(io, SOCK_IO_TIMEOUT_MS);
			if (r < 0)
				return r;
			if (r == 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n == 0)
			return done ? -ECONNRESET : -ENODATA;
		done += (size_t)n;
	}
	io->bytes_in += len;
	return 0;
}

static void sock_close(struct mio *io)
{
	struct sock_priv *s = io->priv;

	if (!s)
		return;
	close(s->fd);
	free(s->buf);
	free(s);
	io->priv = NULL;
}

int mio_socket_open(struct mio *io, int fd)
{
	struct sock_priv *s = calloc(1, sizeof(*s));
	int one = 1, sz = 4 << 20;

	memset(io, 0, sizeof(*io));
	if (!s)
		return -ENOMEM;
	s->buf = malloc(SOCK_BUF);
	if (!s->buf) {
		free(s);
		return -ENOMEM;
	}
	s->fd = fd;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	io->write = sock_write;
	io->flush = sock_flush;
	io->read = sock_read;
	io->close = sock_close;
	io->wait = sock_wait;
	io->priv = s;
	return 0;
}

/* Split "HOST:PORT" (HOST may be [v6]). Return: 0 or -EINVAL. */
static int split_host_port(const char *s, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon;
	size_t hl;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		s++;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (!hl || hl >= hcap || !colon[1] || strlen(colon + 1) >= pcap)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	for (const char *p = port; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	return atoi(port) > 0 && atoi(port) < 65536 ? 0 : -EINVAL;
}

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int soerr = 0, r;
	socklen_t sl = sizeof(soerr);

	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (connect(fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		return -errno;
	return -soerr;
}

int mio_connect(struct mio *io, const char *uri, int timeout_ms, char *err, size_t errlen)
{
	int fd = -1, ret;

	if (!strncmp(uri, "unix://", 7)) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		const char *path = uri + 7;

		if (path[0] != '/' || strlen(path) >= sizeof(sun.sun_path)) {
			snprintf(err, errlen, "bad unix URI '%s': use unix:///ABSOLUTE/PATH", uri);
			return -EINVAL;
		}
		strcpy(sun.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		ret = connect_timeout(fd, (struct sockaddr *)&sun, sizeof(sun), timeout_ms);
	} else if (!strncmp(uri, "tcp://", 6)) {
		char host[256], port[16];
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *a;

		if (split_host_port(uri + 6, host, sizeof(host), port, sizeof(port)) < 0) {
			snprintf(err, errlen, "bad tcp URI '%s': use tcp://HOST:PORT", uri);
			return -EINVAL;
		}
		ret = getaddrinfo(host, port, &hints, &ai);
		if (ret) {
			snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(ret));
			return -EHOSTUNREACH;
		}
		ret = -ECONNREFUSED;
		for (a = ai; a; a = a->ai_next) {
			fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0)
				continue;
			ret = connect_timeout(fd, a->ai_addr, a->ai_addrlen, timeout_ms);
			if (!ret)
				break;
			close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
	} else {
		const char *colon = strstr(uri, "://");

		snprintf(err, errlen, "unsupported destination '%s'%s (tcp://HOST:PORT, unix:///PATH)",
			 uri, colon && (!strncmp(uri, "tls", 3) || !strncmp(uri, "ssh", 3))
				      ? ": TLS and SSH are not implemented yet"
				      : "");
		return -EINVAL;
	}
	if (ret < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", uri, strerror(-ret));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = mio_socket_open(io, fd);
	if (ret < 0) {
		close(fd);
		snprintf(err, errlen, "out of memory");
	}
	return ret;
}
