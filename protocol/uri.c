/* SPDX-License-Identifier: MIT */
#include "protocol/uri.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

#define CONNECT_FORMS "tcp://HOST:PORT, tls://HOST:PORT, unix:///PATH or ssh://[USER@]HOST[:PORT]"
#define LISTEN_FORMS "tcp:HOST:PORT, tls:HOST:PORT or unix:PATH"

static const char *const scheme_names[] = {
	[URI_TCP] = "tcp",
	[URI_TLS] = "tls",
	[URI_UNIX] = "unix",
	[URI_SSH] = "ssh",
};
_Static_assert(sizeof(scheme_names) / sizeof(scheme_names[0]) == URI_SCHEME_COUNT,
	       "one name per scheme");

const char *uri_scheme_name(enum uri_scheme scheme)
{
	return (unsigned)scheme < URI_SCHEME_COUNT ? scheme_names[scheme] : "?";
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3986: a scheme is a letter, then letters, digits, '+', '-', '.'. */
static bool is_scheme_token(const char *s, size_t n)
{
	if (n == 0 || is_digit(s[0]) || !is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* The scheme before the first ':' of s; -1 when it is not one of ours. */
static int lookup_scheme(const char *s, size_t n)
{
	for (int i = 0; i < URI_SCHEME_COUNT; i++)
		if (strlen(scheme_names[i]) == n && !memcmp(s, scheme_names[i], n))
			return i;
	return -1;
}

/* Decimal port, no sign, no leading zero, min..65535. */
static int parse_port(const char *s, size_t n, unsigned min, uint16_t *port)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v < min || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* A DNS name or an IPv4 address: RFC 1123 labels, all-numeric means IPv4. */
static bool valid_host_name(const char *s, size_t n)
{
	size_t label = 0;
	bool numeric = true;
	char tmp[URI_HOST_MAX + 1];
	struct in_addr a4;

	if (n == 0 || n > URI_HOST_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? s[i] : '.';

		if (c == '.') {
			/* a label: 1..63 bytes, not starting or ending with '-' */
			if (label == 0 || label > 63 || s[i - label] == '-' || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-')
			return false;
		if (!is_digit(c))
			numeric = false;
		label++;
	}
	if (!numeric)
		return true;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET, tmp, &a4) == 1;
}

/* The inside of [...]: an IPv6 address with an optional %zone. */
static bool valid_ipv6(const char *s, size_t n)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr a6;
	const char *zone = memchr(s, '%', n);
	size_t alen = zone ? (size_t)(zone - s) : n;

	if (alen == 0 || alen > INET6_ADDRSTRLEN)
		return false;
	if (zone) {
		size_t zlen = n - alen - 1;

		if (zlen == 0 || zlen > 15)
			return false;
		for (size_t i = 1; i <= zlen; i++)
			if (!is_alnum(zone[i]) && zone[i] != '_' && zone[i] != '.' &&
			    zone[i] != '-')
				return false;
	}
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	return inet_pton(AF_INET6, tmp, &a6) == 1;
}

/*
 * HOST[:PORT] at s (the whole input is in for messages). listen: the host
 * may be empty and the port may be 0. port_optional: keep *port when absent.
 */
static int parse_host_port(const char *s, const char *in, bool listen, bool port_optional,
			   const char *forms, struct uri *u, char *err, size_t errlen)
{
	const char *host = s, *p;
	size_t hlen;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end)
			return err_set(-EINVAL, err, errlen, "unterminated '[' in '%s'", in);
		host = s + 1;
		hlen = (size_t)(end - host);
		if (!valid_ipv6(host, hlen))
			return err_set(-EINVAL, err, errlen, "bad IPv6 address '%.*s' in '%s'",
				       (int)hlen, host, in);
		p = end + 1;
	} else {
		p = s + strcspn(s, ":/?#@[]");
		hlen = (size_t)(p - s);
		if (*p == ':' && strchr(p + 1, ':'))
			return err_set(-EINVAL, err, errlen,
				       "'%s': put an IPv6 address in brackets, e.g. [::1]:PORT",
				       in);
		if (hlen == 0 && !listen)
			return err_set(-EINVAL, err, errlen, "missing host in '%s' (expected %s)",
				       in, forms);
		if (hlen > URI_HOST_MAX)
			return err_set(-EINVAL, err, errlen,
				       "host name of %zu bytes in '%.40s...', at most %u", hlen, in,
				       URI_HOST_MAX);
		if (hlen && !valid_host_name(s, hlen))
			return err_set(-EINVAL, err, errlen, "bad host '%.*s' in '%s'", (int)hlen,
				       s, in);
	}
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	if (*p == '\0') {
		if (port_optional)
			return 0;
		return err_set(-EINVAL, err, errlen, "missing port in '%s' (expected %s)", in,
			       forms);
	}
	if (*p != ':')
		return err_set(-EINVAL, err, errlen,
			       "unexpected '%c' after the host in '%s' (expected %s)", *p, in,
			       forms);
	p++;
	if (parse_port(p, strlen(p), listen ? 0 : 1, &u->port) < 0)
		return err_set(-EINVAL, err, errlen,
			       "bad port '%s' in '%s': must be a number %s..65535", p, in,
			       listen ? "0" : "1");
	return 0;
}

static int parse_path(const char *s, const char *in, struct uri *u, char *err, size_t errlen)
{
	size_t n = strlen(s);

	if (n == 0)
		return err_set(-EINVAL, err, errlen, "missing socket path in '%s'", in);
	if (n > URI_PATH_MAX)
		return err_set(-EINVAL, err, errlen,
			       "unix socket path of %zu bytes, at most %u: '%s'", n, URI_PATH_MAX,
			       in);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return err_set(-EINVAL, err, errlen,
				       "control character in the socket path of '%s'", in);
	memcpy(u->path, s, n + 1);
	return 0;
}

static int parse_user(const char *s, size_t n, const char *in, struct uri *u, char *err,
		      size_t errlen)
{
	if (n == 0 || n > URI_USER_MAX || s[0] == '-')
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			goto bad;
	memcpy(u->user, s, n);
	u->user[n] = '\0';
	return 0;
bad:
	return err_set(-EINVAL, err, errlen,
		       "bad user '%.*s' in '%s' (letters, digits, '.', '_', '-'; at most %u)",
		       (int)(n > 64 ? 64 : n), s, in, URI_USER_MAX);
}

int uri_parse(const char *s, struct uri *u, char *err, size_t errlen)
{
	const char *colon, *rest;
	int scheme;

	memset(u, 0, sizeof(*u));
	if (!s || !*s)
		return err_set(-EINVAL, err, errlen, "empty URI (expected %s)", CONNECT_FORMS);
	colon = strchr(s, ':');
	if (!colon || !is_scheme_token(s, (size_t)(colon - s)))
		return err_set(-EINVAL, err, errlen, "'%s' is not a URI (expected %s)", s,
			       CONNECT_FORMS);
	scheme = lookup_scheme(s, (size_t)(colon - s));
	if (scheme < 0)
		return err_set(-EINVAL, err, errlen,
			       "unsupported scheme '%.*s' in '%s' (tcp, unix, tls, ssh)",
			       (int)(colon - s > 32 ? 32 : colon - s), s, s);
	u->scheme = (enum uri_scheme)scheme;
	if (strncmp(colon, "://", 3)) {
		if (u->scheme == URI_SSH)
			return err_set(-EINVAL, err, errlen, "'%s' is not a URI (expected %s)", s,
				       CONNECT_FORMS);
		return err_set(-EINVAL, err, errlen,
			       "'%s' is not a URI (expected %s; %s:%s is the form of kvmigd "
			       "--listen)",
			       s, CONNECT_FORMS, uri_scheme_name(u->scheme),
			       u->scheme == URI_UNIX ? "PATH" : "HOST:PORT");
	}
	rest = colon + 3;
	switch (u->scheme) {
	case URI_TCP:
	case URI_TLS:
		return parse_host_port(rest, s, false, false,
				       u->scheme == URI_TCP ? "tcp://HOST:PORT" : "tls://HOST:PORT",
				       u, err, errlen);
	case URI_UNIX:
		if (rest[0] != '/')
			return err_set(-EINVAL, err, errlen,
				       "'%s': a unix URI is unix:///ABSOLUTE/PATH (three slashes)",
				       s);
		return parse_path(rest, s, u, err, errlen);
	case URI_SSH: {
		const char *at = strchr(rest, '@');
		int ret;

		if (at) {
			ret = parse_user(rest, (size_t)(at - rest), s, u, err, errlen);
			if (ret < 0)
				return ret;
			rest = at + 1;
		}
		if (rest[0] == '-')
			return err_set(-EINVAL, err, errlen, "bad host in '%s': starts with '-'",
				       s);
		u->port = URI_SSH_PORT;
		return parse_host_port(rest, s, false, true, "ssh://[USER@]HOST[:PORT]", u, err,
				       errlen);
	}
	case URI_SCHEME_COUNT:
		break;
	}
	return err_set(-EINVAL, err, errlen, "unsupported scheme in '%s'", s);
}

int uri_parse_listen(const char *s, struct uri *u, char *err, size_t errlen)
{
	const char *colon, *rest;
	int scheme;

	memset(u, 0, sizeof(*u));
	if (!s || !*s)
		return err_set(-EINVAL, err, errlen, "empty listen address (expected %s)",
			       LISTEN_FORMS);
	colon = strchr(s, ':');
	if (!colon || !is_scheme_token(s, (size_t)(colon - s)))
		return err_set(-EINVAL, err, errlen, "'%s' is not a listen address (expected %s)",
			       s, LISTEN_FORMS);
	scheme = lookup_scheme(s, (size_t)(colon - s));
	if (scheme < 0)
		return err_set(-EINVAL, err, errlen,
			       "unsupported scheme '%.*s' in '%s' (expected %s)",
			       (int)(colon - s > 32 ? 32 : colon - s), s, s, LISTEN_FORMS);
	u->scheme = (enum uri_scheme)scheme;
	if (u->scheme == URI_SSH)
		return err_set(
			-EINVAL, err, errlen,
			"'%s': ssh needs no listener, the source reaches this agent through sshd",
			s);
	rest = colon + 1;
	/* the URL forms tcp://HOST:PORT and unix:///PATH name the same places */
	if (!strncmp(rest, "//", 2)) {
		rest += 2;
		if (u->scheme == URI_UNIX && rest[0] != '/')
			return err_set(-EINVAL, err, errlen,
				       "'%s': a unix URI is unix:///ABSOLUTE/PATH (three slashes); "
				       "a listen address is unix:PATH",
				       s);
		/* unix:////x is /x: a path the short form could not give back */
		while (u->scheme == URI_UNIX && rest[1] == '/')
			rest++;
	}
	if (u->scheme == URI_UNIX)
		return parse_path(rest, s, u, err, errlen);
	return parse_host_port(rest, s, true, false,
			       u->scheme == URI_TCP ? "tcp:HOST:PORT" : "tls:HOST:PORT", u, err,
			       errlen);
}

/* HOST or [HOST] */
static const char *bracket_open(const struct uri *u)
{
	return strchr(u->host, ':') ? "[" : "";
}

static const char *bracket_close(const struct uri *u)
{
	return strchr(u->host, ':') ? "]" : "";
}

static int finish(int n, size_t cap)
{
	if (n < 0)
		return -EINVAL;
	return (size_t)n >= cap ? -ENOSPC : n;
}

int uri_format(const struct uri *u, char *buf, size_t cap)
{
	switch (u->scheme) {
	case URI_TCP:
	case URI_TLS:
		if (!u->host[0] || !u->port)
			return -EINVAL;
		return finish(snprintf(buf, cap, "%s://%s%s%s:%u", uri_scheme_name(u->scheme),
				       bracket_open(u), u->host, bracket_close(u), u->port),
			      cap);
	case URI_UNIX:
		if (u->path[0] != '/')
			return -EINVAL;
		return finish(snprintf(buf, cap, "unix://%s", u->path), cap);
	case URI_SSH:
		if (!u->host[0] || !u->port)
			return -EINVAL;
		return finish(snprintf(buf, cap, "ssh://%s%s%s%s%s:%u", u->user,
				       u->user[0] ? "@" : "", bracket_open(u), u->host,
				       bracket_close(u), u->port),
			      cap);
	case URI_SCHEME_COUNT:
		break;
	}
	return -EINVAL;
}

int uri_format_listen(const struct uri *u, char *buf, size_t cap)
{
	switch (u->scheme) {
	case URI_TCP:
	case URI_TLS:
		return finish(snprintf(buf, cap, "%s:%s%s%s:%u", uri_scheme_name(u->scheme),
				       bracket_open(u), u->host, bracket_close(u), u->port),
			      cap);
	case URI_UNIX:
		if (!u->path[0])
			return -EINVAL;
		return finish(snprintf(buf, cap, "unix:%s", u->path), cap);
	case URI_SSH:
	case URI_SCHEME_COUNT:
		break;
	}
	return -EINVAL;
}
