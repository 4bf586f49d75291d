/* SPDX-License-Identifier: MIT */
/*
 * test_migrate.c - the live-migration engine on real KVM, in one process:
 * a source VM, and a destination thread that accepts the stream on a unix
 * socket (or TCP loopback), builds the VM, starts it and confirms. After
 * each move: the destination guest continues from where the source
 * stopped (progress grows past it), memcheck reports no errors, idle's
 * ticks keep coming, and the source is paused for the caller to free.
 *
 * Failures: the job fails with an error naming the cause (a substring is
 * checked), the guest runs on at the source (running, progress growing,
 * errors 0) and the destination holds no VM. The guest is a busy memcheck,
 * except where the migration must not converge: there it is a randdirty
 * paced (rate=) well above a --bandwidth cap (endless_guest()), so it
 * cannot converge at any guest or host speed:
 *  - no convergence (3 rounds, with 1 ms of downtime allowed);
 *  - cancel during the bulk round, and during the iterations (round 2 of
 *    a migration that cannot converge while the guest keeps dirtying);
 *  - the destination vanishes after HELLO;
 *  - the connection cut mid-stream: the destination reads HELLO and two
 *    PAGES frames, then shutdown(SHUT_RDWR)s its socket;
 *  - a destination that answers HELLO with bytes that are not a frame;
 *  - --parallel 2 with channel 1 cut after its first PAGES frame;
 *  - the real agent (BUILD/kvmigd, a child process listening on a unix
 *    socket) under RLIMIT_AS, which cannot map the guest's RAM: the
 *    source reports the destination's refusal and its reason, and the
 *    agent lives on with no VM;
 *  - the agent killed (SIGKILL) mid-stream.
 *
 * Auto-converge: a paced guest that dirties twice as fast as the capped
 * link, and under the maximum throttle well under it. Without
 * --auto-converge the move must fail; with it, it must complete, and the
 * vCPU throttle must have been seen engaged.
 * Exits 77 without /dev/kvm.
 */
#include <errno.h>
#include <limits.h>
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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "migrate/incoming.h"
#include "migrate/migrate.h"
#include "migrate/mio.h"
#include "migrate/session.h"
#include "protocol/channel.h"
#include "tests/helpers/mdest.h"
#include "tests/helpers/kvmtest.h"
#include "vm/vm.h"

#define DEADLINE_NS (120ull * 1000000000ull)

/* How a destination misbehaves (all zero: it does not). */
struct dest_fault {
	bool vanish;		/* close the connection after HELLO */
	bool garbage;		/* answer HELLO with bytes that are not a frame */
	unsigned cut_channel;	/* cut this channel's connection ... */
	unsigned cut_after;	/* ... after this many frames (0: never) */
};

struct dest {
	struct channel_listener *l;
	pthread_t thread;
	struct vm *vm;
	int ret;
	struct dest_fault fault;
	unsigned channels;	/* --parallel */
	struct mdest_others *others;
	char err[512];
	char uri[160];
};

/* Where the in-process destinations' parallel channels meet (made in main). */
static struct session_table *sessions;

