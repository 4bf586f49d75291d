/* SPDX-License-Identifier: MIT */
/*
 * test_vm.c - the VMM on real KVM: every guest runs and makes progress on
 * 1 and 2 vCPUs; memcheck reports no errors on its own and catches a
 * flipped byte and a page that went back a generation; pause stops the
 * guest and resume restarts it; a snapshot restored in the same process
 * continues where it stopped (progress, ticks, zero errors) for 64 MiB and
 * 4 GiB guests, and a VM's dirty ring comes back with it. Exits 77 (skipped) without /dev/kvm.
 *
 * Waiting is always for a condition (progress reached, errors seen) with a
 * deadline; guest speed varies a lot between hosts, so nothing is timed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "dirtylog/dirtylog.h"
#include "vm/guest_abi.h"
#include "migrate/snapshot.h"
#include "tests/helpers/kvmtest.h"
#include "vm/vm.h"

#define DEADLINE_NS (60ull * 1000000000ull)

static void stats(struct vm *vm, struct vm_guest_stats *st)
{
	vm_get_stats(vm, st);
}

static void wait_errors(struct vm *vm)
{
	uint64_t end = clock_now_ns() + DEADLINE_NS;
	struct vm_guest_stats st;

	for (;;) {
		stats(vm, &st);
		if (st.errors > 0)
			return;
		if (clock_now_ns() > end)
			fail_msg("memcheck did not notice the corruption within 60 s");
		usleep(5000);
	}
}

static void run_guest(const char *guest, unsigned vcpus)
{
	printf("  %s on %u vCPU(s)\n", guest, vcpus);
	struct vm *vm = kvmtest_start_vm("t", guest, "workset=2M", 64ull << 20, vcpus, 0);
	bool idle = !strcmp(guest, "idle");
	struct vm_guest_stats st;
	static char con[VM_CONSOLE_BYTES + 1];

	kvmtest_wait(vm, idle ? 20 : 2000, idle ? 20 : 0, 60, NULL);
	stats(vm, &st);
	assert_int_equal(st.errors, 0);
	vm_console_read(vm, con, sizeof(con));
	assert_non_null(strstr(con, "kvmig guest"));
	assert_non_null(strstr(con, guest));
	vm_destroy(vm);
}

static void test_vm_guests_1vcpu(void **unused)
{
	(void)unused;
	run_guest("idle", 1);
	run_guest("seqdirty", 1);
	run_guest("randdirty", 1);
	run_guest("memcheck", 1);
}

static void test_vm_guests_2vcpu(void **unused)
{
	(void)unused;
	run_guest("idle", 2);
	run_guest("seqdirty", 2);
	run_guest("randdirty", 2);
	run_guest("memcheck", 2);
}

static void test_vm_randdirty_rate(void **unused)
{
	struct vm *vm = kvmtest_start_vm("t", "randdirty", "workset=2M,rate=500", 64ull << 20, 1, 0);
	struct vm_guest_stats st;

	(void)unused;
	/* paced by the timer: ticks come and writes keep going */
	kvmtest_wait(vm, 300, 20, 60, NULL);
	stats(vm, &st);
	assert_int_equal(st.errors, 0);
	vm_destroy(vm);
}

/* 1 MiB working set = 256 pages; one generation is 256 writes + 256 verifies. */
#define MC_PAGES 256

static void test_vm_memcheck_catches_flip(void **unused)
{
	struct vm *vm = kvmtest_start_vm("t", "memcheck", "workset=1M", 64ull << 20, 1, 0);
	uint64_t off, bytes;
	struct vm_guest_stats st;
	uint8_t *page;

	(void)unused;
	vm_workset(vm, &off, &bytes);
	assert_int_equal(bytes, MC_PAGES * 4096);
	kvmtest_wait(vm, 4 * MC_PAGES, 0, 60, NULL); /* every page written at least once */
	stats(vm, &st);
	assert_int_equal(st.errors, 0);
	page = vm_ram(vm) + off + 77 * 4096;
	page[2001] ^= 0x04; /* one bit of one byte in the body */
	wait_errors(vm);
	stats(vm, &st);
	assert_true(st.errors > 0);
	assert_int_equal(st.last_error_gfn, 77);
	vm_destroy(vm);
}

