/* SPDX-License-Identifier: MIT */
/*
 * test_postcopy.c - the source side of post-copy on real KVM, against a
 * destination this test plays by hand (a thread that speaks the frames of
 * protocol/PROTOCOL.md section 5 itself), so that it can misbehave in ways
 * the real destination never does.
 *
 * Good destination: the guest switches (--postcopy=now, or =manual and
 * migrate_postcopy() while a pre-copy that cannot converge is on its
 * rounds), the fake asks for one page with PAGE_REQ on the fault channel,
 * takes the push on channel 0 until every page of NEEDED is in, and sends
 * PC_DONE. Checked: SWITCHOVER carries POSTCOPY, NEEDED comes before the
 * state, every needed page arrives with the bytes of the (paused) source
 * guest, the requested page is answered on the fault channel, and the job
 * completes with the post-copy figures of PC_DONE.
 *
 * Malformed return path after GO (a PAGE_REQ outside RAM, of 0 pages, of
 * 513, on channel 0; another frame on the fault channel; a PC_DONE with a
 * bad field; bytes that are no frame): the source must not trust it, must
 * not run its copy of the guest (the destination runs it), and waits in
 * postcopy-paused with an error that names the fault; a cancel then gives
 * up with a message counting the pages lost.
 *
 * Recovery: the fake breaks both connections after a few pushed frames;
 * the source waits in postcopy-paused until migrate_resume() (or, with
 * --postcopy-reconnect, by itself), reconnects with HELLO(RESUME), takes
 * the fake's WANT frames as the pages still needed, sends exactly those,
 * opens a new fault channel, and completes at PC_DONE with reconnects 1.
 *
 * The switch by hand: migrate_postcopy() on a job without --postcopy is
 * -EINVAL, on a manual one it switches, and a second call is -EALREADY.
 * Nothing waits on time: every wait re-reads a condition with a deadline
 * that fails the test. Exits 77 without /dev/kvm.
 */
#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "migrate/migrate.h"
#include "migrate/mio.h"
#include "protocol/channel.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/wire.h"
#include "tests/helpers/frame_bytes.h"
#include "tests/helpers/kvmtest.h"
#include "vm/vm.h"

#define PAGE WIRE_PAGE_SIZE
#define MEM (16ull << 20)
#define NPAGES (MEM / PAGE)
#define DEADLINE_NS (120ull * 1000000000ull)
#define IO_MS 30000

/* What the fake destination does once the guest runs "here" (after RESUMED). */
enum fake_mode {
	FAKE_GOOD,	/* one PAGE_REQ, take the push, PC_DONE */
	FAKE_BAD,	/* send bad (bad_len bytes) on the fault channel or channel 0 */
	FAKE_CUT,	/* break both links after 3 pushed frames, then serve a resume */
	FAKE_SILENT,	/* answer HELLO without POSTCOPY and wait for the end */
};

struct fake {
	enum fake_mode mode;
	uint8_t bad[64];
	size_t bad_len;
	bool bad_on_fault;		/* the bad bytes go on the fault channel (else channel 0) */
	struct channel_listener *l;
	char uri[160];
	pthread_t thread;
	uint8_t *buf;			/* MIO_FRAME_BUF */
	uint8_t *ram;			/* what arrived, page by page */
	uint64_t needed[NPAGES / 64];	/* NEEDED, then WANT after a resume */
	uint64_t got[NPAGES / 64];	/* pages that arrived since the switchover */
	uint64_t session;
	uint64_t pages_in;		/* page entries read in all */
	uint32_t sw_flags;		/* SWITCHOVER's flags */
	atomic_bool switched;		/* SWITCHOVER seen */
	atomic_bool running;		/* RESUMED sent: the "guest runs here" */
	bool needed_before_state;	/* every NEEDED came before the first STATE */
	uint64_t req_page;		/* FAKE_GOOD: the page asked for */
	bool req_answered;		/* ... and its answer came on the fault channel */
	uint64_t pages_after_resume;	/* FAKE_CUT: pages pushed on the resumed channel 0 */
	bool stray_after_resume;	/* ... one of them not in WANT */
	struct mio *drain_io;		/* FAKE_BAD: the connection drain_thread reads */
	int ret;
	char err[300];
};

