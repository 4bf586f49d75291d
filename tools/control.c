/* SPDX-License-Identifier: MIT */
#include "tools/control.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"

#define READ_CHUNK 16384u

int ctl_linebuf_init(struct ctl_linebuf *lb, size_t max_line)
{
	memset(lb, 0, sizeof(*lb));
	lb->max_line = max_line;
	lb->cap = 4096;
	lb->buf = malloc(lb->cap);
	return lb->buf ? 0 : -ENOMEM;
}

void ctl_linebuf_free(struct ctl_linebuf *lb)
{
	free(lb->buf);
	memset(lb, 0, sizeof(*lb));
}

size_t ctl_linebuf_pending(const struct ctl_linebuf *lb)
{
	return lb->len - lb->start;
}

/* Move the pending bytes to the front of the buffer. */
static void linebuf_compact(struct ctl_linebuf *lb)
{
	if (lb->start == 0)
		return;
	if (lb->len > lb->start)
		memmove(lb->buf, lb->buf + lb->start, lb->len - lb->start);
	lb->len -= lb->start;
	lb->start = 0;
}

int ctl_linebuf_feed(struct ctl_linebuf *lb, const void *data, size_t len)
{
	const char *p = data;

	if (lb->discarding) {
		/* Inside an oversize line: drop everything up to its '\n'. */
		const char *nl = memchr(p, '\n', len);

		if (!nl)
			return 0;
		len -= (size_t)(nl + 1 - p);
		p = nl + 1;
		lb->discarding = false;
		lb->scanned = 0;
	}
	if (len == 0)
		return 0;
	linebuf_compact(lb);
	if (lb->len + len + 1 > lb->cap) {
		size_t ncap = lb->cap;
		char *nb;

		while (ncap < lb->len + len + 1)
			ncap *= 2;
		nb = realloc(lb->buf, ncap);
		if (!nb)
			return -ENOMEM;
		lb->buf = nb;
		lb->cap = ncap;
	}
	memcpy(lb->buf + lb->len, p, len);
	lb->len += len;
	return 0;
}

ssize_t ctl_linebuf_read(struct ctl_linebuf *lb, int fd)
{
	char chunk[READ_CHUNK];
	ssize_t n;
	int ret;

	do {
		n = read(fd, chunk, sizeof(chunk));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	ret = ctl_linebuf_feed(lb, chunk, (size_t)n);
	if (ret < 0)
		return ret;
	return n;
}

ssize_t ctl_linebuf_read_fds(struct ctl_linebuf *lb, int fd, int fds[CTL_MAX_FDS],
			     unsigned *nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * (CTL_MAX_FDS + 2))];
	} cm;
	char chunk[READ_CHUNK];
	struct iovec iov = {.iov_base = chunk, .iov_len = sizeof(chunk)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = sizeof(cm.buf)};
	bool bad = false;
	ssize_t n;
	int ret;

	*nfds = 0;
	do {
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < CTL_MAX_FDS) {
				fds[(*nfds)++] = f;
			} else {
				close(f);
				bad = true;
			}
		}
	}
	if (bad || (mh.msg_flags & MSG_CTRUNC)) {
		while (*nfds)
			close(fds[--*nfds]);
		return -EBADMSG;
	}
	ret = ctl_linebuf_feed(lb, chunk, (size_t)n);
	if (ret < 0)
		return ret;
	return n;
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

/* Cut [start, start + len) out as a NUL-terminated line without '\r'. */
static void linebuf_cut(struct ctl_linebuf *lb, size_t len, char **line, size_t *out_len)
{
	char *s = lb->buf + lb->start;

	s[len] = '\0';
	if (len > 0 && s[len - 1] == '\r')
		s[--len] = '\0';
	*line = s;
	*out_len = len;
}