static void test_vm_memcheck_catches_stale_page(void **unused)
{
	struct vm *vm = kvmtest_start_vm("t", "memcheck", "workset=1M", 64ull << 20, 1, 0);
	static uint8_t old[4096];
	uint64_t off, bytes, gen;
	struct vm_guest_stats st;
	uint8_t *page;

	(void)unused;
	vm_workset(vm, &off, &bytes);
	kvmtest_wait(vm, 4 * MC_PAGES, 0, 60, NULL);
	page = vm_ram(vm) + off + 10 * 4096;
	memcpy(old, page, sizeof(old));
	memcpy(&gen, old + 8, 8);
	/* wait until the guest wrote a newer generation of that page */
	for (uint64_t end = clock_now_ns() + DEADLINE_NS;;) {
		uint64_t g;

		memcpy(&g, page + 8, 8);
		if (g > gen)
			break;
		if (clock_now_ns() > end)
			fail_msg("memcheck never rewrote page 10");
		usleep(5000);
	}
	stats(vm, &st);
	assert_int_equal(st.errors, 0);
	memcpy(page, old, sizeof(old)); /* the page goes back in time, self-consistent */
	wait_errors(vm);
	vm_destroy(vm);
}

static void test_vm_pause_resume(void **unused)
{
	struct vm *vm = kvmtest_start_vm("t", "seqdirty", "workset=2M", 64ull << 20, 2, 0);
	struct vm_guest_stats a, b;
	struct vm_pause_stats ps;
	uint64_t lat;

	(void)unused;
	kvmtest_wait(vm, 1000, 0, 60, NULL);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(vm_pause(vm, &lat), 0);
		assert_int_equal(vm_get_run_state(vm), VM_RUN_PAUSED);
		stats(vm, &a);
		usleep(20000); /* a paused guest must not move, however long we look */
		stats(vm, &b);
		assert_int_equal(a.progress, b.progress);
		assert_int_equal(vm_resume(vm), 0);
		kvmtest_wait(vm, b.progress + 256, 0, 60, NULL);
	}
	vm_get_pause_stats(vm, &ps);
	assert_int_equal(ps.count, 20);
	assert_true(ps.max_ns > 0);
	printf("pause latency: last %llu us, max %llu us, mean %llu us\n",
	       (unsigned long long)ps.last_ns / 1000, (unsigned long long)ps.max_ns / 1000,
	       (unsigned long long)(ps.total_ns / ps.count / 1000));
	vm_destroy(vm);
}

static void save_restore(const char *guest, unsigned vcpus, uint64_t mem)
{
	char path[] = "/tmp/kvmig-test-snap-XXXXXX", err[256];
	bool idle = !strcmp(guest, "idle");
	struct vm *vm = kvmtest_start_vm("t", guest, "workset=2M", mem, vcpus, 0);
	struct vm_guest_stats before, after;
	struct snapshot_stats ss;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	kvmtest_wait(vm, idle ? 10 : 1000, idle ? 10 : 0, 60, NULL);
	assert_int_equal(vm_pause(vm, NULL), 0);
	stats(vm, &before);
	if (snapshot_save(vm, path, &ss, err, sizeof(err)))
		fail_msg("save %s: %s", guest, err);
	assert_int_equal(vm_get_run_state(vm), VM_RUN_PAUSED);
	vm_destroy(vm);
	/* untouched RAM is not written page by page */
	assert_true(ss.file_bytes < (8ull << 20) + 2 * 1024 * 1024);
	assert_true(ss.ram_pages > 0);
	vm = NULL;
	if (snapshot_restore(path, "restored", &vm, &ss, err, sizeof(err)))
		fail_msg("restore %s: %s", guest, err);
	stats(vm, &after);
	/* the counters moved with the state... */
	assert_int_equal(after.progress, before.progress);
	assert_int_equal(after.ticks, before.ticks);
	assert_int_equal(vm_start(vm), 0);
	/* ...and the guest goes on from there, not from zero */
	kvmtest_wait(vm, after.progress + (idle ? 10 : 1000), after.ticks + (idle ? 10 : 0), 60, NULL);
	stats(vm, &after);
	assert_int_equal(after.errors, 0);
	assert_string_equal(vm_get_config(vm)->name, "restored");
	vm_destroy(vm);
	unlink(path);
}

