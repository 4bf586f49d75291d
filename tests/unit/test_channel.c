/* SPDX-License-Identifier: MIT */
/*
 * test_channel.c - channels over a socketpair, TCP loopback and a unix
 * socket, with a second thread as the peer: frames round trip in both
 * directions, small writes are batched into few sends, timeouts fire, a
 * peer that goes away mid-frame gives -ECONNRESET, a corrupted frame
 * -EBADMSG, shutdown cancels a blocked reader, and channel addresses
 * (protocol/uri.h) are parsed strictly with clear messages. Listeners as
 * kvmigd uses them: a kernel-chosen port, IPv6 loopback, a port in use,
 * the non-blocking accept of an event loop (with TCP_NODELAY and keepalive
 * on what it accepts), and unix sockets: a stale file replaced, a live one
 * or a regular file refused, the file removed on close.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/helpers/expect_err.h"

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/xio.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/uri.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE

static char err[256];
static char tmpdir[64];	/* made by the group setup */


/* ---- helpers ------------------------------------------------------------------- */

/* Two channels over a socketpair, or one channel and the raw peer fd. */
static void pair(struct channel **a, struct channel **b, int timeout_ms)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(channel_open(&channel_unix_ops, sv[0], NULL, timeout_ms, a), 0);
	assert_int_equal(channel_open(&channel_unix_ops, sv[1], NULL, timeout_ms, b), 0);
}

static struct channel *half_pair(int timeout_ms, int *raw)
{
	struct channel *ch;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(channel_open(&channel_unix_ops, sv[0], NULL, timeout_ms, &ch), 0);
	*raw = sv[1];
	return ch;
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
		batch_commit(&b, i, CODEC_RAW, PAGE);
	}
	return batch_finish(&b);
}

static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n);

	assert_non_null(p);
	return p;
}

/* Raw bytes from a thread (the socket may not hold them all), then close. */
struct raw_writer {
	int fd;
	const uint8_t *p[2];
	size_t len[2];
	pthread_t t;
};

static void *raw_write_thread(void *arg)
{
	struct raw_writer *w = arg;

	for (int i = 0; i < 2; i++)
		if (w->len[i] && write_all(w->fd, w->p[i], w->len[i]))
			break;
	close(w->fd);
	return NULL;
}

static void raw_write_start(struct raw_writer *w)
{
	assert_int_equal(pthread_create(&w->t, NULL, raw_write_thread, w), 0);
}

static void raw_write_join(struct raw_writer *w)
{
	assert_int_equal(pthread_join(w->t, NULL), 0);
}

/* ---- a peer thread that sends a script of frames --------------------------------- */

#define SCRIPT_MAX 64

struct script {
	struct channel *ch;
	uint8_t *frames[SCRIPT_MAX];
	size_t len[SCRIPT_MAX];
	unsigned n;
	int ret;
	bool wait_ack;		/* read one ACK back after flushing */
	struct wire_ack ack;
};

static void script_add(struct script *s, const uint8_t *f, size_t len)
{
	assert_true(s->n < SCRIPT_MAX);
	s->frames[s->n] = xmalloc(len);
	memcpy(s->frames[s->n], f, len);
	s->len[s->n++] = len;
}

/* One of each forward frame type, a 2 MiB PAGES frame among small ones. */
static void script_fill(struct script *s)
{
	uint8_t *f = xmalloc(CHANNEL_FRAME_MAX);
	struct wire_hello h = { 0 };
	struct wire_end_round er = { 1, 512, 1000 };
	struct wire_complete c = { 513, 2, WIRE_DIGEST_NONE, { 0 } };
	uint8_t sec[300];

	h.version = WIRE_VERSION;
	h.page_size = PAGE;
	h.mem_bytes = 1024 * PAGE;
	h.vcpus = 1;
	h.channels = 1;
	snprintf(h.name, sizeof(h.name), "vm");
	script_add(s, f, (size_t)frame_put_hello(f, CHANNEL_FRAME_MAX, &h));
	script_add(s, f, raw_pages(f, CHANNEL_FRAME_MAX, WIRE_MAX_BATCH, 1));
	script_add(s, f, raw_pages(f, CHANNEL_FRAME_MAX, 1, 2));
	script_add(s, f, raw_pages(f, CHANNEL_FRAME_MAX, 40, 3));
	script_add(s, f, (size_t)frame_put_end_round(f, CHANNEL_FRAME_MAX, &er));
	script_add(s, f, (size_t)frame_put_switchover(f, CHANNEL_FRAME_MAX, 1, 0));
	memset(sec, 0x3c, sizeof(sec));
	script_add(s, f, (size_t)frame_put_state(f, CHANNEL_FRAME_MAX, sec, sizeof(sec)));
	script_add(s, f, (size_t)frame_put_complete(f, CHANNEL_FRAME_MAX, &c));
	free(f);
}

static void script_free(struct script *s)
{
	for (unsigned i = 0; i < s->n; i++)
		free(s->frames[i]);
}

static void *script_run(void *arg)
{
	struct script *s = arg;
	char e[256];
	int ret = 0;

	for (unsigned i = 0; i < s->n && !ret; i++)
		ret = channel_write(s->ch, s->frames[i], s->len[i], e, sizeof(e));
	if (!ret)
		ret = channel_flush(s->ch, e, sizeof(e));
	if (!ret && s->wait_ack) {
		uint8_t f[64];
		struct frame_hdr h;
		ssize_t n = channel_read_frame(s->ch, f, sizeof(f), &h, e, sizeof(e));

		if (n < 0)
			ret = (int)n;
		else if (h.type != WIRE_F_ACK)
			ret = -EPROTO;
		else
			ret = frame_get_ack(f + WIRE_HDR_BYTES, h.len, &s->ack, e, sizeof(e));
	}
	if (ret)
		fprintf(stderr, "peer: %s\n", e);
	s->ret = ret;
	return NULL;
}

