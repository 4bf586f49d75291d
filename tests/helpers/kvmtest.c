/* SPDX-License-Identifier: MIT */
#include "tests/helpers/kvmtest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"

struct vm *kvmtest_start_vm(const char *name, const char *guest, const char *args, uint64_t mem,
			    unsigned vcpus, uint32_t ring)
{
	struct vm_config cfg;
	struct vm *vm = NULL;
	char err[256];

	vm_config_defaults(&cfg, name);
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

void kvmtest_wait(struct vm *vm, uint64_t progress, uint64_t ticks, unsigned secs,
		  struct dirtylog *d)
{
	uint64_t end = clock_now_ns() + (uint64_t)secs * 1000000000ull;
	struct vm_guest_stats st;

	for (;;) {
		vm_get_stats(vm, &st);
		if (st.progress >= progress && st.ticks >= ticks)
			return;
		if (clock_now_ns() > end) {
			char con[512];

			vm_console_read(vm, con, sizeof(con));
			fail_msg("guest %s: progress %llu/%llu ticks %llu/%llu after %u s; console: %s",
				 vm_get_config(vm)->guest, (unsigned long long)st.progress,
				 (unsigned long long)progress, (unsigned long long)st.ticks,
				 (unsigned long long)ticks, secs, con);
		}
		if (d)
			dirtylog_poll(d);
		usleep(d ? 1000 : 5000);
	}
}
