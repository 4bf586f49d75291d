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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchutil.h"
#include "bench/chanbench.h"
#include "common/clock.h"
#include "common/crc32c.h"
#include "common/xio.h"
#include "migrate/autocomp.h"
#include "migrate/mio.h"
#include "migrate/pageplace.h"
#include "migrate/pagesend.h"
#include "migrate/ratelimit.h"
#include "protocol/channel.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE
#define BUF_BYTES (1u << 20)		/* the bare pipeline's write()/read() size */
#define TEXT_POOL (1u << 20)
#define CONNECT_MS 10000
#define INSN_MIB 16			/* --insn's RAM under callgrind */

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
		if (!strcmp(argv[i], "--insn")) {
			o->insn = true;
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--only", &v, err, errlen)) != 0) {
			if (r < 0)
				return r;
			if (strcmp(v, "bare") && strcmp(v, "path")) {
				snprintf(err, errlen, "--only %s: expected bare or path", v);
				return -EINVAL;
			}
			o->only = v;
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
			o->cauto = !strcmp(v, "auto");
			if (o->cauto)
				v = "none";
			if (codec_by_name(v, &o->compress) < 0 ||
			    (o->compress.ops != &codec_raw_ops && o->compress.ops != &codec_zstd_ops &&
			     o->compress.ops != &codec_lz4_ops && o->compress.ops != &codec_lz4hc_ops)) {
				snprintf(err, errlen, "--compress %s: expected none, zstd[:L], lz4[:A], lz4hc[:L] or auto",
					 v);
				return -EINVAL;
			}
			continue;
		}
		if ((r = bench_take_opt(argc, argv, &i, "--bandwidth", &v, err, errlen)) != 0) {
			char *end;

			if (r < 0)
				return r;
			errno = 0;
			o->bandwidth = strtoull(v, &end, 10);
			if (errno || end == v || *end) {
				snprintf(err, errlen, "--bandwidth %s: a number of bytes per second", v);
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
	struct autocomp ac;		/* --compress auto: the last decision */
	unsigned decisions;		/* --compress auto: how many were made */
	uint64_t recv_pages;
	pid_t send_tid, recv_tid;
};

/*
 * The timed loops, each in a function of its own that is never inlined, so
 * that `--insn` (callgrind's --toggle-collect) counts exactly them.
 */
#define TIMED __attribute__((noinline))

static TIMED uint32_t pagebench_bare_send(const struct ram *src, int fd, uint8_t *buf)
{
	uint32_t crc = 0;
	size_t fill = 0;

	for (uint64_t p = 0; p < src->npages; p++) {
		memcpy(buf + fill, src->base + p * PAGE, PAGE);
		crc ^= crc32c(0, buf + fill, PAGE);
		fill += PAGE;
		if (fill == BUF_BYTES || p + 1 == src->npages) {
			int ret = write_all(fd, buf, fill);

			if (ret < 0)
				bench_fatal("bare pipeline: write: %s", strerror(-ret));
			fill = 0;
		}
	}
	return crc;
}

static TIMED uint32_t pagebench_bare_recv(const struct ram *dst, int fd, uint8_t *buf)
{
	uint32_t crc = 0;
	uint64_t off = 0;

	while (off < dst->bytes) {
		size_t n = dst->bytes - off < BUF_BYTES ? (size_t)(dst->bytes - off) : BUF_BYTES;
		int ret = read_all(fd, buf, n);

		if (ret < 0)
			bench_fatal("bare pipeline: read: %s", strerror(-ret));
		for (size_t i = 0; i < n; i += PAGE) {
			crc ^= crc32c(0, buf + i, PAGE);
			memcpy(dst->base + off + i, buf + i, PAGE);
		}
		off += n;
	}
	return crc;
}

/*
 * The page path's connection as the sender sees it: --bandwidth's cap
 * (ratelimit.h) in front of the channel, and the time its writes take
 * (the link's rate, for --compress auto), as a migration's lanes have.
 */
struct capio {
	struct mio io;		/* the sender writes here (priv: this) */
	struct mio *under;	/* the channel */
	struct ratelimit rl;
	uint64_t write_ns;
};

static int capio_write(struct mio *io, const void *buf, size_t len)
{
	struct capio *c = io->priv;
	uint64_t t0;
	int ret;

	if (c->rl.rate)
		ratelimit_wait(&c->rl, len);
	t0 = clock_now_ns();
	ret = mio_write(c->under, buf, len);
	c->write_ns += clock_now_ns() - t0;
	return ret;
}

static int capio_flush(struct mio *io)
{
	struct capio *c = io->priv;

	return mio_flush(c->under);
}

#define AUTO_SLICE_PAGES 4096u		/* pages between two decisions (a migration's chunk) */
#define AUTO_PROBE_SLICE_PAGES 256u	/* the same before the first, probing 1 in 8 */

/* --compress auto: decide from the sender's and the link's totals, as migrate/source.c. */
static uint64_t auto_step(struct run *r, struct page_sender *s, const struct capio *c)
{
	struct page_sender_stats st;
	struct autocomp_input in = { .cpus = 1, .cap_bytes_per_s = r->o->bandwidth };
	enum autocomp_choice k;
	bool probing;

	page_sender_get_stats(s, &st);
	memcpy(in.codec, st.codec, sizeof(in.codec));
	in.link_bytes = c->under->bytes_out;
	in.link_ns = c->write_ns;
	k = autocomp_decide(&r->ac, &in, PAGE);
	r->decisions++;
	probing = r->ac.why == AUTOCOMP_PROBE;
	if (page_sender_set_codec(s, autocomp_codec_id(k)) < 0)
		bench_fatal("page path: cannot switch to %s", autocomp_choice_name(k));
	page_sender_set_probe(s, probing ? 8 : 0);
	return probing ? AUTO_PROBE_SLICE_PAGES : AUTO_SLICE_PAGES;
}

/*
 * Every page as the bulk round sends it, then END_ROUND; c: --compress
 * auto's figures (NULL: a fixed codec). Return: 0 or -errno.
 */
static TIMED int pagebench_path_send(struct run *r, const struct ram *src, struct page_sender *s,
				     struct mio *io, const struct capio *c,
				     struct page_sender_stats *ss)
{
	uint8_t frame[WIRE_HDR_BYTES + 64 + WIRE_CRC_BYTES];
	struct wire_end_round e = { .round = 0 };
	uint64_t next = 0;
	ssize_t n;
	int ret;

	for (uint64_t p = 0; p < src->npages; p++) {
		if (c && p == next)
			next = p + auto_step(r, s, c);
		ret = page_sender_page(s, p, src->base + p * PAGE, true);
		if (ret < 0)
			return ret;
	}
	ret = page_sender_flush(s);
	if (ret < 0)
		return ret;
	page_sender_get_stats(s, ss);
	e.pages = ss->entries;
	n = frame_put_end_round(frame, sizeof(frame), &e);
	if (n < 0)
		return (int)n;
	ret = mio_write(io, frame, (size_t)n);
	return ret ? ret : mio_flush(io);
}

/* PAGES frames into dst until END_ROUND, placed as the destination does. Return: the pages placed. */
static TIMED uint64_t pagebench_path_recv(struct page_placer *pp, struct mio *io, uint8_t *buf)
{
	const uint32_t caps = WIRE_CAP_ZSTD | WIRE_CAP_LZ4;
	const uint8_t *p = buf + WIRE_HDR_BYTES;
	struct page_place_counts c = {0};
	struct frame_hdr h;
	char err[256];

	for (;;) {
		int ret = mio_read_frame(io, buf, MIO_FRAME_BUF, &h, err, sizeof(err));

		if (ret < 0)
			bench_fatal("page path: read: %s", ret == -ENODATA ? "EOF" : err);
		if (h.type == WIRE_F_END_ROUND) {
			struct wire_end_round e;

			if (frame_get_end_round(p, h.len, &e, err, sizeof(err)) < 0)
				bench_fatal("page path: %s", err);
			if (e.pages != c.pages)
				bench_fatal("page path: END_ROUND says %" PRIu64 " pages, %" PRIu64
					    " came", e.pages, c.pages);
			return c.pages;
		}
		if (h.type != WIRE_F_PAGES)
			bench_fatal("page path: unexpected %s frame", frame_type_name(h.type));
		if (page_place(pp, p, h.len, caps, &c, err, sizeof(err)) < 0)
			bench_fatal("page path: %s", err);
	}
}

static void *bare_send(void *arg)
{
	struct run *r = arg;
	uint8_t *buf = bench_alloc(BUF_BYTES);

	r->send_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	tcount_start(&r->sc);
	r->send_crc = pagebench_bare_send(r->src, channel_fd(r->tx), buf);
	tcount_stop(&r->sc);
	r->wire_bytes = r->src->bytes;
	free(buf);
	return NULL;
}

static void *bare_recv(void *arg)
{
	struct run *r = arg;
	uint8_t *buf = bench_alloc(BUF_BYTES);

	r->recv_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	r->t0 = clock_now_ns();
	tcount_start(&r->rc);
	r->recv_crc = pagebench_bare_recv(r->dst, channel_fd(r->rx), buf);
	tcount_stop(&r->rc);
	r->t1 = clock_now_ns();
	free(buf);
	return NULL;
}

static void *path_send(void *arg)
{
	struct run *r = arg;
	struct page_sender *s;
	struct mio io;
	struct capio c = { .under = &io };
	int ret;

	mio_channel_open(&io, r->tx);
	c.io = (struct mio){ .write = capio_write, .flush = capio_flush, .priv = &c };
	ratelimit_init(&c.rl, r->o->bandwidth, clock_now_ns());
	if (page_sender_create(&r->o->compress, 0, &c.io, &s) < 0)
		bench_fatal("page_sender_create failed");
	for (int k = AUTOCOMP_NONE + 1; r->o->cauto && k < AUTOCOMP_CHOICES; k++) {
		struct codec_config cc = autocomp_codec((enum autocomp_choice)k);

		if (page_sender_add_codec(s, &cc) < 0)
			bench_fatal("page_sender_add_codec failed");
	}
	autocomp_init(&r->ac, AUTOCOMP_NONE);
	page_sender_set_round(s, 0);	/* the bulk round */
	r->send_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	tcount_start(&r->sc);
	ret = pagebench_path_send(r, r->src, s, &c.io, r->o->cauto ? &c : NULL, &r->ss);
	tcount_stop(&r->sc);
	if (ret < 0)
		bench_fatal("page path: send: %s", strerror(-ret));
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
	struct codec_ctx *zstd, *lz4;
	struct page_placer pp;
	struct mio io;

	mio_channel_open(&io, r->rx);
	if (codec_ctx_create(&zc, PAGE, &zstd) < 0 || codec_ctx_create(&lc, PAGE, &lz4) < 0)
		bench_fatal("out of memory for the decoders");
	if (page_placer_init(&pp, r->dst->base, r->dst->fd, r->dst->bytes, zstd, lz4) < 0)
		bench_fatal("out of memory for the page placer");
	r->recv_tid = (pid_t)syscall(SYS_gettid);
	pthread_barrier_wait(&r->go);
	r->t0 = clock_now_ns();
	tcount_start(&r->rc);
	r->recv_pages = pagebench_path_recv(&pp, &io, buf);
	tcount_stop(&r->rc);
	r->t1 = clock_now_ns();
	page_placer_fini(&pp);
	codec_ctx_destroy(zstd);
	codec_ctx_destroy(lz4);
	free(buf);
	return NULL;
}

static void measure(struct run *r, void *(*snd)(void *), void *(*rcv)(void *))
{
	pthread_t ts, tr;

	/* zero either way: the page path skips zero pages, the bulk round's destination is zero */
	if (r->o->warm_dst)
		memset(r->dst->base, 0, r->dst->bytes);
	else
		ram_empty(r->dst);
	chanbench_pair("tcp:127.0.0.1:0", NULL, &r->tx, &r->rx);
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

static void run_bare(const struct pagebench_opts *o, struct ram *src, struct ram *dst,
		     struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->src = src;
	r->dst = dst;
	measure(r, bare_send, bare_recv);
	if (r->send_crc != r->recv_crc)
		bench_fatal("bare pipeline: CRC32C %08x sent, %08x received", r->send_crc,
			    r->recv_crc);
	if (memcmp(src->base, dst->base, src->bytes))
		bench_fatal("bare pipeline: the destination differs from the source");
}

static void run_path(const struct pagebench_opts *o, struct ram *src, struct ram *dst,
		     struct run *r)
{
	memset(r, 0, sizeof(*r));
	r->o = o;
	r->src = src;
	r->dst = dst;
	measure(r, path_send, path_recv);
	for (uint64_t p = 0; p < src->npages; p++)
		if (memcmp(src->base + p * PAGE, dst->base + p * PAGE, PAGE))
			bench_fatal("page path: page %" PRIu64
				    " of the destination differs from the source", p);
}

/*
 * --insn: run this program again under callgrind with --only WHAT on a
 * mib MiB RAM, collecting only inside pagebench_WHAT_send and _recv (each
 * runs on its own thread), and divide each thread's total by the pages.
 */
static void insn_count(const struct pagebench_opts *o, unsigned mib, const char *what,
		       double *send, double *recv)
{
	char dir[] = "/tmp/pagebench-XXXXXX", exe[4096], outf[4200], tog_s[96], tog_r[96];
	char mibs[16], mix[64], cname[32], fn_s[64], fn_r[64], *argv[17];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int status;
	pid_t pid;

	*send = *recv = -1;
	if (n < 0 || !mkdtemp(dir))
		bench_fatal("--insn: %s", strerror(errno));
	exe[n] = '\0';
	if (codec_config_format(&o->compress, cname, sizeof(cname)) < 0)
		bench_fatal("--insn: cannot name the codec");
	if (o->cauto)
		snprintf(cname, sizeof(cname), "auto");
	snprintf(outf, sizeof(outf), "--callgrind-out-file=%s/cg", dir);
	snprintf(fn_s, sizeof(fn_s), "pagebench_%s_send", what);
	snprintf(fn_r, sizeof(fn_r), "pagebench_%s_recv", what);
	snprintf(tog_s, sizeof(tog_s), "--toggle-collect=%s", fn_s);
	snprintf(tog_r, sizeof(tog_r), "--toggle-collect=%s", fn_r);
	snprintf(mibs, sizeof(mibs), "%u", mib);
	snprintf(mix, sizeof(mix), "zero:%u,text:%u,random:%u", o->zero, o->text, o->random);
	{
		const char *words[] = { "valgrind", "--tool=callgrind", "--separate-threads=yes", outf,
					tog_s, tog_r, exe, "--mib", mibs, "--mix", mix, "--compress",
					cname, "--only", what, o->warm_dst ? "--warm-dst" : NULL };
		size_t nw = sizeof(words) / sizeof(words[0]);

		for (size_t i = 0; i < nw; i++)
			argv[i] = words[i] ? strdup(words[i]) : NULL;
		argv[nw] = NULL;
		for (size_t i = 0; i + 1 < nw; i++)
			if (!argv[i])
				bench_fatal("out of memory");
	}
	pid = fork();
	if (pid < 0)
		bench_fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execvp("valgrind", argv);
		_exit(127);
	}
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		bench_fatal("--insn: valgrind --tool=callgrind %s --only %s failed (status %d%s)",
			    exe, what, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			    WIFEXITED(status) && WEXITSTATUS(status) == 127 ? ": no valgrind?" : "");
	for (int t = 1; t < 64; t++) {
		char path[sizeof(dir) + 16], *buf, *sum;
		size_t len;
		unsigned long long ir;

		snprintf(path, sizeof(path), "%s/cg-%02d", dir, t);
		if (read_file_max(path, 64u << 20, &buf, &len) < 0)
			continue;
		sum = strstr(buf, "\nsummary: ");
		if (sum && sscanf(sum, "\nsummary: %llu", &ir) == 1) {
			double per = (double)ir / (double)(((uint64_t)mib << 20) / PAGE);

			if (strstr(buf, fn_s))
				*send = per;
			else if (strstr(buf, fn_r))
				*recv = per;
		}
		free(buf);
		unlink(path);
	}
	snprintf(outf, sizeof(outf), "%s/cg", dir);
	unlink(outf);
	rmdir(dir);
	if (*send < 0 || *recv < 0)
		bench_fatal("--insn: callgrind's output in %s names no %s or %s", dir, fn_s, fn_r);
}

void pagebench_run(const struct pagebench_opts *o, const char *cmdline, FILE *out)
{
	struct ram src, dst;
	struct mix_count mc;
	struct run r;
	struct row rows[3];
	char cname[32];
	double tcp_s;
	unsigned insn_mib = 0;
	bool insn;

	if (codec_config_format(&o->compress, cname, sizeof(cname)) < 0)
		snprintf(cname, sizeof(cname), "?");
	if (o->cauto)
		snprintf(cname, sizeof(cname), "auto");
	ram_open(&src, "pagebench-src", (uint64_t)o->mib << 20);
	ram_open(&dst, "pagebench-dst", (uint64_t)o->mib << 20);
	ram_fill(&src, o, &mc);
	/*
	 * Every measurement starts from a destination emptied by a punched
	 * hole: touch it once first, so the first one does not alone pay for a
	 * never-used memfd (several times slower to fault in here).
	 */
	memset(dst.base, 0xa5, dst.bytes);

	if (o->only) {
		/* --insn's child under callgrind: one measurement, no table */
		if (!strcmp(o->only, "bare"))
			run_bare(o, &src, &dst, &r);
		else
			run_path(o, &src, &dst, &r);
		goto out;
	}

	/* raw TCP: the same bytes */
	tcp_s = chanbench_tcp_pump(src.bytes);
	memset(&rows[0], 0, sizeof(rows[0]));
	rows[0] = (struct row){ .name = "raw TCP", .secs = tcp_s,
				.mbs = (double)src.bytes / tcp_s / 1e6, .wire = src.bytes,
				.send_cpu = -1, .recv_cpu = -1, .send_insn = -1, .recv_insn = -1 };
	run_bare(o, &src, &dst, &r);
	fill_row(&rows[1], "bare pipeline", &r, src.npages);
	run_path(o, &src, &dst, &r);
	fill_row(&rows[2], "page path", &r, src.npages);
	insn = rows[2].send_insn >= 0;
	if (o->insn) {
		insn_mib = o->mib < INSN_MIB ? o->mib : INSN_MIB;
		insn_count(o, insn_mib, "bare", &rows[1].send_insn, &rows[1].recv_insn);
		insn_count(o, insn_mib, "path", &rows[2].send_insn, &rows[2].recv_insn);
	}

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
		bench_json_set(set, "bandwidth", json_integer((json_int_t)o->bandwidth));
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
		if (o->cauto) {
			json_t *a = json_object();

			if (!a)
				bench_fatal("out of memory");
			bench_json_set(a, "codec", json_string(autocomp_choice_name(r.ac.cur)));
			bench_json_set(a, "reason", json_string(autocomp_reason_name(r.ac.why)));
			bench_json_set(a, "switches", json_integer(r.ac.switches));
			bench_json_set(a, "decisions", json_integer(r.decisions));
			bench_json_set(j, "auto", a);
		}
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
		if (o->bandwidth)
			fprintf(out, "page path capped at %" PRIu64 " bytes/s (--bandwidth; raw TCP "
				"and the bare pipeline are not)\n", o->bandwidth);
		if (o->cauto)
			fprintf(out, "auto: last codec %s (%s), %u switches in %u decisions\n",
				autocomp_choice_name(r.ac.cur), autocomp_reason_name(r.ac.why),
				r.ac.switches, r.decisions);
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
		if (o->insn)
			fprintf(out, "ins/pg: user-space instructions of each side's loop under callgrind"
				" (valgrind --tool=callgrind --separate-threads=yes --toggle-collect=..."
				" on a %u MiB run of the same mix and codec; the kernel's share not counted)\n",
				insn_mib);
		else if (insn)
			fprintf(out, "ins/pg: user-space instructions of the thread (perf_event_open)\n");
		else
			fprintf(out, "ins/pg: no instruction counter here (perf_event_open refused);"
				" run `perf stat -e instructions -t TID` on the page path's threads"
				" (sender tid %d, receiver tid %d this run), or add --insn (callgrind)\n",
				(int)r.send_tid, (int)r.recv_tid);
	}
out:
	ram_close(&src);
	ram_close(&dst);
}
