/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "state: "
#include "vm/state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/crc32c.h"
#include "common/err.h"
#include "common/log.h"

/*
 * A field table lists the fields of a struct in wire order: offset, size of
 * one element (1, 2, 4 or 8 bytes, written little-endian) and the number of
 * elements. Serializing walks the table, so the byte layout is written down
 * here once and never depends on the compiler's struct layout.
 */
struct field {
	unsigned short off;
	unsigned char size;
	unsigned short count;
};

#define MSIZE(type, m) sizeof(((type *)0)->m)
#define F(type, m) { offsetof(type, m), MSIZE(type, m), 1 }
/* an array member of n elements of size s */
#define FA(type, m, s) { offsetof(type, m), s, MSIZE(type, m) / (s) }
#define FEND { 0, 0, 0 }

#define SEG(m)                                                                             \
	F(struct kvm_sregs, m.base), F(struct kvm_sregs, m.limit),                         \
		F(struct kvm_sregs, m.selector), F(struct kvm_sregs, m.type),              \
		F(struct kvm_sregs, m.present), F(struct kvm_sregs, m.dpl),                \
		F(struct kvm_sregs, m.db), F(struct kvm_sregs, m.s), F(struct kvm_sregs, m.l), \
		F(struct kvm_sregs, m.g), F(struct kvm_sregs, m.avl), F(struct kvm_sregs, m.unusable)

static const struct field regs_fields[] = {
	F(struct kvm_regs, rax), F(struct kvm_regs, rbx), F(struct kvm_regs, rcx),
	F(struct kvm_regs, rdx), F(struct kvm_regs, rsi), F(struct kvm_regs, rdi),
	F(struct kvm_regs, rsp), F(struct kvm_regs, rbp), F(struct kvm_regs, r8),
	F(struct kvm_regs, r9),	 F(struct kvm_regs, r10), F(struct kvm_regs, r11),
	F(struct kvm_regs, r12), F(struct kvm_regs, r13), F(struct kvm_regs, r14),
	F(struct kvm_regs, r15), F(struct kvm_regs, rip), F(struct kvm_regs, rflags),
	FEND,
};

static const struct field sregs_fields[] = {
	SEG(cs), SEG(ds), SEG(es), SEG(fs), SEG(gs), SEG(ss), SEG(tr), SEG(ldt),
	F(struct kvm_sregs, gdt.base), F(struct kvm_sregs, gdt.limit),
	F(struct kvm_sregs, idt.base), F(struct kvm_sregs, idt.limit),
	F(struct kvm_sregs, cr0), F(struct kvm_sregs, cr2), F(struct kvm_sregs, cr3),
	F(struct kvm_sregs, cr4), F(struct kvm_sregs, cr8), F(struct kvm_sregs, efer),
	F(struct kvm_sregs, apic_base), FA(struct kvm_sregs, interrupt_bitmap, 8),
	FEND,
};

static const struct field fpu_fields[] = {
	FA(struct kvm_fpu, fpr, 1), F(struct kvm_fpu, fcw), F(struct kvm_fpu, fsw),
	F(struct kvm_fpu, ftwx), F(struct kvm_fpu, last_opcode), F(struct kvm_fpu, last_ip),
	F(struct kvm_fpu, last_dp), FA(struct kvm_fpu, xmm, 1), F(struct kvm_fpu, mxcsr),
	FEND,
};

static const struct field events_fields[] = {
	F(struct kvm_vcpu_events, exception.injected), F(struct kvm_vcpu_events, exception.nr),
	F(struct kvm_vcpu_events, exception.has_error_code),
	F(struct kvm_vcpu_events, exception.pending),
	F(struct kvm_vcpu_events, exception.error_code),
	F(struct kvm_vcpu_events, interrupt.injected), F(struct kvm_vcpu_events, interrupt.nr),
	F(struct kvm_vcpu_events, interrupt.soft), F(struct kvm_vcpu_events, interrupt.shadow),
	F(struct kvm_vcpu_events, nmi.injected), F(struct kvm_vcpu_events, nmi.pending),
	F(struct kvm_vcpu_events, nmi.masked), F(struct kvm_vcpu_events, sipi_vector),
	F(struct kvm_vcpu_events, flags), F(struct kvm_vcpu_events, smi.smm),
	F(struct kvm_vcpu_events, smi.pending), F(struct kvm_vcpu_events, smi.smm_inside_nmi),
	F(struct kvm_vcpu_events, smi.latched_init),
	F(struct kvm_vcpu_events, triple_fault.pending),
	F(struct kvm_vcpu_events, exception_has_payload),
	F(struct kvm_vcpu_events, exception_payload),
	FEND,
};

