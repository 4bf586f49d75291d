/* SPDX-License-Identifier: MIT */
/*
 * test_pcdest.c - the destination side of post-copy (migrate/pcdest.h),
 * without KVM. Guest RAM is a memfd mapped twice, as vm/ maps it: the slot
 * view (what userfaultfd watches and the guest reads) and the alias. The
 * streams are socketpairs with a channel mio on the receiver's end, and
 * the test plays the source on the other: it declares the NEEDED pages,
 * arms the receiver, pushes PAGES on channel 0, answers the PAGE_REQ
 * frames of the fault channel, sends ERROR or broken frames, breaks and
 * resumes the link, and reads PC_DONE, HELLO_ACK and WANT. A "vCPU" is a
 * thread that reads the slot view: on a missing page it blocks in the
 * kernel until the page is placed. The test's agent threads take the
 * FAULT and RESUME streams the way incoming.c does (HELLO, then
 * pc_table_serve).
 *
 * The RAM (kind_of): pages pre-copied and unchanged, holes (zero on both
 * sides, never needed), needed pages (a stale copy here, or none) and
 * needed pages the source has zeroed since. The source's RAM is a memfd of
 * its own, so its WIRE_DIGEST_PAGES digest is computed as source.c does.
 *
 * Checked: placed pages hold the source's bytes (raw, LZ4 and zero pages)
 * and the stale copies are gone; a touched missing page gets one PAGE_REQ,
 * for that page, and its vCPU wakes when it is answered; holes read zero
 * without a request; a late duplicate changes nothing (bytes, counts,
 * digest); PC_DONE comes on channel 0 when the last page is in place, not
 * before, with its figures and the digest's verdict (right, wrong, RAM
 * that differs, none); a broken link loses nothing, and a RESUME gets WANT
 * frames naming exactly the missing pages (in slices, WANT_LAST on the
 * last), a new FAULT stream the requests still outstanding; ERROR from the
 * source ends the receiver with -ECANCELED; PAGES outside RAM, a NEEDED
 * after the switchover and a bad CRC end their stream and lose nothing.
 * The last four tests hold the receiver to its contract where it breaks
 * it today: streams replacing half-open ones, pcdest_abandon, and the last
 * page arriving while channel 0 is down (see each test's comment).
 *
 * No sleeps as synchronisation: the test waits on frames (each read is
 * bounded by the channel's timeout), on joins with a deadline, and on
 * pcdest_get_stats re-read until a deadline that fails the test.
 * SKIPPED (exit 77), with the reason, where userfaultfd cannot be used.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "migrate/digest.h"
#include "migrate/mio.h"
#include "migrate/pcdest.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/wire.h"

#define PAGE WIRE_PAGE_SIZE
#define SMALL 256u			/* pages of most tests' RAM */
#define TAIL 128u			/* a big RAM holds pages in its first SMALL and last TAIL */
#define BIG (WIRE_MAX_BITMAP + TAIL)	/* two WANT slices */
#define SLICE 128u			/* pages per NEEDED frame */
#define IO_MS 20000			/* any wait of the test: past it, the test fails */
#define SESSION 0x7063756e69740001ull
#define CAPS (WIRE_CAP_POSTCOPY | WIRE_CAP_LZ4)
#define MAX_VCPUS 32
#define STALE 0xee			/* the destination's old copy of a needed page */
#define JUNK 0x77			/* what a late duplicate carries */

enum kind { K_SAME, K_HOLE, K_NEEDED, K_ZEROED };
enum digest_mode { DIGEST_RIGHT, DIGEST_WRONG, DIGEST_NONE };

struct opts {
	uint64_t npages;
	enum digest_mode digest;
	bool ram_differs;	/* one pre-copied page here differs from the source's */
	bool nothing_needed;	/* no NEEDED frame at all */
};

struct world;

/* A vCPU: reads len bytes of the slot view, blocking on missing pages. */
struct vcpu {
	const uint8_t *from;
	size_t len;
	uint8_t *seen;
	_Atomic size_t at;	/* the page it reads */
	_Atomic int tid;
	atomic_bool done;
	pthread_t th;
	bool running;		/* started, not joined */
};

/* One connection: the test's end (the source) and the receiver's, served by a thread. */
struct link {
	struct world *w;
	const char *name;
	struct channel *src;
	struct mio dst;
	bool dst_open;
	pthread_t th;
	bool running;
	atomic_bool ended;
	int ret;		/* pcdest_run's or pc_table_serve's */
	char err[512];
};

struct world {
	uint64_t npages, bytes, words;
	int fd, src_fd;
	uint8_t *slot, *alias, *src;
	struct pc_table *t;
	struct pcdest *pd;
	uint64_t *needed;	/* what NEEDED said */
	uint64_t *sent;		/* needed pages the test sent with the source's bytes */
	uint64_t nneeded;
	struct codec_ctx *lz4;
	unsigned lz4_pages;	/* pages pushed as LZ4 */
	uint8_t *buf;		/* the main thread's frames, both ways */
	uint64_t t0_ns;		/* armed */
	struct link ch0, fault, res, fault2;
	struct vcpu v[MAX_VCPUS];
	unsigned nv;
};

/* ---- the RAM ------------------------------------------------------------------ */

static bool bit(const uint64_t *bm, uint64_t p)
{
	return bm[p / 64] >> (p % 64) & 1;
}

static void set_bit(uint64_t *bm, uint64_t p)
{
	bm[p / 64] |= 1ull << (p % 64);
}

static enum kind kind_of(const struct world *w, uint64_t p)
{
	if (p >= SMALL && p < w->npages - TAIL)
		return K_HOLE;	/* the middle of a big RAM */
	switch (p % 8) {
	case 0:
	case 1:
	case 2:
		return K_SAME;
	case 6:
		return K_ZEROED;
	case 7:
		return K_HOLE;
	default:
		return K_NEEDED;
	}
}

/* The next page that may hold anything (a big RAM's middle is skipped). */
static uint64_t next_page(const struct world *w, uint64_t p)
{
	if (p + 1 == SMALL && w->npages > 2 * SMALL)
		return w->npages - TAIL;
	return p + 1;
}

/* The source's bytes of page p: every fourth page compresses (it goes as LZ4). */
static void src_page(uint8_t *pg, uint64_t p)
{
	uint64_t x = p * 0x9e3779b97f4a7c15ull + 1;

	if (p % 4 == 0) {
		memset(pg, (int)(0x41 + p % 26), PAGE);
	} else {
		for (size_t i = 0; i < PAGE; i += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(pg + i, &x, 8);
		}
	}
	memcpy(pg, &p, sizeof(p));
}

/* The first page of kind k at or after from (it must exist). */
static uint64_t page_of(const struct world *w, enum kind k, uint64_t from)
{
	for (uint64_t p = from; p < w->npages; p = next_page(w, p))
		if (kind_of(w, p) == k)
			return p;
	fail_msg("no page of kind %d from %" PRIu64, k, from);
	return 0;
}

