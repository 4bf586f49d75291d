/* SPDX-License-Identifier: MIT */
/*
 * common.S - start-up code shared by kvmig's guests (included by each).
 *
 * Register conventions for every guest: r15 = vCPU index, r14 = boot info
 * address; both stay live for the guest's whole life. Interrupt handlers
 * save every register they touch. The guest includes this file and then
 * defines guest_main and guest_name (a NUL-terminated string).
 */
#include "vm/guest_abi.h"

	.code64
	.text
	.globl _start
_start:
	mov	%rdi, %r15
	mov	%rsi, %r14
	cld
	call	idt_setup
	test	%r15, %r15
	jnz	1f
	mov	$0xff, %al		/* mask both 8259s: no legacy IRQs */
	out	%al, $0x21
	out	%al, $0xa1
	lea	banner(%rip), %rsi
	call	puts
	lea	guest_name(%rip), %rsi
	call	puts
	lea	banner2(%rip), %rsi
	call	puts
1:	mov	%r15, %rax
	or	$(GUEST_EV_STARTED << GUEST_EV_SHIFT), %eax
	call	event
	jmp	guest_main

/* event: report %eax on the event port. Preserves every register. */
event:
	push	%rdx
	mov	$GUEST_EVENT_PORT, %dx
	out	%eax, %dx
	pop	%rdx
	ret

/* progress: report %eax work units (0 is not reported). Preserves all. */
progress:
	test	%eax, %eax
	jz	1f
	push	%rax
	or	$(GUEST_EV_PROGRESS << GUEST_EV_SHIFT), %eax
	call	event
	pop	%rax
1:	ret

/* puts: print the NUL-terminated string at %rsi on COM1. Clobbers rax, rdx, rsi. */
puts:
	mov	$0x3f8, %dx
1:	lodsb
	test	%al, %al
	jz	2f
	out	%al, %dx
	jmp	1b
2:	ret

/* puthex: print %rax as 16 hex digits. Preserves all. */
puthex:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	mov	%rax, %rbx
	mov	$16, %ecx
	mov	$0x3f8, %dx
1:	rol	$4, %rbx
	mov	%bl, %al
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	2f
	add	$('a' - '0' - 10), %al
2:	out	%al, %dx
	dec	%ecx
	jnz	1b
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	ret

/*
 * quiet_pass: ZF set when pass %rbx should be printed (a power of two or a
 * multiple of 4096), so the console keeps its banner. Preserves all but flags.
 */
quiet_pass:
	push	%rax
	mov	%rbx, %rax
	test	$4095, %rax
	jz	1f
	lea	-1(%rbx), %rax
	and	%rbx, %rax
1:	pop	%rax
	ret

/* idt_setup: exceptions 0-31 report FATAL; vector 0x20 is the timer. */
idt_setup:
	mov	$GUEST_IDT_GPA, %edi
	xor	%ecx, %ecx
1:	cmp	$32, %ecx
	jae	2f
	lea	exc_stubs(%rip), %rax
	mov	%ecx, %edx
	shl	$3, %edx
	add	%rdx, %rax
	jmp	4f
2:	lea	timer_isr(%rip), %rax
	cmp	$GUEST_TIMER_VECTOR, %ecx
	je	4f
	lea	spurious_isr(%rip), %rax
	cmp	$GUEST_SPURIOUS_VECTOR, %ecx
	je	4f
	lea	other_isr(%rip), %rax
4:	mov	%ax, (%rdi)
	movw	$GUEST_CS_SEL, 2(%rdi)
	movw	$0x8e00, 4(%rdi)
	mov	%rax, %rdx
	shr	$16, %rdx
	mov	%dx, 6(%rdi)
	shr	$16, %rdx
	mov	%edx, 8(%rdi)
	movl	$0, 12(%rdi)
	add	$16, %rdi
	inc	%ecx
	cmp	$256, %ecx
	jb	1b
	lidt	idtr(%rip)
	ret

/*
 * timer_start: x2APIC on, periodic LAPIC timer at BI_TICK_HZ on
 * GUEST_TIMER_VECTOR (KVM's APIC timer counts at 1 GHz). Interrupts stay
 * off; the caller does sti. Clobbers rax, rcx, rdx.
 */
timer_start:
	mov	$0x1b, %ecx
	rdmsr
	or	$0xc00, %eax
	wrmsr
	mov	$0x80f, %ecx			/* SVR: enable, spurious vector */
	mov	$(0x100 | GUEST_SPURIOUS_VECTOR), %eax
	xor	%edx, %edx
	wrmsr
	mov	$0x83e, %ecx			/* divide by 1 */
	mov	$0xb, %eax
	wrmsr
	mov	$0x832, %ecx			/* LVTT: periodic */
	mov	$(0x20000 | GUEST_TIMER_VECTOR), %eax
	wrmsr
	mov	$1000000000, %eax
	xor	%edx, %edx
	mov	BI_TICK_HZ(%r14), %rcx
	div	%rcx
	mov	$0x838, %ecx			/* TMICT */
	xor	%edx, %edx
	wrmsr
	ret

timer_isr:
	push	%rax
	push	%rcx
	push	%rdx
	mov	%r15, %rax
	shl	$6, %rax
	incq	GUEST_PERCPU_GPA(%rax)
	mov	$((GUEST_EV_TICK << GUEST_EV_SHIFT) | 1), %eax
	mov	$GUEST_EVENT_PORT, %dx
	out	%eax, %dx
	mov	$0x80b, %ecx			/* x2APIC EOI */
	xor	%eax, %eax
	xor	%edx, %edx
	wrmsr
	pop	%rdx
	pop	%rcx
	pop	%rax
	iretq

other_isr:
	push	%rax
	push	%rcx
	push	%rdx
	mov	$0x80b, %ecx
	xor	%eax, %eax
	xor	%edx, %edx
	wrmsr
	pop	%rdx
	pop	%rcx
	pop	%rax
spurious_isr:
	iretq

	.balign 8
exc_stubs:
	.set	vec, 0
	.rept	32
	.balign	8
	push	$vec
	jmp	exc_common
	.set	vec, vec + 1
	.endr

exc_common:
	pop	%rax
	and	$0xff, %eax
	or	$(GUEST_EV_FATAL << GUEST_EV_SHIFT), %eax
	mov	$GUEST_EVENT_PORT, %dx
	out	%eax, %dx
	cli
1:	hlt
	jmp	1b

idtr:	.word	4095
	.quad	GUEST_IDT_GPA
banner:	.asciz	"kvmig guest "
banner2: .asciz	": started\r\n"
