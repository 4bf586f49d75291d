/* SPDX-License-Identifier: MIT */
/*
 * test_cpucheck.c - the CPU compatibility check: feature names (named and
 * unnamed bits), --cpu-hide masks (unknown names, AMD copies), what is
 * compared and what is not (family/model, APIC ids, cache leaves, the
 * run-time bits), a host without a whole leaf, the exact refusal texts and
 * the TSC rule (KVM's 250 ppm, strict or not).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vm/cpucheck.h"

/* leaf 7.0 ebx bits */
#define AVX2 (1u << 5)
#define BMI2 (1u << 8)
#define BIT13 (1u << 13) /* fdp/zero_fcs_fds: no name */

static struct kvm_cpuid_entry2 *add(struct cpucheck_cpu *c, uint32_t fn, uint32_t idx,
				    uint32_t flags)
{
	struct kvm_cpuid_entry2 *e = &c->ent[c->n++];

	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = flags;
	return e;
}

/* A plausible CPU: sse2, avx, avx2, bmi2, lm, xsaveopt, kvmclock; vendor and cache leaves. */
static void make_cpu(struct cpucheck_cpu *c, uint32_t leaf7_ebx, uint32_t tsc_khz)
{
	memset(c, 0, sizeof(*c));
	add(c, 0, 0, 0)->ebx = 0x68747541;
	{
		struct kvm_cpuid_entry2 *e = add(c, 1, 0, 0);

		e->eax = 0x00a10f11;		/* family/model/stepping */
		e->ebx = 0x01020800;		/* APIC id 1 in bits 31..24 */
		e->ecx = (1u << 28) | (1u << 13); /* avx, cx16 */
		e->edx = (1u << 26) | (1u << 0);  /* sse2, fpu */
	}
	add(c, 4, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->eax = 0x121; /* cache */
	add(c, 7, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->ebx = leaf7_ebx;
	add(c, 7, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	add(c, 0xd, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)->eax = 1; /* xsaveopt */
	add(c, 0x80000001, 0, 0)->edx = (1u << 29) | (1u << 0); /* lm, fpu (AMD copy) */
	add(c, 0x40000001, 0, 0)->eax = 1;			  /* kvmclock */
	c->tsc_khz = tsc_khz;
}

static struct kvm_cpuid_entry2 *find(struct cpucheck_cpu *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->ent[i].function == fn && c->ent[i].index == idx)
			return &c->ent[i];
	fail_msg("no leaf 0x%x.%u", fn, idx);
	return &c->ent[0];	/* not reached */
}

static void test_cpucheck_names(void **state)
{
	struct cpucheck_feature f;
	char buf[64];

	(void)state;
	assert_int_equal(cpucheck_feature_by_name("avx2", &f), 0);
	assert_int_equal(f.word, CPUCHECK_W_7_0_EBX);
	assert_int_equal(f.bit, 5);
	assert_int_equal(cpucheck_feature_name(f, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "avx2");
	assert_int_equal(cpucheck_feature_by_name("sse4_2", &f), 0);
	assert_int_equal(f.word, CPUCHECK_W_1_ECX);
	assert_int_equal(f.bit, 20);
	assert_int_equal(cpucheck_feature_by_name("xsaveopt", &f), 0);
	assert_int_equal(f.word, CPUCHECK_W_D_1_EAX);
	assert_int_equal(cpucheck_feature_by_name("lm", &f), 0);
	assert_int_equal(f.word, CPUCHECK_W_80000001_EDX);
	assert_int_equal(f.bit, 29);
	assert_int_equal(cpucheck_feature_by_name("avx3", &f), -ENOENT);
	f.word = CPUCHECK_W_7_0_EBX;
	f.bit = 13;
	cpucheck_feature_name(f, buf, sizeof(buf));
	assert_string_equal(buf, "cpuid 0x7.0 ebx bit 13");
	f.word = CPUCHECK_W_80000008_EBX;
	f.bit = 31;
	cpucheck_feature_name(f, buf, sizeof(buf));
	assert_string_equal(buf, "cpuid 0x80000008.0 ebx bit 31");
	/* truncation keeps a terminated prefix */
	f.word = CPUCHECK_W_1_ECX;
	f.bit = 24;
	assert_int_equal(cpucheck_feature_name(f, buf, 4), 3);
	assert_string_equal(buf, "tsc");
}

static void test_cpucheck_mask_parse(void **state)
{
	struct cpucheck_mask m;
	char err[256];

	(void)state;
	memset(&m, 0, sizeof(m));
	assert_int_equal(cpucheck_mask_parse("avx2,bmi2", &m, err, sizeof(err)), 0);
	assert_int_equal(m.bits[CPUCHECK_W_7_0_EBX], AVX2 | BMI2);
	for (unsigned w = 0; w < CPUCHECK_W_COUNT; w++)
		if (w != CPUCHECK_W_7_0_EBX)
			assert_int_equal(m.bits[w], 0);
	/* a leaf 1 edx name hides the AMD copy too */
	assert_int_equal(cpucheck_mask_parse("fpu", &m, err, sizeof(err)), 0);
	assert_int_equal(m.bits[CPUCHECK_W_1_EDX], 1);
	assert_int_equal(m.bits[CPUCHECK_W_80000001_EDX], 1);
	assert_int_equal(cpucheck_mask_parse("avx2,nosuch", &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown CPU feature 'nosuch'"));
	assert_int_equal(cpucheck_mask_parse("avx2,", &m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "empty CPU feature name"));
	assert_int_equal(cpucheck_mask_parse(",avx2", &m, err, sizeof(err)), -EINVAL);
}

static void test_cpucheck_mask_apply(void **state)
{
	struct cpucheck_cpu c;
	struct cpucheck_mask m;
	char list[512];

	(void)state;
	make_cpu(&c, AVX2 | BMI2, 2000000);
	memset(&m, 0, sizeof(m));
	assert_int_equal(cpucheck_mask_parse("bmi2,fpu", &m, NULL, 0), 0);
	cpucheck_mask_apply(&c, &m);
	assert_int_equal(find(&c, 7, 0)->ebx, AVX2);
	assert_int_equal(find(&c, 1, 0)->edx, 1u << 26);
	assert_int_equal(find(&c, 0x80000001, 0)->edx, 1u << 29);
	/* only the word's leaf: 7.1 and the cache leaf are untouched */
	assert_int_equal(find(&c, 4, 0)->eax, 0x121);
	cpucheck_list_features(&c, list, sizeof(list));
	assert_string_equal(list, "sse2, cx16, avx, avx2, xsaveopt, lm, kvmclock");
}

static void test_cpucheck_same_cpu_passes(void **state)
{
	struct cpucheck_cpu g, h;
	struct cpucheck_result r;
	char msg[512];

	(void)state;
	make_cpu(&g, AVX2 | BMI2, 2000000);
	make_cpu(&h, AVX2 | BMI2, 2000000);
	/* what is not compared: family/model, APIC ids, cache leaves, run-time bits */
	find(&h, 1, 0)->eax = 0x000806f8;
	find(&h, 1, 0)->ebx = 0x07020800;
	find(&h, 4, 0)->eax = 0x4163;
	find(&g, 1, 0)->ecx |= 1u << 27;		/* osxsave */
	find(&g, 7, 0)->ecx |= 1u << 4;		/* ospke */
	/* and more on the host is fine */
	find(&h, 7, 0)->ebx |= 1u << 16;
	cpucheck_compare(&g, &h, &r);
	assert_int_equal(r.nmissing, 0);
	assert_false(r.tsc_differs);
	assert_int_equal(cpucheck_verdict(&r, true, true, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
}

static void test_cpucheck_missing_named(void **state)
{
	struct cpucheck_cpu g, h;
	struct cpucheck_result r;
	char msg[512];

	(void)state;
	make_cpu(&g, AVX2 | BMI2 | BIT13, 2000000);
	make_cpu(&h, 0, 2000000);
	cpucheck_compare(&g, &h, &r);
	assert_int_equal(r.nmissing, 3);
	assert_int_equal(cpucheck_verdict(&r, false, true, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "the destination's CPU lacks avx2, bmi2, cpuid 0x7.0 ebx bit 13 "
				 "(the guest uses them); the guest stays on the source");
	/* one feature, and a restore's words */
	make_cpu(&h, BMI2 | BIT13, 2000000);
	cpucheck_compare(&g, &h, &r);
	assert_int_equal(r.nmissing, 1);
	assert_int_equal(cpucheck_verdict(&r, false, false, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "this host's CPU lacks avx2 (the guest uses it)");
}

static void test_cpucheck_missing_leaf(void **state)
{
	struct cpucheck_cpu g, h;
	struct cpucheck_result r;
	char msg[512];

	(void)state;
	make_cpu(&g, AVX2, 2000000);
	make_cpu(&h, AVX2, 2000000);
	/* the host has no KVM leaf at all, and the AMD fpu copy masked: both show, fpu once */
	find(&h, 0x40000001, 0)->function = 0x40000000;
	find(&h, 1, 0)->edx &= ~1u;
	find(&h, 0x80000001, 0)->edx &= ~1u;
	cpucheck_compare(&g, &h, &r);
	assert_int_equal(r.nmissing, 3);
	assert_int_equal(cpucheck_verdict(&r, false, true, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "the destination's CPU lacks fpu, kvmclock (the guest uses them); "
				 "the guest stays on the source");
	/* a leaf whose index KVM says counts: 7.1 does not stand in for 7.0 */
	make_cpu(&h, AVX2, 2000000);
	find(&h, 7, 0)->index = 2;
	cpucheck_compare(&g, &h, &r);
	assert_int_equal(r.nmissing, 1);
	assert_int_equal(r.missing[0].word, CPUCHECK_W_7_0_EBX);
	assert_int_equal(r.missing[0].bit, 5);
}

static void test_cpucheck_tsc(void **state)
{
	struct cpucheck_cpu g, h;
	struct cpucheck_result r;
	char msg[512];

	(void)state;
	make_cpu(&g, AVX2, 2000000);
	/* within 250 ppm (500 kHz of 2 GHz) KVM does not tell rates apart */
	make_cpu(&h, AVX2, 2000500);
	cpucheck_compare(&g, &h, &r);
	assert_false(r.tsc_differs);
	make_cpu(&h, AVX2, 2000501);
	cpucheck_compare(&g, &h, &r);
	assert_true(r.tsc_differs);
	assert_int_equal(r.guest_tsc_khz, 2000000);
	assert_int_equal(r.host_tsc_khz, 2000501);
	make_cpu(&h, AVX2, 2400000);
	cpucheck_compare(&g, &h, &r);
	assert_int_equal(cpucheck_verdict(&r, false, true, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "the destination's TSC runs at 2400000 kHz, the guest's at "
				 "2000000 kHz: the guest's TSC rate changes (--strict-cpu would "
				 "refuse this)");
	assert_int_equal(cpucheck_verdict(&r, true, true, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "the destination's TSC runs at 2400000 kHz, the guest's at "
				 "2000000 kHz, and --strict-cpu refuses any TSC difference; the "
				 "guest stays on the source");
	/* both at once */
	make_cpu(&h, 0, 2400000);
	cpucheck_compare(&g, &h, &r);
	assert_int_equal(cpucheck_verdict(&r, true, true, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_string_equal(msg, "the destination's CPU lacks avx2 (the guest uses it), and its "
				 "TSC runs at 2400000 kHz, the guest's at 2000000 kHz (--strict-cpu "
				 "refuses any difference); the guest stays on the source");
	/* an unknown rate is not compared */
	make_cpu(&h, AVX2, 0);
	cpucheck_compare(&g, &h, &r);
	assert_false(r.tsc_differs);
}

static void test_cpucheck_many_missing(void **state)
{
	struct cpucheck_cpu g, h;
	struct cpucheck_result r;
	char msg[2048];

	(void)state;
	make_cpu(&g, 0xffffffffu, 2000000);
	find(&g, 7, 0)->ecx = 0xffffffffu;
	find(&g, 7, 0)->edx = 0xffffffffu;
	find(&g, 0x80000001, 0)->ecx = 0xffffffffu;
	make_cpu(&h, 0, 2000000);
	cpucheck_compare(&g, &h, &r);
	/* 32 + 31 (ospke is not compared) + 32 + 32 */
	assert_int_equal(r.nmissing, 127);
	assert_int_equal(cpucheck_verdict(&r, false, true, msg, sizeof(msg)), -EOPNOTSUPP);
	assert_non_null(strstr(msg, "lacks fsgsbase, tsc_adjust, sgx,"));
	assert_non_null(strstr(msg, " and 63 more (the guest uses them)"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpucheck_names),
		cmocka_unit_test(test_cpucheck_mask_parse),
		cmocka_unit_test(test_cpucheck_mask_apply),
		cmocka_unit_test(test_cpucheck_same_cpu_passes),
		cmocka_unit_test(test_cpucheck_missing_named),
		cmocka_unit_test(test_cpucheck_missing_leaf),
		cmocka_unit_test(test_cpucheck_tsc),
		cmocka_unit_test(test_cpucheck_many_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
