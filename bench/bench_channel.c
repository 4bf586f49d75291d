/* SPDX-License-Identifier: MIT */
/*
 * bench_channel.c - throughput of protocol/channel.h against a plain socket
 * pump, over TCP loopback and a unix socket, in the same run.
 *
 * plain:   write() of 1 MiB buffers on one thread, read() of 1 MiB buffers
 *          on another: the most a socket moves. It sends from the same
 *          16 MiB as the channel, so both read equally cold memory.
 * channel: PAGES frames of 512 raw pages (2 MiB each, built once with the
 *          batch builder, 8 different frames in turn) sent with
 *          channel_write() on one thread; channel_read_frame() on another,
 *          which checks every header and CRC, and pages_begin/pages_next
 *          over every entry.
 * Both use the same kind of connection (channel_listen/connect/accept, so
 * the same socket options); the plain pump uses its raw file descriptors.
 * Each pair is run --repeat times, alternating, and the median is shown.
 * The target is channel >= 90% of plain. MB is 10^6 bytes.
 *
 * Usage: bench_channel [--gib N] [--repeat R] [--transport tcp|unix]
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xio.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PUMP_BYTES (1u << 20)
#define NFRAMES 8

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_channel: %s: %s\n", what, msg);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("malloc", "out of memory");
	return p;
}

/* A connected pair over spec's transport: *tx connects, *rx accepts. */
static void connect_pair(const char *spec, struct channel **tx, struct channel **rx)
{
	struct channel_listener *l;
	char err[256], uri[256];

	if (channel_listen(spec, &l, err, sizeof(err)))
		die(spec, err);
	if (channel_listener_uri(l, uri, sizeof(uri)) < 0)
		die(spec, "no URI");
	/* the backlog holds the connection until accept */
	if (channel_connect(uri, 10000, tx, err, sizeof(err)))
		die(uri, err);
	if (channel_accept(l, 10000, rx, err, sizeof(err)))
		die(spec, err);
	channel_listener_close(l);
}

/* ---- plain pump ------------------------------------------------------------------ */

struct pump {
	int fd;
	uint64_t bytes;
	int ret;
};