/* The needed pages not sent yet, in order. Return: how many. */
static size_t todo(const struct world *w, uint64_t *out)
{
	size_t n = 0;

	for (uint64_t p = 0; p < w->npages; p = next_page(w, p))
		if (bit(w->needed, p) && !bit(w->sent, p))
			out[n++] = p;
	return n;
}

/* ---- threads ------------------------------------------------------------------- */

static int join_within(pthread_t th, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_timedjoin_np(th, NULL, &ts);
}

static void *vcpu_main(void *arg)
{
	struct vcpu *v = arg;

	atomic_store(&v->tid, gettid());
	for (size_t i = 0; i < v->len; i += PAGE) {
		atomic_store(&v->at, i / PAGE);
		memcpy(v->seen + i, v->from + i, PAGE);	/* blocks in the kernel on a missing page */
	}
	atomic_store(&v->done, true);
	return NULL;
}

/* A vCPU reading pages [first, first + n) of the slot view. */
static struct vcpu *vcpu_read(struct world *w, uint64_t first, uint64_t n)
{
	struct vcpu *v;

	assert_true(w->nv < MAX_VCPUS);
	v = &w->v[w->nv++];
	v->from = w->slot + first * PAGE;
	v->len = n * PAGE;
	v->seen = malloc(v->len);
	assert_non_null(v->seen);
	atomic_init(&v->done, false);
	assert_int_equal(pthread_create(&v->th, NULL, vcpu_main, v), 0);
	v->running = true;
	return v;
}

static void vcpu_join(struct vcpu *v)
{
	int ret = join_within(v->th, IO_MS);

	if (ret) {
		char path[64], line[256];
		FILE *f;

		print_error("a vCPU still waits for its page (%zu of %zu) after %d ms\n",
			    atomic_load(&v->at), v->len / PAGE, IO_MS);
		snprintf(path, sizeof(path), "/proc/self/task/%d/stack", atomic_load(&v->tid));
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			print_error("  %s", line);
		if (f)
			fclose(f);
	}
	assert_int_equal(ret, 0);
	v->running = false;
}

/* What the guest sees at page p (a vCPU reads it) must be want. */
static void expect_page(struct world *w, uint64_t p, const uint8_t *want)
{
	struct vcpu *v = vcpu_read(w, p, 1);

	vcpu_join(v);
	if (memcmp(v->seen, want, PAGE))
		fail_msg("page %" PRIu64 " does not hold what it should (first byte 0x%02x)", p,
			 v->seen[8]);
}

static void expect_zero_page(struct world *w, uint64_t p)
{
	static const uint8_t zero[PAGE];

	expect_page(w, p, zero);
}

/*
 * At the end, with every stream gone: the receiver is destroyed (the
 * memfd keeps what it placed), then every page the guest sees is the
 * source's (a big RAM: its first and last pages). Not before: the fault
 * thread unregisters the slot view once the last page is in place, and a
 * fault that races with UFFDIO_UNREGISTER can miss its wake (the kernel
 * wakes the waiters before it clears the range), so a read of a hole then
 * would wait for pcdest_destroy anyway.
 */
static void expect_ram(struct world *w)
{
	uint64_t first[2] = { 0, w->npages - TAIL }, n[2] = { SMALL, TAIL };
	unsigned parts = w->npages > 2 * SMALL ? 2 : 1;

	pcdest_destroy(w->pd);
	w->pd = NULL;
	if (parts == 1)
		n[0] = w->npages;
	for (unsigned i = 0; i < parts; i++) {
		struct vcpu *v = vcpu_read(w, first[i], n[i]);

		vcpu_join(v);
		for (uint64_t p = 0; p < n[i]; p++)
			if (memcmp(v->seen + p * PAGE, w->src + (first[i] + p) * PAGE, PAGE))
				fail_msg("page %" PRIu64 " (kind %d) differs from the source's",
					 first[i] + p, kind_of(w, first[i] + p));
	}
}

static void *owner_main(void *arg)
{
	struct link *l = arg;

	l->ret = pcdest_run(l->w->pd, &l->dst, &l->dst, l->err, sizeof(l->err));
	atomic_store(&l->ended, true);
	return NULL;
}

/* An agent's connection thread: the HELLO of a FAULT or RESUME stream, then pc_table_serve. */
static void *agent_main(void *arg)
{
	struct link *l = arg;
	uint8_t *buf = malloc(MIO_FRAME_BUF);
	struct wire_hello hello;
	struct frame_hdr h;
	int ret = buf ? mio_wait_readable(&l->dst, IO_MS) : -ENOMEM;

	if (ret == 0)
		ret = -ETIMEDOUT;
	if (ret > 0)
		ret = mio_read_frame(&l->dst, buf, MIO_FRAME_BUF, &h, l->err, sizeof(l->err));
	if (!ret && h.type != WIRE_F_HELLO)
		ret = -EPROTO;
	if (!ret)
		ret = frame_get_hello(buf + WIRE_HDR_BYTES, h.len, &hello, l->err, sizeof(l->err));
	if (!ret && !(hello.flags & (WIRE_HELLO_FAULT | WIRE_HELLO_RESUME)))
		ret = -EPROTO;
	if (!ret)
		ret = pc_table_serve(l->w->t, &hello, &l->dst, &l->dst, l->err, sizeof(l->err));
	free(buf);
	l->ret = ret;
	atomic_store(&l->ended, true);
	return NULL;
}

/* ---- links --------------------------------------------------------------------- */

static void link_open(struct world *w, struct link *l, const char *name)
{
	struct channel *dch;
	int sv[2];

	l->w = w;
	l->name = name;
	l->err[0] = '\0';
	l->ret = 0;
	atomic_init(&l->ended, false);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(channel_open(&channel_unix_ops, sv[0], NULL, IO_MS, &l->src), 0);
	assert_int_equal(channel_open(&channel_unix_ops, sv[1], NULL, IO_MS, &dch), 0);
	mio_channel_open(&l->dst, dch);
	l->dst_open = true;
}

static void link_start(struct link *l, void *(*fn)(void *))
{
	assert_int_equal(pthread_create(&l->th, NULL, fn, l), 0);
	l->running = true;
}

/* Wait for the receiver's side to end (a deadline fails), close it. Return: its result. */
static int link_join(struct link *l)
{
	int ret = join_within(l->th, IO_MS);

	if (ret)
		print_error("%s: the receiver still serves it after %d ms\n", l->name, IO_MS);
	assert_int_equal(ret, 0);
	l->running = false;
	mio_close(&l->dst);
	l->dst_open = false;
	return l->ret;
}

/* The source's end goes away (a broken link). */
static void link_cut(struct link *l)
{
	channel_close(l->src);
	l->src = NULL;
}

static void src_send(struct link *l, const uint8_t *frame, size_t len)
{
	char err[256] = "";
	int ret = channel_write(l->src, frame, len, err, sizeof(err));

	if (!ret)
		ret = channel_flush(l->src, err, sizeof(err));
	if (ret)
		print_error("%s: %s\n", l->name, err);
	assert_int_equal(ret, 0);
}

