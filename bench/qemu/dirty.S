/* SPDX-License-Identifier: MIT */
/*
 * dirty.S - the QEMU twin of kvmig's seqdirty guest, as a boot sector.
 *
 * The BIOS loads these 512 bytes at 0x7c00 in real mode. They enable A20
 * (port 0x92), build identity page tables with 2 MiB pages for the first
 * GiB at 0x1000-0x3fff (as kvmig's VMM does for its guests), and switch
 * straight to 64-bit long mode, so the loop runs in the same mode, with the
 * same page size and the same instructions as seqdirty
 * (vm/guests/seqdirty.S): it increments the 64-bit word at the start of
 * every 4 KiB page of [2 MiB, 2 MiB + WORKSET), pass after pass, forever.
 * (A 32-bit version without paging dirtied about 1.5x faster than seqdirty
 * under kvm-pvm, which made the two guests unequal.) Every 256 pages
 * written (counted across passes, so every byte is exactly 256 pages) one
 * byte goes to the isa-debugcon port 0xe9: the size of the debugcon file
 * times 256 is the guest's progress in pages, the unit of seqdirty's
 * progress counter.
 *
 * WORKSET (bytes, a multiple of 4096, at most 1 GiB - 2 MiB, default 16 MiB)
 * is fixed when the image is assembled:
 *   as --32 --defsym WORKSET=0x1000000 -o dirty.o dirty.S
 *   ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o dirty.img dirty.o
 */
	.ifndef WORKSET
	.set	WORKSET, 0x1000000
	.endif
	.set	WS_BASE, 0x200000
	.set	DEBUGCON, 0xe9
	.set	PML4, 0x1000
	.set	PDPT, 0x2000
	.set	PD, 0x3000
	.if	WS_BASE + WORKSET > 0x40000000
	.error	"WORKSET: the page tables map 1 GiB"
	.endif

	.code16
	.text
	.globl	_start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$0x7c00, %sp
	in	$0x92, %al			/* fast A20 */
	or	$2, %al
	and	$0xfe, %al
	out	%al, $0x92
	mov	$PML4, %di			/* zero PML4, PDPT, PD */
	xor	%eax, %eax
	mov	$(3 * 4096 / 4), %cx
	rep	stosl
	movl	$(PDPT | 3), PML4		/* present, writable */
	movl	$(PD | 3), PDPT
	mov	$PD, %di
	mov	$0x83, %eax			/* present, writable, 2 MiB */
	mov	$512, %cx
1:	mov	%eax, (%di)
	add	$0x200000, %eax
	add	$8, %di
	loop	1b
	mov	$0x20, %eax			/* CR4.PAE */
	mov	%eax, %cr4
	mov	$PML4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx		/* EFER.LME */
	rdmsr
	or	$0x100, %eax
	wrmsr
	lgdtl	gdt_desc
	mov	%cr0, %eax
	or	$0x80000001, %eax		/* PG | PE */
	mov	%eax, %cr0
	ljmpl	$0x08, $lm64

	.code64
lm64:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$0x7c00, %esp
	mov	$DEBUGCON, %dx
	xor	%ebx, %ebx			/* ebx: pages since the last report */
pass:
	mov	$WS_BASE, %edi
	mov	$(WORKSET / 4096), %ecx
page:
	incq	(%rdi)
	add	$4096, %rdi
	inc	%ebx
	cmp	$256, %ebx
	jb	1f
	mov	$'.', %al
	out	%al, %dx
	xor	%ebx, %ebx
1:	dec	%ecx
	jnz	page
	jmp	pass

	.p2align 3
gdt:
	.quad	0
	.quad	0x00af9a000000ffff		/* 0x08: code, 64-bit */
	.quad	0x00cf92000000ffff		/* 0x10: data, flat 4 GiB */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt

	.org	510
	.byte	0x55, 0xaa
