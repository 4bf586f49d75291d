/* SPDX-License-Identifier: MIT */
/*
 * kvmtest.h - what the KVM tests share: start a VM running one of the
 * guests, and wait for its progress (and timer ticks) with a deadline that
 * re-reads the counters at each look. Nothing here depends on how fast the
 * guest runs: a wait ends when the condition holds, and fails with the
 * counters and the guest's console when the deadline passes. Test code
 * only (calls cmocka's fail_msg).
 */
#ifndef KVMIG_TESTS_KVMTEST_H
#define KVMIG_TESTS_KVMTEST_H

#include <stdint.h>

#include "dirtylog/dirtylog.h"
#include "vm/vm.h"

/*
 * Create and start VM name: guest with args, mem bytes of RAM, vcpus,
 * ring dirty-ring entries (0: none). Fails the test when KVM refuses.
 */
struct vm *kvmtest_start_vm(const char *name, const char *guest, const char *args, uint64_t mem,
			    unsigned vcpus, uint32_t ring);

/*
 * Wait until the guest's progress >= progress and ticks >= ticks, at most
 * secs seconds; harvest d (NULL: none) between looks, as a sender does.
 */
void kvmtest_wait(struct vm *vm, uint64_t progress, uint64_t ticks, unsigned secs,
		  struct dirtylog *d);

#endif