/* The next frame from the receiver (the channel's timeout bounds the wait). */
static const uint8_t *src_read(struct link *l, struct frame_hdr *h)
{
	char err[256] = "";
	ssize_t n = channel_read_frame(l->src, l->w->buf, MIO_FRAME_BUF, h, err, sizeof(err));

	if (n < 0)
		print_error("%s: no frame from the receiver: %s\n", l->name, err);
	assert_true(n > 0);
	return l->w->buf + WIRE_HDR_BYTES;
}

/* The stream ends at the source after its last frame: the receiver's end follows, silent. */
static int src_finish(struct link *l)
{
	struct frame_hdr h;
	char err[256] = "";
	ssize_t n;
	int ret;

	assert_int_equal(channel_shutdown(l->src, SHUT_WR), 0);
	ret = link_join(l);
	n = channel_read_frame(l->src, l->w->buf, MIO_FRAME_BUF, &h, err, sizeof(err));
	if (n > 0)
		print_error("%s: a %s frame after the end\n", l->name, frame_type_name(h.type));
	assert_int_equal(n, -ENODATA);
	link_cut(l);
	return ret;
}

/* The HELLO of a FAULT or RESUME stream, and the receiver's HELLO_ACK. */
static void src_hello(struct world *w, struct link *l, uint16_t flags)
{
	struct wire_hello h = {
		.version = WIRE_VERSION, .flags = flags, .caps = CAPS, .page_size = PAGE,
		.mem_bytes = w->bytes, .vcpus = 1, .channel = 0, .channels = 1,
		.session = SESSION,
	};
	struct wire_hello_ack a;
	struct frame_hdr fh;
	const uint8_t *p;
	char err[256] = "";
	ssize_t n;

	snprintf(h.name, sizeof(h.name), "pcunit");
	snprintf(h.guest, sizeof(h.guest), "none");
	n = frame_put_hello(w->buf, MIO_FRAME_BUF, &h);
	assert_true(n > 0);
	src_send(l, w->buf, (size_t)n);
	p = src_read(l, &fh);
	assert_int_equal(fh.type, WIRE_F_HELLO_ACK);
	assert_int_equal(frame_get_hello_ack(p, fh.len, &a, err, sizeof(err)), 0);
	assert_int_equal(a.caps, CAPS);
}

static void fault_open(struct world *w, struct link *l, const char *name)
{
	link_open(w, l, name);
	link_start(l, agent_main);
	src_hello(w, l, WIRE_HELLO_FAULT);
}

/*
 * The WANT frames after HELLO(RESUME): contiguous slices from page 0 to
 * the end, WANT_LAST on the last only, their bits exactly the needed pages
 * not sent. Return: how many frames.
 */
static unsigned expect_want(struct world *w, struct link *l)
{
	uint64_t next = 0, *got = calloc(w->words, sizeof(uint64_t));
	unsigned frames = 0;
	bool last = false;

	assert_non_null(got);
	while (!last) {
		struct wire_bitmap b;
		struct frame_hdr h;
		const uint8_t *p = src_read(l, &h);
		char err[256] = "";

		assert_int_equal(h.type, WIRE_F_WANT);
		if (frame_get_bitmap(p, h.len, WIRE_F_WANT, w->npages, &b, err, sizeof(err)))
			fail_msg("WANT: %s", err);
		assert_int_equal(b.first, next);
		for (uint32_t i = 0; i < (b.count + 63) / 64; i++)
			got[b.first / 64 + i] = wire_bitmap_word(&b, i);
		next += b.count;
		last = b.flags & WIRE_WANT_LAST;
		if (!last)
			assert_true(next < w->npages);
		frames++;
	}
	assert_int_equal(next, w->npages);
	for (uint64_t i = 0; i < w->words; i++)
		if (got[i] != (w->needed[i] & ~w->sent[i]))
			fail_msg("WANT pages %" PRIu64 "..+63: 0x%016" PRIx64 ", missing 0x%016" PRIx64,
				 i * 64, got[i], w->needed[i] & ~w->sent[i]);
	free(got);
	return frames;
}

/* A RESUME stream; nothing arrives on it before its WANT frames. Return: how many. */
static unsigned resume_open(struct world *w, struct link *l)
{
	link_open(w, l, "the resumed channel 0");
	link_start(l, agent_main);
	src_hello(w, l, WIRE_HELLO_RESUME);
	return expect_want(w, l);
}

static uint64_t expect_page_req(struct world *w, struct link *l)
{
	struct wire_page_req q;
	struct frame_hdr h;
	const uint8_t *p = src_read(l, &h);
	char err[256] = "";

	if (h.type != WIRE_F_PAGE_REQ)
		fail_msg("%s: %s instead of PAGE_REQ", l->name, frame_type_name(h.type));
	assert_int_equal(frame_get_page_req(p, h.len, w->npages, &q, err, sizeof(err)), 0);
	assert_int_equal(q.count, 1);
	return q.page;
}

static void expect_pc_done(struct link *l, struct wire_pc_done *d)
{
	struct frame_hdr h;
	const uint8_t *p = src_read(l, &h);
	char err[256] = "";

	if (h.type != WIRE_F_PC_DONE)
		fail_msg("%s: %s instead of PC_DONE", l->name, frame_type_name(h.type));
	assert_int_equal(frame_get_pc_done(p, h.len, d, err, sizeof(err)), 0);
}

/* ---- pages out ----------------------------------------------------------------- */

struct ent {
	uint64_t page;
	bool junk;	/* JUNK bytes instead of the source's */
};

/* PAGES frames of these entries: zero pages as ZERO, what compresses as LZ4, the rest raw. */
static void push_ents(struct world *w, struct link *l, const struct ent *e, size_t n)
{
	struct page_batch b;
	size_t len;

	batch_begin(&b, w->buf, MIO_FRAME_BUF, 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t p = e[i].page;
		const uint8_t *s = p < w->npages ? w->src + p * PAGE : NULL;
		uint8_t *d = batch_reserve(&b, PAGE);
		ssize_t z;

		if (!d) {
			len = batch_finish(&b);
			src_send(l, w->buf, len);
			batch_begin(&b, w->buf, MIO_FRAME_BUF, 0);
			d = batch_reserve(&b, PAGE);
			assert_non_null(d);
		}
		if (e[i].junk || !s) {
			memset(d, JUNK, PAGE);
			batch_commit(&b, p, CODEC_RAW, PAGE);
			continue;
		}
		if (codec_is_zero_page(s, PAGE)) {
			batch_commit(&b, p, CODEC_ZERO, 0);
		} else if ((z = codec_encode(w->lz4, s, PAGE, d, PAGE)) > 0) {
			batch_commit(&b, p, CODEC_LZ4, (size_t)z);
			w->lz4_pages++;
		} else {
			memcpy(d, s, PAGE);
			batch_commit(&b, p, CODEC_RAW, PAGE);
		}
		if (bit(w->needed, p))
			set_bit(w->sent, p);
	}
	len = batch_finish(&b);
	if (len)
		src_send(l, w->buf, len);
}

