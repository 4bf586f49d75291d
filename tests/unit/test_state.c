/* SPDX-License-Identifier: MIT */
/*
 * test_state.c - state sections: every section round-trips field by field,
 * and loading rejects truncation, a wrong version, a wrong length, a bad
 * checksum and out-of-range values, each with its own error. CONFIG carries
 * the dirty ring (version 2) and still reads version 1 as earlier builds
 * wrote it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/helpers/frame_bytes.h"	/* reseal: sections end in the same CRC32C */
#include "tests/helpers/prng.h"

#include "common/buf.h"
#include "common/crc32c.h"
#include "vm/guest_abi.h"
#include "vm/state.h"

static struct prng rng;

static uint64_t rnd(void)
{
	return prng_next(&rng);
}

static void fill(void *p, size_t n)
{
	uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

static void fix_segment(struct kvm_segment *s)
{
	s->present &= 1;
	s->dpl &= 3;
	s->db &= 1;
	s->s &= 1;
	s->l &= 1;
	s->g &= 1;
	s->avl &= 1;
	s->unusable &= 1;
	s->type &= 15;
	s->padding = 0;
}

/* Random state with every value in range and every padding byte zero. */
static void random_state(struct vm_state *st, unsigned vcpus)
{
	fill(st, sizeof(*st));
	memset(&st->config, 0, sizeof(st->config));
	snprintf(st->config.name, sizeof(st->config.name), "vm-%u", (unsigned)(rnd() % 1000));
	st->config.mem_bytes = 64ull << 20;
	st->config.vcpus = vcpus;
	strcpy(st->config.guest, "memcheck");
	strcpy(st->config.guest_args, "workset=4M,seed=3");
	st->config.mac[0] = 0x52;
	st->config.mac[1] = 0x54;
	for (unsigned i = 0; i < VM_MAX_VCPUS; i++) {
		struct vcpu_state *v = &st->vcpu[i];
		struct kvm_segment *segs[] = { &v->sregs.cs, &v->sregs.ds, &v->sregs.es,
					       &v->sregs.fs, &v->sregs.gs, &v->sregs.ss,
					       &v->sregs.tr, &v->sregs.ldt };

		if (i >= vcpus) {
			memset(v, 0, sizeof(*v));
			continue;
		}
		v->index = i;
		for (size_t k = 0; k < ARRAY_SIZE(segs); k++)
			fix_segment(segs[k]);
		memset(v->sregs.gdt.padding, 0, sizeof(v->sregs.gdt.padding));
		memset(v->sregs.idt.padding, 0, sizeof(v->sregs.idt.padding));
		v->sregs.cr8 &= 15;
		v->fpu.pad1 = 0;
		v->fpu.pad2 = 0;
		v->xcrs.nr_xcrs = 1 + (uint32_t)(rnd() % KVM_MAX_XCRS);
		for (unsigned k = 0; k < KVM_MAX_XCRS; k++)
			v->xcrs.xcrs[k].reserved = 0;
		memset(v->xcrs.padding, 0, sizeof(v->xcrs.padding));
		v->events.exception.nr &= 31;
		v->events.exception.injected &= 1;
		v->events.exception.pending &= 1;
		v->events.interrupt.injected &= 1;
		v->events.nmi.injected &= 1;
		v->events.nmi.masked &= 1;
		v->events.nmi.pad = 0;
		memset(v->events.reserved, 0, sizeof(v->events.reserved));
		v->mp_state = (uint32_t)(rnd() % (KVM_MP_STATE_AP_RESET_HOLD + 1));
		memset(v->debugregs.reserved, 0, sizeof(v->debugregs.reserved));
		v->tsc_khz = 1000000 + (uint32_t)(rnd() % 3000000);
		v->nmsrs = 1 + (uint32_t)(rnd() % STATE_MAX_MSRS);
		for (unsigned k = 0; k < STATE_MAX_MSRS; k++)
			v->msrs[k].reserved = 0;
		memset(v->msrs + v->nmsrs, 0, (STATE_MAX_MSRS - v->nmsrs) * sizeof(v->msrs[0]));
		v->ncpuid = 1 + (uint32_t)(rnd() % STATE_MAX_CPUID);
		for (unsigned k = 0; k < STATE_MAX_CPUID; k++)
			memset(v->cpuid[k].padding, 0, sizeof(v->cpuid[k].padding));
		memset(v->cpuid + v->ncpuid, 0, (STATE_MAX_CPUID - v->ncpuid) * sizeof(v->cpuid[0]));
	}
	st->ioapic.pad = 0;
	for (int c = 0; c < 3; c++)
		st->pit.channels[c].mode = (uint8_t)(rnd() % 6);
	memset(st->pit.reserved, 0, sizeof(st->pit.reserved));
	st->clock.pad0 = 0;
	st->clock.realtime = 0;
	st->clock.host_tsc = 0;
	memset(st->clock.pad, 0, sizeof(st->clock.pad));
	st->uart.console_len = (uint32_t)(rnd() % VM_CONSOLE_BYTES);
	memset(st->uart.console + st->uart.console_len, 0, VM_CONSOLE_BYTES - st->uart.console_len);
	st->ev.started_mask = (uint32_t)(rnd() & ((1u << VM_MAX_VCPUS) - 1));
}

static uint8_t buf[1u << 20];

static void round_trip(struct vm_state *src, struct vm_state *dst, enum state_section_type t,
		       unsigned vcpu)
{
	char err[256] = "";
	size_t used = 0;
	unsigned type = 0;
	ssize_t n = state_write_section(src, t, vcpu, buf, sizeof(buf));
	int ret;

	assert_true(n > 0);
	assert_true((size_t)n <= state_section_bound());
	ret = state_read_section(dst, buf, (size_t)n, &used, &type, err, sizeof(err));
	if (ret)
		fail_msg("section %s: %s", state_section_name(t), err);
	assert_int_equal(used, (size_t)n);
	assert_int_equal(type, t);
}

static void test_state_round_trip(void **unused)
{
	static struct vm_state src, dst;

	(void)unused;
	for (unsigned round = 0; round < 20; round++) {
		unsigned vcpus = 1 + round % VM_MAX_VCPUS;

		random_state(&src, vcpus);
		memset(&dst, 0, sizeof(dst));
		round_trip(&src, &dst, STATE_SEC_CONFIG, 0);
		for (unsigned i = 0; i < vcpus; i++)
			round_trip(&src, &dst, STATE_SEC_VCPU, i);
		round_trip(&src, &dst, STATE_SEC_IRQCHIP, 0);
		round_trip(&src, &dst, STATE_SEC_PIT, 0);
		round_trip(&src, &dst, STATE_SEC_CLOCK, 0);
		round_trip(&src, &dst, STATE_SEC_UART, 0);
		round_trip(&src, &dst, STATE_SEC_EVENTS, 0);
		round_trip(&src, &dst, STATE_SEC_NIC, 0);
		/* every field, compared member by member through the structs */
		assert_memory_equal(&src.config, &dst.config, sizeof(src.config));
		for (unsigned i = 0; i < vcpus; i++) {
			const struct vcpu_state *a = &src.vcpu[i], *b = &dst.vcpu[i];

			assert_memory_equal(&a->regs, &b->regs, sizeof(a->regs));
			assert_memory_equal(&a->sregs, &b->sregs, sizeof(a->sregs));
			assert_memory_equal(&a->fpu, &b->fpu, sizeof(a->fpu));
			assert_memory_equal(&a->xcrs, &b->xcrs, sizeof(a->xcrs));
			assert_memory_equal(a->xsave, b->xsave, sizeof(a->xsave));
			assert_memory_equal(a->lapic, b->lapic, sizeof(a->lapic));
			assert_memory_equal(&a->events, &b->events, sizeof(a->events));
			assert_int_equal(a->mp_state, b->mp_state);
			assert_memory_equal(&a->debugregs, &b->debugregs, sizeof(a->debugregs));
			assert_int_equal(a->tsc_khz, b->tsc_khz);
			assert_int_equal(a->nmsrs, b->nmsrs);
			assert_memory_equal(a->msrs, b->msrs, sizeof(a->msrs));
			assert_int_equal(a->ncpuid, b->ncpuid);
			assert_memory_equal(a->cpuid, b->cpuid, sizeof(a->cpuid));
		}
		assert_memory_equal(src.pic, dst.pic, sizeof(src.pic));
		assert_memory_equal(&src.ioapic, &dst.ioapic, sizeof(src.ioapic));
		assert_memory_equal(&src.pit, &dst.pit, sizeof(src.pit));
		assert_int_equal(src.clock.clock, dst.clock.clock);
		assert_int_equal(src.clock.flags, dst.clock.flags);
		assert_int_equal(src.uart.ier, dst.uart.ier);
		assert_int_equal(src.uart.iir, dst.uart.iir);
		assert_int_equal(src.uart.lcr, dst.uart.lcr);
		assert_int_equal(src.uart.mcr, dst.uart.mcr);
		assert_int_equal(src.uart.lsr, dst.uart.lsr);
		assert_int_equal(src.uart.msr, dst.uart.msr);
		assert_int_equal(src.uart.scr, dst.uart.scr);
		assert_int_equal(src.uart.dll, dst.uart.dll);
		assert_int_equal(src.uart.dlm, dst.uart.dlm);
		assert_int_equal(src.uart.console_len, dst.uart.console_len);
		assert_int_equal(src.uart.console_total, dst.uart.console_total);
		assert_memory_equal(src.uart.console, dst.uart.console, src.uart.console_len);
		assert_int_equal(src.ev.progress, dst.ev.progress);
		assert_int_equal(src.ev.errors, dst.ev.errors);
		assert_int_equal(src.ev.ticks, dst.ev.ticks);
		assert_int_equal(src.ev.last_error_gfn, dst.ev.last_error_gfn);
		assert_int_equal(src.ev.events, dst.ev.events);
		assert_int_equal(src.ev.fatal, dst.ev.fatal);
		assert_int_equal(src.ev.started_mask, dst.ev.started_mask);
	}
}

static void test_state_write_all_then_complete(void **unused)
{
	static struct vm_state src, dst;
	size_t off = 0;
	uint32_t seen = 0, vmask = 0;
	char err[256];
	ssize_t n;

	(void)unused;
	random_state(&src, 3);
	memset(&dst, 0, sizeof(dst));
	n = state_write_all(&src, buf, sizeof(buf));
	assert_true(n > 0);
	while (off < (size_t)n) {
		size_t used;
		unsigned type;

		assert_int_equal(state_read_section(&dst, buf + off, (size_t)n - off, &used, &type,
						    err, sizeof(err)),
				 0);
		seen |= 1u << type;
		if (type == STATE_SEC_VCPU)
			vmask |= 1u << buf[off + 8];
		off += used;
	}
	assert_int_equal(state_check_complete(&dst, seen, vmask, err, sizeof(err)), 0);
	/* a missing vCPU is caught */
	assert_int_equal(state_check_complete(&dst, seen, vmask & ~2u, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "vCPU"));
	/* a missing section is caught */
	assert_int_equal(state_check_complete(&dst, seen & ~(1u << STATE_SEC_PIT), vmask, err,
					      sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "pit"));
}

static ssize_t make_section(struct vm_state *st, enum state_section_type t)
{
	random_state(st, 2);
	return state_write_section(st, t, 0, buf, sizeof(buf));
}

static int read_back(size_t n, char *err, size_t errlen)
{
	static struct vm_state dst;
	size_t used;
	unsigned type;

	memset(&dst, 0, sizeof(dst));
	return state_read_section(&dst, buf, n, &used, &type, err, errlen);
}

/* CONFIG as an earlier build wrote it: version 1, 354 bytes, no dirty ring. */
static size_t old_config(const struct vm_config *c, uint16_t version, size_t extra)
{
	struct wbuf w;
	size_t n;

	wbuf_init(&w, buf, sizeof(buf));
	put_le16(&w, STATE_SEC_CONFIG);
	put_le16(&w, version);
	put_le32(&w, (uint32_t)(354 + extra));
	put_bytes(&w, c->name, VM_NAME_MAX);
	put_le64(&w, c->mem_bytes);
	put_le32(&w, c->vcpus);
	put_bytes(&w, c->guest, VM_GUEST_NAME_MAX);
	put_bytes(&w, c->guest_args, VM_GUEST_ARGS_MAX);
	put_bytes(&w, c->mac, 6);
	for (size_t i = 0; i < extra; i++)
		put_u8(&w, 0);
	put_le32(&w, 0);
	assert_true(wbuf_ok(&w));
	n = w.len;
	reseal(buf, n);
	return n;
}

/* The dirty ring travels in CONFIG version 2; a VM without one stays version 1. */
static void test_state_config_carries_dirty_ring(void **unused)
{
	static struct vm_state src, dst;
	uint32_t rings[] = { 256, 4096, 65536 };

	(void)unused;
	for (size_t i = 0; i < ARRAY_SIZE(rings); i++) {
		random_state(&src, 2);
		src.config.dirty_ring = rings[i];
		memset(&dst, 0, sizeof(dst));
		round_trip(&src, &dst, STATE_SEC_CONFIG, 0);
		assert_int_equal(buf[2] | buf[3] << 8, 2);			/* version 2 */
		assert_int_equal(buf[4] | buf[5] << 8, 358);			/* 354 + u32 */
		assert_memory_equal(&src.config, &dst.config, sizeof(src.config));
		assert_int_equal(dst.config.dirty_ring, rings[i]);
	}
	random_state(&src, 1);
	src.config.dirty_ring = 0;
	memset(&dst, 0, sizeof(dst));
	dst.config.dirty_ring = 4096;
	round_trip(&src, &dst, STATE_SEC_CONFIG, 0);
	assert_int_equal(buf[2] | buf[3] << 8, 1);	/* what earlier builds read */
	assert_int_equal(buf[4] | buf[5] << 8, 354);
	assert_memory_equal(&src.config, &dst.config, sizeof(src.config));
}

/* An old snapshot's CONFIG loads (no ring); malformed mixes of version and length do not. */
static void test_state_config_v1_still_accepted(void **unused)
{
	static struct vm_state src, dst;
	char err[256] = "";
	size_t used = 0;
	unsigned type = 0;
	size_t n;

	(void)unused;
	random_state(&src, 2);
	src.config.dirty_ring = 0;
	n = old_config(&src.config, 1, 0);
	memset(&dst, 0, sizeof(dst));
	dst.config.dirty_ring = 1024;	/* must be overwritten with "no ring" */
	if (state_read_section(&dst, buf, n, &used, &type, err, sizeof(err)))
		fail_msg("old CONFIG refused: %s", err);
	assert_int_equal(used, n);
	assert_int_equal(type, STATE_SEC_CONFIG);
	assert_memory_equal(&src.config, &dst.config, sizeof(src.config));
	assert_int_equal(dst.config.dirty_ring, 0);

	/* version 1 with version 2's length, version 2 with version 1's */
	n = old_config(&src.config, 1, 4);
	assert_int_equal(read_back(n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "must be 354"));
	n = old_config(&src.config, 2, 0);
	assert_int_equal(read_back(n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "must be 358"));
	/* a version from the future */
	n = old_config(&src.config, 3, 4);
	assert_int_equal(read_back(n, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "version 3"));
	/* version 2 with a ring KVM cannot have */
	n = old_config(&src.config, 2, 4);
	buf[8 + 354] = 0xe8;	/* 1000 entries: not a power of two */
	buf[8 + 355] = 0x03;
	reseal(buf, n);
	assert_int_equal(read_back(n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "dirty ring"));
}

static void test_state_rejects_truncated(void **unused)
{
	static struct vm_state st;
	char err[256];
	ssize_t n = make_section(&st, STATE_SEC_VCPU);

	(void)unused;
	assert_true(n > 0);
	assert_int_equal(read_back((size_t)n - 1, err, sizeof(err)), -ECONNRESET);
	assert_non_null(strstr(err, "truncated"));
	assert_int_equal(read_back(5, err, sizeof(err)), -ECONNRESET);
	assert_int_equal(read_back(0, err, sizeof(err)), -ECONNRESET);
}

static void test_state_rejects_wrong_version(void **unused)
{
	static struct vm_state st;
	char err[256];
	ssize_t n = make_section(&st, STATE_SEC_PIT);

	(void)unused;
	buf[2] = 7; /* version 7 */
	reseal(buf, (size_t)n);
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "version 7"));
}

