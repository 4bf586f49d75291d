/* SPDX-License-Identifier: MIT */
/*
 * guest.h - kvmig's guest programs: names, parameters and boot layout.
 *
 * The four guests (idle, seqdirty, randdirty, memcheck) are flat binaries
 * assembled from vm/guests/ and embedded in the program. This module parses
 * a guest's parameters ("workset=16M,rate=1000,seed=7,hz=100,hot=80") and
 * writes what a fresh guest needs into RAM: its code, the GDT, the page
 * tables and the boot info page (layout in vm/guest_abi.h). Pure apart from
 * the RAM it is handed; called by the controller thread before the vCPUs run.
 */
#ifndef KVMIG_VM_GUEST_H
#define KVMIG_VM_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

struct guest_params {
	unsigned kind;		/* GUEST_KIND_* */
	uint64_t ws_off;	/* working set: RAM offset (= guest-virtual address) */
	uint64_t ws_bytes;
	uint64_t share_pages;	/* working-set pages per vCPU */
	uint64_t rate;		/* randdirty pages/s, 0 = as fast as possible */
	uint64_t seed;
	uint64_t tick_hz;
	uint64_t hot_pct;
	uint64_t stride;	/* memcheck verify stride, coprime to share_pages */
};

/* GUEST_KIND_* for a name, or -EINVAL. */
int guest_kind_by_name(const char *name) __must_check;
const char *guest_kind_name(unsigned kind);

/*
 * Parse args for guest `name` in a VM of mem_bytes and vcpus.
 * Return: 0 or -EINVAL with a message in err.
 */
int guest_parse(const char *name, const char *args, uint64_t mem_bytes, unsigned vcpus,
		struct guest_params *gp, char *err, size_t errlen) __must_check;

/*
 * Write code, GDT, page tables and boot info for a fresh guest into ram
 * (indexed by RAM offset, mem_bytes long, zero-filled).
 */
void guest_write_boot(uint8_t *ram, uint64_t mem_bytes, unsigned vcpus,
		      const struct guest_params *gp);

/* RAM offset to guest-physical address (the 3-4 GiB hole is skipped). */
uint64_t guest_ram_off_to_gpa(uint64_t off);

/* Size of the low RAM region: RAM below 3 GiB. */
uint64_t guest_low_ram_bytes(uint64_t mem_bytes);

#endif