static void *dest_thread(void *arg)
{
	struct dest *d = arg;
	struct channel *ch = NULL;
	struct incoming *inc = NULL;
	struct mdest_cut cut;
	struct mio io, *in = &io;
	char msg[256];

	d->ret = channel_accept(d->l, 30000, &ch, msg, sizeof(msg));
	if (d->ret < 0) {
		snprintf(d->err, sizeof(d->err), "accept: %s", msg);
		return NULL;
	}
	mio_channel_open(&io, ch);
	if (d->channels > 1)
		d->others = mdest_others_start_cut(d->l, d->channels - 1, sessions,
						   d->fault.cut_channel, d->fault.cut_after);
	if (d->fault.garbage) {
		static const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
		uint8_t buf[4096];
		struct frame_hdr h;

		/* read the HELLO, answer as some other service would */
		if (mio_read_frame(&io, buf, sizeof(buf), &h, msg, sizeof(msg)) == 0)
			printf("    destination got %s and answers with garbage\n",
			       frame_type_name(h.type));
		if (send(channel_fd(ch), junk, sizeof(junk) - 1, MSG_NOSIGNAL) < 0)
			printf("    destination: send: %s\n", strerror(errno));
		/* until the source hangs up: its ERROR frame, then EOF */
		while (mio_read_frame(&io, buf, sizeof(buf), &h, msg, sizeof(msg)) == 0)
			printf("    destination got %s\n", frame_type_name(h.type));
		mio_close(&io);
		d->ret = -EPROTO;
		return NULL;
	}
	if (d->fault.cut_after && d->fault.cut_channel == 0) {
		printf("    destination cuts its connection after %u frames\n", d->fault.cut_after);
		mdest_cut_open(&cut, &io, d->fault.cut_after);
		in = &cut.io;
	}
	if (d->fault.vanish) {
		uint8_t buf[4096];
		struct frame_hdr h;

		/* read the HELLO, then vanish */
		if (mio_read_frame(&io, buf, sizeof(buf), &h, msg, sizeof(msg)) == 0)
			printf("    destination got %s and vanishes\n", frame_type_name(h.type));
		mio_close(&io);
		d->ret = -ECONNRESET;
		return NULL;
	}
	d->ret = incoming_create(in, &io, "dst", &inc);
	if (!d->ret)
		incoming_set_sessions(inc, sessions);
	if (!d->ret)
		d->ret = incoming_run(inc, &d->vm, d->err, sizeof(d->err));
	if (!d->ret)
		d->ret = incoming_handover(inc, d->err, sizeof(d->err));
	if (d->ret && d->vm) {
		/* no GO: the source keeps the guest */
		vm_destroy(d->vm);
		d->vm = NULL;
	}
	if (!d->ret)
		d->ret = vm_start(d->vm);
	if (!d->ret)
		d->ret = incoming_send_resumed(inc);
	incoming_destroy(inc);
	mio_close(&io);
	return NULL;
}

static void dest_start_faulty(struct dest *d, bool tcp, unsigned channels,
			      const struct dest_fault *f)
{
	char spec[128], msg[256];

	memset(d, 0, sizeof(*d));
	d->channels = channels;
	if (f)
		d->fault = *f;
	if (tcp) {
		snprintf(spec, sizeof(spec), "tcp:127.0.0.1:0");
	} else {
		snprintf(spec, sizeof(spec), "unix:/tmp/kvmig-test-mig-%d.sock", getpid());
		unlink(spec + 5);
	}
	if (channel_listen(spec, &d->l, msg, sizeof(msg)))
		fail_msg("listen %s: %s", spec, msg);
	if (tcp)
		snprintf(d->uri, sizeof(d->uri), "tcp://127.0.0.1:%u", channel_listener_port(d->l));
	else
		snprintf(d->uri, sizeof(d->uri), "unix://%s", spec + 5);
	assert_int_equal(pthread_create(&d->thread, NULL, dest_thread, d), 0);
}

static void dest_start(struct dest *d, bool tcp, unsigned channels)
{
	dest_start_faulty(d, tcp, channels, NULL);
}

static void dest_join(struct dest *d)
{
	char err[512];

	pthread_join(d->thread, NULL);
	if (d->others && mdest_others_join(d->others, err, sizeof(err)) < 0 && d->ret == 0) {
		/* channel 0 succeeded, so every other channel must have */
		fail_msg("a parallel channel failed: %s", err);
	}
	d->others = NULL;
	channel_listener_close(d->l);
}

/*
 * The switchover's timeline of a completed stop-and-copy: every step
 * reached, in order, within the downtime (resumed is its end: downtime_ms
 * is resumed_us in ms), after the job's start and before its end. The
 * state is captured on its own thread while the last pages go: both come
 * after the sync and before COMPLETE, in either order.
 */
