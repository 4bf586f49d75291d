/* SPDX-License-Identifier: MIT */
/*
 * dirty.S - the QEMU twin of kvmig's seqdirty guest, as a boot sector.
 *
 * The BIOS loads these 512 bytes at 0x7c00 in real mode. They enable A20
 * (port 0x92), load a flat GDT, switch to 32-bit protected mode without
 * paging, and then increment one 32-bit word at the start of every 4 KiB
 * page of [2 MiB, 2 MiB + WORKSET), pass after pass, forever. Every 256
 * pages written (counted across passes, so every byte is exactly 256
 * pages) one byte goes to the isa-debugcon port 0xe9: the size of the
 * debugcon file times 256 is the guest's progress in pages, the unit of
 * seqdirty's progress counter.
 *
 * WORKSET (bytes, a multiple of 4096, default 16 MiB) is fixed when the
 * image is assembled:
 *   as --32 --defsym WORKSET=0x1000000 -o dirty.o dirty.S
 *   ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o dirty.img dirty.o
 */
	.ifndef WORKSET
	.set	WORKSET, 0x1000000
	.endif
	.set	WS_BASE, 0x200000
	.set	DEBUGCON, 0xe9

	.code16
	.text
	.globl	_start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %ss
	mov	$0x7c00, %sp
	in	$0x92, %al			/* fast A20 */
	or	$2, %al
	and	$0xfe, %al
	out	%al, $0x92
	lgdtl	gdt_desc
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $pm32

	.code32
pm32:
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
	incl	(%edi)
	add	$4096, %edi
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
	.quad	0x00cf9a000000ffff		/* 0x08: code, flat 4 GiB, 32-bit */
	.quad	0x00cf92000000ffff		/* 0x10: data, flat 4 GiB */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt

	.org	510
	.byte	0x55, 0xaa