static void push(struct world *w, struct link *l, const uint64_t *pages, size_t n, bool junk)
{
	struct ent *e = calloc(n ? n : 1, sizeof(*e));

	assert_non_null(e);
	for (size_t i = 0; i < n; i++)
		e[i] = (struct ent){ .page = pages[i], .junk = junk };
	push_ents(w, l, e, n);
	free(e);
}

static void push_rest(struct world *w, struct link *l)
{
	uint64_t *pages = calloc(w->nneeded ? w->nneeded : 1, sizeof(uint64_t));

	assert_non_null(pages);
	push(w, l, pages, todo(w, pages), false);
	free(pages);
}

/* ---- the receiver's figures ---------------------------------------------------- */

enum cond { PLACED, LINK_DOWN, LINK_UP, RECONNECTS, DONE_OR_OWNER_ENDED, PLACED_OR_OWNER_ENDED };

static bool cond_met(struct world *w, enum cond c, uint64_t v, const struct pcdest_stats *st)
{
	switch (c) {
	case PLACED:
		/* place() counts a page placed, then no longer missing: both must show it */
		return st->pages_placed >= v && st->pages_missing <= w->nneeded - v;
	case LINK_DOWN:
		return !st->link_up;
	case LINK_UP:
		return st->link_up;
	case RECONNECTS:
		return st->reconnects >= v;
	case DONE_OR_OWNER_ENDED:
		return st->done || atomic_load(&w->ch0.ended);
	case PLACED_OR_OWNER_ENDED:
		return cond_met(w, PLACED, v, st) || atomic_load(&w->ch0.ended);
	}
	return false;
}

/* Re-read the figures until c holds; past IO_MS the test fails. */
static void wait_stats(struct world *w, enum cond c, uint64_t v, struct pcdest_stats *st)
{
	uint64_t end = clock_now_ms() + IO_MS;

	for (;;) {
		pcdest_get_stats(w->pd, st);
		if (cond_met(w, c, v, st))
			return;
		if (clock_now_ms() >= end)
			fail_msg("condition %d (%" PRIu64 ") still false after %d ms: %" PRIu64
				 " placed, %" PRIu64 " missing, link %s", c, v, IO_MS,
				 st->pages_placed, st->pages_missing, st->link_up ? "up" : "down");
		(void)poll(NULL, 0, 1);	/* the re-read interval */
	}
}

/* ---- a receiver, armed --------------------------------------------------------- */

static void send_needed(struct world *w)
{
	for (uint64_t first = 0; first < w->npages; first += SLICE) {
		uint32_t n = (uint32_t)MIN((uint64_t)SLICE, w->npages - first);
		struct wire_bitmap b;
		struct frame_hdr h;
		char err[256] = "";
		bool any = false;
		ssize_t len;

		for (uint32_t i = 0; i < (n + 63) / 64; i++)
			any |= w->needed[first / 64 + i] != 0;
		if (!any)
			continue;
		/* the frame as the source writes it, checked as incoming.c checks it */
		len = frame_put_bitmap(w->buf, MIO_FRAME_BUF, WIRE_F_NEEDED, first, n, 0,
				       w->needed + first / 64);
		assert_true(len > 0);
		assert_int_equal(frame_check_header(w->buf, (size_t)len, &h, err, sizeof(err)), 0);
		assert_int_equal(frame_check_crc(w->buf, (size_t)len, err, sizeof(err)), 0);
		assert_int_equal(frame_get_bitmap(w->buf + WIRE_HDR_BYTES, h.len, WIRE_F_NEEDED,
						  w->npages, &b, err, sizeof(err)), 0);
		assert_int_equal(pcdest_needed(w->pd, &b), 0);
	}
}

