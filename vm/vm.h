/* SPDX-License-Identifier: MIT */
/*
 * vm.h - the VMM: one KVM virtual machine running one of kvmig's guests.
 *
 * A struct vm owns: guest RAM (a memfd mapped twice: the memory-slot view
 * KVM uses and the VMM's own alias), the KVM VM fd with its in-kernel
 * irqchip and PIT, one thread per vCPU, and the device models (a 16550
 * UART on COM1 whose output goes to a bounded console buffer, the guest
 * event port, and a NIC identity: a MAC).
 *
 * Life cycle: vm_create() builds a VM from a config and loads the guest
 * program; vm_start() starts the vCPU threads; vm_pause()/vm_resume() stop
 * and restart every vCPU (pause latency is measured); vm_destroy() stops
 * the threads and frees everything. State capture for save and migration
 * lives in vm/state.h.
 *
 * A VM that arrives (restore, migration) is built in two steps, so that
 * the slow one can run before the state exists: vm_prepare() needs only
 * the configuration and the RAM (KVM VM, irqchip, PIT, memory slots, vCPU
 * fds, and the vCPU threads, started but parked before their first
 * KVM_RUN); vm_load_state() then loads the captured state in KVM's order
 * (../shared/kvm-notes.md; the vCPUs exist already, which KVM accepts) and
 * leaves the VM CREATED, ready for vm_start(). vm_create_from_state() is
 * the two in a row.
 *
 * Threads: the control functions are called from one controller thread
 * (the agent serializes requests); vCPU threads only run KVM_RUN and the
 * device models. Counters read by vm_get_stats() are atomics.
 */
#ifndef KVMIG_VM_VM_H
#define KVMIG_VM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define VM_NAME_MAX 64
#define VM_GUEST_NAME_MAX 16
#define VM_GUEST_ARGS_MAX 256
#define VM_MIN_MEM_BYTES (16ull << 20)
#define VM_MAX_MEM_BYTES (64ull << 30)
#define VM_MAX_VCPUS 8
#define VM_PAGE_SIZE 4096u
#define VM_CONSOLE_BYTES (64u << 10)

struct vm_config {
	char name[VM_NAME_MAX];
	uint64_t mem_bytes;		/* multiple of 2 MiB */
	unsigned vcpus;			/* 1..VM_MAX_VCPUS */
	char guest[VM_GUEST_NAME_MAX];	/* idle, seqdirty, randdirty, memcheck */
	char guest_args[VM_GUEST_ARGS_MAX]; /* "workset=16M,rate=0,seed=1" */
	uint8_t mac[6];
	uint32_t dirty_ring;		/* dirty-ring entries per vCPU, 0 = none
					 * (a power of two, 256..65536); travels
					 * with the VM (CONFIG version 2) */
};

enum vm_run_state {
	VM_RUN_CREATED,		/* built, vCPU threads not started */
	VM_RUN_RUNNING,
	VM_RUN_PAUSED,
	VM_RUN_STOPPED,		/* guest halted for good or shut down */
};

/* What the guest reported through its event port; all monotonic. */
struct vm_guest_stats {
	uint64_t progress;	/* work units done (pages written or verified, ticks for idle) */
	uint64_t errors;	/* self-check failures */
	uint64_t ticks;		/* timer interrupts the guest counted */
	uint64_t last_error_gfn; /* page of the latest error, or UINT64_MAX */
	uint64_t events;	/* event-port writes of any kind */
};

struct vm_pause_stats {
	uint64_t count;		/* pauses so far */
	uint64_t last_ns;	/* latency of the latest pause */
	uint64_t max_ns;
	uint64_t total_ns;
};

struct vm;

/*
 * Fill cfg with defaults (1 vCPU, 64 MiB, idle, generated MAC) for name.
 * The MAC is locally administered: 52:54:00 plus three random bytes.
 */
void vm_config_defaults(struct vm_config *cfg, const char *name);

/*
 * Check a config without touching KVM: sizes, vCPU count, guest name and
 * guest arguments (the working set must fit in RAM). On error, writes a
 * message to err. Return: 0 or -EINVAL.
 */
int vm_config_check(const struct vm_config *cfg, char *err, size_t errlen) __must_check;

/*
 * Is /dev/kvm usable? Return: 0, or -errno with a reason in err.
 */
int vm_kvm_available(char *err, size_t errlen) __must_check;

/*
 * Build a VM and load its guest program; the vCPUs do not run yet.
 * Return: 0 and *out, or -errno with a message in err.
 */
int vm_create(const struct vm_config *cfg, struct vm **out, char *err, size_t errlen) __must_check;

