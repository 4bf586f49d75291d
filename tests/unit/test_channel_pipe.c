/* SPDX-License-Identifier: MIT */
/*
 * test_channel_pipe.c - the channel over a pair of fds (channel_pipe_open:
 * what `kvmigd --incoming stdio` hands the agent, pipes or one socket, as
 * sshd chose): frames in both directions at once over two pipes (frames
 * far larger than a pipe holds, so one direction stalls if the other is
 * not served), one socket for both, the end of the stream between two
 * frames (-ENODATA) and inside one (-ECONNRESET), a reader that went away
 * (-ECONNRESET, and the process survives with SIGPIPE at its default
 * action), read and send timeouts, channel_shutdown() from another thread
 * waking a blocked read and a blocked write, a SHUT_WR that leaves the
 * read direction waiting quietly (no spinning on the wakeup), the info
 * (kind "stdio") and channel_wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/xio.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE
#define JOIN_MS 10000 /* a thread that should have returned: a hang fails, not blocks */

static char err[256];

static void expect_err_at(long ret, long want, const char *e, const char *substr,
			  const char *file, int line)
{
	if (ret != want || !strstr(e, substr)) {
		print_error("got %ld \"%s\", want %ld with \"%s\"\n", ret, e, want, substr);
		_fail(file, line);
	}
}

#define expect_err(ret, want, substr) \
	expect_err_at((long)(ret), (long)(want), err, (substr), __FILE__, __LINE__)

static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n);

	assert_non_null(p);
	return p;
}

/* Join t within JOIN_MS or fail (the thread is stuck: the bug under test). */
static void join_bounded(pthread_t t, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += JOIN_MS / 1000;
	if (pthread_timedjoin_np(t, NULL, &ts) != 0)
		fail_msg("%s did not return within %d ms", what, JOIN_MS);
}

/* A PAGES frame of n raw pages, page i filled with (seed + i). Return: size. */
static size_t raw_pages(uint8_t *buf, size_t cap, unsigned n, unsigned seed)
{
	struct page_batch b;

	batch_begin(&b, buf, cap, seed);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = batch_reserve(&b, PAGE);

		assert_non_null(d);
		memset(d, (int)(seed + i), PAGE);
		d[0] = (uint8_t)i;
		d[1] = (uint8_t)seed;
		batch_commit(&b, i, CODEC_RAW, PAGE);
	}
	return batch_finish(&b);
}

/* ch_a reads pa[0] and writes pb[1]; ch_b reads pb[0] and writes pa[1]. */
static void pipe_pair(struct channel **a, struct channel **b, int timeout_ms)
{
	int pa[2], pb[2];

	assert_int_equal(pipe2(pa, O_CLOEXEC), 0);
	assert_int_equal(pipe2(pb, O_CLOEXEC), 0);
	assert_int_equal(channel_pipe_open(pa[0], pb[1], timeout_ms, a), 0);
	assert_int_equal(channel_pipe_open(pb[0], pa[1], timeout_ms, b), 0);
}

/* A channel reading from a pipe and writing to another; *rw the raw far ends. */
static struct channel *half_pipes(int timeout_ms, int *to_ch, int *from_ch)
{
	struct channel *ch;
	int in[2], out[2];

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(channel_pipe_open(in[0], out[1], timeout_ms, &ch), 0);
	*to_ch = in[1];
	*from_ch = out[0];
	return ch;
}

/* ---- frames both ways at once ------------------------------------------------ */

#define FRAMES 24

struct flow {
	struct channel *ch;
	unsigned seed;
	int ret;
	char e[256];
	uint64_t bytes;
};

/* FRAMES PAGES frames of 1..WIRE_MAX_BATCH pages, then an END_ROUND. */
static size_t flow_frame(uint8_t *f, unsigned seed, unsigned i)
{
	unsigned n = i % 3 == 0 ? WIRE_MAX_BATCH : 1 + (i * 37) % 200;

	return raw_pages(f, CHANNEL_FRAME_MAX, n, seed + i);
}