/* Receive the script on ch, compare every byte, answer with an ACK. */
static void receive_script(struct channel *ch, struct script *s)
{
	uint8_t *buf = xmalloc(CHANNEL_FRAME_MAX);
	struct channel_stats st0, st;
	struct frame_hdr h;
	struct wire_ack ack = { 7, 12345 };
	uint64_t bytes = 0;
	uint8_t f[64];

	channel_get_stats(ch, &st0);
	for (unsigned i = 0; i < s->n; i++) {
		ssize_t n = channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err));

		if (n < 0)
			fail_msg("frame %u: %s", i, err);
		assert_int_equal(n, s->len[i]);
		assert_memory_equal(buf, s->frames[i], s->len[i]);
		assert_int_equal(h.type, s->frames[i][0]);
		bytes += (uint64_t)n;
	}
	channel_get_stats(ch, &st);
	assert_int_equal(st.frames_received - st0.frames_received, s->n);
	assert_int_equal(st.bytes_received - st0.bytes_received, bytes);
	/* the return path on the same channel */
	assert_int_equal(channel_write(ch, f, (size_t)frame_put_ack(f, sizeof(f), &ack), err,
				       sizeof(err)),
			 0);
	assert_int_equal(channel_flush(ch, err, sizeof(err)), 0);
	free(buf);
}

static void roundtrip(struct channel *sender, struct channel *receiver)
{
	struct script s = { .ch = sender, .wait_ack = true };
	struct channel_stats st0, st;
	pthread_t t;

	channel_get_stats(sender, &st0);
	script_fill(&s);
	assert_int_equal(pthread_create(&t, NULL, script_run, &s), 0);
	receive_script(receiver, &s);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s.ret, 0);
	assert_int_equal(s.ack.round, 7);
	assert_int_equal(s.ack.pages, 12345);
	channel_get_stats(sender, &st);
	assert_int_equal(st.frames_sent - st0.frames_sent, s.n);
	assert_int_equal(st.frames_received - st0.frames_received, 1);
	script_free(&s);
}

/* ---- round trips ----------------------------------------------------------------- */

static void test_channel_roundtrip_socketpair(void **state)
{
	struct channel *a, *b;

	(void)state;
	pair(&a, &b, 5000);
	assert_string_equal(channel_transport(a), "unix");
	assert_true(channel_fd(a) >= 0);
	roundtrip(a, b);
	channel_close(a);
	channel_close(b);
}

struct connector {
	char uri[256];
	struct channel *ch;
	int ret;
	char err[256];
};

static void *connect_thread(void *arg)
{
	struct connector *c = arg;

	c->ret = channel_connect(c->uri, 5000, &c->ch, c->err, sizeof(c->err));
	return NULL;
}

/* Listen at spec, connect from a thread, run the round trip both ways. */
static void roundtrip_over(const char *spec, const char *want_prefix)
{
	struct channel_listener *l;
	struct connector c = { 0 };
	struct channel *server;
	pthread_t t;

	if (channel_listen(spec, &l, err, sizeof(err)))
		fail_msg("listen %s: %s", spec, err);
	assert_true(channel_listener_uri(l, c.uri, sizeof(c.uri)) > 0);
	assert_non_null(strstr(c.uri, want_prefix));
	assert_int_equal(pthread_create(&t, NULL, connect_thread, &c), 0);
	if (channel_accept(l, 5000, &server, err, sizeof(err)))
		fail_msg("accept: %s", err);
	assert_int_equal(pthread_join(t, NULL), 0);
	if (c.ret)
		fail_msg("connect %s: %s", c.uri, c.err);
	roundtrip(c.ch, server);	/* source connects, destination accepts */
	roundtrip(server, c.ch);	/* and the other way */
	channel_close(c.ch);
	channel_close(server);
	channel_listener_close(l);
}

static void test_channel_roundtrip_tcp(void **state)
{
	(void)state;
	roundtrip_over("tcp:127.0.0.1:0", "tcp://127.0.0.1:");
	roundtrip_over("tcp::0", "tcp://127.0.0.1:");
	roundtrip_over("tcp://127.0.0.1:0", "tcp://127.0.0.1:"); /* kvmigd's URL form */
}

/* Whether this host has an IPv6 loopback to bind. */
static bool have_ipv6_loopback(void)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int s = socket(AF_INET6, SOCK_STREAM, 0);
	bool ok = s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;

	if (s >= 0)
		close(s);
	return ok;
}

static void test_channel_roundtrip_ipv6(void **state)
{
	(void)state;
	if (!have_ipv6_loopback()) {
		print_message("no IPv6 loopback on this host: [::1] not tested\n");
		skip();
	}
	roundtrip_over("tcp:[::1]:0", "tcp://[::1]:");
	roundtrip_over("tcp:[::]:0", "tcp://[::1]:");
}

/* The listen address says what was given, with the port the kernel chose. */
static void test_channel_listener_addr(void **state)
{
	static const struct {
		const char *spec, *addr, *uri;
	} c[] = {
		{ "tcp:127.0.0.1:0", "tcp:127.0.0.1:", "tcp://127.0.0.1:" },
		{ "tcp::0", "tcp::", "tcp://127.0.0.1:" },
		{ "tcp://127.0.0.1:0", "tcp:127.0.0.1:", "tcp://127.0.0.1:" },
	};
	struct channel_listener *l;
	char buf[128], want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (channel_listen(c[i].spec, &l, err, sizeof(err)))
			fail_msg("listen %s: %s", c[i].spec, err);
		assert_true(channel_listener_port(l) > 0);
		assert_true(channel_listener_addr(l, buf, sizeof(buf)) > 0);
		snprintf(want, sizeof(want), "%s%u", c[i].addr, channel_listener_port(l));
		assert_string_equal(buf, want);
		assert_true(channel_listener_uri(l, buf, sizeof(buf)) > 0);
		snprintf(want, sizeof(want), "%s%u", c[i].uri, channel_listener_port(l));
		assert_string_equal(buf, want);
		assert_int_equal(channel_listener_addr(l, buf, 5), -ENOSPC);
		channel_listener_close(l);
	}
}

/* A second listener on a bound port fails and says why, as kvmigd reports it. */
static void test_channel_tcp_in_use(void **state)
{
	struct channel_listener *l, *l2 = (struct channel_listener *)1;
	char spec[64], want[128];

	(void)state;
	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)), 0);
	snprintf(spec, sizeof(spec), "tcp:127.0.0.1:%u", channel_listener_port(l));
	snprintf(want, sizeof(want), "cannot listen on %s: Address already in use", spec);
	expect_err(channel_listen(spec, &l2, err, sizeof(err)), -EADDRINUSE, want);
	assert_null(l2);
	channel_listener_close(l);
}

static int sock_opt(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, opt, &v, &len), 0);
	return v;
}

/* A connection arrives: wait until the listening socket says so. */
static void wait_listener_readable(const struct channel_listener *l)
{
	struct pollfd p = { .fd = channel_listener_fd(l), .events = POLLIN };

	assert_int_equal(poll(&p, 1, 5000), 1);
}

