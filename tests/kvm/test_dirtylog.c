/* SPDX-License-Identifier: MIT */
/*
 * test_dirtylog.c - dirty tracking on real KVM against a running guest:
 * pages the guest writes after a clear show up in the next sync (bitmap
 * and ring); no page whose content changed since the last sync is ever
 * missing from the bitmap (shadow copy, checked with the guest paused at
 * every sync, as dirty_log_test does); a tiny ring either tracks every
 * write or reports the overflow with every bit set, and the guest makes
 * progress either way; switching logging on and off under a busy 2-vCPU
 * guest never disturbs it. Hosts differ (kvm_pvm logs one ring entry per
 * guest store and overflows small rings; hardware KVM logs once per page):
 * the tests accept each documented behaviour, name the one they saw, and
 * never depend on the guest's speed. Exits 77 without /dev/kvm.
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
#include "tests/helpers/kvmtest.h"
#include "vm/vm.h"

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
	struct vm *vm = kvmtest_start_vm("dl", "seqdirty", "workset=1M", 64ull << 20, 1, ring);
	uint64_t npages = vm_ram_bytes(vm) / 4096, ws_off, ws_bytes;
	size_t words = bitmap_words(npages);
	uint64_t *bm = calloc(words, 8);
	struct vm_guest_stats st;
	struct dirtylog *d;
	char err[256];

	vm_workset(vm, &ws_off, &ws_bytes);
	kvmtest_wait(vm, 256, 0, 60, NULL);
	if (dirtylog_start(vm, b, &d, err, sizeof(err)))
		fail_msg("dirtylog_start: %s", err);
	/* the caller's bulk pass: clear everything */
	assert_int_equal(dirtylog_clear(d, NULL, 0, npages), 0);
	assert_true(dirtylog_sync(d, bm) >= 0);
	memset(bm, 0, words * 8);
	vm_get_stats(vm, &st);
	kvmtest_wait(vm, st.progress + 3 * 256, 0, 60, NULL); /* three passes over the working set */
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

/*
 * A 256-entry ring under seqdirty, which writes far more pages than that
 * between two syncs. A KVM that logs a page once per reset (hardware KVM)
 * may keep up when harvested often; one that logs every store (kvm_pvm)
 * wraps the ring. Either is fine, as long as: the guest makes progress
 * while tracked (a full ring never stalls it); each sync either holds every
 * page written since the previous one or returns -EOVERFLOW with every bit
 * set; and the guest runs on once tracking stops.
 */
static void test_dirtylog_tiny_ring_tracks_or_overflows(void **unused)
{
	struct vm *vm = kvmtest_start_vm("dl", "seqdirty", "workset=8M", 64ull << 20, 1, 256);
	uint64_t npages = vm_ram_bytes(vm) / 4096, ws_off, ws_bytes;
	size_t words = bitmap_words(npages);
	uint64_t *bm = calloc(words, 8);
	unsigned tracked = 0, overflowed = 0;
	struct vm_guest_stats st;
	struct dirtylog *d;
	char err[256];
	long n;

	(void)unused;
	vm_workset(vm, &ws_off, &ws_bytes);
	kvmtest_wait(vm, 256, 0, 60, NULL);
	if (dirtylog_start(vm, DIRTYLOG_RING, &d, err, sizeof(err)))
		fail_msg("dirtylog_start: %s", err);
	n = dirtylog_sync(d, bm);
	assert_true(n >= 0 || n == -EOVERFLOW);
	for (int i = 0; i < 8; i++) {
		memset(bm, 0, words * 8);
		vm_get_stats(vm, &st);
		/* two passes over the working set: every page written after the sync */
		kvmtest_wait(vm, st.progress + 2 * ws_bytes / 4096, 0, 60, d);
		n = dirtylog_sync(d, bm);
		if (n == -EOVERFLOW) {
			/* the dirty set is unknown: every page is marked */
			assert_int_equal(popcount(bm, words), npages);
			overflowed++;
			continue;
		}
		assert_true(n >= 0);
		for (uint64_t p = ws_off / 4096; p < (ws_off + ws_bytes) / 4096; p++)
			if (!(bm[p / 64] & (1ull << (p % 64))))
				fail_msg("sync %d: page %llu was written but is neither dirty nor "
					 "reported as an overflow", i, (unsigned long long)p);
		tracked++;
	}
	printf("  host behaviour: a 256-entry ring %s: %u of 8 syncs tracked every write, "
	       "%u reported an overflow (%llu overflowing harvests)\n",
	       overflowed ? "overflows here" : "keeps up here", tracked, overflowed,
	       (unsigned long long)dirtylog_overflows(d));
	assert_int_equal(tracked + overflowed, 8);
	if (overflowed)
		assert_true(dirtylog_overflows(d) >= overflowed);
	dirtylog_stop(d);
	/* the guest went on */
	vm_get_stats(vm, &st);
	kvmtest_wait(vm, st.progress + 256, 0, 60, NULL);
	assert_int_equal(vm_dead_vcpus(vm), 0);
	vm_destroy(vm);
	free(bm);
}

