/* SPDX-License-Identifier: MIT */
/*
 * listener.h - the agent's migration listener: parse a `kvmigd --listen`
 * URI and open its listening socket.
 *
 * URIs (design.md): tcp:HOST:PORT, unix:PATH, tls:HOST:PORT. HOST is a
 * name, an IPv4 address or an IPv6 address in brackets ([::1]); an empty
 * HOST (tcp::4444) listens on every address. PORT 0 lets the kernel pick a
 * free port; listener.bound then names the real one. The URL forms the
 * source uses (tcp://HOST:PORT, unix:///PATH) are accepted as well. TLS is
 * recognised but not implemented: listener_parse() says so.
 *
 * A unix socket path is handled like the control socket: a socket file
 * nobody listens on (left by a dead agent) is replaced, a live one or any
 * other kind of file makes listener_open() fail, and listener_close()
 * unlinks the file only if it is still the one it bound.
 *
 * Used by the agent's controller thread only.
 */
#ifndef KVMIG_TOOLS_LISTENER_H
#define KVMIG_TOOLS_LISTENER_H

#include <stddef.h>
#include <sys/types.h>

#include "common/compiler.h"

enum listener_kind {
	LISTENER_TCP,
	LISTENER_UNIX,
	LISTENER_TLS,
};

struct listener_addr {
	enum listener_kind kind;
	char host[256]; /* tcp/tls: without brackets; "" = every address */
	char port[8];	/* tcp/tls: decimal 0..65535 */
	char path[108]; /* unix: the socket path (sun_path size) */
};

struct listener {
	int fd; /* listening, non-blocking, close-on-exec; -1 when closed */
	struct listener_addr addr;
	char bound[300];       /* what it listens on: "tcp:127.0.0.1:40213", "unix:/run/x.sock" */
	char connect_uri[300]; /* the URI a source migrates to: "tcp://127.0.0.1:40213" */
	dev_t dev;	       /* unix: the socket file we bound */
	ino_t ino;
};

/*
 * Parse a --listen URI.
 * Return: 0; -EINVAL (malformed) or -EOPNOTSUPP (tls:, not implemented
 * yet) with a message in err.
 */
int listener_parse(const char *uri, struct listener_addr *a, char *err, size_t errlen) __must_check;

/*
 * Bind and listen. Return: 0 with l->fd, l->bound and l->connect_uri set,
 * or -errno with a message in err ("cannot listen on tcp:...: Address
 * already in use"). l->fd is -1 on failure.
 */
int listener_open(struct listener *l, const struct listener_addr *a, char *err,
		  size_t errlen) __must_check;

/* Close the socket and remove a unix socket file we created. Idempotent. */
void listener_close(struct listener *l);

#endif