/* RAM on both sides, a receiver armed at COMPLETE, channel 0 served by its owner. */
static void world_start(struct world *w, const struct opts *o)
{
	uint8_t digest[RAM_DIGEST_BYTES];
	struct codec_config lz4 = { .ops = &codec_lz4_ops, .level = 1 };
	struct pcdest_stats st;
	char err[256] = "";
	int ret;

	w->npages = o->npages;
	w->bytes = o->npages * PAGE;
	w->words = (o->npages + 63) / 64;
	w->fd = memfd_create("test_pcdest", MFD_CLOEXEC);
	w->src_fd = memfd_create("test_pcdest-source", MFD_CLOEXEC);
	assert_true(w->fd >= 0 && w->src_fd >= 0);
	assert_int_equal(ftruncate(w->fd, (off_t)w->bytes), 0);
	assert_int_equal(ftruncate(w->src_fd, (off_t)w->bytes), 0);
	w->slot = mmap(NULL, w->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
	w->alias = mmap(NULL, w->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
	w->src = mmap(NULL, w->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, w->src_fd, 0);
	assert_true(w->slot != MAP_FAILED && w->alias != MAP_FAILED && w->src != MAP_FAILED);
	w->needed = calloc(w->words, sizeof(uint64_t));
	w->sent = calloc(w->words, sizeof(uint64_t));
	w->buf = malloc(MIO_FRAME_BUF);
	assert_true(w->needed && w->sent && w->buf);
	assert_int_equal(codec_ctx_create(&lz4, PAGE, &w->lz4), 0);

	/* what pre-copy left: the stale copies are what the source dirtied since */
	for (uint64_t p = 0; p < w->npages; p = next_page(w, p)) {
		enum kind k = kind_of(w, p);

		if (k == K_SAME || k == K_NEEDED)
			src_page(w->src + p * PAGE, p);
		if (k == K_SAME || (k == K_NEEDED && o->nothing_needed))
			memcpy(w->alias + p * PAGE, w->src + p * PAGE, PAGE);
		if (o->nothing_needed)
			continue;	/* pre-copy sent everything as it is */
		if (k == K_ZEROED || (k == K_NEEDED && p / 8 % 2 == 0))
			memset(w->alias + p * PAGE, STALE, PAGE);
		if (k == K_NEEDED || k == K_ZEROED) {
			set_bit(w->needed, p);
			w->nneeded++;
		}
	}
	if (o->ram_differs)
		w->alias[page_of(w, K_SAME, 8) * PAGE + 100] ^= 1;

	assert_int_equal(pc_table_create(&w->t), 0);
	ret = pcdest_create(w->t, SESSION, CAPS, w->fd, w->slot, w->alias, w->bytes, &w->pd, err,
			    sizeof(err));
	if (ret)
		fail_msg("pcdest_create: %s", err);
	send_needed(w);

	/* the source's digest of its paused RAM, as source.c computes it */
	assert_int_equal(ram_digest_pages(w->src_fd, w->src, w->bytes, NULL, digest), 0);
	if (o->digest == DIGEST_WRONG)
		digest[5] ^= 0x10;
	ret = pcdest_arm(w->pd, o->digest == DIGEST_NONE ? WIRE_DIGEST_NONE : WIRE_DIGEST_PAGES,
			 digest, err, sizeof(err));
	if (ret)
		fail_msg("pcdest_arm: %s", err);
	w->t0_ns = clock_now_ns();

	/* the stale copies are gone from the memfd, the rest is still there */
	for (uint64_t p = 0; p < w->npages; p = next_page(w, p)) {
		off_t at = (off_t)(p * PAGE);

		if (bit(w->needed, p) && lseek(w->fd, at, SEEK_HOLE) != at)
			fail_msg("needed page %" PRIu64 " was not dropped at arm", p);
		if (kind_of(w, p) == K_SAME && lseek(w->fd, at, SEEK_DATA) != at)
			fail_msg("pre-copied page %" PRIu64 " was dropped at arm", p);
	}
	pcdest_get_stats(w->pd, &st);
	assert_int_equal(st.pages_missing, w->nneeded);
	assert_int_equal(st.pages_placed, 0);
	assert_false(st.link_up);

	link_open(w, &w->ch0, "channel 0");
	link_start(&w->ch0, owner_main);
	wait_stats(w, LINK_UP, 0, &st);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (!w)
		return -1;
	w->fd = w->src_fd = -1;
	*state = w;
	return 0;
}

/* Whatever a test left: the source goes, the receiver is abandoned, then destroyed. */
static int teardown(void **state)
{
	struct world *w = *state;
	struct link *links[] = { &w->ch0, &w->fault, &w->res, &w->fault2 };

	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (links[i]->src)
			link_cut(links[i]);
	if (w->pd)
		pcdest_abandon(w->pd);
	for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
		if (links[i]->running)
			pthread_join(links[i]->th, NULL);
		if (links[i]->dst_open)
			mio_close(&links[i]->dst);
	}
	pcdest_destroy(w->pd);	/* wakes a vCPU still waiting */
	for (unsigned i = 0; i < w->nv; i++) {
		if (w->v[i].running)
			pthread_join(w->v[i].th, NULL);
		free(w->v[i].seen);
	}
	pc_table_destroy(w->t);
	codec_ctx_destroy(w->lz4);
	if (w->slot && w->slot != MAP_FAILED)
		munmap(w->slot, w->bytes);
	if (w->alias && w->alias != MAP_FAILED)
		munmap(w->alias, w->bytes);
	if (w->src && w->src != MAP_FAILED)
		munmap(w->src, w->bytes);
	if (w->fd >= 0)
		close(w->fd);
	if (w->src_fd >= 0)
		close(w->src_fd);
	free(w->needed);
	free(w->sent);
	free(w->buf);
	free(w);
	return 0;
}

static uint64_t elapsed_us(const struct world *w)
{
	return (clock_now_ns() - w->t0_ns) / 1000;
}

/* ---- the tests ------------------------------------------------------------------ */

/* The background push alone: the pages hold the source's bytes, PC_DONE after the last one. */
static void test_pcdest_push_places_source_bytes(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL];
	struct pcdest_stats st;
	struct wire_pc_done d;
	size_t n;

	world_start(w, &o);
	n = todo(w, pages);
	assert_int_equal(n, w->nneeded);
	assert_true(n > 2);
	push(w, &w->ch0, pages, n / 2, false);
	push(w, &w->ch0, pages + n / 2, n - n / 2 - 1, false);
	wait_stats(w, PLACED, n - 1, &st);
	assert_int_equal(st.pages_placed, n - 1);
	assert_int_equal(st.pages_missing, 1);
	assert_false(st.done);
	/* one page is missing: no PC_DONE yet */
	assert_int_equal(channel_wait(w->ch0.src, 0), 0);

	push(w, &w->ch0, pages + n - 1, 1, false);
	expect_pc_done(&w->ch0, &d);
	assert_int_equal(d.pages, n);
	assert_int_equal(d.requests, 0);
	assert_int_equal(d.blocked_us, 0);
	assert_int_equal(d.digest_ok, 1);
	assert_true(w->lz4_pages > 0);
	pcdest_get_stats(w->pd, &st);
	assert_true(st.done);
	assert_int_equal(st.pages_missing, 0);
	assert_int_equal(st.pages_placed, n);
	assert_int_equal(st.faults, 0);
	assert_int_equal(st.requests, 0);
	/* the source closes after PC_DONE: pcdest_run returns 0, having sent nothing more */
	assert_int_equal(src_finish(&w->ch0), 0);
	expect_ram(w);
}

/* A vCPU on a missing page: one PAGE_REQ for exactly that page; the answer wakes it. */
static void test_pcdest_fault_asks_for_that_page(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t p, z, got;
	struct pcdest_stats st;
	struct wire_pc_done d;
	struct vcpu *v;
	uint64_t us;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	p = page_of(w, K_NEEDED, 1);
	v = vcpu_read(w, p, 1);
	got = expect_page_req(w, &w->fault);
	assert_int_equal(got, p);
	assert_false(atomic_load(&v->done));	/* nobody placed it yet */
	pcdest_get_stats(w->pd, &st);
	assert_int_equal(st.requests, 1);
	assert_true(st.faults >= 1);
	push(w, &w->fault, &p, 1, false);
	vcpu_join(v);
	assert_memory_equal(v->seen, w->src + p * PAGE, PAGE);

	/* a page the source zeroed: the stale copy here must not show */
	z = page_of(w, K_ZEROED, 0);
	v = vcpu_read(w, z, 1);
	got = expect_page_req(w, &w->fault);
	assert_int_equal(got, z);
	assert_false(atomic_load(&v->done));
	push(w, &w->fault, &z, 1, false);
	vcpu_join(v);
	assert_memory_equal(v->seen, w->src + z * PAGE, PAGE);
	assert_int_equal(v->seen[100], 0);

	push_rest(w, &w->ch0);
	expect_pc_done(&w->ch0, &d);
	us = elapsed_us(w);
	assert_int_equal(d.pages, w->nneeded);
	assert_int_equal(d.requests, 2);
	assert_true(d.blocked_us > 0 && d.blocked_us <= 2 * us);
	assert_true(d.p50_us <= d.p99_us && d.p99_us <= us);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(src_finish(&w->fault), 0);
	assert_int_equal(src_finish(&w->ch0), 0);
	expect_ram(w);
}