/*
 * The event loop's accept (kvmigd): never waits, -EAGAIN with no message
 * when nobody connects, takes every pending connection, and the accepted
 * TCP socket has the transport's options (the point of one listen stack).
 */
static void test_channel_accept_pending(void **state)
{
	struct channel_listener *l;
	struct channel *ch = (struct channel *)1, *c1, *c2, *s1, *s2;
	char uri[128], spec[128];
	uint64_t t0;

	(void)state;
	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)), 0);
	assert_true(fcntl(channel_listener_fd(l), F_GETFL) & O_NONBLOCK);
	snprintf(err, sizeof(err), "untouched");
	t0 = clock_now_ms();
	assert_int_equal(channel_accept_pending(l, 1234, &ch, err, sizeof(err)), -EAGAIN);
	assert_true(clock_now_ms() - t0 < 1000);
	assert_null(ch);
	assert_string_equal(err, "untouched");

	/* loopback connects complete into the backlog before anyone accepts */
	assert_true(channel_listener_uri(l, uri, sizeof(uri)) > 0);
	assert_int_equal(channel_connect(uri, 5000, &c1, err, sizeof(err)), 0);
	assert_int_equal(channel_connect(uri, 5000, &c2, err, sizeof(err)), 0);
	wait_listener_readable(l);
	assert_int_equal(channel_accept_pending(l, 1234, &s1, err, sizeof(err)), 0);
	/* the second may still be in the handshake: poll again */
	wait_listener_readable(l);
	assert_int_equal(channel_accept_pending(l, 1234, &s2, err, sizeof(err)), 0);
	assert_int_equal(channel_accept_pending(l, 1234, &ch, err, sizeof(err)), -EAGAIN);
	assert_string_equal(channel_transport(s1), "tcp");
	assert_int_equal(channel_timeout(s1), 1234);
	assert_int_equal(sock_opt(channel_fd(s1), IPPROTO_TCP, TCP_NODELAY), 1);
	assert_int_equal(sock_opt(channel_fd(s1), SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(sock_opt(channel_fd(s1), IPPROTO_TCP, TCP_KEEPIDLE), 10);
	assert_int_equal(sock_opt(channel_fd(s1), IPPROTO_TCP, TCP_KEEPCNT), 3);
	/* the accepted socket blocks (the channel polls itself) and is close-on-exec */
	assert_false(fcntl(channel_fd(s1), F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(channel_fd(s1), F_GETFD) & FD_CLOEXEC);
	roundtrip(c1, s1);
	roundtrip(s2, c2);
	channel_close(c1);
	channel_close(c2);
	channel_close(s1);
	channel_close(s2);
	channel_listener_close(l);

	/* the same over a unix socket */
	snprintf(spec, sizeof(spec), "unix:%s/pending.sock", tmpdir);
	assert_int_equal(channel_listen(spec, &l, err, sizeof(err)), 0);
	assert_int_equal(channel_accept_pending(l, 1000, &ch, err, sizeof(err)), -EAGAIN);
	assert_true(channel_listener_uri(l, uri, sizeof(uri)) > 0);
	assert_int_equal(channel_connect(uri, 5000, &c1, err, sizeof(err)), 0);
	wait_listener_readable(l);
	assert_int_equal(channel_accept_pending(l, 1000, &s1, err, sizeof(err)), 0);
	assert_string_equal(channel_transport(s1), "unix");
	roundtrip(c1, s1);
	channel_close(c1);
	channel_close(s1);
	channel_listener_close(l);
}

static void test_channel_tcp_port(void **state)
{
	struct channel_listener *l;
	char uri[128];
	uint16_t port;

	(void)state;
	assert_int_equal(channel_listen("tcp:localhost:0", &l, err, sizeof(err)), 0);
	port = channel_listener_port(l);
	assert_true(port > 0);
	assert_true(channel_listener_fd(l) >= 0);
	assert_true(channel_listener_uri(l, uri, sizeof(uri)) > 0);
	{
		char want[64];

		snprintf(want, sizeof(want), ":%u", port);
		assert_non_null(strstr(uri, want));
	}
	assert_int_equal(channel_listener_uri(l, uri, 5), -ENOSPC);
	channel_listener_close(l);
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kvmig-test-channel-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_channel_roundtrip_unix(void **state)
{
	char spec[128], want[128];
	struct stat st;

	(void)state;
	snprintf(spec, sizeof(spec), "unix:%s/mig.sock", tmpdir);
	snprintf(want, sizeof(want), "unix://%s/mig.sock", tmpdir);
	roundtrip_over(spec, want);
	/* the listener removed its socket file */
	assert_int_equal(stat(spec + 5, &st), -1);
}

/* ---- batching ---------------------------------------------------------------------- */

struct drain {
	struct channel *ch;
	unsigned frames;
	uint64_t bytes;
	int ret;
};

static void *drain_thread(void *arg)
{
	struct drain *d = arg;
	uint8_t *buf = malloc(CHANNEL_FRAME_MAX);
	struct frame_hdr h;
	char e[256];

	d->ret = 0;
	while (buf) {
		ssize_t n = channel_read_frame(d->ch, buf, CHANNEL_FRAME_MAX, &h, e, sizeof(e));

		if (n < 0) {
			if (n != -ENODATA)	/* the end of the stream */
				d->ret = (int)n;
			break;
		}
		d->frames++;
		d->bytes += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

static void test_channel_batches_small_writes(void **state)
{
	enum { FRAMES = 20000 };
	struct wire_end_round er = { 0, 0, 0 };
	struct drain d = { 0 };
	struct channel *a, *b;
	struct channel_stats sa, sb;
	uint8_t f[64], *big = xmalloc(CHANNEL_FRAME_MAX);
	size_t n, bn;
	pthread_t t;

	(void)state;
	pair(&a, &b, 5000);
	d.ch = b;
	assert_int_equal(pthread_create(&t, NULL, drain_thread, &d), 0);
	for (unsigned i = 0; i < FRAMES; i++) {
		er.round = i;
		n = (size_t)frame_put_end_round(f, sizeof(f), &er);
		assert_int_equal(channel_write(a, f, n, err, sizeof(err)), 0);
	}
	channel_get_stats(a, &sa);
	/* 20000 x 32 bytes fit in the 1 MiB buffer: nothing sent yet */
	assert_int_equal(sa.sends, 0);
	assert_int_equal(sa.frames_sent, FRAMES);
	assert_int_equal(sa.bytes_sent, 0);
	/* a large frame goes out together with the buffered ones: one send */
	bn = raw_pages(big, CHANNEL_FRAME_MAX, 100, 5);
	assert_true(bn > CHANNEL_COPY_MAX);
	assert_int_equal(channel_write(a, big, bn, err, sizeof(err)), 0);
	channel_get_stats(a, &sa);
	assert_int_equal(sa.sends, 1);
	assert_int_equal(sa.bytes_sent, FRAMES * 32 + bn);
	/* many more small frames: one send per MiB, never one per frame */
	for (unsigned i = 0; i < 4 * FRAMES; i++) {
		n = (size_t)frame_put_end_round(f, sizeof(f), &er);
		assert_int_equal(channel_write(a, f, n, err, sizeof(err)), 0);
	}
	assert_int_equal(channel_flush(a, err, sizeof(err)), 0);
	assert_int_equal(channel_flush(a, err, sizeof(err)), 0);	/* nothing left: no send */
	channel_get_stats(a, &sa);
	assert_int_equal(sa.frames_sent, 5 * FRAMES + 1);
	assert_true(sa.sends <= 1 + (4 * FRAMES * 32) / CHANNEL_OBUF_BYTES + 1);
	assert_true(sa.sends * 1000 < sa.frames_sent);
	assert_int_equal(channel_shutdown(a, SHUT_WR), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(d.ret, 0);
	assert_int_equal(d.frames, 5 * FRAMES + 1);
	channel_get_stats(b, &sb);
	assert_int_equal(sb.bytes_received, sa.bytes_sent);
	assert_int_equal(d.bytes, sa.bytes_sent);
	assert_int_equal(sb.frames_received, 5 * FRAMES + 1);
	/* the reader also reads ahead: far fewer receives than frames */
	assert_true(sb.recvs * 50 < sb.frames_received);
	channel_close(a);
	channel_close(b);
	free(big);
}

/* ---- timeouts ---------------------------------------------------------------------- */

static void test_channel_read_timeout(void **state)
{
	uint8_t f[64], buf[64];
	struct frame_hdr h;
	struct channel *ch;
	uint64_t t0, ms;
	ssize_t n;
	int raw;

	(void)state;
	ch = half_pair(150, &raw);
	assert_int_equal(channel_wait(ch, 0), 0);
	assert_int_equal(channel_wait(ch, 20), 0);
	t0 = clock_now_ms();
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ETIMEDOUT,
		   "no frame from the peer for 150 ms");
	ms = clock_now_ms() - t0;
	assert_true(ms >= 140 && ms < 2000);
	/* half a header arrives, then silence: still nothing consumed */
	n = frame_put_switchover(f, sizeof(f), 77, 0);
	assert_int_equal(write_all(raw, f, 3), 0);
	assert_int_equal(channel_wait(ch, 1000), 1);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ETIMEDOUT,
		   "no frame");
	assert_int_equal(channel_wait(ch, 0), 1);	/* 3 bytes wait in the buffer */
	/* the rest comes: the frame is whole, the channel usable */
	assert_int_equal(write_all(raw, f + 3, (size_t)n - 3), 0);
	assert_int_equal(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), n);
	assert_int_equal(h.type, WIRE_F_SWITCHOVER);
	/* a timeout inside a payload breaks the channel for good */
	assert_int_equal(write_all(raw, f, 10), 0);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ETIMEDOUT,
		   "inside a SWITCHOVER frame (10 of 20 bytes read)");
	assert_int_equal(write_all(raw, f + 10, (size_t)n - 10), 0);
	expect_err(channel_read_frame(ch, buf, sizeof(buf), &h, err, sizeof(err)), -ETIMEDOUT,
		   "channel failed earlier");
	channel_close(ch);
	close(raw);
}

static void test_channel_send_timeout(void **state)
{
	uint8_t *big = xmalloc(CHANNEL_FRAME_MAX);
	struct channel *ch;
	uint64_t t0;
	size_t n;
	int raw, ret = 0;

	(void)state;
	/* the peer never reads: the socket buffers fill, then the wait times out */
	ch = half_pair(200, &raw);
	n = raw_pages(big, CHANNEL_FRAME_MAX, WIRE_MAX_BATCH, 1);
	t0 = clock_now_ms();
	for (int i = 0; i < 64 && !ret; i++)
		ret = channel_write(ch, big, n, err, sizeof(err));
	expect_err(ret, -ETIMEDOUT, "the peer accepted no data for 200 ms");
	assert_true(clock_now_ms() - t0 < 5000);
	/* broken for good */
	expect_err(channel_write(ch, big, 10, err, sizeof(err)), -ETIMEDOUT,
		   "channel failed earlier");
	expect_err(channel_flush(ch, err, sizeof(err)), -ETIMEDOUT, "channel failed earlier");
	channel_close(ch);
	close(raw);
	free(big);
}

static void test_channel_accept_timeout(void **state)
{
	struct channel_listener *l;
	struct channel *ch = (struct channel *)1;
	uint64_t t0;

	(void)state;
	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)), 0);
	t0 = clock_now_ms();
	expect_err(channel_accept(l, 100, &ch, err, sizeof(err)), -ETIMEDOUT,
		   "no connection within 100 ms");
	assert_true(clock_now_ms() - t0 >= 90);
	assert_null(ch);
	channel_listener_close(l);
}

