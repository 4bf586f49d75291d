/* SPDX-License-Identifier: MIT */
/*
 * memcheck - stamps every page of its share and keeps verifying them.
 *
 * Page layout (512 qwords): q0 = working-set page index, q1 = generation,
 * q2 = sum of the body, q3..q511 = the body, every qword equal to
 * mix(index, generation). Generation g is written pass after pass in page
 * order: with the write cursor c, pages [0, c) hold generation g and pages
 * [c, n) generation g - 1 (generation 0 = never written, not checked).
 * Between every 8 page writes the guest verifies 8 pages in a permuted
 * order (index += BI_STRIDE mod n, stride coprime to n), so one sweep of n
 * verifications covers every page. A page fails when its index, its
 * generation (a stale page that went back in time), its body sum (any
 * flipped byte) or its stamp does not match; each failure is one ERROR event
 * carrying the page index. Each page is also verified just before it is
 * overwritten, so damage is caught within one write pass whatever the
 * phase of the two sweeps. Progress: one unit per page written or verified.
 *
 * Registers: r12 share base, r13 n, r9 first page index of the share,
 * rbx generation, rbp write cursor, r10 verify cursor, r11 loop counter.
 */
#include "common.S"

#define BODY_QWORDS 509

guest_main:
	mov	BI_SHARE_PAGES(%r14), %r13
	mov	%r13, %r9
	imul	%r15, %r9
	mov	%r9, %r12
	shl	$12, %r12
	add	BI_WS_BASE(%r14), %r12
	mov	$1, %ebx
	xor	%ebp, %ebp
	xor	%r10d, %r10d
loop:
	mov	$8, %r11d
wloop:
	cmp	%r13, %rbp
	jb	1f
	xor	%ebp, %ebp
	inc	%rbx
	test	%r15, %r15
	jnz	1f
	call	quiet_pass			/* print generations 1, 2, 4, 8, ... */
	jnz	1f
	lea	passmsg(%rip), %rsi
	call	puts
	mov	%rbx, %rax
	call	puthex
	lea	crlf(%rip), %rsi
	call	puts
1:	mov	%rbp, %rsi			/* check what is about to be overwritten */
	call	verify_page
	mov	%rbp, %rsi
	call	write_page
	inc	%rbp
	dec	%r11d
	jnz	wloop
	mov	$8, %r11d
vloop:
	mov	%r10, %rsi
	call	verify_page
	add	BI_STRIDE(%r14), %r10
	cmp	%r13, %r10
	jb	2f
	sub	%r13, %r10
2:	dec	%r11d
	jnz	vloop
	mov	$16, %eax
	call	progress
	jmp	loop

/* mix: %rax = stamp of page index %rdi at generation %rdx. Clobbers rcx. */
mix:
	mov	$0x9e3779b97f4a7c15, %rax
	imul	%rdi, %rax
	mov	$0xc2b2ae3d27d4eb4f, %rcx
	imul	%rdx, %rcx
	xor	%rcx, %rax
	mov	$0x5555aaaa5555aaaa, %rcx
	xor	%rcx, %rax
	ret

/* write_page: stamp share page %rsi with generation %rbx. */
write_page:
	push	%rsi
	lea	(%r9, %rsi), %rdi		/* index */
	shl	$12, %rsi
	add	%r12, %rsi			/* page address */
	mov	%rbx, %rdx
	call	mix
	mov	%rdi, (%rsi)
	mov	%rbx, 8(%rsi)
	mov	%rax, %rdx
	imul	$BODY_QWORDS, %rdx, %rdx
	mov	%rdx, 16(%rsi)
	lea	24(%rsi), %rdi
	mov	$BODY_QWORDS, %ecx
	rep stosq
	pop	%rsi
	ret

/* verify_page: check share page %rsi; report an ERROR event on mismatch. */
verify_page:
	push	%rsi
	mov	%rbx, %rdx			/* expected generation */
	cmp	%rbp, %rsi
	jb	1f
	dec	%rdx
1:	test	%rdx, %rdx
	jz	ok				/* never written yet */
	lea	(%r9, %rsi), %rdi		/* index */
	shl	$12, %rsi
	add	%r12, %rsi
	cmp	(%rsi), %rdi
	jne	bad
	cmp	8(%rsi), %rdx
	jne	bad
	call	mix
	imul	$BODY_QWORDS, %rax, %rax
	cmp	16(%rsi), %rax
	jne	bad
	mov	24(%rsi), %rax			/* sum q3..q511: q3 + 127 x 4 */
	lea	32(%rsi), %rcx
	lea	4096(%rsi), %rsi
2:	add	(%rcx), %rax
	add	8(%rcx), %rax
	add	16(%rcx), %rax
	add	24(%rcx), %rax
	add	$32, %rcx
	cmp	%rsi, %rcx
	jb	2b
	cmp	-4096+16(%rsi), %rax
	jne	bad
ok:	pop	%rsi
	ret
bad:	mov	%rdi, %rax
	and	$GUEST_EV_ARG_MASK, %eax
	or	$(GUEST_EV_ERROR << GUEST_EV_SHIFT), %eax
	call	event
	pop	%rsi
	ret

guest_name: .asciz "memcheck"
passmsg: .asciz "memcheck generation "
crlf:	.asciz "\r\n"
