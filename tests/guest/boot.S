/* SPDX-License-Identifier: MIT */
/*
 * Entry point and interrupt stubs of the test guest. QEMU's multiboot loader enters _start in
 * 32-bit protected mode with paging off, EAX = multiboot magic, EBX = multiboot info; the
 * multiboot spec leaves GDTR undefined, so we load our own before touching a segment register.
 */

#define MB_HEADER_MAGIC	0x1badb002
#define MB_FLAGS	0x00000003	/* bit 0: page-align modules, bit 1: give us mem_upper */

#define KERNEL_CS	0x08
#define KERNEL_DS	0x10

	.section .multiboot, "a"
	.align 4
	.long MB_HEADER_MAGIC
	.long MB_FLAGS
	.long -(MB_HEADER_MAGIC + MB_FLAGS)

	.section .bss
	.align 16
stack_bottom:
	.skip 16384
stack_top:

	.section .text
	.globl _start
_start:
	cli
	movl $stack_top, %esp
	lgdt gdt_desc
	ljmp $KERNEL_CS, $1f
1:	movw $KERNEL_DS, %cx		/* EAX and EBX still hold what the loader gave us */
	movw %cx, %ds
	movw %cx, %es
	movw %cx, %fs
	movw %cx, %gs
	movw %cx, %ss
	pushl %ebx
	pushl %eax
	call guest_main
2:	cli
	hlt
	jmp 2b

/*
 * IRQ0, the PIT: bump the 64-bit tick count and acknowledge. The two halves need no lock:
 * readers run on this CPU and an interrupt gate keeps IF clear until the iret.
 */
	.globl irq0_entry
irq0_entry:
	addl $1, hw_tick_count
	adcl $0, hw_tick_count + 4
	pushl %eax
	movb $0x20, %al
	outb %al, $0x20
	popl %eax
	iret

/*
 * Every other IRQ line is masked at the PIC; what can still arrive is a spurious IRQ7/IRQ15,
 * which must not be acknowledged.
 */
	.globl irq_spurious_entry
irq_spurious_entry:
	iret

/* CPU exceptions: report the vector and stop; the guest has no way to recover. */
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
fault_\n:
	pushl $\n
	jmp fault_common
	.endr

fault_common:
	cli
	call hw_fault		/* argument: the vector we pushed; it does not return */
3:	hlt
	jmp 3b

	.section .rodata
	.align 4
	.globl hw_fault_stubs
hw_fault_stubs:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.long fault_\n
	.endr

	.align 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* KERNEL_CS: flat 4 GiB, 32-bit code */
	.quad 0x00cf92000000ffff	/* KERNEL_DS: flat 4 GiB, data */
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt

	.section .note.GNU-stack, "", @progbits