/* Holes (never needed, zero) read zero without a request; pre-copied pages read as they are. */
static void test_pcdest_holes_read_zero_without_request(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t h1, p, got;
	struct pcdest_stats st;
	struct wire_pc_done d;
	struct vcpu *v;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	h1 = page_of(w, K_HOLE, 0);
	expect_zero_page(w, h1);
	expect_zero_page(w, page_of(w, K_HOLE, h1 + 1));
	expect_page(w, page_of(w, K_SAME, 0), w->src + page_of(w, K_SAME, 0) * PAGE);
	pcdest_get_stats(w->pd, &st);
	assert_int_equal(st.requests, 0);
	assert_int_equal(st.faults, 0);
	assert_int_equal(st.pages_placed, 0);

	/* the first request to come is for the needed page, none for the holes */
	p = page_of(w, K_NEEDED, 9);	/* never sent before: no stale copy */
	v = vcpu_read(w, p, 1);
	got = expect_page_req(w, &w->fault);
	assert_int_equal(got, p);
	assert_false(atomic_load(&v->done));
	/* the background push brings it: that wakes the vCPU as well */
	push_rest(w, &w->ch0);
	vcpu_join(v);
	assert_memory_equal(v->seen, w->src + p * PAGE, PAGE);
	expect_pc_done(&w->ch0, &d);
	assert_int_equal(d.requests, 1);
	assert_int_equal(d.pages, w->nneeded);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(src_finish(&w->fault), 0);
	assert_int_equal(src_finish(&w->ch0), 0);
	expect_ram(w);
}

/* Late duplicates (an answered page pushed again, pages never needed) change nothing. */
static void test_pcdest_duplicate_does_not_overwrite(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t p, q, r, s, h;
	struct pcdest_stats st;
	struct wire_pc_done d;
	struct vcpu *v;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	p = page_of(w, K_NEEDED, 0);
	q = page_of(w, K_NEEDED, p + 1);
	r = page_of(w, K_NEEDED, q + 1);
	s = page_of(w, K_SAME, 0);
	h = page_of(w, K_HOLE, 0);
	v = vcpu_read(w, p, 1);
	assert_int_equal(expect_page_req(w, &w->fault), p);
	push(w, &w->fault, &p, 1, false);
	vcpu_join(v);

	/* on channel 0: p again, a pre-copied page and a hole, with junk; then q to see them read */
	{
		const struct ent e[] = {
			{ .page = p, .junk = true }, { .page = s, .junk = true },
			{ .page = h, .junk = true }, { .page = q },
		};

		push_ents(w, &w->ch0, e, ARRAY_SIZE(e));
	}
	wait_stats(w, PLACED, 2, &st);
	assert_int_equal(st.pages_placed, 2);
	/* on the fault channel: q again with junk, then r */
	{
		const struct ent e[] = { { .page = q, .junk = true }, { .page = r } };

		push_ents(w, &w->fault, e, ARRAY_SIZE(e));
	}
	wait_stats(w, PLACED, 3, &st);
	assert_int_equal(st.pages_placed, 3);
	assert_int_equal(st.pages_missing, w->nneeded - 3);
	expect_page(w, p, w->src + p * PAGE);
	expect_page(w, q, w->src + q * PAGE);
	expect_page(w, r, w->src + r * PAGE);
	expect_page(w, s, w->src + s * PAGE);
	expect_zero_page(w, h);

	push_rest(w, &w->ch0);
	expect_pc_done(&w->ch0, &d);
	assert_int_equal(d.pages, w->nneeded);	/* the duplicates are not counted */
	assert_int_equal(d.requests, 1);
	assert_int_equal(d.digest_ok, 1);	/* nor folded into the digest */
	assert_int_equal(src_finish(&w->fault), 0);
	assert_int_equal(src_finish(&w->ch0), 0);
	expect_ram(w);
}

/* Every page pushed; PC_DONE's digest verdict for o. */
static uint8_t digest_verdict(struct world *w, const struct opts *o)
{
	struct wire_pc_done d;

	world_start(w, o);
	push_rest(w, &w->ch0);
	expect_pc_done(&w->ch0, &d);
	assert_int_equal(d.pages, w->nneeded);
	assert_int_equal(src_finish(&w->ch0), 0);
	return d.digest_ok;
}

static void test_pcdest_digest_wrong(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL, .digest = DIGEST_WRONG };

	assert_int_equal(digest_verdict(w, &o), 0);
	expect_ram(w);	/* the verdict is reported, nothing else changes */
}

static void test_pcdest_digest_ram_differs(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL, .ram_differs = true };

	assert_int_equal(digest_verdict(w, &o), 0);
}

static void test_pcdest_digest_none(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL, .digest = DIGEST_NONE };

	assert_int_equal(digest_verdict(w, &o), 0);
	expect_ram(w);
}

/* Nothing needed: PC_DONE as soon as channel 0 is served. */
static void test_pcdest_nothing_needed(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL, .nothing_needed = true };
	struct wire_pc_done d;

	world_start(w, &o);
	expect_pc_done(&w->ch0, &d);
	assert_int_equal(d.pages, 0);
	assert_int_equal(d.requests, 0);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(src_finish(&w->ch0), 0);
	expect_ram(w);
}

/*
 * The link breaks (the source's ends close) with pages missing and a vCPU
 * waiting: nothing placed is lost; RESUME gets WANT for exactly the
 * missing pages, a new FAULT stream the outstanding request.
 */
static void test_pcdest_broken_link_resumes(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL], p;
	struct pcdest_stats st;
	struct wire_pc_done d;
	struct vcpu *v;
	size_t n, k;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	n = todo(w, pages);
	k = n / 2;
	push(w, &w->ch0, pages, k, false);
	wait_stats(w, PLACED, k, &st);
	p = pages[k + 3];
	v = vcpu_read(w, p, 1);
	assert_int_equal(expect_page_req(w, &w->fault), p);

	link_cut(&w->ch0);
	link_cut(&w->fault);
	wait_stats(w, LINK_DOWN, 0, &st);
	assert_int_equal(link_join(&w->fault), 0);	/* the receiver lives on */
	assert_non_null(strstr(w->fault.err, "closed"));
	pcdest_get_stats(w->pd, &st);
	assert_int_equal(st.pages_placed, k);
	assert_int_equal(st.pages_missing, n - k);
	assert_false(st.done);
	assert_int_equal(st.reconnects, 0);
	assert_false(atomic_load(&w->ch0.ended));	/* pcdest_run waits for a resume */
	assert_false(atomic_load(&v->done));
	for (size_t i = 0; i < k; i++) {
		off_t at = (off_t)(pages[i] * PAGE);

		/* still in the memfd (the alias reads it without a fault) */
		if (lseek(w->fd, at, SEEK_DATA) != at)
			fail_msg("placed page %" PRIu64 " is gone", pages[i]);
		assert_memory_equal(w->alias + pages[i] * PAGE, w->src + pages[i] * PAGE, PAGE);
	}

	assert_int_equal(resume_open(w, &w->res), 1);
	/* counted once the WANT frames are out, a moment after the last one */
	wait_stats(w, RECONNECTS, 1, &st);
	assert_int_equal(st.reconnects, 1);
	assert_true(st.link_up);
	assert_int_equal(st.link_down_ms, 0);
	fault_open(w, &w->fault2, "the new fault channel");
	assert_int_equal(expect_page_req(w, &w->fault2), p);
	assert_false(atomic_load(&v->done));
	push(w, &w->fault2, &p, 1, false);
	vcpu_join(v);
	assert_memory_equal(v->seen, w->src + p * PAGE, PAGE);

	push_rest(w, &w->res);
	expect_pc_done(&w->res, &d);
	assert_int_equal(d.pages, n);
	assert_int_equal(d.requests, 2);	/* p, on each fault channel */
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(link_join(&w->ch0), 0);	/* pcdest_run: every page is in place */
	assert_int_equal(src_finish(&w->fault2), 0);
	assert_int_equal(src_finish(&w->res), 0);
	expect_ram(w);
}