static const struct field debugregs_fields[] = {
	FA(struct kvm_debugregs, db, 8), F(struct kvm_debugregs, dr6),
	F(struct kvm_debugregs, dr7), F(struct kvm_debugregs, flags),
	FEND,
};

static const struct field pic_fields[] = {
	F(struct kvm_pic_state, last_irr), F(struct kvm_pic_state, irr),
	F(struct kvm_pic_state, imr), F(struct kvm_pic_state, isr),
	F(struct kvm_pic_state, priority_add), F(struct kvm_pic_state, irq_base),
	F(struct kvm_pic_state, read_reg_select), F(struct kvm_pic_state, poll),
	F(struct kvm_pic_state, special_mask), F(struct kvm_pic_state, init_state),
	F(struct kvm_pic_state, auto_eoi), F(struct kvm_pic_state, rotate_on_auto_eoi),
	F(struct kvm_pic_state, special_fully_nested_mode), F(struct kvm_pic_state, init4),
	F(struct kvm_pic_state, elcr), F(struct kvm_pic_state, elcr_mask),
	FEND,
};

static const struct field ioapic_fields[] = {
	F(struct kvm_ioapic_state, base_address), F(struct kvm_ioapic_state, ioregsel),
	F(struct kvm_ioapic_state, id), F(struct kvm_ioapic_state, irr),
	FA(struct kvm_ioapic_state, redirtbl, 8),
	FEND,
};

#define PITCH(i)                                                                              \
	F(struct kvm_pit_state2, channels[i].count),                                          \
		F(struct kvm_pit_state2, channels[i].latched_count),                          \
		F(struct kvm_pit_state2, channels[i].count_latched),                          \
		F(struct kvm_pit_state2, channels[i].status_latched),                         \
		F(struct kvm_pit_state2, channels[i].status),                                 \
		F(struct kvm_pit_state2, channels[i].read_state),                             \
		F(struct kvm_pit_state2, channels[i].write_state),                            \
		F(struct kvm_pit_state2, channels[i].write_latch),                            \
		F(struct kvm_pit_state2, channels[i].rw_mode),                                \
		F(struct kvm_pit_state2, channels[i].mode), F(struct kvm_pit_state2, channels[i].bcd), \
		F(struct kvm_pit_state2, channels[i].gate),                                   \
		F(struct kvm_pit_state2, channels[i].count_load_time)

static const struct field pit_fields[] = {
	PITCH(0), PITCH(1), PITCH(2), F(struct kvm_pit_state2, flags),
	FEND,
};

static const struct field clock_fields[] = {
	F(struct kvm_clock_data, clock), F(struct kvm_clock_data, flags),
	FEND,
};

static const struct field uart_fields[] = {
	F(struct uart_state, ier), F(struct uart_state, iir), F(struct uart_state, lcr),
	F(struct uart_state, mcr), F(struct uart_state, lsr), F(struct uart_state, msr),
	F(struct uart_state, scr), F(struct uart_state, dll), F(struct uart_state, dlm),
	F(struct uart_state, console_len), F(struct uart_state, console_total),
	FEND, /* console bytes follow: console_len of them */
};

static const struct field ev_fields[] = {
	F(struct events_state, progress), F(struct events_state, errors),
	F(struct events_state, ticks), F(struct events_state, last_error_gfn),
	F(struct events_state, events), F(struct events_state, fatal),
	F(struct events_state, started_mask),
	FEND,
};

