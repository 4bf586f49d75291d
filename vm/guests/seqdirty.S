/* SPDX-License-Identifier: MIT */
/*
 * seqdirty - increments the first word of every page of its share of the
 * working set, pass after pass. Progress: one unit per page written,
 * reported every 256 pages. vCPU 0 prints the pass number at each pass.
 */
#include "common.S"

guest_main:
	mov	BI_SHARE_PAGES(%r14), %r13
	mov	%r13, %rax
	shl	$12, %rax
	imul	%r15, %rax
	add	BI_WS_BASE(%r14), %rax
	mov	%rax, %r12			/* r12: base of my share */
	xor	%ebx, %ebx			/* rbx: pass */
outer:
	inc	%rbx
	test	%r15, %r15
	jnz	1f
	call	quiet_pass			/* print passes 1, 2, 4, 8, ... */
	jnz	1f
	lea	passmsg(%rip), %rsi
	call	puts
	mov	%rbx, %rax
	call	puthex
	lea	crlf(%rip), %rsi
	call	puts
1:	mov	%r12, %rdi
	mov	%r13, %rcx
	xor	%r8d, %r8d
inner:
	incq	(%rdi)
	add	$4096, %rdi
	inc	%r8d
	cmp	$256, %r8d
	jb	2f
	mov	%r8d, %eax
	call	progress
	xor	%r8d, %r8d
2:	dec	%rcx
	jnz	inner
	mov	%r8d, %eax
	call	progress
	jmp	outer

guest_name: .asciz "seqdirty"
passmsg: .asciz "seqdirty pass "
crlf:	.asciz "\r\n"