int ctl_linebuf_next(struct ctl_linebuf *lb, char **line, size_t *len)
{
	for (;;) {
		size_t pending = lb->len - lb->start;
		char *from = lb->buf + lb->start + lb->scanned;
		char *nl = memchr(from, '\n', pending - lb->scanned);
		size_t linelen;

		if (!nl) {
			lb->scanned = pending;
			if (pending > lb->max_line) {
				/* Too long already: report now, skip the rest later. */
				lb->discarding = true;
				lb->start = lb->len = 0;
				lb->scanned = 0;
				return -EMSGSIZE;
			}
			return 0;
		}
		linelen = (size_t)(nl - (lb->buf + lb->start));
		lb->scanned = 0;
		if (linelen > lb->max_line) {
			lb->start += linelen + 1;
			return -EMSGSIZE;
		}
		linebuf_cut(lb, linelen, line, len);
		lb->start += linelen + 1;
		if (!is_blank(*line, *len))
			return 1;
	}
}

int ctl_linebuf_take_rest(struct ctl_linebuf *lb, char **line, size_t *len)
{
	size_t pending = lb->len - lb->start;

	if (lb->discarding || pending == 0)
		return 0;
	if (pending > lb->max_line) {
		lb->start = lb->len = 0;
		lb->scanned = 0;
		return -EMSGSIZE;
	}
	/* feed() always leaves room for the NUL at buf[len]. */
	linebuf_cut(lb, pending, line, len);
	lb->start = lb->len;
	lb->scanned = 0;
	return is_blank(*line, *len) ? 0 : 1;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "an unknown type";
}

int ctl_parse_object(const char *line, size_t len, json_t **out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	v = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!v) {
		snprintf(err, errlen, "malformed JSON at column %d: %s", jerr.column, jerr.text);
		return -EBADMSG;
	}
	if (!json_is_object(v)) {
		snprintf(err, errlen, "expected a JSON object, got %s", json_type_name(v));
		json_decref(v);
		return -EBADMSG;
	}
	*out = v;
	return 0;
}

char *ctl_encode(const json_t *obj, size_t *len)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	size_t n;
	char *r;

	if (!s)
		return NULL;
	n = strlen(s);
	r = realloc(s, n + 2);
	if (!r) {
		free(s);
		return NULL;
	}
	r[n] = '\n';
	r[n + 1] = '\0';
	*len = n + 1;
	return r;
}

