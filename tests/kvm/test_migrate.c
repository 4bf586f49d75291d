/* SPDX-License-Identifier: MIT */
/*
 * test_migrate.c - the live-migration engine on real KVM, in one process:
 * a source VM, and a destination thread that accepts the stream on a unix
 * socket (or TCP loopback), builds the VM, starts it and confirms. After
 * each move: the destination guest continues from where the source
 * stopped (progress grows past it), memcheck reports no errors, idle's
 * ticks keep coming, and the source is paused for the caller to free.
 * Failures (no convergence, cancel, a destination that vanishes) leave the
 * source guest running with no errors. Exits 77 without /dev/kvm.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "migrate/incoming.h"
#include "migrate/migrate.h"
#include "migrate/mio.h"
#include "protocol/channel.h"
#include "tests/helpers/mdest.h"
#include "vm/vm.h"

#define DEADLINE_NS (120ull * 1000000000ull)

struct dest {
	struct channel_listener *l;
	pthread_t thread;
	struct vm *vm;
	int ret;
	bool drop;		/* close the connection after the first frames */
	unsigned channels;	/* --parallel */
	struct mdest_others *others;
	char err[512];
	char uri[160];
};

static void *dest_thread(void *arg)
{
	struct dest *d = arg;
	struct channel *ch = NULL;
	struct incoming *inc = NULL;
	struct mio io;
	char msg[256];

	d->ret = channel_accept(d->l, 30000, &ch, msg, sizeof(msg));
	if (d->ret < 0) {
		snprintf(d->err, sizeof(d->err), "accept: %s", msg);
		return NULL;
	}
	mio_channel_open(&io, ch);
	if (d->channels > 1)
		d->others = mdest_others_start(d->l, d->channels - 1);
	if (d->drop) {
		uint8_t buf[4096];
		struct frame_hdr h;

		/* read the HELLO, then vanish */
		if (mio_read_frame(&io, buf, sizeof(buf), &h, msg, sizeof(msg)) == 0)
			printf("    destination got %s and vanishes\n", frame_type_name(h.type));
		mio_close(&io);
		d->ret = -ECONNRESET;
		return NULL;
	}
	d->ret = incoming_create(&io, &io, "dst", &inc);
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

static void dest_start(struct dest *d, bool tcp, unsigned channels)
{
	char spec[128], msg[256];

	memset(d, 0, sizeof(*d));
	d->channels = channels;
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

static struct vm *start_vm(const char *guest, const char *args, uint64_t mem, unsigned vcpus,
			   uint32_t ring)
{
	struct vm_config cfg;
	struct vm *vm = NULL;
	char err[256];

	vm_config_defaults(&cfg, "src");
	cfg.mem_bytes = mem;
	cfg.vcpus = vcpus;
	cfg.dirty_ring = ring;
	snprintf(cfg.guest, sizeof(cfg.guest), "%s", guest);
	snprintf(cfg.guest_args, sizeof(cfg.guest_args), "%s", args);
	if (vm_create(&cfg, &vm, err, sizeof(err)))
		fail_msg("vm_create %s: %s", guest, err);
	assert_int_equal(vm_start(vm), 0);
	return vm;
}

static void wait_progress(struct vm *vm, uint64_t p, uint64_t t)
{
	uint64_t end = clock_now_ns() + DEADLINE_NS;
	struct vm_guest_stats st;

	for (;;) {
		vm_get_stats(vm, &st);
		if (st.progress >= p && st.ticks >= t)
			return;
		if (clock_now_ns() > end)
			fail_msg("progress %llu/%llu ticks %llu/%llu after 120 s",
				 (unsigned long long)st.progress, (unsigned long long)p,
				 (unsigned long long)st.ticks, (unsigned long long)t);
		usleep(5000);
	}
}

/* Move a running guest; check it goes on at the destination. */
static void move(const char *guest, const char *args, unsigned vcpus, uint64_t mem, bool tcp,
		 const struct migrate_opts *o, uint32_t ring)
{
	bool idle = !strcmp(guest, "idle");
	struct vm *src = start_vm(guest, args, mem, vcpus, ring);
	struct vm_guest_stats a, b;
	struct migrate_job *job;
	struct migrate_stats ms;
	struct dest d;
	char err[512];
	int ret;

	printf("  %s %s, %u vCPU(s), %llu MiB over %s\n", guest, args, vcpus,
	       (unsigned long long)(mem >> 20), tcp ? "tcp" : "unix");
	wait_progress(src, idle ? 10 : 2000, idle ? 10 : 0);
	dest_start(&d, tcp, o->parallel);
	if (migrate_start(src, d.uri, o, &job, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	ret = migrate_wait(job);
	migrate_get_stats(job, &ms);
	migrate_job_free(job);
	dest_join(&d);
	if (ret)
		fail_msg("migration failed: %s (destination: %s)", ms.error, d.err);
	assert_int_equal(d.ret, 0);
	assert_string_equal(ms.status, "completed");
	printf("    total %llu ms, downtime %llu ms, %llu rounds, %llu MiB sent, %llu zero pages\n",
	       (unsigned long long)ms.total_ms, (unsigned long long)ms.downtime_ms,
	       (unsigned long long)ms.dirty_sync_count,
	       (unsigned long long)(ms.transferred_bytes >> 20),
	       (unsigned long long)ms.duplicate_pages);
	/* the source stays paused, its counters frozen */
	assert_int_equal(vm_get_run_state(src), VM_RUN_PAUSED);
	vm_get_stats(src, &a);
	vm_destroy(src);
	/* the destination goes on from there */
	vm_get_stats(d.vm, &b);
	assert_true(b.progress >= a.progress);
	wait_progress(d.vm, a.progress + (idle ? 10 : 2000), a.ticks + (idle ? 10 : 0));
	vm_get_stats(d.vm, &b);
	assert_int_equal(b.errors, 0);
	if (o->verify)
		assert_true(ms.verified);
	vm_destroy(d.vm);
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
	move("memcheck", "workset=8M", 2, 128ull << 20, false, &o, 4096);
	/* parallel channels, each with its own compressor or XBZRLE cache */
	roomy(&o);
	o.parallel = 2;
	strcpy(o.compress, "zstd");
	move("memcheck", "workset=8M", 2, 128ull << 20, true, &o, 0);
	roomy(&o);
	o.parallel = 4;
	o.xbzrle_cache_bytes = 16 << 20;
	move("randdirty", "workset=8M", 1, 128ull << 20, false, &o, 0);
	roomy(&o);
	o.bandwidth = 64ull << 20;
	move("randdirty", "workset=8M,rate=2000", 1, 128ull << 20, false, &o, 0);
}

static void test_migrate_big_guests(void **unused)
{
	struct migrate_opts o;

	(void)unused;
	roomy(&o);
	move("memcheck", "workset=16M", 2, 1ull << 30, false, &o, 0);
	move("seqdirty", "workset=16M", 1, 4ull << 30, true, &o, 0);
}

/* A failed migration: the guest runs on at the source, unharmed. */
static void expect_fail(struct vm *src, struct dest *d, const struct migrate_opts *o,
			const char *what, bool cancel)
{
	struct migrate_job *job;
	struct migrate_stats ms;
	struct vm_guest_stats a;
	char err[512];
	int ret;

	if (migrate_start(src, d->uri, o, &job, err, sizeof(err)))
		fail_msg("migrate_start: %s", err);
	if (cancel) {
		for (uint64_t end = clock_now_ns() + DEADLINE_NS;;) {
			migrate_get_stats(job, &ms);
			if (ms.transferred_bytes > (1u << 20) || migrate_finished(job))
				break;
			assert_true(clock_now_ns() < end);
			usleep(1000);
		}
		migrate_cancel(job);
	}
	ret = migrate_wait(job);
	migrate_get_stats(job, &ms);
	migrate_job_free(job);
	dest_join(d);
	assert_true(ret < 0);
	if (!strstr(ms.error, what))
		fail_msg("expected '%s' in: %s", what, ms.error);
	assert_null(d->vm);
	assert_int_equal(vm_get_run_state(src), VM_RUN_RUNNING);
	vm_get_stats(src, &a);
	wait_progress(src, a.progress + 1000, 0);
	vm_get_stats(src, &a);
	assert_int_equal(a.errors, 0);
}

static void test_migrate_failures(void **unused)
{
	struct migrate_opts o;
	struct vm *src;
	struct dest d;

	(void)unused;
	src = start_vm("memcheck", "workset=32M", 256ull << 20, 2, 0);
	wait_progress(src, 2000, 0);
	/* no convergence: 1 MiB/s cannot keep up with a busy guest */
	migrate_opts_defaults(&o);
	o.bandwidth = 1 << 20;
	o.max_iterations = 3;
	o.max_downtime_ms = 10;
	dest_start(&d, false, 1);
	expect_fail(src, &d, &o, "did not converge", false);
	/* cancel during the bulk round */
	migrate_opts_defaults(&o);
	o.bandwidth = 4 << 20;
	dest_start(&d, false, 1);
	expect_fail(src, &d, &o, "cancelled", true);
	/* the destination vanishes mid-stream */
	migrate_opts_defaults(&o);
	dest_start(&d, true, 1);
	d.drop = true;
	expect_fail(src, &d, &o, "destination", false);
	vm_destroy(src);
}

static void test_migrate_auto_converge(void **unused)
{
	struct migrate_opts o;

	(void)unused;
	/*
	 * A guest that dirties faster than the link: only throttling makes it
	 * converge within the rounds allowed (nested emulation is slow, so the
	 * working set and budget are small).
	 */
	migrate_opts_defaults(&o);
	o.verify = true;
	o.bandwidth = 8 << 20;
	o.auto_converge = true;
	o.max_iterations = 40;
	o.max_downtime_ms = 300;
	move("seqdirty", "workset=4M", 1, 64ull << 20, false, &o, 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);	/* the log shows where a slow run is */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_guests),
		cmocka_unit_test(test_migrate_options),
		cmocka_unit_test(test_migrate_failures),
		cmocka_unit_test(test_migrate_auto_converge),
		cmocka_unit_test(test_migrate_big_guests),
	};
	char why[256];

	if (vm_kvm_available(why, sizeof(why)) < 0) {
		printf("SKIPPED: test_migrate needs /dev/kvm: %s\n", why);
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("KVMIG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KVMIG_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
