/* SPDX-License-Identifier: MIT */
/*
 * uri.h - the addresses of migration channels, parsed strictly.
 *
 * Two syntaxes (design.md). Where to connect, as `kvmig migrate --to`
 * takes it:
 *
 *   tcp://HOST:PORT    tls://HOST:PORT    unix:///PATH    ssh://[USER@]HOST[:PORT]
 *
 * and where an agent listens, as `kvmigd --listen` takes it:
 *
 *   tcp:HOST:PORT      tls:HOST:PORT      unix:PATH
 *
 * (the URL forms tcp://HOST:PORT, tls://HOST:PORT and unix:///PATH are
 * accepted there too, as kvmigd always did, with a listen's port and host
 * rules; uri_format_listen() gives the short form back).
 *
 * HOST is a DNS name (letters, digits, '-' and '.', labels of 1..63, at
 * most 253 bytes), an IPv4 address, or an IPv6 address in brackets
 * ([::1], [fe80::1%eth0]). PORT is decimal without sign or leading zeros:
 * 1..65535 to connect, 0..65535 to listen (0: the kernel picks one). A
 * listen HOST may be empty (tcp::4444): every local address. An ssh port
 * defaults to 22. A unix PATH is absolute in a URI, may be relative in a
 * listen address, and fits sockaddr_un (at most 107 bytes). Neither a host
 * nor a user may start with '-' (they reach ssh's command line). Nothing
 * else is accepted: no query, no fragment, no path on tcp/tls/ssh.
 *
 * Pure functions on caller buffers, callable from any thread. Errors are
 * -EINVAL with a message that quotes the input and says what was expected.
 */
#ifndef KVMIG_PROTOCOL_URI_H
#define KVMIG_PROTOCOL_URI_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

enum uri_scheme {
	URI_TCP,
	URI_TLS,
	URI_UNIX,
	URI_SSH,
	URI_SCHEME_COUNT,
};

#define URI_HOST_MAX 253u	/* bytes of a host, without brackets */
#define URI_USER_MAX 32u
#define URI_PATH_MAX 107u	/* sizeof(sun_path) - 1 */
#define URI_SSH_PORT 22u

struct uri {
	enum uri_scheme scheme;
	char host[URI_HOST_MAX + 1];	/* "" for unix, and for "any" when listening */
	char user[URI_USER_MAX + 1];	/* ssh only; "" when absent */
	char path[URI_PATH_MAX + 1];	/* unix only */
	uint16_t port;			/* tcp, tls, ssh; 0 = any (listen only) */
};

/* "tcp", "tls", "unix", "ssh" ("?" for a value out of range). */
const char *uri_scheme_name(enum uri_scheme scheme);

/*
 * uri_parse - a connect URI (tcp://, tls://, unix:///, ssh://) into u.
 * Return: 0, or -EINVAL with a message in err.
 */
int uri_parse(const char *s, struct uri *u, char *err, size_t errlen) __must_check;

/*
 * uri_parse_listen - a listen address (tcp:, tls:, unix:) into u.
 * Return: 0, or -EINVAL with a message in err.
 */
int uri_parse_listen(const char *s, struct uri *u, char *err, size_t errlen) __must_check;

/*
 * uri_format / uri_format_listen - the canonical text of u in either
 * syntax; uri_parse(uri_format(u)) gives u back. A listen form of an ssh
 * URI, and a URI form of a relative unix path, do not exist (-EINVAL).
 * Return: the length written (without the NUL), -ENOSPC, -EINVAL.
 */
int uri_format(const struct uri *u, char *buf, size_t cap) __must_check;
int uri_format_listen(const struct uri *u, char *buf, size_t cap) __must_check;

#endif
