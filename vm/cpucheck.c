/* SPDX-License-Identifier: MIT */
#include "vm/cpucheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

enum { EAX, EBX, ECX, EDX };

struct word_def {
	uint32_t function, index;
	uint8_t reg;
	uint32_t dynamic;		/* bits the CPU sets at run time: never compared */
	const char *const names[32];	/* NULL: no name */
};

/*
 * The names of /proc/cpuinfo (arch/x86/include/asm/cpufeatures.h), QEMU's
 * where Linux shows none (invtsc, the KVM leaf).
 */
static const struct word_def words[CPUCHECK_W_COUNT] = {
	[CPUCHECK_W_1_EDX] = { 1, 0, EDX, 0, {
		"fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce",
		"cx8", "apic", NULL, "sep", "mtrr", "pge", "mca", "cmov",
		"pat", "pse36", "pn", "clflush", NULL, "dts", "acpi", "mmx",
		"fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe" } },
	[CPUCHECK_W_1_ECX] = { 1, 0, ECX, 1u << 27 /* osxsave */, {
		"pni", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est",
		"tm2", "ssse3", "cid", "sdbg", "fma", "cx16", "xtpr", "pdcm",
		NULL, "pcid", "dca", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt",
		"tsc_deadline_timer", "aes", "xsave", "osxsave", "avx", "f16c", "rdrand",
		"hypervisor" } },
	[CPUCHECK_W_6_EAX] = { 6, 0, EAX, 0, {
		[0] = "dtherm", [1] = "ida", [2] = "arat", [4] = "pln", [6] = "pts",
		[7] = "hwp" } },
	[CPUCHECK_W_7_0_EBX] = { 7, 0, EBX, 0, {
		"fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", NULL, "smep",
		"bmi2", "erms", "invpcid", "rtm", "cqm", NULL, "mpx", "rdt_a",
		"avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma", NULL,
		"clflushopt", "clwb", "intel_pt", "avx512pf", "avx512er", "avx512cd",
		"sha_ni", "avx512bw", "avx512vl" } },
	[CPUCHECK_W_7_0_ECX] = { 7, 0, ECX, 1u << 4 /* ospke */, {
		[1] = "avx512vbmi", [2] = "umip", [3] = "pku", [4] = "ospke",
		[5] = "waitpkg", [6] = "avx512_vbmi2", [7] = "shstk", [8] = "gfni",
		[9] = "vaes", [10] = "vpclmulqdq", [11] = "avx512_vnni",
		[12] = "avx512_bitalg", [13] = "tme", [14] = "avx512_vpopcntdq",
		[16] = "la57", [22] = "rdpid", [24] = "bus_lock_detect",
		[25] = "cldemote", [27] = "movdiri", [28] = "movdir64b",
		[29] = "enqcmd", [30] = "sgx_lc" } },
	[CPUCHECK_W_7_0_EDX] = { 7, 0, EDX, 0, {
		[2] = "avx512_4vnniw", [3] = "avx512_4fmaps", [4] = "fsrm",
		[8] = "avx512_vp2intersect", [10] = "md_clear", [14] = "serialize",
		[16] = "tsxldtrk", [18] = "pconfig", [19] = "arch_lbr", [20] = "ibt",
		[22] = "amx_bf16", [23] = "avx512_fp16", [24] = "amx_tile",
		[25] = "amx_int8", [26] = "spec_ctrl", [27] = "intel_stibp",
		[28] = "flush_l1d", [29] = "arch_capabilities", [31] = "spec_ctrl_ssbd" } },
	[CPUCHECK_W_7_1_EAX] = { 7, 1, EAX, 0, {
		[4] = "avx_vnni", [5] = "avx512_bf16", [7] = "cmpccxadd",
		[10] = "fzrm", [11] = "fsrs", [12] = "fsrc", [21] = "amx_fp16",
		[23] = "avx_ifma", [26] = "lam" } },
	[CPUCHECK_W_D_1_EAX] = { 0xd, 1, EAX, 0, {
		"xsaveopt", "xsavec", "xgetbv1", "xsaves", "xfd" } },
	[CPUCHECK_W_80000001_EDX] = { 0x80000001, 0, EDX, 0, {
		/* AMD repeats most of leaf 1 edx here: the same names */
		"fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce",
		"cx8", "apic", NULL, "syscall", "mtrr", "pge", "mca", "cmov",
		"pat", "pse36", NULL, "mp", "nx", NULL, "mmxext", "mmx",
		"fxsr", "fxsr_opt", "pdpe1gb", "rdtscp", NULL, "lm", "3dnowext", "3dnow" } },
	[CPUCHECK_W_80000001_ECX] = { 0x80000001, 0, ECX, 0, {
		"lahf_lm", "cmp_legacy", "svm", "extapic", "cr8_legacy", "abm", "sse4a",
		"misalignsse", "3dnowprefetch", "osvw", "ibs", "xop", "skinit", "wdt",
		NULL, "lwp", "fma4", "tce", NULL, "nodeid_msr", NULL, "tbm", "topoext",
		"perfctr_core", "perfctr_nb", NULL, "bpext", "ptsc", "perfctr_llc",
		"mwaitx" } },
	[CPUCHECK_W_80000007_EDX] = { 0x80000007, 0, EDX, 0, { [8] = "invtsc" } },
	[CPUCHECK_W_80000008_EBX] = { 0x80000008, 0, EBX, 0, {
		[0] = "clzero", [1] = "irperf", [2] = "xsaveerptr", [4] = "rdpru",
		[9] = "wbnoinvd", [12] = "amd_ibpb", [14] = "amd_ibrs", [15] = "amd_stibp",
		[24] = "amd_ssbd", [25] = "virt_ssbd", [26] = "amd_ssb_no" } },
	[CPUCHECK_W_40000001_EAX] = { 0x40000001, 0, EAX, 0, {
		[0] = "kvmclock", [1] = "kvm-nopiodelay", [2] = "kvm-mmu",
		[3] = "kvmclock2", [4] = "kvm-asyncpf", [5] = "kvm-steal-time",
		[6] = "kvm-pv-eoi", [7] = "kvm-pv-unhalt", [9] = "kvm-pv-tlb-flush",
		[10] = "kvm-asyncpf-vmexit", [11] = "kvm-pv-ipi", [12] = "kvm-poll-control",
		[13] = "kvm-pv-sched-yield", [14] = "kvm-asyncpf-int",
		[15] = "kvm-msi-ext-dest-id", [24] = "kvmclock-stable-bit" } },
};

