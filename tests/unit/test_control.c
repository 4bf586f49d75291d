/* SPDX-License-Identifier: MIT */
/*
 * test_control.c - the control API framing (tools/control.h): line
 * splitting, oversize lines, JSON parsing and encoding, field helpers,
 * MAC parsing, and a client call over a socketpair against a scripted peer.
 * File descriptors with a request (SCM_RIGHTS, incoming.adopt): what
 * ctl_call_fds() sends arrives with the line in ctl_linebuf_read_fds(),
 * close-on-exec and working; a count outside 1..CTL_MAX_FDS is refused
 * before anything is sent; more than CTL_MAX_FDS arriving is -EBADMSG with
 * none of them left open.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>

#include "tools/control.h"

/* Feed a string and expect nothing complete yet. */
static void feed(struct ctl_linebuf *lb, const char *s)
{
	assert_int_equal(ctl_linebuf_feed(lb, s, strlen(s)), 0);
}

static void expect_line(struct ctl_linebuf *lb, const char *want)
{
	char *line = NULL;
	size_t len = 0;

	assert_int_equal(ctl_linebuf_next(lb, &line, &len), 1);
	assert_string_equal(line, want);
	assert_int_equal(len, strlen(want));
}

static void expect_none(struct ctl_linebuf *lb)
{
	char *line;
	size_t len;

	assert_int_equal(ctl_linebuf_next(lb, &line, &len), 0);
}

static void test_control_linebuf_splits_lines(void **state)
{
	struct ctl_linebuf lb;

	(void)state;
	assert_int_equal(ctl_linebuf_init(&lb, 64), 0);
	feed(&lb, "{\"a\":1}\n{\"b\":2}\n{\"c\"");
	expect_line(&lb, "{\"a\":1}");
	expect_line(&lb, "{\"b\":2}");
	expect_none(&lb);
	assert_int_equal(ctl_linebuf_pending(&lb), 4);
	feed(&lb, ":3}\r\n");
	expect_line(&lb, "{\"c\":3}"); /* CR dropped */
	expect_none(&lb);
	assert_int_equal(ctl_linebuf_pending(&lb), 0);
	ctl_linebuf_free(&lb);
}

static void test_control_linebuf_byte_by_byte(void **state)
{
	static const char in[] = "one\ntwo\n\n  \nthree\n";
	const char *want[] = {"one", "two", "three"};
	struct ctl_linebuf lb;
	size_t got = 0;

	(void)state;
	assert_int_equal(ctl_linebuf_init(&lb, 16), 0);
	for (size_t i = 0; i < sizeof(in) - 1; i++) {
		char *line;
		size_t len;
		int r;

		assert_int_equal(ctl_linebuf_feed(&lb, &in[i], 1), 0);
		while ((r = ctl_linebuf_next(&lb, &line, &len)) == 1) {
			assert_true(got < 3);
			assert_string_equal(line, want[got]);
			got++;
		}
		assert_int_equal(r, 0);
	}
	assert_int_equal(got, 3); /* blank lines are skipped */
	ctl_linebuf_free(&lb);
}

static void test_control_linebuf_exact_max(void **state)
{
	struct ctl_linebuf lb;
	char line[18];
	char *l;
	size_t len;

	(void)state;
	assert_int_equal(ctl_linebuf_init(&lb, 16), 0);
	memset(line, 'x', 16);
	line[16] = '\n';
	line[17] = '\0';
	feed(&lb, line); /* 16 bytes: exactly the limit */
	assert_int_equal(ctl_linebuf_next(&lb, &l, &len), 1);
	assert_int_equal(len, 16);
	memset(line, 'y', 17); /* 17 bytes: one too many */
	assert_int_equal(ctl_linebuf_feed(&lb, line, 17), 0);
	assert_int_equal(ctl_linebuf_feed(&lb, "\nok\n", 4), 0);
	assert_int_equal(ctl_linebuf_next(&lb, &l, &len), -EMSGSIZE);
	expect_line(&lb, "ok");
	ctl_linebuf_free(&lb);
}