static void test_state_rejects_wrong_length(void **unused)
{
	static struct vm_state st;
	char err[256];
	ssize_t n = make_section(&st, STATE_SEC_CLOCK);

	(void)unused;
	buf[4] = (uint8_t)(buf[4] + 1); /* payload one byte longer than a clock */
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "bytes long"));
}

static void test_state_rejects_unknown_type(void **unused)
{
	static struct vm_state st;
	char err[256];
	ssize_t n = make_section(&st, STATE_SEC_NIC);

	(void)unused;
	buf[0] = 99;
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "unknown section type 99"));
}

static void test_state_rejects_flipped_byte(void **unused)
{
	static struct vm_state st;
	char err[256];
	ssize_t n = make_section(&st, STATE_SEC_VCPU);

	(void)unused;
	for (size_t pos = STATE_SEC_HDR_BYTES; pos < (size_t)n; pos += 997) {
		buf[pos] ^= 0x10;
		assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
		assert_non_null(strstr(err, "checksum"));
		buf[pos] ^= 0x10;
	}
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), 0);
}

static void test_state_rejects_out_of_range(void **unused)
{
	static struct vm_state st;
	char err[256];
	ssize_t n;

	(void)unused;
	/* vCPU count beyond the maximum */
	random_state(&st, 2);
	st.config.vcpus = VM_MAX_VCPUS + 1;
	n = state_write_section(&st, STATE_SEC_CONFIG, 0, buf, sizeof(buf));
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "vCPU"));

	/* memory below the minimum */
	random_state(&st, 2);
	st.config.mem_bytes = 1 << 20;
	n = state_write_section(&st, STATE_SEC_CONFIG, 0, buf, sizeof(buf));
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "memory"));

	/* an MP state KVM does not have */
	random_state(&st, 2);
	st.vcpu[0].mp_state = 99;
	n = state_write_section(&st, STATE_SEC_VCPU, 0, buf, sizeof(buf));
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "mp_state 99"));

	/* a segment attribute out of range */
	random_state(&st, 2);
	st.vcpu[1].sregs.cs.dpl = 4;
	n = state_write_section(&st, STATE_SEC_VCPU, 1, buf, sizeof(buf));
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "segment cs"));

	/* a PIT mode out of range */
	random_state(&st, 2);
	st.pit.channels[1].mode = 9;
	n = state_write_section(&st, STATE_SEC_PIT, 0, buf, sizeof(buf));
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "mode 9"));

	/* a vCPU index beyond the maximum */
	random_state(&st, 2);
	n = state_write_section(&st, STATE_SEC_VCPU, 0, buf, sizeof(buf));
	buf[8] = VM_MAX_VCPUS;
	reseal(buf, (size_t)n);
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "index"));

	/* an unknown guest */
	random_state(&st, 2);
	strcpy(st.config.guest, "doom");
	n = state_write_section(&st, STATE_SEC_CONFIG, 0, buf, sizeof(buf));
	assert_int_equal(read_back((size_t)n, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "doom"));
}

static void test_state_write_needs_space(void **unused)
{
	static struct vm_state st;

	(void)unused;
	random_state(&st, 1);
	assert_int_equal(state_write_section(&st, STATE_SEC_VCPU, 0, buf, 100), -ENOSPC);
	assert_int_equal(state_write_section(&st, STATE_SEC_RAM, 0, buf, sizeof(buf)), -EINVAL);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_state_write_all_then_complete),
		cmocka_unit_test(test_state_rejects_truncated),
		cmocka_unit_test(test_state_rejects_wrong_version),
		cmocka_unit_test(test_state_rejects_wrong_length),
		cmocka_unit_test(test_state_rejects_unknown_type),
		cmocka_unit_test(test_state_rejects_flipped_byte),
		cmocka_unit_test(test_state_rejects_out_of_range),
		cmocka_unit_test(test_state_write_needs_space),
		cmocka_unit_test(test_state_config_carries_dirty_ring),
		cmocka_unit_test(test_state_config_v1_still_accepted),
	};

	prng_init(&rng, prng_seed("test_state", argc, argv, 0x1234567887654321ull));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