static void test_vm_save_restore_64m(void **unused)
{
	(void)unused;
	save_restore("idle", 1, 64ull << 20);
	save_restore("idle", 2, 64ull << 20);
	save_restore("seqdirty", 1, 64ull << 20);
	save_restore("randdirty", 2, 64ull << 20);
	save_restore("memcheck", 1, 64ull << 20);
	save_restore("memcheck", 2, 64ull << 20);
}

static void test_vm_save_restore_4g(void **unused)
{
	(void)unused;
	save_restore("memcheck", 2, 4ull << 30);
	save_restore("idle", 1, 4ull << 30);
}

/*
 * The dirty ring is the VM's: a snapshot of a VM started with one restores
 * with the same ring, and ring tracking works on the restored VM (its sync
 * sees the guest's writes, or reports an overflow with every bit set).
 */
static void test_vm_save_restore_dirty_ring(void **unused)
{
	char path[] = "/tmp/kvmig-test-snap-XXXXXX", err[256];
	struct vm_config cfg;
	struct vm *vm = NULL;
	struct vm_guest_stats before, after;
	struct snapshot_stats ss;
	struct dirtylog *d;
	uint64_t npages, *bm, set = 0;
	size_t words;
	int fd = mkstemp(path);
	long n;

	(void)unused;
	assert_true(fd >= 0);
	close(fd);
	vm_config_defaults(&cfg, "ringed");
	cfg.vcpus = 2;
	cfg.dirty_ring = 4096;
	snprintf(cfg.guest, sizeof(cfg.guest), "memcheck");
	snprintf(cfg.guest_args, sizeof(cfg.guest_args), "workset=2M");
	if (vm_create(&cfg, &vm, err, sizeof(err)))
		fail_msg("vm_create with a dirty ring: %s", err);
	assert_int_equal(vm_start(vm), 0);
	kvmtest_wait(vm, 1000, 0, 60, NULL);
	assert_int_equal(vm_pause(vm, NULL), 0);
	stats(vm, &before);
	if (snapshot_save(vm, path, &ss, err, sizeof(err)))
		fail_msg("save: %s", err);
	vm_destroy(vm);
	vm = NULL;
	if (snapshot_restore(path, "ringed2", &vm, &ss, err, sizeof(err)))
		fail_msg("restore: %s", err);
	assert_int_equal(vm_get_config(vm)->dirty_ring, 4096);
	assert_int_equal(vm_start(vm), 0);
	if (dirtylog_start(vm, DIRTYLOG_RING, &d, err, sizeof(err)))
		fail_msg("ring tracking on the restored VM: %s", err);
	npages = vm_ram_bytes(vm) / 4096;
	words = bitmap_words(npages);
	bm = calloc(words, 8);
	assert_non_null(bm);
	n = dirtylog_sync(d, bm);
	assert_true(n >= 0 || n == -EOVERFLOW);
	memset(bm, 0, words * 8);
	kvmtest_wait(vm, before.progress + 1000, 0, 60, NULL);
	n = dirtylog_sync(d, bm);
	for (size_t i = 0; i < words; i++)
		set += (uint64_t)__builtin_popcountll(bm[i]);
	printf("restored ring: sync %ld, %llu pages dirty\n", n, (unsigned long long)set);
	assert_true(n == -EOVERFLOW ? set == npages : n > 0 && set > 0);
	dirtylog_stop(d);
	stats(vm, &after);
	assert_true(after.progress > before.progress);
	assert_int_equal(after.errors, 0);
	free(bm);
	vm_destroy(vm);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_guests_1vcpu),
		cmocka_unit_test(test_vm_guests_2vcpu),
		cmocka_unit_test(test_vm_randdirty_rate),
		cmocka_unit_test(test_vm_memcheck_catches_flip),
		cmocka_unit_test(test_vm_memcheck_catches_stale_page),
		cmocka_unit_test(test_vm_pause_resume),
		cmocka_unit_test(test_vm_save_restore_64m),
		cmocka_unit_test(test_vm_save_restore_4g),
		cmocka_unit_test(test_vm_save_restore_dirty_ring),
	};
	char why[256];

	if (vm_kvm_available(why, sizeof(why)) < 0) {
		printf("SKIPPED: test_vm needs /dev/kvm: %s\n", why);
		return 77;
	}
	if (getenv("KVMIG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KVMIG_TEST_FILTER"));
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