static void *flow_send(void *arg)
{
	struct flow *fl = arg;
	uint8_t *f = xmalloc(CHANNEL_FRAME_MAX);
	struct wire_end_round er = {fl->seed, FRAMES, 1};
	int ret = 0;

	for (unsigned i = 0; i < FRAMES && !ret; i++) {
		size_t n = flow_frame(f, fl->seed, i);

		ret = channel_write(fl->ch, f, n, fl->e, sizeof(fl->e));
		fl->bytes += n;
	}
	if (!ret) {
		size_t n = (size_t)frame_put_end_round(f, CHANNEL_FRAME_MAX, &er);

		ret = channel_write(fl->ch, f, n, fl->e, sizeof(fl->e));
		fl->bytes += n;
	}
	if (!ret)
		ret = channel_flush(fl->ch, fl->e, sizeof(fl->e));
	fl->ret = ret;
	free(f);
	return NULL;
}

/* Read what flow_send of seed sends and compare every byte. */
static void *flow_recv(void *arg)
{
	struct flow *fl = arg;
	uint8_t *want = xmalloc(CHANNEL_FRAME_MAX), *buf = xmalloc(CHANNEL_FRAME_MAX);
	struct wire_end_round er;
	struct frame_hdr h;
	ssize_t n;

	fl->ret = 0;
	for (unsigned i = 0; i <= FRAMES; i++) {
		n = channel_read_frame(fl->ch, buf, CHANNEL_FRAME_MAX, &h, fl->e, sizeof(fl->e));
		if (n < 0) {
			fl->ret = (int)n;
			break;
		}
		fl->bytes += (uint64_t)n;
		if (i == FRAMES) {
			if (h.type != WIRE_F_END_ROUND ||
			    frame_get_end_round(buf + WIRE_HDR_BYTES, h.len, &er, fl->e,
						sizeof(fl->e)) < 0 ||
			    er.round != fl->seed)
				fl->ret = -EPROTO;
			break;
		}
		if ((size_t)n != flow_frame(want, fl->seed, i) || memcmp(buf, want, (size_t)n)) {
			snprintf(fl->e, sizeof(fl->e), "frame %u differs", i);
			fl->ret = -EPROTO;
			break;
		}
	}
	free(want);
	free(buf);
	return NULL;
}

