/* SPDX-License-Identifier: MIT */
/*
 * guest_abi.h - the contract between the VMM and kvmig's guest programs.
 *
 * Included by C and by the guests' assembly (only #defines here).
 *
 * Guest-physical layout (low RAM):
 *   0x001000  GDT (null, 64-bit code 0x08, data 0x10)
 *   0x002000  boot info page (BI_* offsets below), written by the VMM
 *   0x003000  per-vCPU data, 64 bytes each (tick counter at +0)
 *   0x004000  IDT, built by the guest
 *   0x010000  PML4, 0x011000 PDPT, 0x012000.. page directories (2 MiB pages)
 *   0x060000  stacks, 16 KiB per vCPU; vCPU i starts with RSP at
 *             GUEST_STACK_GPA + (i + 1) * GUEST_STACK_BYTES
 *   0x100000  guest code (at most GUEST_CODE_MAX bytes)
 *   0x200000  working set, default size min(16 MiB, RAM - 4 MiB)
 *
 * Guest-virtual addresses equal RAM offsets: the VMM maps virtual
 * [0, mem) onto low RAM and, above 3 GiB, onto the high RAM region at
 * 4 GiB, so guests see one flat range. Below 3 GiB this is an identity map.
 *
 * Entry: 64-bit mode, interrupts off, RIP = GUEST_CODE_GPA, RDI = vCPU
 * index, RSI = boot info address, RSP as above. Guests report through the
 * event port with a 32-bit OUT: bits 31..28 the event type, 27..0 its
 * argument, and print text on COM1 (0x3f8).
 */
#ifndef KVMIG_VM_GUEST_ABI_H
#define KVMIG_VM_GUEST_ABI_H

#define GUEST_GDT_GPA		0x1000
#define GUEST_BOOTINFO_GPA	0x2000
#define GUEST_PERCPU_GPA	0x3000
#define GUEST_PERCPU_BYTES	64
#define GUEST_IDT_GPA		0x4000
#define GUEST_PML4_GPA		0x10000
#define GUEST_PDPT_GPA		0x11000
#define GUEST_PD_GPA		0x12000
#define GUEST_PD_MAX		64	/* 64 GiB of guest-virtual space */
#define GUEST_STACK_GPA		0x60000
#define GUEST_STACK_BYTES	0x4000
#define GUEST_CODE_GPA		0x100000
#define GUEST_CODE_MAX		0x10000
#define GUEST_WORKSET_GPA	0x200000

#define GUEST_CS_SEL		0x08
#define GUEST_DS_SEL		0x10

/* Boot info page: little-endian 64-bit fields at these offsets. */
#define BI_MAGIC		0	/* GUEST_BI_MAGIC */
#define BI_KIND			8	/* GUEST_KIND_* */
#define BI_VCPUS		16
#define BI_MEM_BYTES		24
#define BI_WS_BASE		32	/* guest-virtual start of the working set */
#define BI_WS_BYTES		40	/* whole working set; vCPU i owns share i */
#define BI_RATE			48	/* randdirty: pages/s per VM, 0 = max */
#define BI_SEED			56
#define BI_TICK_HZ		64	/* LAPIC timer rate for idle and pacing */
#define BI_HOT_PCT		72	/* randdirty: % of writes to the hot set */
#define BI_STRIDE		80	/* memcheck: verify stride, coprime to share pages */
#define BI_SHARE_PAGES		88	/* pages per vCPU share */

#define GUEST_BI_MAGIC		0x31494247494d564bull	/* "KVMIGBI1" */

#define GUEST_KIND_IDLE		0
#define GUEST_KIND_SEQDIRTY	1
#define GUEST_KIND_RANDDIRTY	2
#define GUEST_KIND_MEMCHECK	3

#define GUEST_EVENT_PORT	0x510
#define GUEST_EV_SHIFT		28
#define GUEST_EV_ARG_MASK	0x0fffffff
#define GUEST_EV_PROGRESS	1	/* arg: work units done since the last report */
#define GUEST_EV_ERROR		2	/* arg: working-set page index that failed */
#define GUEST_EV_TICK		3	/* arg: timer ticks since the last report */
#define GUEST_EV_STARTED	4	/* arg: vCPU index */
#define GUEST_EV_FATAL		5	/* arg: exception vector; the vCPU stops */

#define GUEST_TIMER_VECTOR	0x20
#define GUEST_SPURIOUS_VECTOR	0xff

#endif