json_t *ctl_response_ok(void)
{
	json_t *o = json_object();

	if (o && json_object_set_new(o, "ok", json_true()) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *ctl_response_error(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_object();
	if (!o)
		return NULL;
	if (json_object_set_new(o, "ok", json_false()) < 0 ||
	    json_object_set_new(o, "error", ctl_string_lossy(msg, strlen(msg))) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c >= 0x01 && c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f; /* no UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* nothing above U+10FFFF */
	} else {
		return 0; /* NUL, continuation byte, 0xc0/0xc1, 0xf5.. */
	}
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return need;
}

json_t *ctl_string_lossy(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char *tmp = malloc(len + 1);
	size_t i = 0, o = 0;
	json_t *r;

	if (!tmp)
		return NULL;
	while (i < len) {
		size_t k = utf8_seq_len(u + i, len - i);

		if (k == 0) {
			tmp[o++] = '?';
			i++;
			continue;
		}
		memcpy(tmp + o, u + i, k);
		o += k;
		i += k;
	}
	tmp[o] = '\0';
	r = json_stringn(tmp, o);
	free(tmp);
	return r;
}

int ctl_check_keys(json_t *obj, const char *const *allowed, char *err, size_t errlen)
{
	const char *key;
	json_t *val;

	json_object_foreach(obj, key, val)
	{
		bool ok = !strcmp(key, "method") || !strcmp(key, "id");

		(void)val;
		for (size_t i = 0; !ok && allowed && allowed[i]; i++)
			ok = !strcmp(key, allowed[i]);
		if (!ok) {
			snprintf(err, errlen, "unknown field '%s'", key);
			return -EINVAL;
		}
	}
	return 0;
}

/* The field key of obj: 0 and *v, 1 when it is absent (or null) and optional, or -EINVAL. */
static int field(const json_t *obj, const char *key, bool required, const json_t **v, char *err,
		 size_t errlen)
{
	*v = json_object_get(obj, key);
	if (*v && !json_is_null(*v))
		return 0;
	if (!required)
		return 1;
	snprintf(err, errlen, "missing field '%s'", key);
	return -EINVAL;
}

int ctl_get_str(const json_t *obj, const char *key, bool required, const char **out, char *err,
		size_t errlen)
{
	const json_t *v;
	int ret = field(obj, key, required, &v, err, errlen);

	if (ret != 0)
		return ret;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "field '%s' must be a string, got %s", key,
			 json_type_name(v));
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

int ctl_get_u64(const json_t *obj, const char *key, bool required, uint64_t *out, char *err,
		size_t errlen)
{
	const json_t *v;
	int ret = field(obj, key, required, &v, err, errlen);

	if (ret != 0)
		return ret;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(err, errlen, "field '%s' must be a non-negative integer, got %s", key,
			 json_is_integer(v) ? "a negative number" : json_type_name(v));
		return -EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int ctl_get_bool(const json_t *obj, const char *key, bool required, bool *out, char *err,
		 size_t errlen)
{
	const json_t *v;
	int ret = field(obj, key, required, &v, err, errlen);

	if (ret != 0)
		return ret;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "field '%s' must be true or false, got %s", key,
			 json_type_name(v));
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ctl_parse_mac(const char *s, uint8_t mac[6], char *err, size_t errlen)
{
	uint8_t m[6];
	bool zero = true;

	if (strlen(s) != 17)
		goto bad;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		if (i < 5 && s[3 * i + 2] != ':')
			goto bad;
		m[i] = (uint8_t)(hi << 4 | lo);
		if (m[i])
			zero = false;
	}
	if (m[0] & 1) {
		snprintf(err, errlen,
			 "MAC address '%s' is a multicast address (lowest bit of the first byte "
			 "set); a NIC needs a unicast address",
			 s);
		return -EINVAL;
	}
	if (zero) {
		snprintf(err, errlen, "MAC address '%s' is all zeros", s);
		return -EINVAL;
	}
	memcpy(mac, m, sizeof(m));
	return 0;
bad:
	snprintf(err, errlen,
		 "invalid MAC address '%s': expected six two-digit hex numbers separated by ':' "
		 "(like 52:54:00:12:34:56)",
		 s);
	return -EINVAL;
}

const char *ctl_format_mac(const uint8_t mac[6], char out[CTL_MAC_STRLEN])
{
	snprintf(out, CTL_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
		 mac[3], mac[4], mac[5]);
	return out;
}

int ctl_connect(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "cannot reach agent at %s: socket path longer than %zu bytes",
			 path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot reach agent at %s: socket: %s", path, strerror(-ret));
		return ret;
	}
	do {
		ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot reach agent at %s: %s%s", path, strerror(-ret),
			 ret == -ENOENT || ret == -ECONNREFUSED ? " (is kvmigd running?)" : "");
		close(fd);
		return ret;
	}
	return fd;
}