static void test_pipe_both_ways(void **state)
{
	struct flow s[2] = {{.seed = 10}, {.seed = 90}}, r[2] = {{.seed = 10}, {.seed = 90}};
	struct channel *a, *b;
	struct channel_stats st;
	pthread_t t[4];

	(void)state;
	pipe_pair(&a, &b, 10000);
	s[0].ch = a;
	r[0].ch = b;
	s[1].ch = b;
	r[1].ch = a;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_create(&t[2 * i], NULL, flow_send, &s[i]), 0);
		assert_int_equal(pthread_create(&t[2 * i + 1], NULL, flow_recv, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		join_bounded(t[i], "a sender or receiver");
	for (int i = 0; i < 2; i++) {
		if (s[i].ret || r[i].ret)
			fail_msg("flow %d: send %d (%s), receive %d (%s)", i, s[i].ret, s[i].e,
				 r[i].ret, r[i].e);
		assert_true(s[i].bytes > 40u * CHANNEL_FRAME_MAX / 8);
		assert_int_equal(s[i].bytes, r[i].bytes);
	}
	channel_get_stats(a, &st);
	assert_int_equal(st.frames_sent, FRAMES + 1);
	assert_int_equal(st.frames_received, FRAMES + 1);
	assert_int_equal(st.bytes_sent, s[0].bytes);
	assert_int_equal(st.bytes_received, r[1].bytes);
	/* a's sender is done: b reads the end of the stream once a is closed */
	channel_close(a);
	{
		uint8_t buf[64];
		struct frame_hdr h;

		expect_err(channel_read_frame(b, buf, sizeof(buf), &h, err, sizeof(err)), -ENODATA,
			   "closed");
	}
	channel_close(b);
}

/* One socket for both directions (rfd == wfd), as an sshd may give. */
static void test_pipe_one_socket(void **state)
{
	struct flow s = {.seed = 5}, r = {.seed = 5}, s2 = {.seed = 6}, r2 = {.seed = 6};
	struct channel *a, *b;
	pthread_t t[4];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(channel_pipe_open(sv[0], sv[0], 10000, &a), 0);
	assert_int_equal(channel_pipe_open(sv[1], sv[1], 10000, &b), 0);
	s.ch = a;
	r.ch = b;
	s2.ch = b;
	r2.ch = a;
	assert_int_equal(pthread_create(&t[0], NULL, flow_send, &s), 0);
	assert_int_equal(pthread_create(&t[1], NULL, flow_recv, &r), 0);
	assert_int_equal(pthread_create(&t[2], NULL, flow_send, &s2), 0);
	assert_int_equal(pthread_create(&t[3], NULL, flow_recv, &r2), 0);
	for (int i = 0; i < 4; i++)
		join_bounded(t[i], "a sender or receiver");
	if (s.ret || r.ret || s2.ret || r2.ret)
		fail_msg("send %d (%s), receive %d (%s); back: %d (%s), %d (%s)", s.ret, s.e,
			 r.ret, r.e, s2.ret, s2.e, r2.ret, r2.e);
	channel_close(a); /* one fd for both: closed once (a double close would EBADF below) */
	{
		uint8_t buf[64];
		struct frame_hdr h;

		expect_err(channel_read_frame(b, buf, sizeof(buf), &h, err, sizeof(err)), -ENODATA,
			   "closed");
	}
	channel_close(b);
}

/* ---- the end of the stream ------------------------------------------------------- */

static void test_pipe_eof(void **state)
{
	uint8_t f[64], buf[64];
	struct frame_hdr h;
	struct channel *ch;
	int to, from;
	ssize_t n;

	(void)state;
	/* a whole frame, then the writer closes: the frame, then -ENODATA */
	ch = half_pipes(5000, &to, &from);
	n = frame_put_switchover(f, sizeof(f), 3, 0);
	assert_int_equal(write_all(to, f, (size_t)n), 0);
	close(to);
	assert_int_equal(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), n);
	assert_int_equal(h.type, WIRE_F_SWITCHOVER);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ENODATA,
		   "closed");
	channel_close(ch);
	close(from);

	/* half a frame, then the writer closes: cut inside it */
	ch = half_pipes(5000, &to, &from);
	assert_int_equal(write_all(to, f, (size_t)n - 4), 0);
	close(to);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ECONNRESET,
		   "inside a SWITCHOVER frame");
	channel_close(ch);
	close(from);
}

/* The reader is gone: the write fails with -ECONNRESET and SIGPIPE kills nobody. */
static void test_pipe_reader_gone(void **state)
{
	uint8_t *big = xmalloc(CHANNEL_FRAME_MAX);
	struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
	struct channel *ch;
	int to, from, ret = 0;
	size_t n;

	(void)state;
	assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
	ch = half_pipes(5000, &to, &from);
	close(from);
	n = raw_pages(big, CHANNEL_FRAME_MAX, WIRE_MAX_BATCH, 1);
	ret = channel_write(ch, big, n, err, sizeof(err));
	if (!ret)
		ret = channel_flush(ch, err, sizeof(err));
	expect_err(ret, -ECONNRESET, "closed");
	/* a SIGPIPE, if one was raised and left pending, is not taken either */
	{
		sigset_t pending;

		assert_int_equal(sigpending(&pending), 0);
		assert_false(sigismember(&pending, SIGPIPE));
	}
	channel_close(ch);
	close(to);
	assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
	free(big);
}

