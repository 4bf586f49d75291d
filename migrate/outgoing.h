/* SPDX-License-Identifier: MIT */
/*
 * outgoing.h - the pieces of a stream every sender writes the same way:
 * the HELLO that describes the VM, and the state sections as STATE frames
 * in the order the receiver loads them. Shared by snapshots and live
 * migration; called by the thread that owns the stream.
 */
#ifndef KVMIG_MIGRATE_OUTGOING_H
#define KVMIG_MIGRATE_OUTGOING_H

#include <stdint.h>

#include "common/compiler.h"
#include "migrate/mio.h"
#include "protocol/frame.h"
#include "vm/state.h"

/* A HELLO for channel 0 of 1 describing cfg, offering caps, with a random session. */
void outgoing_hello(struct wire_hello *h, const struct vm_config *cfg, uint32_t caps);

/*
 * The CPUID frame that follows HELLO when it offers WIRE_CAP_CPUID: the
 * CPUID vm's vCPUs were given and their TSC rate; flags WIRE_CPUID_*.
 * Return: 0, -ENOMEM, -E2BIG, or -errno from the stream.
 */
int outgoing_cpuid(struct mio *io, const struct vm *vm, uint32_t flags) __must_check;

/*
 * Write every state section of st as a STATE frame: CONFIG, the vCPUs in
 * index order, IRQCHIP, PIT, CLOCK, UART, EVENTS, NIC. *nsec gets how many.
 * Return: 0, -ENOMEM, or -errno from the stream.
 */
int outgoing_state(struct mio *io, const struct vm_state *st, uint32_t *nsec) __must_check;

#endif