/* ---- the peer goes away --------------------------------------------------------------- */

static void test_channel_peer_closes(void **state)
{
	uint8_t *f = xmalloc(CHANNEL_FRAME_MAX), *buf = xmalloc(CHANNEL_FRAME_MAX);
	struct frame_hdr h;
	struct channel *ch;
	size_t n;
	int raw;

	(void)state;
	n = raw_pages(f, CHANNEL_FRAME_MAX, 100, 9);

	/* at a frame boundary: the end of the stream */
	ch = half_pair(2000, &raw);
	{
		struct raw_writer w = { raw, { f, NULL }, { n, 0 }, 0 };

		raw_write_start(&w);
		assert_int_equal(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err,
						    sizeof(err)),
				 n);
		expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)),
			   -ENODATA, "the peer closed the connection");
		expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)),
			   -ENODATA, "channel failed earlier");
		raw_write_join(&w);
	}
	channel_close(ch);

	/* inside a header */
	ch = half_pair(2000, &raw);
	assert_int_equal(write_all(raw, f, 5), 0);
	close(raw);
	expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)),
		   -ECONNRESET, "the peer closed the connection after 5 of the 8 bytes");
	channel_close(ch);

	/* inside a PAGES frame: a whole frame, then half of the next */
	ch = half_pair(2000, &raw);
	{
		struct raw_writer w = { raw, { f, f }, { n, n / 2 }, 0 };

		raw_write_start(&w);
		assert_int_equal(
			channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)), n);
		expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)),
			   -ECONNRESET, "the peer closed the connection inside a PAGES frame");
		assert_non_null(strstr(err, "(205460 of 410920 bytes read)"));
		raw_write_join(&w);
	}
	channel_close(ch);

	free(f);
	free(buf);
}