static int fake_fail(struct fake *f, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fake_fail(struct fake *f, int ret, const char *fmt, ...)
{
	va_list ap;

	if (!f->err[0]) {
		va_start(ap, fmt);
		vsnprintf(f->err, sizeof(f->err), fmt, ap);
		va_end(ap);
	}
	return ret;
}

static int put(struct mio *io, ssize_t n, const uint8_t *buf)
{
	int ret = n < 0 ? (int)n : mio_write(io, buf, (size_t)n);

	return ret ? ret : mio_flush(io);
}

static int read_frame(struct fake *f, struct mio *io, struct frame_hdr *h)
{
	char msg[256] = "";
	int ret = mio_wait_readable(io, IO_MS);

	if (ret == 0)
		return fake_fail(f, -ETIMEDOUT, "the source sent nothing for %d ms", IO_MS);
	if (ret > 0)
		ret = mio_read_frame(io, f->buf, MIO_FRAME_BUF, h, msg, sizeof(msg));
	if (ret < 0 && ret != -ENODATA)
		return fake_fail(f, ret, "read: %s", msg);
	return ret;
}

static int accept_conn(struct fake *f, struct mio *io)
{
	struct channel *ch;
	char msg[256];
	int ret = channel_accept(f->l, IO_MS, &ch, msg, sizeof(msg));

	if (ret < 0)
		return fake_fail(f, ret, "accept: %s", msg);
	mio_channel_open(io, ch);
	return 0;
}

/*
 * A HELLO on a new connection (flags as expected), answered with HELLO_ACK
 * choosing what it offers of caps (and of CPUID and ANNOUNCE: required when
 * offered).
 */
static int take_hello(struct fake *f, struct mio *io, unsigned flags, uint32_t caps,
		      struct wire_hello *hello)
{
	struct wire_hello_ack a = { WIRE_VERSION, 0 };
	struct frame_hdr h;
	char msg[256];
	int ret = read_frame(f, io, &h);

	if (ret == 0 && h.type != WIRE_F_HELLO)
		ret = fake_fail(f, -EPROTO, "%s instead of HELLO", frame_type_name(h.type));
	if (ret == 0 && frame_get_hello(f->buf + WIRE_HDR_BYTES, h.len, hello, msg, sizeof(msg)))
		ret = fake_fail(f, -EBADMSG, "HELLO: %s", msg);
	if (ret == 0 && hello->flags != flags)
		ret = fake_fail(f, -EPROTO, "HELLO flags 0x%x, expected 0x%x", hello->flags, flags);
	if (ret == 0 && flags && hello->session != f->session)
		ret = fake_fail(f, -EPROTO, "HELLO of another session");
	/* the frames the destination waits for before its answer */
	for (unsigned cap = WIRE_CAP_CPUID; !ret && !flags && cap; cap = cap == WIRE_CAP_CPUID ?
								 WIRE_CAP_ANNOUNCE : 0) {
		if (!(hello->caps & cap))
			continue;
		ret = read_frame(f, io, &h);
		if (ret == 0 && h.type != (cap == WIRE_CAP_CPUID ? WIRE_F_CPUID : WIRE_F_ANNOUNCE))
			ret = fake_fail(f, -EPROTO, "%s after HELLO", frame_type_name(h.type));
	}
	a.caps = hello->caps & (caps | WIRE_CAP_CPUID | WIRE_CAP_ANNOUNCE);
	if (ret == 0)
		ret = put(io, frame_put_hello_ack(f->buf, MIO_FRAME_BUF, &a), f->buf);
	return ret;
}

/* A PAGES frame: store its pages; mark them arrived once the guest switched. */
static int take_pages(struct fake *f, const struct frame_hdr *h, bool *stray, uint64_t *count)
{
	struct page_iter it;
	struct wire_page pg;
	char msg[256];
	int ret = pages_begin(&it, f->buf + WIRE_HDR_BYTES, h->len, NPAGES, PAGE, 0, msg,
			      sizeof(msg));

	while (ret == 0 && (ret = pages_next(&it, &pg, msg, sizeof(msg))) == 1) {
		uint8_t *d = f->ram + pg.page * PAGE;

		f->pages_in++;
		if (pg.codec == CODEC_ZERO)
			memset(d, 0, PAGE);
		else
			memcpy(d, pg.data, PAGE);
		if (atomic_load(&f->switched)) {
			if (stray && !(f->needed[pg.page / 64] >> (pg.page % 64) & 1))
				*stray = true;
			f->got[pg.page / 64] |= 1ull << (pg.page % 64);
			if (count)
				(*count)++;
		}
		ret = 0;
	}
	return ret < 0 ? fake_fail(f, ret, "PAGES: %s", msg) : 0;
}

static bool all_needed_in(const struct fake *f)
{
	for (uint64_t w = 0; w < NPAGES / 64; w++)
		if (f->needed[w] & ~f->got[w])
			return false;
	return true;
}

/* Pre-copy up to GO, answered as a destination would. */
static int precopy(struct fake *f, struct mio *io)
{
	bool state_seen = false;
	struct frame_hdr h;
	char msg[256];
	int ret;

	f->needed_before_state = true;
	for (;;) {
		ret = read_frame(f, io, &h);
		if (ret == -ENODATA)
			return fake_fail(f, ret, "the source hung up before GO");
		if (ret < 0)
			return ret;
		switch (h.type) {
		case WIRE_F_PAGES:
			ret = take_pages(f, &h, NULL, NULL);
			break;
		case WIRE_F_END_ROUND: {
			struct wire_end_round e;
			struct wire_ack a = { 0, 0 };

			ret = frame_get_end_round(f->buf + WIRE_HDR_BYTES, h.len, &e, msg, sizeof(msg));
			a.round = e.round;
			a.pages = f->pages_in;
			if (!ret)
				ret = put(io, frame_put_ack(f->buf, MIO_FRAME_BUF, &a), f->buf);
			break;
		}
		case WIRE_F_SWITCHOVER: {
			uint32_t round;

			ret = frame_get_switchover(f->buf + WIRE_HDR_BYTES, h.len, &round,
						   &f->sw_flags, msg, sizeof(msg));
			atomic_store(&f->switched, true);
			break;
		}
		case WIRE_F_NEEDED: {
			struct wire_bitmap b;

			f->needed_before_state &= !state_seen;
			ret = frame_get_bitmap(f->buf + WIRE_HDR_BYTES, h.len, WIRE_F_NEEDED, NPAGES, &b,
					       msg, sizeof(msg));
			for (uint32_t w = 0; !ret && w < (b.count + 63) / 64; w++)
				f->needed[b.first / 64 + w] |= wire_bitmap_word(&b, w);
			break;
		}
		case WIRE_F_STATE:
			state_seen = true;
			break;
		case WIRE_F_COMPLETE: {
			struct wire_resumed r = { 0 };

			ret = put(io, frame_put_ready(f->buf, MIO_FRAME_BUF, &r), f->buf);
			break;
		}
		case WIRE_F_GO: {
			struct wire_resumed r = { 0 };

			ret = put(io, frame_put_resumed(f->buf, MIO_FRAME_BUF, &r), f->buf);
			atomic_store(&f->running, true);
			return ret;
		}
		default:
			return fake_fail(f, -EPROTO, "unexpected %s", frame_type_name(h.type));
		}
		if (ret < 0)
			return fake_fail(f, ret, "%s: %s", frame_type_name(h.type), msg);
	}
}

static int send_pc_done(struct fake *f, struct mio *io)
{
	struct wire_pc_done d = { .pages = 1, .requests = 1, .blocked_us = 2500, .p50_us = 123,
				  .p99_us = 4567 };

	return put(io, frame_put_pc_done(f->buf, MIO_FRAME_BUF, &d), f->buf);
}

/* Read io until the source closes it (frames it may still send are dropped). */
static void drain(struct fake *f, struct mio *io)
{
	struct frame_hdr h;

	while (read_frame(f, io, &h) == 0)
		;
}

static void *drain_thread(void *arg)
{
	struct fake *f = arg;

	drain(f, f->drain_io);
	return NULL;
}

/* FAKE_GOOD after GO: ask for the highest needed page, take the push, PC_DONE. */
static int serve_good(struct fake *f, struct mio *io, struct mio *fio)
{
	struct wire_page_req q = { 0, 1 };
	struct frame_hdr h;
	int ret;

	for (uint64_t p = 0; p < NPAGES; p++)
		if (f->needed[p / 64] >> (p % 64) & 1)
			q.page = p;
	f->req_page = q.page;
	ret = put(fio, frame_put_page_req(f->buf, MIO_FRAME_BUF, &q), f->buf);
	if (ret == 0)
		ret = read_frame(f, fio, &h);
	if (ret == 0 && h.type != WIRE_F_PAGES)
		ret = fake_fail(f, -EPROTO, "%s answers PAGE_REQ", frame_type_name(h.type));
	if (ret == 0)
		ret = take_pages(f, &h, NULL, NULL);
	f->req_answered = ret == 0 && (f->got[q.page / 64] >> (q.page % 64) & 1);
	while (ret == 0 && !all_needed_in(f)) {
		ret = read_frame(f, io, &h);
		if (ret == 0 && h.type != WIRE_F_PAGES)
			ret = fake_fail(f, -EPROTO, "%s in the push", frame_type_name(h.type));
		if (ret == 0)
			ret = take_pages(f, &h, NULL, NULL);
	}
	if (ret == 0)
		ret = send_pc_done(f, io);
	if (ret == 0)
		drain(f, io);
	return ret == -ENODATA ? 0 : ret;
}

/* FAKE_CUT: three pushed frames, both links cut; then HELLO(RESUME), WANT, HELLO(FAULT). */
static int serve_cut(struct fake *f, struct mio *io, struct mio *fio)
{
	static const uint64_t want[] = { 1, 2, 64, 100, NPAGES - 1 };
	struct wire_hello hello;
	struct frame_hdr h;
	int ret = 0;

	for (int i = 0; i < 3 && ret == 0; i++) {
		ret = read_frame(f, io, &h);
		if (ret == 0 && h.type == WIRE_F_PAGES)
			ret = take_pages(f, &h, NULL, NULL);
	}
	mio_close(io);
	mio_close(fio);
	if (ret < 0)
		return ret;
	/* the source comes back; we "still miss" a few pages */
	memset(f->needed, 0, sizeof(f->needed));
	memset(f->got, 0, sizeof(f->got));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		f->needed[want[i] / 64] |= 1ull << (want[i] % 64);
	ret = accept_conn(f, io);
	if (ret == 0)
		ret = take_hello(f, io, WIRE_HELLO_RESUME, WIRE_CAP_POSTCOPY, &hello);
	if (ret == 0)
		ret = put(io, frame_put_bitmap(f->buf, MIO_FRAME_BUF, WIRE_F_WANT, 0, NPAGES,
					       WIRE_WANT_LAST, f->needed), f->buf);
	if (ret < 0)
		return ret;
	ret = accept_conn(f, fio);
	if (ret == 0)
		ret = take_hello(f, fio, WIRE_HELLO_FAULT, WIRE_CAP_POSTCOPY, &hello);
	while (ret == 0 && !all_needed_in(f)) {
		ret = read_frame(f, io, &h);
		if (ret == 0 && h.type != WIRE_F_PAGES)
			ret = fake_fail(f, -EPROTO, "%s in the resumed push", frame_type_name(h.type));
		if (ret == 0)
			ret = take_pages(f, &h, &f->stray_after_resume, &f->pages_after_resume);
	}
	if (ret == 0)
		ret = send_pc_done(f, io);
	if (ret == 0)
		drain(f, io);
	return ret == -ENODATA ? 0 : ret;
}

static void *fake_thread(void *arg)
{
	struct fake *f = arg;
	struct wire_hello hello = { 0 };
	struct mio io = { 0 }, fio = { 0 };
	pthread_t drainer;
	int ret;

	ret = accept_conn(f, &io);
	if (ret == 0)
		ret = take_hello(f, &io, 0, f->mode == FAKE_SILENT ? 0 : WIRE_CAP_POSTCOPY, &hello);
	f->session = hello.session;
	if (ret == 0 && f->mode == FAKE_SILENT) {
		drain(f, &io);
		goto out;
	}
	if (ret == 0 && !(hello.caps & WIRE_CAP_POSTCOPY))
		ret = fake_fail(f, -EPROTO, "the source did not offer POSTCOPY");
	if (ret == 0)
		ret = accept_conn(f, &fio);
	if (ret == 0)
		ret = take_hello(f, &fio, WIRE_HELLO_FAULT, WIRE_CAP_POSTCOPY, &hello);
	if (ret == 0)
		ret = precopy(f, &io);
	if (ret < 0)
		goto out;
	switch (f->mode) {
	case FAKE_GOOD:
		ret = serve_good(f, &io, &fio);
		break;
	case FAKE_CUT:
		ret = serve_cut(f, &io, &fio);
		break;
	case FAKE_BAD:
		ret = mio_write(f->bad_on_fault ? &fio : &io, f->bad, f->bad_len);
		if (ret == 0)
			ret = mio_flush(f->bad_on_fault ? &fio : &io);
		/* the source must hang up both (read both: it may be blocked writing either) */
		f->drain_io = &fio;
		if (pthread_create(&drainer, NULL, drain_thread, f)) {
			ret = fake_fail(f, -EAGAIN, "pthread_create failed");
			break;
		}
		drain(f, &io);
		pthread_join(drainer, NULL);
		break;
	case FAKE_SILENT:
		break;
	}
out:
	f->ret = ret;
	mio_close(&fio);
	mio_close(&io);
	return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
	char msg[256];

	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->buf = malloc(MIO_FRAME_BUF);
	f->ram = calloc(NPAGES, PAGE);
	assert_non_null(f->buf);
	assert_non_null(f->ram);
	if (channel_listen("tcp:127.0.0.1:0", &f->l, msg, sizeof(msg)))
		fail_msg("listen: %s", msg);
	snprintf(f->uri, sizeof(f->uri), "tcp://127.0.0.1:%u", channel_listener_port(f->l));
}

static void fake_run(struct fake *f)
{
	assert_int_equal(pthread_create(&f->thread, NULL, fake_thread, f), 0);
}

static void fake_join(struct fake *f)
{
	pthread_join(f->thread, NULL);
	channel_listener_close(f->l);
}

static void fake_free(struct fake *f)
{
	free(f->buf);
	free(f->ram);
}

static struct vm *guest(void)
{
	struct vm *vm = kvmtest_start_vm("src", "memcheck", "workset=4M", MEM, 1, 0);

	kvmtest_wait(vm, 2000, 0, 120, NULL);
	return vm;
}

static void opts(struct migrate_opts *o, enum migrate_postcopy mode)
{
	migrate_opts_defaults(o);
	o->postcopy = mode;
	o->timeout_ms = 100000;
}

/* Wait for the job's status to be st (or the job to end); fail at the deadline. */
static void wait_status(struct migrate_job *j, const char *st, struct migrate_stats *ms)
{
	uint64_t end = clock_now_ns() + DEADLINE_NS;

	for (;;) {
		migrate_get_stats(j, ms);
		if (!strcmp(ms->status, st) || migrate_finished(j))
			break;
		if (clock_now_ns() > end)
			fail_msg("status %s, waited for %s", ms->status, st);
		usleep(1000);
	}
	if (strcmp(ms->status, st))
		fail_msg("the job ended in %s (%s), waited for %s", ms->status, ms->error, st);
}

/* The job succeeds, and so did the fake destination: ms as it ended. */
static void completed(struct migrate_job *j, struct fake *f, struct migrate_stats *ms)
{
	int ret = migrate_wait(j);

	migrate_get_stats(j, ms);
	migrate_job_free(j);
	fake_join(f);
	if (ret)
		fail_msg("the job failed: %s (fake destination: %s)", ms->error, f->err);
	if (f->ret)
		fail_msg("fake destination: %s", f->err);
	assert_string_equal(ms->status, "completed");
}

/* The source has every page the fake got since the switchover, byte for byte. */
static void same_pages(const struct fake *f, struct vm *src)
{
	const uint8_t *ram = vm_ram(src);
	uint64_t n = 0;

	for (uint64_t p = 0; p < NPAGES; p++) {
		if (!(f->got[p / 64] >> (p % 64) & 1))
			continue;
		if (memcmp(ram + p * PAGE, f->ram + p * PAGE, PAGE))
			fail_msg("page %llu differs from the source's", (unsigned long long)p);
		n++;
	}
	assert_true(n > 0);
}

static void test_postcopy_now_good(void **unused)
{
	struct vm *src = guest();
	struct migrate_opts o;
	struct migrate_job *j;
	struct migrate_stats ms;
	struct fake f;
	char err[512];

	(void)unused;
	fake_start(&f, FAKE_GOOD);
	fake_run(&f);
	opts(&o, MIGRATE_POSTCOPY_NOW);
	if (migrate_start(src, f.uri, &o, &j, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	completed(j, &f, &ms);
	printf("    completed in %llu ms, %llu requests, %llu pages pushed, p50 %llu us\n",
	       (unsigned long long)ms.total_ms, (unsigned long long)ms.postcopy.requests,
	       (unsigned long long)ms.postcopy.pages_pushed,
	       (unsigned long long)ms.postcopy.fault_latency_us_p50);
	assert_string_equal(ms.status, "completed");
	assert_true(f.sw_flags & WIRE_SWITCHOVER_POSTCOPY);
	assert_true(f.needed_before_state);
	assert_true(f.req_answered);
	assert_true(ms.postcopy.active);
	assert_int_equal(ms.postcopy.requests, 1);
	/* PC_DONE's figures become the job's */
	assert_int_equal(ms.postcopy.fault_latency_us_p50, 123);
	assert_int_equal(ms.postcopy.fault_latency_us_p99, 4567);
	assert_int_equal(ms.postcopy.blocked_ms, 2);
	assert_true(ms.postcopy.pages_pushed > 0);
	assert_true(ms.postcopy.bytes_after_switchover >= ms.postcopy.pages_pushed);
	/* every channel's bytes: pre-copy's, and after the switch both channels' */
	assert_true(ms.transferred_bytes > ms.postcopy.bytes_after_switchover);
	assert_true(ms.postcopy.bytes_after_switchover >= (ms.postcopy.pages_pushed + 1) * 13);
	/* the source never ran its copy again: its pages are what the fake got */
	assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
	same_pages(&f, src);
	fake_free(&f);
	vm_destroy(src);
}

static void test_postcopy_manual(void **unused)
{
	struct vm *src = kvmtest_start_vm("src", "randdirty", "workset=2M,rate=8192,hot=0", MEM,
					  1, 0);
	uint64_t end = clock_now_ns() + DEADLINE_NS;
	struct migrate_opts o;
	struct migrate_job *j;
	struct migrate_stats ms;
	struct fake f, g;
	char err[512];

	(void)unused;
	kvmtest_wait(src, 3 * 512, 0, 120, NULL);
	/* without --postcopy the destination was not prepared: refused */
	fake_start(&g, FAKE_SILENT);
	fake_run(&g);
	opts(&o, MIGRATE_POSTCOPY_OFF);
	if (migrate_start(src, g.uri, &o, &j, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	err[0] = '\0';
	assert_int_equal(migrate_postcopy(j, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "without --postcopy"));
	migrate_cancel(j);
	assert_true(migrate_wait(j) < 0);
	migrate_job_free(j);
	fake_join(&g);
	fake_free(&g);
	assert_int_equal(vm_get_run_state(src), VM_RUN_RUNNING);

	/* manual: pre-copy rounds that cannot converge, until we say so */
	fake_start(&f, FAKE_GOOD);
	fake_run(&f);
	opts(&o, MIGRATE_POSTCOPY_MANUAL);
	o.bandwidth = 4ull << 20;	/* 1024 pages/s under a guest writing 8192/s */
	o.max_downtime_ms = 1;
	o.max_iterations = 0;
	if (migrate_start(src, f.uri, &o, &j, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	for (;;) {
		migrate_get_stats(j, &ms);
		if (ms.round >= 2 || migrate_finished(j))
			break;
		if (clock_now_ns() > end)
			fail_msg("round %u after the deadline", ms.round);
		usleep(1000);
	}
	assert_string_equal(ms.status, "active");
	assert_false(atomic_load(&f.switched));	/* manual: never by itself */
	assert_int_equal(migrate_postcopy(j, err, sizeof(err)), 0);
	assert_int_equal(migrate_postcopy(j, err, sizeof(err)), -EALREADY);
	completed(j, &f, &ms);
	assert_string_equal(ms.status, "completed");
	assert_true(f.sw_flags & WIRE_SWITCHOVER_POSTCOPY);
	assert_true(ms.round >= 2);
	assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
	same_pages(&f, src);
	fake_free(&f);
	vm_destroy(src);
}

/* A frame the writer made: its length. */
static size_t sized(ssize_t n)
{
	assert_true(n > 0);
	return (size_t)n;
}

static void test_postcopy_bad_return_path(void **unused)
{
	static const char *const names[] = {
		"a PAGE_REQ outside RAM", "a PAGE_REQ of 0 pages", "a PAGE_REQ of 513 pages",
		"a PAGE_REQ on channel 0", "an ACK on the fault channel", "a PC_DONE with digest_ok 2",
		"bytes that are no frame",
	};
	static const char *const want[] = {
		"outside the 4096 pages", "count 0", "count 513", "PAGE_REQ frame from the destination",
		"ACK frame on the fault channel", "PC_DONE", "frame",
	};
	struct vm *src = guest();

	(void)unused;
	for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
		struct wire_page_req q = { NPAGES, 1 };
		struct wire_ack a = { 1, 1 };
		struct wire_pc_done d = { 0 };
		struct migrate_opts o;
		struct migrate_job *j;
		struct migrate_stats ms;
		struct fake f;
		char err[512];

		printf("  %s\n", names[k]);
		fake_start(&f, FAKE_BAD);
		f.bad_on_fault = k != 3 && k != 5 && k != 6;
		switch (k) {
		case 0:
			f.bad_len = sized(frame_put_page_req(f.bad, sizeof(f.bad), &q));
			break;
		case 1:
		case 2:
			q.page = 0;
			f.bad_len = sized(frame_put_page_req(f.bad, sizeof(f.bad), &q));
			set_le(f.bad + WIRE_HDR_BYTES + 8, 4, k == 1 ? 0 : 513);
			reseal(f.bad, f.bad_len);
			break;
		case 3:
			q.page = 0;
			f.bad_len = sized(frame_put_page_req(f.bad, sizeof(f.bad), &q));
			break;
		case 4:
			f.bad_len = sized(frame_put_ack(f.bad, sizeof(f.bad), &a));
			break;
		case 5:
			f.bad_len = sized(frame_put_pc_done(f.bad, sizeof(f.bad), &d));
			f.bad[WIRE_HDR_BYTES + 32] = 2;
			reseal(f.bad, f.bad_len);
			break;
		default:
			memcpy(f.bad, "HTTP/1.1 400 Bad Request\r\n\r\n", 29);
			f.bad_len = 29;
			break;
		}
		fake_run(&f);
		opts(&o, MIGRATE_POSTCOPY_NOW);
		if (migrate_start(src, f.uri, &o, &j, err, sizeof(err)))
			fail_msg("migrate_start: %s", err);
		/* the link is broken, not the guest: the job waits to resume */
		wait_status(j, "postcopy-paused", &ms);
		printf("    %s: %s\n", ms.status, ms.error);
		if (!strstr(ms.error, want[k]))
			fail_msg("expected '%s' in: %s", want[k], ms.error);
		assert_true(ms.postcopy.active);
		assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
		migrate_cancel(j);
		assert_true(migrate_wait(j) < 0);
		migrate_get_stats(j, &ms);
		migrate_job_free(j);
		fake_join(&f);
		fake_free(&f);
		printf("    %s: %s\n", ms.status, ms.error);
		assert_non_null(strstr(ms.error, "never reached"));
		/* the guest ran at the destination: this copy never runs again */
		assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
		/* a new guest for the next case */
		vm_destroy(src);
		src = guest();
	}
	vm_destroy(src);
}

static void resume_case(bool automatic)
{
	struct vm *src = guest();
	struct migrate_opts o;
	struct migrate_job *j;
	struct migrate_stats ms;
	struct fake f;
	char err[512];

	printf("  %s\n", automatic ? "--postcopy-reconnect" : "migrate_resume");
	fake_start(&f, FAKE_CUT);
	fake_run(&f);
	opts(&o, MIGRATE_POSTCOPY_NOW);
	if (automatic)
		o.postcopy_reconnect_ms = 60000;
	if (migrate_start(src, f.uri, &o, &j, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	if (!automatic) {
		wait_status(j, "postcopy-paused", &ms);
		printf("    %s: %s\n", ms.status, ms.error);
		assert_int_equal(migrate_resume(j, NULL, err, sizeof(err)), 0);
	}
	completed(j, &f, &ms);
	assert_string_equal(ms.status, "completed");
	assert_int_equal(ms.postcopy.reconnects, 1);
	/* after the resume the source sent what WANT listed, and only that */
	assert_false(f.stray_after_resume);
	assert_true(f.pages_after_resume >= 5);
	assert_true(all_needed_in(&f));
	same_pages(&f, src);
	fake_free(&f);
	assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
	vm_destroy(src);
}

static void test_postcopy_resume(void **unused)
{
	(void)unused;
	resume_case(false);
	resume_case(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_postcopy_now_good),
		cmocka_unit_test(test_postcopy_manual),
		cmocka_unit_test(test_postcopy_bad_return_path),
		cmocka_unit_test(test_postcopy_resume),
	};

	char why[256];

	if (vm_kvm_available(why, sizeof(why)) < 0) {
		printf("SKIPPED: test_postcopy needs /dev/kvm: %s\n", why);
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("KVMIG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KVMIG_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
