/* SPDX-License-Identifier: MIT */
/*
 * pagebench.c - the page path on loopback without a VM (bench/pagebench.h):
 * the RAM and its mix, the three measurements (raw TCP through
 * chanbench_tcp_pump(), the bare pipeline, the real sender and receiver),
 * per-thread CPU time and instruction counts, the byte-for-byte check and
 * the table.
 */
#include "bench/pagebench.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/chanbench.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/xio.h"
#include "migrate/mio.h"
#include "migrate/pagesend.h"
#include "protocol/channel.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE
#define BUF_BYTES (1u << 20)		/* the bare pipeline's write()/read() size */
#define TEXT_POOL (1u << 20)
#define CONNECT_MS 10000

void pagebench_defaults(struct pagebench_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mib = 1024;
	o->zero = 25;
	o->text = 50;
	o->random = 25;
	o->compress.ops = &codec_raw_ops;
}

static int parse_mix(const char *s, struct pagebench_opts *o, char *err, size_t errlen)
{
	unsigned z = 0, t = 0, r = 0;
	char *dup = strdup(s), *save = NULL, *tok;

	if (!dup)
		bench_fatal("out of memory");
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':'), *end;
		unsigned long v;

		if (!colon)
			goto bad;
		*colon = '\0';
		errno = 0;
		v = strtoul(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || v > 100)
			goto bad;
		if (!strcmp(tok, "zero"))
			z = (unsigned)v;
		else if (!strcmp(tok, "text"))
			t = (unsigned)v;
		else if (!strcmp(tok, "random"))
			r = (unsigned)v;
		else
			goto bad;
	}
	free(dup);
	if (z + t + r != 100) {
		snprintf(err, errlen, "--mix %s: the percentages add up to %u, not 100", s, z + t + r);
		return -EINVAL;
	}
	o->zero = z;
	o->text = t;
	o->random = r;
	return 0;
bad:
	free(dup);
	snprintf(err, errlen, "--mix %s: expected zero:Z,text:T,random:R (percent)", s);
	return -EINVAL;
}

int pagebench_parse(int argc, char **argv, struct pagebench_opts *o, char *err, size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		const char *v;
		int r;

		if (!strcmp(argv[i], "--json")) {
			o->json = true;
			continue;
		}
		if (!strcmp(argv[i], "--warm-dst")) {
			o->warm_dst = true;
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--mib", &v, err, errlen)) != 0) {
			char *end;
			unsigned long n;

			if (r < 0)
				return r;
			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno || *end || n < 1 || n > (1ul << 20)) {
				snprintf(err, errlen, "--mib %s: expected 1..1048576", v);
				return -EINVAL;
			}
			o->mib = (unsigned)n;
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--mix", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			r = parse_mix(v, o, err, errlen);
			if (r < 0)
				return r;
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--compress", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			if (codec_by_name(v, &o->compress) < 0 ||
			    (o->compress.ops != &codec_raw_ops && o->compress.ops != &codec_zstd_ops &&
			     o->compress.ops != &codec_lz4_ops && o->compress.ops != &codec_lz4hc_ops)) {
				snprintf(err, errlen, "--compress %s: expected none, zstd[:L], lz4[:A] or lz4hc[:L]",
					 v);
				return -EINVAL;
			}
			continue;
		}
		snprintf(err, errlen, "unknown option %s", argv[i]);
		return -EINVAL;
	}
	return 0;
}

/* ---- the RAM --------------------------------------------------------------------- */

struct ram {
	int fd;
	uint8_t *base;
	uint64_t bytes, npages;
};

static void ram_open(struct ram *r, const char *name, uint64_t bytes)
{
	r->fd = memfd_create(name, MFD_CLOEXEC);
	if (r->fd < 0)
		bench_fatal("memfd_create: %s", strerror(errno));
	if (ftruncate(r->fd, (off_t)bytes) < 0)
		bench_fatal("ftruncate %" PRIu64 ": %s", bytes, strerror(errno));
	r->base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->base == MAP_FAILED)
		bench_fatal("mmap %" PRIu64 ": %s", bytes, strerror(errno));
	r->bytes = bytes;
	r->npages = bytes / PAGE;
}

/* Give the memory back: the next writes fault fresh pages in, as at a new destination. */
static void ram_empty(struct ram *r)
{
	if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)r->bytes) < 0)
		bench_fatal("fallocate(PUNCH_HOLE): %s", strerror(errno));
}