static void check_timeline(const struct migrate_stats *ms)
{
	const uint64_t step[] = {
		ms->switchover.paused_us, ms->switchover.synced_us, ms->switchover.pages_us,
		ms->switchover.state_us,  ms->switchover.sent_us,   ms->switchover.ready_us,
		ms->switchover.resumed_us,
	};
	/* step b comes no earlier than step a: paused, synced, {pages, state}, sent, ... */
	static const struct {
		unsigned a, b;
	} order[] = { {0, 1}, {1, 2}, {1, 3}, {2, 4}, {3, 4}, {4, 5}, {5, 6} };

	printf("    switchover at %llu us (%s): paused %llu, synced %llu, %llu pages by %llu, "
	       "state %llu, sent %llu, READY %llu, RESUMED %llu us\n",
	       (unsigned long long)ms->switchover.start_us, ms->switchover.reason,
	       (unsigned long long)step[0], (unsigned long long)step[1],
	       (unsigned long long)ms->switchover.pages, (unsigned long long)step[2],
	       (unsigned long long)step[3], (unsigned long long)step[4],
	       (unsigned long long)step[5], (unsigned long long)step[6]);
	assert_true(ms->switchover.start_us > 0);
	assert_true(ms->switchover.start_us / 1000 <= ms->total_ms);
	for (size_t i = 0; i < ARRAY_SIZE(order); i++)
		if (step[order[i].b] < step[order[i].a])
			fail_msg("switchover step %u at %llu us, before step %u at %llu us",
				 order[i].b, (unsigned long long)step[order[i].b], order[i].a,
				 (unsigned long long)step[order[i].a]);
	assert_true(ms->switchover.sent_us > 0);
	assert_int_equal(ms->switchover.resumed_us / 1000, ms->downtime_ms);
	assert_true(ms->switchover.state_bytes > 0);
	assert_true(ms->switchover.bytes >= ms->switchover.state_bytes);
	assert_true(ms->switchover.bytes <= ms->transferred_bytes);
	assert_true(ms->switchover.pages <= ms->total_bytes / 4096);
	assert_true(ms->switchover.reason[0] != '\0');
}

/*
 * Move a running guest; check it goes on at the destination. Return: the
 * highest vCPU throttle (auto-converge, %) seen while the job ran, in its
 * statistics or on the VM itself, sampled every millisecond. A throttle
 * stays on from the round that decided it until the switchover, so for at
 * least one whole round that sends more than max_downtime's worth of
 * pages (else that round would have switched over): at a capped link, far
 * longer than the sampling period.
 */