static void put_fields(struct wbuf *w, const struct field *f, const void *obj)
{
	const uint8_t *base = obj;

	for (; f->size; f++) {
		for (unsigned i = 0; i < f->count; i++) {
			const uint8_t *p = base + f->off + (size_t)i * f->size;
			uint64_t v = 0;

			switch (f->size) {
			case 1:
				put_u8(w, *p);
				break;
			case 2: {
				uint16_t x;

				memcpy(&x, p, 2);
				put_le16(w, x);
				break;
			}
			case 4: {
				uint32_t x;

				memcpy(&x, p, 4);
				put_le32(w, x);
				break;
			}
			default:
				memcpy(&v, p, 8);
				put_le64(w, v);
				break;
			}
		}
	}
}

static void get_fields(struct rbuf *r, const struct field *f, void *obj)
{
	uint8_t *base = obj;

	for (; f->size; f++) {
		for (unsigned i = 0; i < f->count; i++) {
			uint8_t *p = base + f->off + (size_t)i * f->size;

			switch (f->size) {
			case 1:
				*p = get_u8(r);
				break;
			case 2: {
				uint16_t x = get_le16(r);

				memcpy(p, &x, 2);
				break;
			}
			case 4: {
				uint32_t x = get_le32(r);

				memcpy(p, &x, 4);
				break;
			}
			default: {
				uint64_t x = get_le64(r);

				memcpy(p, &x, 8);
				break;
			}
			}
		}
	}
}

static size_t fields_bytes(const struct field *f)
{
	size_t n = 0;

	for (; f->size; f++)
		n += (size_t)f->size * f->count;
	return n;
}

/* ---- per-section payloads ------------------------------------------- */

/* CONFIG version 1 (354 bytes); version 2 appends dirty_ring u32 (358). */
#define CONFIG_V1_BYTES (VM_NAME_MAX + 8 + 4 + VM_GUEST_NAME_MAX + VM_GUEST_ARGS_MAX + 6)
#define CONFIG_BYTES (CONFIG_V1_BYTES + 4)
#define CONFIG_VERSION 2

/*
 * A VM without a dirty ring is written as version 1, byte for byte what
 * earlier builds wrote and read; only a ring needs version 2.
 */
static unsigned config_version(const struct vm_config *c)
{
	return c->dirty_ring ? CONFIG_VERSION : 1;
}

static void put_config(struct wbuf *w, const struct vm_config *c)
{
	put_bytes(w, c->name, VM_NAME_MAX);
	put_le64(w, c->mem_bytes);
	put_le32(w, c->vcpus);
	put_bytes(w, c->guest, VM_GUEST_NAME_MAX);
	put_bytes(w, c->guest_args, VM_GUEST_ARGS_MAX);
	put_bytes(w, c->mac, 6);
	if (config_version(c) >= 2)
		put_le32(w, c->dirty_ring);
}

static void get_config(struct rbuf *r, unsigned ver, struct vm_config *c)
{
	get_bytes(r, c->name, VM_NAME_MAX);
	c->mem_bytes = get_le64(r);
	c->vcpus = get_le32(r);
	get_bytes(r, c->guest, VM_GUEST_NAME_MAX);
	get_bytes(r, c->guest_args, VM_GUEST_ARGS_MAX);
	get_bytes(r, c->mac, 6);
	c->dirty_ring = ver >= 2 ? get_le32(r) : 0;	/* version 1: no ring */
}

static void put_vcpu(struct wbuf *w, const struct vcpu_state *v)
{
	put_le32(w, v->index);
	put_fields(w, regs_fields, &v->regs);
	put_fields(w, sregs_fields, &v->sregs);
	put_fields(w, fpu_fields, &v->fpu);
	put_le32(w, v->xcrs.nr_xcrs);
	put_le32(w, v->xcrs.flags);
	for (unsigned i = 0; i < KVM_MAX_XCRS; i++) {
		put_le32(w, v->xcrs.xcrs[i].xcr);
		put_le64(w, v->xcrs.xcrs[i].value);
	}
	put_bytes(w, v->xsave, sizeof(v->xsave));
	put_bytes(w, v->lapic, sizeof(v->lapic));
	put_fields(w, events_fields, &v->events);
	put_le32(w, v->mp_state);
	put_fields(w, debugregs_fields, &v->debugregs);
	put_le32(w, v->tsc_khz);
	put_le32(w, v->nmsrs);
	for (unsigned i = 0; i < v->nmsrs && i < STATE_MAX_MSRS; i++) {
		put_le32(w, v->msrs[i].index);
		put_le64(w, v->msrs[i].data);
	}
	put_le32(w, v->ncpuid);
	for (unsigned i = 0; i < v->ncpuid && i < STATE_MAX_CPUID; i++) {
		const struct kvm_cpuid_entry2 *e = &v->cpuid[i];

		put_le32(w, e->function);
		put_le32(w, e->index);
		put_le32(w, e->flags);
		put_le32(w, e->eax);
		put_le32(w, e->ebx);
		put_le32(w, e->ecx);
		put_le32(w, e->edx);
	}
}

