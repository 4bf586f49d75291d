/* SPDX-License-Identifier: MIT */
/*
 * channel_tcp.c - the TCP transport: tcp://HOST:PORT and tcp:HOST:PORT.
 *
 * Socket options, and why:
 *  - SO_SNDBUF/SO_RCVBUF of CHANNEL_SOCKBUF_BYTES, set before connect() or
 *    listen() so the window scale covers them: a migration keeps the pipe
 *    full for seconds, and a long fat link needs a large window. The
 *    kernel caps the value at net.core.[rw]mem_max (setting it turns
 *    autotuning off for that socket; 4 MiB is above what autotuning
 *    reaches on loopback anyway).
 *  - TCP_NODELAY: channel.c already packs small frames into one send, and
 *    a return-path ACK or PAGE_REQ must not wait for Nagle's timer.
 *  - SO_KEEPALIVE with 10 s idle, 5 s interval, 3 probes: a destination
 *    that vanished while the source has nothing to send (a long pause in
 *    post-copy) is noticed in about 25 s instead of 2 hours.
 * An empty listen host binds the IPv6 wildcard with IPV6_V6ONLY off (both
 * families) and falls back to 0.0.0.0 where IPv6 is disabled.
 */
#include "protocol/channel.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"

#define KEEPALIVE_IDLE_S 10
#define KEEPALIVE_INTVL_S 5
#define KEEPALIVE_CNT 3
#define LISTEN_BACKLOG 64

static int before_connect(int fd)
{
	channel_sock_set_buffers(fd);
	return 0;
}

static void set_int(int fd, int level, int opt, int v)
{
	/* best effort: each option only improves latency or failure detection */
	(void)setsockopt(fd, level, opt, &v, sizeof(v));
}

void channel_tcp_setup(int fd)
{
	set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, KEEPALIVE_IDLE_S);
	set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, KEEPALIVE_INTVL_S);
	set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, KEEPALIVE_CNT);
}

static void describe(const struct uri *u, bool listen, char *buf, size_t cap)
{
	if ((listen ? uri_format_listen(u, buf, cap) : uri_format(u, buf, cap)) < 0)
		snprintf(buf, cap, "tcp");
}

static int resolve(const struct uri *u, bool passive, struct addrinfo **res, const char *what,
		   char *err, size_t errlen)
{
	struct addrinfo hints;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* no AI_ADDRCONFIG: it hides 127.0.0.1 on hosts with only loopback */
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	snprintf(port, sizeof(port), "%u", u->port);
	rc = getaddrinfo(u->host[0] ? u->host : NULL, port, &hints, res);
	if (rc == EAI_SYSTEM)
		return err_set(-errno, err, errlen, "%s: cannot resolve '%s': %s", what, u->host,
			       strerror(errno));
	if (rc)
		return err_set(-EHOSTUNREACH, err, errlen, "%s: cannot resolve '%s': %s", what,
			       u->host, gai_strerror(rc));
	return 0;
}

int channel_tcp_dial(const struct uri *u, int timeout_ms, int *fdp, char *err, size_t errlen)
{
	uint64_t deadline = timeout_ms >= 0 ? clock_now_ms() + (uint64_t)timeout_ms : 0;
	struct addrinfo *res = NULL, *ai;
	char what[300];
	int fd = -1, ret;

	describe(u, false, what, sizeof(what));
	ret = resolve(u, false, &res, what, err, errlen);
	if (ret < 0)
		return ret;
	ret = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		int left = -1;

		if (timeout_ms >= 0) {
			uint64_t now = clock_now_ms();

			left = now >= deadline ? 0 : (int)(deadline - now);
		}
		ret = channel_sock_connect(ai->ai_family, ai->ai_addr, ai->ai_addrlen, left,
					   before_connect, &fd);
		if (ret == 0 || ret == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (ret == -ETIMEDOUT)
		return err_set(ret, err, errlen, "cannot connect to %s: no answer within %d ms",
			       what, timeout_ms);
	if (ret < 0)
		return err_set(ret, err, errlen, "cannot connect to %s: %s", what, strerror(-ret));
	channel_tcp_setup(fd);
	*fdp = fd;
	return 0;
}

static int tcp_connect(const struct uri *u, const struct channel_opts *o, int timeout_ms,
		       struct channel **out, char *err, size_t errlen)
{
	int fd, ret;

	(void)o;
	ret = channel_tcp_dial(u, timeout_ms, &fd, err, errlen);
	if (ret < 0)
		return ret;
	ret = channel_open(&channel_tcp_ops, fd, NULL, timeout_ms, out);
	if (ret < 0)
		return err_set(ret, err, errlen, "out of memory");
	return 0;
}

static int bind_one(const struct addrinfo *ai, bool wildcard, int *fd)
{
	int s = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int ret = 0;

	if (s < 0)
		return -errno;
	set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
	if (ai->ai_family == AF_INET6 && wildcard)
		set_int(s, IPPROTO_IPV6, IPV6_V6ONLY, 0);
	/* inherited by accepted sockets, and sized before the handshake */
	channel_sock_set_buffers(s);
	if (bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, LISTEN_BACKLOG) < 0)
		ret = -errno;
	if (ret < 0)
		close(s);
	else
		*fd = s;
	return ret;
}

int channel_tcp_bind(struct uri *u, int *fd, char *err, size_t errlen)
{
	struct addrinfo *res = NULL, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	bool wildcard = !u->host[0];
	char what[300];
	int ret = -EADDRNOTAVAIL;

	*fd = -1;
	describe(u, true, what, sizeof(what));
	ret = resolve(u, true, &res, what, err, errlen);
	if (ret < 0)
		return ret;
	ret = -EADDRNOTAVAIL;
	/* the IPv6 wildcard serves both families: try it first */
	for (int pass = 0; pass < 2 && *fd < 0; pass++) {
		for (ai = res; ai && *fd < 0; ai = ai->ai_next) {
			bool v6 = ai->ai_family == AF_INET6;

			if (wildcard ? (pass == 0) != v6 : pass == 1)
				continue;
			ret = bind_one(ai, wildcard, fd);
		}
	}
	freeaddrinfo(res);
	if (ret < 0)
		return err_set(ret, err, errlen, "cannot listen on %s: %s", what, strerror(-ret));
	if (getsockname(*fd, (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET6)
			u->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else if (ss.ss_family == AF_INET)
			u->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
}

static int tcp_listen(struct uri *u, const struct channel_opts *o, int *fd, void **priv,
		      char *err, size_t errlen)
{
	(void)o;
	*priv = NULL;
	return channel_tcp_bind(u, fd, err, errlen);
}

static int tcp_accept(int lfd, void *priv, int wait_ms, int timeout_ms, struct channel **out,
		      char *err, size_t errlen)
{
	(void)priv;
	return channel_sock_accept_open(&channel_tcp_ops, lfd, wait_ms, timeout_ms, channel_tcp_setup,
					out, err, errlen);
}

static void tcp_unlisten(const struct uri *u, int fd, void *priv)
{
	(void)u;
	(void)priv;
	if (fd >= 0)
		close(fd);
}

const struct channel_ops channel_tcp_ops = {
	.name = "tcp",
	.send = channel_sock_send,
	.recv = channel_sock_recv,
	.shutdown = channel_sock_shutdown,
	.close = channel_sock_close,
	.get_fd = channel_sock_get_fd,
	.connect = tcp_connect,
	.listen = tcp_listen,
	.accept = tcp_accept,
	.unlisten = tcp_unlisten,
};