static void *pump_reader(void *arg)
{
	struct pump *p = arg;
	uint8_t *buf = xmalloc(PUMP_BYTES);
	uint64_t got = 0;

	while (got < p->bytes) {
		ssize_t n = read(p->fd, buf, PUMP_BYTES);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			p->ret = -1;
			break;
		}
		got += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

/* The plain pump sends from the same 16 MiB as the channel, 1 MiB at a time. */
static double run_plain(const char *spec, uint64_t bytes, uint8_t *const *frames)
{
	struct channel *tx, *rx;
	struct pump p = { 0 };
	uint64_t t0, sent = 0;
	unsigned k = 0;
	pthread_t t;
	double secs;

	connect_pair(spec, &tx, &rx);
	p.fd = channel_fd(rx);
	p.bytes = bytes;
	t0 = clock_now_ns();
	if (pthread_create(&t, NULL, pump_reader, &p))
		die("pthread_create", strerror(errno));
	for (; sent < bytes; sent += PUMP_BYTES, k = (k + 1) % (2 * NFRAMES))
		if (write_all(channel_fd(tx), frames[k / 2] + (k % 2) * PUMP_BYTES, PUMP_BYTES))
			die("plain write", strerror(errno));
	pthread_join(t, NULL);
	secs = (double)(clock_now_ns() - t0) / 1e9;
	if (p.ret)
		die("plain read", "short");
	channel_close(tx);
	channel_close(rx);
	return (double)bytes / secs / 1e6;
}

/* ---- channel ------------------------------------------------------------------------ */

struct sink {
	struct channel *ch;
	uint64_t frames;
	uint64_t pages;
	int ret;
	char err[256];
};

static void *channel_reader(void *arg)
{
	struct sink *s = arg;
	uint8_t *buf = xmalloc(CHANNEL_FRAME_MAX);

	for (uint64_t i = 0; i < s->frames; i++) {
		struct frame_hdr h;
		struct page_iter it;
		struct wire_page pg;
		ssize_t n = channel_read_frame(s->ch, buf, CHANNEL_FRAME_MAX, &h, s->err,
					       sizeof(s->err));
		int r;

		if (n < 0 || h.type != WIRE_F_PAGES) {
			s->ret = -1;
			break;
		}
		r = pages_begin(&it, buf + WIRE_HDR_BYTES, h.len, WIRE_MAX_BATCH, WIRE_PAGE_SIZE, 0,
				s->err, sizeof(s->err));
		if (r == 0)
			while ((r = pages_next(&it, &pg, s->err, sizeof(s->err))) == 1)
				s->pages++;
		if (r < 0) {
			s->ret = -1;
			break;
		}
	}
	free(buf);
	return NULL;
}

static double run_channel(const char *spec, uint64_t bytes, uint8_t *const *frames,
			  size_t frame_len)
{
	struct channel *tx, *rx;
	struct sink s = { 0 };
	uint64_t t0, n = (bytes + frame_len - 1) / frame_len;
	char err[256];
	pthread_t t;
	double secs;

	connect_pair(spec, &tx, &rx);
	s.ch = rx;
	s.frames = n;
	t0 = clock_now_ns();
	if (pthread_create(&t, NULL, channel_reader, &s))
		die("pthread_create", strerror(errno));
	for (uint64_t i = 0; i < n; i++)
		if (channel_write(tx, frames[i % NFRAMES], frame_len, err, sizeof(err)))
			die("channel_write", err);
	if (channel_flush(tx, err, sizeof(err)))
		die("channel_flush", err);
	pthread_join(t, NULL);
	secs = (double)(clock_now_ns() - t0) / 1e9;
	if (s.ret)
		die("channel reader", s.err);
	if (s.pages != n * WIRE_MAX_BATCH)
		die("channel reader", "pages lost");
	channel_close(tx);
	channel_close(rx);
	return (double)(n * frame_len) / secs / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		const char *spec;
	} transports[] = {
		{ "tcp", "tcp:127.0.0.1:0" },
		{ "unix", NULL },
	};
	uint8_t *frames[NFRAMES];
	size_t frame_len = 0;
	double gib = 1;
	int repeat = 5;
	const char *only = NULL;
	char unix_spec[128], dir[] = "/tmp/kvmig-bench-XXXXXX";

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--gib") && i + 1 < argc)
			gib = atof(argv[++i]);
		else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
			repeat = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--transport") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--gib N] [--repeat R] [--transport tcp|unix]\n",
				argv[0]);
			return 2;
		}
	}
	if (gib <= 0 || repeat < 1 || repeat > 50)
		die("arguments", "--gib > 0, --repeat 1..50");

	/* the command that made this table */
	printf("$");
	for (int i = 0; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n");

	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	snprintf(unix_spec, sizeof(unix_spec), "unix:%s/bench.sock", dir);

	/* 8 different frames of 512 raw pages, each page with its own bytes */
	for (int f = 0; f < NFRAMES; f++) {
		struct page_batch b;

		frames[f] = xmalloc(CHANNEL_FRAME_MAX);
		batch_begin(&b, frames[f], CHANNEL_FRAME_MAX, 1);
		for (unsigned i = 0; i < WIRE_MAX_BATCH; i++) {
			uint8_t *d = batch_reserve(&b, WIRE_PAGE_SIZE);

			for (unsigned k = 0; k < WIRE_PAGE_SIZE; k += 8)
				memset(d + k, (int)(f * 31 + i * 7 + k), 8);
			batch_commit(&b, i, CODEC_RAW, WIRE_PAGE_SIZE);
		}
		frame_len = batch_finish(&b);
	}

	printf("%-9s %12s %14s %7s   (%.3g GiB each, median of %d; frames of %zu bytes)\n",
	       "transport", "MB/s plain", "MB/s channel", "ratio", gib, repeat, frame_len);
	for (size_t k = 0; k < sizeof(transports) / sizeof(transports[0]); k++) {
		const char *spec = transports[k].spec ? transports[k].spec : unix_spec;
		uint64_t bytes = (uint64_t)(gib * (double)(1ull << 30));
		double plain[50], chan[50], ratio[50];

		if (only && strcmp(only, transports[k].name))
			continue;
		bytes = (bytes + PUMP_BYTES - 1) / PUMP_BYTES * PUMP_BYTES;
		for (int r = 0; r < repeat; r++) {
			plain[r] = run_plain(spec, bytes, frames);
			chan[r] = run_channel(spec, bytes, frames, frame_len);
			ratio[r] = chan[r] / plain[r];
		}
		qsort(plain, (size_t)repeat, sizeof(double), cmp_double);
		qsort(chan, (size_t)repeat, sizeof(double), cmp_double);
		qsort(ratio, (size_t)repeat, sizeof(double), cmp_double);
		printf("%-9s %12.0f %14.0f %7.2f\n", transports[k].name, plain[repeat / 2],
		       chan[repeat / 2], ratio[repeat / 2]);
		fflush(stdout);
	}
	for (int f = 0; f < NFRAMES; f++)
		free(frames[f]);
	rmdir(dir);
	return 0;
}