#define MSR_BYTES 12
#define CPUID_BYTES 28

static size_t vcpu_fixed_bytes(void)
{
	return 4 + fields_bytes(regs_fields) + fields_bytes(sregs_fields) +
	       fields_bytes(fpu_fields) + 8 + KVM_MAX_XCRS * 12 + 4096 + KVM_APIC_REG_SIZE +
	       fields_bytes(events_fields) + 4 + fields_bytes(debugregs_fields) + 4 + 4 + 4;
}

static void get_vcpu(struct rbuf *r, struct vcpu_state *v)
{
	memset(v, 0, sizeof(*v));
	v->index = get_le32(r);
	get_fields(r, regs_fields, &v->regs);
	get_fields(r, sregs_fields, &v->sregs);
	get_fields(r, fpu_fields, &v->fpu);
	v->xcrs.nr_xcrs = get_le32(r);
	v->xcrs.flags = get_le32(r);
	for (unsigned i = 0; i < KVM_MAX_XCRS; i++) {
		v->xcrs.xcrs[i].xcr = get_le32(r);
		v->xcrs.xcrs[i].value = get_le64(r);
	}
	get_bytes(r, v->xsave, sizeof(v->xsave));
	get_bytes(r, v->lapic, sizeof(v->lapic));
	get_fields(r, events_fields, &v->events);
	v->mp_state = get_le32(r);
	get_fields(r, debugregs_fields, &v->debugregs);
	v->tsc_khz = get_le32(r);
	v->nmsrs = get_le32(r);
	if (v->nmsrs > STATE_MAX_MSRS)
		return;	/* range check reports it */
	for (unsigned i = 0; i < v->nmsrs; i++) {
		v->msrs[i].index = get_le32(r);
		v->msrs[i].data = get_le64(r);
	}
	v->ncpuid = get_le32(r);
	if (v->ncpuid > STATE_MAX_CPUID)
		return;
	for (unsigned i = 0; i < v->ncpuid; i++) {
		struct kvm_cpuid_entry2 *e = &v->cpuid[i];

		e->function = get_le32(r);
		e->index = get_le32(r);
		e->flags = get_le32(r);
		e->eax = get_le32(r);
		e->ebx = get_le32(r);
		e->ecx = get_le32(r);
		e->edx = get_le32(r);
	}
}

/* ---- section framing ------------------------------------------------ */

static const char *const sec_names[] = {
	[0] = "unknown",
	[STATE_SEC_CONFIG] = "config",
	[STATE_SEC_VCPU] = "vcpu",
	[STATE_SEC_IRQCHIP] = "irqchip",
	[STATE_SEC_PIT] = "pit",
	[STATE_SEC_CLOCK] = "clock",
	[STATE_SEC_UART] = "uart",
	[STATE_SEC_EVENTS] = "events",
	[STATE_SEC_NIC] = "nic",
	[STATE_SEC_RAM] = "ram",
	[STATE_SEC_END] = "end",
};
_Static_assert(ARRAY_SIZE(sec_names) == STATE_SEC_MAX + 1, "one name per section type");

const char *state_section_name(unsigned type)
{
	return type <= STATE_SEC_MAX ? sec_names[type] : "unknown";
}

uint16_t state_section_version(enum state_section_type type)
{
	return type == STATE_SEC_CONFIG ? CONFIG_VERSION : 1;
}

/* Does this build read version ver of type? The current one, and CONFIG 1. */
static bool version_readable(unsigned type, unsigned ver)
{
	if (type == STATE_SEC_CONFIG && ver == 1)
		return true;
	return ver == state_section_version((enum state_section_type)type);
}

