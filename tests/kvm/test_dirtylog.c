/* SPDX-License-Identifier: MIT */
/*
 * test_dirtylog.c - dirty tracking on real KVM against a running guest:
 * pages the guest writes after a clear show up in the next sync (bitmap
 * and ring), a tiny ring overflows and says so, and switching logging on
 * and off under a busy 2-vCPU guest never disturbs it (no exception, no
 * self-check error). Exits 77 without /dev/kvm.
 */
#include <errno.h>
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
#include "dirtylog/dirtylog.h"
#include "vm/vm.h"

static struct vm *start_vm(const char *guest, const char *args, unsigned vcpus, uint32_t ring)
{
	struct vm_config cfg;
	struct vm *vm = NULL;
	char err[256];

	vm_config_defaults(&cfg, "dl");
	cfg.mem_bytes = 64ull << 20;
	cfg.vcpus = vcpus;
	cfg.dirty_ring = ring;
	snprintf(cfg.guest, sizeof(cfg.guest), "%s", guest);
	snprintf(cfg.guest_args, sizeof(cfg.guest_args), "%s", args);
	if (vm_create(&cfg, &vm, err, sizeof(err)))
		fail_msg("vm_create: %s", err);
	assert_int_equal(vm_start(vm), 0);
	return vm;
}

static void wait_progress(struct vm *vm, uint64_t p)
{
	uint64_t end = clock_now_ns() + 60000000000ull;
	struct vm_guest_stats st;

	for (;;) {
		vm_get_stats(vm, &st);
		if (st.progress >= p)
			return;
		if (clock_now_ns() > end)
			fail_msg("no progress: %llu of %llu", (unsigned long long)st.progress,
				 (unsigned long long)p);
		usleep(2000);
	}
}