static unsigned move(const char *guest, const char *args, unsigned vcpus, uint64_t mem, bool tcp,
		     const struct migrate_opts *o, uint32_t ring)
{
	unsigned max_throttle = 0;
	bool idle = !strcmp(guest, "idle");
	struct vm *src = kvmtest_start_vm("src", guest, args, mem, vcpus, ring);
	struct vm_guest_stats a, b;
	struct migrate_job *job;
	struct migrate_stats ms;
	struct dest d;
	char err[512];
	int ret;

	printf("  %s %s, %u vCPU(s), %llu MiB over %s\n", guest, args, vcpus,
	       (unsigned long long)(mem >> 20), tcp ? "tcp" : "unix");
	kvmtest_wait(src, idle ? 10 : 2000, idle ? 10 : 0, 120, NULL);
	dest_start(&d, tcp, o->parallel);
	if (migrate_start(src, d.uri, o, &job, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	while (!migrate_finished(job)) {
		migrate_get_stats(job, &ms);
		max_throttle = MAX(max_throttle, MAX(ms.throttle_pct, vm_get_throttle(src)));
		usleep(1000);
	}
	ret = migrate_wait(job);
	migrate_get_stats(job, &ms);
	migrate_job_free(job);
	dest_join(&d);
	if (ret)
		fail_msg("migration failed: %s (destination: %s)", ms.error, d.err);
	assert_int_equal(d.ret, 0);
	assert_string_equal(ms.status, "completed");
	printf("    total %llu ms, downtime %llu ms, %llu rounds, %llu MiB sent, %llu zero pages, "
	       "throttle up to %u%%\n",
	       (unsigned long long)ms.total_ms, (unsigned long long)ms.downtime_ms,
	       (unsigned long long)ms.dirty_sync_count,
	       (unsigned long long)(ms.transferred_bytes >> 20),
	       (unsigned long long)ms.duplicate_pages, max_throttle);
	check_timeline(&ms);
	if (o->bandwidth && ms.total_ms > ms.downtime_ms) {
		/*
		 * The token bucket holds pre-copy to the limit (its burst is 50
		 * ms); the paused guest's last pages and state go uncapped, so
		 * the rate is pre-copy's: its bytes over its time.
		 */
		double rate = (double)(ms.transferred_bytes - ms.switchover.bytes) * 1000.0 /
			      (double)(ms.total_ms - ms.downtime_ms);

		printf("    %.2f MiB/s on the wire in pre-copy, limit %.2f MiB/s\n",
		       rate / (1 << 20), (double)o->bandwidth / (1 << 20));
		assert_true(rate <= 1.1 * (double)o->bandwidth);
		/* setup sends little: the average stays near the limit */
		assert_true(rate >= 0.7 * (double)o->bandwidth);
	}
	/* the source stays paused, its counters frozen */
	assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
	vm_get_stats(src, &a);
	vm_destroy(src);
	/* the destination goes on from there */
	vm_get_stats(d.vm, &b);
	assert_true(b.progress >= a.progress);
	kvmtest_wait(d.vm, a.progress + (idle ? 10 : 2000), a.ticks + (idle ? 10 : 0), 120, NULL);
	vm_get_stats(d.vm, &b);
	assert_int_equal(b.errors, 0);
	if (o->verify)
		assert_true(ms.verified);
	vm_destroy(d.vm);
	return max_throttle;
}

static void test_migrate_guests(void **unused)
{
	static const char *const guests[] = { "idle", "seqdirty", "randdirty", "memcheck" };
	struct migrate_opts o;

	(void)unused;
	migrate_opts_defaults(&o);
	o.verify = true;
	for (unsigned v = 1; v <= 2; v++)
		for (size_t g = 0; g < 4; g++)
			move(guests[g], "workset=4M", v, 64ull << 20, g % 2, &o, 0);
}

/*
 * Options under test must not fail for lack of convergence on a slow host
 * (nested or emulated KVM moves a few MiB/s): auto-converge and a roomy
 * downtime budget keep these about the option, not the host.
 */
static void roomy(struct migrate_opts *o)
{
	migrate_opts_defaults(o);
	o->verify = true;
	o->auto_converge = true;
	o->max_iterations = 0;
	o->max_downtime_ms = 1000;
	o->timeout_ms = 300000;	/* a job that hangs fails, with its reason */
}

static void test_migrate_options(void **unused)
{
	struct migrate_opts o;

	(void)unused;
	roomy(&o);
	o.verify = true;
	o.xbzrle_cache_bytes = 16 << 20;
	move("memcheck", "workset=8M", 2, 128ull << 20, false, &o, 0);
	roomy(&o);
	strcpy(o.compress, "zstd");
	move("memcheck", "workset=8M", 1, 128ull << 20, true, &o, 0);
	strcpy(o.compress, "lz4");
	move("seqdirty", "workset=8M", 2, 128ull << 20, false, &o, 0);
	roomy(&o);
	o.dirty_track = DIRTYLOG_RING;
	/*
	 * A paced guest: where KVM logs one ring entry per store (kvm_pvm), an
	 * unpaced one fills a 4096-entry ring between two harvests on a slow
	 * host (TSan, a loaded machine) and the job ends on its documented
	 * overflow error (test_dirtylog covers that); at 2000 writes/s the
	 * ring holds ~2 s per vCPU at any guest speed. --verify checks the RAM.
	 */
	move("randdirty", "workset=8M,rate=2000", 2, 128ull << 20, false, &o, 4096);
	/* parallel channels, each with its own compressor or XBZRLE cache */
	roomy(&o);
	o.parallel = 2;
	strcpy(o.compress, "zstd");
	move("memcheck", "workset=8M", 2, 128ull << 20, true, &o, 0);
	roomy(&o);
	o.parallel = 4;
	o.xbzrle_cache_bytes = 16 << 20;
	move("randdirty", "workset=8M", 1, 128ull << 20, false, &o, 0);
	/* a few MiB at 1 MiB/s: the limit binds even on an emulated link */
	roomy(&o);
	o.bandwidth = 1ull << 20;
	move("randdirty", "workset=8M,rate=50", 1, 128ull << 20, false, &o, 0);
}

static void test_migrate_big_guests(void **unused)
{
	struct migrate_opts o;

	(void)unused;
	roomy(&o);
	move("memcheck", "workset=16M", 2, 1ull << 30, false, &o, 0);
	move("seqdirty", "workset=16M", 1, 4ull << 30, true, &o, 0);
}

/* ---- failures ------------------------------------------------------------- */

/* What to do to a running job once its statistics say it got this far. */
enum fault_act { ACT_CANCEL, ACT_KILL };

struct fault_trigger {
	enum fault_act act;
	uint64_t ms;		/* pre-copy ran this long (ms) ... */
	uint64_t bytes;		/* ... transferred_bytes at least this ... */
	unsigned round;		/* ... and in this round or later */
	bool in_bulk;		/* the job must end in the bulk round (round 0) */
	pid_t pid;		/* ACT_KILL: SIGKILL this process (the destination agent) */
};

/* msg contains one of the '|'-separated substrings of alts. */
static bool has_any(const char *msg, const char *alts)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", alts);
	for (char *w = strtok_r(buf, "|", &save); w; w = strtok_r(NULL, "|", &save))
		if (strstr(msg, w))
			return true;
	return false;
}

/*
 * A failed migration to uri, with t (if any) done to the job on the way:
 * the error names the cause (one of the '|'-separated substrings of
 * what), the guest runs on at the source unharmed, and the destination
 * (d, in this process; NULL for an agent, checked by the caller) holds no
 * VM.
 */
static void expect_fail(struct vm *src, const char *uri, struct dest *d,
			const struct migrate_opts *o, const char *what,
			const struct fault_trigger *t)
{
	uint64_t t0 = clock_now_ns(), end = t0 + DEADLINE_NS;
	struct migrate_job *job;
	struct migrate_stats ms;
	struct vm_guest_stats a;
	bool fired = false;
	char err[512];
	int ret;

	if (migrate_start(src, uri, o, &job, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	while (t && !fired && !migrate_finished(job)) {
		migrate_get_stats(job, &ms);
		if (!strcmp(ms.status, "active") && ms.total_ms >= ms.setup_ms + t->ms &&
		    ms.transferred_bytes >= t->bytes && ms.round >= t->round) {
			if (t->act == ACT_CANCEL)
				migrate_cancel(job);
			else
				kill(t->pid, SIGKILL);
			fired = true;
		} else if (clock_now_ns() > end) {
			migrate_cancel(job);
			break;
		} else {
			usleep(1000);
		}
	}
	ret = migrate_wait(job);
	migrate_get_stats(job, &ms);
	migrate_job_free(job);
	if (d)
		dest_join(d);
	printf("    %s after %llu ms in round %u, %llu MiB sent: %s\n", ms.status,
	       (unsigned long long)((clock_now_ns() - t0) / 1000000), ms.round,
	       (unsigned long long)(ms.transferred_bytes >> 20), ms.error);
	if (t && !fired)
		fail_msg("the job ended before %llu ms of pre-copy, round %u and %llu bytes sent",
			 (unsigned long long)t->ms, t->round, (unsigned long long)t->bytes);
	assert_true(ret < 0);
	if (!has_any(ms.error, what))
		fail_msg("expected '%s' in: %s", what, ms.error);
	assert_string_equal(ms.status, t && t->act == ACT_CANCEL ? "cancelled" : "failed");
	if (t)
		assert_true(ms.round >= t->round);
	if (t && t->in_bulk)
		assert_int_equal(ms.round, 0);
	if (d)
		assert_null(d->vm);
	assert_int_equal(vm_get_run_state(src), VM_RUN_RUNNING);
	vm_get_stats(src, &a);
	kvmtest_wait(src, a.progress + 1000, 0, 120, NULL);
	vm_get_stats(src, &a);
	assert_int_equal(a.errors, 0);
	/* every vCPU: progress alone would hide one that KVM stopped */
	if (vm_dead_vcpus(src))
		fail_msg("%u vCPU(s) of the source guest stopped", vm_dead_vcpus(src));
}

/*
 * A migration that never converges, at any guest or host speed: 1 ms of
 * downtime allowed, no limit on rounds, the link capped at 4 MiB/s (1024
 * pages/s), and endless_guest() paced to 8192 page writes/s (8x the cap;
 * guests here manage 20-40k/s, hardware KVM 1000x that) over a 2 MiB
 * working set (512 pages) it has touched first. Each round finds nearly
 * the whole set dirty again: about 0.5 s of sending where 1 ms is allowed
 * (one page alone takes 4 ms at the cap), and the dirty set can only grow
 * when the link is slower than the cap. It goes round after round until
 * the fault under test ends it; the timeout only bounds a broken test.
 */
static void endless(struct migrate_opts *o)
{
	migrate_opts_defaults(o);
	o->bandwidth = 4ull << 20;
	o->max_downtime_ms = 1;
	o->max_iterations = 0;
	o->timeout_ms = 60000;
}

#define ENDLESS_WS_PAGES 512

static struct vm *endless_guest(void)
{
	struct vm *src = kvmtest_start_vm("src", "randdirty", "workset=2M,rate=8192,hot=0", 64ull << 20, 2, 0);

	/* three writes per page: 95% of the working set holds data */
	kvmtest_wait(src, 3 * ENDLESS_WS_PAGES, 0, 120, NULL);
	return src;
}

/* The guest the fault tests move: memcheck notices any page lost or stale. */
static struct vm *fault_guest(void)
{
	struct vm *src = kvmtest_start_vm("src", "memcheck", "workset=8M", 256ull << 20, 2, 0);

	kvmtest_wait(src, 5000, 0, 120, NULL);
	return src;
}

static void test_migrate_failures(void **unused)
{
	struct fault_trigger t = { .act = ACT_CANCEL, .ms = 250, .in_bulk = true };
	struct dest_fault f = { .vanish = true };
	struct migrate_opts o;
	struct vm *src;
	struct dest d;

	(void)unused;
	printf("  no convergence in 3 rounds (randdirty at 8x the link)\n");
	src = endless_guest();
	endless(&o);
	o.max_iterations = 3;
	dest_start(&d, false, 1);
	expect_fail(src, d.uri, &d, &o, "did not converge after 3 rounds", NULL);
	vm_destroy(src);

	src = fault_guest();

	/*
	 * 0.25 s into a bulk round that takes a second (8 MiB at 8 MiB/s;
	 * the job's byte count moves only after each 16 MiB of guest RAM)
	 */
	printf("  cancel during the bulk round\n");
	migrate_opts_defaults(&o);
	o.bandwidth = 8 << 20;
	dest_start(&d, false, 1);
	expect_fail(src, d.uri, &d, &o, "cancelled by the user", &t);

	printf("  the destination vanishes after HELLO\n");
	migrate_opts_defaults(&o);
	dest_start_faulty(&d, true, 1, &f);
	expect_fail(src, d.uri, &d, &o,
		    "the destination is gone", NULL);
	vm_destroy(src);
}

/* Faults of the stream, against a destination in this process. */
static void test_migrate_fault_stream(void **unused)
{
	struct fault_trigger t = { .act = ACT_CANCEL, .round = 2 };
	struct dest_fault f;
	struct migrate_opts o;
	struct vm *src;
	struct dest d;

	(void)unused;
	printf("  cancel in round 2, the guest dirtying all along (randdirty at 8x the link)\n");
	src = endless_guest();
	endless(&o);
	dest_start(&d, false, 1);
	expect_fail(src, d.uri, &d, &o, "cancelled by the user", &t);
	vm_destroy(src);

	src = fault_guest();

	printf("  the connection cut mid-stream\n");
	memset(&f, 0, sizeof(f));
	f.cut_after = 3;	/* HELLO and two PAGES frames */
	migrate_opts_defaults(&o);
	dest_start_faulty(&d, true, 1, &f);
	expect_fail(src, d.uri, &d, &o,
		    "the destination is gone", NULL);

	printf("  a destination that answers with garbage\n");
	memset(&f, 0, sizeof(f));
	f.garbage = true;
	migrate_opts_defaults(&o);
	dest_start_faulty(&d, false, 1, &f);
	expect_fail(src, d.uri, &d, &o, "sent garbage: unknown frame type", NULL);

	printf("  --parallel 2, channel 1 dropped mid-stream\n");
	memset(&f, 0, sizeof(f));
	f.cut_channel = 1;
	f.cut_after = 2;	/* HELLO and one PAGES frame */
	migrate_opts_defaults(&o);
	o.parallel = 2;
	dest_start_faulty(&d, false, 2, &f);
	expect_fail(src, d.uri, &d, &o, "channel 1", NULL);
	vm_destroy(src);
}

/* ---- the real agent as the destination ------------------------------------ */

/*
 * RLIMIT_AS for a destination agent that must fail to map the guest's
 * RAM. kvmigd starts in about 10 MiB of address space and peaks near
 * 150 MiB while a stream arrives (a thread's stack and a malloc arena's
 * reservation), and maps a guest's RAM twice: 256 MiB lets it run and
 * answer, but not map the 2 x 256 MiB of fault_guest().
 */
#define AGENT_AS_LIMIT (256ull << 20)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1	/* the shadow memory needs terabytes of address space */
#else
#define UNDER_SANITIZER 0
#endif

/*
 * A kvmigd child. Its sockets are in /tmp: the emulated test VM
 * (tests/vmhost) shares the build dir over 9p, where a unix socket cannot
 * be bound ("cannot listen on ...: No such device or address").
 */
struct agent {
	pid_t pid;
	char ctl[108];		/* sun_path sized */
	char mig[108];
	char uri[128];
};

static struct agent agent;	/* one at a time; the teardown kills it if a test failed */

/*
 * One control request (a JSON line, tools/API.md); the reply line in
 * resp. Return: 0, or -errno.
 */
static int agent_request(const struct agent *a, const char *req, char *resp, size_t cap)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[256];
	size_t len = 0;
	int fd, n, ret = 0;

	resp[0] = 0;
	n = snprintf(line, sizeof(line), "%s\n", req);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENOSPC;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->ctl);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		ret = -errno;
		goto out;
	}
	while (!memchr(resp, '\n', len)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t got;

		if (len + 1 >= cap) {
			ret = -ENOSPC;
			break;
		}
		if (poll(&p, 1, 10000) <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		got = read(fd, resp + len, cap - 1 - len);
		if (got <= 0) {
			ret = got < 0 ? -errno : -ECONNRESET;
			break;
		}
		len += (size_t)got;
		resp[len] = 0;
	}
out:
	close(fd);
	return ret;
}

/*
 * Run build-dir/kvmigd --control ... --listen unix:... with an address
 * space of as_limit bytes (0: unlimited) and wait until it answers.
 */
static void agent_start(struct agent *a, uint64_t as_limit)
{
	char exe[PATH_MAX], bin[PATH_MAX], listen_uri[128], resp[512];
	char opt_control[] = "--control", opt_listen[] = "--listen";
	char *argv[] = { bin, opt_control, a->ctl, opt_listen, listen_uri, NULL };
	pid_t parent = getpid();
	uint64_t end;
	ssize_t n;
	char *p;
	int st;

	memset(a, 0, sizeof(*a));
	/* this binary is BUILD/tests/kvm/test_migrate; the agent BUILD/kvmigd */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		fail_msg("readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = 0;
	for (int i = 0; i < 3 && (p = strrchr(exe, '/')); i++)
		*p = 0;
	if (snprintf(bin, sizeof(bin), "%s/kvmigd", exe) >= (int)sizeof(bin))
		fail_msg("%s/kvmigd: path too long", exe);
	snprintf(a->ctl, sizeof(a->ctl), "/tmp/kvmig-test-agent-%d.ctl", (int)parent);
	snprintf(a->mig, sizeof(a->mig), "/tmp/kvmig-test-agent-%d.mig", (int)parent);
	snprintf(listen_uri, sizeof(listen_uri), "unix:%s", a->mig);
	snprintf(a->uri, sizeof(a->uri), "unix://%s", a->mig);
	if (access(bin, X_OK) < 0)
		fail_msg("%s: %s (make builds it)", bin, strerror(errno));
	unlink(a->ctl);
	unlink(a->mig);
	a->pid = fork();
	if (a->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (a->pid == 0) {
		struct rlimit rl = { .rlim_cur = as_limit, .rlim_max = as_limit };

		/* async-signal-safe calls only: the parent has threads */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(125);
		if (as_limit && setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(126);
		execv(bin, argv);
		_exit(127);
	}
	/* it listens for migrations before it serves the control socket */
	for (end = clock_now_ns() + DEADLINE_NS;;) {
		if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
			a->pid = 0;
			fail_msg("kvmigd exited before it answered (wait status 0x%x)", st);
		}
		if (agent_request(a, "{\"method\":\"agent.ping\"}", resp, sizeof(resp)) == 0 &&
		    strstr(resp, "\"ok\":true"))
			return;
		if (clock_now_ns() > end)
			fail_msg("kvmigd did not answer on %s within 120 s", a->ctl);
		usleep(10000);
	}
}

/* The agent is alive and hosts no VM (an arriving one is dropped soon after the source knows). */
static void agent_expect_no_vms(const struct agent *a)
{
	uint64_t end = clock_now_ns() + DEADLINE_NS;
	char resp[4096];

	for (;;) {
		int ret = agent_request(a, "{\"method\":\"vm.list\"}", resp, sizeof(resp));

		if (ret < 0)
			fail_msg("vm.list on the destination agent: %s", strerror(-ret));
		if (strstr(resp, "\"vms\":[]"))
			return;
		if (clock_now_ns() > end)
			fail_msg("the destination agent still has: %s", resp);
		usleep(10000);
	}
}

/* SIGKILL the agent (if it still runs), reap it, remove its sockets. Return its wait status. */
static int agent_stop(struct agent *a)
{
	int st = 0;

	if (!a->pid)
		return 0;
	kill(a->pid, SIGKILL);
	while (waitpid(a->pid, &st, 0) < 0 && errno == EINTR)
		;
	a->pid = 0;
	unlink(a->ctl);
	unlink(a->mig);
	return st;
}

static int agent_teardown(void **unused)
{
	(void)unused;
	agent_stop(&agent);
	return 0;
}

/* Faults of the destination agent (tools/kvmigd.c), a child process. */
static void test_migrate_fault_agent(void **unused)
{
	struct fault_trigger t = { .act = ACT_KILL, .bytes = 4u << 20 };
	struct migrate_opts o;
	struct vm *src;
	int st;

	(void)unused;
	src = fault_guest();
	if (UNDER_SANITIZER) {
		printf("  (no RLIMIT_AS case: a sanitizer's shadow memory needs the address "
		       "space)\n");
	} else {
		printf("  the destination agent cannot map the guest's RAM (RLIMIT_AS %llu MiB)\n",
		       AGENT_AS_LIMIT >> 20);
		agent_start(&agent, AGENT_AS_LIMIT);
		migrate_opts_defaults(&o);
		expect_fail(src, agent.uri, NULL, &o,
			    "the destination refused: cannot allocate 256 MiB of guest RAM", NULL);
		agent_expect_no_vms(&agent);
		agent_stop(&agent);
	}

	vm_destroy(src);

	/* 4 MiB sent: the 2 MiB bulk round and most of round 1 */
	printf("  the destination agent killed mid-stream (randdirty at 8x the link)\n");
	src = endless_guest();
	agent_start(&agent, 0);
	endless(&o);
	t.pid = agent.pid;
	expect_fail(src, agent.uri, NULL, &o,
		    "the destination is gone", &t);
	st = agent_stop(&agent);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	vm_destroy(src);
}

/*
 * Auto-converge that can only succeed through the throttle, at any guest
 * speed: randdirty paced to 1024 page writes/s (rate=, hot=0: spread over
 * its 1 MiB working set of 256 pages) against a link capped at 2 MiB/s
 * (512 pages/s). Unthrottled it dirties twice what the link moves, so
 * each round finds about 80% of the set dirty again: 0.4 s of sending
 * against the 100 ms allowed. The pacing is by the LAPIC timer, whose
 * ticks a napping vCPU loses: under the maximum throttle (90%) the guest
 * makes 6-22% of its rate (measured here; it is timer arithmetic, the
 * same on hardware KVM), 60-225 pages/s, well under the link, and the
 * dirty set shrinks by half or more each round. A guest or host slower
 * than the pace only dirties less.
 */
#define AC_GUEST_ARGS "workset=1M,rate=1024,hot=0"

static void ac_opts(struct migrate_opts *o, bool auto_converge)
{
	migrate_opts_defaults(o);
	o->bandwidth = 2 << 20;
	o->max_downtime_ms = 100;
	o->auto_converge = auto_converge;
	o->max_iterations = auto_converge ? 40 : 8;
	o->timeout_ms = 300000;	/* a job that hangs fails, with its reason */
}

static void test_migrate_auto_converge(void **unused)
{
	struct migrate_opts o;
	unsigned max_throttle;
	struct vm *src;
	struct dest d;

	(void)unused;
	printf("  without --auto-converge the guest outruns the link\n");
	src = kvmtest_start_vm("src", "randdirty", AC_GUEST_ARGS, 64ull << 20, 1, 0);
	kvmtest_wait(src, 2000, 0, 120, NULL);
	ac_opts(&o, false);
	dest_start(&d, false, 1);
	expect_fail(src, d.uri, &d, &o, "did not converge after 8 rounds", NULL);
	vm_destroy(src);

	printf("  with --auto-converge the throttle wins\n");
	ac_opts(&o, true);
	o.verify = true;
	max_throttle = move("randdirty", AC_GUEST_ARGS, 1, 64ull << 20, false, &o, 0);
	if (max_throttle < 20)
		fail_msg("the move completed, but the vCPU throttle was never seen engaged "
			 "(highest %u%%)", max_throttle);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);	/* the log shows where a slow run is */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_guests),
		cmocka_unit_test(test_migrate_options),
		cmocka_unit_test(test_migrate_failures),
		cmocka_unit_test(test_migrate_fault_stream),
		cmocka_unit_test_teardown(test_migrate_fault_agent, agent_teardown),
		cmocka_unit_test(test_migrate_auto_converge),
		cmocka_unit_test(test_migrate_big_guests),
	};
	char why[256];
	int ret;

	if (vm_kvm_available(why, sizeof(why)) < 0) {
		printf("SKIPPED: test_migrate needs /dev/kvm: %s\n", why);
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("KVMIG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KVMIG_TEST_FILTER"));
	if (session_table_create(&sessions) < 0)
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	session_table_destroy(sessions);
	return ret;
}