/*
 * vm_create() with the CPUID features of hide (vm/cpucheck.h) taken out of
 * what KVM supports before the vCPUs get it (kvmigd --cpu-hide); hide may
 * be NULL.
 */
struct cpucheck_mask;
int vm_create_hiding(const struct vm_config *cfg, const struct cpucheck_mask *hide,
		     struct vm **out, char *err, size_t errlen) __must_check;

/*
 * CPU compatibility (vm/cpucheck.h). vm_host_cpu: what this host's KVM
 * offers a new guest: KVM_GET_SUPPORTED_CPUID on /dev/kvm and the TSC rate
 * (KVM_GET_TSC_KHZ on a scratch VM, or its vCPU). Return: 0 or -errno with
 * a message. vm_guest_cpu: the CPUID vm's vCPUs were given (vCPU 0's; the
 * others differ only in APIC ids: kept from vm_create, or from the state
 * it was built from) and their TSC rate. Return: 0, -E2BIG.
 */
struct cpucheck_cpu;
int vm_host_cpu(struct cpucheck_cpu *cpu, char *err, size_t errlen) __must_check;
int vm_guest_cpu(const struct vm *vm, struct cpucheck_cpu *cpu) __must_check;

/* Start the vCPU threads (CREATED -> RUNNING). Return: 0 or -errno. */
int vm_start(struct vm *vm) __must_check;

/*
 * Stop every vCPU outside KVM_RUN (RUNNING -> PAUSED). Pausing a paused VM
 * is a no-op. latency_ns (optional) receives the time from request to the
 * last vCPU's acknowledgement. Return: 0 or -errno.
 */
int vm_pause(struct vm *vm, uint64_t *latency_ns) __must_check;

/* PAUSED -> RUNNING. Return: 0 or -errno. */
int vm_resume(struct vm *vm) __must_check;

/* Stop the threads and free everything. Accepts NULL. */
void vm_destroy(struct vm *vm);

enum vm_run_state vm_get_run_state(const struct vm *vm);

/* vCPUs whose thread ended because KVM stopped them (triple fault, error). */
unsigned vm_dead_vcpus(const struct vm *vm);

/* Diagnostics: pause, log every vCPU's registers and events, resume. */
void vm_debug_dump(struct vm *vm);
const char *vm_run_state_name(enum vm_run_state s);
const struct vm_config *vm_get_config(const struct vm *vm);
void vm_get_stats(const struct vm *vm, struct vm_guest_stats *st);
void vm_get_pause_stats(const struct vm *vm, struct vm_pause_stats *st);

/*
 * Copy the newest console output (at most VM_CONSOLE_BYTES are kept) into
 * buf, NUL-terminated. Return: bytes copied, without the NUL.
 */
size_t vm_console_read(struct vm *vm, char *buf, size_t cap);

/*
 * Guest RAM as seen by the VMM. Guest-physical RAM is laid out as a low
 * region [0, min(mem, 3 GiB)) and, for bigger guests, a high region from
 * 4 GiB; a "RAM offset" counts bytes across both without the hole, so
 * offsets run from 0 to mem_bytes. vm_ram() returns the VMM's alias view
 * of all RAM indexed by RAM offset (valid until vm_destroy).
 */
uint8_t *vm_ram(const struct vm *vm);
uint64_t vm_ram_bytes(const struct vm *vm);
int vm_ram_fd(const struct vm *vm);
uint64_t vm_ram_offset_to_gpa(uint64_t off);

/*
 * Offset and size of the guest's working set within RAM (where its data
 * pages live). Tests flip bytes there to prove the checkers bite.
 */
void vm_workset(const struct vm *vm, uint64_t *off, uint64_t *bytes);

/*
 * Guest RAM on its own: a memfd mapped twice, the slot view KVM uses and
 * the VMM's alias. Restore and the migration destination fill RAM through
 * the alias while the VM is prepared on it (vm_prepare), or first, and
 * then load the state (vm_load_state, or vm_create_from_state).
 */
struct vm_ram {
	int fd;
	uint8_t *slot_view;
	uint8_t *alias;
	uint64_t bytes;
};

/* Return: 0 or -errno with a message in err. Untouched RAM costs nothing. */
int vm_ram_create(struct vm_ram *ram, uint64_t bytes, char *err, size_t errlen) __must_check;
void vm_ram_destroy(struct vm_ram *ram);

struct vm_state;

/*
 * Capture all non-RAM state of a paused (or never started) VM.
 * Return: 0, -EBUSY when running, or -errno from KVM.
 */
int vm_capture(struct vm *vm, struct vm_state *st) __must_check;