/* ---- timeouts ---------------------------------------------------------------------- */

static void test_pipe_read_timeout(void **state)
{
	uint8_t f[64], buf[64];
	struct frame_hdr h;
	struct channel *ch;
	uint64_t t0, ms;
	int to, from;
	ssize_t n;

	(void)state;
	ch = half_pipes(150, &to, &from);
	assert_int_equal(channel_wait(ch, 0), 0);
	assert_int_equal(channel_wait(ch, 20), 0);
	t0 = clock_now_ms();
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ETIMEDOUT,
		   "150 ms");
	ms = clock_now_ms() - t0;
	assert_true(ms >= 140 && ms < 5000);
	/* half a header, then silence: nothing consumed, the next read has the frame */
	n = frame_put_switchover(f, sizeof(f), 77, 0);
	assert_int_equal(write_all(to, f, 3), 0);
	assert_int_equal(channel_wait(ch, 5000), 1);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ETIMEDOUT,
		   "150 ms");
	assert_int_equal(write_all(to, f + 3, (size_t)n - 3), 0);
	assert_int_equal(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), n);
	assert_int_equal(h.type, WIRE_F_SWITCHOVER);
	channel_close(ch);
	close(to);
	close(from);
}

static void test_pipe_send_timeout(void **state)
{
	uint8_t *big = xmalloc(CHANNEL_FRAME_MAX);
	struct channel *ch;
	uint64_t t0;
	int to, from, ret = 0;
	size_t n;

	(void)state;
	/* nobody reads from: the pipe fills, then the wait times out */
	ch = half_pipes(200, &to, &from);
	n = raw_pages(big, CHANNEL_FRAME_MAX, WIRE_MAX_BATCH, 1);
	t0 = clock_now_ms();
	for (int i = 0; i < 16 && !ret; i++)
		ret = channel_write(ch, big, n, err, sizeof(err));
	expect_err(ret, -ETIMEDOUT, "the peer accepted no data for 200 ms");
	assert_true(clock_now_ms() - t0 < 5000);
	expect_err(channel_flush(ch, err, sizeof(err)), -ETIMEDOUT, "failed earlier");
	channel_close(ch);
	close(to);
	close(from);
	free(big);
}

/* ---- shutdown ------------------------------------------------------------------------ */

struct blocked {
	struct channel *ch;
	bool write;
	long ret;
	char e[256];
	uint64_t cpu_ms, wall_ms;
};

static uint64_t thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *blocked_io(void *arg)
{
	struct blocked *b = arg;
	uint64_t c0 = thread_cpu_ms(), w0 = clock_now_ms();

	if (b->write) {
		uint8_t *big = xmalloc(CHANNEL_FRAME_MAX);
		size_t n = raw_pages(big, CHANNEL_FRAME_MAX, WIRE_MAX_BATCH, 2);
		int ret = 0;

		/* the pipe holds 64 KiB: the first frame blocks */
		for (int i = 0; i < 16 && !ret; i++)
			ret = channel_write(b->ch, big, n, b->e, sizeof(b->e));
		b->ret = ret;
		free(big);
	} else {
		uint8_t buf[64];
		struct frame_hdr h;

		b->ret = channel_read_frame(b->ch, buf, sizeof(buf), &h, b->e, sizeof(b->e));
	}
	b->cpu_ms = thread_cpu_ms() - c0;
	b->wall_ms = clock_now_ms() - w0;
	return NULL;
}