static void test_dirtylog_toggling_keeps_guest_sane(void **unused)
{
	struct vm *vm = kvmtest_start_vm("dl", "memcheck", "workset=8M", 64ull << 20, 2, 0);
	uint64_t npages = vm_ram_bytes(vm) / 4096;
	uint64_t *bm = calloc(bitmap_words(npages), 8);
	struct vm_guest_stats st;
	char err[256];

	(void)unused;
	kvmtest_wait(vm, 4096, 0, 60, NULL);
	for (int i = 0; i < 30; i++) {
		struct dirtylog *d;

		if (dirtylog_start(vm, DIRTYLOG_BITMAP, &d, err, sizeof(err)))
			fail_msg("dirtylog_start: %s", err);
		for (uint64_t c = 0; c < npages; c += 16384)
			assert_int_equal(dirtylog_clear(d, NULL, c, MIN(16384, npages - c)), 0);
		assert_true(dirtylog_sync(d, bm) >= 0);
		vm_get_stats(vm, &st);
		kvmtest_wait(vm, st.progress + 512, 0, 60, NULL);
		dirtylog_stop(d);
	}
	vm_get_stats(vm, &st);
	kvmtest_wait(vm, st.progress + 4096, 0, 60, NULL);
	vm_get_stats(vm, &st);
	assert_int_equal(st.errors, 0);
	assert_int_equal(vm_get_run_state(vm), VM_RUN_RUNNING);
	vm_destroy(vm);
	free(bm);
}

/*
 * The migration protocol without the network, checked as dirty_log_test
 * does: copy RAM into a shadow in rounds (per chunk: clear, copy the dirty
 * pages), let the guest run while harvesting as the sender does, pause,
 * sync, and check that every page whose content differs from the shadow
 * has its bit set; a ring that overflowed must say so with every bit set.
 * Resume, next round; after the last, copy the rest and compare all RAM.
 * A write the log missed is a page that differs with its bit clear.
 */
static void shadow_copy(enum dirtylog_backend b, uint32_t ring, const char *guest,
			const char *args)
{
	struct vm *vm = kvmtest_start_vm("dl", guest, args, 64ull << 20, 2, ring);
	uint64_t npages = vm_ram_bytes(vm) / 4096;
	size_t words = bitmap_words(npages);
	uint64_t *bm = calloc(words, 8);
	uint8_t *shadow = calloc(npages, 4096);
	const uint8_t *ram = vm_ram(vm);
	unsigned overflowed = 0;
	struct vm_guest_stats st;
	struct dirtylog *d;
	uint64_t bad = 0;
	char err[256];
	long n;

	kvmtest_wait(vm, 2048, 0, 60, NULL);
	if (dirtylog_start(vm, b, &d, err, sizeof(err)))
		fail_msg("dirtylog_start: %s", err);
	memset(bm, 0xff, words * 8);
	for (int round = 0; round < 8; round++) {
		for (uint64_t c = 0; c < npages; c += 4096) {
			uint64_t cn = MIN(4096, npages - c);

			assert_int_equal(dirtylog_clear(d, round ? bm : NULL, c, cn), 0);
			for (uint64_t p = c; p < c + cn; p++) {
				if (bm[p / 64] & (1ull << (p % 64))) {
					memcpy(shadow + p * 4096, ram + p * 4096, 4096);
					bm[p / 64] &= ~(1ull << (p % 64));
				}
			}
			dirtylog_poll(d);
		}
		vm_get_stats(vm, &st);
		kvmtest_wait(vm, st.progress + 512, 0, 60, d);
		assert_int_equal(vm_pause(vm, NULL), 0);
		n = dirtylog_sync(d, bm);
		if (n == -EOVERFLOW) {
			assert_int_equal(popcount(bm, words), npages);
			overflowed++;
		} else {
			assert_true(n >= 0);
		}
		for (uint64_t p = 0; p < npages; p++) {
			if (!(bm[p / 64] & (1ull << (p % 64))) &&
			    memcmp(shadow + p * 4096, ram + p * 4096, 4096)) {
				if (bad < 5)
					printf("  %s: round %d: page %llu changed, bit clear\n",
					       dirtylog_backend_name(b), round,
					       (unsigned long long)p);
				bad++;
			}
		}
		assert_int_equal(vm_resume(vm), 0);
	}
	assert_int_equal(vm_pause(vm, NULL), 0);
	n = dirtylog_sync(d, bm);
	assert_true(n >= 0 || n == -EOVERFLOW);
	for (uint64_t p = 0; p < npages; p++)
		if (bm[p / 64] & (1ull << (p % 64)))
			memcpy(shadow + p * 4096, ram + p * 4096, 4096);
	for (uint64_t p = 0; p < npages; p++) {
		if (memcmp(shadow + p * 4096, ram + p * 4096, 4096)) {
			if (bad < 5)
				printf("  %s: page %llu differs at the end\n",
				       dirtylog_backend_name(b), (unsigned long long)p);
			bad++;
		}
	}
	vm_get_stats(vm, &st);
	if (ring)
		printf("  host behaviour: %s with a %u-entry ring: %u of 8 syncs overflowed\n",
		       guest, ring, overflowed);
	else
		assert_int_equal(overflowed, 0);	/* only a ring overflows */
	assert_int_equal(st.errors, 0);
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

/* The smallest ring, where kvm_pvm wraps it at once: still no page missing. */
static void test_dirtylog_tiny_ring_shadow_copy(void **unused)
{
	(void)unused;
	shadow_copy(DIRTYLOG_RING, 256, "randdirty", "workset=4M");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirtylog_bitmap_sees_writes),
		cmocka_unit_test(test_dirtylog_ring_sees_writes),
		cmocka_unit_test(test_dirtylog_tiny_ring_tracks_or_overflows),
		cmocka_unit_test(test_dirtylog_toggling_keeps_guest_sane),
		cmocka_unit_test(test_dirtylog_bitmap_shadow_copy),
		cmocka_unit_test(test_dirtylog_ring_shadow_copy),
		cmocka_unit_test(test_dirtylog_tiny_ring_shadow_copy),
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