static void test_channel_send_to_closed_peer(void **state)
{
	uint8_t *big = xmalloc(CHANNEL_FRAME_MAX);
	struct channel *ch;
	size_t n;
	int raw, ret = 0;

	(void)state;
	/* SIGPIPE would kill the test if a send raised it */
	signal(SIGPIPE, SIG_DFL);
	ch = half_pair(2000, &raw);
	close(raw);
	n = raw_pages(big, CHANNEL_FRAME_MAX, WIRE_MAX_BATCH, 1);
	for (int i = 0; i < 4 && !ret; i++)
		ret = channel_write(ch, big, n, err, sizeof(err));
	expect_err(ret, -ECONNRESET, "the peer closed the connection");
	channel_close(ch);

	/* over TCP too: the peer accepts, then closes */
	{
		struct channel_listener *l;
		struct channel *c, *s;
		char uri[128];

		assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)), 0);
		assert_true(channel_listener_uri(l, uri, sizeof(uri)) > 0);
		assert_int_equal(channel_connect(uri, 2000, &c, err, sizeof(err)), 0);
		assert_int_equal(channel_accept(l, 2000, &s, err, sizeof(err)), 0);
		channel_close(s);
		ret = 0;
		for (int i = 0; i < 64 && !ret; i++)
			ret = channel_write(c, big, n, err, sizeof(err));
		expect_err(ret, -ECONNRESET, "the peer closed the connection");
		channel_close(c);
		channel_listener_close(l);
	}
	free(big);
}

struct blocked_reader {
	struct channel *ch;
	ssize_t ret;
	char err[256];
};

static void *blocked_read(void *arg)
{
	struct blocked_reader *r = arg;
	uint8_t buf[64];
	struct frame_hdr h;

	r->ret = channel_read_frame(r->ch, buf, sizeof(buf), &h, r->err, sizeof(r->err));
	return NULL;
}

static void test_channel_shutdown_cancels(void **state)
{
	struct blocked_reader r = { 0 };
	struct channel *a, *b;
	pthread_t t;

	(void)state;
	pair(&a, &b, CHANNEL_NO_TIMEOUT);
	assert_int_equal(channel_timeout(a), CHANNEL_NO_TIMEOUT);
	r.ch = a;
	assert_int_equal(pthread_create(&t, NULL, blocked_read, &r), 0);
	usleep(50 * 1000);
	assert_int_equal(channel_shutdown(a, SHUT_RDWR), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(r.ret, -ECANCELED);
	assert_non_null(strstr(r.err, "shut down"));
	/* and a write after it */
	{
		uint8_t f[32];
		ssize_t n = frame_put_switchover(f, sizeof(f), 1, 0);

		assert_int_equal(channel_write(a, f, (size_t)n, err, sizeof(err)), 0);
		expect_err(channel_flush(a, err, sizeof(err)), -ECANCELED, "shut down");
	}
	/* the peer sees the end of the stream */
	{
		uint8_t buf[64];
		struct frame_hdr h;

		expect_err(channel_read_frame(b, buf, sizeof(buf), &h, err, sizeof(err)), -ENODATA,
			   "peer closed");
	}
	channel_close(a);
	channel_close(b);
}

/* ---- bad frames ----------------------------------------------------------------------- */

static void test_channel_rejects_corrupt_frame(void **state)
{
	uint8_t *f = xmalloc(CHANNEL_FRAME_MAX), *buf = xmalloc(CHANNEL_FRAME_MAX);
	struct frame_hdr h;
	struct channel *ch;
	size_t n;
	int raw;

	(void)state;
	n = raw_pages(f, CHANNEL_FRAME_MAX, 3, 4);

	/* one flipped payload byte: the CRC catches it */
	ch = half_pair(2000, &raw);
	assert_int_equal(write_all(raw, f, n), 0);
	f[100] ^= 0x01;
	assert_int_equal(write_all(raw, f, n), 0);
	f[100] ^= 0x01;
	assert_int_equal(write_all(raw, f, n), 0);
	assert_int_equal(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)), n);
	expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)), -EBADMSG,
		   "PAGES frame: checksum mismatch");
	/* nothing after a bad frame is trusted */
	expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)), -EBADMSG,
		   "channel failed earlier: PAGES frame: checksum mismatch");
	channel_close(ch);
	close(raw);

	/* a bad header: rejected before any payload is read */
	ch = half_pair(2000, &raw);
	{
		uint8_t hdr[8] = { 0x42, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f };

		assert_int_equal(write_all(raw, hdr, 8), 0);
		expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)),
			   -EBADMSG, "unknown frame type 66");
	}
	channel_close(ch);
	close(raw);

	/* a length beyond the limit of its type */
	ch = half_pair(2000, &raw);
	{
		uint8_t hdr[8] = { WIRE_F_PAGES, 0, 0, 0, 0xff, 0xff, 0xff, 0x00 };

		assert_int_equal(write_all(raw, hdr, 8), 0);
		expect_err(channel_read_frame(ch, buf, CHANNEL_FRAME_MAX, &h, err, sizeof(err)),
			   -EBADMSG, "PAGES frame of 16777215 bytes, must be 21..");
	}
	channel_close(ch);
	close(raw);

	/* a frame larger than the caller's buffer */
	ch = half_pair(2000, &raw);
	assert_int_equal(write_all(raw, f, n), 0);
	expect_err(channel_read_frame(ch, buf, 4096, &h, err, sizeof(err)), -ENOSPC,
		   "a PAGES frame of 12347 bytes does not fit the 4096-byte buffer");
	channel_close(ch);
	close(raw);
	free(f);
	free(buf);
}