_Static_assert(sizeof(words) / sizeof(words[0]) == CPUCHECK_W_COUNT,
	       "one definition per feature word");

static const char *const reg_names[] = { "eax", "ebx", "ecx", "edx" };

size_t cpucheck_feature_name(struct cpucheck_feature f, char *buf, size_t cap)
{
	const struct word_def *w;
	int n;

	if (f.word >= CPUCHECK_W_COUNT || f.bit >= 32) {
		n = snprintf(buf, cap, "?");
	} else {
		w = &words[f.word];
		if (w->names[f.bit])
			n = snprintf(buf, cap, "%s", w->names[f.bit]);
		else
			n = snprintf(buf, cap, "cpuid 0x%x.%u %s bit %u", w->function, w->index,
				     reg_names[w->reg], f.bit);
	}
	if (n < 0 || cap == 0)
		return 0;
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

int cpucheck_feature_by_name(const char *name, struct cpucheck_feature *f)
{
	for (unsigned w = 0; w < CPUCHECK_W_COUNT; w++)
		for (unsigned b = 0; b < 32; b++)
			if (words[w].names[b] && !strcmp(words[w].names[b], name)) {
				f->word = (uint8_t)w;
				f->bit = (uint8_t)b;
				return 0;
			}
	return -ENOENT;
}

int cpucheck_mask_parse(const char *list, struct cpucheck_mask *m, char *err, size_t errlen)
{
	const char *p = list;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char name[64];
		bool found = false;

		if (len == 0 || len >= sizeof(name))
			return err_set(-EINVAL, err, errlen, "%s CPU feature name in '%s'",
				       len ? "overlong" : "empty", list);
		memcpy(name, p, len);
		name[len] = '\0';
		for (unsigned w = 0; w < CPUCHECK_W_COUNT; w++)
			for (unsigned b = 0; b < 32; b++)
				if (words[w].names[b] && !strcmp(words[w].names[b], name)) {
					m->bits[w] |= 1u << b;
					found = true;
				}
		if (!found)
			return err_set(-EINVAL, err, errlen,
				       "unknown CPU feature '%s' (names are those of /proc/cpuinfo, "
				       "such as avx2 or sse4_2)",
				       name);
		p += len;
		if (*p == ',')
			p++;
		if (end && !*p)
			return err_set(-EINVAL, err, errlen, "empty CPU feature name in '%s'", list);
	}
	return 0;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, unsigned reg)
{
	switch (reg) {
	case EAX:
		return &e->eax;
	case EBX:
		return &e->ebx;
	case ECX:
		return &e->ecx;
	default:
		return &e->edx;
	}
}