static void test_pipe_shutdown_wakes(void **state)
{
	struct blocked r = {0}, w = {.write = true};
	struct channel *ch;
	pthread_t tr, tw;
	int to, from;

	(void)state;
	ch = half_pipes(CHANNEL_NO_TIMEOUT, &to, &from);
	r.ch = ch;
	w.ch = ch;
	assert_int_equal(pthread_create(&tr, NULL, blocked_io, &r), 0);
	assert_int_equal(pthread_create(&tw, NULL, blocked_io, &w), 0);
	/* both block (no timeout) whether or not they got there before this */
	assert_int_equal(channel_shutdown(ch, SHUT_RDWR), 0);
	join_bounded(tr, "the reader after shutdown");
	join_bounded(tw, "the writer after shutdown");
	if (r.ret != -ECANCELED || w.ret != -ECANCELED)
		fail_msg("read %ld (%s), write %ld (%s), want -ECANCELED", r.ret, r.e, w.ret, w.e);
	channel_close(ch);
	close(to);
	close(from);
}

/* SHUT_WR (after the last frame) must leave reads waiting as before, not spinning. */
static void test_pipe_shut_wr_read_waits(void **state)
{
	struct blocked r = {0};
	struct channel *ch;
	uint8_t f[64], buf[64];
	struct frame_hdr h;
	pthread_t t;
	int to, from;
	ssize_t n;

	(void)state;
	ch = half_pipes(300, &to, &from);
	assert_int_equal(channel_shutdown(ch, SHUT_WR), 0);
	r.ch = ch;
	assert_int_equal(pthread_create(&t, NULL, blocked_io, &r), 0);
	join_bounded(t, "a read after SHUT_WR");
	if (r.ret != -ETIMEDOUT)
		fail_msg("read after SHUT_WR: %ld (%s), want -ETIMEDOUT", r.ret, r.e);
	assert_true(r.wall_ms >= 290);
	/* waiting is not spinning: well under half the time on a CPU */
	if (r.cpu_ms * 2 > r.wall_ms)
		fail_msg("the read used %llu ms of CPU in %llu ms", (unsigned long long)r.cpu_ms,
			 (unsigned long long)r.wall_ms);
	/* and frames still arrive in the direction not shut */
	n = frame_put_switchover(f, sizeof(f), 9, 0);
	assert_int_equal(write_all(to, f, (size_t)n), 0);
	assert_int_equal(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), n);
	/* the write direction is shut */
	assert_int_equal(channel_write(ch, f, (size_t)n, err, sizeof(err)), 0);
	expect_err(channel_flush(ch, err, sizeof(err)), -ECANCELED, "shut down");
	channel_close(ch);
	close(to);
	close(from);
}

/* ---- what it is ------------------------------------------------------------------------ */

static void test_pipe_info(void **state)
{
	struct channel_info info;
	struct channel *ch;
	int to, from;

	(void)state;
	ch = half_pipes(1000, &to, &from);
	assert_string_equal(channel_transport(ch), "stdio");
	channel_get_info(ch, &info);
	assert_string_equal(info.kind, "stdio");
	assert_string_equal(info.cipher, "");
	assert_false(info.ktls);
	assert_true(channel_fd(ch) >= 0);
	assert_int_equal(channel_wait(ch, 0), 0);
	assert_int_equal(write_all(to, "x", 1), 0);
	assert_int_equal(channel_wait(ch, 1000), 1);
	channel_close(ch);
	close(to);
	close(from);
	/* a bad fd is refused (and the good one closed with it) */
	{
		int p[2];

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		assert_true(channel_pipe_open(p[0], 1000000, 1000, &ch) < 0);
		assert_int_equal(fcntl(p[0], F_GETFD), -1); /* taken and closed */
		close(p[1]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipe_both_ways),
		cmocka_unit_test(test_pipe_one_socket),
		cmocka_unit_test(test_pipe_eof),
		cmocka_unit_test(test_pipe_reader_gone),
		cmocka_unit_test(test_pipe_read_timeout),
		cmocka_unit_test(test_pipe_send_timeout),
		cmocka_unit_test(test_pipe_shutdown_wakes),
		cmocka_unit_test(test_pipe_shut_wr_read_waits),
		cmocka_unit_test(test_pipe_info),
	};

	/* a deadlocked test must fail, not hang the test run */
	alarm(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