/* Exact payload length of a fixed-size section, 0 for variable ones. */
static size_t fixed_len(unsigned type, unsigned ver)
{
	switch (type) {
	case STATE_SEC_CONFIG:
		return ver == 1 ? CONFIG_V1_BYTES : CONFIG_BYTES;
	case STATE_SEC_IRQCHIP:
		return 2 * fields_bytes(pic_fields) + fields_bytes(ioapic_fields);
	case STATE_SEC_PIT:
		return fields_bytes(pit_fields);
	case STATE_SEC_CLOCK:
		return fields_bytes(clock_fields);
	case STATE_SEC_EVENTS:
		return fields_bytes(ev_fields);
	case STATE_SEC_NIC:
		return 6;
	case STATE_SEC_END:
		return 0;
	default:
		return 0;
	}
}

static size_t min_len(unsigned type, unsigned ver)
{
	switch (type) {
	case STATE_SEC_VCPU:
		return vcpu_fixed_bytes();
	case STATE_SEC_UART:
		return fields_bytes(uart_fields);
	case STATE_SEC_RAM:
		return 12;
	default:
		return fixed_len(type, ver);
	}
}

static size_t max_len(unsigned type, unsigned ver)
{
	switch (type) {
	case STATE_SEC_VCPU:
		return vcpu_fixed_bytes() + STATE_MAX_MSRS * MSR_BYTES + STATE_MAX_CPUID * CPUID_BYTES;
	case STATE_SEC_UART:
		return fields_bytes(uart_fields) + VM_CONSOLE_BYTES;
	case STATE_SEC_RAM:
		return STATE_SEC_MAX_PAYLOAD;
	default:
		return fixed_len(type, ver);
	}
}

size_t state_section_bound(void)
{
	size_t m = 0;

	for (unsigned t = 1; t <= STATE_SEC_MAX; t++)
		if (t != STATE_SEC_RAM && max_len(t, state_section_version(t)) > m)
			m = max_len(t, state_section_version(t));
	return STATE_SEC_HDR_BYTES + m + STATE_SEC_CRC_BYTES;
}

static void put_payload(struct wbuf *w, const struct vm_state *st, enum state_section_type type,
			unsigned vcpu)
{
	switch (type) {
	case STATE_SEC_CONFIG:
		put_config(w, &st->config);
		break;
	case STATE_SEC_VCPU:
		put_vcpu(w, &st->vcpu[vcpu]);
		break;
	case STATE_SEC_IRQCHIP:
		put_fields(w, pic_fields, &st->pic[0]);
		put_fields(w, pic_fields, &st->pic[1]);
		put_fields(w, ioapic_fields, &st->ioapic);
		break;
	case STATE_SEC_PIT:
		put_fields(w, pit_fields, &st->pit);
		break;
	case STATE_SEC_CLOCK:
		put_fields(w, clock_fields, &st->clock);
		break;
	case STATE_SEC_UART:
		put_fields(w, uart_fields, &st->uart);
		put_bytes(w, st->uart.console, MIN(st->uart.console_len, VM_CONSOLE_BYTES));
		break;
	case STATE_SEC_EVENTS:
		put_fields(w, ev_fields, &st->ev);
		break;
	case STATE_SEC_NIC:
		put_bytes(w, st->config.mac, 6);
		break;
	case STATE_SEC_RAM:
	case STATE_SEC_END:
		break;
	}
}

ssize_t state_write_section(const struct vm_state *st, enum state_section_type type, unsigned vcpu,
			    uint8_t *dst, size_t cap)
{
	struct wbuf w;
	size_t payload;
	uint32_t crc;

	if (type < STATE_SEC_CONFIG || type > STATE_SEC_MAX || type == STATE_SEC_RAM)
		return -EINVAL;
	if (type == STATE_SEC_VCPU && vcpu >= VM_MAX_VCPUS)
		return -EINVAL;
	wbuf_init(&w, dst, cap);
	put_le16(&w, (uint16_t)type);
	put_le16(&w, type == STATE_SEC_CONFIG ? (uint16_t)config_version(&st->config)
					      : state_section_version(type));
	put_le32(&w, 0); /* length, patched below */
	put_payload(&w, st, type, vcpu);
	if (!wbuf_ok(&w))
		return -ENOSPC;
	payload = w.len - STATE_SEC_HDR_BYTES;
	for (int i = 0; i < 4; i++)
		dst[4 + i] = (uint8_t)(payload >> (8 * i));
	crc = crc32c(0, dst, w.len);
	put_le32(&w, crc);
	if (!wbuf_ok(&w))
		return -ENOSPC;
	return (ssize_t)w.len;
}

