/* SPDX-License-Identifier: MIT */
/*
 * channel_unix.c - the unix-socket transport: unix:///PATH and unix:PATH,
 * for two agents on one host (tests, benchmarks, local moves).
 *
 * SO_SNDBUF is raised as for TCP (a unix stream socket queues the
 * sender's buffer; the default 208 KiB costs a wakeup per 208 KiB).
 * A socket file whose listener died is replaced: bind() fails with
 * EADDRINUSE, a connect() to it is refused, so the file is stale. One with
 * a live listener is left alone (-EADDRINUSE), and so is a file of another
 * kind (-EEXIST). On close the listener removes the file
 * only if it is still the one it created (same device and inode).
 */
#include "protocol/channel.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/err.h"

#define LISTEN_BACKLOG 64
#define PROBE_TIMEOUT_MS 1000

/* The file a listener made, so that close removes only that one. */
struct unix_listener {
	dev_t dev;
	ino_t ino;
};

static int make_addr(const char *path, struct sockaddr_un *sa, size_t *len)
{
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	*len = offsetof(struct sockaddr_un, sun_path) + n + 1;
	return 0;
}

static int before_connect(int fd)
{
	channel_sock_set_buffers(fd);
	return 0;
}

static int unix_connect(const struct uri *u, const struct channel_opts *o, int timeout_ms,
			struct channel **out, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	size_t len;
	int fd, ret;

	(void)o;
	ret = make_addr(u->path, &sa, &len);
	if (ret < 0)
		return err_set(ret, err, errlen, "unix socket path too long: %s", u->path);
	ret = channel_sock_connect(AF_UNIX, &sa, len, timeout_ms, before_connect, &fd);
	switch (ret) {
	case 0:
		break;
	case -ENOENT:
		return err_set(ret, err, errlen, "cannot connect to unix://%s: no such socket",
			       u->path);
	case -ECONNREFUSED:
		return err_set(ret, err, errlen,
			       "cannot connect to unix://%s: nobody listens there", u->path);
	case -ETIMEDOUT:
		return err_set(ret, err, errlen,
			       "cannot connect to unix://%s: no answer within %d ms", u->path,
			       timeout_ms);
	default:
		return err_set(ret, err, errlen, "cannot connect to unix://%s: %s", u->path,
			       strerror(-ret));
	}
	ret = channel_open(&channel_unix_ops, fd, NULL, timeout_ms, out);
	if (ret < 0)
		return err_set(ret, err, errlen, "unix://%s: out of memory", u->path);
	return 0;
}

/*
 * What holds a path that bind() found in use: 0 a socket file nobody
 * accepts on (left by a dead listener: replace it), -EADDRINUSE a live
 * listener, -EEXIST a file that is not a socket, other -errno when the
 * probe itself failed.
 */
static int probe_existing(const struct sockaddr_un *sa, size_t len)
{
	struct stat st;
	int fd, ret;

	if (lstat(sa->sun_path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	ret = channel_sock_connect(AF_UNIX, sa, len, PROBE_TIMEOUT_MS, NULL, &fd);
	if (ret == 0)
		close(fd);
	if (ret == -ECONNREFUSED)
		return 0;
	/* accepted, or a backlog too full to answer: someone listens */
	return ret == 0 || ret == -EAGAIN || ret == -ETIMEDOUT ? -EADDRINUSE : ret;
}

static int unix_listen(struct uri *u, const struct channel_opts *o, int *fd, void **priv,
		       char *err, size_t errlen)
{
	struct unix_listener *ul = NULL;
	struct sockaddr_un sa;
	struct stat st;
	size_t len;
	int s = -1, ret;

	(void)o;
	*fd = -1;
	*priv = NULL;
	ret = make_addr(u->path, &sa, &len);
	if (ret < 0)
		return err_set(ret, err, errlen, "unix socket path too long: %s", u->path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return err_set(-errno, err, errlen, "socket: %s", strerror(errno));
	channel_sock_set_buffers(s);
	if (bind(s, (const struct sockaddr *)&sa, (socklen_t)len) < 0) {
		ret = -errno;
		if (ret == -EADDRINUSE) {
			ret = probe_existing(&sa, len);
			if (ret == 0 && unlink(sa.sun_path) < 0 && errno != ENOENT)
				ret = -errno;
			if (ret == 0)
				ret = bind(s, (const struct sockaddr *)&sa, (socklen_t)len) < 0
					      ? -errno
					      : 0;
		}
		if (ret == -EADDRINUSE) {
			ret = err_set(ret, err, errlen,
				      "cannot listen on unix:%s: another process listens there",
				      u->path);
			goto out;
		}
		if (ret == -EEXIST) {
			ret = err_set(ret, err, errlen,
				      "cannot listen on unix:%s: the file exists and is not a "
				      "socket; refusing to replace it",
				      u->path);
			goto out;
		}
		if (ret < 0) {
			ret = err_set(ret, err, errlen, "cannot listen on unix:%s: %s", u->path,
				      strerror(-ret));
			goto out;
		}
	}
	if (listen(s, LISTEN_BACKLOG) < 0) {
		ret = err_set(-errno, err, errlen, "cannot listen on unix:%s: %s", u->path,
			      strerror(errno));
		unlink(sa.sun_path);
		goto out;
	}
	ul = calloc(1, sizeof(*ul));
	if (ul && stat(sa.sun_path, &st) == 0) {
		ul->dev = st.st_dev;
		ul->ino = st.st_ino;
	}
	*fd = s;
	*priv = ul;
	return 0;
out:
	close(s);
	return ret;
}

static int unix_accept(int lfd, void *priv, int wait_ms, int timeout_ms, struct channel **out,
		       char *err, size_t errlen)
{
	(void)priv;
	return channel_sock_accept_open(&channel_unix_ops, lfd, wait_ms, timeout_ms,
					channel_sock_set_buffers, out, err, errlen);
}

static void unix_unlisten(const struct uri *u, int fd, void *priv)
{
	struct unix_listener *ul = priv;
	struct stat st;

	if (fd >= 0)
		close(fd);
	if (ul && ul->ino && stat(u->path, &st) == 0 && st.st_dev == ul->dev &&
	    st.st_ino == ul->ino)
		unlink(u->path);
	free(ul);
}

const struct channel_ops channel_unix_ops = {
	.name = "unix",
	.send = channel_sock_send,
	.recv = channel_sock_recv,
	.shutdown = channel_sock_shutdown,
	.close = channel_sock_close,
	.get_fd = channel_sock_get_fd,
	.connect = unix_connect,
	.listen = unix_listen,
	.accept = unix_accept,
	.unlisten = unix_unlisten,
};