/* ---- connect and listen errors --------------------------------------------------------- */

static void test_channel_connect_errors(void **state)
{
	struct channel_listener *l;
	struct channel *ch;
	char uri[256], path[100];
	uint16_t port;

	(void)state;
	/* a port nobody listens on: take one, then close it */
	assert_int_equal(channel_listen("tcp:127.0.0.1:0", &l, err, sizeof(err)), 0);
	port = channel_listener_port(l);
	channel_listener_close(l);
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%u", port);
	expect_err(channel_connect(uri, 2000, &ch, err, sizeof(err)), -ECONNREFUSED,
		   "cannot connect to tcp://127.0.0.1:");
	assert_null(ch);
	assert_non_null(strstr(err, "refused"));

	snprintf(uri, sizeof(uri), "unix://%s/nobody.sock", tmpdir);
	expect_err(channel_connect(uri, 2000, &ch, err, sizeof(err)), -ENOENT, "no such socket");

	expect_err(channel_connect("tcp://no-such-host.invalid:4444", 2000, &ch, err, sizeof(err)),
		   -EHOSTUNREACH, "cannot resolve 'no-such-host.invalid'");
	/* tls is in the build (test_channel_tls.c): without credentials it says so */
	expect_err(channel_connect("tls://127.0.0.1:4444", 2000, &ch, err, sizeof(err)),
		   -EINVAL, "no TLS credentials directory");
	expect_err(channel_connect("ssh://user@no-such-host.invalid", 2000, &ch, err, sizeof(err)),
		   -EHOSTUNREACH, "cannot resolve 'no-such-host.invalid'");
	expect_err(channel_connect("foo://x:1", 2000, &ch, err, sizeof(err)), -EINVAL,
		   "unsupported scheme 'foo' in 'foo://x:1' (tcp, unix, tls, ssh)");
	expect_err(channel_listen("tcp:127.0.0.1", &l, err, sizeof(err)), -EINVAL,
		   "missing port in 'tcp:127.0.0.1'");
	assert_null(l);

	/* a unix path that is a regular file: not replaced */
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fclose(f);
	}
	snprintf(uri, sizeof(uri), "unix:%s", path);
	expect_err(channel_listen(uri, &l, err, sizeof(err)), -EEXIST,
		   "the file exists and is not a socket; refusing to replace it");
	assert_int_equal(access(path, F_OK), 0);
}

static void test_channel_unix_stale_and_busy(void **state)
{
	struct channel_listener *l, *l2;
	struct sockaddr_un sa;
	char spec[96];
	int s;

	(void)state;
	snprintf(spec, sizeof(spec), "unix:%s/busy.sock", tmpdir);
	assert_int_equal(channel_listen(spec, &l, err, sizeof(err)), 0);
	/* a live listener is left alone */
	expect_err(channel_listen(spec, &l2, err, sizeof(err)), -EADDRINUSE,
		   "another process listens there");
	channel_listener_close(l);
	assert_int_equal(access(spec + 5, F_OK), -1);

	/* a socket file left by a dead listener is replaced */
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", spec + 5);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	assert_int_equal(access(spec + 5, F_OK), 0);
	assert_int_equal(channel_listen(spec, &l, err, sizeof(err)), 0);
	/* someone else replaced the file: close leaves theirs alone */
	assert_int_equal(unlink(spec + 5), 0);
	{
		FILE *f = fopen(spec + 5, "w");

		assert_non_null(f);
		fclose(f);
	}
	channel_listener_close(l);
	assert_int_equal(access(spec + 5, F_OK), 0);
	unlink(spec + 5);
	channel_listener_close(NULL);
	channel_close(NULL);
}

/* ---- addresses --------------------------------------------------------------------------- */

static void test_channel_uri_accepts(void **state)
{
	static const struct {
		const char *in;
		enum uri_scheme scheme;
		const char *host, *user, *path;
		unsigned port;
		const char *canon;
	} c[] = {
		{ "tcp://10.0.0.2:4444", URI_TCP, "10.0.0.2", "", "", 4444, NULL },
		{ "tcp://dst-host.example.com:1", URI_TCP, "dst-host.example.com", "", "", 1,
		  NULL },
		{ "tcp://localhost:65535", URI_TCP, "localhost", "", "", 65535, NULL },
		{ "tcp://[::1]:4444", URI_TCP, "::1", "", "", 4444, NULL },
		{ "tcp://[fe80::1%eth0]:80", URI_TCP, "fe80::1%eth0", "", "", 80, NULL },
		{ "tls://host:4443", URI_TLS, "host", "", "", 4443, NULL },
		{ "unix:///run/kvmig/dst.sock", URI_UNIX, "", "", "/run/kvmig/dst.sock", 0, NULL },
		{ "ssh://root@dst", URI_SSH, "dst", "root", "", 22, "ssh://root@dst:22" },
		{ "ssh://dst", URI_SSH, "dst", "", "", 22, "ssh://dst:22" },
		{ "ssh://ops.user_1@10.1.1.1:2222", URI_SSH, "10.1.1.1", "ops.user_1", "", 2222,
		  NULL },
		{ "ssh://[2001:db8::5]:22", URI_SSH, "2001:db8::5", "", "", 22, NULL },
	};
	struct uri u, v;
	char buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (uri_parse(c[i].in, &u, err, sizeof(err)))
			fail_msg("%s: %s", c[i].in, err);
		assert_int_equal(u.scheme, c[i].scheme);
		assert_string_equal(u.host, c[i].host);
		assert_string_equal(u.user, c[i].user);
		assert_string_equal(u.path, c[i].path);
		assert_int_equal(u.port, c[i].port);
		assert_true(uri_format(&u, buf, sizeof(buf)) > 0);
		assert_string_equal(buf, c[i].canon ? c[i].canon : c[i].in);
		assert_int_equal(uri_parse(buf, &v, err, sizeof(err)), 0);
		assert_memory_equal(&u, &v, sizeof(u));
	}
	assert_int_equal(uri_format(&u, buf, 4), -ENOSPC);
}

