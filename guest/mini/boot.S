/* thaw-mini: entry points.
 *
 *  linux_entry64  ELF e_entry; Linux 64-bit boot protocol as thaw enters it:
 *                 long mode, identity-mapped, CS=0x10, RSI = boot_params.
 *  pvh_entry32    XEN_ELFNOTE_PHYS32_ENTRY, used by QEMU microvm: 32-bit
 *                 protected mode, paging off, EBX = hvm_start_info.
 *
 * Both continue in common_entry64, which swaps in our own page tables, GDT,
 * TSS and IDT (all static data, see tables.S) and calls kmain. Every ring-0
 * instruction is emulated on PVM, so the path is straight-line and short. */
#include "layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f			/* namesz */
	.long 4f - 3f			/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
1:	.asciz "Xen"
2:	.balign 4
	/* 8 bytes like Linux's _ASM_PTR: QEMU 7.2 reads a full 64-bit value. */
3:	.quad pvh_entry32
4:	.balign 4

	.section .text32, "ax"
	.code32
	.globl pvh_entry32
pvh_entry32:
	movl %ebx, %esi			/* hvm_start_info, kept for kmain */
	lgdt gdt_pointer		/* reads limit and the low 32 bits of base */
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE), %eax
	movl %eax, %cr0			/* now in compatibility mode */
	ljmp $SEL_KERNEL_CODE, $pvh_entry64

	.text
	.code64
pvh_entry64:
	movl $BOOT_KIND_PVH, %edi
	jmp common_entry64

	.globl linux_entry64
linux_entry64:
	movl $BOOT_KIND_LINUX, %edi
	/* fall through */

/* EDI = boot kind, RSI = boot_params or hvm_start_info (physical). */
common_entry64:
	/* Our page tables set U/S everywhere; with SMEP/SMAP left on by a VMM
	 * the kernel could not run or read its own pages. Clear them before
	 * the switch. */
	movq %cr4, %rax
	andq $~(CR4_SMEP | CR4_SMAP), %rax
	movq %rax, %cr4
	movl $pml4, %eax
	movq %rax, %cr3
	leaq boot_stack_top(%rip), %rsp
	lgdt gdt_pointer(%rip)
	/* CS already holds selector 0x10 with a 64-bit code descriptor on both
	 * paths and our GDT keeps that slot, so no far return is needed. */
	movl $SEL_KERNEL_DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	xorl %eax, %eax
	movl %eax, %fs
	movl %eax, %gs
	movl $SEL_TSS, %eax
	ltr %ax
	lidt idt_pointer(%rip)
	call kmain			/* noreturn */

	.section .note.GNU-stack, "", @progbits