static void test_control_linebuf_oversize_resyncs(void **state)
{
	struct ctl_linebuf lb;
	char big[100];

	(void)state;
	assert_int_equal(ctl_linebuf_init(&lb, 16), 0);
	memset(big, 'z', sizeof(big));
	/* No newline yet: reported as soon as it is too long ... */
	assert_int_equal(ctl_linebuf_feed(&lb, big, 40), 0);
	{
		char *l;
		size_t len;

		assert_int_equal(ctl_linebuf_next(&lb, &l, &len), -EMSGSIZE);
	}
	/* ... the rest of it is dropped without growing the buffer ... */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(ctl_linebuf_feed(&lb, big, sizeof(big)), 0);
	assert_int_equal(ctl_linebuf_pending(&lb), 0);
	expect_none(&lb);
	/* ... and the line after its newline parses normally. */
	feed(&lb, "zzz\n{\"ok\":1}\n");
	expect_line(&lb, "{\"ok\":1}");
	expect_none(&lb);
	ctl_linebuf_free(&lb);
}

static void test_control_linebuf_take_rest(void **state)
{
	struct ctl_linebuf lb;
	char *l;
	size_t len;

	(void)state;
	assert_int_equal(ctl_linebuf_init(&lb, 16), 0);
	feed(&lb, "first\nlast");
	expect_line(&lb, "first");
	expect_none(&lb);
	assert_int_equal(ctl_linebuf_take_rest(&lb, &l, &len), 1);
	assert_string_equal(l, "last");
	assert_int_equal(ctl_linebuf_take_rest(&lb, &l, &len), 0);
	feed(&lb, "  ");
	assert_int_equal(ctl_linebuf_take_rest(&lb, &l, &len), 0);
	ctl_linebuf_free(&lb);
}

static void test_control_linebuf_read_fd(void **state)
{
	struct ctl_linebuf lb;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(ctl_linebuf_init(&lb, 64), 0);
	assert_int_equal(write(sv[1], "{\"x\":1}\n", 8), 8);
	assert_int_equal(ctl_linebuf_read(&lb, sv[0]), 8);
	expect_line(&lb, "{\"x\":1}");
	close(sv[1]);
	assert_int_equal(ctl_linebuf_read(&lb, sv[0]), 0); /* EOF */
	close(sv[0]);
	ctl_linebuf_free(&lb);
}

static void test_control_parse_object(void **state)
{
	static const char line[] = "{\"method\":\"vm.info\",\"name\":\"a\"}";
	char err[256];
	json_t *o;

	(void)state;
	assert_int_equal(ctl_parse_object(line, strlen(line), &o, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(o, "method")), "vm.info");
	json_decref(o);
}

static void expect_bad(const char *line, const char *msg_part)
{
	char err[256] = "";
	json_t *o = (json_t *)1;

	assert_int_equal(ctl_parse_object(line, strlen(line), &o, err, sizeof(err)), -EBADMSG);
	assert_null(o);
	if (!strstr(err, msg_part))
		fail_msg("error '%s' for input '%s' lacks '%s'", err, line, msg_part);
}

static void test_control_parse_rejects_malformed(void **state)
{
	(void)state;
	expect_bad("garbage", "malformed JSON at column");
	expect_bad("{\"a\":", "malformed JSON");
	expect_bad("{\"a\":1} trailing", "malformed JSON");
	expect_bad("{'a':1}", "malformed JSON");
	expect_bad("{\"a\":1,\"a\":2}", "malformed JSON"); /* duplicate key */
	expect_bad("[1,2]", "expected a JSON object, got an array");
	expect_bad("42", "got an integer");
	expect_bad("\"s\"", "got a string");
	expect_bad("null", "got null");
	expect_bad("", "malformed JSON");
}