ssize_t state_write_all(const struct vm_state *st, uint8_t *dst, size_t cap)
{
	static const enum state_section_type order[] = {
		STATE_SEC_IRQCHIP, STATE_SEC_PIT,    STATE_SEC_CLOCK,
		STATE_SEC_UART,	   STATE_SEC_EVENTS, STATE_SEC_NIC,
	};
	size_t off = 0;
	ssize_t n;

	n = state_write_section(st, STATE_SEC_CONFIG, 0, dst, cap);
	if (n < 0)
		return n;
	off += (size_t)n;
	for (unsigned i = 0; i < st->config.vcpus && i < VM_MAX_VCPUS; i++) {
		n = state_write_section(st, STATE_SEC_VCPU, i, dst + off, cap - off);
		if (n < 0)
			return n;
		off += (size_t)n;
	}
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		n = state_write_section(st, order[i], 0, dst + off, cap - off);
		if (n < 0)
			return n;
		off += (size_t)n;
	}
	return (ssize_t)off;
}

#define FAIL(ret, ...) err_set(ret, err, errlen, __VA_ARGS__)

int state_check_header(const uint8_t *src, size_t len, unsigned *type, uint32_t *payload_len,
		       char *err, size_t errlen)
{
	struct rbuf r;
	unsigned t, ver;
	uint32_t plen;

	if (len < STATE_SEC_HDR_BYTES)
		return FAIL(-ECONNRESET, "truncated: %zu byte(s) where a section header of 8 begins",
			    len);
	rbuf_init(&r, src, len);
	t = get_le16(&r);
	ver = get_le16(&r);
	plen = get_le32(&r);
	if (t < STATE_SEC_CONFIG || t > STATE_SEC_MAX)
		return FAIL(-EBADMSG, "unknown section type %u", t);
	if (!version_readable(t, ver)) {
		if (t == STATE_SEC_CONFIG)
			return FAIL(-EPROTO,
				    "%s section has version %u, this build reads versions 1 to %u",
				    state_section_name(t), ver, CONFIG_VERSION);
		return FAIL(-EPROTO, "%s section has version %u, this build reads version %u",
			    state_section_name(t), ver,
			    state_section_version((enum state_section_type)t));
	}
	if (plen < min_len(t, ver) || plen > max_len(t, ver)) {
		if (min_len(t, ver) == max_len(t, ver))
			return FAIL(-EBADMSG, "%s section is %u bytes long, must be %zu",
				    state_section_name(t), plen, min_len(t, ver));
		return FAIL(-EBADMSG, "%s section is %u bytes long, must be %zu to %zu",
			    state_section_name(t), plen, min_len(t, ver), max_len(t, ver));
	}
	*type = t;
	*payload_len = plen;
	return 0;
}

static int check_segment(const struct kvm_segment *s, const char *name, char *err, size_t errlen)
{
	if (s->present > 1 || s->dpl > 3 || s->db > 1 || s->s > 1 || s->l > 1 || s->g > 1 ||
	    s->avl > 1 || s->unusable > 1 || s->type > 15)
		return FAIL(-EBADMSG, "vcpu section: segment %s has an out-of-range attribute",
			    name);
	return 0;
}