/* The entry of leaf function.index: index counts only where KVM says it does. */
static const struct kvm_cpuid_entry2 *find_entry(const struct cpucheck_cpu *cpu, uint32_t function,
						 uint32_t index)
{
	for (uint32_t i = 0; i < cpu->n && i < CPUCHECK_MAX_ENTRIES; i++) {
		const struct kvm_cpuid_entry2 *e = &cpu->ent[i];

		if (e->function == function &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

uint32_t cpucheck_word_bits(const struct cpucheck_cpu *cpu, enum cpucheck_word w)
{
	const struct kvm_cpuid_entry2 *e;

	if ((unsigned)w >= CPUCHECK_W_COUNT)
		return 0;
	e = find_entry(cpu, words[w].function, words[w].index);
	if (!e)
		return 0;
	/* reg_of() only picks the field; it writes nothing */
	return *reg_of((struct kvm_cpuid_entry2 *)(uintptr_t)e, words[w].reg);
}

void cpucheck_mask_entries(struct kvm_cpuid_entry2 *ent, uint32_t n, const struct cpucheck_mask *m)
{
	for (unsigned w = 0; w < CPUCHECK_W_COUNT; w++) {
		if (!m->bits[w])
			continue;
		for (uint32_t i = 0; i < n; i++) {
			struct kvm_cpuid_entry2 *e = &ent[i];

			if (e->function == words[w].function &&
			    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
			     e->index == words[w].index))
				*reg_of(e, words[w].reg) &= ~m->bits[w];
		}
	}
}

void cpucheck_mask_apply(struct cpucheck_cpu *cpu, const struct cpucheck_mask *m)
{
	cpucheck_mask_entries(cpu->ent, cpu->n < CPUCHECK_MAX_ENTRIES ? cpu->n : CPUCHECK_MAX_ENTRIES,
			      m);
}

size_t cpucheck_list_features(const struct cpucheck_cpu *cpu, char *buf, size_t cap)
{
	size_t len = 0;

	if (cap)
		buf[0] = '\0';
	for (unsigned w = 0; w < CPUCHECK_W_COUNT; w++) {
		uint32_t bits = cpucheck_word_bits(cpu, (enum cpucheck_word)w) & ~words[w].dynamic;

		for (unsigned b = 0; b < 32; b++) {
			struct cpucheck_feature f = { (uint8_t)w, (uint8_t)b };
			char name[64];
			int n;

			if (!(bits & (1u << b)))
				continue;
			cpucheck_feature_name(f, name, sizeof(name));
			/* the AMD copies of leaf 1 edx are listed once */
			if (w == CPUCHECK_W_80000001_EDX && words[CPUCHECK_W_1_EDX].names[b] &&
			    words[w].names[b] && !strcmp(words[w].names[b], words[CPUCHECK_W_1_EDX].names[b]) &&
			    (cpucheck_word_bits(cpu, CPUCHECK_W_1_EDX) & (1u << b)))
				continue;
			n = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s%s",
				     len ? ", " : "", name);
			if (n > 0)
				len += (size_t)n;
		}
	}
	return len;
}

static bool tsc_differs(uint32_t a, uint32_t b)
{
	uint64_t d = a > b ? a - b : b - a;

	if (!a || !b)
		return false;
	return d * 1000000ull > (uint64_t)b * CPUCHECK_TSC_PPM;
}

void cpucheck_compare(const struct cpucheck_cpu *guest, const struct cpucheck_cpu *host,
		      struct cpucheck_result *r)
{
	memset(r, 0, sizeof(*r));
	for (unsigned w = 0; w < CPUCHECK_W_COUNT; w++) {
		uint32_t g = cpucheck_word_bits(guest, (enum cpucheck_word)w);
		uint32_t h = cpucheck_word_bits(host, (enum cpucheck_word)w);
		uint32_t miss = g & ~h & ~words[w].dynamic;

		for (unsigned b = 0; b < 32; b++) {
			if (!(miss & (1u << b)))
				continue;
			if (r->nmissing < CPUCHECK_MAX_REPORT) {
				r->missing[r->nmissing].word = (uint8_t)w;
				r->missing[r->nmissing].bit = (uint8_t)b;
			}
			r->nmissing++;
		}
	}
	r->guest_tsc_khz = guest->tsc_khz;
	r->host_tsc_khz = host->tsc_khz;
	r->tsc_differs = tsc_differs(guest->tsc_khz, host->tsc_khz);
}

/* "avx2, bmi2": the missing features by name, each name once. Return: names written. */
static unsigned missing_names(const struct cpucheck_result *r, char *buf, size_t cap)
{
	unsigned kept = r->nmissing < CPUCHECK_MAX_REPORT ? r->nmissing : CPUCHECK_MAX_REPORT;
	unsigned names = 0;
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < kept; i++) {
		char name[64];
		bool dup = false;

		cpucheck_feature_name(r->missing[i], name, sizeof(name));
		for (unsigned j = 0; j < i && !dup; j++) {
			char prev[64];

			cpucheck_feature_name(r->missing[j], prev, sizeof(prev));
			dup = !strcmp(prev, name);
		}
		if (dup)
			continue;
		if (len < cap) {
			int n = snprintf(buf + len, cap - len, "%s%s", names ? ", " : "", name);

			if (n > 0)
				len += (size_t)n;
		}
		names++;
	}
	if (r->nmissing > kept && len < cap)
		snprintf(buf + len, cap - len, " and %u more", r->nmissing - kept);
	return names;
}