static void test_control_encode_is_one_line(void **state)
{
	json_t *o = json_pack("{s:s,s:i}", "text", "two\nlines\r\n", "n", 5);
	char err[256];
	size_t len;
	char *s;
	json_t *back;

	(void)state;
	s = ctl_encode(o, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	assert_int_equal(s[len - 1], '\n');
	assert_null(memchr(s, '\n', len - 1));
	assert_int_equal(ctl_parse_object(s, len - 1, &back, err, sizeof(err)), 0);
	assert_true(json_equal(o, back));
	json_decref(back);
	json_decref(o);
	free(s);
}

static void test_control_responses(void **state)
{
	json_t *ok = ctl_response_ok();
	json_t *e = ctl_response_error("no VM named '%s' (%d)", "x\xff", 3);

	(void)state;
	assert_true(json_is_true(json_object_get(ok, "ok")));
	assert_int_equal(json_object_size(ok), 1);
	assert_true(json_is_false(json_object_get(e, "ok")));
	assert_string_equal(json_string_value(json_object_get(e, "error")), "no VM named 'x?' (3)");
	json_decref(ok);
	json_decref(e);
}

static void expect_lossy(const char *in, size_t len, const char *want)
{
	json_t *s = ctl_string_lossy(in, len);

	assert_non_null(s);
	assert_string_equal(json_string_value(s), want);
	json_decref(s);
}

static void test_control_string_lossy(void **state)
{
	(void)state;
	expect_lossy("plain\r\n", 7, "plain\r\n");
	expect_lossy("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
		     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	expect_lossy("a\xff"
		     "b",
		     3, "a?b");
	expect_lossy("a\0b", 3, "a?b");
	expect_lossy("\xc3", 1, "?");		     /* cut sequence */
	expect_lossy("\xc0\x80", 2, "??");	     /* overlong NUL */
	expect_lossy("\xed\xa0\x80", 3, "???");	     /* UTF-16 surrogate */
	expect_lossy("\xf4\x90\x80\x80", 4, "????"); /* above U+10FFFF */
	expect_lossy("", 0, "");
}

static void test_control_fields(void **state)
{
	static const char *const allowed[] = {"name", "mem_bytes", NULL};
	json_t *o =
		json_pack("{s:s,s:s,s:I,s:i,s:s,s:f}", "method", "vm.start", "name", "a",
			  "mem_bytes", (json_int_t)(64 << 20), "neg", -1, "str", "x", "real", 1.5);
	char err[256];
	const char *s;
	uint64_t v;

	(void)state;
	assert_int_equal(ctl_get_str(o, "name", true, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "a");
	assert_int_equal(ctl_get_str(o, "absent", false, &s, err, sizeof(err)), 1);
	assert_int_equal(ctl_get_str(o, "absent", true, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "missing field 'absent'");
	assert_int_equal(ctl_get_str(o, "mem_bytes", true, &s, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "field 'mem_bytes' must be a string, got an integer");

	assert_int_equal(ctl_get_u64(o, "mem_bytes", true, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 64 << 20);
	assert_int_equal(ctl_get_u64(o, "absent", false, &v, err, sizeof(err)), 1);
	assert_int_equal(ctl_get_u64(o, "neg", true, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "negative"));
	assert_int_equal(ctl_get_u64(o, "str", true, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(ctl_get_u64(o, "real", true, &v, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a real number"));

	assert_int_equal(ctl_check_keys(o, allowed, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown field '"));
	json_object_del(o, "neg");
	json_object_del(o, "str");
	json_object_del(o, "real");
	json_object_set_new(o, "id", json_integer(7));
	assert_int_equal(ctl_check_keys(o, allowed, err, sizeof(err)), 0);
	json_decref(o);
}

static void test_control_bool_field(void **state)
{
	json_t *o = json_pack("{s:b,s:b,s:i,s:s,s:n}", "yes", 1, "no", 0, "one", 1, "str", "true",
			      "nil");
	char err[256];
	bool b = false;

	(void)state;
	assert_int_equal(ctl_get_bool(o, "yes", true, &b, err, sizeof(err)), 0);
	assert_true(b);
	assert_int_equal(ctl_get_bool(o, "no", true, &b, err, sizeof(err)), 0);
	assert_false(b);
	assert_int_equal(ctl_get_bool(o, "absent", false, &b, err, sizeof(err)), 1);
	assert_int_equal(ctl_get_bool(o, "nil", false, &b, err, sizeof(err)), 1);
	assert_int_equal(ctl_get_bool(o, "absent", true, &b, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "missing field 'absent'");
	assert_int_equal(ctl_get_bool(o, "one", true, &b, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "field 'one' must be true or false, got an integer");
	assert_int_equal(ctl_get_bool(o, "str", true, &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a string"));
	json_decref(o);
}

static void test_control_mac(void **state)
{
	static const char *const bad[] = {
		"",
		"52:54:00:12:34",
		"52:54:00:12:34:56:78",
		"52-54-00-12-34-56",
		"52:54:00:12:34:5g",
		"52:54:00:12:34:567",
		"5:54:00:12:34:56a",
		" 52:54:00:12:34:56",
		"52:54:00:12:34:56 ",
		"525400123456",
	};
	char err[256], out[CTL_MAC_STRLEN];
	uint8_t m[6];

	(void)state;
	assert_int_equal(ctl_parse_mac("52:54:00:AB:cd:Ef", m, err, sizeof(err)), 0);
	assert_string_equal(ctl_format_mac(m, out), "52:54:00:ab:cd:ef");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(ctl_parse_mac(bad[i], m, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "invalid MAC address"));
	}
	assert_int_equal(ctl_parse_mac("01:00:5e:00:00:01", m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "multicast"));
	assert_int_equal(ctl_parse_mac("00:00:00:00:00:00", m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "all zeros"));
}

/* Client call: the peer end of a socketpair plays the agent. */
static void test_control_call_roundtrip(void **state)
{
	static const char reply[] = "{\"ok\":true,\"vms\":[]}\n";
	json_t *req = json_pack("{s:s}", "method", "vm.list"), *resp;
	char err[256], got[256];
	int sv[2];
	ssize_t n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], reply, strlen(reply)), (ssize_t)strlen(reply));
	assert_int_equal(ctl_call(sv[0], req, &resp, 1000, err, sizeof(err)), 0);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	assert_true(json_is_array(json_object_get(resp, "vms")));
	n = read(sv[1], got, sizeof(got) - 1);
	assert_true(n > 0);
	got[n] = '\0';
	assert_string_equal(got, "{\"method\":\"vm.list\"}\n");
	json_decref(resp);
	json_decref(req);
	close(sv[0]);
	close(sv[1]);
}

/* Run one call against a peer that answers with reply (NULL: nothing). */
static int call_against(const char *reply, bool close_peer, int timeout_ms, char *err,
			size_t errlen)
{
	json_t *resp = NULL;
	int sv[2], ret;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	if (reply)
		assert_int_equal(write(sv[1], reply, strlen(reply)), (ssize_t)strlen(reply));
	if (close_peer)
		shutdown(sv[1], SHUT_WR);
	ret = ctl_call_line(sv[0], "{\"method\":\"agent.ping\"}", 23, &resp, timeout_ms, err,
			    errlen);
	if (ret == 0)
		json_decref(resp);
	else
		assert_null(resp);
	close(sv[0]);
	close(sv[1]);
	return ret;
}

static void test_control_call_bad_responses(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(call_against("not json\n", false, 1000, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "bad response from agent: malformed JSON"));
	assert_int_equal(call_against("{\"x\":1}\n", false, 1000, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "'ok'"));
	assert_int_equal(call_against("[true]\n", false, 1000, err, sizeof(err)), -EBADMSG);
	assert_int_equal(call_against(NULL, true, 1000, err, sizeof(err)), -ECONNRESET);
	assert_non_null(strstr(err, "closed the connection"));
	assert_int_equal(call_against(NULL, false, 50, err, sizeof(err)), -ETIMEDOUT);
	assert_non_null(strstr(err, "no response"));
	/* A last line without '\n' before EOF still counts. */
	assert_int_equal(
		call_against("{\"ok\":false,\"error\":\"e\"}", true, 1000, err, sizeof(err)), 0);
}

static void test_control_call_oversize_response(void **state)
{
	char err[256];
	json_t *resp = NULL;
	int sv[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Peer: a response line just over the client's limit. */
		static char chunk[65536];
		size_t left = CTL_RESPONSE_MAX + 2;

		close(sv[0]);
		memset(chunk, ' ', sizeof(chunk));
		chunk[0] = '{';
		while (left > 0) {
			size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
			ssize_t w = write(sv[1], chunk, n);

			if (w <= 0)
				_exit(0);
			chunk[0] = ' ';
			left -= (size_t)w;
		}
		_exit(0);
	}
	close(sv[1]);
	assert_int_equal(ctl_call_line(sv[0], "{}", 2, &resp, 10000, err, sizeof(err)), -EMSGSIZE);
	assert_non_null(strstr(err, "longer than"));
	close(sv[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

static void test_control_connect_missing(void **state)
{
	char err[512];
	char longpath[200];

	(void)state;
	assert_int_equal(ctl_connect("/nonexistent/kvmig-test.sock", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "cannot reach agent at /nonexistent/kvmig-test.sock"));
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(ctl_connect(longpath, err, sizeof(err)), -ENAMETOOLONG);
}

/* ---- file descriptors with a request ------------------------------------------- */

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Read from fd until a whole line is in lb, collecting the fds that came. */
static void read_line_fds(struct ctl_linebuf *lb, int fd, int *fds, unsigned *nfds, char **line,
			  size_t *len)
{
	*nfds = 0;
	while (ctl_linebuf_next(lb, line, len) == 0) {
		int got[CTL_MAX_FDS];
		unsigned n;

		assert_true(ctl_linebuf_read_fds(lb, fd, got, &n) > 0);
		for (unsigned i = 0; i < n; i++)
			fds[(*nfds)++] = got[i];
	}
}

static void test_control_call_fds(void **state)
{
	static const char reply[] = "{\"ok\":true}\n";
	json_t *req = json_pack("{s:s, s:i, s:s}", "method", "incoming.adopt", "id", 1, "peer",
				"test"),
	       *resp = NULL;
	struct ctl_linebuf lb;
	int sv[2], p[2], fds[CTL_MAX_FDS];
	unsigned nfds;
	char err[256], buf[8], *line, *want;
	size_t len, wlen;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(sv[1], reply, strlen(reply)), (ssize_t)strlen(reply));
	assert_int_equal(ctl_call_fds(sv[0], req, p, 2, &resp, 1000, err, sizeof(err)), 0);
	assert_true(json_is_true(json_object_get(resp, "ok")));
	/* the agent's side: the whole line, and both descriptors with it */
	assert_int_equal(ctl_linebuf_init(&lb, CTL_REQUEST_MAX), 0);
	read_line_fds(&lb, sv[1], fds, &nfds, &line, &len);
	want = ctl_encode(req, &wlen);
	assert_non_null(want);
	assert_int_equal(len + 1, wlen); /* the line without its newline */
	assert_memory_equal(line, want, len);
	assert_int_equal(nfds, 2);
	for (unsigned i = 0; i < nfds; i++)
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
	/* they are the pipe's two ends: what goes in one comes out of the other */
	assert_int_equal(write(fds[1], "hi", 2), 2);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 2);
	assert_int_equal(write(p[1], "yo", 2), 2);
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "yo", 2);
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	free(want);
	ctl_linebuf_free(&lb);
	json_decref(resp);
	json_decref(req);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void test_control_call_fds_bounds(void **state)
{
	json_t *req = json_pack("{s:s}", "method", "incoming.adopt"), *resp = (json_t *)1;
	int sv[2], fds[CTL_MAX_FDS + 1] = {0, 1, 2};
	char err[256], c;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(ctl_call_fds(sv[0], req, fds, 0, &resp, 1000, err, sizeof(err)), -EINVAL);
	assert_null(resp);
	assert_non_null(strstr(err, "0 file descriptors"));
	assert_int_equal(ctl_call_fds(sv[0], req, fds, CTL_MAX_FDS + 1, &resp, 1000, err,
				      sizeof(err)),
			 -EINVAL);
	/* nothing went out */
	assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	json_decref(req);
	close(sv[0]);
	close(sv[1]);
}

/* Send line with nfds copies of fd in one SCM_RIGHTS message. */
static void send_with_fds(int sock, const char *line, int fd, unsigned nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} cm;
	struct iovec iov = {.iov_base = (void *)(uintptr_t)line, .iov_len = strlen(line)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			    .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
	struct cmsghdr *c;

	assert_true(nfds <= 8);
	memset(&cm, 0, sizeof(cm));
	c = CMSG_FIRSTHDR(&mh);
	assert_non_null(c);
	if (!c)
		return;
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	for (unsigned i = 0; i < nfds; i++)
		memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	assert_int_equal(sendmsg(sock, &mh, 0), (ssize_t)strlen(line));
}

static void test_control_read_fds_too_many(void **state)
{
	struct ctl_linebuf lb;
	int sv[2], p[2], fds[CTL_MAX_FDS], before;
	unsigned nfds = 99;
	char *line;
	size_t len;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(ctl_linebuf_init(&lb, 64), 0);
	before = open_fds();
	send_with_fds(sv[1], "{\"x\":1}\n", p[0], CTL_MAX_FDS + 1);
	assert_int_equal(ctl_linebuf_read_fds(&lb, sv[0], fds, &nfds), -EBADMSG);
	assert_int_equal(nfds, 0);
	assert_int_equal(open_fds(), before); /* every one that came was closed */
	/* a plain line after it reads as before, without descriptors */
	assert_int_equal(write(sv[1], "{\"y\":2}\n", 8), 8);
	assert_int_equal(ctl_linebuf_read_fds(&lb, sv[0], fds, &nfds), 8);
	assert_int_equal(nfds, 0);
	assert_int_equal(ctl_linebuf_next(&lb, &line, &len), 1);
	assert_string_equal(line, "{\"y\":2}");
	/* one descriptor is fine too (a socket used both ways) */
	send_with_fds(sv[1], "{\"z\":3}\n", p[0], 1);
	assert_int_equal(ctl_linebuf_read_fds(&lb, sv[0], fds, &nfds), 8);
	assert_int_equal(nfds, 1);
	assert_int_equal(open_fds(), before + 1);
	close(fds[0]);
	close(sv[1]);
	assert_int_equal(ctl_linebuf_read_fds(&lb, sv[0], fds, &nfds), 0); /* EOF */
	ctl_linebuf_free(&lb);
	close(sv[0]);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_linebuf_splits_lines),
		cmocka_unit_test(test_control_linebuf_byte_by_byte),
		cmocka_unit_test(test_control_linebuf_exact_max),
		cmocka_unit_test(test_control_linebuf_oversize_resyncs),
		cmocka_unit_test(test_control_linebuf_take_rest),
		cmocka_unit_test(test_control_linebuf_read_fd),
		cmocka_unit_test(test_control_parse_object),
		cmocka_unit_test(test_control_parse_rejects_malformed),
		cmocka_unit_test(test_control_encode_is_one_line),
		cmocka_unit_test(test_control_responses),
		cmocka_unit_test(test_control_string_lossy),
		cmocka_unit_test(test_control_fields),
		cmocka_unit_test(test_control_bool_field),
		cmocka_unit_test(test_control_mac),
		cmocka_unit_test(test_control_call_roundtrip),
		cmocka_unit_test(test_control_call_bad_responses),
		cmocka_unit_test(test_control_call_oversize_response),
		cmocka_unit_test(test_control_connect_missing),
		cmocka_unit_test(test_control_call_fds),
		cmocka_unit_test(test_control_call_fds_bounds),
		cmocka_unit_test(test_control_read_fds_too_many),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