/*
 * Build a VM around ram (ownership moves to the VM on success and on
 * failure) and load st in KVM's order; named name, or st's name when
 * name is NULL or empty. The VM is left CREATED: vm_start() runs it.
 * vm_prepare() then vm_load_state().
 * Return: 0 and *out, or -errno with a message in err.
 */
int vm_create_from_state(const struct vm_state *st, struct vm_ram *ram, const char *name,
			 struct vm **out, char *err, size_t errlen) __must_check;

/*
 * Build everything of a VM for cfg that needs no captured state, on ram
 * (borrowed: it stays the caller's, and the caller may keep writing pages
 * into it through ram->alias meanwhile). The vCPU threads are started and
 * parked; nothing runs until vm_load_state() and vm_start(). vm_destroy()
 * of a VM not yet loaded frees all it made (fds, threads, memory) and
 * leaves ram alone. cfg->dirty_ring must be the one of the state to come:
 * the ring is set up before the vCPUs and cannot change later. May run on
 * any thread (the VM is used by nobody else until it returns).
 * Return: 0 and *out, or -errno with a message in err.
 */
int vm_prepare(const struct vm_config *cfg, const struct vm_ram *ram, struct vm **out, char *err,
	       size_t errlen) __must_check;

/*
 * Load st into vm, made by vm_prepare() on ram: IRQCHIP x3, PIT2, then per
 * vCPU CPUID, TSC rate, SREGS, REGS, FPU, XCRS, XSAVE, MSRS, LAPIC, events,
 * MP state, debug registers; then the clock and the device models. The VM
 * keeps its name; the rest of its config becomes st's. On success ram
 * becomes the VM's (ram is emptied) and the VM is CREATED, ready to start.
 * Return: 0, -ESTALE when st's config is not the one vm was prepared for
 * (vCPUs, memory, guest and arguments, dirty ring: destroy vm and build
 * again), or -errno from KVM with a message; on failure ram stays the
 * caller's and vm must be destroyed.
 */
int vm_load_state(struct vm *vm, const struct vm_state *st, struct vm_ram *ram, char *err,
		  size_t errlen) __must_check;

/* VMs alive in this process (made and not yet destroyed): leak checks in tests. */
unsigned vm_count(void);

/*
 * The long-mode boot state of vCPU index, as vm_create() gives it (64-bit
 * CS, flat data segments, the VMM's GDT and page tables, RIP at the guest
 * code). sregs is updated in place (fields this does not set, such as
 * apic_base when non-zero, are kept); regs and fpu are overwritten. Pure:
 * tests build plausible states from it without /dev/kvm.
 */
struct kvm_sregs;
struct kvm_regs;
struct kvm_fpu;
void vm_boot_vcpu_state(unsigned index, struct kvm_sregs *sregs, struct kvm_regs *regs,
			struct kvm_fpu *fpu);

/* The KVM VM fd, for dirty logging. */
int vm_get_fd(const struct vm *vm);

/* ---- dirty tracking hooks (used by dirtylog/) ----------------------------- */

struct vm_slot {
	uint32_t slot;		/* KVM slot id */
	uint64_t gpa;
	uint64_t ram_off;	/* RAM offset of its first byte */
	uint64_t bytes;
};

/* The memory slots (at most 2). Return: their number. */
unsigned vm_get_slots(const struct vm *vm, struct vm_slot slots[2]);
unsigned vm_vcpu_count(const struct vm *vm);

/*
 * Turn KVM dirty logging on or off for every slot (the guest keeps running).
 * With manual protect (vm_manual_protect()), turning it on marks every page
 * dirty and KVM_CLEAR_DIRTY_LOG re-protects. Return: 0 or -errno.
 */
int vm_set_dirty_logging(struct vm *vm, bool on) __must_check;
bool vm_manual_protect(const struct vm *vm);

/*
 * Dirty ring (cfg.dirty_ring > 0): move the entries vCPU i has published
 * into the page bitmap (bit = RAM page number) and mark them for reset;
 * then vm_dirty_ring_reset() re-protects them. Return: entries harvested,
 * or -EOVERFLOW when the ring filled since the last harvest (its pages were
 * lost: treat every page as dirty), -EOPNOTSUPP without a ring.
 */
long vm_dirty_ring_harvest(struct vm *vm, unsigned i, uint64_t *bitmap) __must_check;
int vm_dirty_ring_reset(struct vm *vm) __must_check;

/*
 * Throttle every vCPU to run only (100 - pct)% of the time (auto-converge).
 * pct 0..VM_MAX_THROTTLE; 0 stops throttling.
 */
#define VM_MAX_THROTTLE 90
void vm_set_throttle(struct vm *vm, unsigned pct);
unsigned vm_get_throttle(const struct vm *vm);

#endif