static void test_channel_uri_listen_accepts(void **state)
{
	static const struct {
		const char *in;
		enum uri_scheme scheme;
		const char *host, *path;
		unsigned port;
		const char *canon;
	} c[] = {
		{ "tcp:0.0.0.0:4444", URI_TCP, "0.0.0.0", "", 4444, NULL },
		{ "tcp:127.0.0.1:0", URI_TCP, "127.0.0.1", "", 0, NULL },
		{ "tcp::4444", URI_TCP, "", "", 4444, NULL },
		{ "tcp::65535", URI_TCP, "", "", 65535, NULL },
		{ "tcp:[::]:4444", URI_TCP, "::", "", 4444, NULL },
		{ "tcp:[::1]:0", URI_TCP, "::1", "", 0, NULL },
		{ "tcp:dst.example:80", URI_TCP, "dst.example", "", 80, NULL },
		{ "tls:10.0.0.1:4443", URI_TLS, "10.0.0.1", "", 4443, NULL },
		{ "unix:/run/kvmig.sock", URI_UNIX, "", "/run/kvmig.sock", 0, NULL },
		{ "unix:relative.sock", URI_UNIX, "", "relative.sock", 0, NULL },
		/* the URL forms kvmigd --listen has always taken */
		{ "tcp://0.0.0.0:4444", URI_TCP, "0.0.0.0", "", 4444, "tcp:0.0.0.0:4444" },
		{ "tcp://localhost:0", URI_TCP, "localhost", "", 0, "tcp:localhost:0" },
		{ "tcp://[::1]:80", URI_TCP, "::1", "", 80, "tcp:[::1]:80" },
		{ "tcp://:4444", URI_TCP, "", "", 4444, "tcp::4444" },
		{ "tls://h:1", URI_TLS, "h", "", 1, "tls:h:1" },
		{ "unix:///run/m.sock", URI_UNIX, "", "/run/m.sock", 0, "unix:/run/m.sock" },
		{ "unix:////run/m.sock", URI_UNIX, "", "/run/m.sock", 0, "unix:/run/m.sock" },
	};
	struct uri u, v;
	char buf[512];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (uri_parse_listen(c[i].in, &u, err, sizeof(err)))
			fail_msg("%s: %s", c[i].in, err);
		assert_int_equal(u.scheme, c[i].scheme);
		assert_string_equal(u.host, c[i].host);
		assert_string_equal(u.path, c[i].path);
		assert_int_equal(u.port, c[i].port);
		assert_true(uri_format_listen(&u, buf, sizeof(buf)) > 0);
		assert_string_equal(buf, c[i].canon ? c[i].canon : c[i].in);
		assert_int_equal(uri_parse_listen(buf, &v, err, sizeof(err)), 0);
		assert_memory_equal(&u, &v, sizeof(u));
	}
	/* forms that exist in one syntax only */
	assert_int_equal(uri_parse_listen("unix:rel", &u, err, sizeof(err)), 0);
	assert_int_equal(uri_format(&u, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(uri_parse("ssh://h", &u, err, sizeof(err)), 0);
	assert_int_equal(uri_format_listen(&u, buf, sizeof(buf)), -EINVAL);
	assert_string_equal(uri_scheme_name(URI_UNIX), "unix");
	assert_string_equal(uri_scheme_name(URI_SCHEME_COUNT), "?");
}

static void test_channel_uri_rejects(void **state)
{
	static const struct {
		const char *in, *msg;
	} c[] = {
		{ "", "empty URI" },
		{ "localhost", "'localhost' is not a URI (expected tcp://HOST:PORT" },
		{ "foo://host:1", "unsupported scheme 'foo' in 'foo://host:1' (tcp, unix, tls, ssh)" },
		{ "127.0.0.1:4444", "'127.0.0.1:4444' is not a URI (expected tcp://HOST:PORT" },
		{ ":4444", "':4444' is not a URI" },
		{ "TCP://host:1", "unsupported scheme 'TCP'" },
		{ "http://host:80", "unsupported scheme 'http'" },
		{ "tcp:host:1", "tcp:HOST:PORT is the form of kvmigd --listen" },
		{ "unix:/x.sock", "unix:PATH is the form of kvmigd --listen" },
		{ "tcp://host", "missing port in 'tcp://host' (expected tcp://HOST:PORT)" },
		{ "tcp://host:", "bad port '' in 'tcp://host:': must be a number 1..65535" },
		{ "tcp://host:0", "bad port '0'" },
		{ "tcp://host:65536", "bad port '65536'" },
		{ "tcp://host:99999999999", "bad port '99999999999'" },
		{ "tcp://host:-1", "bad port '-1'" },
		{ "tcp://host:+80", "bad port '+80'" },
		{ "tcp://host:080", "bad port '080'" },
		{ "tcp://host:80x", "bad port '80x'" },
		{ "tcp://host: 80", "bad port ' 80'" },
		{ "tls://host", "missing port in 'tls://host' (expected tls://HOST:PORT)" },
		{ "tcp://:4444", "missing host in 'tcp://:4444'" },
		{ "tcp://ho_st:1", "bad host 'ho_st'" },
		{ "tcp://-host:1", "bad host '-host'" },
		{ "tcp://host-:1", "bad host 'host-'" },
		{ "tcp://a..b:1", "bad host 'a..b'" },
		{ "tcp://host.:1", "bad host 'host.'" },
		{ "tcp://999.1.1.1:1", "bad host '999.1.1.1'" },
		{ "tcp://1.2.3:1", "bad host '1.2.3'" },
		{ "tcp://::1:4444", "put an IPv6 address in brackets" },
		{ "tcp://[::1:4444", "unterminated '['" },
		{ "tcp://[::g]:4444", "bad IPv6 address '::g'" },
		{ "tcp://[]:4444", "bad IPv6 address ''" },
		{ "tcp://[1.2.3.4]:4444", "bad IPv6 address '1.2.3.4'" },
		{ "tcp://[::1]4444", "unexpected '4' after the host" },
		{ "tcp://host:1/path", "bad port '1/path'" },
		{ "tcp://host/path", "unexpected '/' after the host" },
		{ "tcp://user@host:1", "unexpected '@' after the host" },
		{ "tcp://host?x=1", "unexpected '?' after the host" },
		{ "unix://relative.sock", "a unix URI is unix:///ABSOLUTE/PATH" },
		{ "unix:/tmp/x.sock", "is not a URI" },
		{ "unix://", "a unix URI is unix:///ABSOLUTE/PATH" },
		{ "unix:///tmp/\x01x", "control character" },
		{ "ssh://", "missing host in 'ssh://'" },
		{ "ssh://@host", "bad user ''" },
		{ "ssh://-oProxyCommand=x@host", "bad user '-oProxyCommand=x'" },
		{ "ssh://us er@host", "bad user 'us er'" },
		{ "ssh://-host", "starts with '-'" },
		{ "ssh://user@-host", "starts with '-'" },
		{ "ssh://host:0", "bad port '0'" },
		{ "ssh://host/path", "unexpected '/' after the host" },
		{ "ssh://a@b@c", "unexpected '@' after the host" },
	};
	struct uri u;
	char longpath[300], longhost[300], buf[400];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		err[0] = '\0';
		if (uri_parse(c[i].in, &u, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, c[i].msg))
			fail_msg("'%s': got \"%s\", want \"%s\"", c[i].in, err, c[i].msg);
	}
	expect_err(uri_parse(NULL, &u, err, sizeof(err)), -EINVAL, "empty URI");
	memset(longpath, 'p', sizeof(longpath));
	longpath[0] = '/';
	longpath[108] = '\0';	/* 108 bytes: one too many */
	snprintf(buf, sizeof(buf), "unix://%s", longpath);
	expect_err(uri_parse(buf, &u, err, sizeof(err)), -EINVAL,
		   "unix socket path of 108 bytes, at most 107");
	longpath[107] = '\0';
	snprintf(buf, sizeof(buf), "unix://%s", longpath);
	assert_int_equal(uri_parse(buf, &u, err, sizeof(err)), 0);
	/* host names: 253 bytes in labels of at most 63 */
	memset(longhost, 'a', sizeof(longhost));
	for (int i = 63; i < 300; i += 64)
		longhost[i] = '.';
	longhost[253] = '\0';
	snprintf(buf, sizeof(buf), "tcp://%s:1", longhost);
	assert_int_equal(uri_parse(buf, &u, err, sizeof(err)), 0);
	longhost[253] = 'b';
	longhost[254] = '\0';
	snprintf(buf, sizeof(buf), "tcp://%s:1", longhost);
	expect_err(uri_parse(buf, &u, err, sizeof(err)), -EINVAL, "host name of 254 bytes");
	memset(longhost, 'a', 64);
	longhost[64] = '\0';
	snprintf(buf, sizeof(buf), "tcp://%s:1", longhost);
	expect_err(uri_parse(buf, &u, err, sizeof(err)), -EINVAL, "bad host");
	memset(longhost, 'u', 33);
	snprintf(buf, sizeof(buf), "ssh://%.33s@h", longhost);
	expect_err(uri_parse(buf, &u, err, sizeof(err)), -EINVAL, "bad user");
}