static int check_vcpu(const struct vcpu_state *v, char *err, size_t errlen)
{
	const struct kvm_sregs *s = &v->sregs;
	int ret;

	if (v->index >= VM_MAX_VCPUS)
		return FAIL(-EBADMSG, "vcpu section: index %u out of range (max %u)", v->index,
			    VM_MAX_VCPUS - 1);
	if (v->mp_state > KVM_MP_STATE_AP_RESET_HOLD)
		return FAIL(-EBADMSG, "vcpu %u: mp_state %u out of range", v->index, v->mp_state);
	if (v->nmsrs > STATE_MAX_MSRS)
		return FAIL(-EBADMSG, "vcpu %u: %u MSRs, at most %u", v->index, v->nmsrs,
			    STATE_MAX_MSRS);
	if (v->ncpuid > STATE_MAX_CPUID)
		return FAIL(-EBADMSG, "vcpu %u: %u CPUID entries, at most %u", v->index, v->ncpuid,
			    STATE_MAX_CPUID);
	if (v->ncpuid == 0)
		return FAIL(-EBADMSG, "vcpu %u: no CPUID entries", v->index);
	if (v->xcrs.nr_xcrs > KVM_MAX_XCRS)
		return FAIL(-EBADMSG, "vcpu %u: %u XCRs, at most %u", v->index, v->xcrs.nr_xcrs,
			    KVM_MAX_XCRS);
	if (v->events.exception.nr > 31 || v->events.exception.injected > 1 ||
	    v->events.exception.pending > 1 || v->events.nmi.injected > 1 ||
	    v->events.nmi.masked > 1 || v->events.interrupt.injected > 1)
		return FAIL(-EBADMSG, "vcpu %u: vcpu events out of range", v->index);
	if (v->tsc_khz == 0 || v->tsc_khz > 100000000)
		return FAIL(-EBADMSG, "vcpu %u: TSC rate %u kHz out of range", v->index,
			    v->tsc_khz);
	ret = check_segment(&s->cs, "cs", err, errlen);
	if (!ret)
		ret = check_segment(&s->ds, "ds", err, errlen);
	if (!ret)
		ret = check_segment(&s->ss, "ss", err, errlen);
	if (!ret)
		ret = check_segment(&s->tr, "tr", err, errlen);
	if (ret)
		return ret;
	if (s->cr8 > 15)
		return FAIL(-EBADMSG, "vcpu %u: cr8 %llu out of range", v->index,
			    (unsigned long long)s->cr8);
	return 0;
}

static int check_payload(const struct vm_state *st, unsigned type, unsigned vcpu, char *err,
			 size_t errlen)
{
	const struct vm_config *c = &st->config;

	switch (type) {
	case STATE_SEC_CONFIG:
		if (!memchr(c->name, 0, sizeof(c->name)) || !memchr(c->guest, 0, sizeof(c->guest)) ||
		    !memchr(c->guest_args, 0, sizeof(c->guest_args)))
			return FAIL(-EBADMSG, "config section: a string is not terminated");
		return vm_config_check(c, err, errlen) < 0 ? -EBADMSG : 0;
	case STATE_SEC_VCPU:
		return check_vcpu(&st->vcpu[vcpu], err, errlen);
	case STATE_SEC_PIT:
		for (int i = 0; i < 3; i++)
			if (st->pit.channels[i].mode > 5 && st->pit.channels[i].mode != 0xff)
				return FAIL(-EBADMSG, "pit section: channel %d mode %u out of range",
					    i, st->pit.channels[i].mode);
		return 0;
	case STATE_SEC_UART:
		if (st->uart.console_len > VM_CONSOLE_BYTES)
			return FAIL(-EBADMSG, "uart section: console of %u bytes, at most %u",
				    st->uart.console_len, VM_CONSOLE_BYTES);
		return 0;
	case STATE_SEC_EVENTS:
		if (st->ev.started_mask >> VM_MAX_VCPUS)
			return FAIL(-EBADMSG, "events section: vCPU mask 0x%x out of range",
				    st->ev.started_mask);
		return 0;
	default:
		return 0;
	}
}

