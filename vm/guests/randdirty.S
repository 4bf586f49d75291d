/* SPDX-License-Identifier: MIT */
/*
 * randdirty - writes pages of its share picked by a seeded xorshift64 PRNG:
 * BI_HOT_PCT percent of the writes go to the hot eighth of the share, the
 * rest anywhere in it. With BI_RATE > 0 the writes are paced by the LAPIC
 * timer: each tick allows rate / vcpus / hz writes (at least one), then the
 * vCPU halts until the next tick, so bursts come at tick boundaries.
 * Progress: one unit per page write, reported every 256 writes.
 */
#include "common.S"

guest_main:
	mov	BI_SHARE_PAGES(%r14), %r13	/* r13: pages in my share */
	mov	%r13, %rax
	shl	$12, %rax
	imul	%r15, %rax
	add	BI_WS_BASE(%r14), %rax
	mov	%rax, %r12			/* r12: base of my share */
	mov	%r13, %r11
	shr	$3, %r11
	jnz	1f
	mov	$1, %r11d			/* r11: hot pages */
1:	mov	BI_HOT_PCT(%r14), %rax		/* rbp: hot threshold out of 128 */
	shl	$7, %rax
	xor	%edx, %edx
	mov	$100, %ecx
	div	%rcx
	mov	%rax, %rbp
	lea	1(%r15), %rax			/* r10: PRNG state */
	mov	$0x9e3779b97f4a7c15, %rcx
	imul	%rcx, %rax
	xor	BI_SEED(%r14), %rax
	jnz	2f
	mov	$1, %eax
2:	mov	%rax, %r10
	xor	%r9d, %r9d			/* r9: per-tick budget, 0 = unpaced */
	mov	BI_RATE(%r14), %rax
	test	%rax, %rax
	jz	3f
	xor	%edx, %edx
	divq	BI_VCPUS(%r14)
	xor	%edx, %edx
	divq	BI_TICK_HZ(%r14)
	test	%rax, %rax
	jnz	4f
	mov	$1, %eax
4:	mov	%rax, %r9
	call	timer_start
	sti
3:	mov	%r9, %rbx			/* rbx: budget left in this tick */
	xor	%r8d, %r8d			/* r8: unreported writes */
loop:
	test	%r9, %r9
	jz	5f
	test	%rbx, %rbx
	jnz	6f
	mov	%r8d, %eax			/* report before sleeping */
	call	progress
	xor	%r8d, %r8d
	hlt
	mov	%r9, %rbx
6:	dec	%rbx
5:	mov	%r10, %rax			/* xorshift64 */
	shl	$13, %rax
	xor	%rax, %r10
	mov	%r10, %rax
	shr	$7, %rax
	xor	%rax, %r10
	mov	%r10, %rax
	shl	$17, %rax
	xor	%rax, %r10
	mov	%r10, %rax
	shr	$57, %rax			/* 0..127 */
	mov	%r13, %rcx
	cmp	%rbp, %rax
	jae	7f
	mov	%r11, %rcx
7:	mov	%r10, %rax
	shr	$8, %rax
	xor	%edx, %edx
	div	%rcx				/* rdx: page */
	shl	$12, %rdx
	incq	(%r12, %rdx)
	inc	%r8d
	cmp	$256, %r8d
	jb	loop
	mov	%r8d, %eax
	call	progress
	xor	%r8d, %r8d
	jmp	loop

guest_name: .asciz "randdirty"