/* A RAM of more than WIRE_MAX_BITMAP pages: WANT comes in two slices. */
static void test_pcdest_want_in_slices(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = BIG };
	struct pcdest_stats st;
	struct wire_pc_done d;

	world_start(w, &o);
	assert_true(bit(w->needed, 3) && bit(w->needed, BIG - 2));
	link_cut(&w->ch0);
	wait_stats(w, LINK_DOWN, 0, &st);
	assert_int_equal(resume_open(w, &w->res), 2);
	push_rest(w, &w->res);
	expect_pc_done(&w->res, &d);
	assert_int_equal(d.pages, w->nneeded);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(link_join(&w->ch0), 0);
	assert_int_equal(src_finish(&w->res), 0);
	expect_ram(w);
}

/* ERROR on channel 0: the source gave up; pcdest_run says so and what was lost. */
static void test_pcdest_error_cancels(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL];
	struct pcdest_stats st;
	char lost[64];
	size_t n;
	ssize_t len;

	world_start(w, &o);
	n = todo(w, pages);
	push(w, &w->ch0, pages, 10, false);
	wait_stats(w, PLACED, 10, &st);
	len = frame_put_error(w->buf, MIO_FRAME_BUF, 1, "the test source gives up");
	assert_true(len > 0);
	src_send(&w->ch0, w->buf, (size_t)len);
	assert_int_equal(link_join(&w->ch0), -ECANCELED);
	assert_non_null(strstr(w->ch0.err, "the test source gives up"));
	snprintf(lost, sizeof(lost), "%zu pages never arrived", n - 10);
	assert_non_null(strstr(w->ch0.err, lost));
	pcdest_get_stats(w->pd, &st);
	assert_false(st.done);
	assert_int_equal(st.pages_placed, 10);
}

/* ERROR on the fault channel ends the receiver too; destroying it wakes the waiting vCPU. */
static void test_pcdest_error_on_fault_channel(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t p;
	struct vcpu *v;
	ssize_t len;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	p = page_of(w, K_NEEDED, 0);
	v = vcpu_read(w, p, 1);
	assert_int_equal(expect_page_req(w, &w->fault), p);
	len = frame_put_error(w->buf, MIO_FRAME_BUF, 1, "no more pages from the test");
	assert_true(len > 0);
	src_send(&w->fault, w->buf, (size_t)len);
	assert_int_equal(link_join(&w->fault), 0);
	assert_non_null(strstr(w->fault.err, "no more pages from the test"));
	assert_int_equal(link_join(&w->ch0), -ECANCELED);
	assert_non_null(strstr(w->ch0.err, "no more pages from the test"));
	assert_false(atomic_load(&v->done));
	pcdest_destroy(w->pd);
	w->pd = NULL;
	vcpu_join(v);
}

/* Resume after a broken stream, push the rest: everything arrives, digest verified. */
static void resume_and_finish(struct world *w)
{
	struct wire_pc_done d;

	assert_int_equal(resume_open(w, &w->res), 1);
	fault_open(w, &w->fault2, "the new fault channel");
	push_rest(w, &w->res);
	expect_pc_done(&w->res, &d);
	assert_int_equal(d.pages, w->nneeded);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(link_join(&w->ch0), 0);
	assert_int_equal(src_finish(&w->fault2), 0);
	assert_int_equal(src_finish(&w->res), 0);
	expect_ram(w);
}

/* PAGES outside RAM end their stream; the pages before the bad entry stay, nothing is lost. */
static void test_pcdest_pages_outside_ram(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL];
	struct pcdest_stats st;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	assert_true(todo(w, pages) > 2);
	{
		const struct ent e[] = { { .page = pages[0] }, { .page = SMALL, .junk = true } };

		push_ents(w, &w->ch0, e, ARRAY_SIZE(e));
	}
	wait_stats(w, LINK_DOWN, 0, &st);
	wait_stats(w, PLACED, 1, &st);
	{
		const struct ent e[] = { { .page = pages[1] }, { .page = SMALL + 7, .junk = true } };

		push_ents(w, &w->fault, e, ARRAY_SIZE(e));
	}
	assert_int_equal(link_join(&w->fault), 0);
	assert_non_null(strstr(w->fault.err, "outside"));
	pcdest_get_stats(w->pd, &st);
	assert_int_equal(st.pages_placed, 2);
	assert_int_equal(st.pages_missing, w->nneeded - 2);
	assert_false(atomic_load(&w->ch0.ended));
	expect_page(w, pages[0], w->src + pages[0] * PAGE);
	expect_page(w, pages[1], w->src + pages[1] * PAGE);
	resume_and_finish(w);
}

/* A NEEDED frame after the switchover, a PAGES frame with a bad CRC: their streams end. */
static void test_pcdest_bad_needed_and_crc(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL], ones = ~0ull;
	struct pcdest_stats st;
	struct page_batch b;
	ssize_t len;
	size_t n;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	assert_true(todo(w, pages) > 2);
	push(w, &w->ch0, pages, 1, false);
	wait_stats(w, PLACED, 1, &st);
	/* NEEDED is a switchover frame, and this one names pages past the RAM */
	len = frame_put_bitmap(w->buf, MIO_FRAME_BUF, WIRE_F_NEEDED, SMALL, 64, 0, &ones);
	assert_true(len > 0);
	src_send(&w->ch0, w->buf, (size_t)len);
	wait_stats(w, LINK_DOWN, 0, &st);

	/* a page whose frame fails its CRC is not placed */
	batch_begin(&b, w->buf, MIO_FRAME_BUF, 0);
	memcpy(batch_reserve(&b, PAGE), w->src + pages[1] * PAGE, PAGE);
	batch_commit(&b, pages[1], CODEC_RAW, PAGE);
	n = batch_finish(&b);
	w->buf[n - 1] ^= 0x01;
	src_send(&w->fault, w->buf, n);
	assert_int_equal(link_join(&w->fault), 0);
	assert_non_null(strstr(w->fault.err, "checksum"));
	pcdest_get_stats(w->pd, &st);
	assert_int_equal(st.pages_placed, 1);
	assert_int_equal(st.pages_missing, w->nneeded - 1);
	assert_false(atomic_load(&w->ch0.ended));
	resume_and_finish(w);
}

/*
 * RESUME and FAULT streams while the old ones still look alive here (a
 * half-open link): the receiver shuts the old ones down and goes on.
 */
