/* SPDX-License-Identifier: MIT */
/*
 * test_listener.c - the agent's --listen URIs (tools/listener.h): the
 * accepted forms, the refused ones with their messages, a TCP listener on
 * a kernel-chosen port that accepts a connection, and a unix listener that
 * replaces a stale socket, refuses a live one and a regular file, and
 * removes its file on close.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/listener.h"

static void test_listener_parse_good(void **state)
{
	struct listener_addr a;
	char err[256];

	(void)state;
	assert_int_equal(listener_parse("tcp:127.0.0.1:4444", &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, LISTENER_TCP);
	assert_string_equal(a.host, "127.0.0.1");
	assert_string_equal(a.port, "4444");
	assert_int_equal(listener_parse("tcp:[::1]:0", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "::1");
	assert_string_equal(a.port, "0");
	assert_int_equal(listener_parse("tcp::65535", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "");
	assert_int_equal(listener_parse("tcp://localhost:80", &a, err, sizeof(err)), 0);
	assert_string_equal(a.host, "localhost");
	assert_int_equal(listener_parse("unix:/run/kvmig/m.sock", &a, err, sizeof(err)), 0);
	assert_int_equal(a.kind, LISTENER_UNIX);
	assert_string_equal(a.path, "/run/kvmig/m.sock");
	assert_int_equal(listener_parse("unix:///run/m.sock", &a, err, sizeof(err)), 0);
	assert_string_equal(a.path, "/run/m.sock");
	assert_int_equal(listener_parse("unix:rel.sock", &a, err, sizeof(err)), 0);
	assert_string_equal(a.path, "rel.sock");
}

static void test_listener_parse_bad(void **state)
{
	static const struct {
		const char *uri, *why;
	} bad[] = {
		{"", "unknown scheme"},
		{"http://x:1", "unknown scheme"},
		{"tcp:", "no port"},
		{"tcp:host", "no port"},
		{"tcp:host:", "no port"},
		{"tcp:host:65536", "0..65535"},
		{"tcp:host:99999999999999999999", "0..65535"},
		{"tcp:host:12a", "not a number"},
		{"tcp:host:-1", "not a number"},
		{"tcp:::1:80", "brackets"},
		{"tcp:[::1:80", "[ADDRESS]:PORT"},
		{"tcp:[]:80", "empty IPv6"},
		{"unix:", "no socket path"},
		{"unix://", "no socket path"},
	};
	struct listener_addr a;
	char err[256], longpath[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(listener_parse(bad[i].uri, &a, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].why) || !strstr(err, "bad listen URI"))
			fail_msg("'%s': %s", bad[i].uri, err);
	}
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	snprintf(err, sizeof(err), "unix:%s", longpath);
	assert_int_equal(listener_parse(err, &a, err, sizeof(err)), -EINVAL);
	assert_int_equal(listener_parse("tls:127.0.0.1:4444", &a, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, "not implemented yet"));
}

static void test_listener_tcp_ephemeral(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct listener_addr a;
	struct listener l;
	char err[256];
	int c, s;

	(void)state;
	assert_int_equal(listener_parse("tcp:127.0.0.1:0", &a, err, sizeof(err)), 0);
	assert_int_equal(listener_open(&l, &a, err, sizeof(err)), 0);
	assert_true(l.fd >= 0);
	assert_non_null(strstr(l.bound, "tcp:127.0.0.1:"));
	assert_string_not_equal(l.bound, "tcp:127.0.0.1:0");
	assert_non_null(strstr(l.connect_uri, "tcp://127.0.0.1:"));
	assert_true(fcntl(l.fd, F_GETFL) & O_NONBLOCK);
	sin.sin_port = htons((uint16_t)atoi(strrchr(l.bound, ':') + 1));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	s = accept(l.fd, NULL, NULL);
	assert_true(s >= 0);
	close(s);
	close(c);
	listener_close(&l);
	assert_int_equal(l.fd, -1);
	listener_close(&l); /* idempotent */
}

static void test_listener_tcp_in_use(void **state)
{
	struct listener_addr a;
	struct listener l, l2;
	char err[256], uri[sizeof(l.bound)];

	(void)state;
	assert_int_equal(listener_parse("tcp:127.0.0.1:0", &a, err, sizeof(err)), 0);
	assert_int_equal(listener_open(&l, &a, err, sizeof(err)), 0);
	snprintf(uri, sizeof(uri), "%s", l.bound);
	assert_int_equal(listener_parse(uri, &a, err, sizeof(err)), 0);
	assert_int_equal(listener_open(&l2, &a, err, sizeof(err)), -EADDRINUSE);
	assert_non_null(strstr(err, "Address already in use"));
	assert_int_equal(l2.fd, -1);
	listener_close(&l);
}

static void test_listener_unix(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/test_listener.XXXXXX", path[128], uri[160], err[256];
	struct listener_addr a;
	struct listener l, l2;
	struct stat st;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/m.sock", dir);
	snprintf(uri, sizeof(uri), "unix:%s", path);

	/* a stale socket (bound, nobody listens) is replaced */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(listener_parse(uri, &a, err, sizeof(err)), 0);
	assert_int_equal(listener_open(&l, &a, err, sizeof(err)), 0);
	assert_string_equal(l.bound, uri);
	snprintf(uri, sizeof(uri), "unix://%s", path);
	assert_string_equal(l.connect_uri, uri);

	/* a live one is refused */
	assert_int_equal(listener_open(&l2, &a, err, sizeof(err)), -EADDRINUSE);
	assert_non_null(strstr(err, "another process listens there"));
	listener_close(&l);
	assert_int_equal(stat(path, &st), -1);

	/* a regular file is left alone */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(listener_open(&l2, &a, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(stat(path, &st), 0);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listener_parse_good),
		cmocka_unit_test(test_listener_parse_bad),
		cmocka_unit_test(test_listener_tcp_ephemeral),
		cmocka_unit_test(test_listener_tcp_in_use),
		cmocka_unit_test(test_listener_unix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
