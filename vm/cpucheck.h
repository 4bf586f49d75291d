/* SPDX-License-Identifier: MIT */
/*
 * cpucheck.h - can this host's KVM run a guest that was given that CPUID?
 *
 * A guest sees the CPUID its VMM set on its vCPUs (KVM_SET_CPUID2; kvmig
 * sets what KVM_GET_SUPPORTED_CPUID offered on the host where the VM was
 * created). Moved to another host, the guest keeps that CPUID, so every
 * feature flag it was shown must be one the new host's KVM supports, or
 * the guest may execute an instruction that faults there. The destination
 * of a migration (and a restore) compares, before any page moves:
 *
 *  - the feature-flag words below, bit by bit: a bit the guest has and the
 *    host lacks is a missing feature, named as in /proc/cpuinfo ("avx2",
 *    "bmi2"; QEMU's names for the KVM leaf 0x40000001), or "cpuid 0x7.0
 *    ebx bit 12" when the bit has no name. Nothing else is compared: not
 *    the vendor, family, model, APIC ids, cache or topology leaves, and not
 *    the bits the CPU sets at run time (osxsave, ospke);
 *  - the TSC rate in kHz: a rate outside KVM's own tolerance (250 ppm, the
 *    kvm module's tsc_tolerance_ppm) is a difference; it is reported, and
 *    refused only when the caller asks for a strict check (--strict-cpu).
 *
 * A host hides features with a struct cpucheck_mask (kvmigd --cpu-hide),
 * parsed from the same names and applied to its supported CPUID.
 * Pure (no KVM, no allocation, no globals): any thread. vm/vm.h queries
 * the CPUIDs this compares.
 */
#ifndef KVMIG_VM_CPUCHECK_H
#define KVMIG_VM_CPUCHECK_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"

#define CPUCHECK_MAX_ENTRIES 128	/* CPUID entries of one vCPU (vm/state.h's too) */
#define CPUCHECK_MAX_REPORT 64		/* missing features kept by name */
#define CPUCHECK_TSC_PPM 250		/* KVM's tsc_tolerance_ppm */

/* The feature-flag words compared (CPUID leaf.subleaf register). */
enum cpucheck_word {
	CPUCHECK_W_1_EDX,		/* leaf 1 edx: fpu ... sse2 ... */
	CPUCHECK_W_1_ECX,		/* leaf 1 ecx: pni ... avx, rdrand */
	CPUCHECK_W_6_EAX,		/* leaf 6 eax: arat */
	CPUCHECK_W_7_0_EBX,		/* leaf 7.0 ebx: avx2, bmi2, avx512f ... */
	CPUCHECK_W_7_0_ECX,
	CPUCHECK_W_7_0_EDX,
	CPUCHECK_W_7_1_EAX,		/* avx_vnni, avx512_bf16 */
	CPUCHECK_W_D_1_EAX,		/* xsaveopt, xsavec, xgetbv1, xsaves */
	CPUCHECK_W_80000001_EDX,	/* syscall, nx, lm ... */
	CPUCHECK_W_80000001_ECX,	/* lahf_lm, abm, sse4a ... */
	CPUCHECK_W_80000007_EDX,	/* invtsc */
	CPUCHECK_W_80000008_EBX,	/* clzero, wbnoinvd ... */
	CPUCHECK_W_40000001_EAX,	/* KVM paravirt: kvmclock, kvm-pv-eoi ... */
	CPUCHECK_W_COUNT,
};

/* One CPU as a guest sees it: CPUID entries and the TSC rate. */
struct cpucheck_cpu {
	uint32_t n;				/* entries used */
	struct kvm_cpuid_entry2 ent[CPUCHECK_MAX_ENTRIES];
	uint32_t tsc_khz;			/* 0: unknown (not compared) */
};

/* Feature bits to hide, per word. */
struct cpucheck_mask {
	uint32_t bits[CPUCHECK_W_COUNT];
};

struct cpucheck_feature {
	uint8_t word;		/* enum cpucheck_word */
	uint8_t bit;
};

struct cpucheck_result {
	unsigned nmissing;	/* features the guest has and the host lacks */
	struct cpucheck_feature missing[CPUCHECK_MAX_REPORT]; /* the first ones, in table order */
	uint32_t guest_tsc_khz, host_tsc_khz;
	bool tsc_differs;	/* both known and more than CPUCHECK_TSC_PPM apart */
};

/*
 * The name of a feature bit: "avx2", or "cpuid 0x7.0 ebx bit 12" for a bit
 * without one. Return: the length of the name (truncated to cap - 1).
 */
size_t cpucheck_feature_name(struct cpucheck_feature f, char *buf, size_t cap);

/* A feature bit by name (the first match in table order). Return: 0 or -ENOENT. */
int cpucheck_feature_by_name(const char *name, struct cpucheck_feature *f) __must_check;

/*
 * Parse a comma-separated list of feature names ("avx2,bmi2") into m
 * (added to what m holds). A name that appears in several words (the AMD
 * copies of leaf 1 edx in 0x80000001 edx) is hidden in all of them.
 * Return: 0, or -EINVAL with "unknown CPU feature 'foo'" in err.
 */
int cpucheck_mask_parse(const char *list, struct cpucheck_mask *m, char *err,
			size_t errlen) __must_check;

/* Clear the bits of m in cpu's entries (or in n entries at ent). */
void cpucheck_mask_apply(struct cpucheck_cpu *cpu, const struct cpucheck_mask *m);
void cpucheck_mask_entries(struct kvm_cpuid_entry2 *ent, uint32_t n, const struct cpucheck_mask *m);

/* The bits of word w in cpu (0 when cpu has no such leaf). */
uint32_t cpucheck_word_bits(const struct cpucheck_cpu *cpu, enum cpucheck_word w);

/*
 * Write the names of every feature cpu has, comma-separated, into buf
 * (what kvmigd --cpu-features prints). Return: the length needed (as
 * snprintf: a result >= cap was truncated).
 */
size_t cpucheck_list_features(const struct cpucheck_cpu *cpu, char *buf, size_t cap);

/* Compare what guest was given with what host can give. */
void cpucheck_compare(const struct cpucheck_cpu *guest, const struct cpucheck_cpu *host,
		      struct cpucheck_result *r);

/*
 * The verdict on r. strict_tsc: a TSC difference refuses too. migration:
 * the words of a migration's destination ("the destination's CPU ...; the
 * guest stays on the source"), else of a restore ("this host's CPU ...").
 * Return: 0 when the guest can run here (msg: "" or a note on the TSC
 * difference, to log as a warning), or -EOPNOTSUPP with the refusal in
 * msg: "the destination's CPU lacks avx2, bmi2 (the guest uses them); the
 * guest stays on the source".
 */
int cpucheck_verdict(const struct cpucheck_result *r, bool strict_tsc, bool migration, char *msg,
		     size_t len) __must_check;

#endif