static void test_channel_uri_listen_rejects(void **state)
{
	static const struct {
		const char *in, *msg;
	} c[] = {
		{ "", "empty listen address" },
		{ "4444", "'4444' is not a listen address (expected tcp:HOST:PORT" },
		{ "127.0.0.1:4444", "'127.0.0.1:4444' is not a listen address" },
		{ "foo:1", "unsupported scheme 'foo' in 'foo:1' (expected tcp:HOST:PORT" },
		{ "ftp://h:1", "unsupported scheme 'ftp'" },
		{ "ssh:host", "ssh needs no listener" },
		{ "ssh://host", "ssh needs no listener" },
		{ "unix://rel.sock", "a unix URI is unix:///ABSOLUTE/PATH (three slashes)" },
		{ "unix://", "a unix URI is unix:///ABSOLUTE/PATH" },
		{ "tcp://0.0.0.0", "missing port in 'tcp://0.0.0.0'" },
		{ "tcp://h:99999", "bad port '99999'" },
		{ "tcp:host", "missing port in 'tcp:host' (expected tcp:HOST:PORT)" },
		{ "tcp:host:", "bad port '' in 'tcp:host:'" },
		{ "tcp:host:12a", "bad port '12a'" },
		{ "tcp:host:-1", "bad port '-1'" },
		{ "tcp:host:99999999999999999999", "bad port '99999999999999999999'" },
		{ "tcp:::1:80", "put an IPv6 address in brackets" },
		{ "tcp:[::1:80", "unterminated '['" },
		{ "tcp:[]:80", "bad IPv6 address ''" },
		{ "tcp:[::1]", "missing port in 'tcp:[::1]'" },
		{ "tcp:", "missing port in 'tcp:'" },
		{ "tcp:host:65536",
		  "bad port '65536' in 'tcp:host:65536': must be a number 0..65535" },
		{ "tcp:host:00", "bad port '00'" },
		{ "tcp:ho$t:1", "bad host" },
		{ "tls:host", "missing port in 'tls:host' (expected tls:HOST:PORT)" },
		{ "unix:", "missing socket path in 'unix:'" },
	};
	struct uri u;
	char longpath[200], buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		err[0] = '\0';
		if (uri_parse_listen(c[i].in, &u, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, c[i].msg))
			fail_msg("'%s': got \"%s\", want \"%s\"", c[i].in, err, c[i].msg);
	}
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[108] = '\0';
	snprintf(buf, sizeof(buf), "unix:%s", longpath);
	expect_err(uri_parse_listen(buf, &u, err, sizeof(err)), -EINVAL,
		   "unix socket path of 108 bytes, at most 107");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channel_roundtrip_socketpair),
		cmocka_unit_test(test_channel_roundtrip_tcp),
		cmocka_unit_test(test_channel_tcp_port),
		cmocka_unit_test(test_channel_roundtrip_ipv6),
		cmocka_unit_test(test_channel_listener_addr),
		cmocka_unit_test(test_channel_tcp_in_use),
		cmocka_unit_test(test_channel_accept_pending),
		cmocka_unit_test(test_channel_roundtrip_unix),
		cmocka_unit_test(test_channel_batches_small_writes),
		cmocka_unit_test(test_channel_read_timeout),
		cmocka_unit_test(test_channel_send_timeout),
		cmocka_unit_test(test_channel_accept_timeout),
		cmocka_unit_test(test_channel_peer_closes),
		cmocka_unit_test(test_channel_send_to_closed_peer),
		cmocka_unit_test(test_channel_shutdown_cancels),
		cmocka_unit_test(test_channel_rejects_corrupt_frame),
		cmocka_unit_test(test_channel_connect_errors),
		cmocka_unit_test(test_channel_unix_stale_and_busy),
		cmocka_unit_test(test_channel_uri_accepts),
		cmocka_unit_test(test_channel_uri_listen_accepts),
		cmocka_unit_test(test_channel_uri_rejects),
		cmocka_unit_test(test_channel_uri_listen_rejects),
	};

	/* a deadlocked test must fail, not hang the test run */
	alarm(120);
	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