/* send() everything without raising SIGPIPE when the agent is gone. */
static int send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Wait for and parse one response line. */
static int read_response(int fd, json_t **resp, int timeout_ms, char *err, size_t errlen)
{
	uint64_t deadline = timeout_ms > 0 ? clock_now_ms() + (uint64_t)timeout_ms : 0;
	struct ctl_linebuf lb;
	char *line;
	size_t len;
	int ret;

	ret = ctl_linebuf_init(&lb, CTL_RESPONSE_MAX);
	if (ret < 0) {
		snprintf(err, errlen, "out of memory");
		return ret;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int wait_ms = -1;
		ssize_t n;

		ret = ctl_linebuf_next(&lb, &line, &len);
		if (ret == 1)
			break;
		if (ret == -EMSGSIZE) {
			snprintf(err, errlen, "response from agent longer than %u bytes",
				 CTL_RESPONSE_MAX);
			goto out;
		}
		if (deadline) {
			uint64_t now = clock_now_ms();

			if (now >= deadline)
				wait_ms = 0;
			else
				wait_ms = (int)MIN(deadline - now, (uint64_t)INT32_MAX);
		}
		ret = poll(&pfd, 1, wait_ms);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			ret = -errno;
			snprintf(err, errlen, "poll: %s", strerror(-ret));
			goto out;
		}
		if (ret == 0) {
			ret = -ETIMEDOUT;
			snprintf(err, errlen, "no response from agent within %d s",
				 (timeout_ms + 999) / 1000);
			goto out;
		}
		n = ctl_linebuf_read(&lb, fd);
		if (n == -EAGAIN)
			continue;
		if (n < 0) {
			ret = (int)n;
			snprintf(err, errlen, "reading from agent: %s", strerror(-ret));
			goto out;
		}
		if (n == 0) {
			ret = ctl_linebuf_take_rest(&lb, &line, &len);
			if (ret == 1)
				break;
			ret = -ECONNRESET;
			snprintf(err, errlen, "agent closed the connection without a response");
			goto out;
		}
	}
	ret = ctl_parse_object(line, len, resp, err, errlen);
	if (ret < 0) {
		char inner[256];

		snprintf(inner, sizeof(inner), "%s", err);
		snprintf(err, errlen, "bad response from agent: %s", inner);
		goto out;
	}
	if (!json_is_boolean(json_object_get(*resp, "ok"))) {
		json_decref(*resp);
		*resp = NULL;
		ret = -EBADMSG;
		snprintf(err, errlen, "bad response from agent: no boolean field 'ok'");
		goto out;
	}
	ret = 0;
out:
	ctl_linebuf_free(&lb);
	return ret;
}

int ctl_call_line(int fd, const char *line, size_t len, json_t **resp, int timeout_ms, char *err,
		  size_t errlen)
{
	int ret;

	*resp = NULL;
	ret = send_all(fd, line, len);
	if (ret == 0 && (len == 0 || line[len - 1] != '\n'))
		ret = send_all(fd, "\n", 1);
	if (ret < 0) {
		snprintf(err, errlen, "sending request to agent: %s", strerror(-ret));
		return ret;
	}
	return read_response(fd, resp, timeout_ms, err, errlen);
}

int ctl_send_fds(int fd, const json_t *req, const int *fds, unsigned nfds, char *err,
		 size_t errlen)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CTL_MAX_FDS)];
	} cm;
	struct msghdr mh = {0};
	struct cmsghdr *c;
	struct iovec iov;
	size_t len;
	char *line;
	ssize_t n;
	int ret;

	if (nfds < 1 || nfds > CTL_MAX_FDS) {
		snprintf(err, errlen, "%u file descriptors (1 to %d)", nfds, CTL_MAX_FDS);
		return -EINVAL;
	}
	line = ctl_encode(req, &len);
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* the descriptors ride on the first byte; the rest of the line follows */
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = line;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	do {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	ret = n == 1 ? send_all(fd, line + 1, len - 1) : n < 0 ? -errno : -EIO;
	free(line);
	if (ret < 0)
		snprintf(err, errlen, "sending request to agent: %s", strerror(-ret));
	return ret;
}

int ctl_call_fds(int fd, const json_t *req, const int *fds, unsigned nfds, json_t **resp,
		 int timeout_ms, char *err, size_t errlen)
{
	int ret;

	*resp = NULL;
	ret = ctl_send_fds(fd, req, fds, nfds, err, errlen);
	return ret < 0 ? ret : read_response(fd, resp, timeout_ms, err, errlen);
}

int ctl_call(int fd, const json_t *req, json_t **resp, int timeout_ms, char *err, size_t errlen)
{
	size_t len;
	char *line = ctl_encode(req, &len);
	int ret;

	*resp = NULL;
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = ctl_call_line(fd, line, len, resp, timeout_ms, err, errlen);
	free(line);
	return ret;
}