int state_read_section(struct vm_state *st, const uint8_t *src, size_t len, size_t *consumed,
		       unsigned *type, char *err, size_t errlen)
{
	struct rbuf r;
	uint32_t plen = 0, crc, want;
	unsigned t = 0, ver, vcpu = 0;
	size_t total;
	int ret;

	ret = state_check_header(src, len, &t, &plen, err, errlen);
	if (ret < 0)
		return ret;
	ver = (unsigned)(src[2] | src[3] << 8);
	total = STATE_SEC_HDR_BYTES + (size_t)plen + STATE_SEC_CRC_BYTES;
	if (len < total)
		return FAIL(-ECONNRESET, "truncated %s section: %zu of %zu bytes",
			    state_section_name(t), len, total);
	rbuf_init(&r, src + total - STATE_SEC_CRC_BYTES, STATE_SEC_CRC_BYTES);
	crc = get_le32(&r);
	want = crc32c(0, src, total - STATE_SEC_CRC_BYTES);
	if (crc != want)
		return FAIL(-EBADMSG, "%s section: checksum mismatch (stored 0x%08x, computed 0x%08x)",
			    state_section_name(t), crc, want);
	rbuf_init(&r, src + STATE_SEC_HDR_BYTES, plen);
	switch (t) {
	case STATE_SEC_CONFIG:
		get_config(&r, ver, &st->config);
		break;
	case STATE_SEC_VCPU: {
		struct vcpu_state *tmp = &st->vcpu[0];
		uint32_t idx;

		/* peek at the index to pick the slot */
		idx = plen >= 4 ? (uint32_t)(src[8] | src[9] << 8 | src[10] << 16 |
					     (uint32_t)src[11] << 24)
				: 0;
		if (idx >= VM_MAX_VCPUS)
			return FAIL(-EBADMSG, "vcpu section: index %u out of range (max %u)", idx,
				    VM_MAX_VCPUS - 1);
		vcpu = idx;
		tmp = &st->vcpu[idx];
		get_vcpu(&r, tmp);
		break;
	}
	case STATE_SEC_IRQCHIP:
		get_fields(&r, pic_fields, &st->pic[0]);
		get_fields(&r, pic_fields, &st->pic[1]);
		get_fields(&r, ioapic_fields, &st->ioapic);
		break;
	case STATE_SEC_PIT:
		get_fields(&r, pit_fields, &st->pit);
		break;
	case STATE_SEC_CLOCK:
		get_fields(&r, clock_fields, &st->clock);
		break;
	case STATE_SEC_UART:
		get_fields(&r, uart_fields, &st->uart);
		if (st->uart.console_len > VM_CONSOLE_BYTES)
			break;
		get_bytes(&r, st->uart.console, st->uart.console_len);
		break;
	case STATE_SEC_EVENTS:
		get_fields(&r, ev_fields, &st->ev);
		break;
	case STATE_SEC_NIC:
		get_bytes(&r, st->config.mac, 6);
		break;
	default: /* RAM, END: the caller handles the payload */
		r.pos = r.len;
		break;
	}
	ret = check_payload(st, t, vcpu, err, errlen);
	if (ret < 0)
		return ret;
	if (!rbuf_ok(&r))
		return FAIL(-EBADMSG, "%s section: payload shorter than its fields",
			    state_section_name(t));
	if (rbuf_left(&r))
		return FAIL(-EBADMSG, "%s section: %zu unexpected byte(s) after its fields",
			    state_section_name(t), rbuf_left(&r));
	*consumed = total;
	*type = t;
	return 0;
}

int state_check_complete(const struct vm_state *st, uint32_t seen_mask, uint32_t vcpu_mask,
			 char *err, size_t errlen)
{
	static const unsigned need[] = { STATE_SEC_CONFIG, STATE_SEC_IRQCHIP, STATE_SEC_PIT,
					 STATE_SEC_CLOCK,  STATE_SEC_UART,    STATE_SEC_EVENTS,
					 STATE_SEC_NIC };

	for (size_t i = 0; i < ARRAY_SIZE(need); i++)
		if (!(seen_mask & (1u << need[i])))
			return FAIL(-EBADMSG, "the %s section is missing",
				    state_section_name(need[i]));
	if (vcpu_mask != (1u << st->config.vcpus) - 1)
		return FAIL(-EBADMSG, "vCPU sections 0x%x do not match the %u vCPUs of the config",
			    vcpu_mask, st->config.vcpus);
	for (unsigned i = 0; i < st->config.vcpus; i++)
		if (st->vcpu[i].index != i)
			return FAIL(-EBADMSG, "vcpu section %u carries index %u", i,
				    st->vcpu[i].index);
	return 0;
}