static void test_pcdest_resume_replaces_dead_streams(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL], p;
	struct pcdest_stats st;
	struct wire_pc_done d;
	struct frame_hdr h;
	char err[256];
	struct vcpu *v;
	size_t n, k;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	n = todo(w, pages);
	k = n / 2;
	push(w, &w->ch0, pages, k, false);
	wait_stats(w, PLACED, k, &st);
	p = pages[k + 1];
	v = vcpu_read(w, p, 1);
	assert_int_equal(expect_page_req(w, &w->fault), p);

	assert_int_equal(resume_open(w, &w->res), 1);
	/* the old channel 0 was shut down at the receiver */
	assert_int_equal(channel_read_frame(w->ch0.src, w->buf, MIO_FRAME_BUF, &h, err,
					    sizeof(err)), -ENODATA);
	wait_stats(w, RECONNECTS, 1, &st);
	/* replaced, not given up: pcdest_run still waits for the pages */
	if (atomic_load(&w->ch0.ended))
		fail_msg("pcdest_run ended (%d: %s) when a RESUME replaced channel 0",
			 w->ch0.ret, w->ch0.err);
	fault_open(w, &w->fault2, "the new fault channel");
	assert_int_equal(expect_page_req(w, &w->fault2), p);
	assert_int_equal(channel_read_frame(w->fault.src, w->buf, MIO_FRAME_BUF, &h, err,
					    sizeof(err)), -ENODATA);
	assert_int_equal(link_join(&w->fault), 0);
	push(w, &w->fault2, &p, 1, false);
	vcpu_join(v);
	push_rest(w, &w->res);
	expect_pc_done(&w->res, &d);
	assert_int_equal(d.pages, n);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(link_join(&w->ch0), 0);
	assert_int_equal(src_finish(&w->fault2), 0);
	assert_int_equal(src_finish(&w->res), 0);
	expect_ram(w);
}

/* A FAULT stream while the old one still looks alive: the old one is shut down, nothing else. */
static void test_pcdest_fault_replaces_dead_fault_channel(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL], p;
	struct pcdest_stats st;
	struct wire_pc_done d;
	struct frame_hdr h;
	char err[256];
	struct vcpu *v;
	size_t n;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	n = todo(w, pages);
	p = pages[n - 1];
	v = vcpu_read(w, p, 1);
	assert_int_equal(expect_page_req(w, &w->fault), p);
	fault_open(w, &w->fault2, "the new fault channel");
	assert_int_equal(channel_read_frame(w->fault.src, w->buf, MIO_FRAME_BUF, &h, err,
					    sizeof(err)), -ENODATA);
	assert_int_equal(link_join(&w->fault), 0);
	/* channel 0 goes on */
	push(w, &w->ch0, pages, 1, false);
	wait_stats(w, PLACED_OR_OWNER_ENDED, 1, &st);
	if (atomic_load(&w->ch0.ended))
		fail_msg("pcdest_run ended (%d: %s) when a FAULT stream replaced the old one",
			 w->ch0.ret, w->ch0.err);
	assert_int_equal(expect_page_req(w, &w->fault2), p);
	push(w, &w->fault2, &p, 1, false);
	vcpu_join(v);
	push_rest(w, &w->ch0);
	expect_pc_done(&w->ch0, &d);
	assert_int_equal(d.pages, n);
	assert_int_equal(d.requests, 2);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(src_finish(&w->fault2), 0);
	assert_int_equal(src_finish(&w->ch0), 0);
	expect_ram(w);
}

/* pcdest_abandon (the agent shuts down): pcdest_run returns -ESHUTDOWN. */
static void test_pcdest_abandon_gives_eshutdown(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	pcdest_abandon(w->pd);
	if (link_join(&w->ch0) != -ESHUTDOWN)
		fail_msg("pcdest_run after pcdest_abandon: %d (%s), not -ESHUTDOWN", w->ch0.ret,
			 w->ch0.err);
	assert_non_null(strstr(w->ch0.err, "abandoned"));
	assert_int_equal(link_join(&w->fault), 0);
}

/*
 * Channel 0 breaks, and the last pages arrive on the fault channel: every
 * page is in place with no channel 0 to carry PC_DONE. pcdest_run must
 * not return before a resumed channel 0 got it (its owner destroys the
 * receiver then, and a RESUME would find nobody).
 */
static void test_pcdest_done_while_link_down(void **state)
{
	struct world *w = *state;
	struct opts o = { .npages = SMALL };
	uint64_t pages[SMALL];
	struct pcdest_stats st;
	struct wire_pc_done d;
	size_t n, k;

	world_start(w, &o);
	fault_open(w, &w->fault, "the fault channel");
	n = todo(w, pages);
	k = n / 2;
	push(w, &w->ch0, pages, k, false);
	wait_stats(w, PLACED, k, &st);
	link_cut(&w->ch0);
	wait_stats(w, LINK_DOWN, 0, &st);
	push_rest(w, &w->fault);
	wait_stats(w, DONE_OR_OWNER_ENDED, 0, &st);
	wait_stats(w, PLACED, n, &st);
	assert_true(st.done);
	/*
	 * PC_DONE has not gone out, so pcdest_run must still wait. The owner
	 * would return right after the last page: give it the time to, a
	 * bounded wait that must run out (it cannot fail a correct receiver).
	 */
	if (join_within(w->ch0.th, 300) == 0) {
		w->ch0.running = false;
		fail_msg("pcdest_run returned %d with every page here and PC_DONE never sent (%s)",
			 w->ch0.ret, w->ch0.err);
	}
	assert_int_equal(resume_open(w, &w->res), 1);
	expect_pc_done(&w->res, &d);
	assert_int_equal(d.pages, n);
	assert_int_equal(d.digest_ok, 1);
	assert_int_equal(link_join(&w->ch0), 0);
	assert_int_equal(src_finish(&w->fault), 0);
	assert_int_equal(src_finish(&w->res), 0);
	expect_ram(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_pcdest_push_places_source_bytes),
		T(test_pcdest_fault_asks_for_that_page),
		T(test_pcdest_holes_read_zero_without_request),
		T(test_pcdest_duplicate_does_not_overwrite),
		T(test_pcdest_digest_wrong),
		T(test_pcdest_digest_ram_differs),
		T(test_pcdest_digest_none),
		T(test_pcdest_nothing_needed),
		T(test_pcdest_broken_link_resumes),
		T(test_pcdest_want_in_slices),
		T(test_pcdest_error_cancels),
		T(test_pcdest_error_on_fault_channel),
		T(test_pcdest_pages_outside_ram),
		T(test_pcdest_bad_needed_and_crc),
		T(test_pcdest_resume_replaces_dead_streams),
		T(test_pcdest_fault_replaces_dead_fault_channel),
		T(test_pcdest_abandon_gives_eshutdown),
		T(test_pcdest_done_while_link_down),
#undef T
	};
	char err[256] = "";

	if (pcdest_probe(err, sizeof(err)) < 0) {
		printf("SKIPPED: test_pcdest: post-copy cannot be served here: %s\n", err);
		fprintf(stderr, "SKIPPED: test_pcdest: post-copy cannot be served here: %s\n", err);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
