/* SPDX-License-Identifier: MIT */
#include "tools/listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKLOG 16

static int bad_uri(const char *uri, char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen,
		 "bad listen URI '%s': %s (use tcp:HOST:PORT, unix:PATH or tls:HOST:PORT)", uri,
		 why);
	return -EINVAL;
}

/* "HOST:PORT" with HOST possibly empty or [v6]. */
static int parse_host_port(const char *uri, const char *s, struct listener_addr *a, char *err,
			   size_t errlen)
{
	const char *colon, *host = s;
	size_t hl;
	unsigned long port;
	char *end;

	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return bad_uri(uri, err, errlen, "an IPv6 address needs [ADDRESS]:PORT");
		host = s + 1;
		hl = (size_t)(rb - host);
		colon = rb + 1;
		if (!hl)
			return bad_uri(uri, err, errlen, "empty IPv6 address");
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return bad_uri(uri, err, errlen, "no port");
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl))
			return bad_uri(uri, err, errlen,
				       "an IPv6 address needs brackets: [ADDRESS]");
	}
	if (hl >= sizeof(a->host))
		return bad_uri(uri, err, errlen, "host name too long");
	if (!colon[1])
		return bad_uri(uri, err, errlen, "no port");
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return bad_uri(uri, err, errlen, "the port is not a number");
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || port > 65535 || strlen(colon + 1) > 5)
		return bad_uri(uri, err, errlen, "the port is not in 0..65535");
	memcpy(a->host, host, hl);
	a->host[hl] = '\0';
	snprintf(a->port, sizeof(a->port), "%lu", port);
	return 0;
}

int listener_parse(const char *uri, struct listener_addr *a, char *err, size_t errlen)
{
	const char *rest;

	memset(a, 0, sizeof(*a));
	if (!strncmp(uri, "tcp:", 4)) {
		a->kind = LISTENER_TCP;
		rest = uri + 4;
		if (!strncmp(rest, "//", 2))
			rest += 2;
		return parse_host_port(uri, rest, a, err, errlen);
	}
	if (!strncmp(uri, "tls:", 4)) {
		snprintf(err, errlen, "--listen %s: TLS is not implemented yet", uri);
		return -EOPNOTSUPP;
	}
	if (!strncmp(uri, "unix:", 5)) {
		a->kind = LISTENER_UNIX;
		rest = uri + 5;
		if (!strncmp(rest, "//", 2))
			rest += 2;
		if (!rest[0])
			return bad_uri(uri, err, errlen, "no socket path");
		if (strlen(rest) >= sizeof(a->path))
			return bad_uri(uri, err, errlen, "socket path longer than 107 bytes");
		snprintf(a->path, sizeof(a->path), "%s", rest);
		return 0;
	}
	return bad_uri(uri, err, errlen, "unknown scheme");
}

/* Refuse a live socket or a non-socket at path; remove a stale socket. */
static int clear_stale(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen,
			 "cannot listen on unix:%s: the file exists and is not a socket; "
			 "refusing to replace it",
			 path);
		return -EEXIST;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-ret));
		return ret;
	}
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	close(fd);
	if (ret == 0) {
		snprintf(err, errlen, "cannot listen on unix:%s: another process listens there",
			 path);
		return -EADDRINUSE;
	}
	if (ret != -ECONNREFUSED) {
		snprintf(err, errlen, "cannot listen on unix:%s: checking the existing socket: %s",
			 path, strerror(-ret));
		return ret;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		ret = -errno;
		snprintf(err, errlen, "cannot remove the stale socket %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	return 0;
}

static int open_unix(struct listener *l, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = l->addr.path;
	struct stat st;
	int fd, ret;

	ret = clear_stale(path, err, errlen);
	if (ret < 0)
		return ret;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-ret));
		return ret;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, BACKLOG) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot listen on unix:%s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	if (stat(path, &st) == 0) {
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	l->fd = fd;
	snprintf(l->bound, sizeof(l->bound), "unix:%s", path);
	if (path[0] == '/')
		snprintf(l->connect_uri, sizeof(l->connect_uri), "unix://%s", path);
	else
		l->connect_uri[0] = '\0'; /* the source needs an absolute path */
	return 0;
}

/* Describe the bound address numerically: "[::1]:4444" or "127.0.0.1:4444". */
static void describe(const struct sockaddr *sa, socklen_t len, char *hostport, size_t cap)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(hostport, cap, "?");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(hostport, cap, "[%.64s]:%.8s", host, port);
	else
		snprintf(hostport, cap, "%.64s:%.8s", host, port);
}

static int open_tcp(struct listener *l, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL, *p;
	const char *host = l->addr.host[0] ? l->addr.host : NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char hp[96];
	int fd = -1, ret, one = 1;

	ret = getaddrinfo(host, l->addr.port, &hints, &ai);
	if (ret) {
		snprintf(err, errlen, "cannot listen on tcp:%s:%s: %s", l->addr.host, l->addr.port,
			 gai_strerror(ret));
		return -EADDRNOTAVAIL;
	}
	ret = -EADDRNOTAVAIL;
	for (p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, p->ai_addr, p->ai_addrlen) == 0 && listen(fd, BACKLOG) == 0)
			break;
		ret = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot listen on tcp:%s%s%s:%s: %s",
			 strchr(l->addr.host, ':') ? "[" : "", l->addr.host,
			 strchr(l->addr.host, ':') ? "]" : "", l->addr.port, strerror(-ret));
		return ret;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		ret = -errno;
		snprintf(err, errlen, "getsockname: %s", strerror(-ret));
		close(fd);
		return ret;
	}
	describe((struct sockaddr *)&ss, sl, hp, sizeof(hp));
	l->fd = fd;
	snprintf(l->bound, sizeof(l->bound), "tcp:%s", hp);
	snprintf(l->connect_uri, sizeof(l->connect_uri), "tcp://%s", hp);
	return 0;
}

int listener_open(struct listener *l, const struct listener_addr *a, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->addr = *a;
	switch (a->kind) {
	case LISTENER_TCP:
		return open_tcp(l, err, errlen);
	case LISTENER_UNIX:
		return open_unix(l, err, errlen);
	case LISTENER_TLS:
		break;
	}
	snprintf(err, errlen, "TLS listeners are not implemented yet");
	return -EOPNOTSUPP;
}

void listener_close(struct listener *l)
{
	struct stat st;

	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	if (l->addr.kind == LISTENER_UNIX && stat(l->addr.path, &st) == 0 && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		unlink(l->addr.path);
}
