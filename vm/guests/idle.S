/* SPDX-License-Identifier: MIT */
/*
 * idle - halts and wakes on LAPIC timer ticks (BI_TICK_HZ on every vCPU).
 * Each tick is counted by the ISR (TICK event) and each wake-up is one unit
 * of progress. Proves that interrupt and timer state moved.
 */
#include "common.S"

guest_main:
	call	timer_start
	sti
1:	hlt
	mov	$1, %eax
	call	progress
	jmp	1b

guest_name: .asciz "idle"
