/* SPDX-License-Identifier: MIT */
#include "migrate/outgoing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/clock.h"
#include "vm/cpucheck.h"

void outgoing_hello(struct wire_hello *h, const struct vm_config *c, uint32_t caps)
{
	memset(h, 0, sizeof(*h));
	h->version = WIRE_VERSION;
	h->caps = caps;
	h->page_size = WIRE_PAGE_SIZE;
	h->mem_bytes = c->mem_bytes;
	h->vcpus = c->vcpus;
	h->channel = 0;
	h->channels = 1;
	if (getrandom(&h->session, sizeof(h->session), 0) != sizeof(h->session))
		h->session = clock_now_ns();
	snprintf(h->name, sizeof(h->name), "%s", c->name);
	snprintf(h->guest, sizeof(h->guest), "%s", c->guest);
	snprintf(h->guest_args, sizeof(h->guest_args), "%s", c->guest_args);
	memcpy(h->mac, c->mac, 6);
}

int outgoing_cpuid(struct mio *io, const struct vm *vm, uint32_t flags)
{
	size_t cap = WIRE_HDR_BYTES + 12 + WIRE_MAX_CPUID * WIRE_CPUID_ENTRY_BYTES + WIRE_CRC_BYTES;
	struct cpucheck_cpu *cpu = malloc(sizeof(*cpu));
	struct wire_cpuid *c = malloc(sizeof(*c));
	uint8_t *frame = malloc(cap);
	ssize_t n;
	int ret;

	if (!cpu || !c || !frame) {
		ret = -ENOMEM;
		goto out;
	}
	ret = vm_guest_cpu(vm, cpu);
	if (ret < 0)
		goto out;
	if (cpu->n == 0 || cpu->n > WIRE_MAX_CPUID) {
		ret = -E2BIG;
		goto out;
	}
	c->flags = flags;
	c->tsc_khz = cpu->tsc_khz;
	c->count = cpu->n;
	for (uint32_t i = 0; i < cpu->n; i++) {
		const struct kvm_cpuid_entry2 *e = &cpu->ent[i];

		c->ent[i] = (struct wire_cpuid_entry){
			.function = e->function, .index = e->index, .flags = e->flags,
			.eax = e->eax, .ebx = e->ebx, .ecx = e->ecx, .edx = e->edx,
		};
	}
	n = frame_put_cpuid(frame, cap, c);
	ret = n < 0 ? (int)n : mio_write(io, frame, (size_t)n);
out:
	free(cpu);
	free(c);
	free(frame);
	return ret;
}

int outgoing_state(struct mio *io, const struct vm_state *st, uint32_t *nsec)
{
	static const enum state_section_type after_vcpus[] = {
		STATE_SEC_IRQCHIP, STATE_SEC_PIT,    STATE_SEC_CLOCK,
		STATE_SEC_UART,	   STATE_SEC_EVENTS, STATE_SEC_NIC,
	};
	size_t sec_cap = state_section_bound();
	size_t cap = sec_cap + WIRE_HDR_BYTES + WIRE_CRC_BYTES;
	uint8_t *sec = malloc(sec_cap), *frame = malloc(cap);
	unsigned total = 1 + st->config.vcpus + (unsigned)ARRAY_SIZE(after_vcpus);
	int ret = 0;

	*nsec = 0;
	if (!sec || !frame) {
		ret = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < total && !ret; i++) {
		enum state_section_type t;
		unsigned vcpu = 0;
		ssize_t n;

		if (i == 0) {
			t = STATE_SEC_CONFIG;
		} else if (i <= st->config.vcpus) {
			t = STATE_SEC_VCPU;
			vcpu = i - 1;
		} else {
			t = after_vcpus[i - 1 - st->config.vcpus];
		}
		n = state_write_section(st, t, vcpu, sec, sec_cap);
		if (n > 0)
			n = frame_put_state(frame, cap, sec, (size_t)n);
		ret = n < 0 ? (int)n : mio_write(io, frame, (size_t)n);
		if (!ret)
			(*nsec)++;
	}
out:
	free(sec);
	free(frame);
	return ret;
}
