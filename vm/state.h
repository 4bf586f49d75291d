/* SPDX-License-Identifier: MIT */
/*
 * state.h - the VM's non-RAM state and its versioned, self-describing
 * sections: the same sections a snapshot file and the migration stream
 * carry.
 *
 * struct vm_state holds everything KVM keeps for a VM (PIC master/slave,
 * IOAPIC, PIT2, kvmclock) and for each vCPU (regs, sregs, FPU, XSAVE, XCRs,
 * MSRs, LAPIC, vCPU events, MP state, debug registers, TSC rate, CPUID),
 * plus the device models (UART registers and console buffer, guest event
 * counters, NIC). vm.c fills it from KVM and loads it back; this module
 * only turns it into bytes and back, so it is pure and testable without
 * /dev/kvm.
 *
 * A section on the wire, little-endian:
 *
 *   u16 type | u16 version | u32 payload_len | payload | u32 crc32c
 *
 * the CRC covering the 8 header bytes and the payload. Payload fields are
 * written one by one from per-struct field tables (never a struct memcpy).
 * Reading checks, in order: the header is complete, the type is known,
 * the version is the one this build speaks, the length is the exact length
 * of that section, the CRC, then every value's range. Each failure is its
 * own errno and message.
 *
 * Versions: every section is version 1 except CONFIG, which has two:
 *   1: name[64] mem_bytes u64 vcpus u32 guest[16] guest_args[256] mac[6]
 *      (354 bytes)
 *   2: version 1's fields, then dirty_ring u32 (entries per vCPU; 358 bytes)
 * A VM without a dirty ring is written as version 1, exactly what earlier
 * builds wrote; a reader takes both, each only at its own length (version 1
 * reads as "no ring").
 */
#ifndef KVMIG_VM_STATE_H
#define KVMIG_VM_STATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"
#include "vm/vm.h"

#define STATE_MAX_MSRS 256
#define STATE_MAX_CPUID 128

enum state_section_type {
	STATE_SEC_CONFIG = 1,	/* vm_config: name, memory, vCPUs, guest, MAC, dirty ring */
	STATE_SEC_VCPU = 2,	/* one per vCPU, in index order */
	STATE_SEC_IRQCHIP = 3,	/* PIC master, PIC slave, IOAPIC */
	STATE_SEC_PIT = 4,
	STATE_SEC_CLOCK = 5,
	STATE_SEC_UART = 6,
	STATE_SEC_EVENTS = 7,
	STATE_SEC_NIC = 8,
	STATE_SEC_RAM = 9,	/* snapshot files only: a run of RAM pages */
	STATE_SEC_END = 10,	/* snapshot files only: nothing follows */
	STATE_SEC_MAX = STATE_SEC_END,
};

#define STATE_SEC_HDR_BYTES 8
#define STATE_SEC_CRC_BYTES 4
#define STATE_SEC_MAX_PAYLOAD (8u << 20)

struct vcpu_state {
	uint32_t index;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;
	uint8_t xsave[4096];
	uint8_t lapic[KVM_APIC_REG_SIZE];
	struct kvm_vcpu_events events;
	uint32_t mp_state;
	struct kvm_debugregs debugregs;
	uint32_t tsc_khz;
	uint32_t nmsrs;
	struct kvm_msr_entry msrs[STATE_MAX_MSRS];
	uint32_t ncpuid;
	struct kvm_cpuid_entry2 cpuid[STATE_MAX_CPUID];
};

struct uart_state {
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm;
	uint32_t console_len;		/* bytes in console[] (oldest first) */
	uint64_t console_total;		/* bytes the guest ever printed */
	char console[VM_CONSOLE_BYTES];
};

struct events_state {
	uint64_t progress, errors, ticks, last_error_gfn, events;
	uint64_t fatal;			/* FATAL events (guest exceptions) */
	uint32_t started_mask;		/* vCPUs that sent STARTED */
};

struct vm_state {
	struct vm_config config;
	struct kvm_pic_state pic[2];
	struct kvm_ioapic_state ioapic;
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	struct uart_state uart;
	struct events_state ev;
	struct vcpu_state vcpu[VM_MAX_VCPUS];
};

/* Newest version of each section type this build writes and reads (CONFIG: 2, also reads 1). */
uint16_t state_section_version(enum state_section_type type);
const char *state_section_name(unsigned type);

/* Upper bound of one serialized section of any non-RAM type. */
size_t state_section_bound(void);

/*
 * Serialize one section (vcpu: which vCPU for STATE_SEC_VCPU) into dst.
 * Return: bytes written, or -ENOSPC, or -EINVAL for an unknown type.
 */
ssize_t state_write_section(const struct vm_state *st, enum state_section_type type,
			    unsigned vcpu, uint8_t *dst, size_t cap) __must_check;

/*
 * Serialize every non-RAM section (CONFIG first, then VCPU x n, IRQCHIP,
 * PIT, CLOCK, UART, EVENTS, NIC) into dst. Return: bytes or -ENOSPC.
 */
ssize_t state_write_all(const struct vm_state *st, uint8_t *dst, size_t cap) __must_check;

/*
 * Check a section header: type known, version one this build reads, length
 * plausible for the type at that version. On success *type and *payload_len are set.
 * Return: 0, -ECONNRESET (fewer than 8 bytes), -EBADMSG, -EPROTO (version).
 */
int state_check_header(const uint8_t *src, size_t len, unsigned *type, uint32_t *payload_len,
		       char *err, size_t errlen) __must_check;

/*
 * Parse and check one complete section (header, payload, CRC) at src into
 * st. RAM and END sections are checked (CRC) but not stored. *consumed gets
 * the section's total size. Return: 0 or -errno with a message in err:
 * -ECONNRESET truncated, -EBADMSG CRC/length/value, -EPROTO version.
 */
int state_read_section(struct vm_state *st, const uint8_t *src, size_t len, size_t *consumed,
		       unsigned *type, char *err, size_t errlen) __must_check;

/*
 * Check a whole state after its sections were read: CONFIG present, one
 * VCPU section per vCPU, every other section present once.
 * seen_mask: bit t set for each section type t read; vcpu_mask: bit i per
 * vCPU section. Return: 0 or -EBADMSG with a message.
 */
int state_check_complete(const struct vm_state *st, uint32_t seen_mask, uint32_t vcpu_mask,
			 char *err, size_t errlen) __must_check;

#endif