static void ram_close(struct ram *r)
{
	munmap(r->base, r->bytes);
	close(r->fd);
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static void make_text(uint8_t *pool, size_t len, uint64_t *seed)
{
	static const char *const words[] = {
		"the", "page", "guest", "memory", "kernel", "migration", "socket", "frame",
		"of", "and", "to", "a", "in", "is", "that", "for", "it", "with", "as", "on",
		"round", "dirty", "buffer", "struct", "return", "error", "static", "int",
		"while", "if", "else", "void", "const", "char", "uint64_t", "size_t",
		"destination", "source", "channel", "codec", "zstd", "lz4", "compress",
		"log", "time", "value", "number", "thread", "lock", "queue", "list",
	};
	const size_t nw = sizeof(words) / sizeof(words[0]);
	size_t pos = 0;

	while (pos < len) {
		uint64_t r = rng_next(seed);
		const char *w = words[r % nw];
		size_t wl = strlen(w);

		for (size_t i = 0; i < wl && pos < len; i++)
			pool[pos++] = (uint8_t)w[i];
		if (pos < len)
			pool[pos++] = (r >> 32) % 13 == 0 ? '\n' : ' ';
	}
}

struct mix_count {
	uint64_t zero, text, random;
};

/* Every page written once: zero, a slice of the text pool, or random bytes. */
static void ram_fill(struct ram *r, const struct pagebench_opts *o, struct mix_count *mc)
{
	uint8_t *pool = bench_alloc(TEXT_POOL);
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	make_text(pool, TEXT_POOL, &seed);
	memset(mc, 0, sizeof(*mc));
	for (uint64_t p = 0; p < r->npages; p++) {
		uint8_t *dst = r->base + p * PAGE;
		unsigned pick = (unsigned)(rng_next(&seed) % 100);

		if (pick < o->zero) {
			memset(dst, 0, PAGE);
			mc->zero++;
		} else if (pick < o->zero + o->text) {
			memcpy(dst, pool + rng_next(&seed) % (TEXT_POOL - PAGE), PAGE);
			mc->text++;
		} else {
			uint64_t *w = (uint64_t *)dst;

			for (size_t i = 0; i < PAGE / 8; i++)
				w[i] = rng_next(&seed);
			mc->random++;
		}
	}
	free(pool);
}

/* ---- per-thread counters --------------------------------------------------------- */

struct tcount {
	int perf_fd;		/* -1: no instruction counter here */
	uint64_t cpu0, cpu1;
	uint64_t insn;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Count this thread's user-space instructions from now on. */
static void tcount_start(struct tcount *c)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_HARDWARE;
	a.config = PERF_COUNT_HW_INSTRUCTIONS;
	a.exclude_kernel = 1;
	a.exclude_hv = 1;
	c->perf_fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	c->insn = 0;
	if (c->perf_fd >= 0) {
		ioctl(c->perf_fd, PERF_EVENT_IOC_RESET, 0);
		ioctl(c->perf_fd, PERF_EVENT_IOC_ENABLE, 0);
	}
	c->cpu0 = thread_cpu_ns();
}

static void tcount_stop(struct tcount *c)
{
	c->cpu1 = thread_cpu_ns();
	if (c->perf_fd >= 0) {
		uint64_t v;

		ioctl(c->perf_fd, PERF_EVENT_IOC_DISABLE, 0);
		if (read(c->perf_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			c->insn = v;
		else
			c->perf_fd = -2;
		if (c->perf_fd >= 0)
			close(c->perf_fd);
	}
}

/* ---- a loopback connection ------------------------------------------------------- */

struct acceptor {
	struct channel_listener *l;
	struct channel *ch;
	int ret;
	char err[256];
};

static void *accept_main(void *arg)
{
	struct acceptor *a = arg;

	a->ret = channel_accept(a->l, CONNECT_MS, &a->ch, a->err, sizeof(a->err));
	if (a->ret == 0)
		a->ret = channel_handshake(a->ch, a->err, sizeof(a->err));
	return NULL;
}

static void tcp_pair(struct channel **tx, struct channel **rx)
{
	struct acceptor a = { 0 };
	char err[256], uri[256];
	pthread_t t;

	if (channel_listen("tcp:127.0.0.1:0", &a.l, err, sizeof(err)))
		bench_fatal("listen: %s", err);
	if (channel_listener_uri(a.l, uri, sizeof(uri)) < 0)
		bench_fatal("listen: no URI");
	if (pthread_create(&t, NULL, accept_main, &a))
		bench_fatal("pthread_create: %s", strerror(errno));
	if (channel_connect(uri, CONNECT_MS, tx, err, sizeof(err)))
		bench_fatal("%s: %s", uri, err);
	pthread_join(t, NULL);
	if (a.ret)
		bench_fatal("accept: %s", a.err);
	*rx = a.ch;
	channel_listener_close(a.l);
}

/* ---- one measurement: a sender and a receiver thread ------------------------------ */

struct run {
	const struct pagebench_opts *o;
	struct ram *src, *dst;
	struct channel *tx, *rx;
	pthread_barrier_t go;
	uint64_t t0, t1;
	struct tcount sc, rc;
	uint32_t send_crc, recv_crc;
	uint64_t wire_bytes;
	struct page_sender_stats ss;
	uint64_t recv_pages;
	pid_t send_tid, recv_tid;
};

static void *bare_send(void *arg)
{
	struct run *r = arg;
	int fd = channel_fd(r->tx);
	uint8_t *buf = bench_alloc(BUF_BYTES);
	uint32_t crc = 0;
	size_t fill = 0;

	r->send_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	tcount_start(&r->sc);
	for (uint64_t p = 0; p < r->src->npages; p++) {
		const uint8_t *page = r->src->base + p * PAGE;

		memcpy(buf + fill, page, PAGE);
		crc ^= crc32c(0, buf + fill, PAGE);
		fill += PAGE;
		if (fill == BUF_BYTES || p + 1 == r->src->npages) {
			int ret = write_all(fd, buf, fill);

			if (ret < 0)
				bench_fatal("bare pipeline: write: %s", strerror(-ret));
			fill = 0;
		}
	}
	tcount_stop(&r->sc);
	r->send_crc = crc;
	free(buf);
	return NULL;
}

static void *bare_recv(void *arg)
{
	struct run *r = arg;
	int fd = channel_fd(r->rx);
	uint8_t *buf = bench_alloc(BUF_BYTES);
	uint32_t crc = 0;
	uint64_t off = 0;

	r->recv_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	r->t0 = clock_now_ns();
	tcount_start(&r->rc);
	while (off < r->dst->bytes) {
		size_t n = r->dst->bytes - off < BUF_BYTES ? (size_t)(r->dst->bytes - off) : BUF_BYTES;
		int ret = read_all(fd, buf, n);

		if (ret < 0)
			bench_fatal("bare pipeline: read: %s", strerror(-ret));
		for (size_t i = 0; i < n; i += PAGE) {
			crc ^= crc32c(0, buf + i, PAGE);
			memcpy(r->dst->base + off + i, buf + i, PAGE);
		}
		off += n;
	}
	tcount_stop(&r->rc);
	r->t1 = clock_now_ns();
	r->recv_crc = crc;
	r->wire_bytes = off;
	free(buf);
	return NULL;
}

static void *path_send(void *arg)
{
	struct run *r = arg;
	uint8_t frame[WIRE_HDR_BYTES + 64 + WIRE_CRC_BYTES];
	struct wire_end_round e = { .round = 1 };
	struct page_sender *s;
	struct mio io;
	ssize_t n;
	int ret;

	mio_channel_open(&io, r->tx);
	if (page_sender_create(&r->o->compress, 0, &io, &s) < 0)
		bench_fatal("page_sender_create failed");
	page_sender_set_round(s, 1);
	r->send_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	tcount_start(&r->sc);
	for (uint64_t p = 0; p < r->src->npages; p++) {
		ret = page_sender_page(s, p, r->src->base + p * PAGE, true);
		if (ret < 0)
			bench_fatal("page path: send page %" PRIu64 ": %s", p, strerror(-ret));
	}
	ret = page_sender_flush(s);
	page_sender_get_stats(s, &r->ss);
	e.pages = r->ss.entries;
	n = frame_put_end_round(frame, sizeof(frame), &e);
	if (!ret && n < 0)
		ret = (int)n;
	if (!ret)
		ret = mio_write(&io, frame, (size_t)n);
	if (!ret)
		ret = mio_flush(&io);
	if (ret < 0)
		bench_fatal("page path: flush: %s", strerror(-ret));
	tcount_stop(&r->sc);
	r->wire_bytes = io.bytes_out;
	page_sender_destroy(s);
	/* the channel stays open (r->tx): closed after both threads are done */
	return NULL;
}

static void *path_recv(void *arg)
{
	struct run *r = arg;
	uint8_t *buf = bench_alloc(MIO_FRAME_BUF);
	struct codec_config zc = { .ops = &codec_zstd_ops, .level = 1 };
	struct codec_config lc = { .ops = &codec_lz4_ops, .level = 1 };
	uint32_t caps = WIRE_CAP_ZSTD | WIRE_CAP_LZ4;
	struct codec_ctx *zstd, *lz4;
	struct frame_hdr h;
	struct mio io;
	char err[256];
	uint64_t pages = 0;
	bool done = false;

	mio_channel_open(&io, r->rx);
	if (codec_ctx_create(&zc, PAGE, &zstd) < 0 || codec_ctx_create(&lc, PAGE, &lz4) < 0)
		bench_fatal("out of memory for the decoders");
	r->recv_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	r->t0 = clock_now_ns();
	tcount_start(&r->rc);
	while (!done) {
		const uint8_t *p = buf + WIRE_HDR_BYTES;
		struct page_iter it;
		struct wire_page pg;
		int ret;

		ret = mio_read_frame(&io, buf, MIO_FRAME_BUF, &h, err, sizeof(err));
		if (ret < 0)
			bench_fatal("page path: read: %s", ret == -ENODATA ? "EOF" : err);
		if (h.type == WIRE_F_END_ROUND) {
			struct wire_end_round e;

			if (frame_get_end_round(p, h.len, &e, err, sizeof(err)) < 0)
				bench_fatal("page path: %s", err);
			if (e.pages != pages)
				bench_fatal("page path: END_ROUND says %" PRIu64 " pages, %" PRIu64
					    " came", e.pages, pages);
			done = true;
			continue;
		}
		if (h.type != WIRE_F_PAGES)
			bench_fatal("page path: unexpected %s frame", frame_type_name(h.type));
		ret = pages_begin(&it, p, h.len, r->dst->npages, PAGE, caps, err, sizeof(err));
		if (ret < 0)
			bench_fatal("page path: %s", err);
		while ((ret = pages_next(&it, &pg, err, sizeof(err))) > 0) {
			uint8_t *dst = r->dst->base + pg.page * PAGE;
			struct codec_ctx *ctx = pg.codec == CODEC_ZSTD ? zstd :
						pg.codec == CODEC_LZ4 ? lz4 : NULL;
			const struct codec_ops *ops = codec_get(pg.codec);
			ssize_t n;

			/* ZERO, RAW and XBZRLE decode through their ops with no context */
			n = ctx ? codec_decode(ctx, pg.data, pg.len, dst, PAGE) :
				  ops->decode(NULL, pg.data, pg.len, dst, PAGE);
			if (n != (ssize_t)PAGE)
				bench_fatal("page path: page %" PRIu64 ": bad %s payload", pg.page,
					    ops->name);
			pages++;
		}
		if (ret < 0)
			bench_fatal("page path: %s", err);
	}
	tcount_stop(&r->rc);
	r->t1 = clock_now_ns();
	r->recv_pages = pages;
	codec_ctx_destroy(zstd);
	codec_ctx_destroy(lz4);
	free(buf);
	return NULL;
}

static void measure(struct run *r, void *(*snd)(void *), void *(*rcv)(void *))
{
	pthread_t ts, tr;

	if (!r->o->warm_dst)
		ram_empty(r->dst);
	tcp_pair(&r->tx, &r->rx);
	pthread_barrier_init(&r->go, NULL, 2);
	if (pthread_create(&ts, NULL, snd, r) || pthread_create(&tr, NULL, rcv, r))
		bench_fatal("pthread_create: %s", strerror(errno));
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	pthread_barrier_destroy(&r->go);
	channel_close(r->tx);
	channel_close(r->rx);
}

/* ---- the table ------------------------------------------------------------------- */

struct row {
	const char *name;
	double secs, mbs;
	uint64_t wire;
	double send_cpu, recv_cpu;	/* ns per page; < 0: not measured */
	double send_insn, recv_insn;	/* per page; < 0: not counted */
};

static void fill_row(struct row *w, const char *name, const struct run *r, uint64_t npages)
{
	w->name = name;
	w->secs = (double)(r->t1 - r->t0) / 1e9;
	w->mbs = (double)r->src->bytes / w->secs / 1e6;
	w->wire = r->wire_bytes;
	w->send_cpu = (double)(r->sc.cpu1 - r->sc.cpu0) / (double)npages;
	w->recv_cpu = (double)(r->rc.cpu1 - r->rc.cpu0) / (double)npages;
	w->send_insn = r->sc.perf_fd >= 0 ? (double)r->sc.insn / (double)npages : -1;
	w->recv_insn = r->rc.perf_fd >= 0 ? (double)r->rc.insn / (double)npages : -1;
}

static void print_num(FILE *f, double v, int width, int decimals)
{
	if (v < 0)
		fprintf(f, " %*s", width, "-");
	else
		fprintf(f, " %*.*f", width, decimals, v);
}

static json_t *jnum(double v, int decimals)
{
	return v < 0 ? json_null() : bench_json_real(v, decimals);
}

void pagebench_run(const struct pagebench_opts *o, const char *cmdline, FILE *out)
{
	struct ram src, dst;
	struct mix_count mc;
	struct run r;
	struct row rows[3];
	char cname[32];
	double tcp_s;
	bool insn;

	if (codec_config_format(&o->compress, cname, sizeof(cname)) < 0)
		snprintf(cname, sizeof(cname), "?");
	ram_open(&src, "pagebench-src", (uint64_t)o->mib << 20);
	ram_open(&dst, "pagebench-dst", (uint64_t)o->mib << 20);
	ram_fill(&src, o, &mc);
	/*
	 * Every measurement starts from a destination emptied by a punched
	 * hole: touch it once first, so the first one does not alone pay for a
	 * never-used memfd (several times slower to fault in here).
	 */
	memset(dst.base, 0xa5, dst.bytes);

	/* raw TCP: the same bytes */
	tcp_s = chanbench_tcp_pump(src.bytes);
	memset(&rows[0], 0, sizeof(rows[0]));
	rows[0] = (struct row){ .name = "raw TCP", .secs = tcp_s,
				.mbs = (double)src.bytes / tcp_s / 1e6, .wire = src.bytes,
				.send_cpu = -1, .recv_cpu = -1, .send_insn = -1, .recv_insn = -1 };

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.src = &src;
	r.dst = &dst;
	measure(&r, bare_send, bare_recv);
	if (r.send_crc != r.recv_crc)
		bench_fatal("bare pipeline: CRC32C %08x sent, %08x received", r.send_crc, r.recv_crc);
	if (memcmp(src.base, dst.base, src.bytes))
		bench_fatal("bare pipeline: the destination differs from the source");
	fill_row(&rows[1], "bare pipeline", &r, src.npages);

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.src = &src;
	r.dst = &dst;
	measure(&r, path_send, path_recv);
	for (uint64_t p = 0; p < src.npages; p++)
		if (memcmp(src.base + p * PAGE, dst.base + p * PAGE, PAGE))
			bench_fatal("page path: page %" PRIu64 " of the destination differs from the source",
				    p);
	fill_row(&rows[2], "page path", &r, src.npages);
	insn = rows[2].send_insn >= 0;

	if (o->json) {
		json_t *j = json_object(), *set = json_object(), *pg = json_object(),
		       *res = json_array();

		if (!j || !set || !pg || !res)
			bench_fatal("out of memory");
		bench_json_set(j, "bench", json_string("pagepath"));
		bench_json_set(j, "command", json_string(cmdline));
		bench_json_set(set, "mib", json_integer(o->mib));
		bench_json_set(set, "zero", json_integer(o->zero));
		bench_json_set(set, "text", json_integer(o->text));
		bench_json_set(set, "random", json_integer(o->random));
		bench_json_set(set, "compress", json_string(cname));
		bench_json_set(set, "warm_dst", json_boolean(o->warm_dst));
		bench_json_set(j, "settings", set);
		bench_json_set(pg, "total", json_integer((json_int_t)src.npages));
		bench_json_set(pg, "zero", json_integer((json_int_t)mc.zero));
		bench_json_set(pg, "text", json_integer((json_int_t)mc.text));
		bench_json_set(pg, "random", json_integer((json_int_t)mc.random));
		bench_json_set(pg, "sent_entries", json_integer((json_int_t)r.ss.entries));
		bench_json_set(pg, "sent_compressed", json_integer((json_int_t)r.ss.compressed_pages));
		bench_json_set(pg, "sent_raw", json_integer((json_int_t)r.ss.normal_pages));
		bench_json_set(pg, "frames", json_integer((json_int_t)r.ss.frames));
		bench_json_set(j, "pages", pg);
		for (int i = 0; i < 3; i++) {
			json_t *e = json_object();

			if (!e || json_array_append_new(res, e))
				bench_fatal("out of memory");
			bench_json_set(e, "name", json_string(rows[i].name));
			bench_json_set(e, "mb_per_s", bench_json_real(rows[i].mbs, 1));
			bench_json_set(e, "seconds", bench_json_real(rows[i].secs, 4));
			bench_json_set(e, "wire_bytes", json_integer((json_int_t)rows[i].wire));
			bench_json_set(e, "send_cpu_ns_per_page", jnum(rows[i].send_cpu, 1));
			bench_json_set(e, "recv_cpu_ns_per_page", jnum(rows[i].recv_cpu, 1));
			bench_json_set(e, "send_insn_per_page", jnum(rows[i].send_insn, 1));
			bench_json_set(e, "recv_insn_per_page", jnum(rows[i].recv_insn, 1));
		}
		bench_json_set(j, "results", res);
		bench_json_set(j, "pagepath_over_tcp", bench_json_real(rows[2].mbs / rows[0].mbs, 3));
		bench_json_set(j, "pagepath_over_bare", bench_json_real(rows[2].mbs / rows[1].mbs, 3));
		bench_json_set(j, "verified", json_true());
		bench_json_print(out, j);
	} else {
		fprintf(out, "$ %s\n", cmdline);
		fprintf(out,
			"pagepath: %u MiB RAM (%" PRIu64 " pages: %" PRIu64 " zero, %" PRIu64
			" text, %" PRIu64 " random), compress %s, one TCP loopback connection, %s\n",
			o->mib, src.npages, mc.zero, mc.text, mc.random, cname,
			o->warm_dst ? "destination pages already in place (--warm-dst)" :
				      "destination pages fault in as they land");
		fprintf(out,
			"page path sent %" PRIu64 " entries (%" PRIu64 " raw, %" PRIu64
			" compressed; zero pages skipped as in the bulk round) in %" PRIu64
			" frames; destination verified byte for byte\n",
			r.ss.entries, r.ss.normal_pages, r.ss.compressed_pages, r.ss.frames);
		fprintf(out, "MB/s = RAM bytes (10^6) / wall time; per page = over all %" PRIu64
			" pages of the RAM\n\n", src.npages);
		fprintf(out, "%-14s %9s %8s %9s %11s %11s %11s %11s\n", "", "MB/s", "seconds",
			"wire MB", "send ns/pg", "recv ns/pg", "send ins/pg", "recv ins/pg");
		for (int i = 0; i < 3; i++) {
			fprintf(out, "%-14s %9.1f %8.3f %9.1f", rows[i].name, rows[i].mbs, rows[i].secs,
				(double)rows[i].wire / 1e6);
			print_num(out, rows[i].send_cpu, 11, 1);
			print_num(out, rows[i].recv_cpu, 11, 1);
			print_num(out, rows[i].send_insn, 11, 0);
			print_num(out, rows[i].recv_insn, 11, 0);
			fputc('\n', out);
		}
		fprintf(out, "\npage path / raw TCP       %.3f\n", rows[2].mbs / rows[0].mbs);
		fprintf(out, "page path / bare pipeline %.3f\n", rows[2].mbs / rows[1].mbs);
		fprintf(out, "ns/pg: CPU time of the thread (CLOCK_THREAD_CPUTIME_ID), user + system\n");
		if (insn)
			fprintf(out, "ins/pg: user-space instructions of the thread (perf_event_open)\n");
		else
			fprintf(out, "ins/pg: no instruction counter here (perf_event_open refused);"
				" run `perf stat -e instructions -t TID` on the page path's threads"
				" (sender tid %d, receiver tid %d this run)\n",
				(int)r.send_tid, (int)r.recv_tid);
	}
	ram_close(&src);
	ram_close(&dst);
}