static uint64_t popcount(const uint64_t *bm, size_t words)
{
	uint64_t n = 0;

	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/* seqdirty writes every page of its 1 MiB working set: all must show up. */
static void sees_writes(enum dirtylog_backend b, uint32_t ring)
{
	struct vm *vm = start_vm("seqdirty", "workset=1M", 1, ring);
	uint64_t npages = vm_ram_bytes(vm) / 4096, ws_off, ws_bytes;
	size_t words = dirtylog_bitmap_words(npages);
	uint64_t *bm = calloc(words, 8);
	struct vm_guest_stats st;
	struct dirtylog *d;
	char err[256];

	vm_workset(vm, &ws_off, &ws_bytes);
	wait_progress(vm, 256);
	if (dirtylog_start(vm, b, &d, err, sizeof(err)))
		fail_msg("dirtylog_start: %s", err);
	/* the caller's bulk pass: clear everything */
	assert_int_equal(dirtylog_clear(d, NULL, 0, npages), 0);
	assert_true(dirtylog_sync(d, bm) >= 0);
	memset(bm, 0, words * 8);
	vm_get_stats(vm, &st);
	wait_progress(vm, st.progress + 3 * 256); /* three passes over the working set */
	assert_true(dirtylog_sync(d, bm) >= 0);
	for (uint64_t p = ws_off / 4096; p < (ws_off + ws_bytes) / 4096; p++)
		if (!(bm[p / 64] & (1ull << (p % 64))))
			fail_msg("%s: page %llu was written but is not dirty",
				 dirtylog_backend_name(b), (unsigned long long)p);
	/* and little else: code, stacks and a few tables at most */
	assert_true(popcount(bm, words) < ws_bytes / 4096 + 64);
	dirtylog_stop(d);
	vm_destroy(vm);
	free(bm);
}

static void test_dirtylog_bitmap_sees_writes(void **unused)
{
	(void)unused;
	sees_writes(DIRTYLOG_BITMAP, 0);
}

static void test_dirtylog_ring_sees_writes(void **unused)
{
	(void)unused;
	sees_writes(DIRTYLOG_RING, 4096);
}

static void test_dirtylog_tiny_ring_overflows(void **unused)
{
	struct vm *vm = start_vm("seqdirty", "workset=8M", 1, 256);
	uint64_t npages = vm_ram_bytes(vm) / 4096;
	uint64_t *bm = calloc(dirtylog_bitmap_words(npages), 8);
	struct vm_guest_stats st;
	struct dirtylog *d;
	char err[256];
	long n = 0;

	(void)unused;
	if (dirtylog_start(vm, DIRTYLOG_RING, &d, err, sizeof(err)))
		fail_msg("dirtylog_start: %s", err);
	vm_get_stats(vm, &st);
	wait_progress(vm, st.progress + 4096); /* far more writes than 256 entries */
	for (int i = 0; i < 100 && n != -EOVERFLOW; i++) {
		n = dirtylog_sync(d, bm);
		vm_get_stats(vm, &st);
		wait_progress(vm, st.progress + 2048);
	}
	assert_int_equal(n, -EOVERFLOW);
	/* the dirty set is unknown: every page is marked */
	assert_int_equal(popcount(bm, dirtylog_bitmap_words(npages)), npages);
	assert_true(dirtylog_overflows(d) > 0);
	dirtylog_stop(d);
	/* the guest went on */
	vm_get_stats(vm, &st);
	wait_progress(vm, st.progress + 256);
	vm_destroy(vm);
	free(bm);
}

static void test_dirtylog_toggling_keeps_guest_sane(void **unused)
{
	struct vm *vm = start_vm("memcheck", "workset=8M", 2, 0);
	uint64_t npages = vm_ram_bytes(vm) / 4096;
	uint64_t *bm = calloc(dirtylog_bitmap_words(npages), 8);
	struct vm_guest_stats st;
	char err[256];

	(void)unused;
	wait_progress(vm, 4096);
	for (int i = 0; i < 30; i++) {
		struct dirtylog *d;

		if (dirtylog_start(vm, DIRTYLOG_BITMAP, &d, err, sizeof(err)))
			fail_msg("dirtylog_start: %s", err);
		for (uint64_t c = 0; c < npages; c += 16384)
			assert_int_equal(dirtylog_clear(d, NULL, c, MIN(16384, npages - c)), 0);
		assert_true(dirtylog_sync(d, bm) >= 0);
		vm_get_stats(vm, &st);
		wait_progress(vm, st.progress + 512);
		dirtylog_stop(d);
	}
	vm_get_stats(vm, &st);
	wait_progress(vm, st.progress + 4096);
	vm_get_stats(vm, &st);
	assert_int_equal(st.errors, 0);
	assert_int_equal(vm_get_run_state(vm), VM_RUN_RUNNING);
	vm_destroy(vm);
	free(bm);
}

/*
 * The migration protocol without the network, as dirty_log_test does it:
 * copy RAM into a shadow in rounds (sync, then per chunk: clear, copy),
 * pause, sync, copy the rest, and compare every page with the guest's.
 * A write the log missed leaves a page that differs.
 */
static void shadow_copy(enum dirtylog_backend b, uint32_t ring, const char *guest,
			const char *args)
{
	struct vm *vm = start_vm(guest, args, 2, ring);
	uint64_t npages = vm_ram_bytes(vm) / 4096;
	size_t words = dirtylog_bitmap_words(npages);
	uint64_t *bm = calloc(words, 8);
	uint8_t *shadow = calloc(npages, 4096);
	const uint8_t *ram = vm_ram(vm);
	struct vm_guest_stats st;
	struct dirtylog *d;
	uint64_t bad = 0;
	char err[256];

	wait_progress(vm, 2048);
	if (dirtylog_start(vm, b, &d, err, sizeof(err)))
		fail_msg("dirtylog_start: %s", err);
	memset(bm, 0xff, words * 8);
	for (int round = 0; round < 8; round++) {
		for (uint64_t c = 0; c < npages; c += 4096) {
			uint64_t n = MIN(4096, npages - c);

			assert_int_equal(dirtylog_clear(d, round ? bm : NULL, c, n), 0);
			for (uint64_t p = c; p < c + n; p++) {
				if (bm[p / 64] & (1ull << (p % 64))) {
					memcpy(shadow + p * 4096, ram + p * 4096, 4096);
					bm[p / 64] &= ~(1ull << (p % 64));
				}
			}
		}
		vm_get_stats(vm, &st);
		wait_progress(vm, st.progress + 512);
		assert_true(dirtylog_sync(d, bm) >= 0);
	}
	assert_int_equal(vm_pause(vm, NULL), 0);
	assert_true(dirtylog_sync(d, bm) >= 0);
	for (uint64_t p = 0; p < npages; p++)
		if (bm[p / 64] & (1ull << (p % 64)))
			memcpy(shadow + p * 4096, ram + p * 4096, 4096);
	for (uint64_t p = 0; p < npages; p++) {
		if (memcmp(shadow + p * 4096, ram + p * 4096, 4096)) {
			if (bad < 5)
				printf("  %s: page %llu differs\n", dirtylog_backend_name(b),
				       (unsigned long long)p);
			bad++;
		}
	}
	dirtylog_stop(d);
	vm_destroy(vm);
	free(bm);
	free(shadow);
	if (bad)
		fail_msg("%s/%s: %llu pages were written but never reported dirty",
			 dirtylog_backend_name(b), guest, (unsigned long long)bad);
}

static void test_dirtylog_bitmap_shadow_copy(void **unused)
{
	(void)unused;
	shadow_copy(DIRTYLOG_BITMAP, 0, "randdirty", "workset=4M");
	shadow_copy(DIRTYLOG_BITMAP, 0, "memcheck", "workset=4M");
}

static void test_dirtylog_ring_shadow_copy(void **unused)
{
	(void)unused;
	shadow_copy(DIRTYLOG_RING, 4096, "randdirty", "workset=4M");
	shadow_copy(DIRTYLOG_RING, 4096, "memcheck", "workset=4M");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirtylog_bitmap_sees_writes),
		cmocka_unit_test(test_dirtylog_ring_sees_writes),
		cmocka_unit_test(test_dirtylog_tiny_ring_overflows),
		cmocka_unit_test(test_dirtylog_toggling_keeps_guest_sane),
		cmocka_unit_test(test_dirtylog_bitmap_shadow_copy),
		cmocka_unit_test(test_dirtylog_ring_shadow_copy),
	};
	char why[256];

	if (vm_kvm_available(why, sizeof(why)) < 0) {
		printf("SKIPPED: test_dirtylog needs /dev/kvm: %s\n", why);
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("KVMIG_TEST_FILTER"))
		cmocka_set_test_filter(getenv("KVMIG_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