int cpucheck_verdict(const struct cpucheck_result *r, bool strict_tsc, bool migration, char *msg,
		     size_t len)
{
	const char *who = migration ? "the destination's" : "this host's";
	const char *tail = migration ? "; the guest stays on the source" : "";
	bool tsc_refused = strict_tsc && r->tsc_differs;
	char names[1536], tsc[160] = "";

	if (len)
		msg[0] = '\0';
	if (r->tsc_differs)
		snprintf(tsc, sizeof(tsc), "TSC runs at %u kHz, the guest's at %u kHz",
			 r->host_tsc_khz, r->guest_tsc_khz);
	if (r->nmissing) {
		unsigned n = missing_names(r, names, sizeof(names));

		if (tsc_refused)
			return err_set(-EOPNOTSUPP, msg, len,
				       "%s CPU lacks %s (the guest uses %s), and its %s "
				       "(--strict-cpu refuses any difference)%s",
				       who, names, n == 1 ? "it" : "them", tsc, tail);
		return err_set(-EOPNOTSUPP, msg, len, "%s CPU lacks %s (the guest uses %s)%s", who,
			       names, n == 1 ? "it" : "them", tail);
	}
	if (tsc_refused)
		return err_set(-EOPNOTSUPP, msg, len,
			       "%s %s, and --strict-cpu refuses any TSC difference%s", who, tsc,
			       tail);
	if (r->tsc_differs)
		snprintf(msg, len,
			 "%s %s: the guest's TSC rate changes (--strict-cpu would refuse this)",
			 who, tsc);
	return 0;
}
